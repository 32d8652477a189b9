//! `rxl events`: follows the lifecycle event journal (`events.jsonl` in the state
//! directory, written by the commands and the monitor; `toolstack::events`), one line per
//! event. It waits on inotify for the state directory (a new line, a rotation), never on a
//! timer, and never asks Xen anything. SIGINT, SIGTERM and SIGHUP end it with status 0; a
//! reader that went away (SIGPIPE's EPIPE) with 141, as the other commands.

use std::fs::File;
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::os::fd::AsFd as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use serde_json::Value;
use toolstack::events::Journal;

use crate::cli::EventsArgs;
use crate::report::try_out;

/// `rxl events`.
pub fn run(sim: Option<&Path>, args: &EventsArgs) -> anyhow::Result<ExitCode> {
    let journal = Journal::new(crate::backend::state_dir_of(sim));
    let mut print = |line: &[u8]| print_line(line, args.json);
    if !args.follow() {
        for path in [journal.rotated_path(), journal.path()] {
            let mut tail = Tail::new(path);
            tail.open(false)?;
            if let Err(code) = tail.pump(&mut print)? {
                return Ok(code);
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let signals = catch_signals()?;
    journal
        .prepare()
        .with_context(|| format!("cannot make {}", journal.dir().display()))?;
    // The watch comes first, so that nothing written after it is missed.
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
        .context("cannot start inotify")?;
    inotify
        .add_watch(
            journal.dir(),
            AddWatchFlags::IN_MODIFY
                | AddWatchFlags::IN_CREATE
                | AddWatchFlags::IN_MOVED_TO
                | AddWatchFlags::IN_MOVED_FROM,
        )
        .with_context(|| format!("cannot watch {}", journal.dir().display()))?;
    if args.since_start {
        let mut old = Tail::new(journal.rotated_path());
        old.open(false)?;
        if let Err(code) = old.pump(&mut print)? {
            return Ok(code);
        }
    }
    let mut tail = Tail::new(journal.path());
    tail.open(!args.since_start)?;
    loop {
        if let Err(code) = tail.pump(&mut print)? {
            return Ok(code);
        }
        let mut fds = [
            PollFd::new(inotify.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(anyhow::anyhow!("cannot wait for events: {e}")),
        }
        if signals.read_signal().ok().flatten().is_some() {
            return Ok(ExitCode::SUCCESS);
        }
        match inotify.read_events() {
            Ok(_) | Err(nix::errno::Errno::EAGAIN) => {}
            Err(e) => return Err(anyhow::anyhow!("cannot read inotify events: {e}")),
        }
    }
}

/// Blocks SIGINT, SIGTERM and SIGHUP and returns a signalfd that reads them.
fn catch_signals() -> anyhow::Result<SignalFd> {
    let mut set = SigSet::empty();
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(sig);
    }
    set.thread_block().context("cannot block SIGINT")?;
    SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .context("cannot read signals")
}

/// A journal file read as it grows, and reopened when it is replaced (rotation).
struct Tail {
    path: PathBuf,
    file: Option<File>,
    inode: Option<(u64, u64)>,
    partial: Vec<u8>,
}

/// What [`Tail::pump`] gives back: `Err(code)` when the output is gone and rxl must stop.
type Pumped = Result<(), ExitCode>;

impl Tail {
    fn new(path: PathBuf) -> Tail {
        Tail {
            path,
            file: None,
            inode: None,
            partial: Vec::new(),
        }
    }

    /// Opens the file if it is there, at its end when `at_end`.
    fn open(&mut self, at_end: bool) -> anyhow::Result<()> {
        let file = toolstack::events::open_for_reading(&self.path)
            .with_context(|| format!("cannot open {}", self.path.display()))?;
        self.partial.clear();
        match file {
            Some(mut f) => {
                let m = f.metadata()?;
                if at_end {
                    f.seek(SeekFrom::End(0))?;
                }
                self.inode = Some((m.dev(), m.ino()));
                self.file = Some(f);
            }
            None => {
                self.inode = None;
                self.file = None;
            }
        }
        Ok(())
    }

    /// The file now at the path, if any.
    fn inode_at_path(&self) -> Option<(u64, u64)> {
        std::fs::symlink_metadata(&self.path)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| (m.dev(), m.ino()))
    }

    /// Hands every complete new line to `line`; when the path holds another file (a
    /// rotation, or the first journal), the old one is read to its end first (no writer
    /// appends to it once it is renamed) and the new one from its start.
    fn pump(&mut self, line: &mut impl FnMut(&[u8]) -> io::Result<()>) -> anyhow::Result<Pumped> {
        loop {
            let now = self.inode_at_path();
            if let Some(f) = self.file.as_mut() {
                let mut bytes = Vec::new();
                f.read_to_end(&mut bytes)
                    .with_context(|| format!("cannot read {}", self.path.display()))?;
                self.partial.extend_from_slice(&bytes);
                while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
                    let rest = self.partial.split_off(end + 1);
                    let whole = std::mem::replace(&mut self.partial, rest);
                    if let Err(e) = line(&whole[..end]) {
                        return match e.kind() {
                            io::ErrorKind::BrokenPipe => Ok(Err(ExitCode::from(141))),
                            _ => Err(anyhow::anyhow!("cannot write the output: {e}")),
                        };
                    }
                }
            }
            if now.is_none() || now == self.inode {
                return Ok(Ok(()));
            }
            self.open(false)?;
        }
    }
}

/// Prints one journal line: as it is with `--json`, else as a short line. A line that is
/// not JSON (a damaged journal) is skipped with a warning.
fn print_line(line: &[u8], json: bool) -> io::Result<()> {
    let Ok(Value::Object(v)) = serde_json::from_slice::<Value>(line) else {
        eprintln!(
            "rxl: warning: skipping a journal line that is not a JSON object: {}",
            String::from_utf8_lossy(line)
        );
        return Ok(());
    };
    if json {
        return try_out(format_args!("{}\n", String::from_utf8_lossy(line)));
    }
    let text = |k: &str| match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "?".to_string(),
    };
    let mut out = format!(
        "{} {} {} (domid {})",
        text("time"),
        text("event"),
        text("name"),
        text("domid")
    );
    for (k, value) in &v {
        if !["v", "time", "seq", "event", "domid", "name"].contains(&k.as_str()) {
            match value {
                Value::String(s) => out.push_str(&format!(" {k}={s}")),
                other => out.push_str(&format!(" {k}={other}")),
            }
        }
    }
    try_out(format_args!("{out}\n"))
}
