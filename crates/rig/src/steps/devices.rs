//! Step `devices`: a Linux guest with a disk (an ext4 image through blkback and a loop
//! device) and a network interface (netback, a vif on dom0's bridge xenbr0), created by each
//! tool of [`TOOLS`] in turn. The guest reads the disk and writes a token that a second boot
//! finds again; dom0 and the guest ping each other's IPv6 link-local address; disks and
//! interfaces are hot-plugged and unplugged; after each destroy nothing of the domain is
//! left; creates naming a missing bridge or image fail (what they leave is reported).

use crate::checks::{field, number};
use crate::markers::Capture;
use crate::scenario::{script_cap, CaptureSpec, LinuxFiles, Outcome, Step, StepFile};
use crate::steps::linux::{LINUX_DIR, LINUX_INIT_LINE, TIMED_LINUX_VCPUS};

/// A tool the step runs, and the names of its captures (capture names are static).
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    /// The command (`xl`).
    pub cmd: &'static str,
    /// Last byte of the guest's MAC (each tool's guest has its own).
    pub mac_byte: u8,
    /// Capture: create, disk, network, pings, block-list and network-list.
    pub boot: &'static str,
    /// Capture: block-attach/-detach and network-attach/-detach.
    pub hotplug: &'static str,
    /// Capture: destroy, leftovers, create again (token), destroy, leftovers.
    pub again: &'static str,
    /// Capture: creates that must fail (missing bridge, missing image).
    pub refused: &'static str,
}

/// The tools that take turns. rxl joins with an entry of its own once it has devices.
pub const TOOLS: &[Tool] = &[Tool {
    cmd: "xl",
    mac_byte: 0x01,
    boot: "xl-boot",
    hotplug: "xl-hotplug",
    again: "xl-again",
    refused: "xl-refused",
}];

/// Where the disk images go in dom0 (tmpfs).
const DEV_DIR: &str = "/tmp/devices";
/// The configs' directory in dom0.
const CFG_DIR: &str = "/e2e/devices";
/// The text of the file the guest must read from its disk.
const DISK_TEXT: &str = "rxl-devices-disk-file-42";
/// Seconds a boot may take to reach /init.
const BOOT_S: u32 = 120;

impl Tool {
    fn name(&self) -> String {
        format!("dev-{}", self.cmd)
    }
    fn mac(&self) -> String {
        format!("00:16:3e:5a:00:{:02x}", self.mac_byte)
    }
    fn extra_mac(&self) -> String {
        format!("00:16:3e:5a:01:{:02x}", self.mac_byte)
    }
    fn token(&self) -> String {
        format!("token-{}-7", self.cmd)
    }
    fn cfg(&self, which: &str) -> String {
        format!("{CFG_DIR}/{which}-{}.cfg", self.cmd)
    }
    fn disk(&self) -> String {
        format!("{DEV_DIR}/disk-{}.img", self.cmd)
    }
}

/// A Linux guest config with one disk and one vif (the devices step's guests).
pub(crate) fn devices_cfg(name: &str, disk: &str, bridge: &str, mac: &str) -> String {
    format!(
        "# Debian's kernel as a PVH guest with a disk and a network interface.\n\
         name = \"{name}\"\ntype = \"pvh\"\nmemory = 256\nvcpus = {TIMED_LINUX_VCPUS}\n\
         kernel = \"{LINUX_DIR}/vmlinuz\"\nramdisk = \"{LINUX_DIR}/initrd.img\"\n\
         cmdline = \"console=hvc0 rdinit=/init rxl_devices\"\n\
         on_reboot = \"destroy\"\n\
         disk = [ \"format=raw,vdev=xvda,access=rw,target={disk}\" ]\n\
         vif = [ \"bridge={bridge},mac={mac}\" ]\n"
    )
}

fn files(linux: &LinuxFiles) -> Vec<StepFile> {
    let mut files = crate::steps::linux::kernel_files(linux);
    for t in TOOLS {
        let name = t.name();
        files.push(StepFile::Text {
            path: t.cfg("dev"),
            text: devices_cfg(&name, &t.disk(), "xenbr0", &t.mac()),
        });
        files.push(StepFile::Text {
            path: t.cfg("nobridge"),
            text: devices_cfg(&format!("{name}-nobr"), &t.disk(), "xenbr9", &t.mac()),
        });
        files.push(StepFile::Text {
            path: t.cfg("noimage"),
            text: devices_cfg(
                &format!("{name}-noimg"),
                &format!("{DEV_DIR}/missing-{}.img", t.cmd),
                "xenbr0",
                &t.mac(),
            ),
        });
    }
    files
}

fn tool_caps(t: &Tool) -> Vec<CaptureSpec> {
    let common = |extra: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("TOOL", t.cmd.to_owned()),
            ("NAME", t.name()),
            ("DEV_DIR", DEV_DIR.to_owned()),
        ];
        v.extend(extra.iter().cloned());
        v
    };
    let boot_vars = [
        ("CFG", t.cfg("dev")),
        ("LINUX_INIT_LINE", LINUX_INIT_LINE.to_owned()),
        ("BOOT_S", BOOT_S.to_string()),
    ];
    let mut boot = script_cap(
        t.boot,
        2 * BOOT_S + 150,
        include_str!("../../scripts/steps/devices/boot.sh"),
        &common(&[boot_vars.as_slice(), &[("TOKEN", t.token())]].concat()),
    );
    boot.quiet_s = Some(2 * BOOT_S + 30);
    let mut again = script_cap(
        t.again,
        2 * BOOT_S + 150,
        include_str!("../../scripts/steps/devices/again.sh"),
        &common(&boot_vars),
    );
    again.quiet_s = Some(2 * BOOT_S + 30);
    vec![
        boot,
        script_cap(
            t.hotplug,
            300,
            include_str!("../../scripts/steps/devices/hotplug.sh"),
            &common(&[("EXTRA_MAC", t.extra_mac())]),
        ),
        again,
        script_cap(
            t.refused,
            200,
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

/// The devices step (needs the Linux guest).
pub fn devices_step(linux: &LinuxFiles) -> Step {
    let tools: Vec<&str> = TOOLS.iter().map(|t| t.cmd).collect();
    let mut captures = vec![script_cap(
        "prepare",
        120,
        include_str!("../../scripts/steps/devices/prepare.sh"),
        &[
            ("DEV_DIR", DEV_DIR.to_owned()),
            ("DISK_TEXT", DISK_TEXT.to_owned()),
            ("TOOLS", tools.join(" ")),
        ],
    )];
    for t in TOOLS {
        captures.extend(tool_caps(t));
    }
    Step {
        name: "devices",
        about: "a Linux guest with an ext4 disk and a vif on xenbr0: disk read and token \
                kept across boots, link-local pings both ways, block/network hot-plug, \
                nothing left after destroy, refused creates",
        captures,
        files: files(linux),
        check: Box::new(check_devices),
        publish: None,
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

fn check_tool(t: &Tool, o: &Outcome<'_>, p: &mut Vec<String>, notes: &mut Vec<String>) {
    let who = t.cmd;
    let boot = match o.capture(t.boot) {
        Ok(c) => c,
        Err(e) => return p.push(e),
    };
    if boot.lines.iter().any(|l| l.starts_with("RETRY")) {
        notes.push(format!("{who}: first boot died before /init, retried"));
    }
    zero(boot, "boot", &format!("{who} boot"), p);
    zero(
        boot,
        "disk_rc",
        &format!("{who}: the guest mounting xvda"),
        p,
    );
    if value(boot, "disk_text") != Some(DISK_TEXT) {
        p.push(format!(
            "{who}: the guest read {:?} from xvda, expected {DISK_TEXT:?}",
            value(boot, "disk_text")
        ));
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
    zero(boot, "block_list_rc", &format!("{who} block-list"), p);
    zero(boot, "network_list_rc", &format!("{who} network-list"), p);
    let blocks = section(boot, &format!("{who} block-list"));
    if !blocks
        .iter()
        .any(|l| l.split_whitespace().next() == Some("51712"))
    {
        p.push(format!(
            "{who} block-list has no row for xvda (51712): {blocks:?}"
        ));
    }
    let nets = section(boot, &format!("{who} network-list"));
    if !nets.iter().any(|l| l.contains(&t.mac())) {
        p.push(format!(
            "{who} network-list has no row with {}: {nets:?}",
            t.mac()
        ));
    }

    match o.capture(t.hotplug) {
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
            let lines: Vec<&str> = h.lines.iter().map(String::as_str).collect();
            p.extend(
                leftovers(&lines)
                    .into_iter()
                    .map(|l| format!("{who}: after block-detach, {l}")),
            );
        }
        Err(e) => p.push(e),
    }

    match o.capture(t.again) {
        Ok(a) => {
            zero(a, "destroy1_rc", &format!("{who} destroy"), p);
            zero(a, "boot2", &format!("{who}: the second boot"), p);
            zero(
                a,
                "token_rc",
                &format!("{who}: the guest mounting xvda again"),
                p,
            );
            zero(a, "destroy2_rc", &format!("{who}: the second destroy"), p);
            if value(a, "token_again") != Some(t.token().as_str()) {
                p.push(format!(
                    "{who}: the second boot read token {:?}, the first wrote {:?}",
                    value(a, "token_again"),
                    t.token()
                ));
            }
            if value(a, "dom0_token") != Some(t.token().as_str()) {
                p.push(format!(
                    "{who}: debugfs in dom0 read token {:?} from the image after destroy",
                    value(a, "dom0_token")
                ));
            }
            let lines: Vec<&str> = a.lines.iter().map(String::as_str).collect();
            p.extend(
                leftovers(&lines)
                    .into_iter()
                    .map(|l| format!("{who}: after destroy, {l}")),
            );
        }
        Err(e) => p.push(e),
    }

    match o.capture(t.refused) {
        Ok(r) => {
            for (case, what) in [
                ("nobridge", "a missing bridge"),
                ("noimage", "a missing image"),
            ] {
                match number(r, &format!("{case}_rc")) {
                    Some(0) | None => p.push(format!(
                        "{who} create with {what} did not fail ({case}_rc={:?})",
                        value(r, &format!("{case}_rc"))
                    )),
                    Some(_) => {}
                }
                let left = leftovers(&section(r, &format!("{case} leftovers")));
                if !left.is_empty() {
                    notes.push(format!("{who} left after {what}: {}", left.join("; ")));
                }
            }
        }
        Err(e) => p.push(e),
    }
}

fn check_devices(o: &Outcome<'_>) -> Result<String, Vec<String>> {
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
    for t in TOOLS {
        check_tool(t, o, &mut problems, &mut notes);
    }
    if problems.is_empty() {
        let tools: Vec<&str> = TOOLS.iter().map(|t| t.cmd).collect();
        let mut s = format!(
            "{}: disk read and token kept, MAC, pings both ways, hot-plug, nothing left",
            tools.join(", ")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::markers;

    /// A result channel in which every capture of the step says what a good run says.
    fn good_run() -> String {
        let mut text = String::from(
            "@@RXL-BEGIN devices/prepare\n--- ipv4 addresses (none expected)\n\
             --- routable ipv6 addresses (none expected)\n--- end\n@@RXL-END devices/prepare rc=0\n",
        );
        for t in TOOLS {
            let (c, mac) = (t.cmd, t.mac());
            text += &format!(
                "@@RXL-BEGIN devices/{}\nboot=0\ndomid=3\n--- disk\ndisk_text={DISK_TEXT}\n\
                 disk_rc=0\n--- network\nguest_mac={mac}\nnet_rc=0\nguest_ll=fe80::216:3eff:fe5a:1\n\
                 dom0_ll=fe80::ff:fe00:b01\ndom0_ping_rc=0\nguest_ping_rc=0\n--- {c} block-list\n\
                 Vdev  BE  handle state evt-ch ring-ref BE-path\n\
                 51712 0   3      4     18     8        /local/domain/0/backend/vbd/3/51712\n\
                 block_list_rc=0\n--- {c} network-list\nIdx BE Mac Addr.\n0 0 {mac} 0 4\n\
                 network_list_rc=0\n--- end\n@@RXL-END devices/{} rc=0\n",
                t.boot, t.boot
            );
            text += &format!(
                "@@RXL-BEGIN devices/{0}\nblock_attach_rc=0\nxvdb_seen_rc=0\nblock_detach_rc=0\n\
                 xvdb_gone_rc=0\nnetwork_attach_rc=0\neth1_seen_rc=0\nnetwork_detach_rc=0\n\
                 eth1_gone_rc=0\n--- end\n@@RXL-END devices/{0} rc=0\n",
                t.hotplug
            );
            text += &format!(
                "@@RXL-BEGIN devices/{0}\ndestroy1_rc=0\n--- leftovers after the first destroy\n\
                 dom0_token={1}\ncreate2_rc=0\nboot2=0\ntoken_again={1}\ntoken_rc=0\n\
                 destroy2_rc=0\n--- leftovers after the second destroy\n--- end\n\
                 @@RXL-END devices/{0} rc=0\n",
                t.again,
                t.token()
            );
            text += &format!(
                "@@RXL-BEGIN devices/{0}\n--- {c} create nobr\nnobridge_rc=1\n\
                 --- nobridge leftovers\nleftover: xenstore /libxl/9\n--- {c} create noimg\n\
                 noimage_rc=1\n--- noimage leftovers\n--- end\n@@RXL-END devices/{0} rc=0\n",
                t.refused
            );
        }
        text
    }

    fn judge(text: &str) -> Result<String, Vec<String>> {
        let report = markers::parse(text);
        check_devices(&Outcome {
            step: "devices",
            report: &report,
            console: "",
        })
    }

    #[test]
    fn a_good_run_passes_and_reports_what_xl_left() {
        let summary = judge(&good_run()).unwrap();
        assert!(
            summary.contains("xl left after a missing bridge: leftover: xenstore /libxl/9"),
            "{summary}"
        );
    }

    #[test]
    fn each_broken_fact_is_named() {
        let t = &TOOLS[0];
        for (from, to, want) in [
            (
                format!("guest_mac={}", t.mac()),
                "guest_mac=00:16:3e:00:00:99".to_owned(),
                "MAC",
            ),
            (
                format!("disk_text={DISK_TEXT}"),
                "disk_text=".to_owned(),
                "read",
            ),
            (
                "guest_ping_rc=0".to_owned(),
                "guest_ping_rc=1".to_owned(),
                "pinging dom0",
            ),
            (
                format!("token_again={}", t.token()),
                "token_again=".to_owned(),
                "token",
            ),
            (
                "eth1_gone_rc=0".to_owned(),
                "eth1_gone_rc=9".to_owned(),
                "eth1 leaving",
            ),
            (
                "noimage_rc=1".to_owned(),
                "noimage_rc=0".to_owned(),
                "missing image did not fail",
            ),
            (
                "--- leftovers after the second destroy\n".to_owned(),
                "--- leftovers after the second destroy\nleftover: loop /dev/loop0: []\n"
                    .to_owned(),
                "after destroy, leftover: loop",
            ),
            (
                "--- routable ipv6 addresses (none expected)\n".to_owned(),
                "--- routable ipv6 addresses (none expected)\n3: xenbr0 inet6 2001:db8::1/64\n"
                    .to_owned(),
                "routable IPv6",
            ),
            (
                "51712 0".to_owned(),
                "51728 0".to_owned(),
                "no row for xvda",
            ),
        ] {
            let text = good_run().replacen(&from, &to, 1);
            assert_ne!(text, good_run(), "{from}");
            let problems = judge(&text).unwrap_err().join("\n");
            assert!(problems.contains(want), "{want}: {problems}");
        }
    }

    #[test]
    fn an_unfinished_capture_fails_the_step() {
        let text = good_run();
        let cut = text
            .find(&format!("@@RXL-END devices/{}", TOOLS[0].again))
            .unwrap();
        let problems = judge(&text[..cut]).unwrap_err().join("\n");
        assert!(problems.contains("did not finish"), "{problems}");
    }

    #[test]
    fn every_tool_has_its_own_names_and_macs() {
        let mut seen = std::collections::BTreeSet::new();
        for t in TOOLS {
            for n in [t.boot, t.hotplug, t.again, t.refused] {
                assert!(n.starts_with(t.cmd) && seen.insert(n.to_owned()), "{n}");
            }
            assert!(seen.insert(t.mac()) && seen.insert(t.extra_mac()));
        }
        let cfg = devices_cfg("n", "/tmp/d.img", "xenbr0", "00:16:3e:5a:00:01");
        assert!(cfg.contains("disk = [ \"format=raw,vdev=xvda,access=rw,target=/tmp/d.img\" ]"));
        assert!(cfg.contains("vif = [ \"bridge=xenbr0,mac=00:16:3e:5a:00:01\" ]"));
        assert!(cfg.contains("rxl_devices"));
    }
}
