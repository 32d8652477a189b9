//! The boot of an HVM guest (`type = "hvm"`): hvmloader, the BIOS module it runs, and the
//! memory layout of a guest with a device model, as Xen 4.17's libxl (`libxl__build_hvm`,
//! `libxl__domain_firmware`) and libxenguest (`meminit_hvm`, `alloc_magic_pages_hvm`,
//! `bootlate_hvm`, `vcpu_hvm`, the hvmloader ELF loader) build it.
//!
//! The result is a [`BootPlan`] like a PVH guest's, so the toolstack populates, copies and
//! starts it the same way; what differs is in [`HvmPlan`]:
//! - RAM is `memory - videoram` (QEMU takes the video RAM from the same allowance), split
//!   around the MMIO hole below 4 GiB (256 MiB unless `mmio_hole` says more), with the VGA
//!   hole 0xA0000-0xC0000 left unpopulated.
//! - hvmloader (an ELF32 without Xen notes) is loaded at its physical addresses and entered
//!   at `e_entry` in 32-bit flat mode with ebx = the hvm_start_info block.
//! - The BIOS image is the one module, named `firmware` (hvmloader looks it up by that
//!   name), placed page aligned after hvmloader; the start info block follows it.
//! - The memory map given to Xen and in the start info has RAM from 1 MiB to the end of low
//!   memory and above 4 GiB; hvmloader builds the guest's own e820.
//! - The HVM info table (pfn 0x9f, offset 0x800) says where memory ends and which vCPUs
//!   are online; eight ioreq server pages sit below the special pages.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use xen_host::{e820, E820Entry, PAGE_SIZE};

use crate::elf::{self, ElfClass};
use crate::error::Error;
use crate::layout::{
    self, BootPlan, GuestSize, ModulePlacement, Range, SpecialPages, Write, FOUR_GIB,
    MEMMAP_ENTRY_SIZE, MODLIST_ENTRY_SIZE, START_INFO_SIZE,
};
use crate::payload::Payload;
use crate::regs::CpuRegs;

/// The VGA hole, never populated for a guest with a device model.
pub const VGA_HOLE: Range = Range {
    start: 0xa0000,
    end: 0xc0000,
};
/// `HVM_INFO_PFN`: the page holding the HVM info table.
pub const HVM_INFO_PFN: u64 = 0x9f;
/// `HVM_INFO_OFFSET`: where in that page the table starts.
pub const HVM_INFO_OFFSET: u64 = 0x800;
/// Size of `struct hvm_info_table` (with 128 vCPUs' online bits).
pub const HVM_INFO_SIZE: usize = 48;
/// `HVM_BELOW_4G_MMIO_LENGTH`: libxl's MMIO hole for a guest with a device model.
pub const DEFAULT_MMIO_HOLE: u64 = 0x1000_0000;
/// `HVM_BELOW_4G_MMIO_START`: the lowest start of the MMIO hole `mmio_hole` may ask for
/// without libxl ignoring it.
pub const MMIO_HOLE_LOWEST_START: u64 = 0xf000_0000;
/// `NR_IOREQ_SERVER_PAGES`.
pub const NR_IOREQ_SERVER_PAGES: u64 = 8;
/// The first ioreq server pfn (`ioreq_server_pfn(0)`): just below the special pages.
pub const IOREQ_SERVER_PFN: u64 =
    layout::SPECIAL_REGION_END_PFN - layout::NR_SPECIAL_PAGES - NR_IOREQ_SERVER_PAGES;
/// Where the e820 RAM entry of a guest with a device model starts
/// (`GUEST_LOW_MEM_START_DEFAULT`).
pub const LOW_MEM_START: u64 = 0x10_0000;
/// `HVMLOADER_MODULE_MAX_COUNT`: modlist slots in the start info block.
pub const MODULE_SLOTS: u64 = 2;
/// `HVMLOADER_MODULE_CMDLINE_SIZE` (`MAX_GUEST_CMDLINE`): bytes per module name slot.
pub const MODULE_CMDLINE_SIZE: u64 = 1024;
/// The name hvmloader looks the BIOS module up by (`get_module_entry(.., "firmware")`).
pub const FIRMWARE_MODULE_NAME: &str = "firmware";
/// The largest hvmloader rxl reads.
pub const MAX_HVMLOADER: u64 = 16 << 20;
/// The largest BIOS image rxl reads.
pub const MAX_BIOS: u64 = 64 << 20;

const MIB: u64 = 1 << 20;

/// The BIOS hvmloader runs (xenstore `hvmloader/bios`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HvmBios {
    /// SeaBIOS.
    Seabios,
    /// ROMBIOS, built into hvmloader.
    Rombios,
    /// OVMF.
    Ovmf,
}

impl HvmBios {
    /// The name hvmloader reads from xenstore.
    pub fn as_str(self) -> &'static str {
        match self {
            HvmBios::Seabios => "seabios",
            HvmBios::Rombios => "rombios",
            HvmBios::Ovmf => "ovmf",
        }
    }
}

/// What to build an HVM guest from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HvmRequest {
    /// hvmloader.
    pub hvmloader: PathBuf,
    /// The BIOS.
    pub bios: HvmBios,
    /// The BIOS image handed to hvmloader (none for ROMBIOS, which is inside hvmloader).
    pub bios_module: Option<PathBuf>,
    /// Memory and vCPUs.
    pub size: GuestSize,
    /// Video RAM, MiB (QEMU allocates it from the guest's memory).
    pub videoram_mib: u64,
    /// `mmio_hole`, MiB.
    pub mmio_hole_mib: Option<u64>,
    /// `apic`: whether hvmloader builds APIC tables (the HVM info table's apic_mode).
    pub apic: bool,
}

/// A loaded file: its name (for messages) and bytes.
#[derive(Clone, Debug)]
pub struct HvmFile {
    /// The path, for messages.
    pub name: String,
    /// The bytes.
    pub bytes: Arc<Vec<u8>>,
}

impl HvmFile {
    /// Read `path`, refusing more than `max` bytes and an empty file; `what` names the
    /// file's role in messages.
    pub fn read(path: &Path, what: &'static str, max: u64) -> Result<HvmFile, Error> {
        let name = path.display().to_string();
        let f = std::fs::File::open(path).map_err(|e| Error::io(&name, "open", e))?;
        let meta = f.metadata().map_err(|e| Error::io(&name, "stat", e))?;
        if !meta.is_file() {
            return Err(Error::Request(format!(
                "{what} {name} is not a regular file"
            )));
        }
        if meta.len() > max {
            return Err(Error::Request(format!(
                "{what} {name} is {} bytes, more than the {} MiB rxl reads for it",
                meta.len(),
                max >> 20
            )));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        f.take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(&name, "read", e))?;
        if bytes.len() as u64 > max {
            return Err(Error::Request(format!(
                "{what} {name} grew past {} MiB while being read",
                max >> 20
            )));
        }
        if bytes.is_empty() {
            return Err(Error::Request(format!("{what} {name} is empty")));
        }
        Ok(HvmFile {
            name,
            bytes: Arc::new(bytes),
        })
    }
}

/// An HVM guest's boot: the layout, and what the toolstack needs besides it.
#[derive(Clone, Debug)]
pub struct HvmPlan {
    /// The layout (hvmloader as the kernel, the BIOS as the one module).
    pub boot: BootPlan,
    /// The BIOS.
    pub bios: HvmBios,
    /// Start of the MMIO hole below 4 GiB.
    pub mmio_start: u64,
    /// The first ioreq server pfn (HVM_PARAM_IOREQ_SERVER_PFN).
    pub ioreq_server_pfn: u64,
    /// How many (HVM_PARAM_NR_IOREQ_SERVER_PAGES).
    pub nr_ioreq_server_pages: u64,
    /// RAM pages (`memory - videoram`).
    pub ram_pages: u64,
}

/// Check that `hvmloader` can run `bios`. ROMBIOS is always refused: an hvmloader built
/// without it cannot load it, and one built with it needs qemu-xen-traditional. hvmloader
/// knows a BIOS by its `struct bios_config`, whose name for ROMBIOS, "ROMBIOS", is a
/// NUL-terminated string only in an hvmloader built with ROMBIOS (rombios.c is compiled
/// only then; the lower-case "rombios" is always there, as xenstore's default).
pub fn check_bios_support(hvmloader: &HvmFile, bios: HvmBios) -> Result<(), Error> {
    if bios != HvmBios::Rombios {
        return Ok(());
    }
    let needle = b"\0ROMBIOS\0";
    if hvmloader.bytes.windows(needle.len()).any(|w| w == needle) {
        // Built in, but ROMBIOS pairs with qemu-xen-traditional only: libxl 4.17 refuses
        // it with qemu-xen ("qemu-xen does not support bios=rombios"), the device model
        // rxl runs.
        return Err(Error::Request(
            "bios = \"rombios\": ROMBIOS works only with the qemu-xen-traditional device \
             model, which Xen 4.17 no longer builds; rxl runs qemu-xen, which does not \
             support it (libxl refuses it too); use bios = \"seabios\""
                .into(),
        ));
    }
    Err(Error::Request(format!(
        "bios = \"rombios\": {} was built without ROMBIOS (Debian's is); use bios = \
         \"seabios\"",
        hvmloader.name
    )))
}

/// Check that an OVMF image can boot a Xen HVM guest. An OVMF with Xen support is built
/// from OvmfPkg/OvmfXen.dsc (upstream removed Xen from the other OVMF builds in
/// edk2-stable202108), and OvmfXen's flash image starts with an ELF header
/// (XenElfHeader.fdf.inc, which also lets it boot PVH guests). Other OVMF images start
/// with the firmware volume of the variable store. So rxl takes an image that starts with
/// `\x7fELF` as having Xen support and refuses the others: Debian bookworm's OVMF.fd
/// (edk2 2022.11) has none of the Xen drivers and hangs an HVM guest.
pub fn check_ovmf(image: &HvmFile) -> Result<(), Error> {
    if elf::is_elf(&image.bytes) {
        return Ok(());
    }
    Err(Error::Request(format!(
        "bios = \"ovmf\": {} is an OVMF without Xen support (it is not an OvmfXen build: no \
         ELF header); Debian bookworm's OVMF lacks Xen support. Build OvmfPkg/OvmfXen.dsc \
         from edk2 and give its OVMF.fd as bios_path_override, or use bios = \"seabios\"",
        image.name
    )))
}

/// The RAM of a guest of `maxmem_mib` MiB less `videoram_mib`, with an MMIO hole of
/// `mmio_hole_mib` (libxl's rule: used only when it makes the hole larger than the
/// default). Returns (mem_size, mmio_start, lowmem_end, highmem_end).
pub fn memory_layout(
    maxmem_mib: u64,
    videoram_mib: u64,
    mmio_hole_mib: Option<u64>,
) -> Result<(u64, u64, u64, u64), Error> {
    if maxmem_mib <= videoram_mib {
        return Err(Error::Request(format!(
            "maxmem = {maxmem_mib} MiB leaves nothing for RAM after {videoram_mib} MiB of \
             video RAM"
        )));
    }
    let mem_size = (maxmem_mib - videoram_mib) * MIB;
    let mut mmio_size = DEFAULT_MMIO_HOLE;
    if let Some(h) = mmio_hole_mib {
        let hole = h.saturating_mul(MIB);
        if hole < FOUR_GIB && FOUR_GIB - hole < MMIO_HOLE_LOWEST_START {
            mmio_size = hole;
        }
    }
    let mmio_start = FOUR_GIB - mmio_size;
    let (lowmem_end, highmem_end) = if mem_size > mmio_start {
        (mmio_start, FOUR_GIB + (mem_size - mmio_start))
    } else {
        (mem_size, 0)
    };
    Ok((mem_size, mmio_start, lowmem_end, highmem_end))
}

/// The HVM info table as libxenguest builds it and libxl amends it (apic_mode, nr_vcpus,
/// vcpu_online), checksummed.
pub fn hvm_info_table(
    apic: bool,
    size: &GuestSize,
    lowmem_end: u64,
    highmem_end: u64,
) -> [u8; HVM_INFO_SIZE] {
    let mut t = [0u8; HVM_INFO_SIZE];
    t[..8].copy_from_slice(b"HVM INFO");
    t[8..12].copy_from_slice(&(HVM_INFO_SIZE as u32).to_le_bytes());
    t[13] = u8::from(apic);
    t[16..20].copy_from_slice(&size.maxvcpus.to_le_bytes());
    let pfn32 = |a: u64| u32::try_from(a / PAGE_SIZE).unwrap_or(u32::MAX);
    t[20..24].copy_from_slice(&pfn32(lowmem_end).to_le_bytes());
    t[24..28].copy_from_slice(&(IOREQ_SERVER_PFN as u32).to_le_bytes());
    t[28..32].copy_from_slice(&pfn32(highmem_end).to_le_bytes());
    for v in 0..size.vcpus.min(128) {
        t[32 + (v / 8) as usize] |= 1 << (v % 8);
    }
    let sum = t.iter().fold(0u8, |a, b| a.wrapping_add(*b));
    t[12] = 0u8.wrapping_sub(sum);
    t
}

/// Read the files of `req`, check them and lay the guest out.
pub fn plan_hvm(req: &HvmRequest) -> Result<HvmPlan, Error> {
    let loader = HvmFile::read(&req.hvmloader, "hvmloader", MAX_HVMLOADER)?;
    let module = match &req.bios_module {
        Some(p) => Some(HvmFile::read(p, "BIOS image", MAX_BIOS)?),
        None => None,
    };
    plan_hvm_files(req, &loader, module.as_ref())
}

/// [`plan_hvm`] with the files already read.
pub fn plan_hvm_files(
    req: &HvmRequest,
    loader: &HvmFile,
    module: Option<&HvmFile>,
) -> Result<HvmPlan, Error> {
    let size = req.size;
    check_bios_support(loader, req.bios)?;
    if req.bios == HvmBios::Ovmf {
        if let Some(m) = module {
            check_ovmf(m)?;
        }
    }
    if module.is_none() && req.bios != HvmBios::Rombios {
        return Err(Error::Request(format!(
            "bios = \"{}\" needs its image: no BIOS module given",
            req.bios.as_str()
        )));
    }
    if size.vcpus == 0 || size.maxvcpus < size.vcpus || size.maxvcpus > 128 {
        return Err(Error::Request(format!(
            "vcpus = {}, maxvcpus = {}: an HVM guest has 1 to 128 vCPUs",
            size.vcpus, size.maxvcpus
        )));
    }
    if size.memory_mib > size.maxmem_mib || size.maxmem_mib > layout::MAX_MEMORY_MIB {
        return Err(Error::Request(format!(
            "memory = {} MiB, maxmem = {} MiB: memory must be at most maxmem, maxmem at most \
             {} MiB",
            size.memory_mib,
            size.maxmem_mib,
            layout::MAX_MEMORY_MIB
        )));
    }
    let (_, mmio_start, lowmem_end, highmem_end) =
        memory_layout(size.maxmem_mib, req.videoram_mib, req.mmio_hole_mib)?;
    let too_small = |what: String, need: u64| Error::TooSmall {
        what,
        need,
        have: lowmem_end,
        memory_mib: size.maxmem_mib,
        need_mib: (need.div_ceil(MIB)) + req.videoram_mib,
    };

    // hvmloader: an ELF32 without Xen notes, loaded at its physical addresses.
    let info = elf::parse(&loader.name, &loader.bytes)?;
    if info.class != ElfClass::Elf32 {
        return Err(Error::elf(
            &loader.name,
            "hvmloader must be a 32-bit ELF image",
        ));
    }
    if !info.notes.notes.is_empty() {
        return Err(Error::elf(
            &loader.name,
            "it has Xen ELF notes: it is a PV or PVH kernel, not hvmloader",
        ));
    }
    let mut regions: Vec<(String, Range)> = vec![
        ("the HVM info page".to_string(), hvm_info_page()),
        ("the VGA hole".to_string(), VGA_HOLE),
    ];
    let mut writes = Vec::new();
    let mut zeroes = Vec::new();
    let mut kernel = Vec::new();
    let mut end = 0u64;
    for s in &info.segments {
        let seg = layout::place_segment("hvmloader", s, &loader.bytes, &|m| {
            Error::elf(&loader.name, m)
        })?;
        if seg.range.end > lowmem_end {
            return Err(too_small(
                format!("{} of {}", seg.what, loader.name),
                seg.range.end,
            ));
        }
        writes.extend(seg.write);
        zeroes.extend(seg.zero);
        kernel.push(seg.placement);
        end = end.max(seg.range.end);
        regions.push((seg.what, seg.range));
    }
    if kernel.is_empty() {
        return Err(Error::elf(&loader.name, "no PT_LOAD segment"));
    }
    let entry = info.entry;
    if !kernel
        .iter()
        .any(|k| entry >= k.paddr && entry < k.paddr + k.memsz)
    {
        return Err(Error::elf(
            &loader.name,
            format!("the entry point {entry:#x} is outside every PT_LOAD segment"),
        ));
    }

    // The BIOS module, page aligned after hvmloader.
    let mut next = align_page(end)?;
    let mut modules = Vec::new();
    if let Some(m) = module {
        let r = Range::at(next, m.bytes.len() as u64)
            .ok_or_else(|| Error::Layout("BIOS module: address overflow".into()))?;
        if r.end > lowmem_end {
            return Err(too_small(format!("the BIOS image {}", m.name), r.end));
        }
        writes.push(Write {
            paddr: r.start,
            data: Payload::Shared {
                buf: m.bytes.clone(),
                start: 0,
                len: m.bytes.len(),
            },
            what: format!("BIOS image ({})", m.name),
        });
        modules.push(ModulePlacement {
            source: m.name.clone(),
            paddr: r.start,
            size: r.len(),
            cmdline: Some(FIRMWARE_MODULE_NAME.to_string()),
            cmdline_paddr: None,
        });
        regions.push((format!("the BIOS image {}", m.name), r));
        next = align_page(r.end)?;
    }

    // The start info block: header, two modlist slots, two name slots, the memory map.
    let memmap = hvm_memmap(lowmem_end, highmem_end);
    let si = next;
    let modlist_at = START_INFO_SIZE;
    let names_at = modlist_at + MODULE_SLOTS * MODLIST_ENTRY_SIZE;
    let memmap_at = names_at + MODULE_SLOTS * MODULE_CMDLINE_SIZE;
    let block_len = memmap_at + memmap.len() as u64 * MEMMAP_ENTRY_SIZE;
    let mut block = vec![0u8; block_len as usize];
    for (i, m) in modules.iter_mut().enumerate() {
        let name_paddr = si + names_at + i as u64 * MODULE_CMDLINE_SIZE;
        m.cmdline_paddr = Some(name_paddr);
        let e = (modlist_at + i as u64 * MODLIST_ENTRY_SIZE) as usize;
        block[e..e + MODLIST_ENTRY_SIZE as usize]
            .copy_from_slice(&layout::modlist_entry(m.paddr, m.size, name_paddr));
        let n = (names_at + i as u64 * MODULE_CMDLINE_SIZE) as usize;
        let name = m.cmdline.as_deref().unwrap_or_default().as_bytes();
        block[n..n + name.len()].copy_from_slice(name);
    }
    block[memmap_at as usize..].copy_from_slice(&layout::memmap_table(&memmap));
    let header = layout::StartInfoHeader {
        nr_modules: modules.len() as u32,
        modlist_paddr: if modules.is_empty() {
            0
        } else {
            si + modlist_at
        },
        cmdline_paddr: 0,
        rsdp_paddr: 0,
        memmap_paddr: si + memmap_at,
        memmap_entries: memmap.len() as u32,
    };
    block[..START_INFO_SIZE as usize].copy_from_slice(&header.encode());
    let si_range = Range::at(si, block_len)
        .ok_or_else(|| Error::Layout("start info: address overflow".into()))?;
    if si_range.end > lowmem_end {
        return Err(too_small("the start info block".to_string(), si_range.end));
    }
    regions.push(("the start info block".to_string(), si_range));
    writes.push(Write {
        paddr: si,
        data: Payload::bytes(block),
        what: "start info block".to_string(),
    });

    // The HVM info table, in a page zeroed first.
    let info_page = hvm_info_page();
    if info_page.end > lowmem_end {
        return Err(too_small("the HVM info page".to_string(), info_page.end));
    }
    zeroes.push(info_page);
    writes.push(Write {
        paddr: info_page.start + HVM_INFO_OFFSET,
        data: Payload::bytes(hvm_info_table(req.apic, &size, lowmem_end, highmem_end).to_vec()),
        what: "HVM info table".to_string(),
    });

    // Special pages (zeroed, the identity page table written) and ioreq server pages.
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
        data: Payload::bytes(layout::ident_pt()),
        what: "identity page table".to_string(),
    });
    let ioreq = Range {
        start: IOREQ_SERVER_PFN * PAGE_SIZE,
        end: (IOREQ_SERVER_PFN + NR_IOREQ_SERVER_PAGES) * PAGE_SIZE,
    };
    zeroes.push(ioreq);

    regions.sort_by_key(|(_, r)| (r.start, r.end));
    for pair in regions.windows(2) {
        if let [(wa, a), (wb, b)] = pair {
            if a.overlaps(b) {
                return Err(Error::Layout(format!(
                    "{wa} [{:#x}, {:#x}) overlaps {wb} [{:#x}, {:#x})",
                    a.start, a.end, b.start, b.end
                )));
            }
        }
    }
    writes.sort_by_key(|w| w.paddr);
    zeroes.retain(|z| !z.is_empty());
    zeroes.sort();

    let mut ram = vec![
        Range {
            start: 0,
            end: VGA_HOLE.start,
        },
        Range {
            start: VGA_HOLE.end,
            end: lowmem_end,
        },
    ];
    if highmem_end > FOUR_GIB {
        ram.push(Range {
            start: FOUR_GIB,
            end: highmem_end,
        });
    }
    let ram_pages = ram.iter().map(|r| r.len() / PAGE_SIZE).sum();
    let target_pages = size
        .memory_mib
        .saturating_sub(req.videoram_mib)
        .saturating_mul(MIB / PAGE_SIZE);
    let boot = BootPlan {
        image_path: loader.name.clone(),
        entry,
        start_info_paddr: si,
        start_info_size: block_len,
        writes,
        zeroes,
        memmap,
        ram,
        acpi_pages: Range { start: 0, end: 0 },
        special_pages: sp,
        rsdp_paddr: None,
        regs: CpuRegs::pvh(entry, si),
        kernel,
        modules,
        cmdline_paddr: None,
        size,
        target_pages,
        ioreq_server_pages: Some(ioreq),
    };
    Ok(HvmPlan {
        boot,
        bios: req.bios,
        mmio_start,
        ioreq_server_pfn: IOREQ_SERVER_PFN,
        nr_ioreq_server_pages: NR_IOREQ_SERVER_PAGES,
        ram_pages,
    })
}

fn hvm_info_page() -> Range {
    Range {
        start: HVM_INFO_PFN * PAGE_SIZE,
        end: (HVM_INFO_PFN + 1) * PAGE_SIZE,
    }
}

fn align_page(v: u64) -> Result<u64, Error> {
    v.checked_add(PAGE_SIZE - 1)
        .map(|x| x & !(PAGE_SIZE - 1))
        .ok_or_else(|| Error::Layout("address overflow".into()))
}

/// The memory map libxl sets for an HVM guest (`domain_construct_memmap`): RAM from 1 MiB
/// to the end of low memory, and above 4 GiB when there is high memory.
pub fn hvm_memmap(lowmem_end: u64, highmem_end: u64) -> Vec<E820Entry> {
    let mut map = vec![E820Entry {
        addr: LOW_MEM_START,
        size: lowmem_end.saturating_sub(LOW_MEM_START),
        kind: e820::RAM,
    }];
    if highmem_end > FOUR_GIB {
        map.push(E820Entry {
            addr: FOUR_GIB,
            size: highmem_end - FOUR_GIB,
            kind: e820::RAM,
        });
    }
    map
}
