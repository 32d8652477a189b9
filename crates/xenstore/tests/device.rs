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
