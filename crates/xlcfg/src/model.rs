//! The typed domain model built from [`crate::Settings`].
//!
//! [`build`] turns the raw key/value settings of an xl.cfg file into one flat
//! [`DomainConfig`]: the domain type, the boot method, memory, vCPUs, shutdown actions, disks
//! and network interfaces, with every file path made absolute against the config file's
//! directory. It follows what Xen 4.17's `xl` (parse_config_data) and libxl accept and
//! default, and reports every problem it finds at once, each pointing at the cfg line.
//! The places where rxl deliberately differs from xl are listed in
//! docs/config-reference.md.

mod boot;
mod disk;
mod hvm;
mod keys;
mod name;
mod num;
mod path;
mod vif;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::settings::{Diagnostic, Setting, Settings, Source, Span, ValueKind};

pub use boot::{Boot, Firmware, Module, XEN_FIRMWARE_DIR};
pub use disk::disk_arg;
pub use disk::{
    DiskAccess, DiskBackendType, DiskFormat, DiskSpec, DiskSpecification, DiskTargetKind, DiskType,
};
pub use hvm::{
    hvm_defaults, Bios, DeviceModelConfig, DirectBoot, HdType, HvmConfig, Vga, Vnc, HVM_ONLY_KEYS,
};
pub(crate) use keys::suggest;
pub use keys::{is_known, MODELLED_KEYS, RXL_KEYS, XL_KEYS};
pub use name::{check_name, NameError, MAX_NAME_LEN};
pub(crate) use num::strtol;
pub use vif::{vif_arg, vif_arg_with, MacAddr, NicType, VifDefaults, VifRate, VifSpec, NIC_MODELS};

/// The name of the [`Source`] that holds a single DISKSPEC or VIFSPEC given on a command
/// line ([`disk_arg`], [`vif_arg`]): diagnostics read `command line:1:COL: error: ...`.
pub const COMMAND_LINE_SPEC: &str = "command line";

/// A value together with where the config wrote it.
///
/// `line` and `column` are 1-based; 0 means "not known" (a value read back from JSON).
/// The position is provenance, not part of the value: two `Located` values are equal when
/// their values are, and the serde form is the bare value.
#[derive(Clone)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// The cfg line the value was written on (0 when unknown).
    pub line: u32,
    /// The column of the value's first character (0 when unknown).
    pub column: u32,
    /// The full span, for diagnostics; absent after a JSON round trip.
    pub span: Option<Span>,
}

impl<T> Located<T> {
    /// `value`, written at `span`.
    pub fn at(value: T, span: &Span) -> Located<T> {
        Located {
            value,
            line: span.line,
            column: span.column,
            span: Some(span.clone()),
        }
    }

    /// `value` with no known position.
    pub fn unplaced(value: T) -> Located<T> {
        Located {
            value,
            line: 0,
            column: 0,
            span: None,
        }
    }

    /// The span to point a diagnostic at: the value's own, or a placeholder naming the
    /// domain config when the position is unknown.
    pub fn diag_span(&self) -> Span {
        self.span
            .clone()
            .unwrap_or_else(|| unknown_span("<domain config>"))
    }
}

impl<T: PartialEq> PartialEq for Located<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: Eq> Eq for Located<T> {}

impl<T: fmt::Debug> fmt::Debug for Located<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} @{}:{}", self.value, self.line, self.column)
    }
}

impl<T: Serialize> Serialize for Located<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Located::unplaced)
    }
}

/// A zero-length span at the start of an empty source called `name`.
fn unknown_span(name: &str) -> Span {
    Span {
        source: Arc::new(Source {
            name: name.to_string(),
            text: String::new(),
        }),
        line: 0,
        column: 0,
        start: 0,
        end: 0,
    }
}

/// The kind of guest (`type =`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DomainType {
    /// Paravirtualised.
    Pv,
    /// PVH: an HVM container booted directly into the kernel, no device model.
    Pvh,
    /// Fully virtualised, with firmware and a device model.
    Hvm,
}

impl DomainType {
    /// The name as xl.cfg writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            DomainType::Pv => "pv",
            DomainType::Pvh => "pvh",
            DomainType::Hvm => "hvm",
        }
    }
}

impl fmt::Display for DomainType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do when the guest shuts down for a given reason (`on_poweroff =` etc.).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Destroy the domain.
    Destroy,
    /// Destroy the domain and start a new one from the same config.
    Restart,
    /// Rename the old domain, keep it, and start a new one.
    RenameRestart,
    /// Keep the domain as it is (for inspection).
    Preserve,
    /// Write a core dump, then destroy.
    CoredumpDestroy,
    /// Write a core dump, then restart.
    CoredumpRestart,
    /// Reset the domain in place (kexec-like).
    SoftReset,
}

impl Action {
    /// Every action, in xl's order.
    pub const ALL: [Action; 7] = [
        Action::Destroy,
        Action::Restart,
        Action::RenameRestart,
        Action::Preserve,
        Action::CoredumpDestroy,
        Action::CoredumpRestart,
        Action::SoftReset,
    ];

    /// The name as xl.cfg writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Destroy => "destroy",
            Action::Restart => "restart",
            Action::RenameRestart => "rename-restart",
            Action::Preserve => "preserve",
            Action::CoredumpDestroy => "coredump-destroy",
            Action::CoredumpRestart => "coredump-restart",
            Action::SoftReset => "soft-reset",
        }
    }

    /// The action called `name`, exactly as xl spells it.
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One guest, fully described: what `rxl create` builds and what the toolstack stores (as
/// JSON) to rebuild the guest on reboot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DomainConfig {
    /// The domain name.
    pub name: String,
    /// The guest type.
    #[serde(rename = "type")]
    pub domain_type: DomainType,
    /// The domain handle: from the config, or a fresh random (v4) UUID.
    pub uuid: Uuid,
    /// Initial memory (the balloon target), MiB.
    pub memory_mib: u64,
    /// Maximum memory, MiB (>= `memory_mib`).
    pub maxmem_mib: u64,
    /// vCPUs online at boot.
    pub vcpus: u32,
    /// vCPUs the domain is created with (>= `vcpus`).
    pub maxvcpus: u32,
    /// How the guest boots.
    pub boot: Boot,
    /// Action when the guest powers off.
    pub on_poweroff: Action,
    /// Action when the guest reboots.
    pub on_reboot: Action,
    /// Action when the watchdog fires.
    pub on_watchdog: Action,
    /// Action when the guest crashes.
    pub on_crash: Action,
    /// Action on a soft reset request.
    pub on_soft_reset: Action,
    /// Highest event channel port + 1 (`max_evtchn_port` at domain creation).
    pub max_event_channels: u32,
    /// Grant table frames; -1 lets the hypervisor choose.
    pub max_grant_frames: i32,
    /// Maptrack frames; -1 lets the hypervisor choose.
    pub max_maptrack_frames: i32,
    /// Virtual block devices, in config order.
    pub disks: Vec<DiskSpec>,
    /// Virtual network interfaces, in config order.
    pub vifs: Vec<VifSpec>,
    /// The firmware, direct boot and emulated devices of an HVM guest (`None` for PV and
    /// PVH; absent from their JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hvm: Option<HvmConfig>,
    /// The device model program and extra arguments (absent from the JSON when unset).
    #[serde(default, skip_serializing_if = "DeviceModelConfig::is_default")]
    pub device_model: DeviceModelConfig,
}

impl DomainConfig {
    /// The JSON form (`rxl create --dry-run --json`, the toolstack's stored config).
    pub fn to_json(&self) -> serde_json::Value {
        // Every field serialises infallibly (string keys, no non-finite floats).
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Read the JSON form back. Positions are not stored in JSON, so every [`Located`]
    /// comes back with line 0.
    pub fn from_json(value: &serde_json::Value) -> Result<DomainConfig, serde_json::Error> {
        DomainConfig::deserialize(value)
    }
}

/// The result of a successful [`build`].
#[derive(Clone, Debug, PartialEq)]
pub struct Built {
    /// The guest.
    pub config: DomainConfig,
    /// Things worth telling the user (defaults chosen, deprecated or ignored keys).
    pub warnings: Vec<Diagnostic>,
}

/// Defaults xl uses (xl.cfg(5), libxl's setdefault functions).
pub mod defaults {
    /// `memory` and `maxmem` when neither is given, MiB.
    pub const MEMORY_MIB: u64 = 32;
    /// `vcpus` when not given.
    pub const VCPUS: u32 = 1;
    /// libxl refuses more vCPUs than this (HVM_MAX_VCPUS).
    pub const MAX_VCPUS: u32 = 128;
    /// `max_event_channels`.
    pub const MAX_EVENT_CHANNELS: u32 = 1023;
    /// `max_grant_frames` / `max_maptrack_frames`: let the hypervisor decide.
    pub const HYPERVISOR_DEFAULT_FRAMES: i32 = -1;
    /// The vif bridge.
    pub const BRIDGE: &str = "xenbr0";
    /// The vif hotplug script.
    pub const VIF_SCRIPT: &str = "vif-bridge";
    /// The OUI of Xen's generated MAC addresses.
    pub const MAC_PREFIX: [u8; 3] = [0x00, 0x16, 0x3e];
}

/// Build the domain model from `settings`. `base_dir` is the directory relative paths are
/// resolved against: the config file's directory (the working directory for stdin).
///
/// On success the warnings come with the config; on failure every diagnostic found is
/// returned (errors and warnings, in the order found; at least one is an error).
pub fn build(settings: &Settings, base_dir: &Path) -> Result<Built, Vec<Diagnostic>> {
    build_with(settings, base_dir, &VifDefaults::default())
}

/// [`build`], with the host's defaults for what a vif spec does not say (xl.conf's
/// `vif.default.*`, read by [`crate::hostconf`]) instead of xl's built-in ones.
pub fn build_with(
    settings: &Settings,
    base_dir: &Path,
    vif_defaults: &VifDefaults,
) -> Result<Built, Vec<Diagnostic>> {
    let mut cx = Ctx::new(settings, base_dir, vif_defaults);
    let config = cx.build();
    match config {
        Some(config) if !cx.has_errors() => Ok(Built {
            config,
            warnings: cx.diags,
        }),
        _ => Err(cx.diags),
    }
}

/// Check that every file the guest boots from exists and is a readable regular file: the
/// kernel, each module (the ramdisk first), a firmware given by path, and file disk
/// targets. Each problem is an error at the cfg line that named the file.
pub fn check_files(cfg: &DomainConfig) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut check = |what: &str, loc: &Located<PathBuf>| {
        if let Some(d) = check_file(what, loc) {
            out.push(d);
        }
    };
    match &cfg.boot {
        Boot::Kernel {
            kernel, modules, ..
        } => {
            check("kernel", kernel);
            for m in modules {
                check("module", &m.path);
            }
        }
        Boot::Firmware {
            firmware, modules, ..
        } => {
            if let Firmware::Path(p) = &firmware.value {
                let loc = Located {
                    value: p.clone(),
                    line: firmware.line,
                    column: firmware.column,
                    span: firmware.span.clone(),
                };
                check("firmware", &loc);
            }
            for m in modules {
                check("module", &m.path);
            }
        }
        Boot::Bootloader { .. } => {}
    }
    if let Some(hvm) = &cfg.hvm {
        if let Some(p) = &hvm.bios_path {
            check("BIOS image", p);
        }
        if let Some(d) = &hvm.direct_boot {
            check("kernel", &d.kernel);
            if let Some(r) = &d.ramdisk {
                check("ramdisk", r);
            }
        }
    }
    if let Some(p) = &cfg.device_model.program {
        check("device model", p);
    }
    out.extend(check_disk_files(&cfg.disks));
    out
}

/// Check that the image file of each disk (a `File` target) exists and is a readable
/// regular file: [`check_files`] for disks alone (`rxl block-attach`).
pub fn check_disk_files(disks: &[DiskSpec]) -> Vec<Diagnostic> {
    disks
        .iter()
        .filter_map(|d| match (&d.target, d.target_kind) {
            (Some(t), DiskTargetKind::File) => check_file("disk image", t),
            _ => None,
        })
        .collect()
}

fn check_file(what: &str, loc: &Located<PathBuf>) -> Option<Diagnostic> {
    let path = &loc.value;
    let shown = path.display();
    let problem = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Some((format!("{what} {shown} does not exist"), None))
        }
        Err(e) => Some((format!("cannot read {what} {shown}: {e}"), None)),
        Ok(m) if m.is_dir() => Some((
            format!("{what} {shown} is a directory, not a file"),
            Some("name the file inside it".to_string()),
        )),
        Ok(_) => match std::fs::File::open(path) {
            Ok(_) => None,
            Err(e) => Some((
                format!("cannot read {what} {shown}: {e}"),
                Some("check the file's permissions".to_string()),
            )),
        },
    };
    let (message, hint) = problem?;
    let mut d = Diagnostic::error(loc.diag_span(), message);
    if let Some(h) = hint {
        d = d.with_hint(h);
    } else if loc
        .span
        .as_ref()
        .is_some_and(|s| s.source.name == COMMAND_LINE_SPEC)
    {
        d = d.with_hint("a relative path is taken from the current directory");
    } else if loc.line != 0 {
        d = d.with_hint("relative paths are resolved against the config file's directory");
    }
    Some(d)
}

/// Parse one spec given on a command line: `parse` reads `text` as a whole, at a span
/// covering it in a source called [`COMMAND_LINE_SPEC`]. The parsed value and its
/// warnings, or every diagnostic (at least one an error).
fn single_spec<T>(
    text: &str,
    base_dir: &Path,
    vif_defaults: &VifDefaults,
    parse: impl FnOnce(&mut Ctx<'_>, &Span) -> Option<T>,
) -> Result<(T, Vec<Diagnostic>), Vec<Diagnostic>> {
    let source = Arc::new(Source {
        name: COMMAND_LINE_SPEC.to_string(),
        text: text.to_string(),
    });
    let span = Span {
        source: source.clone(),
        line: 1,
        column: 1,
        start: 0,
        end: text.len(),
    };
    let settings = Settings {
        entries: Vec::new(),
        source: Some(source),
    };
    let mut cx = Ctx::new(&settings, base_dir, vif_defaults);
    let parsed = parse(&mut cx, &span);
    match parsed {
        Some(v) if !cx.has_errors() => Ok((v, cx.diags)),
        _ => Err(cx.diags),
    }
}

/// The state of one [`build`]: the settings, the resolved base directory, and the
/// diagnostics so far.
pub(crate) struct Ctx<'a> {
    settings: &'a Settings,
    vif_defaults: &'a VifDefaults,
    base_dir: PathBuf,
    diags: Vec<Diagnostic>,
    fallback: Span,
}

impl<'a> Ctx<'a> {
    fn new(settings: &'a Settings, base_dir: &Path, vif_defaults: &'a VifDefaults) -> Ctx<'a> {
        let fallback = settings
            .start_span()
            .unwrap_or_else(|| unknown_span("<config>"));
        let mut diags = Vec::new();
        let base_dir = if base_dir.is_absolute() {
            path::normalise(base_dir)
        } else {
            match std::env::current_dir() {
                Ok(cwd) => path::normalise(&cwd.join(base_dir)),
                Err(e) => {
                    diags.push(Diagnostic::error(
                        fallback.clone(),
                        format!(
                            "cannot resolve relative paths: base directory {} is relative and the current directory is unknown: {e}",
                            base_dir.display()
                        ),
                    ));
                    PathBuf::from("/")
                }
            }
        };
        Ctx {
            settings,
            vif_defaults,
            base_dir,
            diags,
            fallback,
        }
    }

    fn has_errors(&self) -> bool {
        self.diags.iter().any(Diagnostic::is_error)
    }

    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn setting(&self, key: &str) -> Option<&'a Setting> {
        self.settings.get(key)
    }

    /// The string (or number, which xl treats alike) value of `key`; an error if it is a
    /// list.
    fn string(&mut self, key: &str) -> Option<(&'a Setting, &'a str)> {
        let s = self.setting(key)?;
        match &s.value.kind {
            ValueKind::String(v) | ValueKind::Number(v) => Some((s, v.as_str())),
            ValueKind::List(_) => {
                self.push(
                    Diagnostic::error(
                        s.value.span.clone(),
                        format!("`{key}` must be a single value, not a list"),
                    )
                    .with_hint(format!("write {key} = \"...\"")),
                );
                None
            }
        }
    }

    /// A flag as xl reads one (a number: 0 is off, anything else on); `None` when unset
    /// or after an error.
    fn flag(&mut self, key: &str) -> Option<bool> {
        self.integer(key, i64::MIN, i64::MAX).map(|(_, n)| n != 0)
    }

    /// A list of strings (numbers taken as their text); `None` when unset or after an
    /// error (a single value, or a nested list).
    fn string_list(&mut self, key: &str) -> Option<Vec<String>> {
        let s = self.setting(key)?;
        let ValueKind::List(items) = &s.value.kind else {
            self.push(
                Diagnostic::error(s.value.span.clone(), format!("`{key}` must be a list"))
                    .with_hint(format!("write {key} = [ \"...\", \"...\" ]")),
            );
            return None;
        };
        let mut out = Vec::new();
        for item in items {
            match &item.kind {
                ValueKind::String(v) | ValueKind::Number(v) => out.push(v.clone()),
                ValueKind::List(_) => {
                    self.push(Diagnostic::error(
                        item.span.clone(),
                        format!("each item of `{key}` must be a string, not a list"),
                    ));
                    return None;
                }
            }
        }
        Some(out)
    }

    /// The integer value of `key`, within `min..=max`.
    fn integer(&mut self, key: &str, min: i64, max: i64) -> Option<(&'a Setting, i64)> {
        let s = self.setting(key)?;
        let text = match &s.value.kind {
            ValueKind::String(v) | ValueKind::Number(v) => v.as_str(),
            ValueKind::List(_) => {
                self.push(
                    Diagnostic::error(
                        s.value.span.clone(),
                        format!("`{key}` must be a number, not a list"),
                    )
                    .with_hint(format!("write {key} = <number>")),
                );
                return None;
            }
        };
        match num::strtol(text) {
            Ok(n) if (min..=max).contains(&n) => Some((s, n)),
            Ok(n) => {
                self.push(Diagnostic::error(
                    s.value.span.clone(),
                    format!("`{key}` = {n} is out of range: it must be between {min} and {max}"),
                ));
                None
            }
            Err(num::NumError::Overflow) => {
                self.push(Diagnostic::error(
                    s.value.span.clone(),
                    format!("`{key}` = {text} is too large"),
                ));
                None
            }
            Err(num::NumError::Invalid) => {
                self.push(
                    Diagnostic::error(
                        s.value.span.clone(),
                        format!("`{key}` is not a number: `{text}`"),
                    )
                    .with_hint(
                        "write a decimal number, 0x-prefixed hexadecimal or 0-prefixed octal",
                    ),
                );
                None
            }
        }
    }

    /// `text` (the value of `setting`) as an absolute path.
    fn path(&mut self, setting: &Setting, text: &str) -> Option<Located<PathBuf>> {
        if text.is_empty() {
            self.push(Diagnostic::error(
                setting.value.span.clone(),
                format!("`{}` is empty: it must name a file", setting.key),
            ));
            return None;
        }
        Some(Located::at(
            self.resolve(&setting.value.span, text),
            &setting.value.span,
        ))
    }

    /// `text` resolved against the directory paths written at `span` are relative to: the
    /// config's directory, or the working directory for a command-line override.
    fn resolve(&self, span: &Span, text: &str) -> PathBuf {
        if span.source.name == crate::parse::COMMAND_LINE_SOURCE {
            if let Ok(cwd) = std::env::current_dir() {
                return path::resolve(&cwd, text);
            }
        }
        path::resolve(&self.base_dir, text)
    }

    fn build(&mut self) -> Option<DomainConfig> {
        self.check_keys();
        let (domain_type, type_setting) = self.domain_type();
        let name = self.name();
        let uuid = self.uuid();
        let (memory_mib, maxmem_mib) = self.memory();
        let (vcpus, maxvcpus) = self.vcpus();
        let (boot, hvm) = if domain_type == DomainType::Hvm {
            match hvm::build(self, type_setting) {
                Some((b, h)) => (Some(b), Some(h)),
                None => (None, None),
            }
        } else {
            hvm::ignore_hvm_keys(self, domain_type);
            (boot::build(self, domain_type, type_setting), None)
        };
        let device_model = hvm::device_model(self);
        let on_poweroff = self.action("on_poweroff", Action::Destroy);
        let on_reboot = self.action("on_reboot", Action::Restart);
        let on_watchdog = self.action("on_watchdog", Action::Destroy);
        let on_crash = self.action("on_crash", Action::Destroy);
        let on_soft_reset = self.action("on_soft_reset", Action::SoftReset);
        let max_event_channels = match self.integer("max_event_channels", 0, u32::MAX.into()) {
            // libxl treats 0 as "use the default".
            Some((_, 0)) | None => defaults::MAX_EVENT_CHANNELS,
            Some((_, n)) => u32::try_from(n).unwrap_or(defaults::MAX_EVENT_CHANNELS),
        };
        let max_grant_frames = self.frames("max_grant_frames");
        let max_maptrack_frames = self.frames("max_maptrack_frames");
        self.pvshim();
        let disks = disk::build_all(self);
        let vifs = vif::build_all(self);
        Some(DomainConfig {
            name: name?,
            domain_type,
            uuid: uuid?,
            memory_mib,
            maxmem_mib,
            vcpus,
            maxvcpus,
            boot: boot?,
            on_poweroff,
            on_reboot,
            on_watchdog,
            on_crash,
            on_soft_reset,
            max_event_channels,
            max_grant_frames,
            max_maptrack_frames,
            disks,
            vifs,
            hvm,
            device_model,
        })
    }

    /// Unknown keys (a warning with a suggestion) and keys xl knows but rxl ignores.
    fn check_keys(&mut self) {
        for s in self.settings.iter() {
            if !keys::is_known(&s.key) {
                let mut d = Diagnostic::warning(
                    s.key_span.clone(),
                    format!("unknown key `{}` is ignored", s.key),
                );
                if let Some(k) = keys::suggest_key(&s.key) {
                    d = d.with_hint(format!("did you mean `{k}`?"));
                }
                self.push(d);
            } else if !keys::MODELLED_KEYS.contains(&s.key.as_str()) {
                self.push(Diagnostic::warning(
                    s.key_span.clone(),
                    format!("`{}` is not used by rxl and is ignored", s.key),
                ));
            }
        }
    }

    fn domain_type(&mut self) -> (DomainType, Option<&'a Setting>) {
        const TYPES: [(&str, DomainType); 3] = [
            ("hvm", DomainType::Hvm),
            ("pv", DomainType::Pv),
            ("pvh", DomainType::Pvh),
        ];
        const BUILDERS: [(&str, DomainType); 2] =
            [("hvm", DomainType::Hvm), ("generic", DomainType::Pv)];
        let ty = self.string("type").and_then(|(s, text)| {
            self.prefix_choice(
                s,
                text,
                &TYPES,
                "type",
                "use type = \"pvh\" (or \"pv\", \"hvm\")",
            )
            .map(|t| (t, s))
        });
        let builder = self.string("builder").and_then(|(s, text)| {
            self.prefix_choice(s, text, &BUILDERS, "builder", "use type = \"pvh\" instead")
                .map(|t| (t, s))
        });
        if let Some((_, b)) = builder {
            if let Some(t) = self.setting("type") {
                self.push(
                    Diagnostic::error(
                        b.key_span.clone(),
                        "both `type` and `builder` are set".to_string(),
                    )
                    .with_note(t.key_span.clone(), "`type` is set here")
                    .with_hint("builder is deprecated, keep type"),
                );
            }
        }
        match (ty, builder) {
            (Some((t, s)), _) => (t, Some(s)),
            (None, Some((t, b))) => {
                if self.setting("type").is_none() {
                    self.push(
                        Diagnostic::warning(
                            b.key_span.clone(),
                            format!("`builder` is deprecated; taking it as type = \"{t}\""),
                        )
                        .with_hint(format!("write type = \"{t}\" instead")),
                    );
                }
                (t, Some(b))
            }
            (None, None) => {
                if self.setting("type").is_none() && self.setting("builder").is_none() {
                    self.push(
                        Diagnostic::warning(
                            self.fallback.clone(),
                            "no `type` given: using xl's default, type = \"pv\"",
                        )
                        .with_hint("rxl is made for PVH guests: add type = \"pvh\""),
                    );
                }
                (DomainType::Pv, None)
            }
        }
    }

    /// Match `text` against `choices` as xl does (`strncmp(text, name, strlen(text))`:
    /// the first name `text` is a prefix of), refusing the empty string. A strict prefix is
    /// accepted with a warning naming the full value.
    fn prefix_choice<T: Copy>(
        &mut self,
        s: &Setting,
        text: &str,
        choices: &[(&str, T)],
        key: &str,
        hint: &str,
    ) -> Option<T> {
        let found = (!text.is_empty())
            .then(|| choices.iter().find(|(n, _)| n.starts_with(text)))
            .flatten();
        match found {
            Some((n, t)) => {
                if *n != text {
                    self.push(
                        Diagnostic::warning(
                            s.value.span.clone(),
                            format!("`{key}` = \"{text}\" is taken as \"{n}\""),
                        )
                        .with_hint(format!("write {key} = \"{n}\"")),
                    );
                }
                Some(*t)
            }
            None => {
                let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                let mut d = Diagnostic::error(
                    s.value.span.clone(),
                    format!(
                        "unknown {key} \"{text}\": expected one of {}",
                        names.join(", ")
                    ),
                );
                d = match keys::suggest(text, names.iter().copied()) {
                    Some(n) => d.with_hint(format!("did you mean \"{n}\"?")),
                    None => d.with_hint(hint),
                };
                self.push(d);
                None
            }
        }
    }

    fn name(&mut self) -> Option<String> {
        let Some(s) = self.setting("name") else {
            self.push(
                Diagnostic::error(self.fallback.clone(), "`name` is required")
                    .with_hint("add name = \"myguest\""),
            );
            return None;
        };
        let (_, text) = self.string("name")?;
        match check_name(text) {
            Ok(()) => Some(text.to_string()),
            Err(e) => {
                let hint = e.hint();
                self.push(Diagnostic::error(s.value.span.clone(), e.to_string()).with_hint(hint));
                None
            }
        }
    }

    fn uuid(&mut self) -> Option<Uuid> {
        let Some((s, text)) = self.string("uuid") else {
            // An absent uuid is generated; a list was already reported.
            return if self.setting("uuid").is_some() {
                None
            } else {
                Some(Uuid::new_v4())
            };
        };
        // libuuid's uuid_parse: exactly 36 characters, 8-4-4-4-12 hex digits.
        let well_formed = text.len() == 36
            && text.char_indices().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_hexdigit(),
            });
        match Uuid::try_parse(text) {
            Ok(u) if well_formed => Some(u),
            _ => {
                self.push(
                    Diagnostic::error(
                        s.value.span.clone(),
                        format!("invalid uuid \"{text}\""),
                    )
                    .with_hint(
                        "write 8-4-4-4-12 hex digits, e.g. 5e7d8a1c-3c8b-4d1e-9f5a-2b6c7d8e9f01, or leave uuid out to generate one",
                    ),
                );
                None
            }
        }
    }

    fn memory(&mut self) -> (u64, u64) {
        // KiB must fit in 64 bits, and Xen counts pages in 64 bits too.
        let max = i64::try_from(u64::MAX / 1024 / 1024).unwrap_or(i64::MAX);
        let memory = self.integer("memory", 1, max);
        let maxmem = self.integer("maxmem", 1, max);
        let m = memory.map(|(_, n)| n.unsigned_abs());
        let x = maxmem.map(|(_, n)| n.unsigned_abs());
        let (mem, maxm) = match (m, x) {
            (Some(m), Some(x)) => (m, x),
            (Some(m), None) => (m, m),
            (None, Some(x)) => (x, x),
            (None, None) => (defaults::MEMORY_MIB, defaults::MEMORY_MIB),
        };
        if let (Some((ms, m)), Some((xs, x))) = (memory, maxmem) {
            if x < m {
                self.push(
                    Diagnostic::error(
                        xs.value.span.clone(),
                        format!("maxmem ({x} MiB) is less than memory ({m} MiB)"),
                    )
                    .with_note(ms.value.span.clone(), "memory is set here")
                    .with_hint(
                        "raise maxmem to at least memory, or remove it (it defaults to memory)",
                    ),
                );
            }
        }
        (mem, maxm)
    }

    fn vcpus(&mut self) -> (u32, u32) {
        let max = i64::from(defaults::MAX_VCPUS);
        let vcpus = self.integer("vcpus", 1, max);
        let maxvcpus = self.integer("maxvcpus", 1, max);
        let v = vcpus.map_or(defaults::VCPUS, |(_, n)| u32::try_from(n).unwrap_or(1));
        let x = maxvcpus.map_or(v, |(_, n)| u32::try_from(n).unwrap_or(1));
        if let (Some((vs, _)), Some((xs, _))) = (vcpus, maxvcpus) {
            if x < v {
                self.push(
                    Diagnostic::error(
                        xs.value.span.clone(),
                        format!("maxvcpus ({x}) is less than vcpus ({v})"),
                    )
                    .with_note(vs.value.span.clone(), "vcpus is set here")
                    .with_hint(
                        "raise maxvcpus to at least vcpus, or remove it (it defaults to vcpus)",
                    ),
                );
            }
        }
        // maxvcpus alone: xl brings only vCPU 0 online.
        (v, x.max(v))
    }

    fn action(&mut self, key: &str, default: Action) -> Action {
        let Some((s, text)) = self.string(key) else {
            return default;
        };
        match Action::from_name(text) {
            Some(a) => a,
            None => {
                let names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
                let mut d = Diagnostic::error(
                    s.value.span.clone(),
                    format!("unknown {key} action \"{text}\""),
                );
                d = match keys::suggest(text, names.iter().copied()) {
                    Some(n) => d.with_hint(format!("did you mean \"{n}\"?")),
                    None => d.with_hint(format!("use one of {}", names.join(", "))),
                };
                self.push(d);
                default
            }
        }
    }

    fn frames(&mut self, key: &str) -> i32 {
        match self.integer(key, -1, i32::MAX.into()) {
            Some((_, n)) => i32::try_from(n).unwrap_or(defaults::HYPERVISOR_DEFAULT_FRAMES),
            None => defaults::HYPERVISOR_DEFAULT_FRAMES,
        }
    }

    /// `pvshim`: rxl cannot run a PV guest inside a PVH shim, so a true value is refused.
    fn pvshim(&mut self) {
        let Some((s, text)) = self.string("pvshim") else {
            return;
        };
        let on = match num::strtol(text) {
            Ok(n) => n != 0,
            Err(_) => !matches!(text, "false" | "no" | "off"),
        };
        if on {
            self.push(
                Diagnostic::error(s.value.span.clone(), "pvshim is not supported by rxl")
                    .with_hint("boot a PVH-capable kernel directly with type = \"pvh\""),
            );
        }
    }
}

#[cfg(test)]
mod tests;
