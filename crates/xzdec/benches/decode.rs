//! xzdec against liblzma on Debian's kernel payload (the xz stream inside its bzImage).
//!
//! The kernel is the one `cargo test -p pvh --test debian` downloads and caches under
//! `.cache/pvh` (or `$RXL_CACHE/pvh`); `XZDEC_BENCH_XZ=<file.xz>` benches another stream.
//!
//!     cargo bench -p xzdec

use std::io::Read;
use std::sync::OnceLock;

// The tests' helpers: where the cached kernel is, and liblzma's side.
#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    divan::main();
}

/// The xz stream: `$XZDEC_BENCH_XZ`, or the payload of the cached kernel (found by its
/// magic after the bzImage setup code).
fn stream() -> &'static [u8] {
    static S: OnceLock<Vec<u8>> = OnceLock::new();
    S.get_or_init(|| {
        if let Some(p) = std::env::var_os("XZDEC_BENCH_XZ") {
            return std::fs::read(p).expect("read $XZDEC_BENCH_XZ");
        }
        let k = common::cached_vmlinuz().expect(
            "no cached Debian kernel: run `cargo test -p pvh --test debian` first, \
             or set XZDEC_BENCH_XZ",
        );
        let file = std::fs::read(k).expect("read the kernel");
        let magic = [0xfd, b'7', b'z', b'X', b'Z', 0x00];
        let at = file
            .windows(6)
            .position(|w| w == magic)
            .expect("an xz payload in the kernel");
        file[at..].to_vec()
    })
}

#[divan::bench(sample_count = 10)]
fn xzdec(b: divan::Bencher<'_, '_>) {
    let s = stream();
    b.bench(|| {
        xzdec::decode_xz(s, xzdec::Options::with_limit(1 << 30))
            .expect("xzdec decodes the stream")
            .len()
    });
}

#[divan::bench(sample_count = 10)]
fn liblzma(b: divan::Bencher<'_, '_>) {
    let s = stream();
    b.bench(|| {
        let mut out = Vec::new();
        liblzma::read::XzDecoder::new(s)
            .read_to_end(&mut out)
            .expect("liblzma decodes the stream");
        out.len()
    });
}
