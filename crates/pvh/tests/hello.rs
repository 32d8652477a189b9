//! The assembly test guest, planned and checked byte by byte, booted under QEMU.

mod common;

use std::process::Command;

use common::{hello_elf, GuestMem};
use pvh::{BootRequest, ImageSource, ModuleRequest};
use xen_host::e820;

fn modules(dir: &std::path::Path) -> (Vec<u8>, Vec<u8>, Vec<ModuleRequest>) {
    let ramdisk: Vec<u8> = (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let second = b"abc".to_vec();
    std::fs::write(dir.join("ramdisk"), &ramdisk).unwrap();
    std::fs::write(dir.join("second"), &second).unwrap();
    let reqs = vec![
        ModuleRequest {
            path: dir.join("ramdisk"),
            cmdline: None,
        },
        ModuleRequest {
            path: dir.join("second"),
            cmdline: Some("mod one".into()),
        },
    ];
    (ramdisk, second, reqs)
}

fn request(modules: Vec<ModuleRequest>) -> BootRequest {
    BootRequest {
        image: ImageSource::Kernel(hello_elf()),
        cmdline: Some("console=hvc0 rxl=1".into()),
        modules,
        memory_mib: 64,
        maxmem_mib: 64,
        vcpus: 2,
        maxvcpus: 4,
    }
}

#[test]
fn plan_is_right_byte_by_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (ramdisk, second, mods) = modules(dir.path());
    let plan = pvh::plan(&request(mods)).unwrap();
    let file = std::fs::read(hello_elf()).unwrap();

    // The ELF as the test reads it independently: one PT_LOAD at 1 MiB.
    let phoff = u32::from_le_bytes(file[28..32].try_into().unwrap()) as usize;
    let ph = &file[phoff..phoff + 32];
    let w = |i: usize| u32::from_le_bytes(ph[i * 4..i * 4 + 4].try_into().unwrap()) as u64;
    let (p_offset, p_paddr, p_filesz, p_memsz) = (w(1), w(3), w(4), w(5));
    assert_eq!(w(0), 1, "first program header is PT_LOAD");
    assert_eq!(p_paddr, 0x100000);
    assert!(p_memsz > p_filesz, "the guest has a bss");
    let e_entry = u32::from_le_bytes(file[24..28].try_into().unwrap()) as u64;
    assert_eq!(plan.entry, e_entry);
    assert_eq!(plan.entry, common::readelf_phys32_entry(&hello_elf()));
    assert_eq!(plan.kernel.len(), 1);
    assert_eq!(
        (
            plan.kernel[0].paddr,
            plan.kernel[0].filesz,
            plan.kernel[0].memsz
        ),
        (p_paddr, p_filesz, p_memsz)
    );

    let mem = GuestMem::apply(&plan);
    // Kernel bytes, then zeroed bss.
    assert_eq!(
        mem.read(p_paddr, p_filesz as usize),
        &file[p_offset as usize..(p_offset + p_filesz) as usize]
    );
    assert!(mem
        .read(p_paddr + p_filesz, (p_memsz - p_filesz) as usize)
        .iter()
        .all(|b| *b == 0));

    // Modules page aligned after the kernel.
    let kend = (p_paddr + p_memsz).div_ceil(4096) * 4096;
    assert_eq!(plan.modules[0].paddr, kend);
    assert_eq!(
        plan.modules[1].paddr,
        kend + 10_000u64.div_ceil(4096) * 4096
    );
    assert_eq!(mem.read(plan.modules[0].paddr, ramdisk.len()), ramdisk);
    assert_eq!(mem.read(plan.modules[1].paddr, 3), second);

    // start_info, page aligned after the last module.
    let si = plan.start_info_paddr;
    assert_eq!(si, plan.modules[1].paddr + 4096);
    assert_eq!(plan.regs.rbx, si);
    assert_eq!(plan.regs.rip, plan.entry);
    assert_eq!(plan.regs.cr0, 0x11);
    assert_eq!(mem.u32(si), 0x336e_c578);
    assert_eq!(mem.u32(si + 4), 1);
    assert_eq!(mem.u32(si + 8), 0);
    assert_eq!(mem.u32(si + 12), 2);
    // cmdline right after the 56-byte struct, modlist after it (8-aligned).
    let cmdline = mem.u64(si + 24);
    assert_eq!(cmdline, si + 56);
    assert_eq!(mem.cstr(cmdline), "console=hvc0 rxl=1");
    let modlist = mem.u64(si + 16);
    assert_eq!(modlist, si + 56 + 24); // "console=hvc0 rxl=1\0" is 19 bytes, padded to 24
    assert_eq!(mem.u64(modlist), plan.modules[0].paddr);
    assert_eq!(mem.u64(modlist + 8), 10_000);
    assert_eq!(mem.u64(modlist + 16), 0, "the ramdisk has no cmdline");
    assert_eq!(mem.u64(modlist + 32), plan.modules[1].paddr);
    assert_eq!(mem.u64(modlist + 40), 3);
    let mcl = mem.u64(modlist + 48);
    assert_eq!(mcl, modlist + 64);
    assert_eq!(mem.cstr(mcl), "mod one");
    assert_eq!(plan.modules[1].cmdline_paddr, Some(mcl));
    // memmap after the module cmdlines; the same map as the plan's.
    let mm = mem.u64(si + 40);
    assert_eq!(mm, mcl + 8);
    let n = mem.u32(si + 48) as usize;
    assert_eq!(n, plan.memmap.len());
    for (i, e) in plan.memmap.iter().enumerate() {
        let at = mm + 24 * i as u64;
        assert_eq!(
            (
                mem.u64(at),
                mem.u64(at + 8),
                mem.u32(at + 16),
                mem.u32(at + 20)
            ),
            (e.addr, e.size, e.kind, 0)
        );
    }
    assert_eq!(plan.start_info_size, mm + 24 * n as u64 - si);

    // The e820: RAM to 64 MiB with the low RSDP page carved out, ACPI, special pages.
    let map: Vec<(u64, u64, u32)> = plan
        .memmap
        .iter()
        .map(|e| (e.addr, e.size, e.kind))
        .collect();
    assert_eq!(
        map,
        vec![
            (0, 0xff000, e820::RAM),
            (0xff000, 0x1000, e820::ACPI),
            (0x100000, (64 << 20) - 0x100000, e820::RAM),
            (0xfc00_0000, plan.acpi_pages.len(), e820::ACPI),
            (0xfeff_8000, 0x8000, e820::RESERVED),
        ]
    );

    // The RSDP (below 1 MiB: hello does not announce linux_rsdp_unrestricted) and the MADT.
    let rsdp = mem.u64(si + 32);
    assert_eq!(Some(rsdp), plan.rsdp_paddr);
    assert_eq!(rsdp, 0xfffdc);
    assert_eq!(mem.read(rsdp, 8), b"RSD PTR ");
    assert_eq!(
        mem.read(rsdp, 36)
            .iter()
            .fold(0u8, |a, b| a.wrapping_add(*b)),
        0
    );
    let xsdt = mem.u64(rsdp + 24);
    let xlen = mem.u32(xsdt + 4) as u64;
    let mut lapics = Vec::new();
    for e in (xsdt + 36..xsdt + xlen).step_by(8) {
        let t = mem.u64(e);
        if mem.read(t, 4) == b"APIC" {
            let len = mem.u32(t + 4) as u64;
            assert_eq!(
                mem.read(t, len as usize)
                    .iter()
                    .fold(0u8, |a, b| a.wrapping_add(*b)),
                0
            );
            for l in (t + 44..t + len).step_by(8) {
                let b = mem.read(l, 8);
                lapics.push((b[2], b[3], b[4] & 1));
            }
        }
    }
    assert_eq!(lapics, vec![(0, 0, 1), (1, 2, 1), (2, 4, 0), (3, 6, 0)]);

    // The identity page table and zeroed special pages.
    let ident = plan.special_pages.ident_pt * 4096;
    assert_eq!(ident, 0xfeffe000);
    assert_eq!(mem.u32(ident), 0xe7);
    assert_eq!(mem.u32(ident + 4 * 1023), (1023 << 22) | 0xe7);
    assert!(mem
        .read(plan.special_pages.xenstore * 4096, 4096)
        .iter()
        .all(|b| *b == 0));
    assert!(mem
        .read(plan.special_pages.console * 4096, 4096)
        .iter()
        .all(|b| *b == 0));
    assert_eq!(plan.special_pages.xenstore, 0xfeffc);
    assert_eq!(plan.special_pages.console, 0xfefff);

    // Writes never overlap each other or the zero ranges.
    let mut ranges: Vec<_> = plan.writes.iter().map(|w| w.range()).collect();
    ranges.extend(plan.zeroes.iter().copied());
    ranges.sort();
    for p in ranges.windows(2) {
        assert!(!p[0].overlaps(&p[1]), "{:x?} overlaps {:x?}", p[0], p[1]);
    }
    assert_eq!(plan.target_pages, 64 * 256);
}

#[test]
fn layout_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, mods) = modules(dir.path());
    let plan = pvh::plan(&request(mods)).unwrap();
    insta::assert_json_snapshot!("hello_layout", plan.layout_json());
    let table = plan
        .layout_table()
        .replace(&dir.path().display().to_string(), "<tmp>");
    insta::assert_snapshot!("hello_table", table);
}

#[test]
fn large_guest_gets_ram_above_4g() {
    let mut req = request(Vec::new());
    req.memory_mib = 6144;
    req.maxmem_mib = 8192;
    let plan = pvh::plan(&req).unwrap();
    let ram: Vec<(u64, u64)> = plan.ram.iter().map(|r| (r.start, r.end)).collect();
    assert_eq!(
        ram,
        vec![
            (0, 0xfc00_0000),
            (1 << 32, (1 << 32) + (8192u64 << 20) - 0xfc00_0000)
        ]
    );
    let last = plan.memmap.last().unwrap();
    assert_eq!((last.addr, last.kind), (1 << 32, e820::RAM));
    assert_eq!(plan.target_pages, 6144 * 256);
    assert_eq!(plan.modules.len(), 0);
    assert_eq!(plan.layout_json()["modules"], serde_json::json!([]));
}

#[test]
fn too_small_a_guest_names_the_numbers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big"), vec![1u8; 3 << 20]).unwrap();
    let mut req = request(vec![ModuleRequest {
        path: dir.path().join("big"),
        cmdline: None,
    }]);
    req.memory_mib = 4;
    req.maxmem_mib = 4;
    let err = pvh::plan(&req).unwrap_err().to_string();
    assert!(err.contains("guest memory too small"), "{err}");
    assert!(err.contains("module 0"), "{err}");
    assert!(err.contains("0x400000"), "{err}");
    assert!(err.contains("at least 5 MiB"), "{err}");
    req.memory_mib = 5;
    req.maxmem_mib = 5;
    assert!(pvh::plan(&req).is_ok());
}

#[test]
fn bad_requests_are_refused() {
    type Edit = fn(&mut BootRequest);
    let cases: Vec<(Edit, &str)> = vec![
        (|r| r.vcpus = 0, "vcpus must be at least 1"),
        (|r| r.maxvcpus = 1, "maxvcpus (1) is less than vcpus (2)"),
        (|r| r.maxvcpus = 129, "more than the 128"),
        (|r| r.maxmem_mib = 32, "maxmem (32 MiB) is less than memory"),
        (|r| r.cmdline = Some("a\0b".into()), "NUL"),
        (|r| r.memory_mib = 1, "too small"),
    ];
    for (f, want) in cases {
        let mut req = request(Vec::new());
        f(&mut req);
        let err = pvh::plan(&req).unwrap_err().to_string();
        assert!(err.contains(want), "{err} should contain {want}");
    }
    let mut req = request(Vec::new());
    req.modules.push(ModuleRequest {
        path: "/nonexistent/initrd".into(),
        cmdline: None,
    });
    let err = pvh::plan(&req).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/initrd"), "{err}");
}

/// Boots hello under QEMU's own PVH loader (`-kernel`), which checks the image itself.
#[test]
fn boots_under_qemu() {
    if Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("RXL_REQUIRE_QEMU").is_none(),
            "RXL_REQUIRE_QEMU is set but qemu-system-x86_64 is not installed"
        );
        eprintln!("SKIPPED boots_under_qemu: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let module: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8).collect();
    std::fs::write(dir.path().join("initrd"), &module).unwrap();
    let out = dir.path().join("out.txt");
    let status = Command::new("timeout")
        .arg("60")
        .arg("qemu-system-x86_64")
        .args([
            "-machine", "pc", "-accel", "tcg", "-m", "64", "-smp", "3", "-kernel",
        ])
        .arg(hello_elf())
        .args(["-append", "hello from qemu"])
        .arg("-initrd")
        .arg(dir.path().join("initrd"))
        .arg("-debugcon")
        .arg(format!("file:{}", out.display()))
        .args([
            "-display",
            "none",
            "-no-reboot",
            "-monitor",
            "none",
            "-serial",
            "none",
        ])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .status()
        .unwrap();
    // isa-debug-exit with value 0 exits with status 1.
    assert_eq!(
        status.code(),
        Some(1),
        "qemu did not exit through isa-debug-exit"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"RXLTEST magic=0x336ec578 version=1"),
        "{text}"
    );
    assert!(lines.contains(&"RXLTEST cmdline=hello from qemu"), "{text}");
    assert!(lines.contains(&"RXLTEST modules=1"), "{text}");
    let sum = pvh::testguest::fnv1a32(&module);
    let m = lines
        .iter()
        .find(|l| l.starts_with("RXLTEST module 0 "))
        .expect(&text);
    assert!(
        m.ends_with(&format!(
            "size=0x{:016x} sum=0x{sum:08x} cmdline=(none)",
            module.len()
        )),
        "{m}"
    );
    assert!(lines
        .iter()
        .any(|l| l.starts_with("RXLTEST memmap 0 addr=0x0000000000000000 ")));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("RXLTEST rsdp=0x") && l.ends_with("sig=RSD PTR ")),
        "{text}"
    );
    assert!(lines.contains(&"RXLTEST madt lapics=3 enabled=3"), "{text}");
    assert_eq!(lines.last(), Some(&"RXLTEST done"), "{text}");
}

/// What the guest will print under Xen for a plan, for the end-to-end scenario to compare.
#[test]
fn expected_guest_output_for_a_plan() {
    let dir = tempfile::tempdir().unwrap();
    let (ramdisk, _, mods) = modules(dir.path());
    let plan = pvh::plan(&request(mods)).unwrap();
    let lines = pvh::testguest::expected_output(&plan).unwrap();
    assert_eq!(lines[0], "RXLTEST magic=0x336ec578 version=1");
    assert_eq!(lines[2], "RXLTEST cmdline=console=hvc0 rxl=1");
    assert_eq!(lines[3], "RXLTEST modules=2");
    assert_eq!(
        lines[4],
        format!(
            "RXLTEST module 0 paddr=0x{:016x} size=0x0000000000002710 sum=0x{:08x} cmdline=(none)",
            plan.modules[0].paddr,
            pvh::testguest::fnv1a32(&ramdisk)
        )
    );
    assert!(lines[5].ends_with("size=0x0000000000000003 sum=0x1a47e90b cmdline=mod one"));
    assert_eq!(
        lines[6],
        format!("RXLTEST memmap_entries={}", plan.memmap.len())
    );
    assert_eq!(
        lines[7],
        "RXLTEST memmap 0 addr=0x0000000000000000 size=0x00000000000ff000 type=1"
    );
    assert_eq!(
        lines[lines.len() - 3],
        "RXLTEST rsdp=0x00000000000fffdc sig=RSD PTR "
    );
    assert_eq!(lines[lines.len() - 2], "RXLTEST madt lapics=4 enabled=2");
    assert_eq!(lines.last().unwrap(), "RXLTEST done");
}
