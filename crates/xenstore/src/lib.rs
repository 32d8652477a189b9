//! A client for xenstore: the xs_wire protocol over xenstored's unix socket or the
//! kernel's xenbus device, implementing [`xen_host::Store`].
//!
//! ```no_run
//! use xen_host::{Store, TxId};
//! let xs = xenstore::XsClient::open()?;
//! xs.write(TxId::NONE, "/local/domain/3/name", b"guest")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`wire`] holds the message format on its own, for servers and tests.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod client;
mod conn;
mod error;
pub mod wire;

pub use client::{XsClient, DEVICE_PATHS, ENV_PATH, ENV_RUNDIR, SOCKET_PATHS};
pub use conn::Transport;
pub use error::XsError;
