//! Streams made by liblzma (and lzma-rs for sized .lzma) decode to the original bytes.

mod common;

use common::*;
use liblzma::stream::{Check, PRESET_EXTREME};
use xzdec::{decode_lzma, decode_xz, Error, Options};

fn unxz(packed: &[u8]) -> Result<Vec<u8>, Error> {
    decode_xz(packed, Options::default())
}

fn assert_xz(data: &[u8], packed: &[u8], what: &str) {
    let out = unxz(packed).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out == data,
        "{what}: output differs ({} vs {} bytes)",
        out.len(),
        data.len()
    );
}

#[test]
fn every_preset_round_trips() {
    let data = mixed(300_000);
    for preset in 0..=9 {
        assert_xz(
            &data,
            &xz(&data, preset, Check::Crc64),
            &format!("preset {preset}"),
        );
    }
    for preset in [0, 6, 9] {
        let p = preset | PRESET_EXTREME;
        assert_xz(
            &data,
            &xz(&data, p, Check::Crc64),
            &format!("preset {preset}e"),
        );
    }
}

#[test]
fn every_check_type_round_trips() {
    let data = mixed(100_000);
    for check in [Check::None, Check::Crc32, Check::Crc64, Check::Sha256] {
        assert_xz(&data, &xz(&data, 6, check), &format!("{check:?}"));
    }
}

#[test]
fn x86_filter_round_trips() {
    let data = x86ish(400_000);
    for preset in [0, 6, 9 | PRESET_EXTREME] {
        let packed = xz_x86(&data, preset, None);
        assert_xz(&data, &packed, &format!("x86 preset {preset}"));
    }
    for start in [1u32, 0x1000, 0xffff_fff0] {
        let packed = xz_x86(&data, 6, Some(start));
        assert_xz(&data, &packed, &format!("x86 start {start:#x}"));
    }
    // Tiny inputs around the filter's 5-byte window.
    for n in 0..12 {
        let d = vec![0xe8; n];
        assert_xz(&d, &xz_x86(&d, 6, None), &format!("x86 {n} bytes"));
    }
}

#[test]
fn empty_and_one_byte_inputs() {
    for data in [&b""[..], b"a", b"\xe8"] {
        for check in [Check::None, Check::Crc32, Check::Sha256] {
            assert_xz(data, &xz(data, 6, check), &format!("{data:?} {check:?}"));
        }
        let alone = lzma_alone(data, 6);
        assert_eq!(decode_lzma(&alone[..], Options::default()).unwrap(), data);
    }
    // lzma-rs writes an empty sized stream as a bare header.
    let sized = lzma_known_size(b"");
    assert_eq!(decode_lzma(&sized[..], Options::default()).unwrap(), b"");
}

#[test]
fn incompressible_data_uses_uncompressed_chunks() {
    let data = noise(1 << 20, 3);
    let packed = xz(&data, 6, Check::Crc32);
    // Stored chunks: the stream is (slightly) larger than its data, and the first chunk
    // (after the 12-byte stream header and the block header) is "uncompressed, dictionary
    // reset".
    assert!(packed.len() > data.len());
    let first_chunk = 12 + (usize::from(packed[12]) + 1) * 4;
    assert_eq!(packed[first_chunk], 0x01);
    assert_xz(&data, &packed, "noise");
    // Noise then text then noise: uncompressed chunks between LZMA chunks without a state
    // reset, and LZMA chunks after them.
    let mut d = noise(200_000, 5);
    d.extend(mixed(300_000));
    d.extend(noise(200_000, 11));
    d.extend(mixed(100_000));
    assert_xz(&d, &xz(&d, 6, Check::Crc64), "noise + text");
}

#[test]
fn long_repeats_and_rep_distances() {
    let mut d = vec![0u8; 3 << 20];
    d.extend(b"abc".repeat(200_000));
    let unit = mixed(5000);
    for i in 0..200 {
        d.extend_from_slice(&unit[(i * 7) % 1000..]);
        d.extend_from_slice(&unit[..(i * 13) % 4000]);
    }
    for preset in [0, 6, 9 | PRESET_EXTREME] {
        assert_xz(
            &d,
            &xz(&d, preset, Check::Crc64),
            &format!("repeats {preset}"),
        );
    }
}

#[test]
fn several_blocks_round_trip() {
    let data = mixed(500_000);
    for block in [1, 1000, 65_536, 100_001] {
        let small = &data[..if block == 1 { 50 } else { data.len() }];
        let packed = xz_blocks(small, block);
        assert_xz(small, &packed, &format!("blocks of {block}"));
        // The index's record count: a VLI after its indicator byte.
        let n = packed.len();
        let backward = u32::from_le_bytes(packed[n - 8..n - 4].try_into().unwrap()) as usize;
        let index_at = n - 12 - 4 * (backward + 1);
        let mut count = 0usize;
        for (i, b) in packed[index_at + 1..].iter().enumerate() {
            count |= usize::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                break;
            }
        }
        let blocks = small.len().div_ceil(block);
        assert_eq!(count, blocks, "blocks of {block}");
    }
}

#[test]
fn legacy_lzma_round_trips() {
    let data = mixed(300_000);
    for preset in [0, 6, 9 | PRESET_EXTREME] {
        let packed = lzma_alone(&data, preset);
        assert_eq!(
            decode_lzma(&packed[..], Options::default()).unwrap(),
            data,
            "preset {preset}"
        );
    }
    // Size in the header, no end marker.
    let sized = lzma_known_size(&data[..50_000]);
    assert_eq!(
        decode_lzma(&sized[..], Options::default()).unwrap(),
        &data[..50_000]
    );
    // lc=4 lp=0 and lc=0 lp=4, pb=0.
    for (lc, lp, pb) in [(4, 0, 2), (0, 4, 0), (1, 3, 4)] {
        let mut opts = liblzma::stream::LzmaOptions::new_preset(6).unwrap();
        opts.literal_context_bits(lc)
            .literal_position_bits(lp)
            .position_bits(pb);
        let packed = encode_with(
            liblzma::stream::Stream::new_lzma_encoder(&opts).unwrap(),
            &data,
            None,
        );
        assert_eq!(
            decode_lzma(&packed[..], Options::default()).unwrap(),
            data,
            "lc {lc} lp {lp} pb {pb}"
        );
        let mut f = liblzma::stream::Filters::new();
        f.lzma2(&opts);
        let packed = encode_with(
            liblzma::stream::Stream::new_stream_encoder(&f, Check::Crc32).unwrap(),
            &data,
            None,
        );
        assert_xz(&data, &packed, &format!("lzma2 lc {lc} lp {lp} pb {pb}"));
    }
}

#[test]
fn size_hint_and_limit() {
    let data = mixed(200_000);
    let packed = xz(&data, 6, Check::Crc32);
    let alone = lzma_alone(&data, 6);
    let sized = lzma_known_size(&data);
    let n = data.len() as u64;
    for hint in [
        None,
        Some(0),
        Some(10),
        Some(n),
        Some(n * 10),
        Some(u64::MAX),
    ] {
        let o = Options {
            size_hint: hint,
            limit: n,
            ..Options::default()
        };
        assert_eq!(decode_xz(&packed[..], o).unwrap(), data, "hint {hint:?}");
        assert_eq!(decode_lzma(&alone[..], o).unwrap(), data, "hint {hint:?}");
        assert_eq!(decode_lzma(&sized[..], o).unwrap(), data, "hint {hint:?}");
    }
    for limit in [0, 1, n / 2, n - 1] {
        let o = Options::with_limit(limit);
        for (what, r) in [
            ("xz", decode_xz(&packed[..], o)),
            ("lzma", decode_lzma(&alone[..], o)),
            ("sized lzma", decode_lzma(&sized[..], o)),
        ] {
            assert!(
                matches!(r, Err(Error::TooLarge { limit: l }) if l == limit),
                "{what} limit {limit}: {r:?}"
            );
        }
    }
}

#[test]
fn trailers_and_concatenated_streams() {
    let a = mixed(70_000);
    let b = noise(30_000, 1);
    let pa = xz(&a, 6, Check::Crc32);
    let pb = xz(&b, 1, Check::Sha256);
    // Linux's appended size: ignored after the first stream by default.
    let mut t = pa.clone();
    t.extend_from_slice(&(a.len() as u32).to_le_bytes());
    assert_xz(&a, &t, "trailer");
    let cat = Options {
        concatenated: true,
        ..Options::default()
    };
    let mut two = pa.clone();
    two.extend_from_slice(&[0; 8]);
    two.extend_from_slice(&pb);
    two.extend_from_slice(&[0; 4]);
    let mut ab = a.clone();
    ab.extend_from_slice(&b);
    assert_eq!(decode_xz(&two[..], cat).unwrap(), ab);
    assert_eq!(decode_xz(&two[..], Options::default()).unwrap(), a);
    // Garbage (or padding that is not a multiple of 4) after a stream, in concatenated mode.
    assert!(decode_xz(&t[..], cat).is_err());
    let mut odd = pa.clone();
    odd.extend_from_slice(&[0; 3]);
    assert!(decode_xz(&odd[..], cat).is_err());
    // The same for .lzma: bytes after the end marker are not read.
    let mut l = lzma_alone(&a, 6);
    l.extend_from_slice(&[1, 2, 3, 4]);
    assert_eq!(decode_lzma(&l[..], Options::default()).unwrap(), a);
}

#[test]
fn unsupported_filters_and_wrong_formats_are_named() {
    let data = mixed(10_000);
    let opts = liblzma::stream::LzmaOptions::new_preset(6).unwrap();
    let mut f = liblzma::stream::Filters::new();
    f.arm64();
    f.lzma2(&opts);
    let packed = encode_with(
        liblzma::stream::Stream::new_stream_encoder(&f, Check::Crc32).unwrap(),
        &data,
        None,
    );
    let e = unxz(&packed).unwrap_err();
    assert!(
        e.to_string().contains("filter 0x0a is not supported"),
        "{e}"
    );
    let mut f = liblzma::stream::Filters::new();
    f.sparc();
    f.lzma2(&opts);
    let packed = encode_with(
        liblzma::stream::Stream::new_stream_encoder(&f, Check::Crc32).unwrap(),
        &data,
        None,
    );
    assert!(unxz(&packed)
        .unwrap_err()
        .to_string()
        .contains("filter 0x09 is not supported"));
    assert!(matches!(
        unxz(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"),
        Err(Error::NotThisFormat { .. })
    ));
    assert!(matches!(unxz(b""), Err(Error::NotThisFormat { .. })));
    assert!(matches!(
        unxz(&[0xfd, b'7', b'z']),
        Err(Error::Truncated { .. })
    ));
    let e = decode_lzma(&[0xff; 20][..], Options::default()).unwrap_err();
    assert!(e.to_string().contains("properties byte 0xff"), "{e}");
}

/// A reader that hands out at most `step` bytes per call and sometimes is interrupted.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
    calls: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.calls += 1;
        if self.calls % 7 == 0 {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn small_reads_give_the_same_output() {
    let data = mixed(400_000);
    let packed = xz_x86(&data, 6, None);
    let alone = lzma_alone(&data, 6);
    for step in [1, 3, 4096, 70_000] {
        let r = Trickle {
            data: &packed,
            step,
            calls: 0,
        };
        assert_eq!(
            decode_xz(r, Options::default()).unwrap(),
            data,
            "xz step {step}"
        );
        let r = Trickle {
            data: &alone,
            step,
            calls: 0,
        };
        assert_eq!(
            decode_lzma(r, Options::default()).unwrap(),
            data,
            "lzma step {step}"
        );
    }
}

/// A reader that fails after `ok` bytes.
struct Failing<'a> {
    data: &'a [u8],
    ok: usize,
}

impl std::io::Read for Failing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.ok == 0 {
            return Err(std::io::Error::other("disk on fire"));
        }
        let n = self.ok.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.ok -= n;
        Ok(n)
    }
}

#[test]
fn read_errors_are_reported_with_their_offset() {
    let data = mixed(100_000);
    let packed = xz(&data, 6, Check::Crc32);
    let e = decode_xz(
        Failing {
            data: &packed,
            ok: 1000,
        },
        Options::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Io { offset: 1000, .. }), "{e}");
    assert!(e.to_string().contains("disk on fire"), "{e}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    fn random_data_matches_liblzma(
        data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
        reps in 0usize..4,
        preset in 0u32..10,
    ) {
        // Repeat the data a few times so there are matches.
        let mut d = data.clone();
        for _ in 0..reps {
            d.extend_from_slice(&data);
        }
        let packed = xz(&d, preset, Check::Crc32);
        proptest::prop_assert_eq!(unxz(&packed).unwrap(), liblzma_xz(&packed).unwrap());
        let alone = lzma_alone(&d, preset);
        proptest::prop_assert_eq!(decode_lzma(&alone[..], Options::default()).unwrap(), d);
    }
}
