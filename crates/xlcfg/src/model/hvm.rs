//! The keys of a `type = "hvm"` guest: its firmware (hvmloader and the BIOS it carries),
//! direct kernel boot through the device model, and what the device model emulates.
//!
//! The keys are read as Xen 4.17's xl reads them (parse_config_data) and defaulted as
//! libxl's `libxl__domain_build_info_setdefault` does for the qemu-xen device model, except
//! that VNC is off unless the config asks for it (docs/config-reference.md).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{boot, keys, Ctx, DomainType, Located};
use crate::model::boot::{Boot, Firmware};
use crate::settings::{Diagnostic, Setting, ValueKind};

/// The BIOS hvmloader hands control to (`bios =`, or a BIOS name in `firmware =`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bios {
    /// SeaBIOS, libxl's default for the qemu-xen device model.
    Seabios,
    /// ROMBIOS, built into some hvmloaders.
    Rombios,
    /// OVMF (UEFI).
    Ovmf,
}

impl Bios {
    /// Every BIOS, as libxl spells it.
    pub const ALL: [Bios; 3] = [Bios::Rombios, Bios::Seabios, Bios::Ovmf];

    /// The name as xl.cfg and hvmloader (xenstore `hvmloader/bios`) write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Bios::Seabios => "seabios",
            Bios::Rombios => "rombios",
            Bios::Ovmf => "ovmf",
        }
    }

    /// The BIOS called `name`, ignoring case as libxl's enum parser does.
    pub fn from_name(name: &str) -> Option<Bios> {
        Bios::ALL
            .into_iter()
            .find(|b| b.as_str().eq_ignore_ascii_case(name))
    }

    /// The same choice as a [`Firmware`].
    pub fn firmware(self) -> Firmware {
        match self {
            Bios::Seabios => Firmware::Seabios,
            Bios::Rombios => Firmware::Rombios,
            Bios::Ovmf => Firmware::Ovmf,
        }
    }
}

/// The emulated graphics card (`vga =`, or `stdvga =`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vga {
    /// Cirrus Logic GD5446, libxl's default.
    Cirrus,
    /// The standard VGA (Bochs VBE).
    Std,
    /// No graphics card.
    None,
}

impl Vga {
    /// The least video RAM libxl allows for this card with qemu-xen, MiB (and its default).
    pub fn min_videoram_mib(self) -> u64 {
        match self {
            Vga::Cirrus => 8,
            Vga::Std => 16,
            Vga::None => 0,
        }
    }
}

/// VNC, when enabled (`vnc = 1`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vnc {
    /// `vnclisten`: the address (optionally `:display`); libxl's default 127.0.0.1.
    pub listen: String,
    /// `vncdisplay`: the display number, when given.
    pub display: Option<u32>,
    /// `vncunused`: look for a free display from the chosen one on (default on).
    pub find_unused: bool,
}

/// A kernel the device model loads into the guest (`kernel =` for HVM: QEMU's `-kernel`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectBoot {
    /// The kernel, absolute.
    pub kernel: Located<PathBuf>,
    /// `ramdisk`, absolute (QEMU's `-initrd`).
    pub ramdisk: Option<Located<PathBuf>>,
    /// The command line (`cmdline`, or `root`/`extra`): QEMU's `-append`.
    pub cmdline: Option<String>,
}

/// Everything specific to an HVM guest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HvmConfig {
    /// The BIOS module hvmloader runs.
    pub bios: Bios,
    /// A replacement for hvmloader (`firmware = "<path>"` or `firmware_override`).
    pub hvmloader: Option<Located<PathBuf>>,
    /// A replacement for the BIOS image (`bios_path_override`).
    pub bios_path: Option<Located<PathBuf>>,
    /// A kernel booted by the device model instead of from the disks.
    pub direct_boot: Option<DirectBoot>,
    /// The boot device order, QEMU's letters (`boot =`, default "cda").
    pub boot_order: String,
    /// The serial ports, each a QEMU `-serial` backend (`serial =`, e.g. "pty").
    pub serial: Vec<String>,
    /// VNC, when enabled.
    pub vnc: Option<Vnc>,
    /// `sdl`: a local SDL window.
    pub sdl: bool,
    /// `nographic`: no graphics output at all.
    pub nographic: bool,
    /// The graphics card.
    pub vga: Vga,
    /// Video RAM, MiB (`videoram`).
    pub videoram_mib: u64,
    /// `acpi` (default on).
    pub acpi: bool,
    /// `apic` (default on).
    pub apic: bool,
    /// `pae` (default on).
    pub pae: bool,
    /// `hpet` (default on).
    pub hpet: bool,
    /// The Viridian (Hyper-V) enlightenment groups enabled, in libxl's order
    /// ([`hvm_defaults::VIRIDIAN_GROUPS`]); empty when off.
    pub viridian: Vec<String>,
    /// The size of the MMIO hole below 4 GiB, MiB (`mmio_hole`); `None` lets libxenguest's
    /// default stand.
    pub mmio_hole_mib: Option<u64>,
    /// The controller of the emulated hard disks (`hdtype`, default IDE).
    #[serde(default)]
    pub hdtype: HdType,
}

/// `hdtype`: the controller QEMU puts the emulated hard disks on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HdType {
    /// The PIIX IDE controller: at most 4 disks (hda..hdd), CD-ROMs among them.
    #[default]
    Ide,
    /// An AHCI (SATA) controller: the first 6 hard disks; CD-ROMs stay on IDE.
    Ahci,
}

/// The device model program and its extra arguments (`device_model_override`,
/// `device_model_args`), for whichever guest runs one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceModelConfig {
    /// The QEMU binary to run instead of the host's.
    pub program: Option<Located<PathBuf>>,
    /// Arguments appended to the command line.
    pub args: Vec<String>,
}

impl DeviceModelConfig {
    /// Nothing set.
    pub fn is_default(&self) -> bool {
        self == &DeviceModelConfig::default()
    }
}

/// libxl's defaults and limits for HVM guests.
pub mod hvm_defaults {
    /// `boot` when not given.
    pub const BOOT_ORDER: &str = "cda";
    /// `vnclisten` when VNC is on and no address is given.
    pub const VNC_LISTEN: &str = "127.0.0.1";
    /// The smallest `mmio_hole`, MiB (HVM_BELOW_4G_MMIO_LENGTH).
    pub const MMIO_HOLE_MIN_MIB: u64 = 0x1000_0000 >> 20;
    /// The largest `mmio_hole`, MiB (HVM_BELOW_4G_MMIO_START).
    pub const MMIO_HOLE_MAX_MIB: u64 = 0xF000_0000 >> 20;
    /// The boot device letters QEMU takes for a PC: floppy, hard disk, CD-ROM, network.
    pub const BOOT_DEVICES: &str = "acdn";
    /// The Viridian enlightenment groups libxl knows (libxl_viridian_enlightenment), in
    /// its order.
    pub const VIRIDIAN_GROUPS: [&str; 13] = [
        "base",
        "freq",
        "time_ref_count",
        "reference_tsc",
        "hcall_remote_tlb_flush",
        "apic_assist",
        "crash_ctl",
        "synic",
        "stimer",
        "hcall_ipi",
        "ex_processor_masks",
        "no_vp_limit",
        "cpu_hotplug",
    ];
    /// The groups `viridian = 1` (or "defaults") turns on (`hvm_set_viridian_features`).
    pub const VIRIDIAN_DEFAULTS: [&str; 7] = [
        "base",
        "freq",
        "time_ref_count",
        "apic_assist",
        "crash_ctl",
        "no_vp_limit",
        "cpu_hotplug",
    ];
    /// Every word a `viridian` list may hold: the groups, and xl's "all" and "defaults".
    pub const VIRIDIAN: [&str; 15] = [
        "base",
        "freq",
        "time_ref_count",
        "reference_tsc",
        "hcall_remote_tlb_flush",
        "apic_assist",
        "crash_ctl",
        "synic",
        "stimer",
        "hcall_ipi",
        "ex_processor_masks",
        "no_vp_limit",
        "cpu_hotplug",
        "all",
        "defaults",
    ];
}

/// Keys only an HVM guest uses; set for another type they are ignored with a warning.
pub const HVM_ONLY_KEYS: &[&str] = &[
    "acpi",
    "apic",
    "bios",
    "bios_path_override",
    "boot",
    "hdtype",
    "hpet",
    "mmio_hole",
    "nographic",
    "pae",
    "sdl",
    "serial",
    "stdvga",
    "vga",
    "videoram",
    "viridian",
    "vnc",
    "vncdisplay",
    "vnclisten",
    "vncunused",
];

/// The boot method and HVM settings of an HVM guest: `boot` is always
/// [`Boot::Firmware`], naming the hvmloader replacement when there is one, else the BIOS.
pub(super) fn build(cx: &mut Ctx<'_>, type_setting: Option<&Setting>) -> Option<(Boot, HvmConfig)> {
    if let Some(s) = cx.setting("bootloader") {
        cx.push(Diagnostic::warning(
            s.key_span.clone(),
            "`bootloader` is ignored for type = \"hvm\" (as xl does)",
        ));
    }
    if let Some(s) = cx.setting("modules") {
        cx.push(Diagnostic::warning(
            s.key_span.clone(),
            "`modules` is ignored for type = \"hvm\": the device model takes one kernel and one ramdisk",
        ));
    }
    let firmware = firmware(cx, type_setting);
    let bios_path = cx
        .string("bios_path_override")
        .and_then(|(s, text)| cx.path(s, text));
    let direct_boot = direct_boot(cx);
    let boot_order = boot_order(cx);
    let serial = serial(cx);
    let vnc = vnc(cx);
    let sdl = cx.flag("sdl").unwrap_or(false);
    let nographic = cx.flag("nographic").unwrap_or(false);
    let vga = vga(cx);
    let videoram_mib = videoram(cx, vga);
    let acpi = cx.flag("acpi").unwrap_or(true);
    let apic = cx.flag("apic").unwrap_or(true);
    let pae = cx.flag("pae").unwrap_or(true);
    let hpet = cx.flag("hpet").unwrap_or(true);
    let viridian = viridian(cx);
    let hdtype = hdtype(cx);
    let mmio_hole_mib = cx
        .integer(
            "mmio_hole",
            hvm_defaults::MMIO_HOLE_MIN_MIB as i64,
            hvm_defaults::MMIO_HOLE_MAX_MIB as i64,
        )
        .map(|(_, n)| n.unsigned_abs());
    let (bios, hvmloader) = firmware?;
    if bios_path.is_some() && cx.setting("bios").is_none() && cx.setting("firmware").is_none() {
        if let Some(s) = cx.setting("bios_path_override") {
            cx.push(
                Diagnostic::warning(
                    s.key_span.clone(),
                    "`bios_path_override` is given without a BIOS name: it replaces SeaBIOS",
                )
                .with_hint(
                    "name the BIOS the image is: bios = \"seabios\" (or \"rombios\", \"ovmf\")",
                ),
            );
        }
    }
    let fw = match &hvmloader {
        Some(p) => Located {
            value: Firmware::Path(p.value.clone()),
            line: p.line,
            column: p.column,
            span: p.span.clone(),
        },
        None => match cx.setting("firmware").or_else(|| cx.setting("bios")) {
            Some(s) => Located::at(bios.firmware(), &s.value.span),
            None => Located::unplaced(bios.firmware()),
        },
    };
    let boot = Boot::Firmware {
        firmware: fw,
        cmdline: None,
        modules: Vec::new(),
    };
    let hvm = HvmConfig {
        bios,
        hvmloader,
        bios_path,
        direct_boot: direct_boot?,
        boot_order,
        serial,
        vnc,
        sdl,
        nographic,
        vga,
        videoram_mib,
        acpi,
        apic,
        pae,
        hpet,
        viridian,
        mmio_hole_mib,
        hdtype,
    };
    Some((boot, hvm))
}

/// `device_model_override` and `device_model_args`, for any guest type.
pub(super) fn device_model(cx: &mut Ctx<'_>) -> DeviceModelConfig {
    let program = cx
        .string("device_model_override")
        .and_then(|(s, text)| cx.path(s, text));
    let args = cx.string_list("device_model_args").unwrap_or_default();
    DeviceModelConfig { program, args }
}

/// Warn about each HVM-only key set for a guest of another type.
pub(super) fn ignore_hvm_keys(cx: &mut Ctx<'_>, ty: DomainType) {
    for key in HVM_ONLY_KEYS {
        if let Some(s) = cx.setting(key) {
            cx.push(Diagnostic::warning(
                s.key_span.clone(),
                format!(
                    "`{key}` is only used for type = \"hvm\" and is ignored for type = \"{ty}\""
                ),
            ));
        }
    }
}

/// `bios`, `firmware` and `firmware_override`: the BIOS and an hvmloader replacement.
/// `None` after an error.
fn firmware(
    cx: &mut Ctx<'_>,
    type_setting: Option<&Setting>,
) -> Option<(Bios, Option<Located<PathBuf>>)> {
    let mut ok = true;
    let mut bios = Bios::Seabios;
    let mut hvmloader = None;
    let bios_key = cx.string("bios");
    if let Some((s, text)) = bios_key {
        match Bios::from_name(text) {
            Some(b) => bios = b,
            None => {
                let names: Vec<&str> = Bios::ALL.iter().map(|b| b.as_str()).collect();
                let mut d = Diagnostic::error(
                    s.value.span.clone(),
                    format!("invalid bios \"{text}\": expected {}", names.join(", ")),
                );
                if let Some(n) = keys::suggest(text, names.iter().copied()) {
                    d = d.with_hint(format!("did you mean \"{n}\"?"));
                }
                cx.push(d);
                ok = false;
            }
        }
    }
    let firmware_key = cx.string("firmware");
    if let Some((s, text)) = firmware_key {
        // A BIOS name sets the BIOS; a path names an hvmloader replacement. xl also takes
        // a prefix of "uefi" as OVMF and of "bios" as the default BIOS: rxl refuses those
        // aliases (parse_firmware says which firmware to name), as it does for PVH.
        let named = if text.is_empty() {
            None
        } else {
            Bios::from_name(text)
        };
        match named {
            Some(b) => {
                if let Some((bs, _)) = bios_key {
                    if b != bios {
                        cx.push(
                            Diagnostic::warning(
                                s.value.span.clone(),
                                format!(
                                    "`firmware` = \"{text}\" overrides bios = \"{}\" (as xl does)",
                                    bios.as_str()
                                ),
                            )
                            .with_note(bs.value.span.clone(), "`bios` is set here")
                            .with_hint("keep one of them"),
                        );
                    }
                }
                if b.as_str() != text.to_ascii_lowercase() {
                    cx.push(
                        Diagnostic::warning(
                            s.value.span.clone(),
                            format!("firmware = \"{text}\" is taken as \"{}\"", b.as_str()),
                        )
                        .with_hint(format!("write firmware = \"{}\"", b.as_str())),
                    );
                }
                bios = b;
            }
            None => match boot::parse_firmware(cx, s, text, DomainType::Hvm, type_setting) {
                Some(fw) => match fw.value {
                    Firmware::Path(p) => {
                        hvmloader = Some(Located {
                            value: p,
                            line: fw.line,
                            column: fw.column,
                            span: fw.span,
                        })
                    }
                    other => {
                        // parse_firmware accepts only HVM firmwares, all BIOS names.
                        cx.push(Diagnostic::error(
                            s.value.span.clone(),
                            format!("firmware \"{other}\" is not a BIOS"),
                        ));
                        ok = false;
                    }
                },
                None => ok = false,
            },
        }
    }
    if let Some((s, text)) = cx.string("firmware_override") {
        if let Some((f, _)) = firmware_key.filter(|_| hvmloader.is_some()) {
            cx.push(
                Diagnostic::error(
                    s.key_span.clone(),
                    "`firmware_override` and `firmware` both name an hvmloader",
                )
                .with_note(f.key_span.clone(), "`firmware` is set here")
                .with_hint("keep one"),
            );
            ok = false;
        } else {
            match cx.path(s, text) {
                Some(p) => hvmloader = Some(p),
                None => ok = false,
            }
        }
    }
    ok.then_some((bios, hvmloader))
}

/// `kernel`, `ramdisk` and the command line, which the device model boots. `None` after
/// an error; `Some(None)` without a kernel.
fn direct_boot(cx: &mut Ctx<'_>) -> Option<Option<DirectBoot>> {
    let cmdline = boot::cmdline(cx);
    let ramdisk = cx.string("ramdisk");
    let Some((s, text)) = cx.string("kernel") else {
        for key in ["ramdisk", "cmdline", "root", "extra"] {
            if let Some(s) = cx.setting(key) {
                cx.push(Diagnostic::warning(
                    s.key_span.clone(),
                    format!("`{key}` is ignored for an HVM guest without a kernel"),
                ));
            }
        }
        return Some(None);
    };
    if Path::new(text)
        .file_name()
        .is_some_and(|n| n == "hvmloader")
    {
        // xl drops a kernel called hvmloader: old configs named the firmware that way.
        cx.push(
            Diagnostic::warning(
                s.key_span.clone(),
                "`kernel` names hvmloader: it is ignored (as xl does)",
            )
            .with_hint("to replace hvmloader write firmware_override = \"<path>\""),
        );
        return Some(None);
    }
    let kernel = cx.path(s, text)?;
    let ramdisk = match ramdisk {
        Some((rs, rt)) => Some(cx.path(rs, rt)?),
        None => None,
    };
    Some(Some(DirectBoot {
        kernel,
        ramdisk,
        cmdline,
    }))
}

/// `boot`: boot device letters, each once.
fn boot_order(cx: &mut Ctx<'_>) -> String {
    let Some((s, text)) = cx.string("boot") else {
        return hvm_defaults::BOOT_ORDER.to_string();
    };
    let hint =
        "write letters from a (floppy), c (hard disk), d (CD-ROM), n (network), e.g. boot = \"dc\"";
    if text.is_empty() {
        cx.push(Diagnostic::error(s.value.span.clone(), "`boot` is empty").with_hint(hint));
        return hvm_defaults::BOOT_ORDER.to_string();
    }
    for (i, c) in text.char_indices() {
        let d = if !hvm_defaults::BOOT_DEVICES.contains(c) {
            Some(format!("unknown boot device '{c}' in boot = \"{text}\""))
        } else if text[..i].contains(c) {
            Some(format!(
                "boot device '{c}' is given twice in boot = \"{text}\""
            ))
        } else {
            None
        };
        if let Some(msg) = d {
            let span = s.value.span.at_offset(i + 1);
            cx.push(Diagnostic::error(span, msg).with_hint(hint));
            return hvm_defaults::BOOT_ORDER.to_string();
        }
    }
    text.to_string()
}

/// `serial`: one backend or a list of them.
fn serial(cx: &mut Ctx<'_>) -> Vec<String> {
    let Some(s) = cx.setting("serial") else {
        return Vec::new();
    };
    if let ValueKind::String(t) | ValueKind::Number(t) = &s.value.kind {
        if t.is_empty() {
            cx.push(
                Diagnostic::error(s.value.span.clone(), "`serial` is empty")
                    .with_hint("write serial = \"pty\""),
            );
            return Vec::new();
        }
        return vec![t.clone()];
    }
    let items = cx.string_list("serial").unwrap_or_default();
    if let Some(ValueKind::List(values)) = Some(&s.value.kind) {
        for (v, item) in values.iter().zip(&items) {
            if item.is_empty() {
                cx.push(
                    Diagnostic::error(v.span.clone(), "a serial port is empty")
                        .with_hint("write \"pty\""),
                );
            }
        }
    }
    items
}

/// `vnc`, `vnclisten`, `vncdisplay`, `vncunused`.
fn vnc(cx: &mut Ctx<'_>) -> Option<Vnc> {
    let on = cx.flag("vnc").unwrap_or(false);
    let listen = cx.string("vnclisten").map(|(s, t)| (s, t.to_string()));
    let display = cx
        .integer("vncdisplay", 0, i64::from(u16::MAX))
        .map(|(_, n)| u32::try_from(n).unwrap_or(0));
    let find_unused = cx.flag("vncunused");
    if !on {
        for key in ["vnclisten", "vncdisplay", "vncunused", "vncpasswd"] {
            if let Some(s) = cx.setting(key) {
                cx.push(
                    Diagnostic::warning(
                        s.key_span.clone(),
                        format!("`{key}` is ignored: VNC is off"),
                    )
                    .with_hint("rxl turns VNC on only with vnc = 1"),
                );
            }
        }
        return None;
    }
    let listen = match listen {
        Some((s, t)) if t.is_empty() => {
            cx.push(
                Diagnostic::error(s.value.span.clone(), "`vnclisten` is empty").with_hint(format!(
                    "leave it out to listen on {}",
                    hvm_defaults::VNC_LISTEN
                )),
            );
            hvm_defaults::VNC_LISTEN.to_string()
        }
        Some((_, t)) => t,
        None => hvm_defaults::VNC_LISTEN.to_string(),
    };
    Some(Vnc {
        listen,
        display,
        find_unused: find_unused.unwrap_or(true),
    })
}

/// `vga`, or the older `stdvga`.
fn vga(cx: &mut Ctx<'_>) -> Vga {
    if let Some((s, text)) = cx.string("vga") {
        if let Some(old) = cx.setting("stdvga") {
            cx.push(
                Diagnostic::warning(old.key_span.clone(), "`stdvga` is ignored: `vga` is set")
                    .with_note(s.key_span.clone(), "`vga` is set here"),
            );
        }
        return match text {
            "stdvga" => Vga::Std,
            "cirrus" => Vga::Cirrus,
            "none" => Vga::None,
            "qxl" => {
                cx.push(
                    Diagnostic::error(
                        s.value.span.clone(),
                        "vga = \"qxl\" is not supported by rxl: it needs SPICE",
                    )
                    .with_hint("use vga = \"stdvga\" or \"cirrus\""),
                );
                Vga::Cirrus
            }
            _ => {
                let mut d = Diagnostic::error(
                    s.value.span.clone(),
                    format!("unknown vga \"{text}\": expected stdvga, cirrus or none"),
                );
                if let Some(n) = keys::suggest(text, ["stdvga", "cirrus", "none"]) {
                    d = d.with_hint(format!("did you mean \"{n}\"?"));
                }
                cx.push(d);
                Vga::Cirrus
            }
        };
    }
    match cx.flag("stdvga") {
        Some(true) => Vga::Std,
        _ => Vga::Cirrus,
    }
}

/// `hdtype`: "ide" or "ahci", in any case (libxl's `libxl_hdtype_from_string`).
fn hdtype(cx: &mut Ctx<'_>) -> HdType {
    let Some((s, text)) = cx.string("hdtype") else {
        return HdType::default();
    };
    match text.to_ascii_lowercase().as_str() {
        "ide" => HdType::Ide,
        "ahci" => HdType::Ahci,
        _ => {
            cx.push(
                Diagnostic::error(
                    s.value.span.clone(),
                    format!("unknown hdtype \"{text}\": expected ide or ahci"),
                )
                .with_hint("write hdtype = \"ahci\" for SATA disks, or leave it out for IDE"),
            );
            HdType::default()
        }
    }
}

/// `videoram`, MiB: at least what the card needs, which is also the default.
fn videoram(cx: &mut Ctx<'_>, vga: Vga) -> u64 {
    let min = vga.min_videoram_mib();
    let Some((s, n)) = cx.integer("videoram", 0, 1 << 20) else {
        return min;
    };
    let n = n.unsigned_abs();
    if vga == Vga::None {
        return n;
    }
    if n < min {
        let card = if vga == Vga::Std { "stdvga" } else { "cirrus" };
        cx.push(
            Diagnostic::error(
                s.value.span.clone(),
                format!("videoram = {n} is too small: {card} needs at least {min} MiB"),
            )
            .with_hint(format!("write videoram = {min} or more, or leave it out")),
        );
        return min;
    }
    n
}

/// `viridian`: a flag, or a list of enlightenment groups (each may be negated with '!').
fn viridian(cx: &mut Ctx<'_>) -> Vec<String> {
    let Some(s) = cx.setting("viridian") else {
        return Vec::new();
    };
    let groups = |names: &[&str]| -> Vec<String> {
        hvm_defaults::VIRIDIAN_GROUPS
            .iter()
            .filter(|g| names.contains(g))
            .map(|g| g.to_string())
            .collect()
    };
    if !matches!(s.value.kind, ValueKind::List(_)) {
        return match cx.flag("viridian") {
            Some(true) => groups(&hvm_defaults::VIRIDIAN_DEFAULTS),
            _ => Vec::new(),
        };
    }
    // As xl and libxl: "defaults" turns the default groups on, "all" every group, a name
    // its group, "!name" removes it; what the list enables wins over the defaults.
    let items = cx.string_list("viridian").unwrap_or_default();
    let mut defaults = false;
    let mut enable: Vec<&str> = Vec::new();
    let mut disable: Vec<&str> = Vec::new();
    for item in &items {
        match item.as_str() {
            "all" => enable.extend(hvm_defaults::VIRIDIAN_GROUPS),
            "defaults" => defaults = true,
            other => match other.strip_prefix('!') {
                Some(n) => {
                    enable.retain(|g| *g != n);
                    disable.push(n);
                }
                None => {
                    disable.retain(|g| *g != other);
                    enable.push(other);
                }
            },
        }
    }
    let mut on: Vec<&str> = if defaults {
        hvm_defaults::VIRIDIAN_DEFAULTS.to_vec()
    } else {
        Vec::new()
    };
    on.extend(&enable);
    on.retain(|g| !disable.contains(g));
    let resolved = groups(&on);
    if !resolved.is_empty() && !resolved.iter().any(|g| g == "base") {
        cx.push(
            Diagnostic::error(
                s.value.span.clone(),
                "viridian: the base group is not enabled, and every other group needs it",
            )
            .with_hint("add \"base\" (or \"defaults\") to the list"),
        );
    }
    if let ValueKind::List(values) = &s.value.kind {
        for (v, item) in values.iter().zip(&items) {
            let name = item.strip_prefix('!').unwrap_or(item);
            if !hvm_defaults::VIRIDIAN.contains(&name) {
                let mut d = Diagnostic::error(
                    v.span.clone(),
                    format!("unknown viridian enlightenment \"{item}\""),
                );
                d = match keys::suggest(name, hvm_defaults::VIRIDIAN) {
                    Some(n) => d.with_hint(format!("did you mean \"{n}\"?")),
                    None => d.with_hint(format!("use {}", hvm_defaults::VIRIDIAN.join(", "))),
                };
                cx.push(d);
            }
        }
    }
    resolved
}
