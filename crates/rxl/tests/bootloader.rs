//! `bootloader = "rxl"` end to end on the simulated host: rxl runs its own `rxl bootloader`
//! on an ext4 image made with `mke2fs -d` and boots the default entry (its ramdisk in the
//! layout; its cmdline as `rxl bootloader` prints it, checked below and, for what the guest
//! gets, by the toolstack's tests); a hostile image fails the create and leaves nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{json, ok, stderr, stdout, Sim};

/// An ext4 image `dir/disk.img` holding the test guest as /boot/vmlinuz-1 and a grub.cfg
/// with two entries whose default is entry `default`: the first with an 8-byte ramdisk, the
/// second with a 10-byte one.
fn grub_image(dir: &Path, default: u32) -> PathBuf {
    let kernel = std::fs::read(common::guest_dir().join("hello.elf")).expect("read hello.elf");
    grub_image_with(dir, default, &kernel)
}

/// [`grub_image`] with `kernel` as /boot/vmlinuz-1.
fn grub_image_with(dir: &Path, default: u32, kernel: &[u8]) -> PathBuf {
    let root = dir.join("root");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("boot/grub")).expect("mkdir");
    std::fs::write(root.join("boot/vmlinuz-1"), kernel).expect("kernel");
    std::fs::write(root.join("boot/initrd.img-1"), b"INITRD-1").expect("initrd");
    std::fs::write(root.join("boot/initrd.img-2"), b"INITRD-TWO").expect("initrd");
    std::fs::write(
        root.join("boot/grub/grub.cfg"),
        format!("set default=\"{default}\"\n\
         menuentry 'first' {{\n  linux /boot/vmlinuz-1 root=/dev/xvda1 first\n  initrd /boot/initrd.img-1\n}}\n\
         menuentry 'second' {{\n  linux /boot/vmlinuz-1 root=/dev/xvda1 second\n  initrd /boot/initrd.img-2\n}}\n"),
    )
    .expect("grub.cfg");
    let img = dir.join("disk.img");
    std::fs::write(&img, vec![0u8; 8 << 20]).expect("image");
    let out = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-d"])
        .arg(&root)
        .arg(&img)
        .output()
        .expect("run mke2fs (e2fsprogs)");
    assert!(
        out.status.success(),
        "mke2fs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    img
}

fn config(dir: &Path, name: &str, img: &Path) -> PathBuf {
    let cfg = dir.join(format!("{name}.cfg"));
    std::fs::write(
        &cfg,
        format!(
            "name = \"{name}\"\ntype = \"pvh\"\nmemory = 32\nbootloader = \"rxl\"\n\
             extra = \"console=hvc0\"\ndisk = [ '{},raw,xvda,w' ]\n",
            img.display()
        ),
    )
    .expect("cfg");
    cfg
}

fn leftovers(sim: &Sim) -> Vec<PathBuf> {
    std::fs::read_dir(sim.state().join("bootloader"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn rxl_s_own_bootloader_boots_the_default_entry_of_an_ext4_image() {
    let sim = Sim::new();
    let work = tempfile::tempdir().expect("tmp");
    let img = grub_image(work.path(), 1);
    let cfg = config(work.path(), "fromdisk", &img);
    let cfg = cfg.to_str().expect("utf-8");

    // The dry run runs the bootloader too: its layout has the extracted ramdisk.
    let plan = json(&ok(sim.run(&["create", "-n", "--json", cfg])));
    let layout = &plan["layout"];
    assert_eq!(layout["modules"][0]["size"], 10, "{layout}");
    assert!(layout["cmdline"]["paddr"].is_u64(), "{layout}");
    assert_eq!(leftovers(&sim), Vec::<PathBuf>::new());

    let o = ok(sim.run(&["create", "-e", cfg]));
    let dom: u64 = stdout(&o).trim().parse().expect("domid");
    assert_eq!(sim.domain("fromdisk").expect("created")["domid"], dom);
    assert_eq!(leftovers(&sim), Vec::<PathBuf>::new());
    let log = std::fs::read_to_string(sim.state().join(format!(
        "log/bootloader.{}.log",
        "fromdisk".bytes().map(|b| format!("{b:02x}")).collect::<String>()
    )))
    .expect("bootloader log");
    // The cmdline is not logged (it may hold secrets), only its size; what was chosen is.
    assert!(
        log.contains(" bootloader --args=(12 bytes) --runas="),
        "{log}"
    );
    assert!(
        log.trim_end()
            .ends_with("rxl: chose a kernel of 6636 bytes, a ramdisk of 10 bytes"),
        "{log}"
    );
}

/// A compressed kernel the bootloader extracts goes through the kernel cache: the first
/// create fills one entry, a later create from the same disk hits it (only a hit
/// refreshes the entry's last use, which is aged in between).
#[test]
fn a_second_create_of_the_same_disk_hits_the_kernel_cache() {
    use std::io::Write as _;
    let sim = Sim::new();
    let work = tempfile::tempdir().expect("tmp");
    let elf = std::fs::read(common::guest_dir().join("hello.elf")).expect("read hello.elf");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&elf).expect("gzip");
    let img = grub_image_with(work.path(), 0, &gz.finish().expect("gzip"));
    let entries = || {
        let v = json(&ok(sim.run(&["kernel-cache", "list", "--json"])));
        v["entries"].as_array().expect("entries").clone()
    };
    assert!(entries().is_empty());
    let cfg = config(work.path(), "one", &img);
    ok(sim.run(&["create", "-e", cfg.to_str().expect("utf-8")]));
    let e = entries();
    assert_eq!(e.len(), 1, "{e:?}");
    let hash = e[0]["hash"].as_str().expect("hash").to_string();
    let entry = sim.dir.path().join("var/cache/rxl/kernels").join(&hash);
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(946_684_800);
    std::fs::File::options()
        .write(true)
        .open(&entry)
        .expect("open entry")
        .set_modified(old)
        .expect("set mtime");
    // The same disk again (read-write: its first guest goes first).
    ok(sim.run(&["destroy", "one"]));
    let cfg = config(work.path(), "two", &img);
    ok(sim.run(&["create", "-e", cfg.to_str().expect("utf-8")]));
    let e = entries();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0]["hash"], hash.as_str());
    assert!(
        e[0]["last_use"].as_u64().expect("last_use") > 946_684_800 + 86_400,
        "{e:?}"
    );
}

/// The guest changes its grub.cfg's default: at the next reboot the monitor runs the
/// bootloader again and boots the new default (its ramdisk's size is in the log).
#[test]
fn a_reboot_boots_the_new_default_entry() {
    let sim = Sim::new();
    let work = tempfile::tempdir().expect("tmp");
    let img = grub_image(work.path(), 1);
    let cfg = config(work.path(), "rebooted", &img);
    ok(sim.run(&["create", "-q", cfg.to_str().expect("utf-8")]));
    let first = sim.domain("rebooted").expect("created")["domid"].clone();
    let log_path = sim.state().join(format!(
        "log/bootloader.{}.log",
        "rebooted"
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    let log = std::fs::read_to_string(&log_path).expect("log");
    assert!(log.trim_end().ends_with("a ramdisk of 10 bytes"), "{log}");

    // Inside the guest: `grub-set-default 0`, here by writing the image anew.
    grub_image(work.path(), 0);
    ok(sim.run(&["reboot", "-w", "rebooted"]));
    sim.wait_for("the restarted guest", |s| {
        s.domain("rebooted")
            .is_some_and(|d| d["domid"] != first && d["state"] != "--p---")
    });
    let log = std::fs::read_to_string(&log_path).expect("log");
    assert_eq!(log.matches("rxl: chose").count(), 2, "{log}");
    assert!(log.trim_end().ends_with("a ramdisk of 8 bytes"), "{log}");
    assert_eq!(leftovers(&sim), Vec::<PathBuf>::new());
}

#[test]
fn a_hostile_image_fails_the_create_cleanly() {
    let sim = Sim::new();
    let work = tempfile::tempdir().expect("tmp");
    // Not a file system: a partition table whose one partition points past the end.
    let mut bytes = vec![0u8; 1 << 20];
    bytes[446 + 4] = 0x83;
    bytes[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
    bytes[446 + 12..446 + 16].copy_from_slice(&0xffff_0000u32.to_le_bytes());
    bytes[510] = 0x55;
    bytes[511] = 0xaa;
    let img = work.path().join("hostile.img");
    std::fs::write(&img, bytes).expect("image");
    let cfg = config(work.path(), "hostile", &img);
    let o = sim.run(&["create", cfg.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("bootloader ") && err.contains(" failed: it exited with status 1"),
        "{err}"
    );
    assert!(err.contains("its last output:"), "{err}");
    assert!(sim.domain("hostile").is_none());
    assert_eq!(leftovers(&sim), Vec::<PathBuf>::new());
}

/// `rxl bootloader` as pygrub: the same items for the same image.
#[test]
fn rxl_bootloader_writes_pygrub_s_simple0_output() {
    let work = tempfile::tempdir().expect("tmp");
    let img = grub_image(work.path(), 1);
    let out_dir = work.path().join("out");
    std::fs::create_dir(&out_dir).expect("mkdir");
    let out = work.path().join("output");
    let o = ok(common::rxl(&[
        "bootloader",
        "--args=extra",
        "--entry=0",
        "-q",
        &format!("--output={}", out.display()),
        "--output-format=simple0",
        &format!("--output-directory={}", out_dir.display()),
        img.to_str().expect("utf-8"),
    ]));
    assert_eq!(stderr(&o), "");
    let text = std::fs::read(&out).expect("output");
    let items: Vec<&[u8]> = text.split(|&b| b == 0).collect();
    let kernel = std::str::from_utf8(items[0]).expect("utf-8");
    let kernel = kernel.strip_prefix("kernel ").expect("kernel item");
    assert_eq!(
        std::fs::read(kernel).expect("kernel"),
        std::fs::read(common::guest_dir().join("hello.elf")).expect("guest")
    );
    assert!(items[1].starts_with(b"ramdisk "));
    assert_eq!(items[2], b"args root=/dev/xvda1 first extra");
    assert_eq!(&items[3..], [&b""[..], &b""[..]]);
}

/// Ctrl-C (SIGINT) while the bootloader runs: rxl kills it and its group, removes its
/// private directory and fails the create; nothing is left.
#[test]
fn an_interrupt_during_the_bootloader_leaves_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let sim = Sim::new();
    let work = tempfile::tempdir().expect("tmp");
    let pidfile = work.path().join("sleeper");
    let script = work.path().join("slowgrub");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nsleep 600 &\necho $! > {}\nkill -INT $PPID\nwait\n",
            pidfile.display()
        ),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let img = work.path().join("any.img");
    std::fs::write(&img, vec![0u8; 4096]).expect("image");
    let cfg = config(work.path(), "interrupted", &img);
    let text = std::fs::read_to_string(&cfg).expect("cfg").replace(
        "bootloader = \"rxl\"",
        &format!("bootloader = \"{}\"", script.display()),
    );
    std::fs::write(&cfg, text).expect("cfg");
    let t = std::time::Instant::now();
    let o = sim.run(&["create", cfg.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("interrupted by SIGINT"),
        "{}",
        stderr(&o)
    );
    assert!(t.elapsed() < std::time::Duration::from_secs(60));
    assert_eq!(leftovers(&sim), Vec::<PathBuf>::new());
    assert!(sim.domain("interrupted").is_none());
    let pid = std::fs::read_to_string(&pidfile).expect("pid");
    let alive = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
        .is_ok_and(|s| !s.contains(") Z "));
    assert!(!alive, "the bootloader's child {} was killed", pid.trim());
}

/// An unknown `bootloader_user` fails the creates that run a bootloader, naming the key;
/// a guest that boots its kernel directly is created as before.
#[test]
fn an_unknown_bootloader_user_refuses_only_bootloader_creates() {
    let sim = Sim::new();
    let etc = sim.dir.path().join("etc");
    std::fs::create_dir_all(&etc).expect("mkdir etc");
    std::fs::write(
        etc.join("rxl.conf"),
        "bootloader_user = \"no-such-user-rxl\"\n",
    )
    .expect("rxl.conf");
    let work = tempfile::tempdir().expect("tmp");
    let img = grub_image(work.path(), 1);
    let cfg = config(work.path(), "needsuser", &img);
    let o = sim.run(&["create", "-e", cfg.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("bootloader_user = \"no-such-user-rxl\" in rxl.conf: no such user"),
        "{}",
        stderr(&o)
    );
    assert!(sim.domain("needsuser").is_none());
    assert_eq!(leftovers(&sim), Vec::<PathBuf>::new());

    let direct = work.path().join("direct.cfg");
    std::fs::write(
        &direct,
        format!(
            "name = \"direct\"\ntype = \"pvh\"\nmemory = 32\nkernel = \"{}\"\n",
            common::guest_dir().join("hello.elf").display()
        ),
    )
    .expect("cfg");
    ok(sim.run(&["create", "-e", direct.to_str().expect("utf-8")]));
    assert!(sim.domain("direct").is_some());
}

/// `rxl bootloader --list-entries`: the menu the default comes from, and no kernel or
/// ramdisk file made.
#[test]
fn rxl_bootloader_lists_the_menu_entries() {
    let work = tempfile::tempdir().expect("tmp");
    let img = grub_image(work.path(), 1);
    let out_dir = work.path().join("out");
    std::fs::create_dir(&out_dir).expect("mkdir");
    let out = work.path().join("output");
    ok(common::rxl(&[
        "bootloader",
        "--list-entries",
        "-q",
        &format!("--output={}", out.display()),
        "--output-format=simple0",
        &format!("--output-directory={}", out_dir.display()),
        img.to_str().expect("utf-8"),
    ]));
    let text = std::fs::read(&out).expect("output");
    assert_eq!(text, b"default 1\0title first\0title second\0\0");
    let menu = toolstack::bootloader::parse_menu(&text).expect("parse");
    assert_eq!(menu.titles, ["first", "second"]);
    assert_eq!(
        std::fs::read_dir(&out_dir).expect("out dir").count(),
        0,
        "no kernel or ramdisk file"
    );
}
