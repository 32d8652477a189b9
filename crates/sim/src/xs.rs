//! The xenstore tree on disk, permissions, transactions and watch matching.
//!
//! Every node is a directory under `DIR/xs` named by its path components, holding a
//! `.node` file: the node's generation, its permissions, the names of its children and its
//! value. Keeping the children in the node, as xenstored does, makes a `directory` one
//! file read however many children there are. xenstore names never contain `.`, so `.node`
//! (and the hidden staging directories of [`write`]) cannot clash with a child. New nodes
//! appear by one rename of a staged subtree, after their parent lists them; a removed
//! subtree goes before its parent stops listing it. So a process dying mid-change can
//! leave a listed child that does not exist (the next write or rm of it repairs the list),
//! never a node its parent does not list.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use xen_host::{Access, DomId, Errno, Perm};

use crate::disk::{io_err, read_opt, write_atomic, Change, ChangeKind};
use crate::{SimError, World};

/// `XENSTORE_ABS_PATH_MAX`.
const ABS_PATH_MAX: usize = 3072;
/// `XENSTORE_REL_PATH_MAX`.
const REL_PATH_MAX: usize = 2048;
/// `XENSTORE_PAYLOAD_MAX`.
const PAYLOAD_MAX: usize = 4096;

/// A node's value and permissions.
type ValuePerms = (Vec<u8>, Vec<Perm>);

/// A node as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Node {
    pub gen: u64,
    pub perms: Vec<Perm>,
    /// The names of the children, sorted, as xenstored keeps them in the node.
    pub children: Vec<String>,
    pub value: Vec<u8>,
}

impl Node {
    /// Add `name` to the children (nothing if it is there).
    fn add_child(&mut self, name: &str) {
        if let Err(at) = self.children.binary_search_by(|c| c.as_str().cmp(name)) {
            self.children.insert(at, name.to_string());
        }
    }

    /// Remove `name` from the children; whether it was there.
    fn remove_child(&mut self, name: &str) -> bool {
        match self.children.binary_search_by(|c| c.as_str().cmp(name)) {
            Ok(at) => {
                self.children.remove(at);
                true
            }
            Err(_) => false,
        }
    }
}

fn einval(detail: impl Into<String>) -> SimError {
    SimError::xen(Errno::EINVAL, detail)
}

fn eacces(path: &str) -> SimError {
    SimError::xen(Errno::EACCES, format!("no permission on {path}"))
}

/// The absolute form of a path given by `caller`, validated as xenstored does.
pub(crate) fn canonical(caller: DomId, path: &str) -> Result<String, SimError> {
    let (abs, max) = if path.starts_with('/') {
        (path.to_string(), ABS_PATH_MAX)
    } else {
        if path.is_empty() || path.starts_with('@') {
            return Err(einval(format!("`{path}` is not a node path")));
        }
        (format!("/local/domain/{}/{path}", caller.0), REL_PATH_MAX)
    };
    if path.len() > max {
        return Err(einval(format!("path longer than {max} bytes")));
    }
    if abs != "/" && (abs.ends_with('/') || abs.contains("//")) {
        return Err(einval(format!("`{path}` has an empty component")));
    }
    if let Some(c) = abs
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '/' | '_' | '@')))
    {
        return Err(einval(format!(
            "`{path}` contains {c:?} (allowed: letters, digits, - / _ @)"
        )));
    }
    Ok(abs)
}

/// The parent of an absolute path (`None` for the root).
pub(crate) fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => path.get(..i),
        None => None,
    }
}

/// `child` is `ancestor` or lies below it.
pub(crate) fn is_at_or_below(child: &str, ancestor: &str) -> bool {
    if ancestor == "/" {
        return child.starts_with('/');
    }
    child == ancestor
        || (child.starts_with(ancestor) && child.as_bytes().get(ancestor.len()) == Some(&b'/'))
}

fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// What `caller` may do with a node whose permissions are `perms`.
pub(crate) fn access_of(perms: &[Perm], caller: DomId) -> Access {
    let Some(owner) = perms.first() else {
        return if caller == DomId::DOM0 {
            Access::Both
        } else {
            Access::None
        };
    };
    if caller == DomId::DOM0 || owner.domid == caller {
        return Access::Both;
    }
    perms
        .iter()
        .skip(1)
        .find(|p| p.domid == caller)
        .map_or(owner.access, |p| p.access)
}

fn can_read(perms: &[Perm], caller: DomId) -> bool {
    matches!(access_of(perms, caller), Access::Read | Access::Both)
}

fn can_write(perms: &[Perm], caller: DomId) -> bool {
    matches!(access_of(perms, caller), Access::Write | Access::Both)
}

fn node_dir(dir: &Path, path: &str) -> PathBuf {
    let mut p = dir.join("xs");
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        p.push(comp);
    }
    p
}

fn encode(node: &Node) -> Vec<u8> {
    let perms: Vec<String> = node.perms.iter().map(|p| p.to_wire()).collect();
    let mut out = format!(
        "{}\n{}\n{}\n",
        node.gen,
        perms.join(" "),
        node.children.join(" ")
    )
    .into_bytes();
    out.extend_from_slice(&node.value);
    out
}

fn decode(file: &Path, data: &[u8]) -> Result<Node, SimError> {
    let corrupt = |m: &str| SimError::Corrupt {
        path: file.to_path_buf(),
        message: m.to_string(),
    };
    let nl1 = data
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| corrupt("no generation line"))?;
    let rest = data.get(nl1 + 1..).unwrap_or_default();
    let nl2 = rest
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| corrupt("no permissions line"))?;
    let gen = std::str::from_utf8(data.get(..nl1).unwrap_or_default())
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| corrupt("bad generation"))?;
    let perms_text = std::str::from_utf8(rest.get(..nl2).unwrap_or_default())
        .map_err(|_| corrupt("permissions are not text"))?;
    let perms = perms_text
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| Perm::from_wire(s).ok_or_else(|| corrupt("bad permission")))
        .collect::<Result<Vec<_>, _>>()?;
    let rest = rest.get(nl2 + 1..).unwrap_or_default();
    let nl3 = rest
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| corrupt("no children line"))?;
    let children_text = std::str::from_utf8(rest.get(..nl3).unwrap_or_default())
        .map_err(|_| corrupt("child names are not text"))?;
    let mut children: Vec<String> = children_text
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if !children.is_sorted() {
        children.sort_unstable();
    }
    children.dedup();
    Ok(Node {
        gen,
        perms,
        children,
        value: rest.get(nl3 + 1..).unwrap_or_default().to_vec(),
    })
}

/// Read a node from disk; `None` when it does not exist.
pub(crate) fn read_node(dir: &Path, path: &str) -> Result<Option<Node>, SimError> {
    let file = node_dir(dir, path).join(".node");
    match read_opt(&file)? {
        None => Ok(None),
        Some(data) => decode(&file, &data).map(Some),
    }
}

/// Write a node to disk (its directory must exist).
pub(crate) fn write_node(dir: &Path, path: &str, node: &Node) -> Result<(), SimError> {
    write_atomic(&node_dir(dir, path).join(".node"), &encode(node))
}

/// The names of a node's children, sorted (none when the node does not exist): the list
/// kept in the node, so one file read whatever the number of children.
pub(crate) fn disk_children(dir: &Path, path: &str) -> Result<Vec<String>, SimError> {
    Ok(read_node(dir, path)?
        .map(|n| n.children)
        .unwrap_or_default())
}

/// The deepest existing node at or above `path`, with its path.
fn deepest_existing(dir: &Path, path: &str) -> Result<(String, Node), SimError> {
    let mut cur = path;
    loop {
        if let Some(n) = read_node(dir, cur)? {
            return Ok((cur.to_string(), n));
        }
        cur = parent(cur).ok_or_else(|| SimError::Corrupt {
            path: dir.join("xs"),
            message: "the root node is missing".into(),
        })?;
    }
}

fn inherit(perms: &[Perm], caller: DomId) -> Vec<Perm> {
    let mut p = perms.to_vec();
    if p.is_empty() {
        p.push(Perm {
            domid: DomId::DOM0,
            access: Access::None,
        });
    }
    if caller != DomId::DOM0 {
        if let Some(owner) = p.first_mut() {
            owner.domid = caller;
        }
    }
    p
}

fn check_payload(path: &str, value: &[u8]) -> Result<(), SimError> {
    if path.len() + 1 + value.len() > PAYLOAD_MAX {
        return Err(SimError::xen(
            Errno::E2BIG,
            format!("path and value exceed {PAYLOAD_MAX} bytes"),
        ));
    }
    Ok(())
}

/// Read a node's value.
pub(crate) fn read(w: &World<'_>, caller: DomId, path: &str) -> Result<Option<Vec<u8>>, SimError> {
    match read_node(w.dir, path)? {
        None => Ok(None),
        Some(n) if can_read(&n.perms, caller) => Ok(Some(n.value)),
        Some(_) => Err(eacces(path)),
    }
}

/// Write (or, with `mkdir`, create if absent) a node, creating its parents.
pub(crate) fn write(
    w: &mut World<'_>,
    caller: DomId,
    path: &str,
    value: &[u8],
    mkdir: bool,
) -> Result<(), SimError> {
    check_payload(path, value)?;
    if let Some(mut node) = read_node(w.dir, path)? {
        if mkdir {
            return Ok(());
        }
        if !can_write(&node.perms, caller) {
            return Err(eacces(path));
        }
        node.gen = w.bump_gen();
        node.value = value.to_vec();
        write_node(w.dir, path, &node)?;
        w.log(ChangeKind::Write, path);
        return Ok(());
    }
    let (anc_path, mut anc) = deepest_existing(w.dir, path)?;
    if !can_write(&anc.perms, caller) {
        return Err(eacces(&anc_path));
    }
    let perms = inherit(&anc.perms, caller);
    let gen = w.bump_gen();
    let rest = path
        .get(anc_path.len()..)
        .unwrap_or_default()
        .trim_start_matches('/');
    let comps: Vec<&str> = rest.split('/').collect();
    let Some(first) = comps.first() else {
        return Err(einval(format!("`{path}` names no new node")));
    };
    // The ancestor lists its new child first, then the new nodes, built in a hidden
    // staging directory beside it, are renamed into place in one step. A process dying in
    // between leaves a listed child that does not exist, which the next write or rm of
    // that path repairs; never a node its parent does not list.
    anc.gen = gen;
    anc.add_child(first);
    write_node(w.dir, &anc_path, &anc)?;
    let anc_dir = node_dir(w.dir, &anc_path);
    let stage = anc_dir.join(format!(".new-{gen}"));
    if stage.exists() {
        fs::remove_dir_all(&stage).map_err(|e| io_err(&stage, e))?;
    }
    let last = comps.len().saturating_sub(1);
    let mut d = stage.clone();
    for (i, comp) in comps.iter().enumerate() {
        if i > 0 {
            d.push(comp);
        }
        fs::create_dir(&d).map_err(|e| io_err(&d, e))?;
        let node = Node {
            gen,
            perms: perms.clone(),
            children: comps
                .get(i + 1)
                .map(|c| vec![c.to_string()])
                .unwrap_or_default(),
            value: if i == last {
                value.to_vec()
            } else {
                Vec::new()
            },
        };
        let file = d.join(".node");
        fs::write(&file, encode(&node)).map_err(|e| io_err(&file, e))?;
    }
    let target = node_dir(w.dir, &child_path(&anc_path, first));
    // A directory there without a node is a leftover of an older layout: it holds no node.
    if target.exists() {
        fs::remove_dir_all(&target).map_err(|e| io_err(&target, e))?;
    }
    fs::rename(&stage, &target).map_err(|e| io_err(&target, e))?;
    w.log(ChangeKind::Write, path);
    Ok(())
}

/// Remove a node and its subtree (nothing to do when absent).
pub(crate) fn rm(w: &mut World<'_>, caller: DomId, path: &str) -> Result<(), SimError> {
    let Some(parent_path) = parent(path) else {
        return Err(einval("the root node cannot be removed"));
    };
    let name = path
        .get(parent_path.len()..)
        .unwrap_or_default()
        .trim_start_matches('/');
    let Some(node) = read_node(w.dir, path)? else {
        // A child listed but missing (its writer died): forget it.
        if let Some(mut p) = read_node(w.dir, parent_path)? {
            if p.remove_child(name) {
                write_node(w.dir, parent_path, &p)?;
            }
        }
        return Ok(());
    };
    if !can_write(&node.perms, caller) {
        return Err(eacces(path));
    }
    let gen = w.bump_gen();
    // The subtree goes first and the parent's list after, so a process dying in between
    // leaves a listed child that does not exist, never an unlisted node.
    let src = node_dir(w.dir, path);
    let trash = w.dir.join("trash").join(gen.to_string());
    fs::rename(&src, &trash).map_err(|e| io_err(&src, e))?;
    if let Some(mut p) = read_node(w.dir, parent_path)? {
        p.gen = gen;
        p.remove_child(name);
        write_node(w.dir, parent_path, &p)?;
    }
    fs::remove_dir_all(&trash).map_err(|e| io_err(&trash, e))?;
    w.log(ChangeKind::Remove, path);
    Ok(())
}

/// A node's children.
pub(crate) fn directory(
    w: &World<'_>,
    caller: DomId,
    path: &str,
) -> Result<Option<Vec<String>>, SimError> {
    match read_node(w.dir, path)? {
        None => Ok(None),
        Some(n) if can_read(&n.perms, caller) => Ok(Some(n.children)),
        Some(_) => Err(eacces(path)),
    }
}

/// A node's permissions.
pub(crate) fn get_perms(
    w: &World<'_>,
    caller: DomId,
    path: &str,
) -> Result<Option<Vec<Perm>>, SimError> {
    match read_node(w.dir, path)? {
        None => Ok(None),
        Some(n) if can_read(&n.perms, caller) => Ok(Some(n.perms)),
        Some(_) => Err(eacces(path)),
    }
}

fn check_new_perms(perms: &[Perm]) -> Result<(), SimError> {
    if perms.is_empty() {
        return Err(einval("a permission list needs at least the owner entry"));
    }
    Ok(())
}

fn may_set_perms(perms: &[Perm], caller: DomId) -> bool {
    caller == DomId::DOM0 || perms.first().is_some_and(|p| p.domid == caller)
}

/// Replace a node's permissions (owner or dom0 only).
pub(crate) fn set_perms(
    w: &mut World<'_>,
    caller: DomId,
    path: &str,
    perms: &[Perm],
) -> Result<(), SimError> {
    check_new_perms(perms)?;
    let Some(mut node) = read_node(w.dir, path)? else {
        return Err(SimError::xen(
            Errno::ENOENT,
            format!("{path} does not exist"),
        ));
    };
    if !may_set_perms(&node.perms, caller) {
        return Err(eacces(path));
    }
    node.gen = w.bump_gen();
    node.perms = perms.to_vec();
    write_node(w.dir, path, &node)?;
    w.log(ChangeKind::Write, path);
    Ok(())
}

/// One change buffered in a transaction.
#[derive(Clone, Debug)]
pub(crate) enum TxOp {
    Write(String, Vec<u8>, bool),
    Rm(String),
    SetPerms(String, Vec<Perm>),
}

#[derive(Clone, Debug)]
enum TxEntry {
    Deleted,
    Present {
        value: Vec<u8>,
        perms: Vec<Perm>,
        /// Created in the transaction: children on disk are not its children.
        fresh: bool,
    },
}

/// A transaction: buffered changes over the tree as it was, plus the generation of every
/// node it looked at, checked again at commit.
#[derive(Debug)]
pub(crate) struct Tx {
    start_gen: u64,
    overlay: BTreeMap<String, TxEntry>,
    observed: HashMap<String, Option<u64>>,
    ops: Vec<TxOp>,
    conflicted: bool,
}

enum Hit<'a> {
    Entry(&'a TxEntry),
    Hidden,
    Disk,
}

impl Tx {
    pub(crate) fn new(start_gen: u64) -> Tx {
        Tx {
            start_gen,
            overlay: BTreeMap::new(),
            observed: HashMap::new(),
            ops: Vec::new(),
            conflicted: false,
        }
    }

    fn observe(&mut self, path: &str, gen: Option<u64>) {
        if !self.observed.contains_key(path) {
            if gen.is_some_and(|g| g > self.start_gen) {
                self.conflicted = true;
            }
            self.observed.insert(path.to_string(), gen);
        }
    }

    fn hit(&self, path: &str) -> Hit<'_> {
        if let Some(e) = self.overlay.get(path) {
            return Hit::Entry(e);
        }
        let mut cur = parent(path);
        while let Some(p) = cur {
            match self.overlay.get(p) {
                Some(TxEntry::Deleted) | Some(TxEntry::Present { fresh: true, .. }) => {
                    return Hit::Hidden
                }
                _ => {}
            }
            cur = parent(p);
        }
        Hit::Disk
    }

    /// The node as the transaction sees it: `(value, perms)`.
    fn lookup(&mut self, dir: &Path, path: &str) -> Result<Option<ValuePerms>, SimError> {
        match self.hit(path) {
            Hit::Entry(TxEntry::Deleted) | Hit::Hidden => Ok(None),
            Hit::Entry(TxEntry::Present { value, perms, .. }) => {
                Ok(Some((value.clone(), perms.clone())))
            }
            Hit::Disk => match read_node(dir, path)? {
                Some(n) => {
                    self.observe(path, Some(n.gen));
                    Ok(Some((n.value, n.perms)))
                }
                None => {
                    self.observe(path, None);
                    let (anc, n) = deepest_existing(dir, path)?;
                    self.observe(&anc, Some(n.gen));
                    Ok(None)
                }
            },
        }
    }

    pub(crate) fn read(
        &mut self,
        dir: &Path,
        caller: DomId,
        path: &str,
    ) -> Result<Option<Vec<u8>>, SimError> {
        match self.lookup(dir, path)? {
            None => Ok(None),
            Some((v, p)) if can_read(&p, caller) => Ok(Some(v)),
            Some(_) => Err(eacces(path)),
        }
    }

    pub(crate) fn get_perms(
        &mut self,
        dir: &Path,
        caller: DomId,
        path: &str,
    ) -> Result<Option<Vec<Perm>>, SimError> {
        match self.lookup(dir, path)? {
            None => Ok(None),
            Some((_, p)) if can_read(&p, caller) => Ok(Some(p)),
            Some(_) => Err(eacces(path)),
        }
    }

    pub(crate) fn write(
        &mut self,
        dir: &Path,
        caller: DomId,
        path: &str,
        value: &[u8],
        mkdir: bool,
    ) -> Result<(), SimError> {
        check_payload(path, value)?;
        if let Some((_, perms)) = self.lookup(dir, path)? {
            if mkdir {
                return Ok(());
            }
            if !can_write(&perms, caller) {
                return Err(eacces(path));
            }
            let fresh = matches!(
                self.overlay.get(path),
                Some(TxEntry::Present { fresh: true, .. })
            );
            self.overlay.insert(
                path.to_string(),
                TxEntry::Present {
                    value: value.to_vec(),
                    perms,
                    fresh,
                },
            );
        } else {
            let mut missing = vec![path.to_string()];
            let mut cur = parent(path);
            let anc_perms = loop {
                let Some(p) = cur else {
                    return Err(SimError::Corrupt {
                        path: dir.join("xs"),
                        message: "the root node is missing".into(),
                    });
                };
                if let Some((_, perms)) = self.lookup(dir, p)? {
                    if !can_write(&perms, caller) {
                        return Err(eacces(p));
                    }
                    break perms;
                }
                missing.push(p.to_string());
                cur = parent(p);
            };
            let perms = inherit(&anc_perms, caller);
            for (i, p) in missing.into_iter().enumerate() {
                let v = if i == 0 { value.to_vec() } else { Vec::new() };
                self.overlay.insert(
                    p,
                    TxEntry::Present {
                        value: v,
                        perms: perms.clone(),
                        fresh: true,
                    },
                );
            }
        }
        self.ops
            .push(TxOp::Write(path.to_string(), value.to_vec(), mkdir));
        Ok(())
    }

    pub(crate) fn rm(&mut self, dir: &Path, caller: DomId, path: &str) -> Result<(), SimError> {
        if path == "/" {
            return Err(einval("the root node cannot be removed"));
        }
        let Some((_, perms)) = self.lookup(dir, path)? else {
            return Ok(());
        };
        if !can_write(&perms, caller) {
            return Err(eacces(path));
        }
        let prefix = format!("{path}/");
        let below: Vec<String> = self
            .overlay
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in below {
            self.overlay.remove(&k);
        }
        self.overlay.insert(path.to_string(), TxEntry::Deleted);
        self.ops.push(TxOp::Rm(path.to_string()));
        Ok(())
    }

    pub(crate) fn directory(
        &mut self,
        dir: &Path,
        caller: DomId,
        path: &str,
    ) -> Result<Option<Vec<String>>, SimError> {
        let Some((_, perms)) = self.lookup(dir, path)? else {
            return Ok(None);
        };
        if !can_read(&perms, caller) {
            return Err(eacces(path));
        }
        let fresh = matches!(
            self.overlay.get(path),
            Some(TxEntry::Present { fresh: true, .. })
        );
        let mut names: BTreeSet<String> = BTreeSet::new();
        if !fresh {
            if let Some(n) = read_node(dir, path)? {
                self.observe(path, Some(n.gen));
                names.extend(n.children);
            }
        }
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        for (k, e) in self
            .overlay
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
        {
            let rest = k.get(prefix.len()..).unwrap_or_default();
            if rest.is_empty() || rest.contains('/') {
                continue;
            }
            match e {
                TxEntry::Present { .. } => {
                    names.insert(rest.to_string());
                }
                TxEntry::Deleted => {
                    names.remove(rest);
                }
            }
        }
        Ok(Some(names.into_iter().collect()))
    }

    pub(crate) fn set_perms(
        &mut self,
        dir: &Path,
        caller: DomId,
        path: &str,
        perms: &[Perm],
    ) -> Result<(), SimError> {
        check_new_perms(perms)?;
        let Some((value, old)) = self.lookup(dir, path)? else {
            return Err(SimError::xen(
                Errno::ENOENT,
                format!("{path} does not exist"),
            ));
        };
        if !may_set_perms(&old, caller) {
            return Err(eacces(path));
        }
        let fresh = matches!(
            self.overlay.get(path),
            Some(TxEntry::Present { fresh: true, .. })
        );
        self.overlay.insert(
            path.to_string(),
            TxEntry::Present {
                value,
                perms: perms.to_vec(),
                fresh,
            },
        );
        self.ops
            .push(TxOp::SetPerms(path.to_string(), perms.to_vec()));
        Ok(())
    }

    /// Check for conflicts and apply the buffered changes. `Ok(None)` on conflict,
    /// otherwise the paths written and removed, in order.
    pub(crate) fn commit(
        self,
        w: &mut World<'_>,
        caller: DomId,
    ) -> Result<Option<Vec<(ChangeKind, String)>>, SimError> {
        if self.conflicted {
            return Ok(None);
        }
        for (path, gen) in &self.observed {
            let now = read_node(w.dir, path)?.map(|n| n.gen);
            if now != *gen {
                return Ok(None);
            }
        }
        let mut written = Vec::new();
        for op in self.ops {
            match op {
                TxOp::Write(p, v, mkdir) => {
                    write(w, caller, &p, &v, mkdir)?;
                    written.push((ChangeKind::Write, p));
                }
                TxOp::Rm(p) => {
                    rm(w, caller, &p)?;
                    written.push((ChangeKind::Remove, p));
                }
                TxOp::SetPerms(p, perms) => set_perms(w, caller, &p, &perms)?,
            }
        }
        Ok(Some(written))
    }
}

/// The path a watch on `watch` reports for `change`, if it fires.
pub(crate) fn watch_fires(change: &Change, watch: &str) -> Option<String> {
    match change.kind {
        ChangeKind::Special => (change.path == watch).then(|| change.path.clone()),
        ChangeKind::Write | ChangeKind::Remove if watch.starts_with('@') => None,
        ChangeKind::Write => is_at_or_below(&change.path, watch).then(|| change.path.clone()),
        ChangeKind::Remove => {
            if is_at_or_below(&change.path, watch) {
                Some(change.path.clone())
            } else if is_at_or_below(watch, &change.path) {
                Some(watch.to_string())
            } else {
                None
            }
        }
    }
}

/// Create the root and the standard top-level nodes if absent.
pub(crate) fn init_tree(w: &mut World<'_>) -> Result<(), SimError> {
    let root = node_dir(w.dir, "/");
    fs::create_dir_all(&root).map_err(|e| io_err(&root, e))?;
    if read_node(w.dir, "/")?.is_none() {
        let gen = w.bump_gen();
        write_node(
            w.dir,
            "/",
            &Node {
                gen,
                perms: vec![Perm {
                    domid: DomId::DOM0,
                    access: Access::None,
                }],
                children: Vec::new(),
                value: Vec::new(),
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(d: u16, a: Access) -> Perm {
        Perm {
            domid: DomId(d),
            access: a,
        }
    }

    #[test]
    fn canonical_paths() {
        assert_eq!(canonical(DomId(3), "name").unwrap(), "/local/domain/3/name");
        assert_eq!(canonical(DomId(0), "/a/b").unwrap(), "/a/b");
        assert_eq!(canonical(DomId(0), "/").unwrap(), "/");
        for bad in ["/a/", "/a//b", "/a.b", "/a b", "", "@releaseDomain", "/ü"] {
            let e = canonical(DomId(0), bad).unwrap_err();
            assert_eq!(e.errno(), Some(Errno::EINVAL), "{bad}");
        }
        assert!(canonical(DomId(0), &format!("/{}", "a".repeat(3072))).is_err());
    }

    #[test]
    fn parents_and_containment() {
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/"), None);
        assert!(is_at_or_below("/a/b", "/a"));
        assert!(is_at_or_below("/a", "/a"));
        assert!(!is_at_or_below("/ab", "/a"));
        assert!(is_at_or_below("/x", "/"));
    }

    #[test]
    fn access_rules() {
        let perms = [perm(3, Access::None), perm(5, Access::Read)];
        assert_eq!(access_of(&perms, DomId(0)), Access::Both);
        assert_eq!(access_of(&perms, DomId(3)), Access::Both);
        assert_eq!(access_of(&perms, DomId(5)), Access::Read);
        assert_eq!(access_of(&perms, DomId(7)), Access::None);
        let open = [perm(0, Access::Write)];
        assert_eq!(access_of(&open, DomId(7)), Access::Write);
    }

    #[test]
    fn node_encoding_round_trips() {
        let n = Node {
            gen: 42,
            perms: vec![perm(0, Access::None), perm(4, Access::Both)],
            children: vec!["1".into(), "backend".into(), "name".into()],
            value: b"a\nb\0c".to_vec(),
        };
        let f = Path::new("x");
        assert_eq!(decode(f, &encode(&n)).unwrap(), n);
        let leaf = Node {
            children: Vec::new(),
            value: Vec::new(),
            ..n.clone()
        };
        assert_eq!(decode(f, &encode(&leaf)).unwrap(), leaf);
        let unsorted = decode(f, b"1\n\nb a b\nv").unwrap();
        assert_eq!(unsorted.children, vec!["a", "b"]);
        assert!(decode(f, b"1\n\n").is_err(), "no children line");
        assert!(decode(f, b"zz\n\n").is_err());
        assert!(decode(f, b"1\nq9\n").is_err());
        assert!(decode(f, b"1").is_err());
    }

    #[test]
    fn watch_matching() {
        let w = |kind, path: &str| Change {
            seq: 1,
            kind,
            path: path.into(),
        };
        let c = w(ChangeKind::Write, "/local/domain/1/name");
        assert_eq!(watch_fires(&c, "/local/domain"), Some(c.path.clone()));
        assert_eq!(
            watch_fires(&c, "/local/domain/1/name"),
            Some(c.path.clone())
        );
        assert_eq!(watch_fires(&c, "/local/domain/1/name/x"), None);
        assert_eq!(watch_fires(&c, "/local/domain/10"), None);
        let r = w(ChangeKind::Remove, "/local/domain/1");
        assert_eq!(
            watch_fires(&r, "/local/domain/1/control/shutdown").as_deref(),
            Some("/local/domain/1/control/shutdown")
        );
        assert_eq!(watch_fires(&r, "/").as_deref(), Some("/local/domain/1"));
        let s = w(ChangeKind::Special, "@releaseDomain");
        assert_eq!(
            watch_fires(&s, "@releaseDomain").as_deref(),
            Some("@releaseDomain")
        );
        assert_eq!(watch_fires(&s, "/"), None);
        assert_eq!(watch_fires(&c, "@releaseDomain"), None);
    }
}
