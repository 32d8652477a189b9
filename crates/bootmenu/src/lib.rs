//! rxl's built-in bootloader library: from a guest's disk image, the kernel,
//! ramdisk and command line pygrub 4.17 would boot, read without running
//! any code from the guest and within fixed bounds.
//!
//! [`choose`] follows pygrub's order: the places of [`partition::find`],
//! on each an ext2/3/4 file system (read through `ext4-view`, bounded by
//! the partition), the `--kernel` hint or NetWare's loader, else the first
//! configuration file of [`CONFIG_FILES`] that exists, parsed by its
//! syntax's parser, its entry chosen by [`menu::Menu::select`]. The first
//! place that yields a kernel path wins; the kernel and ramdisk are then
//! read from it with the caps of [`Limits`]. docs/bootloader-builtin.md
//! lists the rules and the differences from pygrub.

#![forbid(unsafe_code)]

pub mod extlinux;
mod fs;
pub mod grub;
pub mod menu;
pub mod partition;
pub mod pytext;

use std::cell::RefCell;
use std::io::{Read, Seek, SeekFrom};
use std::rc::Rc;

pub use menu::{ConfigError, Entry, Menu};

/// The syntaxes pygrub knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// GRUB 2 `grub.cfg`.
    Grub2,
    /// extlinux / isolinux.
    Extlinux,
    /// GRUB legacy `menu.lst` / `grub.conf`.
    Grub1,
}

/// pygrub 4.17's configuration files, in the order it looks for them.
pub const CONFIG_FILES: &[(&str, Syntax)] = &[
    ("/boot/grub/grub.cfg", Syntax::Grub2),
    ("/grub/grub.cfg", Syntax::Grub2),
    ("/boot/grub2/grub.cfg", Syntax::Grub2),
    ("/grub2/grub.cfg", Syntax::Grub2),
    ("/boot/isolinux/isolinux.cfg", Syntax::Extlinux),
    ("/boot/extlinux/extlinux.conf", Syntax::Extlinux),
    ("/boot/extlinux.conf", Syntax::Extlinux),
    ("/extlinux/extlinux.conf", Syntax::Extlinux),
    ("/extlinux.conf", Syntax::Extlinux),
    ("/boot/grub/menu.lst", Syntax::Grub1),
    ("/boot/grub/grub.conf", Syntax::Grub1),
    ("/grub/menu.lst", Syntax::Grub1),
    ("/grub/grub.conf", Syntax::Grub1),
];

/// NetWare's loader: when it exists (and no `--kernel` is given) pygrub
/// boots it with the hints' ramdisk and arguments.
pub const NETWARE_LOADER: &str = "/nwserver/xnloader.sys";

/// Parse a configuration file of the given syntax.
pub fn parse_config(syntax: Syntax, text: &str, file: &str) -> Result<Menu, ConfigError> {
    match syntax {
        Syntax::Grub2 => grub::parse_grub2(text, file),
        Syntax::Extlinux => extlinux::parse_extlinux(text, file),
        Syntax::Grub1 => grub::parse_grub1(text, file),
    }
}

/// The bounds of one [`choose`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The largest kernel read, in bytes.
    pub max_kernel: u64,
    /// The largest ramdisk read, in bytes.
    pub max_ramdisk: u64,
    /// How much of a configuration file is read (the rest is ignored, as
    /// pygrub reads only its first MiB).
    pub max_config: u64,
}

impl Default for Limits {
    /// 128 MiB for the kernel and the ramdisk (pygrub's RLIMIT_FSIZE in
    /// 4.17), 1 MiB of configuration file (pygrub's FS_READ_MAX).
    fn default() -> Self {
        Limits {
            max_kernel: 128 << 20,
            max_ramdisk: 128 << 20,
            max_config: 1 << 20,
        }
    }
}

/// pygrub's `--kernel`, `--ramdisk`, `--args` and `--entry`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hints {
    /// Boot this kernel path and skip the configuration files.
    pub kernel: Option<String>,
    /// With `kernel`: the ramdisk path (ignored without `kernel`, as in
    /// pygrub).
    pub ramdisk: Option<String>,
    /// With `kernel`: the whole command line; else appended to the chosen
    /// entry's after a space.
    pub args: Option<String>,
    /// The entry to boot: an index, else a title.
    pub entry: Option<String>,
}

/// What to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The chosen entry's title (`None` for `--kernel` and NetWare).
    pub title: Option<String>,
    /// Where the kernel is, where it was found (which place and which
    /// file told), for messages.
    pub source: String,
    /// The kernel's path inside the guest.
    pub kernel_path: String,
    /// The kernel's bytes.
    pub kernel: Vec<u8>,
    /// The ramdisk's path inside the guest.
    pub ramdisk_path: Option<String>,
    /// The ramdisk's bytes.
    pub ramdisk: Option<Vec<u8>>,
    /// The command line ("" for none, which pygrub does not print).
    pub args: String,
}

/// Why nothing can be booted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The disk image cannot be read.
    #[error("cannot read the disk image: {0}")]
    Disk(#[source] std::io::Error),
    /// The partition table is damaged beyond what pygrub reads.
    #[error(transparent)]
    Table(#[from] partition::TableError),
    /// No place gave a kernel; one reason per place tried.
    #[error("no partition of the disk has a bootable configuration: {}", .0.join("; "))]
    NothingToBoot(Vec<String>),
    /// The kernel or ramdisk cannot be read.
    #[error("cannot read the {what} {path} from {place}: {reason}")]
    File {
        /// "kernel" or "ramdisk".
        what: &'static str,
        /// The path inside the guest.
        path: String,
        /// The partition.
        place: String,
        /// Why.
        reason: String,
    },
    /// The kernel or ramdisk is larger than its cap.
    #[error("the {what} {path} on {place} is {size} bytes, more than the {cap}-byte cap")]
    TooLarge {
        /// "kernel" or "ramdisk".
        what: &'static str,
        /// The path inside the guest.
        path: String,
        /// The partition.
        place: String,
        /// Its size.
        size: u64,
        /// The cap.
        cap: u64,
    },
    /// pygrub's simple0 output cannot carry a NUL in the command line.
    #[error("the command line chosen from {origin} contains a NUL byte, which the output format cannot carry")]
    NulInArgs {
        /// Where it came from.
        origin: String,
    },
}

/// What one place decided before the files are read.
struct Pick {
    title: Option<String>,
    source: String,
    kernel: String,
    ramdisk: Option<String>,
    args: String,
}

/// The configuration file pygrub would read on one file system, parsed:
/// the menu and where it came from; the error is why pygrub would move on
/// to the next place.
fn load_menu(fs: &fs::Fs, place: &str, limits: &Limits) -> Result<(Menu, String), String> {
    let Some(&(file, syntax)) = CONFIG_FILES.iter().find(|(f, _)| fs.exists(f)) else {
        return Err(format!(
            "{place}: no configuration file (looked for {})",
            CONFIG_FILES.len()
        ));
    };
    let bytes = fs
        .read_prefix(file, limits.max_config)
        .map_err(|e| format!("{place}: cannot read {file}: {e}"))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| format!("{place}: {file} is not UTF-8 text: {e}"))?;
    let menu = parse_config(syntax, text, file).map_err(|e| format!("{place}: {e}"))?;
    if menu.entries.is_empty() {
        return Err(format!("{place}: {file} has no entries"));
    }
    Ok((menu, file.to_owned()))
}

/// The menu half of pygrub's `run_grub` on one file system; the error is
/// why pygrub would move on to the next place.
fn pick_from_menu(
    fs: &fs::Fs,
    place: &str,
    hints: &Hints,
    limits: &Limits,
) -> Result<Pick, String> {
    let (menu, file) = load_menu(fs, place, limits)?;
    let sel = menu
        .select(hints.entry.as_deref())
        .ok_or_else(|| format!("{place}: {file} has no entries"))?;
    let e = &menu.entries[sel];
    let kernel = match e.kernel.as_deref() {
        Some(k) if !k.is_empty() => k.to_owned(),
        _ => {
            return Err(format!(
                "{place}: {file}: entry {sel} ({:?}) has no kernel",
                e.title
            ))
        }
    };
    let mut args = e.args.clone().unwrap_or_default();
    if let Some(a) = hints.args.as_deref().filter(|a| !a.is_empty()) {
        args.push(' ');
        args.push_str(a);
    }
    Ok(Pick {
        title: Some(e.title.clone()),
        source: format!("{file} on {place}"),
        kernel,
        ramdisk: e.initrd.clone().filter(|r| !r.is_empty()),
        args,
    })
}

/// Choose what to boot from `disk` exactly as pygrub 4.17 would with
/// `--quiet` and these hints, and read the kernel and ramdisk.
///
/// The disk is only read. Every size, count and loop is bounded (see
/// docs/bootloader-builtin.md); a damaged or hostile image gives an
/// [`Error`], never a panic.
pub fn choose<D: Read + Seek + 'static>(
    disk: D,
    hints: &Hints,
    limits: &Limits,
) -> Result<Choice, Error> {
    first_place(disk, |fs, place| {
        let hint_kernel = hints.kernel.as_deref().filter(|k| !k.is_empty());
        let pick = if let Some(k) =
            hint_kernel.or_else(|| fs.exists(NETWARE_LOADER).then_some(NETWARE_LOADER))
        {
            Pick {
                title: None,
                source: format!(
                    "{place} ({})",
                    if hint_kernel.is_some() {
                        "--kernel"
                    } else {
                        "NetWare"
                    }
                ),
                kernel: k.to_owned(),
                ramdisk: hints.ramdisk.clone().filter(|r| !r.is_empty()),
                args: hints.args.clone().unwrap_or_default(),
            }
        } else {
            pick_from_menu(fs, place, hints, limits)?
        };
        Ok(finish(fs, place, pick, limits))
    })?
}

/// The boot menu [`choose`] would pick from (without `--kernel`): its
/// titles in order and the entry booted by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuView {
    /// The entries' titles, submenus flattened, in file order.
    pub titles: Vec<String>,
    /// The index of the entry [`choose`] boots without `--entry`.
    pub default: usize,
    /// The configuration file and partition it comes from.
    pub source: String,
}

/// The menu [`choose`] would pick from on `disk`, read as [`choose`]
/// reads it (same places, same files, same bounds), without reading any
/// kernel. `None` when the disk boots without a menu (NetWare's loader).
/// An entry chosen from it, given to [`choose`] (or pygrub) as
/// `Hints::entry` by its index, boots that entry.
pub fn menu<D: Read + Seek + 'static>(disk: D, limits: &Limits) -> Result<Option<MenuView>, Error> {
    first_place(disk, |fs, place| {
        if fs.exists(NETWARE_LOADER) {
            return Ok(None);
        }
        let (menu, file) = load_menu(fs, place, limits)?;
        let default = menu.select(None).unwrap_or(0);
        Ok(Some(MenuView {
            titles: menu.entries.into_iter().map(|e| e.title).collect(),
            default,
            source: format!("{file} on {place}"),
        }))
    })
}

/// pygrub's walk over the disk: each place of [`partition::find`] in turn,
/// its file system opened, until `at` gives an answer; each place's error
/// (why pygrub moves on) is kept for the message when none does.
fn first_place<D: Read + Seek + 'static, T>(
    mut disk: D,
    mut at: impl FnMut(&fs::Fs, &str) -> Result<T, String>,
) -> Result<T, Error> {
    let disk_len = disk.seek(SeekFrom::End(0)).map_err(Error::Disk)?;
    let places = partition::find(&mut disk, disk_len)?;
    let disk: fs::SharedDisk = Rc::new(RefCell::new(disk));
    let mut reasons = Vec::new();
    for place in places {
        let fs = match fs::Fs::open(disk.clone(), &place) {
            Ok(fs) => fs,
            Err(e) => {
                reasons.push(format!("{}: {e}", place.name));
                continue;
            }
        };
        match at(&fs, &place.name) {
            Ok(found) => return Ok(found),
            Err(r) => reasons.push(r),
        }
    }
    Err(Error::NothingToBoot(reasons))
}

fn finish(fs: &fs::Fs, place: &str, pick: Pick, limits: &Limits) -> Result<Choice, Error> {
    if pick.args.contains('\0') {
        return Err(Error::NulInArgs {
            origin: pick.source,
        });
    }
    let kernel = fs.read_capped("kernel", &pick.kernel, limits.max_kernel, place)?;
    let ramdisk = match &pick.ramdisk {
        Some(r) => Some(fs.read_capped("ramdisk", r, limits.max_ramdisk, place)?),
        None => None,
    };
    Ok(Choice {
        title: pick.title,
        source: pick.source,
        kernel_path: pick.kernel,
        kernel,
        ramdisk_path: pick.ramdisk,
        ramdisk,
        args: pick.args,
    })
}
