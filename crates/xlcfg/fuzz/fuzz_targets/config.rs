//! Arbitrary bytes through the whole config pipeline: parse, command-line overrides, build,
//! diagnostics rendering, and the JSON round trip of a built config.
//!
//! Input layout: the config text, then optionally a NUL byte followed by override
//! arguments, one per line.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (cfg, overrides) = match text.split_once('\0') {
        Some((c, o)) => (c, o.lines().map(str::to_string).collect::<Vec<_>>()),
        None => (text.as_ref(), Vec::new()),
    };
    let mut parsed = xlcfg::parse_str("fuzz.cfg", cfg);
    for d in &parsed.diagnostics {
        let _ = d.render();
    }
    for d in xlcfg::apply_overrides(&mut parsed.settings, &overrides) {
        let _ = d.render();
    }
    match xlcfg::build(&parsed.settings, Path::new("/fuzz/base")) {
        Ok(built) => {
            for w in &built.warnings {
                assert!(!w.is_error(), "an error among the warnings of a successful build");
                let _ = w.render();
            }
            let json = built.config.to_json();
            let back = xlcfg::DomainConfig::from_json(&json)
                .unwrap_or_else(|e| panic!("JSON of a built config does not read back: {e}\n{json}"));
            assert_eq!(back, built.config, "JSON round trip changed the config");
            let text = serde_json::to_string(&built.config).unwrap_or_default();
            let again: xlcfg::DomainConfig =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(again, built.config);
        }
        Err(diags) => {
            assert!(diags.iter().any(|d| d.is_error()), "build failed without an error");
            for d in &diags {
                let _ = d.render();
            }
        }
    }
});
