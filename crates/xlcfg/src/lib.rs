//! xl.cfg for rxl: a parser compatible with Xen's libxlutil that keeps every value's span,
//! diagnostics in `FILE:LINE:COL: error: ...` form, and the typed domain model.

#![forbid(unsafe_code)]

pub mod hostconf;
pub mod model;
pub mod parse;
pub mod settings;

pub use model::{build, check_files, Boot, Built, DomainConfig, DomainType, Firmware, Located};
pub use parse::{apply_overrides, parse_file, parse_source, parse_str, Parsed, ReadError};
pub use settings::{Diagnostic, Setting, Settings, Severity, Source, Span, Value, ValueKind};
