//! Configs a careless or hostile user gives `rxl config check` and `rxl create`: names that
//! escape a directory or are too long for rxl's files, inputs that never end, and errors that
//! must point at the right line.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{guest_dir, rxl, rxl_command, stderr};

fn write(dir: &Path, file: &str, body: &str) -> PathBuf {
    let p = dir.join(file);
    std::fs::write(&p, body).expect("write");
    p
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

const CLIMBING: &str = "type = \"pvh\"\nmemory = 32\nname = \"../../../../x\"\n";

#[test]
fn config_check_refuses_a_name_with_a_slash_at_its_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let kernel = guest_dir().join("hello.elf");
    let cfg = write(
        dir.path(),
        "climb.cfg",
        &format!("{CLIMBING}kernel = \"{}\"\n", kernel.display()),
    );
    let o = rxl(&["config", "check", s(&cfg)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = stderr(&o);
    assert!(
        text.contains(&format!("{}:3:8: error:", cfg.display())),
        "{text}"
    );
    assert!(text.contains("hint:"), "{text}");
}

#[test]
fn create_refuses_a_name_with_a_slash_before_anything_exists() {
    let dir = tempfile::tempdir().expect("tmp");
    let sim = dir.path().join("sim");
    let kernel = guest_dir().join("hello.elf");
    let cfg = write(
        dir.path(),
        "climb.cfg",
        &format!("{CLIMBING}kernel = \"{}\"\n", kernel.display()),
    );
    let o = rxl(&["--sim", s(&sim), "create", "-e", s(&cfg)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("{}:3:8: error:", cfg.display())),
        "{}",
        stderr(&o)
    );
    // Nothing was written: no domain, no log, no record.
    let leftovers: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log" || e == "json"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}

#[test]
fn config_check_and_create_agree_on_long_names() {
    let dir = tempfile::tempdir().expect("tmp");
    let kernel = guest_dir().join("hello.elf");
    for len in [125, 200, 256] {
        let cfg = write(
            dir.path(),
            "long.cfg",
            &format!(
                "type = \"pvh\"\nmemory = 32\nkernel = \"{}\"\nname = \"{}\"\n",
                kernel.display(),
                "n".repeat(len)
            ),
        );
        let check = rxl(&["config", "check", s(&cfg)]);
        assert_eq!(check.status.code(), Some(1), "{len}: {}", stderr(&check));
        assert!(
            stderr(&check).contains(&format!("{}:4:8: error:", cfg.display())),
            "{}",
            stderr(&check)
        );
        let sim = dir.path().join(format!("sim{len}"));
        let create = rxl(&["--sim", s(&sim), "create", "-e", s(&cfg)]);
        assert_eq!(create.status.code(), Some(1), "{}", stderr(&create));
        assert_eq!(stderr(&create), stderr(&check), "the same diagnostic");
    }
}

#[test]
fn the_longest_name_config_check_accepts_is_created() {
    let dir = tempfile::tempdir().expect("tmp");
    let sim = dir.path().join("sim");
    let kernel = guest_dir().join("hello.elf");
    let name = "n".repeat(xlcfg::model::MAX_NAME_LEN);
    let cfg = write(
        dir.path(),
        "longest.cfg",
        &format!(
            "type = \"pvh\"\nmemory = 32\nkernel = \"{}\"\nname = \"{name}\"\n",
            kernel.display()
        ),
    );
    let check = rxl(&["config", "check", s(&cfg)]);
    assert!(check.status.success(), "{}", stderr(&check));
    let create = rxl(&["--sim", s(&sim), "create", "-e", s(&cfg)]);
    assert!(create.status.success(), "{}", stderr(&create));
    let destroy = rxl(&["--sim", s(&sim), "destroy", &name]);
    assert!(destroy.status.success(), "{}", stderr(&destroy));
}

#[test]
fn a_device_as_config_is_refused_at_once() {
    let o = rxl(&["config", "check", "/dev/zero"]);
    assert_eq!(o.status.code(), Some(1));
    let text = stderr(&o);
    assert!(text.contains("/dev/zero"), "{text}");
    assert!(text.contains("not a regular file"), "{text}");
}

#[test]
fn endless_stdin_is_cut_at_the_limit() {
    let mut child = rxl_command(&["config", "check", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rxl");
    let mut input = child.stdin.take().expect("stdin");
    // Write until rxl stops reading (it closes its end once past the limit).
    let chunk = vec![b'#'; 64 * 1024];
    let mut written = 0usize;
    while input.write_all(&chunk).is_ok() {
        written += chunk.len();
        assert!(written <= 64 * 1024 * 1024, "rxl read 64 MiB of stdin");
    }
    drop(input);
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(1));
    let text = stderr(&o);
    assert!(text.contains("<stdin>") && text.contains("1 MiB"), "{text}");
}

#[test]
fn an_empty_config_names_its_file_not_line_0() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = write(dir.path(), "empty.cfg", "");
    let o = rxl(&["config", "check", s(&cfg)]);
    assert_eq!(o.status.code(), Some(1));
    let text = stderr(&o);
    assert!(
        text.contains(&format!("{}:1:1: error: `name` is required", cfg.display())),
        "{text}"
    );
    assert!(!text.contains(":0:0"), "{text}");
}

#[test]
fn a_bad_kernel_whose_path_contains_a_module_path_points_at_the_kernel() {
    let dir = tempfile::tempdir().expect("tmp");
    write(dir.path(), "boot", "a module\n");
    write(dir.path(), "boot.bad", "#!/bin/sh\nnot a kernel\n");
    let cfg = write(
        dir.path(),
        "g.cfg",
        "name = \"g\"\ntype = \"pvh\"\nmemory = 32\nramdisk = \"boot\"\nkernel = \"boot.bad\"\n",
    );
    let o = rxl(&["create", "-n", s(&cfg)]);
    assert_eq!(o.status.code(), Some(1));
    let text = stderr(&o);
    assert!(
        text.contains(&format!(
            "{}:5:10: error: cannot load the kernel",
            cfg.display()
        )),
        "{text}"
    );
    assert!(!text.contains(":4:"), "{text}");
}

#[test]
fn a_bad_module_is_named_by_its_index_and_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let kernel = guest_dir().join("hello.elf");
    write(dir.path(), "m", "module 0\n");
    std::fs::create_dir(dir.path().join("m2")).expect("mkdir");
    let cfg = write(
        dir.path(),
        "g.cfg",
        &format!(
            "name = \"g\"\ntype = \"pvh\"\nmemory = 32\nkernel = \"{}\"\n\
             modules = [ \"m\",\n  \"m2\" ]\n",
            kernel.display()
        ),
    );
    let o = rxl(&["create", "-n", s(&cfg)]);
    assert_eq!(o.status.code(), Some(1));
    let text = stderr(&o);
    assert!(
        text.contains(&format!(
            "{}:6:3: error: cannot load module 1",
            cfg.display()
        )),
        "{text}"
    );
}
