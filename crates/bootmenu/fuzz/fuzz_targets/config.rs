//! The three configuration parsers and the entry choice on any text: the
//! first byte picks the syntax, the second an `--entry` hint.
#![no_main]

use bootmenu::Syntax;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [s, e, rest @ ..] = data else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let syntax = match s % 3 {
        0 => Syntax::Grub2,
        1 => Syntax::Extlinux,
        _ => Syntax::Grub1,
    };
    match bootmenu::parse_config(syntax, text, "/f") {
        Ok(menu) => {
            let entry = (e % 2 == 0).then(|| (e / 2).to_string());
            if let Some(i) = menu.select(entry.as_deref()) {
                assert!(i < menu.entries.len());
            } else {
                assert!(menu.entries.is_empty());
            }
        }
        Err(err) => {
            assert!(err.line >= 1 && err.line <= text.split('\n').count(), "{err}");
        }
    }
});
