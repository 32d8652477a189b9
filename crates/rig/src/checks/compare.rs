//! Parsing `xl info` / `xl list` output and comparing rxl's against it.

use std::collections::BTreeMap;

use serde_json::Value;

/// How far `free_memory` may move between two commands (MiB).
pub const FREE_MEMORY_TOLERANCE_MIB: u64 = 16;

/// Parses xl-style `key : value` lines. Lines without ` : `-style separators are ignored;
/// the first colon splits key from value (values such as `xen_caps` contain no colon, while
/// `xen_commandline` may, which the first split keeps intact).
pub fn parse_info(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let k = k.trim();
            (!k.is_empty() && !k.contains(' ')).then(|| (k.to_owned(), v.trim().to_owned()))
        })
        .collect()
}

/// The exact header `xl list` prints.
pub const LIST_HEADER: &str =
    "Name                                        ID   Mem VCPUs\tState\tTime(s)";

/// One row of `xl list`.
#[derive(Debug, Clone, PartialEq)]
pub struct ListRow {
    /// Domain name.
    pub name: String,
    /// Domain id.
    pub id: u32,
    /// Memory in MiB.
    pub mem: u64,
    /// vCPUs online.
    pub vcpus: u32,
    /// State letters (`r-----`).
    pub state: String,
    /// CPU time in seconds.
    pub time: f64,
}

/// Parses the rows of `xl list` output (the header line must be the first non-empty line).
pub fn parse_list(text: &str) -> Result<Vec<ListRow>, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().ok_or("empty output")?;
    if header.trim_end() != LIST_HEADER {
        return Err(format!("header is {header:?}, expected {LIST_HEADER:?}"));
    }
    let mut rows = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let n = fields.len();
        if n < 6 {
            return Err(format!("row {line:?} has {n} fields, expected 6"));
        }
        let tail = &fields[n - 5..];
        let num_err = |what: &str| format!("row {line:?}: {what} is not a number");
        rows.push(ListRow {
            name: fields[..n - 5].join(" "),
            id: tail[0].parse().map_err(|_| num_err("ID"))?,
            mem: tail[1].parse().map_err(|_| num_err("Mem"))?,
            vcpus: tail[2].parse().map_err(|_| num_err("VCPUs"))?,
            state: tail[3].to_owned(),
            time: tail[4].parse().map_err(|_| num_err("Time(s)"))?,
        });
    }
    Ok(rows)
}

/// Collects disagreements; empty means everything matched.
#[derive(Debug, Default)]
pub struct Diff {
    /// One line per disagreement.
    pub problems: Vec<String>,
}

impl Diff {
    fn push(&mut self, s: String) {
        self.problems.push(s);
    }
}

fn parse_u64(s: &str) -> Option<u64> {
    s.trim().parse().ok()
}

/// Compares `rxl info` text against `xl info` on the facts both must agree on.
pub fn info_text(xl: &BTreeMap<String, String>, rxl: &BTreeMap<String, String>, diff: &mut Diff) {
    for key in ["xen_version", "xen_caps", "nr_cpus", "total_memory"] {
        match (xl.get(key), rxl.get(key)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => diff.push(format!("rxl info {key} = {b:?}, xl info says {a:?}")),
            (None, _) => diff.push(format!("xl info printed no {key}")),
            (_, None) => diff.push(format!("rxl info printed no {key}")),
        }
    }
    free_memory(
        xl.get("free_memory").and_then(|v| parse_u64(v)),
        rxl.get("free_memory").and_then(|v| parse_u64(v)),
        "rxl info",
        diff,
    );
}

fn free_memory(xl: Option<u64>, rxl: Option<u64>, what: &str, diff: &mut Diff) {
    match (xl, rxl) {
        (Some(a), Some(b)) if a.abs_diff(b) <= FREE_MEMORY_TOLERANCE_MIB => {}
        (Some(a), Some(b)) => diff.push(format!(
            "{what} free_memory = {b}, xl info says {a} (tolerance {FREE_MEMORY_TOLERANCE_MIB} MiB)"
        )),
        (None, _) => diff.push("xl info printed no numeric free_memory".into()),
        (_, None) => diff.push(format!("{what} has no numeric free_memory")),
    }
}

/// Keys of `rxl info --json` whose values are strings.
const INFO_STRING_KEYS: &[&str] = &["xen_extra", "xen_version", "xen_caps"];
/// Keys of `rxl info --json` whose values are integers.
const INFO_INT_KEYS: &[&str] = &[
    "xen_major",
    "xen_minor",
    "nr_cpus",
    "max_cpu_id",
    "nr_nodes",
    "cores_per_socket",
    "threads_per_core",
    "total_memory",
    "outstanding_claims",
];

/// Compares `rxl info --json` against `xl info`: every documented key is present with the
/// right JSON type and xl's value (`free_memory` within tolerance, `cpu_mhz` within 1 MHz).
pub fn info_json(xl: &BTreeMap<String, String>, json: &str, diff: &mut Diff) {
    let value: Value = match serde_json::from_str(json) {
        Ok(v) => v,
        Err(e) => return diff.push(format!("rxl info --json is not valid JSON: {e}")),
    };
    let Some(obj) = value.as_object() else {
        return diff.push("rxl info --json did not print a JSON object".into());
    };
    for key in INFO_STRING_KEYS {
        match (obj.get(*key), xl.get(*key)) {
            // xl prints some values (xen_caps) with a trailing blank; ends are not compared.
            (Some(Value::String(s)), Some(x)) if s.trim() == x.trim() => {}
            (Some(Value::String(s)), Some(x)) => {
                diff.push(format!("rxl info --json {key} = {s:?}, xl info says {x:?}"))
            }
            (Some(other), _) => {
                diff.push(format!("rxl info --json {key} is {other}, not a string"))
            }
            (None, _) => diff.push(format!("rxl info --json has no {key}")),
        }
    }
    for key in INFO_INT_KEYS {
        let want = xl.get(*key).and_then(|v| parse_u64(v));
        match (obj.get(*key).map(|v| (v, v.as_u64())), want) {
            (Some((_, Some(n))), Some(w)) if n == w => {}
            (Some((_, Some(n))), Some(w)) => {
                diff.push(format!("rxl info --json {key} = {n}, xl info says {w}"))
            }
            (Some((_, Some(_))), None) => diff.push(format!("xl info printed no numeric {key}")),
            (Some((v, None)), _) => {
                diff.push(format!("rxl info --json {key} is {v}, not an integer"))
            }
            (None, _) => diff.push(format!("rxl info --json has no {key}")),
        }
    }
    match (
        obj.get("free_memory"),
        xl.get("free_memory").and_then(|v| parse_u64(v)),
    ) {
        (Some(v), want) => free_memory(want, v.as_u64(), "rxl info --json", diff),
        (None, _) => diff.push("rxl info --json has no free_memory".into()),
    }
    let xl_mhz = xl.get("cpu_mhz").and_then(|v| v.parse::<f64>().ok());
    match (obj.get("cpu_mhz").and_then(Value::as_f64), xl_mhz) {
        (Some(a), Some(b)) if (a - b).abs() <= 1.0 => {}
        (Some(a), Some(b)) => diff.push(format!("rxl info --json cpu_mhz = {a}, xl info says {b}")),
        (None, _) => diff.push("rxl info --json has no numeric cpu_mhz".into()),
        (_, None) => diff.push("xl info printed no numeric cpu_mhz".into()),
    }
}

/// Compares the rows of `xl list` and `rxl list` by domain id: the same set of ids, and for
/// each the same name, Mem, VCPUs and State (CPU time moves and is not compared). The
/// Domain-0 row must be there.
pub fn list_text(xl: &str, rxl: &str, diff: &mut Diff) {
    let xl_rows = match parse_list(xl) {
        Ok(r) => r,
        Err(e) => return diff.push(format!("xl list output: {e}")),
    };
    let rxl_rows = match parse_list(rxl) {
        Ok(r) => r,
        Err(e) => return diff.push(format!("rxl list output: {e}")),
    };
    if !rxl_rows.iter().any(|r| r.id == 0) {
        diff.push("rxl list has no Domain-0 row (ID 0)".into());
    }
    for a in &xl_rows {
        let Some(b) = rxl_rows.iter().find(|r| r.id == a.id) else {
            diff.push(format!(
                "rxl list has no row for domain {} ({})",
                a.id, a.name
            ));
            continue;
        };
        let who = format!("domain {}", a.id);
        if a.name != b.name {
            diff.push(format!(
                "rxl list {who} name {:?}, xl list {:?}",
                b.name, a.name
            ));
        }
        if a.mem != b.mem {
            diff.push(format!("rxl list {who} Mem {}, xl list {}", b.mem, a.mem));
        }
        if a.vcpus != b.vcpus {
            diff.push(format!(
                "rxl list {who} VCPUs {}, xl list {}",
                b.vcpus, a.vcpus
            ));
        }
        if a.state != b.state {
            diff.push(format!(
                "rxl list {who} State {:?}, xl list {:?}",
                b.state, a.state
            ));
        }
    }
    for b in &rxl_rows {
        if !xl_rows.iter().any(|a| a.id == b.id) {
            diff.push(format!(
                "rxl list shows domain {} ({}), xl list does not",
                b.id, b.name
            ));
        }
    }
}

/// Compares `rxl list --json` against `xl list`: one object per xl row (matched by domid)
/// with xl's name, memory_mib, vcpus and state, plus a uuid and a numeric cpu_time_s.
pub fn list_json(xl: &str, json: &str, diff: &mut Diff) {
    let rows = match parse_list(xl) {
        Ok(r) => r,
        Err(e) => return diff.push(format!("xl list output: {e}")),
    };
    let value: Value = match serde_json::from_str(json) {
        Ok(v) => v,
        Err(e) => return diff.push(format!("rxl list --json is not valid JSON: {e}")),
    };
    let Some(items) = value.as_array() else {
        return diff.push("rxl list --json did not print a JSON array".into());
    };
    if items.len() != rows.len() {
        diff.push(format!(
            "rxl list --json has {} domains, xl list {}",
            items.len(),
            rows.len()
        ));
    }
    if !items
        .iter()
        .any(|d| d.get("domid").and_then(Value::as_u64) == Some(0))
    {
        diff.push("rxl list --json has no object with domid 0".into());
    }
    for want in &rows {
        let Some(dom) = items
            .iter()
            .find(|d| d.get("domid").and_then(Value::as_u64) == Some(u64::from(want.id)))
        else {
            diff.push(format!(
                "rxl list --json has no object with domid {} ({})",
                want.id, want.name
            ));
            continue;
        };
        let who = format!("domid {}", want.id);
        if !dom.get("uuid").is_some_and(Value::is_string) {
            diff.push(format!("rxl list --json {who} has no uuid string"));
        }
        if !dom.get("cpu_time_s").is_some_and(Value::is_number) {
            diff.push(format!("rxl list --json {who} has no numeric cpu_time_s"));
        }
        let checks: [(&str, Value); 4] = [
            ("name", Value::from(want.name.clone())),
            ("memory_mib", Value::from(want.mem)),
            ("vcpus", Value::from(want.vcpus)),
            ("state", Value::from(want.state.clone())),
        ];
        for (key, expect) in checks {
            match dom.get(key) {
                Some(v) if *v == expect => {}
                Some(v) => diff.push(format!(
                    "rxl list --json {who} {key} = {v}, xl list says {expect}"
                )),
                None => diff.push(format!("rxl list --json {who} has no {key}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XL_INFO: &str = "host                   : (none)
release                : 6.1.0-57-amd64
xen_major              : 4
xen_minor              : 17
xen_extra              : .7
xen_version            : 4.17.7
xen_caps               : xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_64
nr_cpus                : 2
max_cpu_id             : 1
nr_nodes               : 1
cores_per_socket       : 1
threads_per_core       : 1
cpu_mhz                : 2994.364
total_memory           : 3071
free_memory            : 1987
outstanding_claims     : 0
xen_commandline        : console=com1 com1=115200,8n1
";

    fn xl_list() -> String {
        format!(
            "{LIST_HEADER}\nDomain-0                                     0  1024     1     r-----       5.3\n"
        )
    }

    fn rxl_json() -> Value {
        serde_json::json!({
            "xen_major": 4, "xen_minor": 17, "xen_extra": ".7", "xen_version": "4.17.7",
            "xen_caps": "xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_64",
            "nr_cpus": 2, "max_cpu_id": 1, "nr_nodes": 1, "cores_per_socket": 1,
            "threads_per_core": 1, "cpu_mhz": 2994.364, "total_memory": 3071,
            "free_memory": 1980, "outstanding_claims": 0
        })
    }

    #[test]
    fn parses_info_keys_and_values() {
        let m = parse_info(XL_INFO);
        assert_eq!(
            m["xen_caps"],
            "xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_64"
        );
        assert_eq!(m["total_memory"], "3071");
        assert_eq!(m["xen_commandline"], "console=com1 com1=115200,8n1");
        assert!(parse_info("garbage line\n: novalue\n").is_empty());
    }

    #[test]
    fn identical_info_agrees() {
        let xl = parse_info(XL_INFO);
        let mut diff = Diff::default();
        info_text(&xl, &xl, &mut diff);
        info_json(&xl, &rxl_json().to_string(), &mut diff);
        assert!(diff.problems.is_empty(), "{:?}", diff.problems);
    }

    #[test]
    fn info_disagreements_are_named() {
        let xl = parse_info(XL_INFO);
        let mut rxl = xl.clone();
        rxl.insert("nr_cpus".into(), "1".into());
        rxl.insert("free_memory".into(), "1000".into());
        rxl.remove("xen_caps");
        let mut diff = Diff::default();
        info_text(&xl, &rxl, &mut diff);
        assert_eq!(diff.problems.len(), 3, "{:?}", diff.problems);
        assert!(diff.problems.iter().any(|p| p.contains("nr_cpus")));
        assert!(diff.problems.iter().any(|p| p.contains("xen_caps")));
        assert!(diff.problems.iter().any(|p| p.contains("free_memory")));
    }

    #[test]
    fn info_json_checks_types_and_values() {
        let xl = parse_info(XL_INFO);
        let mut j = rxl_json();
        j["total_memory"] = Value::from("3071");
        j["xen_minor"] = Value::from(16);
        j.as_object_mut().unwrap().remove("outstanding_claims");
        j["cpu_mhz"] = Value::from(1000.0);
        // A trailing blank as xl itself prints it is fine.
        j["xen_caps"] = Value::from("xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_64 ");
        let mut diff = Diff::default();
        info_json(&xl, &j.to_string(), &mut diff);
        assert_eq!(diff.problems.len(), 4, "{:?}", diff.problems);
        let mut diff = Diff::default();
        info_json(&xl, "not json", &mut diff);
        assert_eq!(diff.problems.len(), 1);
        let mut diff = Diff::default();
        info_json(&xl, "[]", &mut diff);
        assert_eq!(diff.problems.len(), 1);
    }

    #[test]
    fn parses_list_rows() {
        let rows = parse_list(&xl_list()).unwrap();
        assert_eq!(
            rows,
            [ListRow {
                name: "Domain-0".into(),
                id: 0,
                mem: 1024,
                vcpus: 1,
                state: "r-----".into(),
                time: 5.3
            }]
        );
        assert!(parse_list("Name ID\n").is_err());
        assert!(parse_list(&format!("{LIST_HEADER}\nDomain-0 x 1 1 r----- 1.0\n")).is_err());
        assert!(parse_list("").is_err());
    }

    #[test]
    fn list_rows_must_agree() {
        let xl = xl_list();
        let mut diff = Diff::default();
        list_text(&xl, &xl, &mut diff);
        assert!(diff.problems.is_empty(), "{:?}", diff.problems);
        let rxl = format!("{LIST_HEADER}\nDomain-0  0  1023  1  -b----  5.0\n");
        list_text(&xl, &rxl, &mut diff);
        assert_eq!(diff.problems.len(), 2, "{:?}", diff.problems);
        // Guests are matched by id; missing and extra rows are both reported.
        let xl2 = format!(
            "{xl}rxl-hello                                    1    32     1     ---s--       0.1\n"
        );
        let mut diff = Diff::default();
        list_text(&xl2, &xl2, &mut diff);
        assert!(diff.problems.is_empty(), "{:?}", diff.problems);
        list_text(&xl2, &xl, &mut diff);
        assert_eq!(
            diff.problems,
            ["rxl list has no row for domain 1 (rxl-hello)"]
        );
        let mut diff = Diff::default();
        list_text(&xl, &xl2, &mut diff);
        assert_eq!(
            diff.problems,
            ["rxl list shows domain 1 (rxl-hello), xl list does not"]
        );
        let mut diff = Diff::default();
        list_text(&xl2, &xl2.replace("---s--", "-b----"), &mut diff);
        assert_eq!(diff.problems.len(), 1, "{:?}", diff.problems);
        assert!(
            diff.problems[0].contains("domain 1 State"),
            "{:?}",
            diff.problems
        );
        let mut diff = Diff::default();
        list_text(&xl, "Name ID Mem\n", &mut diff);
        assert_eq!(diff.problems.len(), 1);
    }

    #[test]
    fn list_json_must_agree() {
        let xl = xl_list();
        let good = serde_json::json!([{
            "domid": 0, "name": "Domain-0", "uuid": "00000000-0000-0000-0000-000000000000",
            "memory_mib": 1024, "vcpus": 1, "state": "r-----", "cpu_time_s": 5.4
        }]);
        let mut diff = Diff::default();
        list_json(&xl, &good.to_string(), &mut diff);
        assert!(diff.problems.is_empty(), "{:?}", diff.problems);
        let mut bad = good.clone();
        bad[0]["memory_mib"] = Value::from(512);
        bad[0].as_object_mut().unwrap().remove("uuid");
        let mut diff = Diff::default();
        list_json(&xl, &bad.to_string(), &mut diff);
        assert_eq!(diff.problems.len(), 2, "{:?}", diff.problems);
        let mut diff = Diff::default();
        list_json(&xl, "{}", &mut diff);
        assert_eq!(diff.problems.len(), 1);
        // A guest row of xl list needs its own object.
        let xl2 = format!("{xl}rxl-hello  1  32  1  ---s--  0.1\n");
        let mut diff = Diff::default();
        list_json(&xl2, &good.to_string(), &mut diff);
        assert_eq!(diff.problems.len(), 2, "{:?}", diff.problems);
        assert!(
            diff.problems[1].contains("no object with domid 1"),
            "{:?}",
            diff.problems
        );
        let mut both = good.clone();
        both.as_array_mut().unwrap().push(serde_json::json!({
            "domid": 1, "name": "rxl-hello", "uuid": "5c0f3a4e-0000-4000-8000-000000000001",
            "memory_mib": 32, "vcpus": 1, "state": "---s--", "cpu_time_s": 0.1
        }));
        let mut diff = Diff::default();
        list_json(&xl2, &both.to_string(), &mut diff);
        assert!(diff.problems.is_empty(), "{:?}", diff.problems);
    }
}
