//! The per-domain monitor: waits for the guest to shut down and applies the config's
//! `on_poweroff` / `on_reboot` / `on_crash` / `on_watchdog` / `on_soft_reset` action, as xl's
//! background process does. It runs until the domain is gone (or preserved).

use std::time::Duration;

use xen_host::{DomId, Hypervisor, ShutdownReason, Store, TxId};
use xlcfg::model::{Action, DomainConfig};

use crate::create::{CreateOptions, Record};
use crate::lifecycle::{self, Until, Waited};
use crate::restarts::RestartMark;
use crate::state::StateDir;
use crate::xs_layout::{dom_path, vm_path};

/// Why the monitor stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The domain is gone (destroyed by the monitor or by someone else).
    Gone,
    /// The domain was left shut down (`preserve`).
    Preserved(DomId),
}

/// The monitor failed.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// A host operation failed.
    #[error(transparent)]
    Host(#[from] xen_host::Error),
    /// The domain has no rxl record: rxl did not create it.
    #[error("domain {0} has no rxl record; rxl only monitors domains it created")]
    NoRecord(DomId),
    /// Reading or writing the record failed.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// A restart failed.
    #[error("restarting {name} failed: {message}")]
    Restart {
        /// The guest.
        name: String,
        /// Why.
        message: String,
    },
}

/// The action the config asks for on a shutdown with `reason`.
pub fn action_for(cfg: &DomainConfig, reason: Option<ShutdownReason>) -> Action {
    match reason {
        Some(ShutdownReason::Reboot) => cfg.on_reboot,
        Some(ShutdownReason::Crash) => cfg.on_crash,
        Some(ShutdownReason::Watchdog) => cfg.on_watchdog,
        Some(ShutdownReason::SoftReset) => cfg.on_soft_reset,
        Some(ShutdownReason::Poweroff) | Some(ShutdownReason::Suspend) | None => cfg.on_poweroff,
    }
}

/// Rebuilds a guest from its stored config; returns the new domain id.
pub type Rebuild<'a> = dyn FnMut(&DomainConfig) -> Result<DomId, String> + 'a;

/// How long one wait lasts before the monitor looks again (it waits forever in slices).
const SLICE: Duration = Duration::from_secs(3600);

/// Watch `dom` until it is gone, applying the configured actions.
pub fn run<H, S>(
    hv: &H,
    xs: &S,
    opts: &CreateOptions,
    mut dom: DomId,
    rebuild: &mut Rebuild<'_>,
) -> Result<Outcome, MonitorError>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let state = StateDir::new(opts.state_dir.clone());
    loop {
        let record: Record = state.load(dom)?.ok_or(MonitorError::NoRecord(dom))?;
        let reason = match lifecycle::wait(hv, xs, dom, Until::ShutDown, SLICE) {
            Ok(Waited::Gone) => {
                tracing::info!("domain {dom} is gone");
                let _ = state.remove(dom);
                return Ok(Outcome::Gone);
            }
            Ok(Waited::ShutDown(reason)) => reason,
            Err(e) if e.errno() == Some(xen_host::Errno::ETIMEDOUT) => continue,
            Err(e) => return Err(e.into()),
        };
        let cfg = &record.config;
        let action = action_for(cfg, reason);
        tracing::info!(
            "domain {dom} ({}) shut down ({}): {}",
            cfg.name,
            reason.map_or("unknown reason", reason_name),
            action
        );
        match action {
            Action::Preserve => return Ok(Outcome::Preserved(dom)),
            Action::Destroy | Action::CoredumpDestroy => {
                if action == Action::CoredumpDestroy {
                    tracing::warn!("core dumps are not supported: destroying without one");
                }
                lifecycle::destroy(hv, xs, &state, dom)?;
                return Ok(Outcome::Gone);
            }
            Action::Restart | Action::CoredumpRestart | Action::SoftReset => {
                if action != Action::Restart {
                    tracing::warn!("{action} is not supported: restarting the guest afresh");
                }
                // No domain carries the name until the new one exists: commands wait.
                let _mark = mark_restart(opts, &cfg.name)?;
                lifecycle::destroy(hv, xs, &state, dom)?;
                dom = restart(&state, cfg.clone(), record.restarts, rebuild)?;
            }
            Action::RenameRestart => {
                let _mark = mark_restart(opts, &cfg.name)?;
                let suffix = format!("-{}", record.restarts + 1);
                preserve_renamed(xs, dom, cfg, &suffix)?;
                state.remove(dom)?;
                // The preserved domain keeps its uuid; the new one gets a fresh one.
                let mut fresh = cfg.clone();
                fresh.uuid = uuid::Uuid::new_v4();
                dom = restart(&state, fresh, record.restarts, rebuild)?;
            }
        }
    }
}

/// Marks `name` as being restarted by this monitor until the guard goes.
fn mark_restart(opts: &CreateOptions, name: &str) -> Result<RestartMark, MonitorError> {
    RestartMark::set(&opts.state_dir, name).map_err(|source| {
        MonitorError::State(crate::state::StateError::Io {
            what: "cannot mark the restart in",
            path: opts.state_dir.join("restarting"),
            source,
        })
    })
}

fn restart(
    state: &StateDir,
    cfg: DomainConfig,
    restarts: u32,
    rebuild: &mut Rebuild<'_>,
) -> Result<DomId, MonitorError> {
    let new = rebuild(&cfg).map_err(|message| MonitorError::Restart {
        name: cfg.name.clone(),
        message,
    })?;
    tracing::info!("{} restarted as domain {new}", cfg.name);
    state.save(
        new,
        &Record {
            domid: new,
            config: cfg,
            restarts: restarts + 1,
        },
    )?;
    Ok(new)
}

/// Rename a shut-down domain out of the way, as xl's rename-restart preserves it.
fn preserve_renamed<S: Store + ?Sized>(
    xs: &S,
    dom: DomId,
    cfg: &DomainConfig,
    suffix: &str,
) -> Result<(), MonitorError> {
    let name = format!("{}{suffix}", cfg.name);
    xs.write(
        TxId::NONE,
        &format!("{}/name", dom_path(dom)),
        name.as_bytes(),
    )?;
    let uuid = cfg.uuid.hyphenated().to_string();
    xs.write(
        TxId::NONE,
        &format!("{}/name", vm_path(&uuid)),
        name.as_bytes(),
    )?;
    tracing::info!("domain {dom} preserved as {name}");
    Ok(())
}

fn reason_name(r: ShutdownReason) -> &'static str {
    match r {
        ShutdownReason::Poweroff => "poweroff",
        ShutdownReason::Reboot => "reboot",
        ShutdownReason::Suspend => "suspend",
        ShutdownReason::Crash => "crash",
        ShutdownReason::Watchdog => "watchdog",
        ShutdownReason::SoftReset => "soft_reset",
    }
}
