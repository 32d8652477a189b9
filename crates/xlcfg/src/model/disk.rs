//! `disk = [ ... ]`: xl-disk-configuration(5) disk specs.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{keys, path, Ctx, Located};
use crate::settings::{Diagnostic, Span, Value, ValueKind};

/// The image format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskFormat {
    /// Raw image or block device (the default).
    Raw,
    /// QEMU qcow.
    Qcow,
    /// QEMU qcow2.
    Qcow2,
    /// VHD.
    Vhd,
    /// QEMU qed.
    Qed,
    /// No medium (an empty CD-ROM drive).
    Empty,
}

impl DiskFormat {
    fn from_name(s: &str) -> Option<DiskFormat> {
        Some(match s {
            "" | "raw" => DiskFormat::Raw,
            "qcow" => DiskFormat::Qcow,
            "qcow2" => DiskFormat::Qcow2,
            "vhd" => DiskFormat::Vhd,
            "qed" => DiskFormat::Qed,
            "empty" => DiskFormat::Empty,
            _ => return None,
        })
    }
}

/// Read-only or read-write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskAccess {
    /// Read-only (`ro`, `r`).
    Ro,
    /// Read-write (`rw`, `w`).
    Rw,
}

/// The device type the guest sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskType {
    /// A disk (the default).
    Disk,
    /// A CD-ROM drive.
    Cdrom,
}

/// The backend implementation (`backendtype=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskBackendType {
    /// The kernel's blkback.
    Phy,
    /// blktap.
    Tap,
    /// QEMU's qdisk.
    Qdisk,
    /// A standalone (virtio) backend.
    Standalone,
}

/// The protocol (`specification=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskSpecification {
    /// Xen's blkif.
    Xen,
    /// virtio-blk.
    Virtio,
}

/// What the target names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskTargetKind {
    /// An image file, resolved against the config's directory.
    File,
    /// A host block device (`phy:` or `backendtype=phy`, or a path under /dev): relative
    /// names get `/dev/` prepended, as xl-disk-configuration(5) says.
    Device,
    /// Data for a hotplug script (`script=`), kept verbatim.
    Script,
    /// No target: an empty CD-ROM drive.
    Empty,
}

/// One `disk` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskSpec {
    /// The target: an absolute path for a file or device, the verbatim text for a script;
    /// `None` for an empty drive.
    pub target: Option<Located<PathBuf>>,
    /// What `target` is.
    pub target_kind: DiskTargetKind,
    /// The image format.
    pub format: DiskFormat,
    /// The guest device name (xen-vbd-interface(7)), e.g. `xvda`.
    pub vdev: String,
    /// Read-only or read-write.
    pub access: DiskAccess,
    /// Disk or CD-ROM.
    pub devtype: DiskType,
    /// The backend domain's name (`backend=`); `None` is dom0.
    pub backend: Option<String>,
    /// The backend implementation; `None` lets the toolstack choose.
    pub backendtype: Option<DiskBackendType>,
    /// The protocol; `None` is xen.
    pub specification: Option<DiskSpecification>,
    /// The hotplug script (`script=`, or `block-<name>` from a deprecated prefix).
    pub script: Option<String>,
    /// `direct-io-safe`.
    pub direct_io_safe: bool,
    /// `discard` / `no-discard`; `None` is the backend's default (discard).
    pub discard: Option<bool>,
    /// `trusted` / `untrusted`; `None` is trusted.
    pub trusted: Option<bool>,
}

/// Every entry of `disk`.
pub(super) fn build_all(cx: &mut Ctx<'_>) -> Vec<DiskSpec> {
    let Some(s) = cx.setting("disk") else {
        return Vec::new();
    };
    let Some(items) = s.value.as_list() else {
        cx.push(
            Diagnostic::error(s.value.span.clone(), "`disk` must be a list of disk specs")
                .with_hint("write disk = [ \"/path/to/image,raw,xvda,rw\" ]"),
        );
        return Vec::new();
    };
    let mut out: Vec<(DiskSpec, Span)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(d) = parse_item(cx, i + 1, item) else {
            continue;
        };
        if let Some((_, first)) = out.iter().find(|(o, _)| o.vdev == d.vdev) {
            let first = first.clone();
            cx.push(
                Diagnostic::error(
                    item.span.clone(),
                    format!("disk {}: vdev {} is already used", i + 1, d.vdev),
                )
                .with_note(first, "by this disk")
                .with_hint("give each disk its own vdev (xvda, xvdb, ...)"),
            );
            continue;
        }
        out.push((d, item.span.clone()));
    }
    out.into_iter().map(|(d, _)| d).collect()
}

fn parse_item(cx: &mut Ctx<'_>, n: usize, item: &Value) -> Option<DiskSpec> {
    let text = match &item.kind {
        ValueKind::String(t) => t.as_str(),
        ValueKind::Number(_) | ValueKind::List(_) => {
            cx.push(
                Diagnostic::error(item.span.clone(), format!("disk {n} must be a string"))
                    .with_hint("write each disk as \"target,format,vdev,access\""),
            );
            return None;
        }
    };
    parse_spec(cx, &format!("disk {n}"), text, &item.span, 1)
}

/// One DISKSPEC given on a command line (`rxl block-attach DOM DISKSPEC`): the same rules
/// and diagnostics as a `disk = [..]` item; `base_dir` is the directory a relative image
/// path is resolved against (the working directory, as xl does). Returns the disk and any
/// warnings, or every diagnostic found (at least one an error) in a source called
/// [`COMMAND_LINE_SPEC`].
pub fn disk_arg(
    text: &str,
    base_dir: &Path,
) -> Result<(DiskSpec, Vec<Diagnostic>), Vec<Diagnostic>> {
    super::single_spec(
        text,
        base_dir,
        &super::VifDefaults::default(),
        |cx, span| parse_spec(cx, "disk", text, span, 0),
    )
}

/// Parse one disk spec `text`, written at `span` (`quote` bytes of quoting before the
/// text); `label` begins each message ("disk 2", or "disk" on a command line).
fn parse_spec(
    cx: &mut Ctx<'_>,
    label: &str,
    text: &str,
    span: &Span,
    quote: usize,
) -> Option<DiskSpec> {
    let mut p = DiskParser {
        label,
        text,
        span,
        quote,
        errors: Vec::new(),
        target: None,
        format: None,
        vdev: None,
        access: None,
        access_set: false,
        cdrom: None,
        backend: None,
        backendtype: None,
        specification: None,
        script: None,
        direct_io_safe: false,
        discard: None,
        trusted: None,
        had_prefix: false,
        device_prefix: false,
    };
    p.run();
    let errors = std::mem::take(&mut p.errors);
    if !errors.is_empty() {
        for e in errors {
            cx.push(e);
        }
        return None;
    }
    p.finish(cx)
}

/// Sub-span of a string value: `len` bytes from byte `off` of the decoded text.
fn inner(span: &Span, quote: usize, off: usize, len: usize) -> Span {
    let mut s = span.at_offset(off + quote);
    s.end = (s.start + len).min(span.end.saturating_sub(quote).max(s.start));
    s
}

struct DiskParser<'t> {
    label: &'t str,
    text: &'t str,
    span: &'t Span,
    quote: usize,
    errors: Vec<Diagnostic>,
    target: Option<(&'t str, usize)>,
    format: Option<DiskFormat>,
    vdev: Option<(&'t str, usize)>,
    access: Option<DiskAccess>,
    access_set: bool,
    cdrom: Option<bool>,
    backend: Option<&'t str>,
    backendtype: Option<DiskBackendType>,
    specification: Option<DiskSpecification>,
    script: Option<String>,
    direct_io_safe: bool,
    discard: Option<bool>,
    trusted: Option<bool>,
    had_prefix: bool,
    device_prefix: bool,
}

/// The deprecated prefixes xl strips: (prefix, format it sets, script it sets, device).
const PREFIXES: &[(&str, Option<DiskFormat>, Option<&str>, bool)] = &[
    ("raw", Some(DiskFormat::Raw), None, false),
    ("qcow", Some(DiskFormat::Qcow), None, false),
    ("qcow2", Some(DiskFormat::Qcow2), None, false),
    ("vhd", Some(DiskFormat::Vhd), None, false),
    ("iscsi", None, Some("block-iscsi"), false),
    ("nbd", None, Some("block-nbd"), false),
    ("enbd", None, Some("block-enbd"), false),
    ("drbd", None, Some("block-drbd"), false),
    ("tapdisk", None, None, false),
    ("tap", None, None, false),
    ("tap2", None, None, false),
    ("aio", None, None, false),
    ("ioemu", None, None, false),
    ("file", None, None, false),
    ("phy", None, None, true),
];

const NAMED: &[&str] = &[
    "format",
    "access",
    "backend",
    "backendtype",
    "specification",
    "vdev",
    "script",
    "devtype",
    "target",
];
const FLAGS: &[&str] = &[
    "cdrom",
    "direct-io-safe",
    "discard",
    "no-discard",
    "trusted",
    "untrusted",
];
const COLO: &[&str] = &[
    "colo",
    "no-colo",
    "colo-host",
    "colo-port",
    "colo-export",
    "active-disk",
    "hidden-disk",
];

impl<'t> DiskParser<'t> {
    fn err(&mut self, off: usize, len: usize, msg: impl std::fmt::Display, hint: Option<String>) {
        let mut d = Diagnostic::error(
            inner(self.span, self.quote, off, len),
            format!("{}: {msg}", self.label),
        );
        if let Some(h) = hint {
            d = d.with_hint(h);
        }
        self.errors.push(d);
    }

    fn run(&mut self) {
        let text = self.text;
        let bytes = text.as_bytes();
        let mut pos = 0;
        while pos < bytes.len() {
            while pos < bytes.len() && matches!(bytes[pos], b' ' | b'\t' | b'\n') {
                pos += 1;
            }
            if pos >= bytes.len() {
                break;
            }
            let rest = &text[pos..];
            if let Some(t) = rest.strip_prefix("target=") {
                let t = t.strip_suffix(',').unwrap_or(t);
                self.set_target(t, pos + "target=".len());
                return;
            }
            if let Some(len) = self.prefix(rest, pos) {
                pos += len;
                continue;
            }
            let end = rest.find(',').map_or(bytes.len(), |e| pos + e);
            let token = &text[pos..end];
            self.token(token, pos);
            if !self.errors.is_empty() && self.errors.len() > 3 {
                return;
            }
            pos = end + 1;
        }
    }

    /// A deprecated `word:` prefix at the start of `rest`: its length including the colon.
    fn prefix(&mut self, rest: &str, pos: usize) -> Option<usize> {
        let colon = rest.find(':')?;
        let word = &rest[..colon];
        let mut chars = word.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        if !first_ok || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
            return None;
        }
        if let Some((_, format, script, device)) = PREFIXES.iter().find(|p| p.0 == word) {
            self.had_prefix = true;
            if let Some(f) = format {
                self.set_format(*f, pos, word.len());
            }
            if let Some(s) = script {
                if self.script.is_some() {
                    self.err(pos, word.len(), "script respecified", None);
                }
                self.script = Some((*s).to_string());
            }
            if *device {
                self.device_prefix = true;
            }
            return Some(colon + 1);
        }
        // xl treats `word:` followed by something other than a letter or digit as an
        // unknown prefix; `hdc:cdrom` is a vdev with a device type.
        let next = rest[colon + 1..].chars().next();
        if next.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
            return None;
        }
        self.err(
            pos,
            word.len() + 1,
            format!("unknown deprecated disk prefix `{word}:`"),
            Some("known prefixes: raw: qcow: qcow2: vhd: phy: file: tap: tap2: aio: ioemu: tapdisk: iscsi: nbd: enbd: drbd:; or write target=... last".to_string()),
        );
        Some(rest.len())
    }

    fn token(&mut self, token: &'t str, pos: usize) {
        if let Some(eq) = token.find('=') {
            let key = &token[..eq];
            let value = &token[eq + 1..];
            let voff = pos + eq + 1;
            match key {
                "format" => match DiskFormat::from_name(value) {
                    Some(f) => self.set_format(f, voff, value.len()),
                    None => self.bad_format(value, voff),
                },
                "access" => self.set_access(value, voff),
                "backend" => {
                    if self.backend.is_some_and(|b| !b.is_empty()) {
                        self.err(pos, token.len(), "backend respecified", None);
                    }
                    self.backend = Some(value);
                }
                "backendtype" => {
                    let b = match value {
                        "phy" => DiskBackendType::Phy,
                        "tap" => DiskBackendType::Tap,
                        "qdisk" => DiskBackendType::Qdisk,
                        "standalone" => DiskBackendType::Standalone,
                        _ => {
                            return self.err(
                                voff,
                                value.len(),
                                format!("unknown backendtype \"{value}\""),
                                Some("use phy, tap, qdisk or standalone".into()),
                            )
                        }
                    };
                    if self.backendtype.is_some_and(|o| o != b) {
                        self.err(pos, token.len(), "backendtype respecified", None);
                    }
                    self.backendtype = Some(b);
                }
                "specification" => {
                    let sp = match value {
                        "xen" => DiskSpecification::Xen,
                        "virtio" => DiskSpecification::Virtio,
                        _ => {
                            return self.err(
                                voff,
                                value.len(),
                                format!("unknown specification \"{value}\""),
                                Some("use xen or virtio".into()),
                            )
                        }
                    };
                    if self.specification.is_some_and(|o| o != sp) {
                        self.err(pos, token.len(), "specification respecified", None);
                    }
                    self.specification = Some(sp);
                }
                "vdev" => self.set_vdev(value, voff),
                "script" => {
                    if self.script.as_deref().is_some_and(|s| !s.is_empty()) {
                        self.err(pos, token.len(), "script respecified", None);
                    }
                    self.script = Some(value.to_string());
                }
                "devtype" => match value {
                    "cdrom" => self.cdrom = Some(true),
                    "disk" => self.cdrom = Some(false),
                    _ => self.err(
                        voff,
                        value.len(),
                        format!("unknown devtype \"{value}\""),
                        Some("use cdrom or disk".into()),
                    ),
                },
                _ if COLO.contains(&key) => self.err(
                    pos,
                    token.len(),
                    format!("`{key}` (COLO) is not supported by rxl"),
                    None,
                ),
                _ => {
                    let hint = keys::suggest(key, NAMED.iter().chain(FLAGS).copied())
                        .map(|k| format!("did you mean `{k}`?"))
                        .or_else(|| {
                            Some(
                                "to use a target containing '=' or ',', write target=... last"
                                    .into(),
                            )
                        });
                    self.err(pos, key.len(), format!("unknown parameter `{key}`"), hint)
                }
            }
            return;
        }
        match token {
            "cdrom" => self.cdrom = Some(true),
            "direct-io-safe" => self.direct_io_safe = true,
            "discard" => self.discard = Some(true),
            "no-discard" => self.discard = Some(false),
            "trusted" => self.trusted = Some(true),
            "untrusted" => self.trusted = Some(false),
            "colo" | "no-colo" => self.err(
                pos,
                token.len(),
                format!("`{token}` (COLO) is not supported by rxl"),
                None,
            ),
            _ => self.positional(token, pos),
        }
    }

    fn positional(&mut self, token: &'t str, pos: usize) {
        // After an error the positions are uncertain; further positional errors would
        // only be consequences of the first (xl stops reporting them too).
        if !self.errors.is_empty() {
            return;
        }
        if self.target.is_none() {
            self.target = Some((token, pos));
        } else if !self.had_prefix && self.format.is_none() {
            let target_empty = self.target.is_some_and(|(t, _)| t.is_empty());
            if target_empty && token.contains(':') {
                self.vdev_and_devtype(token, pos);
                self.format = Some(DiskFormat::Empty);
            } else {
                match DiskFormat::from_name(token) {
                    Some(f) => self.set_format(f, pos, token.len()),
                    None => self.bad_format(token, pos),
                }
            }
        } else if self.vdev.is_none() {
            if token.contains(':') {
                self.vdev_and_devtype(token, pos);
            } else {
                self.set_vdev(token, pos);
            }
        } else if !self.access_set {
            self.access_set = true;
            self.set_access(token, pos);
        } else {
            self.err(
                pos,
                token.len(),
                "too many positional parameters",
                Some("positional parameters are target, format, vdev, access".into()),
            );
        }
    }

    /// The deprecated `vdev:devtype` form.
    fn vdev_and_devtype(&mut self, token: &'t str, pos: usize) {
        let Some(colon) = token.rfind(':') else {
            return self.set_vdev(token, pos);
        };
        let (vdev, ty) = (&token[..colon], &token[colon + 1..]);
        self.set_vdev(vdev, pos);
        match ty {
            "cdrom" => self.cdrom = Some(true),
            "disk" => self.cdrom = Some(false),
            _ => self.err(
                pos + colon + 1,
                ty.len(),
                format!("unknown device type \"{ty}\""),
                Some("use cdrom or disk (better: devtype=cdrom)".into()),
            ),
        }
    }

    fn set_target(&mut self, t: &'t str, off: usize) {
        if self.target.is_some_and(|(old, _)| !old.is_empty()) {
            return self.err(off, t.len(), "target respecified", None);
        }
        self.target = Some((t, off));
    }

    fn set_format(&mut self, f: DiskFormat, off: usize, len: usize) {
        if self.format.is_some_and(|o| o != f) {
            return self.err(off, len, "format respecified", None);
        }
        self.format = Some(f);
    }

    fn bad_format(&mut self, value: &str, off: usize) {
        self.err(
            off,
            value.len(),
            format!("unknown format \"{value}\""),
            Some("use raw, qcow, qcow2, vhd, qed or empty".into()),
        );
    }

    fn set_vdev(&mut self, v: &'t str, off: usize) {
        if self.vdev.is_some_and(|(old, _)| !old.is_empty()) {
            return self.err(off, v.len(), "vdev respecified", None);
        }
        self.vdev = Some((v, off));
    }

    fn set_access(&mut self, v: &str, off: usize) {
        let a = match v {
            "r" | "ro" => DiskAccess::Ro,
            // An empty value means the default, which depends on the device type.
            "" => return,
            "w" | "rw" => DiskAccess::Rw,
            _ => {
                return self.err(
                    off,
                    v.len(),
                    format!("unknown access \"{v}\""),
                    Some("use ro or rw".into()),
                )
            }
        };
        self.access = Some(a);
    }

    fn finish(self, cx: &mut Ctx<'_>) -> Option<DiskSpec> {
        let n = self.label;
        let whole = || self.span.clone();
        let Some((vdev, voff)) = self.vdev.filter(|(v, _)| !v.is_empty()) else {
            cx.push(
                Diagnostic::error(whole(), format!("{n} has no vdev"))
                    .with_hint("add the guest device name, e.g. \"image.img,raw,xvda,rw\""),
            );
            return None;
        };
        if !valid_vdev(vdev) {
            cx.push(
                Diagnostic::error(
                    inner(self.span, self.quote, voff, vdev.len()),
                    format!("{n}: invalid vdev \"{vdev}\""),
                )
                .with_hint("use xvda, xvdb, ... (or hdX, sdX, dNpM; see xen-vbd-interface(7))"),
            );
            return None;
        }
        let devtype = if self.cdrom == Some(true) {
            DiskType::Cdrom
        } else {
            DiskType::Disk
        };
        let access = self.access.unwrap_or(match devtype {
            DiskType::Cdrom => DiskAccess::Ro,
            DiskType::Disk => DiskAccess::Rw,
        });
        let mut format = self.format.unwrap_or(DiskFormat::Raw);
        let target_text = self.target.filter(|(t, _)| !t.is_empty());
        let (target, target_kind) = match target_text {
            None => {
                if devtype != DiskType::Cdrom {
                    cx.push(
                        Diagnostic::error(whole(), format!("{n} has no target"))
                            .with_hint("name the image or device first: \"/path/image.img,raw,xvda,rw\"; only a cdrom may be empty"),
                    );
                    return None;
                }
                format = DiskFormat::Empty;
                (None, DiskTargetKind::Empty)
            }
            Some((t, toff)) => {
                let at = inner(self.span, self.quote, toff, t.len());
                if self.script.is_some() {
                    (
                        Some(Located::at(PathBuf::from(t), &at)),
                        DiskTargetKind::Script,
                    )
                } else if self.device_prefix
                    || self.backendtype == Some(DiskBackendType::Phy)
                    || t.starts_with("/dev/")
                {
                    let p = if t.starts_with('/') {
                        path::normalise(std::path::Path::new(t))
                    } else {
                        path::normalise(&std::path::Path::new("/dev").join(t))
                    };
                    (Some(Located::at(p, &at)), DiskTargetKind::Device)
                } else {
                    let p = cx.resolve(self.span, t);
                    (Some(Located::at(p, &at)), DiskTargetKind::File)
                }
            }
        };
        Some(DiskSpec {
            target,
            target_kind,
            format,
            vdev: vdev.to_string(),
            access,
            devtype,
            backend: self.backend.filter(|b| !b.is_empty()).map(str::to_string),
            backendtype: self.backendtype,
            specification: self.specification,
            script: self.script.filter(|s| !s.is_empty()),
            direct_io_safe: self.direct_io_safe,
            discard: self.discard,
            trusted: self.trusted,
        })
    }
}

/// Whether `v` is a virtual device name of xen-vbd-interface(7): `xvd<letters>[<part>]`,
/// `hd<a-t>[<part>]`, `sd<letters>[<part>]` or `d<disk>[p<part>]`.
pub(crate) fn valid_vdev(v: &str) -> bool {
    fn letters_then_digits(s: &str, max_letters: usize) -> bool {
        let letters = s.bytes().take_while(u8::is_ascii_lowercase).count();
        let digits = &s[letters..];
        (1..=max_letters).contains(&letters)
            && digits.bytes().all(|b| b.is_ascii_digit())
            && digits.len() <= 2
            && !digits.starts_with('0')
    }
    if let Some(rest) = v.strip_prefix("xvd") {
        letters_then_digits(rest, 3)
    } else if let Some(rest) = v.strip_prefix("hd") {
        rest.as_bytes()
            .first()
            .is_some_and(|c| (b'a'..=b't').contains(c))
            && letters_then_digits(rest, 1)
    } else if let Some(rest) = v.strip_prefix("sd") {
        letters_then_digits(rest, 3)
    } else if let Some(rest) = v.strip_prefix('d') {
        let (disk, part) = match rest.split_once('p') {
            Some((d, p)) => (d, Some(p)),
            None => (rest, None),
        };
        let num = |s: &str| !s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit());
        num(disk) && part.is_none_or(num)
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::valid_vdev;

    #[test]
    fn vdev_names() {
        for ok in [
            "xvda", "xvdb1", "xvdaa", "hda", "hdt2", "sda", "sdb15", "d0", "d1p2",
        ] {
            assert!(valid_vdev(ok), "{ok}");
        }
        for bad in [
            "", "xvd", "xvdA", "hdu", "eth0", "xvda0", "xvda100", "d", "dp1", "d1p", "vda",
        ] {
            assert!(!valid_vdev(bad), "{bad}");
        }
    }
}
