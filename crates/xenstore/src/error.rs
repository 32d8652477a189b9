//! The crate's error type and its mapping onto [`xen_host::Error`].

use std::path::PathBuf;

use xen_host::Errno;

/// What went wrong talking to xenstored.
#[derive(Debug, thiserror::Error)]
pub enum XsError {
    /// xenstored refused the request with an `XS_ERROR` reply.
    #[error("xenstored replied {name}")]
    Daemon {
        /// The errno (`EIO` when xenstored sent a name rxl does not know).
        errno: Errno,
        /// The name as sent, e.g. `"EACCES"`.
        name: String,
    },
    /// A path was refused before it was sent.
    #[error("invalid xenstore path {path:?}: {reason}")]
    InvalidPath {
        /// The path (shortened when long).
        path: String,
        /// Why.
        reason: String,
    },
    /// A value does not fit in one message.
    #[error(
        "value of {value_len} bytes for {path} does not fit in one xenstore message \
         (at most {max} bytes with this path)"
    )]
    ValueTooLarge {
        /// The path.
        path: String,
        /// The value's length.
        value_len: usize,
        /// The longest value that fits with this path.
        max: usize,
    },
    /// Some other argument was refused before it was sent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A request payload is over `XENSTORE_PAYLOAD_MAX`.
    #[error("request payload of {len} bytes is over XENSTORE_PAYLOAD_MAX (4096)")]
    RequestTooLarge {
        /// The payload length.
        len: usize,
    },
    /// xenstored announced a payload over `XENSTORE_PAYLOAD_MAX`.
    #[error("xenstored sent a message of {len} bytes, over XENSTORE_PAYLOAD_MAX (4096)")]
    ReplyTooLarge {
        /// The announced length.
        len: u32,
    },
    /// xenstored closed the connection.
    #[error("the connection was closed by xenstored (is it still running?)")]
    Closed,
    /// No reply within the configured reply timeout.
    #[error("no reply from xenstored within {0:?}")]
    Timeout(std::time::Duration),
    /// A read, write or poll on the connection failed.
    #[error("{what} on {}", path.display())]
    Io {
        /// Which step (`"write"`, `"read"`, `"poll"`).
        what: &'static str,
        /// The socket or device.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// xenstored sent something the protocol does not allow.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// An earlier failure left the connection out of step; it has been closed.
    #[error(
        "the connection to {} was closed after an earlier failure ({reason}); open a new client",
        path.display()
    )]
    Broken {
        /// The socket or device.
        path: PathBuf,
        /// The earlier failure.
        reason: String,
    },
    /// No xenstore could be opened.
    #[error("cannot connect to xenstore: {tried}")]
    Open {
        /// Each path tried and why it failed.
        tried: String,
        /// The last failure.
        #[source]
        source: std::io::Error,
    },
}

impl XsError {
    /// The errno this failure stands for, when there is one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            XsError::Daemon { errno, .. } => Some(*errno),
            XsError::InvalidPath { .. } | XsError::InvalidArgument(_) => Some(Errno::EINVAL),
            XsError::ValueTooLarge { .. } | XsError::RequestTooLarge { .. } => Some(Errno::E2BIG),
            XsError::Closed | XsError::Broken { .. } => Some(Errno::ECONNRESET),
            XsError::Timeout(_) => Some(Errno::ETIMEDOUT),
            XsError::Io { source, .. } | XsError::Open { source, .. } => {
                Some(Errno::from_io(source))
            }
            XsError::ReplyTooLarge { .. } | XsError::Protocol(_) => None,
        }
    }

    /// The failure as a host error of operation `op` (e.g. `"xs_read /local/domain/3/name"`).
    pub fn into_host(self, op: impl Into<String>) -> xen_host::Error {
        let op = op.into();
        let mut detail = match &self {
            // The errno already says it all.
            XsError::Daemon { errno, name } if errno.name() == Some(name.as_str()) => String::new(),
            _ => self.to_string(),
        };
        let mut cause = std::error::Error::source(&self);
        while let Some(err) = cause {
            detail.push_str(": ");
            detail.push_str(&err.to_string());
            cause = err.source();
        }
        match self.errno() {
            Some(errno) => xen_host::Error::os_detail(op, errno, detail),
            None => xen_host::Error::other(op, detail),
        }
    }
}

impl From<XsError> for xen_host::Error {
    /// The failure as a host error of operation `"xenstore"`; prefer
    /// [`XsError::into_host`] to name the operation.
    fn from(err: XsError) -> xen_host::Error {
        err.into_host("xenstore")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_errors_keep_errno_and_cause() {
        let e = XsError::Daemon {
            errno: Errno::EACCES,
            name: "EACCES".into(),
        }
        .into_host("xs_read /a");
        assert_eq!(e.to_string(), "xs_read /a: EACCES (permission denied)");

        let e = XsError::Io {
            what: "read",
            path: "/run/xenstored/socket".into(),
            source: std::io::Error::from_raw_os_error(Errno::EBADF.0),
        }
        .into_host("xs_write /a");
        assert_eq!(e.errno(), Some(Errno::EBADF));
        let text = e.to_string();
        assert!(text.starts_with("xs_write /a: EBADF"), "{text}");
        assert!(text.contains("read on /run/xenstored/socket: "), "{text}");

        let e: xen_host::Error = XsError::Protocol("bad".into()).into();
        assert_eq!(e.errno(), None);
        assert_eq!(e.to_string(), "xenstore: protocol violation: bad");

        let e = XsError::Closed.into_host("xs_rm /a");
        assert_eq!(e.errno(), Some(Errno::ECONNRESET));
    }
}
