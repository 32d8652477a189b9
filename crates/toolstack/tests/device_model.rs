//! `toolstack::dm` against the simulated host's xenstore, with shell scripts standing in
//! for QEMU: a launch that fails (early exit, no confirmation) leaves nothing, and `stop`
//! signals only the process rxl recorded, once it has checked that it is a device model
//! of that domain.

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use sim::{HostConfig, SimHost};
use toolstack::dm::{self, DmLaunch, DmOptions};
use toolstack::process::ProcessId;
use xen_host::{DomId, Store, TxId};

const DOM: DomId = DomId(5);

fn options(dir: &Path, script: &str) -> DmOptions {
    DmOptions {
        binary: "/bin/sh".into(),
        // `sh -c SCRIPT dm ARGS...`: the arguments stay in the shell's command line.
        prefix_args: vec!["-c".into(), script.into(), "dm".into()],
        log_dir: dir.join("log"),
        run_dir: dir.join("run"),
        record_dir: dir.join("records"),
        confirm_timeout: Duration::from_millis(600),
        stop_timeout: Duration::from_secs(2),
    }
}

fn launch(xs: &SimHost, opts: &DmOptions) -> Result<u32, dm::DmError> {
    let args = dm::xenpv_args(DOM, "g", 64, opts);
    dm::launch(
        xs,
        opts,
        &DmLaunch {
            dom: DOM,
            name: "g",
            args,
            env: Vec::new(),
        },
    )
}

fn nothing_left(xs: &SimHost, opts: &DmOptions) {
    assert_eq!(xs.read(TxId::NONE, &dm::xs_dir(DOM)).expect("read"), None);
    assert_eq!(xs.read(TxId::NONE, &dm::pid_node(DOM)).expect("read"), None);
    assert!(!opts.record_dir.join("5").exists(), "the record is left");
}

fn alive(child: &mut Child) -> bool {
    child.try_wait().expect("try_wait").is_none()
}

#[test]
fn an_early_exit_fails_with_the_command_and_the_log() {
    let dir = tempfile::tempdir().expect("dir");
    let xs = SimHost::create(dir.path(), HostConfig::default()).expect("sim");
    let opts = options(
        dir.path(),
        "echo \"qemu: could not open disk image\" >&2; exit 1",
    );
    let e = launch(&xs, &opts).unwrap_err();
    assert!(e.message.contains("exited before it confirmed"), "{e}");
    assert!(e.command.starts_with("/bin/sh -c "), "{e}");
    assert!(e.command.contains(" dm -xen-domid 5 "), "{e}");
    assert_eq!(e.log.as_deref(), Some(opts.log_path("g").as_path()));
    assert_eq!(e.log_tail, ["qemu: could not open disk image"]);
    nothing_left(&xs, &opts);
}

#[test]
fn no_confirmation_within_the_timeout_kills_it() {
    let dir = tempfile::tempdir().expect("dir");
    let xs = SimHost::create(dir.path(), HostConfig::default()).expect("sim");
    let pids = dir.path().join("pid");
    let opts = options(
        dir.path(),
        &format!("echo $$ > {}; while :; do sleep 1; done", pids.display()),
    );
    let started = std::time::Instant::now();
    let e = launch(&xs, &opts).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(e.message.contains("within 0.6 s"), "{e}");
    let pid: u32 = std::fs::read_to_string(&pids)
        .expect("pid")
        .trim()
        .parse()
        .expect("pid");
    assert!(ProcessId::of(pid).is_none(), "the device model still runs");
    nothing_left(&xs, &opts);
}

#[test]
fn stop_signals_a_recorded_device_model_of_the_domain() {
    let dir = tempfile::tempdir().expect("dir");
    let xs = SimHost::create(dir.path(), HostConfig::default()).expect("sim");
    let opts = options(dir.path(), "");
    let child = Command::new("/bin/sh")
        .args(["-c", "while :; do sleep 1; done", "dm", "-xen-domid", "5"])
        .spawn()
        .expect("spawn");
    let id = ProcessId::of(child.id()).expect("runs");
    std::fs::create_dir_all(&opts.record_dir).expect("mkdir");
    std::fs::write(opts.record_dir.join("5"), format!("{id}\n")).expect("record");
    xs.write(
        TxId::NONE,
        &format!("{}/state", dm::xs_dir(DOM)),
        b"running",
    )
    .expect("write");
    std::fs::create_dir_all(&opts.run_dir).expect("mkdir");
    std::fs::write(opts.qmp_socket(DOM), b"").expect("socket stand-in");
    dm::stop(&xs, &opts, DOM).expect("stop");
    // stop reaped it (it is this process's child): gone from /proc.
    assert!(!id.is_alive(), "not stopped");
    drop(child);
    assert!(!opts.qmp_socket(DOM).exists());
    nothing_left(&xs, &opts);
    // Idempotent.
    dm::stop(&xs, &opts, DOM).expect("stop again");
}

#[test]
fn stop_never_signals_a_process_it_cannot_verify() {
    let dir = tempfile::tempdir().expect("dir");
    let xs = SimHost::create(dir.path(), HostConfig::default()).expect("sim");
    let opts = options(dir.path(), "");
    // A process of another domain's device model, and one that is none at all.
    let mut other = Command::new("/bin/sh")
        .args(["-c", "while :; do sleep 1; done", "dm", "-xen-domid", "6"])
        .spawn()
        .expect("spawn");
    let mut bystander = Command::new("sleep").arg("600").spawn().expect("spawn");
    std::fs::create_dir_all(&opts.record_dir).expect("mkdir");
    for victim in [&other, &bystander] {
        let id = ProcessId::of(victim.id()).expect("runs");
        std::fs::write(opts.record_dir.join("5"), format!("{id}\n")).expect("record");
        xs.write(
            TxId::NONE,
            &dm::pid_node(DOM),
            victim.id().to_string().as_bytes(),
        )
        .expect("write");
        dm::stop(&xs, &opts, DOM).expect("stop");
        nothing_left(&xs, &opts);
    }
    // A pid in xenstore alone (no record of rxl's) is not trusted either.
    xs.write(
        TxId::NONE,
        &dm::pid_node(DOM),
        bystander.id().to_string().as_bytes(),
    )
    .expect("write");
    dm::stop(&xs, &opts, DOM).expect("stop");
    nothing_left(&xs, &opts);
    assert!(
        alive(&mut other) && alive(&mut bystander),
        "an unverified process was signalled"
    );
    let _ = other.kill();
    let _ = bystander.kill();
    let _ = other.wait();
    let _ = bystander.wait();
}
