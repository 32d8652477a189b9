//! Unit tests of the grammar rules and error messages.

use super::*;
use serde_json::json;

fn ok(text: &str) -> serde_json::Value {
    let p = parse_str("t.cfg", text);
    let rendered: Vec<String> = p.diagnostics.iter().map(Diagnostic::render).collect();
    assert!(
        !p.has_errors(),
        "unexpected errors for {text:?}:\n{}",
        rendered.join("")
    );
    p.settings.to_json()
}

/// The `FILE:LINE:COL: error: MESSAGE` lines of every error.
fn errors(text: &str) -> Vec<String> {
    let p = parse_str("t.cfg", text);
    p.diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.render().lines().next().unwrap_or("").to_string())
        .collect()
}

fn first_error(text: &str) -> Diagnostic {
    let p = parse_str("t.cfg", text);
    match p.diagnostics.into_iter().find(Diagnostic::is_error) {
        Some(d) => d,
        None => panic!("no error for {text:?}"),
    }
}

#[test]
fn keys() {
    assert_eq!(ok("a=1"), json!({"a": "1"}));
    assert_eq!(
        ok("on_poweroff='x'\nvif.0.mac='m'\nk9=1\n"),
        json!({"on_poweroff": "x", "vif.0.mac": "m", "k9": "1"})
    );
    assert_eq!(
        errors("Name = 'x'\n"),
        ["t.cfg:1:1: error: invalid key `Name`: keys are lowercase"]
    );
    assert_eq!(
        first_error("Name = 'x'\n").hint.as_deref(),
        Some("write `name`")
    );
    assert_eq!(
        errors("my-key = 1\n_x = 1\n"),
        [
            "t.cfg:1:1: error: invalid key `my-key`",
            "t.cfg:2:1: error: invalid key `_x`"
        ]
    );
    assert_eq!(
        errors("'name' = 1\n"),
        ["t.cfg:1:1: error: expected a key, found a string"]
    );
    assert_eq!(
        errors("= 1\n"),
        ["t.cfg:1:1: error: expected a key at the start of a statement, found `=`"]
    );
    assert!(is_valid_key("a.b_c9"));
    assert!(!is_valid_key("9a"));
    assert!(!is_valid_key(""));
}

#[test]
fn strings_and_escapes() {
    assert_eq!(ok("a='x y'\nb=\"q\"\n"), json!({"a": "x y", "b": "q"}));
    assert_eq!(ok(r#"a="it's""#), json!({"a": "it's"}));
    assert_eq!(ok(r#"a='say "hi"'"#), json!({"a": "say \"hi\""}));
    assert_eq!(
        ok(r#"a="\" \' \\ \a \b \f \n \r \t \v""#),
        json!({"a": "\" ' \\ \u{7} \u{8} \u{c} \n \r \t \u{b}"})
    );
    assert_eq!(ok("a=''"), json!({"a": ""}));
    assert_eq!(ok("a='é ü 日本'"), json!({"a": "é ü 日本"}));
    assert_eq!(ok("a='#not a comment'"), json!({"a": "#not a comment"}));
    assert_eq!(ok("a='x;y'"), json!({"a": "x;y"}));
}

#[test]
fn numeric_escapes_are_errors() {
    for text in [r"a='\x41'", r"a='\101'", r"a='\0'", r"a='x\7y'"] {
        let d = first_error(text);
        assert_eq!(
            d.message, "numeric escapes (\\x.. and \\ooo) are not supported in strings",
            "{text}"
        );
    }
    let d = first_error(r"a = 'ab\x41'");
    assert_eq!((d.span.line, d.span.column, d.span.text()), (1, 8, r"\x"));
    assert_eq!(
        errors(r"a='\q'"),
        ["t.cfg:1:4: error: unknown escape `\\q` in string"]
    );
    // One report per string, and the statement after it still parses.
    let p = parse_str("t.cfg", "a='\\q\\z'\nb=2\n");
    assert_eq!(p.diagnostics.len(), 1);
    assert_eq!(p.settings.value("b").and_then(Value::as_str), Some("2"));
}

#[test]
fn unterminated_strings() {
    assert_eq!(
        errors("a = 'abc\nb = 1\n"),
        ["t.cfg:1:5: error: unterminated string"]
    );
    assert_eq!(
        errors("a = \"abc"),
        ["t.cfg:1:5: error: unterminated string"]
    );
    assert_eq!(
        errors("a = 'abc\\"),
        ["t.cfg:1:5: error: unterminated string"]
    );
    assert_eq!(
        errors("a = 'abc\\\n'"),
        [
            "t.cfg:1:5: error: unterminated string",
            "t.cfg:2:1: error: unterminated string"
        ]
    );
}

#[test]
fn numbers_keep_their_text() {
    assert_eq!(
        ok("a=512\nb=0x1f\nc=010\nd=0\ne=1abc\nf=0x\n"),
        json!({"a": "512", "b": "0x1f", "c": "010", "d": "0", "e": "1abc", "f": "0x"})
    );
    let p = parse_str("t.cfg", "a=0x1f");
    assert!(matches!(
        p.settings.value("a").map(|v| &v.kind),
        Some(ValueKind::Number(n)) if n == "0x1f"
    ));
    assert_eq!(
        errors("m = 512M\n"),
        ["t.cfg:1:5: error: invalid number `512M`"]
    );
    assert_eq!(
        first_error("m = 0x1F\n").hint.as_deref(),
        Some("hex digits must be lowercase: m = 0x1f")
    );
    assert_eq!(
        errors("v = 1.5\n"),
        ["t.cfg:1:5: error: invalid number `1.5`"]
    );
    let d = first_error("vcpus = -1\n");
    assert_eq!(d.message, "`-1` is not a value");
    assert_eq!(
        d.hint.as_deref(),
        Some("negative numbers must be quoted: vcpus = \"-1\"")
    );
    // NUMBER then a key-like word: two values.
    assert_eq!(
        errors("a = 1g\n"),
        ["t.cfg:1:5: error: invalid number `1g`"]
    );
}

#[test]
fn lists() {
    assert_eq!(ok("a=[]"), json!({"a": []}));
    assert_eq!(ok("a=[ ]"), json!({"a": []}));
    assert_eq!(ok("a=['x']"), json!({"a": ["x"]}));
    assert_eq!(ok("a=['x',]"), json!({"a": ["x"]}));
    assert_eq!(ok("a=['x', 1, \"y\"]"), json!({"a": ["x", "1", "y"]}));
    assert_eq!(
        ok("a=[[1,2],[],[[3]]]"),
        json!({"a": [["1", "2"], [], [["3"]]]})
    );
    assert_eq!(
        ok("a=[\n  'x', # first\n\n  # between\n  'y'\n  ,\n  'z',\n]\nb=1\n"),
        json!({"a": ["x", "y", "z"], "b": "1"})
    );
    assert_eq!(ok("a=[\n]\n"), json!({"a": []}));
    assert_eq!(ok("a=[\n[\n1\n]\n]\n"), json!({"a": [["1"]]}));
    assert_eq!(
        errors("a=[,]\n"),
        ["t.cfg:1:4: error: expected a list item, found `,`"]
    );
    assert_eq!(
        errors("a=[1,,]\n"),
        ["t.cfg:1:6: error: expected a list item, found `,`"]
    );
    assert_eq!(
        errors("a=['x' 'y']\n"),
        ["t.cfg:1:8: error: expected `,` or `]` in list, found a string"]
    );
    // No newline between `=` and the value.
    assert_eq!(
        errors("a=\n[1]\n"),
        [
            "t.cfg:1:3: error: missing value for `a`, found end of line",
            "t.cfg:2:1: error: expected a key at the start of a statement, found `[`"
        ]
    );
}

#[test]
fn list_spans_cover_the_brackets() {
    let p = parse_str("t.cfg", "disk = [ 'a',\n  'b' ]\n");
    let v = p.settings.value("disk").map(|v| v.span.text().to_string());
    assert_eq!(v.as_deref(), Some("[ 'a',\n  'b' ]"));
    let items = p
        .settings
        .value("disk")
        .and_then(Value::as_list)
        .map(<[Value]>::to_vec);
    let b = items
        .as_ref()
        .and_then(|i| i.get(1))
        .map(|v| (v.span.line, v.span.column));
    assert_eq!(b, Some((2, 3)));
}

#[test]
fn nesting_is_limited() {
    let deep = format!(
        "a={}{}\n",
        "[".repeat(MAX_LIST_DEPTH),
        "]".repeat(MAX_LIST_DEPTH)
    );
    assert!(!parse_str("t.cfg", &deep).has_errors());
    let too_deep = format!(
        "a={}{}\nb=1\n",
        "[".repeat(MAX_LIST_DEPTH + 1),
        "]".repeat(MAX_LIST_DEPTH + 1)
    );
    let p = parse_str("t.cfg", &too_deep);
    assert_eq!(p.diagnostics.len(), 1);
    assert_eq!(p.diagnostics[0].message, "lists nested more than 64 deep");
    assert!(p.settings.get("b").is_some());
    // Far deeper input: no stack overflow.
    let huge = "a=".to_string() + &"[".repeat(200_000);
    assert!(parse_str("t.cfg", &huge).has_errors());
}

#[test]
fn unclosed_list_resumes_at_the_next_assignment() {
    let p = parse_str("t.cfg", "disk = [ 'a',\nname = 'x'\n");
    let e: Vec<String> = p.diagnostics.iter().map(|d| d.render()).collect();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("t.cfg:1:8: error: unclosed `[`"), "{e:?}");
    assert_eq!(p.settings.value("name").and_then(Value::as_str), Some("x"));
    assert_eq!(
        errors("a = [ 1"),
        ["t.cfg:1:5: error: unclosed `[`: the list has no `]`"]
    );
    assert_eq!(
        errors("a = [ 1\nb = 2\n"),
        ["t.cfg:1:5: error: unclosed `[`: the list has no `]`"]
    );
}

#[test]
fn statements_and_comments() {
    assert_eq!(ok(""), json!({}));
    assert_eq!(ok("\n\n;;\n ; \n"), json!({}));
    assert_eq!(ok("a=1;b=2\n"), json!({"a": "1", "b": "2"}));
    assert_eq!(ok("a=1;"), json!({"a": "1"}));
    assert_eq!(ok("a = 1 ; b = 'x' ;\n"), json!({"a": "1", "b": "x"}));
    assert_eq!(ok("\ta\t=\t1\t\n"), json!({"a": "1"}));
    assert_eq!(
        ok("# c\na=1 # c\nb='x'# c\n#\n"),
        json!({"a": "1", "b": "x"})
    );
    // A final comment without a newline is accepted (libxlutil refuses it).
    assert_eq!(ok("a=1\n# last"), json!({"a": "1"}));
    assert_eq!(ok("a=1 # last"), json!({"a": "1"}));
    assert_eq!(ok("#"), json!({}));
    assert_eq!(
        errors("a='x' b='y'\n"),
        ["t.cfg:1:7: error: expected the end of the statement after the value of `a`, found word `b`"]
    );
    assert_eq!(
        first_error("a='x' b='y'\n").hint.as_deref(),
        Some("put each assignment on its own line, or separate them with `;`")
    );
    assert_eq!(
        errors("name 'x'\n"),
        ["t.cfg:1:6: error: expected `=` or `+=` after key `name`, found a string"]
    );
}

#[test]
fn last_assignment_wins_and_order_is_first_appearance() {
    let p = parse_str("t.cfg", "a=1\nb=2\na='z'\n");
    let keys: Vec<&str> = p.settings.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["a", "b"]);
    assert_eq!(p.settings.to_json(), json!({"a": "z", "b": "2"}));
    assert_eq!(p.settings.get("a").map(|s| s.key_span.line), Some(3));
    assert_eq!(p.settings.value("a").map(|v| v.span.line), Some(3));
}

#[test]
fn plus_equals() {
    assert_eq!(ok("a+='x'"), json!({"a": "x"}));
    assert_eq!(ok("a='x'\na+='y'\na+=\"z\"\n"), json!({"a": "xyz"}));
    assert_eq!(
        ok("a=['x']\na+=['y',['z']]\n"),
        json!({"a": ["x", "y", ["z"]]})
    );
    assert_eq!(ok("a=[]\na+=[]\n"), json!({"a": []}));
    // `=` after `+=` replaces.
    assert_eq!(ok("a='x'\na+='y'\na='q'\n"), json!({"a": "q"}));
    // Numbers are strings to libxlutil: `+=` joins their text, and the result is a string.
    let p = parse_str("t.cfg", "a=1\na+=2\n");
    assert!(matches!(
        p.settings.value("a").map(|v| &v.kind),
        Some(ValueKind::String(s)) if s == "12"
    ));
    // The key span stays at the assignment that first gave the value.
    assert_eq!(p.settings.get("a").map(|s| s.key_span.line), Some(1));
    let d = first_error("a='x'\na+=['y']\n");
    assert_eq!(d.message, "cannot add a list to the string `a`");
    assert_eq!(d.notes.first().map(|(s, _)| s.line), Some(1));
    assert_eq!(
        first_error("a=['x']\na+='y'\n").message,
        "cannot add a string to the list `a`"
    );
}

#[test]
fn bare_words_get_a_quoting_hint() {
    let d = first_error("name = foo\n");
    assert_eq!(
        d.render(),
        "t.cfg:1:8: error: unquoted value `foo`\n  1 | name = foo\n    |        ^^^\n  = hint: strings need quotes: name = \"foo\"\n"
    );
    for (text, word) in [
        ("kernel = /boot/vmlinuz\n", "/boot/vmlinuz"),
        ("name = my-guest\n", "my-guest"),
        ("type = PVH\n", "PVH"),
        ("type = pvh.x\n", "pvh.x"),
    ] {
        let d = first_error(text);
        assert_eq!(d.message, format!("unquoted value `{word}`"), "{text}");
    }
    let d = first_error("disk = [ phy:/dev/vg/x, 'b' ]\n");
    assert_eq!(d.message, "unquoted value `phy:/dev/vg/x`");
    assert_eq!((d.span.column, d.span.text()), (10, "phy:/dev/vg/x"));
    assert_eq!(
        d.hint.as_deref(),
        Some("strings need quotes, in lists too: \"phy:/dev/vg/x\"")
    );
    let d = first_error("d = C:\\x\n");
    assert_eq!(
        d.hint.as_deref(),
        Some("strings need quotes: d = \"C:\\\\x\"")
    );
    assert_eq!(
        first_error("v = [ -1 ]\n").hint.as_deref(),
        Some("negative numbers must be quoted: \"-1\"")
    );
}

#[test]
fn python_gets_a_hint() {
    for text in [
        "a = (1, 2)\n",
        "a = 'x' + 'y'\n",
        "a = 'x'.upper()\n",
        "a = {'k': 1}\n",
    ] {
        let p = parse_str("t.cfg", text);
        assert!(p.has_errors(), "{text}");
        let hinted = p
            .diagnostics
            .iter()
            .any(|d| d.hint.as_deref() == Some(PYTHON_HINT));
        assert_eq!(hinted, !text.contains('{'), "{text}: {:?}", p.diagnostics);
    }
    let d = first_error("a = (1, 2)\n");
    assert_eq!(d.message, "unexpected `(`");
    assert_eq!(d.hint.as_deref(), Some(PYTHON_HINT));
}

#[test]
fn every_broken_statement_is_reported() {
    let text = "a = 1\nB = 2\nc = foo\nd = 'x\ne = [1 2]\nf = 3\ng = (1)\n";
    let e = errors(text);
    assert_eq!(
        e,
        [
            "t.cfg:2:1: error: invalid key `B`: keys are lowercase",
            "t.cfg:3:5: error: unquoted value `foo`",
            "t.cfg:4:5: error: unterminated string",
            "t.cfg:5:8: error: expected `,` or `]` in list, found number `2`",
            "t.cfg:7:5: error: unexpected `(`",
        ]
    );
    let p = parse_str("t.cfg", text);
    assert_eq!(p.settings.to_json(), json!({"a": "1", "f": "3"}));
}

#[test]
fn error_count_is_capped() {
    let text = "X=1\n".repeat(MAX_ERRORS * 3);
    let p = parse_str("t.cfg", &text);
    assert_eq!(p.diagnostics.len(), MAX_ERRORS + 1);
    assert!(p.diagnostics[MAX_ERRORS]
        .message
        .starts_with("too many errors"));
}

#[test]
fn crlf_is_accepted_with_one_warning() {
    let p = parse_str("t.cfg", "a = 1\r\nb = [ 'x',\r\n 'y' ]\r\n# c\r\n");
    assert!(!p.has_errors());
    assert_eq!(p.settings.to_json(), json!({"a": "1", "b": ["x", "y"]}));
    assert_eq!(p.diagnostics.len(), 1);
    assert_eq!(
        p.diagnostics[0].render().lines().next(),
        Some("t.cfg:1:6: warning: line ends with CR LF (DOS line endings); xl refuses such files")
    );
    // CR LF only after comments is what libxlutil accepts too: no warning.
    assert!(parse_str("t.cfg", "# c\r\na = 1\n").diagnostics.is_empty());
    assert_eq!(
        errors("a = 1\rb = 2\n"),
        ["t.cfg:1:6: error: stray carriage return"]
    );
}

#[test]
fn odd_characters() {
    assert_eq!(
        errors("a = 1\u{c}\n"),
        ["t.cfg:1:6: error: unexpected `\u{c}`"]
    );
    assert_eq!(
        errors("a = 'x\0y'\n"),
        ["t.cfg:1:7: error: string contains a NUL character"]
    );
    assert_eq!(errors("a\0 = 1\n"), ["t.cfg:1:2: error: unexpected `\0`"]);
    assert_eq!(
        first_error("a = 1\u{a0}\n").hint.as_deref(),
        Some("only spaces and tabs separate tokens")
    );
}

#[test]
fn invalid_utf8_files() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = dir.path().join("g.cfg");
    std::fs::write(&path, b"# caf\xe9\nname = 'x'\n").unwrap_or_else(|e| panic!("{e}"));
    let p = parse_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(!p.has_errors());
    assert_eq!(p.diagnostics.len(), 1);
    assert!(p.diagnostics[0]
        .message
        .starts_with("comment contains bytes"));
    std::fs::write(&path, b"name = 'caf\xe9'\n").unwrap_or_else(|e| panic!("{e}"));
    let p = parse_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(p.has_errors());
    assert_eq!(
        p.diagnostics[0].message,
        "string contains bytes that are not UTF-8"
    );
    assert_eq!(p.diagnostics[0].span.column, 12);

    let missing = dir.path().join("missing.cfg");
    let err = parse_file(&missing).err().map(|e| e.to_string());
    assert_eq!(
        err,
        Some(format!("cannot read config file {}", missing.display()))
    );
}

#[test]
fn overrides_win_and_add() {
    let mut p = parse_str(
        "g.cfg",
        "name = 'a'\nmemory = 512\nextra = 'x'\nvif = ['m']\n",
    );
    let args: Vec<String> = ["memory=1024", "extra+=' y'", "vif+=['n']", "vcpus=2"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let d = apply_overrides(&mut p.settings, &args);
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(
        p.settings.to_json(),
        json!({"name": "a", "memory": "1024", "extra": "x y", "vif": ["m", "n"], "vcpus": "2"})
    );
    let span = p.settings.value("memory").map(|v| v.span.clone());
    assert_eq!(
        span.as_ref().map(|s| s.source.name.as_str()),
        Some(COMMAND_LINE_SOURCE)
    );
    assert_eq!(span.map(|s| (s.line, s.column)), Some((1, 8)));
}

#[test]
fn overrides_accept_bare_words() {
    let mut s = Settings::default();
    let args: Vec<String> = [
        "name=web1",
        "kernel = /boot/vmlinuz-6.1",
        "type=pvh;",
        "cpus=0-3 # c",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let d = apply_overrides(&mut s, &args);
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(
        s.to_json(),
        json!({"name": "web1", "kernel": "/boot/vmlinuz-6.1", "type": "pvh", "cpus": "0-3"})
    );
    assert!(matches!(
        s.value("name").map(|v| &v.kind),
        Some(ValueKind::String(_))
    ));
    // A number stays a number; words with spaces still need quotes.
    let d = apply_overrides(&mut s, &["memory=512".to_string()]);
    assert!(d.is_empty());
    assert!(matches!(
        s.value("memory").map(|v| &v.kind),
        Some(ValueKind::Number(_))
    ));
    let d = apply_overrides(&mut s, &["extra=a b".to_string(), "Bad=1".to_string()]);
    let lines: Vec<String> = d
        .iter()
        .map(|d| d.render().lines().next().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        lines,
        [
            "<command line>:1:7: error: unquoted value `a`",
            "<command line>:2:1: error: invalid key `Bad`: keys are lowercase"
        ]
    );
    assert!(apply_overrides(&mut s, &[]).is_empty());
}

#[test]
fn rendered_unterminated_string() {
    let d = first_error("kernel = \"vmlinuz\n");
    assert_eq!(
        d.render(),
        "t.cfg:1:10: error: unterminated string\n  1 | kernel = \"vmlinuz\n    |          ^^^^^^^^\n  = hint: close the string with \" on the same line; strings cannot span lines\n"
    );
}

#[test]
fn rendered_mixed_plus_equals() {
    let d = first_error("a = 'x'\na += [1]\n");
    assert_eq!(
        d.render(),
        "t.cfg:2:6: error: cannot add a list to the string `a`\n  2 | a += [1]\n    |      ^^^\nt.cfg:1:5: note: the earlier value is here\n  1 | a = 'x'\n    |     ^^^\n  = hint: `+=` joins strings to strings and lists to lists\n"
    );
}

#[test]
fn escape_errors_count_towards_the_cap() {
    let text = "a = '\\q'\n".repeat(MAX_ERRORS * 2);
    let p = parse_str("t.cfg", &text);
    assert!(
        p.diagnostics.len() <= MAX_ERRORS + 2,
        "{}",
        p.diagnostics.len()
    );
    assert!(p
        .diagnostics
        .iter()
        .any(|d| d.message.starts_with("too many errors")));
}

#[test]
fn parse_bytes_handles_undecodable_input() {
    let p = parse_bytes("<stdin>", b"a = 1 \xff\n");
    assert_eq!(
        p.diagnostics
            .iter()
            .map(|d| d.render().lines().next().unwrap_or("").to_string())
            .collect::<Vec<_>>(),
        ["<stdin>:1:7: error: unexpected `\u{fffd}`"]
    );
    let p = parse_bytes("<stdin>", b"name = 'ok'\n");
    assert!(p.diagnostics.is_empty());
    assert_eq!(p.settings.value("name").and_then(Value::as_str), Some("ok"));
}

#[test]
fn hints() {
    let hint = |text: &str| first_error(text).hint;
    assert_eq!(
        hint("a = 'x' 'y'\n").as_deref(),
        Some("one value per key; use a list for several: [\"a\", \"b\"]")
    );
    assert_eq!(
        hint("a = ['x' 'y']\n").as_deref(),
        Some("separate list items with `,`")
    );
    assert_eq!(
        hint("name 'x'\n").as_deref(),
        Some("assign a value: name = \"...\"")
    );
    assert_eq!(
        hint("9key = 1\n").as_deref(),
        Some("a key starts with a-z and holds only a-z, 0-9, `_` and `.`")
    );
    assert_eq!(
        hint("m = 512M\n").as_deref(),
        Some(
            "numbers are integers (decimal, 0x hex or 0 octal); quote anything else: m = \"512M\""
        )
    );
    assert_eq!(
        hint("a = 'x\n").as_deref(),
        Some("close the string with ' on the same line; strings cannot span lines")
    );
    assert_eq!(
        hint("a = [ 1\n").as_deref(),
        Some("close the list with `]`")
    );
    assert_eq!(
        hint("a =\n").as_deref(),
        Some("a value is a \"string\", a number or a [list]: a = \"...\"")
    );
}

#[test]
fn rendered_crlf_warning() {
    let p = parse_str("dos.cfg", "name = 'x'\r\n");
    assert_eq!(
        p.diagnostics.iter().map(Diagnostic::render).collect::<String>(),
        "dos.cfg:1:11: warning: line ends with CR LF (DOS line endings); xl refuses such files\n  1 | name = 'x'\n    |           ^\n  = hint: convert the file with dos2unix\n"
    );
}

#[test]
fn more_python_and_key_hints() {
    assert_eq!(
        first_error("import os, re\n").hint.as_deref(),
        Some(PYTHON_HINT)
    );
    let d = first_error("arch = os.uname()[4]\n");
    assert_eq!(d.message, "unquoted value `os.uname()`");
    assert_eq!(d.hint.as_deref(), Some(PYTHON_HINT));
    assert_eq!(
        first_error("install-method = 'x'\n").hint.as_deref(),
        Some("a key starts with a-z and holds only a-z, 0-9, `_` and `.`: `install_method`?")
    );
}
