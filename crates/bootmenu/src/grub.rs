//! GRUB legacy (`menu.lst`, `grub.conf`) and the GRUB 2 subset pygrub
//! understands (`grub.cfg`), with GrubConf.py's rules: which lines count,
//! which values are checked (and make pygrub give up on the file), how
//! kernel arguments and the default entry are read.

use crate::menu::{index_of, ConfigError, Entry, Menu};
use crate::pytext::{command_split, grub_split, py_int, skip_chars, split_sep, split_ws, strip};

/// A line of an entry body with its 1-based number.
type Line<'a> = (usize, &'a str);

/// `GrubDiskPart(s)`: `hdN`, `hdN,M`, `(hdN,msdosM)`, `/dev/xvdX...`;
/// anything else is an error in pygrub.
fn disk_part(s: &str) -> Result<(), String> {
    let (disk, part) = if s.contains(',') {
        let v = split_sep(s, ",", Some(2));
        if v.len() != 2 {
            return Err(format!("device {s:?} has more than one comma"));
        }
        (v[0], Some(v[1]))
    } else {
        (s, None)
    };
    let d = disk.replace(['(', ')'], "");
    if let Some(rest) = d.strip_prefix("/dev/xvd") {
        if rest.is_empty() {
            return Err(format!("device {s:?} names no xvd disk"));
        }
    } else if py_int(skip_chars(&d, 2)).is_none() {
        return Err(format!("device {s:?} has no disk number"));
    }
    if let Some(p) = part {
        let p = p.replace(['(', ')'], "");
        let p = p.strip_prefix("msdos").unwrap_or(&p);
        let p = p.strip_prefix("gpt").unwrap_or(p);
        if py_int(p).is_none() {
            return Err(format!("device {s:?} has no partition number"));
        }
    }
    Ok(())
}

/// `get_path(s)`: the path after an optional `(device)` prefix.
fn get_path(s: &str) -> Result<String, String> {
    if !s.starts_with('(') {
        return Ok(s.to_owned());
    }
    let Some(idx) = s.find(')') else {
        return Err(format!("no ')' closes the device of {s:?}"));
    };
    disk_part(&s[..idx])?;
    Ok(s[idx + 1..].to_owned())
}

/// `_GrubImage.set_kernel`: the path, then the arguments after the first
/// run of whitespace (only when the value holds a space).
fn set_kernel(e: &mut Entry, val: &str) -> Result<(), String> {
    if !val.contains(' ') {
        e.kernel = Some(get_path(val)?);
        e.args = None;
        return Ok(());
    }
    let v = split_ws(val, Some(1));
    e.kernel = Some(get_path(v[0])?);
    e.args = Some(v.get(1).copied().unwrap_or("").to_owned());
    Ok(())
}

/// `_set_default`: "saved" and non-numbers are 0, negative is an error.
fn default_index(val: &str) -> Result<usize, String> {
    if val == "saved" {
        return Ok(0);
    }
    match py_int(val) {
        Some(v) if v < 0 => Err(format!("default {val:?} is negative")),
        Some(v) => Ok(index_of(v)),
        None => Ok(0),
    }
}

fn at(file: &str, line: usize) -> impl Fn(String) -> ConfigError + '_ {
    move |m| ConfigError::new(file, line, m)
}

/// Parse a GRUB legacy `menu.lst` / `grub.conf` as pygrub 4.17 does.
pub fn parse_grub1(text: &str, file: &str) -> Result<Menu, ConfigError> {
    let mut menu = Menu::default();
    let mut img: Option<Vec<Line<'_>>> = None;
    let mut title = "";
    for (i, raw) in text.split('\n').enumerate() {
        let n = i + 1;
        let l = strip(raw);
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if l.starts_with("title") {
            if let Some(lines) = img.take() {
                menu.entries.push(grub1_entry(title, &lines, file)?);
            }
            img = Some(Vec::new());
            title = skip_chars(l, 6);
            continue;
        }
        if let Some(lines) = img.as_mut() {
            lines.push((n, l));
            continue;
        }
        let (com, arg) = command_split(l);
        match com {
            "default" => menu.default = default_index(strip(arg)).map_err(at(file, n))?,
            "splashimage" => {
                get_path(strip(arg)).map_err(at(file, n))?;
            }
            _ => {}
        }
    }
    // pygrub drops a last title with no lines (but keeps empty ones
    // before it).
    if let Some(lines) = img.filter(|l| !l.is_empty()) {
        menu.entries.push(grub1_entry(title, &lines, file)?);
    }
    Ok(menu)
}

fn grub1_entry(title: &str, lines: &[Line<'_>], file: &str) -> Result<Entry, ConfigError> {
    let mut e = Entry::default();
    for &(n, line) in lines {
        let (com, arg) = command_split(line);
        let arg = strip(arg);
        let r = match com {
            "root" | "rootnoverify" => disk_part(arg),
            "kernel" => set_kernel(&mut e, arg),
            "initrd" => get_path(arg).map(|p| e.initrd = Some(p)),
            _ => Ok(()),
        };
        r.map_err(at(file, n))?;
    }
    e.title = strip(title).to_owned();
    Ok(e)
}

/// `grub2_handle_set`: `set NAME=VALUE` to `("set:NAME", VALUE)`, one level
/// of matching quotes removed from VALUE.
fn handle_set(arg: &str) -> Result<(String, String), String> {
    let v = grub_split(arg, Some(2));
    if v.len() != 2 {
        return Err(format!("`set {arg}` is not NAME=VALUE"));
    }
    Ok((format!("set:{}", v[0]), unquote_same(v[1]).to_owned()))
}

/// `re.match("([\"'])(.*)\1", s)`: from a leading quote to the last
/// occurrence of the same quote.
fn unquote_same(s: &str) -> &str {
    let Some(q) = s.chars().next().filter(|c| *c == '"' || *c == '\'') else {
        return s;
    };
    match s[1..].rfind(q) {
        Some(j) => &s[1..1 + j],
        None => s,
    }
}

/// `^menuentry ["'](.*?)["'] (.*){`: the title of a `menuentry` line.
pub(crate) fn menuentry_title(l: &str) -> Option<&str> {
    let rest = l.strip_prefix("menuentry ")?;
    let body = rest.strip_prefix(['"', '\''])?;
    let brace = body.rfind('{')?;
    body.char_indices()
        .find(|&(j, c)| (c == '"' || c == '\'') && body[j + 1..].starts_with(' ') && j + 2 <= brace)
        .map(|(j, _)| &body[..j])
}

/// Parse a GRUB 2 `grub.cfg` as pygrub 4.17 does: `menuentry` blocks,
/// `submenu` blocks flattened, `function` blocks skipped, `set default=`.
pub fn parse_grub2(text: &str, file: &str) -> Result<Menu, ConfigError> {
    let mut menu = Menu::default();
    let mut in_function = false;
    let mut img: Option<Vec<Line<'_>>> = None;
    let mut title = "";
    let mut level = 0usize;
    let mut last = 0;
    for (i, raw) in text.split('\n').enumerate() {
        let n = i + 1;
        last = n;
        let l = strip(raw);
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if l.starts_with("function") {
            in_function = true;
            continue;
        }
        if in_function {
            if l.starts_with('}') {
                in_function = false;
            }
            continue;
        }
        if let Some(t) = menuentry_title(l) {
            if img.is_some() {
                return Err(ConfigError::new(file, n, "a menuentry inside a menuentry"));
            }
            img = Some(Vec::new());
            title = t;
            continue;
        }
        if l.starts_with("submenu") {
            level += 1;
            continue;
        }
        if l.starts_with('}') {
            match img.take() {
                Some(lines) => menu.entries.push(grub2_entry(title, &lines, file)?),
                None if level > 0 => level -= 1,
                None => {
                    return Err(ConfigError::new(
                        file,
                        n,
                        "a closing brace outside any menuentry",
                    ))
                }
            }
            continue;
        }
        if let Some(lines) = img.as_mut() {
            lines.push((n, l));
            continue;
        }
        let (com, arg) = command_split(l);
        if com == "set" {
            let (name, value) = handle_set(arg).map_err(at(file, n))?;
            if name == "set:default" {
                let mut v = strip(&value);
                // pygrub cannot read grubenv: a saved or one-shot default
                // is entry 0.
                if v == "${saved_entry}" || v == "${next_entry}" {
                    v = "0";
                }
                menu.default = default_index(v).map_err(at(file, n))?;
            }
        }
    }
    if img.is_some() {
        return Err(ConfigError::new(
            file,
            last,
            "the file ends inside a menuentry",
        ));
    }
    Ok(menu)
}

fn grub2_entry(title: &str, lines: &[Line<'_>], file: &str) -> Result<Entry, ConfigError> {
    let mut e = Entry::default();
    for &(n, line) in lines {
        let (com, arg) = command_split(line);
        let (com, arg) = if com == "set" {
            handle_set(arg).map_err(at(file, n))?
        } else {
            (com.to_owned(), arg.to_owned())
        };
        let arg = strip(&arg);
        let r = match com.as_str() {
            "set:root" => disk_part(arg),
            "linux" | "linux16" => set_kernel(&mut e, arg),
            "initrd" | "initrd16" => get_path(arg).map(|p| e.initrd = Some(p)),
            _ => Ok(()),
        };
        r.map_err(at(file, n))?;
    }
    e.title = strip(title).to_owned();
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(e: &Entry) -> (&str, Option<&str>, Option<&str>) {
        (
            e.kernel.as_deref().unwrap_or("<none>"),
            e.initrd.as_deref(),
            e.args.as_deref(),
        )
    }

    const DEBIAN: &str = include_str!("../tests/data/debian-grub.cfg");

    #[test]
    fn grub2_debian_layout() {
        let m = parse_grub2(DEBIAN, "/boot/grub/grub.cfg").unwrap();
        assert_eq!(m.entries.len(), 3);
        assert_eq!(m.default, 0);
        assert_eq!(m.entries[0].title, "Debian GNU/Linux");
        assert_eq!(
            k(&m.entries[0]),
            (
                "/boot/vmlinuz-b",
                Some("/boot/initrd-b"),
                Some("root=UUID=7f1c ro  quiet")
            )
        );
        assert_eq!(
            m.entries[2].title,
            "Debian GNU/Linux, with Linux 6.1.0-13-amd64 (recovery mode)"
        );
        assert_eq!(k(&m.entries[2]).2, Some("root=UUID=7f1c ro single"));
    }

    #[test]
    fn grub2_default_rules() {
        let body = "menuentry 'a' {\nlinux /a\n}\nmenuentry 'b' {\nlinux /b\n}\n";
        for (set, want) in [
            ("set default=1", 1),
            ("set default='1'", 1),
            ("set default=\"${saved_entry}\"", 0),
            ("set default=${next_entry}", 0),
            ("set default=saved", 0),
            // pygrub turns a title into 0 (int() fails).
            ("set default='b'", 0),
            ("set default=\"a>b\"", 0),
            ("set default=7", 7),
        ] {
            let m = parse_grub2(&format!("{set}\n{body}"), "g").unwrap();
            assert_eq!(m.default, want, "{set}");
        }
        let e = parse_grub2(&format!("set default=-1\n{body}"), "g").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.to_string().starts_with("g:1: "), "{e}");
    }

    #[test]
    fn grub2_refusals_name_the_line() {
        for (text, line) in [
            ("menuentry 'a' {\nmenuentry 'b' {\n}\n}\n", 2),
            ("}\n", 1),
            ("menuentry 'a' {\nlinux /a\n", 3),
            ("set\n", 1),
            ("set x=\"a=b\"\n", 1),
            ("menuentry 'a' {\nset root=(hd0,1,2)\n}\n", 2),
            ("menuentry 'a' {\nlinux (zz)/a\n}\n", 2),
            ("menuentry 'a' {\ninitrd (hd0/a\n}\n", 2),
        ] {
            let e = parse_grub2(text, "f").unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
        }
    }

    #[test]
    fn grub2_entry_details() {
        let m = parse_grub2(
            "menuentry \"x\" --unrestricted {\nlinux16 (hd0,gpt2)/vmlinuz\ninitrd16 /a /b\n}\n\
             menuentry 'y' {\nlinux /k\tro\nset root=/dev/xvda1\n}\n\
             menuentry 'no kernel' {\n}\nmenuentry \"t\"{\nlinux /z\n",
            "f",
        );
        // The last block is not a menuentry (no space before the brace):
        // its `}` is missing, so no error; its lines are top-level.
        let m = m.unwrap();
        assert_eq!(m.entries.len(), 3);
        assert_eq!(k(&m.entries[0]), ("/vmlinuz", Some("/a /b"), None));
        // A tab alone does not split the kernel from its arguments.
        assert_eq!(k(&m.entries[1]), ("/k\tro", None, None));
        assert_eq!(m.entries[2].kernel, None);
    }

    #[test]
    fn menuentry_title_regex() {
        assert_eq!(menuentry_title("menuentry 'a b' --x {"), Some("a b"));
        assert_eq!(menuentry_title("menuentry \"a' b\" {"), Some("a"));
        assert_eq!(menuentry_title("menuentry '' {"), Some(""));
        assert_eq!(menuentry_title("menuentry 'a'{"), None);
        assert_eq!(menuentry_title("menuentry 'a' x"), None);
        assert_eq!(menuentry_title("menuentry a {"), None);
    }

    #[test]
    fn functions_are_skipped_and_submenus_flattened() {
        let t = "function f {\nmenuentry 'no' {\n}\nsubmenu 's' {\nsubmenu 't' {\n\
                 menuentry 'in' {\nlinux /in\n}\n}\n}\nmenuentry 'out' {\nlinux /out\n}\n";
        let m = parse_grub2(t, "f").unwrap();
        let titles: Vec<_> = m.entries.iter().map(|e| e.title.as_str()).collect();
        // The function's body ends at its first `}`, the menuentry's in
        // this case.
        assert_eq!(titles, ["in", "out"]);
    }

    #[test]
    fn grub1_menu_lst() {
        let t = "default 1\ntimeout 5\nsplashimage=(hd0,0)/grub/splash.xpm.gz\nhiddenmenu\n\
                 title Debian A\n root (hd0,0)\n kernel /vmlinuz-a root=/dev/xvda1 ro\n initrd /initrd-a\n\
                 title=Debian B\n kernel (hd0,0)/vmlinuz-b\n\
                 title empty\n";
        let m = parse_grub1(t, "/boot/grub/menu.lst").unwrap();
        assert_eq!(m.default, 1);
        assert_eq!(m.entries.len(), 2, "a last empty title is dropped");
        assert_eq!(m.entries[0].title, "Debian A");
        assert_eq!(
            k(&m.entries[0]),
            ("/vmlinuz-a", Some("/initrd-a"), Some("root=/dev/xvda1 ro"))
        );
        assert_eq!(m.entries[1].title, "Debian B");
        assert_eq!(k(&m.entries[1]), ("/vmlinuz-b", None, None));
        // An empty title before another is kept.
        let m = parse_grub1("title a\ntitle b\nkernel /b\n", "f").unwrap();
        assert_eq!(m.entries.len(), 2);
        assert_eq!(m.entries[0].kernel, None);
    }

    #[test]
    fn grub1_refusals() {
        for (t, line) in [
            ("default -2\n", 1),
            ("splashimage (hd0\n", 1),
            ("title a\nroot (hdx,0)\n", 2),
            ("title a\nkernel (hd0,msdosX)/k\n", 2),
        ] {
            let e = parse_grub1(t, "m").unwrap_err();
            assert_eq!(e.line, line, "{t:?}");
        }
        assert!(parse_grub1("title a\nroot (hd0,gpt1)\nkernel /k\n", "m").is_ok());
        assert!(parse_grub1("title a\nroot /dev/xvda\nkernel /k\n", "m").is_ok());
        assert!(parse_grub1("title a\nroot /dev/xvd\nkernel /k\n", "m").is_err());
    }
}
