//! rxl's own per-domain records: the resolved config a domain was built from, kept so a
//! later rxl (the monitor restarting a guest, `rxl list -l`) can find it, and the file
//! handling every file rxl keeps in its state and log directories goes through.
//!
//! One record per domain, `<state dir>/<domid>.json`, removed when the domain is destroyed.
//!
//! Files are written so that a umask or a planted symbolic link changes nothing:
//! - directories are made with [`DIR_MODE`] (logs: [`LOG_DIR_MODE`]) and set to it when
//!   they exist with another mode; a directory that is a symbolic link is refused;
//! - a file is written to a fresh temporary name opened with `O_CREAT | O_EXCL |
//!   O_NOFOLLOW` and mode [`FILE_MODE`] (set again with `fchmod`, so the umask cannot widen
//!   or narrow it), then renamed over the final name: a symbolic link planted at the final
//!   name is replaced, never followed;
//! - a file is read or opened in place with `O_NOFOLLOW | O_NONBLOCK` and must be a regular
//!   file: a link or a FIFO planted there is an error naming the path.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::OFlag;
use serde::de::DeserializeOwned;
use serde::Serialize;
use xen_host::DomId;

/// Mode of rxl's state directory and the directories in it: only root looks inside.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file in the state directory (records hold the guest's cmdline).
pub const FILE_MODE: u32 = 0o600;
/// Mode of the monitor log directory.
pub const LOG_DIR_MODE: u32 = 0o755;
/// Mode of a monitor log.
pub const LOG_MODE: u32 = 0o640;

/// Why a record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// File system error.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The record is not valid JSON for the type.
    #[error("{path} is not a valid rxl domain record: {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}

impl StateError {
    /// The errno of a file system error.
    pub fn errno(&self) -> Option<i32> {
        match self {
            StateError::Io { source, .. } => source.raw_os_error(),
            StateError::Format { .. } => None,
        }
    }
}

/// Words for an error of `path` that say what rxl refused and why.
fn explain(path: &Path, e: io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(nix::libc::ELOOP) => io::Error::new(
            e.kind(),
            format!(
                "{} is a symbolic link; rxl does not follow links in its own directories \
                 (remove it)",
                path.display()
            ),
        ),
        Some(nix::libc::ENXIO) => io::Error::new(
            e.kind(),
            format!("{} is not a regular file (remove it)", path.display()),
        ),
        _ => e,
    }
}

/// Makes `dir` a real directory with `mode` (its parents as the system has them), whatever
/// the umask. A symbolic link there is refused.
pub(crate) fn ensure_dir(dir: &Path, mode: u32) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            match std::fs::DirBuilder::new().mode(mode).create(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            std::fs::symlink_metadata(dir)?
        }
        Err(e) => return Err(e),
    };
    if meta.file_type().is_symlink() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is a symbolic link; rxl does not follow links for its own directories \
                 (remove it)",
                dir.display()
            ),
        ));
    }
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a directory", dir.display()),
        ));
    }
    if meta.mode() & 0o7777 != mode {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Opens `path` without following a symbolic link and without blocking on a FIFO; it must
/// be a regular file.
pub(crate) fn open_regular(path: &Path, opts: &mut OpenOptions) -> io::Result<File> {
    let file = opts
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
        .open(path)
        .map_err(|e| explain(path, e))?;
    if !file.metadata()?.is_file() {
        return Err(explain(
            path,
            io::Error::from_raw_os_error(nix::libc::ENXIO),
        ));
    }
    Ok(file)
}

/// The bytes of the regular file `path`; `None` when there is none. A link there is an
/// error.
pub(crate) fn read_file(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match open_regular(path, OpenOptions::new().read(true)) {
        Ok(mut f) => {
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes)?;
            Ok(Some(bytes))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Tells apart the temporary files of threads of one process.
static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `dir/name` with mode `mode`: a new temporary file (`O_EXCL |
/// O_NOFOLLOW`) renamed into place, so that a reader sees the old or the new content and a
/// symbolic link at `dir/name` is replaced, not followed. `dir` must exist.
pub(crate) fn write_file(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> io::Result<()> {
    let path = dir.join(name);
    let seq = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{seq}", std::process::id()));
    let create = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits())
            .open(&tmp)
    };
    let mut file = match create() {
        // Left by a dead process that had this pid: not ours to keep.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(&tmp)?;
            create()
        }
        r => r,
    }
    .map_err(|e| explain(&tmp, e))?;
    let written = file
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|()| file.write_all(bytes))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Makes the log directory `dir` (mode [`LOG_DIR_MODE`]; a symbolic link is refused).
pub(crate) fn ensure_log_dir(dir: &Path) -> io::Result<()> {
    ensure_dir(dir, LOG_DIR_MODE)
}

/// Opens the monitor log of the domain called `name` in `dir` for appending: the file
/// `<name in hex>.log` (any name makes a plain file name), mode [`LOG_MODE`], never through
/// a symbolic link; `dir` is made with [`LOG_DIR_MODE`]. Returns the file and its path.
pub fn open_log(dir: &Path, name: &str) -> Result<(File, PathBuf), StateError> {
    open_log_file(dir, &format!("{}.log", crate::names::file_name(name)))
}

/// Opens the log file `file` in `dir` as [`open_log`] does (the host monitor's
/// `monitord.log`).
pub fn open_log_file(dir: &Path, file: &str) -> Result<(File, PathBuf), StateError> {
    ensure_dir(dir, LOG_DIR_MODE).map_err(|source| StateError::Io {
        what: "cannot create the log directory",
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(file);
    let file = open_regular(
        &path,
        OpenOptions::new().append(true).create(true).mode(LOG_MODE),
    )
    .and_then(|f| {
        f.set_permissions(std::fs::Permissions::from_mode(LOG_MODE))?;
        Ok(f)
    })
    .map_err(|source| StateError::Io {
        what: "cannot open the log",
        path: path.clone(),
        source,
    })?;
    Ok((file, path))
}

/// The directory of per-domain records.
#[derive(Clone, Debug)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// Records under `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> StateDir {
        StateDir { dir: dir.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The record file of `dom`.
    pub fn record_path(&self, dom: DomId) -> PathBuf {
        self.dir.join(format!("{dom}.json"))
    }

    /// Store `record` for `dom` (mode [`FILE_MODE`]).
    pub fn save<T: Serialize>(&self, dom: DomId, record: &T) -> Result<(), StateError> {
        let path = self.record_path(dom);
        ensure_dir(&self.dir, DIR_MODE).map_err(|source| StateError::Io {
            what: "cannot create",
            path: self.dir.clone(),
            source,
        })?;
        let text = serde_json::to_vec_pretty(record).map_err(|source| StateError::Format {
            path: path.clone(),
            source,
        })?;
        write_file(&self.dir, &format!("{dom}.json"), &text, FILE_MODE).map_err(|source| {
            StateError::Io {
                what: "cannot write",
                path,
                source,
            }
        })
    }

    /// The record of `dom`, `None` when there is none.
    pub fn load<T: DeserializeOwned>(&self, dom: DomId) -> Result<Option<T>, StateError> {
        let path = self.record_path(dom);
        let Some(text) = read_file(&path).map_err(|source| StateError::Io {
            what: "cannot read",
            path: path.clone(),
            source,
        })?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|source| StateError::Format { path, source })
    }

    /// Every domain that has a record, from one read of the directory.
    pub fn domains(&self) -> std::collections::BTreeSet<DomId> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Default::default();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                let id = name.to_str()?.strip_suffix(".json")?.parse::<u16>().ok()?;
                Some(DomId(id))
            })
            .collect()
    }

    /// Whether `dom` has a record (a link planted there is not one).
    pub fn has_record(&self, dom: DomId) -> bool {
        std::fs::symlink_metadata(self.record_path(dom)).is_ok_and(|m| m.is_file())
    }

    /// Remove the record of `dom` (no error if there is none).
    pub fn remove(&self, dom: DomId) -> Result<(), StateError> {
        let path = self.record_path(dom);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StateError::Io {
                what: "cannot remove",
                path,
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_remove() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let state = StateDir::new(tmp.path().join("rxl"));
        assert_eq!(state.load::<Vec<u32>>(DomId(3))?, None);
        state.save(DomId(3), &vec![1u32, 2, 3])?;
        assert_eq!(state.load::<Vec<u32>>(DomId(3))?, Some(vec![1, 2, 3]));
        std::fs::write(state.record_path(DomId(4)), b"{not json")?;
        assert!(matches!(
            state.load::<Vec<u32>>(DomId(4)),
            Err(StateError::Format { .. })
        ));
        assert_eq!(
            state.domains().into_iter().collect::<Vec<_>>(),
            vec![DomId(3), DomId(4)]
        );
        state.remove(DomId(3))?;
        state.remove(DomId(3))?;
        assert_eq!(state.load::<Vec<u32>>(DomId(3))?, None);
        Ok(())
    }

    #[test]
    fn modes_are_explicit_and_links_are_not_followed() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let state = StateDir::new(tmp.path().join("rxl"));
        state.save(DomId(1), &1)?;
        let mode = |p: &Path| std::fs::metadata(p).map(|m| m.mode() & 0o7777);
        assert_eq!(mode(state.path())?, DIR_MODE);
        assert_eq!(mode(&state.record_path(DomId(1)))?, FILE_MODE);

        // A link planted at a record path is replaced by the save, its target untouched.
        let target = tmp.path().join("target");
        std::fs::write(&target, b"precious")?;
        std::os::unix::fs::symlink(&target, state.record_path(DomId(2)))?;
        let err = state.load::<u32>(DomId(2)).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        state.save(DomId(2), &2)?;
        assert_eq!(std::fs::read(&target)?, b"precious");
        assert_eq!(state.load::<u32>(DomId(2))?, Some(2));

        // A state directory that is a link is refused.
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere)?;
        std::os::unix::fs::symlink(&elsewhere, tmp.path().join("linked"))?;
        let linked = StateDir::new(tmp.path().join("linked"));
        let err = linked.save(DomId(1), &1).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_dir(&elsewhere)?.count(), 0);
        Ok(())
    }

    #[test]
    fn logs_are_hex_named_and_never_opened_through_a_link() -> Result<(), Box<dyn std::error::Error>>
    {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("log");
        let (mut f, path) = open_log(&dir, "../../x")?;
        f.write_all(b"hello\n")?;
        assert_eq!(path, dir.join("2e2e2f2e2e2f78.log"));
        let mode = |p: &Path| std::fs::metadata(p).map(|m| m.mode() & 0o7777);
        assert_eq!(mode(&path)?, LOG_MODE);
        assert_eq!(mode(&dir)?, LOG_DIR_MODE);
        let target = tmp.path().join("target");
        std::fs::write(&target, b"precious")?;
        std::os::unix::fs::symlink(&target, dir.join("776562.log"))?;
        let err = open_log(&dir, "web").unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read(&target)?, b"precious");
        nix::unistd::mkfifo(&dir.join("6669666f.log"), nix::sys::stat::Mode::S_IRWXU)?;
        let err = open_log(&dir, "fifo").unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        Ok(())
    }

    #[test]
    fn no_name_places_a_log_outside_its_directory() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("log");
        for name in ["../x", "../../../../x", "/etc/x", "a/b", ".."] {
            let (_, path) = open_log(&dir, name)?;
            assert_eq!(path.parent(), Some(dir.as_path()), "{name}");
            let file = path
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or_default();
            let hex = file.strip_suffix(".log").unwrap_or_default();
            assert!(
                !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()),
                "{file}"
            );
        }
        let outside: Vec<_> = std::fs::read_dir(tmp.path())?
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(outside, vec![std::ffi::OsString::from("log")]);
        Ok(())
    }

    #[test]
    fn a_log_has_mode_0640_whatever_the_umask() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("log");
        // A umask that would give 0600, and one that would give 0666.
        for umask in [0o077, 0o000] {
            let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
            let opened = open_log(&dir, &format!("guest{umask}"));
            nix::sys::stat::umask(old);
            let (log, _) = opened?;
            assert_eq!(log.metadata()?.mode() & 0o777, LOG_MODE, "umask {umask:o}");
        }
        Ok(())
    }
}
