//! Xen's public ABI as rxl uses it: `#[repr(C)]` structs and constants for domctl, sysctl,
//! memory_op, hvm_op, event channels, scheduler ops, grant entries and HVM save records,
//! with layouts pinned by size asserts and by a C layout test against the installed
//! 4.17 headers.
//!
//! Every struct implements [`Wire`]: `to_bytes` / `decode` write and read each field
//! little-endian at its C offset, so no byte view needs `unsafe`. Guest handles (pointers
//! Xen follows) are plain `u64` addresses here; only `xencall` fills them in.
//!
//! Releases 4.17 .. 4.22 are covered; [`XenAbi`] holds the interface versions a host uses
//! and selects the createdomain layout for them.

#![forbid(unsafe_code)]

pub mod domctl;
pub mod hvm;
pub mod memory;
pub mod misc;
pub mod pv;
pub mod sysctl;
pub mod version;
pub mod wire;

pub use version::{CreateDomainLayout, XenAbi};
pub use wire::Wire;

/// A malformed or unsupported ABI value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AbiError {
    /// Too few bytes for a struct.
    #[error("{what}: need {need} bytes, got {got}")]
    Short {
        /// The struct.
        what: &'static str,
        /// Its size.
        need: usize,
        /// Bytes available.
        got: usize,
    },
    /// Bytes that do not form a valid value.
    #[error("{what}: {detail}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// An interface version rxl does not know.
    #[error("unsupported Xen {what} interface {found}; rxl knows {known}")]
    UnknownInterface {
        /// `"domctl"` or `"sysctl"`.
        what: &'static str,
        /// The version found.
        found: String,
        /// The releases rxl knows.
        known: String,
    },
}
