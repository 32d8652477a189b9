//! rxl's toolstack: builds domains from a config and a boot plan, and runs their life,
//! through the [`xen_host::Hypervisor`] and [`xen_host::Store`] traits only.

#![forbid(unsafe_code)]

pub mod boot;
pub mod bootloader;
pub mod create;
pub mod devices;
pub mod dm;
pub mod dm_hvm;
pub mod dm_watch;
pub mod domains;
pub mod events;
pub mod hostmon;
pub mod lifecycle;
pub mod lock;
pub mod memory;
pub mod monitor;
pub mod names;
pub mod plan;
pub mod process;
pub mod qmp;
pub mod restarts;
pub mod state;
pub mod xs_layout;

use pvh::FirmwareSearch;
use xen_host::{Hypervisor, Store};
use xlcfg::model::{DomainConfig, DomainType};

pub use plan::GuestPlan;

/// Why a guest could not be started. The planning errors say which input failed (the
/// boot image, or module `index` in the order of [`xlcfg::model::Boot::modules`]) so that
/// a caller can point at the config line that named it.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The config cannot be booted by rxl.
    #[error(transparent)]
    Boot(#[from] boot::BootError),
    /// The bootloader did not give a kernel (nothing was built).
    #[error(transparent)]
    Bootloader(#[from] bootloader::BootloaderError),
    /// The kernel or firmware image could not be read or probed.
    #[error(transparent)]
    Image(pvh::Error),
    /// A module (module 0 is the ramdisk when there is one) could not be read.
    #[error("module {index}: {source}")]
    Module {
        /// Its index in the config's modules.
        index: usize,
        /// What went wrong.
        #[source]
        source: pvh::Error,
    },
    /// The boot could not be laid out in guest memory (too little memory, bad sizes, ...).
    #[error(transparent)]
    Plan(pvh::Error),
    /// The image cannot boot as a PV guest, or its PV layout does not fit.
    #[error(transparent)]
    PvPlan(pv::Error),
    /// Building the domain failed.
    #[error(transparent)]
    Create(#[from] create::CreateError),
}

/// The boot plan of `cfg`: its image probed, its modules sized, and all laid out in guest
/// memory (what [`pvh::plan`] does, one input at a time so that each error says which), by
/// the PVH or the PV planner as the guest's type says.
/// A guest with a bootloader has it run first ([`bootloader::run`], with `boot`'s bounds):
/// its kernel and ramdisk are planned from memory, and its `args` are the cmdline (the
/// config's cmdline when it gave none).
pub fn plan_for(
    cfg: &DomainConfig,
    search: &FirmwareSearch,
    boot: &bootloader::BootloaderOptions,
) -> Result<GuestPlan, LaunchError> {
    if let xlcfg::model::Boot::Bootloader { cmdline, .. } = &cfg.boot {
        boot::check_type(cfg)?;
        let got = bootloader::run(cfg, boot)?;
        return plan_extracted(cfg, got, cmdline.as_deref(), search);
    }
    if cfg.domain_type == DomainType::Hvm {
        return plan::plan_hvm(cfg, search);
    }
    let request = boot::request(cfg, search)?;
    let image = pvh::probe_file(request.image.path(), &probe_options(search))
        .map_err(LaunchError::Image)?;
    let modules = request
        .modules
        .iter()
        .enumerate()
        .map(|(index, m)| {
            pvh::ModuleInput::from_file(m.path.clone(), m.cmdline.clone())
                .map_err(|source| LaunchError::Module { index, source })
        })
        .collect::<Result<Vec<_>, _>>()?;
    plan_image(cfg, &image, request.cmdline.as_deref(), modules)
}

/// How kernels are probed: through the host's kernel cache, if it has one.
fn probe_options(search: &FirmwareSearch) -> pvh::ProbeOptions {
    pvh::ProbeOptions {
        cache: search.kernel_cache.clone(),
        ..Default::default()
    }
}

/// Lay out a probed image and its modules with the planner of `cfg`'s type.
fn plan_image(
    cfg: &DomainConfig,
    image: &pvh::KernelImage,
    cmdline: Option<&str>,
    modules: Vec<pvh::ModuleInput>,
) -> Result<GuestPlan, LaunchError> {
    let size = boot::guest_size(cfg);
    if cfg.domain_type == DomainType::Pv {
        return pv::plan_pv(image, cmdline, modules, size)
            .map(GuestPlan::Pv)
            .map_err(LaunchError::PvPlan);
    }
    pvh::plan_image(image, cmdline, modules, size)
        .map(GuestPlan::Pvh)
        .map_err(LaunchError::Plan)
}

/// The plan of what a bootloader extracted (no second read of any file). A compressed
/// kernel is decoded through the host's kernel cache (`search`), keyed by its compressed
/// bytes as a kernel file's is, so the same kernel on the same disk is decoded once.
fn plan_extracted(
    cfg: &DomainConfig,
    got: bootloader::Extracted,
    cmdline: Option<&str>,
    search: &FirmwareSearch,
) -> Result<GuestPlan, LaunchError> {
    let from = format!("the kernel from bootloader {}", got.program.display());
    let image =
        pvh::probe_bytes(&from, &got.kernel, &probe_options(search)).map_err(LaunchError::Image)?;
    drop(got.kernel);
    let modules = got
        .ramdisk
        .map(|r| pvh::ModuleInput {
            name: format!("the ramdisk from bootloader {}", got.program.display()),
            data: pvh::Payload::Shared {
                len: r.len(),
                start: 0,
                buf: std::sync::Arc::new(r),
            },
            cmdline: None,
        })
        .into_iter()
        .collect();
    let cmdline = got.args.as_deref().or(cmdline);
    plan_image(cfg, &image, cmdline, modules)
}

/// Plan and create the guest `cfg` describes.
pub fn launch<H, S>(
    hv: &H,
    xs: &S,
    cfg: &DomainConfig,
    opts: &create::CreateOptions,
    search: &FirmwareSearch,
) -> Result<create::Created, LaunchError>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let plan = plan_for(cfg, search, &opts.bootloader)?;
    Ok(create::create(hv, xs, cfg, &plan, opts)?)
}
