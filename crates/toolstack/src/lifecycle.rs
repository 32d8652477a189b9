//! Running a domain's life: pause, unpause, graceful and forced shutdown, waiting, destroy.

use std::time::{Duration, Instant};

use xen_host::{DomId, DomainInfo, Errno, Error, Hypervisor, Result, ShutdownReason, Store, TxId};

use crate::domains::uuid_string;
use crate::names::NameIndex;
use crate::state::StateDir;
use crate::xs_layout::{self, dom_path};

/// What a graceful shutdown request asks the guest to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Power off.
    Poweroff,
    /// Reboot.
    Reboot,
}

impl Request {
    /// The word written to `control/shutdown`.
    pub fn word(self) -> &'static str {
        match self {
            Request::Poweroff => "poweroff",
            Request::Reboot => "reboot",
        }
    }

    /// The shutdown reason a forced request uses.
    pub fn reason(self) -> ShutdownReason {
        match self {
            Request::Poweroff => ShutdownReason::Poweroff,
            Request::Reboot => ShutdownReason::Reboot,
        }
    }
}

fn existing<H: Hypervisor + ?Sized>(hv: &H, dom: DomId) -> Result<DomainInfo> {
    hv.domain_info(dom)?.ok_or_else(|| {
        Error::os_detail("find domain", Errno::ESRCH, format!("domain {dom} is gone"))
    })
}

/// Ask the guest to shut down through xenstore (`control/shutdown`), as xl does for a
/// guest with PV control.
pub fn request_shutdown<H, S>(hv: &H, xs: &S, dom: DomId, req: Request) -> Result<()>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    if dom == DomId::DOM0 {
        return Err(Error::other("shutdown", "refusing to shut down Domain-0"));
    }
    let info = existing(hv, dom)?;
    if info.dying {
        return Err(Error::other(
            "shutdown",
            format!("domain {dom} is already dying"),
        ));
    }
    xs.write(
        TxId::NONE,
        &format!("{}/control/shutdown", dom_path(dom)),
        req.word().as_bytes(),
    )
}

/// Whether the guest has said it handles `control/shutdown` requests
/// (`control/feature-poweroff` / `feature-reboot` = 1).
pub fn has_pv_control<S: Store + ?Sized>(xs: &S, dom: DomId, req: Request) -> Result<bool> {
    let feature = match req {
        Request::Poweroff => "feature-poweroff",
        Request::Reboot => "feature-reboot",
    };
    let path = format!("{}/control/{feature}", dom_path(dom));
    Ok(xs.read(TxId::NONE, &path)?.as_deref() == Some(b"1"))
}

/// Shut the domain down from the hypervisor (`SCHEDOP_remote_shutdown`), without asking the
/// guest.
pub fn force_shutdown<H: Hypervisor + ?Sized>(hv: &H, dom: DomId, req: Request) -> Result<()> {
    existing(hv, dom)?;
    hv.shutdown(dom, req.reason())
}

/// What [`wait`] waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// The domain no longer exists.
    Gone,
    /// The domain has shut down (or no longer exists).
    ShutDown,
}

/// How a wait ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Waited {
    /// The domain is gone.
    Gone,
    /// The domain is shut down, with this reason.
    ShutDown(Option<ShutdownReason>),
}

/// Poll interval between looks at the domain; watch events wake the wait early.
const POLL: Duration = Duration::from_millis(100);

/// Wait until the domain is gone (or shut down), at most `timeout`. Watches
/// `@releaseDomain`, and also looks at the domain every 100 ms.
pub fn wait<H, S>(hv: &H, xs: &S, dom: DomId, until: Until, timeout: Duration) -> Result<Waited>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let token = format!("rxl-wait-{dom}-{}", std::process::id());
    let watching = xs.watch("@releaseDomain", &token).is_ok();
    let deadline = Instant::now() + timeout;
    let result = loop {
        match hv.domain_info(dom)? {
            None => break Ok(Waited::Gone),
            Some(info) if until == Until::ShutDown && info.shutdown => {
                break Ok(Waited::ShutDown(info.shutdown_reason()));
            }
            Some(_) => {}
        }
        let now = Instant::now();
        if now >= deadline {
            break Err(Error::os_detail(
                "wait for domain",
                Errno::ETIMEDOUT,
                format!(
                    "domain {dom} still exists after {} s",
                    timeout.as_secs_f64()
                ),
            ));
        }
        let nap = POLL.min(deadline - now);
        if watching {
            // Any event (or the timeout) ends the nap; the loop looks again.
            let _ = xs.next_watch_event(Some(nap))?;
        } else {
            std::thread::sleep(nap);
        }
    };
    if watching {
        let _ = xs.unwatch("@releaseDomain", &token);
    }
    result
}

/// Destroy a domain and everything rxl and libxl keep about it: the domain itself, its
/// xenstore nodes, and rxl's stored record. A domain that is already gone still gets its
/// leftovers removed.
pub fn destroy<H, S>(hv: &H, xs: &S, state: &StateDir, dom: DomId) -> Result<()>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    if dom == DomId::DOM0 {
        return Err(Error::other("destroy", "refusing to destroy Domain-0"));
    }
    let info = hv.domain_info(dom)?;
    let name = crate::domains::name_of(xs, dom)?;
    let uuid = match &info {
        Some(i) => Some(uuid_string(&i.handle)),
        None => xen_host::read_string(xs, TxId::NONE, &format!("{}/vm", dom_path(dom)))?
            .and_then(|vm| vm.strip_prefix("/vm/").map(str::to_string)),
    };
    if info.is_some() {
        match hv.destroy(dom) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(Errno::ESRCH) => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(uuid) = uuid {
        xs_layout::remove(xs, dom, &uuid)?;
    } else {
        xs.rm(TxId::NONE, &dom_path(dom))?;
        xs.rm(TxId::NONE, &xs_layout::libxl_path(dom))?;
    }
    if let Some(name) = name {
        NameIndex::new(state.path()).remove(&name, dom);
    }
    state
        .remove(dom)
        .map_err(|e| Error::other("remove the domain record", e.to_string()))
}
