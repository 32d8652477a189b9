//! The checks of a disk image QEMU will open, made before anything is built: the file is
//! a regular file, and an image said to be qcow or qcow2 starts with that format's header
//! and names no backing file.
//!
//! QEMU runs as root in dom0 (no `dm_restrict`) and opens a qcow2's backing file by the
//! name written inside the image, which whoever wrote the image chose: rxl refuses such
//! images rather than let a guest's disk name a file of dom0. Only the header's first
//! 20 bytes are read (magic, version, backing file offset and size); the backing file
//! itself is never looked at.

use std::io::Read;
use std::path::Path;

use xlcfg::model::DiskFormat;

/// `QFI\xfb`: the magic of qcow (version 1) and qcow2 (versions 2 and 3) images.
pub const QCOW_MAGIC: [u8; 4] = *b"QFI\xfb";

/// The bytes of the header the check reads: magic, version, backing_file_offset,
/// backing_file_size (big-endian), the same layout in qcow and qcow2.
const HEADER_LEN: usize = 20;

/// Why an image is refused: the message names the file.
pub fn check(path: &Path, format: DiskFormat) -> Result<(), String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("disk image {shown} does not exist"),
        _ => format!("cannot read disk image {shown}: {e}"),
    })?;
    if !meta.is_file() {
        return Err(format!("disk image {shown} is not a regular file"));
    }
    let versions: &[u32] = match format {
        DiskFormat::Qcow => &[1],
        DiskFormat::Qcow2 => &[2, 3],
        _ => return Ok(()),
    };
    let name = format!("{format:?}").to_lowercase();
    let mut header = Vec::with_capacity(HEADER_LEN);
    std::fs::File::open(path)
        .and_then(|f| f.take(HEADER_LEN as u64).read_to_end(&mut header))
        .map_err(|e| format!("cannot read disk image {shown}: {e}"))?;
    if header.len() < HEADER_LEN || header[..4] != QCOW_MAGIC {
        return Err(format!(
            "disk image {shown} is not a {name} image (it does not start with the {name} \
             magic QFI\\xfb): fix format= (raw images are format=raw)"
        ));
    }
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let version = be32(4);
    if !versions.contains(&version) {
        return Err(format!(
            "disk image {shown} is a qcow image of version {version}, not {name}: fix format="
        ));
    }
    let backing_offset = u64::from(be32(8)) << 32 | u64::from(be32(12));
    if backing_offset != 0 || be32(16) != 0 {
        return Err(format!(
            "disk image {shown} names a backing file: rxl does not let QEMU (which runs as \
             root) open a file an image names; flatten it first (qemu-img convert -O {name})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(bytes: &[u8]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(f.path(), bytes).expect("write");
        f
    }

    fn header(version: u32, backing: u64) -> Vec<u8> {
        let mut h = QCOW_MAGIC.to_vec();
        h.extend(version.to_be_bytes());
        h.extend(backing.to_be_bytes());
        h.extend(if backing == 0 { 0u32 } else { 8 }.to_be_bytes());
        h.extend([0u8; 100]);
        h
    }

    #[test]
    fn a_qcow2_header_passes() {
        for v in [2, 3] {
            let f = image(&header(v, 0));
            assert_eq!(check(f.path(), DiskFormat::Qcow2), Ok(()));
        }
        let f = image(&header(1, 0));
        assert_eq!(check(f.path(), DiskFormat::Qcow), Ok(()));
    }

    #[test]
    fn a_mislabelled_image_is_refused() {
        let f = image(&[0u8; 4096]);
        let e = check(f.path(), DiskFormat::Qcow2).unwrap_err();
        assert!(e.contains("is not a qcow2 image"), "{e}");
        // Too short to hold a header.
        let f = image(b"QFI");
        assert!(check(f.path(), DiskFormat::Qcow2).is_err());
        let f = image(&header(1, 0));
        let e = check(f.path(), DiskFormat::Qcow2).unwrap_err();
        assert!(e.contains("version 1, not qcow2"), "{e}");
        // Formats without a magic check only need a regular file.
        assert_eq!(check(f.path(), DiskFormat::Vhd), Ok(()));
    }

    #[test]
    fn a_backing_file_is_refused() {
        let f = image(&header(3, 0x200));
        let e = check(f.path(), DiskFormat::Qcow2).unwrap_err();
        assert!(e.contains("names a backing file"), "{e}");
    }

    #[test]
    fn missing_files_and_directories_are_refused() {
        let e = check(Path::new("/nonexistent/x.qcow2"), DiskFormat::Qcow2).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        let d = tempfile::tempdir().expect("dir");
        let e = check(d.path(), DiskFormat::Qcow2).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
    }
}
