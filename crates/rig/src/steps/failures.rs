//! Step `failures`: refused creates leave no domain; a create killed mid-way is listed as
//! incomplete and `rxl destroy` removes it.

use std::path::Path;

use serde_json::Value;

use super::linux::{linux_cfg, LINUX_DIR, LINUX_VCPUS};
use crate::checks::compare::{self};
use crate::checks::{excerpt, number};
use crate::markers::Capture;
use crate::scenario::{cap, script_cap, LinuxFiles, Outcome, Step, StepFile};

// ---------------------------------------------------------------------------------------
// failures

const KILLED_NAME: &str = "rxl-killed";

/// Refused creates leave no domain; a killed create leaves one rxl shows and removes.
pub fn failures_step(hello: &Path, linux: Option<&LinuxFiles>) -> Step {
    let refused = |name, cfg: &str| {
        script_cap(
            name,
            60,
            include_str!("../../scripts/steps/failures/refused.sh"),
            &[("CFG", cfg.into())],
        )
    };
    let mut captures = vec![
        refused("big", "/e2e/fail/big.cfg"),
        refused("no-pvh-note", "/e2e/fail/nopvh.cfg"),
        refused("no-notes", "/e2e/fail/nonotes.cfg"),
    ];
    let mut files = vec![
        StepFile::Host {
            path: "/e2e/fail/hello".into(),
            host: hello.to_owned(),
        },
        StepFile::Text {
            path: "/e2e/fail/big.cfg".into(),
            text: "name = \"rxl-big\"\ntype = \"pvh\"\nkernel = \"hello\"\nmemory = 8192\n".into(),
        },
        StepFile::Bytes {
            path: "/e2e/fail/nonotes.elf".into(),
            data: noteless_elf(),
        },
        StepFile::Text {
            path: "/e2e/fail/nonotes.cfg".into(),
            text: "name = \"rxl-nonotes\"\ntype = \"pvh\"\nkernel = \"nonotes.elf\"\nmemory = 32\n"
                .into(),
        },
        StepFile::Text {
            path: "/e2e/fail/nopvh.cfg".into(),
            text: "name = \"rxl-nopvh\"\ntype = \"pvh\"\nkernel = \"/bin/busybox\"\nmemory = 32\n"
                .into(),
        },
    ];
    if linux.is_some() {
        files.push(StepFile::Text {
            path: "/e2e/fail/killed.cfg".into(),
            text: linux_cfg(
                KILLED_NAME,
                &format!("{LINUX_DIR}/vmlinuz"),
                &format!("{LINUX_DIR}/initrd.img"),
                LINUX_VCPUS,
                "",
            ),
        });
        captures.push(cap(
            "kill",
            120,
            include_str!("../../scripts/steps/failures/kill.sh"),
        ));
        captures.push(cap("rxl-list", 30, "rxl list\n"));
        captures.push(cap("rxl-list-json", 30, "rxl list --json\n"));
        captures.push(cap(
            "destroy",
            60,
            include_str!("../../scripts/steps/failures/destroy.sh"),
        ));
    }
    Step {
        name: "failures",
        about: "too much memory and a kernel without the PVH note are refused with no domain \
                left; a create killed mid-way is listed as incomplete and rxl destroy removes it",
        captures,
        files,
        check: Box::new(check_failures),
        publish: None,
    }
}

/// A minimal 32-bit ELF executable with one loadable segment (`hlt` in a loop at 1 MiB)
/// and no notes at all: a kernel without a PVH entry point.
pub fn noteless_elf() -> Vec<u8> {
    const CODE: [u8; 3] = [0xf4, 0xeb, 0xfd];
    const EHSIZE: u16 = 52;
    const PHSIZE: u16 = 32;
    let base = 0x0010_0000_u32;
    let filesz = u32::from(EHSIZE + PHSIZE) + CODE.len() as u32;
    let mut e = vec![0x7f, b'E', b'L', b'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let put16 = |e: &mut Vec<u8>, v: u16| e.extend_from_slice(&v.to_le_bytes());
    put16(&mut e, 2); // ET_EXEC
    put16(&mut e, 3); // EM_386
    e.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    e.extend_from_slice(&(base + u32::from(EHSIZE + PHSIZE)).to_le_bytes()); // entry
    e.extend_from_slice(&u32::from(EHSIZE).to_le_bytes()); // phoff
    e.extend_from_slice(&0u32.to_le_bytes()); // shoff
    e.extend_from_slice(&0u32.to_le_bytes()); // flags
    for v in [EHSIZE, PHSIZE, 1, 40, 0, 0] {
        put16(&mut e, v); // ehsize, phentsize, phnum, shentsize, shnum, shstrndx
    }
    for v in [1, 0, base, base, filesz, filesz, 5, 0x1000] {
        e.extend_from_slice(&v.to_le_bytes()); // PT_LOAD, R+X
    }
    e.extend_from_slice(&CODE);
    e
}

/// The lines of a refused create's capture: (create output, xl list before, xl list after).
fn split_refused(c: &Capture) -> (String, String, String) {
    let (mut out, mut before, mut after) = (String::new(), String::new(), String::new());
    let mut part = 0;
    for l in &c.lines {
        match l.trim() {
            "== before" => part = 1,
            "== after" => part = 2,
            _ => {
                let dst = match part {
                    0 => &mut out,
                    1 => &mut before,
                    _ => &mut after,
                };
                dst.push_str(l);
                dst.push('\n');
            }
        }
    }
    (out, before, after)
}

fn ids(text: &str) -> Vec<u32> {
    compare::parse_list(text)
        .map(|rows| rows.iter().map(|r| r.id).collect())
        .unwrap_or_default()
}

fn check_failures(o: &Outcome<'_>) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    // (capture, text the error must contain)
    for (name, needle) in [
        ("big", None),
        // busybox: GNU notes in an 8-byte aligned PT_NOTE segment, no Xen notes.
        ("no-pvh-note", Some("PHYS32_ENTRY")),
        ("no-notes", Some("PHYS32_ENTRY")),
    ] {
        let c = match o.capture(name) {
            Ok(c) => c,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let (out, before, after) = split_refused(c);
        if c.rc != Some(1) {
            problems.push(format!(
                "{name}: rxl create exited with {:?}, expected 1: {}",
                c.rc,
                out.trim()
            ));
        }
        if let Some(n) = needle {
            if !out.contains(n) {
                problems.push(format!(
                    "{name}: the error does not name {n}: {}",
                    out.trim()
                ));
            }
        }
        let (b, a) = (ids(&before), ids(&after));
        if b.is_empty() || a != b {
            problems.push(format!(
                "{name}: xl list domain ids changed from {b:?} to {a:?}"
            ));
        }
        let first = out.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        notes.push(format!("{name}: exit 1 \"{}\"", first.trim()));
    }
    if let Ok(k) = o.capture("kill") {
        let new = number(k, "new");
        if k.rc != Some(0) || new.is_none() {
            problems.push(format!("kill: {}", excerpt(&k.lines)));
        }
        match o.succeeded("rxl-list") {
            Ok(c) => {
                let shown = c
                    .lines
                    .iter()
                    .any(|l| l.contains("(incomplete)") && new.is_some_and(|n| has_id(l, n)));
                if !shown {
                    problems.push(format!(
                        "rxl list shows no incomplete row for domain {new:?}: {}",
                        excerpt(&c.lines)
                    ));
                }
            }
            Err(e) => problems.push(e),
        }
        match o.succeeded("rxl-list-json") {
            Ok(c) => {
                let v: Value = serde_json::from_str(&c.text()).unwrap_or(Value::Null);
                let flagged = v.as_array().is_some_and(|a| {
                    a.iter()
                        .any(|d| d["domid"].as_u64() == new && d["incomplete"] == Value::Bool(true))
                });
                if !flagged {
                    problems.push(format!(
                        "rxl list --json has no \"incomplete\": true entry for domain {new:?}"
                    ));
                }
            }
            Err(e) => problems.push(e),
        }
        match o.capture("destroy") {
            Ok(c) => {
                let (_, _, after) = split_refused(c);
                if c.rc != Some(0) {
                    problems.push(format!(
                        "rxl destroy of the incomplete domain: {}",
                        excerpt(&c.lines)
                    ));
                }
                if new.is_some_and(|n| ids(&after).contains(&(n as u32))) {
                    problems.push(format!(
                        "domain {new:?} is still in xl list after rxl destroy"
                    ));
                }
            }
            Err(e) => problems.push(e),
        }
        notes.push(format!(
            "killed create left d{} (incomplete), destroyed",
            new.unwrap_or(0)
        ));
    }
    if problems.is_empty() {
        Ok(notes.join("; "))
    } else {
        Err(problems)
    }
}

/// Whether an `rxl list` line has `id` as its ID column (or anywhere as a word).
fn has_id(line: &str, id: u64) -> bool {
    let id = id.to_string();
    line.split_whitespace().any(|w| w == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::markers;
    #[test]
    fn failures_need_exit_1_and_an_unchanged_list() {
        let list = format!("{}\nDomain-0 0 1024 1 r----- 3.0\n", compare::LIST_HEADER);
        let grown = format!("{list}rxl-big 5 8192 1 --p--- 0.0\n");
        let results = |big_rc: i32, after: &str| {
            format!(
                "@@RXL-BEGIN failures/big\nrxl: not enough memory\n== before\n{list}== after\n\
                 {after}@@RXL-END failures/big rc={big_rc}\n\
                 @@RXL-BEGIN failures/no-pvh-note\nrxl: this kernel has no XEN_ELFNOTE_PHYS32_ENTRY\n== before\n{list}\
                 == after\n{list}@@RXL-END failures/no-pvh-note rc=1\n\
                 @@RXL-BEGIN failures/no-notes\nrxl: no PHYS32_ENTRY note\n== before\n{list}\
                 == after\n{list}@@RXL-END failures/no-notes rc=1\n"
            )
        };
        let check = |text: String| {
            let report = markers::parse(&text);
            check_failures(&Outcome {
                step: "failures",
                report: &report,
                console: "",
            })
        };
        let ok = check(results(1, &list)).unwrap();
        assert!(ok.contains("no-notes: exit 1"), "{ok}");
        assert!(ok.contains("no-pvh-note: exit 1"), "{ok}");
        let err = check(results(0, &grown)).unwrap_err();
        assert_eq!(err.len(), 2, "{err:?}");
        assert!(err[1].contains("[0, 5]"), "{err:?}");
    }

    #[test]
    fn the_noteless_kernel_is_a_valid_elf_with_no_notes() {
        let bytes = super::noteless_elf();
        let elf = goblin::elf::Elf::parse(&bytes).unwrap();
        assert!(!elf.is_64);
        assert_eq!(elf.entry, 0x0010_0054);
        assert_eq!(elf.program_headers.len(), 1);
        let ph = &elf.program_headers[0];
        assert_eq!(ph.p_type, goblin::elf::program_header::PT_LOAD);
        assert_eq!(ph.p_filesz as usize, bytes.len());
        assert_eq!(bytes[bytes.len() - 3], 0xf4);
    }
}
