//! `rxl autostart start|stop|list` on the simulated host.

mod common;

use std::path::{Path, PathBuf};

use common::{guest_dir, json, ok, stderr, stdout, Sim};

/// Writes `dir/file` configuring the test guest `name`.
fn guest_cfg(dir: &Path, file: &str, name: &str) -> PathBuf {
    let g = guest_dir().display().to_string();
    let path = dir.join(file);
    std::fs::write(
        &path,
        format!(
            "name = \"{name}\"\ntype = \"pvh\"\nmemory = 32\nkernel = \"{g}/hello.elf\"\n\
             ramdisk = \"{g}/initrd.img\"\ncmdline = \"hello\"\n"
        ),
    )
    .expect("write cfg");
    path
}

fn names(sim: &Sim) -> Vec<String> {
    let mut n: Vec<String> = sim
        .domains()
        .iter()
        .filter(|d| d["domid"] != 0)
        .filter_map(|d| d["name"].as_str().map(str::to_string))
        .collect();
    n.sort();
    n
}

#[test]
fn start_creates_the_directorys_guests_once() {
    let sim = Sim::new();
    let auto = tempfile::tempdir().expect("tmp");
    guest_cfg(auto.path(), "b.cfg", "bravo");
    guest_cfg(auto.path(), "a.cfg", "alpha");
    // Not configs: another suffix, a hidden file.
    guest_cfg(auto.path(), "c.cfg.bak", "charlie");
    guest_cfg(auto.path(), ".d.cfg", "delta");
    let dir = auto.path().to_str().expect("utf-8");
    let o = ok(sim.run(&["autostart", "start", "--dir", dir]));
    let text = stdout(&o);
    // In name order.
    let (a, b) = (text.find("alpha: started"), text.find("bravo: started"));
    assert!(a.is_some() && b.is_some() && a < b, "{text}");
    assert_eq!(names(&sim), ["alpha", "bravo"]);
    // Idempotent: a second start creates nothing more.
    let o = ok(sim.run(&["autostart", "start", "--dir", dir]));
    assert!(
        stdout(&o).contains("alpha: already running"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("bravo: already running"),
        "{}",
        stdout(&o)
    );
    assert_eq!(names(&sim), ["alpha", "bravo"]);
}

#[test]
fn a_bad_config_is_named_and_the_others_still_start() {
    let sim = Sim::new();
    let auto = tempfile::tempdir().expect("tmp");
    guest_cfg(auto.path(), "1.cfg", "one");
    std::fs::write(auto.path().join("2.cfg"), "name = \"two\"\nmemory = \n").expect("write");
    guest_cfg(auto.path(), "3.cfg", "three");
    // A directory named like a config, and a link that leads nowhere.
    std::fs::create_dir(auto.path().join("4.cfg")).expect("mkdir");
    std::os::unix::fs::symlink("/nonexistent/x.cfg", auto.path().join("5.cfg")).expect("link");
    // A link to a config elsewhere is followed (as xendomains users set it up).
    let elsewhere = tempfile::tempdir().expect("tmp");
    let target = guest_cfg(elsewhere.path(), "six.cfg", "six");
    std::os::unix::fs::symlink(&target, auto.path().join("6.cfg")).expect("link");
    // Too large.
    std::fs::write(auto.path().join("7.cfg"), vec![b'#'; (1 << 20) + 1]).expect("write");
    let dir = auto.path().to_str().expect("utf-8");
    let o = sim.run(&["autostart", "start", "--dir", dir]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(names(&sim), ["one", "six", "three"]);
    let err = stderr(&o);
    let summary = &err[err.find("failed:").expect("a summary")..];
    let file = |n: &str| auto.path().join(n).display().to_string();
    assert!(
        summary.contains(&format!("{}: invalid config", file("2.cfg"))),
        "{err}"
    );
    // The parse error itself names the file, line and column.
    assert!(err.contains(&format!("{}:2:", file("2.cfg"))), "{err}");
    assert!(
        summary.contains(&format!("{}: not a regular file", file("4.cfg"))),
        "{err}"
    );
    assert!(
        summary.contains(&format!(
            "{}: a symbolic link that leads nowhere",
            file("5.cfg")
        )),
        "{err}"
    );
    assert!(
        summary.contains(&format!(
            "{}: 1048577 bytes: larger than 1 MiB",
            file("7.cfg")
        )),
        "{err}"
    );
    assert!(
        !summary.contains("6.cfg") && !summary.contains("1.cfg"),
        "{err}"
    );
}

#[test]
fn a_failing_create_is_reported_with_its_file() {
    let sim = Sim::new();
    let auto = tempfile::tempdir().expect("tmp");
    guest_cfg(auto.path(), "a.cfg", "alpha");
    guest_cfg(auto.path(), "b.cfg", "bravo");
    let dir = auto.path().to_str().expect("utf-8");
    // The first createdomain of each create process fails: both fail, each is named.
    let o = sim.run_env(
        &["autostart", "start", "--dir", dir],
        &[("RXL_SIM_FAIL", "createdomain=ENOMEM")],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    for f in ["a.cfg", "b.cfg"] {
        let line = format!("{}: cannot create", auto.path().join(f).display());
        assert!(err.contains(&line), "{line} in {err}");
    }
    assert!(names(&sim).is_empty());
}

#[test]
fn stop_shuts_down_what_start_started_and_destroys_a_guest_that_ignores_it() {
    let sim = Sim::new();
    let auto = tempfile::tempdir().expect("tmp");
    guest_cfg(auto.path(), "a.cfg", "polite");
    guest_cfg(auto.path(), "b.cfg", "deaf");
    let dir = auto.path().to_str().expect("utf-8");
    ok(sim.run(&["autostart", "start", "--dir", dir]));
    // Not started by autostart: left alone without --all.
    let other = guest_cfg(auto.path(), "other.conf", "bystander");
    ok(sim.run(&["create", other.to_str().expect("utf-8")]));
    let deaf = sim.domain("deaf").expect("deaf runs")["domid"]
        .as_u64()
        .expect("domid");
    sim.host()
        .guest_event(
            xen_host::DomId(u16::try_from(deaf).expect("u16")),
            sim::GuestEvent::IgnoreShutdown(true),
        )
        .expect("make it ignore shutdown");
    let o = ok(sim.run(&["autostart", "stop", "--timeout", "2"]));
    let text = stdout(&o);
    assert!(text.contains("polite (domain "), "{text}");
    assert!(text.contains("): shut down"), "{text}");
    assert!(
        text.contains("deaf (domain ") && text.contains("did not shut down within 2 s: destroyed"),
        "{text}"
    );
    assert_eq!(names(&sim), ["bystander"]);
    // A guest kept after it shut down (on_poweroff = "preserve") is destroyed too.
    std::fs::write(
        auto.path().join("c.cfg"),
        std::fs::read_to_string(auto.path().join("a.cfg")).expect("read")
            + "on_poweroff = \"preserve\"\n",
    )
    .expect("write");
    std::fs::remove_file(auto.path().join("b.cfg")).expect("rm");
    std::fs::remove_file(auto.path().join("a.cfg")).expect("rm");
    ok(sim.run(&["autostart", "start", "--dir", dir]));
    let o = ok(sim.run(&["autostart", "stop", "--timeout", "20"]));
    assert!(
        stdout(&o).contains("shut down but kept (on_poweroff = \"preserve\"): destroyed"),
        "{}",
        stdout(&o)
    );
    assert_eq!(names(&sim), ["bystander"]);
    // --all takes every domain but Domain-0.
    ok(sim.run(&["autostart", "stop", "--all", "--timeout", "5"]));
    assert!(names(&sim).is_empty());
    assert!(sim.domain("Domain-0").is_some());
}

#[test]
fn list_names_each_guest_and_whether_it_runs() {
    let sim = Sim::new();
    let auto = tempfile::tempdir().expect("tmp");
    guest_cfg(auto.path(), "a.cfg", "alpha");
    guest_cfg(auto.path(), "b.cfg", "bravo");
    std::fs::write(auto.path().join("c.cfg"), "name = \n").expect("write");
    let dir = auto.path().to_str().expect("utf-8");
    let bravo = auto.path().join("b.cfg");
    ok(sim.run(&["create", bravo.to_str().expect("utf-8")]));
    let v = json(&ok(sim.run(&["autostart", "list", "--dir", dir, "--json"])));
    let items = v.as_array().expect("array");
    assert_eq!(items.len(), 3, "{v}");
    assert_eq!(items[0]["name"], "alpha");
    assert_eq!(items[0]["running"], false);
    assert_eq!(items[1]["name"], "bravo");
    assert_eq!(items[1]["running"], true);
    assert!(items[1]["domid"].as_u64().is_some());
    assert_eq!(items[2]["name"], serde_json::Value::Null);
    assert_eq!(items[2]["error"], "invalid config");
    let text = stdout(&ok(sim.run(&["autostart", "list", "--dir", dir])));
    assert!(
        text.lines()
            .any(|l| l.starts_with("alpha") && l.contains("stopped")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("bravo") && l.contains("running")),
        "{text}"
    );
}

#[test]
fn the_directory_defaults_to_rxl_confs_autostart_dir() {
    let sim = Sim::new();
    let auto = tempfile::tempdir().expect("tmp");
    guest_cfg(auto.path(), "a.cfg", "alpha");
    let etc = sim.dir.path().join("etc");
    std::fs::create_dir_all(&etc).expect("mkdir");
    std::fs::write(
        etc.join("rxl.conf"),
        format!("autostart_dir = \"{}\"\n", auto.path().display()),
    )
    .expect("write rxl.conf");
    ok(sim.run(&["autostart", "start"]));
    assert_eq!(names(&sim), ["alpha"]);
}

#[test]
fn a_missing_default_directory_starts_nothing_but_a_missing_dir_argument_is_an_error() {
    let sim = Sim::new();
    let etc = sim.dir.path().join("etc");
    std::fs::create_dir_all(&etc).expect("mkdir");
    let absent = sim.dir.path().join("no-such-auto");
    std::fs::write(
        etc.join("rxl.conf"),
        format!("autostart_dir = \"{}\"\n", absent.display()),
    )
    .expect("write rxl.conf");
    let o = ok(sim.run(&["autostart", "start"]));
    assert!(stdout(&o).contains("nothing to start"), "{}", stdout(&o));
    ok(sim.run(&["autostart", "list"]));
    let o = sim.run(&[
        "autostart",
        "start",
        "--dir",
        absent.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot read the autostart directory"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn records_of_guests_no_longer_running_are_dropped_at_start() {
    // As after a host reboot: the record of what an earlier start created is still in the
    // state directory, and its name is now carried by a guest someone created by hand.
    let sim = Sim::new();
    let auto = tempfile::tempdir().expect("tmp");
    guest_cfg(auto.path(), "a.cfg", "alpha");
    let dir = auto.path().to_str().expect("utf-8");
    ok(sim.run(&["autostart", "start", "--dir", dir]));
    ok(sim.run(&["destroy", "alpha"]));
    std::fs::remove_file(auto.path().join("a.cfg")).expect("rm");
    // A start with nothing to create forgets alpha.
    ok(sim.run(&["autostart", "start", "--dir", dir]));
    let by_hand = guest_cfg(sim.dir.path(), "alpha.cfg", "alpha");
    ok(sim.run(&["create", by_hand.to_str().expect("utf-8")]));
    ok(sim.run(&["autostart", "stop", "--timeout", "5"]));
    assert_eq!(names(&sim), ["alpha"]);
}
