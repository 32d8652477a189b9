//! Step `rxl-linux`: rxl runs Debian's kernel with a busybox initramfs: /init, pause and
//! unpause, the console, reboot and shutdown. Also builds that initramfs on the host.

use std::path::Path;

use crate::checks::{excerpt, number, row};
use crate::image::{Entry, Image};
use crate::markers::Capture;
use crate::scenario::{cap, script_cap, CaptureSpec, LinuxFiles, Outcome, Step, StepFile};

/// The line the Linux guest's /init prints on its console (followed by ` cpus=N online=L`).
pub const LINUX_INIT_LINE: &str = "RXL-LINUX-INIT";

/// The Linux guest's /init: mounts the kernel file systems, reports the CPUs it sees, then
/// answers each line typed on its console with `RXL-ECHO line` (the console step types).
const LINUX_INIT: &str = include_str!("../../scripts/guest/linux-init.sh");

/// What the guest answers to the line the console capture types.
const CONSOLE_ECHO: &str = "RXL-ECHO console check 42";

/// Kernel modules the Linux guest's initramfs carries (with their dependencies) for the
/// devices step: blkfront, netfront, and ext4 with the crc32c its metadata checksums need
/// (ext4 asks the crypto API for it by name, so no module dependency names it).
const GUEST_MODULES: &[&str] = &["xen-blkfront", "xen-netfront", "crc32c_generic", "ext4"];

/// Writes the Linux guest's initramfs (busybox, /init, and the /sbin/poweroff and
/// /sbin/reboot that Linux runs on a xenstore shutdown request) into `out_dir`. Returns
/// `None` when the unpacked tree has no kernel `boot/vmlinuz-RELEASE` or no `bin/busybox`.
pub fn build_linux(
    root: &Path,
    release: &str,
    out_dir: &Path,
) -> anyhow::Result<Option<LinuxFiles>> {
    use anyhow::Context as _;
    let kernel = root.join(format!("boot/vmlinuz-{release}"));
    let busybox = root.join("bin/busybox");
    if !kernel.is_file() || !busybox.is_file() {
        return Ok(None);
    }
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let mut img = Image::new();
    for d in ["/proc", "/sys", "/dev", "/tmp", "/bin", "/sbin"] {
        img.dir(d)?;
    }
    img.add(
        "/dev/console",
        Entry::CharDev {
            perm: 0o600,
            major: 5,
            minor: 1,
        },
    )?;
    img.host_file("/bin/busybox", &busybox)?;
    img.bytes("/init", 0o755, LINUX_INIT)?;
    img.bytes(
        "/sbin/poweroff",
        0o755,
        include_str!("../../scripts/guest/poweroff.sh"),
    )?;
    img.bytes(
        "/sbin/reboot",
        0o755,
        include_str!("../../scripts/guest/reboot.sh"),
    )?;
    // The PV disk and network drivers and ext4 (with crc32c for its checksums), loaded by
    // /init when the command line says rxl_devices.
    let mod_dir = root.join("lib/modules").join(release);
    let modules = crate::image::kmod::ModuleDir::open(&mod_dir)?.load_order(GUEST_MODULES)?;
    let mut list = String::new();
    for m in &modules {
        let path = format!("/lib/modules/{release}/{}", m.rel_path);
        img.host_file(&path, &mod_dir.join(&m.rel_path))?;
        list.push_str(&path);
        list.push('\n');
    }
    img.bytes("/etc/rxl-modules", 0o644, list)?;
    let initrd = out_dir.join("initrd.img");
    img.write_gz(&initrd)
        .with_context(|| format!("writing {}", initrd.display()))?;
    Ok(Some(LinuxFiles { kernel, initrd }))
}

// ---------------------------------------------------------------------------------------
// rxl-linux

/// The Linux guest's name and directory in dom0 (config, kernel and initramfs side by side).
const LINUX_NAME: &str = "rxl-linux";
pub(crate) const LINUX_DIR: &str = "/e2e/linux";
const LINUX_MEM: u64 = 256;
pub(crate) const LINUX_VCPUS: u32 = 2;
/// Seconds a Linux boot may take to reach /init under TCG.
const LINUX_BOOT_S: u32 = 150;

/// vCPUs of the Linux guests the side-by-side step times. Under this emulation Linux
/// guests die early (a triple fault in their TSC calibration) in about one boot of five,
/// with xl as with rxl, and the whole machine has fallen silent three times in about 70
/// boots of 2-vCPU guests, each time just as the second vCPU came up; no such hang in about
/// 50 boots of 1-vCPU guests (2026-12-01). The rxl-linux step keeps 2 vCPUs, which is what
/// proves the MADT.
pub(crate) const TIMED_LINUX_VCPUS: u32 = 1;

/// A Linux guest config named `name` with `vcpus` vCPUs, with `kernel` and `ramdisk` as
/// given.
pub(crate) fn linux_cfg(
    name: &str,
    kernel: &str,
    ramdisk: &str,
    vcpus: u32,
    extra: &str,
) -> String {
    linux_cfg_of_type("pvh", name, kernel, ramdisk, vcpus, extra)
}

/// As [`linux_cfg`], for a guest of type `ty` (`pvh` or `pv`: Debian's kernel boots as
/// either).
pub(crate) fn linux_cfg_of_type(
    ty: &str,
    name: &str,
    kernel: &str,
    ramdisk: &str,
    vcpus: u32,
    extra: &str,
) -> String {
    format!(
        "# Debian's kernel as a {} guest, with a busybox initramfs.\n\
         name = \"{name}\"\ntype = \"{ty}\"\nmemory = {LINUX_MEM}\nvcpus = {vcpus}\n\
         kernel = \"{kernel}\"\nramdisk = \"{ramdisk}\"\n\
         cmdline = \"console=hvc0 rdinit=/init\"\n{extra}",
        ty.to_uppercase()
    )
}

/// The Linux guest's kernel and initramfs in dom0 (`LINUX_DIR`); every step that boots it
/// names them (the image holds one copy).
pub(crate) fn kernel_files(linux: &LinuxFiles) -> Vec<StepFile> {
    vec![
        StepFile::Host {
            path: format!("{LINUX_DIR}/vmlinuz"),
            host: linux.kernel.clone(),
        },
        StepFile::Host {
            path: format!("{LINUX_DIR}/initrd.img"),
            host: linux.initrd.clone(),
        },
    ]
}

/// The Linux guest's files in dom0.
fn linux_files(linux: &LinuxFiles) -> Vec<StepFile> {
    let mut files = kernel_files(linux);
    files.push(StepFile::Text {
        path: format!("{LINUX_DIR}/linux.cfg"),
        text: linux_cfg(LINUX_NAME, "vmlinuz", "initrd.img", LINUX_VCPUS, ""),
    });
    files
}

/// Debian's kernel booted by rxl: /init, pause/unpause, reboot, shutdown.
pub fn linux_step(linux: &LinuxFiles) -> Step {
    Step {
        name: "rxl-linux",
        about: "rxl runs Debian's kernel as a 2-vCPU PVH guest: /init, pause/unpause, \
                reboot -w (new domid, /init again), shutdown -w (gone)",
        captures: life_captures(LINUX_NAME, &format!("{LINUX_DIR}/linux.cfg")),
        files: linux_files(linux),
        check: Box::new(|o| check_life(o, LINUX_NAME)),
        publish: None,
    }
}

/// The life of the Linux guest `name` (config `cfg` in dom0) under rxl: create to /init,
/// pause and unpause, the console, reboot -w, shutdown -w, and rxl list afterwards.
pub(crate) fn life_captures(name: &str, cfg: &str) -> Vec<CaptureSpec> {
    vec![
        script_cap(
            "boot",
            2 * LINUX_BOOT_S + 60,
            include_str!("../../scripts/steps/rxl-linux/boot.sh"),
            &[
                ("LINUX_NAME", name.into()),
                ("LINUX_CFG", cfg.into()),
                ("LINUX_INIT_LINE", LINUX_INIT_LINE.into()),
                ("LINUX_BOOT_S", LINUX_BOOT_S.to_string()),
            ],
        ),
        script_cap(
            "pause",
            30,
            include_str!("../../scripts/steps/rxl-linux/pause.sh"),
            &[("LINUX_NAME", name.into())],
        ),
        script_cap(
            "console",
            60,
            include_str!("../../scripts/steps/rxl-linux/console.sh"),
            &[
                ("LINUX_NAME", name.into()),
                ("CONSOLE_ECHO", CONSOLE_ECHO.into()),
            ],
        ),
        script_cap(
            "reboot",
            LINUX_BOOT_S + 160,
            include_str!("../../scripts/steps/rxl-linux/reboot.sh"),
            &[
                ("LINUX_NAME", name.into()),
                ("LINUX_INIT_LINE", LINUX_INIT_LINE.into()),
                ("LINUX_BOOT_S", LINUX_BOOT_S.to_string()),
            ],
        ),
        script_cap(
            "shutdown",
            150,
            include_str!("../../scripts/steps/rxl-linux/shutdown.sh"),
            &[("LINUX_NAME", name.into())],
        ),
        cap("rxl-list-after", 30, "rxl list\n"),
    ]
}

/// The `RXL-LINUX-INIT` line in a capture, if any.
fn init_line(c: &Capture) -> Option<&str> {
    c.lines
        .iter()
        .find_map(|l| l.find(LINUX_INIT_LINE).map(|p| &l[p..]))
}

/// The verdict on [`life_captures`] of the guest `name`.
pub(crate) fn check_life(o: &Outcome<'_>, name: &str) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let want_init = format!("{LINUX_INIT_LINE} cpus={LINUX_VCPUS} online=0-1");
    let boot = o.capture("boot").map_err(|e| vec![e])?;
    if boot.lines.iter().any(|l| l.starts_with("RETRY")) {
        notes.push("first boot died before /init, retried".to_owned());
    }
    match init_line(boot) {
        Some(l) if l.trim_end() == want_init => {}
        other => problems.push(format!(
            "boot: /init line is {other:?}, expected {want_init:?}"
        )),
    }
    if boot.rc != Some(0) {
        problems.push(format!(
            "boot exited with status {:?}: {}",
            boot.rc,
            excerpt(&boot.lines)
        ));
    }
    let first = number(boot, "domid");
    if let Some(ms) = number(boot, "init_ms") {
        notes.push(format!("/init {:.1} s after create", ms as f64 / 1000.0));
    }
    match o.succeeded("pause") {
        Ok(c) => {
            let state = |k: &str| {
                c.lines
                    .iter()
                    .find_map(|l| l.strip_prefix(k))
                    .map(str::trim)
            };
            match state("paused=") {
                Some(s) if s.as_bytes().get(2) == Some(&b'p') => {}
                other => problems.push(format!("paused state is {other:?}, expected --p---")),
            }
            match state("unpaused=") {
                Some(s) if s.len() == 6 && !s.contains('p') => {}
                other => problems.push(format!("state after unpause is {other:?}")),
            }
            match c.lines.iter().find(|l| l.starts_with(name)) {
                Some(l)
                    if l.split_whitespace()
                        .nth(4)
                        .and_then(|s| s.as_bytes().get(2).copied())
                        == Some(b'p') => {}
                other => problems.push(format!("rxl list while paused shows {other:?}")),
            }
        }
        Err(e) => problems.push(e),
    }
    match o.succeeded("console") {
        Ok(c) => {
            let echoed = c.lines.iter().any(|l| l.trim() == CONSOLE_ECHO);
            let rc0 = c.lines.iter().any(|l| l.trim() == "console_rc=0");
            if !echoed || !rc0 {
                problems.push(format!(
                    "console: want the guest's {CONSOLE_ECHO:?} and console_rc=0 after \
                     Ctrl-]: {}",
                    excerpt(&c.lines)
                ));
            } else {
                notes.push("console: typed line answered, Ctrl-] detached".to_owned());
            }
        }
        Err(e) => problems.push(e),
    }
    match o.succeeded("reboot") {
        Ok(c) => {
            let new = number(c, "new");
            if new.is_none() || new == first {
                problems.push(format!(
                    "reboot: domid {new:?}, before it was {first:?}: {}",
                    excerpt(&c.lines)
                ));
            }
            match init_line(c) {
                Some(l) if l.trim_end() == want_init => {}
                other => problems.push(format!("reboot: /init line is {other:?}")),
            }
            match row(&c.text(), name) {
                Some(r) if r.mem == LINUX_MEM && r.vcpus == LINUX_VCPUS => {}
                other => problems.push(format!("reboot: xl list row {other:?}")),
            }
            if let (Some(f), Some(n)) = (first, new) {
                notes.push(format!("reboot d{f} -> d{n}"));
            }
        }
        Err(e) => problems.push(e),
    }
    match o.succeeded("shutdown") {
        Ok(c) if c.lines.iter().any(|l| l.trim() == "state=gone") => {}
        Ok(c) => problems.push(format!(
            "shutdown -w returned but the domain is still there: {}",
            excerpt(&c.lines)
        )),
        Err(e) => problems.push(e),
    }
    match o.succeeded("rxl-list-after") {
        Ok(c) if row(&c.text(), name).is_some() => {
            problems.push("rxl list still shows the guest after shutdown".into())
        }
        Ok(_) => {}
        Err(e) => problems.push(e),
    }
    if problems.is_empty() {
        Ok(format!("{want_init}; paused --p---; {}", notes.join("; ")))
    } else {
        problems.extend(notes.into_iter().map(|n| format!("note: {n}")));
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::compare;
    use crate::markers;
    #[test]
    fn linux_check_wants_init_pause_and_a_new_domid() {
        let xl_row = format!("{}\nrxl-linux 7 256 2 -b---- 1.0\n", compare::LIST_HEADER);
        let with_console = |new: u32, console: &str| {
            format!(
                "@@RXL-BEGIN rxl-linux/boot\ncreate_ms=9000 init_ms=30000 wait=0\ndomid=6\n\
                 RXL-LINUX-INIT cpus=2 online=0-1\n@@RXL-END rxl-linux/boot rc=0\n\
                 @@RXL-BEGIN rxl-linux/pause\npaused=--p---\nrxl-linux 6 256 2 --p--- 1.0\n\
                 unpaused=-b----\n@@RXL-END rxl-linux/pause rc=0\n\
                 @@RXL-BEGIN rxl-linux/console\n{console}@@RXL-END rxl-linux/console rc=0\n\
                 @@RXL-BEGIN rxl-linux/reboot\nold=6 new={new}\nwait=0 init_ms=1\n\
                 RXL-LINUX-INIT cpus=2 online=0-1\n{xl_row}@@RXL-END rxl-linux/reboot rc=0\n\
                 @@RXL-BEGIN rxl-linux/shutdown\nstate=gone\n@@RXL-END rxl-linux/shutdown rc=0\n\
                 @@RXL-BEGIN rxl-linux/rxl-list-after\n{}\nDomain-0 0 1024 1 r----- 3.0\n\
                 @@RXL-END rxl-linux/rxl-list-after rc=0\n",
                compare::LIST_HEADER
            )
        };
        let good_console =
            format!("console_rc=0\n--- console output (last lines)\n{CONSOLE_ECHO}\n");
        let results = |new: u32| with_console(new, &good_console);
        let check = |text: String| {
            let report = markers::parse(&text);
            check_life(
                &Outcome {
                    step: "rxl-linux",
                    report: &report,
                    console: "",
                },
                LINUX_NAME,
            )
        };
        let ok = check(results(7)).unwrap();
        assert!(ok.contains("reboot d6 -> d7"), "{ok}");
        assert!(ok.contains("typed line answered"), "{ok}");
        let err = check(results(6)).unwrap_err();
        assert!(err[0].contains("reboot: domid"), "{err:?}");
        // No answer from the guest, or rxl console not ending on Ctrl-].
        let err = check(with_console(
            7,
            "no answer from the guest within 20 s\nconsole_rc=0\n",
        ))
        .unwrap_err();
        assert!(err[0].starts_with("console:"), "{err:?}");
        let err = check(with_console(
            7,
            &format!("{CONSOLE_ECHO}\nconsole_rc=143\n"),
        ))
        .unwrap_err();
        assert!(err[0].starts_with("console:"), "{err:?}");
    }

    #[test]
    fn the_guest_init_prints_the_line_the_checks_look_for() {
        assert!(LINUX_INIT.contains(&format!("echo \"{LINUX_INIT_LINE} cpus=")));
        let answer = CONSOLE_ECHO.strip_prefix("RXL-ECHO ").unwrap();
        assert!(LINUX_INIT.contains("echo \"RXL-ECHO $line\""));
        assert_eq!(answer, "console check 42");
    }

    #[test]
    fn the_linux_initramfs_has_busybox_and_init() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("boot")).unwrap();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        assert!(build_linux(&root, "1.0", &dir.path().join("out"))
            .unwrap()
            .is_none());
        std::fs::write(root.join("boot/vmlinuz-1.0"), b"kernel").unwrap();
        std::fs::write(root.join("bin/busybox"), b"busybox-bytes").unwrap();
        // A kernel without the guest's modules: no initramfs.
        assert!(build_linux(&root, "1.0", &dir.path().join("out")).is_err());
        // Built into this kernel: nothing to load, and an empty list.
        let mods = root.join("lib/modules/1.0");
        std::fs::create_dir_all(mods.join("kernel")).unwrap();
        std::fs::write(
            mods.join("modules.builtin"),
            "kernel/drivers/block/xen-blkfront.ko\nkernel/drivers/net/xen-netfront.ko\n\
             kernel/crypto/crc32c_generic.ko\nkernel/fs/ext4/ext4.ko\n",
        )
        .unwrap();
        let l = build_linux(&root, "1.0", &dir.path().join("out"))
            .unwrap()
            .unwrap();
        let gz = std::fs::read(&l.initrd).unwrap();
        let mut cpio = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut cpio).unwrap();
        let text = String::from_utf8_lossy(&cpio);
        for want in [
            "bin/busybox",
            "busybox-bytes",
            "init",
            LINUX_INIT_LINE,
            "sbin/poweroff",
            "dev/console",
            "etc/rxl-modules",
            "RXL-RUN ",
        ] {
            assert!(text.contains(want), "{want} missing");
        }
    }
}
