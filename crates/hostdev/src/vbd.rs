//! `block add` and `block remove`, natively.
//!
//! What the block script (Xen 4.17, tools/hotplug/Linux/block) does, and what is done
//! here instead:
//!
//! * `add` does nothing when `physical-device` is already written (the script may be
//!   called twice); it reads `params`, `mode`, `frontend-id` and requires the backend's
//!   `state` to be 2, or 3 or 4 (the toolstack accepts a backend that raced ahead); the
//!   script checks the state for files only, here it is checked for both.
//! * The target: a `params` that is not absolute names a device under /dev (the
//!   script's `expand_dev`). Symbolic links are resolved once, as the script's
//!   `readlink -f` does (a /dev/disk/by-id link or an image directory behind a link are
//!   normal); the resolved path is then opened with `O_NOFOLLOW` and every check is made
//!   on that open file (`fstat`), which is also the file the loop device is given. So
//!   what is checked is what is attached, whatever happens to the path meanwhile. The
//!   target must be a block device or a regular file; anything else is refused (the
//!   script silently succeeds on a missing target, leaving blkback waiting).
//! * Sharing ([`crate::sharing`]): unless the mode is forced (`w!`), a device or file
//!   already used by another guest in a conflicting mode, or mounted in dom0 (read-write,
//!   or at all for mode `w`), is refused with `hotplug-status=busy`, as the script's
//!   `ebusy`. For a file, the devices checked are the loop devices already backed by it
//!   (same device and inode, as `losetup -a` shows). For a block device in mode `w`, an
//!   exclusive open (`O_EXCL`) must also succeed: that catches swap, device-mapper and
//!   md holders and mounts in other mount namespaces, which /proc/self/mountinfo does not
//!   show. A file with no write permission bit is refused for mode `w`.
//! * A file gets a loop device: `LOOP_CTL_GET_FREE`, then `LOOP_CONFIGURE` with
//!   `LO_FLAGS_AUTOCLEAR` and, for mode `r`, `LO_FLAGS_READ_ONLY`, retried with a new
//!   free device when another process took the first (EBUSY). Autoclear means the loop
//!   device lets go of the file when its last opener closes it, so nothing outlives the
//!   guest's backend even if `remove` never runs. Therefore the loop device is kept open
//!   here until blkback holds it: until blkback's sysfs node
//!   `vbd-DOMID-DEVID/physical_device` shows this device (blkback creates it right after
//!   opening the device) or the backend is Connected (blkback gets there only with the
//!   device open), or the backend closes (blkback failed to open it; its xenbus error is
//!   reported), or the timeout.
//! * Written in one transaction: `node` (files), `physical-device` (`MAJOR:MINOR` in
//!   lowercase hex), `physical-device-path`, `hotplug-status=connected`.
//! * The script's lock (`/var/run/xen-hotplug/block`) is held from the sharing check to
//!   the write, as the script holds it, so native adds and script adds exclude each other.
//! * `remove` detaches the loop device in `node`, only if it is a loop device bound to
//!   the file `params` names (same device and inode); a device already detached (by
//!   autoclear) is success. Nothing else is touched; a block device has no `node` and
//!   nothing to undo.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use devices::hotplug::HotplugCommand;
use xencall::loopdev;

use crate::lock::HotplugLock;
use crate::sharing::{self, DevNum, Mode, OtherUser};
use crate::{Failure, Job, Native};

/// The wait for blkback looks again after this, doubling up to [`POLL_MAX`]: blkback
/// usually opens the device within a millisecond of the `physical-device` write.
const POLL_FIRST: Duration = Duration::from_micros(100);
/// The longest pause of the wait for blkback.
const POLL_MAX: Duration = Duration::from_millis(4);

/// What `params` names, opened.
#[derive(Debug)]
struct Target {
    /// The resolved path.
    path: PathBuf,
    /// The open file or device.
    file: File,
    /// Its `fstat`.
    meta: Metadata,
}

fn fatal(msg: impl Into<String>) -> Failure {
    Failure::Fatal(msg.into())
}

/// `params` made absolute as the script's `expand_dev` does.
fn expand(params: &str) -> PathBuf {
    if params.starts_with('/') {
        PathBuf::from(params)
    } else {
        Path::new("/dev").join(params)
    }
}

/// Resolve and open the target; `write` opens it read-write (a file that a guest will
/// write through a loop device must be open for writing).
fn open_target(params: &str, write: bool) -> Result<Target, Failure> {
    let given = expand(params);
    let path = std::fs::canonicalize(&given)
        .map_err(|e| fatal(format!("{} does not exist: {e}", given.display())))?;
    let probe = |write: bool| {
        OpenOptions::new()
            .read(true)
            .write(write)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
            .open(&path)
    };
    // Open read-only first: a block device is only looked at, and the file type decides
    // whether read-write is needed.
    let file = probe(false).map_err(|e| fatal(format!("cannot open {}: {e}", path.display())))?;
    let meta = file
        .metadata()
        .map_err(|e| fatal(format!("cannot stat {}: {e}", path.display())))?;
    let ft = meta.file_type();
    if ft.is_block_device() {
        return Ok(Target { path, file, meta });
    }
    if !ft.is_file() {
        return Err(fatal(format!(
            "{} is neither a block device nor a regular file",
            path.display()
        )));
    }
    if write {
        if meta.mode() & 0o222 == 0 {
            return Err(read_only_file(&path));
        }
        let file = probe(true).map_err(|e| match e.raw_os_error() {
            Some(nix::libc::EROFS | nix::libc::EACCES | nix::libc::EPERM) => read_only_file(&path),
            _ => fatal(format!("cannot open {} read-write: {e}", path.display())),
        })?;
        let again = file
            .metadata()
            .map_err(|e| fatal(format!("cannot stat {}: {e}", path.display())))?;
        if (again.dev(), again.ino()) != (meta.dev(), meta.ino()) {
            return Err(fatal(format!(
                "{} changed while it was being opened",
                path.display()
            )));
        }
        blocking(&file, &path)?;
        return Ok(Target {
            path,
            file,
            meta: again,
        });
    }
    blocking(&file, &path)?;
    Ok(Target { path, file, meta })
}

/// Clear `O_NONBLOCK` (used only so that opening a FIFO planted at the path cannot
/// hang) on a regular file before it backs a loop device.
fn blocking(file: &File, path: &Path) -> Result<(), Failure> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    fcntl(fd, FcntlArg::F_GETFL)
        .map(OFlag::from_bits_truncate)
        .and_then(|f| fcntl(fd, FcntlArg::F_SETFL(f - OFlag::O_NONBLOCK)))
        .map(drop)
        .map_err(|e| fatal(format!("cannot set up {}: {e}", path.display())))
}

fn read_only_file(path: &Path) -> Failure {
    Failure::Busy(format!(
        "File {} is read-only, and so I will not mount it read-write in a guest domain.",
        path.display()
    ))
}

/// `block add`.
pub(crate) fn add(
    native: &Native,
    job: &mut Job<'_>,
    _cmd: &HotplugCommand,
) -> Result<(), Failure> {
    if let Some(pd) = job.read("physical-device")? {
        job.note(format!(
            "physical-device is already {pd}: nothing to do (as the block script)"
        ));
        return Ok(());
    }
    let params = job.read_required("params")?;
    let mode_node = job.read_required("mode")?;
    let mode = Mode::parse(&mode_node);
    let frontend: u32 = job
        .read_required("frontend-id")?
        .trim()
        .parse()
        .map_err(|_| fatal(format!("{}/frontend-id is not a domain id", job.path)))?;
    let state = job.read("state")?.unwrap_or_else(|| "missing".into());
    // InitWait, or past it (the toolstack accepts a backend that raced ahead).
    if !matches!(state.as_str(), "2" | "3" | "4") {
        return Err(fatal(format!(
            "Path closed or removed during hotplug add: {} state: {state}",
            job.path
        )));
    }
    let target = open_target(&params, mode.writes())?;
    job.note(format!(
        "target {} ({}), mode {mode_node} ({mode:?})",
        target.path.display(),
        if target.meta.file_type().is_block_device() {
            "block device"
        } else {
            "file"
        }
    ));
    let lock = HotplugLock::acquire(&native.lock_dir, "block", job.deadline)
        .map_err(|e| fatal(format!("cannot take the block hotplug lock: {e}")))?;
    if target.meta.file_type().is_block_device() {
        let dev = DevNum::from_raw(target.meta.rdev());
        if mode != Mode::Force {
            check_sharing(native, job, &target, frontend, mode, &[dev])?;
            if mode == Mode::Write {
                exclusive_probe(&target.path, dev)?;
            }
        }
        let path = target.path.to_string_lossy();
        job.write(&[
            ("physical-device", &dev.to_string()),
            ("physical-device-path", &path),
            ("hotplug-status", "connected"),
        ])?;
        job.note(format!("physical-device {dev}"));
        drop(lock);
        return Ok(());
    }
    if mode != Mode::Force {
        let loops = loops_backed_by(target.meta.dev(), target.meta.ino());
        if !loops.is_empty() {
            check_sharing(native, job, &target, frontend, mode, &loops)?;
        }
    }
    let t_attach = Instant::now();
    let (loop_file, number) = attach(&target, mode, job.deadline)?;
    let node = format!("/dev/loop{number}");
    let attach_us = t_attach.elapsed().as_micros();
    let dev = loop_file
        .metadata()
        .map(|m| DevNum::from_raw(m.rdev()))
        .map_err(|e| fatal(format!("cannot stat {node}: {e}")))?;
    job.note(format!(
        "{node} ({dev}) attached to {}{} in {attach_us} us",
        target.path.display(),
        if mode.writes() { "" } else { ", read-only" }
    ));
    job.write(&[
        ("node", &node),
        ("physical-device", &dev.to_string()),
        ("physical-device-path", &node),
        ("hotplug-status", "connected"),
    ])?;
    drop(lock);
    wait_for_blkback(native, job, &node, dev)?;
    drop(loop_file);
    Ok(())
}

/// The sharing check for `devs` (the device, or the loop devices already backed by the
/// file).
fn check_sharing(
    native: &Native,
    job: &Job<'_>,
    target: &Target,
    frontend: u32,
    mode: Mode,
    devs: &[DevNum],
) -> Result<(), Failure> {
    let text = std::fs::read_to_string(&native.mountinfo)
        .map_err(|e| fatal(format!("cannot read {}: {e}", native.mountinfo.display())))?;
    let mounts = sharing::parse_mountinfo(&text);
    let others = other_users(job, frontend, devs)?;
    sharing::check_sharing(mode, devs, &mounts, &others).map_err(|c| {
        Failure::Busy(format!(
            "{} cannot be used {} by domain {frontend}: {c}",
            target.path.display(),
            if mode.writes() {
                "read-write"
            } else {
                "read-only"
            }
        ))
    })
}

/// Every other vbd (under the same backend directory) whose `physical-device` is one
/// of `devs`.
fn other_users(job: &Job<'_>, frontend: u32, devs: &[DevNum]) -> Result<Vec<OtherUser>, Failure> {
    // XENBUS_PATH is BASE/vbd/DOMID/DEVID; the script lists BASE/vbd.
    let base = job
        .path
        .rsplitn(3, '/')
        .nth(2)
        .unwrap_or("backend/vbd")
        .to_owned();
    let list = |p: &str| {
        job.store
            .directory(xen_host::TxId::NONE, p)
            .map_err(|e| fatal(format!("xenstore-list {p} failed: {e}")))
            .map(Option::unwrap_or_default)
    };
    let vm_of = |dom: &str| -> Result<(Option<String>, Option<String>), Failure> {
        let vm = job.read_abs(&format!("/local/domain/{dom}/vm"))?;
        let target_vm = match job.read_abs(&format!("/local/domain/{dom}/target"))? {
            Some(t) if !t.is_empty() => job.read_abs(&format!("/local/domain/{t}/vm"))?,
            _ => None,
        };
        Ok((vm, target_vm))
    };
    let (our_vm, our_target_vm) = vm_of(&frontend.to_string())?;
    let mut out = Vec::new();
    for dom in list(&base)? {
        for devid in list(&format!("{base}/{dom}"))? {
            let p = format!("{base}/{dom}/{devid}");
            if p == job.path {
                continue;
            }
            let Some(dev) = job
                .read_abs(&format!("{p}/physical-device"))?
                .and_then(|v| DevNum::parse_hex(&v))
            else {
                continue;
            };
            if !devs.contains(&dev) {
                continue;
            }
            let mode = Mode::parse(&job.read_abs(&format!("{p}/mode"))?.unwrap_or_default());
            let (vm, target_vm) = vm_of(&dom)?;
            out.push(OtherUser {
                domid: dom.parse().unwrap_or(u32::MAX),
                devid,
                dev,
                mode,
                same_vm: sharing::same_vm(
                    our_vm.as_deref(),
                    our_target_vm.as_deref(),
                    vm.as_deref(),
                    target_vm.as_deref(),
                ),
            });
        }
    }
    Ok(out)
}

/// For mode `w` on a block device: an exclusive open fails with EBUSY when the kernel
/// has it claimed (mounted anywhere, swap, a device-mapper or md member).
fn exclusive_probe(path: &Path, dev: DevNum) -> Result<(), Failure> {
    match OpenOptions::new()
        .read(true)
        .custom_flags(
            nix::libc::O_EXCL
                | nix::libc::O_NOFOLLOW
                | nix::libc::O_NONBLOCK
                | nix::libc::O_CLOEXEC,
        )
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) => Err(Failure::Busy(format!(
            "Device {} ({dev}) is in use in the privileged domain (mounted, swap or held by \
             another driver), and so cannot be used read-write by a guest.",
            path.display()
        ))),
        Err(e) => Err(fatal(format!("cannot open {}: {e}", path.display()))),
    }
}

/// The loop devices bound to the file with device `dev` and inode `ino`, found as
/// `losetup -a` finds them: every /sys/block/loopN with a `loop` directory (bound),
/// asked with `LOOP_GET_STATUS64`. A device that goes away meanwhile is skipped.
pub fn loops_backed_by(dev: u64, ino: u64) -> Vec<DevNum> {
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("loop") || !e.path().join("loop").exists() {
            continue;
        }
        let Ok(f) = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC | nix::libc::O_NONBLOCK)
            .open(Path::new("/dev").join(&name))
        else {
            continue;
        };
        let (Ok(st), Ok(m)) = (loopdev::status(&f), f.metadata()) else {
            continue;
        };
        if st.backing_dev == dev && st.backing_inode == ino {
            out.push(DevNum::from_raw(m.rdev()));
        }
    }
    out
}

/// Bind a free loop device to the target: read-only for mode `r`, autoclear always.
/// Returns the open loop device and its number.
fn attach(target: &Target, mode: Mode, deadline: Instant) -> Result<(File, u32), Failure> {
    let control = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_CLOEXEC)
        .open("/dev/loop-control")
        .map_err(|e| fatal(format!("cannot open /dev/loop-control: {e}")))?;
    let mut flags = loopdev::LO_FLAGS_AUTOCLEAR;
    if !mode.writes() {
        flags |= loopdev::LO_FLAGS_READ_ONLY;
    }
    let name = target.path.as_os_str().as_encoded_bytes();
    loop {
        let n = loopdev::get_free(&control)
            .map_err(|e| fatal(format!("Failed to find an unused loop device: {e}")))?;
        let path = format!("/dev/loop{n}");
        let dev = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_CLOEXEC | nix::libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| fatal(format!("cannot open {path}: {e}")))?;
        match loopdev::configure(&dev, &target.file, flags, name) {
            Ok(()) => return Ok((dev, n)),
            // Another process bound it between GET_FREE and CONFIGURE: take another.
            Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) && Instant::now() < deadline => {}
            Err(e) => {
                return Err(fatal(format!(
                    "losetup {path} {} failed: {e}",
                    target.path.display()
                )))
            }
        }
    }
}

/// Keep the loop device open until blkback has opened it (see the module's text).
fn wait_for_blkback(
    native: &Native,
    job: &mut Job<'_>,
    node: &str,
    dev: DevNum,
) -> Result<(), Failure> {
    let (domid, devid) = job.domid_devid()?;
    let sysfs = native
        .backend_sysfs
        .join(format!("vbd-{domid}-{devid}"))
        .join("physical_device");
    let start = Instant::now();
    let mut pause = POLL_FIRST;
    loop {
        if let Ok(text) = std::fs::read_to_string(&sysfs) {
            if DevNum::parse_hex(&text) == Some(dev) {
                job.note(format!(
                    "blkback holds {node} after {} us",
                    start.elapsed().as_micros()
                ));
                return Ok(());
            }
        }
        match job.read("state")?.as_deref() {
            Some("2" | "3") => {}
            // Connected: blkback connects only with the device open (it may get there
            // between the sysfs look and this read, when the frontend was waiting).
            Some("4") => {
                job.note(format!(
                    "blkback connected with {node} after {} us",
                    start.elapsed().as_micros()
                ));
                return Ok(());
            }
            state => {
                let error = job
                    .read_abs(&format!("error/{}/error", job.path))?
                    .unwrap_or_default();
                return Err(fatal(format!(
                    "blkback did not open {node}: the backend is in state {} (error: {})",
                    state.unwrap_or("missing"),
                    if error.is_empty() { "none" } else { &error }
                )));
            }
        }
        if Instant::now() >= job.deadline {
            return Err(fatal(format!(
                "blkback did not open {node} within {} ms ({} never showed {dev})",
                start.elapsed().as_millis(),
                sysfs.display()
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(POLL_MAX);
    }
}

/// `block remove`.
pub(crate) fn remove(
    native: &Native,
    job: &mut Job<'_>,
    _cmd: &HotplugCommand,
) -> Result<(), Failure> {
    let Some(node) = job.read("node")?.filter(|n| !n.is_empty()) else {
        job.note("no loop device recorded (a block device, or nothing attached): nothing to undo");
        return Ok(());
    };
    let params = job.read_required("params")?;
    let _lock = HotplugLock::acquire(&native.lock_dir, "block", job.deadline)
        .map_err(|e| fatal(format!("cannot take the block hotplug lock: {e}")))?;
    let f = match OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC | nix::libc::O_NONBLOCK)
        .open(&node)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            job.note(format!("{node} is gone: nothing to undo"));
            return Ok(());
        }
        Err(e) => return Err(fatal(format!("cannot open {node}: {e}"))),
    };
    let meta = f
        .metadata()
        .map_err(|e| fatal(format!("cannot stat {node}: {e}")))?;
    if !meta.file_type().is_block_device()
        || nix::sys::stat::major(meta.rdev()) != loopdev::LOOP_MAJOR
    {
        return Err(fatal(format!(
            "{node} is not a loop device: not detaching it"
        )));
    }
    let status = match loopdev::status(&f) {
        Ok(s) => s,
        Err(e) if e.raw_os_error() == Some(nix::libc::ENXIO) => {
            job.note(format!("{node} is already detached"));
            return Ok(());
        }
        Err(e) => return Err(fatal(format!("cannot read the status of {node}: {e}"))),
    };
    let file = expand(&params);
    let want = std::fs::metadata(&file).map_err(|e| {
        fatal(format!(
            "cannot check that {node} is backed by {}: {e}; not detaching it",
            file.display()
        ))
    })?;
    if (status.backing_dev, status.backing_inode) != (want.dev(), want.ino()) {
        return Err(fatal(format!(
            "{node} is backed by inode {} of device {}, not by {}: not detaching it",
            status.backing_inode,
            DevNum::from_raw(status.backing_dev),
            file.display()
        )));
    }
    match loopdev::clear(&f) {
        Ok(()) => job.note(format!("{node} detached from {}", file.display())),
        Err(e) if e.raw_os_error() == Some(nix::libc::ENXIO) => {
            job.note(format!("{node} is already detached"));
        }
        Err(e) => return Err(fatal(format!("losetup -d {node} failed: {e}"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use std::os::fd::AsRawFd;

    fn flags(f: &File) -> OFlag {
        OFlag::from_bits_truncate(fcntl(f.as_raw_fd(), FcntlArg::F_GETFL).expect("F_GETFL"))
    }

    #[test]
    fn a_file_target_is_resolved_opened_blocking_in_the_right_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = dir.path().join("a.img");
        std::fs::write(&img, b"x").expect("image");
        let link = dir.path().join("link.img");
        std::os::unix::fs::symlink(&img, &link).expect("symlink");
        let t = open_target(&link.to_string_lossy(), false).expect("read-only");
        assert_eq!(t.path, std::fs::canonicalize(&img).expect("canonical"));
        let f = flags(&t.file);
        assert!(!f.contains(OFlag::O_NONBLOCK), "{f:?}");
        assert_eq!(f & OFlag::O_ACCMODE, OFlag::O_RDONLY);
        let t = open_target(&img.to_string_lossy(), true).expect("read-write");
        let f = flags(&t.file);
        assert!(!f.contains(OFlag::O_NONBLOCK), "{f:?}");
        assert_eq!(f & OFlag::O_ACCMODE, OFlag::O_RDWR);
    }

    #[test]
    fn a_fifo_or_directory_target_is_refused_without_hanging() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        for p in [fifo.as_path(), dir.path()] {
            let e = open_target(&p.to_string_lossy(), false).unwrap_err();
            assert!(
                e.message()
                    .ends_with("is neither a block device nor a regular file"),
                "{e:?}"
            );
        }
        let e = open_target("no/such/device", false).unwrap_err();
        assert!(
            e.message()
                .starts_with("/dev/no/such/device does not exist"),
            "{e:?}"
        );
    }
}
