//! What the steps' host-side checks share: rxl's listings against xl's, the lines a guest
//! printed on Xen's console, the hello guest's report, and `key=value` fields in captures.

pub mod compare;

use std::fmt::Write as _;

use crate::markers::Capture;
use crate::scenario::Outcome;
use compare::{Diff, ListRow};

/// The step's `rxl-list` and `rxl-list-json` captures against its `xl-list`: rxl's table
/// and its JSON must say what xl's says. Problems go to `problems`; returns xl's listing,
/// and rxl's when it ran, for the step's own checks (None when the reference failed).
pub fn compare_lists(
    o: &Outcome<'_>,
    problems: &mut Vec<String>,
) -> Option<(String, Option<String>)> {
    let xl = match o.succeeded("xl-list") {
        Ok(c) => c.text(),
        Err(e) => {
            problems.push(format!("reference: {e}"));
            return None;
        }
    };
    let mut diff = Diff::default();
    let rxl = match o.succeeded("rxl-list") {
        Ok(c) => {
            compare::list_text(&xl, &c.text(), &mut diff);
            Some(c.text())
        }
        Err(e) => {
            problems.push(e);
            None
        }
    };
    match o.succeeded("rxl-list-json") {
        Ok(c) => compare::list_json(&xl, &c.text(), &mut diff),
        Err(e) => problems.push(e),
    }
    problems.extend(diff.problems);
    Some((xl, rxl))
}

/// What is wrong with the hello guest's `RXLTEST` lines (see tests/guests/hello/README.md)
/// for a guest started with `cmdline` and `vcpus` vCPUs and no modules.
pub fn hello_problems(lines: &[String], cmdline: &str, vcpus: u32) -> Vec<String> {
    let mut problems = Vec::new();
    let has = |want: &str| lines.iter().any(|l| l.trim_end() == want);
    let value = |key: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix("RXLTEST ")?.strip_prefix(key))
            .map(str::trim_end)
    };
    if !has("RXLTEST magic=0x336ec578 version=1") {
        problems.push(format!(
            "no \"RXLTEST magic=0x336ec578 version=1\" line (got {:?})",
            lines.first()
        ));
    }
    if let Some(bad) = lines.iter().find(|l| l.starts_with("RXLTEST error")) {
        problems.push(bad.clone());
    }
    match value("cmdline=") {
        Some(c) if c == cmdline => {}
        other => problems.push(format!("cmdline is {other:?}, the config gave {cmdline:?}")),
    }
    match value("modules=") {
        Some("0") => {}
        other => problems.push(format!("modules={other:?}, expected 0")),
    }
    match value("memmap_entries=").and_then(|n| n.parse::<u32>().ok()) {
        Some(n) if n > 0 => {}
        other => problems.push(format!("memmap_entries={other:?}, expected at least one")),
    }
    madt_and_done_problems(lines, vcpus, &mut problems);
    problems
}

/// The hello guest's closing lines: a MADT with `vcpus` enabled local APICs, then
/// `RXLTEST done`. Adds what is wrong to `problems`.
pub fn madt_and_done_problems(lines: &[String], vcpus: u32, problems: &mut Vec<String>) {
    let has = |want: &str| lines.iter().any(|l| l.trim_end() == want);
    let want_madt = format!("RXLTEST madt lapics={vcpus} enabled={vcpus}");
    if !has(&want_madt) {
        let got = lines.iter().find(|l| l.contains("madt"));
        problems.push(format!("expected \"{want_madt}\", got {got:?}"));
    }
    if !has("RXLTEST done") {
        problems.push("no \"RXLTEST done\" line: the guest stopped early".into());
    }
}

/// The text of every line domain `domid` printed on Xen's console (`(dN) text`, with or
/// without a `[timestamp]` after the prefix), found anywhere in a line.
pub fn guest_lines(console: &str, domid: u32) -> Vec<String> {
    let prefix = format!("(d{domid}) ");
    let mut out = Vec::new();
    for line in console.lines() {
        let line = line.trim_end_matches('\r');
        let mut rest = line;
        while let Some(pos) = rest.find(&prefix) {
            let mut text = &rest[pos + prefix.len()..];
            if let Some(t) = text.strip_prefix('[') {
                if let Some((stamp, after)) = t.split_once(']') {
                    if stamp.trim().chars().all(|c| c.is_ascii_digit() || c == '.') {
                        text = after.strip_prefix(' ').unwrap_or(after);
                    }
                }
            }
            // Another domain's line may follow on the same physical line.
            let end = next_domain_prefix(text).unwrap_or(text.len());
            out.push(text[..end].to_owned());
            rest = &text[end..];
        }
    }
    out
}

/// Where the next `(dN) ` prefix starts in `text` (after its first byte), if anywhere.
fn next_domain_prefix(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 1;
    while let Some(off) = text.get(from..).and_then(|t| t.find("(d")) {
        let start = from + off;
        let digits = bytes[start + 2..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits > 0 && bytes.get(start + 2 + digits..start + 4 + digits) == Some(b") ") {
            return Some(start);
        }
        from = start + 2;
    }
    None
}

pub(crate) fn domid_of(c: &Capture) -> Option<u32> {
    c.lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("domid="))
        .and_then(|d| d.trim().parse::<u32>().ok())
}

/// `key=value` fields of a line (`value` up to the next blank).
pub(crate) fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

pub(crate) fn hex(v: &str) -> Option<u64> {
    u64::from_str_radix(v.strip_prefix("0x")?, 16).ok()
}

/// The row of domain `name` in `xl list`-style output (from its header line to the end).
pub(crate) fn row(text: &str, name: &str) -> Option<ListRow> {
    let from = text.find(compare::LIST_HEADER).unwrap_or(0);
    compare::parse_list(&text[from..])
        .ok()?
        .into_iter()
        .find(|r| r.name == name)
}

/// A `key=N` number anywhere in a capture.
pub(crate) fn number(c: &Capture, key: &str) -> Option<u64> {
    c.lines
        .iter()
        .find_map(|l| field(l, key))
        .and_then(|v| v.parse().ok())
}

/// The first few lines of some output, for error messages.
pub fn excerpt(lines: &[String]) -> String {
    const MAX: usize = 6;
    if lines.is_empty() {
        return "(no output)".into();
    }
    let mut s = lines
        .iter()
        .take(MAX)
        .cloned()
        .collect::<Vec<_>>()
        .join(" | ");
    if lines.len() > MAX {
        let _ = write!(s, " | ... ({} lines)", lines.len());
    }
    s
}
