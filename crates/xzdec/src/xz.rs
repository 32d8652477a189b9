//! The xz container: stream header, blocks, index, stream footer (and, optionally, stream
//! padding and concatenated streams).

use std::io::Read;

use crate::bcj;
use crate::check::Check;
use crate::error::Error;
use crate::input::Input;
use crate::lzma::{Lzma, Output};
use crate::lzma2;
use crate::Options;

const MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0x00];
const FOOTER_MAGIC: [u8; 2] = [b'Y', b'Z'];
const FILTER_LZMA2: u64 = 0x21;
const FILTER_X86: u64 = 0x04;
/// Largest valid variable-length integer (2^63 - 1).
const VLI_MAX: u64 = u64::MAX >> 1;

/// One filter of a block's chain, other than the final LZMA2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Filter {
    X86 { start: u32 },
}

/// What a block header declares.
#[derive(Debug)]
struct BlockHeader {
    size: u64,
    compressed: Option<u64>,
    uncompressed: Option<u64>,
    /// Non-final filters in chain order (the encoder applied the first one first).
    filters: Vec<Filter>,
}

/// Reads a variable-length integer from `next`: 7 bits a byte, least significant first, at
/// most 9 bytes, no redundant trailing zero byte.
fn vli(
    mut next: impl FnMut() -> Result<u8, Error>,
    at: u64,
    what: &'static str,
) -> Result<u64, Error> {
    let mut v = 0u64;
    for i in 0..9 {
        let b = next()?;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return Err(Error::corrupt(
                    at,
                    what,
                    "an integer has a redundant zero byte",
                ));
            }
            return Ok(v);
        }
    }
    Err(Error::corrupt(
        at,
        what,
        "an integer is longer than 9 bytes",
    ))
}

fn stream_flags(flags: [u8; 2], at: u64) -> Result<Check, Error> {
    if flags[0] != 0 || flags[1] & 0xf0 != 0 {
        return Err(Error::Unsupported {
            offset: at,
            what: format!("stream flags {:02x} {:02x}", flags[0], flags[1]),
            hint: "; the stream may come from a newer xz",
        });
    }
    Check::from_id(flags[1]).ok_or_else(|| Error::Unsupported {
        offset: at,
        what: format!("check type {}", flags[1]),
        hint: "; supported: none, CRC32, CRC64, SHA-256",
    })
}

/// Parses a block header whose first byte (`size_byte`, not 0) was just read at `at`.
fn block_header<R: Read>(inp: &mut Input<R>, size_byte: u8, at: u64) -> Result<BlockHeader, Error> {
    const WHAT: &str = "block header";
    let size = (usize::from(size_byte) + 1) * 4;
    let mut hdr = Vec::with_capacity(size);
    hdr.push(size_byte);
    hdr.extend_from_slice(inp.take(size - 1, WHAT)?);
    let (body, crc) = hdr.split_at(size - 4);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err(Error::corrupt(at, WHAT, "CRC32 mismatch"));
    }
    let flags = body.get(1).copied().unwrap_or(0);
    if flags & 0x3c != 0 {
        return Err(Error::Unsupported {
            offset: at,
            what: format!("block flags {flags:#04x}"),
            hint: "; reserved bits are set",
        });
    }
    let mut p = 2usize;
    let mut next = || {
        let b = body.get(p).copied();
        p += 1;
        b.ok_or_else(|| Error::corrupt(at, WHAT, "fields run past the header size"))
    };
    let compressed = if flags & 0x40 != 0 {
        let v = vli(&mut next, at, WHAT)?;
        if v == 0 || v > VLI_MAX {
            return Err(Error::corrupt(at, WHAT, "compressed size is 0"));
        }
        Some(v)
    } else {
        None
    };
    let uncompressed = if flags & 0x80 != 0 {
        Some(vli(&mut next, at, WHAT)?)
    } else {
        None
    };
    let count = usize::from(flags & 0x03) + 1;
    let mut filters = Vec::new();
    for n in 0..count {
        let id = vli(&mut next, at, WHAT)?;
        let psize = vli(&mut next, at, WHAT)?;
        let mut props = Vec::new();
        for _ in 0..psize.min(256) {
            props.push(next()?);
        }
        if psize > 256 {
            return Err(Error::corrupt(at, WHAT, "filter properties are too long"));
        }
        let last = n + 1 == count;
        match (id, last) {
            (FILTER_LZMA2, true) => {
                if props.len() != 1 {
                    return Err(Error::corrupt(
                        at,
                        WHAT,
                        format!("LZMA2 properties are {} bytes, not 1", props.len()),
                    ));
                }
                let dict = props.first().copied().unwrap_or(0);
                if dict & 0xc0 != 0 || dict > 40 {
                    return Err(Error::corrupt(
                        at,
                        WHAT,
                        format!("LZMA2 dictionary size byte {dict} is above 40"),
                    ));
                }
            }
            (FILTER_LZMA2, false) => {
                return Err(Error::corrupt(at, WHAT, "LZMA2 is not the last filter"))
            }
            (FILTER_X86, false) => {
                let start = match props.as_slice() {
                    [] => 0,
                    [a, b, c, d] => u32::from_le_bytes([*a, *b, *c, *d]),
                    _ => {
                        return Err(Error::corrupt(
                            at,
                            WHAT,
                            format!(
                                "x86 filter properties are {} bytes, not 0 or 4",
                                props.len()
                            ),
                        ))
                    }
                };
                filters.push(Filter::X86 { start });
            }
            (id, true) if id == FILTER_X86 => {
                return Err(Error::corrupt(
                    at,
                    WHAT,
                    "the x86 filter cannot be the last filter",
                ))
            }
            (id, _) => {
                return Err(Error::Unsupported {
                    offset: at,
                    what: format!("filter {id:#04x}"),
                    hint: "; only LZMA2 (0x21) and x86 BCJ (0x04) are",
                })
            }
        }
    }
    // The rest up to the CRC is padding and must be zero.
    if body.get(p..).is_some_and(|pad| pad.iter().any(|&b| b != 0)) {
        return Err(Error::Unsupported {
            offset: at,
            what: "non-zero block header padding".to_string(),
            hint: "",
        });
    }
    Ok(BlockHeader {
        size: size as u64,
        compressed,
        uncompressed,
        filters,
    })
}

/// Reads index bytes, hashing and counting them.
struct IndexReader {
    crc: crc32fast::Hasher,
    size: u64,
}

impl IndexReader {
    fn byte<R: Read>(&mut self, inp: &mut Input<R>) -> Result<u8, Error> {
        let b = inp.byte("index")?;
        self.crc.update(&[b]);
        self.size += 1;
        Ok(b)
    }
}

/// Decodes one stream whose 12-byte header is in `header` (read at `at`).
fn stream<R: Read>(
    inp: &mut Input<R>,
    header: [u8; 12],
    at: u64,
    out: &mut Output,
    lzma: &mut Option<Lzma>,
) -> Result<(), Error> {
    if header[..6] != MAGIC {
        return Err(Error::NotThisFormat {
            format: "xz",
            reason: format!("the stream at byte {at} does not start with the xz magic"),
        });
    }
    let flags = [header[6], header[7]];
    if crc32fast::hash(&flags).to_le_bytes() != header[8..12] {
        return Err(Error::corrupt(at, "stream header", "CRC32 mismatch"));
    }
    let check = stream_flags(flags, at)?;

    // (unpadded size, uncompressed size) of each block, for the index.
    let mut records: Vec<(u64, u64)> = Vec::new();
    let index_at = loop {
        let bat = inp.offset();
        let size_byte = inp.byte("block header")?;
        if size_byte == 0 {
            break bat;
        }
        let bh = block_header(inp, size_byte, bat)?;
        let data_at = inp.offset();
        let out_start = out.pos;
        lzma2::decode(inp, out, lzma)?;
        let data_end = inp.offset();
        let compressed = data_end - data_at;
        let uncompressed = (out.pos - out_start) as u64;
        if bh.compressed.is_some_and(|c| c != compressed) {
            return Err(Error::corrupt(
                data_end,
                "block",
                format!(
                    "{compressed} compressed bytes, the header declares {}",
                    bh.compressed.unwrap_or(0)
                ),
            ));
        }
        if bh.uncompressed.is_some_and(|u| u != uncompressed) {
            return Err(Error::corrupt(
                data_end,
                "block",
                format!(
                    "{uncompressed} uncompressed bytes, the header declares {}",
                    bh.uncompressed.unwrap_or(0)
                ),
            ));
        }
        let pad = ((4 - compressed % 4) % 4) as usize;
        if inp.take(pad, "block padding")?.iter().any(|&b| b != 0) {
            return Err(Error::corrupt(
                data_end,
                "block padding",
                "non-zero padding",
            ));
        }
        for f in bh.filters.iter().rev() {
            match *f {
                Filter::X86 { start } => bcj::x86_decode(out.since_mut(out_start), start),
            }
        }
        let check_at = inp.offset();
        let stored = inp.take(check.size(), "block check")?;
        if !check.verify(out.since(out_start), stored) {
            return Err(Error::CheckMismatch {
                offset: check_at + check.size() as u64,
                kind: check.name(),
            });
        }
        let unpadded = bh.size + compressed + check.size() as u64;
        records.push((unpadded, uncompressed));
    };

    // The index: its indicator byte (0) was read at `index_at`.
    const WHAT: &str = "index";
    let mut ix = IndexReader {
        crc: crc32fast::Hasher::new(),
        size: 1,
    };
    ix.crc.update(&[0]);
    let count = vli(|| ix.byte(inp), index_at, WHAT)?;
    if count != records.len() as u64 {
        return Err(Error::corrupt(
            index_at,
            WHAT,
            format!("{count} records for {} blocks", records.len()),
        ));
    }
    for (n, &(unpadded, uncompressed)) in records.iter().enumerate() {
        let u = vli(|| ix.byte(inp), index_at, WHAT)?;
        let c = vli(|| ix.byte(inp), index_at, WHAT)?;
        if u != unpadded || c != uncompressed {
            return Err(Error::corrupt(
                index_at,
                WHAT,
                format!(
                    "record {n} says {u} unpadded / {c} uncompressed bytes, the block has \
                     {unpadded} / {uncompressed}"
                ),
            ));
        }
    }
    while ix.size % 4 != 0 {
        if ix.byte(inp)? != 0 {
            return Err(Error::corrupt(index_at, WHAT, "non-zero padding"));
        }
    }
    let size = ix.size;
    let crc = ix.crc.finalize();
    let stored: [u8; 4] = inp.array(WHAT)?;
    if crc.to_le_bytes() != stored {
        return Err(Error::corrupt(index_at, WHAT, "CRC32 mismatch"));
    }
    let index_size = size + 4;

    let fat = inp.offset();
    let footer: [u8; 12] = inp.array("stream footer")?;
    if footer[10..12] != FOOTER_MAGIC {
        return Err(Error::corrupt(
            fat,
            "stream footer",
            "bad magic (not \"YZ\")",
        ));
    }
    if crc32fast::hash(&footer[4..10]).to_le_bytes() != footer[..4] {
        return Err(Error::corrupt(fat, "stream footer", "CRC32 mismatch"));
    }
    let backward = u64::from(u32::from_le_bytes([
        footer[4], footer[5], footer[6], footer[7],
    ]));
    if (backward + 1) * 4 != index_size {
        return Err(Error::corrupt(
            fat,
            "stream footer",
            format!(
                "backward size {} does not match the {index_size}-byte index",
                (backward + 1) * 4
            ),
        ));
    }
    if footer[8..10] != flags {
        return Err(Error::corrupt(
            fat,
            "stream footer",
            "stream flags differ from the header's",
        ));
    }
    Ok(())
}

/// Decodes the xz input into `out`.
pub(crate) fn decode<R: Read>(input: R, opts: &Options, out: &mut Output) -> Result<(), Error> {
    let mut inp = Input::new(input);
    let mut lzma = None;
    let n = inp.fill(12)?;
    if n < 12 {
        if n >= 6 && inp.buffered().starts_with(&MAGIC)
            || n < 6 && MAGIC.starts_with(inp.buffered()) && n > 0
        {
            return Err(Error::Truncated {
                offset: n as u64,
                what: "stream header",
            });
        }
        return Err(Error::NotThisFormat {
            format: "xz",
            reason: if n == 0 {
                "the input is empty".to_string()
            } else {
                "the input is shorter than a stream header".to_string()
            },
        });
    }
    let header = inp.array("stream header")?;
    stream(&mut inp, header, 0, out, &mut lzma)?;
    if !opts.concatenated {
        return Ok(());
    }
    loop {
        // Stream padding: groups of four zero bytes; then end of input or another stream.
        let at = inp.offset();
        let avail = inp.fill(12)?;
        if avail == 0 {
            return Ok(());
        }
        let head = inp.buffered();
        if head.first() == Some(&0) {
            if avail < 4 || head.get(..4) != Some(&[0, 0, 0, 0]) {
                return Err(Error::corrupt(
                    at,
                    "stream padding",
                    "padding is not a multiple of four zero bytes",
                ));
            }
            inp.consume(4);
            continue;
        }
        if avail < 12 {
            return Err(Error::Truncated {
                offset: at + avail as u64,
                what: "stream header",
            });
        }
        let header = inp.array("stream header")?;
        stream(&mut inp, header, at, out, &mut lzma)?;
    }
}
