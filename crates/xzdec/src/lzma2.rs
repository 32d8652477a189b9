//! LZMA2: a sequence of chunks, each uncompressed or LZMA-compressed, with control bytes
//! that reset the dictionary, the state or the properties.

use std::io::Read;

use crate::error::Error;
use crate::input::Input;
use crate::lzma::{lzma_error, Lzma, Output, Props, Rc, Stop};

const WHAT: &str = "LZMA2 chunk";

/// Decodes one LZMA2 stream (up to its end-of-data control byte) into `out`.
///
/// `lzma` is reused across blocks to keep its tables allocated.
pub(crate) fn decode<R: Read>(
    inp: &mut Input<R>,
    out: &mut Output,
    lzma: &mut Option<Lzma>,
) -> Result<(), Error> {
    let mut need_dict_reset = true;
    let mut need_props = true;
    loop {
        let at = inp.offset();
        let control = inp.byte(WHAT)?;
        if control == 0 {
            return Ok(());
        }
        if control >= 0xe0 || control == 0x01 {
            need_props = true;
            need_dict_reset = false;
            out.dict_start = out.pos;
        } else if need_dict_reset {
            return Err(Error::corrupt(
                at,
                WHAT,
                format!("control byte {control:#04x} before the first dictionary reset"),
            ));
        }
        if control < 0x80 {
            if control > 0x02 {
                return Err(Error::corrupt(
                    at,
                    WHAT,
                    format!("invalid control byte {control:#04x}"),
                ));
            }
            let size = usize::from(u16::from_be_bytes(inp.array(WHAT)?)) + 1;
            if out.pos.saturating_add(size) > out.limit {
                return Err(out.too_large());
            }
            let data = inp.take(size, "uncompressed LZMA2 chunk")?;
            out.write(data)?;
            continue;
        }

        let head: [u8; 4] = inp.array(WHAT)?;
        let usize_ = (usize::from(control & 0x1f) << 16)
            + usize::from(u16::from_be_bytes([head[0], head[1]]))
            + 1;
        let csize = usize::from(u16::from_be_bytes([head[2], head[3]])) + 1;
        if control >= 0xc0 {
            let pat = inp.offset();
            let b = inp.byte(WHAT)?;
            let props = Props::from_byte(b)
                .filter(|p| p.lc + p.lp <= 4)
                .ok_or_else(|| {
                    Error::corrupt(
                        pat,
                        WHAT,
                        format!("properties byte {b:#04x} is invalid (LZMA2 needs lc + lp <= 4)"),
                    )
                })?;
            match lzma {
                Some(l) => l.set_props(props),
                None => *lzma = Some(Lzma::new(props)),
            }
            need_props = false;
        } else if need_props {
            return Err(Error::corrupt(
                at,
                WHAT,
                format!("control byte {control:#04x} before the properties are set"),
            ));
        } else if control >= 0xa0 {
            if let Some(l) = lzma.as_mut() {
                l.reset();
            }
        }
        let Some(l) = lzma.as_mut() else {
            return Err(Error::corrupt(at, WHAT, "no properties set"));
        };

        let end = out
            .pos
            .checked_add(usize_)
            .filter(|&e| e <= out.limit)
            .ok_or_else(|| out.too_large())?;
        out.ensure(end)?;
        let data_at = inp.offset();
        let data = inp.take(csize, WHAT)?;
        let mut rc = Rc::init(data).ok_or_else(|| {
            Error::corrupt(
                data_at,
                WHAT,
                "the range coder does not start with a zero byte",
            )
        })?;
        let mut ip = 5;
        let stop = l.run(&mut rc, data, &mut ip, true, out, end, true, false);
        let here = data_at + ip as u64;
        match stop {
            Stop::Done => {}
            Stop::Truncated => {
                return Err(Error::corrupt(
                    data_at + csize as u64,
                    WHAT,
                    "the compressed data ends before the chunk's uncompressed size is reached",
                ))
            }
            other => return Err(lzma_error(other, here)),
        }
        if ip != csize || !rc.is_finished() {
            return Err(Error::corrupt(
                here,
                WHAT,
                format!(
                    "the chunk's {usize_} bytes were decoded from {} of its {csize} compressed \
                     bytes{}",
                    ip.min(csize),
                    if rc.is_finished() {
                        ""
                    } else {
                        " and the range coder is not finished"
                    }
                ),
            ));
        }
    }
}
