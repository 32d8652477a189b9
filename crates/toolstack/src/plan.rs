//! A guest's boot plan, whatever its type: the PVH layout ([`pvh::BootPlan`]) or the PV one
//! ([`pv::PvPlan`]). Both are pure data computed before anything exists on the host.

use pvh::BootPlan;

/// What a create builds from.
#[derive(Clone, Debug)]
pub enum GuestPlan {
    /// A PVH guest (an HVM container entered at the kernel's PVH entry point).
    Pvh(BootPlan),
    /// A PV guest (page tables of machine frames, start_info, the hypercall page).
    Pv(pv::PvPlan),
}

impl GuestPlan {
    /// The layout as `rxl create -n` prints it.
    pub fn layout_table(&self) -> String {
        match self {
            GuestPlan::Pvh(p) => p.layout_table(),
            GuestPlan::Pv(p) => p.layout_table(),
        }
    }

    /// The layout in `rxl create -n --json`.
    pub fn layout_json(&self) -> serde_json::Value {
        match self {
            GuestPlan::Pvh(p) => p.layout_json(),
            GuestPlan::Pv(p) => p.layout_json(),
        }
    }

    /// The PVH plan, if it is one.
    pub fn as_pvh(&self) -> Option<&BootPlan> {
        match self {
            GuestPlan::Pvh(p) => Some(p),
            GuestPlan::Pv(_) => None,
        }
    }

    /// The PV plan, if it is one.
    pub fn as_pv(&self) -> Option<&pv::PvPlan> {
        match self {
            GuestPlan::Pv(p) => Some(p),
            GuestPlan::Pvh(_) => None,
        }
    }
}
