use std::collections::HashMap;

use pvh::{GuestSize, ModuleInput, Payload};

use crate::start_info_offsets as o;
use crate::testkernel::{PvKernel, LINUX_INIT_P2M, LINUX_VIRT_BASE};
use crate::*;

const VB: u64 = LINUX_VIRT_BASE;

fn size(mib: u64) -> GuestSize {
    GuestSize {
        memory_mib: mib,
        maxmem_mib: mib,
        vcpus: 1,
        maxvcpus: 1,
    }
}

fn ramdisk(len: usize) -> ModuleInput {
    ModuleInput {
        name: "initrd.img".into(),
        data: Payload::bytes((0..len).map(|i| (i % 251) as u8).collect()),
        cmdline: None,
    }
}

fn plan(k: &PvKernel, mods: Vec<ModuleInput>, mib: u64) -> Result<PvPlan, Error> {
    let img = k.image("vmlinuz").expect("probe");
    plan_pv(&img, Some("console=hvc0 root=/dev/xvda1"), mods, size(mib))
}

fn err(k: &PvKernel, mods: Vec<ModuleInput>, mib: u64) -> String {
    plan(k, mods, mib).expect_err("refused").to_string()
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// A p2m that is not the identity, so a wrong pfn shows.
fn p2m(total: u64) -> Vec<u64> {
    (0..total).map(|p| 0x20_0000 + (p ^ 0x155)).collect()
}

/// Walks the generated tables like the MMU: va -> (mfn, writable).
struct Walker {
    tables: HashMap<u64, Box<[u8; 4096]>>,
    cr3: u64,
}

impl Walker {
    fn new(plan: &PvPlan, p2m: &[u64]) -> Walker {
        let mut tables = HashMap::new();
        for (pfn, page) in plan.page_tables(p2m).unwrap() {
            tables.insert(p2m[pfn as usize], page);
        }
        Walker {
            tables,
            cr3: p2m[plan.l4_pfn() as usize],
        }
    }

    fn translate(&self, va: u64) -> Option<(u64, bool)> {
        let mut mfn = self.cr3;
        let mut rw = true;
        for l in (0..4).rev() {
            let t = self.tables.get(&mfn)?;
            let i = ((va >> (12 + 9 * l)) & 511) as usize;
            let e = le64(&t[..], i * 8);
            if e & 1 == 0 {
                return None;
            }
            rw &= e & PAGE_RW != 0;
            if l > 0 {
                assert_eq!(e & 0xfff, PROT_UPPER, "upper-level flags at va {va:#x}");
            } else {
                assert_eq!(e & 0xfff & !PAGE_RW, PROT_L1 & !PAGE_RW);
            }
            mfn = (e >> 12) & ((1 << 40) - 1);
        }
        Some((mfn, rw))
    }
}

#[test]
fn linux_layout_with_init_p2m_is_libxenguests() {
    let k = PvKernel::linux();
    let p = plan(&k, vec![ramdisk(10_000)], 256).unwrap();
    assert_eq!(p.virt_base, VB);
    assert_eq!(p.entry, VB + 0x100_1000);
    assert_eq!(p.hypercall_page_pfn, Some(0x1002));
    assert_eq!(p.total_pages, 65536);
    // Padding up to the kernel's 16 MiB, then kernel, start info, xenstore, console.
    assert_eq!(
        p.kernel_pfns,
        PfnRange {
            start: 0x1000,
            end: 0x1008
        }
    );
    assert_eq!(
        (p.start_info_pfn, p.xenstore_pfn, p.console_pfn),
        (0x1008, 0x1009, 0x100a)
    );
    // 13 tables: 1 L4, 1 L3, 1 L2, 10 L1 for [VB, VB + 20 MiB).
    assert_eq!(
        p.page_tables.pfns,
        PfnRange {
            start: 0x100b,
            end: 0x1018
        }
    );
    assert_eq!(p.page_tables.per_level, [10, 1, 1, 1]);
    assert_eq!(p.page_tables.maps_to, VB + 0x140_0000);
    assert_eq!(p.boot_stack_pfn, 0x1018);
    // Unmapped ramdisk (MOD_START_PFN) after the mapping's end, then the p2m and its tables.
    let rd = p.ramdisk.as_ref().unwrap();
    assert_eq!(
        rd.pfns,
        PfnRange {
            start: 0x1400,
            end: 0x1403
        }
    );
    assert_eq!((rd.vaddr, rd.mod_start, rd.mod_len), (None, 0x1400, 0x3000));
    assert_eq!(p.flags, SIF_VIRT_P2M_4TOOLS | SIF_MOD_START_PFN);
    assert!(!p.p2m.in_initial_mapping);
    assert_eq!(p.p2m.vaddr, LINUX_INIT_P2M);
    assert_eq!(
        p.p2m.pfns,
        PfnRange {
            start: 0x1403,
            end: 0x1483
        }
    );
    assert_eq!(
        p.p2m.segment,
        PfnRange {
            start: 0x1403,
            end: 0x1486
        }
    );
    let m1 = p.page_tables.mappings[1];
    assert_eq!(m1.area.tables, 3);
    assert_eq!(m1.levels[3].pfn, 0x1483);
    assert_eq!(
        p.regs,
        PvRegs {
            rip: VB + 0x100_1000,
            rsp: VB + 0x1019 * 4096,
            rsi: VB + 0x1008 * 4096,
            rflags: 0x200,
            cr3_pfn: 0x100b,
            cs: 0xe033,
            ds: 0xe02b,
            ss: 0xe02b,
            kernel_sp: VB + 0x1019 * 4096,
        }
    );
    assert_eq!(p.populate.superpages_2m, 128);
    assert_eq!(p.populate.pages_4k, 0);
}

#[test]
fn p2m_and_ramdisk_in_the_initial_mapping_without_the_notes() {
    let k = PvKernel {
        init_p2m: None,
        mod_start_pfn: false,
        ..PvKernel::linux()
    };
    let p = plan(&k, vec![ramdisk(10_000)], 256).unwrap();
    let rd = p.ramdisk.as_ref().unwrap();
    assert_eq!(
        rd.pfns,
        PfnRange {
            start: 0x1008,
            end: 0x100b
        }
    );
    assert_eq!(rd.vaddr, Some(VB + 0x1008 * 4096));
    assert_eq!(rd.mod_start, VB + 0x1008 * 4096);
    assert_eq!(p.flags, SIF_VIRT_P2M_4TOOLS);
    assert!(p.p2m.in_initial_mapping);
    assert_eq!(
        p.p2m.pfns,
        PfnRange {
            start: 0x100b,
            end: 0x108b
        }
    );
    assert_eq!(p.p2m.vaddr, VB + 0x100b * 4096);
    assert_eq!(p.start_info_pfn, 0x108b);
    assert_eq!(p.page_tables.pfns.start, 0x108e);
    assert_eq!(p.page_tables.mappings.len(), 1);
    // The INIT_P2M page alignment rule: an unaligned INIT_P2M is ignored as libxenguest does.
    let k2 = PvKernel {
        init_p2m: Some(LINUX_INIT_P2M + 8),
        ..k
    };
    assert!(plan(&k2, vec![], 256).unwrap().p2m.in_initial_mapping);
}

#[test]
fn the_mapping_end_is_4mib_aligned_with_512k_padding() {
    // Grow the kernel until the padding crosses a 4 MiB boundary: the mapping grows by 4 MiB
    // and so do the L1 tables.
    let mut last_end = 0;
    for text_kib in [1024u64, 2400, 2500, 3000, 3500] {
        let k = PvKernel {
            text_len: text_kib << 10,
            ..PvKernel::linux()
        };
        let p = plan(&k, vec![], 256).unwrap();
        let end = p.page_tables.maps_to;
        assert_eq!(end % (4 << 20), 0);
        let used = (p.boot_stack_pfn + 1) * 4096;
        assert!(
            VB + used + (512 << 10) <= end,
            "{text_kib}: {used:#x} {end:#x}"
        );
        assert!(VB + used + (512 << 10) > end - (4 << 20), "{text_kib}");
        assert!(end >= last_end);
        last_end = end;
        assert_eq!(
            p.page_tables.per_level[0],
            (end - VB) >> 21,
            "one L1 per 2 MiB mapped"
        );
    }
}

#[test]
fn page_table_walk_translates_every_boot_address() {
    for (init_p2m, mod_start_pfn) in [
        (Some(LINUX_INIT_P2M), true),
        (None, false),
        (Some(LINUX_INIT_P2M), false),
    ] {
        let k = PvKernel {
            init_p2m,
            mod_start_pfn,
            ..PvKernel::linux()
        };
        let p = plan(&k, vec![ramdisk(9000)], 256).unwrap();
        let map = p2m(p.total_pages);
        let w = Walker::new(&p, &map);
        let pa = |pfn: u64| map[pfn as usize];
        let va_pfn = |va: u64| (va - VB) / 4096;
        assert_eq!(w.translate(p.regs.rip), Some((pa(va_pfn(p.entry)), true)));
        assert_eq!(va_pfn(p.entry), 0x1001);
        assert_eq!(
            w.translate(p.regs.rsp - 8),
            Some((pa(p.boot_stack_pfn), true))
        );
        assert_eq!(w.translate(p.regs.rsi), Some((pa(p.start_info_pfn), true)));
        for i in 0..p.p2m.pfns.len() {
            assert_eq!(
                w.translate(p.p2m.vaddr + i * 4096),
                Some((pa(p.p2m.pfns.start + i), true)),
                "p2m page {i}"
            );
        }
        if !p.p2m.in_initial_mapping {
            assert_eq!(w.translate(p.p2m.vaddr + p.p2m.pfns.len() * 4096), None);
        }
        for wr in &p.writes {
            if wr.what.starts_with("ramdisk") {
                continue;
            }
            let va = VB + wr.pfn * 4096 + wr.offset;
            assert_eq!(w.translate(va), Some((pa(wr.pfn), true)), "{}", wr.what);
        }
        let rd = p.ramdisk.as_ref().unwrap();
        match rd.vaddr {
            Some(v) => {
                for i in 0..rd.pfns.len() {
                    assert_eq!(
                        w.translate(v + i * 4096),
                        Some((pa(rd.pfns.start + i), true))
                    );
                }
            }
            None => assert!(rd.pfns.start * 4096 >= p.page_tables.maps_to - VB),
        }
        // Page-table pages of the initial mapping are mapped read-only; the rest is writable.
        for pfn in p.page_tables.pfns.start..p.page_tables.pfns.end {
            assert_eq!(w.translate(VB + pfn * 4096), Some((pa(pfn), false)));
        }
        assert_eq!(
            w.translate(p.page_tables.maps_to - 4096),
            Some((pa(va_pfn(p.page_tables.maps_to) - 1), true))
        );
        assert_eq!(w.translate(p.page_tables.maps_to), None);
        assert_eq!(w.translate(VB - 4096), None);
        // Xen's hypercall page frame.
        assert_eq!(p.hypercall_page_pfn, Some(0x1002));
    }
}

#[test]
fn page_tables_refuse_a_short_p2m() {
    let p = plan(&PvKernel::linux(), vec![], 256).unwrap();
    let e = p.page_tables(&p2m(0x1000)).unwrap_err().to_string();
    assert!(e.contains("beyond the p2m's 4096 entries"), "{e}");
    let mut big = p2m(p.total_pages);
    big[p.l4_pfn() as usize] = 1 << 41;
    assert!(p
        .page_tables(&big)
        .unwrap_err()
        .to_string()
        .contains("too large"));
    assert!(p.p2m_bytes(&p2m(3)).is_err());
    let bytes = p.p2m_bytes(&p2m(p.total_pages)).unwrap();
    assert_eq!(le64(&bytes, 8 * 5), 0x20_0000 + (5 ^ 0x155));
    // In pieces: whole entries, each at i * piece bytes, adding up to the whole list.
    assert!(p.p2m_pieces(&p2m(3), 4096).is_err());
    let all = p2m(p.total_pages);
    let pieces: Vec<Vec<u8>> = p.p2m_pieces(&all, 4096 + 5).unwrap().collect();
    assert!(pieces.len() > 1);
    assert!(pieces.iter().all(|x| x.len() <= 4096 && x.len() % 8 == 0));
    assert_eq!(pieces[0].len(), 4096);
    assert_eq!(pieces.concat(), bytes);
}

#[test]
fn start_info_fields_at_their_offsets() {
    let p = plan(&PvKernel::linux(), vec![ramdisk(10_000)], 256).unwrap();
    let si = p
        .start_info(&StartInfoInputs {
            shared_info_maddr: 0x1234_5000,
            store_mfn: 0x777,
            store_evtchn: 3,
            console_mfn: 0x888,
            console_evtchn: 4,
        })
        .unwrap();
    assert_eq!(si.len(), 4096);
    assert_eq!(&si[..15], b"xen-3.0-x86_64\0");
    assert_eq!(le64(&si, o::NR_PAGES), 65536);
    assert_eq!(le64(&si, o::SHARED_INFO), 0x1234_5000);
    assert_eq!(le32(&si, o::FLAGS), 24);
    assert_eq!(le64(&si, o::STORE_MFN), 0x777);
    assert_eq!(le32(&si, o::STORE_EVTCHN), 3);
    assert_eq!(le64(&si, o::CONSOLE_MFN), 0x888);
    assert_eq!(le32(&si, o::CONSOLE_EVTCHN), 4);
    assert_eq!(le64(&si, o::PT_BASE), VB + 0x100b * 4096);
    assert_eq!(le64(&si, o::NR_PT_FRAMES), 13);
    assert_eq!(le64(&si, o::MFN_LIST), LINUX_INIT_P2M);
    assert_eq!(le64(&si, o::MOD_START), 0x1400);
    assert_eq!(le64(&si, o::MOD_LEN), 0x3000);
    let cl = b"console=hvc0 root=/dev/xvda1\0";
    assert_eq!(&si[o::CMD_LINE..o::CMD_LINE + cl.len()], cl);
    assert_eq!(le64(&si, o::FIRST_P2M_PFN), 0x1403);
    assert_eq!(le64(&si, o::NR_P2M_FRAMES), 0x83);
    assert!(si[o::SIZE..].iter().all(|b| *b == 0));
    // Without INIT_P2M the two p2m fields stay 0.
    let k = PvKernel {
        init_p2m: None,
        ..PvKernel::linux()
    };
    let si = plan(&k, vec![], 256)
        .unwrap()
        .start_info(&StartInfoInputs::default())
        .unwrap();
    assert_eq!(le64(&si, o::FIRST_P2M_PFN), 0);
    assert_eq!(le64(&si, o::NR_P2M_FRAMES), 0);
    assert_eq!(le64(&si, o::MOD_START), 0);
    assert_eq!(le32(&si, o::FLAGS), SIF_VIRT_P2M_4TOOLS);
}

#[test]
fn command_line_limits() {
    let img = PvKernel::linux().image("vmlinuz").unwrap();
    let ok = "a".repeat(1023);
    let p = plan_pv(&img, Some(&ok), vec![], size(256)).unwrap();
    let si = p.start_info(&StartInfoInputs::default()).unwrap();
    assert_eq!(si[o::CMD_LINE + 1022], b'a');
    assert_eq!(si[o::CMD_LINE + 1023], 0);
    let e = plan_pv(&img, Some(&"a".repeat(1024)), vec![], size(256))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("1024 bytes") && e.contains("at most 1023"),
        "{e}"
    );
    let e = plan_pv(&img, Some("a\0b"), vec![], size(256)).unwrap_err();
    assert!(e.to_string().contains("NUL"), "{e}");
}

#[test]
fn a_kernel_start_off_a_page_boundary_is_refused() {
    let k = PvKernel {
        paddr: 0x100_0800,
        ..PvKernel::linux()
    };
    let e = err(&k, vec![], 256);
    assert!(
        e.starts_with("vmlinuz: the kernel starts at 0xffffffff81000800, not page aligned"),
        "{e}"
    );
}

#[test]
fn writes_and_zeroes_cover_the_kernel() {
    let k = PvKernel::linux();
    let p = plan(&k, vec![ramdisk(10_000)], 256).unwrap();
    let text = &p.writes[0];
    assert_eq!(
        (text.pfn, text.offset, text.data.len()),
        (0x1000, 0, 0x2345)
    );
    assert_eq!(
        text.data.to_vec().unwrap()[0x1234],
        PvKernel::text_byte(0x1234)
    );
    let data = &p.writes[1];
    assert_eq!(
        (data.pfn, data.offset, data.data.len()),
        (0x1003, 0x800, 0x1800)
    );
    assert_eq!(data.data.to_vec().unwrap()[7], PvKernel::data_byte(7));
    let rd = &p.writes[2];
    assert_eq!((rd.pfn, rd.offset, rd.data.len()), (0x1400, 0, 10_000));
    // Text tail page (0x1002), the data page's head (0x1003), the bss (0x1005..0x1008), the
    // ramdisk's last page, the xenstore and console pages.
    assert_eq!(
        p.zeroes,
        vec![
            PfnRange {
                start: 0x1002,
                end: 0x1004
            },
            PfnRange {
                start: 0x1005,
                end: 0x1008
            },
            PfnRange {
                start: 0x1402,
                end: 0x1403
            },
            PfnRange {
                start: 0x1009,
                end: 0x100a
            },
            PfnRange {
                start: 0x100a,
                end: 0x100b
            },
        ]
    );
}

#[test]
fn refusals_name_the_file_and_the_reason() {
    let lin = PvKernel::linux;
    let e = err(
        &PvKernel {
            entry_offset: None,
            ..lin()
        },
        vec![],
        256,
    );
    assert!(e.starts_with("vmlinuz: not a Xen PV kernel"), "{e}");
    let e = err(
        &PvKernel {
            entry_offset: None,
            phys32_offset: Some(0x100),
            ..lin()
        },
        vec![],
        256,
    );
    assert!(e.contains("type = \"pvh\""), "{e}");
    let e = err(
        &PvKernel {
            machine: 3,
            ..lin()
        },
        vec![],
        256,
    );
    assert!(e.contains("64-bit PV guests only"), "{e}");
    for (features, want) in [
        ("!made_up_feature", "does not know"),
        ("!gnttab_map_avail_bits", "does not know"),
        ("!dom0", "unprivileged"),
        ("!auto_translated_physmap", "auto-translated"),
    ] {
        let e = err(
            &PvKernel {
                features: Some(features.into()),
                ..lin()
            },
            vec![],
            256,
        );
        assert!(e.contains(want), "{features}: {e}");
    }
    // Optional unknown features are fine.
    plan(
        &PvKernel {
            features: Some("made_up|!writable_page_tables".into()),
            ..lin()
        },
        vec![],
        256,
    )
    .unwrap();
    let e = err(
        &PvKernel {
            loader: Some("other".into()),
            guest_os: Some("plan9".into()),
            ..lin()
        },
        vec![],
        256,
    );
    assert!(e.contains("LOADER"), "{e}");
    let e = err(
        &PvKernel {
            xen_version: Some("xen-2.0".into()),
            ..lin()
        },
        vec![],
        256,
    );
    assert!(e.contains("xen-3.0"), "{e}");
    // VIRT_BASE above the kernel's virtual start: PADDR_OFFSET above the lowest p_paddr.
    let mut k = lin();
    k.extra.push((4, 0x200_0000u64.to_le_bytes().to_vec()));
    let e = err(&k, vec![], 256);
    assert!(
        e.contains("VIRT_BASE") && e.contains("above the kernel"),
        "{e}"
    );
    // vaddr - virt_base wrapping: VIRT_BASE at the top of the address space.
    let mut k = lin();
    k.extra
        .push((3, 0xffff_ffff_ffff_0000u64.to_le_bytes().to_vec()));
    let e = err(&k, vec![], 256);
    assert!(e.contains("past the top"), "{e}");
    let mut k = lin();
    k.extra.push((1, (VB + 0x200_0000).to_le_bytes().to_vec()));
    let e = err(&k, vec![], 256);
    assert!(
        e.contains("entry") && e.contains("outside the kernel"),
        "{e}"
    );
    let e = err(
        &PvKernel {
            hypercall_offset: Some(0x10_0000),
            ..lin()
        },
        vec![],
        256,
    );
    assert!(e.contains("HYPERCALL_PAGE"), "{e}");
    let e = err(
        &PvKernel {
            init_p2m: Some(VB + 0x100_1000),
            ..lin()
        },
        vec![],
        256,
    );
    assert!(
        e.contains("INIT_P2M") && e.contains("inside the kernel"),
        "{e}"
    );
    // INIT_P2M below VIRT_BASE, the p2m list running into the initial mapping.
    let e = err(
        &PvKernel {
            virt_base: Some(0x4000_0000),
            init_p2m: Some(0x4000_0000 - 0x1000),
            ..lin()
        },
        vec![],
        256,
    );
    assert!(e.contains("overlaps the initial mapping"), "{e}");
    // Non-canonical: the masked address would alias the upper half.
    let e = err(
        &PvKernel {
            init_p2m: Some(0xffff_8000_0000),
            ..lin()
        },
        vec![],
        256,
    );
    assert!(e.contains("INIT_P2M") && e.contains("lower half"), "{e}");
    let e = err(
        &PvKernel {
            init_p2m: Some(0x7fff_ffff_0000),
            ..lin()
        },
        vec![],
        256,
    );
    assert!(e.contains("INIT_P2M") && e.contains("lower half"), "{e}");
}

#[test]
fn module_refusals() {
    let k = PvKernel::linux();
    let e = err(&k, vec![ramdisk(100), ramdisk(100)], 256);
    assert!(e.contains("one module, the ramdisk"), "{e}");
    let mut m = ramdisk(100);
    m.cmdline = Some("x".into());
    assert!(err(&k, vec![m], 256).contains("has no command line"));
    assert!(err(&k, vec![ramdisk(0)], 256).contains("is empty"));
}

#[test]
fn too_small_memory_names_the_least_that_fits() {
    let k = PvKernel::linux();
    let e = plan(&k, vec![], 16).unwrap_err();
    let Error::TooSmall {
        memory_mib,
        needs_mib,
    } = e
    else {
        panic!("{e}")
    };
    assert_eq!(memory_mib, 16);
    assert!(plan(&k, vec![], needs_mib).is_ok());
    assert!(plan(&k, vec![], needs_mib - 1).is_err());
    // The message names both.
    assert_eq!(
        plan(&k, vec![], 16).unwrap_err().to_string(),
        format!("memory = 16 MiB is too small: the boot needs {needs_mib} MiB")
    );
    // A big ramdisk raises it.
    let e = plan(&k, vec![ramdisk(40 << 20)], 32)
        .unwrap_err()
        .to_string();
    assert!(e.contains("too small"), "{e}");
}

#[test]
fn sixteen_gib_guest() {
    let k = PvKernel::debian_like();
    let p = plan(&k, vec![ramdisk(30 << 20)], 16 << 10).unwrap();
    assert_eq!(p.total_pages, 4 << 20);
    assert_eq!(p.p2m.pfns.len(), 8192);
    assert_eq!(p.page_tables.mappings[1].area.tables, 1 + 1 + 16);
    assert_eq!(p.populate.superpages_2m, 8192);
    let map = p2m(p.total_pages);
    let w = Walker::new(&p, &map);
    let last = p.p2m.vaddr + (p.p2m.pfns.len() - 1) * 4096;
    assert_eq!(
        w.translate(last),
        Some((map[(p.p2m.pfns.end - 1) as usize], true))
    );
}

#[test]
fn layout_renders() {
    let p = plan(&PvKernel::linux(), vec![ramdisk(10_000)], 256).unwrap();
    let t = p.layout_table();
    assert!(t.contains("ramdisk (unmapped)"), "{t}");
    assert!(t.contains("INIT_P2M"), "{t}");
    let j = p.layout_json();
    assert_eq!(j["type"], "pv");
    assert_eq!(j["start_info_pfn"], 0x1008);
    assert_eq!(j["regions"].as_array().unwrap().len(), 9);
}

#[test]
fn a_kernel_no_guest_can_hold_says_how_much_it_needs() {
    // No VIRT_BASE: the kernel's 16 MiB p_paddr becomes its virtual (and pseudo-physical)
    // offset; with a high p_paddr no guest size fits.
    let k = PvKernel {
        virt_base: None,
        paddr: 0x40_0000_0000_0000,
        ..PvKernel::linux()
    };
    let e = plan(&k, vec![], 256).unwrap_err();
    let Error::TooSmall { needs_mib, .. } = e else {
        panic!("{e}")
    };
    assert!(needs_mib > pvh::layout::MAX_MEMORY_MIB, "{needs_mib}");
}
