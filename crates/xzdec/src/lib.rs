//! A single-call decoder for xz and legacy `.lzma` streams.
//!
//! The whole decompressed output is built in one `Vec<u8>`, and that buffer is also the LZ
//! dictionary: matches copy from bytes already written. Nothing else grows with the stream's
//! declared dictionary size, so decoding a stream made with a 32 MiB dictionary costs the
//! output plus a few KiB of probability tables and a 128 KiB input buffer.
//!
//! Supported:
//! - xz ([`decode_xz`]): stream header and footer, blocks (header sizes, filter flags,
//!   padding), the index (checked against the blocks decoded), checks none / CRC32 / CRC64 /
//!   SHA-256, the LZMA2 filter and the x86 BCJ filter in front of it. Optionally, concatenated
//!   streams and stream padding ([`Options::concatenated`]); by default only the first stream
//!   is decoded and whatever follows it is not read.
//! - legacy `.lzma` ([`decode_lzma`]): properties byte, dictionary size, known size or an end
//!   marker.
//!
//! The output never grows past [`Options::limit`]: a stream that would produce more fails
//! with [`Error::TooLarge`] before allocating past it.
#![forbid(unsafe_code)]

mod bcj;
mod check;
mod error;
mod input;
mod lzma;
mod lzma2;
mod xz;

pub use error::Error;

use std::io::Read;

/// Caller's settings for one decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// The most output bytes accepted; a stream producing more fails with
    /// [`Error::TooLarge`].
    pub limit: u64,
    /// Expected output size, used only to reserve the output buffer at once (capped at
    /// `limit` and at 1 GiB; untrusted). An exact hint means the buffer is never
    /// reallocated; without one it grows by half its size at a time.
    pub size_hint: Option<u64>,
    /// xz only: after the first stream, also decode stream padding and further streams up to
    /// the end of the input, as `xz -dc` does. Off by default: the input is then read only up
    /// to the end of the first stream.
    pub concatenated: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            limit: u64::MAX,
            size_hint: None,
            concatenated: false,
        }
    }
}

impl Options {
    /// Options with the given output limit and no hint.
    pub fn with_limit(limit: u64) -> Self {
        Options {
            limit,
            ..Options::default()
        }
    }
}

/// Decodes an xz stream read from `input`.
pub fn decode_xz<R: Read>(input: R, opts: Options) -> Result<Vec<u8>, Error> {
    let mut out = lzma::Output::new(&opts);
    xz::decode(input, &opts, &mut out)?;
    Ok(out.finish())
}

/// Decodes a legacy `.lzma` (LZMA_Alone) stream read from `input`.
pub fn decode_lzma<R: Read>(input: R, opts: Options) -> Result<Vec<u8>, Error> {
    let mut out = lzma::Output::new(&opts);
    lzma::decode_alone(input, &mut out)?;
    Ok(out.finish())
}
