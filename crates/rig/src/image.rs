//! Assembling the dom0 initramfs: a set of entries keyed by in-image path, written as a
//! gzip-compressed newc archive.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

pub mod cpio;
pub mod elfdeps;
pub mod kmod;

use cpio::{CpioError, CpioWriter};
use elfdeps::Closure;

/// What went wrong assembling the image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Two different entries were given for one path.
    #[error("image path {0} was added twice with different contents")]
    Conflict(String),
    /// A path is not absolute or holds `.`/`..` components.
    #[error("image path {0:?} must be absolute and normalised")]
    BadPath(String),
    /// A host file could not be read.
    #[error("reading {path} for the image failed")]
    Read {
        /// Host path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing the archive failed.
    #[error("writing the image archive {path} failed")]
    Write {
        /// Output path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: CpioError,
    },
}

/// Where a file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// A file on the host, read when the archive is written.
    Host(PathBuf),
    /// Bytes held in memory (generated files).
    Bytes(Vec<u8>),
}

/// One entry of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A directory.
    Dir {
        /// Permission bits.
        perm: u32,
    },
    /// A regular file.
    File {
        /// Permission bits.
        perm: u32,
        /// Contents.
        data: Data,
    },
    /// A symbolic link.
    Symlink {
        /// Target as stored.
        target: String,
    },
    /// A character device node.
    CharDev {
        /// Permission bits.
        perm: u32,
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
}

/// The whole image, ordered by path (so every directory precedes its contents).
#[derive(Debug, Default)]
pub struct Image {
    entries: BTreeMap<String, Entry>,
}

fn check_path(path: &str) -> Result<(), ImageError> {
    let ok = path.starts_with('/')
        && path.len() > 1
        && !path.ends_with('/')
        && path[1..]
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if ok {
        Ok(())
    } else {
        Err(ImageError::BadPath(path.to_owned()))
    }
}

impl Image {
    /// An empty image.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `entry` at `path`, creating missing parent directories (0755). Adding the same
    /// entry twice is fine; adding a different one is a conflict.
    pub fn add(&mut self, path: &str, entry: Entry) -> Result<(), ImageError> {
        check_path(path)?;
        let mut parent = path;
        while let Some((p, _)) = parent.rsplit_once('/') {
            if p.is_empty() {
                break;
            }
            match self.entries.get(p) {
                None => {
                    self.entries
                        .insert(p.to_owned(), Entry::Dir { perm: 0o755 });
                }
                Some(Entry::Dir { .. }) => {}
                Some(_) => return Err(ImageError::Conflict(p.to_owned())),
            }
            parent = p;
        }
        match self.entries.get(path) {
            Some(existing) if *existing == entry => Ok(()),
            // An explicit directory may replace one created implicitly.
            Some(Entry::Dir { .. }) if matches!(entry, Entry::Dir { .. }) => {
                self.entries.insert(path.to_owned(), entry);
                Ok(())
            }
            Some(_) => Err(ImageError::Conflict(path.to_owned())),
            None => {
                self.entries.insert(path.to_owned(), entry);
                Ok(())
            }
        }
    }

    /// Adds a directory.
    pub fn dir(&mut self, path: &str) -> Result<(), ImageError> {
        self.add(path, Entry::Dir { perm: 0o755 })
    }

    /// Adds a host file at `path`, executable or not as the host file is.
    pub fn host_file(&mut self, path: &str, host: &Path) -> Result<(), ImageError> {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(host).map_err(|source| ImageError::Read {
            path: host.to_owned(),
            source,
        })?;
        let perm = if meta.permissions().mode() & 0o111 != 0 {
            0o755
        } else {
            0o644
        };
        self.add(
            path,
            Entry::File {
                perm,
                data: Data::Host(host.to_owned()),
            },
        )
    }

    /// Adds a generated file.
    pub fn bytes(
        &mut self,
        path: &str,
        perm: u32,
        data: impl Into<Vec<u8>>,
    ) -> Result<(), ImageError> {
        self.add(
            path,
            Entry::File {
                perm,
                data: Data::Bytes(data.into()),
            },
        )
    }

    /// Adds a symbolic link.
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<(), ImageError> {
        self.add(
            path,
            Entry::Symlink {
                target: target.to_owned(),
            },
        )
    }

    /// Adds every file and symlink of a library closure, reading files from `root`.
    pub fn closure(&mut self, closure: &Closure, root: &Path) -> Result<(), ImageError> {
        for file in &closure.files {
            self.host_file(file, &root.join(file.trim_start_matches('/')))?;
        }
        for (link, target) in &closure.links {
            self.symlink(link, target)?;
        }
        Ok(())
    }

    /// The entry at `path`.
    #[cfg(test)]
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Writes the image as an uncompressed newc archive to `out`; returns the bytes of file
    /// data written.
    pub fn write_cpio<W: Write>(&self, out: W) -> Result<(W, u64), ImageError> {
        let wrap = |source: CpioError| ImageError::Write {
            path: PathBuf::from("<archive>"),
            source,
        };
        let mut w = CpioWriter::new(out);
        let mut data_bytes = 0u64;
        for (path, entry) in &self.entries {
            match entry {
                Entry::Dir { perm } => w.dir(path, *perm).map_err(wrap)?,
                Entry::Symlink { target } => w.symlink(path, target).map_err(wrap)?,
                Entry::CharDev { perm, major, minor } => {
                    w.char_dev(path, *perm, *major, *minor).map_err(wrap)?
                }
                Entry::File { perm, data } => {
                    let owned;
                    let bytes: &[u8] = match data {
                        Data::Bytes(b) => b,
                        Data::Host(p) => {
                            owned = std::fs::read(p).map_err(|source| ImageError::Read {
                                path: p.clone(),
                                source,
                            })?;
                            &owned
                        }
                    };
                    data_bytes += bytes.len() as u64;
                    w.file(path, *perm, bytes).map_err(wrap)?;
                }
            }
        }
        Ok((w.finish().map_err(wrap)?, data_bytes))
    }

    /// Writes the image gzip-compressed to `path`; returns (file data bytes, archive bytes).
    pub fn write_gz(&self, path: &Path) -> Result<(u64, u64), ImageError> {
        let io_err = |source: std::io::Error| ImageError::Write {
            path: path.to_owned(),
            source: CpioError::Io(source),
        };
        let file = std::fs::File::create(path).map_err(io_err)?;
        // Fast compression: the image is rebuilt every run and TCG boot time dominates.
        let gz = GzEncoder::new(std::io::BufWriter::new(file), Compression::fast());
        let (gz, data) = self.write_cpio(gz).map_err(|e| match e {
            ImageError::Write { source, .. } => ImageError::Write {
                path: path.to_owned(),
                source,
            },
            other => other,
        })?;
        let mut buf = gz.finish().map_err(io_err)?;
        buf.flush().map_err(io_err)?;
        drop(buf);
        let size = std::fs::metadata(path).map_err(io_err)?.len();
        Ok((data, size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_are_created_and_sorted_first() {
        let mut img = Image::new();
        img.bytes("/usr/lib/x/libfoo.so", 0o644, "x").unwrap();
        img.symlink("/lib64/ld.so", "/lib/ld.so").unwrap();
        let paths: Vec<&str> = img.entries.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                "/lib64",
                "/lib64/ld.so",
                "/usr",
                "/usr/lib",
                "/usr/lib/x",
                "/usr/lib/x/libfoo.so"
            ]
        );
        assert_eq!(img.get("/usr/lib"), Some(&Entry::Dir { perm: 0o755 }));
    }

    #[test]
    fn duplicates_must_agree() {
        let mut img = Image::new();
        img.symlink("/bin/sh", "busybox").unwrap();
        img.symlink("/bin/sh", "busybox").unwrap();
        assert!(matches!(
            img.symlink("/bin/sh", "bash"),
            Err(ImageError::Conflict(_))
        ));
        assert!(matches!(
            img.bytes("/bin/sh/x", 0o644, ""),
            Err(ImageError::Conflict(_))
        ));
        img.add("/bin", Entry::Dir { perm: 0o700 }).unwrap();
        assert_eq!(img.get("/bin"), Some(&Entry::Dir { perm: 0o700 }));
    }

    #[test]
    fn rejects_unnormalised_paths() {
        let mut img = Image::new();
        for bad in ["relative", "/", "/a/../b", "/a//b", "/a/", "/./a"] {
            assert!(matches!(img.dir(bad), Err(ImageError::BadPath(_))), "{bad}");
        }
    }

    #[test]
    fn writes_a_gzip_archive_the_kernel_format_expects() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("prog");
        std::fs::write(&host, b"\x7fELF-ish").unwrap();
        let mut img = Image::new();
        img.host_file("/bin/prog", &host).unwrap();
        img.add(
            "/dev/console",
            Entry::CharDev {
                perm: 0o600,
                major: 5,
                minor: 1,
            },
        )
        .unwrap();
        let out = dir.path().join("img.cpio.gz");
        let (data, size) = img.write_gz(&out).unwrap();
        assert_eq!(data, 8);
        let gz = std::fs::read(&out).unwrap();
        assert_eq!(size, gz.len() as u64);
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut raw).unwrap();
        assert!(raw.starts_with(b"070701"));
        let text = String::from_utf8_lossy(&raw);
        let bin = text.find("bin\0").unwrap();
        let prog = text.find("bin/prog\0").unwrap();
        assert!(bin < prog);
        assert!(text.contains("\x7fELF-ish"));
        assert!(text.contains("TRAILER!!!"));
    }

    #[test]
    fn missing_host_file_is_named() {
        let mut img = Image::new();
        let err = img
            .host_file("/x", Path::new("/nonexistent/rxl-file"))
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/rxl-file"));
    }
}
