//! The run's report: each step's verdict on the boot that ran it, what a failed run prints
//! about each boot, and the timings of each stage.

use std::fmt::Write as _;
use std::time::Duration;

use crate::{boot, last_lines, markers, scenario};

/// The host-side verdict over all steps.
pub(crate) struct Verdict {
    pub(crate) lines: Vec<String>,
    pub(crate) failed: bool,
}

/// Judges one step on the report of the boot that ran it, adding to `v`; true when it passed.
pub(crate) fn judge_step(
    step: &scenario::Step,
    report: &markers::Report,
    console: &str,
    v: &mut Verdict,
) -> bool {
    let outcome = scenario::Outcome {
        step: step.name,
        report,
        console,
    };
    match (step.check)(&outcome) {
        Ok(summary) => {
            v.lines.push(format!("PASS {}: {summary}", step.name));
            true
        }
        Err(problems) => {
            v.failed = true;
            v.lines.push(format!("FAIL {}: {}", step.name, step.about));
            for p in problems {
                v.lines.push(format!("     - {p}"));
            }
            for cap in &step.captures {
                let name = format!("{}/{}", step.name, cap.name);
                let Some(c) = report.capture(&name) else {
                    continue;
                };
                // An unfinished capture's notes say how far it got.
                if c.rc.is_none() {
                    for n in &c.notes {
                        v.lines.push(format!("     note {name}: {n}"));
                    }
                }
                if !cap.show_on_failure {
                    continue;
                }
                let rc = c.rc.map_or("unfinished".to_owned(), |r| format!("rc={r}"));
                v.lines.push(format!("     --- {name} ({rc}) output:"));
                for l in c.lines.iter().take(40) {
                    v.lines.push(format!("       | {l}"));
                }
                if c.lines.len() > 40 {
                    v.lines
                        .push(format!("       | ... {} more lines", c.lines.len() - 40));
                }
            }
            false
        }
    }
}

/// What a failed run prints about one boot: dom0's diagnostics, the serial log's end, and
/// the result channel's end when dom0 never got ready.
pub(crate) fn print_failure_details(n: usize, b: &BootRun) {
    for c in b
        .report
        .captures
        .iter()
        .filter(|c| c.name.starts_with(scenario::DIAG))
    {
        println!("\n== boot {n}: dom0 {} ==", c.name);
        for l in &c.lines {
            println!("  {l}");
        }
    }
    println!(
        "\n== boot {n}: last lines of the serial log ({}) ==",
        b.boot.serial_log.display()
    );
    for l in last_lines(&b.console, 40) {
        println!("  {l}");
    }
    if !b.report.ready {
        println!(
            "\n== boot {n}: result channel ({}) ==",
            b.boot.results_log.display()
        );
        for l in last_lines(&b.results, 60) {
            println!("  {l}");
        }
    }
}

/// One boot of the rig and what it reported.
pub(crate) struct BootRun {
    /// The first step this boot ran.
    pub(crate) from: usize,
    /// The last step this boot ran.
    pub(crate) to: usize,
    pub(crate) boot: boot::Boot,
    pub(crate) outcome: boot::RunOutcome,
    pub(crate) report: markers::Report,
    pub(crate) channel: &'static str,
    pub(crate) console: String,
    pub(crate) results: String,
    /// The step to start again from, when this boot stopped before the end or a step
    /// failed beside dom0 faults.
    pub(crate) stopped_at: Option<usize>,
    /// Why, for the report.
    pub(crate) why: String,
}

/// Wall-clock time of each stage.
#[derive(Debug, Default)]
pub(crate) struct Timings {
    pub(crate) download: Duration,
    pub(crate) unpack: Duration,
    pub(crate) build: Duration,
    pub(crate) image: Duration,
    pub(crate) qemu: Duration,
    pub(crate) boot: Option<Duration>,
    pub(crate) scenario: Option<Duration>,
    pub(crate) total: Duration,
}

impl Timings {
    pub(crate) fn render(&self, outcomes: &[&boot::RunOutcome]) -> String {
        let opt =
            |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{:.1}s", d.as_secs_f64()));
        let mut s = format!(
            "download {:.1}s, unpack {:.1}s, host builds {:.1}s, image {:.1}s\n\
             qemu {:.1}s (boot to dom0 ready {}, scenario {})\ntotal {:.1}s",
            self.download.as_secs_f64(),
            self.unpack.as_secs_f64(),
            self.build.as_secs_f64(),
            self.image.as_secs_f64(),
            self.qemu.as_secs_f64(),
            opt(self.boot),
            opt(self.scenario),
            self.total.as_secs_f64()
        );
        for (i, outcome) in outcomes.iter().enumerate() {
            if outcomes.len() > 1 {
                let _ = write!(
                    s,
                    "\n boot {}: qemu {:.1}s, dom0 ready after {}",
                    i + 1,
                    outcome.elapsed.as_secs_f64(),
                    opt(outcome.ready_at)
                );
            }
            let mut prev = outcome.ready_at;
            for (name, at) in &outcome.ends {
                let took = prev.and_then(|p| at.checked_sub(p));
                let _ = write!(s, "\n  {name}: {}", opt(took));
                prev = Some(*at);
            }
        }
        s
    }
}
