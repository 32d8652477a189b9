//! Project automation: `cargo xtask <task>`.
//!
//! - `test [--no-e2e]`: everything CI checks: the Debian packages it needs (installed when
//!   it can), formatting, clippy, shellcheck over the rig's scripts, the test suite, and the
//!   end-to-end run on real Xen in QEMU.
//! - `demo`: rxl's main job on a simulated host (README).
//! - `docs`: regenerate the man pages and shell completions under docs/.
//! - `e2e`: the real-Xen scenario (crates/rig, docs/e2e.md).
//! - `install [--root DIR]`: build rxl as the rig runs it (static, release) and install it
//!   as DIR/bin/rxl.

#![forbid(unsafe_code)]

mod demo;
mod docs;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};

/// Debian packages `cargo xtask test` needs on the host: Xen's headers and libxlutil (the
/// comparison with Xen's own config parser), QEMU (the PVH boot tests and the rig), the
/// compressors and cpio some tests call, binutils and gcc (the test guest's build),
/// shellcheck (the rig's scripts), and fdisk's sfdisk and python3 (bootmenu's comparison
/// with pygrub builds disk images and runs Debian's pygrub).
const TEST_PACKAGES: &[&str] = &[
    "libxen-dev",
    "qemu-system-x86",
    "cpio",
    "binutils",
    "gcc",
    "shellcheck",
    "xz-utils",
    "zstd",
    "lz4",
    "bzip2",
    "gzip",
    "fdisk",
    "python3",
];

/// `cargo xtask <task>`.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Project automation for rxl")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Everything CI checks; installs the Debian packages it needs first (as root with apt),
    /// or stops with the command that installs them.
    Test {
        /// Leave out the end-to-end run on real Xen.
        #[arg(long)]
        no_e2e: bool,
    },
    /// rxl's main job on a simulated host.
    Demo,
    /// Regenerate the man pages and shell completions under docs/.
    Docs,
    /// Build rxl as the rig's dom0 runs it (release, static, non-PIE: docs/benchmarks.md) and
    /// install it as ROOT/bin/rxl.
    Install {
        /// Where to install: ROOT/bin/rxl.
        #[arg(long, default_value = "/usr/local")]
        root: PathBuf,
    },
    /// The real-Xen scenario in QEMU (options: `cargo xtask e2e --help`, docs/e2e.md).
    #[command(disable_help_flag = true)]
    E2e {
        /// The rig's options, passed on as they are.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Test { no_e2e } => test(no_e2e),
        Task::Demo => demo::run_demo(),
        Task::Docs => docs::generate(&repo_root().join("docs")),
        Task::E2e { args } => rig::run(&args),
        Task::Install { root } => install(&root),
    }
}

/// `cargo xtask install`: the rig's rxl build, copied to ROOT/bin/rxl through a temporary
/// file in the same directory (a running rxl keeps its old binary).
fn install(root: &Path) -> anyhow::Result<()> {
    let built = rig::build_rxl(&repo_root())?;
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    let dst = bin.join("rxl");
    let tmp = bin.join(".rxl.install");
    std::fs::copy(&built, &tmp)
        .with_context(|| format!("copying {} to {}", built.display(), tmp.display()))?;
    std::fs::rename(&tmp, &dst).with_context(|| format!("renaming to {}", dst.display()))?;
    eprintln!("xtask: installed {}", dst.display());
    Ok(())
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

/// shellcheck over the rig's dom0 and guest scripts; any finding fails.
fn shellcheck() -> anyhow::Result<()> {
    let dir = repo_root().join(rig::SCRIPTS_DIR);
    let scripts = rig::scripts::files(&dir)
        .with_context(|| format!("listing the scripts under {}", dir.display()))?;
    eprintln!(
        "xtask: shellcheck ({} scripts under {})",
        scripts.len(),
        dir.display()
    );
    let status = Command::new("shellcheck")
        .args(["--shell=sh", "--external-sources"])
        .args(&scripts)
        .current_dir(&dir)
        .status()
        .context("cannot run shellcheck")?;
    if !status.success() {
        bail!("shellcheck found problems in the rig's scripts ({status})");
    }
    Ok(())
}

fn test(no_e2e: bool) -> anyhow::Result<()> {
    rig::packages::ensure_packages(TEST_PACKAGES, "cargo xtask test")?;
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    shellcheck()?;
    docs::check(&repo_root().join("docs"))?;
    // bootmenu's differential test runs Debian's pygrub from the rig's unpacked dom0 tree.
    let cache = match std::env::var_os("RXL_CACHE") {
        Some(c) if !c.is_empty() => PathBuf::from(c),
        _ => repo_root().join(".cache/e2e"),
    };
    let dom0 = rig::packages::unpacked_dom0_root(&cache).context("the dom0 tree for pygrub")?;
    let dom0 = dom0.to_string_lossy();
    // The tests that compare with Xen's C parser or pygrub, or boot under QEMU, skip
    // themselves (with a loud note) on a machine without those packages; here they must run.
    cargo_with(
        &["test", "--workspace", "--no-fail-fast"],
        &[
            ("RXL_REQUIRE_LIBXLUTIL", "1"),
            ("RXL_REQUIRE_QEMU", "1"),
            ("RXL_PYGRUB_ROOT", &dom0),
            ("RXL_REQUIRE_PYGRUB", "1"),
        ],
    )?;
    if !no_e2e {
        rig::run(&[])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn e2e_options_pass_through() {
        let cli =
            Cli::try_parse_from(["xtask", "e2e", "--keep", "--inject", "hang:pvgrub"]).unwrap();
        let Task::E2e { args } = cli.task else {
            panic!("not e2e: {cli:?}");
        };
        assert_eq!(args, ["--keep", "--inject", "hang:pvgrub"]);
        let cli = Cli::try_parse_from(["xtask", "e2e", "--help"]).unwrap();
        assert!(matches!(cli.task, Task::E2e { args } if args == ["--help"]));
    }

    #[test]
    fn test_takes_no_e2e() {
        let cli = Cli::try_parse_from(["xtask", "test", "--no-e2e"]).unwrap();
        assert!(matches!(cli.task, Task::Test { no_e2e: true }));
        assert!(Cli::try_parse_from(["xtask", "frobnicate"]).is_err());
    }

    #[test]
    fn every_needed_package_is_in_ci() {
        let ci = std::fs::read_to_string(repo_root().join(".ci/run")).unwrap();
        for p in TEST_PACKAGES {
            assert!(ci.contains(p), ".ci/run does not install {p}");
        }
    }
}
