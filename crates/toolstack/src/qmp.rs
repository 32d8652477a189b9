//! A small QMP client for the device model's control socket (`qmp-libxl-D`): the greeting,
//! `qmp_capabilities`, then one command at a time. What libxl 4.17 asks a freshly started
//! qemu-xen (`device_model_postconfig_chardev` in libxl_dm.c) is `query-chardev`, to find
//! the ptys of the guest's emulated serial ports and publish them in xenstore
//! (`/local/domain/D/serial/N/tty`), where `xl console -t serial` and `rxl console -t
//! serial` look for them.
//!
//! Every read and write is bounded by one deadline, a line by [`MAX_LINE`] bytes and a
//! conversation by [`MAX_BYTES`]: the process on the other end runs as root, but a wedged
//! or confused one must not hang or swell rxl.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long libxl gives a QMP command (`LIBXL_QMP_CMD_TIMEOUT`).
pub const CMD_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest line (one JSON message) read.
const MAX_LINE: u64 = 64 * 1024;
/// The most bytes read from one connection.
const MAX_BYTES: usize = 1 << 20;

/// One connection, past the capabilities negotiation.
#[derive(Debug)]
pub struct Qmp {
    reader: BufReader<UnixStream>,
    deadline: Instant,
    read: usize,
    next_id: u64,
}

impl Qmp {
    /// Connect to `socket` and negotiate; everything on this connection must be done by
    /// now + `timeout`.
    pub fn connect(socket: &Path, timeout: Duration) -> Result<Qmp, String> {
        let stream = UnixStream::connect(socket)
            .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
        let mut q = Qmp {
            reader: BufReader::new(stream),
            deadline: Instant::now() + timeout,
            read: 0,
            next_id: 1,
        };
        let greeting = q.message()?;
        if greeting.get("QMP").is_none() {
            return Err(format!("no QMP greeting, got {}", shown(&greeting)));
        }
        q.execute("qmp_capabilities")?;
        Ok(q)
    }

    fn remaining(&self) -> Result<Duration, String> {
        self.deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| "timed out".to_string())
    }

    /// The next JSON message.
    fn message(&mut self) -> Result<Value, String> {
        let mut line = Vec::new();
        loop {
            let left = self.remaining()?;
            self.reader
                .get_ref()
                .set_read_timeout(Some(left))
                .map_err(|e| format!("cannot set a timeout: {e}"))?;
            line.clear();
            let n = (&mut self.reader)
                .take(MAX_LINE)
                .read_until(b'\n', &mut line)
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                        "timed out".to_string()
                    }
                    _ => format!("read: {e}"),
                })?;
            self.read += n;
            if n == 0 {
                return Err("the device model closed the connection".into());
            }
            if self.read > MAX_BYTES || (n as u64 == MAX_LINE && line.last() != Some(&b'\n')) {
                return Err("the device model's answer is too long".into());
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return serde_json::from_slice(&line)
                .map_err(|e| format!("not JSON ({e}): {}", String::from_utf8_lossy(&line)));
        }
    }

    /// Run `command` and return its `return` value; events that arrive meanwhile are
    /// skipped.
    pub fn execute(&mut self, command: &str) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let mut text = serde_json::json!({ "execute": command, "id": id }).to_string();
        text.push_str("\r\n");
        let left = self.remaining()?;
        let stream = self.reader.get_mut();
        stream
            .set_write_timeout(Some(left))
            .map_err(|e| format!("cannot set a timeout: {e}"))?;
        stream
            .write_all(text.as_bytes())
            .map_err(|e| format!("{command}: write: {e}"))?;
        loop {
            let m = self.message().map_err(|e| format!("{command}: {e}"))?;
            if m.get("event").is_some() {
                continue;
            }
            if m.get("id").and_then(Value::as_u64) != Some(id) {
                return Err(format!("{command}: unexpected answer {}", shown(&m)));
            }
            if let Some(e) = m.get("error") {
                return Err(format!("{command}: {}", shown(e)));
            }
            return m
                .get("return")
                .cloned()
                .ok_or_else(|| format!("{command}: unexpected answer {}", shown(&m)));
        }
    }
}

/// A JSON value shortened for an error message.
fn shown(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

/// The serial ports in a `query-chardev` answer that QEMU connected to a pty: `(port, pty
/// path)` for each `serialN` whose `filename` is `pty:PATH`, as libxl reads them. A label
/// `serial` followed by anything but a number is an error (libxl's "Invalid serial port
/// number"), and so is a pty path that is not `/dev/pts/N`.
pub fn serial_ptys(chardevs: &Value) -> Result<Vec<(u32, String)>, String> {
    let items = chardevs
        .as_array()
        .ok_or_else(|| format!("query-chardev: not a list: {}", shown(chardevs)))?;
    let mut out = Vec::new();
    for item in items {
        let field = |k: &str| {
            item.get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("query-chardev: an entry without {k}: {}", shown(item)))
        };
        let Some(num) = field("label")?.strip_prefix("serial") else {
            continue;
        };
        let port = (!num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()))
            .then(|| num.parse::<u32>().ok())
            .flatten()
            .ok_or_else(|| format!("query-chardev: invalid serial port number: serial{num}"))?;
        let Some(path) = field("filename")?.strip_prefix("pty:") else {
            continue;
        };
        if !is_pts_path(path) {
            return Err(format!(
                "query-chardev: serial{port} is on {path:?}, not a pseudo-terminal"
            ));
        }
        out.push((port, path.to_owned()));
    }
    Ok(out)
}

/// The longest VNC host or service rxl writes to xenstore from QEMU's answer.
const VNC_FIELD_MAX: usize = 256;

/// The address in a `query-vnc` answer, as libxl reads it (`device_model_postconfig_vnc`):
/// `None` when VNC is off, else `(host, service)`. Both must be there when it is on, and
/// are bounded and printable (they go to xenstore).
pub fn vnc_address(v: &Value) -> Result<Option<(String, String)>, String> {
    let enabled = v
        .get("enabled")
        .and_then(Value::as_bool)
        .ok_or_else(|| format!("query-vnc: no enabled flag: {}", shown(v)))?;
    if !enabled {
        return Ok(None);
    }
    let field = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|s| {
                !s.is_empty() && s.len() <= VNC_FIELD_MAX && s.chars().all(|c| c.is_ascii_graphic())
            })
            .map(str::to_owned)
            .ok_or_else(|| format!("query-vnc: no valid {k}: {}", shown(v)))
    };
    Ok(Some((field("host")?, field("service")?)))
}

/// Whether `path` is `/dev/pts/N`.
pub fn is_pts_path(path: &str) -> bool {
    path.strip_prefix("/dev/pts/")
        .is_some_and(|n| !n.is_empty() && n.len() <= 10 && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::net::UnixListener;

    #[test]
    fn the_vnc_address_is_read_as_libxl_reads_it() {
        let on = serde_json::json!({"enabled": true, "host": "127.0.0.1", "service": "5901", "auth": "none"});
        assert_eq!(
            vnc_address(&on).unwrap(),
            Some(("127.0.0.1".to_string(), "5901".to_string()))
        );
        assert_eq!(
            vnc_address(&serde_json::json!({"enabled": false})).unwrap(),
            None
        );
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"enabled": true, "host": "127.0.0.1"}),
            serde_json::json!({"enabled": true, "host": "a b", "service": "5900"}),
            serde_json::json!({"enabled": true, "host": "h", "service": "x".repeat(300)}),
        ] {
            assert!(
                vnc_address(&bad).unwrap_err().starts_with("query-vnc: "),
                "{bad}"
            );
        }
    }

    #[test]
    fn serial_ptys_are_read_as_libxl_reads_them() {
        let v = json!([
            {"label": "libxl-cmd", "filename": "unix:/var/run/xen/qmp-libxl-3,server=on"},
            {"label": "serial0", "filename": "pty:/dev/pts/4", "frame-opened": true},
            {"label": "serial1", "filename": "null"},
            {"label": "serial2", "filename": "pty:/dev/pts/17"},
        ]);
        assert_eq!(
            serial_ptys(&v).unwrap(),
            vec![
                (0, "/dev/pts/4".to_string()),
                (2, "/dev/pts/17".to_string())
            ]
        );
        for (bad, why) in [
            (
                json!([{"label": "serialx", "filename": "pty:/dev/pts/1"}]),
                "invalid serial port number: serialx",
            ),
            (
                json!([{"label": "serial", "filename": "pty:/dev/pts/1"}]),
                "invalid serial port number: serial",
            ),
            (
                json!([{"label": "serial0", "filename": "pty:/etc/shadow"}]),
                "not a pseudo-terminal",
            ),
            (json!([{"label": "serial0"}]), "an entry without filename"),
            (json!({"label": "serial0"}), "not a list"),
        ] {
            let e = serial_ptys(&bad).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }

    /// A QMP server on a socket in `dir` answering with `script` (one reply per command
    /// after the greeting), for one connection.
    fn server(dir: &Path, greeting: &'static str, replies: Vec<String>) -> std::path::PathBuf {
        let path = dir.join("qmp");
        let l = UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            w.write_all(greeting.as_bytes()).unwrap();
            for reply in replies {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap() == 0 {
                    return;
                }
                let id = serde_json::from_str::<Value>(&line).unwrap()["id"].clone();
                w.write_all(reply.replace("ID", &id.to_string()).as_bytes())
                    .unwrap();
            }
            std::thread::sleep(Duration::from_secs(3));
        });
        path
    }

    const GREETING: &str = "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n";

    #[test]
    fn a_conversation_skips_events_and_returns_the_answer() {
        let dir = tempfile::tempdir().unwrap();
        let p = server(
            dir.path(),
            GREETING,
            vec![
                "{\"return\": {}, \"id\": ID}\r\n".into(),
                "{\"event\": \"RESUME\"}\r\n\r\n{\"return\": [{\"label\": \"serial0\", \"filename\": \"pty:/dev/pts/9\"}], \"id\": ID}\r\n".into(),
            ],
        );
        let mut q = Qmp::connect(&p, Duration::from_secs(5)).unwrap();
        let v = q.execute("query-chardev").unwrap();
        assert_eq!(serial_ptys(&v).unwrap(), vec![(0, "/dev/pts/9".into())]);
    }

    #[test]
    fn silence_errors_and_strangers_end_in_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        // No greeting at all: the deadline ends it.
        let p = server(dir.path(), "", vec![]);
        let t = Instant::now();
        let e = Qmp::connect(&p, Duration::from_millis(300)).err().unwrap();
        assert_eq!(e, "timed out");
        assert!(t.elapsed() < Duration::from_secs(2));

        let dir = tempfile::tempdir().unwrap();
        let p = server(
            dir.path(),
            GREETING,
            vec![
                "{\"return\": {}, \"id\": ID}\r\n".into(),
                "{\"error\": {\"class\": \"CommandNotFound\"}, \"id\": ID}\r\n".into(),
            ],
        );
        let mut q = Qmp::connect(&p, Duration::from_secs(5)).unwrap();
        let e = q.execute("query-chardev").unwrap_err();
        assert!(
            e.starts_with("query-chardev: {\"class\":\"CommandNotFound\"}"),
            "{e}"
        );

        let dir = tempfile::tempdir().unwrap();
        let p = server(dir.path(), "{\"hello\": 1}\r\n", vec![]);
        let e = Qmp::connect(&p, Duration::from_secs(5)).err().unwrap();
        assert!(e.starts_with("no QMP greeting"), "{e}");

        let e = Qmp::connect(&dir.path().join("none"), Duration::from_secs(1))
            .err()
            .unwrap();
        assert!(e.starts_with("cannot connect to"), "{e}");
    }
}
