//! One partition's ext2/3/4 file system, read through `ext4-view` over a
//! reader that cannot leave the partition.

use std::cell::RefCell;
use std::io::{Read, Seek, SeekFrom};
use std::rc::Rc;

use ext4_view::{Ext4, Ext4Read};

use crate::partition::Part;
use crate::Error;

/// A disk image shared by the partitions' readers.
pub(crate) trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}
pub(crate) type SharedDisk = Rc<RefCell<dyn ReadSeek>>;

type BoxedError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Reads inside `[start, start + len)` of the disk only.
struct PartReader {
    disk: SharedDisk,
    start: u64,
    len: u64,
}

impl Ext4Read for PartReader {
    fn read(&mut self, at: u64, dst: &mut [u8]) -> Result<(), BoxedError> {
        let fits = at
            .checked_add(dst.len() as u64)
            .is_some_and(|end| end <= self.len);
        if !fits {
            return Err(format!(
                "a read of {} bytes at byte {at} runs past the partition's end ({} bytes)",
                dst.len(),
                self.len
            )
            .into());
        }
        let mut d = self.disk.borrow_mut();
        d.seek(SeekFrom::Start(self.start + at))?;
        d.read_exact(dst)?;
        Ok(())
    }
}

fn le16(b: &[u8], at: usize) -> u64 {
    u64::from(crate::partition::le16(b, at))
}
fn le32(b: &[u8], at: usize) -> u64 {
    u64::from(crate::partition::le32(b, at))
}

/// The ext superblock's checks `ext4-view` leaves to memory: the group
/// descriptor table must fit in the partition (else a forged block count
/// would make it reserve gigabytes before reading anything).
fn precheck(r: &mut PartReader) -> Result<(), String> {
    let mut sb = vec![0u8; 1024];
    r.read(1024, &mut sb)
        .map_err(|e| format!("no ext2/3/4 superblock ({e})"))?;
    if le16(&sb, 0x38) != 0xef53 {
        return Err("not an ext2/3/4 file system (no superblock magic)".into());
    }
    let is64 = le32(&sb, 0x60) & 0x80 != 0;
    // ext4-view counts the high word of the block count with or without
    // the 64bit feature, so this does too.
    let blocks = le32(&sb, 0x4) | (le32(&sb, 0x150) << 32);
    let per_group = le32(&sb, 0x20);
    let first = le32(&sb, 0x14);
    let desc = if is64 { le16(&sb, 0xfe).max(64) } else { 32 };
    if per_group == 0 {
        return Err("the superblock says 0 blocks per group".into());
    }
    let groups = blocks.saturating_sub(first).div_ceil(per_group);
    if groups.saturating_mul(desc) > r.len {
        return Err(format!(
            "the superblock's {blocks} blocks make {groups} group descriptors, more than the partition ({} bytes) holds",
            r.len
        ));
    }
    Ok(())
}

/// An opened file system and where it is.
pub(crate) struct Fs {
    fs: Ext4,
}

/// How deep symbolic links may nest, as in libext2fs (its
/// `EXT2FS_MAX_NESTED_LINKS`), which pygrub's file lookups go through.
pub const MAX_NESTED_LINKS: u32 = 8;
/// How many symbolic links one lookup may follow in all. libext2fs has no
/// such bound (a path of many links to links can make it work for hours).
pub const MAX_LINKS_PER_LOOKUP: u32 = 64;

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = dir.to_vec();
    if p.last() != Some(&b'/') {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

impl Fs {
    pub(crate) fn open(disk: SharedDisk, place: &Part) -> Result<Fs, String> {
        let mut r = PartReader {
            disk,
            start: place.start,
            len: place.len,
        };
        precheck(&mut r)?;
        let fs = Ext4::load(Box::new(r))
            .map_err(|e| format!("not a readable ext2/3/4 file system: {e}"))?;
        Ok(Fs { fs })
    }

    /// libext2fs's `ext2fs_namei_follow` from the root, as pygrub looks
    /// files up: a relative path starts at the root, `..` of the root is the
    /// root, every symbolic link is followed (absolute ones from the file
    /// system's root: nothing leads out of the file system) at most
    /// [`MAX_NESTED_LINKS`] deep and [`MAX_LINKS_PER_LOOKUP`] in all. The
    /// answer is the path without links, `.` or `..`.
    pub(crate) fn resolve(&self, path: &str) -> Result<Vec<u8>, String> {
        let mut budget = MAX_LINKS_PER_LOOKUP;
        self.walk(b"/".to_vec(), path.as_bytes(), 0, &mut budget)
    }

    fn walk(
        &self,
        base: Vec<u8>,
        path: &[u8],
        depth: u32,
        budget: &mut u32,
    ) -> Result<Vec<u8>, String> {
        let mut cur = if path.starts_with(b"/") {
            b"/".to_vec()
        } else {
            base
        };
        for comp in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            if comp == b"." || comp == b".." {
                let md = self
                    .fs
                    .symlink_metadata(cur.as_slice())
                    .map_err(|e| e.to_string())?;
                if !md.is_dir() {
                    return Err("not a directory".into());
                }
                if comp == b".." {
                    let cut = cur.iter().rposition(|&b| b == b'/').unwrap_or(0);
                    cur.truncate(cut.max(1));
                }
                continue;
            }
            let next = join(&cur, comp);
            let md = self
                .fs
                .symlink_metadata(next.as_slice())
                .map_err(|e| e.to_string())?;
            if !md.is_symlink() {
                cur = next;
                continue;
            }
            if depth >= MAX_NESTED_LINKS {
                return Err(format!(
                    "symbolic links nest more than {MAX_NESTED_LINKS} deep"
                ));
            }
            if *budget == 0 {
                return Err(format!(
                    "more than {MAX_LINKS_PER_LOOKUP} symbolic links in one path"
                ));
            }
            *budget -= 1;
            let target = self
                .fs
                .read_link(next.as_slice())
                .map_err(|e| e.to_string())?;
            cur = self.walk(cur, target.as_ref(), depth + 1, budget)?;
        }
        Ok(cur)
    }

    /// Whether `path` names something, as libext2fs's lookup answers it
    /// for pygrub: any failure to resolve is "no".
    pub(crate) fn exists(&self, path: &str) -> bool {
        self.resolve(path).is_ok()
    }

    fn open_file(&self, path: &str) -> Result<ext4_view::File, String> {
        let p = self.resolve(path)?;
        self.fs.open(p.as_slice()).map_err(|e| e.to_string())
    }

    /// The first `max` bytes of a file.
    pub(crate) fn read_prefix(&self, path: &str, max: u64) -> Result<Vec<u8>, String> {
        let mut f = self.open_file(path)?;
        let want = f.metadata().len().min(max);
        read_n(&mut f, want).map_err(|e| e.to_string())
    }

    /// A whole file of at most `cap` bytes.
    pub(crate) fn read_capped(
        &self,
        what: &'static str,
        path: &str,
        cap: u64,
        place: &str,
    ) -> Result<Vec<u8>, Error> {
        let err = |reason: String| Error::File {
            what,
            path: path.to_owned(),
            place: place.to_owned(),
            reason,
        };
        let mut f = self.open_file(path).map_err(err)?;
        let size = f.metadata().len();
        if size > cap {
            return Err(Error::TooLarge {
                what,
                path: path.to_owned(),
                place: place.to_owned(),
                size,
                cap,
            });
        }
        read_n(&mut f, size).map_err(|e| err(e.to_string()))
    }
}

fn read_n(f: &mut ext4_view::File, n: u64) -> Result<Vec<u8>, ext4_view::Ext4Error> {
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    let mut out = vec![0u8; n];
    let mut done = 0;
    while done < n {
        let got = f.read_bytes(&mut out[done..])?;
        if got == 0 {
            break;
        }
        done += got;
    }
    out.truncate(done);
    Ok(out)
}
