//! The few Python string operations pygrub's parsers are built from, with
//! Python 3's exact rules (whitespace set, `split` with and without a
//! separator, `int()` of a string), so that the parsers above them can be
//! written line for line against pygrub's behaviour.

/// Python's `str.isspace` for one character: Unicode White_Space plus the
/// four ASCII information separators U+001C..U+001F.
pub fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `s.strip()`.
pub fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// `s.split(None, maxsplit)`; `None` is Python's -1 (no limit).
pub fn split_ws(s: &str, maxsplit: Option<usize>) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s.trim_start_matches(is_space);
    while !rest.is_empty() {
        if maxsplit == Some(out.len()) {
            out.push(rest);
            break;
        }
        match rest.find(is_space) {
            Some(i) => {
                out.push(&rest[..i]);
                rest = rest[i..].trim_start_matches(is_space);
            }
            None => {
                out.push(rest);
                break;
            }
        }
    }
    out
}

/// `s.split(sep, maxsplit)`.
pub fn split_sep<'a>(s: &'a str, sep: &str, maxsplit: Option<usize>) -> Vec<&'a str> {
    match maxsplit {
        Some(m) => s.splitn(m + 1, sep).collect(),
        None => s.split(sep).collect(),
    }
}

/// `s[n:]` in code points.
pub fn skip_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[i..],
        None => "",
    }
}

/// Python's `int(s)` for a string in base 10 (ASCII digits): surrounding
/// whitespace, one sign, single underscores between digits. Values beyond
/// `i64` saturate, which keeps their sign and their "too large for any
/// menu" meaning. `None` where Python raises `ValueError`.
pub fn py_int(s: &str) -> Option<i64> {
    let t = strip(s);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let b = digits.as_bytes();
    if b.is_empty() || b[0] == b'_' || b[b.len() - 1] == b'_' || digits.contains("__") {
        return None;
    }
    let mut v: i64 = 0;
    for &c in b {
        if c == b'_' {
            continue;
        }
        if !c.is_ascii_digit() {
            return None;
        }
        let d = i64::from(c - b'0');
        v = v.saturating_mul(10).saturating_add(d);
    }
    Some(if neg { -v } else { v })
}

/// GrubConf's `grub_split`: split on `=` when an `=` comes before the
/// first space or tab (or there is none), else on whitespace.
pub fn grub_split(s: &str, maxsplit: Option<usize>) -> Vec<&str> {
    let Some(eq) = s.find('=') else {
        return split_ws(s, maxsplit);
    };
    let mut sp = s.find(' ');
    if let Some(tab) = s.find('\t') {
        if sp.is_none_or(|sp| tab < sp) {
            sp = Some(tab);
        }
    }
    match sp {
        Some(sp) if eq >= sp => split_ws(s, maxsplit),
        _ => split_sep(s, "=", maxsplit),
    }
}

/// GrubConf's `grub_exact_split(s, 2)`: a command and the rest, the rest
/// empty when absent.
pub fn command_split(s: &str) -> (&str, &str) {
    let v = grub_split(s, Some(1));
    (
        v.first().copied().unwrap_or(""),
        v.get(1).copied().unwrap_or(""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_split_keeps_the_tail_as_python_does() {
        assert_eq!(split_ws("  a \t b  c ", Some(1)), ["a", "b  c "]);
        assert_eq!(split_ws("  a \t b  c ", None), ["a", "b", "c"]);
        assert!(split_ws("   ", None).is_empty());
        assert_eq!(split_ws("a\u{1f}b", None), ["a", "b"]);
    }

    #[test]
    fn python_int_rules() {
        assert_eq!(py_int(" 12 "), Some(12));
        assert_eq!(py_int("+3"), Some(3));
        assert_eq!(py_int("-0"), Some(0));
        assert_eq!(py_int("1_0"), Some(10));
        assert_eq!(py_int("007"), Some(7));
        for bad in ["", "_1", "1_", "1__0", "0x10", "- 1", "1.0", "a"] {
            assert_eq!(py_int(bad), None, "{bad:?}");
        }
        assert_eq!(py_int("99999999999999999999999"), Some(i64::MAX));
    }

    #[test]
    fn grub_split_chooses_equals_or_whitespace() {
        assert_eq!(command_split("default=1"), ("default", "1"));
        assert_eq!(command_split("default 1"), ("default", "1"));
        assert_eq!(
            command_split("linux /vmlinuz root=/dev/xvda1"),
            ("linux", "/vmlinuz root=/dev/xvda1")
        );
        assert_eq!(command_split("a\tb=c d"), ("a", "b=c d"));
        assert_eq!(command_split("hiddenmenu"), ("hiddenmenu", ""));
        assert_eq!(grub_split("a=b=c", Some(2)), ["a", "b", "c"]);
    }

    #[test]
    fn char_slicing() {
        assert_eq!(skip_chars("titl\u{e9}e x", 6), " x");
        assert_eq!(skip_chars("title", 6), "");
    }
}
