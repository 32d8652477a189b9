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
