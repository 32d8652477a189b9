//! The cache of decoded kernels through the command line, on the simulated host: creates
//! fill it and hit it, `rxl kernel-cache list|clear`, rxl.conf turning it off, and an unsafe
//! directory degrading to no cache with a warning.

mod common;

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::{guest_dir, json, ok, stderr, stdout, Sim};

/// A config booting a gzipped copy of the test guest (a compressed kernel goes through the
/// cache; a plain ELF does not need decoding).
fn gz_cfg(sim: &Sim, name: &str) -> PathBuf {
    let gz = sim.dir.path().join("hello.elf.gz");
    if !gz.exists() {
        let elf = std::fs::read(guest_dir().join("hello.elf")).expect("read hello.elf");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&elf).expect("gzip");
        std::fs::write(&gz, enc.finish().expect("gzip")).expect("write gz");
    }
    let cfg = sim.dir.path().join(format!("{name}.cfg"));
    std::fs::write(
        &cfg,
        format!(
            "name = \"{name}\"\ntype = \"pvh\"\nmemory = 32\nvcpus = 1\nkernel = \"{}\"\n",
            gz.display()
        ),
    )
    .expect("write cfg");
    cfg
}

fn cache_dir(sim: &Sim) -> PathBuf {
    sim.dir.path().join("var/cache/rxl/kernels")
}

fn entries(sim: &Sim) -> Vec<serde_json::Value> {
    let v = json(&ok(sim.run(&["kernel-cache", "list", "--json"])));
    v["entries"].as_array().expect("entries").clone()
}

fn set_last_use(path: &Path, t: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open entry")
        .set_modified(t)
        .expect("set mtime");
}

#[test]
fn a_second_create_of_the_same_kernel_hits_the_cache() {
    let sim = Sim::new();
    let v = json(&ok(sim.run(&["kernel-cache", "list", "--json"])));
    assert_eq!(v["dir"], cache_dir(&sim).display().to_string());
    assert_eq!(v["max_bytes"], 512u64 << 20);
    assert!(entries(&sim).is_empty());

    let o = ok(sim.run(&[
        "create",
        "-e",
        "--times",
        gz_cfg(&sim, "one").to_str().unwrap(),
    ]));
    assert!(stderr(&o).contains("(boot plan)"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    let e = entries(&sim);
    assert_eq!(e.len(), 1, "{e:?}");
    let hash = e[0]["hash"].as_str().unwrap().to_string();
    assert_eq!(hash.len(), 64);
    let entry = cache_dir(&sim).join(&hash);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cache_dir(&sim)), 0o700);
    assert_eq!(mode(&entry), 0o600);

    // Only a hit refreshes an entry's last use: age it, create again, see it move.
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(946_684_800);
    set_last_use(&entry, old);
    ok(sim.run(&["create", "-e", gz_cfg(&sim, "two").to_str().unwrap()]));
    let e = entries(&sim);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0]["hash"], hash.as_str());
    assert!(
        e[0]["last_use"].as_u64().unwrap() > 946_684_800 + 86_400,
        "{e:?}"
    );

    let text = stdout(&ok(sim.run(&["kernel-cache", "list"])));
    assert!(text.contains("1 entries"), "{text}");
    assert!(text.contains(&hash), "{text}");
    let text = stdout(&ok(sim.run(&["kernel-cache", "clear"])));
    assert!(text.starts_with("removed 1 entries"), "{text}");
    assert!(entries(&sim).is_empty());
    assert!(!entry.exists());
}

#[test]
fn rxl_conf_turns_the_cache_off() {
    let sim = Sim::new();
    std::fs::create_dir_all(sim.dir.path().join("etc")).unwrap();
    std::fs::write(
        sim.dir.path().join("etc/rxl.conf"),
        "kernel_cache = \"off\"\n",
    )
    .unwrap();
    ok(sim.run(&["create", "-e", gz_cfg(&sim, "off").to_str().unwrap()]));
    assert!(!cache_dir(&sim).exists());
    let v = json(&ok(sim.run(&["kernel-cache", "list", "--json"])));
    assert_eq!(v["dir"], serde_json::Value::Null);
    let text = stdout(&ok(sim.run(&["kernel-cache", "list"])));
    assert!(text.contains("the kernel cache is off"), "{text}");
}

#[test]
fn an_unsafe_cache_directory_is_refused_and_the_create_goes_on_without_it() {
    let sim = Sim::new();
    std::fs::create_dir_all(cache_dir(&sim)).unwrap();
    std::fs::set_permissions(cache_dir(&sim), std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = ok(sim.run(&["create", "-e", gz_cfg(&sim, "unsafe").to_str().unwrap()]));
    let err = stderr(&o);
    assert_eq!(err.matches("warning").count(), 1, "{err}");
    assert!(err.contains("group or other writable"), "{err}");
    assert_eq!(std::fs::read_dir(cache_dir(&sim)).unwrap().count(), 0);
    let o = sim.run(&["kernel-cache", "list"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("refused"), "{}", stderr(&o));

    // A symlink in its place is refused too.
    std::fs::remove_dir(cache_dir(&sim)).unwrap();
    let real = sim.dir.path().join("elsewhere");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, cache_dir(&sim)).unwrap();
    let o = ok(sim.run(&["create", "-e", gz_cfg(&sim, "link").to_str().unwrap()]));
    assert!(stderr(&o).contains("symlink"), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(&real).unwrap().count(), 0);
}

#[test]
fn two_creates_at_once_fill_one_entry() {
    let sim = Sim::new();
    let a = gz_cfg(&sim, "a");
    let b = gz_cfg(&sim, "b");
    let spawn = |cfg: &Path| {
        sim.command(&["create", "-e", cfg.to_str().unwrap()], None)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let (pa, pb) = (spawn(&a), spawn(&b));
    for p in [pa, pb] {
        let o = p.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let names: Vec<String> = std::fs::read_dir(cache_dir(&sim))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 1, "one entry, no temp or lock file: {names:?}");
    assert_eq!(entries(&sim).len(), 1);
}
