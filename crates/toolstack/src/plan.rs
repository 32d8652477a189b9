//! A guest's boot plan, whatever its type: the PVH layout ([`pvh::BootPlan`]), the HVM one
//! ([`pvh::HvmPlan`]: hvmloader and its BIOS in the same kind of layout) or the PV one
//! ([`pv::PvPlan`]). All are pure data computed before anything exists on the host.

use pvh::{BootPlan, HvmPlan};

/// What a create builds from.
#[derive(Clone, Debug)]
pub enum GuestPlan {
    /// A PVH guest (an HVM container entered at the kernel's PVH entry point).
    Pvh(BootPlan),
    /// An HVM guest (an HVM container entered in hvmloader, with a device model).
    Hvm(HvmPlan),
    /// A PV guest (page tables of machine frames, start_info, the hypercall page).
    Pv(pv::PvPlan),
}

impl GuestPlan {
    /// The layout as `rxl create -n` prints it.
    pub fn layout_table(&self) -> String {
        match self {
            GuestPlan::Pvh(p) => p.layout_table(),
            GuestPlan::Hvm(p) => p.boot.layout_table(),
            GuestPlan::Pv(p) => p.layout_table(),
        }
    }

    /// The layout in `rxl create -n --json`.
    pub fn layout_json(&self) -> serde_json::Value {
        match self {
            GuestPlan::Pvh(p) => p.layout_json(),
            GuestPlan::Hvm(p) => {
                let mut v = p.boot.layout_json();
                if let Some(o) = v.as_object_mut() {
                    o.insert("bios".into(), serde_json::json!(p.bios.as_str()));
                    o.insert("mmio_start".into(), serde_json::json!(p.mmio_start));
                    o.insert(
                        "ioreq_server_pfn".into(),
                        serde_json::json!(p.ioreq_server_pfn),
                    );
                }
                v
            }
            GuestPlan::Pv(p) => p.layout_json(),
        }
    }

    /// The layout of an HVM container (PVH, or HVM's hvmloader layout), if it is one.
    pub fn as_pvh(&self) -> Option<&BootPlan> {
        match self {
            GuestPlan::Pvh(p) => Some(p),
            GuestPlan::Hvm(p) => Some(&p.boot),
            GuestPlan::Pv(_) => None,
        }
    }

    /// The HVM plan, if it is one.
    pub fn as_hvm(&self) -> Option<&HvmPlan> {
        match self {
            GuestPlan::Hvm(p) => Some(p),
            _ => None,
        }
    }

    /// The PV plan, if it is one.
    pub fn as_pv(&self) -> Option<&pv::PvPlan> {
        match self {
            GuestPlan::Pv(p) => Some(p),
            _ => None,
        }
    }
}

/// The plan of an HVM guest: hvmloader and the BIOS image resolved as
/// [`crate::boot::hvm_request`] does, read, checked and laid out.
pub fn plan_hvm(
    cfg: &xlcfg::model::DomainConfig,
    search: &pvh::FirmwareSearch,
) -> Result<GuestPlan, crate::LaunchError> {
    let req = crate::boot::hvm_request(cfg, search)?;
    pvh::plan_hvm(&req)
        .map(GuestPlan::Hvm)
        .map_err(crate::LaunchError::Plan)
}
