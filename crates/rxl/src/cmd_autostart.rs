//! `rxl autostart start|stop|list`: the guests that start with the host, as Xen's
//! xendomains service runs them (docs/operations.md).
//!
//! - The directory is `--dir`, else rxl.conf's `autostart_dir`, else /etc/xen/auto (where
//!   xendomains users already keep their configs or links to them). Its `*.cfg` entries
//!   are taken in byte order of their names; hidden ones (`.x.cfg`) are not. A symbolic
//!   link is followed (linking a config into the directory is how xendomains is used):
//!   what it leads to must be a regular file of at most 1 MiB, else the entry is refused
//!   with the reason, before anything reads it.
//! - `start` creates each guest with `rxl create FILE` (a child process each, one after
//!   the other, so a failure of one cannot stop the others), skips a guest whose name runs,
//!   and remembers what it started (the `autostart/` directory of rxl's state directory,
//!   one record per domain: the name and the file). It exits 1 at the end when any entry
//!   failed, naming each file and why.
//! - `stop` asks every guest it started (every domain but Domain-0 with `--all`) to power
//!   off, all at once, waits for them until the timeout, then destroys those still there,
//!   and reports each. Domains it did not start are left alone without `--all`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::json;
use toolstack::lifecycle::{self, Request, Until, Waited};
use toolstack::state::StateDir;
use xen_host::DomId;

use crate::backend::Backend;
use crate::cli::{AutostartCommand, AutostartDirArgs, AutostartStopArgs};
use crate::report::{out, print_json};

/// `rxl autostart ...`.
pub fn run(sim: Option<&Path>, cmd: &AutostartCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AutostartCommand::Start(dir) => start(sim, dir),
        AutostartCommand::Stop(args) => stop(sim, args),
        AutostartCommand::List { dir, json } => list(sim, dir, *json),
    }
}

/// The records of what `start` started.
fn started_records(host: &Backend) -> StateDir {
    StateDir::new(host.state_dir().join("autostart"))
}

/// The autostart directory: `--dir`, else rxl.conf's `autostart_dir`.
fn directory(sim: Option<&Path>, args: &AutostartDirArgs) -> anyhow::Result<PathBuf> {
    match &args.dir {
        Some(d) => Ok(d.clone()),
        None => Ok(crate::backend::read_host_conf(sim, true)?.rxl.autostart_dir),
    }
}

/// One `*.cfg` entry of the directory.
#[derive(Debug)]
struct Entry {
    path: PathBuf,
    /// Why it cannot be used, when it cannot.
    refused: Option<String>,
}

/// The directory's `*.cfg` entries in byte order of their names, each checked: what it is
/// (after a symbolic link) must be a regular file of at most 1 MiB. The default directory
/// (no `--dir`) may be missing: a host with nothing to start; a `--dir` that is missing is
/// an error.
fn entries(dir: &Path, args: &AutostartDirArgs) -> anyhow::Result<Vec<Entry>> {
    let read = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && args.dir.is_none() => {
            return Ok(Vec::new())
        }
        r => r,
    }
    .with_context(|| format!("cannot read the autostart directory {}", dir.display()))?;
    let mut names = BTreeSet::new();
    for e in read {
        let e =
            e.with_context(|| format!("cannot read the autostart directory {}", dir.display()))?;
        let name = e.file_name();
        let bytes = name.as_encoded_bytes();
        if bytes.ends_with(b".cfg") && !bytes.starts_with(b".") {
            names.insert(name);
        }
    }
    Ok(names
        .into_iter()
        .map(|name| {
            let path = dir.join(name);
            let refused = check_entry(&path).err();
            Entry { path, refused }
        })
        .collect())
}

/// Whether `path` leads to a config rxl may read: a regular file (a symbolic link is
/// followed) no larger than the config limit. Checked with `stat`, before opening, so a
/// FIFO or a device is never opened.
fn check_entry(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => format!("a symbolic link that leads nowhere: {e}"),
        _ => e.to_string(),
    })?;
    if !meta.is_file() {
        return Err("not a regular file (a config must be a file, or a link to one)".into());
    }
    let max = xlcfg::parse::MAX_CONFIG_BYTES as u64;
    if meta.len() > max {
        return Err(format!(
            "{} bytes: larger than 1 MiB ({max} bytes), the most rxl reads from a config",
            meta.len()
        ));
    }
    Ok(())
}

/// The guest name `path` configures, read as `rxl create` would (its diagnostics printed).
fn guest_name(sim: Option<&Path>, path: &Path) -> anyhow::Result<String> {
    let conf = crate::backend::read_host_conf(sim, true)?;
    Ok(crate::load::load(path, &[], true, &conf.xl.vif)?
        .config
        .name)
}

/// The domain that carries `name`, if one does.
fn running(host: &Backend, name: &str) -> anyhow::Result<Option<DomId>> {
    Ok(toolstack::domains::find_by_name(
        host.hv(),
        host.xs(),
        name,
    )?)
}

/// `rxl autostart start`.
fn start(sim: Option<&Path>, args: &AutostartDirArgs) -> anyhow::Result<ExitCode> {
    let dir = directory(sim, args)?;
    let host = Backend::open(sim)?;
    let records = started_records(&host);
    forget_stopped(&host, &records)?;
    let found = entries(&dir, args)?;
    if found.is_empty() {
        out(format_args!(
            "no *.cfg in {}: nothing to start\n",
            dir.display()
        ));
    }
    let mut failed = Vec::new();
    for entry in found {
        let file = entry.path.display().to_string();
        if let Some(why) = entry.refused {
            eprintln!("rxl: autostart: {file}: refused: {why}");
            failed.push(format!("{file}: {why}"));
            continue;
        }
        let name = match guest_name(sim, &entry.path) {
            Ok(n) => n,
            Err(e) => {
                let why = match e.downcast_ref::<crate::report::Reported>() {
                    Some(_) => "invalid config (the errors are above)".to_string(),
                    None => format!("{e:#}"),
                };
                eprintln!("rxl: autostart: {file}: {why}");
                failed.push(format!("{file}: {why}"));
                continue;
            }
        };
        if let Some(dom) = running(&host, &name)? {
            out(format_args!(
                "{name}: already running (domain {dom}), skipped\n"
            ));
            continue;
        }
        match create(sim, &entry.path) {
            Ok(dom) => {
                // What `stop` needs: the name (the monitor may restart it under a new id).
                let record = json!({"name": name, "file": file});
                if let Err(e) = records.save(dom, &record) {
                    eprintln!(
                        "rxl: warning: {name}: cannot remember that autostart started it: {e}"
                    );
                }
                out(format_args!("{name}: started (domain {dom}) from {file}\n"));
            }
            Err(why) => {
                eprintln!("rxl: autostart: {file}: {why}");
                failed.push(format!("{file}: {why}"));
            }
        }
    }
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "rxl: autostart: {} of the configs in {} failed:",
        failed.len(),
        dir.display()
    );
    for f in &failed {
        eprintln!("  {f}");
    }
    Ok(ExitCode::from(1))
}

/// Drops the records of guests that no longer run: after a host reboot the state
/// directory still holds what the last boot's start created, and `stop` must not take a
/// guest someone else created later under one of those names for one of its own.
fn forget_stopped(host: &Backend, records: &StateDir) -> anyhow::Result<()> {
    for dom in records.domains() {
        let record: Option<serde_json::Value> = records.load(dom).ok().flatten();
        let name = record.as_ref().and_then(|r| r["name"].as_str());
        let runs = match name {
            Some(n) => running(host, n)?.is_some(),
            None => false,
        };
        if !runs {
            records.remove(dom)?;
        }
    }
    Ok(())
}

/// Runs `rxl create FILE` (this binary) and returns the new domain's id, or why it failed
/// (the last line of its error output; all of it is passed on to stderr).
fn create(sim: Option<&Path>, file: &Path) -> Result<DomId, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find rxl itself: {e}"))?;
    let mut cmd = Command::new(exe);
    if let Some(dir) = sim {
        cmd.arg("--sim").arg(dir);
    }
    let output = cmd
        .arg("create")
        .arg("-q")
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run rxl create: {e}"))?;
    let errors = String::from_utf8_lossy(&output.stderr);
    eprint!("{errors}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    if output.status.success() {
        if let Some(dom) = stdout.trim().parse::<u16>().ok().map(DomId) {
            return Ok(dom);
        }
        return Err(format!("rxl create printed no domain id: {stdout:?}"));
    }
    let last = errors
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().trim_start_matches("rxl: error: ").to_string());
    Err(last.unwrap_or_else(|| format!("rxl create failed ({})", output.status)))
}

/// How long a guest that has shut down may take to disappear (its monitor applying
/// on_poweroff) before `stop` destroys it.
const GONE_GRACE: Duration = Duration::from_secs(5);

/// `rxl autostart stop`.
fn stop(sim: Option<&Path>, args: &AutostartStopArgs) -> anyhow::Result<ExitCode> {
    let host = Backend::open(sim)?;
    let records = started_records(&host);
    // (domain, name) of each guest to stop.
    let mut targets: Vec<(DomId, String)> = Vec::new();
    if args.all {
        for row in toolstack::domains::list(host.hv(), host.xs())? {
            if row.info.domid != DomId::DOM0 {
                let name = row.name.unwrap_or_default();
                targets.push((row.info.domid, name));
            }
        }
    }
    for dom in records.domains() {
        let record: Option<serde_json::Value> = records.load(dom).ok().flatten();
        let _ = records.remove(dom);
        let Some(name) = record.as_ref().and_then(|r| r["name"].as_str()) else {
            continue;
        };
        // The monitor may have restarted it under a new id: the name finds it.
        match running(&host, name)? {
            Some(now) if !targets.iter().any(|(d, _)| *d == now) => {
                targets.push((now, name.to_string()));
            }
            Some(_) => {}
            None => out(format_args!("{name}: not running\n")),
        }
    }
    for (dom, name) in &targets {
        if let Err(e) = lifecycle::request_shutdown(host.hv(), host.xs(), *dom, Request::Poweroff) {
            eprintln!("rxl: autostart: {name} (domain {dom}): cannot ask it to power off: {e}");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let left = |until: Instant| until.saturating_duration_since(Instant::now());
    let mut failed = 0;
    for (dom, name) in &targets {
        let shut = lifecycle::wait(host.hv(), host.xs(), *dom, Until::ShutDown, left(deadline));
        let why = match shut {
            Ok(Waited::Gone) => None,
            Ok(Waited::ShutDown(_)) => {
                let grace = Instant::now() + GONE_GRACE;
                match lifecycle::wait(host.hv(), host.xs(), *dom, Until::Gone, left(grace)) {
                    Ok(Waited::Gone) => None,
                    _ => Some("shut down but kept (on_poweroff = \"preserve\")".to_string()),
                }
            }
            Err(e) if e.is_gone() => None,
            Err(_) => Some(format!("did not shut down within {} s", args.timeout)),
        };
        let Some(why) = why else {
            out(format_args!("{name} (domain {dom}): shut down\n"));
            continue;
        };
        let devices = host.device_options()?;
        let state = StateDir::new(host.state_dir());
        match lifecycle::destroy(host.hv(), host.xs(), &devices, &state, *dom) {
            Ok(_) => out(format_args!("{name} (domain {dom}): {why}: destroyed\n")),
            Err(e) if e.is_gone() => out(format_args!("{name} (domain {dom}): shut down\n")),
            Err(e) => {
                eprintln!("rxl: autostart: {name} (domain {dom}): {why}; cannot destroy it: {e}");
                failed += 1;
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `rxl autostart list`.
fn list(sim: Option<&Path>, args: &AutostartDirArgs, as_json: bool) -> anyhow::Result<ExitCode> {
    let dir = directory(sim, args)?;
    let host = Backend::open(sim)?;
    let mut rows = Vec::new();
    for entry in entries(&dir, args)? {
        let name = match &entry.refused {
            Some(_) => None,
            None => guest_name(sim, &entry.path).ok(),
        };
        let dom = match &name {
            Some(n) => running(&host, n)?,
            None => None,
        };
        rows.push((entry, name, dom));
    }
    if as_json {
        let items: Vec<serde_json::Value> = rows
            .iter()
            .map(|(e, name, dom)| {
                json!({
                    "file": e.path.display().to_string(),
                    "name": name,
                    "running": dom.is_some(),
                    "domid": dom.map(|d| d.0),
                    "error": e.refused.clone().or_else(|| name.is_none().then(|| "invalid config".to_string())),
                })
            })
            .collect();
        print_json(&serde_json::Value::Array(items));
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = format!("{:<24} {:>5} {:<8} {}\n", "Name", "ID", "State", "File");
    for (e, name, dom) in &rows {
        let (state, id) = match (name, dom) {
            (None, _) => ("invalid", "-".to_string()),
            (Some(_), Some(d)) => ("running", d.to_string()),
            (Some(_), None) => ("stopped", "-".to_string()),
        };
        text.push_str(&format!(
            "{:<24} {:>5} {:<8} {}\n",
            name.as_deref().unwrap_or("-"),
            id,
            state,
            e.path.display()
        ));
    }
    out(format_args!("{text}"));
    Ok(ExitCode::SUCCESS)
}
