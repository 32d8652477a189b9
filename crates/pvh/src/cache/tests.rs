use super::*;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

fn cache(max: u64) -> (tempfile::TempDir, KernelCache) {
    let t = tempfile::tempdir().unwrap();
    let c = KernelCache::open(&t.path().join("kernels"), max).unwrap();
    (t, c)
}

fn age(c: &KernelCache, key: &Key, secs_ago: u64) {
    let f = File::options()
        .write(true)
        .open(c.dir().join(key.hex()))
        .unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(secs_ago))
        .unwrap();
}

#[test]
fn miss_then_hit_and_modes() {
    let (_t, c) = cache(DEFAULT_MAX_BYTES);
    let key = Key::of(b"compressed");
    assert_eq!(c.lookup(&key), None);
    assert_eq!(c.store(&key, b"decoded bytes").unwrap(), Stored::Written);
    assert_eq!(c.lookup(&key).as_deref(), Some(&b"decoded bytes"[..]));
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(c.dir()), 0o700);
    assert_eq!(mode(&c.dir().join(key.hex())), 0o600);
    let names = c.names().unwrap();
    assert_eq!(names, vec![key.hex()], "no temp or lock file left");
    assert_eq!(c.list().unwrap().len(), 1);
    assert_eq!(c.clear().unwrap(), 1);
    assert_eq!(c.lookup(&key), None);
}

#[test]
fn a_hit_refreshes_the_last_use() {
    let (_t, c) = cache(DEFAULT_MAX_BYTES);
    let key = Key::of(b"k");
    c.store(&key, b"v").unwrap();
    age(&c, &key, 3600);
    let before = c.list().unwrap()[0].last_use;
    c.lookup(&key).unwrap();
    assert!(c.list().unwrap()[0].last_use >= before + 3000);
}

#[test]
fn corruption_is_detected_and_the_entry_removed() {
    let (_t, c) = cache(DEFAULT_MAX_BYTES);
    let body = vec![7u8; 4096];
    for damage in [
        "flip",
        "truncate",
        "extend",
        "header",
        "checksum",
        "old-format",
    ] {
        let key = Key::of(damage.as_bytes());
        c.store(&key, &body).unwrap();
        let p = c.dir().join(key.hex());
        let mut bytes = fs::read(&p).unwrap();
        match damage {
            "flip" => bytes[HEADER_LEN + 100] ^= 1,
            "truncate" => bytes.truncate(bytes.len() - 1),
            "extend" => bytes.push(0),
            "checksum" => bytes[8] ^= 0x80,
            // An entry of format 001 (SHA-256 in a 32-byte digest field) with its bytes intact.
            "old-format" => {
                let mut old = b"RXLKC001".to_vec();
                old.extend_from_slice(&sha2::Sha256::digest(&body));
                old.extend_from_slice(&(body.len() as u64).to_le_bytes());
                old.extend_from_slice(&body);
                bytes = old;
            }
            _ => bytes[0] = b'X',
        }
        fs::write(&p, &bytes).unwrap();
        assert_eq!(c.lookup(&key), None, "{damage}");
        assert!(!p.exists(), "{damage}: the corrupt entry is removed");
        c.store(&key, &body).unwrap();
        assert_eq!(c.lookup(&key), Some(body.clone()), "{damage}: stored again");
    }
}

#[test]
fn eviction_removes_the_least_recently_used() {
    let entry = 1000u64;
    let (_t, c) = cache(3 * (entry + HEADER_LEN as u64));
    let keys: Vec<Key> = (0..3u8).map(|i| Key::of(&[i])).collect();
    for (i, k) in keys.iter().enumerate() {
        c.store(k, &vec![0; entry as usize]).unwrap();
        age(&c, k, 1000 - i as u64 * 100);
    }
    // keys[0] is the oldest, but a hit makes it the newest: keys[1] goes first.
    c.lookup(&keys[0]).unwrap();
    let fourth = Key::of(b"4");
    c.store(&fourth, &vec![0; entry as usize]).unwrap();
    let left: Vec<String> = c.list().unwrap().into_iter().map(|e| e.hash).collect();
    assert!(!left.contains(&keys[1].hex()), "{left:?}");
    assert_eq!(left.len(), 3);
    assert!(left.contains(&keys[0].hex()) && left.contains(&fourth.hex()));
}

#[test]
fn an_entry_larger_than_the_bound_is_not_stored() {
    let (_t, c) = cache(100);
    let key = Key::of(b"big");
    assert_eq!(c.store(&key, &[0; 200]).unwrap(), Stored::TooLarge);
    assert!(c.list().unwrap().is_empty());
}

#[test]
fn two_writers_of_one_key() {
    let (_t, c) = cache(DEFAULT_MAX_BYTES);
    let key = Key::of(b"same");
    let body = vec![0x5a; 8 << 20];
    let results: Vec<Stored> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| c.store(&key, &body).unwrap()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(results.contains(&Stored::Written), "{results:?}");
    assert!(results
        .iter()
        .all(|r| matches!(r, Stored::Written | Stored::Busy)));
    assert_eq!(c.lookup(&key), Some(body));
    assert_eq!(c.names().unwrap(), vec![key.hex()]);
}

#[test]
fn a_held_lock_makes_a_writer_skip_and_dead_writers_are_cleaned() {
    let (_t, c) = cache(DEFAULT_MAX_BYTES);
    let key = Key::of(b"x");
    // A live writer (this process) holds the lock.
    let lock = c.dir().join(format!("{}.lock", key.hex()));
    fs::write(&lock, std::process::id().to_string()).unwrap();
    assert_eq!(c.store(&key, b"v").unwrap(), Stored::Busy);
    fs::remove_file(&lock).unwrap();
    // A dead writer (no such pid) left a lock and a torn temp file.
    let dead = u32::MAX - 1;
    fs::write(&lock, dead.to_string()).unwrap();
    let tmp = c.dir().join(format!("{}.tmp.{dead}", key.hex()));
    fs::write(&tmp, b"torn").unwrap();
    // A lock just created, its pid not written yet, belongs to a live writer.
    let fresh = c.dir().join(format!("{}.lock", Key::of(b"fresh").hex()));
    fs::write(&fresh, b"").unwrap();
    let c = KernelCache::open(c.dir(), DEFAULT_MAX_BYTES).unwrap();
    assert!(!lock.exists() && !tmp.exists());
    assert!(fresh.exists());
    // Left empty for long, it is a dead writer's.
    File::options()
        .write(true)
        .open(&fresh)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let c = KernelCache::open(c.dir(), DEFAULT_MAX_BYTES).unwrap();
    assert!(!fresh.exists());
    assert_eq!(c.store(&key, b"v").unwrap(), Stored::Written);
}

#[test]
fn unsafe_directories_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("open");
    fs::create_dir(&d).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
    let e = KernelCache::open(&d, DEFAULT_MAX_BYTES).unwrap_err();
    assert!(e.to_string().contains("group or other writable"), "{e}");
    fs::set_permissions(&d, fs::Permissions::from_mode(0o720)).unwrap();
    assert!(KernelCache::open(&d, DEFAULT_MAX_BYTES).is_err());

    let real = t.path().join("real");
    fs::create_dir(&real).unwrap();
    let link = t.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let e = KernelCache::open(&link, DEFAULT_MAX_BYTES).unwrap_err();
    assert!(e.to_string().contains("symlink"), "{e}");

    // Owned by someone else: as root, a directory given to nobody (65534); otherwise /,
    // which is root's.
    if euid() == 0 {
        let theirs = t.path().join("theirs");
        fs::DirBuilder::new().mode(0o700).create(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let e = KernelCache::open(&theirs, DEFAULT_MAX_BYTES).unwrap_err();
        assert!(
            e.to_string().contains("owned by uid 65534, not by uid 0"),
            "{e}"
        );
    } else {
        let e = KernelCache::open(Path::new("/"), DEFAULT_MAX_BYTES).unwrap_err();
        assert!(e.to_string().contains("owned by uid 0"), "{e}");
    }
}
