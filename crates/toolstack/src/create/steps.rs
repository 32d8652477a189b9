//! One function per [`Step`], run in [`Step::ALL`]'s order by the combinator in
//! [`super::Build::run`]. A step reads what earlier steps left in [`Build`], does its work,
//! and registers with the guard what it leaves behind.

use pvh::BootPlan;
use xen_abi::hvm::{self as save, HvmContextBuilder, HvmHwCpu, HvmHwMtrr};
use xen_abi::wire::Wire as _;
use xen_host::{
    hvm_param, DomId, E820Entry, GrantEntryV1, Hypervisor, Store, TxId, GTF_PERMIT_ACCESS,
    PAGE_SHIFT, PAGE_SIZE,
};
use xlcfg::model::DomainType;

use super::{marks, pv_steps, Build, Failure, Record, Step, UndoAction};
use crate::lock::HostLock;
use crate::memory::{self, FrameRange};
use crate::names::NameIndex;
use crate::plan::GuestPlan;
use crate::state::StateDir;
use crate::xs_layout::{self, Built, Identity};

/// Libxl's slack between the balloon target and the hypervisor limit, KiB.
const MAXMEM_SLACK_KIB: u64 = 1024;
/// `MTRR_TYPE_WRBACK | MTRR_DEF_TYPE_ENABLE`.
const MTRR_DEF_WB_ENABLED: u64 = 0x806;
/// Bytes copied per write_guest call.
const COPY_CHUNK: usize = 2 << 20;

/// Run `step` on `b`.
pub(super) fn run<H, S>(step: Step, b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    match step {
        Step::CheckHost => check_host(b),
        Step::CheckDevices => {
            plan_devices(b, DomId(1))?;
            Ok(())
        }
        Step::ReserveName => reserve_name(b),
        Step::CheckUuid => check_uuid(b),
        Step::PendingMark => pending_mark(b),
        Step::CreateDomain => create_domain(b),
        Step::XenstoreSkeleton => xenstore_skeleton(b),
        Step::MaxVcpus => Ok(b.hv.max_vcpus(b.dom()?, b.cfg.maxvcpus)?),
        Step::MaxMem => {
            Ok(b.hv.max_mem(b.dom()?, b.cfg.maxmem_mib * 1024 + MAXMEM_SLACK_KIB)?)
        }
        Step::EventChannels => event_channels(b),
        Step::HvmParams => hvm_params(b),
        Step::MemmapLimit => pv_steps::memmap_limit(b),
        Step::AddressSize => Ok(b.hv.set_address_size(b.dom()?, 64)?),
        Step::ClaimMemory => claim_memory(b),
        Step::PopulateMemory => match b.plan {
            GuestPlan::Pvh(_) | GuestPlan::Hvm(_) => {
                memory::populate(b.hv, b.dom()?, &frame_ranges(b.pvh()?))?;
                Ok(())
            }
            GuestPlan::Pv(plan) => {
                b.p2m = Some(memory::populate_pv(b.hv, b.dom()?, plan.total_pages)?);
                Ok(())
            }
        },
        Step::ReleaseClaim => Ok(b.hv.claim_pages(b.dom()?, 0)?),
        Step::MemoryMap => {
            let map: Vec<E820Entry> = b.pvh()?.memmap.clone();
            Ok(b.hv.set_memory_map(b.dom()?, &map)?)
        }
        Step::LoadImage => match b.plan {
            GuestPlan::Pvh(_) | GuestPlan::Hvm(_) => load_image(b.hv, b.dom()?, b.pvh()?),
            GuestPlan::Pv(_) => pv_steps::load_image(b),
        },
        Step::PageTables => pv_steps::page_tables(b),
        Step::SharedInfo => pv_steps::shared_info(b),
        Step::StartInfo => pv_steps::start_info(b),
        Step::HypercallPage => pv_steps::hypercall_page(b),
        Step::PinTables => pv_steps::pin_tables(b),
        Step::SpecialPages => special_pages(b),
        Step::VcpuContext => match b.plan {
            GuestPlan::Pvh(plan) => set_vcpu_context(b.hv, b.dom()?, Some(b.cfg.maxvcpus), plan),
            // With a device model, libxenguest leaves the MTRRs to hvmloader.
            GuestPlan::Hvm(plan) => set_vcpu_context(b.hv, b.dom()?, None, &plan.boot),
            GuestPlan::Pv(_) => pv_steps::vcpu_context(b),
        },
        Step::GrantTable => grant_table(b),
        Step::XenstoreEntries => xenstore_entries(b),
        Step::Introduce => introduce(b),
        Step::Devices => devices(b),
        Step::DeviceModel => device_model(b),
        Step::Record => record(b),
        Step::StartMonitor => start_monitor(b),
        Step::Unpause => {
            if !b.opts.paused {
                b.hv.unpause(b.dom()?)?;
            }
            Ok(())
        }
        Step::MarkComplete => mark_complete(b),
    }
}

fn check_host<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let version = b.hv.version()?;
    if b.cfg.domain_type == DomainType::Pv {
        if !version
            .capabilities
            .split_whitespace()
            .any(|c| c == "xen-3.0-x86_64")
        {
            return Err(Failure::Msg(format!(
                "this Xen cannot run 64-bit PV guests (capabilities: {}): it was built \
                 without PV support (CONFIG_PV)",
                version.capabilities
            )));
        }
        b.version = Some(version);
        return Ok(());
    }
    if !version
        .capabilities
        .split_whitespace()
        .any(|c| c == "hvm-3.0-x86_32")
    {
        return Err(Failure::Msg(format!(
            "this Xen cannot run HVM/PVH guests (capabilities: {}): PVH needs hardware \
             virtualisation (VT-x or AMD-V) enabled",
            version.capabilities
        )));
    }
    let phys = b.hv.physinfo()?;
    if !phys.caps.hap {
        return Err(Failure::Msg(
            "this host has no hardware-assisted paging (HAP: EPT or NPT), which rxl's PVH \
             guests need"
                .into(),
        ));
    }
    let cfg = b.cfg;
    if cfg.maxmem_mib != cfg.memory_mib {
        return Err(Failure::Msg(format!(
            "maxmem = {} is larger than memory = {}: populate-on-demand is not supported by \
             rxl; set maxmem = memory",
            cfg.maxmem_mib, cfg.memory_mib
        )));
    }
    b.version = Some(version);
    Ok(())
}

/// Takes the host lock (held until the name is in xenstore) and checks the name is free.
fn reserve_name<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let state_dir = &b.opts.state_dir;
    let name = &b.cfg.name;
    b.lock = Some(HostLock::acquire(state_dir, "create").map_err(|e| Failure::Msg(e.to_string()))?);
    // A monitor restarting a guest of this name holds it (its own rebuild passes).
    if let Some(pid) =
        crate::restarts::restarting(state_dir, name).filter(|&pid| pid != std::process::id())
    {
        return Err(Failure::Msg(format!(
            "a domain called \"{name}\" is being restarted by rxl's monitor (pid {pid})"
        )));
    }
    if let Some(other) = NameIndex::new(state_dir).find(b.hv, b.xs, name)? {
        return Err(Failure::Msg(format!(
            "a domain called \"{name}\" already exists (id {other})"
        )));
    }
    Ok(())
}

/// No domain on the host has this uuid. The nil uuid is Domain-0's; any other is taken
/// when `/vm/UUID` exists, which libxl and rxl write with a domain's first xenstore nodes
/// (and, under the host lock, no rxl create is between its createdomain and its skeleton).
/// One xenstore read, whatever the number of domains: Xen can only be asked for the
/// handles of all domains at once.
fn check_uuid<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let uuid = &b.uuid;
    let hint = "give this domain another uuid (or none, for a fresh one)";
    if b.cfg.uuid.is_nil() {
        return Err(Failure::Msg(format!(
            "uuid {uuid} is already used by domain 0 (Domain-0's); {hint}"
        )));
    }
    let vm = xs_layout::vm_path(uuid);
    if b.xs.read(TxId::NONE, &vm)?.is_some() {
        let owner = xen_host::read_string(b.xs, TxId::NONE, &format!("{vm}/name"))?
            .map_or_else(|| "another domain".to_string(), |n| format!("domain {n:?}"));
        return Err(Failure::Msg(format!(
            "uuid {uuid} is already used by {owner} (xenstore has {vm}); {hint}"
        )));
    }
    Ok(())
}

/// The pending-create mark, written before the domain exists.
fn pending_mark<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    marks::sweep_pending(b.hv, &b.opts.state_dir)?;
    let path = marks::write_pending(&b.opts.state_dir, &b.uuid).map_err(|e| {
        Failure::Msg(format!(
            "cannot write the pending-create mark in {}: {e}",
            marks::pending_marks_dir(&b.opts.state_dir).display()
        ))
    })?;
    b.left(Step::PendingMark, UndoAction::RemovePendingMark(path));
    Ok(())
}

fn create_domain<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let cfg = b.cfg;
    let handle = *cfg.uuid.as_bytes();
    let base = match cfg.domain_type {
        DomainType::Pv => xen_host::CreateDomain::pv(handle, cfg.maxvcpus),
        DomainType::Pvh => xen_host::CreateDomain::pvh(handle, cfg.maxvcpus),
        DomainType::Hvm => xen_host::CreateDomain::hvm(handle, cfg.maxvcpus),
    };
    let create = xen_host::CreateDomain {
        max_evtchn_port: cfg.max_event_channels,
        max_grant_frames: cfg.max_grant_frames,
        max_maptrack_frames: cfg.max_maptrack_frames,
        ..base
    };
    let dom = b.hv.create_domain(&create)?;
    b.dom = Some(dom);
    b.left(Step::CreateDomain, UndoAction::Destroy(dom));
    // Whatever later steps keep about the domain (xenstore nodes, the name index entry,
    // the record) goes in one cleanup, after the domain and before the pending mark.
    b.left(Step::CreateDomain, UndoAction::Cleanup(dom));
    Ok(())
}

/// The name becomes visible with the in-progress marker; then the host lock goes.
fn xenstore_skeleton<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let dom = b.dom()?;
    let name = &b.cfg.name;
    let id = Identity {
        dom,
        uuid: &b.uuid,
        name,
        kind: b.cfg.domain_type.as_str(),
    };
    let mut nodes = xs_layout::skeleton(&id);
    nodes.push(xs_layout::Node {
        path: marks::building_marker(dom),
        value: Some(crate::process::ProcessId::current().to_string()),
        perms: None,
    });
    xs_layout::apply_fresh(b.xs, &xs_layout::skeleton_roots(&id), &nodes)?;
    NameIndex::new(&b.opts.state_dir)
        .insert(name, dom)
        .map_err(|e| Failure::Msg(format!("name index: {e}")))?;
    b.lock = None;
    Ok(())
}

fn event_channels<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let dom = b.dom()?;
    let store = b.hv.alloc_unbound(dom, b.opts.backend_domid)?;
    let console = b.hv.alloc_unbound(dom, b.opts.backend_domid)?;
    b.ports = Some((store, console));
    Ok(())
}

pub(super) fn ports<H, S>(b: &Build<'_, H, S>) -> Result<(u32, u32), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    b.ports
        .ok_or_else(|| Failure::Msg("no event channels yet: the step list is out of order".into()))
}

fn hvm_params<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let dom = b.dom()?;
    let hv = b.hv;
    // hvm_set_conf_params: HVM guests first get the HPET and vpt_align (on by default).
    if let Some(hvm) = &b.cfg.hvm {
        hv.set_hvm_param(dom, hvm_param::HPET_ENABLED, u64::from(hvm.hpet))?;
        hv.set_hvm_param(dom, hvm_param::VPT_ALIGN, 1)?;
    }
    hv.set_hvm_param(dom, hvm_param::TIMER_MODE, 1)?;
    if b.version
        .as_ref()
        .is_some_and(|v| (v.major, v.minor) < (4, 19))
    {
        hv.set_hvm_param(dom, hvm_param::ALTP2M, 0)?;
    }
    // hvm_set_viridian_features, for a new HVM domain.
    if let Some(hvm) = &b.cfg.hvm {
        let mask = crate::boot::viridian_mask(hvm);
        if mask != 0 {
            hv.set_hvm_param(dom, hvm_param::VIRIDIAN, mask)?;
        }
    }
    hv.set_tsc_info(dom, 0)?;
    let pool_kib = 4 * (256 * u64::from(b.cfg.maxvcpus) + b.cfg.maxmem_mib);
    hv.set_paging_mempool_size(dom, pool_kib << 10)?;
    Ok(())
}

/// The guest-physical ranges to populate, in frames.
fn frame_ranges(plan: &BootPlan) -> Vec<FrameRange> {
    plan.populate()
        .iter()
        .map(|r| FrameRange {
            start: r.start >> PAGE_SHIFT,
            pages: r.len().div_ceil(PAGE_SIZE),
        })
        .collect()
}

fn claim_memory<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let pages: u64 = match b.plan {
        GuestPlan::Pvh(_) | GuestPlan::Hvm(_) => {
            frame_ranges(b.pvh()?).iter().map(|r| r.pages).sum()
        }
        GuestPlan::Pv(plan) => plan.total_pages,
    };
    Ok(b.hv.claim_pages(b.dom()?, pages)?)
}

fn special_pages<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let dom = b.dom()?;
    let (store_port, console_port) = ports(b)?;
    let sp = &b.pvh()?.special_pages;
    for (param, value) in [
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
        b.hv.set_hvm_param(dom, param, value)?;
    }
    if let Some(hvm) = b.hvm() {
        b.hv.set_hvm_param(dom, hvm_param::IOREQ_SERVER_PFN, hvm.ioreq_server_pfn)?;
        b.hv.set_hvm_param(
            dom,
            hvm_param::NR_IOREQ_SERVER_PAGES,
            hvm.nr_ioreq_server_pages,
        )?;
    }
    Ok(())
}

/// The frames of the console and xenstore rings as the backends name them: guest frames
/// for PVH, machine frames for PV.
fn ring_frames<H, S>(b: &Build<'_, H, S>) -> Result<(u64, u64), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    match b.plan {
        GuestPlan::Pvh(_) | GuestPlan::Hvm(_) => {
            let sp = &b.pvh()?.special_pages;
            Ok((sp.console, sp.xenstore))
        }
        GuestPlan::Pv(plan) => Ok((b.mfn(plan.console_pfn)?, b.mfn(plan.xenstore_pfn)?)),
    }
}

/// Grant entries: 0 for the console, 1 for xenstore (C xenstored maps ref 1).
fn grant_table<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let (console, xenstore) = ring_frames(b)?;
    let frame =
        |f: u64| u32::try_from(f).map_err(|_| Failure::Msg(format!("frame {f:#x} too large")));
    let backend = b.opts.backend_domid.0;
    let grants = [
        GrantEntryV1 {
            flags: GTF_PERMIT_ACCESS,
            domid: backend,
            frame: frame(console)?,
        },
        GrantEntryV1 {
            flags: GTF_PERMIT_ACCESS,
            domid: backend,
            frame: frame(xenstore)?,
        },
    ];
    Ok(b.hv.write_grant_entries(b.dom()?, 0, &grants)?)
}

fn xenstore_entries<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let (store_port, console_port) = ports(b)?;
    let (console, xenstore) = ring_frames(b)?;
    let cfg = b.cfg;
    let videoram_kib = cfg.hvm.as_ref().map_or(0, |h| h.videoram_mib * 1024);
    let built = Built {
        dom: b.dom()?,
        max_memkb: cfg.maxmem_mib * 1024,
        // libxl's target excludes the video RAM (libxl__get_targetmem_fudge).
        target_memkb: cfg.memory_mib * 1024 - videoram_kib,
        videoram_kib,
        store_port,
        store_gfn: xenstore,
        console_port,
        console_gfn: console,
        vcpus: cfg.vcpus,
        max_vcpus: cfg.maxvcpus,
    };
    let mut nodes = xs_layout::post_build(&built);
    if let (Some(hvm), Some(plan)) = (&cfg.hvm, b.hvm()) {
        nodes.extend(xs_layout::hvm_nodes(
            built.dom,
            &b.uuid,
            hvm,
            plan.bios.as_str(),
        ));
    }
    if let GuestPlan::Pv(plan) = b.plan {
        let ramdisk = match &cfg.boot {
            xlcfg::model::Boot::Kernel { modules, .. } => {
                modules.first().map(|m| m.path.value.display().to_string())
            }
            _ => None,
        };
        nodes.extend(xs_layout::pv_image(
            &b.uuid,
            &plan.image_path,
            ramdisk.as_deref(),
            plan.cmdline.as_deref(),
        ));
    }
    Ok(xs_layout::apply_fresh(
        b.xs,
        &xs_layout::post_build_roots(built.dom),
        &nodes,
    )?)
}

fn introduce<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let dom = b.dom()?;
    let (store_port, _) = ports(b)?;
    let (_, xenstore) = ring_frames(b)?;
    b.xs.introduce(dom, xen_host::Gfn(xenstore), store_port)?;
    b.left(Step::Introduce, UndoAction::Release(dom));
    Ok(())
}

/// Check and compute every device of the config for domain `dom` (a placeholder id before
/// the domain exists: the checks do not depend on it).
fn plan_devices<H, S>(
    b: &Build<'_, H, S>,
    dom: DomId,
) -> Result<Vec<devices::PlannedDevice>, Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let guest = devices::Guest {
        domid: dom,
        domain_type: b.cfg.domain_type,
    };
    let (hv, xs) = (b.hv, b.xs);
    let mut resolve = |name: &str| crate::devices::resolve_backend(hv, xs, name);
    devices::plan(&guest, b.cfg, &b.opts.devices.script_dir, &mut resolve)
        .map_err(|e| Failure::Msg(e.to_string()))
}

/// Disks, then vifs, as libxl adds them before the guest runs. Registered for undo before
/// anything is written, so that a device set up in part goes with the rest.
fn devices<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let dom = b.dom()?;
    let planned = plan_devices(b, dom)?;
    if planned.is_empty() {
        return Ok(());
    }
    b.left(Step::Devices, UndoAction::Devices(dom));
    crate::devices::setup(b.xs, &b.opts.devices, &planned).map_err(|e| Failure::Msg(e.to_string()))
}

/// An HVM guest gets its `-machine xenfv` device model, and a PV or PVH guest with disks
/// QEMU serves its `-machine xenpv` one, confirmed running before the guest is unpaused
/// (libxl's `domcreate_launch_dm`). The config's `device_model_override` replaces the
/// host's program.
fn device_model<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let dom = b.dom()?;
    let mut opts = b.opts.devices.dm.clone();
    let (args, env) = if b.cfg.domain_type == DomainType::Hvm {
        let x = crate::dm_hvm::xenfv(dom, b.cfg, &opts.run_dir)
            .map_err(|e| Failure::Msg(e.to_string()))?;
        for why in &x.not_emulated {
            tracing::info!("domain {dom}: {why}");
        }
        (x.args, x.env)
    } else if devices::plan::needs_device_model(&plan_devices(b, dom)?) {
        let mut args = crate::dm::xenpv_args(dom, &b.cfg.name, b.cfg.maxmem_mib, &opts);
        args.extend(b.cfg.device_model.args.iter().cloned());
        (args, Vec::new())
    } else {
        return Ok(());
    };
    if let Some(program) = &b.cfg.device_model.program {
        opts.binary = program.value.clone();
        opts.prefix_args.clear();
    }
    b.left(Step::DeviceModel, UndoAction::DeviceModel(dom));
    let launch = crate::dm::DmLaunch {
        dom,
        name: &b.cfg.name,
        args,
        env: env
            .into_iter()
            .filter(|(k, _)| k != "XEN_QEMU_CONSOLE_LIMIT")
            .collect(),
    };
    crate::dm::launch(b.xs, &opts, &launch).map_err(|e| Failure::Msg(e.to_string()))?;
    publish_dm_addresses(b, &opts, dom)?;
    if b.cfg.domain_type == DomainType::Hvm {
        // QEMU has made the taps of the emulated NICs: into their bridges, up.
        let planned = plan_devices(b, dom)?;
        crate::devices::setup_taps(&b.opts.devices, &planned)
            .map_err(|e| Failure::Msg(e.to_string()))?;
    }
    Ok(())
}

/// As libxl does once qemu-xen runs: ask it (QMP `query-chardev`) which ptys its serial
/// ports are on, and publish them in `/local/domain/D/serial/N/tty`; with VNC on, ask it
/// (`query-vnc`) where it listens and publish that in `console/vnc-listen` and
/// `console/vnc-port`.
fn publish_dm_addresses<H, S>(
    b: &Build<'_, H, S>,
    opts: &crate::dm::DmOptions,
    dom: DomId,
) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let fail = |e: String| Failure::Msg(format!("device model of domain {dom}: {e}"));
    let mut q =
        crate::qmp::Qmp::connect(&opts.qmp_socket(dom), crate::qmp::CMD_TIMEOUT).map_err(fail)?;
    let ptys = q
        .execute("query-chardev")
        .and_then(|v| crate::qmp::serial_ptys(&v))
        .map_err(fail)?;
    let base = xs_layout::dom_path(dom);
    for (port, path) in ptys {
        b.xs.write(
            TxId::NONE,
            &format!("{base}/serial/{port}/tty"),
            path.as_bytes(),
        )?;
    }
    if b.cfg.hvm.as_ref().is_some_and(|h| h.vnc.is_some()) {
        let vnc = q
            .execute("query-vnc")
            .and_then(|v| crate::qmp::vnc_address(&v))
            .map_err(fail)?;
        if let Some((host, port)) = vnc {
            b.xs.write(
                TxId::NONE,
                &format!("{base}/console/vnc-listen"),
                host.as_bytes(),
            )?;
            b.xs.write(
                TxId::NONE,
                &format!("{base}/console/vnc-port"),
                port.as_bytes(),
            )?;
        }
    }
    Ok(())
}

fn record<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let dom = b.dom()?;
    StateDir::new(b.opts.state_dir.clone())
        .save(
            dom,
            &Record {
                domid: dom,
                config: b.cfg.clone(),
                restarts: 0,
                monitored_by: Default::default(),
            },
        )
        .map_err(|e| Failure::Msg(e.to_string()))
}

/// The monitor starts while the domain is still paused: if it cannot, the create fails
/// and the domain goes, rather than run unmonitored. A monitor that did start sees the
/// domain go if a later step fails, and ends.
fn start_monitor<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let dom = b.dom()?;
    match b.monitor.as_mut() {
        Some(start) => {
            start(dom).map_err(|e| Failure::Msg(format!("cannot start the monitor: {e}")))
        }
        None => Ok(()),
    }
}

fn mark_complete<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let dom = b.dom()?;
    // The pending mark first: a create killed between the two removals keeps the xenstore
    // marker and is still seen as incomplete, never a complete domain with a stale mark.
    let path = marks::pending_mark(&b.opts.state_dir, &b.uuid);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Failure::Msg(format!(
                "cannot remove the pending-create mark {}: {e}",
                path.display()
            )))
        }
        _ => {}
    }
    Ok(b.xs.rm(TxId::NONE, &marks::building_marker(dom))?)
}

/// Zero the bss ranges, then copy every segment in 2 MiB chunks.
fn load_image<H: Hypervisor + ?Sized>(hv: &H, dom: DomId, plan: &BootPlan) -> Result<(), Failure> {
    for zero in &plan.zeroes {
        hv.zero_guest(dom, zero.start, zero.len())?;
    }
    for w in &plan.writes {
        for chunk in w.data.chunks(COPY_CHUNK) {
            let (offset, bytes) =
                chunk.map_err(|e| Failure::Msg(format!("reading {}: {e}", w.what)))?;
            hv.write_guest(dom, w.paddr + offset, &bytes)
                .map_err(|e| Failure::HostIn(format!("copy {}", w.what), e))?;
        }
    }
    Ok(())
}

fn abi_err(e: xen_abi::AbiError) -> Failure {
    Failure::Msg(e.to_string())
}

/// As libxenguest's `vcpu_hvm` does: for PVH (`mtrr_vcpus` given) MTRRs (write-back
/// default, enabled) for every vCPU, then the BSP's registers last (each sethvmcontext
/// resets the vCPUs it names); for HVM the BSP's registers only.
fn set_vcpu_context<H: Hypervisor + ?Sized>(
    hv: &H,
    dom: DomId,
    mtrr_vcpus: Option<u32>,
    plan: &BootPlan,
) -> Result<(), Failure> {
    let full = hv.get_hvm_context(dom)?;
    let header = save::find_header(&full).map_err(abi_err)?;
    let max_vcpus = mtrr_vcpus.unwrap_or(0);
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
        let instance =
            u16::try_from(vcpu).map_err(|_| Failure::Msg(format!("vcpu {vcpu} out of range")))?;
        let blob = HvmContextBuilder::new()
            .header(&header)
            .mtrr(instance, &mtrr)
            .finish();
        hv.set_hvm_context(dom, &blob)?;
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
    Ok(hv.set_hvm_context(dom, &blob)?)
}
