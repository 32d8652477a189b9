//! Running a domain's life: pause, unpause, graceful and forced shutdown, waiting, destroy.

use std::time::{Duration, Instant};

use xen_host::{
    DomId, DomainInfo, Errno, Error, Hypervisor, Result, ShutdownReason, Store, Trigger, TxId,
};

use crate::devices::{self, DeviceOptions};
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

    /// The ACPI event xl's -F sends to a guest without PV control: the power button for
    /// a poweroff, a reset for a reboot.
    pub fn trigger(self) -> Trigger {
        match self {
            Request::Poweroff => Trigger::Power,
            Request::Reboot => Trigger::Reset,
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

/// EPERM for `op` when `dom` is Domain-0, which rxl never `verb`s.
fn refuse_dom0(dom: DomId, op: &str, verb: &str) -> Result<()> {
    if dom == DomId::DOM0 {
        return Err(Error::os_detail(
            op,
            Errno::EPERM,
            format!("refusing to {verb} Domain-0"),
        ));
    }
    Ok(())
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
    refuse_dom0(dom, "shutdown", "shut down")?;
    let info = existing(hv, dom)?;
    if info.dying {
        return Err(Error::os_detail(
            "shutdown",
            Errno::EBUSY,
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

/// Whether the guest's PV control interface (`control/shutdown`) can take a request, as
/// libxl decides (`libxl__domain_pvcontrol_available`): always for PV and PVH guests;
/// for an HVM guest (Xen's HVM flag, and `/libxl/D/type` not naming another type) only
/// once its PV drivers have set up their event channel upcall
/// (`HVM_PARAM_CALLBACK_IRQ` not 0). An HVM guest without PV drivers never reads
/// `control/shutdown`.
pub fn pvcontrol_available<H, S>(hv: &H, xs: &S, dom: DomId) -> Result<bool>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let info = existing(hv, dom)?;
    if !info.hvm {
        return Ok(true);
    }
    let kind = xen_host::read_string(
        xs,
        TxId::NONE,
        &format!("{}/type", xs_layout::libxl_path(dom)),
    )?;
    if kind.as_deref().is_some_and(|k| k != "hvm") {
        return Ok(true);
    }
    Ok(hv.get_hvm_param(dom, xen_host::hvm_param::CALLBACK_IRQ)? != 0)
}

/// Send `trigger` to `dom` (`XEN_DOMCTL_sendtrigger`, as `xl trigger`).
pub fn send_trigger<H: Hypervisor + ?Sized>(
    hv: &H,
    dom: DomId,
    trigger: Trigger,
    vcpu: u32,
) -> Result<()> {
    refuse_dom0(dom, "sendtrigger", "send a trigger to")?;
    existing(hv, dom)?;
    hv.send_trigger(dom, trigger, vcpu)
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

/// What [`destroy`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destroyed {
    /// Xen had the domain; it is destroyed and everything kept about it removed.
    Domain,
    /// Xen no longer had the domain (an earlier destroy was interrupted after Xen destroyed
    /// it, or another tool destroyed it): what was left of it is removed.
    Leftovers,
}

/// Destroy a domain and everything rxl and libxl keep about it: the domain itself, its
/// xenstore nodes, rxl's record and name index entry. A domain Xen no longer has (ESRCH)
/// still gets its leftovers removed ([`finish_cleanup`]).
pub fn destroy<H, S>(
    hv: &H,
    xs: &S,
    devs: &DeviceOptions,
    state: &StateDir,
    dom: DomId,
) -> Result<Destroyed>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    refuse_dom0(dom, "destroy", "destroy")?;
    let info = hv.domain_info(dom)?;
    // Xen's handle is the uuid, read while Xen still has the domain.
    let handle = info.as_ref().map(|i| uuid_string(&i.handle));
    let mut found = info.is_some();
    if found {
        // The name for the `destroyed` event, read while the domain's nodes are sure to be
        // there: once Xen has destroyed it, a host monitor woken by @releaseDomain may
        // clean them up before this process gets to its event.
        let name = crate::domains::name_of(xs, dom).ok().flatten();
        // libxl's order: pause, remove the devices by force, then destroy. A device that
        // cannot be removed does not keep the domain alive: the cleanup below tries again
        // and reports it.
        if info.as_ref().is_some_and(|i| !i.dying && !i.paused) {
            let _ = hv.pause(dom);
        }
        if let Err(e) = devices::remove_all(xs, devs, dom) {
            tracing::warn!("domain {dom}: {e}");
        }
        match hv.destroy(dom) {
            Ok(()) => crate::events::emit(
                state.path(),
                dom,
                name.as_deref().unwrap_or(""),
                crate::events::Event::Destroyed,
            ),
            // Gone between the look and the destroy.
            Err(e) if e.is_gone() => found = false,
            Err(e) => return Err(e),
        }
    }
    finish_cleanup_of(hv, xs, devs, state, dom, handle.as_deref())?;
    Ok(if found {
        Destroyed::Domain
    } else {
        Destroyed::Leftovers
    })
}

/// Removes what is kept about a domain Xen has destroyed (or is destroying): its xenstore
/// nodes (`/local/domain/ID`, `/vm/UUID`, `/libxl/ID`, its console backend), then rxl's
/// record, name index entry and pending-create mark (`creating/UUID`). Every xenstore node
/// is tried; when one cannot be removed the record, the index entry and the mark are kept,
/// so that a later `rxl destroy NAME` or `rxl destroy ID` finds the leftovers again and
/// finishes. Returns whether anything was left. Refuses (EBUSY) a domain Xen still runs
/// and that is not dying.
///
/// The uuid of `/vm/UUID` (and of the pending-create mark) comes from the domain's own `vm`
/// node, else from Xen (while it has the domain), else from rxl's record.
pub fn finish_cleanup<H, S>(
    hv: &H,
    xs: &S,
    devs: &DeviceOptions,
    state: &StateDir,
    dom: DomId,
) -> Result<bool>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    finish_cleanup_of(hv, xs, devs, state, dom, None)
}

/// [`finish_cleanup`] by a caller that knows the domain's uuid (a create undoing itself, a
/// destroy that read Xen's handle before the domain went): used when the domain's `vm`
/// node does not give one.
pub(crate) fn finish_cleanup_of<H, S>(
    hv: &H,
    xs: &S,
    devs: &DeviceOptions,
    state: &StateDir,
    dom: DomId,
    known_uuid: Option<&str>,
) -> Result<bool>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    refuse_dom0(dom, "clean up", "clean up")?;
    let info = hv.domain_info(dom)?;
    if info.as_ref().is_some_and(|i| !i.dying) {
        return Err(Error::os_detail(
            "clean up",
            Errno::EBUSY,
            format!("domain {dom} still runs: destroy it first"),
        ));
    }
    let name = crate::domains::name_of(xs, dom)?;
    let record: Option<crate::create::Record> = state.load(dom).ok().flatten();
    let uuid = xen_host::read_string(xs, TxId::NONE, &format!("{}/vm", dom_path(dom)))?
        .and_then(|vm| vm.strip_prefix("/vm/").map(str::to_string))
        .or_else(|| known_uuid.map(str::to_string))
        .or_else(|| info.as_ref().map(|i| uuid_string(&i.handle)))
        .or_else(|| {
            record
                .as_ref()
                .map(|r| r.config.uuid.hyphenated().to_string())
        });
    let paths = match &uuid {
        Some(uuid) => xs_layout::owned_paths(dom, uuid),
        None => vec![
            dom_path(dom),
            xs_layout::libxl_path(dom),
            format!("/local/domain/0/backend/console/{dom}"),
        ],
    };
    let mut left = state.has_record(dom);
    // The device model first (libxl's order), even for a domain without devices left.
    crate::dm::stop(xs, &devs.dm, dom)
        .map_err(|e| Error::other("stop the device model", e.to_string()))?;
    // Devices next: their remove commands read the backend nodes, which go with them.
    let had_devices = !devices::list(xs, dom)?.is_empty();
    left |= had_devices;
    if had_devices {
        devices::remove_all(xs, devs, dom).map_err(|e| match e.host_error {
            Some(h) => Error::os_detail(
                "remove the devices",
                h.errno().unwrap_or(Errno::EIO),
                format!("{}: {}", e.device, e.message),
            ),
            None => Error::other("remove the devices", format!("{}: {}", e.device, e.message)),
        })?;
    }
    let mut first_err = None;
    for path in paths {
        match xs.read(TxId::NONE, &path) {
            Ok(None) => continue,
            Ok(Some(_)) => left = true,
            Err(e) if e.errno() == Some(Errno::ENOENT) => continue,
            Err(_) => left = true,
        }
        if let Err(e) = xs.rm(TxId::NONE, &path) {
            first_err.get_or_insert(e);
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    let index = NameIndex::new(state.path());
    for n in name.iter().chain(record.as_ref().map(|r| &r.config.name)) {
        index.remove(n, dom);
    }
    state.remove(dom).map_err(|e| {
        let detail = e.to_string();
        match e.errno() {
            Some(errno) => Error::os_detail("remove the domain record", Errno(errno), detail),
            None => Error::other("remove the domain record", detail),
        }
    })?;
    // A uuid from xenstore is a file name here only when it is a uuid.
    if let Some(uuid) = uuid.as_deref().filter(|u| uuid::Uuid::parse_str(u).is_ok()) {
        let mark = crate::create::pending_mark(state.path(), uuid);
        match std::fs::remove_file(&mark) {
            Ok(()) => left = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::os_detail(
                    "remove the pending-create mark",
                    Errno::from_io(&e),
                    format!("{}: {e}", mark.display()),
                ))
            }
        }
    }
    Ok(left)
}

/// The domains Xen no longer has but whose leftovers (xenstore nodes, rxl's record or name
/// index entry) `spec` names: an id, or a name that the index or a leftover
/// `/local/domain/ID/name` gives.
pub fn leftovers<H, S>(hv: &H, xs: &S, state: &StateDir, spec: &str) -> Result<Vec<DomId>>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let gone = |dom: DomId| -> Result<bool> { Ok(hv.domain_info(dom)?.is_none()) };
    let has_nodes = |dom: DomId| -> Result<bool> {
        for path in [dom_path(dom), xs_layout::libxl_path(dom)] {
            if xs.read(TxId::NONE, &path)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    };
    if !spec.is_empty() && spec.bytes().all(|b| b.is_ascii_digit()) {
        let Some(dom) = spec.parse::<u16>().ok().map(DomId) else {
            return Ok(Vec::new());
        };
        if dom == DomId::DOM0 || !gone(dom)? {
            return Ok(Vec::new());
        }
        let left = state.has_record(dom) || has_nodes(dom)?;
        return Ok(if left { vec![dom] } else { Vec::new() });
    }
    let mut found = Vec::new();
    if let Some(dom) = NameIndex::new(state.path()).lookup(spec) {
        if dom != DomId::DOM0 && gone(dom)? {
            found.push(dom);
        }
    }
    for id in xs
        .directory(TxId::NONE, "/local/domain")?
        .unwrap_or_default()
    {
        let Ok(dom) = id.parse::<u16>().map(DomId) else {
            continue;
        };
        if dom != DomId::DOM0
            && !found.contains(&dom)
            && crate::domains::name_of(xs, dom)?.as_deref() == Some(spec)
            && gone(dom)?
        {
            found.push(dom);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    /// Device options for tests: Xen's scripts (these domains have no devices).
    fn devs() -> DeviceOptions {
        DeviceOptions::scripts("/nonexistent/rxl-test-logs")
    }
    use sim::{HostConfig, SimHost};
    use xen_host::CreateDomain;

    use super::*;

    /// A domain as a create leaves it, in short: Xen's domain, its name and vm nodes, a
    /// libxl node, rxl's record and index entry.
    fn rxl_domain(h: &SimHost, state: &StateDir, name: &str) -> DomId {
        let dom = h
            .create_domain(&CreateDomain::pvh([2; 16], 1))
            .expect("create domain");
        for (path, value) in [
            (format!("/local/domain/{dom}/name"), name),
            (format!("/local/domain/{dom}/vm"), "/vm/0202-uuid"),
            ("/vm/0202-uuid/name".to_string(), name),
            (format!("/libxl/{dom}/type"), "pvh"),
        ] {
            h.write(TxId::NONE, &path, value.as_bytes()).expect("write");
        }
        state.save(dom, &name).expect("record");
        NameIndex::new(state.path())
            .insert(name, dom)
            .expect("index");
        dom
    }

    #[test]
    fn a_destroy_cut_short_after_xen_is_finished_by_the_next() {
        let tmp = tempfile::tempdir().expect("tmp");
        let h = SimHost::create(&tmp.path().join("host"), HostConfig::default()).expect("host");
        let state = StateDir::new(tmp.path().join("rxl"));
        let dom = rxl_domain(&h, &state, "web");
        let faulty = SimHost::open(&tmp.path().join("host"))
            .and_then(|h| h.with_faults("xs_rm"))
            .expect("faulty handle");
        assert!(destroy(&faulty, &faulty, &devs(), &state, dom).is_err());
        assert_eq!(h.domain_info(dom).ok(), Some(None), "Xen destroyed it");
        assert!(state.has_record(dom), "kept to find the leftovers again");
        assert_eq!(
            leftovers(&h, &h, &state, "web").ok(),
            Some(vec![dom]),
            "found by name"
        );
        assert_eq!(
            leftovers(&h, &h, &state, &dom.to_string()).ok(),
            Some(vec![dom]),
            "found by id"
        );
        assert_eq!(
            destroy(&h, &h, &devs(), &state, dom).ok(),
            Some(Destroyed::Leftovers)
        );
        for prefix in [
            format!("/local/domain/{dom}"),
            format!("/libxl/{dom}"),
            "/vm/0202-uuid".into(),
        ] {
            assert_eq!(h.xs_dump(&prefix).ok(), Some(Vec::new()), "{prefix}");
        }
        assert!(!state.has_record(dom));
        assert_eq!(NameIndex::new(state.path()).lookup("web"), None);
        assert_eq!(leftovers(&h, &h, &state, "web").ok(), Some(Vec::new()));
        // Nothing was left: finishing again finds nothing.
        assert_eq!(
            finish_cleanup(&h, &h, &devs(), &state, dom).ok(),
            Some(false)
        );
    }

    #[test]
    fn destroy_removes_the_pending_create_mark_of_the_domain_and_no_other() {
        let tmp = tempfile::tempdir().expect("tmp");
        let h = SimHost::create(&tmp.path().join("host"), HostConfig::default()).expect("host");
        let state = StateDir::new(tmp.path().join("rxl"));
        let dom = h
            .create_domain(&CreateDomain::pvh([2; 16], 1))
            .expect("create domain");
        let uuid = uuid_string(&[2; 16]);
        h.write(
            TxId::NONE,
            &format!("/local/domain/{dom}/vm"),
            format!("/vm/{uuid}").as_bytes(),
        )
        .expect("write");
        let marks = crate::create::pending_marks_dir(state.path());
        std::fs::create_dir_all(&marks).expect("mkdir");
        let other = uuid_string(&[3; 16]);
        for u in [&uuid, &other] {
            std::fs::write(marks.join(u), "1 1\n").expect("mark");
        }
        assert_eq!(
            destroy(&h, &h, &devs(), &state, dom).ok(),
            Some(Destroyed::Domain)
        );
        assert!(!marks.join(&uuid).exists(), "the domain's mark is removed");
        assert!(marks.join(&other).exists(), "another domain's mark stays");
        // A create killed before it wrote the domain's `vm` node: the uuid is Xen's handle,
        // read before the domain goes.
        let dom = h
            .create_domain(&CreateDomain::pvh([4; 16], 1))
            .expect("create domain");
        let uuid = uuid_string(&[4; 16]);
        std::fs::write(marks.join(&uuid), "1 1\n").expect("mark");
        assert_eq!(
            destroy(&h, &h, &devs(), &state, dom).ok(),
            Some(Destroyed::Domain)
        );
        assert!(!marks.join(&uuid).exists(), "found by the Xen handle");
    }

    #[test]
    fn cleanup_refuses_a_running_domain_and_domain0() {
        let tmp = tempfile::tempdir().expect("tmp");
        let h = SimHost::create(&tmp.path().join("host"), HostConfig::default()).expect("host");
        let state = StateDir::new(tmp.path().join("rxl"));
        let dom = rxl_domain(&h, &state, "web");
        let busy = finish_cleanup(&h, &h, &devs(), &state, dom).unwrap_err();
        assert_eq!(busy.errno(), Some(Errno::EBUSY), "{busy}");
        assert!(state.has_record(dom));
        let dom0 = destroy(&h, &h, &devs(), &state, DomId::DOM0).unwrap_err();
        assert_eq!(dom0.errno(), Some(Errno::EPERM), "{dom0}");
        assert_eq!(leftovers(&h, &h, &state, "web").ok(), Some(Vec::new()));
        assert_eq!(leftovers(&h, &h, &state, "0").ok(), Some(Vec::new()));
    }
}
