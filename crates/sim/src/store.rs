//! The simulated xenstored: `xen_host::Store` for [`SimHost`].

use std::time::{Duration, Instant};

use xen_host::{DomId, Errno, Gfn, Perm, Store, TxId, WatchEvent};

use crate::backend::after_changes;
use crate::disk::{self, ChangeKind, HostState};
use crate::xs::{self, Tx};
use crate::{guest_after_write, Inner, SimError, SimHost, Watch, World};

/// How often `next_watch_event` looks at the change log.
const WATCH_POLL: Duration = Duration::from_millis(5);

fn no_tx(tx: TxId) -> SimError {
    SimError::xen(Errno::ENOENT, format!("no transaction {}", tx.0))
}

fn take_tx(inner: &mut Inner, tx: TxId) -> Result<&mut Tx, SimError> {
    inner.txs.get_mut(&tx.0).ok_or_else(|| no_tx(tx))
}

impl SimHost {
    /// A path operation: canonicalise, then run `f` under the lock.
    fn xs_call<T>(
        &self,
        op: &'static str,
        path: &str,
        f: impl FnOnce(&mut World<'_>, &mut Inner, &str) -> Result<T, SimError>,
    ) -> xen_host::Result<T> {
        let caller = self.caller;
        self.call(op, path, 0, |w, inner| {
            let abs = xs::canonical(caller, path)?;
            f(w, inner, &abs)
        })
    }

    fn special_or_canonical(&self, path: &str) -> Result<String, SimError> {
        if path.starts_with('@') {
            if path == "@introduceDomain" || path == "@releaseDomain" {
                Ok(path.to_string())
            } else {
                Err(SimError::xen(
                    Errno::EINVAL,
                    format!(
                        "`{path}`: the special watches are @introduceDomain and @releaseDomain"
                    ),
                ))
            }
        } else {
            xs::canonical(self.caller, path)
        }
    }

    /// Queue the events the change log holds for this handle's watches (the caller holds
    /// the host lock).
    fn poll_watches(&self, inner: &mut Inner) -> Result<(), SimError> {
        if inner.watches.is_empty() {
            return Ok(());
        }
        let state = HostState::load(&self.dir)?;
        if state.seq <= inner.cursor {
            return Ok(());
        }
        let changes = disk::read_changes(&self.dir, inner.cursor, state.seq)?;
        if changes.lost {
            // This handle fell so far behind that the log no longer holds what it
            // missed: fire every watch once, so the caller looks again.
            let all: Vec<WatchEvent> = inner
                .watches
                .iter()
                .map(|w| WatchEvent {
                    path: w.given.clone(),
                    token: w.token.clone(),
                })
                .collect();
            inner.pending.extend(all);
        }
        let home = format!("/local/domain/{}/", self.caller.0);
        for change in &changes.entries {
            for watch in &inner.watches {
                if let Some(path) = xs::watch_fires(change, &watch.abs) {
                    let path = if !watch.given.starts_with('/') && !watch.given.starts_with('@') {
                        path.strip_prefix(&home)
                            .map_or(path.clone(), str::to_string)
                    } else {
                        path
                    };
                    inner.pending.push_back(WatchEvent {
                        path,
                        token: watch.token.clone(),
                    });
                }
            }
        }
        inner.cursor = state.seq;
        Ok(())
    }
}

impl Store for SimHost {
    fn read(&self, tx: TxId, path: &str) -> xen_host::Result<Option<Vec<u8>>> {
        let caller = self.caller;
        self.xs_call("xs_read", path, |w, inner, abs| {
            if tx == TxId::NONE {
                xs::read(w, caller, abs)
            } else {
                take_tx(inner, tx)?.read(w.dir, caller, abs)
            }
        })
    }

    fn write(&self, tx: TxId, path: &str, value: &[u8]) -> xen_host::Result<()> {
        let caller = self.caller;
        self.xs_call("xs_write", path, |w, inner, abs| {
            if tx == TxId::NONE {
                xs::write(w, caller, abs, value, false)?;
                guest_after_write(w, abs)?;
                after_changes(w, &mut inner.faults, &[(ChangeKind::Write, abs.to_owned())])
            } else {
                take_tx(inner, tx)?.write(w.dir, caller, abs, value, false)
            }
        })
    }

    fn mkdir(&self, tx: TxId, path: &str) -> xen_host::Result<()> {
        let caller = self.caller;
        self.xs_call("xs_mkdir", path, |w, inner, abs| {
            if tx == TxId::NONE {
                xs::write(w, caller, abs, b"", true)?;
                after_changes(w, &mut inner.faults, &[(ChangeKind::Write, abs.to_owned())])
            } else {
                take_tx(inner, tx)?.write(w.dir, caller, abs, b"", true)
            }
        })
    }

    fn rm(&self, tx: TxId, path: &str) -> xen_host::Result<()> {
        let caller = self.caller;
        self.xs_call("xs_rm", path, |w, inner, abs| {
            if tx == TxId::NONE {
                xs::rm(w, caller, abs)?;
                after_changes(
                    w,
                    &mut inner.faults,
                    &[(ChangeKind::Remove, abs.to_owned())],
                )
            } else {
                take_tx(inner, tx)?.rm(w.dir, caller, abs)
            }
        })
    }

    fn directory(&self, tx: TxId, path: &str) -> xen_host::Result<Option<Vec<String>>> {
        let caller = self.caller;
        self.xs_call("xs_directory", path, |w, inner, abs| {
            if tx == TxId::NONE {
                xs::directory(w, caller, abs)
            } else {
                take_tx(inner, tx)?.directory(w.dir, caller, abs)
            }
        })
    }

    fn get_perms(&self, tx: TxId, path: &str) -> xen_host::Result<Option<Vec<Perm>>> {
        let caller = self.caller;
        self.xs_call("xs_get_perms", path, |w, inner, abs| {
            if tx == TxId::NONE {
                xs::get_perms(w, caller, abs)
            } else {
                take_tx(inner, tx)?.get_perms(w.dir, caller, abs)
            }
        })
    }

    fn set_perms(&self, tx: TxId, path: &str, perms: &[Perm]) -> xen_host::Result<()> {
        let caller = self.caller;
        self.xs_call("xs_set_perms", path, |w, inner, abs| {
            if tx == TxId::NONE {
                xs::set_perms(w, caller, abs, perms)
            } else {
                take_tx(inner, tx)?.set_perms(w.dir, caller, abs, perms)
            }
        })
    }

    fn transaction_start(&self) -> xen_host::Result<TxId> {
        self.call("xs_transaction_start", "", 0, |w, inner| {
            let mut id = inner.next_tx;
            while id == 0 || inner.txs.contains_key(&id) {
                id = id.wrapping_add(1);
            }
            inner.next_tx = id.wrapping_add(1);
            inner.txs.insert(id, Tx::new(w.state.xs_gen));
            Ok(TxId(id))
        })
    }

    fn transaction_end(&self, tx: TxId, commit: bool) -> xen_host::Result<bool> {
        let caller = self.caller;
        self.call("xs_transaction_end", "", 0, |w, inner| {
            let t = inner.txs.remove(&tx.0).ok_or_else(|| no_tx(tx))?;
            if !commit {
                return Ok(true);
            }
            match t.commit(w, caller)? {
                None => Ok(false),
                Some(changes) => {
                    for (kind, p) in &changes {
                        if *kind == ChangeKind::Write {
                            guest_after_write(w, p)?;
                        }
                    }
                    after_changes(w, &mut inner.faults, &changes)?;
                    Ok(true)
                }
            }
        })
    }

    fn watch(&self, path: &str, token: &str) -> xen_host::Result<()> {
        self.call("xs_watch", path, 0, |w, inner| {
            let abs = self.special_or_canonical(path)?;
            if inner
                .watches
                .iter()
                .any(|x| x.given == path && x.token == token)
            {
                return Err(SimError::xen(
                    Errno::EEXIST,
                    format!("already watching {path} with token {token}"),
                ));
            }
            if inner.watches.is_empty() {
                inner.cursor = w.state.seq;
            } else {
                self.poll_watches(inner)?;
            }
            inner.watches.push(Watch {
                abs,
                given: path.to_string(),
                token: token.to_string(),
            });
            // xenstored fires a new watch once straight away.
            inner.pending.push_back(WatchEvent {
                path: path.to_string(),
                token: token.to_string(),
            });
            Ok(())
        })
    }

    fn unwatch(&self, path: &str, token: &str) -> xen_host::Result<()> {
        self.xs_requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut inner = self.inner();
        if inner.faults.hit("xs_unwatch").is_some() {
            return Err(xen_host::Error::os_detail(
                format!("xs_unwatch {path}"),
                Errno::EINVAL,
                "injected by RXL_SIM_FAIL",
            ));
        }
        let before = inner.watches.len();
        inner
            .watches
            .retain(|x| !(x.given == path && x.token == token));
        if inner.watches.len() == before {
            return Err(xen_host::Error::os_detail(
                format!("xs_unwatch {path}"),
                Errno::ENOENT,
                format!("no watch on {path} with token {token}"),
            ));
        }
        inner.pending.retain(|e| e.token != token);
        Ok(())
    }

    fn next_watch_event(&self, timeout: Option<Duration>) -> xen_host::Result<Option<WatchEvent>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            {
                let mut inner = self.inner();
                if let Some(e) = inner.pending.pop_front() {
                    return Ok(Some(e));
                }
                if !inner.watches.is_empty() {
                    crate::disk::HostLock::acquire_shared(&self.dir)
                        .and_then(|_lock| self.poll_watches(&mut inner))
                        .map_err(|e| e.into_host("xs_watch_event"))?;
                }
                if let Some(e) = inner.pending.pop_front() {
                    return Ok(Some(e));
                }
            }
            let mut nap = WATCH_POLL;
            if let Some(d) = deadline {
                let now = Instant::now();
                if now >= d {
                    return Ok(None);
                }
                nap = nap.min(d - now);
            }
            std::thread::sleep(nap);
        }
    }

    fn introduce(&self, dom: DomId, store_gfn: Gfn, store_port: u32) -> xen_host::Result<()> {
        self.call("xs_introduce", "", 0, |w, _| {
            let Some(mut d) = disk::load_dom(w.dir, dom.0)? else {
                return Err(SimError::xen(Errno::ENOENT, format!("no domain {dom}")));
            };
            if d.dying {
                return Err(SimError::xen(
                    Errno::ENOENT,
                    format!("domain {dom} is dying"),
                ));
            }
            match d.introduced {
                Some((g, p)) if g == store_gfn.0 && p == store_port => Ok(()),
                Some(_) if dom != DomId::DOM0 => Err(SimError::xen(
                    Errno::EINVAL,
                    format!("domain {dom} is already introduced with another ring"),
                )),
                Some(_) => Ok(()),
                None => {
                    d.introduced = Some((store_gfn.0, store_port));
                    disk::store_dom(w.dir, &d)?;
                    w.log(ChangeKind::Special, "@introduceDomain");
                    Ok(())
                }
            }
        })
    }

    fn release(&self, dom: DomId) -> xen_host::Result<()> {
        self.call("xs_release", "", 0, |w, _| {
            if dom == DomId::DOM0 {
                return Err(SimError::xen(Errno::EINVAL, "Domain-0 cannot be released"));
            }
            let d = disk::load_dom(w.dir, dom.0)?;
            match d {
                Some(mut d) if d.introduced.is_some() => {
                    d.introduced = None;
                    disk::store_dom(w.dir, &d)?;
                    w.log(ChangeKind::Special, "@releaseDomain");
                    Ok(())
                }
                _ => Err(SimError::xen(
                    Errno::ENOENT,
                    format!("domain {dom} is not introduced"),
                )),
            }
        })
    }

    fn get_domain_path(&self, dom: DomId) -> xen_host::Result<String> {
        self.call("xs_get_domain_path", "", 0, |_, _| {
            Ok(format!("/local/domain/{}", dom.0))
        })
    }

    fn request_count(&self) -> u64 {
        self.xs_requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn is_domain_introduced(&self, dom: DomId) -> xen_host::Result<bool> {
        self.call("xs_is_domain_introduced", "", 0, |w, _| {
            Ok(disk::load_dom(w.dir, dom.0)?.is_some_and(|d| d.introduced.is_some()))
        })
    }
}
