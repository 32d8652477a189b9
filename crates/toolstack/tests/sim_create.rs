//! Creating, running and failing PVH domains on the simulated host.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use pvh::FirmwareSearch;
use sim::{HostConfig, SimHost};
use toolstack::create::{CreateOptions, Record, Step};
use toolstack::state::StateDir;
use xen_host::{DomId, Hypervisor, Store, TxId};
use xlcfg::model::DomainConfig;

/// The assembly test guest, built once per test process.
fn hello_elf() -> &'static Path {
    static ELF: OnceLock<PathBuf> = OnceLock::new();
    ELF.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rxl-toolstack-guest-{}", std::process::id()));
        pvh::testguest::build(&dir).expect("build the test guest (needs GNU as and ld)")
    })
}

fn config(name: &str, extra: &str) -> DomainConfig {
    let dir = hello_elf().parent().expect("guest dir").to_path_buf();
    let text = format!(
        "name = \"{name}\"\ntype = \"pvh\"\nmemory = 32\nvcpus = 2\nkernel = \"hello.elf\"\n\
         cmdline = \"hello world\"\n{extra}"
    );
    let parsed = xlcfg::parse::parse_str("test.cfg", &text);
    assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics);
    xlcfg::model::build(&parsed.settings, &dir)
        .expect("valid config")
        .config
}

fn host(dir: &Path) -> SimHost {
    SimHost::create(dir, HostConfig::default()).expect("simulated host")
}

fn opts(dir: &Path) -> CreateOptions {
    opts_with(dir, "")
}

/// Options whose simulated hotplug has the faults `faults` (the `RXL_SIM_FAIL` syntax),
/// with short device timeouts so that a stuck backend fails fast.
fn opts_with(dir: &Path, faults: &str) -> CreateOptions {
    let hotplug = sim::SimHotplug::open(dir)
        .and_then(|h| h.with_faults(faults))
        .expect("simulated hotplug");
    let mut devices =
        toolstack::devices::DeviceOptions::with(std::sync::Arc::new(hotplug), dir.join("rxl/log"));
    devices.timeouts = toolstack::devices::Timeouts {
        init: Duration::from_millis(300),
        hotplug: Duration::from_secs(5),
        destroy: Duration::from_millis(300),
    };
    CreateOptions {
        paused: false,
        state_dir: dir.join("rxl"),
        backend_domid: DomId::DOM0,
        devices,
        bootloader: toolstack::bootloader::BootloaderOptions::new(
            &dir.join("rxl"),
            Some(dir.join("rxl/log")),
        ),
    }
}

/// Bootloader options for a config that has none.
fn no_bootloader() -> toolstack::bootloader::BootloaderOptions {
    toolstack::bootloader::BootloaderOptions::new(Path::new("/nonexistent"), None)
}

/// An image file for a guest's disk, in `dir`.
fn image(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, vec![0u8; 4096]).expect("image");
    p
}

/// A config with one disk (an image in `dir`) and one vif.
fn config_with_devices(name: &str, dir: &Path) -> DomainConfig {
    let img = image(dir, &format!("{name}.img"));
    config(
        name,
        &format!(
            "disk = [ '{},raw,xvda,w' ]\nvif = [ 'mac=00:16:3e:0a:0b:0c' ]\n",
            img.display()
        ),
    )
}

/// Everything the host knows: domains, xenstore nodes, rxl records.
fn snapshot(host: &SimHost, state: &Path) -> Vec<String> {
    let mut out: Vec<String> = host
        .domain_ids()
        .expect("domain ids")
        .iter()
        .map(|d| format!("domain {d}"))
        .collect();
    for (k, v) in host.xs_dump("/").expect("xs dump") {
        out.push(format!("{k}={v}"));
    }
    if let Ok(entries) = std::fs::read_dir(state) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") {
                out.push(format!("record {name}"));
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(state.join("names")) {
        for e in entries.flatten() {
            out.push(format!("name index {}", e.file_name().to_string_lossy()));
        }
    }
    for l in host.loop_devices().expect("loop devices") {
        out.push(format!("loop device {l:?}"));
    }
    for (bridge, port) in host.bridge_ports().expect("bridge ports") {
        out.push(format!("bridge port {bridge} {port}"));
    }
    out
}

/// Host-wide xenstore directories that the first create makes and that stay, empty, as
/// with libxl: they belong to no domain.
const CONTAINERS: [&str; 3] = [
    "/libxl=",
    "/local/domain/0/backend=",
    "/local/domain/0/backend/console=",
];

/// What `after` has that `before` had not (the host-wide containers aside).
fn added(before: &[String], after: &[String]) -> Vec<String> {
    after
        .iter()
        .filter(|x| !before.contains(x) && !CONTAINERS.contains(&x.as_str()))
        .cloned()
        .collect()
}

#[test]
fn create_builds_a_running_domain() {
    let tmp = tempfile::tempdir().expect("tmp");
    let host = host(tmp.path());
    let before = snapshot(&host, &tmp.path().join("rxl"));
    let cfg = config("hello", "");
    let plan =
        toolstack::plan_for(&cfg, &FirmwareSearch::default(), &no_bootloader()).expect("plan");
    let created =
        toolstack::create::create(&host, &host, &cfg, &plan, &opts(tmp.path())).expect("create");
    let guest_plan = plan;
    let plan = guest_plan.as_pvh().expect("a PVH plan");
    let dom = created.domid;
    assert_ne!(dom, DomId::DOM0);

    let info = host.domain_info(dom).expect("info").expect("domain exists");
    assert!(!info.paused, "unpaused after create");
    assert!(info.hvm && info.hap);
    // 32 MiB of RAM plus the special and ACPI pages.
    assert!(info.tot_pages >= 32 * 256, "tot_pages {}", info.tot_pages);
    assert_eq!(info.max_vcpu_id + 1, 2);

    let read = |p: &str| {
        xen_host::read_string(&host, TxId::NONE, p)
            .expect("xs read")
            .unwrap_or_default()
    };
    assert_eq!(read(&format!("/local/domain/{dom}/name")), "hello");
    assert_eq!(
        read(&format!("/local/domain/{dom}/console/type")),
        "xenconsoled"
    );
    assert_eq!(
        read(&format!("/local/domain/{dom}/cpu/1/availability")),
        "online"
    );
    assert_eq!(read(&format!("/local/domain/{dom}/memory/target")), "32768");
    assert!(host.is_domain_introduced(dom).expect("introduced"));
    assert_eq!(
        read(&toolstack::create::building_marker(dom)),
        "",
        "marker removed"
    );

    // The guest's memory holds what the plan says: start_info magic, the cmdline.
    let si = host
        .read_guest(dom, plan.start_info_paddr, 8)
        .expect("read start_info");
    assert_eq!(
        u32::from_le_bytes([si[0], si[1], si[2], si[3]]),
        0x336e_c578
    );
    let cmd = plan.cmdline_paddr.expect("cmdline placed");
    assert_eq!(
        host.read_guest(dom, cmd, 12).expect("read cmdline"),
        b"hello world\0"
    );
    for w in &plan.writes {
        let want = w.data.to_vec().expect("payload");
        let got = host
            .read_guest(dom, w.paddr, want.len())
            .expect("read back");
        assert!(got == want, "guest memory differs for {}", w.what);
    }

    // Grant entries for the console (0) and xenstore (1) rings.
    let console = host.grant_entry(dom, 0).expect("grant").expect("entry 0");
    assert_eq!(u64::from(console.frame), plan.special_pages.console);
    let store = host.grant_entry(dom, 1).expect("grant").expect("entry 1");
    assert_eq!(u64::from(store.frame), plan.special_pages.xenstore);
    assert_eq!(host.memory_map(dom).expect("memmap"), plan.memmap);
    assert_eq!(host.evtchn_count(dom).expect("evtchn"), 2);

    // rxl's record holds the resolved config.
    let record: Record = StateDir::new(tmp.path().join("rxl"))
        .load(dom)
        .expect("load")
        .expect("record");
    assert_eq!(record.config, cfg);

    // A second domain with the same name is refused, and leaves nothing.
    let err = toolstack::create::create(&host, &host, &cfg, &guest_plan, &opts(tmp.path()))
        .expect_err("duplicate name");
    assert_eq!(err.step, Step::ReserveName);
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(host.domain_ids().expect("ids").len(), 2);

    toolstack::lifecycle::destroy(
        &host,
        &host,
        &opts(tmp.path()).devices,
        &StateDir::new(tmp.path().join("rxl")),
        dom,
    )
    .expect("destroy");
    assert_eq!(
        added(&before, &snapshot(&host, &tmp.path().join("rxl"))),
        Vec::<String>::new()
    );
}

#[test]
fn paused_create_stays_paused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let host = host(tmp.path());
    let cfg = config("paused", "");
    let mut o = opts(tmp.path());
    o.paused = true;
    let created =
        toolstack::launch(&host, &host, &cfg, &o, &FirmwareSearch::default()).expect("create");
    let info = host
        .domain_info(created.domid)
        .expect("info")
        .expect("exists");
    assert!(info.paused);
}

#[test]
fn too_much_memory_fails_cleanly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let host = host(tmp.path());
    let before = snapshot(&host, &tmp.path().join("rxl"));
    let total = host.host_config().total_mib;
    let cfg = config("huge", &format!("memory = {}\n", total + 1024));
    let err = toolstack::launch(
        &host,
        &host,
        &cfg,
        &opts(tmp.path()),
        &FirmwareSearch::default(),
    )
    .expect_err("more memory than the host has");
    let toolstack::LaunchError::Create(err) = err else {
        panic!("not a create error: {err}")
    };
    assert!(
        matches!(err.step, Step::ClaimMemory | Step::PopulateMemory),
        "{err}"
    );
    assert_eq!(err.errno(), Some(xen_host::Errno::ENOMEM), "{err}");
    assert_eq!(
        added(&before, &snapshot(&host, &tmp.path().join("rxl"))),
        Vec::<String>::new()
    );
}

/// Fail every call of every operation in turn: each failed create names its step and
/// leaves no domain, no xenstore node and no record behind.
#[test]
fn every_failure_leaves_nothing_behind() {
    let images = tempfile::tempdir().expect("images");
    sweep_create_failures(&config_with_devices("victim", images.path()));
}

/// [`sweep_failures`] over creates of `cfg`, planned once.
fn sweep_create_failures(cfg: &DomainConfig) {
    let plan =
        toolstack::plan_for(cfg, &FirmwareSearch::default(), &no_bootloader()).expect("plan");
    sweep_failures(|host, o| {
        toolstack::create::create(host, host, cfg, &plan, o)
            .map(drop)
            .map_err(|e| (e.step.name(), e.to_string()))
    });
}

/// The same sweep with a bootloader, run again by each create (`toolstack::launch`): its
/// private directory goes too.
#[test]
fn every_failure_with_a_bootloader_leaves_nothing_behind() {
    let images = tempfile::tempdir().expect("images");
    let bl = fake_bootloader(images.path(), "fakegrub", &boots("RAMDISK1"));
    let cfg = bootloader_config(
        "victim",
        &bl,
        images.path(),
        "vif = [ 'mac=00:16:3e:0a:0b:0c' ]\n",
    );
    sweep_failures(|host, o| {
        let r = toolstack::launch(host, host, &cfg, o, &FirmwareSearch::default());
        assert_eq!(tree(&o.bootloader.run_dir), Vec::<String>::new());
        match r {
            Ok(_) => Ok(()),
            Err(toolstack::LaunchError::Create(e)) => Err((e.step.name(), e.to_string())),
            Err(e) => panic!("not a create error: {e}"),
        }
    });
}

/// Run `create` on a fresh simulated host with each operation's `nth` call failing, for
/// every `nth` until the create succeeds; every failure must name its step and leave
/// nothing.
fn sweep_failures(create: impl Fn(&SimHost, &CreateOptions) -> Result<(), (&'static str, String)>) {
    let mut failures = 0;
    for op in sim::FAIL_OPS {
        for nth in 1.. {
            let tmp = tempfile::tempdir().expect("tmp");
            let before = snapshot(
                &SimHost::create(tmp.path(), HostConfig::default()).expect("host"),
                &tmp.path().join("rxl"),
            );
            let spec = format!("{op}:{nth}=EIO");
            let host = SimHost::open(tmp.path())
                .expect("host")
                .with_faults(&spec)
                .expect("fault spec");
            let o = opts_with(tmp.path(), &spec);
            match create(&host, &o) {
                Ok(()) => break,
                Err((step, err)) => {
                    failures += 1;
                    let left = added(&before, &snapshot(&host, &tmp.path().join("rxl")));
                    assert!(
                        left.is_empty(),
                        "{op}:{nth} failed at {step}: left {left:?}"
                    );
                    assert!(
                        err.starts_with("create failed at step"),
                        "{op}:{nth}: {err}"
                    );
                }
            }
            assert!(nth < 1000, "{op} never stops failing");
        }
    }
    // At least one failure per step of the build.
    assert!(
        failures > 30,
        "only {failures} injected failures hit the create"
    );
}

#[test]
fn a_restart_holds_the_name_and_lookups_wait_for_it() {
    use std::time::{Duration, Instant};
    use toolstack::restarts;

    let tmp = tempfile::tempdir().expect("tmp");
    let host = host(tmp.path());
    let o = opts(tmp.path());
    let cfg = config("rebooter", "");
    let search = FirmwareSearch::default();
    let first = toolstack::launch(&host, &host, &cfg, &o, &search)
        .expect("create")
        .domid;

    // The guest reboots; the monitor restarts it, and while it does, the name is marked
    // as its own: a create of that name by another process would be refused, and the
    // monitor's own rebuild passes.
    host.shutdown(first, xen_host::ShutdownReason::Reboot)
        .expect("reboot");
    let mut seen = Vec::new();
    let mut rebuilds = 0;
    let mut rebuild = |c: &DomainConfig| -> Result<DomId, toolstack::LaunchError> {
        rebuilds += 1;
        seen.push(restarts::restarting(&o.state_dir, &c.name));
        let dom = toolstack::launch(&host, &host, c, &o, &search)?.domid;
        // The second instance powers off: the monitor then destroys it and ends.
        host.shutdown(dom, xen_host::ShutdownReason::Poweroff)
            .expect("poweroff");
        Ok(dom)
    };
    let outcome = toolstack::monitor::run(&host, &host, &o, first, &mut rebuild).expect("monitor");
    assert_eq!(outcome, toolstack::monitor::Outcome::Gone);
    assert_eq!(rebuilds, 1);
    assert_eq!(
        seen,
        [Some(std::process::id())],
        "marked during the rebuild"
    );
    assert_eq!(
        restarts::restarting(&o.state_dir, "rebooter"),
        None,
        "mark removed"
    );

    // A lookup by name during a restart waits for the new domain instead of failing.
    let mark = restarts::RestartMark::set(&o.state_dir, "rebooter").expect("mark");
    let dir = tmp.path().to_path_buf();
    let state_dir = o.state_dir.clone();
    let t = Instant::now();
    let looker = std::thread::spawn(move || {
        let h = SimHost::open(&dir).expect("open the host");
        toolstack::domains::resolve_waiting(&h, &h, &state_dir, "rebooter")
    });
    std::thread::sleep(Duration::from_millis(300));
    let again = toolstack::launch(&host, &host, &cfg, &o, &search)
        .expect("the restart's create")
        .domid;
    drop(mark);
    let found = looker
        .join()
        .expect("thread")
        .expect("found after the restart");
    assert_eq!(found, again);
    assert!(t.elapsed() >= Duration::from_millis(300));
    // Without a restart, a missing name fails at once.
    let err = toolstack::domains::resolve_waiting(&host, &host, &o.state_dir, "nobody")
        .expect_err("no such domain");
    assert_eq!(err.errno(), Some(xen_host::Errno::ESRCH));
}

/// Runs the monitor of a guest that has already shut down with `reason`, through a handle
/// whose calls fail as `faults` says (rebuilds use that handle too).
fn monitor_with_faults(
    reason: xen_host::ShutdownReason,
    faults: &str,
) -> (
    Result<toolstack::monitor::Outcome, toolstack::monitor::MonitorError>,
    u32,
) {
    let tmp = tempfile::tempdir().expect("tmp");
    let host = host(tmp.path());
    let o = opts(tmp.path());
    let cfg = config("flaky", "");
    let search = FirmwareSearch::default();
    let first = toolstack::launch(&host, &host, &cfg, &o, &search)
        .expect("create")
        .domid;
    host.shutdown(first, reason).expect("shut down");
    let faulty = SimHost::open(tmp.path())
        .expect("open")
        .with_faults(faults)
        .expect("faults");
    let mut rebuilds = 0;
    let mut rebuild = |c: &DomainConfig| -> Result<DomId, toolstack::LaunchError> {
        rebuilds += 1;
        let dom = toolstack::launch(&faulty, &faulty, c, &o, &search)?.domid;
        faulty
            .shutdown(dom, xen_host::ShutdownReason::Poweroff)
            .expect("poweroff");
        Ok(dom)
    };
    let outcome = toolstack::monitor::run(&faulty, &faulty, &o, first, &mut rebuild);
    (outcome, rebuilds)
}

#[test]
fn the_monitor_retries_transient_host_errors() {
    use xen_host::ShutdownReason::{Poweroff, Reboot};
    // Waiting: the domain's info cannot be read twice (busy, then try again).
    let (outcome, _) =
        monitor_with_faults(Poweroff, "getdomaininfo:1=EAGAIN,getdomaininfo:2=EBUSY");
    assert_eq!(outcome.expect("monitor"), toolstack::monitor::Outcome::Gone);
    // Destroying: xenstore's connection drops once.
    let (outcome, _) = monitor_with_faults(Poweroff, "xs_rm:1=ECONNRESET");
    assert_eq!(outcome.expect("monitor"), toolstack::monitor::Outcome::Gone);
    // Restarting: createdomain says EAGAIN once; the failed build leaves nothing, the
    // second one succeeds (and that guest powers off, so the monitor ends).
    let (outcome, rebuilds) = monitor_with_faults(Reboot, "createdomain:1=EAGAIN");
    assert_eq!(outcome.expect("monitor"), toolstack::monitor::Outcome::Gone);
    assert_eq!(rebuilds, 2);
}

#[test]
fn the_monitor_gives_up_on_a_lasting_or_permanent_error() {
    use xen_host::ShutdownReason::Poweroff;
    let spec: Vec<String> = (1..=toolstack::monitor::RETRY_ATTEMPTS)
        .map(|n| format!("getdomaininfo:{n}=EAGAIN"))
        .collect();
    let (outcome, _) = monitor_with_faults(Poweroff, &spec.join(","));
    let e = outcome.expect_err("gives up after the bound");
    assert_eq!(e.errno(), Some(xen_host::Errno::EAGAIN));

    let t = std::time::Instant::now();
    let (outcome, _) = monitor_with_faults(Poweroff, "getdomaininfo:1=EPERM");
    let e = outcome.expect_err("EPERM is not retried");
    assert_eq!(e.errno(), Some(xen_host::Errno::EPERM));
    assert!(!e.is_transient());
    assert!(t.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn a_marker_whose_pid_was_reused_or_is_a_zombie_marks_an_incomplete_create() {
    use toolstack::create::{building_marker, is_incomplete, is_incomplete_domain};
    use toolstack::process::ProcessId;
    let tmp = tempfile::tempdir().expect("tmp");
    let host = host(tmp.path());
    let o = opts(tmp.path());
    let dom = toolstack::launch(
        &host,
        &host,
        &config("marked", ""),
        &o,
        &FirmwareSearch::default(),
    )
    .expect("create")
    .domid;
    assert!(
        !is_incomplete(&host, dom).expect("read"),
        "a finished create"
    );
    let info = host.domain_info(dom).expect("info").expect("exists");
    assert!(!is_incomplete_domain(&host, &o.state_dir, &info).expect("read"));

    let me = ProcessId::current();
    let mark = |text: String| {
        host.write(TxId::NONE, &building_marker(dom), text.as_bytes())
            .expect("write marker")
    };
    mark(me.to_string());
    assert!(
        !is_incomplete(&host, dom).expect("read"),
        "its creator runs"
    );
    // The same pid, started at another time: another process now holds the pid.
    mark(
        ProcessId {
            start_time: me.start_time + 1,
            ..me
        }
        .to_string(),
    );
    assert!(is_incomplete(&host, dom).expect("read"), "a reused pid");
    // A creator killed and not reaped.
    let mut child = std::process::Command::new("true").spawn().expect("spawn");
    let zombie = ProcessId {
        pid: child.id(),
        start_time: 0,
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{}/stat", zombie.pid))
        .is_ok_and(|s| !s.contains(") Z "))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    mark(zombie.to_string());
    assert!(is_incomplete(&host, dom).expect("read"), "a zombie creator");
    child.wait().expect("reap");
}

/// A domain as another tool makes one: Xen's domain and its xenstore name only.
fn foreign_domain(host: &SimHost, handle: u8, name: &str) -> DomId {
    let dom = host
        .create_domain(&xen_host::CreateDomain::pvh([handle; 16], 1))
        .expect("create domain");
    host.write(
        TxId::NONE,
        &format!("/local/domain/{dom}/name"),
        name.as_bytes(),
    )
    .expect("write name");
    dom
}

/// The name of every domain xenstore lists, sorted; no two domains share one.
fn all_unique_names(host: &SimHost) -> Vec<String> {
    let mut names: Vec<String> = host
        .directory(TxId::NONE, "/local/domain")
        .expect("list")
        .unwrap_or_default()
        .iter()
        .filter_map(|id| {
            xen_host::read_string(host, TxId::NONE, &format!("/local/domain/{id}/name"))
                .expect("read")
        })
        .collect();
    names.sort();
    let mut unique = names.clone();
    unique.dedup();
    assert_eq!(names, unique, "no two domains share a name");
    names
}

/// Runs the monitor of `web` (on_reboot = "rename-restart") after a reboot; the new
/// guest powers off, so the monitor ends. Returns the outcome and the old domain.
fn rename_restart_of_web(
    tmp: &Path,
    host: &SimHost,
) -> (
    Result<toolstack::monitor::Outcome, toolstack::monitor::MonitorError>,
    DomId,
) {
    let o = opts(tmp);
    let cfg = config("web", "on_reboot = \"rename-restart\"\n");
    let search = FirmwareSearch::default();
    let old = toolstack::launch(host, host, &cfg, &o, &search)
        .expect("create")
        .domid;
    host.shutdown(old, xen_host::ShutdownReason::Reboot)
        .expect("reboot");
    let mut rebuild = |c: &DomainConfig| -> Result<DomId, toolstack::LaunchError> {
        let dom = toolstack::launch(host, host, c, &o, &search)?.domid;
        host.shutdown(dom, xen_host::ShutdownReason::Poweroff)
            .expect("poweroff");
        Ok(dom)
    };
    (
        toolstack::monitor::run(host, host, &o, old, &mut rebuild),
        old,
    )
}

#[test]
fn rename_restart_never_renames_onto_a_taken_name() {
    let tmp = tempfile::tempdir().expect("tmp");
    let host = host(tmp.path());
    let foreign = foreign_domain(&host, 9, "web-1");
    let (outcome, old) = rename_restart_of_web(tmp.path(), &host);
    assert_eq!(outcome.expect("monitor"), toolstack::monitor::Outcome::Gone);
    let names = all_unique_names(&host);
    assert_eq!(names, ["Domain-0", "web-1", "web-2"]);
    let name_of = |d: DomId| toolstack::domains::name_of(&host, d).expect("read");
    assert_eq!(name_of(foreign).as_deref(), Some("web-1"));
    assert_eq!(
        name_of(old).as_deref(),
        Some("web-2"),
        "the next free suffix"
    );
}

#[test]
fn rename_restart_gives_up_when_every_name_is_taken() {
    let tmp = tempfile::tempdir().expect("tmp");
    let host = host(tmp.path());
    for n in 1..=toolstack::monitor::RENAME_TRIES {
        foreign_domain(&host, 9, &format!("web-{n}"));
    }
    let (outcome, old) = rename_restart_of_web(tmp.path(), &host);
    let e = outcome.expect_err("no free name");
    assert!(e.to_string().contains("all taken"), "{e}");
    all_unique_names(&host);
    assert_eq!(
        toolstack::domains::name_of(&host, old)
            .expect("read")
            .as_deref(),
        Some("web"),
        "the old domain keeps its name, shut down"
    );
}

#[test]
fn the_monitor_finishes_the_cleanup_of_a_domain_destroyed_under_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let host = host(tmp.path());
    let o = opts(tmp.path());
    let before = snapshot(&host, &o.state_dir);
    let cfg = config("vanishing", "");
    let dom = toolstack::launch(&host, &host, &cfg, &o, &FirmwareSearch::default())
        .expect("create")
        .domid;
    // Another tool (or a destroy cut short) has Xen destroy it and leaves the rest.
    host.destroy(dom).expect("destroy in Xen only");
    let mut rebuild = |_: &DomainConfig| -> Result<DomId, toolstack::LaunchError> {
        panic!("nothing to rebuild")
    };
    let outcome = toolstack::monitor::run(&host, &host, &o, dom, &mut rebuild).expect("monitor");
    assert_eq!(outcome, toolstack::monitor::Outcome::Gone);
    assert_eq!(
        added(&before, &snapshot(&host, &o.state_dir)),
        Vec::<String>::new()
    );
}

/// A host running `web`, a guest with a disk and a vif, and a snapshot of the host taken
/// before it was created.
fn running_web_with_devices() -> (
    tempfile::TempDir,
    SimHost,
    Vec<String>,
    CreateOptions,
    DomId,
) {
    let tmp = tempfile::tempdir().expect("tmp");
    let host = host(tmp.path());
    let o = opts(tmp.path());
    let before = snapshot(&host, &o.state_dir);
    let cfg = config_with_devices("web", tmp.path());
    let dom = toolstack::launch(&host, &host, &cfg, &o, &FirmwareSearch::default())
        .expect("create")
        .domid;
    (tmp, host, before, o, dom)
}

#[test]
fn a_guest_gets_its_disk_and_vif_and_destroy_leaves_nothing() {
    let (_tmp, host, before, o, dom) = running_web_with_devices();
    let state = o.state_dir.clone();
    let devs = toolstack::devices::list(&host, dom).expect("list");
    assert_eq!(devs.len(), 2, "{devs:?}");
    for d in &devs {
        assert_eq!(
            d.backend_state,
            Some(4),
            "{d:?} connected once the guest runs"
        );
        assert_eq!(d.frontend_state, Some(4), "{d:?}");
        assert_eq!(d.hotplug_status.as_deref(), Some("connected"), "{d:?}");
    }
    assert_eq!(devs[0].node.as_deref(), Some("/dev/loop0"));
    assert_eq!(
        host.bridge_ports().expect("ports"),
        [("xenbr0".to_owned(), format!("vif{}.0", dom.0))]
    );
    assert_eq!(host.loop_devices().expect("loops").len(), 1);
    toolstack::lifecycle::destroy(&host, &host, &o.devices, &StateDir::new(&state), dom)
        .expect("destroy");
    assert_eq!(
        added(&before, &snapshot(&host, &state)),
        Vec::<String>::new()
    );
}

#[test]
fn a_hung_or_failing_hotplug_fails_the_create_naming_the_device_and_leaves_nothing() {
    for (fault, says) in [
        ("hotplug_add=hang", "killed"),
        ("hotplug_add", "hotplug-error: "),
    ] {
        let tmp = tempfile::tempdir().expect("tmp");
        let host = host(tmp.path());
        let state = tmp.path().join("rxl");
        let before = snapshot(&host, &state);
        let cfg = config_with_devices("web", tmp.path());
        let o = opts_with(tmp.path(), fault);
        let err = toolstack::launch(&host, &host, &cfg, &o, &FirmwareSearch::default())
            .expect_err("fails");
        let text = err.to_string();
        assert!(text.contains("step \"devices\""), "{fault}: {text}");
        assert!(
            text.contains("disk xvda") || text.contains("vif 0"),
            "{text}"
        );
        assert!(text.contains(says), "{fault}: {text}");
        assert!(text.contains("its output is in"), "{fault}: {text}");
        assert_eq!(
            added(&before, &snapshot(&host, &state)),
            Vec::<String>::new(),
            "{fault}"
        );
    }
}

#[test]
fn a_detach_the_guest_refuses_is_forced_after_the_timeout() {
    let (tmp, host, _, o, dom) = running_web_with_devices();
    let stubborn = SimHost::open(tmp.path())
        .and_then(|h| h.with_faults("frontend_release"))
        .expect("faults");
    let start = std::time::Instant::now();
    let found = toolstack::devices::detach(
        &stubborn,
        &o.devices,
        dom,
        devices::DeviceKind::Vbd,
        51712,
        false,
    )
    .expect("detach");
    assert!(found);
    // Asked first: the guest keeps it for the whole 300 ms timeout; then forced.
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
    let left = toolstack::devices::list(&host, dom).expect("list");
    assert_eq!(left.len(), 1, "only the vif is left: {left:?}");
    assert!(
        host.loop_devices().expect("loops").is_empty(),
        "the loop device is freed"
    );
}

#[test]
fn destroy_of_a_domain_xen_already_destroyed_removes_its_devices() {
    let (_tmp, host, before, o, dom) = running_web_with_devices();
    let state = o.state_dir.clone();
    // As if a destroy was killed right after Xen destroyed the domain.
    host.destroy(dom).expect("destroy in Xen only");
    assert_eq!(host.loop_devices().expect("loops").len(), 1);
    let destroyed =
        toolstack::lifecycle::destroy(&host, &host, &o.devices, &StateDir::new(&state), dom)
            .expect("destroy");
    assert_eq!(destroyed, toolstack::lifecycle::Destroyed::Leftovers);
    assert_eq!(
        added(&before, &snapshot(&host, &state)),
        Vec::<String>::new()
    );
}

/// Every injected failure of a hot-plug leaves the domain as it was, and every injected
/// failure of a destroy leaves what a second destroy removes entirely.
#[test]
fn every_failure_of_an_attach_or_a_destroy_leaves_nothing_behind() {
    let images = tempfile::tempdir().expect("images");
    let extra = image(images.path(), "extra.img");
    let spec = xlcfg::model::disk_arg(
        &format!("format=raw,vdev=xvdb,access=rw,target={}", extra.display()),
        images.path(),
    )
    .expect("disk spec")
    .0;
    let cfg = config_with_devices("web", images.path());
    let mut attach_failures = 0;
    let mut destroy_failures = 0;
    for op in sim::FAIL_OPS {
        for nth in 1.. {
            let tmp = tempfile::tempdir().expect("tmp");
            let host = host(tmp.path());
            let state = tmp.path().join("rxl");
            let o = opts(tmp.path());
            let dom = toolstack::launch(&host, &host, &cfg, &o, &FirmwareSearch::default())
                .expect("create")
                .domid;
            let before = snapshot(&host, &state);
            let fault = format!("{op}:{nth}=EIO");
            let faulty = SimHost::open(tmp.path())
                .and_then(|h| h.with_faults(&fault))
                .expect("faults");
            let fo = opts_with(tmp.path(), &fault);
            let sd = StateDir::new(&state);
            let new = toolstack::devices::NewDevice::Disk(spec.clone());
            let attached = toolstack::devices::attach(&faulty, &faulty, &sd, &fo.devices, dom, new);
            if let Err(e) = &attached {
                attach_failures += 1;
                let text = e.to_string();
                assert!(
                    text.starts_with("disk xvdb") || text.starts_with(&format!("domain {dom}")),
                    "{fault}: {text}"
                );
                let left = added(&before, &snapshot(&host, &state));
                assert!(left.is_empty(), "attach with {fault}: {e}: left {left:?}");
            }
            let destroyed = toolstack::lifecycle::destroy(&faulty, &faulty, &fo.devices, &sd, dom);
            if destroyed.is_err() {
                destroy_failures += 1;
                toolstack::lifecycle::destroy(&host, &host, &o.devices, &sd, dom)
                    .expect("the second destroy");
            }
            let left: Vec<String> = snapshot(&host, &state)
                .into_iter()
                .filter(|x| {
                    x.starts_with("loop device")
                        || x.starts_with("bridge port")
                        || x.starts_with("record")
                        || x.starts_with(&format!("domain {dom}"))
                        || x.contains(&format!("/{}/", dom.0))
                        || x.contains(&format!("/{}=", dom.0))
                })
                .collect();
            assert!(left.is_empty(), "destroy with {fault}: left {left:?}");
            if attached.is_ok() && destroyed.is_ok() {
                break;
            }
            assert!(nth < 1000, "{op} never stops failing");
        }
    }
    assert!(
        attach_failures > 10,
        "only {attach_failures} attach failures"
    );
    // Most faults in a destroy are absorbed: its cleanup removes the devices again.
    assert!(
        destroy_failures >= 3,
        "only {destroy_failures} destroy failures"
    );
}

/// A fake bootloader: a shell script in `dir` that takes pygrub's arguments, records them
/// (and its environment, stdin and uid) in `dir/argv`, `dir/env`, `dir/stdin`, and then
/// runs `body` with `$out` (the output file), `$dir` (the output directory) and `$args`
/// (the `--args` hint) set.
fn fake_bootloader(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    let rec = dir.display();
    let text = format!(
        "#!/bin/sh\n\
         for a in \"$@\"; do case \"$a\" in\n\
           --output=*) out=\"${{a#--output=}}\";;\n\
           --output-directory=*) dir=\"${{a#--output-directory=}}\";;\n\
           --args=*) args=\"${{a#--args=}}\";;\n\
         esac; done\n\
         printf '%s\\n' \"$@\" > {rec}/argv\n\
         env > {rec}/env\n\
         readlink /proc/$$/fd/0 > {rec}/stdin\n\
         {body}\n"
    );
    std::fs::write(&p, text).expect("script");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

/// The body of a fake bootloader that boots the test guest with `ramdisk` and the args
/// `root=/dev/xvda1` plus the hint.
fn boots(ramdisk: &str) -> String {
    format!(
        "cp {} \"$dir/kernel\"\nprintf '{ramdisk}' > \"$dir/ramdisk\"\n\
         printf 'kernel %s\\0ramdisk %s\\0args %s\\0' \"$dir/kernel\" \"$dir/ramdisk\" \
         \"root=/dev/xvda1 $args\" > \"$out\"",
        hello_elf().display()
    )
}

/// A config booting with `bootloader` from a disk image in `dir`.
fn bootloader_config(name: &str, bootloader: &Path, dir: &Path, extra: &str) -> DomainConfig {
    let img = image(dir, &format!("{name}.img"));
    let text = format!(
        "name = \"{name}\"\ntype = \"pvh\"\nmemory = 32\nvcpus = 2\nbootloader = \"{}\"\n\
         bootloader_args = [ \"--entry=1\" ]\nextra = \"quiet\"\n\
         disk = [ '{},raw,xvda,w' ]\n{extra}",
        bootloader.display(),
        img.display()
    );
    let parsed = xlcfg::parse::parse_str("test.cfg", &text);
    assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics);
    xlcfg::model::build(&parsed.settings, dir)
        .expect("valid config")
        .config
}

/// What is in a directory (recursively), for "nothing left" checks.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            out.push(e.path().display().to_string());
            out.extend(tree(&e.path()));
        }
    }
    out
}

#[test]
fn a_bootloader_s_kernel_ramdisk_and_args_boot_the_guest() {
    let tmp = tempfile::tempdir().expect("tmp");
    let host = host(tmp.path());
    let o = opts(tmp.path());
    let bl = fake_bootloader(tmp.path(), "fakegrub", &boots("RAMDISK1"));
    let cfg = bootloader_config(
        "booted",
        &bl,
        tmp.path(),
        "kernel = \"/boot/vmlinuz\"\nramdisk = \"/boot/initrd.img\"\n",
    );
    let plan = toolstack::plan_for(&cfg, &FirmwareSearch::default(), &o.bootloader)
        .expect("plan from the bootloader");
    let dom = toolstack::create::create(&host, &host, &cfg, &plan, &o)
        .expect("create")
        .domid;
    let plan = plan.as_pvh().expect("a PVH plan");
    // The guest has the bootloader's args (its entry's, then the config's cmdline) and its
    // ramdisk.
    let at = plan.cmdline_paddr.expect("cmdline placed");
    let want = b"root=/dev/xvda1 quiet\0";
    assert_eq!(host.read_guest(dom, at, want.len()).expect("read"), want);
    let m = &plan.modules[0];
    assert_eq!(m.size, 8);
    assert_eq!(host.read_guest(dom, m.paddr, 8).expect("read"), b"RAMDISK1");
    // Its command line: pygrub's, as libxl gives it (restricted, quiet).
    let argv = std::fs::read_to_string(tmp.path().join("argv")).expect("argv");
    let argv: Vec<&str> = argv.lines().collect();
    assert_eq!(
        argv[..2],
        ["--kernel=/boot/vmlinuz", "--ramdisk=/boot/initrd.img"]
    );
    let argv = &argv[2..];
    let run = &argv[3]["--output=".len()..];
    assert_eq!(argv[0], "--args=quiet");
    assert_eq!(
        argv[1],
        format!("--runas={}", toolstack::bootloader::nobody_uid())
    );
    assert_eq!(argv[2], "--quiet");
    assert!(
        argv[3].starts_with("--output=") && run.ends_with("/output"),
        "{argv:?}"
    );
    assert_eq!(argv[4], "--output-format=simple0");
    assert!(argv[5].starts_with("--output-directory="), "{argv:?}");
    assert_eq!(argv[6], "--entry=1");
    assert_eq!(argv[7], tmp.path().join("booted.img").display().to_string());
    // Its private directory was under the state directory, and is gone.
    assert!(run.starts_with(&tmp.path().join("rxl/bootloader").display().to_string()));
    assert_eq!(
        tree(&tmp.path().join("rxl/bootloader")),
        Vec::<String>::new()
    );
    // A clean environment, stdin from /dev/null, and a log.
    let env = std::fs::read_to_string(tmp.path().join("env")).expect("env");
    let mut names: Vec<&str> = env.lines().filter_map(|l| l.split('=').next()).collect();
    names.sort_unstable();
    assert!(
        names
            .iter()
            .all(|n| ["PATH", "PWD", "SHLVL", "_", "OLDPWD"].contains(n)),
        "{names:?}"
    );
    let stdin = std::fs::read_to_string(tmp.path().join("stdin")).expect("stdin");
    assert_eq!(stdin.trim(), "/dev/null");
    let log = std::fs::read_to_string(tmp.path().join(format!(
        "rxl/log/bootloader.{}.log",
        "booted".bytes().map(|b| format!("{b:02x}")).collect::<String>()
    )))
    .expect("log");
    assert!(log.contains(&bl.display().to_string()), "{log}");
}

/// Each way a bootloader can fail fails the launch with a message naming the program and
/// showing its last output, and leaves nothing: no domain, no xenstore node, no record,
/// no private directory, no process.
#[test]
fn a_failing_bootloader_fails_the_create_and_leaves_nothing() {
    let outside = "printf 'kernel /etc/passwd\\0' > \"$out\"".to_string();
    let symlink = format!(
        "ln -s {} \"$dir/kernel\"\nprintf 'kernel %s\\0' \"$dir/kernel\" > \"$out\"",
        hello_elf().display()
    );
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "hang",
            "echo about to hang >&2\nsleep 600 &\necho $! > \"$(dirname \"$0\")/child\"\nwait"
                .into(),
            "did not finish within 1 s and was killed",
        ),
        (
            "crash",
            "echo segfaulting >&2\nkill -SEGV $$".into(),
            "killed by signal 11",
        ),
        (
            "nonzero",
            "echo 'Unable to find partition containing kernel' >&2\nexit 1".into(),
            "exited with status 1",
        ),
        (
            "garbage",
            "printf 'hello there\\0' > \"$out\"".into(),
            "unknown item",
        ),
        ("empty", "true".into(), "its output is empty"),
        (
            "outside",
            outside,
            "bootloader wrote a path outside its output directory",
        ),
        ("symlink", symlink, "symbolic link"),
        ("oversize", boots("R"), "larger than the 0 MiB cap"),
    ];
    for (name, body, says) in cases {
        let tmp = tempfile::tempdir().expect("tmp");
        let host = host(tmp.path());
        let before = snapshot(&host, &tmp.path().join("rxl"));
        let mut o = opts(tmp.path());
        o.bootloader.timeout = Duration::from_secs(1);
        if name == "oversize" {
            o.bootloader.max_image = 1000;
        }
        let bl = fake_bootloader(tmp.path(), name, &body);
        let cfg = bootloader_config(name, &bl, tmp.path(), "");
        let err =
            toolstack::launch(&host, &host, &cfg, &o, &FirmwareSearch::default()).expect_err(name);
        let msg = err.to_string();
        assert!(
            matches!(err, toolstack::LaunchError::Bootloader(_)),
            "{name}: {msg}"
        );
        assert!(
            msg.starts_with(&format!("bootloader {} failed: ", bl.display())),
            "{name}: {msg}"
        );
        assert!(msg.contains(says), "{name}: {msg}");
        if ["hang", "crash", "nonzero"].contains(&name) {
            assert!(msg.contains("its last output:\n  "), "{name}: {msg}");
        }
        assert_eq!(
            added(&before, &snapshot(&host, &tmp.path().join("rxl"))),
            Vec::<String>::new(),
            "{name}"
        );
        assert_eq!(
            tree(&tmp.path().join("rxl/bootloader")),
            Vec::<String>::new(),
            "{name}"
        );
        if name == "hang" {
            let pid = std::fs::read_to_string(tmp.path().join("child")).expect("pid");
            let pid = pid.trim();
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| !s.contains(") Z "));
            assert!(!alive, "the hung bootloader's child {pid} was killed");
        }
    }
}

#[test]
fn a_bootloader_needs_a_local_disk_and_a_program_that_is_there() {
    let tmp = tempfile::tempdir().expect("tmp");
    let o = opts(tmp.path());
    let search = FirmwareSearch::default();
    let bl = fake_bootloader(tmp.path(), "fakegrub", &boots("R"));
    let plan_err = |cfg: &DomainConfig| {
        toolstack::plan_for(cfg, &search, &o.bootloader)
            .expect_err("refused")
            .to_string()
    };
    // No disk.
    let mut cfg = bootloader_config("nodisk", &bl, tmp.path(), "");
    cfg.disks.clear();
    assert!(
        plan_err(&cfg).contains("the guest has no disk"),
        "{}",
        plan_err(&cfg)
    );
    // A disk only its script can make a device of.
    let cfg = bootloader_config("scripted", &bl, tmp.path(), "");
    let mut scripted = cfg.clone();
    scripted.disks[0].target_kind = xlcfg::model::DiskTargetKind::Script;
    scripted.disks[0].script = Some("block-iscsi".into());
    let e = plan_err(&scripted);
    assert!(
        e.contains("disk 1 (xvda) is set up by the script block-iscsi"),
        "{e}"
    );
    // A program that is not there: both places tried are named.
    let mut missing = cfg.clone();
    if let xlcfg::model::Boot::Bootloader { path, .. } = &mut missing.boot {
        path.value = PathBuf::from("no-such-grub");
    }
    let e = plan_err(&missing);
    assert!(
        e.contains("bootloader \"no-such-grub\" not found: tried ")
            && e.contains("/no-such-grub and no-such-grub on PATH"),
        "{e}"
    );
    // A bare name is found in the private bin directory.
    let mut o2 = o.bootloader.clone();
    o2.private_bin = tmp.path().to_path_buf();
    let mut bare = cfg.clone();
    if let xlcfg::model::Boot::Bootloader { path, .. } = &mut bare.boot {
        path.value = PathBuf::from("fakegrub");
    }
    toolstack::plan_for(&bare, &search, &o2).expect("found in the private bin directory");
    // Root is refused.
    o2.runas = 0;
    let e = toolstack::plan_for(&bare, &search, &o2)
        .expect_err("root")
        .to_string();
    assert!(e.contains("must not run as root"), "{e}");
}

/// At a reboot the monitor rebuilds from the stored config: the bootloader runs again and
/// the guest gets the kernel and cmdline it chooses now.
#[test]
fn a_reboot_runs_the_bootloader_again() {
    let tmp = tempfile::tempdir().expect("tmp");
    let host = host(tmp.path());
    let o = opts(tmp.path());
    let bl = fake_bootloader(tmp.path(), "fakegrub", &boots("RAMDISK1"));
    let cfg = bootloader_config("upgraded", &bl, tmp.path(), "");
    let search = FirmwareSearch::default();
    let first = toolstack::launch(&host, &host, &cfg, &o, &search)
        .expect("create")
        .domid;
    // The guest upgrades its kernel: the bootloader now chooses other args and ramdisk.
    fake_bootloader(
        tmp.path(),
        "fakegrub",
        &boots("NEWRAMDISK").replace("root=/dev/xvda1", "root=/dev/xvda2 new"),
    );
    host.shutdown(first, xen_host::ShutdownReason::Reboot)
        .expect("reboot");
    let mut second = None;
    let mut rebuild = |c: &DomainConfig| -> Result<DomId, toolstack::LaunchError> {
        let dom = toolstack::launch(&host, &host, c, &o, &search)?.domid;
        second = Some(dom);
        host.shutdown(dom, xen_host::ShutdownReason::Poweroff)
            .expect("poweroff");
        Ok(dom)
    };
    // Read the new guest's memory before the monitor destroys it: plan as the rebuild did.
    let plan = toolstack::plan_for(&cfg, &search, &o.bootloader).expect("plan");
    let plan = plan.as_pvh().expect("a PVH plan");
    let mut seen = None;
    let mut rebuild_and_look = |c: &DomainConfig| {
        let r = rebuild(c);
        if let Ok(dom) = &r {
            let at = plan.cmdline_paddr.expect("cmdline");
            let m = &plan.modules[0];
            seen = Some((
                host.read_guest(*dom, at, 26).expect("cmdline"),
                host.read_guest(*dom, m.paddr, 10).expect("ramdisk"),
            ));
        }
        r
    };
    toolstack::monitor::run(&host, &host, &o, first, &mut rebuild_and_look).expect("monitor");
    let (cmdline, ramdisk) = seen.expect("rebuilt");
    assert_eq!(cmdline, b"root=/dev/xvda2 new quiet\0");
    assert_eq!(ramdisk, b"NEWRAMDISK");
}

/// A process that leaves the bootloader's group and keeps its output open does not hold
/// the create up: the failure is reported within the grace time.
#[test]
fn a_bootloader_s_escaped_child_does_not_hang_the_create() {
    let tmp = tempfile::tempdir().expect("tmp");
    let host = host(tmp.path());
    let o = opts(tmp.path());
    let pidfile = tmp.path().join("escaped");
    let bl = fake_bootloader(
        tmp.path(),
        "escaper",
        &format!(
            "setsid sh -c 'echo $$ > {}; exec sleep 600' &\nsleep 0.2\necho giving up >&2\nexit 1",
            pidfile.display()
        ),
    );
    let cfg = bootloader_config("escaper", &bl, tmp.path(), "");
    let t = std::time::Instant::now();
    let err = toolstack::launch(&host, &host, &cfg, &o, &FirmwareSearch::default())
        .expect_err("fails")
        .to_string();
    let took = t.elapsed();
    if let Ok(pid) = std::fs::read_to_string(&pidfile) {
        let _ = Command::new("kill").arg(pid.trim()).status();
    }
    assert!(err.contains("exited with status 1"), "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(
        tree(&tmp.path().join("rxl/bootloader")),
        Vec::<String>::new()
    );
}

/// With a menu prompt (`rxl create -c` on a terminal), rxl's lister reads the guest's menu
/// under the same restrictions as a bootloader, the prompt sees its titles made safe to
/// print, and the entry picked is given to the bootloader as the last `--entry`.
#[test]
fn a_menu_prompt_picks_the_entry_the_bootloader_boots() {
    use std::sync::{Arc, Mutex};
    let tmp = tempfile::tempdir().expect("tmp");
    let _host = host(tmp.path());
    let mut o = opts(tmp.path());
    // rxl's own binary, as a fake: `bootloader --list-entries ...` writes a menu whose
    // second title carries a terminal escape.
    let lister = fake_bootloader(
        tmp.path(),
        "fakerxl",
        "printf '%s\\n' \"$@\" > \"$(dirname \"$out\")/../../../lister-argv\"\n\
         printf 'default 1\\0title Debian\\0title Evil\\033[2J\\0title Old\\0\\0' > \"$out\"",
    );
    o.bootloader.self_exe = Some(lister);
    let seen = Arc::new(Mutex::new(None));
    let seen2 = seen.clone();
    o.bootloader.menu = Some(toolstack::bootloader::MenuPrompt(Arc::new(move |m| {
        *seen2.lock().expect("lock") = Some(m.clone());
        Some(2)
    })));
    let bl = fake_bootloader(tmp.path(), "fakegrub", &boots("RAMDISK1"));
    let cfg = bootloader_config("menued", &bl, tmp.path(), "");
    toolstack::plan_for(&cfg, &FirmwareSearch::default(), &o.bootloader).expect("plan");
    let menu = seen.lock().expect("lock").clone().expect("the prompt ran");
    assert_eq!(menu.titles, ["Debian", "Evil?[2J", "Old"]);
    assert_eq!(menu.default, 1);
    let lister_argv = std::fs::read_to_string(tmp.path().join("lister-argv")).expect("argv");
    let lister_argv: Vec<&str> = lister_argv.lines().collect();
    assert_eq!(lister_argv[..2], ["bootloader", "--list-entries"]);
    assert!(
        lister_argv.contains(&format!("--runas={}", toolstack::bootloader::nobody_uid()).as_str())
    );
    assert!(lister_argv
        .last()
        .is_some_and(|d| d.ends_with("menued.img")));
    // The bootloader got the pick after bootloader_args' --entry=1.
    let argv = std::fs::read_to_string(tmp.path().join("argv")).expect("argv");
    let argv: Vec<&str> = argv.lines().collect();
    let n = argv.len();
    assert_eq!(argv[n - 3..n - 1], ["--entry=1", "--entry=2"], "{argv:?}");
    // Nothing of either run is left.
    assert_eq!(
        tree(&tmp.path().join("rxl/bootloader")),
        Vec::<String>::new()
    );

    // A lister that fails: no prompt, the default boots, the create goes on.
    let broken = fake_bootloader(tmp.path(), "brokenrxl", "exit 7");
    o.bootloader.self_exe = Some(broken);
    *seen.lock().expect("lock") = None;
    toolstack::plan_for(&cfg, &FirmwareSearch::default(), &o.bootloader).expect("plan");
    assert!(seen.lock().expect("lock").is_none());
    let argv = std::fs::read_to_string(tmp.path().join("argv")).expect("argv");
    assert!(!argv.contains("--entry=2"), "{argv}");
}

// ---------------------------------------------------------------------------------------
// PV guests

/// The synthetic PV kernel with Linux's notes, written once per test process.
fn pv_kernel() -> &'static Path {
    static KERNEL: OnceLock<PathBuf> = OnceLock::new();
    KERNEL.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rxl-toolstack-pv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("pv kernel dir");
        let path = dir.join("pv-kernel");
        std::fs::write(&path, pv::testkernel::PvKernel::linux().bytes()).expect("pv kernel");
        std::fs::write(dir.join("initrd"), vec![0x5a; 3 * 4096 + 17]).expect("initrd");
        path
    })
}

/// A PV guest of the synthetic kernel with a ramdisk.
fn pv_config(name: &str, extra: &str) -> DomainConfig {
    let dir = pv_kernel().parent().expect("kernel dir").to_path_buf();
    let text = format!(
        "name = \"{name}\"\ntype = \"pv\"\nmemory = 32\nvcpus = 2\nkernel = \"pv-kernel\"\n\
         ramdisk = \"initrd\"\ncmdline = \"console=hvc0 pv test\"\n{extra}"
    );
    let parsed = xlcfg::parse::parse_str("pv.cfg", &text);
    assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics);
    xlcfg::model::build(&parsed.settings, &dir)
        .expect("valid config")
        .config
}

fn read_xs(host: &SimHost, path: &str) -> Option<String> {
    xen_host::read_string(host, TxId::NONE, path).expect("xenstore read")
}

/// A PV create builds a PV domain that runs: the simulated host checks, at unpause, that the
/// entry point, the boot stack and start_info are mapped by the pinned page tables and that
/// start_info carries the PV magic (else the guest "crashes"); the rings are named by
/// machine frames; libxl's PV image nodes are there; destroy leaves nothing.
#[test]
fn a_pv_create_builds_a_running_pv_domain() {
    let tmp = tempfile::tempdir().expect("tmp");
    let host = host(tmp.path());
    let before = snapshot(&host, &tmp.path().join("rxl"));
    let cfg = pv_config("pv1", "");
    let plan =
        toolstack::plan_for(&cfg, &FirmwareSearch::default(), &no_bootloader()).expect("plan");
    let pv_plan = plan.as_pv().expect("a PV plan");
    let created =
        toolstack::create::create(&host, &host, &cfg, &plan, &opts(tmp.path())).expect("create");
    let dom = created.domid;
    let steps: Vec<&str> = created.steps.iter().map(|s| s.step.name()).collect();
    let expected: Vec<&str> = Step::sequence(xlcfg::model::DomainType::Pv)
        .map(Step::name)
        .collect();
    assert_eq!(steps, expected);
    assert!(steps.contains(&"pin tables") && !steps.contains(&"hvm params"));
    let info = host.domain_info(dom).expect("info").expect("domain");
    assert!(!info.hvm, "a PV domain");
    assert!(info.running || info.blocked, "the guest runs: {info:?}");
    assert!(
        !info.shutdown,
        "the guest did not crash at its first instruction: {info:?}"
    );
    let dp = format!("/local/domain/{dom}");
    let store_ref: u64 = read_xs(&host, &format!("{dp}/store/ring-ref"))
        .expect("store ring-ref")
        .parse()
        .expect("a number");
    let console_ref: u64 = read_xs(&host, &format!("{dp}/console/ring-ref"))
        .expect("console ring-ref")
        .parse()
        .expect("a number");
    // Machine frames, not the guest's own frame numbers.
    assert_ne!(store_ref, pv_plan.xenstore_pfn);
    assert_ne!(console_ref, pv_plan.console_pfn);
    let console = host.grant_entry(dom, 0).expect("grant").expect("entry 0");
    assert_eq!(u64::from(console.frame), console_ref);
    let store = host.grant_entry(dom, 1).expect("grant").expect("entry 1");
    assert_eq!(u64::from(store.frame), store_ref);
    // start_info names the same frames. It is in the xenstore ring's 2 MiB extent, whose
    // machine frames are contiguous: its frame is found from the ring's.
    let (si_pfn, store_pfn) = (pv_plan.start_info_pfn, pv_plan.xenstore_pfn);
    assert_eq!(si_pfn / 512, store_pfn / 512, "one 2 MiB extent");
    let si_mfn = store_ref + si_pfn - store_pfn;
    let si = host.read_frames(dom, &[si_mfn]).expect("start_info frame");
    assert_eq!(&si[..14], b"xen-3.0-x86_64");
    let off = pv::start_info_offsets::STORE_MFN;
    assert_eq!(
        u64::from_le_bytes(si[off..off + 8].try_into().expect("8 bytes")),
        store_ref
    );
    assert_eq!(
        read_xs(&host, &format!("/libxl/{dom}/type")).as_deref(),
        Some("pv")
    );
    let vm = read_xs(&host, &format!("{dp}/vm")).expect("vm path");
    assert_eq!(
        read_xs(&host, &format!("{vm}/image/ostype")).as_deref(),
        Some("linux")
    );
    assert_eq!(
        read_xs(&host, &format!("{vm}/image/cmdline")).as_deref(),
        Some("console=hvc0 pv test")
    );
    assert!(read_xs(&host, &format!("{vm}/image/ramdisk"))
        .expect("ramdisk node")
        .ends_with("/initrd"));
    let state = StateDir::new(tmp.path().join("rxl"));
    toolstack::lifecycle::destroy(&host, &host, &opts(tmp.path()).devices, &state, dom)
        .expect("destroy");
    assert_eq!(
        added(&before, &snapshot(&host, &tmp.path().join("rxl"))),
        Vec::<String>::new()
    );
}

/// Every failure of a PV create, at every step, leaves nothing behind.
#[test]
fn every_pv_failure_leaves_nothing_behind() {
    let images = tempfile::tempdir().expect("images");
    let img = image(images.path(), "pv.img");
    let cfg = pv_config(
        "pvvictim",
        &format!(
            "disk = [ '{},raw,xvda,w' ]\nvif = [ 'mac=00:16:3e:0a:0b:0d' ]\n",
            img.display()
        ),
    );
    sweep_create_failures(&cfg);
}

/// A PVH-only kernel (the assembly test guest) and an ELF with no Xen notes are refused as
/// PV at planning, before anything exists on the host; so is a second module.
#[test]
fn kernels_that_cannot_boot_as_pv_are_refused_before_anything_is_built() {
    let dir = hello_elf().parent().expect("guest dir").to_path_buf();
    let refuse = |text: &str| {
        let parsed = xlcfg::parse::parse_str("pv.cfg", text);
        let cfg = xlcfg::model::build(&parsed.settings, &dir)
            .expect("valid config")
            .config;
        match toolstack::plan_for(&cfg, &FirmwareSearch::default(), &no_bootloader()) {
            Err(e @ toolstack::LaunchError::PvPlan(_)) => e.to_string(),
            Err(e) => panic!("not a PV planning error: {e}"),
            Ok(_) => panic!("planned: {text}"),
        }
    };
    let e = refuse("name = \"p\"\ntype = \"pv\"\nmemory = 32\nkernel = \"hello.elf\"\n");
    assert!(e.contains("hello.elf"), "{e}");
    assert!(e.to_lowercase().contains("pvh"), "{e}");
    let e = refuse(&format!(
        "name = \"p\"\ntype = \"pv\"\nmemory = 32\nkernel = \"{}\"\n",
        std::env::current_exe().expect("exe").display()
    ));
    assert!(
        e.to_lowercase().contains("not a xen pv kernel") || e.contains("notes"),
        "{e}"
    );
    let k = pv_kernel().display().to_string();
    let e = refuse(&format!(
        "name = \"p\"\ntype = \"pv\"\nmemory = 64\nkernel = \"{k}\"\nmodules = [ \"{k}\", \"{k}\" ]\n"
    ));
    assert!(e.contains("module"), "{e}");
}

/// A bootloader's kernel boots a PV guest too: the PV planner lays out what it extracted,
/// with its ramdisk and args.
#[test]
fn a_bootloader_boots_a_pv_guest() {
    let tmp = tempfile::tempdir().expect("tmp");
    let host = host(tmp.path());
    let o = opts(tmp.path());
    let body = format!(
        "cp {} \"$dir/kernel\"\nprintf 'PVRAMDISK' > \"$dir/ramdisk\"\n\
         printf 'kernel %s\\0ramdisk %s\\0args %s\\0' \"$dir/kernel\" \"$dir/ramdisk\" \
         \"root=/dev/xvda1 $args\" > \"$out\"",
        pv_kernel().display()
    );
    let bl = fake_bootloader(tmp.path(), "fakepvgrub", &body);
    let mut cfg = bootloader_config("pvboot", &bl, tmp.path(), "");
    cfg.domain_type = xlcfg::model::DomainType::Pv;
    let plan = toolstack::plan_for(&cfg, &FirmwareSearch::default(), &o.bootloader)
        .expect("plan from the bootloader");
    let pv_plan = plan.as_pv().expect("a PV plan");
    assert_eq!(pv_plan.cmdline.as_deref(), Some("root=/dev/xvda1 quiet"));
    assert_eq!(pv_plan.ramdisk.as_ref().map(|r| r.size), Some(9));
    let dom = toolstack::create::create(&host, &host, &cfg, &plan, &o)
        .expect("create")
        .domid;
    let info = host.domain_info(dom).expect("info").expect("domain");
    assert!(!info.hvm && !info.shutdown, "a running PV guest: {info:?}");
    let vm = read_xs(&host, &format!("/local/domain/{dom}/vm")).expect("vm");
    assert_eq!(
        read_xs(&host, &format!("{vm}/image/cmdline")).as_deref(),
        Some("root=/dev/xvda1 quiet")
    );
}

/// Every node the skeleton and the console give permissions to has them after a create,
/// those rxl leaves to inheritance included, and what an earlier domain with the same id
/// left in xenstore is gone rather than kept with its old permissions.
#[test]
fn create_gives_every_node_its_permissions_over_a_stale_tree() {
    use toolstack::xs_layout::{self, Identity};
    use xen_host::{Access, Perm};
    let tmp = tempfile::tempdir().expect("tmp");
    let host = host(tmp.path());
    // The first domain the simulated host makes is 1: leave junk there, as a toolstack
    // that died before its cleanup would.
    let only_dom0 = [Perm {
        domid: DomId::DOM0,
        access: Access::None,
    }];
    for p in [
        "/local/domain/1/control/shutdown",
        "/local/domain/1/junk",
        "/local/domain/1/console/tty",
        "/libxl/1/device/vbd/51712/frontend",
    ] {
        host.write(TxId::NONE, p, b"stale").expect("write");
        host.set_perms(TxId::NONE, p, &only_dom0).expect("perms");
    }
    host.set_perms(TxId::NONE, "/local/domain/1/control", &only_dom0)
        .expect("perms");
    let cfg = config("perms", "");
    let plan =
        toolstack::plan_for(&cfg, &FirmwareSearch::default(), &no_bootloader()).expect("plan");
    let created =
        toolstack::create::create(&host, &host, &cfg, &plan, &opts(tmp.path())).expect("create");
    let dom = created.domid;
    assert_eq!(dom, DomId(1), "the simulated host's first domain");
    for gone in ["/local/domain/1/junk", "/libxl/1/device/vbd"] {
        assert_eq!(host.read(TxId::NONE, gone).expect("read"), None, "{gone}");
    }
    let uuid = xen_host::read_string(&host, TxId::NONE, &format!("/local/domain/{dom}/vm"))
        .expect("read")
        .expect("vm")
        .trim_start_matches("/vm/")
        .to_owned();
    let skeleton = xs_layout::skeleton(&Identity {
        dom,
        uuid: &uuid,
        name: "perms",
        kind: "pvh",
    });
    let ro = vec![
        Perm {
            domid: DomId::DOM0,
            access: Access::None,
        },
        Perm {
            domid: dom,
            access: Access::Read,
        },
    ];
    let mut checked = 0;
    for node in &skeleton {
        let Some(want) = &node.perms else { continue };
        let got = host.get_perms(TxId::NONE, &node.path).expect("perms");
        assert_eq!(got.as_ref(), Some(want), "{}", node.path);
        checked += 1;
    }
    assert!(checked >= 15, "{checked} nodes with permissions");
    // Nodes given no permissions of their own take their parent's.
    for p in ["name", "vm", "console/limit", "console/tty", "control"] {
        let path = format!("/local/domain/{dom}/{p}");
        assert_eq!(
            host.get_perms(TxId::NONE, &path).expect("perms"),
            Some(ro.clone()),
            "{path}"
        );
    }
    // The guest owns control/shutdown again (the stale node was dom0's).
    assert_eq!(
        host.get_perms(TxId::NONE, &format!("/local/domain/{dom}/control/shutdown"))
            .expect("perms"),
        Some(vec![Perm {
            domid: dom,
            access: Access::None
        }])
    );
}
