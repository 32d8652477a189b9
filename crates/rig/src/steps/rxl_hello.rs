//! Step `rxl-hello`: `rxl create -p` of the PVH test guest with modules and relative paths,
//! checked against its dry-run plan and the files put into the image.

use std::path::PathBuf;

use serde_json::Value;

use crate::checks::{
    compare_lists, domid_of, excerpt, field, guest_lines, hex, madt_and_done_problems, row,
};
use crate::scenario::{cap, script_cap, Outcome, Step, StepFile};

/// The 32-bit FNV-1a hash of `data` (what the hello guest prints as a module's `sum`).
pub fn fnv1a32(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// The e820 type number of a memory map entry type as `rxl create -n --json` names it.
fn e820_number(name: &str) -> Option<u32> {
    Some(match name {
        "ram" => 1,
        "reserved" => 2,
        "acpi" => 3,
        "nvs" => 4,
        "unusable" => 5,
        "disabled" => 6,
        "pmem" => 7,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------
// rxl-hello

/// The rxl-created test guest's name.
const RXL_HELLO: &str = "hello-by-rxl";
/// Its directory in dom0: the config in `cfg/`, the kernel in `bin/`, modules beside the
/// config and in `data/`, all named relative to the config.
const RXL_HELLO_DIR: &str = "/e2e/rxl-hello";
const RXL_HELLO_CMDLINE: &str = "rxl-e2e hello from rxl with spaces";
const RXL_HELLO_VCPUS: u32 = 2;
const RXL_HELLO_MEM: u64 = 32;

/// One module the rxl-hello guest gets.
#[derive(Debug, Clone)]
struct TestModule {
    /// The path in the config (relative to the config's directory).
    cfg_path: &'static str,
    /// The path in dom0.
    path: &'static str,
    /// The module's command line.
    cmdline: Option<&'static str>,
    data: Vec<u8>,
}

fn test_modules() -> Vec<TestModule> {
    // Bytes from a small LCG: a size that is no multiple of the page size or of 4.
    let mut x = 0x1234_5678_u32;
    let a: Vec<u8> = (0..5003)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            x.to_be_bytes()[0]
        })
        .collect();
    let b: Vec<u8> = "module b of the rxl e2e rig\n"
        .bytes()
        .cycle()
        .take(777)
        .collect();
    vec![
        TestModule {
            cfg_path: "mod-a.bin",
            path: "/e2e/rxl-hello/cfg/mod-a.bin",
            cmdline: None,
            data: a,
        },
        TestModule {
            cfg_path: "../data/mod-b.bin",
            path: "/e2e/rxl-hello/data/mod-b.bin",
            cmdline: Some("mod-b opt=1 two words"),
            data: b,
        },
    ]
}

fn rxl_hello_cfg(modules: &[TestModule]) -> String {
    let mods: Vec<String> = modules
        .iter()
        .map(|m| match m.cmdline {
            Some(c) => format!("[ \"{}\", \"{c}\" ]", m.cfg_path),
            None => format!("\"{}\"", m.cfg_path),
        })
        .collect();
    format!(
        "# PVH test guest created by rxl, paths relative to this file.\n\
         name = \"{RXL_HELLO}\"\ntype = \"pvh\"\nkernel = \"../bin/hello\"\n\
         cmdline = \"{RXL_HELLO_CMDLINE}\"\nmemory = {RXL_HELLO_MEM}\nvcpus = {RXL_HELLO_VCPUS}\n\
         modules = [ {} ]\non_poweroff = \"preserve\"\non_crash = \"preserve\"\n",
        mods.join(", ")
    )
}

/// `rxl create` of the test guest from another working directory, with modules.
pub fn rxl_hello_step(kernel: PathBuf) -> Step {
    let modules = test_modules();
    let cfg = format!("{RXL_HELLO_DIR}/cfg/hello.cfg");
    let mut files = vec![
        StepFile::Host {
            path: format!("{RXL_HELLO_DIR}/bin/hello"),
            host: kernel,
        },
        StepFile::Text {
            path: cfg.clone(),
            text: rxl_hello_cfg(&modules),
        },
    ];
    for m in &modules {
        files.push(StepFile::Bytes {
            path: m.path.into(),
            data: m.data.clone(),
        });
    }
    Step {
        name: "rxl-hello",
        about: "rxl create -p of the PVH test guest (relative paths, modules, 2 vCPUs): listed \
                alike by xl and rxl; unpaused it boots as planned; rxl destroy removes it",
        captures: vec![
            cap(
                "plan",
                30,
                &format!("cd /tmp && rxl create -n --json {cfg}\n"),
            ),
            script_cap(
                "create",
                60,
                include_str!("../../scripts/steps/rxl-hello/create.sh"),
                &[("CFG", cfg.clone()), ("RXL_HELLO", RXL_HELLO.into())],
            ),
            cap("xl-list", 30, "xl list\n"),
            cap("rxl-list", 30, "rxl list\n"),
            cap("rxl-list-json", 30, "rxl list --json\n"),
            cap("vcpu-list", 30, &format!("xl vcpu-list {RXL_HELLO}\n")),
            script_cap(
                "run",
                60,
                include_str!("../../scripts/steps/rxl-hello/run.sh"),
                &[("RXL_HELLO", RXL_HELLO.into())],
            ),
            cap("destroy", 30, &format!("rxl destroy {RXL_HELLO}\n")),
            cap("xl-list-after", 30, "xl list\n"),
            cap("rxl-list-after", 30, "rxl list\n"),
        ],
        files,
        check: Box::new(move |o| check_rxl_hello(o, &modules)),
        publish: None,
    }
}

fn check_rxl_hello(o: &Outcome<'_>, modules: &[TestModule]) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    let plan_cap = o.succeeded("plan").map_err(|e| vec![e])?;
    let plan: Value = serde_json::from_str(&plan_cap.text()).map_err(|e| {
        vec![format!(
            "rxl create -n --json printed no JSON ({e}): {}",
            excerpt(&plan_cap.lines)
        )]
    })?;
    o.succeeded("create").map_err(|e| vec![e])?;
    let c = o.succeeded("run").map_err(|e| vec![e])?;
    let domid = domid_of(c)
        .ok_or_else(|| vec![format!("rxl domid printed no id: {}", excerpt(&c.lines))])?;
    let mut lines: Vec<String> = guest_lines(o.console, domid)
        .into_iter()
        .filter(|l| l.starts_with("RXLTEST"))
        .collect();
    if lines.is_empty() {
        // The serial log may have lost lines; xl dmesg's copy is in the capture.
        lines = guest_lines(&c.text(), domid)
            .into_iter()
            .filter(|l| l.starts_with("RXLTEST"))
            .collect();
    }
    if lines.is_empty() {
        return Err(vec![format!(
            "no \"(d{domid}) RXLTEST\" line in the serial log or xl dmesg: {}",
            excerpt(&c.lines)
        )]);
    }
    problems.extend(
        guest_problems(&lines, &plan, modules)
            .into_iter()
            .map(|p| format!("guest d{domid}: {p}")),
    );

    // Listed by both, with the config's memory and vCPUs.
    if let Some((xl, Some(rxl))) = compare_lists(o, &mut problems) {
        // The VCPUs column counts online vCPUs: a PVH guest's secondary vCPUs stay down
        // until the guest starts them, which the test guest never does.
        for (who, text) in [("xl", xl), ("rxl", rxl)] {
            match row(&text, RXL_HELLO) {
                Some(r) if r.mem == RXL_HELLO_MEM && r.vcpus == 1 && r.state == "--p---" => {}
                Some(r) => problems.push(format!(
                    "{who} list shows {RXL_HELLO} with {} MiB, {} online vCPUs, state {}; \
                     expected {RXL_HELLO_MEM} MiB, 1 (the boot vCPU), --p---",
                    r.mem, r.vcpus, r.state
                )),
                None => problems.push(format!("{who} list has no {RXL_HELLO} row")),
            }
        }
    }
    match o.succeeded("vcpu-list") {
        Ok(v) => {
            let n = v
                .lines
                .iter()
                .filter(|l| l.split_whitespace().next() == Some(RXL_HELLO))
                .count();
            if n != RXL_HELLO_VCPUS as usize {
                problems.push(format!(
                    "xl vcpu-list shows {n} vCPUs, the config gave {RXL_HELLO_VCPUS}: {}",
                    excerpt(&v.lines)
                ));
            }
        }
        Err(e) => problems.push(e),
    }
    if let Err(e) = o.succeeded("destroy") {
        problems.push(e);
    }
    for name in ["xl-list-after", "rxl-list-after"] {
        match o.succeeded(name) {
            Ok(l) if row(&l.text(), RXL_HELLO).is_some() => problems.push(format!(
                "{name}: {RXL_HELLO} is still listed after rxl destroy"
            )),
            Ok(_) => {}
            Err(e) => problems.push(e),
        }
    }
    if problems.is_empty() {
        Ok(format!(
            "d{domid}: {} RXLTEST lines match the plan ({} modules with sums, {} memmap \
             entries, lapics={RXL_HELLO_VCPUS}); listed {RXL_HELLO_MEM} MiB/{RXL_HELLO_VCPUS} \
             vCPUs (xl vcpu-list) by xl and rxl; destroyed",
            lines.len(),
            modules.len(),
            plan["layout"]["memmap"].as_array().map_or(0, Vec::len)
        ))
    } else {
        Err(problems)
    }
}

/// What is wrong with the rxl-hello guest's `RXLTEST` lines, given the dry run's plan.
fn guest_problems(lines: &[String], plan: &Value, modules: &[TestModule]) -> Vec<String> {
    let mut problems = Vec::new();
    let has = |want: &str| lines.iter().any(|l| l.trim_end() == want);
    let after = |prefix: &str| -> Vec<&str> {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix("RXLTEST ")?.strip_prefix(prefix))
            .collect()
    };
    if !has("RXLTEST magic=0x336ec578 version=1") {
        problems.push(format!(
            "no \"RXLTEST magic=0x336ec578 version=1\" line (got {:?})",
            lines.first()
        ));
    }
    if let Some(bad) = lines.iter().find(|l| l.starts_with("RXLTEST error")) {
        problems.push(bad.clone());
    }
    match after("cmdline=").first().map(|c| c.trim_end()) {
        Some(c) if c == RXL_HELLO_CMDLINE => {}
        other => problems.push(format!(
            "cmdline is {other:?}, the config gave {RXL_HELLO_CMDLINE:?}"
        )),
    }
    let want_n = modules.len().to_string();
    match after("modules=").first().map(|c| c.trim()) {
        Some(n) if n == want_n => {}
        other => problems.push(format!("modules={other:?}, expected {want_n}")),
    }
    let planned = plan["layout"]["modules"].as_array();
    let got_mods = after("module ");
    for (i, m) in modules.iter().enumerate() {
        let Some(line) = got_mods
            .iter()
            .find(|l| l.split_whitespace().next() == Some(&i.to_string()))
        else {
            problems.push(format!("no \"RXLTEST module {i}\" line"));
            continue;
        };
        let size = field(line, "size").and_then(hex);
        if size != Some(m.data.len() as u64) {
            problems.push(format!(
                "module {i} ({}): size {size:?}, the file has {} bytes",
                m.cfg_path,
                m.data.len()
            ));
        }
        let sum = field(line, "sum").and_then(hex);
        let want = fnv1a32(&m.data);
        if sum != Some(u64::from(want)) {
            problems.push(format!(
                "module {i} ({}): sum {sum:x?}, the host computed {want:#010x}",
                m.cfg_path
            ));
        }
        let cmdline = line.split_once("cmdline=").map(|(_, c)| c.trim_end());
        let want_cl = m.cmdline.unwrap_or("(none)");
        if cmdline != Some(want_cl) {
            problems.push(format!(
                "module {i}: cmdline {cmdline:?}, the config gave {want_cl:?}"
            ));
        }
        let paddr = field(line, "paddr").and_then(hex);
        let want_paddr = planned
            .and_then(|p| p.get(i))
            .and_then(|p| p["paddr"].as_u64());
        if paddr.is_none() || paddr != want_paddr {
            problems.push(format!(
                "module {i}: paddr {paddr:x?}, the dry run planned {want_paddr:x?}"
            ));
        }
    }
    // The memory map, entry by entry, against the dry run's layout.
    let want_map: Vec<(Option<u64>, Option<u64>, Option<u32>)> = plan["layout"]["memmap"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["addr"].as_u64(),
                        e["size"].as_u64(),
                        e["type"].as_str().and_then(e820_number),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if want_map.is_empty() {
        problems.push("the dry run's layout has no memmap".into());
    }
    let got_map: Vec<(Option<u64>, Option<u64>, Option<u32>)> = after("memmap ")
        .iter()
        .map(|l| {
            (
                field(l, "addr").and_then(hex),
                field(l, "size").and_then(hex),
                field(l, "type").and_then(|t| t.parse().ok()),
            )
        })
        .collect();
    let count = after("memmap_entries=")
        .first()
        .and_then(|n| n.trim().parse::<usize>().ok());
    if count != Some(want_map.len()) || got_map != want_map {
        problems.push(format!(
            "memmap (memmap_entries={count:?}) {got_map:x?} differs from the dry run's {want_map:x?}"
        ));
    }
    // RSDP: valid signature at the planned address.
    match after("rsdp=").first() {
        Some(l) => {
            let addr = l.split_whitespace().next().and_then(hex);
            let want = plan["layout"]["rsdp"].as_u64();
            if addr.is_none() || addr != want {
                problems.push(format!("rsdp at {addr:x?}, the dry run planned {want:x?}"));
            }
            if !l.contains("sig=RSD PTR") {
                problems.push(format!("RSDP signature is not \"RSD PTR \": {l:?}"));
            }
        }
        None => problems.push("no \"RXLTEST rsdp=\" line".into()),
    }
    madt_and_done_problems(lines, RXL_HELLO_VCPUS, &mut problems);
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn fnv1a32_matches_known_vectors() {
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }

    fn plan() -> Value {
        serde_json::json!({"layout": {
            "modules": [{"paddr": 0x20_0000, "size": 5003, "cmdline": null},
                        {"paddr": 0x20_2000, "size": 777, "cmdline": "mod-b opt=1 two words"}],
            "memmap": [{"addr": 0, "size": 0x200_0000, "type": "ram"},
                       {"addr": 0xfc00_0000_u64, "size": 0x1000, "type": "reserved"}],
            "rsdp": 0xfc00_0000_u64}})
    }

    fn good_lines(mods: &[TestModule]) -> Vec<String> {
        let mut l = vec![
            "RXLTEST magic=0x336ec578 version=1".to_owned(),
            format!("RXLTEST cmdline={RXL_HELLO_CMDLINE}"),
            "RXLTEST modules=2".to_owned(),
        ];
        for (i, (m, p)) in mods.iter().zip([0x20_0000, 0x20_2000]).enumerate() {
            l.push(format!(
                "RXLTEST module {i} paddr=0x{p:016x} size=0x{:016x} sum=0x{:08x} cmdline={}",
                m.data.len(),
                fnv1a32(&m.data),
                m.cmdline.unwrap_or("(none)")
            ));
        }
        l.extend([
            "RXLTEST memmap_entries=2".to_owned(),
            "RXLTEST memmap 0 addr=0x0000000000000000 size=0x0000000002000000 type=1".to_owned(),
            "RXLTEST memmap 1 addr=0x00000000fc000000 size=0x0000000000001000 type=2".to_owned(),
            "RXLTEST rsdp=0x00000000fc000000 sig=RSD PTR".to_owned(),
            "RXLTEST madt lapics=2 enabled=2".to_owned(),
            "RXLTEST done".to_owned(),
        ]);
        l
    }

    #[test]
    fn rxl_hello_lines_are_checked_against_plan_and_files() {
        let mods = test_modules();
        let good = good_lines(&mods);
        assert_eq!(guest_problems(&good, &plan(), &mods), Vec::<String>::new());
        // A wrong sum, a missing memmap entry, one lapic: each is named.
        let bad: Vec<String> = good
            .iter()
            .filter(|l| !l.contains("memmap 1"))
            .map(|l| {
                if l.contains("module 1") {
                    l.replace("sum=0x", "sum=0x1")
                } else {
                    l.replace("lapics=2 enabled=2", "lapics=1 enabled=1")
                }
            })
            .collect();
        let p = guest_problems(&bad, &plan(), &mods);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("module 1") && p[0].contains("sum"), "{p:?}");
        assert!(p[1].contains("memmap"), "{p:?}");
        assert!(p[2].contains("lapics=2"), "{p:?}");
    }

    #[test]
    fn the_hello_config_names_modules_relative_to_itself() {
        let cfg = rxl_hello_cfg(&test_modules());
        assert!(cfg.contains("kernel = \"../bin/hello\""), "{cfg}");
        assert!(
            cfg.contains(
                "modules = [ \"mod-a.bin\", [ \"../data/mod-b.bin\", \"mod-b opt=1 two words\" ] ]"
            ),
            "{cfg}"
        );
    }
}
