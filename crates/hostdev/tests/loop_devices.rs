//! `block add` / `block remove` on real loop devices (root, /dev/loop-control), with a
//! simulated xenstore and a stand-in for blkback: a thread that, like blkback, opens the
//! device once `physical-device` appears and then shows it in a sysfs-like directory.

mod common;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{privileged, Recorder, Xs};
use devices::hotplug::{vbd_command, Action, Hotplug};
use hostdev::sharing::DevNum;
use hostdev::Native;
use xen_host::DomId;

const XVDA: u32 = 51712;

fn gate(test: &str) -> bool {
    let missing = (!Path::new("/dev/loop-control").exists())
        .then(|| "/dev/loop-control is missing (no loop driver)".to_owned());
    privileged(test, missing)
}

/// What the blkback stand-in does once `physical-device` appears.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Blkback {
    /// Open the device and show it in sysfs, as blkback does.
    Sysfs,
    /// Open the device and go straight to Connected (a guest that was waiting),
    /// before the sysfs node is seen.
    Connect,
    /// Fail to open it: an xenbus error and state Closing.
    Fail(&'static str),
}

struct Host {
    xs: Xs,
    sysfs: PathBuf,
    locks: PathBuf,
    image: PathBuf,
}

impl Host {
    fn new() -> Host {
        let xs = Xs::new();
        let sysfs = xs.dir.path().join("xen-backend");
        let locks = xs.dir.path().join("locks");
        std::fs::create_dir_all(&sysfs).expect("sysfs dir");
        let image = xs.dir.path().join("disk.img");
        let f = File::create(&image).expect("image");
        f.set_len(1 << 20).expect("size the image");
        Host {
            xs,
            sysfs,
            locks,
            image,
        }
    }

    fn native(&self) -> Native {
        Native::new(self.xs.store.clone(), Recorder::default())
            .with_backend_sysfs(&self.sysfs)
            .with_lock_dir(&self.locks)
    }

    /// A vbd's backend nodes as the toolstack leaves them when the backend is in
    /// InitWait, and the frontend domain's `vm`.
    fn vbd(&self, domid: u32, params: &Path, mode: &str, vm: &str) -> String {
        let p = format!("backend/vbd/{domid}/{XVDA}");
        self.xs
            .write(&format!("{p}/params"), &params.to_string_lossy());
        self.xs.write(&format!("{p}/mode"), mode);
        self.xs
            .write(&format!("{p}/frontend-id"), &domid.to_string());
        self.xs.write(&format!("{p}/state"), "2");
        self.xs.write(&format!("/local/domain/{domid}/vm"), vm);
        p
    }

    /// Start a stand-in for blkback on one vbd: when `physical-device` appears it opens
    /// that device and writes `vbd-D-N/physical_device`; the open device comes back
    /// through the receiver (dropping it is blkback letting go).
    fn blkback(&self, domid: u32) -> mpsc::Receiver<File> {
        self.blkback_acting(domid, Blkback::Sysfs)
    }

    fn blkback_acting(&self, domid: u32, act: Blkback) -> mpsc::Receiver<File> {
        let (tx, rx) = mpsc::channel();
        let store = self.xs.store.clone();
        let sysfs = self.sysfs.join(format!("vbd-{domid}-{XVDA}"));
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            let path = format!("backend/vbd/{domid}/{XVDA}");
            while Instant::now() < deadline {
                let pd = xen_host::read_string(
                    &*store,
                    xen_host::TxId::NONE,
                    &format!("{path}/physical-device"),
                )
                .ok()
                .flatten();
                let node =
                    xen_host::read_string(&*store, xen_host::TxId::NONE, &format!("{path}/node"))
                        .ok()
                        .flatten();
                if let (Some(pd), Some(node)) = (pd, node) {
                    let write = |p: &str, v: &str| {
                        store
                            .write(xen_host::TxId::NONE, p, v.as_bytes())
                            .expect("write")
                    };
                    if let Blkback::Fail(error) = act {
                        write(&format!("error/{path}/error"), error);
                        write(&format!("{path}/state"), "5");
                        return;
                    }
                    let f = OpenOptions::new()
                        .read(true)
                        .custom_flags(nix::libc::O_CLOEXEC)
                        .open(&node)
                        .expect("blkback stand-in opens the loop device");
                    if act == Blkback::Sysfs {
                        std::fs::create_dir_all(&sysfs).expect("sysfs node");
                        std::fs::write(sysfs.join("physical_device"), format!("{pd}\n"))
                            .expect("physical_device");
                    } else {
                        write(&format!("{path}/state"), "4");
                    }
                    let _ = tx.send(f);
                    return;
                }
                std::thread::sleep(Duration::from_micros(100));
            }
        });
        rx
    }
}

fn sys_block(node: &str, file: &str) -> Option<String> {
    let name = node.trim_start_matches("/dev/");
    std::fs::read_to_string(format!("/sys/block/{name}/{file}"))
        .ok()
        .map(|s| s.trim().to_owned())
}

fn bound(node: &str) -> bool {
    let name = node.trim_start_matches("/dev/");
    Path::new(&format!("/sys/block/{name}/loop")).exists()
}

/// Whether, within 5 s, no loop device is bound to `file` any more (`node` is the one
/// that was; its number may meanwhile be reused by another test, so the file is what is
/// checked).
fn wait_unbound(node: &str, file: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(file).expect("stat the image");
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        if hostdev::vbd::loops_backed_by(m.dev(), m.ino()).is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!(
        "{node} or another loop device is still bound to {}",
        file.display()
    );
    false
}

#[test]
fn a_file_in_mode_r_gets_a_read_only_autoclear_loop_device() {
    if !gate("a_file_in_mode_r_gets_a_read_only_autoclear_loop_device") {
        return;
    }
    let host = Host::new();
    let native = host.native();
    let p = host.vbd(5, &host.image, "r", "uuid-a");
    let blkback = host.blkback(5);
    let add = vbd_command("/etc/xen/scripts/block", DomId(5), XVDA, Action::Add);
    let run = native
        .run(&add, &host.xs.log(), Duration::from_secs(10))
        .expect("native add ran");
    assert_eq!(run.exit_code, Some(0), "{}", host.xs.log_text());
    let held = blkback
        .recv_timeout(Duration::from_secs(5))
        .expect("blkback stand-in got the device");

    let node = host.xs.read(&format!("{p}/node")).expect("node written");
    assert!(node.starts_with("/dev/loop"), "{node}");
    let dev = DevNum::from_raw(
        std::fs::metadata(&node)
            .map(|m| {
                use std::os::unix::fs::MetadataExt;
                m.rdev()
            })
            .expect("stat node"),
    );
    assert_eq!(dev.major, 7);
    assert_eq!(
        host.xs.read(&format!("{p}/physical-device")),
        Some(format!("7:{:x}", dev.minor))
    );
    assert_eq!(
        host.xs.read(&format!("{p}/physical-device-path")),
        Some(node.clone())
    );
    assert_eq!(
        host.xs.read(&format!("{p}/hotplug-status")).as_deref(),
        Some("connected")
    );
    assert_eq!(host.xs.read(&format!("{p}/hotplug-error")), None);
    // The kernel's view: read-only, autoclear, backed by the image.
    assert_eq!(sys_block(&node, "ro").as_deref(), Some("1"));
    assert_eq!(sys_block(&node, "loop/autoclear").as_deref(), Some("1"));
    assert_eq!(
        sys_block(&node, "loop/backing_file").map(PathBuf::from),
        Some(std::fs::canonicalize(&host.image).expect("canonical image"))
    );
    let log = host.xs.log_text();
    assert!(
        log.contains("rxl native: /etc/xen/scripts/block add"),
        "{log}"
    );
    assert!(log.contains("blkback holds"), "{log}");

    // blkback lets go (the backend device went away): autoclear frees the loop device.
    drop(held);
    assert!(
        wait_unbound(&node, &host.image),
        "{node} still bound after its last opener closed it"
    );
    // remove finds it already detached: success, nothing else touched.
    let rm = vbd_command("/etc/xen/scripts/block", DomId(5), XVDA, Action::Remove);
    let run = native
        .run(&rm, &host.xs.log(), Duration::from_secs(10))
        .expect("native remove ran");
    assert_eq!(run.exit_code, Some(0), "{}", host.xs.log_text());
    assert!(host.xs.log_text().contains("already detached"));
}

#[test]
fn mode_w_gives_a_writable_loop_device() {
    if !gate("mode_w_gives_a_writable_loop_device") {
        return;
    }
    let host = Host::new();
    let native = host.native();
    let p = host.vbd(5, &host.image, "w", "uuid-a");
    let blkback = host.blkback(5);
    let add = vbd_command("/etc/xen/scripts/block", DomId(5), XVDA, Action::Add);
    let run = native
        .run(&add, &host.xs.log(), Duration::from_secs(10))
        .expect("ran");
    assert_eq!(run.exit_code, Some(0), "{}", host.xs.log_text());
    let held = blkback.recv_timeout(Duration::from_secs(5)).expect("held");
    let node = host.xs.read(&format!("{p}/node")).expect("node");
    assert_eq!(sys_block(&node, "ro").as_deref(), Some("0"));
    drop(held);
    assert!(wait_unbound(&node, &host.image));
}

/// A loop device bound the way the block script binds it (`losetup`, no autoclear),
/// so that it stays bound with no opener.
fn script_style_loop(file: &Path) -> String {
    let ctl = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/loop-control")
        .expect("loop-control");
    let backing = File::open(file).expect("backing");
    loop {
        let n = xencall::loopdev::get_free(&ctl).expect("free loop");
        let node = format!("/dev/loop{n}");
        let dev = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&node)
            .expect("loop");
        match xencall::loopdev::configure(
            &dev,
            &backing,
            xencall::loopdev::LO_FLAGS_READ_ONLY,
            b"t",
        ) {
            Ok(()) => return node,
            Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) => continue,
            Err(e) => panic!("configure {node}: {e}"),
        }
    }
}

fn detach(node: &str) {
    if let Ok(f) = File::open(node) {
        let _ = xencall::loopdev::clear(&f);
    }
}

#[test]
fn remove_detaches_the_loop_device_of_params_and_nothing_else() {
    if !gate("remove_detaches_the_loop_device_of_params_and_nothing_else") {
        return;
    }
    let host = Host::new();
    let native = host.native();
    let other = host.xs.dir.path().join("other.img");
    File::create(&other)
        .expect("other")
        .set_len(1 << 20)
        .expect("size");

    // `node` names a loop device backed by another file: refused, left bound.
    let p = host.vbd(5, &host.image, "r", "uuid-a");
    let foreign = script_style_loop(&other);
    host.xs.write(&format!("{p}/node"), &foreign);
    let rm = vbd_command("/etc/xen/scripts/block", DomId(5), XVDA, Action::Remove);
    let run = native
        .run(&rm, &host.xs.log(), Duration::from_secs(10))
        .expect("ran");
    assert_eq!(run.exit_code, Some(1));
    let err = host
        .xs
        .read(&format!("{p}/hotplug-error"))
        .expect("hotplug-error");
    assert!(
        err.contains("not detaching it") && err.contains(&foreign),
        "{err}"
    );
    assert_eq!(
        host.xs.read(&format!("{p}/hotplug-status")).as_deref(),
        Some("error")
    );
    assert!(
        bound(&foreign),
        "a loop device of another file was detached"
    );
    detach(&foreign);

    // `node` names a device that is not a loop device: refused.
    host.xs.write(&format!("{p}/node"), "/dev/null");
    let run = native
        .run(&rm, &host.xs.log(), Duration::from_secs(10))
        .expect("ran");
    assert_eq!(run.exit_code, Some(1));
    assert!(host
        .xs
        .read(&format!("{p}/hotplug-error"))
        .is_some_and(|e| e.contains("/dev/null is not a loop device")));

    // A loop device bound to params by the script (no autoclear): detached.
    let mine = script_style_loop(&host.image);
    host.xs.write(&format!("{p}/node"), &mine);
    let run = native
        .run(&rm, &host.xs.log(), Duration::from_secs(10))
        .expect("ran");
    assert_eq!(run.exit_code, Some(0), "{}", host.xs.log_text());
    assert!(
        wait_unbound(&mine, &host.image),
        "{mine} still bound after remove"
    );
    assert!(host
        .xs
        .log_text()
        .contains(&format!("{mine} detached from")));
}

#[test]
fn a_file_used_read_write_by_another_guest_is_refused() {
    if !gate("a_file_used_read_write_by_another_guest_is_refused") {
        return;
    }
    let host = Host::new();
    let native = host.native();
    host.vbd(5, &host.image, "w", "uuid-a");
    let blkback = host.blkback(5);
    let add5 = vbd_command("/etc/xen/scripts/block", DomId(5), XVDA, Action::Add);
    let run = native
        .run(&add5, &host.xs.log(), Duration::from_secs(10))
        .expect("ran");
    assert_eq!(run.exit_code, Some(0), "{}", host.xs.log_text());
    let held = blkback.recv_timeout(Duration::from_secs(5)).expect("held");

    // Another guest, read-only: refused as busy, no loop device made for it.
    let p6 = host.vbd(6, &host.image, "r", "uuid-b");
    let add6 = vbd_command("/etc/xen/scripts/block", DomId(6), XVDA, Action::Add);
    let run = native
        .run(&add6, &host.xs.log(), Duration::from_secs(10))
        .expect("ran");
    assert_eq!(run.exit_code, Some(1));
    assert_eq!(
        host.xs.read(&format!("{p6}/hotplug-status")).as_deref(),
        Some("busy")
    );
    let err = host
        .xs
        .read(&format!("{p6}/hotplug-error"))
        .expect("hotplug-error");
    assert!(
        err.contains("cannot be used read-only by domain 6")
            && err.contains("is used read-write by domain 5 (vbd 51712)"),
        "{err}"
    );
    assert_eq!(host.xs.read(&format!("{p6}/node")), None);
    assert_eq!(host.xs.read(&format!("{p6}/physical-device")), None);

    // The same guest (same vm uuid) may use it again.
    host.vbd(7, &host.image, "r", "uuid-a");
    let blk7 = host.blkback(7);
    let add7 = vbd_command("/etc/xen/scripts/block", DomId(7), XVDA, Action::Add);
    let run = native
        .run(&add7, &host.xs.log(), Duration::from_secs(10))
        .expect("ran");
    assert_eq!(run.exit_code, Some(0), "{}", host.xs.log_text());
    let held7 = blk7.recv_timeout(Duration::from_secs(5)).expect("held");

    // Forced (w!): no sharing checks.
    host.xs.rm_all(&p6);
    let p6 = host.vbd(6, &host.image, "w!", "uuid-b");
    let blk6 = host.blkback(6);
    let run = native
        .run(&add6, &host.xs.log(), Duration::from_secs(10))
        .expect("ran");
    assert_eq!(run.exit_code, Some(0), "{}", host.xs.log_text());
    let held6 = blk6.recv_timeout(Duration::from_secs(5)).expect("held");
    assert_eq!(
        host.xs.read(&format!("{p6}/hotplug-status")).as_deref(),
        Some("connected")
    );

    let nodes: Vec<String> = [5, 6, 7]
        .iter()
        .map(|d| {
            host.xs
                .read(&format!("backend/vbd/{d}/{XVDA}/node"))
                .expect("node")
        })
        .collect();
    drop((held, held6, held7));
    for n in &nodes {
        assert!(wait_unbound(n, &host.image), "{n} still bound");
    }
}

#[test]
fn blkback_never_opening_the_device_fails_and_leaves_no_loop_device() {
    if !gate("blkback_never_opening_the_device_fails_and_leaves_no_loop_device") {
        return;
    }
    let host = Host::new();
    let native = host.native();
    let p = host.vbd(5, &host.image, "r", "uuid-a");
    let add = vbd_command("/etc/xen/scripts/block", DomId(5), XVDA, Action::Add);
    let run = native
        .run(&add, &host.xs.log(), Duration::from_millis(300))
        .expect("ran");
    assert_eq!(run.exit_code, Some(1));
    let err = host
        .xs
        .read(&format!("{p}/hotplug-error"))
        .expect("hotplug-error");
    assert!(err.starts_with("blkback did not open /dev/loop"), "{err}");
    assert_eq!(
        host.xs.read(&format!("{p}/hotplug-status")).as_deref(),
        Some("error")
    );
    let node = host.xs.read(&format!("{p}/node")).expect("node");
    assert!(
        wait_unbound(&node, &host.image),
        "{node} outlived the failed add"
    );
}

#[test]
fn a_missing_target_or_a_closed_backend_is_an_error() {
    if !gate("a_missing_target_or_a_closed_backend_is_an_error") {
        return;
    }
    let host = Host::new();
    let native = host.native();
    let missing = host.xs.dir.path().join("nope.img");
    let p = host.vbd(5, &missing, "r", "uuid-a");
    let add = vbd_command("/etc/xen/scripts/block", DomId(5), XVDA, Action::Add);
    let run = native
        .run(&add, &host.xs.log(), Duration::from_secs(5))
        .expect("ran");
    assert_eq!(run.exit_code, Some(1));
    let err = host.xs.read(&format!("{p}/hotplug-error")).expect("error");
    assert!(
        err.starts_with(&format!("{} does not exist", missing.display())),
        "{err}"
    );

    host.xs.write(&format!("{p}/params"), "/dev/null");
    let run = native
        .run(&add, &host.xs.log(), Duration::from_secs(5))
        .expect("ran");
    assert_eq!(run.exit_code, Some(1));
    assert_eq!(
        host.xs.read(&format!("{p}/hotplug-error")).as_deref(),
        Some("/dev/null is neither a block device nor a regular file")
    );

    host.xs
        .write(&format!("{p}/params"), &host.image.to_string_lossy());
    host.xs.write(&format!("{p}/state"), "5");
    let run = native
        .run(&add, &host.xs.log(), Duration::from_secs(5))
        .expect("ran");
    assert_eq!(run.exit_code, Some(1));
    assert_eq!(
        host.xs.read(&format!("{p}/hotplug-error")),
        Some(format!(
            "Path closed or removed during hotplug add: {p} state: 5"
        ))
    );
    assert_eq!(host.xs.read(&format!("{p}/node")), None);
}

fn stats(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let us = |d: Duration| d.as_micros();
    println!(
        "{name}: median {} us, min {} us, p90 {} us ({} runs)",
        us(v[v.len() / 2]),
        us(v[0]),
        us(v[v.len() * 9 / 10]),
        v.len()
    );
}

/// One native add and remove of a file-backed disk, timed (run with `--ignored
/// --nocapture`, release build). The add includes the wait for the blkback stand-in,
/// which polls the simulated xenstore every 100 us.
#[test]
#[ignore = "a measurement, not a check"]
fn timing_of_a_native_loop_add_and_remove() {
    if !gate("timing_of_a_native_loop_add_and_remove") {
        return;
    }
    let host = Host::new();
    let native = host.native();
    let add = vbd_command("/etc/xen/scripts/block", DomId(5), XVDA, Action::Add);
    let rm = vbd_command("/etc/xen/scripts/block", DomId(5), XVDA, Action::Remove);
    let (mut adds, mut removes) = (Vec::new(), Vec::new());
    for _ in 0..30 {
        host.xs.rm_all(&format!("backend/vbd/5/{XVDA}"));
        let _ = std::fs::remove_dir_all(host.sysfs.join(format!("vbd-5-{XVDA}")));
        host.vbd(5, &host.image, "w", "uuid-a");
        let blkback = host.blkback(5);
        let run = native
            .run(&add, &host.xs.log(), Duration::from_secs(10))
            .expect("add");
        assert_eq!(run.exit_code, Some(0), "{}", host.xs.log_text());
        adds.push(run.elapsed);
        let held = blkback.recv_timeout(Duration::from_secs(5)).expect("held");
        let run = native
            .run(&rm, &host.xs.log(), Duration::from_secs(10))
            .expect("remove");
        assert_eq!(run.exit_code, Some(0));
        removes.push(run.elapsed);
        drop(held);
    }
    stats("native block add (file, loop device)", adds);
    stats("native block remove", removes);
}

#[test]
fn a_block_device_is_recorded_and_checked_but_not_looped() {
    if !gate("a_block_device_is_recorded_and_checked_but_not_looped") {
        return;
    }
    let host = Host::new();
    // A loop device bound by hand stands in for a disk.
    let disk = script_style_loop(&host.image);
    let minor = {
        use std::os::unix::fs::MetadataExt;
        nix::sys::stat::minor(std::fs::metadata(&disk).expect("stat").rdev())
    };
    let add = vbd_command("/etc/xen/scripts/block", DomId(5), XVDA, Action::Add);

    // Mounted read-write in dom0 (as mountinfo says): refused even for reading.
    let mountinfo = host.xs.dir.path().join("mountinfo");
    std::fs::write(
        &mountinfo,
        format!("50 1 7:{minor} / /mnt/x rw,relatime - ext4 {disk} rw\n"),
    )
    .expect("mountinfo");
    let native = host.native().with_mountinfo(&mountinfo);
    let p = host.vbd(5, Path::new(&disk), "r", "uuid-a");
    let run = native
        .run(&add, &host.xs.log(), Duration::from_secs(5))
        .expect("ran");
    assert_eq!(run.exit_code, Some(1));
    assert_eq!(
        host.xs.read(&format!("{p}/hotplug-status")).as_deref(),
        Some("busy")
    );
    assert_eq!(
        host.xs.read(&format!("{p}/hotplug-error")),
        Some(format!(
            "{disk} cannot be used read-only by domain 5: device 7:{minor:x} is mounted \
             read-write in the privileged domain at /mnt/x"
        ))
    );

    // Claimed exclusively by someone (as a mount or swap would): refused for writing.
    let native = host.native();
    host.xs.write(&format!("{p}/mode"), "w");
    let claim = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_EXCL)
        .open(&disk)
        .expect("exclusive open");
    let run = native
        .run(&add, &host.xs.log(), Duration::from_secs(5))
        .expect("ran");
    assert_eq!(run.exit_code, Some(1));
    assert!(host
        .xs
        .read(&format!("{p}/hotplug-error"))
        .is_some_and(|e| e.contains("is in use in the privileged domain")));
    drop(claim);

    // Free: recorded as it is, through a symbolic link, with no loop device of its own.
    let link = host.xs.dir.path().join("disk-link");
    std::os::unix::fs::symlink(&disk, &link).expect("symlink");
    host.xs
        .write(&format!("{p}/params"), &link.to_string_lossy());
    let run = native
        .run(&add, &host.xs.log(), Duration::from_secs(5))
        .expect("ran");
    assert_eq!(run.exit_code, Some(0), "{}", host.xs.log_text());
    assert_eq!(
        host.xs.read(&format!("{p}/physical-device")),
        Some(format!("7:{minor:x}"))
    );
    assert_eq!(
        host.xs.read(&format!("{p}/physical-device-path")),
        Some(disk.clone())
    );
    assert_eq!(host.xs.read(&format!("{p}/node")), None);
    assert_eq!(
        host.xs.read(&format!("{p}/hotplug-status")).as_deref(),
        Some("connected")
    );
    // remove has nothing to undo for a block device.
    let rm = vbd_command("/etc/xen/scripts/block", DomId(5), XVDA, Action::Remove);
    let run = native
        .run(&rm, &host.xs.log(), Duration::from_secs(5))
        .expect("ran");
    assert_eq!(run.exit_code, Some(0));
    assert!(
        bound(&disk),
        "remove touched a block device it did not make"
    );
    detach(&disk);
}

#[test]
fn a_file_with_no_write_permission_is_refused_for_mode_w() {
    if !gate("a_file_with_no_write_permission_is_refused_for_mode_w") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let host = Host::new();
    std::fs::set_permissions(&host.image, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    let p = host.vbd(5, &host.image, "w", "uuid-a");
    let add = vbd_command("/etc/xen/scripts/block", DomId(5), XVDA, Action::Add);
    let run = host
        .native()
        .run(&add, &host.xs.log(), Duration::from_secs(5))
        .expect("ran");
    assert_eq!(run.exit_code, Some(1));
    assert_eq!(
        host.xs.read(&format!("{p}/hotplug-status")).as_deref(),
        Some("busy")
    );
    assert!(host
        .xs
        .read(&format!("{p}/hotplug-error"))
        .is_some_and(|e| e
            .ends_with("is read-only, and so I will not mount it read-write in a guest domain.")));
    assert_eq!(host.xs.read(&format!("{p}/node")), None);
}

#[test]
fn a_backend_that_connects_has_the_device_and_one_that_closes_has_failed() {
    if !gate("a_backend_that_connects_has_the_device_and_one_that_closes_has_failed") {
        return;
    }
    let host = Host::new();
    let native = host.native();
    let add = vbd_command("/etc/xen/scripts/block", DomId(5), XVDA, Action::Add);
    let p = host.vbd(5, &host.image, "r", "uuid-a");
    let blkback = host.blkback_acting(5, Blkback::Connect);
    let run = native
        .run(&add, &host.xs.log(), Duration::from_secs(10))
        .expect("ran");
    assert_eq!(run.exit_code, Some(0), "{}", host.xs.log_text());
    let held = blkback.recv_timeout(Duration::from_secs(5)).expect("held");
    let node = host.xs.read(&format!("{p}/node")).expect("node");
    assert!(bound(&node));
    drop(held);
    assert!(wait_unbound(&node, &host.image));

    host.xs.rm_all(&p);
    let p = host.vbd(5, &host.image, "r", "uuid-a");
    let _blkback = host.blkback_acting(5, Blkback::Fail("2 creating vbd structure"));
    let run = native
        .run(&add, &host.xs.log(), Duration::from_secs(10))
        .expect("ran");
    assert_eq!(run.exit_code, Some(1));
    let err = host.xs.read(&format!("{p}/hotplug-error")).expect("error");
    assert!(
        err.starts_with("blkback did not open /dev/loop")
            && err.ends_with("the backend is in state 5 (error: 2 creating vbd structure)"),
        "{err}"
    );
    let node = host.xs.read(&format!("{p}/node")).expect("node");
    assert!(
        wait_unbound(&node, &host.image),
        "{node} outlived the failed add"
    );
}
