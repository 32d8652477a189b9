//! `XENMEM_*` (public/memory.h): reservations, the memory map, add_to_physmap and
//! acquire_resource. Same layouts in 4.17 .. 4.22.

use crate::wire::abi_struct;
use crate::AbiError;

/// `XENMEM_*` sub-commands of `memory_op`.
pub mod op {
    /// `XENMEM_decrease_reservation`.
    pub const DECREASE_RESERVATION: u32 = 1;
    /// `XENMEM_populate_physmap`.
    pub const POPULATE_PHYSMAP: u32 = 6;
    /// `XENMEM_add_to_physmap`.
    pub const ADD_TO_PHYSMAP: u32 = 7;
    /// `XENMEM_set_memory_map`.
    pub const SET_MEMORY_MAP: u32 = 13;
    /// `XENMEM_remove_from_physmap`.
    pub const REMOVE_FROM_PHYSMAP: u32 = 15;
    /// `XENMEM_claim_pages`.
    pub const CLAIM_PAGES: u32 = 24;
    /// `XENMEM_acquire_resource`.
    pub const ACQUIRE_RESOURCE: u32 = 28;
}

/// `XENMAPSPACE_*` of [`AddToPhysmap::space`].
pub mod mapspace {
    /// The shared info page.
    pub const SHARED_INFO: u32 = 0;
    /// A grant table frame.
    pub const GRANT_TABLE: u32 = 1;
}

/// `XENMEM_resource_*` types and ids of [`MemAcquireResource`].
pub mod resource {
    /// An ioreq server's pages.
    pub const IOREQ_SERVER: u16 = 0;
    /// The grant table.
    pub const GRANT_TABLE: u16 = 1;
    /// Grant table id: shared frames.
    pub const GRANT_TABLE_ID_SHARED: u32 = 0;
    /// Grant table id: status frames (v2).
    pub const GRANT_TABLE_ID_STATUS: u32 = 1;
}

abi_struct! {
    /// `struct xen_memory_reservation`.
    pub struct MemoryReservation = ("struct xen_memory_reservation", 32) {
        /// Guest handle: address of an array of `xen_pfn_t` (u64).
        pub extent_start: u64,
        /// Extent count.
        pub nr_extents: u64,
        /// Each extent is `2^extent_order` pages.
        pub extent_order: u32,
        /// `XENMEMF_*`.
        pub mem_flags: u32,
        /// The domain.
        pub domid: u16,
        /// Padding.
        pub pad: [u16; 3],
    }
}

abi_struct! {
    /// `struct xen_foreign_memory_map` (with its `struct xen_memory_map` inline).
    pub struct ForeignMemoryMap = ("struct xen_foreign_memory_map", 24) {
        /// The domain.
        pub domid: u16,
        /// Padding.
        pub pad0: [u16; 3],
        /// `map.nr_entries`.
        pub nr_entries: u32,
        /// Padding.
        pub pad1: u32,
        /// `map.buffer`: address of an array of [`E820Entry`] (20 bytes each).
        pub buffer: u64,
    }
}

/// Size of one e820 entry as `XENMEM_set_memory_map` reads it: the BIOS INT 15h E820
/// format, packed (u64 addr, u64 size, u32 type). No public header declares it; Xen reads
/// it as its packed `struct e820entry`.
pub const E820_ENTRY_SIZE: usize = 20;

/// One entry of the memory map given to `XENMEM_set_memory_map`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct E820Entry {
    /// Start address.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// E820 type.
    pub kind: u32,
}

impl E820Entry {
    /// The packed 20 bytes.
    pub fn to_bytes(&self) -> [u8; E820_ENTRY_SIZE] {
        let mut out = [0u8; E820_ENTRY_SIZE];
        out[0..8].copy_from_slice(&self.addr.to_le_bytes());
        out[8..16].copy_from_slice(&self.size.to_le_bytes());
        out[16..20].copy_from_slice(&self.kind.to_le_bytes());
        out
    }

    /// Parse 20 packed bytes.
    pub fn decode(bytes: &[u8]) -> Result<E820Entry, AbiError> {
        let short = AbiError::Short {
            what: "e820 entry",
            need: E820_ENTRY_SIZE,
            got: bytes.len(),
        };
        let b: &[u8; E820_ENTRY_SIZE] = bytes
            .get(..E820_ENTRY_SIZE)
            .and_then(|b| b.try_into().ok())
            .ok_or(short)?;
        let (a, rest) = b.split_at(8);
        let (s, k) = rest.split_at(8);
        let u64_of = |x: &[u8]| x.try_into().map(u64::from_le_bytes).unwrap_or(0);
        Ok(E820Entry {
            addr: u64_of(a),
            size: u64_of(s),
            kind: k.try_into().map(u32::from_le_bytes).unwrap_or(0),
        })
    }

    /// A whole map as the packed array Xen reads.
    pub fn encode_map(entries: &[E820Entry]) -> Vec<u8> {
        entries.iter().flat_map(|e| e.to_bytes()).collect()
    }
}

abi_struct! {
    /// `struct xen_add_to_physmap`.
    pub struct AddToPhysmap = ("struct xen_add_to_physmap", 24) {
        /// The domain.
        pub domid: u16,
        /// Pages for `gmfn_range`.
        pub size: u16,
        /// `XENMAPSPACE_*`.
        pub space: u32,
        /// Index into the space.
        pub idx: u64,
        /// Where the page appears in the domain.
        pub gpfn: u64,
    }
}

abi_struct! {
    /// `struct xen_remove_from_physmap`.
    pub struct RemoveFromPhysmap = ("struct xen_remove_from_physmap", 16) {
        /// The domain.
        pub domid: u16,
        /// Padding.
        pub pad: [u16; 3],
        /// The frame to unmap.
        pub gpfn: u64,
    }
}

abi_struct! {
    /// `struct xen_mem_acquire_resource`.
    pub struct MemAcquireResource = ("struct xen_mem_acquire_resource", 32) {
        /// The domain owning the resource.
        pub domid: u16,
        /// `XENMEM_resource_*`.
        pub kind: u16,
        /// Type-specific id.
        pub id: u32,
        /// Frames to map (0 with a null list: query the size).
        pub nr_frames: u32,
        /// Must be zero.
        pub pad: u32,
        /// First frame.
        pub frame: u64,
        /// Guest handle of the frame list.
        pub frame_list: u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Wire;

    #[test]
    fn reservation_bytes() {
        let r = MemoryReservation {
            extent_start: 0x1000,
            nr_extents: 3,
            extent_order: 9,
            mem_flags: 0,
            domid: 0x7ff0,
            pad: [0; 3],
        };
        let b = r.to_bytes();
        assert_eq!(&b[8..16], &3u64.to_le_bytes());
        assert_eq!(&b[16..20], &9u32.to_le_bytes());
        assert_eq!(&b[24..26], &0x7ff0u16.to_le_bytes());
    }

    #[test]
    fn e820_is_packed_20() {
        let e = E820Entry {
            addr: 0x10_0000,
            size: 0x20_0000,
            kind: 2,
        };
        let map = E820Entry::encode_map(&[e, e]);
        assert_eq!(map.len(), 40);
        assert_eq!(&map[36..40], &2u32.to_le_bytes());
        assert_eq!(&map[20..28], &0x10_0000u64.to_le_bytes());
        assert_eq!(E820Entry::decode(&map[20..]).ok(), Some(e));
        assert!(E820Entry::decode(&map[..19]).is_err());
    }
}
