//! For the steps' unit tests: a directory standing in for dom0, with fake `xl` and `rxl`
//! commands and the rig's lib.sh (some of its helpers replaced), in which a step's script
//! runs under the host's `sh`.

use std::path::Path;

/// A temporary directory holding `lib.sh` (the rig's, followed by `overrides`, shell
/// functions that replace the helpers looking at dom0, with `@DIR@` standing for the
/// directory) and an executable `xl` and `rxl`
/// each running `#!/bin/sh`, `d=DIR`, `tool=NAME`, then `body`.
pub(crate) fn fake_dom0(body: &str, overrides: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for tool in ["xl", "rxl"] {
        let p = d.join(tool);
        std::fs::write(
            &p,
            format!("#!/bin/sh\nd={}\ntool={tool}\n{body}", d.display()),
        )
        .unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&p)
            .status()
            .unwrap();
    }
    let lib = format!(
        "{}\n{}",
        include_str!("../../scripts/lib.sh"),
        overrides.replace("@DIR@", &d.display().to_string())
    );
    std::fs::write(d.join("lib.sh"), lib).unwrap();
    dir
}

/// Runs `script` (which sources /e2e/lib.sh, taken from `dir` instead) with `dir` first on
/// `PATH`, the settle wait off and `envs` set; it must succeed. Returns its stdout's lines.
pub(crate) fn run_script(dir: &Path, script: &str, envs: &[(&str, &str)]) -> Vec<String> {
    let script = script.replace(". /e2e/lib.sh", &format!(". {}/lib.sh", dir.display()));
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("PATH", format!("{}:/usr/bin:/bin", dir.display()))
        .env("RXL_SETTLE_S", "0")
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}
