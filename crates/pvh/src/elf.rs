//! ELF32/ELF64 images: loadable segments and Xen notes.

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::header::{self, Header};
use goblin::elf::program_header::{ProgramHeader, PT_LOAD, PT_NOTE};
use goblin::elf::section_header::{SectionHeader, SHT_NOTE};
use serde::Serialize;

use crate::error::Error;
use crate::notes::{self, XenNotes};

/// 32- or 64-bit ELF.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ElfClass {
    /// ELFCLASS32.
    Elf32,
    /// ELFCLASS64.
    Elf64,
}

/// One PT_LOAD segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LoadSegment {
    /// Index of the program header.
    pub index: usize,
    /// File offset of the segment's bytes (within the ELF image).
    pub offset: u64,
    /// Guest-physical load address (`p_paddr`).
    pub paddr: u64,
    /// Virtual address (`p_vaddr`), for display.
    pub vaddr: u64,
    /// Bytes copied from the file.
    pub filesz: u64,
    /// Bytes occupied in memory (the rest is zeroed).
    pub memsz: u64,
    /// `PF_*` flags.
    pub flags: u32,
}

impl LoadSegment {
    /// The first byte past the segment in guest memory.
    pub fn end(&self) -> u64 {
        self.paddr.saturating_add(self.memsz)
    }
}

/// Where the Xen notes were found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteSource {
    /// PT_NOTE program headers.
    ProgramHeaders,
    /// SHT_NOTE sections (the image had no Xen note in its program headers).
    Sections,
    /// No Xen note anywhere.
    None,
}

/// A parsed ELF image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ElfInfo {
    /// Class.
    pub class: ElfClass,
    /// `e_machine`.
    pub machine: u16,
    /// `e_entry`.
    pub entry: u64,
    /// PT_LOAD segments with a non-zero memsz, in program header order.
    pub segments: Vec<LoadSegment>,
    /// Xen notes.
    pub notes: XenNotes,
    /// Where the notes came from.
    pub note_source: NoteSource,
}

/// Whether `bytes` starts with the ELF magic.
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

/// Parses and checks an ELF image held in memory. `path` names it in errors.
///
/// Checks: x86 little-endian, program headers inside the file, every PT_LOAD with
/// `p_filesz <= p_memsz`, file bytes inside the file, no address overflow, no two segments
/// overlapping in physical memory.
pub fn parse(path: &str, bytes: &[u8]) -> Result<ElfInfo, Error> {
    if bytes.len() < header::SIZEOF_IDENT {
        return Err(Error::elf(
            path,
            format!("truncated ELF header ({} bytes)", bytes.len()),
        ));
    }
    let hdr = goblin::elf::Elf::parse_header(bytes)
        .map_err(|e| Error::elf(path, format!("ELF header: {e}")))?;
    let container = hdr
        .container()
        .map_err(|e| Error::elf(path, e.to_string()))?;
    let endian = hdr
        .endianness()
        .map_err(|e| Error::elf(path, e.to_string()))?;
    if endian != Endian::Little {
        return Err(Error::elf(
            path,
            "big-endian ELF; x86 images are little-endian",
        ));
    }
    if hdr.e_machine != header::EM_386 && hdr.e_machine != header::EM_X86_64 {
        return Err(Error::elf(
            path,
            format!(
                "machine {} ({}) is not x86",
                hdr.e_machine,
                header::machine_to_str(hdr.e_machine)
            ),
        ));
    }
    let ctx = Ctx::new(container, endian);
    let class = if container == Container::Big {
        ElfClass::Elf64
    } else {
        ElfClass::Elf32
    };
    let word = if class == ElfClass::Elf64 { 8 } else { 4 };
    if hdr.e_phnum == 0 {
        return Err(Error::elf(path, "no program headers"));
    }
    if usize::from(hdr.e_phentsize) != ProgramHeader::size(ctx) {
        return Err(Error::elf(
            path,
            format!(
                "e_phentsize is {}, expected {}",
                hdr.e_phentsize,
                ProgramHeader::size(ctx)
            ),
        ));
    }
    let phoff = usize::try_from(hdr.e_phoff)
        .ok()
        .filter(|o| *o < bytes.len())
        .ok_or_else(|| {
            Error::elf(
                path,
                format!(
                    "program headers at {:#x} are past the end of the file",
                    hdr.e_phoff
                ),
            )
        })?;
    let phdrs = ProgramHeader::parse(bytes, phoff, usize::from(hdr.e_phnum), ctx)
        .map_err(|e| Error::elf(path, format!("truncated program headers: {e}")))?;

    let file_len = bytes.len() as u64;
    let mut segments = Vec::new();
    for (index, ph) in phdrs.iter().enumerate() {
        if ph.p_type != PT_LOAD || ph.p_memsz == 0 {
            continue;
        }
        if ph.p_filesz > ph.p_memsz {
            return Err(Error::elf(
                path,
                format!(
                    "PT_LOAD segment {index}: p_filesz {:#x} is larger than p_memsz {:#x}",
                    ph.p_filesz, ph.p_memsz
                ),
            ));
        }
        if ph
            .p_offset
            .checked_add(ph.p_filesz)
            .is_none_or(|e| e > file_len)
        {
            return Err(Error::elf(
                path,
                format!(
                    "PT_LOAD segment {index}: file bytes [{:#x}, +{:#x}) run past the end of the \
                     {file_len}-byte image (truncated file?)",
                    ph.p_offset, ph.p_filesz
                ),
            ));
        }
        if ph.p_paddr.checked_add(ph.p_memsz).is_none() {
            return Err(Error::elf(
                path,
                format!(
                    "PT_LOAD segment {index}: p_paddr {:#x} + p_memsz {:#x} overflows",
                    ph.p_paddr, ph.p_memsz
                ),
            ));
        }
        segments.push(LoadSegment {
            index,
            offset: ph.p_offset,
            paddr: ph.p_paddr,
            vaddr: ph.p_vaddr,
            filesz: ph.p_filesz,
            memsz: ph.p_memsz,
            flags: ph.p_flags,
        });
    }
    if segments.is_empty() {
        return Err(Error::elf(path, "no PT_LOAD segment with a non-zero size"));
    }
    let mut sorted: Vec<&LoadSegment> = segments.iter().collect();
    sorted.sort_by_key(|s| s.paddr);
    for pair in sorted.windows(2) {
        if let [a, b] = pair {
            if b.paddr < a.end() {
                return Err(Error::elf(
                    path,
                    format!(
                        "PT_LOAD segments {} [{:#x}, {:#x}) and {} [{:#x}, {:#x}) overlap in \
                         physical memory",
                        a.index,
                        a.paddr,
                        a.end(),
                        b.index,
                        b.paddr,
                        b.end()
                    ),
                ));
            }
        }
    }

    let mut found = Vec::new();
    for ph in phdrs.iter().filter(|p| p.p_type == PT_NOTE) {
        let area = file_range(path, bytes, ph.p_offset, ph.p_filesz, "PT_NOTE segment")?;
        notes::parse_area(path, area, ph.p_align as usize, word, &mut found)?;
    }
    let mut note_source = NoteSource::ProgramHeaders;
    if found.is_empty() {
        note_source = NoteSource::None;
        if let Some(shdrs) = section_headers(bytes, &hdr, ctx) {
            for sh in shdrs.iter().filter(|s| s.sh_type == SHT_NOTE) {
                let area = file_range(path, bytes, sh.sh_offset, sh.sh_size, "SHT_NOTE section")?;
                notes::parse_area(path, area, sh.sh_addralign as usize, word, &mut found)?;
            }
            if !found.is_empty() {
                note_source = NoteSource::Sections;
            }
        }
    }
    Ok(ElfInfo {
        class,
        machine: hdr.e_machine,
        entry: hdr.e_entry,
        segments,
        notes: XenNotes { notes: found },
        note_source,
    })
}

/// Section headers, if the image has usable ones (stripped kernels may not: not an error).
fn section_headers(bytes: &[u8], hdr: &Header, ctx: Ctx) -> Option<Vec<SectionHeader>> {
    if hdr.e_shoff == 0 || usize::from(hdr.e_shentsize) != SectionHeader::size(ctx) {
        return None;
    }
    let off = usize::try_from(hdr.e_shoff)
        .ok()
        .filter(|o| *o < bytes.len())?;
    SectionHeader::parse(bytes, off, usize::from(hdr.e_shnum), ctx).ok()
}

fn file_range<'a>(
    path: &str,
    bytes: &'a [u8],
    offset: u64,
    size: u64,
    what: &str,
) -> Result<&'a [u8], Error> {
    let range = usize::try_from(offset)
        .ok()
        .zip(usize::try_from(size).ok())
        .and_then(|(o, s)| Some(o..o.checked_add(s)?));
    range.and_then(|r| bytes.get(r)).ok_or_else(|| {
        Error::elf(
            path,
            format!("{what} [{offset:#x}, +{size:#x}) runs past the end of the file"),
        )
    })
}
