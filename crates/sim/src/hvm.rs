//! HVM guests with a device model (hvmloader): what the simulated host checks when one
//! first runs. A guest whose HVM_PARAM_IOREQ_SERVER_PFN is set is taken as one (PVH
//! guests have no ioreq server pages).
//!
//! hvmloader's first instructions need: its code at the entry point (vCPU 0's rip, in a
//! populated page), an `hvm_start_info` at ebx with Xen's magic, and in its module list
//! the BIOS, named `firmware`, in populated memory (hvmloader stops with "no BIOS ROM
//! image found" without it, unless built with ROMBIOS). A guest that lacks one of these
//! crashes at once, as the real one would stop.

use std::collections::HashMap;

use crate::disk::DomRecord;

/// `HVM_PARAM_IOREQ_SERVER_PFN`.
const IOREQ_SERVER_PFN: u32 = 32;
/// `HVM_SAVE_CODE(CPU)`.
const CPU_RECORD: u16 = 2;
/// Offsets of rbx and rip in `struct hvm_hw_cpu`.
const RBX_AT: usize = 520;
const RIP_AT: usize = 640;
/// `XEN_HVM_START_MAGIC_VALUE`.
const START_MAGIC: u32 = 0x336e_c578;
const PAGE: u64 = 4096;

/// Whether `d` is an HVM guest with a device model.
pub(crate) fn has_device_model(d: &DomRecord) -> bool {
    d.is_hvm() && d.hvm_params.contains_key(&IOREQ_SERVER_PFN)
}

fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// `len` bytes of guest memory at `gpa`, or `None` if a page is not populated.
fn read(pages: &HashMap<u64, Box<[u8]>>, gpa: u64, len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(len);
    let mut at = gpa;
    let end = gpa.checked_add(len as u64)?;
    while at < end {
        let page = pages.get(&(at / PAGE))?;
        let off = (at % PAGE) as usize;
        let n = ((PAGE - at % PAGE).min(end - at)) as usize;
        out.extend_from_slice(page.get(off..off + n)?);
        at += n as u64;
    }
    Some(out)
}

/// Why hvmloader could not start in `d` (whose memory is `pages`), or `None`.
pub(crate) fn boot_fault(d: &DomRecord, pages: &HashMap<u64, Box<[u8]>>) -> Option<String> {
    let cpu = d
        .hvm_records
        .iter()
        .find(|r| r.typecode == CPU_RECORD && r.instance == 0)
        .map(|r| crate::hv::unhex(&r.data));
    let Some(cpu) = cpu else {
        return Some("vCPU 0 has no context (sethvmcontext was not called)".into());
    };
    let (Some(rip), Some(rbx)) = (le64(&cpu, RIP_AT), le64(&cpu, RBX_AT)) else {
        return Some("vCPU 0's CPU record is truncated".into());
    };
    if read(pages, rip, 1).is_none() {
        return Some(format!(
            "the entry point {rip:#x} is not in populated memory"
        ));
    }
    let Some(si) = read(pages, rbx, 56) else {
        return Some(format!("ebx = {rbx:#x} is not in populated memory"));
    };
    if le32(&si, 0) != Some(START_MAGIC) {
        return Some(format!("no hvm_start_info magic at ebx = {rbx:#x}"));
    }
    let nr = le32(&si, 12).unwrap_or(0).min(16);
    let modlist = le64(&si, 16).unwrap_or(0);
    for i in 0..u64::from(nr) {
        let Some(e) = read(pages, modlist + i * 32, 32) else {
            return Some(format!(
                "the module list at {modlist:#x} is not in populated memory"
            ));
        };
        let (paddr, size, name_at) = (le64(&e, 0)?, le64(&e, 8)?, le64(&e, 16)?);
        let name = read(pages, name_at, 9).unwrap_or_default();
        if name == b"firmware\0" {
            if size == 0 || read(pages, paddr, 1).is_none() {
                return Some(format!(
                    "the firmware module at {paddr:#x} ({size} bytes) is not in populated memory"
                ));
            }
            return None;
        }
    }
    Some("no BIOS ROM image found: no module named \"firmware\" in hvm_start_info".into())
}
