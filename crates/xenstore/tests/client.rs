//! `XsClient` against the scripted xenstored in `fake/`.

mod fake;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake::{FakeXenstored, Fault};
use xen_host::{Access, DomId, Errno, Gfn, Perm, Store, TxId, WatchEvent};
use xenstore::wire::{Header, MsgType, HEADER_LEN};
use xenstore::{Transport, XsClient, XsError};

const SHORT: Duration = Duration::from_millis(50);
const LONG: Duration = Duration::from_secs(5);

fn setup() -> (FakeXenstored, XsClient) {
    let server = FakeXenstored::start();
    let xs = XsClient::open_path(server.path()).expect("connect to the fake xenstored");
    (server, xs)
}

fn frame(kind: MsgType, req_id: u32, tx_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Header {
        kind: kind.code(),
        req_id,
        tx_id,
        len: payload.len() as u32,
    }
    .encode()
    .to_vec();
    out.extend_from_slice(payload);
    out
}

fn kinds(server: &FakeXenstored) -> Vec<u32> {
    server
        .requests()
        .iter()
        .map(|r| Header::decode(r).expect("logged header").kind)
        .collect()
}

fn ev(path: &str, token: &str) -> WatchEvent {
    WatchEvent {
        path: path.into(),
        token: token.into(),
    }
}

#[test]
fn opens_the_socket_transport() {
    let (server, xs) = setup();
    assert_eq!(xs.transport(), Transport::Socket);
    assert_eq!(xs.path(), server.path());
}

#[test]
fn read_write_mkdir_rm_directory() {
    let (server, xs) = setup();
    assert_eq!(xs.read(TxId::NONE, "/tool/a").unwrap(), None);
    xs.write(TxId::NONE, "/tool/a/b", b"hello\0world").unwrap();
    assert_eq!(
        xs.read(TxId::NONE, "/tool/a/b").unwrap().as_deref(),
        Some(&b"hello\0world"[..])
    );
    assert_eq!(
        server.value("/tool/a/b").as_deref(),
        Some(&b"hello\0world"[..])
    );
    // Parents were created empty.
    assert_eq!(xs.read(TxId::NONE, "/tool/a").unwrap(), Some(Vec::new()));
    xs.write(TxId::NONE, "/tool/a/empty", b"").unwrap();
    assert_eq!(
        xs.read(TxId::NONE, "/tool/a/empty").unwrap(),
        Some(Vec::new())
    );

    xs.mkdir(TxId::NONE, "/tool/a/dir").unwrap();
    xs.mkdir(TxId::NONE, "/tool/a/dir").unwrap();
    assert_eq!(
        xs.directory(TxId::NONE, "/tool/a").unwrap(),
        Some(vec!["b".to_string(), "dir".into(), "empty".into()])
    );
    assert_eq!(
        xs.directory(TxId::NONE, "/tool/a/dir").unwrap(),
        Some(Vec::new())
    );
    assert_eq!(xs.directory(TxId::NONE, "/tool/nope").unwrap(), None);

    xs.rm(TxId::NONE, "/tool/a").unwrap();
    assert_eq!(xs.read(TxId::NONE, "/tool/a/b").unwrap(), None);
    assert_eq!(server.value("/tool/a/b"), None);
    // Removing what is not there is fine, even without a parent.
    xs.rm(TxId::NONE, "/tool/a").unwrap();
    xs.rm(TxId::NONE, "/tool/x/y/z").unwrap();

    // A relative path is relative to the connection's home, /local/domain/0.
    xs.write(TxId::NONE, "rel/key", b"1").unwrap();
    assert_eq!(
        server.value("/local/domain/0/rel/key").as_deref(),
        Some(&b"1"[..])
    );
}

#[test]
fn exact_request_bytes() {
    let (server, xs) = setup();
    xs.write(TxId::NONE, "/tool/k", b"val").unwrap();
    xs.read(TxId::NONE, "/tool/k").unwrap();
    xs.watch("/tool", "tok").unwrap();
    let tx = xs.transaction_start().unwrap();
    xs.transaction_end(tx, false).unwrap();
    xs.introduce(DomId(5), Gfn(0xfeffc), 3).unwrap();
    let log = server.requests();
    assert_eq!(log[0], frame(MsgType::Write, 1, 0, b"/tool/k\0val"));
    // Spelled out once, byte by byte, in native (x86: little-endian) order.
    if cfg!(target_endian = "little") {
        assert_eq!(
            log[0][..HEADER_LEN],
            [11, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 11, 0, 0, 0]
        );
    }
    assert_eq!(log[1], frame(MsgType::Read, 2, 0, b"/tool/k\0"));
    assert_eq!(log[2], frame(MsgType::Watch, 3, 0, b"/tool\0tok\0"));
    assert_eq!(log[3], frame(MsgType::TransactionStart, 4, 0, b"\0"));
    assert_eq!(log[4], frame(MsgType::TransactionEnd, 5, tx.0, b"F\0"));
    assert_eq!(
        log[5],
        frame(MsgType::Introduce, 6, 0, b"5\x001044476\x003\x00")
    );
}

#[test]
fn permissions() {
    let (server, xs) = setup();
    xs.write(TxId::NONE, "/tool/p", b"x").unwrap();
    assert_eq!(
        xs.get_perms(TxId::NONE, "/tool/p").unwrap(),
        Some(vec![Perm {
            domid: DomId(0),
            access: Access::None
        }])
    );
    let perms = vec![
        Perm {
            domid: DomId(3),
            access: Access::None,
        },
        Perm {
            domid: DomId(0),
            access: Access::Read,
        },
        Perm {
            domid: DomId(7),
            access: Access::Both,
        },
    ];
    xs.set_perms(TxId::NONE, "/tool/p", &perms).unwrap();
    assert_eq!(
        xs.get_perms(TxId::NONE, "/tool/p").unwrap(),
        Some(perms.clone())
    );
    assert_eq!(
        server.requests().last().unwrap(),
        &frame(MsgType::GetPerms, 4, 0, b"/tool/p\0")
    );
    // Children inherit their parent's permissions.
    xs.write(TxId::NONE, "/tool/p/child", b"").unwrap();
    assert_eq!(
        xs.get_perms(TxId::NONE, "/tool/p/child").unwrap(),
        Some(perms)
    );
    assert_eq!(xs.get_perms(TxId::NONE, "/tool/none").unwrap(), None);

    let sent = server.requests().len();
    let err = xs.set_perms(TxId::NONE, "/tool/p", &[]).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EINVAL));
    assert_eq!(server.requests().len(), sent, "an empty list is not sent");
    let err = xs
        .set_perms(
            TxId::NONE,
            "/tool/none",
            &[Perm {
                domid: DomId(0),
                access: Access::Read,
            }],
        )
        .unwrap_err();
    assert_eq!(err.errno(), Some(Errno::ENOENT));
}

#[test]
fn transactions_commit_abort_and_conflict() {
    let (server, xs) = setup();
    let tx = xs.transaction_start().unwrap();
    assert_ne!(tx, TxId::NONE);
    xs.write(tx, "/tool/t", b"1").unwrap();
    assert_eq!(xs.read(tx, "/tool/t").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(xs.read(TxId::NONE, "/tool/t").unwrap(), None);
    assert!(xs.transaction_end(tx, true).unwrap());
    assert_eq!(server.value("/tool/t").as_deref(), Some(&b"1"[..]));

    let tx = xs.transaction_start().unwrap();
    xs.write(tx, "/tool/t", b"2").unwrap();
    assert!(xs.transaction_end(tx, false).unwrap());
    assert_eq!(server.value("/tool/t").as_deref(), Some(&b"1"[..]));

    // A commit that conflicts reports false, and the change is not made.
    server.force_conflicts(1);
    let tx = xs.transaction_start().unwrap();
    xs.write(tx, "/tool/t", b"3").unwrap();
    assert!(!xs.transaction_end(tx, true).unwrap());
    assert_eq!(server.value("/tool/t").as_deref(), Some(&b"1"[..]));

    // A real conflict: another client changes the store during the transaction.
    let tx = xs.transaction_start().unwrap();
    xs.write(tx, "/tool/t", b"4").unwrap();
    server.external_write("/tool/other", b"x");
    assert!(!xs.transaction_end(tx, true).unwrap());

    // The shared helper retries until the commit goes through.
    server.force_conflicts(2);
    let mut runs = 0;
    let got = xen_host::transaction(&xs, |tx| {
        runs += 1;
        xs.write(tx, "/tool/t", format!("run{runs}").as_bytes())?;
        Ok(runs)
    })
    .unwrap();
    assert_eq!(got, 3);
    assert_eq!(server.value("/tool/t").as_deref(), Some(&b"run3"[..]));

    // An unknown transaction is an error, not a conflict.
    let err = xs.transaction_end(TxId(999), true).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::ENOENT));
    let err = xs.transaction_end(TxId::NONE, true).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EINVAL));
}

#[test]
fn watch_fires_initially_then_on_changes() {
    let (server, xs) = setup();
    xs.watch("/tool/w", "tok").unwrap();
    // xenstored's initial event.
    assert_eq!(
        xs.next_watch_event(Some(LONG)).unwrap(),
        Some(ev("/tool/w", "tok"))
    );
    assert_eq!(xs.next_watch_event(Some(SHORT)).unwrap(), None);

    xs.write(TxId::NONE, "/tool/w/a", b"1").unwrap();
    // The event came in before the write's reply and was queued.
    assert_eq!(xs.pending_events(), 1);
    xs.write(TxId::NONE, "/tool/elsewhere", b"1").unwrap();
    assert_eq!(
        xs.next_watch_event(Some(LONG)).unwrap(),
        Some(ev("/tool/w/a", "tok"))
    );
    assert_eq!(xs.next_watch_event(Some(SHORT)).unwrap(), None);

    // A change by another client arrives while we wait.
    let other = XsClient::open_path(server.path()).unwrap();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        other.write(TxId::NONE, "/tool/w", b"2").unwrap();
    });
    let start = Instant::now();
    assert_eq!(
        xs.next_watch_event(None).unwrap(),
        Some(ev("/tool/w", "tok"))
    );
    assert!(start.elapsed() >= Duration::from_millis(20));
    writer.join().unwrap();

    // Transactions fire at commit.
    let tx = xs.transaction_start().unwrap();
    xs.write(tx, "/tool/w/b", b"3").unwrap();
    assert_eq!(xs.pending_events(), 0);
    assert!(xs.transaction_end(tx, true).unwrap());
    assert_eq!(
        xs.next_watch_event(Some(LONG)).unwrap(),
        Some(ev("/tool/w/b", "tok"))
    );

    xs.unwatch("/tool/w", "tok").unwrap();
    xs.write(TxId::NONE, "/tool/w/c", b"4").unwrap();
    assert_eq!(xs.next_watch_event(Some(SHORT)).unwrap(), None);
    let err = xs.unwatch("/tool/w", "tok").unwrap_err();
    assert_eq!(err.errno(), Some(Errno::ENOENT));
}

#[test]
fn events_between_replies_are_queued_in_order() {
    let (server, xs) = setup();
    xs.write(TxId::NONE, "/tool/v", b"value").unwrap();
    server.inject(
        Some(MsgType::Read),
        Fault::EventFirst("/tool/one".into(), "t1".into()),
    );
    server.inject(
        Some(MsgType::Read),
        Fault::EventFirst("/tool/two".into(), "t2".into()),
    );
    assert_eq!(
        xs.read(TxId::NONE, "/tool/v").unwrap().as_deref(),
        Some(&b"value"[..])
    );
    assert_eq!(
        xs.read(TxId::NONE, "/tool/v").unwrap().as_deref(),
        Some(&b"value"[..])
    );
    assert_eq!(xs.pending_events(), 2);
    assert_eq!(
        xs.next_watch_event(Some(SHORT)).unwrap(),
        Some(ev("/tool/one", "t1"))
    );
    assert_eq!(
        xs.next_watch_event(Some(SHORT)).unwrap(),
        Some(ev("/tool/two", "t2"))
    );
    assert_eq!(xs.next_watch_event(Some(Duration::ZERO)).unwrap(), None);
}

#[test]
fn duplicate_watch_and_reset_watches() {
    let (_server, xs) = setup();
    xs.watch("/tool", "a").unwrap();
    let err = xs.watch("/tool", "a").unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EEXIST));
    xs.reset_watches().unwrap();
    assert_eq!(xs.pending_events(), 0, "queued events are dropped too");
    xs.write(TxId::NONE, "/tool/x", b"").unwrap();
    assert_eq!(xs.next_watch_event(Some(SHORT)).unwrap(), None);
    // Same watch again: registered afresh.
    xs.watch("/tool", "a").unwrap();
    assert_eq!(
        xs.next_watch_event(Some(LONG)).unwrap(),
        Some(ev("/tool", "a"))
    );
}

#[test]
fn domain_calls() {
    let (server, xs) = setup();
    xs.watch("@introduceDomain", "intro").unwrap();
    xs.watch("@releaseDomain", "rel").unwrap();
    assert_eq!(
        xs.next_watch_event(Some(LONG)).unwrap(),
        Some(ev("@introduceDomain", "intro"))
    );
    assert_eq!(
        xs.next_watch_event(Some(LONG)).unwrap(),
        Some(ev("@releaseDomain", "rel"))
    );

    assert!(!xs.is_domain_introduced(DomId(4)).unwrap());
    xs.introduce(DomId(4), Gfn(0xfeffc), 7).unwrap();
    assert_eq!(server.introduced(), vec![(4, 0xfeffc, 7)]);
    assert!(xs.is_domain_introduced(DomId(4)).unwrap());
    assert!(xs.is_domain_introduced(DomId::DOM0).unwrap());
    assert_eq!(
        xs.next_watch_event(Some(LONG)).unwrap(),
        Some(ev("@introduceDomain", "intro"))
    );
    assert_eq!(xs.get_domain_path(DomId(4)).unwrap(), "/local/domain/4");
    xs.resume(DomId(4)).unwrap();
    xs.set_target(DomId(5), DomId(4)).unwrap();

    xs.release(DomId(4)).unwrap();
    assert!(!xs.is_domain_introduced(DomId(4)).unwrap());
    assert_eq!(
        xs.next_watch_event(Some(LONG)).unwrap(),
        Some(ev("@releaseDomain", "rel"))
    );
    let err = xs.release(DomId(4)).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::ENOENT));
    assert!(err.to_string().contains("xs_release_domain 4"), "{err}");

    assert_eq!(xs.control(&["print", "hello"]).unwrap(), b"OK\0");
    let log = server.requests();
    assert!(
        log.contains(&frame(MsgType::Release, 10, 0, b"4\0")),
        "{log:?}"
    );
    assert!(log.contains(&frame(MsgType::SetTarget, 9, 0, b"5\x004\x00")));
}

#[test]
fn long_directories_use_directory_part() {
    let (server, xs) = setup();
    let names: Vec<String> = (0..200)
        .map(|i| format!("child-with-a-long-name-{i:04}"))
        .collect();
    let tx = xs.transaction_start().unwrap();
    for n in &names {
        xs.mkdir(tx, &format!("/tool/big/{n}")).unwrap();
    }
    assert!(xs.transaction_end(tx, true).unwrap());
    server.clear_requests();
    let mut got = xs.directory(TxId::NONE, "/tool/big").unwrap().unwrap();
    got.sort();
    assert_eq!(got, names);
    let kinds = kinds(&server);
    assert_eq!(kinds[0], MsgType::Directory.code());
    let parts = kinds
        .iter()
        .filter(|k| **k == MsgType::DirectoryPart.code())
        .count();
    // 200 names of 29 bytes: 5800 bytes, two chunks.
    assert_eq!(parts, 2, "{kinds:?}");
    let log = server.requests();
    assert_eq!(log[1][HEADER_LEN..], b"/tool/big\x000\x00"[..]);
}

#[test]
fn error_reply_names_op_and_errno_and_leaves_connection_usable() {
    let (server, xs) = setup();
    server.inject(Some(MsgType::Read), Fault::Error("EACCES"));
    let err = xs.read(TxId::NONE, "/tool/secret").unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EACCES));
    assert_eq!(err.op(), "xs_read /tool/secret");
    assert_eq!(
        err.to_string(),
        "xs_read /tool/secret: EACCES (permission denied)"
    );
    xs.write(TxId::NONE, "/tool/ok", b"1").unwrap();

    server.inject(None, Fault::Error("EWEIRD"));
    let err = xs.write(TxId::NONE, "/tool/ok", b"2").unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EIO));
    assert!(err.to_string().contains("EWEIRD"), "{err}");
    assert_eq!(
        xs.read(TxId::NONE, "/tool/ok").unwrap().as_deref(),
        Some(&b"1"[..])
    );
}

#[test]
fn short_reads_are_reassembled() {
    let (server, xs) = setup();
    xs.write(TxId::NONE, "/tool/s", &[b'z'; 300]).unwrap();
    server.inject(Some(MsgType::Read), Fault::ShortReads);
    assert_eq!(
        xs.read(TxId::NONE, "/tool/s").unwrap(),
        Some(vec![b'z'; 300])
    );
    xs.watch("/tool/s", "t").unwrap();
    server.inject(Some(MsgType::Write), Fault::ShortReads);
    xs.write(TxId::NONE, "/tool/s", b"x").unwrap();
    assert_eq!(
        xs.next_watch_event(Some(LONG)).unwrap(),
        Some(ev("/tool/s", "t"))
    );
}

#[test]
fn dropped_connection_is_a_clear_error_and_stays_broken() {
    let (server, xs) = setup();
    server.inject(Some(MsgType::Write), Fault::Drop);
    let err = xs.write(TxId::NONE, "/tool/d", b"1").unwrap_err();
    assert_eq!(err.errno(), Some(Errno::ECONNRESET));
    assert!(err.to_string().contains("closed by xenstored"), "{err}");
    let err = xs.read(TxId::NONE, "/tool/d").unwrap_err();
    assert_eq!(err.errno(), Some(Errno::ECONNRESET));
    assert!(err.to_string().contains("open a new client"), "{err}");
    let err = xs.next_watch_event(Some(SHORT)).unwrap_err();
    assert!(err.to_string().contains("earlier failure"), "{err}");
    // A new client works.
    let xs = XsClient::open_path(server.path()).unwrap();
    xs.write(TxId::NONE, "/tool/d", b"1").unwrap();
}

#[test]
fn oversize_reply_is_refused() {
    let (server, xs) = setup();
    server.inject(Some(MsgType::Read), Fault::Oversize(4097));
    let err = xs.read(TxId::NONE, "/tool").unwrap_err();
    assert_eq!(err.errno(), None);
    assert!(err.to_string().contains("4097"), "{err}");
    assert!(err.to_string().contains("XENSTORE_PAYLOAD_MAX"), "{err}");
    // The stream is out of step: the connection is closed.
    let err = xs.read(TxId::NONE, "/tool").unwrap_err();
    assert!(err.to_string().contains("earlier failure"), "{err}");

    // Exactly the maximum is fine.
    let xs = XsClient::open_path(server.path()).unwrap();
    server.inject(Some(MsgType::Read), Fault::Oversize(4096));
    assert_eq!(
        xs.read(TxId::NONE, "/tool").unwrap(),
        Some(vec![b'x'; 4096])
    );
}

#[test]
fn mismatched_reply_and_bad_event_are_protocol_errors() {
    let (server, xs) = setup();
    server.inject(Some(MsgType::Read), Fault::WrongReqId);
    let err = xs.read(TxId::NONE, "/tool").unwrap_err();
    assert!(
        err.to_string().contains("while waiting for request"),
        "{err}"
    );

    let xs = XsClient::open_path(server.path()).unwrap();
    server.inject(Some(MsgType::Read), Fault::BadEvent);
    let err = xs.read(TxId::NONE, "/tool").unwrap_err();
    assert!(err.to_string().contains("WATCH_EVENT"), "{err}");
}

#[test]
fn reply_timeout_closes_the_connection() {
    let (server, xs) = setup();
    xs.set_reply_timeout(Some(Duration::from_millis(50)));
    server.inject(
        Some(MsgType::Read),
        Fault::Stall(Duration::from_millis(400)),
    );
    let err = xs.read(TxId::NONE, "/tool").unwrap_err();
    assert_eq!(err.errno(), Some(Errno::ETIMEDOUT));
    let err = xs.read(TxId::NONE, "/tool").unwrap_err();
    assert_eq!(err.errno(), Some(Errno::ECONNRESET));
}

#[test]
fn bad_arguments_are_refused_before_sending() {
    let (server, xs) = setup();
    xs.write(TxId::NONE, "/tool/x", b"").unwrap();
    let sent = server.requests().len();
    let cases: Vec<(xen_host::Error, Errno)> = vec![
        (
            xs.read(TxId::NONE, "/tool/a\0b").unwrap_err(),
            Errno::EINVAL,
        ),
        (xs.write(TxId::NONE, "", b"").unwrap_err(), Errno::EINVAL),
        (
            xs.write(TxId::NONE, "/tool/", b"").unwrap_err(),
            Errno::EINVAL,
        ),
        (xs.mkdir(TxId::NONE, "/tool//x").unwrap_err(), Errno::EINVAL),
        (
            xs.rm(TxId::NONE, "/tool/sp ace").unwrap_err(),
            Errno::EINVAL,
        ),
        (
            xs.read(TxId::NONE, &format!("/{}", "a".repeat(3072)))
                .unwrap_err(),
            Errno::EINVAL,
        ),
        (
            xs.write(TxId::NONE, "/tool/x", &[0; 4096]).unwrap_err(),
            Errno::E2BIG,
        ),
        (xs.watch("/tool", "t\0k").unwrap_err(), Errno::EINVAL),
        (xs.directory(TxId::NONE, "a\0").unwrap_err(), Errno::EINVAL),
    ];
    for (err, errno) in &cases {
        assert_eq!(err.errno(), Some(*errno), "{err}");
    }
    assert!(cases[0].0.to_string().contains("NUL"), "{}", cases[0].0);
    assert!(cases[6].0.to_string().contains("4088"), "{}", cases[6].0);
    assert_eq!(server.requests().len(), sent, "nothing was sent");
    // The largest value that fits goes through.
    xs.write(TxId::NONE, "/tool/x", &[7; 4096 - 8]).unwrap();
    assert_eq!(server.value("/tool/x").map(|v| v.len()), Some(4088));
}

#[test]
fn shared_between_threads() {
    let (server, xs) = setup();
    let xs = Arc::new(xs);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let xs = Arc::clone(&xs);
            std::thread::spawn(move || {
                for i in 0..50 {
                    let path = format!("/tool/t{t}/k{i}");
                    xs.write(TxId::NONE, &path, path.as_bytes()).unwrap();
                    assert_eq!(
                        xs.read(TxId::NONE, &path).unwrap().as_deref(),
                        Some(path.as_bytes())
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        server.value("/tool/t3/k49").as_deref(),
        Some(&b"/tool/t3/k49"[..])
    );
    assert_eq!(
        xs.directory(TxId::NONE, "/tool/t2").unwrap().unwrap().len(),
        50
    );
}

#[test]
fn open_reports_every_path_tried() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("nope-a");
    let b = dir.path().join("nope-b");
    let err = XsClient::open_first(&[a.clone(), b.clone()]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&a.display().to_string()), "{text}");
    assert!(text.contains(&b.display().to_string()), "{text}");
    assert!(text.contains("XENSTORED_PATH"), "{text}");
    assert!(matches!(err, XsError::Open { .. }));

    let server = FakeXenstored::start();
    let xs = XsClient::open_first(&[a, server.path().to_path_buf()]).unwrap();
    assert_eq!(xs.path(), server.path());
    xs.mkdir(TxId::NONE, "/tool/opened").unwrap();
}

#[test]
fn waiting_for_an_event_does_not_block_requests() {
    let (_server, xs) = setup();
    let xs = Arc::new(xs);
    xs.watch("/tool/flag", "f").unwrap();
    assert_eq!(
        xs.next_watch_event(Some(LONG)).unwrap(),
        Some(ev("/tool/flag", "f"))
    );
    let waiter = {
        let xs = Arc::clone(&xs);
        // If waiting held the connection, the requests below would only run after this
        // gave up, and it would return None.
        std::thread::spawn(move || xs.next_watch_event(Some(Duration::from_secs(20))))
    };
    std::thread::sleep(Duration::from_millis(50));
    for i in 0..20 {
        xs.write(TxId::NONE, &format!("/tool/other/{i}"), b"x")
            .unwrap();
    }
    xs.write(TxId::NONE, "/tool/flag", b"up").unwrap();
    let got = waiter.join().unwrap().unwrap();
    assert_eq!(got, Some(ev("/tool/flag", "f")));
    assert_eq!(xs.next_watch_event(Some(SHORT)).unwrap(), None);
}

#[test]
fn initial_event_read_with_its_reply_is_queued() {
    let (_server, xs) = setup();
    xs.watch("/tool/i", "t").unwrap();
    // The fake sends the initial event right behind the reply; whether it was read with
    // the reply or not, it is handed out exactly once.
    assert_eq!(
        xs.next_watch_event(Some(LONG)).unwrap(),
        Some(ev("/tool/i", "t"))
    );
    assert_eq!(xs.next_watch_event(Some(SHORT)).unwrap(), None);
}

#[test]
fn a_failure_wakes_a_thread_waiting_for_events() {
    let (server, xs) = setup();
    let xs = Arc::new(xs);
    let waiter = {
        let xs = Arc::clone(&xs);
        std::thread::spawn(move || xs.next_watch_event(None))
    };
    std::thread::sleep(Duration::from_millis(50));
    // This request's reply is out of step: the client closes the connection, and the
    // waiting thread must learn of it rather than wait forever.
    server.inject(Some(MsgType::Read), Fault::WrongReqId);
    assert!(xs.read(TxId::NONE, "/tool").is_err());
    let err = waiter.join().unwrap().unwrap_err();
    assert_eq!(err.errno(), Some(Errno::ECONNRESET), "{err}");
}

#[test]
fn reply_of_another_type_is_a_protocol_error() {
    let (server, xs) = setup();
    server.inject(Some(MsgType::Read), Fault::ReplyAs(MsgType::Write.code()));
    let err = xs.read(TxId::NONE, "/tool").unwrap_err();
    assert!(err.to_string().contains("reply of type 11"), "{err}");
    let xs = XsClient::open_path(server.path()).unwrap();
    server.inject(Some(MsgType::Read), Fault::ReplyAs(0xffff));
    let err = xs.read(TxId::NONE, "/tool").unwrap_err();
    assert!(err.to_string().contains("65535"), "{err}");
}

#[test]
fn truncated_reply_then_close_is_a_closed_connection() {
    let (server, xs) = setup();
    for cut in [0, 7, HEADER_LEN, HEADER_LEN + 2] {
        let xs2 = XsClient::open_path(server.path()).unwrap();
        server.inject(Some(MsgType::Read), Fault::Truncate(cut));
        xs.write(TxId::NONE, "/tool/t", b"abcdef").unwrap();
        let err = xs2.read(TxId::NONE, "/tool/t").unwrap_err();
        assert_eq!(err.errno(), Some(Errno::ECONNRESET), "cut {cut}: {err}");
    }
}

#[test]
fn stray_message_while_idle_is_reported_by_next_watch_event() {
    let (server, xs) = setup();
    // A READ reply nobody asked for, after the real reply.
    let stray = frame(MsgType::Read, 77, 0, b"?");
    server.inject(Some(MsgType::Write), Fault::Trailing(stray));
    xs.write(TxId::NONE, "/tool/s", b"1").unwrap();
    let err = xs.next_watch_event(Some(LONG)).unwrap_err();
    assert!(
        err.to_string().contains("no request was outstanding"),
        "{err}"
    );
}

#[test]
fn event_right_behind_a_reply_is_kept() {
    let (server, xs) = setup();
    let event = frame(MsgType::WatchEvent, 0, 0, b"/tool/late\0tok\0");
    server.inject(Some(MsgType::Write), Fault::Trailing(event));
    xs.write(TxId::NONE, "/tool/s", b"1").unwrap();
    assert_eq!(
        xs.read(TxId::NONE, "/tool/s").unwrap().as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(
        xs.next_watch_event(Some(LONG)).unwrap(),
        Some(ev("/tool/late", "tok"))
    );
}

#[test]
fn request_count_is_the_number_of_requests_the_server_saw() {
    let (server, xs) = setup();
    assert_eq!(xs.request_count(), 0);
    xs.write(TxId::NONE, "/tool/n", b"1").unwrap();
    assert_eq!(
        xs.read(TxId::NONE, "/tool/n").unwrap().as_deref(),
        Some(&b"1"[..])
    );
    let tx = xs.transaction_start().unwrap();
    xs.mkdir(tx, "/tool/m").unwrap();
    assert!(xs.transaction_end(tx, true).unwrap());
    assert_eq!(xs.request_count(), server.requests().len() as u64);
    assert_eq!(xs.request_count(), 5);
}

#[test]
fn apply_ops_sends_a_window_of_requests_before_reading_replies() {
    use xen_host::StoreOp;
    let (server, xs) = setup();
    let perms = [Perm {
        domid: DomId(3),
        access: Access::Read,
    }];
    let paths: Vec<String> = (0..20).map(|i| format!("/tool/batch/n{i}")).collect();
    let mut ops: Vec<StoreOp<'_>> = paths.iter().map(|p| StoreOp::Write(p, b"v")).collect();
    ops.push(StoreOp::Mkdir("/tool/batch/dir"));
    ops.push(StoreOp::SetPerms("/tool/batch/dir", &perms));
    xs.apply_ops(TxId::NONE, &ops).unwrap();
    for p in &paths {
        assert_eq!(server.value(p).as_deref(), Some(&b"v"[..]), "{p}");
    }
    assert_eq!(
        xs.get_perms(TxId::NONE, "/tool/batch/dir").unwrap(),
        Some(perms.to_vec())
    );
    assert_eq!(xs.request_count(), 23);

    // Removals in a window: of a node (gone afterwards) and of a path whose parent does
    // not exist either (no failure).
    xs.apply_ops(
        TxId::NONE,
        &[
            StoreOp::Rm("/tool/batch/n0"),
            StoreOp::Rm("/no/such/parent/n"),
        ],
    )
    .unwrap();
    assert_eq!(server.value("/tool/batch/n0"), None);
    assert_eq!(server.value("/tool/batch/n1").as_deref(), Some(&b"v"[..]));
    assert_eq!(xs.request_count(), 25);

    // A failing request in a window: its error is the one returned, named after its
    // operation; the requests sent with it were carried out (they were sent before its
    // reply was read), those of later windows were not; the connection stays usable.
    server.inject(Some(MsgType::SetPerms), Fault::Error("EACCES"));
    let later: Vec<String> = (0..20).map(|i| format!("/tool/later/n{i}")).collect();
    let mut ops = vec![
        StoreOp::Write("/tool/w/a", b"1"),
        StoreOp::SetPerms("/tool/w/a", &perms),
    ];
    ops.extend(later.iter().map(|p| StoreOp::Write(p, b"2")));
    let err = xs.apply_ops(TxId::NONE, &ops).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EACCES));
    assert_eq!(err.op(), "xs_set_permissions /tool/w/a");
    assert_eq!(server.value("/tool/later/n13").as_deref(), Some(&b"2"[..]));
    assert_eq!(server.value("/tool/later/n14"), None);
    xs.write(TxId::NONE, "/tool/ok", b"1").unwrap();
    assert_eq!(server.value("/tool/ok").as_deref(), Some(&b"1"[..]));
}

#[test]
fn apply_ops_keeps_watch_events_that_arrive_between_replies() {
    use xen_host::StoreOp;
    let (_server, xs) = setup();
    xs.watch("/tool/watched", "tok").unwrap();
    assert_eq!(
        xs.next_watch_event(Some(LONG)).unwrap(),
        Some(ev("/tool/watched", "tok"))
    );
    let ops = [
        StoreOp::Write("/tool/watched/a", b"1"),
        StoreOp::Write("/tool/other", b"1"),
        StoreOp::Write("/tool/watched/b", b"1"),
    ];
    xs.apply_ops(TxId::NONE, &ops).unwrap();
    assert_eq!(
        xs.next_watch_event(Some(LONG)).unwrap(),
        Some(ev("/tool/watched/a", "tok"))
    );
    assert_eq!(
        xs.next_watch_event(Some(LONG)).unwrap(),
        Some(ev("/tool/watched/b", "tok"))
    );
    assert_eq!(xs.next_watch_event(Some(SHORT)).unwrap(), None);
}
