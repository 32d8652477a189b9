//! plan_pv + page_tables + start_info for a Debian-sized synthetic kernel (about 30 MiB in
//! memory, Linux's notes: INIT_P2M and MOD_START_PFN) with a 30 MiB ramdisk, at 256 MiB and
//! 16 GiB. The p2m given to `page_tables` is the caller's (built once, outside the timing).
//!
//!     cargo bench -p pv --bench plan

use std::sync::OnceLock;

use pv::testkernel::PvKernel;
use pv::StartInfoInputs;
use pvh::{GuestSize, KernelImage, ModuleInput, Payload};

fn main() {
    divan::main();
}

fn image() -> &'static KernelImage {
    static I: OnceLock<KernelImage> = OnceLock::new();
    I.get_or_init(|| {
        PvKernel::debian_like()
            .image("vmlinuz-debian-like")
            .unwrap()
    })
}

fn ramdisk() -> ModuleInput {
    static R: OnceLock<Payload> = OnceLock::new();
    ModuleInput {
        name: "initrd.img".into(),
        data: R
            .get_or_init(|| Payload::bytes(vec![0x5a; 30 << 20]))
            .clone(),
        cmdline: None,
    }
}

fn size(mib: u64) -> GuestSize {
    GuestSize {
        memory_mib: mib,
        maxmem_mib: mib,
        vcpus: 2,
        maxvcpus: 2,
    }
}

#[divan::bench(args = [256, 16384])]
fn plan(b: divan::Bencher<'_, '_>, mib: u64) {
    b.bench(|| pv::plan_pv(image(), Some("console=hvc0"), vec![ramdisk()], size(mib)).unwrap());
}

#[divan::bench(args = [256, 16384])]
fn plan_tables_start_info(b: divan::Bencher<'_, '_>, mib: u64) {
    let p2m: Vec<u64> = (0..mib << 8).map(|p| 0x10_0000 + p).collect();
    b.bench(|| {
        let p = pv::plan_pv(image(), Some("console=hvc0"), vec![ramdisk()], size(mib)).unwrap();
        let t = p.page_tables(&p2m).unwrap();
        let s = p.start_info(&StartInfoInputs::default()).unwrap();
        (t.len(), s.len())
    });
}

#[divan::bench(args = [256, 16384])]
fn p2m_bytes(b: divan::Bencher<'_, '_>, mib: u64) {
    let p2m: Vec<u64> = (0..mib << 8).map(|p| 0x10_0000 + p).collect();
    let p = pv::plan_pv(image(), None, vec![ramdisk()], size(mib)).unwrap();
    b.bench(|| p.p2m_bytes(&p2m).unwrap().len());
}
