//! The QEMU command line of an HVM guest's device model (`-machine xenfv`), as Xen 4.17's
//! libxl builds it for qemu-xen in dom0 (`libxl__build_device_model_args_new`, without a
//! stub domain, without `dm_restrict`).
//!
//! [`xenfv`] returns the arguments after the program name, the environment libxl adds,
//! and the disks it leaves to the PV drivers alone; the caller (the device model launcher)
//! runs them. Every choice follows libxl; where rxl refuses what libxl would pass on, the
//! error says so ([`DmArgsError`]).

use std::path::Path;

use xen_host::DomId;
use xlcfg::model::{
    DiskAccess, DiskBackendType, DiskFormat, DiskSpec, DiskTargetKind, DiskType, DomainConfig,
    HdType, HvmConfig, Vga,
};

/// Where libxl puts QEMU's QMP sockets (`XEN_RUN_DIR`).
pub const RUN_DIR: &str = "/var/run/xen";
/// The NIC model libxl gives an emulated NIC without `model=`.
pub const DEFAULT_NIC_MODEL: &str = "rtl8139";
/// `XEN_QEMU_CONSOLE_LIMIT`, the bound libxl sets on QEMU's console output (XSA-180).
pub const CONSOLE_LIMIT: &str = "1048576";

/// libxl's QMP socket for `dom` (`libxl__qemu_qmp_path`).
pub fn qmp_libxl_path(run_dir: &Path, dom: DomId) -> String {
    format!("{}/qmp-libxl-{}", run_dir.display(), dom.0)
}

/// The second QMP socket, xenstat's.
pub fn qmp_libxenstat_path(run_dir: &Path, dom: DomId) -> String {
    format!("{}/qmp-libxenstat-{}", run_dir.display(), dom.0)
}

/// A device model command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Xenfv {
    /// The arguments, without the program.
    pub args: Vec<String>,
    /// Environment variables to add.
    pub env: Vec<(String, String)>,
    /// Disks QEMU does not emulate (the guest reaches them through PV drivers only), each
    /// with the reason, as libxl logs them.
    pub not_emulated: Vec<String>,
}

/// Why no command line could be built.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DmArgsError {
    /// Not an HVM config.
    #[error("the xenfv device model is for type = \"hvm\" guests, not type = \"{0}\"")]
    NotHvm(&'static str),
    /// libxl refuses a read-only emulated disk.
    #[error(
        "disk {0}: qemu-xen does not support read-only IDE disks; make it writable (rw), a \
         CD-ROM (devtype=cdrom), or give it an xvd vdev beyond the fourth disk so that only \
         the PV drivers see it"
    )]
    ReadOnlyDisk(String),
    /// libxl refuses a read-only AHCI disk too.
    #[error(
        "disk {0}: qemu-xen does not support read-only AHCI disks (hdtype = \"ahci\"); make \
         it writable (rw), a CD-ROM (devtype=cdrom), or give it an xvd vdev beyond the sixth \
         disk so that only the PV drivers see it"
    )]
    ReadOnlyAhciDisk(String),
    /// An `sd` disk, which libxl puts on an emulated SCSI controller.
    #[error("disk {0}: emulated SCSI disks (sd vdevs) are not supported by rxl; use hdX or xvdX")]
    ScsiDisk(String),
    /// `vnclisten` with a display and `vncdisplay` too (libxl refuses it).
    #[error("vnclisten = \"{0}\" names a display and vncdisplay is set too: keep one")]
    VncDisplayTwice(String),
    /// A vdev that is not a disk name.
    #[error("disk {vdev}: {reason}")]
    Vdev {
        /// The vdev.
        vdev: String,
        /// What is wrong.
        reason: String,
    },
}

/// The arguments of [`xenfv`] alone.
pub fn xenfv_args(dom: DomId, cfg: &DomainConfig) -> Result<Vec<String>, DmArgsError> {
    xenfv(dom, cfg, Path::new(RUN_DIR)).map(|x| x.args)
}

/// The device model command line of HVM guest `dom`.
/// The QMP sockets go in `run_dir` ([`RUN_DIR`] on a real host).
pub fn xenfv(dom: DomId, cfg: &DomainConfig, run_dir: &Path) -> Result<Xenfv, DmArgsError> {
    let hvm = cfg
        .hvm
        .as_ref()
        .ok_or(DmArgsError::NotHvm(cfg.domain_type.as_str()))?;
    let mut a = Args(Vec::new());
    a.pair("-xen-domid", dom.0.to_string());
    a.one("-no-shutdown");
    a.pair(
        "-chardev",
        format!(
            "socket,id=libxl-cmd,path={},server=on,wait=off",
            qmp_libxl_path(run_dir, dom)
        ),
    );
    a.pair("-mon", "chardev=libxl-cmd,mode=control");
    a.pair(
        "-chardev",
        format!(
            "socket,id=libxenstat-cmd,path={},server=on,wait=off",
            qmp_libxenstat_path(run_dir, dom)
        ),
    );
    a.pair("-mon", "chardev=libxenstat-cmd,mode=control");
    a.one("-nodefaults");
    a.one("-no-user-config");
    a.pair("-name", &cfg.name);
    a.pair("-vnc", vnc_arg(hvm)?);
    a.pair("-display", "none");
    if hvm.sdl {
        a.pair("-display", "sdl");
    }
    if let Some(d) = &hvm.direct_boot {
        a.pair("-kernel", path(&d.kernel.value));
        if let Some(r) = &d.ramdisk {
            a.pair("-initrd", path(&r.value));
        }
        if let Some(c) = &d.cmdline {
            a.pair("-append", c);
        }
    }
    for s in &hvm.serial {
        a.pair("-serial", s);
    }
    if hvm.nographic && !hvm.sdl && hvm.vnc.is_none() {
        a.one("-nographic");
    }
    match hvm.vga {
        Vga::Std => a.pair("-device", format!("VGA,vgamem_mb={}", hvm.videoram_mib)),
        Vga::Cirrus => a.pair(
            "-device",
            format!("cirrus-vga,vgamem_mb={}", hvm.videoram_mib),
        ),
        Vga::None => {}
    }
    a.pair("-boot", format!("order={}", hvm.boot_order));
    if !hvm.acpi {
        a.one("-no-acpi");
    }
    if cfg.maxvcpus > 1 {
        a.pair("-smp", format!("{},maxcpus={}", cfg.vcpus, cfg.maxvcpus));
    }
    let mut nics = 0;
    for v in cfg
        .vifs
        .iter()
        .filter(|v| devices::nodes::vif_is_emulated(cfg.domain_type, v))
    {
        let model = v.model.as_deref().unwrap_or(DEFAULT_NIC_MODEL);
        a.pair(
            "-device",
            format!("{model},id=nic{n},netdev=net{n},mac={}", v.mac, n = v.devid),
        );
        // libxl's `br=` is for QEMU's bridge helper, which `script=no` leaves unused:
        // the toolstack puts the tap in the bridge once QEMU has made it.
        a.pair(
            "-netdev",
            format!(
                "type=tap,id=net{n},ifname={},br={},script=no,downscript=no",
                devices::hotplug::vif_tap(dom, v.devid),
                v.bridge,
                n = v.devid
            ),
        );
        nics += 1;
    }
    if nics == 0 {
        a.pair("-net", "none");
    }
    for extra in &cfg.device_model.args {
        a.one(extra);
    }
    a.pair("-machine", machine_arg(hvm));
    a.pair("-m", (cfg.maxmem_mib - hvm.videoram_mib).to_string());
    if hvm.hdtype == HdType::Ahci {
        a.pair("-device", "ahci,id=ahci0");
    }
    let mut not_emulated = Vec::new();
    for d in &cfg.disks {
        disk_args(d, hvm.hdtype, &mut a, &mut not_emulated)?;
    }
    Ok(Xenfv {
        args: a.0,
        env: vec![
            ("XEN_QEMU_CONSOLE_LIMIT".into(), CONSOLE_LIMIT.into()),
            ("XEN_DOMAIN_ID".into(), dom.0.to_string()),
        ],
        not_emulated,
    })
}

struct Args(Vec<String>);

impl Args {
    fn one(&mut self, a: impl Into<String>) {
        self.0.push(a.into());
    }
    fn pair(&mut self, a: &str, b: impl Into<String>) {
        self.0.push(a.to_string());
        self.0.push(b.into());
    }
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// `-vnc`: `none` unless VNC is on; then the listen address (with its display, libxl's
/// rules), `,to=99` when a free display may be searched for.
fn vnc_arg(hvm: &HvmConfig) -> Result<String, DmArgsError> {
    let Some(v) = &hvm.vnc else {
        return Ok("none".to_string());
    };
    let mut arg = if v.listen.contains(':') {
        if v.display.is_some_and(|d| d != 0) {
            return Err(DmArgsError::VncDisplayTwice(v.listen.clone()));
        }
        v.listen.clone()
    } else {
        format!("{}:{}", v.listen, v.display.unwrap_or(0))
    };
    if v.find_unused {
        arg.push_str(",to=99");
    }
    Ok(arg)
}

/// `-machine xenfv,suppress-vmdesc=on`, with `max-ram-below-4g` when `mmio_hole` moves
/// the hole's start down (libxl ignores a hole smaller than its default).
fn machine_arg(hvm: &HvmConfig) -> String {
    let mut m = "xenfv,suppress-vmdesc=on".to_string();
    if let Some(mib) = hvm.mmio_hole_mib {
        let hole = mib << 20;
        if hole < 1 << 32 {
            let below = (1u64 << 32) - hole;
            if below <= 0xf000_0000 {
                m.push_str(&format!(",max-ram-below-4g={below}"));
            }
        }
    }
    m
}

/// QEMU's name for a disk format (`libxl__qemu_disk_format_string`).
fn qemu_format(f: DiskFormat) -> Option<&'static str> {
    match f {
        DiskFormat::Raw => Some("raw"),
        DiskFormat::Qcow => Some("qcow"),
        DiskFormat::Qcow2 => Some("qcow2"),
        DiskFormat::Vhd => Some("vpc"),
        DiskFormat::Qed => Some("qed"),
        DiskFormat::Empty => None,
    }
}

/// The most hard disks QEMU gets on the AHCI controller (libxl: disks 0 to 5).
const AHCI_DISKS: u32 = 6;

/// The emulated form of one disk: an IDE CD-ROM (`ide-cd` on a `-drive if=none`) for
/// the first four disks whatever `hdtype` says; a hard disk on the AHCI controller
/// (`-drive if=none,id=ahcidisk-N` and `-device ide-hd,bus=ahci0.N`) for the first six
/// with `hdtype = "ahci"`, else an IDE disk (`-drive if=ide,index=N`) for the first four,
/// as libxl does; other disks are left to the PV drivers and named in `skipped`.
fn disk_args(
    d: &DiskSpec,
    hdtype: HdType,
    a: &mut Args,
    skipped: &mut Vec<String>,
) -> Result<(), DmArgsError> {
    let vdev = devices::vdev::parse(&d.vdev).map_err(|e| DmArgsError::Vdev {
        vdev: d.vdev.clone(),
        reason: e.reason,
    })?;
    let Some((disk, _)) = vdev.disk_partition else {
        skipped.push(format!("{}: unable to determine the disk number", d.vdev));
        return Ok(());
    };
    let cdrom = d.devtype == DiskType::Cdrom;
    if !cdrom && d.vdev.starts_with("sd") {
        return Err(DmArgsError::ScsiDisk(d.vdev.clone()));
    }
    // QEMU opens the file itself when the disk is raw and needs no script, or when it
    // is served by QEMU anyway (qdisk: every non-raw format).
    let qdisk = d.backendtype == Some(DiskBackendType::Qdisk)
        || !matches!(d.format, DiskFormat::Raw | DiskFormat::Empty);
    let format = if qdisk {
        qemu_format(d.format)
    } else {
        Some("raw")
    };
    let target = if d.format == DiskFormat::Empty || d.target_kind == DiskTargetKind::Empty {
        if !cdrom {
            skipped.push(format!("{}: an empty disk can only be a CD-ROM", d.vdev));
            return Ok(());
        }
        None
    } else if d
        .backend
        .as_deref()
        .is_some_and(|b| b != "0" && b != "Domain-0")
    {
        skipped.push(format!("{}: its backend is another domain", d.vdev));
        return Ok(());
    } else if d.script.is_some() && !qdisk {
        skipped.push(format!(
            "{}: served through a hotplug script, no local path for QEMU",
            d.vdev
        ));
        return Ok(());
    } else {
        d.target.as_ref().map(|t| path(&t.value))
    };
    if cdrom {
        if disk > 4 {
            skipped.push(format!(
                "{}: an emulated CD-ROM must be one of the first 4 disks",
                d.vdev
            ));
            return Ok(());
        }
        let id = format!("ide-{}", vdev.devid);
        let mut drive = format!("if=none,readonly=on,id={id}");
        if let (Some(t), Some(f)) = (&target, format) {
            drive.push_str(&format!(",file={t},format={f}"));
        }
        a.pair("-drive", drive);
        a.pair(
            "-device",
            format!(
                "ide-cd,id={id},drive={id},bus=ide.{},unit={}",
                disk / 2,
                disk % 2
            ),
        );
        return Ok(());
    }
    let ahci = hdtype == HdType::Ahci && disk < AHCI_DISKS;
    if !ahci && disk >= 4 {
        skipped.push(format!("{}: only 4 emulated IDE disks", d.vdev));
        return Ok(());
    }
    if d.access == DiskAccess::Ro {
        return Err(if ahci {
            DmArgsError::ReadOnlyAhciDisk(d.vdev.clone())
        } else {
            DmArgsError::ReadOnlyDisk(d.vdev.clone())
        });
    }
    let (Some(t), Some(f)) = (target, format) else {
        skipped.push(format!("{}: no image QEMU can open", d.vdev));
        return Ok(());
    };
    if ahci {
        a.pair(
            "-drive",
            format!("file={t},if=none,id=ahcidisk-{disk},format={f},cache=writeback"),
        );
        a.pair(
            "-device",
            format!("ide-hd,bus=ahci0.{disk},unit=0,drive=ahcidisk-{disk}"),
        );
        return Ok(());
    }
    a.pair(
        "-drive",
        format!("file={t},if=ide,index={disk},media=disk,format={f},cache=writeback"),
    );
    Ok(())
}

#[cfg(test)]
mod tests;
