//! Populating a domain's RAM with superpages where alignment allows, as libxenguest does:
//! 1 GiB extents (order 18), then 2 MiB (order 9), then 4 KiB pages, falling back to the
//! next smaller order for whatever Xen could not give at a larger one.

use xen_host::{DomId, Errno, Error, Gfn, Hypervisor, Result};

/// Extent orders tried, largest first.
pub const ORDERS: [u32; 3] = [18, 9, 0];

/// Extents passed to one populate_physmap call at most.
pub const BATCH: usize = 512;

/// A run of guest frames: `[start, start + pages)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRange {
    /// First frame.
    pub start: u64,
    /// Number of frames.
    pub pages: u64,
}

/// Split `range` into aligned extents of the largest order in `orders` that fits at each
/// position: (order, first gfn) pairs in address order.
pub fn extents(range: FrameRange, orders: &[u32]) -> Vec<(u32, Gfn)> {
    let mut out = Vec::new();
    let end = range.start.saturating_add(range.pages);
    let mut gfn = range.start;
    while gfn < end {
        let order = orders
            .iter()
            .copied()
            .find(|&o| {
                let size = 1u64 << o;
                gfn % size == 0 && gfn.checked_add(size).is_some_and(|e| e <= end)
            })
            .unwrap_or(0);
        out.push((order, Gfn(gfn)));
        gfn += 1u64 << order;
    }
    out
}

/// What a populate did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Populated {
    /// Pages populated.
    pub pages: u64,
    /// populate_physmap calls made.
    pub calls: u64,
    /// Extents of each order in [`ORDERS`] that Xen gave.
    pub extents: [u64; 3],
}

/// Populate every range, largest extents first, falling back to smaller orders.
pub fn populate<H: Hypervisor + ?Sized>(
    hv: &H,
    dom: DomId,
    ranges: &[FrameRange],
) -> Result<Populated> {
    let mut stats = Populated::default();
    for range in ranges {
        populate_range(hv, dom, *range, 0, &mut stats)?;
    }
    Ok(stats)
}

fn populate_range<H: Hypervisor + ?Sized>(
    hv: &H,
    dom: DomId,
    range: FrameRange,
    first_order_idx: usize,
    stats: &mut Populated,
) -> Result<()> {
    let orders = &ORDERS[first_order_idx..];
    let all = extents(range, orders);
    let mut i = 0;
    while i < all.len() {
        let order = all[i].0;
        let mut j = i;
        while j < all.len() && all[j].0 == order && j - i < BATCH {
            j += 1;
        }
        let gfns: Vec<Gfn> = all[i..j].iter().map(|&(_, g)| g).collect();
        let done = hv.populate_physmap(dom, order, &gfns)?;
        stats.calls += 1;
        let done = done.min(gfns.len());
        stats.pages += (done as u64) << order;
        if let Some(idx) = ORDERS.iter().position(|&o| o == order) {
            stats.extents[idx] += done as u64;
        }
        if done < gfns.len() {
            let idx = ORDERS
                .iter()
                .position(|&o| o == order)
                .unwrap_or(ORDERS.len() - 1);
            if idx + 1 >= ORDERS.len() {
                let missing = (gfns.len() - done) as u64;
                return Err(Error::os_detail(
                    "populate_physmap",
                    Errno::ENOMEM,
                    format!(
                        "Xen gave {} of {} MiB for domain {dom}; the host has too little free memory",
                        stats.pages / 256,
                        (stats.pages + missing) / 256,
                    ),
                ));
            }
            // Xen had no extent of this order left: fill the rest of this batch with the
            // next smaller order.
            for &gfn in &gfns[done..] {
                let sub = FrameRange {
                    start: gfn.0,
                    pages: 1u64 << order,
                };
                populate_range(hv, dom, sub, idx + 1, stats)?;
            }
        }
        i = j;
    }
    Ok(())
}

/// 2 MiB extents passed to one populate call for a PV guest, as libxenguest batches them.
const PV_SUPERPAGE_BATCH: usize = 512;
/// 4 KiB frames passed to one populate call for a PV guest.
const PV_PAGE_BATCH: usize = 8192;
/// Frames in a 2 MiB extent.
const PAGES_2M: u64 = 1 << 9;

/// Populate a PV guest's frames `0..pages` as libxenguest's `meminit_pv` does: 2 MiB extents
/// while Xen gives them, then 4 KiB frames for the rest. Returns the p2m: the machine frame
/// of each guest frame, which the page tables, start_info and the grant entries of a PV
/// guest name. The p2m is the only per-frame array a PV create holds (8 bytes a frame).
pub fn populate_pv<H: Hypervisor + ?Sized>(hv: &H, dom: DomId, pages: u64) -> Result<Vec<u64>> {
    let len = usize::try_from(pages).map_err(|_| {
        Error::os_detail("populate_physmap", Errno::E2BIG, format!("{pages} frames"))
    })?;
    let mut p2m: Vec<u64> = Vec::new();
    p2m.try_reserve_exact(len).map_err(|_| {
        Error::os_detail(
            "populate_physmap",
            Errno::ENOMEM,
            format!("no room for the p2m of {pages} frames"),
        )
    })?;
    let supers = pages / PAGES_2M;
    let mut next = 0u64;
    'superpages: while next / PAGES_2M < supers {
        let count = (supers - next / PAGES_2M).min(PV_SUPERPAGE_BATCH as u64);
        let gpfns: Vec<u64> = (0..count).map(|i| next + i * PAGES_2M).collect();
        let mfns = hv.populate_physmap_pv(dom, 9, &gpfns)?;
        for &mfn in mfns.iter().take(gpfns.len()) {
            p2m.extend((0..PAGES_2M).map(|k| mfn + k));
            next += PAGES_2M;
        }
        if mfns.len() < gpfns.len() {
            // Xen has no more 2 MiB extents: the rest in 4 KiB frames.
            break 'superpages;
        }
    }
    while next < pages {
        let count = (pages - next).min(PV_PAGE_BATCH as u64);
        let gpfns: Vec<u64> = (next..next + count).collect();
        let mfns = hv.populate_physmap_pv(dom, 0, &gpfns)?;
        if mfns.len() < gpfns.len() {
            return Err(Error::os_detail(
                "populate_physmap",
                Errno::ENOMEM,
                format!(
                    "Xen gave {} of {} MiB for domain {dom}; the host has too little free memory",
                    (next + mfns.len() as u64) / 256,
                    pages / 256,
                ),
            ));
        }
        p2m.extend_from_slice(&mfns);
        next += count;
    }
    Ok(p2m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extents_use_the_largest_aligned_order() {
        // 1 GiB + 2 MiB + 3 pages starting at 0.
        let r = FrameRange {
            start: 0,
            pages: (1 << 18) + (1 << 9) + 3,
        };
        let e = extents(r, &ORDERS);
        assert_eq!(e[0], (18, Gfn(0)));
        assert_eq!(e[1], (9, Gfn(1 << 18)));
        assert_eq!(
            e[2..],
            [
                (0, Gfn((1 << 18) + 512)),
                (0, Gfn((1 << 18) + 513)),
                (0, Gfn((1 << 18) + 514))
            ]
        );
    }

    #[test]
    fn unaligned_start_uses_small_pages_until_aligned() {
        let r = FrameRange {
            start: 510,
            pages: 2 + 512,
        };
        let e = extents(r, &ORDERS);
        assert_eq!(e, vec![(0, Gfn(510)), (0, Gfn(511)), (9, Gfn(512))]);
    }

    #[test]
    fn pages_cover_the_range_exactly() {
        let r = FrameRange {
            start: 7,
            pages: 300_001,
        };
        let e = extents(r, &ORDERS);
        let total: u64 = e.iter().map(|&(o, _)| 1u64 << o).sum();
        assert_eq!(total, r.pages);
        let mut next = r.start;
        for &(o, g) in &e {
            assert_eq!(g.0, next);
            assert_eq!(g.0 % (1 << o), 0);
            next += 1 << o;
        }
    }
}
