//! The HVM boot plan against libxenguest's and libxl's values (Xen 4.17): memory split,
//! VGA hole, ioreq server pages, hvmloader placement, the `firmware` module, the start
//! info block, the HVM info table, and the refusals.

mod common;

use std::sync::Arc;

use common::{elf32, phys32, GuestMem, Seg};
use pvh::hvm::{
    check_bios_support, check_ovmf, hvm_info_table, memory_layout, plan_hvm_files, HvmBios,
    HvmFile, HvmRequest, IOREQ_SERVER_PFN,
};
use pvh::{Error, GuestSize, Range};

const MIB: u64 = 1 << 20;
const LOADER_PADDR: u32 = 0x10_0000;

/// A stand-in hvmloader: 10 KiB of code at 1 MiB plus 6 KiB of bss, entered at 1 MiB.
fn loader_bytes(extra: &[u8]) -> Vec<u8> {
    let mut data = vec![0x90u8; 10 * 1024];
    data[100..100 + extra.len()].copy_from_slice(extra);
    elf32(
        LOADER_PADDR,
        &[Seg {
            paddr: LOADER_PADDR,
            data,
            memsz: 16 * 1024,
        }],
        &[],
    )
}

fn file(name: &str, bytes: Vec<u8>) -> HvmFile {
    HvmFile {
        name: name.to_string(),
        bytes: Arc::new(bytes),
    }
}

fn request(memory_mib: u64, bios: HvmBios) -> HvmRequest {
    HvmRequest {
        hvmloader: "/b/hvmloader".into(),
        bios,
        bios_module: None,
        size: GuestSize {
            memory_mib,
            maxmem_mib: memory_mib,
            vcpus: 2,
            maxvcpus: 4,
        },
        videoram_mib: 8,
        mmio_hole_mib: None,
        apic: true,
    }
}

fn seabios() -> HvmFile {
    file("/b/bios-256k.bin", vec![0xea; 256 * 1024])
}

#[test]
fn a_small_guest_is_laid_out_as_libxenguest_does() {
    let loader = file("/b/hvmloader", loader_bytes(&[]));
    let bios = seabios();
    let plan = plan_hvm_files(&request(512, HvmBios::Seabios), &loader, Some(&bios)).expect("plan");
    let b = &plan.boot;
    // RAM is memory - videoram, the VGA hole is not populated.
    let lowmem_end = 504 * MIB;
    assert_eq!(
        b.ram,
        vec![
            Range {
                start: 0,
                end: 0xa0000
            },
            Range {
                start: 0xc0000,
                end: lowmem_end
            }
        ]
    );
    assert_eq!(b.lowmem_end(), lowmem_end);
    assert_eq!(plan.mmio_start, 0xf000_0000);
    assert_eq!(b.target_pages, 504 * 256);
    // Special pages as for PVH, the eight ioreq server pages just below them.
    assert_eq!(plan.ioreq_server_pfn, 0xfeff0);
    assert_eq!(plan.nr_ioreq_server_pages, 8);
    let pop = b.populate();
    assert!(pop.contains(&Range {
        start: 0xfeff_0000,
        end: 0xfeff_8000
    }));
    assert!(pop.contains(&Range {
        start: 0xfeff_8000,
        end: 0xff00_0000
    }));
    assert!(!pop.iter().any(|r| r.overlaps(&Range {
        start: 0xa0000,
        end: 0xc0000
    })));
    // The memory map: RAM from 1 MiB to the end of low memory.
    assert_eq!(b.memmap.len(), 1);
    assert_eq!(
        (b.memmap[0].addr, b.memmap[0].size, b.memmap[0].kind),
        (MIB, lowmem_end - MIB, 1)
    );
    // hvmloader at its address, entered in flat 32-bit mode with ebx = start info.
    assert_eq!(b.entry, 0x10_0000);
    assert_eq!(
        (b.kernel[0].paddr, b.kernel[0].memsz),
        (0x10_0000, 16 * 1024)
    );
    assert_eq!(
        (b.regs.rip, b.regs.rbx, b.regs.cr0),
        (0x10_0000, b.start_info_paddr, 0x11)
    );
    // The BIOS page aligned after hvmloader, the start info after the BIOS.
    let m = &b.modules[0];
    assert_eq!((m.paddr, m.size), (0x10_4000, 256 * 1024));
    assert_eq!(b.start_info_paddr, 0x14_4000);
    assert_eq!(b.start_info_size, 56 + 64 + 2048 + 24);

    let mem = GuestMem::apply(b);
    let si = b.start_info_paddr;
    assert_eq!(mem.u32(si), 0x336e_c578);
    assert_eq!(mem.u32(si + 4), 1);
    assert_eq!(mem.u32(si + 12), 1, "one module");
    assert_eq!(mem.u64(si + 16), si + 56, "modlist");
    assert_eq!(mem.u64(si + 24), 0, "no command line");
    assert_eq!(mem.u64(si + 32), 0, "no RSDP: hvmloader builds ACPI");
    assert_eq!(mem.u64(si + 40), si + 56 + 64 + 2048, "memmap");
    assert_eq!(mem.u32(si + 48), 1);
    assert_eq!(mem.u64(si + 56), 0x10_4000);
    assert_eq!(mem.u64(si + 64), 256 * 1024);
    assert_eq!(mem.u64(si + 72), si + 120);
    assert_eq!(mem.cstr(si + 120), "firmware");
    assert_eq!(mem.read(0x10_4000, 4), vec![0xea; 4]);
    // The HVM info table at 0x9f800.
    assert_eq!(mem.read(0x9f800, 8), b"HVM INFO".to_vec());
    let t = mem.read(0x9f800, 48);
    assert_eq!(t.iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0, "checksum");
    assert_eq!(t[13], 1, "apic_mode");
    assert_eq!(mem.u32(0x9f810), 4, "nr_vcpus = maxvcpus");
    assert_eq!(mem.u32(0x9f814), (lowmem_end >> 12) as u32, "low_mem_pgend");
    assert_eq!(
        mem.u32(0x9f818),
        IOREQ_SERVER_PFN as u32,
        "reserved_mem_pgstart"
    );
    assert_eq!(mem.u32(0x9f81c), 0, "no high memory");
    assert_eq!(t[32], 0b11, "vCPUs 0 and 1 online");
}

#[test]
fn memory_splits_around_the_mmio_hole() {
    // 4 GiB with 16 MiB of video RAM: 4080 MiB of RAM, 3840 below the default hole.
    let (size, start, low, high) = memory_layout(4096, 16, None).expect("layout");
    assert_eq!((size, start, low), (4080 * MIB, 0xf000_0000, 0xf000_0000));
    assert_eq!(high, (1 << 32) + 240 * MIB);
    // A larger hole (1 GiB) moves its start down; a smaller one than libxl's is ignored.
    let (_, start, low, high) = memory_layout(4096, 16, Some(1024)).expect("layout");
    assert_eq!(
        (start, low, high),
        (0xc000_0000, 0xc000_0000, (1 << 32) + 1008 * MIB)
    );
    let (_, start, ..) = memory_layout(4096, 16, Some(256)).expect("layout");
    assert_eq!(start, 0xf000_0000);
    let e = memory_layout(8, 8, None).unwrap_err().to_string();
    assert!(e.contains("leaves nothing for RAM"), "{e}");

    let loader = file("/b/hvmloader", loader_bytes(&[]));
    let mut req = request(4096, HvmBios::Seabios);
    req.videoram_mib = 16;
    let plan = plan_hvm_files(&req, &loader, Some(&seabios())).expect("plan");
    assert_eq!(plan.boot.memmap.len(), 2);
    assert_eq!(plan.boot.memmap[1].addr, 1 << 32);
    assert_eq!(plan.boot.memmap[1].size, 240 * MIB);
    assert_eq!(plan.boot.ram.len(), 3);
    let t = hvm_info_table(false, &req.size, 0xf000_0000, (1 << 32) + 240 * MIB);
    assert_eq!(u32::from_le_bytes([t[28], t[29], t[30], t[31]]), 0x10f000);
    assert_eq!(t[13], 0);
}

#[test]
fn rombios_needs_an_hvmloader_built_with_it() {
    let plain = file(
        "/b/hvmloader",
        loader_bytes(b"\0rombios\0seabios\0SeaBIOS\0"),
    );
    let e = check_bios_support(&plain, HvmBios::Rombios)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "boot request: bios = \"rombios\": /b/hvmloader was built without ROMBIOS (Debian's \
         is); use bios = \"seabios\""
    );
    assert!(check_bios_support(&plain, HvmBios::Seabios).is_ok());
    let with = file("/b/hvmloader", loader_bytes(b"\0ROMBIOS\0"));
    // Built in, it is still refused: it needs qemu-xen-traditional, as libxl says.
    let e = check_bios_support(&with, HvmBios::Rombios)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("works only with the qemu-xen-traditional device model"),
        "{e}"
    );
    let e = plan_hvm_files(&request(64, HvmBios::Rombios), &with, None).unwrap_err();
    assert!(e.to_string().contains("qemu-xen-traditional"), "{e}");
    let e = plan_hvm_files(&request(64, HvmBios::Rombios), &plain, None).unwrap_err();
    assert!(e.to_string().contains("built without ROMBIOS"), "{e}");
}

#[test]
fn ovmf_without_xen_support_is_refused() {
    // A plain OVMF flash image starts with the variable store's firmware volume.
    let mut fd = vec![0u8; 64 * 1024];
    fd[40..44].copy_from_slice(b"_FVH");
    let plain = file("/usr/share/ovmf/OVMF.fd", fd);
    let e = check_ovmf(&plain).unwrap_err().to_string();
    assert!(e.contains("/usr/share/ovmf/OVMF.fd"), "{e}");
    assert!(
        e.contains("Debian bookworm's OVMF lacks Xen support"),
        "{e}"
    );
    assert!(e.contains("OvmfXen.dsc"), "{e}");
    let loader = file("/b/hvmloader", loader_bytes(&[]));
    let e = plan_hvm_files(&request(256, HvmBios::Ovmf), &loader, Some(&plain)).unwrap_err();
    assert!(e.to_string().contains("without Xen support"), "{e}");
    // OvmfXen's image starts with an ELF header.
    let mut xen = vec![0u8; 64 * 1024];
    xen[..4].copy_from_slice(b"\x7fELF");
    let xen = file("/opt/OvmfXen/OVMF.fd", xen);
    check_ovmf(&xen).expect("OvmfXen");
    plan_hvm_files(&request(256, HvmBios::Ovmf), &loader, Some(&xen)).expect("plan");
}

#[test]
fn bad_loaders_and_small_guests_are_refused_naming_the_file() {
    let bios = seabios();
    let req = request(64, HvmBios::Seabios);
    // A PVH kernel has Xen notes.
    let pvh = elf32(
        0x10_0000,
        &[Seg {
            paddr: 0x10_0000,
            data: vec![0; 64],
            memsz: 64,
        }],
        &phys32(0x10_0000),
    );
    let e = plan_hvm_files(&req, &file("/k/vmlinux", pvh), Some(&bios))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "/k/vmlinux: bad ELF: it has Xen ELF notes: it is a PV or PVH kernel, not hvmloader"
    );
    let e = plan_hvm_files(&req, &file("/k/x", b"MZ not an elf".to_vec()), Some(&bios))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/k/x: bad ELF"), "{e}");
    // The entry point outside the segments.
    let bad = elf32(
        0x20_0000,
        &[Seg {
            paddr: 0x10_0000,
            data: vec![0; 64],
            memsz: 64,
        }],
        &[],
    );
    let e = plan_hvm_files(&req, &file("/k/y", bad), Some(&bios))
        .unwrap_err()
        .to_string();
    assert!(e.contains("entry point 0x200000 is outside"), "{e}");
    // No BIOS image for SeaBIOS.
    let loader = file("/b/hvmloader", loader_bytes(&[]));
    let e = plan_hvm_files(&req, &loader, None).unwrap_err().to_string();
    assert!(e.contains("needs its image"), "{e}");
    // Too little memory for the BIOS image: 9 MiB with 8 of video RAM leaves 1 MiB.
    let e = plan_hvm_files(&request(9, HvmBios::Seabios), &loader, Some(&bios)).unwrap_err();
    assert!(matches!(e, Error::TooSmall { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("hvmloader segment 0 of /b/hvmloader"),
        "{e}"
    );
}

#[test]
fn files_are_read_with_bounds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("big");
    std::fs::write(&big, vec![1u8; 4096]).expect("write");
    let e = HvmFile::read(&big, "hvmloader", 1024)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("hvmloader") && e.contains(&big.display().to_string()),
        "{e}"
    );
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").expect("write");
    let e = HvmFile::read(&empty, "BIOS image", 1024)
        .unwrap_err()
        .to_string();
    assert!(e.ends_with("is empty"), "{e}");
    let e = HvmFile::read(&dir.path().join("none"), "hvmloader", 1024)
        .unwrap_err()
        .to_string();
    assert!(e.contains("none: open"), "{e}");
    let ok = HvmFile::read(&big, "hvmloader", 4096).expect("read");
    assert_eq!(ok.bytes.len(), 4096);
}
