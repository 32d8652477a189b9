//! Decompressing kernel payloads, with a cap on the output size.
//!
//! Decoders: gzip through `flate2` (zlib-rs backend), xz and legacy lzma through `xzdec` (a
//! single-call decoder that uses its output buffer as the LZ dictionary, so a kernel packed
//! with a 32 MiB dictionary costs the decompressed size and a few hundred KiB, not another
//! 32 MiB; only the first xz stream is read, so Linux's appended size is ignored), zstd
//! through `zstd` (the C libzstd), bzip2 through `bzip2` (libbz2) and lz4 through `lz4_flex`
//! (the Linux "legacy" lz4 framing is parsed here, each block decoded by `lz4_flex`).
//!
//! Every decoder stops one byte past [`DEFAULT_MAX_DECOMPRESSED`] (or the caller's limit;
//! xzdec checks the limit itself before growing its buffer): a compression bomb fails with
//! [`Error::TooLarge`] instead of exhausting memory.

use std::fmt;
use std::io::{self, Read};

use crate::error::Error;

/// The default cap on a decompressed kernel: 1 GiB, as xl uses.
pub const DEFAULT_MAX_DECOMPRESSED: u64 = 1 << 30;

/// The compression formats a kernel payload (or a whole file) may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    /// gzip (`1f 8b`).
    Gzip,
    /// bzip2 (`BZh`).
    Bzip2,
    /// xz (`fd 37 7a 58 5a 00`).
    Xz,
    /// The legacy `.lzma` format (`5d 00 00`).
    Lzma,
    /// zstd (`28 b5 2f fd`).
    Zstd,
    /// lz4, Linux's legacy framing (`02 21 4c 18`) or the standard frame (`04 22 4d 18`).
    Lz4,
    /// lzo (`89 4c 5a 4f`): recognised, not supported.
    Lzo,
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Lzma => "lzma",
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
            Compression::Lzo => "lzo",
        })
    }
}

const LZ4_LEGACY_MAGIC: u32 = 0x184c_2102;
const LZ4_FRAME_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];
/// Largest decompressed block of the lz4 legacy format.
const LZ4_LEGACY_BLOCK: usize = 8 << 20;

impl Compression {
    /// The format whose magic number `head` starts with.
    pub fn detect(head: &[u8]) -> Option<Compression> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if head.starts_with(b"BZh") {
            Some(Compression::Bzip2)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Some(Compression::Xz)
        } else if head.starts_with(&[0x5d, 0x00, 0x00]) {
            Some(Compression::Lzma)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else if head.starts_with(&LZ4_LEGACY_MAGIC.to_le_bytes())
            || head.starts_with(&LZ4_FRAME_MAGIC)
        {
            Some(Compression::Lz4)
        } else if head.starts_with(&[0x89, b'L', b'Z', b'O']) {
            Some(Compression::Lzo)
        } else {
            None
        }
    }
}

/// Decompresses `input` (in `format`) into memory.
///
/// `size_hint` (e.g. the size Linux appends to its payload) only pre-sizes the output buffer;
/// it is untrusted and capped. Output beyond `limit` bytes fails with [`Error::TooLarge`].
/// `path` names the file in errors.
pub fn decompress<R: Read>(
    format: Compression,
    input: R,
    input_len: u64,
    size_hint: Option<u64>,
    limit: u64,
    path: &str,
) -> Result<Vec<u8>, Error> {
    // A hint can be garbage: never reserve more than the limit, nor absurdly more than a
    // compression ratio of 64 would give.
    let hint = size_hint
        .unwrap_or(input_len.saturating_mul(4))
        .min(limit)
        .min(input_len.saturating_mul(64));
    let cap = hint.saturating_add(1);
    let new_out = || Vec::with_capacity(usize::try_from(cap).unwrap_or(0));
    let fail = |e: io::Error| Error::Decompress {
        path: path.to_string(),
        format,
        reason: e.to_string(),
    };
    let bomb = || Error::TooLarge {
        path: path.to_string(),
        format,
        limit,
    };
    let take = limit.saturating_add(1);
    let xz_opts = xzdec::Options {
        limit,
        size_hint: Some(hint),
        concatenated: false,
    };
    let xz_fail = |e: xzdec::Error| match e {
        xzdec::Error::TooLarge { .. } => bomb(),
        e => Error::Decompress {
            path: path.to_string(),
            format,
            reason: e.to_string(),
        },
    };
    let out = match format {
        Compression::Gzip => {
            let mut out = new_out();
            read_limited(flate2::read::GzDecoder::new(input), take, &mut out).map_err(fail)?;
            out
        }
        Compression::Bzip2 => {
            let mut out = new_out();
            read_limited(bzip2::read::BzDecoder::new(input), take, &mut out).map_err(fail)?;
            out
        }
        // Both decode straight into one buffer that is also the LZ dictionary: no separate
        // dictionary of the stream's declared size is allocated.
        Compression::Xz => xzdec::decode_xz(input, xz_opts).map_err(xz_fail)?,
        Compression::Lzma => xzdec::decode_lzma(input, xz_opts).map_err(xz_fail)?,
        Compression::Zstd => {
            let mut out = new_out();
            let mut dec = zstd::stream::read::Decoder::new(input).map_err(fail)?;
            dec.window_log_max(31).map_err(fail)?;
            read_limited(dec.single_frame(), take, &mut out).map_err(fail)?;
            out
        }
        Compression::Lz4 => {
            let mut out = new_out();
            lz4(input, limit, &mut out).map_err(|e| match e {
                Lz4Error::Io(e) => fail(e),
                Lz4Error::TooLarge => bomb(),
                Lz4Error::Bad(reason) => Error::Decompress {
                    path: path.to_string(),
                    format,
                    reason,
                },
            })?;
            out
        }
        Compression::Lzo => {
            return Err(Error::Decompress {
                path: path.to_string(),
                format,
                reason: "lzo payloads are not supported; rebuild the kernel with \
                         CONFIG_KERNEL_XZ, CONFIG_KERNEL_ZSTD or CONFIG_KERNEL_GZIP"
                    .to_string(),
            })
        }
    };
    if out.len() as u64 > limit {
        return Err(bomb());
    }
    if out.is_empty() {
        return Err(Error::Decompress {
            path: path.to_string(),
            format,
            reason: "the payload decompresses to nothing".to_string(),
        });
    }
    Ok(out)
}

fn read_limited<R: Read>(reader: R, take: u64, out: &mut Vec<u8>) -> io::Result<()> {
    reader.take(take).read_to_end(out).map(|_| ())
}

enum Lz4Error {
    Io(io::Error),
    TooLarge,
    Bad(String),
}

impl From<io::Error> for Lz4Error {
    fn from(e: io::Error) -> Self {
        Lz4Error::Io(e)
    }
}

/// Reads up to `buf.len()` bytes; returns how many were read (short only at end of input).
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let Some(rest) = buf.get_mut(got..) else {
            break;
        };
        match r.read(rest) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn lz4<R: Read>(mut input: R, limit: u64, out: &mut Vec<u8>) -> Result<(), Lz4Error> {
    let mut magic = [0u8; 4];
    if read_full(&mut input, &mut magic)? != 4 {
        return Err(Lz4Error::Bad("truncated magic".into()));
    }
    if magic == LZ4_FRAME_MAGIC {
        let chained = io::Cursor::new(magic).chain(input);
        let dec = lz4_flex::frame::FrameDecoder::new(chained);
        read_limited(dec, limit.saturating_add(1), out)?;
        return Ok(());
    }
    if u32::from_le_bytes(magic) != LZ4_LEGACY_MAGIC {
        return Err(Lz4Error::Bad("bad magic".into()));
    }
    // Legacy framing: [magic] then blocks of (le32 compressed size, data), each decoding to at
    // most 8 MiB; a magic may repeat between blocks. Linux appends the le32 decompressed size
    // after the last block: a size word followed by end of input is that trailer.
    let max_in = lz4_flex::block::get_maximum_output_size(LZ4_LEGACY_BLOCK);
    let mut block = Vec::new();
    loop {
        let mut word = [0u8; 4];
        match read_full(&mut input, &mut word)? {
            0 => break,
            4 => {}
            n => {
                return Err(Lz4Error::Bad(format!(
                    "truncated block header ({n} of 4 bytes)"
                )))
            }
        }
        let size = u32::from_le_bytes(word);
        if size == LZ4_LEGACY_MAGIC {
            continue;
        }
        let size = size as usize;
        if size == 0 || size > max_in {
            // Either the trailer (followed by nothing) or garbage.
            let mut probe = [0u8; 1];
            if read_full(&mut input, &mut probe)? == 0 && !out.is_empty() {
                break;
            }
            return Err(Lz4Error::Bad(format!("block size {size} is out of range")));
        }
        block.resize(size, 0);
        let got = read_full(&mut input, &mut block)?;
        if got == 0 && !out.is_empty() {
            break; // the size trailer
        }
        if got != size {
            return Err(Lz4Error::Bad(format!(
                "truncated block ({got} of {size} bytes)"
            )));
        }
        let start = out.len();
        let room = (limit.saturating_add(1)).saturating_sub(start as u64);
        if room == 0 {
            return Err(Lz4Error::TooLarge);
        }
        let want = LZ4_LEGACY_BLOCK.min(usize::try_from(room).unwrap_or(usize::MAX));
        out.resize(start + want, 0);
        let dst = out.get_mut(start..).unwrap_or_default();
        match lz4_flex::block::decompress_into(&block, dst) {
            Ok(n) => out.truncate(start + n),
            Err(e) => {
                if want < LZ4_LEGACY_BLOCK {
                    return Err(Lz4Error::TooLarge);
                }
                return Err(Lz4Error::Bad(e.to_string()));
            }
        }
        if out.len() as u64 > limit {
            return Err(Lz4Error::TooLarge);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn lz4_legacy(data: &[u8]) -> Vec<u8> {
        let mut out = LZ4_LEGACY_MAGIC.to_le_bytes().to_vec();
        for chunk in data.chunks(LZ4_LEGACY_BLOCK) {
            let c = lz4_flex::block::compress(chunk);
            out.extend_from_slice(&(c.len() as u32).to_le_bytes());
            out.extend_from_slice(&c);
        }
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out
    }

    fn all_formats(data: &[u8]) -> Vec<(Compression, Vec<u8>)> {
        let mut xz = Vec::new();
        liblzma::read::XzEncoder::new(data, 1)
            .read_to_end(&mut xz)
            .unwrap();
        let mut lzma = Vec::new();
        let opts = liblzma::stream::LzmaOptions::new_preset(1).unwrap();
        let stream = liblzma::stream::Stream::new_lzma_encoder(&opts).unwrap();
        liblzma::read::XzEncoder::new_stream(data, stream)
            .read_to_end(&mut lzma)
            .unwrap();
        let zst = zstd::encode_all(data, 3).unwrap();
        let mut bz = Vec::new();
        bzip2::read::BzEncoder::new(data, bzip2::Compression::fast())
            .read_to_end(&mut bz)
            .unwrap();
        let mut frame = lz4_flex::frame::FrameEncoder::new(Vec::new());
        frame.write_all(data).unwrap();
        vec![
            (Compression::Gzip, gz(data)),
            (Compression::Xz, xz),
            (Compression::Lzma, lzma),
            (Compression::Zstd, zst),
            (Compression::Bzip2, bz),
            (Compression::Lz4, lz4_legacy(data)),
            (Compression::Lz4, frame.finish().unwrap()),
        ]
    }

    #[test]
    fn every_format_round_trips_with_a_trailer() {
        let data = sample();
        for (fmt, mut packed) in all_formats(&data) {
            assert_eq!(Compression::detect(&packed), Some(fmt), "{fmt}");
            if fmt != Compression::Lz4 {
                // Linux appends the decompressed size to every payload.
                packed.extend_from_slice(&(data.len() as u32).to_le_bytes());
            }
            let out = decompress(fmt, &packed[..], packed.len() as u64, None, 1 << 30, "t")
                .unwrap_or_else(|e| panic!("{fmt}: {e}"));
            assert_eq!(out, data, "{fmt}");
        }
    }

    #[test]
    fn output_past_the_limit_is_refused() {
        let data = sample();
        for (fmt, packed) in all_formats(&data) {
            let limit = data.len() as u64 - 1;
            let err =
                decompress(fmt, &packed[..], packed.len() as u64, None, limit, "k").unwrap_err();
            assert!(
                matches!(err, Error::TooLarge { limit: l, .. } if l == limit),
                "{fmt}: {err}"
            );
            // Exactly at the limit is fine.
            let ok = decompress(
                fmt,
                &packed[..],
                packed.len() as u64,
                None,
                data.len() as u64,
                "k",
            );
            assert!(ok.is_ok(), "{fmt}");
        }
    }

    #[test]
    fn corrupt_payloads_fail_cleanly() {
        let data = sample();
        for (fmt, packed) in all_formats(&data) {
            for cut in [packed.len() / 2, 8] {
                let short = &packed[..cut];
                assert!(
                    decompress(fmt, short, short.len() as u64, None, 1 << 30, "k").is_err(),
                    "{fmt} cut at {cut}"
                );
            }
            let mut flipped = packed.clone();
            let mid = flipped.len() / 2;
            for b in &mut flipped[mid..mid + 16] {
                *b ^= 0x5a;
            }
            let r = decompress(fmt, &flipped[..], flipped.len() as u64, None, 1 << 30, "k");
            // Formats with checksums must notice; others must at least not return the original.
            if let Ok(out) = r {
                assert_ne!(out, data, "{fmt}");
            }
        }
    }

    #[test]
    fn lzo_is_named_and_refused() {
        let err = decompress(Compression::Lzo, &b"\x89LZO\0"[..], 5, None, 100, "k").unwrap_err();
        assert!(
            err.to_string().contains("lzo payloads are not supported"),
            "{err}"
        );
    }

    #[test]
    fn detect_unknown() {
        assert_eq!(Compression::detect(b"\x7fELF"), None);
        assert_eq!(Compression::detect(b""), None);
    }
}
