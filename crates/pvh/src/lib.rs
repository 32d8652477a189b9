//! PVH boot images for Xen: from a kernel (or PVH firmware) file to a [`BootPlan`], the
//! complete guest-physical layout of a PVH boot.
//!
//! The crate is pure data: it reads files, never guest memory, so a plan can be computed and
//! shown anywhere (`rxl create --dry-run`). The toolstack then populates
//! [`BootPlan::populate`], zeroes [`BootPlan::zeroes`], copies [`BootPlan::writes`] (in
//! bounded chunks with [`Payload::chunks`]), sets the memory map [`BootPlan::memmap`] and
//! loads [`BootPlan::regs`] into the first vCPU.
//!
//! Steps:
//! 1. [`probe_file`]: an ELF32/ELF64, a bzImage (gzip, xz, lzma, zstd, bzip2 or lz4 payload) or
//!    a whole-file gzip; decompressed once into a shared buffer, capped at
//!    [`DEFAULT_MAX_DECOMPRESSED`]. With a [`KernelCache`] in [`ProbeOptions::cache`], a
//!    compressed image's decoded bytes come from (or go to) the cache, keyed by the SHA-256
//!    of the compressed bytes ([`cache`]).
//! 2. Xen notes from PT_NOTE (SHT_NOTE as a fallback), typed in [`XenNote`]; PVH needs
//!    `XEN_ELFNOTE_PHYS32_ENTRY` inside a PT_LOAD segment.
//! 3. [`plan_image`]: the layout xl uses (docs/boot-image.md): segments at `p_paddr`, modules
//!    page aligned after the kernel, then the start_info block; ACPI at 0xfc000000; special
//!    pages at pfn 0xfeff8..0xfefff; RAM below 0xfc000000 and the rest above 4 GiB.

#![forbid(unsafe_code)]

pub mod acpi;
pub mod cache;
pub mod decompress;
pub mod elf;
mod error;
pub mod firmware;
pub mod hvm;
pub mod image;
pub mod layout;
pub mod notes;
pub mod payload;
pub mod regs;
mod render;
#[cfg(feature = "testguest")]
pub mod testguest;

use std::path::PathBuf;

pub use cache::KernelCache;
pub use decompress::{Compression, DEFAULT_MAX_DECOMPRESSED};
pub use error::Error;
pub use firmware::{resolve_firmware, FirmwareName, FirmwareSearch};
pub use hvm::{plan_hvm, HvmBios, HvmPlan, HvmRequest};
pub use image::{probe_bytes, probe_file, CacheUse, Container, KernelImage, ProbeOptions};
pub use layout::{
    plan_image, BootPlan, GuestSize, ModuleInput, ModulePlacement, Range, SegmentPlacement,
    SpecialPages, Write,
};
pub use notes::{XenNote, XenNotes};
pub use payload::Payload;
pub use regs::{CpuRegs, SegReg};
pub use render::e820_type_name;

/// What to boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// `kernel = "..."` (a resolved path).
    Kernel(PathBuf),
    /// `firmware = "..."`: a PVH firmware image (a resolved path; see [`resolve_firmware`]).
    Firmware(PathBuf),
}

impl ImageSource {
    /// The file.
    pub fn path(&self) -> &std::path::Path {
        match self {
            ImageSource::Kernel(p) | ImageSource::Firmware(p) => p,
        }
    }
}

/// A module (the ramdisk is module 0, with no command line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleRequest {
    /// The file (a resolved path).
    pub path: PathBuf,
    /// Its command line.
    pub cmdline: Option<String>,
}

/// The boot part of a domain configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootRequest {
    /// The image.
    pub image: ImageSource,
    /// The kernel command line.
    pub cmdline: Option<String>,
    /// Modules, ramdisk first.
    pub modules: Vec<ModuleRequest>,
    /// `memory` in MiB.
    pub memory_mib: u64,
    /// `maxmem` in MiB (at least `memory_mib`; 0 means "same as memory").
    pub maxmem_mib: u64,
    /// `vcpus`.
    pub vcpus: u32,
    /// `maxvcpus` (0 means "same as vcpus").
    pub maxvcpus: u32,
}

impl BootRequest {
    /// The guest's sizes, with the 0 defaults applied.
    pub fn size(&self) -> GuestSize {
        GuestSize {
            memory_mib: self.memory_mib,
            maxmem_mib: if self.maxmem_mib == 0 {
                self.memory_mib
            } else {
                self.maxmem_mib
            },
            vcpus: self.vcpus,
            maxvcpus: if self.maxvcpus == 0 {
                self.vcpus
            } else {
                self.maxvcpus
            },
        }
    }
}

/// Probes the image and lays out the boot. Modules are not read, only sized: their bytes are
/// read when the toolstack copies them.
pub fn plan(req: &BootRequest) -> Result<BootPlan, Error> {
    let image = probe_file(req.image.path(), &ProbeOptions::default())?;
    let modules = req
        .modules
        .iter()
        .map(|m| ModuleInput::from_file(m.path.clone(), m.cmdline.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    plan_image(&image, req.cmdline.as_deref(), modules, req.size())
}
