//! The host's own config files: xl's /etc/xen/xl.conf and rxl's /etc/rxl/rxl.conf.
//!
//! Both use the xl.cfg syntax and are read with this crate's parser, so a syntax error is
//! reported as `FILE:LINE:COL: error: ...`. A file that does not exist means the built-in
//! defaults (xl's, for xl.conf), as for xl. Keys of xl.conf that rxl does not use are
//! ignored without a word, as xl ignores keys it does not know; docs/config-reference.md
//! lists every xl.conf key and whether rxl honours it.

use std::path::{Path, PathBuf};

use crate::model::VifDefaults;
use crate::parse::{parse_file, ReadError};
use crate::settings::{Diagnostic, Setting, Settings, ValueKind};

/// Where xl (and rxl) read xl's host defaults on a real host.
pub const XL_CONF: &str = "/etc/xen/xl.conf";
/// Where rxl reads its own host settings on a real host.
pub const RXL_CONF: &str = "/etc/rxl/rxl.conf";

/// What rxl takes from /etc/xen/xl.conf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XlConf {
    /// `vif.default.bridge`, `vif.default.script`, `vif.default.backend`,
    /// `vif.default.gatewaydev` (and the deprecated `defaultbridge`, `vifscript`).
    pub vif: VifDefaults,
    /// `run_hotplug_scripts` (default 1): when 0 the toolstack runs no hotplug script and
    /// udev runs them, as with libxl.
    pub run_hotplug_scripts: bool,
}

impl Default for XlConf {
    fn default() -> XlConf {
        XlConf {
            vif: VifDefaults::default(),
            run_hotplug_scripts: true,
        }
    }
}

/// How rxl brings up a device's dom0 side (`hotplug =` in rxl.conf).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HotplugChoice {
    /// Run Xen's hotplug scripts (/etc/xen/scripts/block, vif-bridge, ...) as libxl does.
    Scripts,
    /// rxl does the scripts' work itself (loop devices, bridge ports), with no script
    /// process. A device whose config names its own `script=` still runs that script.
    Native,
}

impl HotplugChoice {
    /// The value as rxl.conf writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            HotplugChoice::Scripts => "scripts",
            HotplugChoice::Native => "native",
        }
    }
}

/// The default `kernel_cache` directory.
pub const DEFAULT_KERNEL_CACHE: &str = "/var/cache/rxl/kernels";

/// The default `kernel_cache_max_mib`.
pub const DEFAULT_KERNEL_CACHE_MAX_MIB: u64 = 512;

/// The default `autostart_dir`: where xl's xendomains service looks (XENDOMAINS_AUTO).
pub const DEFAULT_AUTOSTART_DIR: &str = "/etc/xen/auto";

/// What rxl takes from /etc/rxl/rxl.conf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RxlConf {
    /// `hotplug = "scripts" | "native"` (default "scripts").
    pub hotplug: HotplugChoice,
    /// `bootloader_user`: the user (a name or a numeric uid) a bootloader is told to run
    /// as with `--runas` (default "nobody").
    pub bootloader_user: String,
    /// `bootloader_timeout`: seconds a bootloader may run (default 120, as libxl).
    pub bootloader_timeout_s: u64,
    /// `kernel_cache = "/dir" | "off"`: the cache of decoded kernels (default
    /// [`DEFAULT_KERNEL_CACHE`]); `None` when "off".
    pub kernel_cache: Option<PathBuf>,
    /// `kernel_cache_max_mib = N`: the bound on the cache's total size (default
    /// [`DEFAULT_KERNEL_CACHE_MAX_MIB`]).
    pub kernel_cache_max_mib: u64,
    /// `autostart_dir = "/dir"`: the configs `rxl autostart` creates at host start-up
    /// (default [`DEFAULT_AUTOSTART_DIR`], xendomains' directory).
    pub autostart_dir: PathBuf,
}

impl Default for RxlConf {
    fn default() -> RxlConf {
        RxlConf {
            hotplug: HotplugChoice::Scripts,
            bootloader_user: "nobody".to_string(),
            bootloader_timeout_s: 120,
            kernel_cache: Some(PathBuf::from(DEFAULT_KERNEL_CACHE)),
            kernel_cache_max_mib: DEFAULT_KERNEL_CACHE_MAX_MIB,
            autostart_dir: PathBuf::from(DEFAULT_AUTOSTART_DIR),
        }
    }
}

/// Who runs the hotplug work of a device on this host, from both files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HotplugMode {
    /// rxl runs Xen's scripts.
    Scripts,
    /// rxl does the work natively (a device with its own `script=` runs that script).
    Native,
    /// Nobody in rxl: xl.conf says `run_hotplug_scripts = 0`, so udev runs the scripts.
    Udev,
}

/// Both host files, read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostConf {
    /// /etc/xen/xl.conf.
    pub xl: XlConf,
    /// /etc/rxl/rxl.conf.
    pub rxl: RxlConf,
}

impl HostConf {
    /// Who runs the hotplug work: `run_hotplug_scripts = 0` in xl.conf hands it to udev
    /// whatever rxl.conf says (rxl must not set up what udev's scripts set up too);
    /// otherwise rxl.conf's `hotplug`.
    pub fn hotplug_mode(&self) -> HotplugMode {
        match (self.xl.run_hotplug_scripts, self.rxl.hotplug) {
            (false, _) => HotplugMode::Udev,
            (true, HotplugChoice::Scripts) => HotplugMode::Scripts,
            (true, HotplugChoice::Native) => HotplugMode::Native,
        }
    }
}

/// A host file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HostConfError {
    /// It exists but could not be read (not a regular file, too large, an I/O error).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// It has errors; each diagnostic names FILE:LINE:COL.
    #[error("{} has errors", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The errors and warnings found (at least one error).
        diagnostics: Vec<Diagnostic>,
    },
}

/// A host file's settings with its warnings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read<T> {
    /// What was read (the defaults when the file does not exist).
    pub conf: T,
    /// Warnings (deprecated keys, unknown keys of rxl.conf).
    pub warnings: Vec<Diagnostic>,
}

/// The settings of `path`, `None` when it does not exist; syntax errors are returned.
fn settings_of(path: &Path) -> Result<Option<(Settings, Vec<Diagnostic>)>, HostConfError> {
    let parsed = match parse_file(path) {
        Ok(p) => p,
        Err(ReadError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(e) => return Err(e.into()),
    };
    if parsed.has_errors() {
        return Err(HostConfError::Invalid {
            path: path.to_path_buf(),
            diagnostics: parsed.diagnostics,
        });
    }
    Ok(Some((parsed.settings, parsed.diagnostics)))
}

/// The text of a string or number setting; an error (pushed to `diags`) for a list.
fn text<'s>(s: &'s Setting, diags: &mut Vec<Diagnostic>) -> Option<&'s str> {
    match &s.value.kind {
        ValueKind::String(t) | ValueKind::Number(t) => Some(t),
        ValueKind::List(_) => {
            diags.push(Diagnostic::error(
                s.value.span.clone(),
                format!("`{}` must be a string, not a list", s.key),
            ));
            None
        }
    }
}

/// Read xl.conf at `path` (tests and the simulated host pass their own path).
pub fn read_xl_conf(path: &Path) -> Result<Read<XlConf>, HostConfError> {
    let Some((settings, mut diags)) = settings_of(path)? else {
        return Ok(Read {
            conf: XlConf::default(),
            warnings: Vec::new(),
        });
    };
    let mut conf = XlConf::default();
    // In xl's order: a deprecated key first, its replacement after (and so winning).
    for key in [
        "vifscript",
        "vif.default.script",
        "defaultbridge",
        "vif.default.bridge",
        "vif.default.gatewaydev",
        "vif.default.backend",
        "run_hotplug_scripts",
    ] {
        let Some(s) = settings.get(key) else { continue };
        let Some(value) = text(s, &mut diags) else {
            continue;
        };
        match key {
            "vifscript" | "defaultbridge" => {
                let now = if key == "vifscript" {
                    conf.vif.script = value.to_string();
                    "vif.default.script"
                } else {
                    conf.vif.bridge = value.to_string();
                    "vif.default.bridge"
                };
                diags.push(
                    Diagnostic::warning(s.key_span.clone(), format!("`{key}` is deprecated"))
                        .with_hint(format!("write {now} instead")),
                );
            }
            "vif.default.script" => conf.vif.script = value.to_string(),
            "vif.default.bridge" => conf.vif.bridge = value.to_string(),
            "vif.default.gatewaydev" => conf.vif.gatewaydev = Some(value.to_string()),
            "vif.default.backend" => conf.vif.backend = Some(value.to_string()),
            _ => match crate::model::strtol(value) {
                Ok(n) => conf.run_hotplug_scripts = n != 0,
                Err(_) => diags.push(
                    Diagnostic::error(
                        s.value.span.clone(),
                        format!("`run_hotplug_scripts` is not a number: `{value}`"),
                    )
                    .with_hint(
                        "write run_hotplug_scripts = 1 (rxl runs the scripts) or 0 (udev does)",
                    ),
                ),
            },
        }
    }
    finish(path, conf, diags)
}

/// The keys rxl.conf knows.
const RXL_CONF_KEYS: &[&str] = &[
    "hotplug",
    "bootloader_user",
    "bootloader_timeout",
    "kernel_cache",
    "kernel_cache_max_mib",
    "autostart_dir",
];

/// Read rxl.conf at `path` (tests and the simulated host pass their own path). An unknown
/// key is a warning: the file is rxl's own, so it is most likely a typo.
pub fn read_rxl_conf(path: &Path) -> Result<Read<RxlConf>, HostConfError> {
    let Some((settings, mut diags)) = settings_of(path)? else {
        return Ok(Read {
            conf: RxlConf::default(),
            warnings: Vec::new(),
        });
    };
    let mut conf = RxlConf::default();
    for s in settings.iter() {
        if !RXL_CONF_KEYS.contains(&s.key.as_str()) {
            let mut d = Diagnostic::warning(
                s.key_span.clone(),
                format!("unknown key `{}` is ignored", s.key),
            );
            if let Some(k) = crate::model::suggest(&s.key, RXL_CONF_KEYS.iter().copied()) {
                d = d.with_hint(format!("did you mean `{k}`?"));
            }
            diags.push(d);
            continue;
        }
        let Some(value) = text(s, &mut diags) else {
            continue;
        };
        match (s.key.as_str(), value) {
            ("bootloader_user", "") => diags.push(Diagnostic::error(
                s.value.span.clone(),
                "`bootloader_user` is empty: name a user or give a uid",
            )),
            ("bootloader_user", user) => conf.bootloader_user = user.to_string(),
            ("bootloader_timeout", t) => match t.parse::<u64>() {
                Ok(n) if (1..=3600).contains(&n) => conf.bootloader_timeout_s = n,
                _ => diags.push(
                    Diagnostic::error(
                        s.value.span.clone(),
                        format!("`bootloader_timeout` must be seconds from 1 to 3600, not `{t}`"),
                    )
                    .with_hint("bootloader_timeout = 120 is libxl's limit"),
                ),
            },
            ("kernel_cache", "off") => conf.kernel_cache = None,
            ("kernel_cache", dir) if dir.starts_with('/') => {
                conf.kernel_cache = Some(PathBuf::from(dir))
            }
            ("kernel_cache", _) => diags.push(
                Diagnostic::error(
                    s.value.span.clone(),
                    format!("kernel_cache \"{value}\" is not an absolute directory or \"off\""),
                )
                .with_hint("kernel_cache = \"/var/cache/rxl/kernels\" (the default) or \"off\""),
            ),
            ("autostart_dir", dir) if dir.starts_with('/') => {
                conf.autostart_dir = PathBuf::from(dir)
            }
            ("autostart_dir", _) => diags.push(
                Diagnostic::error(
                    s.value.span.clone(),
                    format!("autostart_dir \"{value}\" is not an absolute directory"),
                )
                .with_hint("autostart_dir = \"/etc/xen/auto\" (the default)"),
            ),
            ("kernel_cache_max_mib", n) => match n.parse::<u64>() {
                Ok(n) => conf.kernel_cache_max_mib = n,
                Err(_) => diags.push(
                    Diagnostic::error(
                        s.value.span.clone(),
                        format!("kernel_cache_max_mib is not a number of MiB: `{n}`"),
                    )
                    .with_hint("kernel_cache_max_mib = 512 (the default)"),
                ),
            },
            (_, "scripts") => conf.hotplug = HotplugChoice::Scripts,
            (_, "native") => conf.hotplug = HotplugChoice::Native,
            _ => diags.push(
                Diagnostic::error(
                    s.value.span.clone(),
                    format!("unknown hotplug \"{value}\": expected \"scripts\" or \"native\""),
                )
                .with_hint("hotplug = \"scripts\" runs Xen's hotplug scripts; \"native\" has rxl do their work itself"),
            ),
        }
    }
    finish(path, conf, diags)
}

fn finish<T>(path: &Path, conf: T, diags: Vec<Diagnostic>) -> Result<Read<T>, HostConfError> {
    if diags.iter().any(Diagnostic::is_error) {
        return Err(HostConfError::Invalid {
            path: path.to_path_buf(),
            diagnostics: diags,
        });
    }
    Ok(Read {
        conf,
        warnings: diags,
    })
}

/// Read both files: xl.conf at `xl`, rxl.conf at `rxl`.
pub fn read(xl: &Path, rxl: &Path) -> Result<Read<HostConf>, HostConfError> {
    let x = read_xl_conf(xl)?;
    let r = read_rxl_conf(rxl)?;
    let mut warnings = x.warnings;
    warnings.extend(r.warnings);
    Ok(Read {
        conf: HostConf {
            xl: x.conf,
            rxl: r.conf,
        },
        warnings,
    })
}

#[cfg(test)]
mod tests;
