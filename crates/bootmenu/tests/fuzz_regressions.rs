//! Inputs the fuzz targets (crates/bootmenu/fuzz) found problems with, and
//! hostile images made by hand (debugfs) for the same kind of bound:
//! each must give an error (or an answer), never a panic or an abort.

use bootmenu::{Hints, Limits};

fn choose_file(name: &str) -> Result<bootmenu::Choice, bootmenu::Error> {
    let path = format!("{}/tests/data/fuzz/{name}", env!("CARGO_MANIFEST_DIR"));
    let data = std::fs::read(&path).unwrap();
    bootmenu::choose(
        std::io::Cursor::new(data),
        &Hints::default(),
        &Limits::default(),
    )
}

/// A superblock whose block count's high word is set without the 64bit
/// feature: ext4-view still counts it and would reserve tens of GiB of
/// group descriptors before reading one.
#[test]
fn block_count_high_word_without_64bit_is_bounded() {
    let e = choose_file("choose-huge-block-count-hi")
        .unwrap_err()
        .to_string();
    assert!(e.contains("group descriptors"), "{e}");
}

/// A directory (/boot) whose size says 16 TiB over a few real blocks: the
/// lookups through it end quickly (an error or an answer).
#[test]
fn huge_directory_size_is_not_walked_block_by_block() {
    for name in ["dir-size-16tib-ext2", "dir-size-16tib-ext4"] {
        let t = std::time::Instant::now();
        let r = choose_file(name);
        let took = t.elapsed();
        eprintln!(
            "{name}: {:?} in {took:?}",
            r.as_ref().map(|c| &c.kernel_path)
        );
        assert!(took.as_secs() < 5, "{name} took {took:?}");
    }
}
