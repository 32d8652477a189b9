//! `rxl config parse` and `rxl config check`.

use std::process::ExitCode;

use serde_json::json;
use xlcfg::Diagnostic;

use crate::cli::ConfigCommand;
use crate::load;
use crate::report::{out, print_diagnostics, print_json, Reported};

pub fn run(cmd: ConfigCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ConfigCommand::Parse { file, json } => parse(&file, json),
        ConfigCommand::Check(args) => {
            // A check is about the file, on any machine: xl's built-in vif defaults.
            let defaults = xlcfg::model::VifDefaults::default();
            let loaded = load::load(&args.file, &args.overrides, false, &defaults)?;
            let mut errors = xlcfg::model::check_files(&loaded.config);
            errors.retain(Diagnostic::is_error);
            if !errors.is_empty() {
                print_diagnostics(&errors);
                return Err(Reported.into());
            }
            let cfg = &loaded.config;
            out(format_args!(
                "{}: ok: {} guest \"{}\", {} boot, {} MiB, {} vCPU(s)\n",
                args.file.display(),
                cfg.domain_type.as_str(),
                cfg.name,
                cfg.boot.kind(),
                cfg.memory_mib,
                cfg.vcpus
            ));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn parse(file: &std::path::Path, json: bool) -> anyhow::Result<ExitCode> {
    let input = load::read(file)?;
    let parsed = &input.parsed;
    print_diagnostics(&parsed.diagnostics);
    if parsed.has_errors() {
        if json {
            let errors: Vec<_> = parsed
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .map(
                    |d| json!({"line": d.span.line, "column": d.span.column, "message": d.message}),
                )
                .collect();
            print_json(&json!({"file": input.display, "errors": errors}));
        }
        return Err(Reported.into());
    }
    if json {
        print_json(&json!({"file": input.display, "settings": parsed.settings.to_json()}));
    } else {
        for setting in parsed.settings.iter() {
            out(format_args!(
                "{} = {}\n",
                setting.key,
                render_value(&setting.value)
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A value in xl.cfg syntax (strings double-quoted with escapes, numbers bare).
fn render_value(value: &xlcfg::Value) -> String {
    match &value.kind {
        xlcfg::ValueKind::Number(n) => n.clone(),
        xlcfg::ValueKind::String(s) => {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\t' => out.push_str("\\t"),
                    '\r' => out.push_str("\\r"),
                    '\x07' => out.push_str("\\a"),
                    '\x08' => out.push_str("\\b"),
                    '\x0b' => out.push_str("\\v"),
                    '\x0c' => out.push_str("\\f"),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        xlcfg::ValueKind::List(items) => {
            let inner: Vec<String> = items.iter().map(render_value).collect();
            format!("[ {} ]", inner.join(", "))
        }
    }
}
