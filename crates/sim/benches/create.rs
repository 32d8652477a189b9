//! Cost of a domain create and a domain list against a simulated host that already
//! holds 1, 100 or 1000 domains. Both must stay flat (create) or linear (list) in the
//! number of domains: every operation touches only the files it concerns.

use divan::Bencher;
use sim::{HostConfig, SimHost};
use xen_host::{CreateDomain, DomId, Gfn, Hypervisor, Store, TxId};

fn main() {
    divan::main();
}

const GIB_PAGES: u64 = 262_144;

fn cfg() -> CreateDomain {
    CreateDomain::pvh([0x5a; 16], 1)
}

/// The 40 nodes libxl-like creation writes for one domain.
fn nodes(d: DomId) -> Vec<(String, String)> {
    let home = format!("/local/domain/{d}");
    let vm = format!("/vm/5a5a5a5a-5a5a-5a5a-5a5a-{:012x}", d.0);
    let back = format!("/local/domain/0/backend/console/{d}/0");
    let mut out = vec![
        (format!("{home}/name"), format!("guest-{d}")),
        (format!("{home}/domid"), d.to_string()),
        (format!("{home}/vm"), vm.clone()),
        (format!("{vm}/name"), format!("guest-{d}")),
        (format!("{vm}/uuid"), "5a5a".into()),
        (format!("{vm}/start_time"), "0".into()),
        (format!("{home}/memory/static-max"), "1049600".into()),
        (format!("{home}/memory/target"), "1048576".into()),
        (format!("{home}/memory/videoram"), "-1".into()),
        (format!("{home}/store/port"), "1".into()),
        (format!("{home}/store/ring-ref"), "1044476".into()),
        (format!("{home}/console/backend-id"), "0".into()),
        (format!("{home}/console/limit"), "1048576".into()),
        (format!("{home}/console/type"), "xenconsoled".into()),
        (format!("{home}/console/output"), "pty".into()),
        (format!("{home}/console/tty"), String::new()),
        (format!("{home}/console/port"), "2".into()),
        (format!("{home}/console/ring-ref"), "1044479".into()),
        (format!("{home}/console/backend"), back.clone()),
        (format!("{back}/frontend-id"), d.to_string()),
        (format!("{back}/online"), "1".into()),
        (format!("{back}/state"), "1".into()),
        (format!("{back}/protocol"), "vt100".into()),
        (format!("{back}/frontend"), format!("{home}/console")),
        (format!("{home}/control/shutdown"), String::new()),
        (format!("{home}/control/feature-poweroff"), "1".into()),
        (format!("{home}/control/feature-reboot"), "1".into()),
        (format!("{home}/control/feature-suspend"), String::new()),
        (format!("{home}/control/sysrq"), String::new()),
        (format!("{home}/data"), String::new()),
        (format!("{home}/drivers"), String::new()),
        (format!("{home}/feature"), String::new()),
        (format!("{home}/attr"), String::new()),
        (format!("{home}/error"), String::new()),
        (format!("{home}/device"), String::new()),
        (
            format!("{home}/device/suspend/event-channel"),
            String::new(),
        ),
        (format!("{home}/image/device-model-dead"), String::new()),
    ];
    for i in 0..3 {
        out.push((format!("{home}/cpu/{i}/availability"), "online".into()));
    }
    out
}

/// createdomain, max_mem, populate `extents` extents of order `order`, 40 xenstore
/// writes, unpause.
fn create(h: &SimHost, order: u32, extents: u64) -> DomId {
    let d = h.create_domain(&cfg()).unwrap();
    h.max_mem(d, (extents << order) * 4 + 1024).unwrap();
    let gfns: Vec<Gfn> = (0..extents).map(|i| Gfn(i << order)).collect();
    assert_eq!(
        h.populate_physmap(d, order, &gfns).unwrap(),
        gfns.len(),
        "host out of memory"
    );
    for (path, value) in nodes(d) {
        h.write(TxId::NONE, &path, value.as_bytes()).unwrap();
    }
    h.unpause(d).unwrap();
    d
}

/// A host holding `n` domains besides Domain-0.
fn host_with(n: usize) -> (tempfile::TempDir, SimHost) {
    let dir = tempfile::tempdir().unwrap();
    let h = SimHost::create(
        dir.path(),
        HostConfig {
            total_mib: 65536,
            ..HostConfig::default()
        },
    )
    .unwrap();
    for _ in 0..n {
        create(&h, 9, 1);
    }
    (dir, h)
}

/// Destroys the created domain and its nodes once the sample is measured.
struct Created<'a> {
    host: &'a SimHost,
    dom: DomId,
}

impl Drop for Created<'_> {
    fn drop(&mut self) {
        let _ = self.host.destroy(self.dom);
        let _ = self
            .host
            .rm(TxId::NONE, &format!("/local/domain/{}", self.dom));
        let _ = self.host.rm(
            TxId::NONE,
            &format!("/local/domain/0/backend/console/{}", self.dom),
        );
    }
}

#[divan::bench(args = [1, 100, 1000], sample_size = 1, sample_count = 40)]
fn create_1gib(bencher: Bencher<'_, '_>, existing: usize) {
    let (_dir, h) = host_with(existing);
    bencher.bench_local(|| Created {
        host: &h,
        dom: create(&h, 18, GIB_PAGES >> 18),
    });
}

#[divan::bench(args = [1, 100, 1000], sample_count = 20)]
fn list(bencher: Bencher<'_, '_>, existing: usize) {
    let (_dir, h) = host_with(existing);
    bencher.bench_local(|| {
        let l = h.list_domains().unwrap();
        assert_eq!(l.len(), existing + 1);
        l
    });
}
