//! `XEN_DOMCTL_*` (public/domctl.h): the `xen_domctl` envelope and the payloads rxl uses.
//!
//! Layouts per release (x86-64), checked by hand against the public headers at each tag
//! (4.17 is also checked by the C layout test against /usr/include/xen):
//!
//! | struct | 4.17 (0x15) | 4.18 (0x16) | 4.19–4.21 (0x17) | 4.22 (0x18) |
//! |---|---|---|---|---|
//! | `xen_domctl` | 144, union @16 | same | same | same |
//! | `xen_domctl_createdomain` | 64, arch @56 | 64, arch @56 | 68: `altp2m_opts` u32 @48, vmtrace @52, cpupool @56, arch @60 | 68: `altp2m {u16 opts; u16 nr}` @48, rest as 4.19 |
//! | `xen_domctl_getdomaininfo` | 112 | 112 | 112 | 112 |
//! | `max_vcpus` / `max_mem` / `hvmcontext` / `tsc_info` / `paging_mempool` | 4 / 8 / 16 / 24 / 8 | same | same | same |
//! | `vcpucontext` / `hypercall_init` / `address_size` / `sendtrigger` | 16 / 8 / 4 / 8 | same | same | same |
//!
//! Command numbers used here are the same in every release 4.17 .. 4.22.

use crate::wire::{abi_struct, Wire};
use crate::AbiError;

/// `XEN_DOMCTL_*` command numbers.
pub mod cmd {
    /// `XEN_DOMCTL_createdomain`.
    pub const CREATEDOMAIN: u32 = 1;
    /// `XEN_DOMCTL_destroydomain`.
    pub const DESTROYDOMAIN: u32 = 2;
    /// `XEN_DOMCTL_pausedomain`.
    pub const PAUSEDOMAIN: u32 = 3;
    /// `XEN_DOMCTL_unpausedomain`.
    pub const UNPAUSEDOMAIN: u32 = 4;
    /// `XEN_DOMCTL_getdomaininfo`.
    pub const GETDOMAININFO: u32 = 5;
    /// `XEN_DOMCTL_max_mem`.
    pub const MAX_MEM: u32 = 11;
    /// `XEN_DOMCTL_setvcpucontext`.
    pub const SETVCPUCONTEXT: u32 = 12;
    /// `XEN_DOMCTL_max_vcpus`.
    pub const MAX_VCPUS: u32 = 15;
    /// `XEN_DOMCTL_hypercall_init`.
    pub const HYPERCALL_INIT: u32 = 22;
    /// `XEN_DOMCTL_sendtrigger`.
    pub const SENDTRIGGER: u32 = 28;
    /// `XEN_DOMCTL_gethvmcontext`.
    pub const GETHVMCONTEXT: u32 = 33;
    /// `XEN_DOMCTL_sethvmcontext`.
    pub const SETHVMCONTEXT: u32 = 34;
    /// `XEN_DOMCTL_set_address_size`.
    pub const SET_ADDRESS_SIZE: u32 = 35;
    /// `XEN_DOMCTL_settscinfo`.
    pub const SETTSCINFO: u32 = 60;
    /// `XEN_DOMCTL_get_paging_mempool_size`.
    pub const GET_PAGING_MEMPOOL_SIZE: u32 = 85;
    /// `XEN_DOMCTL_set_paging_mempool_size`.
    pub const SET_PAGING_MEMPOOL_SIZE: u32 = 86;
}

/// Size of the `xen_domctl` union.
pub const DOMCTL_PAYLOAD_SIZE: usize = 128;

abi_struct! {
    /// `struct xen_domctl`: a command, the interface version, a domain and a 128-byte
    /// union holding the command's payload.
    pub struct Domctl = ("struct xen_domctl", 144) {
        /// `XEN_DOMCTL_*`.
        pub cmd: u32,
        /// `XEN_DOMCTL_INTERFACE_VERSION` of the hypervisor.
        pub interface_version: u32,
        /// The target domain.
        pub domain: u16,
        /// Padding.
        pub pad: [u16; 3],
        /// The union.
        pub u: [u8; DOMCTL_PAYLOAD_SIZE],
    }
}

impl Domctl {
    /// A domctl for `cmd` on `domain` with `payload` at the start of the union.
    pub fn new<P: Wire>(cmd: u32, interface_version: u32, domain: u16, payload: &P) -> Domctl {
        const { assert!(P::SIZE <= DOMCTL_PAYLOAD_SIZE) };
        let mut u = [0u8; DOMCTL_PAYLOAD_SIZE];
        // The payload fits (asserted at compile time), so encoding cannot fail.
        let _ = payload.encode_into(&mut u);
        Domctl {
            cmd,
            interface_version,
            domain,
            pad: [0; 3],
            u,
        }
    }

    /// A domctl without payload (pause, unpause, destroy).
    pub fn bare(cmd: u32, interface_version: u32, domain: u16) -> Domctl {
        Domctl {
            cmd,
            interface_version,
            domain,
            pad: [0; 3],
            u: [0; DOMCTL_PAYLOAD_SIZE],
        }
    }

    /// Read the union as payload `P` (after Xen wrote its answer).
    pub fn payload<P: Wire>(&self) -> Result<P, AbiError> {
        P::decode(&self.u)
    }
}

abi_struct! {
    /// `struct xen_domctl_createdomain` as of 4.17 and 4.18 (interfaces 0x15, 0x16).
    pub struct CreateDomainV417 = ("struct xen_domctl_createdomain", 64) {
        /// XSM label.
        pub ssidref: u32,
        /// The domain handle (uuid).
        pub handle: [u8; 16],
        /// `XEN_DOMCTL_CDF_*`.
        pub flags: u32,
        /// `XEN_DOMCTL_IOMMU_*`.
        pub iommu_opts: u32,
        /// vCPU limit.
        pub max_vcpus: u32,
        /// Highest event channel port.
        pub max_evtchn_port: u32,
        /// Grant frames (< 0: default).
        pub max_grant_frames: i32,
        /// Maptrack frames (< 0: default).
        pub max_maptrack_frames: i32,
        /// Grant version in the low 4 bits.
        pub grant_opts: u32,
        /// Per-vCPU trace buffer bytes.
        pub vmtrace_size: u32,
        /// CPU pool.
        pub cpupool_id: u32,
        /// `arch.emulation_flags` (`XEN_X86_EMU_*`).
        pub emulation_flags: u32,
        /// `arch.misc_flags` (`XEN_X86_MSR_RELAXED`).
        pub misc_flags: u32,
    }
}

abi_struct! {
    /// `struct xen_domctl_createdomain` from 4.19 (interfaces 0x17, 0x18): `altp2m_opts`
    /// inserted after `grant_opts` (in 4.22 it is `struct { u16 opts; u16 nr; }`: the
    /// same four bytes, `opts` in the low half).
    pub struct CreateDomainV419 = ("struct xen_domctl_createdomain (4.19+)", 68) {
        /// XSM label.
        pub ssidref: u32,
        /// The domain handle (uuid).
        pub handle: [u8; 16],
        /// `XEN_DOMCTL_CDF_*`.
        pub flags: u32,
        /// `XEN_DOMCTL_IOMMU_*`.
        pub iommu_opts: u32,
        /// vCPU limit.
        pub max_vcpus: u32,
        /// Highest event channel port.
        pub max_evtchn_port: u32,
        /// Grant frames (< 0: default).
        pub max_grant_frames: i32,
        /// Maptrack frames (< 0: default).
        pub max_maptrack_frames: i32,
        /// Grant version in the low 4 bits.
        pub grant_opts: u32,
        /// altp2m mode (0: none).
        pub altp2m_opts: u32,
        /// Per-vCPU trace buffer bytes.
        pub vmtrace_size: u32,
        /// CPU pool.
        pub cpupool_id: u32,
        /// `arch.emulation_flags` (`XEN_X86_EMU_*`).
        pub emulation_flags: u32,
        /// `arch.misc_flags`.
        pub misc_flags: u32,
    }
}

/// `XEN_DOMINF_*` bits of [`GetDomainInfo::flags`].
pub mod dominf {
    /// Being destroyed.
    pub const DYING: u32 = 1 << 0;
    /// HVM guest.
    pub const HVM_GUEST: u32 = 1 << 1;
    /// Shut down.
    pub const SHUTDOWN: u32 = 1 << 2;
    /// Paused by the toolstack.
    pub const PAUSED: u32 = 1 << 3;
    /// Blocked.
    pub const BLOCKED: u32 = 1 << 4;
    /// Running.
    pub const RUNNING: u32 = 1 << 5;
    /// Being debugged.
    pub const DEBUGGED: u32 = 1 << 6;
    /// Xenstore domain.
    pub const XS_DOMAIN: u32 = 1 << 7;
    /// Uses HAP.
    pub const HAP: u32 = 1 << 8;
    /// Shift of the shutdown code.
    pub const SHUTDOWN_SHIFT: u32 = 16;
    /// Mask of the shutdown code (after shifting).
    pub const SHUTDOWN_MASK: u32 = 0xff;
}

abi_struct! {
    /// `struct xen_domctl_getdomaininfo` (also the element of sysctl getdomaininfolist).
    pub struct GetDomainInfo = ("struct xen_domctl_getdomaininfo", 112) {
        /// The domain this record describes.
        pub domain: u16,
        /// Padding.
        pub pad1: u16,
        /// `XEN_DOMINF_*` bits and the shutdown code.
        pub flags: u32,
        /// Pages allocated.
        pub tot_pages: u64,
        /// Page limit.
        pub max_pages: u64,
        /// Claimed pages.
        pub outstanding_pages: u64,
        /// Shared pages.
        pub shr_pages: u64,
        /// Paged-out pages.
        pub paged_pages: u64,
        /// GMFN of shared_info.
        pub shared_info_frame: u64,
        /// CPU time in ns.
        pub cpu_time: u64,
        /// Online vCPUs.
        pub nr_online_vcpus: u32,
        /// Highest vCPU id.
        pub max_vcpu_id: u32,
        /// XSM label.
        pub ssidref: u32,
        /// Handle.
        pub handle: [u8; 16],
        /// CPU pool.
        pub cpupool: u32,
        /// Guest physical address bits.
        pub gpaddr_bits: u8,
        /// Padding.
        pub pad2: [u8; 7],
        /// `arch_config.emulation_flags`.
        pub emulation_flags: u32,
        /// `arch_config.misc_flags`.
        pub misc_flags: u32,
    }
}

impl GetDomainInfo {
    /// The shutdown code packed in `flags`.
    pub fn shutdown_code(&self) -> u32 {
        (self.flags >> dominf::SHUTDOWN_SHIFT) & dominf::SHUTDOWN_MASK
    }
}

abi_struct! {
    /// `struct xen_domctl_max_vcpus`.
    pub struct MaxVcpus = ("struct xen_domctl_max_vcpus", 4) {
        /// vCPU count.
        pub max: u32,
    }
}

/// `XEN_DOMCTL_SENDTRIGGER_*`: what [`SendTrigger::trigger`] injects.
pub mod trigger {
    /// A non-maskable interrupt.
    pub const NMI: u32 = 0;
    /// A platform reset (the ACPI reset of an HVM guest).
    pub const RESET: u32 = 1;
    /// An INIT IPI.
    pub const INIT: u32 = 2;
    /// The ACPI power button.
    pub const POWER: u32 = 3;
    /// The ACPI sleep button.
    pub const SLEEP: u32 = 4;
}

abi_struct! {
    /// `struct xen_domctl_sendtrigger`.
    pub struct SendTrigger = ("struct xen_domctl_sendtrigger", 8) {
        /// `XEN_DOMCTL_SENDTRIGGER_*` ([`trigger`]).
        pub trigger: u32,
        /// The vCPU (NMI and INIT).
        pub vcpu: u32,
    }
}

abi_struct! {
    /// `struct xen_domctl_max_mem`.
    pub struct MaxMem = ("struct xen_domctl_max_mem", 8) {
        /// Limit in KiB.
        pub max_memkb: u64,
    }
}

abi_struct! {
    /// `struct xen_domctl_hvmcontext` (get and set).
    pub struct HvmContext = ("struct xen_domctl_hvmcontext", 16) {
        /// Buffer size in; bytes filled out. With a null buffer, get returns the size
        /// needed.
        pub size: u32,
        /// Padding.
        pub pad: u32,
        /// Guest handle: the buffer's address in hypercall-safe memory.
        pub buffer: u64,
    }
}

abi_struct! {
    /// `struct xen_domctl_tsc_info`.
    pub struct TscInfo = ("struct xen_domctl_tsc_info", 24) {
        /// `TSC_MODE_*`.
        pub tsc_mode: u32,
        /// Guest TSC kHz (0: host's).
        pub gtsc_khz: u32,
        /// Incarnation.
        pub incarnation: u32,
        /// Padding.
        pub pad: u32,
        /// Elapsed ns.
        pub elapsed_nsec: u64,
    }
}

abi_struct! {
    /// `struct xen_domctl_paging_mempool`.
    pub struct PagingMempool = ("struct xen_domctl_paging_mempool", 8) {
        /// Pool size in bytes.
        pub size: u64,
    }
}

abi_struct! {
    /// `struct xen_domctl_vcpucontext` (set and get).
    pub struct VcpuContext = ("struct xen_domctl_vcpucontext", 16) {
        /// The vCPU.
        pub vcpu: u32,
        /// Padding (the handle is 64-bit aligned).
        pub pad: u32,
        /// Guest handle: address of a `vcpu_guest_context`
        /// ([`crate::pv::VcpuGuestContextX86_64`] for a 64-bit PV guest).
        pub ctxt: u64,
    }
}

abi_struct! {
    /// `struct xen_domctl_hypercall_init`.
    pub struct HypercallInit = ("struct xen_domctl_hypercall_init", 8) {
        /// The frame Xen writes the hypercall page into (an mfn for a PV domain).
        pub gmfn: u64,
    }
}

abi_struct! {
    /// `struct xen_domctl_address_size` (set and get).
    pub struct AddressSize = ("struct xen_domctl_address_size", 4) {
        /// 32 or 64.
        pub size: u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domctl_puts_payload_at_16() {
        let d = Domctl::new(cmd::MAX_VCPUS, 0x15, 7, &MaxVcpus { max: 3 });
        let b = d.to_bytes();
        assert_eq!(b.len(), 144);
        assert_eq!(&b[0..4], &15u32.to_le_bytes());
        assert_eq!(&b[4..8], &0x15u32.to_le_bytes());
        assert_eq!(&b[8..10], &7u16.to_le_bytes());
        assert_eq!(&b[16..20], &3u32.to_le_bytes());
        assert!(b[20..].iter().all(|&x| x == 0));
        let back = Domctl::decode(&b).ok();
        assert_eq!(
            back.and_then(|d| d.payload::<MaxVcpus>().ok())
                .map(|m| m.max),
            Some(3)
        );
    }

    #[test]
    fn createdomain_layouts_differ_by_altp2m() {
        let old = CreateDomainV417 {
            max_vcpus: 2,
            emulation_flags: 1,
            ..Default::default()
        }
        .to_bytes();
        assert_eq!(&old[28..32], &2u32.to_le_bytes());
        assert_eq!(&old[56..60], &1u32.to_le_bytes());
        let new = CreateDomainV419 {
            max_vcpus: 2,
            altp2m_opts: 9,
            emulation_flags: 1,
            ..Default::default()
        }
        .to_bytes();
        assert_eq!(&new[48..52], &9u32.to_le_bytes());
        assert_eq!(&new[60..64], &1u32.to_le_bytes());
    }

    #[test]
    fn getdomaininfo_decodes_flags() {
        let mut b = vec![0u8; 112];
        b[0..2].copy_from_slice(&5u16.to_le_bytes());
        let flags = dominf::SHUTDOWN | (3 << 16);
        b[4..8].copy_from_slice(&flags.to_le_bytes());
        b[8..16].copy_from_slice(&1234u64.to_le_bytes());
        b[64..68].copy_from_slice(&2u32.to_le_bytes());
        let info = GetDomainInfo::decode(&b).ok();
        assert_eq!(
            info.map(|i| (i.domain, i.shutdown_code(), i.tot_pages, i.nr_online_vcpus)),
            Some((5, 3, 1234, 2))
        );
    }
}
