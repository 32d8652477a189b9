//! The rig's shell scripts: real `.sh` files under crates/rig/scripts, built into the rig
//! with `include_str!` and checked by shellcheck in `cargo xtask test`.

use std::path::{Path, PathBuf};

/// Every `.sh` file under `dir`, recursively, as paths relative to `dir`, sorted.
pub fn files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        for entry in std::fs::read_dir(dir.join(&rel))? {
            let entry = entry?;
            let path = rel.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "sh") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_the_scripts() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
        let all = files(&dir).unwrap();
        assert!(all.contains(&PathBuf::from("init.sh")), "{all:?}");
        assert!(all.contains(&PathBuf::from("lib.sh")), "{all:?}");
    }
}
