//! Devids and MACs for every disk and vif of a domain config, with duplicates refused.
//!
//! libxl takes a disk's devid from its vdev (`libxl__device_disk_dev_number`) and gives
//! vifs without a devid the highest devid so far plus one, in config order
//! (`libxl__device_nic_set_devids`, libxl_nic.c); xlcfg has already filled each vif's
//! devid (its index unless `devid=` was given) and MAC (random unless `mac=` was given).

use serde::Serialize;
use xen_host::DomId;
use xlcfg::model::{DiskSpec, MacAddr, VifSpec};
use xlcfg::DomainConfig;

use crate::vdev;
use crate::DeviceError;

/// A disk with what the toolstack resolved for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DiskDevice {
    /// The spec from the config.
    pub spec: DiskSpec,
    /// The devid its vdev encodes.
    pub devid: u32,
    /// The backend domain (dom0 unless `backend=`).
    pub backend: DomId,
}

impl DiskDevice {
    /// How errors name this disk: `disk xvda`, with the cfg position of its target when
    /// known.
    pub fn label(&self) -> String {
        disk_label(&self.spec)
    }
}

/// A vif with what the toolstack resolved for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VifDevice {
    /// The spec from the config.
    pub spec: VifSpec,
    /// Its devid (the `handle`).
    pub devid: u32,
    /// Its MAC address.
    pub mac: MacAddr,
    /// The backend domain (dom0 unless `backend=`).
    pub backend: DomId,
}

impl VifDevice {
    /// How errors name this vif: `vif 0 (00:16:3e:12:34:56)`.
    pub fn label(&self) -> String {
        format!("vif {} ({})", self.devid, self.mac)
    }
}

/// Every device of a domain, in config order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Assigned {
    /// The disks.
    pub disks: Vec<DiskDevice>,
    /// The vifs.
    pub vifs: Vec<VifDevice>,
}

pub fn disk_label(spec: &DiskSpec) -> String {
    match &spec.target {
        Some(t) if t.line > 0 => format!("disk {} (line {}:{})", spec.vdev, t.line, t.column),
        _ => format!("disk {}", spec.vdev),
    }
}

/// A MAC under Xen's OUI 00:16:3e from three random bytes, the first with its top bit
/// cleared (`libxl__device_nic_setdefault`, libxl_nic.c).
pub fn xen_mac(random: [u8; 3]) -> MacAddr {
    MacAddr([0x00, 0x16, 0x3e, random[0] & 0x7f, random[1], random[2]])
}

/// A fresh [`xen_mac`], from the first three bytes of a random (v4) UUID, as libxl takes
/// them from `libxl_uuid_generate`.
pub fn random_mac() -> MacAddr {
    let r = uuid::Uuid::new_v4().into_bytes();
    xen_mac([r[0], r[1], r[2]])
}

/// Resolve the devid of every disk and the backend of every device of `cfg`.
/// `resolve_backend` maps a `backend=` domain name to its domid (`None`: no such
/// domain). Refused: a bad vdev; two disks with one vdev or one devid (`xvda` and
/// `51712` are one device); two vifs with one devid or one MAC; a multicast MAC.
pub fn assign(
    cfg: &DomainConfig,
    resolve_backend: &mut dyn FnMut(&str) -> Option<DomId>,
) -> Result<Assigned, DeviceError> {
    let mut out = Assigned::default();
    for (i, spec) in cfg.disks.iter().enumerate() {
        let label = disk_label(spec);
        let devid = vdev::devid(&spec.vdev).map_err(|e| DeviceError::new(&label, e.reason))?;
        if let Some((j, other)) = out.disks.iter().enumerate().find(|(_, d)| d.devid == devid) {
            let message = if other.spec.vdev == spec.vdev {
                format!(
                    "disk {} uses vdev {} already (disk {})",
                    j + 1,
                    spec.vdev,
                    i + 1
                )
            } else {
                format!(
                    "vdev {} is devid {devid}, the same device as vdev {} of disk {} (disk {})",
                    spec.vdev,
                    other.spec.vdev,
                    j + 1,
                    i + 1
                )
            };
            return Err(DeviceError::new(label, message));
        }
        let backend = backend_of(spec.backend.as_deref(), &label, resolve_backend)?;
        out.disks.push(DiskDevice {
            spec: spec.clone(),
            devid,
            backend,
        });
    }
    for (i, spec) in cfg.vifs.iter().enumerate() {
        let dev = VifDevice {
            spec: spec.clone(),
            devid: spec.devid,
            mac: spec.mac,
            backend: DomId::DOM0,
        };
        let label = dev.label();
        if dev.mac.is_multicast() {
            return Err(DeviceError::new(
                label,
                format!(
                    "MAC {} is a multicast address (vif {}): clear the low bit of the first octet",
                    dev.mac,
                    i + 1
                ),
            ));
        }
        for (j, other) in out.vifs.iter().enumerate() {
            let what = if other.devid == dev.devid {
                format!("devid {}", dev.devid)
            } else if other.mac == dev.mac {
                format!("MAC {}", dev.mac)
            } else {
                continue;
            };
            return Err(DeviceError::new(
                label,
                format!("vif {} uses {what} already (vif {})", j + 1, i + 1),
            ));
        }
        let backend = backend_of(spec.backend.as_deref(), &label, resolve_backend)?;
        out.vifs.push(VifDevice { backend, ..dev });
    }
    Ok(out)
}

fn backend_of(
    name: Option<&str>,
    label: &str,
    resolve: &mut dyn FnMut(&str) -> Option<DomId>,
) -> Result<DomId, DeviceError> {
    match name {
        None => Ok(DomId::DOM0),
        Some(n) => resolve(n).ok_or_else(|| {
            DeviceError::new(label, format!("backend domain \"{n}\" does not exist"))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_config as config;

    fn no_backends(_: &str) -> Option<DomId> {
        None
    }

    #[test]
    fn xen_mac_masks_the_fourth_octet() {
        assert_eq!(xen_mac([0xff, 0xee, 0xdd]).to_string(), "00:16:3e:7f:ee:dd");
        assert_eq!(xen_mac([0x80, 0x00, 0x01]).to_string(), "00:16:3e:00:00:01");
        for _ in 0..256 {
            let m = random_mac();
            assert_eq!(m.0[..3], [0x00, 0x16, 0x3e]);
            assert!(m.0[3] < 0x80);
            assert!(!m.is_multicast());
        }
    }

    #[test]
    fn devids_from_vdevs_and_config_order() {
        let cfg = config(
            "name = \"g\"\ntype = \"pvh\"\nkernel = \"/k\"\n\
             disk = [ \"/img/a.raw,raw,xvdb,rw\", \"/img/b.raw,raw,xvda,r\", \"phy:/dev/vg/c,hdc,w\" ]\n\
             vif = [ \"bridge=br1\", \"mac=00:16:3e:00:00:02\" ]\n",
        );
        let a = assign(&cfg, &mut no_backends).expect("assigned");
        let disks: Vec<_> = a
            .disks
            .iter()
            .map(|d| (d.spec.vdev.as_str(), d.devid))
            .collect();
        assert_eq!(disks, [("xvdb", 51728), ("xvda", 51712), ("hdc", 5632)]);
        let vifs: Vec<_> = a.vifs.iter().map(|v| v.devid).collect();
        assert_eq!(vifs, [0, 1]);
        assert_eq!(a.vifs[1].mac.to_string(), "00:16:3e:00:00:02");
        assert!(a.vifs.iter().all(|v| v.backend == DomId::DOM0));
    }

    #[test]
    fn one_device_under_two_names_is_refused() {
        // xlcfg accepts only names; a devid given as a number reaches here from JSON.
        let mut cfg = config(
            "name = \"g\"\ntype = \"pvh\"\nkernel = \"/k\"\n\
             disk = [ \"/img/a.raw,raw,xvda,rw\", \"/img/b.raw,raw,xvdb,rw\" ]\n",
        );
        cfg.disks[1].vdev = "51712".into();
        let e = assign(&cfg, &mut no_backends).unwrap_err();
        assert_eq!(
            e.to_string(),
            "disk 51712 (line 4:37): vdev 51712 is devid 51712, the same device as vdev xvda \
             of disk 1 (disk 2)"
        );
    }

    #[test]
    fn duplicate_vdev_is_refused() {
        // xlcfg refuses this already; build the config by hand to check this layer too.
        let mut cfg =
            config("name = \"g\"\ntype = \"pvh\"\nkernel = \"/k\"\ndisk = [ \"/img/a.raw,raw,xvda,rw\" ]\n");
        cfg.disks.push(cfg.disks[0].clone());
        let e = assign(&cfg, &mut no_backends).unwrap_err();
        assert!(
            e.message.contains("disk 1 uses vdev xvda already (disk 2)"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_mac_and_devid_are_refused() {
        let mut cfg = config(
            "name = \"g\"\ntype = \"pvh\"\nkernel = \"/k\"\nvif = [ \"mac=00:16:3e:00:00:01\" ]\n",
        );
        let mut second = cfg.vifs[0].clone();
        second.devid = 1;
        cfg.vifs.push(second.clone());
        let e = assign(&cfg, &mut no_backends).unwrap_err();
        assert_eq!(
            e.to_string(),
            "vif 1 (00:16:3e:00:00:01): vif 1 uses MAC 00:16:3e:00:00:01 already (vif 2)"
        );
        cfg.vifs[1].devid = 0;
        cfg.vifs[1].mac = xen_mac([1, 2, 3]);
        let e = assign(&cfg, &mut no_backends).unwrap_err();
        assert_eq!(
            e.to_string(),
            "vif 0 (00:16:3e:01:02:03): vif 1 uses devid 0 already (vif 2)"
        );
    }

    #[test]
    fn backends_are_resolved_by_name() {
        let cfg = config(
            "name = \"g\"\ntype = \"pvh\"\nkernel = \"/k\"\n\
             disk = [ \"/img/a.raw,raw,xvda,rw,backend=dd\" ]\nvif = [ \"backend=nd\" ]\n",
        );
        let mut resolve = |n: &str| (n == "dd").then_some(DomId(3));
        let e = assign(&cfg, &mut resolve).unwrap_err();
        assert!(
            e.message.contains("backend domain \"nd\" does not exist"),
            "{e}"
        );
        let mut resolve = |n: &str| Some(DomId(if n == "dd" { 3 } else { 4 }));
        let a = assign(&cfg, &mut resolve).expect("assigned");
        assert_eq!(a.disks[0].backend, DomId(3));
        assert_eq!(a.vifs[0].backend, DomId(4));
    }

    #[test]
    fn bad_vdev_names_the_disk() {
        let mut cfg =
            config("name = \"g\"\ntype = \"pvh\"\nkernel = \"/k\"\ndisk = [ \"/img/a.raw,raw,xvda,rw\" ]\n");
        cfg.disks[0].vdev = "hde".into();
        let e = assign(&cfg, &mut no_backends).unwrap_err();
        assert_eq!(
            e.to_string(),
            "disk hde (line 4:11): disk letters \"e\" are past the last hd disk"
        );
    }
}
