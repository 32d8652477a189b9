//! The two traits that rxl's toolstack drives, [`Hypervisor`] and [`Store`], and the typed
//! values they exchange.
//!
//! Backends implement them: `xencall` + `xenstore` for a real Xen host, `sim` for the
//! simulated one. The toolstack only ever names these traits, never a backend.
//!
//! Every operation takes `&self`: backends that keep state use interior mutability. Every
//! failure is an [`Error`] that names the operation and, where the OS or Xen gave one, the
//! errno.

#![forbid(unsafe_code)]

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Size of a guest page.
pub const PAGE_SIZE: u64 = 4096;
/// `PAGE_SIZE` as a shift.
pub const PAGE_SHIFT: u32 = 12;

/// A domain id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DomId(pub u16);

impl DomId {
    /// The control domain.
    pub const DOM0: DomId = DomId(0);
    /// `DOMID_SELF`.
    pub const SELF: DomId = DomId(0x7ff0);
    /// `DOMID_INVALID`: passed to createdomain, Xen picks the id.
    pub const INVALID: DomId = DomId(0x7ff4);
    /// The first id that is not a normal domain id (`DOMID_FIRST_RESERVED`).
    pub const FIRST_RESERVED: u16 = 0x7ff0;
}

impl fmt::Display for DomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A guest frame number (guest physical address >> 12).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Gfn(pub u64);

impl Gfn {
    /// The guest physical address of the frame's first byte.
    pub fn addr(self) -> u64 {
        self.0 << PAGE_SHIFT
    }
}

/// An errno value, as Linux numbers them (Xen uses the same numbers on x86).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Errno(pub i32);

macro_rules! errnos {
    ($($name:ident = $num:expr, $text:expr;)*) => {
        impl Errno {
            $(#[doc = $text] pub const $name: Errno = Errno($num);)*

            /// The symbolic name (`"ENOMEM"`), if this errno is one rxl knows.
            pub fn name(self) -> Option<&'static str> {
                match self.0 { $($num => Some(stringify!($name)),)* _ => None }
            }

            /// A short description (`"out of memory"`).
            pub fn description(self) -> Option<&'static str> {
                match self.0 { $($num => Some($text),)* _ => None }
            }

            /// The errno with this symbolic name (as xenstore sends them: `"EAGAIN"`).
            pub fn from_name(name: &str) -> Option<Errno> {
                match name { $(stringify!($name) => Some(Errno($num)),)* _ => None }
            }
        }
    };
}

errnos! {
    EPERM = 1, "operation not permitted";
    ENOENT = 2, "no such file or directory";
    ESRCH = 3, "no such domain or process";
    EINTR = 4, "interrupted";
    EIO = 5, "input/output error";
    ENXIO = 6, "no such device or address";
    E2BIG = 7, "argument list too long";
    ENOEXEC = 8, "exec format error";
    EBADF = 9, "bad file descriptor";
    EAGAIN = 11, "try again";
    ENOMEM = 12, "out of memory";
    EACCES = 13, "permission denied";
    EFAULT = 14, "bad address";
    EBUSY = 16, "device or resource busy";
    EEXIST = 17, "already exists";
    EXDEV = 18, "cross-device link";
    ENODEV = 19, "no such device";
    ENOTDIR = 20, "not a directory";
    EISDIR = 21, "is a directory";
    EINVAL = 22, "invalid argument";
    ENFILE = 23, "too many open files in system";
    EMFILE = 24, "too many open files";
    ENOTTY = 25, "inappropriate ioctl for device";
    EFBIG = 27, "file too large";
    ENOSPC = 28, "no space left";
    ESPIPE = 29, "illegal seek";
    EROFS = 30, "read-only";
    EMLINK = 31, "too many links";
    EPIPE = 32, "broken pipe";
    EDOM = 33, "argument out of domain";
    ERANGE = 34, "result out of range";
    EDEADLK = 35, "deadlock avoided";
    ENAMETOOLONG = 36, "name too long";
    ENOLCK = 37, "no locks available";
    ENOSYS = 38, "function not implemented";
    ENOTEMPTY = 39, "directory not empty";
    ENODATA = 61, "no data available";
    ETIME = 62, "timer expired";
    EBADMSG = 74, "bad message";
    EOVERFLOW = 75, "value too large";
    EILSEQ = 84, "illegal byte sequence";
    EUSERS = 87, "too many users";
    EOPNOTSUPP = 95, "operation not supported";
    EADDRINUSE = 98, "address in use";
    ECONNRESET = 104, "connection reset";
    EISCONN = 106, "already connected";
    ENOTCONN = 107, "not connected";
    ETIMEDOUT = 110, "timed out";
    ECONNREFUSED = 111, "connection refused";
    EALREADY = 114, "operation already in progress";
    EINPROGRESS = 115, "operation in progress";
}

impl Errno {
    /// The errno of the last failed libc call.
    pub fn last() -> Errno {
        Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }

    /// The errno inside an I/O error, or `EIO`.
    pub fn from_io(err: &std::io::Error) -> Errno {
        Errno(err.raw_os_error().unwrap_or(Errno::EIO.0))
    }

    /// Whether this errno says "not now" rather than "no": a busy resource (EAGAIN,
    /// EBUSY), an interrupted call (EINTR), or a xenstore connection that dropped
    /// (ECONNRESET, EPIPE, ENOTCONN), which the next request makes again.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Errno::EAGAIN
                | Errno::EINTR
                | Errno::EBUSY
                | Errno::ECONNRESET
                | Errno::EPIPE
                | Errno::ENOTCONN
        )
    }

    /// Whether this errno says the domain (or process) asked for does not exist (ESRCH).
    pub fn is_gone(self) -> bool {
        self == Errno::ESRCH
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.name(), self.description()) {
            (Some(n), Some(d)) => write!(f, "{n} ({d})"),
            _ => write!(f, "errno {}", self.0),
        }
    }
}

/// A failed host operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The OS or Xen refused the operation with an errno.
    #[error("{op}: {errno}{}", fmt_detail(.detail))]
    Os {
        /// The operation, e.g. `"populate_physmap"` or `"xs_write /local/domain/3/name"`.
        op: String,
        /// What failed.
        errno: Errno,
        /// Extra words for the user (may be empty).
        detail: String,
    },
    /// Anything else: a malformed reply, an unsupported interface version, ...
    #[error("{op}: {message}")]
    Other {
        /// The operation.
        op: String,
        /// What went wrong.
        message: String,
    },
}

fn fmt_detail(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

impl Error {
    /// An errno failure of `op`.
    pub fn os(op: impl Into<String>, errno: Errno) -> Error {
        Error::Os {
            op: op.into(),
            errno,
            detail: String::new(),
        }
    }

    /// An errno failure of `op`, with an explanation.
    pub fn os_detail(op: impl Into<String>, errno: Errno, detail: impl Into<String>) -> Error {
        Error::Os {
            op: op.into(),
            errno,
            detail: detail.into(),
        }
    }

    /// A non-errno failure of `op`.
    pub fn other(op: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Other {
            op: op.into(),
            message: message.into(),
        }
    }

    /// The errno, if the failure carries one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Os { errno, .. } => Some(*errno),
            Error::Other { .. } => None,
        }
    }

    /// Whether trying the operation again may succeed ([`Errno::is_transient`]); an error
    /// without an errno is not transient.
    pub fn is_transient(&self) -> bool {
        self.errno().is_some_and(Errno::is_transient)
    }

    /// Whether the operation failed because its domain no longer exists (ESRCH).
    pub fn is_gone(&self) -> bool {
        self.errno().is_some_and(Errno::is_gone)
    }

    /// The operation that failed.
    pub fn op(&self) -> &str {
        match self {
            Error::Os { op, .. } | Error::Other { op, .. } => op,
        }
    }
}

/// The result of a host operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What `xen_version` and the interface probes tell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// Xen major version.
    pub major: u32,
    /// Xen minor version.
    pub minor: u32,
    /// `XENVER_extraversion`, e.g. `".0"` or `"-unstable"`.
    pub extra: String,
    /// `XENVER_capabilities`, e.g. `"xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64"`.
    pub capabilities: String,
    /// The domctl interface version in use.
    pub domctl_interface: u32,
    /// The sysctl interface version in use.
    pub sysctl_interface: u32,
}

/// Host capability bits of `XEN_SYSCTL_physinfo` (`XEN_SYSCTL_PHYSCAP_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostCaps {
    /// The host can run HVM (and PVH) guests (`XEN_SYSCTL_PHYSCAP_hvm`).
    pub hvm: bool,
    /// The host can run PV guests (`XEN_SYSCTL_PHYSCAP_pv`).
    pub pv: bool,
    /// The host supports hardware-assisted paging (EPT/NPT, `XEN_SYSCTL_PHYSCAP_hap`).
    pub hap: bool,
    /// The host supports shadow (software) paging (`XEN_SYSCTL_PHYSCAP_shadow`).
    pub shadow: bool,
    /// The IOMMU can share the HAP page tables (one set of second-stage tables for both
    /// the CPU and the IOMMU, `XEN_SYSCTL_PHYSCAP_iommu_hap_pt_share`). Says nothing on
    /// its own about whether devices can be passed through (that is `..._directio`).
    pub iommu_hap_pt_share: bool,
    /// Xen offers the grant table v1 ABI (`XEN_SYSCTL_PHYSCAP_gnttab_v1`).
    pub gnttab_v1: bool,
    /// Xen offers the grant table v2 ABI (`XEN_SYSCTL_PHYSCAP_gnttab_v2`).
    pub gnttab_v2: bool,
}

/// `XEN_SYSCTL_physinfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhysInfo {
    /// Threads per core.
    pub threads_per_core: u32,
    /// Cores per socket.
    pub cores_per_socket: u32,
    /// Online CPUs.
    pub nr_cpus: u32,
    /// Highest CPU id.
    pub max_cpu_id: u32,
    /// NUMA nodes.
    pub nr_nodes: u32,
    /// Highest node id.
    pub max_node_id: u32,
    /// CPU frequency in kHz.
    pub cpu_khz: u32,
    /// Capabilities.
    pub caps: HostCaps,
    /// Pages of RAM in the host.
    pub total_pages: u64,
    /// Free pages.
    pub free_pages: u64,
    /// Pages waiting to be scrubbed.
    pub scrub_pages: u64,
    /// Pages claimed but not yet allocated.
    pub outstanding_pages: u64,
    /// Highest machine frame.
    pub max_mfn: u64,
    /// `hw_cap` words (CPUID feature bits).
    pub hw_cap: Vec<u32>,
}

/// `XEN_DOMCTL_CDF_*` flags of createdomain.
pub mod cdf {
    /// An HVM container rather than a PV guest (PVH is HVM without a device model).
    pub const HVM: u32 = 1 << 0;
    /// Use hardware-assisted paging (HVM only); without it the domain gets shadow paging.
    pub const HAP: u32 = 1 << 1;
    /// Have tboot check the integrity of the domain's memory across host S3 (suspend to
    /// RAM) and the other sleep states. Nothing to do with an IOMMU.
    pub const S3_INTEGRITY: u32 = 1 << 2;
    /// Turn off out-of-sync shadow page tables (shadow paging only).
    pub const OOS_OFF: u32 = 1 << 3;
    /// The domain is the xenstore domain (runs xenstored in place of dom0's).
    pub const XS_DOMAIN: u32 = 1 << 4;
    /// The domain may use the IOMMU (needed to pass devices through to it).
    pub const IOMMU: u32 = 1 << 5;
    /// Offer nested virtualisation (the guest can run its own hypervisor).
    pub const NESTED_VIRT: u32 = 1 << 6;
    /// Expose the virtual performance monitoring unit (vPMU) to the guest.
    pub const VPMU: u32 = 1 << 7;
}

/// `XEN_X86_EMU_*` emulation flags.
pub mod emu {
    /// Local APIC emulation: the only one a PVH guest gets.
    pub const LAPIC: u32 = 1 << 0;
    /// HPET.
    pub const HPET: u32 = 1 << 1;
    /// ACPI PM timer and PM1 registers.
    pub const PM: u32 = 1 << 2;
    /// RTC.
    pub const RTC: u32 = 1 << 3;
    /// IO-APIC.
    pub const IOAPIC: u32 = 1 << 4;
    /// 8259 PIC.
    pub const PIC: u32 = 1 << 5;
    /// Standard VGA (Xen's own acceleration of it).
    pub const VGA: u32 = 1 << 6;
    /// IOMMU.
    pub const IOMMU: u32 = 1 << 7;
    /// PIT.
    pub const PIT: u32 = 1 << 8;
    /// Route interrupts as PIRQs (PV drivers in HVM guests).
    pub const USE_PIRQ: u32 = 1 << 9;
    /// vPCI (PCI config space handled in Xen).
    pub const VPCI: u32 = 1 << 10;
    /// `XEN_X86_EMU_ALL`.
    pub const ALL: u32 =
        LAPIC | HPET | PM | RTC | IOAPIC | PIC | VGA | IOMMU | PIT | USE_PIRQ | VPCI;
}

/// The arguments of `XEN_DOMCTL_createdomain`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateDomain {
    /// The XSM (FLASK) security label. Only an XSM policy reads it; rxl passes 0.
    pub ssidref: u32,
    /// The domain's handle: its uuid.
    pub handle: [u8; 16],
    /// `cdf::*` flags.
    pub flags: u32,
    /// vCPU count.
    pub max_vcpus: u32,
    /// Highest event channel port.
    pub max_evtchn_port: u32,
    /// Grant frames (-1: hypervisor default).
    pub max_grant_frames: i32,
    /// Maptrack frames (-1: hypervisor default).
    pub max_maptrack_frames: i32,
    /// Grant table options: the max version in the low bits.
    pub grant_opts: u32,
    /// `emu::*` flags.
    pub emulation_flags: u32,
    /// x86 misc flags.
    pub misc_flags: u32,
}

impl CreateDomain {
    /// The request for a PVH domain as libxl makes it: an HVM container with HAP, only the
    /// local APIC emulated, grant table v1, 1024 event channels and Xen's default grant
    /// and maptrack frames. Change the fields that a config sets.
    pub fn pvh(handle: [u8; 16], max_vcpus: u32) -> Self {
        CreateDomain {
            ssidref: 0,
            handle,
            flags: cdf::HVM | cdf::HAP,
            max_vcpus,
            max_evtchn_port: 1023,
            max_grant_frames: -1,
            max_maptrack_frames: -1,
            grant_opts: 1,
            emulation_flags: emu::LAPIC,
            misc_flags: 0,
        }
    }

    /// The request for an HVM domain as libxl makes it: an HVM container with HAP and
    /// every platform device emulated but vPCI (`XEN_X86_EMU_ALL & ~XEN_X86_EMU_VPCI`,
    /// `libxl__arch_domain_prepare_config`), the rest as for [`CreateDomain::pvh`].
    pub fn hvm(handle: [u8; 16], max_vcpus: u32) -> Self {
        CreateDomain {
            emulation_flags: emu::ALL & !emu::VPCI,
            ..CreateDomain::pvh(handle, max_vcpus)
        }
    }

    /// The request for a 64-bit PV domain as libxl makes it: no `cdf::HVM` and no
    /// `cdf::HAP` (Xen runs PV guests on their own page tables), nothing emulated
    /// (`emulation_flags` 0, as `libxl__arch_domain_prepare_config` sets for PV), grant
    /// table v1, 1024 event channels and Xen's default grant and maptrack frames.
    pub fn pv(handle: [u8; 16], max_vcpus: u32) -> Self {
        CreateDomain {
            flags: 0,
            emulation_flags: 0,
            ..CreateDomain::pvh(handle, max_vcpus)
        }
    }
}

/// The initial state of a 64-bit PV vCPU that the toolstack chooses, as libxenguest's
/// `vcpu_x86_64` does. The backend fills in the rest: the flat kernel selectors
/// (`FLAT_KERNEL_CS_X86_64` for cs, `FLAT_KERNEL_DS_X86_64` for ds/es/fs/gs,
/// `FLAT_KERNEL_SS_X86_64` for ss and `kernel_ss`) and the flags
/// `VGCF_in_kernel | VGCF_online`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PvVcpuContext {
    /// The kernel's entry point (a virtual address).
    pub rip: u64,
    /// The initial stack pointer (a virtual address).
    pub rsp: u64,
    /// The virtual address of start_info, which a PV kernel finds in rsi.
    pub rsi: u64,
    /// rflags (libxenguest: `1 << 9`, interrupts enabled).
    pub rflags: u64,
    /// The machine frame of the top-level (L4) page table, pinned beforehand.
    pub cr3_mfn: u64,
    /// The kernel stack pointer for ring transitions (`kernel_sp`).
    pub kernel_sp: u64,
}

/// Shutdown reasons (`SHUTDOWN_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShutdownReason {
    /// Power off.
    Poweroff,
    /// Reboot.
    Reboot,
    /// Suspend.
    Suspend,
    /// Crash.
    Crash,
    /// Watchdog fired.
    Watchdog,
    /// Soft reset.
    SoftReset,
}

/// What `XEN_DOMCTL_sendtrigger` injects into an HVM domain (`xl trigger`'s names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// A non-maskable interrupt on one vCPU.
    Nmi,
    /// A platform reset: the guest reboots at once (no shutdown is asked of it).
    Reset,
    /// An INIT IPI to one vCPU.
    Init,
    /// The ACPI power button: an ACPI-aware guest powers off.
    Power,
    /// The ACPI sleep button.
    Sleep,
}

impl Trigger {
    /// Every trigger, in `XEN_DOMCTL_SENDTRIGGER_*` order.
    pub const ALL: [Trigger; 5] = [
        Trigger::Nmi,
        Trigger::Reset,
        Trigger::Init,
        Trigger::Power,
        Trigger::Sleep,
    ];

    /// The `XEN_DOMCTL_SENDTRIGGER_*` code.
    pub fn code(self) -> u32 {
        match self {
            Trigger::Nmi => 0,
            Trigger::Reset => 1,
            Trigger::Init => 2,
            Trigger::Power => 3,
            Trigger::Sleep => 4,
        }
    }

    /// The trigger with this code.
    pub fn from_code(code: u32) -> Option<Trigger> {
        Trigger::ALL.into_iter().find(|t| t.code() == code)
    }

    /// xl's name (`nmi`, `reset`, `init`, `power`, `sleep`).
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Nmi => "nmi",
            Trigger::Reset => "reset",
            Trigger::Init => "init",
            Trigger::Power => "power",
            Trigger::Sleep => "sleep",
        }
    }

    /// The trigger called `name`.
    pub fn from_name(name: &str) -> Option<Trigger> {
        Trigger::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl ShutdownReason {
    /// The `SHUTDOWN_*` code.
    pub fn code(self) -> u32 {
        match self {
            ShutdownReason::Poweroff => 0,
            ShutdownReason::Reboot => 1,
            ShutdownReason::Suspend => 2,
            ShutdownReason::Crash => 3,
            ShutdownReason::Watchdog => 4,
            ShutdownReason::SoftReset => 5,
        }
    }

    /// The reason with this `SHUTDOWN_*` code.
    pub fn from_code(code: u32) -> Option<ShutdownReason> {
        Some(match code {
            0 => ShutdownReason::Poweroff,
            1 => ShutdownReason::Reboot,
            2 => ShutdownReason::Suspend,
            3 => ShutdownReason::Crash,
            4 => ShutdownReason::Watchdog,
            5 => ShutdownReason::SoftReset,
            _ => return None,
        })
    }

    /// xl's letter in the state column (`"-rscwS"` indexed by code).
    pub fn letter(self) -> char {
        match self {
            ShutdownReason::Poweroff => '-',
            ShutdownReason::Reboot => 'r',
            ShutdownReason::Suspend => 's',
            ShutdownReason::Crash => 'c',
            ShutdownReason::Watchdog => 'w',
            ShutdownReason::SoftReset => 'S',
        }
    }
}

/// What `getdomaininfo` tells about one domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainInfo {
    /// The id.
    pub domid: DomId,
    /// Being destroyed.
    pub dying: bool,
    /// HVM container (PVH or HVM).
    pub hvm: bool,
    /// Shut down; `shutdown_reason` says why.
    pub shutdown: bool,
    /// Paused by the toolstack.
    pub paused: bool,
    /// All vCPUs blocked.
    pub blocked: bool,
    /// A vCPU is running.
    pub running: bool,
    /// Being debugged.
    pub debugged: bool,
    /// The xenstore domain.
    pub xs_domain: bool,
    /// Uses HAP.
    pub hap: bool,
    /// `SHUTDOWN_*` code (meaningful when `shutdown`).
    pub shutdown_code: u32,
    /// Pages allocated.
    pub tot_pages: u64,
    /// Allocation limit in pages.
    pub max_pages: u64,
    /// Claimed but not allocated pages.
    pub outstanding_pages: u64,
    /// CPU time used, in nanoseconds.
    pub cpu_time_ns: u64,
    /// Online vCPUs.
    pub nr_online_vcpus: u32,
    /// Highest vCPU id.
    pub max_vcpu_id: u32,
    /// Security label.
    pub ssidref: u32,
    /// Handle (uuid).
    pub handle: [u8; 16],
    /// CPU pool.
    pub cpupool: u32,
}

impl DomainInfo {
    /// The shutdown reason, when the domain is shut down with a known code.
    pub fn shutdown_reason(&self) -> Option<ShutdownReason> {
        if self.shutdown {
            ShutdownReason::from_code(self.shutdown_code)
        } else {
            None
        }
    }

    /// xl's six state letters, e.g. `"-b----"` or `"---s--"`: r b p s, the shutdown
    /// reason from "-rscwS", then d.
    pub fn state_letters(&self) -> String {
        let mut s = String::with_capacity(6);
        s.push(if self.running { 'r' } else { '-' });
        s.push(if self.blocked { 'b' } else { '-' });
        s.push(if self.paused { 'p' } else { '-' });
        s.push(if self.shutdown { 's' } else { '-' });
        s.push(match self.shutdown_reason() {
            Some(r) if self.shutdown => r.letter(),
            _ if self.shutdown => '?',
            _ => '-',
        });
        s.push(if self.dying { 'd' } else { '-' });
        s
    }
}

/// e820 / hvm_memmap_table_entry types.
pub mod e820 {
    /// Usable RAM.
    pub const RAM: u32 = 1;
    /// Reserved.
    pub const RESERVED: u32 = 2;
    /// ACPI reclaimable.
    pub const ACPI: u32 = 3;
    /// ACPI NVS.
    pub const NVS: u32 = 4;
    /// Unusable.
    pub const UNUSABLE: u32 = 5;
    /// Disabled.
    pub const DISABLED: u32 = 6;
    /// Persistent memory.
    pub const PMEM: u32 = 7;
}

/// One e820 entry, as given to `XENMEM_set_memory_map`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct E820Entry {
    /// Start address.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// `e820::*` type.
    pub kind: u32,
}

/// A v1 grant table entry (`grant_entry_v1_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantEntryV1 {
    /// `GTF_*` flags.
    pub flags: u16,
    /// The domain allowed to map the frame.
    pub domid: u16,
    /// The frame.
    pub frame: u32,
}

/// `GTF_permit_access`.
pub const GTF_PERMIT_ACCESS: u16 = 1;

/// HVM parameter indices (`HVM_PARAM_*`) rxl sets.
pub mod hvm_param {
    /// The event channel upcall of the guest's PV drivers (0: none set up).
    pub const CALLBACK_IRQ: u32 = 0;
    /// Xenstore ring pfn.
    pub const STORE_PFN: u32 = 1;
    /// Xenstore event channel.
    pub const STORE_EVTCHN: u32 = 2;
    /// ioreq page pfn.
    pub const IOREQ_PFN: u32 = 5;
    /// Viridian (Hyper-V) enlightenment mask.
    pub const VIRIDIAN: u32 = 9;
    /// Buffered ioreq page pfn.
    pub const BUFIOREQ_PFN: u32 = 6;
    /// Timer mode.
    pub const TIMER_MODE: u32 = 10;
    /// HPET present (HVM).
    pub const HPET_ENABLED: u32 = 11;
    /// Identity-map page table pfn.
    pub const IDENT_PT: u32 = 12;
    /// Align virtual platform timers (HVM).
    pub const VPT_ALIGN: u32 = 16;
    /// Console ring pfn.
    pub const CONSOLE_PFN: u32 = 17;
    /// Console event channel.
    pub const CONSOLE_EVTCHN: u32 = 18;
    /// Paging ring pfn.
    pub const PAGING_RING_PFN: u32 = 27;
    /// Access ring pfn.
    pub const MONITOR_RING_PFN: u32 = 28;
    /// Sharing ring pfn.
    pub const SHARING_RING_PFN: u32 = 29;
    /// First of the ioreq server pages (HVM with a device model).
    pub const IOREQ_SERVER_PFN: u32 = 32;
    /// How many ioreq server pages.
    pub const NR_IOREQ_SERVER_PAGES: u32 = 33;
    /// altp2m mode.
    pub const ALTP2M: u32 = 35;
}

/// The hypervisor: typed operations on domains and the host.
///
/// Addresses and frames are guest-physical. `write_guest`, `zero_guest` and `read_guest`
/// map the guest's frames themselves, in bounded batches, so a caller never holds more
/// than the bytes it passes.
pub trait Hypervisor {
    /// Xen version, capabilities and the interface versions in use.
    fn version(&self) -> Result<VersionInfo>;
    /// `XEN_SYSCTL_physinfo`.
    fn physinfo(&self) -> Result<PhysInfo>;

    /// `XEN_DOMCTL_createdomain` with `DOMID_INVALID`: Xen picks the id. The domain
    /// starts paused.
    fn create_domain(&self, cfg: &CreateDomain) -> Result<DomId>;
    /// `XEN_DOMCTL_max_vcpus`.
    fn max_vcpus(&self, dom: DomId, max: u32) -> Result<()>;
    /// `XEN_DOMCTL_max_mem`, in KiB.
    fn max_mem(&self, dom: DomId, kib: u64) -> Result<()>;
    /// `XENMEM_claim_pages` (0 releases the claim).
    fn claim_pages(&self, dom: DomId, nr_pages: u64) -> Result<()>;
    /// `XENMEM_populate_physmap`: one extent of `2^order` pages at each gfn. Returns how
    /// many extents Xen populated (fewer than asked means it ran out).
    fn populate_physmap(&self, dom: DomId, order: u32, gfns: &[Gfn]) -> Result<usize>;
    /// `XENMEM_set_memory_map`.
    fn set_memory_map(&self, dom: DomId, map: &[E820Entry]) -> Result<()>;
    /// `HVMOP_set_param`.
    fn set_hvm_param(&self, dom: DomId, index: u32, value: u64) -> Result<()>;
    /// `HVMOP_get_param`.
    fn get_hvm_param(&self, dom: DomId, index: u32) -> Result<u64>;
    /// `XEN_DOMCTL_gethvmcontext`: the whole save record stream.
    fn get_hvm_context(&self, dom: DomId) -> Result<Vec<u8>>;
    /// `XEN_DOMCTL_sethvmcontext`.
    fn set_hvm_context(&self, dom: DomId, ctx: &[u8]) -> Result<()>;
    /// `XEN_DOMCTL_set_paging_mempool_size`, in bytes.
    fn set_paging_mempool_size(&self, dom: DomId, bytes: u64) -> Result<()>;
    /// `XEN_DOMCTL_settscinfo` with a `tsc_mode`.
    fn set_tsc_info(&self, dom: DomId, tsc_mode: u32) -> Result<()>;
    /// `EVTCHNOP_alloc_unbound`: a port in `dom` that `remote` may bind.
    fn alloc_unbound(&self, dom: DomId, remote: DomId) -> Result<u32>;

    /// Copy `data` into guest memory at `gpa`.
    fn write_guest(&self, dom: DomId, gpa: u64, data: &[u8]) -> Result<()>;
    /// Zero `len` bytes of guest memory at `gpa`.
    fn zero_guest(&self, dom: DomId, gpa: u64, len: u64) -> Result<()>;
    /// Read `len` bytes of guest memory at `gpa`.
    fn read_guest(&self, dom: DomId, gpa: u64, len: usize) -> Result<Vec<u8>>;
    /// Write v1 grant entries starting at `first_ref` in the guest's grant table.
    fn write_grant_entries(
        &self,
        dom: DomId,
        first_ref: u32,
        entries: &[GrantEntryV1],
    ) -> Result<()>;

    /// `XEN_DOMCTL_getdomaininfo`; `None` when no domain has this id.
    fn domain_info(&self, dom: DomId) -> Result<Option<DomainInfo>>;
    /// Every domain, in id order.
    fn list_domains(&self) -> Result<Vec<DomainInfo>>;
    /// `XEN_DOMCTL_pausedomain`.
    fn pause(&self, dom: DomId) -> Result<()>;
    /// `XEN_DOMCTL_unpausedomain`.
    fn unpause(&self, dom: DomId) -> Result<()>;
    /// `XEN_DOMCTL_destroydomain` (retried while Xen says EAGAIN).
    fn destroy(&self, dom: DomId) -> Result<()>;
    /// `SCHEDOP_remote_shutdown`.
    fn shutdown(&self, dom: DomId, reason: ShutdownReason) -> Result<()>;
    /// `XEN_DOMCTL_sendtrigger`: inject `trigger` into an HVM domain (`vcpu` matters to
    /// NMI and INIT). Xen refuses a PV domain (EINVAL).
    fn send_trigger(&self, dom: DomId, trigger: Trigger, vcpu: u32) -> Result<()>;

    /// `XEN_DOMCTL_set_address_size` (64 for x86-64 PV).
    fn set_address_size(&self, dom: DomId, bits: u32) -> Result<()>;
    /// `XENMEM_populate_physmap` for a PV (non-translated) domain: an extent of
    /// `2^order` frames at each gpfn. Returns the first mfn of each extent populated, in
    /// order; fewer than asked means Xen ran out (populate_physmap's count).
    fn populate_physmap_pv(&self, dom: DomId, order: u32, gpfns: &[u64]) -> Result<Vec<u64>>;
    /// Write `data` into the domain's machine frames `mfns`, from byte 0 of `mfns[0]` on,
    /// page by page (`data.len() <= mfns.len() * 4096`). Frames are mapped in bounded
    /// batches (privcmd `MMAPBATCH_V2`: the frames of a PV target are mfns).
    fn write_frames(&self, dom: DomId, mfns: &[u64], data: &[u8]) -> Result<()>;
    /// Zero the domain's machine frames `mfns`.
    fn zero_frames(&self, dom: DomId, mfns: &[u64]) -> Result<()>;
    /// Read the domain's machine frames `mfns` back, whole (`mfns.len() * 4096` bytes).
    fn read_frames(&self, dom: DomId, mfns: &[u64]) -> Result<Vec<u8>>;
    /// `MMUEXT_PIN_L4_TABLE` of `mfn` on behalf of `dom` (`HYPERVISOR_mmuext_op` with
    /// `foreigndom = dom`, as libxenguest's `pin_table`). Xen validates the whole tree.
    fn pin_l4_table(&self, dom: DomId, mfn: u64) -> Result<()>;
    /// `XEN_DOMCTL_hypercall_init`: Xen writes the hypercall page into frame `mfn`.
    fn hypercall_init(&self, dom: DomId, mfn: u64) -> Result<()>;
    /// `XEN_DOMCTL_setvcpucontext` with an x86-64 PV context for `vcpu`.
    fn set_pv_vcpu_context(&self, dom: DomId, vcpu: u32, ctx: &PvVcpuContext) -> Result<()>;
    /// As libxenguest's `bootlate_pv` / `shared_info_x86_64`: map the domain's shared_info
    /// frame and set `evtchn_upcall_mask = 1` in every legacy `vcpu_info`. Returns the
    /// shared_info frame (an mfn), which start_info names.
    fn init_pv_shared_info(&self, dom: DomId) -> Result<u64>;

    /// Hypercalls issued so far through this handle (for benchmarks).
    fn hypercall_count(&self) -> u64 {
        0
    }

    /// Nanoseconds spent inside those hypercalls so far (the hypervisor's share of a
    /// profile); 0 for a host that does not time them (the simulated one).
    fn hypercall_nanos(&self) -> u64 {
        0
    }
}

/// A xenstore transaction id; [`TxId::NONE`] outside a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TxId(pub u32);

impl TxId {
    /// No transaction.
    pub const NONE: TxId = TxId(0);
}

/// Access a domain has to a xenstore node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// `n`
    None,
    /// `r`
    Read,
    /// `w`
    Write,
    /// `b`
    Both,
}

/// One xenstore permission. The first of a node's list names the owner and the access
/// every domain not listed gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Perm {
    /// The domain.
    pub domid: DomId,
    /// Its access.
    pub access: Access,
}

impl Perm {
    /// xenstore's text form: `"b0"`, `"r3"`.
    pub fn to_wire(self) -> String {
        let c = match self.access {
            Access::None => 'n',
            Access::Read => 'r',
            Access::Write => 'w',
            Access::Both => 'b',
        };
        format!("{c}{}", self.domid.0)
    }

    /// Parse xenstore's text form.
    pub fn from_wire(s: &str) -> Option<Perm> {
        let mut chars = s.chars();
        let access = match chars.next()? {
            'n' => Access::None,
            'r' => Access::Read,
            'w' => Access::Write,
            'b' => Access::Both,
            _ => return None,
        };
        let domid = chars.as_str().parse::<u16>().ok()?;
        Some(Perm {
            domid: DomId(domid),
            access,
        })
    }
}

/// A fired watch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchEvent {
    /// The node that changed.
    pub path: String,
    /// The token given to `watch`.
    pub token: String,
}

/// The xenstore.
pub trait Store {
    /// Read a node; `None` when it does not exist.
    fn read(&self, tx: TxId, path: &str) -> Result<Option<Vec<u8>>>;
    /// Write a node, creating it and its parents.
    fn write(&self, tx: TxId, path: &str, value: &[u8]) -> Result<()>;
    /// Create an empty node (no error if it exists).
    fn mkdir(&self, tx: TxId, path: &str) -> Result<()>;
    /// Remove a node and everything below it (no error if it does not exist).
    fn rm(&self, tx: TxId, path: &str) -> Result<()>;
    /// The children of a node; `None` when it does not exist.
    fn directory(&self, tx: TxId, path: &str) -> Result<Option<Vec<String>>>;
    /// A node's permissions; `None` when it does not exist.
    fn get_perms(&self, tx: TxId, path: &str) -> Result<Option<Vec<Perm>>>;
    /// Set a node's permissions.
    fn set_perms(&self, tx: TxId, path: &str, perms: &[Perm]) -> Result<()>;
    /// Start a transaction.
    fn transaction_start(&self) -> Result<TxId>;
    /// End a transaction. `Ok(false)` when a commit hit a conflict (EAGAIN) and must be
    /// retried from the start.
    fn transaction_end(&self, tx: TxId, commit: bool) -> Result<bool>;
    /// Watch a path (and everything below it).
    fn watch(&self, path: &str, token: &str) -> Result<()>;
    /// Stop watching.
    fn unwatch(&self, path: &str, token: &str) -> Result<()>;
    /// The next watch event, waiting at most `timeout` (`None`: forever). `Ok(None)` on
    /// timeout.
    fn next_watch_event(&self, timeout: Option<Duration>) -> Result<Option<WatchEvent>>;
    /// `XS_INTRODUCE`: tell xenstored about a new domain's ring.
    fn introduce(&self, dom: DomId, store_gfn: Gfn, store_port: u32) -> Result<()>;
    /// `XS_RELEASE`: xenstored forgets a domain.
    fn release(&self, dom: DomId) -> Result<()>;
    /// `XS_GET_DOMAIN_PATH`.
    fn get_domain_path(&self, dom: DomId) -> Result<String>;
    /// `XS_IS_DOMAIN_INTRODUCED`.
    fn is_domain_introduced(&self, dom: DomId) -> Result<bool>;

    /// Carry out `ops` in order in `tx`, returning the first failure. A store may send
    /// several before reading their replies (one round trip for many requests): after a
    /// failure, operations that follow it may have been carried out too, so callers that
    /// need all or nothing run them in a transaction. The default sends them one at a time.
    fn apply_ops(&self, tx: TxId, ops: &[StoreOp<'_>]) -> Result<()> {
        for op in ops {
            match *op {
                StoreOp::Write(path, value) => self.write(tx, path, value)?,
                StoreOp::Mkdir(path) => self.mkdir(tx, path)?,
                StoreOp::SetPerms(path, perms) => self.set_perms(tx, path, perms)?,
                StoreOp::Rm(path) => self.rm(tx, path)?,
            }
        }
        Ok(())
    }

    /// Requests sent so far through this handle (for profiles); 0 for a
    /// store that does not count them.
    fn request_count(&self) -> u64 {
        0
    }
}

/// One operation of [`Store::apply_ops`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp<'a> {
    /// Write a node (creating it and its parents).
    Write(&'a str, &'a [u8]),
    /// Create an empty node (no error if it exists).
    Mkdir(&'a str),
    /// Set a node's permissions.
    SetPerms(&'a str, &'a [Perm]),
    /// Remove a node and everything below it (no error if it does not exist).
    Rm(&'a str),
}

/// Run `body` in a transaction, retrying from the start while the commit conflicts.
/// `body` errors abort the transaction.
pub fn transaction<S, T, F>(store: &S, mut body: F) -> Result<T>
where
    S: Store + ?Sized,
    F: FnMut(TxId) -> Result<T>,
{
    const MAX_TRIES: usize = 100;
    for _ in 0..MAX_TRIES {
        let tx = store.transaction_start()?;
        match body(tx) {
            Ok(value) => {
                if store.transaction_end(tx, true)? {
                    return Ok(value);
                }
            }
            Err(err) => {
                let _ = store.transaction_end(tx, false);
                return Err(err);
            }
        }
    }
    Err(Error::os_detail(
        "xs_transaction",
        Errno::EAGAIN,
        format!("still conflicting after {MAX_TRIES} tries"),
    ))
}

/// Read a node as UTF-8 text (lossy), `None` when absent.
pub fn read_string<S: Store + ?Sized>(store: &S, tx: TxId, path: &str) -> Result<Option<String>> {
    Ok(store
        .read(tx, path)?
        .map(|v| String::from_utf8_lossy(&v).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_whether_they_are_transient_or_mean_gone() {
        for errno in [
            Errno::EAGAIN,
            Errno::EINTR,
            Errno::EBUSY,
            Errno::ECONNRESET,
            Errno::EPIPE,
            Errno::ENOTCONN,
        ] {
            let e = Error::os("xs_read", errno);
            assert!(e.is_transient(), "{e}");
            assert!(!e.is_gone(), "{e}");
        }
        for errno in [Errno::EPERM, Errno::EIO, Errno::ENOMEM, Errno::ESRCH] {
            assert!(!Error::os("op", errno).is_transient(), "{errno}");
        }
        assert!(Error::os_detail("find domain", Errno::ESRCH, "gone").is_gone());
        assert!(!Error::os("op", Errno::ENOENT).is_gone());
        let other = Error::other("parse", "malformed reply");
        assert!(!other.is_transient() && !other.is_gone());
    }

    #[test]
    fn triggers_have_xl_s_names_and_the_domctl_codes() {
        for t in Trigger::ALL {
            assert_eq!(Trigger::from_name(t.name()), Some(t));
            assert_eq!(Trigger::from_code(t.code()), Some(t));
        }
        let codes: Vec<(&str, u32)> = Trigger::ALL.iter().map(|t| (t.name(), t.code())).collect();
        assert_eq!(
            codes,
            [
                ("nmi", 0),
                ("reset", 1),
                ("init", 2),
                ("power", 3),
                ("sleep", 4)
            ]
        );
        assert_eq!(Trigger::from_name("s3resume"), None);
        assert_eq!(Trigger::from_code(5), None);
    }

    #[test]
    fn errno_names_round_trip() {
        assert_eq!(Errno::from_name("EAGAIN"), Some(Errno::EAGAIN));
        assert_eq!(Errno::ENOMEM.name(), Some("ENOMEM"));
        assert_eq!(Errno(9999).name(), None);
        assert_eq!(Errno::ENOMEM.to_string(), "ENOMEM (out of memory)");
    }

    #[test]
    fn error_display_names_op_and_errno() {
        let e = Error::os_detail("populate_physmap", Errno::ENOMEM, "4096 MiB");
        assert_eq!(
            e.to_string(),
            "populate_physmap: ENOMEM (out of memory): 4096 MiB"
        );
        assert_eq!(e.errno(), Some(Errno::ENOMEM));
    }

    #[test]
    fn state_letters_follow_xl() {
        let mut info = DomainInfo {
            domid: DomId(1),
            dying: false,
            hvm: true,
            shutdown: false,
            paused: false,
            blocked: true,
            running: false,
            debugged: false,
            xs_domain: false,
            hap: true,
            shutdown_code: 0,
            tot_pages: 0,
            max_pages: 0,
            outstanding_pages: 0,
            cpu_time_ns: 0,
            nr_online_vcpus: 1,
            max_vcpu_id: 0,
            ssidref: 0,
            handle: [0; 16],
            cpupool: 0,
        };
        assert_eq!(info.state_letters(), "-b----");
        info.blocked = false;
        info.shutdown = true;
        info.shutdown_code = 3;
        info.dying = true;
        assert_eq!(info.state_letters(), "---scd");
    }

    #[test]
    fn hvm_createdomain_emulates_everything_but_vpci() {
        let hvm = CreateDomain::hvm([1; 16], 2);
        assert_eq!(hvm.flags, cdf::HVM | cdf::HAP);
        assert_eq!(hvm.emulation_flags, 0x3ff);
        assert_eq!(emu::ALL, 0x7ff);
        assert_eq!(
            CreateDomain {
                emulation_flags: emu::LAPIC,
                ..hvm
            },
            CreateDomain::pvh([1; 16], 2)
        );
    }

    #[test]
    fn pv_createdomain_is_pvh_without_hvm_hap_or_emulation() {
        let pv = CreateDomain::pv([1; 16], 3);
        assert_eq!((pv.flags, pv.emulation_flags), (0, 0));
        assert_eq!(pv.max_vcpus, 3);
        let pvh = CreateDomain::pvh([1; 16], 3);
        assert_eq!(
            CreateDomain {
                flags: pvh.flags,
                emulation_flags: pvh.emulation_flags,
                ..pv
            },
            pvh
        );
    }

    #[test]
    fn perms_wire_form() {
        let p = Perm {
            domid: DomId(3),
            access: Access::Read,
        };
        assert_eq!(p.to_wire(), "r3");
        assert_eq!(Perm::from_wire("r3"), Some(p));
        assert_eq!(Perm::from_wire("x3"), None);
        assert_eq!(Perm::from_wire("b"), None);
    }
}
