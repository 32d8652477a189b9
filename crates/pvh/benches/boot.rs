//! Probe + decompress + plan for Debian's kernel, against `xz -dc` on the same payload.
//!
//! Needs the cached Debian kernel: run `cargo test -p pvh --test debian` once first (it
//! downloads and unpacks it under `.cache/pvh` or `$RXL_CACHE/pvh`).
//!
//!     cargo bench -p pvh --bench boot

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use pvh::{BootRequest, Container, ImageSource, ProbeOptions};

fn main() {
    divan::main();
}

fn vmlinuz() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let base = std::env::var_os("RXL_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache"))
            .join("pvh");
        let found = std::fs::read_dir(&base).ok().and_then(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("linux-image-") && n.ends_with(".d"))
                })
                .find_map(|d| {
                    std::fs::read_dir(d.join("boot")).ok()?.find_map(|e| {
                        let p = e.ok()?.path();
                        p.file_name()?
                            .to_str()?
                            .starts_with("vmlinuz-")
                            .then_some(p)
                    })
                })
        });
        found.unwrap_or_else(|| {
            panic!(
                "no cached Debian kernel under {}: run `cargo test -p pvh --test debian` first",
                base.display()
            )
        })
    })
}

/// The xz payload of the kernel, written to a file for `xz -dc`.
fn payload() -> &'static (Vec<u8>, PathBuf) {
    static P: OnceLock<(Vec<u8>, PathBuf)> = OnceLock::new();
    P.get_or_init(|| {
        let img = pvh::probe_file(vmlinuz(), &ProbeOptions::default()).unwrap();
        let Container::BzImage {
            payload_offset,
            payload_length,
            ..
        } = img.container
        else {
            panic!("not a bzImage")
        };
        let file = std::fs::read(vmlinuz()).unwrap();
        let bytes =
            file[payload_offset as usize..(payload_offset + payload_length) as usize].to_vec();
        let path = std::env::temp_dir().join("pvh-bench-payload.xz");
        std::fs::write(&path, &bytes).unwrap();
        (bytes, path)
    })
}

/// What `rxl create` does before touching Xen: probe, decompress, plan.
#[divan::bench(sample_count = 10)]
fn probe_decompress_plan() -> pvh::BootPlan {
    let req = BootRequest {
        image: ImageSource::Kernel(vmlinuz().to_path_buf()),
        cmdline: Some("console=hvc0".into()),
        modules: Vec::new(),
        memory_mib: 1024,
        maxmem_mib: 1024,
        vcpus: 2,
        maxvcpus: 2,
    };
    pvh::plan(&req).unwrap()
}

/// The reference: `xz -dc --single-stream` of the same payload to /dev/null.
#[divan::bench(sample_count = 10)]
fn xz_dc_reference() {
    let (_, path) = payload();
    let st = Command::new("xz")
        .args(["-dc", "--single-stream"])
        .arg(path)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
}

/// liblzma alone on the payload (no file I/O, no ELF parsing, no planning).
#[divan::bench(sample_count = 10)]
fn liblzma_decode_only() -> usize {
    let (bytes, _) = payload();
    pvh::decompress::decompress(
        pvh::Compression::Xz,
        &bytes[..],
        bytes.len() as u64,
        Some(70 << 20),
        pvh::DEFAULT_MAX_DECOMPRESSED,
        "payload",
    )
    .unwrap()
    .len()
}

/// The decompressed kernel, recompressed with gzip -6 and zstd -19 (the other common kernel
/// formats), for the decoder comparisons below.
fn recompressed() -> &'static (PathBuf, PathBuf) {
    static P: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    P.get_or_init(|| {
        let img = pvh::probe_file(vmlinuz(), &ProbeOptions::default()).unwrap();
        let dir = std::env::temp_dir().join("pvh-bench");
        std::fs::create_dir_all(&dir).unwrap();
        let raw = dir.join("vmlinux");
        std::fs::write(&raw, img.elf.as_slice()).unwrap();
        for (tool, args) in [
            ("gzip", &["-6", "-k", "-f"][..]),
            ("zstd", &["-19", "-q", "-f"][..]),
        ] {
            let st = Command::new(tool).args(args).arg(&raw).status().unwrap();
            assert!(st.success(), "{tool}");
        }
        (dir.join("vmlinux.gz"), dir.join("vmlinux.zst"))
    })
}

fn ours(path: &Path, format: pvh::Compression) -> usize {
    let f = std::fs::File::open(path).unwrap();
    let len = f.metadata().unwrap().len();
    let r = std::io::BufReader::with_capacity(1 << 16, f);
    pvh::decompress::decompress(format, r, len, Some(70 << 20), 1 << 30, "b")
        .unwrap()
        .len()
}

fn cli(tool: &str, path: &Path) {
    let st = Command::new(tool)
        .arg("-dc")
        .arg(path)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
}

/// gzip through flate2 + zlib-rs.
#[divan::bench(sample_count = 5)]
fn gzip_flate2_zlib_rs() -> usize {
    ours(&recompressed().0, pvh::Compression::Gzip)
}

/// `gzip -dc` on the same file.
#[divan::bench(sample_count = 5)]
fn gzip_dc_reference() {
    cli("gzip", &recompressed().0)
}

/// zstd through libzstd.
#[divan::bench(sample_count = 5)]
fn zstd_libzstd() -> usize {
    ours(&recompressed().1, pvh::Compression::Zstd)
}

/// `zstd -dc` on the same file.
#[divan::bench(sample_count = 5)]
fn zstd_dc_reference() {
    cli("zstd", &recompressed().1)
}

/// A kernel cache in a temporary directory, shared by the cache benchmarks.
fn kernel_cache() -> &'static std::sync::Arc<pvh::KernelCache> {
    static C: OnceLock<std::sync::Arc<pvh::KernelCache>> = OnceLock::new();
    C.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("pvh-bench-kcache-{}", std::process::id()));
        std::sync::Arc::new(pvh::KernelCache::open(&dir, 1 << 30).unwrap())
    })
}

fn probe_with(cache: Option<&std::sync::Arc<pvh::KernelCache>>) -> pvh::KernelImage {
    let opts = ProbeOptions {
        cache: cache.cloned(),
        ..Default::default()
    };
    pvh::probe_file(vmlinuz(), &opts).unwrap()
}

/// Probe (and decode) the kernel without a cache: what a create did before the cache.
#[divan::bench(sample_count = 10)]
fn probe_no_cache() -> pvh::KernelImage {
    probe_with(None)
}

/// Probe with an empty cache: hash the payload, miss, decode; the entry is written on a
/// thread of its own, which the caller does not wait for (a create goes on meanwhile). The
/// sample ends when the probe returns; the store is waited for outside the timing.
#[divan::bench(sample_count = 10)]
fn probe_cold_cache(b: divan::Bencher<'_, '_>) {
    b.with_inputs(|| {
        pvh::cache::wait_for_stores();
        kernel_cache().clear().unwrap();
    })
    .bench_values(|()| {
        let k = probe_with(Some(kernel_cache()));
        assert_eq!(k.cache, pvh::CacheUse::Miss);
        k
    });
    pvh::cache::wait_for_stores();
}

/// As `probe_cold_cache`, waiting for the entry's write too: the whole work of a miss.
#[divan::bench(sample_count = 10)]
fn probe_cold_cache_and_store(b: divan::Bencher<'_, '_>) {
    b.with_inputs(|| {
        kernel_cache().clear().unwrap();
    })
    .bench_values(|()| {
        let k = probe_with(Some(kernel_cache()));
        assert_eq!(k.cache, pvh::CacheUse::Miss);
        pvh::cache::wait_for_stores();
        k
    });
}

/// Probe with the entry present: hash the payload, read the entry, check its digest.
#[divan::bench(sample_count = 10)]
fn probe_warm_cache(b: divan::Bencher<'_, '_>) {
    probe_with(Some(kernel_cache()));
    pvh::cache::wait_for_stores();
    b.bench(|| {
        let k = probe_with(Some(kernel_cache()));
        assert_eq!(k.cache, pvh::CacheUse::Hit);
        k
    });
}

/// The cache key alone: SHA-256 of the compressed payload (8 MB).
#[divan::bench(sample_count = 10)]
fn sha256_payload() -> pvh::cache::Key {
    pvh::cache::Key::of(&payload().0)
}
