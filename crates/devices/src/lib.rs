//! The pure core of rxl's block (vbd) and network (vif) devices, as libxl 4.17 sets them
//! up for a PV or PVH guest served by dom0's Linux blkback and netback:
//!
//! * [`vdev`]: the devid a virtual device name encodes (`xvda` = 51712, ...);
//! * [`assign`]: devids and MACs for every disk and vif of a [`DomainConfig`], with
//!   duplicates refused;
//! * [`nodes`]: the xenstore nodes (path, value, permissions) written for one device,
//!   with the checks that refuse what rxl cannot serve yet;
//! * [`hotplug`]: the hotplug script command line and environment, and a runner with a
//!   timeout, a kill and a log file.
//!
//! Nothing here talks to xenstore or Xen: the toolstack writes the node sets, waits for
//! the backend states and calls the runner. docs/devices.md gives the source of every
//! value and the sequence the toolstack runs.
//!
//! [`DomainConfig`]: xlcfg::DomainConfig

#![forbid(unsafe_code)]

pub mod assign;
pub mod hotplug;
pub mod image;
pub mod nodes;
pub mod plan;
pub mod vdev;

use std::fmt;

use serde::Serialize;
use xen_host::DomId;

pub use assign::{assign, Assigned, DiskDevice, VifDevice};
pub use nodes::{disk_backend, disk_nodes, vif_nodes, DeviceNodes, DiskBackend, Guest, Node, XsOp};
pub use plan::{plan, PlannedDevice};

/// Where libxl finds hotplug scripts named without a directory (`XEN_SCRIPT_DIR`).
pub const XEN_SCRIPT_DIR: &str = "/etc/xen/scripts";

/// The xenbus states of a device's frontend and backend (`XenbusState`,
/// xen/include/public/io/xenbus.h).
pub mod state {
    /// Initialising: libxl writes both sides with this.
    pub const INITIALISING: u8 = 1;
    /// InitWait: the backend driver probed the device; the hotplug script may run.
    pub const INIT_WAIT: u8 = 2;
    /// Initialised.
    pub const INITIALISED: u8 = 3;
    /// Connected.
    pub const CONNECTED: u8 = 4;
    /// Closing: written by the toolstack to start a teardown.
    pub const CLOSING: u8 = 5;
    /// Closed: the backend let go of the device.
    pub const CLOSED: u8 = 6;
}

/// The device classes this crate handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// A virtual block device (blkback).
    Vbd,
    /// A virtual network interface (netback).
    Vif,
}

impl DeviceKind {
    /// The name in xenstore paths and in `XENBUS_TYPE`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Vbd => "vbd",
            DeviceKind::Vif => "vif",
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The guest's own directory for the device: `/local/domain/D/device/KIND/N`.
pub fn frontend_path(kind: DeviceKind, domid: DomId, devid: u32) -> String {
    format!("/local/domain/{}/device/{kind}/{devid}", domid.0)
}

/// The backend's directory: `/local/domain/BE/backend/KIND/D/N`.
pub fn backend_path(kind: DeviceKind, backend: DomId, domid: DomId, devid: u32) -> String {
    backend_path_in(kind.as_str(), backend, domid, devid)
}

/// A backend directory under a class name that may differ from the frontend's:
/// `/local/domain/BE/backend/CLASS/D/N` (a disk QEMU serves is `qdisk`, its frontend
/// `vbd`).
pub fn backend_path_in(class: &str, backend: DomId, domid: DomId, devid: u32) -> String {
    format!(
        "/local/domain/{}/backend/{class}/{}/{devid}",
        backend.0, domid.0
    )
}

impl DeviceNodes {
    /// Whether QEMU serves this device (its backend directory is `backend/qdisk/...`).
    pub fn is_qdisk(&self) -> bool {
        self.backend
            .split('/')
            .nth(5)
            .is_some_and(|class| class == nodes::QDISK)
    }
}

/// The toolstack's private copy: `/libxl/D/device/KIND/N`.
pub fn libxl_path(kind: DeviceKind, domid: DomId, devid: u32) -> String {
    format!("/libxl/{}/device/{kind}/{devid}", domid.0)
}

/// A device rxl refuses or cannot set up, named the way the user wrote it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{device}: {message}")]
pub struct DeviceError {
    /// The device: `disk xvda (line 3:10)`, `vif 0 (00:16:3e:01:02:03)`.
    pub device: String,
    /// What is wrong.
    pub message: String,
}

impl DeviceError {
    pub(crate) fn new(device: impl Into<String>, message: impl Into<String>) -> DeviceError {
        DeviceError {
            device: device.into(),
            message: message.into(),
        }
    }
}

/// A config built from `text`, relative paths against /guests.
#[cfg(test)]
pub(crate) fn test_config(text: &str) -> xlcfg::DomainConfig {
    let parsed = xlcfg::parse_str("test.cfg", text);
    assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics);
    xlcfg::build(&parsed.settings, std::path::Path::new("/guests"))
        .expect("valid config")
        .config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            frontend_path(DeviceKind::Vbd, DomId(7), 51712),
            "/local/domain/7/device/vbd/51712"
        );
        assert_eq!(
            backend_path(DeviceKind::Vif, DomId::DOM0, DomId(7), 1),
            "/local/domain/0/backend/vif/7/1"
        );
        assert_eq!(
            libxl_path(DeviceKind::Vbd, DomId(7), 51712),
            "/libxl/7/device/vbd/51712"
        );
    }
}
