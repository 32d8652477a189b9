//! Step `xenstore`: rxl's xenstore client against the real C xenstored, over its unix
//! socket and over /dev/xen/xenbus, beside Xen's own xenstore tools.

use std::path::PathBuf;

use crate::checks::excerpt;
use crate::scenario::{cap, Outcome, Step, StepFile};

/// Where the xenstore client's live check goes in the image.
const XS_SMOKE: &str = "/usr/local/bin/xs-smoke";

/// What `xs-smoke` checks, each reported as an `ok   NAME:` line.
pub(crate) const XS_SMOKE_CHECKS: &[&str] = &[
    "write-read",
    "directory",
    "perms",
    "transaction",
    "conflict",
    "watch",
    "domain",
    "c-tools",
    "rm",
];

/// Step 2: the xenstore client against the real C xenstored, over its unix socket and over
/// the kernel's xenbus device, beside Xen's own xenstore tools.
pub fn xenstore_step(xs_smoke: PathBuf) -> Step {
    Step {
        name: "xenstore",
        about: "rxl's xenstore client against the real C xenstored (socket and /dev/xen/xenbus): \
                reads, writes, directories, permissions, transactions and their conflicts, \
                watches, domain queries, and Xen's C tools seeing the same nodes",
        captures: vec![
            cap("socket", 60, &format!("{XS_SMOKE} /run/xenstored/socket\n")),
            cap("xenbus", 60, &format!("{XS_SMOKE} /dev/xen/xenbus\n")),
            // Nothing of either run is left behind.
            cap("left", 30, "xenstore-ls /tool | grep rxl-smoke; exit 0\n"),
        ],
        files: vec![StepFile::Host {
            path: XS_SMOKE.into(),
            host: xs_smoke,
        }],
        check: Box::new(check_xenstore),
        publish: None,
    }
}

pub(crate) fn check_xenstore(o: &Outcome<'_>) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    for (cap, transport) in [("socket", "Socket"), ("xenbus", "Device")] {
        let c = match o.succeeded(cap) {
            Ok(c) => c,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        if !c.lines.first().is_some_and(|l| {
            l.starts_with("connected to ") && l.ends_with(&format!("({transport})"))
        }) {
            problems.push(format!(
                "{cap}: expected \"connected to ... ({transport})\" first: {}",
                excerpt(&c.lines)
            ));
        }
        for check in XS_SMOKE_CHECKS {
            let ok = format!("ok   {check}: ");
            if !c.lines.iter().any(|l| l.starts_with(&ok)) {
                problems.push(format!("{cap}: no \"{ok}\" line: {}", excerpt(&c.lines)));
            }
        }
    }
    match o.succeeded("left") {
        Ok(c) if c.lines.iter().any(|l| l.contains("rxl-smoke")) => {
            problems.push(format!("nodes left under /tool: {}", excerpt(&c.lines)));
        }
        Ok(_) => {}
        Err(e) => problems.push(e),
    }
    if problems.is_empty() {
        Ok(format!(
            "{} checks passed over the socket and over /dev/xen/xenbus (transaction conflict \
             -> EAGAIN and retry, watches, perms, xenstore-read/-write see our nodes); nothing left",
            XS_SMOKE_CHECKS.len()
        ))
    } else {
        Err(problems)
    }
}
