//! Every device of a domain, checked and computed before anything is written: what
//! `rxl create -n` shows and what a create step walks.

use std::fmt;
use std::path::Path;

use serde::Serialize;
use xen_host::DomId;
use xlcfg::model::{DiskAccess, DiskTargetKind};
use xlcfg::DomainConfig;

use crate::assign::{assign, DiskDevice, VifDevice};
use crate::hotplug::{command_for, Action, HotplugCommand};
use crate::nodes::{disk_nodes, vif_nodes, DeviceNodes, Guest};
use crate::{DeviceError, DeviceKind};

/// One device, ready to be set up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedDevice {
    /// vbd or vif.
    pub kind: DeviceKind,
    /// Its devid.
    pub devid: u32,
    /// How errors name it (`disk xvda (line 4:10)`, `vif 0 (00:16:3e:..)`).
    pub label: String,
    /// What serves it, in words: `blkback, image file through a loop device`,
    /// `blkback, block device`, `netback on bridge xenbr0`.
    pub backend_kind: String,
    /// The backend domain.
    pub backend: DomId,
    /// Disks: the target as the backend gets it (`params`); vifs: `None`.
    pub target: Option<String>,
    /// Disks: `r` or `w`.
    pub mode: Option<&'static str>,
    /// Vifs: the MAC.
    pub mac: Option<String>,
    /// The nodes to write.
    pub nodes: DeviceNodes,
    /// The script to run once the backend is in InitWait (`None`: none is run, as
    /// libxl runs none for a backend in another domain, nor for QEMU's).
    pub hotplug_add: Option<HotplugCommand>,
    /// Whether the guest's device model (QEMU in dom0) serves it: a qdisk disk.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub device_model: bool,
}

impl fmt::Display for PlannedDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} devid {}: {}",
            self.kind, self.devid, self.backend_kind
        )?;
        if self.backend != DomId::DOM0 {
            write!(f, " in domain {}", self.backend.0)?;
        }
        if let Some(t) = &self.target {
            write!(f, ", {t}")?;
        }
        if let Some(m) = self.mode {
            write!(f, " ({m})")?;
        }
        if let Some(m) = &self.mac {
            write!(f, ", mac {m}")?;
        }
        if let Some(h) = &self.hotplug_add {
            write!(f, ", script {}", h.script.display())?;
        }
        Ok(())
    }
}

/// Check and compute every device of `cfg` for `guest`: disks first, then vifs, each
/// in config order (libxl adds the disks before the nics). The first problem found is
/// the error.
pub fn plan(
    guest: &Guest,
    cfg: &DomainConfig,
    script_dir: &Path,
    resolve_backend: &mut dyn FnMut(&str) -> Option<DomId>,
) -> Result<Vec<PlannedDevice>, DeviceError> {
    let assigned = assign(cfg, resolve_backend)?;
    let mut out = Vec::new();
    for d in &assigned.disks {
        out.push(disk(guest, d, script_dir)?);
    }
    for v in &assigned.vifs {
        out.push(vif(guest, v, script_dir)?);
    }
    Ok(out)
}

/// One disk, checked and computed (also what `block-attach` sets up).
pub fn disk(
    guest: &Guest,
    d: &DiskDevice,
    script_dir: &Path,
) -> Result<PlannedDevice, DeviceError> {
    let nodes = disk_nodes(guest, d, script_dir)?;
    let qdisk = nodes.is_qdisk();
    let backend_kind = match (qdisk, d.spec.target_kind) {
        (true, _) => "QEMU qdisk in the device model",
        (false, DiskTargetKind::File) => "blkback, image file through a loop device",
        (false, DiskTargetKind::Device) => "blkback, block device",
        (false, _) => "blkback, target given to the script",
    };
    if qdisk {
        if let Some(t) = &d.spec.target {
            crate::image::check(&t.value, d.spec.format)
                .map_err(|m| DeviceError::new(d.label(), m))?;
        }
    }
    Ok(PlannedDevice {
        kind: DeviceKind::Vbd,
        devid: d.devid,
        label: d.label(),
        backend_kind: backend_kind.to_owned(),
        backend: d.backend,
        target: d
            .spec
            .target
            .as_ref()
            .map(|t| t.value.to_string_lossy().into_owned()),
        mode: Some(match d.spec.access {
            DiskAccess::Rw => "w",
            DiskAccess::Ro => "r",
        }),
        mac: None,
        hotplug_add: hotplug_in_dom0(&nodes),
        device_model: qdisk,
        nodes,
    })
}

/// Whether any of `devs` needs the guest's device model (QEMU in dom0).
pub fn needs_device_model(devs: &[PlannedDevice]) -> bool {
    devs.iter().any(|d| d.device_model)
}

/// One vif, checked and computed (also what `network-attach` sets up).
pub fn vif(guest: &Guest, v: &VifDevice, script_dir: &Path) -> Result<PlannedDevice, DeviceError> {
    let nodes = vif_nodes(guest, v, script_dir)?;
    Ok(PlannedDevice {
        kind: DeviceKind::Vif,
        devid: v.devid,
        label: v.label(),
        backend_kind: format!("netback on bridge {}", v.spec.bridge),
        backend: v.backend,
        target: None,
        mode: None,
        mac: Some(v.mac.to_string()),
        hotplug_add: hotplug_in_dom0(&nodes),
        device_model: false,
        nodes,
    })
}

/// libxl runs scripts only for backends in its own domain (`device_hotplug`): a driver
/// domain runs its own.
fn hotplug_in_dom0(nodes: &DeviceNodes) -> Option<HotplugCommand> {
    if nodes.backend_domid == DomId::DOM0 {
        command_for(nodes, Action::Add)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xlcfg::DomainType;

    const GUEST: Guest = Guest {
        domid: DomId(6),
        domain_type: DomainType::Pvh,
    };

    #[test]
    fn dry_run_lines() {
        let cfg = crate::test_config(
            "name = \"g\"\ntype = \"pvh\"\nkernel = \"/k\"\n\
             disk = [ \"root.img,raw,xvda,rw\", \"phy:/dev/vg/data,xvdb,r\" ]\n\
             vif = [ \"mac=00:16:3e:01:02:03\", \"mac=00:16:3e:01:02:04,bridge=br1,backend=nd\" ]\n",
        );
        let guest = GUEST;
        let p = plan(&guest, &cfg, Path::new("/etc/xen/scripts"), &mut |_| {
            Some(DomId(2))
        })
        .expect("plan");
        let lines: Vec<_> = p.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "vbd devid 51712: blkback, image file through a loop device, /guests/root.img (w), script /etc/xen/scripts/block",
                "vbd devid 51728: blkback, block device, /dev/vg/data (r), script /etc/xen/scripts/block",
                "vif devid 0: netback on bridge xenbr0, mac 00:16:3e:01:02:03, script /etc/xen/scripts/vif-bridge",
                "vif devid 1: netback on bridge br1 in domain 2, mac 00:16:3e:01:02:04",
            ]
        );
        assert_eq!(p[3].nodes.backend, "/local/domain/2/backend/vif/6/1");
    }

    #[test]
    fn the_first_refusal_is_the_error() {
        let cfg = crate::test_config(
            "name = \"g\"\ntype = \"pvh\"\nkernel = \"/k\"\n\
             disk = [ \"root.img,raw,xvda,rw\", \"x.qcow2,qcow2,xvdb,rw\" ]\n",
        );
        let guest = GUEST;
        let e = plan(&guest, &cfg, Path::new("/s"), &mut |_| None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "disk xvdb (line 4:35): disk image /guests/x.qcow2 does not exist"
        );
    }

    #[test]
    fn a_qcow2_disk_is_served_by_the_device_model() {
        let dir = tempfile::tempdir().expect("dir");
        let img = dir.path().join("root.qcow2");
        let mut header = crate::image::QCOW_MAGIC.to_vec();
        header.extend(3u32.to_be_bytes());
        header.extend([0u8; 100]);
        std::fs::write(&img, &header).expect("write");
        let cfg = crate::test_config(&format!(
            "name = \"g\"\ntype = \"pvh\"\nkernel = \"/k\"\n\
             disk = [ \"{},qcow2,xvda,rw\", \"root.img,raw,xvdb,rw\" ]\n",
            img.display()
        ));
        let p = plan(&GUEST, &cfg, Path::new("/s"), &mut |_| None).expect("plan");
        assert!(p[0].device_model && !p[1].device_model);
        assert!(needs_device_model(&p));
        assert_eq!(p[0].hotplug_add, None);
        assert_eq!(
            p[0].to_string(),
            format!(
                "vbd devid 51712: QEMU qdisk in the device model, {} (w)",
                img.display()
            )
        );
        // A raw image labelled qcow2 is refused before anything is built.
        std::fs::write(&img, [0u8; 512]).expect("write");
        let e = plan(&GUEST, &cfg, Path::new("/s"), &mut |_| None).unwrap_err();
        assert!(e.to_string().starts_with("disk xvda (line 4:"), "{e}");
        assert!(e.message.contains("is not a qcow2 image"), "{e}");
    }
}
