//! The x86 branch/call/jump filter (BCJ), decoder direction, applied in place to one
//! block's whole output.
//!
//! The encoder turned the relative 32-bit targets of `E8` (call) and `E9` (jmp) opcodes into
//! absolute ones; this turns them back. Which opcodes were converted depends on the bytes
//! just before (a small mask of recent `E8`/`E9` positions), so the pass walks the buffer in
//! order with that mask.

/// For `(mask >> 1) & 7`: may an opcode with this history be converted?
const ALLOWED: [bool; 8] = [true, true, true, false, true, false, false, false];
/// For `mask >> 1`: which byte of the converted value is re-examined.
const BYTE_INDEX: [u32; 8] = [0, 1, 2, 2, 3, 3, 3, 3];

/// Is `b` a plausible top byte of a near branch displacement (0x00 or 0xff)?
#[inline(always)]
fn is_ms_byte(b: u8) -> bool {
    b == 0x00 || b == 0xff
}

/// The first position in `from..=last` holding 0xe8 or 0xe9. Skips eight bytes at a time
/// while a word has neither.
#[inline(always)]
fn find_opcode(buf: &[u8], from: usize, last: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut i = from;
    while i + 8 <= last + 1 {
        let Some(word) = buf.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) else {
            break;
        };
        // A byte of `x` is zero exactly where the byte of the word is 0xe8 or 0xe9.
        let x = (u64::from_le_bytes(word) | ONES) ^ (0xe9 * ONES);
        if x.wrapping_sub(ONES) & !x & HIGHS != 0 {
            break;
        }
        i += 8;
    }
    buf.get(i..=last)?
        .iter()
        .position(|&b| b & 0xfe == 0xe8)
        .map(|k| i + k)
}

/// Undoes the x86 filter over `buf`, the whole output of one block; `start` is the filter's
/// start offset (the stream position of `buf[0]` as the encoder saw it). The last four bytes
/// can hold no complete instruction and are left as they are, as the encoder left them.
pub(crate) fn x86_decode(buf: &mut [u8], start: u32) {
    if buf.len() < 5 {
        return;
    }
    let last = buf.len() - 5;
    let mut mask: u32 = 0;
    // Position (relative to `buf`) of the previous E8/E9 seen; starts far enough back that
    // the first opcode sees an empty history.
    let mut prev: usize = 0;
    let mut have_prev = false;
    let mut i = 0usize;
    while i <= last {
        // Find the next E8/E9 opcode.
        let Some(found) = find_opcode(buf, i, last) else {
            break;
        };
        i = found;
        let gap = if have_prev { i - prev } else { usize::MAX };
        prev = i;
        have_prev = true;
        if gap > 5 {
            mask = 0;
        } else {
            for _ in 0..gap {
                mask &= 0x77;
                mask <<= 1;
            }
        }
        let Some(ins) = buf.get_mut(i..i + 5) else {
            break;
        };
        let top = ins[4];
        let hist = mask >> 1;
        if is_ms_byte(top) && ALLOWED[(hist & 7) as usize] && hist < 0x10 {
            let mut src = u32::from_le_bytes([ins[1], ins[2], ins[3], ins[4]]);
            let here = start.wrapping_add(i as u32).wrapping_add(5);
            let mut dest;
            loop {
                dest = src.wrapping_sub(here);
                if mask == 0 {
                    break;
                }
                let k = BYTE_INDEX[(hist & 7) as usize];
                let b = (dest >> (24 - k * 8)) as u8;
                if !is_ms_byte(b) {
                    break;
                }
                src = dest ^ ((1u32 << (32 - k * 8)) - 1);
            }
            // Keep 25 bits and sign-extend bit 24 into the top byte.
            dest &= 0x01ff_ffff;
            if dest & 0x0100_0000 != 0 {
                dest |= 0xff00_0000;
            }
            ins[1..5].copy_from_slice(&dest.to_le_bytes());
            i += 5;
            mask = 0;
        } else {
            i += 1;
            mask |= 1;
            if is_ms_byte(top) {
                mask |= 0x10;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_target_is_made_relative_again() {
        // call with absolute target 0x1005 at position 0: relative = 0x1005 - 5 = 0x1000.
        let mut b = vec![0xe8, 0x05, 0x10, 0x00, 0x00, 0x90];
        x86_decode(&mut b, 0);
        assert_eq!(b, [0xe8, 0x00, 0x10, 0x00, 0x00, 0x90]);
        // The same bytes with a start offset of 0x100.
        let mut b = vec![0xe8, 0x05, 0x11, 0x00, 0x00, 0x90];
        x86_decode(&mut b, 0x100);
        assert_eq!(b, [0xe8, 0x00, 0x10, 0x00, 0x00, 0x90]);
    }

    #[test]
    fn opcode_search_matches_a_byte_scan() {
        let mut buf = vec![0u8; 100];
        for (k, at) in [3usize, 17, 18, 40, 41, 63, 64, 90].iter().enumerate() {
            buf[*at] = if k % 2 == 0 { 0xe8 } else { 0xe9 };
        }
        buf[50] = 0xe7;
        buf[51] = 0xea;
        for from in 0..100 {
            for last in from..100 {
                let want = (from..=last).find(|&j| buf[j] & 0xfe == 0xe8);
                assert_eq!(find_opcode(&buf, from, last), want, "{from}..={last}");
            }
        }
    }

    #[test]
    fn short_buffers_and_far_targets_are_left_alone() {
        let mut b = vec![0xe8, 1, 2, 3];
        x86_decode(&mut b, 0);
        assert_eq!(b, [0xe8, 1, 2, 3]);
        // Top byte 0x12 is not 0x00/0xff: not a converted branch.
        let mut b = vec![0xe8, 1, 2, 3, 0x12, 0];
        x86_decode(&mut b, 0);
        assert_eq!(b, [0xe8, 1, 2, 3, 0x12, 0]);
    }
}
