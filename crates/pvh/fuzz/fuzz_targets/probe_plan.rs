//! Probe + plan on arbitrary bytes: any input must give Ok or Err, never a panic, and a plan
//! that is returned must be self-consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pvh::{GuestSize, ModuleInput, Payload, ProbeOptions};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the guest size, so small and large guests are both exercised.
    let (sel, image) = match data.split_first() {
        Some((s, rest)) => (*s, rest),
        None => return,
    };
    let opts = ProbeOptions {
        max_image: 64 << 20,
        cache: None,
    };
    let Ok(img) = pvh::probe_bytes("fuzz", image, &opts) else {
        return;
    };
    let size = GuestSize {
        memory_mib: 2 + u64::from(sel & 0x3f) * 64,
        maxmem_mib: 2 + u64::from(sel & 0x3f) * 64 + u64::from(sel >> 7) * 8192,
        vcpus: 1 + u32::from(sel & 3),
        maxvcpus: 4,
    };
    let module = ModuleInput {
        name: "m".into(),
        data: Payload::bytes(image.get(..image.len().min(5000)).unwrap_or_default().to_vec()),
        cmdline: Some("x".into()),
    };
    if let Ok(plan) = pvh::plan_image(&img, Some("console=hvc0"), vec![module], size) {
        let lowmem = plan.lowmem_end();
        for w in &plan.writes {
            let r = w.range();
            assert!(r.end <= 1 << 32, "{} above 4 GiB", w.what);
            assert!(r.end <= lowmem || r.start >= pvh::layout::MMIO_HOLE_START, "{}", w.what);
        }
        let _ = plan.layout_json();
        let _ = plan.layout_table();
    }
});
