//! Names whose guest the monitor is restarting.
//!
//! When a guest reboots (or crashes with `on_crash = "restart"`), the monitor destroys the
//! domain and builds a new one from the stored config. In between no domain carries the
//! name, and under emulation or with a large kernel that takes seconds: a `rxl destroy NAME`
//! then would find nothing, and the guest would come back a moment later (xl behaves so).
//! The monitor therefore marks the name for the whole restart, in
//! `<state dir>/restarting/<name in hex>`, holding its pid and the start time of its
//! process (so that a mark left by a monitor that died, whose pid was reused, is not
//! trusted). Commands that look a domain up by name wait for the mark to go
//! ([`wait_restarted`]); a create of that name is refused while it is there.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::names::file_name;

/// The mark of one restart; removed when dropped.
#[derive(Debug)]
pub struct RestartMark {
    path: PathBuf,
}

fn mark_path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join("restarting").join(file_name(name))
}

/// The start time of process `pid` (field 22 of /proc/PID/stat, in clock ticks since boot).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl RestartMark {
    /// Marks `name` as being restarted by this process.
    pub fn set(state_dir: &Path, name: &str) -> io::Result<RestartMark> {
        let path = mark_path(state_dir, name);
        let dir = path.parent().unwrap_or(state_dir);
        std::fs::create_dir_all(dir)?;
        let pid = std::process::id();
        let tmp = dir.join(format!(".{}.{pid}", file_name(name)));
        std::fs::write(&tmp, format!("{pid} {}\n", start_time(pid).unwrap_or(0)))?;
        std::fs::rename(&tmp, &path)?;
        Ok(RestartMark { path })
    }
}

impl Drop for RestartMark {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The pid of the live process restarting `name`'s guest, if one is.
pub fn restarting(state_dir: &Path, name: &str) -> Option<u32> {
    let text = std::fs::read_to_string(mark_path(state_dir, name)).ok()?;
    let mut words = text.split_whitespace();
    let pid: u32 = words.next()?.parse().ok()?;
    let started: u64 = words.next()?.parse().ok()?;
    (start_time(pid)? == started).then_some(pid)
}

/// Whether a restart of `name`'s guest was under way: when one is, waits until it is over
/// (`Ok(true)`: look the name up again) or `timeout` passes (an error naming the
/// monitor); `Ok(false)` when there is none.
pub fn wait_restarted(state_dir: &Path, name: &str, timeout: Duration) -> Result<bool, String> {
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
    Err(format!(
        "{name} is being restarted by rxl's monitor (pid {pid}) and did not come back \
         within {} s",
        timeout.as_secs()
    ))
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
            err.contains(&format!("rxl's monitor (pid {})", std::process::id())),
            "{err}"
        );
    }
}
