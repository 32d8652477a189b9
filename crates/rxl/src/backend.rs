//! Choosing the host: real Xen (privcmd + xenstored) or a simulated one (`--sim DIR`).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use xen_host::{DomId, Hypervisor, Store};
use xlcfg::hostconf::{HostConf, HostConfError};

use crate::report::{print_diagnostics, Reported};

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

/// The host's files, xl.conf and rxl.conf: /etc/xen/xl.conf and /etc/rxl/rxl.conf on a
/// real host, DIR/etc/xl.conf and DIR/etc/rxl.conf on the simulated host in DIR.
pub fn host_conf_paths(sim: Option<&Path>) -> (PathBuf, PathBuf) {
    match sim {
        Some(dir) => (dir.join("etc/xl.conf"), dir.join("etc/rxl.conf")),
        None => (
            PathBuf::from(xlcfg::hostconf::XL_CONF),
            PathBuf::from(xlcfg::hostconf::RXL_CONF),
        ),
    }
}

/// Read the host's files (missing ones mean the defaults). Warnings are printed unless
/// `quiet`; errors are printed as `FILE:LINE:COL: error: ...` and returned as [`Reported`].
pub fn read_host_conf(sim: Option<&Path>, quiet: bool) -> anyhow::Result<HostConf> {
    let (xl, rxl) = host_conf_paths(sim);
    match xlcfg::hostconf::read(&xl, &rxl) {
        Ok(read) => {
            if !quiet {
                print_diagnostics(&read.warnings);
            }
            Ok(read.conf)
        }
        Err(HostConfError::Invalid { diagnostics, .. }) => {
            print_diagnostics(diagnostics.iter().filter(|d| !quiet || d.is_error()));
            Err(Reported.into())
        }
        Err(e) => Err(e.into()),
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
                let host = sim::SimHost::open(dir).with_context(|| {
                    format!("cannot open the simulated host in {}", dir.display())
                })?;
                Ok(Backend::Sim {
                    host: Box::new(host),
                    dir: dir.to_path_buf(),
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
    /// host its simulated hotplug, with the timeouts `RXL_SIM_DEVICE_TIMEOUT_MS` gives (so
    /// that tests of a stuck backend do not wait libxl's 10 s).
    pub fn device_options(&self) -> toolstack::devices::DeviceOptions {
        let logs = self.log_dir();
        match self {
            Backend::Xen { .. } => toolstack::devices::DeviceOptions::scripts(logs),
            Backend::Sim { .. } => {
                let mut o = toolstack::devices::DeviceOptions::scripts(logs);
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
