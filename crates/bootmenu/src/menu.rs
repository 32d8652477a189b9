//! A parsed boot menu and pygrub's rules for picking one of its entries.

use crate::pytext::py_int;

/// One boot entry as pygrub's parsers leave it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// The title (`menuentry`, `title` or `label`), stripped.
    pub title: String,
    /// The kernel path, without any `(hdX,Y)` prefix; `None` when the entry
    /// has no kernel line (pygrub then fails on this partition).
    pub kernel: Option<String>,
    /// The initrd path; `Some("")` boots without one, as in pygrub.
    pub initrd: Option<String>,
    /// The kernel command line, as pygrub keeps it (`None` or text).
    pub args: Option<String>,
}

/// A parsed configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Menu {
    /// The entries, submenus flattened, in file order.
    pub entries: Vec<Entry>,
    /// The default entry's index as the file gives it (possibly out of
    /// range; [`Menu::select`] applies pygrub's fallback).
    pub default: usize,
}

/// A configuration file that pygrub's parser refuses (pygrub then moves
/// on to the next partition).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ConfigError {
    /// The file inside the guest.
    pub file: String,
    /// The 1-based line the parser stopped at.
    pub line: usize,
    /// What is wrong there.
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(file: &str, line: usize, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_owned(),
            line,
            message: message.into(),
        }
    }
}

impl Menu {
    /// pygrub's `image_index` then `--entry`: the default index when it
    /// names an entry (else the first), overridden by `entry` when that is
    /// a Python integer in range or else the exact title of an entry.
    /// `None` for an empty menu.
    pub fn select(&self, entry: Option<&str>) -> Option<usize> {
        let n = self.entries.len();
        if n == 0 {
            return None;
        }
        let mut sel = if self.default < n { self.default } else { 0 };
        if let Some(e) = entry {
            let idx = match py_int(e) {
                Some(i) => usize::try_from(i).ok(),
                None => self.entries.iter().position(|x| x.title == e),
            };
            if let Some(i) = idx.filter(|&i| i < n) {
                sel = i;
            }
        }
        Some(sel)
    }
}

/// Turn a non-negative Python integer into an index (saturating).
pub(crate) fn index_of(v: i64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn menu(titles: &[&str], default: usize) -> Menu {
        Menu {
            entries: titles
                .iter()
                .map(|t| Entry {
                    title: (*t).to_owned(),
                    ..Entry::default()
                })
                .collect(),
            default,
        }
    }

    #[test]
    fn default_out_of_range_falls_back_to_the_first() {
        assert_eq!(menu(&["a", "b"], 1).select(None), Some(1));
        assert_eq!(menu(&["a", "b"], 2).select(None), Some(0));
        assert_eq!(menu(&["a", "b"], 7).select(None), Some(0));
        assert_eq!(menu(&[], 0).select(None), None);
    }

    #[test]
    fn entry_by_number_then_by_title() {
        let m = menu(&["a", "1", "c"], 0);
        assert_eq!(m.select(Some("2")), Some(2));
        assert_eq!(m.select(Some(" +2 ")), Some(2));
        // A number wins over a title that spells it.
        assert_eq!(m.select(Some("1")), Some(1));
        assert_eq!(m.select(Some("c")), Some(2));
        // Out of range or unknown: the default stays.
        assert_eq!(m.select(Some("3")), Some(0));
        assert_eq!(m.select(Some("-1")), Some(0));
        assert_eq!(m.select(Some("zz")), Some(0));
        // A number out of range is not looked up as a title.
        let m = menu(&["a", "9"], 0);
        assert_eq!(m.select(Some("9")), Some(0));
    }
}
