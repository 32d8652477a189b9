//! Turning the paths a config names into absolute, lexically normal paths.

use std::path::{Component, Path, PathBuf};

/// `path` made absolute against `base` (itself absolute) and normalised without touching the
/// file system: `.` components dropped, `..` removing the previous component (never going
/// above the root).
pub(crate) fn resolve(base: &Path, path: &str) -> PathBuf {
    let joined = if Path::new(path).is_absolute() {
        PathBuf::from(path)
    } else {
        base.join(path)
    };
    normalise(&joined)
}

/// Lexical normalisation of an absolute path.
pub(crate) fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(part) => out.push(part),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_join_the_base() {
        let base = Path::new("/etc/xen");
        assert_eq!(resolve(base, "vmlinuz"), PathBuf::from("/etc/xen/vmlinuz"));
        assert_eq!(
            resolve(base, "./k/../vmlinuz"),
            PathBuf::from("/etc/xen/vmlinuz")
        );
        assert_eq!(
            resolve(base, "../boot//vmlinuz"),
            PathBuf::from("/etc/boot/vmlinuz")
        );
        assert_eq!(
            resolve(base, "/boot/./vmlinuz"),
            PathBuf::from("/boot/vmlinuz")
        );
        assert_eq!(resolve(base, "/../../x"), PathBuf::from("/x"));
    }
}
