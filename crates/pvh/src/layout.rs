//! The PVH layout planner: where every byte goes in guest-physical memory.

use std::path::PathBuf;

use serde::Serialize;
use xen_host::{e820, E820Entry, PAGE_SIZE};

use crate::acpi::{self, ACPI_INFO_PADDR, MAX_VCPUS};
use crate::error::Error;
use crate::image::KernelImage;
use crate::notes::XENFEAT_LINUX_RSDP_UNRESTRICTED;
use crate::payload::Payload;
use crate::regs::CpuRegs;

/// Start of the MMIO hole below 4 GiB for PVH (the ACPI info page, as libxl computes it).
pub const MMIO_HOLE_START: u64 = ACPI_INFO_PADDR;
/// 4 GiB: where RAM resumes above the hole.
pub const FOUR_GIB: u64 = 1 << 32;
/// `X86_HVM_END_SPECIAL_REGION`: the pfn after the last special page.
pub const SPECIAL_REGION_END_PFN: u64 = 0xff000;
/// `X86_HVM_NR_SPECIAL_PAGES`.
pub const NR_SPECIAL_PAGES: u64 = 8;
/// `struct hvm_start_info` size.
pub const START_INFO_SIZE: u64 = 56;
/// `struct hvm_modlist_entry` size.
pub const MODLIST_ENTRY_SIZE: u64 = 32;
/// `struct hvm_memmap_table_entry` size.
pub const MEMMAP_ENTRY_SIZE: u64 = 24;
/// `XEN_HVM_START_MAGIC_VALUE`.
pub const START_INFO_MAGIC: u32 = 0x336e_c578;
/// Longest command line accepted (kernel or module), in bytes.
pub const MAX_CMDLINE: usize = 65536;
/// Largest guest accepted (bytes of maxmem): 16 TiB.
pub const MAX_MEMORY_MIB: u64 = 16 << 20;

const MIB: u64 = 1 << 20;

/// A half-open range of guest-physical addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Range {
    /// First byte.
    pub start: u64,
    /// First byte past the end.
    pub end: u64,
}

impl Range {
    /// `[start, start + len)`, if it does not overflow.
    pub fn at(start: u64, len: u64) -> Option<Range> {
        Some(Range {
            start,
            end: start.checked_add(len)?,
        })
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Whether the two ranges share a byte.
    pub fn overlaps(&self, other: &Range) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// Whether `other` lies inside this range.
    pub fn contains_range(&self, other: &Range) -> bool {
        other.start >= self.start && other.end <= self.end
    }

    /// The frame numbers the range touches.
    pub fn pfns(&self) -> std::ops::Range<u64> {
        self.start / PAGE_SIZE..self.end.div_ceil(PAGE_SIZE)
    }
}

/// One copy into guest memory.
#[derive(Clone, Debug)]
pub struct Write {
    /// Guest-physical address of the first byte.
    pub paddr: u64,
    /// The bytes.
    pub data: Payload,
    /// What it is, for messages and the layout table.
    pub what: String,
}

impl Write {
    /// The guest range written.
    pub fn range(&self) -> Range {
        Range {
            start: self.paddr,
            end: self.paddr.saturating_add(self.data.len()),
        }
    }
}

/// The HVM special pages (frame numbers), as libxenguest places them for PVH.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SpecialPages {
    /// HVM_PARAM_PAGING_RING_PFN.
    pub paging: u64,
    /// HVM_PARAM_MONITOR_RING_PFN.
    pub access: u64,
    /// HVM_PARAM_SHARING_RING_PFN.
    pub sharing: u64,
    /// HVM_PARAM_BUFIOREQ_PFN.
    pub bufioreq: u64,
    /// HVM_PARAM_STORE_PFN.
    pub xenstore: u64,
    /// HVM_PARAM_IOREQ_PFN.
    pub ioreq: u64,
    /// HVM_PARAM_IDENT_PT (the page's address is the param value).
    pub ident_pt: u64,
    /// HVM_PARAM_CONSOLE_PFN.
    pub console: u64,
}

impl SpecialPages {
    /// The fixed PVH special pages.
    pub const PVH: SpecialPages = {
        let base = SPECIAL_REGION_END_PFN - NR_SPECIAL_PAGES;
        SpecialPages {
            paging: base,
            access: base + 1,
            sharing: base + 2,
            bufioreq: base + 3,
            xenstore: base + 4,
            ioreq: base + 5,
            ident_pt: base + 6,
            console: base + 7,
        }
    };

    /// The region they occupy.
    pub fn range(&self) -> Range {
        Range {
            start: (SPECIAL_REGION_END_PFN - NR_SPECIAL_PAGES) * PAGE_SIZE,
            end: SPECIAL_REGION_END_PFN * PAGE_SIZE,
        }
    }

    /// All eight pfns, in region order.
    pub fn pfns(&self) -> [u64; 8] {
        [
            self.paging,
            self.access,
            self.sharing,
            self.bufioreq,
            self.xenstore,
            self.ioreq,
            self.ident_pt,
            self.console,
        ]
    }
}

/// One loaded kernel segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SegmentPlacement {
    /// Guest-physical address.
    pub paddr: u64,
    /// Bytes copied from the image.
    pub filesz: u64,
    /// Bytes occupied (filesz..memsz is zeroed).
    pub memsz: u64,
}

/// One placed module.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModulePlacement {
    /// Where it came from.
    pub source: String,
    /// Guest-physical address (page aligned).
    pub paddr: u64,
    /// Size in bytes.
    pub size: u64,
    /// Its command line.
    pub cmdline: Option<String>,
    /// Where its command line is (in the start_info block).
    pub cmdline_paddr: Option<u64>,
}

/// A module to place: its bytes and command line.
#[derive(Clone, Debug)]
pub struct ModuleInput {
    /// Name for messages (the path).
    pub name: String,
    /// The bytes.
    pub data: Payload,
    /// Its command line.
    pub cmdline: Option<String>,
}

impl ModuleInput {
    /// A module read from `path` when written; its size is taken now.
    pub fn from_file(path: PathBuf, cmdline: Option<String>) -> Result<ModuleInput, Error> {
        let name = path.display().to_string();
        let meta = std::fs::metadata(&path).map_err(|e| Error::io(&name, "stat module", e))?;
        if !meta.is_file() {
            return Err(Error::Request(format!(
                "module {name} is not a regular file"
            )));
        }
        Ok(ModuleInput {
            name,
            data: Payload::File {
                path,
                offset: 0,
                len: meta.len(),
            },
            cmdline,
        })
    }
}

/// Memory and vCPU sizes of the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct GuestSize {
    /// `memory` in MiB (the target).
    pub memory_mib: u64,
    /// `maxmem` in MiB (what the memory map covers).
    pub maxmem_mib: u64,
    /// Online vCPUs at boot.
    pub vcpus: u32,
    /// Possible vCPUs.
    pub maxvcpus: u32,
}

/// The complete boot layout. Pure data: the toolstack populates [`BootPlan::populate`],
/// applies `zeroes` and `writes`, sets the memory map and the BSP registers.
#[derive(Clone, Debug)]
pub struct BootPlan {
    /// The image file.
    pub image_path: String,
    /// PVH entry point (PHYS32_ENTRY).
    pub entry: u64,
    /// Address of the start_info block (ebx at entry).
    pub start_info_paddr: u64,
    /// Size of the start_info block in bytes.
    pub start_info_size: u64,
    /// Copies into guest memory, in address order.
    pub writes: Vec<Write>,
    /// Ranges to zero (kernel bss, the ACPI info page, special pages other than the identity
    /// page table).
    pub zeroes: Vec<Range>,
    /// The e820 map, as given to the guest and to XENMEM_set_memory_map.
    pub memmap: Vec<E820Entry>,
    /// Guest RAM (below the MMIO hole and above 4 GiB), covering maxmem.
    pub ram: Vec<Range>,
    /// The pages in the MMIO hole holding the ACPI info page, tables and (if there) RSDP.
    pub acpi_pages: Range,
    /// The HVM special pages.
    pub special_pages: SpecialPages,
    /// Address of the RSDP (also in start_info).
    pub rsdp_paddr: Option<u64>,
    /// The BSP's initial registers.
    pub regs: CpuRegs,
    /// Loaded kernel segments.
    pub kernel: Vec<SegmentPlacement>,
    /// Placed modules.
    pub modules: Vec<ModulePlacement>,
    /// Address of the kernel command line.
    pub cmdline_paddr: Option<u64>,
    /// The guest's sizes.
    pub size: GuestSize,
    /// Pages to populate for `memory` (below maxmem means populate-on-demand).
    pub target_pages: u64,
    /// The ioreq server pages below the special pages (HVM guests with a device model).
    pub ioreq_server_pages: Option<Range>,
}

impl BootPlan {
    /// Every range to populate: RAM, the ACPI pages, the special pages and (HVM) the
    /// ioreq server pages, sorted; empty ranges left out.
    pub fn populate(&self) -> Vec<Range> {
        let mut v = self.ram.clone();
        v.push(self.acpi_pages);
        v.push(self.special_pages.range());
        v.extend(self.ioreq_server_pages);
        v.retain(|r| !r.is_empty());
        v.sort();
        v
    }

    /// The end of RAM below the MMIO hole.
    pub fn lowmem_end(&self) -> u64 {
        self.ram
            .iter()
            .filter(|r| r.end <= FOUR_GIB)
            .map(|r| r.end)
            .max()
            .unwrap_or(0)
    }
}

fn align_up(v: u64, a: u64) -> Option<u64> {
    Some(v.checked_add(a - 1)? & !(a - 1))
}

fn check_cmdline(what: &str, s: &str) -> Result<(), Error> {
    if s.as_bytes().contains(&0) {
        return Err(Error::Request(format!("{what} contains a NUL byte")));
    }
    if s.len() > MAX_CMDLINE {
        return Err(Error::Request(format!(
            "{what} is {} bytes; the limit is {MAX_CMDLINE}",
            s.len()
        )));
    }
    Ok(())
}

fn check_size(size: &GuestSize) -> Result<(), Error> {
    if size.vcpus == 0 {
        return Err(Error::Request("vcpus must be at least 1".into()));
    }
    if size.maxvcpus < size.vcpus {
        return Err(Error::Request(format!(
            "maxvcpus ({}) is less than vcpus ({})",
            size.maxvcpus, size.vcpus
        )));
    }
    if size.maxvcpus > MAX_VCPUS {
        return Err(Error::Request(format!(
            "maxvcpus ({}) is more than the {MAX_VCPUS} a PVH guest can have",
            size.maxvcpus
        )));
    }
    if size.memory_mib < 2 {
        return Err(Error::Request(format!(
            "memory = {} MiB is too small (at least 2 MiB)",
            size.memory_mib
        )));
    }
    if size.maxmem_mib < size.memory_mib {
        return Err(Error::Request(format!(
            "maxmem ({} MiB) is less than memory ({} MiB)",
            size.maxmem_mib, size.memory_mib
        )));
    }
    if size.maxmem_mib > MAX_MEMORY_MIB {
        return Err(Error::Request(format!(
            "maxmem = {} MiB is more than the {MAX_MEMORY_MIB} MiB rxl supports",
            size.maxmem_mib
        )));
    }
    Ok(())
}

/// The e820 map for a guest whose RAM ends at `lowmem_end` below the hole and `highmem_end`
/// above 4 GiB (0 for none), with the ACPI pages and a possible low RSDP page.
fn memmap(
    lowmem_end: u64,
    highmem_end: u64,
    acpi_pages: Range,
    low_rsdp_page: Option<Range>,
) -> Vec<E820Entry> {
    let mut map = Vec::new();
    let ram = |map: &mut Vec<E820Entry>, r: Range| {
        if !r.is_empty() {
            map.push(E820Entry {
                addr: r.start,
                size: r.len(),
                kind: e820::RAM,
            });
        }
    };
    match low_rsdp_page.filter(|p| p.end <= lowmem_end) {
        Some(p) => {
            ram(
                &mut map,
                Range {
                    start: 0,
                    end: p.start,
                },
            );
            map.push(E820Entry {
                addr: p.start,
                size: p.len(),
                kind: e820::ACPI,
            });
            ram(
                &mut map,
                Range {
                    start: p.end,
                    end: lowmem_end,
                },
            );
        }
        None => ram(
            &mut map,
            Range {
                start: 0,
                end: lowmem_end,
            },
        ),
    }
    map.push(E820Entry {
        addr: acpi_pages.start,
        size: acpi_pages.len(),
        kind: e820::ACPI,
    });
    let special = SpecialPages::PVH.range();
    map.push(E820Entry {
        addr: special.start,
        size: special.len(),
        kind: e820::RESERVED,
    });
    if highmem_end > FOUR_GIB {
        ram(
            &mut map,
            Range {
                start: FOUR_GIB,
                end: highmem_end,
            },
        );
    }
    map
}

/// The fixed part of `struct hvm_start_info` (version 1), as libxenguest fills it.
pub(crate) struct StartInfoHeader {
    pub(crate) nr_modules: u32,
    pub(crate) modlist_paddr: u64,
    pub(crate) cmdline_paddr: u64,
    pub(crate) rsdp_paddr: u64,
    pub(crate) memmap_paddr: u64,
    pub(crate) memmap_entries: u32,
}

impl StartInfoHeader {
    /// The [`START_INFO_SIZE`] bytes: magic, version 1, flags 0, then the fields.
    pub(crate) fn encode(&self) -> [u8; START_INFO_SIZE as usize] {
        let mut out = [0u8; START_INFO_SIZE as usize];
        let fields: [&[u8]; 10] = [
            &START_INFO_MAGIC.to_le_bytes(),
            &1u32.to_le_bytes(),
            &0u32.to_le_bytes(),
            &self.nr_modules.to_le_bytes(),
            &self.modlist_paddr.to_le_bytes(),
            &self.cmdline_paddr.to_le_bytes(),
            &self.rsdp_paddr.to_le_bytes(),
            &self.memmap_paddr.to_le_bytes(),
            &self.memmap_entries.to_le_bytes(),
            &0u32.to_le_bytes(),
        ];
        let mut at = 0;
        for f in fields {
            out[at..at + f.len()].copy_from_slice(f);
            at += f.len();
        }
        out
    }
}

/// One `struct hvm_modlist_entry`.
pub(crate) fn modlist_entry(
    paddr: u64,
    size: u64,
    cmdline_paddr: u64,
) -> [u8; MODLIST_ENTRY_SIZE as usize] {
    let mut out = [0u8; MODLIST_ENTRY_SIZE as usize];
    out[..8].copy_from_slice(&paddr.to_le_bytes());
    out[8..16].copy_from_slice(&size.to_le_bytes());
    out[16..24].copy_from_slice(&cmdline_paddr.to_le_bytes());
    out
}

/// `map` as `struct hvm_memmap_table_entry`s.
pub(crate) fn memmap_table(map: &[E820Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(map.len() * MEMMAP_ENTRY_SIZE as usize);
    for m in map {
        out.extend_from_slice(&m.addr.to_le_bytes());
        out.extend_from_slice(&m.size.to_le_bytes());
        out.extend_from_slice(&m.kind.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
    }
    out
}

/// The identity-map page table Xen uses for the guest's unpaged mode (HVM_PARAM_IDENT_PT):
/// 1024 4-MiB superpage entries `(i << 22) | 0xe7`.
pub fn ident_pt() -> Vec<u8> {
    (0u32..1024)
        .flat_map(|i| ((i << 22) | 0xe7).to_le_bytes())
        .collect()
}

struct Region {
    what: String,
    range: Range,
}

/// Lays out `image` with `modules` for a guest of `size`. See the crate docs for the layout.
pub fn plan_image(
    image: &KernelImage,
    cmdline: Option<&str>,
    modules: Vec<ModuleInput>,
    size: GuestSize,
) -> Result<BootPlan, Error> {
    check_size(&size)?;
    if let Some(c) = cmdline {
        check_cmdline("cmdline", c)?;
    }
    for (i, m) in modules.iter().enumerate() {
        if let Some(c) = &m.cmdline {
            check_cmdline(&format!("module {i} cmdline"), c)?;
        }
    }
    let entry = image.pvh_entry()?;

    // Guest RAM, as libxl splits it around the MMIO hole.
    let mem = size.maxmem_mib * MIB;
    let (lowmem_end, highmem_end) = if mem > MMIO_HOLE_START {
        (MMIO_HOLE_START, FOUR_GIB + (mem - MMIO_HOLE_START))
    } else {
        (mem, 0)
    };
    let mut ram = vec![Range {
        start: 0,
        end: lowmem_end,
    }];
    if highmem_end > 0 {
        ram.push(Range {
            start: FOUR_GIB,
            end: highmem_end,
        });
    }
    let too_small = |what: String, need: u64| Error::TooSmall {
        what,
        need,
        have: lowmem_end,
        memory_mib: size.maxmem_mib,
        need_mib: need.div_ceil(MIB),
    };

    // ACPI tables, and where the RSDP goes.
    let rsdp_low = !image
        .info
        .notes
        .has_feature(XENFEAT_LINUX_RSDP_UNRESTRICTED);
    let tables = acpi::build(size.vcpus, size.maxvcpus, rsdp_low);
    let tables_end = acpi::ACPI_TABLES_PADDR + tables.tables.len() as u64;
    let acpi_end = if rsdp_low {
        align_up(tables_end, PAGE_SIZE)
    } else {
        align_up(tables.rsdp_paddr + acpi::RSDP_LEN as u64, PAGE_SIZE)
    }
    .unwrap_or(tables_end);
    let acpi_pages = Range {
        start: ACPI_INFO_PADDR,
        end: acpi_end,
    };
    let low_rsdp_page = rsdp_low.then(|| Range {
        start: tables.rsdp_paddr & !(PAGE_SIZE - 1),
        end: align_up(tables.rsdp_paddr + acpi::RSDP_LEN as u64, PAGE_SIZE)
            .unwrap_or(tables.rsdp_paddr),
    });

    let mut regions: Vec<Region> = Vec::new();
    let mut writes: Vec<Write> = Vec::new();
    let mut zeroes: Vec<Range> = Vec::new();

    // Kernel segments at p_paddr.
    let mut kernel = Vec::new();
    let mut kernel_end = 0u64;
    for s in &image.info.segments {
        let seg = place_segment("kernel", s, &image.elf, &Error::Layout)?;
        if seg.range.end > MMIO_HOLE_START {
            return Err(Error::Layout(format!(
                "{} [{:#x}, {:#x}) reaches into the MMIO hole at {:#x}: PVH boot data must \
                 lie in RAM below it",
                seg.what, seg.range.start, seg.range.end, MMIO_HOLE_START
            )));
        }
        kernel_end = kernel_end.max(seg.range.end);
        writes.extend(seg.write);
        zeroes.extend(seg.zero);
        kernel.push(seg.placement);
        regions.push(Region {
            what: seg.what,
            range: seg.range,
        });
    }

    // Modules, page aligned after the kernel.
    let mut next =
        align_up(kernel_end, PAGE_SIZE).ok_or_else(|| Error::Layout("kernel end".into()))?;
    let mut placed_modules = Vec::new();
    for (i, m) in modules.iter().enumerate() {
        let what = format!("module {i} ({})", m.name);
        let r = Range::at(next, m.data.len())
            .ok_or_else(|| Error::Layout(format!("{what}: address overflow")))?;
        if !m.data.is_empty() {
            writes.push(Write {
                paddr: r.start,
                data: m.data.clone(),
                what: what.clone(),
            });
        }
        placed_modules.push(ModulePlacement {
            source: m.name.clone(),
            paddr: r.start,
            size: r.len(),
            cmdline: m.cmdline.clone(),
            cmdline_paddr: None,
        });
        regions.push(Region { what, range: r });
        next = align_up(r.end, PAGE_SIZE).ok_or_else(|| Error::Layout("module end".into()))?;
    }

    // The start_info block, page aligned after the modules.
    let map = memmap(lowmem_end, highmem_end, acpi_pages, low_rsdp_page);
    let si_base = next;
    let mut block: Vec<u8> = vec![0u8; START_INFO_SIZE as usize];
    let pad8 = |b: &mut Vec<u8>| {
        while b.len() % 8 != 0 {
            b.push(0);
        }
    };
    let mut cmdline_paddr = None;
    if let Some(c) = cmdline {
        cmdline_paddr = Some(si_base + block.len() as u64);
        block.extend_from_slice(c.as_bytes());
        block.push(0);
        pad8(&mut block);
    }
    let modlist_at = block.len();
    block.resize(modlist_at + MODLIST_ENTRY_SIZE as usize * modules.len(), 0);
    for (i, m) in placed_modules.iter_mut().enumerate() {
        let cl_paddr = match &m.cmdline {
            Some(c) => {
                let at = si_base + block.len() as u64;
                block.extend_from_slice(c.as_bytes());
                block.push(0);
                pad8(&mut block);
                Some(at)
            }
            None => None,
        };
        m.cmdline_paddr = cl_paddr;
        let e = modlist_at + i * MODLIST_ENTRY_SIZE as usize;
        if let Some(d) = block.get_mut(e..e + MODLIST_ENTRY_SIZE as usize) {
            d.copy_from_slice(&modlist_entry(m.paddr, m.size, cl_paddr.unwrap_or(0)));
        }
    }
    let memmap_at = block.len();
    block.extend_from_slice(&memmap_table(&map));
    let modlist_paddr = if modules.is_empty() {
        0
    } else {
        si_base + modlist_at as u64
    };
    let hdr = StartInfoHeader {
        nr_modules: modules.len() as u32,
        modlist_paddr,
        cmdline_paddr: cmdline_paddr.unwrap_or(0),
        rsdp_paddr: tables.rsdp_paddr,
        memmap_paddr: si_base + memmap_at as u64,
        memmap_entries: map.len() as u32,
    };
    if let Some(d) = block.get_mut(..START_INFO_SIZE as usize) {
        d.copy_from_slice(&hdr.encode());
    }
    let si_range = Range::at(si_base, block.len() as u64)
        .ok_or_else(|| Error::Layout("start_info address overflow".into()))?;
    regions.push(Region {
        what: "start_info block".to_string(),
        range: si_range,
    });
    if si_range.end > lowmem_end {
        let first = regions
            .iter()
            .find(|r| r.range.end > lowmem_end)
            .map(|r| r.what.clone())
            .unwrap_or_default();
        return Err(too_small(format!("{first} does not fit"), si_range.end));
    }
    let start_info_size = block.len() as u64;
    writes.push(Write {
        paddr: si_base,
        data: Payload::bytes(block),
        what: "start_info block".to_string(),
    });

    // ACPI: the info page (zeroed), the tables, the RSDP.
    zeroes.push(Range {
        start: ACPI_INFO_PADDR,
        end: ACPI_INFO_PADDR + PAGE_SIZE,
    });
    writes.push(Write {
        paddr: acpi::ACPI_TABLES_PADDR,
        data: Payload::bytes(tables.tables.clone()),
        what: "ACPI tables".to_string(),
    });
    let rsdp_range = Range::at(tables.rsdp_paddr, acpi::RSDP_LEN as u64)
        .ok_or_else(|| Error::Layout("RSDP".into()))?;
    if rsdp_low {
        if rsdp_range.end > lowmem_end {
            return Err(too_small(
                "the RSDP below 1 MiB".to_string(),
                rsdp_range.end,
            ));
        }
        // The whole page is marked ACPI in the e820: nothing else may use it.
        if let Some(p) = low_rsdp_page {
            regions.push(Region {
                what: "ACPI RSDP page".to_string(),
                range: p,
            });
        }
    }
    writes.push(Write {
        paddr: tables.rsdp_paddr,
        data: Payload::bytes(tables.rsdp.clone()),
        what: "ACPI RSDP".to_string(),
    });

    // Special pages: zeroed, except the identity page table.
    let sp = SpecialPages::PVH;
    let ident = sp.ident_pt * PAGE_SIZE;
    zeroes.push(Range {
        start: sp.range().start,
        end: ident,
    });
    zeroes.push(Range {
        start: ident + PAGE_SIZE,
        end: sp.range().end,
    });
    writes.push(Write {
        paddr: ident,
        data: Payload::bytes(ident_pt()),
        what: "identity page table".to_string(),
    });

    // Nothing may overlap.
    regions.sort_by_key(|r| (r.range.start, r.range.end));
    for pair in regions.windows(2) {
        if let [a, b] = pair {
            if a.range.overlaps(&b.range) {
                return Err(Error::Layout(format!(
                    "{} [{:#x}, {:#x}) overlaps {} [{:#x}, {:#x})",
                    a.what, a.range.start, a.range.end, b.what, b.range.start, b.range.end
                )));
            }
        }
    }
    writes.sort_by_key(|w| w.paddr);
    zeroes.retain(|z| !z.is_empty());
    zeroes.sort();

    let target_pages = size.memory_mib * (MIB / PAGE_SIZE);
    Ok(BootPlan {
        image_path: image.path.clone(),
        entry,
        start_info_paddr: si_base,
        start_info_size,
        writes,
        zeroes,
        memmap: map,
        ram,
        acpi_pages,
        special_pages: sp,
        rsdp_paddr: Some(tables.rsdp_paddr),
        regs: CpuRegs::pvh(entry, si_base),
        kernel,
        modules: placed_modules,
        cmdline_paddr,
        size,
        target_pages,
        ioreq_server_pages: None,
    })
}

/// One PT_LOAD segment of an ELF image in `buf`, placed at its physical address.
pub(crate) struct PlacedSegment {
    /// "LABEL segment N", for messages.
    pub what: String,
    /// Where it lies in the guest (its memory size).
    pub range: Range,
    /// Its file bytes, unless it has none.
    pub write: Option<Write>,
    /// The part past its file bytes (bss), unless there is none.
    pub zero: Option<Range>,
    /// What the plan reports of it.
    pub placement: SegmentPlacement,
}

/// Places `seg` of the ELF image `buf` at its `p_paddr`: the write of its file bytes and the
/// range to zero after them. `err` turns a message into the caller's error.
pub(crate) fn place_segment(
    label: &str,
    seg: &crate::elf::LoadSegment,
    buf: &std::sync::Arc<Vec<u8>>,
    err: &dyn Fn(String) -> Error,
) -> Result<PlacedSegment, Error> {
    let what = format!("{label} segment {}", seg.index);
    let range =
        Range::at(seg.paddr, seg.memsz).ok_or_else(|| err(format!("{what}: address overflow")))?;
    let start = usize::try_from(seg.offset).map_err(|_| err(format!("{what}: offset")))?;
    let len = usize::try_from(seg.filesz).map_err(|_| err(format!("{what}: size")))?;
    let write = (seg.filesz > 0).then(|| Write {
        paddr: seg.paddr,
        data: Payload::Shared {
            buf: buf.clone(),
            start,
            len,
        },
        what: what.clone(),
    });
    let zero = (seg.memsz > seg.filesz).then(|| Range {
        start: seg.paddr + seg.filesz,
        end: range.end,
    });
    Ok(PlacedSegment {
        what,
        range,
        write,
        zero,
        placement: SegmentPlacement {
            paddr: seg.paddr,
            filesz: seg.filesz,
            memsz: seg.memsz,
        },
    })
}
