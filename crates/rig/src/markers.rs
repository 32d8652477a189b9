//! The framing dom0 uses to report results, and its parser.
//!
//! dom0 writes, on its result channel:
//!
//! ```text
//! @@RXL-READY
//! @@RXL-BEGIN info/xl-info
//! ...captured stdout and stderr...
//! @@RXL-END info/xl-info rc=0
//! @@RXL-DONE
//! ```
//!
//! A long snippet may also write `@@RXL-NOTE text` lines (through the `note` shell helper,
//! straight to the channel while its output still goes to a file): they show progress, so
//! the host can tell a slow step from a hung dom0, and say how far an unfinished capture got.
//!
//! Markers are matched anywhere in a line, because on the Xen console another line may be
//! spliced into dom0's output; text before a marker on the same line is kept as output.

/// The marker written once dom0's services are up.
pub const READY: &str = "@@RXL-READY";
/// The marker that opens a capture.
pub const BEGIN: &str = "@@RXL-BEGIN ";
/// The marker that closes a capture.
pub const END: &str = "@@RXL-END ";
/// The marker written after the last step.
pub const DONE: &str = "@@RXL-DONE";
/// The marker of a progress note written while a capture runs.
pub const NOTE: &str = "@@RXL-NOTE ";
/// The marker dom0 writes when its setup fails, followed by a reason.
pub const SETUP_FAILED: &str = "@@RXL-SETUP-FAILED ";

/// One captured command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// `step/capture` name as written by dom0.
    pub name: String,
    /// Output lines (stdout and stderr interleaved), without line endings.
    pub lines: Vec<String>,
    /// Exit status, or `None` when the END marker never came (dom0 hung or died).
    pub rc: Option<i32>,
    /// Progress notes written while it ran, in order.
    pub notes: Vec<String>,
}

impl Capture {
    /// The output as one string with `\n` line ends.
    pub fn text(&self) -> String {
        let mut s = self.lines.join("\n");
        if !s.is_empty() {
            s.push('\n');
        }
        s
    }
}

/// Everything parsed from a result channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// dom0 reached the point where steps start.
    pub ready: bool,
    /// dom0 ran every step.
    pub done: bool,
    /// Why setup failed, when it did.
    pub setup_failed: Option<String>,
    /// Captures in order.
    pub captures: Vec<Capture>,
    /// Framing errors (an END without BEGIN, a bad rc, names that disagree).
    pub problems: Vec<String>,
}

impl Report {
    /// The capture named `name`, if dom0 produced it.
    pub fn capture(&self, name: &str) -> Option<&Capture> {
        self.captures.iter().find(|c| c.name == name)
    }
}

/// Parses the text of a result channel.
pub fn parse(text: &str) -> Report {
    let mut report = Report::default();
    let mut open: Option<Capture> = None;
    for (idx, raw) in text.split('\n').enumerate() {
        let line = raw.trim_end_matches('\r');
        let lineno = idx + 1;
        if let Some(pos) = line.find(BEGIN) {
            let name = line[pos + BEGIN.len()..].trim().to_owned();
            if let Some(prev) = open.take() {
                report.problems.push(format!(
                    "line {lineno}: {name} began before {} ended",
                    prev.name
                ));
                report.captures.push(prev);
            }
            open = Some(Capture {
                name,
                lines: Vec::new(),
                rc: None,
                notes: Vec::new(),
            });
            continue;
        }
        if let Some(pos) = line.find(END) {
            let before = &line[..pos];
            let rest = line[pos + END.len()..].trim();
            let (name, rc) = match rest.rsplit_once(" rc=") {
                Some((n, rc)) => (n.trim(), rc.trim().parse::<i32>().ok()),
                None => (rest, None),
            };
            match open.take() {
                Some(mut cap) => {
                    if !before.is_empty() {
                        cap.lines.push(before.to_owned());
                    }
                    if cap.name != name {
                        report
                            .problems
                            .push(format!("line {lineno}: END for {name} closes {}", cap.name));
                    }
                    if rc.is_none() {
                        report
                            .problems
                            .push(format!("line {lineno}: END for {name} has no valid rc"));
                    }
                    cap.rc = rc;
                    report.captures.push(cap);
                }
                None => report
                    .problems
                    .push(format!("line {lineno}: END for {name} without BEGIN")),
            }
            continue;
        }
        if let Some(pos) = line.find(NOTE) {
            // A note is not output; one outside every capture belongs to nothing.
            if let Some(cap) = open.as_mut() {
                cap.notes.push(line[pos + NOTE.len()..].trim().to_owned());
            }
            continue;
        }
        if let Some(cap) = open.as_mut() {
            cap.lines.push(line.to_owned());
            continue;
        }
        if line.contains(READY) {
            report.ready = true;
        } else if line.contains(DONE) {
            report.done = true;
        } else if let Some(pos) = line.find(SETUP_FAILED) {
            report.setup_failed = Some(line[pos + SETUP_FAILED.len()..].trim().to_owned());
        }
    }
    if let Some(cap) = open.take() {
        // The final element of split('\n') is the partial last line; it was pushed above.
        let mut cap = cap;
        while cap.lines.last().is_some_and(|l| l.is_empty()) {
            cap.lines.pop();
        }
        report.captures.push(cap);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_whole_run() {
        let text = "boot noise\r\n@@RXL-READY\r\n@@RXL-BEGIN info/xl-info\r\nhost : x\r\n\
                    \r\nnr_cpus : 2\r\n@@RXL-END info/xl-info rc=0\r\n\
                    @@RXL-BEGIN info/rxl-info\r\n@@RXL-END info/rxl-info rc=127\r\n@@RXL-DONE\r\n";
        let r = parse(text);
        assert!(r.ready && r.done);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.captures.len(), 2);
        let xl = r.capture("info/xl-info").unwrap();
        assert_eq!(xl.lines, ["host : x", "", "nr_cpus : 2"]);
        assert_eq!(xl.rc, Some(0));
        assert_eq!(xl.text(), "host : x\n\nnr_cpus : 2\n");
        let rxl = r.capture("info/rxl-info").unwrap();
        assert!(rxl.lines.is_empty());
        assert_eq!(rxl.rc, Some(127));
    }

    #[test]
    fn markers_match_inside_spliced_lines() {
        let text = "(XEN) spliced @@RXL-BEGIN s/c\nout(d1) guest\nlast@@RXL-END s/c rc=3\n";
        let r = parse(text);
        let c = r.capture("s/c").unwrap();
        assert_eq!(c.lines, ["out(d1) guest", "last"]);
        assert_eq!(c.rc, Some(3));
        assert!(!r.done);
    }

    #[test]
    fn unfinished_capture_has_no_rc() {
        let r = parse("@@RXL-READY\n@@RXL-BEGIN s/hang\npartial output\n");
        let c = r.capture("s/hang").unwrap();
        assert_eq!(c.rc, None);
        assert_eq!(c.lines, ["partial output"]);
        assert!(!r.done);
    }

    #[test]
    fn notes_are_kept_apart_from_the_output() {
        let r = parse(
            "@@RXL-NOTE stray\n@@RXL-BEGIN s/long\nout 1\n@@RXL-NOTE run 1 done\nout 2\n\
             (XEN) x @@RXL-NOTE run 2 done\n",
        );
        let c = r.capture("s/long").unwrap();
        assert_eq!(c.lines, ["out 1", "out 2"]);
        assert_eq!(c.notes, ["run 1 done", "run 2 done"]);
        assert_eq!(c.rc, None);
    }

    #[test]
    fn framing_errors_are_reported() {
        let r = parse("@@RXL-END x rc=0\n@@RXL-BEGIN a\n@@RXL-BEGIN b\n@@RXL-END c rc=zz\n");
        assert_eq!(r.problems.len(), 4, "{:?}", r.problems);
        assert_eq!(r.captures.len(), 2);
        assert_eq!(r.captures[0].rc, None);
        assert_eq!(r.captures[1].rc, None);
    }

    #[test]
    fn setup_failure_reason_is_kept() {
        let r = parse("@@RXL-SETUP-FAILED xenstored did not start\n");
        assert_eq!(r.setup_failed.as_deref(), Some("xenstored did not start"));
        assert!(!r.ready);
    }
}
