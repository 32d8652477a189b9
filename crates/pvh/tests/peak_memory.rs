//! Peak memory while planning Debian's kernel does not depend on the guest's memory size nor on
//! the modules (they are sized, not read). One test per binary: it reads the process's VmHWM.

mod common;

use pvh::{BootRequest, ImageSource, ModuleRequest};

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

#[test]
fn peak_memory_is_the_kernel_not_the_guest() {
    let vmlinuz = common::debian_vmlinuz();
    let dir = tempfile::tempdir().unwrap();
    // A 256 MiB module that takes no disk space.
    let module = dir.path().join("initrd");
    std::fs::File::create(&module)
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    let req = |memory_mib, modules| BootRequest {
        image: ImageSource::Kernel(vmlinuz.clone()),
        cmdline: Some("console=hvc0".into()),
        modules,
        memory_mib,
        maxmem_mib: memory_mib,
        vcpus: 1,
        maxvcpus: 1,
    };

    let base = vm_hwm_kib();
    let small = pvh::plan(&req(256, Vec::new())).unwrap();
    let elf_kib = small
        .writes
        .iter()
        .find_map(|w| match &w.data {
            pvh::Payload::Shared { buf, .. } if w.what.starts_with("kernel") => {
                Some(buf.len() as u64 / 1024)
            }
            _ => None,
        })
        .unwrap();
    let after_small = vm_hwm_kib();
    drop(small);

    let big = pvh::plan(&req(
        64 << 10,
        vec![ModuleRequest {
            path: module,
            cmdline: None,
        }],
    ))
    .unwrap();
    let after_big = vm_hwm_kib();
    assert_eq!(big.modules[0].size, 256 << 20);

    println!(
        "decompressed kernel {} KiB; peak growth: 256 MiB guest {} KiB, 64 GiB guest + 256 MiB \
         module {} KiB more",
        elf_kib,
        after_small - base,
        after_big - after_small
    );
    // The decompressed image, plus at most 4 MiB of decoder tables and buffers: the xz
    // decoder uses the output as its dictionary (Debian's stream declares 32 MiB).
    assert!(
        after_small - base <= elf_kib + 4 * 1024,
        "planning grew the peak by {} KiB for a {elf_kib} KiB kernel",
        after_small - base
    );
    // A 256x larger guest with a 256 MiB module costs (next to) nothing more.
    assert!(
        after_big - after_small <= 8 * 1024,
        "the big guest grew the peak by {} KiB",
        after_big - after_small
    );
}
