//! `menu` shows the entries `choose` picks from, and an entry picked from it by index boots
//! that entry.

mod common;

use bootmenu::{Hints, Limits, MenuView};
use common::{disk, mkfs, part, payload, Tree};

#[test]
fn the_menu_is_the_one_choose_picks_from() {
    if !common::have_tools() {
        eprintln!("SKIP: mke2fs or sfdisk missing");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Partition 1 has a grub.cfg with no entries (pygrub moves on); partition 2 the menu.
    let empty = mkfs(
        dir,
        "empty",
        &Tree::new().file("/boot/grub/grub.cfg", "set timeout=5\n"),
        "ext4",
        2048,
    );
    let cfg = "set default=\"2\"\n\
        menuentry 'Debian' {\n linux /boot/vmlinuz-a root=/dev/xvda2 a\n}\n\
        submenu 'Advanced' {\n menuentry 'Debian, recovery' {\n  linux /boot/vmlinuz-b b\n }\n\
         menuentry 'Debian, old' {\n  linux /boot/vmlinuz-c c\n }\n}\n";
    let tree = Tree::new()
        .file("/boot/vmlinuz-a", payload("<a>", 3000))
        .file("/boot/vmlinuz-b", payload("<b>", 3000))
        .file("/boot/vmlinuz-c", payload("<c>", 3000))
        .file("/boot/grub/grub.cfg", cfg);
    let root = mkfs(dir, "root", &tree, "ext4", 4096);
    let img = disk(
        dir,
        "two",
        "dos",
        &[part("83", Some(empty), 3), part("83", Some(root), 5)],
    );
    let open = || std::fs::File::open(&img).unwrap();
    let view: MenuView = bootmenu::menu(open(), &Limits::default())
        .unwrap()
        .expect("a menu");
    assert_eq!(
        view.titles,
        ["Debian", "Debian, recovery", "Debian, old"],
        "{view:?}"
    );
    assert_eq!(view.default, 2);
    assert!(view.source.contains("partition 2"), "{}", view.source);
    // The default is what choose boots; each index boots its entry.
    let boot = |entry: Option<String>| {
        bootmenu::choose(
            open(),
            &Hints {
                entry,
                ..Hints::default()
            },
            &Limits::default(),
        )
        .unwrap()
        .kernel_path
    };
    assert_eq!(boot(None), "/boot/vmlinuz-c");
    for (i, k) in ["a", "b", "c"].iter().enumerate() {
        assert_eq!(boot(Some(i.to_string())), format!("/boot/vmlinuz-{k}"));
    }

    // A disk with no menu anywhere: the same refusal as choose's.
    let bare = disk(dir, "bare", "dos", &[part("83", None, 2)]);
    let e = bootmenu::menu(std::fs::File::open(&bare).unwrap(), &Limits::default()).unwrap_err();
    assert!(e.to_string().starts_with("no partition"), "{e}");
}
