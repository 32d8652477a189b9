//! A content-addressed cache of decoded kernels.
//!
//! Decompressing a bzImage payload (xz, 8 MB -> 66 MB for Debian's kernel) is most of the
//! time a boot plan takes. The cache keeps the decoded bytes in one file per payload, named
//! by the SHA-256 of the compressed payload's bytes (never by path or mtime): a guest that
//! supplies its own kernel cannot make another payload's key. Each entry holds a header
//! (magic, the XXH3-128 checksum of the decoded bytes, their length) and the decoded bytes;
//! the checksum is checked before every use, and an entry that fails the check (torn,
//! truncated, flipped byte) is removed and the payload decoded again. The checksum guards
//! against damage, not against an adversary: only root can write the directory (checked at
//! open). It is not SHA-256 because a hit checks tens of megabytes: under QEMU's TCG
//! (the rig), SHA-256 of Debian's 66 MB decoded kernel took longer than decoding it, while
//! XXH3 is several times cheaper (docs/benchmarks.md, "kernel cache").
//!
//! The directory must belong to the effective user (root on a real host) and be writable by
//! nobody else; it is opened with `O_NOFOLLOW` and checked with `fstat`, so a symlink there
//! is refused. Entries are written to a temp file in the same directory (`KEY.tmp.PID`) and
//! renamed into place, without an fsync: an entry that a crash left torn or empty fails its
//! digest at the next lookup and is decoded again, so durability would buy nothing but the
//! wait. A miss stores its entry on a thread of its own ([`KernelCache::store_in_background`])
//! while the create goes on; [`wait_for_stores`] lets a process finish those writes before it
//! exits. A `KEY.lock` created with `O_EXCL` makes a second writer of the same key skip. Temp and lock files whose writer process is gone are removed when
//! the cache is opened. The total size is bounded: after a store the least recently used
//! entries (by mtime, which a hit refreshes) are removed until the total fits; an entry
//! larger than the bound is not stored.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::SystemTime;

use nix::libc;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Default bound on the cache's total size: 512 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 512 << 20;

/// The default directory on a real host.
pub const DEFAULT_DIR: &str = "/var/cache/rxl/kernels";

/// The entry format: magic, XXH3-128 of the decoded bytes (little-endian), their length.
/// (Format 001 had SHA-256 there; its entries fail the magic and are decoded again.)
const MAGIC: &[u8; 8] = b"RXLKC002";
const HEADER_LEN: usize = 8 + 16 + 8;
/// An empty lock file older than this is a dead writer's.
const STALE_EMPTY_LOCK_SECS: u64 = 60;

/// A cache key: the SHA-256 of a compressed payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key([u8; 32]);

impl Key {
    /// The key of `compressed`.
    pub fn of(compressed: &[u8]) -> Key {
        Key(Sha256::digest(compressed).into())
    }

    /// Lower-case hex, the entry's file name.
    pub fn hex(&self) -> String {
        hex(&self.0)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why the cache could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A file operation failed.
    #[error("kernel cache {path}: cannot {op}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The directory is not safe to trust.
    #[error("kernel cache {path}: refused: {why}")]
    Unsafe {
        /// The directory.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> CacheError + 'a {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// One entry, as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The key (hex SHA-256 of the compressed payload).
    pub hash: String,
    /// The entry file's size in bytes (header and decoded kernel).
    pub size: u64,
    /// Last use (store or hit), seconds since the Unix epoch.
    pub last_use: u64,
}

/// What a store did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// The entry was written.
    Written,
    /// Larger than the cache's bound: not stored.
    TooLarge,
    /// Another writer holds the key's lock: skipped.
    Busy,
}

/// An opened (checked) cache directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelCache {
    dir: PathBuf,
    max_bytes: u64,
}

/// The stores [`KernelCache::store_in_background`] started and nobody waited for yet.
static PENDING: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());

/// Waits until every entry stored in the background by this process is written (or given
/// up). A process that exits without it may leave an entry unwritten, never a bad one.
pub fn wait_for_stores() {
    let handles = match PENDING.lock() {
        Ok(mut pending) => std::mem::take(&mut *pending),
        Err(_) => return,
    };
    for h in handles {
        let _ = h.join();
    }
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn pid_alive(pid: &str) -> bool {
    pid.parse::<u32>().is_ok() && Path::new("/proc").join(pid).exists()
}

fn open_nofollow(path: &Path, write: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

fn new_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

fn is_key_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

impl KernelCache {
    /// Opens the cache in `dir`, creating it (mode 0700) if it does not exist. Refused when
    /// `dir` is a symlink, not a directory, owned by another user or group/other-writable.
    /// Temp and lock files left by dead writers are removed.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<KernelCache, CacheError> {
        if let Some(parent) = dir.parent() {
            if !parent.as_os_str().is_empty() {
                fs::create_dir_all(parent).map_err(io_err(parent, "create the parent"))?;
            }
        }
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(dir, "create the directory")(e)),
        }
        let d = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(dir)
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) || e.raw_os_error() == Some(libc::ENOTDIR)
                {
                    CacheError::Unsafe {
                        path: dir.to_path_buf(),
                        why: "it is a symlink or not a directory".to_string(),
                    }
                } else {
                    io_err(dir, "open the directory")(e)
                }
            })?;
        let meta = d.metadata().map_err(io_err(dir, "stat the directory"))?;
        let unsafe_dir = |why: String| CacheError::Unsafe {
            path: dir.to_path_buf(),
            why,
        };
        if meta.uid() != euid() {
            return Err(unsafe_dir(format!(
                "it is owned by uid {}, not by uid {} (chown it or remove it)",
                meta.uid(),
                euid()
            )));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(unsafe_dir(format!(
                "it is group or other writable (mode {:o}; chmod 0700 it)",
                meta.mode() & 0o7777
            )));
        }
        let cache = KernelCache {
            dir: dir.to_path_buf(),
            max_bytes,
        };
        cache.clean_dead_writers()?;
        Ok(cache)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bound on the total size.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn entry_path(&self, key: &Key) -> PathBuf {
        self.dir.join(key.hex())
    }

    fn names(&self) -> Result<Vec<String>, CacheError> {
        let rd = fs::read_dir(&self.dir).map_err(io_err(&self.dir, "list the directory"))?;
        let mut names = Vec::new();
        for e in rd {
            let e = e.map_err(io_err(&self.dir, "list the directory"))?;
            if let Ok(n) = e.file_name().into_string() {
                names.push(n);
            }
        }
        Ok(names)
    }

    /// Removes `KEY.tmp.PID` and `KEY.lock` files whose writer is no longer running.
    fn clean_dead_writers(&self) -> Result<(), CacheError> {
        for name in self.names()? {
            let dead = if let Some((_, pid)) = name.split_once(".tmp.") {
                !pid_alive(pid)
            } else if name.ends_with(".lock") {
                let path = self.dir.join(&name);
                let pid = fs::read_to_string(&path).unwrap_or_default();
                if pid.trim().is_empty() {
                    // Created but its pid not written yet, unless it has been empty for a
                    // while (a writer that died in between).
                    fs::symlink_metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age.as_secs() > STALE_EMPTY_LOCK_SECS)
                } else {
                    !pid_alive(pid.trim())
                }
            } else {
                false
            };
            if dead {
                let p = self.dir.join(&name);
                match fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&p, "remove a dead writer's file")(e)),
                }
            }
        }
        Ok(())
    }

    /// The decoded bytes stored under `key`, checked against their digest; `None` on a miss.
    /// An entry that fails the check is removed (and is a miss). A hit refreshes the entry's
    /// last use.
    pub fn lookup(&self, key: &Key) -> Option<Vec<u8>> {
        let path = self.entry_path(key);
        let mut f = open_nofollow(&path, true).ok()?;
        match read_entry(&mut f) {
            Some(bytes) => {
                // Last use, for eviction; failing to record it is not worth a miss.
                let _ = f.set_modified(SystemTime::now());
                Some(bytes)
            }
            None => {
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores `decoded` under `key`, then evicts least recently used entries until the
    /// total fits the bound.
    pub fn store(&self, key: &Key, decoded: &[u8]) -> Result<Stored, CacheError> {
        let total = decoded.len() as u64 + HEADER_LEN as u64;
        if total > self.max_bytes {
            return Ok(Stored::TooLarge);
        }
        let name = key.hex();
        let lock_path = self.dir.join(format!("{name}.lock"));
        let mut lock = match new_file(&lock_path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(Stored::Busy),
            Err(e) => return Err(io_err(&lock_path, "create the lock")(e)),
        };
        let result = (|| {
            lock.write_all(std::process::id().to_string().as_bytes())
                .map_err(io_err(&lock_path, "write the lock"))?;
            let tmp = self.dir.join(format!("{name}.tmp.{}", std::process::id()));
            let written = (|| {
                let mut f = new_file(&tmp)?;
                let mut header = Vec::with_capacity(HEADER_LEN);
                header.extend_from_slice(MAGIC);
                header.extend_from_slice(&checksum(decoded));
                header.extend_from_slice(&(decoded.len() as u64).to_le_bytes());
                f.write_all(&header)?;
                f.write_all(decoded)?;
                fs::rename(&tmp, self.dir.join(&name))
            })();
            if let Err(e) = written {
                let _ = fs::remove_file(&tmp);
                return Err(io_err(&tmp, "write the entry")(e));
            }
            self.evict(Some(&name))
        })();
        let _ = fs::remove_file(&lock_path);
        result.map(|()| Stored::Written)
    }

    /// [`KernelCache::store`] on a thread of its own, so that a miss costs the caller no more
    /// than the decode; [`wait_for_stores`] waits for every such thread.
    pub fn store_in_background(&self, key: Key, decoded: Arc<Vec<u8>>) {
        let cache = self.clone();
        let spawned = std::thread::Builder::new()
            .name("kernel-cache-store".into())
            .spawn(move || {
                let _ = cache.store(&key, &decoded);
            });
        // No thread: the entry is simply not stored (the next create decodes again).
        if let Ok(handle) = spawned {
            if let Ok(mut pending) = PENDING.lock() {
                pending.push(handle);
            }
        }
    }

    /// Removes least recently used entries (never `keep`) until the total fits the bound.
    fn evict(&self, keep: Option<&str>) -> Result<(), CacheError> {
        let mut entries = self.list()?;
        let mut total: u64 = entries.iter().map(|e| e.size).sum();
        entries.sort_by_key(|e| e.last_use);
        for e in entries {
            if total <= self.max_bytes {
                break;
            }
            if Some(e.hash.as_str()) == keep {
                continue;
            }
            let p = self.dir.join(&e.hash);
            match fs::remove_file(&p) {
                Ok(()) => total -= e.size,
                Err(err) if err.kind() == io::ErrorKind::NotFound => total -= e.size,
                Err(err) => return Err(io_err(&p, "evict an entry")(err)),
            }
        }
        Ok(())
    }

    /// The entries, least recently used first.
    pub fn list(&self) -> Result<Vec<Entry>, CacheError> {
        let mut out = Vec::new();
        for name in self.names()? {
            if !is_key_name(&name) {
                continue;
            }
            let p = self.dir.join(&name);
            let meta = match fs::symlink_metadata(&p) {
                Ok(m) if m.is_file() => m,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&p, "stat an entry")(e)),
            };
            let last_use = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            out.push(Entry {
                hash: name,
                size: meta.len(),
                last_use,
            });
        }
        out.sort_by(|a, b| a.last_use.cmp(&b.last_use).then(a.hash.cmp(&b.hash)));
        Ok(out)
    }

    /// Removes every entry (and dead writers' files); returns how many entries went.
    pub fn clear(&self) -> Result<usize, CacheError> {
        self.clean_dead_writers()?;
        let mut n = 0;
        for e in self.list()? {
            let p = self.dir.join(&e.hash);
            match fs::remove_file(&p) {
                Ok(()) => n += 1,
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(io_err(&p, "remove an entry")(err)),
            }
        }
        Ok(n)
    }
}

/// The checksum of an entry's decoded bytes.
fn checksum(decoded: &[u8]) -> [u8; 16] {
    xxhash_rust::xxh3::xxh3_128(decoded).to_le_bytes()
}

/// Reads and checks an entry; `None` if it is torn or corrupt.
fn read_entry(f: &mut File) -> Option<Vec<u8>> {
    let meta = f.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let mut header = [0u8; HEADER_LEN];
    f.read_exact(&mut header).ok()?;
    if &header[..8] != MAGIC {
        return None;
    }
    let len = u64::from_le_bytes(header[24..32].try_into().ok()?);
    if meta.len() != len.checked_add(HEADER_LEN as u64)? {
        return None;
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).ok()?);
    f.take(len).read_to_end(&mut bytes).ok()?;
    if bytes.len() as u64 != len || checksum(&bytes)[..] != header[8..24] {
        return None;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests;
