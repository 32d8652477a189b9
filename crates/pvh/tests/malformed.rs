//! Malformed images: every one gives a clear error, none panics.

mod common;

use std::io::{Read, Write};

use common::{elf32, hello_elf, note, phys32, Seg};
use proptest::prelude::*;
use pvh::{Error, GuestSize, ModuleInput, Payload, ProbeOptions};

const SIZE: GuestSize = GuestSize {
    memory_mib: 64,
    maxmem_mib: 64,
    vcpus: 1,
    maxvcpus: 1,
};

fn probe(bytes: &[u8]) -> Result<pvh::KernelImage, Error> {
    pvh::probe_bytes("img", bytes, &ProbeOptions::default())
}

fn probe_and_plan(bytes: &[u8]) -> Result<pvh::BootPlan, Error> {
    pvh::plan_image(&probe(bytes)?, Some("x"), Vec::new(), SIZE)
}

fn err(bytes: &[u8]) -> String {
    probe_and_plan(bytes).unwrap_err().to_string()
}

fn seg(paddr: u32, len: usize, memsz: u32) -> Seg {
    Seg {
        paddr,
        data: vec![0x90; len],
        memsz,
    }
}

#[test]
fn a_good_synthetic_image_plans() {
    let img = elf32(0x100000, &[seg(0x100000, 64, 128)], &phys32(0x100010));
    let plan = probe_and_plan(&img).unwrap();
    assert_eq!(plan.entry, 0x100010);
}

#[test]
fn unknown_formats_show_their_first_bytes() {
    assert_eq!(
        err(b"MZ\x90\x00\x03\x00\x00\x00\x04\x00"),
        "img: not an ELF or bzImage (starts with 4d 5a 90 00 03 00 00 00 ...)"
    );
    assert!(err(b"").contains("the file is empty"));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("k");
    std::fs::write(&p, b"\x00\x01").unwrap();
    let e = pvh::probe_file(&p, &ProbeOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not an ELF or bzImage (starts with 00 01)"),
        "{e}"
    );
    let e = pvh::probe_file(&dir.path().join("missing"), &ProbeOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing: open:"), "{e}");
}

#[test]
fn truncated_headers() {
    let good = elf32(0x100000, &[seg(0x100000, 64, 128)], &phys32(0x100010));
    for cut in [4, 20, 51, 60, 100] {
        let e = err(&good[..cut]);
        assert!(e.starts_with("img: bad ELF"), "cut {cut}: {e}");
    }
    let file = std::fs::read(hello_elf()).unwrap();
    let e = err(&file[..file.len() / 2]);
    assert!(e.contains("past the end"), "{e}");
}

#[test]
fn notes_with_bad_sizes() {
    let n = note(b"Xen\0", 18, &[0, 0, 0x10]);
    let e = err(&elf32(0x100000, &[seg(0x100000, 64, 128)], &n));
    assert!(e.contains("PHYS32_ENTRY has a 3-byte descriptor"), "{e}");
    let mut n = phys32(0x100000);
    n[4] = 0xff; // descsz runs past the note area
    let e = err(&elf32(0x100000, &[seg(0x100000, 64, 128)], &n));
    assert!(e.contains("runs past the end of its"), "{e}");
}

#[test]
fn missing_entry_says_what_to_do() {
    let other = note(b"Xen\0", 6, b"linux\0");
    let e = err(&elf32(0x100000, &[seg(0x100000, 64, 128)], &other));
    assert!(
        e.ends_with(
            "this kernel has no XEN_ELFNOTE_PHYS32_ENTRY: it cannot boot as PVH (build it with \
             CONFIG_PVH=y, or use type = \"pv\")"
        ),
        "{e}"
    );
}

#[test]
fn notes_from_sections_when_no_pt_note() {
    // Build an image with the note in a section only: append a section table.
    let mut img = elf32(0x100000, &[seg(0x100000, 64, 128)], &[]);
    let n = phys32(0x100020);
    let note_off = img.len() as u32;
    img.extend_from_slice(&n);
    while img.len() % 4 != 0 {
        img.push(0);
    }
    let shoff = img.len() as u32;
    img.extend_from_slice(&[0u8; 40]); // null section
    let mut sh = [0u8; 40];
    sh[4..8].copy_from_slice(&7u32.to_le_bytes()); // SHT_NOTE
    sh[16..20].copy_from_slice(&note_off.to_le_bytes());
    sh[20..24].copy_from_slice(&(n.len() as u32).to_le_bytes());
    sh[32..36].copy_from_slice(&4u32.to_le_bytes());
    img.extend_from_slice(&sh);
    img[32..36].copy_from_slice(&shoff.to_le_bytes());
    img[48..50].copy_from_slice(&2u16.to_le_bytes()); // e_shnum
    let k = probe(&img).unwrap();
    assert_eq!(k.info.note_source, pvh::elf::NoteSource::Sections);
    assert_eq!(k.pvh_entry().unwrap(), 0x100020);
}

#[test]
fn overlapping_segments() {
    let e = err(&elf32(
        0x100000,
        &[seg(0x100000, 64, 0x2000), seg(0x101000, 64, 0x100)],
        &phys32(0x100000),
    ));
    assert!(e.contains("overlap in physical memory"), "{e}");
}

#[test]
fn segment_over_the_low_rsdp_page() {
    // A segment just below 1 MiB collides with the RSDP page libxl uses for old guests.
    let e = err(&elf32(
        0xfe000,
        &[seg(0xfe000, 64, 0x1800)],
        &phys32(0xfe000),
    ));
    assert!(e.contains("overlaps ACPI RSDP page"), "{e}");
}

#[test]
fn filesz_larger_than_memsz() {
    let e = err(&elf32(
        0x100000,
        &[seg(0x100000, 64, 32)],
        &phys32(0x100000),
    ));
    assert!(
        e.contains("p_filesz 0x40 is larger than p_memsz 0x20"),
        "{e}"
    );
}

#[test]
fn huge_memsz() {
    let e = err(&elf32(
        0x100000,
        &[seg(0x100000, 64, 0xffe0_0000)],
        &phys32(0x100000),
    ));
    assert!(e.contains("reaches into the MMIO hole"), "{e}");
    // Too big for this guest but not for a bigger one: the size error with numbers.
    let e = err(&elf32(
        0x100000,
        &[seg(0x100000, 64, 0x800_0000)],
        &phys32(0x100000),
    ));
    assert!(e.contains("guest memory too small"), "{e}");
    assert!(e.contains("at least 130 MiB"), "{e}");
}

#[test]
fn entry_outside_every_segment() {
    let e = err(&elf32(
        0x100000,
        &[seg(0x100000, 64, 128)],
        &phys32(0x200000),
    ));
    assert!(e.contains("PVH entry point 0x200000"), "{e}");
    assert!(e.contains("outside every PT_LOAD"), "{e}");
}

#[test]
fn a_start_info_too_big_for_memory() {
    // The kernel fills RAM to the last page: the start_info block has no room.
    let img = elf32(
        0x100000,
        &[seg(0x100000, 64, (64 << 20) - 0x100000)],
        &phys32(0x100000),
    );
    let e = err(&img);
    assert!(e.contains("start_info block does not fit"), "{e}");
}

fn bzimage(payload: &[u8]) -> Vec<u8> {
    let mut img = vec![0u8; 5 * 512];
    img[0x1f1] = 4; // setup_sects
    img[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
    img[0x202..0x206].copy_from_slice(b"HdrS");
    img[0x206..0x208].copy_from_slice(&0x20fu16.to_le_bytes());
    img[0x248..0x24c].copy_from_slice(&0u32.to_le_bytes());
    img[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    img.extend_from_slice(payload);
    img
}

fn xz(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    liblzma::read::XzEncoder::new(data, 1)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn bzimage_payloads() {
    let elf = elf32(0x100000, &[seg(0x100000, 64, 128)], &phys32(0x100000));
    let mut payload = xz(&elf);
    payload.extend_from_slice(&(elf.len() as u32).to_le_bytes());
    let k = probe(&bzimage(&payload)).unwrap();
    assert_eq!(k.elf.as_slice(), elf.as_slice());
    // The same through a file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bz"), bzimage(&payload)).unwrap();
    let k = pvh::probe_file(&dir.path().join("bz"), &ProbeOptions::default()).unwrap();
    assert_eq!(k.elf.as_slice(), elf.as_slice());
    // A whole-file gzip of the ELF.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&elf).unwrap();
    let gz = gz.finish().unwrap();
    std::fs::write(dir.path().join("gz"), &gz).unwrap();
    let k = pvh::probe_file(&dir.path().join("gz"), &ProbeOptions::default()).unwrap();
    assert!(matches!(k.container, pvh::Container::Compressed { .. }));
    assert_eq!(k.elf.as_slice(), elf.as_slice());
}

#[test]
fn corrupt_compressed_payload() {
    let elf = elf32(0x100000, &[seg(0x100000, 4000, 4096)], &phys32(0x100000));
    let mut payload = xz(&elf);
    let mid = payload.len() / 2;
    payload[mid] ^= 0xff;
    payload[mid + 1] ^= 0xff;
    let e = probe(&bzimage(&payload)).unwrap_err().to_string();
    assert!(
        e.starts_with("img: cannot decompress the xz payload"),
        "{e}"
    );
    // Truncated payload length field pointing past the file.
    let mut img = bzimage(&payload);
    img[0x24c..0x250].copy_from_slice(&0x0fff_ffff_u32.to_le_bytes());
    let e = probe(&img).unwrap_err().to_string();
    assert!(e.contains("is not inside the"), "{e}");
    // A payload that decompresses to something that is not an ELF.
    let e = probe(&bzimage(&xz(b"hello world")))
        .unwrap_err()
        .to_string();
    assert!(e.contains("the decompressed payload is not an ELF"), "{e}");
    // An old boot protocol.
    let mut img = bzimage(&xz(&elf));
    img[0x206..0x208].copy_from_slice(&0x204u16.to_le_bytes());
    let e = probe(&img).unwrap_err().to_string();
    assert!(e.contains("boot protocol 2.04"), "{e}");
}

#[test]
fn output_past_the_limit() {
    let elf = elf32(
        0x100000,
        &[seg(0x100000, 100_000, 100_000)],
        &phys32(0x100000),
    );
    let img = bzimage(&xz(&elf));
    let small = ProbeOptions {
        max_image: 50_000,
        cache: None,
    };
    let e = pvh::probe_bytes("img", &img, &small).unwrap_err();
    assert!(matches!(e, Error::TooLarge { limit: 50_000, .. }), "{e}");
    assert!(e.to_string().contains("more than 50000 bytes"), "{e}");
    // A zero-filled bomb against the real 1 GiB limit is refused as well: 1 GiB + 1 MiB of
    // zeros compress to about 160 KiB of zstd.
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1025 {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    let e = probe(&bzimage(&bomb)).unwrap_err();
    assert!(
        matches!(e, Error::TooLarge { limit, .. } if limit == 1 << 30),
        "{e}"
    );
}

#[test]
fn module_cmdlines_and_empty_modules() {
    let img = probe(&elf32(
        0x100000,
        &[seg(0x100000, 64, 128)],
        &phys32(0x100000),
    ))
    .unwrap();
    let m = |data: Vec<u8>, c: Option<&str>| ModuleInput {
        name: "m".into(),
        data: Payload::bytes(data),
        cmdline: c.map(str::to_string),
    };
    let plan = pvh::plan_image(
        &img,
        None,
        vec![m(Vec::new(), Some("empty")), m(vec![1, 2, 3], None)],
        SIZE,
    )
    .unwrap();
    assert_eq!(plan.cmdline_paddr, None);
    assert_eq!(plan.modules[0].size, 0);
    assert_eq!(plan.modules[0].paddr, plan.modules[1].paddr);
    assert!(plan.modules[0].cmdline_paddr.is_some());
    assert_eq!(plan.layout_json()["cmdline"], serde_json::Value::Null);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Random byte flips in the hello guest: Ok or Err, never a panic.
    #[test]
    fn mutated_hello_never_panics(flips in proptest::collection::vec((0usize..6000, any::<u8>()), 1..8)) {
        let mut file = std::fs::read(hello_elf()).unwrap();
        for (at, v) in flips {
            let n = file.len();
            file[at % n] = v;
        }
        let _ = probe_and_plan(&file);
    }

    /// Random ELF headers around a valid skeleton.
    #[test]
    fn random_segments_never_panic(
        paddr in any::<u32>(), len in 0usize..256, memsz in any::<u32>(), entry in any::<u32>()
    ) {
        let img = elf32(entry, &[seg(paddr, len, memsz)], &phys32(entry));
        if let Ok(plan) = probe_and_plan(&img) {
            prop_assert!(plan.kernel[0].paddr + plan.kernel[0].memsz <= plan.lowmem_end());
            prop_assert!(plan.entry >= u64::from(paddr));
        }
    }
}

/// A plan for fixed synthetic inputs (no toolchain involved), snapshotted in full.
#[test]
fn synthetic_plan_snapshot() {
    let notes = [
        phys32(0x200040),
        note(b"Xen\0", 17, &(1u32 << 15).to_le_bytes()), // linux_rsdp_unrestricted
    ]
    .concat();
    let img = probe(&elf32(
        0x200040,
        &[seg(0x200000, 0x300, 0x1000), seg(0x201000, 0x80, 0x80)],
        &notes,
    ))
    .unwrap();
    let m = |name: &str, len: usize, c: Option<&str>| ModuleInput {
        name: name.into(),
        data: Payload::bytes(vec![0x42; len]),
        cmdline: c.map(str::to_string),
    };
    let plan = pvh::plan_image(
        &img,
        Some("root=/dev/xvda1 console=hvc0"),
        vec![m("initrd", 0x1801, None), m("extra", 10, Some("opt=1"))],
        GuestSize {
            memory_mib: 5000,
            maxmem_mib: 5000,
            vcpus: 3,
            maxvcpus: 4,
        },
    )
    .unwrap();
    insta::assert_json_snapshot!("synthetic_layout", plan.layout_json());
    insta::assert_snapshot!("synthetic_table", plan.layout_table());
}

#[test]
fn probe_file_through_the_kernel_cache() {
    let elf = elf32(0x100000, &[seg(0x100000, 64, 128)], &phys32(0x100000));
    let mut payload = xz(&elf);
    payload.extend_from_slice(&(elf.len() as u32).to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let bz = dir.path().join("bz");
    std::fs::write(&bz, bzimage(&payload)).unwrap();
    let cache = pvh::KernelCache::open(&dir.path().join("cache"), 1 << 20).unwrap();
    let opts = ProbeOptions {
        cache: Some(std::sync::Arc::new(cache.clone())),
        ..Default::default()
    };
    let cold = pvh::probe_file(&bz, &opts).unwrap();
    assert_eq!(cold.cache, pvh::CacheUse::Miss);
    // The miss stores its entry on a thread of its own.
    pvh::cache::wait_for_stores();
    assert_eq!(cache.list().unwrap().len(), 1);
    let warm = pvh::probe_file(&bz, &opts).unwrap();
    assert_eq!(warm.cache, pvh::CacheUse::Hit);
    assert_eq!(warm.elf.as_slice(), elf.as_slice());
    assert_eq!(warm.container, cold.container);
    // The same payload under another path and mtime hits too (the key is the content).
    let copy = dir.path().join("copy");
    std::fs::write(&copy, bzimage(&payload)).unwrap();
    assert_eq!(
        pvh::probe_file(&copy, &opts).unwrap().cache,
        pvh::CacheUse::Hit
    );
    // A corrupt entry is never used: decoded again.
    let entry = dir
        .path()
        .join("cache")
        .join(&cache.list().unwrap()[0].hash);
    let mut bytes = std::fs::read(&entry).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&entry, &bytes).unwrap();
    let again = pvh::probe_file(&bz, &opts).unwrap();
    assert_eq!(again.cache, pvh::CacheUse::Miss);
    assert_eq!(again.elf.as_slice(), elf.as_slice());
    pvh::cache::wait_for_stores();
    // A plain ELF does not go through the cache; without a cache nothing does.
    let plain = dir.path().join("elf");
    std::fs::write(&plain, &elf).unwrap();
    assert_eq!(
        pvh::probe_file(&plain, &opts).unwrap().cache,
        pvh::CacheUse::Off
    );
    let off = pvh::probe_file(&bz, &ProbeOptions::default()).unwrap();
    assert_eq!(off.cache, pvh::CacheUse::Off);
}
