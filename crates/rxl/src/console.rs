//! `rxl console DOMAIN`: attach to the pty xenconsoled made for the guest. Ctrl-] detaches,
//! as with xenconsole.

use std::fs::OpenOptions;
use std::io::{Read as _, Write as _};
use std::os::fd::AsFd as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, SetArg};
use xen_host::{DomId, TxId};

use crate::backend::Backend;

/// Ctrl-].
const ESCAPE: u8 = 0x1d;

/// How long attach waits for xenconsoled to publish the pty of a domain just created.
const TTY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Which of a domain's consoles (`xl console -t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ConsoleKind {
    /// The PV console xenconsoled serves.
    Pv,
    /// An emulated serial port of an HVM guest (QEMU's pty).
    Serial,
}

/// The xenstore node naming console `num` of kind `kind` (libxl's
/// `libxl_console_get_tty`): `console/tty` for PV console 0, `device/console/N/tty` for the
/// others, `serial/N/tty` for serial ports.
pub fn tty_node(dom: DomId, kind: ConsoleKind, num: u32) -> String {
    match (kind, num) {
        (ConsoleKind::Pv, 0) => format!("/local/domain/{dom}/console/tty"),
        (ConsoleKind::Pv, n) => format!("/local/domain/{dom}/device/console/{n}/tty"),
        (ConsoleKind::Serial, n) => format!("/local/domain/{dom}/serial/{n}/tty"),
    }
}

/// Whether `path` is a pseudo-terminal's path (`/dev/pts/N`): the only thing a console
/// node may name. Whoever can write the node (the guest, for some of them) must not make
/// root open another file.
pub use toolstack::qmp::is_pts_path;

/// Where the guest's console `kind`/`num` is, waiting a little for a new domain's
/// (xenconsoled or QEMU publishes it once it runs).
pub fn tty_path(host: &Backend, dom: DomId, kind: ConsoleKind, num: u32) -> anyhow::Result<String> {
    let node = tty_node(dom, kind, num);
    let deadline = std::time::Instant::now() + TTY_WAIT;
    let mut tty = String::new();
    while std::time::Instant::now() < deadline {
        tty = xen_host::read_string(host.xs(), TxId::NONE, &node)?.unwrap_or_default();
        if !tty.is_empty() || host.hv().domain_info(dom)?.is_none() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    if tty.is_empty() {
        match kind {
            ConsoleKind::Pv => {
                bail!("domain {dom} has no console pty ({node} is empty): is xenconsoled running?")
            }
            ConsoleKind::Serial => bail!(
                "domain {dom} has no serial port {num} ({node} is empty): only an HVM guest \
                 with serial = \"pty\" has one"
            ),
        }
    }
    if !is_pts_path(&tty) {
        bail!("{node} names {tty:?}, which is not a pseudo-terminal (/dev/pts/N): refused");
    }
    Ok(tty)
}

/// Attach the terminal to the guest's console until Ctrl-] or the pty closes.
pub fn attach(host: &Backend, dom: DomId, kind: ConsoleKind, num: u32) -> anyhow::Result<ExitCode> {
    if matches!(host, Backend::Sim { .. }) {
        bail!("domain {dom} has no console: a simulated host runs no xenconsoled");
    }
    let tty = tty_path(host, dom, kind, num)?;
    let mut pty = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc_flags())
        .open(&tty)
        .with_context(|| format!("cannot open the console {tty}"))?;
    let meta = pty
        .metadata()
        .with_context(|| format!("cannot stat the console {tty}"))?;
    if !std::os::unix::fs::FileTypeExt::is_char_device(&meta.file_type()) {
        bail!("{tty} is not a terminal device: refused");
    }
    let stdin = std::io::stdin();
    let saved = termios::tcgetattr(stdin.as_fd()).ok();
    if let Some(orig) = &saved {
        let mut raw = orig.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)
            .context("cannot set the terminal raw")?;
    }
    let result = relay(&mut pty, saved.is_some());
    if let Some(orig) = &saved {
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, orig);
    }
    result?;
    Ok(ExitCode::SUCCESS)
}

/// `O_NOFOLLOW | O_NOCTTY`: the pty is opened as itself, never through a link, and does
/// not become rxl's controlling terminal.
fn libc_flags() -> i32 {
    (nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NOCTTY).bits()
}

/// Copies the console to stdout and stdin to the console until Ctrl-] or the console
/// ends. When stdin is a terminal, its end detaches too; otherwise (a script's
/// `</dev/null`, a pipe that closes) the console is still copied out until it ends, so that
/// `rxl console DOMAIN </dev/null >log` records a guest's output.
fn relay(pty: &mut std::fs::File, stdin_is_tty: bool) -> anyhow::Result<()> {
    let mut stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    let mut buf = [0u8; 4096];
    let mut stdin_open = true;
    loop {
        let (stdin_ready, pty_ready) = {
            // A closed stdin is left out of the poll (it would report ready forever).
            let stdin_flags = if stdin_open {
                PollFlags::POLLIN
            } else {
                PollFlags::empty()
            };
            let mut fds = [
                PollFd::new(stdin.as_fd(), stdin_flags),
                PollFd::new(pty.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => bail!("poll on the console failed: {e}"),
            }
            let ready = |f: &PollFd<'_>| {
                f.revents()
                    .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP))
            };
            (stdin_open && ready(&fds[0]), ready(&fds[1]))
        };
        if pty_ready {
            let n = match pty.read(&mut buf) {
                Ok(n) => n,
                // xenconsoled closed the pty's other side: the domain is gone.
                Err(e) if e.raw_os_error() == Some(nix::libc::EIO) => 0,
                Err(e) => return Err(e).context("reading the console"),
            };
            if n == 0 {
                return Ok(());
            }
            stdout.write_all(&buf[..n])?;
            stdout.flush()?;
        }
        if stdin_ready {
            let n = stdin.read(&mut buf)?;
            if n == 0 {
                if stdin_is_tty {
                    return Ok(());
                }
                stdin_open = false;
                continue;
            }
            let input = &buf[..n];
            let (send, detach) = match input.iter().position(|&b| b == ESCAPE) {
                Some(i) => (&input[..i], true),
                None => (input, false),
            };
            pty.write_all(send).context("writing to the console")?;
            if detach {
                return Ok(());
            }
        }
    }
}

/// How long `rxl create -c` waits for an entry of the guest's boot menu before the
/// default boots.
pub const MENU_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The boot menu prompt of `rxl create -c` on a terminal: the titles (already made safe
/// to print) on stderr, the default marked, then one line read from stdin within
/// [`MENU_WAIT`]: an entry's number boots it; an empty line, anything else or nothing in
/// time boots the default.
pub fn menu_prompt(name: String) -> toolstack::bootloader::MenuPrompt {
    toolstack::bootloader::MenuPrompt(std::sync::Arc::new(move |menu| {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{}", menu_text(&name, menu));
        let _ = err.flush();
        drop(err);
        let stdin = std::io::stdin();
        let pick = read_choice(&stdin, MENU_WAIT, menu.titles.len());
        if pick.is_none() {
            eprintln!();
        }
        pick
    }))
}

/// The menu as [`menu_prompt`] prints it.
pub fn menu_text(name: &str, menu: &toolstack::bootloader::BootMenu) -> String {
    let mut s = format!("Boot menu of {name}:\n");
    for (i, t) in menu.titles.iter().enumerate() {
        let mark = if i == menu.default { '*' } else { ' ' };
        s.push_str(&format!("{mark} {i:>3}  {t}\n"));
    }
    s.push_str(&format!(
        "Entry to boot [{}], within {} s: ",
        menu.default,
        MENU_WAIT.as_secs()
    ));
    s
}

/// One line from `input` within `wait`: the entry number it names when below `entries`.
pub fn read_choice<F: std::os::fd::AsFd>(
    input: F,
    wait: std::time::Duration,
    entries: usize,
) -> Option<usize> {
    let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
    let deadline = std::time::Instant::now() + wait;
    let mut line = Vec::new();
    let mut overlong = false;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let left_ms = u16::try_from(left.as_millis()).unwrap_or(ms);
        let mut fds = [PollFd::new(input.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(left_ms)) {
            Ok(n) if n > 0 => {}
            _ => return None,
        }
        let mut byte = [0u8; 1];
        match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&input.as_fd()), &mut byte) {
            Ok(1) if byte[0] == b'\n' => break,
            Ok(1) if line.len() < 16 => line.push(byte[0]),
            Ok(1) => overlong = true,
            _ => return None,
        }
    }
    if overlong {
        return None;
    }
    std::str::from_utf8(&line)
        .ok()?
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|&i| i < entries)
}

#[cfg(test)]
mod menu_tests {
    use super::*;
    use std::time::Duration;

    fn answer(text: &[u8], entries: usize) -> Option<usize> {
        let (r, w) = nix::unistd::pipe().expect("pipe");
        nix::unistd::write(&w, text).expect("write");
        read_choice(&r, Duration::from_millis(300), entries)
    }

    #[test]
    fn a_number_in_range_picks_that_entry_anything_else_the_default() {
        assert_eq!(answer(b"2\n", 3), Some(2));
        assert_eq!(answer(b" 0 \n", 3), Some(0));
        assert_eq!(answer(b"3\n", 3), None);
        assert_eq!(answer(b"\n", 3), None);
        assert_eq!(answer(b"two\n", 3), None);
        // No newline in time: the default.
        assert_eq!(answer(b"1", 3), None);
        // A very long line is not kept whole.
        assert_eq!(answer(b"00000000000000000000001\n", 3), None);
    }

    #[test]
    fn nothing_typed_boots_the_default_after_the_wait() {
        let (r, _w) = nix::unistd::pipe().expect("pipe");
        let t = std::time::Instant::now();
        assert_eq!(read_choice(&r, Duration::from_millis(200), 3), None);
        assert!(t.elapsed() >= Duration::from_millis(150));
    }

    #[test]
    fn the_menu_marks_the_default() {
        let m = toolstack::bootloader::BootMenu {
            titles: vec!["Debian".into(), "Old".into()],
            default: 1,
        };
        assert_eq!(
            menu_text("g", &m),
            "Boot menu of g:\n    0  Debian\n*   1  Old\nEntry to boot [1], within 10 s: "
        );
    }
}

#[cfg(test)]
mod tty_tests {
    use super::*;

    #[test]
    fn console_nodes_are_libxls_and_only_pty_paths_are_taken() {
        let d = DomId(7);
        assert_eq!(
            tty_node(d, ConsoleKind::Pv, 0),
            "/local/domain/7/console/tty"
        );
        assert_eq!(
            tty_node(d, ConsoleKind::Pv, 2),
            "/local/domain/7/device/console/2/tty"
        );
        assert_eq!(
            tty_node(d, ConsoleKind::Serial, 0),
            "/local/domain/7/serial/0/tty"
        );
        assert!(is_pts_path("/dev/pts/3"));
        assert!(is_pts_path("/dev/pts/12345"));
        for bad in [
            "/etc/shadow",
            "/dev/pts/",
            "/dev/pts/../../etc/shadow",
            "/dev/pts/3/x",
            "/dev/pts/-1",
            "dev/pts/3",
            "/dev/pts/99999999999",
            "/dev/ptmx",
        ] {
            assert!(!is_pts_path(bad), "{bad}");
        }
    }
}
