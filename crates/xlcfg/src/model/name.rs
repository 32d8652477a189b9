//! Which domain names rxl accepts.
//!
//! libxl (Xen 4.17) checks nothing in a name's text: `xl` needs the `name` key, and
//! `libxl__domain_rename` only refuses a non-empty name another domain already has. The
//! name is a xenstore value (`/local/domain/N/name`, `/vm/UUID/name`), not a path, so
//! xenstore does not restrict its characters either. rxl refuses more, because every name
//! also becomes part of rxl's own file names (docs/config-differences.md says why, rule by
//! rule):
//!
//! - empty, `.` and `..`;
//! - any `/` (xl itself puts the name in its log file's path, `xl-NAME.log`);
//! - all digits (every xl command would read it as a domain id);
//! - control characters;
//! - more than [`MAX_NAME_LEN`] bytes.

use std::fmt;

/// The longest domain name rxl accepts, in bytes.
///
/// rxl's files named after a domain (name index, restart marks, monitor log) use the name's
/// bytes in hex, two characters a byte, and a file name holds at most 255 bytes on Linux
/// (`NAME_MAX`). 100 bytes leave room for a rename-restart suffix (`-` and a number up to
/// 4294967295: 11 bytes), the `.log` extension and a temporary-file decoration:
/// 2 × (100 + 11) + 4 = 226 bytes.
pub const MAX_NAME_LEN: usize = 100;

/// Why a name is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameError {
    /// The empty string.
    Empty,
    /// `.` or `..`.
    Dots,
    /// The name holds a `/`.
    Slash,
    /// Only ASCII digits.
    AllDigits,
    /// A control character (newline, tab, NUL, ...).
    Control(char),
    /// Longer than [`MAX_NAME_LEN`] bytes.
    TooLong(usize),
}

impl NameError {
    /// What to do about it.
    pub fn hint(&self) -> String {
        match self {
            NameError::TooLong(_) => format!(
                "shorten the name to at most {MAX_NAME_LEN} bytes (each byte becomes two \
                 characters of rxl's file names, which Linux limits to 255)"
            ),
            NameError::AllDigits => "add a letter: xl commands take a number as a domain id".into(),
            _ => "use letters, digits, '-', '_' and '.'".into(),
        }
    }
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => f.write_str("the domain name is empty"),
            NameError::Dots => {
                f.write_str("the domain name is `.` or `..`, which name directories, not files")
            }
            NameError::Slash => f.write_str(
                "the domain name contains '/': file names made from it would lead into other \
                 directories",
            ),
            NameError::AllDigits => f.write_str(
                "the domain name is all digits: xl commands would take it as a domain id",
            ),
            NameError::Control(c) => {
                write!(f, "the domain name contains the control character {c:?}")
            }
            NameError::TooLong(len) => write!(
                f,
                "the domain name is {len} bytes long; the limit is {MAX_NAME_LEN} bytes"
            ),
        }
    }
}

impl std::error::Error for NameError {}

/// Whether rxl accepts `name` as a domain name (see the module documentation).
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        Err(NameError::Empty)
    } else if name == "." || name == ".." {
        Err(NameError::Dots)
    } else if name.contains('/') {
        Err(NameError::Slash)
    } else if name.bytes().all(|b| b.is_ascii_digit()) {
        Err(NameError::AllDigits)
    } else if let Some(c) = name.chars().find(|c| c.is_control()) {
        Err(NameError::Control(c))
    } else if name.len() > MAX_NAME_LEN {
        Err(NameError::TooLong(name.len()))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(check_name(""), Err(NameError::Empty));
        assert_eq!(check_name(".."), Err(NameError::Dots));
        assert_eq!(check_name("a/b"), Err(NameError::Slash));
        assert_eq!(check_name("../../x"), Err(NameError::Slash));
        assert_eq!(check_name("007"), Err(NameError::AllDigits));
        assert_eq!(check_name("a\0b"), Err(NameError::Control('\0')));
        assert_eq!(
            check_name(&"x".repeat(MAX_NAME_LEN + 1)),
            Err(NameError::TooLong(MAX_NAME_LEN + 1))
        );
        for ok in ["web1", "a..b", ".x", "Domain-0", "guest 2", "-x"] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
    }
}
