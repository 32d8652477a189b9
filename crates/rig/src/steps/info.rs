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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::compare;
    use crate::markers;

    #[test]
    fn info_check_reports_missing_rxl_clearly() {
        let xl_list = format!("{}\nDomain-0 0 1024 1 r----- 3.0\n", compare::LIST_HEADER);
        let results = format!(
            "@@RXL-BEGIN info/xl-info\nxen_version : 4.17\n@@RXL-END info/xl-info rc=0\n\
             @@RXL-BEGIN info/rxl-info\nrxl: unknown command info\n@@RXL-END info/rxl-info rc=2\n\
             @@RXL-BEGIN info/xl-list\n{xl_list}@@RXL-END info/xl-list rc=0\n"
        );
        let report = markers::parse(&results);
        let problems = check_info(&Outcome {
            step: "info",
            report: &report,
            console: "",
        })
        .unwrap_err();
        assert!(
            problems[0].contains("info/rxl-info exited with status 2"),
            "{problems:?}"
        );
        assert!(problems[0].contains("unknown command"), "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.contains("rxl-info-json never ran")),
            "{problems:?}"
        );
        assert_eq!(problems.len(), 4, "{problems:?}");
    }

    #[test]
    fn info_check_fails_when_the_reference_fails() {
        let report = markers::parse("@@RXL-BEGIN info/xl-info\n@@RXL-END info/xl-info rc=1\n");
        let problems = check_info(&Outcome {
            step: "info",
            report: &report,
            console: "",
        })
        .unwrap_err();
        assert!(problems[0].starts_with("reference:"), "{problems:?}");
    }
}
