//! rxl's native hotplug path: what Xen's `block` and `vif-bridge` scripts do, done in
//! process, with no shell, `losetup` or `ip`.
//!
//! [`Native`] implements [`devices::hotplug::Hotplug`]. It carries out natively:
//!
//! * `block add` / `block remove` (a script file named `block`): a block device is
//!   checked and recorded; a regular file gets a loop device through /dev/loop-control and
//!   `LOOP_CONFIGURE` (read-only for mode `r`, autoclear), detached again on remove after
//!   checking that it is backed by the disk's file ([`vbd`]);
//! * `vif-bridge online` / `offline` (`type_if=vif`): the vif becomes a port of its
//!   bridge through rtnetlink, and leaves it again ([`vif`]).
//!
//! Everything else (other scripts, `ip=` or `gatewaydev=` on a vif, a vif with no
//! bridge named, `vif-post.d` hooks) goes to the fallback runner unchanged. Both write
//! the backend nodes the scripts write (`physical-device`, `physical-device-path`,
//! `node`, `hotplug-status`, and on failure `hotplug-error`), so the toolstack cannot tell
//! which one ran. docs/devices.md, "The native path", says what is checked and why.

#![forbid(unsafe_code)]

pub mod lock;
pub mod rtnl;
pub mod sharing;
pub mod vbd;
pub mod vif;

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use devices::hotplug::{Action, Hotplug, HotplugCommand, HotplugError, HotplugRun};
use devices::DeviceKind;
use xen_host::{Store, TxId};

/// Where blkback's devices show up in sysfs (`vbd-DOMID-DEVID`, each with a
/// `physical_device` file once blkback holds the device open).
pub const BACKEND_SYSFS: &str = "/sys/bus/xen-backend/devices";

/// What [`Native`] does with a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// The `block` script's `add` or `remove`, natively.
    Block(Action),
    /// `vif-bridge online` or `offline`, natively (subject to the backend's nodes:
    /// see [`Native::vif_needs_script`]).
    Vif(Action),
    /// The fallback runner, for the reason given.
    Fallback(String),
}

/// Which path `cmd` takes, from the command alone: the script's file name, its
/// arguments and its environment must be exactly what libxl gives Xen's default scripts.
pub fn route(cmd: &HotplugCommand) -> Route {
    let name = cmd
        .script
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let args: Vec<&str> = cmd.args.iter().map(String::as_str).collect();
    match cmd.kind {
        DeviceKind::Vbd => {
            if name != "block" {
                return Route::Fallback(format!("the script `{name}` is not `block`"));
            }
            match args.as_slice() {
                ["add"] => Route::Block(Action::Add),
                ["remove"] => Route::Block(Action::Remove),
                _ => Route::Fallback(format!("`block {}` is not add or remove", args.join(" "))),
            }
        }
        DeviceKind::Vif => {
            if name != "vif-bridge" {
                return Route::Fallback(format!("the script `{name}` is not `vif-bridge`"));
            }
            if cmd.env_var("netdev").is_some_and(|v| !v.is_empty()) {
                return Route::Fallback("the vif names a gatewaydev".into());
            }
            if cmd.env_var("vif").is_none_or(str::is_empty) {
                return Route::Fallback("no `vif` interface name in the environment".into());
            }
            match args.as_slice() {
                ["online", "type_if=vif"] => Route::Vif(Action::Add),
                ["offline", "type_if=vif"] => Route::Vif(Action::Remove),
                _ => Route::Fallback(format!(
                    "`vif-bridge {}` is not online or offline of a vif",
                    args.join(" ")
                )),
            }
        }
    }
}

/// The native runner. Build it with [`Native::new`]; the `with_*` methods move what it
/// touches on the host (for tests).
pub struct Native {
    store: Arc<dyn Store + Send + Sync>,
    fallback: Box<dyn Hotplug>,
    lock_dir: PathBuf,
    backend_sysfs: PathBuf,
    mountinfo: PathBuf,
}

impl fmt::Debug for Native {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Native")
            .field("fallback", &self.fallback.name())
            .field("lock_dir", &self.lock_dir)
            .field("backend_sysfs", &self.backend_sysfs)
            .field("mountinfo", &self.mountinfo)
            .finish_non_exhaustive()
    }
}

impl Native {
    /// A native runner over the xenstore `store` (dom0's), handing what it does not do
    /// natively to `fallback` (normally [`devices::hotplug::Scripts`]).
    pub fn new(store: Arc<dyn Store + Send + Sync>, fallback: impl Hotplug + 'static) -> Native {
        Native {
            store,
            fallback: Box::new(fallback),
            lock_dir: PathBuf::from(lock::LOCK_DIR),
            backend_sysfs: PathBuf::from(BACKEND_SYSFS),
            mountinfo: PathBuf::from("/proc/self/mountinfo"),
        }
    }

    /// Keep the hotplug locks in `dir` instead of /var/run/xen-hotplug.
    pub fn with_lock_dir(mut self, dir: impl Into<PathBuf>) -> Native {
        self.lock_dir = dir.into();
        self
    }

    /// Look for blkback's devices in `dir` instead of /sys/bus/xen-backend/devices.
    pub fn with_backend_sysfs(mut self, dir: impl Into<PathBuf>) -> Native {
        self.backend_sysfs = dir.into();
        self
    }

    /// Read dom0's mounts from `file` instead of /proc/self/mountinfo.
    pub fn with_mountinfo(mut self, file: impl Into<PathBuf>) -> Native {
        self.mountinfo = file.into();
        self
    }

    /// Why a `vif-bridge` command (online or offline) must still go to the script, from
    /// what the backend
    /// holds and what the script directory has: an `ip` node (the script adds iptables
    /// rules for those addresses), no `bridge` node (the script then picks the host's
    /// first bridge), or executable hooks in `vif-post.d` next to the script (the script
    /// runs them). `None`: native.
    pub fn vif_needs_script(&self, cmd: &HotplugCommand) -> Option<String> {
        let path = cmd.env_var("XENBUS_PATH").unwrap_or("");
        let read = |key: &str| {
            xen_host::read_string(&*self.store, TxId::NONE, &format!("{path}/{key}"))
                .ok()
                .flatten()
                .filter(|v| !v.is_empty())
        };
        if read("ip").is_some() {
            return Some("the vif has ip= (the script adds iptables rules for it)".into());
        }
        if read("bridge").is_none() {
            return Some("the vif names no bridge (the script picks one)".into());
        }
        let hooks = cmd
            .script
            .parent()
            .unwrap_or(Path::new("/"))
            .join("vif-post.d");
        if has_hooks(&hooks) {
            return Some(format!("{} has hooks to run", hooks.display()));
        }
        None
    }
}

/// Whether `dir` holds an executable `*.hook` (what the scripts' `call_hooks` runs).
fn has_hooks(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        e.file_name().to_string_lossy().ends_with(".hook")
            && e.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// How a native operation failed, as the scripts report it: `Fatal` writes
/// `hotplug-status=error` (the scripts' `fatal`), `Busy` writes `hotplug-status=busy`
/// (the block script's `ebusy`, for a disk it will not share). Both write the message to
/// `hotplug-error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Something failed.
    Fatal(String),
    /// The disk is in use in a way that forbids this use.
    Busy(String),
}

impl Failure {
    fn message(&self) -> &str {
        match self {
            Failure::Fatal(m) | Failure::Busy(m) => m,
        }
    }

    fn status(&self) -> &'static str {
        match self {
            Failure::Fatal(_) => "error",
            Failure::Busy(_) => "busy",
        }
    }
}

/// One native operation on one backend: the store, the backend's path (XENBUS_PATH,
/// relative to dom0's home as the scripts use it), what it noted for the log, and when
/// it must give up.
pub(crate) struct Job<'a> {
    store: &'a dyn Store,
    path: String,
    notes: Vec<String>,
    deadline: Instant,
}

impl Job<'_> {
    pub(crate) fn note(&mut self, line: impl Into<String>) {
        self.notes.push(line.into());
    }

    /// Read `key` of the backend; `None` when absent.
    pub(crate) fn read(&self, key: &str) -> Result<Option<String>, Failure> {
        self.read_abs(&format!("{}/{key}", self.path))
    }

    /// Read `key` of the backend, failing as the scripts' `xenstore_read` does when it is
    /// absent or empty.
    pub(crate) fn read_required(&self, key: &str) -> Result<String, Failure> {
        match self.read(key)? {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(Failure::Fatal(format!(
                "xenstore-read {}/{key} failed.",
                self.path
            ))),
        }
    }

    /// Read any node; `None` when absent.
    pub(crate) fn read_abs(&self, path: &str) -> Result<Option<String>, Failure> {
        xen_host::read_string(self.store, TxId::NONE, path)
            .map_err(|e| Failure::Fatal(format!("xenstore-read {path} failed: {e}")))
    }

    /// Write backend nodes (`key`, value) in one transaction.
    pub(crate) fn write(&self, nodes: &[(&str, &str)]) -> Result<(), Failure> {
        let abs: Vec<(String, &str)> = nodes
            .iter()
            .map(|(k, v)| (format!("{}/{k}", self.path), *v))
            .collect();
        self.write_abs(&abs)
    }

    /// Write nodes (path, value) in one transaction.
    pub(crate) fn write_abs(&self, nodes: &[(String, &str)]) -> Result<(), Failure> {
        xen_host::transaction(self.store, |tx| {
            for (p, v) in nodes {
                self.store.write(tx, p, v.as_bytes())?;
            }
            Ok(())
        })
        .map_err(|e| {
            let keys: Vec<&str> = nodes.iter().map(|(p, _)| p.as_str()).collect();
            Failure::Fatal(format!(
                "writing {} to xenstore failed: {e}",
                keys.join(", ")
            ))
        })
    }

    /// The frontend domain and devid of the backend.
    pub(crate) fn domid_devid(&self) -> Result<(u32, u32), Failure> {
        backend_ids(&self.path).ok_or_else(|| {
            Failure::Fatal(format!(
                "XENBUS_PATH `{}` is not backend/KIND/DOMID/DEVID",
                self.path
            ))
        })
    }
}

/// The frontend domain and devid from a backend path `.../DOMID/DEVID`.
fn backend_ids(path: &str) -> Option<(u32, u32)> {
    let mut it = path.rsplit('/');
    let devid = it.next()?.parse().ok()?;
    let domid = it.next()?.parse().ok()?;
    it.next()?;
    Some((domid, devid))
}

fn env_summary(cmd: &HotplugCommand) -> String {
    cmd.env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Append `lines` to the log `log` (created mode 0640, never through a symbolic link).
fn append_log(log: &Path, lines: &[String]) -> Result<(), HotplugError> {
    let err = |source| HotplugError::Log {
        log: log.to_owned(),
        source,
    };
    let mut out = devices::hotplug::open_log(log)?;
    let mut text = String::new();
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    out.write_all(text.as_bytes()).map_err(err)
}

impl Hotplug for Native {
    fn run(
        &self,
        cmd: &HotplugCommand,
        log: &Path,
        timeout: Duration,
    ) -> Result<HotplugRun, HotplugError> {
        let start = Instant::now();
        let mut route = route(cmd);
        // Both directions: what the script set up (iptables rules, hooks) only the
        // script takes down.
        if matches!(route, Route::Vif(_)) {
            if let Some(why) = self.vif_needs_script(cmd) {
                route = Route::Fallback(why);
            }
        }
        type Op = fn(&Native, &mut Job<'_>, &HotplugCommand) -> Result<(), Failure>;
        let op: Op = match route {
            Route::Block(Action::Add) => vbd::add,
            Route::Block(Action::Remove) => vbd::remove,
            Route::Vif(Action::Add) => vif::online,
            Route::Vif(Action::Remove) => vif::offline,
            Route::Fallback(why) => {
                append_log(
                    log,
                    &[format!("rxl native: `{cmd}` goes to the scripts: {why}")],
                )?;
                return self.fallback.run(cmd, log, timeout);
            }
        };
        append_log(log, &[format!("rxl native: {cmd} ({})", env_summary(cmd))])?;
        let mut job = Job {
            store: &*self.store,
            path: cmd.env_var("XENBUS_PATH").unwrap_or("").to_owned(),
            notes: Vec::new(),
            deadline: start + timeout,
        };
        let result = if job.path.is_empty() {
            Err(Failure::Fatal("no XENBUS_PATH in the environment".into()))
        } else {
            op(self, &mut job, cmd)
        };
        let exit_code = match result {
            Ok(()) => 0,
            Err(f) => {
                job.note(format!("failed: {}", f.message()));
                if let Err(e) = job.write(&[
                    ("hotplug-error", f.message()),
                    ("hotplug-status", f.status()),
                ]) {
                    job.note(e.message().to_owned());
                }
                1
            }
        };
        let lines: Vec<String> = job.notes.iter().map(|n| format!("  {n}")).collect();
        append_log(log, &lines)?;
        Ok(HotplugRun {
            command: cmd.clone(),
            exit_code: Some(exit_code),
            signal: None,
            timed_out: false,
            log: log.to_owned(),
            elapsed: start.elapsed(),
        })
    }

    fn name(&self) -> &'static str {
        "native"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devices::hotplug::{vbd_command, vif_command};
    use xen_host::DomId;

    #[test]
    fn which_commands_are_native() {
        let add = vbd_command("/etc/xen/scripts/block", DomId(3), 51712, Action::Add);
        assert_eq!(route(&add), Route::Block(Action::Add));
        let rm = vbd_command(
            "/usr/lib/xen/scripts/block",
            DomId(3),
            51712,
            Action::Remove,
        );
        assert_eq!(route(&rm), Route::Block(Action::Remove));
        let iscsi = vbd_command("/etc/xen/scripts/block-iscsi", DomId(3), 51712, Action::Add);
        assert_eq!(
            route(&iscsi),
            Route::Fallback("the script `block-iscsi` is not `block`".into())
        );
        let mut odd = add.clone();
        odd.args = vec!["add".into(), "extra".into()];
        assert!(matches!(route(&odd), Route::Fallback(_)));

        let on = vif_command(
            "/etc/xen/scripts/vif-bridge",
            DomId(3),
            0,
            None,
            Action::Add,
        );
        assert_eq!(route(&on), Route::Vif(Action::Add));
        let off = vif_command(
            "/etc/xen/scripts/vif-bridge",
            DomId(3),
            0,
            None,
            Action::Remove,
        );
        assert_eq!(route(&off), Route::Vif(Action::Remove));
        let gw = vif_command(
            "/etc/xen/scripts/vif-bridge",
            DomId(3),
            0,
            Some("eth1"),
            Action::Add,
        );
        assert_eq!(
            route(&gw),
            Route::Fallback("the vif names a gatewaydev".into())
        );
        let routed = vif_command("/etc/xen/scripts/vif-route", DomId(3), 0, None, Action::Add);
        assert!(matches!(route(&routed), Route::Fallback(_)));
    }

    #[test]
    fn backend_path_gives_domain_and_devid() {
        assert_eq!(backend_ids("backend/vbd/7/51712"), Some((7, 51712)));
        assert_eq!(backend_ids("backend/vbd/x/1"), None);
        assert_eq!(backend_ids("7/1"), None);
    }
}
