//! Booting Xen with the dom0 image in QEMU (TCG) and watching the result channel.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::markers;

/// Xen's command line: serial console on com1, fixed dom0 size, everything logged with
/// boot-relative timestamps.
pub const XEN_CMDLINE: &str = "console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M \
     dom0_max_vcpus=1 loglvl=all guest_loglvl=all console_timestamps=boot";
/// dom0 Linux's command line.
pub const DOM0_CMDLINE: &str = "console=hvc0 earlyprintk=xen loglevel=7 rdinit=/init";
/// The CPU model: svm+npt for PVH (no shadow paging in Debian's Xen), without SMAP (TCG
/// faults the PV dom0's first iretq), RDTSCP (stalls Linux PVH guests) and AVX, AVX2, FMA
/// and F16C (guests' static busybox died of SIGILL on glibc's AVX2 string code now and then
/// under TCG's SVM emulation; without them glibc takes its SSE2 code).
pub const CPU: &str = "max,-smap,-rdtscp,-avx,-avx2,-fma,-f16c";
/// The accelerator: TCG, by default multi-threaded (one host thread per vCPU);
/// `RXL_E2E_ACCEL` overrides it (e.g. `tcg,thread=single`).
const ACCEL_DEFAULT: &str = "tcg";

fn accel() -> String {
    std::env::var("RXL_E2E_ACCEL").unwrap_or_else(|_| ACCEL_DEFAULT.to_owned())
}

/// Guest RAM of the emulated machine (MiB).
pub const MEMORY_MIB: u32 = 3072;

/// What went wrong running QEMU.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    /// A path cannot be passed through QEMU's comma/space separated options.
    #[error("{0} contains a comma or whitespace, which QEMU's -initrd list cannot carry; set RXL_CACHE to a plainer path")]
    BadPath(PathBuf),
    /// QEMU could not be started.
    #[error("could not start qemu-system-x86_64 under timeout")]
    Spawn(#[source] std::io::Error),
    /// Waiting on or reading from the run failed.
    #[error("watching the QEMU run failed ({0})")]
    Watch(String, #[source] std::io::Error),
}

/// One boot's inputs and outputs.
#[derive(Debug, Clone)]
pub struct Boot {
    /// Xen as an uncompressed ELF (QEMU's multiboot loader).
    pub xen: PathBuf,
    /// dom0 kernel (bzImage).
    pub kernel: PathBuf,
    /// dom0 initramfs.
    pub initrd: PathBuf,
    /// com1: Xen's console (and through it dom0's and guests' lines).
    pub serial_log: PathBuf,
    /// com2: dom0's result channel.
    pub results_log: PathBuf,
    /// Serial console on the terminal instead of a file.
    pub interactive: bool,
    /// Words appended to dom0's command line (e.g. `rxl_from=5`, read by the scenario).
    pub dom0_extra: String,
}

fn plain(p: &Path) -> Result<String, QemuError> {
    let s = p.to_string_lossy().into_owned();
    if s.contains(',') || s.chars().any(char::is_whitespace) {
        Err(QemuError::BadPath(p.to_owned()))
    } else {
        Ok(s)
    }
}

/// The QEMU arguments for `boot`.
pub fn args(boot: &Boot) -> Result<Vec<String>, QemuError> {
    let com1 = if boot.interactive {
        "stdio".to_owned()
    } else {
        format!("file:{}", plain(&boot.serial_log)?)
    };
    let mut a: Vec<String> = [
        "-machine",
        "pc",
        "-smp",
        "2",
        "-display",
        "none",
        "-monitor",
        "none",
        "-no-reboot",
        // No network device at all: the only network is dom0's bridge and its guests.
        "-nic",
        "none",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=0x04",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    a.splice(
        2..2,
        [
            "-accel".to_owned(),
            accel(),
            "-cpu".to_owned(),
            std::env::var("RXL_E2E_CPU").unwrap_or_else(|_| CPU.to_owned()),
        ],
    );
    a.extend(["-m".into(), MEMORY_MIB.to_string()]);
    a.extend(["-serial".into(), com1]);
    a.extend([
        "-serial".into(),
        format!("file:{}", plain(&boot.results_log)?),
    ]);
    a.extend(["-kernel".into(), plain(&boot.xen)?]);
    a.extend(["-append".into(), XEN_CMDLINE.into()]);
    a.extend([
        "-initrd".into(),
        format!(
            "{} {DOM0_CMDLINE}{}{},{}",
            plain(&boot.kernel)?,
            if boot.dom0_extra.is_empty() { "" } else { " " },
            boot.dom0_extra,
            plain(&boot.initrd)?
        ),
    ]);
    Ok(a)
}

/// How a run ended and when things happened (host wall clock from QEMU's start).
#[derive(Debug, Clone, Default)]
pub struct RunOutcome {
    /// QEMU's exit status (through `timeout`): `None` when killed by a signal.
    pub exit: Option<i32>,
    /// `timeout` stopped QEMU.
    pub timed_out: bool,
    /// Total QEMU time.
    pub elapsed: Duration,
    /// When dom0 reported ready.
    pub ready_at: Option<Duration>,
    /// When dom0 reported the last step done.
    pub done_at: Option<Duration>,
    /// When each capture ended, in order.
    pub ends: Vec<(String, Duration)>,
    /// The capture during which dom0 went silent for longer than that capture may (dom0
    /// hung): the run was stopped then.
    pub hung: Option<String>,
}

impl RunOutcome {
    /// What QEMU's exit status means, for humans.
    pub fn describe(&self) -> String {
        if let Some(name) = &self.hung {
            return format!(
                "dom0 went silent during {name} for longer than it may (hung): QEMU was stopped"
            );
        }
        match (self.timed_out, self.exit) {
            (true, _) => "QEMU was stopped by the timeout".into(),
            (false, Some(1)) => "dom0 ended the run (isa-debug-exit value 0)".into(),
            (false, Some(n)) if n > 1 && n % 2 == 1 => {
                format!("dom0 ended the run with isa-debug-exit value {}", n / 2)
            }
            (false, Some(0)) => {
                "QEMU exited 0: Xen rebooted or powered off (dom0 crash or panic?)".into()
            }
            (false, Some(n)) => format!("QEMU exited with status {n}"),
            (false, None) => "QEMU was killed by a signal".into(),
        }
    }
}

/// Boots and waits. Without `interactive`, QEMU's own output goes to `qemu_log`, and
/// `progress` is told each result-channel marker as it appears.
///
/// `silence(name)` is how long capture `name` may run without a BEGIN, NOTE or END on the
/// result channel; past that dom0 is taken as hung and QEMU is stopped at once, instead of
/// at the run's timeout.
pub fn run(
    boot: &Boot,
    timeout_s: u64,
    qemu_log: &Path,
    silence: impl Fn(&str) -> Option<Duration>,
    mut progress: impl FnMut(Duration, &str),
) -> Result<RunOutcome, QemuError> {
    let qemu_args = args(boot)?;
    for log in [&boot.serial_log, &boot.results_log] {
        // QEMU appends to an existing file; start each run empty.
        let _ = std::fs::remove_file(log);
    }
    let mut cmd = Command::new("timeout");
    if boot.interactive {
        // Let QEMU read the terminal (the dom0 shell's input).
        cmd.arg("--foreground");
    }
    cmd.args([
        "--kill-after=10",
        &timeout_s.to_string(),
        "qemu-system-x86_64",
    ])
    .args(&qemu_args);
    if !boot.interactive {
        let log = std::fs::File::create(qemu_log)
            .map_err(|e| QemuError::Watch(format!("creating {}", qemu_log.display()), e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| QemuError::Watch("duplicating the log handle".into(), e))?;
        cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
    }
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(QemuError::Spawn)?;
    let mut out = RunOutcome::default();
    let mut tail = Tail::new(&boot.results_log);
    // The capture running now, and when the channel last showed it alive.
    let mut open: Option<(String, Instant)> = None;
    let mut stopping = false;
    let status = loop {
        let status = child
            .try_wait()
            .map_err(|e| QemuError::Watch("waiting for QEMU".into(), e))?;
        for line in tail.new_lines() {
            let t = start.elapsed();
            if let Some(pos) = line.find(markers::BEGIN) {
                let name = line[pos + markers::BEGIN.len()..].trim().to_owned();
                open = Some((name, Instant::now()));
            } else if let Some(pos) = line.find(markers::NOTE) {
                if let Some((name, seen)) = open.as_mut() {
                    *seen = Instant::now();
                    let note = line[pos + markers::NOTE.len()..].trim();
                    // Every capture ends with its fault count: not news.
                    if !note.starts_with("faults=") {
                        progress(t, &format!("{name}: {note}"));
                    }
                }
            } else if line.contains(markers::READY) {
                out.ready_at.get_or_insert(t);
                progress(t, "dom0 ready");
            } else if line.contains(markers::DONE) {
                out.done_at.get_or_insert(t);
                progress(t, "scenario done");
            } else if let Some(pos) = line.find(markers::END) {
                let rest = line[pos + markers::END.len()..].trim().to_owned();
                let name = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                progress(t, &format!("finished {rest}"));
                out.ends.push((name, t));
                open = None;
            } else if let Some(pos) = line.find(markers::SETUP_FAILED) {
                progress(
                    t,
                    &format!(
                        "setup failed: {}",
                        &line[pos + markers::SETUP_FAILED.len()..]
                    ),
                );
            }
        }
        if let Some(s) = status {
            break s;
        }
        if let Some((name, seen)) = &open {
            if !stopping && silence(name).is_some_and(|limit| seen.elapsed() > limit) {
                progress(
                    start.elapsed(),
                    &format!(
                        "{name}: no sign of dom0 for {}s: stopping QEMU",
                        seen.elapsed().as_secs()
                    ),
                );
                out.hung = Some(name.clone());
                stopping = true;
                // `timeout` passes the signal on to QEMU.
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    out.elapsed = start.elapsed();
    out.exit = status.code();
    out.timed_out = matches!(out.exit, Some(124) | Some(137));
    Ok(out)
}

/// Reads the lines appended to a file since the last call.
struct Tail {
    path: PathBuf,
    offset: u64,
    partial: String,
}

impl Tail {
    fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            offset: 0,
            partial: String::new(),
        }
    }

    fn new_lines(&mut self) -> Vec<String> {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        let Ok(n) = f.read_to_end(&mut buf) else {
            return Vec::new();
        };
        self.offset += n as u64;
        self.partial.push_str(&String::from_utf8_lossy(&buf));
        let mut lines = Vec::new();
        while let Some(pos) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=pos).collect();
            lines.push(line.trim_end().to_owned());
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot(dir: &str) -> Boot {
        Boot {
            xen: PathBuf::from(format!("{dir}/xen.elf")),
            kernel: PathBuf::from(format!("{dir}/vmlinuz")),
            initrd: PathBuf::from(format!("{dir}/dom0.cpio.gz")),
            serial_log: PathBuf::from(format!("{dir}/serial.log")),
            results_log: PathBuf::from(format!("{dir}/results.log")),
            interactive: false,
            dom0_extra: String::new(),
        }
    }

    #[test]
    fn command_line_is_the_known_good_one() {
        let a = args(&boot("/c")).unwrap().join(" ");
        assert!(
            a.contains("-machine pc -accel tcg -cpu max,-smap,-rdtscp,-avx,-avx2,-fma,-f16c"),
            "{a}"
        );
        assert!(a.contains("-m 3072"), "{a}");
        assert!(a.contains("-no-reboot -nic none"), "no network device: {a}");
        assert!(
            a.contains("-device isa-debug-exit,iobase=0xf4,iosize=0x04"),
            "{a}"
        );
        assert!(
            a.contains("-serial file:/c/serial.log -serial file:/c/results.log"),
            "{a}"
        );
        assert!(a.contains("-kernel /c/xen.elf"), "{a}");
        assert!(a.contains(
            "-initrd /c/vmlinuz console=hvc0 earlyprintk=xen loglevel=7 rdinit=/init,/c/dom0.cpio.gz"
        ), "{a}");
        assert!(
            a.contains("dom0_mem=1024M,max:1024M dom0_max_vcpus=1"),
            "{a}"
        );
        let mut r = boot("/c");
        r.dom0_extra = "rxl_from=4".into();
        assert!(args(&r)
            .unwrap()
            .join(" ")
            .contains("rdinit=/init rxl_from=4,/c/dom0.cpio.gz"));
        let mut i = boot("/c");
        i.interactive = true;
        assert!(args(&i)
            .unwrap()
            .join(" ")
            .contains("-serial stdio -serial file:"));
    }

    #[test]
    fn rejects_paths_qemu_would_split() {
        assert!(matches!(args(&boot("/a,b")), Err(QemuError::BadPath(_))));
        assert!(matches!(args(&boot("/a b")), Err(QemuError::BadPath(_))));
    }

    #[test]
    fn exit_statuses_are_explained() {
        let o = |exit, timed_out| {
            RunOutcome {
                exit,
                timed_out,
                ..RunOutcome::default()
            }
            .describe()
        };
        assert!(o(Some(1), false).contains("value 0"));
        assert!(o(Some(5), false).contains("value 2"));
        assert!(o(Some(0), false).contains("rebooted"));
        assert!(o(Some(124), true).contains("timeout"));
        let hung = RunOutcome {
            exit: Some(143),
            hung: Some("s/timed".into()),
            ..RunOutcome::default()
        };
        assert!(hung.describe().contains("silent during s/timed"));
    }

    #[test]
    fn tail_returns_only_complete_new_lines() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut t = Tail::new(&p);
        assert!(t.new_lines().is_empty());
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(b"one\r\ntw").unwrap();
        assert_eq!(t.new_lines(), ["one"]);
        f.write_all(b"o\nthree\n").unwrap();
        assert_eq!(t.new_lines(), ["two", "three"]);
        assert!(t.new_lines().is_empty());
    }
}
