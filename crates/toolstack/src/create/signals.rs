//! SIGINT, SIGTERM and SIGHUP during a create: held back and read between steps, so that
//! the combinator fails the next step with "interrupted by SIG..." and the undo guard
//! rolls the create back, instead of the default action killing the process mid-build.
//!
//! The signals are blocked in the creating thread for the duration of the create and read
//! from a non-blocking signalfd; the previous mask comes back when the create ends (a
//! signal that arrived after the last check is then delivered as usual). A child process
//! started during the create inherits the mask: the background monitor, started in the
//! "start monitor" step, unblocks the three signals first thing. A signal
//! the process ignores (SIGHUP under `nohup`) is left alone: it stays ignored.
//!
//! A bootloader run (crate::bootloader) catches them the same way while it waits for the
//! bootloader, so that Ctrl-C kills the bootloader and removes its private directory.

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// The signals a create catches.
const CAUGHT: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// Held for the duration of a create.
pub(crate) struct Interrupts {
    fd: Option<SignalFd>,
    old_mask: Option<SigSet>,
}

impl Interrupts {
    /// Start catching the signals. When they cannot be caught (no signalfd), the create
    /// runs as before: the signals keep their default action.
    pub(crate) fn catch() -> Interrupts {
        let ignored = ignored_signals();
        let mut set = SigSet::empty();
        for sig in CAUGHT {
            if ignored & (1 << (sig as i32 - 1)) == 0 {
                set.add(sig);
            }
        }
        let old_mask = match set.thread_swap_mask(SigmaskHow::SIG_BLOCK) {
            Ok(old) => old,
            Err(e) => {
                tracing::warn!("cannot block {CAUGHT:?} during the create: {e}");
                return Interrupts {
                    fd: None,
                    old_mask: None,
                };
            }
        };
        match SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC) {
            Ok(fd) => Interrupts {
                fd: Some(fd),
                old_mask: Some(old_mask),
            },
            Err(e) => {
                tracing::warn!("cannot read signals during the create: {e}");
                let _ = old_mask.thread_set_mask();
                Interrupts {
                    fd: None,
                    old_mask: None,
                }
            }
        }
    }

    /// The first caught signal that arrived since the last look, if any.
    pub(crate) fn pending(&self) -> Option<Signal> {
        let info = self.fd.as_ref()?.read_signal().ok()??;
        Signal::try_from(i32::try_from(info.ssi_signo).ok()?).ok()
    }
}

/// The process's ignored signals (`SigIgn` of /proc/self/status: bit N-1 for signal N);
/// none when it cannot be read.
fn ignored_signals() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
            u64::from_str_radix(line.trim(), 16).ok()
        })
        .unwrap_or(0)
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        self.fd = None;
        if let Some(old) = self.old_mask.take() {
            if let Err(e) = old.thread_set_mask() {
                tracing::warn!("cannot restore the signal mask after the create: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_sent_during_the_create_is_read_not_delivered() {
        // Blocked and read in this thread; raise() aims at the calling thread only, so the
        // other tests of this process are not touched.
        let caught = Interrupts::catch();
        assert_eq!(caught.pending(), None);
        nix::sys::signal::raise(Signal::SIGHUP).expect("signal this thread");
        assert_eq!(caught.pending(), Some(Signal::SIGHUP));
        assert_eq!(caught.pending(), None);
        drop(caught);
        let mask = SigSet::thread_get_mask().expect("mask");
        assert!(!mask.contains(Signal::SIGHUP), "the mask is restored");
    }

    #[test]
    fn ignored_signals_are_read_from_proc() {
        // The test harness ignores none of the caught signals; SIGPIPE is ignored by Rust.
        let ignored = ignored_signals();
        assert_ne!(ignored & (1 << (Signal::SIGPIPE as i32 - 1)), 0);
        assert_eq!(ignored & (1 << (Signal::SIGTERM as i32 - 1)), 0);
    }
}
