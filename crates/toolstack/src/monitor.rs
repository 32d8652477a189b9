//! The per-domain monitor: waits for the guest to shut down and applies the config's
//! `on_poweroff` / `on_reboot` / `on_crash` / `on_watchdog` / `on_soft_reset` action, as xl's
//! background process does. It runs until the domain is gone (or preserved).
//!
//! A host error the monitor meets is typed ([`MonitorError`] keeps the operation and the
//! errno). Transient ones (EAGAIN, EINTR, EBUSY, and ECONNRESET / EPIPE / ENOTCONN from a
//! xenstore connection that dropped) are retried with a doubling delay, at most
//! [`RETRY_ATTEMPTS`] times; only then, or on any other error, does the monitor give up,
//! and it says so in its log.

use std::time::Duration;

use xen_host::{DomId, Errno, Hypervisor, ShutdownReason, Store, TxId};
use xlcfg::model::{Action, DomainConfig};

use crate::create::{CreateOptions, Record};
use crate::lifecycle::{self, Until, Waited};
use crate::restarts::RestartMark;
use crate::state::StateDir;
use crate::xs_layout::{dom_path, vm_path};
use crate::LaunchError;

/// The file name of the monitor log of the domain called `name`: the name's bytes in hex
/// (as the name index encodes names), so no name can point outside the log directory.
pub fn log_file_name(name: &str) -> String {
    format!("{}.log", crate::names::file_name(name))
}

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
    #[error("restarting {name} failed: {source}")]
    Restart {
        /// The guest.
        name: String,
        /// Why.
        source: LaunchError,
    },
}

impl MonitorError {
    /// The errno of the host error behind this one, if any.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            MonitorError::Host(e) => e.errno(),
            MonitorError::Restart {
                source: LaunchError::Create(e),
                ..
            } => e.errno(),
            _ => None,
        }
    }

    /// Whether trying again may succeed: a host error that says "not now" rather than
    /// "no" (a busy resource, an interrupted call, a dropped xenstore connection).
    pub fn is_transient(&self) -> bool {
        is_transient(self.errno())
    }
}

/// Whether `errno` says "try again": EAGAIN, EINTR, EBUSY, or a xenstore connection that
/// dropped (ECONNRESET, EPIPE, ENOTCONN) and is made again on the next request.
pub fn is_transient(errno: Option<Errno>) -> bool {
    matches!(
        errno,
        Some(
            Errno::EAGAIN
                | Errno::EINTR
                | Errno::EBUSY
                | Errno::ECONNRESET
                | Errno::EPIPE
                | Errno::ENOTCONN
        )
    )
}

/// How many times the monitor tries an operation that fails transiently before it gives up.
pub const RETRY_ATTEMPTS: u32 = 8;
/// The delay before the first retry; it doubles each time, up to [`RETRY_MAX_DELAY`].
const RETRY_FIRST_DELAY: Duration = Duration::from_millis(50);
/// The longest delay between two tries.
const RETRY_MAX_DELAY: Duration = Duration::from_secs(2);

/// Run `op` until it succeeds, fails for good, or has failed transiently
/// [`RETRY_ATTEMPTS`] times; each retry and the giving up are logged, naming `what`.
fn retrying<T>(
    what: &str,
    mut op: impl FnMut() -> Result<T, MonitorError>,
) -> Result<T, MonitorError> {
    let mut delay = RETRY_FIRST_DELAY;
    let mut attempt = 1;
    loop {
        match op() {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() && attempt < RETRY_ATTEMPTS => {
                tracing::warn!(
                    "{what} failed (attempt {attempt} of {RETRY_ATTEMPTS}): {e}; retrying in \
                     {delay:?}"
                );
                std::thread::sleep(delay);
                delay = (delay * 2).min(RETRY_MAX_DELAY);
                attempt += 1;
            }
            Err(e) => {
                if e.is_transient() {
                    tracing::error!("giving up: {what} failed {attempt} times; last: {e}");
                } else {
                    tracing::error!("giving up: {what} failed: {e}");
                }
                return Err(e);
            }
        }
    }
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
pub type Rebuild<'a> = dyn FnMut(&DomainConfig) -> Result<DomId, LaunchError> + 'a;

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
        let waited = retrying(
            &format!("waiting for domain {dom}"),
            || match lifecycle::wait(hv, xs, dom, Until::ShutDown, SLICE) {
                Err(e) if e.errno() == Some(Errno::ETIMEDOUT) => Ok(None),
                r => Ok(Some(r?)),
            },
        )?;
        let reason = match waited {
            None => continue,
            Some(Waited::Gone) => {
                tracing::info!("domain {dom} is gone");
                let _ = state.remove(dom);
                return Ok(Outcome::Gone);
            }
            Some(Waited::ShutDown(reason)) => reason,
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
                destroy(hv, xs, &state, dom)?;
                return Ok(Outcome::Gone);
            }
            Action::Restart | Action::CoredumpRestart | Action::SoftReset => {
                if action != Action::Restart {
                    tracing::warn!("{action} is not supported: restarting the guest afresh");
                }
                // No domain carries the name until the new one exists: commands wait.
                let _mark = mark_restart(opts, &cfg.name)?;
                destroy(hv, xs, &state, dom)?;
                dom = restart(&state, cfg.clone(), record.restarts, rebuild)?;
            }
            Action::RenameRestart => {
                let _mark = mark_restart(opts, &cfg.name)?;
                let suffix = format!("-{}", record.restarts + 1);
                retrying(&format!("renaming domain {dom}"), || {
                    preserve_renamed(xs, dom, cfg, &suffix)
                })?;
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

/// Destroy `dom`, retrying transient failures.
fn destroy<H, S>(hv: &H, xs: &S, state: &StateDir, dom: DomId) -> Result<(), MonitorError>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    retrying(&format!("destroying domain {dom}"), || {
        lifecycle::destroy(hv, xs, state, dom)?;
        Ok(())
    })
}

/// Build the guest again (a failed build leaves nothing, so a transient failure is
/// retried from the start).
fn restart(
    state: &StateDir,
    cfg: DomainConfig,
    restarts: u32,
    rebuild: &mut Rebuild<'_>,
) -> Result<DomId, MonitorError> {
    let new = retrying(&format!("restarting {}", cfg.name), || {
        rebuild(&cfg).map_err(|source| MonitorError::Restart {
            name: cfg.name.clone(),
            source,
        })
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
