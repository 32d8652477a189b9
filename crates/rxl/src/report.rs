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

/// Writes to stdout and flushes.
pub fn try_out(args: fmt::Arguments<'_>) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)?;
    out.flush()
}

/// Writes to stdout. When the reader has gone away (`rxl list | head -n 1`), rxl stops
/// quietly with status 141, what a shell shows for a C tool killed by SIGPIPE; any other
/// write error stops it with status 1 and says why. (Only for commands with nothing left to
/// do after their output.)
pub fn out(args: fmt::Arguments<'_>) {
    if let Err(e) = try_out(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("rxl: error: cannot write the output: {e}");
        std::process::exit(1);
    }
}

/// A JSON value as rxl prints it: pretty, with a final newline.
pub fn json_text(value: &serde_json::Value) -> String {
    // Rendering a Value cannot fail (its map keys are strings); keep a fallback anyway.
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()) + "\n"
}

/// Print a JSON value on stdout, pretty (see [`out`] for a closed stdout).
pub fn print_json(value: &serde_json::Value) {
    out(format_args!("{}", json_text(value)));
}
