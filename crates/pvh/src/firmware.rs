//! Resolving `firmware = "pvgrub"` / `"ovmf"` to a PVH-bootable file, and
//! `firmware = "pvgrub64"` to GRUB's PV image.
//!
//! Each name has a list of file names, looked up in each directory of the search path, in
//! order. The search path is `$RXL_FIRMWARE_PATH` (colon-separated) if set, otherwise
//! [`DEFAULT_DIRS`]. The file found must still probe as a PVH image when planned.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Environment variable overriding the firmware search path (colon-separated directories).
pub const FIRMWARE_PATH_ENV: &str = "RXL_FIRMWARE_PATH";

/// The default firmware directories, in search order.
pub const DEFAULT_DIRS: &[&str] = &[
    "/usr/lib/grub-xen",
    "/usr/lib/xen-4.17/boot",
    "/usr/local/lib/xen/boot",
    "/usr/lib/xen/boot",
    "/usr/share/ovmf",
    "/usr/share/OVMF",
    "/usr/share/seabios",
    "/usr/share/qemu",
];

/// A named firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirmwareName {
    /// GRUB 2 built for Xen PVH (Debian's grub-xen-host).
    Pvgrub,
    /// An OVMF build with a PVH entry point (OvmfPkg/OvmfXen.dsc).
    Ovmf,
    /// GRUB 2 built as a 64-bit PV kernel (PV-GRUB; a PV guest's firmware).
    Pvgrub64,
    /// Xen's HVM firmware loader (an HVM guest's first code).
    Hvmloader,
    /// SeaBIOS, the BIOS module hvmloader runs (libxl's `bios-256k.bin`).
    Seabios,
    /// OVMF as libxl hands it to hvmloader for an HVM guest (`OVMF.fd`).
    HvmOvmf,
}

impl FirmwareName {
    /// Parses `"pvgrub"` or `"ovmf"`.
    pub fn parse(s: &str) -> Option<FirmwareName> {
        match s {
            "pvgrub" | "pvgrub2" => Some(FirmwareName::Pvgrub),
            "ovmf" => Some(FirmwareName::Ovmf),
            "pvgrub64" => Some(FirmwareName::Pvgrub64),
            _ => None,
        }
    }

    /// The file names searched for, in order.
    pub fn file_names(self) -> &'static [&'static str] {
        match self {
            FirmwareName::Pvgrub => &["grub-i386-xen_pvh.bin"],
            FirmwareName::Ovmf => &["OVMF-pvh.fd", "OVMF_XEN.fd", "OvmfXen.fd", "ovmf-xen.fd"],
            // Debian's grub-xen-host name first, then the name libxl looks for in Xen's
            // firmware directory (which Debian does not ship).
            FirmwareName::Pvgrub64 => &["grub-x86_64-xen.bin", "pvgrub64.bin"],
            FirmwareName::Hvmloader => &["hvmloader"],
            FirmwareName::Seabios => &["bios-256k.bin"],
            FirmwareName::HvmOvmf => &["OVMF.fd"],
        }
    }

    fn hint(self) -> &'static str {
        match self {
            FirmwareName::Pvgrub => {
                "install grub-xen-host (apt-get install grub-xen-host), set \
                 RXL_FIRMWARE_PATH to the directory holding grub-i386-xen_pvh.bin, or give \
                 firmware = \"/path/to/grub-i386-xen_pvh.bin\""
            }
            FirmwareName::Ovmf => {
                "PVH needs an OVMF built from OvmfPkg/OvmfXen.dsc (the usual OVMF_CODE.fd \
                 has no PVH entry point); set RXL_FIRMWARE_PATH to its directory or give \
                 firmware = \"/path/to/OVMF.fd\""
            }
            FirmwareName::Pvgrub64 => {
                "install grub-xen-host (apt-get install grub-xen-host), set \
                 RXL_FIRMWARE_PATH to the directory holding grub-x86_64-xen.bin (or \
                 pvgrub64.bin), or give firmware = \"/path/to/grub-x86_64-xen.bin\""
            }
            FirmwareName::Hvmloader => {
                "an HVM guest starts in Xen's hvmloader (Debian installs it as \
                 /usr/lib/xen-4.17/boot/hvmloader); set RXL_FIRMWARE_PATH to its directory \
                 or give firmware_override = \"/path/to/hvmloader\""
            }
            FirmwareName::Seabios => {
                "install seabios (apt-get install seabios: /usr/share/seabios/bios-256k.bin), \
                 set RXL_FIRMWARE_PATH to its directory, or give \
                 bios_path_override = \"/path/to/bios-256k.bin\""
            }
            FirmwareName::HvmOvmf => {
                "install ovmf (/usr/share/ovmf/OVMF.fd) or give bios_path_override = \
                 \"/path/to/OVMF.fd\"; it must be an OVMF with Xen support (Debian \
                 bookworm's has none: build OvmfPkg/OvmfXen.dsc)"
            }
        }
    }
}

impl fmt::Display for FirmwareName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FirmwareName::Pvgrub => "pvgrub",
            FirmwareName::Ovmf => "ovmf",
            FirmwareName::Pvgrub64 => "pvgrub64",
            FirmwareName::Hvmloader => "hvmloader",
            FirmwareName::Seabios => "seabios",
            FirmwareName::HvmOvmf => "ovmf",
        })
    }
}

/// Where firmware is looked for, and the host's cache of decoded kernels (the host's boot
/// image settings, which the toolstack's planning carries into [`crate::ProbeOptions`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirmwareSearch {
    /// Directories, in order.
    pub dirs: Vec<PathBuf>,
    /// The cache of decoded kernels (none: every boot plan decodes its kernel).
    pub kernel_cache: Option<std::sync::Arc<crate::KernelCache>>,
}

impl Default for FirmwareSearch {
    fn default() -> Self {
        FirmwareSearch {
            dirs: DEFAULT_DIRS.iter().map(PathBuf::from).collect(),
            kernel_cache: None,
        }
    }
}

impl FirmwareSearch {
    /// `$RXL_FIRMWARE_PATH` if set and non-empty, else the defaults.
    pub fn from_env() -> FirmwareSearch {
        match std::env::var_os(FIRMWARE_PATH_ENV) {
            Some(v) if !v.is_empty() => FirmwareSearch {
                dirs: std::env::split_paths(&v)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect(),
                kernel_cache: None,
            },
            _ => FirmwareSearch::default(),
        }
    }
}

/// Finds the file for `name`: the first directory of `search` that holds one of the name's
/// files.
pub fn resolve_firmware(name: FirmwareName, search: &FirmwareSearch) -> Result<PathBuf, Error> {
    let mut tried = Vec::new();
    for dir in &search.dirs {
        for file in name.file_names() {
            let p = dir.join(file);
            if Path::new(&p).is_file() {
                return Ok(p);
            }
            tried.push(p.display().to_string());
        }
    }
    Err(Error::FirmwareNotFound {
        name: name.to_string(),
        tried: if tried.is_empty() {
            "nothing: the search path is empty".to_string()
        } else {
            tried.join(", ")
        },
        hint: name.hint().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_order_and_errors() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let search = FirmwareSearch {
            dirs: vec![a.path().into(), b.path().into()],
            kernel_cache: None,
        };
        let err = resolve_firmware(FirmwareName::Pvgrub, &search).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("grub-i386-xen_pvh.bin"), "{msg}");
        assert!(msg.contains("grub-xen-host"), "{msg}");
        let err = resolve_firmware(FirmwareName::Ovmf, &search).unwrap_err();
        assert!(err.to_string().contains("OvmfXen.dsc"), "{err}");

        std::fs::write(b.path().join("grub-i386-xen_pvh.bin"), b"x").unwrap();
        assert_eq!(
            resolve_firmware(FirmwareName::Pvgrub, &search).unwrap(),
            b.path().join("grub-i386-xen_pvh.bin")
        );
        std::fs::write(a.path().join("grub-i386-xen_pvh.bin"), b"x").unwrap();
        assert_eq!(
            resolve_firmware(FirmwareName::Pvgrub, &search).unwrap(),
            a.path().join("grub-i386-xen_pvh.bin")
        );
        std::fs::write(b.path().join("OvmfXen.fd"), b"x").unwrap();
        assert_eq!(
            resolve_firmware(FirmwareName::Ovmf, &search).unwrap(),
            b.path().join("OvmfXen.fd")
        );
        assert_eq!(FirmwareName::parse("ovmf"), Some(FirmwareName::Ovmf));
        assert_eq!(FirmwareName::parse("seabios"), None);
        // pvgrub64: Debian's file first, then libxl's name, in each directory in turn.
        assert_eq!(
            FirmwareName::parse("pvgrub64"),
            Some(FirmwareName::Pvgrub64)
        );
        let err = resolve_firmware(FirmwareName::Pvgrub64, &search).unwrap_err();
        assert!(err.to_string().contains("grub-x86_64-xen.bin"), "{err}");
        std::fs::write(b.path().join("pvgrub64.bin"), b"x").unwrap();
        assert_eq!(
            resolve_firmware(FirmwareName::Pvgrub64, &search).unwrap(),
            b.path().join("pvgrub64.bin")
        );
        std::fs::write(b.path().join("grub-x86_64-xen.bin"), b"x").unwrap();
        assert_eq!(
            resolve_firmware(FirmwareName::Pvgrub64, &search).unwrap(),
            b.path().join("grub-x86_64-xen.bin")
        );
    }
}
