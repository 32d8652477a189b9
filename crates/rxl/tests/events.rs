//! `rxl events` and the event journal on the simulated host, and examples/keep-running.sh.

mod common;

use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{guest_dir, ok, stderr, stdout, Sim};
use serde_json::Value;

/// A config of the test guest `name` in the sim's directory, with `extra` settings.
fn guest_cfg(sim: &Sim, name: &str, extra: &str) -> PathBuf {
    let cfg = sim.dir.path().join(format!("{name}.cfg"));
    std::fs::write(
        &cfg,
        format!(
            "name = \"{name}\"\ntype = \"pvh\"\nmemory = 32\nkernel = \"{}\"\n{extra}",
            guest_dir().join("hello.elf").display()
        ),
    )
    .expect("cfg");
    cfg
}

/// `rxl events ARGS` running in the background, its lines read by a thread.
struct Follower {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Follower {
    fn start(sim: &Sim, args: &[&str]) -> Follower {
        let mut all = vec!["events"];
        all.extend_from_slice(args);
        let mut child = sim
            .command(&all, None)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rxl events");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Follower { child, lines }
    }

    /// The next line (at most 20 s).
    fn next(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(20))
            .expect("an event line within 20 s")
    }

    /// The next line as JSON.
    fn next_json(&self) -> Value {
        let line = self.next();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// Lines until one whose event is `event`, returned with those before it.
    fn until(&self, event: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let v = self.next_json();
            let done = v["event"] == event;
            seen.push(v);
            if done {
                return seen;
            }
        }
    }

    /// SIGINT, then its exit status.
    fn interrupt(mut self) -> std::process::ExitStatus {
        kill("-INT", self.child.id());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "rxl events did not stop on SIGINT"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kill(signal: &str, pid: u32) {
    let o = Command::new("kill")
        .arg(signal)
        .arg(pid.to_string())
        .output()
        .expect("kill");
    assert!(o.status.success(), "kill {signal} {pid}: {}", stderr(&o));
}

#[test]
fn a_follower_sees_a_guests_life_in_order_with_its_fields() {
    let sim = Sim::new();
    let events = Follower::start(&sim, &["--json", "--since-start"]);
    let cfg = guest_cfg(&sim, "web", "");
    let dom = stdout(&ok(sim.run(&[
        "create",
        "-e",
        cfg.to_str().expect("utf-8"),
    ])));
    let dom: u64 = dom.trim().parse().expect("domid");
    ok(sim.run(&["pause", "web"]));
    ok(sim.run(&["unpause", "web"]));
    let img = sim.dir.path().join("data.img");
    std::fs::write(&img, vec![0u8; 4096]).expect("image");
    let spec = format!("{},raw,xvdb,w", img.display());
    let run_dev = |args: &[&str]| {
        ok(sim
            .command(args, None)
            .env("RXL_SIM_DEVICE_TIMEOUT_MS", "300")
            .output()
            .expect("run rxl"))
    };
    run_dev(&["block-attach", "web", &spec]);
    run_dev(&["block-detach", "web", "xvdb"]);
    ok(sim.run(&["destroy", "web"]));

    let got = events.until("destroyed");
    let kinds: Vec<&str> = got.iter().filter_map(|v| v["event"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "created",
            "paused",
            "unpaused",
            "device_attached",
            "device_detached",
            "destroyed"
        ]
    );
    for (i, v) in got.iter().enumerate() {
        assert_eq!(v["v"], 1, "{v}");
        assert_eq!(v["seq"], i as u64 + 1, "{v}");
        assert_eq!(v["domid"], dom, "{v}");
        assert_eq!(v["name"], "web", "{v}");
        let t = v["time"].as_str().expect("time");
        // RFC 3339, UTC, milliseconds: 2026-12-07T09:38:26.123Z
        assert_eq!(t.len(), 24, "{t}");
        assert!(
            t.ends_with('Z') && &t[10..11] == "T" && &t[19..20] == ".",
            "{t}"
        );
    }
    assert_eq!(got[0]["type"], "pvh");
    assert_eq!(
        got[0]["uuid"].as_str().map(str::len),
        Some(36),
        "{}",
        got[0]
    );
    for v in &got[3..5] {
        assert_eq!(v["kind"], "vbd", "{v}");
        assert_eq!(v["devid"], 51728, "{v}");
    }
    // SIGINT ends it cleanly.
    assert_eq!(events.interrupt().code(), Some(0));
}

#[test]
fn the_monitor_reports_shutdowns_crashes_and_restarts() {
    let sim = Sim::new();
    let events = Follower::start(&sim, &["--json", "--since-start"]);
    let cfg = guest_cfg(&sim, "app", "on_crash = \"restart\"\n");
    ok(sim.run(&["create", cfg.to_str().expect("utf-8")]));
    let old = events.until("created")[0]["domid"].as_u64().expect("domid");
    sim.host()
        .guest_event(
            xen_host::DomId(u16::try_from(old).expect("u16")),
            sim::GuestEvent::Crash,
        )
        .expect("crash");
    let got = events.until("restarted");
    let kinds: Vec<&str> = got.iter().filter_map(|v| v["event"].as_str()).collect();
    assert_eq!(kinds, ["shutdown", "crashed", "destroyed", "restarted"]);
    assert_eq!(got[0]["reason"], "crash");
    assert_eq!(got[0]["domid"], old);
    assert_eq!(got[3]["old_domid"], old);
    assert_ne!(got[3]["domid"], old);
    assert_eq!(got[3]["name"], "app");
    ok(sim.run(&["shutdown", "-w", "app"]));
    let got = events.until("destroyed");
    assert_eq!(got[0]["event"], "shutdown");
    assert_eq!(got[0]["reason"], "poweroff");
}

/// A domain destroyed behind rxl's back (another tool's destroy: Xen's destroy and the
/// domain's xenstore nodes removed, as `xl destroy` does) is reported by the monitor that
/// cleans up after it, as `destroyed` with `"by": "other"`; rxl's own destroy says
/// `"by": "rxl"`.
#[test]
fn a_domain_destroyed_by_another_tool_is_reported_destroyed_by_other() {
    use xen_host::{Hypervisor as _, Store as _};
    let sim = Sim::new();
    let events = Follower::start(&sim, &["--json", "--since-start"]);
    let cfg = guest_cfg(&sim, "ext", "");
    ok(sim.run(&["create", cfg.to_str().expect("utf-8")]));
    let dom = events.until("created")[0]["domid"].as_u64().expect("domid");
    let dom = xen_host::DomId(u16::try_from(dom).expect("u16"));
    let host = sim.host();
    host.destroy(dom).expect("destroy behind rxl's back");
    host.rm(xen_host::TxId::NONE, &format!("/local/domain/{}", dom.0))
        .expect("rm");
    let got = events.until("destroyed");
    let last = got.last().expect("destroyed");
    assert_eq!(last["domid"], u64::from(dom.0), "{got:?}");
    assert_eq!(last["name"], "ext", "{got:?}");
    assert_eq!(last["by"], "other", "{got:?}");
    // The monitor cleaned up: rxl no longer knows the guest.
    let record = sim.state().join(format!("{}.json", dom.0));
    sim.wait_for("the record to go", |_| !record.exists());

    let cfg = guest_cfg(&sim, "own", "");
    ok(sim.run(&["create", cfg.to_str().expect("utf-8")]));
    ok(sim.run(&["destroy", "own"]));
    let got = events.until("destroyed");
    let last = got.last().expect("destroyed");
    assert_eq!(last["name"], "own", "{got:?}");
    assert_eq!(last["by"], "rxl", "{got:?}");
}

#[test]
fn following_goes_on_across_a_rotation() {
    let sim = Sim::new();
    let cfg = guest_cfg(&sim, "rot", "");
    ok(sim.run(&["create", "-e", cfg.to_str().expect("utf-8")]));
    // Fill the journal past its 1 MiB bound with valid lines of its own form.
    let journal = sim.state().join("events.jsonl");
    let mut text = std::fs::read_to_string(&journal).expect("journal");
    let mut seq = 1;
    while text.len() <= 1 << 20 {
        seq += 1;
        text.push_str(&format!(
            "{{\"v\":1,\"time\":\"2026-01-01T00:00:00.000Z\",\"seq\":{seq},\"event\":\"paused\",\"domid\":9,\"name\":\"filler\"}}\n"
        ));
    }
    std::fs::write(&journal, &text).expect("fill");
    let events = Follower::start(&sim, &["--json", "--since-start"]);
    // It has read to the end of the full journal.
    loop {
        if events.next_json()["seq"] == seq {
            break;
        }
    }
    ok(sim.run(&["pause", "rot"]));
    ok(sim.run(&["unpause", "rot"]));
    let got = events.until("unpaused");
    let kinds: Vec<&str> = got.iter().filter_map(|v| v["event"].as_str()).collect();
    assert_eq!(kinds, ["paused", "unpaused"]);
    assert_eq!(got[0]["seq"], seq + 1);
    assert_eq!(got[1]["seq"], seq + 2);
    // The full journal was rotated before the first of them was written.
    assert!(sim.state().join("events.jsonl.1").exists());
    assert!(std::fs::metadata(&journal).expect("journal").len() < 4096);
    // A follower started now from the start replays the rotated journal too.
    let all = stdout(&ok(sim.run(&["events", "--json", "--no-follow"])));
    assert_eq!(all.lines().count() as u64, seq + 2);
}

#[test]
fn concurrent_writers_leave_only_whole_lines() {
    let sim = Sim::new();
    let (a, b) = (guest_cfg(&sim, "a", ""), guest_cfg(&sim, "b", ""));
    ok(sim.run(&["create", "-e", a.to_str().expect("utf-8")]));
    ok(sim.run(&["create", "-e", b.to_str().expect("utf-8")]));
    let writers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            let mut cmd = sim.command(&["pause", name], None);
            let mut cmd2 = sim.command(&["unpause", name], None);
            std::thread::spawn(move || {
                for _ in 0..15 {
                    assert!(cmd.status().expect("pause").success());
                    assert!(cmd2.status().expect("unpause").success());
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    let text = std::fs::read_to_string(sim.state().join("events.jsonl")).expect("journal");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a broken line ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), 2 + 60);
    let seqs: Vec<u64> = lines.iter().filter_map(|v| v["seq"].as_u64()).collect();
    assert_eq!(seqs, (1..=62).collect::<Vec<_>>());
}

#[test]
fn the_human_form_is_one_short_line_per_event() {
    let sim = Sim::new();
    let cfg = guest_cfg(&sim, "txt", "");
    ok(sim.run(&["create", "-e", cfg.to_str().expect("utf-8")]));
    ok(sim.run(&["pause", "txt"]));
    let text = stdout(&ok(sim.run(&["events", "--no-follow"])));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains(" created txt (domid 1) type=pvh uuid="),
        "{text}"
    );
    assert!(lines[1].ends_with(" paused txt (domid 1)"), "{text}");
}

#[test]
fn an_event_that_cannot_be_written_does_not_fail_the_command() {
    let sim = Sim::new();
    let cfg = guest_cfg(&sim, "ro", "");
    ok(sim.run(&["create", "-e", cfg.to_str().expect("utf-8")]));
    // A directory where the journal should be: no event can be appended.
    let journal = sim.state().join("events.jsonl");
    std::fs::remove_file(&journal).expect("rm");
    std::fs::create_dir(&journal).expect("mkdir");
    let o = ok(sim.run_env(&["pause", "ro"], &[("RXL_LOG", "warn")]));
    assert!(
        stderr(&o).contains("cannot write the paused event"),
        "{}",
        stderr(&o)
    );
    assert!(sim.domain("ro").expect("ro")["state"]
        .as_str()
        .is_some_and(|s| s.contains('p')));
}

#[test]
fn events_on_a_closed_output_end_quietly() {
    let sim = Sim::new();
    let cfg = guest_cfg(&sim, "alpha", "");
    ok(sim.run(&["create", "-e", cfg.to_str().expect("utf-8")]));
    let mut child = sim
        .command(&["events", "--since-start"], None)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // The reader goes away; the next event's line meets EPIPE.
    drop(child.stdout.take());
    std::thread::sleep(Duration::from_millis(200));
    ok(sim.run(&["pause", "alpha"]));
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(141), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
}

/// The example script: `sh examples/keep-running.sh NAME CFG` on this sim.
fn keep_running(sim: &Sim, name: &str, cfg: &Path) -> Child {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/keep-running.sh");
    Command::new("sh")
        .arg(script)
        .arg(name)
        .arg(cfg)
        .env("RXL", env!("CARGO_BIN_EXE_rxl"))
        .env("RXL_SIM", sim.path())
        .env_remove("RXL_SIM_FAIL")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start keep-running.sh")
}

/// Whether a process of the process group `pgid` has an inotify instance open.
fn watching(pgid: u32) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    procs.flatten().any(|p| {
        let stat = std::fs::read_to_string(p.path().join("stat")).unwrap_or_default();
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            return false;
        };
        // Fields after the command: state, ppid, pgrp.
        if after.split_whitespace().nth(2) != Some(&pgid.to_string()) {
            return false;
        }
        std::fs::read_dir(p.path().join("fd")).is_ok_and(|fds| {
            fds.flatten().any(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy().contains("inotify"))
            })
        })
    })
}

fn domid_of(sim: &Sim, name: &str) -> Option<u64> {
    sim.domain(name).and_then(|d| d["domid"].as_u64())
}

#[test]
fn keep_running_recreates_a_destroyed_or_crashed_guest() {
    let sim = Sim::new();
    let cfg = guest_cfg(&sim, "kept", "on_crash = \"preserve\"\n");
    let mut script = keep_running(&sim, "kept", &cfg);
    let pgid = script.id();
    let stop = |script: &mut Child| {
        kill("-TERM", pgid.wrapping_neg());
        let _ = script.wait();
    };
    let check = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // Not running: it creates it.
        sim.wait_for("the script to create kept", |s| {
            domid_of(s, "kept").is_some()
        });
        let first = domid_of(&sim, "kept").expect("kept");
        // Its `rxl events` follows new events only: wait until it watches the journal.
        sim.wait_for("the script's rxl events to watch", |_| watching(pgid));
        ok(sim.run(&["destroy", "kept"]));
        sim.wait_for("kept to come back after destroy", |s| {
            domid_of(s, "kept").is_some_and(|d| d != first)
        });
        let second = domid_of(&sim, "kept").expect("kept");
        // A crash kept by on_crash = "preserve": cleared and created again.
        sim.host()
            .guest_event(
                xen_host::DomId(u16::try_from(second).expect("u16")),
                sim::GuestEvent::Crash,
            )
            .expect("crash");
        sim.wait_for("kept to come back after a crash", |s| {
            domid_of(s, "kept").is_some_and(|d| d != second)
                && s.domains().iter().filter(|d| d["name"] == "kept").count() == 1
        });
        // Another guest's events leave it alone.
        let other = guest_cfg(&sim, "kept2", "");
        ok(sim.run(&["create", "-e", other.to_str().expect("utf-8")]));
        ok(sim.run(&["destroy", "kept2"]));
        std::thread::sleep(Duration::from_millis(500));
        assert!(sim.domain("kept2").is_none());
    }));
    stop(&mut script);
    if let Err(p) = check {
        std::panic::resume_unwind(p);
    }
}
