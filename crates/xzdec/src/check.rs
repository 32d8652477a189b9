//! xz integrity checks.

use sha2::Digest;

/// The check a stream's blocks carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Check {
    None,
    Crc32,
    Crc64,
    Sha256,
}

const CRC64: crc::Crc<u64, crc::Table<16>> = crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_XZ);

impl Check {
    /// The check for a stream-flags id, or None for ids this decoder does not implement.
    pub(crate) fn from_id(id: u8) -> Option<Check> {
        match id {
            0x00 => Some(Check::None),
            0x01 => Some(Check::Crc32),
            0x04 => Some(Check::Crc64),
            0x0a => Some(Check::Sha256),
            _ => None,
        }
    }

    /// Size of the check field after each block.
    pub(crate) fn size(self) -> usize {
        match self {
            Check::None => 0,
            Check::Crc32 => 4,
            Check::Crc64 => 8,
            Check::Sha256 => 32,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Check::None => "none",
            Check::Crc32 => "CRC32",
            Check::Crc64 => "CRC64",
            Check::Sha256 => "SHA-256",
        }
    }

    /// Does `stored` (the check field) match `data`?
    pub(crate) fn verify(self, data: &[u8], stored: &[u8]) -> bool {
        match self {
            Check::None => stored.is_empty(),
            Check::Crc32 => stored == crc32fast::hash(data).to_le_bytes(),
            Check::Crc64 => stored == CRC64.checksum(data).to_le_bytes(),
            Check::Sha256 => stored == sha2::Sha256::digest(data).as_slice(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_check_values() {
        // The standard "123456789" check values.
        let d = b"123456789";
        assert!(Check::Crc32.verify(d, &0xcbf4_3926u32.to_le_bytes()));
        assert!(Check::Crc64.verify(d, &0x995d_c9bb_df19_39fau64.to_le_bytes()));
        assert!(!Check::Crc64.verify(d, &0x995d_c9bb_df19_39fbu64.to_le_bytes()));
        assert_eq!(Check::from_id(2), None);
        assert_eq!(Check::Sha256.size(), 32);
    }
}
