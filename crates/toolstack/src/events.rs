//! The lifecycle event journal: `events.jsonl` in rxl's state directory, one JSON object
//! per line, appended by the command or the monitor where the event happens and followed
//! by `rxl events` (docs/operations.md has the schema).
//!
//! Writing: under the lock `events.lock` (in the state directory), the writer finds the
//! last sequence number, rotates the journal to `events.jsonl.1` when it has grown past
//! [`MAX_BYTES`], and appends its line with one `write()` on a file opened with
//! `O_APPEND` (mode 0600, never through a symbolic link), so lines of concurrent writers
//! never interleave and `seq` increases by one per event across rotations. A failure to
//! write an event never fails the operation that made it: [`emit`] logs a warning.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use xen_host::{DomId, ShutdownReason, Store};

use crate::state::{StateDir, FILE_MODE};

/// The journal's file name in the state directory.
pub const JOURNAL: &str = "events.jsonl";
/// The previous journal, after a rotation.
pub const ROTATED: &str = "events.jsonl.1";
/// The schema version every line carries as `"v"`.
pub const VERSION: u32 = 1;
/// A journal larger than this is rotated before the next event is appended.
pub const MAX_BYTES: u64 = 1 << 20;
/// How much of the journal's end is read to find the last sequence number (a line is far
/// shorter: a name is at most 100 bytes).
const TAIL: u64 = 4096;

/// One lifecycle event (the fields besides `v`, `time`, `seq`, `event`, `domid`, `name`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A create succeeded.
    Created {
        /// The domain's uuid.
        uuid: String,
        /// `pvh` (its `type`).
        domain_type: String,
    },
    /// The domain was paused by a command.
    Paused,
    /// The domain was unpaused by a command.
    Unpaused,
    /// Xen reports the domain shut down (seen by the monitor).
    Shutdown {
        /// Xen's reason, if it gave one.
        reason: Option<ShutdownReason>,
    },
    /// The domain crashed (after its `shutdown` event with reason `crash`).
    Crashed,
    /// The monitor built the guest again.
    Restarted {
        /// The domain that shut down.
        old_domid: DomId,
    },
    /// The domain was destroyed by rxl (a command or the monitor's action): `"by": "rxl"`.
    Destroyed,
    /// The domain went without rxl destroying it (another tool's destroy, such as
    /// `xl destroy`), seen by the monitor that cleaned up after it: `destroyed` with
    /// `"by": "other"`.
    DestroyedByOther,
    /// A device was attached.
    DeviceAttached {
        /// `vbd` or `vif`.
        kind: String,
        /// Its devid.
        devid: u32,
    },
    /// A device was detached.
    DeviceDetached {
        /// `vbd` or `vif`.
        kind: String,
        /// Its devid.
        devid: u32,
    },
}

impl Event {
    /// `paused` when `paused`, else `unpaused`.
    pub fn pause(paused: bool) -> Event {
        if paused {
            Event::Paused
        } else {
            Event::Unpaused
        }
    }

    /// `created` of the domain built from `cfg`.
    pub fn created(cfg: &xlcfg::model::DomainConfig) -> Event {
        Event::Created {
            uuid: cfg.uuid.hyphenated().to_string(),
            domain_type: cfg.domain_type.as_str().to_string(),
        }
    }

    /// `device_attached` of the device `info` describes.
    pub fn attached(info: &crate::devices::DeviceInfo) -> Event {
        Event::DeviceAttached {
            kind: info.kind.as_str().to_string(),
            devid: info.devid,
        }
    }

    /// `device_detached` of the device `kind`/`devid`.
    pub fn detached(kind: devices::DeviceKind, devid: u32) -> Event {
        Event::DeviceDetached {
            kind: kind.as_str().to_string(),
            devid,
        }
    }

    /// The value of its `event` field.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Created { .. } => "created",
            Event::Paused => "paused",
            Event::Unpaused => "unpaused",
            Event::Shutdown { .. } => "shutdown",
            Event::Crashed => "crashed",
            Event::Restarted { .. } => "restarted",
            Event::Destroyed | Event::DestroyedByOther => "destroyed",
            Event::DeviceAttached { .. } => "device_attached",
            Event::DeviceDetached { .. } => "device_detached",
        }
    }

    /// Its own fields, in the order they are written.
    fn fields(&self) -> Vec<(&'static str, Value)> {
        match self {
            Event::Created { uuid, domain_type } => {
                vec![("uuid", json!(uuid)), ("type", json!(domain_type))]
            }
            Event::Shutdown { reason } => vec![("reason", json!(reason.map(reason_word)))],
            Event::Restarted { old_domid } => vec![("old_domid", json!(old_domid.0))],
            Event::DeviceAttached { kind, devid } | Event::DeviceDetached { kind, devid } => {
                vec![("kind", json!(kind)), ("devid", json!(devid))]
            }
            Event::Destroyed => vec![("by", json!("rxl"))],
            Event::DestroyedByOther => vec![("by", json!("other"))],
            Event::Paused | Event::Unpaused | Event::Crashed => Vec::new(),
        }
    }
}

/// Xen's shutdown reason as the journal spells it.
pub fn reason_word(r: ShutdownReason) -> &'static str {
    match r {
        ShutdownReason::Poweroff => "poweroff",
        ShutdownReason::Reboot => "reboot",
        ShutdownReason::Suspend => "suspend",
        ShutdownReason::Crash => "crash",
        ShutdownReason::Watchdog => "watchdog",
        ShutdownReason::SoftReset => "soft_reset",
    }
}

/// The journal of one state directory.
#[derive(Clone, Debug)]
pub struct Journal {
    dir: PathBuf,
    max_bytes: u64,
}

impl Journal {
    /// The journal in the state directory `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Journal {
        Journal {
            dir: dir.into(),
            max_bytes: MAX_BYTES,
        }
    }

    /// The same journal, rotated past `max_bytes` instead of [`MAX_BYTES`].
    pub fn with_limit(mut self, max_bytes: u64) -> Journal {
        self.max_bytes = max_bytes;
        self
    }

    /// The state directory it lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes the state directory as rxl makes it (mode 0700, not a symbolic link), so that
    /// a reader can watch it before the first event.
    pub fn prepare(&self) -> io::Result<()> {
        crate::state::ensure_dir(&self.dir, crate::state::DIR_MODE)
    }

    /// The journal file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(JOURNAL)
    }

    /// The rotated journal file.
    pub fn rotated_path(&self) -> PathBuf {
        self.dir.join(ROTATED)
    }

    /// Appends `event` about `dom` (called `name`); returns its sequence number.
    pub fn append(&self, dom: DomId, name: &str, event: &Event) -> io::Result<u64> {
        let _lock = crate::lock::HostLock::acquire(&self.dir, "events")
            .map_err(|e| io::Error::other(e.to_string()))?;
        let path = self.path();
        let mut seq = match last_seq(&path)? {
            Some(n) => n,
            None => last_seq(&self.rotated_path())?.unwrap_or(0),
        };
        let size = match std::fs::symlink_metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        if size > self.max_bytes {
            std::fs::rename(&path, self.rotated_path())?;
        }
        seq += 1;
        let line = render(seq, SystemTime::now(), dom, name, event);
        let mut file = crate::state::open_regular(
            &path,
            OpenOptions::new().append(true).create(true).mode(FILE_MODE),
        )?;
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
        // One write() of the whole line: O_APPEND puts it at the end in one piece.
        let n = file.write(line.as_bytes())?;
        if n != line.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!(
                    "{}: short write ({n} of {} bytes)",
                    path.display(),
                    line.len()
                ),
            ));
        }
        Ok(seq)
    }
}

/// Appends `event` to the journal of the state directory `state_dir`; a failure is logged
/// as a warning and otherwise ignored (an event never fails the operation it reports).
pub fn emit(state_dir: &Path, dom: DomId, name: &str, event: Event) {
    if let Err(e) = Journal::new(state_dir).append(dom, name, &event) {
        tracing::warn!(
            "cannot write the {} event of domain {dom} to {}: {e}",
            event.name(),
            state_dir.join(JOURNAL).display()
        );
    }
}

/// [`emit`] of the `shutdown` event Xen's `reason` makes, followed by `crashed` when the
/// reason is a crash.
pub fn emit_shutdown(state_dir: &Path, dom: DomId, name: &str, reason: Option<ShutdownReason>) {
    emit(state_dir, dom, name, Event::Shutdown { reason });
    if reason == Some(ShutdownReason::Crash) {
        emit(state_dir, dom, name, Event::Crashed);
    }
}

/// [`emit`] of `restarted`: the guest `name` that was domain `old` is now domain `new`.
pub fn emit_restarted(state_dir: &Path, new: DomId, name: &str, old: DomId) {
    emit(state_dir, new, name, Event::Restarted { old_domid: old });
}

/// [`emit`] for `dom`, its name read from xenstore (empty when it has none).
pub fn emit_for<S: Store + ?Sized>(xs: &S, state: &StateDir, dom: DomId, event: Event) {
    let name = crate::domains::name_of(xs, dom).ok().flatten();
    emit(state.path(), dom, name.as_deref().unwrap_or(""), event);
}

/// One journal line (with its newline): the common keys first, in the documented order,
/// then the event's own.
pub fn render(seq: u64, time: SystemTime, dom: DomId, name: &str, event: &Event) -> String {
    let mut line = format!(
        "{{\"v\":{VERSION},\"time\":\"{}\",\"seq\":{seq},\"event\":\"{}\",\"domid\":{},\"name\":{}",
        rfc3339_ms(time),
        event.name(),
        dom.0,
        Value::from(name)
    );
    for (key, value) in event.fields() {
        line.push_str(&format!(",\"{key}\":{value}"));
    }
    line.push_str("}\n");
    line
}

/// The `seq` of the last complete line of the journal `path`; `None` when there is no
/// file or no line with one.
fn last_seq(path: &Path) -> io::Result<Option<u64>> {
    let mut file = match crate::state::open_regular(path, OpenOptions::new().read(true)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL)))?;
    let mut tail = Vec::new();
    file.take(TAIL).read_to_end(&mut tail)?;
    Ok(tail
        .split(|&b| b == b'\n')
        .rev()
        .filter(|l| !l.is_empty())
        .find_map(|l| {
            serde_json::from_slice::<Value>(l)
                .ok()?
                .get("seq")?
                .as_u64()
        }))
}

/// `time` as RFC 3339 in UTC with milliseconds: `2026-12-07T09:38:26.123Z`.
pub fn rfc3339_ms(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_date(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (counted in 400-year eras of
/// 146097 days, each era's years starting on March 1st so that the leap day ends a year):
/// (year, month, day).
pub fn civil_date(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days from 0000-03-01
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// Opens the journal file `path` for reading, as the writers make it (a regular file, not
/// through a symbolic link); `None` when there is none yet.
pub fn open_for_reading(path: &Path) -> io::Result<Option<File>> {
    match crate::state::open_regular(path, OpenOptions::new().read(true)) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_are_rfc3339_utc_with_milliseconds() {
        let t = |s: u64, ms: u64| UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms);
        assert_eq!(rfc3339_ms(t(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(t(951_782_400, 7)), "2000-02-29T00:00:00.007Z");
        assert_eq!(
            rfc3339_ms(t(1_796_636_706, 123)),
            "2026-12-07T09:45:06.123Z"
        );
        assert_eq!(
            rfc3339_ms(t(4_107_542_399, 999)),
            "2100-02-28T23:59:59.999Z"
        );
    }

    fn lines(path: &Path) -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    #[test]
    fn lines_carry_the_schema_and_increasing_seq() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let j = Journal::new(dir.path());
        j.append(
            DomId(3),
            "web",
            &Event::Created {
                uuid: "u".into(),
                domain_type: "pvh".into(),
            },
        )?;
        j.append(
            DomId(3),
            "web",
            &Event::Shutdown {
                reason: Some(ShutdownReason::SoftReset),
            },
        )?;
        let got = lines(&j.path());
        assert_eq!(got.len(), 2);
        assert_eq!(got[0]["v"], 1);
        assert_eq!(got[0]["seq"], 1);
        assert_eq!(got[0]["event"], "created");
        assert_eq!(got[0]["domid"], 3);
        assert_eq!(got[0]["name"], "web");
        assert_eq!(got[0]["type"], "pvh");
        assert_eq!(got[1]["seq"], 2);
        assert_eq!(got[1]["reason"], "soft_reset");
        let text = std::fs::read_to_string(j.path())?;
        assert!(text.starts_with("{\"v\":1,\"time\":\""), "{text}");
        assert!(text.contains(",\"seq\":1,\"event\":\"created\",\"domid\":3,\"name\":\"web\",\"uuid\":\"u\",\"type\":\"pvh\"}\n"), "{text}");
        let mode = std::fs::metadata(j.path())?.permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600);
        Ok(())
    }

    #[test]
    fn a_destroy_says_who_destroyed() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let j = Journal::new(dir.path());
        j.append(DomId(4), "a", &Event::Destroyed)?;
        j.append(DomId(5), "b", &Event::DestroyedByOther)?;
        let text = std::fs::read_to_string(j.path())?;
        let got: Vec<&str> = text.lines().collect();
        assert!(
            got[0].ends_with(",\"event\":\"destroyed\",\"domid\":4,\"name\":\"a\",\"by\":\"rxl\"}"),
            "{text}"
        );
        assert!(
            got[1]
                .ends_with(",\"event\":\"destroyed\",\"domid\":5,\"name\":\"b\",\"by\":\"other\"}"),
            "{text}"
        );
        Ok(())
    }

    #[test]
    fn rotation_keeps_one_old_journal_and_the_sequence() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let j = Journal::new(dir.path()).with_limit(300);
        for _ in 0..10 {
            j.append(DomId(1), "a", &Event::Paused)?;
        }
        let (old, new) = (lines(&j.rotated_path()), lines(&j.path()));
        assert!(!old.is_empty() && !new.is_empty());
        let seqs: Vec<u64> = old
            .iter()
            .chain(&new)
            .filter_map(|v| v["seq"].as_u64())
            .collect();
        // Older rotations are dropped; what is kept is consecutive and ends at 10.
        assert_eq!(seqs.last(), Some(&10));
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
        assert!(std::fs::metadata(j.path())?.len() <= 300 + 200);
        Ok(())
    }

    #[test]
    fn a_link_at_the_journal_is_refused() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("target");
        std::fs::write(&target, b"")?;
        std::os::unix::fs::symlink(&target, dir.path().join(JOURNAL))?;
        assert!(Journal::new(dir.path())
            .append(DomId(1), "a", &Event::Paused)
            .is_err());
        assert_eq!(std::fs::read(&target)?, b"");
        Ok(())
    }

    #[test]
    fn concurrent_writers_write_whole_lines_in_sequence() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let j = Journal::new(dir.path());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        j.append(DomId(t), &format!("guest{t}"), &Event::Unpaused)?;
                    }
                    io::Result::Ok(())
                })
            })
            .collect();
        for t in threads {
            t.join().expect("writer thread")?;
        }
        let got = lines(&dir.path().join(JOURNAL));
        let seqs: Vec<u64> = got.iter().filter_map(|v| v["seq"].as_u64()).collect();
        assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
        Ok(())
    }
}
