//! The pure part of the block checks: access modes, device numbers as the block script
//! writes them, dom0's mounts, and whether a disk may be shared.
//!
//! Facts from Xen 4.17's tools/hotplug/Linux/block and block-common.sh
//! (`canonicalise_mode`, `device_major_minor`, `check_sharing`, `same_vm`).

use std::fmt;

/// A disk's access mode, as the block script reduces the backend's `mode` node to one
/// of three (`canonicalise_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// No `w`: read-only.
    Read,
    /// A `w` and no `!`: read-write, checked.
    Write,
    /// A `w` and a `!` (`w!`, `rw!`): read-write, with the sharing checks skipped.
    Force,
}

impl Mode {
    /// Reduce a `mode` node: no `w` anywhere is read-only (so `r`, `ro` and even an empty
    /// or unknown value are read-only), `w` is read-write, `w` with a `!` is forced.
    pub fn parse(mode: &str) -> Mode {
        if !mode.contains('w') {
            Mode::Read
        } else if mode.contains('!') {
            Mode::Force
        } else {
            Mode::Write
        }
    }

    /// Whether the guest may write through the device.
    pub fn writes(self) -> bool {
        self != Mode::Read
    }
}

/// A device number split as the kernel shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DevNum {
    /// Major.
    pub major: u64,
    /// Minor.
    pub minor: u64,
}

impl DevNum {
    /// From an `st_rdev` / `st_dev` value (glibc's `makedev` encoding).
    pub fn from_raw(dev: u64) -> DevNum {
        DevNum {
            major: nix::sys::stat::major(dev),
            minor: nix::sys::stat::minor(dev),
        }
    }

    /// Parse `MAJOR:MINOR` in lowercase or uppercase hex (a `physical-device` node), as
    /// blkback reads it (`%x:%x`).
    pub fn parse_hex(s: &str) -> Option<DevNum> {
        let (a, b) = s.trim().split_once(':')?;
        let hex = |t: &str| {
            if t.is_empty() || !t.bytes().all(|c| c.is_ascii_hexdigit()) {
                None
            } else {
                u64::from_str_radix(t, 16).ok()
            }
        };
        Some(DevNum {
            major: hex(a)?,
            minor: hex(b)?,
        })
    }

    /// Parse `MAJOR:MINOR` in decimal (the third field of /proc/self/mountinfo).
    pub fn parse_decimal(s: &str) -> Option<DevNum> {
        let (a, b) = s.split_once(':')?;
        Some(DevNum {
            major: a.parse().ok()?,
            minor: b.parse().ok()?,
        })
    }
}

/// `MAJOR:MINOR` in lowercase hex without padding: what the block script writes to
/// `physical-device` (`stat -L -c %t:%T`) and what blkback parses.
impl fmt::Display for DevNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}:{:x}", self.major, self.minor)
    }
}

/// One mounted filesystem of dom0, from /proc/self/mountinfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The device the filesystem lives on.
    pub dev: DevNum,
    /// Where it is mounted.
    pub mount_point: String,
    /// Whether it is mounted read-write (the mount's own `rw`/`ro` and the superblock's:
    /// read-write only when both say `rw`, as /proc/mounts shows it).
    pub writable: bool,
}

/// Parse /proc/self/mountinfo (proc(5)): field 3 is the device, field 5 the mount point,
/// field 6 the mount's options; after the ` - ` separator come the type, the source and
/// the superblock's options. Lines that do not parse are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = left.split(' ').collect();
        let (Some(dev), Some(point), Some(opts)) = (f.get(2), f.get(4), f.get(5)) else {
            continue;
        };
        let Some(dev) = DevNum::parse_decimal(dev) else {
            continue;
        };
        let super_opts = right.split(' ').nth(2).unwrap_or("");
        let rw = |o: &str| o.split(',').any(|x| x == "rw");
        out.push(Mount {
            dev,
            mount_point: (*point).to_owned(),
            writable: rw(opts) && rw(super_opts),
        });
    }
    out
}

/// Another vbd using a device, as found under the backend directory in xenstore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherUser {
    /// Its frontend domain.
    pub domid: u32,
    /// Its devid.
    pub devid: String,
    /// Its `physical-device`.
    pub dev: DevNum,
    /// Its mode.
    pub mode: Mode,
    /// Whether its domain counts as the same guest as ours (the block script's
    /// `same_vm`: same `vm` uuid, one is the other's device-model target, or the other
    /// domain's `vm` node is already gone).
    pub same_vm: bool,
}

/// Why a disk may not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conflict {
    /// dom0 has it mounted (read-write, or at all when we want to write).
    Mounted {
        /// The device.
        dev: DevNum,
        /// Where.
        mount_point: String,
        /// Mounted read-write.
        writable: bool,
    },
    /// Another guest uses it (read-write, or at all when we want to write).
    Guest {
        /// The device.
        dev: DevNum,
        /// The other guest's domain.
        domid: u32,
        /// The other vbd.
        devid: String,
        /// The other vbd's mode.
        mode: Mode,
    },
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conflict::Mounted {
                dev,
                mount_point,
                writable,
            } => write!(
                f,
                "device {dev} is mounted {} in the privileged domain at {mount_point}",
                if *writable { "read-write" } else { "read-only" }
            ),
            Conflict::Guest {
                dev,
                domid,
                devid,
                mode,
            } => write!(
                f,
                "device {dev} is used {} by domain {domid} (vbd {devid})",
                if mode.writes() {
                    "read-write"
                } else {
                    "read-only"
                }
            ),
        }
    }
}

/// Whether a disk made of `devs` (the block device itself, or every loop device already
/// backed by the same file) may be used in `mode`: with `w`, nothing else may use any of
/// them; with `r`, nothing may use them read-write. `Force` skips the checks, as `w!`
/// does in the block script.
///
/// Stricter than the script on one point: another vbd in mode `w!` counts as a writer
/// (the script's `canonicalise_mode` turns it into `!`, which its read-only check does
/// not treat as `w`).
pub fn check_sharing(
    mode: Mode,
    devs: &[DevNum],
    mounts: &[Mount],
    others: &[OtherUser],
) -> Result<(), Conflict> {
    if mode == Mode::Force {
        return Ok(());
    }
    for m in mounts {
        if devs.contains(&m.dev) && (mode.writes() || m.writable) {
            return Err(Conflict::Mounted {
                dev: m.dev,
                mount_point: m.mount_point.clone(),
                writable: m.writable,
            });
        }
    }
    for o in others {
        if devs.contains(&o.dev) && !o.same_vm && (mode.writes() || o.mode.writes()) {
            return Err(Conflict::Guest {
                dev: o.dev,
                domid: o.domid,
                devid: o.devid.clone(),
                mode: o.mode,
            });
        }
    }
    Ok(())
}

/// The block script's `same_vm`, done as intended: two domains are the same guest when
/// their `vm` uuids are equal, or one's `vm` equals the `vm` of the other's `target`
/// (a device model and its guest). A missing `vm` on the other side counts as the same
/// guest (its domain is going away while its backend is still listed), as the script
/// says. Empty values never match: RELEASE-4.17.0's script turned its `-1` defaults into
/// two empty strings that always compared equal, so it never refused a disk used by
/// another guest (fixed upstream in 4.19, 4.17.5 and 4.18.3).
pub fn same_vm(
    our_vm: Option<&str>,
    our_target_vm: Option<&str>,
    other_vm: Option<&str>,
    other_target_vm: Option<&str>,
) -> bool {
    let Some(other_vm) = other_vm.filter(|v| !v.is_empty()) else {
        return true;
    };
    let eq = |a: Option<&str>, b: Option<&str>| matches!((a, b), (Some(a), Some(b)) if !a.is_empty() && a == b);
    eq(our_vm, Some(other_vm))
        || eq(our_target_vm, Some(other_vm))
        || eq(our_vm, other_target_vm)
        || eq(our_target_vm, other_target_vm)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOP0: DevNum = DevNum { major: 7, minor: 0 };
    const NVME: DevNum = DevNum {
        major: 259,
        minor: 1,
    };

    #[test]
    fn modes_as_the_script_reduces_them() {
        for (m, want) in [
            ("r", Mode::Read),
            ("ro", Mode::Read),
            ("", Mode::Read),
            ("x", Mode::Read),
            ("w", Mode::Write),
            ("rw", Mode::Write),
            ("w!", Mode::Force),
            ("rw!", Mode::Force),
            ("!", Mode::Read),
        ] {
            assert_eq!(Mode::parse(m), want, "{m:?}");
        }
        assert!(!Mode::Read.writes());
        assert!(Mode::Write.writes() && Mode::Force.writes());
    }

    #[test]
    fn device_numbers_in_lowercase_hex_like_stat_t_t() {
        assert_eq!(LOOP0.to_string(), "7:0");
        assert_eq!(NVME.to_string(), "103:1");
        assert_eq!(
            DevNum {
                major: 7,
                minor: 300
            }
            .to_string(),
            "7:12c"
        );
        assert_eq!(DevNum::parse_hex("103:1"), Some(NVME));
        assert_eq!(DevNum::parse_hex("7:12C\n").map(|d| d.minor), Some(300));
        assert_eq!(DevNum::parse_hex("7:"), None);
        assert_eq!(DevNum::parse_hex("7:0x1"), None);
        assert_eq!(DevNum::parse_hex("70"), None);
        assert_eq!(DevNum::parse_decimal("259:1"), Some(NVME));
        let raw = nix::sys::stat::makedev(259, 1);
        assert_eq!(DevNum::from_raw(raw), NVME);
    }

    const MOUNTINFO: &str = "\
22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw,errors=remount-ro
23 22 0:21 / /proc rw,nosuid shared:2 - proc proc rw
40 22 7:0 / /mnt/img ro,relatime shared:9 - ext4 /dev/loop0 ro
41 22 7:1 / /mnt/bind ro,relatime shared:9 - ext4 /dev/loop1 rw
42 22 7:2 / /mnt/a\\040b rw shared:9 - ext4 /dev/loop2 rw
garbage line
";

    #[test]
    fn mountinfo_gives_devices_and_whether_they_are_written() {
        let m = parse_mountinfo(MOUNTINFO);
        assert_eq!(m.len(), 5);
        assert_eq!(m[0].dev, NVME);
        assert!(m[0].writable);
        assert_eq!(m[2].dev, LOOP0);
        assert!(!m[2].writable);
        // A read-only bind of a read-write superblock: this mount does not write.
        assert!(!m[3].writable);
        assert_eq!(m[4].mount_point, "/mnt/a\\040b");
        assert!(m[4].writable);
    }

    fn other(dev: DevNum, mode: Mode, same_vm: bool) -> OtherUser {
        OtherUser {
            domid: 9,
            devid: "51712".into(),
            dev,
            mode,
            same_vm,
        }
    }

    #[test]
    fn sharing_decisions() {
        let mounts = parse_mountinfo(MOUNTINFO);
        // Mounted read-only in dom0: a reader may share it, a writer may not.
        assert_eq!(check_sharing(Mode::Read, &[LOOP0], &mounts, &[]), Ok(()));
        let e = check_sharing(Mode::Write, &[LOOP0], &mounts, &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "device 7:0 is mounted read-only in the privileged domain at /mnt/img"
        );
        // Mounted read-write: nobody.
        assert!(check_sharing(Mode::Read, &[NVME], &mounts, &[]).is_err());
        // Forced: no checks at all.
        assert_eq!(check_sharing(Mode::Force, &[NVME], &mounts, &[]), Ok(()));

        let free = DevNum { major: 8, minor: 0 };
        // Another guest reading: readers share, a writer is refused.
        let r = [other(free, Mode::Read, false)];
        assert_eq!(check_sharing(Mode::Read, &[free], &[], &r), Ok(()));
        let e = check_sharing(Mode::Write, &[free], &[], &r).unwrap_err();
        assert_eq!(
            e.to_string(),
            "device 8:0 is used read-only by domain 9 (vbd 51712)"
        );
        // Another guest writing (or forcing): everyone is refused.
        for m in [Mode::Write, Mode::Force] {
            let w = [other(free, m, false)];
            assert!(check_sharing(Mode::Read, &[free], &[], &w).is_err());
            assert!(check_sharing(Mode::Write, &[free], &[], &w).is_err());
        }
        // The same guest (or its device model) may use it twice.
        let same = [other(free, Mode::Write, true)];
        assert_eq!(check_sharing(Mode::Write, &[free], &[], &same), Ok(()));
        // Another device is no conflict; any of a file's loop devices is.
        let w = [other(LOOP0, Mode::Write, false)];
        assert_eq!(check_sharing(Mode::Write, &[free], &[], &w), Ok(()));
        assert!(check_sharing(Mode::Read, &[free, LOOP0], &[], &w).is_err());
    }

    #[test]
    fn same_vm_compares_real_uuids_only() {
        assert!(same_vm(Some("u1"), None, Some("u1"), None));
        assert!(!same_vm(Some("u1"), None, Some("u2"), None));
        // The script compares two empty defaults and says "same"; here they differ.
        assert!(!same_vm(Some("u1"), Some(""), Some("u2"), Some("")));
        // A device model (target u1) and its guest.
        assert!(same_vm(Some("dm"), Some("u1"), Some("u1"), None));
        assert!(same_vm(Some("u1"), None, Some("dm"), Some("u1")));
        // The other domain's nodes are gone: treated as the same guest.
        assert!(same_vm(Some("u1"), None, None, None));
        assert!(same_vm(Some("u1"), None, Some(""), None));
    }
}
