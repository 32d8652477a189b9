//! Step `bootloader`: guests boot from their own disk. The host builds Debian-style disk
//! images (a partition table written by sfdisk into a plain file, ext4 partitions made with
//! `mke2fs -t ext4 -d DIR` and copied to their offsets: no mounts, no loop devices) holding
//! /boot/vmlinuz (dom0's own Debian kernel), /boot/initrd.img (the Linux guest's
//! initramfs) and /boot/grub/grub.cfg with two entries whose default is the second. dom0
//! boots them three ways: `bootloader = "pygrub"` (xl and rxl), GRUB for PVH reading the
//! disk itself (xl with the image as its kernel, rxl with `firmware = "pvgrub"`) and
//! `bootloader = "rxl"` (rxl's built-in bootloader); each boot must reach the guest's /init
//! with the default entry's command line. Some guests then rewrite the default themselves
//! and reboot, and the new boot must follow it. Hostile disks (a kernel path outside the
//! file system, a kernel symlinked to a dom0 path, a kernel larger than the cap) must make
//! rxl's create fail, naming the bootloader, and leave nothing behind; what xl does with them
//! is recorded. The create times and the times to /init are printed side by side.

use std::fmt::Write as _;
use std::io::{Seek, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _};

use crate::checks::{excerpt, field, number};
use crate::markers::Capture;
use crate::packages::Tool;
use crate::scenario::{script_cap, CaptureSpec, LinuxFiles, Outcome, Step, StepFile};
use crate::steps::devices::section;
use crate::steps::linux::{LINUX_INIT_LINE, TIMED_LINUX_VCPUS};
use crate::steps::pvgrub::PVGRUB_PATH;
use crate::steps::side_by_side::{replace_section, secs, today};

/// Host programs that build the disk images.
pub const DISK_TOOLS: &[Tool] = &[
    Tool {
        program: "sfdisk",
        package: "fdisk",
    },
    Tool {
        program: "mke2fs",
        package: "e2fsprogs",
    },
];

/// The environment variable that chooses the tools (comma-separated: `xl`, `rxl`).
pub const TOOLS_ENV: &str = "RXL_E2E_BOOT_TOOLS";
/// Both tools unless [`TOOLS_ENV`] says otherwise.
pub const DEFAULT_TOOLS: &str = "xl,rxl";
const ALL_TOOLS: [&str; 2] = ["xl", "rxl"];

/// The tools named in `spec` (comma-separated), in the order xl, rxl; an unknown or missing
/// name is an error naming the known ones.
pub fn select_tools(spec: &str) -> Result<Vec<&'static str>, String> {
    crate::scenario::select_labels(spec, &ALL_TOOLS, |t| t)
}

/// Where the images go in dom0 (read-only originals) and where the guests' copies go.
const IMG_DIR: &str = "/e2e/bootloader";
const WORK_DIR: &str = "/tmp/blstep";
/// Seconds a boot (bootloader, kernel, initramfs) may take to reach /init.
const BOOT_S: u32 = 150;
/// The kernel size the bootloaders refuse beyond (pygrub 4.17's RLIMIT_FSIZE, rxl's cap).
const CAP_MIB: u64 = 128;

/// The disk images the host builds, by file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disk {
    /// MBR, one ext4 partition with /boot/vmlinuz, /boot/initrd.img, /boot/grub/grub.cfg.
    Mbr,
    /// GPT: the root file system first (no config), then /boot on its own partition
    /// (vmlinuz, initrd.img, grub/grub.cfg, paths relative to that partition).
    SepBoot,
    /// grub.cfg's kernel is `/../../../etc/passwd`.
    Outside,
    /// /boot/vmlinuz is a symlink to `/etc/xen/xl.conf`, a dom0 path absent in the guest.
    Symlink,
    /// /boot/vmlinuz is a sparse file one MiB larger than the cap.
    Huge,
}

impl Disk {
    fn file(self) -> &'static str {
        match self {
            Disk::Mbr => "mbr.img",
            Disk::SepBoot => "sepboot.img",
            Disk::Outside => "outside.img",
            Disk::Symlink => "symlink.img",
            Disk::Huge => "huge.img",
        }
    }
    fn label(self) -> &'static str {
        self.file().trim_end_matches(".img")
    }
    fn about(self) -> &'static str {
        match self {
            Disk::Mbr => "MBR, one ext4 partition",
            Disk::SepBoot => "GPT, root then /boot on its own partition",
            Disk::Outside => "a kernel path outside the file system",
            Disk::Symlink => "a kernel symlinked to a dom0 path",
            Disk::Huge => "a kernel larger than the 128 MiB cap",
        }
    }
    /// The guest partition holding grub.cfg and the config's path inside it.
    fn grub_cfg(self) -> (&'static str, &'static str) {
        match self {
            Disk::SepBoot => ("xvda2", "/grub/grub.cfg"),
            _ => ("xvda1", "/boot/grub/grub.cfg"),
        }
    }
}

const HOSTILE: [Disk; 3] = [Disk::Outside, Disk::Symlink, Disk::Huge];

/// The command-line word of each entry of the good disks' grub.cfg, in menu order; the
/// default is the second (`set default=1`), and a guest's rewrite makes it the first.
const ENTRY_WORDS: [&str; 2] = ["rxl_entry=one", "rxl_entry=two"];
const DEFAULT_WORD: &str = ENTRY_WORDS[1];
const REWRITTEN_WORD: &str = ENTRY_WORDS[0];

/// The good disks' grub.cfg: two entries, the second the default, no wait; `prefix` is
/// where the kernel and initramfs are seen from the partition holding them (`/boot`, or
/// `` for /boot on its own partition).
fn grub_cfg(prefix: &str) -> String {
    let mut s = String::from(
        "# Written by the rxl rig: two entries, the default is the second.\n\
         set default=1\nset timeout=0\n",
    );
    for (i, word) in ENTRY_WORDS.iter().enumerate() {
        let _ = write!(
            s,
            "menuentry 'rxl entry {}' {{\n\
             \tlinux {prefix}/vmlinuz console=hvc0 rdinit=/init quiet rxl_devices {word}\n\
             \tinitrd {prefix}/initrd.img\n}}\n",
            i + 1
        );
    }
    s
}

/// A grub.cfg with one entry whose kernel is `kernel` (the hostile disks).
fn hostile_cfg(kernel: &str) -> String {
    format!(
        "set default=0\nset timeout=0\nmenuentry 'hostile' {{\n\
         \tlinux {kernel} console=hvc0 rdinit=/init\n}}\n"
    )
}

/// One partition of a disk image: the directory its ext4 file system is made from, and
/// its size in MiB.
struct Part<'a> {
    dir: &'a Path,
    mib: u64,
}

/// The partition table sfdisk writes: (start, size) of each partition in 512-byte sectors,
/// the first at 1 MiB and each following the one before, and the disk's total size in
/// bytes (1 MiB more after the last, where GPT keeps its backup table).
fn layout(sizes_mib: &[u64]) -> (Vec<(u64, u64)>, u64) {
    const MIB: u64 = 1 << 20;
    let mut at = MIB;
    let mut parts = Vec::new();
    for mib in sizes_mib {
        parts.push((at / 512, mib * MIB / 512));
        at += mib * MIB;
    }
    (parts, at + MIB)
}

/// sfdisk's input for `label` (`dos` or `gpt`) and the partitions of [`layout`]: Linux
/// partitions, the first bootable on MBR.
fn sfdisk_script(label: &str, parts: &[(u64, u64)]) -> String {
    let mut s = format!("label: {label}\n");
    for (i, (start, size)) in parts.iter().enumerate() {
        let kind = if label == "gpt" {
            "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
        } else {
            "83"
        };
        let boot = if label == "dos" && i == 0 {
            ", bootable"
        } else {
            ""
        };
        let _ = writeln!(s, "start={start}, size={size}, type={kind}{boot}");
    }
    s
}

/// Runs `cmd` (with `input` on its stdin), failing with its command line and stderr.
fn run_with_input(cmd: &mut Command, input: Option<&str>) -> anyhow::Result<()> {
    let line = format!("{cmd:?}").replace('"', "");
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {line}"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .with_context(|| format!("writing to {line}"))?;
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("running {line}"))?;
    if !out.status.success() {
        bail!(
            "{line} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Writes the disk image `out`: a `label` partition table over `parts`, each an ext4 file
/// system made from its directory with `mke2fs -d` (in `work`) and copied to its offset.
fn build_disk(out: &Path, label: &str, parts: &[Part<'_>], work: &Path) -> anyhow::Result<()> {
    let sizes: Vec<u64> = parts.iter().map(|p| p.mib).collect();
    let (table, total) = layout(&sizes);
    let mut fs_images = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let fs = work.join(format!("{}.part{}", file_stem(out), i + 1));
        let _ = std::fs::remove_file(&fs);
        run_with_input(
            Command::new("mke2fs")
                .args(["-q", "-F", "-t", "ext4", "-L"])
                .arg(format!("rxl-part{}", i + 1))
                .arg("-d")
                .arg(p.dir)
                .arg(&fs)
                .arg(format!("{}M", p.mib)),
            None,
        )?;
        fs_images.push(fs);
    }
    let _ = std::fs::remove_file(out);
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    file.set_len(total)
        .with_context(|| format!("sizing {}", out.display()))?;
    drop(file);
    run_with_input(
        Command::new("sfdisk")
            .args(["-q", "--no-reread", "--no-tell-kernel"])
            .arg(out),
        Some(&sfdisk_script(label, &table)),
    )?;
    let mut disk = std::fs::OpenOptions::new()
        .write(true)
        .open(out)
        .with_context(|| format!("opening {}", out.display()))?;
    for (fs, (start, _)) in fs_images.iter().zip(&table) {
        disk.seek(SeekFrom::Start(start * 512))
            .with_context(|| format!("seeking in {}", out.display()))?;
        let mut src =
            std::fs::File::open(fs).with_context(|| format!("opening {}", fs.display()))?;
        std::io::copy(&mut src, &mut disk)
            .with_context(|| format!("copying {} into {}", fs.display(), out.display()))?;
        std::fs::remove_file(fs).with_context(|| format!("removing {}", fs.display()))?;
    }
    Ok(())
}

fn file_stem(p: &Path) -> String {
    p.file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
}

/// Writes `text` to `path`, creating its parent directories.
fn put(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, data).with_context(|| format!("writing {}", path.display()))
}

/// MiB enough for `bytes` of files plus ext4's own needs (journal, tables).
fn fs_mib(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20) + 4
}

/// Builds every disk image of the step into `out_dir` (kernel and initramfs from `linux`).
/// Needs `sfdisk` and `mke2fs` on the host ([`DISK_TOOLS`]).
pub fn build_disks(linux: &LinuxFiles, out_dir: &Path) -> anyhow::Result<PathBuf> {
    let work = out_dir.join("work");
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let kernel = std::fs::read(&linux.kernel)
        .with_context(|| format!("reading {}", linux.kernel.display()))?;
    let initrd = std::fs::read(&linux.initrd)
        .with_context(|| format!("reading {}", linux.initrd.display()))?;
    let payload = (kernel.len() + initrd.len()) as u64;

    // One partition, everything under /boot.
    let d = work.join("mbr");
    put(&d.join("boot/vmlinuz"), &kernel)?;
    put(&d.join("boot/initrd.img"), &initrd)?;
    put(&d.join("boot/grub/grub.cfg"), grub_cfg("/boot").as_bytes())?;
    let mib = fs_mib(payload);
    build_disk(
        &out_dir.join(Disk::Mbr.file()),
        "dos",
        &[Part { dir: &d, mib }],
        &work,
    )?;

    // Root first (an empty /boot to mount on), then /boot on its own partition.
    let root = work.join("sep-root");
    put(&root.join("etc/hostname"), b"rxl-sepboot\n")?;
    std::fs::create_dir_all(root.join("boot")).context("creating the root's /boot")?;
    let boot = work.join("sep-boot");
    put(&boot.join("vmlinuz"), &kernel)?;
    put(&boot.join("initrd.img"), &initrd)?;
    put(&boot.join("grub/grub.cfg"), grub_cfg("").as_bytes())?;
    build_disk(
        &out_dir.join(Disk::SepBoot.file()),
        "gpt",
        &[Part { dir: &root, mib: 4 }, Part { dir: &boot, mib }],
        &work,
    )?;

    // The hostile ones: small file systems, each with one entry.
    let d = work.join("outside");
    put(
        &d.join("boot/grub/grub.cfg"),
        hostile_cfg("/../../../etc/passwd").as_bytes(),
    )?;
    build_disk(
        &out_dir.join(Disk::Outside.file()),
        "dos",
        &[Part { dir: &d, mib: 4 }],
        &work,
    )?;
    let d = work.join("symlink");
    put(
        &d.join("boot/grub/grub.cfg"),
        hostile_cfg("/boot/vmlinuz").as_bytes(),
    )?;
    std::os::unix::fs::symlink("/etc/xen/xl.conf", d.join("boot/vmlinuz"))
        .context("making the hostile symlink")?;
    build_disk(
        &out_dir.join(Disk::Symlink.file()),
        "dos",
        &[Part { dir: &d, mib: 4 }],
        &work,
    )?;
    let d = work.join("huge");
    put(
        &d.join("boot/grub/grub.cfg"),
        hostile_cfg("/boot/vmlinuz").as_bytes(),
    )?;
    let huge = d.join("boot/vmlinuz");
    // Sparse: mke2fs -d keeps the holes, so the file system stays small.
    std::fs::File::create(&huge)
        .and_then(|f| f.set_len((CAP_MIB + 1) << 20))
        .with_context(|| format!("making {}", huge.display()))?;
    build_disk(
        &out_dir.join(Disk::Huge.file()),
        "dos",
        &[Part { dir: &d, mib: 4 }],
        &work,
    )?;
    std::fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    Ok(out_dir.to_owned())
}

/// How a guest boots from its disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    /// `bootloader = "pygrub"`.
    Pygrub,
    /// GRUB for PVH reads the disk itself.
    Pvgrub,
    /// `bootloader = "rxl"`, rxl's built-in bootloader.
    Rxl,
}

impl Way {
    fn title(self) -> &'static str {
        match self {
            Way::Pygrub => "pygrub",
            Way::Pvgrub => "PVH GRUB",
            Way::Rxl => "rxl bootloader",
        }
    }
}

/// One boot of the step (one capture).
#[derive(Debug, Clone, Copy)]
struct Boot {
    /// Capture name, and the guest's name after `bl-`.
    label: &'static str,
    tool: &'static str,
    way: Way,
    disk: Disk,
    /// Whether the guest rewrites its default entry and is rebooted.
    reboot: bool,
}

impl Boot {
    fn name(&self) -> String {
        format!("bl-{}", self.label)
    }
    fn cfg_path(&self) -> String {
        format!("{IMG_DIR}/{}.cfg", self.label)
    }
    fn disk_path(&self) -> String {
        format!("{WORK_DIR}/{}.img", self.label)
    }
}

/// Every boot, in the order they run; a tool's boots run only when the tool is selected.
/// pygrub and rxl's bootloader boot the MBR disk and are rebooted after the guest's rewrite;
/// GRUB boots the MBR disk for rxl and the disk with /boot on its own partition for xl
/// (which proves its built-in config's second search, /grub/grub.cfg). Both bootloaders
/// in dom0 are also run by hand on both disks (the `direct-*` captures).
const BOOTS: [Boot; 5] = [
    Boot {
        label: "xl-pygrub",
        tool: "xl",
        way: Way::Pygrub,
        disk: Disk::Mbr,
        reboot: true,
    },
    Boot {
        label: "rxl-pygrub",
        tool: "rxl",
        way: Way::Pygrub,
        disk: Disk::Mbr,
        reboot: true,
    },
    Boot {
        label: "xl-pvgrub-sepboot",
        tool: "xl",
        way: Way::Pvgrub,
        disk: Disk::SepBoot,
        reboot: false,
    },
    Boot {
        label: "rxl-pvgrub",
        tool: "rxl",
        way: Way::Pvgrub,
        disk: Disk::Mbr,
        reboot: false,
    },
    Boot {
        label: "rxl-rxl",
        tool: "rxl",
        way: Way::Rxl,
        disk: Disk::Mbr,
        reboot: true,
    },
];

/// The boot lines of a guest config: how it finds its kernel.
fn boot_lines(tool: &str, way: Way) -> String {
    match (way, tool) {
        (Way::Pygrub, _) => "bootloader = \"pygrub\"\n".into(),
        (Way::Rxl, _) => "bootloader = \"rxl\"\n".into(),
        // xl 4.17 maps firmware names to /usr/lib/xen-4.17/boot/NAME.bin, which Debian
        // does not ship: xl is given GRUB's image as its kernel.
        (Way::Pvgrub, "xl") => format!("kernel = \"{PVGRUB_PATH}\"\n"),
        (Way::Pvgrub, _) => "firmware = \"pvgrub\"\n".into(),
    }
}

/// A guest config named `name` booting `way` from the disk file `disk`.
fn guest_cfg(name: &str, tool: &str, way: Way, disk: &str, restart: bool) -> String {
    format!(
        "# The guest boots from its own disk ({}).\n\
         name = \"{name}\"\ntype = \"pvh\"\nmemory = 256\nvcpus = {TIMED_LINUX_VCPUS}\n\
         {}on_reboot = \"{}\"\n\
         disk = [ \"format=raw,vdev=xvda,access=rw,target={disk}\" ]\n",
        way.title(),
        boot_lines(tool, way),
        if restart { "restart" } else { "destroy" }
    )
}

/// One hostile case: a tool, a bootloader, a disk.
#[derive(Debug, Clone)]
struct HostileCase {
    tool: &'static str,
    way: Way,
    disk: Disk,
}

impl HostileCase {
    fn name(&self) -> String {
        let way = match self.way {
            Way::Pygrub => "pygrub",
            Way::Rxl => "rxl",
            Way::Pvgrub => "pvgrub",
        };
        format!("bad-{}-{}-{way}", self.disk.label(), self.tool)
    }
    fn cfg_path(&self) -> String {
        format!("{IMG_DIR}/{}.cfg", self.name())
    }
    /// The word the error must hold (case-insensitive): the bootloader's name.
    fn names(&self) -> &'static str {
        match self.way {
            Way::Pygrub => "pygrub",
            _ => "bootloader",
        }
    }
}

fn hostile_cases(tools: &[&str]) -> Vec<HostileCase> {
    let mut v = Vec::new();
    for disk in HOSTILE {
        for (tool, way) in [("xl", Way::Pygrub), ("rxl", Way::Pygrub), ("rxl", Way::Rxl)] {
            if tools.contains(&tool) {
                v.push(HostileCase { tool, way, disk });
            }
        }
    }
    v
}

fn hostile_disk_path(d: Disk) -> String {
    format!("{WORK_DIR}/{}", d.file())
}

/// The boots of `tools`, in order.
fn boots(tools: &[&str]) -> Vec<Boot> {
    BOOTS
        .iter()
        .filter(|b| tools.contains(&b.tool))
        .copied()
        .collect()
}

fn files(disks: &Path, grub: Option<&Path>, tools: &[&str]) -> Vec<StepFile> {
    let mut files: Vec<StepFile> = [Disk::Mbr, Disk::SepBoot]
        .into_iter()
        .chain(HOSTILE)
        .map(|d| StepFile::Host {
            path: format!("{IMG_DIR}/{}", d.file()),
            host: disks.join(d.file()),
        })
        .collect();
    if let Some(g) = grub {
        files.push(StepFile::Host {
            path: PVGRUB_PATH.into(),
            host: g.to_owned(),
        });
    }
    for b in boots(tools) {
        files.push(StepFile::Text {
            path: b.cfg_path(),
            text: guest_cfg(&b.name(), b.tool, b.way, &b.disk_path(), b.reboot),
        });
    }
    for c in hostile_cases(tools) {
        files.push(StepFile::Text {
            path: c.cfg_path(),
            text: guest_cfg(&c.name(), c.tool, c.way, &hostile_disk_path(c.disk), false),
        });
    }
    if tools.contains(&"xl") {
        files.push(StepFile::Text {
            path: format!("{IMG_DIR}/xl-firmware.cfg"),
            text: "# rxl's name for GRUB for PVH, given to xl.\n\
                   name = \"bl-xl-firmware\"\ntype = \"pvh\"\nmemory = 128\n\
                   firmware = \"pvgrub\"\non_reboot = \"destroy\"\n"
                .into(),
        });
    }
    files
}

fn boot_cap(b: &Boot) -> CaptureSpec {
    let (part, cfg_file) = b.disk.grub_cfg();
    let mut c = script_cap(
        b.label,
        // Two boots (with the retry or the reboot), the creates and the console waits.
        2 * BOOT_S + 200,
        include_str!("../../scripts/steps/bootloader/boot.sh"),
        &[
            ("TOOL", b.tool.into()),
            ("NAME", b.name()),
            ("CFG", b.cfg_path()),
            ("IMAGE", format!("{IMG_DIR}/{}", b.disk.file())),
            ("DISK", b.disk_path()),
            ("BOOT_S", BOOT_S.to_string()),
            ("LINUX_INIT_LINE", LINUX_INIT_LINE.into()),
            ("REBOOT", if b.reboot { "yes" } else { "no" }.into()),
            ("PART", part.into()),
            ("CFG_FILE", cfg_file.into()),
        ],
    );
    // A note when the guest is created and when it reaches /init (each phase < 220 s).
    c.quiet_s = Some(BOOT_S + 70);
    c
}

/// The step (needs the Linux guest and the disks built by [`build_disks`] in `disks`);
/// `grub` is GRUB for PVH when the package has it (its boots are left out otherwise); with
/// `doc`, a passed step writes its times into that file (docs/benchmarks.md).
pub fn bootloader_step(
    disks: &Path,
    grub: Option<&Path>,
    tools: &[&'static str],
    doc: Option<PathBuf>,
) -> Step {
    let mut bootloaders = vec!["pygrub:/usr/lib/xen-4.17/bin/pygrub"];
    if tools.contains(&"rxl") {
        bootloaders.push("rxl:rxl,bootloader");
    }
    let mut captures = vec![
        script_cap(
            "direct-mbr",
            300,
            include_str!("../../scripts/steps/bootloader/direct.sh"),
            &[
                ("IMAGE", format!("{IMG_DIR}/{}", Disk::Mbr.file())),
                ("BOOTLOADERS", bootloaders.join(" ")),
            ],
        ),
        script_cap(
            "direct-sepboot",
            300,
            include_str!("../../scripts/steps/bootloader/direct.sh"),
            &[
                ("IMAGE", format!("{IMG_DIR}/{}", Disk::SepBoot.file())),
                ("BOOTLOADERS", bootloaders.join(" ")),
            ],
        ),
    ];
    let boots: Vec<Boot> = boots(tools)
        .into_iter()
        .filter(|b| b.way != Way::Pvgrub || grub.is_some())
        .collect();
    captures.extend(boots.iter().map(boot_cap));
    let cases = hostile_cases(tools);
    let mut hostile = script_cap(
        "hostile",
        // Each create is bounded by 150 s; they usually fail in seconds.
        (cases.len() as u32 * 160).clamp(200, 1500),
        include_str!("../../scripts/steps/bootloader/hostile.sh"),
        &[
            (
                "CASES",
                cases
                    .iter()
                    .map(|c| format!("{}:{}:{}", c.tool, c.name(), c.cfg_path()))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            (
                "IMAGES",
                HOSTILE
                    .iter()
                    .map(|d| format!("{IMG_DIR}/{}:{}", d.file(), hostile_disk_path(*d)))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        ],
    );
    hostile.quiet_s = Some(220);
    captures.push(hostile);
    if tools.contains(&"xl") && grub.is_some() {
        captures.push(script_cap(
            "xl-firmware",
            90,
            include_str!("../../scripts/steps/bootloader/xl-firmware.sh"),
            &[
                ("NAME", "bl-xl-firmware".into()),
                ("CFG", format!("{IMG_DIR}/xl-firmware.cfg")),
            ],
        ));
    }
    let check_boots = boots.clone();
    let check_cases = cases.clone();
    let check_tools = tools.to_vec();
    Step {
        name: "bootloader",
        about: "guests boot from their own disk (grub.cfg's default is its second entry): \
                pygrub (xl, rxl), PVH GRUB (xl, rxl), rxl's bootloader; a guest-side \
                rewrite of the default followed after reboot; hostile disks refused with \
                nothing left; create and create-to-/init times",
        captures,
        files: files(disks, grub, tools),
        check: Box::new(move |o| check_bootloader(o, &check_tools, &check_boots, &check_cases)),
        publish: Some(Box::new(move |o| publish_times(o, &boots, doc.as_deref()))),
    }
}

/// The value of the last `key=value` line of a capture.
fn value<'a>(c: &'a Capture, key: &str) -> Option<&'a str> {
    c.lines
        .iter()
        .rev()
        .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
}

/// Whether the command line `cmdline` holds the word `word`.
fn has_word(cmdline: &str, word: &str) -> bool {
    cmdline.split_whitespace().any(|w| w == word)
}

fn check_boot(b: &Boot, c: &Capture, p: &mut Vec<String>, notes: &mut Vec<String>) {
    let who = format!("{} ({}, {})", b.tool, b.way.title(), b.disk.label());
    if c.lines.iter().any(|l| l.starts_with("RETRY")) {
        notes.push(format!("{who}: the first boot died before /init, retried"));
    }
    if number(c, "boot") != Some(0) {
        let console = section(c, "console");
        p.push(format!(
            "{who}: no /init (create_rc={:?}, boot={:?}): {}",
            value(c, "create_rc"),
            value(c, "boot"),
            excerpt(
                &c.lines
                    .iter()
                    .filter(|l| !console.contains(&l.as_str()))
                    .take(12)
                    .cloned()
                    .collect::<Vec<_>>()
            )
        ));
        if !console.is_empty() {
            p.push(format!(
                "{who}: its console ended with: {}",
                console.join(" | ")
            ));
        }
        return;
    }
    let cmdline = value(c, "cmdline").unwrap_or("");
    if !has_word(cmdline, DEFAULT_WORD) {
        p.push(format!(
            "{who}: the guest's /proc/cmdline is {cmdline:?}, without the default entry's \
             {DEFAULT_WORD}"
        ));
    }
    if b.reboot {
        for (key, what) in [
            ("edit_rc", "the guest rewriting its grub.cfg"),
            ("reboot_rc", "the reboot command"),
            ("reboot_boot", "the reboot reaching /init"),
        ] {
            if number(c, key) != Some(0) {
                p.push(format!("{who}: {what}: {key}={:?}", value(c, key)));
            }
        }
        let after = value(c, "cmdline_after").unwrap_or("");
        if number(c, "reboot_boot") == Some(0) && !has_word(after, REWRITTEN_WORD) {
            p.push(format!(
                "{who}: after the guest made the first entry the default and rebooted, its \
                 /proc/cmdline is {after:?}, without {REWRITTEN_WORD}"
            ));
        }
        if value(c, "domid_after").is_some() && value(c, "domid_after") == value(c, "domid") {
            p.push(format!("{who}: the reboot kept the domain id"));
        }
    }
    if number(c, "destroy_rc") != Some(0) {
        p.push(format!(
            "{who}: {} destroy: destroy_rc={:?}",
            b.tool,
            value(c, "destroy_rc")
        ));
    }
    if value(c, "state") != Some("gone") {
        p.push(format!(
            "{who}: after destroy the guest is {:?}",
            value(c, "state")
        ));
    }
    for l in c.lines.iter().filter(|l| l.starts_with("leftover: ")) {
        p.push(format!("{who}: after destroy, {l}"));
    }
}

fn check_hostile(c: &Capture, cases: &[HostileCase], p: &mut Vec<String>, notes: &mut Vec<String>) {
    for case in cases {
        let who = format!(
            "{} ({}) with {}",
            case.tool,
            case.way.title(),
            case.disk.about()
        );
        let lines = section(c, &format!("case {}", case.name()));
        if lines.is_empty() {
            p.push(format!("{who}: no output"));
            continue;
        }
        let rc = lines
            .iter()
            .find_map(|l| field(l, "hostile_rc"))
            .and_then(|v| v.parse::<i64>().ok());
        let output: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| {
                field(l, "hostile_rc").is_none()
                    && field(l, "hostile_ms").is_none()
                    && !l.starts_with("leftover: ")
                    && !l.starts_with("log ")
            })
            .collect();
        let left: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| l.starts_with("leftover: "))
            .collect();
        if case.tool == "xl" {
            notes.push(format!(
                "xl with {}: create exited {rc:?}{}; {}",
                case.disk.about(),
                if left.is_empty() {
                    ", nothing left".to_owned()
                } else {
                    format!(", left {}", left.join("; "))
                },
                output
                    .iter()
                    .find(|l| l.contains("error"))
                    .or(output.last())
                    .map_or("", |l| l.trim())
            ));
            continue;
        }
        if matches!(rc, Some(0) | None) {
            p.push(format!("{who}: create did not fail (rc {rc:?})"));
        }
        // 124 is dom0's timeout: a bootloader that hung past every limit.
        if rc == Some(124) {
            p.push(format!("{who}: create was killed after 150 s"));
        }
        let text = output.join("\n").to_lowercase();
        if !text.contains(case.names()) {
            p.push(format!(
                "{who}: the error does not name the {}: {}",
                case.names(),
                output.join(" | ")
            ));
        }
        for l in left {
            p.push(format!("{who}: {l}"));
        }
    }
}

fn check_direct(c: &Capture, disk: Disk, tools: &[&str], p: &mut Vec<String>) {
    let mut labels = vec!["pygrub"];
    if tools.contains(&"rxl") {
        labels.push("rxl");
    }
    for label in labels {
        let lines = section(c, &format!("direct {label}"));
        let who = format!("{label} run by hand on {}", disk.about());
        let rc = lines.iter().find_map(|l| field(l, "direct_rc"));
        if rc != Some("0") {
            p.push(format!("{who}: exit status {rc:?}: {}", lines.join(" | ")));
            continue;
        }
        let args = lines
            .iter()
            .find_map(|l| l.strip_prefix("item args "))
            .unwrap_or("");
        if !has_word(args, DEFAULT_WORD) {
            p.push(format!(
                "{who}: chose args {args:?}, not the default entry's ({DEFAULT_WORD})"
            ));
        }
        for item in ["item kernel ", "item ramdisk "] {
            if !lines.iter().any(|l| l.starts_with(item)) {
                p.push(format!("{who}: no {} in its output", item.trim()));
            }
        }
    }
}

fn check_bootloader(
    o: &Outcome<'_>,
    tools: &[&str],
    boots: &[Boot],
    cases: &[HostileCase],
) -> Result<String, Vec<String>> {
    let mut p = Vec::new();
    let mut notes = Vec::new();
    for (cap, disk) in [("direct-mbr", Disk::Mbr), ("direct-sepboot", Disk::SepBoot)] {
        match o.capture(cap) {
            Ok(c) => check_direct(c, disk, tools, &mut p),
            Err(e) => p.push(e),
        }
    }
    for b in boots {
        match o.capture(b.label) {
            Ok(c) => check_boot(b, c, &mut p, &mut notes),
            Err(e) => p.push(e),
        }
    }
    match o.capture("hostile") {
        Ok(c) => check_hostile(c, cases, &mut p, &mut notes),
        Err(e) => p.push(e),
    }
    if let Ok(c) = o.capture("xl-firmware") {
        notes.push(format!(
            "xl with firmware = \"pvgrub\": create exited {}; {}",
            value(c, "xl_firmware_rc").unwrap_or("?"),
            c.lines
                .iter()
                .filter(|l| !l.starts_with("xl_firmware_rc="))
                .map(|l| l.trim())
                .collect::<Vec<_>>()
                .join(" | ")
        ));
    }
    if p.is_empty() {
        let mut s = format!(
            "{} boots reached /init with the default entry's command line; {} hostile creates \
             refused",
            boots.len(),
            cases.iter().filter(|c| c.tool != "xl").count()
        );
        if !notes.is_empty() {
            s.push_str(" (");
            s.push_str(&notes.join("; "));
            s.push(')');
        }
        Ok(s)
    } else {
        p.extend(notes);
        Err(p)
    }
}

/// The heading of the step's section of docs/benchmarks.md.
pub const TIMES_HEADING: &str = "## Real Xen: booting from the guest's disk";

/// The times table: one row per boot (create, create to /init, reboot to /init) and one
/// per bootloader run by hand.
fn times_table(o: &Outcome<'_>, boots: &[Boot]) -> String {
    let mut s = String::from(
        "| way | tool | disk | create | create to /init | reboot to /init |\n\
         |---|---|---|---|---|---|\n",
    );
    for b in boots {
        let Ok(c) = o.capture(b.label) else {
            continue;
        };
        let reboot = if b.reboot {
            secs(number(c, "reboot_init_ms"))
        } else {
            "-".into()
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {reboot} |",
            b.way.title(),
            b.tool,
            b.disk.about(),
            secs(number(c, "create_ms")),
            secs(number(c, "init_ms")),
        );
    }
    for (cap, disk) in [("direct-mbr", Disk::Mbr), ("direct-sepboot", Disk::SepBoot)] {
        let Ok(c) = o.capture(cap) else {
            continue;
        };
        for label in ["pygrub", "rxl"] {
            let lines = section(c, &format!("direct {label}"));
            let ms = lines
                .iter()
                .find_map(|l| field(l, "direct_ms"))
                .and_then(|v| v.parse().ok());
            if ms.is_some() {
                let _ = writeln!(
                    s,
                    "| {} alone (no domain) | - | {} | {} | - | - |",
                    if label == "rxl" {
                        "rxl bootloader"
                    } else {
                        "pygrub"
                    },
                    disk.about(),
                    secs(ms)
                );
            }
        }
    }
    s
}

fn publish_times(o: &Outcome<'_>, boots: &[Boot], doc: Option<&Path>) -> Result<String, String> {
    let table = times_table(o, boots);
    if let Some(doc) = doc {
        let old = std::fs::read_to_string(doc).unwrap_or_default();
        let section = format!(
            "{TIMES_HEADING}\n\n\
             Written by `cargo xtask e2e --publish` (step `bootloader`) on {}: real Xen 4.17 \
             under QEMU TCG, 2 cores, all in the same boot, one run each (not medians). The \
             guest is Debian's kernel as a PVH guest (256 MiB, {TIMED_LINUX_VCPUS} vCPU) with \
             one disk image holding its kernel, initramfs and grub.cfg. `create` is until the \
             command returns (the bootloader's run included); `create to /init` until the \
             guest's /init prints its line (for PVH GRUB, GRUB reads the disk inside the \
             guest, after create); `reboot to /init` from `reboot` to the new domain's /init, \
             the bootloader running again. The last rows run a bootloader by hand in dom0 on \
             the image file, with pygrub's command line.\n\n{table}",
            today()
        );
        std::fs::write(doc, replace_section(&old, TIMES_HEADING, &section))
            .map_err(|e| format!("writing {}: {e}", doc.display()))?;
    }
    Ok(format!(
        "== bootloader: booting from the guest's disk (one run each, QEMU TCG, 2 cores) ==\n{table}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_entry_is_the_second_and_each_entry_has_its_word() {
        let cfg = grub_cfg("/boot");
        assert!(cfg.contains("\nset default=1\n"), "{cfg}");
        let entries: Vec<&str> = cfg.split("menuentry ").skip(1).collect();
        assert_eq!(entries.len(), 2);
        for (e, word) in entries.iter().zip(ENTRY_WORDS) {
            assert!(e.contains("linux /boot/vmlinuz "), "{e}");
            assert!(e.contains(&format!(" {word}\n")), "{e}");
            assert!(e.contains("initrd /boot/initrd.img"), "{e}");
        }
        assert_eq!(DEFAULT_WORD, ENTRY_WORDS[1]);
        // /boot on its own partition: paths from that partition's root.
        assert!(grub_cfg("").contains("\tlinux /vmlinuz console=hvc0"));
    }

    #[test]
    fn partitions_follow_each_other_from_one_mib() {
        let (parts, total) = layout(&[8, 20]);
        assert_eq!(parts, [(2048, 16384), (18432, 40960)]);
        assert_eq!(total, (1 + 8 + 20 + 1) << 20);
        let s = sfdisk_script("dos", &parts);
        assert_eq!(
            s,
            "label: dos\nstart=2048, size=16384, type=83, bootable\n\
             start=18432, size=40960, type=83\n"
        );
        assert!(sfdisk_script("gpt", &parts[..1])
            .ends_with("type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n"));
    }

    #[test]
    fn configs_boot_each_way() {
        let c = guest_cfg("g", "xl", Way::Pygrub, "/tmp/d.img", true);
        assert!(c.contains("bootloader = \"pygrub\"\n") && c.contains("on_reboot = \"restart\""));
        assert!(c.contains("target=/tmp/d.img\""), "{c}");
        assert!(!c.contains("kernel") && !c.contains("cmdline"), "{c}");
        assert!(guest_cfg("g", "rxl", Way::Rxl, "d", false).contains("bootloader = \"rxl\"\n"));
        assert!(guest_cfg("g", "rxl", Way::Pvgrub, "d", false).contains("firmware = \"pvgrub\""));
        assert!(guest_cfg("g", "xl", Way::Pvgrub, "d", false)
            .contains(&format!("kernel = \"{PVGRUB_PATH}\"")));
    }

    #[test]
    fn tools_are_chosen_by_name() {
        assert_eq!(select_tools("rxl, xl").unwrap(), ["xl", "rxl"]);
        assert_eq!(select_tools("xl").unwrap(), ["xl"]);
        assert!(select_tools("").is_err());
        assert!(select_tools("xl,nope").unwrap_err().contains("nope"));
        // xl alone: no rxl boot, no rxl hostile case.
        let xl = select_tools("xl").unwrap();
        assert!(boots(&xl).iter().all(|b| b.tool == "xl"));
        assert!(hostile_cases(&xl).iter().all(|c| c.tool == "xl"));
        assert_eq!(
            hostile_cases(&select_tools(DEFAULT_TOOLS).unwrap()).len(),
            9
        );
    }

    fn capture(name: &str, text: &str) -> String {
        format!("@@RXL-BEGIN bootloader/{name}\n{text}@@RXL-END bootloader/{name} rc=0\n")
    }

    fn direct(label: &str, args: &str) -> String {
        format!(
            "--- direct {label}\ndirect_ms=900\ndirect_rc=0\nitem kernel /tmp/k\n\
             item ramdisk /tmp/r\nitem args {args}\n"
        )
    }

    /// The captures of a passing run of xl alone, with `boot_cmdline` as the guests' cmdline.
    fn xl_run(boot_cmdline: &str, after: &str, hostile_rc: u32) -> String {
        let args = "console=hvc0 rdinit=/init rxl_devices rxl_entry=two";
        let mut t = String::from("@@RXL-READY\n");
        t += &capture("direct-mbr", &(direct("pygrub", args) + "--- end\n"));
        t += &capture("direct-sepboot", &(direct("pygrub", args) + "--- end\n"));
        for b in boots(&["xl"]) {
            let mut body = format!(
                "create_rc=0\ncreate_ms=9000\ninit_ms=30000\nboot=0\ndomid=3\n\
                 cmdline={boot_cmdline}\n"
            );
            if b.reboot {
                body += &format!(
                    "--- edit\nedit_rc=0\nreboot_rc=0\nreboot_init_ms=25000\nreboot_boot=0\n\
                     domid_after=4\ncmdline_after={after}\n"
                );
            }
            body += "destroy_rc=0\nstate=gone\n--- end\n";
            t += &capture(b.label, &body);
        }
        let mut h = String::new();
        for c in hostile_cases(&["xl"]) {
            h += &format!(
                "--- case {}\nhostile_ms=2000\nError: pygrub failed\nhostile_rc={hostile_rc}\n",
                c.name()
            );
        }
        t += &capture("hostile", &(h + "--- end\n"));
        t
    }

    fn judge(text: &str, tools: &[&'static str]) -> Result<String, Vec<String>> {
        let report = crate::markers::parse(text);
        let o = Outcome {
            step: "bootloader",
            report: &report,
            console: "",
        };
        let b: Vec<Boot> = boots(tools);
        check_bootloader(&o, tools, &b, &hostile_cases(tools))
    }

    #[test]
    fn the_check_wants_the_default_entry_before_and_the_new_one_after_reboot() {
        let good = "BOOT_IMAGE=/boot/vmlinuz console=hvc0 rdinit=/init rxl_devices rxl_entry=two";
        let after = good.replace("two", "one");
        let ok = judge(&xl_run(good, &after, 1), &["xl"]).unwrap();
        assert!(ok.contains("2 boots"), "{ok}");
        // xl's hostile outcomes are recorded, not judged.
        assert!(ok.contains("xl with a kernel larger than"), "{ok}");
        assert!(judge(&xl_run(good, &after, 0), &["xl"]).is_ok());

        let err = judge(&xl_run(&after, &after, 1), &["xl"]).unwrap_err();
        assert!(
            err.iter()
                .any(|e| e.contains("without the default entry's")),
            "{err:?}"
        );
        let err = judge(&xl_run(good, good, 1), &["xl"]).unwrap_err();
        assert!(
            err.iter()
                .any(|e| e.contains("after the guest made the first entry")),
            "{err:?}"
        );
        // rxl words in a cmdline that only contains them inside another word do not count.
        assert!(!has_word("rxl_entry=two2", DEFAULT_WORD));
    }

    #[test]
    fn rxl_hostile_creates_must_fail_name_the_bootloader_and_leave_nothing() {
        let case = |tool: &'static str, way: Way| HostileCase {
            tool,
            way,
            disk: Disk::Huge,
        };
        let run = |body: &str, c: &HostileCase| {
            let text = format!(
                "@@RXL-BEGIN bootloader/hostile\n--- case {}\n{body}--- end\n\
                 @@RXL-END bootloader/hostile rc=0\n",
                c.name()
            );
            let report = crate::markers::parse(&text);
            let cap = report.capture("bootloader/hostile").unwrap().clone();
            let (mut p, mut n) = (Vec::new(), Vec::new());
            check_hostile(&cap, std::slice::from_ref(c), &mut p, &mut n);
            (p, n)
        };
        let pyg = case("rxl", Way::Pygrub);
        let (p, _) = run(
            "rxl: bootloader pygrub: kernel too large\nhostile_rc=1\n",
            &pyg,
        );
        assert!(p.is_empty(), "{p:?}");
        let (p, _) = run("rxl: could not boot\nhostile_rc=1\n", &pyg);
        assert!(
            p.iter().any(|e| e.contains("does not name the pygrub")),
            "{p:?}"
        );
        let own = case("rxl", Way::Rxl);
        let (p, _) = run(
            "rxl: bootloader: /boot/vmlinuz is larger than 128 MiB\nhostile_rc=1\n\
             leftover: xenstore /libxl/5\n",
            &own,
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("/libxl/5"), "{p:?}");
        let (p, _) = run("booted\nhostile_rc=0\n", &own);
        assert!(p.iter().any(|e| e.contains("did not fail")), "{p:?}");
        // xl: a note, whatever happened.
        let (p, n) = run(
            "hostile_rc=0\nleftover: loop /dev/loop0\n",
            &case("xl", Way::Pygrub),
        );
        assert!(
            p.is_empty() && n[0].contains("left leftover: loop"),
            "{p:?} {n:?}"
        );
    }

    #[test]
    fn the_boot_script_reports_what_the_check_reads() {
        use crate::steps::fake_dom0::{fake_dom0, run_script};
        // A tool that creates, reboots (a new domid) and destroys; a guest whose cmdline
        // follows its grub.cfg's default once it has been rewritten and rebooted.
        let dir = fake_dom0(
            "case \"$1\" in\n\
             domid) cat \"$d/domid\" 2>/dev/null || echo 5 ;;\n\
             reboot) echo 6 >\"$d/domid\" ;;\n\
             esac\nexit 0\n",
            "wait_console() { return 0; }\nconsole_count() { echo 0; }\n\
             dom_state() { echo gone; }\nnote() { :; }\n\
             guest_run() { case \"$3\" in\n\
               *cmdline*) if [ -f @DIR@/domid ]; then echo 'quiet rxl_entry=one'; \
                          else echo 'quiet rxl_entry=two'; fi ;;\n\
               *) echo 'set default=0' ;;\n\
             esac; }\n",
        );
        let d = dir.path();
        std::fs::write(d.join("mbr.img"), b"disk").unwrap();
        let b = BOOTS[0];
        assert!(b.reboot);
        let script = boot_cap(&b)
            .script
            .replace(
                &format!("IMAGE='{IMG_DIR}/mbr.img'"),
                &format!("IMAGE='{}/mbr.img'", d.display()),
            )
            .replace(
                &format!("DISK='{}'", b.disk_path()),
                &format!("DISK='{}/copy/disk.img'", d.display()),
            );
        let lines = run_script(d, &script, &[]);
        let text = format!(
            "@@RXL-BEGIN bootloader/{0}\n{1}\n@@RXL-END bootloader/{0} rc=0\n",
            b.label,
            lines.join("\n")
        );
        let report = crate::markers::parse(&text);
        let c = report.capture(&format!("bootloader/{}", b.label)).unwrap();
        let (mut p, mut n) = (Vec::new(), Vec::new());
        check_boot(&b, c, &mut p, &mut n);
        assert!(p.is_empty(), "{p:?} in {lines:?}");
        assert_eq!(value(c, "domid"), Some("5"));
        assert_eq!(value(c, "domid_after"), Some("6"));
        // The guest's copy of the disk is removed at the end.
        assert!(!d.join("copy/disk.img").exists());
    }

    #[test]
    fn the_times_table_has_a_row_per_boot_and_per_bootloader_run_by_hand() {
        let good = "rxl_entry=two";
        let text = xl_run(good, "rxl_entry=one", 1);
        let report = crate::markers::parse(&text);
        let o = Outcome {
            step: "bootloader",
            report: &report,
            console: "",
        };
        let table = times_table(&o, &boots(&["xl"]));
        assert!(
            table
                .contains("| pygrub | xl | MBR, one ext4 partition | 9.00 s | 30.00 s | 25.00 s |"),
            "{table}"
        );
        assert!(
            table.contains("| pygrub alone (no domain) | - |"),
            "{table}"
        );
        assert_eq!(table.lines().count(), 2 + 2 + 2, "{table}");
    }
}
