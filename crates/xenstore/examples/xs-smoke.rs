//! Exercise a live xenstored through `XsClient` and report each step.
//!
//! `cargo run -p xenstore --example xs-smoke [SOCKET-OR-DEVICE]`; without an argument
//! it connects the way `XsClient::open` does. Works below `/tool/rxl-smoke`, removed at
//! the end. Exits non-zero at the first failing step.

use std::process::ExitCode;
use std::time::Duration;

use xen_host::{Access, DomId, Perm, Store, TxId};
use xenstore::XsClient;

const BASE: &str = "/tool/rxl-smoke";

/// The next watch event within five seconds; none is a failure.
fn event(xs: &XsClient) -> xen_host::Result<String> {
    match xs.next_watch_event(Some(Duration::from_secs(5)))? {
        Some(e) => Ok(format!("{} (token {})", e.path, e.token)),
        None => Err(xen_host::Error::other(
            "xs_read_watch",
            "no event within 5 s",
        )),
    }
}

fn run(xs: &XsClient) -> Result<(), String> {
    let step = |name: &str, r: xen_host::Result<String>| -> Result<(), String> {
        match r {
            Ok(s) => {
                println!("ok   {name}: {s}");
                Ok(())
            }
            Err(e) => Err(format!("FAIL {name}: {e}")),
        }
    };
    let key = format!("{BASE}/key");
    step(
        "write",
        xs.write(TxId::NONE, &key, b"value").map(|()| key.clone()),
    )?;
    step(
        "read",
        xs.read(TxId::NONE, &key).and_then(|v| match v {
            Some(v) if v == b"value" => Ok("value".into()),
            other => Err(xen_host::Error::other("read", format!("got {other:?}"))),
        }),
    )?;
    step(
        "directory",
        xs.directory(TxId::NONE, BASE).map(|d| format!("{d:?}")),
    )?;
    let perms = [
        Perm {
            domid: DomId(0),
            access: Access::None,
        },
        Perm {
            domid: DomId(1),
            access: Access::Read,
        },
    ];
    step(
        "set_perms",
        xs.set_perms(TxId::NONE, &key, &perms)
            .map(|()| "n0 r1".into()),
    )?;
    step(
        "get_perms",
        xs.get_perms(TxId::NONE, &key).map(|p| format!("{p:?}")),
    )?;
    step(
        "transaction",
        xen_host::transaction(xs, |tx| {
            xs.write(tx, &format!("{BASE}/tx"), b"1")?;
            Ok("committed".to_string())
        }),
    )?;
    step("watch", xs.watch(BASE, "smoke").map(|()| BASE.to_string()))?;
    step("initial watch event", event(xs))?;
    xs.write(TxId::NONE, &key, b"changed")
        .map_err(|e| format!("FAIL write: {e}"))?;
    step("change event", event(xs))?;
    step(
        "unwatch",
        xs.unwatch(BASE, "smoke").map(|()| BASE.to_string()),
    )?;
    step("get_domain_path", xs.get_domain_path(DomId::DOM0))?;
    step(
        "is_domain_introduced",
        xs.is_domain_introduced(DomId::DOM0).map(|b| b.to_string()),
    )?;
    step("rm", xs.rm(TxId::NONE, BASE).map(|()| BASE.to_string()))?;
    Ok(())
}

fn main() -> ExitCode {
    let xs = match std::env::args_os().nth(1) {
        Some(path) => XsClient::open_path(path),
        None => XsClient::open(),
    };
    let xs = match xs {
        Ok(xs) => xs,
        Err(e) => {
            eprintln!("xs-smoke: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "connected to {} ({:?})",
        xs.path().display(),
        xs.transport()
    );
    match run(&xs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
