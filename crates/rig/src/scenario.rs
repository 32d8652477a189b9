//! The scenario dom0 runs: a list of steps, each a set of dom0 shell snippets whose output
//! is captured, plus a check over those captures (and the serial log) run on the host.
//!
//! To add a step, write a function returning a [`Step`] and push it in [`steps`].

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::image::{Image, ImageError};
use crate::markers::{Capture, Report};

/// One command whose output dom0 captures.
#[derive(Debug, Clone)]
pub struct CaptureSpec {
    /// Name, unique within the step (`xl-info`).
    pub name: &'static str,
    /// dom0 kills the snippet after this many seconds.
    pub timeout_s: u32,
    /// A POSIX shell snippet (busybox sh), run with `sh`.
    pub script: String,
    /// Print the output when the step fails (off for long reference outputs such as xl's).
    pub show_on_failure: bool,
    /// The longest the snippet goes between two `note`s, when it promises one (a capture
    /// that notes every run of a loop): the host's watchdog then waits that long, not the
    /// whole timeout, before it takes dom0 as hung.
    pub quiet_s: Option<u32>,
}

/// A file a step needs inside the image.
#[derive(Debug, Clone)]
pub enum StepFile {
    /// A file built or found on the host.
    Host {
        /// In-image path.
        path: String,
        /// Host path.
        host: PathBuf,
    },
    /// Generated contents.
    Text {
        /// In-image path.
        path: String,
        /// Contents.
        text: String,
    },
    /// Generated binary contents.
    Bytes {
        /// In-image path.
        path: String,
        /// Contents.
        data: Vec<u8>,
    },
}

/// What a check sees.
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'a> {
    /// The step's name.
    pub step: &'a str,
    /// Everything dom0 reported.
    pub report: &'a Report,
    /// The whole serial log (Xen, dom0 console, guests' port 0xe9 lines).
    pub console: &'a str,
}

impl<'a> Outcome<'a> {
    /// The finished capture `name` of this step, or a problem saying why there is none.
    pub fn capture(&self, name: &str) -> Result<&'a Capture, String> {
        let full = format!("{}/{name}", self.step);
        match self.report.capture(&full) {
            Some(c) if c.rc.is_some() => Ok(c),
            Some(_) => Err(format!(
                "{full} did not finish (dom0 hung or died during it)"
            )),
            None => Err(format!("{full} never ran (dom0 stopped before it)")),
        }
    }

    /// Like [`Outcome::capture`], also requiring exit status 0.
    pub fn succeeded(&self, name: &str) -> Result<&'a Capture, String> {
        let c = self.capture(name)?;
        match c.rc {
            Some(0) => Ok(c),
            rc => Err(format!(
                "{}/{name} exited with status {}: {}",
                self.step,
                rc.unwrap_or(-1),
                excerpt(&c.lines)
            )),
        }
    }
}

pub use crate::checks::excerpt;

/// A check: `Ok(summary)` or the list of problems found.
pub type Check = Box<dyn Fn(&Outcome<'_>) -> Result<String, Vec<String>>>;

/// What a passed step leaves behind once the run's verdict is in (the side-by-side step's
/// benchmark table): `Ok(text to print)` or why it could not.
pub type Publish = Box<dyn Fn(&Outcome<'_>) -> Result<String, String>>;

/// One step of the scenario.
pub struct Step {
    /// Short name (`info`), used in markers and reports.
    pub name: &'static str,
    /// What the step proves, one line.
    pub about: &'static str,
    /// Commands dom0 runs, in order.
    pub captures: Vec<CaptureSpec>,
    /// Files the step needs in the image.
    pub files: Vec<StepFile>,
    /// The host-side verdict. It has no side effects: the host may run it more than once
    /// (to decide on a fresh boot, then for the verdict).
    pub check: Check,
    /// Run once, after the verdict, when the step passed, on the boot that judged it.
    pub publish: Option<Publish>,
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("name", &self.name)
            .field("captures", &self.captures)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

/// Where step snippets live in the image.
const STEPS_DIR: &str = "/e2e/steps";

/// The dom0 command-line word that makes the scenario start at step N (counted from 0) in
/// a fresh boot, after dom0 hung or died in an earlier one.
pub const FROM_ARG: &str = "rxl_from";
/// dom0's command-line argument naming the last step to run (a fresh boot after failures
/// beside dom0 faults runs only up to the last failed step).
pub const TO_ARG: &str = "rxl_to";

/// Steps that use what the step before them left (`guest-list` lists the guest `hello`
/// made): a run resumed at one of them starts at the step before.
const NEEDS_PREVIOUS: &[&str] = &["guest-list"];

/// How long capture `name` (`step/capture`) may go without a sign of life on the result
/// channel: its own timeout when that is short; a longer one must write a `note` at least
/// every [`NOTE_EVERY_S`] seconds, or as often as its `quiet_s` promises. A minute of slack
/// covers dom0's own `timeout` firing.
pub fn silence_limit(steps: &[Step], name: &str) -> Option<std::time::Duration> {
    let (step, cap) = name.split_once('/')?;
    let spec = if step == DIAG {
        diagnostics().into_iter().find(|c| c.name == cap)?
    } else {
        steps
            .iter()
            .find(|s| s.name == step)?
            .captures
            .iter()
            .find(|c| c.name == cap)?
            .clone()
    };
    let quiet = spec.quiet_s.unwrap_or(NOTE_EVERY_S).min(NOTE_EVERY_S);
    Some(std::time::Duration::from_secs(
        u64::from(spec.timeout_s.min(quiet)) + 60,
    ))
}

/// A capture with a longer timeout than this writes a `note` at least this often.
pub const NOTE_EVERY_S: u32 = 400;

/// Where a run that stopped early should start again: the first step in `from..=to` with a
/// capture that never ran or never finished (or the step before it, when it needs that one).
/// `None` when every step of the span finished.
pub fn resume_point(steps: &[Step], report: &Report, from: usize, to: usize) -> Option<usize> {
    let unfinished = |step: &Step| {
        step.captures.iter().any(|c| {
            report
                .capture(&format!("{}/{}", step.name, c.name))
                .is_none_or(|c| c.rc.is_none())
        })
    };
    let mut at = (from..=to.min(steps.len().saturating_sub(1))).find(|&i| unfinished(&steps[i]))?;
    while at > 0 && NEEDS_PREVIOUS.contains(&steps[at].name) {
        at -= 1;
    }
    Some(at)
}

/// Makes the first capture of a step crash dom0 (`crash:STEP`) or hang it without a sign
/// of life (`hang:STEP`), in the first boot only, so that the host's recovery (a fresh boot
/// from that step) can be seen working.
pub fn inject(steps: &mut [Step], spec: &str) -> Result<(), String> {
    let (what, name) = spec
        .split_once(':')
        .ok_or("expected crash:STEP or hang:STEP")?;
    let fault = match what {
        // Xen reboots (QEMU, with -no-reboot, exits) when dom0 panics.
        "crash" => "echo 1 >/proc/sys/kernel/sysrq; echo c >/proc/sysrq-trigger\n",
        // dom0's `timeout` sends TERM only: ignoring it leaves the capture running forever.
        "hang" => "trap '' TERM; while :; do sleep 60; done\n",
        _ => return Err(format!("unknown fault {what:?}: crash or hang")),
    };
    let step = steps
        .iter_mut()
        .find(|s| s.name == name)
        .ok_or_else(|| format!("no step {name:?}"))?;
    let cap = step
        .captures
        .first_mut()
        .ok_or_else(|| format!("step {name:?} has no capture"))?;
    cap.script = format!(
        "[ \"$RXL_FROM\" = 0 ] && {{ {} }}\n{}",
        fault.trim_end().to_owned() + ";",
        cap.script
    );
    Ok(())
}

/// The count of dom0 processes dead of a fault that `rxl_capture` noted when `c` ended.
fn faults_after(c: &Capture) -> Option<u64> {
    c.notes
        .iter()
        .rev()
        .find_map(|n| n.strip_prefix("faults=")?.trim().parse().ok())
}

/// How many dom0 processes had died of a fault by the last capture of the boot.
pub fn faults_in_boot(report: &Report) -> u64 {
    report
        .captures
        .iter()
        .filter_map(faults_after)
        .max()
        .unwrap_or(0)
}

/// Steps that failed in a boot where dom0 processes died of faults: where a fresh boot
/// should start and end, and why.
#[derive(Debug, PartialEq, Eq)]
pub struct FaultedFailure {
    /// The first step the fresh boot runs (the first failed one, or the step it needs).
    pub at: usize,
    /// The last step that failed: the fresh boot runs no step after it, since those passed.
    pub last: usize,
    /// How many dom0 processes died of a fault in the boot.
    pub faults: u64,
    /// The first failed step's problems (printed before the fresh boot, since its verdict
    /// is taken from that boot).
    pub problems: Vec<String>,
}

/// When dom0 processes died of faults anywhere in this boot (the emulation's; a corrupted
/// dom0 daemon or tool can break any later step, and heap corruption that ends in an abort
/// leaves no dmesg line), the failed steps in `from..=to` as a [`FaultedFailure`] (see
/// [`resume_point`]).
pub fn failed_with_faults(
    steps: &[Step],
    report: &Report,
    console: &str,
    from: usize,
    to: usize,
) -> Option<FaultedFailure> {
    let faults = faults_in_boot(report);
    if faults == 0 {
        return None;
    }
    let mut failed = (from..=to.min(steps.len().saturating_sub(1))).filter_map(|i| {
        let outcome = Outcome {
            step: steps[i].name,
            report,
            console,
        };
        (steps[i].check)(&outcome).err().map(|p| (i, p))
    });
    let (first, problems) = failed.next()?;
    let last = failed.next_back().map_or(first, |(i, _)| i);
    let mut at = first;
    while at > 0 && NEEDS_PREVIOUS.contains(&steps[at].name) {
        at -= 1;
    }
    Some(FaultedFailure {
        at,
        last,
        faults,
        problems,
    })
}

/// Adds the scenario (`/e2e/scenario.sh`, one file per snippet, step files) to the image.
/// Step N runs only when dom0's command line has no `rxl_from=M` with M > N and no
/// `rxl_to=M` with M < N.
pub fn install(steps: &[Step], image: &mut Image) -> Result<(), ImageError> {
    let mut scenario = format!(
        "# Generated by `cargo xtask e2e`.\n. /e2e/lib.sh\n\
         RXL_FROM=$(sed -n 's/.*{FROM_ARG}=\\([0-9][0-9]*\\).*/\\1/p' ${{RXL_CMDLINE:-/proc/cmdline}})\n\
         RXL_FROM=${{RXL_FROM:-0}}\nexport RXL_FROM\n\
         RXL_TO=$(sed -n 's/.*{TO_ARG}=\\([0-9][0-9]*\\).*/\\1/p' ${{RXL_CMDLINE:-/proc/cmdline}})\n\
         RXL_TO=${{RXL_TO:-999999}}\nexport RXL_TO\n"
    );
    for (idx, step) in steps.iter().enumerate() {
        let _ = writeln!(scenario, "\n# {}: {}", step.name, step.about);
        let _ = writeln!(
            scenario,
            "if [ \"$RXL_FROM\" -le {idx} ] && [ {idx} -le \"$RXL_TO\" ]; then"
        );
        for cap in &step.captures {
            let path = format!("{STEPS_DIR}/{}/{}.sh", step.name, cap.name);
            image.bytes(&path, 0o755, cap.script.clone())?;
            let _ = writeln!(
                scenario,
                "rxl_capture {}/{} {} {path}",
                step.name, cap.name, cap.timeout_s
            );
        }
        let _ = writeln!(scenario, "fi");
        for file in &step.files {
            match file {
                StepFile::Host { path, host } => image.host_file(path, host)?,
                StepFile::Text { path, text } => image.bytes(path, 0o644, text.clone())?,
                StepFile::Bytes { path, data } => image.bytes(path, 0o644, data.clone())?,
            }
        }
    }
    let _ = writeln!(scenario, "\n# {DIAG}: dom0 state for failure reports");
    for cap in diagnostics() {
        let path = format!("{STEPS_DIR}/{DIAG}/{}.sh", cap.name);
        image.bytes(&path, 0o755, cap.script.clone())?;
        let _ = writeln!(
            scenario,
            "rxl_capture {DIAG}/{} {} {path}",
            cap.name, cap.timeout_s
        );
    }
    image.bytes("/e2e/scenario.sh", 0o755, scenario)
}

/// The pseudo-step whose captures describe dom0 after the steps; shown when a run fails.
pub const DIAG: &str = "diag";

/// Captures run after every step, for failure reports (not checked).
fn diagnostics() -> Vec<CaptureSpec> {
    vec![
        cap("dmesg", 20, "dmesg | tail -n 60\n"),
        cap(
            "guest-consoles",
            20,
            include_str!("../scripts/steps/diag/guest-consoles.sh"),
        ),
        // What Xen's hotplug scripts (block, vif-bridge) said.
        cap(
            "hotplug-log",
            20,
            "tail -n 40 /var/log/xen/xen-hotplug.log 2>/dev/null\n",
        ),
        // User processes only (kernel threads are shown in brackets).
        cap("ps", 20, "ps | grep -v ' \\[[^]]*\\]$'\n"),
    ]
}

/// The steps of this scenario with only the PVH test guest (when there is one) as input.
#[cfg(test)]
pub fn steps(hello: Option<PathBuf>) -> Vec<Step> {
    steps_for(&Inputs {
        hello,
        ..Inputs::default()
    })
}

/// The steps of this scenario; a step whose input the host could not provide is left out.
pub fn steps_for(inputs: &Inputs) -> Vec<Step> {
    let mut list = vec![crate::steps::info::info_step()];
    if let Some(x) = &inputs.xs_smoke {
        list.push(crate::steps::xenstore::xenstore_step(x.clone()));
    }
    if let Some(h) = &inputs.hello {
        list.push(crate::steps::hello::hello_step(h.clone()));
        list.push(crate::steps::guest_list::guest_list_step());
        list.push(crate::steps::rxl_hello::rxl_hello_step(h.clone()));
    }
    if let Some(l) = &inputs.linux {
        list.push(crate::steps::linux::linux_step(l));
    }
    if let Some(h) = &inputs.hello {
        list.push(crate::steps::failures::failures_step(
            h,
            inputs.linux.as_ref(),
        ));
    }
    if let Some(g) = &inputs.pvgrub {
        list.push(crate::steps::pvgrub::pvgrub_step(g));
    }
    if let Some(h) = &inputs.hello {
        list.push(crate::steps::autostart::autostart_step(h));
    }
    if let Some(h) = &inputs.hello {
        list.push(crate::steps::side_by_side::side_by_side_step(
            h,
            inputs.linux.as_ref(),
            inputs.benchmarks_doc.clone(),
        ));
    }
    if let Some(l) = &inputs.linux {
        let tools = match &inputs.device_tools {
            Some(t) => t.clone(),
            None => crate::steps::devices::select_tools(crate::steps::devices::DEFAULT_TOOLS)
                .unwrap_or_default(),
        };
        list.push(crate::steps::devices::devices_step(
            l,
            &tools,
            inputs.benchmarks_doc.clone(),
        ));
    }
    if let Some(l) = &inputs.linux {
        list.push(crate::steps::pv::pv_step(l, inputs.pvgrub64.as_deref()));
    }
    if let (Some(_), Some(disks)) = (&inputs.linux, &inputs.boot_disks) {
        let tools = match &inputs.boot_tools {
            Some(t) => t.clone(),
            None => crate::steps::bootloader::select_tools(crate::steps::bootloader::DEFAULT_TOOLS)
                .unwrap_or_default(),
        };
        list.push(crate::steps::bootloader::bootloader_step(
            disks,
            inputs.pvgrub.as_deref(),
            &tools,
            inputs.benchmarks_doc.clone(),
        ));
    }
    if let (Some(l), Some(disks)) = (&inputs.linux, &inputs.hvm_disks) {
        let tools = match &inputs.hvm_tools {
            Some(t) => t.clone(),
            None => crate::steps::hvm::select_tools(crate::steps::hvm::DEFAULT_TOOLS)
                .unwrap_or_default(),
        };
        list.push(crate::steps::hvm::hvm_step(
            l,
            disks.boot_img.clone(),
            &disks.qcow2,
            &tools,
        ));
    }
    list
}

/// Keeps only the steps named in `only` (comma-separated; `RXL_E2E_STEPS`), in their
/// order; an unknown name is an error that lists the known ones.
pub fn keep_only(steps: &mut Vec<Step>, only: &str) -> Result<(), String> {
    let wanted: Vec<&str> = only
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let known: Vec<&str> = steps.iter().map(|s| s.name).collect();
    if let Some(bad) = wanted.iter().find(|w| !known.contains(w)) {
        return Err(format!(
            "no step {bad:?}; the steps are {}",
            known.join(", ")
        ));
    }
    steps.retain(|s| wanted.contains(&s.name));
    Ok(())
}

/// The items of `all` whose labels `spec` names (comma-separated, blanks around names
/// ignored), in the order of `all`: a step's tools chosen by an environment variable. An
/// unknown name, or none at all, is an error naming the known labels.
pub(crate) fn select_labels<T: Copy>(
    spec: &str,
    all: &[T],
    label: impl Fn(&T) -> &str,
) -> Result<Vec<T>, String> {
    let known = all.iter().map(&label).collect::<Vec<_>>().join(", ");
    let wanted: Vec<&str> = spec
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect();
    if let Some(bad) = wanted.iter().find(|w| !all.iter().any(|t| label(t) == **w)) {
        return Err(format!("no tool {bad:?}; the tools are {known}"));
    }
    let picked: Vec<T> = all
        .iter()
        .filter(|t| wanted.contains(&label(t)))
        .copied()
        .collect();
    if picked.is_empty() {
        return Err(format!("no tool named; the tools are {known}"));
    }
    Ok(picked)
}

/// A capture whose script is one of the rig's `.sh` files (`body`, built in with
/// `include_str!`), run with each of `vars` set as a shell variable before its first line.
pub(crate) fn script_cap(
    name: &'static str,
    timeout_s: u32,
    body: &str,
    vars: &[(&str, String)],
) -> CaptureSpec {
    let mut script = String::new();
    for (var, value) in vars {
        let _ = writeln!(script, "{var}={}", sh_quote(value));
    }
    script.push_str(body);
    cap(name, timeout_s, &script)
}

/// `value` as one single-quoted shell word.
pub(crate) fn sh_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

pub(crate) fn cap(name: &'static str, timeout_s: u32, script: &str) -> CaptureSpec {
    CaptureSpec {
        name,
        timeout_s,
        script: script.to_owned(),
        show_on_failure: true,
        quiet_s: None,
    }
}

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
    /// GRUB's 64-bit PV image (`grub-x86_64-xen.bin`).
    pub pvgrub64: Option<PathBuf>,
    /// docs/benchmarks.md, whose side-by-side section the timings replace.
    pub benchmarks_doc: Option<PathBuf>,
    /// The xenstore client's live check (`cargo build --example xs-smoke`).
    pub xs_smoke: Option<PathBuf>,
    /// The tools of the devices step (`RXL_E2E_DEVICE_TOOLS`); None: its default ones.
    pub device_tools: Option<Vec<crate::steps::devices::Tool>>,
    /// The directory of the bootloader step's disk images (`steps::bootloader::build_disks`).
    pub boot_disks: Option<PathBuf>,
    /// The tools of the bootloader step (`RXL_E2E_BOOT_TOOLS`); None: xl and rxl.
    pub boot_tools: Option<Vec<&'static str>>,
    /// The hvm step's disks: the boot-sector disk and the qcow2 image.
    pub hvm_disks: Option<HvmDisks>,
    /// The tools of the hvm step (`RXL_E2E_HVM_TOOLS`); None: xl.
    pub hvm_tools: Option<Vec<&'static str>>,
}

/// The hvm step's disks, built on the host.
#[derive(Debug, Clone)]
pub struct HvmDisks {
    /// The raw disk whose boot sector prints the marker (`steps::hvm::boot_disk`).
    pub boot_img: Vec<u8>,
    /// An empty qcow2 image (`steps::hvm::build_qcow2`).
    pub qcow2: PathBuf,
}

/// The Linux guest: dom0's own Debian kernel and an initramfs holding busybox.
#[derive(Debug, Clone)]
pub struct LinuxFiles {
    /// The bzImage.
    pub kernel: PathBuf,
    /// The gzip-compressed newc initramfs built by [`build_linux`].
    pub initrd: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{guest_lines, hello_problems};
    use crate::markers;
    use crate::steps::hello::check_hello;
    use std::path::Path;

    #[test]
    fn guest_lines_are_found_anywhere() {
        let console = "(XEN) [   1.0] boot\n(d1) [   12.5] RXLTEST start\n\
                       dom0 half(d1) RXLTEST spliced\n(d2) RXLTEST other\n(d1) plain\n\
                       (d1) RXLTEST a(d2) RXLTEST b\n(d1) RXLTEST (done) ok\n";
        assert_eq!(
            guest_lines(console, 1),
            [
                "RXLTEST start",
                "RXLTEST spliced",
                "plain",
                "RXLTEST a",
                "RXLTEST (done) ok"
            ]
        );
        assert_eq!(guest_lines(console, 2), ["RXLTEST other", "RXLTEST b"]);
        assert!(guest_lines(console, 3).is_empty());
        // (d1) must not match (d11).
        assert!(guest_lines("(d11) RXLTEST x\n", 1).is_empty());
    }

    fn outcome_for(results: &str) -> Report {
        markers::parse(results)
    }

    #[test]
    fn hello_check_wants_rxltest_lines_of_its_domain() {
        let report =
            outcome_for("@@RXL-BEGIN hello/xl-create\ndomid=3\n@@RXL-END hello/xl-create rc=0\n");
        let run = |console: &str| {
            check_hello(&Outcome {
                step: "hello",
                report: &report,
                console,
            })
        };
        let good = GOOD_HELLO.replace("(dN)", "(d3)");
        let summary = run(&good).unwrap();
        assert!(summary.contains("d3 printed 9 RXLTEST lines"), "{summary}");
        assert!(summary.contains("madt lapics=1 enabled=1"), "{summary}");
        // Lines of another domain do not count.
        assert!(run(&GOOD_HELLO.replace("(dN)", "(d2)")).is_err());
        // A guest that stopped early is caught.
        let short = good.replace("(d3) [   13.0] RXLTEST done\n", "");
        let err = run(&short).unwrap_err();
        assert!(err.iter().any(|e| e.contains("stopped early")), "{err:?}");
    }

    /// A hello guest's console lines as Xen prints them (one with a timestamp).
    const GOOD_HELLO: &str = "(XEN) [   12.0] d3v0 started\n\
        (dN) RXLTEST magic=0x336ec578 version=1\n\
        (dN) RXLTEST flags=0x00000000\n\
        (dN) RXLTEST cmdline=rxl-e2e hello\n\
        (dN) RXLTEST modules=0\n\
        (dN) RXLTEST memmap_entries=2\n\
        (dN) RXLTEST memmap 0 addr=0x0000000000000000 size=0x0000000002000000 type=1\n\
        (dN) RXLTEST rsdp=0x00000000fc000000 sig=RSD PTR \n\
        (dN) RXLTEST madt lapics=1 enabled=1\n\
        (d3) [   13.0] RXLTEST done\n";

    #[test]
    fn hello_problems_are_specific() {
        let lines = |text: &str| -> Vec<String> {
            guest_lines(&text.replace("(dN)", "(d3)"), 3)
                .into_iter()
                .filter(|l| l.starts_with("RXLTEST"))
                .collect()
        };
        let good = lines(GOOD_HELLO);
        assert!(hello_problems(&good, "rxl-e2e hello", 1).is_empty());
        let p = hello_problems(&good, "other", 2);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].contains("cmdline") && p[1].contains("lapics=2"),
            "{p:?}"
        );
        let bad = lines(
            &GOOD_HELLO
                .replace("magic=0x336ec578", "magic=0x00000000")
                .replace(
                    "RXLTEST flags",
                    "RXLTEST error bad magic\n(dN) RXLTEST flags",
                ),
        );
        let p = hello_problems(&bad, "rxl-e2e hello", 1);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[1].contains("error bad magic"), "{p:?}");
    }

    /// Every step, with small stand-in files as inputs in `dir`.
    fn steps_in(dir: &Path) -> Vec<Step> {
        for f in [
            "hello",
            "vmlinuz",
            "initrd.img",
            "grub.bin",
            "xs-smoke",
            "mbr.img",
            "sepboot.img",
            "outside.img",
            "symlink.img",
            "huge.img",
        ] {
            std::fs::write(dir.join(f), b"stand-in").unwrap();
        }
        steps_for(&Inputs {
            hello: Some(dir.join("hello")),
            linux: Some(LinuxFiles {
                kernel: dir.join("vmlinuz"),
                initrd: dir.join("initrd.img"),
            }),
            pvgrub: Some(dir.join("grub.bin")),
            pvgrub64: Some(dir.join("grub.bin")),
            benchmarks_doc: None,
            xs_smoke: Some(dir.join("xs-smoke")),
            device_tools: None,
            boot_disks: Some(dir.to_owned()),
            boot_tools: None,
            hvm_disks: Some(HvmDisks {
                boot_img: vec![0; 512],
                qcow2: dir.join("grub.bin"),
            }),
            hvm_tools: None,
        })
    }

    /// Every step; the stand-in inputs are deleted again (steps only name them).
    fn steps_with_linux() -> Vec<Step> {
        let dir = tempfile::tempdir().unwrap();
        steps_in(dir.path())
    }

    #[test]
    fn a_run_resumes_at_the_first_unfinished_step() {
        let steps = steps_with_linux();
        let names: Vec<&str> = steps.iter().map(|s| s.name).collect();
        let idx = |n: &str| names.iter().position(|x| *x == n).unwrap();
        let done = |upto: usize| {
            let mut text = String::from("@@RXL-READY\n");
            for s in &steps[..upto] {
                for c in &s.captures {
                    text += &format!(
                        "@@RXL-BEGIN {0}/{1}\n@@RXL-END {0}/{1} rc=0\n",
                        s.name, c.name
                    );
                }
            }
            text
        };
        // Stopped inside rxl-hello's second capture.
        let at = idx("rxl-hello");
        let text = done(at)
            + &format!(
                "@@RXL-BEGIN rxl-hello/{}\n@@RXL-END rxl-hello/{} rc=1\n@@RXL-BEGIN rxl-hello/{}\n",
                steps[at].captures[0].name, steps[at].captures[0].name, steps[at].captures[1].name
            );
        assert_eq!(
            resume_point(&steps, &markers_parse(&text), 0, steps.len() - 1),
            Some(at)
        );
        // A step that never began counts too.
        assert_eq!(
            resume_point(&steps, &markers_parse(&done(at)), 0, steps.len() - 1),
            Some(at)
        );
        // guest-list needs the guest hello leaves: start at hello.
        let gl = idx("guest-list");
        assert_eq!(
            resume_point(&steps, &markers_parse(&done(gl)), 0, steps.len() - 1),
            Some(idx("hello"))
        );
        // Every step finished (a crash during the diagnostics): nothing to resume.
        assert_eq!(
            resume_point(
                &steps,
                &markers_parse(&done(steps.len())),
                0,
                steps.len() - 1
            ),
            None
        );
        // A boot that started later only looks from its start on.
        let report = markers_parse(&done(steps.len()));
        assert_eq!(
            resume_point(&steps, &report, steps.len() - 1, steps.len() - 1),
            None
        );
        // A boot that ended early (up to hello) only looks up to its end.
        assert_eq!(
            resume_point(&steps, &markers_parse(&done(gl)), 0, idx("hello")),
            None
        );
    }

    fn markers_parse(text: &str) -> Report {
        super::super::markers::parse(text)
    }

    #[test]
    fn a_step_that_failed_beside_dom0_faults_is_found() {
        let steps = steps_with_linux();
        let idx = |n: &str| steps.iter().position(|s| s.name == n).unwrap();
        // Every capture of every step, rc 0, with the fault count `count(step)` at its end.
        let text = |count: &dyn Fn(&str) -> u64| {
            let mut t = String::from("@@RXL-READY\n");
            for s in &steps {
                for c in &s.captures {
                    t += &format!(
                        "@@RXL-BEGIN {0}/{1}\n@@RXL-NOTE faults={2}\n@@RXL-END {0}/{1} rc=0\n",
                        s.name,
                        c.name,
                        count(s.name)
                    );
                }
            }
            t + "@@RXL-DONE\n"
        };
        let hello = idx("hello");
        // Two faults during hello (which fails: no RXLTEST lines on an empty console).
        let r = markers_parse(&text(&|s: &str| {
            if steps.iter().position(|x| x.name == s).unwrap() >= hello {
                2
            } else {
                0
            }
        }));
        assert_eq!(faults_in_boot(&r), 2);
        // info fails too on these stand-in outputs: the first failed step is where to start.
        assert_eq!(
            failed_with_faults(&steps, &r, "", 0, steps.len() - 1).map(|f| (f.at, f.faults)),
            Some((0, 2))
        );
        assert_eq!(
            failed_with_faults(&steps, &r, "", hello, steps.len() - 1).map(|f| (f.at, f.faults)),
            Some((hello, 2))
        );
        // guest-list failed: it needs hello's guest, so hello runs again.
        let gl = idx("guest-list");
        let r = markers_parse(&text(&|s: &str| {
            u64::from(steps.iter().position(|x| x.name == s).unwrap() >= gl)
        }));
        assert_eq!(
            failed_with_faults(&steps, &r, "", gl, steps.len() - 1).map(|f| (f.at, f.faults)),
            Some((hello, 1))
        );
        // The fresh boot ends at the last failed step of the span, and says why.
        let f = failed_with_faults(&steps, &r, "", gl, gl + 1).unwrap();
        assert_eq!((f.at, f.last), (hello, gl + 1));
        assert!(!f.problems.is_empty());
        let f = failed_with_faults(&steps, &r, "", gl, steps.len() - 1).unwrap();
        assert_eq!(f.last, steps.len() - 1);
        // No faults: a failed step is just a failure.
        let r = markers_parse(&text(&|_| 0));
        assert_eq!(
            failed_with_faults(&steps, &r, "", 0, steps.len() - 1).map(|f| (f.at, f.faults)),
            None
        );
    }

    #[test]
    fn faults_are_injected_into_the_first_boot_only() {
        let mut steps = steps_with_linux();
        let before = steps[1].captures[0].script.clone();
        let spec = format!("crash:{}", steps[1].name);
        inject(&mut steps, &spec).unwrap();
        let after = steps[1].captures[0].script.clone();
        assert!(after.starts_with("[ \"$RXL_FROM\" = 0 ] && { "), "{after}");
        assert!(after.contains("sysrq-trigger") && after.ends_with(&before));
        inject(&mut steps, "hang:info").unwrap();
        assert!(steps[0].captures[0].script.contains("trap '' TERM"));
        assert!(inject(&mut steps, "crash:nope").is_err());
        assert!(inject(&mut steps, "explode:info").is_err());
        assert!(inject(&mut steps, "info").is_err());
        // The injected line is valid shell.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.sh");
        std::fs::write(&p, &after).unwrap();
        let ok = std::process::Command::new("sh")
            .arg("-n")
            .arg(&p)
            .status()
            .unwrap();
        assert!(ok.success());
    }

    #[test]
    fn silence_limits_follow_the_capture_timeouts() {
        let steps = steps_with_linux();
        assert_eq!(
            silence_limit(&steps, "info/xl-info"),
            Some(std::time::Duration::from_secs(30 + 60))
        );
        assert_eq!(
            silence_limit(&steps, "diag/dmesg"),
            Some(std::time::Duration::from_secs(20 + 60))
        );
        let timed = steps
            .iter()
            .find(|s| s.name == "side-by-side")
            .and_then(|s| s.captures.iter().find(|c| c.name == "timed"))
            .unwrap();
        assert!(timed.timeout_s > NOTE_EVERY_S);
        assert!(
            timed.script.contains("note "),
            "a long capture must write notes"
        );
        // The timed runs promise a note at least every quiet_s seconds: a hang there is
        // seen sooner than the general rule would.
        let quiet = timed.quiet_s.expect("timed runs note every phase");
        assert!(quiet < NOTE_EVERY_S);
        assert_eq!(
            silence_limit(&steps, "side-by-side/timed"),
            Some(std::time::Duration::from_secs(u64::from(quiet) + 60))
        );
        assert_eq!(silence_limit(&steps, "nope/x"), None);
        assert_eq!(silence_limit(&steps, "info"), None);
        // Every long capture writes notes.
        for s in &steps {
            for c in &s.captures {
                assert!(
                    (c.timeout_s <= NOTE_EVERY_S && c.quiet_s.is_none())
                        || c.script.contains("note "),
                    "{}/{} runs up to {} s without notes",
                    s.name,
                    c.name,
                    c.timeout_s
                );
            }
        }
    }

    #[test]
    fn the_scenario_starts_where_the_command_line_says() {
        let inputs = tempfile::tempdir().unwrap();
        let steps = steps_in(inputs.path());
        let mut img = Image::new();
        install(&steps, &mut img).unwrap();
        let Some(super::super::image::Entry::File { data, .. }) = img.get("/e2e/scenario.sh")
        else {
            panic!("no scenario");
        };
        let super::super::image::Data::Bytes(b) = data else {
            panic!("scenario is not generated bytes");
        };
        let text =
            String::from_utf8_lossy(b).replace(". /e2e/lib.sh", "rxl_capture() { echo \"$1\"; }");
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s.sh");
        std::fs::write(&script, text).unwrap();
        let run = |cmdline: &str| {
            let f = dir.path().join("cmdline");
            std::fs::write(&f, cmdline).unwrap();
            let out = std::process::Command::new("sh")
                .arg(&script)
                .env("RXL_CMDLINE", &f)
                .output()
                .unwrap();
            assert!(out.status.success());
            String::from_utf8(out.stdout).unwrap()
        };
        let all = run("console=hvc0 rdinit=/init");
        assert!(all.starts_with("info/xl-info\n"), "{all}");
        let third = steps[2].name;
        let later = run(&format!("console=hvc0 {FROM_ARG}=2 loglevel=7"));
        assert!(later.starts_with(&format!("{third}/")), "{later}");
        assert!(!later.contains("info/"), "{later}");
        // rxl_to=3: steps 2 and 3 only, then the diagnostics.
        let span = run(&format!("console=hvc0 {FROM_ARG}=2 {TO_ARG}=3"));
        let expect: Vec<String> = steps[2..=3]
            .iter()
            .flat_map(|s| {
                s.captures
                    .iter()
                    .map(move |c| format!("{}/{}", s.name, c.name))
            })
            .collect();
        let ran: Vec<&str> = span.lines().filter(|l| !l.starts_with("diag/")).collect();
        assert_eq!(ran, expect, "{span}");
        assert!(span.contains("diag/dmesg"), "{span}");
        assert!(later.contains("diag/dmesg"), "{later}");
        assert_eq!(
            all.lines().count() - later.lines().count(),
            steps[..2].iter().map(|s| s.captures.len()).sum::<usize>()
        );
    }

    #[test]
    fn install_writes_scenario_and_snippets() {
        let mut img = Image::new();
        let steps = steps(None);
        install(&steps, &mut img).unwrap();
        let Some(super::super::image::Entry::File { data, .. }) = img.get("/e2e/scenario.sh")
        else {
            panic!("no scenario");
        };
        let super::super::image::Data::Bytes(b) = data else {
            panic!("scenario is not generated");
        };
        let text = String::from_utf8_lossy(b);
        assert!(text.contains("rxl_capture info/xl-info 30 /e2e/steps/info/xl-info.sh"));
        assert!(text.contains("rxl_capture info/rxl-list-json 30 /e2e/steps/info/rxl-list-json.sh"));
        assert!(img.get("/e2e/steps/info/rxl-info.sh").is_some());
        assert!(text.contains("rxl_capture diag/dmesg 20 /e2e/steps/diag/dmesg.sh"));
        // Diagnostics come after every step.
        assert!(text.find("info/rxl-list-json").unwrap() < text.find("diag/dmesg").unwrap());
    }

    /// The capital-letter variables `script` reads (`$NAME`, `${NAME}`) that neither its
    /// own lines assign (`NAME=`) nor it reads with a default (`${NAME:-...}`).
    fn unset_vars(script: &str) -> Vec<String> {
        let name_at = |t: &str| -> String {
            t.chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect()
        };
        let assigned: Vec<String> = script
            .lines()
            .flat_map(|l| l.split([';', ' ']))
            .filter_map(|w| w.split_once('=').map(|(n, _)| n.to_owned()))
            .collect();
        let mut out = Vec::new();
        for (i, _) in script.match_indices('$') {
            let rest = &script[i + 1..];
            let (name, defaulted) = match rest.strip_prefix('{') {
                Some(r) => {
                    let n = name_at(r);
                    let d = r[n.len()..].starts_with(":-");
                    (n, d)
                }
                None => (name_at(rest), false),
            };
            if !name.is_empty()
                && name.starts_with(|c: char| c.is_ascii_uppercase())
                && !defaulted
                && !assigned.contains(&name)
                && !out.contains(&name)
            {
                out.push(name);
            }
        }
        out
    }

    #[test]
    fn the_unset_variable_finder_sees_what_it_should() {
        assert_eq!(
            unset_vars("echo \"$A ${B}\" $c\nC=1\necho $C ${D:-x}\n"),
            ["A", "B"]
        );
    }

    #[test]
    fn every_variable_a_step_script_reads_is_set_by_the_rig() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        let steps = steps_for(&Inputs {
            hello: Some(f.clone()),
            linux: Some(LinuxFiles {
                kernel: f.clone(),
                initrd: f.clone(),
            }),
            pvgrub: Some(f.clone()),
            pvgrub64: None,
            benchmarks_doc: None,
            xs_smoke: Some(f.clone()),
            device_tools: Some(crate::steps::devices::ALL_TOOLS.to_vec()),
            boot_disks: Some(dir.path().to_owned()),
            boot_tools: None,
            hvm_disks: Some(HvmDisks {
                boot_img: vec![0; 512],
                qcow2: f.clone(),
            }),
            hvm_tools: Some(crate::steps::hvm::ALL_TOOLS.to_vec()),
        });
        for step in &steps {
            for c in &step.captures {
                // RXL_FROM is the scenario's own (exported before any step runs).
                let unset: Vec<String> = unset_vars(&c.script)
                    .into_iter()
                    .filter(|v| v != "RXL_FROM")
                    .collect();
                assert!(unset.is_empty(), "{}/{} reads {unset:?}", step.name, c.name);
            }
        }
    }

    #[test]
    fn only_the_named_steps_are_kept() {
        let mut steps = steps_with_linux();
        keep_only(&mut steps, "devices, info").unwrap();
        let names: Vec<&str> = steps.iter().map(|s| s.name).collect();
        assert_eq!(names, ["info", "devices"]);
        let err = keep_only(&mut steps, "info,nosuch").unwrap_err();
        assert!(
            err.contains("\"nosuch\"") && err.contains("info, devices"),
            "{err}"
        );
    }

    #[test]
    fn script_values_are_single_quoted_words() {
        let c = script_cap("x", 1, "echo \"$A\"\n", &[("A", "it's $HOME".into())]);
        assert_eq!(c.script, "A='it'\\''s $HOME'\necho \"$A\"\n");
        let out = std::process::Command::new("sh")
            .args(["-c", &c.script])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "it's $HOME\n");
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
            pvgrub64: None,
            benchmarks_doc: None,
            xs_smoke: Some(f.clone()),
            device_tools: Some(crate::steps::devices::ALL_TOOLS.to_vec()),
            boot_disks: Some(dir.path().to_owned()),
            boot_tools: None,
            hvm_disks: Some(HvmDisks {
                boot_img: vec![0; 512],
                qcow2: f.clone(),
            }),
            hvm_tools: Some(crate::steps::hvm::ALL_TOOLS.to_vec()),
        };
        let steps = steps_for(&inputs);
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
                "autostart",
                "side-by-side",
                "devices",
                "pv",
                "bootloader",
                "hvm"
            ]
        );
        let lib = include_str!("../scripts/lib.sh");
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
}
