//! Kernel modules for the dom0 image: finding them in an unpacked kernel package, their
//! dependencies (the `depends=` field of each module's `.modinfo` section, which is what
//! depmod writes into modules.dep; the Debian package does not ship modules.dep, it is
//! generated at install time) and a load order with dependencies first.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use goblin::elf::Elf;

/// What went wrong with kernel modules.
#[derive(Debug, thiserror::Error)]
pub enum KmodError {
    /// A directory or file could not be read.
    #[error("reading {path} failed")]
    Read {
        /// Host path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A module file is not an ELF object with a readable `.modinfo`.
    #[error("{path}: {reason}")]
    BadModule {
        /// Host path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A wanted module (or a dependency) is neither a file nor built in.
    #[error("kernel module {name} (wanted by {wanted_by}) is neither in {dir} nor built in")]
    NotFound {
        /// Module name.
        name: String,
        /// Who needs it ("the image" for a top-level module).
        wanted_by: String,
        /// The modules directory searched.
        dir: PathBuf,
    },
    /// Modules depend on each other in a cycle.
    #[error("kernel modules depend on each other in a cycle through {0}")]
    Cycle(String),
}

/// The canonical form of a module name: depmod treats `-` and `_` alike.
pub fn canonical(name: &str) -> String {
    name.replace('-', "_")
}

/// Module name of a path like `kernel/drivers/xen/xen-evtchn.ko` (any compression suffix).
fn name_of(path: &str) -> Option<String> {
    let base = path.rsplit('/').next()?;
    let stem = base.split(".ko").next()?;
    (!stem.is_empty() && base.contains(".ko")).then(|| canonical(stem))
}

/// Reads the `depends=` list of a module's `.modinfo` section.
pub fn modinfo_depends(path: &Path, bytes: &[u8]) -> Result<Vec<String>, KmodError> {
    let bad = |reason: String| KmodError::BadModule {
        path: path.to_owned(),
        reason,
    };
    let elf = Elf::parse(bytes).map_err(|e| bad(format!("not an ELF module: {e}")))?;
    let section = elf
        .section_headers
        .iter()
        .find(|sh| elf.shdr_strtab.get_at(sh.sh_name) == Some(".modinfo"))
        .ok_or_else(|| bad("no .modinfo section".into()))?;
    let range = section
        .file_range()
        .ok_or_else(|| bad(".modinfo has no file contents".into()))?;
    let data = bytes
        .get(range)
        .ok_or_else(|| bad(".modinfo lies outside the file".into()))?;
    Ok(parse_depends(data))
}

/// Extracts the dependency names from raw `.modinfo` contents (NUL-separated `key=value`).
pub fn parse_depends(modinfo: &[u8]) -> Vec<String> {
    modinfo
        .split(|b| *b == 0)
        .filter_map(|field| field.strip_prefix(b"depends="))
        .flat_map(|list| {
            String::from_utf8_lossy(list)
                .split(',')
                .filter(|s| !s.is_empty())
                .map(canonical)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// One module that must be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Canonical name.
    pub name: String,
    /// Path relative to the modules directory (`kernel/drivers/...`).
    pub rel_path: String,
    /// Canonical names of its dependencies.
    pub depends: Vec<String>,
}

/// The modules of one unpacked kernel (`lib/modules/VERSION`).
#[derive(Debug)]
pub struct ModuleDir {
    dir: PathBuf,
    /// Canonical name -> relative path.
    files: BTreeMap<String, String>,
    builtin: BTreeSet<String>,
}

impl ModuleDir {
    /// Indexes the `.ko` files under `dir` and reads `modules.builtin`.
    pub fn open(dir: &Path) -> Result<Self, KmodError> {
        let mut files = BTreeMap::new();
        let mut stack = vec![dir.join("kernel")];
        while let Some(d) = stack.pop() {
            let entries = std::fs::read_dir(&d).map_err(|source| KmodError::Read {
                path: d.clone(),
                source,
            })?;
            for entry in entries {
                let entry = entry.map_err(|source| KmodError::Read {
                    path: d.clone(),
                    source,
                })?;
                let path = entry.path();
                let ft = entry.file_type().map_err(|source| KmodError::Read {
                    path: path.clone(),
                    source,
                })?;
                if ft.is_dir() {
                    stack.push(path);
                } else if let Ok(rel) = path.strip_prefix(dir) {
                    let rel = rel.to_string_lossy().into_owned();
                    if let Some(name) = name_of(&rel) {
                        files.insert(name, rel);
                    }
                }
            }
        }
        let builtin_path = dir.join("modules.builtin");
        let builtin = match std::fs::read_to_string(&builtin_path) {
            Ok(text) => text.lines().filter_map(name_of).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
            Err(source) => {
                return Err(KmodError::Read {
                    path: builtin_path,
                    source,
                })
            }
        };
        Ok(Self {
            dir: dir.to_owned(),
            files,
            builtin,
        })
    }

    /// The modules to load for `wanted`, dependencies before dependents; built-in modules
    /// are left out.
    pub fn load_order(&self, wanted: &[&str]) -> Result<Vec<Module>, KmodError> {
        let lookup = |name: &str| -> Result<Option<(String, Vec<String>)>, KmodError> {
            let Some(rel) = self.files.get(name) else {
                return Ok(None);
            };
            let path = self.dir.join(rel);
            let bytes = std::fs::read(&path).map_err(|source| KmodError::Read {
                path: path.clone(),
                source,
            })?;
            Ok(Some((rel.clone(), modinfo_depends(&path, &bytes)?)))
        };
        resolve_order(wanted, &self.builtin, &self.dir, lookup)
    }
}

/// Orders `wanted` and their dependencies, dependencies first. `lookup` gives a module's
/// relative path and dependencies, or `None` when there is no such file.
pub fn resolve_order(
    wanted: &[&str],
    builtin: &BTreeSet<String>,
    dir: &Path,
    mut lookup: impl FnMut(&str) -> Result<Option<(String, Vec<String>)>, KmodError>,
) -> Result<Vec<Module>, KmodError> {
    #[derive(PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    let mut marks: BTreeMap<String, Mark> = BTreeMap::new();
    let mut order = Vec::new();
    // Explicit stack of (name, wanted_by, expanded) to keep deep chains off the call stack.
    let mut stack: Vec<(String, String, Option<Module>)> = wanted
        .iter()
        .rev()
        .map(|w| (canonical(w), "the image".to_owned(), None))
        .collect();
    while let Some((name, by, expanded)) = stack.pop() {
        if let Some(module) = expanded {
            marks.insert(name, Mark::Done);
            order.push(module);
            continue;
        }
        match marks.get(&name) {
            Some(Mark::Done) => continue,
            Some(Mark::Visiting) => return Err(KmodError::Cycle(name)),
            None => {}
        }
        let Some((rel_path, depends)) = lookup(&name)? else {
            if builtin.contains(&name) {
                marks.insert(name, Mark::Done);
                continue;
            }
            return Err(KmodError::NotFound {
                name,
                wanted_by: by,
                dir: dir.to_owned(),
            });
        };
        marks.insert(name.clone(), Mark::Visiting);
        let module = Module {
            name: name.clone(),
            rel_path,
            depends: depends.clone(),
        };
        stack.push((name.clone(), by, Some(module)));
        for dep in depends.iter().rev() {
            match marks.get(dep) {
                Some(Mark::Done) => {}
                Some(Mark::Visiting) => return Err(KmodError::Cycle(dep.clone())),
                None => stack.push((dep.clone(), name.clone(), None)),
            }
        }
    }
    Ok(order)
}

/// Renders a modules.dep for the chosen modules (so `modprobe` works in dom0 too).
pub fn modules_dep(modules: &[Module]) -> String {
    let by_name: BTreeMap<&str, &Module> = modules.iter().map(|m| (m.name.as_str(), m)).collect();
    let mut out = String::new();
    for m in modules {
        // modules.dep lists the full transitive closure, nearest first.
        let mut seen = BTreeSet::new();
        let mut deps = Vec::new();
        let mut queue: Vec<&str> = m.depends.iter().map(String::as_str).collect();
        while let Some(d) = queue.first().copied() {
            queue.remove(0);
            if let Some(dm) = by_name.get(d) {
                if seen.insert(d) {
                    deps.push(dm.rel_path.as_str());
                    queue.extend(dm.depends.iter().map(String::as_str));
                }
            }
        }
        out.push_str(&m.rel_path);
        out.push(':');
        for d in deps {
            out.push(' ');
            out.push_str(d);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake<'a>(
        table: &'a [(&'a str, &'a [&'a str])],
    ) -> impl FnMut(&str) -> Result<Option<(String, Vec<String>)>, KmodError> + 'a {
        move |name| {
            Ok(table.iter().find(|(n, _)| *n == name).map(|(n, deps)| {
                (
                    format!("kernel/{n}.ko"),
                    deps.iter().map(|d| (*d).to_owned()).collect(),
                )
            }))
        }
    }

    fn names(mods: &[Module]) -> Vec<&str> {
        mods.iter().map(|m| m.name.as_str()).collect()
    }

    #[test]
    fn parses_depends_field() {
        let info = b"license=GPL\0depends=xen-front-pgdir-shbuf,foo_bar\0vermagic=6.1\0";
        assert_eq!(parse_depends(info), ["xen_front_pgdir_shbuf", "foo_bar"]);
        assert!(parse_depends(b"depends=\0license=GPL\0").is_empty());
        assert!(parse_depends(b"").is_empty());
    }

    #[test]
    fn dependencies_come_first_and_once() {
        let table: &[(&str, &[&str])] =
            &[("a", &["b", "c"]), ("b", &["c"]), ("c", &[]), ("d", &["c"])];
        let order =
            resolve_order(&["a", "d"], &BTreeSet::new(), Path::new("/m"), fake(table)).unwrap();
        assert_eq!(names(&order), ["c", "b", "a", "d"]);
        assert_eq!(order[2].rel_path, "kernel/a.ko");
    }

    #[test]
    fn dashes_and_underscores_match() {
        let table: &[(&str, &[&str])] = &[("xen_evtchn", &[])];
        let order = resolve_order(
            &["xen-evtchn"],
            &BTreeSet::new(),
            Path::new("/m"),
            fake(table),
        )
        .unwrap();
        assert_eq!(names(&order), ["xen_evtchn"]);
    }

    #[test]
    fn builtin_modules_are_skipped() {
        let table: &[(&str, &[&str])] = &[("a", &["xenbus"])];
        let builtin: BTreeSet<String> = ["xenbus".to_owned()].into();
        let order = resolve_order(&["a"], &builtin, Path::new("/m"), fake(table)).unwrap();
        assert_eq!(names(&order), ["a"]);
    }

    #[test]
    fn missing_dependency_names_who_wanted_it() {
        let table: &[(&str, &[&str])] = &[("a", &["ghost"])];
        let err =
            resolve_order(&["a"], &BTreeSet::new(), Path::new("/m"), fake(table)).unwrap_err();
        match err {
            KmodError::NotFound {
                name, wanted_by, ..
            } => {
                assert_eq!(name, "ghost");
                assert_eq!(wanted_by, "a");
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn cycles_are_errors() {
        let table: &[(&str, &[&str])] = &[("a", &["b"]), ("b", &["a"])];
        let err =
            resolve_order(&["a"], &BTreeSet::new(), Path::new("/m"), fake(table)).unwrap_err();
        assert!(matches!(err, KmodError::Cycle(_)), "{err}");
    }

    #[test]
    fn modules_dep_lists_transitive_dependencies() {
        let table: &[(&str, &[&str])] = &[("a", &["b"]), ("b", &["c"]), ("c", &[])];
        let order = resolve_order(&["a"], &BTreeSet::new(), Path::new("/m"), fake(table)).unwrap();
        assert_eq!(
            modules_dep(&order),
            "kernel/c.ko:\nkernel/b.ko: kernel/c.ko\nkernel/a.ko: kernel/b.ko kernel/c.ko\n"
        );
    }

    #[test]
    fn module_names_from_paths() {
        assert_eq!(
            name_of("kernel/drivers/xen/xen-evtchn.ko").as_deref(),
            Some("xen_evtchn")
        );
        assert_eq!(name_of("kernel/fs/x.ko.xz").as_deref(), Some("x"));
        assert_eq!(name_of("modules.order"), None);
    }
}
