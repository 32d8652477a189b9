//! The hot-plug commands on the simulated host: block-attach/-detach/-list and
//! network-attach/-detach/-list, text and JSON, and their errors.
//!
//! The simulated host has blkback, netback, cooperative frontends and simulated hotplug
//! scripts (loop devices, bridge ports): each attach is checked in the guest's devices,
//! in dom0's simulated loop devices and bridge ports, and gone after its detach.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use serde_json::Value;

/// How long a device step may wait on the simulated host (for the faults that keep a
/// backend from answering).
const TIMEOUT_MS: &str = "300";

/// A simulated host with the bridges xenbr0 and br-host, whose xl.conf says `xl_conf`.
fn host(xl_conf: &str) -> Sim {
    let sim = Sim::new();
    let etc = sim.dir.path().join("etc");
    std::fs::create_dir_all(&etc).expect("mkdir etc");
    std::fs::write(etc.join("xl.conf"), xl_conf).expect("xl.conf");
    sim
}

/// `rxl --sim DIR ARGS` run from `cwd`, with short device timeouts and `RXL_SIM_FAIL` =
/// `fail` when given.
fn run_fail(sim: &Sim, cwd: &Path, args: &[&str], fail: Option<&str>) -> Output {
    sim.command(args, fail)
        .current_dir(cwd)
        .env("RXL_SIM_DEVICE_TIMEOUT_MS", TIMEOUT_MS)
        .env("RXL_SIM_BRIDGES", "xenbr0,br-host")
        .output()
        .expect("run rxl")
}

fn run_in(sim: &Sim, cwd: &Path, args: &[&str]) -> Output {
    run_fail(sim, cwd, args, None)
}

fn run(sim: &Sim, args: &[&str]) -> Output {
    run_in(sim, Path::new("/"), args)
}

/// `o`, after asserting that rxl failed with status 1 and said `what` on stderr.
fn fails(o: Output, what: &str) -> Output {
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected status 1: {}{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(stderr(&o).contains(what), "{what:?} not in: {}", stderr(&o));
    o
}

/// A running guest without a monitor on `sim` (its frontends connect what is attached);
/// its domid.
fn guest(sim: &Sim, name: &str) -> String {
    let cfg = sim.dir.path().join(format!("{name}.cfg"));
    std::fs::write(
        &cfg,
        format!(
            "name = \"{name}\"\ntype = \"pvh\"\nmemory = 32\nkernel = \"{}\"\n",
            guest_dir().join("hello.elf").display()
        ),
    )
    .expect("cfg");
    let o = ok(run(sim, &["create", "-e", cfg.to_str().expect("utf-8")]));
    stdout(&o).trim().to_owned()
}

/// An image file in `dir`.
fn image(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, vec![0u8; 4096]).expect("image");
    p
}

/// Every xenstore path of the simulated host that belongs to devices of domain `dom`.
fn device_nodes(sim: &Sim, dom: &str) -> Vec<String> {
    sim.host()
        .xs_dump("/")
        .expect("dump")
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| {
            p.starts_with(&format!("/local/domain/0/backend/vbd/{dom}"))
                || p.starts_with(&format!("/local/domain/0/backend/vif/{dom}"))
                || p.starts_with(&format!("/libxl/{dom}/device/vbd"))
                || p.starts_with(&format!("/libxl/{dom}/device/vif"))
                || p.starts_with(&format!("/local/domain/{dom}/device/vbd"))
                || p.starts_with(&format!("/local/domain/{dom}/device/vif"))
        })
        .collect()
}

fn array(o: &Output) -> Vec<Value> {
    match json(o) {
        Value::Array(items) => items,
        other => panic!("not an array: {other}"),
    }
}

const BLOCK_HEADER: &str =
    "Vdev  BE  handle state evt-ch ring-ref BE-path                       \n";
const NETWORK_HEADER: &str =
    "Idx BE Mac Addr.         handle state evt-ch   tx-/rx-ring-ref BE-path                       \n";

#[test]
fn block_attach_list_and_detach_a_disk_image() {
    let sim = host("");
    let dom = guest(&sim, "blk");
    let work = tempfile::tempdir().expect("tmp");
    let img = image(work.path(), "data.img");

    // A relative path is taken from the current directory, as xl does; the words of the
    // spec are joined with ','.
    let o = ok(run_in(
        &sim,
        work.path(),
        &[
            "block-attach",
            "blk",
            "data.img",
            "raw",
            "xvdb",
            "w",
            "--json",
        ],
    ));
    let attached = json(&o);
    assert_eq!(attached["devid"], 51728, "{attached}");
    assert_eq!(attached["kind"], "vbd", "{attached}");
    assert_eq!(attached["domid"].to_string(), dom, "{attached}");
    assert_eq!(
        attached["target"],
        img.to_str().expect("utf-8"),
        "{attached}"
    );
    assert_eq!(attached["mode"], "w", "{attached}");

    // dom0's side: the image is on a (simulated) loop device, read-write.
    let loops = sim.host().loop_devices().expect("loops");
    assert_eq!(loops.len(), 1, "{loops:?}");
    assert_eq!(loops[0].file, img);
    assert!(!loops[0].read_only);
    assert_eq!(attached["node"], loops[0].node, "{attached}");
    assert_eq!(attached["hotplug_status"], "connected", "{attached}");

    // xl's columns, with the running guest's frontend connected (state 4).
    let listed = array(&ok(run(&sim, &["block-list", "--json", &dom])));
    assert_eq!(listed[0]["frontend_state"], 4, "{listed:?}");
    let num = |v: &Value| v.as_i64().unwrap_or(-1);
    let text = stdout(&ok(run(&sim, &["block-list", "blk"])));
    assert_eq!(
        text,
        format!(
            "{BLOCK_HEADER}{:<5} {:<3} {:<6} {:<5} {:<6} {:<8} {:<30}\n",
            51728,
            0,
            dom,
            4,
            num(&listed[0]["event_channel"]),
            num(&listed[0]["ring_ref"]),
            format!("/local/domain/0/backend/vbd/{dom}/51728")
        )
    );
    let listed = array(&ok(run(&sim, &["block-list", "--json", &dom])));
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["vdev"], "xvdb");
    assert_eq!(
        listed[0]["backend"],
        format!("/local/domain/0/backend/vbd/{dom}/51728")
    );
    // No vif is listed as a disk, and the other list is empty but for its header.
    assert_eq!(
        stdout(&ok(run(&sim, &["network-list", "blk"]))),
        NETWORK_HEADER
    );

    // rxl's record of the guest has the disk, so a restart keeps it.
    let rec = json(&ok(run(&sim, &["list", "-l", "blk"])));
    let disks = rec[0]["config"]["disks"].as_array().expect("disks").clone();
    assert_eq!(disks.len(), 1, "{rec}");
    assert_eq!(disks[0]["vdev"], "xvdb");

    // The same vdev again is refused, and changes nothing.
    fails(
        run_in(
            &sim,
            work.path(),
            &["block-attach", "blk", "data.img,raw,xvdb,w"],
        ),
        "disk xvdb: domain",
    );
    assert_eq!(
        array(&ok(run(&sim, &["block-list", "--json", "blk"]))).len(),
        1
    );

    // Detach by name; a second detach finds nothing.
    let o = ok(run(&sim, &["block-detach", "blk", "xvdb", "--json"]));
    assert_eq!(json(&o)["detached"], true);
    assert_eq!(stdout(&ok(run(&sim, &["block-list", "blk"]))), BLOCK_HEADER);
    assert_eq!(device_nodes(&sim, &dom), Vec::<String>::new());
    assert_eq!(sim.host().loop_devices().expect("loops"), vec![]);
    fails(
        run(&sim, &["block-detach", "blk", "xvdb"]),
        "has no disk xvdb",
    );
    let rec = json(&ok(run(&sim, &["list", "-l", "blk"])));
    assert_eq!(rec[0]["config"]["disks"], serde_json::json!([]), "{rec}");

    // Detach by devid number, as xl allows.
    ok(run(
        &sim,
        &[
            "block-attach",
            &dom,
            &format!("{},raw,xvdc,r", img.display()),
        ],
    ));
    ok(run(&sim, &["block-detach", &dom, "51744"]));
    assert_eq!(device_nodes(&sim, &dom), Vec::<String>::new());
}

#[test]
fn network_attach_list_and_detach_a_vif() {
    let sim = host("vif.default.bridge = \"br-host\"\n");
    let dom = guest(&sim, "net");

    // Separate words, as the rig passes them to xl.
    let o = ok(run(
        &sim,
        &[
            "network-attach",
            "net",
            "bridge=xenbr0",
            "mac=00:16:3e:00:00:07",
            "--json",
        ],
    ));
    let v = json(&o);
    assert_eq!(
        (v["devid"].clone(), v["mac"].clone()),
        (0.into(), "00:16:3e:00:00:07".into()),
        "{v}"
    );
    assert_eq!(v["bridge"], "xenbr0", "{v}");

    // No spec: xl.conf's bridge, a random Xen MAC, the next devid.
    let v = json(&ok(run(&sim, &["network-attach", "net", "--json"])));
    assert_eq!(v["devid"], 1, "{v}");
    assert_eq!(v["bridge"], "br-host", "{v}");
    let mac = v["mac"].as_str().expect("mac").to_owned();
    assert!(mac.starts_with("00:16:3e:"), "{mac}");

    // dom0's side: each interface is a port of its bridge.
    let ports = sim.host().bridge_ports().expect("ports");
    assert_eq!(
        ports,
        vec![
            ("br-host".to_owned(), format!("vif{dom}.1")),
            ("xenbr0".to_owned(), format!("vif{dom}.0")),
        ]
    );

    // xl's columns, with the running guest's frontends connected (state 4).
    let listed = array(&ok(run(&sim, &["network-list", "--json", "net"])));
    assert_eq!(listed.len(), 2, "{listed:?}");
    let num = |v: &Value| v.as_i64().unwrap_or(-1);
    let row = |d: &Value, mac: &str| {
        assert_eq!(d["frontend_state"], 4, "{d}");
        let devid = d["devid"].as_u64().expect("devid");
        format!(
            "{:<3} {:<2} {mac}{:>6} {:>5} {:>6} {:>5}/{:<11} {:<30}\n",
            devid,
            0,
            devid,
            4,
            num(&d["event_channel"]),
            num(&d["tx_ring_ref"]),
            num(&d["rx_ring_ref"]),
            format!("/local/domain/0/backend/vif/{dom}/{devid}")
        )
    };
    let text = stdout(&ok(run(&sim, &["network-list", "net"])));
    assert_eq!(
        text,
        format!(
            "{NETWORK_HEADER}{}{}",
            row(&listed[0], "00:16:3e:00:00:07"),
            row(&listed[1], &mac)
        )
    );
    assert_eq!(stdout(&ok(run(&sim, &["block-list", "net"]))), BLOCK_HEADER);

    // A MAC the guest has already is refused.
    fails(
        run(&sim, &["network-attach", "net", "mac=00:16:3e:00:00:07"]),
        "00:16:3e:00:00:07",
    );

    // Detach by MAC (any case) and by devid.
    ok(run(&sim, &["network-detach", "net", "00:16:3E:00:00:07"]));
    ok(run(&sim, &["network-detach", &dom, "1", "--json"]));
    assert_eq!(
        stdout(&ok(run(&sim, &["network-list", "net"]))),
        NETWORK_HEADER
    );
    assert_eq!(device_nodes(&sim, &dom), Vec::<String>::new());
    assert_eq!(sim.host().bridge_ports().expect("ports"), vec![]);

    fails(run(&sim, &["network-detach", "net", "5"]), "has no vif 5");
    fails(
        run(&sim, &["network-detach", "net", "00:16:3e:00:00:09"]),
        "has no vif with MAC 00:16:3e:00:00:09",
    );
    fails(
        run(&sim, &["network-detach", "net", "eth0"]),
        "neither a vif's devid",
    );
}

#[test]
fn device_command_errors() {
    let sim = host("");
    let dom = guest(&sim, "errs");
    let work = tempfile::tempdir().expect("tmp");
    image(work.path(), "d.img");

    // An unknown domain.
    for args in [
        vec!["block-attach", "nosuch", "d.img,raw,xvdb"],
        vec!["block-detach", "nosuch", "xvdb"],
        vec!["block-list", "errs", "nosuch"],
        vec!["network-attach", "nosuch"],
        vec!["network-detach", "nosuch", "0"],
        vec!["network-list", "4242"],
    ] {
        let o = fails(run_in(&sim, work.path(), &args), "no domain");
        assert!(stdout(&o).is_empty(), "{args:?}: {}", stdout(&o));
    }

    // A bad spec, at its position in the argument.
    let o = fails(
        run_in(
            &sim,
            work.path(),
            &["block-attach", "errs", "d.img,raw,xvdb,rx"],
        ),
        "command line:1:16: error: disk: unknown access \"rx\"",
    );
    assert!(stderr(&o).contains("d.img,raw,xvdb,rx"), "{}", stderr(&o));
    fails(
        run(&sim, &["network-attach", "errs", "bridge=br0", "mtu=9"]),
        "command line:1:16: error: vif: invalid mtu \"9\"",
    );
    fails(
        run(&sim, &["block-detach", "errs", "xvdB"]),
        "\"xvdB\" is not a disk",
    );

    // A missing image is refused before anything is written.
    fails(
        run_in(
            &sim,
            work.path(),
            &["block-attach", "errs", "gone.img,raw,xvdb"],
        ),
        "command line:1:1: error: disk image",
    );
    // A disk only the device model could serve cannot be hot-plugged.
    fails(
        run_in(
            &sim,
            work.path(),
            &["block-attach", "errs", "d.img,qcow2,xvdb"],
        ),
        "cannot be hot-plugged",
    );
    assert_eq!(device_nodes(&sim, &dom), Vec::<String>::new());

    // Usage errors exit 2.
    for args in [
        vec!["block-attach", "errs"],
        vec!["block-detach", "errs"],
        vec!["block-list"],
        vec!["network-detach", "errs"],
        vec!["network-list"],
    ] {
        let o = run(&sim, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
}

/// An attach that fails at any device step (a backend that never reaches InitWait, a
/// hotplug script that fails or hangs, a bridge that does not exist) fails naming the
/// device and why, and leaves nothing of it: no nodes, no loop device, no bridge port, no
/// entry in rxl's record.
#[test]
fn an_attach_that_fails_halfway_leaves_nothing() {
    let sim = host("");
    let dom = guest(&sim, "half");
    let work = tempfile::tempdir().expect("tmp");
    image(work.path(), "d.img");
    let nothing_left = |sim: &Sim| {
        assert_eq!(device_nodes(sim, &dom), Vec::<String>::new());
        assert_eq!(sim.host().loop_devices().expect("loops"), vec![]);
        assert_eq!(sim.host().bridge_ports().expect("ports"), vec![]);
        let rec = json(&ok(run(sim, &["list", "-l", "half"])));
        assert_eq!(rec[0]["config"]["disks"], serde_json::json!([]), "{rec}");
        assert_eq!(rec[0]["config"]["vifs"], serde_json::json!([]), "{rec}");
    };
    let disk = ["block-attach", "half", "d.img,raw,xvdb"];
    let vif = ["network-attach", "half", "mac=00:16:3e:00:00:01"];
    for (args, fault, said) in [
        (&disk, "backend_init", "did not reach state 2 (InitWait)"),
        (&vif, "backend_init", "did not reach state 2 (InitWait)"),
        (&disk, "hotplug_add", "injected by RXL_SIM_FAIL"),
        (&vif, "hotplug_add", "injected by RXL_SIM_FAIL"),
        (&disk, "hotplug_add=hang", "killed"),
    ] {
        let o = fails(run_fail(&sim, work.path(), args, Some(fault)), said);
        let label = if args[0] == "block-attach" {
            "disk xvdb"
        } else {
            "vif 0"
        };
        assert!(stderr(&o).contains(label), "{fault}: {}", stderr(&o));
        nothing_left(&sim);
    }
    fails(
        run(&sim, &["network-attach", "half", "bridge=xenbr9"]),
        "xenbr9",
    );
    nothing_left(&sim);
}

/// With `run_hotplug_scripts = 0` in xl.conf, udev runs the scripts, not rxl: rxl writes
/// the device's nodes and removes them, and sets nothing up in dom0 itself.
#[test]
fn run_hotplug_scripts_0_leaves_dom0_to_udev() {
    let sim = host("run_hotplug_scripts = 0\n");
    let dom = guest(&sim, "udev");
    let work = tempfile::tempdir().expect("tmp");
    image(work.path(), "d.img");
    ok(run_in(
        &sim,
        work.path(),
        &["block-attach", "udev", "d.img,raw,xvdb"],
    ));
    ok(run(&sim, &["network-attach", "udev"]));
    assert_eq!(
        array(&ok(run(&sim, &["block-list", "--json", "udev"]))).len(),
        1
    );
    assert_eq!(
        array(&ok(run(&sim, &["network-list", "--json", "udev"]))).len(),
        1
    );
    assert_eq!(sim.host().loop_devices().expect("loops"), vec![]);
    assert_eq!(sim.host().bridge_ports().expect("ports"), vec![]);
    ok(run(&sim, &["block-detach", "-f", "udev", "xvdb"]));
    ok(run(&sim, &["network-detach", "udev", "0"]));
    assert_eq!(device_nodes(&sim, &dom), Vec::<String>::new());
}

#[test]
fn network_attach_takes_the_devid_it_is_given_and_refuses_one_in_use() {
    let sim = host("");
    let dom = guest(&sim, "ids");

    let v = json(&ok(run(
        &sim,
        &["network-attach", "ids", "devid=5", "--json"],
    )));
    assert_eq!(v["devid"], 5, "{v}");
    let ports = sim.host().bridge_ports().expect("ports");
    assert_eq!(ports, vec![("xenbr0".to_owned(), format!("vif{dom}.5"))]);

    // Without devid=: one more than the highest.
    let v = json(&ok(run(&sim, &["network-attach", "ids", "--json"])));
    assert_eq!(v["devid"], 6, "{v}");

    // A devid in use is refused, and nothing of the refused vif is left.
    fails(
        run(&sim, &["network-attach", "ids", "devid=5"]),
        "has a vif with devid 5 already",
    );
    let listed = array(&ok(run(&sim, &["network-list", "--json", "ids"])));
    let ids: Vec<u64> = listed.iter().filter_map(|d| d["devid"].as_u64()).collect();
    assert_eq!(ids, vec![5, 6]);

    // A lower free devid given explicitly is taken as given.
    let v = json(&ok(run(
        &sim,
        &["network-attach", "ids", "devid=2", "--json"],
    )));
    assert_eq!(v["devid"], 2, "{v}");
}
