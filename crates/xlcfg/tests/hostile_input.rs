//! Input a careless or hostile user can give: names that would escape a directory or do not
//! fit rxl's file names, files that never end or are not files, many unknown keys, an empty
//! config.

use std::path::Path;

use xlcfg::model::MAX_NAME_LEN;
use xlcfg::parse::MAX_CONFIG_BYTES;
use xlcfg::{build, parse_file, parse_str, Diagnostic, ReadError};

const BASE: &str = "type = \"pvh\"\nkernel = \"/boot/vmlinuz\"\n";

/// The errors `build` reports for `text`, rendered.
fn errors(text: &str) -> Vec<String> {
    let parsed = parse_str("/etc/xen/g.cfg", text);
    assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics);
    match build(&parsed.settings, Path::new("/etc/xen")) {
        Ok(_) => Vec::new(),
        Err(d) => d
            .iter()
            .filter(|d| d.is_error())
            .map(Diagnostic::render)
            .collect(),
    }
}

fn name_errors(name: &str) -> Vec<String> {
    errors(&format!("{BASE}name = \"{name}\"\n"))
}

#[test]
fn a_name_that_climbs_out_of_a_directory_is_refused_at_its_line() {
    let e = name_errors("../../../../x");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("/etc/xen/g.cfg:3:8: error:"), "{}", e[0]);
    assert!(e[0].contains('/'), "{}", e[0]);
    assert!(e[0].contains("= hint:"), "{}", e[0]);
}

#[test]
fn names_rxl_refuses() {
    for bad in ["", "a/b", "/", "x/", ".", "..", "1234", "a\\tb"] {
        assert_eq!(name_errors(bad).len(), 1, "{bad:?} was accepted");
    }
}

#[test]
fn names_libxl_and_rxl_accept() {
    for good in [
        "web1", "a..b", "...", ".hidden", "Domain-0", "my guest", "é-ü", "-x",
    ] {
        assert_eq!(name_errors(good), Vec::<String>::new(), "{good:?}");
    }
}

#[test]
fn the_name_length_limit_is_checked_in_the_model() {
    let longest = "n".repeat(MAX_NAME_LEN);
    assert_eq!(name_errors(&longest), Vec::<String>::new());
    for len in [MAX_NAME_LEN + 1, 125, 127, 128, 256, 300] {
        let e = name_errors(&"n".repeat(len));
        assert_eq!(e.len(), 1, "{len}");
        assert!(
            e[0].contains(&format!("{len} bytes")) && e[0].contains(&MAX_NAME_LEN.to_string()),
            "{}",
            e[0]
        );
    }
    // Bytes, not characters: 'é' is two bytes in UTF-8.
    assert_eq!(name_errors(&"é".repeat(MAX_NAME_LEN / 2 + 1)).len(), 1);
}

#[test]
fn the_name_limit_fits_every_file_name_rxl_derives_from_a_name() {
    // Hex encoding (2 bytes a byte), a rename-restart suffix ("-" and a u32), ".log", and
    // a temporary-file decoration still fit Linux's NAME_MAX of 255 bytes.
    let longest_renamed = MAX_NAME_LEN + 1 + u32::MAX.to_string().len();
    assert!(2 * longest_renamed + ".log".len() + 16 <= 255);
}

#[test]
fn twenty_thousand_unknown_keys_get_one_warning_each() {
    let mut text = String::from("name = \"g\"\n");
    text.push_str(BASE);
    for i in 0..20_000 {
        text.push_str(&format!("unknownkey_{i} = {i}\n"));
    }
    let parsed = parse_str("g.cfg", &text);
    assert!(!parsed.has_errors());
    let built = build(&parsed.settings, Path::new("/etc/xen")).expect("builds");
    let unknown = built
        .warnings
        .iter()
        .filter(|d| d.message.starts_with("unknown key"))
        .count();
    assert_eq!(unknown, 20_000);
    // Rendering every one (what `rxl config check` prints) stays linear too; the last one
    // quotes its own line.
    let last = built.warnings.last().expect("a warning").render();
    assert!(last.contains("20003 | unknownkey_19999 = 19999"), "{last}");
}

#[test]
fn a_device_is_refused_without_reading_it() {
    let err = parse_file(Path::new("/dev/zero")).expect_err("a device is not a config");
    assert!(matches!(err, ReadError::NotRegular { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("/dev/zero") && text.contains("device"),
        "{text}"
    );
}

#[test]
fn a_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let err = parse_file(dir.path()).expect_err("a directory is not a config");
    assert!(err.to_string().contains("directory"), "{err}");
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let dir = tempfile::tempdir().expect("tmp");
    let fifo = dir.path().join("cfg.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success());
    // No writer ever opens the FIFO: a blocking open would hang this test.
    let err = parse_file(&fifo).expect_err("a FIFO is not a config");
    assert!(matches!(err, ReadError::NotRegular { .. }), "{err:?}");
    assert!(err.to_string().contains("FIFO"), "{err}");
}

#[test]
fn a_file_over_the_limit_is_refused_and_one_at_the_limit_is_read() {
    let dir = tempfile::tempdir().expect("tmp");
    let at = dir.path().join("at.cfg");
    let mut body = String::from("name = \"g\"\n");
    body.push_str(&"#".repeat(MAX_CONFIG_BYTES - body.len()));
    assert_eq!(body.len(), MAX_CONFIG_BYTES);
    std::fs::write(&at, &body).expect("write");
    let parsed = parse_file(&at).expect("a file at the limit is read");
    assert!(parsed.settings.get("name").is_some());

    let over = dir.path().join("over.cfg");
    body.push('#');
    std::fs::write(&over, &body).expect("write");
    let err = parse_file(&over).expect_err("over the limit");
    assert!(matches!(err, ReadError::TooLarge { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&over.display().to_string()) && text.contains("1 MiB"),
        "{text}"
    );
}

#[test]
fn a_hundred_megabyte_file_is_refused_without_reading_it_whole() {
    let dir = tempfile::tempdir().expect("tmp");
    let big = dir.path().join("big.cfg");
    let f = std::fs::File::create(&big).expect("create");
    // Sparse: 100 MB that take no disk space.
    f.set_len(100 * 1000 * 1000).expect("set_len");
    let err = parse_file(&big).expect_err("too large");
    assert!(matches!(err, ReadError::TooLarge { .. }), "{err:?}");
}

#[test]
fn an_empty_config_names_its_file_at_line_1() {
    let dir = tempfile::tempdir().expect("tmp");
    let empty = dir.path().join("empty.cfg");
    std::fs::write(&empty, "").expect("write");
    let parsed = parse_file(&empty).expect("read");
    let errs = build(&parsed.settings, dir.path()).expect_err("no name");
    let text: String = errs
        .iter()
        .filter(|d| d.is_error())
        .map(Diagnostic::render)
        .collect();
    assert!(
        text.starts_with(&format!(
            "{}:1:1: error: `name` is required",
            empty.display()
        )),
        "{text}"
    );
    assert!(!text.contains(":0:0"), "{text}");
}

#[test]
fn a_config_of_comments_only_names_its_file_at_line_1() {
    let text: String = {
        let parsed = parse_str("c.cfg", "# nothing here\n\n# at all\n");
        let errs = build(&parsed.settings, Path::new("/")).expect_err("no name");
        errs.iter()
            .filter(|d| d.is_error())
            .map(Diagnostic::render)
            .collect()
    };
    assert!(text.starts_with("c.cfg:1:1: error:"), "{text}");
}
