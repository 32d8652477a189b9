//! Property tests: the parser never panics, and what it returns is consistent with its input.

#![forbid(unsafe_code)]

use proptest::prelude::*;
use xlcfg::{parse_file, parse_str, Parsed, Span, Value, ValueKind};

/// Line and column (1-based, columns in characters) of byte `offset` in `text`.
fn position(text: &str, offset: usize) -> (u32, u32) {
    let before = &text[..offset];
    let line = before.matches('\n').count() as u32 + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
    (line, col)
}

fn check_span(text: &str, span: &Span) {
    assert!(
        span.start <= span.end && span.end <= text.len(),
        "span out of range: {span:?}"
    );
    assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end));
    assert_eq!(
        (span.line, span.column),
        position(text, span.start),
        "span position"
    );
}

fn check_value(text: &str, v: &Value, depth: usize) {
    check_span(text, &v.span);
    assert!(depth <= xlcfg::parse::MAX_LIST_DEPTH);
    match &v.kind {
        ValueKind::List(items) => {
            for item in items {
                check_value(text, item, depth + 1);
            }
        }
        ValueKind::Number(n) => {
            assert!(n.starts_with(|c: char| c.is_ascii_digit()), "number {n:?}");
        }
        ValueKind::String(_) => {}
    }
}

/// Invariants of any parse result.
fn check_parsed(text: &str, p: &Parsed) {
    for s in p.settings.iter() {
        assert!(xlcfg::parse::is_valid_key(&s.key), "bad key {:?}", s.key);
        assert_eq!(s.key_span.text(), s.key);
        check_span(text, &s.key_span);
        check_value(text, &s.value, 0);
    }
    let keys: std::collections::BTreeSet<&str> =
        p.settings.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(
        keys.len(),
        p.settings.entries.len(),
        "duplicate keys in settings"
    );
    for d in &p.diagnostics {
        check_span(text, &d.span);
        let r = d.render();
        assert!(
            r.starts_with(&format!("t.cfg:{}:{}: ", d.span.line, d.span.column)),
            "{r}"
        );
        assert!(
            !d.message.is_empty() && !d.message.contains('\n'),
            "{:?}",
            d.message
        );
    }
    let starts: Vec<usize> = p.diagnostics.iter().map(|d| d.span.start).collect();
    let mut sorted = starts.clone();
    sorted.sort_unstable();
    assert_eq!(starts, sorted, "diagnostics are in source order");
    assert!(p.diagnostics.iter().filter(|d| d.is_error()).count() <= xlcfg::parse::MAX_ERRORS + 1);
}

/// Text built from xl.cfg's own characters, so the parser gets deep into its rules.
fn soup() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "a", "name", "x.y_1", "Z", "_", "-", "0", "0x1f", "9", "=", "+=", "+", ",", "[", "]", ";",
        "#", "\n", "\r\n", "\r", " ", "\t", "'", "\"", "\\", "\\n", "\\x4", "\\7", "é", "(", ")",
        ":", ".", "\0", "\u{a0}", "日",
    ]);
    prop::collection::vec(atoms, 0..60).prop_map(|v| v.concat())
}

fn key() -> impl Strategy<Value = String> {
    "[a-z][._0-9a-z]{0,6}"
}

/// A value printed as config text, and its expected JSON.
fn value() -> impl Strategy<Value = (String, serde_json::Value)> {
    let string = (any::<bool>(), "[ -~\\t\\n\u{e9}\u{65e5}]{0,8}").prop_map(|(double, s)| {
        let q = if double { '"' } else { '\'' };
        let mut out = String::from(q);
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if c == q => {
                    out.push('\\');
                    out.push(c);
                }
                c => out.push(c),
            }
        }
        out.push(q);
        (out, serde_json::Value::String(s))
    });
    let number = "[0-9][0-9a-fx]{0,5}".prop_map(|n| (n.clone(), serde_json::Value::String(n)));
    let atom = prop_oneof![string, number];
    atom.prop_recursive(3, 16, 4, |inner| {
        (
            prop::collection::vec(inner, 0..4),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(items, trailing, newlines)| {
                let sep = if newlines { ",\n  " } else { ", " };
                let printed: Vec<&str> = items.iter().map(|(p, _)| p.as_str()).collect();
                let mut s = format!("[{}", printed.join(sep));
                if trailing && !items.is_empty() {
                    s.push(',');
                }
                s.push(']');
                let json = items.into_iter().map(|(_, j)| j).collect();
                (s, serde_json::Value::Array(json))
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        let p = parse_str("t.cfg", &text);
        check_parsed(&text, &p);
    }

    #[test]
    fn token_soup_never_panics(text in soup()) {
        let p = parse_str("t.cfg", &text);
        check_parsed(&text, &p);
    }

    #[test]
    fn printed_values_parse_back(entries in prop::collection::vec((key(), value()), 0..8)) {
        let mut text = String::new();
        let mut expected = serde_json::Map::new();
        for (k, (printed, json)) in &entries {
            text.push_str(&format!("{k} = {printed}\n"));
            expected.insert(k.clone(), json.clone());
        }
        let p = parse_str("t.cfg", &text);
        prop_assert!(!p.has_errors(), "{:?}", p.diagnostics);
        prop_assert_eq!(p.settings.to_json(), serde_json::Value::Object(expected));
        check_parsed(&text, &p);
    }

    #[test]
    fn overrides_never_panic(args in prop::collection::vec(soup(), 0..4)) {
        let mut p = parse_str("t.cfg", "name = 'x'\nvif = ['a']\nextra = 'e'\n");
        let diags = xlcfg::apply_overrides(&mut p.settings, &args);
        for d in &diags {
            prop_assert_eq!(d.span.source.name.as_str(), "<command line>");
            let _ = d.render();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_bytes_in_files_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let path = dir.path().join("t.cfg");
        std::fs::write(&path, &bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let p = parse_file(&path).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let text = String::from_utf8_lossy(&bytes);
        for d in &p.diagnostics {
            prop_assert!(d.span.end <= text.len());
            let _ = d.render();
        }
        if std::str::from_utf8(&bytes).is_err() {
            // Undecodable bytes are always mentioned, as an error or a warning, unless they
            // sit where another error already refuses the file.
            prop_assert!(!p.diagnostics.is_empty());
        }
    }
}

#[test]
fn a_fixed_config_keeps_its_values() {
    // A fixed valid config: every value comes back as written.
    let text = "name = 'g'\nmemory = 0x200\nvif = [ 'bridge=xenbr0', [ 'n' ] ]\n";
    let p = parse_str("t.cfg", text);
    check_parsed(text, &p);
    assert_eq!(
        p.settings.to_json(),
        serde_json::json!({"name": "g", "memory": "0x200", "vif": ["bridge=xenbr0", ["n"]]})
    );
}
