//! `choose` on a whole disk image (seed it with the differential test's
//! images): an answer within the caps or an error, never a panic or a hang.
#![no_main]

use bootmenu::{Hints, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_kernel: 1 << 20,
        max_ramdisk: 1 << 20,
        max_config: 64 << 10,
    };
    let disk = std::io::Cursor::new(data.to_vec());
    if let Ok(c) = bootmenu::choose(disk, &Hints::default(), &limits) {
        assert!(c.kernel.len() as u64 <= limits.max_kernel);
        assert!(c.ramdisk.map_or(0, |r| r.len()) as u64 <= limits.max_ramdisk);
        assert!(!c.args.contains('\0'));
    }
});
