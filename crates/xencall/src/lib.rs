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
//!
//! # How calls reach Xen
//! Each hypercall copies its argument struct (encoded by `xen-abi`) and every data buffer
//! it points at into hypercall buffers, writes those buffers' addresses into the struct's
//! guest handles, issues IOCTL_PRIVCMD_HYPERCALL, and copies everything back. One-page
//! buffers are pooled; larger ones are unmapped when the call returns.
//!
//! # Guest memory
//! `write_guest`, `zero_guest` and `read_guest` map at most [`BATCH_PAGES`] frames at a
//! time (mmap of the privcmd fd + IOCTL_PRIVCMD_MMAPBATCH_V2); a page that fails to map
//! fails the operation with its gfn and errno. Mapped guest memory can change under the
//! process's feet (the guest or Xen may write it); it is only ever copied in or out.
//!
//! # Grant table
//! `write_grant_entries` maps the shared grant frames with IOCTL_PRIVCMD_MMAP_RESOURCE
//! (`XENMEM_resource_grant_table`, id 0). When the kernel or Xen lacks resource mapping
//! (ENOTTY, EOPNOTSUPP or ENOSYS), it falls back to what older toolstacks do: place the
//! grant frame in the guest's physmap at the gfn above `XENMEM_maximum_gpfn` with
//! `XENMEM_add_to_physmap` (`XENMAPSPACE_grant_table`), map that gfn, write, and remove it
//! again with `XENMEM_remove_from_physmap`.
//!
//! # Loop devices
//! [`loopdev`] holds the four loop-device ioctls of rxl's native hotplug path
//! (`LOOP_CTL_GET_FREE`, `LOOP_CONFIGURE`, `LOOP_CLR_FD`, `LOOP_GET_STATUS64`) as safe
//! functions on open files; the `hostdev` crate decides when to use them.
//!
//! # Interface versions
//! [`XenHost::open`] reads `xen_version` and then finds the domctl and sysctl interface
//! versions by trying the known ones on harmless calls (getdomaininfo of dom0, physinfo):
//! Xen answers EACCES to a wrong version. A hypervisor that accepts none of them is
//! refused with a message listing the releases rxl knows (4.17 .. 4.22).

mod batch;
mod error;
mod host;
mod ioctl;
pub mod loopdev;
mod privcmd;
mod sys;

pub use batch::BATCH_PAGES;
pub use error::{XencallError, NO_XEN_MESSAGE};
pub use host::XenHost;
pub use privcmd::{ForeignMap, HypercallBuf, Privcmd, HYPERCALL_PATH, PRIVCMD_PATH};
