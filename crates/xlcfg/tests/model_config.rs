//! Whole configs through parse + overrides + build, as `rxl create` runs them.

use std::path::{Path, PathBuf};

use xlcfg::model::{Action, DiskTargetKind};
use xlcfg::{
    apply_overrides, build, check_files, parse_file, parse_str, Boot, Diagnostic, DomainType,
};

const TYPICAL: &str = r#"# a typical PVH guest
name = "web1"
type = "pvh"
memory = 1024
maxmem = 2048
vcpus = 2
maxvcpus = 4
kernel = "boot/vmlinuz"
ramdisk = "boot/initrd.img"
modules = [ "boot/microcode.bin", [ "boot/extra.cpio", "verbose" ] ]
root = "/dev/xvda1"
extra = "console=hvc0 quiet"
on_crash = "preserve"
disk = [ "root.img,raw,xvda,rw", "phy:/dev/vg0/data,xvdb,w" ]
vif = [ "mac=00:16:3e:01:02:03,bridge=xenbr0", "bridge=xenbr1" ]
"#;

fn render(d: &[Diagnostic]) -> String {
    d.iter().map(Diagnostic::render).collect()
}

#[test]
fn typical_pvh_config() {
    let parsed = parse_str("/etc/xen/web1.cfg", TYPICAL);
    assert!(!parsed.has_errors(), "{}", render(&parsed.diagnostics));
    let b =
        build(&parsed.settings, Path::new("/etc/xen")).unwrap_or_else(|d| panic!("{}", render(&d)));
    assert!(b.warnings.is_empty(), "{}", render(&b.warnings));
    let c = &b.config;
    assert_eq!((c.name.as_str(), c.domain_type), ("web1", DomainType::Pvh));
    assert_eq!(
        (c.memory_mib, c.maxmem_mib, c.vcpus, c.maxvcpus),
        (1024, 2048, 2, 4)
    );
    assert_eq!(c.on_crash, Action::Preserve);
    let Boot::Kernel {
        kernel,
        cmdline,
        modules,
    } = &c.boot
    else {
        panic!("{:?}", c.boot);
    };
    assert_eq!(kernel.value, PathBuf::from("/etc/xen/boot/vmlinuz"));
    assert_eq!(kernel.line, 8);
    assert_eq!(
        cmdline.as_deref(),
        Some("root=/dev/xvda1 console=hvc0 quiet")
    );
    let paths: Vec<&Path> = modules.iter().map(|m| m.path.value.as_path()).collect();
    assert_eq!(
        paths,
        [
            Path::new("/etc/xen/boot/initrd.img"),
            Path::new("/etc/xen/boot/microcode.bin"),
            Path::new("/etc/xen/boot/extra.cpio"),
        ]
    );
    assert_eq!(modules[2].cmdline.as_deref(), Some("verbose"));
    assert_eq!(c.disks.len(), 2);
    assert_eq!(c.disks[0].target_kind, DiskTargetKind::File);
    assert_eq!(c.disks[1].target_kind, DiskTargetKind::Device);
    assert_eq!(c.vifs[1].bridge, "xenbr1");
    let j = c.to_json();
    assert_eq!(j["boot"]["modules"][2]["cmdline"], "verbose");
    assert_eq!(j["disks"][1]["target"], "/dev/vg0/data");
}

#[test]
fn overrides_win_and_relative_override_paths_use_the_working_directory() {
    let mut parsed = parse_str("/etc/xen/web1.cfg", TYPICAL);
    let d = apply_overrides(
        &mut parsed.settings,
        &[
            "memory=2048".to_string(),
            "kernel=other/vmlinuz".to_string(),
        ],
    );
    assert!(d.is_empty(), "{}", render(&d));
    let b =
        build(&parsed.settings, Path::new("/etc/xen")).unwrap_or_else(|d| panic!("{}", render(&d)));
    assert_eq!(b.config.memory_mib, 2048);
    let cwd = std::env::current_dir().unwrap_or_else(|e| panic!("{e}"));
    let Boot::Kernel { kernel, .. } = &b.config.boot else {
        panic!()
    };
    assert_eq!(kernel.value, cwd.join("other/vmlinuz"));
}

#[test]
fn errors_render_with_both_lines() {
    let text = "name = \"g\"\ntype = \"pvh\"\nkernel = \"/k\"\nfirmware = \"/fw\"\n";
    let parsed = parse_str("g.cfg", text);
    let e = build(&parsed.settings, Path::new("/"))
        .err()
        .unwrap_or_default();
    assert_eq!(
        render(&e),
        "g.cfg:4:1: error: `kernel` and `firmware` are both set: a guest boots one way\n  4 | firmware = \"/fw\"\n    | ^^^^^^^^\ng.cfg:3:1: note: `kernel` is set here\n  3 | kernel = \"/k\"\n    | ^^^^^^\n  = hint: keep exactly one of kernel, firmware or bootloader\n"
    );

    let text = "name = \"g\"\ntype = \"pvh\"\nfirmware = \"seabios\"\n";
    let parsed = parse_str("g.cfg", text);
    let e = build(&parsed.settings, Path::new("/"))
        .err()
        .unwrap_or_default();
    assert_eq!(
        render(&e),
        "g.cfg:3:12: error: firmware \"seabios\" needs type = \"hvm\", not type = \"pvh\"\n  3 | firmware = \"seabios\"\n    |            ^^^^^^^^^\ng.cfg:2:8: note: the type is set here\n  2 | type = \"pvh\"\n    |        ^^^^^\n  = hint: a PVH guest boots a kernel directly (kernel = \"/boot/vmlinuz\") or firmware = \"ovmf\"\n"
    );
}

#[test]
fn check_files_after_parse_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cfg = dir.path().join("g.cfg");
    std::fs::write(dir.path().join("vmlinuz"), b"\x7fELF").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        &cfg,
        "name = \"g\"\ntype = \"pvh\"\nkernel = \"vmlinuz\"\nramdisk = \"nope.img\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let parsed = parse_file(&cfg).unwrap_or_else(|e| panic!("{e}"));
    let b = build(&parsed.settings, dir.path()).unwrap_or_else(|d| panic!("{}", render(&d)));
    let d = check_files(&b.config);
    assert_eq!(d.len(), 1);
    let r = d[0].render();
    let missing = dir.path().join("nope.img");
    assert!(
        r.starts_with(&format!(
            "{}:4:11: error: module {} does not exist\n",
            cfg.display(),
            missing.display()
        )),
        "{r}"
    );
}

#[test]
fn check_files_covers_disk_images_but_not_devices() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("k"), b"k").unwrap_or_else(|e| panic!("{e}"));
    let text = "name = \"g\"\ntype = \"pvh\"\nkernel = \"k\"\ndisk = [ \"gone.img,raw,xvda\", \"phy:/dev/nonexistent-vg/x,xvdb\" ]\n";
    let parsed = parse_str("g.cfg", text);
    let b = build(&parsed.settings, dir.path()).unwrap_or_else(|d| panic!("{}", render(&d)));
    let d = check_files(&b.config);
    assert_eq!(d.len(), 1, "{}", render(&d));
    assert_eq!(
        d[0].message,
        format!(
            "disk image {} does not exist",
            dir.path().join("gone.img").display()
        )
    );
    assert_eq!((d[0].span.line, d[0].span.column), (4, 11));
}

#[test]
fn ignored_boot_keys_warn() {
    let parsed = parse_str(
        "g.cfg",
        "name = \"g\"\ntype = \"hvm\"\nbootloader = \"pygrub\"\n",
    );
    let b = build(&parsed.settings, Path::new("/")).unwrap_or_else(|d| panic!("{}", render(&d)));
    assert_eq!(b.config.boot.kind(), "firmware");
    assert_eq!(
        b.warnings[0].message,
        "`bootloader` is ignored for type = \"hvm\" (as xl does)"
    );
    let parsed = parse_str(
        "g.cfg",
        "name = \"g\"\ntype = \"pvh\"\nkernel = \"/k\"\nbootloader_args = [ \"-q\" ]\n",
    );
    let b = build(&parsed.settings, Path::new("/")).unwrap_or_else(|d| panic!("{}", render(&d)));
    assert_eq!(
        b.warnings[0].message,
        "`bootloader_args` is ignored: no bootloader is set"
    );
}
