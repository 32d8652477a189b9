//! A domain's block (vbd) and network (vif) devices on the host: setting them up (at
//! create and by hot-plug), listing them, and taking them down (detach, destroy), in the
//! order libxl 4.17 uses (docs/devices.md §6).
//!
//! Setting up a batch of devices runs in phases so that their backends and scripts work
//! at the same time: every device's nodes are written (one transaction each); then the
//! toolstack waits for each backend to reach InitWait (2); then the hotplug commands of
//! all devices run in parallel, one thread each. Taking a batch down is phased the same
//! way: close every device, wait for every backend to be Closed (6), run the remove
//! commands in parallel, remove the nodes.
//!
//! The devices of a domain are found in the toolstack's own tree, `/libxl/D/device`,
//! which only Domain-0 may write, as libxl finds them; so a destroy finds the devices of
//! a create that was killed half-way, and of domains xl created.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use devices::hotplug::{self, Action, Hotplug, HotplugCommand, HotplugError, HotplugRun};
use devices::{state as xb, DeviceKind, DeviceNodes, Node, PlannedDevice, XsOp};
use serde::Serialize;
use xen_host::{DomId, Error, Store, StoreOp, TxId};

/// How long each stage of a device may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// For a new backend to reach InitWait (libxl: 10 s).
    pub init: Duration,
    /// For a hotplug command (libxl: 40 s, then SIGKILL).
    pub hotplug: Duration,
    /// For a closing backend to reach Closed (libxl: 10 s).
    pub destroy: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            init: hotplug::INIT_TIMEOUT,
            hotplug: hotplug::HOTPLUG_TIMEOUT,
            destroy: hotplug::DESTROY_TIMEOUT,
        }
    }
}

/// How devices are set up and taken down on this host.
#[derive(Clone)]
pub struct DeviceOptions {
    /// What carries out the hotplug commands: Xen's scripts, the native path or the
    /// simulated host.
    pub hotplug: Arc<dyn Hotplug>,
    /// Where scripts named without a directory are (`/etc/xen/scripts`).
    pub script_dir: PathBuf,
    /// Where each device's hotplug log goes (`hotplug-DOMID-KIND-DEVID.log`).
    pub log_dir: PathBuf,
    /// The timeouts.
    pub timeouts: Timeouts,
    /// Whether the toolstack runs the hotplug commands at all (xl.conf's
    /// `run_hotplug_scripts`; 0 leaves them to udev).
    pub run_scripts: bool,
    /// How the guest's device model (QEMU, which serves qdisk disks) runs; every teardown
    /// of all of a domain's devices stops it first ([`remove_all`]).
    pub dm: crate::dm::DmOptions,
}

impl fmt::Debug for DeviceOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceOptions")
            .field("hotplug", &self.hotplug.name())
            .field("script_dir", &self.script_dir)
            .field("log_dir", &self.log_dir)
            .field("timeouts", &self.timeouts)
            .field("run_scripts", &self.run_scripts)
            .field("dm", &self.dm)
            .finish()
    }
}

impl DeviceOptions {
    /// Xen's scripts from /etc/xen/scripts, libxl's timeouts, logs in `log_dir`.
    pub fn scripts(log_dir: impl Into<PathBuf>) -> DeviceOptions {
        DeviceOptions::with(Arc::new(hotplug::Scripts), log_dir)
    }

    /// `hotplug` with scripts from /etc/xen/scripts, libxl's timeouts, logs in `log_dir`.
    pub fn with(hotplug: Arc<dyn Hotplug>, log_dir: impl Into<PathBuf>) -> DeviceOptions {
        DeviceOptions {
            hotplug,
            script_dir: PathBuf::from(devices::XEN_SCRIPT_DIR),
            log_dir: log_dir.into(),
            timeouts: Timeouts::default(),
            run_scripts: true,
            dm: crate::dm::DmOptions::default(),
        }
    }

    fn log_for(&self, kind: DeviceKind, dom: DomId, devid: u32) -> PathBuf {
        self.log_dir
            .join(format!("hotplug-{}-{kind}-{devid}.log", dom.0))
    }
}

/// A device that could not be set up or taken down: which one, and why.
#[derive(Debug, thiserror::Error)]
#[error("{device}: {message}")]
pub struct DeviceFailure {
    /// The device, as the config names it (`disk xvda (line 4:10)`, `vif 0 (00:16:..)`).
    pub device: String,
    /// What went wrong, with the script, its `hotplug-error` and its log when a script
    /// failed.
    pub message: String,
    /// The host error, when there was one.
    pub host_error: Option<Error>,
}

impl DeviceFailure {
    fn host(device: &str, what: &str, e: Error) -> DeviceFailure {
        DeviceFailure {
            device: device.to_owned(),
            message: format!("{what}: {e}"),
            host_error: Some(e),
        }
    }

    fn msg(device: &str, message: String) -> DeviceFailure {
        DeviceFailure {
            device: device.to_owned(),
            message,
            host_error: None,
        }
    }
}

/// Apply a device's setup operations in one transaction.
fn write_nodes<S: Store + ?Sized>(xs: &S, ops: &[XsOp]) -> Result<(), Error> {
    xen_host::transaction(xs, |tx| apply(xs, tx, ops))
}

/// The operations in order; the writes, mkdirs and permission changes between two
/// removals go together through [`Store::apply_ops`] (pipelined by a real xenstore).
fn apply<S: Store + ?Sized>(xs: &S, tx: TxId, ops: &[XsOp]) -> Result<(), Error> {
    let mut batch: Vec<StoreOp<'_>> = Vec::new();
    for op in ops {
        match op {
            XsOp::Rm(path) => {
                xs.apply_ops(tx, &batch)?;
                batch.clear();
                rm_if_there(xs, tx, path)?;
            }
            XsOp::Mkdir { path, perms } => {
                batch.push(StoreOp::Mkdir(path));
                batch.push(StoreOp::SetPerms(path, perms));
            }
            XsOp::Write { path, value, perms } => {
                batch.push(StoreOp::Write(path, value.as_bytes()));
                if let Some(p) = perms {
                    batch.push(StoreOp::SetPerms(path, p));
                }
            }
        }
    }
    xs.apply_ops(tx, &batch)
}

fn rm_if_there<S: Store + ?Sized>(xs: &S, tx: TxId, path: &str) -> Result<(), Error> {
    match xs.rm(tx, path) {
        Err(e) if e.errno() == Some(xen_host::Errno::ENOENT) => Ok(()),
        r => r,
    }
}

/// A xenbus state node: a number from 0 to 8; anything else counts as absent.
fn read_state<S: Store + ?Sized>(xs: &S, path: &str) -> Result<Option<u8>, Error> {
    Ok(xen_host::read_string(xs, TxId::NONE, path)?
        .and_then(|s| s.trim_end_matches('\0').trim().parse::<u8>().ok())
        .filter(|s| *s <= 8))
}

/// Tells apart the watch tokens of one process.
static TOKEN_SEQ: AtomicU64 = AtomicU64::new(0);

/// Wait until the state node at `path` satisfies `ok`, or `deadline`; returns the state
/// reached (`Ok`) or the last one seen (`Err`). Watches the node and also looks every
/// 100 ms.
fn wait_state<S: Store + ?Sized>(
    xs: &S,
    path: &str,
    ok: impl Fn(u8) -> bool,
    deadline: Instant,
) -> Result<Result<u8, Option<u8>>, Error> {
    let token = format!(
        "rxl-dev-{}-{}",
        std::process::id(),
        TOKEN_SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let watching = xs.watch(path, &token).is_ok();
    let result = loop {
        let st = match read_state(xs, path) {
            Ok(st) => st,
            Err(e) => break Err(e),
        };
        if let Some(s) = st.filter(|s| ok(*s)) {
            break Ok(Ok(s));
        }
        let now = Instant::now();
        if now >= deadline {
            break Ok(Err(st));
        }
        let slice = (deadline - now).min(Duration::from_millis(100));
        if watching {
            if let Err(e) = xs.next_watch_event(Some(slice)) {
                break Err(e);
            }
        } else {
            std::thread::sleep(slice.min(Duration::from_millis(20)));
        }
    };
    if watching {
        let _ = xs.unwatch(path, &token);
    }
    result
}

fn state_name(s: Option<u8>) -> String {
    match s {
        None => "no state node".to_owned(),
        Some(s) => format!(
            "state {s} ({})",
            match s {
                0 => "Unknown",
                1 => "Initialising",
                2 => "InitWait",
                3 => "Initialised",
                4 => "Connected",
                5 => "Closing",
                6 => "Closed",
                7 => "Reconfiguring",
                _ => "Reconfigured",
            }
        ),
    }
}

/// Run `jobs` (a device's label and its command) through the runner, in parallel when
/// there are several.
fn run_commands(
    opts: &DeviceOptions,
    jobs: Vec<(String, HotplugCommand, PathBuf)>,
) -> Vec<(String, HotplugCommand, Result<HotplugRun, HotplugError>)> {
    if let Err(e) = crate::state::ensure_log_dir(&opts.log_dir) {
        return jobs
            .into_iter()
            .map(|(label, cmd, log)| {
                let err = HotplugError::Log {
                    log,
                    source: std::io::Error::new(e.kind(), e.to_string()),
                };
                (label, cmd, Err(err))
            })
            .collect();
    }
    let timeout = opts.timeouts.hotplug;
    if jobs.len() == 1 {
        return jobs
            .into_iter()
            .map(|(label, cmd, log)| {
                let r = opts.hotplug.run(&cmd, &log, timeout);
                (label, cmd, r)
            })
            .collect();
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .into_iter()
            .map(|(label, cmd, log)| {
                let runner = &opts.hotplug;
                scope.spawn(move || {
                    let r = runner.run(&cmd, &log, timeout);
                    (label, cmd, r)
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    })
}

/// Set up `devs` of one domain (already checked and computed by [`devices::plan`]):
/// write their nodes, wait for their backends, run their hotplug commands. On failure
/// the devices written so far stay: the caller removes them ([`remove_all`] or
/// [`detach`]), as a create's undo does.
pub fn setup<S: Store + ?Sized>(
    xs: &S,
    opts: &DeviceOptions,
    devs: &[PlannedDevice],
) -> Result<(), DeviceFailure> {
    for d in devs {
        write_nodes(xs, &d.nodes.setup_ops())
            .map_err(|e| DeviceFailure::host(&d.label, "writing its xenstore nodes", e))?;
    }
    let scripted: Vec<(&PlannedDevice, &HotplugCommand)> = devs
        .iter()
        .filter(|_| opts.run_scripts)
        .filter_map(|d| Some((d, d.hotplug_add.as_ref()?)))
        .collect();
    // The backends probe in parallel; one deadline for all of them.
    let deadline = Instant::now() + opts.timeouts.init;
    for (d, _) in &scripted {
        let path = format!("{}/state", d.nodes.backend);
        let probed = |s: u8| (xb::INIT_WAIT..=xb::CONNECTED).contains(&s);
        match wait_state(xs, &path, probed, deadline) {
            Ok(Ok(_)) => {}
            Ok(Err(seen)) => {
                return Err(DeviceFailure::msg(
                    &d.label,
                    format!(
                        "its backend did not reach state 2 (InitWait) within {} s ({} at {path}); \
                         is the backend driver ({}) loaded in domain {}?",
                        opts.timeouts.init.as_secs_f32(),
                        state_name(seen),
                        match d.kind {
                            DeviceKind::Vbd => "xen-blkback",
                            DeviceKind::Vif => "xen-netback",
                        },
                        d.backend.0
                    ),
                ))
            }
            Err(e) => return Err(DeviceFailure::host(&d.label, "waiting for its backend", e)),
        }
    }
    let jobs = scripted
        .iter()
        .map(|(d, cmd)| {
            (
                d.label.clone(),
                (*cmd).clone(),
                opts.log_for(d.kind, d.nodes.domid, d.devid),
            )
        })
        .collect();
    first_failure(run_commands(opts, jobs), |label, cmd, run| {
        let backend = backend_of(cmd);
        let error = backend
            .as_deref()
            .and_then(|b| {
                xen_host::read_string(xs, TxId::NONE, &format!("{b}/hotplug-error"))
                    .ok()
                    .flatten()
            })
            .map(|e| bounded(&e));
        DeviceFailure::msg(label, script_failure(opts, run, error.as_deref()))
    })
}

/// The first of the runs that failed as the error (a failed run described by
/// `describe`), the others logged.
fn first_failure(
    results: Vec<(String, HotplugCommand, Result<HotplugRun, HotplugError>)>,
    describe: impl Fn(&str, &HotplugCommand, &HotplugRun) -> DeviceFailure,
) -> Result<(), DeviceFailure> {
    let mut first = None;
    for (label, cmd, result) in results {
        let failure = match result {
            Ok(run) if run.success() => continue,
            Ok(run) => describe(&label, &cmd, &run),
            Err(e) => DeviceFailure::msg(&label, e.to_string()),
        };
        // The first failure is the error; the others are told here.
        if first.is_some() {
            tracing::error!("{failure}");
        } else {
            first = Some(failure);
        }
    }
    match first {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

/// Put the taps of the emulated NICs among `devs` in their bridges (`vif-bridge add
/// type_if=tap`, libxl's second run of a `vif_ioemu` vif's script), once the device model
/// has made them and before the guest runs. A tap that cannot join its bridge fails with
/// the vif's label; the caller's undo stops QEMU (the tap goes with it) and removes the
/// devices.
pub fn setup_taps(opts: &DeviceOptions, devs: &[PlannedDevice]) -> Result<(), DeviceFailure> {
    if !opts.run_scripts {
        return Ok(());
    }
    let jobs: Vec<_> = devs
        .iter()
        .filter(|d| d.backend == DomId::DOM0)
        .filter_map(|d| {
            let cmd = hotplug::tap_command(&d.nodes, Action::Add)?;
            Some((
                d.label.clone(),
                cmd,
                opts.log_for(d.kind, d.nodes.domid, d.devid),
            ))
        })
        .collect();
    first_failure(run_commands(opts, jobs), |label, cmd, run| {
        DeviceFailure::msg(
            label,
            format!(
                "its emulated NIC's tap {}: {}",
                cmd.env_var("INTERFACE").unwrap_or("?"),
                script_failure(opts, run, None)
            ),
        )
    })
}

/// A script's failure in words: the runner, the command, how it ended, the backend's
/// `hotplug-error` and the log.
fn script_failure(opts: &DeviceOptions, run: &HotplugRun, error: Option<&str>) -> String {
    let runner = opts.hotplug.name();
    let what = if runner == "scripts" {
        "hotplug script".to_owned()
    } else {
        format!("hotplug ({runner})")
    };
    format!(
        "{what} `{}` {}{}; its output is in {}",
        run.command,
        run.ended(),
        error
            .map(|e| format!(" (hotplug-error: {e})"))
            .unwrap_or_default(),
        run.log.display()
    )
}

/// Guest-influenced text shown to the user: one line, at most 200 characters.
fn bounded(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// The absolute backend directory a command works on (from its `XENBUS_PATH`).
fn backend_of(cmd: &HotplugCommand) -> Option<String> {
    let rel = cmd.env_var("XENBUS_PATH")?;
    Some(format!("/local/domain/0/{rel}"))
}

/// One device of a domain as the toolstack's tree names it.
#[derive(Clone, Debug)]
struct Existing {
    nodes: DeviceNodes,
    label: String,
}

/// The backend directory classes a device of `kind` may have: a vbd is served by
/// blkback (`vbd`) or by QEMU (`qdisk`).
fn backend_classes(kind: DeviceKind) -> &'static [&'static str] {
    match kind {
        DeviceKind::Vbd => &["vbd", devices::nodes::QDISK],
        DeviceKind::Vif => &["vif"],
    }
}

/// `/local/domain/BE/backend/CLASS/DOM/DEVID`, checked, as its backend domain and class.
fn parse_backend(
    path: &str,
    kind: DeviceKind,
    dom: DomId,
    devid: u32,
) -> Option<(DomId, &'static str)> {
    let rest = path.strip_prefix("/local/domain/")?;
    let (be, rest) = rest.split_once('/')?;
    let be: u16 = be.parse().ok()?;
    let class = backend_classes(kind)
        .iter()
        .find(|c| rest == format!("backend/{c}/{}/{devid}", dom.0))?;
    (be < DomId::FIRST_RESERVED).then_some((DomId(be), *class))
}

/// The device `kind`/`devid` of `dom` as `/libxl/DOM/device` records it; `None` when
/// neither the toolstack's copy nor a backend in Domain-0 knows it.
fn existing<S: Store + ?Sized>(
    xs: &S,
    dom: DomId,
    kind: DeviceKind,
    devid: u32,
) -> Result<Option<Existing>, Error> {
    let libxl = devices::libxl_path(kind, dom, devid);
    let recorded = xen_host::read_string(xs, TxId::NONE, &format!("{libxl}/backend"))?;
    let found = match recorded {
        Some(p) => match parse_backend(&p, kind, dom, devid) {
            Some(be) => Some(be),
            None => {
                tracing::warn!(
                    "{libxl}/backend names {p:?}, not a {kind} backend of domain {dom}: \
                     using Domain-0's"
                );
                None
            }
        },
        None => None,
    };
    let (backend_domid, class) = match found {
        Some(f) => f,
        // No record: the class whose directory exists in Domain-0 (blkback's first).
        None => {
            let mut class = backend_classes(kind)[0];
            for c in backend_classes(kind) {
                let p = devices::backend_path_in(c, DomId::DOM0, dom, devid);
                if xs.read(TxId::NONE, &p)?.is_some() {
                    class = c;
                    break;
                }
            }
            (DomId::DOM0, class)
        }
    };
    let backend = devices::backend_path_in(class, backend_domid, dom, devid);
    let frontend = devices::frontend_path(kind, dom, devid);
    let known = |p: &str| xs.read(TxId::NONE, p).map(|v| v.is_some());
    if !known(&libxl)? && !known(&backend)? && !known(&frontend)? {
        return Ok(None);
    }
    // The script and gateway as the toolstack recorded them (libxl reads its own copy, so
    // that a backend cannot choose what dom0 runs).
    let mut nodes = Vec::new();
    // `type` says whether a vif is also an emulated NIC (its tap's remove command).
    for key in ["script", "gatewaydev", "type"] {
        if let Some(v) = xen_host::read_string(xs, TxId::NONE, &format!("{libxl}/{key}"))? {
            nodes.push(Node {
                path: format!("{backend}/{key}"),
                value: v,
                perms: Vec::new(),
            });
        }
    }
    let label = match kind {
        DeviceKind::Vbd => format!("vbd {devid}"),
        DeviceKind::Vif => format!("vif {devid}"),
    };
    Ok(Some(Existing {
        nodes: DeviceNodes {
            kind,
            domid: dom,
            devid,
            backend_domid,
            frontend,
            backend,
            libxl,
            frontend_perms: Vec::new(),
            backend_perms: Vec::new(),
            nodes,
        },
        label,
    }))
}

/// The devids of `kind` the domain has, from `/libxl/DOM/device/KIND` and the domain's
/// own `device/KIND` directory (a create killed before the `/libxl` copy was written).
fn devids<S: Store + ?Sized>(xs: &S, dom: DomId, kind: DeviceKind) -> Result<Vec<u32>, Error> {
    let mut out = Vec::new();
    let dirs = std::iter::once(format!("/libxl/{}/device/{kind}", dom.0)).chain(
        backend_classes(kind)
            .iter()
            .map(|c| format!("/local/domain/0/backend/{c}/{}", dom.0)),
    );
    for dir in dirs {
        for name in xs.directory(TxId::NONE, &dir)?.unwrap_or_default() {
            if let Ok(id) = name.parse::<u32>() {
                if !out.contains(&id) {
                    out.push(id);
                }
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Step 1 of a teardown (`libxl__initiate_device_generic_remove`): false when the backend
/// is already gone.
fn close<S: Store + ?Sized>(xs: &S, dev: &Existing, force: bool) -> Result<bool, Error> {
    xen_host::transaction(xs, |tx| {
        if force {
            rm_if_there(xs, tx, &dev.nodes.frontend)?;
        }
        let st = xen_host::read_string(xs, tx, &format!("{}/state", dev.nodes.backend))?;
        match dev.nodes.close_ops(st.as_deref(), force) {
            None => Ok(false),
            Some(ops) => {
                apply(xs, tx, &ops)?;
                Ok(true)
            }
        }
    })
}

/// Remove a directory, then its parents up to (not including) `stop` while they are
/// empty (`libxl__xs_path_cleanup`).
fn remove_with_parents<S: Store + ?Sized>(xs: &S, path: &str, stop: &str) -> Result<(), Error> {
    rm_if_there(xs, TxId::NONE, path)?;
    let mut p = path;
    while let Some((parent, _)) = p.rsplit_once('/') {
        if parent.len() <= stop.len() || !parent.starts_with(stop) {
            break;
        }
        match xs.directory(TxId::NONE, parent)? {
            Some(children) if children.is_empty() => rm_if_there(xs, TxId::NONE, parent)?,
            _ => break,
        }
        p = parent;
    }
    Ok(())
}

/// Take `devs` down: close them all, wait for their backends to be Closed (a device not
/// forced that times out is closed again by force, as libxl does), run their remove
/// commands in parallel (their failures are logged, not fatal, as in libxl), then
/// remove their nodes. Returns the first xenstore failure; every device is tried.
/// What went wrong in a teardown. Devices whose teardown failed keep their nodes, so that
/// the next teardown (a second `rxl destroy`) finds them and tries again: a loop device or
/// a bridge port is never forgotten while it may still be set up.
#[derive(Default)]
struct Failures {
    /// The error: the first failure (the others are logged).
    first: Option<DeviceFailure>,
    /// The devices that failed.
    failed: Vec<(DeviceKind, u32)>,
}

impl Failures {
    fn keep(&mut self, d: &Existing, f: DeviceFailure) {
        self.failed.push((d.nodes.kind, d.nodes.devid));
        if self.first.is_some() {
            tracing::error!("{f}");
        } else {
            self.first = Some(f);
        }
    }
}

fn teardown<S: Store + ?Sized>(
    xs: &S,
    opts: &DeviceOptions,
    devs: &[Existing],
    force: bool,
) -> Result<(), DeviceFailure> {
    let mut failures = Failures::default();
    // Step 1: close.
    let mut closing = Vec::new();
    let mut closed = Vec::new();
    for d in devs {
        match close(xs, d, force) {
            // QEMU's backends of a forced teardown are not waited for: remove_all has
            // stopped the device model first, and nothing else would close them (libxl
            // writes Closed itself for these, `device_qemu_timeout`).
            Ok(true) if force && d.nodes.is_qdisk() => closed.push(d),
            Ok(true) => closing.push(d),
            Ok(false) => tracing::info!("{}: its backend is gone already", d.label),
            Err(e) => failures.keep(d, DeviceFailure::host(&d.label, "closing it", e)),
        }
    }
    // Step 2: wait for Closed; what does not close in time is closed by force.
    let mut rounds = if force { 1 } else { 2 };
    let mut pending = closing;
    while !pending.is_empty() && rounds > 0 {
        rounds -= 1;
        let deadline = Instant::now() + opts.timeouts.destroy;
        let mut late = Vec::new();
        for d in pending {
            let path = format!("{}/state", d.nodes.backend);
            match wait_state(xs, &path, |s| s == xb::CLOSED, deadline) {
                Ok(Ok(_)) | Ok(Err(None)) => closed.push(d),
                Ok(Err(seen)) => {
                    tracing::warn!(
                        "{}: its backend is not Closed after {} s ({})",
                        d.label,
                        opts.timeouts.destroy.as_secs_f32(),
                        state_name(seen)
                    );
                    late.push(d);
                }
                Err(e) => failures.keep(
                    d,
                    DeviceFailure::host(&d.label, "waiting for its backend", e),
                ),
            }
        }
        if rounds > 0 {
            let mut again = Vec::new();
            for d in late {
                match close(xs, d, true) {
                    Ok(_) => again.push(d),
                    Err(e) => {
                        failures.keep(d, DeviceFailure::host(&d.label, "closing it by force", e))
                    }
                }
            }
            pending = again;
        } else {
            // Forced and still not closed: the script and the nodes go anyway, so that
            // nothing of the device outlives the teardown in dom0.
            closed.extend(late);
            pending = Vec::new();
        }
    }
    // Step 3: the remove commands. One that fails is run once more; if it fails again it
    // is reported and the teardown goes on, as libxl's does: Xen's own scripts fail a
    // remove for good reasons that will not change (`vif-bridge offline` of a bridge that
    // does not exist), and keeping the device would make every later destroy fail.
    if opts.run_scripts {
        let jobs: Vec<_> = closed
            .iter()
            .filter(|d| d.nodes.backend_domid == DomId::DOM0)
            .flat_map(|d| {
                // A vif that was an emulated NIC: `offline` for netback's interface, then
                // `remove type_if=tap` for QEMU's tap (gone with QEMU; the script has its
                // firewall rules to take down), as libxl runs both.
                let log = opts.log_for(d.nodes.kind, d.nodes.domid, d.nodes.devid);
                [
                    hotplug::command_for(&d.nodes, Action::Remove),
                    hotplug::tap_command(&d.nodes, Action::Remove),
                ]
                .into_iter()
                .flatten()
                .map(move |cmd| (d.label.clone(), cmd, log.clone()))
            })
            .collect();
        let mut again = Vec::new();
        for (label, cmd, result) in run_commands(opts, jobs) {
            match result {
                Ok(run) if run.success() => {}
                Ok(run) => {
                    let log = run.log.clone();
                    tracing::warn!(
                        "{label}: {}; running it again",
                        script_failure(opts, &run, None)
                    );
                    again.push((label, cmd, log));
                }
                Err(e) => tracing::warn!("{label}: {e}"),
            }
        }
        for (label, _, result) in run_commands(opts, again) {
            match result {
                Ok(run) if run.success() => {}
                Ok(run) => tracing::warn!("{label}: {}", script_failure(opts, &run, None)),
                Err(e) => tracing::warn!("{label}: {e}"),
            }
        }
    }
    // Step 4: the nodes (libxl__device_destroy: frontend, /libxl copy, backend).
    for d in devs {
        let n = &d.nodes;
        if failures.failed.contains(&(n.kind, n.devid)) {
            continue;
        }
        let dom = n.domid.0;
        let stops = [
            format!("/local/domain/{dom}"),
            format!("/libxl/{dom}"),
            format!("/local/domain/{}", n.backend_domid.0),
        ];
        for (path, stop) in n.teardown_paths().into_iter().zip(stops.iter()) {
            if let Err(e) = remove_with_parents(xs, path, stop) {
                failures.keep(
                    d,
                    DeviceFailure::host(&d.label, &format!("removing {path}"), e),
                );
            }
        }
    }
    match failures.first {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

/// Remove every device of `dom`, by force (a destroy, a failed create): vbds and vifs
/// found under `/libxl/DOM/device` or in Domain-0's backend tree. Nothing to do is `Ok`.
pub fn remove_all<S: Store + ?Sized>(
    xs: &S,
    opts: &DeviceOptions,
    dom: DomId,
) -> Result<(), DeviceFailure> {
    // The device model goes first, as in libxl's destroy: it serves the qdisk disks.
    crate::dm::stop(xs, &opts.dm, dom).map_err(|e| DeviceFailure {
        device: format!("the device model of domain {dom}"),
        message: e.message,
        host_error: None,
    })?;
    let mut devs = Vec::new();
    for kind in [DeviceKind::Vbd, DeviceKind::Vif] {
        let ids = devids(xs, dom, kind)
            .map_err(|e| DeviceFailure::host(&format!("{kind}s of domain {dom}"), "listing", e))?;
        for id in ids {
            let found = existing(xs, dom, kind, id)
                .map_err(|e| DeviceFailure::host(&format!("{kind} {id}"), "reading it", e))?;
            devs.extend(found);
        }
    }
    if devs.is_empty() {
        return Ok(());
    }
    teardown(xs, opts, &devs, true)
}

/// Take one device of `dom` down (`block-detach`, `network-detach`): asks the guest to
/// let go first and forces it after the timeout unless `force`. `Ok(false)` when the
/// domain has no such device.
pub fn detach<S: Store + ?Sized>(
    xs: &S,
    opts: &DeviceOptions,
    dom: DomId,
    kind: DeviceKind,
    devid: u32,
    force: bool,
) -> Result<bool, DeviceFailure> {
    let Some(dev) = existing(xs, dom, kind, devid)
        .map_err(|e| DeviceFailure::host(&format!("{kind} {devid}"), "reading it", e))?
    else {
        return Ok(false);
    };
    teardown(xs, opts, &[dev], force)?;
    Ok(true)
}

/// One device of a domain as xenstore shows it: what `block-list`, `network-list` and
/// `rxl list --json` report. Values from the frontend come from the guest: they are
/// parsed as numbers or bounded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    /// vbd or vif.
    pub kind: DeviceKind,
    /// Its devid.
    pub devid: u32,
    /// The backend domain.
    pub backend_domid: DomId,
    /// The backend directory.
    pub backend: String,
    /// The frontend directory.
    pub frontend: String,
    /// The backend's state.
    pub backend_state: Option<u8>,
    /// The frontend's state.
    pub frontend_state: Option<u8>,
    /// The frontend's event channel.
    pub event_channel: Option<u32>,
    /// vbd: the frontend's ring reference.
    pub ring_ref: Option<u32>,
    /// vif: the frontend's transmit ring reference.
    pub tx_ring_ref: Option<u32>,
    /// vif: the frontend's receive ring reference.
    pub rx_ring_ref: Option<u32>,
    /// vbd: the virtual device name (the backend's `dev`).
    pub vdev: Option<String>,
    /// vbd: what the backend serves (`params`).
    pub target: Option<String>,
    /// vbd: `r` or `w`.
    pub mode: Option<String>,
    /// vbd: the loop device or block device in dom0 (`node`, else `physical-device-path`).
    pub node: Option<String>,
    /// vif: the MAC.
    pub mac: Option<String>,
    /// vif: the bridge.
    pub bridge: Option<String>,
    /// The script's result (`connected`, `error`).
    pub hotplug_status: Option<String>,
}

/// Every vbd and vif of `dom`, vbds first, each kind by devid.
pub fn list<S: Store + ?Sized>(xs: &S, dom: DomId) -> Result<Vec<DeviceInfo>, Error> {
    let mut out = Vec::new();
    for kind in [DeviceKind::Vbd, DeviceKind::Vif] {
        for devid in devids(xs, dom, kind)? {
            if let Some(dev) = existing(xs, dom, kind, devid)? {
                out.push(info(xs, &dev.nodes)?);
            }
        }
    }
    Ok(out)
}

fn info<S: Store + ?Sized>(xs: &S, n: &DeviceNodes) -> Result<DeviceInfo, Error> {
    let text = |dir: &str, key: &str| -> Result<Option<String>, Error> {
        Ok(
            xen_host::read_string(xs, TxId::NONE, &format!("{dir}/{key}"))?
                .map(|v| bounded(v.trim_end_matches('\0'))),
        )
    };
    let num = |dir: &str, key: &str| -> Result<Option<u32>, Error> {
        Ok(text(dir, key)?.and_then(|v| v.trim().parse().ok()))
    };
    let be = n.backend.as_str();
    let fe = n.frontend.as_str();
    let vbd = n.kind == DeviceKind::Vbd;
    let when = |on: bool, v: Option<String>| if on { v } else { None };
    Ok(DeviceInfo {
        kind: n.kind,
        devid: n.devid,
        backend_domid: n.backend_domid,
        backend: n.backend.clone(),
        frontend: n.frontend.clone(),
        backend_state: read_state(xs, &format!("{be}/state"))?,
        frontend_state: read_state(xs, &format!("{fe}/state"))?,
        event_channel: num(fe, "event-channel")?,
        ring_ref: if vbd { num(fe, "ring-ref")? } else { None },
        tx_ring_ref: if vbd { None } else { num(fe, "tx-ring-ref")? },
        rx_ring_ref: if vbd { None } else { num(fe, "rx-ring-ref")? },
        vdev: when(vbd, text(be, "dev")?),
        target: when(vbd, text(be, "params")?),
        mode: when(vbd, text(be, "mode")?),
        node: when(vbd, text(be, "node")?.or(text(be, "physical-device-path")?)),
        mac: when(!vbd, text(be, "mac")?),
        bridge: when(!vbd, text(be, "bridge")?),
        hotplug_status: text(be, "hotplug-status")?,
    })
}

/// Whether `dom` has a device `kind`/`devid` (in the toolstack's tree, the guest's or
/// Domain-0's backend tree).
pub fn exists<S: Store + ?Sized>(
    xs: &S,
    dom: DomId,
    kind: DeviceKind,
    devid: u32,
) -> Result<bool, Error> {
    Ok(existing(xs, dom, kind, devid)?.is_some())
}

/// A device to hot-plug: a disk or a vif spec as `block-attach` / `network-attach` got it.
#[derive(Clone, Debug)]
pub enum NewDevice {
    /// A disk.
    Disk(xlcfg::model::DiskSpec),
    /// A vif (unless its spec gives `devid=`, the devid is chosen here: one more than the
    /// highest the domain has).
    Vif(xlcfg::model::VifSpec),
}

/// A hot-plugged vif is PV only (libxl's `libxl__device_nic_setdefault` with `hotplug`:
/// the device model is running and gets no new NIC), and says so in the record so that a
/// reboot keeps it PV only; `type=ioemu` is refused for it.
fn hotplugged_nic_type(guest: &devices::Guest, new: NewDevice) -> Result<NewDevice, DeviceFailure> {
    use xlcfg::model::NicType;
    match new {
        NewDevice::Vif(spec) if spec.nic_type == Some(NicType::Ioemu) => Err(DeviceFailure::msg(
            &format!("vif {}", spec.devid),
            format!(
                "an emulated NIC (type=ioemu) cannot be hot-plugged into domain {}: its \
                 device model is running; leave type= out (or write type=vif) for a PV vif",
                guest.domid
            ),
        )),
        NewDevice::Vif(spec) => Ok(NewDevice::Vif(xlcfg::model::VifSpec {
            nic_type: Some(NicType::Vif),
            ..spec
        })),
        disk => Ok(disk),
    }
}

/// The guest's type: rxl's record, else libxl's `/libxl/D/type`, else Xen's flags.
fn guest_type<S: Store + ?Sized>(
    xs: &S,
    state: &crate::state::StateDir,
    info: &xen_host::DomainInfo,
) -> xlcfg::DomainType {
    use xlcfg::DomainType;
    if let Ok(Some(r)) = state.load::<crate::create::Record>(info.domid) {
        return r.config.domain_type;
    }
    let typ = xen_host::read_string(xs, TxId::NONE, &format!("/libxl/{}/type", info.domid.0))
        .ok()
        .flatten();
    match typ.as_deref() {
        Some("pv") => DomainType::Pv,
        Some("hvm") => DomainType::Hvm,
        Some("pvh") => DomainType::Pvh,
        _ if info.hvm => DomainType::Pvh,
        _ => DomainType::Pv,
    }
}

/// Resolve a `backend=` domain: `Domain-0`, an id, or a name xenstore knows.
pub fn resolve_backend<H, S>(hv: &H, xs: &S, name: &str) -> Option<DomId>
where
    H: xen_host::Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    match name {
        "Domain-0" => Some(DomId::DOM0),
        id if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
            id.parse::<u16>().ok().map(DomId)
        }
        name => crate::domains::find_by_name(hv, xs, name).ok().flatten(),
    }
}

fn backend_domain<H, S>(
    hv: &H,
    xs: &S,
    name: Option<&str>,
    label: &str,
) -> Result<DomId, DeviceFailure>
where
    H: xen_host::Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    match name {
        None => Ok(DomId::DOM0),
        Some(n) => resolve_backend(hv, xs, n).ok_or_else(|| {
            DeviceFailure::msg(label, format!("backend domain {n:?} does not exist"))
        }),
    }
}

/// Check and compute `new` for `guest`.
fn plan_new<H, S>(
    hv: &H,
    xs: &S,
    opts: &DeviceOptions,
    guest: &devices::Guest,
    new: &NewDevice,
) -> Result<PlannedDevice, DeviceFailure>
where
    H: xen_host::Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let dom = guest.domid;
    let refused = |e: devices::DeviceError| DeviceFailure::msg(&e.device, e.message);
    match new {
        NewDevice::Disk(spec) => {
            let label = devices::assign::disk_label(spec);
            let devid = devices::vdev::devid(&spec.vdev)
                .map_err(|e| DeviceFailure::msg(&label, e.reason))?;
            let taken = exists(xs, dom, DeviceKind::Vbd, devid)
                .map_err(|e| DeviceFailure::host(&label, "looking for it", e))?;
            if taken {
                return Err(DeviceFailure::msg(
                    &label,
                    format!(
                        "domain {dom} has a disk with vdev {} (devid {devid}) already",
                        spec.vdev
                    ),
                ));
            }
            let disk = devices::DiskDevice {
                spec: spec.clone(),
                devid,
                backend: backend_domain(hv, xs, spec.backend.as_deref(), &label)?,
            };
            if devices::disk_backend(spec, disk.backend) == Ok(devices::DiskBackend::Qdisk) {
                return Err(DeviceFailure::msg(
                    &label,
                    "a disk QEMU serves (qcow, qcow2, vhd, qed, backendtype=qdisk) cannot be \
                     hot-plugged: add it to the config and create the guest with it"
                        .into(),
                ));
            }
            devices::plan::disk(guest, &disk, &opts.script_dir).map_err(refused)
        }
        NewDevice::Vif(spec) => {
            let whole = format!("domain {dom}");
            let present =
                list(xs, dom).map_err(|e| DeviceFailure::host(&whole, "listing its devices", e))?;
            let vifs: Vec<&DeviceInfo> = present
                .iter()
                .filter(|d| d.kind == DeviceKind::Vif)
                .collect();
            let devid = if spec.devid_given {
                if let Some(other) = vifs.iter().find(|d| d.devid == spec.devid) {
                    return Err(DeviceFailure::msg(
                        &format!("vif {}", spec.devid),
                        format!(
                            "domain {dom} has a vif with devid {} already (MAC {})",
                            other.devid,
                            other.mac.as_deref().unwrap_or("unknown")
                        ),
                    ));
                }
                spec.devid
            } else {
                vifs.iter().map(|d| d.devid + 1).max().unwrap_or(0)
            };
            let vif = devices::VifDevice {
                spec: xlcfg::model::VifSpec {
                    devid,
                    ..spec.clone()
                },
                devid,
                mac: spec.mac,
                backend: backend_domain(hv, xs, spec.backend.as_deref(), &format!("vif {devid}"))?,
            };
            let label = vif.label();
            let mac = spec.mac.to_string();
            let same = |d: &&&DeviceInfo| {
                d.mac
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case(&mac))
            };
            if let Some(other) = vifs.iter().find(same) {
                return Err(DeviceFailure::msg(
                    &label,
                    format!(
                        "domain {dom} has a vif with MAC {mac} already (devid {})",
                        other.devid
                    ),
                ));
            }
            devices::plan::vif(guest, &vif, &opts.script_dir).map_err(refused)
        }
    }
}

/// Hot-plug `new` into the domain `dom` (`block-attach`, `network-attach`): check it (a
/// vdev or MAC the domain uses already is refused), set it up as a create does, and add
/// it to rxl's record of the domain (when rxl has one) so that a reboot keeps it. A
/// failure removes what was set up of the device. Returns the device as listed.
pub fn attach<H, S>(
    hv: &H,
    xs: &S,
    state: &crate::state::StateDir,
    opts: &DeviceOptions,
    dom: DomId,
    new: NewDevice,
) -> Result<DeviceInfo, DeviceFailure>
where
    H: xen_host::Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let whole = format!("domain {dom}");
    let found = hv
        .domain_info(dom)
        .map_err(|e| DeviceFailure::host(&whole, "looking it up", e))?
        .ok_or_else(|| DeviceFailure::msg(&whole, "no such domain".into()))?;
    if dom == DomId::DOM0 {
        return Err(DeviceFailure::msg(
            &whole,
            "rxl does not attach devices to Domain-0".into(),
        ));
    }
    if found.dying {
        return Err(DeviceFailure::msg(&whole, "it is dying".into()));
    }
    let guest = devices::Guest {
        domid: dom,
        domain_type: guest_type(xs, state, &found),
    };
    let new = hotplugged_nic_type(&guest, new)?;
    let planned = plan_new(hv, xs, opts, &guest, &new)?;
    // Set up and read back: a failure of either removes what was set up of the device.
    let done = setup(xs, opts, std::slice::from_ref(&planned)).and_then(|()| {
        let read = |e| DeviceFailure::host(&planned.label, "reading it back", e);
        let dev = existing(xs, dom, planned.kind, planned.devid)
            .map_err(read)?
            .ok_or_else(|| DeviceFailure::msg(&planned.label, "it vanished once set up".into()))?;
        info(xs, &dev.nodes).map_err(read)
    });
    let listed = match done {
        Ok(listed) => listed,
        Err(e) => {
            match existing(xs, dom, planned.kind, planned.devid) {
                Ok(Some(dev)) => {
                    if let Err(undo) = teardown(xs, opts, &[dev], true) {
                        tracing::error!("removing what was set up of it failed too: {undo}");
                    }
                }
                Ok(None) => {}
                // Not found for sure: look again the way a destroy does.
                Err(undo) => {
                    tracing::warn!("cannot look for what was set up of it: {undo}");
                    let fallback = Existing {
                        nodes: DeviceNodes {
                            nodes: Vec::new(),
                            ..planned.nodes.clone()
                        },
                        label: planned.label.clone(),
                    };
                    if let Err(undo) = teardown(xs, opts, &[fallback], true) {
                        tracing::error!("removing what was set up of it failed too: {undo}");
                    }
                }
            }
            return Err(e);
        }
    };
    record_change(state, dom, |cfg| match &new {
        NewDevice::Disk(spec) => cfg.disks.push(spec.clone()),
        NewDevice::Vif(spec) => cfg.vifs.push(xlcfg::model::VifSpec {
            devid: planned.devid,
            ..spec.clone()
        }),
    });
    Ok(listed)
}

/// Detach one device (as [`detach`]) and drop it from rxl's record of the domain.
pub fn detach_recorded<S: Store + ?Sized>(
    xs: &S,
    state: &crate::state::StateDir,
    opts: &DeviceOptions,
    dom: DomId,
    kind: DeviceKind,
    devid: u32,
    force: bool,
) -> Result<bool, DeviceFailure> {
    let found = detach(xs, opts, dom, kind, devid, force)?;
    if found {
        record_change(state, dom, |cfg| match kind {
            DeviceKind::Vbd => cfg
                .disks
                .retain(|d| devices::vdev::devid(&d.vdev).ok() != Some(devid)),
            DeviceKind::Vif => cfg.vifs.retain(|v| v.devid != devid),
        });
    }
    Ok(found)
}

/// Change rxl's record of `dom` (if there is one) under the host lock; a failure is
/// logged: the device itself is attached or detached already.
fn record_change(
    state: &crate::state::StateDir,
    dom: DomId,
    change: impl FnOnce(&mut xlcfg::DomainConfig),
) {
    let _lock = match crate::lock::HostLock::acquire(state.path(), "create") {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot update rxl's record of domain {dom}: {e}");
            return;
        }
    };
    match state.load::<crate::create::Record>(dom) {
        Ok(Some(mut r)) => {
            change(&mut r.config);
            if let Err(e) = state.save(dom, &r) {
                tracing::error!("cannot update rxl's record of domain {dom}: {e}");
            }
        }
        Ok(None) => {}
        Err(e) => tracing::error!("cannot read rxl's record of domain {dom}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xlcfg::model::NicType;

    fn vif(text: &str) -> xlcfg::model::VifSpec {
        xlcfg::model::vif_arg(text)
            .unwrap_or_else(|d| panic!("{d:?}"))
            .0
    }

    #[test]
    fn a_hot_plugged_vif_is_pv_only() {
        let guest = devices::Guest {
            domid: DomId(4),
            domain_type: xlcfg::DomainType::Hvm,
        };
        for text in ["bridge=xenbr0", "type=vif"] {
            match hotplugged_nic_type(&guest, NewDevice::Vif(vif(text))) {
                Ok(NewDevice::Vif(v)) => assert_eq!(v.nic_type, Some(NicType::Vif), "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        let e =
            hotplugged_nic_type(&guest, NewDevice::Vif(vif("type=ioemu"))).expect_err("refused");
        assert!(
            e.to_string()
                .contains("an emulated NIC (type=ioemu) cannot be hot-plugged into domain 4"),
            "{e}"
        );
    }
}
