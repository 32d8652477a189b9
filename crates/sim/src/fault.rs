//! Fault injection: `OP[:N][=ERRNO],...` makes the N-th call of OP fail with ERRNO;
//! `OP[:N]=sleep:MS` makes it wait MS milliseconds first and then succeed (to hold a
//! process at a known point, e.g. to signal or kill it there); `OP[:N]=hang` (hotplug
//! operations only) makes a hotplug run hang until its timeout.
//!
//! The device operations count steps of the simulated devices rather than calls:
//! `hotplug_add` / `hotplug_remove` a hotplug run (`block add`, `vif-bridge online`, ...
//! and their removals) through [`crate::SimHotplug`]; `backend_init` a new backend about
//! to reach InitWait; `frontend_connect` a simulated frontend about to connect;
//! `frontend_release` a connected frontend about to release its device on a close.
//!
//! The device model faults are read by the simulated device model process
//! (`rxl sim-device-model`, [`crate::dm`]) from the `RXL_SIM_FAIL` it inherits: `dm_start`
//! makes it exit with status 1 at once, `dm_confirm` makes it run without ever confirming.

use std::collections::HashMap;

use xen_host::Errno;

use crate::SimError;

/// Every operation name fault injection accepts.
pub const FAIL_OPS: &[&str] = &[
    "xen_version",
    "physinfo",
    "createdomain",
    "max_vcpus",
    "max_mem",
    "claim_pages",
    "populate_physmap",
    "set_memory_map",
    "map_foreign",
    "grant_write",
    "set_hvm_param",
    "get_hvm_param",
    "gethvmcontext",
    "sethvmcontext",
    "set_paging_mempool_size",
    "settscinfo",
    "alloc_unbound",
    "getdomaininfo",
    "getdomaininfolist",
    "pausedomain",
    "unpausedomain",
    "destroydomain",
    "shutdown",
    "set_address_size",
    "populate_physmap_pv",
    "write_frames",
    "zero_frames",
    "read_frames",
    "pin_table",
    "hypercall_init",
    "setvcpucontext",
    "shared_info",
    "xs_read",
    "xs_write",
    "xs_mkdir",
    "xs_rm",
    "xs_directory",
    "xs_get_perms",
    "xs_set_perms",
    "xs_transaction_start",
    "xs_transaction_end",
    "xs_watch",
    "xs_unwatch",
    "xs_introduce",
    "xs_release",
    "xs_get_domain_path",
    "xs_is_domain_introduced",
    "hotplug_add",
    "hotplug_remove",
    "backend_init",
    "frontend_connect",
    "frontend_release",
    "dm_start",
    "dm_confirm",
];

/// The operations `=hang` applies to.
const HANG_OPS: &[&str] = &["hotplug_add", "hotplug_remove"];

/// The rules `RXL_SIM_FAIL` sets (none when it is unset).
pub(crate) fn from_env() -> Result<Vec<FaultRule>, SimError> {
    parse_spec(&std::env::var("RXL_SIM_FAIL").unwrap_or_default())
}

/// One parsed rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FaultRule {
    pub op: &'static str,
    pub nth: u64,
    pub errno: Errno,
    /// When set, the call sleeps this long and then proceeds instead of failing.
    pub sleep_ms: Option<u64>,
    /// A hotplug run hangs (until its timeout) instead of failing.
    pub hang: bool,
}

/// What a rule that fires does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fired {
    /// The operation fails with this errno.
    Fail(Errno),
    /// The operation waits this many milliseconds, then goes on.
    Sleep(u64),
    /// The operation hangs (a hotplug run: until its timeout).
    Hang,
}

/// Parse a fault specification.
pub(crate) fn parse_spec(spec: &str) -> Result<Vec<FaultRule>, SimError> {
    let bad = |msg: String| SimError::FaultSpec {
        spec: spec.to_string(),
        message: msg,
    };
    let mut rules = Vec::new();
    for item in spec.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let mut hang = false;
        let (left, errno, sleep_ms) = match item.split_once('=') {
            Some((l, e)) if e.trim() == "hang" => {
                hang = true;
                (l, Errno::EINVAL, None)
            }
            Some((l, e)) => match e.trim().strip_prefix("sleep:") {
                Some(ms) => (
                    l,
                    Errno::EINVAL,
                    Some(
                        ms.trim()
                            .parse::<u64>()
                            .map_err(|_| bad(format!("`{ms}` is not a number of milliseconds")))?,
                    ),
                ),
                None => (
                    l,
                    parse_errno(e.trim()).ok_or_else(|| {
                        bad(format!(
                            "`{e}` is not an errno (use a name like ENOMEM or a positive \
                             number, sleep:MS, or hang)"
                        ))
                    })?,
                    None,
                ),
            },
            None => (item, Errno::EINVAL, None),
        };
        let (op, nth) = match left.split_once(':') {
            Some((op, n)) => {
                let nth = n
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| {
                        bad(format!("`{n}` is not a call number (1 is the first call)"))
                    })?;
                (op.trim(), nth)
            }
            None => (left.trim(), 1),
        };
        let op = FAIL_OPS
            .iter()
            .copied()
            .find(|&known| known == op)
            .ok_or_else(|| {
                bad(format!(
                    "unknown operation `{op}`; known: {}",
                    FAIL_OPS.join(" ")
                ))
            })?;
        if hang && !HANG_OPS.contains(&op) {
            return Err(bad(format!(
                "`{op}=hang`: only {} can hang",
                HANG_OPS.join(" and ")
            )));
        }
        rules.push(FaultRule {
            op,
            nth,
            errno,
            sleep_ms,
            hang,
        });
    }
    Ok(rules)
}

fn parse_errno(s: &str) -> Option<Errno> {
    if let Some(e) = Errno::from_name(&s.to_ascii_uppercase()) {
        return Some(e);
    }
    s.parse::<i32>().ok().filter(|&n| n > 0).map(Errno)
}

/// Per-handle call counters and the rules that fire on them.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    rules: Vec<FaultRule>,
    calls: HashMap<&'static str, u64>,
}

impl Faults {
    pub(crate) fn new(rules: Vec<FaultRule>) -> Faults {
        Faults {
            rules,
            calls: HashMap::new(),
        }
    }

    /// Count a call of `op`; what the rule firing on it does, and the call's number.
    pub(crate) fn fire(&mut self, op: &'static str) -> Option<(Fired, u64)> {
        if self.rules.is_empty() {
            return None;
        }
        let count = self.calls.entry(op).or_insert(0);
        *count += 1;
        let n = *count;
        let rule = self.rules.iter().find(|r| r.op == op && r.nth == n)?;
        let fired = match rule.sleep_ms {
            Some(ms) => Fired::Sleep(ms),
            None if rule.hang => Fired::Hang,
            None => Fired::Fail(rule.errno),
        };
        Some((fired, n))
    }

    /// Count a call of `op`; the injected errno if a rule fires on it. A sleep rule
    /// sleeps here and lets the call go on.
    pub(crate) fn hit(&mut self, op: &'static str) -> Option<(Errno, u64)> {
        match self.fire(op)? {
            (Fired::Sleep(ms), _) => {
                std::thread::sleep(std::time::Duration::from_millis(ms));
                None
            }
            (Fired::Fail(errno), n) => Some((errno, n)),
            // Only hotplug runs can hang (the parser refuses it elsewhere); they ask
            // `fire`, never `hit`.
            (Fired::Hang, n) => Some((Errno::EINVAL, n)),
        }
    }

    /// Count a step of `op` that either happens or is refused (the device faults):
    /// whether a rule refuses it (a sleep rule waits, then lets it happen).
    pub(crate) fn refuses(&mut self, op: &'static str) -> bool {
        self.hit(op).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_and_short_forms() {
        let rules = parse_spec("populate_physmap:3=ENOMEM, xs_write=5,createdomain").unwrap();
        assert_eq!(
            rules,
            vec![
                FaultRule {
                    op: "populate_physmap",
                    nth: 3,
                    errno: Errno::ENOMEM,
                    sleep_ms: None,
                    hang: false
                },
                FaultRule {
                    op: "xs_write",
                    nth: 1,
                    errno: Errno(5),
                    sleep_ms: None,
                    hang: false
                },
                FaultRule {
                    op: "createdomain",
                    nth: 1,
                    errno: Errno::EINVAL,
                    sleep_ms: None,
                    hang: false
                },
            ]
        );
        assert_eq!(parse_spec("").unwrap(), vec![]);
        assert_eq!(parse_spec("shutdown=eperm").unwrap()[0].errno, Errno::EPERM);
    }

    #[test]
    fn rejects_bad_specs_clearly() {
        let e = parse_spec("nosuchop").unwrap_err().to_string();
        assert!(e.contains("unknown operation `nosuchop`"), "{e}");
        assert!(e.contains("populate_physmap"), "{e}");
        let e = parse_spec("xs_read:0").unwrap_err().to_string();
        assert!(e.contains("call number"), "{e}");
        let e = parse_spec("xs_read:x").unwrap_err().to_string();
        assert!(e.contains("`x`"), "{e}");
        let e = parse_spec("xs_read=EWHAT").unwrap_err().to_string();
        assert!(e.contains("EWHAT"), "{e}");
        assert!(parse_spec("xs_read=-3").is_err());
    }

    #[test]
    fn fires_on_the_nth_call_only() {
        let mut f = Faults::new(parse_spec("xs_read:2=EIO").unwrap());
        assert_eq!(f.hit("xs_read"), None);
        assert_eq!(f.hit("xs_write"), None);
        assert_eq!(f.hit("xs_read"), Some((Errno::EIO, 2)));
        assert_eq!(f.hit("xs_read"), None);
    }

    #[test]
    fn a_sleep_rule_waits_and_lets_the_call_succeed() {
        let rules = parse_spec("xs_read:2=sleep:30").unwrap();
        assert_eq!(rules[0].sleep_ms, Some(30));
        let mut f = Faults::new(rules);
        assert_eq!(f.hit("xs_read"), None);
        let t = std::time::Instant::now();
        assert_eq!(f.hit("xs_read"), None);
        assert!(t.elapsed() >= std::time::Duration::from_millis(30));
        let e = parse_spec("xs_read=sleep:x").unwrap_err().to_string();
        assert!(e.contains("milliseconds"), "{e}");
    }

    #[test]
    fn device_faults_parse_and_only_hotplug_runs_hang() {
        let rules =
            parse_spec("hotplug_add=hang,hotplug_remove:2=EIO,backend_init,frontend_connect:3")
                .unwrap();
        assert!(rules[0].hang);
        assert_eq!((rules[1].nth, rules[1].errno), (2, Errno::EIO));
        assert_eq!(rules[2].op, "backend_init");
        assert_eq!((rules[3].op, rules[3].nth), ("frontend_connect", 3));
        let mut f = Faults::new(rules);
        assert_eq!(f.fire("hotplug_add"), Some((Fired::Hang, 1)));
        assert_eq!(f.fire("hotplug_add"), None);
        assert!(f.refuses("backend_init"));
        assert!(!f.refuses("backend_init"));
        let e = parse_spec("xs_read=hang").unwrap_err().to_string();
        assert!(
            e.contains("only hotplug_add and hotplug_remove can hang"),
            "{e}"
        );
        let e = parse_spec("frontend_release=nonsense")
            .unwrap_err()
            .to_string();
        assert!(e.contains("hang"), "{e}");
    }
}
