//! `rxl info`, `rxl list`, `rxl domid`, `rxl domname`.

use std::fmt::Write as _;
use std::process::ExitCode;

use serde_json::json;
use toolstack::domains::{self, DomainRow};
use xen_host::{PhysInfo, VersionInfo};

use crate::backend::Backend;
use crate::cli::ListArgs;
use crate::report::{out, print_json};

/// `rxl info [--json]`.
pub fn info(host: &Backend, json: bool) -> anyhow::Result<ExitCode> {
    let version = host.hv().version()?;
    let phys = host.hv().physinfo()?;
    if json {
        print_json(&info_json(&version, &phys));
    } else {
        out(format_args!("{}", info_text(&version, &phys)));
    }
    Ok(ExitCode::SUCCESS)
}

const PAGES_PER_MIB: u64 = 256;

fn virt_caps(phys: &PhysInfo) -> String {
    let c = &phys.caps;
    let mut s = String::new();
    for (on, name) in [
        (c.pv, "pv"),
        (c.hvm, "hvm"),
        (c.hap, "hap"),
        (c.shadow, "shadow"),
        (c.iommu_hap_pt_share, "iommu_hap_pt_share"),
        (c.gnttab_v1, "gnttab-v1"),
        (c.gnttab_v2, "gnttab-v2"),
    ] {
        if on {
            s.push(' ');
            s.push_str(name);
        }
    }
    s
}

fn free_mib(phys: &PhysInfo) -> u64 {
    phys.free_pages.saturating_sub(phys.outstanding_pages) / PAGES_PER_MIB
}

/// xl info's key names and values, in xl's order (the part rxl knows).
fn info_text(v: &VersionInfo, p: &PhysInfo) -> String {
    let mut hw = p.hw_cap.clone();
    hw.resize(8, 0);
    let hw_caps: Vec<String> = hw.iter().map(|w| format!("{w:08x}")).collect();
    let rows: Vec<(&str, String)> = vec![
        ("nr_cpus", p.nr_cpus.to_string()),
        ("max_cpu_id", p.max_cpu_id.to_string()),
        ("nr_nodes", p.nr_nodes.to_string()),
        ("cores_per_socket", p.cores_per_socket.to_string()),
        ("threads_per_core", p.threads_per_core.to_string()),
        (
            "cpu_mhz",
            format!("{}.{:03}", p.cpu_khz / 1000, p.cpu_khz % 1000),
        ),
        ("hw_caps", hw_caps.join(":")),
        ("total_memory", (p.total_pages / PAGES_PER_MIB).to_string()),
        ("free_memory", free_mib(p).to_string()),
        (
            "outstanding_claims",
            (p.outstanding_pages / PAGES_PER_MIB).to_string(),
        ),
        ("xen_major", v.major.to_string()),
        ("xen_minor", v.minor.to_string()),
        ("xen_extra", v.extra.clone()),
        ("xen_version", format!("{}.{}{}", v.major, v.minor, v.extra)),
        ("xen_caps", v.capabilities.clone()),
        ("xen_pagesize", "4096".to_string()),
    ];
    let mut out = String::new();
    for (key, value) in rows {
        let _ = writeln!(out, "{key:<23}: {value}");
        if key == "hw_caps" {
            let _ = writeln!(out, "{:<23}:{}", "virt_caps", virt_caps(p));
        }
    }
    out
}

fn info_json(v: &VersionInfo, p: &PhysInfo) -> serde_json::Value {
    json!({
        "xen_major": v.major,
        "xen_minor": v.minor,
        "xen_extra": v.extra,
        "xen_version": format!("{}.{}{}", v.major, v.minor, v.extra),
        "xen_caps": v.capabilities,
        "nr_cpus": p.nr_cpus,
        "max_cpu_id": p.max_cpu_id,
        "nr_nodes": p.nr_nodes,
        "cores_per_socket": p.cores_per_socket,
        "threads_per_core": p.threads_per_core,
        "cpu_mhz": p.cpu_khz / 1000,
        "virt_caps": virt_caps(p).trim(),
        "total_memory": p.total_pages / PAGES_PER_MIB,
        "free_memory": free_mib(p),
        "outstanding_claims": p.outstanding_pages / PAGES_PER_MIB,
        "domctl_interface_version": v.domctl_interface,
        "sysctl_interface_version": v.sysctl_interface,
    })
}

/// `rxl list`.
pub fn list(host: &Backend, args: &ListArgs) -> anyhow::Result<ExitCode> {
    let mut rows = domains::list(host.hv(), host.xs())?
        .into_iter()
        .map(|r| {
            let incomplete =
                toolstack::create::is_incomplete_domain(host.xs(), &host.state_dir(), &r.info)?;
            Ok((r, incomplete))
        })
        .collect::<Result<Vec<(DomainRow, bool)>, xen_host::Error>>()?;
    if !args.domains.is_empty() {
        let mut wanted = Vec::new();
        for spec in &args.domains {
            wanted.push(domains::resolve(host.hv(), host.xs(), spec)?);
        }
        rows.retain(|(r, _)| wanted.contains(&r.info.domid));
    }
    if args.json || args.long {
        let items: Vec<serde_json::Value> = rows
            .iter()
            .map(|(r, incomplete)| {
                let mut v = row_json(r, *incomplete);
                if args.long {
                    if let Some(cfg) = host.stored_config(r.info.domid) {
                        v["config"] = cfg;
                    }
                }
                v
            })
            .collect();
        print_json(&serde_json::Value::Array(items));
    } else {
        out(format_args!("{}", list_text(&rows, args.verbose)));
    }
    Ok(ExitCode::SUCCESS)
}

fn row_json(r: &DomainRow, incomplete: bool) -> serde_json::Value {
    json!({
        "domid": r.info.domid.0,
        "name": r.name,
        "uuid": r.uuid(),
        "memory_mib": r.memory_mib(),
        "max_memory_mib": r.info.max_pages / PAGES_PER_MIB,
        "vcpus": r.info.nr_online_vcpus,
        "state": r.info.state_letters(),
        "shutdown_reason": r.info.shutdown_reason(),
        "cpu_time_s": (r.cpu_time_s() * 10.0).round() / 10.0,
        "incomplete": incomplete,
    })
}

/// xl list's table. A create that never finished shows "(incomplete)" after the name.
pub fn list_text(rows: &[(DomainRow, bool)], verbose: bool) -> String {
    let mut out =
        String::from("Name                                        ID   Mem VCPUs\tState\tTime(s)");
    if verbose {
        out.push_str("   UUID                            Reason-Code\tSecurity Label");
    }
    out.push('\n');
    for (r, incomplete) in rows {
        let name = if *incomplete {
            format!("{} (incomplete)", r.display_name())
        } else {
            r.display_name().to_string()
        };
        let _ = write!(
            out,
            "{:<40} {:>5} {:>5} {:>5}     {}  {:>8.1}",
            name,
            r.info.domid.0,
            r.memory_mib(),
            r.info.nr_online_vcpus,
            r.info.state_letters(),
            r.cpu_time_s()
        );
        if verbose {
            let _ = write!(out, " {}", r.uuid());
            if r.info.shutdown {
                let _ = write!(out, " {:>8x}", r.info.shutdown_code);
            } else {
                let _ = write!(out, " {:>8}", "-");
            }
            let _ = write!(out, " {:>16}", "-");
        }
        out.push('\n');
    }
    out
}

/// Print a domain's id and name as JSON, or just the one asked for.
fn print_id_name(id: xen_host::DomId, name: &str, json: bool, text: &str) {
    if json {
        print_json(&json!({"domid": id.0, "name": name}));
    } else {
        out(format_args!("{text}\n"));
    }
}

/// `rxl domid NAME`.
pub fn domid(host: &Backend, name: &str, json: bool) -> anyhow::Result<ExitCode> {
    let mut found = domains::find_by_name(host.hv(), host.xs(), name)?;
    // Mid-restart (after a reboot) the name comes back with the new domain.
    if found.is_none()
        && toolstack::restarts::wait_restarted(&host.state_dir(), name, domains::RESTART_WAIT)?
    {
        found = domains::find_by_name(host.hv(), host.xs(), name)?;
    }
    match found {
        Some(id) => {
            print_id_name(id, name, json, &id.to_string());
            Ok(ExitCode::SUCCESS)
        }
        None => anyhow::bail!("no domain called {name:?}"),
    }
}

/// `rxl domname ID`.
pub fn domname(host: &Backend, id: u16, json: bool) -> anyhow::Result<ExitCode> {
    let dom = xen_host::DomId(id);
    if host.hv().domain_info(dom)?.is_none() {
        anyhow::bail!("no domain with id {id}");
    }
    match domains::name_of(host.xs(), dom)? {
        Some(name) => {
            print_id_name(dom, &name, json, &name);
            Ok(ExitCode::SUCCESS)
        }
        None => anyhow::bail!("domain {id} has no name in xenstore (an interrupted create?)"),
    }
}
