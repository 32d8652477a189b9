//! Every config in examples/ is valid: it parses and builds (its files need not exist).

use std::path::Path;

#[test]
fn every_example_builds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("examples/") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("cfg") {
            continue;
        }
        seen += 1;
        let parsed = xlcfg::parse_file(&path).expect("read");
        assert!(
            !parsed.has_errors(),
            "{}: {:?}",
            path.display(),
            parsed.diagnostics
        );
        let built = xlcfg::build(&parsed.settings, &dir).unwrap_or_else(|d| {
            panic!(
                "{}",
                d.iter().map(xlcfg::Diagnostic::render).collect::<String>()
            )
        });
        let warnings: Vec<String> = built.warnings.iter().map(|w| w.render()).collect();
        assert!(warnings.is_empty(), "{}: {warnings:?}", path.display());
    }
    assert!(seen >= 4, "only {seen} examples");
}
