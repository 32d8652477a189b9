//! Applying a guest's `on_poweroff` / `on_reboot` / `on_crash` / `on_watchdog` /
//! `on_soft_reset` action once it has shut down ([`handle`]: one observed shutdown of one
//! domain), used by the host monitor ([`crate::hostmon`], `rxl monitord`) and by the
//! foreground monitor of one domain ([`run`], `rxl create -F`), which waits for the guest
//! to shut down and runs until the domain is gone (or preserved), as xl's does.
//!
//! A host error the monitor meets is typed ([`MonitorError`] keeps the operation and the
//! errno). Transient ones (EAGAIN, EINTR, EBUSY, and ECONNRESET / EPIPE / ENOTCONN from a
//! xenstore connection that dropped) are retried with a doubling delay, at most
//! [`RETRY_ATTEMPTS`] times; only then, or on any other error, does the monitor give up,
//! and it says so in its log.

use std::time::Duration;

use xen_host::{DomId, Errno, Hypervisor, ShutdownReason, Store};
use xlcfg::model::{Action, DomainConfig};

use crate::create::{CreateOptions, Record};
use crate::lifecycle::{self, Until, Waited};
use crate::restarts::RestartMark;
use crate::state::StateDir;
use crate::LaunchError;

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
    /// Renaming the old domain out of the way failed.
    #[error(transparent)]
    Rename(#[from] crate::names::RenameError),
    /// Every name a rename-restart tried for the old domain is taken.
    #[error(
        "no free name for the old domain {dom} of {name}: {name}-{first} to {name}-{last} are \
         all taken; it stays shut down under its own name"
    )]
    NoFreeName {
        /// The old domain.
        dom: DomId,
        /// The guest's name.
        name: String,
        /// The first suffix tried.
        first: u32,
        /// The last suffix tried.
        last: u32,
    },
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
            MonitorError::Host(e)
            | MonitorError::Rename(crate::names::RenameError::Host { source: e, .. }) => e.errno(),
            MonitorError::Restart {
                source: LaunchError::Create(e),
                ..
            } => e.errno(),
            _ => None,
        }
    }

    /// Whether trying again may succeed: the host error behind this one says "not now"
    /// rather than "no" ([`Errno::is_transient`]).
    pub fn is_transient(&self) -> bool {
        self.errno().is_some_and(Errno::is_transient)
    }
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

/// Who applies a domain's on_* actions, as its record says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MonitoredBy {
    /// The host monitor (`rxl monitord`, [`crate::hostmon`]); records written before the
    /// field existed load as this.
    #[default]
    Host,
    /// The `rxl create -F` process that made the domain ([`run`]).
    Foreground,
    /// Nobody (`rxl create -e`).
    Nobody,
}

/// Record that `by` applies the on_* actions of `dom` (a create that does not leave its
/// domain to the host monitor says so before the domain runs).
pub fn set_monitored_by(state: &StateDir, dom: DomId, by: MonitoredBy) -> Result<(), MonitorError> {
    let mut record: Record = state.load(dom)?.ok_or(MonitorError::NoRecord(dom))?;
    record.monitored_by = by;
    state.save(dom, &record)?;
    Ok(())
}

/// What handling one observation of a domain ([`handle`]) did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handled {
    /// The domain is gone (destroyed here, or by someone else and cleaned up here).
    Gone,
    /// The domain was left shut down (`preserve`).
    Preserved(DomId),
    /// The guest was built again as this domain (its record is saved).
    Restarted(DomId),
}

/// How long one wait lasts before the monitor looks again (it waits forever in slices).
const SLICE: Duration = Duration::from_secs(3600);

/// Watch `dom` until it is gone, applying the configured actions: the foreground monitor
/// of `rxl create -F`. Each shutdown it sees is handled by [`handle`], as the host monitor
/// handles the ones it sees.
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
        let Some(seen) = waited else { continue };
        match handle(hv, xs, opts, &state, &record, seen, rebuild)? {
            Handled::Gone => return Ok(Outcome::Gone),
            Handled::Preserved(d) => return Ok(Outcome::Preserved(d)),
            Handled::Restarted(new) => dom = new,
        }
    }
}

/// Handle one observation of the domain `record` describes: it is gone (finish its
/// cleanup) or shut down (apply the config's action for the reason). A restart builds the
/// guest again with `rebuild` and saves the new domain's record, keeping
/// [`Record::monitored_by`]. Transient host errors are retried ([`RETRY_ATTEMPTS`]).
pub fn handle<H, S>(
    hv: &H,
    xs: &S,
    opts: &CreateOptions,
    state: &StateDir,
    record: &Record,
    seen: Waited,
    rebuild: &mut Rebuild<'_>,
) -> Result<Handled, MonitorError>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let dom = record.domid;
    let reason = match seen {
        Waited::Gone => {
            // Someone else destroyed it, perhaps only in part: finish the cleanup.
            tracing::info!("domain {dom} is gone");
            retrying(&format!("cleaning up after domain {dom}"), || {
                lifecycle::finish_cleanup(hv, xs, &opts.devices, state, dom)?;
                Ok(())
            })?;
            crate::events::emit(
                &opts.state_dir,
                dom,
                &record.config.name,
                crate::events::Event::DestroyedByOther,
            );
            return Ok(Handled::Gone);
        }
        Waited::ShutDown(reason) => reason,
    };
    let cfg = &record.config;
    crate::events::emit_shutdown(&opts.state_dir, dom, &cfg.name, reason);
    let action = action_for(cfg, reason);
    tracing::info!(
        "domain {dom} ({}) shut down ({}): {}",
        cfg.name,
        reason.map_or("unknown reason", crate::events::reason_word),
        action
    );
    match action {
        Action::Preserve => Ok(Handled::Preserved(dom)),
        Action::Destroy | Action::CoredumpDestroy => {
            if action == Action::CoredumpDestroy {
                tracing::warn!("core dumps are not supported: destroying without one");
            }
            destroy(hv, xs, opts, state, dom)?;
            Ok(Handled::Gone)
        }
        Action::Restart | Action::CoredumpRestart | Action::SoftReset => {
            if action != Action::Restart {
                tracing::warn!("{action} is not supported: restarting the guest afresh");
            }
            // No domain carries the name until the new one exists: commands wait.
            let _mark = mark_restart(opts, &cfg.name)?;
            destroy(hv, xs, opts, state, dom)?;
            let new = restart(state, cfg.clone(), record, rebuild)?;
            crate::events::emit_restarted(&opts.state_dir, new, &cfg.name, record.domid);
            Ok(Handled::Restarted(new))
        }
        Action::RenameRestart => {
            let _mark = mark_restart(opts, &cfg.name)?;
            preserve_renamed(hv, xs, opts, dom, &cfg.name, record.restarts + 1)?;
            state.remove(dom)?;
            // The preserved domain keeps its uuid; the new one gets a fresh one.
            let mut fresh = cfg.clone();
            fresh.uuid = uuid::Uuid::new_v4();
            let new = restart(state, fresh, record, rebuild)?;
            crate::events::emit_restarted(&opts.state_dir, new, &cfg.name, record.domid);
            Ok(Handled::Restarted(new))
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
fn destroy<H, S>(
    hv: &H,
    xs: &S,
    opts: &CreateOptions,
    state: &StateDir,
    dom: DomId,
) -> Result<(), MonitorError>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    retrying(&format!("destroying domain {dom}"), || {
        lifecycle::destroy(hv, xs, &opts.devices, state, dom)?;
        Ok(())
    })
}

/// Build the guest again (a failed build leaves nothing, so a transient failure is
/// retried from the start); the new record keeps `old`'s monitor and counts the restart.
fn restart(
    state: &StateDir,
    cfg: DomainConfig,
    old: &Record,
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
            restarts: old.restarts + 1,
            monitored_by: old.monitored_by,
        },
    )?;
    Ok(new)
}

/// How many names `NAME-N` a rename-restart tries for the old domain before it gives up.
pub const RENAME_TRIES: u32 = 16;

/// Renames the shut-down domain `dom` out of the way, as xl's rename-restart preserves it:
/// to `NAME-N` from `N = first`, with the checked rename ([`crate::names::rename`], under
/// the host lock, refused onto a name another domain carries). A taken name moves on to
/// the next `N`, at most [`RENAME_TRIES`] names; when all are taken the domain keeps its
/// name and the monitor gives up, so that no two domains ever share a name. Returns the
/// new name.
fn preserve_renamed<H, S>(
    hv: &H,
    xs: &S,
    opts: &CreateOptions,
    dom: DomId,
    name: &str,
    first: u32,
) -> Result<String, MonitorError>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let last = first.saturating_add(RENAME_TRIES - 1);
    for n in first..=last {
        let new = format!("{name}-{n}");
        let taken =
            retrying(
                &format!("renaming domain {dom} to {new}"),
                || match crate::names::rename(hv, xs, &opts.state_dir, dom, &new) {
                    Ok(()) => Ok(None),
                    Err(crate::names::RenameError::Taken { holder, .. }) => Ok(Some(holder)),
                    Err(e) => Err(e.into()),
                },
            )?;
        match taken {
            None => {
                tracing::info!("domain {dom} preserved as {new}");
                return Ok(new);
            }
            Some(holder) => {
                tracing::info!("{new} is taken by domain {holder}: trying the next name");
            }
        }
    }
    let e = MonitorError::NoFreeName {
        dom,
        name: name.to_string(),
        first,
        last,
    };
    tracing::error!("giving up: {e}");
    Err(e)
}
