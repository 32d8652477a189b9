//! Shared test helpers: the hello guest, a tiny ELF writer, a sparse guest memory that applies
//! a plan, and the cached Debian images.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use pvh::{BootPlan, Range};

/// Builds the hello guest once per test binary.
pub fn hello_elf() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hello-guest");
        pvh::testguest::build(&out).expect("build the hello guest (needs GNU as and ld)")
    })
    .clone()
}

/// One ELF note record (4-byte aligned).
pub fn note(name: &[u8], ty: u32, desc: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&(name.len() as u32).to_le_bytes());
    v.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    v.extend_from_slice(&ty.to_le_bytes());
    v.extend_from_slice(name);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v.extend_from_slice(desc);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}

/// A PT_LOAD segment for [`elf32`].
pub struct Seg {
    pub paddr: u32,
    pub data: Vec<u8>,
    pub memsz: u32,
}

/// Writes a little ELF32 (EM_386) with the given PT_LOAD segments and one PT_NOTE holding
/// `notes` (if not empty).
pub fn elf32(entry: u32, segs: &[Seg], notes: &[u8]) -> Vec<u8> {
    let nph = segs.len() + usize::from(!notes.is_empty());
    let mut out = vec![0u8; 52 + 32 * nph];
    out[..4].copy_from_slice(b"\x7fELF");
    out[4] = 1; // ELFCLASS32
    out[5] = 1; // little endian
    out[6] = 1; // version
    out[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out[18..20].copy_from_slice(&3u16.to_le_bytes()); // EM_386
    out[20..24].copy_from_slice(&1u32.to_le_bytes());
    out[24..28].copy_from_slice(&entry.to_le_bytes());
    out[28..32].copy_from_slice(&52u32.to_le_bytes()); // e_phoff
    out[40..42].copy_from_slice(&52u16.to_le_bytes()); // e_ehsize
    out[42..44].copy_from_slice(&32u16.to_le_bytes()); // e_phentsize
    out[44..46].copy_from_slice(&(nph as u16).to_le_bytes());
    out[46..48].copy_from_slice(&40u16.to_le_bytes()); // e_shentsize
    let mut phdrs = Vec::new();
    for s in segs {
        while out.len() % 16 != 0 {
            out.push(0);
        }
        let off = out.len() as u32;
        out.extend_from_slice(&s.data);
        phdrs.push([
            1,
            off,
            s.paddr,
            s.paddr,
            s.data.len() as u32,
            s.memsz,
            7,
            16,
        ]);
    }
    if !notes.is_empty() {
        while out.len() % 4 != 0 {
            out.push(0);
        }
        let off = out.len() as u32;
        out.extend_from_slice(notes);
        phdrs.push([4, off, 0, 0, notes.len() as u32, 0, 4, 4]);
    }
    for (i, ph) in phdrs.iter().enumerate() {
        for (j, w) in ph.iter().enumerate() {
            let at = 52 + 32 * i + 4 * j;
            out[at..at + 4].copy_from_slice(&w.to_le_bytes());
        }
    }
    out
}

/// The PHYS32_ENTRY note for `entry`.
pub fn phys32(entry: u32) -> Vec<u8> {
    note(b"Xen\0", 18, &entry.to_le_bytes())
}

/// Guest memory as the toolstack would leave it: populated pages, zeroes, then writes.
pub struct GuestMem {
    pages: BTreeMap<u64, Vec<u8>>,
    populated: Vec<Range>,
}

impl GuestMem {
    /// Applies `plan`, checking every zero and write lands in populated memory.
    pub fn apply(plan: &BootPlan) -> GuestMem {
        let mut m = GuestMem {
            pages: BTreeMap::new(),
            populated: plan.populate(),
        };
        for z in &plan.zeroes {
            m.check_populated(*z, "zero range");
            m.write(z.start, &vec![0u8; z.len() as usize]);
        }
        for w in &plan.writes {
            m.check_populated(w.range(), &w.what);
            for chunk in w.data.chunks(1 << 16) {
                let (off, bytes) = chunk.unwrap();
                m.write(w.paddr + off, &bytes);
            }
        }
        m
    }

    fn check_populated(&self, r: Range, what: &str) {
        assert!(
            self.populated.iter().any(|p| p.contains_range(&r)),
            "{what} [{:#x}, {:#x}) is not inside populated memory {:x?}",
            r.start,
            r.end,
            self.populated
        );
    }

    fn write(&mut self, addr: u64, bytes: &[u8]) {
        let mut done = 0usize;
        while done < bytes.len() {
            let a = addr + done as u64;
            let off = (a & 0xfff) as usize;
            let n = (4096 - off).min(bytes.len() - done);
            let page = self
                .pages
                .entry(a >> 12)
                .or_insert_with(|| vec![0xa5; 4096]);
            page[off..off + n].copy_from_slice(&bytes[done..done + n]);
            done += n;
        }
    }

    /// Reads guest memory; bytes never written read as 0xa5 (populated, not cleared).
    pub fn read(&self, addr: u64, len: usize) -> Vec<u8> {
        (0..len as u64)
            .map(|i| {
                let a = addr + i;
                self.pages
                    .get(&(a >> 12))
                    .map(|p| p[(a & 0xfff) as usize])
                    .unwrap_or(0xa5)
            })
            .collect()
    }

    pub fn u32(&self, addr: u64) -> u32 {
        u32::from_le_bytes(self.read(addr, 4).try_into().unwrap())
    }

    pub fn u64(&self, addr: u64) -> u64 {
        u64::from_le_bytes(self.read(addr, 8).try_into().unwrap())
    }

    /// A NUL-terminated string.
    pub fn cstr(&self, addr: u64) -> String {
        let mut v = Vec::new();
        for i in 0..65536 {
            let b = self.read(addr + i, 1)[0];
            if b == 0 {
                break;
            }
            v.push(b);
        }
        String::from_utf8(v).unwrap()
    }
}

/// Where downloaded Debian packages are cached: `$RXL_CACHE/pvh` or `<repo>/.cache/pvh`.
pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("RXL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache"));
    base.join("pvh")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Downloads (once, cached) and unpacks a Debian package; returns the unpack directory.
fn debian_package(pkg: &str) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let unpacked = dir.join(format!("{pkg}.d"));
    if unpacked.join(".done").exists() {
        return unpacked;
    }
    let find = || {
        std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{pkg}_")) && n.ends_with(".deb"))
            })
    };
    let deb = match find() {
        Some(d) => d,
        None => {
            run(Command::new("apt-get")
                .arg("download")
                .arg(pkg)
                .current_dir(&dir));
            find().unwrap_or_else(|| panic!("apt-get download {pkg} left no .deb in {dir:?}"))
        }
    };
    let _ = std::fs::remove_dir_all(&unpacked);
    run(Command::new("dpkg").arg("-x").arg(&deb).arg(&unpacked));
    std::fs::write(unpacked.join(".done"), b"").unwrap();
    unpacked
}

/// The current Debian kernel package name (`linux-image-6.1.0-NN-amd64`).
fn debian_kernel_package() -> String {
    let depends = |s: &str| {
        s.lines()
            .filter_map(|l| l.trim().strip_prefix("Depends: "))
            .find(|d| d.starts_with("linux-image-"))
            .map(str::to_string)
    };
    let out = run(Command::new("apt-cache").args(["depends", "linux-image-amd64"]));
    if let Some(p) = depends(&out) {
        return p;
    }
    run(Command::new("apt-get").arg("update"));
    let out = run(Command::new("apt-cache").args(["depends", "linux-image-amd64"]));
    depends(&out).expect("apt-cache depends linux-image-amd64 names no kernel package")
}

/// Debian's vmlinuz (bzImage, xz payload), downloaded and cached.
pub fn debian_vmlinuz() -> PathBuf {
    let pkg = debian_kernel_package();
    let dir = debian_package(&pkg).join("boot");
    std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .unwrap_or_else(|| panic!("no vmlinuz in {dir:?}"))
}

/// grub-xen-host's PVH image, downloaded and cached.
pub fn debian_grub_pvh() -> PathBuf {
    debian_package("grub-xen-host").join("usr/lib/grub-xen/grub-i386-xen_pvh.bin")
}

/// The PHYS32_ENTRY value `readelf -n` shows for an ELF file.
pub fn readelf_phys32_entry(elf: &Path) -> u64 {
    let out = run(Command::new("readelf").arg("-nW").arg(elf));
    let mut lines = out.lines();
    while let Some(l) = lines.next() {
        if l.contains("Xen") && l.contains("0x00000012") {
            // The description bytes follow on this or the next line.
            let data = if l.contains("description data:") {
                l.to_string()
            } else {
                lines.next().unwrap_or_default().to_string()
            };
            let hex = data.split("description data:").nth(1).unwrap();
            let bytes: Vec<u8> = hex
                .split_whitespace()
                .map(|b| u8::from_str_radix(b, 16).unwrap())
                .collect();
            let mut v = [0u8; 8];
            v[..bytes.len()].copy_from_slice(&bytes);
            return u64::from_le_bytes(v);
        }
    }
    panic!("readelf -n {elf:?} shows no PHYS32_ENTRY note:\n{out}");
}
