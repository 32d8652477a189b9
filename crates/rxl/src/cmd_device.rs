//! The hot-plug commands: `block-attach`, `block-detach`, `block-list`, `network-attach`,
//! `network-detach`, `network-list`, with xl's argument forms and its list columns.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use devices::DeviceKind;
use serde_json::json;
use toolstack::devices::{DeviceInfo, NewDevice};
use toolstack::events::{self, Event};
use toolstack::state::StateDir;
use xen_host::DomId;
use xlcfg::hostconf::HostConf;
use xlcfg::model::MacAddr;
use xlcfg::Diagnostic;

use crate::backend::Backend;
use crate::cli::{
    BlockAttachArgs, BlockDetachArgs, DeviceListArgs, NetworkAttachArgs, NetworkDetachArgs,
};
use crate::cmd_domain::resolve;
use crate::report::{out, print_diagnostics, print_json, Reported};

/// xl's way with several words of a spec: they are read one after the other, as if joined
/// with ','.
fn joined(words: &[String]) -> String {
    words.join(",")
}

/// A spec's diagnostics: warnings are printed; errors are printed and end the command.
fn parsed<T>(result: Result<(T, Vec<Diagnostic>), Vec<Diagnostic>>) -> anyhow::Result<T> {
    match result {
        Ok((v, warnings)) => {
            print_diagnostics(&warnings);
            Ok(v)
        }
        Err(diags) => {
            print_diagnostics(&diags);
            Err(Reported.into())
        }
    }
}

/// `rxl block-attach DOM DISKSPEC...`.
pub fn block_attach(sim: Option<&Path>, args: &BlockAttachArgs) -> anyhow::Result<ExitCode> {
    let conf = crate::backend::read_host_conf(sim, false)?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let spec = parsed(xlcfg::model::disk_arg(&joined(&args.spec), &cwd))?;
    // A missing image is refused before anything is written, as at create.
    let mut missing = xlcfg::model::check_disk_files(std::slice::from_ref(&spec));
    missing.retain(Diagnostic::is_error);
    if !missing.is_empty() {
        print_diagnostics(&missing);
        return Err(Reported.into());
    }
    // The position in the argument has served its purpose: messages about the device
    // name it by its vdev ("disk xvdb"), not by a line of a config file.
    let spec = xlcfg::model::DiskSpec {
        target: spec
            .target
            .map(|t| xlcfg::model::Located::unplaced(t.value)),
        ..spec
    };
    attach(sim, &conf, &args.domain, NewDevice::Disk(spec), args.json)
}

/// `rxl network-attach DOM [VIFSPEC...]`.
pub fn network_attach(sim: Option<&Path>, args: &NetworkAttachArgs) -> anyhow::Result<ExitCode> {
    let conf = crate::backend::read_host_conf(sim, false)?;
    let spec = parsed(xlcfg::model::vif_arg_with(
        &joined(&args.spec),
        &conf.xl.vif,
    ))?;
    attach(sim, &conf, &args.domain, NewDevice::Vif(spec), args.json)
}

fn attach(
    sim: Option<&Path>,
    conf: &HostConf,
    domain: &str,
    new: NewDevice,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let host = Backend::open(sim)?;
    let dom = resolve(&host, domain)?;
    let opts = host.device_options_for(conf);
    let state = StateDir::new(host.state_dir());
    let info = toolstack::devices::attach(host.hv(), host.xs(), &state, &opts, dom, new)
        .with_context(|| format!("cannot attach the device to domain {dom} ({domain})"))?;
    events::emit_for(host.xs(), &state, dom, Event::attached(&info));
    if as_json {
        print_json(&device_json(dom, &info));
    }
    Ok(ExitCode::SUCCESS)
}

/// `rxl block-detach [-f] DOM VDEV`: VDEV is a name (xvdb) or a devid number (51728).
pub fn block_detach(sim: Option<&Path>, args: &BlockDetachArgs) -> anyhow::Result<ExitCode> {
    let devid = devices::vdev::devid(&args.vdev).map_err(|e| {
        anyhow::anyhow!(
            "{:?} is not a disk: {} (give its vdev, as xvdb, or its devid, as 51728)",
            args.vdev,
            e.reason
        )
    })?;
    let host = Backend::open(sim)?;
    let dom = resolve(&host, &args.domain)?;
    detach(
        &host,
        dom,
        DeviceKind::Vbd,
        devid,
        args.force,
        &format!("disk {}", args.vdev),
        args.json,
    )
}

/// `rxl network-detach DOM DEVID|MAC`: a MAC when it has a ':', as xl decides.
pub fn network_detach(sim: Option<&Path>, args: &NetworkDetachArgs) -> anyhow::Result<ExitCode> {
    let host = Backend::open(sim)?;
    let dom = resolve(&host, &args.domain)?;
    let what = &args.device;
    let devid = if what.contains(':') {
        let mac =
            MacAddr::parse(what).ok_or_else(|| anyhow::anyhow!("{what:?} is not a MAC address"))?;
        let found = toolstack::devices::list(host.xs(), dom)?
            .into_iter()
            .find(|d| {
                d.kind == DeviceKind::Vif && d.mac.as_deref().and_then(MacAddr::parse) == Some(mac)
            });
        match found {
            Some(d) => d.devid,
            None => anyhow::bail!("domain {dom} ({}) has no vif with MAC {mac}", args.domain),
        }
    } else {
        what.parse::<u32>().map_err(|_| {
            anyhow::anyhow!("{what:?} is neither a vif's devid (0, 1, ...) nor a MAC address")
        })?
    };
    detach(
        &host,
        dom,
        DeviceKind::Vif,
        devid,
        false,
        &format!("vif {what}"),
        args.json,
    )
}

/// Detach `kind`/`devid` of `dom` (`label` names it in messages).
fn detach(
    host: &Backend,
    dom: DomId,
    kind: DeviceKind,
    devid: u32,
    force: bool,
    label: &str,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let opts = host.device_options()?;
    let state = StateDir::new(host.state_dir());
    let found =
        toolstack::devices::detach_recorded(host.xs(), &state, &opts, dom, kind, devid, force)
            .with_context(|| format!("cannot detach {label} from domain {dom}"))?;
    if !found {
        anyhow::bail!("domain {dom} has no {label} (no {kind} with devid {devid})");
    }
    events::emit_for(host.xs(), &state, dom, Event::detached(kind, devid));
    if as_json {
        print_json(
            &json!({"domid": dom.0, "kind": kind.as_str(), "devid": devid, "detached": true}),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `rxl block-list DOM...` / `rxl network-list DOM...`: every domain is looked up first,
/// so an unknown one fails the command before anything is printed.
pub fn list(host: &Backend, args: &DeviceListArgs, kind: DeviceKind) -> anyhow::Result<ExitCode> {
    let mut doms = Vec::new();
    for spec in &args.domains {
        doms.push(resolve(host, spec)?);
    }
    let mut rows = Vec::new();
    for dom in doms {
        let devs = toolstack::devices::list(host.xs(), dom)
            .with_context(|| format!("cannot list the devices of domain {dom}"))?;
        rows.extend(
            devs.into_iter()
                .filter(|d| d.kind == kind)
                .map(|d| (dom, d)),
        );
    }
    if args.json {
        let items: Vec<serde_json::Value> =
            rows.iter().map(|(dom, d)| device_json(*dom, d)).collect();
        print_json(&serde_json::Value::Array(items));
    } else {
        let text = match kind {
            DeviceKind::Vbd => block_list_text(&rows),
            DeviceKind::Vif => network_list_text(&rows),
        };
        out(format_args!("{text}"));
    }
    Ok(ExitCode::SUCCESS)
}

/// One device as `--json` shows it: the toolstack's fields and the guest's domid.
fn device_json(dom: DomId, d: &DeviceInfo) -> serde_json::Value {
    let mut v = serde_json::to_value(d).unwrap_or(serde_json::Value::Null);
    if let Some(map) = v.as_object_mut() {
        map.insert("domid".into(), json!(dom.0));
    }
    v
}

/// A number xl prints with `%d`: what libxl reads from xenstore, -1 when absent.
fn num<T: Into<i64>>(v: Option<T>) -> i64 {
    v.map_or(-1, Into::into)
}

/// xl block-list's table (tools/xl/xl_block.c): Vdev is the devid, BE the backend's
/// domid, handle the guest's domid, state the frontend's state.
pub fn block_list_text(rows: &[(DomId, DeviceInfo)]) -> String {
    let mut s = format!(
        "{:<5} {:<3} {:<6} {:<5} {:<6} {:<8} {:<30}\n",
        "Vdev", "BE", "handle", "state", "evt-ch", "ring-ref", "BE-path"
    );
    for (dom, d) in rows {
        let _ = writeln!(
            s,
            "{:<5} {:<3} {:<6} {:<5} {:<6} {:<8} {:<30}",
            d.devid,
            d.backend_domid.0,
            dom.0,
            num(d.frontend_state),
            num(d.event_channel),
            num(d.ring_ref),
            d.backend
        );
    }
    s
}

/// xl network-list's table (tools/xl/xl_nic.c): Idx and handle are the devid, state the
/// frontend's state.
pub fn network_list_text(rows: &[(DomId, DeviceInfo)]) -> String {
    let mut s = format!(
        "{:<3} {:<2} {:<17} {:<6} {:<5} {:<6} {:>5}/{:<5} {:<30}\n",
        "Idx", "BE", "Mac Addr.", "handle", "state", "evt-ch", "tx-", "rx-ring-ref", "BE-path"
    );
    for (_, d) in rows {
        let mac = d
            .mac
            .as_deref()
            .and_then(MacAddr::parse)
            .unwrap_or(MacAddr([0; 6]));
        let _ = writeln!(
            s,
            "{:<3} {:<2} {mac}{:>6} {:>5} {:>6} {:>5}/{:<11} {:<30}",
            d.devid,
            d.backend_domid.0,
            d.devid,
            num(d.frontend_state),
            num(d.event_channel),
            num(d.tx_ring_ref),
            num(d.rx_ring_ref),
            d.backend
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vbd(devid: u32, state: Option<u8>, evtch: Option<u32>, rref: Option<u32>) -> DeviceInfo {
        DeviceInfo {
            kind: DeviceKind::Vbd,
            devid,
            backend_domid: DomId::DOM0,
            backend: format!("/local/domain/0/backend/vbd/1/{devid}"),
            frontend: format!("/local/domain/1/device/vbd/{devid}"),
            backend_state: Some(4),
            frontend_state: state,
            event_channel: evtch,
            ring_ref: rref,
            tx_ring_ref: None,
            rx_ring_ref: None,
            vdev: Some("xvda".into()),
            target: Some("/tmp/d.img".into()),
            mode: Some("w".into()),
            node: Some("/dev/loop0".into()),
            mac: None,
            bridge: None,
            hotplug_status: Some("connected".into()),
        }
    }

    /// The rows xl printed in the rig (docs/e2e.md, "xl block-list dev-xl").
    #[test]
    fn block_list_matches_xl_columns() {
        let rows = vec![
            (DomId(1), vbd(51712, Some(4), Some(7), Some(8))),
            (DomId(1), vbd(51728, Some(4), Some(10), Some(532))),
            (DomId(1), vbd(51744, None, None, None)),
        ];
        assert_eq!(
            block_list_text(&rows),
            "Vdev  BE  handle state evt-ch ring-ref BE-path                       \n\
             51712 0   1      4     7      8        /local/domain/0/backend/vbd/1/51712\n\
             51728 0   1      4     10     532      /local/domain/0/backend/vbd/1/51728\n\
             51744 0   1      -1    -1     -1       /local/domain/0/backend/vbd/1/51744\n"
        );
    }

    /// The row xl printed in the rig (docs/e2e.md, "xl network-list dev-xl").
    #[test]
    fn network_list_matches_xl_columns() {
        let mut d = vbd(0, Some(4), None, None);
        d.kind = DeviceKind::Vif;
        d.backend = "/local/domain/0/backend/vif/1/0".into();
        d.mac = Some("00:16:3e:5a:00:01".into());
        d.tx_ring_ref = Some(522);
        d.rx_ring_ref = Some(523);
        assert_eq!(
            network_list_text(&[(DomId(1), d)]),
            "Idx BE Mac Addr.         handle state evt-ch   tx-/rx-ring-ref BE-path                       \n\
             0   0  00:16:3e:5a:00:01     0     4     -1   522/523         /local/domain/0/backend/vif/1/0\n"
        );
    }
}
