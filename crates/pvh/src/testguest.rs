//! Building the assembly PVH test guest (`tests/guests/hello`) with GNU as and ld.
//!
//! The guest and its output format are described in `tests/guests/hello/README.md`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory holding `hello.S`, `hello.ld` and `build.sh`.
pub fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/guests/hello")
}

/// The fixed prefix of every line the guest prints on port 0xe9.
pub const PREFIX: &str = "RXLTEST ";

/// Builds `hello.elf` into `out_dir` (runs `tests/guests/hello/build.sh OUT_DIR`) and returns
/// its path. Fails with the tool's output if `as` or `ld` is missing or fails.
pub fn build(out_dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(out_dir)?;
    let script = source_dir().join("build.sh");
    let out = Command::new("sh").arg(&script).arg(out_dir).output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "{} {} failed ({}): {}{}",
            script.display(),
            out_dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(out_dir.join("hello.elf"))
}

/// FNV-1a (32-bit) of `bytes`: the checksum the guest prints for each module.
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// How the guest prints a string from guest memory: up to 4096 bytes, bytes outside
/// 0x20..=0x7e as `?`.
fn printable(s: &str) -> String {
    s.bytes()
        .take(4096)
        .map(|b| {
            if (0x20..=0x7e).contains(&b) {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

/// The lines (without the trailing newline) the guest prints when booted with `plan`.
/// Reads the modules' bytes to compute their checksums.
pub fn expected_output(plan: &crate::BootPlan) -> Result<Vec<String>, crate::Error> {
    let p = PREFIX;
    let cmdline = |c: &Option<String>| {
        c.as_deref()
            .map(printable)
            .unwrap_or_else(|| "(none)".into())
    };
    let mut out = vec![
        format!("{p}magic=0x336ec578 version=1"),
        format!("{p}flags=0x00000000"),
    ];
    let kernel_cmdline = plan.cmdline_paddr.and_then(|at| {
        let w = plan
            .writes
            .iter()
            .find(|w| w.range().start <= at && at < w.range().end)?;
        let bytes = w.data.as_slice()?;
        let from = usize::try_from(at - w.paddr).ok()?;
        let rest = bytes.get(from..)?;
        let end = rest.iter().position(|b| *b == 0)?;
        Some(String::from_utf8_lossy(rest.get(..end)?).into_owned())
    });
    out.push(format!("{p}cmdline={}", cmdline(&kernel_cmdline)));
    out.push(format!("{p}modules={}", plan.modules.len()));
    for (i, m) in plan.modules.iter().enumerate() {
        let data = plan
            .writes
            .iter()
            .find(|w| w.paddr == m.paddr && w.data.len() == m.size)
            .map(|w| w.data.to_vec())
            .transpose()?
            .unwrap_or_default();
        out.push(format!(
            "{p}module {i} paddr=0x{:016x} size=0x{:016x} sum=0x{:08x} cmdline={}",
            m.paddr,
            m.size,
            fnv1a32(&data),
            cmdline(&m.cmdline)
        ));
    }
    out.push(format!("{p}memmap_entries={}", plan.memmap.len()));
    for (i, e) in plan.memmap.iter().enumerate() {
        out.push(format!(
            "{p}memmap {i} addr=0x{:016x} size=0x{:016x} type={}",
            e.addr, e.size, e.kind
        ));
    }
    match plan.rsdp_paddr {
        Some(r) => {
            out.push(format!("{p}rsdp=0x{r:016x} sig=RSD PTR "));
            out.push(format!(
                "{p}madt lapics={} enabled={}",
                plan.size.maxvcpus, plan.size.vcpus
            ));
        }
        None => out.push(format!("{p}rsdp=none")),
    }
    out.push(format!("{p}done"));
    Ok(out)
}
