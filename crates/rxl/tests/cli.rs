//! The rxl command line, driven as a user or a script would: exit codes, output contracts,
//! and whole lifecycles on the simulated host.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{guest_dir, json, ok, plant_restart_mark, runs, rxl, stderr, stdout, Sim};
use serde_json::Value;

fn write_cfg(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(format!("{name}.cfg"));
    std::fs::write(&p, body).expect("write cfg");
    p
}

fn hello_cfg(name: &str, extra: &str) -> PathBuf {
    let body = format!(
        "name = \"{name}\"\ntype = \"pvh\"\nmemory = 32\nvcpus = 2\nkernel = \"hello.elf\"\n\
         ramdisk = \"initrd.img\"\ncmdline = \"hello world\"\n{extra}"
    );
    write_cfg(guest_dir(), name, &body)
}

#[test]
fn usage_errors_exit_2() {
    let o = rxl(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = rxl(&["create"]);
    assert_eq!(o.status.code(), Some(2));
    let help = ok(rxl(&["--help"]));
    assert!(stdout(&help).contains("Examples:"), "{}", stdout(&help));
    // --sim documents every fault-injection operation.
    for op in sim::FAIL_OPS {
        assert!(stdout(&help).contains(op), "--help does not name {op}");
    }
}

#[test]
fn a_backend_that_never_probes_fails_the_create_at_the_device_and_leaves_nothing() {
    let sim = Sim::new();
    let img = tempfile::NamedTempFile::new().expect("image");
    let cfg = hello_cfg(
        "stuck",
        &format!(
            "disk = [ 'file:{},xvda,w' ]\nvif = [ 'mac=00:16:3e:01:02:03' ]\n",
            img.path().display()
        ),
    );
    let o = sim.run_env(
        &["create", "-e", cfg.to_str().unwrap()],
        &[
            ("RXL_SIM_DEVICE_TIMEOUT_MS", "300"),
            ("RXL_SIM_FAIL", "backend_init"),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("step \"devices\""), "{err}");
    assert!(err.contains("disk xvda (line 8:"), "{err}");
    assert!(err.contains("did not reach state 2 (InitWait)"), "{err}");
    assert!(sim.domain("stuck").is_none(), "the domain went");
    let left: Vec<String> = sim
        .host()
        .xs_dump("/")
        .expect("dump")
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| {
            p.contains("/backend/vbd")
                || p.contains("/backend/vif")
                || p.starts_with("/libxl/")
                || (p.starts_with("/local/domain/") && !p.starts_with("/local/domain/0"))
        })
        .collect();
    assert_eq!(left, Vec::<String>::new(), "no node of the guest is left");
}

#[test]
fn a_reader_that_goes_away_ends_rxl_quietly() {
    let sim = Sim::new();
    let cfg = hello_cfg("piped", "");
    ok(sim.run(&["create", "-e", cfg.to_str().unwrap()]));
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["info"],
        &["domid", "piped"],
    ] {
        // A pipe whose reading end is already closed, as after `| head -n 0`.
        let (read_end, write_end) = nix::unistd::pipe().expect("pipe");
        drop(read_end);
        let o = sim
            .command(args, None)
            .stdout(std::process::Stdio::from(write_end))
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("run rxl");
        assert_eq!(o.status.code(), Some(141), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).is_empty(), "{args:?}: {}", stderr(&o));
    }
    // create with a closed stdout still starts its guest (and its monitor).
    let (read_end, write_end) = nix::unistd::pipe().expect("pipe");
    drop(read_end);
    let second = hello_cfg("piped-2", "");
    let o = sim
        .command(&["create", "-e", second.to_str().unwrap()], None)
        .stdout(std::process::Stdio::from(write_end))
        .output()
        .expect("run rxl");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(sim.domain("piped-2").is_some());
}

#[test]
fn without_xen_or_sim_commands_say_so() {
    if Path::new("/dev/xen/privcmd").exists() {
        return;
    }
    for cmd in [&["list"][..], &["info"], &["destroy", "x"]] {
        let o = rxl(cmd);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains(
                "no Xen hypervisor here (/dev/xen/privcmd is missing); use --sim DIR for a simulated host"
            ),
            "{cmd:?}: {}",
            stderr(&o)
        );
        assert_eq!(
            stderr(&o).lines().count(),
            1,
            "one clear line: {}",
            stderr(&o)
        );
    }
}

#[test]
fn config_parse_json_contract() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = write_cfg(
        dir.path(),
        "p",
        "name = 'a'\nmemory = 0x20\nextra = \"x\"\nextra += \" y\"\ndisk = [ 'a', [ 'b', 'c' ] ]\n",
    );
    let o = ok(rxl(&[
        "config",
        "parse",
        cfg.to_str().expect("utf-8"),
        "--json",
    ]));
    let v = json(&o);
    assert_eq!(v["file"], cfg.to_str().expect("utf-8"));
    assert_eq!(v["settings"]["name"], "a");
    assert_eq!(v["settings"]["memory"], "0x20");
    assert_eq!(v["settings"]["extra"], "x y");
    assert_eq!(v["settings"]["disk"], serde_json::json!(["a", ["b", "c"]]));

    let bad = write_cfg(dir.path(), "bad", "name = 'a\nmemory = = 3\n");
    let o = rxl(&["config", "parse", bad.to_str().expect("utf-8"), "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v = json(&o);
    let errors = v["errors"].as_array().expect("errors array");
    assert!(errors.len() >= 2, "every syntax error is reported: {v}");
    assert_eq!(errors[0]["line"], 1);
    let text = stderr(&o);
    assert!(text.contains(&format!("{}:1:", bad.display())), "{text}");
    assert!(text.contains("error:"), "{text}");
}

#[test]
fn config_check_exit_codes_and_diagnostics() {
    let good = hello_cfg("checked", "");
    ok(rxl(&["config", "check", good.to_str().expect("utf-8")]));

    let dir = tempfile::tempdir().expect("tmp");
    let cfg = write_cfg(
        dir.path(),
        "mixed",
        "name = \"m\"\ntype = \"pvh\"\nkernel = \"k\"\nfirmware = \"/x/fw.bin\"\n",
    );
    let o = rxl(&["config", "check", cfg.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1));
    let text = stderr(&o);
    assert!(text.contains(&format!("{}:4:", cfg.display())), "{text}");
    assert!(
        text.contains(&format!("{}:3:", cfg.display())),
        "both lines named: {text}"
    );

    let cfg = write_cfg(
        dir.path(),
        "uefi",
        "name = \"u\"\ntype = \"pvh\"\nfirmware = \"uefi\"\n",
    );
    let o = rxl(&["config", "check", cfg.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1));
    let text = stderr(&o);
    assert!(text.contains(&format!("{}:3:", cfg.display())), "{text}");
    assert!(text.contains("ovmf"), "hint for uefi: {text}");

    // A missing kernel is found by check, pointing at its line.
    let cfg = write_cfg(
        dir.path(),
        "nokernel",
        "name = \"n\"\ntype = \"pvh\"\nkernel = \"absent.elf\"\n",
    );
    let o = rxl(&["config", "check", cfg.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!("{}:3:", cfg.display())),
        "{}",
        stderr(&o)
    );

    // Overrides apply after the file.
    let o = rxl(&["config", "check", good.to_str().expect("utf-8"), "memory=0"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "memory = 0 is refused: {}",
        stderr(&o)
    );
}

#[test]
fn dry_run_json_contract() {
    let cfg = hello_cfg("dry", "modules = [ [ \"dry.cfg\", \"with cmdline\" ] ]\n");
    let o = ok(rxl(&[
        "create",
        "-n",
        cfg.to_str().expect("utf-8"),
        "--json",
        "vcpus=1",
    ]));
    let v = json(&o);
    let dir = guest_dir();
    assert_eq!(v["name"], "dry");
    assert_eq!(v["type"], "pvh");
    assert_eq!(v["memory_mib"], 32);
    assert_eq!(v["maxmem_mib"], 32);
    assert_eq!(v["vcpus"], 1);
    assert!(v["uuid"].as_str().is_some_and(|u| u.len() == 36));
    assert_eq!(v["boot"]["kind"], "kernel");
    assert_eq!(
        v["boot"]["kernel"],
        dir.join("hello.elf").to_str().expect("utf-8")
    );
    assert_eq!(v["boot"]["cmdline"], "hello world");
    let modules = v["boot"]["modules"].as_array().expect("modules");
    assert_eq!(modules.len(), 2, "ramdisk is module 0: {modules:?}");
    assert_eq!(
        modules[0]["path"],
        dir.join("initrd.img").to_str().expect("utf-8")
    );
    assert_eq!(modules[0]["cmdline"], Value::Null);
    assert_eq!(modules[1]["cmdline"], "with cmdline");
    for key in [
        "on_poweroff",
        "on_reboot",
        "on_crash",
        "on_watchdog",
        "on_soft_reset",
    ] {
        assert!(v[key].is_string(), "{key}: {v}");
    }
    assert_eq!(v["on_reboot"], "restart");
    let layout = &v["layout"];
    assert_eq!(layout["entry"].as_u64(), Some(0x10_0000));
    assert!(layout["start_info"].as_u64().is_some());
    assert!(layout["rsdp"].as_u64().is_some());
    let lmods = layout["modules"].as_array().expect("layout modules");
    assert_eq!(lmods.len(), 2);
    assert_eq!(lmods[0]["size"], 16);
    assert_eq!(
        lmods[0]["paddr"].as_u64().map(|p| p % 4096),
        Some(0),
        "page aligned"
    );
    assert!(layout["memmap"]
        .as_array()
        .is_some_and(|m| m.iter().any(|e| e["type"] == "ram")));

    // The text form is a summary with the memory table.
    let o = ok(rxl(&["create", "-n", cfg.to_str().expect("utf-8")]));
    assert!(stdout(&o).contains("start_info"), "{}", stdout(&o));
}

#[test]
fn dry_run_shows_the_devices_a_create_would_set_up() {
    let cfg = hello_cfg(
        "devs",
        "disk = [ \"root.img,raw,xvda,rw\", \"phy:/dev/vg/data,xvdb,r\" ]\n\
         vif = [ \"mac=00:16:3e:01:02:03\", \"bridge=br1\" ]\n",
    );
    let path = cfg.to_str().expect("utf-8");
    let v = json(&ok(rxl(&["create", "-n", path, "--json"])));
    let planned = v["devices"]["planned"].as_array().expect("planned devices");
    assert_eq!(planned.len(), 4, "{v}");
    assert_eq!(planned[0]["kind"], "vbd");
    assert_eq!(planned[0]["devid"], 51712);
    assert_eq!(
        planned[0]["target"],
        guest_dir().join("root.img").to_str().expect("utf-8"),
        "an image path is resolved against the config's directory"
    );
    assert_eq!(planned[0]["mode"], "w");
    assert_eq!(planned[0]["script"], "/etc/xen/scripts/block");
    assert_eq!(planned[1]["devid"], 51728);
    assert_eq!(planned[1]["target"], "/dev/vg/data");
    assert_eq!(planned[1]["mode"], "r");
    assert_eq!(planned[2]["kind"], "vif");
    assert_eq!(planned[2]["devid"], 0);
    assert_eq!(planned[2]["mac"], "00:16:3e:01:02:03");
    assert_eq!(planned[3]["devid"], 1);
    let mac = planned[3]["mac"].as_str().expect("a generated mac");
    assert!(mac.starts_with("00:16:3e:"), "{mac}");
    assert_eq!(planned[3]["script"], "/etc/xen/scripts/vif-bridge");

    let text = stdout(&ok(rxl(&["create", "-n", path])));
    assert!(
        text.contains("device    vbd devid 51712: blkback, image file through a loop device"),
        "{text}"
    );
    assert!(text.contains("netback on bridge br1"), "{text}");

    // A device rxl could not serve is said, without failing the dry run.
    let cfg = hello_cfg(
        "devs-bad",
        "disk = [ \"backendtype=tap,vdev=xvda,target=d.img\" ]\n",
    );
    let o = ok(rxl(&["create", "-n", cfg.to_str().expect("utf-8")]));
    assert!(
        stdout(&o).contains("devices   cannot be planned:")
            && stdout(&o).contains("blktap is not available"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn dry_run_points_at_a_bad_kernel() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("notakernel"), b"#!/bin/sh\necho hi\n").expect("write");
    let cfg = write_cfg(
        dir.path(),
        "bad",
        "name = \"b\"\ntype = \"pvh\"\n\nkernel = \"notakernel\"\n",
    );
    let o = rxl(&["create", "-n", cfg.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1));
    let text = stderr(&o);
    assert!(
        text.contains(&format!("{}:4:10: error:", cfg.display())),
        "{text}"
    );
    assert!(text.contains("not an ELF or bzImage"), "{text}");
}

#[test]
fn lifecycle_on_the_simulated_host() {
    let sim = Sim::new();
    let cfg = hello_cfg("life", "");
    let o = ok(sim.run(&["create", "--json", cfg.to_str().expect("utf-8")]));
    let created = json(&o);
    assert_eq!(created["name"], "life");
    let id = created["domid"].as_u64().expect("domid");
    assert!(id > 0);

    let d = sim.domain("life").expect("listed");
    assert_eq!(d["domid"].as_u64(), Some(id));
    assert_eq!(d["memory_mib"], 32);
    assert_eq!(d["vcpus"], 2);
    assert_eq!(d["uuid"].as_str().map(str::len), Some(36));
    let dom0 = sim.domain("Domain-0").expect("Domain-0 listed");
    assert_eq!(dom0["domid"], 0);

    // xl's text table.
    let text = stdout(&ok(sim.run(&["list"])));
    assert!(text.starts_with(
        "Name                                        ID   Mem VCPUs\tState\tTime(s)\n"
    ));
    assert!(
        text.lines()
            .any(|l| l.starts_with("life ") && l.contains(&format!(" {id} "))),
        "{text}"
    );

    assert_eq!(
        stdout(&ok(sim.run(&["domid", "life"]))).trim(),
        id.to_string()
    );
    assert_eq!(
        stdout(&ok(sim.run(&["domname", &id.to_string()]))).trim(),
        "life"
    );

    ok(sim.run(&["pause", "life"]));
    assert_eq!(
        sim.domain("life").expect("listed")["state"]
            .as_str()
            .map(|s| &s[2..3]),
        Some("p")
    );
    ok(sim.run(&["unpause", &id.to_string()]));
    assert_eq!(
        sim.domain("life").expect("listed")["state"]
            .as_str()
            .map(|s| &s[2..3]),
        Some("-")
    );

    // Reboot: the monitor restarts the guest from its stored config, under a new id.
    ok(sim.run(&["reboot", "-w", "life"]));
    // The new domain is listed from its first step on; wait until it is fully built.
    sim.wait_for("the restarted guest", |s| {
        s.domain("life").is_some_and(|d| {
            d["domid"].as_u64() != Some(id) && d["memory_mib"] == 32 && d["state"] != "--p---"
        })
    });

    // Shutdown -w returns once the guest is gone (on_poweroff = destroy).
    ok(sim.run(&["shutdown", "-w", "life"]));
    assert!(sim.domain("life").is_none(), "gone after shutdown -w");

    // A second guest: destroy removes a running one at once.
    let cfg2 = hello_cfg("life2", "");
    ok(sim.run(&["create", "-q", cfg2.to_str().expect("utf-8")]));
    ok(sim.run(&["destroy", "life2"]));
    assert!(sim.domain("life2").is_none());
    let o = sim.run(&["destroy", "life2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no domain called"), "{}", stderr(&o));
}

#[test]
fn preserve_keeps_a_shut_down_guest() {
    let sim = Sim::new();
    let cfg = hello_cfg("kept", "on_poweroff = \"preserve\"\n");
    ok(sim.run(&["create", cfg.to_str().expect("utf-8")]));
    ok(sim.run(&["shutdown", "-w", "--timeout", "30", "kept"]));
    let d = sim.domain("kept").expect("kept after poweroff");
    assert_eq!(d["state"].as_str().map(|s| &s[3..4]), Some("s"), "{d}");
}

#[test]
fn shutdown_wait_times_out_when_the_guest_ignores_it() {
    let sim = Sim::new();
    let cfg = hello_cfg("deaf", "");
    // Paused guests do not react until unpaused.
    ok(sim.run(&["create", "-p", cfg.to_str().expect("utf-8")]));
    let o = sim.run(&["shutdown", "-w", "--timeout", "1", "deaf"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("ETIMEDOUT") || stderr(&o).contains("timed out"),
        "{}",
        stderr(&o)
    );
    assert!(sim.domain("deaf").is_some());
}

#[test]
fn failed_creates_leave_nothing_through_the_cli() {
    let cfg = hello_cfg("faulty", "");
    for spec in [
        "createdomain",
        "populate_physmap:2=ENOMEM",
        "map_foreign:3",
        "sethvmcontext",
        "xs_write:20",
        "xs_introduce",
        "unpausedomain",
    ] {
        let sim = Sim::new();
        let o = sim.run_env(
            &["create", cfg.to_str().expect("utf-8")],
            &[("RXL_SIM_FAIL", spec)],
        );
        assert_eq!(o.status.code(), Some(1), "{spec}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("create failed at step"),
            "{spec}: {}",
            stderr(&o)
        );
        // Nothing fails in the undo: it reports no error of its own.
        assert!(
            !stderr(&o).contains("cleanup of step"),
            "{spec}: {}",
            stderr(&o)
        );
        let names: Vec<Value> = sim
            .domains()
            .into_iter()
            .map(|d| d["name"].clone())
            .collect();
        assert_eq!(names, vec![Value::from("Domain-0")], "{spec}");
    }
}

/// Start `rxl create -e -q CFG` on `sim` without waiting for it.
fn spawn_create(sim: &Sim, cfg: &Path) -> std::process::Child {
    spawn_create_with(sim, &["-e"], cfg, "")
}

/// Start `rxl create -q FLAGS CFG` on `sim` with `RXL_SIM_FAIL=faults`, without waiting.
fn spawn_create_with(sim: &Sim, flags: &[&str], cfg: &Path, faults: &str) -> std::process::Child {
    sim.command(&[&["create", "-q"], flags].concat(), Some(faults))
        .arg(cfg)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn")
}

#[test]
fn concurrent_creates_of_one_name_admit_one() {
    let sim = Sim::new();
    let cfg = hello_cfg("racer", "");
    let children: Vec<_> = (0..4).map(|_| spawn_create(&sim, &cfg)).collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect();
    let winners = outputs.iter().filter(|o| o.status.success()).count();
    assert_eq!(winners, 1, "exactly one create of the name succeeds");
    for o in outputs.iter().filter(|o| !o.status.success()) {
        assert!(stderr(o).contains("already exists"), "{}", stderr(o));
    }
    assert_eq!(
        sim.domains()
            .iter()
            .filter(|d| d["name"] == "racer")
            .count(),
        1
    );
}

#[test]
fn concurrent_creates_of_different_names_all_succeed() {
    let sim = Sim::new();
    let cfgs: Vec<PathBuf> = (0..4).map(|i| hello_cfg(&format!("par{i}"), "")).collect();
    let children: Vec<_> = cfgs.iter().map(|cfg| spawn_create(&sim, cfg)).collect();
    for c in children {
        let o = c.wait_with_output().expect("wait");
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let ids: Vec<u64> = sim
        .domains()
        .iter()
        .filter_map(|d| d["domid"].as_u64())
        .collect();
    assert_eq!(ids.len(), 5, "dom0 and four guests: {ids:?}");
}

#[test]
fn an_interrupted_create_is_listed_as_incomplete_and_destroyable() {
    use xen_host::Store as _;
    let sim = Sim::new();
    let cfg = hello_cfg("halfway", "");
    let o = ok(sim.run(&["create", "-e", "--json", cfg.to_str().expect("utf-8")]));
    let id = json(&o)["domid"].as_u64().expect("domid");
    // What a create killed between its first and last step leaves: the in-progress marker
    // with the pid of a process that no longer exists.
    let host = sim::SimHost::open(sim.dir.path()).expect("open sim");
    let marker = format!("/libxl/{id}/rxl-creating");
    host.write(xen_host::TxId::NONE, &marker, b"2147483646")
        .expect("write marker");

    let d = sim.domain("halfway").expect("listed");
    assert_eq!(d["incomplete"], true, "{d}");
    let text = stdout(&ok(sim.run(&["list"])));
    assert!(text.contains("halfway (incomplete)"), "{text}");

    ok(sim.run(&["destroy", &id.to_string()]));
    assert!(sim.domain("halfway").is_none());
    let left = host.xs_dump(&format!("/libxl/{id}")).expect("dump");
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_name_mid_restart_is_held_for_its_monitor() {
    // What a monitor restarting "ghost" leaves in the state directory: its pid and the
    // start time of its process (a stand-in process here).
    let sim = Sim::new();
    let mut monitor = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("sleep");
    let pid = monitor.id();
    plant_restart_mark(&sim.state(), "ghost", pid);

    let cfg = hello_cfg("ghost", "");
    let o = sim.run(&["create", "-q", cfg.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!("is being restarted by rxl's monitor (pid {pid})")),
        "{}",
        stderr(&o)
    );
    assert!(sim.domain("ghost").is_none());

    // A command naming it waits for the restart; here the monitor dies without building
    // the guest, so the wait ends with the plain answer.
    let t = std::time::Instant::now();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(500));
        monitor.kill().expect("kill");
        monitor.wait().expect("wait");
    });
    let o = sim.run(&["destroy", "ghost"]);
    killer.join().expect("thread");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no domain called"), "{}", stderr(&o));
    assert!(t.elapsed() >= std::time::Duration::from_millis(500));

    // The mark of a dead monitor holds nothing.
    ok(sim.run(&["create", "-q", cfg.to_str().expect("utf-8")]));
    ok(sim.run(&["destroy", "ghost"]));
}

/// Everything a create may leave on the simulated host besides Domain-0: domains, xenstore
/// nodes of other domains, rxl's records, name index entries and pending-create marks.
fn leftovers(sim: &Sim) -> Vec<String> {
    let mut left: Vec<String> = sim
        .domains()
        .into_iter()
        .filter(|d| d["domid"] != 0)
        .map(|d| format!("domain {d}"))
        .collect();
    let host = sim::SimHost::open(sim.dir.path()).expect("open sim");
    for root in ["/local/domain", "/libxl", "/vm"] {
        for (path, value) in host.xs_dump(root).expect("dump") {
            let dom0 = path == "/local/domain/0"
                || path.starts_with("/local/domain/0/")
                || path.starts_with("/libxl/0/")
                || path.starts_with("/vm/00000000-0000-0000-0000-000000000000");
            let root_itself = path == root;
            if !dom0 && !root_itself {
                left.push(format!("{path}={value}"));
            }
        }
    }
    let state = sim.dir.path().join("rxl");
    for sub in ["", "names", "creating"] {
        if let Ok(entries) = std::fs::read_dir(state.join(sub)) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if sub.is_empty() && !name.ends_with(".json") {
                    continue;
                }
                left.push(format!("{sub}/{name}"));
            }
        }
    }
    left
}

#[test]
fn a_monitor_that_cannot_start_rolls_the_create_back() {
    let sim = Sim::new();
    // The log directory cannot be made: a file stands where it would be.
    std::fs::create_dir_all(sim.dir.path().join("rxl")).expect("mkdir");
    std::fs::write(sim.dir.path().join("rxl/log"), b"not a directory").expect("write");
    let cfg = hello_cfg("nomon", "");
    let o = sim.run(&["create", cfg.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("step \"start monitor\"") && stderr(&o).contains("log directory"),
        "{}",
        stderr(&o)
    );
    assert!(
        stdout(&o).is_empty(),
        "no domain id is printed: {}",
        stdout(&o)
    );
    assert_eq!(leftovers(&sim), Vec::<String>::new());
}

/// A create whose step fails and whose undo then fails too (a xenstore remove: of
/// `/local/domain/ID`, or of `/vm/UUID` once `/local/domain/ID` is gone) leaves what a
/// later `rxl destroy ID` or `rxl destroy NAME` finds and removes entirely. (The create
/// itself removes 3 directories with the skeleton and 2 with the console before any
/// undo: the undo's removals come after those.)
#[test]
fn a_failed_create_whose_undo_fails_is_finished_by_destroy() {
    let cfg = hello_cfg("halfundone", "");
    for (spec, by) in [
        ("xs_introduce,xs_rm:6=EIO", "id"),
        ("xs_introduce,xs_rm:7=EIO", "id"),
        ("sethvmcontext,xs_rm:5=EIO", "name"),
        ("unpausedomain,xs_rm:7=EIO", "id"),
    ] {
        let sim = Sim::new();
        let o = sim.run_env(
            &["create", "-e", cfg.to_str().expect("utf-8")],
            &[("RXL_SIM_FAIL", spec)],
        );
        assert_eq!(o.status.code(), Some(1), "{spec}: {}", stderr(&o));
        assert!(
            !leftovers(&sim).is_empty(),
            "{spec}: the undo was cut short"
        );
        // The first domain of a fresh simulated host is domain 1.
        let target = if by == "id" { "1" } else { "halfundone" };
        let o = ok(sim.run(&["destroy", target]));
        assert!(
            stderr(&o).contains("already gone"),
            "{spec}: {}",
            stderr(&o)
        );
        assert_eq!(leftovers(&sim), Vec::<String>::new(), "{spec}");
    }
}

#[test]
fn a_uuid_in_use_is_refused() {
    let sim = Sim::new();
    let host = sim::SimHost::open(sim.dir.path()).expect("open sim");
    let dom0_vm = host.xs_dump("/vm").expect("dump");

    let zero = hello_cfg("zero", "uuid = \"00000000-0000-0000-0000-000000000000\"\n");
    let o = sim.run(&["create", zero.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("step \"check uuid\"") && stderr(&o).contains("used by domain 0"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        host.xs_dump("/vm").expect("dump"),
        dom0_vm,
        "Domain-0's /vm is intact"
    );
    assert_eq!(leftovers(&sim), Vec::<String>::new());

    let uuid = "5a1d3c52-8f7e-4c0b-9d51-2a6b9b0e7f11";
    let first = hello_cfg("first", &format!("uuid = \"{uuid}\"\n"));
    let second = hello_cfg("second", &format!("uuid = \"{uuid}\"\n"));
    ok(sim.run(&["create", "-e", first.to_str().expect("utf-8")]));
    let o = sim.run(&["create", "-e", second.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!("uuid {uuid} is already used by domain \"first\"")),
        "{}",
        stderr(&o)
    );
    assert!(sim.domain("second").is_none());
    assert_eq!(sim.run(&["destroy", "second"]).status.code(), Some(1));
    let vm_name = host
        .xs_dump(&format!("/vm/{uuid}"))
        .expect("dump")
        .into_iter()
        .find(|(k, _)| k.ends_with("/name"))
        .map(|(_, v)| v);
    assert_eq!(
        vm_name.as_deref(),
        Some("first"),
        "the first's /vm is intact"
    );
    ok(sim.run(&["destroy", "first"]));
    assert_eq!(leftovers(&sim), Vec::<String>::new());
}

#[test]
fn a_signal_during_create_rolls_it_back() {
    use nix::sys::signal::Signal;
    for (sig, hold) in [
        (Signal::SIGTERM, "sethvmcontext:1=sleep:1500"),
        (Signal::SIGINT, "xs_introduce=sleep:1500"),
        (Signal::SIGHUP, "populate_physmap:1=sleep:1500"),
    ] {
        let sim = Sim::new();
        let cfg = hello_cfg("stopped", "");
        let child = spawn_create_with(&sim, &[], &cfg, hold);
        // The domain is listed from its xenstore skeleton on; the create is then held.
        sim.wait_for("the create to be under way", |s| {
            s.domain("stopped").is_some()
        });
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
        nix::sys::signal::kill(pid, sig).expect("signal");
        let o = child.wait_with_output().expect("wait");
        assert_eq!(o.status.code(), Some(1), "{sig}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("interrupted by {}", sig.as_str()))
                && stderr(&o).contains("create failed at step"),
            "{sig}: {}",
            stderr(&o)
        );
        assert_eq!(leftovers(&sim), Vec::<String>::new(), "{sig}");
    }
}

#[test]
fn a_create_killed_right_after_createdomain_is_flagged_and_destroyable() {
    let sim = Sim::new();
    let cfg = hello_cfg("nameless", "");
    // Held at the first xenstore transaction, the skeleton's: the domain exists, but has
    // no xenstore node yet.
    let mut child = spawn_create_with(&sim, &[], &cfg, "xs_transaction_start:1=sleep:20000");
    let mut id = None;
    sim.wait_for("the domain to exist", |s| {
        id = s
            .domains()
            .into_iter()
            .find(|d| d["domid"] != 0)
            .and_then(|d| d["domid"].as_u64());
        id.is_some()
    });
    let id = id.expect("domid");
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let d = sim
        .domains()
        .into_iter()
        .find(|d| d["domid"] == id)
        .expect("listed");
    assert_eq!(d["name"], Value::Null, "{d}");
    assert_eq!(d["incomplete"], true, "{d}");

    ok(sim.run(&["destroy", &id.to_string()]));
    let left: Vec<String> = leftovers(&sim)
        .into_iter()
        .filter(|l| !l.starts_with("creating/"))
        .collect();
    assert_eq!(left, Vec::<String>::new());
    // The next create drops the mark of the killed one.
    ok(sim.run(&["create", "-e", "-q", cfg.to_str().expect("utf-8")]));
    ok(sim.run(&["destroy", "nameless"]));
    assert_eq!(leftovers(&sim), Vec::<String>::new());
}

#[test]
fn fault_injection_stays_with_the_process_it_was_given_to() {
    // Given to `rxl create`, it does not reach the host monitor the create starts: the
    // monitor's destroy on poweroff works.
    let sim = Sim::new();
    let cfg = hello_cfg("faultless", "");
    ok(sim.run_env(
        &["create", "-q", cfg.to_str().expect("utf-8")],
        &[("RXL_SIM_FAIL", "destroydomain=EPERM")],
    ));
    ok(sim.run(&["shutdown", "-w", "--timeout", "20", "faultless"]));
    assert!(sim.domain("faultless").is_none());

    // RXL_SIM_FAIL_MONITOR is the monitor's own (a fresh host, so that the create starts
    // the monitor): its destroy fails for good (EPERM is not transient) and it says so in
    // its log.
    let sim = Sim::new();
    let cfg = hello_cfg("monfault", "");
    ok(sim.run_env(
        &["create", "-q", cfg.to_str().expect("utf-8")],
        &[("RXL_SIM_FAIL_MONITOR", "destroydomain=EPERM")],
    ));
    let o = sim.run(&["shutdown", "-w", "--timeout", "3", "monfault"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let log_path = sim.dir.path().join("rxl/log/monitord.log");
    sim.wait_for("the monitor to give up", |_| {
        std::fs::read_to_string(&log_path).is_ok_and(|l| l.contains("giving up"))
    });
    let log = std::fs::read_to_string(&log_path).expect("log");
    assert!(log.contains("EPERM"), "{log}");
    ok(sim.run(&["destroy", "monfault"]));
}

/// The create blocks SIGINT, SIGTERM and SIGHUP while it builds; the host monitor it
/// starts must not keep them blocked from being taken, or nothing but SIGKILL could stop
/// it. Two creates share it.
#[test]
fn the_background_monitor_stops_on_sigterm() {
    let sim = Sim::new();
    let cfg = hello_cfg("termed", "");
    ok(sim.run(&["create", "-q", cfg.to_str().expect("utf-8")]));
    let cfg = hello_cfg("termed2", "");
    ok(sim.run(&["create", "-q", cfg.to_str().expect("utf-8")]));
    let pids = sim.processes(&["monitord", "__monitor"]);
    assert_eq!(pids.len(), 1, "one monitor: {pids:?}");
    let pid = pids[0];
    let started = std::time::Instant::now();
    // Its signal handling is set up once it runs; send until it goes (at most 10 s).
    while runs(pid) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the monitor ignores SIGTERM"
        );
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid")),
            nix::sys::signal::Signal::SIGTERM,
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_missing_disk_image_is_refused_at_its_place_in_the_config_before_anything_is_built() {
    let sim = Sim::new();
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = hello_cfg(
        "nodisk",
        &format!(
            "disk = [ 'format=raw,vdev=xvda,access=rw,target={}/gone.img' ]\n",
            dir.path().display()
        ),
    );
    // createdomain would fail if it were reached: the refusal comes first.
    let o = sim.run_env(
        &["create", "-e", cfg.to_str().unwrap()],
        &[("RXL_SIM_FAIL", "createdomain")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    let place = format!("{}:8:49", cfg.display());
    assert!(
        err.contains(&format!("{place}: error: disk image"))
            && err.contains("gone.img does not exist"),
        "{err}"
    );
    assert!(!err.contains("createdomain"), "{err}");
    assert!(sim.domain("nodisk").is_none());
    // The dry run warns and goes on: its images may be made later.
    let o = ok(sim.run(&["create", "-n", cfg.to_str().unwrap()]));
    assert!(
        stderr(&o).contains(&format!("{place}: warning: disk image")),
        "{}",
        stderr(&o)
    );
}

#[test]
fn destroy_removes_the_devices_of_a_create_killed_after_setting_them_up() {
    let sim = Sim::new();
    let img = tempfile::NamedTempFile::new().expect("image");
    let cfg = hello_cfg(
        "killed",
        &format!(
            "disk = [ 'format=raw,vdev=xvda,access=rw,target={}' ]\nvif = [ 'mac=00:16:3e:01:02:09' ]\n",
            img.path().display()
        ),
    );
    // Held at unpause, after its devices are set up; -e: no monitor to clean up after it.
    let mut child = spawn_create_with(&sim, &["-e"], &cfg, "unpausedomain:1=sleep:20000");
    let host = sim.host();
    sim.wait_for("the devices to be set up", |_| {
        !host.loop_devices().expect("loops").is_empty()
            && !host.bridge_ports().expect("ports").is_empty()
    });
    let id = sim
        .domains()
        .into_iter()
        .find(|d| d["domid"] != 0)
        .and_then(|d| d["domid"].as_u64())
        .expect("domid");
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");

    ok(sim.run(&["destroy", &id.to_string()]));
    assert_eq!(leftovers(&sim), Vec::<String>::new());
    assert_eq!(host.loop_devices().expect("loops"), vec![]);
    assert_eq!(host.bridge_ports().expect("ports"), vec![]);
    let backends: Vec<_> = host
        .xs_dump("/local/domain/0/backend")
        .expect("dump")
        .into_iter()
        .filter(|(p, _)| p.contains("/vbd") || p.contains("/vif"))
        .collect();
    assert_eq!(backends, vec![]);
}

#[test]
fn create_times_reports_each_step_with_its_hypercalls_and_xenstore_requests() {
    let sim = Sim::new();
    let cfg = hello_cfg("timed", "");
    let v = json(&ok(sim.run(&[
        "create",
        "-e",
        "--times",
        "--json",
        cfg.to_str().unwrap(),
    ])));
    let p = &v["profile"];
    let steps = p["steps"].as_array().expect("steps");
    let names: Vec<&str> = steps.iter().filter_map(|s| s["step"].as_str()).collect();
    let all: Vec<&str> = toolstack::create::Step::sequence(xlcfg::model::DomainType::Pvh)
        .map(|s| s.name())
        .collect();
    assert_eq!(names, all);
    let field = |name: &str, key: &str| -> u64 {
        steps
            .iter()
            .find(|s| s["step"] == name)
            .and_then(|s| s[key].as_u64())
            .unwrap_or_else(|| panic!("{name}.{key} in {p}"))
    };
    // The domain is made by hypercalls, its xenstore tree by requests to xenstored.
    assert!(field("createdomain", "hypercalls") >= 1, "{p}");
    assert_eq!(field("createdomain", "xs_requests"), 0, "{p}");
    assert!(field("xenstore skeleton", "xs_requests") >= 5, "{p}");
    assert_eq!(field("xenstore skeleton", "hypercalls"), 0, "{p}");
    // The steps' hypercalls are the create's.
    let sum: u64 = steps.iter().filter_map(|s| s["hypercalls"].as_u64()).sum();
    assert_eq!(Some(sum), p["hypercalls"].as_u64(), "{p}");
    assert!(p["plan_us"].as_u64().is_some(), "{p}");
    // The time outside the steps: before them, after them, and all of it since main,
    // which holds every part.
    let us = |k: &str| p[k].as_u64().unwrap_or_else(|| panic!("{k} in {p}"));
    let steps_us: u64 = steps.iter().filter_map(|s| s["us"].as_u64()).sum();
    let parts = us("before_plan_us") + us("plan_us") + us("open_us") + steps_us;
    assert!(us("main_us") >= parts + us("after_steps_us"), "{p}");
    assert!(us("before_plan_us") > 0, "{p}");
    // The process started before main, and not long before.
    assert!(us("start_to_main_us") < 60_000_000, "{p}");

    // Without --json: the table goes to stderr, one line per step, stdout keeps the domid.
    let cfg = hello_cfg("timed2", "");
    let o = ok(sim.run(&["create", "-e", "--times", cfg.to_str().unwrap()]));
    assert!(stdout(&o).trim().parse::<u32>().is_ok(), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(err.starts_with("step "), "{err}");
    for name in &all {
        assert!(
            err.lines().any(|l| l.starts_with(name)),
            "{name} missing: {err}"
        );
    }
    for phase in [
        "(process start to main)",
        "(config and host files)",
        "(boot plan)",
        "(open host)",
        "(after the steps)",
        "(since main)",
        "total (steps + plan)",
    ] {
        assert!(err.lines().any(|l| l.starts_with(phase)), "{phase}: {err}");
    }
}
