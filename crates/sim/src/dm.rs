//! The simulated host's device model: what `rxl sim-device-model ARGS...` runs in place of
//! QEMU, a real process so that the toolstack starts, confirms, watches and stops it with
//! the code it uses on Xen (docs/device-model.md, "On the simulated host").
//!
//! It reads QEMU's arguments (`-xen-domid D` is required; `-name`, `-machine` and the
//! `-chardev socket,...,path=P` QMP sockets are used), then:
//!
//! 1. with the fault `dm_start`, writes a line to stderr (the log) and fails, so that the
//!    process exits with status 1 at once;
//! 2. checks that domain D exists;
//! 3. opens a pseudo-terminal for each `-serial pty`, and makes each QMP socket (a
//!    listening Unix socket at its path, answered by a thread: the greeting,
//!    `qmp_capabilities`, `query-chardev` naming the serial ptys, and `quit`, which ends
//!    the process);
//! 4. brings every qdisk backend of D in state 1 (`online` 1) to 2 (InitWait), as QEMU's
//!    xen-block does when it takes a backend on;
//! 5. writes `/local/domain/0/device-model/D/state = running`, unless the fault
//!    `dm_confirm` makes it never confirm;
//! 6. waits on a `@releaseDomain` watch (no timer) and returns once D is gone, removing
//!    its sockets. SIGTERM ends it at any point (the default action: no handler).

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use xen_host::{DomId, Hypervisor, Store, TxId};

use crate::fault::{self, Faults};
use crate::{SimError, SimHost};

/// What the arguments say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DmArgs {
    /// `-xen-domid`.
    pub dom: u16,
    /// `-name`.
    pub name: Option<String>,
    /// `-machine` (or `-M`).
    pub machine: Option<String>,
    /// The `path=` of every `-chardev socket`.
    pub sockets: Vec<PathBuf>,
    /// The value of every `-serial` (`pty` for a serial port on a pseudo-terminal).
    pub serials: Vec<String>,
    /// The value of `-vnc` (`none`, or `HOST:DISPLAY` with options after commas).
    pub vnc: Option<String>,
}

/// What the simulated device model answers to QMP queries.
#[derive(Clone, Debug)]
pub struct QmpAnswers {
    /// `query-chardev`'s list.
    pub chardevs: serde_json::Value,
    /// `query-vnc`'s object.
    pub vnc: serde_json::Value,
}

/// `query-vnc`'s answer for QEMU's `-vnc` value: off for none (or no `-vnc`), else the
/// host and the TCP port (5900 plus the display) QEMU listens on.
pub fn query_vnc(vnc: Option<&str>) -> serde_json::Value {
    let addr = vnc
        .and_then(|v| v.split(',').next())
        .filter(|a| *a != "none");
    match addr.and_then(|a| a.rsplit_once(':')) {
        Some((host, display)) => match display.parse::<u32>() {
            Ok(d) => serde_json::json!({
                "enabled": true,
                "host": host,
                "service": (5900 + d).to_string(),
                "family": "ipv4",
                "auth": "none",
            }),
            Err(_) => serde_json::json!({"enabled": false}),
        },
        None => serde_json::json!({"enabled": false}),
    }
}

/// Parse QEMU's arguments (the ones this needs; the others are accepted and ignored).
pub fn parse_args(args: &[String]) -> Result<DmArgs, SimError> {
    let bad = |m: String| SimError::Config(format!("sim-device-model: {m}"));
    let mut out = DmArgs::default();
    let mut dom = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| bad(format!("{name} needs a value")))
        };
        match a.as_str() {
            "-xen-domid" => {
                let v = value(a)?;
                dom = Some(
                    v.parse::<u16>()
                        .map_err(|_| bad(format!("-xen-domid {v:?} is not a domain id")))?,
                );
            }
            "-name" => out.name = Some(value(a)?),
            "-serial" => out.serials.push(value(a)?),
            "-vnc" => out.vnc = Some(value(a)?),
            "-machine" | "-M" => out.machine = Some(value(a)?),
            "-chardev" => {
                let v = value(a)?;
                let mut parts = v.split(',');
                if parts.next() == Some("socket") {
                    if let Some(p) = parts.find_map(|p| p.strip_prefix("path=")) {
                        out.sockets.push(PathBuf::from(p));
                    }
                }
            }
            _ => {}
        }
    }
    out.dom = dom.ok_or_else(|| bad("no -xen-domid".into()))?;
    Ok(out)
}

/// Be the device model `args` describe on the simulated host in `dir`, until the domain
/// is gone (or a signal ends the process). An error is a failure to start.
pub fn run(dir: &Path, args: &[String]) -> Result<(), SimError> {
    let a = parse_args(args)?;
    let mut faults = Faults::new(fault::from_env()?);
    if faults.refuses("dm_start") {
        eprintln!("sim-device-model: failing at start (RXL_SIM_FAIL dm_start)");
        return Err(SimError::Config(
            "sim-device-model: failed at start as RXL_SIM_FAIL asks".into(),
        ));
    }
    // This handle injects nothing: the faults above are the device model's.
    let host = SimHost::open(dir)?.with_faults("")?;
    let dom = DomId(a.dom);
    let gone = |h: &SimHost| -> Result<bool, SimError> {
        Ok(h.domain_info(dom)
            .map_err(|e| SimError::Config(e.to_string()))?
            .is_none())
    };
    if gone(&host)? {
        return Err(SimError::Config(format!(
            "sim-device-model: domain {} does not exist",
            a.dom
        )));
    }
    // A real pseudo-terminal for each `-serial pty`, as QEMU opens one (kept open for
    // the process's life).
    let mut ptys = Vec::new();
    let mut chardevs = Vec::new();
    for (i, kind) in a.serials.iter().enumerate() {
        if kind != "pty" {
            continue;
        }
        let pty = nix::pty::openpty(None, None)
            .map_err(|e| SimError::Config(format!("sim-device-model: openpty: {e}")))?;
        let path = nix::unistd::ttyname(&pty.slave)
            .map_err(|e| SimError::Config(format!("sim-device-model: ttyname: {e}")))?;
        chardevs.push(serde_json::json!({
            "label": format!("serial{i}"),
            "filename": format!("pty:{}", path.display()),
            "frame-opened": false,
        }));
        ptys.push(pty);
    }
    let chardevs = serde_json::Value::Array(chardevs);
    for p in &a.sockets {
        let l = UnixListener::bind(p).map_err(|source| SimError::Io {
            path: p.clone(),
            source,
        })?;
        let answers = QmpAnswers {
            chardevs: chardevs.clone(),
            vnc: query_vnc(a.vnc.as_deref()),
        };
        std::thread::spawn(move || {
            serve_qmp(&l, &answers, &|| {
                eprintln!("sim-device-model: quitting (QMP quit)");
                std::process::exit(0);
            })
        });
    }
    let xs_err = |e: xen_host::Error| SimError::Config(format!("sim-device-model: {e}"));
    let qdisks = format!("/local/domain/0/backend/qdisk/{}", a.dom);
    let mut served = 0;
    for n in host
        .directory(TxId::NONE, &qdisks)
        .map_err(xs_err)?
        .unwrap_or_default()
    {
        let be = format!("{qdisks}/{n}");
        let read = |k: &str| -> Result<Option<String>, SimError> {
            Ok(host
                .read(TxId::NONE, &format!("{be}/{k}"))
                .map_err(xs_err)?
                .map(|v| String::from_utf8_lossy(&v).trim().to_owned()))
        };
        if read("state")?.as_deref() == Some("1") && read("online")?.as_deref() == Some("1") {
            host.write(TxId::NONE, &format!("{be}/state"), b"2")
                .map_err(xs_err)?;
            served += 1;
        }
    }
    eprintln!(
        "sim-device-model: domain {} ({}), machine {}: {served} qdisk backend(s) in InitWait",
        a.dom,
        a.name.as_deref().unwrap_or("?"),
        a.machine.as_deref().unwrap_or("?")
    );
    let token = format!("sim-dm-{}", std::process::id());
    host.watch("@releaseDomain", &token).map_err(xs_err)?;
    if faults.refuses("dm_confirm") {
        eprintln!("sim-device-model: never confirming (RXL_SIM_FAIL dm_confirm)");
    } else {
        host.write(
            TxId::NONE,
            &format!("/local/domain/0/device-model/{}/state", a.dom),
            b"running",
        )
        .map_err(xs_err)?;
    }
    while !gone(&host)? {
        host.next_watch_event(None).map_err(xs_err)?;
    }
    eprintln!("sim-device-model: domain {} is gone: exiting", a.dom);
    drop(ptys);
    for p in &a.sockets {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

/// Answer QMP on `l`, one connection after the other: the greeting, `qmp_capabilities`,
/// `query-chardev` and `query-vnc` (from `answers`), `quit` (answered, then `on_quit`
/// runs; the simulated device model exits there); any other command gets
/// `CommandNotFound`. Public so that in-process tests can stand in for a device model
/// with the same answers.
pub fn serve_qmp(l: &UnixListener, answers: &QmpAnswers, on_quit: &dyn Fn()) {
    use std::io::{BufRead as _, Write as _};
    for conn in l.incoming() {
        let Ok(conn) = conn else { continue };
        let Ok(mut w) = conn.try_clone() else {
            continue;
        };
        let greeting = "{\"QMP\": {\"version\": {\"package\": \"sim\"}, \"capabilities\": []}}\r\n";
        if w.write_all(greeting.as_bytes()).is_err() {
            continue;
        }
        for line in std::io::BufReader::new(conn).lines() {
            let Ok(line) = line else { break };
            let Ok(req) = serde_json::from_str::<serde_json::Value>(&line) else {
                break;
            };
            let id = req.get("id").cloned().unwrap_or(serde_json::Value::Null);
            let answer = match req.get("execute").and_then(serde_json::Value::as_str) {
                Some("qmp_capabilities") => serde_json::json!({"return": {}, "id": id}),
                Some("query-chardev") => {
                    serde_json::json!({"return": answers.chardevs, "id": id})
                }
                Some("query-vnc") => serde_json::json!({"return": answers.vnc, "id": id}),
                Some("quit") => {
                    let answer = serde_json::json!({"return": {}, "id": id});
                    let _ = w.write_all(format!("{answer}\r\n").as_bytes());
                    on_quit();
                    break;
                }
                _ => {
                    serde_json::json!({"error": {"class": "CommandNotFound", "desc": "not simulated"}, "id": id})
                }
            };
            if w.write_all(format!("{answer}\r\n").as_bytes()).is_err() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_qemu_s_arguments() {
        let args: Vec<String> = "-xen-domid 7 -no-shutdown -chardev socket,id=libxl-cmd,path=/r/qmp-libxl-7,server=on,wait=off -mon chardev=libxl-cmd,mode=control -name web -serial pty -machine xenpv -m 512"
            .split(' ')
            .map(String::from)
            .collect();
        let a = parse_args(&args).expect("parsed");
        assert_eq!(
            a,
            DmArgs {
                dom: 7,
                name: Some("web".into()),
                machine: Some("xenpv".into()),
                sockets: vec![PathBuf::from("/r/qmp-libxl-7")],
                serials: vec!["pty".into()],
                vnc: None,
            }
        );
        assert!(parse_args(&["-name".into(), "x".into()]).is_err());
        assert!(parse_args(&["-xen-domid".into(), "x".into()]).is_err());
        assert!(parse_args(&["-xen-domid".into()]).is_err());
    }

    #[test]
    fn query_vnc_answers_from_the_vnc_argument() {
        let on = query_vnc(Some("127.0.0.1:2,to=99"));
        assert_eq!(on["enabled"], true);
        assert_eq!(on["host"], "127.0.0.1");
        assert_eq!(on["service"], "5902");
        for off in [None, Some("none"), Some("127.0.0.1:x")] {
            assert_eq!(query_vnc(off)["enabled"], false, "{off:?}");
        }
    }
}
