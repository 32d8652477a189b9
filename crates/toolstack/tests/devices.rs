//! Setting devices up and taking them down, against the simulated xenstore (whose
//! simulated blkback and netback move a new backend to InitWait and a closing one to
//! Closed) with a recording hotplug runner. Devices of whole guests, with the simulated
//! hotplug, are tested in sim_create.rs.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use devices::hotplug::{Hotplug, HotplugCommand, HotplugError, HotplugRun};
use devices::{DeviceKind, Guest};
use sim::{HostConfig, SimHost};
use toolstack::devices::{self as dev, DeviceOptions, Timeouts};
use xen_host::{DomId, Store, TxId};

const DOM: DomId = DomId(5);

/// Records every command; writes what a script writes; fails the scripts named in `fail`.
struct Recorder {
    xs: SimHost,
    seen: Mutex<Vec<(String, Vec<String>, String)>>,
    fail: Option<&'static str>,
}

impl Hotplug for Recorder {
    fn run(
        &self,
        cmd: &HotplugCommand,
        log: &Path,
        _timeout: Duration,
    ) -> Result<HotplugRun, HotplugError> {
        let script = cmd.script.to_string_lossy().into_owned();
        let rel = cmd.env_var("XENBUS_PATH").unwrap_or_default().to_owned();
        self.seen
            .lock()
            .unwrap()
            .push((script.clone(), cmd.args.clone(), rel.clone()));
        let adding = cmd.args[0] == "add" || cmd.args[0] == "online";
        // Only the add fails: a failed remove would keep the device for the next try.
        let failing = adding && self.fail.is_some_and(|f| script.ends_with(f));
        let be = format!("/local/domain/0/{rel}");
        let w = |k: &str, v: &str| {
            self.xs
                .write(TxId::NONE, &format!("{be}/{k}"), v.as_bytes())
                .expect("script write");
        };
        if adding {
            if failing {
                w("hotplug-error", "no such bridge xenbr9");
                w("hotplug-status", "error");
            } else {
                w("hotplug-status", "connected");
            }
        }
        Ok(HotplugRun {
            command: cmd.clone(),
            exit_code: Some(if failing { 1 } else { 0 }),
            signal: None,
            timed_out: false,
            log: log.to_owned(),
            elapsed: Duration::ZERO,
        })
    }

    fn name(&self) -> &'static str {
        "scripts"
    }
}

fn planned(text: &str) -> Vec<devices::PlannedDevice> {
    let parsed = xlcfg::parse::parse_str(
        "test.cfg",
        &format!("name = \"g\"\ntype = \"pvh\"\nkernel = \"/k\"\n{text}"),
    );
    assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics);
    let cfg = xlcfg::model::build(&parsed.settings, Path::new("/guests"))
        .expect("config")
        .config;
    let guest = Guest {
        domid: DOM,
        domain_type: cfg.domain_type,
    };
    devices::plan(&guest, &cfg, Path::new("/etc/xen/scripts"), &mut |_| None).expect("plan")
}

struct Bed {
    _tmp: tempfile::TempDir,
    xs: SimHost,
    recorder: Arc<Recorder>,
    opts: DeviceOptions,
}

fn bed(fail: Option<&'static str>) -> Bed {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("host");
    let xs = SimHost::create(&dir, HostConfig::default()).expect("host");
    let recorder = Arc::new(Recorder {
        xs: SimHost::open(&dir).expect("open"),
        seen: Mutex::new(Vec::new()),
        fail,
    });
    let mut opts = DeviceOptions::with(recorder.clone(), tmp.path().join("log"));
    opts.timeouts = Timeouts {
        init: Duration::from_secs(5),
        hotplug: Duration::from_secs(5),
        destroy: Duration::from_millis(300),
    };
    Bed {
        _tmp: tmp,
        xs,
        recorder,
        opts,
    }
}

fn dev_nodes(xs: &SimHost) -> Vec<String> {
    let mut out = Vec::new();
    for prefix in [
        "/local/domain/0/backend".to_owned(),
        format!("/local/domain/{}", DOM.0),
        format!("/libxl/{}", DOM.0),
    ] {
        out.extend(
            xs.xs_dump(&prefix)
                .expect("dump")
                .into_iter()
                .map(|(p, _)| p),
        );
    }
    out
}

#[test]
fn a_disk_and_a_vif_are_set_up_listed_and_removed_with_their_scripts() {
    let b = bed(None);
    let devs = planned("disk = [ 'root.img,raw,xvda,w' ]\nvif = [ 'mac=00:16:3e:01:02:03' ]\n");
    dev::setup(&b.xs, &b.opts, &devs).expect("setup");
    let seen = b.recorder.seen.lock().unwrap().clone();
    let mut adds: Vec<_> = seen
        .iter()
        .map(|(s, a, p)| (s.as_str(), a[0].as_str(), p.as_str()))
        .collect();
    adds.sort_unstable();
    assert_eq!(
        adds,
        [
            ("/etc/xen/scripts/block", "add", "backend/vbd/5/51712"),
            ("/etc/xen/scripts/vif-bridge", "online", "backend/vif/5/0"),
        ]
    );
    let listed = dev::list(&b.xs, DOM).expect("list");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].kind, DeviceKind::Vbd);
    assert_eq!(listed[0].devid, 51712);
    assert_eq!(listed[0].vdev.as_deref(), Some("xvda"));
    assert_eq!(listed[0].target.as_deref(), Some("/guests/root.img"));
    assert_eq!(listed[0].backend_state, Some(2));
    assert_eq!(listed[1].kind, DeviceKind::Vif);
    assert_eq!(listed[1].mac.as_deref(), Some("00:16:3e:01:02:03"));
    assert_eq!(listed[1].hotplug_status.as_deref(), Some("connected"));

    b.recorder.seen.lock().unwrap().clear();
    dev::remove_all(&b.xs, &b.opts, DOM).expect("remove");
    let seen = b.recorder.seen.lock().unwrap().clone();
    let mut removes: Vec<_> = seen
        .iter()
        .map(|(s, a, _)| (s.as_str(), a[0].as_str()))
        .collect();
    removes.sort_unstable();
    assert_eq!(
        removes,
        [
            ("/etc/xen/scripts/block", "remove"),
            ("/etc/xen/scripts/vif-bridge", "offline"),
        ]
    );
    let left: Vec<String> = dev_nodes(&b.xs)
        .into_iter()
        .filter(|p| p.contains("/vbd") || p.contains("/vif") || p.contains("/device"))
        .collect();
    assert_eq!(left, Vec::<String>::new());
    assert!(dev::list(&b.xs, DOM).expect("list").is_empty());
}

#[test]
fn a_failing_script_names_the_device_the_script_its_error_and_its_log() {
    let b = bed(Some("vif-bridge"));
    let devs = planned("vif = [ 'mac=00:16:3e:01:02:03,bridge=xenbr9' ]\n");
    let e = dev::setup(&b.xs, &b.opts, &devs).expect_err("fails");
    let text = e.to_string();
    assert!(text.starts_with("vif 0 (00:16:3e:01:02:03): "), "{text}");
    assert!(
        text.contains("`/etc/xen/scripts/vif-bridge online type_if=vif` exited with status 1"),
        "{text}"
    );
    assert!(
        text.contains("(hotplug-error: no such bridge xenbr9)"),
        "{text}"
    );
    assert!(text.contains("hotplug-5-vif-0.log"), "{text}");
    // What was set up goes with a forced removal.
    dev::remove_all(&b.xs, &b.opts, DOM).expect("remove");
    assert!(dev::list(&b.xs, DOM).expect("list").is_empty());
}

#[test]
fn a_backend_that_never_probes_is_named_with_its_state() {
    let b = bed(None);
    let mut opts = b.opts.clone();
    opts.timeouts.init = Duration::from_millis(200);
    let devs = planned("disk = [ 'root.img,raw,xvdb,w' ]\n");
    let stuck = SimHost::open(&b._tmp.path().join("host"))
        .and_then(|h| h.with_faults("backend_init"))
        .expect("faults");
    let start = Instant::now();
    let e = dev::setup(&stuck, &opts, &devs).expect_err("no backend");
    assert!(start.elapsed() < Duration::from_secs(5));
    let text = e.to_string();
    assert!(
        text.contains("did not reach state 2 (InitWait) within 0.2 s (state 1 (Initialising)"),
        "{text}"
    );
    assert!(text.contains("xen-blkback"), "{text}");
    assert!(b.recorder.seen.lock().unwrap().is_empty(), "no script ran");
}
