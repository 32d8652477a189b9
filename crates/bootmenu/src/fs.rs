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
    let blocks = le32(&sb, 0x4) | if is64 { le32(&sb, 0x150) << 32 } else { 0 };
    let per_group = le32(&sb, 0x20);
    let first = le32(&sb, 0x14);
    let desc = if is64 { le16(&sb, 0xfe).max(32) } else { 32 };
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

/// pygrub's paths are relative to the root when they do not start at it.
fn abs(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
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

    /// Whether `path` names something, as libext2fs's lookup answers it
    /// for pygrub: any failure to resolve is "no".
    pub(crate) fn exists(&self, path: &str) -> bool {
        matches!(self.fs.exists(abs(path).as_str()), Ok(true))
    }

    /// The first `max` bytes of a file.
    pub(crate) fn read_prefix(&self, path: &str, max: u64) -> Result<Vec<u8>, String> {
        let mut f = self
            .fs
            .open(abs(path).as_str())
            .map_err(|e| e.to_string())?;
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
        let mut f = self
            .fs
            .open(abs(path).as_str())
            .map_err(|e| err(e.to_string()))?;
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
