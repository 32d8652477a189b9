//! Finding domains and reading what `rxl list` shows.

use std::path::Path;
use std::time::Duration;

use xen_host::{read_string, DomId, DomainInfo, Errno, Error, Hypervisor, Result, Store, TxId};

use crate::xs_layout::dom_path;

/// A domain as `rxl list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DomainRow {
    /// What Xen says.
    pub info: DomainInfo,
    /// The name from xenstore; `None` when the node is missing (a domain xenstore does not
    /// know, or one whose create was interrupted).
    pub name: Option<String>,
}

impl DomainRow {
    /// The uuid in text form.
    pub fn uuid(&self) -> String {
        uuid_string(&self.info.handle)
    }

    /// The name to print: the xenstore name, or `(null)` as xl prints for a nameless domain.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or("(null)")
    }

    /// Memory in MiB as xl list computes it: (tot_pages + outstanding_pages) pages.
    pub fn memory_mib(&self) -> u64 {
        (self.info.tot_pages + self.info.outstanding_pages) / 256
    }

    /// CPU time in seconds.
    pub fn cpu_time_s(&self) -> f64 {
        self.info.cpu_time_ns as f64 / 1e9
    }
}

/// The 8-4-4-4-12 text form of a 16-byte handle.
pub fn uuid_string(h: &[u8; 16]) -> String {
    let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A domain's name from xenstore.
pub fn name_of<S: Store + ?Sized>(store: &S, dom: DomId) -> Result<Option<String>> {
    read_string(store, TxId::NONE, &format!("{}/name", dom_path(dom)))
}

/// Every domain with its name, in id order.
pub fn list<H, S>(hv: &H, store: &S) -> Result<Vec<DomainRow>>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    hv.list_domains()?
        .into_iter()
        .map(|info| {
            let name = name_of(store, info.domid)?;
            Ok(DomainRow { info, name })
        })
        .collect()
}

/// The id of the domain called `name`, if one is.
pub fn find_by_name<H, S>(hv: &H, store: &S, name: &str) -> Result<Option<DomId>>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    for info in hv.list_domains()? {
        if name_of(store, info.domid)?.as_deref() == Some(name) {
            return Ok(Some(info.domid));
        }
    }
    Ok(None)
}

/// How long a command that names a domain waits for the monitor to finish restarting it.
pub const RESTART_WAIT: Duration = Duration::from_secs(60);

/// Like [`resolve`], but a name whose guest rxl's monitor is restarting right now (no
/// domain carries it until the new one is built) is looked up again once the restart is
/// over, so that `rxl destroy NAME` just after a reboot reaches the new domain instead of
/// missing the old one.
pub fn resolve_waiting<H, S>(hv: &H, store: &S, state_dir: &Path, spec: &str) -> Result<DomId>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    match resolve(hv, store, spec) {
        Err(e) if e.is_gone() => {
            match crate::restarts::wait_restarted(state_dir, spec, RESTART_WAIT) {
                Ok(true) => resolve(hv, store, spec),
                Ok(false) => Err(e),
                // Not "no such domain": one is coming back, later than we waited.
                Err(why) => Err(Error::os_detail(
                    "find domain",
                    Errno::ETIMEDOUT,
                    why.to_string(),
                )),
            }
        }
        r => r,
    }
}

/// Resolve a DOMAIN argument: a decimal id of an existing domain, or a name.
pub fn resolve<H, S>(hv: &H, store: &S, spec: &str) -> Result<DomId>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    if !spec.is_empty() && spec.bytes().all(|b| b.is_ascii_digit()) {
        let id: u16 = spec
            .parse()
            .ok()
            .filter(|&id| id < DomId::FIRST_RESERVED)
            .ok_or_else(|| {
                Error::os_detail(
                    "find domain",
                    Errno::EINVAL,
                    format!("{spec} is not a valid domain id"),
                )
            })?;
        return match hv.domain_info(DomId(id))? {
            Some(_) => Ok(DomId(id)),
            None => Err(Error::os_detail(
                "find domain",
                Errno::ESRCH,
                format!("no domain with id {id}"),
            )),
        };
    }
    find_by_name(hv, store, spec)?.ok_or_else(|| {
        Error::os_detail(
            "find domain",
            Errno::ESRCH,
            format!("no domain called {spec:?}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_text_form() {
        let h = [
            0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
            0xcd, 0xef,
        ];
        assert_eq!(uuid_string(&h), "12345678-9abc-def0-0123-456789abcdef");
    }
}
