//! Choosing the host: real Xen (privcmd + xenstored) or a simulated one (`--sim DIR`).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use xen_host::{DomId, Hypervisor, Store};

/// The host rxl acts on.
pub enum Backend {
    /// Real Xen.
    Xen {
        /// /dev/xen/privcmd.
        hv: Box<xencall::XenHost>,
        /// xenstored.
        xs: Box<xenstore::XsClient>,
    },
    /// A simulated host whose state lives in a directory.
    Sim {
        /// The host.
        host: Box<sim::SimHost>,
        /// Its state directory.
        dir: PathBuf,
        /// Its simulated hotplug (one per process, so its fault counters count this
        /// process's commands).
        hotplug: std::sync::Arc<sim::SimHotplug>,
    },
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Xen { .. } => f.write_str("Backend::Xen"),
            Backend::Sim { dir, .. } => write!(f, "Backend::Sim({})", dir.display()),
        }
    }
}

/// Where rxl keeps its own state on a real host.
const XEN_STATE_DIR: &str = "/var/lib/rxl";
/// Where monitors log on a real host.
const XEN_LOG_DIR: &str = "/var/log/rxl";

impl Backend {
    /// Open the simulated host in `sim`, or real Xen.
    pub fn open(sim: Option<&Path>) -> anyhow::Result<Backend> {
        match sim {
            Some(dir) => {
                let opening = || format!("cannot open the simulated host in {}", dir.display());
                let host = sim::SimHost::open(dir).with_context(opening)?;
                let hotplug = sim::SimHotplug::open(dir).with_context(opening)?;
                Ok(Backend::Sim {
                    host: Box::new(host),
                    dir: dir.to_path_buf(),
                    hotplug: std::sync::Arc::new(hotplug),
                })
            }
            None => {
                let hv = xencall::XenHost::open()?;
                let xs = xenstore::XsClient::open().context("cannot connect to xenstored")?;
                Ok(Backend::Xen {
                    hv: Box::new(hv),
                    xs: Box::new(xs),
                })
            }
        }
    }

    /// The hypervisor.
    pub fn hv(&self) -> &dyn Hypervisor {
        match self {
            Backend::Xen { hv, .. } => hv.as_ref(),
            Backend::Sim { host, .. } => host.as_ref(),
        }
    }

    /// The xenstore.
    pub fn xs(&self) -> &dyn Store {
        match self {
            Backend::Xen { xs, .. } => xs.as_ref(),
            Backend::Sim { host, .. } => host.as_ref(),
        }
    }

    /// rxl's own state directory on this host (stored configs, locks).
    pub fn state_dir(&self) -> PathBuf {
        match self {
            Backend::Xen { .. } => PathBuf::from(XEN_STATE_DIR),
            Backend::Sim { dir, .. } => dir.join("rxl"),
        }
    }

    /// Where monitors write their logs.
    pub fn log_dir(&self) -> PathBuf {
        match self {
            Backend::Xen { .. } => PathBuf::from(XEN_LOG_DIR),
            Backend::Sim { dir, .. } => dir.join("rxl").join("log"),
        }
    }

    /// How devices are set up on this host: Xen's scripts on real Xen; on the simulated
    /// host its simulated hotplug ([`sim::SimHotplug`]), with the timeouts `RXL_SIM_DEVICE_TIMEOUT_MS` gives (so
    /// that tests of a stuck backend do not wait libxl's 10 s).
    pub fn device_options(&self) -> toolstack::devices::DeviceOptions {
        let logs = self.log_dir();
        match self {
            Backend::Xen { .. } => toolstack::devices::DeviceOptions::scripts(logs),
            Backend::Sim { hotplug, .. } => {
                let mut o = toolstack::devices::DeviceOptions::with(hotplug.clone(), logs);
                if let Some(ms) = std::env::var("RXL_SIM_DEVICE_TIMEOUT_MS")
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    let t = std::time::Duration::from_millis(ms);
                    o.timeouts = toolstack::devices::Timeouts {
                        init: t,
                        hotplug: t,
                        destroy: t,
                    };
                }
                o
            }
        }
    }

    /// The stored resolved config of a domain, if rxl created it.
    pub fn stored_config(&self, dom: DomId) -> Option<serde_json::Value> {
        let record: toolstack::create::Record = toolstack::state::StateDir::new(self.state_dir())
            .load(dom)
            .ok()??;
        Some(record.config.to_json())
    }
}
