//! rxl's toolstack: builds domains from a config and a boot plan, and runs their life,
//! through the [`xen_host::Hypervisor`] and [`xen_host::Store`] traits only.

#![forbid(unsafe_code)]

pub mod boot;
pub mod create;
pub mod domains;
pub mod lifecycle;
pub mod lock;
pub mod memory;
pub mod monitor;
pub mod names;
pub mod process;
pub mod restarts;
pub mod state;
pub mod xs_layout;

use pvh::{BootPlan, FirmwareSearch};
use xen_host::{Hypervisor, Store};
use xlcfg::model::DomainConfig;

/// Why a guest could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The config cannot be booted by rxl.
    #[error(transparent)]
    Boot(#[from] boot::BootError),
    /// The boot image could not be planned (bad kernel, too little memory, ...).
    #[error(transparent)]
    Plan(#[from] pvh::Error),
    /// Building the domain failed.
    #[error(transparent)]
    Create(#[from] create::CreateError),
}

/// The boot plan of `cfg`: its image probed and laid out in guest memory.
pub fn plan_for(cfg: &DomainConfig, search: &FirmwareSearch) -> Result<BootPlan, LaunchError> {
    let request = boot::request(cfg, search)?;
    Ok(pvh::plan(&request)?)
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
    let plan = plan_for(cfg, search)?;
    Ok(create::create(hv, xs, cfg, &plan, opts)?)
}
