//! Decodes arbitrary bytes as xz and as legacy .lzma with a 16 MiB limit: never a panic,
//! never more than the limit, and whatever liblzma decodes (within the limit) xzdec decodes
//! to the same bytes, unless xzdec refuses a feature it does not implement.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;

const LIMIT: u64 = 16 << 20;
/// liblzma allocates the declared dictionary: cap it so it cannot exhaust memory.
const MEMLIMIT: u64 = 128 << 20;

/// liblzma's output for `data` through `stream`, if it succeeds within the limit.
fn liblzma(data: &[u8], stream: liblzma::stream::Stream) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    liblzma::read::XzDecoder::new_stream(data, stream)
        .take(LIMIT + 1)
        .read_to_end(&mut out)
        .ok()?;
    (out.len() as u64 <= LIMIT).then_some(out)
}

fn compare(what: &str, ours: Result<Vec<u8>, xzdec::Error>, theirs: Option<Vec<u8>>) {
    if let Ok(out) = &ours {
        assert!(out.len() as u64 <= LIMIT, "{what}: output past the limit");
    }
    let Some(theirs) = theirs else { return };
    match ours {
        Ok(out) => assert!(out == theirs, "{what}: output differs from liblzma's"),
        Err(xzdec::Error::Unsupported { .. }) => {}
        Err(e) => panic!("{what}: liblzma decodes {} bytes, xzdec fails: {e}", theirs.len()),
    }
}

fuzz_target!(|data: &[u8]| {
    let opts = xzdec::Options::with_limit(LIMIT);
    let ours = xzdec::decode_xz(data, opts);
    let theirs = liblzma::stream::Stream::new_stream_decoder(MEMLIMIT, 0)
        .ok()
        .and_then(|s| liblzma(data, s));
    compare("xz", ours, theirs);

    let ours = xzdec::decode_lzma(data, opts);
    let theirs = liblzma::stream::Stream::new_lzma_decoder(MEMLIMIT)
        .ok()
        .and_then(|s| liblzma(data, s));
    compare("lzma", ours, theirs);
});
