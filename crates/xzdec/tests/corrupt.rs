//! Damaged streams give errors, never panics nor wrong data passed off as good.

mod common;

use common::*;
use liblzma::stream::Check;
use xzdec::{decode_lzma, decode_xz, Error, Options};

fn small() -> Vec<u8> {
    let mut d = mixed(3000);
    d.extend(x86ish(1000));
    d
}

#[test]
fn every_flipped_byte_of_an_xz_stream_is_an_error() {
    let data = small();
    for packed in [xz(&data, 6, Check::Crc32), xz_x86(&data, 6, None)] {
        for i in 0..packed.len() {
            for mask in [0x01, 0x80, 0xff] {
                let mut bad = packed.clone();
                bad[i] ^= mask;
                let r = decode_xz(&bad[..], Options::with_limit(1 << 20));
                assert!(r.is_err(), "byte {i} ^ {mask:#x} decoded without error");
            }
        }
    }
}

#[test]
fn every_truncation_is_an_error() {
    let data = small();
    let packed = xz(&data, 6, Check::Crc64);
    for n in 0..packed.len() {
        let r = decode_xz(&packed[..n], Options::default());
        assert!(r.is_err(), "xz cut at {n} decoded");
    }
    let alone = lzma_alone(&data, 6);
    for n in 0..alone.len() {
        match decode_lzma(&alone[..n], Options::default()) {
            Err(_) => {}
            // Without the end marker nothing proves the end, but the data cannot be whole.
            Ok(out) => panic!("lzma cut at {n} decoded {} bytes", out.len()),
        }
    }
    let sized = lzma_known_size(&data);
    for n in 0..sized.len() {
        if let Ok(out) = decode_lzma(&sized[..n], Options::default()) {
            // The last byte or two may be the range coder's flush, which the decoder needs
            // only partly; the output must still be the data.
            assert_eq!(out, data, "sized lzma cut at {n} of {}", sized.len());
        }
    }
}

#[test]
fn flipped_lzma_bytes_never_panic() {
    let data = small();
    for packed in [lzma_alone(&data, 6), lzma_known_size(&data)] {
        for i in 0..packed.len() {
            for mask in [0x01, 0x10, 0xff] {
                let mut bad = packed.clone();
                bad[i] ^= mask;
                // No checksum in .lzma: an error or some output, never a panic, and never
                // more than the limit.
                if let Ok(out) = decode_lzma(&bad[..], Options::with_limit(100_000)) {
                    assert!(out.len() <= 100_000);
                }
            }
        }
    }
}

#[test]
fn a_bomb_stops_at_the_limit() {
    // 64 MiB of zeros packs into a few KiB.
    let data = vec![0u8; 64 << 20];
    let packed = xz(&data, 1, Check::None);
    let alone = lzma_alone(&data, 1);
    assert!(packed.len() < 64 << 10);
    for r in [
        decode_xz(&packed[..], Options::with_limit(1 << 20)),
        decode_lzma(&alone[..], Options::with_limit(1 << 20)),
    ] {
        assert!(
            matches!(r, Err(Error::TooLarge { limit }) if limit == 1 << 20),
            "{r:?}"
        );
    }
}

#[test]
fn errors_name_the_structure_and_offset() {
    let data = small();
    let mut packed = xz(&data, 6, Check::Crc32);
    // The stream header's CRC32.
    packed[9] ^= 1;
    let e = decode_xz(&packed[..], Options::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "corrupt stream header at byte 0: CRC32 mismatch"
    );
    packed[9] ^= 1;
    // The block check (the last CRC32 before the index).
    let n = packed.len();
    let index_len = 4 * (usize::from(packed[n - 8]) + 1);
    let check_at = n - 12 - index_len - 4;
    packed[check_at] ^= 1;
    let e = decode_xz(&packed[..], Options::default()).unwrap_err();
    assert!(
        matches!(e, Error::CheckMismatch { kind: "CRC32", .. }),
        "{e}"
    );
}
