//! Shared-library closure of ELF programs inside an unpacked root file system, the way the
//! dynamic loader would find them (an `ldd` that never runs the program).
//!
//! Paths are "in-root" absolute paths (`/usr/lib/...`); symlinks are followed inside the root
//! (an absolute target restarts at the root), so nothing on the host leaks into the image.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use goblin::elf::Elf;

/// How many symlinks one lookup may follow before it is called a loop.
const MAX_LINK_HOPS: usize = 40;

/// What went wrong while inspecting or resolving.
#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    /// A file could not be read.
    #[error("reading {path} failed")]
    Read {
        /// Host path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A file is not a parsable ELF object.
    #[error("{path} is not a valid ELF file: {reason}")]
    NotElf {
        /// In-root path.
        path: String,
        /// Parser message.
        reason: String,
    },
    /// A path does not exist in the root.
    #[error("{0} does not exist in the image root")]
    Missing(String),
    /// Symlinks loop or nest too deep.
    #[error("too many levels of symbolic links resolving {0}")]
    LinkLoop(String),
    /// A needed library was found nowhere on the search path.
    #[error(
        "{object} needs {library}, which is not in the image (searched {searched}); \
         add the package that ships it"
    )]
    LibraryNotFound {
        /// The object that needs it.
        object: String,
        /// The DT_NEEDED name.
        library: String,
        /// The directories searched, comma separated.
        searched: String,
    },
    /// A needed symbol version is not defined by the library that was found.
    #[error(
        "{object} needs version {version} of {library}, but the image's {found} defines only \
         [{defined}]; build it against an older library or use a newer package"
    )]
    VersionMissing {
        /// The object that needs it.
        object: String,
        /// The library (DT_NEEDED name).
        library: String,
        /// Resolved in-root path of the library.
        found: String,
        /// The missing version name.
        version: String,
        /// The versions the library defines.
        defined: String,
    },
}

/// The dynamic-linking facts of one ELF object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElfInfo {
    /// DT_NEEDED entries, in order.
    pub needed: Vec<String>,
    /// DT_RUNPATH and DT_RPATH directories (colon lists split).
    pub search: Vec<String>,
    /// PT_INTERP, for executables.
    pub interp: Option<String>,
    /// Versions needed from each library (vn_file -> version names).
    pub verneed: BTreeMap<String, BTreeSet<String>>,
    /// Versions this object defines (verdef names, the base name included).
    pub verdef: BTreeSet<String>,
}

impl ElfInfo {
    /// Parses the dynamic section, program interpreter and symbol versions of `bytes`.
    /// `path` names the object in errors.
    pub fn parse(path: &str, bytes: &[u8]) -> Result<Self, DepsError> {
        let elf = Elf::parse(bytes).map_err(|e| DepsError::NotElf {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let mut info = ElfInfo {
            needed: elf.libraries.iter().map(|s| (*s).to_owned()).collect(),
            interp: elf.interpreter.map(str::to_owned),
            ..ElfInfo::default()
        };
        for list in elf.runpaths.iter().chain(elf.rpaths.iter()) {
            info.search
                .extend(list.split(':').filter(|s| !s.is_empty()).map(str::to_owned));
        }
        let name_at = |off: usize| elf.dynstrtab.get_at(off).map(str::to_owned);
        if let Some(verneed) = &elf.verneed {
            for need in verneed.iter() {
                let Some(file) = name_at(need.vn_file) else {
                    continue;
                };
                let set = info.verneed.entry(file).or_default();
                for aux in need.iter() {
                    if let Some(v) = name_at(aux.vna_name) {
                        set.insert(v);
                    }
                }
            }
        }
        if let Some(verdef) = &elf.verdef {
            for def in verdef.iter() {
                for aux in def.iter() {
                    if let Some(v) = name_at(aux.vda_name) {
                        info.verdef.insert(v);
                    }
                }
            }
        }
        Ok(info)
    }
}

/// A file system seen from inside a root.
pub trait Tree {
    /// Resolves `path` (in-root, absolute) following symlinks inside the root. Returns the
    /// chain of in-root paths visited: each symlink passed through (with its target) and,
    /// last, the real file. `Ok(None)` when the path does not exist.
    fn resolve(&self, path: &str) -> Result<Option<Resolved>, DepsError>;
    /// Reads and parses the ELF object at a resolved (symlink-free) in-root path.
    fn elf(&self, path: &str) -> Result<ElfInfo, DepsError>;
}

/// The outcome of resolving one in-root path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Symlinks passed through: (in-root link path, link target as stored).
    pub links: Vec<(String, String)>,
    /// The final regular file (in-root, symlink-free).
    pub file: String,
}

/// An unpacked root directory on the host.
#[derive(Debug, Clone)]
pub struct DirTree {
    root: PathBuf,
}

impl DirTree {
    /// A tree rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The host path of an in-root path.
    pub fn host_path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }
}

fn join(stack: &[String]) -> String {
    format!("/{}", stack.join("/"))
}

/// Lexically normalises an absolute path ("." dropped, ".." pops). Only correct for paths
/// whose prefix holds no symlinks, such as an expanded `$ORIGIN`.
fn normalize(path: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            other => out.push(other.to_owned()),
        }
    }
    join(&out)
}

/// Pushes the components of `path` onto `pending` so that they pop in path order.
fn push_pending(pending: &mut Vec<String>, path: &str) {
    pending.extend(
        path.split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .rev()
            .map(str::to_owned),
    );
}

impl Tree for DirTree {
    fn resolve(&self, path: &str) -> Result<Option<Resolved>, DepsError> {
        // `pending` holds components still to walk (next on top); `done` is the resolved,
        // symlink-free prefix.
        let mut pending = Vec::new();
        push_pending(&mut pending, path);
        let mut done: Vec<String> = Vec::new();
        let mut links = Vec::new();
        while let Some(c) = pending.pop() {
            if c == ".." {
                done.pop();
                continue;
            }
            done.push(c);
            let in_root = join(&done);
            let host = self.host_path(&in_root);
            let meta = match std::fs::symlink_metadata(&host) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(source) => return Err(DepsError::Read { path: host, source }),
            };
            if meta.file_type().is_symlink() {
                if links.len() >= MAX_LINK_HOPS {
                    return Err(DepsError::LinkLoop(path.to_owned()));
                }
                let target = std::fs::read_link(&host)
                    .map_err(|source| DepsError::Read { path: host, source })?
                    .to_string_lossy()
                    .into_owned();
                done.pop();
                if target.starts_with('/') {
                    done.clear();
                }
                push_pending(&mut pending, &target);
                links.push((in_root, target));
            } else if !pending.is_empty() && !meta.is_dir() {
                // A regular file used as a directory.
                return Ok(None);
            }
        }
        let file = join(&done);
        let host = self.host_path(&file);
        let meta =
            std::fs::metadata(&host).map_err(|source| DepsError::Read { path: host, source })?;
        if meta.is_dir() {
            return Ok(None);
        }
        Ok(Some(Resolved { links, file }))
    }

    fn elf(&self, path: &str) -> Result<ElfInfo, DepsError> {
        let host = self.host_path(path);
        let bytes =
            std::fs::read(&host).map_err(|source| DepsError::Read { path: host, source })?;
        ElfInfo::parse(path, &bytes)
    }
}

/// A tree with extra files laid over it: each extra in-root path is a host file outside
/// the tree (such as a freshly built program), everything else comes from `base`.
#[derive(Debug)]
pub struct Overlay<'a, T: Tree> {
    base: &'a T,
    extra: BTreeMap<String, PathBuf>,
}

impl<'a, T: Tree> Overlay<'a, T> {
    /// `base` with the `(in-root path, host path)` files of `extra` added.
    pub fn new(base: &'a T, extra: &[(&str, PathBuf)]) -> Self {
        Self {
            base,
            extra: extra
                .iter()
                .map(|(p, h)| ((*p).to_owned(), h.clone()))
                .collect(),
        }
    }
}

impl<T: Tree> Tree for Overlay<'_, T> {
    fn resolve(&self, path: &str) -> Result<Option<Resolved>, DepsError> {
        if self.extra.contains_key(path) {
            return Ok(Some(Resolved {
                links: Vec::new(),
                file: path.to_owned(),
            }));
        }
        self.base.resolve(path)
    }

    fn elf(&self, path: &str) -> Result<ElfInfo, DepsError> {
        match self.extra.get(path) {
            Some(host) => {
                let bytes = std::fs::read(host).map_err(|source| DepsError::Read {
                    path: host.clone(),
                    source,
                })?;
                ElfInfo::parse(path, &bytes)
            }
            None => self.base.elf(path),
        }
    }
}

/// Everything a set of programs needs from a root: files to copy and symlinks to recreate.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Closure {
    /// Regular files (in-root paths) to copy.
    pub files: BTreeSet<String>,
    /// Symlinks to recreate: in-root path -> target as stored.
    pub links: BTreeMap<String, String>,
    /// For each object (resolved path), each DT_NEEDED name -> the file it resolved to.
    pub resolved: BTreeMap<String, BTreeMap<String, String>>,
}

/// Computes the shared-library closure of `programs` (in-root paths) in `tree`.
///
/// Libraries are searched, in order, in the object's DT_RUNPATH/DT_RPATH (`$ORIGIN`
/// expanded to the object's directory) and then in `lib_dirs` (the dom0 loader's
/// `LD_LIBRARY_PATH`). Program interpreters are included. Every symbol version an object
/// needs must be defined by the library it resolved to.
pub fn closure(
    tree: &dyn Tree,
    programs: &[&str],
    lib_dirs: &[&str],
) -> Result<Closure, DepsError> {
    let mut out = Closure::default();
    let mut infos: BTreeMap<String, ElfInfo> = BTreeMap::new();
    let mut work: Vec<String> = programs.iter().rev().map(|p| (*p).to_owned()).collect();
    while let Some(path) = work.pop() {
        let resolved = tree
            .resolve(&path)?
            .ok_or_else(|| DepsError::Missing(path.clone()))?;
        for (link, target) in &resolved.links {
            out.links.insert(link.clone(), target.clone());
        }
        let file = resolved.file;
        if infos.contains_key(&file) {
            continue;
        }
        out.files.insert(file.clone());
        let info = tree.elf(&file)?;
        if let Some(interp) = &info.interp {
            work.push(interp.clone());
        }
        let origin = file
            .rsplit_once('/')
            .map_or("/", |(d, _)| if d.is_empty() { "/" } else { d });
        let mut map = BTreeMap::new();
        for lib in &info.needed {
            let found = if lib.contains('/') {
                tree.resolve(lib)?
            } else {
                let mut hit = None;
                let dirs = info
                    .search
                    .iter()
                    .map(|d| normalize(&d.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)))
                    .chain(lib_dirs.iter().map(|d| (*d).to_owned()));
                for dir in dirs {
                    if let Some(r) =
                        tree.resolve(&format!("{}/{lib}", dir.trim_end_matches('/')))?
                    {
                        hit = Some(r);
                        break;
                    }
                }
                hit
            };
            let Some(found) = found else {
                let searched: Vec<String> = info
                    .search
                    .iter()
                    .cloned()
                    .chain(lib_dirs.iter().map(|d| (*d).to_owned()))
                    .collect();
                return Err(DepsError::LibraryNotFound {
                    object: file.clone(),
                    library: lib.clone(),
                    searched: searched.join(", "),
                });
            };
            for (link, target) in &found.links {
                out.links.insert(link.clone(), target.clone());
            }
            map.insert(lib.clone(), found.file.clone());
            work.push(found.file);
        }
        out.resolved.insert(file.clone(), map);
        infos.insert(file, info);
    }
    check_versions(&out, &infos)?;
    Ok(out)
}

/// Checks every needed symbol version against the verdefs of the resolved libraries.
fn check_versions(closure: &Closure, infos: &BTreeMap<String, ElfInfo>) -> Result<(), DepsError> {
    for (object, info) in infos {
        let resolved = closure.resolved.get(object);
        for (lib, versions) in &info.verneed {
            let Some(found) = resolved.and_then(|m| m.get(lib)) else {
                return Err(DepsError::LibraryNotFound {
                    object: object.clone(),
                    library: lib.clone(),
                    searched: "its DT_NEEDED list (the version table names it)".into(),
                });
            };
            let defined = infos.get(found).map(|i| &i.verdef);
            for v in versions {
                if !defined.is_some_and(|d| d.contains(v)) {
                    let defined = defined
                        .map(|d| d.iter().cloned().collect::<Vec<_>>().join(", "))
                        .unwrap_or_default();
                    return Err(DepsError::VersionMissing {
                        object: object.clone(),
                        library: lib.clone(),
                        found: found.clone(),
                        version: v.clone(),
                        defined,
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An in-memory tree: whole-path symlinks and ELF facts.
    #[derive(Default)]
    struct FakeTree {
        links: BTreeMap<String, String>,
        files: BTreeMap<String, ElfInfo>,
    }

    impl FakeTree {
        fn lib(mut self, path: &str, needed: &[&str], defines: &[&str]) -> Self {
            let info = ElfInfo {
                needed: needed.iter().map(|s| (*s).to_owned()).collect(),
                verdef: defines.iter().map(|s| (*s).to_owned()).collect(),
                ..ElfInfo::default()
            };
            self.files.insert(path.into(), info);
            self
        }
        fn with(mut self, path: &str, info: ElfInfo) -> Self {
            self.files.insert(path.into(), info);
            self
        }
        fn link(mut self, path: &str, target: &str) -> Self {
            self.links.insert(path.into(), target.into());
            self
        }
    }

    impl Tree for FakeTree {
        fn resolve(&self, path: &str) -> Result<Option<Resolved>, DepsError> {
            let mut links = Vec::new();
            let mut cur = path.to_owned();
            while let Some(t) = self.links.get(&cur) {
                if links.len() > MAX_LINK_HOPS {
                    return Err(DepsError::LinkLoop(path.into()));
                }
                links.push((cur.clone(), t.clone()));
                cur = if t.starts_with('/') {
                    t.clone()
                } else {
                    format!("{}/{t}", cur.rsplit_once('/').map_or("", |(d, _)| d))
                };
            }
            let exists = self.files.contains_key(&cur);
            Ok(exists.then_some(Resolved { links, file: cur }))
        }
        fn elf(&self, path: &str) -> Result<ElfInfo, DepsError> {
            self.files
                .get(path)
                .cloned()
                .ok_or_else(|| DepsError::Missing(path.into()))
        }
    }

    const DIRS: &[&str] = &["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"];

    fn base() -> FakeTree {
        FakeTree::default()
            .lib("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", &[], &[])
            .link(
                "/lib64/ld-linux-x86-64.so.2",
                "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            )
            .lib(
                "/lib/x86_64-linux-gnu/libc.so.6",
                &[],
                &["libc.so.6", "GLIBC_2.2.5", "GLIBC_2.34"],
            )
            .lib(
                "/usr/lib/x86_64-linux-gnu/libfoo.so.1.2",
                &["libc.so.6"],
                &[],
            )
            .link("/usr/lib/x86_64-linux-gnu/libfoo.so.1", "libfoo.so.1.2")
    }

    fn program(needed: &[&str], verneed: &[(&str, &str)]) -> ElfInfo {
        let mut info = ElfInfo {
            needed: needed.iter().map(|s| (*s).to_owned()).collect(),
            interp: Some("/lib64/ld-linux-x86-64.so.2".into()),
            ..ElfInfo::default()
        };
        for (lib, v) in verneed {
            info.verneed
                .entry((*lib).into())
                .or_default()
                .insert((*v).into());
        }
        info
    }

    #[test]
    fn follows_needed_links_and_interpreter() {
        let tree = base().with(
            "/usr/bin/prog",
            program(
                &["libfoo.so.1", "libc.so.6"],
                &[("libc.so.6", "GLIBC_2.34")],
            ),
        );
        let c = closure(&tree, &["/usr/bin/prog"], DIRS).unwrap();
        let files: Vec<&str> = c.files.iter().map(String::as_str).collect();
        assert_eq!(
            files,
            [
                "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/usr/bin/prog",
                "/usr/lib/x86_64-linux-gnu/libfoo.so.1.2",
            ]
        );
        assert_eq!(c.links.len(), 2);
        assert_eq!(
            c.links["/usr/lib/x86_64-linux-gnu/libfoo.so.1"],
            "libfoo.so.1.2"
        );
        assert_eq!(
            c.resolved["/usr/bin/prog"]["libfoo.so.1"],
            "/usr/lib/x86_64-linux-gnu/libfoo.so.1.2"
        );
    }

    #[test]
    fn runpath_origin_wins_over_search_dirs() {
        let mut prog = program(&["libbar.so"], &[]);
        prog.search = vec!["$ORIGIN/../lib".into()];
        let tree = base()
            .with("/opt/x/bin/prog", prog)
            .lib("/opt/x/lib/libbar.so", &[], &[])
            .lib("/lib/x86_64-linux-gnu/libbar.so", &[], &[]);
        let c = closure(&tree, &["/opt/x/bin/prog"], DIRS).unwrap();
        assert!(c.files.contains("/opt/x/lib/libbar.so"));
        assert!(!c.files.contains("/lib/x86_64-linux-gnu/libbar.so"));
    }

    #[test]
    fn missing_library_names_the_object() {
        let tree = base().with("/usr/bin/prog", program(&["libnope.so.3"], &[]));
        let err = closure(&tree, &["/usr/bin/prog"], DIRS).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DepsError::LibraryNotFound { .. }), "{msg}");
        assert!(
            msg.contains("/usr/bin/prog") && msg.contains("libnope.so.3"),
            "{msg}"
        );
    }

    #[test]
    fn missing_symbol_version_is_reported() {
        let tree = base().with(
            "/usr/bin/prog",
            program(&["libc.so.6"], &[("libc.so.6", "GLIBC_2.39")]),
        );
        let err = closure(&tree, &["/usr/bin/prog"], DIRS).unwrap_err();
        match err {
            DepsError::VersionMissing { version, found, .. } => {
                assert_eq!(version, "GLIBC_2.39");
                assert_eq!(found, "/lib/x86_64-linux-gnu/libc.so.6");
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn missing_program_is_an_error() {
        let err = closure(&base(), &["/usr/bin/absent"], DIRS).unwrap_err();
        assert!(matches!(err, DepsError::Missing(p) if p == "/usr/bin/absent"));
    }

    #[test]
    fn parses_a_real_executable() {
        let exe = std::env::current_exe().unwrap();
        let bytes = std::fs::read(&exe).unwrap();
        let info = ElfInfo::parse("test-binary", &bytes).unwrap();
        assert!(info.needed.iter().any(|n| n == "libc.so.6"), "{info:?}");
        assert!(info
            .interp
            .as_deref()
            .is_some_and(|i| i.contains("ld-linux")));
        assert!(info
            .verneed
            .get("libc.so.6")
            .is_some_and(|v| v.iter().any(|v| v.starts_with("GLIBC_2."))));
    }

    #[test]
    fn resolves_a_real_program_against_the_host_root() {
        // The test binary itself, seen through a tree rooted at the host's "/": every library
        // must resolve and every needed glibc version must be defined by the libc found.
        let exe = std::env::current_exe().unwrap();
        let exe = exe.to_str().unwrap();
        let tree = DirTree::new("/");
        let c = closure(&tree, &[exe], DIRS).unwrap();
        let libc = &c.resolved[exe]["libc.so.6"];
        assert!(c.files.contains(libc), "{c:?}");
        let info = tree.elf(libc).unwrap();
        assert!(info.verdef.contains("GLIBC_2.2.5"), "{:?}", info.verdef);
        assert!(
            c.files.iter().any(|f| f.contains("ld-linux-x86-64")),
            "{c:?}"
        );
    }

    #[test]
    fn overlay_adds_a_host_program_to_a_tree() {
        let exe = std::env::current_exe().unwrap();
        let host_root = DirTree::new("/");
        let tree = Overlay::new(&host_root, &[("/usr/local/bin/prog", exe)]);
        let c = closure(&tree, &["/usr/local/bin/prog"], DIRS).unwrap();
        assert!(c.files.contains("/usr/local/bin/prog"));
        assert!(c.resolved["/usr/local/bin/prog"].contains_key("libc.so.6"));
        // Paths not laid over come from the base tree.
        assert_eq!(tree.resolve("/no/such/file").unwrap(), None);
    }

    #[test]
    fn rejects_non_elf() {
        assert!(matches!(
            ElfInfo::parse("x", b"#!/bin/sh\n"),
            Err(DepsError::NotElf { .. })
        ));
    }

    #[test]
    fn dir_tree_stays_inside_the_root() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("lib/x86_64-linux-gnu")).unwrap();
        std::fs::create_dir_all(root.join("lib64")).unwrap();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::write(root.join("lib/x86_64-linux-gnu/ld.so"), b"x").unwrap();
        // Absolute target: must resolve inside the root, never on the host.
        symlink("/lib/x86_64-linux-gnu/ld.so", root.join("lib64/ld.so")).unwrap();
        // Relative target with "..", through a directory link; ".." stops at the root.
        symlink("../../../lib/x86_64-linux-gnu", root.join("usr/lib/multi")).unwrap();
        symlink("a", root.join("lib/b")).unwrap();
        symlink("b", root.join("lib/a")).unwrap();
        let tree = DirTree::new(root);

        let r = tree.resolve("/lib64/ld.so").unwrap().unwrap();
        assert_eq!(r.file, "/lib/x86_64-linux-gnu/ld.so");
        assert_eq!(
            r.links,
            vec![("/lib64/ld.so".into(), "/lib/x86_64-linux-gnu/ld.so".into())]
        );

        let r = tree.resolve("/usr/lib/multi/ld.so").unwrap().unwrap();
        assert_eq!(r.file, "/lib/x86_64-linux-gnu/ld.so");
        assert_eq!(r.links.len(), 1);

        assert_eq!(tree.resolve("/usr/lib/multi/none.so").unwrap(), None);
        assert_eq!(
            tree.resolve("/usr/lib").unwrap(),
            None,
            "directories are not files"
        );
        assert!(matches!(
            tree.resolve("/lib/a"),
            Err(DepsError::LinkLoop(_))
        ));
    }
}
