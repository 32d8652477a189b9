//! The name check of create (`NameIndex::find`) on the simulated host, with 1, 100 and
//! 1000 domains rxl created already present, and the parts it is made of:
//! - `find_free`: the whole check for a name no domain has (the case every successful
//!   create pays);
//! - `find_taken`: a name the index gives to a live domain;
//! - `list_local_domain`: the xenstore `directory` of /local/domain alone.
//!
//! The hosts are filled with domains made by the raw calls a create starts with (Xen's
//! domain, its xenstore name, an index entry and a record), not full creates, so a host of
//! 1000 domains takes seconds to build. Under `cargo test --benches` (no `--bench`
//! argument) each bench runs once on hosts of at most 10 domains.

use std::sync::Mutex;

use divan::Bencher;
use sim::{HostConfig, SimHost};
use toolstack::names::NameIndex;
use toolstack::state::StateDir;
use xen_host::{CreateDomain, Store, TxId};

/// Domains present, besides Domain-0.
const EXISTING: [usize; 3] = [1, 100, 1000];

/// A host with its rxl state directory.
struct Bed {
    dir: tempfile::TempDir,
    host: SimHost,
    index: NameIndex,
}

/// Hosts built once per domain count and shared by the benches.
static BEDS: Mutex<Vec<(usize, &'static Bed)>> = Mutex::new(Vec::new());

fn main() {
    divan::main();
    let beds = BEDS.lock().unwrap_or_else(|e| e.into_inner());
    for (_, bed) in beds.iter() {
        let _ = std::fs::remove_dir_all(bed.dir.path());
    }
}

/// All of `existing` under `cargo bench`; at most 10 under `cargo test --benches`.
fn domains_for(existing: usize) -> usize {
    if std::env::args().any(|a| a == "--bench") {
        existing
    } else {
        existing.min(10)
    }
}

fn build(n: usize) -> Result<Bed, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let host = SimHost::create(&dir.path().join("host"), HostConfig::default())
        .map_err(|e| format!("simulated host: {e}"))?;
    let state = dir.path().join("rxl");
    let index = NameIndex::new(&state);
    let records = StateDir::new(state);
    let request = CreateDomain::pvh([3; 16], 1);
    for i in 0..n {
        let name = format!("filler-{i}");
        let dom = xen_host::Hypervisor::create_domain(&host, &request)
            .map_err(|e| format!("create domain {i}: {e}"))?;
        host.write(
            TxId::NONE,
            &format!("/local/domain/{dom}/name"),
            name.as_bytes(),
        )
        .map_err(|e| format!("name of domain {dom}: {e}"))?;
        index
            .insert(&name, dom)
            .map_err(|e| format!("index {name}: {e}"))?;
        records
            .save(dom, &name)
            .map_err(|e| format!("record of {dom}: {e}"))?;
    }
    Ok(Bed { dir, host, index })
}

fn bed(existing: usize) -> &'static Bed {
    let n = domains_for(existing);
    let mut beds = BEDS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&(_, bed)) = beds.iter().find(|(m, _)| *m == n) {
        return bed;
    }
    let bed: &'static Bed = Box::leak(Box::new(build(n).expect("host with domains")));
    beds.push((n, bed));
    bed
}

#[divan::bench(args = EXISTING)]
fn find_free(bencher: Bencher<'_, '_>, existing: usize) {
    let b = bed(existing);
    bencher.bench(|| {
        let found = b.index.find(&b.host, &b.host, "newcomer").expect("find");
        assert_eq!(found, None);
    });
}

#[divan::bench(args = EXISTING)]
fn find_taken(bencher: Bencher<'_, '_>, existing: usize) {
    let b = bed(existing);
    bencher.bench(|| {
        let found = b.index.find(&b.host, &b.host, "filler-0").expect("find");
        assert!(found.is_some());
    });
}

#[divan::bench(args = EXISTING)]
fn list_local_domain(bencher: Bencher<'_, '_>, existing: usize) {
    let b = bed(existing);
    let want = domains_for(existing) + 1;
    bencher.bench(|| {
        let ids = b
            .host
            .directory(TxId::NONE, "/local/domain")
            .expect("directory")
            .unwrap_or_default();
        assert_eq!(ids.len(), want);
    });
}
