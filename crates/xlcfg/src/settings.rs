//! The values an xl.cfg file assigns, with where each came from.
//!
//! The parser (`parse`) produces [`Settings`]: the raw key/value pairs after `+=` and
//! last-assignment-wins, each value carrying its [`Span`]. The domain model (`model`)
//! consumes them. [`Diagnostic`] is shared by both.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;

/// One input text: a .cfg file, stdin, or the command-line `key=value` arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// What diagnostics call it: the path as given, `"<stdin>"`, or `"<command line>"`.
    pub name: String,
    /// The whole text.
    pub text: String,
}

impl Source {
    /// The text of 1-based `line`, without its line terminator.
    pub fn line_text(&self, line: u32) -> Option<&str> {
        self.text
            .split('\n')
            .nth(line.checked_sub(1)? as usize)
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
    }
}

/// A region of one [`Source`]. Lines and columns are 1-based; columns count characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// The source it is in.
    pub source: Arc<Source>,
    /// Line of the first character.
    pub line: u32,
    /// Column of the first character.
    pub column: u32,
    /// Byte offset of the first character in `source.text`.
    pub start: usize,
    /// Byte offset one past the last character.
    pub end: usize,
}

impl Span {
    /// `NAME:LINE:COL`, or just `NAME` when the position is unknown (line 0).
    pub fn position(&self) -> String {
        if self.line == 0 {
            self.source.name.clone()
        } else {
            format!("{}:{}:{}", self.source.name, self.line, self.column)
        }
    }

    /// The text of the line the span starts on, without its line terminator. Found from
    /// the span's byte offset, so it costs the length of that line, not of the text
    /// before it.
    pub fn line_text(&self) -> Option<&str> {
        if self.line == 0 {
            return None;
        }
        let text = &self.source.text;
        // A span inside an escaped string may start mid-character: go back to its start.
        let mut at = self.start.min(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let begin = text.get(..at)?.rfind('\n').map_or(0, |i| i + 1);
        let end = text.get(at..)?.find('\n').map_or(text.len(), |i| at + i);
        let line = text.get(begin..end)?;
        Some(line.strip_suffix('\r').unwrap_or(line))
    }

    /// The spanned text.
    pub fn text(&self) -> &str {
        self.source.text.get(self.start..self.end).unwrap_or("")
    }

    /// The position `byte_offset` bytes into this span, as a zero-length span. Used to point
    /// inside a string value (a disk spec's bad field). For a quoted string the caller
    /// adds 1 for the opening quote; escapes inside make the result approximate.
    pub fn at_offset(&self, byte_offset: usize) -> Span {
        let start = (self.start + byte_offset).min(self.end);
        let prefix = self.source.text.get(self.start..start).unwrap_or("");
        let mut line = self.line;
        let mut column = self.column;
        for c in prefix.chars() {
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        Span {
            source: self.source.clone(),
            line,
            column,
            start,
            end: start,
        }
    }
}

/// A parsed value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// A quoted string, escapes applied.
    String(String),
    /// A number, kept as its text (libxlutil converts later with strtol base 0).
    Number(String),
    /// A list, possibly nested.
    List(Vec<Value>),
}

/// A value and where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    /// The value.
    pub kind: ValueKind,
    /// Where it was written (for a list: from `[` to `]`).
    pub span: Span,
}

impl Value {
    /// The text of a string or number; `None` for a list.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            ValueKind::String(s) | ValueKind::Number(s) => Some(s),
            ValueKind::List(_) => None,
        }
    }

    /// The items of a list; `None` for a string or number.
    pub fn as_list(&self) -> Option<&[Value]> {
        match &self.kind {
            ValueKind::List(items) => Some(items),
            _ => None,
        }
    }

    /// The value as JSON the way `rxl config parse --json` prints it: strings and numbers
    /// alike as JSON strings, lists as arrays.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.kind {
            ValueKind::String(s) | ValueKind::Number(s) => serde_json::Value::String(s.clone()),
            ValueKind::List(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
        }
    }
}

/// One key's final value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The key.
    pub key: String,
    /// The key's span in the assignment that set it last (for `+=`, the first assignment
    /// that gave it a value).
    pub key_span: Span,
    /// The value after `+=` and last-wins.
    pub value: Value,
}

/// Every key's final value, in the order the keys first appeared.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// The settings in order of first appearance.
    pub entries: Vec<Setting>,
    /// The file (or stdin) the settings were parsed from, when known: diagnostics about
    /// what is missing point at its first line, even when it is empty.
    pub source: Option<Arc<Source>>,
}

impl Settings {
    /// Where a diagnostic about the config as a whole (a missing key) points: line 1,
    /// column 1 of the file the settings came from, or of the first setting's source.
    /// `None` when neither is known.
    pub fn start_span(&self) -> Option<Span> {
        let source = self
            .source
            .clone()
            .or_else(|| self.entries.first().map(|s| s.key_span.source.clone()))?;
        Some(Span {
            source,
            line: 1,
            column: 1,
            start: 0,
            end: 0,
        })
    }

    /// The setting for `key`.
    pub fn get(&self, key: &str) -> Option<&Setting> {
        self.entries.iter().find(|s| s.key == key)
    }

    /// The value for `key`.
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.get(key).map(|s| &s.value)
    }

    /// Iterate over the settings.
    pub fn iter(&self) -> impl Iterator<Item = &Setting> {
        self.entries.iter()
    }

    /// All settings as a JSON object, key -> [`Value::to_json`].
    pub fn to_json(&self) -> serde_json::Value {
        let map = self
            .entries
            .iter()
            .map(|s| (s.key.clone(), s.value.to_json()))
            .collect();
        serde_json::Value::Object(map)
    }
}

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The input is refused.
    Error,
    /// The input is accepted, but something deserves attention.
    Warning,
}

/// A message about the input, pointing at where the problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where.
    pub span: Span,
    /// What is wrong, in one line.
    pub message: String,
    /// What to do about it, when there is an obvious fix.
    pub hint: Option<String>,
    /// Other places involved (e.g. the other of two conflicting keys).
    pub notes: Vec<(Span, String)>,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn error(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            span,
            message: message.into(),
            hint: None,
            notes: Vec::new(),
        }
    }

    /// A warning at `span`.
    pub fn warning(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(span, message)
        }
    }

    /// Add a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// Add a note pointing elsewhere.
    pub fn with_note(mut self, span: Span, note: impl Into<String>) -> Diagnostic {
        self.notes.push((span, note.into()));
        self
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The human form:
    ///
    /// ```text
    /// guest.cfg:3:12: error: unterminated string
    ///     3 | kernel = "vmlinuz
    ///       |            ^
    ///   = hint: close the string with "
    /// ```
    pub fn render(&self) -> String {
        let mut out = String::new();
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(out, "{}: {sev}: {}", self.span.position(), self.message);
        render_snippet(&mut out, &self.span);
        for (span, note) in &self.notes {
            let _ = writeln!(out, "{}: note: {note}", span.position());
            render_snippet(&mut out, span);
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "  = hint: {hint}");
        }
        out
    }
}

fn render_snippet(out: &mut String, span: &Span) {
    let Some(line) = span.line_text() else {
        return;
    };
    let num = span.line.to_string();
    let pad = " ".repeat(num.len());
    // Carets cover the span on its first line, at least one.
    let first_line_len = span
        .text()
        .split('\n')
        .next()
        .map(|t| t.chars().count())
        .unwrap_or(0);
    let width = first_line_len.max(1);
    let lead: String = line
        .chars()
        .take(span.column.saturating_sub(1) as usize)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let _ = writeln!(out, "  {num} | {line}");
    let _ = writeln!(out, "  {pad} | {lead}{}", "^".repeat(width));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(text: &str, line: u32, column: u32, start: usize, end: usize) -> Span {
        let source = Arc::new(Source {
            name: "g.cfg".into(),
            text: text.into(),
        });
        Span {
            source,
            line,
            column,
            start,
            end,
        }
    }

    #[test]
    fn render_points_at_the_span() {
        let s = span("name = 1\nkernel = \"bad\"\n", 2, 10, 18, 23);
        let d = Diagnostic::error(s, "no such file").with_hint("check the path");
        assert_eq!(
            d.render(),
            "g.cfg:2:10: error: no such file\n  2 | kernel = \"bad\"\n    |          ^^^^^\n  = hint: check the path\n"
        );
    }

    #[test]
    fn the_line_is_found_from_the_offset() {
        let s = span("a = 1\nb = 'é'\r\nc = 3", 2, 6, 11, 12);
        assert_eq!(s.line_text(), Some("b = 'é'"));
        // Inside the two bytes of 'é': still that line.
        let mid = span("a = 1\nb = 'é'\r\nc = 3", 2, 6, 12, 12);
        assert_eq!(mid.line_text(), Some("b = 'é'"));
        let last = span("a = 1\nb = 'é'\r\nc = 3", 3, 1, 16, 17);
        assert_eq!(last.line_text(), Some("c = 3"));
        let unknown = span("", 0, 0, 0, 0);
        assert_eq!(unknown.line_text(), None);
        assert_eq!(unknown.position(), "g.cfg");
    }

    #[test]
    fn at_offset_moves_lines_and_columns() {
        let s = span("a = 'x'\nb = [\n 'y' ]\n", 2, 5, 12, 22);
        let inner = s.at_offset(3);
        assert_eq!((inner.line, inner.column), (3, 2));
    }
}
