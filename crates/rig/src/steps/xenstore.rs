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
    "pipeline",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::markers::{self, Report};

    #[test]
    fn the_xenstore_step_wants_every_check_over_both_transports() {
        // The names the check looks for are the ones xs-smoke prints.
        let smoke = include_str!("../../../xenstore/examples/xs-smoke.rs");
        for name in XS_SMOKE_CHECKS {
            assert!(
                smoke.contains(&format!("(\"{name}\", &||")) || *name == "rm",
                "xs-smoke has no check {name}"
            );
        }
        let run = |transport: &str, drop: &str| {
            let mut s = format!("connected to /x ({transport})\n");
            for name in XS_SMOKE_CHECKS.iter().filter(|n| **n != drop) {
                s.push_str(&format!("ok   {name}: fine\n"));
            }
            s
        };
        let report = |socket: String, xenbus: String, left: &str| {
            markers::parse(&format!(
                "@@RXL-BEGIN xenstore/socket\n{socket}@@RXL-END xenstore/socket rc=0\n\
                 @@RXL-BEGIN xenstore/xenbus\n{xenbus}@@RXL-END xenstore/xenbus rc=0\n\
                 @@RXL-BEGIN xenstore/left\n{left}@@RXL-END xenstore/left rc=0\n"
            ))
        };
        let check = |r: &Report| {
            check_xenstore(&Outcome {
                step: "xenstore",
                report: r,
                console: "",
            })
        };
        let good = report(run("Socket", ""), run("Device", ""), "");
        assert!(check(&good).unwrap().contains("10 checks passed"));
        let no_conflict = report(run("Socket", ""), run("Device", "conflict"), "");
        let err = check(&no_conflict).unwrap_err();
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(
            err[0].starts_with("xenbus: no \"ok   conflict: \""),
            "{err:?}"
        );
        let wrong = report(run("Socket", ""), run("Socket", ""), "");
        assert!(check(&wrong).unwrap_err()[0].contains("(Device)"));
        let left = report(
            run("Socket", ""),
            run("Device", ""),
            "rxl-smoke-12 = \"\"\n",
        );
        assert!(check(&left).unwrap_err()[0].starts_with("nodes left"));
        let failed = markers::parse(
            "@@RXL-BEGIN xenstore/socket\nFAIL perms: x\n@@RXL-END xenstore/socket rc=1\n",
        );
        let err = check(&failed).unwrap_err();
        assert!(err[0].contains("FAIL perms: x"), "{err:?}");
    }
}
