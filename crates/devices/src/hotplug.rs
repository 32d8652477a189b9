//! Hotplug scripts, run as libxl runs them.
//!
//! Command line and environment: `libxl__hotplug_disk`, `libxl__hotplug_nic` and
//! `get_hotplug_env` (Xen 4.17, tools/libs/light/libxl_linux.c). Running: `device_hotplug`
//! (libxl_device.c) and `libxl__async_exec_start` / `async_exec_timeout`
//! (libxl_aoutils.c): stdin from /dev/null, the environment set on top of the caller's,
//! `LIBXL_HOTPLUG_TIMEOUT` (40 s) and then SIGKILL.
//!
//! Differences from libxl, on purpose: the script's stdout and stderr go to a log file
//! the caller names (libxl sends stdout to its own stderr and leaves stderr alone); the
//! script runs in a process group of its own and the kill at the timeout goes to the
//! whole group, so a hung `losetup` or `ip` it started does not outlive it.

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::Serialize;
use xen_host::DomId;

use crate::nodes::DeviceNodes;
use crate::DeviceKind;

/// How long a hotplug script may run before it is killed (`LIBXL_HOTPLUG_TIMEOUT`).
pub const HOTPLUG_TIMEOUT: Duration = Duration::from_secs(40);
/// How long the toolstack waits for a new backend to reach InitWait (2) before it runs
/// the script (`LIBXL_INIT_TIMEOUT`, used by `libxl__wait_device_connection`).
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a teardown waits for the backend to reach Closed (6)
/// (`LIBXL_DESTROY_TIMEOUT`, used by `libxl__initiate_device_generic_remove`).
pub const DESTROY_TIMEOUT: Duration = Duration::from_secs(10);

/// Setting a device up or taking it down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Set up (after the backend reached InitWait).
    Add,
    /// Take down (after the backend reached Closed, before its nodes are removed).
    Remove,
}

impl Action {
    /// The word a block script gets (`libxl__device_action_to_string`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Add => "add",
            Action::Remove => "remove",
        }
    }
}

/// One script invocation: the program, its arguments after the program name, and the
/// variables set on top of the caller's environment, in libxl's order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HotplugCommand {
    /// The device class.
    pub kind: DeviceKind,
    /// The script, an absolute path (the backend's `script` node).
    pub script: PathBuf,
    /// The arguments.
    pub args: Vec<String>,
    /// The variables set for it.
    pub env: Vec<(String, String)>,
}

impl HotplugCommand {
    /// The value of the variable `name`.
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for HotplugCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.script.display())?;
        for a in &self.args {
            write!(f, " {a}")?;
        }
        Ok(())
    }
}

/// The name netback gives a vif's interface (`vif%u.%d`, `NETBACK_NIC_NAME`).
pub fn vif_netdev(domid: DomId, devid: u32) -> String {
    format!("vif{}.{devid}", domid.0)
}

/// The tap QEMU makes for a vif's emulated NIC (`vif%u.%d-emu`,
/// `libxl__device_nic_devname` with `LIBXL_NIC_TYPE_VIF_IOEMU`).
pub fn vif_tap(domid: DomId, devid: u32) -> String {
    format!("{}-emu", vif_netdev(domid, devid))
}

fn base_env(kind: DeviceKind, script: &str, domid: DomId, devid: u32) -> Vec<(String, String)> {
    let t = kind.as_str();
    vec![
        ("script".into(), script.into()),
        ("XENBUS_TYPE".into(), t.into()),
        (
            "XENBUS_PATH".into(),
            format!("backend/{t}/{}/{devid}", domid.0),
        ),
        ("XENBUS_BASE_PATH".into(), "backend".into()),
    ]
}

/// A block device's script: `SCRIPT add|remove`.
pub fn vbd_command(script: &str, domid: DomId, devid: u32, action: Action) -> HotplugCommand {
    HotplugCommand {
        kind: DeviceKind::Vbd,
        script: script.into(),
        args: vec![action.as_str().into()],
        env: base_env(DeviceKind::Vbd, script, domid, devid),
    }
}

/// A vif's script: `SCRIPT online|offline type_if=vif`, with `netdev` (the
/// `gatewaydev`, or empty) and `vif` (the interface netback made).
pub fn vif_command(
    script: &str,
    domid: DomId,
    devid: u32,
    gatewaydev: Option<&str>,
    action: Action,
) -> HotplugCommand {
    let mut env = base_env(DeviceKind::Vif, script, domid, devid);
    env.push(("netdev".into(), gatewaydev.unwrap_or("").into()));
    env.push(("vif".into(), vif_netdev(domid, devid)));
    let word = match action {
        Action::Add => "online",
        Action::Remove => "offline",
    };
    HotplugCommand {
        kind: DeviceKind::Vif,
        script: script.into(),
        args: vec![word.into(), "type_if=vif".into()],
        env,
    }
}

/// The second command of a vif that is also an emulated NIC (libxl's second run of the
/// vif's script, `num_exec` 1): `SCRIPT add|remove type_if=tap`, with `netdev`,
/// `INTERFACE` (the tap, [`vif_tap`]) and `vif`, run once QEMU has made the tap. `None`
/// for a PV-only vif (backend `type` other than `vif_ioemu`) or one without a script.
pub fn tap_command(nodes: &DeviceNodes, action: Action) -> Option<HotplugCommand> {
    if nodes.kind != DeviceKind::Vif
        || nodes.value(&format!("{}/type", nodes.backend)) != Some(crate::nodes::VIF_IOEMU)
    {
        return None;
    }
    let script = nodes.value(&format!("{}/script", nodes.backend))?;
    let gatewaydev = nodes.value(&format!("{}/gatewaydev", nodes.backend));
    let mut env = base_env(DeviceKind::Vif, script, nodes.domid, nodes.devid);
    env.push(("netdev".into(), gatewaydev.unwrap_or("").into()));
    env.push(("INTERFACE".into(), vif_tap(nodes.domid, nodes.devid)));
    env.push(("vif".into(), vif_netdev(nodes.domid, nodes.devid)));
    Some(HotplugCommand {
        kind: DeviceKind::Vif,
        script: script.into(),
        args: vec![action.as_str().into(), "type_if=tap".into()],
        env,
    })
}

/// The command for a device from its node set (its backend's `script` and
/// `gatewaydev`, as libxl reads them back from xenstore); `None` if it has no script.
pub fn command_for(nodes: &DeviceNodes, action: Action) -> Option<HotplugCommand> {
    let script = nodes.value(&format!("{}/script", nodes.backend))?;
    Some(match nodes.kind {
        DeviceKind::Vbd => vbd_command(script, nodes.domid, nodes.devid, action),
        DeviceKind::Vif => vif_command(
            script,
            nodes.domid,
            nodes.devid,
            nodes.value(&format!("{}/gatewaydev", nodes.backend)),
            action,
        ),
    })
}

/// How a script run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HotplugRun {
    /// The command that ran.
    pub command: HotplugCommand,
    /// Its exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// Whether it was still running at the timeout and was killed for it.
    pub timed_out: bool,
    /// Where its output went.
    pub log: PathBuf,
    /// How long it ran.
    pub elapsed: Duration,
}

impl HotplugRun {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// `Ok` on success; otherwise an error naming `device`, the script, how it ended,
    /// the `hotplug-error` text the script left in the backend (if the caller read one)
    /// and the log.
    pub fn check(&self, device: &str, hotplug_error: Option<&str>) -> Result<(), HotplugError> {
        if self.success() {
            return Ok(());
        }
        Err(HotplugError::Failed {
            device: device.to_owned(),
            command: self.command.to_string(),
            ended: self.ended(),
            hotplug_error: hotplug_error.map(str::to_owned),
            log: self.log.clone(),
        })
    }

    /// How it ended, in words.
    pub fn ended(&self) -> String {
        match (self.exit_code, self.signal) {
            _ if self.timed_out => format!(
                "still running after {} ms and killed",
                self.elapsed.as_millis()
            ),
            (Some(c), _) => format!("exited with status {c}"),
            (None, Some(s)) => format!("killed by signal {s}"),
            (None, None) => "ended without a status".to_owned(),
        }
    }
}

/// A script that could not be run, or that failed.
#[derive(Debug, thiserror::Error)]
pub enum HotplugError {
    /// The log file could not be opened.
    #[error("hotplug log {}: {source}", log.display())]
    Log {
        /// The log.
        log: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The script could not be started.
    #[error("hotplug script {}: cannot run it: {source}", script.display())]
    Spawn {
        /// The script.
        script: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The script ran and failed.
    #[error(
        "{device}: hotplug script `{command}` {ended}{}; its output is in {}",
        hotplug_error.as_deref().map(|e| format!(" (hotplug-error: {e})")).unwrap_or_default(),
        log.display()
    )]
    Failed {
        /// The device.
        device: String,
        /// The command line.
        command: String,
        /// How it ended.
        ended: String,
        /// What the script wrote to the backend's `hotplug-error`.
        hotplug_error: Option<String>,
        /// Its log.
        log: PathBuf,
    },
}

/// What carries out a device's hotplug command once its backend is in InitWait (add) or
/// Closed (remove): Xen's scripts ([`Scripts`]), rxl's native path, or the simulated host.
/// An implementation must leave the backend's nodes as the script would (for an add:
/// `physical-device`, `physical-device-path`, `node` for a loop device,
/// `hotplug-status=connected`; on failure `hotplug-error` and `hotplug-status=error`), and
/// report how the command ended as a [`HotplugRun`].
pub trait Hotplug: Send + Sync {
    /// Carry out `cmd`, appending what it says to `log`, giving up after `timeout`.
    fn run(
        &self,
        cmd: &HotplugCommand,
        log: &Path,
        timeout: Duration,
    ) -> Result<HotplugRun, HotplugError>;

    /// How this runner is named in messages and in `rxl create -n` (`scripts`, `native`,
    /// `simulated`).
    fn name(&self) -> &'static str;
}

/// Xen's hotplug scripts, run as libxl runs them ([`run`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Scripts;

impl Hotplug for Scripts {
    fn run(
        &self,
        cmd: &HotplugCommand,
        log: &Path,
        timeout: Duration,
    ) -> Result<HotplugRun, HotplugError> {
        run(cmd, log, timeout)
    }

    fn name(&self) -> &'static str {
        "scripts"
    }
}

/// Open a hotplug log to append to: created with mode 0640, never through a symbolic
/// link planted at its path. Every [`Hotplug`] runner writes its log through this.
pub fn open_log(log: &Path) -> Result<std::fs::File, HotplugError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(log)
        .map_err(|source| HotplugError::Log {
            log: log.to_owned(),
            source,
        })
}

/// Run `cmd` with stdin from /dev/null and stdout and stderr appended to `log` (created
/// if missing), killing it (and its process group) with SIGKILL if it runs longer than
/// `timeout`. No shell is involved: the script is executed directly. A script that runs
/// and fails is an `Ok` [`HotplugRun`]; [`HotplugRun::check`] turns it into an error.
pub fn run(
    cmd: &HotplugCommand,
    log: &Path,
    timeout: Duration,
) -> Result<HotplugRun, HotplugError> {
    let log_err = |source| HotplugError::Log {
        log: log.to_owned(),
        source,
    };
    let mut out = open_log(log)?;
    writeln!(out, "rxl: {} ({})", cmd, env_summary(cmd)).map_err(log_err)?;
    let err = out.try_clone().map_err(log_err)?;
    let start = Instant::now();
    let mut child = Command::new(&cmd.script)
        .args(&cmd.args)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|source| HotplugError::Spawn {
            script: cmd.script.clone(),
            source,
        })?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // The receiver outlives the sender unless the caller panicked.
        let _ = tx.send(child.wait());
    });
    let mut timed_out = false;
    let status = match rx.recv_timeout(timeout) {
        Ok(s) => s,
        Err(_) => {
            timed_out = true;
            if let Ok(pgid) = i32::try_from(pid) {
                // ESRCH: it ended in the meantime; nothing to kill.
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            }
            rx.recv()
                .unwrap_or_else(|_| Err(std::io::Error::other("the hotplug waiter thread is gone")))
        }
    };
    let elapsed = start.elapsed();
    let status = status.map_err(|source| HotplugError::Spawn {
        script: cmd.script.clone(),
        source,
    })?;
    Ok(HotplugRun {
        command: cmd.clone(),
        exit_code: status.code(),
        signal: status.signal(),
        timed_out,
        log: log.to_owned(),
        elapsed,
    })
}

fn env_summary(cmd: &HotplugCommand) -> String {
    cmd.env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) -> String {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}")).expect("write script");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        p.to_string_lossy().into_owned()
    }

    /// `run`, retrying while another test thread's fork briefly holds the new script
    /// open for writing (ETXTBSY).
    fn run_retrying(cmd: &HotplugCommand, log: &Path, timeout: Duration) -> HotplugRun {
        for _ in 0..50 {
            match run(cmd, log, timeout) {
                Err(HotplugError::Spawn { source, .. })
                    if source.raw_os_error() == Some(nix::libc::ETXTBSY) =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                r => return r.expect("script ran"),
            }
        }
        panic!("script stayed busy");
    }

    #[test]
    fn block_command_as_libxl_builds_it() {
        let c = vbd_command("/etc/xen/scripts/block", DomId(7), 51712, Action::Add);
        assert_eq!(c.to_string(), "/etc/xen/scripts/block add");
        assert_eq!(
            c.env,
            [
                ("script", "/etc/xen/scripts/block"),
                ("XENBUS_TYPE", "vbd"),
                ("XENBUS_PATH", "backend/vbd/7/51712"),
                ("XENBUS_BASE_PATH", "backend"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        let c = vbd_command("/etc/xen/scripts/block", DomId(7), 51712, Action::Remove);
        assert_eq!(c.args, ["remove"]);
    }

    #[test]
    fn vif_command_as_libxl_builds_it() {
        let c = vif_command(
            "/etc/xen/scripts/vif-bridge",
            DomId(7),
            1,
            None,
            Action::Add,
        );
        assert_eq!(
            c.to_string(),
            "/etc/xen/scripts/vif-bridge online type_if=vif"
        );
        assert_eq!(c.env_var("XENBUS_PATH"), Some("backend/vif/7/1"));
        assert_eq!(c.env_var("XENBUS_TYPE"), Some("vif"));
        assert_eq!(c.env_var("netdev"), Some(""));
        assert_eq!(c.env_var("vif"), Some("vif7.1"));
        let c = vif_command("/s/vif-route", DomId(7), 1, Some("eth1"), Action::Remove);
        assert_eq!(c.args, ["offline", "type_if=vif"]);
        assert_eq!(c.env_var("netdev"), Some("eth1"));
    }

    #[test]
    fn command_from_the_node_set() {
        use crate::assign::{xen_mac, VifDevice};
        let cfg = crate::test_config(
            "name = \"g\"\ntype = \"pvh\"\nkernel = \"/k\"\nvif = [ \"gatewaydev=eth3\" ]\n",
        );
        let vif = VifDevice {
            spec: cfg.vifs[0].clone(),
            devid: 0,
            mac: xen_mac([1, 2, 3]),
            backend: DomId::DOM0,
        };
        let guest = crate::Guest {
            domid: DomId(4),
            domain_type: xlcfg::DomainType::Pvh,
        };
        let nodes = crate::vif_nodes(&guest, &vif, Path::new("/etc/xen/scripts")).expect("nodes");
        let c = command_for(&nodes, Action::Add).expect("has a script");
        assert_eq!(c.script, Path::new("/etc/xen/scripts/vif-bridge"));
        assert_eq!(c.env_var("netdev"), Some("eth3"));
        assert_eq!(c.env_var("vif"), Some("vif4.0"));
    }

    #[test]
    fn tap_command_as_libxl_builds_it() {
        use crate::assign::{xen_mac, VifDevice};
        let nodes = |ty: &str, line: &str| {
            let cfg = crate::test_config(&format!(
                "name = \"g\"\ntype = \"{ty}\"\nkernel = \"/k\"\nvif = [ \"{line}\" ]\n"
            ));
            let vif = VifDevice {
                spec: cfg.vifs[0].clone(),
                devid: 2,
                mac: xen_mac([1, 2, 3]),
                backend: DomId::DOM0,
            };
            let guest = crate::Guest {
                domid: DomId(9),
                domain_type: cfg.domain_type,
            };
            crate::vif_nodes(&guest, &vif, Path::new("/etc/xen/scripts")).expect("nodes")
        };
        let n = nodes("hvm", "bridge=xenbr0");
        let c = tap_command(&n, Action::Add).expect("an emulated NIC has a tap");
        assert_eq!(c.to_string(), "/etc/xen/scripts/vif-bridge add type_if=tap");
        assert_eq!(
            c.env,
            [
                ("script", "/etc/xen/scripts/vif-bridge"),
                ("XENBUS_TYPE", "vif"),
                ("XENBUS_PATH", "backend/vif/9/2"),
                ("XENBUS_BASE_PATH", "backend"),
                ("netdev", ""),
                ("INTERFACE", "vif9.2-emu"),
                ("vif", "vif9.2"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        let c = tap_command(&n, Action::Remove).expect("tap");
        assert_eq!(c.args, ["remove", "type_if=tap"]);
        // The netback side keeps its own command.
        let c = command_for(&n, Action::Add).expect("vif");
        assert_eq!(c.args, ["online", "type_if=vif"]);
        // No tap for a PV-only vif, of an HVM guest or not.
        assert_eq!(tap_command(&nodes("hvm", "type=vif"), Action::Add), None);
        assert_eq!(
            tap_command(&nodes("pvh", "bridge=xenbr0"), Action::Add),
            None
        );
        assert_eq!(vif_tap(DomId(3), 0), "vif3.0-emu");
    }

    #[test]
    fn success_with_arguments_environment_and_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = script(
            dir.path(),
            "block",
            "echo \"args=$*\"\necho \"script=$script type=$XENBUS_TYPE path=$XENBUS_PATH base=$XENBUS_BASE_PATH\"\n\
             echo to-stderr >&2\nread x && echo \"stdin gave $x\"\nexit 0\n",
        );
        let log = dir.path().join("hotplug.log");
        let cmd = vbd_command(&s, DomId(9), 51712, Action::Add);
        let r = run_retrying(&cmd, &log, Duration::from_secs(10));
        assert!(r.success(), "{r:?}");
        assert_eq!((r.exit_code, r.signal, r.timed_out), (Some(0), None, false));
        r.check("disk xvda", None).expect("ok");
        let text = std::fs::read_to_string(&log).expect("log");
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines[0], format!("rxl: {s} add (script={s} XENBUS_TYPE=vbd XENBUS_PATH=backend/vbd/9/51712 XENBUS_BASE_PATH=backend)"));
        assert_eq!(lines[1], "args=add");
        assert_eq!(
            lines[2],
            format!("script={s} type=vbd path=backend/vbd/9/51712 base=backend")
        );
        assert_eq!(lines[3], "to-stderr");
        // stdin is /dev/null: `read` fails, nothing more is printed.
        assert_eq!(lines.len(), 4, "{text}");
    }

    #[test]
    fn vif_environment_reaches_the_script() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = script(
            dir.path(),
            "vif-bridge",
            "echo \"$1 $2 vif=$vif netdev=[$netdev] inherited=$RXL_TEST_INHERITED\"\n",
        );
        let log = dir.path().join("log");
        let mut cmd = vif_command(&s, DomId(3), 2, None, Action::Remove);
        // The caller's environment is inherited; set one variable through the command
        // so as not to change this process's environment.
        cmd.env.push(("RXL_TEST_INHERITED".into(), "yes".into()));
        let r = run_retrying(&cmd, &log, Duration::from_secs(10));
        assert!(r.success());
        let text = std::fs::read_to_string(&log).expect("log");
        assert_eq!(
            text.lines().nth(1),
            Some("offline type_if=vif vif=vif3.2 netdev=[] inherited=yes")
        );
    }

    #[test]
    fn failure_names_device_script_error_and_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = script(dir.path(), "block", "echo losetup failed >&2\nexit 3\n");
        let log = dir.path().join("xen-hotplug.log");
        let r = run_retrying(
            &vbd_command(&s, DomId(2), 51712, Action::Add),
            &log,
            Duration::from_secs(10),
        );
        assert_eq!((r.exit_code, r.timed_out), (Some(3), false));
        let e = r
            .check(
                "disk xvda (line 4:10)",
                Some("File /x.img is loopback-mounted"),
            )
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "disk xvda (line 4:10): hotplug script `{s} add` exited with status 3 \
                 (hotplug-error: File /x.img is loopback-mounted); its output is in {}",
                log.display()
            )
        );
        assert!(std::fs::read_to_string(&log)
            .expect("log")
            .contains("losetup failed"));
    }

    #[test]
    fn a_hung_script_is_killed_at_the_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The shell's child sleeps too: the kill must reach the whole group.
        let marker = dir.path().join("survived");
        let s = script(
            dir.path(),
            "vif-bridge",
            &format!("(sleep 2; touch {}) &\nexec sleep 30\n", marker.display()),
        );
        let log = dir.path().join("log");
        let t0 = Instant::now();
        let r = run_retrying(
            &vif_command(&s, DomId(2), 0, None, Action::Add),
            &log,
            Duration::from_millis(200),
        );
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        assert!(r.timed_out);
        assert_eq!(r.exit_code, None);
        assert_eq!(r.signal, Some(nix::libc::SIGKILL));
        assert!(!r.success());
        let e = r.check("vif 0 (00:16:3e:00:00:01)", None).unwrap_err();
        assert!(
            e.to_string().contains("still running after") && e.to_string().contains("and killed"),
            "{e}"
        );
        std::thread::sleep(Duration::from_millis(2500));
        assert!(
            !marker.exists(),
            "the script's background child outlived the kill"
        );
    }

    #[test]
    fn a_missing_script_or_log_dir_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cmd = vbd_command("/nonexistent/block", DomId(1), 51712, Action::Add);
        let e = run(&cmd, &dir.path().join("log"), HOTPLUG_TIMEOUT).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("hotplug script /nonexistent/block: cannot run it"),
            "{e}"
        );
        let e = run(&cmd, &dir.path().join("no/such/log"), HOTPLUG_TIMEOUT).unwrap_err();
        assert!(e.to_string().starts_with("hotplug log "), "{e}");
    }

    #[test]
    fn libxl_timeouts() {
        assert_eq!(HOTPLUG_TIMEOUT, Duration::from_secs(40));
        assert_eq!(INIT_TIMEOUT, Duration::from_secs(10));
        assert_eq!(DESTROY_TIMEOUT, Duration::from_secs(10));
    }
}
