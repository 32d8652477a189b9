//! Errors of the privcmd layer.

use xen_abi::AbiError;
use xen_host::{Errno, Error as HostError};

/// The message when /dev/xen/privcmd does not exist.
pub const NO_XEN_MESSAGE: &str =
    "no Xen hypervisor here (/dev/xen/privcmd is missing); use --sim DIR for a simulated host";

/// A failed privcmd operation.
#[derive(Debug, thiserror::Error)]
pub enum XencallError {
    /// /dev/xen/privcmd does not exist.
    #[error("{}", NO_XEN_MESSAGE)]
    NoXen,
    /// A device could not be opened.
    #[error("open {path}: {errno}{hint}")]
    Open {
        /// The device.
        path: &'static str,
        /// Why.
        errno: Errno,
        /// A hint (may be empty).
        hint: &'static str,
    },
    /// The hypervisor or the kernel refused an operation.
    #[error("{op}: {errno}{}", hint_suffix(.hint))]
    Os {
        /// The operation, with its domain and arguments.
        op: String,
        /// The errno.
        errno: Errno,
        /// What to do about it (may be empty).
        hint: String,
    },
    /// Some pages of a foreign mapping could not be mapped.
    #[error("{op}: gfn {first_gfn:#x}: {first_errno}{}", more_pages(*.failed))]
    Pages {
        /// The operation.
        op: String,
        /// The first failing gfn.
        first_gfn: u64,
        /// Its errno.
        first_errno: Errno,
        /// How many pages failed in all.
        failed: usize,
    },
    /// A reply that does not decode, or an unsupported interface.
    #[error("{op}: {source}")]
    Abi {
        /// The operation.
        op: String,
        /// What was wrong.
        #[source]
        source: AbiError,
    },
    /// Anything else.
    #[error("{op}: {message}")]
    Other {
        /// The operation.
        op: String,
        /// What went wrong.
        message: String,
    },
}

fn hint_suffix(hint: &str) -> String {
    if hint.is_empty() {
        String::new()
    } else {
        format!(": {hint}")
    }
}

fn more_pages(failed: usize) -> String {
    if failed > 1 {
        format!(" ({} pages failed in all)", failed)
    } else {
        String::new()
    }
}

impl XencallError {
    /// An errno failure of `op`.
    pub fn os(op: impl Into<String>, errno: Errno) -> Self {
        XencallError::Os {
            op: op.into(),
            errno,
            hint: String::new(),
        }
    }

    /// An errno failure of `op` with a hint for the user.
    pub fn os_hint(op: impl Into<String>, errno: Errno, hint: impl Into<String>) -> Self {
        XencallError::Os {
            op: op.into(),
            errno,
            hint: hint.into(),
        }
    }

    /// The errno, if there is one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            XencallError::Open { errno, .. } | XencallError::Os { errno, .. } => Some(*errno),
            XencallError::Pages { first_errno, .. } => Some(*first_errno),
            XencallError::NoXen => Some(Errno::ENOENT),
            XencallError::Abi { .. } | XencallError::Other { .. } => None,
        }
    }
}

impl From<XencallError> for HostError {
    fn from(e: XencallError) -> HostError {
        match e {
            XencallError::Os { op, errno, hint } => HostError::os_detail(op, errno, hint),
            XencallError::Open { path, errno, hint } => {
                HostError::os_detail(format!("open {path}"), errno, hint.trim_start_matches(": "))
            }
            XencallError::Pages {
                op,
                first_gfn,
                first_errno,
                failed,
            } => HostError::os_detail(
                op,
                first_errno,
                format!("gfn {first_gfn:#x}{}", more_pages(failed)),
            ),
            XencallError::NoXen => HostError::other("open /dev/xen/privcmd", NO_XEN_MESSAGE),
            XencallError::Abi { op, source } => HostError::other(op, source.to_string()),
            XencallError::Other { op, message } => HostError::other(op, message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_op_and_errno() {
        let e = XencallError::os("populate_physmap dom 3 order 9", Errno::ENOMEM);
        assert_eq!(
            e.to_string(),
            "populate_physmap dom 3 order 9: ENOMEM (out of memory)"
        );
        let h: HostError = e.into();
        assert_eq!(
            h.to_string(),
            "populate_physmap dom 3 order 9: ENOMEM (out of memory)"
        );
        assert_eq!(h.errno(), Some(Errno::ENOMEM));
    }

    #[test]
    fn no_xen_message_is_exact() {
        assert_eq!(
            XencallError::NoXen.to_string(),
            "no Xen hypervisor here (/dev/xen/privcmd is missing); use --sim DIR for a simulated host"
        );
    }

    #[test]
    fn page_errors_name_the_gfn() {
        let e = XencallError::Pages {
            op: "map dom 2".into(),
            first_gfn: 0x1234,
            first_errno: Errno::EFAULT,
            failed: 3,
        };
        assert_eq!(
            e.to_string(),
            "map dom 2: gfn 0x1234: EFAULT (bad address) (3 pages failed in all)"
        );
        let h: HostError = e.into();
        assert_eq!(h.errno(), Some(Errno::EFAULT));
        assert!(h.to_string().contains("gfn 0x1234"));
    }
}
