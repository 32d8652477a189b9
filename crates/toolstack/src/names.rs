//! Whether a domain name is taken, with xenstore as the only truth.
//!
//! A domain's name is its xenstore node `/local/domain/<id>/name`, and any tool may write it
//! (`xl rename` does, as does rxl's own rename-restart). Names are unique across every
//! domain on the host, whoever made it: [`NameIndex::find`] answers from xenstore, and the
//! caller holds the host lock (`create.lock`) from the check until the new domain's name is
//! written, so two rxl processes cannot both take a name.
//!
//! rxl keeps one cache beside xenstore, the name index: one file per name in
//! `<state dir>/names/` (the name in hex, see [`file_name`]) holding the id of the domain
//! rxl gave that name. It is never trusted as it stands:
//! - an entry counts only when Xen still runs that domain (not dying) and xenstore still
//!   gives it that name; any other entry (domain gone, dying, renamed, another id, a
//!   damaged or linked file) is dropped;
//! - a name the index does not confirm is looked for in every domain xenstore lists: one
//!   `directory` of `/local/domain` and one read of each listed domain's name. A domain
//!   found so that rxl has a record of gets its index entry back.
//!
//! A confirmed entry answers in one read; a free name (what every successful create asks)
//! costs one read per domain on the host, as `xl create` pays. Nothing cheaper can be
//! right: another tool renames a domain with one write, and xenstore offers no change
//! counter or reverse index that would tell a reader a cached name still holds, short of
//! reading it.

use std::path::{Path, PathBuf};

use xen_host::{DomId, Errno, Error, Hypervisor, Result, Store, TxId};

use crate::domains::name_of;
use crate::lock::{HostLock, LockError};
use crate::state::{self, StateDir};
use crate::xs_layout::{dom_path, vm_path};

/// The name index.
#[derive(Clone, Debug)]
pub struct NameIndex {
    dir: PathBuf,
    records: StateDir,
}

/// A file name for any domain name: the name's bytes in hex (names may hold characters a
/// file name cannot, such as `/`, and `..` must not walk out of a directory).
pub(crate) fn file_name(name: &str) -> String {
    name.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Why a rename did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RenameError {
    /// Another domain carries the new name.
    #[error("cannot rename domain {dom} to {name:?}: domain {holder} is called so")]
    Taken {
        /// The domain to rename.
        dom: DomId,
        /// The new name.
        name: String,
        /// The domain that carries it.
        holder: DomId,
    },
    /// The host lock could not be taken.
    #[error("cannot rename domain {dom}: {source}")]
    Lock {
        /// The domain to rename.
        dom: DomId,
        /// Why.
        source: LockError,
    },
    /// Xen or xenstore failed.
    #[error("cannot rename domain {dom}: {source}")]
    Host {
        /// The domain to rename.
        dom: DomId,
        /// Why.
        source: Error,
    },
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

    /// The id the index gives for `name`, if any (a damaged entry or a link gives none),
    /// unconfirmed.
    pub(crate) fn lookup(&self, name: &str) -> Option<DomId> {
        let bytes = state::read_file(&self.entry(name)).ok()??;
        std::str::from_utf8(&bytes)
            .ok()?
            .trim()
            .parse::<u16>()
            .ok()
            .map(DomId)
    }

    /// Record that `dom` is called `name` (a link planted at the entry is replaced).
    pub fn insert(&self, name: &str, dom: DomId) -> std::io::Result<()> {
        state::ensure_dir(self.records.path(), state::DIR_MODE)?;
        state::ensure_dir(&self.dir, state::DIR_MODE)?;
        state::write_file(
            &self.dir,
            &file_name(name),
            dom.to_string().as_bytes(),
            state::FILE_MODE,
        )
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
            if name_of(xs, dom)?.as_deref() == Some(name) && alive(dom)? {
                return Ok(Some(dom));
            }
        }
        // Unconfirmed: whatever the entry says (stale, damaged, a link) goes.
        if std::fs::symlink_metadata(self.entry(name)).is_ok() {
            let _ = std::fs::remove_file(self.entry(name));
        }
        let ids = xs
            .directory(TxId::NONE, "/local/domain")?
            .unwrap_or_default();
        for id in ids {
            let Ok(dom) = id.parse::<u16>().map(DomId) else {
                continue;
            };
            if name_of(xs, dom)?.as_deref() == Some(name) && alive(dom)? {
                if self.records.has_record(dom) {
                    if let Err(e) = self.insert(name, dom) {
                        tracing::warn!("cannot restore the name index entry of {name:?}: {e}");
                    }
                }
                return Ok(Some(dom));
            }
        }
        Ok(None)
    }
}

/// How many times a rename's xenstore transaction is tried when others' writes conflict.
const TX_TRIES: u32 = 20;

/// Renames `dom` to `new_name`, refusing a name another domain carries (checked against
/// xenstore under the host lock in `state_dir`, as a create checks it). Writes the name
/// where libxl keeps it, `/local/domain/<id>/name` and `/vm/<uuid>/name`, in one xenstore
/// transaction, and moves the index entry of a domain rxl has a record of.
pub fn rename<H, S>(
    hv: &H,
    xs: &S,
    state_dir: &Path,
    dom: DomId,
    new_name: &str,
) -> std::result::Result<(), RenameError>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let host = |source: Error| RenameError::Host { dom, source };
    let _lock = HostLock::acquire(state_dir, "create")
        .map_err(|source| RenameError::Lock { dom, source })?;
    let index = NameIndex::new(state_dir);
    if let Some(holder) = index.find(hv, xs, new_name).map_err(host)? {
        if holder != dom {
            return Err(RenameError::Taken {
                dom,
                name: new_name.to_string(),
                holder,
            });
        }
    }
    let old = name_of(xs, dom).map_err(host)?;
    let name_node = format!("{}/name", dom_path(dom));
    let vm =
        xen_host::read_string(xs, TxId::NONE, &format!("{}/vm", dom_path(dom))).map_err(host)?;
    let mut tries = 0;
    loop {
        tries += 1;
        if tries > TX_TRIES {
            return Err(host(Error::os_detail(
                "rename",
                Errno::EAGAIN,
                format!("the xenstore transaction conflicted {TX_TRIES} times"),
            )));
        }
        let tx = xs.transaction_start().map_err(host)?;
        let written = xs
            .write(tx, &name_node, new_name.as_bytes())
            .and_then(
                |()| match vm.as_deref().and_then(|v| v.strip_prefix("/vm/")) {
                    Some(uuid) => {
                        xs.write(tx, &format!("{}/name", vm_path(uuid)), new_name.as_bytes())
                    }
                    None => Ok(()),
                },
            );
        if let Err(e) = written {
            let _ = xs.transaction_end(tx, false);
            return Err(host(e));
        }
        match xs.transaction_end(tx, true) {
            Ok(true) => break,
            // Another writer got in between: try again.
            Ok(false) => continue,
            Err(e) if e.errno() == Some(Errno::EAGAIN) => continue,
            Err(e) => return Err(host(e)),
        }
    }
    if let Some(old) = old {
        index.remove(&old, dom);
    }
    if index.records.has_record(dom) {
        if let Err(e) = index.insert(new_name, dom) {
            tracing::warn!("cannot write the name index entry of {new_name:?}: {e}");
        }
    }
    Ok(())
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

    /// Gives `dom` the `vm` link and `/vm/0101-uuid/name` libxl writes.
    fn with_vm(h: &SimHost, dom: DomId, name: &str) {
        h.write(
            TxId::NONE,
            &format!("/local/domain/{dom}/vm"),
            b"/vm/0101-uuid",
        )
        .expect("vm link");
        h.write(TxId::NONE, "/vm/0101-uuid/name", name.as_bytes())
            .expect("vm name");
    }

    /// A domain as rxl's create leaves it: also indexed and recorded.
    fn rxl_domain(h: &SimHost, idx: &NameIndex, name: &str) -> DomId {
        let dom = domain(h, name);
        with_vm(h, dom, name);
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
        // Died after writing the name, before its index entry.
        let dom = domain(&h, "half");
        assert_eq!(idx.find(&h, &h, "half").ok(), Some(Some(dom)));
    }

    /// What `xl rename` writes: the domain's name and its /vm entry's.
    fn xl_rename(h: &SimHost, dom: DomId, name: &str) {
        h.write(
            TxId::NONE,
            &format!("/local/domain/{dom}/name"),
            name.as_bytes(),
        )
        .expect("rename");
        h.write(TxId::NONE, "/vm/0101-uuid/name", name.as_bytes())
            .expect("rename in /vm");
    }

    #[test]
    fn a_domain_renamed_by_another_tool_holds_its_new_name_only() {
        let tmp = tempfile::tempdir().expect("tmp");
        let h = host(tmp.path());
        let idx = NameIndex::new(&tmp.path().join("rxl"));
        let dom = rxl_domain(&h, &idx, "web");
        // rxl's record and index entry stay: only xenstore knows.
        xl_rename(&h, dom, "db");
        assert_eq!(idx.find(&h, &h, "db").ok(), Some(Some(dom)));
        assert_eq!(idx.find(&h, &h, "web").ok(), Some(None));
        // The index learnt the new name of a domain rxl has a record of.
        assert_eq!(idx.lookup("db"), Some(dom));
        assert_eq!(idx.lookup("web"), None);
    }

    #[test]
    fn a_damaged_or_stale_index_never_hides_a_taken_name() {
        let tmp = tempfile::tempdir().expect("tmp");
        let h = host(tmp.path());
        let state = tmp.path().join("rxl");
        let idx = NameIndex::new(&state);
        let web = rxl_domain(&h, &idx, "web");
        let db = rxl_domain(&h, &idx, "db");
        // A set of "rxl's domains" from an earlier rxl, every bit on: not trusted.
        std::fs::write(state.join("recorded"), [0xffu8; 4096]).expect("bitmap");
        let entry = |n: &str| state.join("names").join(file_name(n));
        let damage: [(&str, &dyn Fn()); 5] = [
            ("deleted", &|| {
                std::fs::remove_file(entry("web")).expect("rm")
            }),
            ("garbage", &|| {
                std::fs::write(entry("web"), b"\xff\x00x").expect("w")
            }),
            ("another domain", &|| {
                std::fs::write(entry("web"), db.to_string()).expect("w")
            }),
            ("Domain-0", &|| {
                std::fs::write(entry("web"), b"0").expect("w")
            }),
            ("a link", &|| {
                let _ = std::fs::remove_file(entry("web"));
                std::os::unix::fs::symlink(entry("db"), entry("web")).expect("link")
            }),
        ];
        for (what, spoil) in damage {
            spoil();
            assert_eq!(idx.find(&h, &h, "web").ok(), Some(Some(web)), "{what}");
            assert_eq!(idx.lookup("web"), Some(web), "{what}: the entry is rebuilt");
        }
        // Domain-0's name, even with an index entry sending it elsewhere.
        std::fs::write(entry("Domain-0"), web.to_string()).expect("w");
        assert_eq!(idx.find(&h, &h, "Domain-0").ok(), Some(Some(DomId::DOM0)));
        assert_eq!(idx.find(&h, &h, "free").ok(), Some(None));
    }

    #[test]
    fn rename_refuses_a_taken_name() {
        let tmp = tempfile::tempdir().expect("tmp");
        let h = host(tmp.path());
        let state = tmp.path().join("rxl");
        let idx = NameIndex::new(&state);
        let web = rxl_domain(&h, &idx, "web");
        let foreign = domain(&h, "web-1");
        let err = rename(&h, &h, &state, web, "web-1").unwrap_err();
        assert!(
            matches!(err, RenameError::Taken { holder, .. } if holder == foreign),
            "{err}"
        );
        assert!(rename(&h, &h, &state, web, "Domain-0").is_err());
        assert_eq!(name_of(&h, web).ok(), Some(Some("web".to_string())));
        rename(&h, &h, &state, web, "web-2").expect("rename to a free name");
        assert_eq!(name_of(&h, web).ok(), Some(Some("web-2".to_string())));
        assert_eq!(
            xen_host::read_string(&h, TxId::NONE, "/vm/0101-uuid/name").ok(),
            Some(Some("web-2".to_string()))
        );
        assert_eq!(idx.lookup("web-2"), Some(web));
        assert_eq!(idx.lookup("web"), None);
        assert_eq!(idx.find(&h, &h, "web").ok(), Some(None));
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
    fn a_hit_costs_one_read_and_a_free_name_one_read_per_domain() {
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
        let mut want: Vec<String> = [DomId::DOM0, foreign]
            .iter()
            .chain(&ours)
            .map(|d| format!("/local/domain/{d}/name"))
            .collect();
        want.push("directory /local/domain".to_string());
        want.sort();
        assert_eq!(reads, want);
        // A confirmed hit in the index costs one read.
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
