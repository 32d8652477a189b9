//! Showing a PV plan: a text table for `rxl create -n` and the `"layout"` JSON.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::{PvPlan, PAGE_SIZE};

impl PvPlan {
    /// The layout as a table: one row per region, in pfn order, then the registers.
    pub fn layout_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "PV guest: {} pages ({} MiB), VIRT_BASE {:#x}",
            self.total_pages,
            (self.total_pages * PAGE_SIZE) >> 20,
            self.virt_base
        );
        let _ = writeln!(
            s,
            "{:<22} {:>21} {:>8} {:>20}",
            "region", "pfns", "pages", "virtual"
        );
        for r in &self.regions {
            let va = r
                .vaddr
                .map_or_else(|| "-".to_string(), |v| format!("{v:#x}"));
            let _ = writeln!(
                s,
                "{:<22} {:>21} {:>8} {:>20}",
                r.what,
                format!("{:#x}-{:#x}", r.pfns.start, r.pfns.end),
                r.pfns.len(),
                va
            );
        }
        let pt = &self.page_tables;
        let _ = writeln!(
            s,
            "initial mapping [{:#x}, {:#x}): L4 {} L3 {} L2 {} L1 {} tables",
            pt.maps_from,
            pt.maps_to,
            pt.per_level[3],
            pt.per_level[2],
            pt.per_level[1],
            pt.per_level[0]
        );
        let _ = writeln!(
            s,
            "p2m at {:#x} ({})",
            self.p2m.vaddr,
            if self.p2m.in_initial_mapping {
                "in the initial mapping"
            } else {
                "INIT_P2M, own page tables"
            }
        );
        let _ = writeln!(
            s,
            "populate: {} x 2 MiB, then {} x 4 KiB",
            self.populate.superpages_2m, self.populate.pages_4k
        );
        let r = &self.regs;
        let _ = writeln!(
            s,
            "rip {:#x} rsp {:#x} rsi {:#x} rflags {:#x} cr3 = mfn of pfn {:#x}",
            r.rip, r.rsp, r.rsi, r.rflags, r.cr3_pfn
        );
        s
    }

    /// The layout as JSON.
    pub fn layout_json(&self) -> Value {
        json!({
            "type": "pv",
            "image": self.image_path,
            "total_pages": self.total_pages,
            "virt_base": self.virt_base,
            "entry": self.entry,
            "hypercall_page_pfn": self.hypercall_page_pfn,
            "regions": self.regions,
            "page_tables": self.page_tables,
            "p2m": self.p2m,
            "ramdisk": self.ramdisk,
            "start_info_pfn": self.start_info_pfn,
            "xenstore_pfn": self.xenstore_pfn,
            "console_pfn": self.console_pfn,
            "boot_stack_pfn": self.boot_stack_pfn,
            "flags": self.flags,
            "cmdline": self.cmdline,
            "regs": self.regs,
            "populate": self.populate,
            "zeroes": self.zeroes,
            "writes": self.writes.iter().map(|w| json!({
                "pfn": w.pfn, "offset": w.offset, "len": w.data.len(), "what": w.what
            })).collect::<Vec<_>>(),
            "size": self.size,
        })
    }
}
