//! Running a bootloader (`bootloader = "pygrub"`, `"rxl"`, or any program) on the guest's
//! disk, as libxl's restricted mode does, with bounds: the guest's disk is the guest's, so
//! whatever the program prints or writes is untrusted.
//!
//! [`run`] looks the program up (a bare name in Xen's private bin directory, else as given;
//! `rxl` is rxl's own binary run as `rxl bootloader`), picks the disk (the config's first,
//! a local file or device), makes a private directory (mode 0700) under the run directory,
//! runs the program there with pygrub's command line in libxl's order (the
//! `--kernel`/`--ramdisk`/`--args` hints, `--runas=UID --quiet`, `--output=FILE
//! --output-format=simple0 --output-directory=DIR`, `bootloader_args`, the disk), a clean environment, stdin from
//! /dev/null, its output captured (the last [`KEPT_OUTPUT`] bytes) and logged, a time limit
//! (its whole process group killed at the limit). It then reads the `simple0` output (at
//! most [`MAX_OUTPUT`] bytes) and the kernel and ramdisk it names, which must be regular
//! files directly inside the output directory (opened without following links), each at
//! most [`BootloaderOptions::max_image`] bytes. The directory is removed on every path.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write as _};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use xlcfg::model::{Boot, DiskFormat, DiskSpec, DiskTargetKind, DomainConfig};

/// Xen 4.17's private bin directory, where libxl looks up a bare bootloader name.
pub const PRIVATE_BIN_DIR: &str = "/usr/lib/xen-4.17/bin";
/// The bootloader name that means rxl's own (`rxl bootloader`).
pub const RXL_BOOTLOADER: &str = "rxl";
/// libxl's time limit for a bootloader.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// The largest `simple0` output read.
pub const MAX_OUTPUT: u64 = 64 * 1024;
/// The largest kernel or ramdisk taken from a bootloader (pygrub 4.17's RLIMIT_FSIZE).
pub const DEFAULT_MAX_IMAGE: u64 = 128 << 20;
/// How much of the bootloader's stdout and stderr is kept (the end of each) for messages
/// and the log.
pub const KEPT_OUTPUT: usize = 16 * 1024;
/// The PATH a bootloader runs with.
pub const CLEAN_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The uid of `nobody` when the user database has none.
const NOBODY_UID: u32 = 65534;
/// How long the end of the bootloader's output is waited for once it has exited.
const READERS_GRACE: Duration = Duration::from_secs(2);
/// How many of the bootloader's last output lines a message shows.
const SHOWN_LINES: usize = 10;

/// How bootloaders run on this host.
#[derive(Clone, Debug)]
pub struct BootloaderOptions {
    /// Where a bare program name is looked up first ([`PRIVATE_BIN_DIR`]).
    pub private_bin: PathBuf,
    /// Where each run gets its private directory (rxl's state directory's `bootloader/`).
    pub run_dir: PathBuf,
    /// Where `bootloader.NAME.log` is written (NAME hex-encoded, as the monitor logs);
    /// `None`: no log.
    pub log_dir: Option<PathBuf>,
    /// The uid the bootloader is told to run as (`--runas`); never 0.
    pub runas: u32,
    /// Why the host's configured user cannot be used (an unknown name): reported when a
    /// bootloader is to run, so that guests that boot otherwise are not refused for it.
    pub runas_error: Option<String>,
    /// The time limit.
    pub timeout: Duration,
    /// The largest kernel, and the largest ramdisk, accepted.
    pub max_image: u64,
    /// rxl's own binary for `bootloader = "rxl"` (`None`: the running executable).
    pub self_exe: Option<PathBuf>,
    /// Who picks an entry from the guest's boot menu (`rxl create -c` on a terminal);
    /// `None`: the default entry boots.
    pub menu: Option<MenuPrompt>,
}

/// The guest's boot menu, as `rxl bootloader --list-entries` read it (titles made safe
/// to print: control characters replaced).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootMenu {
    /// The entries' titles, in order.
    pub titles: Vec<String>,
    /// The entry booted by default.
    pub default: usize,
}

/// Picks an entry of a [`BootMenu`] (its index), or `None` for the default.
#[derive(Clone)]
pub struct MenuPrompt(pub std::sync::Arc<PickEntry>);

/// What a [`MenuPrompt`] runs.
pub type PickEntry = dyn Fn(&BootMenu) -> Option<usize> + Send + Sync;

impl std::fmt::Debug for MenuPrompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MenuPrompt")
    }
}

/// The most entries a listed menu may have, and the longest title kept (characters).
const MAX_MENU_ENTRIES: usize = 256;
const MAX_TITLE_CHARS: usize = 120;

impl BootloaderOptions {
    /// The defaults for a host whose rxl state directory is `state_dir` and whose logs go to
    /// `log_dir`: runs as `nobody`, 120 s, 128 MiB images.
    pub fn new(state_dir: &Path, log_dir: Option<PathBuf>) -> BootloaderOptions {
        BootloaderOptions {
            private_bin: PathBuf::from(PRIVATE_BIN_DIR),
            run_dir: state_dir.join("bootloader"),
            log_dir,
            runas: nobody_uid(),
            runas_error: None,
            timeout: DEFAULT_TIMEOUT,
            max_image: DEFAULT_MAX_IMAGE,
            self_exe: None,
            menu: None,
        }
    }
}

/// The uid of the user `nobody` (65534 when the user database has no such user).
pub fn nobody_uid() -> u32 {
    nix::unistd::User::from_name("nobody")
        .ok()
        .flatten()
        .map_or(NOBODY_UID, |u| u.uid.as_raw())
}

/// Why the bootloader gave no kernel.
#[derive(Debug, thiserror::Error)]
pub enum BootloaderError {
    /// The program is not there.
    #[error(
        "bootloader \"{name}\" not found: tried {} and {}",
        private.display(),
        as_given
    )]
    NotFound {
        /// As the config names it.
        name: String,
        /// The private bin directory's candidate.
        private: PathBuf,
        /// The other candidate, as described ("NAME on PATH ..." or the path).
        as_given: String,
    },
    /// The guest has no disk the bootloader can read.
    #[error("the bootloader has no disk to read: {0}")]
    Disk(String),
    /// The bootloader would run as root.
    #[error(
        "the bootloader must not run as root: bootloader_user in rxl.conf names uid 0 \
         (use an unprivileged user such as nobody)"
    )]
    RootUser,
    /// The configured user does not exist.
    #[error("{0}")]
    UnknownUser(String),
    /// The private directory could not be made or the program not started.
    #[error("cannot run bootloader {}: {what} {}: {source}", program.display(), path.display())]
    Setup {
        /// The program.
        program: PathBuf,
        /// What was being done.
        what: &'static str,
        /// On what.
        path: PathBuf,
        /// Why it failed.
        source: io::Error,
    },
    /// The program ran and failed, or its output is refused.
    #[error("bootloader {} failed: {what}{}", program.display(), shown(output))]
    Failed {
        /// The program.
        program: PathBuf,
        /// What went wrong.
        what: String,
        /// The end of its stderr (and stdout).
        output: String,
    },
}

/// The last lines of a bootloader's output, for a message.
fn shown(output: &str) -> String {
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let start = lines.len().saturating_sub(SHOWN_LINES);
    let mut s = String::from("; its last output:");
    for l in &lines[start..] {
        s.push_str("\n  ");
        s.push_str(l);
    }
    s
}

/// What a bootloader chose: the kernel and ramdisk (read into memory) and the cmdline.
#[derive(Clone)]
pub struct Extracted {
    /// The program that ran.
    pub program: PathBuf,
    /// The disk it read.
    pub disk: PathBuf,
    /// The kernel image.
    pub kernel: Vec<u8>,
    /// The ramdisk, if it named one.
    pub ramdisk: Option<Vec<u8>>,
    /// Its `args`, if it gave them.
    pub args: Option<String>,
}

impl std::fmt::Debug for Extracted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extracted")
            .field("program", &self.program)
            .field("disk", &self.disk)
            .field("kernel_len", &self.kernel.len())
            .field("ramdisk_len", &self.ramdisk.as_ref().map(Vec::len))
            .field("args", &self.args)
            .finish()
    }
}

/// The program to run: the file and the arguments that come before pygrub's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// The executable.
    pub path: PathBuf,
    /// Leading arguments (`bootloader` for rxl's own).
    pub leading: Vec<OsString>,
}

/// Looks up the bootloader `name` as libxl does: rxl's own for [`RXL_BOOTLOADER`]; a path
/// (with '/') as given; a bare name in the private bin directory, else on [`CLEAN_PATH`].
pub fn resolve(name: &Path, opts: &BootloaderOptions) -> Result<Program, BootloaderError> {
    if name == Path::new(RXL_BOOTLOADER) {
        let path = match &opts.self_exe {
            Some(p) => p.clone(),
            None => std::env::current_exe().map_err(|source| BootloaderError::Setup {
                program: name.to_path_buf(),
                what: "cannot find rxl's own executable",
                path: PathBuf::from("/proc/self/exe"),
                source,
            })?,
        };
        return Ok(Program {
            path,
            leading: vec![OsString::from("bootloader")],
        });
    }
    let program = |path: PathBuf| Program {
        path,
        leading: Vec::new(),
    };
    let private = opts.private_bin.join(name);
    let bare = name.components().count() == 1 && !name.as_os_str().is_empty();
    if bare && is_executable(&private) {
        return Ok(program(private));
    }
    if !bare {
        if is_executable(name) {
            return Ok(program(name.to_path_buf()));
        }
        return Err(BootloaderError::NotFound {
            name: name.display().to_string(),
            private,
            as_given: name.display().to_string(),
        });
    }
    for dir in CLEAN_PATH.split(':') {
        let p = Path::new(dir).join(name);
        if is_executable(&p) {
            return Ok(program(p));
        }
    }
    Err(BootloaderError::NotFound {
        name: name.display().to_string(),
        private,
        as_given: format!("{} on PATH ({CLEAN_PATH})", name.display()),
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The disk the bootloader reads: the config's first disk, which must be a local raw file
/// or block device served by dom0.
pub fn boot_disk(cfg: &DomainConfig) -> Result<PathBuf, BootloaderError> {
    let Some(d) = cfg.disks.first() else {
        return Err(BootloaderError::Disk(
            "the guest has no disk (the bootloader reads the first entry of `disk`)".into(),
        ));
    };
    let refuse = |why: String| Err(BootloaderError::Disk(format!("disk 1 ({}) {why}", d.vdev)));
    if !is_local(d) {
        return refuse(format!(
            "is served by domain {}: the bootloader reads only a disk of dom0",
            d.backend.as_deref().unwrap_or("?")
        ));
    }
    if d.format != DiskFormat::Raw {
        return refuse(format!(
            "is a {:?} image: the bootloader reads raw images and devices only",
            d.format
        ));
    }
    match (d.target_kind, &d.target) {
        (DiskTargetKind::File | DiskTargetKind::Device, Some(t)) => Ok(t.value.clone()),
        (DiskTargetKind::Script, _) => refuse(format!(
            "is set up by the script {}: only the script can turn it into a device, and it \
             runs after the domain exists",
            d.script.as_deref().unwrap_or("?")
        )),
        _ => refuse("has no medium".into()),
    }
}

fn is_local(d: &DiskSpec) -> bool {
    matches!(d.backend.as_deref(), None | Some("0") | Some("Domain-0"))
}

/// Run the bootloader of `cfg` (which must boot with one) and return what it chose.
pub fn run(cfg: &DomainConfig, opts: &BootloaderOptions) -> Result<Extracted, BootloaderError> {
    let Boot::Bootloader {
        path,
        args,
        cmdline,
        kernel,
        ramdisk,
    } = &cfg.boot
    else {
        return Err(BootloaderError::Disk(
            "the guest does not boot with a bootloader".into(),
        ));
    };
    let program = resolve(&path.value, opts)?;
    let disk = boot_disk(cfg)?;
    if let Some(why) = &opts.runas_error {
        return Err(BootloaderError::UnknownUser(why.clone()));
    }
    if opts.runas == 0 {
        return Err(BootloaderError::RootUser);
    }
    let setup = |what, path: &Path| setup_error(&program.path, what, path);
    // SIGINT, SIGTERM and SIGHUP are held back until the private directory is gone (the
    // reader threads inherit the mask; the bootloader itself starts with an empty one): an
    // interrupt kills the bootloader and fails the run, which then cleans up.
    let signals = crate::create::signals::Interrupts::catch();
    let (tmp, out_file, out_dir) = private_dir(opts, &program.path)?;
    let entry = match (&opts.menu, kernel) {
        (Some(prompt), None) => list_entries(&disk, opts, &signals)
            .and_then(|menu| (prompt.0)(&menu).filter(|&i| i < menu.titles.len())),
        _ => None,
    };

    let mut argv: Vec<OsString> = program.leading.clone();
    if let Some(k) = kernel {
        argv.push(format!("--kernel={k}").into());
    }
    if let Some(r) = ramdisk {
        argv.push(format!("--ramdisk={r}").into());
    }
    if let Some(c) = cmdline.as_deref().filter(|c| !c.is_empty()) {
        argv.push(format!("--args={c}").into());
    }
    output_args(&mut argv, opts, &out_file, &out_dir);
    argv.extend(args.iter().map(OsString::from));
    // An entry picked from the menu comes last, so it wins over bootloader_args' --entry.
    if let Some(i) = entry {
        argv.push(format!("--entry={i}").into());
    }
    argv.push(disk.clone().into());

    let started = Instant::now();
    let ran = execute(&program.path, &argv, opts.timeout, &signals)
        .map_err(setup("cannot start it in", &tmp.path))?;
    let took = started.elapsed();
    let result = judge(&ran, opts)
        .and_then(|()| read_output(&out_file, &out_dir, opts.max_image))
        .and_then(|chosen| match signals.pending() {
            Some(sig) => Err(format!("interrupted by {}", sig.as_str())),
            None => Ok(chosen),
        });
    let verdict = match &result {
        Ok(c) => format!(
            "chose a kernel of {} bytes, {}",
            c.kernel.len(),
            c.ramdisk
                .as_ref()
                .map_or("no ramdisk".to_string(), |r| format!(
                    "a ramdisk of {} bytes",
                    r.len()
                ))
        ),
        Err(e) => format!("failed: {e}"),
    };
    log_run(cfg, opts, &program.path, &argv, &ran, took, &verdict);
    let chosen = result.map_err(|what| BootloaderError::Failed {
        program: program.path.clone(),
        what,
        output: ran.output.clone(),
    })?;
    drop(tmp);
    Ok(Extracted {
        program: program.path,
        disk,
        kernel: chosen.kernel,
        ramdisk: chosen.ramdisk,
        args: chosen.args,
    })
}

/// The error of a failed setup step `what` on `path` for `program`.
fn setup_error(
    program: &Path,
    what: &'static str,
    path: &Path,
) -> impl FnOnce(io::Error) -> BootloaderError {
    let program = program.to_path_buf();
    let path = path.to_path_buf();
    move |source| BootloaderError::Setup {
        program,
        what,
        path,
        source,
    }
}

/// A private directory for one run under `opts.run_dir` (made 0700 with its parents),
/// with an empty output file and an output directory in it.
fn private_dir(
    opts: &BootloaderOptions,
    program: &Path,
) -> Result<(TempDir, PathBuf, PathBuf), BootloaderError> {
    let setup = |what, path: &Path| setup_error(program, what, path);
    if let Some(parent) = opts.run_dir.parent() {
        crate::state::ensure_dir(parent, 0o700)
            .map_err(setup("cannot make rxl's state directory", parent))?;
    }
    crate::state::ensure_dir(&opts.run_dir, 0o700)
        .map_err(setup("cannot make its directory", &opts.run_dir))?;
    let tmp = TempDir::new(&opts.run_dir)
        .map_err(setup("cannot make its private directory in", &opts.run_dir))?;
    let out_dir = tmp.path.join("files");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&out_dir)
        .map_err(setup("cannot make its output directory", &out_dir))?;
    let out_file = tmp.path.join("output");
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&out_file)
        .map_err(setup("cannot make its output file", &out_file))?;
    Ok((tmp, out_file, out_dir))
}

/// The restricted-mode and output arguments every run gets.
fn output_args(argv: &mut Vec<OsString>, opts: &BootloaderOptions, file: &Path, dir: &Path) {
    argv.push(format!("--runas={}", opts.runas).into());
    argv.push("--quiet".into());
    let mut o = OsString::from("--output=");
    o.push(file);
    argv.push(o);
    argv.push("--output-format=simple0".into());
    let mut o = OsString::from("--output-directory=");
    o.push(dir);
    argv.push(o);
}

/// The guest's boot menu, read by `rxl bootloader --list-entries` (whatever program
/// boots the guest: rxl's reader chooses as pygrub does) with the same restrictions and
/// bounds as a bootloader run; `None` (with a warning) when it cannot be read: the
/// bootloader's own run then says why, or boots the default.
fn list_entries(
    disk: &Path,
    opts: &BootloaderOptions,
    signals: &crate::create::signals::Interrupts,
) -> Option<BootMenu> {
    let listed = (|| -> Result<BootMenu, String> {
        let lister = resolve(Path::new("rxl"), opts).map_err(|e| e.to_string())?;
        let (tmp, out_file, out_dir) =
            private_dir(opts, &lister.path).map_err(|e| e.to_string())?;
        let mut argv = lister.leading.clone();
        argv.push("--list-entries".into());
        output_args(&mut argv, opts, &out_file, &out_dir);
        argv.push(disk.into());
        let ran = execute(&lister.path, &argv, opts.timeout, signals)
            .map_err(|e| format!("cannot start {}: {e}", lister.path.display()))?;
        judge(&ran, opts).map_err(|e| format!("{e}{}", shown(&ran.output)))?;
        let bytes = match read_capped(&out_file, MAX_OUTPUT) {
            Ok(Ok(b)) => b,
            Ok(Err(())) => return Err(format!("its output is over {MAX_OUTPUT} bytes")),
            Err(e) => return Err(format!("cannot read its output: {e}")),
        };
        drop(tmp);
        parse_menu(&bytes)
    })();
    match listed {
        Ok(menu) if !menu.titles.is_empty() => Some(menu),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!("cannot list the guest's boot menu ({e}); the default entry boots");
            None
        }
    }
}

/// `rxl bootloader --list-entries`'s output: NUL-terminated items `default N` and one
/// `title T` per entry, then an empty item. Titles are cut to a bounded length and their
/// control characters replaced, so that printing them cannot drive the terminal.
pub fn parse_menu(bytes: &[u8]) -> Result<BootMenu, String> {
    let mut menu = BootMenu {
        titles: Vec::new(),
        default: 0,
    };
    let mut ended = false;
    for item in bytes.split(|&b| b == 0) {
        if ended {
            if item.is_empty() {
                continue;
            }
            return Err("items after the end".into());
        }
        if item.is_empty() {
            ended = true;
            continue;
        }
        let text = String::from_utf8_lossy(item);
        if let Some(n) = text.strip_prefix("default ") {
            menu.default = n.parse().map_err(|_| format!("bad default {n:?}"))?;
        } else if let Some(t) = text.strip_prefix("title ") {
            if menu.titles.len() == MAX_MENU_ENTRIES {
                return Err(format!("more than {MAX_MENU_ENTRIES} entries"));
            }
            menu.titles.push(
                t.chars()
                    .take(MAX_TITLE_CHARS)
                    .map(|c| if c.is_control() { '?' } else { c })
                    .collect(),
            );
        } else {
            return Err(format!("unknown item {:?}", shown_item(&text)));
        }
    }
    if !ended {
        return Err("no end item".into());
    }
    if !menu.titles.is_empty() && menu.default >= menu.titles.len() {
        return Err(format!("default {} out of range", menu.default));
    }
    Ok(menu)
}

fn shown_item(text: &str) -> String {
    text.chars().take(40).collect()
}

/// Whether the run ended well: exit status 0 in time.
fn judge(ran: &Ran, opts: &BootloaderOptions) -> Result<(), String> {
    match ran.end {
        End::TimedOut => Err(format!(
            "it did not finish within {} s and was killed",
            opts.timeout.as_secs_f64()
        )),
        End::Exited(status) if !status.success() => Err(match (status.code(), status.signal()) {
            (Some(c), _) => format!("it exited with status {c}"),
            (None, Some(s)) => format!("it was killed by signal {s}"),
            _ => format!("it ended with {status}"),
        }),
        End::Interrupted(sig) => Err(format!("interrupted by {}: it was killed", sig.as_str())),
        End::Exited(_) => Ok(()),
    }
}

/// A private directory, removed with everything in it when dropped.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new(parent: &Path) -> io::Result<TempDir> {
        let pid = std::process::id();
        for _ in 0..16 {
            let nonce = uuid::Uuid::new_v4().simple().to_string();
            let path = parent.join(format!("run.{pid}.{}", &nonce[..12]));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(TempDir { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free name for a private directory",
        ))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::error!("cannot remove {}: {e}", self.path.display());
            }
        }
    }
}

/// How the program ended.
#[derive(Debug)]
enum End {
    Exited(std::process::ExitStatus),
    TimedOut,
    /// SIGINT, SIGTERM or SIGHUP came to rxl: the bootloader was killed.
    Interrupted(nix::sys::signal::Signal),
}

/// A finished run.
#[derive(Debug)]
struct Ran {
    end: End,
    /// The end of stderr then the end of stdout.
    output: String,
}

/// A child in its own process group, the whole group killed when dropped unwaited.
struct Group {
    child: Child,
    reaped: bool,
}

impl Group {
    fn kill(&self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
        if !self.reaped {
            let _ = self.child.wait();
        }
    }
}

/// Keeps the end of a stream; says on `done` when the stream is closed.
fn drain(
    mut r: impl Read + Send + 'static,
    kept: Arc<Mutex<Vec<u8>>>,
    done: std::sync::mpsc::Sender<()>,
) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let Ok(mut k) = kept.lock() else { break };
                    k.extend_from_slice(&buf[..n]);
                    if k.len() > 2 * KEPT_OUTPUT {
                        let cut = k.len() - KEPT_OUTPUT;
                        k.drain(..cut);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let _ = done.send(());
    });
}

fn tail(kept: &Mutex<Vec<u8>>) -> String {
    let k = kept.lock().map(|k| k.clone()).unwrap_or_default();
    let start = k.len().saturating_sub(KEPT_OUTPUT);
    String::from_utf8_lossy(&k[start..]).into_owned()
}

/// Run `program argv` with a clean environment, stdin from /dev/null, in its own process
/// group, killed (with its group) after `timeout`.
fn execute(
    program: &Path,
    argv: &[OsString],
    timeout: Duration,
    signals: &crate::create::signals::Interrupts,
) -> io::Result<Ran> {
    let mut cmd = Command::new(program);
    cmd.args(argv)
        .env_clear()
        .env("PATH", CLEAN_PATH)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let mut group = Group {
        child,
        reaped: false,
    };
    let out_kept = Arc::new(Mutex::new(Vec::new()));
    let err_kept = Arc::new(Mutex::new(Vec::new()));
    let (done, closed) = std::sync::mpsc::channel();
    let mut readers = 0;
    if let Some(s) = stdout {
        drain(s, out_kept.clone(), done.clone());
        readers += 1;
    }
    if let Some(s) = stderr {
        drain(s, err_kept.clone(), done);
        readers += 1;
    }
    let deadline = Instant::now() + timeout;
    let end = loop {
        if let Some(status) = group.child.try_wait()? {
            group.reaped = true;
            break End::Exited(status);
        }
        let stop = match signals.pending() {
            Some(sig) => Some(End::Interrupted(sig)),
            None if Instant::now() >= deadline => Some(End::TimedOut),
            None => None,
        };
        if let Some(end) = stop {
            group.kill();
            let _ = group.child.wait();
            group.reaped = true;
            break end;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // Anything it left running in its group would hold the pipes open. A process that
    // left the group (setsid) may still hold them: its output is not waited for beyond
    // READERS_GRACE (the reader threads end when it does).
    group.kill();
    let until = Instant::now() + READERS_GRACE;
    for _ in 0..readers {
        let left = until.saturating_duration_since(Instant::now());
        if closed.recv_timeout(left).is_err() {
            tracing::warn!(
                "bootloader {}: a process outside its group keeps its output open",
                program.display()
            );
            break;
        }
    }
    let mut output = tail(&err_kept);
    let out = tail(&out_kept);
    if !out.trim().is_empty() {
        if !output.is_empty() && !output.ends_with('\n') {
            output.push('\n');
        }
        output.push_str(&out);
    }
    Ok(Ran { end, output })
}

/// Append the run to `LOGDIR/bootloader.HEXNAME.log` (its command line, end, time, output,
/// and what rxl made of it: sizes, never the args, which may hold secrets); a log that
/// cannot be written is only a warning.
fn log_run(
    cfg: &DomainConfig,
    opts: &BootloaderOptions,
    program: &Path,
    argv: &[OsString],
    ran: &Ran,
    took: Duration,
    verdict: &str,
) {
    let Some(dir) = &opts.log_dir else { return };
    let path = dir.join(format!(
        "bootloader.{}.log",
        crate::names::file_name(&cfg.name)
    ));
    let write = || -> io::Result<()> {
        crate::state::ensure_dir(dir, 0o755)?;
        let mut f = crate::state::open_regular(
            &path,
            OpenOptions::new().append(true).create(true).mode(0o640),
        )?;
        // Whatever the umask, as the monitor logs.
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o640))?;
        // The cmdline may hold secrets (the record keeping it is 0600; this log is 0640).
        let args: Vec<String> = argv
            .iter()
            .map(|a| {
                let a = a.to_string_lossy();
                match a.strip_prefix("--args=") {
                    Some(c) => format!("--args=({} bytes)", c.len()),
                    None => a.into_owned(),
                }
            })
            .collect();
        let end = match &ran.end {
            End::Exited(s) => s.to_string(),
            End::TimedOut => "killed at the time limit".to_string(),
            End::Interrupted(sig) => format!("killed: rxl was interrupted by {}", sig.as_str()),
        };
        writeln!(
            f,
            "bootloader {} {}\n{end} after {:.3} s",
            program.display(),
            args.join(" "),
            took.as_secs_f64()
        )?;
        f.write_all(ran.output.as_bytes())?;
        if !ran.output.is_empty() && !ran.output.ends_with('\n') {
            f.write_all(b"\n")?;
        }
        writeln!(f, "rxl: {verdict}")?;
        Ok(())
    };
    if let Err(e) = write() {
        tracing::warn!("cannot write the bootloader log {}: {e}", path.display());
    }
}

/// What the output file says, the files read.
struct Chosen {
    kernel: Vec<u8>,
    ramdisk: Option<Vec<u8>>,
    args: Option<String>,
}

/// Parse the `simple0` output at `file` and read the files it names in `dir`.
fn read_output(file: &Path, dir: &Path, max_image: u64) -> Result<Chosen, String> {
    let text = read_capped(file, MAX_OUTPUT)
        .map_err(|e| format!("cannot read its output file: {e}"))?
        .map_err(|_| format!("its output is larger than {MAX_OUTPUT} bytes"))?;
    let items = parse_simple0(&text)?;
    let kernel = items
        .kernel
        .ok_or("its output names no kernel".to_string())?;
    let kernel = read_extracted(&kernel, dir, "kernel", max_image)?;
    let ramdisk = match items.ramdisk {
        Some(r) => Some(read_extracted(&r, dir, "ramdisk", max_image)?),
        None => None,
    };
    Ok(Chosen {
        kernel,
        ramdisk,
        args: items.args,
    })
}

/// The items of a `simple0` output.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Simple0 {
    /// `kernel PATH`.
    pub kernel: Option<String>,
    /// `ramdisk PATH`.
    pub ramdisk: Option<String>,
    /// `args CMDLINE`.
    pub args: Option<String>,
}

/// Parse NUL-terminated items `kernel PATH`, `ramdisk PATH`, `args CMDLINE` (each at most
/// once; the value after the first run of whitespace, as libxl reads it). Anything else
/// (an unknown item, text that is not UTF-8, a control character, a repeated item) is
/// refused.
pub fn parse_simple0(bytes: &[u8]) -> Result<Simple0, String> {
    let mut out = Simple0::default();
    let body = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if body.is_empty() {
        return Err("its output is empty".into());
    }
    for raw in body.split(|&b| b == 0) {
        if raw.is_empty() {
            continue;
        }
        let item = std::str::from_utf8(raw)
            .map_err(|_| "its output is not text (invalid UTF-8)".to_string())?;
        let shown: String = item.chars().take(80).collect();
        let (key, value) = item
            .split_once(|c: char| c.is_ascii_whitespace())
            .map(|(k, v)| (k, v.trim_start_matches(|c: char| c.is_ascii_whitespace())))
            .ok_or_else(|| format!("its output has an item that is not KEY VALUE: {shown:?}"))?;
        if value.chars().any(char::is_control) {
            return Err(format!("its output item `{key}` holds a control character"));
        }
        let slot = match key {
            "kernel" => &mut out.kernel,
            "ramdisk" => &mut out.ramdisk,
            "args" => &mut out.args,
            _ => return Err(format!("its output has an unknown item: {shown:?}")),
        };
        if slot.is_some() {
            return Err(format!("its output names `{key}` twice"));
        }
        *slot = Some(value.to_string());
    }
    Ok(out)
}

/// Read at most `cap` bytes of the regular file `path` (not following a link); `Err(())`
/// inside when it is larger.
fn read_capped(path: &Path, cap: u64) -> io::Result<Result<Vec<u8>, ()>> {
    let f = crate::state::open_regular(path, OpenOptions::new().read(true))?;
    read_file_capped(f, cap)
}

fn read_file_capped(f: File, cap: u64) -> io::Result<Result<Vec<u8>, ()>> {
    let len = f.metadata()?.len();
    if len > cap {
        return Ok(Err(()));
    }
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    f.take(cap + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > cap {
        return Ok(Err(()));
    }
    Ok(Ok(buf))
}

/// The file `named` (the bootloader's output) must be a regular file directly inside `dir`.
fn read_extracted(named: &str, dir: &Path, what: &str, cap: u64) -> Result<Vec<u8>, String> {
    let path = Path::new(named);
    let outside =
        || format!("bootloader wrote a path outside its output directory: {what} {named:?}");
    let mut comps = path.components();
    let Some(Component::Normal(name)) = comps.next_back() else {
        return Err(outside());
    };
    if !comps.as_path().components().eq(dir.components()) {
        return Err(outside());
    }
    let inside = dir.join(name);
    let f = OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
        .open(&inside)
        .map_err(|e| match e.raw_os_error() {
            Some(nix::libc::ELOOP) => format!("{}: its {what} is a symbolic link", outside()),
            _ => format!("cannot open its {what} {}: {e}", inside.display()),
        })?;
    let meta = f
        .metadata()
        .map_err(|e| format!("cannot stat its {what}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{}: its {what} is not a regular file", outside()));
    }
    read_file_capped(f, cap)
        .map_err(|e| format!("cannot read its {what} {}: {e}", inside.display()))?
        .map_err(|()| {
            format!(
                "its {what} is {} bytes, larger than the {} MiB cap",
                meta.len(),
                cap >> 20
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_menus_are_bounded_and_safe_to_print() {
        let m = parse_menu(b"default 1\0title a\0title b\x1b]0;x\x07\0\0").expect("menu");
        assert_eq!(m.titles, ["a", "b?]0;x?"]);
        assert_eq!(m.default, 1);
        let long = format!("title {}\0\0", "x".repeat(500));
        assert_eq!(
            parse_menu(long.as_bytes()).expect("menu").titles[0].len(),
            MAX_TITLE_CHARS
        );
        let many = "title t\0".repeat(MAX_MENU_ENTRIES + 1) + "\0";
        assert!(parse_menu(many.as_bytes()).is_err());
        for bad in [
            &b"default 1\0title a\0"[..],
            b"default 3\0title a\0\0",
            b"kernel /x\0\0",
            b"default x\0\0",
            b"\0title late\0",
        ] {
            assert!(parse_menu(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_menu(b"\0").expect("no menu").titles.len(), 0);
    }

    #[test]
    fn simple0_items() {
        let p = parse_simple0(b"kernel /d/k\0ramdisk /d/r\0args root=/dev/xvda1 ro\0\0").unwrap();
        assert_eq!(p.kernel.as_deref(), Some("/d/k"));
        assert_eq!(p.ramdisk.as_deref(), Some("/d/r"));
        assert_eq!(p.args.as_deref(), Some("root=/dev/xvda1 ro"));
        let p = parse_simple0(b"kernel /d/k\0").unwrap();
        assert_eq!(p.args, None);
    }

    #[test]
    fn simple0_refusals() {
        for (bad, says) in [
            (&b""[..], "empty"),
            (b"hello world\0", "unknown item"),
            (b"kernel\0", "not KEY VALUE"),
            (b"kernel /a\0kernel /b\0", "twice"),
            (b"kernel /a\xff\0", "UTF-8"),
            (b"kernel /a\0args x\x1b[2J\0", "control"),
        ] {
            let e = parse_simple0(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn extracted_paths_must_be_directly_inside() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("k"), b"kernel").unwrap();
        let dir = d.path();
        let ok = format!("{}/k", dir.display());
        assert_eq!(read_extracted(&ok, dir, "kernel", 100).unwrap(), b"kernel");
        let doubled = format!("{}//k", dir.display());
        assert!(read_extracted(&doubled, dir, "kernel", 100).is_ok());
        for bad in [
            "/etc/passwd".to_string(),
            format!("{}/../k", dir.display()),
            format!("{}/sub/k", dir.display()),
            "k".to_string(),
            format!("{}/..", dir.display()),
        ] {
            let e = read_extracted(&bad, dir, "kernel", 100).unwrap_err();
            assert!(e.contains("outside its output directory"), "{bad}: {e}");
        }
        std::os::unix::fs::symlink("/etc/passwd", dir.join("l")).unwrap();
        let e = read_extracted(&format!("{}/l", dir.display()), dir, "kernel", 100).unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
        let e = read_extracted(&ok, dir, "kernel", 3).unwrap_err();
        assert!(e.contains("larger than"), "{e}");
    }

    #[test]
    fn failure_messages_show_the_last_lines() {
        let e = BootloaderError::Failed {
            program: PathBuf::from("/bin/pygrub"),
            what: "it exited with status 1".into(),
            output: (1..=20).map(|i| format!("line {i}\n")).collect(),
        };
        let s = e.to_string();
        assert!(s.starts_with("bootloader /bin/pygrub failed: it exited with status 1"));
        assert!(s.contains("line 20") && s.contains("line 11") && !s.contains("line 10\n"));
    }
}
