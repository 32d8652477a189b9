//! Building a PVH domain from a [`DomainConfig`] and its [`BootPlan`], as named steps, in
//! the order libxl and libxenguest use (docs/architecture.md, xen-facts §5).
//!
//! Every step that leaves something behind registers it with an undo guard; when a later
//! step fails the guard destroys the domain, removes its xenstore nodes and rxl's record,
//! so a failed create leaves nothing. The error names the step.

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use pvh::BootPlan;
use xen_abi::hvm::{self as save, HvmContextBuilder, HvmHwCpu, HvmHwMtrr};
use xen_abi::wire::Wire as _;
use xen_host::{
    hvm_param, DomId, E820Entry, Errno, Error, GrantEntryV1, Hypervisor, Store, GTF_PERMIT_ACCESS,
    PAGE_SHIFT, PAGE_SIZE,
};
use xlcfg::model::DomainConfig;

use crate::lock::HostLock;
use crate::memory::{self, FrameRange};
use crate::names::NameIndex;
use crate::state::StateDir;
use crate::xs_layout::{self, Built, Identity};

/// The steps of a create, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// physinfo and xen_version: the host can run PVH guests.
    CheckHost,
    /// The name is free (under the host lock).
    ReserveName,
    /// XEN_DOMCTL_createdomain.
    CreateDomain,
    /// The xenstore skeleton: name, vm, control nodes.
    XenstoreSkeleton,
    /// max_vcpus.
    MaxVcpus,
    /// max_mem.
    MaxMem,
    /// Event channels for xenstore and the console.
    EventChannels,
    /// HVM parameters, TSC mode, paging pool.
    HvmParams,
    /// Claim the guest's memory.
    ClaimMemory,
    /// Populate RAM, ACPI and special pages.
    PopulateMemory,
    /// XENMEM_set_memory_map.
    MemoryMap,
    /// Copy the kernel, modules, start_info and ACPI tables.
    LoadImage,
    /// The special pages' HVM parameters.
    SpecialPages,
    /// The first vCPU's registers (sethvmcontext).
    VcpuContext,
    /// Grant entries for the console and xenstore rings.
    GrantTable,
    /// The rest of the xenstore entries (memory, store, console).
    XenstoreEntries,
    /// XS_INTRODUCE.
    Introduce,
    /// rxl's record of the domain.
    Record,
    /// Unpause.
    Unpause,
}

impl Step {
    /// The step's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Step::CheckHost => "check host",
            Step::ReserveName => "reserve name",
            Step::CreateDomain => "createdomain",
            Step::XenstoreSkeleton => "xenstore skeleton",
            Step::MaxVcpus => "max_vcpus",
            Step::MaxMem => "max_mem",
            Step::EventChannels => "event channels",
            Step::HvmParams => "hvm params",
            Step::ClaimMemory => "claim memory",
            Step::PopulateMemory => "populate memory",
            Step::MemoryMap => "memory map",
            Step::LoadImage => "load image",
            Step::SpecialPages => "special pages",
            Step::VcpuContext => "vcpu context",
            Step::GrantTable => "grant table",
            Step::XenstoreEntries => "xenstore entries",
            Step::Introduce => "introduce",
            Step::Record => "record",
            Step::Unpause => "unpause",
        }
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
}

impl CreateError {
    fn host(step: Step, err: Error) -> CreateError {
        CreateError {
            step,
            message: err.to_string(),
            host_error: Some(err),
        }
    }

    fn msg(step: Step, message: impl Into<String>) -> CreateError {
        CreateError {
            step,
            message: message.into(),
            host_error: None,
        }
    }

    /// The errno of the host error, if any.
    pub fn errno(&self) -> Option<Errno> {
        self.host_error.as_ref().and_then(Error::errno)
    }
}

trait StepExt<T> {
    fn at(self, step: Step) -> Result<T, CreateError>;
}

impl<T> StepExt<T> for Result<T, Error> {
    fn at(self, step: Step) -> Result<T, CreateError> {
        self.map_err(|e| CreateError::host(step, e))
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
}

/// What a create did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Created {
    /// The new domain.
    pub domid: DomId,
    /// Its name.
    pub name: String,
    /// Hypercalls issued (as counted by the backend).
    pub hypercalls: u64,
    /// Time per step, in microseconds, in order.
    pub step_us: Vec<(Step, u64)>,
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
}

/// The `/libxl/<id>` node that marks a create in progress; removed when the create
/// completes. A domain that still has it once its creator is gone is incomplete.
pub fn building_marker(dom: DomId) -> String {
    format!("{}/rxl-creating", xs_layout::libxl_path(dom))
}

/// Whether `dom` is a create that never finished: the marker is there and the process that
/// wrote it is gone.
pub fn is_incomplete<S: Store + ?Sized>(xs: &S, dom: DomId) -> Result<bool, Error> {
    let Some(pid) = xen_host::read_string(xs, xen_host::TxId::NONE, &building_marker(dom))? else {
        return Ok(false);
    };
    let alive = pid
        .trim()
        .parse::<i32>()
        .ok()
        .is_some_and(|p| p > 0 && std::path::Path::new(&format!("/proc/{p}")).exists());
    Ok(!alive)
}

/// Undo what a failed create built.
struct Undo<'a, H: Hypervisor + ?Sized, S: Store + ?Sized> {
    hv: &'a H,
    xs: &'a S,
    state: StateDir,
    names: NameIndex,
    name: String,
    uuid: String,
    dom: Option<DomId>,
    introduced: bool,
    armed: bool,
}

impl<H: Hypervisor + ?Sized, S: Store + ?Sized> Drop for Undo<'_, H, S> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Some(dom) = self.dom else { return };
        tracing::warn!("create of domain {dom} failed: destroying it");
        if let Err(e) = self.hv.destroy(dom) {
            tracing::error!("cleanup: destroy of domain {dom} failed: {e}");
        }
        if self.introduced {
            let _ = self.xs.release(dom);
        }
        if let Err(e) = xs_layout::remove(self.xs, dom, &self.uuid) {
            tracing::error!("cleanup: removing xenstore nodes of domain {dom} failed: {e}");
        }
        let _ = self.state.remove(dom);
        self.names.remove(&self.name, dom);
    }
}

/// Libxl's slack between the balloon target and the hypervisor limit, KiB.
const MAXMEM_SLACK_KIB: u64 = 1024;
/// `MTRR_TYPE_WRBACK | MTRR_DEF_TYPE_ENABLE`.
const MTRR_DEF_WB_ENABLED: u64 = 0x806;
/// Bytes copied per write_guest call.
const COPY_CHUNK: usize = 2 << 20;

/// Create the domain described by `cfg`, booting as `plan` says.
pub fn create<H, S>(
    hv: &H,
    xs: &S,
    cfg: &DomainConfig,
    plan: &BootPlan,
    opts: &CreateOptions,
) -> Result<Created, CreateError>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let started_calls = hv.hypercall_count();
    let mut timer = StepTimer::new();
    let state = StateDir::new(opts.state_dir.clone());
    let uuid = cfg.uuid.hyphenated().to_string();

    // 1. The host can run PVH guests.
    let version = hv.version().at(Step::CheckHost)?;
    if !version
        .capabilities
        .split_whitespace()
        .any(|c| c == "hvm-3.0-x86_32")
    {
        return Err(CreateError::msg(
            Step::CheckHost,
            format!(
                "this Xen cannot run HVM/PVH guests (capabilities: {}): PVH needs \
                 hardware virtualisation (VT-x or AMD-V) enabled",
                version.capabilities
            ),
        ));
    }
    let phys = hv.physinfo().at(Step::CheckHost)?;
    if !phys.caps.hap {
        return Err(CreateError::msg(
            Step::CheckHost,
            "this host has no hardware-assisted paging (HAP: EPT or NPT), which rxl's PVH \
             guests need",
        ));
    }
    if cfg.maxmem_mib != cfg.memory_mib {
        return Err(CreateError::msg(
            Step::CheckHost,
            format!(
                "maxmem = {} is larger than memory = {}: populate-on-demand is not supported \
                 by rxl; set maxmem = memory",
                cfg.maxmem_mib, cfg.memory_mib
            ),
        ));
    }
    timer.done(Step::CheckHost);

    let names = NameIndex::new(&opts.state_dir);
    let mut undo = Undo {
        hv,
        xs,
        state: state.clone(),
        names: names.clone(),
        name: cfg.name.clone(),
        uuid: uuid.clone(),
        dom: None,
        introduced: false,
        armed: true,
    };

    // 2. Under the host lock: the name is free, the domain exists and carries its name.
    let dom = {
        let _lock = HostLock::acquire(&opts.state_dir, "create")
            .map_err(|e| CreateError::msg(Step::ReserveName, e.to_string()))?;
        // A monitor restarting a guest of this name holds it (its own rebuild passes).
        if let Some(pid) = crate::restarts::restarting(&opts.state_dir, &cfg.name)
            .filter(|&pid| pid != std::process::id())
        {
            return Err(CreateError::msg(
                Step::ReserveName,
                format!(
                    "a domain called \"{}\" is being restarted by rxl's monitor (pid {pid})",
                    cfg.name
                ),
            ));
        }
        if let Some(other) = names.find(hv, xs, &cfg.name).at(Step::ReserveName)? {
            return Err(CreateError::msg(
                Step::ReserveName,
                format!(
                    "a domain called \"{}\" already exists (id {other})",
                    cfg.name
                ),
            ));
        }
        timer.done(Step::ReserveName);

        let create = xen_host::CreateDomain {
            max_evtchn_port: cfg.max_event_channels,
            max_grant_frames: cfg.max_grant_frames,
            max_maptrack_frames: cfg.max_maptrack_frames,
            ..xen_host::CreateDomain::pvh(*cfg.uuid.as_bytes(), cfg.maxvcpus)
        };
        let dom = hv.create_domain(&create).at(Step::CreateDomain)?;
        undo.dom = Some(dom);
        timer.done(Step::CreateDomain);

        let mut nodes = xs_layout::skeleton(&Identity {
            dom,
            uuid: &uuid,
            name: &cfg.name,
            kind: "pvh",
        });
        nodes.push(xs_layout::Node {
            path: building_marker(dom),
            value: Some(std::process::id().to_string()),
            perms: None,
        });
        xs_layout::apply(xs, &nodes).at(Step::XenstoreSkeleton)?;
        names
            .insert(&cfg.name, dom)
            .map_err(|e| CreateError::msg(Step::XenstoreSkeleton, format!("name index: {e}")))?;
        timer.done(Step::XenstoreSkeleton);
        dom
    };

    // 3. Limits.
    hv.max_vcpus(dom, cfg.maxvcpus).at(Step::MaxVcpus)?;
    timer.done(Step::MaxVcpus);
    let max_kib = cfg.maxmem_mib * 1024;
    hv.max_mem(dom, max_kib + MAXMEM_SLACK_KIB)
        .at(Step::MaxMem)?;
    timer.done(Step::MaxMem);

    // 4. Event channels for the xenstore and console rings.
    let store_port = hv
        .alloc_unbound(dom, opts.backend_domid)
        .at(Step::EventChannels)?;
    let console_port = hv
        .alloc_unbound(dom, opts.backend_domid)
        .at(Step::EventChannels)?;
    timer.done(Step::EventChannels);

    // 5. HVM parameters, TSC, paging pool.
    hv.set_hvm_param(dom, hvm_param::TIMER_MODE, 1)
        .at(Step::HvmParams)?;
    if (version.major, version.minor) < (4, 19) {
        hv.set_hvm_param(dom, hvm_param::ALTP2M, 0)
            .at(Step::HvmParams)?;
    }
    hv.set_tsc_info(dom, 0).at(Step::HvmParams)?;
    let pool_kib = 4 * (256 * u64::from(cfg.maxvcpus) + cfg.maxmem_mib);
    hv.set_paging_mempool_size(dom, pool_kib << 10)
        .at(Step::HvmParams)?;
    timer.done(Step::HvmParams);

    // 6. Memory: claim, populate (superpages first), memory map.
    let ranges: Vec<FrameRange> = plan
        .populate()
        .iter()
        .map(|r| FrameRange {
            start: r.start >> PAGE_SHIFT,
            pages: r.len().div_ceil(PAGE_SIZE),
        })
        .collect();
    let total_pages: u64 = ranges.iter().map(|r| r.pages).sum();
    hv.claim_pages(dom, total_pages).at(Step::ClaimMemory)?;
    timer.done(Step::ClaimMemory);
    memory::populate(hv, dom, &ranges).at(Step::PopulateMemory)?;
    hv.claim_pages(dom, 0).at(Step::PopulateMemory)?;
    timer.done(Step::PopulateMemory);
    let map: Vec<E820Entry> = plan.memmap.clone();
    hv.set_memory_map(dom, &map).at(Step::MemoryMap)?;
    timer.done(Step::MemoryMap);

    // 7. The boot image.
    load_image(hv, dom, plan)?;
    timer.done(Step::LoadImage);

    // 8. Special pages.
    let sp = &plan.special_pages;
    for (param, pfn) in [
        (hvm_param::PAGING_RING_PFN, sp.paging),
        (hvm_param::MONITOR_RING_PFN, sp.access),
        (hvm_param::SHARING_RING_PFN, sp.sharing),
        (hvm_param::BUFIOREQ_PFN, sp.bufioreq),
        (hvm_param::STORE_PFN, sp.xenstore),
        (hvm_param::IOREQ_PFN, sp.ioreq),
        (hvm_param::IDENT_PT, sp.ident_pt << PAGE_SHIFT),
        (hvm_param::CONSOLE_PFN, sp.console),
        (hvm_param::STORE_EVTCHN, u64::from(store_port)),
        (hvm_param::CONSOLE_EVTCHN, u64::from(console_port)),
    ] {
        hv.set_hvm_param(dom, param, pfn).at(Step::SpecialPages)?;
    }
    timer.done(Step::SpecialPages);

    // 9. The vCPUs.
    set_vcpu_context(hv, dom, cfg.maxvcpus, plan)?;
    timer.done(Step::VcpuContext);

    // 10. Grant entries: 0 for the console, 1 for xenstore (C xenstored maps ref 1).
    let frame = |pfn: u64| {
        u32::try_from(pfn)
            .map_err(|_| CreateError::msg(Step::GrantTable, format!("pfn {pfn:#x} too large")))
    };
    let grants = [
        GrantEntryV1 {
            flags: GTF_PERMIT_ACCESS,
            domid: opts.backend_domid.0,
            frame: frame(sp.console)?,
        },
        GrantEntryV1 {
            flags: GTF_PERMIT_ACCESS,
            domid: opts.backend_domid.0,
            frame: frame(sp.xenstore)?,
        },
    ];
    hv.write_grant_entries(dom, 0, &grants)
        .at(Step::GrantTable)?;
    timer.done(Step::GrantTable);

    // 11. xenstore entries, then introduce the domain to xenstored.
    let built = Built {
        dom,
        max_memkb: max_kib,
        target_memkb: cfg.memory_mib * 1024,
        store_port,
        store_gfn: sp.xenstore,
        console_port,
        console_gfn: sp.console,
        vcpus: cfg.vcpus,
        max_vcpus: cfg.maxvcpus,
    };
    xs_layout::apply(xs, &xs_layout::post_build(&built)).at(Step::XenstoreEntries)?;
    timer.done(Step::XenstoreEntries);
    xs.introduce(dom, xen_host::Gfn(sp.xenstore), store_port)
        .at(Step::Introduce)?;
    undo.introduced = true;
    timer.done(Step::Introduce);

    // 12. rxl's record, then run.
    state
        .save(
            dom,
            &Record {
                domid: dom,
                config: cfg.clone(),
                restarts: 0,
            },
        )
        .map_err(|e| CreateError::msg(Step::Record, e.to_string()))?;
    timer.done(Step::Record);
    if !opts.paused {
        hv.unpause(dom).at(Step::Unpause)?;
    }
    xs.rm(xen_host::TxId::NONE, &building_marker(dom))
        .at(Step::Unpause)?;
    timer.done(Step::Unpause);

    undo.armed = false;
    Ok(Created {
        domid: dom,
        name: cfg.name.clone(),
        hypercalls: hv.hypercall_count().saturating_sub(started_calls),
        step_us: timer.steps,
    })
}

fn load_image<H: Hypervisor + ?Sized>(
    hv: &H,
    dom: DomId,
    plan: &BootPlan,
) -> Result<(), CreateError> {
    for zero in &plan.zeroes {
        hv.zero_guest(dom, zero.start, zero.len())
            .at(Step::LoadImage)?;
    }
    for w in &plan.writes {
        for chunk in w.data.chunks(COPY_CHUNK) {
            let (offset, bytes) = chunk.map_err(|e| {
                CreateError::msg(Step::LoadImage, format!("reading {}: {e}", w.what))
            })?;
            hv.write_guest(dom, w.paddr + offset, &bytes)
                .map_err(|e| CreateError {
                    step: Step::LoadImage,
                    message: format!("copy {}: {e}", w.what),
                    host_error: Some(e),
                })?;
        }
    }
    Ok(())
}

fn abi_err(e: xen_abi::AbiError) -> CreateError {
    CreateError::msg(Step::VcpuContext, e.to_string())
}

/// As libxenguest does for PVH: MTRRs (write-back default, enabled) for every vCPU, then the
/// BSP's registers last (each sethvmcontext resets the vCPUs it names).
fn set_vcpu_context<H: Hypervisor + ?Sized>(
    hv: &H,
    dom: DomId,
    max_vcpus: u32,
    plan: &BootPlan,
) -> Result<(), CreateError> {
    let full = hv.get_hvm_context(dom).at(Step::VcpuContext)?;
    let header = save::find_header(&full).map_err(abi_err)?;
    let records = save::parse_records(&full).map_err(abi_err)?;
    let mtrr_body = records
        .iter()
        .find(|r| r.typecode == save::typecode::MTRR && r.instance == 0);
    let mut mtrr = match mtrr_body {
        Some(r) => HvmHwMtrr::decode(r.body).map_err(abi_err)?,
        None => HvmHwMtrr::default(),
    };
    mtrr.msr_mtrr_def_type = MTRR_DEF_WB_ENABLED;
    for vcpu in 0..max_vcpus {
        let instance = u16::try_from(vcpu).map_err(|_| {
            CreateError::msg(Step::VcpuContext, format!("vcpu {vcpu} out of range"))
        })?;
        let blob = HvmContextBuilder::new()
            .header(&header)
            .mtrr(instance, &mtrr)
            .finish();
        hv.set_hvm_context(dom, &blob).at(Step::VcpuContext)?;
    }
    let r = &plan.regs;
    let cpu = HvmHwCpu {
        rip: r.rip,
        rbx: r.rbx,
        rflags: r.rflags,
        cr0: r.cr0,
        cr4: r.cr4,
        dr6: r.dr6,
        dr7: r.dr7,
        cs_sel: u32::from(r.cs.sel),
        cs_base: r.cs.base,
        cs_limit: r.cs.limit,
        cs_arbytes: r.cs.arbytes,
        ds_sel: u32::from(r.ds.sel),
        ds_base: r.ds.base,
        ds_limit: r.ds.limit,
        ds_arbytes: r.ds.arbytes,
        es_sel: u32::from(r.es.sel),
        es_base: r.es.base,
        es_limit: r.es.limit,
        es_arbytes: r.es.arbytes,
        ss_sel: u32::from(r.ss.sel),
        ss_base: r.ss.base,
        ss_limit: r.ss.limit,
        ss_arbytes: r.ss.arbytes,
        tr_sel: u32::from(r.tr.sel),
        tr_base: r.tr.base,
        tr_limit: r.tr.limit,
        tr_arbytes: r.tr.arbytes,
        ..HvmHwCpu::default()
    };
    let blob = HvmContextBuilder::new()
        .header(&header)
        .cpu(0, &cpu)
        .finish();
    hv.set_hvm_context(dom, &blob).at(Step::VcpuContext)
}

struct StepTimer {
    last: Instant,
    steps: Vec<(Step, u64)>,
}

impl StepTimer {
    fn new() -> StepTimer {
        StepTimer {
            last: Instant::now(),
            steps: Vec::new(),
        }
    }

    fn done(&mut self, step: Step) {
        let now = Instant::now();
        let us = u64::try_from(now.duration_since(self.last).as_micros()).unwrap_or(u64::MAX);
        self.steps.push((step, us));
        self.last = now;
        tracing::debug!("create step {step}: {us} us");
    }
}
