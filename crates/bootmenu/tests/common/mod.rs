//! Builds guest disk images for the tests and the bench: a file tree put
//! into an ext2/3/4 file system with `mke2fs -d`, file systems laid out on
//! a disk with `sfdisk` (MBR or GPT) or used as the whole disk.
#![allow(dead_code)]

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A file or a symbolic link in a tree.
#[derive(Debug, Clone)]
pub enum Node {
    File(Vec<u8>),
    Link(String),
}

/// The files of one file system.
#[derive(Debug, Clone, Default)]
pub struct Tree(pub Vec<(String, Node)>);

impl Tree {
    pub fn new() -> Tree {
        Tree::default()
    }
    pub fn file(mut self, path: &str, bytes: impl AsRef<[u8]>) -> Tree {
        self.0
            .push((path.to_owned(), Node::File(bytes.as_ref().to_vec())));
        self
    }
    pub fn link(mut self, path: &str, target: &str) -> Tree {
        self.0
            .push((path.to_owned(), Node::Link(target.to_owned())));
        self
    }
    pub fn dir(self, path: &str) -> Tree {
        self.file(&format!("{path}/.keep"), b"")
    }
}

/// A kernel-like payload that names itself: `what` repeated to `len` bytes.
pub fn payload(what: &str, len: usize) -> Vec<u8> {
    what.bytes().cycle().take(len.max(what.len())).collect()
}

/// Whether the image tools are on this machine.
pub fn have_tools() -> bool {
    ["mke2fs", "sfdisk"].iter().all(|t| {
        Command::new(t)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    })
}

fn run(cmd: &mut Command, input: Option<&str>) {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let Some(i) = input {
        child.stdin.take().unwrap().write_all(i.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An ext2/3/4 file system image of `size_kib` holding `tree`; `fstype` is
/// mke2fs's `-t` value, optionally followed by more mke2fs options.
pub fn mkfs(dir: &Path, name: &str, tree: &Tree, fstype: &str, size_kib: u64) -> PathBuf {
    let src = dir.join(format!("{name}.d"));
    let _ = std::fs::remove_dir_all(&src);
    std::fs::create_dir_all(&src).unwrap();
    for (path, node) in &tree.0 {
        let p = src.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        match node {
            Node::File(b) => std::fs::write(&p, b).unwrap(),
            Node::Link(t) => std::os::unix::fs::symlink(t, &p).unwrap(),
        }
    }
    let img = dir.join(format!("{name}.fs"));
    // `fstype` may carry more mke2fs options: "ext2 -O ^filetype".
    let mut words = fstype.split_whitespace();
    let kind = words.next().unwrap_or("ext4");
    run(
        Command::new("mke2fs")
            .args(["-q", "-F", "-t", kind])
            .args(words)
            .arg("-d")
            .arg(&src)
            .arg(&img)
            .arg(format!("{size_kib}k")),
        None,
    );
    img
}

/// One partition of a disk.
#[derive(Debug, Clone)]
pub struct PartSpec {
    /// sfdisk's type: `83`, `82`, `ee` for MBR; `L`, `U`, `S` for GPT.
    pub kind: String,
    /// The file system written in it (zeros when `None`).
    pub fs: Option<PathBuf>,
    pub size_mib: u64,
    pub bootable: bool,
}

pub fn part(kind: &str, fs: Option<PathBuf>, size_mib: u64) -> PartSpec {
    PartSpec {
        kind: kind.to_owned(),
        fs,
        size_mib,
        bootable: false,
    }
}

/// A disk with a `dos` or `gpt` label, the partitions from 1 MiB on.
pub fn disk(dir: &Path, name: &str, label: &str, parts: &[PartSpec]) -> PathBuf {
    let img = dir.join(format!("{name}.disk"));
    let total: u64 = 2 + parts.iter().map(|p| p.size_mib).sum::<u64>();
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(total << 20).unwrap();
    drop(f);
    let mut script = format!("label: {label}\n");
    let mut start = 2048u64;
    for p in parts {
        let sectors = p.size_mib * 2048;
        script.push_str(&format!("start={start}, size={sectors}, type={}", p.kind));
        if p.bootable {
            script.push_str(", bootable");
        }
        script.push('\n');
        start += sectors;
    }
    run(
        Command::new("sfdisk")
            .args(["-q", "--no-reread", "--no-tell-kernel"])
            .arg(&img),
        Some(&script),
    );
    let mut f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    let mut at = 1u64 << 20;
    for p in parts {
        if let Some(fs) = &p.fs {
            let bytes = std::fs::read(fs).unwrap();
            assert!(
                bytes.len() as u64 <= p.size_mib << 20,
                "{} does not fit",
                fs.display()
            );
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(&bytes).unwrap();
        }
        at += p.size_mib << 20;
    }
    img
}
