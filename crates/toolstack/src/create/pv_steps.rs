//! The steps only a PV guest runs, and the PV forms of the shared ones, in libxenguest's
//! order (`xc_dom_boot_image`): the image copied into the frames the p2m names, the page
//! tables of the initial mapping and the p2m list, shared_info, start_info, the hypercall
//! page, the top page table pinned, then vCPU 0's context.

use xen_host::{e820, E820Entry, Hypervisor, PvVcpuContext, Store, PAGE_SHIFT, PAGE_SIZE};

use super::{Build, Failure};

/// Bytes copied per write_frames call.
const COPY_CHUNK: usize = 2 << 20;

/// libxl's `xc_domain_set_memmap_limit(max_memkb + slack)` (slack 0 by default: one RAM
/// entry up to maxmem), then the TSC mode (default).
pub(super) fn memmap_limit<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let dom = b.dom()?;
    let map = [E820Entry {
        addr: 0,
        size: b.cfg.maxmem_mib << 20,
        kind: e820::RAM,
    }];
    b.hv.set_memory_map(dom, &map)?;
    Ok(b.hv.set_tsc_info(dom, 0)?)
}

/// The machine frames of the guest frames `[pfn, pfn + pages)`.
fn mfns<H, S>(b: &Build<'_, H, S>, pfn: u64, pages: u64) -> Result<Vec<u64>, Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let p2m = b.p2m()?;
    let range = usize::try_from(pfn)
        .ok()
        .zip(usize::try_from(pages).ok())
        .and_then(|(s, n)| Some(s..s.checked_add(n)?))
        .filter(|r| r.end <= p2m.len())
        .ok_or_else(|| {
            Failure::Msg(format!(
                "frames {pfn:#x}+{pages:#x} are beyond the guest's {} frames",
                p2m.len()
            ))
        })?;
    Ok(p2m[range].to_vec())
}

/// Write `bytes` into the guest from byte `offset` of frame `pfn` on (an offset past the
/// frame moves on to the next ones). A write that starts inside a frame keeps the frame's
/// bytes before it.
fn write_at<H, S>(
    b: &Build<'_, H, S>,
    pfn: u64,
    offset: u64,
    bytes: &[u8],
    what: &str,
) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let dom = b.dom()?;
    let copy_err = |e| Failure::HostIn(format!("copy {what}"), e);
    let mut pfn = pfn + (offset >> PAGE_SHIFT);
    let inside = (offset % PAGE_SIZE) as usize;
    let mut rest = bytes;
    if inside != 0 && !rest.is_empty() {
        let head = rest.len().min(PAGE_SIZE as usize - inside);
        let frame = mfns(b, pfn, 1)?;
        let mut page = b.hv.read_frames(dom, &frame).map_err(copy_err)?;
        page[inside..inside + head].copy_from_slice(&rest[..head]);
        b.hv.write_frames(dom, &frame, &page).map_err(copy_err)?;
        rest = &rest[head..];
        pfn += 1;
    }
    if rest.is_empty() {
        return Ok(());
    }
    let frames = mfns(b, pfn, (rest.len() as u64).div_ceil(PAGE_SIZE))?;
    b.hv.write_frames(dom, &frames, rest).map_err(copy_err)
}

/// Zero the boot allocation's frames that need it, then copy the kernel's segments and the
/// ramdisk, 2 MiB at a time.
pub(super) fn load_image<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let plan = b.pv()?;
    let dom = b.dom()?;
    for z in &plan.zeroes {
        let frames = mfns(b, z.start, z.len())?;
        for chunk in frames.chunks(COPY_CHUNK / PAGE_SIZE as usize) {
            b.hv.zero_frames(dom, chunk)?;
        }
    }
    for w in &plan.writes {
        for chunk in w.data.chunks(COPY_CHUNK) {
            let (offset, bytes) =
                chunk.map_err(|e| Failure::Msg(format!("reading {}: {e}", w.what)))?;
            write_at(b, w.pfn, w.offset + offset, &bytes, &w.what)?;
        }
    }
    Ok(())
}

/// The page tables of the initial mapping (filled with machine frames) and the p2m list the
/// kernel finds at `mfn_list`.
pub(super) fn page_tables<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let plan = b.pv()?;
    let tables = plan
        .page_tables(b.p2m()?)
        .map_err(|e| Failure::Msg(e.to_string()))?;
    for (pfn, page) in &tables {
        write_at(b, *pfn, 0, &page[..], "page tables")?;
    }
    // The list in 2 MiB pieces: never a second copy of the whole p2m.
    let pieces = plan
        .p2m_pieces(b.p2m()?, COPY_CHUNK)
        .map_err(|e| Failure::Msg(e.to_string()))?;
    for (i, bytes) in pieces.enumerate() {
        write_at(
            b,
            plan.p2m.pfns.start,
            (i * COPY_CHUNK) as u64,
            &bytes,
            "the p2m list",
        )?;
    }
    Ok(())
}

/// Every vCPU's event upcalls masked in shared_info; its frame goes into start_info.
pub(super) fn shared_info<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let mfn = b.hv.init_pv_shared_info(b.dom()?)?;
    b.shared_info_mfn = Some(mfn);
    Ok(())
}

/// The start_info page.
pub(super) fn start_info<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let plan = b.pv()?;
    let (store_port, console_port) = super::steps::ports(b)?;
    let shared = b
        .shared_info_mfn
        .ok_or_else(|| Failure::Msg("no shared_info yet: the step list is out of order".into()))?;
    let page = plan
        .start_info(&pv::StartInfoInputs {
            shared_info_maddr: shared << PAGE_SHIFT,
            store_mfn: b.mfn(plan.xenstore_pfn)?,
            store_evtchn: store_port,
            console_mfn: b.mfn(plan.console_pfn)?,
            console_evtchn: console_port,
        })
        .map_err(|e| Failure::Msg(e.to_string()))?;
    write_at(b, plan.start_info_pfn, 0, &page, "start_info")
}

/// Xen fills the kernel's hypercall page (when its notes name one).
pub(super) fn hypercall_page<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    match b.pv()?.hypercall_page_pfn {
        Some(pfn) => Ok(b.hv.hypercall_init(b.dom()?, b.mfn(pfn)?)?),
        None => Ok(()),
    }
}

/// Xen validates the page tables and takes the top one as a pinned L4.
pub(super) fn pin_tables<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let l4 = b.mfn(b.pv()?.l4_pfn())?;
    Ok(b.hv.pin_l4_table(b.dom()?, l4)?)
}

/// vCPU 0 starts at the kernel's entry in kernel mode, its stack on the boot stack page, rsi
/// pointing at start_info, cr3 the pinned L4.
pub(super) fn vcpu_context<H, S>(b: &mut Build<'_, H, S>) -> Result<(), Failure>
where
    H: Hypervisor + ?Sized,
    S: Store + ?Sized,
{
    let plan = b.pv()?;
    let r = &plan.regs;
    let ctx = PvVcpuContext {
        rip: r.rip,
        rsp: r.rsp,
        rsi: r.rsi,
        rflags: r.rflags,
        cr3_mfn: b.mfn(plan.l4_pfn())?,
        kernel_sp: r.kernel_sp,
    };
    Ok(b.hv.set_pv_vcpu_context(b.dom()?, 0, &ctx)?)
}
