//! `XEN_SYSCTL_*` (public/sysctl.h): the `xen_sysctl` envelope, physinfo and
//! getdomaininfolist.
//!
//! Layouts are the same in every release 4.17 .. 4.22 (checked against the headers at each
//! tag): `xen_sysctl` 136 bytes with the union @8, `xen_sysctl_physinfo` 112,
//! `xen_sysctl_getdomaininfolist` 24. Only the interface number moves (0x15 up to 4.20,
//! 0x16 from 4.21).

use crate::wire::{abi_struct, Wire};
use crate::AbiError;

/// `XEN_SYSCTL_*` command numbers.
pub mod cmd {
    /// `XEN_SYSCTL_physinfo`.
    pub const PHYSINFO: u32 = 3;
    /// `XEN_SYSCTL_getdomaininfolist`.
    pub const GETDOMAININFOLIST: u32 = 6;
}

/// Size of the `xen_sysctl` union.
pub const SYSCTL_PAYLOAD_SIZE: usize = 128;

abi_struct! {
    /// `struct xen_sysctl`.
    pub struct Sysctl = ("struct xen_sysctl", 136) {
        /// `XEN_SYSCTL_*`.
        pub cmd: u32,
        /// `XEN_SYSCTL_INTERFACE_VERSION` of the hypervisor.
        pub interface_version: u32,
        /// The union.
        pub u: [u8; SYSCTL_PAYLOAD_SIZE],
    }
}

impl Sysctl {
    /// A sysctl for `cmd` with `payload` at the start of the union.
    pub fn new<P: Wire>(cmd: u32, interface_version: u32, payload: &P) -> Sysctl {
        const { assert!(P::SIZE <= SYSCTL_PAYLOAD_SIZE) };
        let mut u = [0u8; SYSCTL_PAYLOAD_SIZE];
        // The payload fits (asserted at compile time), so encoding cannot fail.
        let _ = payload.encode_into(&mut u);
        Sysctl {
            cmd,
            interface_version,
            u,
        }
    }

    /// Read the union as payload `P`.
    pub fn payload<P: Wire>(&self) -> Result<P, AbiError> {
        P::decode(&self.u)
    }
}

/// `XEN_SYSCTL_PHYSCAP_*` bits of [`PhysInfo::capabilities`].
pub mod physcap {
    /// HVM guests.
    pub const HVM: u32 = 1 << 0;
    /// PV guests.
    pub const PV: u32 = 1 << 1;
    /// Direct I/O.
    pub const DIRECTIO: u32 = 1 << 2;
    /// Hardware-assisted paging.
    pub const HAP: u32 = 1 << 3;
    /// Shadow paging.
    pub const SHADOW: u32 = 1 << 4;
    /// IOMMU shares the HAP page tables.
    pub const IOMMU_HAP_PT_SHARE: u32 = 1 << 5;
    /// vmtrace.
    pub const VMTRACE: u32 = 1 << 6;
    /// vPMU.
    pub const VPMU: u32 = 1 << 7;
    /// Grant table v1.
    pub const GNTTAB_V1: u32 = 1 << 8;
    /// Grant table v2.
    pub const GNTTAB_V2: u32 = 1 << 9;
}

abi_struct! {
    /// `struct xen_sysctl_physinfo`.
    pub struct PhysInfo = ("struct xen_sysctl_physinfo", 112) {
        /// Threads per core.
        pub threads_per_core: u32,
        /// Cores per socket.
        pub cores_per_socket: u32,
        /// Online CPUs.
        pub nr_cpus: u32,
        /// Highest CPU id.
        pub max_cpu_id: u32,
        /// Online nodes.
        pub nr_nodes: u32,
        /// Highest node id.
        pub max_node_id: u32,
        /// CPU kHz.
        pub cpu_khz: u32,
        /// `XEN_SYSCTL_PHYSCAP_*`.
        pub capabilities: u32,
        /// Arch capabilities.
        pub arch_capabilities: u32,
        /// Padding.
        pub pad: u32,
        /// Host pages.
        pub total_pages: u64,
        /// Free pages.
        pub free_pages: u64,
        /// Pages to scrub.
        pub scrub_pages: u64,
        /// Claimed pages.
        pub outstanding_pages: u64,
        /// Highest MFN.
        pub max_mfn: u64,
        /// CPUID feature words.
        pub hw_cap: [u32; 8],
    }
}

abi_struct! {
    /// `struct xen_sysctl_getdomaininfolist`.
    pub struct GetDomainInfoList = ("struct xen_sysctl_getdomaininfolist", 24) {
        /// First domain id to report.
        pub first_domain: u16,
        /// Padding.
        pub pad0: u16,
        /// Capacity of `buffer` in records.
        pub max_domains: u32,
        /// Guest handle: address of an array of `xen_domctl_getdomaininfo`.
        pub buffer: u64,
        /// Records written.
        pub num_domains: u32,
        /// Padding.
        pub pad1: u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_union_at_8() {
        let s = Sysctl::new(
            cmd::GETDOMAININFOLIST,
            0x15,
            &GetDomainInfoList {
                first_domain: 4,
                max_domains: 64,
                buffer: 0x1122_3344_5566_7788,
                ..Default::default()
            },
        );
        let b = s.to_bytes();
        assert_eq!(b.len(), 136);
        assert_eq!(&b[0..4], &6u32.to_le_bytes());
        assert_eq!(&b[8..10], &4u16.to_le_bytes());
        assert_eq!(&b[12..16], &64u32.to_le_bytes());
        assert_eq!(&b[16..24], &0x1122_3344_5566_7788u64.to_le_bytes());
    }
}
