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
        let path =
            std::env::temp_dir().join(format!("pvh-bench-payload-{}.xz", std::process::id()));
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
