//! Simulated backends (blkback, netback) and the cooperative guest's simulated frontends.
//!
//! They react to xenstore changes, in the process that made the change and under the
//! same host lock, like the guest's reaction to `control/shutdown`: after a write outside
//! a transaction, after a transaction commits (once per device, whatever the number of
//! nodes it wrote), after a removal, after an unpause and after a simulated hotplug run.
//! Only paths under `/local/domain/0/backend/{vbd,vif}/` and `/local/domain/D/device/`
//! trigger anything; other paths cost a string comparison. The backend domain is always
//! Domain-0.
//!
//! The state machine (numbers are xenbus states):
//!
//! - a backend whose `state` is 1 and `online` is 1 moves to 2 (InitWait), unless the
//!   fault `backend_init` refuses it;
//! - while the domain runs, a frontend in state 1..=3 whose backend is in 2 and ready
//!   (vbd: `physical-device` written; vif: `hotplug-status` is `connected`) connects:
//!   frontend and backend go to 4, unless the fault `frontend_connect` refuses it. This
//!   is tried when the domain is unpaused and when `state`, `physical-device` or
//!   `hotplug-status` of the backend is written;
//! - a backend with `online` 0 and `state` 5 (Closing) moves to 6 (Closed) at once when
//!   its frontend is gone or not connected (4) or the domain does not run; otherwise the
//!   frontend releases the device (frontend 6, then backend 6), unless the fault
//!   `frontend_release` refuses it (the backend stays in 5 until the frontend goes);
//! - removing a frontend (or the domain's directory) closes a backend left in 5;
//! - removing a vif backend removes its interface from the simulated host, with its
//!   bridge port, as netback's interface goes with its device. A loop device stays bound
//!   until `block remove` frees it, as on Linux.

use std::collections::BTreeMap;

use devices::{backend_path, frontend_path, state, DeviceKind};
use xen_host::DomId;

use crate::disk::{self, ChangeKind};
use crate::fault::Faults;
use crate::xs;
use crate::{devstate, SimError, World};

/// Every backend directory lives below this (Domain-0 is the only backend domain).
pub(crate) const BACKEND_ROOT: &str = "/local/domain/0/backend";

/// One device: its class, guest and devid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Dev {
    pub kind: Kind,
    pub dom: u16,
    pub devid: u32,
}

/// `DeviceKind`, ordered so that devices can be keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Vbd,
    Vif,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        match s {
            "vbd" => Some(Kind::Vbd),
            "vif" => Some(Kind::Vif),
            _ => None,
        }
    }

    pub(crate) fn device_kind(self) -> DeviceKind {
        match self {
            Kind::Vbd => DeviceKind::Vbd,
            Kind::Vif => DeviceKind::Vif,
        }
    }

    const ALL: [Kind; 2] = [Kind::Vbd, Kind::Vif];
}

impl Dev {
    pub(crate) fn backend(&self) -> String {
        backend_path(
            self.kind.device_kind(),
            DomId::DOM0,
            DomId(self.dom),
            self.devid,
        )
    }

    fn frontend(&self) -> String {
        frontend_path(self.kind.device_kind(), DomId(self.dom), self.devid)
    }
}

/// A path below a backend or frontend root, split: `(kind, domain, devid, key)`, each
/// `None` where the path stops before it.
type Split<'a> = (Option<Kind>, Option<u16>, Option<u32>, Option<&'a str>);

fn split_rest(rest: &str) -> Option<Split<'_>> {
    let mut it = rest.splitn(4, '/');
    let kind = match it.next() {
        None | Some("") => return Some((None, None, None, None)),
        Some(k) => Some(Kind::parse(k)?),
    };
    let dom = match it.next() {
        None => return Some((kind, None, None, None)),
        Some(d) => Some(d.parse::<u16>().ok()?),
    };
    let devid = match it.next() {
        None => return Some((kind, dom, None, None)),
        Some(n) => Some(n.parse::<u32>().ok()?),
    };
    let key = it.next().map(|k| k.split('/').next().unwrap_or(k));
    Some((kind, dom, devid, key))
}

/// `/local/domain/0/backend/KIND/D/N[/KEY...]`: the device and its key.
pub(crate) fn parse_backend(path: &str) -> Option<(Dev, Option<&str>)> {
    let rest = path.strip_prefix(BACKEND_ROOT)?.strip_prefix('/')?;
    match split_rest(rest)? {
        (Some(kind), Some(dom), Some(devid), key) => Some((Dev { kind, dom, devid }, key)),
        _ => None,
    }
}

/// A frontend path `/local/domain/D/device[/KIND[/N[/...]]]` (or `/local/domain/D`):
/// the domain, the kind and devid where given, and whether the path lies below the
/// device's directory (a node inside it, not the directory or an ancestor).
fn parse_frontend(path: &str) -> Option<(u16, Option<Kind>, Option<u32>, bool)> {
    let rest = path.strip_prefix("/local/domain/")?;
    let (dom, tail) = match rest.split_once('/') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let dom = dom.parse::<u16>().ok().filter(|&d| d != 0)?;
    let Some(tail) = tail else {
        return Some((dom, None, None, false));
    };
    let rest = tail.strip_prefix("device")?;
    if rest.is_empty() {
        return Some((dom, None, None, false));
    }
    let rest = rest.strip_prefix('/')?;
    let mut it = rest.splitn(3, '/');
    let kind = Kind::parse(it.next()?)?;
    let devid = match it.next() {
        None => return Some((dom, Some(kind), None, false)),
        Some(n) => n.parse::<u32>().ok()?,
    };
    Some((dom, Some(kind), Some(devid), it.next().is_some()))
}

/// A node's value as text (NULs and surrounding blanks dropped), if it exists.
pub(crate) fn value(w: &World<'_>, path: &str) -> Result<Option<String>, SimError> {
    Ok(xs::read_node(w.dir, path)?.map(|n| {
        String::from_utf8_lossy(&n.value)
            .trim_matches(|c: char| c == '\0' || c.is_whitespace())
            .to_owned()
    }))
}

fn number(w: &World<'_>, path: &str) -> Result<Option<u8>, SimError> {
    Ok(value(w, path)?.and_then(|v| v.parse::<u8>().ok()))
}

/// Write a node as Domain-0 (the backend, the scripts, or the guest's own frontend
/// driver), without reacting to it again.
pub(crate) fn set(w: &mut World<'_>, path: &str, v: &str) -> Result<(), SimError> {
    xs::write(w, DomId::DOM0, path, v.as_bytes(), false)
}

/// Whether the domain exists and runs (unpaused, started, alive).
fn runs(w: &World<'_>, dom: u16) -> Result<bool, SimError> {
    Ok(disk::load_dom(w.dir, dom)?.is_some_and(|d| d.runnable()))
}

/// What a change touched in one device's backend.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Touched {
    /// The directory itself or `state`: a new backend is probed.
    pub state: bool,
    /// `online`: only a close reacts to it.
    pub online: bool,
    /// `physical-device` or `hotplug-status`.
    pub ready: bool,
}

/// React to the changes one operation made, in order: writes to backends (grouped per
/// device), removals of backends and of frontends.
pub(crate) fn after_changes(
    w: &mut World<'_>,
    faults: &mut Faults,
    changes: &[(ChangeKind, String)],
) -> Result<(), SimError> {
    let mut touched: BTreeMap<Dev, Touched> = BTreeMap::new();
    let mut removed = Vec::new();
    for (kind, path) in changes {
        match kind {
            ChangeKind::Write => {
                if let Some((dev, key)) = parse_backend(path) {
                    let t = touched.entry(dev).or_default();
                    match key {
                        None | Some("state") => t.state = true,
                        Some("online") => t.online = true,
                        Some("physical-device") | Some("hotplug-status") => t.ready = true,
                        Some(_) => {}
                    }
                }
            }
            ChangeKind::Remove => {
                if path.starts_with("/local/") || path == "/" {
                    removed.push(path.as_str());
                }
            }
            ChangeKind::Special => {}
        }
    }
    for (dev, t) in touched {
        device_changed(w, faults, dev, t)?;
    }
    for path in removed {
        after_remove(w, path)?;
    }
    Ok(())
}

/// React to what was written in the backend of `dev`.
pub(crate) fn device_changed(
    w: &mut World<'_>,
    faults: &mut Faults,
    dev: Dev,
    t: Touched,
) -> Result<(), SimError> {
    let be = dev.backend();
    if t.state || t.online {
        let st = number(w, &format!("{be}/state"))?;
        let online = number(w, &format!("{be}/online"))?;
        match (st, online) {
            (Some(state::INITIALISING), Some(1)) if t.state => {
                if faults.refuses("backend_init") {
                    return Ok(());
                }
                set(w, &format!("{be}/state"), "2")?;
            }
            (Some(state::CLOSING), Some(0)) => return close(w, faults, dev),
            _ => {}
        }
    }
    if t.state || t.ready {
        try_connect(w, faults, dev)?;
    }
    Ok(())
}

/// The frontend of `dev` connects if the domain runs and the backend waits for it, ready.
fn try_connect(w: &mut World<'_>, faults: &mut Faults, dev: Dev) -> Result<(), SimError> {
    let be = dev.backend();
    if number(w, &format!("{be}/state"))? != Some(state::INIT_WAIT) {
        return Ok(());
    }
    let ready = match dev.kind {
        Kind::Vbd => value(w, &format!("{be}/physical-device"))?.is_some_and(|v| !v.is_empty()),
        Kind::Vif => value(w, &format!("{be}/hotplug-status"))?.as_deref() == Some("connected"),
    };
    if !ready {
        return Ok(());
    }
    let fe_state = format!("{}/state", dev.frontend());
    if !matches!(number(w, &fe_state)?, Some(1..=3)) || !runs(w, dev.dom)? {
        return Ok(());
    }
    if faults.refuses("frontend_connect") {
        return Ok(());
    }
    set(w, &fe_state, "4")?;
    set(w, &format!("{be}/state"), "4")
}

/// A backend asked to close (`online` 0, `state` 5).
fn close(w: &mut World<'_>, faults: &mut Faults, dev: Dev) -> Result<(), SimError> {
    let be_state = format!("{}/state", dev.backend());
    let fe_state = format!("{}/state", dev.frontend());
    let connected = number(w, &fe_state)? == Some(state::CONNECTED);
    if connected && runs(w, dev.dom)? {
        if faults.refuses("frontend_release") {
            return Ok(());
        }
        set(w, &fe_state, "6")?;
    }
    set(w, &be_state, "6")
}

/// A backend left in Closing whose frontend is now gone closes.
fn frontend_gone(w: &mut World<'_>, dev: Dev) -> Result<(), SimError> {
    let be = dev.backend();
    if number(w, &format!("{be}/state"))? == Some(state::CLOSING)
        && number(w, &format!("{be}/online"))? == Some(0)
    {
        set(w, &format!("{be}/state"), "6")?;
    }
    Ok(())
}

/// After `path` (and its subtree) was removed.
fn after_remove(w: &mut World<'_>, path: &str) -> Result<(), SimError> {
    let vif_root = format!("{BACKEND_ROOT}/vif");
    if xs::is_at_or_below(&vif_root, path) || xs::is_at_or_below(path, &vif_root) {
        devstate::drop_interfaces_below(w.dir, path)?;
    }
    let Some((dom, kind, devid, inside)) = parse_frontend(path) else {
        return Ok(());
    };
    if inside {
        return Ok(());
    }
    let kinds: &[Kind] = match &kind {
        Some(k) => std::slice::from_ref(k),
        None => &Kind::ALL,
    };
    for &kind in kinds {
        let devids = match devid {
            Some(n) => vec![n],
            None => {
                let dir = format!("{BACKEND_ROOT}/{}/{dom}", kind.device_kind());
                xs::disk_children(w.dir, &dir)?
                    .iter()
                    .filter_map(|c| c.parse::<u32>().ok())
                    .collect()
            }
        };
        for devid in devids {
            frontend_gone(w, Dev { kind, dom, devid })?;
        }
    }
    Ok(())
}

/// The domain started running (it was unpaused): its frontends connect where they can.
pub(crate) fn on_run(w: &mut World<'_>, faults: &mut Faults, dom: DomId) -> Result<(), SimError> {
    for kind in Kind::ALL {
        let dir = format!("/local/domain/{}/device/{}", dom.0, kind.device_kind());
        for child in xs::disk_children(w.dir, &dir)? {
            if let Ok(devid) = child.parse::<u32>() {
                try_connect(
                    w,
                    faults,
                    Dev {
                        kind,
                        dom: dom.0,
                        devid,
                    },
                )?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_trigger_reactions() {
        let (dev, key) = parse_backend("/local/domain/0/backend/vbd/5/51712/state").unwrap();
        assert_eq!(
            (dev, key),
            (
                Dev {
                    kind: Kind::Vbd,
                    dom: 5,
                    devid: 51712
                },
                Some("state")
            )
        );
        assert_eq!(dev.backend(), "/local/domain/0/backend/vbd/5/51712");
        assert_eq!(dev.frontend(), "/local/domain/5/device/vbd/51712");
        assert!(parse_backend("/local/domain/0/backend/vif/5/0")
            .is_some_and(|(d, k)| d.kind == Kind::Vif && k.is_none()));
        for other in [
            "/local/domain/0/backend/vbd/5",
            "/local/domain/0/backend/console/5/0",
            "/local/domain/0/backend/vbd/x/0",
            "/local/domain/5/control/shutdown",
            "/local/domain/0/backendx/vbd/5/0",
        ] {
            assert!(parse_backend(other).is_none(), "{other}");
        }
        assert_eq!(
            parse_frontend("/local/domain/5/device/vif/1"),
            Some((5, Some(Kind::Vif), Some(1), false))
        );
        assert_eq!(
            parse_frontend("/local/domain/5/device/vif/1/state"),
            Some((5, Some(Kind::Vif), Some(1), true))
        );
        assert_eq!(
            parse_frontend("/local/domain/5"),
            Some((5, None, None, false))
        );
        assert_eq!(
            parse_frontend("/local/domain/5/device"),
            Some((5, None, None, false))
        );
        assert_eq!(parse_frontend("/local/domain/5/name"), None);
        assert_eq!(parse_frontend("/local/domain/0/device/vbd/1"), None);
    }
}
