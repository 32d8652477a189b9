//! A synthetic 64-bit Xen PV kernel for tests: an ELF64 with a text segment, a data segment
//! with a bss tail and a PT_NOTE of Xen notes, built in Rust. [`PvKernel::linux`] carries the
//! notes Linux's arch/x86/xen/xen-head.S gives a 64-bit kernel.

use pvh::notes::kind;

/// Linux's `__START_KERNEL_map`.
pub const LINUX_VIRT_BASE: u64 = 0xffff_ffff_8000_0000;
/// Linux's INIT_P2M: PUD_SIZE * PTRS_PER_PUD = 512 GiB.
pub const LINUX_INIT_P2M: u64 = 0x80_0000_0000;

/// What to build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PvKernel {
    /// `e_machine` (62 = x86_64; 3 = i386 for a 32-bit PV kernel).
    pub machine: u16,
    /// VIRT_BASE note (none: no note).
    pub virt_base: Option<u64>,
    /// `p_paddr` of the text segment.
    pub paddr: u64,
    /// Text bytes.
    pub text_len: u64,
    /// Data bytes (second segment, starts half a page after the text's last page).
    pub data_len: u64,
    /// bss bytes after the data.
    pub bss_len: u64,
    /// ENTRY note as an offset into the text (none: no note).
    pub entry_offset: Option<u64>,
    /// HYPERCALL_PAGE note as an offset into the text.
    pub hypercall_offset: Option<u64>,
    /// INIT_P2M note.
    pub init_p2m: Option<u64>,
    /// MOD_START_PFN note (1).
    pub mod_start_pfn: bool,
    /// PHYS32_ENTRY note (a PVH entry) as an offset into the text.
    pub phys32_offset: Option<u64>,
    /// FEATURES note.
    pub features: Option<String>,
    /// XEN_VERSION note.
    pub xen_version: Option<String>,
    /// GUEST_OS note.
    pub guest_os: Option<String>,
    /// LOADER note.
    pub loader: Option<String>,
    /// PAE_MODE note.
    pub pae_mode: Option<String>,
    /// Further raw notes (type, descriptor), after the others (so they win).
    pub extra: Vec<(u32, Vec<u8>)>,
}

impl PvKernel {
    /// A small kernel with Linux's 64-bit notes (INIT_P2M and MOD_START_PFN included).
    pub fn linux() -> PvKernel {
        PvKernel {
            machine: 62,
            virt_base: Some(LINUX_VIRT_BASE),
            paddr: 0x100_0000,
            text_len: 0x2345,
            data_len: 0x1800,
            bss_len: 0x3000,
            entry_offset: Some(0x1000),
            hypercall_offset: Some(0x2000),
            init_p2m: Some(LINUX_INIT_P2M),
            mod_start_pfn: true,
            phys32_offset: None,
            features: Some("!writable_page_tables|pae_pgdir_above_4gb".into()),
            xen_version: Some("xen-3.0".into()),
            guest_os: Some("linux".into()),
            loader: Some("generic".into()),
            pae_mode: Some("yes".into()),
            extra: Vec::new(),
        }
    }

    /// The same sizes as a Debian kernel: about 30 MiB in memory.
    pub fn debian_like() -> PvKernel {
        PvKernel {
            text_len: 20 << 20,
            data_len: 4 << 20,
            bss_len: 6 << 20,
            ..PvKernel::linux()
        }
    }

    /// `p_paddr` of the data segment.
    pub fn data_paddr(&self) -> u64 {
        self.paddr + self.text_len.div_ceil(0x1000) * 0x1000 + 0x800
    }

    /// The virtual address of text offset `off` (what the notes hold).
    pub fn text_va(&self, off: u64) -> u64 {
        self.virt_base
            .unwrap_or(0)
            .wrapping_add(self.paddr)
            .wrapping_add(off)
    }

    /// The byte at text offset `i` (a pattern tests can check).
    pub fn text_byte(i: u64) -> u8 {
        (i.wrapping_mul(7) ^ (i >> 12)) as u8
    }

    /// The byte at data offset `i`.
    pub fn data_byte(i: u64) -> u8 {
        (i.wrapping_mul(13) ^ 0x5a) as u8
    }

    fn notes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut note = |ty: u32, desc: &[u8]| {
            out.extend_from_slice(&4u32.to_le_bytes());
            out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
            out.extend_from_slice(&ty.to_le_bytes());
            out.extend_from_slice(b"Xen\0");
            out.extend_from_slice(desc);
            while out.len() % 4 != 0 {
                out.push(0);
            }
        };
        let text = |s: &Option<String>| {
            s.as_ref().map(|s| {
                let mut v = s.as_bytes().to_vec();
                v.push(0);
                v
            })
        };
        let strings = [
            (kind::GUEST_OS, text(&self.guest_os)),
            (kind::XEN_VERSION, text(&self.xen_version)),
            (kind::LOADER, text(&self.loader)),
            (kind::PAE_MODE, text(&self.pae_mode)),
            (kind::FEATURES, text(&self.features)),
        ];
        for (ty, v) in strings {
            if let Some(v) = v {
                note(ty, &v);
            }
        }
        let nums = [
            (kind::VIRT_BASE, self.virt_base),
            (kind::PADDR_OFFSET, self.virt_base.map(|_| 0)),
            (kind::ENTRY, self.entry_offset.map(|o| self.text_va(o))),
            (
                kind::HYPERCALL_PAGE,
                self.hypercall_offset.map(|o| self.text_va(o)),
            ),
            (kind::INIT_P2M, self.init_p2m),
            (kind::MOD_START_PFN, self.mod_start_pfn.then_some(1)),
            (kind::SUSPEND_CANCEL, Some(1)),
        ];
        for (ty, v) in nums {
            if let Some(v) = v {
                note(ty, &v.to_le_bytes());
            }
        }
        if let Some(o) = self.phys32_offset {
            note(kind::PHYS32_ENTRY, &((self.paddr + o) as u32).to_le_bytes());
        }
        for (ty, d) in &self.extra {
            note(*ty, d);
        }
        out
    }

    /// The ELF file's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let notes = self.notes();
        let notes_off = 0x100u64;
        let text_off = (notes_off + notes.len() as u64).div_ceil(0x1000) * 0x1000;
        let data_off = text_off + self.text_len.div_ceil(0x1000) * 0x1000 + 0x800;
        let total = data_off + self.data_len;
        let mut f = Vec::with_capacity(total as usize);
        f.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
        f.extend_from_slice(&2u16.to_le_bytes());
        f.extend_from_slice(&self.machine.to_le_bytes());
        f.extend_from_slice(&1u32.to_le_bytes());
        f.extend_from_slice(&self.text_va(self.entry_offset.unwrap_or(0)).to_le_bytes());
        f.extend_from_slice(&64u64.to_le_bytes());
        f.extend_from_slice(&0u64.to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        for v in [64u16, 56, 3, 64, 0, 0] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        let vb = self.virt_base.unwrap_or(0);
        let data_paddr = self.data_paddr();
        let phdrs = [
            (
                4u32,
                4u32,
                notes_off,
                0,
                0,
                notes.len() as u64,
                notes.len() as u64,
                4u64,
            ),
            (
                1,
                5,
                text_off,
                vb.wrapping_add(self.paddr),
                self.paddr,
                self.text_len,
                self.text_len,
                0x1000,
            ),
            (
                1,
                6,
                data_off,
                vb.wrapping_add(data_paddr),
                data_paddr,
                self.data_len,
                self.data_len + self.bss_len,
                0x1000,
            ),
        ];
        for (ty, flags, off, va, pa, filesz, memsz, align) in phdrs {
            f.extend_from_slice(&ty.to_le_bytes());
            f.extend_from_slice(&flags.to_le_bytes());
            for v in [off, va, pa, filesz, memsz, align] {
                f.extend_from_slice(&v.to_le_bytes());
            }
        }
        f.resize(notes_off as usize, 0);
        f.extend_from_slice(&notes);
        f.resize(text_off as usize, 0);
        f.extend((0..self.text_len).map(PvKernel::text_byte));
        f.resize(data_off as usize, 0);
        f.extend((0..self.data_len).map(PvKernel::data_byte));
        f
    }

    /// The kernel probed as pvh probes a file (name `name`).
    pub fn image(&self, name: &str) -> Result<pvh::KernelImage, pvh::Error> {
        pvh::probe_bytes(name, &self.bytes(), &pvh::ProbeOptions::default())
    }
}
