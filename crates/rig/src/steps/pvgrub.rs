//! Step `pvgrub`: `firmware = "pvgrub"` boots Debian's GRUB for PVH.

use std::path::Path;

use crate::checks::{excerpt, number};
use crate::markers::Capture;
use crate::scenario::{script_cap, Outcome, Step, StepFile};

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
    Step {
        name: "pvgrub",
        about: "firmware = \"pvgrub\" boots Debian's GRUB for PVH: its banner or prompt \
                reaches the guest console; rxl destroy removes it",
        captures: vec![script_cap(
            "grub",
            180,
            include_str!("../../scripts/steps/pvgrub/grub.sh"),
            &[
                ("GRUB_NAME", GRUB_NAME.into()),
                ("GRUB_CFG", "/e2e/grub/grub.cfg".into()),
            ],
        )],
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
    let seen = check_grub_console(c, "", &mut problems);
    if problems.is_empty() {
        Ok(format!("{seen}; destroyed"))
    } else {
        Err(problems)
    }
}

/// The verdict on a capture of grub.sh: GRUB's banner or prompt between its `== console`
/// and `== end` lines, and `state=gone` after the destroy. Problems go to `problems`, each
/// starting with `prefix`; returns what was seen, for the summary.
pub(crate) fn check_grub_console(c: &Capture, prefix: &str, problems: &mut Vec<String>) -> String {
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
            "{prefix}no GRUB banner or prompt on the console: {}",
            excerpt(&c.lines)
        ));
    }
    if !c.lines.iter().any(|l| l.trim() == "state=gone") {
        problems.push(format!("{prefix}rxl destroy left the GRUB guest listed"));
    }
    format!(
        "console shows {:?} after {:.1} s",
        seen.map(|l| l.trim()).unwrap_or(""),
        number(c, "grub_ms").unwrap_or(0) as f64 / 1000.0
    )
}
