//! HVM guests (`type = "hvm"`) through the rxl command line on the simulated host, up to a
//! paused domain: createdomain flags, HVM params, memory, the loaded hvmloader and BIOS,
//! the xenstore nodes, destroy; the `-machine xenfv` device model an unpaused guest runs
//! with; and the refusals and failures, which leave nothing behind.

mod common;

use std::path::{Path, PathBuf};

use common::{ok, stderr, stdout, Sim};
use xen_host::{hvm_param, DomId, Hypervisor};

/// A stand-in hvmloader: an ELF32 with one PT_LOAD segment of `code` at 1 MiB (16 KiB in
/// memory), entered at 1 MiB.
fn hvmloader(code: &[u8]) -> Vec<u8> {
    let paddr: u32 = 0x10_0000;
    let mut out = vec![0u8; 52 + 32];
    out[..4].copy_from_slice(b"\x7fELF");
    out[4] = 1; // ELFCLASS32
    out[5] = 1; // little endian
    out[6] = 1;
    out[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out[18..20].copy_from_slice(&3u16.to_le_bytes()); // EM_386
    out[20..24].copy_from_slice(&1u32.to_le_bytes());
    out[24..28].copy_from_slice(&paddr.to_le_bytes());
    out[28..32].copy_from_slice(&52u32.to_le_bytes()); // e_phoff
    out[40..42].copy_from_slice(&52u16.to_le_bytes());
    out[42..44].copy_from_slice(&32u16.to_le_bytes());
    out[44..46].copy_from_slice(&1u16.to_le_bytes());
    out[46..48].copy_from_slice(&40u16.to_le_bytes());
    let off = out.len() as u32;
    out.extend_from_slice(code);
    let ph = [1, off, paddr, paddr, code.len() as u32, 16 * 1024, 7, 16];
    for (j, w) in ph.iter().enumerate() {
        out[52 + 4 * j..56 + 4 * j].copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// A firmware directory with hvmloader (without ROMBIOS), SeaBIOS and Debian-like OVMF.
fn firmware_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("dir");
    let mut code = vec![0x90u8; 8192];
    code[64..81].copy_from_slice(b"\0rombios\0SeaBIOS\0");
    std::fs::write(dir.path().join("hvmloader"), hvmloader(&code)).expect("hvmloader");
    std::fs::write(dir.path().join("bios-256k.bin"), vec![0xea; 256 * 1024]).expect("bios");
    let mut fd = vec![0u8; 128 * 1024];
    fd[40..44].copy_from_slice(b"_FVH");
    std::fs::write(dir.path().join("OVMF.fd"), fd).expect("ovmf");
    dir
}

/// [`hvm_cfg`] with a 1 MiB raw disk `boot.img` in `dir` as hda, and `extra` lines.
fn hvm_disk_cfg(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let disk = dir.join("boot.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).expect("disk");
    hvm_cfg(
        dir,
        name,
        &format!(
            "disk = [ \"format=raw,vdev=hda,access=rw,target={}\" ]\n{extra}",
            disk.display()
        ),
    )
}

fn hvm_cfg(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let p = dir.join(format!("{name}.cfg"));
    std::fs::write(
        &p,
        format!(
            "name = \"{name}\"\ntype = \"hvm\"\nmemory = 64\nvcpus = 2\n\
             uuid = \"5e7d8a1c-3c8b-4d1e-9f5a-2b6c7d8e9f01\"\nserial = \"pty\"\n{extra}"
        ),
    )
    .expect("cfg");
    p
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8")
}

fn run(sim: &Sim, fw: &Path, args: &[&str]) -> std::process::Output {
    sim.run_env(args, &[("RXL_FIRMWARE_PATH", s(fw))])
}

fn node(sim: &Sim, path: &str) -> Option<String> {
    sim.host()
        .xs_dump(path)
        .expect("xs_dump")
        .into_iter()
        .find(|(p, _)| p == path)
        .map(|(_, v)| v)
}

/// Only Domain-0 is left, with no guest's xenstore nodes.
fn nothing_left(sim: &Sim) {
    assert_eq!(sim.host().domain_ids().expect("ids"), vec![DomId(0)]);
    let vm = sim.host().xs_dump("/vm").expect("xs_dump");
    assert!(
        vm.iter().all(|(p, _)| !p.contains("5e7d8a1c")),
        "the guest's /vm is gone: {vm:?}"
    );
}

#[test]
fn a_paused_hvm_guest_is_built_as_libxl_builds_one_and_destroyed_without_trace() {
    let sim = Sim::new();
    let fw = firmware_dir();
    let cfg = hvm_cfg(fw.path(), "hvm1", "");
    let id: u16 = stdout(&ok(run(&sim, fw.path(), &["create", "-p", s(&cfg)])))
        .trim()
        .parse()
        .expect("domid");
    let dom = DomId(id);
    let host = sim.host();

    // An HVM container (createdomain checks the HVM emulation flags).
    let info = host
        .domain_info(dom)
        .expect("info")
        .expect("the domain exists");
    assert!(info.hvm, "{info:?}");
    assert!(info.paused, "{info:?}");
    // hvm_set_conf_params and the ioreq server pages.
    for (param, want) in [
        (hvm_param::HPET_ENABLED, 1),
        (hvm_param::VPT_ALIGN, 1),
        (hvm_param::TIMER_MODE, 1),
        (hvm_param::IOREQ_SERVER_PFN, 0xfeff0),
        (hvm_param::NR_IOREQ_SERVER_PAGES, 8),
        (hvm_param::STORE_PFN, 0xfeffc),
        (hvm_param::CONSOLE_PFN, 0xfefff),
    ] {
        assert_eq!(
            host.get_hvm_param(dom, param).expect("param"),
            want,
            "param {param}"
        );
    }
    // The memory map: RAM from 1 MiB to 64 - 8 (video RAM) MiB.
    let map = host.memory_map(dom).expect("map");
    assert_eq!(map.len(), 1, "{map:?}");
    assert_eq!(
        (map[0].addr, map[0].size, map[0].kind),
        (1 << 20, 55 << 20, 1)
    );
    // (Guest memory lives in the creating process on the simulated host: the bytes are
    // checked in-process by crates/toolstack/tests/hvm_create.rs.)
    // The xenstore nodes libxl writes for HVM.
    let dp = format!("/local/domain/{id}");
    for (path, want) in [
        (format!("{dp}/hvmloader/bios"), "seabios"),
        (format!("{dp}/hvmloader/allow-memory-relocate"), "0"),
        (format!("{dp}/platform/acpi"), "1"),
        (format!("{dp}/platform/device-model"), "qemu_xen"),
        (format!("{dp}/memory/videoram"), "8192"),
        (format!("{dp}/memory/target"), "57344"),
        (format!("{dp}/memory/static-max"), "65536"),
        (
            "/vm/5e7d8a1c-3c8b-4d1e-9f5a-2b6c7d8e9f01/image/ostype".to_string(),
            "hvm",
        ),
    ] {
        assert_eq!(node(&sim, &path).as_deref(), Some(want), "{path}");
    }
    assert_eq!(
        node(&sim, &format!("/libxl/{id}/type")).as_deref(),
        Some("hvm")
    );

    ok(run(&sim, fw.path(), &["destroy", "hvm1"]));
    nothing_left(&sim);
    assert!(sim.host().xs_dump(&dp).expect("xs_dump").is_empty());
}

fn device_models(sim: &Sim) -> Vec<u32> {
    sim.processes(&["sim-device-model"])
}

/// The device model's arguments after the simulated host's `--`.
fn dm_args(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .expect("cmdline")
        .split(|&b| b == 0)
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .skip_while(|a| a != "--")
        .skip(1)
        .filter(|a| !a.is_empty())
        .collect()
}

#[test]
fn an_hvm_guest_runs_with_its_xenfv_device_model_and_destroy_leaves_nothing() {
    let sim = Sim::new();
    let fw = firmware_dir();
    let cfg = hvm_disk_cfg(fw.path(), "hvm2", "boot = \"c\"\n");
    let o = run(&sim, fw.path(), &["create", "-q", s(&cfg)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dom = stdout(&o).trim().to_owned();
    let pids = device_models(&sim);
    assert_eq!(pids.len(), 1, "one device model: {pids:?}");
    let args = dm_args(pids[0]).join(" ");
    for want in [
        format!("-xen-domid {dom} -no-shutdown"),
        "-machine xenfv,suppress-vmdesc=on".to_string(),
        "-serial pty".to_string(),
        "-boot order=c".to_string(),
        format!(
            "-drive file={},if=ide,index=0,media=disk,format=raw,cache=writeback",
            fw.path().join("boot.img").display()
        ),
        format!(
            "path={}/qmp-libxl-{dom},server=on,wait=off",
            sim.dir.path().join("run").display()
        ),
    ] {
        assert!(args.contains(&want), "{want:?} not in {args}");
    }
    assert_eq!(
        node(&sim, &format!("/local/domain/0/device-model/{dom}/state")).as_deref(),
        Some("running")
    );
    assert_eq!(
        node(&sim, &format!("/local/domain/{dom}/image/device-model-pid")),
        Some(pids[0].to_string())
    );
    // Its serial port's pty, from QMP's query-chardev, is where consoles look for it.
    let tty = node(&sim, &format!("/local/domain/{dom}/serial/0/tty")).expect("serial tty");
    assert!(tty.starts_with("/dev/pts/"), "{tty}");
    // It runs (unpaused), and is listed.
    let listed = sim.domain("hvm2").expect("listed");
    assert_eq!(listed["domid"].to_string(), dom);
    let info = sim
        .host()
        .domain_info(DomId(dom.parse().expect("domid")))
        .expect("info")
        .expect("exists");
    assert!(!info.paused && info.hvm, "{info:?}");

    ok(run(&sim, fw.path(), &["destroy", "hvm2"]));
    assert_eq!(device_models(&sim), Vec::<u32>::new());
    // Asked to quit over QMP (a signal would only pause a -no-shutdown QEMU).
    let log = std::fs::read_to_string(sim.state().join("log").join("qemu-dm-hvm2.log"))
        .expect("the device model's log");
    assert!(log.contains("quitting (QMP quit)"), "{log}");
    assert!(sim
        .host()
        .xs_dump(&format!("/local/domain/0/device-model/{dom}"))
        .expect("dump")
        .is_empty());
    nothing_left(&sim);
}

/// With VNC on, where the device model listens is published as libxl does
/// (`console/vnc-listen`, `console/vnc-port`, from QMP `query-vnc`); with it off, nothing.
#[test]
fn an_hvm_guest_with_vnc_publishes_where_its_device_model_listens() {
    let sim = Sim::new();
    let fw = firmware_dir();
    let cfg = hvm_disk_cfg(
        fw.path(),
        "vnc1",
        "vnc = 1\nvncdisplay = 3\nvncunused = 0\n",
    );
    let dom = stdout(&ok(run(&sim, fw.path(), &["create", "-q", s(&cfg)])))
        .trim()
        .to_owned();
    let args = dm_args(device_models(&sim)[0]).join(" ");
    assert!(args.contains("-vnc 127.0.0.1:3 "), "{args}");
    let console = format!("/local/domain/{dom}/console");
    assert_eq!(
        node(&sim, &format!("{console}/vnc-listen")).as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        node(&sim, &format!("{console}/vnc-port")).as_deref(),
        Some("5903")
    );
    ok(run(&sim, fw.path(), &["destroy", "vnc1"]));

    let cfg = hvm_disk_cfg(fw.path(), "vnc0", "vnc = 0\n");
    let dom = stdout(&ok(run(&sim, fw.path(), &["create", "-q", s(&cfg)])))
        .trim()
        .to_owned();
    assert_eq!(
        node(&sim, &format!("/local/domain/{dom}/console/vnc-port")),
        None
    );
    ok(run(&sim, fw.path(), &["destroy", "vnc0"]));
    nothing_left(&sim);
}

/// The simulated host's interfaces, as (name, bridge).
fn interfaces(sim: &Sim) -> Vec<(String, Option<String>)> {
    let mut v: Vec<_> = sim
        .host()
        .vif_interfaces()
        .expect("interfaces")
        .into_iter()
        .map(|i| (i.name, i.bridge))
        .collect();
    v.sort();
    v
}

#[test]
fn an_hvm_vif_is_netbacks_and_the_emulated_nics_tap_and_destroy_removes_both() {
    let sim = Sim::new();
    let fw = firmware_dir();
    let cfg = hvm_cfg(
        fw.path(),
        "nic",
        "vif = [ \"mac=00:16:3e:11:22:33,bridge=xenbr0\",\n\
         \"mac=00:16:3e:11:22:44,bridge=xenbr0,type=vif\" ]\n",
    );
    let o = run(&sim, fw.path(), &["create", "-q", s(&cfg)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dom = stdout(&o).trim().to_owned();
    let pids = device_models(&sim);
    assert_eq!(pids.len(), 1, "{pids:?}");
    let args = dm_args(pids[0]).join(" ");
    // Only the first vif is emulated (type=vif is PV only), with the vif's MAC.
    assert!(
        args.contains(&format!(
            "-device rtl8139,id=nic0,netdev=net0,mac=00:16:3e:11:22:33 -netdev \
             type=tap,id=net0,ifname=vif{dom}.0-emu,br=xenbr0,script=no,downscript=no"
        )),
        "{args}"
    );
    assert!(!args.contains("nic1"), "{args}");
    // Both netback interfaces and the emulated NIC's tap are ports of xenbr0.
    let br = Some("xenbr0".to_string());
    assert_eq!(
        interfaces(&sim),
        vec![
            (format!("vif{dom}.0"), br.clone()),
            (format!("vif{dom}.0-emu"), br.clone()),
            (format!("vif{dom}.1"), br.clone()),
        ]
    );
    let be = format!("/local/domain/0/backend/vif/{dom}");
    assert_eq!(
        node(&sim, &format!("{be}/0/type")).as_deref(),
        Some("vif_ioemu")
    );
    assert_eq!(node(&sim, &format!("{be}/1/type")).as_deref(), Some("vif"));
    // The tap's run is logged with the vif's.
    let log = std::fs::read_to_string(
        sim.state()
            .join("log")
            .join(format!("hotplug-{dom}-vif-0.log")),
    )
    .expect("the vif's hotplug log");
    assert!(
        log.contains(&format!("interface vif{dom}.0-emu up")),
        "{log}"
    );

    ok(run(&sim, fw.path(), &["destroy", "nic"]));
    assert_eq!(device_models(&sim), Vec::<u32>::new());
    assert_eq!(interfaces(&sim), Vec::new());
    assert!(sim.host().xs_dump(&be).expect("dump").is_empty());
    nothing_left(&sim);
}

/// `rxl create` of the HVM guest `name` with `extra` config lines: it must fail with status
/// 1; its standard error.
fn create_fails(sim: &Sim, fw: &Path, name: &str, extra: &str) -> String {
    let cfg = hvm_cfg(fw, name, extra);
    let o = run(sim, fw, &["create", s(&cfg)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    stderr(&o)
}

#[test]
fn an_hvm_vif_on_a_missing_bridge_fails_the_create_naming_it_and_leaves_nothing() {
    let sim = Sim::new();
    let fw = firmware_dir();
    let err = create_fails(
        &sim,
        fw.path(),
        "nobr",
        "vif = [ \"mac=00:16:3e:11:22:55,bridge=xenbr9\" ]\n",
    );
    assert!(err.contains("vif 0 (00:16:3e:11:22:55)"), "{err}");
    assert!(err.contains("bridge xenbr9 does not exist"), "{err}");
    assert_eq!(device_models(&sim), Vec::<u32>::new());
    assert_eq!(interfaces(&sim), Vec::new());
    nothing_left(&sim);
}

#[test]
fn an_hvm_device_model_that_cannot_run_fails_the_create_and_leaves_nothing() {
    let sim = Sim::new();
    let fw = firmware_dir();
    // A program that does not exist, named by the config.
    let err = create_fails(
        &sim,
        fw.path(),
        "nodm",
        "device_model_override = \"/nonexistent/qemu-system-i386\"\n",
    );
    assert!(
        err.contains("cannot start /nonexistent/qemu-system-i386"),
        "{err}"
    );
    assert!(err.contains("-machine xenfv,suppress-vmdesc=on"), "{err}");
    nothing_left(&sim);

    // One that exits at once: the error shows its log.
    let cfg = hvm_cfg(fw.path(), "dies", "");
    let o = sim.run_env(
        &["create", s(&cfg)],
        &[
            ("RXL_FIRMWARE_PATH", s(fw.path())),
            ("RXL_SIM_FAIL", "dm_start"),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("qemu-dm-dies.log"), "{err}");
    assert!(err.contains("last lines of the log"), "{err}");
    assert_eq!(device_models(&sim), Vec::<u32>::new());
    nothing_left(&sim);
}

#[test]
fn firmware_that_cannot_boot_is_refused_and_nothing_is_left() {
    let sim = Sim::new();
    let fw = firmware_dir();
    let cases: [(&str, &str, &[&str]); 2] = [
        (
            "rom",
            "bios = \"rombios\"\n",
            &[
                "hvmloader was built without ROMBIOS",
                "use bios = \"seabios\"",
            ],
        ),
        (
            "uefi",
            "bios = \"ovmf\"\n",
            &[
                "OVMF.fd is an OVMF without Xen support",
                "Debian bookworm's OVMF lacks Xen support",
                "OvmfXen.dsc",
            ],
        ),
    ];
    for (name, extra, wants) in cases {
        let cfg = hvm_cfg(fw.path(), name, extra);
        let o = run(&sim, fw.path(), &["create", "-p", s(&cfg)]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stderr(&o));
        for w in wants {
            assert!(stderr(&o).contains(w), "{name}: wants {w}: {}", stderr(&o));
        }
        nothing_left(&sim);
    }

    // Missing files: hvmloader, then SeaBIOS.
    let empty = tempfile::tempdir().expect("dir");
    let cfg = hvm_cfg(fw.path(), "nofw", "");
    let o = run(&sim, empty.path(), &["create", "-p", s(&cfg)]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("firmware \"hvmloader\": not found") && err.contains("hvmloader"),
        "{err}"
    );
    std::fs::copy(fw.path().join("hvmloader"), empty.path().join("hvmloader")).expect("copy");
    let o = run(&sim, empty.path(), &["create", "-p", s(&cfg)]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("firmware \"seabios\": not found") && err.contains("bios-256k.bin"),
        "{err}"
    );
    nothing_left(&sim);
}

#[test]
fn the_dry_run_shows_the_hvm_layout() {
    let fw = firmware_dir();
    let cfg = hvm_cfg(fw.path(), "hvmdry", "");
    let o = ok(common::rxl_env(
        &["create", "-n", "--json", s(&cfg)],
        &[("RXL_FIRMWARE_PATH", s(fw.path()))],
    ));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["type"], "hvm");
    assert_eq!(v["layout"]["bios"], "seabios");
    assert_eq!(v["layout"]["entry"], 0x10_0000);
    assert_eq!(v["layout"]["modules"][0]["cmdline"], "firmware");
}

/// The host monitor's log.
fn monitord_log(sim: &Sim) -> String {
    std::fs::read_to_string(sim.state().join("log/monitord.log")).unwrap_or_default()
}

#[test]
fn an_hvm_guest_s_device_model_dying_is_a_crash_and_its_reboot_and_destroy_are_not() {
    let sim = Sim::new();
    let fw = firmware_dir();
    let cfg = hvm_disk_cfg(fw.path(), "hvm3", "on_crash = \"destroy\"\n");
    // With the host monitor.
    let dom = stdout(&ok(run(&sim, fw.path(), &["create", s(&cfg)])))
        .trim()
        .to_owned();
    let first = DomId(dom.parse().expect("domid"));
    // Its PV drivers came up, so a reboot goes through control/shutdown.
    sim.host()
        .set_hvm_param(first, hvm_param::CALLBACK_IRQ, 1)
        .expect("param");
    ok(run(&sim, fw.path(), &["reboot", "-w", "hvm3"]));
    sim.wait_for("the rebooted guest and its device model", |s| {
        s.domain("hvm3").is_some_and(|d| {
            d["domid"].as_u64() != Some(u64::from(first.0)) && d["state"] != "--p---"
        }) && device_models(s).len() == 1
    });
    ok(run(&sim, fw.path(), &["destroy", "hvm3"]));
    assert_eq!(device_models(&sim), Vec::<u32>::new());
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = monitord_log(&sim);
    assert!(log.contains("shut down (reboot): restart"), "{log}");
    assert!(!log.contains("treating as a crash"), "{log}");

    // Killed behind rxl's back while the guest runs: a crash, on_crash = destroy.
    let dom = stdout(&ok(run(&sim, fw.path(), &["create", s(&cfg)])))
        .trim()
        .to_owned();
    let pid = device_models(&sim)[0];
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid")),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    // Destroyed, and its cleanup (which ends with rxl's record) finished.
    sim.wait_for("the crashed guest to be destroyed and cleaned up", |s| {
        s.domain("hvm3").is_none() && !s.state().join(format!("{dom}.json")).exists()
    });
    let log = monitord_log(&sim);
    assert!(
        log.contains(&format!(
            "device model of domain {dom} (pid {pid}) exited: treating as a crash"
        )),
        "{log}"
    );
    assert_eq!(device_models(&sim), Vec::<u32>::new());
    nothing_left(&sim);
}
