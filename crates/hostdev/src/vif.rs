//! `vif-bridge online` and `offline`, natively, through rtnetlink.
//!
//! What vif-bridge, vif-common.sh and xen-network-common.sh (Xen 4.17) do for a vif, and
//! what is done here:
//!
//! * The interface is the `vif` variable (`vifD.N`, netback's name); when the backend has
//!   a `vifname`, `online` renames the interface to it first (refused when a link of that
//!   name exists: "Cannot rename interface ..."), and `offline` works on `vifname`.
//! * The bridge is the backend's `bridge` node. As the script does, a missing `xenbrN`
//!   is replaced by `ethN` when that is a bridge (old configs on hosts where the bridge
//!   took the NIC's name). A missing bridge fails with "Could not find bridge device
//!   NAME"; here a link that exists but is not a bridge fails too (the script would
//!   fail later, at `ip link set master`).
//! * `online`: the interface is set down and given the MAC fe:ff:ff:ff:ff:ff (so the
//!   bridge never takes it as its own address; a failure is only noted, as the script's
//!   `|| true`); its MTU is set to the backend's `mtu` node, else the bridge's, and
//!   written to the frontend's `mtu` node (failure to set it is noted, as the script's
//!   `|| :`); it becomes a port of the bridge unless it already is one; it is set up;
//!   `hotplug-status=connected` is written.
//! * `offline`: if the interface still exists (netback removes it itself), it is set down
//!   and taken off its bridge. Errors are only noted, as the script's
//!   `do_without_error`; nothing is written to xenstore.
//! * Not done: the script's `ip address flush` (a new vif has no address), and its
//!   iptables FORWARD rules (`handle_iptable`, which only matter where bridged traffic is
//!   filtered by iptables with a DROP policy); a vif with `ip=` goes to the script.

use devices::hotplug::HotplugCommand;

use crate::rtnl::{Link, LinkChange, Rtnl};
use crate::{Failure, Job, Native};

/// The address the script gives a vif before it joins a bridge.
const PORT_MAC: [u8; 6] = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff];

fn fatal(msg: impl Into<String>) -> Failure {
    Failure::Fatal(msg.into())
}

fn rtnl() -> Result<Rtnl, Failure> {
    Rtnl::open().map_err(|e| fatal(format!("cannot open an rtnetlink socket: {e}")))
}

fn lookup(nl: &mut Rtnl, name: &str) -> Result<Option<Link>, Failure> {
    nl.link(name)
        .map_err(|e| fatal(format!("cannot look up interface {name}: {e}")))
}

/// The bridge named `name`, with the script's xenbrN → ethN rule.
fn find_bridge(nl: &mut Rtnl, name: &str) -> Result<Link, Failure> {
    let link = match lookup(nl, name)? {
        Some(l) => Some(l),
        None => match name.strip_prefix("xenbr") {
            Some(n) => lookup(nl, &format!("eth{n}"))?.filter(|l| l.is_bridge),
            None => None,
        },
    };
    let link = link.ok_or_else(|| fatal(format!("Could not find bridge device {name}")))?;
    if !link.is_bridge {
        return Err(fatal(format!(
            "{} is not a bridge (asked for bridge {name})",
            link.name
        )));
    }
    Ok(link)
}

fn interface(job: &Job<'_>, cmd: &HotplugCommand) -> Result<(String, Option<String>), Failure> {
    let vif = cmd
        .env_var("vif")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| fatal("no vif interface name in the environment"))?
        .to_owned();
    let vifname = job.read("vifname")?.filter(|v| !v.is_empty());
    Ok((vif, vifname))
}

/// `vif-bridge online`.
pub(crate) fn online(
    _native: &Native,
    job: &mut Job<'_>,
    cmd: &HotplugCommand,
) -> Result<(), Failure> {
    let (vif, vifname) = interface(job, cmd)?;
    let bridge_name = job.read_required("bridge")?;
    let mut nl = rtnl()?;
    let bridge = find_bridge(&mut nl, &bridge_name)?;
    let mut link = lookup(&mut nl, &vif)?.ok_or_else(|| {
        fatal(format!(
            "interface {vif} does not exist (netback has not made it)"
        ))
    })?;
    if let Some(name) = vifname.filter(|n| *n != vif) {
        if lookup(&mut nl, &name)?.is_some() {
            return Err(fatal(format!(
                "Cannot rename interface {vif}. An interface with name {name} already exists."
            )));
        }
        nl.set(
            link.index,
            &LinkChange {
                up: Some(false),
                name: Some(name.clone()),
                ..LinkChange::default()
            },
        )
        .map_err(|e| fatal(format!("ip link set {vif} name {name} failed: {e}")))?;
        job.note(format!("renamed {vif} to {name}"));
        link.name = name;
    }
    let dev = link.name.clone();
    nl.set(
        link.index,
        &LinkChange {
            up: Some(false),
            ..LinkChange::default()
        },
    )
    .map_err(|e| fatal(format!("ip link set dev {dev} down failed: {e}")))?;
    if let Err(e) = nl.set(
        link.index,
        &LinkChange {
            address: Some(PORT_MAC),
            ..LinkChange::default()
        },
    ) {
        job.note(format!(
            "setting {dev}'s address to fe:ff:ff:ff:ff:ff failed: {e}"
        ));
    }
    let mtu = match job.read("mtu")?.filter(|m| !m.is_empty()) {
        Some(m) => match m.trim().parse::<u32>() {
            Ok(v) => Some(v),
            Err(_) => {
                job.note(format!("ignoring the backend's mtu `{m}`: not a number"));
                bridge.mtu
            }
        },
        None => bridge.mtu,
    };
    if let Some(mtu) = mtu.filter(|m| *m > 0) {
        if let Err(e) = nl.set(
            link.index,
            &LinkChange {
                mtu: Some(mtu),
                ..LinkChange::default()
            },
        ) {
            job.note(format!("setting {dev}'s MTU to {mtu} failed: {e}"));
        }
        let (domid, devid) = job.domid_devid()?;
        job.write_abs(&[(
            format!("/local/domain/{domid}/device/vif/{devid}/mtu"),
            &mtu.to_string(),
        )])?;
    }
    if link.master == Some(bridge.index) {
        job.note(format!("{dev} already on bridge {}", bridge.name));
    } else {
        nl.set(
            link.index,
            &LinkChange {
                master: Some(bridge.index),
                ..LinkChange::default()
            },
        )
        .map_err(|e| {
            fatal(format!(
                "adding {dev} to bridge {} failed: {e}",
                bridge.name
            ))
        })?;
    }
    nl.set(
        link.index,
        &LinkChange {
            up: Some(true),
            ..LinkChange::default()
        },
    )
    .map_err(|e| fatal(format!("ip link set dev {dev} up failed: {e}")))?;
    job.write(&[("hotplug-status", "connected")])?;
    job.note(format!(
        "{dev} is a port of {}{}, up",
        bridge.name,
        mtu.map(|m| format!(", MTU {m}")).unwrap_or_default()
    ));
    Ok(())
}

/// `vif-bridge offline`.
pub(crate) fn offline(
    _native: &Native,
    job: &mut Job<'_>,
    cmd: &HotplugCommand,
) -> Result<(), Failure> {
    let (vif, vifname) = interface(job, cmd)?;
    let dev = vifname.unwrap_or(vif);
    let mut nl = rtnl()?;
    let Some(link) = lookup(&mut nl, &dev)? else {
        job.note(format!("{dev} is gone: nothing to undo"));
        return Ok(());
    };
    if let Err(e) = nl.set(
        link.index,
        &LinkChange {
            up: Some(false),
            ..LinkChange::default()
        },
    ) {
        job.note(format!("ip link set dev {dev} down failed: {e}"));
    }
    match link.master {
        None => job.note(format!("{dev} is on no bridge")),
        Some(m) => {
            let name = nl
                .link_by_index(m)
                .ok()
                .flatten()
                .map_or_else(|| format!("#{m}"), |l| l.name);
            match nl.set(
                link.index,
                &LinkChange {
                    master: Some(0),
                    ..LinkChange::default()
                },
            ) {
                Ok(()) => job.note(format!("{dev} removed from bridge {name}")),
                Err(e) => job.note(format!("removing {dev} from bridge {name} failed: {e}")),
            }
        }
    }
    Ok(())
}
