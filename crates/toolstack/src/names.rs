//! Whether a domain name is taken, in time that does not grow with the number of domains
//! rxl created.
//!
//! Names live in xenstore (`/local/domain/<id>/name`), so the plain check reads every
//! domain's name: xl's cost grows with the host. rxl keeps an index, one file per name in
//! `<state dir>/names/`, holding the domain id, written under the host lock when a create
//! reserves the name and removed on destroy. A check then costs:
//! - one index lookup, confirmed against Xen and xenstore (a stale entry, whose domain is
//!   gone, dying or renamed, is dropped);
//! - one xenstore `directory` of `/local/domain` and one 4 KiB read of the set of domains
//!   rxl has a record of ([`StateDir::recorded`]); a name is read only for the listed
//!   domains outside that set (Domain-0, domains other toolstacks made, a create still in
//!   progress, a domain the monitor renamed and let go of), so those names are seen too. A
//!   domain without a xenstore directory has no name to collide with.
//!
//! No step costs a round trip or a file access per rxl domain: what still grows with the
//! host is the `directory` reply (a few bytes per domain, one xenstore round trip) and one
//! name read per domain that is not rxl's.
//!
//! Why not cache the names of foreign domains too: a cache of ids and names seen at the
//! last scan would skip reading a name only by trusting that no other tool renamed the
//! domain since, and `xl rename` does exactly that; xenstore offers no change counter
//! through [`Store`] that would tell a check the cache is still good. A check that can miss
//! a taken name is worse than one read per foreign domain (xl pays one per domain).
//!
//! What the check trusts: that a domain with an rxl record still carries the name rxl's
//! index gave it. A domain rxl created and another tool then renamed is therefore not seen
//! under its new name until its record goes; and a record left behind by a domain another
//! tool destroyed hides the name of a later foreign domain that reuses the id (Xen hands
//! out ids in increasing order, so this needs the id space to wrap).

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
pub(crate) fn file_name(name: &str) -> String {
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
        let ours = self.records.recorded();
        for id in ids {
            let Ok(dom) = id.parse::<u16>().map(DomId) else {
                continue;
            };
            // An rxl domain's name is in the index, checked above.
            if ours.contains(dom) {
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
    use std::cell::RefCell;
    use std::time::Duration;

    use sim::{HostConfig, SimHost};
    use xen_host::{CreateDomain, Gfn, Perm, WatchEvent};

    use super::*;

    fn host(dir: &Path) -> SimHost {
        SimHost::create(&dir.join("host"), HostConfig::default()).expect("simulated host")
    }

    /// A domain called `name`, made as any toolstack would: Xen's domain and its xenstore
    /// name.
    fn domain(h: &SimHost, name: &str) -> DomId {
        let dom = h
            .create_domain(&CreateDomain::pvh([1; 16], 1))
            .expect("create domain");
        h.write(
            TxId::NONE,
            &format!("/local/domain/{dom}/name"),
            name.as_bytes(),
        )
        .expect("write name");
        dom
    }

    /// A domain as rxl's create leaves it: also indexed and recorded.
    fn rxl_domain(h: &SimHost, idx: &NameIndex, name: &str) -> DomId {
        let dom = domain(h, name);
        idx.insert(name, dom).expect("index");
        idx.records.save(dom, &name).expect("record");
        dom
    }

    #[test]
    fn names_of_foreign_domains_and_domain0_are_taken() {
        let tmp = tempfile::tempdir().expect("tmp");
        let h = host(tmp.path());
        let idx = NameIndex::new(&tmp.path().join("rxl"));
        let ours = rxl_domain(&h, &idx, "ours");
        let foreign = domain(&h, "made-by-xl");
        assert_eq!(idx.find(&h, &h, "made-by-xl").ok(), Some(Some(foreign)));
        assert_eq!(idx.find(&h, &h, "Domain-0").ok(), Some(Some(DomId::DOM0)));
        assert_eq!(idx.find(&h, &h, "ours").ok(), Some(Some(ours)));
        assert_eq!(idx.find(&h, &h, "free").ok(), Some(None));
        // Nothing about the foreign domain went into the index.
        assert_eq!(idx.lookup("made-by-xl"), None);
    }

    #[test]
    fn a_destroyed_domain_leaves_a_stale_entry_that_is_dropped() {
        let tmp = tempfile::tempdir().expect("tmp");
        let h = host(tmp.path());
        let idx = NameIndex::new(&tmp.path().join("rxl"));
        let dom = rxl_domain(&h, &idx, "db");
        // Destroyed behind rxl's back (xl destroy): the index entry and the record stay.
        h.destroy(dom).expect("destroy");
        h.rm(TxId::NONE, &format!("/local/domain/{dom}"))
            .expect("rm");
        assert_eq!(idx.find(&h, &h, "db").ok(), Some(None));
        assert_eq!(idx.lookup("db"), None, "the stale entry is dropped");
    }

    #[test]
    fn a_renamed_domain_frees_its_old_name_and_holds_its_new_one() {
        let tmp = tempfile::tempdir().expect("tmp");
        let h = host(tmp.path());
        let idx = NameIndex::new(&tmp.path().join("rxl"));
        let dom = rxl_domain(&h, &idx, "web");
        // As a rename-restart preserves it: renamed, and rxl's record of it removed.
        h.write(TxId::NONE, &format!("/local/domain/{dom}/name"), b"web-1")
            .expect("rename");
        idx.records.remove(dom).expect("remove record");
        assert_eq!(idx.find(&h, &h, "web").ok(), Some(None));
        assert_eq!(idx.lookup("web"), None, "the stale entry is dropped");
        assert_eq!(idx.find(&h, &h, "web-1").ok(), Some(Some(dom)));
    }

    #[test]
    fn a_dying_domain_does_not_hold_its_name() {
        let tmp = tempfile::tempdir().expect("tmp");
        let h = host(tmp.path());
        let idx = NameIndex::new(&tmp.path().join("rxl"));
        let big = rxl_domain(&h, &idx, "big");
        let foreign = domain(&h, "big-xl");
        for dom in [big, foreign] {
            h.max_mem(dom, 1 << 20).expect("max_mem");
            // 1 GiB takes several destroy batches, so a failed second batch leaves the
            // domain dying.
            h.populate_physmap(dom, 18, &[Gfn(0)]).expect("populate");
            let interrupted = SimHost::open(&tmp.path().join("host"))
                .and_then(|h| h.with_faults("destroydomain:2=EIO"))
                .expect("faulty handle");
            assert!(interrupted.destroy(dom).is_err());
            let info = h.domain_info(dom).expect("info").expect("still there");
            assert!(info.dying);
        }
        assert_eq!(idx.find(&h, &h, "big").ok(), Some(None));
        assert_eq!(idx.find(&h, &h, "big-xl").ok(), Some(None));
    }

    #[test]
    fn an_interrupted_create_still_holds_its_name() {
        let tmp = tempfile::tempdir().expect("tmp");
        let h = host(tmp.path());
        let idx = NameIndex::new(&tmp.path().join("rxl"));
        rxl_domain(&h, &idx, "other");
        // Died after writing the record, before its bit and without an index entry.
        let dom = domain(&h, "half");
        std::fs::write(idx.records.record_path(dom), b"{}").expect("record");
        assert!(!idx.records.recorded().contains(dom));
        assert_eq!(idx.find(&h, &h, "half").ok(), Some(Some(dom)));
    }

    /// A store that records the paths read through it.
    struct Counting<'a> {
        inner: &'a SimHost,
        reads: RefCell<Vec<String>>,
    }

    impl Store for Counting<'_> {
        fn read(&self, tx: TxId, path: &str) -> Result<Option<Vec<u8>>> {
            self.reads.borrow_mut().push(path.to_string());
            self.inner.read(tx, path)
        }
        fn write(&self, tx: TxId, path: &str, value: &[u8]) -> Result<()> {
            self.inner.write(tx, path, value)
        }
        fn mkdir(&self, tx: TxId, path: &str) -> Result<()> {
            self.inner.mkdir(tx, path)
        }
        fn rm(&self, tx: TxId, path: &str) -> Result<()> {
            self.inner.rm(tx, path)
        }
        fn directory(&self, tx: TxId, path: &str) -> Result<Option<Vec<String>>> {
            self.reads.borrow_mut().push(format!("directory {path}"));
            self.inner.directory(tx, path)
        }
        fn get_perms(&self, tx: TxId, path: &str) -> Result<Option<Vec<Perm>>> {
            self.inner.get_perms(tx, path)
        }
        fn set_perms(&self, tx: TxId, path: &str, perms: &[Perm]) -> Result<()> {
            self.inner.set_perms(tx, path, perms)
        }
        fn transaction_start(&self) -> Result<TxId> {
            self.inner.transaction_start()
        }
        fn transaction_end(&self, tx: TxId, commit: bool) -> Result<bool> {
            self.inner.transaction_end(tx, commit)
        }
        fn watch(&self, path: &str, token: &str) -> Result<()> {
            self.inner.watch(path, token)
        }
        fn unwatch(&self, path: &str, token: &str) -> Result<()> {
            self.inner.unwatch(path, token)
        }
        fn next_watch_event(&self, timeout: Option<Duration>) -> Result<Option<WatchEvent>> {
            self.inner.next_watch_event(timeout)
        }
        fn introduce(&self, dom: DomId, store_gfn: Gfn, store_port: u32) -> Result<()> {
            self.inner.introduce(dom, store_gfn, store_port)
        }
        fn release(&self, dom: DomId) -> Result<()> {
            self.inner.release(dom)
        }
        fn get_domain_path(&self, dom: DomId) -> Result<String> {
            self.inner.get_domain_path(dom)
        }
        fn is_domain_introduced(&self, dom: DomId) -> Result<bool> {
            self.inner.is_domain_introduced(dom)
        }
    }

    #[test]
    fn the_check_reads_no_name_of_an_rxl_domain() {
        let tmp = tempfile::tempdir().expect("tmp");
        let h = host(tmp.path());
        let idx = NameIndex::new(&tmp.path().join("rxl"));
        let ours: Vec<DomId> = (0..20)
            .map(|i| rxl_domain(&h, &idx, &format!("g{i}")))
            .collect();
        let foreign = domain(&h, "xl-made");
        let xs = Counting {
            inner: &h,
            reads: RefCell::new(Vec::new()),
        };
        assert_eq!(idx.find(&h, &xs, "absent").ok(), Some(None));
        let mut reads = xs.reads.take();
        reads.sort();
        assert_eq!(
            reads,
            vec![
                "/local/domain/0/name".to_string(),
                format!("/local/domain/{foreign}/name"),
                "directory /local/domain".to_string(),
            ]
        );
        // A hit in the index costs one confirming read.
        let some = ours.get(7).copied().expect("domain g7");
        assert_eq!(idx.find(&h, &xs, "g7").ok(), Some(Some(some)));
        assert_eq!(xs.reads.take(), vec![format!("/local/domain/{some}/name")]);
    }

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
