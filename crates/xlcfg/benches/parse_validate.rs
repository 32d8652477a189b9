//! Parse + build of a typical PVH config (kernel, ramdisk, modules, two disks, two vifs).

use std::path::Path;

fn main() {
    divan::main();
}

const TYPICAL: &str = r#"# a typical PVH guest
name = "web1"
type = "pvh"
memory = 1024
maxmem = 2048
vcpus = 2
kernel = "boot/vmlinuz"
ramdisk = "boot/initrd.img"
modules = [ "boot/microcode.bin", [ "boot/extra.cpio", "verbose" ] ]
root = "/dev/xvda1"
extra = "console=hvc0 quiet"
on_crash = "preserve"
disk = [ "root.img,raw,xvda,rw", "phy:/dev/vg0/data,xvdb,w" ]
vif = [ "mac=00:16:3e:01:02:03,bridge=xenbr0", "bridge=xenbr1,rate=100Mb/s" ]
"#;

/// Text to validated `DomainConfig`.
#[divan::bench]
fn parse_and_build() -> xlcfg::DomainConfig {
    let parsed = xlcfg::parse_str("web1.cfg", divan::black_box(TYPICAL));
    match xlcfg::build(&parsed.settings, Path::new("/etc/xen")) {
        Ok(b) => b.config,
        Err(d) => panic!("{d:?}"),
    }
}

/// The model alone, from already parsed settings.
#[divan::bench]
fn build_only(bencher: divan::Bencher<'_, '_>) {
    let parsed = xlcfg::parse_str("web1.cfg", TYPICAL);
    bencher
        .bench(|| xlcfg::build(divan::black_box(&parsed.settings), Path::new("/etc/xen")).is_ok());
}

/// Parse + build + the JSON the toolstack stores.
#[divan::bench]
fn parse_build_json() -> String {
    let parsed = xlcfg::parse_str("web1.cfg", divan::black_box(TYPICAL));
    match xlcfg::build(&parsed.settings, Path::new("/etc/xen")) {
        Ok(b) => b.config.to_json().to_string(),
        Err(d) => panic!("{d:?}"),
    }
}

/// A config of `n` keys that neither xl nor rxl knows (after name, type and kernel).
fn unknown_keys_text(n: usize) -> String {
    let mut text = String::from("name = \"g\"\ntype = \"pvh\"\nkernel = \"/k\"\n");
    for i in 0..n {
        text.push_str(&format!("unknownkey_{i} = {i}\n"));
    }
    text
}

/// `n` unknown keys: parse, build (one warning with a "did you mean" search per key) and
/// render every diagnostic, what `rxl config check` does. Linear in `n`: each key costs the
/// same whatever its line.
#[divan::bench(args = [1_000, 5_000, 20_000])]
fn unknown_keys(bencher: divan::Bencher<'_, '_>, n: usize) {
    let text = unknown_keys_text(n);
    bencher.bench(|| {
        let parsed = xlcfg::parse_str("g.cfg", divan::black_box(&text));
        let built = xlcfg::build(&parsed.settings, Path::new("/etc/xen"));
        let warnings = match built {
            Ok(b) => b.warnings,
            Err(d) => d,
        };
        warnings.iter().map(|d| d.render().len()).sum::<usize>()
    });
}

/// The parse alone of 20,000 unknown keys.
#[divan::bench]
fn unknown_keys_parse_only(bencher: divan::Bencher<'_, '_>) {
    let text = unknown_keys_text(20_000);
    bencher.bench(|| {
        xlcfg::parse_str("g.cfg", divan::black_box(&text))
            .settings
            .entries
            .len()
    });
}

/// The build alone (the warnings, not rendered) of 20,000 unknown keys.
#[divan::bench]
fn unknown_keys_build_only(bencher: divan::Bencher<'_, '_>) {
    let parsed = xlcfg::parse_str("g.cfg", &unknown_keys_text(20_000));
    bencher.bench(|| {
        match xlcfg::build(divan::black_box(&parsed.settings), Path::new("/etc/xen")) {
            Ok(b) => b.warnings.len(),
            Err(d) => d.len(),
        }
    });
}
