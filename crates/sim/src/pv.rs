//! PV domains: machine frames, the page-table checks `pin_l4_table` makes, and what a
//! PV kernel's first instructions need from the tables the toolstack built.
//!
//! The rules are Xen 4.17's in essence (xen/arch/x86/mm.c, `arch_set_info_guest`), on
//! the frames the simulated domain owns; the error numbers are the ones Xen returns.

use xen_host::{Errno, PvVcpuContext, PAGE_SIZE};

use crate::disk::PvState;
use crate::SimError;

/// The first machine frame handed to PV domains (2 GiB up), so that an mfn is never
/// the gpfn it backs and a toolstack that confuses the two fails.
pub(crate) const MFN_BASE: u64 = 0x8_0000;
/// The magic a 64-bit PV start_info begins with.
pub(crate) const START_INFO_MAGIC: &[u8] = b"xen-3.0-x86_64";
/// Legacy `vcpu_info` slots in shared_info (`XEN_LEGACY_MAX_VCPUS`), 64 bytes each.
pub(crate) const LEGACY_VCPUS: usize = 32;
/// Size of one `vcpu_info`; `evtchn_upcall_mask` is its second byte.
pub(crate) const VCPU_INFO_SIZE: usize = 64;
/// Hypercall stubs in a hypercall page, 32 bytes each.
const HYPERCALL_STUBS: usize = 128;

/// Page-table entry bits.
const PRESENT: u64 = 1 << 0;
const RW: u64 = 1 << 1;
const PSE: u64 = 1 << 7;
/// The frame bits of an entry (bits 12..51).
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
/// L4 slots Xen keeps for itself (`ROOT_PAGETABLE_FIRST_XEN_SLOT` ..= `LAST`); Xen
/// fills them and ignores what a guest put there.
const XEN_SLOTS: std::ops::RangeInclusive<usize> = 256..=271;
const ENTRIES: usize = 512;

fn xen(errno: Errno, detail: String) -> SimError {
    SimError::xen(errno, detail)
}

/// The `i`-th entry of a table page (absent page: zeros).
fn entry(page: Option<&[u8]>, i: usize) -> u64 {
    page.and_then(|p| p.get(i * 8..i * 8 + 8))
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

fn target(e: u64) -> u64 {
    (e & ADDR_MASK) >> 12
}

/// Validate the page-table tree under the L4 table `l4` as pinning it makes Xen do, and
/// return its table frames (sorted). `read` gives a frame's bytes (`None`: zeros).
pub(crate) fn validate_tree<'a>(
    pv: &PvState,
    dom: u16,
    l4: u64,
    read: impl Fn(u64) -> Option<&'a [u8]>,
) -> Result<Vec<u64>, SimError> {
    if !pv.owns(l4) {
        return Err(xen(
            Errno::EINVAL,
            format!("mfn {l4:#x} is not a frame of domain {dom}"),
        ));
    }
    let mut levels = std::collections::BTreeMap::from([(l4, 4u8)]);
    let mut todo = vec![(l4, 4u8)];
    let mut mapped = Vec::new();
    while let Some((table, level)) = todo.pop() {
        let page = read(table);
        for i in 0..ENTRIES {
            if level == 4 && XEN_SLOTS.contains(&i) {
                continue;
            }
            let e = entry(page, i);
            if e & PRESENT == 0 {
                continue;
            }
            let next = target(e);
            let at = format!("L{level} table {table:#x} entry {i}");
            if level == 1 {
                if !pv.owns(next) {
                    return Err(xen(
                        Errno::EBUSY,
                        format!("{at} maps mfn {next:#x}, not a frame of domain {dom}"),
                    ));
                }
                mapped.push((next, e & RW != 0, at));
                continue;
            }
            if e & PSE != 0 {
                return Err(xen(
                    Errno::EINVAL,
                    format!("{at} is a superpage, which a PV guest may not map"),
                ));
            }
            if !pv.owns(next) {
                return Err(xen(
                    Errno::EINVAL,
                    format!("{at} points to mfn {next:#x}, not a frame of domain {dom}"),
                ));
            }
            let want = level - 1;
            match levels.insert(next, want) {
                None => todo.push((next, want)),
                Some(had) if had == want => {}
                Some(had) => {
                    return Err(xen(
                        Errno::EINVAL,
                        format!("{at}: mfn {next:#x} is used as an L{had} and an L{want} table"),
                    ))
                }
            }
        }
    }
    if let Some((frame, _, at)) = mapped
        .iter()
        .find(|(frame, rw, _)| *rw && levels.contains_key(frame))
    {
        return Err(xen(
            Errno::EINVAL,
            format!("{at} maps page-table frame {frame:#x} writable"),
        ));
    }
    Ok(levels.into_keys().collect())
}

/// Translate virtual address `va` through the tables under `l4`; the mfn it reaches.
fn translate<'a>(
    l4: u64,
    va: u64,
    write: bool,
    read: &impl Fn(u64) -> Option<&'a [u8]>,
) -> Result<u64, String> {
    let top = va >> 47;
    if top != 0 && top != 0x1_ffff {
        return Err(format!("{va:#x} is not a canonical address"));
    }
    let mut frame = l4;
    for level in (1..=4u32).rev() {
        let idx = ((va >> (12 + 9 * (level - 1))) & 0x1ff) as usize;
        let e = entry(read(frame), idx);
        if e & PRESENT == 0 {
            return Err(format!(
                "{va:#x}: entry {idx} of L{level} table {frame:#x} is not present"
            ));
        }
        if write && e & RW == 0 {
            return Err(format!(
                "{va:#x}: entry {idx} of L{level} table {frame:#x} is read-only"
            ));
        }
        frame = target(e);
    }
    Ok(frame)
}

/// What vCPU 0 would hit at its first instruction with context `ctx`: `None` when
/// rip, the stack slot below rsp and start_info at rsi all translate to frames of the
/// domain and start_info begins with its magic; otherwise why the guest would crash.
pub(crate) fn entry_fault<'a>(
    pv: &PvState,
    ctx: &PvVcpuContext,
    read: impl Fn(u64) -> Option<&'a [u8]>,
) -> Option<String> {
    if pv.pinned_l4 != Some(ctx.cr3_mfn) {
        return Some(format!("cr3 {:#x} is not the pinned L4 table", ctx.cr3_mfn));
    }
    let reach = |what: &str, va: u64, write: bool| -> Result<u64, String> {
        let mfn = translate(ctx.cr3_mfn, va, write, &read).map_err(|e| format!("{what} {e}"))?;
        if pv.owns(mfn) {
            Ok(mfn)
        } else {
            Err(format!(
                "{what} {va:#x} maps mfn {mfn:#x}, not the domain's"
            ))
        }
    };
    let check = || -> Result<(), String> {
        reach("rip", ctx.rip, false)?;
        reach("stack (rsp - 8)", ctx.rsp.wrapping_sub(8), true)?;
        let si = reach("start_info (rsi)", ctx.rsi, false)?;
        let off = (ctx.rsi % PAGE_SIZE) as usize;
        let found = read(si).and_then(|p| p.get(off..off + START_INFO_MAGIC.len()));
        if found != Some(START_INFO_MAGIC) {
            return Err(format!(
                "start_info (rsi {:#x}, mfn {si:#x}) does not begin with \"xen-3.0-x86_64\"",
                ctx.rsi
            ));
        }
        Ok(())
    };
    check().err()
}

/// Whether `va` is canonical (bits 47..63 all equal), as Xen requires of a PV vCPU's
/// rip, rsp and kernel_sp.
pub(crate) fn canonical(va: u64) -> bool {
    matches!(va >> 47, 0 | 0x1_ffff)
}

/// The hypercall page Xen writes for a 64-bit PV guest: stub `i` at `32 * i` loads `i`
/// into eax and makes a `syscall` (keeping rcx and r11), the rest `int3`.
pub(crate) fn hypercall_page() -> Vec<u8> {
    let mut page = vec![0xccu8; PAGE_SIZE as usize];
    for (i, stub) in page.chunks_mut(32).take(HYPERCALL_STUBS).enumerate() {
        let mut code = vec![0x51, 0x41, 0x53, 0xb8];
        code.extend_from_slice(&(i as u32).to_le_bytes());
        code.extend_from_slice(&[0x0f, 0x05, 0x41, 0x5b, 0x59, 0xc3]);
        if let Some(dst) = stub.get_mut(..code.len()) {
            dst.copy_from_slice(&code);
        }
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extents_merge_and_answer_the_m2p() {
        let mut pv = PvState::default();
        pv.add_extent(0, MFN_BASE, 512);
        pv.add_extent(512, MFN_BASE + 512, 512);
        pv.add_extent(2048, MFN_BASE + 4096, 1);
        assert_eq!(pv.extents.len(), 2);
        assert_eq!(pv.m2p(MFN_BASE + 700), Some(700));
        assert_eq!(pv.m2p(MFN_BASE + 4096), Some(2048));
        assert_eq!(pv.m2p(700), None);
        assert!(!pv.owns(0));
    }

    #[test]
    fn hypercall_stubs_load_their_number() {
        let page = hypercall_page();
        assert_eq!(&page[32 * 3 + 3..32 * 3 + 8], &[0xb8, 3, 0, 0, 0]);
        assert_eq!(page[4095], 0xcc);
        assert!(canonical(0xffff_ffff_8000_0000) && !canonical(0x8000_0000_0000));
    }
}
