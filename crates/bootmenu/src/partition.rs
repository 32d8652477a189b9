//! Where pygrub 4.17 looks for file systems on a disk: `get_partition_offsets`.
//!
//! - No `55 AA` signature at byte 510: the whole disk is one file system.
//! - Else the four primary MBR entries in table order (pygrub means to put
//!   the active one first, but under Python 3 its test compares bytes with
//!   a str and never holds, so 4.17 keeps table order); an entry whose
//!   start sector is 0 is unused; types 0xbf and 0x82 are read as Solaris
//!   VTOCs (the root slice, else skipped: so a Linux swap partition is
//!   skipped); type 0xee switches to the GPT at LBA 1 (its entry count and
//!   size, the entries read right after the header) and ends the scan.
//! - A signature with no usable entry: the whole disk.
//!
//! Unlike pygrub, each file system is bounded by its partition's end (the
//! MBR sector count, the GPT last LBA), and the GPT entry count and size
//! are bounded by [`MAX_GPT_ENTRIES`] and [`MAX_GPT_ENTRY_SIZE`].

use std::io::{Read, Seek, SeekFrom};

/// The sector size pygrub assumes.
pub const SECTOR: u64 = 512;
/// At most this many GPT entries are read (UEFI disks have 128).
pub const MAX_GPT_ENTRIES: u32 = 1024;
/// The largest GPT entry size accepted (UEFI uses 128).
pub const MAX_GPT_ENTRY_SIZE: u32 = 4096;
/// The smallest GPT entry pygrub can read a start LBA from.
const MIN_GPT_ENTRY_SIZE: u32 = 40;

/// One place to look for a file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// How errors name it, e.g. `MBR partition 2` or `the whole disk`.
    pub name: String,
    /// Byte offset on the disk.
    pub start: u64,
    /// Byte length (clipped to the disk's end).
    pub len: u64,
}

/// A partition table pygrub 4.17 cannot read either (it stops with a
/// Python exception).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the partition table cannot be read: {0}")]
pub struct TableError(pub String);

pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap_or([0; 4]))
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]))
}

/// Read `len` bytes at `at`, or fewer at the end of the disk.
fn read_at<R: Read + Seek>(disk: &mut R, at: u64, len: usize) -> std::io::Result<Vec<u8>> {
    disk.seek(SeekFrom::Start(at))?;
    let mut buf = Vec::with_capacity(len);
    disk.take(len as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

fn part(name: String, start: u64, len: u64, disk_len: u64) -> Part {
    let len = len.min(disk_len.saturating_sub(start));
    Part { name, start, len }
}

/// Solaris VTOC at `offset + 512`: the root slice's byte offset inside
/// the partition, `None` without the label magic or a root slice.
fn solaris_root<R: Read + Seek>(
    disk: &mut R,
    offset: u64,
    what: &str,
) -> Result<Option<u64>, TableError> {
    let io = |e: std::io::Error| TableError(format!("{what}: reading its Solaris label: {e}"));
    let buf = read_at(disk, offset.saturating_add(SECTOR), 512).map_err(io)?;
    if buf.len() < 512 {
        return Err(TableError(format!(
            "{what}: its Solaris label is past the end of the disk"
        )));
    }
    if le16(&buf, 508) != 0xdabe {
        return Ok(None);
    }
    let nslices = usize::from(le16(&buf, 30));
    for i in 0..nslices {
        let off = 72 + 12 * i;
        if off + 8 > buf.len() {
            return Err(TableError(format!(
                "{what}: its Solaris label claims {nslices} slices, more than a sector holds"
            )));
        }
        if le16(&buf, off) == 2 {
            return Ok(Some(u64::from(le32(&buf, off + 4)) * SECTOR));
        }
    }
    Ok(None)
}

fn gpt<R: Read + Seek>(disk: &mut R, disk_len: u64, out: &mut Vec<Part>) -> Result<(), TableError> {
    let io = |e: std::io::Error| TableError(format!("reading the GPT: {e}"));
    let hdr = read_at(disk, SECTOR, 512).map_err(io)?;
    if hdr.len() < 88 {
        return Err(TableError(
            "the GPT header at LBA 1 is past the end of the disk".into(),
        ));
    }
    let count = le32(&hdr, 80);
    let size = le32(&hdr, 84);
    if count > MAX_GPT_ENTRIES {
        return Err(TableError(format!(
            "the GPT header claims {count} entries (at most {MAX_GPT_ENTRIES} are read)"
        )));
    }
    if !(MIN_GPT_ENTRY_SIZE..=MAX_GPT_ENTRY_SIZE).contains(&size) {
        return Err(TableError(format!(
            "the GPT entry size {size} is outside {MIN_GPT_ENTRY_SIZE}..={MAX_GPT_ENTRY_SIZE}"
        )));
    }
    let total = u64::from(count) * u64::from(size);
    let table = read_at(disk, 2 * SECTOR, total as usize).map_err(io)?;
    if (table.len() as u64) < total {
        return Err(TableError(format!(
            "the GPT's {count} entries of {size} bytes run past the end of the disk"
        )));
    }
    for (i, e) in table.chunks_exact(size as usize).enumerate() {
        let first = le64(e, 32);
        let start = first.saturating_mul(SECTOR);
        let len = if size >= 48 {
            le64(e, 40)
                .saturating_sub(first)
                .saturating_add(1)
                .saturating_mul(SECTOR)
        } else {
            u64::MAX
        };
        let name = if first == 0 {
            format!("GPT entry {} (unused: the whole disk)", i + 1)
        } else {
            format!("GPT partition {}", i + 1)
        };
        out.push(part(
            name,
            start,
            if first == 0 { disk_len } else { len },
            disk_len,
        ));
    }
    Ok(())
}

/// The places pygrub tries, in its order, duplicates removed (the same
/// offset gives the same answer every time).
pub fn find<R: Read + Seek>(disk: &mut R, disk_len: u64) -> Result<Vec<Part>, TableError> {
    let whole = || vec![part("the whole disk".into(), 0, disk_len, disk_len)];
    let mbr = read_at(disk, 0, 512).map_err(|e| TableError(format!("reading sector 0: {e}")))?;
    if mbr.len() < 512 || le16(&mbr, 510) != 0xaa55 {
        return Ok(whole());
    }
    let mut out = Vec::new();
    for i in 0..4 {
        let e = &mbr[446 + 16 * i..462 + 16 * i];
        let start_lba = le32(e, 8);
        if start_lba == 0 {
            continue;
        }
        let kind = e[4];
        let start = u64::from(start_lba) * SECTOR;
        let len = u64::from(le32(e, 12)) * SECTOR;
        let name = format!("MBR partition {} (type {kind:#04x})", i + 1);
        if kind == 0xbf || kind == 0x82 {
            if let Some(slice) = solaris_root(disk, start, &name)? {
                let end = start.saturating_add(len);
                let root = start.saturating_add(slice);
                let len = end.saturating_sub(root);
                out.push(part(
                    format!("{name}, Solaris root slice"),
                    root,
                    len,
                    disk_len,
                ));
            }
            continue;
        }
        if kind == 0xee {
            gpt(disk, disk_len, &mut out)?;
            break;
        }
        out.push(part(name, start, len, disk_len));
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.start));
    if out.is_empty() {
        return Ok(whole());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn mbr(entries: &[(u8, u8, u32, u32)]) -> Vec<u8> {
        let mut d = vec![0u8; 4096];
        for (i, &(boot, kind, start, n)) in entries.iter().enumerate() {
            let e = 446 + 16 * i;
            d[e] = boot;
            d[e + 4] = kind;
            d[e + 8..e + 12].copy_from_slice(&start.to_le_bytes());
            d[e + 12..e + 16].copy_from_slice(&n.to_le_bytes());
        }
        d[510] = 0x55;
        d[511] = 0xaa;
        d
    }

    fn starts(d: &[u8]) -> Vec<u64> {
        find(&mut Cursor::new(d), d.len() as u64)
            .unwrap()
            .iter()
            .map(|p| p.start)
            .collect()
    }

    #[test]
    fn no_signature_is_the_whole_disk() {
        let d = vec![0u8; 2048];
        let p = find(&mut Cursor::new(&d), 2048).unwrap();
        assert_eq!(
            p,
            [Part {
                name: "the whole disk".into(),
                start: 0,
                len: 2048
            }]
        );
        assert_eq!(starts(&[0u8; 100]), [0]);
    }

    #[test]
    fn mbr_entries_in_table_order_active_flag_ignored() {
        let d = mbr(&[
            (0, 0x83, 2, 2),
            (0x80, 0x83, 4, 2),
            (0, 0, 0, 0),
            (0, 0x05, 6, 1),
        ]);
        assert_eq!(starts(&d), [1024, 2048, 3072]);
        let p = find(&mut Cursor::new(&d), 4096).unwrap();
        assert_eq!(p[0].len, 1024);
        assert_eq!(p[0].name, "MBR partition 1 (type 0x83)");
    }

    #[test]
    fn signature_without_entries_is_the_whole_disk() {
        assert_eq!(starts(&mbr(&[])), [0]);
    }

    #[test]
    fn partition_length_is_clipped_to_the_disk() {
        let d = mbr(&[(0, 0x83, 4, 1000)]);
        let p = find(&mut Cursor::new(&d), 4096).unwrap();
        assert_eq!((p[0].start, p[0].len), (2048, 2048));
    }

    #[test]
    fn swap_type_without_solaris_label_is_skipped() {
        let d = mbr(&[(0, 0x82, 2, 2), (0, 0x83, 4, 2)]);
        assert_eq!(starts(&d), [2048]);
    }

    #[test]
    fn solaris_root_slice() {
        let mut d = mbr(&[(0, 0xbf, 2, 6)]);
        let l = 1024 + 512;
        d[l + 508..l + 510].copy_from_slice(&0xdabeu16.to_le_bytes());
        d[l + 30] = 2;
        d[l + 72 + 12] = 2; // slice 1 is root
        d[l + 72 + 12 + 4] = 3; // at sector 3 of the partition
        assert_eq!(starts(&d), [1024 + 3 * 512]);
    }

    fn gpt_disk(count: u32, size: u32, firsts: &[u64]) -> Vec<u8> {
        let mut d = mbr(&[(0, 0xee, 1, 100)]);
        d.resize(64 * 1024, 0);
        d[512..520].copy_from_slice(b"EFI PART");
        d[512 + 80..512 + 84].copy_from_slice(&count.to_le_bytes());
        d[512 + 84..512 + 88].copy_from_slice(&size.to_le_bytes());
        for (i, &f) in firsts.iter().enumerate() {
            let e = 1024 + i * size as usize;
            d[e + 32..e + 40].copy_from_slice(&f.to_le_bytes());
            d[e + 40..e + 48].copy_from_slice(&(f + 9).to_le_bytes());
        }
        d
    }

    #[test]
    fn gpt_entries_after_the_header() {
        let d = gpt_disk(4, 128, &[34, 60]);
        // Unused entries (start 0) are the whole disk, tried once.
        assert_eq!(starts(&d), [34 * 512, 60 * 512, 0]);
        let p = find(&mut Cursor::new(&d), d.len() as u64).unwrap();
        assert_eq!(p[0].len, 10 * 512);
        assert_eq!(p[1].name, "GPT partition 2");
    }

    #[test]
    fn hostile_gpt_headers_are_refused() {
        for (count, size) in [(100_000, 128), (4, 8), (4, 1 << 20), (1000, 128)] {
            let d = gpt_disk(count, size, &[]);
            let e = find(&mut Cursor::new(&d), d.len() as u64).unwrap_err();
            assert!(e.to_string().contains("GPT"), "{e}");
        }
        let mut d = gpt_disk(4, 128, &[]);
        d.truncate(600);
        assert!(find(&mut Cursor::new(&d), 600).is_err());
    }
}
