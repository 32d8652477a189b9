//! Differential test: pygrub 4.17 and `bootmenu::choose` on a generated
//! corpus of disk images must boot the same kernel bytes, ramdisk bytes
//! and command line, or both refuse.
//!
//! pygrub comes from an unpacked Debian dom0 root named by
//! `RXL_PYGRUB_ROOT` (`cargo xtask test` passes it, with
//! `RXL_REQUIRE_PYGRUB=1`). Without it the test still checks `choose`
//! against each case's expected answer and prints a SKIP note for pygrub;
//! with `RXL_REQUIRE_PYGRUB=1` a missing pygrub fails the test.
//!
//! pygrub runs with RLIMIT_FSIZE at the test's kernel/ramdisk cap, as its
//! `--runas` mode sets it, so that both sides have the same size bound.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bootmenu::{Hints, Limits};
use common::{disk, mkfs, part, payload, Tree};

/// The kernel and ramdisk cap of this test (a multiple of pygrub's 1 MiB
/// copy chunk, so that its RLIMIT_FSIZE never truncates a write).
const CAP: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Boot {
        kernel: Vec<u8>,
        ramdisk: Option<Vec<u8>>,
        args: String,
    },
    Refuse(String),
}

impl Outcome {
    fn same(&self, other: &Outcome) -> bool {
        match (self, other) {
            (Outcome::Refuse(_), Outcome::Refuse(_)) => true,
            _ => self == other,
        }
    }
    fn short(&self) -> String {
        match self {
            Outcome::Boot {
                kernel,
                ramdisk,
                args,
            } => format!(
                "boot {} + {} args {args:?}",
                name_of(kernel),
                ramdisk.as_deref().map_or("no ramdisk".into(), name_of)
            ),
            Outcome::Refuse(m) => format!("refuse ({})", m.lines().last().unwrap_or("")),
        }
    }
}

/// The contents of the file named `n` in the corpus.
fn k(n: &str) -> Vec<u8> {
    let len = if n == "h" {
        CAP as usize
    } else {
        3000 + n.len()
    };
    payload(&format!("<{n}>"), len)
}

fn name_of(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(24)]).into_owned();
    match (s.find('<'), s.find('>')) {
        (Some(0), Some(e)) => s[1..e].to_owned(),
        _ => format!("{} bytes", b.len()),
    }
}

#[derive(Debug, Clone)]
enum Expect {
    Boot(&'static str, Option<&'static str>, &'static str),
    Refuse,
}

impl Expect {
    fn outcome(&self) -> Outcome {
        match self {
            Expect::Boot(kn, rd, args) => Outcome::Boot {
                kernel: k(kn),
                ramdisk: rd.map(k),
                args: (*args).to_owned(),
            },
            Expect::Refuse => Outcome::Refuse(String::new()),
        }
    }
}

struct Case {
    name: String,
    image: PathBuf,
    hints: Hints,
    expect: Expect,
    /// Why pygrub gives another answer (docs/bootloader-builtin.md).
    differs: Option<&'static str>,
}

fn base() -> Tree {
    Tree::new()
        .file("/boot/vmlinuz-a", k("a"))
        .file("/boot/vmlinuz-b", k("b"))
        .file("/boot/vmlinuz-c", k("c"))
        .file("/boot/initrd-a", k("ia"))
        .file("/boot/initrd-b", k("ib"))
}

fn hints(
    entry: Option<&str>,
    kernel: Option<&str>,
    ramdisk: Option<&str>,
    args: Option<&str>,
) -> Hints {
    Hints {
        kernel: kernel.map(str::to_owned),
        ramdisk: ramdisk.map(str::to_owned),
        args: args.map(str::to_owned),
        entry: entry.map(str::to_owned),
    }
}

const THREE: &str = "menuentry 'Alpha' --class os {\n\tlinux /boot/vmlinuz-a root=/dev/xvda1 ro\n\tinitrd /boot/initrd-a\n}\n\
menuentry \"Beta\" {\n\tlinux /boot/vmlinuz-b console=hvc0\n\tinitrd /boot/initrd-b\n}\n\
menuentry 'Gamma' {\n\tlinux /boot/vmlinuz-c\n}\n";

/// A grub.cfg as Debian 12's update-grub writes it.
const DEBIAN: &str = include_str!("data/debian-grub.cfg");

/// The corpus, images built under `dir`.
fn corpus(dir: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut n = 0;
    let add = |cases: &mut Vec<Case>,
               name: &str,
               image: PathBuf,
               hints: Hints,
               expect: Expect,
               differs| {
        cases.push(Case {
            name: name.to_owned(),
            image,
            hints,
            expect,
            differs,
        });
    };
    let mut raw = |tree: Tree, fstype: &str| {
        n += 1;
        mkfs(dir, &format!("raw{n}"), &tree, fstype, 8192)
    };
    let none = Hints::default;

    // grub.cfg variants, on a whole-disk ext4.
    let g2: Vec<(&str, String, Hints, Expect)> = vec![
        ("g2-one-entry", "menuentry 'Only' {\n linux /boot/vmlinuz-a root=/dev/xvda1 ro quiet\n initrd /boot/initrd-a\n}\n".into(), none(), Expect::Boot("a", Some("ia"), "root=/dev/xvda1 ro quiet")),
        ("g2-first-by-default", THREE.into(), none(), Expect::Boot("a", Some("ia"), "root=/dev/xvda1 ro")),
        ("g2-default-index", format!("set default=2\n{THREE}"), none(), Expect::Boot("c", None, "")),
        ("g2-default-quoted", format!("set default=\"1\"\n{THREE}"), none(), Expect::Boot("b", Some("ib"), "console=hvc0")),
        ("g2-default-single-quoted", format!("set default='1'\n{THREE}"), none(), Expect::Boot("b", Some("ib"), "console=hvc0")),
        ("g2-default-title-is-0", format!("set default=\"Beta\"\n{THREE}"), none(), Expect::Boot("a", Some("ia"), "root=/dev/xvda1 ro")),
        ("g2-default-saved-entry", format!("set default=\"${{saved_entry}}\"\n{THREE}"), none(), Expect::Boot("a", Some("ia"), "root=/dev/xvda1 ro")),
        ("g2-default-saved", format!("set default=saved\n{THREE}"), none(), Expect::Boot("a", Some("ia"), "root=/dev/xvda1 ro")),
        ("g2-default-out-of-range", format!("set default=9\n{THREE}"), none(), Expect::Boot("a", Some("ia"), "root=/dev/xvda1 ro")),
        ("g2-default-equal-count", format!("set default=3\n{THREE}"), none(), Expect::Boot("a", Some("ia"), "root=/dev/xvda1 ro")),
        ("g2-default-last-wins", format!("set default=1\nset default=2\n{THREE}"), none(), Expect::Boot("c", None, "")),
        ("g2-default-negative", format!("set default=-1\n{THREE}"), none(), Expect::Refuse),
        ("g2-default-underscore", format!("set default=0_2\n{THREE}"), none(), Expect::Boot("c", None, "")),
        ("g2-debian", DEBIAN.into(), none(), Expect::Boot("b", Some("ib"), "root=UUID=7f1c ro  quiet")),
        ("g2-debian-entry-in-submenu", DEBIAN.into(), hints(Some("2"), None, None, None), Expect::Boot("a", Some("ia"), "root=UUID=7f1c ro single")),
        ("g2-submenu-default", "submenu 'More' {\n menuentry 'In' {\n  linux /boot/vmlinuz-b in\n }\n submenu 'Deeper' {\n  menuentry 'Deep' {\n   linux /boot/vmlinuz-c deep\n  }\n }\n}\nmenuentry 'Out' {\n linux /boot/vmlinuz-a out\n}\nset default=1\n".into(), none(), Expect::Boot("c", None, "deep")),
        ("g2-function-skipped", "function f {\n menuentry 'Hidden' {\n}\nmenuentry 'Shown' {\n linux /boot/vmlinuz-b x\n}\n".into(), none(), Expect::Boot("b", None, "x")),
        ("g2-linux16", "menuentry 'Old' {\n linux16 /boot/vmlinuz-c a=1\n initrd16 /boot/initrd-b\n}\n".into(), none(), Expect::Boot("c", Some("ib"), "a=1")),
        ("g2-no-args", "menuentry 'Bare' {\n linux /boot/vmlinuz-a\n}\n".into(), none(), Expect::Boot("a", None, "")),
        ("g2-hint-args-appended", THREE.into(), hints(None, None, None, Some("console=hvc0 xen")), Expect::Boot("a", Some("ia"), "root=/dev/xvda1 ro console=hvc0 xen")),
        ("g2-hint-args-without-entry-args", "menuentry 'Bare' {\n linux /boot/vmlinuz-a\n}\n".into(), hints(None, None, None, Some("quiet")), Expect::Boot("a", None, " quiet")),
        ("g2-entry-index", THREE.into(), hints(Some("1"), None, None, None), Expect::Boot("b", Some("ib"), "console=hvc0")),
        ("g2-entry-title", THREE.into(), hints(Some("Gamma"), None, None, None), Expect::Boot("c", None, "")),
        ("g2-entry-unknown", format!("set default=1\n{THREE}"), hints(Some("Delta"), None, None, None), Expect::Boot("b", Some("ib"), "console=hvc0")),
        ("g2-entry-out-of-range", THREE.into(), hints(Some("3"), None, None, None), Expect::Boot("a", Some("ia"), "root=/dev/xvda1 ro")),
        ("g2-entry-negative", THREE.into(), hints(Some("-1"), None, None, None), Expect::Boot("a", Some("ia"), "root=/dev/xvda1 ro")),
        ("g2-hint-kernel", THREE.into(), hints(Some("1"), Some("/boot/vmlinuz-c"), Some("/boot/initrd-a"), Some("k=1")), Expect::Boot("c", Some("ia"), "k=1")),
        ("g2-hint-kernel-missing", THREE.into(), hints(None, Some("/boot/nope"), None, None), Expect::Refuse),
        ("g2-hint-ramdisk-alone-ignored", THREE.into(), hints(None, None, Some("/boot/initrd-b"), None), Expect::Boot("a", Some("ia"), "root=/dev/xvda1 ro")),
        ("g2-device-prefixes", "menuentry 'Dev' {\n set root='(hd0,msdos1)'\n linux (hd0,msdos1)/boot/vmlinuz-b r\n initrd (hd0,1)/boot/initrd-a\n}\n".into(), none(), Expect::Boot("b", Some("ia"), "r")),
        ("g2-bad-device", "menuentry 'Dev' {\n linux (cd)/boot/vmlinuz-b\n}\n".into(), none(), Expect::Refuse),
        ("g2-nested-menuentry", "menuentry 'A' {\nmenuentry 'B' {\n linux /boot/vmlinuz-a\n}\n}\n".into(), none(), Expect::Refuse),
        ("g2-unclosed", "menuentry 'A' {\n linux /boot/vmlinuz-a\n".into(), none(), Expect::Refuse),
        ("g2-stray-brace", format!("{THREE}}}\n"), none(), Expect::Refuse),
        ("g2-entry-without-kernel", "menuentry 'A' {\n initrd /boot/initrd-a\n}\nmenuentry 'B' {\n linux /boot/vmlinuz-b\n}\n".into(), none(), Expect::Refuse),
        ("g2-empty-linux", "menuentry 'A' {\n linux\n}\n".into(), none(), Expect::Refuse),
        ("g2-crlf-and-tabs", "set default=1\r\nmenuentry 'A' {\r\n\tlinux\t/boot/vmlinuz-a x\r\n}\r\nmenuentry 'B' {\r\n\t  linux /boot/vmlinuz-b  y  z \r\n\tinitrd /boot/initrd-b\r\n}\r\n".into(), none(), Expect::Boot("b", Some("ib"), "y  z")),
        ("g2-tab-only-kernel", "menuentry 'A' {\n linux /boot/vmlinuz-a\tx\n}\n".into(), none(), Expect::Refuse),
        ("g2-relative-kernel", "menuentry 'A' {\n linux boot/vmlinuz-c rel\n}\n".into(), none(), Expect::Boot("c", None, "rel")),
        ("g2-dotdot-kernel", "menuentry 'A' {\n linux /../../boot/../boot/vmlinuz-b dd\n}\n".into(), none(), Expect::Boot("b", None, "dd")),
        ("g2-two-initrds", "menuentry 'A' {\n linux /boot/vmlinuz-a\n initrd /boot/initrd-a /boot/initrd-b\n}\n".into(), none(), Expect::Refuse),
        ("g2-set-three-parts", format!("set x=\"a=b\"\n{THREE}"), none(), Expect::Refuse),
        ("g2-unicode-title", "menuentry 'Débian ✓' {\n linux /boot/vmlinuz-b u\n}\nmenuentry 'Z' {\n linux /boot/vmlinuz-c\n}\n".into(), hints(Some("Débian ✓"), None, None, None), Expect::Boot("b", None, "u")),
        ("g2-no-space-before-brace", "menuentry 'A'{\n linux /boot/vmlinuz-a\n}\n".into(), none(), Expect::Refuse),
        ("g2-empty-file", String::new(), none(), Expect::Refuse),
        ("g2-comments-only", "# nothing\n\n   # here\n".into(), none(), Expect::Refuse),
        ("g2-past-1mib-ignored", format!("{}\n{THREE}", "#".repeat(1 << 20)), none(), Expect::Refuse),
        ("g2-nul-in-args", "menuentry 'A' {\n linux /boot/vmlinuz-a a\0b\n}\n".into(), none(), Expect::Refuse),
    ];
    for (name, cfg, h, e) in g2 {
        let img = raw(base().file("/boot/grub/grub.cfg", cfg), "ext4");
        add(&mut cases, name, img, h, e, None);
    }

    // Config file places and their order.
    let simple = |k: &str| format!("menuentry 'X' {{\n linux /boot/vmlinuz-{k} {k}\n}}\n");
    let g1 = |k: &str| format!("title X\n kernel /boot/vmlinuz-{k} {k}\n");
    let el = |k: &str| format!("label x\n kernel /boot/vmlinuz-{k} {k}\n");
    let places: Vec<(&str, Tree, Expect)> = vec![
        (
            "cfg-grub-dir",
            base().file("/grub/grub.cfg", simple("b")),
            Expect::Boot("b", None, "b"),
        ),
        (
            "cfg-boot-grub2",
            base().file("/boot/grub2/grub.cfg", simple("c")),
            Expect::Boot("c", None, "c"),
        ),
        (
            "cfg-grub2-dir",
            base().file("/grub2/grub.cfg", simple("a")),
            Expect::Boot("a", None, "a"),
        ),
        (
            "cfg-grub2-before-menu-lst",
            base()
                .file("/boot/grub/menu.lst", g1("a"))
                .file("/boot/grub2/grub.cfg", simple("b")),
            Expect::Boot("b", None, "b"),
        ),
        (
            "cfg-extlinux-before-menu-lst",
            base()
                .file("/boot/grub/menu.lst", g1("a"))
                .file("/extlinux.conf", el("c")),
            Expect::Boot("c", None, "c"),
        ),
        (
            "cfg-isolinux-first-of-extlinux",
            base()
                .file("/boot/extlinux/extlinux.conf", el("a"))
                .file("/boot/isolinux/isolinux.cfg", el("b")),
            Expect::Boot("b", None, "b"),
        ),
        (
            "cfg-broken-first-no-fallback",
            base()
                .file("/boot/grub/grub.cfg", "}\n")
                .file("/boot/grub/menu.lst", g1("a")),
            Expect::Refuse,
        ),
        (
            "cfg-symlinked",
            base()
                .file("/etc/grub.real", simple("c"))
                .link("/boot/grub/grub.cfg", "../../etc/grub.real"),
            Expect::Boot("c", None, "c"),
        ),
        (
            "cfg-symlink-loop-skipped",
            base()
                .link("/boot/grub/grub.cfg", "grub.cfg")
                .file("/boot/grub/menu.lst", g1("b")),
            Expect::Boot("b", None, "b"),
        ),
        (
            "cfg-dangling-skipped",
            base()
                .link("/boot/grub/grub.cfg", "/nowhere")
                .file("/grub/menu.lst", g1("a")),
            Expect::Boot("a", None, "a"),
        ),
        ("cfg-none", base(), Expect::Refuse),
        (
            "cfg-garbage",
            base().file(
                "/boot/grub/grub.cfg",
                payload("\u{ff}\u{fe}\0\u{1}", 5000)
                    .iter()
                    .map(|b| b ^ 0x80)
                    .collect::<Vec<u8>>(),
            ),
            Expect::Refuse,
        ),
        (
            "cfg-netware",
            base()
                .file("/nwserver/xnloader.sys", k("nw"))
                .file("/boot/grub/grub.cfg", simple("a")),
            Expect::Boot("nw", None, ""),
        ),
    ];
    for (name, tree, e) in places {
        let img = raw(tree, "ext4");
        add(&mut cases, name, img, none(), e, None);
    }

    // extlinux and menu.lst variants.
    let other: Vec<(&str, &str, String, Hints, Expect)> = vec![
        ("el-default-label", "/boot/extlinux/extlinux.conf", "DEFAULT two\nPROMPT 0\nLABEL one\n  KERNEL /boot/vmlinuz-a\n  APPEND ro\nLABEL two\n  KERNEL /boot/vmlinuz-b\n  APPEND root=/dev/xvda1 initrd=/boot/initrd-b quiet\n".into(), none(), Expect::Boot("b", Some("ib"), "root=/dev/xvda1  quiet")),
        ("el-default-unknown", "/boot/extlinux.conf", "default nope\nlabel one\nkernel /boot/vmlinuz-c c\n".into(), none(), Expect::Boot("c", None, "c")),
        ("el-entry-label", "/extlinux/extlinux.conf", "label one\nkernel /boot/vmlinuz-a\nlabel \"two\"\nkernel /boot/vmlinuz-c\nappend x\n".into(), hints(Some("two"), None, None, Some("y")), Expect::Boot("c", None, "x y")),
        ("el-append-before-kernel", "/extlinux.conf", "label one\nappend initrd=/boot/initrd-a z\nkernel /boot/vmlinuz-a k\n".into(), none(), Expect::Boot("a", None, "k")),
        ("el-mboot", "/boot/extlinux/extlinux.conf", "label xen\nkernel mboot.c32\nappend xen.gz dom0_mem=512M --- /boot/vmlinuz-b root=/dev/xvda1 --- /boot/initrd-b\n".into(), none(), Expect::Boot("b", Some("ib"), "root=/dev/xvda1")),
        ("el-relative", "/boot/extlinux/extlinux.conf", "label r\nkernel boot/vmlinuz-a\nappend initrd=boot/initrd-a\n".into(), none(), Expect::Boot("a", Some("ia"), "")),
        ("el-initrd-directive-ignored", "/boot/extlinux/extlinux.conf", "label r\nkernel /boot/vmlinuz-a\ninitrd /boot/initrd-a\n".into(), none(), Expect::Boot("a", None, "")),
        ("m-default", "/boot/grub/menu.lst", "default 1\ntimeout 3\n\ntitle A\n root (hd0,0)\n kernel /boot/vmlinuz-a ro\n initrd /boot/initrd-a\ntitle B\n root (hd0,0)\n kernel /boot/vmlinuz-b root=/dev/xvda1 ro\n initrd /boot/initrd-b\n".into(), none(), Expect::Boot("b", Some("ib"), "root=/dev/xvda1 ro")),
        ("m-grub-conf", "/boot/grub/grub.conf", "title=A\nkernel (hd0,0)/boot/vmlinuz-c c\n".into(), hints(Some("A"), None, None, None), Expect::Boot("c", None, "c")),
        ("m-grub-dir", "/grub/menu.lst", "default=saved\ntitle A\nkernel /boot/vmlinuz-a\ntitle B\n".into(), hints(Some("1"), None, None, None), Expect::Boot("a", None, "")),
        ("m-empty-title-kept", "/grub/grub.conf", "default 0\ntitle A\ntitle B\nkernel /boot/vmlinuz-b\n".into(), none(), Expect::Refuse),
        ("m-negative-default", "/boot/grub/menu.lst", "default -3\ntitle A\nkernel /boot/vmlinuz-a\n".into(), none(), Expect::Refuse),
        ("m-bad-root", "/boot/grub/menu.lst", "title A\nroot (hd0,x)\nkernel /boot/vmlinuz-a\n".into(), none(), Expect::Refuse),
    ];
    for (name, path, cfg, h, e) in other {
        let img = raw(base().file(path, cfg), "ext4");
        add(&mut cases, name, img, h, e, None);
    }

    // File system types and disk layouts.
    let cfg = "menuentry 'L' {\n linux /boot/vmlinuz-a layout\n initrd /boot/initrd-a\n}\n";
    let bootcfg = "menuentry 'B' {\n linux /vmlinuz-b boot-part\n initrd /initrd-b\n}\n";
    let root_tree = || base().file("/boot/grub/grub.cfg", cfg);
    let boot_tree = || {
        Tree::new()
            .file("/vmlinuz-b", k("b"))
            .file("/initrd-b", k("ib"))
            .file("/grub/grub.cfg", bootcfg)
    };
    let laid = Expect::Boot("a", Some("ia"), "layout");
    let boot_laid = Expect::Boot("b", Some("ib"), "boot-part");
    for fstype in ["ext2", "ext3", "ext4"] {
        let img = raw(root_tree(), fstype);
        add(
            &mut cases,
            &format!("layout-whole-disk-{fstype}"),
            img,
            none(),
            laid.clone(),
            None,
        );
    }
    // File system features ext4-view does not read.
    for (fstype, name) in [
        ("ext2 -O ^filetype", "no-filetype"),
        ("ext4 -O inline_data", "inline-data"),
    ] {
        let img = raw(root_tree(), fstype);
        add(
            &mut cases,
            &format!("layout-{name}"),
            img,
            none(),
            Expect::Refuse,
            Some("ext4-view does not read this ext feature; libext2fs does"),
        );
    }
    let fs = |name: &str, tree: Tree| mkfs(dir, name, &tree, "ext4", 6144);
    let root_fs = fs("root", root_tree());
    let boot_fs = fs("boot", boot_tree());
    let other_fs = fs("other", base().file("/boot/grub/grub.cfg", simple("c")));
    let bare_fs = fs("bare", base());
    let layouts: Vec<(&str, &str, Vec<common::PartSpec>, Expect)> = vec![
        (
            "layout-mbr-one",
            "dos",
            vec![part("83", Some(root_fs.clone()), 8)],
            laid.clone(),
        ),
        (
            "layout-mbr-boot-and-root",
            "dos",
            vec![
                part("83", Some(boot_fs.clone()), 8),
                part("83", Some(root_fs.clone()), 8),
            ],
            boot_laid.clone(),
        ),
        (
            "layout-mbr-empty-first",
            "dos",
            vec![part("83", None, 4), part("83", Some(root_fs.clone()), 8)],
            laid.clone(),
        ),
        (
            "layout-mbr-swap-first",
            "dos",
            vec![
                part("82", Some(other_fs.clone()), 8),
                part("83", Some(root_fs.clone()), 8),
            ],
            laid.clone(),
        ),
        (
            "layout-mbr-no-config-first",
            "dos",
            vec![
                part("83", Some(bare_fs.clone()), 8),
                part("83", Some(root_fs.clone()), 8),
            ],
            laid.clone(),
        ),
        (
            "layout-mbr-four",
            "dos",
            vec![
                part("83", None, 2),
                part("83", None, 2),
                part("83", None, 2),
                part("83", Some(other_fs.clone()), 8),
            ],
            Expect::Boot("c", None, "c"),
        ),
        (
            "layout-gpt-one",
            "gpt",
            vec![part("L", Some(root_fs.clone()), 8)],
            laid.clone(),
        ),
        (
            "layout-gpt-esp-boot-root",
            "gpt",
            vec![
                part("U", None, 4),
                part("L", Some(boot_fs.clone()), 8),
                part("L", Some(root_fs.clone()), 8),
            ],
            boot_laid.clone(),
        ),
        (
            "layout-gpt-swap-root",
            "gpt",
            vec![part("S", None, 2), part("L", Some(other_fs.clone()), 8)],
            Expect::Boot("c", None, "c"),
        ),
    ];
    for (name, label, parts, e) in layouts {
        let img = disk(dir, name, label, &parts);
        add(&mut cases, name, img, none(), e, None);
    }
    // An active second partition: pygrub 4.17 keeps table order.
    let mut parts = vec![
        part("83", Some(root_fs.clone()), 8),
        part("83", Some(other_fs.clone()), 8),
    ];
    parts[1].bootable = true;
    let img = disk(dir, "layout-mbr-active-second", "dos", &parts);
    add(
        &mut cases,
        "layout-mbr-active-second",
        img,
        none(),
        laid.clone(),
        None,
    );

    // Broken and hostile images.
    let img = raw(root_tree(), "ext4");
    let bytes = std::fs::read(&img).unwrap();
    std::fs::write(&img, &bytes[..4096]).unwrap();
    add(
        &mut cases,
        "hostile-truncated-image",
        img,
        none(),
        Expect::Refuse,
        None,
    );
    // Cut after the metadata: the config is there, the files' blocks not.
    let big = base()
        .file("/boot/vmlinuz-t", payload("<t>", 900 << 10))
        .file(
            "/boot/grub/grub.cfg",
            "menuentry 'T' {\n linux /boot/vmlinuz-t\n}\n",
        );
    let img = raw(big, "ext4");
    let bytes = std::fs::read(&img).unwrap();
    let data = bytes
        .windows(6)
        .position(|w| w == b"<t><t>")
        .expect("kernel data in the image");
    std::fs::write(&img, &bytes[..data + 4096]).unwrap();
    add(
        &mut cases,
        "hostile-truncated-file-data",
        img,
        none(),
        Expect::Refuse,
        None,
    );
    // A partition that runs past the end of the disk, its files before it.
    let img = disk(
        dir,
        "cut-partition",
        "dos",
        &[part("83", Some(root_fs.clone()), 8)],
    );
    let bytes = std::fs::read(&img).unwrap();
    std::fs::write(&img, &bytes[..(1 << 20) + (3 << 20)]).unwrap();
    add(
        &mut cases,
        "partition-past-disk-end-files-inside",
        img,
        none(),
        laid.clone(),
        None,
    );
    let garbage = dir.join("garbage.disk");
    std::fs::write(&garbage, payload("\u{7f}garbage", 1 << 20)).unwrap();
    add(
        &mut cases,
        "hostile-garbage-disk",
        garbage,
        none(),
        Expect::Refuse,
        None,
    );
    let tiny = dir.join("tiny.disk");
    std::fs::write(&tiny, b"x").unwrap();
    add(
        &mut cases,
        "hostile-one-byte-disk",
        tiny,
        none(),
        Expect::Refuse,
        None,
    );
    let huge = base()
        .file("/boot/vmlinuz-h", payload("<h>", CAP as usize + 1))
        .file(
            "/boot/grub/grub.cfg",
            "menuentry 'H' {\n linux /boot/vmlinuz-h\n}\n",
        );
    add(
        &mut cases,
        "hostile-kernel-above-cap",
        raw(huge, "ext4"),
        none(),
        Expect::Refuse,
        None,
    );
    let at_cap = base().file("/boot/vmlinuz-h", k("h")).file(
        "/boot/grub/grub.cfg",
        "menuentry 'H' {\n linux /boot/vmlinuz-h\n}\n",
    );
    let at_cap_img = raw(at_cap, "ext4");
    let huge_rd = base()
        .file("/boot/initrd-h", payload("<hr>", CAP as usize + 4096))
        .file(
            "/boot/grub/grub.cfg",
            "menuentry 'H' {\n linux /boot/vmlinuz-a\n initrd /boot/initrd-h\n}\n",
        );
    add(
        &mut cases,
        "hostile-ramdisk-above-cap",
        raw(huge_rd, "ext4"),
        none(),
        Expect::Refuse,
        None,
    );
    let k_loop = base()
        .link("/boot/vmlinuz-x", "vmlinuz-y")
        .link("/boot/vmlinuz-y", "/boot/vmlinuz-x")
        .file(
            "/boot/grub/grub.cfg",
            "menuentry 'L' {\n linux /boot/vmlinuz-x\n}\n",
        );
    add(
        &mut cases,
        "hostile-kernel-symlink-loop",
        raw(k_loop, "ext4"),
        none(),
        Expect::Refuse,
        None,
    );
    let dir_loop = base().link("/boot/loop", ".").file("/boot/grub/grub.cfg", "menuentry 'L' {\n linux /boot/loop/loop/loop/loop/loop/loop/loop/loop/loop/loop/vmlinuz-b\n}\n");
    add(
        &mut cases,
        "hostile-directory-symlink-loop",
        raw(dir_loop, "ext4"),
        none(),
        Expect::Boot("b", None, ""),
        None,
    );
    let outside = base()
        .file("/etc/hostname", k("guest-hostname"))
        .link("/boot/vmlinuz-x", "../../../../../../etc/hostname")
        .file(
            "/boot/grub/grub.cfg",
            "menuentry 'O' {\n linux /boot/vmlinuz-x\n}\n",
        );
    add(
        &mut cases,
        "hostile-symlink-to-outside-stays-inside",
        raw(outside, "ext4"),
        none(),
        Expect::Boot("guest-hostname", None, ""),
        None,
    );
    let abs_out = base().link("/boot/vmlinuz-x", "/etc/hostname").file(
        "/boot/grub/grub.cfg",
        "menuentry 'O' {\n linux /boot/vmlinuz-x\n}\n",
    );
    add(
        &mut cases,
        "hostile-absolute-symlink-to-missing",
        raw(abs_out, "ext4"),
        none(),
        Expect::Refuse,
        None,
    );
    let missing = base().file(
        "/boot/grub/grub.cfg",
        "menuentry 'M' {\n linux /boot/vmlinuz-missing\n}\n",
    );
    add(
        &mut cases,
        "hostile-missing-kernel",
        raw(missing, "ext4"),
        none(),
        Expect::Refuse,
        None,
    );
    let missing_rd = base().file(
        "/boot/grub/grub.cfg",
        "menuentry 'M' {\n linux /boot/vmlinuz-a\n initrd /boot/initrd-missing\n}\n",
    );
    add(
        &mut cases,
        "hostile-missing-ramdisk",
        raw(missing_rd, "ext4"),
        none(),
        Expect::Refuse,
        None,
    );
    let chain = (0..12)
        .fold(base(), |t, i| {
            t.link(&format!("/boot/l{i}"), &format!("l{}", i + 1))
        })
        .link("/boot/l12", "vmlinuz-c");
    // l5 .. l12: 8 links nested, the most libext2fs follows; l4: 9.
    for (start, e) in [
        (5, Expect::Boot("c", None, "")),
        (4, Expect::Refuse),
        (0, Expect::Refuse),
    ] {
        let t = chain.clone().file(
            "/boot/grub/grub.cfg",
            format!("menuentry 'C' {{\n linux /boot/l{start}\n}}\n"),
        );
        add(
            &mut cases,
            &format!("hostile-symlink-chain-{}", 13 - start),
            raw(t, "ext4"),
            none(),
            e,
            None,
        );
    }
    // Links in sequence, not nested: each is one level deep.
    let seq = base().link("/boot/d", ".").file(
        "/boot/grub/grub.cfg",
        format!(
            "menuentry 'S' {{\n linux /boot/{}vmlinuz-a\n}}\n",
            "d/".repeat(40)
        ),
    );
    add(
        &mut cases,
        "symlinks-in-sequence-40",
        raw(seq, "ext4"),
        none(),
        Expect::Boot("a", None, ""),
        None,
    );
    let seq = base().link("/boot/d", ".").file(
        "/boot/grub/grub.cfg",
        format!(
            "menuentry 'S' {{\n linux /boot/{}vmlinuz-a\n}}\n",
            "d/".repeat(70)
        ),
    );
    add(
        &mut cases,
        "hostile-symlinks-in-sequence-70",
        raw(seq, "ext4"),
        none(),
        Expect::Refuse,
        Some("bootmenu follows at most 64 symbolic links per lookup; libext2fs has no total bound"),
    );
    let through_file = base().file(
        "/boot/grub/grub.cfg",
        "menuentry 'F' {\n linux /boot/vmlinuz-a/../vmlinuz-b\n}\n",
    );
    add(
        &mut cases,
        "dotdot-after-a-file",
        raw(through_file, "ext4"),
        none(),
        Expect::Refuse,
        None,
    );
    let kdir = base().file(
        "/boot/grub/grub.cfg",
        "menuentry 'D' {\n linux /boot/grub\n}\n",
    );
    add(
        &mut cases,
        "hostile-kernel-is-a-directory",
        raw(kdir, "ext4"),
        none(),
        Expect::Refuse,
        Some("pygrub copies a directory's raw blocks as the kernel"),
    );
    add(
        &mut cases,
        "kernel-at-cap",
        at_cap_img,
        none(),
        Expect::Boot("h", None, ""),
        None,
    );
    let mut gpt_bad = std::fs::read(disk(
        dir,
        "gptbad",
        "gpt",
        &[part("L", Some(root_fs.clone()), 8)],
    ))
    .unwrap();
    gpt_bad[512 + 80..512 + 84].copy_from_slice(&100_000u32.to_le_bytes());
    let gpt_bad_img = dir.join("gpt-huge-count.disk");
    std::fs::write(&gpt_bad_img, gpt_bad).unwrap();
    add(
        &mut cases,
        "hostile-gpt-huge-entry-count",
        gpt_bad_img,
        none(),
        Expect::Refuse,
        None,
    );
    cases
}

/// What pygrub answers, run as the toolstack runs it.
fn run_pygrub(root: &Path, image: &Path, hints: &Hints, work: &Path) -> Outcome {
    let lib = root.join("usr/lib/xen-4.17");
    let out_dir = work.join("out");
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir).unwrap();
    let out_file = work.join("output");
    std::fs::write(&out_file, b"").unwrap();
    let ld = [
        lib.join("lib/x86_64-linux-gnu"),
        root.join("lib/x86_64-linux-gnu"),
        root.join("usr/lib/x86_64-linux-gnu"),
    ]
    .iter()
    .map(|p| p.display().to_string())
    .collect::<Vec<_>>()
    .join(":");
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--fsize={CAP}"))
        .arg("python3")
        .arg(lib.join("bin/pygrub"))
        .args(["--quiet", "--output-format=simple0"])
        .arg(format!("--output={}", out_file.display()))
        .arg(format!("--output-directory={}", out_dir.display()));
    for (flag, v) in [
        ("--kernel", &hints.kernel),
        ("--ramdisk", &hints.ramdisk),
        ("--args", &hints.args),
        ("--entry", &hints.entry),
    ] {
        if let Some(v) = v {
            cmd.arg(format!("{flag}={v}"));
        }
    }
    cmd.arg(image)
        .env("PYTHONPATH", lib.join("lib/python"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("LD_LIBRARY_PATH", ld)
        .env(
            "XEN_FSIMAGE_FSDIR",
            lib.join("lib/x86_64-linux-gnu/xenfsimage"),
        );
    let out = cmd.output().expect("run pygrub");
    if !out.status.success() {
        return Outcome::Refuse(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    let text = std::fs::read(&out_file).unwrap();
    let text = String::from_utf8(text).expect("pygrub output is UTF-8");
    let (mut kernel, mut ramdisk, mut args) = (None, None, String::new());
    for item in text.split('\0') {
        if let Some(p) = item.strip_prefix("kernel ") {
            kernel = Some(std::fs::read(p).unwrap());
        } else if let Some(p) = item.strip_prefix("ramdisk ") {
            ramdisk = Some(std::fs::read(p).unwrap());
        } else if let Some(a) = item.strip_prefix("args ") {
            args = a.to_owned();
        }
    }
    match kernel {
        Some(kernel) => Outcome::Boot {
            kernel,
            ramdisk,
            args,
        },
        None => Outcome::Refuse(format!("no kernel in pygrub's output {text:?}")),
    }
}

fn run_choose(image: &Path, hints: &Hints) -> Outcome {
    let limits = Limits {
        max_kernel: CAP,
        max_ramdisk: CAP,
        ..Limits::default()
    };
    let f = std::fs::File::open(image).unwrap();
    match bootmenu::choose(f, hints, &limits) {
        Ok(c) => Outcome::Boot {
            kernel: c.kernel,
            ramdisk: c.ramdisk,
            args: c.args,
        },
        Err(e) => Outcome::Refuse(e.to_string()),
    }
}

fn pygrub_root() -> Option<PathBuf> {
    let root = std::env::var_os("RXL_PYGRUB_ROOT").map(PathBuf::from);
    let required =
        std::env::var_os("RXL_REQUIRE_PYGRUB").is_some_and(|v| !v.is_empty() && v != "0");
    match root {
        Some(r) if r.join("usr/lib/xen-4.17/bin/pygrub").is_file() => Some(r),
        other => {
            let why = match other {
                Some(r) => format!(
                    "RXL_PYGRUB_ROOT={} has no usr/lib/xen-4.17/bin/pygrub",
                    r.display()
                ),
                None => "RXL_PYGRUB_ROOT is not set".to_owned(),
            };
            assert!(!required, "RXL_REQUIRE_PYGRUB is set but {why}");
            eprintln!("\n========================================================");
            eprintln!("SKIP: pygrub comparison not run: {why}.");
            eprintln!("Only bootmenu's own answers are checked. `cargo xtask test` runs it.");
            eprintln!("========================================================\n");
            None
        }
    }
}

#[test]
fn pygrub_and_choose_agree_on_the_corpus() {
    if !common::have_tools() {
        assert!(
            std::env::var_os("RXL_REQUIRE_PYGRUB").is_none(),
            "mke2fs and sfdisk are needed to build the corpus"
        );
        eprintln!("SKIP: mke2fs or sfdisk missing: the corpus cannot be built");
        return;
    }
    let pygrub = pygrub_root();
    let tmp = tempfile::tempdir().unwrap();
    let cases = corpus(tmp.path());
    let work = tmp.path().join("pygrub");
    std::fs::create_dir_all(&work).unwrap();
    let mut failures = Vec::new();
    let mut differences = 0;
    for c in &cases {
        let ours = run_choose(&c.image, &c.hints);
        let want = c.expect.outcome();
        if !ours.same(&want) {
            failures.push(format!(
                "{}: bootmenu: {} but expected {}",
                c.name,
                ours.short(),
                want.short()
            ));
        }
        let Some(root) = &pygrub else {
            eprintln!("{:45} bootmenu: {}", c.name, ours.short());
            continue;
        };
        let theirs = run_pygrub(root, &c.image, &c.hints, &work);
        eprintln!(
            "{:45} pygrub: {:50} bootmenu: {}",
            c.name,
            theirs.short(),
            ours.short()
        );
        match (c.differs, ours.same(&theirs)) {
            (None, false) => failures.push(format!(
                "{}: pygrub: {} but bootmenu: {}",
                c.name,
                theirs.short(),
                ours.short()
            )),
            (Some(why), true) => failures.push(format!(
                "{}: listed as an expected difference ({why}) but both answer {}",
                c.name,
                ours.short()
            )),
            (Some(why), false) => {
                differences += 1;
                eprintln!("    expected difference: {why}");
            }
            (None, true) => {}
        }
    }
    eprintln!(
        "{} cases, {} expected differences, pygrub {}",
        cases.len(),
        differences,
        if pygrub.is_some() {
            "compared"
        } else {
            "not run"
        }
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
