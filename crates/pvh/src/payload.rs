//! The bytes of one write into guest memory: held in memory (shared) or read from a file when
//! written.

use std::borrow::Cow;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::Error;

/// The source of a [`crate::Write`]'s bytes.
///
/// Kernel segments are slices of the one decompressed image (shared, never copied); ACPI
/// tables, start_info and the identity page table are small owned buffers; modules stay in
/// their files until the toolstack copies them, in bounded chunks.
#[derive(Clone)]
pub enum Payload {
    /// `buf[start..start + len]`.
    Shared {
        /// The buffer.
        buf: Arc<Vec<u8>>,
        /// Offset of the first byte.
        start: usize,
        /// Length.
        len: usize,
    },
    /// `len` bytes of `path` from `offset`, read when needed.
    File {
        /// The file.
        path: PathBuf,
        /// Offset in the file.
        offset: u64,
        /// Length.
        len: u64,
    },
}

impl std::fmt::Debug for Payload {
    /// Shows where the bytes come from, never the bytes (a kernel is tens of megabytes).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Payload::Shared { buf, start, len } => f
                .debug_struct("Shared")
                .field("buf_len", &buf.len())
                .field("start", start)
                .field("len", len)
                .finish(),
            Payload::File { path, offset, len } => f
                .debug_struct("File")
                .field("path", path)
                .field("offset", offset)
                .field("len", len)
                .finish(),
        }
    }
}

impl Payload {
    /// A payload owning `bytes`.
    pub fn bytes(bytes: Vec<u8>) -> Payload {
        let len = bytes.len();
        Payload::Shared {
            buf: Arc::new(bytes),
            start: 0,
            len,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Payload::Shared { len, .. } => *len as u64,
            Payload::File { len, .. } => *len,
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, if they are in memory.
    pub fn as_slice(&self) -> Option<&[u8]> {
        match self {
            Payload::Shared { buf, start, len } => buf.get(*start..start.checked_add(*len)?),
            Payload::File { .. } => None,
        }
    }

    fn file_err(path: &std::path::Path, op: &'static str, e: std::io::Error) -> Error {
        Error::io(&path.display().to_string(), op, e)
    }

    /// Fills `buf` with the bytes at `offset..offset + buf.len()` of the payload.
    pub fn read_into(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.len()) {
            return Err(Error::Layout(format!(
                "read of {} bytes at offset {offset} is past the end of a {}-byte payload",
                buf.len(),
                self.len()
            )));
        }
        match self {
            Payload::Shared { .. } => {
                let src = self
                    .as_slice()
                    .and_then(|s| s.get(offset as usize..offset as usize + buf.len()))
                    .ok_or_else(|| Error::Layout("payload slice out of range".into()))?;
                buf.copy_from_slice(src);
                Ok(())
            }
            Payload::File {
                path, offset: base, ..
            } => {
                let mut f = File::open(path).map_err(|e| Self::file_err(path, "open", e))?;
                f.seek(SeekFrom::Start(base + offset))
                    .map_err(|e| Self::file_err(path, "seek", e))?;
                f.read_exact(buf).map_err(|e| {
                    Self::file_err(path, "read (did the file shrink since planning?)", e)
                })
            }
        }
    }

    /// Iterates over the payload in pieces of at most `chunk` bytes (at least 1), each with its
    /// offset. In-memory payloads are borrowed; file payloads are read one chunk at a time.
    pub fn chunks(&self, chunk: usize) -> Chunks<'_> {
        Chunks {
            payload: self,
            chunk: chunk.max(1),
            pos: 0,
            file: None,
        }
    }

    /// The whole payload in one buffer (tests and small payloads).
    pub fn to_vec(&self) -> Result<Vec<u8>, Error> {
        let len = usize::try_from(self.len())
            .map_err(|_| Error::Layout("payload too large for memory".into()))?;
        let mut v = vec![0u8; len];
        self.read_into(0, &mut v)?;
        Ok(v)
    }
}

/// Iterator of [`Payload::chunks`]: `(offset, bytes)`.
#[derive(Debug)]
pub struct Chunks<'a> {
    payload: &'a Payload,
    chunk: usize,
    pos: u64,
    file: Option<File>,
}

impl<'a> Iterator for Chunks<'a> {
    type Item = Result<(u64, Cow<'a, [u8]>), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let total = self.payload.len();
        if self.pos >= total {
            return None;
        }
        let n = (total - self.pos).min(self.chunk as u64) as usize;
        let at = self.pos;
        self.pos += n as u64;
        match self.payload {
            Payload::Shared { .. } => {
                let s = self.payload.as_slice()?;
                let piece = s.get(at as usize..at as usize + n)?;
                Some(Ok((at, Cow::Borrowed(piece))))
            }
            Payload::File { path, offset, .. } => {
                if self.file.is_none() {
                    let opened = File::open(path)
                        .map_err(|e| Payload::file_err(path, "open", e))
                        .and_then(|mut f| {
                            f.seek(SeekFrom::Start(*offset))
                                .map_err(|e| Payload::file_err(path, "seek", e))?;
                            Ok(f)
                        });
                    match opened {
                        Ok(f) => self.file = Some(f),
                        Err(e) => {
                            self.pos = total;
                            return Some(Err(e));
                        }
                    }
                }
                let f = self.file.as_mut()?;
                let mut buf = vec![0u8; n];
                match f.read_exact(&mut buf) {
                    Ok(()) => Some(Ok((at, Cow::Owned(buf)))),
                    Err(e) => {
                        self.pos = total;
                        Some(Err(Payload::file_err(
                            path,
                            "read (did the file shrink since planning?)",
                            e,
                        )))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_dumps_the_bytes() {
        let p = Payload::bytes(vec![0xab; 100_000]);
        let s = format!("{p:?}");
        assert_eq!(s, "Shared { buf_len: 100000, start: 0, len: 100000 }");
    }

    #[test]
    fn shared_and_file_payloads_agree() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m");
        let mut content = vec![0xee; 100];
        content.extend_from_slice(&data);
        std::fs::write(&p, &content).unwrap();
        let file = Payload::File {
            path: p.clone(),
            offset: 100,
            len: data.len() as u64,
        };
        let shared = Payload::Shared {
            buf: Arc::new(content.clone()),
            start: 100,
            len: data.len(),
        };
        for pl in [&file, &shared] {
            assert_eq!(pl.to_vec().unwrap(), data);
            let mut joined = Vec::new();
            let mut offsets = Vec::new();
            for c in pl.chunks(4096) {
                let (off, bytes) = c.unwrap();
                assert!(bytes.len() <= 4096);
                offsets.push(off);
                joined.extend_from_slice(&bytes);
            }
            assert_eq!(joined, data);
            assert_eq!(offsets, vec![0, 4096, 8192]);
            let mut b = [0u8; 3];
            pl.read_into(9997, &mut b).unwrap();
            assert_eq!(&b, &data[9997..]);
            assert!(pl.read_into(9998, &mut b).is_err());
        }
        // A file that shrank after planning is an error, not short data.
        std::fs::write(&p, &content[..200]).unwrap();
        let r: Result<Vec<_>, _> = file.chunks(4096).collect();
        assert!(r.unwrap_err().to_string().contains("shrink"));
    }
}
