//! Man pages and shell completions, generated from rxl's clap definitions.

use std::path::Path;

use anyhow::{bail, Context as _};
use clap::CommandFactory as _;

/// Every generated file: (path under docs/, contents).
fn render() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    let cmd = rxl::cli::Cli::command();

    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    files.push(("man/rxl.1".to_string(), page));
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() {
            continue;
        }
        let name = format!("rxl-{}", sub.get_name());
        let mut page = Vec::new();
        clap_mangen::Man::new(sub.clone().name(name.clone())).render(&mut page)?;
        files.push((format!("man/{name}.1"), page));
    }

    for (shell, file) in [
        (clap_complete::Shell::Bash, "rxl.bash"),
        (clap_complete::Shell::Zsh, "_rxl"),
        (clap_complete::Shell::Fish, "rxl.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), "rxl", &mut out);
        files.push((format!("completions/{file}"), out));
    }
    Ok(files)
}

/// Write the generated files under `docs`.
pub fn generate(docs: &Path) -> anyhow::Result<()> {
    for (rel, contents) in render()? {
        let path = docs.join(&rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("xtask: wrote {}", path.display());
    }
    Ok(())
}

/// Fail when a committed file differs from what `generate` would write.
pub fn check(docs: &Path) -> anyhow::Result<()> {
    let mut stale = Vec::new();
    for (rel, contents) in render()? {
        match std::fs::read(docs.join(&rel)) {
            Ok(old) if old == contents => {}
            _ => stale.push(rel),
        }
    }
    if !stale.is_empty() {
        bail!("docs/ is out of date ({}): run `cargo xtask docs` and commit", stale.join(", "));
    }
    Ok(())
}
