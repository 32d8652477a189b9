//! Exercise a live xenstored through `XsClient` and check what it answers.
//!
//! `cargo run -p xenstore --example xs-smoke [SOCKET-OR-DEVICE]`; without an argument
//! it connects the way `XsClient::open` does. Works below `/tool/rxl-smoke-PID`, removed at
//! the end. When Xen's C tools (`xenstore-read`, `xenstore-write`) are on `PATH`, it also
//! checks that they and this client see each other's writes and watches. Prints one
//! `ok   NAME: ...` line per check (`skip NAME: ...` for the C-tool checks without the
//! tools) and exits non-zero at the first failing one, with a `FAIL NAME: ...` line.
//! The end-to-end rig runs it over both transports (`cargo xtask e2e`, step `xenstore`).

use std::process::{Command, ExitCode};
use std::time::Duration;

use xen_host::{Access, DomId, Perm, Store, StoreOp, TxId, WatchEvent};
use xenstore::XsClient;

type Check = Result<String, String>;

struct Smoke<'a> {
    xs: &'a XsClient,
    base: String,
}

/// `Err` with the operation's error as text.
fn op<T>(r: xen_host::Result<T>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

impl Smoke<'_> {
    fn path(&self, leaf: &str) -> String {
        format!("{}/{leaf}", self.base)
    }

    fn read(&self, tx: TxId, leaf: &str) -> Result<Option<String>, String> {
        Ok(op(self.xs.read(tx, &self.path(leaf)))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    fn expect_value(&self, leaf: &str, want: &str) -> Result<(), String> {
        match self.read(TxId::NONE, leaf)? {
            Some(v) if v == want => Ok(()),
            other => Err(format!(
                "{} is {other:?}, expected {want:?}",
                self.path(leaf)
            )),
        }
    }

    /// The next watch event within `secs` seconds.
    fn event(&self, secs: u64) -> Result<Option<WatchEvent>, String> {
        op(self.xs.next_watch_event(Some(Duration::from_secs(secs))))
    }

    /// Waits for an event on `path` with `token`, skipping others (a watch may fire for
    /// each node of a write); none within five seconds is a failure.
    fn event_for(&self, path: &str, token: &str) -> Check {
        for _ in 0..16 {
            match self.event(5)? {
                Some(e) if e.path == path && e.token == token => {
                    return Ok(format!("{} (token {})", e.path, e.token));
                }
                Some(_) => continue,
                None => break,
            }
        }
        Err(format!("no event for {path} (token {token}) within 5 s"))
    }

    fn write_read(&self) -> Check {
        op(self.xs.write(TxId::NONE, &self.path("key"), b"value"))?;
        self.expect_value("key", "value")?;
        if self.read(TxId::NONE, "missing")?.is_some() {
            return Err("a node never written reads as present".into());
        }
        Ok(format!("{} = value; missing node absent", self.path("key")))
    }

    fn directory(&self) -> Check {
        op(self.xs.mkdir(TxId::NONE, &self.path("dir")))?;
        let mut d = op(self.xs.directory(TxId::NONE, &self.base))?
            .ok_or_else(|| format!("{} has no directory", self.base))?;
        d.sort();
        if d != ["dir", "key"] {
            return Err(format!("children {d:?}, expected [\"dir\", \"key\"]"));
        }
        Ok(format!("{d:?}"))
    }

    fn perms(&self) -> Check {
        let key = self.path("key");
        let want = [
            Perm {
                domid: DomId(0),
                access: Access::None,
            },
            Perm {
                domid: DomId(1),
                access: Access::Read,
            },
        ];
        op(self.xs.set_perms(TxId::NONE, &key, &want))?;
        let got = op(self.xs.get_perms(TxId::NONE, &key))?
            .ok_or_else(|| format!("{key} has no permissions"))?;
        if got != want {
            return Err(format!("read back {got:?}, set {want:?}"));
        }
        Ok("n0 r1 read back".into())
    }

    fn transaction(&self) -> Check {
        let tx = op(self.xs.transaction_start())?;
        op(self.xs.write(tx, &self.path("tx"), b"1"))?;
        if self.read(TxId::NONE, "tx")?.is_some() {
            return Err("a write inside an open transaction is visible outside it".into());
        }
        if !op(self.xs.transaction_end(tx, true))? {
            return Err("a commit nothing else touched conflicted".into());
        }
        self.expect_value("tx", "1")?;
        // An aborted transaction leaves nothing.
        let tx = op(self.xs.transaction_start())?;
        op(self.xs.write(tx, &self.path("tx"), b"aborted"))?;
        op(self.xs.transaction_end(tx, false))?;
        self.expect_value("tx", "1")?;
        Ok("commit visible after the end only; abort left the node as it was".into())
    }

    /// `apply_ops` in a transaction: 40 writes, a mkdir and a permission change sent in
    /// windows of requests whose replies are read afterwards; everything reads back.
    fn pipeline(&self) -> Check {
        let paths: Vec<String> = (0..40).map(|i| self.path(&format!("batch/n{i}"))).collect();
        let values: Vec<String> = (0..40).map(|i| format!("v{i}")).collect();
        let dir = self.path("batch/dir");
        let perms = [Perm {
            domid: DomId(0),
            access: Access::None,
        }];
        let mut ops: Vec<StoreOp<'_>> = paths
            .iter()
            .zip(&values)
            .map(|(p, v)| StoreOp::Write(p, v.as_bytes()))
            .collect();
        ops.push(StoreOp::Mkdir(&dir));
        ops.push(StoreOp::SetPerms(&dir, &perms));
        let tx = op(self.xs.transaction_start())?;
        if let Err(e) = self.xs.apply_ops(tx, &ops) {
            let _ = self.xs.transaction_end(tx, false);
            return Err(e.to_string());
        }
        if !op(self.xs.transaction_end(tx, true))? {
            return Err("the pipelined transaction conflicted".into());
        }
        for (i, v) in values.iter().enumerate() {
            self.expect_value(&format!("batch/n{i}"), v)?;
        }
        let got = op(self.xs.get_perms(TxId::NONE, &dir))?;
        if got.as_deref() != Some(&perms[..]) {
            return Err(format!("{dir} permissions {got:?}, set {perms:?}"));
        }
        Ok(format!(
            "{} requests in one transaction read back",
            ops.len()
        ))
    }

    fn conflict(&self) -> Check {
        let tx = op(self.xs.transaction_start())?;
        self.read(tx, "key")?;
        op(self.xs.write(TxId::NONE, &self.path("key"), b"outside"))?;
        op(self.xs.write(tx, &self.path("key"), b"inside"))?;
        if op(self.xs.transaction_end(tx, true))? {
            return Err("a commit over a node changed outside the transaction succeeded".into());
        }
        self.expect_value("key", "outside")?;
        // The retry helper runs the body again and the second commit wins.
        let mut tries = 0;
        op(xen_host::transaction(self.xs, |tx| {
            tries += 1;
            self.xs.read(tx, &self.path("key"))?;
            if tries == 1 {
                self.xs.write(TxId::NONE, &self.path("key"), b"meanwhile")?;
            }
            self.xs.write(tx, &self.path("key"), b"retried")
        }))?;
        if tries != 2 {
            return Err(format!("the body ran {tries} times, expected 2"));
        }
        self.expect_value("key", "retried")?;
        Ok("EAGAIN on commit, outside write kept; retried body committed on try 2".into())
    }

    fn watch(&self) -> Check {
        op(self.xs.watch(&self.base, "smoke"))?;
        let first = self.event_for(&self.base, "smoke")?;
        op(self.xs.write(TxId::NONE, &self.path("key"), b"changed"))?;
        let change = self.event_for(&self.path("key"), "smoke")?;
        op(self.xs.unwatch(&self.base, "smoke"))?;
        op(self.xs.write(TxId::NONE, &self.path("key"), b"unwatched"))?;
        if let Some(e) = self.event(1)? {
            return Err(format!("an event after unwatch: {e:?}"));
        }
        Ok(format!(
            "initial {first}; change {change}; none after unwatch"
        ))
    }

    /// Xen's C tools see this client's writes and the other way round.
    fn c_tools(&self) -> Option<Check> {
        let found = Command::new("xenstore-read").arg("/").output().is_ok();
        if !found {
            return None;
        }
        Some(self.c_tools_inner())
    }

    fn c_tools_inner(&self) -> Check {
        let run = |args: &[&str]| -> Result<String, String> {
            let out = Command::new(args[0])
                .args(&args[1..])
                .output()
                .map_err(|e| format!("{}: {e}", args[0]))?;
            if !out.status.success() {
                return Err(format!(
                    "{} failed ({}): {}",
                    args.join(" "),
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
        };
        op(self.xs.write(TxId::NONE, &self.path("ours"), b"from rxl"))?;
        let seen = run(&["xenstore-read", &self.path("ours")])?;
        if seen != "from rxl" {
            return Err(format!("xenstore-read saw {seen:?}, we wrote \"from rxl\""));
        }
        op(self.xs.watch(&self.path("theirs"), "c"))?;
        self.event_for(&self.path("theirs"), "c")?;
        run(&["xenstore-write", &self.path("theirs"), "from C"])?;
        let ev = self.event_for(&self.path("theirs"), "c")?;
        op(self.xs.unwatch(&self.path("theirs"), "c"))?;
        self.expect_value("theirs", "from C")?;
        Ok(format!(
            "xenstore-read saw our write; xenstore-write fired {ev} and we read it"
        ))
    }

    fn domain(&self) -> Check {
        let path = op(self.xs.get_domain_path(DomId::DOM0))?;
        if path != "/local/domain/0" {
            return Err(format!("dom0's path is {path:?}"));
        }
        if !op(self.xs.is_domain_introduced(DomId::DOM0))? {
            return Err("dom0 is not introduced".into());
        }
        Ok(format!("{path}, introduced"))
    }

    fn rm(&self) -> Check {
        op(self.xs.rm(TxId::NONE, &self.base))?;
        if op(self.xs.directory(TxId::NONE, &self.base))?.is_some() {
            return Err(format!("{} still exists", self.base));
        }
        // Removing what is gone is not an error.
        op(self.xs.rm(TxId::NONE, &self.base))?;
        Ok(format!("{} gone", self.base))
    }
}

fn run(xs: &XsClient) -> Result<(), String> {
    let s = Smoke {
        xs,
        base: format!("/tool/rxl-smoke-{}", std::process::id()),
    };
    let checks: [(&str, &dyn Fn() -> Check); 9] = [
        ("write-read", &|| s.write_read()),
        ("directory", &|| s.directory()),
        ("perms", &|| s.perms()),
        ("transaction", &|| s.transaction()),
        ("pipeline", &|| s.pipeline()),
        ("conflict", &|| s.conflict()),
        ("watch", &|| s.watch()),
        ("domain", &|| s.domain()),
        ("c-tools", &|| {
            s.c_tools()
                .unwrap_or_else(|| Err("skip: xenstore-read is not on PATH".into()))
        }),
    ];
    let mut outcome = Ok(());
    for (name, check) in checks {
        match check() {
            Ok(s) => println!("ok   {name}: {s}"),
            Err(e) if e.starts_with("skip: ") => println!("skip {name}: {}", &e[6..]),
            Err(e) => {
                outcome = Err(format!("FAIL {name}: {e}"));
                break;
            }
        }
    }
    // Clean up even after a failure.
    match s.rm() {
        Ok(m) => println!("ok   rm: {m}"),
        Err(e) if outcome.is_ok() => outcome = Err(format!("FAIL rm: {e}")),
        Err(_) => {}
    }
    outcome
}

fn main() -> ExitCode {
    let xs = match std::env::args_os().nth(1) {
        Some(path) => XsClient::open_path(path),
        None => XsClient::open(),
    };
    let xs = match xs {
        Ok(xs) => xs,
        Err(e) => {
            eprintln!("xs-smoke: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "connected to {} ({:?})",
        xs.path().display(),
        xs.transport()
    );
    match run(&xs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("{e}");
            ExitCode::FAILURE
        }
    }
}
