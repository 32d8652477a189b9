//! 64-bit Xen PV boot planning: from a probed kernel ([`pvh::KernelImage`]) to a [`PvPlan`],
//! the guest's initial pseudo-physical and virtual layout as libxenguest 4.17 builds it for an
//! x86_64 PV guest (docs/boot-image.md, "PV guests").
//!
//! The crate is pure data. The toolstack populates every pfn of `0..total_pages`, zeroes
//! [`PvPlan::zeroes`], copies [`PvPlan::writes`], then fills in what needs machine frames
//! with the guest's p2m (pfn -> mfn): [`PvPlan::page_tables`], the p2m list (one
//! little-endian mfn per pfn at [`P2mPlacement::pfns`]; [`PvPlan::p2m_bytes`] makes it whole,
//! rxl's toolstack writes it 2 MiB at a time) and [`PvPlan::start_info`], and loads
//! [`PvPlan::regs`] with cr3 = the mfn of [`PvPlan::l4_pfn`].

#![forbid(unsafe_code)]

mod layout;
mod render;
mod startinfo;
mod tables;
pub mod testkernel;

use pvh::elf::ElfClass;
use pvh::{GuestSize, KernelImage, ModuleInput, Payload, XenNote};
use serde::Serialize;

pub use startinfo::{offsets as start_info_offsets, StartInfoInputs};

/// Bytes in a page.
pub const PAGE_SIZE: u64 = 4096;
/// `MAX_GUEST_CMDLINE`: the start_info command line field, NUL included.
pub const MAX_GUEST_CMDLINE: usize = 1024;
/// The start_info magic of a 64-bit PV guest (libxenguest's guest type).
pub const START_INFO_MAGIC: &str = "xen-3.0-x86_64";
/// `SIF_MOD_START_PFN`: `mod_start` is a pfn (the ramdisk is not mapped).
pub const SIF_MOD_START_PFN: u32 = 1 << 3;
/// `SIF_VIRT_P2M_4TOOLS`: set by libxenguest for every PV guest it builds.
pub const SIF_VIRT_P2M_4TOOLS: u32 = 1 << 4;
/// `FLAT_KERNEL_CS` (x86_64).
pub const FLAT_KERNEL_CS: u16 = 0xe033;
/// `FLAT_KERNEL_DS` and `FLAT_KERNEL_SS` (x86_64).
pub const FLAT_KERNEL_DS: u16 = 0xe02b;
/// `_PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED`: L1 entries.
pub const PROT_L1: u64 = 0x23;
/// `_PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_USER`: L2..L4 entries.
pub const PROT_UPPER: u64 = 0x67;
/// `_PAGE_RW`.
pub const PAGE_RW: u64 = 0x2;

/// Everything that can refuse a PV boot plan. Each message names the kernel file, the module
/// or the setting to change.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kernel cannot be booted as a 64-bit PV guest.
    #[error("{path}: {reason}")]
    Kernel {
        /// The kernel file.
        path: String,
        /// Why.
        reason: String,
    },
    /// `memory` does not hold the initial layout.
    #[error("memory = {memory_mib} MiB is too small: the boot needs {needs_mib} MiB")]
    TooSmall {
        /// The configured memory.
        memory_mib: u64,
        /// The least memory the layout fits in.
        needs_mib: u64,
    },
    /// The command line or the modules cannot be given to a PV guest.
    #[error("{0}")]
    Request(String),
    /// The caller's p2m does not fit the plan.
    #[error("p2m: {0}")]
    P2m(String),
}

/// A range of pseudo-physical frames, `start..end`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PfnRange {
    /// First frame.
    pub start: u64,
    /// One past the last frame.
    pub end: u64,
}

impl PfnRange {
    /// Frames in the range.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// Bytes to copy into the guest.
#[derive(Clone, Debug)]
pub struct PvWrite {
    /// First pseudo-physical frame written.
    pub pfn: u64,
    /// Byte offset of the data in that frame.
    pub offset: u64,
    /// The bytes.
    pub data: Payload,
    /// What they are, for messages.
    pub what: String,
}

/// Where the p2m list (one little-endian u64 mfn per pfn) lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct P2mPlacement {
    /// The list's frames (without the page tables of an INIT_P2M mapping).
    pub pfns: PfnRange,
    /// Its virtual address (start_info.mfn_list).
    pub vaddr: u64,
    /// Inside the initial kernel mapping (false: mapped at INIT_P2M by its own tables).
    pub in_initial_mapping: bool,
    /// Entries (pfns of the guest).
    pub entries: u64,
    /// The frames of the p2m segment (list and, for INIT_P2M, its page tables):
    /// start_info's first_p2m_pfn and nr_p2m_frames when INIT_P2M is used.
    pub segment: PfnRange,
}

/// The ramdisk (module 0).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RamdiskPlacement {
    /// The file, for messages.
    pub name: String,
    /// Its frames.
    pub pfns: PfnRange,
    /// Its size in bytes.
    pub size: u64,
    /// Its virtual address when it is in the initial mapping; `None` when the kernel has
    /// MOD_START_PFN and it is left unmapped.
    pub vaddr: Option<u64>,
    /// start_info.mod_start (a virtual address, or a pfn with SIF_MOD_START_PFN).
    pub mod_start: u64,
    /// start_info.mod_len (libxenguest gives the page-rounded size).
    pub mod_len: u64,
}

/// One level (or the mapped area) of a page-table mapping, as libxenguest counts it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Level {
    /// First virtual address covered (48-bit, masked).
    pub from: u64,
    /// Last virtual address covered.
    pub to: u64,
    /// First frame: of this level's tables, or (for the area) of the mapped memory.
    pub pfn: u64,
    /// Tables of this level (for the area: all tables of the mapping).
    pub tables: u64,
}

/// One mapping: the initial kernel mapping, or the INIT_P2M one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Mapping {
    /// What is mapped: virtual range and first pfn; `tables` counts all the mapping's tables.
    pub area: Level,
    /// Levels, L1 first (index 0) to L4 (index 3).
    pub levels: [Level; 4],
}

/// The initial page tables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PageTablePlan {
    /// The frames of the initial mapping's tables (L4 first), start_info.nr_pt_frames.
    pub pfns: PfnRange,
    /// Tables per level of the initial mapping, L1 first.
    pub per_level: [u64; 4],
    /// Virtual range the initial mapping covers, `[virt_base, end)`.
    pub maps_from: u64,
    /// End of the initial mapping (4 MiB aligned).
    pub maps_to: u64,
    /// The mappings (one, or two with INIT_P2M).
    pub mappings: Vec<Mapping>,
}

/// The first vCPU's registers, as `vcpu_x86_64` sets them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PvRegs {
    /// The entry point (XEN_ELFNOTE_ENTRY).
    pub rip: u64,
    /// Top of the boot stack page.
    pub rsp: u64,
    /// Virtual address of start_info.
    pub rsi: u64,
    /// IF set.
    pub rflags: u64,
    /// The pfn whose mfn goes into cr3 (the L4).
    pub cr3_pfn: u64,
    /// FLAT_KERNEL_CS.
    pub cs: u16,
    /// FLAT_KERNEL_DS (ds, es, fs, gs).
    pub ds: u16,
    /// FLAT_KERNEL_SS, also kernel_ss.
    pub ss: u16,
    /// kernel_sp (= rsp).
    pub kernel_sp: u64,
}

/// How libxenguest populates the guest: 2 MiB extents first, then 4 KiB pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PopulatePlan {
    /// All pfns `0..total_pages`.
    pub pfns: PfnRange,
    /// 2 MiB extents (order 9) asked for first, covering `0..superpages * 512`.
    pub superpages_2m: u64,
    /// 4 KiB pages after them (also what Xen did not give as superpages).
    pub pages_4k: u64,
}

/// One region of the layout, for display.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Region {
    /// What it is.
    pub what: String,
    /// Its frames.
    pub pfns: PfnRange,
    /// Its virtual address, if mapped.
    pub vaddr: Option<u64>,
}

/// The complete 64-bit PV boot plan.
#[derive(Clone, Debug)]
pub struct PvPlan {
    /// The kernel file.
    pub image_path: String,
    /// VIRT_BASE (0 when absent).
    pub virt_base: u64,
    /// XEN_ELFNOTE_ENTRY.
    pub entry: u64,
    /// The pfn of XEN_ELFNOTE_HYPERCALL_PAGE (for XEN_DOMCTL_hypercall_init).
    pub hypercall_page_pfn: Option<u64>,
    /// Pages of the guest (the memory target), start_info.nr_pages and the p2m's size.
    pub total_pages: u64,
    /// Bytes to copy, after `zeroes`.
    pub writes: Vec<PvWrite>,
    /// Frames to zero before the writes.
    pub zeroes: Vec<PfnRange>,
    /// The p2m list.
    pub p2m: P2mPlacement,
    /// The start_info page.
    pub start_info_pfn: u64,
    /// The xenstore ring page.
    pub xenstore_pfn: u64,
    /// The console ring page.
    pub console_pfn: u64,
    /// The boot stack page.
    pub boot_stack_pfn: u64,
    /// The kernel's frames.
    pub kernel_pfns: PfnRange,
    /// The initial page tables.
    pub page_tables: PageTablePlan,
    /// The ramdisk.
    pub ramdisk: Option<RamdiskPlacement>,
    /// The kernel command line.
    pub cmdline: Option<String>,
    /// start_info.flags.
    pub flags: u32,
    /// First vCPU registers.
    pub regs: PvRegs,
    /// How to populate.
    pub populate: PopulatePlan,
    /// The layout, in pfn order, for display.
    pub regions: Vec<Region>,
    /// The guest's sizes.
    pub size: GuestSize,
}

impl PvPlan {
    /// The L4 table's pfn (its mfn goes into cr3 and is pinned).
    pub fn l4_pfn(&self) -> u64 {
        self.page_tables.pfns.start
    }

    /// The p2m list bytes (8 per pfn, little-endian mfns) for the guest, from the caller's
    /// p2m; the copy goes to [`P2mPlacement::pfns`]. Errors when `p2m` is not exactly
    /// `total_pages` long.
    pub fn p2m_bytes(&self, p2m: &[u64]) -> Result<Vec<u8>, Error> {
        Ok(self
            .p2m_pieces(p2m, p2m.len().max(1) * 8)?
            .next()
            .unwrap_or_default())
    }

    /// The p2m list bytes as [`PvPlan::p2m_bytes`], in pieces of at most `piece_bytes`
    /// (rounded down to whole entries, at least one), so that a large guest's list is never
    /// copied whole: piece `i` goes at byte `i * piece_bytes` of the list.
    pub fn p2m_pieces<'a>(
        &self,
        p2m: &'a [u64],
        piece_bytes: usize,
    ) -> Result<impl Iterator<Item = Vec<u8>> + 'a, Error> {
        if p2m.len() as u64 != self.total_pages {
            return Err(Error::P2m(format!(
                "{} entries given, the guest has {} pages",
                p2m.len(),
                self.total_pages
            )));
        }
        Ok(p2m
            .chunks((piece_bytes / 8).max(1))
            .map(|chunk| chunk.iter().flat_map(|m| m.to_le_bytes()).collect()))
    }
}

/// What the kernel's notes and segments say, checked.
#[derive(Clone, Debug)]
pub(crate) struct Kernel {
    pub virt_base: u64,
    pub pstart: u64,
    pub kstart: u64,
    pub kend: u64,
    pub entry: u64,
    pub hypercall: Option<u64>,
    pub p2m_base: Option<u64>,
    pub unmapped_initrd: bool,
}

/// The FEATURES names libelf 4.17 knows; a required name outside this list is refused.
const LIBELF_FEATURES: &[(&str, u32)] = &[
    ("writable_page_tables", 0),
    ("writable_descriptor_tables", 1),
    ("auto_translated_physmap", 2),
    ("supervisor_mode_kernel", 3),
    ("pae_pgdir_above_4gb", 4),
    ("hvm_callback_vector", 8),
    ("dom0", 11),
];

fn last<T>(image: &KernelImage, f: impl Fn(&XenNote) -> Option<T>) -> Option<T> {
    image.info.notes.notes.iter().rev().find_map(f)
}

fn check_kernel(image: &KernelImage) -> Result<Kernel, Error> {
    let refuse = |reason: String| Error::Kernel {
        path: image.path.clone(),
        reason,
    };
    let entry = last(image, |n| match n {
        XenNote::Entry(e) => Some(*e),
        _ => None,
    });
    let Some(entry) = entry else {
        if image.info.notes.phys32_entry().is_some() {
            return Err(refuse(
                "not a Xen PV kernel: it has no XEN_ELFNOTE_ENTRY, only a PVH entry \
                 (PHYS32_ENTRY); boot it with type = \"pvh\""
                    .into(),
            ));
        }
        return Err(refuse(
            "not a Xen PV kernel: no Xen ELF note XEN_ELFNOTE_ENTRY".into(),
        ));
    };
    if image.info.class == ElfClass::Elf32 || image.info.machine != 62 {
        let pae = last(image, |n| match n {
            XenNote::PaeMode(p) => Some(p.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "no".into());
        return Err(refuse(format!(
            "a 32-bit x86 PV kernel (ELF class {:?}, machine {}, PAE_MODE \"{pae}\"): this Xen \
             runs 64-bit PV guests only",
            image.info.class, image.info.machine
        )));
    }
    let text = |kind: fn(&XenNote) -> Option<&String>| {
        last(image, |n| kind(n).cloned()).unwrap_or_default()
    };
    let loader = text(|n| match n {
        XenNote::Loader(s) => Some(s),
        _ => None,
    });
    let guest_os = text(|n| match n {
        XenNote::GuestOs(s) => Some(s),
        _ => None,
    });
    if !loader.starts_with("generic") && !guest_os.starts_with("linux") {
        return Err(refuse(format!(
            "not a Xen PV kernel libxenguest loads: LOADER is \"{loader}\" (not \"generic\") \
             and GUEST_OS is \"{guest_os}\" (not \"linux\")"
        )));
    }
    let xen_version = text(|n| match n {
        XenNote::XenVersion(s) => Some(s),
        _ => None,
    });
    if !xen_version.starts_with("xen-3.0") {
        return Err(refuse(format!(
            "XEN_VERSION is \"{xen_version}\"; Xen loads only images built for \"xen-3.0\""
        )));
    }
    for note in &image.info.notes.notes {
        let XenNote::Features(list) = note else {
            continue;
        };
        for f in list.iter().filter(|f| f.required) {
            match LIBELF_FEATURES.iter().find(|(n, _)| *n == f.name) {
                None => {
                    return Err(refuse(format!(
                        "FEATURES requires \"{}\", a feature Xen's loader does not know",
                        f.name
                    )))
                }
                Some((_, 11)) => {
                    return Err(refuse(
                        "FEATURES requires \"dom0\": the kernel cannot run as an unprivileged \
                         guest"
                            .into(),
                    ))
                }
                Some((_, 2)) => {
                    return Err(refuse(
                        "FEATURES requires \"auto_translated_physmap\": auto-translated PV \
                         guests are not supported"
                            .into(),
                    ))
                }
                Some(_) => {}
            }
        }
    }
    let num = |kind: fn(&XenNote) -> Option<u64>| last(image, kind);
    let virt_base = num(|n| match n {
        XenNote::VirtBase(v) => Some(*v),
        _ => None,
    });
    let paddr_offset = num(|n| match n {
        XenNote::PaddrOffset(v) => Some(*v),
        _ => None,
    });
    if paddr_offset.is_some() && virt_base.is_none() {
        return Err(refuse("PADDR_OFFSET is set but VIRT_BASE is not".into()));
    }
    let virt_base = virt_base.unwrap_or(0);
    let virt_offset = virt_base.wrapping_sub(paddr_offset.unwrap_or(0));
    let segs = &image.info.segments;
    let pstart = segs.iter().map(|s| s.paddr).min().unwrap_or(0);
    let pend = segs.iter().map(|s| s.end()).max().unwrap_or(0);
    let wrap = || {
        refuse(format!(
            "VIRT_BASE {virt_base:#x} and PADDR_OFFSET {:#x} put the kernel \
             [{pstart:#x}, {pend:#x}) past the top of the address space",
            paddr_offset.unwrap_or(0)
        ))
    };
    let kstart = pstart.checked_add(virt_offset).ok_or_else(wrap)?;
    let kend = pend.checked_add(virt_offset).ok_or_else(wrap)?;
    if virt_base > kstart {
        return Err(refuse(format!(
            "VIRT_BASE {virt_base:#x} is above the kernel's start {kstart:#x}"
        )));
    }
    if entry < kstart || entry >= kend {
        return Err(refuse(format!(
            "entry {entry:#x} (XEN_ELFNOTE_ENTRY) is outside the kernel [{kstart:#x}, {kend:#x})"
        )));
    }
    let hypercall = num(|n| match n {
        XenNote::HypercallPage(v) => Some(*v),
        _ => None,
    });
    if let Some(h) = hypercall {
        if h < kstart || h >= kend {
            return Err(refuse(format!(
                "HYPERCALL_PAGE {h:#x} is outside the kernel [{kstart:#x}, {kend:#x})"
            )));
        }
    }
    let p2m_base = num(|n| match n {
        XenNote::InitP2m(v) => Some(*v),
        _ => None,
    });
    if let Some(p) = p2m_base {
        if p >= kstart && p < kend {
            return Err(refuse(format!(
                "INIT_P2M {p:#x} is inside the kernel [{kstart:#x}, {kend:#x})"
            )));
        }
    }
    let unmapped_initrd = num(|n| match n {
        XenNote::ModStartPfn(v) => Some(*v),
        _ => None,
    })
    .is_some_and(|v| v != 0);
    Ok(Kernel {
        virt_base,
        pstart,
        kstart,
        kend,
        entry,
        hypercall,
        p2m_base,
        unmapped_initrd,
    })
}

/// Plans a 64-bit PV boot of `image` with `memory_mib` of RAM. Modules: at most one, the
/// ramdisk, without a command line (libxl gives a PV guest only its ramdisk; start_info has
/// room for one module).
pub fn plan_pv(
    image: &KernelImage,
    cmdline: Option<&str>,
    modules: Vec<ModuleInput>,
    size: GuestSize,
) -> Result<PvPlan, Error> {
    let kernel = check_kernel(image)?;
    if let Some(c) = cmdline {
        if c.len() >= MAX_GUEST_CMDLINE {
            return Err(Error::Request(format!(
                "the kernel command line is {} bytes; a PV guest's start_info holds at most {} \
                 (plus the NUL)",
                c.len(),
                MAX_GUEST_CMDLINE - 1
            )));
        }
        if c.contains('\0') {
            return Err(Error::Request(
                "the kernel command line contains a NUL byte".into(),
            ));
        }
    }
    if modules.len() > 1 {
        let names: Vec<&str> = modules.iter().skip(1).map(|m| m.name.as_str()).collect();
        return Err(Error::Request(format!(
            "a PV guest gets one module, the ramdisk; remove the extra module(s) {}",
            names.join(", ")
        )));
    }
    let ramdisk = modules.into_iter().next();
    if let Some(m) = &ramdisk {
        if m.cmdline.is_some() {
            return Err(Error::Request(format!(
                "module {}: a PV ramdisk has no command line",
                m.name
            )));
        }
        if m.data.is_empty() {
            return Err(Error::Request(format!("ramdisk {} is empty", m.name)));
        }
    }
    if size.memory_mib == 0 || size.memory_mib > pvh::layout::MAX_MEMORY_MIB {
        return Err(Error::Request(format!(
            "memory = {} MiB is outside 1..={} MiB",
            size.memory_mib,
            pvh::layout::MAX_MEMORY_MIB
        )));
    }
    let total = size.memory_mib << 8;
    let rd_len = ramdisk.as_ref().map(|m| m.data.len());
    let lay = layout::fit(&kernel, rd_len, total, size.memory_mib, &image.path)?;
    Ok(layout::assemble(
        image,
        &kernel,
        lay,
        ramdisk,
        cmdline.map(str::to_owned),
        total,
        size,
    ))
}

#[cfg(test)]
mod tests;
