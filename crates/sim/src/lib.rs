//! A simulated Xen host and xenstored, persisted in a state directory.
//!
//! [`SimHost`] implements both [`xen_host::Hypervisor`] and [`xen_host::Store`]. Every
//! process that opens the same directory sees one host: `rxl --sim DIR create`, then
//! `rxl --sim DIR list` in another process, a monitor process per domain, two creates
//! racing. It behaves like Xen 4.17 and C xenstored where a toolstack can tell: domain ids
//! are allocated like Xen's, memory is accounted against the host (populate_physmap
//! returns fewer extents than asked when the host or the domain's limit runs out),
//! xenstore permissions, transactions and watches follow xenstored, and an unpaused
//! domain behaves like a cooperative PV-aware guest that reacts to
//! `control/shutdown` and connects the frontends of its block and network devices.
//!
//! # On-disk layout
//!
//! ```text
//! DIR/host.json            the host's size, version and bridges (written once, at creation)
//! DIR/lock                 flock'ed exclusively by every operation
//! DIR/state.json           small mutable host state: change sequence number, xenstore
//!                          generation, the last domain id allocated, page accounting
//! DIR/domains/<id>.json    one file per domain: hypervisor state and xenstored's
//!                          introduction record
//! DIR/xs/<path>/.node      one directory per xenstore node, named by its path; `.node`
//!                          holds the generation, permissions, child names and value
//! DIR/log/<segment>.log    the change log: `SEQ KIND PATH` lines, 1024 per segment,
//!                          the last 8 segments kept; watchers in every process poll it
//!                          (one that fell further behind has each watch fired once)
//! DIR/trash/               removed subtrees, renamed here before deletion
//! DIR/devices.json         what simulated hotplug set up: loop devices (by minor) and
//!                          vif interfaces (with their bridge); absent when nothing is
//! ```
//!
//! An operation takes the lock, reads only the files it concerns (the state file, one
//! domain file, the nodes on one path), applies its change, appends to the change log,
//! rewrites the state file and releases the lock. Its cost does not depend on the number
//! of domains; only listing domains reads every domain file. Readers (`list`, watch
//! polling, the inspection helpers) take the lock shared.
//!
//! Domain and node files are replaced without a reader ever seeing a partial file:
//! the new contents go to `.NAME.new`, which is renamed to `.NAME.ready`, the old file is
//! removed and `.NAME.ready` renamed into place; a reader finding no file falls back to
//! `.NAME.ready`, which only exists if a process died between those last two steps. (The
//! old file is removed instead of renamed over because ext4 flushes data when a rename
//! replaces a file, which costs milliseconds.) `state.json` is a fixed 512-byte record
//! overwritten with one write. Files are not fsync'ed: the state survives any process
//! dying at any point, not a host power failure.
//!
//! # What lives only in memory
//!
//! Guest memory contents (sparse 4 KiB pages written with `write_guest`, or with
//! `write_frames` for a PV domain, keyed by machine frame), open transactions,
//! registered watches and fault-injection counters belong to the [`SimHost`] value.
//! Another process sees the page accounting and which frames are populated, but reads
//! zeros from pages this process wrote.
//!
//! # PV domains
//!
//! A domain created without `XEN_DOMCTL_CDF_hvm` is PV (docs/sim-pv.md): its
//! populate_physmap extents get machine frames from a host-wide allocator (from
//! 0x80000 up, aligned to the extent, never equal to the gpfn and never reused),
//! recorded as the domain's P2M/M2P in its record. `write_frames`, `zero_frames` and
//! `read_frames` take only frames the domain owns (EFAULT otherwise) and refuse to
//! write a pinned page table (EINVAL); `write_guest`, `zero_guest`, `read_guest`, the
//! HVM params and contexts refuse a PV domain (EINVAL), and the PV operations refuse an
//! HVM one (`set_address_size` EOPNOTSUPP, the others EINVAL). `pin_l4_table` walks
//! the tables as Xen validates them: every present entry points to a frame of the
//! domain (a table: EINVAL; a mapped page: EBUSY), no superpages, no frame used at two
//! levels, no page-table frame mapped writable (EINVAL); Xen's L4 slots 256..=271 are
//! skipped. `hypercall_init` needs a frame of the domain (EINVAL) that is not a page
//! table (EPERM) and fills it with the 64-bit hypercall stubs. `set_pv_vcpu_context`
//! needs the pinned L4 as cr3 and canonical rip, rsp and kernel_sp (EINVAL).
//! `init_pv_shared_info` gives a per-domain frame outside its RAM, cleared, every
//! legacy `vcpu_info` masked. At the first unpause, vCPU 0's rip, rsp - 8 (writable)
//! and rsi must translate through the pinned tables to frames of the domain and rsi's
//! frame must begin with `xen-3.0-x86_64`; otherwise (or with no vCPU 0 context) the
//! domain shuts down with reason crash, as a guest faulting at its first instruction
//! would. The check uses this handle's frames; a handle that has none (another
//! process) uses the verdict recorded when vCPU 0's context was set.
//!
//! # Acting as a guest
//!
//! A handle's xenstore requests come from Domain-0, which may do anything.
//! [`SimHost::with_caller`] makes them come from another domain, so node permissions
//! apply (the first entry names the owner and everyone's default access) and relative
//! paths resolve under that domain's home. Watch events are delivered without a
//! permission check. [`SimHost::guest_event`] makes a guest power off, reboot, crash,
//! trip its watchdog, or ignore `control/shutdown`.
//!
//! # Devices: backends, frontends, hotplug
//!
//! Domain-0 runs simulated blkback and netback: a backend directory
//! `/local/domain/0/backend/{vbd,vif}/D/N` follows the xenbus state machine as the
//! toolstack drives it, and the guest's frontend `/local/domain/D/device/{vbd,vif}/N`
//! connects while the domain runs. They react after the write (or the transaction
//! commit, or the removal) that concerns them, in the process that made it, like the
//! reaction to `control/shutdown`:
//!
//! | when | what happens |
//! |---|---|
//! | a backend's directory or `state` is written, `state` 1, `online` 1 | backend → 2 (InitWait); fault `backend_init`: stays 1 |
//! | the domain is unpaused, or a backend's `state`, `physical-device` or `hotplug-status` is written, while the domain runs, the backend is in 2 and ready (vbd: `physical-device`; vif: `hotplug-status=connected`), the frontend in 1..=3 | frontend → 4, backend → 4; fault `frontend_connect`: both stay |
//! | `online` 0 and `state` 5 written, frontend missing or not in 4, or the domain not running | backend → 6 |
//! | the same with the frontend in 4 and the domain running | frontend → 6, backend → 6; fault `frontend_release`: backend stays 5 |
//! | the frontend (or the domain's directory) is removed while the backend is in 5 with `online` 0 | backend → 6 |
//! | a vif backend is removed | its interface (and bridge port) goes |
//!
//! [`SimHotplug`] implements `devices::hotplug::Hotplug`: it carries out `block`,
//! `vif-bridge`, `vif-route` and `vif-nat` on the host's state (loop devices, bridge
//! ports; [`HostConfig::bridges`] lists the bridges) and runs any other script for
//! real; its module doc says exactly what each does. [`SimHost::loop_devices`],
//! [`SimHost::vif_interfaces`] and [`SimHost::bridge_ports`] show what is set up. A
//! loop device stays until `block remove` frees it, as on Linux: a toolstack that skips
//! the remove leaves it behind, and a test sees it.
//!
//! # Where it differs from Xen and xenstored
//!
//! - `@releaseDomain` fires when any domain shuts down, when its destruction starts and
//!   when it is gone, introduced or not (xenstored fires only for introduced domains);
//!   watchers re-read the domain list anyway.
//! - populate_physmap stops at an extent that overlaps populated frames.
//! - destroydomain relinquishes 256 MiB per round (one hypercall each); between rounds
//!   other processes see the domain dying.
//! - Domain-0 cannot be paused, destroyed or shut down.
//! - A PV domain whose vCPU 0 has no context crashes at its first unpause (Xen would
//!   leave it with no vCPU running), so a toolstack that forgot the context fails.
//! - PV machine frames are never reused; physinfo's `max_mfn` grows with them.
//! - A running guest is "booting" (state `r`, one vCPU busy) for its first 2 s of run
//!   time, then idle (`b`, 0.5 % of each online vCPU).
//!
//! # Fault injection
//!
//! `RXL_SIM_FAIL=OP[:N][=ERRNO],...` (read by [`SimHost::open`]) or
//! [`SimHost::with_faults`] makes the N-th call (default the first) of OP through this
//! handle fail with ERRNO (a name such as `ENOMEM` or a number; default `EINVAL`);
//! `OP[:N]=sleep:MS` makes it wait first and then succeed. [`FAIL_OPS`] lists the
//! operation names.
//!
//! The device faults count steps, not calls: `backend_init`, `frontend_connect` and
//! `frontend_release` refuse the N-th such step of the reactions above (counted by the
//! handle whose write or unpause caused it; [`SimHotplug`] counts the connects its own
//! runs cause). `hotplug_add` and `hotplug_remove` are counted by [`SimHotplug`]
//! ([`SimHotplug::open`] reads `RXL_SIM_FAIL` too): the N-th add or remove fails as the
//! scripts' `fatal` does (`hotplug-error` naming the fault, `hotplug-status=error`, exit
//! status 1), or with `=hang` is reported as killed at its timeout without waiting.
//!
//! `RXL_SIM_BRIDGES=br0,br1` (read when a host is created, like `RXL_SIM_MEM_MIB`)
//! names the host's bridges; the default is `xenbr0`, and an empty value means none.

#![forbid(unsafe_code)]

mod backend;
mod devstate;
mod disk;
pub mod dm;
mod fault;
mod hotplug;
mod hv;
mod hvm;
mod pv;
mod store;
mod xs;

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use xen_host::{
    DomId, E820Entry, Errno, GrantEntryV1, ShutdownReason, Trigger, VersionInfo, WatchEvent,
};

pub use crate::devstate::{LoopDevice, VifInterface};
use crate::disk::{Change, ChangeKind, DomRecord, HostLock, HostState, PendingShutdown};
use crate::fault::Faults;
pub use crate::fault::FAIL_OPS;
pub use crate::hotplug::SimHotplug;
pub use crate::hv::MAP_BATCH_PAGES;

/// Pages per MiB.
const PAGES_PER_MIB: u64 = 256;

/// A failure of the simulator itself: its state directory, its configuration, or an
/// errno it reports as Xen or xenstored would.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Reading or writing the state directory failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A state file does not parse.
    #[error("{}: corrupt simulator state: {message} (remove the state directory to start over)", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The simulated hypervisor or xenstored refused the operation.
    #[error("{errno}{}", if detail.is_empty() { String::new() } else { format!(": {detail}") })]
    Xen {
        /// The errno Xen or xenstored would return.
        errno: Errno,
        /// Why.
        detail: String,
    },
    /// A bad host configuration (including `RXL_SIM_MEM_MIB` / `RXL_SIM_CPUS`).
    #[error("simulated host configuration: {0}")]
    Config(String),
    /// A bad fault-injection specification.
    #[error("RXL_SIM_FAIL `{spec}`: {message}")]
    FaultSpec {
        /// The whole specification.
        spec: String,
        /// What is wrong with it.
        message: String,
    },
}

impl SimError {
    pub(crate) fn xen(errno: Errno, detail: impl Into<String>) -> SimError {
        SimError::Xen {
            errno,
            detail: detail.into(),
        }
    }

    /// The errno this failure carries, if any.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            SimError::Xen { errno, .. } => Some(*errno),
            SimError::Io { source, .. } => Some(Errno::from_io(source)),
            _ => None,
        }
    }

    fn into_host(self, op: &str) -> xen_host::Error {
        match self {
            SimError::Xen { errno, detail } => xen_host::Error::os_detail(op, errno, detail),
            SimError::Io { ref source, .. } => {
                xen_host::Error::os_detail(op, Errno::from_io(source), self.to_string())
            }
            other => xen_host::Error::other(op, other.to_string()),
        }
    }
}

fn esrch(dom: DomId) -> SimError {
    SimError::xen(Errno::ESRCH, format!("no domain {dom}"))
}

/// The size and identity of a simulated host, fixed at creation (`DIR/host.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostConfig {
    /// Host RAM in MiB.
    pub total_mib: u64,
    /// Physical CPUs.
    pub nr_cpus: u32,
    /// Memory of Domain-0 in MiB, taken from the host.
    pub dom0_mib: u64,
    /// What `xen_version` reports.
    pub xen_version: VersionInfo,
    /// CPU frequency in kHz.
    pub cpu_khz: u32,
    /// The bridges in dom0, for simulated `vif-bridge` (a host made before bridges were
    /// simulated has `xenbr0`).
    #[serde(default = "default_bridges")]
    pub bridges: Vec<String>,
}

fn default_bridges() -> Vec<String> {
    vec!["xenbr0".to_owned()]
}

/// Longest interface name Linux takes (`IFNAMSIZ` - 1).
const IFNAME_MAX: usize = 15;

impl Default for HostConfig {
    fn default() -> HostConfig {
        HostConfig {
            total_mib: 16384,
            nr_cpus: 4,
            dom0_mib: 1024,
            xen_version: VersionInfo {
                major: 4,
                minor: 17,
                extra: ".3".into(),
                capabilities: "xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64".into(),
                domctl_interface: 0x15,
                sysctl_interface: 0x15,
            },
            cpu_khz: 2_400_000,
            bridges: default_bridges(),
        }
    }
}

impl HostConfig {
    /// The defaults, with `RXL_SIM_MEM_MIB`, `RXL_SIM_CPUS` and `RXL_SIM_BRIDGES` (names
    /// separated by commas; empty for none) applied.
    pub fn from_env() -> Result<HostConfig, SimError> {
        let mut cfg = HostConfig::default();
        if let Ok(v) = std::env::var("RXL_SIM_MEM_MIB") {
            cfg.total_mib = v.trim().parse().map_err(|_| {
                SimError::Config(format!("RXL_SIM_MEM_MIB=`{v}` is not a number of MiB"))
            })?;
        }
        if let Ok(v) = std::env::var("RXL_SIM_CPUS") {
            cfg.nr_cpus = v.trim().parse().map_err(|_| {
                SimError::Config(format!("RXL_SIM_CPUS=`{v}` is not a number of CPUs"))
            })?;
        }
        if let Ok(v) = std::env::var("RXL_SIM_BRIDGES") {
            cfg.bridges = v
                .split(',')
                .map(str::trim)
                .filter(|b| !b.is_empty())
                .map(str::to_owned)
                .collect();
        }
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), SimError> {
        if !(1..=4096).contains(&self.nr_cpus) {
            return Err(SimError::Config(format!(
                "{} CPUs: the simulator supports 1 to 4096",
                self.nr_cpus
            )));
        }
        if self.dom0_mib == 0 || self.total_mib <= self.dom0_mib {
            return Err(SimError::Config(format!(
                "{} MiB host with a {} MiB Domain-0: the host needs more memory than Domain-0",
                self.total_mib, self.dom0_mib
            )));
        }
        for b in &self.bridges {
            let bad = b.is_empty()
                || b.len() > IFNAME_MAX
                || b == "."
                || b == ".."
                || b.chars().any(|c| c == '/' || c == ':' || c.is_whitespace());
            if bad {
                return Err(SimError::Config(format!(
                    "bridge `{b}` is not an interface name (1 to {IFNAME_MAX} bytes, no `/`, \
                     `:` or blanks)"
                )));
            }
        }
        if self.total_mib > (1 << 30) {
            return Err(SimError::Config(format!(
                "{} MiB is more memory than the simulator models (at most 1 PiB)",
                self.total_mib
            )));
        }
        Ok(())
    }

    fn total_pages(&self) -> u64 {
        self.total_mib * PAGES_PER_MIB
    }
}

/// Something the simulated guest does by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestEvent {
    /// The guest powers itself off.
    Poweroff,
    /// The guest reboots.
    Reboot,
    /// The guest crashes.
    Crash,
    /// The guest's watchdog fires.
    Watchdog,
    /// Whether the guest ignores requests written to `control/shutdown`.
    IgnoreShutdown(bool),
}

/// Sparse guest pages by gfn.
type GuestPages = HashMap<u64, Box<[u8]>>;

/// A registered watch.
#[derive(Debug)]
struct Watch {
    /// The absolute path (or `@...`).
    abs: String,
    /// The path as given.
    given: String,
    token: String,
}

/// Per-handle state that lives only in memory.
#[derive(Debug)]
struct Inner {
    faults: Faults,
    /// Guest pages by (domid, domain instance), then gfn.
    memory: HashMap<(u16, u64), GuestPages>,
    txs: HashMap<u32, xs::Tx>,
    next_tx: u32,
    watches: Vec<Watch>,
    /// Last change log entry consumed.
    cursor: u64,
    pending: VecDeque<WatchEvent>,
}

/// A simulated Xen host backed by a state directory.
#[derive(Debug)]
pub struct SimHost {
    dir: PathBuf,
    config: HostConfig,
    caller: DomId,
    inner: Mutex<Inner>,
    hypercalls: AtomicU64,
    /// xenstore requests through this handle (the `xs_` operations).
    xs_requests: AtomicU64,
}

/// The host as one locked operation sees it.
pub(crate) struct World<'a> {
    pub dir: &'a Path,
    pub config: &'a HostConfig,
    pub state: HostState,
    pub now: u64,
    dirty: bool,
    changes: Vec<Change>,
}

impl World<'_> {
    /// A new xenstore generation.
    pub(crate) fn bump_gen(&mut self) -> u64 {
        self.state.xs_gen += 1;
        self.dirty = true;
        self.state.xs_gen
    }

    /// Record a change for watchers.
    pub(crate) fn log(&mut self, kind: ChangeKind, path: &str) {
        self.state.seq += 1;
        self.dirty = true;
        self.changes.push(Change {
            seq: self.state.seq,
            kind,
            path: path.to_string(),
        });
    }

    /// Mark the state file as needing a rewrite.
    pub(crate) fn touch(&mut self) {
        self.dirty = true;
    }

    /// Host pages neither allocated nor claimed.
    pub(crate) fn unclaimed_pages(&self) -> u64 {
        self.free_pages()
            .saturating_sub(self.state.outstanding_pages)
    }

    /// Host pages not allocated.
    pub(crate) fn free_pages(&self) -> u64 {
        self.config
            .total_pages()
            .saturating_sub(self.state.used_pages)
    }

    fn finish(self) -> Result<(), SimError> {
        if !self.changes.is_empty() {
            disk::append_changes(self.dir, &self.changes)?;
        }
        if self.dirty {
            self.state.store(self.dir)?;
        }
        Ok(())
    }
}

pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn run_locked<T>(
    dir: &Path,
    config: &HostConfig,
    f: impl FnOnce(&mut World<'_>) -> Result<T, SimError>,
) -> Result<T, SimError> {
    let _lock = HostLock::acquire(dir)?;
    let state = HostState::load(dir)?;
    let mut world = World {
        dir,
        config,
        state,
        now: now_ns(),
        dirty: false,
        changes: Vec::new(),
    };
    let result = f(&mut world);
    let finished = world.finish();
    let value = result?;
    finished?;
    Ok(value)
}

impl SimHost {
    /// Open the simulated host in `dir`, creating it on first use (sized by
    /// `RXL_SIM_MEM_MIB` / `RXL_SIM_CPUS`, else 16 GiB and 4 CPUs). `RXL_SIM_FAIL` sets
    /// up fault injection for this handle.
    pub fn open(dir: &Path) -> Result<SimHost, SimError> {
        let rules = fault::from_env()?;
        let config = Self::init(dir, None)?;
        Ok(Self::from_parts(dir, config, rules))
    }

    /// Create a new simulated host of the given size in `dir` (an error if `dir` already
    /// holds one). Ignores `RXL_SIM_FAIL`.
    pub fn create(dir: &Path, config: HostConfig) -> Result<SimHost, SimError> {
        let config = Self::init(dir, Some(config))?;
        Ok(Self::from_parts(dir, config, Vec::new()))
    }

    /// Replace this handle's fault injection with `spec` (the `RXL_SIM_FAIL` syntax).
    pub fn with_faults(self, spec: &str) -> Result<SimHost, SimError> {
        let rules = fault::parse_spec(spec)?;
        let mut inner = self.inner.into_inner().unwrap_or_else(|e| e.into_inner());
        inner.faults = Faults::new(rules);
        Ok(SimHost {
            inner: Mutex::new(inner),
            ..self
        })
    }

    /// Make this handle's xenstore requests come from `dom` instead of Domain-0, so
    /// permissions apply to them (relative paths are relative to its home).
    pub fn with_caller(mut self, dom: DomId) -> SimHost {
        self.caller = dom;
        self
    }

    fn from_parts(dir: &Path, config: HostConfig, rules: Vec<fault::FaultRule>) -> SimHost {
        SimHost {
            dir: dir.to_path_buf(),
            config,
            caller: DomId::DOM0,
            inner: Mutex::new(Inner {
                faults: Faults::new(rules),
                memory: HashMap::new(),
                txs: HashMap::new(),
                next_tx: 1,
                watches: Vec::new(),
                cursor: 0,
                pending: VecDeque::new(),
            }),
            hypercalls: AtomicU64::new(0),
            xs_requests: AtomicU64::new(0),
        }
    }

    fn init(dir: &Path, wanted: Option<HostConfig>) -> Result<HostConfig, SimError> {
        fs::create_dir_all(dir).map_err(|e| disk::io_err(dir, e))?;
        let _lock = HostLock::acquire(dir)?;
        let host_path = dir.join("host.json");
        if let Some(cfg) = disk::read_json::<HostConfig>(&host_path)? {
            cfg.validate().map_err(|e| SimError::Corrupt {
                path: host_path.clone(),
                message: e.to_string(),
            })?;
            if wanted.is_some() {
                return Err(SimError::Config(format!(
                    "{} already holds a simulated host (use SimHost::open)",
                    dir.display()
                )));
            }
            return Ok(cfg);
        }
        let cfg = match wanted {
            Some(c) => c,
            None => HostConfig::from_env()?,
        };
        cfg.validate()?;
        for sub in ["domains", "xs", "log", "trash"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).map_err(|e| disk::io_err(&p, e))?;
        }
        let dom0_pages = cfg.dom0_mib * PAGES_PER_MIB;
        let now = now_ns();
        let state = HostState {
            used_pages: dom0_pages,
            next_instance: 1,
            ..HostState::default()
        };
        let mut world = World {
            dir,
            config: &cfg,
            state,
            now,
            dirty: true,
            changes: Vec::new(),
        };
        let dom0 = DomRecord {
            domid: 0,
            instance: 0,
            handle: [0; 16],
            ssidref: 0,
            flags: 0,
            max_vcpus: cfg.nr_cpus,
            online_vcpus: cfg.nr_cpus,
            max_evtchn_port: 4095,
            max_grant_frames: 64,
            pause_count: 0,
            started: true,
            shutdown_code: None,
            dying: false,
            tot_pages: dom0_pages,
            max_pages: dom0_pages,
            outstanding_pages: 0,
            paging_pool_pages: 0,
            run_ns: 0,
            run_since_ns: Some(now),
            evtchns: Default::default(),
            hvm_params: Default::default(),
            hvm_records: Vec::new(),
            memory_map: Vec::new(),
            tsc_mode: None,
            grants: Default::default(),
            populated: Vec::new(),
            introduced: Some((0, 0)),
            ignore_shutdown: false,
            pending: None,
            triggers: Vec::new(),
            pv: Default::default(),
        };
        disk::store_dom(dir, &dom0)?;
        xs::init_tree(&mut world)?;
        let vm = "/vm/00000000-0000-0000-0000-000000000000";
        for (path, value) in [
            ("/tool/xenstored", ""),
            ("/local/domain/0/name", "Domain-0"),
            ("/local/domain/0/domid", "0"),
            ("/local/domain/0/vm", vm),
            (&format!("{vm}/name") as &str, "Domain-0"),
            (
                &format!("{vm}/uuid"),
                "00000000-0000-0000-0000-000000000000",
            ),
        ] {
            xs::write(&mut world, DomId::DOM0, path, value.as_bytes(), false)?;
        }
        world.finish()?;
        disk::write_json(&host_path, &cfg)?;
        Ok(cfg)
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The host's configuration.
    pub fn host_config(&self) -> &HostConfig {
        &self.config
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run one operation: count its hypercalls, apply fault injection, then run `f` under
    /// the host lock. Errors name `label` (or `op`).
    fn call<T>(
        &self,
        op: &'static str,
        label: &str,
        hypercalls: u64,
        f: impl FnOnce(&mut World<'_>, &mut Inner) -> Result<T, SimError>,
    ) -> xen_host::Result<T> {
        let name = || {
            if label.is_empty() {
                op.to_string()
            } else {
                format!("{op} {label}")
            }
        };
        self.hypercalls.fetch_add(hypercalls, Ordering::Relaxed);
        if op.starts_with("xs_") {
            self.xs_requests.fetch_add(1, Ordering::Relaxed);
        }
        let mut inner = self.inner();
        if let Some((errno, n)) = inner.faults.hit(op) {
            return Err(xen_host::Error::os_detail(
                name(),
                errno,
                format!("injected by RXL_SIM_FAIL (call {n} of {op})"),
            ));
        }
        run_locked(&self.dir, &self.config, |w| f(w, &mut inner)).map_err(|e| e.into_host(&name()))
    }

    /// Make the guest in `dom` do something by itself. A shutdown while the domain is
    /// paused (or not yet started) happens when it is unpaused.
    pub fn guest_event(&self, dom: DomId, event: GuestEvent) -> xen_host::Result<()> {
        run_locked(&self.dir, &self.config, |w| {
            let mut d = load_live(w, dom)?;
            let pending = match event {
                GuestEvent::IgnoreShutdown(on) => {
                    d.ignore_shutdown = on;
                    return disk::store_dom(w.dir, &d);
                }
                GuestEvent::Poweroff => PendingShutdown::Poweroff,
                GuestEvent::Reboot => PendingShutdown::Reboot,
                GuestEvent::Crash => PendingShutdown::Crash,
                GuestEvent::Watchdog => PendingShutdown::Watchdog,
            };
            if d.shutdown_code.is_some() {
                return Err(SimError::xen(
                    Errno::EINVAL,
                    format!("domain {dom} is already shut down"),
                ));
            }
            if d.runnable() {
                do_shutdown(w, &mut d, pending_reason(pending));
            } else {
                d.pending = Some(pending);
            }
            disk::store_dom(w.dir, &d)
        })
        .map_err(|e| e.into_host(&format!("guest_event d{dom}")))
    }

    /// The triggers `sendtrigger` delivered to `dom`, in order, with their vCPU.
    pub fn triggers(&self, dom: DomId) -> xen_host::Result<Vec<(Trigger, u32)>> {
        run_locked(&self.dir, &self.config, |w| {
            let d = load_live(w, dom)?;
            Ok(d.triggers
                .iter()
                .filter_map(|&(code, vcpu)| Some((Trigger::from_code(code)?, vcpu)))
                .collect())
        })
        .map_err(|e| e.into_host(&format!("triggers d{dom}")))
    }

    /// The number of event channel ports allocated in `dom`.
    pub fn evtchn_count(&self, dom: DomId) -> xen_host::Result<usize> {
        self.inspect(dom, "evtchn_count", |d| d.evtchns.len())
    }

    /// The memory map last given to `set_memory_map`.
    pub fn memory_map(&self, dom: DomId) -> xen_host::Result<Vec<E820Entry>> {
        self.inspect(dom, "memory_map", |d| d.memory_map.clone())
    }

    /// The grant entry `gref` of `dom`, if written.
    pub fn grant_entry(&self, dom: DomId, gref: u32) -> xen_host::Result<Option<GrantEntryV1>> {
        self.inspect(dom, "grant_entry", |d| d.grants.get(&gref).copied())
    }

    /// The paging mempool size of `dom` in bytes and its tsc mode, if set.
    pub fn paging_and_tsc(&self, dom: DomId) -> xen_host::Result<(u64, Option<u32>)> {
        self.inspect(dom, "paging_and_tsc", |d| {
            (d.paging_pool_pages * xen_host::PAGE_SIZE, d.tsc_mode)
        })
    }

    fn inspect<T>(
        &self,
        dom: DomId,
        op: &str,
        f: impl FnOnce(&DomRecord) -> T,
    ) -> xen_host::Result<T> {
        let found =
            HostLock::acquire_shared(&self.dir).and_then(|_lock| disk::load_dom(&self.dir, dom.0));
        match found {
            Ok(Some(d)) => Ok(f(&d)),
            Ok(None) => Err(esrch(dom).into_host(op)),
            Err(e) => Err(e.into_host(op)),
        }
    }

    /// The simulated loop devices (set up by [`SimHotplug`]'s `block add`), by minor.
    pub fn loop_devices(&self) -> xen_host::Result<Vec<LoopDevice>> {
        devstate::inspect(&self.dir)
            .map(|(loops, _)| loops)
            .map_err(|e| e.into_host("loop_devices"))
    }

    /// The vif interfaces in dom0 (made by [`SimHotplug`]'s `vif-*` scripts), by name.
    pub fn vif_interfaces(&self) -> xen_host::Result<Vec<VifInterface>> {
        devstate::inspect(&self.dir)
            .map(|(_, ifaces)| ifaces)
            .map_err(|e| e.into_host("vif_interfaces"))
    }

    /// The ports of each bridge: `(bridge, interface)`, in order.
    pub fn bridge_ports(&self) -> xen_host::Result<Vec<(String, String)>> {
        let mut ports: Vec<(String, String)> = self
            .vif_interfaces()?
            .into_iter()
            .filter_map(|i| Some((i.bridge?, i.name)))
            .collect();
        ports.sort();
        Ok(ports)
    }

    /// The ids of every domain, Domain-0 included, in order.
    pub fn domain_ids(&self) -> xen_host::Result<Vec<DomId>> {
        HostLock::acquire_shared(&self.dir)
            .and_then(|_lock| disk::dom_ids(&self.dir))
            .map(|ids| ids.into_iter().map(DomId).collect())
            .map_err(|e| e.into_host("domain_ids"))
    }

    /// Every xenstore node at or below `prefix` with its value (lossy UTF-8), in path
    /// order.
    pub fn xs_dump(&self, prefix: &str) -> xen_host::Result<Vec<(String, String)>> {
        let op = format!("xs_dump {prefix}");
        let prefix = xs::canonical(DomId::DOM0, prefix).map_err(|e| e.into_host(&op))?;
        run_locked(&self.dir, &self.config, |w| {
            let mut out = Vec::new();
            let mut stack = vec![prefix.clone()];
            while let Some(path) = stack.pop() {
                let Some(node) = xs::read_node(w.dir, &path)? else {
                    continue;
                };
                out.push((
                    path.clone(),
                    String::from_utf8_lossy(&node.value).into_owned(),
                ));
                for child in xs::disk_children(w.dir, &path)?.into_iter().rev() {
                    stack.push(if path == "/" {
                        format!("/{child}")
                    } else {
                        format!("{path}/{child}")
                    });
                }
            }
            Ok(out)
        })
        .map_err(|e| e.into_host(&op))
    }
}

/// Load a domain or fail with ESRCH.
pub(crate) fn load_live(w: &World<'_>, dom: DomId) -> Result<DomRecord, SimError> {
    disk::load_dom(w.dir, dom.0)?.ok_or_else(|| esrch(dom))
}

fn pending_reason(p: PendingShutdown) -> ShutdownReason {
    match p {
        PendingShutdown::Poweroff => ShutdownReason::Poweroff,
        PendingShutdown::Reboot => ShutdownReason::Reboot,
        PendingShutdown::Crash => ShutdownReason::Crash,
        PendingShutdown::Watchdog => ShutdownReason::Watchdog,
    }
}

/// Shut a domain down (no-op when it already is); fires `@releaseDomain`. The caller
/// stores the record.
pub(crate) fn do_shutdown(w: &mut World<'_>, d: &mut DomRecord, reason: ShutdownReason) {
    if d.shutdown_code.is_some() || d.dying {
        return;
    }
    d.stop_clock(w.now);
    d.shutdown_code = Some(reason.code());
    d.pending = None;
    w.log(ChangeKind::Special, "@releaseDomain");
}

/// After `path` was written: if it is a guest's `control/shutdown`, let the guest react.
pub(crate) fn guest_after_write(w: &mut World<'_>, path: &str) -> Result<(), SimError> {
    let Some(rest) = path.strip_prefix("/local/domain/") else {
        return Ok(());
    };
    let Some((id, tail)) = rest.split_once('/') else {
        return Ok(());
    };
    if tail != "control/shutdown" {
        return Ok(());
    }
    match id.parse::<u16>() {
        Ok(id) if id != 0 && id < DomId::FIRST_RESERVED => guest_poll_shutdown(w, DomId(id)),
        _ => Ok(()),
    }
}

/// A running guest reads `control/shutdown` and acts on a request there, clearing it.
pub(crate) fn guest_poll_shutdown(w: &mut World<'_>, dom: DomId) -> Result<(), SimError> {
    let Some(mut d) = disk::load_dom(w.dir, dom.0)? else {
        return Ok(());
    };
    if !d.runnable() || d.ignore_shutdown {
        return Ok(());
    }
    let path = format!("/local/domain/{}/control/shutdown", dom.0);
    let Some(node) = xs::read_node(w.dir, &path)? else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(&node.value);
    let reason = match text.trim_end_matches('\0').trim() {
        "poweroff" | "halt" => ShutdownReason::Poweroff,
        "reboot" => ShutdownReason::Reboot,
        "suspend" => ShutdownReason::Suspend,
        _ => return Ok(()),
    };
    xs::write(w, DomId::DOM0, &path, b"", false)?;
    do_shutdown(w, &mut d, reason);
    disk::store_dom(w.dir, &d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation() {
        let mut c = HostConfig::default();
        assert!(c.validate().is_ok());
        c.nr_cpus = 0;
        assert!(c.validate().unwrap_err().to_string().contains("CPUs"));
        c = HostConfig {
            total_mib: 512,
            ..HostConfig::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("Domain-0"));
    }

    #[test]
    fn sim_error_keeps_errno_and_op() {
        let e = SimError::xen(Errno::ENOMEM, "host full").into_host("claim_pages");
        assert_eq!(e.errno(), Some(Errno::ENOMEM));
        assert_eq!(
            e.to_string(),
            "claim_pages: ENOMEM (out of memory): host full"
        );
    }
}
