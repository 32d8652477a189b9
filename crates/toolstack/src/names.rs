//! Whether a domain name is taken, in time that does not grow with the number of domains
//! rxl created.
//!
//! Names live in xenstore (`/local/domain/<id>/name`), so the plain check reads every
//! domain's name: xl's cost grows with the host. rxl keeps an index, one file per name in
//! `<state dir>/names/`, holding the domain id, written under the host lock when a create
//! reserves the name and removed on destroy. A check then costs:
//! - one index lookup, confirmed against Xen and xenstore (a stale entry is dropped);
//! - one xenstore `directory` of `/local/domain`, and a name read only for the domains rxl
//!   has no record of (Domain-0, domains other toolstacks made), so those names are seen
//!   too. A domain without a xenstore directory has no name to collide with.

use std::path::{Path, PathBuf};

use xen_host::{DomId, Hypervisor, Result, Store, TxId};

use crate::domains::name_of;
use crate::state::StateDir;

/// The name index.
#[derive(Clone, Debug)]
pub struct NameIndex {
    dir: PathBuf,
    records: StateDir,
}

/// A file name for any domain name: the name's bytes in hex (names may hold characters a
/// file name cannot).
fn file_name(name: &str) -> String {
    name.bytes().map(|b| format!("{b:02x}")).collect()
}

impl NameIndex {
    /// The index under `state_dir` (the same directory as the domain records).
    pub fn new(state_dir: &Path) -> NameIndex {
        NameIndex {
            dir: state_dir.join("names"),
            records: StateDir::new(state_dir),
        }
    }

    fn entry(&self, name: &str) -> PathBuf {
        self.dir.join(file_name(name))
    }

    /// The id the index gives for `name`, if any.
    fn lookup(&self, name: &str) -> Option<DomId> {
        let text = std::fs::read_to_string(self.entry(name)).ok()?;
        text.trim().parse::<u16>().ok().map(DomId)
    }

    /// Record that `dom` is called `name`.
    pub fn insert(&self, name: &str, dom: DomId) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self
            .dir
            .join(format!(".{}.{}", file_name(name), std::process::id()));
        std::fs::write(&tmp, dom.to_string())?;
        std::fs::rename(&tmp, self.entry(name))
    }

    /// Forget `name` if the index gives it to `dom`.
    pub fn remove(&self, name: &str, dom: DomId) {
        if self.lookup(name) == Some(dom) {
            let _ = std::fs::remove_file(self.entry(name));
        }
    }

    /// The domain called `name`, if one exists. Call it under the host lock to make the
    /// answer hold until the name is inserted.
    pub fn find<H, S>(&self, hv: &H, xs: &S, name: &str) -> Result<Option<DomId>>
    where
        H: Hypervisor + ?Sized,
        S: Store + ?Sized,
    {
        // A dying domain (being destroyed) no longer holds its name.
        let alive =
            |dom: DomId| -> Result<bool> { Ok(hv.domain_info(dom)?.is_some_and(|i| !i.dying)) };
        if let Some(dom) = self.lookup(name) {
            if alive(dom)? && name_of(xs, dom)?.as_deref() == Some(name) {
                return Ok(Some(dom));
            }
            // The domain is gone or renamed: the entry is stale.
            let _ = std::fs::remove_file(self.entry(name));
        }
        let ids = xs
            .directory(TxId::NONE, "/local/domain")?
            .unwrap_or_default();
        for id in ids {
            let Ok(dom) = id.parse::<u16>().map(DomId) else {
                continue;
            };
            if self.records.record_path(dom).exists() {
                continue;
            }
            if name_of(xs, dom)?.as_deref() == Some(name) && alive(dom)? {
                return Ok(Some(dom));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_for_any_name() {
        assert_eq!(file_name("a/b"), "612f62");
        assert_eq!(file_name(""), "");
        assert!(file_name("..").chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn insert_lookup_remove() -> std::io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let idx = NameIndex::new(tmp.path());
        assert_eq!(idx.lookup("web"), None);
        idx.insert("web", DomId(5))?;
        assert_eq!(idx.lookup("web"), Some(DomId(5)));
        idx.remove("web", DomId(6));
        assert_eq!(
            idx.lookup("web"),
            Some(DomId(5)),
            "only the owner removes it"
        );
        idx.remove("web", DomId(5));
        assert_eq!(idx.lookup("web"), None);
        Ok(())
    }
}
