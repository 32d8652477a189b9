//! `rxl console DOMAIN`: attach to the pty xenconsoled made for the guest. Ctrl-] detaches,
//! as with xenconsole.

use std::fs::OpenOptions;
use std::io::{Read as _, Write as _};
use std::os::fd::AsFd as _;
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

/// Where xenconsoled published the guest's pty, waiting a little for a new domain.
pub fn tty_path(host: &Backend, dom: DomId) -> anyhow::Result<String> {
    let node = format!("/local/domain/{dom}/console/tty");
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
        bail!("domain {dom} has no console pty ({node} is empty): is xenconsoled running?");
    }
    Ok(tty)
}

/// Attach the terminal to the guest's console until Ctrl-] or the pty closes.
pub fn attach(host: &Backend, dom: DomId) -> anyhow::Result<ExitCode> {
    if matches!(host, Backend::Sim { .. }) {
        bail!("domain {dom} has no console: a simulated host runs no xenconsoled");
    }
    let tty = tty_path(host, dom)?;
    let mut pty = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&tty)
        .with_context(|| format!("cannot open the console {tty}"))?;
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
