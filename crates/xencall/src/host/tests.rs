//! The host's operations against a scripted fake Xen that decodes every hypercall
//! argument the way the hypervisor does.

use super::*;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use xen_abi::domctl::dominf;

const CAPS: &str = "xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64";

#[derive(Default)]
struct State {
    domains: BTreeMap<u16, GetDomainInfo>,
    next_domid: u16,
    created: Vec<Vec<u8>>,
    calls: Vec<(u64, Option<u64>)>,
    list_firsts: Vec<u16>,
    destroy_eagain: u32,
    populate_room: usize,
    populate_calls: Vec<(u16, u32, usize)>,
    claims: Vec<(u16, u64)>,
    e820: Vec<AbiE820>,
    params: BTreeMap<(u16, u32), u64>,
    limits: Vec<String>,
    hvm_ctx: Vec<u8>,
    set_ctx: Vec<u8>,
    pages: BTreeMap<(u16, u64), Vec<u8>>,
    grant_frames: BTreeMap<(u16, u64), Vec<u8>>,
    physmap_alias: BTreeMap<(u16, u64), u64>,
    resource_unsupported: bool,
    next_port: u32,
    /// Domains created without `XEN_DOMCTL_CDF_hvm`: populate writes mfns back.
    pv: Vec<u16>,
    vcpu_ctx: Vec<(u32, Vec<u8>)>,
    mmuext: Vec<(u32, u64, [u64; 3])>,
}

/// A Xen of a given version accepting one domctl and one sysctl interface.
struct Fake {
    major: u32,
    minor: u32,
    domctl_iv: u32,
    sysctl_iv: u32,
    /// 4.17 behaviour: getdomaininfo of a missing id answers with the next domain.
    next_domain_quirk: bool,
    st: Rc<RefCell<State>>,
}

impl Fake {
    fn new(major: u32, minor: u32, domctl_iv: u32, sysctl_iv: u32) -> Fake {
        let mut st = State {
            next_domid: 1,
            populate_room: usize::MAX,
            next_port: 1,
            hvm_ctx: vec![0xcc; 100],
            ..Default::default()
        };
        st.domains.insert(
            0,
            GetDomainInfo {
                domain: 0,
                flags: dominf::RUNNING,
                tot_pages: 262144,
                nr_online_vcpus: 1,
                ..Default::default()
            },
        );
        Fake {
            major,
            minor,
            domctl_iv,
            sysctl_iv,
            next_domain_quirk: true,
            st: Rc::new(RefCell::new(st)),
        }
    }

    fn domctl(
        &self,
        arg: &mut [u8],
        regions: &mut [Region<'_>],
    ) -> std::result::Result<i64, Errno> {
        let mut d = Domctl::decode(arg).map_err(|_| Errno::EFAULT)?;
        if d.interface_version != self.domctl_iv {
            return Err(Errno::EACCES);
        }
        let mut st = self.st.borrow_mut();
        let exists = st.domains.contains_key(&d.domain);
        match d.cmd {
            domctl::cmd::GETDOMAININFO => {
                let found = if self.next_domain_quirk {
                    st.domains.range(d.domain..).next().map(|(_, i)| *i)
                } else {
                    st.domains.get(&d.domain).copied()
                };
                let info = found.ok_or(Errno::ESRCH)?;
                d = Domctl::new(d.cmd, d.interface_version, info.domain, &info);
            }
            domctl::cmd::CREATEDOMAIN => {
                if d.domain != misc::DOMID_INVALID {
                    return Err(Errno::EINVAL);
                }
                let len = if self.domctl_iv >= 0x17 { 68 } else { 64 };
                st.created.push(d.u[..len].to_vec());
                let id = st.next_domid;
                st.next_domid += 1;
                let cdf = u32::from_le_bytes(d.u[20..24].try_into().unwrap());
                let flags = if cdf & 1 == 0 {
                    st.pv.push(id);
                    dominf::PAUSED
                } else {
                    dominf::PAUSED | dominf::HVM_GUEST | dominf::HAP
                };
                st.domains.insert(
                    id,
                    GetDomainInfo {
                        domain: id,
                        flags,
                        shared_info_frame: 0xa_bc00 + u64::from(id),
                        ..Default::default()
                    },
                );
                d.domain = id;
            }
            domctl::cmd::DESTROYDOMAIN => {
                if !exists {
                    return Err(Errno::ESRCH);
                }
                if st.destroy_eagain > 0 {
                    st.destroy_eagain -= 1;
                    return Err(Errno::EAGAIN);
                }
                st.domains.remove(&d.domain);
            }
            domctl::cmd::PAUSEDOMAIN | domctl::cmd::UNPAUSEDOMAIN => {
                let info = st.domains.get_mut(&d.domain).ok_or(Errno::ESRCH)?;
                if d.cmd == domctl::cmd::PAUSEDOMAIN {
                    info.flags |= dominf::PAUSED;
                } else {
                    info.flags &= !dominf::PAUSED;
                }
            }
            domctl::cmd::SETVCPUCONTEXT => {
                if !exists {
                    return Err(Errno::ESRCH);
                }
                let c = d.payload::<domctl::VcpuContext>().map_err(|_| Errno::EIO)?;
                let r = regions.first().ok_or(Errno::EFAULT)?;
                assert_eq!(
                    r.handle_at, 24,
                    "vcpucontext.ctxt lives at 24 in xen_domctl"
                );
                st.vcpu_ctx.push((c.vcpu, r.data.to_vec()));
            }
            domctl::cmd::MAX_VCPUS
            | domctl::cmd::MAX_MEM
            | domctl::cmd::SETTSCINFO
            | domctl::cmd::SET_ADDRESS_SIZE
            | domctl::cmd::HYPERCALL_INIT
            | domctl::cmd::SENDTRIGGER
            | domctl::cmd::SET_PAGING_MEMPOOL_SIZE => {
                if !exists {
                    return Err(Errno::ESRCH);
                }
                let text = match d.cmd {
                    domctl::cmd::MAX_VCPUS => format!(
                        "vcpus {}",
                        d.payload::<domctl::MaxVcpus>().map_err(|_| Errno::EIO)?.max
                    ),
                    domctl::cmd::MAX_MEM => format!(
                        "mem {}",
                        d.payload::<domctl::MaxMem>()
                            .map_err(|_| Errno::EIO)?
                            .max_memkb
                    ),
                    domctl::cmd::SETTSCINFO => format!(
                        "tsc {}",
                        d.payload::<domctl::TscInfo>()
                            .map_err(|_| Errno::EIO)?
                            .tsc_mode
                    ),
                    domctl::cmd::SET_ADDRESS_SIZE => format!(
                        "address size {}",
                        d.payload::<domctl::AddressSize>()
                            .map_err(|_| Errno::EIO)?
                            .size
                    ),
                    domctl::cmd::SENDTRIGGER => {
                        let t = d.payload::<domctl::SendTrigger>().map_err(|_| Errno::EIO)?;
                        format!("trigger {} vcpu {}", t.trigger, t.vcpu)
                    }
                    domctl::cmd::HYPERCALL_INIT => format!(
                        "hypercall page {:#x}",
                        d.payload::<domctl::HypercallInit>()
                            .map_err(|_| Errno::EIO)?
                            .gmfn
                    ),
                    _ => format!(
                        "pool {}",
                        d.payload::<domctl::PagingMempool>()
                            .map_err(|_| Errno::EIO)?
                            .size
                    ),
                };
                st.limits.push(text);
            }
            domctl::cmd::GETHVMCONTEXT | domctl::cmd::SETHVMCONTEXT => {
                let mut c = d.payload::<domctl::HvmContext>().map_err(|_| Errno::EIO)?;
                let region = regions.first_mut();
                if let Some(r) = &region {
                    assert_eq!(
                        r.handle_at, 24,
                        "hvmcontext.buffer lives at 24 in xen_domctl"
                    );
                }
                if d.cmd == domctl::cmd::SETHVMCONTEXT {
                    let r = region.ok_or(Errno::EFAULT)?;
                    st.set_ctx = r.data[..c.size as usize].to_vec();
                } else {
                    match region {
                        None => c.size = st.hvm_ctx.len() as u32,
                        Some(r) => {
                            let n = st.hvm_ctx.len().min(c.size as usize);
                            r.data[..n].copy_from_slice(&st.hvm_ctx[..n]);
                            c.size = n as u32;
                        }
                    }
                }
                d = Domctl::new(d.cmd, d.interface_version, d.domain, &c);
            }
            _ => return Err(Errno::ENOSYS),
        }
        arg.copy_from_slice(&d.to_bytes());
        Ok(0)
    }

    fn sysctl(
        &self,
        arg: &mut [u8],
        regions: &mut [Region<'_>],
    ) -> std::result::Result<i64, Errno> {
        let s = Sysctl::decode(arg).map_err(|_| Errno::EFAULT)?;
        if s.interface_version != self.sysctl_iv {
            return Err(Errno::EACCES);
        }
        let st = self.st.borrow();
        let out = match s.cmd {
            sysctl::cmd::PHYSINFO => {
                let p = sysctl::PhysInfo {
                    nr_cpus: 2,
                    capabilities: sysctl::physcap::HVM
                        | sysctl::physcap::PV
                        | sysctl::physcap::HAP
                        | sysctl::physcap::GNTTAB_V1,
                    total_pages: 786432,
                    free_pages: 500000,
                    ..Default::default()
                };
                Sysctl::new(s.cmd, s.interface_version, &p)
            }
            sysctl::cmd::GETDOMAININFOLIST => {
                let mut l = s
                    .payload::<sysctl::GetDomainInfoList>()
                    .map_err(|_| Errno::EIO)?;
                drop(st);
                self.st.borrow_mut().list_firsts.push(l.first_domain);
                let st = self.st.borrow();
                let r = regions.first_mut().ok_or(Errno::EFAULT)?;
                assert_eq!(
                    r.handle_at, 16,
                    "getdomaininfolist.buffer lives at 16 in xen_sysctl"
                );
                let mut n = 0usize;
                for (i, info) in st
                    .domains
                    .range(l.first_domain..)
                    .take(l.max_domains as usize)
                    .enumerate()
                {
                    let at = i * GetDomainInfo::SIZE;
                    r.data[at..at + GetDomainInfo::SIZE].copy_from_slice(&info.1.to_bytes());
                    n += 1;
                }
                l.num_domains = n as u32;
                Sysctl::new(s.cmd, s.interface_version, &l)
            }
            _ => return Err(Errno::ENOSYS),
        };
        arg.copy_from_slice(&out.to_bytes());
        Ok(0)
    }

    fn memory_op(
        &self,
        cmd: u64,
        arg: &mut [u8],
        regions: &mut [Region<'_>],
    ) -> std::result::Result<i64, Errno> {
        let mut st = self.st.borrow_mut();
        match cmd as u32 {
            memory::op::POPULATE_PHYSMAP => {
                let r = MemoryReservation::decode(arg).map_err(|_| Errno::EFAULT)?;
                let list = regions.first_mut().ok_or(Errno::EFAULT)?;
                assert_eq!(list.handle_at, 0);
                assert_eq!(list.data.len() as u64, r.nr_extents * 8);
                let n = (r.nr_extents as usize).min(st.populate_room);
                if st.pv.contains(&r.domid) {
                    // A PV domain's extents get machine frames, written over the gpfns.
                    for slot in list.data.chunks_exact_mut(8).take(n) {
                        let gpfn = u64::from_le_bytes(slot.try_into().unwrap());
                        slot.copy_from_slice(&(0x40_0000 + gpfn).to_le_bytes());
                    }
                }
                st.populate_room -= n;
                st.populate_calls
                    .push((r.domid, r.extent_order, r.nr_extents as usize));
                Ok(n as i64)
            }
            memory::op::CLAIM_PAGES => {
                let r = MemoryReservation::decode(arg).map_err(|_| Errno::EFAULT)?;
                assert_eq!(r.extent_start, 0);
                st.claims.push((r.domid, r.nr_extents));
                Ok(0)
            }
            memory::op::SET_MEMORY_MAP => {
                let m = memory::ForeignMemoryMap::decode(arg).map_err(|_| Errno::EFAULT)?;
                let r = regions.first().ok_or(Errno::EFAULT)?;
                assert_eq!(r.handle_at, 16);
                st.e820 = r
                    .data
                    .chunks(20)
                    .take(m.nr_entries as usize)
                    .filter_map(|c| AbiE820::decode(c).ok())
                    .collect();
                Ok(0)
            }
            XENMEM_MAXIMUM_GPFN => Ok(0xfffff),
            memory::op::ADD_TO_PHYSMAP => {
                let a = memory::AddToPhysmap::decode(arg).map_err(|_| Errno::EFAULT)?;
                assert_eq!(a.space, memory::mapspace::GRANT_TABLE);
                st.physmap_alias.insert((a.domid, a.gpfn), a.idx);
                Ok(0)
            }
            memory::op::REMOVE_FROM_PHYSMAP => {
                let a = memory::RemoveFromPhysmap::decode(arg).map_err(|_| Errno::EFAULT)?;
                st.physmap_alias
                    .remove(&(a.domid, a.gpfn))
                    .ok_or(Errno::ENOENT)?;
                Ok(0)
            }
            _ => Err(Errno::ENOSYS),
        }
    }
}

struct FakeMap {
    st: Rc<RefCell<State>>,
    dom: u16,
    gfns: Vec<u64>,
    grant: bool,
    buf: Vec<u8>,
}

impl Window for FakeMap {
    fn window(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}

impl Drop for FakeMap {
    fn drop(&mut self) {
        let mut st = self.st.borrow_mut();
        for (i, g) in self.gfns.iter().enumerate() {
            let page = self.buf[i * PAGE..(i + 1) * PAGE].to_vec();
            if self.grant {
                st.grant_frames.insert((self.dom, *g), page);
            } else if let Some(frame) = st.physmap_alias.get(&(self.dom, *g)).copied() {
                st.grant_frames.insert((self.dom, frame), page);
            } else {
                st.pages.insert((self.dom, *g), page);
            }
        }
    }
}

impl batch::Mapper for Fake {
    type Map = FakeMap;
    fn map(&self, dom: u16, gfns: &[u64]) -> Result<FakeMap> {
        let st = self.st.borrow();
        let mut buf = Vec::new();
        for g in gfns {
            let page = match st.physmap_alias.get(&(dom, *g)) {
                Some(frame) => st.grant_frames.get(&(dom, *frame)).cloned(),
                None => st.pages.get(&(dom, *g)).cloned(),
            };
            buf.extend(page.unwrap_or_else(|| vec![0; PAGE]));
        }
        Ok(FakeMap {
            st: self.st.clone(),
            dom,
            gfns: gfns.to_vec(),
            grant: false,
            buf,
        })
    }
}

impl Backend for Fake {
    unsafe fn call(
        &self,
        op: u64,
        cmd: Option<u64>,
        arg: &mut [u8],
        regions: &mut [Region<'_>],
    ) -> std::result::Result<i64, Errno> {
        self.st.borrow_mut().calls.push((op, cmd));
        match (op, cmd) {
            (hc::XEN_VERSION, Some(0)) => {
                assert!(arg.is_empty());
                Ok(i64::from(self.major << 16 | self.minor))
            }
            (hc::XEN_VERSION, Some(1)) => {
                assert_eq!(arg.len(), 16);
                arg[..3].copy_from_slice(b".0\0");
                Ok(0)
            }
            (hc::XEN_VERSION, Some(3)) => {
                assert_eq!(arg.len(), 1024);
                // Real Xen 4.17 ends the list with a space.
                arg[..CAPS.len()].copy_from_slice(CAPS.as_bytes());
                arg[CAPS.len()] = b' ';
                Ok(0)
            }
            (hc::DOMCTL, None) => self.domctl(arg, regions),
            (hc::SYSCTL, None) => self.sysctl(arg, regions),
            (hc::MEMORY_OP, Some(c)) => self.memory_op(c, arg, regions),
            (hc::HVM_OP, Some(c)) => {
                let mut p = HvmParam::decode(arg).map_err(|_| Errno::EFAULT)?;
                let mut st = self.st.borrow_mut();
                if c == u64::from(hvm::op::SET_PARAM) {
                    st.params.insert((p.domid, p.index), p.value);
                } else {
                    p.value = *st.params.get(&(p.domid, p.index)).ok_or(Errno::ENOENT)?;
                }
                arg.copy_from_slice(&p.to_bytes());
                Ok(0)
            }
            (hc::EVENT_CHANNEL_OP, Some(6)) => {
                let mut a = misc::EvtchnAllocUnbound::decode(arg).map_err(|_| Errno::EFAULT)?;
                let mut st = self.st.borrow_mut();
                a.port = st.next_port;
                st.next_port += 1;
                arg.copy_from_slice(&a.to_bytes());
                Ok(0)
            }
            (hc::SCHED_OP, Some(4)) => {
                let s = misc::SchedRemoteShutdown::decode(arg).map_err(|_| Errno::EFAULT)?;
                let mut st = self.st.borrow_mut();
                let info = st.domains.get_mut(&s.domain_id).ok_or(Errno::ESRCH)?;
                info.flags |= dominf::SHUTDOWN | (s.reason << 16);
                Ok(0)
            }
            _ => Err(Errno::ENOSYS),
        }
    }

    unsafe fn call_tail(
        &self,
        op: u64,
        arg: &mut [u8],
        regions: &mut [Region<'_>],
        tail: [u64; 3],
    ) -> std::result::Result<i64, Errno> {
        assert!(regions.is_empty());
        let mut st = self.st.borrow_mut();
        st.calls.push((op, None));
        if op != pv::HYPERCALL_MMUEXT_OP {
            return Err(Errno::ENOSYS);
        }
        assert_eq!(arg.len() as u64, 24 * tail[0], "count ops of 24 bytes");
        let m = pv::MmuextOp::decode(arg).map_err(|_| Errno::EFAULT)?;
        st.mmuext.push((m.cmd, m.arg1, tail));
        Ok(0)
    }

    fn map_resource(&self, dom: u16, kind: u16, id: u32, idx: u32, num: usize) -> Result<FakeMap> {
        let st = self.st.borrow();
        if st.resource_unsupported {
            return Err(XencallError::os("map resource", Errno::ENOTTY));
        }
        assert_eq!((kind, id, num), (memory::resource::GRANT_TABLE, 0, 1));
        let frame = u64::from(idx);
        let buf = st
            .grant_frames
            .get(&(dom, frame))
            .cloned()
            .unwrap_or_else(|| vec![0; PAGE]);
        Ok(FakeMap {
            st: self.st.clone(),
            dom,
            gfns: vec![frame],
            grant: true,
            buf,
        })
    }

    fn hypercall_count(&self) -> u64 {
        self.st.borrow().calls.len() as u64
    }
}

fn host417() -> (Host<Fake>, Rc<RefCell<State>>) {
    let fake = Fake::new(4, 17, 0x15, 0x15);
    let st = fake.st.clone();
    (Host::probe(fake).unwrap(), st)
}

fn cfg() -> CreateDomain {
    CreateDomain::pvh([0xab; 16], 2)
}

#[test]
fn probe_reads_version_and_interfaces() {
    let (h, _) = host417();
    let v = h.version().unwrap();
    assert_eq!((v.major, v.minor, v.extra.as_str()), (4, 17, ".0"));
    assert_eq!(v.capabilities, CAPS);
    assert_eq!((v.domctl_interface, v.sysctl_interface), (0x15, 0x15));
    assert_eq!(h.abi.createdomain, CreateDomainLayout::V417);
}

#[test]
fn probe_falls_through_to_the_accepted_version() {
    // A Xen claiming 4.30 that speaks the 4.22 interfaces.
    let fake = Fake::new(4, 30, 0x18, 0x16);
    let st = fake.st.clone();
    let h = Host::probe(fake).unwrap();
    assert_eq!((h.abi.domctl, h.abi.sysctl), (0x18, 0x16));
    assert_eq!(h.abi.createdomain, CreateDomainLayout::V419);
    // 3 xen_version calls, 1 domctl try (0x18 first for an unknown release), 1 sysctl.
    assert_eq!(st.borrow().calls.len(), 5);

    let fake = Fake::new(4, 19, 0x17, 0x15);
    let h = Host::probe(fake).unwrap();
    assert_eq!(h.abi.createdomain, CreateDomainLayout::V419);
}

#[test]
fn probe_refuses_unknown_interfaces() {
    let fake = Fake::new(4, 23, 0x19, 0x16);
    let err = Host::probe(fake)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with("probe domctl interface: unsupported Xen domctl interface"),
        "{err}"
    );
    assert!(err.contains("Xen 4.23 refused"), "{err}");
    assert!(err.contains("4.22 (domctl 0x18, sysctl 0x16)"), "{err}");
}

#[test]
fn create_domain_sends_the_probed_layout() {
    let (h, st) = host417();
    let id = h.create_domain(&cfg()).unwrap();
    assert_eq!(id, DomId(1));
    let created = st.borrow().created[0].clone();
    let c = domctl::CreateDomainV417::decode(&created).unwrap();
    assert_eq!((c.flags, c.max_vcpus, c.max_evtchn_port), (3, 2, 1023));
    assert_eq!(
        (c.max_grant_frames, c.grant_opts, c.emulation_flags),
        (-1, 1, 1)
    );
    assert_eq!(c.handle, [0xab; 16]);

    let fake = Fake::new(4, 20, 0x17, 0x15);
    let st = fake.st.clone();
    let h = Host::probe(fake).unwrap();
    h.create_domain(&cfg()).unwrap();
    let created = st.borrow().created[0].clone();
    assert_eq!(created.len(), 68);
    let c = domctl::CreateDomainV419::decode(&created).unwrap();
    assert_eq!((c.altp2m_opts, c.emulation_flags, c.max_vcpus), (0, 1, 2));
}

#[test]
fn domain_info_checks_the_returned_id() {
    let (h, _) = host417();
    let id = h.create_domain(&cfg()).unwrap();
    let _ = h.create_domain(&cfg()).unwrap();
    let info = h.domain_info(id).unwrap().unwrap();
    assert!(info.paused && info.hvm && info.hap);
    h.destroy(id).unwrap();
    // The quirk answers dom 2 for dom 1: must read as absent.
    assert_eq!(h.domain_info(id).unwrap(), None);
    assert_eq!(h.domain_info(DomId(50)).unwrap(), None);
}

#[test]
fn list_domains_restarts_after_the_last_id() {
    let (h, st) = host417();
    for _ in 0..600 {
        h.create_domain(&cfg()).unwrap();
    }
    let all = h.list_domains().unwrap();
    assert_eq!(all.len(), 601);
    assert!(all.windows(2).all(|w| w[0].domid < w[1].domid));
    assert_eq!(st.borrow().list_firsts, vec![0, 256, 512]);
    assert_eq!(all[0].domid, DomId(0));
    assert_eq!(all[0].tot_pages, 262144);
}

#[test]
fn destroy_retries_while_xen_says_eagain() {
    let (h, st) = host417();
    let id = h.create_domain(&cfg()).unwrap();
    st.borrow_mut().destroy_eagain = 5;
    let before = h.hypercall_count();
    h.destroy(id).unwrap();
    assert_eq!(h.hypercall_count() - before, 6);
    assert_eq!(h.domain_info(id).unwrap(), None);
    let e = h.destroy(id).err().unwrap();
    assert_eq!(
        e.to_string(),
        "destroydomain dom 1: ESRCH (no such domain or process)"
    );
}

#[test]
fn populate_reports_partial_counts_and_chunks() {
    let (h, st) = host417();
    let id = h.create_domain(&cfg()).unwrap();
    let gfns: Vec<Gfn> = (0..40_000u64).map(|i| Gfn(i << 9)).collect();
    assert_eq!(h.populate_physmap(id, 9, &gfns).unwrap(), 40_000);
    assert_eq!(
        st.borrow().populate_calls,
        vec![(1, 9, POPULATE_CHUNK), (1, 9, 40_000 - POPULATE_CHUNK)]
    );
    st.borrow_mut().populate_room = 10;
    assert_eq!(h.populate_physmap(id, 0, &gfns[..100]).unwrap(), 10);
    assert_eq!(h.populate_physmap(id, 0, &[]).unwrap(), 0);
    h.claim_pages(id, 1234).unwrap();
    assert_eq!(st.borrow().claims, vec![(1, 1234)]);
}

#[test]
fn memory_map_params_and_limits() {
    let (h, st) = host417();
    let id = h.create_domain(&cfg()).unwrap();
    let map = [
        E820Entry {
            addr: 0,
            size: 0xfc00_0000,
            kind: 1,
        },
        E820Entry {
            addr: 0xfc00_0000,
            size: 0x1000,
            kind: 2,
        },
    ];
    h.set_memory_map(id, &map).unwrap();
    let got: Vec<(u64, u64, u32)> = st
        .borrow()
        .e820
        .iter()
        .map(|e| (e.addr, e.size, e.kind))
        .collect();
    assert_eq!(got, vec![(0, 0xfc00_0000, 1), (0xfc00_0000, 0x1000, 2)]);
    h.set_hvm_param(id, 10, 1).unwrap();
    assert_eq!(h.get_hvm_param(id, 10).unwrap(), 1);
    let e = h.get_hvm_param(id, 11).err().unwrap();
    assert_eq!(
        e.to_string(),
        "get_hvm_param dom 1 param 11: ENOENT (no such file or directory)"
    );
    h.max_vcpus(id, 2).unwrap();
    h.max_mem(id, 263168).unwrap();
    h.set_tsc_info(id, 0).unwrap();
    h.set_paging_mempool_size(id, 4 << 20).unwrap();
    assert_eq!(
        st.borrow().limits,
        vec!["vcpus 2", "mem 263168", "tsc 0", "pool 4194304"]
    );
    let e = h.max_vcpus(DomId(9), 2).err().unwrap();
    assert_eq!(
        e.to_string(),
        "max_vcpus dom 9 2: ESRCH (no such domain or process)"
    );
}

#[test]
fn hvm_context_round_trip() {
    let (h, st) = host417();
    let id = h.create_domain(&cfg()).unwrap();
    assert_eq!(h.get_hvm_context(id).unwrap(), vec![0xcc; 100]);
    h.set_hvm_context(id, &[1, 2, 3, 4]).unwrap();
    assert_eq!(st.borrow().set_ctx, vec![1, 2, 3, 4]);
}

#[test]
fn events_shutdown_pause() {
    let (h, _) = host417();
    let id = h.create_domain(&cfg()).unwrap();
    assert_eq!(h.alloc_unbound(id, DomId(0)).unwrap(), 1);
    assert_eq!(h.alloc_unbound(id, DomId(0)).unwrap(), 2);
    h.unpause(id).unwrap();
    assert!(!h.domain_info(id).unwrap().unwrap().paused);
    h.pause(id).unwrap();
    assert!(h.domain_info(id).unwrap().unwrap().paused);
    h.shutdown(id, ShutdownReason::Reboot).unwrap();
    let info = h.domain_info(id).unwrap().unwrap();
    assert_eq!(info.shutdown_reason(), Some(ShutdownReason::Reboot));
    let p = h.physinfo().unwrap();
    assert!(p.caps.hvm && p.caps.hap && p.caps.gnttab_v1);
    assert_eq!(p.total_pages, 786432);
}

#[test]
fn triggers_go_to_xen_with_their_domctl_codes() {
    let (h, st) = host417();
    let id = h.create_domain(&cfg()).unwrap();
    h.send_trigger(id, Trigger::Power, 0).unwrap();
    h.send_trigger(id, Trigger::Reset, 0).unwrap();
    h.send_trigger(id, Trigger::Nmi, 1).unwrap();
    let limits = st.borrow().limits.clone();
    assert_eq!(
        &limits[limits.len() - 3..],
        ["trigger 3 vcpu 0", "trigger 1 vcpu 0", "trigger 0 vcpu 1"]
    );
    let e = h.send_trigger(DomId(99), Trigger::Power, 0).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::ESRCH));
    assert!(e.to_string().contains("sendtrigger dom 99 power"), "{e}");
}

#[test]
fn guest_memory_through_the_host() {
    let (h, _) = host417();
    let id = h.create_domain(&cfg()).unwrap();
    let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
    h.write_guest(id, 0x10_0ff0, &data).unwrap();
    assert_eq!(h.read_guest(id, 0x10_0ff0, data.len()).unwrap(), data);
    h.zero_guest(id, 0x10_1000, 16).unwrap();
    let back = h.read_guest(id, 0x10_0ff0, 48).unwrap();
    assert_eq!(&back[..16], &data[..16]);
    assert!(back[16..32].iter().all(|&b| b == 0));
    assert_eq!(&back[32..], &data[32..48]);
}

#[test]
fn pv_populate_returns_the_mfns_xen_wrote_back() {
    let (h, st) = host417();
    let id = h.create_domain(&CreateDomain::pv([1; 16], 1)).unwrap();
    assert!(!h.domain_info(id).unwrap().unwrap().hvm);
    let mfns = h.populate_physmap_pv(id, 0, &[0, 1, 5]).unwrap();
    assert_eq!(mfns, vec![0x40_0000, 0x40_0001, 0x40_0005]);
    st.borrow_mut().populate_room = 2;
    assert_eq!(
        h.populate_physmap_pv(id, 0, &[7, 8, 9]).unwrap(),
        vec![0x40_0007, 0x40_0008],
        "a partial populate returns the extents done"
    );
    // The createdomain request carries no HVM/HAP flags and no emulation.
    let created = st.borrow().created[0].clone();
    assert_eq!(&created[20..24], &0u32.to_le_bytes(), "flags");
    assert_eq!(&created[56..60], &0u32.to_le_bytes(), "emulation_flags");
}

#[test]
fn pv_domctls_and_mmuext_encode_as_the_headers_say() {
    let (h, st) = host417();
    let id = h.create_domain(&CreateDomain::pv([1; 16], 2)).unwrap();
    h.set_address_size(id, 64).unwrap();
    h.hypercall_init(id, 0x40_1234).unwrap();
    assert_eq!(
        st.borrow().limits,
        vec!["address size 64", "hypercall page 0x401234"]
    );
    h.pin_l4_table(id, 0x40_0042).unwrap();
    assert_eq!(
        st.borrow().mmuext,
        vec![(pv::mmuext::PIN_L4_TABLE, 0x40_0042, [1, 0, u64::from(id.0)])]
    );
    let ctx = PvVcpuContext {
        rip: 0xffff_ffff_8100_0000,
        rsp: 0xffff_ffff_8200_0000,
        rsi: 0xffff_ffff_8180_0000,
        rflags: 1 << 9,
        cr3_mfn: 0x40_0042,
        kernel_sp: 0xffff_ffff_8200_0000,
    };
    h.set_pv_vcpu_context(id, 1, &ctx).unwrap();
    let (vcpu, bytes) = st.borrow().vcpu_ctx[0].clone();
    assert_eq!(vcpu, 1);
    assert_eq!(bytes.len(), 5168);
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    assert_eq!(u64_at(512), pv::vgcf::IN_KERNEL | pv::vgcf::ONLINE);
    assert_eq!(u64_at(520 + 128), ctx.rip);
    assert_eq!(u64_at(520 + 152), ctx.rsp);
    assert_eq!(u64_at(520 + 104), ctx.rsi);
    assert_eq!(u64_at(520 + 144), 1 << 9);
    assert_eq!(&bytes[520 + 136..520 + 138], &0xe033u16.to_le_bytes());
    assert_eq!(&bytes[520 + 160..520 + 162], &0xe02bu16.to_le_bytes());
    assert_eq!(u64_at(4968), 0xe02b);
    assert_eq!(u64_at(4976), ctx.kernel_sp);
    assert_eq!(u64_at(4984 + 24), 0x40_0042 << 12, "cr3");
}

#[test]
fn pv_frames_and_shared_info_through_the_host() {
    let (h, st) = host417();
    let id = h.create_domain(&CreateDomain::pv([1; 16], 1)).unwrap();
    let mfns = [0x40_0009, 0x40_0002];
    let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    h.write_frames(id, &mfns, &data).unwrap();
    assert_eq!(&h.read_frames(id, &mfns).unwrap()[..5000], &data[..]);
    assert_eq!(st.borrow().pages[&(id.0, 0x40_0009)][..], data[..4096]);
    h.zero_frames(id, &mfns[..1]).unwrap();
    assert!(h
        .read_frames(id, &mfns[..1])
        .unwrap()
        .iter()
        .all(|&b| b == 0));
    assert!(h.write_frames(id, &mfns[..1], &data).is_err());

    st.borrow_mut()
        .pages
        .insert((id.0, 0xa_bc00 + u64::from(id.0)), vec![0x77; PAGE]);
    let si = h.init_pv_shared_info(id).unwrap();
    assert_eq!(si, 0xa_bc00 + u64::from(id.0));
    let page = st.borrow().pages[&(id.0, si)].clone();
    for i in 0..32 {
        assert_eq!(page[i * 64 + 1], 1, "vcpu_info {i} masked");
        assert_eq!(page[i * 64], 0);
    }
    assert_eq!(
        page.iter().filter(|&&b| b != 0).count(),
        32,
        "the rest cleared"
    );
}

fn grants() -> Vec<GrantEntryV1> {
    vec![
        GrantEntryV1 {
            flags: 1,
            domid: 0,
            frame: 0xfefff,
        },
        GrantEntryV1 {
            flags: 1,
            domid: 0,
            frame: 0xfeffc,
        },
    ]
}

#[test]
fn grant_entries_via_resource_mapping() {
    let (h, st) = host417();
    let id = h.create_domain(&cfg()).unwrap();
    h.write_grant_entries(id, 0, &grants()).unwrap();
    let frame = st.borrow().grant_frames[&(1, 0)].clone();
    assert_eq!(
        &frame[..16],
        &[1, 0, 0, 0, 0xff, 0xef, 0x0f, 0, 1, 0, 0, 0, 0xfc, 0xef, 0x0f, 0]
    );
}

#[test]
fn grant_entries_fall_back_to_add_to_physmap() {
    let (h, st) = host417();
    let id = h.create_domain(&cfg()).unwrap();
    st.borrow_mut().resource_unsupported = true;
    h.write_grant_entries(id, 511, &grants()).unwrap();
    let s = st.borrow();
    // Entry 511 ends frame 0, entry 512 starts frame 1.
    assert_eq!(
        &s.grant_frames[&(1, 0)][511 * 8..512 * 8],
        &[1, 0, 0, 0, 0xff, 0xef, 0x0f, 0]
    );
    assert_eq!(
        &s.grant_frames[&(1, 1)][..8],
        &[1, 0, 0, 0, 0xfc, 0xef, 0x0f, 0]
    );
    // The scratch gfn was taken out again.
    assert!(s.physmap_alias.is_empty());
}

#[test]
fn createdomain_bytes_for_417() {
    let abi = XenAbi::for_release(4, 17).unwrap();
    let b = createdomain_domctl(abi, &cfg()).to_bytes();
    assert_eq!(&b[0..4], &1u32.to_le_bytes());
    assert_eq!(&b[4..8], &0x15u32.to_le_bytes());
    assert_eq!(&b[8..10], &0x7ff4u16.to_le_bytes());
    let u = &b[16..];
    assert_eq!(&u[20..24], &3u32.to_le_bytes());
    assert_eq!(&u[36..40], &(-1i32).to_le_bytes());
    assert_eq!(&u[56..60], &1u32.to_le_bytes());
    assert!(u[64..].iter().all(|&x| x == 0));
}

#[test]
fn grant_entries_split_by_frame() {
    let e = GrantEntryV1 {
        flags: 1,
        domid: 0,
        frame: 5,
    };
    let entries = vec![e; 600];
    let mut seen = Vec::new();
    for_each_frame(510, &entries, |f, o, c| {
        seen.push((f, o, c.len()));
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, vec![(0, 510, 2), (1, 0, 512), (2, 0, 86)]);
}

#[test]
fn probe_answers() {
    assert_eq!(answer(Ok(())), ProbeAnswer::Accepted);
    assert_eq!(answer(Err(Errno::EACCES)), ProbeAnswer::WrongVersion);
    assert_eq!(answer(Err(Errno::EPERM)), ProbeAnswer::Failed(1));
    let e = run_probe(&[0x15], "sysctl", 4, 17, |_| ProbeAnswer::Failed(1)).err();
    assert_eq!(
        e.map(|e| e.to_string()).as_deref(),
        Some("probe sysctl interface 0x15: EPERM (operation not permitted): this domain may not issue control hypercalls; run rxl in dom0")
    );
}

#[test]
fn xen_host_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<XenHost>();
}
