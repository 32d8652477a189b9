//! Probing a boot image: an ELF, a bzImage with a compressed ELF payload, or a whole-file
//! gzip of either.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::cache::{KernelCache, Key};
use crate::decompress::{self, Compression, DEFAULT_MAX_DECOMPRESSED};
use crate::elf::{self, ElfInfo};
use crate::error::Error;

/// How the ELF was wrapped in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Container {
    /// A plain ELF file.
    Elf,
    /// A Linux bzImage.
    BzImage {
        /// Boot protocol version (`0x20f` = 2.15).
        protocol: u16,
        /// Compression of the payload.
        #[serde(serialize_with = "ser_display")]
        compression: Compression,
        /// File offset of the payload.
        payload_offset: u64,
        /// Length of the payload.
        payload_length: u64,
    },
    /// A whole file compressed (e.g. a gzipped vmlinux).
    Compressed {
        /// Its compression.
        #[serde(serialize_with = "ser_display")]
        compression: Compression,
    },
}

fn ser_display<S: serde::Serializer>(c: &Compression, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(c)
}

/// Options for [`probe_file`] and [`probe_bytes`].
#[derive(Clone, Debug)]
pub struct ProbeOptions {
    /// Cap on the decompressed (or uncompressed ELF) size.
    pub max_image: u64,
    /// The cache of decoded kernels [`probe_file`] uses for compressed images (none: every
    /// probe decodes).
    pub cache: Option<Arc<KernelCache>>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            max_image: DEFAULT_MAX_DECOMPRESSED,
            cache: None,
        }
    }
}

/// Whether a probe used the kernel cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheUse {
    /// No cache (none configured, or the image is a plain ELF).
    Off,
    /// The decoded bytes came from the cache.
    Hit,
    /// Decoded; the entry was written (or skipped: too large, another writer, an error).
    Miss,
}

/// A probed boot image: the ELF bytes (decompressed once, shared) and what they hold.
#[derive(Clone)]
pub struct KernelImage {
    /// The file, for messages.
    pub path: String,
    /// How the ELF was wrapped.
    pub container: Container,
    /// The ELF image bytes.
    pub elf: Arc<Vec<u8>>,
    /// The parsed ELF.
    pub info: ElfInfo,
    /// Whether the decoded bytes came from the kernel cache.
    pub cache: CacheUse,
}

impl std::fmt::Debug for KernelImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelImage")
            .field("path", &self.path)
            .field("container", &self.container)
            .field("elf_len", &self.elf.len())
            .field("info", &self.info)
            .field("cache", &self.cache)
            .finish()
    }
}

impl KernelImage {
    /// The PVH entry point, checked: PHYS32_ENTRY must exist, fit 32 bits and lie inside a
    /// PT_LOAD segment's physical range.
    pub fn pvh_entry(&self) -> Result<u64, Error> {
        let entry = self
            .info
            .notes
            .phys32_entry()
            .ok_or_else(|| Error::NoPhys32Entry {
                path: self.path.clone(),
            })?;
        let inside = self
            .info
            .segments
            .iter()
            .any(|s| entry >= s.paddr && entry < s.end());
        if entry > u64::from(u32::MAX) || !inside {
            return Err(Error::EntryOutside {
                path: self.path.clone(),
                entry,
            });
        }
        Ok(entry)
    }
}

/// Bytes of the bzImage setup header that are needed (up to payload_length).
const SETUP_HEADER_END: usize = 0x250;

fn hex_head(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "nothing: the file is empty".to_string();
    }
    let mut s: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > 8 {
        s.push("...".to_string());
    }
    s.join(" ")
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Whether the first bytes look like a bzImage (boot flag 0xaa55 and "HdrS").
pub fn is_bzimage(head: &[u8]) -> bool {
    le16(head, 0x1fe) == Some(0xaa55) && head.get(0x202..0x206) == Some(b"HdrS")
}

/// Where a bzImage's payload lies in the file.
fn bzimage_payload(path: &str, head: &[u8], file_len: u64) -> Result<(u16, u64, u64), Error> {
    let protocol =
        le16(head, 0x206).ok_or_else(|| Error::bzimage(path, "truncated setup header"))?;
    if protocol < 0x208 {
        return Err(Error::bzimage(
            path,
            format!(
                "boot protocol {}.{:02} has no payload fields (2.08 or later needed)",
                protocol >> 8,
                protocol & 0xff
            ),
        ));
    }
    let mut setup_sects = u64::from(*head.get(0x1f1).unwrap_or(&0));
    if setup_sects == 0 {
        setup_sects = 4;
    }
    let (Some(off), Some(len)) = (le32(head, 0x248), le32(head, 0x24c)) else {
        return Err(Error::bzimage(path, "truncated setup header"));
    };
    let start = (setup_sects + 1) * 512 + u64::from(off);
    let len = u64::from(len);
    if len == 0 || start.checked_add(len).is_none_or(|e| e > file_len) {
        return Err(Error::bzimage(
            path,
            format!(
                "payload [{start:#x}, +{len:#x}) is not inside the {file_len}-byte file \
                 (truncated file?)"
            ),
        ));
    }
    Ok((protocol, start, len))
}

/// Reads a file's first bytes.
fn read_head(path: &str, f: &mut File, n: usize) -> Result<Vec<u8>, Error> {
    let mut head = Vec::with_capacity(n);
    f.by_ref()
        .take(n as u64)
        .read_to_end(&mut head)
        .map_err(|e| Error::io(path, "read the image header", e))?;
    Ok(head)
}

fn finish(path: &str, container: Container, elf_bytes: Vec<u8>) -> Result<KernelImage, Error> {
    finish_shared(path, container, Arc::new(elf_bytes))
}

fn finish_shared(
    path: &str,
    container: Container,
    elf_bytes: Arc<Vec<u8>>,
) -> Result<KernelImage, Error> {
    if !elf::is_elf(&elf_bytes) {
        let what = match container {
            Container::Elf => "image",
            _ => "decompressed payload",
        };
        return Err(Error::elf(
            path,
            format!(
                "the {what} is not an ELF (starts with {})",
                hex_head(&elf_bytes)
            ),
        ));
    }
    let info = elf::parse(path, &elf_bytes)?;
    Ok(KernelImage {
        path: path.to_string(),
        container,
        elf: elf_bytes,
        info,
        cache: CacheUse::Off,
    })
}

/// Decodes `compressed` through the cache: the decoded bytes of an entry whose digest
/// checks, or a decode whose result is then stored on a thread of its own while the caller
/// goes on (a failed store only costs the entry).
fn decode_cached(
    name: &str,
    cache: &KernelCache,
    compression: Compression,
    compressed: &[u8],
    hint: Option<u64>,
    max_image: u64,
) -> Result<(Arc<Vec<u8>>, CacheUse), Error> {
    let key = Key::of(compressed);
    if let Some(bytes) = cache.lookup(&key) {
        if bytes.len() as u64 <= max_image {
            return Ok((Arc::new(bytes), CacheUse::Hit));
        }
    }
    let bytes = decompress::decompress(
        compression,
        compressed,
        compressed.len() as u64,
        hint,
        max_image,
        name,
    )?;
    let bytes = Arc::new(bytes);
    cache.store_in_background(key, Arc::clone(&bytes));
    Ok((bytes, CacheUse::Miss))
}

/// Decodes the compressed bytes `compressed` held in memory (through the cache when
/// `opts` has one, keyed by those bytes as [`probe_file`] keys a file's) and finishes the
/// image.
fn decode_slice(
    name: &str,
    container: Container,
    compression: Compression,
    compressed: &[u8],
    hint: Option<u64>,
    opts: &ProbeOptions,
) -> Result<KernelImage, Error> {
    if let Some(cache) = &opts.cache {
        let (bytes, used) =
            decode_cached(name, cache, compression, compressed, hint, opts.max_image)?;
        return finish_shared(name, container, bytes).map(|k| KernelImage { cache: used, ..k });
    }
    let len = compressed.len() as u64;
    let out = decompress::decompress(compression, compressed, len, hint, opts.max_image, name)?;
    finish(name, container, out)
}

/// Reads `len` bytes of `f` from `start`.
fn read_range(name: &str, f: &mut File, start: u64, len: u64) -> Result<Vec<u8>, Error> {
    f.seek(SeekFrom::Start(start))
        .map_err(|e| Error::io(name, "seek", e))?;
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    f.take(len)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(name, "read", e))?;
    Ok(buf)
}

/// Probes the image file at `path`. Compressed payloads are streamed from the file into one
/// buffer, so the peak memory is the decompressed image plus small decoder buffers.
pub fn probe_file(path: &Path, opts: &ProbeOptions) -> Result<KernelImage, Error> {
    let name = path.display().to_string();
    let mut f = File::open(path).map_err(|e| Error::io(&name, "open", e))?;
    let file_len = f.metadata().map_err(|e| Error::io(&name, "stat", e))?.len();
    let head = read_head(&name, &mut f, SETUP_HEADER_END)?;
    let seek = |f: &mut File, at: u64| {
        f.seek(SeekFrom::Start(at))
            .map_err(|e| Error::io(&name, "seek", e))
    };
    if elf::is_elf(&head) {
        if file_len > opts.max_image {
            return Err(Error::elf(
                &name,
                format!(
                    "{file_len} bytes is larger than the {}-byte limit",
                    opts.max_image
                ),
            ));
        }
        seek(&mut f, 0)?;
        let mut bytes = Vec::with_capacity(usize::try_from(file_len).unwrap_or(0));
        f.take(opts.max_image)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(&name, "read", e))?;
        return finish(&name, Container::Elf, bytes);
    }
    if is_bzimage(&head) {
        let (protocol, start, len) = bzimage_payload(&name, &head, file_len)?;
        seek(&mut f, start)?;
        let magic = read_head(&name, &mut f, 8)?;
        let compression = Compression::detect(&magic).ok_or_else(|| {
            Error::bzimage(
                &name,
                format!(
                    "unknown payload compression (starts with {})",
                    hex_head(&magic)
                ),
            )
        })?;
        // Linux appends the decompressed size as a le32 after the payload data.
        seek(&mut f, start + len - len.min(4))?;
        let tail = read_head(&name, &mut f, 4)?;
        let hint = le32(&tail, 0).map(u64::from);
        let container = Container::BzImage {
            protocol,
            compression,
            payload_offset: start,
            payload_length: len,
        };
        if opts.cache.is_some() {
            let payload = read_range(&name, &mut f, start, len)?;
            return decode_slice(&name, container, compression, &payload, hint, opts);
        }
        seek(&mut f, start)?;
        let reader = BufReader::with_capacity(1 << 16, f.take(len));
        let bytes = decompress::decompress(compression, reader, len, hint, opts.max_image, &name)?;
        return finish(&name, container, bytes);
    }
    if let Some(compression) = Compression::detect(&head) {
        seek(&mut f, file_len.saturating_sub(4))?;
        let tail = read_head(&name, &mut f, 4)?;
        let hint = (compression == Compression::Gzip)
            .then(|| le32(&tail, 0).map(u64::from))
            .flatten();
        let container = Container::Compressed { compression };
        if opts.cache.is_some() {
            let file = read_range(&name, &mut f, 0, file_len)?;
            return decode_slice(&name, container, compression, &file, hint, opts);
        }
        seek(&mut f, 0)?;
        let reader = BufReader::with_capacity(1 << 16, f);
        let bytes =
            decompress::decompress(compression, reader, file_len, hint, opts.max_image, &name)?;
        return finish(&name, container, bytes);
    }
    Err(Error::UnknownFormat {
        path: name,
        head: hex_head(&head),
    })
}

/// Probes an image held in memory (a kernel a bootloader extracted from a guest's disk;
/// tests, fuzzing). `name` is used in messages. A compressed image goes through the cache
/// in `opts` as [`probe_file`]'s does.
pub fn probe_bytes(name: &str, bytes: &[u8], opts: &ProbeOptions) -> Result<KernelImage, Error> {
    if elf::is_elf(bytes) {
        if bytes.len() as u64 > opts.max_image {
            return Err(Error::elf(
                name,
                format!(
                    "{} bytes is larger than the {}-byte limit",
                    bytes.len(),
                    opts.max_image
                ),
            ));
        }
        return finish(name, Container::Elf, bytes.to_vec());
    }
    if is_bzimage(bytes) {
        let (protocol, start, len) = bzimage_payload(name, bytes, bytes.len() as u64)?;
        let payload = usize::try_from(start)
            .ok()
            .zip(usize::try_from(len).ok())
            .and_then(|(s, l)| bytes.get(s..s.checked_add(l)?))
            .ok_or_else(|| Error::bzimage(name, "payload outside the file"))?;
        let compression = Compression::detect(payload).ok_or_else(|| {
            Error::bzimage(
                name,
                format!(
                    "unknown payload compression (starts with {})",
                    hex_head(payload)
                ),
            )
        })?;
        let hint = payload
            .len()
            .checked_sub(4)
            .and_then(|at| le32(payload, at))
            .map(u64::from);
        let container = Container::BzImage {
            protocol,
            compression,
            payload_offset: start,
            payload_length: len,
        };
        return decode_slice(name, container, compression, payload, hint, opts);
    }
    if let Some(compression) = Compression::detect(bytes) {
        let container = Container::Compressed { compression };
        return decode_slice(name, container, compression, bytes, None, opts);
    }
    Err(Error::UnknownFormat {
        path: name.to_string(),
        head: hex_head(bytes),
    })
}
