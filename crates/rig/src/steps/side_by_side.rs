//! Step `side-by-side`: xl and rxl manage the same host together, destroy each other's
//! domains cleanly, and are timed; the medians go to docs/benchmarks.md with `--publish`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::linux::{
    kernel_files, linux_cfg, linux_cfg_of_type, LINUX_DIR, LINUX_INIT_LINE, TIMED_LINUX_VCPUS,
};
use crate::checks::{compare_lists, excerpt, field, row};
use crate::scenario::{cap, script_cap, CaptureSpec, LinuxFiles, Outcome, Step, StepFile};

// ---------------------------------------------------------------------------------------
// side by side

/// Runs of each tool with the hello guest whose medians make the table.
const HELLO_RUNS: u32 = 7;
/// Runs of each tool with the Linux guest (each takes half a minute or more under TCG).
const LINUX_RUNS: u32 = 7;
/// Runs of each tool with the Linux guest booted as PV (`pv-linux`).
const PV_LINUX_RUNS: u32 = 5;
/// Attempts beyond the runs that each tool may spend on runs that failed (the emulation's
/// rare faults kill a Linux guest or a dom0 tool now and then, see docs/e2e.md).
const HELLO_SPARE: u32 = 2;
const LINUX_SPARE: u32 = 5;
const PV_LINUX_SPARE: u32 = 4;
/// Seconds between timed runs (not timed), so that the next create does not meet the last
/// domain's teardown.
const SETTLE_S: u32 = 3;
/// How long a timed Linux run waits for /init (the slowest seen: 48 s, an xl run).
const TIMED_INIT_S: u32 = 100;
/// The longest one create, list or destroy of a timed run may take before it is killed.
const TIMED_CMD_S: u32 = 150;

/// How many timed runs each tool gets with `guest`.
fn runs_of(guest: &str) -> u32 {
    match guest {
        "linux" => LINUX_RUNS,
        "pv-linux" => PV_LINUX_RUNS,
        _ => HELLO_RUNS,
    }
}

/// The heading of the section of docs/benchmarks.md that the side-by-side step writes.
pub const BENCH_HEADING: &str = "## Real Xen: rxl and xl side by side";

fn sbs_hello_cfg(name: &str) -> String {
    format!(
        "name = \"{name}\"\ntype = \"pvh\"\nkernel = \"/e2e/guests/hello\"\n\
         cmdline = \"{}\"\nmemory = 32\nvcpus = 1\non_poweroff = \"preserve\"\n\
         on_crash = \"preserve\"\n",
        super::hello::HELLO_CMDLINE
    )
}

/// The same configs created with xl and with rxl: both list each other's domains, and the
/// create, list and destroy times (and, for Linux, create to /init) of each.
pub fn side_by_side_step(
    hello: &Path,
    linux_files: Option<&LinuxFiles>,
    doc: Option<PathBuf>,
) -> Step {
    let linux = linux_files.is_some();
    // The guests' files, so that the step also runs alone (RXL_E2E_STEPS).
    let mut files = linux_files.map(kernel_files).unwrap_or_default();
    files.push(StepFile::Host {
        path: "/e2e/guests/hello".into(),
        host: hello.to_owned(),
    });
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
            files.push(StepFile::Text {
                path: format!("/e2e/sbs/pv-linux-{tool}.cfg"),
                text: linux_cfg_of_type(
                    "pv",
                    &format!("sbs-pv-linux-{tool}"),
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
        guests.push("pv-linux");
    }
    let guests_sh = guests.join(" ");
    Step {
        name: "side-by-side",
        about: "the same configs created with xl and rxl in one boot: xl list and rxl list agree \
                about all of them, each tool destroys the other's cleanly; create/list/destroy \
                (and create to /init) medians",
        captures: vec![
            script_cap(
                "create-both",
                120,
                include_str!("../../scripts/steps/side-by-side/create-both.sh"),
                &[("GUESTS", guests_sh.clone())],
            ),
            cap("xl-list", 30, "xl list\n"),
            cap("rxl-list", 30, "rxl list\n"),
            cap("rxl-list-json", 30, "rxl list --json\n"),
            script_cap(
                "destroy-both",
                60,
                include_str!("../../scripts/steps/side-by-side/destroy-both.sh"),
                &[("GUESTS", guests_sh.clone())],
            ),
            CaptureSpec {
                // Notes at every phase of a run: a hang is seen within minutes.
                quiet_s: Some(TIMED_CMD_S + 10),
                ..script_cap(
                    "timed",
                    // Well inside one boot's QEMU timeout (2100 s) after the earlier
                    // steps; normally six or seven minutes.
                    if linux { 1100 } else { 300 },
                    include_str!("../../scripts/steps/side-by-side/timed.sh"),
                    &[
                        ("GUESTS", guests_sh),
                        ("LINUX_INIT_LINE", LINUX_INIT_LINE.into()),
                        ("TIMED_CMD_S", TIMED_CMD_S.to_string()),
                        ("TIMED_INIT_S", TIMED_INIT_S.to_string()),
                        ("SETTLE_S", SETTLE_S.to_string()),
                        ("HELLO_RUNS", HELLO_RUNS.to_string()),
                        ("HELLO_SPARE", HELLO_SPARE.to_string()),
                        ("LINUX_RUNS", LINUX_RUNS.to_string()),
                        ("LINUX_SPARE", LINUX_SPARE.to_string()),
                        ("PV_LINUX_RUNS", PV_LINUX_RUNS.to_string()),
                        ("PV_LINUX_SPARE", PV_LINUX_SPARE.to_string()),
                    ],
                )
            },
        ],
        files,
        check: Box::new(move |o| check_side_by_side(o, &guests)),
        publish: Some(Box::new(move |o| publish_side_by_side(o, doc.as_deref()))),
    }
}

/// Median of some milliseconds (the upper middle one for an even count).
pub(crate) fn median(mut v: Vec<u64>) -> Option<u64> {
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

/// The first `max` lines of timed runs saying why a run failed (`run N of ...: cause`).
pub(crate) fn why_runs_failed(lines: &[String], max: usize) -> Vec<&str> {
    lines
        .iter()
        .filter(|l| l.starts_with("run ") && l.contains(": "))
        .map(String::as_str)
        .take(max)
        .collect()
}

/// How many timed attempts failed and were run again.
fn failed_attempts(lines: &[String]) -> usize {
    lines.iter().filter(|l| l.starts_with("RETRY")).count()
}

pub(crate) fn secs(ms: Option<u64>) -> String {
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
            let why = why_runs_failed(&timed.lines, 4);
            if why.is_empty() {
                String::new()
            } else {
                format!(" [{}]", why.join(" | "))
            }
        }
    ))
}

/// After the verdict: the table of medians, printed, and written into docs/benchmarks.md
/// when the run was given `--publish` (`doc` is then that file).
fn publish_side_by_side(o: &Outcome<'_>, doc: Option<&Path>) -> Result<String, String> {
    let timed = o.succeeded("timed")?;
    let runs = parse_timed(&timed.lines);
    let retries = failed_attempts(&timed.lines);
    let mut table = bench_table(&runs);
    let profile = crate::profile::table(
        &[
            ("hello", "hello"),
            ("linux", "linux"),
            ("pv-linux", "pv-linux"),
        ],
        &crate::profile::parse(&timed.lines, "guest"),
    );
    if !profile.is_empty() {
        let _ = write!(
            table,
            "\nWhere rxl's create time goes (`rxl create --times` of the timed runs, medians per \
             step; `in Xen` is the time inside hypercalls, the hypervisor's share with the \
             kernel's marshalling; the hypercall and xenstore columns are the hello guest's; \
             `(boot plan)` includes reading and decompressing the kernel, from the kernel cache \
             when warm):\n\n{profile}"
        );
    }
    if let Some(doc) = doc {
        write_bench_section(doc, &table, retries)
            .map_err(|e| format!("writing {}: {e}", doc.display()))?;
    }
    Ok(format!(
        "== side by side: medians of {HELLO_RUNS} (hello), {LINUX_RUNS} (linux) and \
         {PV_LINUX_RUNS} (pv-linux) runs \
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
    let shares = ratios(runs);
    if !shares.is_empty() {
        let _ = write!(s, "\nrxl/xl (medians): {}.\n", shares.join("; "));
    }
    s
}

/// Reads one figure's times out of a [`Timed`].
type Figure = fn(&Timed) -> &Vec<u64>;

/// Per guest, rxl's median over xl's for each timed figure both tools have
/// (`hello create 0.57, list 0.74, ...`).
fn ratios(runs: &std::collections::BTreeMap<(String, String), Timed>) -> Vec<String> {
    let mut guests: Vec<&str> = runs.keys().map(|(g, _)| g.as_str()).collect();
    guests.dedup();
    let mut out = Vec::new();
    for g in guests {
        let (Some(r), Some(x)) = (
            runs.get(&(g.to_owned(), "rxl".to_owned())),
            runs.get(&(g.to_owned(), "xl".to_owned())),
        ) else {
            continue;
        };
        let figures: [(&str, Figure); 4] = [
            ("create", |t| &t.create),
            ("list", |t| &t.list),
            ("destroy", |t| &t.destroy),
            ("create to /init", |t| &t.init),
        ];
        let parts: Vec<String> = figures
            .iter()
            .filter_map(|(what, get)| {
                let (r, x) = (median(get(r).clone())?, median(get(x).clone())?);
                (x > 0).then(|| format!("{what} {:.2}", r as f64 / x as f64))
            })
            .collect();
        if !parts.is_empty() {
            out.push(format!("{g} {}", parts.join(", ")));
        }
    }
    out
}

/// Replaces (or appends) the side-by-side section at the end of docs/benchmarks.md; the rest
/// of the file is kept byte for byte.
fn write_bench_section(doc: &Path, table: &str, retries: usize) -> std::io::Result<()> {
    let old = std::fs::read_to_string(doc).unwrap_or_default();
    let section = bench_section(table, retries, &today());
    std::fs::write(doc, replace_section(&old, BENCH_HEADING, &section))
}

fn bench_section(table: &str, retries: usize, date: &str) -> String {
    format!(
        "{BENCH_HEADING}\n\n\
         Written by `cargo xtask e2e --publish` (step `side-by-side`) on {date}: real Xen 4.17 under QEMU \
         TCG, 2 cores, so these are emulated-hardware figures, useful to compare xl with rxl in \
         the same boot, not as absolute speeds. Medians of {HELLO_RUNS} runs (hello), \
         {LINUX_RUNS} runs (linux) and {PV_LINUX_RUNS} runs (pv-linux) of each tool, timed in \
         dom0 from \
         /proc/uptime (10 ms resolution). `hello` is the assembly PVH test guest (32 MiB, 1 \
         vCPU); `linux` is Debian's kernel with a busybox initramfs (256 MiB, \
         {TIMED_LINUX_VCPUS} vCPU: under this emulation 2-vCPU guests have hung the whole \
         machine now and then; see docs/e2e.md) and `pv-linux` the same kernel and initramfs \
         booted as a PV guest (`type = \"pv\"`), timed \
         from the start of `create` until its /init line reaches xenconsoled's log. `list` is \
         one `xl list` or `rxl list` with the guest present.{}\n\n{table}",
        if retries > 0 {
            format!(" {retries} run(s) failed (named in the step's verdict) and were run again.")
        } else {
            String::new()
        }
    )
}

/// `old` with the section under `heading` (up to the next `## ` heading or the end)
/// replaced by `section`, or `section` appended.
pub(crate) fn replace_section(old: &str, heading: &str, section: &str) -> String {
    let Some(start) = old.find(heading) else {
        let mut s = old.trim_end().to_owned();
        if !s.is_empty() {
            s.push_str("\n\n");
        }
        s.push_str(section);
        return s;
    };
    let after = start + heading.len();
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

/// Today's date (UTC) as YYYY-MM-DD, from `date -u +%F` (the host's coreutils); "today"
/// when that cannot run.
pub(crate) fn today() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%F"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "today".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn medians_and_the_bench_section() {
        assert_eq!(median(vec![5, 1, 3]), Some(3));
        assert_eq!(median(Vec::new()), None);
        let lines: Vec<String> = [
            "T tool=xl guest=hello run=1 create_ms=300 list_ms=20 destroy_ms=100 init_ms=-",
            "T tool=xl guest=hello run=2 create_ms=100 list_ms=40 destroy_ms=300 init_ms=-",
            "T tool=xl guest=hello run=3 create_ms=200 list_ms=30 destroy_ms=200 init_ms=-",
            "T tool=rxl guest=hello run=1 create_ms=50 list_ms=30 destroy_ms=100 init_ms=-",
            "T tool=xl guest=linux run=1 create_ms=4000 list_ms=20 destroy_ms=400 init_ms=9000",
            "T tool=rxl guest=linux run=1 create_ms=1000 list_ms=20 destroy_ms=200 init_ms=6000",
            "P guest=linux run=1 | step    ms hypercalls  in Xen (ms) xs requests",
            "P guest=linux run=1 | load image   240.50 0 45.50 0",
            "P guest=hello run=1 | load image   1.50 0 0.50 0",
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
        assert!(
            table.contains(
                "rxl/xl (medians): hello create 0.25, list 1.00, destroy 0.50; linux create \
                 0.25, list 1.00, destroy 0.50, create to /init 0.67."
            ),
            "{table}"
        );
        let profile = crate::profile::table(
            &[("hello", "hello"), ("linux", "linux")],
            &crate::profile::parse(&lines, "guest"),
        );
        assert!(
            profile.contains("| load image | 1.5 | 0.5 | 240.5 | 45.5 | 0 | 0 |"),
            "{profile}"
        );
        let section = bench_section(&table, 0, "2026-12-01");
        let doc = "# Benchmarks\n\n## Other\n\ntext\n";
        let once = replace_section(doc, BENCH_HEADING, &section);
        assert!(
            once.starts_with(doc.trim_end()) && once.ends_with(&section),
            "{once}"
        );
        // Rewriting replaces the section only, and keeps a section that follows it.
        let twice = replace_section(
            &format!("{once}\n## Later\n\nkept\n"),
            BENCH_HEADING,
            "## Real Xen: rxl and xl side by side\n\nnew\n",
        );
        assert!(
            twice.contains("## Other\n\ntext") && twice.contains("new\n\n## Later\n\nkept"),
            "{twice}"
        );
        assert!(!twice.contains("0.20 s"), "{twice}");
        assert_eq!(today().len(), 10);
    }

    /// Runs the side-by-side `timed` snippet with fake `xl` and `rxl` commands whose
    /// `create` fails on the attempts listed in `$FAIL_<tool>` (space-separated counts of
    /// that tool's creates, or "all"); returns the output and how many creates each made.
    fn run_timed(fail_xl: &str, fail_rxl: &str) -> (Vec<String>, usize, usize) {
        let files = LinuxFiles {
            kernel: "/nonexistent/vmlinuz".into(),
            initrd: "/nonexistent/initrd.img".into(),
        };
        let step = side_by_side_step(Path::new("/nonexistent/hello"), Some(&files), None);
        let timed = step.captures.iter().find(|c| c.name == "timed").unwrap();
        let dir = crate::steps::fake_dom0::fake_dom0(
            "case $1 in\ncreate)\n  echo x >>$d/$tool.creates\n  \
             n=$(wc -l <$d/$tool.creates)\n  eval fail=\\$FAIL_$tool\n  case \" $fail \" in\n    \
             *\" all \"*|*\" $n \"*) echo 'libxl: error: no' >&2; exit 1 ;;\n  esac\n  \
             [ \"$2\" = --times ] && printf 'step  ms\\n(boot plan)  1.00\\nload image  \
             2.00 0 0.50 0\\ntotal (steps + plan)  5.00 2 0.10 9\\n' >&2 ;;\n\
             esac\nexit 0\n",
            // The rig's helpers that look at dom0, replaced.
            "note() { :; }\nconsole_count() { echo 0; }\n\
             wait_console() { return 0; }\ndom_state() { echo -b----; }\n",
        );
        let d = dir.path();
        let lines = crate::steps::fake_dom0::run_script(
            d,
            &timed.script,
            &[("FAIL_xl", fail_xl), ("FAIL_rxl", fail_rxl)],
        );
        let creates = |t: &str| {
            std::fs::read_to_string(d.join(format!("{t}.creates"))).map_or(0, |s| s.lines().count())
        };
        (lines, creates("xl"), creates("rxl"))
    }

    #[test]
    fn timed_runs_give_each_tool_its_runs_and_spend_spares_on_failures() {
        // rxl's third create (hello) and ninth (the fourth Linux one) fail: both are run
        // again, and every tool ends with its good runs of each guest.
        let (lines, xl, rxl) = run_timed("", "3 9");
        let runs = parse_timed(&lines);
        for g in ["hello", "linux", "pv-linux"] {
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
        assert_eq!((xl, rxl), (19, 21));
        // Linux runs wait for /init and say so.
        assert!(runs[&("linux".to_owned(), "xl".to_owned())].init.len() == 7);
        // rxl's good runs (only) left their profiles, by guest; xl's creates ran without
        // --times.
        let profiles = crate::profile::parse(&lines, "guest");
        assert_eq!(profiles["hello"][1].0, "load image", "{lines:?}");
        assert_eq!(profiles["hello"][1].1.len(), 7, "{lines:?}");
        assert_eq!(profiles["pv-linux"][2].1, vec![vec![5.0, 2.0, 0.1, 9.0]; 5]);

        // A tool whose every create fails stops after its spare attempts and is named;
        // the other tool still gets all of its runs.
        let (lines, xl, rxl) = run_timed("all", "");
        let total =
            (HELLO_RUNS + HELLO_SPARE + LINUX_RUNS + LINUX_SPARE + PV_LINUX_RUNS + PV_LINUX_SPARE)
                as usize;
        assert_eq!((xl, rxl), (total, 19));
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
}
