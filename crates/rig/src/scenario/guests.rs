//! Steps where rxl itself creates and runs guests on real Xen: the PVH test guest with
//! modules (`rxl-hello`), a Debian Linux kernel with a busybox initramfs (`rxl-linux`),
//! refused and interrupted creates (`failures`), GRUB as PVH firmware (`pvgrub`), and xl and
//! rxl side by side with timings (`side-by-side`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{cap, compare_lists, excerpt, guest_lines, CaptureSpec, Outcome, Step, StepFile};
use crate::compare::{self, ListRow};
use crate::image::{Entry, Image};

/// What the host built or found for the guest steps; a step whose inputs are missing is left
/// out.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The PVH test guest (tests/guests/hello).
    pub hello: Option<PathBuf>,
    /// The Linux guest's kernel and initramfs.
    pub linux: Option<LinuxFiles>,
    /// GRUB built for Xen PVH (`grub-i386-xen_pvh.bin`).
    pub pvgrub: Option<PathBuf>,
    /// docs/benchmarks.md, whose side-by-side section the timings replace.
    pub benchmarks_doc: Option<PathBuf>,
    /// The xenstore client's live check (`cargo build --example xs-smoke`).
    pub xs_smoke: Option<PathBuf>,
}

/// The Linux guest: dom0's own Debian kernel and an initramfs holding busybox.
#[derive(Debug, Clone)]
pub struct LinuxFiles {
    /// The bzImage.
    pub kernel: PathBuf,
    /// The gzip-compressed newc initramfs built by [`build_linux`].
    pub initrd: PathBuf,
}

/// The line the Linux guest's /init prints on its console (followed by ` cpus=N online=L`).
pub const LINUX_INIT_LINE: &str = "RXL-LINUX-INIT";

/// The Linux guest's /init: mounts the kernel file systems, reports the CPUs it sees, then
/// answers each line typed on its console with `RXL-ECHO line` (the console step types).
const LINUX_INIT: &str = "#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo \"RXL-LINUX-INIT cpus=$(grep -c ^processor /proc/cpuinfo) online=$(cat /sys/devices/system/cpu/online)\"
while read -r line; do echo \"RXL-ECHO $line\"; done
while true; do sleep 3600; done
";

/// What the guest answers to the line the console capture types.
const CONSOLE_ECHO: &str = "RXL-ECHO console check 42";

/// Writes the Linux guest's initramfs (busybox, /init, and the /sbin/poweroff and
/// /sbin/reboot that Linux runs on a xenstore shutdown request) into `out_dir`. Returns
/// `None` when the unpacked tree has no kernel `boot/vmlinuz-RELEASE` or no `bin/busybox`.
pub fn build_linux(
    root: &Path,
    release: &str,
    out_dir: &Path,
) -> anyhow::Result<Option<LinuxFiles>> {
    use anyhow::Context as _;
    let kernel = root.join(format!("boot/vmlinuz-{release}"));
    let busybox = root.join("bin/busybox");
    if !kernel.is_file() || !busybox.is_file() {
        return Ok(None);
    }
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let mut img = Image::new();
    for d in ["/proc", "/sys", "/dev", "/tmp", "/bin", "/sbin"] {
        img.dir(d)?;
    }
    img.add(
        "/dev/console",
        Entry::CharDev {
            perm: 0o600,
            major: 5,
            minor: 1,
        },
    )?;
    img.host_file("/bin/busybox", &busybox)?;
    img.bytes("/init", 0o755, LINUX_INIT)?;
    img.bytes(
        "/sbin/poweroff",
        0o755,
        "#!/bin/busybox sh\nexec /bin/busybox poweroff -f\n",
    )?;
    img.bytes(
        "/sbin/reboot",
        0o755,
        "#!/bin/busybox sh\nexec /bin/busybox reboot -f\n",
    )?;
    let initrd = out_dir.join("initrd.img");
    img.write_gz(&initrd)
        .with_context(|| format!("writing {}", initrd.display()))?;
    Ok(Some(LinuxFiles { kernel, initrd }))
}

/// The 32-bit FNV-1a hash of `data` (what the hello guest prints as a module's `sum`).
pub fn fnv1a32(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// The e820 type number of a memory map entry type as `rxl create -n --json` names it.
fn e820_number(name: &str) -> Option<u32> {
    Some(match name {
        "ram" => 1,
        "reserved" => 2,
        "acpi" => 3,
        "nvs" => 4,
        "unusable" => 5,
        "disabled" => 6,
        "pmem" => 7,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------
// rxl-hello

/// The rxl-created test guest's name.
const RXL_HELLO: &str = "hello-by-rxl";
/// Its directory in dom0: the config in `cfg/`, the kernel in `bin/`, modules beside the
/// config and in `data/`, all named relative to the config.
const RXL_HELLO_DIR: &str = "/e2e/rxl-hello";
const RXL_HELLO_CMDLINE: &str = "rxl-e2e hello from rxl with spaces";
const RXL_HELLO_VCPUS: u32 = 2;
const RXL_HELLO_MEM: u64 = 32;

/// One module the rxl-hello guest gets.
#[derive(Debug, Clone)]
struct TestModule {
    /// The path in the config (relative to the config's directory).
    cfg_path: &'static str,
    /// The path in dom0.
    path: &'static str,
    /// The module's command line.
    cmdline: Option<&'static str>,
    data: Vec<u8>,
}

fn test_modules() -> Vec<TestModule> {
    // Bytes from a small LCG: a size that is no multiple of the page size or of 4.
    let mut x = 0x1234_5678_u32;
    let a: Vec<u8> = (0..5003)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            x.to_be_bytes()[0]
        })
        .collect();
    let b: Vec<u8> = "module b of the rxl e2e rig\n"
        .bytes()
        .cycle()
        .take(777)
        .collect();
    vec![
        TestModule {
            cfg_path: "mod-a.bin",
            path: "/e2e/rxl-hello/cfg/mod-a.bin",
            cmdline: None,
            data: a,
        },
        TestModule {
            cfg_path: "../data/mod-b.bin",
            path: "/e2e/rxl-hello/data/mod-b.bin",
            cmdline: Some("mod-b opt=1 two words"),
            data: b,
        },
    ]
}

fn rxl_hello_cfg(modules: &[TestModule]) -> String {
    let mods: Vec<String> = modules
        .iter()
        .map(|m| match m.cmdline {
            Some(c) => format!("[ \"{}\", \"{c}\" ]", m.cfg_path),
            None => format!("\"{}\"", m.cfg_path),
        })
        .collect();
    format!(
        "# PVH test guest created by rxl, paths relative to this file.\n\
         name = \"{RXL_HELLO}\"\ntype = \"pvh\"\nkernel = \"../bin/hello\"\n\
         cmdline = \"{RXL_HELLO_CMDLINE}\"\nmemory = {RXL_HELLO_MEM}\nvcpus = {RXL_HELLO_VCPUS}\n\
         modules = [ {} ]\non_poweroff = \"preserve\"\non_crash = \"preserve\"\n",
        mods.join(", ")
    )
}

/// `rxl create` of the test guest from another working directory, with modules.
pub fn rxl_hello_step(kernel: PathBuf) -> Step {
    let modules = test_modules();
    let cfg = format!("{RXL_HELLO_DIR}/cfg/hello.cfg");
    let create = format!(
        r#"cd /tmp || exit 1
rxl create -p {cfg} || exit 1
echo "domid=$(rxl domid {RXL_HELLO})"
"#
    );
    let run = format!(
        r#"domid=$(rxl domid {RXL_HELLO}) || exit 1
echo "domid=$domid"
rxl unpause {RXL_HELLO} || exit 1
i=0
until xl dmesg | grep -q "(d$domid) .*RXLTEST done"; do
    i=$((i + 1))
    if [ $i -gt 30 ]; then echo "no RXLTEST done after 30 s"; break; fi
    sleep 1
done
xl dmesg | grep "(d$domid)"
"#
    );
    let mut files = vec![
        StepFile::Host {
            path: format!("{RXL_HELLO_DIR}/bin/hello"),
            host: kernel,
        },
        StepFile::Text {
            path: cfg.clone(),
            text: rxl_hello_cfg(&modules),
        },
    ];
    for m in &modules {
        files.push(StepFile::Bytes {
            path: m.path.into(),
            data: m.data.clone(),
        });
    }
    Step {
        name: "rxl-hello",
        about: "rxl create -p of the PVH test guest (relative paths, modules, 2 vCPUs): listed \
                alike by xl and rxl; unpaused it boots as planned; rxl destroy removes it",
        captures: vec![
            cap(
                "plan",
                30,
                &format!("cd /tmp && rxl create -n --json {cfg}\n"),
            ),
            cap("create", 60, &create),
            cap("xl-list", 30, "xl list\n"),
            cap("rxl-list", 30, "rxl list\n"),
            cap("rxl-list-json", 30, "rxl list --json\n"),
            cap("vcpu-list", 30, &format!("xl vcpu-list {RXL_HELLO}\n")),
            cap("run", 60, &run),
            cap("destroy", 30, &format!("rxl destroy {RXL_HELLO}\n")),
            cap("xl-list-after", 30, "xl list\n"),
            cap("rxl-list-after", 30, "rxl list\n"),
        ],
        files,
        check: Box::new(move |o| check_rxl_hello(o, &modules)),
        publish: None,
    }
}

fn domid_of(c: &super::Capture) -> Option<u32> {
    c.lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("domid="))
        .and_then(|d| d.trim().parse::<u32>().ok())
}

/// `key=value` fields of a line (`value` up to the next blank).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

fn hex(v: &str) -> Option<u64> {
    u64::from_str_radix(v.strip_prefix("0x")?, 16).ok()
}

fn check_rxl_hello(o: &Outcome<'_>, modules: &[TestModule]) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    let plan_cap = o.succeeded("plan").map_err(|e| vec![e])?;
    let plan: Value = serde_json::from_str(&plan_cap.text()).map_err(|e| {
        vec![format!(
            "rxl create -n --json printed no JSON ({e}): {}",
            excerpt(&plan_cap.lines)
        )]
    })?;
    o.succeeded("create").map_err(|e| vec![e])?;
    let c = o.succeeded("run").map_err(|e| vec![e])?;
    let domid = domid_of(c)
        .ok_or_else(|| vec![format!("rxl domid printed no id: {}", excerpt(&c.lines))])?;
    let mut lines: Vec<String> = guest_lines(o.console, domid)
        .into_iter()
        .filter(|l| l.starts_with("RXLTEST"))
        .collect();
    if lines.is_empty() {
        // The serial log may have lost lines; xl dmesg's copy is in the capture.
        lines = guest_lines(&c.text(), domid)
            .into_iter()
            .filter(|l| l.starts_with("RXLTEST"))
            .collect();
    }
    if lines.is_empty() {
        return Err(vec![format!(
            "no \"(d{domid}) RXLTEST\" line in the serial log or xl dmesg: {}",
            excerpt(&c.lines)
        )]);
    }
    problems.extend(
        guest_problems(&lines, &plan, modules)
            .into_iter()
            .map(|p| format!("guest d{domid}: {p}")),
    );

    // Listed by both, with the config's memory and vCPUs.
    if let Some((xl, Some(rxl))) = compare_lists(o, &mut problems) {
        // The VCPUs column counts online vCPUs: a PVH guest's secondary vCPUs stay down
        // until the guest starts them, which the test guest never does.
        for (who, text) in [("xl", xl), ("rxl", rxl)] {
            match row(&text, RXL_HELLO) {
                Some(r) if r.mem == RXL_HELLO_MEM && r.vcpus == 1 && r.state == "--p---" => {}
                Some(r) => problems.push(format!(
                    "{who} list shows {RXL_HELLO} with {} MiB, {} online vCPUs, state {}; \
                     expected {RXL_HELLO_MEM} MiB, 1 (the boot vCPU), --p---",
                    r.mem, r.vcpus, r.state
                )),
                None => problems.push(format!("{who} list has no {RXL_HELLO} row")),
            }
        }
    }
    match o.succeeded("vcpu-list") {
        Ok(v) => {
            let n = v
                .lines
                .iter()
                .filter(|l| l.split_whitespace().next() == Some(RXL_HELLO))
                .count();
            if n != RXL_HELLO_VCPUS as usize {
                problems.push(format!(
                    "xl vcpu-list shows {n} vCPUs, the config gave {RXL_HELLO_VCPUS}: {}",
                    excerpt(&v.lines)
                ));
            }
        }
        Err(e) => problems.push(e),
    }
    if let Err(e) = o.succeeded("destroy") {
        problems.push(e);
    }
    for name in ["xl-list-after", "rxl-list-after"] {
        match o.succeeded(name) {
            Ok(l) if row(&l.text(), RXL_HELLO).is_some() => problems.push(format!(
                "{name}: {RXL_HELLO} is still listed after rxl destroy"
            )),
            Ok(_) => {}
            Err(e) => problems.push(e),
        }
    }
    if problems.is_empty() {
        Ok(format!(
            "d{domid}: {} RXLTEST lines match the plan ({} modules with sums, {} memmap \
             entries, lapics={RXL_HELLO_VCPUS}); listed {RXL_HELLO_MEM} MiB/{RXL_HELLO_VCPUS} \
             vCPUs (xl vcpu-list) by xl and rxl; destroyed",
            lines.len(),
            modules.len(),
            plan["layout"]["memmap"].as_array().map_or(0, Vec::len)
        ))
    } else {
        Err(problems)
    }
}

/// The row of domain `name` in `xl list`-style output (from its header line to the end).
fn row(text: &str, name: &str) -> Option<ListRow> {
    let from = text.find(compare::LIST_HEADER).unwrap_or(0);
    compare::parse_list(&text[from..])
        .ok()?
        .into_iter()
        .find(|r| r.name == name)
}

/// What is wrong with the rxl-hello guest's `RXLTEST` lines, given the dry run's plan.
fn guest_problems(lines: &[String], plan: &Value, modules: &[TestModule]) -> Vec<String> {
    let mut problems = Vec::new();
    let has = |want: &str| lines.iter().any(|l| l.trim_end() == want);
    let after = |prefix: &str| -> Vec<&str> {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix("RXLTEST ")?.strip_prefix(prefix))
            .collect()
    };
    if !has("RXLTEST magic=0x336ec578 version=1") {
        problems.push(format!(
            "no \"RXLTEST magic=0x336ec578 version=1\" line (got {:?})",
            lines.first()
        ));
    }
    if let Some(bad) = lines.iter().find(|l| l.starts_with("RXLTEST error")) {
        problems.push(bad.clone());
    }
    match after("cmdline=").first().map(|c| c.trim_end()) {
        Some(c) if c == RXL_HELLO_CMDLINE => {}
        other => problems.push(format!(
            "cmdline is {other:?}, the config gave {RXL_HELLO_CMDLINE:?}"
        )),
    }
    let want_n = modules.len().to_string();
    match after("modules=").first().map(|c| c.trim()) {
        Some(n) if n == want_n => {}
        other => problems.push(format!("modules={other:?}, expected {want_n}")),
    }
    let planned = plan["layout"]["modules"].as_array();
    let got_mods = after("module ");
    for (i, m) in modules.iter().enumerate() {
        let Some(line) = got_mods
            .iter()
            .find(|l| l.split_whitespace().next() == Some(&i.to_string()))
        else {
            problems.push(format!("no \"RXLTEST module {i}\" line"));
            continue;
        };
        let size = field(line, "size").and_then(hex);
        if size != Some(m.data.len() as u64) {
            problems.push(format!(
                "module {i} ({}): size {size:?}, the file has {} bytes",
                m.cfg_path,
                m.data.len()
            ));
        }
        let sum = field(line, "sum").and_then(hex);
        let want = fnv1a32(&m.data);
        if sum != Some(u64::from(want)) {
            problems.push(format!(
                "module {i} ({}): sum {sum:x?}, the host computed {want:#010x}",
                m.cfg_path
            ));
        }
        let cmdline = line.split_once("cmdline=").map(|(_, c)| c.trim_end());
        let want_cl = m.cmdline.unwrap_or("(none)");
        if cmdline != Some(want_cl) {
            problems.push(format!(
                "module {i}: cmdline {cmdline:?}, the config gave {want_cl:?}"
            ));
        }
        let paddr = field(line, "paddr").and_then(hex);
        let want_paddr = planned
            .and_then(|p| p.get(i))
            .and_then(|p| p["paddr"].as_u64());
        if paddr.is_none() || paddr != want_paddr {
            problems.push(format!(
                "module {i}: paddr {paddr:x?}, the dry run planned {want_paddr:x?}"
            ));
        }
    }
    // The memory map, entry by entry, against the dry run's layout.
    let want_map: Vec<(Option<u64>, Option<u64>, Option<u32>)> = plan["layout"]["memmap"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["addr"].as_u64(),
                        e["size"].as_u64(),
                        e["type"].as_str().and_then(e820_number),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if want_map.is_empty() {
        problems.push("the dry run's layout has no memmap".into());
    }
    let got_map: Vec<(Option<u64>, Option<u64>, Option<u32>)> = after("memmap ")
        .iter()
        .map(|l| {
            (
                field(l, "addr").and_then(hex),
                field(l, "size").and_then(hex),
                field(l, "type").and_then(|t| t.parse().ok()),
            )
        })
        .collect();
    let count = after("memmap_entries=")
        .first()
        .and_then(|n| n.trim().parse::<usize>().ok());
    if count != Some(want_map.len()) || got_map != want_map {
        problems.push(format!(
            "memmap (memmap_entries={count:?}) {got_map:x?} differs from the dry run's {want_map:x?}"
        ));
    }
    // RSDP: valid signature at the planned address.
    match after("rsdp=").first() {
        Some(l) => {
            let addr = l.split_whitespace().next().and_then(hex);
            let want = plan["layout"]["rsdp"].as_u64();
            if addr.is_none() || addr != want {
                problems.push(format!("rsdp at {addr:x?}, the dry run planned {want:x?}"));
            }
            if !l.contains("sig=RSD PTR") {
                problems.push(format!("RSDP signature is not \"RSD PTR \": {l:?}"));
            }
        }
        None => problems.push("no \"RXLTEST rsdp=\" line".into()),
    }
    let want_madt = format!("RXLTEST madt lapics={RXL_HELLO_VCPUS} enabled={RXL_HELLO_VCPUS}");
    if !has(&want_madt) {
        let got = lines.iter().find(|l| l.contains("madt"));
        problems.push(format!("expected \"{want_madt}\", got {got:?}"));
    }
    if !has("RXLTEST done") {
        problems.push("no \"RXLTEST done\" line: the guest stopped early".into());
    }
    problems
}

// ---------------------------------------------------------------------------------------
// rxl-linux

/// The Linux guest's name and directory in dom0 (config, kernel and initramfs side by side).
const LINUX_NAME: &str = "rxl-linux";
const LINUX_DIR: &str = "/e2e/linux";
const LINUX_MEM: u64 = 256;
const LINUX_VCPUS: u32 = 2;
/// Seconds a Linux boot may take to reach /init under TCG.
const LINUX_BOOT_S: u32 = 150;

/// vCPUs of the Linux guests the side-by-side step times. Under this emulation Linux
/// guests die early (a triple fault in their TSC calibration) in about one boot of five,
/// with xl as with rxl, and the whole machine has fallen silent three times in about 70
/// boots of 2-vCPU guests, each time just as the second vCPU came up; no such hang in about
/// 50 boots of 1-vCPU guests (2026-12-01). The rxl-linux step keeps 2 vCPUs, which is what
/// proves the MADT.
const TIMED_LINUX_VCPUS: u32 = 1;

/// A Linux guest config named `name` with `vcpus` vCPUs, with `kernel` and `ramdisk` as
/// given.
fn linux_cfg(name: &str, kernel: &str, ramdisk: &str, vcpus: u32, extra: &str) -> String {
    format!(
        "# Debian's kernel as a PVH guest, with a busybox initramfs.\n\
         name = \"{name}\"\ntype = \"pvh\"\nmemory = {LINUX_MEM}\nvcpus = {vcpus}\n\
         kernel = \"{kernel}\"\nramdisk = \"{ramdisk}\"\n\
         cmdline = \"console=hvc0 rdinit=/init\"\n{extra}"
    )
}

/// The shell function `boot_linux NAME CFG` (create, then wait for /init; one retry when the
/// guest dies before /init), printing `create_ms=`, `init_ms=` and `domid=`.
fn boot_linux_fn() -> String {
    format!(
        r#"boot_once() {{
    n0=$(console_count "$1" {LINUX_INIT_LINE})
    t0=$(now_ms)
    rxl create "$2" || return 3
    t1=$(now_ms)
    wait_console "$1" {LINUX_INIT_LINE} $((n0 + 1)) {LINUX_BOOT_S}
    r=$?
    t2=$(now_ms)
    echo "create_ms=$((t1 - t0)) init_ms=$((t2 - t0)) wait=$r"
    return $r
}}
boot_linux() {{
    boot_once "$1" "$2"
    r=$?
    if [ $r = 2 ]; then
        echo "RETRY: $1 died before /init (state $(dom_state "$1")); its console ended with:"
        tail -n 8 "/var/log/xen/console/guest-$1.log" 2>/dev/null
        rxl destroy "$1" >/dev/null 2>&1
        boot_once "$1" "$2"
        r=$?
    fi
    echo "domid=$(rxl domid "$1")"
    grep -F {LINUX_INIT_LINE} "/var/log/xen/console/guest-$1.log" | tail -n 1
    return $r
}}
"#
    )
}

/// The Linux guest's files in dom0.
fn linux_files(linux: &LinuxFiles) -> Vec<StepFile> {
    vec![
        StepFile::Host {
            path: format!("{LINUX_DIR}/vmlinuz"),
            host: linux.kernel.clone(),
        },
        StepFile::Host {
            path: format!("{LINUX_DIR}/initrd.img"),
            host: linux.initrd.clone(),
        },
        StepFile::Text {
            path: format!("{LINUX_DIR}/linux.cfg"),
            text: linux_cfg(LINUX_NAME, "vmlinuz", "initrd.img", LINUX_VCPUS, ""),
        },
    ]
}

/// Debian's kernel booted by rxl: /init, pause/unpause, reboot, shutdown.
pub fn linux_step(linux: &LinuxFiles) -> Step {
    let boot = format!(
        ". /e2e/lib.sh\n{}cd /tmp || exit 1\nboot_linux {LINUX_NAME} {LINUX_DIR}/linux.cfg\n",
        boot_linux_fn()
    );
    let pause = format!(
        r#". /e2e/lib.sh
rxl pause {LINUX_NAME} || exit 1
echo "paused=$(dom_state {LINUX_NAME})"
rxl list {LINUX_NAME}
rxl unpause {LINUX_NAME} || exit 1
echo "unpaused=$(dom_state {LINUX_NAME})"
"#
    );
    let reboot = format!(
        r#". /e2e/lib.sh
cd /tmp || exit 1
old=$(rxl domid {LINUX_NAME}) || exit 1
n0=$(console_count {LINUX_NAME} {LINUX_INIT_LINE})
t0=$(now_ms)
rxl reboot -w --timeout 120 {LINUX_NAME} || exit 1
i=0
until new=$(rxl domid {LINUX_NAME} 2>/dev/null) && [ "$new" != "$old" ]; do
    i=$((i + 1))
    [ $i -gt 150 ] && {{ echo "no new {LINUX_NAME} domain 30 s after the reboot"; exit 1; }}
    sleep 0.2
done
echo "old=$old new=$new"
# rxl knows the new domain before its name is in xenstore, where xl list reads it.
i=0
while [ "$(dom_state {LINUX_NAME})" = gone ]; do
    i=$((i + 1))
    [ $i -gt 150 ] && {{ echo "xl list never showed the new {LINUX_NAME}"; exit 1; }}
    sleep 0.2
done
wait_console {LINUX_NAME} {LINUX_INIT_LINE} $((n0 + 1)) {LINUX_BOOT_S}
r=$?
echo "wait=$r init_ms=$(( $(now_ms) - t0 ))"
grep -F {LINUX_INIT_LINE} /var/log/xen/console/guest-{LINUX_NAME}.log | tail -n 1
xl list {LINUX_NAME}
exit $r
"#
    );
    // `rxl console` on a fifo: a line typed reaches the guest (its answer comes back), and
    // Ctrl-] detaches with status 0.
    let console = format!(
        r#"rm -f /tmp/cin /tmp/cout
mkfifo /tmp/cin || exit 1
rxl console {LINUX_NAME} </tmp/cin >/tmp/cout 2>&1 &
pid=$!
exec 5>/tmp/cin
sleep 1
printf 'console check %s\n' $((6 * 7)) >&5
i=0
until grep -q "{CONSOLE_ECHO}" /tmp/cout; do
    i=$((i + 1))
    [ $i -gt 100 ] && {{ echo "no answer from the guest within 20 s"; break; }}
    sleep 0.2
done
printf '\035' >&5
i=0
while kill -0 $pid 2>/dev/null; do
    i=$((i + 1))
    [ $i -gt 25 ] && {{ echo "rxl console still attached 5 s after Ctrl-]"; kill $pid; break; }}
    sleep 0.2
done
wait $pid
echo "console_rc=$?"
exec 5>&-
echo "--- console output (last lines)"
tr -d '\r' </tmp/cout | tail -n 4
"#
    );
    let shutdown = format!(
        r#". /e2e/lib.sh
rxl shutdown -w --timeout 120 {LINUX_NAME}
rc=$?
echo "state=$(dom_state {LINUX_NAME})"
exit $rc
"#
    );
    Step {
        name: "rxl-linux",
        about: "rxl runs Debian's kernel as a 2-vCPU PVH guest: /init, pause/unpause, \
                reboot -w (new domid, /init again), shutdown -w (gone)",
        captures: vec![
            cap("boot", 2 * LINUX_BOOT_S + 60, &boot),
            cap("pause", 30, &pause),
            cap("console", 60, &console),
            cap("reboot", LINUX_BOOT_S + 160, &reboot),
            cap("shutdown", 150, &shutdown),
            cap("rxl-list-after", 30, "rxl list\n"),
        ],
        files: linux_files(linux),
        check: Box::new(check_linux),
        publish: None,
    }
}

/// The `RXL-LINUX-INIT` line in a capture, if any.
fn init_line(c: &super::Capture) -> Option<&str> {
    c.lines
        .iter()
        .find_map(|l| l.find(LINUX_INIT_LINE).map(|p| &l[p..]))
}

/// A `key=N` number anywhere in a capture.
fn number(c: &super::Capture, key: &str) -> Option<u64> {
    c.lines
        .iter()
        .find_map(|l| field(l, key))
        .and_then(|v| v.parse().ok())
}

fn check_linux(o: &Outcome<'_>) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let want_init = format!("{LINUX_INIT_LINE} cpus={LINUX_VCPUS} online=0-1");
    let boot = o.capture("boot").map_err(|e| vec![e])?;
    if boot.lines.iter().any(|l| l.starts_with("RETRY")) {
        notes.push("first boot died before /init, retried".to_owned());
    }
    match init_line(boot) {
        Some(l) if l.trim_end() == want_init => {}
        other => problems.push(format!(
            "boot: /init line is {other:?}, expected {want_init:?}"
        )),
    }
    if boot.rc != Some(0) {
        problems.push(format!(
            "boot exited with status {:?}: {}",
            boot.rc,
            excerpt(&boot.lines)
        ));
    }
    let first = number(boot, "domid");
    if let Some(ms) = number(boot, "init_ms") {
        notes.push(format!("/init {:.1} s after create", ms as f64 / 1000.0));
    }
    match o.succeeded("pause") {
        Ok(c) => {
            let state = |k: &str| {
                c.lines
                    .iter()
                    .find_map(|l| l.strip_prefix(k))
                    .map(str::trim)
            };
            match state("paused=") {
                Some(s) if s.as_bytes().get(2) == Some(&b'p') => {}
                other => problems.push(format!("paused state is {other:?}, expected --p---")),
            }
            match state("unpaused=") {
                Some(s) if s.len() == 6 && !s.contains('p') => {}
                other => problems.push(format!("state after unpause is {other:?}")),
            }
            match c.lines.iter().find(|l| l.starts_with(LINUX_NAME)) {
                Some(l)
                    if l.split_whitespace()
                        .nth(4)
                        .and_then(|s| s.as_bytes().get(2).copied())
                        == Some(b'p') => {}
                other => problems.push(format!("rxl list while paused shows {other:?}")),
            }
        }
        Err(e) => problems.push(e),
    }
    match o.succeeded("console") {
        Ok(c) => {
            let echoed = c.lines.iter().any(|l| l.trim() == CONSOLE_ECHO);
            let rc0 = c.lines.iter().any(|l| l.trim() == "console_rc=0");
            if !echoed || !rc0 {
                problems.push(format!(
                    "console: want the guest's {CONSOLE_ECHO:?} and console_rc=0 after \
                     Ctrl-]: {}",
                    excerpt(&c.lines)
                ));
            } else {
                notes.push("console: typed line answered, Ctrl-] detached".to_owned());
            }
        }
        Err(e) => problems.push(e),
    }
    match o.succeeded("reboot") {
        Ok(c) => {
            let new = number(c, "new");
            if new.is_none() || new == first {
                problems.push(format!(
                    "reboot: domid {new:?}, before it was {first:?}: {}",
                    excerpt(&c.lines)
                ));
            }
            match init_line(c) {
                Some(l) if l.trim_end() == want_init => {}
                other => problems.push(format!("reboot: /init line is {other:?}")),
            }
            match row(&c.text(), LINUX_NAME) {
                Some(r) if r.mem == LINUX_MEM && r.vcpus == LINUX_VCPUS => {}
                other => problems.push(format!("reboot: xl list row {other:?}")),
            }
            if let (Some(f), Some(n)) = (first, new) {
                notes.push(format!("reboot d{f} -> d{n}"));
            }
        }
        Err(e) => problems.push(e),
    }
    match o.succeeded("shutdown") {
        Ok(c) if c.lines.iter().any(|l| l.trim() == "state=gone") => {}
        Ok(c) => problems.push(format!(
            "shutdown -w returned but the domain is still there: {}",
            excerpt(&c.lines)
        )),
        Err(e) => problems.push(e),
    }
    match o.succeeded("rxl-list-after") {
        Ok(c) if row(&c.text(), LINUX_NAME).is_some() => {
            problems.push("rxl list still shows the guest after shutdown".into())
        }
        Ok(_) => {}
        Err(e) => problems.push(e),
    }
    if problems.is_empty() {
        Ok(format!("{want_init}; paused --p---; {}", notes.join("; ")))
    } else {
        problems.extend(notes.into_iter().map(|n| format!("note: {n}")));
        Err(problems)
    }
}

// ---------------------------------------------------------------------------------------
// failures

const KILLED_NAME: &str = "rxl-killed";

/// Refused creates leave no domain; a killed create leaves one rxl shows and removes.
pub fn failures_step(hello: &Path, linux: Option<&LinuxFiles>) -> Step {
    let refused = |cfg: &str| {
        format!(
            "xl list >/tmp/fail-before\nrxl create {cfg}\nrc=$?\necho \"== before\"\n\
             cat /tmp/fail-before\necho \"== after\"\nxl list\nexit $rc\n"
        )
    };
    let mut captures = vec![
        cap("big", 60, &refused("/e2e/fail/big.cfg")),
        cap("no-pvh-note", 60, &refused("/e2e/fail/nopvh.cfg")),
        cap("no-notes", 60, &refused("/e2e/fail/nonotes.cfg")),
    ];
    let mut files = vec![
        StepFile::Host {
            path: "/e2e/fail/hello".into(),
            host: hello.to_owned(),
        },
        StepFile::Text {
            path: "/e2e/fail/big.cfg".into(),
            text: "name = \"rxl-big\"\ntype = \"pvh\"\nkernel = \"hello\"\nmemory = 8192\n".into(),
        },
        StepFile::Bytes {
            path: "/e2e/fail/nonotes.elf".into(),
            data: noteless_elf(),
        },
        StepFile::Text {
            path: "/e2e/fail/nonotes.cfg".into(),
            text: "name = \"rxl-nonotes\"\ntype = \"pvh\"\nkernel = \"nonotes.elf\"\nmemory = 32\n"
                .into(),
        },
        StepFile::Text {
            path: "/e2e/fail/nopvh.cfg".into(),
            text: "name = \"rxl-nopvh\"\ntype = \"pvh\"\nkernel = \"/bin/busybox\"\nmemory = 32\n"
                .into(),
        },
    ];
    if linux.is_some() {
        files.push(StepFile::Text {
            path: "/e2e/fail/killed.cfg".into(),
            text: linux_cfg(
                KILLED_NAME,
                &format!("{LINUX_DIR}/vmlinuz"),
                &format!("{LINUX_DIR}/initrd.img"),
                LINUX_VCPUS,
                "",
            ),
        });
        let kill = r#"ids() { xl list | awk 'NR > 1 { print $(NF - 4) }'; }
before=$(ids)
rxl create /e2e/fail/killed.cfg >/tmp/killed.out 2>&1 &
pid=$!
new=
i=0
while [ -z "$new" ]; do
    for id in $(ids); do
        case " $(echo $before) " in *" $id "*) ;; *) new=$id ;; esac
    done
    [ -n "$new" ] && break
    i=$((i + 1))
    if [ $i -gt 600 ] || ! kill -0 $pid 2>/dev/null; then
        echo "no new domain appeared while rxl create ran"; cat /tmp/killed.out; exit 1
    fi
    sleep 0.05
done
kill -9 $pid
wait $pid 2>/dev/null
echo "killed rxl create (pid $pid) with domain $new present"
echo "new=$new"
echo "$new" >/tmp/killed-id
"#;
        captures.push(cap("kill", 120, kill));
        captures.push(cap("rxl-list", 30, "rxl list\n"));
        captures.push(cap("rxl-list-json", 30, "rxl list --json\n"));
        captures.push(cap(
            "destroy",
            60,
            "id=$(cat /tmp/killed-id) || exit 1\n\
             echo \"destroying $id\"\nrxl destroy \"$id\"\nrc=$?\necho \"== after\"\nxl list\nexit $rc\n",
        ));
    }
    Step {
        name: "failures",
        about: "too much memory and a kernel without the PVH note are refused with no domain \
                left; a create killed mid-way is listed as incomplete and rxl destroy removes it",
        captures,
        files,
        check: Box::new(check_failures),
        publish: None,
    }
}

/// A minimal 32-bit ELF executable with one loadable segment (`hlt` in a loop at 1 MiB)
/// and no notes at all: a kernel without a PVH entry point.
pub fn noteless_elf() -> Vec<u8> {
    const CODE: [u8; 3] = [0xf4, 0xeb, 0xfd];
    const EHSIZE: u16 = 52;
    const PHSIZE: u16 = 32;
    let base = 0x0010_0000_u32;
    let filesz = u32::from(EHSIZE + PHSIZE) + CODE.len() as u32;
    let mut e = vec![0x7f, b'E', b'L', b'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let put16 = |e: &mut Vec<u8>, v: u16| e.extend_from_slice(&v.to_le_bytes());
    put16(&mut e, 2); // ET_EXEC
    put16(&mut e, 3); // EM_386
    e.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    e.extend_from_slice(&(base + u32::from(EHSIZE + PHSIZE)).to_le_bytes()); // entry
    e.extend_from_slice(&u32::from(EHSIZE).to_le_bytes()); // phoff
    e.extend_from_slice(&0u32.to_le_bytes()); // shoff
    e.extend_from_slice(&0u32.to_le_bytes()); // flags
    for v in [EHSIZE, PHSIZE, 1, 40, 0, 0] {
        put16(&mut e, v); // ehsize, phentsize, phnum, shentsize, shnum, shstrndx
    }
    for v in [1, 0, base, base, filesz, filesz, 5, 0x1000] {
        e.extend_from_slice(&v.to_le_bytes()); // PT_LOAD, R+X
    }
    e.extend_from_slice(&CODE);
    e
}

/// The lines of a refused create's capture: (create output, xl list before, xl list after).
fn split_refused(c: &super::Capture) -> (String, String, String) {
    let (mut out, mut before, mut after) = (String::new(), String::new(), String::new());
    let mut part = 0;
    for l in &c.lines {
        match l.trim() {
            "== before" => part = 1,
            "== after" => part = 2,
            _ => {
                let dst = match part {
                    0 => &mut out,
                    1 => &mut before,
                    _ => &mut after,
                };
                dst.push_str(l);
                dst.push('\n');
            }
        }
    }
    (out, before, after)
}

fn ids(text: &str) -> Vec<u32> {
    compare::parse_list(text)
        .map(|rows| rows.iter().map(|r| r.id).collect())
        .unwrap_or_default()
}

fn check_failures(o: &Outcome<'_>) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    // (capture, text the error must contain)
    for (name, needle) in [
        ("big", None),
        // busybox: GNU notes in an 8-byte aligned PT_NOTE segment, no Xen notes.
        ("no-pvh-note", Some("PHYS32_ENTRY")),
        ("no-notes", Some("PHYS32_ENTRY")),
    ] {
        let c = match o.capture(name) {
            Ok(c) => c,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let (out, before, after) = split_refused(c);
        if c.rc != Some(1) {
            problems.push(format!(
                "{name}: rxl create exited with {:?}, expected 1: {}",
                c.rc,
                out.trim()
            ));
        }
        if let Some(n) = needle {
            if !out.contains(n) {
                problems.push(format!(
                    "{name}: the error does not name {n}: {}",
                    out.trim()
                ));
            }
        }
        let (b, a) = (ids(&before), ids(&after));
        if b.is_empty() || a != b {
            problems.push(format!(
                "{name}: xl list domain ids changed from {b:?} to {a:?}"
            ));
        }
        let first = out.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        notes.push(format!("{name}: exit 1 \"{}\"", first.trim()));
    }
    if let Ok(k) = o.capture("kill") {
        let new = number(k, "new");
        if k.rc != Some(0) || new.is_none() {
            problems.push(format!("kill: {}", excerpt(&k.lines)));
        }
        match o.succeeded("rxl-list") {
            Ok(c) => {
                let shown = c
                    .lines
                    .iter()
                    .any(|l| l.contains("(incomplete)") && new.is_some_and(|n| has_id(l, n)));
                if !shown {
                    problems.push(format!(
                        "rxl list shows no incomplete row for domain {new:?}: {}",
                        excerpt(&c.lines)
                    ));
                }
            }
            Err(e) => problems.push(e),
        }
        match o.succeeded("rxl-list-json") {
            Ok(c) => {
                let v: Value = serde_json::from_str(&c.text()).unwrap_or(Value::Null);
                let flagged = v.as_array().is_some_and(|a| {
                    a.iter()
                        .any(|d| d["domid"].as_u64() == new && d["incomplete"] == Value::Bool(true))
                });
                if !flagged {
                    problems.push(format!(
                        "rxl list --json has no \"incomplete\": true entry for domain {new:?}"
                    ));
                }
            }
            Err(e) => problems.push(e),
        }
        match o.capture("destroy") {
            Ok(c) => {
                let (_, _, after) = split_refused(c);
                if c.rc != Some(0) {
                    problems.push(format!(
                        "rxl destroy of the incomplete domain: {}",
                        excerpt(&c.lines)
                    ));
                }
                if new.is_some_and(|n| ids(&after).contains(&(n as u32))) {
                    problems.push(format!(
                        "domain {new:?} is still in xl list after rxl destroy"
                    ));
                }
            }
            Err(e) => problems.push(e),
        }
        notes.push(format!(
            "killed create left d{} (incomplete), destroyed",
            new.unwrap_or(0)
        ));
    }
    if problems.is_empty() {
        Ok(notes.join("; "))
    } else {
        Err(problems)
    }
}

/// Whether an `rxl list` line has `id` as its ID column (or anywhere as a word).
fn has_id(line: &str, id: u64) -> bool {
    let id = id.to_string();
    line.split_whitespace().any(|w| w == id)
}

// ---------------------------------------------------------------------------------------
// pvgrub

const GRUB_NAME: &str = "rxl-grub";

/// Where GRUB for PVH lives in the unpacked tree and in dom0 (rxl's firmware search path).
pub const PVGRUB_PATH: &str = "/usr/lib/grub-xen/grub-i386-xen_pvh.bin";

/// `firmware = "pvgrub"`: GRUB starts and writes its banner or prompt to the PV console.
pub fn pvgrub_step(grub: &Path) -> Step {
    let cfg = format!(
        "# GRUB for PVH as the guest's firmware; no disk, so it stops at its prompt.\n\
         name = \"{GRUB_NAME}\"\ntype = \"pvh\"\nmemory = 128\nfirmware = \"pvgrub\"\n"
    );
    let script = format!(
        r#". /e2e/lib.sh
cd /tmp || exit 1
log=/var/log/xen/console/guest-{GRUB_NAME}.log
t0=$(now_ms)
rxl create /e2e/grub/grub.cfg || exit 1
i=0
until grep -a -q -E 'GRUB|grub>' "$log" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 600 ]; then echo "no GRUB output after 120 s (state $(dom_state {GRUB_NAME}))"; break; fi
    case $(dom_state {GRUB_NAME}) in gone|*c*) echo "{GRUB_NAME} died: $(dom_state {GRUB_NAME})"; break ;; esac
    sleep 0.2
done
echo "grub_ms=$(( $(now_ms) - t0 ))"
echo "== console"
tr -d '\033\r' <"$log" | grep -a -o -E '[A-Za-z !]*GRUB[A-Za-z0-9 .!~]*|grub>' | head -n 5
echo "== end"
rxl destroy {GRUB_NAME}
rc=$?
echo "state=$(dom_state {GRUB_NAME})"
exit $rc
"#
    );
    Step {
        name: "pvgrub",
        about: "firmware = \"pvgrub\" boots Debian's GRUB for PVH: its banner or prompt \
                reaches the guest console; rxl destroy removes it",
        captures: vec![cap("grub", 180, &script)],
        files: vec![
            StepFile::Host {
                path: PVGRUB_PATH.into(),
                host: grub.to_owned(),
            },
            StepFile::Text {
                path: "/e2e/grub/grub.cfg".into(),
                text: cfg,
            },
        ],
        check: Box::new(check_pvgrub),
        publish: None,
    }
}

fn check_pvgrub(o: &Outcome<'_>) -> Result<String, Vec<String>> {
    let c = o.succeeded("grub").map_err(|e| vec![e])?;
    let mut problems = Vec::new();
    let console: Vec<&str> = c
        .lines
        .iter()
        .skip_while(|l| l.trim() != "== console")
        .skip(1)
        .take_while(|l| l.trim() != "== end")
        .map(String::as_str)
        .collect();
    let seen = console
        .iter()
        .find(|l| l.contains("GRUB") || l.contains("grub>"));
    if seen.is_none() {
        problems.push(format!(
            "no GRUB banner or prompt on the console: {}",
            excerpt(&c.lines)
        ));
    }
    if !c.lines.iter().any(|l| l.trim() == "state=gone") {
        problems.push("rxl destroy left the GRUB guest listed".into());
    }
    if problems.is_empty() {
        Ok(format!(
            "console shows {:?} after {:.1} s; destroyed",
            seen.map(|l| l.trim()).unwrap_or(""),
            number(c, "grub_ms").unwrap_or(0) as f64 / 1000.0
        ))
    } else {
        Err(problems)
    }
}

// ---------------------------------------------------------------------------------------
// side by side

/// Runs of each tool with the hello guest whose medians make the table.
const HELLO_RUNS: u32 = 5;
/// Runs of each tool with the Linux guest (each takes half a minute or more under TCG).
const LINUX_RUNS: u32 = 5;
/// Attempts beyond the runs that each tool may spend on runs that failed (the emulation's
/// rare faults kill a Linux guest or a dom0 tool now and then, see docs/e2e.md).
const HELLO_SPARE: u32 = 2;
const LINUX_SPARE: u32 = 5;
/// Seconds between timed runs (not timed), so that the next create does not meet the last
/// domain's teardown.
const SETTLE_S: u32 = 3;
/// How long a timed Linux run waits for /init (the slowest seen: 48 s, an xl run).
const TIMED_INIT_S: u32 = 100;
/// The longest one create, list or destroy of a timed run may take before it is killed.
const TIMED_CMD_S: u32 = 150;

/// How many timed runs each tool gets with `guest`.
fn runs_of(guest: &str) -> u32 {
    if guest == "linux" {
        LINUX_RUNS
    } else {
        HELLO_RUNS
    }
}

/// The heading of the section of docs/benchmarks.md that the side-by-side step writes.
pub const BENCH_HEADING: &str = "## Real Xen: rxl and xl side by side";

fn sbs_hello_cfg(name: &str) -> String {
    format!(
        "name = \"{name}\"\ntype = \"pvh\"\nkernel = \"/e2e/guests/hello\"\n\
         cmdline = \"{}\"\nmemory = 32\nvcpus = 1\non_poweroff = \"preserve\"\n\
         on_crash = \"preserve\"\n",
        super::HELLO_CMDLINE
    )
}

/// The same configs created with xl and with rxl: both list each other's domains, and the
/// create, list and destroy times (and, for Linux, create to /init) of each.
pub fn side_by_side_step(linux: bool, doc: Option<PathBuf>) -> Step {
    let mut files = Vec::new();
    let mut guests = vec!["hello"];
    for tool in ["xl", "rxl"] {
        files.push(StepFile::Text {
            path: format!("/e2e/sbs/hello-{tool}.cfg"),
            text: sbs_hello_cfg(&format!("sbs-hello-{tool}")),
        });
        if linux {
            files.push(StepFile::Text {
                path: format!("/e2e/sbs/linux-{tool}.cfg"),
                // A guest that triple-faults under the emulation shuts down as "reboot":
                // with the default on_reboot the tool would build it again under the same
                // name while the next attempt starts. Here such a run has failed, and goes.
                text: linux_cfg(
                    &format!("sbs-linux-{tool}"),
                    &format!("{LINUX_DIR}/vmlinuz"),
                    &format!("{LINUX_DIR}/initrd.img"),
                    TIMED_LINUX_VCPUS,
                    "on_reboot = \"destroy\"\n",
                ),
            });
        }
    }
    if linux {
        guests.push("linux");
    }
    let guests_sh = guests.join(" ");
    let together = format!(
        r#"for g in {guests_sh}; do
    # Paused, so that the State letters cannot change between the two listings.
    xl create -p /e2e/sbs/$g-xl.cfg >/dev/null 2>&1 || {{ echo "xl create $g failed"; exit 1; }}
    rxl create -p /e2e/sbs/$g-rxl.cfg >/dev/null || {{ echo "rxl create $g failed"; exit 1; }}
done
"#
    );
    // Each tool destroys the other's domains; neither may leave xenstore nodes behind.
    let destroy_all = format!(
        r#"rc=0
ids=
for g in {guests_sh}; do
    for t in xl rxl; do ids="$ids $(xl domid sbs-$g-$t)"; done
done
for g in {guests_sh}; do
    rxl destroy sbs-$g-xl || {{ echo "rxl destroy sbs-$g-xl failed"; rc=1; }}
    xl destroy sbs-$g-rxl || {{ echo "xl destroy sbs-$g-rxl failed"; rc=1; }}
done
sleep 1
for d in $ids; do
    for p in /local/domain/$d /libxl/$d /local/domain/0/backend/console/$d; do
        xenstore-exists $p 2>/dev/null && echo "LEFT $p"
    done
done
xl list
exit $rc
"#
    );
    let timed = format!(
        r#". /e2e/lib.sh
cd /tmp || exit 1
one() {{ # TOOL GUEST ATTEMPT
    name=sbs-$2-$1
    note "run $3 of $1 $2"
    n0=$(console_count $name {LINUX_INIT_LINE})
    t0=$(now_ms)
    timeout {TIMED_CMD_S} $1 create /e2e/sbs/$2-$1.cfg >/tmp/sbs.out 2>&1 || {{
        echo "run $3 of $1 $2: create failed: $(tail -n 2 /tmp/sbs.out | tr '\n' ' ')"
        return 3
    }}
    t1=$(now_ms)
    timeout 30 $1 list >/dev/null || {{ echo "run $3 of $1 $2: list failed"; return 3; }}
    t2=$(now_ms)
    note "run $3 of $1 $2 created"
    init=
    if [ $2 = linux ]; then
        wait_console $name {LINUX_INIT_LINE} $((n0 + 1)) {TIMED_INIT_S}
        r=$?
        if [ $r != 0 ]; then
            echo "run $3 of $1 $2: no /init (wait=$r, state $(dom_state $name)); Xen: $(xl dmesg | grep -v '^(XEN) \*\*\*' | tail -n 2 | tr '\n' ' ')"
            tail -n 8 /var/log/xen/console/guest-$name.log 2>/dev/null
            return $r
        fi
        init=$(( $(now_ms) - t0 ))
        note "run $3 of $1 $2 reached /init"
    fi
    t3=$(now_ms)
    timeout 60 $1 destroy $name || {{ echo "run $3 of $1 $2: destroy failed"; return 3; }}
    t4=$(now_ms)
    echo "T tool=$1 guest=$2 run=$3 create_ms=$((t1 - t0)) list_ms=$((t2 - t1)) destroy_ms=$((t4 - t3)) init_ms=${{init:--}}"
    note "run $3 of $1 $2 done in $((t4 - t0)) ms"
    # Untimed: let Xen finish tearing the domain down before the next create.
    sleep ${{RXL_SETTLE_S:-{SETTLE_S}}}
}}
# Each tool gets N good runs of each guest, the two tools taking turns, with a few spare
# attempts for runs that fail; a failed run is named, its domain removed, and not timed.
for g in {guests_sh}; do
    n={HELLO_RUNS}; spare={HELLO_SPARE}
    [ $g = linux ] && {{ n={LINUX_RUNS}; spare={LINUX_SPARE}; }}
    ok_xl=0; ok_rxl=0
    for attempt in $(seq 1 $((n + spare))); do
        for tool in xl rxl; do
            eval ok=\$ok_$tool
            [ $ok -ge $n ] && continue
            if one $tool $g $attempt; then
                eval ok_$tool=$((ok + 1))
            else
                echo "RETRY $tool $g after attempt $attempt"
                timeout 60 $tool destroy sbs-$g-$tool >/dev/null 2>&1
                timeout 60 xl destroy sbs-$g-$tool >/dev/null 2>&1
            fi
        done
    done
    for tool in xl rxl; do
        eval ok=\$ok_$tool
        [ $ok -lt $n ] && echo "FAILED $tool $g: $ok good runs of $n in $((n + spare)) attempts"
    done
done
# The host counts the runs.
exit 0
"#
    );
    Step {
        name: "side-by-side",
        about: "the same configs created with xl and rxl in one boot: xl list and rxl list agree \
                about all of them, each tool destroys the other's cleanly; create/list/destroy \
                (and create to /init) medians",
        captures: vec![
            cap("create-both", 120, &together),
            cap("xl-list", 30, "xl list\n"),
            cap("rxl-list", 30, "rxl list\n"),
            cap("rxl-list-json", 30, "rxl list --json\n"),
            cap("destroy-both", 60, &destroy_all),
            CaptureSpec {
                // Notes at every phase of a run: a hang is seen within minutes.
                quiet_s: Some(TIMED_CMD_S + 10),
                ..cap(
                    "timed",
                    // Well inside one boot's QEMU timeout (1500 s) after the earlier
                    // steps; normally six or seven minutes.
                    if linux { 1100 } else { 300 },
                    &timed,
                )
            },
        ],
        files,
        check: Box::new(move |o| check_side_by_side(o, &guests)),
        publish: Some(Box::new(move |o| publish_side_by_side(o, doc.as_deref()))),
    }
}

/// Median of some milliseconds (the upper middle one for an even count).
fn median(mut v: Vec<u64>) -> Option<u64> {
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

/// Timings of one (tool, guest) pair, in milliseconds.
#[derive(Debug, Default, Clone)]
struct Timed {
    create: Vec<u64>,
    list: Vec<u64>,
    destroy: Vec<u64>,
    init: Vec<u64>,
}

fn parse_timed(lines: &[String]) -> std::collections::BTreeMap<(String, String), Timed> {
    let mut out: std::collections::BTreeMap<(String, String), Timed> = Default::default();
    for l in lines.iter().filter(|l| l.starts_with("T ")) {
        let (Some(tool), Some(guest)) = (field(l, "tool"), field(l, "guest")) else {
            continue;
        };
        let t = out.entry((guest.to_owned(), tool.to_owned())).or_default();
        let num = |k: &str| field(l, k).and_then(|v| v.parse::<u64>().ok());
        if let (Some(c), Some(li), Some(d)) = (num("create_ms"), num("list_ms"), num("destroy_ms"))
        {
            t.create.push(c);
            t.list.push(li);
            t.destroy.push(d);
        }
        if let Some(i) = num("init_ms") {
            t.init.push(i);
        }
    }
    out
}

/// How many timed attempts failed and were run again.
fn failed_attempts(lines: &[String]) -> usize {
    lines.iter().filter(|l| l.starts_with("RETRY")).count()
}

fn secs(ms: Option<u64>) -> String {
    ms.map_or("-".into(), |m| format!("{:.2} s", m as f64 / 1000.0))
}

fn check_side_by_side(o: &Outcome<'_>, guests: &[&str]) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    if let Err(e) = o.succeeded("create-both") {
        problems.push(e);
    }
    if let Some((xl, Some(rxl))) = compare_lists(o, &mut problems) {
        for g in guests {
            for tool in ["xl", "rxl"] {
                let name = format!("sbs-{g}-{tool}");
                for (who, text) in [("xl", &xl), ("rxl", &rxl)] {
                    if row(text, &name).is_none() {
                        problems.push(format!("{who} list has no {name} (created by {tool})"));
                    }
                }
            }
        }
    }
    match o.succeeded("destroy-both") {
        Ok(c) => {
            if c.lines.iter().any(|l| l.starts_with("sbs-")) {
                problems.push(format!("domains left after destroy: {}", excerpt(&c.lines)));
            }
            let left: Vec<&str> = c
                .lines
                .iter()
                .filter_map(|l| l.strip_prefix("LEFT "))
                .collect();
            if !left.is_empty() {
                problems.push(format!(
                    "xenstore nodes left after each tool destroyed the other's domains: {}",
                    left.join(", ")
                ));
            }
        }
        Err(e) => problems.push(e),
    }
    let timed = match o.succeeded("timed") {
        Ok(c) => c,
        Err(e) => {
            problems.push(e);
            return Err(problems);
        }
    };
    let runs = parse_timed(&timed.lines);
    let retries = failed_attempts(&timed.lines);
    let failed: Vec<&str> = timed
        .lines
        .iter()
        .filter_map(|l| l.strip_prefix("FAILED "))
        .collect();
    problems.extend(failed.iter().map(|f| format!("timed runs: {f}")));
    for g in guests {
        for tool in ["xl", "rxl"] {
            let n = runs
                .get(&((*g).to_owned(), tool.to_owned()))
                .map_or(0, |t| t.create.len());
            let want = runs_of(g);
            if n != want as usize {
                problems.push(format!("{tool} {g}: {n} timed runs, expected {want}"));
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(format!(
        "xl list and rxl list agree about {} domains of both tools; {} timed runs{}{}",
        guests.len() * 2,
        runs.values().map(|t| t.create.len()).sum::<usize>(),
        if retries > 0 {
            format!(" ({retries} failed and were run again)")
        } else {
            String::new()
        },
        {
            // Why runs failed, even when the step passes: the emulation's rare faults are
            // worth seeing.
            let why: Vec<&str> = timed
                .lines
                .iter()
                .filter(|l| l.starts_with("run ") && l.contains(": "))
                .map(String::as_str)
                .take(4)
                .collect();
            if why.is_empty() {
                String::new()
            } else {
                format!(" [{}]", why.join(" | "))
            }
        }
    ))
}

/// After the verdict: the table of medians, printed and written into docs/benchmarks.md.
fn publish_side_by_side(o: &Outcome<'_>, doc: Option<&Path>) -> Result<String, String> {
    let timed = o.succeeded("timed")?;
    let runs = parse_timed(&timed.lines);
    let retries = failed_attempts(&timed.lines);
    let table = bench_table(&runs);
    if let Some(doc) = doc {
        write_bench_section(doc, &table, retries)
            .map_err(|e| format!("writing {}: {e}", doc.display()))?;
    }
    Ok(format!(
        "== side by side: medians of {HELLO_RUNS} (hello) and {LINUX_RUNS} (linux) runs \
         (QEMU TCG, 2 cores) ==\n{table}"
    ))
}

/// The Markdown table of medians.
fn bench_table(runs: &std::collections::BTreeMap<(String, String), Timed>) -> String {
    let mut s = String::from(
        "| guest | tool | create | list | destroy | create to /init |\n|---|---|---|---|---|---|\n",
    );
    for ((guest, tool), t) in runs {
        let _ = writeln!(
            s,
            "| {guest} | {tool} | {} | {} | {} | {} |",
            secs(median(t.create.clone())),
            secs(median(t.list.clone())),
            secs(median(t.destroy.clone())),
            secs(median(t.init.clone()))
        );
    }
    s
}

/// Replaces (or appends) the side-by-side section at the end of docs/benchmarks.md; the rest
/// of the file is kept byte for byte.
fn write_bench_section(doc: &Path, table: &str, retries: usize) -> std::io::Result<()> {
    let old = std::fs::read_to_string(doc).unwrap_or_default();
    let section = bench_section(table, retries, &today());
    std::fs::write(doc, replace_section(&old, &section))
}

fn bench_section(table: &str, retries: usize, date: &str) -> String {
    format!(
        "{BENCH_HEADING}\n\n\
         Written by `cargo xtask e2e` (step `side-by-side`) on {date}: real Xen 4.17 under QEMU \
         TCG, 2 cores, so these are emulated-hardware figures, useful to compare xl with rxl in \
         the same boot, not as absolute speeds. Medians of {HELLO_RUNS} runs (hello) and \
         {LINUX_RUNS} runs (linux) of each tool, timed in dom0 from \
         /proc/uptime (10 ms resolution). `hello` is the assembly PVH test guest (32 MiB, 1 \
         vCPU); `linux` is Debian's kernel with a busybox initramfs (256 MiB, \
         {TIMED_LINUX_VCPUS} vCPU: under this emulation 2-vCPU guests have hung the whole \
         machine now and then; see docs/e2e.md), timed \
         from the start of `create` until its /init line reaches xenconsoled's log. `list` is \
         one `xl list` or `rxl list` with the guest present.{}\n\n{table}",
        if retries > 0 {
            format!(" {retries} run(s) failed (named in the step's verdict) and were run again.")
        } else {
            String::new()
        }
    )
}

/// `old` with the section under [`BENCH_HEADING`] (up to the next `## ` heading or the end)
/// replaced by `section`, or `section` appended.
fn replace_section(old: &str, section: &str) -> String {
    let Some(start) = old.find(BENCH_HEADING) else {
        let mut s = old.trim_end().to_owned();
        if !s.is_empty() {
            s.push_str("\n\n");
        }
        s.push_str(section);
        return s;
    };
    let after = start + BENCH_HEADING.len();
    let end = old[after..]
        .find("\n## ")
        .map_or(old.len(), |p| after + p + 1);
    let mut s = old[..start].to_owned();
    s.push_str(section);
    if end < old.len() {
        s.push('\n');
        s.push_str(&old[end..]);
    }
    s
}

/// Today's date (UTC) as YYYY-MM-DD.
fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::markers;

    #[test]
    fn fnv1a32_matches_known_vectors() {
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }

    fn plan() -> Value {
        serde_json::json!({"layout": {
            "modules": [{"paddr": 0x20_0000, "size": 5003, "cmdline": null},
                        {"paddr": 0x20_2000, "size": 777, "cmdline": "mod-b opt=1 two words"}],
            "memmap": [{"addr": 0, "size": 0x200_0000, "type": "ram"},
                       {"addr": 0xfc00_0000_u64, "size": 0x1000, "type": "reserved"}],
            "rsdp": 0xfc00_0000_u64}})
    }

    fn good_lines(mods: &[TestModule]) -> Vec<String> {
        let mut l = vec![
            "RXLTEST magic=0x336ec578 version=1".to_owned(),
            format!("RXLTEST cmdline={RXL_HELLO_CMDLINE}"),
            "RXLTEST modules=2".to_owned(),
        ];
        for (i, (m, p)) in mods.iter().zip([0x20_0000, 0x20_2000]).enumerate() {
            l.push(format!(
                "RXLTEST module {i} paddr=0x{p:016x} size=0x{:016x} sum=0x{:08x} cmdline={}",
                m.data.len(),
                fnv1a32(&m.data),
                m.cmdline.unwrap_or("(none)")
            ));
        }
        l.extend([
            "RXLTEST memmap_entries=2".to_owned(),
            "RXLTEST memmap 0 addr=0x0000000000000000 size=0x0000000002000000 type=1".to_owned(),
            "RXLTEST memmap 1 addr=0x00000000fc000000 size=0x0000000000001000 type=2".to_owned(),
            "RXLTEST rsdp=0x00000000fc000000 sig=RSD PTR".to_owned(),
            "RXLTEST madt lapics=2 enabled=2".to_owned(),
            "RXLTEST done".to_owned(),
        ]);
        l
    }

    #[test]
    fn rxl_hello_lines_are_checked_against_plan_and_files() {
        let mods = test_modules();
        let good = good_lines(&mods);
        assert_eq!(guest_problems(&good, &plan(), &mods), Vec::<String>::new());
        // A wrong sum, a missing memmap entry, one lapic: each is named.
        let bad: Vec<String> = good
            .iter()
            .filter(|l| !l.contains("memmap 1"))
            .map(|l| {
                if l.contains("module 1") {
                    l.replace("sum=0x", "sum=0x1")
                } else {
                    l.replace("lapics=2 enabled=2", "lapics=1 enabled=1")
                }
            })
            .collect();
        let p = guest_problems(&bad, &plan(), &mods);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("module 1") && p[0].contains("sum"), "{p:?}");
        assert!(p[1].contains("memmap"), "{p:?}");
        assert!(p[2].contains("lapics=2"), "{p:?}");
    }

    #[test]
    fn the_hello_config_names_modules_relative_to_itself() {
        let cfg = rxl_hello_cfg(&test_modules());
        assert!(cfg.contains("kernel = \"../bin/hello\""), "{cfg}");
        assert!(
            cfg.contains(
                "modules = [ \"mod-a.bin\", [ \"../data/mod-b.bin\", \"mod-b opt=1 two words\" ] ]"
            ),
            "{cfg}"
        );
    }

    #[test]
    fn failures_need_exit_1_and_an_unchanged_list() {
        let list = format!("{}\nDomain-0 0 1024 1 r----- 3.0\n", compare::LIST_HEADER);
        let grown = format!("{list}rxl-big 5 8192 1 --p--- 0.0\n");
        let results = |big_rc: i32, after: &str| {
            format!(
                "@@RXL-BEGIN failures/big\nrxl: not enough memory\n== before\n{list}== after\n\
                 {after}@@RXL-END failures/big rc={big_rc}\n\
                 @@RXL-BEGIN failures/no-pvh-note\nrxl: this kernel has no XEN_ELFNOTE_PHYS32_ENTRY\n== before\n{list}\
                 == after\n{list}@@RXL-END failures/no-pvh-note rc=1\n\
                 @@RXL-BEGIN failures/no-notes\nrxl: no PHYS32_ENTRY note\n== before\n{list}\
                 == after\n{list}@@RXL-END failures/no-notes rc=1\n"
            )
        };
        let check = |text: String| {
            let report = markers::parse(&text);
            check_failures(&Outcome {
                step: "failures",
                report: &report,
                console: "",
            })
        };
        let ok = check(results(1, &list)).unwrap();
        assert!(ok.contains("no-notes: exit 1"), "{ok}");
        assert!(ok.contains("no-pvh-note: exit 1"), "{ok}");
        let err = check(results(0, &grown)).unwrap_err();
        assert_eq!(err.len(), 2, "{err:?}");
        assert!(err[1].contains("[0, 5]"), "{err:?}");
    }

    #[test]
    fn linux_check_wants_init_pause_and_a_new_domid() {
        let xl_row = format!("{}\nrxl-linux 7 256 2 -b---- 1.0\n", compare::LIST_HEADER);
        let with_console = |new: u32, console: &str| {
            format!(
                "@@RXL-BEGIN rxl-linux/boot\ncreate_ms=9000 init_ms=30000 wait=0\ndomid=6\n\
                 RXL-LINUX-INIT cpus=2 online=0-1\n@@RXL-END rxl-linux/boot rc=0\n\
                 @@RXL-BEGIN rxl-linux/pause\npaused=--p---\nrxl-linux 6 256 2 --p--- 1.0\n\
                 unpaused=-b----\n@@RXL-END rxl-linux/pause rc=0\n\
                 @@RXL-BEGIN rxl-linux/console\n{console}@@RXL-END rxl-linux/console rc=0\n\
                 @@RXL-BEGIN rxl-linux/reboot\nold=6 new={new}\nwait=0 init_ms=1\n\
                 RXL-LINUX-INIT cpus=2 online=0-1\n{xl_row}@@RXL-END rxl-linux/reboot rc=0\n\
                 @@RXL-BEGIN rxl-linux/shutdown\nstate=gone\n@@RXL-END rxl-linux/shutdown rc=0\n\
                 @@RXL-BEGIN rxl-linux/rxl-list-after\n{}\nDomain-0 0 1024 1 r----- 3.0\n\
                 @@RXL-END rxl-linux/rxl-list-after rc=0\n",
                compare::LIST_HEADER
            )
        };
        let good_console =
            format!("console_rc=0\n--- console output (last lines)\n{CONSOLE_ECHO}\n");
        let results = |new: u32| with_console(new, &good_console);
        let check = |text: String| {
            let report = markers::parse(&text);
            check_linux(&Outcome {
                step: "rxl-linux",
                report: &report,
                console: "",
            })
        };
        let ok = check(results(7)).unwrap();
        assert!(ok.contains("reboot d6 -> d7"), "{ok}");
        assert!(ok.contains("typed line answered"), "{ok}");
        let err = check(results(6)).unwrap_err();
        assert!(err[0].contains("reboot: domid"), "{err:?}");
        // No answer from the guest, or rxl console not ending on Ctrl-].
        let err = check(with_console(
            7,
            "no answer from the guest within 20 s\nconsole_rc=0\n",
        ))
        .unwrap_err();
        assert!(err[0].starts_with("console:"), "{err:?}");
        let err = check(with_console(
            7,
            &format!("{CONSOLE_ECHO}\nconsole_rc=143\n"),
        ))
        .unwrap_err();
        assert!(err[0].starts_with("console:"), "{err:?}");
    }

    #[test]
    fn medians_and_the_bench_section() {
        assert_eq!(median(vec![5, 1, 3]), Some(3));
        assert_eq!(median(Vec::new()), None);
        let lines: Vec<String> = [
            "T tool=xl guest=hello run=1 create_ms=300 list_ms=20 destroy_ms=100 init_ms=-",
            "T tool=xl guest=hello run=2 create_ms=100 list_ms=40 destroy_ms=300 init_ms=-",
            "T tool=xl guest=hello run=3 create_ms=200 list_ms=30 destroy_ms=200 init_ms=-",
            "noise",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let runs = parse_timed(&lines);
        let table = bench_table(&runs);
        assert!(
            table.contains("| hello | xl | 0.20 s | 0.03 s | 0.20 s | - |"),
            "{table}"
        );
        let section = bench_section(&table, 0, "2026-12-01");
        let doc = "# Benchmarks\n\n## Other\n\ntext\n";
        let once = replace_section(doc, &section);
        assert!(
            once.starts_with(doc.trim_end()) && once.ends_with(&section),
            "{once}"
        );
        // Rewriting replaces the section only, and keeps a section that follows it.
        let twice = replace_section(
            &format!("{once}\n## Later\n\nkept\n"),
            "## Real Xen: rxl and xl side by side\n\nnew\n",
        );
        assert!(
            twice.contains("## Other\n\ntext") && twice.contains("new\n\n## Later\n\nkept"),
            "{twice}"
        );
        assert!(!twice.contains("0.20 s"), "{twice}");
        assert_eq!(today().len(), 10);
    }
}

#[cfg(test)]
mod script_tests {
    use super::*;

    /// Runs the side-by-side `timed` snippet with fake `xl` and `rxl` commands whose
    /// `create` fails on the attempts listed in `$FAIL_<tool>` (space-separated counts of
    /// that tool's creates, or "all"); returns the output and how many creates each made.
    fn run_timed(fail_xl: &str, fail_rxl: &str) -> (Vec<String>, usize, usize) {
        let step = side_by_side_step(true, None);
        let timed = step.captures.iter().find(|c| c.name == "timed").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for tool in ["xl", "rxl"] {
            let fake = format!(
                "#!/bin/sh\nd={}\ncase $1 in\ncreate)\n  echo x >>$d/{tool}.creates\n  \
                 n=$(wc -l <$d/{tool}.creates)\n  case \" $FAIL_{tool} \" in\n    \
                 *\" all \"*|*\" $n \"*) echo 'libxl: error: no' >&2; exit 1 ;;\n  esac ;;\n\
                 esac\nexit 0\n",
                d.display()
            );
            let p = d.join(tool);
            std::fs::write(&p, fake).unwrap();
            std::process::Command::new("chmod")
                .arg("+x")
                .arg(&p)
                .status()
                .unwrap();
        }
        // The rig's helpers, with the ones that look at dom0 replaced.
        let lib = format!(
            "{}\nnote() {{ :; }}\nconsole_count() {{ echo 0; }}\n\
             wait_console() {{ return 0; }}\ndom_state() {{ echo -b----; }}\n",
            include_str!("../../scripts/lib.sh")
        );
        std::fs::write(d.join("lib.sh"), lib).unwrap();
        let script = timed
            .script
            .replace(". /e2e/lib.sh", &format!(". {}/lib.sh", d.display()));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .env("PATH", format!("{}:/usr/bin:/bin", d.display()))
            .env("RXL_SETTLE_S", "0")
            .env("FAIL_xl", fail_xl)
            .env("FAIL_rxl", fail_rxl)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let creates = |t: &str| {
            std::fs::read_to_string(d.join(format!("{t}.creates"))).map_or(0, |s| s.lines().count())
        };
        let lines = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        (lines, creates("xl"), creates("rxl"))
    }

    #[test]
    fn timed_runs_give_each_tool_its_runs_and_spend_spares_on_failures() {
        // rxl's third create (hello) and ninth (the fourth Linux one) fail: both are run
        // again, and every tool ends with its five good runs of each guest.
        let (lines, xl, rxl) = run_timed("", "3 9");
        let runs = parse_timed(&lines);
        for g in ["hello", "linux"] {
            for t in ["xl", "rxl"] {
                let n = runs
                    .get(&(g.to_owned(), t.to_owned()))
                    .map_or(0, |r| r.create.len());
                assert_eq!(n, runs_of(g) as usize, "{g} {t}: {lines:?}");
            }
        }
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("RETRY rxl")).count(),
            2
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("run 3 of rxl hello: create failed: libxl: error: no")),
            "{lines:?}"
        );
        assert!(!lines.iter().any(|l| l.starts_with("FAILED")), "{lines:?}");
        assert_eq!((xl, rxl), (10, 12));
        // Linux runs wait for /init and say so.
        assert!(runs[&("linux".to_owned(), "xl".to_owned())].init.len() == 5);

        // A tool whose every create fails stops after its spare attempts and is named;
        // the other tool still gets all of its runs.
        let (lines, xl, rxl) = run_timed("all", "");
        let total = (HELLO_RUNS + HELLO_SPARE + LINUX_RUNS + LINUX_SPARE) as usize;
        assert_eq!((xl, rxl), (total, 10));
        assert!(
            lines.contains(&format!(
                "FAILED xl hello: 0 good runs of {HELLO_RUNS} in {} attempts",
                HELLO_RUNS + HELLO_SPARE
            )),
            "{lines:?}"
        );
        assert!(lines
            .iter()
            .any(|l| l.starts_with("FAILED xl linux: 0 good runs")));
        assert!(!lines.iter().any(|l| l.starts_with("FAILED rxl")));
    }

    #[test]
    fn every_guest_step_script_is_valid_shell() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        let inputs = Inputs {
            hello: Some(f.clone()),
            linux: Some(LinuxFiles {
                kernel: f.clone(),
                initrd: f.clone(),
            }),
            pvgrub: Some(f.clone()),
            benchmarks_doc: None,
            xs_smoke: Some(f),
        };
        let steps = super::super::steps_for(&inputs);
        let names: Vec<&str> = steps.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "info",
                "xenstore",
                "hello",
                "guest-list",
                "rxl-hello",
                "rxl-linux",
                "failures",
                "pvgrub",
                "side-by-side"
            ]
        );
        let lib = include_str!("../../scripts/lib.sh");
        for step in &steps {
            for c in &step.captures {
                let p = dir.path().join("s.sh");
                std::fs::write(&p, format!("{lib}\n{}", c.script)).unwrap();
                let out = std::process::Command::new("sh")
                    .arg("-n")
                    .arg(&p)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}/{}: {}",
                    step.name,
                    c.name,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }

    #[test]
    fn the_linux_initramfs_has_busybox_and_init() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("boot")).unwrap();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        assert!(build_linux(&root, "1.0", &dir.path().join("out"))
            .unwrap()
            .is_none());
        std::fs::write(root.join("boot/vmlinuz-1.0"), b"kernel").unwrap();
        std::fs::write(root.join("bin/busybox"), b"busybox-bytes").unwrap();
        let l = build_linux(&root, "1.0", &dir.path().join("out"))
            .unwrap()
            .unwrap();
        let gz = std::fs::read(&l.initrd).unwrap();
        let mut cpio = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut cpio).unwrap();
        let text = String::from_utf8_lossy(&cpio);
        for want in [
            "bin/busybox",
            "busybox-bytes",
            "init",
            LINUX_INIT_LINE,
            "sbin/poweroff",
            "dev/console",
        ] {
            assert!(text.contains(want), "{want} missing");
        }
    }
}

#[cfg(test)]
mod elf_tests {
    #[test]
    fn the_noteless_kernel_is_a_valid_elf_with_no_notes() {
        let bytes = super::noteless_elf();
        let elf = goblin::elf::Elf::parse(&bytes).unwrap();
        assert!(!elf.is_64);
        assert_eq!(elf.entry, 0x0010_0054);
        assert_eq!(elf.program_headers.len(), 1);
        let ph = &elf.program_headers[0];
        assert_eq!(ph.p_type, goblin::elf::program_header::PT_LOAD);
        assert_eq!(ph.p_filesz as usize, bytes.len());
        assert_eq!(bytes[bytes.len() - 3], 0xf4);
    }
}
