//! The partition table scan on any disk image: an answer or an error,
//! every place inside the disk.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    if let Ok(parts) = bootmenu::partition::find(&mut std::io::Cursor::new(data), len) {
        assert!(!parts.is_empty());
        for p in parts {
            assert!(p.start.saturating_add(p.len) <= len || p.len == 0, "{p:?} leaves the disk");
        }
    }
});
