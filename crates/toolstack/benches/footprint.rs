//! What a create costs besides wall time, on the simulated host: hypercalls issued
//! (`Created::hypercalls`), time per step (`Created::steps`), and the peak resident
//! memory of the creating process, for guests of 32 MiB, 1 GiB and 16 GiB and for hosts
//! already holding 1, 100 and 1000 domains. Prints tables; fails if a create fails.
//!
//! Peak memory is measured in a child process (this binary, re-run with
//! `RXL_BENCH_RSS_CHILD=<MiB>`): it builds the host and the config, resets its peak
//! resident set (`5` to `/proc/self/clear_refs`), plans and creates the guest, and reports
//! `VmHWM` against the `VmRSS` it had before the create.
//!
//! Run with `cargo bench -p toolstack --bench footprint`; without `--bench` (as under
//! `cargo test --benches`) it runs the smallest case of each table only.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{config, pv_config, Bed, SetupError, EXISTING, HOST_MIB, SIZES_MIB};

/// The child-process switch of the memory measurement.
const CHILD_ENV: &str = "RXL_BENCH_RSS_CHILD";

/// Creates per host in the scaling table (the median per step is shown).
const RUNS: usize = 7;

fn main() {
    let result = match std::env::var(CHILD_ENV) {
        Ok(mib) => child(&mib),
        Err(_) => parent(std::env::args().any(|a| a == "--bench")),
    };
    if let Err(e) = result {
        eprintln!("footprint: {e}");
        std::process::exit(1);
    }
}

fn parent(full: bool) -> Result<(), SetupError> {
    let sizes: &[u64] = if full { &SIZES_MIB } else { &SIZES_MIB[..1] };
    let existing: &[usize] = if full { &EXISTING } else { &EXISTING[..1] };
    for kind in [Kind::Pvh, Kind::Pv] {
        by_size(kind, sizes)?;
        peak_memory(kind, sizes)?;
    }
    by_existing(existing)
}

/// The guest type measured.
#[derive(Clone, Copy)]
enum Kind {
    /// The assembly PVH test guest.
    Pvh,
    /// The synthetic PV kernel.
    Pv,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Pvh => "pvh",
            Kind::Pv => "pv",
        }
    }

    fn config(self, name: &str, mib: u64) -> Result<xlcfg::model::DomainConfig, SetupError> {
        match self {
            Kind::Pvh => config(name, mib),
            Kind::Pv => pv_config(name, mib),
        }
    }
}

/// One create per size on a fresh host: hypercalls and the slowest steps.
fn by_size(kind: Kind, sizes: &[u64]) -> Result<(), SetupError> {
    println!(
        "## {} create by guest size (fresh {HOST_MIB} MiB host)",
        kind.name()
    );
    println!("| guest | hypercalls | total us | populate memory us | load image us |");
    println!("|---|---|---|---|---|");
    for &mib in sizes {
        let bed = Bed::new(HOST_MIB)?;
        let created = bed.create(&kind.config("sized", mib)?)?;
        let info = xen_host::Hypervisor::domain_info(&bed.host, created.domid)
            .map_err(|e| format!("domain_info: {e}"))?
            .ok_or("the created domain is gone")?;
        if info.tot_pages < mib * 256 {
            return Err(format!(
                "a {mib} MiB guest got only {} pages",
                info.tot_pages
            ));
        }
        let step = |name: &str| {
            created
                .steps
                .iter()
                .filter(|s| s.step.name() == name)
                .map(|s| s.us)
                .sum::<u64>()
        };
        println!(
            "| {} | {} | {} | {} | {} |",
            size_name(mib),
            created.hypercalls,
            created.steps.iter().map(|s| s.us).sum::<u64>(),
            step("populate memory"),
            step("load image"),
        );
        bed.destroy(created.domid)?;
    }
    println!();
    Ok(())
}

/// Peak resident memory of a child process around one create per size.
fn peak_memory(kind: Kind, sizes: &[u64]) -> Result<(), SetupError> {
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    println!(
        "## {}: peak resident memory of the creating process",
        kind.name()
    );
    println!("| guest | RSS before create KiB | peak during create KiB | growth KiB |");
    println!("|---|---|---|---|");
    for &mib in sizes {
        let out = Command::new(&exe)
            .env(CHILD_ENV, format!("{}:{mib}", kind.name()))
            .output()
            .map_err(|e| format!("run {}: {e}", exe.display()))?;
        if !out.status.success() {
            return Err(format!(
                "memory child for {mib} MiB failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let fields: Vec<u64> = text
            .split_whitespace()
            .map(|w| w.parse().map_err(|_| format!("child printed {text:?}")))
            .collect::<Result<_, _>>()?;
        let [before, peak] = fields[..] else {
            return Err(format!("child printed {text:?}, not two numbers"));
        };
        println!(
            "| {} | {before} | {peak} | {} |",
            size_name(mib),
            peak.saturating_sub(before)
        );
    }
    println!();
    Ok(())
}

/// In the child (`KIND:MIB`): the resident set before a create of `MIB` MiB, and its peak
/// during it.
fn child(spec: &str) -> Result<(), SetupError> {
    let bad = || format!("{CHILD_ENV}={spec:?} is not KIND:MiB");
    let (kind, mib) = spec.split_once(':').ok_or_else(bad)?;
    let kind = match kind {
        "pvh" => Kind::Pvh,
        "pv" => Kind::Pv,
        _ => return Err(bad()),
    };
    let mib: u64 = mib.parse().map_err(|_| bad())?;
    let bed = Bed::new(HOST_MIB)?;
    let cfg = kind.config("measured", mib)?;
    let before = status_kib("VmRSS")?;
    std::fs::write("/proc/self/clear_refs", "5")
        .map_err(|e| format!("reset the peak RSS (/proc/self/clear_refs): {e}"))?;
    let created = bed.create(&cfg)?;
    let peak = status_kib("VmHWM")?;
    bed.destroy(created.domid)?;
    println!("{before} {peak}");
    Ok(())
}

/// A `kB` field of /proc/self/status.
fn status_kib(field: &str) -> Result<u64, SetupError> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("/proc/self/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix("kB")?.trim().parse().ok())
        .ok_or_else(|| format!("/proc/self/status has no {field} in kB"))
}

/// One column of the scaling table.
struct Column {
    /// Domains present before the create.
    existing: usize,
    /// Step index -> (step name, median us).
    medians: BTreeMap<usize, (String, u64)>,
    /// Hypercalls of the last create.
    calls: u64,
    /// Median us of `Hypervisor::list_domains` alone on the same host.
    list_domains_us: u64,
}

/// Median time per step of a 32 MiB create, for each number of domains present.
fn by_existing(existing: &[usize]) -> Result<(), SetupError> {
    let mut columns: Vec<Column> = Vec::new();
    for &n in existing {
        let bed = Bed::with_domains(n)?;
        let cfg = config("newcomer", 32)?;
        let mut per_step: BTreeMap<usize, (String, Vec<u64>)> = BTreeMap::new();
        let mut calls = 0;
        for _ in 0..RUNS {
            let created = bed.create(&cfg)?;
            calls = created.hypercalls;
            for (i, s) in created.steps.iter().enumerate() {
                per_step
                    .entry(i)
                    .or_insert_with(|| (s.step.name().to_string(), Vec::new()))
                    .1
                    .push(s.us);
            }
            bed.destroy(created.domid)?;
        }
        let medians = per_step
            .into_iter()
            .map(|(i, (name, mut v))| {
                v.sort_unstable();
                let mid = v.get(v.len() / 2).copied().unwrap_or(0);
                (i, (name, mid))
            })
            .collect();
        let mut list_us: Vec<u64> = Vec::new();
        for _ in 0..RUNS {
            let t = std::time::Instant::now();
            let infos = xen_host::Hypervisor::list_domains(&bed.host)
                .map_err(|e| format!("list_domains: {e}"))?;
            list_us.push(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
            if infos.len() != n + 1 {
                return Err(format!("{} domains listed, {} present", infos.len(), n + 1));
            }
        }
        list_us.sort_unstable();
        columns.push(Column {
            existing: n,
            medians,
            calls,
            list_domains_us: list_us.get(list_us.len() / 2).copied().unwrap_or(0),
        });
    }
    println!("## median us per step of a 32 MiB create, by domains already present ({RUNS} runs)");
    let head: Vec<String> = columns.iter().map(|c| c.existing.to_string()).collect();
    println!("| step | {} |", head.join(" | "));
    println!("|---|{}", "---|".repeat(columns.len()));
    let steps = columns.first().map(|c| c.medians.len()).unwrap_or(0);
    for i in 0..steps {
        let name = columns
            .first()
            .and_then(|c| c.medians.get(&i))
            .map(|(n, _)| n.as_str())
            .unwrap_or("?");
        let cells: Vec<String> = columns
            .iter()
            .map(|c| {
                c.medians
                    .get(&i)
                    .map_or("-".into(), |(_, us)| us.to_string())
            })
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    let totals: Vec<String> = columns
        .iter()
        .map(|c| {
            c.medians
                .values()
                .map(|(_, us)| us)
                .sum::<u64>()
                .to_string()
        })
        .collect();
    println!("| total (sum of medians) | {} |", totals.join(" | "));
    let calls: Vec<String> = columns.iter().map(|c| c.calls.to_string()).collect();
    println!("| hypercalls | {} |", calls.join(" | "));
    let lists: Vec<String> = columns
        .iter()
        .map(|c| c.list_domains_us.to_string())
        .collect();
    println!(
        "| list_domains alone (not a step) | {} |",
        lists.join(" | ")
    );
    println!();
    Ok(())
}

/// "32 MiB", "1 GiB", "16 GiB".
fn size_name(mib: u64) -> String {
    if mib >= 1024 && mib % 1024 == 0 {
        format!("{} GiB", mib / 1024)
    } else {
        format!("{mib} MiB")
    }
}
