//! Simulated backends, frontends and hotplug, driven through the sequence the toolstack
//! runs (docs/devices.md §6): the node set of `devices::plan` in one transaction, the
//! backend's InitWait, the hotplug script, unpause; and the teardown.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{domain, host};
use devices::hotplug::{command_for, Action, Hotplug, HotplugRun};
use devices::{Guest, PlannedDevice, XsOp};
use sim::{HostConfig, SimHost, SimHotplug};
use xen_host::{DomId, Hypervisor, Store, TxId};

const T: TxId = TxId::NONE;
const TIMEOUT: Duration = Duration::from_secs(40);

/// A host, a directory for images and logs, and simulated hotplug for the host.
struct Bed {
    dir: tempfile::TempDir,
    host: SimHost,
    hotplug: SimHotplug,
}

impl Bed {
    fn new() -> Bed {
        let dir = tempfile::tempdir().unwrap();
        let xs = dir.path().join("host");
        let host = host(&xs, 8192);
        let hotplug = SimHotplug::for_host(&host);
        Bed { dir, host, hotplug }
    }

    fn with_faults(self, spec: &str) -> Bed {
        Bed {
            host: self.host.with_faults(spec).unwrap(),
            hotplug: self.hotplug.with_faults(spec).unwrap(),
            dir: self.dir,
        }
    }

    /// A 1 MiB image file in the bed's directory.
    fn image(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, vec![0u8; 1 << 20]).unwrap();
        p
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("hotplug.log")
    }

    /// The devices `disk` and `vif` lines (xl syntax) plan for guest `dom`.
    fn plan(&self, dom: DomId, disks: &[&str], vifs: &[&str]) -> Vec<PlannedDevice> {
        let list = |xs: &[&str]| {
            xs.iter()
                .map(|x| format!("\"{x}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let text = format!(
            "name = \"g{}\"\ntype = \"pvh\"\nkernel = \"/k\"\ndisk = [ {} ]\nvif = [ {} ]\n",
            dom.0,
            list(disks),
            list(vifs)
        );
        let parsed = xlcfg::parse_str("test.cfg", &text);
        assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics);
        let cfg = xlcfg::build(&parsed.settings, self.dir.path())
            .expect("valid config")
            .config;
        let guest = Guest {
            domid: dom,
            domain_type: xlcfg::DomainType::Pvh,
        };
        devices::plan(
            &guest,
            &cfg,
            Path::new(devices::XEN_SCRIPT_DIR),
            &mut |_| Some(DomId::DOM0),
        )
        .expect("plan")
    }

    fn apply(&self, ops: &[XsOp]) {
        let tx = self.host.transaction_start().unwrap();
        for op in ops {
            match op {
                XsOp::Rm(p) => self.host.rm(tx, p).unwrap(),
                XsOp::Mkdir { path, perms } => {
                    self.host.mkdir(tx, path).unwrap();
                    self.host.set_perms(tx, path, perms).unwrap();
                }
                XsOp::Write { path, value, perms } => {
                    self.host.write(tx, path, value.as_bytes()).unwrap();
                    if let Some(perms) = perms {
                        self.host.set_perms(tx, path, perms).unwrap();
                    }
                }
            }
        }
        assert!(self.host.transaction_end(tx, true).unwrap(), "no conflict");
    }

    fn get(&self, path: &str) -> Option<String> {
        self.host
            .read(T, path)
            .unwrap()
            .map(|v| String::from_utf8(v).unwrap())
    }

    fn be(&self, d: &PlannedDevice, key: &str) -> Option<String> {
        self.get(&format!("{}/{key}", d.nodes.backend))
    }

    fn fe(&self, d: &PlannedDevice, key: &str) -> Option<String> {
        self.get(&format!("{}/{key}", d.nodes.frontend))
    }

    /// The states of the frontend and the backend.
    fn states(&self, d: &PlannedDevice) -> (Option<String>, Option<String>) {
        (self.fe(d, "state"), self.be(d, "state"))
    }

    fn run(&self, d: &PlannedDevice, action: Action) -> HotplugRun {
        let cmd = command_for(&d.nodes, action).expect("a script");
        self.hotplug.run(&cmd, &self.log(), TIMEOUT).unwrap()
    }

    /// Steps 2-4 of the attach: nodes, InitWait, script.
    fn attach(&self, d: &PlannedDevice) -> HotplugRun {
        self.apply(&d.nodes.setup_ops());
        assert_eq!(self.be(d, "state").as_deref(), Some("2"), "InitWait");
        self.run(d, Action::Add)
    }

    /// Step 1 of the teardown: online=0, state=5 (and the frontend removed if forced).
    fn close(&self, d: &PlannedDevice, force: bool) {
        let st = self.be(d, "state");
        let ops = d.nodes.close_ops(st.as_deref(), force).expect("a backend");
        self.apply(&ops);
    }

    /// Steps 3-4 of the teardown: the script, then the nodes.
    fn remove(&self, d: &PlannedDevice) -> HotplugRun {
        let run = self.run(d, Action::Remove);
        for p in d.nodes.teardown_paths() {
            self.host.rm(T, p).unwrap();
        }
        run
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// Nothing of any device is left: no backend, no loop device, no interface, no
    /// device state file.
    fn assert_nothing_left(&self, dom: DomId) {
        for kind in ["vbd", "vif"] {
            let p = format!("/local/domain/0/backend/{kind}/{}", dom.0);
            let left = self.host.directory(T, &p).unwrap().unwrap_or_default();
            assert!(left.is_empty(), "{p}: {left:?}");
        }
        assert_eq!(self.host.loop_devices().unwrap(), vec![]);
        assert_eq!(self.host.vif_interfaces().unwrap(), vec![]);
        assert!(!self.host.dir().join("devices.json").exists());
    }
}

fn running(bed: &Bed) -> DomId {
    let d = domain(&bed.host, 64);
    bed.host.unpause(d).unwrap();
    d
}

#[test]
fn new_backends_reach_init_wait_and_image_files_get_loop_devices() {
    let bed = Bed::new();
    let img = bed.image("root.img");
    let dom = domain(&bed.host, 64);
    let p = bed.plan(dom, &["root.img,raw,xvda,rw"], &["bridge=xenbr0"]);
    let (disk, vif) = (&p[0], &p[1]);
    bed.apply(&disk.nodes.setup_ops());
    assert_eq!(bed.states(disk), (Some("1".into()), Some("2".into())));
    let run = bed.run(disk, Action::Add);
    assert!(run.success(), "{}: {}", run.ended(), bed.log_text());
    assert_eq!(bed.be(disk, "physical-device").as_deref(), Some("7:0"));
    assert_eq!(
        bed.be(disk, "physical-device-path").as_deref(),
        Some("/dev/loop0")
    );
    assert_eq!(bed.be(disk, "node").as_deref(), Some("/dev/loop0"));
    assert_eq!(bed.be(disk, "hotplug-status").as_deref(), Some("connected"));
    let loops = bed.host.loop_devices().unwrap();
    assert_eq!(loops.len(), 1);
    assert_eq!(loops[0].node, "/dev/loop0");
    assert_eq!(loops[0].file, img.canonicalize().unwrap());
    assert!(!loops[0].read_only);
    assert_eq!(loops[0].backend, disk.nodes.backend);
    assert_eq!(bed.hotplug.loop_devices().unwrap(), loops);

    let run = bed.attach(vif);
    assert!(run.success(), "{}", bed.log_text());
    assert_eq!(bed.be(vif, "hotplug-status").as_deref(), Some("connected"));
    let name = format!("vif{}.0", dom.0);
    assert_eq!(
        bed.host.bridge_ports().unwrap(),
        vec![("xenbr0".to_owned(), name.clone())]
    );
    let log = bed.log_text();
    assert!(log.contains("/dev/loop0 bound to"), "{log}");
    assert!(
        log.contains(&format!("interface {name} up on bridge xenbr0")),
        "{log}"
    );
    assert_eq!(bed.hotplug.name(), "simulated");

    // The domain is paused: nothing connects until it runs.
    assert_eq!(bed.states(disk), (Some("1".into()), Some("2".into())));
    assert_eq!(bed.states(vif), (Some("1".into()), Some("2".into())));
    bed.host.unpause(dom).unwrap();
    assert_eq!(bed.states(disk), (Some("4".into()), Some("4".into())));
    assert_eq!(bed.states(vif), (Some("4".into()), Some("4".into())));
}

#[test]
fn a_second_image_gets_the_next_loop_device_read_only_for_mode_r() {
    let bed = Bed::new();
    bed.image("a.img");
    bed.image("b.img");
    let dom = domain(&bed.host, 64);
    let p = bed.plan(dom, &["a.img,raw,xvda,rw", "b.img,raw,xvdb,r"], &[]);
    assert!(bed.attach(&p[0]).success());
    assert!(bed.attach(&p[1]).success());
    assert_eq!(bed.be(&p[1], "physical-device").as_deref(), Some("7:1"));
    let loops = bed.host.loop_devices().unwrap();
    assert_eq!(loops[1].node, "/dev/loop1");
    assert!(loops[1].read_only);
}

#[test]
fn a_block_device_is_used_as_it_is() {
    let Some((path, major, minor)) = std::fs::read_dir("/dev").unwrap().find_map(|e| {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let e = e.ok()?;
        let m = std::fs::metadata(e.path()).ok()?;
        m.file_type().is_block_device().then(|| {
            let r = m.rdev();
            (e.path(), nix::sys::stat::major(r), nix::sys::stat::minor(r))
        })
    }) else {
        eprintln!("no block device under /dev: nothing to check");
        return;
    };
    let bed = Bed::new();
    let dom = domain(&bed.host, 64);
    let spec = format!("phy:{},xvda,r", path.display());
    let p = bed.plan(dom, &[&spec], &[]);
    let run = bed.attach(&p[0]);
    assert!(run.success(), "{}", bed.log_text());
    assert_eq!(
        bed.be(&p[0], "physical-device"),
        Some(format!("{major:x}:{minor:x}"))
    );
    let canonical = path.canonicalize().unwrap().display().to_string();
    assert_eq!(bed.be(&p[0], "physical-device-path"), Some(canonical));
    assert_eq!(bed.be(&p[0], "node"), None);
    assert_eq!(bed.host.loop_devices().unwrap(), vec![]);
}

#[test]
fn a_device_added_to_a_running_domain_connects_after_its_hotplug() {
    let bed = Bed::new();
    bed.image("data.img");
    let dom = running(&bed);
    let p = bed.plan(dom, &["data.img,raw,xvdb,rw"], &[""]);
    for d in &p {
        bed.apply(&d.nodes.setup_ops());
        assert_eq!(bed.states(d), (Some("1".into()), Some("2".into())));
        assert!(bed.run(d, Action::Add).success(), "{}", bed.log_text());
        assert_eq!(bed.states(d), (Some("4".into()), Some("4".into())), "{d}");
    }
}

#[test]
fn backend_init_fault_leaves_the_backend_in_initialising() {
    let bed = Bed::new().with_faults("backend_init:2");
    bed.image("a.img");
    bed.image("b.img");
    let dom = domain(&bed.host, 64);
    let p = bed.plan(dom, &["a.img,raw,xvda,rw", "b.img,raw,xvdb,rw"], &[]);
    bed.apply(&p[0].nodes.setup_ops());
    assert_eq!(bed.be(&p[0], "state").as_deref(), Some("2"));
    bed.apply(&p[1].nodes.setup_ops());
    assert_eq!(bed.be(&p[1], "state").as_deref(), Some("1"), "stuck");
    // Another write to the backend does not move it either.
    bed.host
        .write(T, &format!("{}/online", p[1].nodes.backend), b"1")
        .unwrap();
    assert_eq!(bed.be(&p[1], "state").as_deref(), Some("1"));
}

#[test]
fn frontend_connect_fault_leaves_the_frontend_initialising() {
    let bed = Bed::new().with_faults("frontend_connect");
    bed.image("a.img");
    let dom = domain(&bed.host, 64);
    let p = bed.plan(dom, &["a.img,raw,xvda,rw"], &[""]);
    for d in &p {
        assert!(bed.attach(d).success());
    }
    bed.host.unpause(dom).unwrap();
    assert_eq!(bed.states(&p[0]), (Some("1".into()), Some("2".into())));
    assert_eq!(
        bed.states(&p[1]),
        (Some("4".into()), Some("4".into())),
        "only the first connect is refused"
    );
}

#[test]
fn frontend_connect_fault_applies_to_a_hot_plugged_device() {
    let bed = Bed::new().with_faults("frontend_connect");
    let dom = running(&bed);
    let p = bed.plan(dom, &[], &[""]);
    assert!(bed.attach(&p[0]).success());
    assert_eq!(bed.states(&p[0]), (Some("1".into()), Some("2".into())));
}

#[test]
fn a_connected_frontend_releases_its_device_and_nothing_is_left() {
    let bed = Bed::new();
    bed.image("a.img");
    let dom = running(&bed);
    let p = bed.plan(dom, &["a.img,raw,xvda,rw"], &["vifname=guest0"]);
    for d in &p {
        assert!(bed.attach(d).success(), "{}", bed.log_text());
        assert_eq!(bed.states(d), (Some("4".into()), Some("4".into())));
    }
    assert_eq!(
        bed.host.bridge_ports().unwrap(),
        vec![("xenbr0".to_owned(), "guest0".to_owned())]
    );
    for d in &p {
        bed.close(d, false);
        assert_eq!(bed.states(d), (Some("6".into()), Some("6".into())), "{d}");
        assert!(bed.remove(d).success(), "{}", bed.log_text());
    }
    let log = bed.log_text();
    assert!(log.contains("freed /dev/loop0"), "{log}");
    assert!(log.contains("interface guest0 removed"), "{log}");
    bed.assert_nothing_left(dom);
}

#[test]
fn frontend_release_fault_keeps_the_backend_closing_until_a_forced_close() {
    let bed = Bed::new().with_faults("frontend_release");
    bed.image("a.img");
    let dom = running(&bed);
    let p = bed.plan(dom, &["a.img,raw,xvda,rw"], &[]);
    let d = &p[0];
    assert!(bed.attach(d).success());
    bed.close(d, false);
    assert_eq!(
        bed.states(d),
        (Some("4".into()), Some("5".into())),
        "refused"
    );
    bed.close(d, true);
    assert_eq!(bed.states(d), (None, Some("6".into())), "forced");
    assert!(bed.remove(d).success());
    bed.assert_nothing_left(dom);
}

#[test]
fn a_close_needs_no_frontend_when_the_guest_is_paused_or_never_connected() {
    let bed = Bed::new();
    bed.image("a.img");
    // Paused with a connected frontend.
    let dom = running(&bed);
    let p = bed.plan(dom, &["a.img,raw,xvda,rw"], &[]);
    assert!(bed.attach(&p[0]).success());
    bed.host.pause(dom).unwrap();
    bed.close(&p[0], false);
    assert_eq!(bed.states(&p[0]), (Some("4".into()), Some("6".into())));
    assert!(bed.remove(&p[0]).success());
    // Never connected (never unpaused).
    let dom2 = domain(&bed.host, 64);
    let p = bed.plan(dom2, &[], &[""]);
    assert!(bed.attach(&p[0]).success());
    bed.close(&p[0], false);
    assert_eq!(bed.states(&p[0]), (Some("1".into()), Some("6".into())));
    assert!(bed.remove(&p[0]).success());
    bed.assert_nothing_left(dom);
    bed.assert_nothing_left(dom2);
}

#[test]
fn removing_the_frontend_closes_a_backend_left_closing() {
    let bed = Bed::new().with_faults("frontend_release");
    let dom = running(&bed);
    let p = bed.plan(dom, &[], &[""]);
    assert!(bed.attach(&p[0]).success());
    bed.close(&p[0], false);
    assert_eq!(bed.be(&p[0], "state").as_deref(), Some("5"));
    // The whole domain directory goes (as a destroy's cleanup removes it).
    bed.host.rm(T, &format!("/local/domain/{}", dom.0)).unwrap();
    assert_eq!(bed.be(&p[0], "state").as_deref(), Some("6"));
}

#[test]
fn removing_a_vif_backend_removes_its_interface() {
    let bed = Bed::new();
    let dom = running(&bed);
    let p = bed.plan(dom, &[], &["", ""]);
    for d in &p {
        assert!(bed.attach(d).success());
    }
    assert_eq!(bed.host.vif_interfaces().unwrap().len(), 2);
    bed.host.rm(T, &p[0].nodes.backend).unwrap();
    let left = bed.host.vif_interfaces().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].name, format!("vif{}.1", dom.0));
    bed.host
        .rm(T, &format!("/local/domain/0/backend/vif/{}", dom.0))
        .unwrap();
    bed.assert_nothing_left(dom);
}

#[test]
fn a_missing_image_fails_as_the_script_does() {
    let bed = Bed::new();
    let dom = domain(&bed.host, 64);
    let p = bed.plan(dom, &["gone.img,raw,xvda,rw"], &[]);
    let run = bed.attach(&p[0]);
    assert_eq!(run.exit_code, Some(1));
    assert!(!run.timed_out);
    let err = bed.be(&p[0], "hotplug-error").unwrap();
    assert!(err.contains("gone.img does not exist"), "{err}");
    assert_eq!(bed.be(&p[0], "hotplug-status").as_deref(), Some("error"));
    assert_eq!(bed.be(&p[0], "physical-device"), None);
    let log = bed.log_text();
    assert!(log.contains("rxl (simulated host):"), "{log}");
    assert!(log.contains("failed:") && log.contains("gone.img"), "{log}");
    let e = run.check("disk xvda", Some(&err)).unwrap_err().to_string();
    assert!(e.contains("exited with status 1"), "{e}");
    assert_eq!(bed.host.loop_devices().unwrap(), vec![]);
}

#[test]
fn an_image_used_read_write_by_another_guest_is_refused() {
    let bed = Bed::new();
    bed.image("shared.img");
    let a = domain(&bed.host, 64);
    let b = domain(&bed.host, 64);
    let c = domain(&bed.host, 64);
    for (d, vm) in [(a, "aaaa"), (b, "bbbb"), (c, "cccc")] {
        bed.host
            .write(
                T,
                &format!("/local/domain/{}/vm", d.0),
                format!("/vm/{vm}").as_bytes(),
            )
            .unwrap();
    }
    let pa = bed.plan(a, &["shared.img,raw,xvda,rw"], &[]);
    assert!(bed.attach(&pa[0]).success());
    // Read-only or read-write, another guest may not have it.
    for (dom, spec) in [(b, "shared.img,raw,xvda,r"), (c, "shared.img,raw,xvda,rw")] {
        let p = bed.plan(dom, &[spec], &[]);
        let run = bed.attach(&p[0]);
        assert_eq!(run.exit_code, Some(1), "{spec}");
        let err = bed.be(&p[0], "hotplug-error").unwrap();
        assert!(err.contains(&pa[0].nodes.backend), "{err}");
        assert_eq!(bed.be(&p[0], "hotplug-status").as_deref(), Some("busy"));
    }
    assert_eq!(bed.host.loop_devices().unwrap().len(), 1);
    // A domain of the same VM (same `vm` node, as across a restart) may share it.
    let a2 = domain(&bed.host, 64);
    bed.host
        .write(T, &format!("/local/domain/{}/vm", a2.0), b"/vm/aaaa")
        .unwrap();
    let p = bed.plan(a2, &["shared.img,raw,xvda,rw"], &[]);
    assert!(bed.attach(&p[0]).success(), "{}", bed.log_text());
    assert_eq!(bed.host.loop_devices().unwrap().len(), 2);
    // Read-only in two guests is fine; read-write then is not.
    bed.image("ro.img");
    let pb = bed.plan(b, &["ro.img,raw,xvdb,r"], &[]);
    let pc = bed.plan(c, &["ro.img,raw,xvdb,r"], &[]);
    assert!(bed.attach(&pb[0]).success());
    assert!(bed.attach(&pc[0]).success(), "{}", bed.log_text());
    let pa2 = bed.plan(a, &["ro.img,raw,xvdb,rw"], &[]);
    assert_eq!(bed.attach(&pa2[0]).exit_code, Some(1));
}

#[test]
fn a_read_only_file_is_not_attached_read_write() {
    use std::os::unix::fs::PermissionsExt;
    let bed = Bed::new();
    let img = bed.image("ro.img");
    std::fs::set_permissions(&img, std::fs::Permissions::from_mode(0o444)).unwrap();
    let dom = domain(&bed.host, 64);
    let p = bed.plan(dom, &["ro.img,raw,xvda,rw"], &[]);
    assert_eq!(bed.attach(&p[0]).exit_code, Some(1));
    assert_eq!(bed.be(&p[0], "hotplug-status").as_deref(), Some("busy"));
    let p = bed.plan(dom, &["ro.img,raw,xvdb,r"], &[]);
    assert!(bed.attach(&p[0]).success());
}

#[test]
fn a_missing_bridge_fails_and_the_host_bridges_are_configurable() {
    let bed = Bed::new();
    let dom = domain(&bed.host, 64);
    let p = bed.plan(dom, &[], &["bridge=br9"]);
    let run = bed.attach(&p[0]);
    assert_eq!(run.exit_code, Some(1));
    assert_eq!(
        bed.be(&p[0], "hotplug-error").as_deref(),
        Some("bridge br9 does not exist")
    );
    assert_eq!(bed.be(&p[0], "hotplug-status").as_deref(), Some("error"));
    assert_eq!(bed.host.vif_interfaces().unwrap(), vec![]);

    let dir = tempfile::tempdir().unwrap();
    let cfg = HostConfig {
        bridges: vec!["br9".into(), "br1".into()],
        ..HostConfig::default()
    };
    let h = SimHost::create(dir.path(), cfg.clone()).unwrap();
    drop(h);
    let h = SimHost::open(dir.path()).unwrap();
    assert_eq!(h.host_config().bridges, cfg.bridges, "persisted");
    let bad = HostConfig {
        bridges: vec!["no/slash".into()],
        ..HostConfig::default()
    };
    let e = SimHost::create(tempfile::tempdir().unwrap().path(), bad).unwrap_err();
    assert!(e.to_string().contains("no/slash"), "{e}");
}

#[test]
fn a_host_made_before_bridges_were_simulated_has_xenbr0() {
    let dir = tempfile::tempdir().unwrap();
    drop(SimHost::create(dir.path(), HostConfig::default()).unwrap());
    let p = dir.path().join("host.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("bridges");
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    let h = SimHost::open(dir.path()).unwrap();
    assert_eq!(h.host_config().bridges, vec!["xenbr0".to_owned()]);
}

#[test]
fn vif_route_and_vif_nat_need_no_bridge() {
    let bed = Bed::new();
    let dom = running(&bed);
    let p = bed.plan(
        dom,
        &[],
        &["script=vif-route", "script=vif-nat,bridge=nosuch"],
    );
    for d in &p {
        assert!(bed.attach(d).success(), "{}", bed.log_text());
        assert_eq!(bed.states(d), (Some("4".into()), Some("4".into())));
    }
    let ifaces = bed.host.vif_interfaces().unwrap();
    assert_eq!(ifaces.len(), 2);
    assert!(ifaces.iter().all(|i| i.bridge.is_none()));
    assert_eq!(bed.host.bridge_ports().unwrap(), vec![]);
    for d in &p {
        bed.close(d, false);
        assert!(bed.remove(d).success());
    }
    bed.assert_nothing_left(dom);
}

#[test]
fn a_vifname_already_in_use_is_refused() {
    let bed = Bed::new();
    let dom = domain(&bed.host, 64);
    let p = bed.plan(dom, &[], &["vifname=web", "vifname=web"]);
    assert!(bed.attach(&p[0]).success());
    let run = bed.attach(&p[1]);
    assert_eq!(run.exit_code, Some(1));
    let err = bed.be(&p[1], "hotplug-error").unwrap();
    assert!(err.contains("an interface named web exists"), "{err}");
}

#[test]
fn hotplug_faults_fail_the_script_with_a_hotplug_error() {
    let bed = Bed::new().with_faults("hotplug_add:2=ENOSPC,hotplug_remove");
    bed.image("a.img");
    let dom = domain(&bed.host, 64);
    let p = bed.plan(dom, &["a.img,raw,xvda,rw"], &[""]);
    assert!(bed.attach(&p[0]).success());
    let run = bed.attach(&p[1]);
    assert_eq!(run.exit_code, Some(1));
    let err = bed.be(&p[1], "hotplug-error").unwrap();
    assert!(
        err.contains("RXL_SIM_FAIL") && err.contains("hotplug_add"),
        "{err}"
    );
    assert!(err.contains("ENOSPC"), "{err}");
    assert_eq!(bed.be(&p[1], "hotplug-status").as_deref(), Some("error"));
    assert_eq!(
        bed.host.vif_interfaces().unwrap(),
        vec![],
        "the add did nothing"
    );
    bed.close(&p[0], false);
    let run = bed.run(&p[0], Action::Remove);
    assert_eq!(run.exit_code, Some(1));
    assert_eq!(bed.host.loop_devices().unwrap().len(), 1, "not freed");
    let err = bed.be(&p[0], "hotplug-error").unwrap();
    assert!(err.contains("hotplug_remove"), "{err}");
    // The next remove works.
    assert!(bed.run(&p[0], Action::Remove).success());
    assert_eq!(bed.host.loop_devices().unwrap(), vec![]);
}

#[test]
fn a_hung_hotplug_reports_the_timeout_without_waiting_for_it() {
    let bed = Bed::new().with_faults("hotplug_add=hang,hotplug_remove=sleep:60000");
    bed.image("a.img");
    let dom = domain(&bed.host, 64);
    let p = bed.plan(dom, &["a.img,raw,xvda,rw"], &[]);
    let t = Instant::now();
    let run = bed.attach(&p[0]);
    assert!(run.timed_out);
    assert_eq!(run.elapsed, TIMEOUT);
    assert_eq!(run.exit_code, None);
    assert_eq!(run.signal, Some(9));
    assert_eq!(bed.be(&p[0], "physical-device"), None);
    assert!(run
        .ended()
        .contains("still running after 40000 ms and killed"));
    // A sleep as long as the timeout hangs too.
    let cmd = command_for(&p[0].nodes, Action::Remove).unwrap();
    let run = bed
        .hotplug
        .run(&cmd, &bed.log(), Duration::from_secs(10))
        .unwrap();
    assert!(run.timed_out);
    assert_eq!(run.elapsed, Duration::from_secs(10));
    // Far below the 50 s a real wait would take, with room for a loaded machine.
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    let log = bed.log_text();
    assert!(
        log.contains("hung (RXL_SIM_FAIL: call 1 of hotplug_add)"),
        "{log}"
    );
}

#[test]
fn other_scripts_run_for_real() {
    use std::os::unix::fs::PermissionsExt;
    let bed = Bed::new();
    let script = bed.dir.path().join("fails.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"failing $1 for $XENBUS_PATH\"\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dom = domain(&bed.host, 64);
    let spec = format!("script={}", script.display());
    let p = bed.plan(dom, &[], &[&spec]);
    bed.apply(&p[0].nodes.setup_ops());
    let cmd = command_for(&p[0].nodes, Action::Add).unwrap();
    let run = loop {
        match bed.hotplug.run(&cmd, &bed.log(), TIMEOUT) {
            // Another test thread's fork may hold the fresh script open for a moment.
            Err(devices::hotplug::HotplugError::Spawn { source, .. })
                if source.raw_os_error() == Some(nix::libc::ETXTBSY) =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            r => break r.unwrap(),
        }
    };
    assert_eq!(run.exit_code, Some(3));
    let log = bed.log_text();
    assert!(
        log.contains(&format!("failing online for backend/vif/{}/0", dom.0)),
        "{log}"
    );
    // An injected failure applies to it too, without running it.
    let bed = bed.with_faults("hotplug_add");
    let run = bed.hotplug.run(&cmd, &bed.log(), TIMEOUT).unwrap();
    assert_eq!(run.exit_code, Some(1));
    assert!(bed
        .be(&p[0], "hotplug-error")
        .is_some_and(|e| e.contains("hotplug_add")));
}

#[test]
fn device_reactions_cost_nothing_elsewhere() {
    // Writes outside the device paths do not read the device state: a host with no
    // devices never gets a devices.json, and control nodes behave as before.
    let bed = Bed::new();
    let dom = running(&bed);
    bed.host
        .write(T, &format!("/local/domain/{}/data/x", dom.0), b"1")
        .unwrap();
    bed.host.rm(T, &format!("/local/domain/{}", dom.0)).unwrap();
    assert!(!bed.host.dir().join("devices.json").exists());
}

/// Run in a child process by `open_reads_rxl_sim_fail`: a vif add through
/// `SimHotplug::open`, which reads `RXL_SIM_FAIL` itself.
#[test]
#[ignore = "a child process of another test"]
fn child_hotplug_helper() {
    let Ok(backend) = std::env::var("SIM_CHILD_BACKEND") else {
        return;
    };
    let dir = PathBuf::from(std::env::var("SIM_CHILD_DIR").unwrap());
    let hp = SimHotplug::open(&dir).unwrap_or_else(|e| panic!("{e}"));
    let (dom, devid) = backend.split_once('.').unwrap();
    let cmd = devices::hotplug::vif_command(
        "/etc/xen/scripts/vif-bridge",
        DomId(dom.parse().unwrap()),
        devid.parse().unwrap(),
        None,
        Action::Add,
    );
    let run = hp.run(&cmd, &dir.join("child.log"), TIMEOUT).unwrap();
    std::process::exit(run.exit_code.unwrap_or(99));
}

#[test]
fn open_reads_rxl_sim_fail() {
    let bed = Bed::new();
    let dom = domain(&bed.host, 64);
    let p = bed.plan(dom, &[], &["", ""]);
    for d in &p {
        bed.apply(&d.nodes.setup_ops());
    }
    let child = |devid: u32, fail: &str| {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "--ignored",
                "child_hotplug_helper",
                "--test-threads=1",
            ])
            .env("SIM_CHILD_DIR", bed.host.dir())
            .env("SIM_CHILD_BACKEND", format!("{}.{devid}", dom.0))
            .env("RXL_SIM_FAIL", fail)
            .output()
            .unwrap()
    };
    let o = child(0, "hotplug_add=EIO");
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(bed
        .be(&p[0], "hotplug-error")
        .is_some_and(|e| e.contains("hotplug_add") && e.contains("EIO")));
    let o = child(1, "");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        bed.be(&p[1], "hotplug-status").as_deref(),
        Some("connected")
    );
    let o = child(1, "hotplug_add=bogus");
    assert_eq!(o.status.code(), Some(101), "a bad spec is refused");
    // libtest prints the captured panic message on stdout.
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(said.contains("`bogus` is not an errno"), "{said}");
}

fn _assert_send_sync<T: Send + Sync>() {}

#[test]
fn sim_hotplug_is_send_and_sync() {
    _assert_send_sync::<SimHotplug>();
}
