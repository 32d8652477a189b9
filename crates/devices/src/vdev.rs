//! Virtual device names (`xvda`, `hdc`, `sdb2`, `d1p3`, `51712`) and the devid each one
//! encodes, with the rules of `libxl__device_disk_dev_number` (Xen 4.17,
//! tools/libs/light/libxl_device.c) and xen-vbd-interface(7).

use std::fmt;

/// Major number of Xen virtual disks (`xvd`).
pub const XVD_MAJOR: u32 = 202;
/// Major number of the first two IDE disks (`hda`, `hdb`).
pub const IDE0_MAJOR: u32 = 3;
/// Major number of the next two IDE disks (`hdc`, `hdd`).
pub const IDE1_MAJOR: u32 = 22;
/// Major number of SCSI disks (`sd`).
pub const SCSI_MAJOR: u32 = 8;
/// The bit that marks the extended `xvd` encoding.
pub const EXTENDED: u32 = 1 << 28;

/// Highest disk index of the `xvd` and `dNpM` forms (2^20 - 1).
const XVD_MAX_DISK: u32 = (1 << 20) - 1;
/// Highest partition of the `xvd` and `dNpM` forms.
const XVD_MAX_PART: u32 = 255;

/// A decoded virtual device name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Vdev {
    /// The devid: the `virtual-device` the frontend sees and the N of `device/vbd/N`.
    pub devid: u32,
    /// The disk index (`a` = 0) and partition (0 = whole disk), when the name has them;
    /// `None` for a plain number.
    pub disk_partition: Option<(u32, u32)>,
}

/// Why a vdev was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("vdev \"{vdev}\": {reason}")]
pub struct VdevError {
    /// The name as given.
    pub vdev: String,
    /// What is wrong with it.
    pub reason: String,
}

/// One naming scheme: its prefix and limits.
#[derive(Clone, Copy, Debug)]
struct Scheme {
    prefix: &'static str,
    max_disk: u32,
    max_part: u32,
}

const XVD: Scheme = Scheme {
    prefix: "xvd",
    max_disk: XVD_MAX_DISK,
    max_part: XVD_MAX_PART,
};
const HD: Scheme = Scheme {
    prefix: "hd",
    max_disk: 3,
    max_part: 63,
};
const SD: Scheme = Scheme {
    prefix: "sd",
    max_disk: 15,
    max_part: 15,
};

/// The devid of `vdev`.
pub fn devid(vdev: &str) -> Result<u32, VdevError> {
    parse(vdev).map(|v| v.devid)
}

/// Decode `vdev`. The forms are tried in libxl's order: `dNpM` and `xvdX[P]`, then a plain
/// number, then `hdX[P]`, then `sdX[P]`.
///
/// Stricter than libxl where libxl accepts nonsense: `xvd` with no letter (libxl computes a
/// negative disk), signs, spaces, hex/octal in `dNpM`, and leading zeros are refused.
pub fn parse(vdev: &str) -> Result<Vdev, VdevError> {
    let err = |reason: String| VdevError {
        vdev: vdev.to_owned(),
        reason,
    };
    if let Some((disk, part)) = parse_d_form(vdev).map_err(err)? {
        return Ok(xvd_encode(disk, part));
    }
    if vdev.starts_with(XVD.prefix) {
        let (disk, part) = parse_scheme(vdev, XVD).map_err(err)?;
        return Ok(xvd_encode(disk, part));
    }
    if let Some(n) = parse_number(vdev) {
        return n.map_err(err).map(|devid| Vdev {
            devid,
            disk_partition: None,
        });
    }
    if vdev.starts_with(HD.prefix) {
        let (disk, part) = parse_scheme(vdev, HD).map_err(err)?;
        let major = if disk < 2 { IDE0_MAJOR } else { IDE1_MAJOR };
        return Ok(Vdev {
            devid: (major << 8) | ((disk & 1) << 6) | part,
            disk_partition: Some((disk, part)),
        });
    }
    if vdev.starts_with(SD.prefix) {
        let (disk, part) = parse_scheme(vdev, SD).map_err(err)?;
        return Ok(Vdev {
            devid: (SCSI_MAJOR << 8) | (disk << 4) | part,
            disk_partition: Some((disk, part)),
        });
    }
    Err(err(
        "not a virtual device name: use xvdX, hdX, sdX (with an optional partition \
         number), dNpM, or a device number"
            .to_owned(),
    ))
}

/// The `xvd` / `dNpM` encoding: the compact form while disk and partition fit in 4 bits,
/// the extended form past that.
fn xvd_encode(disk: u32, part: u32) -> Vdev {
    let devid = if disk <= 15 && part <= 15 {
        (XVD_MAJOR << 8) | (disk << 4) | part
    } else {
        EXTENDED | (disk << 8) | part
    };
    Vdev {
        devid,
        disk_partition: Some((disk, part)),
    }
}

/// Decimal digits only, no leading zero (except "0" itself), at most `max`.
fn decimal(s: &str, what: &str, max: u32) -> Result<u32, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} \"{s}\" is not a decimal number"));
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(format!("{what} \"{s}\" has a leading zero"));
    }
    match s.parse::<u32>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!("{what} {s} is out of range (at most {max})")),
    }
}

/// `d<disk>p<partition>`; `Ok(None)` when `s` is not of that shape at all.
fn parse_d_form(s: &str) -> Result<Option<(u32, u32)>, String> {
    let Some(rest) = s.strip_prefix('d') else {
        return Ok(None);
    };
    let Some((d, p)) = rest.split_once('p') else {
        return Ok(None);
    };
    if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let disk = decimal(d, "disk", XVD_MAX_DISK)?;
    let part = decimal(p, "partition", XVD_MAX_PART)?;
    Ok(Some((disk, part)))
}

/// A plain device number, as strtoul base 0 reads one (decimal, `0x` hex, `0` octal),
/// at most `i32::MAX`; `None` when `s` does not start with a digit.
fn parse_number(s: &str) -> Option<Result<u32, String>> {
    if !s.bytes().next()?.is_ascii_digit() {
        return None;
    }
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    Some(
        u32::from_str_radix(digits, radix)
            .ok()
            .filter(|n| *n <= i32::MAX as u32)
            .ok_or_else(|| format!("\"{s}\" is not a device number (0 to {})", i32::MAX)),
    )
}

/// `<prefix><letters>[<partition>]`: the letters are a bijective base-26 number
/// (`a` = 0, `z` = 25, `aa` = 26), as in `device_virtdisk_matches`.
fn parse_scheme(s: &str, sc: Scheme) -> Result<(u32, u32), String> {
    let rest = &s[sc.prefix.len()..];
    let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
    if letters == 0 {
        return Err(format!("no disk letter after \"{}\"", sc.prefix));
    }
    let mut disk: u64 = 0;
    for b in rest[..letters].bytes() {
        disk = disk * 26 + u64::from(b - b'a') + 1;
        if disk - 1 > u64::from(sc.max_disk) {
            return Err(format!(
                "disk letters \"{}\" are past the last {} disk",
                &rest[..letters],
                sc.prefix
            ));
        }
    }
    let disk = (disk - 1) as u32;
    let part_text = &rest[letters..];
    let part = if part_text.is_empty() {
        0
    } else {
        decimal(part_text, "partition", sc.max_part)?
    };
    Ok((disk, part))
}

impl fmt::Display for Vdev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.devid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Each expected value is worked out by hand from the C expressions in
    // libxl__device_disk_dev_number, not taken from the C program's output.
    #[test]
    fn xvd_compact_form() {
        // (202 << 8) | (disk << 4) | part
        assert_eq!(devid("xvda"), Ok(51712)); // 202*256
        assert_eq!(devid("xvdb"), Ok(51728)); // + 1*16
        assert_eq!(devid("xvda1"), Ok(51713));
        assert_eq!(devid("xvdb15"), Ok(51743)); // 51728 + 15
        assert_eq!(devid("xvdp"), Ok(51952)); // 51712 + 15*16
        assert_eq!(
            parse("xvdc3"),
            Ok(Vdev {
                devid: 51747,
                disk_partition: Some((2, 3))
            })
        );
    }

    #[test]
    fn xvd_extended_form() {
        // (1 << 28) | (disk << 8) | part
        assert_eq!(devid("xvdq"), Ok(268_435_456 + 16 * 256)); // 268439552
        assert_eq!(devid("xvdq"), Ok(268_439_552));
        assert_eq!(devid("xvdz"), Ok(268_435_456 + 25 * 256));
        // aa = 26
        assert_eq!(devid("xvdaa"), Ok(268_435_456 + 26 * 256)); // 268442112
        assert_eq!(devid("xvdaz"), Ok(268_435_456 + 51 * 256));
        // ba = 2*26 + 0 = 52
        assert_eq!(devid("xvdba"), Ok(268_435_456 + 52 * 256));
        // partition 16 of disk a no longer fits in 4 bits
        assert_eq!(devid("xvda16"), Ok(268_435_472));
        assert_eq!(devid("xvdq255"), Ok(268_439_552 + 255));
    }

    #[test]
    fn d_form_is_the_xvd_encoding() {
        assert_eq!(devid("d0p0"), devid("xvda"));
        assert_eq!(devid("d1p2"), Ok(51730));
        assert_eq!(devid("d16p0"), devid("xvdq"));
        assert_eq!(devid("d1048575p255"), Ok(EXTENDED | (1_048_575 << 8) | 255));
    }

    #[test]
    fn hd_and_sd() {
        // ((disk < 2 ? 3 : 22) << 8) | ((disk & 1) << 6) | part
        assert_eq!(devid("hda"), Ok(768));
        assert_eq!(devid("hdb"), Ok(832));
        assert_eq!(devid("hdc"), Ok(5632));
        assert_eq!(devid("hdd"), Ok(5696));
        assert_eq!(devid("hda1"), Ok(769));
        assert_eq!(devid("hdd63"), Ok(5759));
        // (8 << 8) | (disk << 4) | part
        assert_eq!(devid("sda"), Ok(2048));
        assert_eq!(devid("sdb"), Ok(2064));
        assert_eq!(devid("sdp15"), Ok(2303));
    }

    #[test]
    fn plain_numbers_are_taken_as_is() {
        assert_eq!(
            parse("51712"),
            Ok(Vdev {
                devid: 51712,
                disk_partition: None
            })
        );
        assert_eq!(devid("0xca00"), Ok(51712));
        assert_eq!(devid("0145000"), Ok(51712));
        assert_eq!(devid("2147483647"), Ok(2_147_483_647));
        assert!(devid("2147483648").is_err());
    }

    #[test]
    fn refusals_say_why() {
        let e = |s: &str| parse(s).unwrap_err().to_string();
        assert_eq!(e("xvd"), "vdev \"xvd\": no disk letter after \"xvd\"");
        assert_eq!(
            e("hde"),
            "vdev \"hde\": disk letters \"e\" are past the last hd disk"
        );
        assert_eq!(
            e("sdq"),
            "vdev \"sdq\": disk letters \"q\" are past the last sd disk"
        );
        assert_eq!(
            e("hda64"),
            "vdev \"hda64\": partition 64 is out of range (at most 63)"
        );
        assert_eq!(
            e("sda16"),
            "vdev \"sda16\": partition 16 is out of range (at most 15)"
        );
        assert_eq!(
            e("xvda256"),
            "vdev \"xvda256\": partition 256 is out of range (at most 255)"
        );
        assert_eq!(
            e("xvda01"),
            "vdev \"xvda01\": partition \"01\" has a leading zero"
        );
        assert_eq!(e("xvdA"), "vdev \"xvdA\": no disk letter after \"xvd\"");
        assert_eq!(
            e("xvda-1"),
            "vdev \"xvda-1\": partition \"-1\" is not a decimal number"
        );
        assert!(e("d1048576p0").contains("disk 1048576 is out of range"));
        assert!(e("vda").contains("not a virtual device name"));
        assert!(e("").contains("not a virtual device name"));
    }

    #[test]
    fn long_letter_names() {
        // Bijective base 26: "zzzz" = 26 * (26^3 + 26^2 + 26 + 1) - 1 = 475253;
        // "aaaaa" = 26^4 + 26^3 + 26^2 + 26 + 1 - 1 = 475254, still <= 2^20 - 1;
        // "aaaaaa" = 12356630 - 1 + 1 > 2^20 - 1.
        assert_eq!(devid("xvdzzzz"), Ok(EXTENDED | (475_253 << 8)));
        assert_eq!(devid("xvdaaaaa"), Ok(EXTENDED | (475_254 << 8)));
        assert!(parse("xvdaaaaaa")
            .unwrap_err()
            .to_string()
            .contains("past the last xvd disk"));
    }
}
