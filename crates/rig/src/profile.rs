//! rxl's create profiles (`rxl create --times`) printed by a step's script as
//! `P KEY=VALUE run=N | LINE` lines, and the table of their medians per create step.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::checks::field;

/// Per key value (a tool, a guest): each create step in the order first seen, with its
/// values from every run (ms, then hypercalls, ms inside them and xenstore requests where
/// the line has them).
pub(crate) type Profiles = BTreeMap<String, Vec<(String, Vec<Vec<f64>>)>>;

/// One line of `rxl create --times`: the step's name and its numbers.
fn profile_line(text: &str) -> Option<(String, Vec<f64>)> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let nums = words
        .iter()
        .rev()
        .take_while(|w| w.parse::<f64>().is_ok())
        .count();
    if nums == 0 || nums == words.len() {
        return None;
    }
    let name = words[..words.len() - nums].join(" ");
    let values = words[words.len() - nums..]
        .iter()
        .filter_map(|w| w.parse::<f64>().ok())
        .collect();
    Some((name, values))
}

/// The `P` lines of `lines`, grouped by the value of their field `key`.
pub(crate) fn parse(lines: &[String], key: &str) -> Profiles {
    let mut out = Profiles::new();
    for l in lines.iter().filter(|l| l.starts_with("P ")) {
        let (Some(by), Some((_, text))) = (field(l, key), l.split_once(" | ")) else {
            continue;
        };
        let Some((name, values)) = profile_line(text) else {
            continue;
        };
        let steps = out.entry(by.to_owned()).or_default();
        match steps.iter_mut().find(|(n, _)| *n == name) {
            Some((_, runs)) => runs.push(values),
            None => steps.push((name, vec![values])),
        }
    }
    out
}

/// The median of column `col` over `runs` (runs without that column are skipped).
fn median_f(runs: &[Vec<f64>], col: usize) -> Option<f64> {
    let mut v: Vec<f64> = runs.iter().filter_map(|r| r.get(col).copied()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// The Markdown table of medians per create step: for each column (`(key, title)`, those
/// with a profile) its wall time and its time inside hypercalls (the hypervisor's share),
/// then the first such column's hypercalls and xenstore requests. Steps in the order first
/// seen across the columns; empty when no column has a profile.
pub(crate) fn table(cols: &[(&str, &str)], profiles: &Profiles) -> String {
    let cols: Vec<&(&str, &str)> = cols
        .iter()
        .filter(|(k, _)| profiles.contains_key(*k))
        .collect();
    let Some(first) = cols.first() else {
        return String::new();
    };
    let mut names: Vec<&str> = Vec::new();
    for (k, _) in &cols {
        for (n, _) in &profiles[*k] {
            if !names.contains(&n.as_str()) {
                names.push(n);
            }
        }
    }
    let mut s = String::from("| step |");
    for (_, title) in &cols {
        let _ = write!(s, " {title} ms | {title} in Xen ms |");
    }
    s.push_str(" hypercalls | xenstore requests |\n|---|");
    s.push_str(&"---|".repeat(2 * cols.len() + 2));
    s.push('\n');
    let cell = |v: Option<f64>, prec: usize| v.map_or("-".to_owned(), |x| format!("{x:.prec$}"));
    let runs_of = |k: &str, name: &str| -> Option<&Vec<Vec<f64>>> {
        profiles[k].iter().find(|(n, _)| n == name).map(|(_, r)| r)
    };
    for name in names {
        let _ = write!(s, "| {name} |");
        for (k, _) in &cols {
            let r = runs_of(k, name);
            let _ = write!(
                s,
                " {} | {} |",
                cell(r.and_then(|r| median_f(r, 0)), 1),
                cell(r.and_then(|r| median_f(r, 2)), 1)
            );
        }
        let r = runs_of(first.0, name);
        let _ = writeln!(
            s,
            " {} | {} |",
            cell(r.and_then(|r| median_f(r, 1)), 0),
            cell(r.and_then(|r| median_f(r, 3)), 0)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(key: &str, by: &str, run: u32, text: &str) -> String {
        format!("P {key}={by} run={run} | {text}")
    }

    #[test]
    fn profiles_become_a_table_of_medians_per_step() {
        let mut lines = Vec::new();
        for (run, (dev_ms, calls)) in [(1u32, (90.0, 7)), (2, (30.0, 9)), (3, (60.0, 8))] {
            lines.push(line(
                "tool",
                "rxl",
                run,
                "step          ms hypercalls  in Xen (ms) xs requests",
            ));
            lines.push(line("tool", "rxl", run, "(boot plan)      12.50"));
            lines.push(line(
                "tool",
                "rxl",
                run,
                &format!("devices       {dev_ms:.2}   {calls}   0.40   88"),
            ));
            lines.push(line("tool", "rxl-native", run, "(boot plan)      11.00"));
            lines.push(line(
                "tool",
                "rxl-native",
                run,
                "devices   20.00   3   0.10   40",
            ));
            lines.push(line(
                "tool",
                "rxl-native",
                run,
                "pin tables   2.00   1   1.50   0",
            ));
        }
        lines.push("T tool=rxl run=1 create_ms=1 destroy_ms=1".to_owned());
        let p = parse(&lines, "tool");
        assert_eq!(p["rxl"].len(), 2, "{p:?}");
        assert_eq!(p["rxl"][1].0, "devices");
        assert_eq!(p["rxl"][1].1.len(), 3);
        let cols = [("rxl", "A"), ("rxl-native", "B"), ("xl", "C")];
        let text = table(&cols, &p);
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(
            rows[0],
            "| step | A ms | A in Xen ms | B ms | B in Xen ms | hypercalls | xenstore requests |"
        );
        assert_eq!(rows[1], "|---|---|---|---|---|---|---|");
        assert_eq!(rows[2], "| (boot plan) | 12.5 | - | 11.0 | - | - | - |");
        assert_eq!(rows[3], "| devices | 60.0 | 0.4 | 20.0 | 0.1 | 8 | 88 |");
        // A step only the second column has comes after the first column's steps.
        assert_eq!(rows[4], "| pin tables | - | - | 2.0 | 1.5 | - | - |");
        assert_eq!(rows.len(), 5);
        // Grouped by another field, the same lines give nothing.
        assert!(parse(&lines, "guest").is_empty());
        assert_eq!(table(&cols, &Profiles::new()), "");
    }

    #[test]
    fn a_line_without_numbers_or_without_a_name_is_no_step() {
        assert_eq!(profile_line("step ms hypercalls"), None);
        assert_eq!(profile_line("1.0 2.0"), None);
        assert_eq!(
            profile_line("load image 246.10 0 45.50 0"),
            Some(("load image".into(), vec![246.1, 0.0, 45.5, 0.0]))
        );
    }
}
