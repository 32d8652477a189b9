//! Showing a plan: the `"layout"` JSON of `rxl create --dry-run`, and a text table.

use std::fmt::Write as _;

use serde_json::{json, Value};
use xen_host::{e820, E820Entry};

use crate::layout::BootPlan;

/// The name of an e820 type in the layout JSON.
pub fn e820_type_name(kind: u32) -> &'static str {
    match kind {
        e820::RAM => "ram",
        e820::RESERVED => "reserved",
        e820::ACPI => "acpi",
        e820::NVS => "nvs",
        e820::UNUSABLE => "unusable",
        e820::DISABLED => "disabled",
        e820::PMEM => "pmem",
        _ => "unknown",
    }
}

fn memmap_json(m: &E820Entry) -> Value {
    json!({"addr": m.addr, "size": m.size, "type": e820_type_name(m.kind)})
}

fn size_str(n: u64) -> String {
    if n >= 1 << 30 && n % (1 << 20) == 0 {
        format!("{:.1} GiB", n as f64 / f64::from(1u32 << 30))
    } else if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20))
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

impl BootPlan {
    /// The `"layout"` object: every number a JSON integer.
    ///
    /// Keys: `entry`, `start_info`, `kernel` `[{paddr, filesz, memsz}]`,
    /// `modules` `[{paddr, size, cmdline}]`, `cmdline` `{paddr}` (or null), `memmap`
    /// `[{addr, size, type}]`, `rsdp`; and, beyond those, `start_info_size`, `ram`
    /// `[{start, end}]`, `acpi_pages` `{start, end}`, `special_pages` (pfns) and `regs`.
    pub fn layout_json(&self) -> Value {
        json!({
            "entry": self.entry,
            "start_info": self.start_info_paddr,
            "start_info_size": self.start_info_size,
            "kernel": self.kernel.iter().map(|k| json!({
                "paddr": k.paddr, "filesz": k.filesz, "memsz": k.memsz,
            })).collect::<Vec<_>>(),
            "modules": self.modules.iter().map(|m| json!({
                "paddr": m.paddr, "size": m.size, "cmdline": m.cmdline,
            })).collect::<Vec<_>>(),
            "cmdline": self.cmdline_paddr.map(|p| json!({"paddr": p})),
            "memmap": self.memmap.iter().map(memmap_json).collect::<Vec<_>>(),
            "rsdp": self.rsdp_paddr,
            "ram": self.ram,
            "acpi_pages": self.acpi_pages,
            "special_pages": self.special_pages,
            "regs": self.regs,
        })
    }

    /// A readable table of guest memory, lowest address first.
    pub fn layout_table(&self) -> String {
        let mut rows: Vec<(u64, u64, String)> = Vec::new();
        for (i, k) in self.kernel.iter().enumerate() {
            rows.push((
                k.paddr,
                k.paddr + k.memsz,
                format!(
                    "kernel segment {i} ({} file, {} zeroed)",
                    size_str(k.filesz),
                    size_str(k.memsz - k.filesz)
                ),
            ));
        }
        for (i, m) in self.modules.iter().enumerate() {
            let cl = m
                .cmdline
                .as_deref()
                .map(|c| format!(" cmdline \"{c}\""))
                .unwrap_or_default();
            rows.push((
                m.paddr,
                m.paddr + m.size,
                format!("module {i} {}{cl}", m.source),
            ));
        }
        rows.push((
            self.start_info_paddr,
            self.start_info_paddr + self.start_info_size,
            "start_info (cmdline, modlist, memmap)".to_string(),
        ));
        if let Some(r) = self.rsdp_paddr {
            rows.push((r, r + crate::acpi::RSDP_LEN as u64, "ACPI RSDP".to_string()));
        }
        if !self.acpi_pages.is_empty() {
            rows.push((
                self.acpi_pages.start,
                self.acpi_pages.start + 0x1000,
                "ACPI info page".to_string(),
            ));
        }
        for w in self.writes.iter().filter(|w| w.what == "HVM info table") {
            rows.push((w.paddr, w.paddr + w.data.len(), w.what.clone()));
        }
        if let Some(r) = self.ioreq_server_pages {
            rows.push((r.start, r.end, "ioreq server pages".to_string()));
        }
        for w in self.writes.iter().filter(|w| w.what == "ACPI tables") {
            rows.push((
                w.paddr,
                w.paddr + w.data.len(),
                "ACPI tables (FACS DSDT FADT MADT XSDT RSDT)".to_string(),
            ));
        }
        let sp = self.special_pages.range();
        rows.push((
            sp.start,
            sp.end,
            format!(
                "special pages (xenstore {:#x}, console {:#x}, ident_pt {:#x})",
                self.special_pages.xenstore,
                self.special_pages.console,
                self.special_pages.ident_pt
            ),
        ));
        rows.sort_by_key(|r| (r.0, r.1));
        let mut s = String::new();
        let _ = writeln!(
            s,
            "entry {:#x}  start_info {:#x}  rsdp {}",
            self.entry,
            self.start_info_paddr,
            self.rsdp_paddr
                .map(|r| format!("{r:#x}"))
                .unwrap_or_else(|| "none".into())
        );
        if let Some(c) = self.cmdline_paddr {
            let _ = writeln!(s, "cmdline at {c:#x}");
        }
        let _ = writeln!(s, "{:<18} {:<18} {:>10}  what", "start", "end", "size");
        for (a, b, what) in rows {
            let _ = writeln!(s, "{a:#018x} {b:#018x} {:>10}  {what}", size_str(b - a));
        }
        let _ = writeln!(s, "memory map:");
        for m in &self.memmap {
            let _ = writeln!(
                s,
                "{:#018x} {:#018x} {:>10}  {}",
                m.addr,
                m.addr + m.size,
                size_str(m.size),
                e820_type_name(m.kind)
            );
        }
        s
    }
}
