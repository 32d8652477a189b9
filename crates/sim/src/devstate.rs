//! What simulated hotplug leaves on the host: loop devices and vif interfaces (with the
//! bridge each is a port of), in `DIR/devices.json`, read and written under the host
//! lock. The file is removed when nothing is left in it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::disk::{self, HostLock};
use crate::xs;
use crate::SimError;

/// The block major of loop devices.
pub(crate) const LOOP_MAJOR: u32 = 7;

/// A simulated loop device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LoopRec {
    /// The image it is bound to (canonical path).
    pub file: PathBuf,
    /// The image's filesystem device and inode, for the sharing check.
    pub dev: u64,
    pub ino: u64,
    pub read_only: bool,
    /// The xenstore backend directory it was set up for.
    pub backend: String,
}

/// A vif's interface in dom0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IfaceRec {
    /// The bridge it is a port of (none for vif-route and vif-nat).
    pub bridge: Option<String>,
    /// The xenstore backend directory it belongs to.
    pub backend: String,
}

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DevState {
    /// Loop devices by minor.
    #[serde(default)]
    pub loops: BTreeMap<u32, LoopRec>,
    /// Interfaces by name.
    #[serde(default)]
    pub ifaces: BTreeMap<String, IfaceRec>,
}

fn path(dir: &Path) -> PathBuf {
    dir.join("devices.json")
}

impl DevState {
    /// Read the state (empty when there is no file). The caller holds the host lock.
    pub(crate) fn load(dir: &Path) -> Result<DevState, SimError> {
        Ok(disk::read_json(&path(dir))?.unwrap_or_default())
    }

    /// Write the state, or remove the file when it holds nothing.
    pub(crate) fn store(&self, dir: &Path) -> Result<(), SimError> {
        if self.loops.is_empty() && self.ifaces.is_empty() {
            disk::remove_atomic(&path(dir))
        } else {
            disk::write_json(&path(dir), self)
        }
    }

    /// The lowest free loop minor (as `losetup -f` picks).
    pub(crate) fn free_loop(&self) -> u32 {
        let mut n = 0;
        while self.loops.contains_key(&n) {
            n += 1;
        }
        n
    }
}

/// The device node of loop device `minor`.
pub(crate) fn loop_node(minor: u32) -> String {
    format!("/dev/loop{minor}")
}

/// Forget the interfaces of vif backends at or below `removed`.
pub(crate) fn drop_interfaces_below(dir: &Path, removed: &str) -> Result<(), SimError> {
    if !disk::exists_atomic(&path(dir)) {
        return Ok(());
    }
    let mut st = DevState::load(dir)?;
    let before = st.ifaces.len();
    st.ifaces
        .retain(|_, i| !xs::is_at_or_below(&i.backend, removed));
    if st.ifaces.len() != before {
        st.store(dir)?;
    }
    Ok(())
}

/// A loop device of the simulated host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LoopDevice {
    /// Its node, `/dev/loopN`.
    pub node: String,
    /// The image file it is bound to.
    pub file: PathBuf,
    /// Bound read-only (`losetup -r`).
    pub read_only: bool,
    /// The backend directory (`/local/domain/0/backend/vbd/D/N`) it was set up for.
    pub backend: String,
}

/// A vif's interface in the simulated host's dom0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VifInterface {
    /// Its name: `vifD.N`, or the `vifname` the config gave.
    pub name: String,
    /// The bridge it is a port of (`None` for vif-route and vif-nat).
    pub bridge: Option<String>,
    /// The backend directory (`/local/domain/0/backend/vif/D/N`) it belongs to.
    pub backend: String,
}

/// The loop devices and vif interfaces in `dir`'s state, read under the shared lock.
pub(crate) fn inspect(dir: &Path) -> Result<(Vec<LoopDevice>, Vec<VifInterface>), SimError> {
    let st = {
        let _lock = HostLock::acquire_shared(dir)?;
        DevState::load(dir)?
    };
    let loops = st
        .loops
        .into_iter()
        .map(|(minor, l)| LoopDevice {
            node: loop_node(minor),
            file: l.file,
            read_only: l.read_only,
            backend: l.backend,
        })
        .collect();
    let ifaces = st
        .ifaces
        .into_iter()
        .map(|(name, i)| VifInterface {
            name,
            bridge: i.bridge,
            backend: i.backend,
        })
        .collect();
    Ok((loops, ifaces))
}
