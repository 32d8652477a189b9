//! What the rxl command-line tests share: the test guest, running the rxl binary as a user
//! would (from `/`, without the caller's `RXL_SIM*`), and a simulated host in a temporary
//! directory. Each test file uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A directory with the test guest (`hello.elf`) and a small ramdisk (`initrd.img`), built
/// once per test process.
pub fn guest_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rxl-test-guest-{}", std::process::id()));
        pvh::testguest::build(&dir).expect("build the test guest (needs GNU as and ld)");
        std::fs::write(dir.join("initrd.img"), b"a small ramdisk\n").expect("write ramdisk");
        dir
    })
}

/// The rxl binary with `args`, run from `/` (paths must resolve against the cfg's
/// directory) and without `RXL_SIM` or `RXL_SIM_FAIL` from the caller.
pub fn rxl_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rxl"));
    cmd.args(args)
        .current_dir("/")
        .env_remove("RXL_SIM")
        .env_remove("RXL_SIM_FAIL");
    cmd
}

/// Runs rxl with `args` (stdin closed).
pub fn rxl(args: &[&str]) -> Output {
    rxl_env(args, &[])
}

/// Runs rxl with `args` and the environment variables `env`.
pub fn rxl_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    rxl_command(args)
        .envs(env.iter().copied())
        .output()
        .expect("run rxl")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", stdout(o), stderr(o)))
}

/// `o`, after asserting that rxl succeeded.
pub fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "rxl failed ({}): {}{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    o
}

/// Writes the restart mark of `name` under `state` as a monitor would, naming the process
/// `pid` by its pid and start time (field 22 of `/proc/PID/stat`, read here on its own).
pub fn plant_restart_mark(state: &Path, name: &str, pid: u32) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let start = stat[stat.rfind(')').expect(")") + 1..]
        .split_whitespace()
        .nth(19)
        .expect("start time")
        .to_owned();
    let marks = state.join("restarting");
    std::fs::create_dir_all(&marks).expect("mkdir");
    let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    std::fs::write(marks.join(hex), format!("{pid} {start}\n")).expect("mark");
}

/// Whether `pid` still runs (a zombie does not).
pub fn runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.starts_with(" Z"))
    })
}

/// A simulated host in a temporary directory; the domains left on it are destroyed and its
/// host monitor stopped when it goes, so that no monitor outlives the test.
pub struct Sim {
    pub dir: tempfile::TempDir,
}

impl Sim {
    pub fn new() -> Sim {
        Sim {
            dir: tempfile::tempdir().expect("tmp"),
        }
    }

    pub fn path(&self) -> &str {
        self.dir.path().to_str().expect("utf-8 temp path")
    }

    /// rxl's state directory on this host.
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("rxl")
    }

    /// The simulated host itself, to look at or change behind rxl's back.
    pub fn host(&self) -> sim::SimHost {
        sim::SimHost::open(self.dir.path()).expect("open sim")
    }

    /// `rxl --sim DIR ARGS`, with `RXL_SIM_FAIL` = `fail` when given.
    pub fn command(&self, args: &[&str], fail: Option<&str>) -> Command {
        let mut all = vec!["--sim", self.path()];
        all.extend_from_slice(args);
        let mut cmd = rxl_command(&all);
        if let Some(spec) = fail {
            cmd.env("RXL_SIM_FAIL", spec);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(args, None);
        cmd.envs(env.iter().copied());
        cmd.output().expect("run rxl")
    }

    /// `rxl list --json`.
    pub fn domains(&self) -> Vec<Value> {
        match json(&ok(self.run(&["list", "--json"]))) {
            Value::Array(items) => items,
            other => panic!("list --json is not an array: {other}"),
        }
    }

    pub fn domain(&self, name: &str) -> Option<Value> {
        self.domains().into_iter().find(|d| d["name"] == name)
    }

    /// The pid of the running host monitor, from its pid file: `None` when there is none
    /// or its process is gone (a zombie, or a pid now used by another process).
    pub fn monitord_pid(&self) -> Option<u32> {
        let text = std::fs::read(self.state().join("monitord.pid")).ok()?;
        let v: Value = serde_json::from_slice(&text).ok()?;
        let pid = v["pid"].as_u64().and_then(|p| u32::try_from(p).ok())?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let alive = fields.first().is_some_and(|s| *s != "Z" && *s != "X")
            && fields.get(19).and_then(|t| t.parse::<u64>().ok()) == v["start_time"].as_u64();
        alive.then_some(pid)
    }

    /// The running processes whose command line holds one of `words` and this host's
    /// directory (its monitors: `monitord`, or `__monitor` of an older rxl).
    pub fn processes(&self, words: &[&str]) -> Vec<u32> {
        let mut pids = Vec::new();
        for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            let named = words.iter().any(|w| args.contains(&w.as_bytes()));
            if named && args.contains(&self.path().as_bytes()) && runs(pid) {
                pids.push(pid);
            }
        }
        pids
    }

    /// Waits (at most 20 s) until `cond` holds.
    pub fn wait_for(&self, what: &str, mut cond: impl FnMut(&Sim) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cond(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Ok(Value::Array(items)) =
            serde_json::from_slice::<Value>(&self.run(&["list", "--json"]).stdout)
        {
            for d in items {
                if d["domid"] != 0 {
                    let id = d["domid"].to_string();
                    let _ = self.run(&["destroy", &id]);
                }
            }
        }
        if let Some(pid) = self.monitord_pid() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid")),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}
