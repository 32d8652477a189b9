//! Which process wrote a mark, and whether it still runs.
//!
//! rxl leaves marks that name a process: a create in progress, a restart under way. A mark
//! holds the pid and the process's start time (field 22 of `/proc/PID/stat`, clock ticks
//! since boot), so that a pid reused by another process later is not mistaken for the
//! writer. A zombie (killed, not yet reaped by its parent) is dead: it runs no code and
//! will never finish what the mark announced.

use std::fmt;

/// One process, as a mark names it: its pid and its start time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessId {
    /// The process id.
    pub pid: u32,
    /// The start time in clock ticks since boot (0 when it could not be read).
    pub start_time: u64,
}

/// What `/proc/PID/stat` says of a process: its state letter and start time.
fn stat(pid: u32) -> Option<(char, u64)> {
    if pid == 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses the state (field 3) and start time (field 22) of a `/proc/PID/stat` line. The
/// command name (field 2) is in parentheses and may itself hold spaces or parentheses, so
/// the fields after it are counted from the last `)`.
fn parse_stat(text: &str) -> Option<(char, u64)> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start_time = fields.nth(18)?.parse().ok()?;
    Some((state, start_time))
}

impl ProcessId {
    /// The calling process.
    pub fn current() -> ProcessId {
        let pid = std::process::id();
        ProcessId {
            pid,
            start_time: stat(pid).map_or(0, |(_, t)| t),
        }
    }

    /// The process `pid`, if it exists now.
    pub fn of(pid: u32) -> Option<ProcessId> {
        stat(pid).map(|(_, start_time)| ProcessId { pid, start_time })
    }

    /// Reads `PID START_TIME` as [`fmt::Display`] writes it; a bare `PID` (an older mark)
    /// has start time 0.
    pub fn parse(text: &str) -> Option<ProcessId> {
        let mut words = text.split_whitespace();
        let pid: u32 = words.next()?.parse().ok()?;
        let start_time = match words.next() {
            Some(w) => w.parse().ok()?,
            None => 0,
        };
        if pid == 0 || words.next().is_some() {
            return None;
        }
        Some(ProcessId { pid, start_time })
    }

    /// Whether this process still runs: the pid exists, is not a zombie, and started when
    /// the mark says (a mark without a start time trusts the pid alone).
    pub fn is_alive(&self) -> bool {
        match stat(self.pid) {
            Some(('Z' | 'X', _)) | None => false,
            Some((_, started)) => self.start_time == 0 || started == self.start_time,
        }
    }
}

impl fmt::Display for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.pid, self.start_time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let line = "42 (a) b) c) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 0 0";
        assert_eq!(parse_stat(line), Some(('S', 98765)));
        assert_eq!(parse_stat("42 (x) Z"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn the_current_process_is_alive_and_round_trips() {
        let me = ProcessId::current();
        assert_ne!(me.start_time, 0);
        assert!(me.is_alive());
        assert_eq!(ProcessId::parse(&me.to_string()), Some(me));
        let reused = ProcessId {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(
            !reused.is_alive(),
            "a pid with another start time is another process"
        );
    }

    #[test]
    fn marks_that_name_no_process_are_rejected() {
        assert_eq!(ProcessId::parse(""), None);
        assert_eq!(ProcessId::parse("0 5"), None);
        assert_eq!(ProcessId::parse("12 x"), None);
        assert_eq!(ProcessId::parse("12 5 7"), None);
        assert_eq!(
            ProcessId::parse("12"),
            Some(ProcessId {
                pid: 12,
                start_time: 0
            })
        );
    }

    #[test]
    fn a_zombie_is_dead() {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let id = ProcessId {
            pid: child.id(),
            start_time: 0,
        };
        // Not reaped yet: once it has exited it is a zombie until wait().
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while stat(id.pid).is_some_and(|(s, _)| s != 'Z') && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(stat(id.pid).map(|(s, _)| s), Some('Z'));
        assert!(!id.is_alive());
        child.wait().expect("reap");
    }
}
