//! PV domains on the simulated host: machine frames, pinning, the hypercall page, vCPU
//! contexts and what the guest's first instructions need.

mod common;

use common::{host, pvh};
use sim::SimHost;
use xen_host::{
    CreateDomain, DomId, Errno, Gfn, Hypervisor, PvVcpuContext, ShutdownReason, PAGE_SIZE,
};

/// The kernel's virtual base: L4 slot 511, L3 slot 510.
const VIRT_BASE: u64 = 0xffff_ffff_8000_0000;
const PRESENT: u64 = 1;
const RW: u64 = 2;

/// gpfns of the hand-built layout.
const L4: usize = 0;
const L3: usize = 1;
const L2: usize = 2;
const L1: usize = 3;
const START_INFO: usize = 4;
const STACK: usize = 5;
const CODE: usize = 6;
const HYPERCALL: usize = 7;
const FRAMES: usize = 8;

fn pv_domain(h: &SimHost) -> (DomId, Vec<u64>) {
    let d = h.create_domain(&CreateDomain::pv([9; 16], 2)).unwrap();
    h.max_mem(d, 64 * 1024).unwrap();
    h.set_address_size(d, 64).unwrap();
    let gpfns: Vec<u64> = (0..FRAMES as u64).collect();
    let mfns = h.populate_physmap_pv(d, 0, &gpfns).unwrap();
    assert_eq!(mfns.len(), FRAMES);
    (d, mfns)
}

fn pte(mfn: u64, flags: u64) -> u64 {
    (mfn << 12) | flags
}

fn page(entries: &[(usize, u64)]) -> Vec<u8> {
    let mut p = vec![0u8; PAGE_SIZE as usize];
    for &(i, e) in entries {
        p[i * 8..i * 8 + 8].copy_from_slice(&e.to_le_bytes());
    }
    p
}

/// Page tables mapping gpfn `i` at `VIRT_BASE + i * 4096`: the tables read-only, the
/// rest writable; `l1_extra` adds L1 entries.
fn tables(mfns: &[u64], l1_extra: &[(usize, u64)]) -> Vec<(u64, Vec<u8>)> {
    let mut l1: Vec<(usize, u64)> = (0..FRAMES)
        .map(|g| {
            let flags = if g <= L1 { PRESENT } else { PRESENT | RW };
            (g, pte(mfns[g], flags))
        })
        .collect();
    l1.extend_from_slice(l1_extra);
    vec![
        (mfns[L4], page(&[(511, pte(mfns[L3], PRESENT | RW))])),
        (mfns[L3], page(&[(510, pte(mfns[L2], PRESENT | RW))])),
        (mfns[L2], page(&[(0, pte(mfns[L1], PRESENT | RW))])),
        (mfns[L1], page(&l1)),
    ]
}

fn write_tables(h: &SimHost, d: DomId, t: &[(u64, Vec<u8>)]) {
    for (mfn, bytes) in t {
        h.write_frames(d, &[*mfn], bytes).unwrap();
    }
}

fn va(gpfn: usize) -> u64 {
    VIRT_BASE + gpfn as u64 * PAGE_SIZE
}

fn context(mfns: &[u64]) -> PvVcpuContext {
    PvVcpuContext {
        rip: va(CODE),
        rsp: va(STACK + 1),
        rsi: va(START_INFO),
        rflags: 1 << 9,
        cr3_mfn: mfns[L4],
        kernel_sp: va(STACK + 1),
    }
}

fn errno(r: xen_host::Result<impl std::fmt::Debug>) -> Errno {
    r.unwrap_err().errno().unwrap()
}

/// A domain ready to run: tables pinned, start_info written, hypercall page, context.
fn built(h: &SimHost, magic: &[u8]) -> (DomId, Vec<u64>) {
    let (d, mfns) = pv_domain(h);
    write_tables(h, d, &tables(&mfns, &[]));
    h.write_frames(d, &[mfns[START_INFO]], magic).unwrap();
    h.pin_l4_table(d, mfns[L4]).unwrap();
    h.hypercall_init(d, mfns[HYPERCALL]).unwrap();
    h.init_pv_shared_info(d).unwrap();
    h.set_pv_vcpu_context(d, 0, &context(&mfns)).unwrap();
    (d, mfns)
}

#[test]
fn pv_frames_are_machine_frames_not_gpfns() {
    let dir = tempfile::tempdir().unwrap();
    // 2 GiB: fewer host frames than the first PV machine frame's number.
    let h = host(dir.path(), 2048);
    let (d, mfns) = pv_domain(&h);
    for (gpfn, mfn) in mfns.iter().enumerate() {
        assert_ne!(
            *mfn, gpfn as u64,
            "an mfn equal to its gpfn hides pfn/mfn mix-ups"
        );
    }
    let info = h.domain_info(d).unwrap().unwrap();
    assert!(!info.hvm && !info.hap, "a PV domain is reported as PV");
    assert_eq!(info.tot_pages, FRAMES as u64);
    // Another domain's frames are different machine frames.
    let (_, other) = pv_domain(&h);
    assert!(other.iter().all(|m| !mfns.contains(m)));
    // A superpage extent is aligned in machine frames too.
    let big = h.populate_physmap_pv(d, 9, &[512]).unwrap();
    assert_eq!(big.len(), 1);
    assert_eq!(big[0] % 512, 0);
    assert!(
        h.physinfo().unwrap().max_mfn >= big[0] + 511,
        "max_mfn covers every frame"
    );
    // Beyond max_mem: fewer extents than asked.
    let many: Vec<u64> = (1024..1024 + 64 * 256).collect();
    assert!(h.populate_physmap_pv(d, 0, &many).unwrap().len() < many.len());

    let data: Vec<u8> = (0..PAGE_SIZE as usize + 10).map(|i| i as u8).collect();
    h.write_frames(d, &mfns[2..4], &data).unwrap();
    let back = h.read_frames(d, &mfns[2..4]).unwrap();
    assert_eq!(&back[..data.len()], &data[..]);
    h.zero_frames(d, &mfns[2..3]).unwrap();
    assert!(h
        .read_frames(d, &mfns[2..3])
        .unwrap()
        .iter()
        .all(|&b| b == 0));
    assert_eq!(errno(h.write_frames(d, &mfns[..1], &data)), Errno::EINVAL);
    // Frames of another domain, or gpfns taken for mfns, cannot be mapped.
    assert_eq!(errno(h.write_frames(d, &other[..1], b"x")), Errno::EFAULT);
    assert_eq!(errno(h.read_frames(d, &[1])), Errno::EFAULT);
}

#[test]
fn what_makes_no_sense_for_one_kind_fails_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096);
    let (d, _) = pv_domain(&h);
    assert_eq!(errno(h.write_guest(d, 0, b"x")), Errno::EINVAL);
    assert_eq!(errno(h.read_guest(d, 0, 1)), Errno::EINVAL);
    assert_eq!(errno(h.zero_guest(d, 0, 1)), Errno::EINVAL);
    assert_eq!(errno(h.set_hvm_param(d, 1, 5)), Errno::EINVAL);
    assert_eq!(errno(h.get_hvm_context(d)), Errno::EINVAL);
    // What PV uses of the common operations works.
    h.set_memory_map(
        d,
        &[xen_host::E820Entry {
            addr: 0,
            size: 64 << 20,
            kind: xen_host::e820::RAM,
        }],
    )
    .unwrap();
    h.set_tsc_info(d, 0).unwrap();
    h.write_grant_entries(
        d,
        0,
        &[xen_host::GrantEntryV1 {
            flags: xen_host::GTF_PERMIT_ACCESS,
            domid: 0,
            frame: 0x1234,
        }],
    )
    .unwrap();
    assert_eq!(h.alloc_unbound(d, DomId::DOM0).unwrap(), 1);
    // And the PV operations refuse a PVH domain.
    let p = h.create_domain(&pvh(1)).unwrap();
    h.max_mem(p, 1024).unwrap();
    assert_eq!(errno(h.set_address_size(p, 64)), Errno::EOPNOTSUPP);
    assert_eq!(errno(h.populate_physmap_pv(p, 0, &[0])), Errno::EINVAL);
    assert_eq!(h.populate_physmap(p, 0, &[Gfn(0)]).unwrap(), 1);
    assert_eq!(errno(h.write_frames(p, &[0], b"x")), Errno::EINVAL);
    assert_eq!(errno(h.pin_l4_table(p, 0)), Errno::EINVAL);
    assert_eq!(errno(h.init_pv_shared_info(p)), Errno::EINVAL);
    assert_eq!(errno(h.set_address_size(d, 48)), Errno::EINVAL);
}

#[test]
fn pinning_validates_the_tables_like_xen() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096);
    let (d, mfns) = pv_domain(&h);
    let (_, other) = pv_domain(&h);

    // The L4 frame must be the domain's.
    assert_eq!(errno(h.pin_l4_table(d, other[0])), Errno::EINVAL);
    assert_eq!(errno(h.pin_l4_table(d, L4 as u64)), Errno::EINVAL, "a gpfn");

    // An L1 entry mapping another domain's frame.
    write_tables(&h, d, &tables(&mfns, &[(100, pte(other[5], PRESENT))]));
    assert_eq!(errno(h.pin_l4_table(d, mfns[L4])), Errno::EBUSY);

    // An L2 entry pointing to another domain's frame as a table.
    write_tables(&h, d, &tables(&mfns, &[]));
    let bad_l2 = page(&[
        (0, pte(mfns[L1], PRESENT | RW)),
        (1, pte(other[3], PRESENT | RW)),
    ]);
    h.write_frames(d, &[mfns[L2]], &bad_l2).unwrap();
    assert_eq!(errno(h.pin_l4_table(d, mfns[L4])), Errno::EINVAL);

    // A page table mapped writable.
    write_tables(&h, d, &tables(&mfns, &[(L3, pte(mfns[L3], PRESENT | RW))]));
    let e = h.pin_l4_table(d, mfns[L4]).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EINVAL));
    assert!(e.to_string().contains("writable"), "{e}");

    // A superpage in an L2.
    write_tables(&h, d, &tables(&mfns, &[]));
    let pse = page(&[
        (0, pte(mfns[L1], PRESENT | RW)),
        (5, pte(mfns[6], PRESENT | 0x80)),
    ]);
    h.write_frames(d, &[mfns[L2]], &pse).unwrap();
    assert_eq!(errno(h.pin_l4_table(d, mfns[L4])), Errno::EINVAL);

    // Good tables pin; then the tables are no longer writable through a mapping, and
    // a second pin is refused.
    write_tables(&h, d, &tables(&mfns, &[]));
    h.pin_l4_table(d, mfns[L4]).unwrap();
    assert_eq!(errno(h.write_frames(d, &[mfns[L1]], b"x")), Errno::EINVAL);
    assert_eq!(errno(h.zero_frames(d, &[mfns[L2]])), Errno::EINVAL);
    h.write_frames(d, &[mfns[STACK]], b"data").unwrap();
    h.read_frames(d, &[mfns[L1]]).unwrap();
    assert_eq!(errno(h.pin_l4_table(d, mfns[L4])), Errno::EINVAL);
}

#[test]
fn hypercall_page_and_vcpu_context_checks() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096);
    let (d, mfns) = pv_domain(&h);
    let (_, other) = pv_domain(&h);
    write_tables(&h, d, &tables(&mfns, &[]));

    // cr3 not pinned yet.
    assert_eq!(
        errno(h.set_pv_vcpu_context(d, 0, &context(&mfns))),
        Errno::EINVAL
    );
    h.pin_l4_table(d, mfns[L4]).unwrap();
    // cr3 that is a frame of the domain but not the pinned table.
    let wrong = PvVcpuContext {
        cr3_mfn: mfns[L3],
        ..context(&mfns)
    };
    assert_eq!(errno(h.set_pv_vcpu_context(d, 0, &wrong)), Errno::EINVAL);
    let bad_rip = PvVcpuContext {
        rip: 0x8000_0000_0000,
        ..context(&mfns)
    };
    assert_eq!(errno(h.set_pv_vcpu_context(d, 0, &bad_rip)), Errno::EINVAL);
    assert_eq!(
        errno(h.set_pv_vcpu_context(d, 2, &context(&mfns))),
        Errno::EINVAL,
        "the domain has 2 vCPUs"
    );
    h.set_pv_vcpu_context(d, 1, &context(&mfns)).unwrap();

    // The hypercall page: the domain's frame, not a page table.
    assert_eq!(errno(h.hypercall_init(d, other[HYPERCALL])), Errno::EINVAL);
    assert_eq!(errno(h.hypercall_init(d, mfns[L2])), Errno::EPERM);
    h.hypercall_init(d, mfns[HYPERCALL]).unwrap();
    let hc = h.read_frames(d, &[mfns[HYPERCALL]]).unwrap();
    // Stub 1 (`mov $1, %eax` after push rcx; push r11) then syscall.
    assert_eq!(&hc[32 + 3..32 + 10], &[0xb8, 1, 0, 0, 0, 0x0f, 0x05]);

    // shared_info: one stable frame with every legacy vcpu_info's upcall masked.
    let si = h.init_pv_shared_info(d).unwrap();
    assert_eq!(h.init_pv_shared_info(d).unwrap(), si);
    assert!(!mfns.contains(&si) && !other.contains(&si));
    let bytes = h.read_frames(d, &[si]).unwrap();
    assert!((0..32).all(|i| bytes[i * 64 + 1] == 1 && bytes[i * 64] == 0));
}

#[test]
fn a_guest_whose_first_instructions_work_runs() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096);
    let (d, _) = built(&h, b"xen-3.0-x86_64\0");
    h.unpause(d).unwrap();
    let info = h.domain_info(d).unwrap().unwrap();
    assert!(!info.shutdown, "{info:?}");
    assert!(info.running || info.blocked);
}

fn assert_crashes_at_unpause(h: &SimHost, d: DomId) {
    h.unpause(d).unwrap();
    let info = h.domain_info(d).unwrap().unwrap();
    assert_eq!(
        info.shutdown_reason(),
        Some(ShutdownReason::Crash),
        "{info:?}"
    );
}

#[test]
fn a_guest_whose_rsi_misses_start_info_crashes_at_unpause() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096);
    // start_info without its magic.
    let (d, _) = built(&h, b"not start_info");
    assert_crashes_at_unpause(&h, d);

    // rsi pointing at an unmapped address.
    let (d, mfns) = built(&h, b"xen-3.0-x86_64\0");
    let ctx = PvVcpuContext {
        rsi: va(300),
        ..context(&mfns)
    };
    h.set_pv_vcpu_context(d, 0, &ctx).unwrap();
    assert_crashes_at_unpause(&h, d);

    // A stack that is not writable (rsp - 8 in a read-only table frame).
    let (d, mfns) = built(&h, b"xen-3.0-x86_64\0");
    let ctx = PvVcpuContext {
        rsp: va(L1 + 1),
        ..context(&mfns)
    };
    h.set_pv_vcpu_context(d, 0, &ctx).unwrap();
    assert_crashes_at_unpause(&h, d);

    // No vCPU context at all.
    let (d, _) = pv_domain(&h);
    assert_crashes_at_unpause(&h, d);
}

#[test]
fn the_verdict_set_with_the_context_holds_in_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096);
    let (good, _) = built(&h, b"xen-3.0-x86_64\0");
    let (bad, _) = built(&h, b"garbage");
    // A second handle (another process) has none of the frames' contents.
    let other = SimHost::open(dir.path()).unwrap();
    other.unpause(good).unwrap();
    other.unpause(bad).unwrap();
    assert!(!other.domain_info(good).unwrap().unwrap().shutdown);
    assert_eq!(
        other.domain_info(bad).unwrap().unwrap().shutdown_reason(),
        Some(ShutdownReason::Crash)
    );
}

#[test]
fn each_pv_step_can_be_failed() {
    let dir = tempfile::tempdir().unwrap();
    let _ = host(dir.path(), 4096);
    for op in [
        "set_address_size",
        "populate_physmap_pv",
        "write_frames",
        "pin_table",
        "hypercall_init",
        "shared_info",
        "setvcpucontext",
    ] {
        let h = SimHost::open(dir.path())
            .unwrap()
            .with_faults(&format!("{op}=ENOMEM"))
            .unwrap();
        let run = || -> xen_host::Result<()> {
            let d = h.create_domain(&CreateDomain::pv([1; 16], 1))?;
            h.max_mem(d, 1024)?;
            h.set_address_size(d, 64)?;
            let mfns = h.populate_physmap_pv(d, 0, &(0..FRAMES as u64).collect::<Vec<_>>())?;
            for (mfn, bytes) in tables(&mfns, &[]) {
                h.write_frames(d, &[mfn], &bytes)?;
            }
            h.pin_l4_table(d, mfns[L4])?;
            h.hypercall_init(d, mfns[HYPERCALL])?;
            h.init_pv_shared_info(d)?;
            h.set_pv_vcpu_context(d, 0, &context(&mfns))
        };
        let e = run().unwrap_err();
        assert_eq!(e.errno(), Some(Errno::ENOMEM), "{op}: {e}");
        assert!(e.to_string().contains(op), "{op}: {e}");
    }
}
