//! The decoder's error type.

use std::io;

/// Why a stream could not be decoded. Offsets count bytes of the compressed input from the
/// start of what was passed in.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the input failed.
    #[error("reading the compressed input at byte {offset}: {source}")]
    Io {
        /// Where the read was attempted.
        offset: u64,
        /// The reader's error.
        #[source]
        source: io::Error,
    },
    /// The input ended inside a structure.
    #[error("the compressed input ends at byte {offset}, inside the {what}")]
    Truncated {
        /// Where the input ended.
        offset: u64,
        /// The structure being read.
        what: &'static str,
    },
    /// The input is not the format's magic number.
    #[error("not an {format} stream: {reason}")]
    NotThisFormat {
        /// "xz" or "lzma".
        format: &'static str,
        /// What was found.
        reason: String,
    },
    /// A structure or the compressed data is invalid.
    #[error("corrupt {what} at byte {offset}: {reason}")]
    Corrupt {
        /// Where the problem was seen.
        offset: u64,
        /// The structure: "stream header", "block header", "LZMA2 chunk", ...
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A valid but unsupported feature (filter, check type).
    #[error("{what} is not supported (at byte {offset}){hint}")]
    Unsupported {
        /// Where it was declared.
        offset: u64,
        /// The feature, e.g. "filter 0x0a".
        what: String,
        /// Extra advice, empty or starting with "; ".
        hint: &'static str,
    },
    /// A block's integrity check does not match its decoded data.
    #[error("the {kind} check of the block ending at byte {offset} does not match its data")]
    CheckMismatch {
        /// End of the block's check field.
        offset: u64,
        /// "CRC32", "CRC64" or "SHA-256".
        kind: &'static str,
    },
    /// The output buffer could not be grown.
    #[error("cannot allocate a {bytes}-byte output buffer")]
    OutOfMemory {
        /// The size asked for.
        bytes: u64,
    },
    /// The output would exceed the caller's limit.
    #[error("the output would exceed the {limit}-byte limit")]
    TooLarge {
        /// The caller's limit.
        limit: u64,
    },
}

impl Error {
    pub(crate) fn corrupt(offset: u64, what: &'static str, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            offset,
            what,
            reason: reason.into(),
        }
    }
}
