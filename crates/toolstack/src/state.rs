//! rxl's own per-domain records: the resolved config a domain was built from, kept so a
//! later rxl (the monitor restarting a guest, `rxl list -l`) can find it.
//!
//! One file per domain, `<state dir>/<domid>.json`, written atomically (temp + rename) and
//! removed when the domain is destroyed.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use xen_host::DomId;

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
        })
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
}
