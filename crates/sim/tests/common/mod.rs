//! Helpers shared by the integration tests and the bench.

#![allow(dead_code)]

use std::path::Path;

use sim::{HostConfig, SimHost};
use xen_host::{cdf, emu, CreateDomain, DomId, Hypervisor};

/// A PVH-like createdomain request.
pub fn pvh(vcpus: u32) -> CreateDomain {
    CreateDomain {
        ssidref: 0,
        handle: [7; 16],
        flags: cdf::HVM | cdf::HAP,
        max_vcpus: vcpus,
        max_evtchn_port: 1023,
        max_grant_frames: -1,
        max_maptrack_frames: -1,
        grant_opts: 1,
        emulation_flags: emu::LAPIC,
        misc_flags: 0,
    }
}

/// A host of `total_mib` with a 1024 MiB Domain-0.
pub fn host(dir: &Path, total_mib: u64) -> SimHost {
    SimHost::create(
        dir,
        HostConfig {
            total_mib,
            ..HostConfig::default()
        },
    )
    .unwrap()
}

/// Create a domain allowed `mib` of memory.
pub fn domain(h: &SimHost, mib: u64) -> DomId {
    let d = h.create_domain(&pvh(1)).unwrap();
    h.max_mem(d, mib * 1024).unwrap();
    d
}
