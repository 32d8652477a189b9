//! Debian's kernel payload (xz, x86 BCJ, 32 MiB dictionary) decodes byte for byte as liblzma
//! decodes it. Skipped, with a message, when crates/pvh's tests have not cached the kernel.

mod common;

use xzdec::{decode_xz, Options};

/// The compressed payload of a bzImage: setup header fields `setup_sects` (0x1f1),
/// `payload_offset` (0x248) and `payload_length` (0x24c).
fn bzimage_payload(file: &[u8]) -> &[u8] {
    let le32 = |at: usize| u32::from_le_bytes(file[at..at + 4].try_into().unwrap()) as usize;
    let setup_sects = match file[0x1f1] {
        0 => 4,
        n => usize::from(n),
    };
    let start = (setup_sects + 1) * 512 + le32(0x248);
    &file[start..start + le32(0x24c)]
}

#[test]
fn debian_kernel_matches_liblzma() {
    let Some(path) = common::cached_vmlinuz() else {
        eprintln!(
            "skipped: no cached Debian kernel; run `cargo test -p pvh --test debian` to fetch it"
        );
        return;
    };
    let file = std::fs::read(&path).unwrap();
    let payload = bzimage_payload(&file);
    assert!(payload.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]));
    let hint = u32::from_le_bytes(payload[payload.len() - 4..].try_into().unwrap());
    let ours = decode_xz(
        payload,
        Options {
            limit: 1 << 30,
            size_hint: Some(u64::from(hint)),
            concatenated: false,
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let theirs = common::liblzma_xz(payload).unwrap();
    assert_eq!(ours.len(), theirs.len());
    assert!(ours == theirs, "output differs from liblzma's");
    assert_eq!(ours.len(), hint as usize);
    assert!(ours.starts_with(b"\x7fELF"));
}
