//! Encoders (liblzma, lzma-rs) and sample data shared by the integration tests.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};

use liblzma::stream::{Action, Check, Filters, LzmaOptions, Status, Stream};

/// Deterministic pseudo-random bytes (xorshift64).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Text-like data with a mix of short and long repeats at many distances.
pub fn mixed(len: usize) -> Vec<u8> {
    let words: Vec<&[u8]> = vec![
        b"the ",
        b"kernel ",
        b"decompress",
        b"xen ",
        b"guest ",
        b"\n",
        b"page ",
        b"0x1000 ",
        b"memory ",
        b"lzma2 ",
        b"\x00\x00\x00\x00",
        b"\xe8\x10\x20\x00\x00",
    ];
    let r = noise(len, 7);
    let mut out = Vec::with_capacity(len);
    let mut i = 0;
    while out.len() < len {
        let b = r[i % r.len()];
        i += 1;
        if b < 20 && out.len() > 300 {
            // Copy an earlier run (long matches, rep distances).
            let back = 1 + (usize::from(r[(i * 7) % r.len()]) * 3) % 300;
            let n = 2 + usize::from(r[(i * 13) % r.len()]) % 200;
            let start = out.len() - back;
            for k in 0..n {
                let c = out[start + k];
                out.push(c);
            }
        } else if b < 30 {
            out.push(b);
        } else {
            out.extend_from_slice(words[usize::from(b) % words.len()]);
        }
    }
    out.truncate(len);
    out
}

/// x86-looking code: many call/jmp opcodes with near displacements.
pub fn x86ish(len: usize) -> Vec<u8> {
    let r = noise(len, 99);
    let mut out = Vec::with_capacity(len + 8);
    let mut i = 0;
    while out.len() < len {
        let b = r[i];
        i = (i + 1) % r.len();
        match b % 6 {
            0 => {
                out.push(0xe8);
                let d = (i as i32 * 37 - 50_000).to_le_bytes();
                out.extend_from_slice(&d);
            }
            1 => {
                out.push(0xe9);
                out.extend_from_slice(&(-(i as i32)).to_le_bytes());
            }
            2 => out.extend_from_slice(&[0x48, 0x89, 0xe5]),
            3 => out.extend_from_slice(&[0x55, 0xc3]),
            4 => out.push(0xe8),
            _ => out.push(b),
        }
    }
    out.truncate(len);
    out
}

/// Runs a liblzma encoder stream over `data`, ending a block every `block` bytes if given.
pub fn encode_with(mut stream: Stream, data: &[u8], block: Option<usize>) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 2 + 4096);
    let pieces: Vec<&[u8]> = match block {
        Some(n) => data.chunks(n).collect(),
        None => vec![data],
    };
    for piece in pieces {
        let mut rest = piece;
        while !rest.is_empty() {
            out.reserve(1 << 16);
            let before = stream.total_in();
            stream.process_vec(rest, &mut out, Action::Run).unwrap();
            rest = &rest[(stream.total_in() - before) as usize..];
        }
        if block.is_some() {
            loop {
                out.reserve(1 << 16);
                if stream
                    .process_vec(&[], &mut out, Action::FullFlush)
                    .unwrap()
                    == Status::StreamEnd
                {
                    break;
                }
            }
        }
    }
    loop {
        out.reserve(1 << 16);
        if stream.process_vec(&[], &mut out, Action::Finish).unwrap() == Status::StreamEnd {
            break;
        }
    }
    out
}

/// xz with a preset (add `liblzma::stream::PRESET_EXTREME` for -e).
pub fn xz(data: &[u8], preset: u32, check: Check) -> Vec<u8> {
    encode_with(Stream::new_easy_encoder(preset, check).unwrap(), data, None)
}

/// xz with the x86 filter before LZMA2; `start` is the filter's start offset if given.
pub fn xz_x86(data: &[u8], preset: u32, start: Option<u32>) -> Vec<u8> {
    let opts = LzmaOptions::new_preset(preset).unwrap();
    let mut f = Filters::new();
    match start {
        Some(s) => f.x86_properties(&s.to_le_bytes()).unwrap(),
        None => f.x86(),
    };
    f.lzma2(&opts);
    encode_with(
        Stream::new_stream_encoder(&f, Check::Crc32).unwrap(),
        data,
        None,
    )
}

/// xz made of several blocks of `block` bytes.
pub fn xz_blocks(data: &[u8], block: usize) -> Vec<u8> {
    encode_with(
        Stream::new_easy_encoder(6, Check::Crc64).unwrap(),
        data,
        Some(block),
    )
}

/// Legacy .lzma from liblzma (unknown size, end marker).
pub fn lzma_alone(data: &[u8], preset: u32) -> Vec<u8> {
    let opts = LzmaOptions::new_preset(preset).unwrap();
    encode_with(Stream::new_lzma_encoder(&opts).unwrap(), data, None)
}

/// Legacy .lzma from lzma-rs with the size in the header and no end marker.
pub fn lzma_known_size(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let opts = lzma_rs::compress::Options {
        unpacked_size: lzma_rs::compress::UnpackedSize::WriteToHeader(Some(data.len() as u64)),
    };
    lzma_rs::lzma_compress_with_options(&mut &data[..], &mut out, &opts).unwrap();
    out
}

/// liblzma's decoding of an xz stream (first stream only, as `XzDecoder::new`).
pub fn liblzma_xz(packed: &[u8]) -> Result<Vec<u8>, std::io::Error> {
    let mut out = Vec::new();
    liblzma::read::XzDecoder::new(packed)
        .read_to_end(&mut out)
        .map(|_| out)
}

/// The cached Debian vmlinuz (`.cache/pvh` or `$RXL_CACHE/pvh`), as crates/pvh's tests
/// leave it.
pub fn cached_vmlinuz() -> Option<PathBuf> {
    let base = std::env::var_os("RXL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache"))
        .join("pvh");
    std::fs::read_dir(&base).ok()?.find_map(|e| {
        let d = e.ok()?.path();
        let name = d.file_name()?.to_str()?.to_string();
        if !(name.starts_with("linux-image-") && name.ends_with(".d")) {
            return None;
        }
        std::fs::read_dir(d.join("boot")).ok()?.find_map(|e| {
            let p = e.ok()?.path();
            p.file_name()?
                .to_str()?
                .starts_with("vmlinuz-")
                .then_some(p)
        })
    })
}
