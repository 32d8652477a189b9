//! The simulated hypervisor: ids, memory accounting, event channels, guest memory,
//! HVM state, lifecycle.

mod common;

use common::{domain, host, pvh};
use sim::{GuestEvent, HostConfig, SimHost};
use xen_host::{
    DomId, E820Entry, Errno, Gfn, GrantEntryV1, Hypervisor, ShutdownReason, Store, TxId, PAGE_SIZE,
};

const GIB_PAGES: u64 = 262_144;

#[test]
fn a_new_host_has_domain0_and_its_memory_taken() {
    let dir = tempfile::tempdir().unwrap();
    let h = SimHost::open(dir.path()).unwrap();
    let v = h.version().unwrap();
    assert_eq!((v.major, v.minor), (4, 17));
    assert!(v.capabilities.contains("hvm-3.0-x86_32"));
    let p = h.physinfo().unwrap();
    assert_eq!(p.nr_cpus, 4);
    assert_eq!(p.total_pages, 16384 * 256);
    assert_eq!(p.free_pages, (16384 - 1024) * 256);
    let list = h.list_domains().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].domid, DomId::DOM0);
    assert!(list[0].running);
    assert_eq!(list[0].tot_pages, 1024 * 256);
    assert_eq!(
        h.read(TxId::NONE, "/local/domain/0/name").unwrap().unwrap(),
        b"Domain-0"
    );
    assert_eq!(
        h.read(TxId::NONE, "/local/domain/0/domid")
            .unwrap()
            .unwrap(),
        b"0"
    );
    assert!(dir.path().join("host.json").exists());
    // A second open sees the same host; create refuses to overwrite it.
    let h2 = SimHost::open(dir.path()).unwrap();
    assert_eq!(h2.host_config(), h.host_config());
    assert!(SimHost::create(dir.path(), HostConfig::default()).is_err());
}

#[test]
fn domain_ids_follow_xen_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096);
    let a = h.create_domain(&pvh(1)).unwrap();
    let b = h.create_domain(&pvh(1)).unwrap();
    let c = h.create_domain(&pvh(1)).unwrap();
    assert_eq!((a, b, c), (DomId(1), DomId(2), DomId(3)));
    h.destroy(b).unwrap();
    // Next free after the last created, not the lowest free.
    assert_eq!(h.create_domain(&pvh(1)).unwrap(), DomId(4));
    // Wrap below DOMID_FIRST_RESERVED, skipping ids in use.
    let state = dir.path().join("state.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    v["rover"] = serde_json::json!(DomId::FIRST_RESERVED - 1);
    std::fs::write(&state, serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(h.create_domain(&pvh(1)).unwrap(), DomId(2));
    assert_eq!(
        h.domain_ids().unwrap(),
        vec![DomId(0), DomId(1), DomId(2), DomId(3), DomId(4)]
    );
    assert_eq!(h.max_vcpus(a, 2).unwrap_err().errno(), Some(Errno::EINVAL));
    h.max_vcpus(a, 1).unwrap();
    let mut bad = pvh(0);
    assert_eq!(
        h.create_domain(&bad).unwrap_err().errno(),
        Some(Errno::EINVAL)
    );
    bad = pvh(1);
    bad.flags = xen_host::cdf::HAP;
    assert_eq!(
        h.create_domain(&bad).unwrap_err().errno(),
        Some(Errno::EINVAL)
    );
}

#[test]
fn populate_runs_out_of_host_memory() {
    let dir = tempfile::tempdir().unwrap();
    // 1 GiB free after Domain-0.
    let h = host(dir.path(), 2048);
    let d = domain(&h, 4096);
    let got = h
        .populate_physmap(d, 18, &[Gfn(0), Gfn(GIB_PAGES)])
        .unwrap();
    assert_eq!(got, 1, "only one 1 GiB extent fits");
    assert_eq!(h.physinfo().unwrap().free_pages, 0);
    let e = domain(&h, 16);
    assert_eq!(h.populate_physmap(e, 0, &[Gfn(0)]).unwrap(), 0);
    let info = h.domain_info(d).unwrap().unwrap();
    assert_eq!(info.tot_pages, GIB_PAGES);
    h.destroy(d).unwrap();
    assert_eq!(h.physinfo().unwrap().free_pages, GIB_PAGES);
    assert_eq!(h.populate_physmap(e, 0, &[Gfn(0)]).unwrap(), 1);
    assert!(h.domain_info(d).unwrap().is_none());
    assert_eq!(h.destroy(d).unwrap_err().errno(), Some(Errno::ESRCH));
}

#[test]
fn populate_stops_at_max_pages_and_rejects_bad_extents() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096);
    let d = domain(&h, 4); // 1024 pages
    let gfns: Vec<Gfn> = (0..1025).map(Gfn).collect();
    assert_eq!(h.populate_physmap(d, 0, &gfns).unwrap(), 1024);
    h.max_mem(d, 64 * 1024).unwrap();
    // Already populated, misaligned, or too large an order: nothing done.
    assert_eq!(h.populate_physmap(d, 0, &[Gfn(5)]).unwrap(), 0);
    assert_eq!(h.populate_physmap(d, 9, &[Gfn(513)]).unwrap(), 0);
    assert_eq!(h.populate_physmap(d, 19, &[Gfn(0)]).unwrap(), 0);
    assert_eq!(h.populate_physmap(d, 9, &[Gfn(1024)]).unwrap(), 1);
    assert_eq!(h.domain_info(d).unwrap().unwrap().tot_pages, 1536);
}

#[test]
fn claims_reserve_host_pages() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 2048); // 262144 free pages
    let a = domain(&h, 2048);
    let b = domain(&h, 2048);
    h.claim_pages(a, GIB_PAGES - 512).unwrap();
    assert_eq!(h.physinfo().unwrap().outstanding_pages, GIB_PAGES - 512);
    assert_eq!(
        h.claim_pages(b, 1024).unwrap_err().errno(),
        Some(Errno::ENOMEM)
    );
    assert_eq!(
        h.claim_pages(a, 10).unwrap_err().errno(),
        Some(Errno::EINVAL)
    );
    // b gets only the unclaimed 512 pages.
    let gfns: Vec<Gfn> = (0..600).map(Gfn).collect();
    assert_eq!(h.populate_physmap(b, 0, &gfns).unwrap(), 512);
    // a allocates from its claim.
    assert_eq!(h.populate_physmap(a, 9, &[Gfn(0)]).unwrap(), 1);
    let ia = h.domain_info(a).unwrap().unwrap();
    assert_eq!(ia.outstanding_pages, GIB_PAGES - 1024);
    h.claim_pages(a, 0).unwrap();
    assert_eq!(h.physinfo().unwrap().outstanding_pages, 0);
    assert_eq!(h.populate_physmap(b, 0, &[Gfn(1000)]).unwrap(), 1);
}

#[test]
fn event_channels_are_counted_and_freed() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096);
    let d = domain(&h, 16);
    assert_eq!(h.alloc_unbound(d, DomId::DOM0).unwrap(), 1);
    assert_eq!(h.alloc_unbound(d, DomId::DOM0).unwrap(), 2);
    assert_eq!(h.evtchn_count(d).unwrap(), 2);
    let mut small = pvh(1);
    small.max_evtchn_port = 1;
    let s = h.create_domain(&small).unwrap();
    h.alloc_unbound(s, DomId::DOM0).unwrap();
    assert_eq!(
        h.alloc_unbound(s, DomId::DOM0).unwrap_err().errno(),
        Some(Errno::ENOSPC)
    );
    h.destroy(d).unwrap();
    assert!(h.evtchn_count(d).is_err());
    let again = domain(&h, 16);
    assert_eq!(h.evtchn_count(again).unwrap(), 0);
    assert_eq!(
        h.alloc_unbound(DomId(999), DomId::DOM0)
            .unwrap_err()
            .errno(),
        Some(Errno::ESRCH)
    );
}

#[test]
fn guest_memory_needs_populated_frames() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096);
    let d = domain(&h, 64);
    let e = h.write_guest(d, 0x5000, b"hello").unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EFAULT));
    assert!(e.to_string().contains("gfn 0x5"), "{e}");
    h.populate_physmap(d, 0, &[Gfn(5), Gfn(6)]).unwrap();
    // Crossing into an unpopulated frame fails as a whole.
    assert!(h.write_guest(d, 0x6ffe, b"abcd").is_err());
    h.write_guest(d, 0x5ffe, b"abcd").unwrap();
    assert_eq!(h.read_guest(d, 0x5ffe, 4).unwrap(), b"abcd");
    assert_eq!(h.read_guest(d, 0x6100, 2).unwrap(), vec![0, 0]);
    h.zero_guest(d, 0x5fff, 2).unwrap();
    assert_eq!(h.read_guest(d, 0x5ffe, 4).unwrap(), b"a\0\0d");
    // One map batch per 1024 pages.
    h.populate_physmap(d, 9, &[Gfn(2048), Gfn(2560), Gfn(3072)])
        .unwrap();
    let before = h.hypercall_count();
    h.write_guest(d, 2048 * PAGE_SIZE, &vec![1u8; 1025 * PAGE_SIZE as usize])
        .unwrap();
    assert_eq!(h.hypercall_count() - before, 2);
    assert_eq!(
        h.read_guest(d, 3073 * PAGE_SIZE - 1, 2).unwrap(),
        vec![1, 0],
        "the 1025th page is written, the next one is not"
    );
}

#[test]
fn hvm_params_context_grants_and_memory_map_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096);
    let d = h.create_domain(&pvh(2)).unwrap();
    h.set_hvm_param(d, xen_host::hvm_param::STORE_EVTCHN, 3)
        .unwrap();
    assert_eq!(h.get_hvm_param(d, 2).unwrap(), 3);
    assert_eq!(h.get_hvm_param(d, 17).unwrap(), 0);
    assert_eq!(
        h.set_hvm_param(d, 39, 1).unwrap_err().errno(),
        Some(Errno::EINVAL)
    );
    let ctx = h.get_hvm_context(d).unwrap();
    assert_eq!(&ctx[0..2], &1u16.to_le_bytes(), "HEADER typecode");
    assert_eq!(&ctx[4..8], &24u32.to_le_bytes());
    assert_eq!(&ctx[8..12], &0x5438_1286u32.to_le_bytes());
    assert_eq!(&ctx[32..40], &[0; 8], "END");
    assert_eq!(ctx.len(), 40);
    // HEADER + CPU for vCPU 1 + END.
    let mut set = ctx[..32].to_vec();
    set.extend_from_slice(&2u16.to_le_bytes());
    set.extend_from_slice(&1u16.to_le_bytes());
    set.extend_from_slice(&4u32.to_le_bytes());
    set.extend_from_slice(&[1, 2, 3, 4]);
    set.extend_from_slice(&[0; 8]);
    h.set_hvm_context(d, &set).unwrap();
    assert_eq!(h.domain_info(d).unwrap().unwrap().nr_online_vcpus, 1);
    let back = h.get_hvm_context(d).unwrap();
    assert_eq!(&back[32..44], &set[32..44]);
    assert_eq!(
        h.set_hvm_context(d, &set[..20]).unwrap_err().errno(),
        Some(Errno::EINVAL)
    );
    let map = [E820Entry {
        addr: 0,
        size: 1 << 20,
        kind: 1,
    }];
    h.set_memory_map(d, &map).unwrap();
    assert_eq!(h.memory_map(d).unwrap(), map);
    let g = GrantEntryV1 {
        flags: 1,
        domid: 0,
        frame: 0xfeffc,
    };
    h.write_grant_entries(d, 1, &[g]).unwrap();
    assert_eq!(h.grant_entry(d, 1).unwrap(), Some(g));
    assert!(h.write_grant_entries(d, 64 * 512, &[g]).is_err());
    h.set_paging_mempool_size(d, 8 << 20).unwrap();
    h.set_tsc_info(d, 0).unwrap();
    assert_eq!(h.paging_and_tsc(d).unwrap(), (8 << 20, Some(0)));
    assert_eq!(
        h.physinfo().unwrap().free_pages,
        (4096 - 1024 - 8) * 256,
        "the paging pool comes from the host"
    );
    h.destroy(d).unwrap();
    assert_eq!(h.physinfo().unwrap().free_pages, (4096 - 1024) * 256);
}

#[test]
fn pause_states_and_cpu_time() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096);
    let d = domain(&h, 16);
    let info = h.domain_info(d).unwrap().unwrap();
    assert_eq!(info.state_letters(), "--p---");
    assert_eq!(info.cpu_time_ns, 0);
    // Pauses nest: created paused (1), paused again (2), two unpauses to run.
    h.pause(d).unwrap();
    h.unpause(d).unwrap();
    assert_eq!(h.domain_info(d).unwrap().unwrap().state_letters(), "--p---");
    h.unpause(d).unwrap();
    let info = h.domain_info(d).unwrap().unwrap();
    assert_eq!(info.state_letters(), "r-----", "booting");
    assert_eq!(info.nr_online_vcpus, 1);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let later = h.domain_info(d).unwrap().unwrap();
    assert!(later.cpu_time_ns > info.cpu_time_ns);
    assert_eq!(h.unpause(d).unwrap_err().errno(), Some(Errno::EINVAL));
    h.pause(d).unwrap();
    let paused = h.domain_info(d).unwrap().unwrap();
    assert_eq!(paused.state_letters(), "--p---");
    std::thread::sleep(std::time::Duration::from_millis(10));
    assert_eq!(
        h.domain_info(d).unwrap().unwrap().cpu_time_ns,
        paused.cpu_time_ns,
        "no cpu time while paused"
    );
    assert_eq!(
        h.pause(DomId::DOM0).unwrap_err().errno(),
        Some(Errno::EINVAL)
    );
    assert_eq!(
        h.destroy(DomId::DOM0).unwrap_err().errno(),
        Some(Errno::EINVAL)
    );
}

#[test]
fn remote_shutdown_and_guest_events() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096);
    let d = domain(&h, 16);
    h.unpause(d).unwrap();
    h.shutdown(d, ShutdownReason::Reboot).unwrap();
    let info = h.domain_info(d).unwrap().unwrap();
    assert_eq!(info.shutdown_reason(), Some(ShutdownReason::Reboot));
    assert_eq!(info.state_letters(), "---sr-");
    // A crash requested while paused happens at unpause.
    let c = domain(&h, 16);
    h.guest_event(c, GuestEvent::Crash).unwrap();
    assert!(!h.domain_info(c).unwrap().unwrap().shutdown);
    h.unpause(c).unwrap();
    assert_eq!(
        h.domain_info(c).unwrap().unwrap().shutdown_reason(),
        Some(ShutdownReason::Crash)
    );
    let wd = domain(&h, 16);
    h.unpause(wd).unwrap();
    h.guest_event(wd, GuestEvent::Watchdog).unwrap();
    assert_eq!(
        h.domain_info(wd).unwrap().unwrap().state_letters(),
        "---sw-"
    );
    assert!(h.guest_event(wd, GuestEvent::Poweroff).is_err());
}

#[test]
fn the_guest_obeys_control_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096);
    let d = domain(&h, 16);
    let node = format!("/local/domain/{d}/control/shutdown");
    h.unpause(d).unwrap();
    h.watch("@releaseDomain", "rel").unwrap();
    assert_eq!(
        h.next_watch_event(Some(std::time::Duration::ZERO))
            .unwrap()
            .unwrap()
            .token,
        "rel"
    );
    h.write(TxId::NONE, &node, b"halt").unwrap();
    let info = h.domain_info(d).unwrap().unwrap();
    assert_eq!(info.shutdown_reason(), Some(ShutdownReason::Poweroff));
    assert_eq!(h.read(TxId::NONE, &node).unwrap().unwrap(), b"");
    let ev = h
        .next_watch_event(Some(std::time::Duration::from_secs(2)))
        .unwrap()
        .unwrap();
    assert_eq!(ev.path, "@releaseDomain");

    // Paused: the request waits for unpause.
    let p = domain(&h, 16);
    let pnode = format!("/local/domain/{p}/control/shutdown");
    h.unpause(p).unwrap();
    h.pause(p).unwrap();
    h.write(TxId::NONE, &pnode, b"reboot").unwrap();
    assert!(!h.domain_info(p).unwrap().unwrap().shutdown);
    h.unpause(p).unwrap();
    assert_eq!(
        h.domain_info(p).unwrap().unwrap().shutdown_reason(),
        Some(ShutdownReason::Reboot)
    );

    // A guest that ignores the request, and one reached through a transaction.
    let i = domain(&h, 16);
    h.unpause(i).unwrap();
    h.guest_event(i, GuestEvent::IgnoreShutdown(true)).unwrap();
    let inode = format!("/local/domain/{i}/control/shutdown");
    h.write(TxId::NONE, &inode, b"poweroff").unwrap();
    assert!(!h.domain_info(i).unwrap().unwrap().shutdown);
    assert_eq!(h.read(TxId::NONE, &inode).unwrap().unwrap(), b"poweroff");
    h.guest_event(i, GuestEvent::IgnoreShutdown(false)).unwrap();
    xen_host::transaction(&h, |tx| h.write(tx, &inode, b"suspend")).unwrap();
    assert_eq!(
        h.domain_info(i).unwrap().unwrap().shutdown_reason(),
        Some(ShutdownReason::Suspend)
    );
}

#[test]
fn fault_injection_fails_the_nth_call() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096)
        .with_faults("populate_physmap:2=ENOMEM,xs_write=EACCES")
        .unwrap();
    let d = domain(&h, 16);
    assert_eq!(h.populate_physmap(d, 0, &[Gfn(0)]).unwrap(), 1);
    let e = h.populate_physmap(d, 0, &[Gfn(1)]).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::ENOMEM));
    assert!(e.to_string().contains("RXL_SIM_FAIL"), "{e}");
    assert_eq!(h.populate_physmap(d, 0, &[Gfn(1)]).unwrap(), 1);
    let e = h.write(TxId::NONE, "/a", b"x").unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EACCES));
    assert!(e.op().contains("/a"), "{}", e.op());
    h.write(TxId::NONE, "/a", b"x").unwrap();
    let e = SimHost::open(dir.path())
        .unwrap()
        .with_faults("bogus:1")
        .unwrap_err();
    assert!(e.to_string().contains("unknown operation `bogus`"), "{e}");
    assert!(sim::FAIL_OPS.contains(&"xs_transaction_end"));
}

#[test]
fn hypercalls_are_counted_per_call() {
    let dir = tempfile::tempdir().unwrap();
    let h = host(dir.path(), 4096);
    let before = h.hypercall_count();
    let d = domain(&h, 16); // createdomain + max_mem
    h.write(TxId::NONE, "/x", b"1").unwrap(); // xenstore: no hypercall
    h.domain_info(d).unwrap();
    assert_eq!(h.hypercall_count() - before, 3);
}

#[test]
fn destroy_relinquishes_in_rounds_and_a_dying_domain_is_visible() {
    let dir = tempfile::tempdir().unwrap();
    // The second destroydomain round fails, leaving the domain dying.
    let h = host(dir.path(), 4096)
        .with_faults("destroydomain:2=EIO")
        .unwrap();
    let d = domain(&h, 1024);
    assert_eq!(h.populate_physmap(d, 18, &[Gfn(0)]).unwrap(), 1);
    h.alloc_unbound(d, DomId::DOM0).unwrap();
    let before = h.hypercall_count();
    assert_eq!(h.destroy(d).unwrap_err().errno(), Some(Errno::EIO));
    let info = h.domain_info(d).unwrap().unwrap();
    assert!(info.dying);
    assert_eq!(info.state_letters(), "--p--d", "never unpaused");
    assert_eq!(info.tot_pages, GIB_PAGES - 65536, "one round done");
    assert_eq!(h.evtchn_count(d).unwrap(), 0, "channels go first");
    assert_eq!(
        h.populate_physmap(d, 0, &[Gfn(GIB_PAGES)])
            .unwrap_err()
            .errno(),
        Some(Errno::EINVAL)
    );
    // Its id stays taken while it is dying.
    assert_ne!(h.create_domain(&pvh(1)).unwrap(), d);
    h.destroy(d).unwrap();
    assert!(h.domain_info(d).unwrap().is_none());
    assert!(h.hypercall_count() - before >= 5, "one call per round");
    assert_eq!(h.physinfo().unwrap().free_pages, (4096 - 1024) * 256);
}
