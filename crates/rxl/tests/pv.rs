//! PV guests (`type = "pv"`) through the rxl command line on the simulated host: the dry
//! run's layout, the life of a guest, and the kernels and firmware refused before anything
//! is built.

mod common;

use std::path::{Path, PathBuf};

use common::{guest_dir, ok, stderr, stdout, Sim};

/// A directory holding the synthetic PV kernel (Linux's notes) and a ramdisk.
fn pv_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("vmlinuz"),
        pv::testkernel::PvKernel::linux().bytes(),
    )
    .expect("kernel");
    std::fs::write(dir.path().join("initrd.img"), vec![0x42; 5000]).expect("ramdisk");
    dir
}

fn write_cfg(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(format!("{name}.cfg"));
    std::fs::write(&p, body).expect("write cfg");
    p
}

fn pv_cfg(dir: &Path, name: &str, extra: &str) -> PathBuf {
    write_cfg(
        dir,
        name,
        &format!(
            "name = \"{name}\"\ntype = \"pv\"\nmemory = 32\nvcpus = 2\nkernel = \"vmlinuz\"\n\
             ramdisk = \"initrd.img\"\ncmdline = \"console=hvc0\"\n{extra}"
        ),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8")
}

#[test]
fn the_dry_run_shows_the_pv_layout() {
    let dir = pv_dir();
    let cfg = pv_cfg(dir.path(), "pvdry", "");
    let text = stdout(&ok(common::rxl(&["create", "-n", s(&cfg)])));
    assert!(text.contains("type      pv"), "{text}");
    for want in [
        "start info",
        "page tables",
        "p2m",
        "boot stack",
        "ramdisk",
        "xenstore",
    ] {
        assert!(
            text.to_lowercase().contains(want),
            "the PV layout names {want}: {text}"
        );
    }
    let o = ok(common::rxl(&["create", "-n", "--json", s(&cfg)]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["type"], "pv");
    assert!(v["layout"].is_object(), "{v}");
}

#[test]
fn a_pv_guest_lives_through_pause_reboot_and_shutdown() {
    let sim = Sim::new();
    let dir = pv_dir();
    let cfg = pv_cfg(dir.path(), "pvlife", "");
    let id: u64 = stdout(&ok(sim.run(&["create", s(&cfg)])))
        .trim()
        .parse()
        .expect("domid");
    let d = sim.domain("pvlife").expect("listed");
    assert_eq!(d["memory_mib"], 32);
    assert!(
        !d["state"].as_str().expect("state").contains('c'),
        "the guest did not crash at its entry: {d}"
    );
    ok(sim.run(&["pause", "pvlife"]));
    assert_eq!(
        sim.domain("pvlife").expect("listed")["state"]
            .as_str()
            .map(|s| &s[2..3]),
        Some("p")
    );
    ok(sim.run(&["unpause", "pvlife"]));
    ok(sim.run(&["reboot", "-w", "pvlife"]));
    sim.wait_for("the restarted PV guest", |s| {
        s.domain("pvlife").is_some_and(|d| {
            d["domid"].as_u64() != Some(id) && d["memory_mib"] == 32 && d["state"] != "--p---"
        })
    });
    let new = sim.domain("pvlife").expect("listed");
    assert!(
        !new["state"].as_str().expect("state").contains('c'),
        "the restarted guest runs: {new}"
    );
    ok(sim.run(&["shutdown", "-w", "pvlife"]));
    assert!(sim.domain("pvlife").is_none(), "gone after shutdown -w");
}

#[test]
fn kernels_and_firmware_that_cannot_boot_as_pv_are_refused_with_their_line() {
    let sim = Sim::new();
    // The PVH-only assembly guest.
    let cfg = write_cfg(
        guest_dir(),
        "pvh-as-pv",
        "name = \"pvh-as-pv\"\ntype = \"pv\"\nmemory = 32\nkernel = \"hello.elf\"\n",
    );
    let o = sim.run(&["create", s(&cfg)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("pvh-as-pv.cfg:4:"),
        "points at the kernel line: {err}"
    );
    assert!(err.contains("hello.elf") && err.contains("PVH"), "{err}");
    assert!(sim.domain("pvh-as-pv").is_none());

    // GRUB's PV image nowhere on the firmware search path.
    let empty = tempfile::tempdir().expect("dir");
    let dir = pv_dir();
    let cfg = write_cfg(
        dir.path(),
        "grub64",
        "name = \"grub64\"\ntype = \"pv\"\nmemory = 32\nfirmware = \"pvgrub64\"\n",
    );
    let o = sim.run_env(
        &["create", s(&cfg)],
        &[("RXL_FIRMWARE_PATH", empty.path().to_str().expect("utf-8"))],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("grub-x86_64-xen.bin") && err.contains("pvgrub64.bin"),
        "{err}"
    );
    assert!(err.contains("grub-xen-host"), "{err}");
    // Found there, it boots as the guest's kernel.
    std::fs::copy(
        dir.path().join("vmlinuz"),
        empty.path().join("grub-x86_64-xen.bin"),
    )
    .expect("copy");
    ok(sim.run_env(
        &["create", s(&cfg)],
        &[("RXL_FIRMWARE_PATH", empty.path().to_str().expect("utf-8"))],
    ));
    ok(sim.run(&["destroy", "grub64"]));

    // 32-bit PV-GRUB: this Xen runs 64-bit PV guests only.
    let cfg = write_cfg(
        dir.path(),
        "grub32",
        "name = \"grub32\"\ntype = \"pv\"\nmemory = 32\nfirmware = \"pvgrub32\"\n",
    );
    let o = sim.run(&["create", s(&cfg)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("64-bit PV guests only"),
        "{}",
        stderr(&o)
    );
    assert!(sim.domains().iter().all(|d| d["domid"] == 0));
}
