//! The host-wide lock that makes name checks and domain creation atomic between rxl
//! processes.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// Held while it lives; released on drop (or when the process dies).
#[derive(Debug)]
pub struct HostLock {
    _lock: Flock<File>,
    path: PathBuf,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The lock file could not be created or opened.
    #[error("cannot open the lock file {path}: {source}")]
    Open {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// flock failed.
    #[error("cannot lock {path}: {errno}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// Why.
        errno: nix::errno::Errno,
    },
}

impl HostLock {
    /// Take the exclusive lock `dir/name.lock`, waiting for other holders. The directory
    /// is made as the state directory is ([`crate::state::DIR_MODE`]), the lock file with
    /// [`crate::state::FILE_MODE`]; a symbolic link at the lock path is refused, not followed
    /// (it could point at a file another process locks, or make rxl create one elsewhere).
    pub fn acquire(dir: &Path, name: &str) -> Result<HostLock, LockError> {
        let (file, path) = Self::open(dir, name)?;
        match Flock::lock(file, FlockArg::LockExclusive) {
            Ok(lock) => Ok(HostLock { _lock: lock, path }),
            Err((_, errno)) => Err(LockError::Lock { path, errno }),
        }
    }

    /// As [`HostLock::acquire`], without waiting: `Ok(None)` when another holder has it.
    pub fn try_acquire(dir: &Path, name: &str) -> Result<Option<HostLock>, LockError> {
        let (file, path) = Self::open(dir, name)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(HostLock { _lock: lock, path })),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, errno)) => Err(LockError::Lock { path, errno }),
        }
    }

    /// The lock file `dir/name.lock`, made if need be.
    fn open(dir: &Path, name: &str) -> Result<(File, PathBuf), LockError> {
        let path = dir.join(format!("{name}.lock"));
        if let Err(source) = crate::state::ensure_dir(dir, crate::state::DIR_MODE) {
            return Err(LockError::Open { path, source });
        }
        match crate::state::open_regular(
            &path,
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(crate::state::FILE_MODE),
        ) {
            Ok(f) => Ok((f, path)),
            Err(source) => Err(LockError::Open { path, source }),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_link_at_the_lock_path_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("target");
        std::fs::write(&target, b"precious").expect("target");
        let state = dir.path().join("rxl");
        std::fs::create_dir(&state).expect("state dir");
        std::os::unix::fs::symlink(&target, state.join("create.lock")).expect("link");
        let err = HostLock::acquire(&state, "create").unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read(&target).expect("target"), b"precious");
    }

    #[test]
    fn excludes_other_holders() {
        let dir = tempfile::tempdir().expect("temp dir");
        let inside = Arc::new(AtomicUsize::new(0));
        let max_inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (dir, inside, max_inside) =
                    (dir.path().to_path_buf(), inside.clone(), max_inside.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let _l = HostLock::acquire(&dir, "create").expect("lock");
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        max_inside.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(max_inside.load(Ordering::SeqCst), 1);
    }
}
