//! Debian's real images: the linux-image-amd64 kernel (bzImage, xz payload) and
//! grub-xen-host's PVH GRUB. Fetched with `apt-get download` and cached (see common).

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use common::{debian_grub_pvh, debian_vmlinuz, readelf_phys32_entry, GuestMem};
use pvh::{BootRequest, Compression, Container, ImageSource, ModuleRequest, ProbeOptions};

#[test]
fn debian_kernel_probes_and_plans() {
    let vmlinuz = debian_vmlinuz();
    let img = pvh::probe_file(&vmlinuz, &ProbeOptions::default()).unwrap();
    let Container::BzImage {
        compression,
        payload_offset,
        payload_length,
        protocol,
    } = img.container
    else {
        panic!("not a bzImage: {:?}", img.container)
    };
    assert_eq!(compression, Compression::Xz);
    assert!(protocol >= 0x20f, "protocol {protocol:#x}");

    // Our decompression equals `xz -dc` of the same payload, byte for byte.
    let file = std::fs::read(&vmlinuz).unwrap();
    let payload = &file[payload_offset as usize..(payload_offset + payload_length) as usize];
    let mut xz = Command::new("xz")
        .args(["-dc", "--single-stream"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("xz is needed for this test");
    let mut stdin = xz.stdin.take().unwrap();
    let owned = payload.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&owned);
    });
    let out = xz.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(
        out.stdout.len() > 30 << 20,
        "xz -dc gave {} bytes",
        out.stdout.len()
    );
    assert!(
        img.elf.as_slice() == out.stdout.as_slice(),
        "decompressed bytes differ from xz -dc"
    );

    // The entry equals the PHYS32_ENTRY note readelf shows.
    let dir = tempfile::tempdir().unwrap();
    let vmlinux = dir.path().join("vmlinux");
    std::fs::write(&vmlinux, &out.stdout).unwrap();
    let want = readelf_phys32_entry(&vmlinux);
    assert_eq!(img.pvh_entry().unwrap(), want);
    assert_eq!(img.info.class, pvh::elf::ElfClass::Elf64);
    assert!(img
        .info
        .notes
        .notes
        .iter()
        .any(|n| matches!(n, pvh::XenNote::GuestOs(s) if s == "linux")));
    assert!(img
        .info
        .notes
        .has_feature(pvh::notes::XENFEAT_LINUX_RSDP_UNRESTRICTED));

    // Plan a 512 MiB, 2-vCPU guest with a ramdisk.
    std::fs::write(dir.path().join("initrd"), vec![7u8; 1 << 20]).unwrap();
    let req = BootRequest {
        image: ImageSource::Kernel(vmlinuz.clone()),
        cmdline: Some("console=hvc0 root=/dev/xvda1".into()),
        modules: vec![ModuleRequest {
            path: dir.path().join("initrd"),
            cmdline: None,
        }],
        memory_mib: 512,
        maxmem_mib: 512,
        vcpus: 2,
        maxvcpus: 2,
    };
    let plan = pvh::plan(&req).unwrap();
    assert_eq!(plan.entry, want);
    // Linux announces linux_rsdp_unrestricted: the RSDP goes after the tables, in the hole.
    let rsdp = plan.rsdp_paddr.unwrap();
    assert!(rsdp > 0xfc00_1000 && rsdp < 0xfc10_0000, "{rsdp:#x}");
    assert!(plan.kernel.iter().all(|k| k.paddr >= 16 << 20));
    let kend = plan.kernel.iter().map(|k| k.paddr + k.memsz).max().unwrap();
    assert_eq!(plan.modules[0].paddr, kend.div_ceil(4096) * 4096);
    let mem = GuestMem::apply(&plan);
    // Every segment's bytes are the ELF's.
    for (seg, placed) in img.info.segments.iter().zip(&plan.kernel) {
        assert_eq!(seg.paddr, placed.paddr);
        let probe = 4096.min(seg.filesz as usize);
        assert_eq!(
            mem.read(seg.paddr, probe),
            &out.stdout[seg.offset as usize..seg.offset as usize + probe]
        );
    }
    assert_eq!(mem.read(rsdp, 8), b"RSD PTR ");
    assert_eq!(mem.u64(plan.start_info_paddr + 32), rsdp);
}

#[test]
fn debian_grub_pvh_probes_and_plans() {
    let grub = debian_grub_pvh();
    let img = pvh::probe_file(&grub, &ProbeOptions::default()).unwrap();
    assert_eq!(img.container, Container::Elf);
    assert_eq!(img.info.class, pvh::elf::ElfClass::Elf32);
    let want = readelf_phys32_entry(&grub);
    assert_eq!(img.pvh_entry().unwrap(), want);
    let req = BootRequest {
        image: ImageSource::Firmware(grub.clone()),
        cmdline: Some("(xen/xvda,msdos1)/boot/grub/grub.cfg".into()),
        modules: Vec::new(),
        memory_mib: 128,
        maxmem_mib: 128,
        vcpus: 1,
        maxvcpus: 1,
    };
    let plan = pvh::plan(&req).unwrap();
    assert_eq!(plan.entry, want);
    assert_eq!(plan.kernel.len(), img.info.segments.len());
    // GRUB does not announce linux_rsdp_unrestricted: RSDP just below 1 MiB.
    assert_eq!(plan.rsdp_paddr, Some(0xfffdc));
    let mem = GuestMem::apply(&plan);
    let file = std::fs::read(&grub).unwrap();
    for s in &img.info.segments {
        assert_eq!(
            mem.read(s.paddr, s.filesz as usize),
            &file[s.offset as usize..(s.offset + s.filesz) as usize]
        );
        assert!(mem
            .read(s.paddr + s.filesz, (s.memsz - s.filesz) as usize)
            .iter()
            .all(|b| *b == 0));
    }
}

#[test]
fn pvgrub_resolves_from_a_search_path() {
    let grub = debian_grub_pvh();
    let search = pvh::FirmwareSearch {
        dirs: vec!["/nonexistent".into(), grub.parent().unwrap().to_path_buf()],
        kernel_cache: None,
    };
    assert_eq!(
        pvh::resolve_firmware(pvh::FirmwareName::Pvgrub, &search).unwrap(),
        grub
    );
}
