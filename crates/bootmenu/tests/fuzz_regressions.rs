//! Inputs the fuzz targets (crates/bootmenu/fuzz) found problems with:
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
