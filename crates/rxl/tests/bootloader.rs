//! `bootloader = "rxl"` end to end on the simulated host: rxl runs its own `rxl bootloader`
//! on an ext4 image made with `mke2fs -d` and boots the default entry (its ramdisk in the
//! layout; its cmdline as `rxl bootloader` prints it, checked below and, for what the guest
//! gets, by the toolstack's tests); a hostile image fails the create and leaves nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{json, ok, stderr, stdout, Sim};

/// An ext4 image in `dir` holding the test guest as /boot/vmlinuz-1, a ramdisk, and a
/// grub.cfg with two entries whose default is the second.
fn grub_image(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("boot/grub")).expect("mkdir");
    std::fs::copy(
        common::guest_dir().join("hello.elf"),
        root.join("boot/vmlinuz-1"),
    )
    .expect("kernel");
    std::fs::write(root.join("boot/initrd.img-1"), b"INITRD-1").expect("initrd");
    std::fs::write(
        root.join("boot/grub/grub.cfg"),
        "set default=\"1\"\n\
         menuentry 'first' {\n  linux /boot/vmlinuz-1 root=/dev/xvda1 first\n  initrd /boot/initrd.img-1\n}\n\
         menuentry 'second' {\n  linux /boot/vmlinuz-1 root=/dev/xvda1 second\n  initrd /boot/initrd.img-1\n}\n",
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
    let img = grub_image(work.path());
    let cfg = config(work.path(), "fromdisk", &img);
    let cfg = cfg.to_str().expect("utf-8");

    // The dry run runs the bootloader too: its layout has the extracted ramdisk.
    let plan = json(&ok(sim.run(&["create", "-n", "--json", cfg])));
    let layout = &plan["layout"];
    assert_eq!(layout["modules"][0]["size"], 8, "{layout}");
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
    assert!(
        log.contains(" bootloader --args=console=hvc0 --runas="),
        "{log}"
    );
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
    let img = grub_image(work.path());
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
