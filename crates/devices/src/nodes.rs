//! The xenstore nodes libxl writes for one vbd or vif, as data.
//!
//! Sources (Xen 4.17, tools/libs/light): `device_disk_add` (libxl_disk.c) for a disk's
//! keys, `libxl__device_add_async` (libxl_device.c) plus `libxl__set_xenstore_nic`
//! (libxl_nic.c) for a vif's, and `libxl__device_generic_add` (libxl_device.c) for the
//! directories, the `frontend`/`backend` links, the `/libxl` copy and the permissions.

use std::fmt;
use std::path::Path;

use serde::Serialize;
use xen_host::{Access, DomId, Perm};
use xlcfg::model::{
    DiskAccess, DiskBackendType, DiskFormat, DiskSpecification, DiskTargetKind, DiskType, NicType,
    VifSpec,
};
use xlcfg::DomainType;

use crate::assign::{DiskDevice, VifDevice};
use crate::{backend_path_in, frontend_path, libxl_path, state, DeviceError, DeviceKind};

/// The MTU libxl assumes and leaves out of the backend (`LIBXL_DEVICE_NIC_MTU_DEFAULT`).
pub const DEFAULT_MTU: u32 = 1500;

/// The guest the devices belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guest {
    /// Its domid.
    pub domid: DomId,
    /// Its type.
    pub domain_type: DomainType,
}

/// One node: where, what, and the permissions it ends up with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Node {
    /// Absolute path.
    pub path: String,
    /// Value (may be empty).
    pub value: String,
    /// Its permissions: the first entry is the owner and the access of every domain not
    /// listed.
    pub perms: Vec<Perm>,
}

/// Everything written for one device, in libxl's order, in one transaction.
///
/// To write it: remove [`DeviceNodes::libxl`], [`DeviceNodes::frontend`] and
/// [`DeviceNodes::backend`]; create the frontend and backend directories with
/// [`DeviceNodes::frontend_perms`] and [`DeviceNodes::backend_perms`]; then write each
/// node, setting its permissions where they differ from its directory's (xenstored gives
/// a new node its parent's permissions).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceNodes {
    /// vbd or vif.
    pub kind: DeviceKind,
    /// The guest.
    pub domid: DomId,
    /// The devid.
    pub devid: u32,
    /// The backend domain.
    pub backend_domid: DomId,
    /// The frontend directory.
    pub frontend: String,
    /// The backend directory.
    pub backend: String,
    /// The toolstack's copy.
    pub libxl: String,
    /// Permissions of the frontend directory: the guest owns it, the backend reads.
    pub frontend_perms: Vec<Perm>,
    /// Permissions of the backend directory: the backend owns it, the guest reads.
    pub backend_perms: Vec<Perm>,
    /// The nodes, in write order: the `/libxl` links, the frontend, the backend, the
    /// `/libxl` copy of the backend's keys.
    pub nodes: Vec<Node>,
}

impl DeviceNodes {
    /// The value of the node at `path`.
    pub fn value(&self, path: &str) -> Option<&str> {
        self.nodes
            .iter()
            .find(|n| n.path == path)
            .map(|n| n.value.as_str())
    }

    /// The permissions of the frontend or backend directory `node` is in; `None` for the
    /// `/libxl` copy.
    pub fn dir_perms(&self, node: &Node) -> Option<&[Perm]> {
        let under = |dir: &str| {
            node.path
                .strip_prefix(dir)
                .is_some_and(|r| r.starts_with('/'))
        };
        if under(&self.frontend) {
            Some(&self.frontend_perms)
        } else if under(&self.backend) {
            Some(&self.backend_perms)
        } else {
            None
        }
    }
}

/// One xenstore operation of a device's setup, in the order libxl does them in
/// `libxl__device_generic_add`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum XsOp {
    /// Remove a directory and everything below it (no error if missing).
    Rm(String),
    /// Create an empty directory and set its permissions.
    Mkdir {
        /// The directory.
        path: String,
        /// Its permissions.
        perms: Vec<Perm>,
    },
    /// Write a node; set `perms` on it when `Some` (otherwise it keeps what it inherits
    /// from its directory).
    Write {
        /// The node.
        path: String,
        /// Its value.
        value: String,
        /// Permissions to set, when they differ from the directory's.
        perms: Option<Vec<Perm>>,
    },
}

impl DeviceNodes {
    /// The operations that set the device up, for one transaction: remove the old
    /// `/libxl` copy, frontend and backend; create the frontend and backend directories
    /// with their permissions; write every node. The `/libxl` copy inherits dom0-only
    /// permissions from `/libxl/D`, which the domain's creation made.
    pub fn setup_ops(&self) -> Vec<XsOp> {
        let mut ops = vec![
            XsOp::Rm(self.libxl.clone()),
            XsOp::Rm(self.frontend.clone()),
            XsOp::Mkdir {
                path: self.frontend.clone(),
                perms: self.frontend_perms.clone(),
            },
            XsOp::Rm(self.backend.clone()),
            XsOp::Mkdir {
                path: self.backend.clone(),
                perms: self.backend_perms.clone(),
            },
        ];
        for n in &self.nodes {
            let inherited = self.dir_perms(n).is_none_or(|p| p == n.perms.as_slice());
            ops.push(XsOp::Write {
                path: n.path.clone(),
                value: n.value.clone(),
                perms: (!inherited).then(|| n.perms.clone()),
            });
        }
        ops
    }

    /// The first step of a teardown, given the backend's `state` as read in the same
    /// transaction (`libxl__initiate_device_generic_remove`): `None` when the state is
    /// missing (the device is already gone); otherwise, for a forced removal (destroy)
    /// remove the frontend, then write `online=0`, and `state=5` unless the backend is
    /// already Closed (6). The toolstack then waits for state 6.
    pub fn close_ops(&self, backend_state: Option<&str>, force: bool) -> Option<Vec<XsOp>> {
        let st = backend_state?;
        let mut ops = Vec::new();
        if force {
            ops.push(XsOp::Rm(self.frontend.clone()));
        }
        let write = |key: &str, value: String| XsOp::Write {
            path: format!("{}/{key}", self.backend),
            value,
            perms: None,
        };
        ops.push(write("online", "0".into()));
        // A value that is not a number counts as not Closed.
        if st.trim().parse::<u8>().ok() != Some(state::CLOSED) {
            ops.push(write("state", state::CLOSING.to_string()));
        }
        Some(ops)
    }

    /// The directories a teardown removes once the backend is closed and the script has
    /// run, in libxl's order (`libxl__device_destroy`: frontend, `/libxl` copy, backend).
    pub fn teardown_paths(&self) -> [&str; 3] {
        [&self.frontend, &self.libxl, &self.backend]
    }
}

/// One node a line: `path = "value" (perms)`, xenstore-ls style.
impl fmt::Display for DeviceNodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let perms = |p: &[Perm]| p.iter().map(|p| p.to_wire()).collect::<Vec<_>>().join(",");
        writeln!(f, "{} (dir {})", self.frontend, perms(&self.frontend_perms))?;
        writeln!(f, "{} (dir {})", self.backend, perms(&self.backend_perms))?;
        for n in &self.nodes {
            writeln!(f, "{} = \"{}\" ({})", n.path, n.value, perms(&n.perms))?;
        }
        Ok(())
    }
}

/// Collects the three key lists of `libxl__device_generic_add`.
struct Builder {
    back: Vec<(&'static str, String)>,
    front: Vec<(&'static str, String)>,
    ro_front: Vec<(&'static str, String)>,
}

impl Builder {
    fn finish(
        self,
        kind: DeviceKind,
        backend_dir: &str,
        guest: &Guest,
        devid: u32,
        be: DomId,
    ) -> DeviceNodes {
        let fe_dir = frontend_path(kind, guest.domid, devid);
        let be_dir = backend_path_in(backend_dir, be, guest.domid, devid);
        let libxl_dir = libxl_path(kind, guest.domid, devid);
        let frontend_perms = vec![perm(guest.domid, Access::None), perm(be, Access::Read)];
        let backend_perms = vec![perm(be, Access::None), perm(guest.domid, Access::Read)];
        // /libxl/D is created by the toolstack for dom0 alone (libxl__domain_make).
        let libxl_perms = vec![perm(DomId::DOM0, Access::None)];
        let mut nodes = Vec::new();
        let mut add = |dir: &str, key: &str, value: &str, perms: &[Perm]| {
            nodes.push(Node {
                path: format!("{dir}/{key}"),
                value: value.to_owned(),
                perms: perms.to_vec(),
            });
        };
        add(&libxl_dir, "frontend", &fe_dir, &libxl_perms);
        add(&libxl_dir, "backend", &be_dir, &libxl_perms);
        add(&fe_dir, "backend", &be_dir, &frontend_perms);
        for (k, v) in &self.front {
            add(&fe_dir, k, v, &frontend_perms);
        }
        // Read-only frontend keys get the backend's list: the guest may read, not write.
        for (k, v) in &self.ro_front {
            add(&fe_dir, k, v, &backend_perms);
        }
        add(&be_dir, "frontend", &fe_dir, &backend_perms);
        for (k, v) in &self.back {
            add(&be_dir, k, v, &backend_perms);
        }
        // The copy "so we need not trust the backend".
        for (k, v) in &self.back {
            add(&libxl_dir, k, v, &libxl_perms);
        }
        DeviceNodes {
            kind,
            domid: guest.domid,
            devid,
            backend_domid: be,
            frontend: fe_dir,
            backend: be_dir,
            libxl: libxl_dir,
            frontend_perms,
            backend_perms,
            nodes,
        }
    }
}

fn perm(domid: DomId, access: Access) -> Perm {
    Perm { domid, access }
}

/// `script` made absolute against `script_dir` (`libxl__abs_path`).
pub fn script_path(script: &str, script_dir: &Path) -> String {
    if script.starts_with('/') {
        script.to_owned()
    } else {
        script_dir.join(script).to_string_lossy().into_owned()
    }
}

fn bool01(b: bool) -> String {
    if b { "1" } else { "0" }.to_owned()
}

/// The message for anything that only QEMU could serve and rxl does not ask it to yet.
pub const NEEDS_QDISK: &str = "needs a QEMU disk backend, not supported yet";

/// What serves a disk (`libxl__device_disk_set_backend`, libxl_device.c).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskBackend {
    /// The kernel's blkback (libxl's PHY): a block device, or an image file through the
    /// `block` script's loop device.
    Phy,
    /// QEMU's xen-block in the guest's device model (libxl's QDISK): every non-raw
    /// format, and `backendtype=qdisk`.
    Qdisk,
}

/// The backend libxl chooses for `spec`, or why rxl refuses the disk: a raw disk goes to
/// blkback unless `backendtype=qdisk`; qcow, qcow2, vhd and qed go to QEMU; blktap,
/// virtio, a qdisk driven by a script or served from another domain are refused.
pub fn disk_backend(
    spec: &xlcfg::model::DiskSpec,
    backend_domid: DomId,
) -> Result<DiskBackend, String> {
    let backend = match (spec.backendtype, spec.format) {
        (_, DiskFormat::Empty) => return Err(format!("an empty drive {NEEDS_QDISK}")),
        (None | Some(DiskBackendType::Phy), DiskFormat::Raw) => DiskBackend::Phy,
        (Some(DiskBackendType::Phy), f) => {
            return Err(format!(
                "format {} cannot be served by blkback (backendtype=phy): leave backendtype \
                 out (or write backendtype=qdisk) to have QEMU serve it",
                format_name(&f)
            ))
        }
        (None | Some(DiskBackendType::Qdisk), _) => DiskBackend::Qdisk,
        // libxl_device.c disk_try_backend: "blktap not available".
        (Some(DiskBackendType::Tap), _) => {
            return Err("backendtype=tap: blktap is not available".into())
        }
        (Some(DiskBackendType::Standalone), _) => {
            return Err("backendtype=standalone (virtio-disk) is not supported".into())
        }
    };
    if backend == DiskBackend::Qdisk {
        let name = match spec.backendtype {
            Some(DiskBackendType::Qdisk) => "backendtype=qdisk".to_owned(),
            _ => format!("format {}", format_name(&spec.format)),
        };
        // disk_try_backend: a QDISK disk with a script is "bad_script".
        if spec.script.is_some() || spec.target_kind == DiskTargetKind::Script {
            return Err(format!(
                "{name} is served by QEMU, which runs no hotplug script: drop script="
            ));
        }
        if backend_domid != DomId::DOM0 {
            return Err(format!(
                "{name} is served by QEMU, which rxl starts in Domain-0 only: drop backend="
            ));
        }
    }
    Ok(backend)
}

/// The nodes of a disk, with its checks: what [`disk_backend`] refuses, virtio, an empty
/// drive and (for PVH) a CD-ROM are refused; an HVM guest's CD-ROM too, for now.
///
/// A blkback disk gets `type = phy`, its target verbatim in `params` and the `block`
/// script; a QEMU disk gets its backend directory under `backend/qdisk` (the frontend
/// stays `device/vbd/N`), `type = qdisk`, `params = FORMAT:PATH` (`aio:` for raw) and no
/// script (`device_disk_add`, libxl_disk.c).
pub fn disk_nodes(
    guest: &Guest,
    disk: &DiskDevice,
    script_dir: &Path,
) -> Result<DeviceNodes, DeviceError> {
    let spec = &disk.spec;
    let refuse = |m: String| Err(DeviceError::new(disk.label(), m));
    let backend = match disk_backend(spec, disk.backend) {
        Ok(b) => b,
        Err(m) => return refuse(m),
    };
    if spec.specification == Some(DiskSpecification::Virtio) {
        return refuse("specification=virtio is not supported".into());
    }
    match (spec.devtype, guest.domain_type) {
        (DiskType::Cdrom, DomainType::Pvh) => {
            return refuse(
                "devtype=cdrom is not supported for PVH guests: attach the image as a \
                 read-only disk (devtype=disk, access=ro)"
                    .into(),
            )
        }
        // libxl__device_disk_setdefault forces qdisk for an HVM guest's CD-ROM.
        (DiskType::Cdrom, DomainType::Hvm) => {
            return refuse(format!("a CD-ROM of an HVM guest {NEEDS_QDISK}"))
        }
        _ => {}
    }
    let Some(target) = &spec.target else {
        return refuse(format!("an empty drive {NEEDS_QDISK}"));
    };
    if spec.target_kind == DiskTargetKind::Empty {
        return refuse(format!("an empty drive {NEEDS_QDISK}"));
    }
    let readwrite = spec.access == DiskAccess::Rw;
    let is_cdrom = spec.devtype == DiskType::Cdrom;
    let device_type = if is_cdrom { "cdrom" } else { "disk" };

    let mut b = Builder {
        back: Vec::new(),
        front: Vec::new(),
        ro_front: Vec::new(),
    };
    let path = target.value.to_string_lossy().into_owned();
    match backend {
        DiskBackend::Phy => {
            b.back.push(("params", path));
            b.back.push((
                "script",
                script_path(spec.script.as_deref().unwrap_or("block"), script_dir),
            ));
        }
        DiskBackend::Qdisk => {
            b.back
                .push(("params", format!("{}:{path}", qdisk_format(&spec.format))));
        }
    }
    b.back.push(("frontend-id", guest.domid.0.to_string()));
    b.back.push(("online", "1".into()));
    // 1 only for a CD-ROM whose medium can be changed (libxl_cdrom_insert).
    b.back.push(("removable", "0".into()));
    // Legacy, ignored by blkback; libxl always writes 1.
    b.back.push(("bootable", "1".into()));
    b.back.push(("state", state::INITIALISING.to_string()));
    b.back.push(("dev", spec.vdev.clone()));
    b.back.push((
        "type",
        match backend {
            DiskBackend::Phy => "phy",
            DiskBackend::Qdisk => QDISK,
        }
        .into(),
    ));
    b.back
        .push(("mode", if readwrite { "w" } else { "r" }.into()));
    b.back.push(("device-type", device_type.into()));
    if spec.direct_io_safe {
        b.back.push(("direct-io-safe", "1".into()));
    }
    b.back
        .push(("discard-enable", bool01(spec.discard.unwrap_or(readwrite))));
    b.back.push(("specification", "xen".into()));

    b.front.push(("backend-id", disk.backend.0.to_string()));
    b.front.push(("state", state::INITIALISING.to_string()));
    b.front.push(("virtual-device", disk.devid.to_string()));
    b.front.push(("device-type", device_type.into()));
    b.front
        .push(("trusted", bool01(spec.trusted.unwrap_or(true))));
    if guest.domain_type == DomainType::Pv {
        // xc_domain_get_native_protocol: 64-bit PV only (Debian's Xen has no PV32).
        b.front.push(("protocol", "x86_64-abi".into()));
    }
    let backend_dir = match backend {
        DiskBackend::Phy => DeviceKind::Vbd.as_str(),
        DiskBackend::Qdisk => QDISK,
    };
    Ok(b.finish(
        DeviceKind::Vbd,
        backend_dir,
        guest,
        disk.devid,
        disk.backend,
    ))
}

/// The backend directory's class name of a disk QEMU serves (`backend/qdisk/D/N`) and
/// its `type` node.
pub const QDISK: &str = "qdisk";

/// The format prefix of a qdisk's `params` (`libxl__device_disk_string_of_format`).
fn qdisk_format(f: &DiskFormat) -> &'static str {
    match f {
        DiskFormat::Raw | DiskFormat::Empty => "aio",
        DiskFormat::Qcow => "qcow",
        DiskFormat::Qcow2 => "qcow2",
        DiskFormat::Vhd => "vhd",
        DiskFormat::Qed => "qed",
    }
}

/// The format as the config writes it (`qcow2`).
fn format_name(v: &DiskFormat) -> String {
    format!("{v:?}").to_lowercase()
}

/// Whether a vif of a `domain_type` guest is also the emulated NIC of its device model
/// (libxl's `LIBXL_NIC_TYPE_VIF_IOEMU`): an HVM guest's vif unless it says `type=vif`.
pub fn vif_is_emulated(domain_type: DomainType, spec: &VifSpec) -> bool {
    domain_type == DomainType::Hvm && spec.nic_type != Some(NicType::Vif)
}

/// The backend's `type` node of a vif that is also an emulated NIC
/// (`libxl_nic_type_to_string`); the hotplug tap command is run for such a vif.
pub const VIF_IOEMU: &str = "vif_ioemu";

/// The nodes of a vif served by netback, with its checks: `type=ioemu` is refused for
/// PV and PVH guests as libxl refuses it. An HVM vif without `type=vif` is both the
/// netback vif and QEMU's emulated NIC; its backend's `type` says so (`vif_ioemu`).
pub fn vif_nodes(
    guest: &Guest,
    vif: &VifDevice,
    script_dir: &Path,
) -> Result<DeviceNodes, DeviceError> {
    let spec = &vif.spec;
    let refuse = |m: &str| Err(DeviceError::new(vif.label(), m));
    if matches!(guest.domain_type, DomainType::Pv | DomainType::Pvh)
        && spec.nic_type == Some(NicType::Ioemu)
    {
        // libxl__device_nic_setdefault, libxl_nic.c
        return refuse("trying to create PV or PVH guest with an emulated interface");
    }
    let nic_type = if vif_is_emulated(guest.domain_type, spec) {
        VIF_IOEMU
    } else {
        "vif"
    };
    let mac = vif.mac.to_string();
    let mtu = spec.mtu.unwrap_or(DEFAULT_MTU);
    let mut b = Builder {
        back: Vec::new(),
        front: Vec::new(),
        ro_front: Vec::new(),
    };
    // libxl__device_add_async starts every device's backend with these three.
    b.back.push(("frontend-id", guest.domid.0.to_string()));
    b.back.push(("online", "1".into()));
    b.back.push(("state", state::INITIALISING.to_string()));
    b.back
        .push(("script", script_path(&spec.script, script_dir)));
    if let Some(n) = &spec.vifname {
        b.back.push(("vifname", n.clone()));
    }
    b.back.push(("mac", mac.clone()));
    if let Some(ip) = &spec.ip {
        b.back.push(("ip", ip.clone()));
    }
    if let Some(g) = &spec.gatewaydev {
        b.back.push(("gatewaydev", g.clone()));
    }
    if let Some(r) = &spec.rate {
        b.back.push((
            "rate",
            format!("{},{}", r.bytes_per_interval(), r.interval_usecs),
        ));
    }
    if mtu != DEFAULT_MTU {
        b.back.push(("mtu", mtu.to_string()));
    }
    b.back.push(("bridge", spec.bridge.clone()));
    b.back.push(("handle", vif.devid.to_string()));
    b.back.push(("type", nic_type.into()));
    // Makes netback wait for the script before it connects.
    b.back.push(("hotplug-status", String::new()));

    b.front.push(("backend-id", vif.backend.0.to_string()));
    b.front.push(("state", state::INITIALISING.to_string()));
    b.front.push(("handle", vif.devid.to_string()));
    b.front.push(("mac", mac));
    b.front
        .push(("trusted", bool01(spec.trusted.unwrap_or(true))));
    b.ro_front.push(("mtu", mtu.to_string()));
    Ok(b.finish(
        DeviceKind::Vif,
        DeviceKind::Vif.as_str(),
        guest,
        vif.devid,
        vif.backend,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assign::{assign, Assigned};

    const SCRIPTS: &str = "/etc/xen/scripts";

    fn devices(lines: &str) -> Assigned {
        let cfg = crate::test_config(&format!(
            "name = \"g\"\ntype = \"pvh\"\nkernel = \"/k\"\n{lines}"
        ));
        assign(&cfg, &mut |_| None).expect("assigned")
    }

    fn pvh(domid: u16) -> Guest {
        Guest {
            domid: DomId(domid),
            domain_type: DomainType::Pvh,
        }
    }

    fn disk_err(guest: &Guest, line: &str) -> String {
        let a = devices(&format!("disk = [ \"{line}\" ]\n"));
        disk_nodes(guest, &a.disks[0], Path::new(SCRIPTS))
            .unwrap_err()
            .to_string()
    }

    // Checked line by line against device_disk_add (libxl_disk.c) and
    // libxl__device_generic_add (libxl_device.c), Xen 4.17: see docs/devices.md.
    #[test]
    fn image_file_disk_node_set() {
        let a = devices("disk = [ \"root.img,raw,xvda,rw\" ]\n");
        let n = disk_nodes(&pvh(7), &a.disks[0], Path::new(SCRIPTS)).expect("nodes");
        insta::assert_snapshot!(n.to_string());
    }

    #[test]
    fn vif_node_set() {
        let a = devices("vif = [ \"mac=00:16:3e:01:02:03,bridge=xenbr0\" ]\n");
        let n = vif_nodes(&pvh(7), &a.vifs[0], Path::new(SCRIPTS)).expect("nodes");
        insta::assert_snapshot!(n.to_string());
    }

    #[test]
    fn setup_ops_set_perms_only_where_they_differ() {
        let a = devices("vif = [ \"mac=00:16:3e:01:02:03\" ]\n");
        let n = vif_nodes(&pvh(7), &a.vifs[0], Path::new(SCRIPTS)).expect("nodes");
        let ops = n.setup_ops();
        assert_eq!(ops[0], XsOp::Rm("/libxl/7/device/vif/0".into()));
        assert_eq!(
            ops[2],
            XsOp::Mkdir {
                path: "/local/domain/7/device/vif/0".into(),
                perms: n.frontend_perms.clone()
            }
        );
        let with_perms: Vec<_> = ops
            .iter()
            .filter_map(|o| match o {
                XsOp::Write {
                    path,
                    perms: Some(p),
                    ..
                } => Some((path.as_str(), p.clone())),
                _ => None,
            })
            .collect();
        // Only the read-only frontend mtu differs from its directory.
        assert_eq!(
            with_perms,
            [(
                "/local/domain/7/device/vif/0/mtu",
                vec![
                    Perm {
                        domid: DomId(0),
                        access: Access::None
                    },
                    Perm {
                        domid: DomId(7),
                        access: Access::Read
                    }
                ]
            )]
        );
        assert_eq!(
            n.teardown_paths(),
            [
                "/local/domain/7/device/vif/0",
                "/libxl/7/device/vif/0",
                "/local/domain/0/backend/vif/7/0"
            ]
        );
    }

    #[test]
    fn close_ops_as_libxl_starts_a_removal() {
        let a = devices("disk = [ \"/d/x.img,raw,xvda,rw\" ]\n");
        let n = disk_nodes(&pvh(7), &a.disks[0], Path::new(SCRIPTS)).expect("nodes");
        let be = "/local/domain/0/backend/vbd/7/51712";
        let w = |k: &str, v: &str| XsOp::Write {
            path: format!("{be}/{k}"),
            value: v.into(),
            perms: None,
        };
        assert_eq!(n.close_ops(None, true), None);
        assert_eq!(
            n.close_ops(Some("4"), true),
            Some(vec![
                XsOp::Rm("/local/domain/7/device/vbd/51712".into()),
                w("online", "0"),
                w("state", "5")
            ])
        );
        assert_eq!(
            n.close_ops(Some("4"), false),
            Some(vec![w("online", "0"), w("state", "5")])
        );
        assert_eq!(n.close_ops(Some("6"), false), Some(vec![w("online", "0")]));
    }

    #[test]
    fn phy_read_only_disk() {
        let a = devices("disk = [ \"phy:/dev/vg/data,xvdb,r\" ]\n");
        let n = disk_nodes(&pvh(3), &a.disks[0], Path::new(SCRIPTS)).expect("nodes");
        let be = "/local/domain/0/backend/vbd/3/51728";
        assert_eq!(n.value(&format!("{be}/params")), Some("/dev/vg/data"));
        assert_eq!(n.value(&format!("{be}/mode")), Some("r"));
        assert_eq!(n.value(&format!("{be}/type")), Some("phy"));
        // discard defaults to the access: off for read-only
        assert_eq!(n.value(&format!("{be}/discard-enable")), Some("0"));
        assert_eq!(
            n.value("/local/domain/3/device/vbd/51728/virtual-device"),
            Some("51728")
        );
        assert_eq!(n.value("/local/domain/3/device/vbd/51728/protocol"), None);
    }

    #[test]
    fn disk_options_reach_the_nodes() {
        let a = devices(
            "disk = [ \"vdev=xvdc,access=rw,script=block-custom,no-discard,untrusted,direct-io-safe,target=/d/x.img\" ]\n",
        );
        let n = disk_nodes(&pvh(3), &a.disks[0], Path::new(SCRIPTS)).expect("nodes");
        let be = "/local/domain/0/backend/vbd/3/51744";
        assert_eq!(
            n.value(&format!("{be}/script")),
            Some("/etc/xen/scripts/block-custom")
        );
        assert_eq!(n.value(&format!("{be}/discard-enable")), Some("0"));
        assert_eq!(n.value(&format!("{be}/direct-io-safe")), Some("1"));
        assert_eq!(
            n.value("/local/domain/3/device/vbd/51744/trusted"),
            Some("0")
        );
        let pv = Guest {
            domid: DomId(3),
            domain_type: DomainType::Pv,
        };
        let n = disk_nodes(&pv, &a.disks[0], Path::new(SCRIPTS)).expect("nodes");
        assert_eq!(
            n.value("/local/domain/3/device/vbd/51744/protocol"),
            Some("x86_64-abi")
        );
    }

    #[test]
    fn disks_rxl_cannot_serve_are_refused() {
        assert!(disk_err(&pvh(1), "/d/x.img,raw,xvda,r,devtype=cdrom")
            .contains("devtype=cdrom is not supported for PVH guests"));
        let hvm = Guest {
            domid: DomId(1),
            domain_type: DomainType::Hvm,
        };
        assert!(disk_err(&hvm, "/d/x.iso,raw,hdc,r,devtype=cdrom")
            .contains("a CD-ROM of an HVM guest needs a QEMU disk backend"));
        let pv = Guest {
            domid: DomId(1),
            domain_type: DomainType::Pv,
        };
        let a = devices("disk = [ \"/d/x.iso,raw,xvdc,r,devtype=cdrom\" ]\n");
        let n = disk_nodes(&pv, &a.disks[0], Path::new(SCRIPTS)).expect("a PV CD-ROM is blkback's");
        assert_eq!(
            n.value("/local/domain/0/backend/vbd/1/51744/device-type"),
            Some("cdrom")
        );
        assert!(
            disk_err(&pvh(1), "vdev=xvda,backendtype=tap,target=/d/x.img")
                .contains("blktap is not available")
        );
        assert_eq!(
            disk_err(
                &pvh(1),
                "vdev=xvda,format=qcow2,backendtype=phy,target=/d/x.qcow2"
            ),
            "disk xvda (line 4:57): format qcow2 cannot be served by blkback (backendtype=phy): \
             leave backendtype out (or write backendtype=qdisk) to have QEMU serve it"
        );
        assert!(disk_err(
            &pvh(1),
            "vdev=xvda,format=qcow2,script=block-x,target=/d/x.qcow2"
        )
        .contains("format qcow2 is served by QEMU, which runs no hotplug script"));
    }

    // Checked against device_disk_add (libxl_disk.c) and libxl__device_from_disk: the
    // backend directory is `qdisk`, the frontend and the /libxl copy stay `vbd`.
    #[test]
    fn qcow2_disk_node_set() {
        let a = devices("disk = [ \"/d/root.qcow2,qcow2,xvda,rw\" ]\n");
        let n = disk_nodes(&pvh(7), &a.disks[0], Path::new(SCRIPTS)).expect("nodes");
        assert!(n.is_qdisk());
        assert_eq!(n.backend, "/local/domain/0/backend/qdisk/7/51712");
        assert_eq!(n.frontend, "/local/domain/7/device/vbd/51712");
        assert_eq!(n.libxl, "/libxl/7/device/vbd/51712");
        insta::assert_snapshot!(n.to_string());
        // No script: none runs for QEMU's backends.
        assert_eq!(
            crate::hotplug::command_for(&n, crate::hotplug::Action::Add),
            None
        );
    }

    #[test]
    fn qdisk_params_name_the_format() {
        let be = "/local/domain/0/backend/qdisk/3/51712";
        for (line, params) in [
            ("/d/x.img,raw,xvda,rw,backendtype=qdisk", "aio:/d/x.img"),
            ("/d/x.vhd,vhd,xvda,rw", "vhd:/d/x.vhd"),
            ("/d/x.qed,qed,xvda,rw", "qed:/d/x.qed"),
            ("/d/x.qcow,qcow,xvda,rw", "qcow:/d/x.qcow"),
        ] {
            let a = devices(&format!("disk = [ \"{line}\" ]\n"));
            let n = disk_nodes(&pvh(3), &a.disks[0], Path::new(SCRIPTS)).expect(line);
            assert_eq!(n.value(&format!("{be}/params")), Some(params), "{line}");
            assert_eq!(n.value(&format!("{be}/type")), Some("qdisk"));
            assert_eq!(n.value(&format!("{be}/script")), None);
        }
        let pv = Guest {
            domid: DomId(3),
            domain_type: DomainType::Pv,
        };
        let a = devices("disk = [ \"/d/x.qcow2,qcow2,xvda,r\" ]\n");
        let n = disk_nodes(&pv, &a.disks[0], Path::new(SCRIPTS)).expect("nodes");
        assert_eq!(
            n.value("/local/domain/3/device/vbd/51712/protocol"),
            Some("x86_64-abi")
        );
        assert_eq!(n.value(&format!("{be}/mode")), Some("r"));
        assert_eq!(
            n.value(&format!("{be}/frontend")),
            Some("/local/domain/3/device/vbd/51712")
        );
        assert_eq!(
            n.value("/local/domain/3/device/vbd/51712/backend"),
            Some(be)
        );
        assert_eq!(n.value("/libxl/3/device/vbd/51712/backend"), Some(be));
    }

    #[test]
    fn vif_options_reach_the_nodes() {
        let a = devices(
            "vif = [ \"mac=00:16:3e:0a:0b:0c,bridge=br9,vifname=web0,ip=192.0.2.5,rate=10Mb/s,mtu=9000,gatewaydev=eth1,script=/opt/vif-x,untrusted\" ]\n",
        );
        let n = vif_nodes(&pvh(5), &a.vifs[0], Path::new(SCRIPTS)).expect("nodes");
        let be = "/local/domain/0/backend/vif/5/0";
        let keys: Vec<_> = n
            .nodes
            .iter()
            .filter_map(|x| x.path.strip_prefix(&format!("{be}/")))
            .collect();
        assert_eq!(
            keys,
            [
                "frontend",
                "frontend-id",
                "online",
                "state",
                "script",
                "vifname",
                "mac",
                "ip",
                "gatewaydev",
                "rate",
                "mtu",
                "bridge",
                "handle",
                "type",
                "hotplug-status"
            ]
        );
        assert_eq!(n.value(&format!("{be}/script")), Some("/opt/vif-x"));
        assert_eq!(n.value(&format!("{be}/mtu")), Some("9000"));
        // 10 Mb/s = 1250000 bytes/s; over xl's default 50 ms interval: 62500 bytes.
        assert_eq!(n.value(&format!("{be}/rate")), Some("62500,50000"));
        assert_eq!(n.value("/local/domain/5/device/vif/0/mtu"), Some("9000"));
        assert_eq!(n.value("/local/domain/5/device/vif/0/trusted"), Some("0"));
    }

    #[test]
    fn emulated_vifs_are_hvm_only() {
        let a = devices("vif = [ \"type=ioemu\" ]\n");
        let e = vif_nodes(&pvh(5), &a.vifs[0], Path::new(SCRIPTS)).unwrap_err();
        assert!(
            e.message
                .contains("trying to create PV or PVH guest with an emulated interface"),
            "{e}"
        );
        let hvm = Guest {
            domid: DomId(5),
            domain_type: DomainType::Hvm,
        };
        // HVM's default and type=ioemu: netback's vif and QEMU's NIC, as libxl marks it.
        for line in [
            "vif = [ \"bridge=xenbr0\" ]\n",
            "vif = [ \"type=ioemu\" ]\n",
        ] {
            let a = devices(line);
            assert!(vif_is_emulated(DomainType::Hvm, &a.vifs[0].spec));
            let n = vif_nodes(&hvm, &a.vifs[0], Path::new(SCRIPTS)).expect("an HVM vif");
            let be = "/local/domain/0/backend/vif/5/0";
            assert_eq!(n.value(&format!("{be}/type")), Some("vif_ioemu"));
            assert_eq!(n.value(&format!("{be}/bridge")), Some("xenbr0"));
            assert_eq!(n.value("/local/domain/5/device/vif/0/handle"), Some("0"));
        }
        let a = devices("vif = [ \"type=vif\" ]\n");
        assert!(!vif_is_emulated(DomainType::Hvm, &a.vifs[0].spec));
        let n = vif_nodes(&hvm, &a.vifs[0], Path::new(SCRIPTS)).expect("a PV vif of HVM");
        assert_eq!(n.value("/local/domain/0/backend/vif/5/0/type"), Some("vif"));
        let a = devices("vif = [ \"bridge=xenbr0\" ]\n");
        assert!(!vif_is_emulated(DomainType::Pvh, &a.vifs[0].spec));
        let n = vif_nodes(&pvh(5), &a.vifs[0], Path::new(SCRIPTS)).expect("a PVH vif");
        assert_eq!(n.value("/local/domain/0/backend/vif/5/0/type"), Some("vif"));
    }

    #[test]
    fn script_disks_keep_their_target_verbatim() {
        let a = devices("disk = [ \"vdev=xvda,access=rw,script=block-iscsi,target=iqn.2026-01.org.example:disk0\" ]\n");
        let n = disk_nodes(&pvh(2), &a.disks[0], Path::new(SCRIPTS)).expect("nodes");
        let be = "/local/domain/0/backend/vbd/2/51712";
        assert_eq!(
            n.value(&format!("{be}/params")),
            Some("iqn.2026-01.org.example:disk0")
        );
        assert_eq!(
            n.value(&format!("{be}/script")),
            Some("/etc/xen/scripts/block-iscsi")
        );
    }
}
