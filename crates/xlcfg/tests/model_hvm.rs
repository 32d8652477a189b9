//! `type = "hvm"` configs: firmware, direct boot, device keys, defaults and refusals.

use std::path::{Path, PathBuf};

use xlcfg::model::{Bios, DomainConfig, Firmware, HdType, HvmConfig, Vga, Vnc};
use xlcfg::{build, parse_str, Boot, Diagnostic};

const HVM: &str = "name = \"h\"\ntype = \"hvm\"\n";

fn render(d: &[Diagnostic]) -> String {
    d.iter().map(Diagnostic::render).collect()
}

fn built(extra: &str) -> (DomainConfig, Vec<Diagnostic>) {
    let parsed = parse_str("/etc/xen/h.cfg", &format!("{HVM}{extra}"));
    assert!(!parsed.has_errors(), "{}", render(&parsed.diagnostics));
    let b =
        build(&parsed.settings, Path::new("/etc/xen")).unwrap_or_else(|d| panic!("{}", render(&d)));
    (b.config, b.warnings)
}

fn hvm(extra: &str) -> HvmConfig {
    built(extra).0.hvm.expect("an HVM guest has HVM settings")
}

/// The first line of each error, rendered (`file:line:col: error: message`).
fn errors(extra: &str) -> Vec<String> {
    let parsed = parse_str("/etc/xen/h.cfg", &format!("{HVM}{extra}"));
    match build(&parsed.settings, Path::new("/etc/xen")) {
        Ok(b) => panic!("accepted: {:#?}", b.config),
        Err(d) => d
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.render().lines().next().unwrap_or_default().to_string())
            .collect(),
    }
}

fn warned(w: &[Diagnostic], needle: &str) -> bool {
    w.iter().any(|d| d.message.contains(needle))
}

#[test]
fn defaults_are_libxls_with_vnc_off() {
    let (c, w) = built("");
    assert!(w.is_empty(), "{}", render(&w));
    let h = c.hvm.clone().expect("hvm");
    assert_eq!(h.bios, Bios::Seabios);
    assert_eq!(h.hvmloader, None);
    assert_eq!(h.direct_boot, None);
    assert_eq!(h.boot_order, "cda");
    assert!(h.serial.is_empty());
    assert_eq!(h.vnc, None);
    assert!(!h.sdl && !h.nographic);
    assert_eq!((h.vga, h.videoram_mib), (Vga::Cirrus, 8));
    assert!(h.acpi && h.apic && h.pae && h.hpet);
    assert!(h.viridian.is_empty());
    assert_eq!(h.mmio_hole_mib, None);
    assert_eq!(h.hdtype, HdType::Ide);
    assert!(matches!(
        &c.boot,
        Boot::Firmware { firmware, .. } if firmware.value == Firmware::Seabios
    ));
    assert!(c.device_model.is_default());
}

#[test]
fn device_keys_are_read() {
    let h = hvm(
        "boot = \"dc\"\nserial = \"pty\"\nvnc = 1\nvncdisplay = 3\nvncunused = 0\n\
                 sdl = 0\nnographic = 1\nstdvga = 1\nvideoram = 32\nacpi = 0\napic = 0\n\
                 pae = 0\nhpet = 0\nviridian = 1\nmmio_hole = 1024\n",
    );
    assert_eq!(h.boot_order, "dc");
    assert_eq!(h.serial, vec!["pty".to_string()]);
    assert_eq!(
        h.vnc,
        Some(Vnc {
            listen: "127.0.0.1".into(),
            display: Some(3),
            find_unused: false
        })
    );
    assert!(h.nographic && !h.sdl);
    assert_eq!((h.vga, h.videoram_mib), (Vga::Std, 32));
    assert!(!h.acpi && !h.apic && !h.pae && !h.hpet);
    assert_eq!(
        h.viridian,
        [
            "base",
            "freq",
            "time_ref_count",
            "apic_assist",
            "crash_ctl",
            "no_vp_limit",
            "cpu_hotplug"
        ]
        .map(String::from)
        .to_vec()
    );
    assert_eq!(h.mmio_hole_mib, Some(1024));

    let h = hvm(
        "serial = [ \"pty\", \"file:/tmp/s1\" ]\nvnc = 1\nvnclisten = \"0.0.0.0\"\n\
                 vga = \"none\"\nviridian = [ \"base\", \"!freq\", \"synic\" ]\n",
    );
    assert_eq!(
        h.serial,
        vec!["pty".to_string(), "file:/tmp/s1".to_string()]
    );
    assert_eq!(
        h.vnc.map(|v| (v.listen, v.find_unused)),
        Some(("0.0.0.0".into(), true))
    );
    assert_eq!((h.vga, h.videoram_mib), (Vga::None, 0));
    assert_eq!(h.viridian, vec!["base".to_string(), "synic".to_string()]);
    let h = hvm("viridian = [ \"defaults\", \"!cpu_hotplug\", \"stimer\" ]\n");
    assert_eq!(
        h.viridian,
        [
            "base",
            "freq",
            "time_ref_count",
            "apic_assist",
            "crash_ctl",
            "stimer",
            "no_vp_limit"
        ]
        .map(String::from)
        .to_vec()
    );
    assert_eq!(hvm("viridian = [ \"all\" ]\n").viridian.len(), 13);
}

#[test]
fn vnc_settings_without_vnc_warn() {
    let (c, w) = built("vnclisten = \"0.0.0.0\"\n");
    assert_eq!(c.hvm.and_then(|h| h.vnc), None);
    assert!(
        warned(&w, "`vnclisten` is ignored: VNC is off"),
        "{}",
        render(&w)
    );
}

#[test]
fn firmware_bios_and_hvmloader() {
    assert_eq!(hvm("bios = \"rombios\"\n").bios, Bios::Rombios);
    assert_eq!(hvm("bios = \"OVMF\"\n").bios, Bios::Ovmf);
    assert_eq!(hvm("firmware = \"ovmf\"\n").bios, Bios::Ovmf);
    // xl's aliases are refused.
    let e = errors("firmware = \"uefi\"\n");
    assert!(
        e.iter()
            .any(|m| m.contains("firmware = \"uefi\" is refused: name the UEFI firmware")),
        "{e:?}"
    );
    // firmware overrides bios, as in xl.
    let (c, w) = built("bios = \"rombios\"\nfirmware = \"seabios\"\n");
    assert_eq!(c.hvm.map(|h| h.bios), Some(Bios::Seabios));
    assert!(warned(&w, "overrides bios = \"rombios\""));
    // A path replaces hvmloader; the BIOS stays.
    let (c, _) = built("bios = \"rombios\"\nfirmware = \"./my-hvmloader\"\n");
    let h = c.hvm.clone().expect("hvm");
    assert_eq!(h.bios, Bios::Rombios);
    assert_eq!(
        h.hvmloader.map(|p| p.value),
        Some(PathBuf::from("/etc/xen/my-hvmloader"))
    );
    assert!(matches!(
        &c.boot,
        Boot::Firmware { firmware, .. }
            if firmware.value == Firmware::Path(PathBuf::from("/etc/xen/my-hvmloader"))
    ));
    let h = hvm("firmware_override = \"/x/hvmloader\"\nbios_path_override = \"/x/bios.bin\"\nbios = \"seabios\"\n");
    assert_eq!(
        h.hvmloader.map(|p| p.value),
        Some(PathBuf::from("/x/hvmloader"))
    );
    assert_eq!(
        h.bios_path.map(|p| p.value),
        Some(PathBuf::from("/x/bios.bin"))
    );
    let (_, w) = built("bios_path_override = \"/x/bios.bin\"\n");
    assert!(warned(
        &w,
        "`bios_path_override` is given without a BIOS name"
    ));
}

#[test]
fn direct_kernel_boot_goes_to_the_device_model() {
    let (c, w) = built("kernel = \"vmlinuz\"\nramdisk = \"/boot/initrd\"\nroot = \"/dev/sda1\"\nextra = \"console=ttyS0\"\n");
    assert!(w.is_empty(), "{}", render(&w));
    assert_eq!(c.boot.kind(), "firmware");
    let d = c.hvm.and_then(|h| h.direct_boot).expect("direct boot");
    assert_eq!(d.kernel.value, PathBuf::from("/etc/xen/vmlinuz"));
    assert_eq!(
        d.ramdisk.map(|r| r.value),
        Some(PathBuf::from("/boot/initrd"))
    );
    assert_eq!(d.cmdline.as_deref(), Some("root=/dev/sda1 console=ttyS0"));
    // kernel and firmware together are fine for HVM: the BIOS runs, QEMU loads the kernel.
    let h = hvm("kernel = \"/k\"\nfirmware = \"seabios\"\n");
    assert!(h.direct_boot.is_some());
    // An old-style kernel = hvmloader is dropped, as xl does.
    let (c, w) = built("kernel = \"/usr/lib/xen/boot/hvmloader\"\n");
    assert_eq!(c.hvm.and_then(|h| h.direct_boot), None);
    assert!(warned(&w, "`kernel` names hvmloader: it is ignored"));
    let (_, w) = built("cmdline = \"x\"\n");
    assert!(warned(
        &w,
        "`cmdline` is ignored for an HVM guest without a kernel"
    ));
}

#[test]
fn device_model_keys() {
    let (c, _) = built(
        "device_model_override = \"/opt/qemu/bin/qemu-system-i386\"\n\
                        device_model_args = [ \"-d\", \"guest_errors\" ]\n",
    );
    assert_eq!(
        c.device_model.program.map(|p| p.value),
        Some(PathBuf::from("/opt/qemu/bin/qemu-system-i386"))
    );
    assert_eq!(
        c.device_model.args,
        vec!["-d".to_string(), "guest_errors".to_string()]
    );
}

#[test]
fn hdtype_is_ide_or_ahci() {
    assert_eq!(hvm("hdtype = \"ahci\"\n").hdtype, HdType::Ahci);
    assert_eq!(hvm("hdtype = \"AHCI\"\n").hdtype, HdType::Ahci);
    assert_eq!(hvm("hdtype = \"ide\"\n").hdtype, HdType::Ide);
    let (_, w) = built("hdtype = \"ahci\"\n");
    assert!(w.is_empty(), "{}", render(&w));
}

#[test]
fn refusals_name_file_line_and_column() {
    let cases: [(&str, &str); 14] = [
        ("hdtype = \"sata\"\n", "/etc/xen/h.cfg:3:10: error: unknown hdtype \"sata\": expected ide or ahci"),
        ("viridian = [ \"synic\" ]\n", "/etc/xen/h.cfg:3:12: error: viridian: the base group is not enabled, and every other group needs it"),
        ("bios = \"coreboot\"\n", "/etc/xen/h.cfg:3:8: error: invalid bios \"coreboot\": expected rombios, seabios, ovmf"),
        ("boot = \"cx\"\n", "/etc/xen/h.cfg:3:10: error: unknown boot device 'x' in boot = \"cx\""),
        ("boot = \"cdc\"\n", "/etc/xen/h.cfg:3:11: error: boot device 'c' is given twice in boot = \"cdc\""),
        ("vga = \"vesa\"\n", "/etc/xen/h.cfg:3:7: error: unknown vga \"vesa\": expected stdvga, cirrus or none"),
        ("vga = \"qxl\"\n", "/etc/xen/h.cfg:3:7: error: vga = \"qxl\" is not supported by rxl: it needs SPICE"),
        ("stdvga = 1\nvideoram = 8\n", "/etc/xen/h.cfg:4:12: error: videoram = 8 is too small: stdvga needs at least 16 MiB"),
        ("videoram = 4\n", "/etc/xen/h.cfg:3:12: error: videoram = 4 is too small: cirrus needs at least 8 MiB"),
        ("mmio_hole = 128\n", "/etc/xen/h.cfg:3:13: error: `mmio_hole` = 128 is out of range: it must be between 256 and 3840"),
        ("viridian = [ \"base\", \"frq\" ]\n", "/etc/xen/h.cfg:3:22: error: unknown viridian enlightenment \"frq\""),
        ("vnc = \"yes\"\n", "/etc/xen/h.cfg:3:7: error: `vnc` is not a number: `yes`"),
        ("serial = \"\"\n", "/etc/xen/h.cfg:3:10: error: `serial` is empty"),
        ("firmware = \"pvgrub64\"\n", "/etc/xen/h.cfg:3:12: error: firmware \"pvgrub64\" needs type = \"pv\", not type = \"hvm\""),
    ];
    for (extra, want) in cases {
        assert_eq!(errors(extra), vec![want.to_string()], "{extra}");
    }
    assert_eq!(
        errors("firmware = \"/a/hvmloader\"\nfirmware_override = \"/b/hvmloader\"\n"),
        vec![
            "/etc/xen/h.cfg:4:1: error: `firmware_override` and `firmware` both name an hvmloader"
                .to_string()
        ]
    );
}

#[test]
fn hvm_keys_warn_for_other_types() {
    let parsed = parse_str(
        "g.cfg",
        "name = \"g\"\ntype = \"pvh\"\nkernel = \"/k\"\nboot = \"c\"\n",
    );
    let b = build(&parsed.settings, Path::new("/")).expect("builds");
    assert!(b.config.hvm.is_none());
    assert!(warned(
        &b.warnings,
        "`boot` is only used for type = \"hvm\" and is ignored for type = \"pvh\""
    ));
}

#[test]
fn json_round_trips() {
    let (c, _) = built(
        "kernel = \"/k\"\nramdisk = \"/r\"\ncmdline = \"console=ttyS0\"\n\
                        serial = \"pty\"\nvnc = 1\nstdvga = 1\nboot = \"n\"\nbios = \"ovmf\"\n\
                        firmware_override = \"/h\"\nviridian = [ \"all\" ]\nmmio_hole = 512\n\
                        device_model_args = [ \"-S\" ]\n",
    );
    let back = DomainConfig::from_json(&c.to_json()).expect("from_json");
    assert_eq!(back, c);
    // PV and PVH JSON does not change shape.
    let parsed = parse_str("g.cfg", "name = \"g\"\ntype = \"pvh\"\nkernel = \"/k\"\n");
    let pvh = build(&parsed.settings, Path::new("/"))
        .expect("builds")
        .config;
    let j = pvh.to_json();
    assert!(
        j.get("hvm").is_none() && j.get("device_model").is_none(),
        "{j}"
    );
}
