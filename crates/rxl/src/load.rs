//! Reading a config file (or stdin) into settings and a domain model.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use xlcfg::model::{DomainConfig, VifDefaults};
use xlcfg::parse::Parsed;
use xlcfg::Diagnostic;

use crate::report::{print_diagnostics, Reported};

/// A parsed config file.
pub struct Input {
    /// The absolute path of the file, or `<stdin>`.
    pub display: String,
    /// The directory relative paths resolve against.
    pub base_dir: PathBuf,
    /// The parse result.
    pub parsed: Parsed,
}

/// Parse `file` (`-` is stdin). I/O errors, a file that is not a regular file and input over
/// [`xlcfg::parse::MAX_CONFIG_BYTES`] are returned as errors; syntax errors are in `parsed`.
pub fn read(file: &Path) -> anyhow::Result<Input> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    if file == Path::new("-") {
        let bytes = xlcfg::parse::read_bounded(std::io::stdin().lock(), Path::new("<stdin>"))?;
        let parsed = xlcfg::parse::parse_bytes("<stdin>", &bytes);
        return Ok(Input {
            display: "<stdin>".into(),
            base_dir: cwd,
            parsed,
        });
    }
    let abs = std::path::absolute(file).unwrap_or_else(|_| cwd.join(file));
    let parsed = xlcfg::parse::parse_file(file)?;
    let base_dir = abs.parent().map(Path::to_path_buf).unwrap_or(cwd);
    Ok(Input {
        display: abs.display().to_string(),
        base_dir,
        parsed,
    })
}

/// A validated domain config.
pub struct Loaded {
    /// The domain.
    pub config: DomainConfig,
}

/// Parse, apply overrides and build the domain model, a vif that does not name its bridge,
/// script, backend or gateway device getting `vif_defaults` (the host's xl.conf, or xl's
/// built-in defaults). Diagnostics are printed to stderr (warnings only when `!quiet`);
/// any error returns [`Reported`].
pub fn load(
    file: &Path,
    overrides: &[String],
    quiet: bool,
    vif_defaults: &VifDefaults,
) -> anyhow::Result<Loaded> {
    let mut input = read(file)?;
    let mut diags = std::mem::take(&mut input.parsed.diagnostics);
    if !diags.iter().any(Diagnostic::is_error) {
        diags.extend(xlcfg::parse::apply_overrides(
            &mut input.parsed.settings,
            overrides,
        ));
    }
    if diags.iter().any(Diagnostic::is_error) {
        print_diagnostics(&diags);
        return Err(Reported.into());
    }
    match xlcfg::model::build_with(&input.parsed.settings, &input.base_dir, vif_defaults) {
        Ok(built) => {
            diags.extend(built.warnings);
            if !quiet {
                print_diagnostics(&diags);
            }
            Ok(Loaded {
                config: built.config,
            })
        }
        Err(errors) => {
            let shown: Vec<&Diagnostic> = diags
                .iter()
                .chain(errors.iter())
                .filter(|d| !quiet || d.is_error())
                .collect();
            print_diagnostics(shown);
            Err(Reported.into())
        }
    }
}
