//! The LZMA core (range decoder, literal/match/rep states, length and distance decoders),
//! the output buffer that doubles as the dictionary, and the legacy `.lzma` container.

use std::io::Read;

use crate::error::Error;
use crate::input::Input;
use crate::Options;

/// Range decoder normalisation threshold.
const TOP: u32 = 1 << 24;
/// Probabilities are 11-bit fixed point; this is 1.0.
const BIT_MODEL_TOTAL: u16 = 1 << 11;
/// Probabilities start at 0.5.
const PROB_INIT: u16 = BIT_MODEL_TOTAL / 2;
const MOVE_BITS: u32 = 5;
const STATES: usize = 12;
const POS_STATES_MAX: usize = 1 << 4;
const LEN_LOW_BITS: u32 = 3;
const LEN_MID_BITS: u32 = 3;
const LEN_HIGH_BITS: u32 = 8;
const LEN_LOW: usize = 1 << LEN_LOW_BITS;
const LEN_MID: usize = 1 << LEN_MID_BITS;
const LEN_HIGH: usize = 1 << LEN_HIGH_BITS;
/// Shortest match.
const MATCH_LEN_MIN: usize = 2;
/// Longest match: the most bytes one symbol writes.
pub(crate) const MATCH_LEN_MAX: usize = 273;
const DIST_STATES: usize = 4;
const DIST_SLOT_BITS: u32 = 6;
const DIST_MODEL_START: u32 = 4;
const DIST_MODEL_END: u32 = 14;
const FULL_DISTANCES: usize = 1 << (DIST_MODEL_END / 2);
const ALIGN_BITS: u32 = 4;
const ALIGN_SIZE: usize = 1 << ALIGN_BITS;
const LITERAL_CODER_SIZE: usize = 0x300;
/// The states after which the next literal is a "matched" literal.
const LIT_STATES: usize = 7;
/// Upper bound on the input bytes one symbol consumes (each bit normalises at most once):
/// decoding pauses for more input when fewer than this many remain.
const SYMBOL_INPUT_MAX: usize = 64;

/// The output: one buffer that is both the result and the LZ dictionary.
///
/// `buf[..pos]` is the output so far; `buf[pos..]` is zero-filled room. Matches may only
/// reach back to `dict_start` (the last dictionary reset).
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) buf: Vec<u8>,
    pub(crate) pos: usize,
    pub(crate) dict_start: usize,
    /// The caller's limit, as a buffer length.
    pub(crate) limit: usize,
    /// The caller's limit as given (for errors).
    pub(crate) limit_u64: u64,
}

/// A hint never reserves more than this at once.
const HINT_CAP: u64 = 1 << 30;

impl Output {
    pub(crate) fn new(opts: &Options) -> Output {
        let limit = usize::try_from(opts.limit).unwrap_or(usize::MAX);
        let hint = opts.size_hint.unwrap_or(0).min(opts.limit).min(HINT_CAP);
        let reserve = usize::try_from(hint).unwrap_or(0);
        Output {
            buf: vec![0; reserve],
            pos: 0,
            dict_start: 0,
            limit,
            limit_u64: opts.limit,
        }
    }

    pub(crate) fn too_large(&self) -> Error {
        Error::TooLarge {
            limit: self.limit_u64,
        }
    }

    /// Makes `buf.len() >= need`; `need` must be within the limit.
    pub(crate) fn ensure(&mut self, need: usize) -> Result<(), Error> {
        if need <= self.buf.len() {
            return Ok(());
        }
        if need > self.limit {
            return Err(self.too_large());
        }
        let len = self.buf.len();
        let grown = len.saturating_add(len / 2).max(1 << 16).min(self.limit);
        let new_len = need.max(grown);
        let extra = new_len - len;
        self.buf
            .try_reserve_exact(extra)
            .map_err(|_| Error::OutOfMemory {
                bytes: new_len as u64,
            })?;
        self.buf.resize(new_len, 0);
        Ok(())
    }

    /// Appends `data` (an uncompressed chunk).
    pub(crate) fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        let end = self
            .pos
            .checked_add(data.len())
            .ok_or_else(|| self.too_large())?;
        self.ensure(end)?;
        if let Some(dst) = self.buf.get_mut(self.pos..end) {
            dst.copy_from_slice(data);
        }
        self.pos = end;
        Ok(())
    }

    /// The output written since `start`.
    pub(crate) fn since(&self, start: usize) -> &[u8] {
        self.buf.get(start..self.pos).unwrap_or_default()
    }

    /// The output written since `start`, mutable.
    pub(crate) fn since_mut(&mut self, start: usize) -> &mut [u8] {
        self.buf.get_mut(start..self.pos).unwrap_or_default()
    }

    /// The decoded bytes.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.buf.truncate(self.pos);
        if self.buf.capacity() > self.pos {
            self.buf.shrink_to_fit();
        }
        self.buf
    }
}

/// lc/lp/pb.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Props {
    pub(crate) lc: u32,
    pub(crate) lp: u32,
    pub(crate) pb: u32,
}

impl Props {
    /// Splits the properties byte `(pb * 5 + lp) * 9 + lc`.
    pub(crate) fn from_byte(b: u8) -> Option<Props> {
        if b >= 9 * 5 * 5 {
            return None;
        }
        let b = u32::from(b);
        Some(Props {
            lc: b % 9,
            lp: (b / 9) % 5,
            pb: b / 45,
        })
    }
}

#[derive(Clone, Debug)]
struct LenDecoder {
    choice: u16,
    choice2: u16,
    low: [[u16; LEN_LOW]; POS_STATES_MAX],
    mid: [[u16; LEN_MID]; POS_STATES_MAX],
    high: [u16; LEN_HIGH],
}

impl LenDecoder {
    fn new() -> Self {
        LenDecoder {
            choice: PROB_INIT,
            choice2: PROB_INIT,
            low: [[PROB_INIT; LEN_LOW]; POS_STATES_MAX],
            mid: [[PROB_INIT; LEN_MID]; POS_STATES_MAX],
            high: [PROB_INIT; LEN_HIGH],
        }
    }
}

/// Range decoder registers, kept across calls of [`Lzma::run`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rc {
    pub(crate) range: u32,
    pub(crate) code: u32,
}

impl Rc {
    /// Starts a range decoder on the first five bytes of `inp`; returns it and the number of
    /// bytes used, or None if the first byte is not zero (or `inp` is too short).
    pub(crate) fn init(inp: &[u8]) -> Option<Rc> {
        let head: [u8; 5] = inp.get(..5)?.try_into().ok()?;
        if head[0] != 0 {
            return None;
        }
        Some(Rc {
            range: u32::MAX,
            code: u32::from_be_bytes([head[1], head[2], head[3], head[4]]),
        })
    }

    /// True when the encoder's flush has been fully read.
    pub(crate) fn is_finished(&self) -> bool {
        self.code == 0
    }
}

/// Why [`Lzma::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The output reached `end` (only when asked to stop there).
    Done,
    /// An end-of-payload marker was decoded (only when allowed).
    EndMarker,
    /// Fewer than [`SYMBOL_INPUT_MAX`] input bytes remain and the input is not complete.
    NeedInput,
    /// The buffer has no room for another symbol; grow it and call again.
    NeedSpace,
    /// A symbol would write past `end`.
    Overflow,
    /// The input ran out (complete input, read past its end).
    Truncated,
    /// A distance reaches before the dictionary start.
    BadDistance,
    /// An end marker where none is allowed.
    UnexpectedEndMarker,
}

/// LZMA decoder state: probabilities, the state machine and the four recent distances.
#[derive(Clone, Debug)]
pub(crate) struct Lzma {
    lc: u32,
    lp_mask: usize,
    pb_mask: usize,
    state: usize,
    reps: [u32; 4],
    is_match: [[u16; POS_STATES_MAX]; STATES],
    is_rep: [u16; STATES],
    is_rep0: [u16; STATES],
    is_rep1: [u16; STATES],
    is_rep2: [u16; STATES],
    is_rep0_long: [[u16; POS_STATES_MAX]; STATES],
    dist_slot: [[u16; 1 << DIST_SLOT_BITS]; DIST_STATES],
    dist_special: [u16; FULL_DISTANCES - DIST_MODEL_END as usize],
    align: [u16; ALIGN_SIZE],
    match_len: LenDecoder,
    rep_len: LenDecoder,
    literal: Vec<[u16; LITERAL_CODER_SIZE]>,
}

impl Lzma {
    pub(crate) fn new(props: Props) -> Lzma {
        let mut l = Lzma {
            lc: 0,
            lp_mask: 0,
            pb_mask: 0,
            state: 0,
            reps: [0; 4],
            is_match: [[PROB_INIT; POS_STATES_MAX]; STATES],
            is_rep: [PROB_INIT; STATES],
            is_rep0: [PROB_INIT; STATES],
            is_rep1: [PROB_INIT; STATES],
            is_rep2: [PROB_INIT; STATES],
            is_rep0_long: [[PROB_INIT; POS_STATES_MAX]; STATES],
            dist_slot: [[PROB_INIT; 1 << DIST_SLOT_BITS]; DIST_STATES],
            dist_special: [PROB_INIT; FULL_DISTANCES - DIST_MODEL_END as usize],
            align: [PROB_INIT; ALIGN_SIZE],
            match_len: LenDecoder::new(),
            rep_len: LenDecoder::new(),
            literal: Vec::new(),
        };
        l.set_props(props);
        l
    }

    /// New lc/lp/pb, then a state reset.
    pub(crate) fn set_props(&mut self, props: Props) {
        self.lc = props.lc;
        self.lp_mask = (1usize << props.lp) - 1;
        self.pb_mask = (1usize << props.pb) - 1;
        self.literal.clear();
        self.literal
            .resize(1 << (props.lc + props.lp), [PROB_INIT; LITERAL_CODER_SIZE]);
        self.reset();
    }

    /// Resets the state, the distances and every probability (not lc/lp/pb).
    pub(crate) fn reset(&mut self) {
        self.state = 0;
        self.reps = [0; 4];
        self.is_match = [[PROB_INIT; POS_STATES_MAX]; STATES];
        self.is_rep.fill(PROB_INIT);
        self.is_rep0.fill(PROB_INIT);
        self.is_rep1.fill(PROB_INIT);
        self.is_rep2.fill(PROB_INIT);
        self.is_rep0_long = [[PROB_INIT; POS_STATES_MAX]; STATES];
        self.dist_slot = [[PROB_INIT; 1 << DIST_SLOT_BITS]; DIST_STATES];
        self.dist_special.fill(PROB_INIT);
        self.align.fill(PROB_INIT);
        self.match_len = LenDecoder::new();
        self.rep_len = LenDecoder::new();
        self.literal.fill([PROB_INIT; LITERAL_CODER_SIZE]);
    }

    /// Decodes symbols from `inp[*ipos..]` into `out` until one of the [`Stop`] conditions.
    ///
    /// - `complete`: `inp` holds all the input there is (bytes past its end read as zero and
    ///   are reported as [`Stop::Truncated`]); otherwise decoding pauses with
    ///   [`Stop::NeedInput`] while a whole symbol may still need more bytes.
    /// - `end`: no byte is written at or past this output position; with `stop_at_end`,
    ///   reaching it is [`Stop::Done`], otherwise a symbol that would cross it is
    ///   [`Stop::Overflow`].
    /// - `allow_end_marker`: whether an end-of-payload marker may appear.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    pub(crate) fn run(
        &mut self,
        rc: &mut Rc,
        inp: &[u8],
        ipos: &mut usize,
        complete: bool,
        out: &mut Output,
        end: usize,
        stop_at_end: bool,
        allow_end_marker: bool,
    ) -> Stop {
        let mut range = rc.range;
        let mut code = rc.code;
        let mut ip = *ipos;
        let mut pos = out.pos;
        let dict_start = out.dict_start;
        let mut state = self.state;
        let mut rep0 = self.reps[0];
        let mut rep1 = self.reps[1];
        let mut rep2 = self.reps[2];
        let mut rep3 = self.reps[3];
        let lc = self.lc;
        let lp_mask = self.lp_mask;
        let pb_mask = self.pb_mask;
        let buf: &mut [u8] = &mut out.buf;
        let buf_len = buf.len();
        // Writes stop at `hard`; while the buffer is shorter than `end`, room for one whole
        // symbol is checked before decoding it.
        let hard = end.min(buf_len);
        let short_buffer = buf_len < end;
        // In pausable mode keep a whole symbol's worth of input in hand.
        let in_stop = if complete { usize::MAX } else { inp.len() };

        macro_rules! next_byte {
            () => {{
                let b = inp.get(ip).copied().unwrap_or(0);
                ip += 1;
                u32::from(b)
            }};
        }
        macro_rules! normalize {
            () => {
                if range < TOP {
                    range <<= 8;
                    code = (code << 8) | next_byte!();
                }
            };
        }
        // Decodes one bit with the probability `$p` (a place expression); yields 0 or 1.
        macro_rules! bit {
            ($p:expr) => {{
                normalize!();
                let p: &mut u16 = &mut $p;
                let bound = (range >> 11) * u32::from(*p);
                if code < bound {
                    range = bound;
                    *p += (BIT_MODEL_TOTAL - *p) >> MOVE_BITS;
                    0u32
                } else {
                    range -= bound;
                    code -= bound;
                    *p -= *p >> MOVE_BITS;
                    1u32
                }
            }};
        }
        // The same decision without a branch: for the nearly random bits of literals and
        // trees, where a mispredicted jump costs more than computing both outcomes.
        macro_rules! bitx {
            ($p:expr) => {{
                normalize!();
                let p: &mut u16 = &mut $p;
                let pv = u32::from(*p);
                let bound = (range >> 11) * pv;
                // All ones when the bit is 1.
                let mask = 0u32.wrapping_sub(u32::from(code >= bound));
                range = (bound & !mask) | (range.wrapping_sub(bound) & mask);
                code = code.wrapping_sub(bound & mask);
                let up = pv + ((u32::from(BIT_MODEL_TOTAL) - pv) >> MOVE_BITS);
                let down = pv - (pv >> MOVE_BITS);
                *p = ((up & !mask) | (down & mask)) as u16;
                mask & 1
            }};
        }
        // A bit tree of `$bits` levels over the array `$probs` of `1 << $bits` entries;
        // yields the value. (The index mask changes nothing: `m` stays below the size.)
        macro_rules! tree {
            ($probs:expr, $bits:expr) => {{
                let probs = &mut $probs;
                let mut m = 1usize;
                for _ in 0..$bits {
                    m = (m << 1) | bitx!(probs[m & ((1usize << $bits) - 1)]) as usize;
                }
                (m - (1usize << $bits)) as u32
            }};
        }
        // A length decoder; yields the match length minus MATCH_LEN_MIN.
        macro_rules! length {
            ($ld:expr, $pos_state:expr) => {{
                let ld = &mut $ld;
                if bit!(ld.choice) == 0 {
                    tree!(ld.low[$pos_state], LEN_LOW_BITS) as usize
                } else if bit!(ld.choice2) == 0 {
                    LEN_LOW + tree!(ld.mid[$pos_state], LEN_MID_BITS) as usize
                } else {
                    LEN_LOW + LEN_MID + tree!(ld.high, LEN_HIGH_BITS) as usize
                }
            }};
        }

        let stop = loop {
            if ip > inp.len() {
                break Stop::Truncated;
            }
            if ip.saturating_add(SYMBOL_INPUT_MAX) > in_stop {
                break Stop::NeedInput;
            }
            if pos >= hard {
                if stop_at_end && pos >= end {
                    break Stop::Done;
                }
                if short_buffer {
                    break Stop::NeedSpace;
                }
            } else if short_buffer && buf_len - pos < MATCH_LEN_MAX {
                break Stop::NeedSpace;
            }
            let rel = pos - dict_start;
            let pos_state = rel & pb_mask & (POS_STATES_MAX - 1);

            if bit!(self.is_match[state][pos_state]) == 0 {
                // Literal.
                if pos >= hard {
                    break Stop::Overflow;
                }
                let prev = if rel > 0 {
                    u32::from(buf.get(pos - 1).copied().unwrap_or(0))
                } else {
                    0
                };
                let lit = ((rel & lp_mask) << lc) + (prev >> (8 - lc)) as usize;
                let probs = &mut self.literal[lit];
                let mut sym = 1usize;
                if state >= LIT_STATES {
                    let at = pos.wrapping_sub(rep0 as usize + 1);
                    let mut mbyte = usize::from(buf.get(at).copied().unwrap_or(0));
                    let mut offset = 0x100usize;
                    while sym < 0x100 {
                        mbyte <<= 1;
                        let mbit = mbyte & offset;
                        let b = bitx!(probs[offset + mbit + sym]) as usize;
                        sym = (sym << 1) | b;
                        // Keep following the match byte only while the bits agree.
                        offset &= mbit ^ (b.wrapping_sub(1));
                    }
                } else {
                    for _ in 0..8 {
                        sym = (sym << 1) | bitx!(probs[sym & 0xff]) as usize;
                    }
                }
                if let Some(slot) = buf.get_mut(pos) {
                    *slot = sym as u8;
                }
                pos += 1;
                state = if state < 4 {
                    0
                } else if state < 10 {
                    state - 3
                } else {
                    state - 6
                };
                continue;
            }

            let len;
            if bit!(self.is_rep[state]) == 0 {
                // A match with a new distance.
                len = MATCH_LEN_MIN + length!(self.match_len, pos_state);
                let len_state = (len - MATCH_LEN_MIN).min(DIST_STATES - 1);
                let slot = tree!(self.dist_slot[len_state], DIST_SLOT_BITS);
                let dist = if slot < DIST_MODEL_START {
                    slot
                } else {
                    let direct = (slot >> 1) - 1;
                    let mut d = (2 | (slot & 1)) << direct;
                    if slot < DIST_MODEL_END {
                        // Reverse bit tree over the slot's own probabilities.
                        let base = (d - slot) as usize;
                        let mut m = 1usize;
                        for i in 0..direct {
                            let b = bitx!(self.dist_special[base + m - 1]);
                            m = (m << 1) | b as usize;
                            d |= b << i;
                        }
                    } else {
                        let mut v = 0u32;
                        for _ in 0..direct - ALIGN_BITS {
                            normalize!();
                            range >>= 1;
                            code = code.wrapping_sub(range);
                            let mask = 0u32.wrapping_sub(code >> 31);
                            code = code.wrapping_add(range & mask);
                            v = (v << 1) | (mask.wrapping_add(1));
                        }
                        d |= v << ALIGN_BITS;
                        let mut m = 1usize;
                        for i in 0..ALIGN_BITS {
                            let b = bitx!(self.align[m]);
                            m = (m << 1) | b as usize;
                            d |= b << i;
                        }
                    }
                    d
                };
                if dist == u32::MAX {
                    break if allow_end_marker {
                        Stop::EndMarker
                    } else {
                        Stop::UnexpectedEndMarker
                    };
                }
                if dist as usize >= rel {
                    break Stop::BadDistance;
                }
                rep3 = rep2;
                rep2 = rep1;
                rep1 = rep0;
                rep0 = dist;
                state = if state < LIT_STATES { 7 } else { 10 };
            } else {
                if rel == 0 {
                    break Stop::BadDistance;
                }
                if bit!(self.is_rep0[state]) == 0 {
                    if bit!(self.is_rep0_long[state][pos_state]) == 0 {
                        // A one-byte match at rep0.
                        if pos >= hard {
                            break Stop::Overflow;
                        }
                        if rep0 as usize >= rel {
                            break Stop::BadDistance;
                        }
                        let b = buf.get(pos - rep0 as usize - 1).copied().unwrap_or(0);
                        if let Some(slot) = buf.get_mut(pos) {
                            *slot = b;
                        }
                        pos += 1;
                        state = if state < LIT_STATES { 9 } else { 11 };
                        continue;
                    }
                } else {
                    let dist;
                    if bit!(self.is_rep1[state]) == 0 {
                        dist = rep1;
                    } else {
                        if bit!(self.is_rep2[state]) == 0 {
                            dist = rep2;
                        } else {
                            dist = rep3;
                            rep3 = rep2;
                        }
                        rep2 = rep1;
                    }
                    rep1 = rep0;
                    rep0 = dist;
                }
                len = MATCH_LEN_MIN + length!(self.rep_len, pos_state);
                state = if state < LIT_STATES { 8 } else { 11 };
                if rep0 as usize >= rel {
                    break Stop::BadDistance;
                }
            }

            // Copy `len` bytes from `rep0 + 1` back.
            if len > hard - pos.min(hard) {
                break Stop::Overflow;
            }
            copy_match(buf, pos, rep0 as usize + 1, len);
            pos += len;
        };

        // Leave the range decoder normalised: at the end of a chunk this reads its last byte.
        normalize!();
        rc.range = range;
        rc.code = code;
        *ipos = ip;
        out.pos = pos;
        self.state = state;
        self.reps = [rep0, rep1, rep2, rep3];
        stop
    }
}

/// Copies `len` bytes starting `dist` bytes before `pos` to `pos` (the ranges may overlap:
/// a short distance repeats the last `dist` bytes). The caller has checked
/// `dist <= pos` and `pos + len <= buf.len()`.
#[inline(always)]
fn copy_match(buf: &mut [u8], pos: usize, dist: usize, len: usize) {
    let src = pos - dist;
    if dist >= len {
        if len <= 16 && dist >= 16 && pos + 16 <= buf.len() {
            // Fixed-size copy; bytes past `len` are scratch that later output overwrites.
            let mut t = [0u8; 16];
            t.copy_from_slice(&buf[src..src + 16]);
            buf[pos..pos + 16].copy_from_slice(&t);
        } else {
            buf.copy_within(src..src + len, pos);
        }
    } else if dist == 1 {
        let b = buf[src];
        buf[pos..pos + len].fill(b);
    } else {
        // Overlapping: the source is periodic with period `dist`; copy in runs that keep the
        // copied length a multiple of `dist`, doubling each time.
        let mut done = dist;
        buf.copy_within(src..pos, pos);
        while done < len {
            let n = done.min(len - done);
            buf.copy_within(src..src + n, pos + done);
            done += n;
        }
    }
}

/// Decodes a legacy `.lzma` stream: 13-byte header, then LZMA data.
pub(crate) fn decode_alone<R: Read>(input: R, out: &mut Output) -> Result<(), Error> {
    let mut inp = Input::new(input);
    const WHAT: &str = "lzma header";
    let n = inp.fill(13)?;
    if n < 13 {
        return Err(if n == 0 {
            Error::NotThisFormat {
                format: "lzma",
                reason: "the input is empty".into(),
            }
        } else {
            Error::Truncated {
                offset: n as u64,
                what: WHAT,
            }
        });
    }
    let head: [u8; 13] = inp.array(WHAT)?;
    let props = Props::from_byte(head[0]).ok_or_else(|| {
        Error::corrupt(
            0,
            WHAT,
            format!("properties byte {:#04x} is not below 225", head[0]),
        )
    })?;
    let size = u64::from_le_bytes([
        head[5], head[6], head[7], head[8], head[9], head[10], head[11], head[12],
    ]);
    let known = size != u64::MAX;
    let end = if known {
        match usize::try_from(size) {
            Ok(s) if s <= out.limit => s,
            _ => return Err(out.too_large()),
        }
    } else {
        out.limit
    };
    if known && size == 0 {
        return Ok(());
    }
    let mut lzma = Lzma::new(props);
    inp.fill(5)?;
    let start = inp.offset();
    let mut rc = Rc::init(inp.buffered()).ok_or_else(|| {
        if inp.buffered().len() < 5 {
            Error::Truncated {
                offset: inp.offset() + inp.buffered().len() as u64,
                what: "LZMA data",
            }
        } else {
            Error::corrupt(start, "LZMA data", "the first byte is not zero")
        }
    })?;
    inp.consume(5);
    loop {
        inp.fill_all()?;
        let complete = inp.at_eof();
        let data = inp.buffered();
        let mut ip = 0;
        let stop = lzma.run(&mut rc, data, &mut ip, complete, out, end, known, true);
        let at = inp.offset() + ip as u64;
        let consumed = ip.min(data.len());
        inp.consume(consumed);
        match stop {
            Stop::Done | Stop::EndMarker => {
                if stop == Stop::EndMarker && known && out.pos != end {
                    return Err(Error::corrupt(
                        at,
                        "LZMA data",
                        format!(
                            "end marker after {} of the {size} bytes the header declares",
                            out.pos
                        ),
                    ));
                }
                return Ok(());
            }
            Stop::NeedInput => {}
            Stop::NeedSpace => {
                let need = out.pos.saturating_add(MATCH_LEN_MAX).min(end);
                out.ensure(need)?;
            }
            Stop::Overflow => {
                return Err(if known {
                    Error::corrupt(
                        at,
                        "LZMA data",
                        format!("more data than the {size} bytes the header declares"),
                    )
                } else {
                    out.too_large()
                })
            }
            Stop::Truncated => {
                return Err(Error::Truncated {
                    offset: inp.offset(),
                    what: "LZMA data",
                })
            }
            other => return Err(lzma_error(other, at)),
        }
    }
}

/// The error for a [`Stop`] that means corrupt data.
pub(crate) fn lzma_error(stop: Stop, at: u64) -> Error {
    let reason = match stop {
        Stop::BadDistance => "a match distance reaches before the start of the output",
        Stop::UnexpectedEndMarker => "an end marker where none is allowed",
        Stop::Overflow => "a match runs past the end of the chunk",
        Stop::Truncated => "the compressed data ends early",
        _ => "the compressed data is invalid",
    };
    Error::corrupt(at, "LZMA data", reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn props_byte_splits() {
        assert_eq!(
            Props::from_byte(0x5d),
            Some(Props {
                lc: 3,
                lp: 0,
                pb: 2
            })
        );
        assert_eq!(
            Props::from_byte(224).map(|p| (p.lc, p.lp, p.pb)),
            Some((8, 4, 4))
        );
        assert_eq!(Props::from_byte(225), None);
    }

    #[test]
    fn overlapping_copies_repeat_the_period() {
        let mut buf = b"abc\0\0\0\0\0\0\0\0\0\0\0".to_vec();
        copy_match(&mut buf, 3, 3, 10);
        assert_eq!(&buf[..13], b"abcabcabcabca");
        let mut buf = b"xy\0\0\0\0\0".to_vec();
        copy_match(&mut buf, 2, 1, 5);
        assert_eq!(&buf, b"xyyyyyy");
    }

    #[test]
    fn output_grows_but_never_past_the_limit() {
        let mut out = Output::new(&Options::with_limit(100_000));
        assert!(out.ensure(70_000).is_ok());
        assert!(out.buf.len() >= 70_000 && out.buf.len() <= 100_000);
        assert!(matches!(
            out.ensure(100_001),
            Err(Error::TooLarge { limit: 100_000 })
        ));
    }
}
