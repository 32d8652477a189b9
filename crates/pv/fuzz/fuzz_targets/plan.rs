//! Arbitrary bytes as a kernel image: probe, then plan a PV boot with a size, a ramdisk
//! length and a command line taken from the first bytes. A plan that is made must hold
//! together: page tables, start_info and p2m built from an identity-like p2m.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use pvh::{GuestSize, ModuleInput, Payload, ProbeOptions};

/// One shared buffer the ramdisks borrow from, so no run allocates one.
fn ramdisk_bytes() -> Arc<Vec<u8>> {
    static B: OnceLock<Arc<Vec<u8>>> = OnceLock::new();
    B.get_or_init(|| Arc::new(vec![1; 4096 * 4096])).clone()
}

fuzz_target!(|data: &[u8]| {
    let [m0, m1, r0, r1, c, rest @ ..] = data else {
        return;
    };
    // Up to 16 GiB, and tiny sizes too.
    let memory_mib = (u64::from(u16::from_le_bytes([*m0, *m1])) % 16385).max(1);
    let rd_pages = u64::from(u16::from_le_bytes([*r0, *r1])) % 4096;
    let opts = ProbeOptions {
        max_image: 64 << 20,
        cache: None,
    };
    let Ok(image) = pvh::probe_bytes("fuzz", rest, &opts) else {
        return;
    };
    let modules = if rd_pages == 0 {
        vec![]
    } else {
        vec![ModuleInput {
            name: "rd".into(),
            data: Payload::Shared {
                buf: ramdisk_bytes(),
                start: 0,
                len: (rd_pages * 4096 - 100) as usize,
            },
            cmdline: None,
        }]
    };
    let cmdline = "x".repeat(usize::from(*c) * 5);
    let size = GuestSize {
        memory_mib,
        maxmem_mib: memory_mib,
        vcpus: 1,
        maxvcpus: 1,
    };
    let Ok(plan) = pv::plan_pv(&image, Some(&cmdline), modules, size) else {
        return;
    };
    assert!(plan.boot_stack_pfn < plan.total_pages);
    assert!(plan.p2m.segment.end <= plan.total_pages);
    if plan.total_pages <= 1 << 18 {
        let p2m: Vec<u64> = (0..plan.total_pages).map(|p| p + 0x1000).collect();
        let tables = plan.page_tables(&p2m).expect("tables from a full p2m");
        assert_eq!(tables.first().map(|t| t.0), Some(plan.l4_pfn()));
        plan.start_info(&Default::default()).expect("start_info");
        let _ = plan.layout_table();
        let _ = plan.layout_json();
    }
});
