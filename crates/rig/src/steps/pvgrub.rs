//! Step `pvgrub`: `firmware = "pvgrub"` boots Debian's GRUB for PVH.

use std::path::Path;

use crate::checks::{excerpt, number};
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
            &[("GRUB_NAME", GRUB_NAME.into())],
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
