//! The boot method: a kernel, a firmware image, or a bootloader.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{keys, Ctx, DomainType, Located};
use crate::settings::{Diagnostic, Setting, Value, ValueKind};

/// Where Xen installs its firmware images (XENFIRMWAREDIR); `firmware = "pvgrub64"` means
/// `<dir>/pvgrub64.bin`.
pub const XEN_FIRMWARE_DIR: &str = "/usr/lib/xen/boot";

/// A boot module: the ramdisk (always module 0 when given, with no command line) or an
/// entry of `modules`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Module {
    /// The file, absolute.
    pub path: Located<PathBuf>,
    /// The module's own command line.
    pub cmdline: Option<String>,
}

/// A firmware choice (`firmware =`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// OVMF (UEFI): hvmloader's for HVM; for PVH an OVMF built with a PVH entry point
    /// (OvmfPkg/OvmfXen.dsc), which the boot planner looks up.
    Ovmf,
    /// SeaBIOS, HVM only.
    Seabios,
    /// ROMBIOS, HVM only.
    Rombios,
    /// PV-GRUB for 32-bit PV guests (`<XEN_FIRMWARE_DIR>/pvgrub32.bin`).
    Pvgrub32,
    /// PV-GRUB for 64-bit PV guests (`<XEN_FIRMWARE_DIR>/pvgrub64.bin`).
    Pvgrub64,
    /// GRUB 2 built for PVH (Debian's grub-xen-host: `grub-i386-xen_pvh.bin`), PVH only;
    /// the boot planner finds the file on its firmware search path.
    Pvgrub,
    /// An image given by path, absolute. For PV and PVH it is loaded the way a kernel is.
    Path(PathBuf),
}

impl Firmware {
    /// The named firmwares, as xl.cfg spells them.
    pub const NAMES: [&'static str; 6] = [
        "ovmf", "seabios", "rombios", "pvgrub", "pvgrub32", "pvgrub64",
    ];

    /// The firmware called `name` (exact spelling).
    pub fn from_name(name: &str) -> Option<Firmware> {
        Some(match name {
            "ovmf" => Firmware::Ovmf,
            "seabios" => Firmware::Seabios,
            "rombios" => Firmware::Rombios,
            "pvgrub32" => Firmware::Pvgrub32,
            "pvgrub64" => Firmware::Pvgrub64,
            "pvgrub" => Firmware::Pvgrub,
            _ => return None,
        })
    }

    /// The name, for a named firmware.
    pub fn name(&self) -> Option<&'static str> {
        Some(match self {
            Firmware::Ovmf => "ovmf",
            Firmware::Seabios => "seabios",
            Firmware::Rombios => "rombios",
            Firmware::Pvgrub32 => "pvgrub32",
            Firmware::Pvgrub64 => "pvgrub64",
            Firmware::Pvgrub => "pvgrub",
            Firmware::Path(_) => return None,
        })
    }

    /// The image a PV or PVH guest loads as its kernel: the path, or
    /// `<firmware_dir>/pvgrubNN.bin`. `None` for the HVM firmwares, which hvmloader loads,
    /// and for the PVH ones (`pvgrub`, `ovmf`), which the boot planner looks up.
    pub fn image_path(&self, firmware_dir: &std::path::Path) -> Option<PathBuf> {
        match self {
            Firmware::Path(p) => Some(p.clone()),
            Firmware::Pvgrub32 | Firmware::Pvgrub64 => {
                self.name().map(|n| firmware_dir.join(format!("{n}.bin")))
            }
            Firmware::Ovmf | Firmware::Seabios | Firmware::Rombios | Firmware::Pvgrub => None,
        }
    }

    /// Whether this firmware can boot a guest of type `ty`. SeaBIOS and ROMBIOS are
    /// hvmloader's (HVM only); OVMF exists for HVM and, built from OvmfXen.dsc, for PVH;
    /// pvgrub32/pvgrub64 are PV kernels (xl also hands them to PVH guests, which cannot
    /// start them); a path is loaded as the kernel image for PV/PVH or replaces hvmloader
    /// for HVM.
    pub fn supports(&self, ty: DomainType) -> bool {
        match self {
            Firmware::Seabios | Firmware::Rombios => ty == DomainType::Hvm,
            Firmware::Ovmf => ty != DomainType::Pv,
            Firmware::Pvgrub32 | Firmware::Pvgrub64 => ty == DomainType::Pv,
            Firmware::Pvgrub => ty == DomainType::Pvh,
            Firmware::Path(_) => true,
        }
    }
}

impl fmt::Display for Firmware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Firmware::Path(p) => write!(f, "{}", p.display()),
            named => f.write_str(named.name().unwrap_or("")),
        }
    }
}

impl Serialize for Firmware {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Firmware::Path(p) => p.serialize(serializer),
            named => serializer.serialize_str(named.name().unwrap_or("")),
        }
    }
}

impl<'de> Deserialize<'de> for Firmware {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        if s.contains('/') {
            return Ok(Firmware::Path(PathBuf::from(s)));
        }
        Firmware::from_name(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown firmware \"{s}\": expected {} or a path",
                Firmware::NAMES.join(", ")
            ))
        })
    }
}

/// How the guest boots: exactly one method.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "BootRepr", try_from = "BootRepr")]
pub enum Boot {
    /// Direct kernel boot (`kernel =`, with `ramdisk`, `cmdline`/`root`/`extra`, `modules`).
    Kernel {
        /// The kernel image, absolute.
        kernel: Located<PathBuf>,
        /// The kernel command line.
        cmdline: Option<String>,
        /// The modules, the ramdisk first.
        modules: Vec<Module>,
    },
    /// A firmware image (`firmware =`, or `firmware_override =` for HVM). For PV and PVH,
    /// xl hands the command line and ramdisk to the firmware as it would to a kernel.
    Firmware {
        /// Which firmware.
        firmware: Located<Firmware>,
        /// The command line passed to the firmware (PV and PVH only).
        cmdline: Option<String>,
        /// Modules passed to the firmware, the ramdisk first (PV and PVH only).
        modules: Vec<Module>,
    },
    /// A host program that extracts the kernel from the guest's disk (`bootloader =`).
    Bootloader {
        /// The program: absolute when the config gave a path (a value with '/'), else the
        /// bare program name as given (the toolstack looks it up as libxl does).
        path: Located<PathBuf>,
        /// `bootloader_args`.
        args: Vec<String>,
        /// The command line, handed to the bootloader (xl passes it as `--args`).
        cmdline: Option<String>,
        /// `kernel` with a bootloader: a path inside the guest, passed verbatim as
        /// `--kernel` (as libxl does).
        kernel: Option<String>,
        /// `ramdisk` with a bootloader: a path inside the guest, passed as `--ramdisk`.
        ramdisk: Option<String>,
    },
}

impl Boot {
    /// "kernel", "firmware" or "bootloader".
    pub fn kind(&self) -> &'static str {
        match self {
            Boot::Kernel { .. } => "kernel",
            Boot::Firmware { .. } => "firmware",
            Boot::Bootloader { .. } => "bootloader",
        }
    }

    /// The command line, whichever the method.
    pub fn cmdline(&self) -> Option<&str> {
        match self {
            Boot::Kernel { cmdline, .. }
            | Boot::Firmware { cmdline, .. }
            | Boot::Bootloader { cmdline, .. } => cmdline.as_deref(),
        }
    }

    /// The modules (empty for a bootloader).
    pub fn modules(&self) -> &[Module] {
        match self {
            Boot::Kernel { modules, .. } | Boot::Firmware { modules, .. } => modules,
            Boot::Bootloader { .. } => &[],
        }
    }
}

/// The flat JSON form of [`Boot`]: every field present, `null` when it does not apply.
#[derive(Clone, Serialize, Deserialize)]
struct BootRepr {
    kind: String,
    kernel: Option<Located<PathBuf>>,
    modules: Option<Vec<Module>>,
    cmdline: Option<String>,
    firmware: Option<Located<Firmware>>,
    bootloader: Option<Located<PathBuf>>,
    bootloader_args: Option<Vec<String>>,
    /// The `--kernel` hint of a bootloader (absent from the JSON when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bootloader_kernel: Option<String>,
    /// The `--ramdisk` hint of a bootloader (absent from the JSON when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bootloader_ramdisk: Option<String>,
}

impl From<Boot> for BootRepr {
    fn from(b: Boot) -> BootRepr {
        let kind = b.kind().to_string();
        let empty = BootRepr {
            kind,
            kernel: None,
            modules: None,
            cmdline: None,
            firmware: None,
            bootloader: None,
            bootloader_args: None,
            bootloader_kernel: None,
            bootloader_ramdisk: None,
        };
        match b {
            Boot::Kernel {
                kernel,
                cmdline,
                modules,
            } => BootRepr {
                kernel: Some(kernel),
                modules: Some(modules),
                cmdline,
                ..empty
            },
            Boot::Firmware {
                firmware,
                cmdline,
                modules,
            } => BootRepr {
                firmware: Some(firmware),
                modules: Some(modules),
                cmdline,
                ..empty
            },
            Boot::Bootloader {
                path,
                args,
                cmdline,
                kernel,
                ramdisk,
            } => BootRepr {
                bootloader: Some(path),
                bootloader_args: Some(args),
                bootloader_kernel: kernel,
                bootloader_ramdisk: ramdisk,
                cmdline,
                ..empty
            },
        }
    }
}

impl TryFrom<BootRepr> for Boot {
    type Error = String;

    fn try_from(r: BootRepr) -> Result<Boot, String> {
        let missing = |field: &str| format!("boot kind \"{}\" needs `{field}`", r.kind);
        match r.kind.as_str() {
            "kernel" => Ok(Boot::Kernel {
                kernel: r.kernel.clone().ok_or_else(|| missing("kernel"))?,
                cmdline: r.cmdline,
                modules: r.modules.unwrap_or_default(),
            }),
            "firmware" => Ok(Boot::Firmware {
                firmware: r.firmware.clone().ok_or_else(|| missing("firmware"))?,
                cmdline: r.cmdline,
                modules: r.modules.unwrap_or_default(),
            }),
            "bootloader" => Ok(Boot::Bootloader {
                path: r.bootloader.clone().ok_or_else(|| missing("bootloader"))?,
                args: r.bootloader_args.unwrap_or_default(),
                cmdline: r.cmdline,
                kernel: r.bootloader_kernel,
                ramdisk: r.bootloader_ramdisk,
            }),
            other => Err(format!(
                "unknown boot kind \"{other}\": expected kernel, firmware or bootloader"
            )),
        }
    }
}

/// The boot method from the settings, reporting conflicts and bad values into `cx`.
pub(super) fn build(
    cx: &mut Ctx<'_>,
    ty: DomainType,
    type_setting: Option<&Setting>,
) -> Option<Boot> {
    let kernel = cx.string("kernel");
    let firmware = cx.string("firmware");
    let fw_override = cx.string("firmware_override");
    let bootloader = cx.string("bootloader");
    let cmdline = cmdline(cx);
    let modules = modules(cx);

    // HVM guests are read by `hvm::build`.
    if let Some((s, text)) = fw_override {
        cx.push(
            Diagnostic::error(
                s.key_span.clone(),
                format!("`firmware_override` is only for HVM guests, not type = \"{ty}\""),
            )
            .with_hint(format!(
                "for a {} guest give the image as firmware = \"{}\"",
                ty.as_str().to_uppercase(),
                if text.contains('/') { text } else { "<path>" }
            )),
        );
        return None;
    }

    // With a bootloader, `kernel` (and `ramdisk`) are paths inside the guest that libxl
    // hands the bootloader as hints, not a boot method of their own.
    let (kernel, kernel_hint) = match (kernel, &bootloader) {
        (Some((_, text)), Some(_)) => (None, Some(text.to_string())),
        (k, _) => (k, None),
    };
    // Exactly one method.
    let methods: Vec<&Setting> = [kernel, firmware, bootloader]
        .into_iter()
        .flatten()
        .map(|(s, _)| s)
        .collect();
    if methods.len() > 1 {
        let mut sorted = methods.clone();
        sorted.sort_by_key(|s| (s.key_span.line, s.key_span.column));
        let first = sorted[0];
        for later in &sorted[1..] {
            cx.push(
                Diagnostic::error(
                    later.key_span.clone(),
                    format!(
                        "`{}` and `{}` are both set: a guest boots one way",
                        first.key, later.key
                    ),
                )
                .with_note(
                    first.key_span.clone(),
                    format!("`{}` is set here", first.key),
                )
                .with_hint("keep exactly one of kernel, firmware or bootloader"),
            );
        }
        return None;
    }

    if let Some((s, _)) = cx.setting("bootloader_args").map(|s| (s, ())) {
        if bootloader.is_none() {
            cx.push(Diagnostic::warning(
                s.key_span.clone(),
                "`bootloader_args` is ignored: no bootloader is set",
            ));
        }
    }

    if let Some((s, text)) = kernel {
        let kernel = cx.path(s, text)?;
        return Some(Boot::Kernel {
            kernel,
            cmdline,
            modules: modules?,
        });
    }
    if let Some((s, text)) = firmware {
        let fw = parse_firmware(cx, s, text, ty, type_setting)?;
        return Some(Boot::Firmware {
            firmware: fw,
            cmdline,
            modules: modules?,
        });
    }
    if let Some((s, text)) = bootloader {
        let path = if text.is_empty() {
            cx.push(Diagnostic::error(
                s.value.span.clone(),
                "`bootloader` is empty: it must name a program",
            ));
            return None;
        } else if text.contains('/') {
            Located::at(cx.resolve(&s.value.span, text), &s.value.span)
        } else {
            Located::at(PathBuf::from(text), &s.value.span)
        };
        if let Some(m) = cx.setting("modules") {
            cx.push(Diagnostic::warning(
                m.key_span.clone(),
                "`modules` is ignored: with a bootloader the kernel and its modules come from the guest's disk",
            ));
        }
        let ramdisk = cx.string("ramdisk").map(|(_, t)| t.to_string());
        let args = bootloader_args(cx);
        return Some(Boot::Bootloader {
            path,
            args,
            cmdline,
            kernel: kernel_hint,
            ramdisk,
        });
    }
    cx.push(
        Diagnostic::error(
            cx.fallback.clone(),
            "no boot method: set kernel, firmware or bootloader",
        )
        .with_hint("for a PVH guest: kernel = \"/boot/vmlinuz\""),
    );
    None
}

/// The command line from `cmdline`, `root` and `extra`, as xl builds it.
pub(super) fn cmdline(cx: &mut Ctx<'_>) -> Option<String> {
    let cmdline = cx.string("cmdline");
    let root = cx.string("root");
    let extra = cx.string("extra");
    if let Some((s, text)) = cmdline {
        let others: Vec<&Setting> = [root, extra]
            .into_iter()
            .flatten()
            .map(|(s, _)| s)
            .collect();
        if !others.is_empty() {
            let mut d = Diagnostic::warning(
                s.key_span.clone(),
                "`cmdline` is set, so `root` and `extra` are ignored",
            );
            for o in others {
                d = d.with_note(o.key_span.clone(), format!("`{}` is ignored", o.key));
            }
            cx.push(d.with_hint("put everything in cmdline"));
        }
        return Some(text.to_string());
    }
    match (root, extra) {
        (Some((_, r)), Some((_, e))) => Some(format!("root={r} {e}")),
        (Some((_, r)), None) => Some(format!("root={r}")),
        (None, Some((_, e))) => Some(e.to_string()),
        (None, None) => None,
    }
}

/// The ramdisk (module 0) followed by the entries of `modules`. `None` after an error.
fn modules(cx: &mut Ctx<'_>) -> Option<Vec<Module>> {
    let mut out = Vec::new();
    let mut ok = true;
    if let Some((s, text)) = cx.string("ramdisk") {
        match cx.path(s, text) {
            Some(path) => out.push(Module {
                path,
                cmdline: None,
            }),
            None => ok = false,
        }
    } else if cx.setting("ramdisk").is_some() {
        ok = false;
    }
    if let Some(s) = cx.setting("modules") {
        match s.value.as_list() {
            None => {
                cx.push(
                    Diagnostic::error(s.value.span.clone(), "`modules` must be a list")
                        .with_hint("write modules = [ \"file\", [ \"file\", \"cmdline\" ] ]"),
                );
                ok = false;
            }
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    match module_entry(cx, s, i, item) {
                        Some(m) => out.push(m),
                        None => ok = false,
                    }
                }
            }
        }
    }
    ok.then_some(out)
}

fn module_entry(cx: &mut Ctx<'_>, s: &Setting, i: usize, item: &Value) -> Option<Module> {
    let bad = |cx: &mut Ctx<'_>, span, msg: String| {
        cx.push(
            Diagnostic::error(span, msg)
                .with_hint("each module is \"file\" or [ \"file\", \"cmdline\" ]"),
        );
        None
    };
    let n = i + 1;
    match &item.kind {
        ValueKind::String(p) => module_path(cx, s, n, p, item).map(|path| Module {
            path,
            cmdline: None,
        }),
        ValueKind::Number(_) => bad(
            cx,
            item.span.clone(),
            format!("module {n} must be a file name string, not a number"),
        ),
        ValueKind::List(parts) => match parts.as_slice() {
            [p] | [p, _] => {
                let ValueKind::String(path_text) = &p.kind else {
                    return bad(
                        cx,
                        p.span.clone(),
                        format!("module {n}: the file name must be a string"),
                    );
                };
                let cmdline = match parts.get(1).map(|c| &c.kind) {
                    None => None,
                    Some(ValueKind::String(c)) | Some(ValueKind::Number(c)) => Some(c.clone()),
                    Some(ValueKind::List(_)) => {
                        return bad(
                            cx,
                            parts[1].span.clone(),
                            format!("module {n}: the command line must be a string"),
                        );
                    }
                };
                let path = module_path(cx, s, n, path_text, p)?;
                Some(Module { path, cmdline })
            }
            _ => bad(
                cx,
                item.span.clone(),
                format!(
                    "module {n} has {} items; expected [ file ] or [ file, cmdline ]",
                    parts.len()
                ),
            ),
        },
    }
}

fn module_path(
    cx: &mut Ctx<'_>,
    _s: &Setting,
    n: usize,
    text: &str,
    at: &Value,
) -> Option<Located<PathBuf>> {
    if text.is_empty() {
        cx.push(Diagnostic::error(
            at.span.clone(),
            format!("module {n}: the file name is empty"),
        ));
        return None;
    }
    Some(Located::at(cx.resolve(&at.span, text), &at.span))
}

/// `bootloader_args`: a list of strings, or (deprecated in xl) one string split at
/// whitespace.
fn bootloader_args(cx: &mut Ctx<'_>) -> Vec<String> {
    let Some(s) = cx.setting("bootloader_args") else {
        return Vec::new();
    };
    match &s.value.kind {
        ValueKind::String(text) | ValueKind::Number(text) => {
            cx.push(
                Diagnostic::warning(
                    s.value.span.clone(),
                    "`bootloader_args` as a string is deprecated; it is split at whitespace",
                )
                .with_hint("write a list: bootloader_args = [ \"arg1\", \"arg2\" ]"),
            );
            text.split([' ', '\t', '\n'])
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect()
        }
        ValueKind::List(items) => {
            let mut out = Vec::new();
            for item in items {
                match &item.kind {
                    ValueKind::String(a) | ValueKind::Number(a) => out.push(a.clone()),
                    ValueKind::List(_) => cx.push(Diagnostic::error(
                        item.span.clone(),
                        "each bootloader argument must be a string, not a list",
                    )),
                }
            }
            out
        }
    }
}

/// A `firmware =` value: a name or a path, checked against the domain type.
pub(super) fn parse_firmware(
    cx: &mut Ctx<'_>,
    s: &Setting,
    text: &str,
    ty: DomainType,
    type_setting: Option<&Setting>,
) -> Option<Located<Firmware>> {
    let span = &s.value.span;
    let fw = if text.contains('/') {
        Firmware::Path(cx.resolve(&s.value.span, text))
    } else if let Some(fw) = Firmware::from_name(text) {
        fw
    } else {
        let d = match text {
            "bios" => Diagnostic::error(
                span.clone(),
                "firmware = \"bios\" is refused: name the BIOS",
            )
            .with_hint("use seabios"),
            "uefi" => Diagnostic::error(
                span.clone(),
                "firmware = \"uefi\" is refused: name the UEFI firmware",
            )
            .with_hint("use ovmf"),
            "" => Diagnostic::error(span.clone(), "`firmware` is empty"),
            _ => {
                let d = Diagnostic::error(
                    span.clone(),
                    format!(
                        "unknown firmware \"{text}\": expected {} or a path",
                        Firmware::NAMES.join(", ")
                    ),
                );
                match keys::suggest(text, Firmware::NAMES) {
                    Some(n) => d.with_hint(format!("did you mean \"{n}\"?")),
                    None => d.with_hint(format!(
                        "a path must contain '/': write firmware = \"./{text}\" for a file next to the config"
                    )),
                }
            }
        };
        cx.push(d);
        return None;
    };
    if !fw.supports(ty) {
        let (needs, hint) = match (&fw, ty) {
            (Firmware::Ovmf, _) => (
                "type = \"hvm\" or \"pvh\"",
                "a PV guest boots a kernel or PV-GRUB: firmware = \"pvgrub64\"",
            ),
            (Firmware::Pvgrub, DomainType::Pv) => (
                "type = \"pvh\"",
                "a PV guest boots PV-GRUB: firmware = \"pvgrub64\"",
            ),
            (Firmware::Pvgrub, _) => (
                "type = \"pvh\"",
                "an HVM guest boots its BIOS: firmware = \"seabios\"",
            ),
            (Firmware::Seabios | Firmware::Rombios, _) => (
                "type = \"hvm\"",
                "a PVH guest boots a kernel directly (kernel = \"/boot/vmlinuz\") or firmware = \"ovmf\"",
            ),
            (_, DomainType::Pvh) => (
                "type = \"pv\"",
                "PV-GRUB (pvgrub32/pvgrub64) is a PV kernel and cannot start a PVH guest; use \
                 firmware = \"pvgrub\": GRUB built for PVH, /usr/lib/grub-xen/grub-i386-xen_pvh.bin \
                 from the package grub-xen-host",
            ),
            _ => (
                "type = \"pv\"",
                "an HVM guest boots its BIOS: firmware = \"seabios\"",
            ),
        };
        let mut d = Diagnostic::error(
            span.clone(),
            format!("firmware \"{text}\" needs {needs}, not type = \"{ty}\""),
        )
        .with_hint(hint);
        if let Some(t) = type_setting {
            d = d.with_note(t.value.span.clone(), "the type is set here");
        }
        cx.push(d);
        return None;
    }
    Some(Located::at(fw, span))
}
