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
