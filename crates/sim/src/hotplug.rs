//! Simulated hotplug: [`SimHotplug`] carries out Xen's default hotplug scripts on the
//! simulated host's state, and runs any other script for real.
//!
//! Recognised by file name, in any directory:
//!
//! - `block add`: reads the backend's `params` and `mode`. A block device (symbolic links
//!   followed) is used as it is; a regular file gets the lowest free simulated loop device
//!   `/dev/loopN` (read-only for mode `r`), and the backend must still be in InitWait, as
//!   the script checks. The target must exist on the real filesystem. Writes
//!   `physical-device` (`MAJOR:MINOR` in hex, as `stat -c %t:%T` prints it),
//!   `physical-device-path`, `node` (loop devices only) and `hotplug-status=connected`.
//!   An add whose `physical-device` is already written does nothing (the script's "called
//!   twice" rule). Refused with `hotplug-status=busy` (the script's `ebusy`): a file
//!   without write permission for a read-write disk, and a target another guest's vbd uses
//!   read-write (or uses at all, for a read-write disk): the block script's sharing check
//!   over the backends' `physical-device`, a guest with the same `vm` counting as the same
//!   guest. Mode `w!` skips the sharing check. Unlike the script, dom0's own mounts are
//!   not checked.
//! - `block remove`: frees the loop device set up for the backend (its `node`).
//! - `vif-bridge online`: the bridge is the backend's `bridge`, else the host's first; it
//!   must be one of the host's bridges ([`crate::HostConfig::bridges`]). Adds the port
//!   `vifD.N` (or the backend's `vifname`, refused when an interface has that name
//!   already) and writes `hotplug-status=connected`. `offline` removes the port.
//! - `vif-bridge add` / `remove` with `type_if=tap`: the tap of an HVM guest's emulated
//!   NIC, named by `INTERFACE` (`vifD.N-emu`, or the backend's `vifname` + `-emu`). The
//!   simulated device model makes no interface: `add` is where the tap appears on the
//!   simulated host, as a port of the bridge (checked as for `online`), without
//!   `hotplug-status`; `remove` (run by the toolstack after the device model has gone)
//!   is where it disappears.
//! - `vif-route`, `vif-nat`: as `vif-bridge` without a bridge (the interface is kept, as
//!   no bridge's port).
//!
//! A failure does what the scripts' `fatal` does: `hotplug-error=TEXT` and
//! `hotplug-status=error` in the backend, and the run exits with status 1. Each run
//! appends a line saying what it did, or why it failed, to its log.
//!
//! Faults (`RXL_SIM_FAIL`, counted by this value, not by any [`crate::SimHost`]):
//! `hotplug_add` / `hotplug_remove` make the N-th add (or remove) fail as `fatal` does,
//! with a `hotplug-error` naming the injected fault; `=hang` (or a `=sleep:MS` at least as
//! long as the timeout) reports the run as killed at its timeout, with `elapsed` equal to
//! the timeout, without waiting; a shorter `=sleep:MS` waits and then runs. They apply to
//! any script, recognised or not.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use devices::hotplug::{Hotplug, HotplugCommand, HotplugError, HotplugRun};
use nix::sys::signal::Signal;
use xen_host::DomId;

use crate::backend::{self, set, value, Dev, BACKEND_ROOT};
use crate::devstate::{self, loop_node, DevState, IfaceRec, LoopDevice, LoopRec, VifInterface};
use crate::fault::{self, Faults, Fired};
use crate::{run_locked, xs, HostConfig, SimError, SimHost, World};

/// The scripts carried out on the simulated host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Script {
    Block,
    /// `vif-bridge`.
    Bridge,
    /// `vif-route`, `vif-nat`: no bridge.
    Routed,
}

impl Script {
    fn recognise(path: &Path) -> Option<Script> {
        match path.file_name()?.to_str()? {
            "block" => Some(Script::Block),
            "vif-bridge" => Some(Script::Bridge),
            "vif-route" | "vif-nat" => Some(Script::Routed),
            _ => None,
        }
    }
}

/// Add or remove, from the command's first argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Add,
    Remove,
}

impl Action {
    fn of(cmd: &HotplugCommand) -> Option<Action> {
        match cmd.args.first().map(String::as_str) {
            Some("add" | "online") => Some(Action::Add),
            Some("remove" | "offline") => Some(Action::Remove),
            _ => None,
        }
    }

    fn fault_op(self) -> &'static str {
        match self {
            Action::Add => "hotplug_add",
            Action::Remove => "hotplug_remove",
        }
    }
}

/// How a simulated script ended.
enum Outcome {
    /// Exit 0; what it did.
    Done(String),
    /// Exit 1 after writing `hotplug-error` and `hotplug-status` (`error`, or `busy`).
    Failed { text: String, status: &'static str },
}

fn fatal(text: impl Into<String>) -> Outcome {
    Outcome::Failed {
        text: text.into(),
        status: "error",
    }
}

fn busy(text: impl Into<String>) -> Outcome {
    Outcome::Failed {
        text: text.into(),
        status: "busy",
    }
}

/// Hotplug on the simulated host ([`Hotplug`], named `simulated`).
#[derive(Debug)]
pub struct SimHotplug {
    dir: PathBuf,
    config: HostConfig,
    faults: Mutex<Faults>,
}

impl SimHotplug {
    /// Hotplug for the simulated host in `dir` (created on first use, as
    /// [`SimHost::open`] does), with the faults `RXL_SIM_FAIL` names.
    pub fn open(dir: &Path) -> Result<SimHotplug, SimError> {
        let rules = fault::from_env()?;
        let config = SimHost::init(dir, None)?;
        Ok(SimHotplug {
            dir: dir.to_path_buf(),
            config,
            faults: Mutex::new(Faults::new(rules)),
        })
    }

    /// Hotplug for the same host as `host`, without faults.
    pub fn for_host(host: &SimHost) -> SimHotplug {
        SimHotplug {
            dir: host.dir().to_path_buf(),
            config: host.host_config().clone(),
            faults: Mutex::new(Faults::default()),
        }
    }

    /// Replace the faults with `spec` (the `RXL_SIM_FAIL` syntax).
    pub fn with_faults(self, spec: &str) -> Result<SimHotplug, SimError> {
        Ok(SimHotplug {
            faults: Mutex::new(Faults::new(fault::parse_spec(spec)?)),
            ..self
        })
    }

    /// The simulated loop devices, by minor.
    pub fn loop_devices(&self) -> Result<Vec<LoopDevice>, SimError> {
        Ok(devstate::inspect(&self.dir)?.0)
    }

    /// The vif interfaces, by name.
    pub fn vif_interfaces(&self) -> Result<Vec<VifInterface>, SimError> {
        Ok(devstate::inspect(&self.dir)?.1)
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Carry out a recognised script, or only write what an injected failure leaves, on
    /// the host state.
    fn simulate(
        &self,
        cmd: &HotplugCommand,
        script: Option<Script>,
        injected: Option<String>,
    ) -> Result<Outcome, SimError> {
        let rel = cmd.env_var("XENBUS_PATH").ok_or_else(|| {
            SimError::Config(format!("{cmd}: XENBUS_PATH is not set in its environment"))
        })?;
        let be = xs::canonical(DomId::DOM0, rel)?;
        let dev = backend::parse_backend(&be)
            .filter(|(_, key)| key.is_none())
            .map(|(dev, _)| dev)
            .ok_or_else(|| {
                SimError::Config(format!(
                    "{cmd}: XENBUS_PATH `{rel}` is not a device's directory below {BACKEND_ROOT}"
                ))
            })?;
        let mut faults = self.faults();
        run_locked(&self.dir, &self.config, |w| {
            let outcome = match (injected, script, Action::of(cmd)) {
                (Some(text), _, _) => fatal(text),
                (None, Some(Script::Block), Some(Action::Add)) => block_add(w, &be, dev)?,
                (None, Some(Script::Block), Some(Action::Remove)) => block_remove(w, &be)?,
                (None, Some(s), Some(a)) => vif(w, cmd, &be, s, a)?,
                (None, _, None) => fatal(format!(
                    "unknown command `{}`",
                    cmd.args.first().map_or("", String::as_str)
                )),
                (None, None, Some(_)) => {
                    return Err(SimError::Config(format!("{cmd} is not simulated")))
                }
            };
            match &outcome {
                Outcome::Failed { text, status } => {
                    set(w, &format!("{be}/hotplug-error"), text)?;
                    set(w, &format!("{be}/hotplug-status"), status)?;
                }
                Outcome::Done(_) => {
                    let ready = backend::Touched {
                        ready: true,
                        ..Default::default()
                    };
                    backend::device_changed(w, &mut faults, dev, ready)?;
                }
            }
            Ok(outcome)
        })
    }
}

/// The block script's mode classes: `r`, `w`, or `!` (no checks).
fn canonical_mode(mode: &str) -> char {
    if !mode.contains('w') {
        'r'
    } else if !mode.contains('!') {
        'w'
    } else {
        '!'
    }
}

fn major_minor(major: u64, minor: u64) -> String {
    format!("{major:x}:{minor:x}")
}

fn block_add(w: &mut World<'_>, be: &str, dev: Dev) -> Result<Outcome, SimError> {
    let key = |k: &str| format!("{be}/{k}");
    if value(w, &key("physical-device"))?.is_some() {
        return Ok(Outcome::Done("already set up: nothing to do".into()));
    }
    let Some(params) = value(w, &key("params"))?.filter(|p| !p.is_empty()) else {
        return Ok(fatal(format!("{be}/params is missing")));
    };
    let Some(mode) = value(w, &key("mode"))? else {
        return Ok(fatal(format!("{be}/mode is missing")));
    };
    let mode = canonical_mode(&mode);
    let meta = match std::fs::metadata(&params) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(fatal(format!("{params} does not exist")))
        }
        Err(e) => return Ok(fatal(format!("{params}: {e}"))),
    };
    let target = std::fs::canonicalize(&params).unwrap_or_else(|_| PathBuf::from(&params));
    let mut st = DevState::load(w.dir)?;
    if meta.file_type().is_block_device() {
        let rdev = meta.rdev();
        let mm = major_minor(
            nix::sys::stat::major(rdev) as u64,
            nix::sys::stat::minor(rdev) as u64,
        );
        if let Some(user) = shared_with(w, dev, mode, std::slice::from_ref(&mm))? {
            return Ok(busy(format!(
                "{} is in use read-write by another guest ({user}), so it cannot be \
                 attached {}",
                target.display(),
                if mode == 'w' {
                    "read-write"
                } else {
                    "read-only"
                }
            )));
        }
        let path = target.display().to_string();
        write_dev(w, be, &mm, &path)?;
        return Ok(Outcome::Done(format!(
            "block device {path} (physical-device {mm})"
        )));
    }
    if !meta.is_file() {
        return Ok(fatal(format!(
            "{params} is neither a block device nor a regular file"
        )));
    }
    let st_now = value(w, &key("state"))?;
    if st_now.as_deref() != Some("2") {
        return Ok(fatal(format!(
            "{be} was closed or removed during hotplug add (state {})",
            st_now.as_deref().unwrap_or("missing")
        )));
    }
    if mode == 'w' && meta.permissions().mode() & 0o222 == 0 {
        return Ok(busy(format!(
            "{} is read-only, so it cannot be attached read-write",
            target.display()
        )));
    }
    let same_file: Vec<String> = st
        .loops
        .iter()
        .filter(|(_, l)| l.dev == meta.dev() && l.ino == meta.ino())
        .map(|(&minor, _)| major_minor(devstate::LOOP_MAJOR.into(), minor.into()))
        .collect();
    if let Some(user) = shared_with(w, dev, mode, &same_file)? {
        return Ok(busy(format!(
            "{} is attached through a loop device read-write to another guest ({user}), \
             so it cannot be attached {}",
            target.display(),
            if mode == 'w' {
                "read-write"
            } else {
                "read-only"
            }
        )));
    }
    let minor = st.free_loop();
    st.loops.insert(
        minor,
        LoopRec {
            file: target.clone(),
            dev: meta.dev(),
            ino: meta.ino(),
            read_only: mode == 'r',
            backend: be.to_owned(),
        },
    );
    st.store(w.dir)?;
    let node = loop_node(minor);
    set(w, &key("node"), &node)?;
    let mm = major_minor(devstate::LOOP_MAJOR.into(), minor.into());
    write_dev(w, be, &mm, &node)?;
    Ok(Outcome::Done(format!(
        "{node} bound to {}{} (physical-device {mm})",
        target.display(),
        if mode == 'r' { " read-only" } else { "" }
    )))
}

/// What the block script's `write_dev` writes.
fn write_dev(w: &mut World<'_>, be: &str, mm: &str, path: &str) -> Result<(), SimError> {
    set(w, &format!("{be}/physical-device"), mm)?;
    set(w, &format!("{be}/physical-device-path"), path)?;
    set(w, &format!("{be}/hotplug-status"), "connected")
}

/// The block script's sharing check: the backend of another guest whose
/// `physical-device` is one of `devmm` and which conflicts with `mode`.
fn shared_with(
    w: &World<'_>,
    dev: Dev,
    mode: char,
    devmm: &[String],
) -> Result<Option<String>, SimError> {
    if mode == '!' || devmm.is_empty() {
        return Ok(None);
    }
    let vm_of = |dom: &str| value(w, &format!("/local/domain/{dom}/vm"));
    let my_vm = vm_of(&dev.dom.to_string())?;
    let root = format!("{BACKEND_ROOT}/vbd");
    for dom in xs::disk_children(w.dir, &root)? {
        for n in xs::disk_children(w.dir, &format!("{root}/{dom}"))? {
            let other = format!("{root}/{dom}/{n}");
            let Some(pd) = value(w, &format!("{other}/physical-device"))? else {
                continue;
            };
            if !devmm.contains(&pd) {
                continue;
            }
            if mode == 'r' {
                let m = value(w, &format!("{other}/mode"))?.unwrap_or_default();
                if canonical_mode(&m) != 'w' {
                    continue;
                }
            }
            // A guest whose `vm` is missing counts as the same guest, as in the script.
            let same = dom == dev.dom.to_string()
                || match vm_of(&dom)? {
                    None => true,
                    Some(v) => my_vm.as_deref() == Some(v.as_str()),
                };
            if !same {
                return Ok(Some(other));
            }
        }
    }
    Ok(None)
}

fn block_remove(w: &mut World<'_>, be: &str) -> Result<Outcome, SimError> {
    let node = value(w, &format!("{be}/node"))?;
    let mut st = DevState::load(w.dir)?;
    let freed: Vec<u32> = st
        .loops
        .iter()
        .filter(|(&minor, l)| l.backend == be || node.as_deref() == Some(&loop_node(minor)))
        .map(|(&m, _)| m)
        .collect();
    if freed.is_empty() {
        return Ok(Outcome::Done("no loop device to free".into()));
    }
    for m in &freed {
        st.loops.remove(m);
    }
    st.store(w.dir)?;
    let names: Vec<String> = freed.into_iter().map(loop_node).collect();
    Ok(Outcome::Done(format!("freed {}", names.join(" "))))
}

fn vif(
    w: &mut World<'_>,
    cmd: &HotplugCommand,
    be: &str,
    script: Script,
    action: Action,
) -> Result<Outcome, SimError> {
    // type_if=tap: the tap of an emulated NIC (INTERFACE, `vifD.N-emu`).
    let tap = cmd.args.iter().any(|a| a == "type_if=tap");
    if !tap && !cmd.args.iter().any(|a| a == "type_if=vif") {
        return Ok(Outcome::Done(
            "not type_if=vif or type_if=tap: nothing to do".into(),
        ));
    }
    let var = if tap { "INTERFACE" } else { "vif" };
    let Some(mut name) = cmd
        .env_var(var)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
    else {
        return Ok(fatal(format!(
            "the variable {var} (the interface) is not set"
        )));
    };
    let mut st = DevState::load(w.dir)?;
    if let Some(mut vifname) = value(w, &format!("{be}/vifname"))?.filter(|v| !v.is_empty()) {
        if tap {
            vifname.push_str("-emu");
        }
        let taken = st.ifaces.get(&vifname).is_some_and(|i| i.backend != be);
        if action == Action::Add && taken {
            return Ok(fatal(format!(
                "cannot rename {name} to {vifname}: an interface named {vifname} exists"
            )));
        }
        name = vifname;
    }
    let bridge = if script == Script::Bridge {
        let given = value(w, &format!("{be}/bridge"))?.filter(|b| !b.is_empty());
        let Some(bridge) = given.or_else(|| w.config.bridges.first().cloned()) else {
            return Ok(fatal("no bridge was given and the host has none"));
        };
        if !w.config.bridges.contains(&bridge) {
            return Ok(fatal(format!("bridge {bridge} does not exist")));
        }
        Some(bridge)
    } else {
        None
    };
    let on = bridge
        .as_deref()
        .map(|b| format!(" on bridge {b}"))
        .unwrap_or_default();
    match action {
        Action::Add => {
            st.ifaces.insert(
                name.clone(),
                IfaceRec {
                    bridge,
                    backend: be.to_owned(),
                },
            );
            st.store(w.dir)?;
            // As the script, only the netback interface's run reports to the backend.
            if !tap {
                set(w, &format!("{be}/hotplug-status"), "connected")?;
            }
            Ok(Outcome::Done(format!("interface {name} up{on}")))
        }
        Action::Remove => {
            if st.ifaces.remove(&name).is_some() {
                st.store(w.dir)?;
                Ok(Outcome::Done(format!("interface {name} removed{on}")))
            } else {
                Ok(Outcome::Done(format!("no interface {name}: nothing to do")))
            }
        }
    }
}

/// Open a hotplug log to append to, never through a symbolic link, mode 0640.
use devices::hotplug::open_log;

fn log_line(out: &mut File, log: &Path, line: &str) -> Result<(), HotplugError> {
    writeln!(out, "{line}").map_err(|source| HotplugError::Log {
        log: log.to_owned(),
        source,
    })
}

impl Hotplug for SimHotplug {
    fn run(
        &self,
        cmd: &HotplugCommand,
        log: &Path,
        timeout: Duration,
    ) -> Result<HotplugRun, HotplugError> {
        let start = Instant::now();
        let script = Script::recognise(&cmd.script);
        let action = Action::of(cmd);
        let fired = action.and_then(|a| {
            let op = a.fault_op();
            self.faults().fire(op).map(|(f, n)| (f, n, op))
        });
        if script.is_none() && fired.is_none() {
            return devices::hotplug::run(cmd, log, timeout);
        }
        let mut out = open_log(log)?;
        let xenbus = cmd.env_var("XENBUS_PATH").unwrap_or("");
        log_line(
            &mut out,
            log,
            &format!("rxl (simulated host): {cmd} (XENBUS_PATH={xenbus})"),
        )?;
        let run = |exit_code, signal, timed_out, elapsed| HotplugRun {
            command: cmd.clone(),
            exit_code,
            signal,
            timed_out,
            log: log.to_owned(),
            elapsed,
        };
        let mut injected = None;
        match fired {
            Some((Fired::Sleep(ms), n, op)) if u128::from(ms) < timeout.as_millis() => {
                log_line(
                    &mut out,
                    log,
                    &format!("waiting {ms} ms first (RXL_SIM_FAIL: call {n} of {op})"),
                )?;
                std::thread::sleep(Duration::from_millis(ms));
            }
            Some((Fired::Sleep(_) | Fired::Hang, n, op)) => {
                log_line(
                    &mut out,
                    log,
                    &format!(
                        "hung (RXL_SIM_FAIL: call {n} of {op}); reported as killed at the \
                         {} ms timeout without waiting for it",
                        timeout.as_millis()
                    ),
                )?;
                return Ok(run(None, Some(Signal::SIGKILL as i32), true, timeout));
            }
            Some((Fired::Fail(errno), n, op)) => {
                injected = Some(format!(
                    "injected by RXL_SIM_FAIL: call {n} of {op} failed with {errno}"
                ));
            }
            None => {}
        }
        if script.is_none() && injected.is_none() {
            drop(out);
            return devices::hotplug::run(cmd, log, timeout);
        }
        let outcome = self
            .simulate(cmd, script, injected)
            .map_err(|e| HotplugError::Spawn {
                script: cmd.script.clone(),
                source: std::io::Error::other(format!("simulated host: {e}")),
            })?;
        let code = match outcome {
            Outcome::Done(what) => {
                log_line(&mut out, log, &format!("done: {what}"))?;
                0
            }
            Outcome::Failed { text, status } => {
                log_line(
                    &mut out,
                    log,
                    &format!("failed: {text} (hotplug-status={status}, exit status 1)"),
                )?;
                1
            }
        };
        Ok(run(Some(code), None, false, start.elapsed()))
    }

    fn name(&self) -> &'static str {
        "simulated"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_recognised_by_file_name() {
        let r = |p: &str| Script::recognise(Path::new(p));
        assert_eq!(r("/etc/xen/scripts/block"), Some(Script::Block));
        assert_eq!(r("/usr/lib/xen/scripts/vif-bridge"), Some(Script::Bridge));
        assert_eq!(r("/etc/xen/scripts/vif-route"), Some(Script::Routed));
        assert_eq!(r("/etc/xen/scripts/vif-nat"), Some(Script::Routed));
        assert_eq!(r("/etc/xen/scripts/block-iscsi"), None);
        assert_eq!(r("/tmp/fail.sh"), None);
    }

    #[test]
    fn modes_as_the_block_script_reads_them() {
        for (m, c) in [
            ("r", 'r'),
            ("ro", 'r'),
            ("w", 'w'),
            ("rw", 'w'),
            ("w!", '!'),
            ("", 'r'),
        ] {
            assert_eq!(canonical_mode(m), c, "{m}");
        }
        assert_eq!(major_minor(7, 10), "7:a");
        assert_eq!(major_minor(259, 0), "103:0");
    }
}
