//! Disk and vif specs through the real parser, with errors pointing inside the strings.

use std::path::{Path, PathBuf};

use xlcfg::model::{
    DiskAccess, DiskBackendType, DiskFormat, DiskSpec, DiskTargetKind, DiskType, MacAddr, NicType,
    VifSpec,
};
use xlcfg::{build, parse_str, Diagnostic};

const HEAD: &str = "name = \"g\"\ntype = \"pvh\"\nkernel = \"vmlinuz\"\n";

fn built(extra: &str) -> Result<xlcfg::Built, Vec<Diagnostic>> {
    let text = format!("{HEAD}{extra}");
    let parsed = parse_str("g.cfg", &text);
    assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics);
    build(&parsed.settings, Path::new("/srv/vm"))
}

fn disks(extra: &str) -> Vec<DiskSpec> {
    match built(extra) {
        Ok(b) => b.config.disks,
        Err(d) => panic!("{}", d.iter().map(Diagnostic::render).collect::<String>()),
    }
}

fn disk(spec: &str) -> DiskSpec {
    let mut d = disks(&format!("disk = [ '{spec}' ]\n"));
    assert_eq!(d.len(), 1);
    d.remove(0)
}

fn vif(spec: &str) -> VifSpec {
    match built(&format!("vif = [ '{spec}' ]\n")) {
        Ok(mut b) => b.config.vifs.remove(0),
        Err(d) => panic!("{}", d.iter().map(Diagnostic::render).collect::<String>()),
    }
}

fn errors(extra: &str) -> Vec<Diagnostic> {
    match built(extra) {
        Ok(b) => panic!("expected errors: {:?}", b.config),
        Err(d) => d.into_iter().filter(Diagnostic::is_error).collect(),
    }
}

fn target(d: &DiskSpec) -> Option<PathBuf> {
    d.target.as_ref().map(|t| t.value.clone())
}

#[test]
fn the_equivalent_forms_of_the_manual_agree() {
    let forms = [
        "/dev/vg/guest-volume,,hda",
        "/dev/vg/guest-volume,raw,hda,rw",
        "format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume",
        "raw:/dev/vg/guest-volume,hda,w",
    ];
    for f in forms {
        let d = disk(f);
        assert_eq!(
            target(&d),
            Some(PathBuf::from("/dev/vg/guest-volume")),
            "{f}"
        );
        assert_eq!(d.target_kind, DiskTargetKind::Device, "{f}");
        assert_eq!(
            (d.format, d.access, d.devtype),
            (DiskFormat::Raw, DiskAccess::Rw, DiskType::Disk),
            "{f}"
        );
        assert_eq!(d.vdev, "hda", "{f}");
    }
    let cdroms = [
        "/root/image.iso,,hdc,cdrom",
        "/root/image.iso,,hdc,,cdrom",
        "/root/image.iso,raw,hdc,devtype=cdrom",
        "format=raw, vdev=hdc, access=ro, devtype=cdrom, target=/root/image.iso",
        "raw:/root/image.iso,hdc:cdrom,ro",
    ];
    for f in cdroms {
        let d = disk(f);
        assert_eq!(target(&d), Some(PathBuf::from("/root/image.iso")), "{f}");
        assert_eq!(d.target_kind, DiskTargetKind::File, "{f}");
        assert_eq!(
            (d.devtype, d.access, d.vdev.as_str()),
            (DiskType::Cdrom, DiskAccess::Ro, "hdc"),
            "{f}"
        );
    }
}

#[test]
fn file_targets_resolve_against_the_config_directory() {
    let d = disk("images/root.qcow2,qcow2,xvda");
    assert_eq!(target(&d), Some(PathBuf::from("/srv/vm/images/root.qcow2")));
    assert_eq!(
        (d.target_kind, d.format),
        (DiskTargetKind::File, DiskFormat::Qcow2)
    );
    let t = d.target.as_ref().map(|t| (t.line, t.column));
    assert_eq!(t, Some((4, 11)));
    // phy: names a device: /dev is prepended, nothing is resolved.
    let d = disk("phy:vg0/root,xvda,w");
    assert_eq!(target(&d), Some(PathBuf::from("/dev/vg0/root")));
    assert_eq!(d.target_kind, DiskTargetKind::Device);
    let d = disk("vg0/root,raw,xvda,backendtype=phy");
    assert_eq!(
        (target(&d), d.backendtype),
        (
            Some(PathBuf::from("/dev/vg0/root")),
            Some(DiskBackendType::Phy)
        )
    );
    // tap:aio: prefixes are stripped; the old syntax puts the vdev second.
    let d = disk("tap:aio:disk.img,xvdb,r");
    assert_eq!(target(&d), Some(PathBuf::from("/srv/vm/disk.img")));
    assert_eq!((d.vdev.as_str(), d.access), ("xvdb", DiskAccess::Ro));
    // A script target is kept verbatim.
    let d = disk("iscsi:iqn.2001-05.com.example:disk,xvdc");
    assert_eq!(d.target_kind, DiskTargetKind::Script);
    assert_eq!(d.script.as_deref(), Some("block-iscsi"));
    assert_eq!(
        target(&d),
        Some(PathBuf::from("iqn.2001-05.com.example:disk"))
    );
    // target= swallows commas.
    let d = disk("vdev=xvdd, target=/odd,name.img");
    assert_eq!(target(&d), Some(PathBuf::from("/odd,name.img")));
}

#[test]
fn empty_cdrom_and_flags() {
    let d = disk(",xvdc:cdrom,r");
    assert_eq!(
        (target(&d), d.target_kind, d.format),
        (None, DiskTargetKind::Empty, DiskFormat::Empty)
    );
    let d = disk("/d.img,,xvda,rw,discard,untrusted,direct-io-safe,backend=stor");
    assert_eq!(
        (d.discard, d.trusted, d.direct_io_safe),
        (Some(true), Some(false), true)
    );
    assert_eq!(d.backend.as_deref(), Some("stor"));
}

#[test]
fn disk_errors_point_inside_the_string() {
    // disk = [ '/d.img,qcow3,xvda' ]  -> the format starts at column 18.
    let e = errors("disk = [ '/d.img,qcow3,xvda' ]\n");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].message, "disk 1: unknown format \"qcow3\"");
    assert_eq!((e[0].span.line, e[0].span.column), (4, 18));
    assert_eq!(
        e[0].render(),
        "g.cfg:4:18: error: disk 1: unknown format \"qcow3\"\n  4 | disk = [ '/d.img,qcow3,xvda' ]\n    |                  ^^^^^\n  = hint: use raw, qcow, qcow2, vhd, qed or empty\n"
    );
    let e = errors("disk = [ '/d.img,raw,xvda,rw,extra' ]\n");
    assert_eq!(e[0].message, "disk 1: too many positional parameters");
    assert_eq!(e[0].span.column, 30);
    let e = errors("disk = [ '/d.img,raw,xvda,acess=rw' ]\n");
    assert_eq!(e[0].message, "disk 1: unknown parameter `acess`");
    assert_eq!(e[0].hint.as_deref(), Some("did you mean `access`?"));
    assert_eq!(e[0].span.column, 27);
    let e = errors("disk = [ '/d.img,raw,xvda,wx' ]\n");
    assert_eq!(e[0].message, "disk 1: unknown access \"wx\"");
    let e = errors("disk = [ 'bogus:/x,xvda' ]\n");
    assert_eq!(
        e[0].message,
        "disk 1: unknown deprecated disk prefix `bogus:`"
    );
    assert_eq!(e[0].span.column, 11);
    let e = errors("disk = [ '/d.img,raw' ]\n");
    assert_eq!(e[0].message, "disk 1 has no vdev");
    let e = errors("disk = [ '/d.img,raw,eth0' ]\n");
    assert_eq!(e[0].message, "disk 1: invalid vdev \"eth0\"");
    assert_eq!(e[0].span.column, 22);
    let e = errors("disk = [ ',,xvda' ]\n");
    assert_eq!(e[0].message, "disk 1 has no target");
    let e = errors("disk = [ 'format=raw,format=qcow2,vdev=xvda,target=/x' ]\n");
    assert_eq!(e[0].message, "disk 1: format respecified");
}

#[test]
fn duplicate_vdevs_name_both_entries() {
    let e = errors("disk = [ '/a,raw,xvda',\n  '/b,raw,xvda' ]\n");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].message, "disk 2: vdev xvda is already used");
    assert_eq!((e[0].span.line, e[0].notes[0].0.line), (5, 4));
}

#[test]
fn vif_defaults_and_keys() {
    let v = vif("");
    assert_eq!(
        (v.bridge.as_str(), v.script.as_str(), v.devid),
        ("xenbr0", "vif-bridge", 0)
    );
    assert!(v.mac_generated);
    assert_eq!(&v.mac.0[..3], &[0x00, 0x16, 0x3e]);
    let v = vif("mac=00:16:3E:12:34:56, bridge=br1,type=vif, vifname=web0,ip=10.0.0.2,script=vif-route,backend=net,mtu=9000,devid=3,rate=10Mb/s@10ms,model=e1000,gatewaydev=eth0,trusted");
    assert_eq!(v.mac, MacAddr([0x00, 0x16, 0x3e, 0x12, 0x34, 0x56]));
    assert!(!v.mac_generated);
    assert_eq!(v.bridge, "br1");
    assert_eq!(v.nic_type, Some(NicType::Vif));
    assert_eq!(v.vifname.as_deref(), Some("web0"));
    assert_eq!(v.ip.as_deref(), Some("10.0.0.2"));
    assert_eq!(v.script, "vif-route");
    assert_eq!(v.backend.as_deref(), Some("net"));
    assert_eq!((v.mtu, v.devid), (Some(9000), 3));
    let r = v.rate.unwrap_or_else(|| panic!("rate"));
    assert_eq!((r.bytes_per_sec, r.interval_usecs), (1_250_000, 10_000));
    assert_eq!(v.model.as_deref(), Some("e1000"));
    assert_eq!(v.gatewaydev.as_deref(), Some("eth0"));
    assert_eq!(v.trusted, Some(true));
    // Devids follow the entry index.
    let b = built("vif = [ 'bridge=a', 'bridge=b' ]\n").unwrap_or_else(|_| panic!("build"));
    assert_eq!(
        b.config.vifs.iter().map(|v| v.devid).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert_ne!(b.config.vifs[0].mac, b.config.vifs[1].mac);
}

#[test]
fn vif_type_and_model() {
    assert_eq!(vif("").nic_type, None);
    assert_eq!(vif("type=ioemu").nic_type, Some(NicType::Ioemu));
    assert_eq!(vif("type=vif").nic_type, Some(NicType::Vif));
    assert_eq!(vif("").model, None);
    for m in ["rtl8139", "e1000", "virtio-net-pci", "ne2k_pci", "i82559er"] {
        assert_eq!(vif(&format!("model={m}")).model.as_deref(), Some(m));
    }
    // An unknown model is refused where it is written, with the nearest known one.
    let rendered = match built("vif = [ 'bridge=xenbr0, model=e100' ]\n") {
        Ok(b) => panic!("accepted: {:?}", b.config.vifs),
        Err(d) => d.iter().map(Diagnostic::render).collect::<String>(),
    };
    assert!(
        rendered.contains("g.cfg:4:31: error: vif 1: unknown emulated NIC model \"e100\""),
        "{rendered}"
    );
    let e = errors("vif = [ 'model=e100' ]\n");
    assert_eq!(e[0].hint.as_deref(), Some("did you mean `e1000`?"));
    let e = errors("vif = [ 'model=nonsense-card' ]\n");
    assert!(e[0]
        .hint
        .as_deref()
        .is_some_and(|h| h.starts_with("known models: e1000 ")));
    let e = errors("vif = [ 'type=ioemu2' ]\n");
    assert_eq!(e[0].message, "vif 1: invalid type \"ioemu2\"");
    assert_eq!(e[0].hint.as_deref(), Some("use vif or ioemu"));
}

#[test]
fn vif_errors_point_inside_the_string() {
    let e = errors("vif = [ 'bridge=br0,mac=00:16:3e:zz:00:01' ]\n");
    assert_eq!(
        e[0].message,
        "vif 1: invalid MAC address \"00:16:3e:zz:00:01\""
    );
    assert_eq!((e[0].span.line, e[0].span.column), (4, 25));
    let e = errors("vif = [ 'mac=01:16:3e:00:00:01' ]\n");
    assert_eq!(
        e[0].message,
        "vif 1: MAC 01:16:3e:00:00:01 is a multicast address"
    );
    let e = errors("vif = [ 'rate=fast' ]\n");
    assert_eq!(e[0].message, "vif 1: invalid rate \"fast\"");
    assert_eq!(e[0].span.column, 15);
    let e = errors("vif = [ 'brige=br0' ]\n");
    assert_eq!(e[0].message, "vif 1: unknown parameter `brige`");
    assert_eq!(e[0].hint.as_deref(), Some("did you mean `bridge`?"));
    let e = errors("vif = [ 'mtu=20' ]\n");
    assert_eq!(e[0].message, "vif 1: invalid mtu \"20\"");
    let e = errors("vif = [ 'type=tap' ]\n");
    assert_eq!(e[0].message, "vif 1: invalid type \"tap\"");
    let e = errors("vif = [ 'mac=00:16:3e:00:00:01', 'mac=00:16:3e:00:00:01' ]\n");
    assert_eq!(e[0].message, "vif 2: MAC 00:16:3e:00:00:01 is already used");
    let e = errors("vif = 'bridge=br0'\n");
    assert_eq!(e[0].message, "`vif` must be a list of vif specs");
}

#[test]
fn netdev_is_deprecated() {
    let b = built("vif = [ 'netdev=eth1' ]\n").unwrap_or_else(|_| panic!("build"));
    assert_eq!(b.config.vifs[0].gatewaydev.as_deref(), Some("eth1"));
    assert!(b
        .warnings
        .iter()
        .any(|w| w.message == "vif 1: `netdev` is deprecated"));
}
