//! The ACPI tables a PVH guest gets: RSDP, XSDT, RSDT, FADT (hardware-reduced), MADT (one
//! local APIC per possible vCPU), a minimal DSDT and a FACS.
//!
//! The layout follows libxl for PVH: an info page at [`ACPI_INFO_PADDR`], the tables from the
//! next page, and the RSDP either in the page after the tables (guests that announce
//! `XENFEAT_linux_rsdp_unrestricted`) or just below 1 MiB, where older guests scan for it.

/// The ACPI info page (zeroed for PVH: no AML reads it).
pub const ACPI_INFO_PADDR: u64 = 0xfc00_0000;
/// Where the tables start.
pub const ACPI_TABLES_PADDR: u64 = ACPI_INFO_PADDR + 0x1000;
/// Local APIC base address in the MADT.
pub const LAPIC_BASE: u32 = 0xfee0_0000;
/// Length of an ACPI 2.0 RSDP.
pub const RSDP_LEN: usize = 36;
/// RSDP address for guests that look for it in the BIOS area (below 1 MiB).
pub const RSDP_LOW_PADDR: u64 = 0x10_0000 - RSDP_LEN as u64;
/// Most vCPUs an HVM/PVH guest can have (`HVM_MAX_VCPUS`); APIC ids are `2 * cpu`.
pub const MAX_VCPUS: u32 = 128;

const OEM_ID: &[u8; 6] = b"RXL\0\0\0";
const OEM_TABLE_ID: &[u8; 8] = b"RXLPVH\0\0";
const CREATOR_ID: &[u8; 4] = b"RXL ";

/// `FADT.Flags` bit: hardware-reduced ACPI.
pub const FADT_HW_REDUCED_ACPI: u32 = 1 << 20;
/// `FADT.IAPC_BOOT_ARCH`: no VGA.
pub const IAPC_NO_VGA: u16 = 1 << 2;
/// `FADT.IAPC_BOOT_ARCH`: no CMOS RTC.
pub const IAPC_NO_CMOS_RTC: u16 = 1 << 5;

/// The tables, laid out for guest memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcpiTables {
    /// Bytes for `[ACPI_TABLES_PADDR, ACPI_TABLES_PADDR + tables.len())`.
    pub tables: Vec<u8>,
    /// The RSDP bytes.
    pub rsdp: Vec<u8>,
    /// Where the RSDP goes.
    pub rsdp_paddr: u64,
    /// Each table's signature and guest address, in placement order.
    pub placed: Vec<([u8; 4], u64, usize)>,
}

/// The sum-to-zero checksum byte over `bytes` (whose checksum byte is still 0).
pub fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)))
}

fn header(sig: &[u8; 4], len: usize, revision: u8) -> Vec<u8> {
    let mut h = Vec::with_capacity(len);
    h.extend_from_slice(sig);
    h.extend_from_slice(&(len as u32).to_le_bytes());
    h.push(revision);
    h.push(0); // checksum, set by `seal`
    h.extend_from_slice(OEM_ID);
    h.extend_from_slice(OEM_TABLE_ID);
    h.extend_from_slice(&1u32.to_le_bytes()); // OEM revision
    h.extend_from_slice(CREATOR_ID);
    h.extend_from_slice(&1u32.to_le_bytes()); // creator revision
    h
}

fn seal(mut t: Vec<u8>) -> Vec<u8> {
    let len = t.len() as u32;
    if let Some(l) = t.get_mut(4..8) {
        l.copy_from_slice(&len.to_le_bytes());
    }
    let c = checksum(&t);
    if let Some(b) = t.get_mut(9) {
        *b = c;
    }
    t
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(d) = buf.get_mut(at..at + bytes.len()) {
        d.copy_from_slice(bytes);
    }
}

fn facs() -> Vec<u8> {
    let mut t = vec![0u8; 64];
    put(&mut t, 0, b"FACS");
    put(&mut t, 4, &64u32.to_le_bytes());
    t[32] = 1; // version (ACPI 2.0 FACS)
    t
}

fn dsdt() -> Vec<u8> {
    // No AML: a PVH guest has no emulated devices to describe, and CPUs come from the MADT.
    seal(header(b"DSDT", 36, 2))
}

/// FADT revision 5 (ACPI 5.0, 268 bytes), hardware-reduced, as libxl builds for PVH.
fn fadt(facs: u64, dsdt: u64) -> Vec<u8> {
    let mut t = header(b"FACP", 268, 5);
    t.resize(268, 0);
    put(&mut t, 36, &(facs as u32).to_le_bytes()); // FIRMWARE_CTRL
    put(&mut t, 40, &(dsdt as u32).to_le_bytes()); // DSDT
    put(&mut t, 109, &(IAPC_NO_VGA | IAPC_NO_CMOS_RTC).to_le_bytes());
    put(&mut t, 112, &FADT_HW_REDUCED_ACPI.to_le_bytes());
    put(&mut t, 131, &[0]); // FADT minor version
    put(&mut t, 132, &facs.to_le_bytes()); // X_FIRMWARE_CTRL
    put(&mut t, 140, &dsdt.to_le_bytes()); // X_DSDT
    seal(t)
}

/// MADT: one Processor Local APIC entry per possible vCPU, APIC id `2 * cpu`, enabled for the
/// first `vcpus`.
fn madt(vcpus: u32, maxvcpus: u32) -> Vec<u8> {
    let mut t = header(b"APIC", 44, 2);
    t.extend_from_slice(&LAPIC_BASE.to_le_bytes());
    t.extend_from_slice(&1u32.to_le_bytes()); // PCAT_COMPAT, as libacpi
    for cpu in 0..maxvcpus {
        t.push(0); // Processor Local APIC
        t.push(8);
        t.push(cpu as u8); // ACPI processor UID
        t.push((cpu * 2) as u8); // APIC id
        let enabled = u32::from(cpu < vcpus);
        t.extend_from_slice(&enabled.to_le_bytes());
    }
    seal(t)
}

fn xsdt(entries: &[u64]) -> Vec<u8> {
    let mut t = header(b"XSDT", 36, 1);
    for e in entries {
        t.extend_from_slice(&e.to_le_bytes());
    }
    seal(t)
}

fn rsdt(entries: &[u64]) -> Vec<u8> {
    let mut t = header(b"RSDT", 36, 1);
    for e in entries {
        t.extend_from_slice(&(*e as u32).to_le_bytes());
    }
    seal(t)
}

fn rsdp(rsdt: u64, xsdt: u64) -> Vec<u8> {
    let mut r = Vec::with_capacity(RSDP_LEN);
    r.extend_from_slice(b"RSD PTR ");
    r.push(0); // checksum over the first 20 bytes
    r.extend_from_slice(OEM_ID);
    r.push(2); // revision
    r.extend_from_slice(&(rsdt as u32).to_le_bytes());
    r.extend_from_slice(&(RSDP_LEN as u32).to_le_bytes());
    r.extend_from_slice(&xsdt.to_le_bytes());
    r.push(0); // extended checksum
    r.extend_from_slice(&[0, 0, 0]);
    let c = checksum(r.get(..20).unwrap_or_default());
    r[8] = c;
    let x = checksum(&r);
    r[32] = x;
    r
}

/// Builds the tables for `vcpus` online of `maxvcpus` (1..=[`MAX_VCPUS`], checked by the
/// caller). `rsdp_low` puts the RSDP at [`RSDP_LOW_PADDR`] instead of after the tables.
pub fn build(vcpus: u32, maxvcpus: u32, rsdp_low: bool) -> AcpiTables {
    let mut buf: Vec<u8> = Vec::new();
    let mut placed = Vec::new();
    let mut place = |buf: &mut Vec<u8>, t: Vec<u8>, align: usize| -> u64 {
        while buf.len() % align != 0 {
            buf.push(0);
        }
        let at = ACPI_TABLES_PADDR + buf.len() as u64;
        let mut sig = [0u8; 4];
        sig.copy_from_slice(t.get(..4).unwrap_or(b"????"));
        placed.push((sig, at, t.len()));
        buf.extend_from_slice(&t);
        at
    };
    let facs_at = place(&mut buf, facs(), 64);
    let dsdt_at = place(&mut buf, dsdt(), 16);
    let fadt_at = place(&mut buf, fadt(facs_at, dsdt_at), 16);
    let madt_at = place(&mut buf, madt(vcpus, maxvcpus), 16);
    let xsdt_at = place(&mut buf, xsdt(&[fadt_at, madt_at]), 16);
    let rsdt_at = place(&mut buf, rsdt(&[fadt_at, madt_at]), 16);
    let pages = (buf.len() as u64).div_ceil(0x1000);
    let rsdp_paddr = if rsdp_low {
        RSDP_LOW_PADDR
    } else {
        ACPI_TABLES_PADDR + pages * 0x1000
    };
    AcpiTables {
        tables: buf,
        rsdp: rsdp(rsdt_at, xsdt_at),
        rsdp_paddr,
        placed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le32(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }
    fn le64(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }
    fn sum(b: &[u8]) -> u8 {
        b.iter().fold(0u8, |a, x| a.wrapping_add(*x))
    }

    /// Walks the tables the way a guest would, from the RSDP.
    #[test]
    fn a_guest_finds_every_table_and_cpu() {
        let t = build(3, 5, false);
        let table = |paddr: u64| -> &[u8] {
            let off = (paddr - ACPI_TABLES_PADDR) as usize;
            let len = le32(&t.tables, off + 4) as usize;
            &t.tables[off..off + len]
        };
        assert_eq!(&t.rsdp[..8], b"RSD PTR ");
        assert_eq!(sum(&t.rsdp[..20]), 0);
        assert_eq!(sum(&t.rsdp), 0);
        assert_eq!(t.rsdp_paddr % 0x1000, 0);
        assert!(t.rsdp_paddr >= ACPI_TABLES_PADDR + t.tables.len() as u64);
        let xsdt = table(le64(&t.rsdp, 24));
        assert_eq!(&xsdt[..4], b"XSDT");
        assert_eq!(sum(xsdt), 0);
        let rsdt = table(u64::from(le32(&t.rsdp, 16)));
        assert_eq!(&rsdt[..4], b"RSDT");
        assert_eq!(sum(rsdt), 0);
        let entries: Vec<u64> = (36..xsdt.len()).step_by(8).map(|o| le64(xsdt, o)).collect();
        assert_eq!(entries.len(), 2);
        let fadt = table(entries[0]);
        assert_eq!(&fadt[..4], b"FACP");
        assert_eq!(fadt.len(), 268);
        assert_eq!(sum(fadt), 0);
        assert_ne!(le32(fadt, 112) & FADT_HW_REDUCED_ACPI, 0);
        let dsdt = table(le64(fadt, 140));
        assert_eq!(&dsdt[..4], b"DSDT");
        assert_eq!(sum(dsdt), 0);
        let facs_at = le64(fadt, 132);
        assert_eq!(facs_at % 64, 0);
        let off = (facs_at - ACPI_TABLES_PADDR) as usize;
        assert_eq!(&t.tables[off..off + 4], b"FACS");
        let madt = table(entries[1]);
        assert_eq!(&madt[..4], b"APIC");
        assert_eq!(sum(madt), 0);
        assert_eq!(le32(madt, 36), LAPIC_BASE);
        let lapics: Vec<(u8, u8, u32)> = madt[44..]
            .chunks(8)
            .map(|e| {
                assert_eq!((e[0], e[1]), (0, 8));
                (e[2], e[3], le32(e, 4))
            })
            .collect();
        assert_eq!(
            lapics,
            vec![(0, 0, 1), (1, 2, 1), (2, 4, 1), (3, 6, 0), (4, 8, 0)]
        );
    }

    #[test]
    fn low_rsdp_for_guests_without_the_feature() {
        let t = build(1, 1, true);
        assert_eq!(t.rsdp_paddr, 0xfffdc);
        assert_eq!(t.rsdp_paddr + RSDP_LEN as u64, 0x100000);
    }
}
