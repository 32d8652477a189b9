//! The device model: the per-guest QEMU process in dom0 that serves a guest's qdisk disks
//! (`-machine xenpv`) and, for HVM guests, emulates its platform (`-machine xenfv`, whose
//! arguments another module builds). Started, confirmed, recorded and stopped here, as
//! libxl 4.17 does in `libxl__spawn_local_dm` and `libxl__destroy_device_model`
//! (libxl_dm.c); docs/device-model.md tells the whole life.
//!
//! * [`launch`] makes `/local/domain/0/device-model/D`, starts the process detached
//!   (stdin /dev/null, stdout and stderr appended to `qemu-dm-NAME.log`, its own process
//!   group, `XEN_QEMU_CONSOLE_LIMIT=1048576`), records its pid in
//!   `/local/domain/D/image/device-model-pid` (libxl's place) and in rxl's own record
//!   (`DmOptions::record_dir`), and waits for `device-model/D/state = running` through a
//!   xenstore watch. A process that exits, or does not confirm within the timeout, fails
//!   the launch: it is stopped and everything it left removed, and the error holds the
//!   command line, the log's path and its last lines.
//! * [`stop`] signals only the process rxl's record names, and only after checking that it
//!   is still that process (same start time) and that its command line is a device model
//!   of that domain (`-xen-domid D`): the pid in xenstore is writable by whoever controls
//!   dom0's xenstore and is never trusted alone. SIGTERM, a bounded wait, SIGKILL; then
//!   the QMP sockets, the xenstore nodes and the record go.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use xen_host::{DomId, Store, TxId};

use crate::process::ProcessId;
use crate::xs_layout::dom_path;

/// Debian's QEMU for Xen (package qemu-system-xen).
pub const DEFAULT_BINARY: &str = "/usr/libexec/xen-qemu-system-i386";
/// How long a device model has to write `state = running` (libxl's
/// `LIBXL_DEVICE_MODEL_START_TIMEOUT`).
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a device model has to exit after SIGTERM before it gets SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// What QEMU's Xen console backend may buffer (libxl sets it for every device model).
pub const CONSOLE_LIMIT: &str = "1048576";
/// How long a device model has to answer QMP `quit`, and then to exit.
const QUIT_TIMEOUT: Duration = Duration::from_secs(2);
/// The lines of the log a failure shows.
const LOG_TAIL_LINES: usize = 20;
/// The bytes of the log a failure reads, at most.
const LOG_TAIL_BYTES: u64 = 16 * 1024;
/// How often a launch looks at the process between xenstore events: a `Store` handle
/// cannot wait on a process, so an exit is seen at the next look.
const EXIT_CHECK: Duration = Duration::from_millis(50);

/// How device models run on this host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmOptions {
    /// The program ([`DEFAULT_BINARY`]; on the simulated host, rxl itself).
    pub binary: PathBuf,
    /// Arguments before the device model's own (the simulated host's `--sim DIR
    /// sim-device-model --`; empty for QEMU).
    pub prefix_args: Vec<String>,
    /// Where `qemu-dm-NAME.log` goes (/var/log/rxl).
    pub log_dir: PathBuf,
    /// Where the QMP sockets are (/var/run/xen, libxl's `libxl__run_dir_path`).
    pub run_dir: PathBuf,
    /// rxl's record of each device model's process, one file per domain id.
    pub record_dir: PathBuf,
    /// How long a device model has to confirm ([`CONFIRM_TIMEOUT`]).
    pub confirm_timeout: Duration,
    /// How long a device model has to exit after SIGTERM ([`STOP_TIMEOUT`]).
    pub stop_timeout: Duration,
}

impl Default for DmOptions {
    /// The real host's: QEMU from Debian, logs in /var/log/rxl, sockets in /var/run/xen,
    /// records in /var/lib/rxl/device-model.
    fn default() -> DmOptions {
        DmOptions {
            binary: PathBuf::from(DEFAULT_BINARY),
            prefix_args: Vec::new(),
            log_dir: PathBuf::from("/var/log/rxl"),
            run_dir: PathBuf::from("/var/run/xen"),
            record_dir: PathBuf::from("/var/lib/rxl/device-model"),
            confirm_timeout: CONFIRM_TIMEOUT,
            stop_timeout: STOP_TIMEOUT,
        }
    }
}

impl DmOptions {
    /// The QMP socket libxl's own commands use (`qmp-libxl-D`).
    pub fn qmp_socket(&self, dom: DomId) -> PathBuf {
        self.run_dir.join(format!("qmp-libxl-{}", dom.0))
    }

    /// The QMP socket libxenstat reads (`qmp-libxenstat-D`).
    pub fn stat_socket(&self, dom: DomId) -> PathBuf {
        self.run_dir.join(format!("qmp-libxenstat-{}", dom.0))
    }

    /// The log of the device model of the domain called `name`: `qemu-dm-NAME.log`, the
    /// name in hex when it is not a plain file name.
    pub fn log_path(&self, name: &str) -> PathBuf {
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b));
        let shown = if plain {
            name.to_owned()
        } else {
            crate::names::file_name(name)
        };
        self.log_dir.join(format!("qemu-dm-{shown}.log"))
    }

    fn record_path(&self, dom: DomId) -> PathBuf {
        self.record_dir.join(dom.0.to_string())
    }

    /// Where [`stop`] moves the record before it signals the process (`D.stopping`), so
    /// that a watcher never takes the exit it causes for a crash.
    fn stopping_path(&self, dom: DomId) -> PathBuf {
        self.record_dir.join(format!("{}.stopping", dom.0))
    }
}

/// One device model to start.
#[derive(Clone, Debug)]
pub struct DmLaunch<'a> {
    /// The guest.
    pub dom: DomId,
    /// Its name (the log's).
    pub name: &'a str,
    /// Arguments after the binary (built by [`xenpv_args`] or by the HVM builder).
    pub args: Vec<String>,
    /// Environment variables beyond `XEN_QEMU_CONSOLE_LIMIT` (an HVM guest's
    /// `XEN_DOMAIN_ID`).
    pub env: Vec<(String, String)>,
}

/// A device model that could not be started or stopped.
#[derive(Debug)]
pub struct DmError {
    /// The guest.
    pub dom: DomId,
    /// What went wrong.
    pub message: String,
    /// The full command line (empty for a stop).
    pub command: String,
    /// Its log.
    pub log: Option<PathBuf>,
    /// The log's last lines (of this run).
    pub log_tail: Vec<String>,
}

impl fmt::Display for DmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "device model of domain {}: {}", self.dom, self.message)?;
        if !self.command.is_empty() {
            write!(f, "\n  command: {}", self.command)?;
        }
        if let Some(log) = &self.log {
            write!(f, "\n  log: {}", log.display())?;
        }
        if self.log_tail.is_empty() {
            if self.log.is_some() {
                write!(f, "\n  (the log has nothing from this run)")?;
            }
        } else {
            write!(f, "\n  last lines of the log:")?;
            for l in &self.log_tail {
                write!(f, "\n    {l}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for DmError {}

impl DmError {
    fn stop(dom: DomId, message: String) -> DmError {
        DmError {
            dom,
            message,
            command: String::new(),
            log: None,
            log_tail: Vec::new(),
        }
    }
}

/// `/local/domain/0/device-model/D`: the device model's own directory.
pub fn xs_dir(dom: DomId) -> String {
    format!("/local/domain/0/device-model/{}", dom.0)
}

/// `/local/domain/D/image/device-model-pid`, where libxl records the pid.
pub fn pid_node(dom: DomId) -> String {
    format!("{}/image/device-model-pid", dom_path(dom))
}

/// The arguments of a `-machine xenpv` device model serving a PV or PVH guest's qdisk
/// disks, as `libxl__build_device_model_args_new` builds them for a PV guest.
pub fn xenpv_args(dom: DomId, name: &str, maxmem_mib: u64, opts: &DmOptions) -> Vec<String> {
    let d = dom.0;
    let mut a: Vec<String> = vec!["-xen-domid".into(), d.to_string(), "-no-shutdown".into()];
    for (id, path) in [
        ("libxl-cmd", opts.qmp_socket(dom)),
        ("libxenstat-cmd", opts.stat_socket(dom)),
    ] {
        a.push("-chardev".into());
        a.push(format!(
            "socket,id={id},path={},server=on,wait=off",
            path.display()
        ));
        a.push("-mon".into());
        a.push(format!("chardev={id},mode=control"));
    }
    for s in [
        "-nodefaults",
        "-no-user-config",
        "-xen-attach",
        "-name",
        name,
        "-vnc",
        "none",
        "-display",
        "none",
        "-machine",
        "xenpv",
        "-m",
    ] {
        a.push(s.into());
    }
    a.push(maxmem_mib.to_string());
    a
}

/// A command line as a shell would read it back (words with blanks or quotes quoted).
fn shown(binary: &Path, args: &[String]) -> String {
    let quote = |w: &str| {
        if !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_=,./:+@%".contains(&b))
        {
            w.to_owned()
        } else {
            format!("'{}'", w.replace('\'', "'\\''"))
        }
    };
    std::iter::once(binary.to_string_lossy().into_owned())
        .chain(args.iter().cloned())
        .map(|w| quote(&w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last lines the log got since `from` (its length before the launch), bounded.
fn log_tail(log: &Path, from: u64) -> Vec<String> {
    let Ok(mut f) = File::open(log) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = from.max(len.saturating_sub(LOG_TAIL_BYTES));
    if len <= start || f.seek(SeekFrom::Start(start)).is_err() {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    if f.take(LOG_TAIL_BYTES).read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.chars().filter(|c| !c.is_control()).take(300).collect())
        .collect();
    let skip = lines.len().saturating_sub(LOG_TAIL_LINES);
    lines.into_iter().skip(skip).collect()
}

/// Start the device model `l` and wait until it confirms; its pid on success. On failure
/// nothing of it is left (process, record, sockets, xenstore nodes).
pub fn launch<S: Store + ?Sized>(
    xs: &S,
    opts: &DmOptions,
    l: &DmLaunch<'_>,
) -> Result<u32, DmError> {
    let dom = l.dom;
    let mut argv = opts.prefix_args.clone();
    argv.extend(l.args.iter().cloned());
    let command = shown(&opts.binary, &argv);
    let log = opts.log_path(l.name);
    let fail = |message: String, from: u64| DmError {
        dom,
        message,
        command: command.clone(),
        log: Some(log.clone()),
        log_tail: log_tail(&log, from),
    };
    let log_file = log
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (file, _) = crate::state::open_log_file(&opts.log_dir, &log_file)
        .map_err(|e| fail(format!("cannot open its log: {e}"), u64::MAX))?;
    let from = file.metadata().map(|m| m.len()).unwrap_or(0);
    let err_file = file
        .try_clone()
        .map_err(|e| fail(format!("cannot open its log: {e}"), u64::MAX))?;
    // What a dead device model of an earlier domain with this id may have left.
    stop(xs, opts, dom).map_err(|e| fail(format!("cannot clear an earlier one: {e}"), from))?;
    // QEMU makes its sockets there; Xen's packages make /var/run/xen.
    std::fs::create_dir_all(&opts.run_dir)
        .map_err(|e| fail(format!("cannot make {}: {e}", opts.run_dir.display()), from))?;
    crate::state::ensure_dir(&opts.record_dir, crate::state::DIR_MODE).map_err(|e| {
        fail(
            format!("cannot make {}: {e}", opts.record_dir.display()),
            from,
        )
    })?;
    let dir = xs_dir(dom);
    let state_path = format!("{dir}/state");
    let token = format!("rxl-dm-{}-{}", dom.0, std::process::id());
    let setup = xs
        .mkdir(TxId::NONE, &dir)
        .and_then(|()| xs.watch(&state_path, &token));
    if let Err(e) = setup {
        let _ = xs.rm(TxId::NONE, &dir);
        return Err(fail(format!("cannot prepare {dir}: {e}"), from));
    }
    let spawned = Command::new(&opts.binary)
        .args(&argv)
        .env("XEN_QEMU_CONSOLE_LIMIT", CONSOLE_LIMIT)
        .envs(l.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err_file)
        .current_dir("/")
        .process_group(0)
        .spawn();
    let result = match spawned {
        Err(e) => Err(format!("cannot start {}: {e}", opts.binary.display())),
        Ok(mut child) => {
            let pid = child.id();
            let waited = record(xs, opts, dom, pid)
                .and_then(|()| confirm(xs, opts, &state_path, &mut child));
            match waited {
                Ok(()) => {
                    tracing::info!("domain {dom}: device model {pid} runs ({command})");
                    // A long-lived caller (the host monitor restarting a guest) reaps it
                    // whenever it exits, so that no zombie outlives it.
                    let reaper = std::thread::Builder::new()
                        .name(format!("dm-reaper-{}", dom.0))
                        .spawn(move || {
                            let _ = child.wait();
                        });
                    if let Err(e) = reaper {
                        tracing::warn!("domain {dom}: cannot watch device model {pid}: {e}");
                    }
                    Ok(pid)
                }
                Err(m) => {
                    // Ours (its handle says so, whatever the record): killed and reaped here.
                    let _ = child.kill();
                    let _ = child.wait();
                    Err(m)
                }
            }
        }
    };
    let _ = xs.unwatch(&state_path, &token);
    result.map_err(|message| {
        if let Err(e) = stop(xs, opts, dom) {
            tracing::error!("{e}");
        }
        fail(message, from)
    })
}

/// Record the device model's process: in xenstore as libxl does, and in rxl's record (the
/// only pid [`stop`] trusts).
fn record<S: Store + ?Sized>(xs: &S, opts: &DmOptions, dom: DomId, pid: u32) -> Result<(), String> {
    let id = ProcessId::of(pid).unwrap_or(ProcessId { pid, start_time: 0 });
    crate::state::write_file(
        &opts.record_dir,
        &dom.0.to_string(),
        format!("{id}\n").as_bytes(),
        crate::state::FILE_MODE,
    )
    .map_err(|e| {
        format!(
            "cannot record its pid in {}: {e}",
            opts.record_dir.display()
        )
    })?;
    xs.write(TxId::NONE, &pid_node(dom), pid.to_string().as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", pid_node(dom)))
}

/// Wait for `state = running`, or the process's exit, or the timeout.
fn confirm<S: Store + ?Sized>(
    xs: &S,
    opts: &DmOptions,
    state_path: &str,
    child: &mut Child,
) -> Result<(), String> {
    let deadline = Instant::now() + opts.confirm_timeout;
    loop {
        let state = xs
            .read(TxId::NONE, state_path)
            .map_err(|e| format!("cannot read {state_path}: {e}"))?;
        if state.as_deref() == Some(b"running") {
            return Ok(());
        }
        match child.try_wait() {
            Ok(Some(status)) => {
                return Err(format!("it exited before it confirmed ({status})"));
            }
            Ok(None) => {}
            Err(e) => return Err(format!("cannot wait for it: {e}")),
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(format!(
                "it did not write {state_path} = running within {} s",
                opts.confirm_timeout.as_secs_f64()
            ));
        }
        xs.next_watch_event(Some(EXIT_CHECK.min(deadline - now)))
            .map_err(|e| format!("cannot wait on {state_path}: {e}"))?;
    }
}

/// Whether `/proc/PID/cmdline` is a device model of `dom`: it holds `-xen-domid D`.
fn is_device_model_of(pid: u32, dom: DomId) -> bool {
    let Ok(bytes) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let words: Vec<&[u8]> = bytes.split(|&b| b == 0).collect();
    let want = dom.0.to_string();
    words
        .windows(2)
        .any(|w| w[0] == b"-xen-domid" && w[1] == want.as_bytes())
}

/// Wait at most `timeout` for `id` to be gone (a zombie counts as gone); reaps it when it
/// is this process's child.
fn wait_gone(id: ProcessId, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let _ = waitpid(Pid::from_raw(id.pid as i32), Some(WaitPidFlag::WNOHANG));
        if !id.is_alive() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Stop the device model of `dom`, if it has one, and remove what it leaves: its QMP
/// sockets, `/local/domain/0/device-model/D`, the pid node and rxl's record (moved to
/// `D.stopping` before any signal, removed last). Idempotent.
pub fn stop<S: Store + ?Sized>(xs: &S, opts: &DmOptions, dom: DomId) -> Result<(), DmError> {
    let live_record = opts.record_path(dom);
    let record = opts.stopping_path(dom);
    let read = |path: &Path| {
        crate::state::read_file(path)
            .map_err(|e| DmError::stop(dom, format!("cannot read {}: {e}", path.display())))
    };
    // The record moves aside first (an earlier stop may have moved it already): from
    // here on the process's exit is rxl's doing, not a crash (crate::dm_watch).
    let recorded = match read(&live_record)? {
        Some(b) => {
            std::fs::rename(&live_record, &record).map_err(|e| {
                DmError::stop(
                    dom,
                    format!("cannot move {} aside: {e}", live_record.display()),
                )
            })?;
            Some(b)
        }
        None => read(&record)?,
    };
    let dir = xs_dir(dom);
    let in_xs = xs.read(TxId::NONE, &dir).ok().flatten().is_some();
    let pid_in_xs = xs.read(TxId::NONE, &pid_node(dom)).ok().flatten();
    if recorded.is_none() && !in_xs && pid_in_xs.is_none() {
        return Ok(());
    }
    match recorded
        .as_deref()
        .and_then(|b| ProcessId::parse(String::from_utf8_lossy(b).trim()))
    {
        Some(id) if id.is_alive() && is_device_model_of(id.pid, dom) => {
            let pid = Pid::from_raw(id.pid as i32);
            tracing::info!("domain {dom}: stopping device model {}", id.pid);
            // QMP `quit` first: QEMU flushes its disks and exits at once. A signal alone
            // makes a `-no-shutdown` QEMU pause rather than exit (its shutdown action),
            // so SIGTERM is only the fallback.
            let quit = crate::qmp::Qmp::connect(&opts.qmp_socket(dom), QUIT_TIMEOUT)
                .and_then(|mut q| q.execute("quit"));
            if let Err(e) = quit {
                tracing::debug!("domain {dom}: QMP quit: {e}");
            }
            if !wait_gone(id, QUIT_TIMEOUT) {
                let _ = kill(pid, Signal::SIGTERM);
            }
            if !wait_gone(id, opts.stop_timeout) {
                tracing::warn!(
                    "domain {dom}: device model {} still runs {} s after SIGTERM: SIGKILL",
                    id.pid,
                    opts.stop_timeout.as_secs_f64()
                );
                let _ = kill(pid, Signal::SIGKILL);
                if !wait_gone(id, Duration::from_secs(5)) {
                    return Err(DmError::stop(
                        dom,
                        format!("process {} survives SIGKILL", id.pid),
                    ));
                }
            }
        }
        Some(id) if id.is_alive() => tracing::warn!(
            "domain {dom}: process {} of rxl's record is no device model of this domain: \
             not signalled",
            id.pid
        ),
        Some(_) => {}
        None => {
            if let Some(p) = pid_in_xs {
                tracing::warn!(
                    "domain {dom}: {} names process {} but rxl has no record of it: not \
                     signalled",
                    pid_node(dom),
                    String::from_utf8_lossy(&p).trim()
                );
            }
        }
    }
    for sock in [opts.qmp_socket(dom), opts.stat_socket(dom)] {
        match std::fs::remove_file(&sock) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!("domain {dom}: cannot remove {}: {e}", sock.display())
            }
            _ => {}
        }
    }
    for path in [dir, pid_node(dom)] {
        xs.rm(TxId::NONE, &path)
            .map_err(|e| DmError::stop(dom, format!("cannot remove {path}: {e}")))?;
    }
    match std::fs::remove_file(&record) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DmError::stop(
            dom,
            format!("cannot remove {}: {e}", record.display()),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xenpv_arguments_are_libxl_s() {
        let opts = DmOptions::default();
        assert_eq!(
            xenpv_args(DomId(7), "web", 512, &opts).join(" "),
            "-xen-domid 7 -no-shutdown \
             -chardev socket,id=libxl-cmd,path=/var/run/xen/qmp-libxl-7,server=on,wait=off \
             -mon chardev=libxl-cmd,mode=control \
             -chardev socket,id=libxenstat-cmd,path=/var/run/xen/qmp-libxenstat-7,server=on,wait=off \
             -mon chardev=libxenstat-cmd,mode=control \
             -nodefaults -no-user-config -xen-attach -name web -vnc none -display none \
             -machine xenpv -m 512"
        );
    }

    #[test]
    fn log_names_are_plain_file_names() {
        let opts = DmOptions::default();
        assert_eq!(
            opts.log_path("web-1"),
            PathBuf::from("/var/log/rxl/qemu-dm-web-1.log")
        );
        assert_eq!(
            opts.log_path("../x"),
            PathBuf::from("/var/log/rxl/qemu-dm-2e2e2f78.log")
        );
    }

    #[test]
    fn command_lines_quote_what_needs_it() {
        assert_eq!(
            shown(
                Path::new("/q"),
                &["-name".into(), "a b".into(), "it's".into()]
            ),
            "/q -name 'a b' 'it'\\''s'"
        );
    }

    #[test]
    fn errors_show_the_command_the_log_and_its_tail() {
        let dir = tempfile::tempdir().expect("dir");
        let log = dir.path().join("qemu-dm-g.log");
        std::fs::write(&log, "old run\nfirst\nsecond\n").expect("write");
        let e = DmError {
            dom: DomId(3),
            message: "it exited before it confirmed (exit status: 1)".into(),
            command: "/q -xen-domid 3".into(),
            log: Some(log.clone()),
            log_tail: log_tail(&log, 8),
        };
        assert_eq!(
            e.to_string(),
            format!(
                "device model of domain 3: it exited before it confirmed (exit status: 1)\n  \
                 command: /q -xen-domid 3\n  log: {}\n  last lines of the log:\n    first\n    \
                 second",
                log.display()
            )
        );
    }

    #[test]
    fn only_a_device_model_of_the_domain_matches() {
        // This test process is no device model.
        assert!(!is_device_model_of(std::process::id(), DomId(1)));
        assert!(!is_device_model_of(0, DomId(1)));
    }
}
