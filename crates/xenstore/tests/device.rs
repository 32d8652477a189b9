//! `XsClient` over a character device (a raw pseudo-terminal standing in for
//! /dev/xen/xenbus), where reads return whatever bytes have arrived.

mod fake;

use std::time::Duration;

use fake::{FakeXenstored, Fault};
use xen_host::{Store, TxId, WatchEvent};
use xenstore::wire::MsgType;
use xenstore::{Transport, XsClient};

#[test]
fn device_transport_round_trips() {
    let server = FakeXenstored::start();
    let tty = server.serve_pty();
    let xs = XsClient::open_path(&tty).expect("open the pty as a device");
    assert_eq!(xs.transport(), Transport::Device);

    // A value with every byte value, and bytes a terminal would otherwise translate.
    let value: Vec<u8> = (0..=255u8).chain(*b"\r\n\x03\x04\x11\x13").collect();
    xs.write(TxId::NONE, "/tool/dev", &value).unwrap();
    assert_eq!(server.value("/tool/dev").as_deref(), Some(&value[..]));
    assert_eq!(xs.read(TxId::NONE, "/tool/dev").unwrap(), Some(value));

    // A reply that is larger than a pty reads at once, and one sent a byte at a time.
    let big = vec![b'q'; 4000];
    xs.write(TxId::NONE, "/tool/big", &big).unwrap();
    assert_eq!(xs.read(TxId::NONE, "/tool/big").unwrap(), Some(big.clone()));
    server.inject(Some(MsgType::Read), Fault::ShortReads);
    assert_eq!(xs.read(TxId::NONE, "/tool/big").unwrap(), Some(big));

    xs.watch("/tool/dev", "d").unwrap();
    xs.rm(TxId::NONE, "/tool/dev").unwrap();
    let first = xs.next_watch_event(Some(Duration::from_secs(5))).unwrap();
    let second = xs.next_watch_event(Some(Duration::from_secs(5))).unwrap();
    let want = WatchEvent {
        path: "/tool/dev".into(),
        token: "d".into(),
    };
    assert_eq!(first.as_ref(), Some(&want), "initial event");
    assert_eq!(second.as_ref(), Some(&want), "rm event");
    assert_eq!(
        xs.next_watch_event(Some(Duration::from_millis(30)))
            .unwrap(),
        None
    );
}

#[test]
fn apply_ops_over_the_device_sends_one_request_at_a_time() {
    use xen_host::StoreOp;
    let server = FakeXenstored::start();
    let tty = server.serve_pty();
    let xs = XsClient::open_path(&tty).expect("open the pty as a device");
    // The second request fails: over the device nothing after it is sent (over the socket
    // the rest of its window would have been carried out).
    server.inject(Some(MsgType::Mkdir), Fault::Error("EACCES"));
    let ops = [
        StoreOp::Write("/tool/d/a", b"1"),
        StoreOp::Mkdir("/tool/d/m"),
        StoreOp::Write("/tool/d/b", b"2"),
    ];
    let err = xs.apply_ops(TxId::NONE, &ops).unwrap_err();
    assert_eq!(err.op(), "xs_mkdir /tool/d/m");
    assert_eq!(server.value("/tool/d/a").as_deref(), Some(&b"1"[..]));
    assert_eq!(server.value("/tool/d/b"), None);
    let ops: Vec<String> = (0..20).map(|i| format!("/tool/e/n{i}")).collect();
    let writes: Vec<StoreOp<'_>> = ops.iter().map(|p| StoreOp::Write(p, b"v")).collect();
    xs.apply_ops(TxId::NONE, &writes).unwrap();
    for p in &ops {
        assert_eq!(server.value(p).as_deref(), Some(&b"v"[..]), "{p}");
    }
}
