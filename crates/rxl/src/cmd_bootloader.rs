//! `rxl bootloader`: rxl's built-in bootloader, with pygrub's command line and output.
//!
//! While still root it opens everything it will use: the disk (read-only), the output
//! file, and the kernel and ramdisk files it creates (`O_CREAT|O_EXCL`, mode 0600) in the
//! output directory. Then, before reading a byte of the disk, it drops root: no
//! supplementary groups, the `--runas` uid (default nobody) as real, effective and saved
//! uid, its group likewise, no_new_privs, resource limits (file size at the image cap, no
//! core dumps, no new processes, few descriptors, a bounded address space), and it checks
//! that its effective and permitted capability sets are empty. Only then does
//! `bootmenu::choose` read the disk; the choice is written in pygrub's `simple0` format.
//!
//! Files it made that stay empty (the ramdisk when the entry has none, both on a failure)
//! cannot be removed once root is dropped: the caller removes the output directory (as
//! rxl's create does with its private directory).

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use nix::fcntl::OFlag;
use nix::sys::resource::{setrlimit, Resource};
use nix::unistd::{Gid, Uid};

use crate::cli::BootloaderArgs;

/// The address space the bootloader may use after the drop: both images at their cap, the
/// file system reader's caches, and the program itself.
const MAX_ADDRESS_SPACE: u64 = 1 << 30;
/// Descriptors it may hold (it has about six open when it drops root).
const MAX_FILES: u64 = 32;

/// `rxl bootloader`.
pub fn run(args: &BootloaderArgs) -> anyhow::Result<ExitCode> {
    if args.output_format != "simple0" {
        bail!(
            "--output-format={}: rxl's bootloader writes only simple0",
            args.output_format
        );
    }
    let dir = &args.output_directory;
    if !std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        bail!("--output-directory={}: not a directory", dir.display());
    }
    let limits = bootmenu::Limits::default();
    // Everything is opened while root.
    let disk = File::open(&args.disk)
        .with_context(|| format!("cannot open the disk {}", args.disk.display()))?;
    let mut output = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(OFlag::O_NOFOLLOW.bits())
        .open(&args.output)
        .with_context(|| format!("cannot open the output file {}", args.output.display()))?;
    let uid = args.runas.unwrap_or_else(toolstack::bootloader::nobody_uid);
    if args.list_entries {
        drop_privileges(uid, limits.max_config)?;
        return list_entries(disk, &mut output, args, &limits);
    }
    let (kernel_path, mut kernel_file) = create_in(dir, "boot_kernel")?;
    let (ramdisk_path, mut ramdisk_file) = create_in(dir, "boot_ramdisk")?;

    drop_privileges(uid, limits.max_kernel.max(limits.max_ramdisk))?;

    let hints = bootmenu::Hints {
        kernel: args.kernel.clone(),
        ramdisk: args.ramdisk.clone(),
        args: args.args.clone(),
        entry: args.entry.clone(),
    };
    let choice = bootmenu::choose(disk, &hints, &limits)
        .with_context(|| format!("cannot boot from {}", args.disk.display()))?;
    if !args.quiet {
        eprintln!(
            "rxl bootloader: {} from {}",
            choice.title.as_deref().unwrap_or(&choice.kernel_path),
            choice.source
        );
    }
    kernel_file
        .write_all(&choice.kernel)
        .with_context(|| format!("cannot write {}", kernel_path.display()))?;
    let mut items = format!("kernel {}\0", kernel_path.display());
    if let Some(r) = &choice.ramdisk {
        ramdisk_file
            .write_all(r)
            .with_context(|| format!("cannot write {}", ramdisk_path.display()))?;
        items.push_str(&format!("ramdisk {}\0", ramdisk_path.display()));
    }
    if !choice.args.is_empty() {
        items.push_str(&format!("args {}\0", choice.args));
    }
    items.push('\0');
    output
        .write_all(items.as_bytes())
        .with_context(|| format!("cannot write the output file {}", args.output.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// `--list-entries`, after the drop: the menu `choose` picks from, as `default N` and one
/// `title T` per entry (control characters replaced; none for a disk that boots without
/// a menu).
fn list_entries(
    disk: File,
    output: &mut File,
    args: &BootloaderArgs,
    limits: &bootmenu::Limits,
) -> anyhow::Result<ExitCode> {
    let menu = bootmenu::menu(disk, limits)
        .with_context(|| format!("cannot read the boot menu of {}", args.disk.display()))?;
    let mut items = String::new();
    if let Some(m) = menu {
        items.push_str(&format!("default {}\0", m.default));
        for t in &m.titles {
            let safe: String = t
                .chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect();
            items.push_str(&format!("title {safe}\0"));
        }
    }
    items.push('\0');
    output
        .write_all(items.as_bytes())
        .with_context(|| format!("cannot write the output file {}", args.output.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// A new file `PREFIX.N` in `dir`, made here (never an existing file or link).
fn create_in(dir: &Path, prefix: &str) -> anyhow::Result<(PathBuf, File)> {
    let pid = std::process::id();
    let mut last = None;
    for n in 0..64 {
        let path = dir.join(format!("{prefix}.{pid}.{n}"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits())
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
        }
    }
    Err(last.map_or_else(|| anyhow::anyhow!("no free name"), Into::into))
        .with_context(|| format!("cannot create a {prefix} file in {}", dir.display()))
}

/// Become `uid` for good (from root), with no capabilities and bounded resources; fails
/// rather than go on with any privilege left.
pub fn drop_privileges(uid: u32, max_file: u64) -> anyhow::Result<()> {
    if uid == 0 {
        bail!("--runas=0: the bootloader does not read a guest's disk as root");
    }
    let target = Uid::from_raw(uid);
    if Uid::effective().is_root() {
        let gid = nix::unistd::User::from_uid(target)
            .ok()
            .flatten()
            .map_or(Gid::from_raw(uid), |u| u.gid);
        nix::unistd::setgroups(&[]).context("setgroups([])")?;
        nix::unistd::setresgid(gid, gid, gid).with_context(|| format!("setresgid({gid})"))?;
        nix::unistd::setresuid(target, target, target)
            .with_context(|| format!("setresuid({uid})"))?;
    } else if Uid::effective() != target || Uid::current() != target {
        bail!(
            "--runas={uid}: rxl bootloader must start as root (or as uid {uid}) to run as \
             uid {uid}"
        );
    }
    nix::sys::prctl::set_no_new_privs().context("prctl(PR_SET_NO_NEW_PRIVS)")?;
    for (res, value, name) in [
        (Resource::RLIMIT_FSIZE, max_file, "RLIMIT_FSIZE"),
        (Resource::RLIMIT_CORE, 0, "RLIMIT_CORE"),
        (Resource::RLIMIT_NPROC, 0, "RLIMIT_NPROC"),
        (Resource::RLIMIT_NOFILE, MAX_FILES, "RLIMIT_NOFILE"),
        (Resource::RLIMIT_AS, MAX_ADDRESS_SPACE, "RLIMIT_AS"),
    ] {
        setrlimit(res, value, value).with_context(|| format!("setrlimit({name}, {value})"))?;
    }
    let status = std::fs::read_to_string("/proc/thread-self/status")
        .context("cannot read /proc/thread-self/status to check the capabilities")?;
    for set in ["CapEff", "CapPrm"] {
        let value = status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{set}:")))
            .map(str::trim)
            .with_context(|| format!("/proc/thread-self/status has no {set}"))?;
        if u64::from_str_radix(value, 16) != Ok(0) {
            bail!("{set} is {value} after dropping root: refusing to read the disk");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Set in the child process the test below starts (the test binary itself, running only
    /// this test): the file it must fail to open after dropping root.
    const CHILD_ENV: &str = "RXL_TEST_DROP_PRIVILEGES_CHILD";

    /// After `drop_privileges` the process cannot open a file only root may read, has no
    /// capabilities, runs as the uid with no_new_privs and the limits set. CI runs as root;
    /// as another user the drop must refuse.
    #[test]
    fn after_the_drop_a_root_only_file_cannot_be_opened() {
        if let Some(secret) = std::env::var_os(CHILD_ENV) {
            drop_privileges(65534, 1 << 20).expect("drop");
            let denied = File::open(&secret).expect_err("opened a root-only file");
            assert_eq!(denied.kind(), std::io::ErrorKind::PermissionDenied);
            let status = std::fs::read_to_string("/proc/thread-self/status").expect("status");
            assert!(
                status.contains("\nUid:\t65534\t65534\t65534\t65534\n"),
                "{status}"
            );
            let groups = status.lines().find_map(|l| l.strip_prefix("Groups:"));
            assert_eq!(groups.map(str::trim), Some(""), "{status}");
            assert!(status.contains("\nNoNewPrivs:\t1\n"), "{status}");
            assert!(status.contains("\nCapEff:\t0000000000000000\n"), "{status}");
            return;
        }
        if !Uid::effective().is_root() {
            let e = drop_privileges(65534, 1 << 20).expect_err("not root");
            assert!(e.to_string().contains("must start as root"), "{e}");
            return;
        }
        let dir = tempfile::tempdir().expect("tmp");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"root only").expect("write");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "cmd_bootloader::tests::after_the_drop_a_root_only_file_cannot_be_opened",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &secret)
            .output()
            .expect("run the child");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "{text}");
        // Root itself still reads it: the refusal came from the drop.
        assert_eq!(std::fs::read(&secret).expect("root reads"), b"root only");
    }

    #[test]
    fn root_is_never_the_target() {
        let e = drop_privileges(0, 1).expect_err("uid 0");
        assert!(e.to_string().contains("--runas=0"), "{e}");
    }
}
