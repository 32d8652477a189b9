//! From a domain config to the boot planner's request: which image, which modules.

use std::path::PathBuf;

use pvh::{
    BootRequest, FirmwareName, FirmwareSearch, HvmBios, HvmRequest, ImageSource, ModuleRequest,
};
use xlcfg::model::{Bios, Boot, DomainConfig, DomainType, Firmware};

/// Why a config cannot be booted by rxl.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// A config of type HVM without its HVM settings (a record written by an older rxl).
    #[error("type = \"hvm\" without its HVM settings: recreate the guest from its config file")]
    NoHvmSettings,
    /// 32-bit PV, which Debian's Xen is built without.
    #[error(
        "firmware = \"pvgrub32\" is a 32-bit PV kernel: this Xen runs 64-bit PV guests only; \
         use firmware = \"pvgrub64\""
    )]
    Pv32(&'static str),
    /// A bootloader's kernel is known only once it has run ([`crate::plan_for`] runs it).
    #[error("bootloader = \"{0}\": the kernel is known only once the bootloader has run")]
    Bootloader(String),
    /// A firmware that is not a PVH image.
    #[error(
        "firmware = \"{0}\" is a PV image and cannot boot a PVH guest; use firmware = \"pvgrub\" \
         (GRUB built for PVH: /usr/lib/grub-xen/grub-i386-xen_pvh.bin, package grub-xen-host)"
    )]
    PvFirmware(&'static str),
    /// A firmware that is not a PVH image.
    #[error("firmware = \"{0}\" cannot boot a PVH guest (it needs type = \"hvm\")")]
    HvmFirmware(&'static str),
    /// Firmware lookup failed.
    #[error(transparent)]
    Firmware(#[from] pvh::Error),
}

/// The boot request for `cfg`. Named firmware is looked up in `search`.
pub fn request(cfg: &DomainConfig, search: &FirmwareSearch) -> Result<BootRequest, BootError> {
    check_type(cfg)?;
    let modules = |mods: &[xlcfg::model::Module]| -> Vec<ModuleRequest> {
        mods.iter()
            .map(|m| ModuleRequest {
                path: m.path.value.clone(),
                cmdline: m.cmdline.clone(),
            })
            .collect()
    };
    let (image, cmdline, mods) = match &cfg.boot {
        Boot::Kernel {
            kernel,
            cmdline,
            modules: m,
        } => (
            ImageSource::Kernel(kernel.value.clone()),
            cmdline.clone(),
            modules(m),
        ),
        Boot::Firmware {
            firmware,
            cmdline,
            modules: m,
        } => (
            ImageSource::Firmware(firmware_image(&firmware.value, cfg.domain_type, search)?),
            cmdline.clone(),
            modules(m),
        ),
        Boot::Bootloader { path, .. } => {
            return Err(BootError::Bootloader(path.value.display().to_string()))
        }
    };
    Ok(BootRequest {
        image,
        cmdline,
        modules: mods,
        memory_mib: cfg.memory_mib,
        maxmem_mib: cfg.maxmem_mib,
        vcpus: cfg.vcpus,
        maxvcpus: cfg.maxvcpus,
    })
}

/// rxl can build guests of `cfg`'s type: PVH and PV, and HVM with its HVM settings.
pub fn check_type(cfg: &DomainConfig) -> Result<(), BootError> {
    match cfg.domain_type {
        DomainType::Hvm if cfg.hvm.is_none() => Err(BootError::NoHvmSettings),
        _ => Ok(()),
    }
}

/// The HVM boot request for `cfg`: hvmloader (the config's replacement, else `hvmloader`
/// on the firmware search path) and the BIOS image (`bios_path_override`, else SeaBIOS's
/// `bios-256k.bin` or OVMF's `OVMF.fd` on the search path; none for ROMBIOS, which
/// hvmloader carries).
pub fn hvm_request(cfg: &DomainConfig, search: &FirmwareSearch) -> Result<HvmRequest, BootError> {
    let hvm = cfg.hvm.as_ref().ok_or(BootError::NoHvmSettings)?;
    let hvmloader = match &hvm.hvmloader {
        Some(p) => p.value.clone(),
        None => pvh::resolve_firmware(FirmwareName::Hvmloader, search)?,
    };
    let bios = match hvm.bios {
        Bios::Seabios => HvmBios::Seabios,
        Bios::Rombios => HvmBios::Rombios,
        Bios::Ovmf => HvmBios::Ovmf,
    };
    let bios_module = match (&hvm.bios_path, bios) {
        (Some(p), _) => Some(p.value.clone()),
        (None, HvmBios::Seabios) => Some(pvh::resolve_firmware(FirmwareName::Seabios, search)?),
        (None, HvmBios::Ovmf) => Some(pvh::resolve_firmware(FirmwareName::HvmOvmf, search)?),
        (None, HvmBios::Rombios) => None,
    };
    let size = guest_size(cfg);
    Ok(HvmRequest {
        hvmloader,
        bios,
        bios_module,
        size,
        videoram_mib: hvm.videoram_mib,
        mmio_hole_mib: hvm.mmio_hole_mib,
        apic: hvm.apic,
    })
}

/// The guest's memory and vCPU sizes, whatever its boot method.
pub fn guest_size(cfg: &DomainConfig) -> pvh::GuestSize {
    BootRequest {
        image: ImageSource::Kernel(PathBuf::new()),
        cmdline: None,
        modules: Vec::new(),
        memory_mib: cfg.memory_mib,
        maxmem_mib: cfg.maxmem_mib,
        vcpus: cfg.vcpus,
        maxvcpus: cfg.maxvcpus,
    }
    .size()
}

/// HVM_PARAM_VIRIDIAN for the enabled Viridian groups, as libxl's
/// `hvm_set_viridian_features` computes it (0: the param is not set).
pub fn viridian_mask(hvm: &xlcfg::model::HvmConfig) -> u64 {
    let on = |g: &str| hvm.viridian.iter().any(|v| v == g);
    let mut mask = 0u64;
    if on("base") {
        mask |= 1 << 0; // HVMPV_base_freq
        if !on("freq") {
            mask |= 1 << 1; // HVMPV_no_freq
        }
    }
    for (group, bits) in [
        ("time_ref_count", 1 << 2),
        ("reference_tsc", 1 << 3),
        ("hcall_remote_tlb_flush", 1 << 4),
        ("apic_assist", 1 << 5),
        ("crash_ctl", 1 << 6),
        ("synic", 1 << 7),
        // stimer brings time_ref_count and synic along.
        ("stimer", (1 << 2) | (1 << 7) | (1 << 8)),
        ("hcall_ipi", 1 << 9),
        ("ex_processor_masks", 1 << 10),
        ("no_vp_limit", 1 << 11),
        ("cpu_hotplug", 1 << 12),
    ] {
        if on(group) {
            mask |= bits;
        }
    }
    mask
}

fn firmware_image(
    fw: &Firmware,
    ty: DomainType,
    search: &FirmwareSearch,
) -> Result<PathBuf, BootError> {
    match fw {
        Firmware::Pvgrub64 if ty == DomainType::Pv => {
            Ok(pvh::resolve_firmware(FirmwareName::Pvgrub64, search)?)
        }
        Firmware::Pvgrub32 if ty == DomainType::Pv => Err(BootError::Pv32("pvgrub32")),
        Firmware::Path(p) => Ok(p.clone()),
        Firmware::Ovmf => Ok(pvh::resolve_firmware(FirmwareName::Ovmf, search)?),
        Firmware::Pvgrub => Ok(pvh::resolve_firmware(FirmwareName::Pvgrub, search)?),
        Firmware::Seabios => Err(BootError::HvmFirmware("seabios")),
        Firmware::Rombios => Err(BootError::HvmFirmware("rombios")),
        Firmware::Pvgrub32 => Err(BootError::PvFirmware("pvgrub32")),
        Firmware::Pvgrub64 => Err(BootError::PvFirmware("pvgrub64")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> DomainConfig {
        let parsed = xlcfg::parse::parse_str("g.cfg", text);
        xlcfg::model::build(&parsed.settings, std::path::Path::new("/"))
            .expect("valid")
            .config
    }

    /// Without grub-xen-host, `firmware = "pvgrub"` names the package and the file it
    /// looked for where Debian installs it.
    #[test]
    fn a_missing_pvh_grub_names_its_package_and_path() {
        let c = cfg("name = \"g\"\ntype = \"pvh\"\nfirmware = \"pvgrub\"\n\
                     disk = [ '/srv/g.img,raw,xvda,w' ]\n");
        let search = FirmwareSearch {
            dirs: vec![PathBuf::from("/nonexistent/usr/lib/grub-xen")],
            ..FirmwareSearch::default()
        };
        let e = request(&c, &search).expect_err("missing").to_string();
        assert!(e.contains("grub-xen-host"), "{e}");
        assert!(
            e.contains("/nonexistent/usr/lib/grub-xen/grub-i386-xen_pvh.bin"),
            "{e}"
        );
        if !std::path::Path::new("/usr/lib/grub-xen/grub-i386-xen_pvh.bin").exists() {
            let e = request(&c, &FirmwareSearch::default())
                .expect_err("missing")
                .to_string();
            assert!(e.contains("/usr/lib/grub-xen/grub-i386-xen_pvh.bin"), "{e}");
        }
    }

    /// The Viridian mask of libxl's defaults (`viridian = 1`): base_freq, time_ref_count,
    /// apic_assist, crash_ctl, no_vp_limit, cpu_hotplug; of base alone: no_freq too.
    #[test]
    fn viridian_masks_are_libxls() {
        let hvm = |v: &str| {
            cfg(&format!("name = \"g\"\ntype = \"hvm\"\nviridian = {v}\n"))
                .hvm
                .expect("hvm")
        };
        assert_eq!(viridian_mask(&hvm("1")), 0x1865);
        assert_eq!(viridian_mask(&hvm("0")), 0);
        assert_eq!(viridian_mask(&hvm("[ \"base\" ]")), 0x3);
        assert_eq!(
            viridian_mask(&hvm("[ \"base\", \"freq\", \"stimer\" ]")),
            0x185
        );
        assert_eq!(viridian_mask(&hvm("[ \"all\" ]")), 0x1ffd);
    }

    /// pvgrub64 and pvgrub32 are Xen's PV images: refused for PVH, pointing at PVH GRUB.
    #[test]
    fn pv_grub_is_refused_for_pvh_naming_pvh_grub() {
        for name in ["pvgrub64", "pvgrub32"] {
            let text = format!("name = \"g\"\ntype = \"pvh\"\nfirmware = \"{name}\"\n");
            let parsed = xlcfg::parse::parse_str("g.cfg", &text);
            let errs = xlcfg::model::build(&parsed.settings, std::path::Path::new("/"))
                .expect_err("refused");
            let d = &errs[0];
            assert!(d.message.contains("needs type = \"pv\""), "{}", d.message);
            let hint = d.hint.as_deref().unwrap_or_default();
            assert!(
                hint.contains("grub-xen-host")
                    && hint.contains("/usr/lib/grub-xen/grub-i386-xen_pvh.bin"),
                "{hint}"
            );
        }
    }
}
