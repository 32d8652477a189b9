//! Building a PVH or PV domain from a [`DomainConfig`] and its [`GuestPlan`], as named
//! steps, in the order libxl and libxenguest use (docs/architecture.md, xen-facts §5).
//!
//! [`Step::ALL`] lists the steps in order and [`Step::sequence`] the ones a guest type
//! runs; [`steps`] holds one function per step (the PV-only ones in [`pv_steps`]). Every
//! step runs through one combinator ([`Build::run`]) that checks for SIGINT, SIGTERM and
//! SIGHUP, times the step and tags its error with the step's name. A step that leaves
//! something behind registers its undo with the guard ([`Undo`]); when a later step fails
//! (or the create is interrupted) the guard destroys the domain first and then undoes the
//! rest in reverse order, so a failed create leaves nothing.

mod marks;
mod pv_steps;
pub(crate) mod signals;
mod steps;

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use xen_host::{DomId, Errno, Error, Hypervisor, Store, VersionInfo};
use xlcfg::model::{DomainConfig, DomainType};

use crate::plan::GuestPlan;

use crate::lifecycle;
use crate::lock::HostLock;
use crate::names::NameIndex;
use crate::state::StateDir;

pub use marks::{
    building_marker, is_incomplete, is_incomplete_domain, pending_mark, pending_marks_dir,
};

/// Declares the steps once: the enum, its names in messages and [`Step::ALL`] in order.
macro_rules! steps {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, )*) => {
        /// The steps of a create, in order.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Step {
            $( $(#[$doc])* $variant, )*
        }

        impl Step {
            /// Every step, in the order a create runs them.
            pub const ALL: &'static [Step] = &[$(Step::$variant),*];

            /// The step's name in messages (and in docs/architecture.md).
            pub fn name(self) -> &'static str {
                match self {
                    $( Step::$variant => $name, )*
                }
            }
        }
    };
}

steps! {
    /// physinfo and xen_version: the host can run PVH guests.
    CheckHost => "check host",
    /// Every disk and vif can be set up (checked before anything is made).
    CheckDevices => "check devices",
    /// Take the host lock; the name is free.
    ReserveName => "reserve name",
    /// No domain on the host uses the uuid (Xen's domain handles and `/vm`).
    CheckUuid => "check uuid",
    /// The pending-create mark keyed by uuid, naming this process, in the state directory.
    PendingMark => "pending mark",
    /// XEN_DOMCTL_createdomain.
    CreateDomain => "createdomain",
    /// The xenstore skeleton (name, vm, control nodes, the in-progress marker) and the name
    /// index entry; the host lock is released after it.
    XenstoreSkeleton => "xenstore skeleton",
    /// max_vcpus.
    MaxVcpus => "max_vcpus",
    /// max_mem.
    MaxMem => "max_mem",
    /// Event channels for xenstore and the console.
    EventChannels => "event channels",
    /// HVM parameters, TSC mode, paging pool (PVH and HVM).
    HvmParams => "hvm params",
    /// The memory map's limit (one RAM entry up to maxmem) and the TSC mode (PV).
    MemmapLimit => "memmap limit",
    /// XEN_DOMCTL_set_address_size 64 (PV).
    AddressSize => "address size",
    /// Claim the guest's memory.
    ClaimMemory => "claim memory",
    /// Populate RAM, ACPI and special pages (PVH); all of RAM, keeping the p2m (PV).
    PopulateMemory => "populate memory",
    /// Release what is left of the claim.
    ReleaseClaim => "release claim",
    /// XENMEM_set_memory_map (PVH).
    MemoryMap => "memory map",
    /// Copy the kernel, modules, start_info and ACPI tables (PVH); the kernel and ramdisk,
    /// zeroing the rest of the boot allocation (PV).
    LoadImage => "load image",
    /// The page tables of the initial mapping, in machine frames, and the p2m list (PV).
    PageTables => "page tables",
    /// The vCPUs' event upcalls masked in shared_info (PV).
    SharedInfo => "shared info",
    /// The start_info page (PV).
    StartInfo => "start info",
    /// XEN_DOMCTL_hypercall_init on the kernel's hypercall page (PV).
    HypercallPage => "hypercall page",
    /// MMUEXT_PIN_L4_TABLE on the top page table (PV).
    PinTables => "pin tables",
    /// The special pages' HVM parameters (PVH and HVM; HVM adds the ioreq server pages).
    SpecialPages => "special pages",
    /// The first vCPU's registers (sethvmcontext for PVH, setvcpucontext for PV).
    VcpuContext => "vcpu context",
    /// Grant entries for the console and xenstore rings.
    GrantTable => "grant table",
    /// The rest of the xenstore entries (memory, store, console).
    XenstoreEntries => "xenstore entries",
    /// XS_INTRODUCE.
    Introduce => "introduce",
    /// Disks, then vifs: nodes, backends in InitWait, hotplug commands in parallel.
    Devices => "devices",
    /// The device model (QEMU in dom0) of an HVM guest, or of a guest with disks it
    /// serves, confirmed running.
    DeviceModel => "device model",
    /// rxl's record of the domain.
    Record => "record",
    /// Start the domain's monitor (when the caller asks for one).
    StartMonitor => "start monitor",
    /// Unpause (unless the create asks for a paused domain).
    Unpause => "unpause",
    /// Remove the in-progress marker and the pending-create mark: the create is complete.
    MarkComplete => "mark complete",
}

impl Step {
    /// Whether a guest of type `ty` runs this step.
    pub fn runs_for(self, ty: DomainType) -> bool {
        let pv_only = matches!(
            self,
            Step::MemmapLimit
                | Step::AddressSize
                | Step::PageTables
                | Step::SharedInfo
                | Step::StartInfo
                | Step::HypercallPage
                | Step::PinTables
        );
        let pvh_only = matches!(self, Step::HvmParams | Step::MemoryMap | Step::SpecialPages);
        match ty {
            DomainType::Pv => !pvh_only,
            _ => !pv_only,
        }
    }

    /// The steps a create of a guest of type `ty` runs, in order.
    pub fn sequence(ty: DomainType) -> impl Iterator<Item = Step> {
        Step::ALL.iter().copied().filter(move |s| s.runs_for(ty))
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failed create: the step, and why.
#[derive(Debug, thiserror::Error)]
#[error("create failed at step \"{step}\": {message}")]
pub struct CreateError {
    /// The step that failed.
    pub step: Step,
    /// What went wrong.
    pub message: String,
    /// The host error, when there was one (its text is already in `message`).
    pub host_error: Option<Error>,
    /// The signal that interrupted the create before this step, if that is why it failed.
    pub signal: Option<nix::sys::signal::Signal>,
}

impl CreateError {
    /// The errno of the host error, if any.
    pub fn errno(&self) -> Option<Errno> {
        self.host_error.as_ref().and_then(Error::errno)
    }
}

/// Why a step failed, before the combinator tags it with the step.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A host operation failed.
    Host(Error),
    /// A host operation failed; `context` says on what.
    HostIn(String, Error),
    /// Anything else.
    Msg(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Host(e)
    }
}

impl Failure {
    fn at(self, step: Step) -> CreateError {
        let (message, host_error) = match self {
            Failure::Host(e) => (e.to_string(), Some(e)),
            Failure::HostIn(context, e) => (format!("{context}: {e}"), Some(e)),
            Failure::Msg(m) => (m, None),
        };
        CreateError {
            step,
            message,
            host_error,
            signal: None,
        }
    }
}

/// How to create.
#[derive(Clone, Debug)]
pub struct CreateOptions {
    /// Leave the domain paused.
    pub paused: bool,
    /// rxl's state directory: records and the host lock.
    pub state_dir: PathBuf,
    /// The domain id of xenconsoled and xenstored (0: dom0).
    pub backend_domid: DomId,
    /// How disks and vifs are set up and taken down.
    pub devices: crate::devices::DeviceOptions,
    /// How a bootloader runs (by [`crate::launch`] and so at every restart by the monitor).
    pub bootloader: crate::bootloader::BootloaderOptions,
}

/// Starts the monitor of a built domain (the [`Step::StartMonitor`] step). A failure rolls
/// the create back.
pub type StartMonitor<'a> = dyn FnMut(DomId) -> std::io::Result<()> + 'a;

/// What a create did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Created {
    /// The new domain.
    pub domid: DomId,
    /// Its name.
    pub name: String,
    /// Hypercalls issued (as counted by the backend).
    pub hypercalls: u64,
    /// Each step's share, in order.
    pub steps: Vec<StepProfile>,
}

/// What one create step cost: its wall time and the work it asked of Xen and xenstored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepProfile {
    /// The step.
    pub step: Step,
    /// Wall time, microseconds.
    pub us: u64,
    /// Hypercalls (privcmd ioctls count as one each) issued through the create's handle.
    pub hypercalls: u64,
    /// Microseconds spent inside those ioctls (0 where the host does not time them).
    pub hypercall_us: u64,
    /// xenstore requests (round trips) through the create's connection.
    pub xs_requests: u64,
}

impl serde::Serialize for StepProfile {
    fn serialize<Z: serde::Serializer>(&self, s: Z) -> Result<Z::Ok, Z::Error> {
        use serde::ser::SerializeStruct as _;
        let mut st = s.serialize_struct("StepProfile", 5)?;
        st.serialize_field("step", self.step.name())?;
        st.serialize_field("us", &self.us)?;
        st.serialize_field("hypercalls", &self.hypercalls)?;
        st.serialize_field("hypercall_us", &self.hypercall_us)?;
        st.serialize_field("xs_requests", &self.xs_requests)?;
        st.end()
    }
}

/// The record rxl keeps per domain.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// The domain id.
    pub domid: DomId,
    /// The resolved config (absolute paths): a restart rebuilds from it.
    pub config: DomainConfig,
    /// How many times the monitor restarted the guest.
    #[serde(default)]
    pub restarts: u32,
    /// Who applies the on_* actions: the host monitor unless the create said otherwise.
    #[serde(default)]
    pub monitored_by: crate::monitor::MonitoredBy,
}

/// What a step left behind, undone when a later step fails.
#[derive(Debug)]
enum UndoAction {
    /// The pending-create mark file (kept when the domain's cleanup failed: it marks what
    /// is left as an abandoned create).
    RemovePendingMark(PathBuf),
    /// The domain itself (undone first, whenever it was registered).
    Destroy(DomId),
    /// Everything kept about the domain once Xen has destroyed it: its xenstore nodes
    /// (under `/vm/UUID` too), rxl's record, the name index entry
    /// ([`lifecycle::finish_cleanup`]).
    Cleanup(DomId),
    /// The domain's introduction to xenstored.
    Release(DomId),
    /// The domain's devices (undone before the domain is destroyed, as libxl's destroy
    /// removes the devices of a paused domain first).
    Devices(DomId),
    /// The domain's device model (stopped before its devices go).
    DeviceModel(DomId),
}

/// The undo guard: armed until the last step succeeds.
struct Undo<'a, H: Hypervisor + ?Sized, S: Store + ?Sized> {
    hv: &'a H,
    xs: &'a S,
    cfg: &'a DomainConfig,
    state_dir: PathBuf,
    devices: crate::devices::DeviceOptions,
    uuid: String,
    actions: Vec<(Step, UndoAction)>,
    armed: bool,
}

impl<H: Hypervisor + ?Sized, S: Store + ?Sized> Undo<'_, H, S> {
    /// Undo `action`; false when it failed. `clean` says whether everything before it
    /// succeeded.
    fn undo(&self, step: Step, action: &UndoAction, clean: bool) -> bool {
        let failed = |what: &str, e: &dyn fmt::Display| {
            tracing::error!("cleanup of step \"{step}\": {what} failed: {e}");
            false
        };
        match action {
            UndoAction::RemovePendingMark(_) if !clean => {
                tracing::warn!("the pending-create mark stays: the domain was not cleaned up");
                false
            }
            UndoAction::RemovePendingMark(path) => match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    failed("removing the pending-create mark", &e)
                }
                _ => true,
            },
            UndoAction::Destroy(dom) => {
                tracing::warn!("create of domain {dom} failed: destroying it");
                match self.hv.destroy(*dom) {
                    Err(e) if !e.is_gone() => failed("destroy", &e),
                    _ => true,
                }
            }
            UndoAction::Cleanup(dom) => {
                let state = StateDir::new(self.state_dir.clone());
                match lifecycle::finish_cleanup_of(
                    self.hv,
                    self.xs,
                    &self.devices,
                    &state,
                    *dom,
                    Some(&self.uuid),
                ) {
                    Ok(_) => {
                        NameIndex::new(&self.state_dir).remove(&self.cfg.name, *dom);
                        true
                    }
                    Err(e) => {
                        let done = failed("removing what is kept about the domain", &e);
                        self.keep_leftovers_findable(&state, *dom);
                        done
                    }
                }
            }
            UndoAction::DeviceModel(dom) => {
                match crate::dm::stop(self.xs, &self.devices.dm, *dom) {
                    Ok(()) => true,
                    Err(e) => failed("stopping the device model", &e),
                }
            }
            UndoAction::Devices(dom) => {
                match crate::devices::remove_all(self.xs, &self.devices, *dom) {
                    Ok(()) => true,
                    Err(e) => failed("removing the devices", &e),
                }
            }
            UndoAction::Release(dom) => match self.xs.release(*dom) {
                // ENOENT: xenstored already forgot the domain it saw destroyed.
                Ok(()) => true,
                Err(e) if e.errno() == Some(Errno::ENOENT) => true,
                // xenstored forgets a dead domain by itself: nothing is left for a destroy.
                Err(e) => !failed("release from xenstored", &e),
            },
        }
    }

    /// After a cleanup that failed part-way: what a later `rxl destroy ID` or `rxl destroy
    /// NAME` needs to find what is left (`lifecycle::leftovers`) and the uuid of its
    /// `/vm/UUID` node: rxl's record of the domain and its name index entry.
    fn keep_leftovers_findable(&self, state: &StateDir, dom: DomId) {
        if !state.has_record(dom) {
            let record = Record {
                domid: dom,
                config: self.cfg.clone(),
                restarts: 0,
                monitored_by: Default::default(),
            };
            if let Err(e) = state.save(dom, &record) {
                tracing::error!("cannot keep the record of domain {dom}'s leftovers: {e}");
            }
        }
        let index = NameIndex::new(&self.state_dir);
        if index.lookup(&self.cfg.name).is_none() {
            if let Err(e) = index.insert(&self.cfg.name, dom) {
                tracing::error!("cannot keep the name of domain {dom}'s leftovers: {e}");
            }
        }
        tracing::error!(
            "domain {dom} was not cleaned up entirely: `rxl destroy {dom}` removes what is left"
        );
    }
}

impl<H: Hypervisor + ?Sized, S: Store + ?Sized> Drop for Undo<'_, H, S> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // The devices go first, while the domain is still paused (libxl's destroy order);
        // then the domain, so that nothing runs in it while its records go and a cleanup
        // cut short leaves records of no domain rather than a domain without them.
        let mut clean = true;
        for (step, action) in &self.actions {
            if matches!(action, UndoAction::DeviceModel(_)) {
                clean &= self.undo(*step, action, clean);
            }
        }
        for (step, action) in &self.actions {
            if let UndoAction::Devices(dom) = action {
                // Already paused unless the create failed after unpause.
                let _ = self.hv.pause(*dom);
                clean &= self.undo(*step, action, clean);
            }
        }
        for (step, action) in &self.actions {
            if matches!(action, UndoAction::Destroy(_)) {
                clean &= self.undo(*step, action, clean);
            }
        }
        for (step, action) in self.actions.iter().rev() {
            if !matches!(
                action,
                UndoAction::Destroy(_) | UndoAction::Devices(_) | UndoAction::DeviceModel(_)
            ) {
                clean &= self.undo(*step, action, clean);
            }
        }
    }
}

/// Everything the steps share: the inputs, what earlier steps produced, and the guard.
pub(crate) struct Build<'a, H: Hypervisor + ?Sized, S: Store + ?Sized> {
    hv: &'a H,
    xs: &'a S,
    cfg: &'a DomainConfig,
    plan: &'a GuestPlan,
    opts: &'a CreateOptions,
    monitor: Option<&'a mut StartMonitor<'a>>,
    uuid: String,
    undo: Undo<'a, H, S>,
    version: Option<VersionInfo>,
    lock: Option<HostLock>,
    dom: Option<DomId>,
    ports: Option<(u32, u32)>,
    /// A PV guest's machine frame for each of its frames (from [`Step::PopulateMemory`]).
    p2m: Option<Vec<u64>>,
    /// A PV guest's shared_info frame (from [`Step::SharedInfo`]).
    shared_info_mfn: Option<u64>,
    timings: Vec<StepProfile>,
}

impl<'a, H: Hypervisor + ?Sized, S: Store + ?Sized> Build<'a, H, S> {
    /// Register what `step` left behind with the undo guard.
    fn left(&mut self, step: Step, action: UndoAction) {
        self.undo.actions.push((step, action));
    }

    /// The domain, once [`Step::CreateDomain`] has run.
    fn dom(&self) -> Result<DomId, Failure> {
        self.dom
            .ok_or_else(|| Failure::Msg("no domain yet: the step list is out of order".into()))
    }

    /// The PVH plan (a step of PVH guests asks).
    fn pvh(&self) -> Result<&'a pvh::BootPlan, Failure> {
        self.plan
            .as_pvh()
            .ok_or_else(|| Failure::Msg("a PVH step in a PV create: the step list is wrong".into()))
    }

    /// The HVM plan, when the guest is HVM.
    fn hvm(&self) -> Option<&'a pvh::HvmPlan> {
        self.plan.as_hvm()
    }

    /// The PV plan (a step of PV guests asks).
    fn pv(&self) -> Result<&'a pv::PvPlan, Failure> {
        self.plan
            .as_pv()
            .ok_or_else(|| Failure::Msg("a PV step in a PVH create: the step list is wrong".into()))
    }

    /// A PV guest's p2m, once [`Step::PopulateMemory`] has run.
    fn p2m(&self) -> Result<&[u64], Failure> {
        self.p2m
            .as_deref()
            .ok_or_else(|| Failure::Msg("no p2m yet: the step list is out of order".into()))
    }

    /// The machine frame of a PV guest's frame `pfn`.
    fn mfn(&self, pfn: u64) -> Result<u64, Failure> {
        let p2m = self.p2m()?;
        usize::try_from(pfn)
            .ok()
            .and_then(|i| p2m.get(i).copied())
            .ok_or_else(|| {
                Failure::Msg(format!(
                    "frame {pfn:#x} is beyond the guest's {} frames",
                    p2m.len()
                ))
            })
    }

    /// The combinator: one step, checked for signals, timed, its error tagged.
    fn run(&mut self, step: Step, signals: &signals::Interrupts) -> Result<(), CreateError> {
        if let Some(sig) = signals.pending() {
            return Err(CreateError {
                step,
                message: format!("interrupted by {}", sig.as_str()),
                host_error: None,
                signal: Some(sig),
            });
        }
        let calls = self.hv.hypercall_count();
        let ns = self.hv.hypercall_nanos();
        let reqs = self.xs.request_count();
        let start = Instant::now();
        let result = steps::run(step, self);
        let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        tracing::debug!("create step {step}: {us} us");
        self.timings.push(StepProfile {
            step,
            us,
            hypercalls: self.hv.hypercall_count().saturating_sub(calls),
            hypercall_us: self.hv.hypercall_nanos().saturating_sub(ns) / 1000,
            xs_requests: self.xs.request_count().saturating_sub(reqs),
        });
        result.map_err(|f| f.at(step))
    }
}

/// Create the domain described by `cfg`, booting as `plan` says.
pub fn create<H, S>(
    hv: &H,
    xs: &S,
    cfg: &DomainConfig,
    plan: &GuestPlan,
    opts: &CreateOptions,
) -> Result<Created, CreateError>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    create_monitored(hv, xs, cfg, plan, opts, None)
}

/// As [`create`], and start the domain's monitor with `monitor` before it is unpaused: a
/// monitor that cannot start fails the create, which then leaves nothing.
pub fn create_monitored<'a, H, S>(
    hv: &'a H,
    xs: &'a S,
    cfg: &'a DomainConfig,
    plan: &'a GuestPlan,
    opts: &'a CreateOptions,
    monitor: Option<&'a mut StartMonitor<'a>>,
) -> Result<Created, CreateError>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let started_calls = hv.hypercall_count();
    let signals = signals::Interrupts::catch();
    let uuid = cfg.uuid.hyphenated().to_string();
    let mut build = Build {
        hv,
        xs,
        cfg,
        plan,
        opts,
        monitor,
        uuid: uuid.clone(),
        undo: Undo {
            hv,
            xs,
            cfg,
            state_dir: opts.state_dir.clone(),
            devices: opts.devices.clone(),
            uuid,
            actions: Vec::new(),
            armed: true,
        },
        version: None,
        lock: None,
        dom: None,
        ports: None,
        p2m: None,
        shared_info_mfn: None,
        timings: Vec::with_capacity(Step::ALL.len()),
    };
    if (cfg.domain_type == DomainType::Pv) != plan.as_pv().is_some()
        || (cfg.domain_type == DomainType::Hvm) != plan.as_hvm().is_some()
    {
        return Err(CreateError {
            step: Step::CheckHost,
            message: format!(
                "a type = \"{}\" guest cannot be built from this boot plan",
                cfg.domain_type.as_str()
            ),
            host_error: None,
            signal: None,
        });
    }
    for step in Step::sequence(cfg.domain_type) {
        build.run(step, &signals)?;
    }
    build.undo.armed = false;
    let dom = build.dom().map_err(|f| f.at(Step::MarkComplete))?;
    Ok(Created {
        domid: dom,
        name: cfg.name.clone(),
        hypercalls: hv.hypercall_count().saturating_sub(started_calls),
        steps: std::mem::take(&mut build.timings),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The step list in docs/architecture.md is the code's, in order.
    #[test]
    fn the_documented_step_list_is_the_code_s() {
        let doc = include_str!("../../../../docs/architecture.md");
        let section = doc
            .split("## The create sequence")
            .nth(1)
            .expect("docs/architecture.md has a create sequence section");
        let documented: Vec<&str> = section
            .lines()
            .skip_while(|l| !l.starts_with("<!-- steps -->"))
            .skip(1)
            .take_while(|l| !l.starts_with("<!-- /steps -->"))
            .filter_map(|l| {
                let l = l.trim_start();
                let (number, rest) = l.split_once(". ")?;
                number.parse::<usize>().ok()?;
                rest.strip_prefix("**")?.split_once("**").map(|(n, _)| n)
            })
            .collect();
        let code: Vec<&str> = Step::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(documented, code, "docs/architecture.md lists other steps");
    }

    #[test]
    fn step_names_are_unique() {
        let mut names: Vec<&str> = Step::ALL.iter().map(|s| s.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Step::ALL.len());
    }
}
