//! Names whose guest the monitor is restarting.
//!
//! When a guest reboots (or crashes with `on_crash = "restart"`), the monitor destroys the
//! domain and builds a new one from the stored config. In between no domain carries the
//! name, and under emulation or with a large kernel that takes seconds: a `rxl destroy NAME`
//! then would find nothing, and the guest would come back a moment later (xl behaves so).
//! The monitor therefore marks the name for the whole restart, in
//! `<state dir>/restarting/<name in hex>`, holding its [`ProcessId`] (pid and start time).
//! A mark counts only while that process runs ([`ProcessId::is_alive`]: a monitor that was
//! killed, even one not yet reaped, or whose pid now belongs to another process, holds
//! nothing). Commands that look a domain up by name wait for the mark to go
//! ([`wait_restarted`]); a create of that name is refused while it is there.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::names::file_name;
use crate::process::ProcessId;
use crate::state;

/// The mark of one restart; removed when dropped.
#[derive(Debug)]
pub struct RestartMark {
    path: PathBuf,
}

fn mark_path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join("restarting").join(file_name(name))
}

impl RestartMark {
    /// Marks `name` as being restarted by this process (a link planted at the mark's path
    /// is replaced, not followed).
    pub fn set(state_dir: &Path, name: &str) -> io::Result<RestartMark> {
        let path = mark_path(state_dir, name);
        let dir = path.parent().unwrap_or(state_dir);
        state::ensure_dir(state_dir, state::DIR_MODE)?;
        state::ensure_dir(dir, state::DIR_MODE)?;
        let text = format!("{}\n", ProcessId::current());
        state::write_file(dir, &file_name(name), text.as_bytes(), state::FILE_MODE)?;
        Ok(RestartMark { path })
    }
}

impl Drop for RestartMark {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The live process restarting `name`'s guest, if one is.
pub fn restarting_process(state_dir: &Path, name: &str) -> Option<ProcessId> {
    let bytes = state::read_file(&mark_path(state_dir, name)).ok()??;
    let process = ProcessId::parse(std::str::from_utf8(&bytes).ok()?)?;
    process.is_alive().then_some(process)
}

/// The pid of the live process restarting `name`'s guest, if one is.
pub fn restarting(state_dir: &Path, name: &str) -> Option<u32> {
    restarting_process(state_dir, name).map(|p| p.pid)
}

/// A restart that did not end in time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestartError {
    /// The monitor still restarts the guest.
    #[error(
        "{name} is being restarted by rxl's monitor (pid {pid}) and did not come back \
         within {} s", waited.as_secs()
    )]
    TimedOut {
        /// The guest's name.
        name: String,
        /// The monitor's pid.
        pid: u32,
        /// How long the caller waited.
        waited: Duration,
    },
}

/// Whether a restart of `name`'s guest was under way: when one is, waits until it is over
/// (`Ok(true)`: look the name up again) or `timeout` passes (an error naming the
/// monitor); `Ok(false)` when there is none.
pub fn wait_restarted(
    state_dir: &Path,
    name: &str,
    timeout: Duration,
) -> Result<bool, RestartError> {
    let Some(mut pid) = restarting(state_dir, name) else {
        return Ok(false);
    };
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        match restarting(state_dir, name) {
            None => return Ok(true),
            Some(p) => pid = p,
        }
    }
    Err(RestartError::TimedOut {
        name: name.to_string(),
        pid,
        waited: timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_lives_as_long_as_its_guard_and_its_process() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(restarting(dir.path(), "web"), None);
        let mark = RestartMark::set(dir.path(), "web").unwrap();
        assert_eq!(restarting(dir.path(), "web"), Some(std::process::id()));
        assert_eq!(restarting(dir.path(), "web-2"), None);
        drop(mark);
        assert_eq!(restarting(dir.path(), "web"), None);

        // A mark whose process is gone, or whose pid now belongs to another process,
        // does not count.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        std::fs::write(mark_path(dir.path(), "web"), format!("{dead} 1\n")).unwrap();
        assert_eq!(restarting(dir.path(), "web"), None);
        std::fs::write(
            mark_path(dir.path(), "web"),
            format!("{} 1\n", std::process::id()),
        )
        .unwrap();
        assert_eq!(restarting(dir.path(), "web"), None, "start time differs");
        std::fs::write(mark_path(dir.path(), "web"), "garbage").unwrap();
        assert_eq!(restarting(dir.path(), "web"), None);
    }

    #[test]
    fn a_killed_monitor_not_yet_reaped_holds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let monitor = ProcessId::of(child.id()).expect("the child runs");
        std::fs::create_dir_all(dir.path().join("restarting")).unwrap();
        std::fs::write(mark_path(dir.path(), "web"), format!("{monitor}\n")).unwrap();
        assert_eq!(restarting(dir.path(), "web"), Some(child.id()));
        child.kill().unwrap();
        // Not reaped: a zombie until wait().
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(format!("/proc/{}/stat", child.id()))
            .is_ok_and(|s| !s.contains(") Z "))
        {
            assert!(Instant::now() < deadline, "the child never became a zombie");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(restarting(dir.path(), "web"), None);
        assert_eq!(
            wait_restarted(dir.path(), "web", Duration::from_secs(5)),
            Ok(false)
        );
        child.wait().unwrap();
    }

    #[test]
    fn a_link_at_the_mark_path_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"precious").unwrap();
        std::fs::create_dir_all(dir.path().join("restarting")).unwrap();
        std::os::unix::fs::symlink(&target, mark_path(dir.path(), "web")).unwrap();
        assert_eq!(restarting(dir.path(), "web"), None);
        let mark = RestartMark::set(dir.path(), "web").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        assert_eq!(restarting(dir.path(), "web"), Some(std::process::id()));
        drop(mark);
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    }

    #[test]
    fn waiting_ends_with_the_restart_or_names_the_monitor() {
        let dir = tempfile::tempdir().unwrap();
        let none = wait_restarted(dir.path(), "web", Duration::from_secs(5));
        assert_eq!(none, Ok(false));

        let mark = RestartMark::set(dir.path(), "web").unwrap();
        let t = Instant::now();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(mark);
        });
        assert_eq!(
            wait_restarted(dir.path(), "web", Duration::from_secs(10)),
            Ok(true)
        );
        assert!(t.elapsed() >= Duration::from_millis(300));
        releaser.join().unwrap();

        let _mark = RestartMark::set(dir.path(), "web").unwrap();
        let err = wait_restarted(dir.path(), "web", Duration::from_millis(200)).unwrap_err();
        assert!(
            matches!(&err, RestartError::TimedOut { pid, .. } if *pid == std::process::id()),
            "{err}"
        );
        assert!(err.to_string().contains("rxl's monitor (pid"), "{err}");
    }
}
