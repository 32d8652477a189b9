//! `vif-bridge online` / `offline` through rtnetlink, each test in a network namespace of
//! its own (a thread that unshares CLONE_NEWNET, so the host's links are never touched),
//! with a veth standing in for netback's vif and a simulated xenstore.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{privileged, Recorder, Xs};
use devices::hotplug::{vif_command, Action, Hotplug, HotplugCommand};
use hostdev::rtnl::{Link, Rtnl};
use hostdev::Native;
use xen_host::DomId;

/// Run `body` in a thread inside a fresh network namespace; `false` when the test may
/// not run (see `privileged`).
fn in_netns(test: &str, body: impl FnOnce() + Send + 'static) -> bool {
    if !privileged(test, None) {
        return false;
    }
    let r = std::thread::spawn(move || {
        if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET) {
            return Err(format!("unshare(CLONE_NEWNET): {e}"));
        }
        let mut nl = Rtnl::open().map_err(|e| format!("rtnetlink: {e}"))?;
        if let Err(e) = nl.add_bridge("rxltestbr") {
            return Err(format!("cannot create a bridge: {e}"));
        }
        body();
        Ok(())
    })
    .join();
    match r {
        Ok(Ok(())) => true,
        Ok(Err(missing)) => privileged(test, Some(missing)),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

struct Vif {
    xs: Xs,
    native: Native,
    fallback: Recorder,
    script_dir: PathBuf,
    path: String,
}

impl Vif {
    /// Backend nodes of vif 5.0 on `bridge` (as the toolstack writes them) and a veth
    /// named `vif5.0` standing in for netback's interface.
    fn new(bridge: &str) -> Vif {
        let xs = Xs::new();
        let fallback = Recorder::default();
        let native = Native::new(xs.store.clone(), fallback.clone());
        let script_dir = xs.dir.path().join("scripts");
        std::fs::create_dir_all(&script_dir).expect("script dir");
        let path = "backend/vif/5/0".to_owned();
        xs.write(&format!("{path}/bridge"), bridge);
        xs.write(&format!("{path}/frontend-id"), "5");
        xs.write(&format!("{path}/state"), "2");
        xs.write(&format!("{path}/hotplug-status"), "");
        xs.write("/local/domain/5/device/vif/0/mtu", "1500");
        let mut nl = Rtnl::open().expect("rtnetlink");
        nl.add_veth("vif5.0", "peer5.0").expect("veth");
        Vif {
            xs,
            native,
            fallback,
            script_dir,
            path,
        }
    }

    fn cmd(&self, action: Action) -> HotplugCommand {
        let script = self.script_dir.join("vif-bridge");
        vif_command(&script.to_string_lossy(), DomId(5), 0, None, action)
    }

    fn run(&self, action: Action) -> i32 {
        let run = self
            .native
            .run(&self.cmd(action), &self.xs.log(), Duration::from_secs(10))
            .expect("native run");
        run.exit_code.expect("exit code")
    }

    fn node(&self, key: &str) -> Option<String> {
        self.xs.read(&format!("{}/{key}", self.path))
    }
}

fn link(name: &str) -> Option<Link> {
    Rtnl::open().expect("rtnetlink").link(name).expect("lookup")
}

#[test]
fn online_makes_the_vif_a_port_of_its_bridge_and_offline_takes_it_off() {
    in_netns(
        "online_makes_the_vif_a_port_of_its_bridge_and_offline_takes_it_off",
        || {
            let vif = Vif::new("rxltestbr");
            vif.xs.write(&format!("{}/mtu", vif.path), "1400");
            assert_eq!(vif.run(Action::Add), 0, "{}", vif.xs.log_text());
            let br = link("rxltestbr").expect("bridge");
            let port = link("vif5.0").expect("vif");
            assert_eq!(port.master, Some(br.index));
            assert!(port.up);
            assert_eq!(port.mtu, Some(1400));
            assert_eq!(
                port.address.as_deref(),
                Some(&[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff][..])
            );
            assert_eq!(vif.node("hotplug-status").as_deref(), Some("connected"));
            assert_eq!(vif.node("hotplug-error"), None);
            assert_eq!(
                vif.xs.read("/local/domain/5/device/vif/0/mtu").as_deref(),
                Some("1400")
            );
            assert!(vif.fallback.seen().is_empty());
            // Twice is harmless (already a port).
            assert_eq!(vif.run(Action::Add), 0);
            assert!(vif.xs.log_text().contains("already on bridge rxltestbr"));

            assert_eq!(vif.run(Action::Remove), 0, "{}", vif.xs.log_text());
            let port = link("vif5.0").expect("vif");
            assert_eq!(port.master, None);
            assert!(!port.up);
            // Gone (netback removed it): offline still succeeds.
            Rtnl::open()
                .expect("rtnl")
                .delete(port.index)
                .expect("delete");
            assert_eq!(vif.run(Action::Remove), 0);
            assert!(vif
                .xs
                .log_text()
                .contains("vif5.0 is gone: nothing to undo"));
        },
    );
}

#[test]
fn without_an_mtu_node_the_vif_takes_the_bridges_mtu() {
    in_netns("without_an_mtu_node_the_vif_takes_the_bridges_mtu", || {
        let vif = Vif::new("rxltestbr");
        let br = link("rxltestbr").expect("bridge");
        assert_eq!(vif.run(Action::Add), 0, "{}", vif.xs.log_text());
        let port = link("vif5.0").expect("vif");
        assert_eq!(port.mtu, br.mtu);
        assert_eq!(port.master, Some(br.index));
    });
}

#[test]
fn a_missing_bridge_fails_with_hotplug_error_naming_it() {
    in_netns(
        "a_missing_bridge_fails_with_hotplug_error_naming_it",
        || {
            let vif = Vif::new("xenbr9");
            assert_eq!(vif.run(Action::Add), 1);
            assert_eq!(
                vif.node("hotplug-error").as_deref(),
                Some("Could not find bridge device xenbr9")
            );
            assert_eq!(vif.node("hotplug-status").as_deref(), Some("error"));
            let port = link("vif5.0").expect("vif");
            assert_eq!(port.master, None);
            assert!(vif
                .xs
                .log_text()
                .contains("failed: Could not find bridge device xenbr9"));
        },
    );
}

#[test]
fn a_missing_xenbr_n_means_eth_n_when_that_is_a_bridge() {
    in_netns(
        "a_missing_xenbr_n_means_eth_n_when_that_is_a_bridge",
        || {
            Rtnl::open()
                .expect("rtnl")
                .add_bridge("eth7")
                .expect("bridge eth7");
            let vif = Vif::new("xenbr7");
            assert_eq!(vif.run(Action::Add), 0, "{}", vif.xs.log_text());
            let br = link("eth7").expect("eth7");
            assert_eq!(link("vif5.0").expect("vif").master, Some(br.index));
        },
    );
}

#[test]
fn a_bridge_name_that_is_not_a_bridge_is_refused() {
    in_netns("a_bridge_name_that_is_not_a_bridge_is_refused", || {
        let vif = Vif::new("peer5.0");
        assert_eq!(vif.run(Action::Add), 1);
        assert_eq!(
            vif.node("hotplug-error").as_deref(),
            Some("peer5.0 is not a bridge (asked for bridge peer5.0)")
        );
    });
}

#[test]
fn vifname_renames_the_interface_and_offline_uses_the_new_name() {
    in_netns(
        "vifname_renames_the_interface_and_offline_uses_the_new_name",
        || {
            let vif = Vif::new("rxltestbr");
            vif.xs.write(&format!("{}/vifname", vif.path), "guest-net");
            assert_eq!(vif.run(Action::Add), 0, "{}", vif.xs.log_text());
            assert_eq!(link("vif5.0"), None);
            let br = link("rxltestbr").expect("bridge");
            assert_eq!(link("guest-net").expect("renamed").master, Some(br.index));
            assert_eq!(vif.run(Action::Remove), 0);
            assert_eq!(link("guest-net").expect("renamed").master, None);

            // A second vif asking for a name that is taken: refused, as the script does.
            let mut nl = Rtnl::open().expect("rtnl");
            nl.add_veth("vif6.0", "peer6.0").expect("veth");
            vif.xs.write("backend/vif/6/0/bridge", "rxltestbr");
            vif.xs.write("backend/vif/6/0/vifname", "guest-net");
            let script = vif.script_dir.join("vif-bridge");
            let cmd = vif_command(&script.to_string_lossy(), DomId(6), 0, None, Action::Add);
            let run = vif
                .native
                .run(&cmd, &vif.xs.log(), Duration::from_secs(5))
                .expect("ran");
            assert_eq!(run.exit_code, Some(1));
            assert_eq!(
                vif.xs.read("backend/vif/6/0/hotplug-error").as_deref(),
                Some("Cannot rename interface vif6.0. An interface with name guest-net already exists.")
            );
        },
    );
}

#[test]
fn ip_hooks_and_other_scripts_go_to_the_fallback_unchanged() {
    in_netns(
        "ip_hooks_and_other_scripts_go_to_the_fallback_unchanged",
        || {
            let vif = Vif::new("rxltestbr");
            vif.xs.write(&format!("{}/ip", vif.path), "192.0.2.7");
            assert_eq!(vif.run(Action::Add), 0);
            let script = vif.script_dir.join("vif-bridge");
            assert_eq!(
                vif.fallback.seen(),
                [format!("{} online type_if=vif", script.display())]
            );
            assert!(vif
                .xs
                .log_text()
                .contains("goes to the scripts: the vif has ip="));
            // Nothing was done natively.
            assert_eq!(link("vif5.0").expect("vif").master, None);
            // What the script set up (its iptables rules) the script takes down.
            assert_eq!(vif.run(Action::Remove), 0);
            assert_eq!(
                vif.fallback.seen().last(),
                Some(&format!("{} offline type_if=vif", script.display()))
            );
            let seen = vif.fallback.seen().len();

            vif.xs.rm_all(&format!("{}/ip", vif.path));
            let hooks = vif.script_dir.join("vif-post.d");
            std::fs::create_dir_all(&hooks).expect("hooks dir");
            let hook = hooks.join("00-x.hook");
            std::fs::write(&hook, "true\n").expect("hook");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            assert_eq!(vif.run(Action::Add), 0);
            assert_eq!(vif.fallback.seen().len(), seen + 1);
            std::fs::remove_file(&hook).expect("rm hook");

            let route = vif_command("/etc/xen/scripts/vif-route", DomId(5), 0, None, Action::Add);
            vif.native
                .run(&route, &vif.xs.log(), Duration::from_secs(5))
                .expect("ran");
            assert_eq!(vif.fallback.seen().len(), seen + 2);
            // With neither, the vif is handled natively.
            assert_eq!(vif.run(Action::Add), 0);
            assert_eq!(vif.fallback.seen().len(), seen + 2);
            assert!(link("vif5.0").expect("vif").master.is_some());
        },
    );
}

/// One native online and offline, timed (run with `--ignored --nocapture`, release
/// build).
#[test]
#[ignore = "a measurement, not a check"]
fn timing_of_a_native_online_and_offline() {
    in_netns("timing_of_a_native_online_and_offline", || {
        let vif = Vif::new("rxltestbr");
        let (mut on, mut off) = (Vec::new(), Vec::new());
        for _ in 0..30 {
            let run = vif
                .native
                .run(&vif.cmd(Action::Add), &vif.xs.log(), Duration::from_secs(5))
                .expect("online");
            assert_eq!(run.exit_code, Some(0));
            on.push(run.elapsed);
            let run = vif
                .native
                .run(
                    &vif.cmd(Action::Remove),
                    &vif.xs.log(),
                    Duration::from_secs(5),
                )
                .expect("offline");
            assert_eq!(run.exit_code, Some(0));
            off.push(run.elapsed);
        }
        for (name, mut v) in [
            ("native vif-bridge online", on),
            ("native vif-bridge offline", off),
        ] {
            v.sort();
            println!(
                "{name}: median {} us, min {} us, p90 {} us ({} runs)",
                v[v.len() / 2].as_micros(),
                v[0].as_micros(),
                v[v.len() * 9 / 10].as_micros(),
                v.len()
            );
        }
    });
}
