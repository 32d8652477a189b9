//! Step `info`: `rxl info` and `rxl list` (text and JSON) agree with `xl` on this host.

use crate::checks::compare::{self, Diff};
use crate::checks::compare_lists;
use crate::scenario::{cap, CaptureSpec, Outcome, Step};

/// Step 1: `rxl info` and `rxl list` (text and JSON) agree with `xl`.
pub fn info_step() -> Step {
    Step {
        name: "info",
        about: "rxl info / rxl list (text and --json) agree with xl on this host",
        captures: vec![
            CaptureSpec {
                show_on_failure: false,
                ..cap("xl-info", 30, "xl info\n")
            },
            cap("rxl-info", 30, "rxl info\n"),
            cap("rxl-info-json", 30, "rxl info --json\n"),
            cap("xl-list", 30, "xl list\n"),
            cap("rxl-list", 30, "rxl list\n"),
            cap("rxl-list-json", 30, "rxl list --json\n"),
        ],
        files: Vec::new(),
        check: Box::new(check_info),
        publish: None,
    }
}

pub(crate) fn check_info(o: &Outcome<'_>) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    let mut diff = Diff::default();
    // xl is the reference: if it fails the rig itself is broken.
    let xl_info = o
        .succeeded("xl-info")
        .map_err(|e| vec![format!("reference: {e}")])?;
    let xl = compare::parse_info(&xl_info.text());
    match o.succeeded("rxl-info") {
        Ok(c) => compare::info_text(&xl, &compare::parse_info(&c.text()), &mut diff),
        Err(e) => problems.push(e),
    }
    match o.succeeded("rxl-info-json") {
        Ok(c) => compare::info_json(&xl, &c.text(), &mut diff),
        Err(e) => problems.push(e),
    }
    problems.extend(diff.problems);
    compare_lists(o, &mut problems);
    if problems.is_empty() {
        Ok(format!(
            "xen {} caps [{}], {} cpus, {} MiB; Domain-0 row identical",
            xl.get("xen_version").map_or("?", String::as_str),
            xl.get("xen_caps").map_or("?", String::as_str),
            xl.get("nr_cpus").map_or("?", String::as_str),
            xl.get("total_memory").map_or("?", String::as_str),
        ))
    } else {
        Err(problems)
    }
}
