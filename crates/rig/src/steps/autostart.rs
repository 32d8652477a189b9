//! Step `autostart`: two test guests' configs in /etc/xen/auto, then exactly the
//! `ExecStart` and `ExecStop` lines of the shipped unit dist/systemd/rxl-autostart.service
//! (read from the unit file, built in), each bounded by `timeout`. After the start both
//! guests are listed by `xl list` and `rxl list` (the test guest halts by itself once it
//! has printed its lines; `on_poweroff = "preserve"` keeps it listed), a second start
//! creates nothing, and after the stop neither is left. `rxl events --json` runs in the
//! background all along: each guest's `created` and `destroyed` events must be in it, in
//! order, as valid lines of schema version 1.

use std::path::Path;

use serde_json::Value;

use crate::checks::excerpt;
use crate::scenario::{script_cap, Outcome, Step, StepFile};

/// The shipped unit.
const UNIT: &str = include_str!("../../../../dist/systemd/rxl-autostart.service");
/// The guests' names.
const NAME_A: &str = "rxl-auto-a";
const NAME_B: &str = "rxl-auto-b";
/// The bound of the unit's start line (its TimeoutStartSec is longer: two small guests
/// take seconds).
const START_S: u32 = 120;
/// The bound of the unit's stop line: its TimeoutStopSec.
const STOP_S: u32 = 360;

/// The command of the unit's `key=` line (`ExecStart`, `ExecStop`), without systemd's
/// prefixes (`-` ignores a failure, `@`, `:`, `+`, `!` change how it runs): what a shell
/// runs. `None` when the unit has no such line.
pub fn exec_line(unit: &str, key: &str) -> Option<String> {
    unit.lines().find_map(|l| {
        let v = l.trim().strip_prefix(key)?.trim_start().strip_prefix('=')?;
        Some(
            v.trim()
                .trim_start_matches(['-', '@', ':', '+', '!'])
                .to_string(),
        )
    })
}

/// The step.
pub fn autostart_step(hello: &Path) -> Step {
    let cfg = |name: &str| {
        format!(
            "# A test guest autostart creates.\nname = \"{name}\"\ntype = \"pvh\"\n\
             kernel = \"/e2e/autostart/hello\"\ncmdline = \"rxl-e2e autostart\"\nmemory = 32\n\
             vcpus = 1\non_poweroff = \"preserve\"\non_crash = \"preserve\"\n"
        )
    };
    let start = exec_line(UNIT, "ExecStart").unwrap_or_default();
    let stop = exec_line(UNIT, "ExecStop").unwrap_or_default();
    Step {
        name: "autostart",
        about: "the ExecStart and ExecStop lines of dist/systemd/rxl-autostart.service \
                create the guests of /etc/xen/auto once and leave none after the stop; \
                rxl events --json sees each created and destroyed",
        captures: vec![script_cap(
            "autostart",
            START_S * 2 + STOP_S + 120,
            include_str!("../../scripts/steps/autostart/autostart.sh"),
            &[
                ("START", start),
                ("STOP", stop),
                ("START_S", START_S.to_string()),
                ("STOP_S", STOP_S.to_string()),
                ("NAME_A", NAME_A.into()),
                ("NAME_B", NAME_B.into()),
            ],
        )],
        files: vec![
            StepFile::Host {
                path: "/e2e/autostart/hello".into(),
                host: hello.to_owned(),
            },
            StepFile::Text {
                path: format!("/e2e/autostart/{NAME_A}.cfg"),
                text: cfg(NAME_A),
            },
            StepFile::Text {
                path: format!("/e2e/autostart/{NAME_B}.cfg"),
                text: cfg(NAME_B),
            },
        ],
        check: Box::new(check_autostart),
        publish: None,
    }
}

/// The value of the capture's `key=` line.
fn value<'a>(lines: &'a [String], key: &str) -> Option<&'a str> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(str::trim)
}

fn check_autostart(o: &Outcome<'_>) -> Result<String, Vec<String>> {
    let c = o.succeeded("autostart").map_err(|e| vec![e])?;
    let mut problems = Vec::new();
    if exec_line(UNIT, "ExecStart").is_none() || exec_line(UNIT, "ExecStop").is_none() {
        problems.push("the unit has no ExecStart or no ExecStop line".to_string());
    }
    for key in ["start_rc", "again_rc", "stop_rc", "events_rc"] {
        match value(&c.lines, key) {
            Some("0") => {}
            Some(rc) => problems.push(format!("{key} is {rc}: {}", excerpt(&c.lines))),
            None => problems.push(format!("no {key}: {}", excerpt(&c.lines))),
        }
    }
    for (key, want) in [
        ("xl_after_start", true),
        ("rxl_after_start", true),
        ("xl_after_stop", false),
        ("rxl_after_stop", false),
    ] {
        let listed: Vec<&str> = value(&c.lines, key)
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        for name in [NAME_A, NAME_B] {
            if listed.contains(&name) != want {
                problems.push(format!(
                    "{key}: {name} is {}listed ({listed:?})",
                    if want { "not " } else { "" }
                ));
            }
        }
    }
    for name in [NAME_A, NAME_B] {
        let again = format!("{name}: already running");
        if !c.lines.iter().any(|l| l.starts_with(&again)) {
            problems.push(format!("the second start did not skip {name}"));
        }
    }
    let events: Vec<&String> = c
        .lines
        .iter()
        .skip_while(|l| l.trim() != "== events")
        .skip(1)
        .take_while(|l| l.trim() != "== end")
        .collect();
    let mut parsed = Vec::new();
    for l in &events {
        match serde_json::from_str::<Value>(l) {
            Ok(v) if v["v"] == 1 && v["seq"].is_u64() && v["time"].is_string() => parsed.push(v),
            _ => problems.push(format!("not an event line of schema 1: {l}")),
        }
    }
    let seqs: Vec<u64> = parsed.iter().filter_map(|v| v["seq"].as_u64()).collect();
    if seqs.windows(2).any(|w| w[1] <= w[0]) {
        problems.push(format!("event seq does not increase: {seqs:?}"));
    }
    for name in [NAME_A, NAME_B] {
        let at = |event: &str| {
            parsed
                .iter()
                .position(|v| v["name"] == name && v["event"] == event)
        };
        match (at("created"), at("destroyed")) {
            (Some(c), Some(d)) if c < d => {}
            (c, d) => problems.push(format!(
                "events of {name}: created at {c:?}, destroyed at {d:?} (of {} lines)",
                parsed.len()
            )),
        }
    }
    if problems.is_empty() {
        Ok(format!(
            "both guests created by the unit's start, skipped by a second, gone after its \
             stop; {} events followed",
            parsed.len()
        ))
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::markers;

    #[test]
    fn the_units_lines_are_what_a_shell_runs() {
        assert_eq!(
            exec_line(UNIT, "ExecStart").as_deref(),
            Some("/usr/local/bin/rxl autostart start")
        );
        assert_eq!(
            exec_line(UNIT, "ExecStop").as_deref(),
            Some("/usr/local/bin/rxl autostart stop --timeout 300")
        );
        assert_eq!(exec_line("[Service]\nExecStartPre=x\n", "ExecStart"), None);
    }

    fn outcome_of(lines: &str, rc: i32) -> Result<String, Vec<String>> {
        let text = format!(
            "@@RXL-BEGIN autostart/autostart\n{lines}@@RXL-END autostart/autostart rc={rc}\n"
        );
        let report = markers::parse(&text);
        check_autostart(&Outcome {
            step: "autostart",
            report: &report,
            console: "",
        })
    }

    const GOOD: &str = "== start: /usr/local/bin/rxl autostart start\n\
        rxl-auto-a: started (domain 7) from /etc/xen/auto/rxl-auto-a.cfg\n\
        rxl-auto-b: started (domain 8) from /etc/xen/auto/rxl-auto-b.cfg\n\
        start_rc=0\n\
        xl_after_start=rxl-auto-a rxl-auto-b \n\
        rxl_after_start=rxl-auto-a rxl-auto-b \n\
        == start again\n\
        rxl-auto-a: already running (domain 7), skipped\n\
        rxl-auto-b: already running (domain 8), skipped\n\
        again_rc=0\n\
        stop_rc=0\n\
        xl_after_stop=\n\
        rxl_after_stop=\n\
        events_rc=0\n\
        == events\n\
        {\"v\":1,\"time\":\"t\",\"seq\":4,\"event\":\"created\",\"domid\":7,\"name\":\"rxl-auto-a\"}\n\
        {\"v\":1,\"time\":\"t\",\"seq\":5,\"event\":\"created\",\"domid\":8,\"name\":\"rxl-auto-b\"}\n\
        {\"v\":1,\"time\":\"t\",\"seq\":6,\"event\":\"destroyed\",\"domid\":7,\"name\":\"rxl-auto-a\"}\n\
        {\"v\":1,\"time\":\"t\",\"seq\":7,\"event\":\"destroyed\",\"domid\":8,\"name\":\"rxl-auto-b\"}\n\
        == end\n";

    #[test]
    fn the_check_passes_a_good_run() {
        let ok = outcome_of(GOOD, 0).unwrap();
        assert!(ok.contains("4 events followed"), "{ok}");
    }

    #[test]
    fn the_check_names_what_went_wrong() {
        let left = GOOD.replace("\nxl_after_stop=\n", "\nxl_after_stop=rxl-auto-b \n");
        assert_eq!(
            outcome_of(&left, 0).unwrap_err(),
            ["xl_after_stop: rxl-auto-b is listed ([\"rxl-auto-b\"])"]
        );
        let missed = GOOD.replace(
            "\"seq\":7,\"event\":\"destroyed\"",
            "\"seq\":7,\"event\":\"paused\"",
        );
        let err = outcome_of(&missed, 0).unwrap_err();
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(
            err[0].starts_with("events of rxl-auto-b: created at Some(1), destroyed at None"),
            "{err:?}"
        );
        let twice = GOOD.replace("rxl-auto-a: already running", "rxl-auto-a: started");
        assert_eq!(
            outcome_of(&twice, 0).unwrap_err(),
            ["the second start did not skip rxl-auto-a"]
        );
        let failed = GOOD.replace("start_rc=0", "start_rc=1");
        assert!(outcome_of(&failed, 0).unwrap_err()[0].starts_with("start_rc is 1"));
        assert!(outcome_of(GOOD, 1).is_err());
    }

    #[test]
    fn the_script_is_valid_shell_and_names_the_units_lines() {
        let step = autostart_step(Path::new("/nonexistent/hello"));
        let script = &step.captures[0].script;
        assert!(
            script.contains("START='/usr/local/bin/rxl autostart start'"),
            "{script}"
        );
        assert!(script.contains("STOP='/usr/local/bin/rxl autostart stop --timeout 300'"));
        let out = std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}
