//! `bootmenu::choose` on a generated Debian-like disk: an MBR with /boot
//! (ext4, Debian's grub.cfg, an 8 MiB kernel and a 32 MiB initrd) on
//! partition 1 and / on partition 2. Needs mke2fs and sfdisk.
//!
//!     cargo bench -p bootmenu
//!
//! `BOOTMENU_BENCH_KEEP=DIR` builds the image in DIR and keeps it (to time
//! pygrub on the same image, docs/bootloader-builtin.md).

use std::path::PathBuf;
use std::sync::OnceLock;

#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    divan::main();
}

const GRUB_CFG: &str = include_str!("../tests/data/debian-grub.cfg");

fn image() -> &'static PathBuf {
    static IMG: OnceLock<(Option<tempfile::TempDir>, PathBuf)> = OnceLock::new();
    &IMG.get_or_init(|| {
        let (tmp, dir) = match std::env::var_os("BOOTMENU_BENCH_KEEP") {
            Some(d) => {
                std::fs::create_dir_all(&d).unwrap();
                (None, PathBuf::from(d))
            }
            None => {
                let t = tempfile::tempdir().unwrap();
                let p = t.path().to_owned();
                (Some(t), p)
            }
        };
        // The grub.cfg's paths are /boot/...: a /boot/boot link, as
        // Debian's separate /boot partitions often have, serves them.
        let boot = common::Tree::new()
            .file("/vmlinuz-b", common::payload("<kernel>", 8 << 20))
            .file("/initrd-b", common::payload("<initrd>", 32 << 20))
            .file("/vmlinuz-a", common::payload("<old>", 1 << 20))
            .file("/initrd-a", common::payload("<oldrd>", 1 << 20))
            .file("/grub/grub.cfg", GRUB_CFG)
            .link("/boot", ".");
        let root = common::Tree::new().file("/etc/hostname", "bench\n");
        let boot = common::mkfs(&dir, "boot", &boot, "ext4", 64 << 10);
        let root = common::mkfs(&dir, "root", &root, "ext4", 16 << 10);
        let disk = common::disk(
            &dir,
            "bench",
            "dos",
            &[
                common::part("83", Some(boot), 64),
                common::part("83", Some(root), 16),
            ],
        );
        (tmp, disk)
    })
    .1
}

#[divan::bench(sample_count = 20)]
fn choose_debian_disk() -> usize {
    let f = std::fs::File::open(image()).unwrap();
    let c = bootmenu::choose(f, &bootmenu::Hints::default(), &bootmenu::Limits::default()).unwrap();
    assert_eq!(c.kernel.len(), 8 << 20);
    c.kernel.len() + c.ramdisk.map_or(0, |r| r.len())
}
