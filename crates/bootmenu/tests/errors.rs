//! `choose`'s errors name what failed: the partition, the file inside the
//! guest, the configuration file and line, the size and the cap.

mod common;

use bootmenu::{Hints, Limits};
use common::{disk, mkfs, part, payload, Tree};

fn choose(img: &std::path::Path, hints: &Hints, limits: &Limits) -> String {
    let f = std::fs::File::open(img).unwrap();
    match bootmenu::choose(f, hints, limits) {
        Ok(c) => panic!("{} booted {}", img.display(), c.kernel_path),
        Err(e) => e.to_string(),
    }
}

#[test]
fn errors_name_the_place_the_file_and_the_bound() {
    if !common::have_tools() {
        eprintln!("SKIP: mke2fs or sfdisk missing");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cfg = "menuentry 'K' {\n linux /boot/vmlinuz root=/dev/xvda1\n initrd /boot/initrd\n}\n";
    let tree = Tree::new()
        .file("/boot/vmlinuz", payload("<k>", 5000))
        .file("/boot/initrd", payload("<i>", 9000))
        .file("/boot/grub/grub.cfg", cfg);
    let fs = mkfs(dir, "ok", &tree, "ext4", 4096);
    let img = disk(dir, "ok", "dos", &[part("83", Some(fs), 4)]);
    let small = Limits {
        max_kernel: 4096,
        ..Limits::default()
    };
    assert_eq!(
        choose(&img, &Hints::default(), &small),
        "the kernel /boot/vmlinuz on MBR partition 1 (type 0x83) is 5000 bytes, more than the 4096-byte cap"
    );
    let small = Limits {
        max_ramdisk: 8192,
        ..Limits::default()
    };
    assert_eq!(
        choose(&img, &Hints::default(), &small),
        "the ramdisk /boot/initrd on MBR partition 1 (type 0x83) is 9000 bytes, more than the 8192-byte cap"
    );
    let hints = Hints {
        kernel: Some("/boot/nothing".into()),
        ..Hints::default()
    };
    assert_eq!(
        choose(&img, &hints, &Limits::default()),
        "cannot read the kernel /boot/nothing from MBR partition 1 (type 0x83): file not found"
    );

    let bad = Tree::new().file(
        "/boot/grub/grub.cfg",
        "set default=0\nmenuentry 'A' {\n linux (hd0,x)/k\n}\n",
    );
    let fs = mkfs(dir, "bad", &bad, "ext4", 4096);
    let img = disk(
        dir,
        "bad",
        "dos",
        &[part("83", None, 2), part("83", Some(fs), 4)],
    );
    let e = choose(&img, &Hints::default(), &Limits::default());
    assert!(
        e.starts_with("no partition of the disk has a bootable configuration: "),
        "{e}"
    );
    assert!(
        e.contains("MBR partition 1 (type 0x83): not an ext2/3/4 file system"),
        "{e}"
    );
    assert!(
        e.contains("MBR partition 2 (type 0x83): /boot/grub/grub.cfg:3: device \"(hd0,x\" has no partition number"),
        "{e}"
    );
}
