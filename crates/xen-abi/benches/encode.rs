//! Cost of the safe byte encodings on the hot paths: a domctl round trip, a full
//! getdomaininfolist batch decode, and building a vCPU context blob.

use xen_abi::domctl::{self, Domctl, GetDomainInfo};
use xen_abi::hvm::{HvmContextBuilder, HvmHwCpu, HvmHwMtrr, HvmSaveHeader, HVM_FILE_MAGIC};
use xen_abi::Wire;

fn main() {
    divan::main();
}

#[divan::bench]
fn domctl_createdomain_encode_decode() -> Option<u16> {
    let p = domctl::CreateDomainV417 {
        flags: 3,
        max_vcpus: 2,
        max_evtchn_port: 1023,
        max_grant_frames: -1,
        max_maptrack_frames: -1,
        grant_opts: 1,
        emulation_flags: 1,
        ..Default::default()
    };
    let d = Domctl::new(
        domctl::cmd::CREATEDOMAIN,
        0x15,
        0x7ff4,
        divan::black_box(&p),
    );
    let bytes = d.to_bytes();
    Domctl::decode(divan::black_box(&bytes))
        .ok()
        .map(|d| d.domain)
}

#[divan::bench]
fn decode_256_domain_records(bencher: divan::Bencher<'_, '_>) {
    let rec = GetDomainInfo {
        domain: 7,
        tot_pages: 1 << 16,
        ..Default::default()
    }
    .to_bytes();
    let buf: Vec<u8> = rec
        .iter()
        .copied()
        .cycle()
        .take(256 * GetDomainInfo::SIZE)
        .collect();
    bencher.bench(|| {
        divan::black_box(&buf)
            .chunks_exact(GetDomainInfo::SIZE)
            .filter_map(|c| GetDomainInfo::decode(c).ok())
            .map(|i| i.tot_pages)
            .sum::<u64>()
    });
}

#[divan::bench]
fn build_bsp_context() -> usize {
    let header = HvmSaveHeader {
        magic: HVM_FILE_MAGIC,
        version: 1,
        ..Default::default()
    };
    let cpu = HvmHwCpu {
        rip: 0x10_0000,
        cr0: 0x11,
        ..Default::default()
    };
    HvmContextBuilder::new()
        .header(divan::black_box(&header))
        .mtrr(0, &HvmHwMtrr::default())
        .cpu(0, divan::black_box(&cpu))
        .finish()
        .len()
}
