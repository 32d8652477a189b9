//! Writing the cpio "newc" archive the Linux kernel unpacks as an initramfs.
//!
//! Each entry is a 110-byte ASCII header (`070701` and thirteen 8-digit hex fields), the
//! NUL-terminated name padded to a multiple of four bytes, then the data padded the same
//! way. The archive ends with an entry named `TRAILER!!!`. The `cpio` crate writes the
//! headers, padding and trailer; this wrapper adds what the image needs on top: names
//! checked and made relative, distinct inode numbers, typed entries, sizes checked.

use std::io::{self, Write};

/// Mode bits for the file type field of a newc header.
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

/// The magic at the start of every newc header (no checksum variant).
#[cfg(test)]
const MAGIC: &[u8; 6] = b"070701";
/// The name of the entry that ends an archive.
const TRAILER: &str = "TRAILER!!!";

/// What went wrong while writing an archive.
#[derive(Debug, thiserror::Error)]
pub enum CpioError {
    /// The entry name is empty, absolute after trimming, or holds a NUL byte.
    #[error("cpio entry name {0:?} is not a valid relative path")]
    BadName(String),
    /// The data is larger than the 32-bit size field allows.
    #[error("cpio entry {name:?} is {len} bytes; newc entries hold at most 4 GiB")]
    TooLarge {
        /// Entry name.
        name: String,
        /// Data length in bytes.
        len: usize,
    },
    /// More entries than the 32-bit inode field can number.
    #[error("too many cpio entries for 32-bit inode numbers")]
    TooManyEntries,
    /// The underlying writer failed.
    #[error("writing the cpio archive failed")]
    Io(#[from] io::Error),
}

/// Streams entries into a newc archive.
#[derive(Debug)]
pub struct CpioWriter<W: Write> {
    out: W,
    next_ino: u32,
}

impl<W: Write> CpioWriter<W> {
    /// Starts an archive on `out`.
    pub fn new(out: W) -> Self {
        Self { out, next_ino: 1 }
    }

    /// Adds a directory with permission bits `perm` (e.g. 0o755).
    pub fn dir(&mut self, name: &str, perm: u32) -> Result<(), CpioError> {
        self.entry(name, S_IFDIR | (perm & 0o7777), 2, (0, 0), &[])
    }

    /// Adds a regular file with permission bits `perm` and contents `data`.
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> Result<(), CpioError> {
        self.entry(name, S_IFREG | (perm & 0o7777), 1, (0, 0), data)
    }

    /// Adds a symbolic link `name` pointing at `target`.
    pub fn symlink(&mut self, name: &str, target: &str) -> Result<(), CpioError> {
        self.entry(name, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes())
    }

    /// Adds a character device node.
    pub fn char_dev(
        &mut self,
        name: &str,
        perm: u32,
        major: u32,
        minor: u32,
    ) -> Result<(), CpioError> {
        self.entry(name, S_IFCHR | (perm & 0o7777), 1, (major, minor), &[])
    }

    /// Writes the trailer and returns the underlying writer.
    pub fn finish(self) -> Result<W, CpioError> {
        let mut out = ::cpio::newc::trailer(self.out)?;
        out.flush()?;
        Ok(out)
    }

    fn entry(
        &mut self,
        name: &str,
        mode: u32,
        nlink: u32,
        rdev: (u32, u32),
        data: &[u8],
    ) -> Result<(), CpioError> {
        let trimmed = name.trim_start_matches('/');
        if trimmed.is_empty() || trimmed.contains('\0') || trimmed == TRAILER {
            return Err(CpioError::BadName(name.to_owned()));
        }
        let ino = self.next_ino;
        self.next_ino = ino.checked_add(1).ok_or(CpioError::TooManyEntries)?;
        self.raw_entry(trimmed, ino, mode, nlink, rdev, data)
    }

    fn raw_entry(
        &mut self,
        name: &str,
        ino: u32,
        mode: u32,
        nlink: u32,
        rdev: (u32, u32),
        data: &[u8],
    ) -> Result<(), CpioError> {
        let size = u32::try_from(data.len()).map_err(|_| CpioError::TooLarge {
            name: name.to_owned(),
            len: data.len(),
        })?;
        let mut entry = ::cpio::newc::Builder::new(name)
            .ino(ino)
            .mode(mode)
            .nlink(nlink)
            .rdev_major(rdev.0)
            .rdev_minor(rdev.1)
            .write(&mut self.out, size);
        entry.write_all(data)?;
        entry.finish()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One parsed entry: (name, mode, rdevmajor, rdevminor, data).
    type Parsed = (String, u32, u32, u32, Vec<u8>);

    /// A small independent newc reader used to check the writer's output.
    fn parse(archive: &[u8]) -> Vec<Parsed> {
        let mut out = Vec::new();
        let mut pos = 0usize;
        loop {
            assert_eq!(pos % 4, 0, "header at unaligned offset {pos}");
            assert_eq!(&archive[pos..pos + 6], MAGIC);
            let field = |i: usize| {
                let s = std::str::from_utf8(&archive[pos + 6 + i * 8..pos + 14 + i * 8]).unwrap();
                u32::from_str_radix(s, 16).unwrap()
            };
            let mode = field(1);
            let size = field(6) as usize;
            let (maj, min) = (field(9), field(10));
            let namesize = field(11) as usize;
            let name_start = pos + 110;
            let name = std::str::from_utf8(&archive[name_start..name_start + namesize - 1])
                .unwrap()
                .to_owned();
            assert_eq!(archive[name_start + namesize - 1], 0);
            let data_start = (name_start + namesize).div_ceil(4) * 4;
            let data = archive[data_start..data_start + size].to_vec();
            pos = (data_start + size).div_ceil(4) * 4;
            if name == TRAILER {
                assert_eq!(pos, archive.len());
                return out;
            }
            out.push((name, mode, maj, min, data));
        }
    }

    #[test]
    fn round_trips_every_entry_kind() {
        let mut w = CpioWriter::new(Vec::new());
        w.dir("/bin", 0o755).unwrap();
        w.file("bin/hello", 0o755, b"12345").unwrap();
        w.symlink("bin/sh", "busybox").unwrap();
        w.char_dev("dev/console", 0o600, 5, 1).unwrap();
        w.file("empty", 0o644, b"").unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len() % 4, 0);
        let entries = parse(&bytes);
        assert_eq!(
            entries,
            vec![
                ("bin".into(), S_IFDIR | 0o755, 0, 0, vec![]),
                ("bin/hello".into(), S_IFREG | 0o755, 0, 0, b"12345".to_vec()),
                ("bin/sh".into(), S_IFLNK | 0o777, 0, 0, b"busybox".to_vec()),
                ("dev/console".into(), S_IFCHR | 0o600, 5, 1, vec![]),
                ("empty".into(), S_IFREG | 0o644, 0, 0, vec![]),
            ]
        );
    }

    #[test]
    fn header_layout_matches_the_format() {
        let mut w = CpioWriter::new(Vec::new());
        w.file("a", 0o644, b"xy").unwrap();
        let bytes = w.finish().unwrap();
        // 110-byte header + "a\0" = 112, already aligned; data 2 bytes + 2 padding.
        let header = std::str::from_utf8(&bytes[..110]).unwrap();
        assert_eq!(
            header,
            "070701\
             00000001000081a4000000000000000000000001000000000000000200000000\
             00000000000000000000000000000002\
             00000000"
        );
        assert_eq!(&bytes[110..112], b"a\0");
        assert_eq!(&bytes[112..116], b"xy\0\0");
    }

    #[test]
    fn inode_numbers_are_distinct() {
        let mut w = CpioWriter::new(Vec::new());
        w.file("a", 0o644, b"").unwrap();
        w.file("b", 0o644, b"").unwrap();
        let bytes = w.finish().unwrap();
        let ino = |at: usize| {
            std::str::from_utf8(&bytes[at + 6..at + 14])
                .unwrap()
                .to_owned()
        };
        // Second header starts after 110 + "a\0" (112).
        assert_ne!(ino(0), ino(112));
    }

    #[test]
    fn rejects_bad_names() {
        let mut w = CpioWriter::new(Vec::new());
        assert!(matches!(w.file("", 0o644, b""), Err(CpioError::BadName(_))));
        assert!(matches!(
            w.file("///", 0o644, b""),
            Err(CpioError::BadName(_))
        ));
        assert!(matches!(
            w.file("a\0b", 0o644, b""),
            Err(CpioError::BadName(_))
        ));
        assert!(matches!(
            w.file(TRAILER, 0o644, b""),
            Err(CpioError::BadName(_))
        ));
    }
}
