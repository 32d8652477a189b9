//! Interface versions per Xen release and the choice of layouts they imply.
//!
//! | Xen | domctl | sysctl | createdomain |
//! |---|---|---|---|
//! | 4.17 | 0x15 | 0x15 | 64 bytes |
//! | 4.18 | 0x16 | 0x15 | 64 bytes |
//! | 4.19 | 0x17 | 0x15 | 68 bytes |
//! | 4.20 | 0x17 | 0x15 | 68 bytes |
//! | 4.21 | 0x17 | 0x16 | 68 bytes |
//! | 4.22 | 0x18 | 0x16 | 68 bytes |
//!
//! (`XEN_DOMCTL_INTERFACE_VERSION` / `XEN_SYSCTL_INTERFACE_VERSION` read from
//! xen/include/public/{domctl,sysctl}.h at each RELEASE-4.x.0 tag.) Xen answers a domctl
//! or sysctl carrying any other interface version with `-EACCES`, so the versions in use
//! are probed: the release's own first, then every other known one.

use crate::AbiError;

/// One Xen release rxl knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Release {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// `XEN_DOMCTL_INTERFACE_VERSION`.
    pub domctl: u32,
    /// `XEN_SYSCTL_INTERFACE_VERSION`.
    pub sysctl: u32,
}

/// Every release rxl knows, oldest first.
pub const KNOWN_RELEASES: [Release; 6] = [
    Release {
        major: 4,
        minor: 17,
        domctl: 0x15,
        sysctl: 0x15,
    },
    Release {
        major: 4,
        minor: 18,
        domctl: 0x16,
        sysctl: 0x15,
    },
    Release {
        major: 4,
        minor: 19,
        domctl: 0x17,
        sysctl: 0x15,
    },
    Release {
        major: 4,
        minor: 20,
        domctl: 0x17,
        sysctl: 0x15,
    },
    Release {
        major: 4,
        minor: 21,
        domctl: 0x17,
        sysctl: 0x16,
    },
    Release {
        major: 4,
        minor: 22,
        domctl: 0x18,
        sysctl: 0x16,
    },
];

/// Which `xen_domctl_createdomain` layout an interface uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateDomainLayout {
    /// 64 bytes, no altp2m field (domctl 0x15, 0x16).
    V417,
    /// 68 bytes, altp2m after grant_opts (domctl 0x17, 0x18).
    V419,
}

/// The interface versions in use on a host, and the layouts they select.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenAbi {
    /// domctl interface version to put in every domctl.
    pub domctl: u32,
    /// sysctl interface version to put in every sysctl.
    pub sysctl: u32,
    /// createdomain layout for `domctl`.
    pub createdomain: CreateDomainLayout,
}

impl XenAbi {
    /// The ABI of a known release.
    pub fn for_release(major: u32, minor: u32) -> Option<XenAbi> {
        let r = KNOWN_RELEASES
            .iter()
            .find(|r| r.major == major && r.minor == minor)?;
        XenAbi::from_interfaces(r.domctl, r.sysctl).ok()
    }

    /// The ABI for probed interface versions; errors if rxl does not know one of them.
    pub fn from_interfaces(domctl: u32, sysctl: u32) -> Result<XenAbi, AbiError> {
        let createdomain = match domctl {
            0x15 | 0x16 => CreateDomainLayout::V417,
            0x17 | 0x18 => CreateDomainLayout::V419,
            _ => {
                return Err(AbiError::UnknownInterface {
                    what: "domctl",
                    found: format!("{domctl:#x}"),
                    known: known_list(),
                })
            }
        };
        if !KNOWN_RELEASES.iter().any(|r| r.sysctl == sysctl) {
            return Err(AbiError::UnknownInterface {
                what: "sysctl",
                found: format!("{sysctl:#x}"),
                known: known_list(),
            });
        }
        Ok(XenAbi {
            domctl,
            sysctl,
            createdomain,
        })
    }

    /// domctl versions to try on Xen `major.minor`, in order: the release's own, then
    /// the other known ones, newest first.
    pub fn domctl_candidates(major: u32, minor: u32) -> Vec<u32> {
        candidates(major, minor, |r| r.domctl)
    }

    /// sysctl versions to try on Xen `major.minor`, in the same order.
    pub fn sysctl_candidates(major: u32, minor: u32) -> Vec<u32> {
        candidates(major, minor, |r| r.sysctl)
    }
}

fn candidates(major: u32, minor: u32, pick: impl Fn(&Release) -> u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Some(r) = KNOWN_RELEASES
        .iter()
        .find(|r| r.major == major && r.minor == minor)
    {
        out.push(pick(r));
    }
    for r in KNOWN_RELEASES.iter().rev() {
        let v = pick(r);
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// What rxl knows, for error messages: `"4.17 (domctl 0x15, sysctl 0x15), ..."`.
pub fn known_list() -> String {
    KNOWN_RELEASES
        .iter()
        .map(|r| {
            format!(
                "{}.{} (domctl {:#x}, sysctl {:#x})",
                r.major, r.minor, r.domctl, r.sysctl
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The outcome of trying one interface version on the hypervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeAnswer {
    /// The call succeeded: this version is the one in use.
    Accepted,
    /// `EACCES`: wrong version, try the next.
    WrongVersion,
    /// Any other errno: the probe itself failed.
    Failed(i32),
}

/// Run a probe over `candidates`: the first version `try_one` accepts wins; a failure
/// other than a wrong version stops the probe with that errno. `Ok(None)` when every
/// candidate was refused as a wrong version.
pub fn probe<F>(candidates: &[u32], mut try_one: F) -> Result<Option<u32>, (u32, i32)>
where
    F: FnMut(u32) -> ProbeAnswer,
{
    for &v in candidates {
        match try_one(v) {
            ProbeAnswer::Accepted => return Ok(Some(v)),
            ProbeAnswer::WrongVersion => continue,
            ProbeAnswer::Failed(errno) => return Err((v, errno)),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_table() {
        let a = XenAbi::for_release(4, 17);
        assert_eq!(
            a,
            Some(XenAbi {
                domctl: 0x15,
                sysctl: 0x15,
                createdomain: CreateDomainLayout::V417
            })
        );
        assert_eq!(
            XenAbi::for_release(4, 18).map(|a| a.createdomain),
            Some(CreateDomainLayout::V417)
        );
        assert_eq!(
            XenAbi::for_release(4, 19).map(|a| a.createdomain),
            Some(CreateDomainLayout::V419)
        );
        assert_eq!(
            XenAbi::for_release(4, 22).map(|a| (a.domctl, a.sysctl)),
            Some((0x18, 0x16))
        );
        assert_eq!(XenAbi::for_release(4, 16), None);
    }

    #[test]
    fn candidates_start_with_own_release() {
        assert_eq!(
            XenAbi::domctl_candidates(4, 17),
            vec![0x15, 0x18, 0x17, 0x16]
        );
        assert_eq!(XenAbi::sysctl_candidates(4, 21), vec![0x16, 0x15]);
        // An unknown release tries everything, newest first.
        assert_eq!(
            XenAbi::domctl_candidates(4, 30),
            vec![0x18, 0x17, 0x16, 0x15]
        );
    }

    #[test]
    fn probe_decisions() {
        let c = [0x15, 0x18, 0x17];
        // Accepted on the second try.
        let mut tried = Vec::new();
        let r = probe(&c, |v| {
            tried.push(v);
            if v == 0x18 {
                ProbeAnswer::Accepted
            } else {
                ProbeAnswer::WrongVersion
            }
        });
        assert_eq!(r, Ok(Some(0x18)));
        assert_eq!(tried, vec![0x15, 0x18]);
        // All wrong.
        assert_eq!(probe(&c, |_| ProbeAnswer::WrongVersion), Ok(None));
        // A real failure stops at once.
        assert_eq!(probe(&c, |_| ProbeAnswer::Failed(1)), Err((0x15, 1)));
    }

    #[test]
    fn unknown_interfaces_are_refused_with_the_list() {
        let err = XenAbi::from_interfaces(0x19, 0x16)
            .err()
            .map(|e| e.to_string());
        let msg = err.unwrap_or_default();
        assert!(msg.contains("domctl interface 0x19"), "{msg}");
        assert!(msg.contains("4.17 (domctl 0x15, sysctl 0x15)"), "{msg}");
        assert!(msg.contains("4.22 (domctl 0x18, sysctl 0x16)"), "{msg}");
        assert!(XenAbi::from_interfaces(0x17, 0x14).is_err());
    }
}
