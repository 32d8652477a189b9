//! Step `hello`: `xl create` of the assembly PVH test guest (tests/guests/hello), whose
//! `RXLTEST` lines reach the serial log; and the host-side build of that guest.

use std::path::{Path, PathBuf};

use crate::checks::{excerpt, guest_lines, hello_problems};
use crate::scenario::{script_cap, Outcome, Step, StepFile};

/// The command line the hello guest is given (and must print back).
pub(crate) const HELLO_CMDLINE: &str = "rxl-e2e hello";

/// The name the hello guest gets in dom0.
pub(crate) const HELLO_NAME: &str = "rxl-hello";

/// Step 2: `xl create` of the assembly PVH test guest prints its `RXLTEST` lines.
pub fn hello_step(kernel: PathBuf) -> Step {
    // The guest ends with `cli; hlt`, which Xen takes as a power-off: `preserve` keeps the
    // shut-down domain listed so dom0 can read its id, and the step destroys it itself.
    let cfg = format!(
        "# PVH test guest of the rxl e2e rig.\nname = \"{HELLO_NAME}\"\ntype = \"pvh\"\n\
         kernel = \"/e2e/guests/hello\"\ncmdline = \"{HELLO_CMDLINE}\"\nmemory = 32\nvcpus = 1\n\
         on_poweroff = \"preserve\"\non_crash = \"preserve\"\n"
    );
    Step {
        name: "hello",
        about: "xl create of the PVH test guest runs it: its RXLTEST lines reach the serial log",
        captures: vec![script_cap(
            "xl-create",
            90,
            include_str!("../../scripts/steps/hello/xl-create.sh"),
            &[("HELLO_NAME", HELLO_NAME.into())],
        )],
        files: vec![
            StepFile::Host {
                path: "/e2e/guests/hello".into(),
                host: kernel,
            },
            StepFile::Text {
                path: "/e2e/guests/hello.cfg".into(),
                text: cfg,
            },
        ],
        check: Box::new(check_hello),
        publish: None,
    }
}

pub(crate) fn check_hello(o: &Outcome<'_>) -> Result<String, Vec<String>> {
    let c = o.succeeded("xl-create").map_err(|e| vec![e])?;
    let domid = c
        .lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("domid="))
        .and_then(|d| d.trim().parse::<u32>().ok())
        .ok_or_else(|| vec![format!("xl domid printed no id: {}", excerpt(&c.lines))])?;
    if domid == 0 {
        return Err(vec!["the guest got domid 0".into()]);
    }
    let lines: Vec<String> = guest_lines(o.console, domid)
        .into_iter()
        .filter(|l| l.starts_with("RXLTEST"))
        .collect();
    if lines.is_empty() {
        return Err(vec![format!(
            "no \"(d{domid}) RXLTEST\" line in the serial log; the guest printed: {}",
            excerpt(&guest_lines(o.console, domid))
        )]);
    }
    let problems = hello_problems(&lines, HELLO_CMDLINE, 1);
    if !problems.is_empty() {
        return Err(problems
            .into_iter()
            .map(|p| format!("guest d{domid}: {p}"))
            .collect());
    }
    Ok(format!(
        "d{domid} printed {} RXLTEST lines ({})",
        lines.len(),
        lines
            .iter()
            .filter(|l| l.contains("memmap_entries=") || l.contains("madt"))
            .map(|l| l.trim_start_matches("RXLTEST ").to_owned())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// Builds the PVH test guest with its build script, if the repository has one. The script
/// is run as `bash build.sh OUTDIR` from the repository root; the guest is `OUTDIR/hello`,
/// `OUTDIR/hello.elf`, or the file named on the script's last line of output.
pub fn build_hello(repo: &Path, out_dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    use anyhow::Context as _;
    let script = repo.join("tests/guests/hello/build.sh");
    if !script.is_file() {
        return Ok(None);
    }
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(out_dir)
        .current_dir(repo)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        anyhow::bail!(
            "{} failed ({}):\n{}{}",
            script.display(),
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let named = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| {
            let p = PathBuf::from(l.trim());
            if p.is_absolute() {
                p
            } else {
                repo.join(p)
            }
        });
    let candidates = [out_dir.join("hello"), out_dir.join("hello.elf")];
    candidates
        .into_iter()
        .chain(named)
        .find(|p| p.is_file())
        .map(Some)
        .with_context(|| {
            format!(
                "{} succeeded but left neither {1}/hello nor {1}/hello.elf, nor printed a path",
                script.display(),
                out_dir.display()
            )
        })
}
