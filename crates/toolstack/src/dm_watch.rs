//! Watching the device models a monitor is responsible for, so that one that dies while
//! its guest runs makes the guest crash (docs/device-model.md, "A device model that
//! dies"): without its device model an HVM guest cannot do any I/O, and a PV guest's
//! qdisk disks are gone, so the guest is as good as crashed, and its `on_crash` applies.
//!
//! * [`DmWatcher`] is one thread that holds a pidfd (`pidfd_open`) for every device model
//!   recorded in the record directory ([`crate::dm::DmOptions::record_dir`], one file per
//!   domain naming the process's pid and start time) and waits in `poll` on all of them
//!   plus an inotify watch of the record directory (a record written or moved into
//!   place) and one wake-up socket, with no timeout. Each change of the directory, and
//!   each [`DmWatcher::refresh`] (the host monitor calls it at each scan, that is at each
//!   `@introduceDomain` / `@releaseDomain`; `create -F` after each restart), makes it
//!   read the record directory again: new device models get a pidfd, the ones whose
//!   record went (stopped by rxl) lose theirs. (A device model is recorded after its
//!   domain is introduced, so `@introduceDomain` alone would come too early.) It keeps
//!   one fd and one small entry per device model, and two fds of its own.
//! * A recorded process that is already gone when the watcher first looks (a monitor
//!   started after the device model died) counts as an exit, as does one whose pidfd
//!   says it exited. Each exit is handed to the watcher's `on_exit` callback once.
//! * [`crash_if_orphaned`] is what the callbacks run: it shuts the domain down from Xen
//!   with reason crash (`SCHEDOP_remote_shutdown`) only when the domain still runs (not
//!   shut down, not dying), the device-model record still names that very process (pid
//!   and start time: [`crate::dm::stop`] moves the record aside before it signals the
//!   process, so rxl's own destroy, stop or restart never counts), the domain has an rxl
//!   record that the caller's monitor is responsible for, and no create of it is under
//!   way (a create confirms its device model itself and undoes itself when it dies).
//!   The shutdown fires `@releaseDomain`, and the monitor's usual path applies `on_crash`.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd as _, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use xen_host::{DomId, Hypervisor, ShutdownReason};

use crate::create::Record;
use crate::process::ProcessId;
use crate::state::StateDir;

/// Called with the domain and the process of each device model that exited.
pub type OnExit = dyn FnMut(DomId, ProcessId) + Send;

/// The thread watching the recorded device models (see the module doc).
#[derive(Debug)]
pub struct DmWatcher {
    wake: UnixStream,
}

impl DmWatcher {
    /// Start watching the device models recorded in `record_dir`; `on_exit` runs in the
    /// watcher's thread for each one that exits (or is found gone).
    pub fn spawn(record_dir: PathBuf, on_exit: Box<OnExit>) -> std::io::Result<DmWatcher> {
        let (wake, woken) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        woken.set_nonblocking(true)?;
        // Without it (inotify's limits reached) the scans' refreshes still find new
        // records, later.
        let dir_changes = watch_dir(&record_dir)
            .map_err(|e| {
                tracing::warn!(
                    "cannot watch {} for new device models: {e}",
                    record_dir.display()
                )
            })
            .ok();
        std::thread::Builder::new()
            .name("dm-watch".into())
            .spawn(move || {
                let mut w = Watch {
                    record_dir,
                    on_exit,
                    live: BTreeMap::new(),
                    exited: BTreeMap::new(),
                };
                w.run(woken, dir_changes);
            })?;
        Ok(DmWatcher { wake })
    }

    /// Have the watcher read the record directory again (new device models, stopped
    /// ones). Does not wait.
    pub fn refresh(&self) {
        // A full buffer means a wake-up is pending already.
        let _ = (&self.wake).write(&[1]);
    }
}

/// The watcher thread's state.
struct Watch {
    record_dir: PathBuf,
    on_exit: Box<OnExit>,
    /// The device models running when last looked at, with their pidfd.
    live: BTreeMap<DomId, (ProcessId, OwnedFd)>,
    /// The recorded device models already reported as exited (kept while their record
    /// stays, so that each exit is reported once).
    exited: BTreeMap<DomId, ProcessId>,
}

/// The device models the record directory names: `D` files holding `PID START_TIME`.
pub fn recorded(record_dir: &Path) -> BTreeMap<DomId, ProcessId> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(record_dir) else {
        return out;
    };
    for e in entries.flatten() {
        let Some(dom) = e.file_name().to_str().and_then(|n| n.parse::<u16>().ok()) else {
            continue;
        };
        let id = std::fs::read_to_string(e.path())
            .ok()
            .and_then(|t| ProcessId::parse(t.trim()));
        if let Some(id) = id {
            out.insert(DomId(dom), id);
        }
    }
    out
}

impl Watch {
    fn run(&mut self, woken: UnixStream, dir_changes: Option<OwnedFd>) {
        self.rescan();
        // Polled as the second fd; the wake-up socket again when there is no watch.
        let changes = dir_changes.as_ref().map_or(woken.as_fd(), |fd| fd.as_fd());
        loop {
            let mut fds = Vec::with_capacity(self.live.len() + 2);
            fds.push(PollFd::new(woken.as_fd(), PollFlags::POLLIN));
            fds.push(PollFd::new(changes, PollFlags::POLLIN));
            let doms: Vec<DomId> = self.live.keys().copied().collect();
            for (_, fd) in self.live.values() {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
            if let Err(e) = nix::poll::poll(&mut fds, PollTimeout::NONE) {
                if e != nix::errno::Errno::EINTR {
                    tracing::error!("cannot wait for the device models: {e}; not watching them");
                    return;
                }
                continue;
            }
            let ready = |p: &PollFd<'_>| p.revents().is_some_and(|r| !r.is_empty());
            let wake = ready(&fds[0]) || ready(&fds[1]);
            let gone: Vec<DomId> = fds[2..]
                .iter()
                .zip(&doms)
                .filter(|(p, _)| ready(p))
                .map(|(_, d)| *d)
                .collect();
            drop(fds);
            if wake {
                let mut buf = [0u8; 4096];
                while matches!((&woken).read(&mut buf), Ok(n) if n > 0) {}
                if let Some(fd) = &dir_changes {
                    while matches!(rustix::io::read(fd, &mut buf), Ok(n) if n > 0) {}
                }
            }
            for dom in gone {
                if let Some((id, _fd)) = self.live.remove(&dom) {
                    self.report(dom, id);
                }
            }
            if wake {
                self.rescan();
            }
        }
    }

    /// Report the exit of `id`, the device model of `dom`, once.
    fn report(&mut self, dom: DomId, id: ProcessId) {
        self.exited.insert(dom, id);
        (self.on_exit)(dom, id);
    }

    /// Match the watched processes to the record directory.
    fn rescan(&mut self) {
        let now = recorded(&self.record_dir);
        self.live.retain(|d, (id, _)| now.get(d) == Some(id));
        self.exited.retain(|d, id| now.get(d) == Some(id));
        for (dom, id) in now {
            if self.live.contains_key(&dom) || self.exited.get(&dom) == Some(&id) {
                continue;
            }
            match open(id) {
                Ok(Some(fd)) => {
                    self.live.insert(dom, (id, fd));
                }
                Ok(None) => self.report(dom, id),
                Err(e) => tracing::warn!("domain {dom}: cannot watch device model {}: {e}", id.pid),
            }
        }
    }
}

/// An inotify descriptor that becomes readable when a record is written or moved into
/// `dir` (made when missing, as [`crate::dm::launch`] makes it).
fn watch_dir(dir: &Path) -> std::io::Result<OwnedFd> {
    use rustix::fs::inotify;
    crate::state::ensure_dir(dir, crate::state::DIR_MODE)?;
    let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
    inotify::add_watch(
        &fd,
        dir,
        inotify::WatchFlags::CLOSE_WRITE | inotify::WatchFlags::MOVED_TO,
    )?;
    Ok(fd)
}

/// A pidfd of `id`, or `None` when that process is gone (exited, or its pid now names
/// another process).
fn open(id: ProcessId) -> std::io::Result<Option<OwnedFd>> {
    let Some(pid) = i32::try_from(id.pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return Ok(None);
    };
    match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
        // Checked after the open: the pidfd then refers to the recorded process for good.
        Ok(fd) => Ok(id.is_alive().then_some(fd)),
        Err(rustix::io::Errno::SRCH) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Shut `dom` down with reason crash because its device model `id` exited, when that
/// exit is a crash (see the module doc) and `ours` accepts the domain's rxl record.
/// Returns whether it did.
pub fn crash_if_orphaned<H: Hypervisor + ?Sized>(
    hv: &H,
    state_dir: &Path,
    record_dir: &Path,
    dom: DomId,
    id: ProcessId,
    ours: &dyn Fn(&Record) -> bool,
) -> Result<bool, xen_host::Error> {
    if recorded(record_dir).get(&dom) != Some(&id) {
        // Stopped by rxl (or replaced): not a crash.
        return Ok(false);
    }
    let Some(info) = hv.domain_info(dom)? else {
        return Ok(false);
    };
    if info.dying || info.shutdown {
        return Ok(false);
    }
    let record: Record = match StateDir::new(state_dir).load(dom) {
        Ok(Some(r)) => r,
        _ => return Ok(false),
    };
    if info.handle != *record.config.uuid.as_bytes()
        || !ours(&record)
        || crate::hostmon::create_in_progress(state_dir, &record)
    {
        return Ok(false);
    }
    tracing::warn!(
        "device model of domain {dom} (pid {}) exited: treating as a crash",
        id.pid
    );
    hv.shutdown(dom, ShutdownReason::Crash)?;
    Ok(true)
}

/// Which domains a monitor is responsible for: given the domain and its rxl record.
pub type Ours = dyn Fn(DomId, &Record) -> bool + Send;

/// The `on_exit` of a monitor's [`DmWatcher`]: [`crash_if_orphaned`] through the
/// hypervisor `hv` gives of `owner` (a handle of the watcher's own), holding `busy` (the
/// monitor's action lock) so that it never runs during one of the monitor's actions.
/// Errors are logged.
pub fn crash_on_exit<T: Send + 'static>(
    owner: T,
    hv: fn(&T) -> &dyn Hypervisor,
    state_dir: PathBuf,
    record_dir: PathBuf,
    busy: std::sync::Arc<std::sync::Mutex<()>>,
    ours: Box<Ours>,
) -> Box<OnExit> {
    Box::new(move |dom, id| {
        let _busy = busy.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = crash_if_orphaned(hv(&owner), &state_dir, &record_dir, dom, id, &|r| {
            ours(dom, r)
        }) {
            tracing::error!(
                "domain {dom}: device model {} exited, and the domain cannot be shut down: {e}",
                id.pid
            );
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    fn record(dir: &Path, name: &str, id: ProcessId) {
        crate::state::write_file(
            dir,
            name,
            format!("{id}\n").as_bytes(),
            crate::state::FILE_MODE,
        )
        .expect("record");
    }

    fn sleeper() -> (std::process::Child, ProcessId) {
        let child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("sleep");
        let id = ProcessId::of(child.id()).expect("its stat");
        (child, id)
    }

    fn watcher(dir: &Path) -> (DmWatcher, mpsc::Receiver<(DomId, ProcessId)>) {
        let (tx, rx) = mpsc::channel();
        let w = DmWatcher::spawn(
            dir.to_path_buf(),
            Box::new(move |d, id| {
                let _ = tx.send((d, id));
            }),
        )
        .expect("spawn");
        (w, rx)
    }

    const WAIT: Duration = Duration::from_secs(10);

    #[test]
    fn records_name_domains_and_moved_aside_ones_do_not_count() {
        let dir = tempfile::tempdir().expect("dir");
        let id = ProcessId {
            pid: 42,
            start_time: 7,
        };
        record(dir.path(), "3", id);
        record(dir.path(), "4.stopping", id);
        std::fs::write(dir.path().join("5"), "garbage").expect("write");
        assert_eq!(recorded(dir.path()), BTreeMap::from([(DomId(3), id)]));
        assert!(recorded(&dir.path().join("missing")).is_empty());
    }

    #[test]
    fn an_exit_is_reported_once_and_a_record_written_later_is_picked_up() {
        let dir = tempfile::tempdir().expect("dir");
        let (mut first, first_id) = sleeper();
        record(dir.path(), "1", first_id);
        let (w, rx) = watcher(dir.path());
        // Written after the watcher started: inotify makes it look again.
        let (mut second, second_id) = sleeper();
        record(dir.path(), "2", second_id);
        std::thread::sleep(Duration::from_millis(200));
        assert!(rx.try_recv().is_err(), "nothing exited yet");
        second.kill().expect("kill");
        second.wait().expect("reap");
        assert_eq!(
            rx.recv_timeout(WAIT).expect("reported"),
            (DomId(2), second_id)
        );
        first.kill().expect("kill");
        first.wait().expect("reap");
        assert_eq!(
            rx.recv_timeout(WAIT).expect("reported"),
            (DomId(1), first_id)
        );
        // Re-reading the directory reports neither again.
        w.refresh();
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    }

    #[test]
    fn a_recorded_process_already_gone_is_reported_at_start_and_a_removed_record_is_not() {
        let dir = tempfile::tempdir().expect("dir");
        let (mut gone, gone_id) = sleeper();
        gone.kill().expect("kill");
        gone.wait().expect("reap");
        record(dir.path(), "6", gone_id);
        let (mut stopped, stopped_id) = sleeper();
        record(dir.path(), "7", stopped_id);
        let (w, rx) = watcher(dir.path());
        assert_eq!(
            rx.recv_timeout(WAIT).expect("reported"),
            (DomId(6), gone_id)
        );
        // As dm::stop does: the record moves aside before the process is stopped. The
        // watcher is told of it only through its callback, which finds no record.
        std::fs::rename(dir.path().join("7"), dir.path().join("7.stopping")).expect("mv");
        w.refresh();
        std::thread::sleep(Duration::from_millis(200));
        stopped.kill().expect("kill");
        stopped.wait().expect("reap");
        assert!(
            rx.recv_timeout(Duration::from_millis(500)).is_err(),
            "a stopped device model whose record went is not watched"
        );
    }
}
