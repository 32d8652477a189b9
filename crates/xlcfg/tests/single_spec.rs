//! One DISKSPEC or VIFSPEC given on a command line, and the host's vif defaults.

use std::path::{Path, PathBuf};

use xlcfg::model::{
    build_with, disk_arg, vif_arg, vif_arg_with, DiskAccess, DiskFormat, DiskTargetKind,
    VifDefaults,
};
use xlcfg::{parse_str, Diagnostic};

fn rendered(d: &[Diagnostic]) -> String {
    d.iter().map(Diagnostic::render).collect()
}

#[test]
fn a_command_line_disk_is_read_as_a_disk_item_is() {
    let (d, warnings) = disk_arg("img/root.img,raw,xvdb,ro", Path::new("/home/u"))
        .unwrap_or_else(|e| panic!("{}", rendered(&e)));
    assert!(warnings.is_empty());
    assert_eq!(
        d.target.as_ref().map(|t| t.value.clone()),
        Some(PathBuf::from("/home/u/img/root.img"))
    );
    assert_eq!(d.target_kind, DiskTargetKind::File);
    assert_eq!(
        (d.vdev.as_str(), d.access, d.format),
        ("xvdb", DiskAccess::Ro, DiskFormat::Raw)
    );
    let t = d.target.as_ref().map(|t| (t.line, t.column));
    assert_eq!(t, Some((1, 1)));

    let (d, _) = disk_arg("phy:vg/data,xvdc,w", Path::new("/home/u"))
        .unwrap_or_else(|e| panic!("{}", rendered(&e)));
    assert_eq!(
        d.target.map(|t| t.value),
        Some(PathBuf::from("/dev/vg/data"))
    );
    assert_eq!(d.target_kind, DiskTargetKind::Device);
}

#[test]
fn a_bad_command_line_disk_points_into_the_argument() {
    let e = disk_arg("/srv/a.img,raw,xvdb,rx", Path::new("/"))
        .err()
        .unwrap_or_else(|| panic!("accepted"));
    let text = rendered(&e);
    assert!(
        text.starts_with("command line:1:21: error: disk: unknown access \"rx\""),
        "{text}"
    );
    assert!(text.contains("  1 | /srv/a.img,raw,xvdb,rx\n"), "{text}");
    assert!(text.contains("    |                     ^^\n"), "{text}");

    let e = disk_arg("/srv/a.img", Path::new("/"))
        .err()
        .unwrap_or_else(|| panic!("accepted"));
    assert!(
        rendered(&e).starts_with("command line:1:1: error: disk has no vdev"),
        "{}",
        rendered(&e)
    );
    let e = disk_arg("/srv/a.img,raw,xvdB", Path::new("/"))
        .err()
        .unwrap_or_else(|| panic!("accepted"));
    assert!(
        rendered(&e).starts_with("command line:1:16: error: disk: invalid vdev \"xvdB\""),
        "{}",
        rendered(&e)
    );
}

#[test]
fn a_command_line_vif_is_read_as_a_vif_item_is() {
    let (v, w) = vif_arg("mac=00:16:3e:01:02:03,bridge=br1,mtu=9000")
        .unwrap_or_else(|e| panic!("{}", rendered(&e)));
    assert!(w.is_empty());
    assert_eq!(v.mac.to_string(), "00:16:3e:01:02:03");
    assert!(!v.mac_generated);
    assert_eq!(
        (v.bridge.as_str(), v.script.as_str()),
        ("br1", "vif-bridge")
    );
    assert_eq!((v.devid, v.mtu), (0, Some(9000)));

    let (v, _) = vif_arg("").unwrap_or_else(|e| panic!("{}", rendered(&e)));
    assert!(v.mac_generated);
    assert_eq!(v.bridge, "xenbr0");

    let e = vif_arg("bridge=br1,mac=01:16:3e:01:02:03")
        .err()
        .unwrap_or_else(|| panic!("accepted"));
    assert!(
        rendered(&e).starts_with(
            "command line:1:16: error: vif: MAC 01:16:3e:01:02:03 is a multicast address"
        ),
        "{}",
        rendered(&e)
    );
    let e = vif_arg("brige=br1")
        .err()
        .unwrap_or_else(|| panic!("accepted"));
    let text = rendered(&e);
    assert!(
        text.starts_with("command line:1:1: error: vif: unknown parameter `brige`"),
        "{text}"
    );
    assert!(text.contains("did you mean `bridge`?"), "{text}");
}

fn host() -> VifDefaults {
    VifDefaults {
        bridge: "br-guests".into(),
        script: "vif-route".into(),
        backend: Some("netdom".into()),
        gatewaydev: Some("eth1".into()),
    }
}

#[test]
fn host_defaults_fill_what_a_vif_does_not_say() {
    let (v, _) = vif_arg_with("mac=00:16:3e:01:02:03", &host())
        .unwrap_or_else(|e| panic!("{}", rendered(&e)));
    assert_eq!(v.bridge, "br-guests");
    assert_eq!(v.script, "vif-route");
    assert_eq!(v.backend.as_deref(), Some("netdom"));
    assert_eq!(v.gatewaydev.as_deref(), Some("eth1"));

    let (v, _) = vif_arg_with(
        "bridge=xenbr0,script=vif-bridge,backend=0,gatewaydev=eth0",
        &host(),
    )
    .unwrap_or_else(|e| panic!("{}", rendered(&e)));
    assert_eq!(v.bridge, "xenbr0");
    assert_eq!(v.script, "vif-bridge");
    assert_eq!(v.backend.as_deref(), Some("0"));
    assert_eq!(v.gatewaydev.as_deref(), Some("eth0"));
}

#[test]
fn a_config_built_for_a_host_takes_its_vif_defaults() {
    let parsed = parse_str(
        "g.cfg",
        "name = \"g\"\ntype = \"pvh\"\nkernel = \"k\"\nvif = [ '', 'bridge=br9' ]\n",
    );
    let built = build_with(&parsed.settings, Path::new("/srv"), &host())
        .unwrap_or_else(|e| panic!("{}", rendered(&e)));
    let v = &built.config.vifs;
    assert_eq!(
        (v[0].bridge.as_str(), v[1].bridge.as_str()),
        ("br-guests", "br9")
    );
    assert_eq!(
        (v[0].script.as_str(), v[1].script.as_str()),
        ("vif-route", "vif-route")
    );
    let plain = xlcfg::build(&parsed.settings, Path::new("/srv"))
        .unwrap_or_else(|e| panic!("{}", rendered(&e)));
    assert_eq!(plain.config.vifs[0].bridge, "xenbr0");
}

#[test]
fn a_missing_image_of_a_command_line_disk_is_named_at_its_position() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("here.img"), b"").unwrap_or_else(|e| panic!("{e}"));
    let (ok, _) = disk_arg("here.img,raw,xvdb", dir.path()).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(xlcfg::model::check_disk_files(&[ok]).is_empty());
    let (d, _) = disk_arg("vdev=xvdb,target=gone.img", dir.path())
        .unwrap_or_else(|e| panic!("{}", rendered(&e)));
    let missing = xlcfg::model::check_disk_files(&[d]);
    let text = rendered(&missing);
    assert!(
        text.starts_with(&format!(
            "command line:1:18: error: disk image {} does not exist",
            dir.path().join("gone.img").display()
        )),
        "{text}"
    );
    assert!(
        text.contains("hint: a relative path is taken from the current directory"),
        "{text}"
    );
}
