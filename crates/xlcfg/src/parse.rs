//! The xl.cfg lexer and parser.
//!
//! The accepted language is the one Xen's libxlutil accepts (see `docs/config-differences.md`
//! for the few deliberate differences):
//!
//! - a statement is `key = value` or `key += value`, ended by a newline or `;`;
//! - a key is `[a-z][._0-9a-z]*`;
//! - a value is a quoted string (`'...'` or `"..."`, C escapes, no raw newline), a number
//!   `[0-9][0-9a-fx]*` kept as its text, or a list `[v, v, ...]` (nested, newlines allowed
//!   inside the brackets, one trailing comma, `[]`);
//! - `#` starts a comment that runs to the end of the line;
//! - only space and tab are whitespace.
//!
//! The lexer and parser are hand-written, single pass and linear in the input. Every error
//! becomes a [`Diagnostic`]; after an error the parser skips to the next statement and goes
//! on, so one run reports every broken statement.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::settings::{Diagnostic, Setting, Settings, Source, Span, Value, ValueKind};

/// The deepest list nesting accepted (`[[...]]` is depth 2). Real configs use at most 3.
pub const MAX_LIST_DEPTH: usize = 64;

/// After this many errors in one source the parser stops and says so.
pub const MAX_ERRORS: usize = 100;

/// The name of the [`Source`] that holds command-line overrides.
pub const COMMAND_LINE_SOURCE: &str = "<command line>";

/// The result of parsing one source: the settings, and every error and warning found.
///
/// When [`Parsed::has_errors`] is true the settings hold the statements that were valid; they
/// are useful for tooling but must not be used to build a domain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Every key's final value.
    pub settings: Settings,
    /// Errors and warnings, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    /// Whether any diagnostic is an error (the input is refused).
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Reading a config file failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be read.
    #[error("cannot read config file {}", path.display())]
    Io {
        /// The path as given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The path names something other than a regular file (a device, a FIFO, a
    /// directory, ...): it is refused without reading from it.
    #[error("cannot read config file {}: it is a {kind}, not a regular file", path.display())]
    NotRegular {
        /// The path as given.
        path: PathBuf,
        /// What it is instead (`"character device"`, `"FIFO"`, ...).
        kind: &'static str,
    },
    /// The input is longer than [`MAX_CONFIG_BYTES`].
    #[error(
        "config {} is larger than 1 MiB ({MAX_CONFIG_BYTES} bytes), the most rxl reads \
         (an xl.cfg is a few kilobytes)",
        path.display()
    )]
    TooLarge {
        /// The path as given, or `<stdin>`.
        path: PathBuf,
    },
}

/// The most bytes rxl reads from one config file or from stdin: 1 MiB. Real configs are a
/// few kilobytes; the bound keeps a wrong path (`/dev/zero`, a disk image) from being read
/// whole into memory.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// What kind of file `ty` is, for an error message.
fn file_kind(ty: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if ty.is_dir() {
        "directory"
    } else if ty.is_char_device() {
        "character device"
    } else if ty.is_block_device() {
        "block device"
    } else if ty.is_fifo() {
        "FIFO"
    } else if ty.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

/// Read all of `reader`, at most [`MAX_CONFIG_BYTES`]; `path` names it in errors.
pub fn read_bounded(mut reader: impl Read, path: &Path) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    // One byte past the limit tells a file at the limit from a longer one.
    let limit = u64::try_from(MAX_CONFIG_BYTES).unwrap_or(u64::MAX) + 1;
    (&mut reader)
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

/// Parse the text of `source`. Never panics, whatever the text.
pub fn parse_source(source: Arc<Source>) -> Parsed {
    let mut settings = Settings {
        source: Some(source.clone()),
        ..Settings::default()
    };
    let diagnostics = parse_into(&source, &mut settings, &[], false);
    Parsed {
        settings,
        diagnostics,
    }
}

/// Parse `text`, calling it `name` in diagnostics.
pub fn parse_str(name: &str, text: &str) -> Parsed {
    parse_source(Arc::new(Source {
        name: name.to_string(),
        text: text.to_string(),
    }))
}

/// Read and parse the file at `path`; diagnostics name it as given. Bytes that are not
/// UTF-8 are handled as by [`parse_bytes`].
///
/// Only a regular file of at most [`MAX_CONFIG_BYTES`] is read: the file is opened
/// non-blocking (a FIFO without a writer does not hang the open) and anything that is not a
/// regular file is refused before a byte is read.
pub fn parse_file(path: &Path) -> Result<Parsed, ReadError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    let ty = file.metadata().map_err(io)?.file_type();
    if !ty.is_file() {
        return Err(ReadError::NotRegular {
            path: path.to_path_buf(),
            kind: file_kind(ty),
        });
    }
    let bytes = read_bounded(file, path)?;
    Ok(parse_bytes(&path.display().to_string(), &bytes))
}

/// Parse raw bytes (a file's or stdin's), calling them `name` in diagnostics.
///
/// Bytes that are not UTF-8 are replaced by U+FFFD. Inside a comment that only earns a
/// warning; inside a string it is an error, since the value would change; elsewhere the
/// replacement character is an unexpected character like any other.
pub fn parse_bytes(name: &str, bytes: &[u8]) -> Parsed {
    let (text, invalid) = decode_lossy(bytes);
    let source = Arc::new(Source {
        name: name.to_string(),
        text,
    });
    let mut settings = Settings {
        source: Some(source.clone()),
        ..Settings::default()
    };
    let diagnostics = parse_into(&source, &mut settings, &invalid, false);
    Parsed {
        settings,
        diagnostics,
    }
}

/// Apply `xl create cfg key=value ...` arguments after the file: each argument is one line of
/// config text, in a [`Source`] named `"<command line>"`, and its assignments win over the
/// file's (`+=` adds to the file's value).
///
/// Unlike xl, a value that is a single bare word (`name=web1`, `kernel=/boot/vmlinuz`) is
/// taken as a string, as if it were quoted. Returns the diagnostics; the valid assignments
/// are applied even when some argument is broken.
pub fn apply_overrides(settings: &mut Settings, args: &[String]) -> Vec<Diagnostic> {
    if args.is_empty() {
        return Vec::new();
    }
    let mut text = String::new();
    for arg in args {
        text.push_str(arg);
        text.push('\n');
    }
    let source = Arc::new(Source {
        name: COMMAND_LINE_SOURCE.to_string(),
        text,
    });
    parse_into(&source, settings, &[], true)
}

/// Each key's position in `settings.entries` (the first, should a caller have built
/// duplicates).
fn index_of(settings: &Settings) -> HashMap<String, usize> {
    let mut index = HashMap::with_capacity(settings.entries.len());
    for (i, s) in settings.entries.iter().enumerate() {
        index.entry(s.key.clone()).or_insert(i);
    }
    index
}

/// Decode `bytes` as UTF-8, replacing invalid sequences with U+FFFD; also returns the byte
/// offsets (in the decoded text) of the replacement characters.
fn decode_lossy(bytes: &[u8]) -> (String, Vec<usize>) {
    let mut text = String::with_capacity(bytes.len());
    let mut invalid = Vec::new();
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            invalid.push(text.len());
            text.push(char::REPLACEMENT_CHARACTER);
        }
    }
    (text, invalid)
}

fn parse_into(
    source: &Arc<Source>,
    settings: &mut Settings,
    invalid_utf8: &[usize],
    lenient_bare_words: bool,
) -> Vec<Diagnostic> {
    let mut parser = Parser {
        lx: Lexer::new(source, invalid_utf8),
        ahead: VecDeque::new(),
        diags: Vec::new(),
        errors: 0,
        lenient_bare_words,
        index: index_of(settings),
        settings,
    };
    parser.run();
    let mut diags = parser.diags;
    diags.append(&mut parser.lx.diags);
    // Lexer diagnostics (escapes, CRLF, encoding) and parser ones interleave: order by place.
    diags.sort_by_key(|d| d.span.start);
    diags
}

// ---------------------------------------------------------------------------------------
// Lexer

/// Why a piece of text is not a token.
#[derive(Clone, Debug, PartialEq, Eq)]
enum LexError {
    /// A run that starts like a key or number but holds characters neither may contain:
    /// `Name`, `my-key`, `512M`, `1.5`, `0x1F`.
    BadWord,
    /// Characters that start no token, up to the next whitespace or delimiter; `python` when
    /// the first is one of `+-.():`.
    Stray { python: bool },
    /// A quote with no closing quote on the same line.
    UnterminatedString,
    /// A carriage return not followed by a line feed.
    LoneCr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Ident,
    Number,
    Str(String),
    Comma,
    LBracket,
    RBracket,
    Assign,
    AddAssign,
    Semi,
    Newline,
    Eof,
    Error(LexError),
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    start: usize,
    end: usize,
    line: u32,
    column: u32,
}

struct Lexer<'a> {
    source: &'a Arc<Source>,
    text: &'a str,
    pos: usize,
    line: u32,
    column: u32,
    /// Offsets of U+FFFD characters that replaced undecodable bytes.
    invalid_utf8: &'a [usize],
    warned_crlf: bool,
    warned_utf8_comment: bool,
    /// Diagnostics that do not break the token stream (bad escapes, CRLF, encoding).
    diags: Vec<Diagnostic>,
    /// How many of `diags` are errors.
    errors: usize,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_lowercase()
}

fn is_ident_continue(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_'
}

fn is_number_continue(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'x'
}

/// Characters that, right after a key or number, make the whole run a malformed word.
fn is_word_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-'
}

/// Characters that end a run of stray text.
fn ends_stray(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t' | b'\n' | b'\r' | b',' | b';' | b'[' | b']' | b'=' | b'#' | b'\'' | b'"'
    )
}

impl<'a> Lexer<'a> {
    fn new(source: &'a Arc<Source>, invalid_utf8: &'a [usize]) -> Lexer<'a> {
        Lexer {
            source,
            text: &source.text,
            pos: 0,
            line: 1,
            column: 1,
            invalid_utf8,
            warned_crlf: false,
            warned_utf8_comment: false,
            diags: Vec::new(),
            errors: 0,
        }
    }

    fn byte(&self, at: usize) -> Option<u8> {
        self.text.as_bytes().get(at).copied()
    }

    /// Move past one character (any UTF-8 length), keeping line and column.
    fn bump(&mut self) {
        let Some(c) = self.text.get(self.pos..).and_then(|s| s.chars().next()) else {
            return;
        };
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.column = 1;
        } else {
            self.column = self.column.saturating_add(1);
        }
    }

    fn span(&self, start: usize, end: usize, line: u32, column: u32) -> Span {
        Span {
            source: self.source.clone(),
            line,
            column,
            start,
            end,
        }
    }

    fn has_invalid_utf8(&self, start: usize, end: usize) -> Option<usize> {
        let i = self.invalid_utf8.partition_point(|&p| p < start);
        self.invalid_utf8.get(i).copied().filter(|&p| p < end)
    }

    /// A zero-based character offset inside the current line, as a span of `len` bytes at
    /// byte `at` (which must be on the current token's line).
    fn span_at(
        &self,
        tok_start: usize,
        tok_line: u32,
        tok_col: u32,
        at: usize,
        len: usize,
    ) -> Span {
        let prefix = self.text.get(tok_start..at).unwrap_or("");
        let col = tok_col.saturating_add(u32::try_from(prefix.chars().count()).unwrap_or(0));
        self.span(
            at,
            at.saturating_add(len).min(self.text.len()),
            tok_line,
            col,
        )
    }

    /// When the next thing is a bare word followed by the end of the statement, consume it
    /// and return it as a string token. Only used for command-line overrides.
    fn bare_word(&mut self) -> Option<Token> {
        while matches!(self.byte(self.pos), Some(b' ' | b'\t')) {
            self.bump();
        }
        let start = self.pos;
        let rest = self.text.get(start..)?;
        let len = rest
            .bytes()
            .position(|b| {
                matches!(
                    b,
                    b' ' | b'\t' | b'\n' | b'\r' | b';' | b'#' | b'[' | b']' | b'\'' | b'"'
                )
            })
            .unwrap_or(rest.len());
        if len == 0 {
            return None;
        }
        let word = rest.get(..len)?;
        let after = rest.get(len..)?.trim_start_matches([' ', '\t']);
        let ends = after.is_empty() || after.starts_with(['\n', ';', '#']);
        let bytes = word.as_bytes();
        let is_number = bytes.first().is_some_and(u8::is_ascii_digit)
            && bytes.iter().skip(1).all(|&b| is_number_continue(b));
        if !ends || is_number {
            return None;
        }
        let (line, column) = (self.line, self.column);
        for _ in word.chars() {
            self.bump();
        }
        Some(Token {
            tok: Tok::Str(word.to_string()),
            start,
            end: self.pos,
            line,
            column,
        })
    }

    fn next_token(&mut self) -> Token {
        loop {
            match self.byte(self.pos) {
                Some(b' ' | b'\t') => self.bump(),
                Some(b'#') => {
                    let start = self.pos;
                    let len = self
                        .text
                        .get(start..)
                        .and_then(|s| s.find('\n'))
                        .unwrap_or(self.text.len() - start);
                    let end = start + len;
                    if !self.warned_utf8_comment {
                        if let Some(at) = self.has_invalid_utf8(start, end) {
                            self.warned_utf8_comment = true;
                            let span = self.span_at(start, self.line, self.column, at, 3);
                            self.diags.push(
                                Diagnostic::warning(
                                    span,
                                    "comment contains bytes that are not UTF-8; they were replaced",
                                )
                                .with_hint("save the file as UTF-8"),
                            );
                        }
                    }
                    while self.pos < end {
                        self.bump();
                    }
                }
                _ => break,
            }
        }
        let start = self.pos;
        let (line, column) = (self.line, self.column);
        let tok = match self.byte(start) {
            None => Tok::Eof,
            Some(b) => self.token_at(b, start, line, column),
        };
        Token {
            tok,
            start,
            end: self.pos,
            line,
            column,
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) {
        while self.byte(self.pos).is_some_and(&f) {
            self.bump();
        }
    }

    fn token_at(&mut self, b: u8, start: usize, line: u32, column: u32) -> Tok {
        match b {
            b'\n' => {
                self.bump();
                Tok::Newline
            }
            b'\r' if self.byte(start + 1) == Some(b'\n') => {
                if !self.warned_crlf {
                    self.warned_crlf = true;
                    self.diags.push(
                        Diagnostic::warning(
                            self.span(start, start + 2, line, column),
                            "line ends with CR LF (DOS line endings); xl refuses such files",
                        )
                        .with_hint("convert the file with dos2unix"),
                    );
                }
                self.bump();
                self.bump();
                Tok::Newline
            }
            b'\r' => {
                self.bump();
                Tok::Error(LexError::LoneCr)
            }
            b',' => {
                self.bump();
                Tok::Comma
            }
            b'[' => {
                self.bump();
                Tok::LBracket
            }
            b']' => {
                self.bump();
                Tok::RBracket
            }
            b';' => {
                self.bump();
                Tok::Semi
            }
            b'=' => {
                self.bump();
                Tok::Assign
            }
            b'+' if self.byte(start + 1) == Some(b'=') => {
                self.bump();
                self.bump();
                Tok::AddAssign
            }
            b'\'' | b'"' => self.string(b, start, line, column),
            b if is_ident_start(b) => {
                self.bump();
                self.take_while(is_ident_continue);
                self.malformed_tail(Tok::Ident)
            }
            b if b.is_ascii_digit() => {
                self.bump();
                self.take_while(is_number_continue);
                self.malformed_tail(Tok::Number)
            }
            b if b.is_ascii_uppercase() || b == b'_' => {
                self.take_while(is_word_char);
                Tok::Error(LexError::BadWord)
            }
            b => {
                let python = matches!(b, b'+' | b'-' | b'.' | b'(' | b')' | b':');
                self.bump();
                while self.byte(self.pos).is_some_and(|c| !ends_stray(c)) {
                    self.bump();
                }
                Tok::Error(LexError::Stray { python })
            }
        }
    }

    /// After a key or number: if word characters follow that it may not contain, swallow
    /// them and make the whole run an error.
    fn malformed_tail(&mut self, ok: Tok) -> Tok {
        if self.byte(self.pos).is_some_and(is_word_char) {
            self.take_while(is_word_char);
            Tok::Error(LexError::BadWord)
        } else {
            ok
        }
    }

    fn string(&mut self, quote: u8, start: usize, line: u32, column: u32) -> Tok {
        self.bump();
        let mut value = String::new();
        let mut reported = false;
        loop {
            let at = self.pos;
            let Some(c) = self.text.get(at..).and_then(|s| s.chars().next()) else {
                return Tok::Error(LexError::UnterminatedString);
            };
            match c {
                '\n' => return Tok::Error(LexError::UnterminatedString),
                '\\' => {
                    let Some(e) = self.text.get(at + 1..).and_then(|s| s.chars().next()) else {
                        return Tok::Error(LexError::UnterminatedString);
                    };
                    if e == '\n' {
                        return Tok::Error(LexError::UnterminatedString);
                    }
                    self.bump();
                    self.bump();
                    let decoded = match e {
                        '"' | '\'' | '\\' => Some(e),
                        'a' => Some('\u{7}'),
                        'b' => Some('\u{8}'),
                        'f' => Some('\u{c}'),
                        'n' => Some('\n'),
                        'r' => Some('\r'),
                        't' => Some('\t'),
                        'v' => Some('\u{b}'),
                        _ => None,
                    };
                    match decoded {
                        Some(d) => value.push(d),
                        None if !reported => {
                            reported = true;
                            let len = 1 + e.len_utf8();
                            let span = self.span_at(start, line, column, at, len);
                            let d = if e == 'x' || ('0'..='7').contains(&e) {
                                Diagnostic::error(
                                    span,
                                    "numeric escapes (\\x.. and \\ooo) are not supported in strings",
                                )
                                .with_hint(
                                    "write the character itself; xl's libxlutil mishandles these escapes",
                                )
                            } else {
                                Diagnostic::error(span, format!("unknown escape `\\{e}` in string"))
                                    .with_hint(
                                        "the escapes are \\\" \\' \\\\ \\a \\b \\f \\n \\r \\t \\v; \
                                         write \\\\ for a backslash",
                                    )
                            };
                            self.errors += 1;
                            self.diags.push(d);
                        }
                        None => {}
                    }
                }
                c if c as u32 == u32::from(quote) => {
                    self.bump();
                    if !reported {
                        self.check_string_content(start, line, column);
                    }
                    return Tok::Str(value);
                }
                c => {
                    value.push(c);
                    self.bump();
                }
            }
        }
    }

    /// Errors for string content libxlutil cannot hold: NUL and undecodable bytes.
    fn check_string_content(&mut self, start: usize, line: u32, column: u32) {
        let end = self.pos;
        if let Some(at) = self.text.get(start..end).and_then(|s| s.find('\0')) {
            let span = self.span_at(start, line, column, start + at, 1);
            self.errors += 1;
            self.diags
                .push(Diagnostic::error(span, "string contains a NUL character"));
        } else if let Some(at) = self.has_invalid_utf8(start, end) {
            let span = self.span_at(start, line, column, at, 3);
            self.errors += 1;
            self.diags.push(
                Diagnostic::error(span, "string contains bytes that are not UTF-8")
                    .with_hint("save the file as UTF-8"),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Parser

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Assign,
    Add,
}

/// How to get going again after an error.
#[derive(Debug)]
enum Recover {
    /// Skip to the end of the statement; `depth` lists were open at the error.
    Skip { depth: usize },
    /// The statement is over (the next token starts a new one).
    Resume,
}

/// Stands in for a token when the lookahead buffer is unexpectedly empty; never produced by
/// the lexer at a real position.
const END: Token = Token {
    tok: Tok::Eof,
    start: 0,
    end: 0,
    line: 1,
    column: 1,
};

struct Parser<'a, 's> {
    lx: Lexer<'a>,
    ahead: VecDeque<Token>,
    diags: Vec<Diagnostic>,
    errors: usize,
    lenient_bare_words: bool,
    settings: &'s mut Settings,
    /// Key to position in `settings.entries`.
    index: HashMap<String, usize>,
}

/// How a token is named in messages.
fn describe(tok: &Token, text: &str) -> String {
    let t = text.get(tok.start..tok.end).unwrap_or("");
    match &tok.tok {
        Tok::Ident => format!("word `{t}`"),
        Tok::Number => format!("number `{t}`"),
        Tok::Str(_) => "a string".to_string(),
        Tok::Comma => "`,`".to_string(),
        Tok::LBracket => "`[`".to_string(),
        Tok::RBracket => "`]`".to_string(),
        Tok::Assign => "`=`".to_string(),
        Tok::AddAssign => "`+=`".to_string(),
        Tok::Semi => "`;`".to_string(),
        Tok::Newline => "end of line".to_string(),
        Tok::Eof => "end of file".to_string(),
        Tok::Error(_) => format!("`{t}`"),
    }
}

impl Parser<'_, '_> {
    /// The next token, without consuming it.
    fn peek(&mut self) -> &Token {
        self.fill(1);
        self.ahead.front().unwrap_or(&END)
    }

    /// The token after the next one.
    fn peek2(&mut self) -> &Token {
        self.fill(2);
        self.ahead.get(1).unwrap_or(&END)
    }

    fn fill(&mut self, n: usize) {
        while self.ahead.len() < n {
            let t = self.lx.next_token();
            self.ahead.push_back(t);
        }
    }

    fn next(&mut self) -> Token {
        match self.ahead.pop_front() {
            Some(t) => t,
            None => self.lx.next_token(),
        }
    }

    fn text_of(&self, tok: &Token) -> &str {
        self.lx.text.get(tok.start..tok.end).unwrap_or("")
    }

    fn span_of(&self, tok: &Token) -> Span {
        self.lx.span(tok.start, tok.end, tok.line, tok.column)
    }

    fn error(&mut self, d: Diagnostic) {
        self.errors += 1;
        self.diags.push(d);
    }

    fn run(&mut self) {
        loop {
            if self.errors.saturating_add(self.lx.errors) >= MAX_ERRORS {
                let t = self.peek().clone();
                let span = self.span_of(&t);
                self.diags.push(Diagnostic::error(
                    span,
                    format!("too many errors ({MAX_ERRORS}); giving up on the rest of the input"),
                ));
                return;
            }
            match self.peek().tok {
                Tok::Eof => return,
                Tok::Newline | Tok::Semi => {
                    self.next();
                }
                _ => match self.statement() {
                    Ok(()) => {}
                    Err(Recover::Resume) => {}
                    Err(Recover::Skip { depth }) => self.skip_statement(depth),
                },
            }
        }
    }

    /// Skip tokens up to and including the end of the broken statement: a newline or `;`
    /// outside brackets. Inside brackets, a line starting with `key =` also ends it (the list
    /// was never closed).
    fn skip_statement(&mut self, mut depth: usize) {
        let mut line_start = false;
        loop {
            if depth > 0 && line_start && self.starts_assignment() {
                return;
            }
            let t = self.next();
            line_start = false;
            match t.tok {
                Tok::Eof => {
                    self.ahead.push_front(t);
                    return;
                }
                Tok::Newline if depth == 0 => return,
                Tok::Semi if depth == 0 => return,
                Tok::Newline => line_start = true,
                Tok::LBracket => depth = depth.saturating_add(1),
                Tok::RBracket => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }

    fn starts_assignment(&mut self) -> bool {
        matches!(self.peek().tok, Tok::Ident)
            && matches!(self.peek2().tok, Tok::Assign | Tok::AddAssign)
    }

    fn statement(&mut self) -> Result<(), Recover> {
        let key_tok = self.next();
        let key_span = self.span_of(&key_tok);
        let key_text = self.text_of(&key_tok).to_string();
        match &key_tok.tok {
            Tok::Ident => {}
            Tok::Error(e) => {
                let d = self.bad_key(e, &key_text, key_span);
                self.error(d);
                self.ahead.push_front(key_tok);
                return Err(Recover::Skip { depth: 0 });
            }
            Tok::Str(_) => {
                let d = Diagnostic::error(key_span, "expected a key, found a string")
                    .with_hint("keys are not quoted: name = \"guest\"");
                self.error(d);
                return Err(Recover::Skip { depth: 0 });
            }
            _ => {
                let what = describe(&key_tok, self.lx.text);
                let d = Diagnostic::error(
                    key_span,
                    format!("expected a key at the start of a statement, found {what}"),
                );
                self.error(d);
                self.ahead.push_front(key_tok);
                return Err(Recover::Skip { depth: 0 });
            }
        }

        let op_tok = self.next();
        let op = match op_tok.tok {
            Tok::Assign => Op::Assign,
            Tok::AddAssign => Op::Add,
            _ => {
                let what = describe(&op_tok, self.lx.text);
                let span = self.span_of(&op_tok);
                let d = if let Tok::Error(e) = &op_tok.tok {
                    let text = self.text_of(&op_tok).to_string();
                    self.lex_error(e, &text, span, None)
                } else {
                    let d = Diagnostic::error(
                        span,
                        format!("expected `=` or `+=` after key `{key_text}`, found {what}"),
                    );
                    if PYTHON_WORDS.contains(&key_text.as_str()) {
                        d.with_hint(PYTHON_HINT)
                    } else {
                        d.with_hint(format!("assign a value: {key_text} = \"...\""))
                    }
                };
                self.error(d);
                self.ahead.push_front(op_tok);
                return Err(Recover::Skip { depth: 0 });
            }
        };

        let value = if self.lenient_bare_words && self.ahead.is_empty() {
            match self.lx.bare_word() {
                Some(t) => self.atom(t),
                None => self.value(&key_text, 0)?,
            }
        } else {
            self.value(&key_text, 0)?
        };

        let end = self.next();
        match end.tok {
            Tok::Newline | Tok::Semi => {}
            Tok::Eof => self.ahead.push_front(end),
            _ => {
                let what = describe(&end, self.lx.text);
                let span = self.span_of(&end);
                let mut d = Diagnostic::error(
                    span.clone(),
                    format!("expected the end of the statement after the value of `{key_text}`, found {what}"),
                );
                d = match &end.tok {
                    Tok::Error(e) => {
                        let text = self.text_of(&end).to_string();
                        self.lex_error(e, &text, span, None)
                    }
                    Tok::Ident if matches!(self.peek().tok, Tok::Assign | Tok::AddAssign) => d
                        .with_hint(
                            "put each assignment on its own line, or separate them with `;`",
                        ),
                    Tok::Str(_) | Tok::Number => {
                        d.with_hint("one value per key; use a list for several: [\"a\", \"b\"]")
                    }
                    _ => d,
                };
                self.error(d);
                self.ahead.push_front(end);
                return Err(Recover::Skip { depth: 0 });
            }
        }

        if let Err(d) = store(
            self.settings,
            &mut self.index,
            key_text,
            key_span,
            op,
            value,
        ) {
            self.error(*d);
        }
        Ok(())
    }

    fn atom(&self, t: Token) -> Value {
        let span = self.span_of(&t);
        let kind = match t.tok {
            Tok::Str(s) => ValueKind::String(s),
            _ => ValueKind::Number(self.text_of(&t).to_string()),
        };
        Value { kind, span }
    }

    fn bad_key(&self, e: &LexError, text: &str, span: Span) -> Diagnostic {
        match e {
            LexError::BadWord => {
                let lower = text.to_ascii_lowercase();
                if is_valid_key(&lower) {
                    Diagnostic::error(span, format!("invalid key `{text}`: keys are lowercase"))
                        .with_hint(format!("write `{lower}`"))
                } else {
                    let fixed = lower.replace('-', "_");
                    let rule = "a key starts with a-z and holds only a-z, 0-9, `_` and `.`";
                    let hint = if is_valid_key(&fixed) {
                        format!("{rule}: `{fixed}`?")
                    } else {
                        rule.to_string()
                    };
                    Diagnostic::error(span, format!("invalid key `{text}`")).with_hint(hint)
                }
            }
            other => self.lex_error(other, text, span, None),
        }
    }

    /// The diagnostic for a lexical error; `value_at` is set when the error is where a value
    /// should be.
    fn lex_error(
        &self,
        e: &LexError,
        text: &str,
        span: Span,
        value_at: Option<ValueAt<'_>>,
    ) -> Diagnostic {
        match e {
            LexError::UnterminatedString => {
                let quote = text.chars().next().unwrap_or('"');
                Diagnostic::error(span, "unterminated string").with_hint(format!(
                    "close the string with {quote} on the same line; strings cannot span lines"
                ))
            }
            LexError::LoneCr => Diagnostic::error(span, "stray carriage return")
                .with_hint("lines end with a line feed; convert the file with dos2unix"),
            LexError::BadWord => match &value_at {
                Some(v) if text.starts_with(|c: char| c.is_ascii_digit()) => {
                    let lower = text.to_ascii_lowercase();
                    let assign = if v.depth == 0 {
                        format!("{} = ", v.key)
                    } else {
                        String::new()
                    };
                    let hint = if is_number(&lower) {
                        format!("hex digits must be lowercase: {assign}{lower}")
                    } else {
                        format!(
                            "numbers are integers (decimal, 0x hex or 0 octal); quote anything else: {assign}\"{text}\""
                        )
                    };
                    Diagnostic::error(span, format!("invalid number `{text}`")).with_hint(hint)
                }
                Some(v) => self.bare_value(v.tok, v.key, v.depth),
                None => Diagnostic::error(span, format!("unexpected `{text}`")),
            },
            LexError::Stray { python } => {
                let shown = text.chars().next().map(String::from).unwrap_or_default();
                let neg = text.len() > 1
                    && text.starts_with('-')
                    && text
                        .get(1..)
                        .is_some_and(|t| t.starts_with(|c: char| c.is_ascii_digit()));
                let wordish = !python || text.starts_with(['.', '-', '+']) && text.len() > 1;
                match &value_at {
                    Some(v) if neg => {
                        let assign = if v.depth == 0 {
                            format!("{} = ", v.key)
                        } else {
                            String::new()
                        };
                        Diagnostic::error(span, format!("`{text}` is not a value")).with_hint(
                            format!("negative numbers must be quoted: {assign}\"{text}\""),
                        )
                    }
                    Some(v) if wordish => self.bare_value(v.tok, v.key, v.depth),
                    _ => {
                        let d = Diagnostic::error(span, format!("unexpected `{shown}`"));
                        if *python {
                            d.with_hint(PYTHON_HINT)
                        } else if shown.chars().next().is_some_and(char::is_whitespace) {
                            d.with_hint("only spaces and tabs separate tokens")
                        } else {
                            d
                        }
                    }
                }
            }
        }
    }

    /// "Unquoted value" for a word where a value should be; the span and the suggested
    /// string cover the whole word up to whitespace or a delimiter, not just one token.
    fn bare_value(&self, tok: &Token, key: &str, depth: usize) -> Diagnostic {
        let rest = self.lx.text.get(tok.start..).unwrap_or("");
        let len = rest.find(ends_bare_run).unwrap_or(rest.len());
        let end = (tok.start + len).max(tok.end);
        let word = self.lx.text.get(tok.start..end).unwrap_or("");
        let span = self.lx.span(tok.start, end, tok.line, tok.column);
        let quoted = word.replace('\\', "\\\\");
        let hint = if depth == 0 {
            format!("strings need quotes: {key} = \"{quoted}\"")
        } else {
            format!("strings need quotes, in lists too: \"{quoted}\"")
        };
        let d = Diagnostic::error(span, format!("unquoted value `{word}`"));
        if word.contains(['(', ')']) {
            d.with_hint(PYTHON_HINT)
        } else {
            d.with_hint(hint)
        }
    }

    /// A value at nesting `depth` (0: the statement's value).
    fn value(&mut self, key: &str, depth: usize) -> Result<Value, Recover> {
        let t = self.next();
        match &t.tok {
            Tok::Str(_) | Tok::Number => Ok(self.atom(t)),
            Tok::LBracket => self.list(key, t, depth + 1),
            Tok::Ident => {
                let d = self.bare_value(&t, key, depth);
                self.error(d);
                Err(Recover::Skip { depth })
            }
            Tok::Error(e) => {
                let text = self.text_of(&t).to_string();
                let at = Some(ValueAt {
                    key,
                    depth,
                    tok: &t,
                });
                let d = self.lex_error(e, &text, self.span_of(&t), at);
                self.error(d);
                self.ahead.push_front(t);
                Err(Recover::Skip { depth })
            }
            _ => {
                let what = describe(&t, self.lx.text);
                let span = self.span_of(&t);
                let d = if depth == 0 {
                    Diagnostic::error(span, format!("missing value for `{key}`, found {what}"))
                        .with_hint(format!(
                            "a value is a \"string\", a number or a [list]: {key} = \"...\""
                        ))
                } else {
                    Diagnostic::error(span, format!("expected a list item, found {what}"))
                };
                self.error(d);
                self.ahead.push_front(t);
                Err(Recover::Skip { depth })
            }
        }
    }

    /// Skip newlines (and comments) inside brackets; true if any.
    fn skip_newlines(&mut self) -> bool {
        let mut any = false;
        while matches!(self.peek().tok, Tok::Newline) {
            self.next();
            any = true;
        }
        any
    }

    /// The rest of a list whose `[` is `open`; `depth` counts it.
    fn list(&mut self, key: &str, open: Token, depth: usize) -> Result<Value, Recover> {
        let open_span = self.span_of(&open);
        if depth > MAX_LIST_DEPTH {
            let d = Diagnostic::error(
                open_span,
                format!("lists nested more than {MAX_LIST_DEPTH} deep"),
            );
            self.error(d);
            return Err(Recover::Skip { depth });
        }
        let mut items = Vec::new();
        let mut newline = self.skip_newlines();
        let close = if matches!(self.peek().tok, Tok::RBracket) {
            self.next()
        } else {
            loop {
                // An item is due here.
                if (newline && self.starts_assignment()) || matches!(self.peek().tok, Tok::Eof) {
                    return Err(self.unclosed(open_span));
                }
                let item = self.value(key, depth)?;
                items.push(item);
                let newline_before = self.skip_newlines();
                let t = self.next();
                match t.tok {
                    Tok::RBracket => break t,
                    Tok::Comma => {
                        newline = self.skip_newlines();
                        if matches!(self.peek().tok, Tok::RBracket) {
                            break self.next();
                        }
                    }
                    _ => {
                        self.ahead.push_front(t.clone());
                        if matches!(t.tok, Tok::Eof) || (newline_before && self.starts_assignment())
                        {
                            return Err(self.unclosed(open_span));
                        }
                        let what = describe(&t, self.lx.text);
                        let span = self.span_of(&t);
                        let mut d = Diagnostic::error(
                            span,
                            format!("expected `,` or `]` in list, found {what}"),
                        );
                        if let Tok::Error(LexError::Stray { python: true }) = t.tok {
                            d = d.with_hint(PYTHON_HINT);
                        } else if matches!(t.tok, Tok::Str(_) | Tok::Number | Tok::LBracket) {
                            d = d.with_hint("separate list items with `,`");
                        }
                        self.error(d);
                        return Err(Recover::Skip { depth });
                    }
                }
            }
        };
        let span = self.lx.span(open.start, close.end, open.line, open.column);
        Ok(Value {
            kind: ValueKind::List(items),
            span,
        })
    }

    fn unclosed(&mut self, open_span: Span) -> Recover {
        let d = Diagnostic::error(open_span, "unclosed `[`: the list has no `]`")
            .with_hint("close the list with `]`");
        self.error(d);
        Recover::Resume
    }
}

const PYTHON_HINT: &str = "this looks like Python; xl.cfg is not Python: values are \"strings\", \
                           numbers or [lists], with no expressions";

/// Python statements that start like a key (`import os`, `if x:`), for the Python hint.
const PYTHON_WORDS: &[&str] = &[
    "import", "from", "def", "if", "elif", "else", "for", "while", "return", "print", "try",
    "except", "with", "class",
];

/// Where a value was expected: for the messages about what was found instead.
struct ValueAt<'t> {
    /// The key being assigned.
    key: &'t str,
    /// List nesting at that point.
    depth: usize,
    /// The offending token.
    tok: &'t Token,
}

/// Characters that end an unquoted word in a value, for the "needs quotes" message.
fn ends_bare_run(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | '[' | ']' | ';' | '#' | '\'' | '"')
}

/// Whether `s` is a valid key: `[a-z][._0-9a-z]*`.
pub fn is_valid_key(s: &str) -> bool {
    let b = s.as_bytes();
    b.first().is_some_and(|&c| is_ident_start(c)) && b.iter().skip(1).all(|&c| is_ident_continue(c))
}

/// Whether `s` is a number token: `[0-9][0-9a-fx]*`.
fn is_number(s: &str) -> bool {
    let b = s.as_bytes();
    b.first().is_some_and(u8::is_ascii_digit) && b.iter().skip(1).all(|&c| is_number_continue(c))
}

/// Apply one assignment to `settings`: `=` replaces (last wins), `+=` concatenates strings
/// or appends lists, or stores when the key has no value yet.
///
/// `index` maps each key of `settings` to its entry, so a store costs O(1), not O(keys).
fn store(
    settings: &mut Settings,
    index: &mut HashMap<String, usize>,
    key: String,
    key_span: Span,
    op: Op,
    value: Value,
) -> Result<(), Box<Diagnostic>> {
    let existing = index
        .get(&key)
        .copied()
        .and_then(|i| settings.entries.get_mut(i));
    let Some(existing) = existing else {
        index.insert(key.clone(), settings.entries.len());
        settings.entries.push(Setting {
            key,
            key_span,
            value,
        });
        return Ok(());
    };
    if op == Op::Assign {
        existing.key_span = key_span;
        existing.value = value;
        return Ok(());
    }
    let old = &mut existing.value;
    match (&mut old.kind, value.kind) {
        (ValueKind::List(items), ValueKind::List(more)) => {
            items.extend(more);
            Ok(())
        }
        (
            ValueKind::String(a) | ValueKind::Number(a),
            ValueKind::String(b) | ValueKind::Number(b),
        ) => {
            let mut joined = std::mem::take(a);
            joined.push_str(&b);
            old.kind = ValueKind::String(joined);
            Ok(())
        }
        (old_kind, _) => {
            let msg = if matches!(old_kind, ValueKind::List(_)) {
                format!("cannot add a string to the list `{key}`")
            } else {
                format!("cannot add a list to the string `{key}`")
            };
            Err(Box::new(
                Diagnostic::error(value.span, msg)
                    .with_note(old.span.clone(), "the earlier value is here")
                    .with_hint("`+=` joins strings to strings and lists to lists"),
            ))
        }
    }
}

#[cfg(test)]
mod tests;
