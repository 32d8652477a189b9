//! The start_info page of a 64-bit PV guest, as `start_info_x86_64` writes it.

use serde::Serialize;

use crate::{Error, PvPlan, START_INFO_MAGIC};

/// What the toolstack knows only once the domain exists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StartInfoInputs {
    /// Machine address of the shared_info page (its mfn << 12).
    pub shared_info_maddr: u64,
    /// The xenstore page's mfn.
    pub store_mfn: u64,
    /// The xenstore event channel.
    pub store_evtchn: u32,
    /// The console page's mfn.
    pub console_mfn: u64,
    /// The console event channel.
    pub console_evtchn: u32,
}

/// Byte offsets of `struct start_info` (x86_64) fields.
pub mod offsets {
    /// `char magic[32]`.
    pub const MAGIC: usize = 0;
    /// `nr_pages`.
    pub const NR_PAGES: usize = 32;
    /// `shared_info` (machine address).
    pub const SHARED_INFO: usize = 40;
    /// `flags` (u32).
    pub const FLAGS: usize = 48;
    /// `store_mfn`.
    pub const STORE_MFN: usize = 56;
    /// `store_evtchn` (u32).
    pub const STORE_EVTCHN: usize = 64;
    /// `console.domU.mfn`.
    pub const CONSOLE_MFN: usize = 72;
    /// `console.domU.evtchn` (u32).
    pub const CONSOLE_EVTCHN: usize = 80;
    /// `pt_base` (virtual address of the L4).
    pub const PT_BASE: usize = 88;
    /// `nr_pt_frames`.
    pub const NR_PT_FRAMES: usize = 96;
    /// `mfn_list` (virtual address of the p2m list).
    pub const MFN_LIST: usize = 104;
    /// `mod_start`.
    pub const MOD_START: usize = 112;
    /// `mod_len`.
    pub const MOD_LEN: usize = 120;
    /// `cmd_line[1024]`.
    pub const CMD_LINE: usize = 128;
    /// `first_p2m_pfn`.
    pub const FIRST_P2M_PFN: usize = 1152;
    /// `nr_p2m_frames`.
    pub const NR_P2M_FRAMES: usize = 1160;
    /// Size of the structure.
    pub const SIZE: usize = 1168;
}

fn put(page: &mut [u8], at: usize, bytes: &[u8]) {
    page[at..at + bytes.len()].copy_from_slice(bytes);
}

impl PvPlan {
    /// The start_info page (4096 bytes): magic "xen-3.0-x86_64", nr_pages, shared_info,
    /// flags, store and console, pt_base, nr_pt_frames, mfn_list, first_p2m_pfn and
    /// nr_p2m_frames (INIT_P2M only), mod_start and mod_len (with a ramdisk), cmd_line.
    pub fn start_info(&self, inp: &StartInfoInputs) -> Result<Vec<u8>, Error> {
        use offsets as o;
        let mut page = vec![0u8; 4096];
        put(&mut page, o::MAGIC, START_INFO_MAGIC.as_bytes());
        put(&mut page, o::NR_PAGES, &self.total_pages.to_le_bytes());
        put(
            &mut page,
            o::SHARED_INFO,
            &inp.shared_info_maddr.to_le_bytes(),
        );
        put(&mut page, o::FLAGS, &self.flags.to_le_bytes());
        put(&mut page, o::STORE_MFN, &inp.store_mfn.to_le_bytes());
        put(&mut page, o::STORE_EVTCHN, &inp.store_evtchn.to_le_bytes());
        put(&mut page, o::CONSOLE_MFN, &inp.console_mfn.to_le_bytes());
        put(
            &mut page,
            o::CONSOLE_EVTCHN,
            &inp.console_evtchn.to_le_bytes(),
        );
        let pt_base = self.virt_base + self.l4_pfn() * crate::PAGE_SIZE;
        put(&mut page, o::PT_BASE, &pt_base.to_le_bytes());
        put(
            &mut page,
            o::NR_PT_FRAMES,
            &self.page_tables.pfns.len().to_le_bytes(),
        );
        put(&mut page, o::MFN_LIST, &self.p2m.vaddr.to_le_bytes());
        if !self.p2m.in_initial_mapping {
            put(
                &mut page,
                o::FIRST_P2M_PFN,
                &self.p2m.segment.start.to_le_bytes(),
            );
            put(
                &mut page,
                o::NR_P2M_FRAMES,
                &self.p2m.segment.len().to_le_bytes(),
            );
        }
        if let Some(rd) = &self.ramdisk {
            put(&mut page, o::MOD_START, &rd.mod_start.to_le_bytes());
            put(&mut page, o::MOD_LEN, &rd.mod_len.to_le_bytes());
        }
        if let Some(c) = &self.cmdline {
            if c.len() >= crate::MAX_GUEST_CMDLINE {
                return Err(Error::Request(format!(
                    "the kernel command line is {} bytes; start_info holds {}",
                    c.len(),
                    crate::MAX_GUEST_CMDLINE - 1
                )));
            }
            put(&mut page, o::CMD_LINE, c.as_bytes());
        }
        Ok(page)
    }
}
