//! `XsClient::open` follows `XENSTORED_PATH` and `XENSTORED_RUNDIR`. One test in its own
//! binary, since it changes the process environment.

mod fake;

use fake::FakeXenstored;
use xen_host::{Store, TxId};
use xenstore::{XsClient, ENV_PATH, ENV_RUNDIR};

#[test]
fn open_follows_the_environment() {
    let server = FakeXenstored::start();

    std::env::set_var(ENV_PATH, server.path());
    let xs = XsClient::open().expect("XENSTORED_PATH names the fake socket");
    assert_eq!(xs.path(), server.path());
    xs.write(TxId::NONE, "/tool/env", b"1").unwrap();

    // XENSTORED_PATH is used alone: no fallback to the default paths.
    let missing = server.path().with_file_name("missing");
    std::env::set_var(ENV_PATH, &missing);
    let err = XsClient::open().unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    std::env::remove_var(ENV_PATH);

    // XENSTORED_RUNDIR: the socket is <dir>/socket.
    let dir = server.path().parent().expect("socket has a directory");
    std::env::set_var(ENV_RUNDIR, dir);
    let xs = XsClient::open().expect("XENSTORED_RUNDIR holds the fake socket");
    assert_eq!(xs.path(), server.path());
    assert_eq!(
        xs.read(TxId::NONE, "/tool/env").unwrap().as_deref(),
        Some(&b"1"[..])
    );
    std::env::remove_var(ENV_RUNDIR);
}
