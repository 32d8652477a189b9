//! The device model (QEMU in dom0) of PV and PVH guests with qdisk disks, on the simulated
//! host, where `rxl sim-device-model` stands in for QEMU as a real process: started and
//! confirmed by create, found and stopped by destroy, and a failure to start that leaves
//! nothing behind (process, xenstore nodes, QMP sockets, domain).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use xen_host::{Hypervisor as _, Store as _, TxId};

/// A qcow2 image (a version 3 header, no backing file) in `dir`.
fn qcow2(dir: &Path, name: &str) -> PathBuf {
    let mut h = b"QFI\xfb".to_vec();
    h.extend(3u32.to_be_bytes());
    h.extend([0u8; 200]);
    let p = dir.join(name);
    std::fs::write(&p, h).expect("image");
    p
}

/// A config for a PVH guest `name` whose root disk is `disk`.
fn config(sim: &Sim, name: &str, disk: &str) -> PathBuf {
    config_with(sim, name, disk, "")
}

/// [`config`] with the lines `extra` added.
fn config_with(sim: &Sim, name: &str, disk: &str, extra: &str) -> PathBuf {
    let cfg = sim.dir.path().join(format!("{name}.cfg"));
    std::fs::write(
        &cfg,
        format!(
            "name = \"{name}\"\ntype = \"pvh\"\nmemory = 32\nkernel = \"{}\"\n\
             disk = [ \"{disk}\" ]\n{extra}",
            guest_dir().join("hello.elf").display()
        ),
    )
    .expect("cfg");
    cfg
}

fn create(sim: &Sim, cfg: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = sim.command(&["create", "-e", cfg.to_str().expect("utf-8")], None);
    cmd.envs(env.iter().copied());
    cmd.output().expect("run rxl")
}

fn read(sim: &Sim, path: &str) -> Option<String> {
    sim.host()
        .read(TxId::NONE, path)
        .expect("read")
        .map(|v| String::from_utf8_lossy(&v).into_owned())
}

/// Every xenstore path of the host that names domain `dom`'s device model or qdisks.
fn dm_nodes(sim: &Sim, dom: &str) -> Vec<String> {
    sim.host()
        .xs_dump("/")
        .expect("dump")
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| {
            p.starts_with(&format!("/local/domain/0/device-model/{dom}"))
                || p.starts_with(&format!("/local/domain/0/backend/qdisk/{dom}"))
                || p.starts_with(&format!("/local/domain/{dom}/"))
                || p.starts_with(&format!("/libxl/{dom}/"))
        })
        .collect()
}

fn sockets(sim: &Sim) -> Vec<String> {
    match std::fs::read_dir(sim.dir.path().join("run")) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn device_models(sim: &Sim) -> Vec<u32> {
    sim.processes(&["sim-device-model"])
}

fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .expect("cmdline")
        .split(|&b| b == 0)
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect()
}

/// Nothing of domain `dom` is left: no device model process, no xenstore node, no QMP
/// socket, no record, no domain.
fn nothing_left(sim: &Sim, dom: &str) {
    assert_eq!(device_models(sim), Vec::<u32>::new(), "a device model runs");
    assert_eq!(dm_nodes(sim, dom), Vec::<String>::new());
    assert_eq!(sockets(sim), Vec::<String>::new());
    assert!(
        !sim.state().join("device-model").join(dom).exists(),
        "rxl's record of the device model is left"
    );
    assert_eq!(sim.domains().len(), 1, "only Domain-0: {:?}", sim.domains());
}

#[test]
fn a_qcow2_guest_runs_its_device_model_and_destroy_leaves_nothing() {
    let sim = Sim::new();
    let img = qcow2(sim.dir.path(), "root.qcow2");
    let cfg = config(&sim, "qd", &format!("{},qcow2,xvda,rw", img.display()));
    let o = ok(sim.run(&["create", "-n", cfg.to_str().expect("utf-8")]));
    assert!(
        stdout(&o).contains("vbd devid 51712: QEMU qdisk in the device model"),
        "{}",
        stdout(&o)
    );
    let o = ok(create(&sim, &cfg, &[]));
    let dom = stdout(&o).trim().to_owned();

    let pids = device_models(&sim);
    assert_eq!(pids.len(), 1, "one device model: {pids:?}");
    let args = cmdline(pids[0]);
    let after: Vec<&str> = args
        .iter()
        .skip_while(|a| *a != "--")
        .skip(1)
        .filter(|a| !a.is_empty())
        .map(String::as_str)
        .collect();
    let run = sim.dir.path().join("run");
    assert_eq!(
        after.join(" "),
        format!(
            "-xen-domid {dom} -no-shutdown \
             -chardev socket,id=libxl-cmd,path={run}/qmp-libxl-{dom},server=on,wait=off \
             -mon chardev=libxl-cmd,mode=control \
             -chardev socket,id=libxenstat-cmd,path={run}/qmp-libxenstat-{dom},server=on,wait=off \
             -mon chardev=libxenstat-cmd,mode=control \
             -nodefaults -no-user-config -xen-attach -name qd -vnc none -display none \
             -machine xenpv -m 32",
            run = run.display()
        )
    );
    assert_eq!(
        read(&sim, &format!("/local/domain/0/device-model/{dom}/state")).as_deref(),
        Some("running")
    );
    assert_eq!(
        read(&sim, &format!("/local/domain/{dom}/image/device-model-pid")),
        Some(pids[0].to_string())
    );
    let be = format!("/local/domain/0/backend/qdisk/{dom}/51712");
    assert_eq!(
        read(&sim, &format!("{be}/params")),
        Some(format!("qcow2:{}", img.display()))
    );
    assert_eq!(read(&sim, &format!("{be}/state")).as_deref(), Some("2"));
    assert_eq!(
        read(
            &sim,
            &format!("/local/domain/{dom}/device/vbd/51712/backend")
        ),
        Some(be.clone())
    );
    let mut socks = sockets(&sim);
    socks.sort();
    assert_eq!(
        socks,
        [format!("qmp-libxenstat-{dom}"), format!("qmp-libxl-{dom}")]
    );
    let log = sim.state().join("log").join("qemu-dm-qd.log");
    let text = std::fs::read_to_string(&log).expect("the device model's log");
    assert!(text.contains("1 qdisk backend(s) in InitWait"), "{text}");

    // The guest lists, and block-list shows the qdisk.
    assert!(sim.domain("qd").is_some());
    let o = ok(sim.run(&["block-list", "qd"]));
    assert!(stdout(&o).contains("51712"), "{}", stdout(&o));

    ok(sim.run(&["destroy", "qd"]));
    nothing_left(&sim, &dom);
}

#[test]
fn a_device_model_that_exits_at_once_fails_the_create_and_leaves_nothing() {
    let sim = Sim::new();
    let img = qcow2(sim.dir.path(), "root.qcow2");
    let cfg = config(&sim, "early", &format!("{},qcow2,xvda,rw", img.display()));
    let o = create(&sim, &cfg, &[("RXL_SIM_FAIL", "dm_start")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("step \"device model\""), "{err}");
    assert!(err.contains("exited before it confirmed"), "{err}");
    assert!(err.contains("command: "), "{err}");
    assert!(
        err.contains("sim-device-model -- -xen-domid 1 ") && err.contains("-machine xenpv"),
        "{err}"
    );
    let log = sim.state().join("log").join("qemu-dm-early.log");
    assert!(err.contains(&format!("log: {}", log.display())), "{err}");
    assert!(
        err.contains("sim-device-model: failing at start (RXL_SIM_FAIL dm_start)"),
        "the log's last lines: {err}"
    );
    // Domain 1 was the one made and undone.
    nothing_left(&sim, "1");
}

#[test]
fn a_device_model_that_never_confirms_fails_the_create_and_leaves_nothing() {
    let sim = Sim::new();
    let img = qcow2(sim.dir.path(), "root.qcow2");
    let cfg = config(&sim, "mute", &format!("{},qcow2,xvda,rw", img.display()));
    let o = create(
        &sim,
        &cfg,
        &[
            ("RXL_SIM_FAIL", "dm_confirm"),
            ("RXL_SIM_DM_TIMEOUT_MS", "700"),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("did not write /local/domain/0/device-model/1/state = running within 0.7 s"),
        "{err}"
    );
    assert!(err.contains("never confirming"), "{err}");
    nothing_left(&sim, "1");
}

#[test]
fn a_device_model_killed_while_the_guest_runs_is_still_cleaned_up() {
    let sim = Sim::new();
    let img = qcow2(sim.dir.path(), "root.qcow2");
    let cfg = config(&sim, "killed", &format!("{},qcow2,xvda,rw", img.display()));
    let dom = stdout(&ok(create(&sim, &cfg, &[]))).trim().to_owned();
    let pids = device_models(&sim);
    assert_eq!(pids.len(), 1);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pids[0]).expect("pid")),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    sim.wait_for("the device model to die", |s| device_models(s).is_empty());
    ok(sim.run(&["destroy", "killed"]));
    nothing_left(&sim, &dom);
    // A second destroy finds nothing.
    assert_ne!(sim.run(&["destroy", "killed"]).status.code(), Some(0));
}

#[test]
fn a_raw_image_labelled_qcow2_is_refused_before_anything_is_built() {
    let sim = Sim::new();
    let img = sim.dir.path().join("raw.img");
    std::fs::write(&img, vec![0u8; 4096]).expect("image");
    let cfg = config(&sim, "bad", &format!("{},qcow2,xvda,rw", img.display()));
    let o = create(&sim, &cfg, &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("step \"check devices\""), "{err}");
    assert!(err.contains("disk xvda (line 5:"), "{err}");
    assert!(err.contains("is not a qcow2 image"), "{err}");
    nothing_left(&sim, "1");
}

#[test]
fn sim_device_model_is_refused_on_real_xen() {
    let o = rxl(&["sim-device-model", "--", "-xen-domid", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("simulated host only"), "{}", stderr(&o));
}

#[test]
fn a_reboot_by_the_host_monitor_gives_the_new_domain_its_own_device_model() {
    let sim = Sim::new();
    let img = qcow2(sim.dir.path(), "root.qcow2");
    let cfg = config(&sim, "rb", &format!("{},qcow2,xvda,rw", img.display()));
    // With the host monitor, which applies on_reboot = "restart".
    let o = ok(sim.run(&["create", cfg.to_str().expect("utf-8")]));
    let first = stdout(&o).trim().to_owned();
    let first_id: u64 = first.parse().expect("domid");
    ok(sim.run(&["reboot", "-w", "rb"]));
    sim.wait_for("the restarted guest", |s| {
        s.domain("rb")
            .is_some_and(|d| d["domid"].as_u64() != Some(first_id) && d["state"] != "--p---")
    });
    let second = sim.domain("rb").expect("listed")["domid"].to_string();
    sim.wait_for("one device model", |s| device_models(s).len() == 1);
    let args = cmdline(device_models(&sim)[0]);
    let at = args
        .iter()
        .position(|a| a == "-xen-domid")
        .expect("-xen-domid");
    assert_eq!(
        args[at + 1],
        second,
        "the device model serves the new domain"
    );
    assert_eq!(dm_nodes(&sim, &first), Vec::<String>::new());
    assert_eq!(
        read(
            &sim,
            &format!("/local/domain/0/device-model/{second}/state")
        )
        .as_deref(),
        Some("running")
    );
    let monitor = sim.monitord_pid().expect("the host monitor runs");
    ok(sim.run(&["destroy", "rb"]));
    nothing_left(&sim, &second);
    // The monitor started that device model and reaped it: no zombie is left to it.
    sim.wait_for("the monitor to reap its device model", |_| {
        zombies_of(monitor).is_empty()
    });
}

/// The zombie children of `parent`.
fn zombies_of(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.first() == Some(&"Z") && f.get(1) == Some(&parent.to_string().as_str()) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn the_simulated_device_model_exits_when_its_domain_is_gone() {
    let sim = Sim::new();
    let img = qcow2(sim.dir.path(), "root.qcow2");
    let cfg = config(&sim, "gone", &format!("{},qcow2,xvda,rw", img.display()));
    let dom: u16 = stdout(&ok(create(&sim, &cfg, &[])))
        .trim()
        .parse()
        .expect("domid");
    assert_eq!(device_models(&sim).len(), 1);
    // Destroyed behind rxl's back: the device model sees @releaseDomain and leaves.
    xen_host::Hypervisor::destroy(&sim.host(), xen_host::DomId(dom)).expect("destroy");
    sim.wait_for("the device model to exit", |s| device_models(s).is_empty());
    assert_eq!(
        sockets(&sim),
        Vec::<String>::new(),
        "it removed its sockets"
    );
    let log =
        std::fs::read_to_string(sim.state().join("log").join("qemu-dm-gone.log")).expect("log");
    assert!(log.contains("is gone: exiting"), "{log}");
    // rxl destroy then removes what is left (the record, nodes).
    ok(sim.run(&["destroy", "gone"]));
    nothing_left(&sim, &dom.to_string());
}

/// A `list --json` entry's domain id.
fn domid(d: &serde_json::Value) -> String {
    d["domid"].to_string()
}

/// The host monitor's log.
fn monitord_log(sim: &Sim) -> String {
    std::fs::read_to_string(sim.state().join("log/monitord.log")).unwrap_or_default()
}

/// Waits until the monitor has destroyed `name` (domain `dom`) and finished its cleanup.
fn destroyed(sim: &Sim, name: &str, dom: &str) {
    sim.wait_for("the crashed guest to be destroyed and cleaned up", |s| {
        s.domain(name).is_none()
            && dm_nodes(s, dom).is_empty()
            && sockets(s).is_empty()
            && !s.state().join("device-model").join(dom).exists()
            && !s.state().join(format!("{dom}.json")).exists()
    });
}

/// The line a monitor logs when it takes a device model's exit for a crash.
fn crash_line(dom: &str, pid: u32) -> String {
    format!("device model of domain {dom} (pid {pid}) exited: treating as a crash")
}

fn sigkill(pid: u32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid")),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
}

/// A guest `name` with a qcow2 disk (so a device model) and `on_crash = "ACTION"`,
/// created with the host monitor; its domain id and its device model's pid.
fn crash_guest(sim: &Sim, name: &str, action: &str) -> (String, u32) {
    let img = qcow2(sim.dir.path(), &format!("{name}.qcow2"));
    let cfg = config_with(
        sim,
        name,
        &format!("{},qcow2,xvda,rw", img.display()),
        &format!("on_crash = \"{action}\"\n"),
    );
    let o = ok(sim.run(&["create", cfg.to_str().expect("utf-8")]));
    let dom = stdout(&o).trim().to_owned();
    let pids = device_models(sim);
    assert_eq!(pids.len(), 1, "one device model: {pids:?}");
    (dom, pids[0])
}

#[test]
fn a_device_model_killed_while_its_guest_runs_is_a_crash_and_on_crash_destroy_applies() {
    let sim = Sim::new();
    let (dom, pid) = crash_guest(&sim, "dd", "destroy");
    sim.monitord_pid().expect("the host monitor runs");
    sigkill(pid);
    destroyed(&sim, "dd", &dom);
    nothing_left(&sim, &dom);
    let log = monitord_log(&sim);
    assert!(log.contains(&crash_line(&dom, pid)), "{log}");
    assert!(log.contains("shut down (crash): destroy"), "{log}");
}

#[test]
fn on_crash_restart_gives_the_new_domain_a_new_device_model() {
    let sim = Sim::new();
    let (dom, pid) = crash_guest(&sim, "dr", "restart");
    sigkill(pid);
    sim.wait_for("the restarted guest", |s| {
        s.domain("dr")
            .is_some_and(|d| domid(&d) != dom && d["state"] != "--p---")
    });
    let second = sim.domain("dr").expect("listed")["domid"].to_string();
    sim.wait_for("its device model", |s| device_models(s).len() == 1);
    let new_pid = device_models(&sim)[0];
    assert_ne!(new_pid, pid);
    let args = cmdline(new_pid);
    let at = args
        .iter()
        .position(|a| a == "-xen-domid")
        .expect("-xen-domid");
    assert_eq!(args[at + 1], second);
    assert_eq!(dm_nodes(&sim, &dom), Vec::<String>::new());
    // The restarted guest's device model is watched too: its death is a crash again.
    sigkill(new_pid);
    sim.wait_for("the second restart", |s| {
        s.domain("dr").is_some_and(|d| {
            let id = d["domid"].to_string();
            id != dom && id != second && d["state"] != "--p---"
        })
    });
    let log = monitord_log(&sim);
    assert!(log.contains(&crash_line(&dom, pid)), "{log}");
    assert!(log.contains(&crash_line(&second, new_pid)), "{log}");
}

#[test]
fn on_crash_preserve_keeps_the_domain_shut_down_as_crashed() {
    let sim = Sim::new();
    let (dom, pid) = crash_guest(&sim, "dp", "preserve");
    sigkill(pid);
    let id: u16 = dom.parse().expect("domid");
    sim.wait_for("the crash", |s| {
        s.host()
            .domain_info(xen_host::DomId(id))
            .expect("info")
            .is_some_and(|i| i.shutdown)
    });
    let info = sim
        .host()
        .domain_info(xen_host::DomId(id))
        .expect("info")
        .expect("kept");
    assert_eq!(
        info.shutdown_reason(),
        Some(xen_host::ShutdownReason::Crash)
    );
    sim.wait_for("the monitor to log it", |s| {
        monitord_log(s).contains("shut down (crash): preserve")
    });
    assert!(monitord_log(&sim).contains(&crash_line(&dom, pid)));
    // Kept, and still there a moment later.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(sim.domain("dp").is_some());
}

#[test]
fn a_host_monitor_started_after_a_device_model_died_adopts_it() {
    let sim = Sim::new();
    let (dom, pid) = crash_guest(&sim, "da", "destroy");
    let monitor = sim.monitord_pid().expect("the host monitor runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(monitor).expect("pid")),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("kill");
    sim.wait_for("the monitor to exit", |s| s.monitord_pid().is_none());
    sigkill(pid);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(sim.domain("da").is_some(), "no monitor: the guest stays");
    ok(sim.run(&["monitord"]));
    destroyed(&sim, "da", &dom);
    nothing_left(&sim, &dom);
    assert!(monitord_log(&sim).contains(&crash_line(&dom, pid)));
}

#[test]
fn the_foreground_monitor_of_create_f_applies_on_crash_when_the_device_model_dies() {
    let sim = Sim::new();
    let img = qcow2(sim.dir.path(), "fg.qcow2");
    let cfg = config_with(
        &sim,
        "fg",
        &format!("{},qcow2,xvda,rw", img.display()),
        "on_crash = \"destroy\"\n",
    );
    let log = sim.dir.path().join("fg.log");
    let mut child = sim
        .command(&["create", "-F", cfg.to_str().expect("utf-8")], None)
        .env("RXL_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn");
    sim.wait_for("the device model", |s| device_models(s).len() == 1);
    sim.wait_for("the guest to run", |s| {
        s.domain("fg").is_some_and(|d| d["state"] != "--p---")
    });
    let dom = sim.domain("fg").expect("listed")["domid"].to_string();
    let pid = device_models(&sim)[0];
    sigkill(pid);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        assert!(std::time::Instant::now() < deadline, "create -F still runs");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    nothing_left(&sim, &dom);
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains(&crash_line(&dom, pid)), "{text}");
    assert!(
        sim.monitord_pid().is_none(),
        "create -F starts no host monitor"
    );
}

#[test]
fn destroy_and_reboot_stop_the_device_model_without_a_crash() {
    let sim = Sim::new();
    let (dom, pid) = crash_guest(&sim, "nc", "preserve");
    ok(sim.run(&["reboot", "-w", "nc"]));
    sim.wait_for("the rebooted guest", |s| {
        s.domain("nc")
            .is_some_and(|d| domid(&d) != dom && d["state"] != "--p---")
    });
    sim.wait_for("its device model", |s| device_models(s).len() == 1);
    let second = sim.domain("nc").expect("listed")["domid"].to_string();
    let pid2 = device_models(&sim)[0];
    ok(sim.run(&["destroy", "nc"]));
    nothing_left(&sim, &second);
    // Give a watcher time to (wrongly) act, then look at what the monitor did.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = monitord_log(&sim);
    assert!(!log.contains("treating as a crash"), "{log}");
    assert!(!log.contains("(crash)"), "{log}");
    assert!(!log.contains(&crash_line(&dom, pid)) && !log.contains(&crash_line(&second, pid2)));
}
