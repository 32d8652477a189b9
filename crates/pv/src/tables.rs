//! The initial page tables' bytes, as `setup_pgtables_pv` fills them: every entry holds the
//! machine frame of the next level's table (or of the mapped page) from the guest's p2m.

use std::collections::HashMap;

use crate::{Error, Mapping, PvPlan, PAGE_RW, PROT_L1, PROT_UPPER};

/// One page-table page: its pfn and its bytes.
pub type TablePage = (u64, Box<[u8; 4096]>);

/// Largest machine frame an entry can hold (52-bit physical addresses).
const MAX_MFN: u64 = (1 << 40) - 1;

/// `get_pg_prot`: L1 entries that map a page-table page lose `_PAGE_RW`.
fn prot(maps: &[Mapping], level: usize, pfn: u64) -> u64 {
    if level > 0 {
        return PROT_UPPER;
    }
    let table = maps.iter().any(|m| {
        let first = m.levels[3].pfn;
        pfn >= first && pfn < first + m.area.tables
    });
    if table {
        PROT_L1 & !PAGE_RW
    } else {
        PROT_L1
    }
}

impl PvPlan {
    /// Every page-table page's bytes with machine frames filled in, given the guest's p2m
    /// (index pfn -> mfn), in pfn order. Errors, naming the pfn, when a frame the tables
    /// need is beyond `p2m` or its mfn does not fit an entry.
    pub fn page_tables(&self, p2m: &[u64]) -> Result<Vec<TablePage>, Error> {
        let maps = &self.page_tables.mappings;
        let mut pages: Vec<TablePage> = Vec::new();
        let mut index: HashMap<u64, usize> = HashMap::new();
        for m in maps {
            let first = m.levels[3].pfn;
            for pfn in first..first + m.area.tables {
                index.insert(pfn, pages.len());
                pages.push((pfn, Box::new([0u8; 4096])));
            }
        }
        let mfn = |pfn: u64| -> Result<u64, Error> {
            let m = p2m.get(pfn as usize).copied().ok_or_else(|| {
                Error::P2m(format!(
                    "pfn {pfn:#x} is beyond the p2m's {} entries",
                    p2m.len()
                ))
            })?;
            if m > MAX_MFN {
                return Err(Error::P2m(format!(
                    "pfn {pfn:#x} maps to mfn {m:#x}, too large for a page-table entry"
                )));
            }
            Ok(m)
        };
        for l in (0..4).rev() {
            for m1 in maps {
                let t = m1.levels[l];
                if t.tables == 0 {
                    continue;
                }
                let shift = 12 + 9 * l as u32;
                for m2 in maps {
                    let src = if l > 0 { m2.levels[l - 1] } else { m2.area };
                    if l > 0 && src.tables == 0 {
                        continue;
                    }
                    if src.from >= t.to || src.to <= t.from {
                        continue;
                    }
                    let lo = t.from.max(src.from);
                    let p_s = (lo - t.from) >> shift;
                    let p_e = (t.to.min(src.to) - t.from) >> shift;
                    let first = ((lo - src.from) >> shift) + src.pfn;
                    let mut at = usize::MAX;
                    for (p, pfn) in (p_s..=p_e).zip(first..) {
                        if at == usize::MAX || p % 512 == 0 {
                            let table_pfn = t.pfn + p / 512;
                            at = *index.get(&table_pfn).ok_or_else(|| {
                                Error::P2m(format!(
                                    "internal: entry {p} of level {} lands outside the tables",
                                    l + 1
                                ))
                            })?;
                        }
                        let entry = (mfn(pfn)? << 12) | prot(maps, l, pfn);
                        let off = (p % 512) as usize * 8;
                        pages[at].1[off..off + 8].copy_from_slice(&entry.to_le_bytes());
                    }
                }
            }
        }
        Ok(pages)
    }
}
