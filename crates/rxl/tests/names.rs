//! Names with xenstore as the truth, destroys that finish, and rxl's state files, driven
//! through the rxl command line on the simulated host.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use common::{guest_dir, ok, plant_restart_mark, stderr, Sim};
use xen_host::{Store as _, TxId};

/// A config of the test guest called `name`, in `dir` (each test its own: tests run in
/// parallel).
fn cfg_in(dir: &Path, name: &str) -> String {
    let file: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    let path = dir.join(format!("{file}.cfg"));
    let kernel = guest_dir().join("hello.elf");
    let body = format!(
        "name = \"{name}\"\ntype = \"pvh\"\nmemory = 32\nvcpus = 1\nkernel = \"{}\"\n",
        kernel.display()
    );
    std::fs::write(&path, body).expect("write cfg");
    path.to_str().expect("utf-8 path").to_string()
}

impl Sim {
    /// A config of the test guest called `name`.
    fn cfg(&self, name: &str) -> String {
        cfg_in(self.dir.path(), name)
    }

    /// `rxl create -e` (no monitor) of the guest `name`; its domain id.
    fn create(&self, name: &str) -> u16 {
        let o = ok(self.run(&["create", "-e", "--json", &self.cfg(name)]));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        v["domid"]
            .as_u64()
            .and_then(|d| u16::try_from(d).ok())
            .expect("domid")
    }

    /// Every xenstore node under `prefix`.
    fn nodes(&self, prefix: &str) -> Vec<(String, String)> {
        self.host().xs_dump(prefix).expect("xs dump")
    }
}

/// Runs `rxl create` of `name` and asserts it is refused because the name is taken.
fn refused(sim: &Sim, name: &str) {
    let o = sim.run(&["create", "-e", &sim.cfg(name)]);
    assert_eq!(o.status.code(), Some(1), "{name}: {}", stderr(&o));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
}

#[test]
fn a_name_another_tool_gave_cannot_be_created_again_and_the_old_one_can() {
    let sim = Sim::new();
    let dom = sim.create("web");
    // What `xl rename web db` writes.
    let host = sim.host();
    let vm = xen_host::read_string(&host, TxId::NONE, &format!("/local/domain/{dom}/vm"))
        .expect("read vm")
        .expect("vm link");
    host.write(TxId::NONE, &format!("/local/domain/{dom}/name"), b"db")
        .expect("rename");
    host.write(TxId::NONE, &format!("{vm}/name"), b"db")
        .expect("rename in /vm");
    refused(&sim, "db");
    let again = sim.create("web");
    assert_ne!(again, dom);
}

#[test]
fn a_damaged_name_index_or_bitmap_lets_no_name_be_taken_twice() {
    let sim = Sim::new();
    let web = sim.create("web");
    let other = sim.create("other");
    let names = sim.state().join("names");
    let entry = names.join("776562");
    // A set of "rxl's own domains" (an earlier rxl's) claiming every id, Domain-0's too.
    std::fs::write(sim.state().join("recorded"), [0xffu8; 4096]).expect("bitmap");
    refused(&sim, "Domain-0");
    std::fs::remove_file(&entry).expect("delete the entry");
    refused(&sim, "web");
    for damage in ["garbage\n".to_string(), other.to_string(), "0".to_string()] {
        std::fs::write(&entry, &damage).expect("damage the entry");
        refused(&sim, "web");
    }
    std::fs::write(names.join("446f6d61696e2d30"), web.to_string()).expect("entry");
    refused(&sim, "Domain-0");
    // The index was rebuilt from xenstore.
    assert_eq!(std::fs::read_to_string(&entry).ok(), Some(web.to_string()));
}

#[test]
fn a_destroy_interrupted_after_xen_finishes_with_the_next_destroy() {
    let sim = Sim::new();
    let state = sim.state();
    for by_id in [false, true] {
        let dom = sim.create("web");
        let o = sim
            .command(&["destroy", "web"], Some("xs_rm"))
            .output()
            .expect("run rxl");
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            sim.host()
                .domain_ids()
                .expect("ids")
                .iter()
                .all(|d| d.0 != dom),
            "Xen destroyed the domain"
        );
        assert!(!sim.nodes(&format!("/local/domain/{dom}")).is_empty());

        let spec = if by_id { dom.to_string() } else { "web".into() };
        let o = ok(sim.run(&["destroy", &spec]));
        assert!(stderr(&o).contains("already gone"), "{}", stderr(&o));
        for prefix in [format!("/local/domain/{dom}"), format!("/libxl/{dom}")] {
            assert_eq!(sim.nodes(&prefix), Vec::new(), "{prefix}");
        }
        assert!(!state.join(format!("{dom}.json")).exists());
        assert!(!state.join("names/776562").exists());
        // Nothing left to clean: the plain answer.
        let o = sim.run(&["destroy", &spec]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains("no domain"), "{}", stderr(&o));
    }
    let vm_left: Vec<_> = sim
        .nodes("/vm")
        .into_iter()
        .filter(|(k, _)| {
            // Domain-0's stays.
            k.starts_with("/vm/") && !k.starts_with("/vm/00000000-0000-0000-0000-000000000000")
        })
        .collect();
    assert!(vm_left.is_empty(), "{vm_left:?}");
}

#[test]
fn a_killed_monitor_not_yet_reaped_holds_no_name() {
    let sim = Sim::new();
    let mut monitor = Command::new("sleep").arg("60").spawn().expect("sleep");
    let pid = monitor.id();
    plant_restart_mark(&sim.state(), "ghost", pid);
    monitor.kill().expect("kill");
    // Not reaped: a zombie until wait().
    while std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z ")) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    sim.create("ghost");
    ok(sim.run(&["destroy", "ghost"]));
    monitor.wait().expect("reap");
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn state_files_have_their_modes_whatever_the_umask() {
    let sim = Sim::new();
    let script = "umask 000; exec \"$0\" --sim \"$1\" create -e -q \"$2\"; exit 1";
    let o = Command::new("sh")
        .args(["-c", script, env!("CARGO_BIN_EXE_rxl")])
        .arg(sim.dir.path())
        .arg(sim.cfg("web"))
        .env_remove("RXL_SIM_FAIL")
        .output()
        .expect("sh");
    ok(o);
    let state = sim.state();
    let record = std::fs::read_dir(&state)
        .expect("state dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("a record");
    assert_eq!(mode(&record), 0o600, "{}", record.display());
    assert_eq!(mode(&state.join("names/776562")), 0o600);
    assert_eq!(mode(&state.join("create.lock")), 0o600);
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("names")), 0o700);
}

#[test]
fn links_planted_in_the_state_directory_are_not_followed() {
    let sim = Sim::new();
    let target = sim.dir.path().join("precious");
    std::fs::write(&target, b"precious").expect("target");
    let state = sim.state();
    std::fs::create_dir_all(state.join("names")).expect("mkdir");
    // Domain ids start at 1: the record of the first guest, and the index entry of "web".
    std::os::unix::fs::symlink(&target, state.join("1.json")).expect("link");
    std::os::unix::fs::symlink(&target, state.join("names/776562")).expect("link");
    let dom = sim.create("web");
    assert_eq!(dom, 1);
    assert_eq!(std::fs::read(&target).expect("target"), b"precious");
    assert!(std::fs::symlink_metadata(state.join("1.json"))
        .expect("record")
        .is_file());
    assert_eq!(
        std::fs::read_to_string(state.join("names/776562")).ok(),
        Some("1".to_string())
    );
    ok(sim.run(&["destroy", "web"]));

    // The lock is refused, naming the path.
    std::fs::remove_file(state.join("create.lock")).expect("rm lock");
    std::os::unix::fs::symlink(&target, state.join("create.lock")).expect("link");
    let o = sim.run(&["create", "-e", &sim.cfg("web")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("create.lock is a symbolic link"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&target).expect("target"), b"precious");
}
