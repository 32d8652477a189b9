//! Helpers shared by the integration tests and the bench.

#![allow(dead_code)]

use std::path::Path;

use sim::{HostConfig, SimHost};
use xen_host::{CreateDomain, DomId, Hypervisor};

/// A PVH-like createdomain request.
pub fn pvh(vcpus: u32) -> CreateDomain {
    CreateDomain::pvh([7; 16], vcpus)
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
