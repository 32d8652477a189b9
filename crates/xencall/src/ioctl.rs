//! Linux privcmd UAPI (include/uapi/xen/privcmd.h): argument structs and ioctl numbers.
//!
//! The numbers are `_IOC(_IOC_NONE, 'P', nr, sizeof(arg))`, computed here from the
//! structs' sizes. Pointers are `u64` (x86-64 only).

use std::mem::size_of;

/// `_IOC(dir, type, nr, size)` as Linux's asm-generic/ioctl.h builds it.
pub(crate) const fn ioc(dir: u64, kind: u8, nr: u8, size: usize) -> u64 {
    const NRSHIFT: u64 = 0;
    const TYPESHIFT: u64 = 8;
    const SIZESHIFT: u64 = 16;
    const DIRSHIFT: u64 = 30;
    (dir << DIRSHIFT)
        | ((size as u64) << SIZESHIFT)
        | ((kind as u64) << TYPESHIFT)
        | ((nr as u64) << NRSHIFT)
}

/// `_IOC_NONE`.
pub(crate) const IOC_NONE: u64 = 0;

/// `struct privcmd_hypercall`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PrivcmdHypercall {
    pub op: u64,
    pub arg: [u64; 5],
}

/// `struct privcmd_mmapbatch_v2`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PrivcmdMmapBatchV2 {
    /// Pages.
    pub num: u32,
    /// Target domain.
    pub dom: u16,
    pub _pad: u16,
    /// Start of the privcmd mapping.
    pub addr: u64,
    /// `const xen_pfn_t *`: the gfns.
    pub arr: u64,
    /// `int *`: per-page errors out.
    pub err: u64,
}

/// `struct privcmd_dm_op` (only its size is used, for the ioctl number test).
#[cfg(test)]
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PrivcmdDmOp {
    pub dom: u16,
    pub num: u16,
    pub _pad: u32,
    pub ubufs: u64,
}

/// `struct privcmd_mmap_resource`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PrivcmdMmapResource {
    pub dom: u16,
    pub _pad: u16,
    /// `XENMEM_resource_*`.
    pub kind: u32,
    pub id: u32,
    /// First frame.
    pub idx: u32,
    /// Frames.
    pub num: u64,
    /// Start of the privcmd mapping.
    pub addr: u64,
}

const _: () = assert!(size_of::<PrivcmdHypercall>() == 48);
const _: () = assert!(size_of::<PrivcmdMmapBatchV2>() == 32);
#[cfg(test)]
const _: () = assert!(size_of::<PrivcmdDmOp>() == 16);
const _: () = assert!(size_of::<PrivcmdMmapResource>() == 32);

/// `IOCTL_PRIVCMD_HYPERCALL`.
pub(crate) const IOCTL_PRIVCMD_HYPERCALL: u64 =
    ioc(IOC_NONE, b'P', 0, size_of::<PrivcmdHypercall>());
/// `IOCTL_PRIVCMD_MMAPBATCH_V2`.
pub(crate) const IOCTL_PRIVCMD_MMAPBATCH_V2: u64 =
    ioc(IOC_NONE, b'P', 4, size_of::<PrivcmdMmapBatchV2>());
/// `IOCTL_PRIVCMD_DM_OP`.
#[cfg(test)]
pub(crate) const IOCTL_PRIVCMD_DM_OP: u64 = ioc(IOC_NONE, b'P', 5, size_of::<PrivcmdDmOp>());
/// `IOCTL_PRIVCMD_RESTRICT` (argument: a `domid_t`).
#[cfg(test)]
pub(crate) const IOCTL_PRIVCMD_RESTRICT: u64 = ioc(IOC_NONE, b'P', 6, size_of::<u16>());
/// `IOCTL_PRIVCMD_MMAP_RESOURCE`.
pub(crate) const IOCTL_PRIVCMD_MMAP_RESOURCE: u64 =
    ioc(IOC_NONE, b'P', 7, size_of::<PrivcmdMmapResource>());

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn ioctl_numbers_match_linux() {
        assert_eq!(IOCTL_PRIVCMD_HYPERCALL, 0x0030_5000);
        assert_eq!(IOCTL_PRIVCMD_MMAPBATCH_V2, 0x0020_5004);
        assert_eq!(IOCTL_PRIVCMD_DM_OP, 0x0010_5005);
        assert_eq!(IOCTL_PRIVCMD_RESTRICT, 0x0002_5006);
        assert_eq!(IOCTL_PRIVCMD_MMAP_RESOURCE, 0x0020_5007);
        // A direction bit lands at bit 30.
        assert_eq!(ioc(1, b'P', 0, 0), 0x4000_5000);
    }

    #[test]
    fn struct_offsets_match_linux() {
        assert_eq!(offset_of!(PrivcmdMmapBatchV2, dom), 4);
        assert_eq!(offset_of!(PrivcmdMmapBatchV2, addr), 8);
        assert_eq!(offset_of!(PrivcmdMmapBatchV2, arr), 16);
        assert_eq!(offset_of!(PrivcmdMmapBatchV2, err), 24);
        assert_eq!(offset_of!(PrivcmdMmapResource, kind), 4);
        assert_eq!(offset_of!(PrivcmdMmapResource, id), 8);
        assert_eq!(offset_of!(PrivcmdMmapResource, idx), 12);
        assert_eq!(offset_of!(PrivcmdMmapResource, num), 16);
        assert_eq!(offset_of!(PrivcmdMmapResource, addr), 24);
        assert_eq!(offset_of!(PrivcmdHypercall, arg), 8);
    }
}
