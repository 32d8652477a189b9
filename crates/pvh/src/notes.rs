//! Xen ELF notes (`xen/elfnote.h`), decoded into typed values.

use serde::Serialize;

use crate::error::Error;

/// `XEN_ELFNOTE_*` note types.
pub mod kind {
    /// `XEN_ELFNOTE_INFO` (obsolete `__xen_guest` string).
    pub const INFO: u32 = 0;
    /// Virtual entry point (PV).
    pub const ENTRY: u32 = 1;
    /// Virtual address of the hypercall page (PV).
    pub const HYPERCALL_PAGE: u32 = 2;
    /// Virtual base of the image (PV).
    pub const VIRT_BASE: u32 = 3;
    /// Offset of physical from virtual addresses (PV).
    pub const PADDR_OFFSET: u32 = 4;
    /// Xen version the image was built for.
    pub const XEN_VERSION: u32 = 5;
    /// Guest OS name.
    pub const GUEST_OS: u32 = 6;
    /// Guest OS version.
    pub const GUEST_VERSION: u32 = 7;
    /// Loader type (`"generic"`).
    pub const LOADER: u32 = 8;
    /// PAE mode (`"yes"`, `"bimodal"`, ...).
    pub const PAE_MODE: u32 = 9;
    /// `|`-separated feature list, `!` marks required ones.
    pub const FEATURES: u32 = 10;
    /// `"yes"` if the image wants its symbol table loaded.
    pub const BSD_SYMTAB: u32 = 11;
    /// Lowest address the hypervisor hole may start at (PV).
    pub const HV_START_LOW: u32 = 12;
    /// Mask and value of valid L1 page table entries (PV).
    pub const L1_MFN_VALID: u32 = 13;
    /// Whether suspend cancellation is supported.
    pub const SUSPEND_CANCEL: u32 = 14;
    /// Virtual address of the initial p2m (PV).
    pub const INIT_P2M: u32 = 15;
    /// Whether `mod_start` is a pfn (PV).
    pub const MOD_START_PFN: u32 = 16;
    /// Bitmap of supported XENFEAT_* features.
    pub const SUPPORTED_FEATURES: u32 = 17;
    /// 32-bit physical entry point (PVH).
    pub const PHYS32_ENTRY: u32 = 18;
    /// Relocation constraints for the PVH image (Xen 4.19+).
    pub const PHYS32_RELOC: u32 = 19;
}

/// `XENFEAT_*` numbers, by the names the FEATURES note uses.
pub const FEATURE_NAMES: &[(&str, u32)] = &[
    ("writable_page_tables", 0),
    ("writable_descriptor_tables", 1),
    ("auto_translated_physmap", 2),
    ("supervisor_mode_kernel", 3),
    ("pae_pgdir_above_4gb", 4),
    ("mmu_pt_update_preserve_ad", 5),
    ("highmem_assist", 6),
    ("gnttab_map_avail_bits", 7),
    ("hvm_callback_vector", 8),
    ("hvm_safe_pvclock", 9),
    ("hvm_pirqs", 10),
    ("dom0", 11),
    ("grant_map_identity", 12),
    ("memory_op_vnode_supported", 13),
    ("ARM_SMCCC_supported", 14),
    ("linux_rsdp_unrestricted", 15),
    ("not_direct_mapped", 16),
    ("direct_mapped", 17),
];

/// `XENFEAT_linux_rsdp_unrestricted`: the guest finds the RSDP anywhere via start_info.
pub const XENFEAT_LINUX_RSDP_UNRESTRICTED: u32 = 15;

/// One entry of the FEATURES note.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Feature {
    /// The name as written.
    pub name: String,
    /// Marked `!` (the image requires it).
    pub required: bool,
    /// The XENFEAT number, if the name is known.
    pub bit: Option<u32>,
}

/// One decoded Xen ELF note.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "note", content = "value", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum XenNote {
    /// `XEN_ELFNOTE_INFO`.
    Info(String),
    /// `XEN_ELFNOTE_ENTRY`.
    Entry(u64),
    /// `XEN_ELFNOTE_HYPERCALL_PAGE`.
    HypercallPage(u64),
    /// `XEN_ELFNOTE_VIRT_BASE`.
    VirtBase(u64),
    /// `XEN_ELFNOTE_PADDR_OFFSET`.
    PaddrOffset(u64),
    /// `XEN_ELFNOTE_XEN_VERSION`.
    XenVersion(String),
    /// `XEN_ELFNOTE_GUEST_OS`.
    GuestOs(String),
    /// `XEN_ELFNOTE_GUEST_VERSION`.
    GuestVersion(String),
    /// `XEN_ELFNOTE_LOADER`.
    Loader(String),
    /// `XEN_ELFNOTE_PAE_MODE`.
    PaeMode(String),
    /// `XEN_ELFNOTE_FEATURES`.
    Features(Vec<Feature>),
    /// `XEN_ELFNOTE_BSD_SYMTAB`.
    BsdSymtab(String),
    /// `XEN_ELFNOTE_HV_START_LOW`.
    HvStartLow(u64),
    /// `XEN_ELFNOTE_L1_MFN_VALID`: (mask, value) words.
    L1MfnValid(Vec<u64>),
    /// `XEN_ELFNOTE_SUSPEND_CANCEL`.
    SuspendCancel(u64),
    /// `XEN_ELFNOTE_INIT_P2M`.
    InitP2m(u64),
    /// `XEN_ELFNOTE_MOD_START_PFN`.
    ModStartPfn(u64),
    /// `XEN_ELFNOTE_SUPPORTED_FEATURES`: one 32-bit word per feature submap.
    SupportedFeatures(Vec<u32>),
    /// `XEN_ELFNOTE_PHYS32_ENTRY`.
    Phys32Entry(u64),
    /// `XEN_ELFNOTE_PHYS32_RELOC`: alignment, lowest and highest load address, each optional.
    Phys32Reloc {
        /// Required alignment.
        align: Option<u32>,
        /// Lowest load address.
        min: Option<u32>,
        /// Highest load address.
        max: Option<u32>,
    },
    /// A type this crate does not know (crash/dump-core notes, future types).
    Unknown {
        /// The note type.
        kind: u32,
        /// The descriptor bytes.
        desc: Vec<u8>,
    },
}

impl XenNote {
    /// The `XEN_ELFNOTE_*` number.
    pub fn kind(&self) -> u32 {
        match self {
            XenNote::Info(_) => kind::INFO,
            XenNote::Entry(_) => kind::ENTRY,
            XenNote::HypercallPage(_) => kind::HYPERCALL_PAGE,
            XenNote::VirtBase(_) => kind::VIRT_BASE,
            XenNote::PaddrOffset(_) => kind::PADDR_OFFSET,
            XenNote::XenVersion(_) => kind::XEN_VERSION,
            XenNote::GuestOs(_) => kind::GUEST_OS,
            XenNote::GuestVersion(_) => kind::GUEST_VERSION,
            XenNote::Loader(_) => kind::LOADER,
            XenNote::PaeMode(_) => kind::PAE_MODE,
            XenNote::Features(_) => kind::FEATURES,
            XenNote::BsdSymtab(_) => kind::BSD_SYMTAB,
            XenNote::HvStartLow(_) => kind::HV_START_LOW,
            XenNote::L1MfnValid(_) => kind::L1_MFN_VALID,
            XenNote::SuspendCancel(_) => kind::SUSPEND_CANCEL,
            XenNote::InitP2m(_) => kind::INIT_P2M,
            XenNote::ModStartPfn(_) => kind::MOD_START_PFN,
            XenNote::SupportedFeatures(_) => kind::SUPPORTED_FEATURES,
            XenNote::Phys32Entry(_) => kind::PHYS32_ENTRY,
            XenNote::Phys32Reloc { .. } => kind::PHYS32_RELOC,
            XenNote::Unknown { kind, .. } => *kind,
        }
    }
}

/// The Xen notes of an image, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct XenNotes {
    /// Every Xen note found.
    pub notes: Vec<XenNote>,
}

impl XenNotes {
    /// `XEN_ELFNOTE_PHYS32_ENTRY`, if present (the last one wins, as in libelf).
    pub fn phys32_entry(&self) -> Option<u64> {
        self.notes.iter().rev().find_map(|n| match n {
            XenNote::Phys32Entry(e) => Some(*e),
            _ => None,
        })
    }

    /// The supported XENFEAT bits (first submap): SUPPORTED_FEATURES ORed with the FEATURES
    /// names, as libelf combines them.
    pub fn supported_features(&self) -> u32 {
        let mut bits = 0u32;
        for n in &self.notes {
            match n {
                XenNote::SupportedFeatures(words) => bits |= words.first().copied().unwrap_or(0),
                XenNote::Features(list) => {
                    for f in list {
                        if let Some(b) = f.bit.filter(|b| *b < 32) {
                            bits |= 1 << b;
                        }
                    }
                }
                _ => {}
            }
        }
        bits
    }

    /// Whether the image advertises the XENFEAT `bit`.
    pub fn has_feature(&self, bit: u32) -> bool {
        bit < 32 && self.supported_features() & (1 << bit) != 0
    }
}

fn numeric(path: &str, name: &str, desc: &[u8]) -> Result<u64, Error> {
    Ok(match desc.len() {
        1 => u64::from(desc.first().copied().unwrap_or(0)),
        2 => u64::from(u16::from_le_bytes(arr(desc))),
        4 => u64::from(u32::from_le_bytes(arr(desc))),
        8 => u64::from_le_bytes(arr(desc)),
        n => {
            return Err(Error::note(
                path,
                format!("{name} has a {n}-byte descriptor; numeric notes are 1, 2, 4 or 8 bytes"),
            ))
        }
    })
}

fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    for (d, s) in a.iter_mut().zip(b) {
        *d = *s;
    }
    a
}

fn string(desc: &[u8]) -> String {
    let end = desc.iter().position(|b| *b == 0).unwrap_or(desc.len());
    String::from_utf8_lossy(desc.get(..end).unwrap_or_default()).into_owned()
}

fn words(path: &str, name: &str, desc: &[u8], width: usize) -> Result<Vec<u64>, Error> {
    if desc.is_empty() || desc.len() % width != 0 {
        return Err(Error::note(
            path,
            format!(
                "{name} has a {}-byte descriptor, not a multiple of {width}",
                desc.len()
            ),
        ));
    }
    desc.chunks(width).map(|c| numeric(path, name, c)).collect()
}

/// Decodes one note descriptor of type `kind`. `word` is the image's word size (4 or 8), used
/// by notes that hold arrays of machine words.
pub fn decode(path: &str, kind: u32, desc: &[u8], word: usize) -> Result<XenNote, Error> {
    use XenNote as N;
    Ok(match kind {
        kind::INFO => N::Info(string(desc)),
        kind::ENTRY => N::Entry(numeric(path, "ENTRY", desc)?),
        kind::HYPERCALL_PAGE => N::HypercallPage(numeric(path, "HYPERCALL_PAGE", desc)?),
        kind::VIRT_BASE => N::VirtBase(numeric(path, "VIRT_BASE", desc)?),
        kind::PADDR_OFFSET => N::PaddrOffset(numeric(path, "PADDR_OFFSET", desc)?),
        kind::XEN_VERSION => N::XenVersion(string(desc)),
        kind::GUEST_OS => N::GuestOs(string(desc)),
        kind::GUEST_VERSION => N::GuestVersion(string(desc)),
        kind::LOADER => N::Loader(string(desc)),
        kind::PAE_MODE => N::PaeMode(string(desc)),
        kind::FEATURES => N::Features(
            string(desc)
                .split('|')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    let (required, name) = match s.strip_prefix('!') {
                        Some(rest) => (true, rest),
                        None => (false, s),
                    };
                    Feature {
                        name: name.to_string(),
                        required,
                        bit: FEATURE_NAMES
                            .iter()
                            .find(|(n, _)| *n == name)
                            .map(|(_, b)| *b),
                    }
                })
                .collect(),
        ),
        kind::BSD_SYMTAB => N::BsdSymtab(string(desc)),
        kind::HV_START_LOW => N::HvStartLow(numeric(path, "HV_START_LOW", desc)?),
        kind::L1_MFN_VALID => N::L1MfnValid(words(path, "L1_MFN_VALID", desc, word)?),
        kind::SUSPEND_CANCEL => N::SuspendCancel(numeric(path, "SUSPEND_CANCEL", desc)?),
        kind::INIT_P2M => N::InitP2m(numeric(path, "INIT_P2M", desc)?),
        kind::MOD_START_PFN => N::ModStartPfn(numeric(path, "MOD_START_PFN", desc)?),
        kind::SUPPORTED_FEATURES => N::SupportedFeatures(
            words(path, "SUPPORTED_FEATURES", desc, 4)?
                .into_iter()
                .map(|w| w as u32)
                .collect(),
        ),
        kind::PHYS32_ENTRY => N::Phys32Entry(numeric(path, "PHYS32_ENTRY", desc)?),
        kind::PHYS32_RELOC => {
            if desc.len() > 12 || desc.len() % 4 != 0 {
                return Err(Error::note(
                    path,
                    format!(
                        "PHYS32_RELOC has a {}-byte descriptor; it holds up to three 4-byte words",
                        desc.len()
                    ),
                ));
            }
            let w = |i: usize| {
                desc.get(i * 4..i * 4 + 4)
                    .map(|b| u32::from_le_bytes(arr(b)))
            };
            N::Phys32Reloc {
                align: w(0),
                min: w(1),
                max: w(2),
            }
        }
        other => N::Unknown {
            kind: other,
            desc: desc.to_vec(),
        },
    })
}

/// Walks an ELF note area (`Elf_Nhdr` records, fields and padding at `align`) and decodes the
/// notes named "Xen". Notes with other names are skipped.
pub fn parse_area(
    path: &str,
    area: &[u8],
    align: usize,
    word: usize,
    out: &mut Vec<XenNote>,
) -> Result<(), Error> {
    let align = if align == 8 { 8 } else { 4 };
    let pad = |n: usize| n.checked_add(align - 1).map(|v| v & !(align - 1));
    let mut pos = 0usize;
    while pos < area.len() {
        let hdr = area
            .get(pos..pos.saturating_add(12))
            .ok_or_else(|| Error::note(path, format!("truncated note header at offset {pos}")))?;
        let namesz = u32::from_le_bytes(arr(hdr)) as usize;
        let descsz = u32::from_le_bytes(arr(hdr.get(4..).unwrap_or_default())) as usize;
        let ty = u32::from_le_bytes(arr(hdr.get(8..).unwrap_or_default()));
        let name_at = pos + 12;
        let bad = || {
            Error::note(
                path,
                format!(
                    "note at offset {pos} (namesz {namesz}, descsz {descsz}, type {ty}) runs past \
                     the end of its {}-byte note area",
                    area.len()
                ),
            )
        };
        // Alignment applies to offsets within the (aligned) note area, not to the sizes:
        // with 8-byte notes a 4-byte name ends at 16, where the descriptor starts.
        let desc_at = name_at.checked_add(namesz).and_then(pad).ok_or_else(bad)?;
        let next = desc_at.checked_add(descsz).and_then(pad).ok_or_else(bad)?;
        let name = area.get(name_at..name_at + namesz).ok_or_else(bad)?;
        let desc = area.get(desc_at..desc_at + descsz).ok_or_else(bad)?;
        if name == b"Xen\0" || name == b"Xen" {
            out.push(decode(path, ty, desc, word)?);
        }
        // The last note's padding may be missing.
        pos = next.min(area.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_byte_aligned_notes_place_the_descriptor_after_the_name() {
        // A GNU property note as in an 8-byte aligned PT_NOTE: header 12, "GNU\0" 4, so
        // the descriptor starts at 16 (not at 12 + pad8(4) = 20), then a Xen note.
        let mut area = Vec::new();
        area.extend_from_slice(&4u32.to_le_bytes());
        area.extend_from_slice(&16u32.to_le_bytes());
        area.extend_from_slice(&5u32.to_le_bytes());
        area.extend_from_slice(b"GNU\0");
        area.extend_from_slice(&[0xaa; 16]);
        area.extend_from_slice(&4u32.to_le_bytes());
        area.extend_from_slice(&8u32.to_le_bytes());
        area.extend_from_slice(&18u32.to_le_bytes());
        area.extend_from_slice(b"Xen\0");
        area.extend_from_slice(&0x10_0000u64.to_le_bytes());
        assert_eq!(area.len(), 56);
        let mut out = Vec::new();
        parse_area("k", &area, 8, 8, &mut out).expect("valid 8-byte aligned notes");
        assert_eq!(out.len(), 1, "{out:?}");
    }

    fn note(name: &[u8], ty: u32, desc: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(name.len() as u32).to_le_bytes());
        v.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        v.extend_from_slice(&ty.to_le_bytes());
        v.extend_from_slice(name);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v.extend_from_slice(desc);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn decodes_every_type() {
        let mut area = Vec::new();
        area.extend(note(
            b"Xen\0",
            kind::PHYS32_ENTRY,
            &0x100000u32.to_le_bytes(),
        ));
        area.extend(note(b"GNU\0", 3, b"abcd"));
        area.extend(note(
            b"Xen\0",
            kind::ENTRY,
            &0xffff_ffff_8100_0000u64.to_le_bytes(),
        ));
        area.extend(note(b"Xen\0", kind::GUEST_OS, b"linux\0"));
        area.extend(note(b"Xen\0", kind::SUSPEND_CANCEL, &[1]));
        area.extend(note(b"Xen\0", kind::PAE_MODE, &[b'y', b'e', b's', 0]));
        area.extend(note(b"Xen\0", kind::HV_START_LOW, &0x8000u16.to_le_bytes()));
        area.extend(note(
            b"Xen\0",
            kind::FEATURES,
            b"!writable_page_tables|pae_pgdir_above_4gb|made_up\0",
        ));
        area.extend(note(
            b"Xen\0",
            kind::SUPPORTED_FEATURES,
            &(1u32 << 15).to_le_bytes(),
        ));
        let mut l1 = 1u64.to_le_bytes().to_vec();
        l1.extend(1u64.to_le_bytes());
        area.extend(note(b"Xen\0", kind::L1_MFN_VALID, &l1));
        area.extend(note(
            b"Xen\0",
            kind::PHYS32_RELOC,
            &[0, 0x20, 0, 0, 0, 0, 0x10, 0],
        ));
        area.extend(note(b"Xen\0", 0x100_0001, &[9, 9]));
        let mut out = Vec::new();
        parse_area("k", &area, 4, 8, &mut out).unwrap();
        let notes = XenNotes { notes: out };
        assert_eq!(notes.phys32_entry(), Some(0x100000));
        assert_eq!(notes.notes.len(), 11);
        assert_eq!(notes.notes[1], XenNote::Entry(0xffff_ffff_8100_0000));
        assert_eq!(notes.notes[2], XenNote::GuestOs("linux".into()));
        assert_eq!(notes.notes[3], XenNote::SuspendCancel(1));
        assert_eq!(notes.notes[4], XenNote::PaeMode("yes".into()));
        assert_eq!(notes.notes[5], XenNote::HvStartLow(0x8000));
        let XenNote::Features(f) = &notes.notes[6] else {
            panic!()
        };
        assert_eq!(f.len(), 3);
        assert!(f[0].required && f[0].bit == Some(0));
        assert!(!f[1].required && f[1].bit == Some(4));
        assert_eq!(f[2].bit, None);
        assert_eq!(notes.supported_features(), (1 << 15) | 1 | (1 << 4));
        assert!(notes.has_feature(XENFEAT_LINUX_RSDP_UNRESTRICTED));
        assert_eq!(notes.notes[8], XenNote::L1MfnValid(vec![1, 1]));
        assert_eq!(
            notes.notes[9],
            XenNote::Phys32Reloc {
                align: Some(0x2000),
                min: Some(0x100000),
                max: None
            }
        );
        assert_eq!(notes.notes[10].kind(), 0x100_0001);
    }

    #[test]
    fn bad_sizes_are_errors() {
        let area = note(b"Xen\0", kind::PHYS32_ENTRY, &[1, 2, 3]);
        let err = parse_area("k", &area, 4, 8, &mut Vec::new()).unwrap_err();
        assert!(
            err.to_string()
                .contains("PHYS32_ENTRY has a 3-byte descriptor"),
            "{err}"
        );

        let mut area = note(b"Xen\0", kind::PHYS32_ENTRY, &[1, 2, 3, 4]);
        area[4] = 200; // descsz past the end
        let err = parse_area("k", &area, 4, 8, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("runs past the end"), "{err}");

        let mut area = note(b"Xen\0", kind::PHYS32_ENTRY, &[1, 2, 3, 4]);
        area[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_area("k", &area, 4, 8, &mut Vec::new()).is_err());

        let err = parse_area("k", &[1, 2, 3], 4, 8, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("truncated note header"), "{err}");
    }
}
