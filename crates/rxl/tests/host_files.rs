//! The host's files: xl.conf's vif defaults and rxl.conf, on the simulated host (read from
//! DIR/etc/xl.conf and DIR/etc/rxl.conf).

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// A guest config in `dir` booting the test guest, with `extra` lines.
fn guest_cfg(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let g = guest_dir();
    let body = format!(
        "name = \"{name}\"\ntype = \"pvh\"\nmemory = 32\nkernel = \"{}\"\n{extra}",
        g.join("hello.elf").display()
    );
    let p = dir.join(format!("{name}.cfg"));
    std::fs::write(&p, body).expect("write cfg");
    p
}

fn host_file(sim: &Sim, name: &str, text: &str) -> PathBuf {
    let etc = sim.dir.path().join("etc");
    std::fs::create_dir_all(&etc).expect("mkdir etc");
    let p = etc.join(name);
    std::fs::write(&p, text).expect("write host file");
    p
}

#[test]
fn xl_conf_vif_defaults_apply_to_vifs_that_do_not_name_them() {
    let sim = Sim::new();
    host_file(
        &sim,
        "xl.conf",
        "# host defaults\nvif.default.bridge = \"br-host\"\nvif.default.script = \"vif-route\"\n\
         vif.default.gatewaydev = \"eth1\"\nlockfile = \"/var/lock/xl\"\n\
         run_hotplug_scripts = 0\n",
    );
    let cfg = guest_cfg(
        sim.dir.path(),
        "defaults",
        "vif = [ \"mac=00:16:3e:01:02:03\", \"bridge=br-own,script=vif-bridge\" ]\n",
    );
    let path = cfg.to_str().expect("utf-8");
    let v = json(&ok(sim.run(&["create", "-n", path, "--json"])));
    assert_eq!(v["vifs"][0]["bridge"], "br-host", "{v}");
    assert_eq!(v["vifs"][0]["script"], "vif-route", "{v}");
    assert_eq!(v["vifs"][0]["gatewaydev"], "eth1", "{v}");
    assert_eq!(v["vifs"][1]["bridge"], "br-own", "{v}");
    assert_eq!(v["vifs"][1]["script"], "vif-bridge", "{v}");
    let planned = &v["devices"]["planned"];
    assert_eq!(planned[0]["script"], "/etc/xen/scripts/vif-route", "{v}");

    let text = stdout(&ok(sim.run(&["create", "-n", path])));
    assert!(text.contains("netback on bridge br-host"), "{text}");
    assert!(text.contains("netback on bridge br-own"), "{text}");

    // What the create records is the resolved vif: a restart builds the same device. (The
    // simulated host has no netback: with run_hotplug_scripts = 0 rxl does not wait for
    // one.)
    ok(sim.run(&["create", "-p", "-e", path]));
    let listed = json(&ok(sim.run(&["list", "-l", "defaults"])));
    assert_eq!(
        listed[0]["config"]["vifs"][0]["bridge"], "br-host",
        "{listed}"
    );
    // No netback answers the destroy either: do not wait libxl's 10 s for it.
    ok(sim.run_env(
        &["destroy", "defaults"],
        &[("RXL_SIM_DEVICE_TIMEOUT_MS", "100")],
    ));
}

#[test]
fn without_host_files_vifs_get_xl_built_in_defaults() {
    let sim = Sim::new();
    let cfg = guest_cfg(sim.dir.path(), "plain", "vif = [ \"\" ]\n");
    let v = json(&ok(sim.run(&[
        "create",
        "-n",
        cfg.to_str().expect("utf-8"),
        "--json",
    ])));
    assert_eq!(v["vifs"][0]["bridge"], "xenbr0", "{v}");
    assert_eq!(v["vifs"][0]["script"], "vif-bridge", "{v}");
}

#[test]
fn a_broken_host_file_stops_create_naming_its_line_and_column() {
    let sim = Sim::new();
    let xl = host_file(
        &sim,
        "xl.conf",
        "vif.default.bridge = \"br0\nrun_hotplug_scripts = 1\n",
    );
    let cfg = guest_cfg(sim.dir.path(), "broken", "");
    let path = cfg.to_str().expect("utf-8");
    let o = sim.run(&["create", "-n", path]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("{}:1:22: error:", xl.display())),
        "{}",
        stderr(&o)
    );
    std::fs::remove_file(&xl).expect("rm");

    let rxl_conf = host_file(&sim, "rxl.conf", "\nhotplug = \"fast\"\n");
    let o = sim.run(&["create", "-n", path]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "{}:2:11: error: unknown hotplug \"fast\"",
            rxl_conf.display()
        )),
        "{}",
        stderr(&o)
    );
}

/// The simulated host simulates both hotplug paths: a host whose rxl.conf chooses the
/// native one gets its devices set up as with the scripts. (Which runner real Xen gets is
/// `backend::runner_for`'s unit test.)
#[test]
fn rxl_conf_native_is_accepted_on_the_simulated_host() {
    let sim = Sim::new();
    host_file(&sim, "rxl.conf", "hotplug = \"native\"\n");
    let img = sim.dir.path().join("d.img");
    std::fs::write(&img, vec![0u8; 4096]).expect("image");
    let cfg = guest_cfg(
        sim.dir.path(),
        "native",
        &format!("disk = [ \"{},raw,xvda,w\" ]\n", img.display()),
    );
    let o = ok(sim.run(&["create", "-e", cfg.to_str().expect("utf-8")]));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    assert_eq!(sim.host().loop_devices().expect("loops").len(), 1);
    ok(sim.run(&["destroy", "native"]));
    assert_eq!(sim.host().loop_devices().expect("loops"), vec![]);
}
