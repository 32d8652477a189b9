//! What marks a create in progress, so that one killed outright (SIGKILL, a crash, a power
//! cut of the creator's session) is recognised afterwards as incomplete:
//!
//! - before `createdomain`, a pending-create mark in the state directory, named by the
//!   domain's uuid (which Xen keeps as the domain's handle) and holding the creator's
//!   [`ProcessId`]: it covers the window in which the domain exists but has no xenstore
//!   node yet;
//! - from the xenstore skeleton on, `/libxl/DOMID/rxl-creating` holding the creator's
//!   [`ProcessId`] too.
//!
//! Both go in the last step. A domain with either mark whose creator is no longer alive
//! (gone, a zombie, or its pid reused by another process) is incomplete.

use std::path::{Path, PathBuf};

use xen_host::{DomId, DomainInfo, Error, Hypervisor, Store, TxId};

use crate::domains::uuid_string;
use crate::process::ProcessId;
use crate::xs_layout;

/// The `/libxl/<id>` node that marks a create in progress; removed when the create
/// completes. A domain that still has it once its creator is gone is incomplete.
pub fn building_marker(dom: DomId) -> String {
    format!("{}/rxl-creating", xs_layout::libxl_path(dom))
}

/// The directory of pending-create marks under `state_dir`.
pub fn pending_marks_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("creating")
}

/// The pending-create mark of the domain with uuid `uuid` (8-4-4-4-12 text: hex digits and
/// hyphens only, so safe as a file name).
pub fn pending_mark(state_dir: &Path, uuid: &str) -> PathBuf {
    pending_marks_dir(state_dir).join(uuid)
}

/// The text of the mark at `path`: only a regular file, never through a link, and never
/// waiting on a FIFO planted there (`None` for any of those, or no file).
fn read_mark(path: &Path) -> Option<String> {
    crate::state::read_file(path)
        .ok()
        .flatten()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// Whether the mark's text names a process that is gone.
fn creator_is_dead(text: &str) -> bool {
    !ProcessId::parse(text.trim()).is_some_and(|p| p.is_alive())
}

/// Whether `dom` is a create that never finished: the xenstore in-progress marker is there
/// and the process that wrote it is gone.
pub fn is_incomplete<S: Store + ?Sized>(xs: &S, dom: DomId) -> Result<bool, Error> {
    Ok(
        xen_host::read_string(xs, TxId::NONE, &building_marker(dom))?
            .is_some_and(|text| creator_is_dead(&text)),
    )
}

/// Whether the domain `info` describes is a create that never finished: either mark (the
/// xenstore one, or the pending-create mark of its uuid in `state_dir`) names a creator
/// that is gone.
pub fn is_incomplete_domain<S: Store + ?Sized>(
    xs: &S,
    state_dir: &Path,
    info: &DomainInfo,
) -> Result<bool, Error> {
    if is_incomplete(xs, info.domid)? {
        return Ok(true);
    }
    let path = pending_mark(state_dir, &uuid_string(&info.handle));
    Ok(read_mark(&path).is_some_and(|text| creator_is_dead(&text)))
}

/// Write the pending-create mark of `uuid` for this process (mode 0600 in a directory of
/// mode 0700): written to a fresh file renamed into place, so that whatever was planted at
/// its path (a link, a FIFO, a dead creator's mark) is replaced, never opened.
pub(super) fn write_pending(state_dir: &Path, uuid: &str) -> std::io::Result<PathBuf> {
    let dir = pending_marks_dir(state_dir);
    // Mode 0700, and a link planted in its place is refused, as for every state directory.
    crate::state::ensure_dir(&dir, crate::state::DIR_MODE)?;
    let text = format!("{}\n", ProcessId::current());
    crate::state::write_file(&dir, uuid, text.as_bytes(), crate::state::FILE_MODE)?;
    Ok(pending_mark(state_dir, uuid))
}

/// Remove the marks of dead creators whose domain no longer exists (destroyed since, or
/// never created): they mark nothing. Runs under the host lock.
pub(super) fn sweep_pending<H: Hypervisor + ?Sized>(hv: &H, state_dir: &Path) -> Result<(), Error> {
    let Ok(entries) = std::fs::read_dir(pending_marks_dir(state_dir)) else {
        return Ok(());
    };
    let mut stale = Vec::new();
    for e in entries.flatten() {
        if read_mark(&e.path()).is_some_and(|t| creator_is_dead(&t)) {
            stale.push(e);
        }
    }
    if stale.is_empty() {
        return Ok(());
    }
    let live: Vec<String> = hv
        .list_domains()?
        .iter()
        .map(|d| uuid_string(&d.handle))
        .collect();
    for e in stale {
        if !live.iter().any(|u| *u == *e.file_name().to_string_lossy()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_names_a_dead_creator_when_its_pid_is_reused_or_unreadable() {
        let me = ProcessId::current();
        assert!(!creator_is_dead(&me.to_string()));
        let reused = ProcessId {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(creator_is_dead(&reused.to_string()), "a reused pid");
        assert!(creator_is_dead("garbage"));
        assert!(creator_is_dead(""));
    }

    #[test]
    fn the_pending_mark_is_private_and_not_written_through_a_symlink() {
        let tmp = tempfile::tempdir().expect("tmp");
        let uuid = "12345678-9abc-def0-0123-456789abcdef";
        let path = write_pending(tmp.path(), uuid).expect("write");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_file(&path).expect("rm");
        let target = tmp.path().join("target");
        std::os::unix::fs::symlink(&target, &path).expect("symlink");
        // The link is replaced by the mark, its target never made.
        assert_eq!(write_pending(tmp.path(), uuid).ok(), Some(path.clone()));
        assert!(!target.exists());
        assert!(std::fs::symlink_metadata(&path).expect("meta").is_file());
    }

    #[test]
    fn the_marks_directory_is_private_and_never_a_link() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().expect("tmp");
        let uuid = "12345678-9abc-def0-0123-456789abcdef";
        let state = tmp.path().join("rxl");
        std::fs::create_dir(&state).expect("mkdir");
        write_pending(&state, uuid).expect("write");
        let mode = std::fs::metadata(pending_marks_dir(&state))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        // A link planted where the directory goes is refused, its target untouched.
        let other = tmp.path().join("other");
        std::fs::create_dir(&other).expect("mkdir");
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).expect("mkdir");
        std::os::unix::fs::symlink(&elsewhere, pending_marks_dir(&other)).expect("symlink");
        let e = write_pending(&other, uuid).expect_err("a linked directory is refused");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_dir(&elsewhere).expect("read").count(), 0);
    }

    /// A FIFO planted among the marks neither hangs a create's sweep nor `rxl list`.
    #[test]
    fn a_fifo_among_the_marks_blocks_nothing() {
        use sim::{HostConfig, SimHost};
        let tmp = tempfile::tempdir().expect("tmp");
        let state = tmp.path().join("rxl");
        let host_dir = tmp.path().join("host");
        crate::state::ensure_dir(&state, crate::state::DIR_MODE).expect("mkdir");
        crate::state::ensure_dir(&pending_marks_dir(&state), crate::state::DIR_MODE)
            .expect("mkdir");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let h = SimHost::create(&host_dir, HostConfig::default()).expect("host");
            let dom = h
                .create_domain(&xen_host::CreateDomain::pvh([5; 16], 1))
                .expect("create domain");
            let fifo = pending_mark(&state, &uuid_string(&[5; 16]));
            nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
            let info = h.domain_info(dom).expect("info").expect("domain");
            let listed = is_incomplete_domain(&h, &state, &info).map_err(|e| e.to_string());
            let swept = sweep_pending(&h, &state).map_err(|e| e.to_string());
            let _ = tx.send((listed, swept));
        });
        let (listed, swept) = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("a FIFO is not read as a mark");
        assert_eq!(listed, Ok(false));
        assert_eq!(swept, Ok(()));
    }

    /// A FIFO planted at the mark's path (the uuid may be fixed in the config) is replaced,
    /// never opened: the create neither hangs nor writes into it.
    #[test]
    fn a_fifo_at_the_mark_path_is_replaced() {
        let tmp = tempfile::tempdir().expect("tmp");
        let state = tmp.path().join("rxl");
        crate::state::ensure_dir(&state, crate::state::DIR_MODE).expect("mkdir");
        crate::state::ensure_dir(&pending_marks_dir(&state), crate::state::DIR_MODE)
            .expect("mkdir");
        let uuid = "12345678-9abc-def0-0123-456789abcdef";
        let path = pending_mark(&state, uuid);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        let (tx, rx) = std::sync::mpsc::channel();
        let dir = state.clone();
        std::thread::spawn(move || {
            let _ = tx.send(write_pending(&dir, uuid).map_err(|e| e.to_string()));
        });
        let written = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("the FIFO is not opened");
        assert_eq!(written, Ok(path.clone()));
        assert!(std::fs::symlink_metadata(&path).expect("meta").is_file());
        assert!(read_mark(&path).is_some_and(|t| !creator_is_dead(&t)));
    }
}
