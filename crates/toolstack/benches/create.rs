//! Wall time of rxl's create and list on the simulated host (`sim::SimHost`, a state
//! directory on the local file system):
//! - create of 32 MiB, 1 GiB and 16 GiB guests on a fresh host, PVH and PV;
//! - create of a 32 MiB guest with 1, 100 and 1000 domains already present;
//! - `domains::list` with 1, 100 and 1000 domains present.
//!
//! Each create sample is one `toolstack::launch` (plan and create); the domain is destroyed
//! after the sample is measured, so the host never fills. The hypercall counts, per-step
//! times and peak memory of the same creates are printed by the `footprint` bench.
//!
//! Under `cargo test --benches` each bench runs once, on hosts of at most 10 domains.

mod common;

use common::{config, pv_config, Bed, Guest, EXISTING, HOST_MIB, SIZES_MIB};
use std::sync::Mutex;

use divan::Bencher;

/// Hosts holding domains, built once (1000 creates take a while) and shared by the
/// benches that need them; their directories are removed when the benches are done.
static POPULATED: Mutex<Vec<(usize, &'static Bed)>> = Mutex::new(Vec::new());

fn main() {
    divan::main();
    let beds = POPULATED.lock().unwrap_or_else(|e| e.into_inner());
    for (_, bed) in beds.iter() {
        let _ = std::fs::remove_dir_all(bed.dir.path());
    }
}

/// Domains of a smoke-test host.
const SMOKE_DOMAINS: usize = 10;

/// The domains a host for the `existing` argument holds: all of them under `cargo bench`;
/// at most [`SMOKE_DOMAINS`] under `cargo test --benches` (no `--bench` argument), where
/// each bench runs once to show it works and 1000 unoptimised creates would take minutes.
fn domains_for(existing: usize) -> usize {
    if std::env::args().any(|a| a == "--bench") {
        existing
    } else {
        existing.min(SMOKE_DOMAINS)
    }
}

/// The shared host for the `existing` argument, holding [`domains_for`] domains besides
/// Domain-0 (each bench leaves it as it found it).
fn populated(existing: usize) -> &'static Bed {
    let mut beds = POPULATED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&(_, bed)) = beds.iter().find(|(n, _)| *n == existing) {
        return bed;
    }
    let bed: &'static Bed = Box::leak(Box::new(
        Bed::with_domains(domains_for(existing)).expect("host with domains"),
    ));
    beds.push((existing, bed));
    bed
}

/// Plan and create a guest of the given size (MiB), then destroy it outside the timing.
#[divan::bench(args = SIZES_MIB, sample_size = 1, sample_count = 20)]
fn create_by_size(bencher: Bencher<'_, '_>, memory_mib: u64) {
    let bed = Bed::new(HOST_MIB).expect("fresh simulated host");
    let cfg = config("sized", memory_mib).expect("guest config");
    bencher.bench_local(|| Guest {
        bed: &bed,
        created: bed.create(&cfg).expect("create"),
    });
}

/// Plan and create a PV guest (the synthetic PV kernel) of the given size (MiB), then
/// destroy it outside the timing.
#[divan::bench(args = SIZES_MIB, sample_size = 1, sample_count = 10)]
fn create_pv_by_size(bencher: Bencher<'_, '_>, memory_mib: u64) {
    let bed = Bed::new(HOST_MIB).expect("fresh simulated host");
    let cfg = pv_config("pvsized", memory_mib).expect("guest config");
    bencher.bench_local(|| Guest {
        bed: &bed,
        created: bed.create(&cfg).expect("create"),
    });
}

/// Plan and create a 32 MiB guest on a host already holding `existing` domains.
#[divan::bench(args = EXISTING, sample_size = 1, sample_count = 20)]
fn create_with_existing(bencher: Bencher<'_, '_>, existing: usize) {
    let bed = populated(existing);
    let cfg = config("newcomer", 32).expect("guest config");
    bencher.bench_local(|| Guest {
        bed,
        created: bed.create(&cfg).expect("create"),
    });
}

/// `domains::list` (Xen's domain list and each domain's xenstore name) with `existing`
/// domains besides Domain-0.
#[divan::bench(args = EXISTING, sample_count = 20)]
fn list(bencher: Bencher<'_, '_>, existing: usize) {
    let bed = populated(existing);
    let present = domains_for(existing);
    bencher.bench_local(|| {
        let rows = toolstack::domains::list(&bed.host, &bed.host).expect("list");
        assert_eq!(rows.len(), present + 1, "Domain-0 and the fillers");
        rows
    });
}
