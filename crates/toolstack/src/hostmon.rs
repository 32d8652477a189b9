//! The host monitor (`rxl monitord`): one process for the whole host that applies the
//! on_* actions of every domain rxl created, in place of one monitor process per guest.
//!
//! - One instance per host: it holds an exclusive flock on `<state dir>/monitord.lock` for
//!   its life ([`claim`]) and says who it is in `<state dir>/monitord.pid` ([`running`]).
//!   A second one finds the lock taken and names the holder.
//! - It waits on the xenstore watches `@releaseDomain` and `@introduceDomain`, blocked in
//!   `next_watch_event` ([`HostMonitor::serve`]); the only timer is a safety re-scan once
//!   an hour ([`RESCAN`]). Each wake-up runs [`HostMonitor::scan`]: one read of the record
//!   directory, one domain list from Xen, and a record read only for the domains that are
//!   shut down or gone. Nothing is kept per domain but the ids of the ones it left shut down,
//!   so its memory and its idle cost do not grow with the number of domains.
//! - A scan handles every recorded domain whose domain is shut down or gone, with
//!   [`monitor::handle`]: on start-up that adopts every domain and applies the action of a
//!   shutdown that happened while no monitor ran (Xen keeps a shut-down domain until a
//!   toolstack acts).
//! - Domains are handled one after the other, in the scanning thread: a restart is a
//!   create and takes as long (milliseconds on the simulated host, a create's time on
//!   Xen; a bootloader's run is bounded by its own timeout). Transient errors are retried
//!   with a doubling delay (at most about 10 s in all) before the monitor moves on.
//! - Domains whose record says another monitor handles them (`create -F`, `create -e`,
//!   [`MonitoredBy`]) are left alone, and so is a gone domain whose create is still in
//!   progress (its creator undoes it).
//! - A domain that a per-domain monitor of an older rxl still watches (a process
//!   `rxl __monitor DOMID` started before an upgrade, [`legacy_monitored`]) is left to it
//!   while that process runs, so that two monitors never act on one domain.
//! - Each action is taken holding [`HostMonitor`]'s `busy` mutex, so that a caller stopping
//!   the monitor (SIGTERM) can let the action in progress finish first.
//! - A device model that exits while its domain runs is a crash of that domain: a
//!   [`DmWatcher`] thread holds a pidfd per recorded device model (re-reading the record
//!   directory at each scan, so new ones are picked up and, at start-up, ones already
//!   gone are found) and shuts such a domain down with reason crash
//!   ([`crate::dm_watch::crash_if_orphaned`], under the `busy` mutex); the
//!   `@releaseDomain` that follows brings the scan that applies `on_crash`.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use xen_host::{DomId, Hypervisor, Store};

use crate::create::{CreateOptions, Record};
use crate::dm_watch::DmWatcher;
use crate::lifecycle::Waited;
use crate::lock::{HostLock, LockError};
use crate::monitor::{self, Handled, MonitorError, MonitoredBy, Rebuild};
use crate::process::ProcessId;
use crate::state::{self, StateDir};

/// The lock file's name in the state directory, without `.lock`.
pub const LOCK_NAME: &str = "monitord";
/// The pid file in the state directory.
pub const PID_FILE: &str = "monitord.pid";
/// The host monitor's log file in the log directory.
pub const LOG_FILE: &str = "monitord.log";
/// How long the monitor waits for an event before it scans anyway (a safety net: it
/// needs no timer to see a shutdown).
pub const RESCAN: Duration = Duration::from_secs(3600);
/// The token of the monitor's watches.
const TOKEN: &str = "rxl-monitord";

/// What the pid file says of the running host monitor.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DaemonInfo {
    /// Its pid.
    pub pid: u32,
    /// Its start time (clock ticks since boot, as [`ProcessId`]).
    pub start_time: u64,
    /// The rxl version it runs.
    pub version: String,
}

impl DaemonInfo {
    /// The process.
    pub fn process(&self) -> ProcessId {
        ProcessId {
            pid: self.pid,
            start_time: self.start_time,
        }
    }
}

/// Why the host monitor could not run.
#[derive(Debug, thiserror::Error)]
pub enum HostMonError {
    /// The lock could not be opened or taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The pid file could not be written.
    #[error("cannot write the pid file {path}: {source}")]
    PidFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The monitor being replaced did not exit in time.
    #[error(
        "the running host monitor ({}) did not exit within {} s of SIGTERM",
        holder.as_ref().map_or("pid unknown".to_string(), |h| format!("pid {}", h.pid)),
        waited.as_secs()
    )]
    NotReplaced {
        /// What its pid file says.
        holder: Option<DaemonInfo>,
        /// How long we waited.
        waited: Duration,
    },
    /// Watching xenstore failed.
    #[error("cannot watch {what}: {source}")]
    Watch {
        /// The watch or the wait.
        what: &'static str,
        /// Why.
        source: xen_host::Error,
    },
}

/// The running host monitor, from its pid file: `None` when there is none or its process
/// is gone.
pub fn running(state_dir: &Path) -> Option<DaemonInfo> {
    let bytes = state::read_file(&state_dir.join(PID_FILE)).ok()??;
    let info: DaemonInfo = serde_json::from_slice(&bytes).ok()?;
    info.process().is_alive().then_some(info)
}

/// The lock of the one host monitor, and its pid file (removed when this goes).
#[derive(Debug)]
pub struct Instance {
    _lock: HostLock,
    pid_file: PathBuf,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// What [`claim`] found.
#[derive(Debug)]
pub enum Claim {
    /// This process is the host monitor now.
    Got(Instance),
    /// Another process holds the lock (its pid file, if it wrote one yet).
    Held(Option<DaemonInfo>),
}

/// Become the host monitor of `state_dir`, unless another process is: take the lock
/// without waiting, then write the pid file naming this process and `version`.
pub fn claim(state_dir: &Path, version: &str) -> Result<Claim, HostMonError> {
    let Some(lock) = HostLock::try_acquire(state_dir, LOCK_NAME)? else {
        return Ok(Claim::Held(running(state_dir)));
    };
    let me = ProcessId::current();
    let info = DaemonInfo {
        pid: me.pid,
        start_time: me.start_time,
        version: version.to_string(),
    };
    let text = serde_json::to_vec(&info).unwrap_or_default();
    let pid_file = state_dir.join(PID_FILE);
    state::write_file(state_dir, PID_FILE, &text, state::FILE_MODE).map_err(|source| {
        HostMonError::PidFile {
            path: pid_file.clone(),
            source,
        }
    })?;
    Ok(Claim::Got(Instance {
        _lock: lock,
        pid_file,
    }))
}

/// Take over from the running host monitor: ask it to exit (SIGTERM: it finishes the
/// action in progress, then drops the lock) and claim the lock once it has, waiting at
/// most `timeout`. With none running this is [`claim`].
pub fn take_over(
    state_dir: &Path,
    version: &str,
    timeout: Duration,
) -> Result<Instance, HostMonError> {
    let deadline = Instant::now() + timeout;
    let mut asked: Option<u32> = None;
    loop {
        let holder = match claim(state_dir, version)? {
            Claim::Got(instance) => return Ok(instance),
            Claim::Held(holder) => holder,
        };
        if let Some(h) = &holder {
            if asked != Some(h.pid) {
                tracing::info!(
                    "asking the host monitor (pid {}, rxl {}) to exit",
                    h.pid,
                    h.version
                );
                if let Ok(pid) = i32::try_from(h.pid) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGTERM,
                    );
                }
                asked = Some(h.pid);
            }
        }
        if Instant::now() >= deadline {
            return Err(HostMonError::NotReplaced {
                holder,
                waited: timeout,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes the pid file if it names this process (a monitor exiting on a signal).
pub fn retire(state_dir: &Path) {
    let path = state_dir.join(PID_FILE);
    let mine = state::read_file(&path)
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice::<DaemonInfo>(&b).ok())
        .is_some_and(|i| i.pid == std::process::id());
    if mine {
        let _ = std::fs::remove_file(path);
    }
}

/// How many domains the host monitor watches: those with a record that leaves them to it
/// and that Xen still has.
pub fn watched<H: Hypervisor + ?Sized>(hv: &H, state_dir: &Path) -> Result<usize, xen_host::Error> {
    let state = StateDir::new(state_dir);
    let recorded = state.domains();
    let live: BTreeSet<DomId> = hv.list_domains()?.iter().map(|i| i.domid).collect();
    Ok(recorded
        .iter()
        .filter(|d| live.contains(d))
        .filter(|d| {
            state
                .load::<Record>(**d)
                .ok()
                .flatten()
                .is_some_and(|r| r.monitored_by == MonitoredBy::Host)
        })
        .count())
}

/// Whether the create of the domain `record` describes is still under way: its
/// pending-create mark names a live process.
pub(crate) fn create_in_progress(state_dir: &Path, record: &Record) -> bool {
    let uuid = record.config.uuid.hyphenated().to_string();
    state::read_file(&crate::create::pending_mark(state_dir, &uuid))
        .ok()
        .flatten()
        .and_then(|b| ProcessId::parse(String::from_utf8_lossy(&b).trim()))
        .is_some_and(|p| p.is_alive())
}

/// The domains that a per-domain monitor of an older rxl still watches: a live process
/// whose command line is `... [--sim DIR] __monitor DOMID ...`, with `--sim` naming
/// `sim_dir` (none on real Xen). Such a process was started before an upgrade and acts on
/// its domain itself; the host monitor leaves that domain to it while it runs.
pub fn legacy_monitored(sim_dir: Option<&Path>) -> BTreeSet<DomId> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    let mut doms = BTreeSet::new();
    for e in entries.flatten() {
        if !e
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        let Some(at) = args.iter().position(|a| *a == b"__monitor") else {
            continue;
        };
        let Some(dom) = args
            .get(at + 1)
            .and_then(|a| std::str::from_utf8(a).ok())
            .and_then(|a| a.parse::<u16>().ok())
        else {
            continue;
        };
        let sim = args.iter().enumerate().find_map(|(i, a)| {
            if *a == b"--sim" {
                args.get(i + 1).copied()
            } else {
                a.strip_prefix(b"--sim=")
            }
        });
        let same_host = match (sim, sim_dir) {
            (None, None) => true,
            (Some(a), Some(dir)) => Path::new(std::ffi::OsStr::from_bytes(a)) == dir,
            _ => false,
        };
        if same_host {
            doms.insert(DomId(dom));
        }
    }
    doms
}

/// Lists the domains another process monitors ([`legacy_monitored`]); asked only when a
/// scan finds something to act on.
pub type Others<'a> = dyn Fn() -> BTreeSet<DomId> + 'a;

/// The host monitor's work: scans and the wait between them.
pub struct HostMonitor<'a, H: ?Sized, S: ?Sized> {
    hv: &'a H,
    xs: &'a S,
    opts: &'a CreateOptions,
    state: StateDir,
    /// Held while an action is taken.
    busy: &'a Mutex<()>,
    /// Domains another process monitors.
    others: Box<Others<'a>>,
    /// Domains handled and left shut down (preserved, or the action failed for good), and
    /// domains another monitor handles: not looked at again until they change.
    settled: BTreeSet<DomId>,
    /// The watcher of the device models, told to look again at each scan.
    dm_watcher: Option<DmWatcher>,
}

impl<H: ?Sized, S: ?Sized> std::fmt::Debug for HostMonitor<'_, H, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostMonitor")
            .field("state", &self.state)
            .field("settled", &self.settled)
            .finish_non_exhaustive()
    }
}

impl<'a, H, S> HostMonitor<'a, H, S>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    /// A monitor of the domains recorded in `opts.state_dir`, acting through `hv` and `xs`.
    pub fn new(hv: &'a H, xs: &'a S, opts: &'a CreateOptions, busy: &'a Mutex<()>) -> Self {
        HostMonitor {
            hv,
            xs,
            opts,
            state: StateDir::new(opts.state_dir.clone()),
            busy,
            others: Box::new(BTreeSet::new),
            settled: BTreeSet::new(),
            dm_watcher: None,
        }
    }

    /// Have `watcher` (watching the device models, [`crate::dm_watch`]) read the record
    /// directory again at each scan, so that it picks up the device models of domains
    /// created since.
    pub fn with_dm_watcher(mut self, watcher: DmWatcher) -> Self {
        self.dm_watcher = Some(watcher);
        self
    }

    /// Leave alone the domains `others` lists (those of an older rxl's per-domain
    /// monitors, [`legacy_monitored`]) while it lists them.
    pub fn with_others(mut self, others: Box<Others<'a>>) -> Self {
        self.others = others;
        self
    }

    /// Handle every recorded domain that is shut down or gone and left to the host
    /// monitor. Returns how many it handled. A failure with one domain is logged and
    /// leaves that domain as it is (until it changes or the monitor restarts); only a
    /// failure to list the domains ends the scan.
    pub fn scan(&mut self, rebuild: &mut Rebuild<'_>) -> Result<usize, MonitorError> {
        if let Some(w) = &self.dm_watcher {
            w.refresh();
        }
        let recorded = self.state.domains();
        self.settled.retain(|d| recorded.contains(d));
        if recorded.is_empty() {
            return Ok(0);
        }
        let live: BTreeMap<DomId, xen_host::DomainInfo> = self
            .hv
            .list_domains()?
            .into_iter()
            .map(|i| (i.domid, i))
            .collect();
        let mut handled = 0;
        let mut others: Option<BTreeSet<DomId>> = None;
        for dom in recorded {
            if dom == DomId::DOM0 {
                continue;
            }
            let seen = match live.get(&dom) {
                // Someone is destroying it: not ours to act on.
                Some(info) if info.dying => continue,
                Some(info) if !info.shutdown => {
                    self.settled.remove(&dom);
                    continue;
                }
                Some(info) => Waited::ShutDown(info.shutdown_reason()),
                None => Waited::Gone,
            };
            if self.settled.contains(&dom) {
                continue;
            }
            if others.get_or_insert_with(|| (self.others)()).contains(&dom) {
                tracing::info!(
                    "domain {dom} has a monitor of its own (an older rxl's): left to it"
                );
                continue;
            }
            let _busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
            let record: Record = match self.state.load(dom) {
                Ok(Some(r)) => r,
                // Removed since the directory was read (destroyed meanwhile).
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!("domain {dom}: {e}; left alone");
                    self.settled.insert(dom);
                    continue;
                }
            };
            if record.monitored_by != MonitoredBy::Host {
                self.settled.insert(dom);
                continue;
            }
            if let Some(info) = live.get(&dom) {
                if info.handle != *record.config.uuid.as_bytes() {
                    // The id now names another domain (its uuid is not the record's): the
                    // recorded one is gone, and the live one is not ours to act on.
                    self.forget_replaced(&record, info);
                    continue;
                }
            }
            if seen == Waited::Gone && create_in_progress(&self.opts.state_dir, &record) {
                continue;
            }
            handled += 1;
            match monitor::handle(
                self.hv,
                self.xs,
                self.opts,
                &self.state,
                &record,
                seen,
                rebuild,
            ) {
                Ok(Handled::Preserved(d)) => {
                    self.settled.insert(d);
                }
                Ok(Handled::Gone) | Ok(Handled::Restarted(_)) => {}
                Err(e) => {
                    tracing::error!(
                        "domain {dom} ({}): {e}; left as it is until it changes",
                        record.config.name
                    );
                    self.settled.insert(dom);
                }
            }
        }
        Ok(handled)
    }

    /// Drop the record of a domain whose id another domain (`live`) now holds, and its
    /// name index entry; nothing of the live domain is touched.
    fn forget_replaced(&mut self, record: &Record, live: &xen_host::DomainInfo) {
        let dom = record.domid;
        tracing::warn!(
            "domain {dom} is not the recorded \"{}\" (uuid {}, found {}): dropping the \
             stale record and leaving that domain alone",
            record.config.name,
            record.config.uuid.hyphenated(),
            uuid::Uuid::from_bytes(live.handle).hyphenated()
        );
        if let Err(e) = self.state.remove(dom) {
            tracing::error!("domain {dom}: cannot remove the stale record: {e}");
            self.settled.insert(dom);
        }
        crate::names::NameIndex::new(&self.opts.state_dir).remove(&record.config.name, dom);
    }

    /// Scan until a scan finds nothing more to do (an action's own waits may have taken
    /// events meant for the monitor; the next scan sees what they announced).
    /// A scan that fails transiently (listing the domains) is tried again, as an action
    /// is ([`monitor::RETRY_ATTEMPTS`] times); one that fails for good waits for the next
    /// event.
    fn scan_until_quiet(&mut self, rebuild: &mut Rebuild<'_>) {
        let mut failures = 0;
        loop {
            match self.scan(rebuild) {
                Ok(0) => return,
                Ok(_) => failures = 0,
                Err(e) if e.is_transient() && failures + 1 < monitor::RETRY_ATTEMPTS => {
                    failures += 1;
                    tracing::warn!("cannot scan the domains: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(100) * failures);
                }
                Err(e) => {
                    tracing::error!("giving up: cannot scan the domains: {e}");
                    return;
                }
            }
        }
    }

    /// Run the monitor: watch `@releaseDomain` and `@introduceDomain` through `watcher`
    /// (a handle of its own, so that no action's wait takes its events), call `ready`
    /// once the watches are set, scan, and then scan again after each event (events that
    /// came meanwhile are taken together), or after [`RESCAN`] without one. Returns only
    /// when the watches fail for good.
    pub fn serve<W: Store + ?Sized>(
        &mut self,
        watcher: &W,
        rebuild: &mut Rebuild<'_>,
        ready: impl FnOnce(),
    ) -> Result<(), HostMonError> {
        for path in ["@releaseDomain", "@introduceDomain"] {
            watcher
                .watch(path, TOKEN)
                .map_err(|source| HostMonError::Watch { what: path, source })?;
        }
        ready();
        let mut failures = 0u32;
        loop {
            self.scan_until_quiet(rebuild);
            match watcher.next_watch_event(Some(RESCAN)) {
                Ok(Some(_)) => {
                    failures = 0;
                    while let Ok(Some(_)) = watcher.next_watch_event(Some(Duration::ZERO)) {}
                }
                Ok(None) => tracing::info!("no event for {} s: scanning anyway", RESCAN.as_secs()),
                Err(e)
                    if e.errno().is_some_and(xen_host::Errno::is_transient)
                        && failures < monitor::RETRY_ATTEMPTS =>
                {
                    failures += 1;
                    tracing::warn!("waiting for xenstore events failed: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(100) * failures);
                }
                Err(source) => {
                    return Err(HostMonError::Watch {
                        what: "events",
                        source,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_claim_at_a_time_and_the_pid_file_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(running(dir.path()), None);
        let Claim::Got(first) = claim(dir.path(), "1.2.3").unwrap() else {
            panic!("the lock is free");
        };
        let info = running(dir.path()).expect("the pid file names a live process");
        assert_eq!(info.pid, std::process::id());
        assert_eq!(info.version, "1.2.3");
        // A second claim (another open file: flock excludes it as another process).
        match claim(dir.path(), "9").unwrap() {
            Claim::Held(Some(holder)) => assert_eq!(holder, info),
            other => panic!("{other:?}"),
        }
        let err = take_over_without_signal(dir.path());
        assert!(
            err.contains("(pid unknown) did not exit within 0 s"),
            "{err}"
        );
        drop(first);
        assert_eq!(running(dir.path()), None);
        assert!(matches!(claim(dir.path(), "9").unwrap(), Claim::Got(_)));
    }

    /// A take-over with no time to wait while the lock is held; the pid file is made to
    /// name no live process first, so that no signal is sent (the holder is this process).
    fn take_over_without_signal(dir: &Path) -> String {
        std::fs::write(
            dir.join(PID_FILE),
            serde_json::to_vec(&DaemonInfo {
                pid: u32::MAX,
                start_time: 0,
                version: "old".into(),
            })
            .unwrap(),
        )
        .unwrap();
        take_over(dir, "new", Duration::ZERO)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_pid_file_of_a_gone_process_names_nobody() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let info = DaemonInfo {
            pid,
            start_time: 1,
            version: "x".into(),
        };
        std::fs::write(
            dir.path().join(PID_FILE),
            serde_json::to_vec(&info).unwrap(),
        )
        .unwrap();
        assert_eq!(running(dir.path()), None);
        std::fs::write(dir.path().join(PID_FILE), b"garbage").unwrap();
        assert_eq!(running(dir.path()), None);
    }

    #[test]
    fn older_per_domain_monitors_are_found_by_their_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let spawn = |args: &[&str]| {
            std::process::Command::new("sh")
                .args(["-c", "sleep 60; true", "rxl"])
                .args(args)
                .spawn()
                .unwrap()
        };
        let sim = dir.path().to_str().unwrap();
        let mut procs = vec![
            spawn(&["--sim", sim, "__monitor", "7"]),
            spawn(&[&format!("--sim={sim}"), "__monitor", "8"]),
            spawn(&["--sim", other.path().to_str().unwrap(), "__monitor", "9"]),
            spawn(&["__monitor", "not-a-domid"]),
        ];
        let found = legacy_monitored(Some(dir.path()));
        assert!(
            found.contains(&DomId(7)) && found.contains(&DomId(8)),
            "{found:?}"
        );
        assert!(!found.contains(&DomId(9)), "{found:?}");
        assert!(!legacy_monitored(None).contains(&DomId(7)));
        for p in &mut procs {
            p.kill().unwrap();
            p.wait().unwrap();
        }
        assert!(legacy_monitored(Some(dir.path())).is_empty());
    }
}
