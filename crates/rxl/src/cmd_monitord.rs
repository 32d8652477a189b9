//! `rxl monitord`: the host monitor ([`toolstack::hostmon`]), its start in the background
//! (by hand or by `rxl create`), its take-over (`--replace`) and `status`.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use nix::sys::signal::{SigSet, Signal};
use serde_json::json;
use toolstack::dm_watch::{self, DmWatcher};
use toolstack::hostmon::{self, Claim, HostMonitor};
use toolstack::monitor::MonitoredBy;
use toolstack::LaunchError;
use xen_host::DomId;
use xlcfg::model::DomainConfig;

use crate::backend::Backend;
use crate::cli::{MonitordArgs, MonitordCommand};
use crate::report::{out, print_json};

/// The line a host monitor prints on stdout once it runs and watches; the pid follows.
const READY: &str = "rxl monitord: running as pid ";
/// The line a host monitor that found another one prints on stdout; the pid follows.
const HELD: &str = "rxl monitord: already running as pid ";
/// How long `--replace` waits for the running monitor to exit.
const REPLACE_TIMEOUT: Duration = Duration::from_secs(120);
/// The version the pid file and `status` report.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `rxl monitord`.
pub fn run(sim: Option<&Path>, args: &MonitordArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        Some(MonitordCommand::Status { json }) => status(sim, *json),
        None if args.foreground => serve(sim, args.replace, args.detached),
        None => {
            let host = Backend::open(sim)?;
            if !args.replace {
                if let Some(info) = hostmon::running(&host.state_dir()) {
                    out(format_args!(
                        "rxl monitord already runs (pid {})\n",
                        info.pid
                    ));
                    return Ok(ExitCode::SUCCESS);
                }
            }
            match spawn(sim, &host, args.replace)? {
                Started::New(pid) => out(format_args!("rxl monitord started (pid {pid})\n")),
                Started::Already(pid) => {
                    out(format_args!("rxl monitord already runs (pid {pid})\n"))
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Make sure a host monitor runs on `host` (the monitor step of `rxl create`): nothing to
/// do when one does; else start one in the background and wait until it holds the lock
/// and watches (or another one does).
pub fn ensure(sim: Option<&Path>, host: &Backend) -> std::io::Result<()> {
    if hostmon::running(&host.state_dir()).is_some() {
        return Ok(());
    }
    spawn(sim, host, false).map(|_| ())
}

/// What [`spawn`] started.
enum Started {
    /// A new host monitor, with this pid.
    New(String),
    /// None: one ran already, with this pid.
    Already(String),
}

/// Start `rxl monitord --foreground` detached, logging to the host's log directory, and
/// read the line it prints once it runs. It does not inherit `RXL_SIM_FAIL` (the caller's
/// own); it gets `RXL_SIM_FAIL_MONITOR` as its `RXL_SIM_FAIL` when that is set.
fn spawn(sim: Option<&Path>, host: &Backend, replace: bool) -> std::io::Result<Started> {
    let (log, log_path) = toolstack::state::open_log_file(&host.log_dir(), hostmon::LOG_FILE)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut cmd = Command::new(std::env::current_exe()?);
    if let Some(dir) = sim {
        // Absolute: the monitor works from `/`.
        cmd.arg("--sim").arg(std::path::absolute(dir)?);
    }
    cmd.env_remove("RXL_SIM_FAIL");
    if let Some(spec) = std::env::var_os("RXL_SIM_FAIL_MONITOR") {
        cmd.env("RXL_SIM_FAIL", spec);
    }
    cmd.args(["monitord", "--foreground", "--detached"]);
    if replace {
        cmd.arg("--replace");
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log);
    let mut child = cmd.spawn()?;
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        BufReader::new(stdout).read_line(&mut line)?;
    }
    let pid = |rest: &str| rest.split_whitespace().next().unwrap_or("?").to_string();
    if let Some(rest) = line.strip_prefix(READY) {
        return Ok(Started::New(pid(rest)));
    }
    if let Some(rest) = line.strip_prefix(HELD) {
        let _ = child.wait();
        return Ok(Started::Already(pid(rest)));
    }
    let status = child.wait()?;
    Err(std::io::Error::other(format!(
        "the host monitor did not start ({status}); its log is {}",
        log_path.display()
    )))
}

/// `rxl monitord --foreground`: be the host monitor until SIGTERM, SIGINT or SIGHUP.
fn serve(sim: Option<&Path>, replace: bool, detached: bool) -> anyhow::Result<ExitCode> {
    if detached {
        // Leave the starting terminal's session (its hang-up and Ctrl-C are not ours) and
        // its working directory (which may be unmounted while the monitor runs).
        let _ = nix::unistd::setsid();
        let _ = std::env::set_current_dir("/");
    }
    // The stop signals stay blocked in every thread (threads inherit the mask); one thread
    // takes them, lets the action in progress finish and exits.
    let mut stops = SigSet::empty();
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        stops.add(sig);
    }
    stops
        .thread_block()
        .context("cannot block SIGINT, SIGTERM and SIGHUP")?;
    let host = Backend::open(sim)?;
    let state_dir = host.state_dir();
    let _instance = if replace {
        hostmon::take_over(&state_dir, VERSION, REPLACE_TIMEOUT)?
    } else {
        match hostmon::claim(&state_dir, VERSION)? {
            Claim::Got(instance) => instance,
            Claim::Held(holder) => {
                let pid = holder.map_or("?".to_string(), |h| h.pid.to_string());
                println!("{HELD}{pid}");
                anyhow::bail!(
                    "another rxl monitord (pid {pid}) holds {}: one runs per host",
                    state_dir
                        .join(format!("{}.lock", hostmon::LOCK_NAME))
                        .display()
                );
            }
        }
    };
    let busy = Arc::new(Mutex::new(()));
    {
        let busy = Arc::clone(&busy);
        let state_dir = state_dir.clone();
        std::thread::spawn(move || {
            let sig = stops.wait();
            // Wait for the action in progress; none starts after it.
            let _idle = busy.lock().unwrap_or_else(|e| e.into_inner());
            tracing::info!(
                "{}: exiting",
                sig.map_or("signal".into(), |s| s.to_string())
            );
            hostmon::retire(&state_dir);
            std::process::exit(0);
        });
    }
    let (opts, search) = crate::cmd_create::restart_options(&host)?;
    let mut rebuild = |cfg: &DomainConfig| -> Result<DomId, LaunchError> {
        toolstack::launch(host.hv(), host.xs(), cfg, &opts, &search).map(|c| c.domid)
    };
    // Its own xenstore connection for the watches: no action's wait takes their events.
    let watcher = Backend::open(sim)?;
    let sim_dir = sim.map(Path::to_path_buf);
    // The device models, watched in a thread of their own with a host handle of its own.
    // The monitor's main work does not depend on it: it runs on without.
    let dm_watcher = DmWatcher::spawn(
        opts.devices.dm.record_dir.clone(),
        dm_watch::crash_on_exit(
            Backend::open(sim)?,
            Backend::hv,
            state_dir.clone(),
            opts.devices.dm.record_dir.clone(),
            Arc::clone(&busy),
            Box::new(|_, r| r.monitored_by == MonitoredBy::Host),
        ),
    )
    .map_err(|e| tracing::error!("cannot watch the device models: {e}"))
    .ok();
    let mut monitor =
        HostMonitor::new(host.hv(), host.xs(), &opts, &busy).with_others(Box::new(move || {
            hostmon::legacy_monitored(sim_dir.as_deref())
        }));
    if let Some(w) = dm_watcher {
        monitor = monitor.with_dm_watcher(w);
    }
    monitor.serve(watcher.xs(), &mut rebuild, || {
        tracing::info!(
            "host monitor (rxl {VERSION}) running as pid {}",
            std::process::id()
        );
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "{READY}{} (rxl {VERSION})", std::process::id());
        let _ = stdout.flush();
    })?;
    anyhow::bail!("the host monitor stopped")
}

/// `rxl monitord status`.
fn status(sim: Option<&Path>, as_json: bool) -> anyhow::Result<ExitCode> {
    let host = Backend::open(sim)?;
    let state_dir = host.state_dir();
    let Some(info) = hostmon::running(&state_dir) else {
        if as_json {
            print_json(&json!({"running": false}));
        } else {
            out(format_args!("no rxl monitord runs\n"));
        }
        return Ok(ExitCode::from(1));
    };
    let domains = hostmon::watched(host.hv(), &state_dir)?;
    if as_json {
        print_json(&json!({
            "running": true,
            "pid": info.pid,
            "version": info.version,
            "domains": domains,
        }));
    } else {
        out(format_args!(
            "rxl monitord runs: pid {}, rxl {}, watching {domains} domain{}\n",
            info.pid,
            info.version,
            if domains == 1 { "" } else { "s" }
        ));
    }
    Ok(ExitCode::SUCCESS)
}
