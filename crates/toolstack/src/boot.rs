//! From a domain config to the boot planner's request: which image, which modules.

use std::path::PathBuf;

use pvh::{BootRequest, FirmwareName, FirmwareSearch, ImageSource, ModuleRequest};
use xlcfg::model::{Boot, DomainConfig, DomainType, Firmware};

/// Why a config cannot be booted by rxl.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// rxl builds PVH guests only.
    #[error("type = \"{0}\" is not supported: rxl builds PVH guests (use type = \"pvh\")")]
    UnsupportedType(&'static str),
    /// A bootloader's kernel is known only once it has run ([`crate::plan_for`] runs it).
    #[error("bootloader = \"{0}\": the kernel is known only once the bootloader has run")]
    Bootloader(String),
    /// A firmware that is not a PVH image.
    #[error(
        "firmware = \"{0}\" is a PV image and cannot boot a PVH guest; use firmware = \"pvgrub\""
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
    if cfg.domain_type != DomainType::Pvh {
        return Err(BootError::UnsupportedType(cfg.domain_type.as_str()));
    }
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
            ImageSource::Firmware(firmware_image(&firmware.value, search)?),
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

fn firmware_image(fw: &Firmware, search: &FirmwareSearch) -> Result<PathBuf, BootError> {
    match fw {
        Firmware::Path(p) => Ok(p.clone()),
        Firmware::Ovmf => Ok(pvh::resolve_firmware(FirmwareName::Ovmf, search)?),
        Firmware::Pvgrub => Ok(pvh::resolve_firmware(FirmwareName::Pvgrub, search)?),
        Firmware::Seabios => Err(BootError::HvmFirmware("seabios")),
        Firmware::Rombios => Err(BootError::HvmFirmware("rombios")),
        Firmware::Pvgrub32 => Err(BootError::PvFirmware("pvgrub32")),
        Firmware::Pvgrub64 => Err(BootError::PvFirmware("pvgrub64")),
    }
}
