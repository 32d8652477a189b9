//! Man pages and shell completions, generated from rxl's clap definitions.

use std::path::Path;

use anyhow::{bail, Context as _};
use clap::CommandFactory as _;

/// Every generated file: (path under docs/, contents).
fn render() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    let cmd = rxl::cli::Cli::command();

    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    files.push(("man/rxl.1".to_string(), page));
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() {
            continue;
        }
        let name = format!("rxl-{}", sub.get_name());
        let mut page = Vec::new();
        clap_mangen::Man::new(sub.clone().name(name.clone())).render(&mut page)?;
        files.push((format!("man/{name}.1"), page));
    }

    let reference = crate::repo_root().join("docs").join("config-reference.md");
    let text = std::fs::read_to_string(&reference)
        .with_context(|| format!("cannot read {}", reference.display()))?;
    files.push((
        "man/rxl.cfg.5".to_string(),
        markdown_to_man(&text, "RXL.CFG", 5).into_bytes(),
    ));

    for (shell, file) in [
        (clap_complete::Shell::Bash, "rxl.bash"),
        (clap_complete::Shell::Zsh, "_rxl"),
        (clap_complete::Shell::Fish, "rxl.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), "rxl", &mut out);
        files.push((format!("completions/{file}"), out));
    }
    Ok(files)
}

/// Write the generated files under `docs`.
pub fn generate(docs: &Path) -> anyhow::Result<()> {
    for (rel, contents) in render()? {
        let path = docs.join(&rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("xtask: wrote {}", path.display());
    }
    Ok(())
}

/// Fail when a committed file differs from what `generate` would write.
pub fn check(docs: &Path) -> anyhow::Result<()> {
    let mut stale = Vec::new();
    for (rel, contents) in render()? {
        match std::fs::read(docs.join(&rel)) {
            Ok(old) if old == contents => {}
            _ => stale.push(rel),
        }
    }
    if !stale.is_empty() {
        bail!(
            "docs/ is out of date ({}): run `cargo xtask docs` and commit",
            stale.join(", ")
        );
    }
    Ok(())
}

/// Escape text for roff: backslashes, and a leading dot or quote.
fn roff_escape(text: &str) -> String {
    let t = text.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

/// Inline markdown (`code`, **bold**, [text](link)) to roff fonts.
fn roff_inline(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(['`', '*', '[']) {
        out.push_str(&roff_escape(&rest[..i]));
        let tail = &rest[i..];
        if let Some(inner) = tail.strip_prefix('`') {
            if let Some(end) = inner.find('`') {
                out.push_str(&format!("\\fB{}\\fR", roff_escape(&inner[..end])));
                rest = &inner[end + 1..];
                continue;
            }
        } else if let Some(inner) = tail.strip_prefix("**") {
            if let Some(end) = inner.find("**") {
                out.push_str(&format!("\\fB{}\\fR", roff_escape(&inner[..end])));
                rest = &inner[end + 2..];
                continue;
            }
        } else if let Some(inner) = tail.strip_prefix('[') {
            if let Some(close) = inner.find("](") {
                if let Some(end) = inner[close..].find(')') {
                    out.push_str(&roff_escape(&inner[..close]));
                    rest = &inner[close + end + 1..];
                    continue;
                }
            }
        }
        out.push_str(&roff_escape(&tail[..1]));
        rest = &tail[1..];
    }
    out.push_str(&roff_escape(rest));
    out
}

/// A small Markdown-to-man converter for docs/config-reference.md: headings, paragraphs,
/// bullet lists, fenced code and tables (one tagged paragraph per row).
pub fn markdown_to_man(md: &str, title: &str, section: u8) -> String {
    let mut out = format!(".TH {title} {section} \"\" \"rxl\" \"rxl manual\"\n");
    let mut in_code = false;
    let mut header: Vec<String> = Vec::new();
    for line in md.lines() {
        if line.trim_start().starts_with("```") {
            out.push_str(if in_code {
                ".fi\n.RE\n"
            } else {
                ".RS 4\n.nf\n"
            });
            in_code = !in_code;
            continue;
        }
        if in_code {
            out.push_str(&roff_escape(line));
            out.push('\n');
            continue;
        }
        let trimmed = line.trim();
        if let Some(h) = trimmed.strip_prefix("# ") {
            out.push_str(&format!(".SH NAME\n{}\n", roff_inline(h)));
        } else if let Some(h) = trimmed.strip_prefix("## ") {
            out.push_str(&format!(".SH \"{}\"\n", roff_inline(h).to_uppercase()));
        } else if let Some(h) = trimmed.strip_prefix("### ") {
            out.push_str(&format!(".SS \"{}\"\n", roff_inline(h)));
        } else if trimmed.starts_with('|') {
            let cells: Vec<String> = trimmed
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect();
            if cells
                .iter()
                .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
            {
                continue;
            }
            if header.is_empty() {
                header = cells;
                continue;
            }
            out.push_str(&format!(
                ".TP\n{}\n",
                roff_inline(cells.first().map_or("", String::as_str))
            ));
            for (i, cell) in cells.iter().enumerate().skip(1) {
                if cell.is_empty() {
                    continue;
                }
                let label = header
                    .get(i)
                    .map_or(String::new(), |h| format!("{}: ", roff_inline(h)));
                out.push_str(&format!("{label}{}\n.br\n", roff_inline(cell)));
            }
        } else if let Some(item) = trimmed.strip_prefix("- ") {
            header.clear();
            out.push_str(&format!(".IP \\(bu 2\n{}\n", roff_inline(item)));
        } else if trimmed.is_empty() {
            header.clear();
            out.push_str(".PP\n");
        } else {
            out.push_str(&roff_inline(trimmed));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_roff() {
        let man = markdown_to_man(
            "# rxl.cfg\n\n## Keys\n\n| key | default |\n|---|---|\n| `memory` | 32 |\n\n- a `b`\n",
            "RXL.CFG",
            5,
        );
        assert!(man.starts_with(".TH RXL.CFG 5"), "{man}");
        assert!(man.contains(".SH NAME\nrxl.cfg\n"), "{man}");
        assert!(man.contains(".SH \"KEYS\""), "{man}");
        assert!(man.contains(".TP\n\\fBmemory\\fR\ndefault: 32\n"), "{man}");
        assert!(man.contains(".IP \\(bu 2\na \\fBb\\fR\n"), "{man}");
    }

    #[test]
    fn roff_special_characters_are_escaped() {
        assert_eq!(roff_escape(".start"), "\\&.start");
        assert_eq!(roff_escape("a-b\\c"), "a\\-b\\ec");
    }
}
