//! Hypercall numbers and the small structs: event channels, scheduler ops, grant entries,
//! xen_version.
//!
//! The hypercall numbers, `EVTCHNOP_alloc_unbound`, `SCHEDOP_remote_shutdown` and the
//! `SHUTDOWN_*` codes come from the `xen-sys` crate (bindgen output of xen.h, sched.h and
//! event_channel.h). `xen-sys` has nothing for the toolstack interfaces (no domctl.h,
//! sysctl.h, memory.h, hvm/*.h, version.h or grant_table.h, and no `DOMID_*`), so those
//! are defined in this crate.

use crate::wire::abi_struct;

/// Hypercall numbers (`__HYPERVISOR_*`).
pub mod hypercall {
    /// `__HYPERVISOR_memory_op`.
    pub const MEMORY_OP: u64 = xen_sys::__HYPERVISOR_memory_op as u64;
    /// `__HYPERVISOR_xen_version`.
    pub const XEN_VERSION: u64 = xen_sys::__HYPERVISOR_xen_version as u64;
    /// `__HYPERVISOR_grant_table_op`.
    pub const GRANT_TABLE_OP: u64 = xen_sys::__HYPERVISOR_grant_table_op as u64;
    /// `__HYPERVISOR_sched_op`.
    pub const SCHED_OP: u64 = xen_sys::__HYPERVISOR_sched_op as u64;
    /// `__HYPERVISOR_event_channel_op`.
    pub const EVENT_CHANNEL_OP: u64 = xen_sys::__HYPERVISOR_event_channel_op as u64;
    /// `__HYPERVISOR_hvm_op`.
    pub const HVM_OP: u64 = xen_sys::__HYPERVISOR_hvm_op as u64;
    /// `__HYPERVISOR_sysctl`.
    pub const SYSCTL: u64 = xen_sys::__HYPERVISOR_sysctl as u64;
    /// `__HYPERVISOR_domctl`.
    pub const DOMCTL: u64 = xen_sys::__HYPERVISOR_domctl as u64;
}

/// `DOMID_SELF`.
pub const DOMID_SELF: u16 = 0x7ff0;
/// `DOMID_INVALID`.
pub const DOMID_INVALID: u16 = 0x7ff4;
/// `DOMID_FIRST_RESERVED`.
pub const DOMID_FIRST_RESERVED: u16 = 0x7ff0;

/// `EVTCHNOP_alloc_unbound`.
pub const EVTCHNOP_ALLOC_UNBOUND: u32 = xen_sys::EVTCHNOP_alloc_unbound;

abi_struct! {
    /// `struct evtchn_alloc_unbound`.
    pub struct EvtchnAllocUnbound = ("struct evtchn_alloc_unbound", 8) {
        /// The domain the port is allocated in.
        pub dom: u16,
        /// The domain allowed to bind it.
        pub remote_dom: u16,
        /// The allocated port (out).
        pub port: u32,
    }
}

/// `SCHEDOP_remote_shutdown`.
pub const SCHEDOP_REMOTE_SHUTDOWN: u32 = xen_sys::SCHEDOP_remote_shutdown;

/// `SHUTDOWN_*` codes.
pub mod shutdown {
    /// Power off.
    pub const POWEROFF: u32 = xen_sys::SHUTDOWN_poweroff;
    /// Reboot.
    pub const REBOOT: u32 = xen_sys::SHUTDOWN_reboot;
    /// Suspend.
    pub const SUSPEND: u32 = xen_sys::SHUTDOWN_suspend;
    /// Crash.
    pub const CRASH: u32 = xen_sys::SHUTDOWN_crash;
    /// Watchdog.
    pub const WATCHDOG: u32 = xen_sys::SHUTDOWN_watchdog;
    /// Soft reset.
    pub const SOFT_RESET: u32 = xen_sys::SHUTDOWN_soft_reset;
}

abi_struct! {
    /// `struct sched_remote_shutdown`.
    pub struct SchedRemoteShutdown = ("struct sched_remote_shutdown", 8) {
        /// The domain.
        pub domain_id: u16,
        /// Padding.
        pub pad: u16,
        /// `SHUTDOWN_*`.
        pub reason: u32,
    }
}

/// `GTF_permit_access`.
pub const GTF_PERMIT_ACCESS: u16 = 1;

abi_struct! {
    /// `struct grant_entry_v1`.
    pub struct GrantEntryV1 = ("struct grant_entry_v1", 8) {
        /// `GTF_*`.
        pub flags: u16,
        /// The grantee.
        pub domid: u16,
        /// The frame granted.
        pub frame: u32,
    }
}

/// `XENVER_*` sub-commands of `xen_version`.
pub mod xenver {
    /// `XENVER_version`: returns `major << 16 | minor`.
    pub const VERSION: u32 = 0;
    /// `XENVER_extraversion`: fills a [`super::EXTRAVERSION_LEN`]-byte string.
    pub const EXTRAVERSION: u32 = 1;
    /// `XENVER_capabilities`: fills a [`super::CAPABILITIES_LEN`]-byte string.
    pub const CAPABILITIES: u32 = 3;
}

/// `sizeof(xen_extraversion_t)`.
pub const EXTRAVERSION_LEN: usize = 16;
/// `sizeof(xen_capabilities_info_t)`.
pub const CAPABILITIES_LEN: usize = 1024;

/// Split `XENVER_version`'s return value into (major, minor).
pub fn split_version(raw: u32) -> (u32, u32) {
    (raw >> 16, raw & 0xffff)
}

/// A NUL-terminated C string buffer (as `XENVER_extraversion` fills) as text.
pub fn c_string(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(buf.get(..end).unwrap_or(&[])).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Wire;

    #[test]
    fn numbers_match_the_headers() {
        // Values as in Xen 4.17 public/xen.h, event_channel.h, sched.h.
        assert_eq!(hypercall::MEMORY_OP, 12);
        assert_eq!(hypercall::XEN_VERSION, 17);
        assert_eq!(hypercall::GRANT_TABLE_OP, 20);
        assert_eq!(hypercall::SCHED_OP, 29);
        assert_eq!(hypercall::EVENT_CHANNEL_OP, 32);
        assert_eq!(hypercall::HVM_OP, 34);
        assert_eq!(hypercall::SYSCTL, 35);
        assert_eq!(hypercall::DOMCTL, 36);
        assert_eq!(EVTCHNOP_ALLOC_UNBOUND, 6);
        assert_eq!(SCHEDOP_REMOTE_SHUTDOWN, 4);
        assert_eq!(
            [
                shutdown::POWEROFF,
                shutdown::REBOOT,
                shutdown::SUSPEND,
                shutdown::CRASH,
                shutdown::WATCHDOG,
                shutdown::SOFT_RESET
            ],
            [0, 1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn small_structs_encode() {
        let g = GrantEntryV1 {
            flags: GTF_PERMIT_ACCESS,
            domid: 0,
            frame: 0xfeffc,
        };
        assert_eq!(g.to_bytes(), [1, 0, 0, 0, 0xfc, 0xef, 0x0f, 0]);
        let s = SchedRemoteShutdown {
            domain_id: 3,
            pad: 0,
            reason: shutdown::REBOOT,
        };
        assert_eq!(s.to_bytes(), [3, 0, 0, 0, 1, 0, 0, 0]);
        let e = EvtchnAllocUnbound {
            dom: 3,
            remote_dom: 0,
            port: 0,
        };
        assert_eq!(e.to_bytes(), [3, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn version_helpers() {
        assert_eq!(split_version(0x0004_0011), (4, 17));
        assert_eq!(c_string(b".2-pre\0junk"), ".2-pre");
        assert_eq!(c_string(b"abc"), "abc");
    }
}
