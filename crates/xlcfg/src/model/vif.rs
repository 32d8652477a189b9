//! `vif = [ ... ]`: xl-network-configuration(5) network interface specs.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{defaults, keys, Ctx};
use crate::settings::{Diagnostic, Span, Value, ValueKind};

/// An Ethernet MAC address; serialised as `00:16:3e:xx:xx:xx`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// A random address under Xen's OUI 00:16:3e, as libxl makes one (the top bit of the
    /// fourth octet clear).
    pub fn random_xen() -> MacAddr {
        let r = uuid::Uuid::new_v4().into_bytes();
        let [a, b, c] = defaults::MAC_PREFIX;
        MacAddr([a, b, c, r[0] & 0x7f, r[1], r[2]])
    }

    /// Parse `xx:xx:xx:xx:xx:xx` (hex, one or two digits per octet; `-` also separates).
    pub fn parse(s: &str) -> Option<MacAddr> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for o in &mut out {
            let p = parts.next()?;
            if p.is_empty() || p.len() > 2 {
                return None;
            }
            *o = u8::from_str_radix(p, 16).ok()?;
        }
        parts.next().is_none().then_some(MacAddr(out))
    }

    /// Whether the group bit is set (not a valid interface address).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        MacAddr::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid MAC address \"{s}\"")))
    }
}

/// `type=` of a vif.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NicType {
    /// A PV interface only.
    Vif,
    /// A PV interface plus an emulated one (HVM).
    Ioemu,
}

/// The emulated NIC models `model=` may name: the PCI network cards QEMU's i386 target
/// (qemu-xen, `-machine xenfv`) offers as `-device` names. libxl passes the name on
/// unchecked and QEMU refuses an unknown one when the guest starts; rxl refuses it in the
/// config instead.
pub const NIC_MODELS: &[&str] = &[
    "e1000",
    "e1000-82544gc",
    "e1000-82545em",
    "e1000e",
    "i82550",
    "i82551",
    "i82557a",
    "i82557b",
    "i82557c",
    "i82558a",
    "i82558b",
    "i82559a",
    "i82559b",
    "i82559c",
    "i82559er",
    "i82562",
    "i82801",
    "ne2k_pci",
    "pcnet",
    "rtl8139",
    "tulip",
    "virtio-net-pci",
    "vmxnet3",
];

/// A vif's bandwidth limit (`rate=`): `bytes_per_sec` credit, replenished every
/// `interval_usecs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VifRate {
    /// Bytes per second.
    pub bytes_per_sec: u64,
    /// Replenishment interval, microseconds (default 50000).
    pub interval_usecs: u32,
}

impl VifRate {
    /// The credit per interval, as the backend takes it.
    pub fn bytes_per_interval(&self) -> u64 {
        let v = u128::from(self.bytes_per_sec) * u128::from(self.interval_usecs) / 1_000_000;
        u64::try_from(v).unwrap_or(u64::MAX)
    }
}

/// One `vif` entry, with xl's defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VifSpec {
    /// The device id (default: the entry's index).
    pub devid: u32,
    /// Whether `devid=` was written (a hot-plugged vif without it takes the next free one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub devid_given: bool,
    /// The MAC address: given, or random under 00:16:3e.
    pub mac: MacAddr,
    /// Whether `mac` was generated (no `mac=` in the config).
    pub mac_generated: bool,
    /// The bridge (default xenbr0).
    pub bridge: String,
    /// The hotplug script (default vif-bridge).
    pub script: String,
    /// `gatewaydev=` (or the deprecated `netdev=`).
    pub gatewaydev: Option<String>,
    /// `type=`.
    #[serde(rename = "type")]
    pub nic_type: Option<NicType>,
    /// `model=` (emulated NIC model, HVM).
    pub model: Option<String>,
    /// `vifname=`: the backend interface name.
    pub vifname: Option<String>,
    /// `ip=`.
    pub ip: Option<String>,
    /// `backend=`: the backend domain's name; `None` is dom0.
    pub backend: Option<String>,
    /// `rate=`.
    pub rate: Option<VifRate>,
    /// `mtu=`.
    pub mtu: Option<u32>,
    /// `trusted` / `untrusted`.
    pub trusted: Option<bool>,
}

const VIF_KEYS: &[&str] = &[
    "mac",
    "bridge",
    "gatewaydev",
    "netdev",
    "type",
    "model",
    "vifname",
    "script",
    "ip",
    "backend",
    "rate",
    "devid",
    "mtu",
    "accel",
    "trusted",
    "untrusted",
];

/// Every entry of `vif`.
pub(super) fn build_all(cx: &mut Ctx<'_>) -> Vec<VifSpec> {
    let Some(s) = cx.setting("vif") else {
        return Vec::new();
    };
    let Some(items) = s.value.as_list() else {
        cx.push(
            Diagnostic::error(s.value.span.clone(), "`vif` must be a list of vif specs")
                .with_hint("write vif = [ \"bridge=xenbr0\" ]"),
        );
        return Vec::new();
    };
    let mut out: Vec<(VifSpec, Span)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(v) = parse_item(cx, i, item) else {
            continue;
        };
        let dup = out
            .iter()
            .find(|(o, _)| o.devid == v.devid)
            .map(|(_, sp)| (sp.clone(), "devid", v.devid.to_string()))
            .or_else(|| {
                out.iter()
                    .find(|(o, _)| o.mac == v.mac)
                    .map(|(_, sp)| (sp.clone(), "MAC", v.mac.to_string()))
            });
        if let Some((first, what, val)) = dup {
            cx.push(
                Diagnostic::error(
                    item.span.clone(),
                    format!("vif {}: {what} {val} is already used", i + 1),
                )
                .with_note(first, "by this vif"),
            );
            continue;
        }
        out.push((v, item.span.clone()));
    }
    out.into_iter().map(|(v, _)| v).collect()
}

fn parse_item(cx: &mut Ctx<'_>, index: usize, item: &Value) -> Option<VifSpec> {
    let n = index + 1;
    let text = match &item.kind {
        ValueKind::String(t) => t.as_str(),
        ValueKind::Number(_) | ValueKind::List(_) => {
            cx.push(
                Diagnostic::error(item.span.clone(), format!("vif {n} must be a string"))
                    .with_hint("write each vif as \"key=value,key=value\""),
            );
            return None;
        }
    };
    let devid = u32::try_from(index).unwrap_or(u32::MAX);
    parse_spec(cx, &format!("vif {n}"), devid, text, &item.span, 1)
}

/// The host's defaults for what a vif spec does not say: xl.conf's `vif.default.*`
/// (crate::hostconf), or xl's built-in ones ([`VifDefaults::default`]). xl applies them
/// before it reads the spec, so anything the spec gives wins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VifDefaults {
    /// The bridge (`vif.default.bridge`; built in: xenbr0).
    pub bridge: String,
    /// The hotplug script (`vif.default.script`; built in: vif-bridge).
    pub script: String,
    /// The backend domain's name (`vif.default.backend`; built in: none, dom0).
    pub backend: Option<String>,
    /// The gateway device for vif-route (`vif.default.gatewaydev`; built in: none).
    pub gatewaydev: Option<String>,
}

impl Default for VifDefaults {
    fn default() -> VifDefaults {
        VifDefaults {
            bridge: defaults::BRIDGE.to_string(),
            script: defaults::VIF_SCRIPT.to_string(),
            backend: None,
            gatewaydev: None,
        }
    }
}

/// One VIFSPEC given on a command line (`rxl network-attach DOM VIFSPEC`), with xl's
/// built-in defaults: see [`vif_arg_with`].
pub fn vif_arg(text: &str) -> Result<(VifSpec, Vec<Diagnostic>), Vec<Diagnostic>> {
    vif_arg_with(text, &VifDefaults::default())
}

/// One VIFSPEC given on a command line, with the same rules and diagnostics as a
/// `vif = [..]` item, the host's `defaults` filling what it does not say. Its devid is 0
/// unless it gives `devid=` (the caller picks a free one otherwise). Returns the vif and
/// any warnings, or every diagnostic found (at least one an error) in a source called
/// [`super::COMMAND_LINE_SPEC`].
pub fn vif_arg_with(
    text: &str,
    defaults: &VifDefaults,
) -> Result<(VifSpec, Vec<Diagnostic>), Vec<Diagnostic>> {
    let here = Path::new("/");
    super::single_spec(text, here, defaults, |cx, span| {
        parse_spec(cx, "vif", 0, text, span, 0)
    })
}

/// Parse one vif spec `text`, written at `span` (`quote` bytes of quoting before the
/// text); `label` begins each message ("vif 2", or "vif" on a command line), `devid` is
/// the devid unless the spec gives one.
fn parse_spec(
    cx: &mut Ctx<'_>,
    label: &str,
    devid: u32,
    text: &str,
    span: &Span,
    quote: usize,
) -> Option<VifSpec> {
    let at = |off: usize, len: usize| {
        let mut s = span.at_offset(off + quote);
        s.end = (s.start + len).min(span.end.saturating_sub(quote).max(s.start));
        s
    };
    let mut errors = Vec::new();
    let mut err = |off: usize, len: usize, msg: String, hint: Option<String>| {
        let mut d = Diagnostic::error(at(off, len), format!("{label}: {msg}"));
        if let Some(h) = hint {
            d = d.with_hint(h);
        }
        errors.push(d);
    };
    let mut warnings = Vec::new();
    let host = cx.vif_defaults;
    let mut v = VifSpec {
        devid,
        devid_given: false,
        mac: MacAddr([0; 6]),
        mac_generated: true,
        bridge: host.bridge.clone(),
        script: host.script.clone(),
        gatewaydev: host.gatewaydev.clone(),
        nic_type: None,
        model: None,
        vifname: None,
        ip: None,
        backend: host.backend.clone(),
        rate: None,
        mtu: None,
        trusted: None,
    };
    let mut pos = 0usize;
    for raw in text.split(',') {
        let start = pos;
        pos += raw.len() + 1;
        // xl skips leading spaces; rxl also drops trailing ones.
        let lead = raw.len() - raw.trim_start_matches([' ', '\t']).len();
        let token = raw.trim_matches([' ', '\t']);
        let off = start + lead;
        if token.is_empty() {
            continue;
        }
        let Some((key, value)) = token.split_once('=') else {
            match token {
                "trusted" => v.trusted = Some(true),
                "untrusted" => v.trusted = Some(false),
                _ => err(
                    off,
                    token.len(),
                    format!("unrecognised argument `{token}`"),
                    Some("vif parameters are key=value".into()),
                ),
            }
            continue;
        };
        let voff = off + key.len() + 1;
        let some = || Some(value.to_string()).filter(|s| !s.is_empty());
        match key {
            "mac" => match MacAddr::parse(value) {
                Some(m) if m.is_multicast() => err(
                    voff,
                    value.len(),
                    format!("MAC {value} is a multicast address"),
                    Some("clear the lowest bit of the first octet, e.g. 00:16:3e:...".into()),
                ),
                Some(m) => {
                    v.mac = m;
                    v.mac_generated = false;
                }
                None => err(
                    voff,
                    value.len(),
                    format!("invalid MAC address \"{value}\""),
                    Some("write six hex octets: 00:16:3e:12:34:56".into()),
                ),
            },
            "bridge" => v.bridge = value.to_string(),
            "script" => v.script = value.to_string(),
            "gatewaydev" => v.gatewaydev = some(),
            "netdev" => {
                warnings.push(
                    Diagnostic::warning(
                        at(off, key.len()),
                        format!("{label}: `netdev` is deprecated"),
                    )
                    .with_hint("use gatewaydev="),
                );
                v.gatewaydev = some();
            }
            "type" => match value {
                "vif" => v.nic_type = Some(NicType::Vif),
                "ioemu" => v.nic_type = Some(NicType::Ioemu),
                _ => err(
                    voff,
                    value.len(),
                    format!("invalid type \"{value}\""),
                    Some("use vif or ioemu".into()),
                ),
            },
            "model" if NIC_MODELS.contains(&value) => v.model = some(),
            "model" => {
                let hint = keys::suggest(value, NIC_MODELS.iter().copied())
                    .map(|m| format!("did you mean `{m}`?"))
                    .unwrap_or_else(|| format!("known models: {}", NIC_MODELS.join(" ")));
                err(
                    voff,
                    value.len(),
                    format!("unknown emulated NIC model \"{value}\""),
                    Some(hint),
                );
            }
            "vifname" => v.vifname = some(),
            "ip" => v.ip = some(),
            "backend" => v.backend = some(),
            "rate" => match parse_rate(value) {
                Ok(r) => v.rate = Some(r),
                Err(m) => err(
                    voff,
                    value.len(),
                    m,
                    Some("write e.g. rate=10MB/s or rate=1Gb/s@20ms".into()),
                ),
            },
            "devid" => match value.parse::<u32>() {
                Ok(d) => {
                    v.devid = d;
                    v.devid_given = true;
                }
                Err(_) => err(
                    voff,
                    value.len(),
                    format!("invalid devid \"{value}\""),
                    Some("a decimal number".into()),
                ),
            },
            "mtu" => match value.parse::<u32>() {
                Ok(m) if (68..=65535).contains(&m) => v.mtu = Some(m),
                _ => err(
                    voff,
                    value.len(),
                    format!("invalid mtu \"{value}\""),
                    Some("a decimal number from 68 to 65535".into()),
                ),
            },
            "accel" => warnings.push(Diagnostic::warning(
                at(off, key.len()),
                format!("{label}: `accel` is not supported and is ignored (as in xl)"),
            )),
            _ if key.starts_with("colo_") || key == "forwarddev" => err(
                off,
                key.len(),
                format!("`{key}` (COLO) is not supported by rxl"),
                None,
            ),
            _ => {
                let hint = keys::suggest(key, VIF_KEYS.iter().copied())
                    .map(|k| format!("did you mean `{k}`?"))
                    .or_else(|| Some(format!("known keys: {}", VIF_KEYS.join(" "))));
                err(off, key.len(), format!("unknown parameter `{key}`"), hint)
            }
        }
    }
    for w in warnings {
        cx.push(w);
    }
    if !errors.is_empty() {
        for e in errors {
            cx.push(e);
        }
        return None;
    }
    if v.mac_generated {
        v.mac = MacAddr::random_xen();
    }
    Some(v)
}

/// `RATE[@INTERVAL]` as libxlutil reads it: RATE is `<digits>[GMK]?[Bb]/s` (B bytes, b
/// bits, decimal multiples), INTERVAL `<digits>[mu]?s?` (default unit seconds, default
/// interval 50 ms).
fn parse_rate(text: &str) -> Result<VifRate, String> {
    let (rate, interval) = match text.split_once('@') {
        Some((r, i)) => (r, Some(i)),
        None => (text, None),
    };
    if rate.is_empty() {
        return Err("no rate given".into());
    }
    let digits = rate.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = rate.split_at(digits);
    let (mult, unit) = match unit.as_bytes().first() {
        Some(b'G') => (1_000_000_000u64, &unit[1..]),
        Some(b'M') => (1_000_000, &unit[1..]),
        Some(b'K') => (1_000, &unit[1..]),
        _ => (1, unit),
    };
    let bits = match unit {
        "B/s" => false,
        "b/s" => true,
        _ => return Err(format!("invalid rate \"{rate}\"")),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid rate \"{rate}\""))?;
    if n == 0 || n > u64::from(u32::MAX) {
        return Err(format!("rate \"{rate}\" is out of range"));
    }
    let mut bytes = n
        .checked_mul(mult)
        .ok_or_else(|| format!("rate \"{rate}\" overflows"))?;
    if bits {
        bytes /= 8;
    }
    let interval_usecs = match interval {
        None => 50_000,
        Some(i) => {
            let digits = i.bytes().take_while(u8::is_ascii_digit).count();
            let (num, unit) = i.split_at(digits);
            let mult: u64 = match unit {
                "" | "s" => 1_000_000,
                "m" | "ms" => 1_000,
                "u" | "us" => 1,
                _ => return Err(format!("invalid replenishment interval \"{i}\"")),
            };
            let n: u64 = num
                .parse()
                .map_err(|_| format!("invalid replenishment interval \"{i}\""))?;
            let us = n
                .checked_mul(mult)
                .filter(|&u| n != 0 && u <= u64::from(u32::MAX));
            match us.and_then(|u| u32::try_from(u).ok()) {
                Some(u) => u,
                None => return Err(format!("replenishment interval \"{i}\" is out of range")),
            }
        }
    };
    Ok(VifRate {
        bytes_per_sec: bytes,
        interval_usecs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parsing() {
        assert_eq!(
            MacAddr::parse("00:16:3e:0a:bb:Cc"),
            Some(MacAddr([0, 0x16, 0x3e, 0x0a, 0xbb, 0xcc]))
        );
        assert_eq!(MacAddr::parse("0:16:3e:a:b:c").map(|m| m.0[3]), Some(0xa));
        for bad in [
            "",
            "00:16:3e:0a:bb",
            "00:16:3e:0a:bb:cc:dd",
            "00:16:3e:0a:bb:ccc",
            "zz:16:3e:0a:bb:cc",
        ] {
            assert_eq!(MacAddr::parse(bad), None, "{bad}");
        }
        assert_eq!(
            MacAddr([0, 0x16, 0x3e, 1, 2, 3]).to_string(),
            "00:16:3e:01:02:03"
        );
        let r = MacAddr::random_xen();
        assert_eq!(&r.0[..3], &[0x00, 0x16, 0x3e]);
        assert!(r.0[3] < 0x80);
    }

    #[test]
    fn rates() {
        let r = parse_rate("10MB/s").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.bytes_per_sec, r.interval_usecs), (10_000_000, 50_000));
        assert_eq!(r.bytes_per_interval(), 500_000);
        let r = parse_rate("1Gb/s@20ms").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.bytes_per_sec, r.interval_usecs), (125_000_000, 20_000));
        let r = parse_rate("100KB/s@2").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.interval_usecs, 2_000_000);
        for bad in [
            "",
            "10",
            "10MB",
            "0B/s",
            "10XB/s",
            "1MB/s@",
            "1MB/s@5h",
            "1MB/s@9999s",
            "@1s",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
