//! When this process started: what `create --times` reports as the time before and since
//! `main`.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The moment `main` began, on the monotonic clock and on the boot-time clock (the one
/// `/proc/self/stat`'s start time counts on).
struct Main {
    at: Instant,
    boottime: Option<Duration>,
}

static MAIN: OnceLock<Main> = OnceLock::new();

/// Notes that `main` begins now (the first call counts).
pub fn mark_main() {
    MAIN.get_or_init(|| Main {
        at: Instant::now(),
        boottime: nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
            .ok()
            .map(Duration::from),
    });
}

/// Time since `main` began ([`mark_main`]; zero when it was not called).
pub fn since_main() -> Duration {
    MAIN.get().map_or(Duration::ZERO, |m| m.at.elapsed())
}

/// Linux's USER_HZ: the unit of the times in `/proc/PID/stat` (100 on x86).
const USER_HZ: u64 = 100;

/// Time from the kernel's start of this process (its fork) to `main`: the exec, the
/// loader, and the runtime's start-up. 10 ms resolution; `None` where `/proc` does not
/// tell.
pub fn start_to_main() -> Option<Duration> {
    let main = MAIN.get()?.boottime?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let ticks = start_ticks(&stat)?;
    let started = Duration::from_millis(ticks.checked_mul(1000 / USER_HZ)?);
    main.checked_sub(started)
}

/// Field 22 of a `/proc/PID/stat` line (the start time, in USER_HZ ticks since boot). The
/// command name (field 2) may hold spaces and parentheses: fields are counted from the
/// last `)`.
fn start_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    // `rest` starts with field 3 (the state).
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_time_is_field_22_counted_past_the_command_name() {
        let line = "4242 (a b) c) S 1 4242 4242 0 -1 4194304 100 0 0 0 3 1 0 0 20 0 1 0 \
                    987654 2000000 300 18446744073709551615";
        assert_eq!(start_ticks(line), Some(987654));
        assert_eq!(start_ticks("4242 (x) S 1"), None);
        assert_eq!(start_ticks("no parenthesis"), None);
    }

    #[test]
    fn this_process_started_before_main() {
        mark_main();
        // The test harness's main ran long before this test: the figure exists on Linux
        // and is not absurd.
        let d = start_to_main().expect("/proc/self/stat and CLOCK_BOOTTIME");
        assert!(d < Duration::from_secs(3600), "{d:?}");
        assert!(since_main() < Duration::from_secs(3600));
    }
}
