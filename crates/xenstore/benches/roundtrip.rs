//! Round trips over the fake xenstored's unix socket.

#[path = "../tests/fake/mod.rs"]
mod fake;

use xen_host::{Store, TxId};
use xenstore::XsClient;

fn main() {
    divan::main();
}

/// One `XS_WRITE` and one `XS_READ` of a 32-byte value.
#[divan::bench(sample_count = 1000)]
fn write_then_read(bencher: divan::Bencher<'_, '_>) {
    let server = fake::FakeXenstored::start();
    server.set_logging(false);
    let xs = XsClient::open_path(server.path()).expect("connect to the fake xenstored");
    let value = [b'v'; 32];
    bencher.bench_local(|| {
        xs.write(TxId::NONE, "/tool/bench/key", &value)
            .expect("write");
        let got = xs.read(TxId::NONE, "/tool/bench/key").expect("read");
        divan::black_box(got)
    });
}

/// One `XS_READ` of a 32-byte value.
#[divan::bench(sample_count = 1000)]
fn read(bencher: divan::Bencher<'_, '_>) {
    let server = fake::FakeXenstored::start();
    server.set_logging(false);
    let xs = XsClient::open_path(server.path()).expect("connect to the fake xenstored");
    xs.write(TxId::NONE, "/tool/bench/key", &[b'v'; 32])
        .expect("write");
    bencher.bench_local(|| divan::black_box(xs.read(TxId::NONE, "/tool/bench/key").expect("read")));
}
