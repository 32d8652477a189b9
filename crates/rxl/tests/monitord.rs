//! The host monitor (`rxl monitord`) on the simulated host: one process applies every
//! domain's on_* actions, adopts what happened while it was down, runs once per host, hands
//! over to a replacement without losing a shutdown, and leaves `create -e` / `-F` domains
//! alone.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{guest_dir, ok, runs, stderr, stdout, Sim};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use sim::GuestEvent;
use xen_host::DomId;

fn cfg(name: &str, extra: &str) -> PathBuf {
    let body = format!(
        "name = \"{name}\"\ntype = \"pvh\"\nmemory = 32\nvcpus = 1\nkernel = \"hello.elf\"\n\
         ramdisk = \"initrd.img\"\n{extra}"
    );
    let p = guest_dir().join(format!("monitord-{name}.cfg"));
    std::fs::write(&p, body).expect("write cfg");
    p
}

fn create(sim: &Sim, name: &str, extra: &str, flags: &[&str]) -> u16 {
    let path = cfg(name, extra);
    let mut args = vec!["create", "-q"];
    args.extend_from_slice(flags);
    args.push(path.to_str().expect("utf-8"));
    let o = ok(sim.run(&args));
    stdout(&o).trim().parse().expect("domid")
}

fn domid(sim: &Sim, name: &str) -> Option<u64> {
    sim.domain(name).and_then(|d| d["domid"].as_u64())
}

fn event(sim: &Sim, dom: u16, e: GuestEvent) {
    sim.host().guest_event(DomId(dom), e).expect("guest event");
}

/// The state letters of `name` (`r-----`, `---s--`, ...), if it is listed.
fn state(sim: &Sim, name: &str) -> Option<String> {
    sim.domain(name)
        .and_then(|d| d["state"].as_str().map(str::to_string))
}

fn record(sim: &Sim, dom: u64) -> Value {
    let text = std::fs::read(sim.state().join(format!("{dom}.json"))).expect("record");
    serde_json::from_slice(&text).expect("record json")
}

fn signal(pid: u32, sig: Signal) {
    kill(Pid::from_raw(i32::try_from(pid).expect("pid")), sig).expect("kill");
}

/// Stops `pid` (SIGSTOP) at a moment it holds no lock of the simulated host (every
/// simulated operation flocks DIR/lock; a process stopped inside one would block this test's
/// own operations for good): stop it, wait until it is stopped, and let it go on again when
/// the lock is taken.
fn stop_outside_the_sim_lock(sim: &Sim, pid: u32) {
    use nix::fcntl::{Flock, FlockArg};
    let path = Path::new(sim.path()).join("lock");
    for _ in 0..1000 {
        signal(pid, Signal::SIGSTOP);
        let deadline = Instant::now() + Duration::from_secs(5);
        while proc_state(pid) != Some('T') {
            assert!(Instant::now() < deadline, "pid {pid} does not stop");
            std::thread::sleep(Duration::from_millis(1));
        }
        let file = std::fs::File::open(&path).expect("the simulated host's lock file");
        if Flock::lock(file, FlockArg::LockExclusiveNonblock).is_ok() {
            return;
        }
        signal(pid, Signal::SIGCONT);
        std::thread::sleep(Duration::from_millis(3));
    }
    panic!("pid {pid} always holds the simulated host's lock");
}

/// The state letter of `pid` in /proc/PID/stat (`R`, `S`, `T`, ...).
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

fn wait_gone(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while runs(pid) {
        assert!(Instant::now() < deadline, "pid {pid} still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn log(sim: &Sim) -> String {
    std::fs::read_to_string(sim.state().join("log/monitord.log")).unwrap_or_default()
}

/// A domain `name` restarted from `old` (a new id, fully built and running).
fn restarted(sim: &Sim, name: &str, old: u16) -> bool {
    sim.domain(name).is_some_and(|d| {
        d["domid"].as_u64().is_some_and(|id| id != u64::from(old)) && d["state"] != "--p---"
    })
}

#[test]
fn one_process_applies_the_actions_of_every_domain() {
    let sim = Sim::new();
    let reb = create(&sim, "reb", "", &[]);
    let off = create(&sim, "off", "", &[]);
    let keep = create(&sim, "keep", "on_crash = \"preserve\"\n", &[]);
    let phoenix = create(&sim, "phoenix", "on_crash = \"restart\"\n", &[]);
    let dog = create(&sim, "dog", "on_watchdog = \"restart\"\n", &[]);

    // Five creates, one monitor, and no per-domain process.
    let pid = sim.monitord_pid().expect("a host monitor runs");
    assert_eq!(sim.processes(&["monitord"]), vec![pid]);
    assert_eq!(sim.processes(&["__monitor"]), Vec::<u32>::new());
    let o = ok(sim.run(&["monitord", "status", "--json"]));
    let st: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(st["running"], true);
    assert_eq!(st["pid"], pid);
    assert_eq!(st["domains"], 5, "{st}");
    assert_eq!(st["version"], env!("CARGO_PKG_VERSION"));

    event(&sim, reb, GuestEvent::Reboot);
    event(&sim, off, GuestEvent::Poweroff);
    event(&sim, keep, GuestEvent::Crash);
    event(&sim, phoenix, GuestEvent::Crash);
    event(&sim, dog, GuestEvent::Watchdog);
    sim.wait_for("every action", |s| {
        restarted(s, "reb", reb)
            && s.domain("off").is_none()
            && state(s, "keep").is_some_and(|st| &st[4..5] == "c")
            && restarted(s, "phoenix", phoenix)
            && restarted(s, "dog", dog)
    });
    assert_eq!(domid(&sim, "keep"), Some(u64::from(keep)));
    for name in ["reb", "phoenix", "dog"] {
        let id = domid(&sim, name).expect("listed");
        assert_eq!(record(&sim, id)["restarts"], 1, "{name}");
    }
    // The same process did it all.
    assert_eq!(sim.processes(&["monitord"]), vec![pid]);
    let log = log(&sim);
    assert!(log.contains("reb restarted as domain"), "{log}");
    assert!(log.contains("(keep) shut down (crash): preserve"), "{log}");

    // A restarted guest is watched as before.
    let reb2 = u16::try_from(domid(&sim, "reb").expect("reb")).expect("id");
    event(&sim, reb2, GuestEvent::Poweroff);
    sim.wait_for("reb gone", |s| s.domain("reb").is_none());
}

#[test]
fn a_shutdown_while_no_monitor_ran_is_applied_when_one_starts() {
    let sim = Sim::new();
    let off = create(&sim, "off", "", &[]);
    let reb = create(&sim, "reb", "", &[]);
    let pid = sim.monitord_pid().expect("a host monitor runs");
    signal(pid, Signal::SIGKILL);
    wait_gone(pid);

    event(&sim, off, GuestEvent::Poweroff);
    event(&sim, reb, GuestEvent::Reboot);
    std::thread::sleep(Duration::from_millis(300));
    // Nobody acted: Xen keeps them shut down.
    assert_eq!(
        state(&sim, "off").map(|s| s[3..4].to_string()),
        Some("s".into())
    );
    assert_eq!(domid(&sim, "reb"), Some(u64::from(reb)));
    let o = sim.run(&["monitord", "status"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));

    let o = ok(sim.run(&["monitord"]));
    assert!(
        stdout(&o).contains("rxl monitord started (pid"),
        "{}",
        stdout(&o)
    );
    sim.wait_for("the adopted shutdowns", |s| {
        s.domain("off").is_none() && restarted(s, "reb", reb)
    });
    let new = sim.monitord_pid().expect("runs");
    assert_ne!(new, pid);
}

#[test]
fn one_monitor_per_host() {
    let sim = Sim::new();
    create(&sim, "solo", "", &[]);
    let pid = sim.monitord_pid().expect("a host monitor runs");

    // In the foreground, a second one refuses and names the holder.
    let o = sim.run(&["monitord", "--foreground"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("another rxl monitord (pid {pid}) holds")),
        "{}",
        stderr(&o)
    );
    // Started in the background, it has nothing to do.
    let o = ok(sim.run(&["monitord"]));
    assert_eq!(
        stdout(&o),
        format!("rxl monitord already runs (pid {pid})\n")
    );
    // Another create does not start another.
    create(&sim, "duo", "", &[]);
    assert_eq!(sim.processes(&["monitord"]), vec![pid]);
    let o = ok(sim.run(&["monitord", "status"]));
    assert_eq!(
        stdout(&o),
        format!(
            "rxl monitord runs: pid {pid}, rxl {}, watching 2 domains\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn replace_takes_over_without_losing_a_shutdown() {
    let sim = Sim::new();
    let off = create(&sim, "off", "", &[]);
    let reb = create(&sim, "reb", "", &[]);
    let old = sim.monitord_pid().expect("a host monitor runs");

    // The old monitor is stopped while the guests shut down, and is asked to go while it
    // has not seen them: whichever of the two sees them acts, once.
    stop_outside_the_sim_lock(&sim, old);
    event(&sim, off, GuestEvent::Poweroff);
    event(&sim, reb, GuestEvent::Reboot);
    let replace = sim
        .command(&["monitord", "--replace"], None)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn --replace");
    std::thread::sleep(Duration::from_millis(300));
    signal(old, Signal::SIGCONT);
    let o = replace.wait_with_output().expect("--replace");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("rxl monitord started (pid"),
        "{}",
        stdout(&o)
    );
    wait_gone(old);
    let new = sim.monitord_pid().expect("the new monitor runs");
    assert_ne!(new, old);

    sim.wait_for("both shutdowns handled", |s| {
        s.domain("off").is_none() && restarted(s, "reb", reb)
    });
    let id = domid(&sim, "reb").expect("reb");
    assert_eq!(record(&sim, id)["restarts"], 1);
    assert_eq!(
        sim.domains().iter().filter(|d| d["name"] == "reb").count(),
        1
    );

    // The new one handles what comes next.
    event(&sim, u16::try_from(id).expect("id"), GuestEvent::Poweroff);
    sim.wait_for("reb gone", |s| s.domain("reb").is_none());
    assert_eq!(sim.processes(&["monitord"]), vec![new]);
}

#[test]
fn domains_of_create_e_and_create_f_are_left_alone() {
    let sim = Sim::new();
    create(&sim, "watched", "", &[]);
    assert!(sim.monitord_pid().is_some());

    let loner = create(&sim, "loner", "", &["-e"]);
    assert_eq!(record(&sim, u64::from(loner))["monitored_by"], "nobody");

    // -F: this process monitors its domain; killed, nobody does.
    let path = cfg("fg", "");
    let mut fg = sim
        .command(&["create", "-F", path.to_str().expect("utf-8")], None)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("create -F");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(fg.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("domid line");
    let fg_dom: u16 = line.trim().parse().expect("domid");
    assert_eq!(
        record(&sim, u64::from(fg_dom))["monitored_by"],
        "foreground"
    );
    fg.kill().expect("kill create -F");
    fg.wait().expect("reap");

    event(&sim, loner, GuestEvent::Poweroff);
    event(&sim, fg_dom, GuestEvent::Poweroff);
    // A domain the monitor does handle, shut down last: once it is gone, the monitor has
    // scanned after the other two shut down.
    let watched = u16::try_from(domid(&sim, "watched").expect("watched")).expect("id");
    event(&sim, watched, GuestEvent::Poweroff);
    sim.wait_for("watched gone", |s| s.domain("watched").is_none());
    std::thread::sleep(Duration::from_millis(200));
    for name in ["loner", "fg"] {
        let st = state(&sim, name).unwrap_or_else(|| panic!("{name} is still there"));
        assert_eq!(&st[3..4], "s", "{name}: {st}");
    }
    let o = ok(sim.run(&["monitord", "status", "--json"]));
    let st: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(st["domains"], 0, "{st}");
}

#[test]
fn a_record_without_the_monitor_field_is_the_host_monitors() {
    let sim = Sim::new();
    let old = create(&sim, "old", "", &[]);
    // A record written by an rxl that had no such field.
    let path = sim.state().join(format!("{old}.json"));
    let mut rec = record(&sim, u64::from(old));
    rec.as_object_mut().expect("object").remove("monitored_by");
    std::fs::write(&path, serde_json::to_vec(&rec).expect("json")).expect("write");
    event(&sim, old, GuestEvent::Poweroff);
    sim.wait_for("old gone", |s| s.domain("old").is_none());
}

#[test]
fn the_monitor_stops_on_sigterm_and_leaves_no_pid_file() {
    let sim = Sim::new();
    create(&sim, "termed", "", &[]);
    let pid = sim.monitord_pid().expect("runs");
    signal(pid, Signal::SIGTERM);
    wait_gone(pid);
    assert!(!Path::new(&sim.state().join("monitord.pid")).exists());
    let o = sim.run(&["monitord", "status"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "no rxl monitord runs\n");
    // The next create starts another.
    create(&sim, "again", "", &[]);
    assert!(sim.monitord_pid().is_some_and(|p| p != pid));
}

#[test]
fn a_domain_an_older_rxls_monitor_still_watches_is_left_to_it() {
    let sim = Sim::new();
    let old = create(&sim, "legacy", "", &[]);
    // What an older rxl started per guest: `rxl --sim DIR __monitor DOMID`.
    let mut legacy = std::process::Command::new("sh")
        .args([
            "-c",
            "sleep 60; true",
            "rxl",
            "--sim",
            sim.path(),
            "__monitor",
        ])
        .arg(old.to_string())
        .spawn()
        .expect("sh");
    event(&sim, old, GuestEvent::Poweroff);
    // A domain the host monitor handles, shut down last, as a sync point.
    let sync = create(&sim, "sync", "", &[]);
    event(&sim, sync, GuestEvent::Poweroff);
    sim.wait_for("sync gone", |s| s.domain("sync").is_none());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        state(&sim, "legacy").map(|s| s[3..4].to_string()),
        Some("s".into())
    );
    // Once that process is gone, the next scan applies the action.
    legacy.kill().expect("kill");
    legacy.wait().expect("reap");
    create(&sim, "later", "", &[]);
    sim.wait_for("legacy gone", |s| s.domain("legacy").is_none());
}

#[test]
fn a_scan_that_fails_transiently_is_tried_again() {
    let sim = Sim::new();
    let off = create(&sim, "off", "", &[]);
    let pid = sim.monitord_pid().expect("a host monitor runs");
    signal(pid, Signal::SIGKILL);
    wait_gone(pid);
    event(&sim, off, GuestEvent::Poweroff);
    // The new monitor's first two domain lists fail with EAGAIN: its first scan, and the
    // one after the events its watches fire when set. No other event comes.
    let path = cfg("starter", "");
    ok(sim.run_env(
        &["create", "-q", "-p", path.to_str().expect("utf-8")],
        &[(
            "RXL_SIM_FAIL_MONITOR",
            "getdomaininfolist:1=EAGAIN,getdomaininfolist:2=EAGAIN",
        )],
    ));
    sim.wait_for("off gone", |s| s.domain("off").is_none());
    assert!(log(&sim).contains("retrying"), "{}", log(&sim));
}

#[test]
fn a_record_whose_id_now_names_another_domain_is_dropped_not_acted_on() {
    let sim = Sim::new();
    let dom = create(&sim, "swapped", "on_poweroff = \"restart\"\n", &[]);
    let pid = sim.monitord_pid().expect("a host monitor runs");
    // The record says another uuid than the live domain's: as if the recorded domain had
    // gone and Xen had given its id to a domain rxl knows nothing of.
    let path = sim.state().join(format!("{dom}.json"));
    let mut rec = record(&sim, u64::from(dom));
    let live_uuid = rec["config"]["uuid"].as_str().expect("uuid").to_string();
    let other = "00000000-0000-4000-8000-00000000abcd";
    assert_ne!(live_uuid, other);
    rec["config"]["uuid"] = Value::from(other);
    std::fs::write(&path, serde_json::to_vec(&rec).expect("json")).expect("write record");

    event(&sim, dom, GuestEvent::Poweroff);
    sim.wait_for("the stale record dropped", |_| !path.exists());
    // The live domain was left as it is: shut down, same id, not restarted.
    assert_eq!(domid(&sim, "swapped"), Some(u64::from(dom)));
    assert!(
        state(&sim, "swapped").is_some_and(|st| &st[3..4] == "s"),
        "{:?}",
        state(&sim, "swapped")
    );
    let log = log(&sim);
    assert!(
        log.contains(&format!(
            "domain {dom} is not the recorded \"swapped\" (uuid {other}, found {live_uuid})"
        )),
        "{log}"
    );
    assert!(!log.contains("swapped restarted"), "{log}");
    assert_eq!(sim.monitord_pid(), Some(pid));
}
