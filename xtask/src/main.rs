//! Project automation: `cargo xtask <task>`.
//!
//! - `test [--no-e2e]`: everything CI checks: formatting, clippy, the test suite, and the
//!   end-to-end run on real Xen in QEMU.
//! - `demo`: rxl's main job on a simulated host (README).
//! - `docs`: regenerate the man pages and shell completions under docs/.
//! - `e2e`: the real-Xen scenario (docs/e2e.md).

mod demo;
mod docs;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((task, rest)) = args.split_first() else {
        usage();
    };
    match task.as_str() {
        "test" => test(rest),
        "demo" => demo::run_demo(),
        "docs" => docs::generate(&repo_root().join("docs")),
        "e2e" => rig::run(rest),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("usage: cargo xtask <demo | test [--no-e2e] | docs | e2e [OPTIONS]>");
    std::process::exit(2);
}

/// The workspace root (xtask lives one level below it).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

pub fn cargo(args: &[&str]) -> anyhow::Result<()> {
    cargo_with(args, &[])
}

/// `cargo ARGS` with extra environment variables.
fn cargo_with(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(repo_root())
        .status()
        .with_context(|| format!("cannot run {cargo}"))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

fn test(args: &[String]) -> anyhow::Result<()> {
    let no_e2e = args.iter().any(|a| a == "--no-e2e");
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    docs::check(&repo_root().join("docs"))?;
    // The tests that compare with Xen's C parser or boot under QEMU skip themselves (with a
    // loud note) on a machine without those packages; here they must run.
    cargo_with(
        &["test", "--workspace", "--no-fail-fast"],
        &[("RXL_REQUIRE_LIBXLUTIL", "1"), ("RXL_REQUIRE_QEMU", "1")],
    )?;
    if !no_e2e {
        rig::run(&[])?;
    }
    Ok(())
}
