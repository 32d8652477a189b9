//! Unit tests for the domain model. Settings come from a small test-only reader of
//! well-formed one-line `key = value` statements (no escapes, no comments), so that the
//! model is tested independently of the real parser.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::settings::{Setting, Settings, Source, Span, Value, ValueKind};

/// Read `text` into settings with exact spans.
pub(super) fn cfg(text: &str) -> Settings {
    let source = Arc::new(Source {
        name: "g.cfg".into(),
        text: text.into(),
    });
    let mut entries: Vec<Setting> = Vec::new();
    let mut line_start = 0;
    for (i, line) in text.split('\n').enumerate() {
        let line_no = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if let Some(eq) = line.find('=') {
            let key = line[..eq].trim();
            let key_off = line.find(key).unwrap_or(0);
            let mut r = Reader {
                src: &source,
                text,
                pos: line_start + eq + 1,
                line: line_no,
                line_start,
            };
            let value = r.value();
            let key_span = span(
                &source,
                line_no,
                line_start,
                line_start + key_off,
                key.len(),
            );
            entries.retain(|e| e.key != key);
            entries.push(Setting {
                key: key.to_string(),
                key_span,
                value,
            });
        }
        line_start += line.len() + 1;
    }
    Settings {
        entries,
        source: None,
    }
}

fn span(src: &Arc<Source>, line: u32, line_start: usize, start: usize, len: usize) -> Span {
    Span {
        source: src.clone(),
        line,
        column: u32::try_from(start - line_start + 1).unwrap_or(0),
        start,
        end: start + len,
    }
}

struct Reader<'a> {
    src: &'a Arc<Source>,
    text: &'a str,
    pos: usize,
    line: u32,
    line_start: usize,
}

impl Reader<'_> {
    fn skip(&mut self) {
        while self.text.as_bytes().get(self.pos) == Some(&b' ') {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Value {
        self.skip();
        let start = self.pos;
        let b = self.text.as_bytes();
        let kind = match b[start] {
            q @ (b'"' | b'\'') => {
                let end = self.text[start + 1..]
                    .find(q as char)
                    .map(|e| start + 1 + e)
                    .expect("closed string");
                self.pos = end + 1;
                ValueKind::String(self.text[start + 1..end].to_string())
            }
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip();
                    match b[self.pos] {
                        b']' => {
                            self.pos += 1;
                            break;
                        }
                        b',' => self.pos += 1,
                        _ => items.push(self.value()),
                    }
                }
                ValueKind::List(items)
            }
            _ => {
                let len = self.text[start..]
                    .find([' ', ',', ']', '\n'])
                    .unwrap_or(self.text.len() - start);
                self.pos = start + len;
                ValueKind::Number(self.text[start..self.pos].to_string())
            }
        };
        Value {
            kind,
            span: span(
                self.src,
                self.line,
                self.line_start,
                start,
                self.pos - start,
            ),
        }
    }
}

const BASE: &str = "/etc/xen/guests";

fn ok(text: &str) -> Built {
    match build(&cfg(text), Path::new(BASE)) {
        Ok(b) => b,
        Err(d) => panic!(
            "unexpected errors:\n{}",
            d.iter().map(Diagnostic::render).collect::<String>()
        ),
    }
}

fn errs(text: &str) -> Vec<Diagnostic> {
    match build(&cfg(text), Path::new(BASE)) {
        Ok(b) => panic!("expected errors, got {:#?}", b.config),
        Err(d) => d.into_iter().filter(Diagnostic::is_error).collect(),
    }
}

fn one_err(text: &str) -> Diagnostic {
    let e = errs(text);
    assert_eq!(
        e.len(),
        1,
        "{}",
        e.iter().map(Diagnostic::render).collect::<String>()
    );
    e.into_iter().next().unwrap_or_else(|| unreachable!())
}

fn has_warning(b: &Built, needle: &str) -> bool {
    b.warnings.iter().any(|w| w.message.contains(needle))
}

const PVH: &str = "name = \"g\"\ntype = \"pvh\"\nkernel = \"vmlinuz\"\n";

#[test]
fn minimal_pvh_guest_gets_xl_defaults() {
    let b = ok(PVH);
    let c = &b.config;
    assert_eq!(c.name, "g");
    assert_eq!(c.domain_type, DomainType::Pvh);
    assert_eq!((c.memory_mib, c.maxmem_mib), (32, 32));
    assert_eq!((c.vcpus, c.maxvcpus), (1, 1));
    assert_eq!(c.on_poweroff, Action::Destroy);
    assert_eq!(c.on_reboot, Action::Restart);
    assert_eq!(c.on_watchdog, Action::Destroy);
    assert_eq!(c.on_crash, Action::Destroy);
    assert_eq!(c.on_soft_reset, Action::SoftReset);
    assert_eq!(c.max_event_channels, 1023);
    assert_eq!((c.max_grant_frames, c.max_maptrack_frames), (-1, -1));
    assert_eq!(c.uuid.get_version_num(), 4);
    match &c.boot {
        Boot::Kernel {
            kernel,
            cmdline,
            modules,
        } => {
            assert_eq!(kernel.value, PathBuf::from("/etc/xen/guests/vmlinuz"));
            assert_eq!((kernel.line, kernel.column), (3, 10));
            assert_eq!(cmdline, &None);
            assert!(modules.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
}

#[test]
fn missing_type_defaults_to_pv_with_a_warning() {
    let b = ok("name = \"g\"\nkernel = \"/k\"\n");
    assert_eq!(b.config.domain_type, DomainType::Pv);
    let w = &b.warnings[0];
    assert_eq!(
        w.message,
        "no `type` given: using xl's default, type = \"pv\""
    );
    assert_eq!(
        w.hint.as_deref(),
        Some("rxl is made for PVH guests: add type = \"pvh\"")
    );
}

#[test]
fn type_prefixes_follow_xl() {
    let b = ok("name = \"g\"\ntype = \"p\"\nkernel = \"/k\"\n");
    assert_eq!(b.config.domain_type, DomainType::Pv);
    assert!(has_warning(&b, "`type` = \"p\" is taken as \"pv\""));
    assert_eq!(
        ok("name = \"g\"\ntype = \"h\"\n").config.domain_type,
        DomainType::Hvm
    );
    let e = one_err("name = \"g\"\ntype = \"pvhx\"\nkernel = \"/k\"\n");
    assert_eq!(
        e.message,
        "unknown type \"pvhx\": expected one of hvm, pv, pvh"
    );
    assert_eq!(e.hint.as_deref(), Some("did you mean \"pvh\"?"));
    let e = one_err("name = \"g\"\ntype = \"\"\nkernel = \"/k\"\n");
    assert!(e.message.starts_with("unknown type \"\""), "{}", e.message);
}

#[test]
fn builder_alone_is_deprecated_and_both_conflict() {
    let b = ok("name = \"g\"\nbuilder = \"generic\"\nkernel = \"/k\"\n");
    assert_eq!(b.config.domain_type, DomainType::Pv);
    assert!(has_warning(
        &b,
        "`builder` is deprecated; taking it as type = \"pv\""
    ));

    let e = one_err("name = \"g\"\ntype = \"pvh\"\nbuilder = \"hvm\"\nkernel = \"/k\"\n");
    assert_eq!(e.message, "both `type` and `builder` are set");
    assert_eq!(e.span.line, 3);
    assert_eq!(e.notes.len(), 1);
    assert_eq!(e.notes[0].0.line, 2);
    assert_eq!(e.hint.as_deref(), Some("builder is deprecated, keep type"));
    let r = e.render();
    assert!(
        r.contains("g.cfg:3:1: error: both `type` and `builder` are set"),
        "{r}"
    );
    assert!(r.contains("g.cfg:2:1: note: `type` is set here"), "{r}");
}

#[test]
fn name_is_required_and_validated() {
    let e = one_err("type = \"pvh\"\nkernel = \"/k\"\n");
    assert_eq!(e.message, "`name` is required");
    assert_eq!(e.hint.as_deref(), Some("add name = \"myguest\""));
    let e = one_err("name = \"\"\ntype = \"pvh\"\nkernel = \"/k\"\n");
    assert_eq!(e.message, "the domain name is empty");
    let e = one_err("name = \"123\"\ntype = \"pvh\"\nkernel = \"/k\"\n");
    assert_eq!(
        e.message,
        "the domain name is all digits: xl commands would take it as a domain id"
    );
    assert_eq!((e.span.line, e.span.column), (1, 8));
    let e = one_err("name = 42\ntype = \"pvh\"\nkernel = \"/k\"\n");
    assert!(e.message.contains("all digits"));
    let e = one_err("name = [ \"a\" ]\ntype = \"pvh\"\nkernel = \"/k\"\n");
    assert_eq!(e.message, "`name` must be a single value, not a list");
}

#[test]
fn uuid_is_parsed_strictly() {
    let u = "5e7d8a1c-3c8b-4d1e-9f5a-2b6c7d8e9f01";
    let b = ok(&format!("{PVH}uuid = \"{u}\"\n"));
    assert_eq!(b.config.uuid.to_string(), u);
    for bad in [
        "5e7d8a1c3c8b4d1e9f5a2b6c7d8e9f01",
        "{5e7d8a1c-3c8b-4d1e-9f5a-2b6c7d8e9f01}",
        "5e7d8a1c-3c8b-4d1e-9f5a-2b6c7d8e9f0g",
        "nope",
    ] {
        let e = one_err(&format!("{PVH}uuid = \"{bad}\"\n"));
        assert_eq!(e.message, format!("invalid uuid \"{bad}\""));
        assert_eq!(e.span.line, 4);
    }
    // Two builds without a uuid get different ones.
    assert_ne!(ok(PVH).config.uuid, ok(PVH).config.uuid);
}

#[test]
fn memory_and_vcpus_defaults_and_bounds() {
    let c = ok(&format!("{PVH}memory = 512\n")).config;
    assert_eq!((c.memory_mib, c.maxmem_mib), (512, 512));
    let c = ok(&format!("{PVH}maxmem = 0x400\n")).config;
    assert_eq!((c.memory_mib, c.maxmem_mib), (1024, 1024));
    let c = ok(&format!("{PVH}memory = 010\nmaxmem = \"16\"\n")).config;
    assert_eq!((c.memory_mib, c.maxmem_mib), (8, 16));
    let c = ok(&format!("{PVH}vcpus = 2\n")).config;
    assert_eq!((c.vcpus, c.maxvcpus), (2, 2));
    let c = ok(&format!("{PVH}maxvcpus = 4\n")).config;
    assert_eq!((c.vcpus, c.maxvcpus), (1, 4));

    let e = one_err(&format!("{PVH}memory = 512\nmaxmem = 256\n"));
    assert_eq!(e.message, "maxmem (256 MiB) is less than memory (512 MiB)");
    assert_eq!(e.span.line, 5);
    assert_eq!(e.notes[0].0.line, 4);
    let e = one_err(&format!("{PVH}vcpus = 4\nmaxvcpus = 2\n"));
    assert_eq!(e.message, "maxvcpus (2) is less than vcpus (4)");
    assert_eq!((e.span.line, e.notes[0].0.line), (5, 4));

    let e = one_err(&format!("{PVH}memory = 12abc\n"));
    assert_eq!(e.message, "`memory` is not a number: `12abc`");
    assert_eq!((e.span.line, e.span.column), (4, 10));
    let e = one_err(&format!("{PVH}vcpus = 0\n"));
    assert_eq!(
        e.message,
        "`vcpus` = 0 is out of range: it must be between 1 and 128"
    );
    let e = one_err(&format!("{PVH}vcpus = 129\n"));
    assert!(e.message.contains("out of range"));
    let e = one_err(&format!("{PVH}memory = 99999999999999999999\n"));
    assert_eq!(e.message, "`memory` = 99999999999999999999 is too large");
}

#[test]
fn all_errors_are_reported_at_once() {
    let e =
        errs("type = \"pvh\"\nkernel = \"/k\"\nmemory = x1\nvcpus = 0\non_crash = \"explode\"\n");
    let msgs: Vec<&str> = e.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(msgs.len(), 4, "{msgs:?}");
    assert!(msgs.contains(&"`name` is required"));
    assert!(msgs.contains(&"unknown on_crash action \"explode\""));
}

#[test]
fn actions() {
    let c = ok(&format!(
        "{PVH}on_poweroff = \"preserve\"\non_reboot = \"rename-restart\"\non_crash = \"coredump-restart\"\non_watchdog = \"coredump-destroy\"\non_soft_reset = \"destroy\"\n"
    ))
    .config;
    assert_eq!(c.on_poweroff, Action::Preserve);
    assert_eq!(c.on_reboot, Action::RenameRestart);
    assert_eq!(c.on_crash, Action::CoredumpRestart);
    assert_eq!(c.on_watchdog, Action::CoredumpDestroy);
    assert_eq!(c.on_soft_reset, Action::Destroy);
    let e = one_err(&format!("{PVH}on_reboot = \"restrat\"\n"));
    assert_eq!(e.message, "unknown on_reboot action \"restrat\"");
    assert_eq!(e.hint.as_deref(), Some("did you mean \"restart\"?"));
}

#[test]
fn event_channels_and_grant_frames() {
    let c = ok(&format!(
        "{PVH}max_event_channels = 4096\nmax_grant_frames = 64\nmax_maptrack_frames = \"-1\"\n"
    ))
    .config;
    assert_eq!(c.max_event_channels, 4096);
    assert_eq!((c.max_grant_frames, c.max_maptrack_frames), (64, -1));
    let e = one_err(&format!("{PVH}max_grant_frames = \"-2\"\n"));
    assert!(
        e.message.contains("between -1 and 2147483647"),
        "{}",
        e.message
    );
}

#[test]
fn cmdline_root_extra_as_xl() {
    let k = "name = \"g\"\ntype = \"pvh\"\nkernel = \"/k\"\n";
    let c = ok(&format!(
        "{k}root = \"/dev/xvda1\"\nextra = \"console=hvc0\"\n"
    ))
    .config;
    assert_eq!(c.boot.cmdline(), Some("root=/dev/xvda1 console=hvc0"));
    let c = ok(&format!("{k}root = \"/dev/xvda1\"\n")).config;
    assert_eq!(c.boot.cmdline(), Some("root=/dev/xvda1"));
    let c = ok(&format!("{k}extra = \"quiet\"\n")).config;
    assert_eq!(c.boot.cmdline(), Some("quiet"));
    let b = ok(&format!("{k}cmdline = \"ro\"\nroot = \"/dev/xvda1\"\n"));
    assert_eq!(b.config.boot.cmdline(), Some("ro"));
    let w = &b.warnings[0];
    assert_eq!(
        w.message,
        "`cmdline` is set, so `root` and `extra` are ignored"
    );
    assert_eq!((w.span.line, w.notes[0].0.line), (4, 5));
}

#[test]
fn ramdisk_is_module_zero_and_modules_follow() {
    let c = ok(&format!(
        "{PVH}ramdisk = \"initrd.img\"\nmodules = [ \"../m1\", [ \"/m2\", \"opt=1\" ], [ \"m3\" ] ]\n"
    ))
    .config;
    let m = c.boot.modules();
    assert_eq!(m.len(), 4);
    assert_eq!(m[0].path.value, PathBuf::from("/etc/xen/guests/initrd.img"));
    assert_eq!(m[0].cmdline, None);
    assert_eq!(m[1].path.value, PathBuf::from("/etc/xen/m1"));
    assert_eq!(m[2].path.value, PathBuf::from("/m2"));
    assert_eq!(m[2].cmdline.as_deref(), Some("opt=1"));
    assert_eq!(m[3].path.value, PathBuf::from("/etc/xen/guests/m3"));
    assert_eq!((m[2].path.line, m[2].path.column), (5, 24));
}

#[test]
fn module_entry_errors_point_at_the_entry() {
    let e = errs(&format!(
        "{PVH}modules = [ \"/ok\", 7, [ \"/a\", \"b\", \"c\" ], [ [ \"x\" ] ], \"\" ]\n"
    ));
    let got: Vec<(String, u32)> = e
        .iter()
        .map(|d| (d.message.clone(), d.span.column))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "module 2 must be a file name string, not a number".to_string(),
                20
            ),
            (
                "module 3 has 3 items; expected [ file ] or [ file, cmdline ]".to_string(),
                23
            ),
            ("module 4: the file name must be a string".to_string(), 45),
            ("module 5: the file name is empty".to_string(), 56),
        ]
    );
    let e = one_err(&format!("{PVH}modules = \"/m\"\n"));
    assert_eq!(e.message, "`modules` must be a list");
}

#[test]
fn mixing_boot_methods_names_both_lines() {
    let e = one_err("name = \"g\"\ntype = \"pvh\"\nkernel = \"/k\"\nfirmware = \"/fw\"\n");
    assert_eq!(
        e.message,
        "`kernel` and `firmware` are both set: a guest boots one way"
    );
    assert_eq!((e.span.line, e.notes[0].0.line), (4, 3));
    // With a bootloader, `kernel` is its --kernel hint, not a second method.
    let e = errs("name = \"g\"\ntype = \"pvh\"\nbootloader = \"pygrub\"\nkernel = \"/k\"\nfirmware = \"/fw\"\n");
    assert_eq!(e.len(), 1);
    assert_eq!(
        e[0].message,
        "`bootloader` and `firmware` are both set: a guest boots one way"
    );
}

#[test]
fn no_boot_method_is_an_error_for_pvh() {
    let e = one_err("name = \"g\"\ntype = \"pvh\"\n");
    assert_eq!(
        e.message,
        "no boot method: set kernel, firmware or bootloader"
    );
    // HVM falls back to hvmloader with SeaBIOS.
    let c = ok("name = \"g\"\ntype = \"hvm\"\n").config;
    assert_eq!(c.boot.kind(), "firmware");
}

#[test]
fn firmware_names_paths_and_the_type_matrix() {
    let pvh = "name = \"g\"\ntype = \"pvh\"\n";
    let hvm = "name = \"g\"\ntype = \"hvm\"\n";
    let fw = |b: &Built| match &b.config.boot {
        Boot::Firmware { firmware, .. } => firmware.value.clone(),
        other => panic!("{other:?}"),
    };
    let pv = "name = \"g\"\ntype = \"pv\"\n";
    assert_eq!(
        fw(&ok(&format!("{pv}firmware = \"pvgrub64\"\n"))),
        Firmware::Pvgrub64
    );
    assert_eq!(
        fw(&ok(&format!("{pvh}firmware = \"ovmf\"\n"))),
        Firmware::Ovmf
    );
    assert_eq!(
        fw(&ok(&format!("{pvh}firmware = \"./ovmf-pvh.bin\"\n"))),
        Firmware::Path(PathBuf::from("/etc/xen/guests/ovmf-pvh.bin"))
    );
    assert_eq!(
        fw(&ok(&format!("{hvm}firmware = \"ovmf\"\n"))),
        Firmware::Ovmf
    );
    assert_eq!(
        fw(&ok(&format!("{hvm}firmware = \"rombios\"\n"))),
        Firmware::Rombios
    );

    let e = one_err(&format!("{pvh}firmware = \"seabios\"\n"));
    assert_eq!(
        e.message,
        "firmware \"seabios\" needs type = \"hvm\", not type = \"pvh\""
    );
    assert_eq!((e.span.line, e.notes[0].0.line), (3, 2));
    let e = one_err(&format!("{pv}firmware = \"ovmf\"\n"));
    assert_eq!(
        e.message,
        "firmware \"ovmf\" needs type = \"hvm\" or \"pvh\", not type = \"pv\""
    );
    let e = one_err(&format!("{hvm}firmware = \"pvgrub32\"\n"));
    assert_eq!(
        e.message,
        "firmware \"pvgrub32\" needs type = \"pv\", not type = \"hvm\""
    );
    let e = one_err(&format!("{pvh}firmware = \"pvgrub64\"\n"));
    assert_eq!(
        e.message,
        "firmware \"pvgrub64\" needs type = \"pv\", not type = \"pvh\""
    );
    assert!(e
        .hint
        .as_deref()
        .unwrap_or("")
        .contains("firmware = \"pvgrub\""));
    // GRUB built for PVH boots PVH guests only.
    let b = ok(&format!("{pvh}firmware = \"pvgrub\"\n"));
    assert!(matches!(
        &b.config.boot,
        Boot::Firmware { firmware, .. } if firmware.value == Firmware::Pvgrub
    ));
    let e = one_err(&format!("{hvm}firmware = \"pvgrub\"\n"));
    assert!(e.message.contains("needs type = \"pvh\""), "{}", e.message);

    let e = one_err(&format!("{pvh}firmware = \"bios\"\n"));
    assert_eq!(e.message, "firmware = \"bios\" is refused: name the BIOS");
    assert_eq!(e.hint.as_deref(), Some("use seabios"));
    // xl takes a prefix of "uefi" as OVMF and of "bios" as the default BIOS for HVM;
    // rxl refuses the aliases for HVM too.
    let e = one_err(&format!("{hvm}firmware = \"uefi\"\n"));
    assert_eq!(
        e.message,
        "firmware = \"uefi\" is refused: name the UEFI firmware"
    );
    assert_eq!(e.hint.as_deref(), Some("use ovmf"));
    let e = one_err(&format!("{hvm}firmware = \"bios\"\n"));
    assert_eq!(e.message, "firmware = \"bios\" is refused: name the BIOS");
    assert_eq!(
        fw(&ok(&format!("{hvm}firmware = \"OVMF\"\n"))),
        Firmware::Ovmf
    );
    let e = one_err(&format!("{pvh}firmware = \"grub\"\n"));
    assert_eq!(
        e.message,
        "unknown firmware \"grub\": expected ovmf, seabios, rombios, pvgrub, pvgrub32, pvgrub64 or a path"
    );
    assert_eq!(
        e.hint.as_deref(),
        Some("a path must contain '/': write firmware = \"./grub\" for a file next to the config")
    );
    let e = one_err(&format!("{hvm}firmware = \"seabio\"\n"));
    assert_eq!(e.hint.as_deref(), Some("did you mean \"seabios\"?"));
}

#[test]
fn firmware_keeps_cmdline_and_ramdisk_for_pvh() {
    let c =
        ok("name = \"g\"\ntype = \"pvh\"\nfirmware = \"/fw\"\ncmdline = \"x\"\nramdisk = \"/r\"\n")
            .config;
    assert_eq!(c.boot.cmdline(), Some("x"));
    assert_eq!(c.boot.modules().len(), 1);
    let b = ok("name = \"g\"\ntype = \"hvm\"\nfirmware = \"ovmf\"\ncmdline = \"x\"\n");
    assert_eq!(b.config.boot.cmdline(), None);
    assert!(has_warning(
        &b,
        "`cmdline` is ignored for an HVM guest without a kernel"
    ));
}

#[test]
fn firmware_override_is_hvm_only() {
    let e = one_err("name = \"g\"\ntype = \"pvh\"\nfirmware_override = \"/x/fw.bin\"\n");
    assert_eq!(
        e.message,
        "`firmware_override` is only for HVM guests, not type = \"pvh\""
    );
    assert_eq!(
        e.hint.as_deref(),
        Some("for a PVH guest give the image as firmware = \"/x/fw.bin\"")
    );
    let c = ok("name = \"g\"\ntype = \"hvm\"\nfirmware_override = \"hvmloader2\"\n").config;
    match c.boot {
        Boot::Firmware { firmware, .. } => assert_eq!(
            firmware.value,
            Firmware::Path(PathBuf::from("/etc/xen/guests/hvmloader2"))
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bootloader_name_or_path_and_args() {
    let c = ok("name = \"g\"\ntype = \"pvh\"\nbootloader = \"pygrub\"\nbootloader_args = [ \"-q\", \"--x\" ]\nextra = \"quiet\"\n").config;
    match &c.boot {
        Boot::Bootloader {
            path,
            args,
            cmdline,
            kernel,
            ramdisk,
        } => {
            assert_eq!(path.value, PathBuf::from("pygrub"));
            assert_eq!(args, &["-q".to_string(), "--x".to_string()]);
            assert_eq!(cmdline.as_deref(), Some("quiet"));
            assert_eq!((kernel, ramdisk), (&None, &None));
        }
        other => panic!("{other:?}"),
    }
    let b = ok("name = \"g\"\ntype = \"pvh\"\nbootloader = \"bin/pygrub\"\nbootloader_args = \"-q  --x\"\nkernel = \"boot/vmlinuz\"\nramdisk = \"/boot/initrd.img\"\n");
    match &b.config.boot {
        Boot::Bootloader {
            path,
            args,
            kernel,
            ramdisk,
            ..
        } => {
            assert_eq!(path.value, PathBuf::from("/etc/xen/guests/bin/pygrub"));
            assert_eq!(args.len(), 2);
            // Paths inside the guest: passed on verbatim, never resolved.
            assert_eq!(kernel.as_deref(), Some("boot/vmlinuz"));
            assert_eq!(ramdisk.as_deref(), Some("/boot/initrd.img"));
        }
        other => panic!("{other:?}"),
    }
    assert!(has_warning(&b, "as a string is deprecated"));
    assert!(!has_warning(&b, "`ramdisk` is ignored"));
    // The hints survive the record's JSON.
    let back: DomainConfig =
        serde_json::from_value(serde_json::to_value(&b.config).expect("json")).expect("parse");
    assert_eq!(back.boot, b.config.boot);
}

#[test]
fn unknown_keys_warn_with_suggestions() {
    let b = ok(&format!("{PVH}kernal = \"/k\"\nvnc = 1\nfrobnicate = 1\n"));
    let w: Vec<(&str, Option<&str>)> = b
        .warnings
        .iter()
        .map(|w| (w.message.as_str(), w.hint.as_deref()))
        .collect();
    assert_eq!(
        w,
        vec![
            (
                "unknown key `kernal` is ignored",
                Some("did you mean `kernel`?")
            ),
            ("unknown key `frobnicate` is ignored", None),
            (
                "`vnc` is only used for type = \"hvm\" and is ignored for type = \"pvh\"",
                None
            ),
        ]
    );
    assert_eq!(b.warnings[0].span.line, 4);
}

#[test]
fn pvshim_is_refused_when_on() {
    ok(&format!("{PVH}pvshim = 0\n"));
    let e = one_err(&format!("{PVH}pvshim = 1\n"));
    assert_eq!(e.message, "pvshim is not supported by rxl");
}

#[test]
fn relative_base_dir_is_made_absolute() {
    let b = build(&cfg(PVH), Path::new("rel")).unwrap_or_else(|_| panic!("build"));
    match &b.config.boot {
        Boot::Kernel { kernel, .. } => {
            assert!(kernel.value.is_absolute());
            assert!(kernel.value.ends_with("rel/vmlinuz"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn json_contract_and_round_trip() {
    let b = ok(&format!(
        "{PVH}ramdisk = \"initrd\"\nmemory = 256\nvcpus = 2\ndisk = [ \"disk.img,raw,xvda,rw\" ]\nvif = [ \"mac=00:16:3e:00:00:01\" ]\n"
    ));
    let j = b.config.to_json();
    assert_eq!(j["name"], "g");
    assert_eq!(j["type"], "pvh");
    assert_eq!(j["memory_mib"], 256);
    assert_eq!(j["maxmem_mib"], 256);
    assert_eq!(j["vcpus"], 2);
    assert_eq!(j["maxvcpus"], 2);
    assert_eq!(j["uuid"], b.config.uuid.to_string());
    assert_eq!(j["boot"]["kind"], "kernel");
    assert_eq!(j["boot"]["kernel"], "/etc/xen/guests/vmlinuz");
    assert_eq!(j["boot"]["modules"][0]["path"], "/etc/xen/guests/initrd");
    assert!(j["boot"]["modules"][0]["cmdline"].is_null());
    assert!(j["boot"]["cmdline"].is_null());
    assert!(j["boot"]["firmware"].is_null());
    assert!(j["boot"]["bootloader"].is_null());
    assert!(j["boot"]["bootloader_args"].is_null());
    assert_eq!(j["on_poweroff"], "destroy");
    assert_eq!(j["on_soft_reset"], "soft-reset");
    assert_eq!(j["disks"][0]["target"], "/etc/xen/guests/disk.img");
    assert_eq!(j["disks"][0]["vdev"], "xvda");
    assert_eq!(j["vifs"][0]["mac"], "00:16:3e:00:00:01");
    assert_eq!(j["vifs"][0]["bridge"], "xenbr0");
    let back = DomainConfig::from_json(&j).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, b.config);
    let text = serde_json::to_string(&b.config).unwrap_or_default();
    let again: DomainConfig = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again, b.config);

    let fw = ok("name = \"g\"\ntype = \"pv\"\nfirmware = \"pvgrub64\"\n").config;
    let j = fw.to_json();
    assert_eq!(j["boot"]["kind"], "firmware");
    assert_eq!(j["boot"]["firmware"], "pvgrub64");
    assert!(j["boot"]["kernel"].is_null());
    assert_eq!(DomainConfig::from_json(&j).ok(), Some(fw));
}

#[test]
fn check_files_points_at_the_line() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("vmlinuz"), b"k").unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir(dir.path().join("sub")).unwrap_or_else(|e| panic!("{e}"));
    let text = "name = \"g\"\ntype = \"pvh\"\nkernel = \"vmlinuz\"\nramdisk = \"missing.img\"\nmodules = [ \"sub\" ]\n";
    let b = build(&cfg(text), dir.path()).unwrap_or_else(|_| panic!("build"));
    let d = check_files(&b.config);
    assert_eq!(d.len(), 2, "{d:?}");
    let missing = dir.path().join("missing.img");
    assert_eq!(
        d[0].message,
        format!("module {} does not exist", missing.display())
    );
    assert_eq!(d[0].span.line, 4);
    assert!(d[1].message.ends_with("is a directory, not a file"));
    assert_eq!(d[1].span.line, 5);
}

#[test]
fn json_keys_are_the_documented_contract() {
    let j = ok(PVH).config.to_json();
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        k
    };
    assert_eq!(
        keys(&j),
        [
            "boot",
            "disks",
            "max_event_channels",
            "max_grant_frames",
            "max_maptrack_frames",
            "maxmem_mib",
            "maxvcpus",
            "memory_mib",
            "name",
            "on_crash",
            "on_poweroff",
            "on_reboot",
            "on_soft_reset",
            "on_watchdog",
            "type",
            "uuid",
            "vcpus",
            "vifs"
        ]
    );
    assert_eq!(
        keys(&j["boot"]),
        [
            "bootloader",
            "bootloader_args",
            "cmdline",
            "firmware",
            "kernel",
            "kind",
            "modules"
        ]
    );
    let bl = ok("name = \"g\"\ntype = \"pvh\"\nbootloader = \"pygrub\"\n").config;
    let j = bl.to_json();
    assert_eq!(j["boot"]["kind"], "bootloader");
    assert_eq!(j["boot"]["bootloader"], "pygrub");
    assert_eq!(j["boot"]["bootloader_args"], serde_json::json!([]));
    assert!(j["boot"]["modules"].is_null() && j["boot"]["kernel"].is_null());
    assert_eq!(DomainConfig::from_json(&j).ok(), Some(bl));
    let bad = serde_json::json!({"kind": "kernel", "kernel": null, "modules": null, "cmdline": null,
        "firmware": null, "bootloader": null, "bootloader_args": null});
    assert!(serde_json::from_value::<Boot>(bad).is_err());
}
