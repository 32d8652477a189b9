//! The crate's error type.

use std::io;

use crate::decompress::Compression;

/// Everything that can go wrong while probing an image or planning a boot.
///
/// Every variant names the file (or the planning step) it is about, so the message alone tells
/// the user what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a file failed.
    #[error("{path}: {op}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What was being done (`"open"`, `"read the bzImage setup header"`, ...).
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The image is neither an ELF, a bzImage nor a gzip file.
    #[error("{path}: not an ELF or bzImage (starts with {head})")]
    UnknownFormat {
        /// The file.
        path: String,
        /// The first bytes in hex.
        head: String,
    },
    /// The bzImage setup header is malformed.
    #[error("{path}: bad bzImage: {reason}")]
    BzImage {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A compressed payload could not be decompressed.
    #[error("{path}: cannot decompress the {format} payload: {reason}")]
    Decompress {
        /// The file.
        path: String,
        /// The compression format.
        format: Compression,
        /// What the decoder said.
        reason: String,
    },
    /// A compressed payload decompresses to more than the limit.
    #[error(
        "{path}: the {format} payload decompresses to more than {limit} bytes \
         (the limit for a kernel image); the file is corrupt or not a kernel"
    )]
    TooLarge {
        /// The file.
        path: String,
        /// The compression format.
        format: Compression,
        /// The limit in bytes.
        limit: u64,
    },
    /// The ELF image is malformed.
    #[error("{path}: bad ELF: {reason}")]
    Elf {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A Xen ELF note is malformed.
    #[error("{path}: bad Xen ELF note: {reason}")]
    Note {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The image has no PVH entry point.
    #[error(
        "{path}: this kernel has no XEN_ELFNOTE_PHYS32_ENTRY: it cannot boot as PVH \
         (build it with CONFIG_PVH=y, or use type = \"pv\")"
    )]
    NoPhys32Entry {
        /// The file.
        path: String,
    },
    /// The PVH entry point is not inside any loaded segment.
    #[error(
        "{path}: the PVH entry point {entry:#x} (XEN_ELFNOTE_PHYS32_ENTRY) is outside \
         every PT_LOAD segment's physical range"
    )]
    EntryOutside {
        /// The file.
        path: String,
        /// The entry address.
        entry: u64,
    },
    /// The boot request itself is invalid (vCPU counts, memory sizes, command lines).
    #[error("boot request: {0}")]
    Request(String),
    /// The guest memory is too small for what must be loaded into it.
    #[error(
        "guest memory too small: {what}: the boot data ends at {need:#x} but RAM below the \
         MMIO hole ends at {have:#x} (maxmem = {memory_mib} MiB); give the guest at least \
         {need_mib} MiB"
    )]
    TooSmall {
        /// What does not fit.
        what: String,
        /// The first byte past it.
        need: u64,
        /// The first byte past usable RAM.
        have: u64,
        /// The guest's memory in MiB.
        memory_mib: u64,
        /// The memory the guest would need, in MiB.
        need_mib: u64,
    },
    /// Two regions of the layout overlap, or one lies where it must not.
    #[error("layout: {0}")]
    Layout(String),
    /// A firmware name could not be resolved to a file.
    #[error("firmware \"{name}\": not found (looked for {tried}); {hint}")]
    FirmwareNotFound {
        /// The firmware name.
        name: String,
        /// The paths tried, comma separated.
        tried: String,
        /// What to do.
        hint: String,
    },
}

impl Error {
    pub(crate) fn io(path: &str, op: &'static str, source: io::Error) -> Error {
        Error::Io {
            path: path.to_string(),
            op,
            source,
        }
    }

    pub(crate) fn elf(path: &str, reason: impl Into<String>) -> Error {
        Error::Elf {
            path: path.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn note(path: &str, reason: impl Into<String>) -> Error {
        Error::Note {
            path: path.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn bzimage(path: &str, reason: impl Into<String>) -> Error {
        Error::BzImage {
            path: path.to_string(),
            reason: reason.into(),
        }
    }
}
