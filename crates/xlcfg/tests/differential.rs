//! Differential test: rxl's parser against Xen's libxlutil (Debian's libxen-dev).
//!
//! `tests/cdump/cdump.c` is built with `cc` at test time and linked with `-lxlutil`. It loads
//! each file with `xlu_cfg_readfile` and prints what libxlutil holds as JSON. Both parsers
//! must agree on accept/reject and, when both accept, on every key's value (strings and
//! numbers compare as text; lists, nested ones included, compare item by item, since
//! cdump walks them with `xlu_cfg_get_listitem2`).
//!
//! The deliberate differences (docs/config-differences.md) are listed in [`DIFFERENCES`]
//! and asserted to behave exactly as documented.
//!
//! Without libxen-dev the tests print a loud SKIPPED banner and pass, unless
//! `RXL_REQUIRE_LIBXLUTIL=1` is set, in which case they fail.

#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::Value as Json;

const HEADER: &str = "/usr/include/libxlutil.h";

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// The built cdump, or `None` (after a loud message) when libxen-dev is missing.
fn cdump() -> Option<&'static Path> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        if !Path::new(HEADER).exists() {
            let msg = format!(
                "\n\n************************************************************\n\
                 *** SKIPPED: differential test against libxlutil:       ***\n\
                 *** {HEADER} is missing (install libxen-dev). ***\n\
                 ************************************************************\n"
            );
            assert!(
                std::env::var_os("RXL_REQUIRE_LIBXLUTIL").is_none(),
                "RXL_REQUIRE_LIBXLUTIL is set but {HEADER} is missing"
            );
            eprintln!("{msg}");
            return None;
        }
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cdump/cdump.c");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cdump");
        let status = Command::new("cc")
            .args(["-O1", "-Wall", "-Werror", "-o"])
            .arg(&out)
            .arg(&src)
            .arg("-lxlutil")
            .status()
            .unwrap_or_else(|e| panic!("running cc to build {}: {e}", src.display()));
        assert!(status.success(), "cc failed to build {}", src.display());
        Some(out)
    })
    .as_deref()
}

/// What libxlutil made of one file.
#[derive(Debug)]
struct CResult {
    ok: bool,
    values: Json,
    report: String,
}

/// Candidate keys for cdump: every word in the text that could be a key, plus the keys our
/// parser found. libxlutil cannot list its keys, so this superset stands in.
fn candidate_keys(text: &str, ours: &xlcfg::Settings) -> Vec<String> {
    let mut keys = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let prev_ok = i == 0 || !is_key_byte(bytes[i - 1]);
        if b.is_ascii_lowercase() && prev_ok {
            let start = i;
            while i < bytes.len() && is_key_byte(bytes[i]) {
                i += 1;
            }
            keys.insert(text[start..i].to_string());
        } else {
            i += 1;
        }
    }
    keys.extend(ours.iter().map(|s| s.key.clone()));
    keys.into_iter().collect()
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_'
}

/// Run cdump once over all `files`.
fn run_c(bin: &Path, files: &[(PathBuf, Vec<String>)]) -> Vec<CResult> {
    let mut input = String::new();
    for (path, keys) in files {
        input.push_str(&path.display().to_string());
        for k in keys {
            input.push('\t');
            input.push_str(k);
        }
        input.push('\n');
    }
    let mut child = Command::new(bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    let mut stdin = child.stdin.take().unwrap_or_else(|| panic!("cdump stdin"));
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for cdump: {e}"));
    writer
        .join()
        .unwrap_or_else(|_| panic!("writer thread"))
        .unwrap_or_else(|e| panic!("writing to cdump: {e}"));
    assert!(out.status.success(), "cdump failed: {:?}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    let results: Vec<CResult> = text
        .lines()
        .map(|line| {
            let v: Json = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("cdump printed bad JSON ({e}): {line}"));
            CResult {
                ok: v["ok"] == Json::Bool(true),
                values: v.get("values").cloned().unwrap_or(Json::Null),
                report: v["report"].as_str().unwrap_or("").to_string(),
            }
        })
        .collect();
    assert_eq!(
        results.len(),
        files.len(),
        "cdump answered {} of {} jobs (did libxlutil crash?)",
        results.len(),
        files.len()
    );
    results
}

/// A deliberate, documented difference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Difference {
    /// A comment on the last line with no newline after it: we accept, libxlutil refuses.
    FinalCommentWithoutNewline,
    /// CR LF line ends: we accept with one warning, libxlutil refuses.
    CrLf,
    /// `\ooo` escapes: we refuse, libxlutil accepts and silently drops them.
    OctalEscape,
    /// Lists nested deeper than 64: we refuse, libxlutil accepts.
    DeepNesting,
}

/// The corpus files that exercise a documented difference, and which one.
const DIFFERENCES: &[(&str, Difference)] = &[
    (
        "edge/diff-final-comment.cfg",
        Difference::FinalCommentWithoutNewline,
    ),
    (
        "edge/diff-final-comment-after-value.cfg",
        Difference::FinalCommentWithoutNewline,
    ),
    ("edge/diff-crlf.cfg", Difference::CrLf),
    ("edge/diff-octal-escape.cfg", Difference::OctalEscape),
    ("edge/diff-deep-nesting.cfg", Difference::DeepNesting),
    (
        "world/babrakov-bak-ubuntu.cfg.bak.cfg",
        Difference::FinalCommentWithoutNewline,
    ),
    (
        "world/babrakov-infoza.cfg",
        Difference::FinalCommentWithoutNewline,
    ),
];

fn difference_for(rel: &str) -> Option<Difference> {
    DIFFERENCES.iter().find(|(f, _)| *f == rel).map(|(_, d)| *d)
}

/// Parse `rel` (relative to the corpus) with both parsers and check them against each other.
/// Returns a description of the mismatch, if any.
fn check(rel: &str, ours: &xlcfg::Parsed, theirs: &CResult) -> Result<(), String> {
    let our_ok = !ours.has_errors();
    let rendered: String = ours.diagnostics.iter().map(|d| d.render()).collect();
    match difference_for(rel) {
        None => {
            if our_ok != theirs.ok {
                return Err(format!(
                    "{rel}: rxl {} but libxlutil {}\nrxl said:\n{rendered}\nlibxlutil said:\n{}",
                    if our_ok { "accepts" } else { "refuses" },
                    if theirs.ok { "accepts" } else { "refuses" },
                    theirs.report
                ));
            }
            if our_ok && ours.settings.to_json() != theirs.values {
                return Err(format!(
                    "{rel}: values differ\nrxl:       {}\nlibxlutil: {}",
                    ours.settings.to_json(),
                    theirs.values
                ));
            }
        }
        Some(d) => {
            let (want_ours, want_theirs) = match d {
                Difference::FinalCommentWithoutNewline | Difference::CrLf => (true, false),
                Difference::OctalEscape | Difference::DeepNesting => (false, true),
            };
            if (our_ok, theirs.ok) != (want_ours, want_theirs) {
                return Err(format!(
                    "{rel}: documented difference {d:?} does not hold: rxl ok={our_ok}, \
                     libxlutil ok={}\n{rendered}{}",
                    theirs.ok, theirs.report
                ));
            }
            let has = |needle: &str| ours.diagnostics.iter().any(|x| x.message.contains(needle));
            let explained = match d {
                Difference::FinalCommentWithoutNewline => ours.diagnostics.is_empty(),
                Difference::CrLf => has("CR LF") && ours.diagnostics.len() == 1,
                Difference::OctalEscape => has("numeric escapes"),
                Difference::DeepNesting => has("nested more than"),
            };
            if !explained {
                return Err(format!("{rel}: {d:?}: unexpected diagnostics:\n{rendered}"));
            }
        }
    }
    if !our_ok {
        // Every refusal is explained with FILE:LINE:COL and a caret.
        for d in ours.diagnostics.iter().filter(|d| d.is_error()) {
            let r = d.render();
            let head = format!(
                "{}:{}:{}: error: ",
                d.span.source.name, d.span.line, d.span.column
            );
            if !r.starts_with(&head) || !r.contains('^') {
                return Err(format!("{rel}: badly rendered diagnostic:\n{r}"));
            }
        }
    }
    Ok(())
}

/// Parse every file of the corpus directories `dirs` with both parsers and compare.
/// Returns (files, accepted by rxl).
fn compare_dirs(bin: &Path, dirs: &[&str]) -> (usize, usize) {
    let root = corpus();
    let mut rels = Vec::new();
    for dir in dirs {
        let mut entries: Vec<String> = std::fs::read_dir(root.join(dir))
            .unwrap_or_else(|e| panic!("reading corpus dir {dir}: {e}"))
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "README.md")
            .collect();
        entries.sort();
        rels.extend(entries.into_iter().map(|n| format!("{dir}/{n}")));
    }
    let mut jobs = Vec::new();
    let mut parsed = Vec::new();
    for rel in &rels {
        let path = root.join(rel);
        let p = xlcfg::parse_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        jobs.push((path, candidate_keys(&text, &p.settings)));
        parsed.push(p);
    }
    let theirs = run_c(bin, &jobs);
    let failures: Vec<String> = rels
        .iter()
        .zip(&parsed)
        .zip(&theirs)
        .filter_map(|((rel, ours), theirs)| check(rel, ours, theirs).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let accepted = parsed.iter().filter(|p| !p.has_errors()).count();
    eprintln!(
        "{dirs:?}: {} files agree, {accepted} accepted by rxl",
        rels.len()
    );
    (rels.len(), accepted)
}

#[test]
fn xen_examples_agree() {
    let Some(bin) = cdump() else { return };
    let (n, accepted) = compare_dirs(bin, &["xen"]);
    assert!(n >= 4, "Xen's examples are missing from the corpus");
    assert_eq!(accepted, n, "every Xen example is a valid config");
}

#[test]
fn real_world_configs_agree() {
    let Some(bin) = cdump() else { return };
    let (n, accepted) = compare_dirs(bin, &["world"]);
    assert!(n >= 30, "only {n} real-world configs");
    assert!(accepted >= 25, "only {accepted} of {n} accepted");
}

#[test]
fn edge_cases_agree() {
    let Some(bin) = cdump() else { return };
    compare_dirs(bin, &["edge"]);
    // The naming says what each file must do.
    for entry in std::fs::read_dir(corpus().join("edge")).unwrap_or_else(|e| panic!("{e}")) {
        let entry = entry.unwrap_or_else(|e| panic!("{e}"));
        let name = entry.file_name().to_string_lossy().into_owned();
        let p = xlcfg::parse_file(&entry.path()).unwrap_or_else(|e| panic!("{e}"));
        if name.starts_with("ok-") {
            assert!(!p.has_errors(), "{name} must be accepted");
        } else if name.starts_with("err-") {
            assert!(p.has_errors(), "{name} must be refused");
        } else {
            assert!(
                name.starts_with("diff-"),
                "edge file {name} lacks ok-/err-/diff-"
            );
            assert!(
                difference_for(&format!("edge/{name}")).is_some(),
                "{name} is not in DIFFERENCES"
            );
        }
    }
}

#[test]
fn every_difference_is_in_the_corpus_and_the_docs() {
    let docs = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/config-differences.md"),
    )
    .unwrap_or_else(|e| panic!("docs/config-differences.md: {e}"));
    for (rel, d) in DIFFERENCES {
        assert!(corpus().join(rel).exists(), "{rel} missing");
        let anchor = match d {
            Difference::FinalCommentWithoutNewline => "final comment",
            Difference::CrLf => "CR LF",
            Difference::OctalEscape => "numeric escape",
            Difference::DeepNesting => "nested more than 64",
        };
        assert!(
            docs.to_lowercase().contains(&anchor.to_lowercase()),
            "docs/config-differences.md does not mention {anchor}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Random configs

/// One piece of a generated config.
fn piece() -> impl Strategy<Value = String> {
    use proptest::prelude::*;
    let key = prop::sample::select(vec![
        "name", "memory", "disk", "vif", "a.b", "x_1", "k9", "on_crash",
    ]);
    let string_char = prop::sample::select(vec![
        "a", "Z", "0", " ", "-", "/", ",", "=", "#", ";", "[", "]", "é", "\\n", "\\t", "\\\\",
        "\\\"", "\\'", ":",
    ]);
    let string =
        (prop::bool::ANY, prop::collection::vec(string_char, 0..6)).prop_map(|(double, chars)| {
            let q = if double { "\"" } else { "'" };
            let body: String = chars
                .into_iter()
                .map(|c| {
                    // An unescaped quote of the enclosing kind would end the string early;
                    // that is fine (near-valid), but keep most strings intact.
                    c.to_string()
                })
                .collect();
            format!("{q}{body}{q}")
        });
    let number = prop::sample::select(vec!["0", "1", "512", "0x1f", "010", "1abc", "0x"])
        .prop_map(str::to_string);
    let atom = prop_oneof![string, number];
    let value = atom.prop_recursive(3, 12, 4, |inner| {
        (
            prop::collection::vec(
                (
                    inner,
                    prop::sample::select(vec!["", "", " ", "\n", " # c\n"]),
                ),
                0..4,
            ),
            prop::bool::ANY,
        )
            .prop_map(|(items, trailing)| {
                let mut s = String::from("[");
                for (i, (v, sep)) in items.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    s.push_str(sep);
                    s.push_str(v);
                }
                if trailing && !items.is_empty() {
                    s.push(',');
                }
                s.push(']');
                s
            })
    });
    let op = prop::sample::select(vec![" = ", "=", " += ", "+="]);
    let end = prop::sample::select(vec!["\n", ";", "\n\n", " # comment\n", ";\n"]);
    (key, op, value, end).prop_map(|(k, o, v, e)| format!("{k}{o}{v}{e}"))
}

/// Junk to splice into a config to make it near-valid.
fn junk() -> impl Strategy<Value = String> {
    proptest::sample::select(vec![
        "=", ",", "[", "]", "+", "-1", "foo", "Name", "'", "\"", "\\q", "1.5", "(", ":", ";", "\n",
        "#", "\t", "0X1", "+=", "512M", "my-key", "_x", " ", "''", "[]", "a=1",
    ])
    .prop_map(str::to_string)
}

/// A config: pieces, some of them with junk spliced in at a random byte.
fn config() -> impl Strategy<Value = String> {
    use proptest::prelude::*;
    (
        prop::collection::vec(piece(), 0..6),
        prop::collection::vec((junk(), any::<prop::sample::Index>()), 0..3),
    )
        .prop_map(|(pieces, junks)| {
            let mut text: String = pieces.concat();
            for (j, at) in junks {
                let mut i = at.index(text.len() + 1);
                while !text.is_char_boundary(i) {
                    i -= 1;
                }
                text.insert_str(i, &j);
            }
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text
        })
}

/// Whether a generated text touches a documented difference (and so is not compared).
fn touches_difference(text: &str) -> bool {
    let b = text.as_bytes();
    text.contains('\r')
        || text.contains('\0')
        || b.windows(2)
            .any(|w| w[0] == b'\\' && (w[1].is_ascii_digit() || w[1] == b'x'))
}

/// Generates `cases` texts from `strategy` (seeded, skipping documented differences),
/// parses each with rxl and with libxlutil, and asserts that they agree. Returns the texts
/// and rxl's parses, for the caller's own checks of what was covered.
fn generated_inputs_agree<S>(
    bin: &Path,
    what: &str,
    seed: u8,
    cases: usize,
    strategy: S,
) -> (Vec<String>, Vec<xlcfg::Parsed>)
where
    S: Strategy<Value = String>,
{
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let mut texts = Vec::new();
    while texts.len() < cases {
        let tree = strategy
            .new_tree(&mut runner)
            .unwrap_or_else(|e| panic!("generating {what}: {e}"));
        let text = tree.current();
        if !touches_difference(&text) {
            texts.push(text);
        }
    }
    let mut jobs = Vec::new();
    let mut parsed = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let path = dir.path().join(format!("g{i}.cfg"));
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        let p = xlcfg::parse_file(&path).unwrap_or_else(|e| panic!("{e}"));
        jobs.push((path, candidate_keys(text, &p.settings)));
        parsed.push(p);
    }
    let theirs = run_c(bin, &jobs);
    let failures: Vec<String> = texts
        .iter()
        .zip(&parsed)
        .zip(&theirs)
        .filter_map(|((text, ours), theirs)| {
            check(what, ours, theirs)
                .err()
                .map(|e| format!("input {text:?}\n{e}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {cases} {what} inputs disagree; first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    (texts, parsed)
}

#[test]
fn random_configs_agree() {
    let Some(bin) = cdump() else { return };
    const CASES: usize = 3000;
    let (_, parsed) = generated_inputs_agree(bin, "random", 7, CASES, config());
    let accepted = parsed.iter().filter(|p| !p.has_errors()).count();
    eprintln!("random configs: {CASES} agree, {accepted} accepted by both");
    // Both kinds are well represented, so the comparison means something.
    assert!(accepted > CASES / 5, "only {accepted} accepted");
    assert!(
        accepted < CASES * 4 / 5,
        "only {} refused",
        CASES - accepted
    );
}

/// `xl create cfg k=v ...` appends the arguments to the file's text; `apply_overrides` must
/// give the same result (arguments here never hold a bare word, the one documented leniency).
#[test]
fn overrides_match_xl_appending_the_arguments() {
    let Some(bin) = cdump() else { return };
    const CASES: usize = 600;
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[9; 32]),
    );
    let files = proptest::collection::vec(piece(), 0..5).prop_map(|p| p.concat());
    let args = proptest::collection::vec(
        piece().prop_map(|p| p.trim_end_matches(['\n', ';']).to_string()),
        0..4,
    );
    let strategy = (files, args);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let mut cases = Vec::new();
    while cases.len() < CASES {
        let tree = strategy
            .new_tree(&mut runner)
            .unwrap_or_else(|e| panic!("generating a case: {e}"));
        let (file, args) = tree.current();
        let mut joined = file.clone();
        for a in &args {
            joined.push('\n');
            joined.push_str(a);
        }
        joined.push('\n');
        if !touches_difference(&joined) {
            cases.push((file, args, joined));
        }
    }
    let mut jobs = Vec::new();
    let mut ours = Vec::new();
    for (i, (file, args, joined)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("o{i}.cfg"));
        std::fs::write(&path, joined).unwrap_or_else(|e| panic!("{e}"));
        let mut p = xlcfg::parse_str("file.cfg", file);
        let more = xlcfg::apply_overrides(&mut p.settings, args);
        p.diagnostics.extend(more);
        jobs.push((path, candidate_keys(joined, &p.settings)));
        ours.push(p);
    }
    let theirs = run_c(bin, &jobs);
    let mut failures = Vec::new();
    for (((file, args, _), ours), theirs) in cases.iter().zip(&ours).zip(&theirs) {
        let our_ok = !ours.has_errors();
        if our_ok != theirs.ok || (our_ok && ours.settings.to_json() != theirs.values) {
            failures.push(format!(
                "file {file:?} args {args:?}: rxl ok={our_ok} {}, libxlutil ok={} {}",
                ours.settings.to_json(),
                theirs.ok,
                theirs.values
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {CASES} disagree:\n{}",
        failures.len(),
        failures
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    let accepted = ours.iter().filter(|p| !p.has_errors()).count();
    eprintln!("overrides: {CASES} cases agree, {accepted} accepted by both");
    assert!(accepted > CASES / 2, "only {accepted} accepted");
}

/// Character soup from xl.cfg's own alphabet: stresses the lexer's corners (numbers running
/// into words, quotes and escapes, stray characters) far more than token streams do.
#[test]
fn character_soup_agrees() {
    let Some(bin) = cdump() else { return };
    const CASES: usize = 3000;
    let alphabet = proptest::sample::select(vec![
        "a", "k", "f", "x", "g", "Z", "_", "-", "0", "7", "=", "+=", "+", ",", "[", "]", ";", "#",
        "\n", " ", "\t", "'", "\"", "\\", "\\n", "(", ":", ".", "\u{e9}", "a=", " = ", "'v'",
        "[1,", "],", "0x", "\n#c\n",
    ]);
    // Whole statements with characters strewn between and into them.
    let item = proptest::prop_oneof![
        2 => piece(),
        3 => alphabet.prop_map(str::to_string),
    ];
    let strategy = proptest::collection::vec(item, 0..12).prop_map(|v| v.concat() + "\n");
    let (_, parsed) = generated_inputs_agree(bin, "soup", 11, CASES, strategy);
    // Enough accepted inputs that set something, so values were compared too.
    let accepted = parsed
        .iter()
        .filter(|p| !p.has_errors() && !p.settings.entries.is_empty())
        .count();
    eprintln!("character soup: {CASES} inputs agree, {accepted} accepted with settings");
    assert!(
        accepted > CASES / 30,
        "only {accepted} accepted with settings"
    );
}
