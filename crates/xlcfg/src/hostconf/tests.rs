use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
    p
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"))
}

fn invalid(e: HostConfError) -> Vec<String> {
    match e {
        HostConfError::Invalid { diagnostics, .. } => {
            diagnostics.iter().map(Diagnostic::render).collect()
        }
        other => panic!("expected Invalid, got {other}"),
    }
}

#[test]
fn missing_files_mean_the_built_in_defaults() {
    let dir = tmp();
    let r = read(&dir.path().join("xl.conf"), &dir.path().join("rxl.conf"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.conf, HostConf::default());
    assert!(r.warnings.is_empty());
    assert_eq!(r.conf.xl.vif.bridge, "xenbr0");
    assert_eq!(r.conf.xl.vif.script, "vif-bridge");
    assert_eq!(r.conf.xl.vif.backend, None);
    assert!(r.conf.xl.run_hotplug_scripts);
    assert_eq!(r.conf.hotplug_mode(), HotplugMode::Scripts);
}

/// Every option of Xen 4.17's example xl.conf, uncommented: the ones rxl honours are
/// taken, the others are ignored without a warning, as xl ignores what it does not use.
#[test]
fn xl_conf_keys_rxl_honours_are_taken_and_the_rest_ignored() {
    let dir = tmp();
    let p = write(
        dir.path(),
        "xl.conf",
        "## Global XL config file ##\n\
         domid_policy=\"xen\"\n\
         autoballoon=\"auto\"\n\
         lockfile=\"/var/lock/xl\"\n\
         output_format=\"json\"\n\
         blkdev_start=\"xvda\"\n\
         run_hotplug_scripts=0\n\
         vif.default.backend=\"netback-dom\"\n\
         vif.default.gatewaydev=\"eth0\"\n\
         vif.default.script=\"vif-route\"\n\
         vif.default.bridge=\"br-guests\"\n\
         claim_mode=1\n\
         vm.cpumask=\"0-7\"\n\
         vm.pv.cpumask=\"0-3\"\n\
         vm.hvm.cpumask=\"3-7\"\n\
         some.future.key = [ 1, 2 ]\n",
    );
    let r = read_xl_conf(&p).unwrap_or_else(|e| panic!("{e}"));
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(
        r.conf.vif,
        VifDefaults {
            bridge: "br-guests".into(),
            script: "vif-route".into(),
            backend: Some("netback-dom".into()),
            gatewaydev: Some("eth0".into()),
        }
    );
    assert!(!r.conf.run_hotplug_scripts);
}

#[test]
fn deprecated_xl_conf_keys_warn_and_lose_to_their_replacements() {
    let dir = tmp();
    let p = write(
        dir.path(),
        "xl.conf",
        "vifscript = \"vif-nat\"\ndefaultbridge = \"old0\"\nvif.default.bridge = \"new0\"\n",
    );
    let r = read_xl_conf(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.conf.vif.script, "vif-nat");
    assert_eq!(r.conf.vif.bridge, "new0");
    let w: Vec<String> = r.warnings.iter().map(Diagnostic::render).collect();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].contains("xl.conf:1:1: warning: `vifscript` is deprecated"),
        "{w:?}"
    );
    assert!(w[0].contains("vif.default.script"), "{w:?}");
    assert!(
        w[1].contains("xl.conf:2:1: warning: `defaultbridge` is deprecated"),
        "{w:?}"
    );
}

#[test]
fn run_hotplug_scripts_takes_numbers_as_xl_does() {
    let dir = tmp();
    for (text, want) in [
        ("run_hotplug_scripts = 1\n", true),
        ("run_hotplug_scripts = \"0\"\n", false),
        ("run_hotplug_scripts = 0x0\n", false),
        ("run_hotplug_scripts = 2\n", true),
    ] {
        let p = write(dir.path(), "xl.conf", text);
        let r = read_xl_conf(&p).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(r.conf.run_hotplug_scripts, want, "{text}");
    }
}

#[test]
fn bad_values_are_errors_at_their_file_line_and_column() {
    let dir = tmp();
    let p = write(
        dir.path(),
        "xl.conf",
        "# host\nrun_hotplug_scripts = \"yes\"\nvif.default.bridge = [ \"a\" ]\n",
    );
    let e = invalid(read_xl_conf(&p).err().unwrap_or_else(|| panic!("accepted")));
    let shown = p.display();
    assert!(
        e.iter().any(|d| d.starts_with(&format!(
            "{shown}:2:23: error: `run_hotplug_scripts` is not a number: `yes`"
        ))),
        "{e:?}"
    );
    assert!(
        e.iter().any(|d| d.starts_with(&format!(
            "{shown}:3:22: error: `vif.default.bridge` must be a string, not a list"
        ))),
        "{e:?}"
    );
}

#[test]
fn syntax_errors_name_the_file_line_and_column() {
    let dir = tmp();
    let p = write(dir.path(), "xl.conf", "vif.default.bridge = \"xenbr0\n");
    let e = invalid(read_xl_conf(&p).err().unwrap_or_else(|| panic!("accepted")));
    assert!(
        e[0].starts_with(&format!("{}:1:22: error:", p.display())),
        "{e:?}"
    );
    let p = write(dir.path(), "rxl.conf", "hotplug = native\n");
    let e = invalid(
        read_rxl_conf(&p)
            .err()
            .unwrap_or_else(|| panic!("accepted")),
    );
    assert!(
        e[0].starts_with(&format!("{}:1:11: error:", p.display())),
        "{e:?}"
    );
}

#[test]
fn a_host_file_that_is_not_a_regular_file_is_refused() {
    let dir = tmp();
    let e = read_xl_conf(dir.path())
        .err()
        .unwrap_or_else(|| panic!("accepted"));
    assert!(
        matches!(e, HostConfError::Read(ReadError::NotRegular { .. })),
        "{e}"
    );
}

#[test]
fn rxl_conf_chooses_the_hotplug_path() {
    let dir = tmp();
    let p = write(dir.path(), "rxl.conf", "# rxl\nhotplug = \"native\"\n");
    let r = read_rxl_conf(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.conf.hotplug, HotplugChoice::Native);
    let p = write(dir.path(), "rxl.conf", "hotplug = \"scripts\"\n");
    let r = read_rxl_conf(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.conf.hotplug, HotplugChoice::Scripts);

    let p = write(dir.path(), "rxl.conf", "hotplug = \"udev\"\n");
    let e = invalid(
        read_rxl_conf(&p)
            .err()
            .unwrap_or_else(|| panic!("accepted")),
    );
    assert!(
        e[0].starts_with(&format!(
            "{}:1:11: error: unknown hotplug \"udev\": expected \"scripts\" or \"native\"",
            p.display()
        )),
        "{e:?}"
    );

    let p = write(dir.path(), "rxl.conf", "hotplugs = \"native\"\n");
    let r = read_rxl_conf(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.conf.hotplug, HotplugChoice::Scripts);
    let w = r.warnings[0].render();
    assert!(w.contains("unknown key `hotplugs` is ignored"), "{w}");
    assert!(w.contains("did you mean `hotplug`?"), "{w}");
}

#[test]
fn run_hotplug_scripts_0_hands_hotplug_to_udev_whatever_rxl_conf_says() {
    let mut h = HostConf::default();
    assert_eq!(h.hotplug_mode(), HotplugMode::Scripts);
    h.rxl.hotplug = HotplugChoice::Native;
    assert_eq!(h.hotplug_mode(), HotplugMode::Native);
    h.xl.run_hotplug_scripts = false;
    assert_eq!(h.hotplug_mode(), HotplugMode::Udev);
    h.rxl.hotplug = HotplugChoice::Scripts;
    assert_eq!(h.hotplug_mode(), HotplugMode::Udev);
}

#[test]
fn rxl_conf_sets_the_bootloader_user_and_time_limit() {
    let dir = tmp();
    let r = read_rxl_conf(&dir.path().join("none")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.conf.bootloader_user, "nobody");
    assert_eq!(r.conf.bootloader_timeout_s, 120);
    let p = write(
        dir.path(),
        "rxl.conf",
        "bootloader_user = \"xen-boot\"\nbootloader_timeout = 5\n",
    );
    let r = read_rxl_conf(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.conf.bootloader_user, "xen-boot");
    assert_eq!(r.conf.bootloader_timeout_s, 5);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    for (text, says) in [
        (
            "bootloader_timeout = 0\n",
            "1:22: error: `bootloader_timeout` must be seconds",
        ),
        (
            "bootloader_timeout = \"soon\"\n",
            "`bootloader_timeout` must be seconds",
        ),
        (
            "bootloader_user = \"\"\n",
            "1:19: error: `bootloader_user` is empty",
        ),
    ] {
        let p = write(dir.path(), "rxl.conf", text);
        let e = invalid(
            read_rxl_conf(&p)
                .err()
                .unwrap_or_else(|| panic!("accepted {text}")),
        );
        assert!(e[0].contains(says), "{text}: {e:?}");
    }
}

#[test]
fn rxl_conf_moves_bounds_or_disables_the_kernel_cache() {
    let dir = tmp();
    let p = write(dir.path(), "rxl.conf", "hotplug = \"native\"\n");
    let r = read_rxl_conf(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        r.conf.kernel_cache.as_deref(),
        Some(Path::new(DEFAULT_KERNEL_CACHE))
    );
    assert_eq!(r.conf.kernel_cache_max_mib, DEFAULT_KERNEL_CACHE_MAX_MIB);
    let p = write(
        dir.path(),
        "rxl.conf",
        "kernel_cache = \"/srv/kc\"\nkernel_cache_max_mib = 64\n",
    );
    let r = read_rxl_conf(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.conf.kernel_cache.as_deref(), Some(Path::new("/srv/kc")));
    assert_eq!(r.conf.kernel_cache_max_mib, 64);
    assert_eq!(r.conf.hotplug, HotplugChoice::Scripts);
    let p = write(dir.path(), "rxl.conf", "kernel_cache = \"off\"\n");
    let r = read_rxl_conf(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.conf.kernel_cache, None);

    let p = write(dir.path(), "rxl.conf", "kernel_cache = \"kc\"\n");
    let e = invalid(
        read_rxl_conf(&p)
            .err()
            .unwrap_or_else(|| panic!("accepted")),
    );
    assert!(
        e[0].starts_with(&format!(
            "{}:1:16: error: kernel_cache \"kc\" is not an absolute directory or \"off\"",
            p.display()
        )),
        "{e:?}"
    );
    let p = write(dir.path(), "rxl.conf", "kernel_cache_max_mib = \"lots\"\n");
    let e = invalid(
        read_rxl_conf(&p)
            .err()
            .unwrap_or_else(|| panic!("accepted")),
    );
    assert!(
        e[0].contains("1:24: error: kernel_cache_max_mib is not a number of MiB: `lots`"),
        "{e:?}"
    );
}

#[test]
fn autostart_dir_is_an_absolute_directory_defaulting_to_xendomains_one() {
    let dir = tmp();
    let none = read_rxl_conf(&dir.path().join("absent")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(none.conf.autostart_dir, PathBuf::from("/etc/xen/auto"));
    let p = write(dir.path(), "rxl.conf", "autostart_dir = \"/srv/auto\"\n");
    let r = read_rxl_conf(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.conf.autostart_dir, PathBuf::from("/srv/auto"));
    assert!(r.warnings.is_empty());
    let p = write(dir.path(), "rxl.conf", "autostart_dir = \"auto\"\n");
    let e = invalid(read_rxl_conf(&p).expect_err("relative"));
    assert!(
        e[0].contains("1:17: error: autostart_dir \"auto\" is not an absolute directory"),
        "{e:?}"
    );
}
