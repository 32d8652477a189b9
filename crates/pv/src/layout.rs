//! The allocation walk of `xc_dom_build_image` for x86_64 PV: segments and pages handed out
//! in pfn order from VIRT_BASE, the page tables counted as `count_pgtables` does.

use pvh::{GuestSize, KernelImage, ModuleInput, Payload};

use crate::{
    Error, Kernel, Level, Mapping, P2mPlacement, PageTablePlan, PfnRange, PopulatePlan, PvPlan,
    PvRegs, PvWrite, RamdiskPlacement, Region, FLAT_KERNEL_CS, FLAT_KERNEL_DS, PAGE_SIZE,
    SIF_MOD_START_PFN, SIF_VIRT_P2M_4TOOLS,
};

/// 48 virtual address bits (VIRT_BITS_X86_64).
const VADDR_MASK: u64 = (1 << 48) - 1;
/// Padding libxenguest adds to the initial mapping: 512 KiB.
const PADDING_PAGES: u64 = 512 * 1024 / PAGE_SIZE;
/// The mapping's end is rounded up to 4 MiB.
const ALIGN_4M: u64 = (1 << 22) - 1;

/// Why a layout attempt stopped.
#[derive(Debug)]
pub(crate) enum Stop {
    /// Not enough pages; the attempt went on to measure.
    Short,
    /// A refusal.
    Fatal(Error),
}

/// A contiguous allocation.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Seg {
    pub pfn: u64,
    pub pages: u64,
    pub vstart: u64,
}

struct Alloc<'k> {
    kernel: &'k Kernel,
    virt: u64,
    pfn: u64,
    /// Pages available (the guest's total when `strict`).
    limit: u64,
    strict: bool,
    /// The most pages any step needed.
    need: u64,
}

impl Alloc<'_> {
    fn overflow(&self, what: &str) -> Stop {
        Stop::Fatal(Error::Kernel {
            path: String::new(),
            reason: format!(
                "the {what} would end past the top of the virtual address space (VIRT_BASE \
                 {:#x})",
                self.kernel.virt_base
            ),
        })
    }

    fn take(&mut self, what: &str, pages: u64) -> Result<(), Stop> {
        let end = self.pfn.checked_add(pages).ok_or(Stop::Short)?;
        self.need = self.need.max(end);
        if self.strict && end > self.limit {
            return Err(Stop::Short);
        }
        self.pfn = end;
        self.virt = pages
            .checked_mul(PAGE_SIZE)
            .and_then(|b| self.virt.checked_add(b))
            .ok_or_else(|| self.overflow(what))?;
        Ok(())
    }

    fn pad(&mut self, boundary: u64, what: &str) -> Result<(), Stop> {
        if boundary % PAGE_SIZE != 0 {
            return Err(Stop::Fatal(Error::Kernel {
                path: String::new(),
                reason: format!("the {what} starts at {boundary:#x}, not page aligned"),
            }));
        }
        if boundary < self.virt {
            return Err(Stop::Fatal(Error::Kernel {
                path: String::new(),
                reason: format!(
                    "the {what} starts at {boundary:#x}, below the layout's end {:#x}",
                    self.virt
                ),
            }));
        }
        self.take("padding", (boundary - self.virt) / PAGE_SIZE)
    }

    fn segment(&mut self, what: &str, start: Option<u64>, bytes: u64) -> Result<Seg, Stop> {
        if let Some(s) = start {
            self.pad(s, what)?;
        }
        let pages = bytes.div_ceil(PAGE_SIZE);
        let seg = Seg {
            pfn: self.pfn,
            pages,
            vstart: self.virt,
        };
        self.take(what, pages)?;
        Ok(seg)
    }

    fn page(&mut self, what: &str) -> Result<u64, Stop> {
        Ok(self.segment(what, None, PAGE_SIZE)?.pfn)
    }

    /// `count_pgtables`: the tables a mapping of `[from, to]` (to inclusive) onto pfns from
    /// `pfn` needs, placed from `table_base`, given the mappings that already exist.
    fn count(
        &mut self,
        maps: &[Mapping],
        from: u64,
        to: u64,
        pfn: u64,
        table_base: u64,
        p2m_size: u64,
    ) -> Result<Mapping, Stop> {
        let pfn_end = pfn.saturating_add(to.wrapping_sub(from) >> 12);
        self.need = self.need.max(pfn_end.saturating_add(1));
        if self.strict && pfn_end >= p2m_size {
            return Err(Stop::Short);
        }
        for m in maps {
            if from < m.area.to && to > m.area.from {
                return Err(Stop::Fatal(Error::Kernel {
                    path: String::new(),
                    reason: format!(
                        "INIT_P2M mapping [{from:#x}, {to:#x}] overlaps the initial mapping \
                         [{:#x}, {:#x}]",
                        m.area.from, m.area.to
                    ),
                }));
            }
        }
        let mut map = Mapping::default();
        map.area.from = from & VADDR_MASK;
        map.area.to = to & VADDR_MASK;
        for l in (0..4).rev() {
            let mut lv = Level {
                pfn: table_base + map.area.tables,
                ..Level::default()
            };
            if l == 3 {
                if maps.is_empty() {
                    lv.from = 0;
                    lv.to = VADDR_MASK;
                    lv.tables = 1;
                    map.area.tables += 1;
                }
                map.levels[l] = lv;
                continue;
            }
            let bits = 12 + (l as u32 + 1) * 9;
            let mask = (1u64 << bits) - 1;
            lv.from = map.area.from & !mask;
            lv.to = map.area.to | mask;
            for c in maps.iter().map(|m| m.levels[l]) {
                if c.from == c.to {
                    continue;
                }
                if lv.from >= c.from && lv.to <= c.to {
                    lv.from = 0;
                    lv.to = 0;
                    break;
                }
                if lv.from >= c.from && lv.from <= c.to {
                    lv.from = c.to.wrapping_add(1);
                }
                if lv.to >= c.from && lv.to <= c.to {
                    lv.to = c.from.wrapping_sub(1);
                }
            }
            if lv.from < lv.to {
                lv.tables = ((lv.to - lv.from) >> bits) + 1;
            }
            map.area.tables += lv.tables;
            map.levels[l] = lv;
        }
        Ok(map)
    }
}

/// The result of the allocation walk.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub kernel: Seg,
    pub ramdisk: Option<(Seg, bool)>,
    pub p2m: Seg,
    pub p2m_list_pages: u64,
    pub p2m_in_mapping: bool,
    pub start_info: u64,
    pub xenstore: u64,
    pub console: u64,
    pub pgtables: Seg,
    pub boot_stack: u64,
    pub maps: Vec<Mapping>,
    pub pgtab_end: u64,
}

/// The walk itself, in `xc_dom_build_image`'s order, for a guest of `total` pages.
fn build(k: &Kernel, ramdisk: Option<u64>, total: u64) -> Result<Layout, Stop> {
    let mut a = Alloc {
        kernel: k,
        virt: k.virt_base,
        pfn: 0,
        limit: total,
        strict: true,
        need: 0,
    };
    build_in(&mut a, k, ramdisk, total)
}

fn build_in(
    a: &mut Alloc<'_>,
    k: &Kernel,
    ramdisk: Option<u64>,
    total: u64,
) -> Result<Layout, Stop> {
    let kernel = a.segment("kernel", Some(k.kstart), k.kend - k.kstart)?;
    let mut rd = None;
    if let (Some(len), false) = (ramdisk, k.unmapped_initrd) {
        rd = Some((a.segment("ramdisk", None, len)?, true));
    }
    let p2m_bytes = (total * 8).div_ceil(PAGE_SIZE) * PAGE_SIZE;
    let p2m_base = k
        .p2m_base
        .filter(|b| *b < k.virt_base && b % PAGE_SIZE == 0);
    let mut p2m = None;
    if p2m_base.is_none() {
        p2m = Some(a.segment("p2m list", None, p2m_bytes)?);
    }
    let start_info = a.page("start info")?;
    let xenstore = a.page("xenstore")?;
    let console = a.page("console")?;
    let extra = 1 + PADDING_PAGES;
    let mut pages = extra;
    let (map0, try_end) = loop {
        let try_end = pages
            .checked_mul(PAGE_SIZE)
            .and_then(|b| a.virt.checked_add(b))
            .filter(|e| *e | ALIGN_4M != u64::MAX)
            .ok_or_else(|| a.overflow("initial mapping"))?
            | ALIGN_4M;
        let m = a.count(&[], k.virt_base, try_end, 0, a.pfn, total)?;
        pages = m.area.tables + extra;
        let fits = pages
            .checked_mul(PAGE_SIZE)
            .and_then(|b| a.virt.checked_add(b))
            .is_some_and(|e| e <= try_end + 1);
        if fits {
            break (m, try_end);
        }
    };
    let pgtables = a.segment("page tables", None, map0.area.tables * PAGE_SIZE)?;
    let boot_stack = a.page("boot stack")?;
    a.pad(try_end + 1, "end of the initial mapping")?;
    if let (Some(len), true) = (ramdisk, k.unmapped_initrd) {
        rd = Some((a.segment("ramdisk", None, len)?, false));
    }
    let mut maps = vec![map0];
    let (p2m, p2m_in_mapping) = match (p2m, p2m_base) {
        (Some(seg), _) => (seg, true),
        (None, Some(base)) => {
            let to = base
                .checked_add(p2m_bytes - 1)
                .filter(|t| *t <= VADDR_MASK >> 1);
            let Some(to) = to else {
                return Err(Stop::Fatal(Error::Kernel {
                    path: String::new(),
                    reason: format!(
                        "INIT_P2M {base:#x}: the {p2m_bytes}-byte p2m list would run past the \
                         lower half of the address space"
                    ),
                }));
            };
            let mut m = a.count(&maps, base, to, a.pfn, a.pfn, total)?;
            m.area.pfn = a.pfn;
            for lv in &mut m.levels {
                lv.pfn += p2m_bytes / PAGE_SIZE;
            }
            let mut seg = a.segment(
                "p2m list and its page tables",
                None,
                p2m_bytes + m.area.tables * PAGE_SIZE,
            )?;
            seg.vstart = base;
            maps.push(m);
            (seg, false)
        }
        (None, None) => unreachable_p2m()?,
    };
    Ok(Layout {
        kernel,
        ramdisk: rd,
        p2m,
        p2m_list_pages: p2m_bytes / PAGE_SIZE,
        p2m_in_mapping,
        start_info,
        xenstore,
        console,
        pgtables,
        boot_stack,
        maps,
        pgtab_end: try_end + 1,
    })
}

fn unreachable_p2m() -> Result<(Seg, bool), Stop> {
    Err(Stop::Fatal(Error::Request(
        "internal: no p2m placement".into(),
    )))
}

fn kernel_err(k: Error, path: &str) -> Error {
    match k {
        Error::Kernel { path: p, reason } if p.is_empty() => Error::Kernel {
            path: path.to_owned(),
            reason,
        },
        e => e,
    }
}

/// Lays out a guest of `total` pages, or finds the least memory the layout fits in.
pub(crate) fn fit(
    k: &Kernel,
    ramdisk: Option<u64>,
    total: u64,
    memory_mib: u64,
    path: &str,
) -> Result<Layout, Error> {
    match build(k, ramdisk, total) {
        Ok(l) => return Ok(l),
        Err(Stop::Fatal(e)) => return Err(kernel_err(e, path)),
        Err(Stop::Short) => {}
    }
    // Measure: what the walk needs at this size, then grow until a strict walk fits (the
    // p2m grows with the guest, so a few rounds may be needed).
    let mut try_total = total;
    let mut need = total + 1;
    for _ in 0..64 {
        let mut a = Alloc {
            kernel: k,
            virt: k.virt_base,
            pfn: 0,
            limit: u64::MAX,
            strict: false,
            need: 0,
        };
        match build_in(&mut a, k, ramdisk, try_total) {
            Ok(_) => need = a.need,
            Err(Stop::Fatal(e)) => return Err(kernel_err(e, path)),
            Err(Stop::Short) => {
                need = u64::MAX;
                break;
            }
        }
        let next = need.max(try_total + 1).div_ceil(256) * 256;
        if next > pvh::layout::MAX_MEMORY_MIB << 8 {
            need = next;
            break;
        }
        try_total = next;
        match build(k, ramdisk, try_total) {
            Ok(_) => {
                return Err(Error::TooSmall {
                    memory_mib,
                    needs_mib: try_total >> 8,
                })
            }
            Err(Stop::Fatal(e)) => return Err(kernel_err(e, path)),
            Err(Stop::Short) => {}
        }
    }
    Err(Error::TooSmall {
        memory_mib,
        needs_mib: need.div_ceil(256).max(memory_mib + 1),
    })
}

/// Pseudo-physical address of a kernel byte at physical (ELF `p_paddr`) address `paddr`.
fn kernel_pa(k: &Kernel, lay: &Layout, paddr: u64) -> u64 {
    lay.kernel.pfn * PAGE_SIZE + (paddr - k.pstart)
}

/// The kernel pages not wholly covered by file bytes (bss, gaps, partial pages).
fn kernel_zeroes(image: &KernelImage, k: &Kernel, lay: &Layout) -> Vec<PfnRange> {
    let mut covered: Vec<(u64, u64)> = image
        .info
        .segments
        .iter()
        .filter(|s| s.filesz > 0)
        .map(|s| {
            let a = kernel_pa(k, lay, s.paddr);
            (a, a + s.filesz)
        })
        .collect();
    covered.sort_unstable();
    let start = lay.kernel.pfn * PAGE_SIZE;
    let end = (lay.kernel.pfn + lay.kernel.pages) * PAGE_SIZE;
    let mut out: Vec<PfnRange> = Vec::new();
    let mut push = |from: u64, to: u64| {
        if from >= to {
            return;
        }
        let r = PfnRange {
            start: from / PAGE_SIZE,
            end: to.div_ceil(PAGE_SIZE),
        };
        match out.last_mut() {
            Some(l) if l.end >= r.start => l.end = l.end.max(r.end),
            _ => out.push(r),
        }
    };
    let mut at = start;
    for (a, b) in covered {
        push(at, a);
        at = at.max(b);
    }
    push(at, end);
    out
}

fn range(seg: Seg) -> PfnRange {
    PfnRange {
        start: seg.pfn,
        end: seg.pfn + seg.pages,
    }
}

fn one(pfn: u64) -> PfnRange {
    PfnRange {
        start: pfn,
        end: pfn + 1,
    }
}

/// Turns the walk into the plan.
pub(crate) fn assemble(
    image: &KernelImage,
    k: &Kernel,
    lay: Layout,
    ramdisk: Option<ModuleInput>,
    cmdline: Option<String>,
    total: u64,
    size: GuestSize,
) -> PvPlan {
    let va = |pfn: u64| k.virt_base + pfn * PAGE_SIZE;
    let mut writes = Vec::new();
    for s in image.info.segments.iter().filter(|s| s.filesz > 0) {
        let pa = kernel_pa(k, &lay, s.paddr);
        writes.push(PvWrite {
            pfn: pa / PAGE_SIZE,
            offset: pa % PAGE_SIZE,
            data: Payload::Shared {
                buf: image.elf.clone(),
                start: s.offset as usize,
                len: s.filesz as usize,
            },
            what: format!("kernel segment {} of {}", s.index, image.path),
        });
    }
    let mut zeroes = kernel_zeroes(image, k, &lay);
    let mut flags = SIF_VIRT_P2M_4TOOLS;
    let mut regions = vec![Region {
        what: "kernel".into(),
        pfns: range(lay.kernel),
        vaddr: Some(lay.kernel.vstart),
    }];
    let rd = match (ramdisk, lay.ramdisk) {
        (Some(m), Some((seg, mapped))) => {
            let size = m.data.len();
            if size % PAGE_SIZE != 0 {
                zeroes.push(one(seg.pfn + size / PAGE_SIZE));
            }
            writes.push(PvWrite {
                pfn: seg.pfn,
                offset: 0,
                data: m.data,
                what: format!("ramdisk {}", m.name),
            });
            let (mod_start, vaddr) = if mapped {
                (seg.vstart, Some(seg.vstart))
            } else {
                flags |= SIF_MOD_START_PFN;
                (seg.pfn, None)
            };
            regions.push(Region {
                what: if mapped {
                    "ramdisk".into()
                } else {
                    "ramdisk (unmapped)".into()
                },
                pfns: range(seg),
                vaddr,
            });
            Some(RamdiskPlacement {
                name: m.name,
                pfns: range(seg),
                size,
                vaddr,
                mod_start,
                mod_len: seg.pages * PAGE_SIZE,
            })
        }
        _ => None,
    };
    let p2m_list = PfnRange {
        start: lay.p2m.pfn,
        end: lay.p2m.pfn + lay.p2m_list_pages,
    };
    if (total * 8) % PAGE_SIZE != 0 {
        zeroes.push(one(p2m_list.end - 1));
    }
    zeroes.push(one(lay.xenstore));
    zeroes.push(one(lay.console));
    regions.push(Region {
        what: "p2m list".into(),
        pfns: p2m_list,
        vaddr: Some(lay.p2m.vstart),
    });
    for (what, pfn) in [
        ("start info", lay.start_info),
        ("xenstore", lay.xenstore),
        ("console", lay.console),
    ] {
        regions.push(Region {
            what: what.into(),
            pfns: one(pfn),
            vaddr: Some(va(pfn)),
        });
    }
    regions.push(Region {
        what: "page tables".into(),
        pfns: range(lay.pgtables),
        vaddr: Some(lay.pgtables.vstart),
    });
    regions.push(Region {
        what: "boot stack".into(),
        pfns: one(lay.boot_stack),
        vaddr: Some(va(lay.boot_stack)),
    });
    if let Some(m) = lay.maps.get(1) {
        regions.push(Region {
            what: "p2m page tables".into(),
            pfns: PfnRange {
                start: m.levels[3].pfn,
                end: m.levels[3].pfn + m.area.tables,
            },
            vaddr: None,
        });
    }
    regions.sort_by_key(|r| r.pfns.start);
    let map0 = lay.maps[0];
    let rsp = va(lay.boot_stack + 1);
    PvPlan {
        image_path: image.path.clone(),
        virt_base: k.virt_base,
        entry: k.entry,
        hypercall_page_pfn: k.hypercall.map(|h| (h - k.virt_base) / PAGE_SIZE),
        total_pages: total,
        writes,
        zeroes,
        p2m: P2mPlacement {
            pfns: p2m_list,
            vaddr: lay.p2m.vstart,
            in_initial_mapping: lay.p2m_in_mapping,
            entries: total,
            segment: range(lay.p2m),
        },
        start_info_pfn: lay.start_info,
        xenstore_pfn: lay.xenstore,
        console_pfn: lay.console,
        boot_stack_pfn: lay.boot_stack,
        kernel_pfns: range(lay.kernel),
        page_tables: PageTablePlan {
            pfns: range(lay.pgtables),
            per_level: [
                map0.levels[0].tables,
                map0.levels[1].tables,
                map0.levels[2].tables,
                map0.levels[3].tables,
            ],
            maps_from: k.virt_base,
            maps_to: lay.pgtab_end,
            mappings: lay.maps,
        },
        ramdisk: rd,
        cmdline,
        flags,
        regs: PvRegs {
            rip: k.entry,
            rsp,
            rsi: va(lay.start_info),
            rflags: 1 << 9,
            cr3_pfn: lay.pgtables.pfn,
            cs: FLAT_KERNEL_CS,
            ds: FLAT_KERNEL_DS,
            ss: FLAT_KERNEL_DS,
            kernel_sp: rsp,
        },
        populate: PopulatePlan {
            pfns: PfnRange {
                start: 0,
                end: total,
            },
            superpages_2m: total >> 9,
            pages_4k: total & 511,
        },
        regions,
        size,
    }
}
