//! Shared setup of the toolstack benchmarks: the assembly test guest, its configs, and
//! simulated hosts holding a given number of rxl-created domains.

#![allow(dead_code)] // each bench binary uses part of this module

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pvh::FirmwareSearch;
use sim::{HostConfig, SimHost};
use toolstack::create::{CreateOptions, Created};
use toolstack::state::StateDir;
use xen_host::DomId;
use xlcfg::model::DomainConfig;

/// A failure of the benchmark setup, naming what was being done.
pub type SetupError = String;

/// Guest sizes, MiB, of the create-by-size figures.
pub const SIZES_MIB: [u64; 3] = [32, 1024, 16384];

/// Domains already present in the scaling figures.
pub const EXISTING: [usize; 3] = [1, 100, 1000];

/// Memory of each filler domain, MiB (the smallest the test guest boots with).
pub const FILLER_MIB: u64 = 32;

/// Host RAM, MiB: Domain-0, the 16 GiB guest, and 1000 filler domains with their
/// special pages, with room to spare.
pub const HOST_MIB: u64 = 65536;

/// The directory holding the assembly test guest `hello.elf`, built once per process.
pub fn guest_dir() -> Result<&'static Path, SetupError> {
    static DIR: OnceLock<Result<PathBuf, SetupError>> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("rxl-toolstack-bench-guest-{}", std::process::id()));
        pvh::testguest::build(&dir)
            .map_err(|e| format!("build the test guest (needs GNU as and ld): {e}"))?;
        Ok(dir)
    })
    .as_ref()
    .map(PathBuf::as_path)
    .map_err(Clone::clone)
}

/// The config of a test guest called `name` with `memory_mib` of RAM and 2 vCPUs.
pub fn config(name: &str, memory_mib: u64) -> Result<DomainConfig, SetupError> {
    config_of("pvh", "hello.elf", name, memory_mib)
}

/// The config of a PV guest of the synthetic PV kernel (Linux's notes, `pv::testkernel`)
/// called `name` with `memory_mib` of RAM and 2 vCPUs.
pub fn pv_config(name: &str, memory_mib: u64) -> Result<DomainConfig, SetupError> {
    let kernel = guest_dir()?.join("pv-kernel");
    if !kernel.is_file() {
        std::fs::write(&kernel, pv::testkernel::PvKernel::linux().bytes())
            .map_err(|e| format!("write {}: {e}", kernel.display()))?;
    }
    config_of("pv", "pv-kernel", name, memory_mib)
}

fn config_of(
    ty: &str,
    kernel: &str,
    name: &str,
    memory_mib: u64,
) -> Result<DomainConfig, SetupError> {
    let dir = guest_dir()?;
    let text = format!(
        "name = \"{name}\"\ntype = \"{ty}\"\nmemory = {memory_mib}\nvcpus = 2\n\
         kernel = \"{kernel}\"\ncmdline = \"bench\"\n"
    );
    let parsed = xlcfg::parse::parse_str("bench.cfg", &text);
    if parsed.has_errors() {
        let messages: Vec<&str> = parsed
            .diagnostics
            .iter()
            .map(|d| d.message.as_str())
            .collect();
        return Err(format!("bench.cfg: {}", messages.join("; ")));
    }
    xlcfg::model::build(&parsed.settings, dir)
        .map(|b| b.config)
        .map_err(|diags| {
            let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
            format!("bench.cfg: {}", messages.join("; "))
        })
}

/// A simulated host in a temporary directory, with rxl's state directory inside it.
#[derive(Debug)]
pub struct Bed {
    /// Removed when the bed is dropped.
    pub dir: tempfile::TempDir,
    /// The host.
    pub host: SimHost,
    /// Options of every create.
    pub opts: CreateOptions,
}

impl Bed {
    /// A fresh host of `total_mib` MiB holding only Domain-0.
    pub fn new(total_mib: u64) -> Result<Bed, SetupError> {
        let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
        let host = SimHost::create(
            dir.path(),
            HostConfig {
                total_mib,
                ..HostConfig::default()
            },
        )
        .map_err(|e| format!("simulated host in {}: {e}", dir.path().display()))?;
        let opts = CreateOptions {
            paused: false,
            state_dir: dir.path().join("rxl"),
            backend_domid: DomId::DOM0,
            devices: toolstack::devices::DeviceOptions::scripts(dir.path().join("rxl/log")),
            bootloader: toolstack::bootloader::BootloaderOptions::new(
                &dir.path().join("rxl"),
                None,
            ),
        };
        Ok(Bed { dir, host, opts })
    }

    /// A [`HOST_MIB`] host holding `n` domains created by rxl, `filler-0` .. `filler-<n-1>`,
    /// besides Domain-0.
    pub fn with_domains(n: usize) -> Result<Bed, SetupError> {
        let bed = Bed::new(HOST_MIB)?;
        for i in 0..n {
            bed.create(&config(&format!("filler-{i}"), FILLER_MIB)?)?;
        }
        Ok(bed)
    }

    /// Plan and create `cfg`.
    pub fn create(&self, cfg: &DomainConfig) -> Result<Created, SetupError> {
        toolstack::launch(
            &self.host,
            &self.host,
            cfg,
            &self.opts,
            &FirmwareSearch::default(),
        )
        .map_err(|e| format!("create {}: {e}", cfg.name))
    }

    /// Destroy `dom` and everything kept about it.
    pub fn destroy(&self, dom: DomId) -> Result<(), SetupError> {
        toolstack::lifecycle::destroy(
            &self.host,
            &self.host,
            &self.opts.devices,
            &StateDir::new(self.opts.state_dir.clone()),
            dom,
        )
        .map(|_| ())
        .map_err(|e| format!("destroy domain {dom}: {e}"))
    }
}

/// A created domain, destroyed when dropped (after divan has measured the sample).
#[derive(Debug)]
pub struct Guest<'a> {
    /// Where it runs.
    pub bed: &'a Bed,
    /// What the create reported.
    pub created: Created,
}

impl Drop for Guest<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.bed.destroy(self.created.domid) {
            // A failed destroy leaves the host filling up: later samples would measure
            // something else, so stop the benchmark.
            panic!("{e}");
        }
    }
}
