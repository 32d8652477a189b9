//! extlinux / isolinux configuration files as ExtLinuxConf.py reads them:
//! `label` blocks, `kernel`, `append` (with `initrd=` taken out of it, and
//! the `mboot.c32` form), `default` by label.

use crate::menu::{ConfigError, Entry, Menu};
use crate::pytext::{command_split, split_sep, split_ws, strip};

/// `re.sub('^"(.+)"$', r"\1", s)`.
fn unquote(s: &str) -> &str {
    if s.chars().count() >= 3 && s.starts_with('"') && s.ends_with('"') {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

fn starts_with_label(l: &str) -> bool {
    l.len() >= 5 && l.as_bytes()[..5].eq_ignore_ascii_case(b"label")
}

/// `ExtLinuxImage.set_kernel`.
fn set_kernel(e: &mut Entry, val: &str) -> Result<(), String> {
    if !val.contains(' ') {
        e.kernel = Some(val.to_owned());
        e.args = None;
        return Ok(());
    }
    match split_ws(val, Some(1))[..] {
        [k, a] => {
            e.kernel = Some(k.to_owned());
            e.args = Some(a.to_owned());
            Ok(())
        }
        _ => Err(format!("kernel {val:?} is not a path and arguments")),
    }
}

/// Parse an extlinux.conf / isolinux.cfg as pygrub 4.17 does.
pub fn parse_extlinux(text: &str, file: &str) -> Result<Menu, ConfigError> {
    let mut entries = Vec::new();
    let mut img: Vec<(usize, &str)> = Vec::new();
    let mut default: Option<&str> = None;
    for (i, raw) in text.split('\n').enumerate() {
        let l = strip(raw);
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if starts_with_label(l) {
            if !img.is_empty() {
                entries.push(entry(&img, file)?);
            }
            img = vec![(i + 1, l)];
            continue;
        }
        if !img.is_empty() {
            img.push((i + 1, l));
            continue;
        }
        let (com, arg) = command_split(l);
        if com.to_lowercase() == "default" {
            default = Some(strip(arg));
        }
    }
    if !img.is_empty() {
        entries.push(entry(&img, file)?);
    }
    let default = default
        .and_then(|d| entries.iter().position(|e: &Entry| e.title == d))
        .unwrap_or(0);
    Ok(Menu { entries, default })
}

fn entry(lines: &[(usize, &str)], file: &str) -> Result<Entry, ConfigError> {
    let mut e = Entry {
        args: Some(String::new()),
        ..Entry::default()
    };
    for &(n, line) in lines {
        let (com, arg) = command_split(line);
        let mut com = Some(com.to_lowercase());
        let mut arg = arg.to_owned();
        if com.as_deref() == Some("append") {
            if let Some(kernel) = e.kernel.clone() {
                if kernel.ends_with("mboot.c32") {
                    // Xen --- kernel --- initrd, or kernel --- initrd.
                    let modules = split_sep(&arg, "---", None);
                    let (k, i) = match modules[..] {
                        [_, k, i] => (k, i),
                        [k, i] => (k, i),
                        _ => ("", ""),
                    };
                    if !k.is_empty() {
                        set_kernel(&mut e, strip(k)).map_err(|m| ConfigError::new(file, n, m))?;
                    }
                    if !i.is_empty() {
                        e.initrd = Some(strip(i).to_owned());
                    }
                    com = None;
                } else if arg.contains("initrd=") {
                    let words: Vec<String> = strip(&arg).split(' ').map(str::to_owned).collect();
                    for a in words {
                        if a.to_lowercase().starts_with("initrd=") {
                            e.initrd = Some(a.replace("initrd=", ""));
                            arg = arg.replace(&a, "");
                        }
                    }
                }
            }
        }
        let value = unquote(strip(&arg));
        match com.as_deref() {
            Some("label") => e.title = value.to_owned(),
            Some("kernel") => {
                set_kernel(&mut e, value).map_err(|m| ConfigError::new(file, n, m))?
            }
            Some("append") => e.args = Some(value.to_owned()),
            _ => {}
        }
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_kernel_append_initrd() {
        let t = "DEFAULT second\nPROMPT 0\nTIMEOUT 50\n\
                 LABEL first\n  KERNEL /boot/vmlinuz-1\n  APPEND root=/dev/xvda1 initrd=/boot/initrd-1 ro\n\
                 label \"second\"\n  kernel /boot/vmlinuz-2 console=hvc0\n  initrd /boot/ignored\n";
        let m = parse_extlinux(t, "/boot/extlinux/extlinux.conf").unwrap();
        assert_eq!(m.entries.len(), 2);
        assert_eq!(m.default, 1);
        let a = &m.entries[0];
        assert_eq!(a.title, "first");
        assert_eq!(a.kernel.as_deref(), Some("/boot/vmlinuz-1"));
        assert_eq!(a.initrd.as_deref(), Some("/boot/initrd-1"));
        assert_eq!(a.args.as_deref(), Some("root=/dev/xvda1  ro"));
        let b = &m.entries[1];
        assert_eq!(b.title, "second");
        assert_eq!(
            b.initrd, None,
            "`initrd` is not an extlinux directive for pygrub"
        );
        assert_eq!(b.args.as_deref(), Some("console=hvc0"));
    }

    #[test]
    fn default_names_a_label_else_first() {
        let m = parse_extlinux("default nope\nlabel a\nkernel /a\n", "f").unwrap();
        assert_eq!(m.default, 0);
        let m = parse_extlinux("label a\nkernel /a\nlabel b\nkernel /b\n", "f").unwrap();
        assert_eq!(m.default, 0);
    }

    #[test]
    fn append_before_kernel_keeps_initrd_in_args() {
        let m = parse_extlinux("label a\nappend initrd=/i ro\nkernel /k\n", "f").unwrap();
        let e = &m.entries[0];
        assert_eq!(e.initrd, None);
        // `kernel` without arguments resets them.
        assert_eq!(e.args, None);
    }

    #[test]
    fn mboot_c32() {
        let m = parse_extlinux(
            "label xen\nkernel mboot.c32\nappend xen.gz dom0_mem=1G --- vmlinuz root=/dev/xvda1 ro --- initrd.img\n\
             label two\nkernel /mboot.c32\nappend vmlinuz quiet --- /initrd\n\
             label one\nkernel mboot.c32 x\nappend only\n",
            "f",
        )
        .unwrap();
        let e = &m.entries[0];
        assert_eq!(e.kernel.as_deref(), Some("vmlinuz"));
        assert_eq!(e.args.as_deref(), Some("root=/dev/xvda1 ro"));
        assert_eq!(e.initrd.as_deref(), Some("initrd.img"));
        let e = &m.entries[1];
        assert_eq!(e.kernel.as_deref(), Some("vmlinuz"));
        assert_eq!(e.initrd.as_deref(), Some("/initrd"));
        let e = &m.entries[2];
        assert_eq!(e.kernel.as_deref(), Some("mboot.c32"));
        assert_eq!(e.args.as_deref(), Some("x"));
    }

    #[test]
    fn quoted_kernel_with_leading_space_is_refused() {
        let e = parse_extlinux("label a\nkernel \" a\"\n", "f").unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("f", 2));
    }
}
