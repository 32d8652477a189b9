//! `rxl destroy`, `shutdown`, `reboot`, `trigger`, `pause`, `unpause`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use toolstack::domains;
use toolstack::events::{self, Event};
use toolstack::lifecycle::{self, Request, Until, Waited};
use toolstack::state::StateDir;
use xen_host::{DomId, TxId};

use crate::backend::Backend;
use crate::cli::ShutdownArgs;

/// The domain a command names; a name whose guest the monitor is restarting is looked up
/// once the restart is over.
pub(crate) fn resolve(host: &Backend, spec: &str) -> Result<DomId, xen_host::Error> {
    domains::resolve_waiting(host.hv(), host.xs(), &host.state_dir(), spec)
}

/// `rxl destroy DOMAIN`. A name or id that Xen no longer has but whose leftovers remain
/// (an interrupted destroy: xenstore nodes, rxl's record, the name index entry) has them
/// removed, and says so.
pub fn destroy(host: &Backend, spec: &str) -> anyhow::Result<ExitCode> {
    let state = StateDir::new(host.state_dir());
    let dom = match resolve(host, spec) {
        Ok(dom) => dom,
        Err(e) if e.is_gone() => {
            let left = lifecycle::leftovers(host.hv(), host.xs(), &state, spec)?;
            if left.is_empty() {
                return Err(e.into());
            }
            for dom in left {
                lifecycle::finish_cleanup(
                    host.hv(),
                    host.xs(),
                    &host.device_options()?,
                    &state,
                    dom,
                )
                .with_context(|| format!("cannot remove what is left of domain {dom} ({spec})"))?;
                eprintln!(
                    "rxl: domain {dom} ({spec}) was already gone from Xen: removed what was \
                     left of it"
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e.into()),
    };
    let destroyed = lifecycle::destroy(host.hv(), host.xs(), &host.device_options()?, &state, dom)
        .with_context(|| format!("cannot destroy domain {dom}"))?;
    if destroyed == lifecycle::Destroyed::Leftovers {
        eprintln!("rxl: domain {dom} was already gone from Xen: removed what was left of it");
    }
    Ok(ExitCode::SUCCESS)
}

/// `rxl pause DOMAIN` / `rxl unpause DOMAIN`.
pub fn pause(host: &Backend, spec: &str, pause: bool) -> anyhow::Result<ExitCode> {
    let dom = resolve(host, spec)?;
    if pause {
        host.hv().pause(dom)?;
    } else {
        host.hv().unpause(dom)?;
    }
    let state = StateDir::new(host.state_dir());
    events::emit_for(host.xs(), &state, dom, Event::pause(pause));
    Ok(ExitCode::SUCCESS)
}

/// How long `-F` gives the guest to react before shutting it down from the hypervisor.
const FORCE_GRACE: Duration = Duration::from_secs(5);

/// `rxl shutdown` / `rxl reboot`.
pub fn shutdown(host: &Backend, args: &ShutdownArgs, req: Request) -> anyhow::Result<ExitCode> {
    let targets: Vec<DomId> = if args.all {
        host.hv()
            .list_domains()?
            .into_iter()
            .map(|i| i.domid)
            .filter(|d| *d != DomId::DOM0)
            .collect()
    } else {
        args.domains
            .iter()
            .map(|s| resolve(host, s))
            .collect::<Result<_, _>>()?
    };
    // The guests asked through their PV control (the others got an ACPI event).
    let mut asked = Vec::new();
    for &dom in &targets {
        if lifecycle::pvcontrol_available(host.hv(), host.xs(), dom)
            .with_context(|| format!("cannot tell whether domain {dom} has PV control"))?
        {
            lifecycle::request_shutdown(host.hv(), host.xs(), dom, req)
                .with_context(|| format!("cannot ask domain {dom} to {}", req.word()))?;
            asked.push(dom);
        } else {
            acpi_event(host, dom, req, args.force)?;
        }
    }
    if args.force {
        for &dom in &asked {
            force_if_ignored(host, dom, req)?;
        }
    }
    if args.wait {
        let deadline = Instant::now() + Duration::from_secs(args.timeout);
        for &dom in &targets {
            wait_gone(host, dom, deadline)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The ACPI button xl's -F presses for `req`.
fn button(req: Request) -> &'static str {
    match req {
        Request::Poweroff => "power button",
        Request::Reboot => "reset",
    }
}

/// A guest without PV control (an HVM guest without PV drivers): with -F (`force`) send
/// it the ACPI event for `req`, as xl does; without, refuse with the hint.
fn acpi_event(host: &Backend, dom: DomId, req: Request, force: bool) -> anyhow::Result<()> {
    if !force {
        anyhow::bail!(
            "domain {dom} has no PV control interface (an HVM guest without PV drivers): a \
             graceful {} is not possible; use -F to send the ACPI {} event instead",
            req.word(),
            button(req)
        );
    }
    eprintln!(
        "rxl: domain {dom}: PV control interface not available: sending the ACPI {} event",
        button(req)
    );
    let trigger = req.trigger();
    lifecycle::send_trigger(host.hv(), dom, trigger, 0).map_err(|e| {
        let hint = if e.errno() == Some(xen_host::Errno::ENOSYS) {
            format!(
                " (Xen has no {} trigger on x86, as for xl {} -F)",
                trigger.name(),
                req.word()
            )
        } else {
            String::new()
        };
        anyhow::Error::new(e).context(format!(
            "cannot send the ACPI {} event to domain {dom}{hint}",
            button(req)
        ))
    })
}

/// `rxl trigger DOMAIN TRIGGER [VCPU]`.
pub fn trigger(
    host: &Backend,
    spec: &str,
    trigger: xen_host::Trigger,
    vcpu: u32,
) -> anyhow::Result<ExitCode> {
    let dom = resolve(host, spec)?;
    lifecycle::send_trigger(host.hv(), dom, trigger, vcpu).with_context(|| {
        format!(
            "cannot send the {} trigger to domain {dom} (vCPU {vcpu})",
            trigger.name()
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// With -F: when the guest neither takes the request (clears control/shutdown) nor shuts
/// down within the grace period, shut it down from the hypervisor.
fn force_if_ignored(host: &Backend, dom: DomId, req: Request) -> anyhow::Result<()> {
    let node = format!("/local/domain/{dom}/control/shutdown");
    let deadline = Instant::now() + FORCE_GRACE;
    while Instant::now() < deadline {
        match host.hv().domain_info(dom)? {
            None => return Ok(()),
            Some(i) if i.shutdown => return Ok(()),
            Some(_) => {}
        }
        let pending = host
            .xs()
            .read(TxId::NONE, &node)?
            .is_some_and(|v| !v.is_empty());
        if !pending {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "rxl: domain {dom} ignored the {} request: shutting it down from Xen",
        req.word()
    );
    lifecycle::force_shutdown(host.hv(), dom, req)?;
    Ok(())
}

/// How long a shut-down domain may take to disappear (its monitor applying on_poweroff)
/// before `-w` accepts that it is kept.
const GONE_GRACE: Duration = Duration::from_secs(10);

fn wait_gone(host: &Backend, dom: DomId, deadline: Instant) -> anyhow::Result<()> {
    let left = |d: Instant| d.saturating_duration_since(Instant::now());
    match lifecycle::wait(host.hv(), host.xs(), dom, Until::ShutDown, left(deadline))? {
        Waited::Gone => return Ok(()),
        Waited::ShutDown(_) => {}
    }
    let grace = deadline.min(Instant::now() + GONE_GRACE);
    match lifecycle::wait(host.hv(), host.xs(), dom, Until::Gone, left(grace)) {
        Ok(_) => Ok(()),
        Err(e) if e.errno() == Some(xen_host::Errno::ETIMEDOUT) && grace < deadline => {
            eprintln!(
                "rxl: domain {dom} has shut down and is kept (on_* = preserve, or no monitor is running)"
            );
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
