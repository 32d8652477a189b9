//! The real-Xen rig (`cargo xtask e2e`, or this crate's `rig` binary): real Xen 4.17 in QEMU
//! with a Linux dom0 that runs `xl` and `rxl` side by side (see docs/e2e.md).
//!
//! Stages: host tools, Debian packages (downloaded and unpacked into a cache), the rxl
//! binary, the dom0 initramfs, one QEMU boot, then the host-side checks of each step.

#![forbid(unsafe_code)]

mod boot;
mod checks;
mod image;
mod markers;
pub mod packages;
mod profile;
mod report;
mod scenario;
pub mod scripts;
mod steps;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use clap::Parser;

use image::{Entry, Image};
use report::{judge_step, print_failure_details, BootRun, Timings, Verdict};

/// Where the rig's shell scripts live, relative to the repository root.
pub const SCRIPTS_DIR: &str = "crates/rig/scripts";

/// dom0's init script template.
const INIT_TEMPLATE: &str = include_str!("../scripts/init.sh");
/// Shell helpers sourced by init and the scenario.
const LIB_SH: &str = include_str!("../scripts/lib.sh");

/// Library directories of the dom0 loader (`LD_LIBRARY_PATH` in /init), in search order.
const LIB_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/xen-4.17/lib/x86_64-linux-gnu",
];

/// Xen tools copied into dom0 (with their library closure).
const XEN_PROGRAMS: &[&str] = &[
    "/usr/lib/xen-4.17/bin/xl",
    "/usr/lib/xen-4.17/bin/xenstored",
    "/usr/lib/xen-4.17/bin/xenconsoled",
    "/usr/lib/xen-4.17/bin/xen-init-dom0",
    "/usr/lib/xen-4.17/bin/xenconsole",
    "/usr/lib/xen-4.17/bin/readnotes",
    "/usr/lib/xen-4.17/bin/lsevtchn",
    "/usr/lib/xen-4.17/bin/xen-diag",
    "/usr/bin/xenstore",
    "/usr/bin/xenstore-read",
    "/usr/bin/xenstore-write",
    "/usr/bin/xenstore-ls",
    "/usr/bin/xenstore-list",
    "/usr/bin/xenstore-rm",
    "/usr/bin/xenstore-exists",
    "/usr/bin/xenstore-watch",
    "/usr/bin/xenstore-chmod",
];

/// What Xen's hotplug scripts need beyond busybox (`#!/bin/bash`, `losetup`, `flock`, `ip`,
/// `bridge`), and mke2fs/debugfs for the devices step's disk images. Each takes the place
/// of the busybox applet of that name, if any (`busybox --install` keeps existing files).
const HOTPLUG_PROGRAMS: &[&str] = &[
    "/bin/bash",
    "/sbin/losetup",
    "/usr/bin/flock",
    "/bin/ip",
    "/sbin/bridge",
    "/sbin/mke2fs",
    "/sbin/debugfs",
];

/// Where Xen's hotplug scripts live (xen-utils-common): `block`, `vif-bridge` and the
/// libraries they source. The whole directory goes into the image.
const XEN_SCRIPTS_DIR: &str = "/etc/xen/scripts";

/// Libraries loaded with dlopen, which no DT_NEEDED names: glibc opens libgcc_s for
/// pthread_cancel and xl aborts at exit without it.
const DLOPENED: &[&str] = &["/lib/x86_64-linux-gnu/libgcc_s.so.1"];

/// pygrub and what it runs on: Python 3.11 (the interpreter and the extension modules
/// pygrub imports that are not built in: ctypes, curses, resource), Xen's Python modules
/// (grub config parsers, xenfsimage) and the ext2/3/4 plugin xenfsimage loads with dlopen.
/// Their libraries are found like any program's.
const PYGRUB_PROGRAMS: &[&str] = &[
    "/usr/bin/python3.11",
    "/usr/lib/python3.11/lib-dynload/_ctypes.cpython-311-x86_64-linux-gnu.so",
    "/usr/lib/python3.11/lib-dynload/_curses.cpython-311-x86_64-linux-gnu.so",
    "/usr/lib/python3.11/lib-dynload/resource.cpython-311-x86_64-linux-gnu.so",
    "/usr/lib/xen-4.17/lib/python/xenfsimage.cpython-311-x86_64-linux-gnu.so",
    "/usr/lib/xen-4.17/lib/x86_64-linux-gnu/xenfsimage/ext2fs-lib/fsimage.so",
];

/// Directory trees pygrub reads that no ELF names: Python's standard library (without its
/// extension modules, of which [`PYGRUB_PROGRAMS`] holds the ones needed, and without the
/// parts no script here uses), Xen's Python modules and pygrub itself, and the terminfo
/// entries curses needs (libxl runs pygrub on a pty with TERM=vt100).
const PYGRUB_TREES: &[(&str, &[&str])] = &[
    (
        "/usr/lib/python3.11",
        &[
            "lib-dynload",
            "test",
            "pydoc_data",
            "idlelib",
            "lib2to3",
            "ensurepip",
            "tkinter",
            "turtledemo",
            "sitecustomize.py",
        ],
    ),
    ("/usr/lib/xen-4.17/lib/python", &["xen"]),
    ("/lib/terminfo", &[]),
];

/// The device model (qemu-system-xen) libxl starts for HVM guests (`-machine xenfv`) and
/// for qdisk disks (`-machine xenpv`); its libraries are found like any program's.
const DEVICE_MODEL: &str = "/usr/libexec/xen-qemu-system-i386";

/// Files of HVM guests and their device model that no ELF names: hvmloader (libxl's
/// kernel for every HVM guest), the option ROMs of the emulated NIC libxl gives an HVM
/// guest's vif (rtl8139; QEMU 7.2 loads the efi- one, the pxe- one is the older name),
/// and the option ROM that boots a multiboot kernel given with `-kernel` (regular files
/// in QEMU's data directory; `multiboot_dma.bin` when fw_cfg has DMA, which the Xen
/// machine's fw_cfg has not).
const HVM_FILES: &[&str] = &[
    "/usr/lib/xen-4.17/boot/hvmloader",
    "/usr/lib/ipxe/qemu/efi-rtl8139.rom",
    "/usr/lib/ipxe/qemu/pxe-rtl8139.rom",
    "/usr/share/qemu/linuxboot.bin",
    "/usr/share/qemu/linuxboot_dma.bin",
    "/usr/share/qemu/multiboot.bin",
    "/usr/share/qemu/multiboot_dma.bin",
];

/// Directory trees the device model opens: SeaBIOS (`bios-256k.bin`, which libxl hands to
/// hvmloader, and the VGA BIOSes QEMU loads as option ROMs) and QEMU's keymaps (read at
/// start even with `-vnc none`: QEMU exits "could not read keymap file" without them).
const HVM_TREES: &[&str] = &["/usr/share/seabios", "/usr/share/qemu/keymaps"];

/// dom0's /etc/passwd and /etc/group: root, and the unprivileged user bootloaders run as.
const ETC_PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const ETC_GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

/// Where rxl goes in dom0.
const RXL_PATH: &str = "/usr/local/bin/rxl";

/// Kernel modules dom0 needs (their dependencies are added).
const MODULES: &[&str] = &[
    "xen-privcmd",
    "xenfs",
    "xen-evtchn",
    "xen-gntdev",
    "xen-gntalloc",
    // Device backends: blkback with loop devices for disk images, netback with a bridge.
    "xen-blkback",
    "loop",
    "xen-netback",
    "bridge",
    // The taps of HVM guests' emulated NICs (QEMU opens /dev/net/tun).
    "tun",
];

/// Options of `cargo xtask e2e`.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask e2e",
    about = "Boot real Xen 4.17 in QEMU with a Linux dom0 and check rxl against xl"
)]
struct Options {
    /// Keep the run directory (image, serial and result logs) after a passing run.
    #[arg(long)]
    keep: bool,
    /// Boot the rig with a dom0 shell on the serial console instead of running the
    /// scenario (`sh /e2e/scenario.sh` runs it by hand; `rig-exit` ends QEMU).
    #[arg(long)]
    shell: bool,
    /// Put this rxl binary into dom0 instead of building one with
    /// `cargo build --release -p rxl`.
    #[arg(long, value_name = "PATH")]
    rxl: Option<PathBuf>,
    /// Hard limit on QEMU's run time in seconds (default 2100; 3600 with --shell).
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// Test the rig's recovery: in the first boot, make dom0 crash (`crash:STEP`, a kernel
    /// panic through sysrq) or hang silently (`hang:STEP`) at the start of STEP.
    #[arg(long, value_name = "crash:STEP|hang:STEP")]
    inject: Option<String>,
    /// When every step passed, write the side-by-side medians into docs/benchmarks.md (a
    /// run without it prints them and writes nothing).
    #[arg(long)]
    publish: bool,
}

impl Options {
    /// The file a passing run writes the benchmark section into: only with `--publish`.
    fn benchmarks_doc(&self, repo: &Path) -> Option<PathBuf> {
        self.publish.then(|| repo.join("docs/benchmarks.md"))
    }
}

/// The devices step's tools from `RXL_E2E_DEVICE_TOOLS` (None when it is not set).
fn device_tools() -> anyhow::Result<Option<Vec<steps::devices::Tool>>> {
    let env = steps::devices::TOOLS_ENV;
    let Ok(spec) = std::env::var(env) else {
        return Ok(None);
    };
    let tools = steps::devices::select_tools(&spec).map_err(|e| anyhow::anyhow!("{env}: {e}"))?;
    say(&format!("{env}={spec}: the devices step runs these tools"));
    Ok(Some(tools))
}

/// The bootloader step's tools from `RXL_E2E_BOOT_TOOLS` (None when it is not set).
fn boot_tools() -> anyhow::Result<Option<Vec<&'static str>>> {
    let env = steps::bootloader::TOOLS_ENV;
    let Ok(spec) = std::env::var(env) else {
        return Ok(None);
    };
    let tools =
        steps::bootloader::select_tools(&spec).map_err(|e| anyhow::anyhow!("{env}: {e}"))?;
    say(&format!(
        "{env}={spec}: the bootloader step runs these tools"
    ));
    Ok(Some(tools))
}

/// The hvm step's tools from `RXL_E2E_HVM_TOOLS` (None when it is not set).
fn hvm_tools() -> anyhow::Result<Option<Vec<&'static str>>> {
    let env = steps::hvm::TOOLS_ENV;
    let Ok(spec) = std::env::var(env) else {
        return Ok(None);
    };
    let tools = steps::hvm::select_tools(&spec).map_err(|e| anyhow::anyhow!("{env}: {e}"))?;
    say(&format!("{env}={spec}: the hvm step runs these tools"));
    Ok(Some(tools))
}

/// Run the end-to-end scenario.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let opts =
        Options::try_parse_from(std::iter::once("e2e".to_owned()).chain(args.iter().cloned()))
            .unwrap_or_else(|e| e.exit());
    let total = Instant::now();
    let mut times = Timings::default();

    let repo = repo_root()?;
    let cache = match std::env::var_os("RXL_CACHE") {
        Some(c) if !c.is_empty() => PathBuf::from(c),
        _ => repo.join(".cache/e2e"),
    };
    let run_dir = cache.join(format!(
        "run-{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    ));
    std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    say(&format!(
        "cache {}, run directory {}",
        cache.display(),
        run_dir.display()
    ));

    packages::ensure_tools(packages::HOST_TOOLS).context("host tools")?;
    packages::ensure_tools(steps::bootloader::DISK_TOOLS)
        .context("host tools for the bootloader step's disk images")?;
    packages::ensure_tools(steps::hvm::IMAGE_TOOLS)
        .context("host tools for the hvm step's qcow2 image")?;

    // Packages.
    let t = Instant::now();
    let pkgs = packages::image_packages().context("resolving the dom0 package list")?;
    let kernel_pkg = pkgs.last().cloned().unwrap_or_default();
    let release = packages::kernel_release(&kernel_pkg)
        .with_context(|| format!("kernel package name {kernel_pkg:?}"))?
        .to_owned();
    let fetched = packages::fetch(&pkgs, &cache.join("debs")).context("downloading packages")?;
    times.download = t.elapsed();
    say(&format!(
        "{} packages ({} downloaded, kernel {release}) in {:.1}s",
        fetched.debs.len(),
        fetched.downloaded,
        times.download.as_secs_f64()
    ));

    let t = Instant::now();
    let (root, fresh) =
        packages::unpack_cached(&fetched.debs, &cache).context("unpacking packages")?;
    let unpacked = !fresh;
    let xen_elf = cache.join("xen-4.17.elf");
    if !unpacked || !xen_elf.is_file() {
        gunzip(&root.join("boot/xen-4.17-amd64.gz"), &xen_elf)?;
    }
    times.unpack = t.elapsed();
    say(&format!(
        "unpacked tree {} in {:.1}s",
        if unpacked { "reused" } else { "rebuilt" },
        times.unpack.as_secs_f64()
    ));

    // Binaries built on the host.
    let t = Instant::now();
    let rxl = match &opts.rxl {
        Some(p) if p.is_file() => p.clone(),
        Some(p) => bail!("--rxl {}: no such file", p.display()),
        None => build_rxl(&repo).context("building rxl")?,
    };
    let xs_smoke = build_xs_smoke(&repo).context("building xs-smoke")?;
    let hello = steps::hello::build_hello(&repo, &run_dir.join("hello"))
        .context("building the hello guest")?;
    times.build = t.elapsed();
    if hello.is_none() {
        say("tests/guests/hello/build.sh not found: the hello guest step is left out");
    }

    // Image.
    let t = Instant::now();
    let linux = steps::linux::build_linux(&root, &release, &run_dir.join("linux"))
        .context("building the Linux guest's initramfs")?;
    if linux.is_none() {
        say("no kernel or busybox in the unpacked tree: the Linux guest step is left out");
    }
    let boot_disks = match &linux {
        Some(l) => Some(
            steps::bootloader::build_disks(l, &run_dir.join("bootloader"))
                .context("building the bootloader step's disk images")?,
        ),
        None => None,
    };
    let hvm_disks = match &linux {
        Some(_) => Some(scenario::HvmDisks {
            boot_img: steps::hvm::boot_disk().map_err(|e| anyhow::anyhow!(e))?,
            qcow2: steps::hvm::build_qcow2(&run_dir.join("hvm"))?,
        }),
        None => None,
    };
    let steps = scenario::steps_for(&scenario::Inputs {
        hello,
        linux,
        pvgrub: Some(root.join(steps::pvgrub::PVGRUB_PATH.trim_start_matches('/')))
            .filter(|p| p.is_file()),
        pvgrub64: Some(root.join(steps::pv::PVGRUB64_PATH.trim_start_matches('/')))
            .filter(|p| p.is_file()),
        benchmarks_doc: opts.benchmarks_doc(&repo),
        xs_smoke: Some(xs_smoke),
        device_tools: device_tools()?,
        boot_disks,
        boot_tools: boot_tools()?,
        hvm_disks,
        hvm_tools: hvm_tools()?,
    });
    let mut steps = steps;
    if let Ok(only) = std::env::var("RXL_E2E_STEPS") {
        scenario::keep_only(&mut steps, &only)
            .map_err(|e| anyhow::anyhow!("RXL_E2E_STEPS: {e}"))?;
        say(&format!("RXL_E2E_STEPS={only}: only these steps run"));
    }
    if let Some(spec) = &opts.inject {
        scenario::inject(&mut steps, spec).map_err(|e| anyhow::anyhow!("--inject {spec}: {e}"))?;
        say(&format!("--inject {spec}: only in the first boot"));
    }
    let initrd = run_dir.join("dom0.cpio.gz");
    let (files, data, size) = build_image(&root, &release, &rxl, &steps, opts.shell, &initrd)?;
    times.image = t.elapsed();
    say(&format!(
        "dom0 image: {files} entries, {:.1} MiB of files, {:.1} MiB compressed, in {:.1}s",
        data as f64 / 1048576.0,
        size as f64 / 1048576.0,
        times.image.as_secs_f64()
    ));

    // Boot; when dom0 hangs or dies during a step, boot again from that step (each step
    // gets at most FRESH_BOOTS_PER_STEP fresh boots, and a run at most MAX_BOOTS boots).
    // The whole scenario in one boot takes 20 minutes or so with the devices step's three
    // tools; a hung dom0 is stopped long before this by the watchdog.
    let timeout = opts.timeout.unwrap_or(if opts.shell { 3600 } else { 2100 });
    let mut boots: Vec<BootRun> = Vec::new();
    let mut from = 0usize;
    let mut to = steps.len().saturating_sub(1);
    loop {
        let n = boots.len() + 1;
        let file = |stem: &str, ext: &str| {
            run_dir.join(if n == 1 {
                format!("{stem}.{ext}")
            } else {
                format!("{stem}-{n}.{ext}")
            })
        };
        let boot = boot::Boot {
            xen: xen_elf.clone(),
            kernel: root.join(format!("boot/vmlinuz-{release}")),
            initrd: initrd.clone(),
            serial_log: file("serial", "log"),
            results_log: file("results", "log"),
            interactive: opts.shell,
            dom0_extra: [
                (from > 0).then(|| format!("{}={from}", scenario::FROM_ARG)),
                (to + 1 < steps.len()).then(|| format!("{}={to}", scenario::TO_ARG)),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" "),
        };
        if opts.shell {
            say("booting with a dom0 shell on this terminal; `rig-exit` in dom0 ends QEMU");
        } else if from == 0 {
            say(&format!("booting Xen in QEMU (timeout {timeout}s)"));
        } else {
            say(&format!(
                "booting Xen in QEMU again (boot {n}, timeout {timeout}s), steps {} to {}",
                steps[from].name, steps[to].name
            ));
        }
        let outcome = boot::run(
            &boot,
            timeout,
            &file("qemu", "log"),
            |name| scenario::silence_limit(&steps, name),
            |t, what| say(&format!("[{:6.1}s] {what}", t.as_secs_f64())),
        )?;
        times.qemu += outcome.elapsed;
        if opts.shell {
            say(&format!(
                "{}; logs in {}",
                outcome.describe(),
                run_dir.display()
            ));
            return Ok(());
        }
        let results = read_lossy(&boot.results_log);
        let console = read_lossy(&boot.serial_log);
        let (report, channel) = pick_channel(&results, &console);
        // Where to boot again from, and why: dom0 stopped early, or a step failed while dom0
        // processes died of faults (the emulation's, see docs/e2e.md).
        // A fresh boot after a hang runs every step left; after failures beside faults,
        // only up to the last failed step (the steps after it passed in this boot).
        let (next, next_to, why) = if !report.ready {
            (None, to, String::new())
        } else if !report.done {
            (
                scenario::resume_point(&steps, &report, from, to),
                to,
                format!("dom0 stopped before the end: {}", outcome.describe()),
            )
        } else {
            match scenario::failed_with_faults(&steps, &report, &console, from, to) {
                Some(f) => (
                    Some(f.at),
                    f.last,
                    format!(
                        "step {} failed in a boot where {} dom0 process(es) died of a fault ({})",
                        steps[f.at].name,
                        f.faults,
                        f.problems.join("; ")
                    ),
                ),
                None => (None, to, String::new()),
            }
        };
        boots.push(BootRun {
            from,
            to,
            boot,
            outcome,
            report,
            channel,
            console,
            results,
            stopped_at: next,
            why,
        });
        match next {
            Some(at)
                if boots.len() < MAX_BOOTS
                    && boots.iter().filter(|b| b.stopped_at == Some(at)).count()
                        <= FRESH_BOOTS_PER_STEP =>
            {
                say(&format!(
                    "{}: booting again from step {}",
                    boots.last().map_or("", |b| b.why.as_str()),
                    steps[at].name
                ));
                from = at;
                to = next_to;
            }
            _ => break,
        }
    }

    // Verdict: each step is judged on the last boot that ran it.
    let mut verdict = Verdict {
        lines: Vec::new(),
        failed: false,
    };
    let mut passed_publishing = Vec::new();
    for (idx, step) in steps.iter().enumerate() {
        let Some(b) = boots.iter().rev().find(|b| b.from <= idx && idx <= b.to) else {
            continue;
        };
        if b.report.ready || !b.report.captures.is_empty() {
            if judge_step(step, &b.report, &b.console, &mut verdict) && step.publish.is_some() {
                passed_publishing.push((idx, b));
            }
        } else {
            verdict.failed = true;
            verdict.lines.push(format!(
                "FAIL {}: no step ran: dom0 never reported ready",
                step.name
            ));
        }
    }
    for (i, b) in boots.iter().enumerate().skip(1) {
        let prev = &boots[i - 1];
        verdict.lines.push(format!(
            "NOTE boot {i} ({}); steps {} to {} ran again in boot {}",
            prev.why,
            steps[b.from].name,
            steps[b.to].name,
            i + 1
        ));
    }
    times.boot = boots.first().and_then(|b| b.outcome.ready_at);
    times.scenario = boots
        .iter()
        .map(|b| match (b.outcome.ready_at, b.outcome.done_at) {
            (Some(r), Some(d)) => d.checked_sub(r),
            (Some(r), None) => b.outcome.elapsed.checked_sub(r),
            _ => None,
        })
        .sum::<Option<Duration>>();
    times.total = total.elapsed();

    let last = boots.last().context("no boot ran")?;
    let channels: Vec<&str> = boots.iter().map(|b| b.channel).collect();
    println!("\n== e2e results (channel: {}) ==", channels.join("; "));
    for line in &verdict.lines {
        println!("{line}");
    }
    // What passed steps leave behind (the benchmark table), once, from the boot that
    // judged them.
    for (idx, b) in passed_publishing {
        let step = &steps[idx];
        let Some(publish) = &step.publish else {
            continue;
        };
        let outcome = scenario::Outcome {
            step: step.name,
            report: &b.report,
            console: &b.console,
        };
        match publish(&outcome) {
            Ok(text) => println!("\n{text}"),
            Err(e) => println!("\n{}: {e}", step.name),
        }
    }
    // The count every capture notes as it ends (the one the fresh-boot rule uses); "?" for
    // a boot that reported no capture.
    let faults: Vec<String> = boots
        .iter()
        .map(|b| {
            if b.report.captures.is_empty() {
                "?".to_owned()
            } else {
                scenario::faults_in_boot(&b.report).to_string()
            }
        })
        .collect();
    println!(
        "dom0 user processes killed by a fault (segfault/general protection in dmesg), per boot: {}",
        faults.join(", ")
    );
    if !opts.publish {
        say("docs/benchmarks.md left as it is (`cargo xtask e2e --publish` writes it)");
    }
    let outcomes: Vec<&boot::RunOutcome> = boots.iter().map(|b| &b.outcome).collect();
    println!("\n== timings ==\n{}", times.render(&outcomes));
    let mut failed = verdict.failed;
    if !last.report.done {
        failed = true;
        println!(
            "\ndom0 did not finish the scenario: {}",
            last.outcome.describe()
        );
        if let Some(reason) = &last.report.setup_failed {
            println!("dom0 setup failed: {reason}");
        }
    }
    for b in &boots {
        for p in &b.report.problems {
            println!("result framing: {p}");
            failed = true;
        }
    }
    if failed {
        for (i, b) in boots.iter().enumerate() {
            print_failure_details(i + 1, b);
        }
        bail!(
            "e2e failed ({}); run directory kept: {}",
            last.outcome.describe(),
            run_dir.display()
        );
    }
    if opts.keep {
        say(&format!("run directory kept: {}", run_dir.display()));
    } else {
        std::fs::remove_dir_all(&run_dir)
            .with_context(|| format!("removing {}", run_dir.display()))?;
    }
    say(&format!(
        "all steps passed in {:.1}s",
        times.total.as_secs_f64()
    ));
    Ok(())
}

fn say(msg: &str) {
    eprintln!("e2e: {msg}");
}

fn read_lossy(p: &Path) -> String {
    std::fs::read(p).map_or_else(
        |_| String::new(),
        |b| String::from_utf8_lossy(&b).into_owned(),
    )
}

fn last_lines(text: &str, n: usize) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// The repository root: two levels above this crate's manifest directory (crates/rig).
fn repo_root() -> anyhow::Result<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest
        .parent()
        .and_then(Path::parent)
        .context("the rig's manifest directory has no grandparent")?;
    if !root.join("Cargo.toml").is_file() {
        bail!(
            "{} does not look like the rxl repository root",
            root.display()
        );
    }
    Ok(root.to_owned())
}

fn gunzip(src: &Path, dst: &Path) -> anyhow::Result<()> {
    let f = std::fs::File::open(src).with_context(|| format!("opening {}", src.display()))?;
    let mut dec = flate2::read::GzDecoder::new(std::io::BufReader::new(f));
    let tmp = dst.with_extension("tmp");
    let mut out =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    std::io::copy(&mut dec, &mut out)
        .with_context(|| format!("decompressing {}", src.display()))?;
    std::fs::rename(&tmp, dst).with_context(|| format!("renaming to {}", dst.display()))?;
    Ok(())
}

/// Builds rxl in release mode and returns the path of the binary cargo reports (the rig's
/// dom0 runs it, and `cargo xtask install` installs it).
///
/// rxl is linked statically and without position independence: in a PV dom0 every page
/// the dynamic loader touches and relocates costs a trip through Xen, which made the
/// start of each command (docs/benchmarks.md, "The start-up cost in the rig's dom0")
/// three to four times slower. `--target` keeps the flags off build scripts and proc
/// macros, which must stay dynamic.
pub fn build_rxl(repo: &Path) -> anyhow::Result<PathBuf> {
    cargo_release_binary_with(
        repo,
        &["-p", "rxl", "--target", STATIC_TARGET],
        "rxl",
        &[(STATIC_RUSTFLAGS_VAR, STATIC_RUSTFLAGS)],
    )
}

/// The target triple of the static rxl build (the host's own, named so that cargo applies
/// [`STATIC_RUSTFLAGS`] to the target's crates only).
const STATIC_TARGET: &str = "x86_64-unknown-linux-gnu";
/// Cargo's variable for the flags of [`STATIC_TARGET`]'s crates.
const STATIC_RUSTFLAGS_VAR: &str = "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS";
/// A static, non-PIE executable: no dynamic loader and no relocations at start.
const STATIC_RUSTFLAGS: &str = "-C target-feature=+crt-static -C relocation-model=static";

/// Builds the xenstore client's live check (`xs-smoke`, the `xenstore` step's tool).
fn build_xs_smoke(repo: &Path) -> anyhow::Result<PathBuf> {
    cargo_release_binary(
        repo,
        &["-p", "xenstore", "--example", "xs-smoke"],
        "xs-smoke",
    )
}

/// `cargo build --release ARGS` and the path of the executable named `name` it reports.
fn cargo_release_binary(repo: &Path, args: &[&str], name: &str) -> anyhow::Result<PathBuf> {
    cargo_release_binary_with(repo, args, name, &[])
}

/// [`cargo_release_binary`] with `env` set for cargo (and named in errors).
fn cargo_release_binary_with(
    repo: &Path,
    args: &[&str],
    name: &str,
    env: &[(&str, &str)],
) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let what = env
        .iter()
        .map(|(k, v)| format!("{k}=\"{v}\" "))
        .chain(std::iter::once(format!(
            "cargo build --release {}",
            args.join(" ")
        )))
        .collect::<String>();
    let out = std::process::Command::new(cargo)
        .envs(env.iter().copied())
        .args([
            "build",
            "--release",
            "--message-format=json-render-diagnostics",
        ])
        .args(args)
        .current_dir(repo)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!("{what} failed ({})", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == name)
        .find_map(|v| v["executable"].as_str().map(PathBuf::from))
        .with_context(|| format!("{what} reported no {name} executable"))
}

/// Builds the dom0 initramfs into `out`; returns (entries, file bytes, archive bytes).
fn build_image(
    root: &Path,
    release: &str,
    rxl: &Path,
    steps: &[scenario::Step],
    shell: bool,
    out: &Path,
) -> anyhow::Result<(usize, u64, u64)> {
    let mut img = Image::new();
    for d in [
        "/proc",
        "/sys",
        "/dev",
        "/run",
        "/tmp",
        "/root",
        "/etc",
        "/var/log/xen/console",
        "/var/lib/xen",
        // xenconsole (`xl console`) takes its lock file /var/lock/xenconsole.DOMID here, and
        // without the directory refuses to attach ("Could not open /var/lock/...").
        "/var/lock",
    ] {
        img.dir(d)?;
    }
    img.add("/tmp", Entry::Dir { perm: 0o1777 })?;
    img.add(
        "/dev/console",
        Entry::CharDev {
            perm: 0o600,
            major: 5,
            minor: 1,
        },
    )?;
    img.add(
        "/dev/null",
        Entry::CharDev {
            perm: 0o666,
            major: 1,
            minor: 3,
        },
    )?;
    img.host_file("/bin/busybox", &root.join("bin/busybox"))?;

    // Without its debug sections: a fraction of the size, and TCG unpacks every byte at boot.
    // The copy lives in the run directory, so concurrent runs never share it.
    let staged = out.with_file_name("rxl");
    packages::run(
        std::process::Command::new("strip")
            .arg("--strip-debug")
            .arg("-o")
            .arg(&staged)
            .arg(rxl),
    )
    .context("stripping rxl for the image")?;
    // rxl is checked against the image's own libraries, as if it were in the tree.
    let base = image::elfdeps::DirTree::new(root);
    let tree = image::elfdeps::Overlay::new(&base, &[(RXL_PATH, staged.clone())]);
    let mut programs: Vec<&str> = XEN_PROGRAMS.to_vec();
    programs.extend_from_slice(HOTPLUG_PROGRAMS);
    programs.extend_from_slice(DLOPENED);
    programs.extend_from_slice(PYGRUB_PROGRAMS);
    programs.push(DEVICE_MODEL);
    programs.push(RXL_PATH);
    let mut closure = image::elfdeps::closure(&tree, &programs, LIB_DIRS)
        .context("resolving the shared libraries of dom0's programs")?;
    closure.files.remove(RXL_PATH);
    img.closure(&closure, root)?;
    img.host_file(RXL_PATH, &staged)?;
    img.host_file("/etc/xen/xl.conf", &root.join("etc/xen/xl.conf"))?;
    // Users and groups as Debian has them for root and nobody: rxl runs bootloaders as
    // rxl.conf's bootloader_user, `nobody` unless it says otherwise.
    img.bytes("/etc/passwd", 0o644, ETC_PASSWD)?;
    img.bytes("/etc/group", 0o644, ETC_GROUP)?;
    // iproute2 installs ip as /bin/ip with /sbin/ip pointing to it; /sbin comes first in
    // dom0's PATH, where busybox would otherwise put its own ip.
    img.symlink("/sbin/ip", "/bin/ip")?;
    add_host_dir(&mut img, root, XEN_SCRIPTS_DIR)?;
    for (dir, skip) in PYGRUB_TREES {
        add_host_tree(&mut img, root, dir, skip)?;
    }
    img.host_file(
        "/usr/lib/xen-4.17/bin/pygrub",
        &root.join("usr/lib/xen-4.17/bin/pygrub"),
    )?;
    img.symlink("/usr/bin/python3", "python3.11")?;
    for file in HVM_FILES {
        img.host_file(file, &root.join(file.trim_start_matches('/')))?;
    }
    for dir in HVM_TREES {
        add_host_tree(&mut img, root, dir, &[])?;
    }

    let mod_dir = root.join("lib/modules").join(release);
    let modules = image::kmod::ModuleDir::open(&mod_dir)?.load_order(MODULES)?;
    let mut insmods = String::new();
    for m in &modules {
        let path = format!("/lib/modules/{release}/{}", m.rel_path);
        img.host_file(&path, &mod_dir.join(&m.rel_path))?;
        let _ = writeln!(
            insmods,
            "insmod {path} || setup_failed \"insmod {}\"",
            m.name
        );
    }
    img.bytes(
        &format!("/lib/modules/{release}/modules.dep"),
        0o644,
        image::kmod::modules_dep(&modules),
    )?;

    let init = render_init(shell, &insmods);
    img.bytes("/init", 0o755, init)?;
    img.bytes("/e2e/lib.sh", 0o644, LIB_SH)?;
    img.bytes(
        "/usr/local/bin/rig-exit",
        0o755,
        "#!/bin/sh\n# Ends the QEMU run: rig-exit [VALUE]\n. /e2e/lib.sh\nrig_exit \"${1:-0}\"\n",
    )?;
    scenario::install(steps, &mut img)?;
    let entries = img.len();
    let (data, size) = img.write_gz(out)?;
    Ok((entries, data, size))
}

/// Adds every regular file of the unpacked tree's directory `dir` (not its subdirectories),
/// keeping the files' executable bits.
fn add_host_dir(img: &mut Image, root: &Path, dir: &str) -> anyhow::Result<()> {
    let host = root.join(dir.trim_start_matches('/'));
    let entries =
        std::fs::read_dir(&host).with_context(|| format!("reading {}", host.display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", host.display()))?;
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    if names.is_empty() {
        bail!("{} holds no files", host.display());
    }
    for name in names {
        img.host_file(&format!("{dir}/{name}"), &host.join(&name))?;
    }
    Ok(())
}

/// Adds the unpacked tree's directory `dir` with everything under it (files keep their
/// executable bits, symlinks are kept as they are), leaving out the entries of `dir` itself
/// named in `skip`.
fn add_host_tree(img: &mut Image, root: &Path, dir: &str, skip: &[&str]) -> anyhow::Result<()> {
    let mut pending = vec![(dir.to_owned(), true)];
    let mut files = 0usize;
    while let Some((d, top)) = pending.pop() {
        let host = root.join(d.trim_start_matches('/'));
        let entries =
            std::fs::read_dir(&host).with_context(|| format!("reading {}", host.display()))?;
        img.dir(&d)?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", host.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if top && skip.contains(&name.as_str()) {
                continue;
            }
            let path = format!("{d}/{name}");
            let kind = entry
                .file_type()
                .with_context(|| format!("reading {}", entry.path().display()))?;
            if kind.is_dir() {
                pending.push((path, false));
            } else if kind.is_symlink() {
                let target = std::fs::read_link(entry.path())
                    .with_context(|| format!("reading {}", entry.path().display()))?;
                img.symlink(&path, &target.to_string_lossy())?;
            } else if kind.is_file() {
                img.host_file(&path, &entry.path())?;
                files += 1;
            }
        }
    }
    if files == 0 {
        bail!(
            "{} holds no files",
            root.join(dir.trim_start_matches('/')).display()
        );
    }
    Ok(())
}

/// dom0's /init: the template with the library path, the mode and the module loads.
fn render_init(shell: bool, insmods: &str) -> String {
    INIT_TEMPLATE
        .replace("@LIBDIRS@", &LIB_DIRS.join(":"))
        .replace("@MODE@", if shell { "shell" } else { "run" })
        .replace("@MODULES@", insmods)
}

/// The `@NAME@` placeholders (NAME in capitals) left in `text`, in order.
#[cfg(test)]
fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices('@') {
        let name_len = text[i + 1..]
            .bytes()
            .take_while(|b| b.is_ascii_uppercase() || *b == b'_')
            .count();
        if name_len > 0 && text[i + 1 + name_len..].starts_with('@') {
            out.push(&text[i..i + name_len + 2]);
        }
    }
    out
}

/// Parses the result channel: com2's file, or the console when dom0 had no second serial
/// port and framed its results there. Returns the report and the channel's name.
fn pick_channel(results: &str, console: &str) -> (markers::Report, &'static str) {
    let report = markers::parse(results);
    let empty = |r: &markers::Report| !r.ready && r.captures.is_empty() && r.setup_failed.is_none();
    if !empty(&report) {
        return (report, "com2 (results.log)");
    }
    let on_console = markers::parse(console);
    if empty(&on_console) {
        (report, "none: dom0 reported nothing")
    } else {
        (on_console, "the console (serial.log)")
    }
}

/// At most this many boots per run (the first, then fresh boots after a hang, a crash, or a
/// failure beside dom0 faults).
const MAX_BOOTS: usize = 4;

/// At most this many fresh boots start at the same step (the long side-by-side step has
/// seen the emulation hang in two boots of one run).
const FRESH_BOOTS_PER_STEP: usize = 2;

#[cfg(test)]
mod tests {
    #[test]
    fn only_publish_writes_the_benchmarks() {
        let parse = |args: &[&str]| {
            Options::try_parse_from(std::iter::once("e2e").chain(args.iter().copied())).unwrap()
        };
        let repo = Path::new("/repo");
        assert_eq!(parse(&[]).benchmarks_doc(repo), None);
        assert_eq!(parse(&["--keep"]).benchmarks_doc(repo), None);
        assert_eq!(
            parse(&["--publish"]).benchmarks_doc(repo),
            Some(PathBuf::from("/repo/docs/benchmarks.md"))
        );
    }

    use super::*;

    /// Runs `sh -n` (syntax only) over a script.
    fn sh_syntax_ok(script: &str) -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let p = dir.path().join("s.sh");
        std::fs::write(&p, script).map_err(|e| e.to_string())?;
        let out = std::process::Command::new("sh")
            .arg("-n")
            .arg(&p)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    #[test]
    fn init_is_fully_rendered_valid_shell() {
        for shell in [false, true] {
            let init = render_init(
                shell,
                "insmod /lib/modules/x/a.ko || setup_failed \"insmod a\"\n",
            );
            assert_eq!(placeholders(&init), Vec::<&str>::new());
            assert_eq!(
                placeholders(INIT_TEMPLATE),
                ["@LIBDIRS@", "@MODE@", "@MODULES@"]
            );
            assert!(init.contains("export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:"));
            assert!(init.contains("insmod /lib/modules/x/a.ko"));
            assert_eq!(init.contains("RIG_MODE=shell\n"), shell);
            sh_syntax_ok(&init).unwrap();
        }
        sh_syntax_ok(LIB_SH).unwrap();
        assert!(
            sh_syntax_ok("if then fi").is_err(),
            "the syntax check itself must work"
        );
    }

    #[test]
    fn wait_console_outlasts_a_restart_and_sees_a_domain_go() {
        // A domain gone for a while and back (a restart under the same name) that then
        // prints the line: found. One that stays gone: 2. One that stays up and silent: 1.
        let script = format!(
            "{LIB_SH}\nt0=$(now_ms)\nel() {{ echo $(( $(now_ms) - t0 )); }}\n\
             RXL_GONE_MS=4000\n\
             dom_state() {{ [ $(el) -lt 2500 ] && echo gone || echo -b----; }}\n\
             console_count() {{ [ $(el) -ge 3500 ] && echo 1 || echo 0; }}\n\
             wait_console g line 1 20; echo restart=$?\n\
             RXL_GONE_MS=1500; t0=$(now_ms)\n\
             dom_state() {{ echo gone; }}\nconsole_count() {{ echo 0; }}\n\
             wait_console g line 1 20; echo gone=$? after=$(el)\n\
             dom_state() {{ echo -b----; }}\n\
             wait_console g line 1 1; echo silent=$?\n"
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("restart=0\n"), "{text}");
        assert!(text.contains("gone=2 "), "{text}");
        let after: u64 = text
            .split("after=")
            .nth(1)
            .and_then(|s| s.trim().lines().next()?.parse().ok())
            .unwrap_or(0);
        assert!(after >= 1500, "gone only after RXL_GONE_MS: {text}");
        assert!(text.contains("silent=1\n"), "{text}");
    }

    #[test]
    fn generated_scenario_is_valid_shell() {
        let dir = tempfile::tempdir().unwrap();
        let hello = dir.path().join("hello");
        std::fs::write(&hello, b"guest").unwrap();
        let mut img = Image::new();
        let steps = scenario::steps(Some(hello));
        scenario::install(&steps, &mut img).unwrap();
        for step in &steps {
            for cap in &step.captures {
                sh_syntax_ok(&cap.script)
                    .unwrap_or_else(|e| panic!("{}/{}: {e}", step.name, cap.name));
            }
        }
        let Some(Entry::File {
            data: image::Data::Bytes(b),
            ..
        }) = img.get("/e2e/scenario.sh")
        else {
            panic!("no generated /e2e/scenario.sh");
        };
        let scenario = String::from_utf8_lossy(b);
        assert!(
            scenario.contains("rxl_capture hello/xl-create 90"),
            "{scenario}"
        );
        sh_syntax_ok(&scenario).unwrap();
        assert!(img.get("/e2e/guests/hello.cfg").is_some());
    }

    #[test]
    fn the_verdict_lists_problems_and_shows_rxl_output() {
        let steps = scenario::steps(None);
        let report = markers::parse(
            "@@RXL-BEGIN info/xl-info\nxen_version : 4.17.7\n@@RXL-END info/xl-info rc=0\n\
             @@RXL-BEGIN info/rxl-info\nrxl: no such command\n@@RXL-END info/rxl-info rc=2\n",
        );
        let mut v = Verdict {
            lines: Vec::new(),
            failed: false,
        };
        for step in &steps {
            judge_step(step, &report, "", &mut v);
        }
        assert!(v.failed);
        let text = v.lines.join("\n");
        assert!(text.starts_with("FAIL info"), "{text}");
        assert!(text.contains("| rxl: no such command"), "{text}");
        // xl's own (reference) output is not repeated in the report.
        assert!(!text.contains("| xen_version : 4.17.7"), "{text}");
    }

    #[test]
    fn an_unfinished_capture_shows_its_notes() {
        let steps = scenario::steps(None);
        let report =
            markers::parse("@@RXL-READY\n@@RXL-BEGIN info/xl-info\n@@RXL-NOTE half way\npartial\n");
        let mut v = Verdict {
            lines: Vec::new(),
            failed: false,
        };
        judge_step(&steps[0], &report, "", &mut v);
        let text = v.lines.join("\n");
        assert!(v.failed, "{text}");
        assert!(text.contains("note info/xl-info: half way"), "{text}");
        assert!(text.contains("did not finish"), "{text}");
    }

    #[test]
    fn the_result_channel_falls_back_to_the_console_only_with_markers() {
        let framed = "@@RXL-READY\n@@RXL-BEGIN a/b\nx\n@@RXL-END a/b rc=0\n";
        let (r, ch) = pick_channel(framed, "(XEN) noise\n");
        assert!(ch.starts_with("com2") && r.ready);
        let (r, ch) = pick_channel("", &format!("(XEN) boot\n{framed}"));
        assert!(ch.contains("console") && r.capture("a/b").is_some());
        let (r, ch) = pick_channel("", "(XEN) boot\n");
        assert!(ch.starts_with("none") && !r.ready);
        let (r, ch) = pick_channel("@@RXL-SETUP-FAILED xenstored\n", framed);
        assert!(ch.starts_with("com2") && r.setup_failed.is_some());
    }

    #[test]
    fn dom0_knows_the_user_bootloaders_run_as() {
        // rxl resolves rxl.conf's bootloader_user (default nobody) in /etc/passwd.
        let nobody = ETC_PASSWD
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f[0] == "nobody")
            .expect("a nobody line");
        assert_eq!((nobody[2], nobody[3]), ("65534", "65534"));
        assert!(ETC_GROUP.lines().any(|l| l.starts_with("nogroup:x:65534:")));
        assert!(PYGRUB_PROGRAMS.contains(&"/usr/bin/python3.11"));
    }

    #[test]
    fn dom0_has_the_device_model_and_what_it_opens() {
        // The packages that ship the binary, its firmware and data, and the paths libxl
        // and QEMU open (libxl's built-in hvmloader and SeaBIOS paths).
        for pkg in [
            "qemu-system-xen",
            "qemu-system-data",
            "seabios",
            "ipxe-qemu",
        ] {
            assert!(packages::DOM0_PACKAGES.contains(&pkg), "{pkg}");
        }
        assert_eq!(DEVICE_MODEL, "/usr/libexec/xen-qemu-system-i386");
        assert!(HVM_FILES.contains(&"/usr/lib/xen-4.17/boot/hvmloader"));
        assert!(HVM_TREES.contains(&"/usr/share/seabios"));
        assert!(HVM_TREES.contains(&"/usr/share/qemu/keymaps"));
    }

    #[test]
    fn last_lines_takes_the_tail() {
        assert_eq!(last_lines("a\nb\nc\n", 2), ["b", "c"]);
        assert_eq!(last_lines("a", 5), ["a"]);
        assert!(last_lines("", 3).is_empty());
    }
}
