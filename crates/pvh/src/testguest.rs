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
