//! The hotplug scripts' named locks (tools/hotplug/Linux/locking.sh), taken the same way
//! so that rxl's native path and scripts run by xl or by rxl exclude each other: open
//! (creating) `/var/run/xen-hotplug/NAME`, `flock` it exclusively, and keep it only if
//! the path still names the locked file (a releaser removes the file before closing it,
//! so a waiter may have locked a file that is already gone). Release removes the file,
//! then closes it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

/// Where the scripts keep their locks (`LOCK_BASEDIR`).
pub const LOCK_DIR: &str = "/var/run/xen-hotplug";

/// A held lock; released (file removed, then closed) on drop.
#[derive(Debug)]
pub struct HotplugLock {
    path: PathBuf,
    file: Option<Flock<File>>,
}

/// How often a busy lock is tried again.
const RETRY: Duration = Duration::from_millis(5);

impl HotplugLock {
    /// Take the lock `name` in `dir`, waiting at most until `deadline`.
    pub fn acquire(dir: &Path, name: &str, deadline: Instant) -> io::Result<HotplugLock> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(name);
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
                .open(&path)?;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(locked) => {
                    let fd_meta = locked.metadata()?;
                    match std::fs::symlink_metadata(&path) {
                        Ok(m) if m.dev() == fd_meta.dev() && m.ino() == fd_meta.ino() => {
                            return Ok(HotplugLock {
                                path,
                                file: Some(locked),
                            });
                        }
                        // Removed or replaced by the holder we waited for: again.
                        _ => drop(locked),
                    }
                }
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                    if Instant::now() >= deadline {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("lock {} still held by another process", path.display()),
                        ));
                    }
                    std::thread::sleep(RETRY);
                }
                Err((_, e)) => return Err(io::Error::from(e)),
            }
        }
    }
}

impl Drop for HotplugLock {
    fn drop(&mut self) {
        // As the scripts' release_lock: remove the file while still holding it.
        let _ = std::fs::remove_file(&self.path);
        drop(self.file.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_waits_for_the_first_and_times_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let far = Instant::now() + Duration::from_secs(10);
        let held = HotplugLock::acquire(dir.path(), "block", far).expect("first");
        let t0 = Instant::now();
        let e = HotplugLock::acquire(
            dir.path(),
            "block",
            Instant::now() + Duration::from_millis(50),
        )
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(t0.elapsed() >= Duration::from_millis(50));
        drop(held);
        assert!(
            !dir.path().join("block").exists(),
            "released lock file stays"
        );
        let again = HotplugLock::acquire(dir.path(), "block", far).expect("after release");
        drop(again);
    }

    #[test]
    fn a_waiter_gets_the_lock_when_the_holder_releases_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let far = Instant::now() + Duration::from_secs(10);
        let held = HotplugLock::acquire(dir.path(), "block", far).expect("first");
        let d = dir.path().to_owned();
        let waiter = std::thread::spawn(move || HotplugLock::acquire(&d, "block", far).is_ok());
        std::thread::sleep(Duration::from_millis(30));
        drop(held);
        assert!(waiter.join().expect("waiter"));
    }
}
