//! The simulated xenstored: tree semantics, permissions, transactions, watches, and
//! several handles (threads and processes) on one host.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{domain, host};
use sim::SimHost;
use xen_host::{Access, DomId, Errno, Gfn, Hypervisor, Perm, Store, TxId, WatchEvent};

const T: TxId = TxId::NONE;
const WAIT: Option<Duration> = Some(Duration::from_secs(5));
const NOW: Option<Duration> = Some(Duration::ZERO);

fn perm(d: u16, a: Access) -> Perm {
    Perm {
        domid: DomId(d),
        access: a,
    }
}

fn ev(path: &str, token: &str) -> WatchEvent {
    WatchEvent {
        path: path.into(),
        token: token.into(),
    }
}

#[test]
fn tree_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096);
    h.write(T, "/a/b/c", b"v").unwrap();
    assert_eq!(
        h.read(T, "/a/b").unwrap().unwrap(),
        b"",
        "parents created empty"
    );
    assert_eq!(h.directory(T, "/a").unwrap().unwrap(), vec!["b"]);
    h.write(T, "/a/b2", b"w").unwrap();
    assert_eq!(h.directory(T, "/a").unwrap().unwrap(), vec!["b", "b2"]);
    h.mkdir(T, "/a/b").unwrap();
    assert_eq!(h.read(T, "/a/b/c").unwrap().unwrap(), b"v", "mkdir keeps");
    h.rm(T, "/a/b").unwrap();
    assert_eq!(h.read(T, "/a/b/c").unwrap(), None, "rm is recursive");
    assert_eq!(h.directory(T, "/a").unwrap().unwrap(), vec!["b2"]);
    h.rm(T, "/nothing/here").unwrap();
    assert_eq!(h.directory(T, "/nothing").unwrap(), None);
    assert_eq!(
        h.write(T, "/bad path", b"").unwrap_err().errno(),
        Some(Errno::EINVAL)
    );
    assert_eq!(
        h.write(T, "/big", &vec![b'x'; 5000]).unwrap_err().errno(),
        Some(Errno::E2BIG)
    );
    let dump = h.xs_dump("/a").unwrap();
    assert_eq!(
        dump,
        vec![
            ("/a".to_string(), String::new()),
            ("/a/b2".into(), "w".into())
        ]
    );
    assert_eq!(h.get_domain_path(DomId(7)).unwrap(), "/local/domain/7");
}

/// A listing comes from the node's own list of children: hidden staging directories and
/// stray directories are never listed, a stray directory where a new node goes is
/// replaced by the node, and a child listed but missing (its writer died before the
/// rename) is repaired by the next write or rm of it.
#[test]
fn listings_come_from_the_node_and_survive_a_died_writer() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096);
    h.write(T, "/local/domain/3/name", b"three").unwrap();
    let parent = dir.path().join("xs/local/domain");
    std::fs::create_dir_all(parent.join(".new-999/name")).unwrap();
    std::fs::create_dir_all(parent.join("8/junk")).unwrap();
    let before = h.directory(T, "/local/domain").unwrap().unwrap();
    assert!(before.contains(&"3".to_string()), "{before:?}");
    assert!(!before.contains(&"8".to_string()), "{before:?}");
    assert!(!before.iter().any(|c| c.starts_with('.')), "{before:?}");
    h.write(T, "/local/domain/8/name", b"eight").unwrap();
    assert_eq!(
        h.directory(T, "/local/domain/8").unwrap().unwrap(),
        vec!["name"],
        "the stray directory's contents are gone"
    );
    assert_eq!(
        h.read(T, "/local/domain/8/name").unwrap().unwrap(),
        b"eight"
    );
    h.write(T, "/local/domain/9/a/b/c", b"deep").unwrap();
    assert_eq!(h.read(T, "/local/domain/9/a/b").unwrap().unwrap(), b"");
    assert_eq!(
        h.directory(T, "/local/domain/9/a").unwrap().unwrap(),
        vec!["b"]
    );
    assert_eq!(
        h.read(T, "/local/domain/9/a/b/c").unwrap().unwrap(),
        b"deep"
    );
    let after = h.directory(T, "/local/domain").unwrap().unwrap();
    for id in ["3", "8", "9"] {
        assert!(after.contains(&id.to_string()), "{id} in {after:?}");
    }
    let staged: Vec<String> = std::fs::read_dir(&parent)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".new-") && n != ".new-999")
        .collect();
    assert_eq!(staged, Vec::<String>::new(), "no staging directory is left");

    // A writer that died after listing child 8 of /local/domain, before its rename.
    std::fs::remove_dir_all(parent.join("8")).unwrap();
    assert!(h
        .directory(T, "/local/domain")
        .unwrap()
        .unwrap()
        .contains(&"8".to_string()));
    assert_eq!(h.read(T, "/local/domain/8/name").unwrap(), None);
    h.write(T, "/local/domain/8/name", b"again").unwrap();
    assert_eq!(
        h.read(T, "/local/domain/8/name").unwrap().unwrap(),
        b"again"
    );
    std::fs::remove_dir_all(parent.join("9")).unwrap();
    h.rm(T, "/local/domain/9").unwrap();
    assert_eq!(
        h.directory(T, "/local/domain").unwrap().unwrap(),
        vec!["0", "3", "8"],
        "rm of a listed but missing child forgets it"
    );
}

#[test]
fn permissions_follow_xenstored() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096);
    h.write(T, "/local/domain/5/secret", b"s").unwrap();
    h.write(T, "/local/domain/5/shared", b"x").unwrap();
    h.set_perms(
        T,
        "/local/domain/5/shared",
        &[perm(0, Access::None), perm(5, Access::Read)],
    )
    .unwrap();
    h.write(T, "/local/domain/5/mine", b"").unwrap();
    h.set_perms(T, "/local/domain/5/mine", &[perm(5, Access::None)])
        .unwrap();
    let guest = SimHost::open(dir.path()).unwrap().with_caller(DomId(5));
    assert_eq!(
        guest.read(T, "secret").unwrap_err().errno(),
        Some(Errno::EACCES)
    );
    assert_eq!(guest.read(T, "shared").unwrap().unwrap(), b"x");
    assert_eq!(
        guest.write(T, "shared", b"y").unwrap_err().errno(),
        Some(Errno::EACCES)
    );
    // The owner may do anything, and children it creates are its own.
    guest.write(T, "mine/sub", b"1").unwrap();
    assert_eq!(
        h.get_perms(T, "/local/domain/5/mine/sub").unwrap().unwrap(),
        vec![perm(5, Access::None)]
    );
    let other = SimHost::open(dir.path()).unwrap().with_caller(DomId(6));
    assert_eq!(
        other
            .set_perms(T, "/local/domain/5/mine", &[perm(6, Access::Both)])
            .unwrap_err()
            .errno(),
        Some(Errno::EACCES)
    );
    assert_eq!(
        h.set_perms(T, "/local/domain/5/mine", &[])
            .unwrap_err()
            .errno(),
        Some(Errno::EINVAL)
    );
    assert_eq!(
        h.get_perms(T, "/local/domain/5/shared").unwrap().unwrap(),
        vec![perm(0, Access::None), perm(5, Access::Read)]
    );
}

#[test]
fn transactions_see_their_writes_and_conflict_on_later_changes() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096);
    let other = SimHost::open(dir.path()).unwrap();
    h.write(T, "/t/a", b"1").unwrap();
    h.write(T, "/t/old/x", b"1").unwrap();

    let tx = h.transaction_start().unwrap();
    assert_eq!(h.read(tx, "/t/a").unwrap().unwrap(), b"1");
    h.write(tx, "/t/new/deep", b"n").unwrap();
    h.rm(tx, "/t/old").unwrap();
    assert_eq!(h.read(tx, "/t/new/deep").unwrap().unwrap(), b"n");
    assert_eq!(h.read(tx, "/t/old/x").unwrap(), None);
    assert_eq!(h.directory(tx, "/t").unwrap().unwrap(), vec!["a", "new"]);
    assert_eq!(
        h.read(T, "/t/new/deep").unwrap(),
        None,
        "not visible outside"
    );
    other.write(T, "/t/a", b"2").unwrap();
    assert!(!h.transaction_end(tx, true).unwrap(), "conflict");
    assert_eq!(h.read(T, "/t/new/deep").unwrap(), None, "nothing applied");
    assert_eq!(h.read(T, "/t/old/x").unwrap().unwrap(), b"1");

    // A change elsewhere does not conflict.
    let tx = h.transaction_start().unwrap();
    h.read(tx, "/t/a").unwrap();
    h.write(tx, "/t/b", b"3").unwrap();
    other.write(T, "/elsewhere", b"x").unwrap();
    assert!(h.transaction_end(tx, true).unwrap());
    assert_eq!(h.read(T, "/t/b").unwrap().unwrap(), b"3");

    // A change between start and first access conflicts too.
    let tx = h.transaction_start().unwrap();
    other.write(T, "/t/b", b"4").unwrap();
    h.write(tx, "/t/b", b"5").unwrap();
    assert!(!h.transaction_end(tx, true).unwrap());
    assert_eq!(h.read(T, "/t/b").unwrap().unwrap(), b"4");

    // Abort discards; an ended transaction is gone.
    let tx = h.transaction_start().unwrap();
    h.write(tx, "/t/c", b"x").unwrap();
    assert!(h.transaction_end(tx, false).unwrap());
    assert_eq!(h.read(T, "/t/c").unwrap(), None);
    assert_eq!(h.read(tx, "/t/a").unwrap_err().errno(), Some(Errno::ENOENT));

    // The retry helper converges while another handle keeps writing once.
    let mut tries = 0;
    xen_host::transaction(&h, |tx| {
        tries += 1;
        let v = h.read(tx, "/t/a")?.unwrap_or_default();
        if tries == 1 {
            other.write(T, "/t/a", b"9")?;
        }
        h.write(tx, "/t/copy", &v)
    })
    .unwrap();
    assert_eq!(tries, 2);
    assert_eq!(h.read(T, "/t/copy").unwrap().unwrap(), b"9");
}

#[test]
fn watches_fire_for_changes_from_other_handles() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096);
    let other = SimHost::open(dir.path()).unwrap();
    h.watch("/local/domain/5", "tok").unwrap();
    assert_eq!(
        h.next_watch_event(NOW).unwrap(),
        Some(ev("/local/domain/5", "tok"))
    );
    assert_eq!(
        h.next_watch_event(Some(Duration::from_millis(20))).unwrap(),
        None
    );
    other.write(T, "/local/domain/5/x/y", b"1").unwrap();
    other.write(T, "/local/domain/50", b"1").unwrap();
    assert_eq!(
        h.next_watch_event(WAIT).unwrap(),
        Some(ev("/local/domain/5/x/y", "tok"))
    );
    h.watch("/local/domain/5/x/y/z", "deep").unwrap();
    assert_eq!(h.next_watch_event(NOW).unwrap().unwrap().token, "deep");
    other.rm(T, "/local/domain/5/x").unwrap();
    let mut got = vec![
        h.next_watch_event(WAIT).unwrap().unwrap(),
        h.next_watch_event(WAIT).unwrap().unwrap(),
    ];
    got.sort_by(|a, b| a.token.cmp(&b.token));
    assert_eq!(
        got,
        vec![
            ev("/local/domain/5/x/y/z", "deep"),
            ev("/local/domain/5/x", "tok")
        ]
    );
    h.unwatch("/local/domain/5", "tok").unwrap();
    assert_eq!(
        h.unwatch("/local/domain/5", "tok").unwrap_err().errno(),
        Some(Errno::ENOENT)
    );
    other.write(T, "/local/domain/5/again", b"").unwrap();
    assert_eq!(
        h.next_watch_event(Some(Duration::from_millis(30))).unwrap(),
        None
    );
    assert_eq!(
        h.watch("@bogus", "t").unwrap_err().errno(),
        Some(Errno::EINVAL)
    );
}

#[test]
fn relative_watches_report_relative_paths() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096);
    let guest = SimHost::open(dir.path()).unwrap().with_caller(DomId(4));
    h.write(T, "/local/domain/4/control/shutdown", b"").unwrap();
    h.set_perms(T, "/local/domain/4", &[perm(4, Access::None)])
        .unwrap();
    guest.watch("control", "c").unwrap();
    assert_eq!(
        guest.next_watch_event(NOW).unwrap(),
        Some(ev("control", "c"))
    );
    h.write(T, "/local/domain/4/control/shutdown", b"poweroff")
        .unwrap();
    assert_eq!(
        guest.next_watch_event(WAIT).unwrap(),
        Some(ev("control/shutdown", "c"))
    );
}

#[test]
fn introduce_and_release_fire_special_watches() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096);
    let watcher = SimHost::open(dir.path()).unwrap();
    watcher.watch("@introduceDomain", "in").unwrap();
    watcher.watch("@releaseDomain", "out").unwrap();
    assert_eq!(watcher.next_watch_event(NOW).unwrap().unwrap().token, "in");
    assert_eq!(watcher.next_watch_event(NOW).unwrap().unwrap().token, "out");
    let d = domain(&h, 16);
    assert!(!h.is_domain_introduced(d).unwrap());
    h.introduce(d, Gfn(0xfeffc), 1).unwrap();
    assert!(h.is_domain_introduced(d).unwrap());
    assert!(h.is_domain_introduced(DomId::DOM0).unwrap());
    assert_eq!(
        watcher.next_watch_event(WAIT).unwrap(),
        Some(ev("@introduceDomain", "in"))
    );
    h.introduce(d, Gfn(0xfeffc), 1).unwrap();
    assert_eq!(
        h.introduce(d, Gfn(0x1), 1).unwrap_err().errno(),
        Some(Errno::EINVAL)
    );
    h.release(d).unwrap();
    assert!(!h.is_domain_introduced(d).unwrap());
    assert_eq!(
        watcher.next_watch_event(WAIT).unwrap(),
        Some(ev("@releaseDomain", "out"))
    );
    assert_eq!(h.release(d).unwrap_err().errno(), Some(Errno::ENOENT));
    h.introduce(d, Gfn(0xfeffc), 1).unwrap();
    assert_eq!(watcher.next_watch_event(WAIT).unwrap().unwrap().token, "in");
    h.destroy(d).unwrap();
    assert_eq!(
        watcher.next_watch_event(WAIT).unwrap().unwrap().token,
        "out"
    );
    assert!(!h.is_domain_introduced(d).unwrap());
    assert_eq!(
        h.introduce(DomId(77), Gfn(1), 1).unwrap_err().errno(),
        Some(Errno::ENOENT)
    );
}

#[test]
fn racing_creates_in_threads_get_distinct_ids_and_exact_accounting() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096);
    let ids: Vec<Vec<DomId>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    let me = SimHost::open(dir.path()).unwrap();
                    (0..15)
                        .map(|_| {
                            let d = domain(&me, 64);
                            assert_eq!(me.populate_physmap(d, 9, &[Gfn(0)]).unwrap(), 1);
                            xen_host::transaction(&me, |tx| {
                                let n = me
                                    .read(tx, "/counter")?
                                    .and_then(|v| String::from_utf8(v).ok())
                                    .and_then(|s| s.parse::<u32>().ok())
                                    .unwrap_or(0);
                                me.write(tx, "/counter", (n + 1).to_string().as_bytes())
                            })
                            .unwrap();
                            d
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let mut all: Vec<DomId> = ids.into_iter().flatten().collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 45);
    assert_eq!(
        h.physinfo().unwrap().free_pages,
        (4096 - 1024 - 45 * 2) * 256
    );
    assert_eq!(h.read(T, "/counter").unwrap().unwrap(), b"45");
}

/// Runs as a separate process when `SIM_CHILD_DIR` is set (spawned by
/// `another_process_sees_one_host` and `environment_sizes_a_new_host`).
#[test]
#[ignore = "a child process of other tests"]
fn child_process_helper() {
    let Ok(dir) = std::env::var("SIM_CHILD_DIR") else {
        return;
    };
    let h = SimHost::open(std::path::Path::new(&dir)).unwrap_or_else(|e| panic!("{e}"));
    if std::env::var("RXL_SIM_FAIL").is_ok() {
        let e = h.create_domain(&common::pvh(1)).unwrap_err();
        h.write(T, "/child/fault", e.to_string().as_bytes())
            .unwrap();
        return;
    }
    let d = domain(&h, 32);
    h.write(T, "/child/domid", d.to_string().as_bytes())
        .unwrap();
    h.write(T, &format!("/local/domain/{d}/name"), b"from-child")
        .unwrap();
}

fn run_child(dir: &std::path::Path, env: &[(&str, &str)]) -> std::process::Output {
    let out = run_child_status(dir, env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn another_process_sees_one_host() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096);
    h.watch("/child", "c").unwrap();
    assert_eq!(h.next_watch_event(NOW).unwrap().unwrap().path, "/child");
    run_child(dir.path(), &[]);
    assert_eq!(
        h.next_watch_event(WAIT).unwrap(),
        Some(ev("/child/domid", "c"))
    );
    let d: u16 = String::from_utf8(h.read(T, "/child/domid").unwrap().unwrap())
        .unwrap()
        .parse()
        .unwrap();
    let info = h.domain_info(DomId(d)).unwrap().unwrap();
    assert_eq!(info.max_pages, 32 * 256);
    assert_eq!(
        h.read(T, &format!("/local/domain/{d}/name"))
            .unwrap()
            .unwrap(),
        b"from-child"
    );
    // The next create, in this process, continues after the child's id.
    assert_eq!(domain(&h, 1), DomId(d + 1));

    // RXL_SIM_FAIL is read at open in the child.
    run_child(dir.path(), &[("RXL_SIM_FAIL", "createdomain=ENOSPC")]);
    let msg = String::from_utf8(h.read(T, "/child/fault").unwrap().unwrap()).unwrap();
    assert!(
        msg.contains("ENOSPC") && msg.contains("createdomain"),
        "{msg}"
    );
}

#[test]
fn environment_names_the_bridges_of_a_new_host() {
    let created = |bridges: &str| {
        let dir = tempfile::tempdir().unwrap();
        let out = run_child_status(dir.path(), &[("RXL_SIM_BRIDGES", bridges)]);
        (dir, out)
    };
    let (dir, out) = created("br0, br1");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let h = SimHost::open(dir.path()).unwrap();
    assert_eq!(h.host_config().bridges, ["br0", "br1"]);
    let (dir, out) = created("");
    assert!(out.status.success());
    assert!(SimHost::open(dir.path())
        .unwrap()
        .host_config()
        .bridges
        .is_empty());
    let (_dir, out) = created("xenbr0,a/b");
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("bridge `a/b` is not an interface name"),
        "{text}"
    );
}

/// The child helper's output, whether it succeeded or not.
fn run_child_status(dir: &std::path::Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "--ignored",
        "child_process_helper",
        "--test-threads=1",
    ])
    .env("SIM_CHILD_DIR", dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn environment_sizes_a_new_host() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "--ignored",
            "child_process_helper",
            "--test-threads=1",
        ])
        .env("SIM_CHILD_DIR", dir.path())
        .env("RXL_SIM_MEM_MIB", "8192")
        .env("RXL_SIM_CPUS", "2")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let h = SimHost::open(dir.path()).unwrap();
    let p = h.physinfo().unwrap();
    assert_eq!((p.total_pages, p.nr_cpus), (8192 * 256, 2));

    let bad = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "--ignored",
            "child_process_helper",
            "--test-threads=1",
        ])
        .env("SIM_CHILD_DIR", bad.path())
        .env("RXL_SIM_MEM_MIB", "lots")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("RXL_SIM_MEM_MIB=`lots`"), "{text}");

    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "--ignored",
            "child_process_helper",
            "--test-threads=1",
        ])
        .env("SIM_CHILD_DIR", dir.path())
        .env("RXL_SIM_FAIL", "xs_write:x=ENOMEM")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("RXL_SIM_FAIL `xs_write:x=ENOMEM`") && text.contains("call number"),
        "{text}"
    );
}

#[test]
fn a_watcher_that_falls_behind_the_log_is_told_to_look_again() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096);
    let writer = SimHost::open(dir.path()).unwrap();
    h.watch("/far", "f").unwrap();
    assert_eq!(h.next_watch_event(NOW).unwrap(), Some(ev("/far", "f")));
    // More changes than the log keeps (8 segments of 1024).
    for i in 0..(9 * 1024) {
        writer.write(T, "/noise", i.to_string().as_bytes()).unwrap();
    }
    writer.write(T, "/far/x", b"1").unwrap();
    assert_eq!(h.next_watch_event(WAIT).unwrap(), Some(ev("/far", "f")));
    assert_eq!(h.next_watch_event(WAIT).unwrap(), Some(ev("/far/x", "f")));
    assert_eq!(
        h.next_watch_event(Some(Duration::from_millis(20))).unwrap(),
        None
    );
}
