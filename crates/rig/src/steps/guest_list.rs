//! Step `guest-list`: with the shut-down hello guest present, `rxl list` agrees with
//! `xl list` on every row; then `xl destroy` removes the guest.

use super::hello::HELLO_NAME;
use crate::checks::compare::{self};
use crate::checks::{compare_lists, excerpt};
use crate::scenario::{cap, Outcome, Step};

/// Step 3: with the (shut down, preserved) hello guest present, `rxl list` still agrees
/// with `xl list`, guest row included; then the guest is destroyed.
pub fn guest_list_step() -> Step {
    Step {
        name: "guest-list",
        about: "rxl list (text and --json) agrees with xl list with a guest present",
        captures: vec![
            cap("xl-list", 30, "xl list\n"),
            cap("rxl-list", 30, "rxl list\n"),
            cap("rxl-list-json", 30, "rxl list --json\n"),
            cap("xl-destroy", 30, &format!("xl destroy {HELLO_NAME}\n")),
        ],
        files: Vec::new(),
        check: Box::new(check_guest_list),
        publish: None,
    }
}

pub(crate) fn check_guest_list(o: &Outcome<'_>) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    let Some((xl_list, _)) = compare_lists(o, &mut problems) else {
        return Err(problems);
    };
    let rows = compare::parse_list(&xl_list)
        .map_err(|e| vec![format!("reference: xl list output: {e}")])?;
    let Some(guest) = rows.iter().find(|r| r.name == HELLO_NAME) else {
        return Err(vec![format!(
            "reference: xl list shows no {HELLO_NAME} (the hello step left no guest): {}",
            excerpt(&xl_list.lines().map(str::to_owned).collect::<Vec<_>>())
        )]);
    };
    if let Err(e) = o.succeeded("xl-destroy") {
        problems.push(e);
    }
    if problems.is_empty() {
        Ok(format!(
            "{} rows identical, {HELLO_NAME} (id {}, {} MiB, state {}) included",
            rows.len(),
            guest.id,
            guest.mem,
            guest.state
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
    fn guest_list_check_needs_the_guest_row_in_rxl_list() {
        let xl = format!(
            "{}\nDomain-0 0 1024 1 r----- 3.0\nrxl-hello 1 32 1 ---s-- 0.1\n",
            compare::LIST_HEADER
        );
        let dom0_only = format!("{}\nDomain-0 0 1024 1 r----- 3.1\n", compare::LIST_HEADER);
        let json = r#"[{"domid":0,"name":"Domain-0","uuid":"u","memory_mib":1024,"vcpus":1,
            "state":"r-----","cpu_time_s":3.1},{"domid":1,"name":"rxl-hello","uuid":"v",
            "memory_mib":32,"vcpus":1,"state":"---s--","cpu_time_s":0.1}]"#;
        let results = |rxl_list: &str| {
            format!(
                "@@RXL-BEGIN guest-list/xl-list\n{xl}@@RXL-END guest-list/xl-list rc=0\n\
                 @@RXL-BEGIN guest-list/rxl-list\n{rxl_list}@@RXL-END guest-list/rxl-list rc=0\n\
                 @@RXL-BEGIN guest-list/rxl-list-json\n{json}\n@@RXL-END guest-list/rxl-list-json rc=0\n\
                 @@RXL-BEGIN guest-list/xl-destroy\n@@RXL-END guest-list/xl-destroy rc=0\n"
            )
        };
        let check = |text: String| {
            let report = markers::parse(&text);
            check_guest_list(&Outcome {
                step: "guest-list",
                report: &report,
                console: "",
            })
        };
        let ok = check(results(&xl)).unwrap();
        assert!(
            ok.contains("rxl-hello (id 1, 32 MiB, state ---s--)"),
            "{ok}"
        );
        let err = check(results(&dom0_only)).unwrap_err();
        assert_eq!(err, ["rxl list has no row for domain 1 (rxl-hello)"]);
        // Without the guest in xl list the step's premise is gone.
        let err = check(results(&xl).replacen("rxl-hello 1 32", "other 1 32", 1)).unwrap_err();
        assert!(err[0].starts_with("reference:"), "{err:?}");
    }
}
