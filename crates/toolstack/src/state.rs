//! rxl's own per-domain records: the resolved config a domain was built from, kept so a
//! later rxl (the monitor restarting a guest, `rxl list -l`) can find it.
//!
//! One file per domain, `<state dir>/<domid>.json`, written atomically (temp + rename) and
//! removed when the domain is destroyed.
//!
//! Beside them, `<state dir>/recorded` holds the set of domains that have a record as one
//! bit per domain id (4 KiB), so a reader learns which domains are rxl's from one small
//! read instead of a listing that grows with the host. A bit is set after its record is
//! written and cleared before its record is removed, each by rewriting one byte in place
//! under the `recorded.lock` lock; a reader therefore never sees a bit without its record
//! (a process dying in between leaves a record without its bit, which only costs a reader
//! that relies on the set some work). When the file is missing or damaged the next save
//! or remove rebuilds it from the directory, and [`StateDir::recorded`] reads the
//! directory instead.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use xen_host::DomId;

use crate::lock::{HostLock, LockError};

/// The set of recorded domains, in the state directory.
const RECORDED_FILE: &str = "recorded";
/// Bytes of the set: one bit for each domain id below 32768 (Xen's ids end at 32751).
const RECORDED_BYTES: usize = 4096;

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
        source: std::io::Error,
    },
    /// The record is not valid JSON for the type.
    #[error("{path} is not a valid rxl domain record: {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// The lock of the set of recorded domains could not be taken.
    #[error("the set of recorded domains: {0}")]
    Lock(#[from] LockError),
}

/// A set of domain ids held as one bit per id, read and written as one block.
#[derive(Clone, PartialEq, Eq)]
pub struct DomIdSet {
    bits: Vec<u8>,
}

impl std::fmt::Debug for DomIdSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Default for DomIdSet {
    fn default() -> DomIdSet {
        DomIdSet {
            bits: vec![0; RECORDED_BYTES],
        }
    }
}

/// The byte and bit of `dom` in a set; `None` for ids the set cannot hold.
fn bit_of(dom: DomId) -> Option<(usize, u8)> {
    let i = usize::from(dom.0);
    (i / 8 < RECORDED_BYTES).then(|| (i / 8, 1u8 << (i % 8)))
}

impl DomIdSet {
    /// Whether `dom` is in the set.
    pub fn contains(&self, dom: DomId) -> bool {
        bit_of(dom).is_some_and(|(byte, bit)| self.bits.get(byte).is_some_and(|b| b & bit != 0))
    }

    /// Add or remove `dom` (ids from 32768 up cannot be held and are ignored).
    fn set(&mut self, dom: DomId, on: bool) {
        if let Some((byte, bit)) = bit_of(dom) {
            if let Some(b) = self.bits.get_mut(byte) {
                if on {
                    *b |= bit;
                } else {
                    *b &= !bit;
                }
            }
        }
    }

    /// The ids in the set, in order.
    pub fn iter(&self) -> impl Iterator<Item = DomId> + '_ {
        self.bits.iter().enumerate().flat_map(|(byte, &b)| {
            (0..8u16)
                .filter(move |bit| b & (1 << bit) != 0)
                .filter_map(move |bit| u16::try_from(byte * 8).ok().map(|base| DomId(base + bit)))
        })
    }
}

impl FromIterator<DomId> for DomIdSet {
    fn from_iter<I: IntoIterator<Item = DomId>>(ids: I) -> DomIdSet {
        let mut set = DomIdSet::default();
        for dom in ids {
            set.set(dom, true);
        }
        set
    }
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

    /// Store `record` for `dom`.
    pub fn save<T: Serialize>(&self, dom: DomId, record: &T) -> Result<(), StateError> {
        let path = self.record_path(dom);
        std::fs::create_dir_all(&self.dir).map_err(|source| StateError::Io {
            what: "cannot create",
            path: self.dir.clone(),
            source,
        })?;
        let text = serde_json::to_vec_pretty(record).map_err(|source| StateError::Format {
            path: path.clone(),
            source,
        })?;
        let tmp = self.dir.join(format!(".{dom}.json.{}", std::process::id()));
        std::fs::write(&tmp, text).map_err(|source| StateError::Io {
            what: "cannot write",
            path: tmp.clone(),
            source,
        })?;
        std::fs::rename(&tmp, &path).map_err(|source| StateError::Io {
            what: "cannot write",
            path: path.clone(),
            source,
        })?;
        // Without its bit the record is still found by a listing: a failure here only
        // makes readers of the set do more work.
        if let Err(e) = self.mark(dom, true) {
            tracing::warn!("domain {dom} is missing from the set of recorded domains: {e}");
        }
        Ok(())
    }

    /// The file holding the set of recorded domains.
    pub fn recorded_path(&self) -> PathBuf {
        self.dir.join(RECORDED_FILE)
    }

    /// The domains that have a record, from one read of the set file (or, when that is
    /// missing or damaged, from one listing of the directory). May miss a domain whose
    /// save was interrupted; never holds one whose record is gone.
    pub fn recorded(&self) -> DomIdSet {
        let mut bits = vec![0u8; RECORDED_BYTES];
        let whole = std::fs::File::open(self.recorded_path()).is_ok_and(|f| {
            f.metadata().is_ok_and(|m| m.len() == RECORDED_BYTES as u64)
                && f.read_exact_at(&mut bits, 0).is_ok()
        });
        if whole {
            DomIdSet { bits }
        } else {
            self.domains().into_iter().collect()
        }
    }

    /// Set or clear the bit of `dom` in the set file, rebuilding the file from the
    /// directory when it is missing or damaged.
    fn mark(&self, dom: DomId, on: bool) -> Result<(), StateError> {
        let Some((byte, bit)) = bit_of(dom) else {
            return Ok(());
        };
        let _lock = HostLock::acquire(&self.dir, RECORDED_FILE)?;
        let path = self.recorded_path();
        let io = |what: &'static str, source: std::io::Error| StateError::Io {
            what,
            path: path.clone(),
            source,
        };
        match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f)
                if f.metadata().map_err(|e| io("cannot read", e))?.len()
                    == RECORDED_BYTES as u64 =>
            {
                let offset = byte as u64;
                let mut old = [0u8];
                f.read_exact_at(&mut old, offset)
                    .map_err(|e| io("cannot read", e))?;
                let new = if on { old[0] | bit } else { old[0] & !bit };
                if new != old[0] {
                    f.write_all_at(&[new], offset)
                        .map_err(|e| io("cannot write", e))?;
                }
                Ok(())
            }
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("cannot open", e)),
            _ => {
                let mut set: DomIdSet = self.domains().into_iter().collect();
                set.set(dom, on);
                let tmp = self
                    .dir
                    .join(format!(".{RECORDED_FILE}.{}", std::process::id()));
                std::fs::write(&tmp, &set.bits).map_err(|source| StateError::Io {
                    what: "cannot write",
                    path: tmp.clone(),
                    source,
                })?;
                std::fs::rename(&tmp, &path).map_err(|e| io("cannot write", e))
            }
        }
    }

    /// The record of `dom`, `None` when there is none.
    pub fn load<T: DeserializeOwned>(&self, dom: DomId) -> Result<Option<T>, StateError> {
        let path = self.record_path(dom);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Io {
                    what: "cannot read",
                    path,
                    source,
                })
            }
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

    /// Remove the record of `dom` (no error if there is none).
    pub fn remove(&self, dom: DomId) -> Result<(), StateError> {
        let path = self.record_path(dom);
        let present = path.exists();
        // The bit goes first, so the set never names a domain without a record (and a
        // bit whose record was deleted by hand goes too).
        if present || self.recorded().contains(dom) {
            self.mark(dom, false)?;
        }
        if !present {
            return Ok(());
        }
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
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
    fn the_recorded_set_follows_saves_and_removes() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let state = StateDir::new(tmp.path().join("rxl"));
        assert_eq!(state.recorded(), DomIdSet::default());
        for id in [1, 7, 8, 300, 32751] {
            state.save(DomId(id), &id)?;
        }
        let ids = |set: DomIdSet| set.iter().map(|d| d.0).collect::<Vec<_>>();
        assert_eq!(ids(state.recorded()), vec![1, 7, 8, 300, 32751]);
        assert_eq!(
            std::fs::metadata(state.recorded_path())?.len(),
            RECORDED_BYTES as u64
        );
        state.remove(DomId(7))?;
        state.remove(DomId(9))?;
        assert_eq!(ids(state.recorded()), vec![1, 8, 300, 32751]);
        assert!(state.recorded().contains(DomId(8)));
        assert!(!state.recorded().contains(DomId(7)));
        assert!(!state.recorded().contains(DomId(0xffff)));
        Ok(())
    }

    #[test]
    fn a_missing_or_damaged_set_is_read_from_the_directory_and_rebuilt(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let state = StateDir::new(tmp.path().join("rxl"));
        state.save(DomId(4), &4)?;
        state.save(DomId(5), &5)?;
        let ids = |set: DomIdSet| set.iter().map(|d| d.0).collect::<Vec<_>>();
        // Records written before the set existed (or after it was lost).
        std::fs::remove_file(state.recorded_path())?;
        std::fs::write(state.record_path(DomId(6)), b"6")?;
        assert_eq!(ids(state.recorded()), vec![4, 5, 6]);
        state.save(DomId(2), &2)?;
        assert_eq!(ids(state.recorded()), vec![2, 4, 5, 6]);
        std::fs::write(state.record_path(DomId(9)), b"9")?;
        assert_eq!(
            ids(state.recorded()),
            vec![2, 4, 5, 6],
            "the rebuilt file is read, not the directory"
        );
        // A truncated file is not trusted, and is rebuilt by the next change.
        std::fs::write(state.recorded_path(), [0xffu8; 10])?;
        assert_eq!(ids(state.recorded()), vec![2, 4, 5, 6, 9]);
        state.remove(DomId(5))?;
        assert_eq!(ids(state.recorded()), vec![2, 4, 6, 9]);
        // A record deleted by hand: removing it still clears its bit.
        std::fs::remove_file(state.record_path(DomId(6)))?;
        state.remove(DomId(6))?;
        assert_eq!(ids(state.recorded()), vec![2, 4, 9]);
        assert_eq!(
            std::fs::metadata(state.recorded_path())?.len(),
            RECORDED_BYTES as u64
        );
        Ok(())
    }
}
