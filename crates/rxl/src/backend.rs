//! Choosing the host: real Xen (privcmd + xenstored) or a simulated one (`--sim DIR`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use devices::hotplug::{Hotplug, Scripts};
use xen_host::{DomId, Hypervisor, Store};
use xlcfg::hostconf::{HostConf, HostConfError, HotplugMode};

use crate::report::{print_diagnostics, Reported};

/// The host rxl acts on.
pub enum Backend {
    /// Real Xen.
    Xen {
        /// /dev/xen/privcmd.
        hv: Box<xencall::XenHost>,
        /// xenstored.
        /// xenstored (shared with the native hotplug runner).
        xs: Arc<xenstore::XsClient>,
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

/// The directory of the cache of decoded kernels rxl.conf names (`None`: "off"); on the
/// simulated host in DIR the same path under DIR.
pub fn kernel_cache_dir(sim: Option<&Path>, conf: &HostConf) -> Option<PathBuf> {
    let dir = conf.rxl.kernel_cache.as_deref()?;
    Some(match sim {
        Some(root) => root.join(dir.strip_prefix("/").unwrap_or(dir)),
        None => dir.to_path_buf(),
    })
}

/// The cache of decoded kernels creates use: `None` when rxl.conf turns it off, or (after
/// one warning on stderr) when it cannot be used, e.g. run as non-root without a writable
/// directory, or a directory that is not safe; a create then decodes its kernel as before.
pub fn kernel_cache(
    sim: Option<&Path>,
    conf: &HostConf,
    quiet: bool,
) -> Option<std::sync::Arc<pvh::KernelCache>> {
    let dir = kernel_cache_dir(sim, conf)?;
    match pvh::KernelCache::open(&dir, conf.rxl.kernel_cache_max_mib.saturating_mul(1 << 20)) {
        Ok(c) => Some(std::sync::Arc::new(c)),
        Err(e) => {
            if !quiet {
                eprintln!("rxl: warning: {e}; the kernel is decoded without the cache");
            }
            None
        }
    }
}

/// What carries out the hotplug commands of devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runner {
    /// Xen's scripts (`devices::hotplug::Scripts`).
    Scripts,
    /// rxl's native path (`hostdev::Native`: loop devices and bridge ports itself, any
    /// other script, such as a config's own `script=`, through the scripts).
    Native,
    /// The simulated host's hotplug (`sim::SimHotplug`), which simulates both paths.
    Simulated,
}

/// The runner for a host whose files say `mode`, and whether rxl runs hotplug commands at
/// all: with `run_hotplug_scripts = 0` (udev's job) it runs none, as libxl.
pub fn runner_for(mode: HotplugMode, sim: bool) -> (Runner, bool) {
    let runner = match mode {
        _ if sim => Runner::Simulated,
        HotplugMode::Native => Runner::Native,
        HotplugMode::Scripts | HotplugMode::Udev => Runner::Scripts,
    };
    (runner, mode != HotplugMode::Udev)
}

/// How bootloaders run on the host (`sim`: the simulated host in that directory), from its
/// files: rxl.conf's `bootloader_user` (a name or uid, default nobody; never root) and
/// `bootloader_timeout`. Each run's private directory is under the state directory's
/// `bootloader/`, its log `bootloader.HEXNAME.log` in the log directory. On the simulated
/// host a bare program name is looked up in DIR/bin first (standing for Xen's private bin
/// directory).
pub fn bootloader_options(
    sim: Option<&Path>,
    conf: &HostConf,
) -> anyhow::Result<toolstack::bootloader::BootloaderOptions> {
    let (state, logs) = match sim {
        Some(dir) => (dir.join("rxl"), dir.join("rxl").join("log")),
        None => (PathBuf::from(XEN_STATE_DIR), PathBuf::from(XEN_LOG_DIR)),
    };
    let mut o = toolstack::bootloader::BootloaderOptions::new(&state, Some(logs));
    if let Some(dir) = sim {
        o.private_bin = dir.join("bin");
    }
    // An unknown user fails only the creates that run a bootloader; `nobody` (the
    // default) is uid 65534 on a host whose user database lacks it.
    let user = &conf.rxl.bootloader_user;
    match user.parse::<u32>() {
        Ok(uid) => o.runas = uid,
        Err(_) if user == "nobody" => o.runas = toolstack::bootloader::nobody_uid(),
        Err(_) => match nix::unistd::User::from_name(user).ok().flatten() {
            Some(u) => o.runas = u.uid.as_raw(),
            None => {
                o.runas_error = Some(format!(
                    "bootloader_user = \"{user}\" in rxl.conf: no such user on this host \
                     (name an existing unprivileged user, or give a uid)"
                ))
            }
        },
    }
    o.timeout = std::time::Duration::from_secs(conf.rxl.bootloader_timeout_s);
    Ok(o)
}

/// Where rxl keeps its own state on a real host.
const XEN_STATE_DIR: &str = "/var/lib/rxl";
/// Where monitors log on a real host.
const XEN_LOG_DIR: &str = "/var/log/rxl";

/// rxl's state directory on the simulated host in `sim`, or on real Xen; what
/// [`Backend::state_dir`] gives, without opening the host.
pub fn state_dir_of(sim: Option<&Path>) -> PathBuf {
    match sim {
        Some(dir) => dir.join("rxl"),
        None => PathBuf::from(XEN_STATE_DIR),
    }
}

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
                    xs: Arc::new(xs),
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
        state_dir_of(self.sim_dir())
    }

    /// Where monitors write their logs.
    pub fn log_dir(&self) -> PathBuf {
        match self {
            Backend::Xen { .. } => PathBuf::from(XEN_LOG_DIR),
            Backend::Sim { dir, .. } => dir.join("rxl").join("log"),
        }
    }

    /// The simulated host's directory, `None` on real Xen.
    pub fn sim_dir(&self) -> Option<&Path> {
        match self {
            Backend::Xen { .. } => None,
            Backend::Sim { dir, .. } => Some(dir),
        }
    }

    /// How devices are set up on this host, from its files (xl.conf's
    /// `run_hotplug_scripts`, rxl.conf's `hotplug`; see [`read_host_conf`] and
    /// [`runner_for`]).
    ///
    /// On the simulated host `RXL_SIM_DEVICE_TIMEOUT_MS` sets every device timeout (so
    /// that tests of a stuck backend do not wait libxl's 10 s).
    pub fn device_options(&self) -> anyhow::Result<toolstack::devices::DeviceOptions> {
        let conf = read_host_conf(self.sim_dir(), false)?;
        Ok(self.device_options_for(&conf))
    }

    /// [`Backend::device_options`] for host files already read.
    pub fn device_options_for(&self, conf: &HostConf) -> toolstack::devices::DeviceOptions {
        let logs = self.log_dir();
        let (runner, run_scripts) = runner_for(conf.hotplug_mode(), self.sim_dir().is_some());
        let hotplug: Arc<dyn Hotplug> = match (self, runner) {
            (Backend::Sim { hotplug, .. }, _) => hotplug.clone(),
            (Backend::Xen { xs, .. }, Runner::Native) => {
                Arc::new(hostdev::Native::new(xs.clone(), Scripts))
            }
            (Backend::Xen { .. }, _) => Arc::new(Scripts),
        };
        let mut o = toolstack::devices::DeviceOptions::with(hotplug, logs.clone());
        o.run_scripts = run_scripts;
        o.dm = self.dm_options(logs);
        if let Backend::Sim { .. } = self {
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
        }
        tracing::debug!("devices: {o:?}");
        o
    }

    /// How device models run here: QEMU with its logs in the log directory, its QMP
    /// sockets in /var/run/xen (libxl's place) and rxl's record of its process in the state
    /// directory. On the simulated host the device model is `rxl --sim DIR
    /// sim-device-model` (sockets in DIR/run), and `RXL_SIM_DM_TIMEOUT_MS` sets its confirm
    /// timeout. `RXL_DEVICE_MODEL` names another program (tests; its arguments are QEMU's).
    pub fn dm_options(&self, log_dir: PathBuf) -> toolstack::dm::DmOptions {
        let mut o = toolstack::dm::DmOptions {
            log_dir,
            record_dir: self.state_dir().join("device-model"),
            ..Default::default()
        };
        if let Backend::Sim { dir, .. } = self {
            o.run_dir = dir.join("run");
            if let Ok(exe) = std::env::current_exe() {
                o.binary = exe;
                o.prefix_args = vec![
                    "--sim".into(),
                    dir.to_string_lossy().into_owned(),
                    "sim-device-model".into(),
                    "--".into(),
                ];
            }
            if let Some(ms) = std::env::var("RXL_SIM_DM_TIMEOUT_MS")
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
            {
                o.confirm_timeout = std::time::Duration::from_millis(ms);
            }
        }
        if let Some(bin) = std::env::var_os("RXL_DEVICE_MODEL").filter(|b| !b.is_empty()) {
            o.binary = PathBuf::from(bin);
            o.prefix_args.clear();
        }
        o
    }

    /// The stored resolved config of a domain, if rxl created it.
    pub fn stored_config(&self, dom: DomId) -> Option<serde_json::Value> {
        let record: toolstack::create::Record = toolstack::state::StateDir::new(self.state_dir())
            .load(dom)
            .ok()??;
        Some(record.config.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runner_follows_the_host_files() {
        use HotplugMode::*;
        assert_eq!(runner_for(Scripts, false), (Runner::Scripts, true));
        assert_eq!(runner_for(Native, false), (Runner::Native, true));
        assert_eq!(runner_for(Udev, false), (Runner::Scripts, false));
        assert_eq!(runner_for(Scripts, true), (Runner::Simulated, true));
        assert_eq!(runner_for(Native, true), (Runner::Simulated, true));
        assert_eq!(runner_for(Udev, true), (Runner::Simulated, false));
    }

    #[test]
    fn the_kernel_cache_is_on_by_default_and_under_the_simulated_host() {
        let mut conf = HostConf::default();
        assert_eq!(
            kernel_cache_dir(None, &conf).as_deref(),
            Some(Path::new("/var/cache/rxl/kernels"))
        );
        assert_eq!(
            kernel_cache_dir(Some(Path::new("/tmp/h")), &conf).as_deref(),
            Some(Path::new("/tmp/h/var/cache/rxl/kernels"))
        );
        conf.rxl.kernel_cache = None;
        assert_eq!(kernel_cache_dir(None, &conf), None);
        assert!(kernel_cache(None, &conf, true).is_none());
        // A directory that cannot be made (as non-root, or a file in the way) means no
        // cache, not a failure.
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("file"), b"").unwrap();
        conf.rxl.kernel_cache = Some(t.path().join("file/kernels"));
        assert!(kernel_cache(None, &conf, true).is_none());
    }
}
