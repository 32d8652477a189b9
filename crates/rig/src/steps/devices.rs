//! Step `devices`: a Linux guest with two disks (an ext4 image file through the block
//! script's loop device, and `phy:` on a loop device dom0 set up) and a network interface
//! (netback, a vif on dom0's bridge xenbr0), created by each selected [`Tool`] in turn:
//! xl, rxl with Xen's hotplug scripts, rxl with its native hotplug path. The guests share
//! their disks: each reads the file written in dom0 and the token the previous tool's guest
//! wrote, and writes its own. dom0 and the guest ping each other's IPv6 link-local address;
//! disks and interfaces are hot-plugged and unplugged; rxl's block-list and network-list
//! must print what xl's print for the same guest; each guest is destroyed by the other tool
//! and nothing of it may be left; creates naming a missing bridge or image fail. Then
//! create and destroy of a guest with one disk and one vif are timed for every tool.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::checks::{field, number};
use crate::markers::Capture;
use crate::profile;
use crate::scenario::{script_cap, CaptureSpec, LinuxFiles, Outcome, Step, StepFile};
use crate::steps::linux::{LINUX_DIR, LINUX_INIT_LINE, TIMED_LINUX_VCPUS};
use crate::steps::side_by_side::{median, replace_section, secs, today, why_runs_failed};

/// A tool the step runs (a command and, for rxl, its hotplug path), and the names of its
/// captures (capture names are static).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    /// The name in `RXL_E2E_DEVICE_TOOLS`, guest names and capture names (`rxl-native`).
    pub label: &'static str,
    /// The command (`xl` or `rxl`).
    pub cmd: &'static str,
    /// rxl's hotplug path: `scripts` (no /etc/rxl/rxl.conf) or `native` (the file says so).
    pub hotplug: &'static str,
    /// How reports and the benchmark table name it.
    pub title: &'static str,
    /// Last byte of the guest's MAC (each tool's guest has its own).
    pub mac_byte: u8,
    /// Capture: create, disks, network, pings, the lists.
    pub boot: &'static str,
    /// Capture: block-attach/-detach and network-attach/-detach.
    pub plug: &'static str,
    /// Capture: the other tool destroys the guest; leftovers; the tokens in dom0.
    pub destroy: &'static str,
    /// Capture: creates that must fail (missing bridge, missing image).
    pub refused: &'static str,
}

/// Every tool the step knows, in the order they take turns (the guests share their disks,
/// so each reads what the one before wrote).
pub const ALL_TOOLS: [Tool; 3] = [
    Tool {
        label: "xl",
        cmd: "xl",
        hotplug: "scripts",
        title: "xl",
        mac_byte: 0x01,
        boot: "xl-boot",
        plug: "xl-hotplug",
        destroy: "xl-destroy",
        refused: "xl-refused",
    },
    Tool {
        label: "rxl",
        cmd: "rxl",
        hotplug: "scripts",
        title: "rxl (scripts)",
        mac_byte: 0x02,
        boot: "rxl-boot",
        plug: "rxl-hotplug",
        destroy: "rxl-destroy",
        refused: "rxl-refused",
    },
    Tool {
        label: "rxl-native",
        cmd: "rxl",
        hotplug: "native",
        title: "rxl (native)",
        mac_byte: 0x03,
        boot: "rxl-native-boot",
        plug: "rxl-native-hotplug",
        destroy: "rxl-native-destroy",
        refused: "rxl-native-refused",
    },
];

/// The environment variable that chooses the tools (comma-separated labels).
pub const TOOLS_ENV: &str = "RXL_E2E_DEVICE_TOOLS";
/// The tools run when [`TOOLS_ENV`] is not set: all of them. `RXL_E2E_DEVICE_TOOLS=xl`
/// proves xl alone (the step as it was before rxl had devices).
pub const DEFAULT_TOOLS: &str = "xl,rxl,rxl-native";

/// The tools named in `spec` (comma-separated labels of [`ALL_TOOLS`]), in the order of
/// [`ALL_TOOLS`]; an unknown or missing name is an error naming the known ones.
pub fn select_tools(spec: &str) -> Result<Vec<Tool>, String> {
    crate::scenario::select_labels(spec, &ALL_TOOLS, |t| t.label)
}

/// Where the disk images go in dom0 (tmpfs).
const DEV_DIR: &str = "/tmp/devices";
/// The configs' directory in dom0.
const CFG_DIR: &str = "/e2e/devices";
/// The text of the file the guest must read from its disks.
const DISK_TEXT: &str = "rxl-devices-disk-file-42";
/// Seconds a boot may take to reach /init.
const BOOT_S: u32 = 120;
/// In the configs, replaced in dom0 by the loop device of the phy: disk.
const PHY_MARK: &str = "@PHY@";
/// The disks of the guests: (vdev, Linux's device number for it as the lists show it).
const DISKS: [(&str, &str); 2] = [("xvda", "51712"), ("xvdc", "51744")];
/// The hot-plugged disk's row in the lists.
const XVDB: &str = "51728";
/// Good timed runs of each tool in the benchmark, and attempts beyond them for runs that
/// fail (the emulation's rare faults).
const BENCH_RUNS: u32 = 5;
const BENCH_SPARE: u32 = 3;
/// The longest one timed create or destroy may take.
const BENCH_CMD_S: u32 = 90;
/// Seconds between timed runs (not timed).
const BENCH_SETTLE_S: u32 = 1;
/// The heading of the benchmark's section of docs/benchmarks.md.
pub const BENCH_HEADING: &str = "## Real Xen: devices, rxl and xl side by side";

impl Tool {
    fn name(&self) -> String {
        format!("dev-{}", self.label)
    }
    fn mac(&self) -> String {
        format!("00:16:3e:5a:00:{:02x}", self.mac_byte)
    }
    fn extra_mac(&self) -> String {
        format!("00:16:3e:5a:01:{:02x}", self.mac_byte)
    }
    fn bench_mac(&self) -> String {
        format!("00:16:3e:5a:02:{:02x}", self.mac_byte)
    }
    fn token(&self) -> String {
        format!("token-{}-7", self.label)
    }
    fn cfg(&self, which: &str) -> String {
        format!("{CFG_DIR}/{which}-{}.cfg", self.label)
    }
    fn is_xl(&self) -> bool {
        self.cmd == "xl"
    }
}

/// Who destroys `t`'s guest: the other tool (xl destroys rxl's guests, rxl with scripts
/// destroys xl's), or `t` itself when it runs alone.
fn destroyer(t: &Tool, tools: &[Tool]) -> &'static str {
    if t.is_xl() {
        tools.iter().find(|o| !o.is_xl()).map_or("xl", |o| o.cmd)
    } else {
        "xl"
    }
}

/// The tools whose lists are printed for each guest: xl, and rxl when it runs.
fn listers(tools: &[Tool]) -> Vec<&'static str> {
    let mut v = vec!["xl"];
    if tools.iter().any(|t| !t.is_xl()) {
        v.push("rxl");
    }
    v
}

/// A Linux guest config with the given disks (xl disk specs) and one vif.
pub(crate) fn devices_cfg(name: &str, disks: &[String], bridge: &str, mac: &str) -> String {
    let disks: Vec<String> = disks.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        "# Debian's kernel as a PVH guest with disks and a network interface.\n\
         name = \"{name}\"\ntype = \"pvh\"\nmemory = 256\nvcpus = {TIMED_LINUX_VCPUS}\n\
         kernel = \"{LINUX_DIR}/vmlinuz\"\nramdisk = \"{LINUX_DIR}/initrd.img\"\n\
         cmdline = \"console=hvc0 rdinit=/init rxl_devices\"\n\
         on_reboot = \"destroy\"\n\
         disk = [ {} ]\n\
         vif = [ \"bridge={bridge},mac={mac}\" ]\n",
        disks.join(", ")
    )
}

/// The image-file disk spec for `target` as `vdev`.
fn image_disk(target: &str, vdev: &str) -> String {
    format!("format=raw,vdev={vdev},access=rw,target={target}")
}

/// The two disks of the step's guests: the shared image as xvda, phy: as xvdc.
fn guest_disks(image: &str) -> Vec<String> {
    vec![image_disk(image, "xvda"), format!("phy:{PHY_MARK},xvdc,w")]
}

fn files(linux: &LinuxFiles, tools: &[Tool]) -> Vec<StepFile> {
    let mut files = crate::steps::linux::kernel_files(linux);
    let disk = format!("{DEV_DIR}/disk.img");
    for t in tools {
        let name = t.name();
        for (which, name, disks, bridge) in [
            ("dev", name.clone(), guest_disks(&disk), "xenbr0"),
            (
                "nobridge",
                format!("{name}-nobr"),
                guest_disks(&disk),
                "xenbr9",
            ),
            (
                "noimage",
                format!("{name}-noimg"),
                guest_disks(&format!("{DEV_DIR}/missing-{}.img", t.label)),
                "xenbr0",
            ),
            (
                "bench",
                format!("bench-{}", t.label),
                vec![image_disk(&format!("{DEV_DIR}/bench.img"), "xvda")],
                "xenbr0",
            ),
        ] {
            let mac = if which == "bench" {
                t.bench_mac()
            } else {
                t.mac()
            };
            files.push(StepFile::Text {
                path: t.cfg(which),
                text: devices_cfg(&name, &disks, bridge, &mac),
            });
        }
    }
    files
}

fn tool_caps(t: &Tool, tools: &[Tool]) -> Vec<CaptureSpec> {
    let common = |extra: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("TOOL", t.cmd.to_owned()),
            ("LABEL", t.label.to_owned()),
            ("HOTPLUG", t.hotplug.to_owned()),
            ("NAME", t.name()),
            ("DEV_DIR", DEV_DIR.to_owned()),
        ];
        v.extend(extra.iter().cloned());
        v
    };
    let listers = listers(tools).join(" ");
    let mut boot = script_cap(
        t.boot,
        2 * BOOT_S + 150,
        include_str!("../../scripts/steps/devices/boot.sh"),
        &common(&[
            ("CFG", t.cfg("dev")),
            ("LINUX_INIT_LINE", LINUX_INIT_LINE.to_owned()),
            ("BOOT_S", BOOT_S.to_string()),
            ("TOKEN", t.token()),
            ("LISTERS", listers.clone()),
        ]),
    );
    boot.quiet_s = Some(2 * BOOT_S + 30);
    vec![
        boot,
        script_cap(
            t.plug,
            400,
            include_str!("../../scripts/steps/devices/hotplug.sh"),
            &common(&[("EXTRA_MAC", t.extra_mac()), ("LISTERS", listers)]),
        ),
        script_cap(
            t.destroy,
            120,
            include_str!("../../scripts/steps/devices/destroy.sh"),
            &common(&[("DESTROYER", destroyer(t, tools).to_owned())]),
        ),
        script_cap(
            t.refused,
            300,
            include_str!("../../scripts/steps/devices/refused.sh"),
            &common(&[
                ("NOBRIDGE_NAME", format!("{}-nobr", t.name())),
                ("NOBRIDGE_CFG", t.cfg("nobridge")),
                ("NOIMAGE_NAME", format!("{}-noimg", t.name())),
                ("NOIMAGE_CFG", t.cfg("noimage")),
            ]),
        ),
    ]
}

/// The benchmark's capture: every tool's timed creates and destroys, taking turns.
fn bench_cap(tools: &[Tool]) -> CaptureSpec {
    let words: Vec<String> = tools
        .iter()
        .map(|t| format!("{}:{}:{}", t.label, t.cmd, t.hotplug))
        .collect();
    let attempts = tools.len() as u32 * (BENCH_RUNS + BENCH_SPARE);
    CaptureSpec {
        // A note at the start of every run; a run is at most a create and a destroy.
        quiet_s: Some(2 * BENCH_CMD_S + 30),
        ..script_cap(
            "bench",
            // Typically 15 s a run under TCG; bounded well inside one boot.
            (attempts * 40).clamp(300, 900),
            include_str!("../../scripts/steps/devices/bench.sh"),
            &[
                ("BENCH_TOOLS", words.join(" ")),
                ("CFG_DIR", CFG_DIR.to_owned()),
                ("DEV_DIR", DEV_DIR.to_owned()),
                ("BENCH_RUNS", BENCH_RUNS.to_string()),
                ("BENCH_SPARE", BENCH_SPARE.to_string()),
                ("BENCH_CMD_S", BENCH_CMD_S.to_string()),
                ("SETTLE_S", BENCH_SETTLE_S.to_string()),
            ],
        )
    }
}

/// The devices step (needs the Linux guest) with `tools` taking turns; with `doc`, a passed
/// step writes the benchmark's medians into that file (docs/benchmarks.md).
pub fn devices_step(linux: &LinuxFiles, tools: &[Tool], doc: Option<PathBuf>) -> Step {
    let mut captures = vec![script_cap(
        "prepare",
        120,
        include_str!("../../scripts/steps/devices/prepare.sh"),
        &[
            ("DEV_DIR", DEV_DIR.to_owned()),
            ("CFG_DIR", CFG_DIR.to_owned()),
            ("DISK_TEXT", DISK_TEXT.to_owned()),
        ],
    )];
    for t in tools {
        captures.extend(tool_caps(t, tools));
    }
    captures.push(bench_cap(tools));
    captures.push(script_cap(
        "cleanup",
        120,
        include_str!("../../scripts/steps/devices/cleanup.sh"),
        &[("DEV_DIR", DEV_DIR.to_owned())],
    ));
    let check_tools = tools.to_vec();
    let publish_tools = tools.to_vec();
    Step {
        name: "devices",
        about: "a Linux guest with an image-file disk, a phy: disk and a vif on xenbr0, per \
                tool (xl, rxl with scripts, rxl native): disk read and token kept across \
                boots, link-local pings both ways, block/network hot-plug, rxl's lists equal \
                to xl's, cross-destroy with nothing left, refused creates; create/destroy \
                medians",
        captures,
        files: files(linux, tools),
        check: Box::new(move |o| check_devices(o, &check_tools)),
        publish: Some(Box::new(move |o| {
            publish_bench(o, &publish_tools, doc.as_deref())
        })),
    }
}

/// The value of the last `key=value` line of a capture.
fn value<'a>(c: &'a Capture, key: &str) -> Option<&'a str> {
    c.lines.iter().rev().find_map(|l| field(l, key))
}

/// The lines of a capture between `--- TITLE` and the next `---` line.
pub(crate) fn section<'a>(c: &'a Capture, title: &str) -> Vec<&'a str> {
    let head = format!("--- {title}");
    c.lines
        .iter()
        .skip_while(|l| l.trim_end() != head)
        .skip(1)
        .take_while(|l| !l.starts_with("--- "))
        .map(String::as_str)
        .collect()
}

/// The output of `CMD KIND-list` under tag `tag` (printed by lib.sh's `dev_lists`) and its
/// exit status (the section's `CMD_KIND_list_rc=N` line, or `..._json_rc` for `--json`);
/// None when the section is missing.
fn list_output<'a>(
    c: &'a Capture,
    cmd: &str,
    kind: &str,
    json: bool,
    tag: &str,
) -> Option<(Vec<&'a str>, Option<u64>)> {
    let (title, key) = if json {
        (
            format!("{cmd} {kind}-list --json {tag}"),
            format!("{cmd}_{kind}_list_json_rc"),
        )
    } else {
        (
            format!("{cmd} {kind}-list {tag}"),
            format!("{cmd}_{kind}_list_rc"),
        )
    };
    let head = format!("--- {title}");
    if !c.lines.iter().any(|l| l.trim_end() == head) {
        return None;
    }
    let lines = section(c, &title);
    let rc = lines
        .iter()
        .find_map(|l| field(l, &key))
        .and_then(|v| v.parse().ok());
    let out = lines
        .into_iter()
        .filter(|l| field(l, &key).is_none())
        .collect();
    Some((out, rc))
}

/// The `leftover: ...` lines of a capture.
fn leftovers(lines: &[&str]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.starts_with("leftover: "))
        .map(|l| l.to_string())
        .collect()
}

/// `key=0` in the capture, else a problem.
fn zero(c: &Capture, key: &str, what: &str, problems: &mut Vec<String>) {
    if number(c, key) != Some(0) {
        problems.push(format!("{what}: {key} is {:?}, expected 0", value(c, key)));
    }
}

/// What rxl's block-list and network-list (text and `--json`) printed for a guest against
/// xl's for the same guest at the same moment. Both read the same xenstore nodes, so the
/// text must be xl's line for line (trailing blanks aside), evt-ch included, but for the
/// order of the rows; the JSON must parse and name every device xl lists (its vdev number
/// or its MAC).
fn compare_device_lists(who: &str, c: &Capture, tag: &str, p: &mut Vec<String>) {
    for kind in ["block", "network"] {
        let Some((xl, xl_rc)) = list_output(c, "xl", kind, false, tag) else {
            p.push(format!("{who}: no xl {kind}-list {tag}"));
            continue;
        };
        if xl_rc != Some(0) {
            p.push(format!(
                "{who}: xl {kind}-list {tag} exited with {xl_rc:?}: {xl:?}"
            ));
            continue;
        }
        match list_output(c, "rxl", kind, false, tag) {
            None => p.push(format!("{who}: no rxl {kind}-list {tag}")),
            Some((_, rc)) if rc != Some(0) => {
                p.push(format!("{who}: rxl {kind}-list {tag} exited with {rc:?}"))
            }
            Some((rxl, _)) => {
                // The header as it is, then the rows in sorted order: xl prints them in
                // the order xenstored lists the backend directory, which is no contract.
                let norm = |v: &[&str]| -> Vec<String> {
                    let mut lines: Vec<String> = v
                        .iter()
                        .map(|l| l.trim_end().to_owned())
                        .filter(|l| !l.is_empty())
                        .collect();
                    if lines.len() > 1 {
                        lines[1..].sort();
                    }
                    lines
                };
                let (x, r) = (norm(&xl), norm(&rxl));
                if x != r {
                    let at = x
                        .iter()
                        .zip(&r)
                        .position(|(a, b)| a != b)
                        .unwrap_or(x.len().min(r.len()));
                    p.push(format!(
                        "{who}: rxl {kind}-list {tag} differs from xl's at line {} (rows sorted): xl {:?}, rxl {:?}",
                        at + 1,
                        x.get(at),
                        r.get(at)
                    ));
                }
            }
        }
        match list_output(c, "rxl", kind, true, tag) {
            None => p.push(format!("{who}: no rxl {kind}-list --json {tag}")),
            Some((_, rc)) if rc != Some(0) => p.push(format!(
                "{who}: rxl {kind}-list --json {tag} exited with {rc:?}"
            )),
            Some((json, _)) => {
                let text = json.join("\n");
                if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
                    p.push(format!(
                        "{who}: rxl {kind}-list --json {tag} is not JSON ({e})"
                    ));
                    continue;
                }
                // Each of xl's rows: a block row starts with the vdev number, a network
                // row has the MAC in its third column.
                let col = if kind == "block" { 0 } else { 2 };
                for key in xl
                    .iter()
                    .skip(1)
                    .filter_map(|l| l.split_whitespace().nth(col))
                {
                    if !text.contains(key) {
                        p.push(format!(
                            "{who}: rxl {kind}-list --json {tag} does not name {key}, which xl lists"
                        ));
                    }
                }
            }
        }
    }
}

/// `tool`'s own list under `tag` must have a row whose first (block) or third (network)
/// word is `key`.
fn lists_row(
    who: &str,
    c: &Capture,
    cmd: &str,
    kind: &str,
    tag: &str,
    key: &str,
) -> Option<String> {
    let col = if kind == "block" { 0 } else { 2 };
    match list_output(c, cmd, kind, false, tag) {
        None => Some(format!("{who}: no {cmd} {kind}-list {tag}")),
        Some((_, rc)) if rc != Some(0) => {
            Some(format!("{who}: {cmd} {kind}-list {tag} exited with {rc:?}"))
        }
        Some((rows, _)) => (!rows
            .iter()
            .any(|l| l.split_whitespace().nth(col) == Some(key)))
        .then(|| format!("{who}: {cmd} {kind}-list {tag} has no row for {key}: {rows:?}")),
    }
}

fn check_tool(
    t: &Tool,
    tools: &[Tool],
    o: &Outcome<'_>,
    p: &mut Vec<String>,
    notes: &mut Vec<String>,
) {
    let who = t.title;
    let compare = listers(tools).len() > 1;
    match o.capture(t.boot) {
        Ok(boot) => check_boot(t, boot, compare, p, notes),
        Err(e) => p.push(format!("{who}: {e}")),
    }

    match o.capture(t.plug) {
        Ok(h) => {
            for (key, what) in [
                ("block_attach_rc", "block-attach"),
                ("xvdb_seen_rc", "xvdb appearing in the guest"),
                ("block_detach_rc", "block-detach"),
                ("xvdb_gone_rc", "xvdb leaving the guest"),
                ("network_attach_rc", "network-attach"),
                ("eth1_seen_rc", "eth1 appearing in the guest with its MAC"),
                ("network_detach_rc", "network-detach"),
                ("eth1_gone_rc", "eth1 leaving the guest"),
            ] {
                zero(h, key, &format!("{who}: {what}"), p);
            }
            script_runs(t, h, "block_attach_scripts", "block-attach", p);
            script_runs(t, h, "network_attach_scripts", "network-attach", p);
            p.extend(lists_row(who, h, t.cmd, "block", "with-xvdb", XVDB));
            p.extend(lists_row(
                who,
                h,
                t.cmd,
                "network",
                "with-eth1",
                &t.extra_mac(),
            ));
            if compare {
                for tag in ["with-xvdb", "with-eth1"] {
                    compare_device_lists(who, h, tag, p);
                }
            }
            let lines: Vec<&str> = h.lines.iter().map(String::as_str).collect();
            p.extend(
                leftovers(&lines)
                    .into_iter()
                    .map(|l| format!("{who}: after block-detach, {l}")),
            );
        }
        Err(e) => p.push(format!("{who}: {e}")),
    }

    let by = destroyer(t, tools);
    match o.capture(t.destroy) {
        Ok(d) => {
            zero(
                d,
                "destroy_rc",
                &format!("{who}: {by} destroy of its guest"),
                p,
            );
            for (vdev, _) in DISKS {
                let key = format!("dom0_{vdev}_token");
                if value(d, &key) != Some(t.token().as_str()) {
                    p.push(format!(
                        "{who}: debugfs in dom0 read token {:?} from {vdev}'s image after \
                         destroy, the guest wrote {:?}",
                        value(d, &key),
                        t.token()
                    ));
                }
            }
            let lines: Vec<&str> = d.lines.iter().map(String::as_str).collect();
            p.extend(
                leftovers(&lines)
                    .into_iter()
                    .map(|l| format!("{who}: after {by} destroy, {l}")),
            );
            if let Some(ms) = number(d, "destroy_ms") {
                notes.push(format!(
                    "{by} destroyed {who}'s guest in {:.1} s",
                    ms as f64 / 1000.0
                ));
            }
        }
        Err(e) => p.push(format!("{who}: {e}")),
    }

    match o.capture(t.refused) {
        Ok(r) => {
            for (case, what) in [
                ("nobridge", "a missing bridge"),
                ("noimage", "a missing image"),
            ] {
                match number(r, &format!("{case}_rc")) {
                    Some(0) | None => p.push(format!(
                        "{who}: create with {what} did not fail ({case}_rc={:?})",
                        value(r, &format!("{case}_rc"))
                    )),
                    Some(_) => {}
                }
                // rxl refuses a missing image before anything is built, naming the config
                // file (and the line) and the image.
                if case == "noimage" && !t.is_xl() {
                    let out =
                        section(r, &format!("{} create {}", t.cmd, t.cfg("noimage"))).join("\n");
                    for want in [
                        format!("noimage-{}.cfg", t.label),
                        format!("missing-{}.img", t.label),
                    ] {
                        if !out.contains(&want) {
                            p.push(format!(
                                "{who}: the error of a create with a missing image does not \
                                 name {want}"
                            ));
                        }
                    }
                }
                let left = leftovers(&section(r, &format!("{case} leftovers")));
                if left.is_empty() {
                    continue;
                }
                let text = format!("{who} left after {what}: {}", left.join("; "));
                // xl's leftovers are a fact to record; rxl's are a failure.
                if t.is_xl() {
                    notes.push(text);
                } else {
                    p.push(text);
                }
            }
        }
        Err(e) => p.push(format!("{who}: {e}")),
    }
}

fn check_boot(
    t: &Tool,
    boot: &Capture,
    compare: bool,
    p: &mut Vec<String>,
    notes: &mut Vec<String>,
) {
    let who = t.title;
    if boot.lines.iter().any(|l| l.starts_with("RETRY")) {
        notes.push(format!("{who}: first boot died before /init, retried"));
    }
    for l in boot.lines.iter().filter(|l| l.starts_with("cleared: ")) {
        p.push(format!("{who}: before its boot, {l}"));
    }
    zero(boot, "boot", &format!("{who}: boot"), p);
    script_runs(t, boot, "create_scripts", "create", p);
    for (vdev, _) in DISKS {
        zero(
            boot,
            &format!("{vdev}_rc"),
            &format!("{who}: the guest mounting {vdev}"),
            p,
        );
        let text = value(boot, &format!("{vdev}_text"));
        if text != Some(DISK_TEXT) {
            p.push(format!(
                "{who}: the guest read {text:?} from {vdev}, expected {DISK_TEXT:?}"
            ));
        }
        // The token the guest before (another tool's) wrote must still be there.
        let expected = value(boot, &format!("{vdev}_token_expected")).unwrap_or("");
        let before = value(boot, &format!("{vdev}_token_before"));
        if !expected.is_empty() && before != Some(expected) {
            p.push(format!(
                "{who}: the guest read token {before:?} from {vdev}, the guest before wrote \
                 {expected:?}"
            ));
        }
    }
    zero(
        boot,
        "net_rc",
        &format!("{who}: the guest bringing eth0 up"),
        p,
    );
    if value(boot, "guest_mac") != Some(t.mac().as_str()) {
        p.push(format!(
            "{who}: the guest's eth0 has MAC {:?}, the config says {}",
            value(boot, "guest_mac"),
            t.mac()
        ));
    }
    for key in ["guest_ll", "dom0_ll"] {
        if !value(boot, key).is_some_and(|v| v.starts_with("fe80:")) {
            p.push(format!(
                "{who}: no link-local address {key}: {:?}",
                value(boot, key)
            ));
        }
    }
    zero(
        boot,
        "dom0_ping_rc",
        &format!("{who}: dom0 pinging the guest"),
        p,
    );
    zero(
        boot,
        "guest_ping_rc",
        &format!("{who}: the guest pinging dom0"),
        p,
    );
    for (_, devid) in DISKS {
        p.extend(lists_row(who, boot, t.cmd, "block", "at-boot", devid));
    }
    p.extend(lists_row(who, boot, t.cmd, "network", "at-boot", &t.mac()));
    if compare {
        compare_device_lists(who, boot, "at-boot", p);
    }
    if let Some(ms) = number(boot, "boot_ms") {
        notes.push(format!(
            "{who}: create to /init {:.1} s",
            ms as f64 / 1000.0
        ));
    }
}

/// `t`'s runs of Xen's block and vif-bridge scripts (`KEY=N`, counted by the wrappers
/// prepare.sh installs) during `what`: none for rxl's native path, some for the others.
fn script_runs(t: &Tool, c: &Capture, key: &str, what: &str, p: &mut Vec<String>) {
    let n = number(c, key);
    let native = t.hotplug == "native";
    match n {
        Some(0) if !native => p.push(format!(
            "{}: {what} ran no hotplug script (block, vif-bridge), though this tool runs them",
            t.title
        )),
        Some(n) if native && n > 0 => p.push(format!(
            "{}: {what} ran Xen's hotplug scripts {n} time(s); the native path runs none",
            t.title
        )),
        Some(_) => {}
        None => p.push(format!(
            "{}: no count of hotplug script runs ({key})",
            t.title
        )),
    }
}

/// The benchmark's timed runs: (create, destroy) milliseconds per tool label.
fn parse_bench(lines: &[String]) -> std::collections::BTreeMap<String, (Vec<u64>, Vec<u64>)> {
    let mut out: std::collections::BTreeMap<String, (Vec<u64>, Vec<u64>)> = Default::default();
    for l in lines.iter().filter(|l| l.starts_with("T ")) {
        let num = |k: &str| field(l, k).and_then(|v| v.parse::<u64>().ok());
        if let (Some(tool), Some(c), Some(d)) =
            (field(l, "tool"), num("create_ms"), num("destroy_ms"))
        {
            let e = out.entry(tool.to_owned()).or_default();
            e.0.push(c);
            e.1.push(d);
        }
    }
    out
}

/// The columns of rxl's create profile table: the rxl tools among `tools`.
fn profile_columns(tools: &[Tool]) -> Vec<(&'static str, &'static str)> {
    tools.iter().map(|t| (t.label, t.title)).collect()
}

fn check_bench(o: &Outcome<'_>, tools: &[Tool], p: &mut Vec<String>, notes: &mut Vec<String>) {
    let c = match o.succeeded("bench") {
        Ok(c) => c,
        Err(e) => return p.push(e),
    };
    let runs = parse_bench(&c.lines);
    p.extend(
        c.lines
            .iter()
            .filter_map(|l| l.strip_prefix("FAILED "))
            .map(|f| format!("benchmark: {f}")),
    );
    for t in tools {
        let n = runs.get(t.label).map_or(0, |r| r.0.len());
        if n != BENCH_RUNS as usize {
            p.push(format!(
                "benchmark: {}: {n} timed runs, expected {BENCH_RUNS}",
                t.title
            ));
        }
        let prefix = format!("LEFT {} ", t.label);
        let left: Vec<&str> = c
            .lines
            .iter()
            .filter(|l| l.starts_with(&prefix))
            .map(String::as_str)
            .collect();
        if !left.is_empty() {
            let text = format!(
                "benchmark: {} left after its own destroy: {}",
                t.title,
                left.join("; ")
            );
            if t.is_xl() {
                notes.push(text);
            } else {
                p.push(text);
            }
        }
    }
    let retries = c.lines.iter().filter(|l| l.starts_with("RETRY")).count();
    if retries > 0 {
        notes.push(format!(
            "benchmark: {retries} run(s) failed and were run again [{}]",
            why_runs_failed(&c.lines, 3).join(" | ")
        ));
    }
}

fn check_devices(o: &Outcome<'_>, tools: &[Tool]) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    match o.succeeded("prepare") {
        Ok(c) => {
            for (title, what) in [
                ("ipv4 addresses (none expected)", "an IPv4 address"),
                (
                    "routable ipv6 addresses (none expected)",
                    "a routable IPv6 address",
                ),
            ] {
                let found = section(c, title);
                if found.iter().any(|l| !l.trim().is_empty()) {
                    problems.push(format!("dom0 has {what}: {found:?}"));
                }
            }
        }
        Err(e) => problems.push(e),
    }
    for t in tools {
        check_tool(t, tools, o, &mut problems, &mut notes);
    }
    check_bench(o, tools, &mut problems, &mut notes);
    match o.succeeded("cleanup") {
        Ok(c) => {
            let lines: Vec<&str> = c.lines.iter().map(String::as_str).collect();
            problems.extend(
                leftovers(&lines)
                    .into_iter()
                    .map(|l| format!("at the end of the step, {l}")),
            );
            zero(
                c,
                "phy_detach_rc",
                "detaching the phy: disk's loop device",
                &mut problems,
            );
        }
        Err(e) => problems.push(e),
    }
    // One cause may be seen by two checks (rxl's own list and the comparison): say it once.
    let mut seen = std::collections::BTreeSet::new();
    problems.retain(|p| seen.insert(p.clone()));
    if problems.is_empty() {
        let titles: Vec<&str> = tools.iter().map(|t| t.title).collect();
        let mut s = format!(
            "{}: disks read and tokens kept, MAC, pings both ways, hot-plug, {}cross-destroy \
             with nothing left, refused creates; {BENCH_RUNS} timed runs each",
            titles.join(", "),
            if listers(tools).len() > 1 {
                "rxl's lists equal to xl's, "
            } else {
                ""
            }
        );
        if !notes.is_empty() {
            s.push_str(" (");
            s.push_str(&notes.join("; "));
            s.push(')');
        }
        Ok(s)
    } else {
        problems.extend(notes);
        Err(problems)
    }
}

/// After the verdict: the benchmark's medians, printed, and written into
/// docs/benchmarks.md when the run was given `--publish` (`doc` is then that file).
fn publish_bench(o: &Outcome<'_>, tools: &[Tool], doc: Option<&Path>) -> Result<String, String> {
    let c = o.succeeded("bench")?;
    let runs = parse_bench(&c.lines);
    let retries = c.lines.iter().filter(|l| l.starts_with("RETRY")).count();
    let mut table = bench_table(tools, &runs);
    let profile = profile::table(&profile_columns(tools), &profile::parse(&c.lines, "tool"));
    if !profile.is_empty() {
        let _ = write!(
            table,
            "\nWhere rxl's create time goes (`rxl create --times`, medians per step; \
             `in Xen` is the time inside hypercalls; the hypercall and xenstore columns are \
             the first rxl tool's; `devices` includes the \
             hotplug scripts or rxl's native setup, `unpause`/`mark complete` what follows):\n\n\
             {profile}"
        );
    }
    if let Some(doc) = doc {
        let old = std::fs::read_to_string(doc).unwrap_or_default();
        let section = bench_section(&table, retries, &today());
        std::fs::write(doc, replace_section(&old, BENCH_HEADING, &section))
            .map_err(|e| format!("writing {}: {e}", doc.display()))?;
    }
    Ok(format!(
        "== devices: medians of {BENCH_RUNS} runs of create and destroy with one disk and \
         one vif (QEMU TCG, 2 cores) ==\n{table}"
    ))
}

/// The Markdown table of medians, with each tool's medians as a share of xl's.
fn bench_table(
    tools: &[Tool],
    runs: &std::collections::BTreeMap<String, (Vec<u64>, Vec<u64>)>,
) -> String {
    let med = |label: &str| {
        runs.get(label).map_or((None, None), |(c, d)| {
            (median(c.clone()), median(d.clone()))
        })
    };
    let (xl_c, xl_d) = med("xl");
    let ratio = |v: Option<u64>, xl: Option<u64>| match (v, xl) {
        (Some(v), Some(x)) if x > 0 => format!("{:.2}", v as f64 / x as f64),
        _ => "-".to_owned(),
    };
    let mut s = String::from(
        "| tool | create | destroy | create / xl's | destroy / xl's |\n|---|---|---|---|---|\n",
    );
    for t in tools {
        let (c, d) = med(t.label);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            t.title,
            secs(c),
            secs(d),
            ratio(c, xl_c),
            ratio(d, xl_d)
        );
    }
    s
}

fn bench_section(table: &str, retries: usize, date: &str) -> String {
    format!(
        "{BENCH_HEADING}\n\n\
         Written by `cargo xtask e2e --publish` (step `devices`) on {date}: real Xen 4.17 under \
         QEMU TCG, 2 cores, in the same boot for every tool, the tools taking turns. Medians of \
         {BENCH_RUNS} runs each of `create` (until the command returns) and, right after it, \
         `destroy` of Debian's kernel as a PVH guest (256 MiB, {TIMED_LINUX_VCPUS} vCPU) with \
         one disk (an ext4 image file, served by blkback through a loop device) and one vif on \
         xenbr0, timed in dom0 from /proc/uptime (10 ms resolution). The guest has not \
         connected its frontends when it is destroyed. `rxl (scripts)` runs Xen's hotplug \
         scripts as xl does; `rxl (native)` is rxl with `hotplug = \"native\"` in \
         /etc/rxl/rxl.conf.{}\n\n{table}",
        if retries > 0 {
            format!(" {retries} run(s) failed (named in the step's verdict) and were run again.")
        } else {
            String::new()
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::markers;

    const XL_BLOCK: &str = "Vdev  BE  handle state evt-ch ring-ref BE-path\n\
        51712 0   3      4     7      8        /local/domain/0/backend/vbd/3/51712\n\
        51744 0   3      4     9      9        /local/domain/0/backend/vbd/3/51744\n";

    fn xl_net(mac: &str) -> String {
        format!(
            "Idx BE Mac Addr.         handle state evt-ch   tx-/rx-ring-ref BE-path\n\
             0   0  {mac}     0     4     -1   522/523         /local/domain/0/backend/vif/3/0\n"
        )
    }

    /// What `dev_lists` prints when every lister prints `block` and `net`.
    fn lists(tag: &str, listers: &[&str], block: &str, net: &str) -> String {
        let mut s = String::new();
        for l in listers {
            s += &format!("--- {l} block-list {tag}\n{block}{l}_block_list_rc=0\n");
            if *l == "rxl" {
                s += &format!(
                    "--- rxl block-list --json {tag}\n[{}]\nrxl_block_list_json_rc=0\n",
                    block
                        .lines()
                        .skip(1)
                        .map(|r| format!("{{\"vdev\": {}}}", r.split_whitespace().next().unwrap()))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            s += &format!("--- {l} network-list {tag}\n{net}{l}_network_list_rc=0\n");
            if *l == "rxl" {
                s += &format!(
                    "--- rxl network-list --json {tag}\n[{}]\nrxl_network_list_json_rc=0\n",
                    net.lines()
                        .skip(1)
                        .map(|r| format!(
                            "{{\"mac\": \"{}\"}}",
                            r.split_whitespace().nth(2).unwrap()
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        s + "--- lists end\n"
    }

    /// A result channel in which every capture of the step says what a good run says.
    fn good_run(tools: &[Tool]) -> String {
        let listers = listers(tools);
        let mut text = String::from(
            "@@RXL-BEGIN devices/prepare\n--- ipv4 addresses (none expected)\n\
             --- routable ipv6 addresses (none expected)\n--- end\n@@RXL-END devices/prepare rc=0\n",
        );
        let mut last_token = String::new();
        for t in tools {
            let mac = t.mac();
            let mut disks = String::new();
            for (vdev, _) in DISKS {
                disks += &format!(
                    "--- disk {vdev}\n{vdev}_token_expected={last_token}\n\
                     {vdev}_text={DISK_TEXT}\n{vdev}_token_before={last_token}\n{vdev}_rc=0\n"
                );
            }
            last_token = t.token();
            let scripts = if t.hotplug == "native" { 0 } else { 3 };
            text += &format!(
                "@@RXL-BEGIN devices/{0}\ncreate_scripts={2}\nboot=0\nboot_ms=31000\ndomid=3\n{disks}\
                 --- network\nguest_mac={mac}\nnet_rc=0\nguest_ll=fe80::216:3eff:fe5a:1\n\
                 dom0_ll=fe80::ff:fe00:b01\ndom0_ping_rc=0\nguest_ping_rc=0\n{1}--- end\n\
                 @@RXL-END devices/{0} rc=0\n",
                t.boot,
                lists("at-boot", &listers, XL_BLOCK, &xl_net(&mac)),
                scripts
            );
            let with_xvdb = format!(
                "{XL_BLOCK}51728 0   3      4     10     532      /local/domain/0/backend/vbd/3/51728\n"
            );
            let with_eth1 = format!(
                "{}1   0  {}     1     4     -1   1280/1281       /local/domain/0/backend/vif/3/1\n",
                xl_net(&mac),
                t.extra_mac()
            );
            text += &format!(
                "@@RXL-BEGIN devices/{0}\nblock_attach_rc=0\nblock_attach_scripts={3}\n\
                 xvdb_seen_rc=0\n{1}block_detach_rc=0\n\
                 xvdb_gone_rc=0\nnetwork_attach_rc=0\nnetwork_attach_scripts={3}\n\
                 eth1_seen_rc=0\n{2}network_detach_rc=0\n\
                 eth1_gone_rc=0\n--- end\n@@RXL-END devices/{0} rc=0\n",
                t.plug,
                lists("with-xvdb", &listers, &with_xvdb, &xl_net(&mac)),
                lists("with-eth1", &listers, XL_BLOCK, &with_eth1),
                scripts.min(1)
            );
            text += &format!(
                "@@RXL-BEGIN devices/{0}\ndestroy_rc=0\ndestroy_ms=2400\n\
                 --- leftovers after xl destroy (domid 3)\ndom0_xvda_token={1}\n\
                 dom0_xvdc_token={1}\n--- end\n@@RXL-END devices/{0} rc=0\n",
                t.destroy,
                t.token()
            );
            text += &format!(
                "@@RXL-BEGIN devices/{0}\n--- {1} create /e2e/devices/nobridge-{3}.cfg\nnobridge_rc=1\n\
                 --- nobridge leftovers\n{2}--- {1} create /e2e/devices/noimage-{3}.cfg\n\
                 error: /e2e/devices/noimage-{3}.cfg:10:49: /tmp/devices/missing-{3}.img: not found\n\
                 noimage_rc=1\n--- noimage leftovers\n--- end\n@@RXL-END devices/{0} rc=0\n",
                t.refused,
                t.cmd,
                if t.is_xl() {
                    "leftover: xenstore /libxl/9\n"
                } else {
                    ""
                },
                t.label
            );
        }
        text += "@@RXL-BEGIN devices/bench\n";
        for run in 1..=BENCH_RUNS {
            for (i, t) in tools.iter().enumerate() {
                text += &format!(
                    "T tool={} run={run} create_ms={} destroy_ms={}\n",
                    t.label,
                    10_000 / (i as u64 + 1) + u64::from(run),
                    3_000 / (i as u64 + 1) + u64::from(run)
                );
            }
        }
        text += "@@RXL-END devices/bench rc=0\n@@RXL-BEGIN devices/cleanup\nphy_detach_rc=0\n\
                 --- end\n@@RXL-END devices/cleanup rc=0\n";
        text
    }

    fn judge(text: &str, tools: &[Tool]) -> Result<String, Vec<String>> {
        let report = markers::parse(text);
        check_devices(
            &Outcome {
                step: "devices",
                report: &report,
                console: "",
            },
            tools,
        )
    }

    #[test]
    fn a_good_run_passes_and_reports_what_xl_left() {
        for tools in [&ALL_TOOLS[..1], &ALL_TOOLS[..]] {
            let summary = judge(&good_run(tools), tools).unwrap();
            assert!(
                summary.contains("xl left after a missing bridge: leftover: xenstore /libxl/9"),
                "{summary}"
            );
            assert_eq!(
                summary.contains("rxl's lists equal to xl's"),
                tools.len() > 1,
                "{summary}"
            );
        }
    }

    #[test]
    fn each_broken_fact_is_named_with_its_tool() {
        let tools = &ALL_TOOLS[..];
        let native = &ALL_TOOLS[2];
        for (from, to, want) in [
            (
                format!("guest_mac={}", native.mac()),
                "guest_mac=00:16:3e:00:00:99".to_owned(),
                "rxl (native): the guest's eth0 has MAC",
            ),
            (
                format!("xvdc_text={DISK_TEXT}"),
                "xvdc_text=".to_owned(),
                "xl: the guest read Some(\"\") from xvdc",
            ),
            (
                "xvda_token_before=token-xl-7".to_owned(),
                "xvda_token_before=".to_owned(),
                "rxl (scripts): the guest read token Some(\"\") from xvda, the guest before wrote \"token-xl-7\"",
            ),
            (
                "guest_ping_rc=0".to_owned(),
                "guest_ping_rc=1".to_owned(),
                "xl: the guest pinging dom0",
            ),
            (
                format!("dom0_xvda_token={}", ALL_TOOLS[1].token()),
                "dom0_xvda_token=".to_owned(),
                "rxl (scripts): debugfs in dom0 read token",
            ),
            (
                "eth1_gone_rc=0".to_owned(),
                "eth1_gone_rc=9".to_owned(),
                "xl: eth1 leaving",
            ),
            (
                "noimage_rc=1".to_owned(),
                "noimage_rc=0".to_owned(),
                "xl: create with a missing image did not fail",
            ),
            (
                "--- leftovers after xl destroy (domid 3)\n".to_owned(),
                "--- leftovers after xl destroy (domid 3)\nleftover: loop /dev/loop0: []\n"
                    .to_owned(),
                "xl: after rxl destroy, leftover: loop",
            ),
            (
                "--- routable ipv6 addresses (none expected)\n".to_owned(),
                "--- routable ipv6 addresses (none expected)\n3: xenbr0 inet6 2001:db8::1/64\n"
                    .to_owned(),
                "routable IPv6",
            ),
            (
                "51744 0".to_owned(),
                "51760 0".to_owned(),
                "xl: xl block-list at-boot has no row for 51744",
            ),
            // rxl's network table for xl's guest differs from xl's in one value (evt-ch).
            (
                "--- rxl network-list at-boot\nIdx BE Mac Addr.         handle state evt-ch   tx-/rx-ring-ref BE-path\n0   0  00:16:3e:5a:00:01     0     4     -1 ".to_owned(),
                "--- rxl network-list at-boot\nIdx BE Mac Addr.         handle state evt-ch   tx-/rx-ring-ref BE-path\n0   0  00:16:3e:5a:00:01     0     4     12 ".to_owned(),
                "xl: rxl network-list at-boot differs from xl's at line 2",
            ),
            (
                "[{\"vdev\": 51712}, {\"vdev\": 51744}, {\"vdev\": 51728}]".to_owned(),
                "[{\"vdev\": 51712}, {\"vdev\": 51744}]".to_owned(),
                "xl: rxl block-list --json with-xvdb does not name 51728",
            ),
            (
                "--- nobridge leftovers\n--- rxl create".to_owned(),
                "--- nobridge leftovers\nleftover: interface vif9.0\n--- rxl create".to_owned(),
                "rxl (scripts) left after a missing bridge: leftover: interface vif9.0",
            ),
            (
                "T tool=rxl-native run=5 ".to_owned(),
                "x tool=rxl-native run=5 ".to_owned(),
                "benchmark: rxl (native): 4 timed runs, expected 5",
            ),
            (
                "@@RXL-END devices/bench".to_owned(),
                "LEFT rxl-native run 2: leftover: xenstore /libxl/12\n@@RXL-END devices/bench"
                    .to_owned(),
                "benchmark: rxl (native) left after its own destroy",
            ),
            (
                "create_scripts=0\n".to_owned(),
                "create_scripts=2\n".to_owned(),
                "rxl (native): create ran Xen's hotplug scripts 2 time(s); the native path runs none",
            ),
            (
                "block_attach_scripts=1".to_owned(),
                "block_attach_scripts=0".to_owned(),
                "xl: block-attach ran no hotplug script",
            ),
            (
                "phy_detach_rc=0".to_owned(),
                "phy_detach_rc=1".to_owned(),
                "detaching the phy: disk's loop device",
            ),
        ] {
            let text = good_run(tools).replacen(&from, &to, 1);
            assert_ne!(text, good_run(tools), "{from}");
            let problems = judge(&text, tools).unwrap_err().join("\n");
            assert!(problems.contains(want), "{want}: {problems}");
        }
    }

    #[test]
    fn rxl_may_order_the_rows_otherwise_but_not_change_them() {
        let tools = &ALL_TOOLS[..2];
        let rows = "51712 0   3      4     7      8        /local/domain/0/backend/vbd/3/51712\n\
                    51744 0   3      4     9      9        /local/domain/0/backend/vbd/3/51744\n\
                    51728 0   3      4     10     532      /local/domain/0/backend/vbd/3/51728\n";
        let sorted = "51712 0   3      4     7      8        /local/domain/0/backend/vbd/3/51712\n\
                      51728 0   3      4     10     532      /local/domain/0/backend/vbd/3/51728\n\
                      51744 0   3      4     9      9        /local/domain/0/backend/vbd/3/51744\n";
        let from = format!(
            "--- rxl block-list with-xvdb\nVdev  BE  handle state evt-ch ring-ref BE-path\n{rows}"
        );
        let text = good_run(tools);
        assert!(text.contains(&from));
        let reordered = text.replacen(
            &from,
            &format!("--- rxl block-list with-xvdb\nVdev  BE  handle state evt-ch ring-ref BE-path\n{sorted}"),
            1,
        );
        judge(&reordered, tools).unwrap();
        let changed = text.replacen(
            &from,
            &format!(
                "--- rxl block-list with-xvdb\nVdev  BE  handle state evt-ch ring-ref BE-path\n{}",
                sorted.replace("532 ", "533 ")
            ),
            1,
        );
        let problems = judge(&changed, tools).unwrap_err().join("\n");
        assert!(
            problems.contains("xl: rxl block-list with-xvdb differs from xl's at line 3"),
            "{problems}"
        );
    }

    #[test]
    fn an_rxl_error_that_does_not_name_the_missing_image_fails_the_step() {
        let tools = &ALL_TOOLS[..];
        let text = good_run(tools).replacen(
            "/tmp/devices/missing-rxl-native.img: not found",
            "disk xvda: hotplug script failed",
            1,
        );
        let problems = judge(&text, tools).unwrap_err().join("\n");
        assert!(
            problems.contains(
                "rxl (native): the error of a create with a missing image does not name \
                 missing-rxl-native.img"
            ),
            "{problems}"
        );
        assert!(!problems.contains("noimage-rxl-native.cfg"), "{problems}");
    }

    #[test]
    fn a_failed_rxl_list_is_reported_once() {
        let tools = &ALL_TOOLS[..2];
        let text = good_run(tools);
        let at = text.find("@@RXL-BEGIN devices/rxl-boot").unwrap();
        let (head, tail) = text.split_at(at);
        let text = format!(
            "{head}{}",
            tail.replacen("rxl_block_list_rc=0", "rxl_block_list_rc=2", 1)
        );
        let problems = judge(&text, tools).unwrap_err();
        let want = "rxl (scripts): rxl block-list at-boot exited with Some(2)";
        assert_eq!(
            problems.iter().filter(|p| p.as_str() == want).count(),
            1,
            "{problems:?}"
        );
    }

    #[test]
    fn an_unfinished_capture_fails_the_step() {
        let tools = &ALL_TOOLS[..];
        let text = good_run(tools);
        let cut = text
            .find(&format!("@@RXL-END devices/{}", ALL_TOOLS[1].destroy))
            .unwrap();
        let problems = judge(&text[..cut], tools).unwrap_err().join("\n");
        assert!(
            problems.contains("rxl (scripts): devices/rxl-destroy did not finish"),
            "{problems}"
        );
    }

    #[test]
    fn every_tool_has_its_own_names_and_macs() {
        let mut seen = std::collections::BTreeSet::new();
        for t in ALL_TOOLS {
            for n in [t.boot, t.plug, t.destroy, t.refused] {
                assert!(n.starts_with(t.label) && seen.insert(n.to_owned()), "{n}");
            }
            for m in [t.mac(), t.extra_mac(), t.bench_mac(), t.name()] {
                assert!(seen.insert(m.clone()), "{m}");
            }
        }
        let cfg = devices_cfg(
            "n",
            &guest_disks("/tmp/d.img"),
            "xenbr0",
            "00:16:3e:5a:00:01",
        );
        assert!(
            cfg.contains(
                "disk = [ \"format=raw,vdev=xvda,access=rw,target=/tmp/d.img\", \"phy:@PHY@,xvdc,w\" ]"
            ),
            "{cfg}"
        );
        assert!(cfg.contains("vif = [ \"bridge=xenbr0,mac=00:16:3e:5a:00:01\" ]"));
        assert!(cfg.contains("rxl_devices"));
    }

    #[test]
    fn tools_are_chosen_by_label_and_destroy_each_others_guests() {
        let labels =
            |s: &str| -> Vec<&str> { select_tools(s).unwrap().iter().map(|t| t.label).collect() };
        assert_eq!(labels("rxl-native, xl"), ["xl", "rxl-native"]);
        assert_eq!(labels(DEFAULT_TOOLS), ["xl", "rxl", "rxl-native"]);
        assert!(select_tools("xl,rxl-fast")
            .unwrap_err()
            .contains("no tool \"rxl-fast\"; the tools are xl, rxl, rxl-native"));
        assert!(select_tools(" , ").is_err());
        let all = ALL_TOOLS.to_vec();
        assert_eq!(destroyer(&all[0], &all), "rxl");
        assert_eq!(destroyer(&all[2], &all), "xl");
        assert_eq!(destroyer(&all[0], &all[..1]), "xl");
        assert_eq!(listers(&all[..1]), ["xl"]);
        assert_eq!(listers(&all[2..]), ["xl", "rxl"]);
        // The step's captures for the chosen tools only, then the benchmark and the cleanup.
        let f = PathBuf::from("/nonexistent");
        let linux = LinuxFiles {
            kernel: f.clone(),
            initrd: f,
        };
        let step = devices_step(&linux, &all[..1], None);
        let names: Vec<&str> = step.captures.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "prepare",
                "xl-boot",
                "xl-hotplug",
                "xl-destroy",
                "xl-refused",
                "bench",
                "cleanup"
            ]
        );
    }

    #[test]
    fn the_bench_table_gives_medians_and_shares_of_xl() {
        let tools = &ALL_TOOLS[..];
        let report = markers::parse(&good_run(tools));
        let o = Outcome {
            step: "devices",
            report: &report,
            console: "",
        };
        let dir = tempfile::tempdir().unwrap();
        let doc = dir.path().join("benchmarks.md");
        std::fs::write(
            &doc,
            "# Benchmarks\n\n## Real Xen: rxl and xl side by side\n\nkept\n",
        )
        .unwrap();
        let printed = publish_bench(&o, tools, Some(&doc)).unwrap();
        // xl's median create: 10000 + 3; rxl's half of it, rxl-native's a third.
        assert!(
            printed.contains("| xl | 10.00 s | 3.00 s | 1.00 | 1.00 |"),
            "{printed}"
        );
        assert!(
            printed.contains("| rxl (scripts) | 5.00 s | 1.50 s | 0.50 | 0.50 |"),
            "{printed}"
        );
        assert!(
            printed.contains("| rxl (native) | 3.34 s | 1.00 s | 0.33 | 0.33 |"),
            "{printed}"
        );
        let written = std::fs::read_to_string(&doc).unwrap();
        assert!(
            written
                .contains("## Real Xen: rxl and xl side by side\n\nkept\n\n## Real Xen: devices"),
            "{written}"
        );
        // Publishing again replaces the devices section and keeps the other.
        publish_bench(&o, tools, Some(&doc)).unwrap();
        let again = std::fs::read_to_string(&doc).unwrap();
        assert_eq!(again.matches(BENCH_HEADING).count(), 1, "{again}");
        assert!(again.contains("kept"));
    }

    /// A fake dom0 whose `xl` and `rxl` run `body` (a shell `case "$1"` body), and whose
    /// `use_hotplug` records the mode in `mode`, which the fakes read into `$mode`.
    fn fake_dom0(body: &str) -> tempfile::TempDir {
        crate::steps::fake_dom0::fake_dom0(
            &format!("mode=$(cat $d/mode 2>/dev/null)\ncase $1 in\n{body}\nesac\nexit 0\n"),
            "note() { :; }\nleftovers() { :; }\nuse_hotplug() { echo \"$1\" >@DIR@/mode; }\n",
        )
    }

    fn run_sh(dir: &tempfile::TempDir, script: &str) -> String {
        crate::steps::fake_dom0::run_script(dir.path(), script, &[]).join("\n") + "\n"
    }

    #[test]
    fn the_bench_script_takes_turns_with_each_hotplug_mode_and_spends_spares() {
        // Every create records "tool mode"; the second create of rxl native fails.
        let dir = fake_dom0(
            "create) echo \"$tool $mode\" >>$d/creates\n  n=$(grep -c \"^$tool $mode\" $d/creates)\n  \
             [ $mode = native ] && [ $n = 2 ] && { echo 'no such bridge' >&2; exit 1; }\n  \
             [ \"$2\" = --times ] && printf 'step  ms\\n(boot plan)  1.00\\ndevices  4.00 2 0.10 9\\ntotal (steps + plan)  5.00 2 0.10 9\\n' >&2 ;;\n\
             domid) echo 7 ;;",
        );
        let step = devices_step(
            &LinuxFiles {
                kernel: "/x".into(),
                initrd: "/x".into(),
            },
            &ALL_TOOLS,
            None,
        );
        let bench = step.captures.iter().find(|c| c.name == "bench").unwrap();
        let out = run_sh(&dir, &bench.script);
        let lines: Vec<String> = out.lines().map(str::to_owned).collect();
        let runs = parse_bench(&lines);
        for t in ALL_TOOLS {
            assert_eq!(
                runs[t.label].0.len(),
                BENCH_RUNS as usize,
                "{}: {out}",
                t.label
            );
        }
        assert!(
            out.contains("run 2 of rxl-native: create failed: no such bridge"),
            "{out}"
        );
        assert!(out.contains("RETRY rxl-native after attempt 2"), "{out}");
        assert!(!out.contains("FAILED"), "{out}");
        // rxl's creates ran with --times and their profiles were kept; xl's did not.
        let profiles = profile::parse(&lines, "tool");
        assert_eq!(
            profiles.keys().map(String::as_str).collect::<Vec<_>>(),
            ["rxl", "rxl-native"]
        );
        let devices = &profiles["rxl"][1];
        assert_eq!(devices.0, "devices");
        assert_eq!(devices.1.len(), BENCH_RUNS as usize, "{out}");
        // The creates took turns, and rxl ran with the hotplug mode of its label.
        let creates = std::fs::read_to_string(dir.path().join("creates")).unwrap();
        let first: Vec<&str> = creates.lines().take(3).collect();
        assert_eq!(
            first,
            ["xl scripts", "rxl scripts", "rxl native"],
            "{creates}"
        );
        assert_eq!(creates.lines().filter(|l| *l == "rxl native").count(), 6);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("mode")).unwrap(),
            "scripts\n"
        );
    }

    #[test]
    fn the_lists_script_output_is_what_the_comparison_reads() {
        // xl and rxl print the same block table; rxl's network table has another evt-ch.
        let net = xl_net("00:16:3e:5a:00:01");
        let body = format!(
            "block-list) [ \"$2\" = --json ] && {{ echo '[{{\"vdev\": 51712}}]'; exit 0; }}\n  printf '%s' '{}' ;;\n\
             network-list) [ \"$2\" = --json ] && {{ echo '[{{\"mac\": \"00:16:3e:5a:00:01\"}}]'; exit 0; }}\n  \
             if [ $tool = rxl ]; then printf '%s' '{}'; else printf '%s' '{}'; fi ;;",
            XL_BLOCK.replace("51744 0   3      4     9      9        /local/domain/0/backend/vbd/3/51744\n", ""),
            net.replace("-1 ", "12 "),
            net
        );
        let dir = fake_dom0(&body);
        let out = run_sh(&dir, ". /e2e/lib.sh\ndev_lists dev-xl at-boot xl rxl\n");
        let report = markers::parse(&format!(
            "@@RXL-BEGIN devices/x\n{out}@@RXL-END devices/x rc=0\n"
        ));
        let c = report.capture("devices/x").unwrap();
        let (rows, rc) = list_output(c, "xl", "block", false, "at-boot").unwrap();
        assert_eq!((rows.len(), rc), (2, Some(0)), "{out}");
        assert_eq!(
            lists_row("xl", c, "rxl", "block", "at-boot", "51712"),
            None,
            "{out}"
        );
        let mut p = Vec::new();
        compare_device_lists("xl", c, "at-boot", &mut p);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("xl: rxl network-list at-boot differs from xl's at line 2"),
            "{p:?}"
        );
    }
}
