//! rxl's toolstack: builds domains from a config and a boot plan, and runs their life,
//! through the [`xen_host::Hypervisor`] and [`xen_host::Store`] traits only.

#![forbid(unsafe_code)]

pub mod boot;
pub mod create;
pub mod domains;
pub mod lifecycle;
pub mod lock;
pub mod memory;
pub mod state;
pub mod xs_layout;
