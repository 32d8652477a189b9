//! `cargo xtask demo`: rxl's main job on a simulated host, no Xen needed.
//!
//! Builds rxl and the assembly PVH test guest, then runs, printing each command:
//! `config check`, `create -n` (the resolved domain and its guest memory layout),
//! `create` on a fresh simulated host, `list`, `shutdown -w`, `list`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};

use crate::{cargo, repo_root};

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

fn run(rxl: &Path, args: &[&str]) -> anyhow::Result<()> {
    println!("\n$ rxl {}", args.join(" "));
    let status = Command::new(rxl)
        .args(args)
        .status()
        .with_context(|| format!("cannot run {}", rxl.display()))?;
    if !status.success() {
        bail!("rxl {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Run the demo.
pub fn run_demo() -> anyhow::Result<()> {
    let root = repo_root();
    cargo(&["build", "--quiet", "-p", "rxl"])?;
    let rxl = target_dir(&root).join("debug").join("rxl");

    let build = root.join("examples").join("build");
    let status = Command::new("sh")
        .arg(root.join("tests/guests/hello/build.sh"))
        .arg(&build)
        .status()
        .context("cannot run tests/guests/hello/build.sh (needs GNU as and ld)")?;
    if !status.success() {
        bail!("building the test guest failed ({status})");
    }

    let host = target_dir(&root).join("demo-host");
    if host.exists() {
        std::fs::remove_dir_all(&host)
            .with_context(|| format!("cannot clear {}", host.display()))?;
    }
    let cfg = root.join("examples").join("hello.cfg");
    let cfg = cfg.to_str().context("non-UTF-8 repository path")?;
    let sim = host.to_str().context("non-UTF-8 target path")?;

    run(&rxl, &["config", "check", cfg])?;
    run(&rxl, &["create", "-n", cfg])?;
    run(&rxl, &["--sim", sim, "create", cfg])?;
    run(&rxl, &["--sim", sim, "list"])?;
    run(&rxl, &["--sim", sim, "shutdown", "-w", "hello"])?;
    run(&rxl, &["--sim", sim, "list"])?;

    // A guest with a disk image and a vif; a second disk hot-plugged and detached.
    let disk = build.join("disk.img");
    let extra = build.join("extra.img");
    for img in [&disk, &extra] {
        let f = std::fs::File::create(img)
            .with_context(|| format!("cannot create {}", img.display()))?;
        f.set_len(16 << 20)
            .with_context(|| format!("cannot size {}", img.display()))?;
    }
    let devices = root.join("examples").join("hello-devices.cfg");
    let devices = devices.to_str().context("non-UTF-8 repository path")?;
    let extra = format!(
        "format=raw,vdev=xvdb,access=ro,target={}",
        extra.to_str().context("non-UTF-8 repository path")?
    );
    run(&rxl, &["create", "-n", devices])?;
    run(&rxl, &["--sim", sim, "create", devices])?;
    run(&rxl, &["--sim", sim, "block-list", "hello-devices"])?;
    run(&rxl, &["--sim", sim, "network-list", "hello-devices"])?;
    run(
        &rxl,
        &["--sim", sim, "block-attach", "hello-devices", &extra],
    )?;
    run(&rxl, &["--sim", sim, "block-list", "hello-devices"])?;
    run(
        &rxl,
        &["--sim", sim, "block-detach", "hello-devices", "xvdb"],
    )?;
    run(&rxl, &["--sim", sim, "destroy", "hello-devices"])?;
    run(&rxl, &["--sim", sim, "list"])?;
    println!("\nThe simulated host lives in {sim}; try `rxl --sim {sim} ...` yourself.");
    Ok(())
}
