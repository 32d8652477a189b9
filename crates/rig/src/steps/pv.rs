//! Step `pv`: rxl builds Debian's kernel as a PV guest (`type = "pv"`): its life (/init on
//! 2 vCPUs, pause, console, reboot, shutdown), a disk and a vif, GRUB's PV image as
//! `firmware = "pvgrub64"`, and the kernels rxl must refuse as PV.

use std::path::Path;

use super::linux::{check_life, kernel_files, life_captures, linux_cfg_of_type, LINUX_DIR};
use super::linux::{LINUX_INIT_LINE, LINUX_VCPUS};
use crate::checks::excerpt;
use crate::scenario::{script_cap, LinuxFiles, Outcome, Step, StepFile};

/// The PV Linux guest whose life the step runs.
const PV_NAME: &str = "rxl-pv";
/// The PV Linux guest with a disk and a vif.
const DEV_NAME: &str = "rxl-pv-dev";
/// The GRUB guest.
const GRUB_NAME: &str = "rxl-grub64";
/// The step's directory in dom0.
const PV_DIR: &str = "/e2e/pv";
/// Seconds a PV Linux boot may take to reach /init under TCG.
const BOOT_S: u32 = 150;
/// The line the devices guest must read from its disk.
const DISK_TEXT: &str = "written in dom0 for the PV guest";
/// The guest's MAC.
const DEV_MAC: &str = "00:16:3e:00:0b:0d";

/// Where Debian's grub-xen-host installs GRUB's 64-bit PV image (in the unpacked tree and in
/// dom0), which `firmware = "pvgrub64"` finds.
pub const PVGRUB64_PATH: &str = "/usr/lib/grub-xen/grub-x86_64-xen.bin";

/// Configs rxl must refuse as PV: the PVH-only test guest and dom0's busybox (no Xen notes).
const REFUSED: &[(&str, &str)] = &[
    ("pvh-only", "/e2e/guests/hello"),
    ("not-xen", "/bin/busybox"),
];

fn refused_cfg(name: &str, kernel: &str) -> String {
    format!("name = \"rxl-pv-{name}\"\ntype = \"pv\"\nmemory = 64\nkernel = \"{kernel}\"\n")
}

/// The step. `grub64` is GRUB's PV image on the host, when there is one.
pub fn pv_step(linux: &LinuxFiles, grub64: Option<&Path>) -> Step {
    let cfg = |name: &str, vcpus: u32, extra: &str| {
        linux_cfg_of_type(
            "pv",
            name,
            &format!("{LINUX_DIR}/vmlinuz"),
            &format!("{LINUX_DIR}/initrd.img"),
            vcpus,
            extra,
        )
    };
    let mut files = kernel_files(linux);
    files.push(StepFile::Text {
        path: format!("{PV_DIR}/pv.cfg"),
        text: cfg(PV_NAME, LINUX_VCPUS, ""),
    });
    files.push(StepFile::Text {
        path: format!("{PV_DIR}/pv-dev.cfg"),
        text: cfg(
            DEV_NAME,
            1,
            &format!(
                "disk = [ '{PV_DIR}/disk.img,raw,xvda,w' ]\n\
                 vif = [ 'mac={DEV_MAC},bridge=xenbr0' ]\n\
                 cmdline = \"console=hvc0 rdinit=/init rxl_devices\"\n"
            ),
        ),
    });
    let mut refused = Vec::new();
    for (name, kernel) in REFUSED {
        let path = format!("{PV_DIR}/{name}.cfg");
        files.push(StepFile::Text {
            path: path.clone(),
            text: refused_cfg(name, kernel),
        });
        refused.push(path);
    }
    let mut captures = life_captures(PV_NAME, &format!("{PV_DIR}/pv.cfg"));
    captures.push(script_cap(
        "devices",
        2 * BOOT_S + 300,
        include_str!("../../scripts/steps/pv/devices.sh"),
        &[
            ("NAME", DEV_NAME.into()),
            ("CFG", format!("{PV_DIR}/pv-dev.cfg")),
            ("DISK_TEXT", DISK_TEXT.into()),
            ("LINUX_INIT_LINE", LINUX_INIT_LINE.into()),
            ("BOOT_S", BOOT_S.to_string()),
        ],
    ));
    captures.push(script_cap(
        "refused",
        150,
        include_str!("../../scripts/steps/pv/refused.sh"),
        &[("CFGS", refused.join(" "))],
    ));
    if let Some(grub) = grub64 {
        files.push(StepFile::Host {
            path: PVGRUB64_PATH.into(),
            host: grub.to_owned(),
        });
        files.push(StepFile::Text {
            path: format!("{PV_DIR}/grub64.cfg"),
            text: format!(
                "# GRUB's PV image as the guest's firmware; no disk, so it stops at its prompt.\n\
                 name = \"{GRUB_NAME}\"\ntype = \"pv\"\nmemory = 128\nfirmware = \"pvgrub64\"\n"
            ),
        });
        captures.push(script_cap(
            "grub64",
            200,
            include_str!("../../scripts/steps/pvgrub/grub.sh"),
            &[
                ("GRUB_NAME", GRUB_NAME.into()),
                ("GRUB_CFG", format!("{PV_DIR}/grub64.cfg")),
            ],
        ));
    }
    let with_grub = grub64.is_some();
    Step {
        name: "pv",
        about: "rxl builds Debian's kernel as a PV guest: /init on 2 vCPUs, pause, console, \
                reboot -w, shutdown -w; a PV guest's disk and vif; firmware = \"pvgrub64\"; \
                PVH-only and non-Xen kernels refused with nothing left",
        captures,
        files,
        check: Box::new(move |o| check_pv(o, with_grub)),
        publish: None,
    }
}

/// `key=value` of the line starting with `key=` in `lines`.
fn value<'a>(lines: &'a [String], key: &str) -> Option<&'a str> {
    lines
        .iter()
        .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
}

fn check_devices(o: &Outcome<'_>, problems: &mut Vec<String>) -> String {
    let c = match o.succeeded("devices") {
        Ok(c) => c,
        Err(e) => {
            problems.push(format!("devices: {e}"));
            return String::new();
        }
    };
    let l = &c.lines;
    let want = [
        ("boot", "0"),
        ("protocol", "x86_64-abi"),
        ("disk_text", DISK_TEXT),
        ("disk_rc", "0"),
        ("net_rc", "0"),
        ("guest_mac", DEV_MAC),
        ("dom0_ping_rc", "0"),
        ("guest_ping_rc", "0"),
        ("destroy_rc", "0"),
        ("state", "gone"),
    ];
    for (key, expected) in want {
        match value(l, key) {
            Some(v) if v.trim() == expected => {}
            other => problems.push(format!(
                "devices: {key} is {other:?}, expected {expected:?}: {}",
                excerpt(l)
            )),
        }
    }
    let left: Vec<&str> = l
        .iter()
        .filter_map(|x| x.strip_prefix("leftover: "))
        .collect();
    if !left.is_empty() {
        problems.push(format!(
            "devices: left after rxl destroy: {}",
            left.join(", ")
        ));
    }
    "disk read and written, MAC and pings both ways, nothing left".into()
}

fn check_refused(o: &Outcome<'_>, problems: &mut Vec<String>) {
    let c = match o.succeeded("refused") {
        Ok(c) => c,
        Err(e) => {
            problems.push(format!("refused: {e}"));
            return;
        }
    };
    let text = c.text();
    let mut sections = text.split("--- ").skip(1);
    for (name, kernel) in REFUSED {
        let Some(s) = sections.next() else {
            problems.push(format!("refused: no output for {name}"));
            continue;
        };
        let rc = s.lines().find_map(|l| l.trim().strip_prefix("rc="));
        if rc == Some("0") || rc.is_none() {
            problems.push(format!("refused: rxl create of {name} exited {rc:?}: {s}"));
        }
        if !s.contains(kernel) {
            problems.push(format!(
                "refused: the error for {name} does not name {kernel}: {s}"
            ));
        }
    }
    if !c.lines.iter().any(|l| l.trim() == "nothing_left=yes") {
        problems.push(format!(
            "refused: domains, xenstore or records changed: {}",
            excerpt(&c.lines)
        ));
    }
}

fn check_grub(o: &Outcome<'_>, problems: &mut Vec<String>) -> String {
    match o.succeeded("grub64") {
        Ok(c) => format!(
            "pvgrub64: {}",
            super::pvgrub::check_grub_console(c, "grub64: ", problems)
        ),
        Err(e) => {
            problems.push(format!("grub64: {e}"));
            String::new()
        }
    }
}

fn check_pv(o: &Outcome<'_>, with_grub: bool) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    match check_life(o, PV_NAME) {
        Ok(s) => notes.push(format!("life: {s}")),
        Err(p) => problems.extend(p.into_iter().map(|p| format!("life: {p}"))),
    }
    notes.push(check_devices(o, &mut problems));
    check_refused(o, &mut problems);
    if with_grub {
        notes.push(check_grub(o, &mut problems));
    } else {
        notes.push("no grub-x86_64-xen.bin in the unpacked tree: pvgrub64 not tried".into());
    }
    if problems.is_empty() {
        Ok(notes.join("; "))
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::markers;

    fn check(text: &str) -> Result<String, Vec<String>> {
        let report = markers::parse(text);
        check_pv(
            &Outcome {
                step: "pv",
                report: &report,
                console: "",
            },
            true,
        )
    }

    fn devices(ping: &str, left: &str) -> String {
        format!(
            "@@RXL-BEGIN pv/devices\nboot=0\ndomid=9\nprotocol=x86_64-abi\n--- disk\n\
             disk_text={DISK_TEXT}\ndisk_rc=0\n--- network\nguest_mac={DEV_MAC}\nnet_rc=0\n\
             dom0_ping_rc={ping}\nguest_ping_rc=0\n--- destroy\ndestroy_rc=0\n{left}\
             state=gone\n--- end\n@@RXL-END pv/devices rc=0\n"
        )
    }

    fn refused(rc: &str, left: &str) -> String {
        format!(
            "@@RXL-BEGIN pv/refused\n--- {PV_DIR}/pvh-only.cfg\nrxl: /e2e/guests/hello: not a \
             PV kernel\nrc={rc}\n--- {PV_DIR}/not-xen.cfg\nrxl: /bin/busybox: no Xen notes\n\
             rc=1\nbefore: domains=1\nafter: domains=1\n{left}@@RXL-END pv/refused rc=0\n"
        )
    }

    const GRUB: &str = "@@RXL-BEGIN pv/grub64\ngrub_ms=4000\n== console\nGNU GRUB  version \
                        2.06\n== end\nstate=gone\n@@RXL-END pv/grub64 rc=0\n";

    #[test]
    fn the_pv_check_wants_devices_refusals_and_grub() {
        let good = format!(
            "{}{}{GRUB}",
            devices("0", ""),
            refused("1", "nothing_left=yes\n")
        );
        // The life captures are missing here: only they fail.
        let err = check(&good).unwrap_err();
        assert!(err.iter().all(|p| p.starts_with("life: ")), "{err:?}");
        let bad = format!(
            "{}{}",
            devices("1", "leftover: xenstore /libxl/9\n"),
            refused("0", "")
        );
        let err = check(&bad).unwrap_err();
        for want in [
            "devices: dom0_ping_rc",
            "devices: left after rxl destroy",
            "refused: rxl create of pvh-only exited",
            "refused: domains, xenstore or records changed",
            "grub64: ",
        ] {
            assert!(err.iter().any(|p| p.starts_with(want)), "{want}: {err:?}");
        }
    }
}
