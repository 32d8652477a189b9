//! Xen hypercalls through Linux's privcmd driver: the real backend of
//! `xen_host::Hypervisor`.
//!
//! - [`Privcmd`]: /dev/xen/privcmd opened once; hypercall buffers from /dev/xen/hypercall
//!   (or locked, fork-private anonymous pages), foreign mappings via MMAPBATCH_V2 and
//!   resource mappings via MMAP_RESOURCE, all owned and unmapped on drop.
//! - [`XenHost`]: probes the Xen version and interface versions at open and implements
//!   every `Hypervisor` operation with the layouts of `xen-abi`.
//!
//! This is the only crate of rxl with `unsafe`; all of it sits behind safe types that
//! never hand raw addresses out.

mod batch;
mod error;
mod host;
mod ioctl;
mod privcmd;
mod sys;

pub use batch::BATCH_PAGES;
pub use error::{XencallError, NO_XEN_MESSAGE};
pub use host::XenHost;
pub use privcmd::{ForeignMap, HypercallBuf, Privcmd, HYPERCALL_PATH, PRIVCMD_PATH};
