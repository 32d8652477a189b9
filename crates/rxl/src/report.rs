//! Printing diagnostics and results.

use std::fmt;

use xlcfg::Diagnostic;

/// An error whose message has already been printed (diagnostics on stderr): `main` exits 1
/// without printing it again.
#[derive(Debug)]
pub struct Reported;

impl fmt::Display for Reported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("errors were reported")
    }
}

impl std::error::Error for Reported {}

/// Print diagnostics to stderr in `FILE:LINE:COL: error: ...` form.
pub fn print_diagnostics<'a>(diags: impl IntoIterator<Item = &'a Diagnostic>) {
    let mut out = String::new();
    for d in diags {
        out.push_str(&d.render());
    }
    eprint!("{out}");
}

/// Print a JSON value on stdout, pretty.
pub fn print_json(value: &serde_json::Value) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(err) => eprintln!("rxl: error: cannot render JSON: {err}"),
    }
}
