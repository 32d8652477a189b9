//! [`XenHost`]: the real hypervisor behind `xen_host::Hypervisor`.

use std::time::{Duration, Instant};

use xen_abi::domctl::{self, Domctl, GetDomainInfo};
use xen_abi::hvm::{self, HvmParam};
use xen_abi::memory::{self, E820Entry as AbiE820, MemoryReservation};
use xen_abi::misc::{self, hypercall as hc};
use xen_abi::sysctl::{self, Sysctl};
use xen_abi::version::{self, ProbeAnswer};
use xen_abi::{AbiError, CreateDomainLayout, Wire, XenAbi};
use xen_host::{
    CreateDomain, DomId, DomainInfo, E820Entry, Errno, GrantEntryV1, HostCaps, Hypervisor,
    PhysInfo, Result as HostResult, ShutdownReason, VersionInfo,
};

use crate::batch::{self, Mapper, BATCH_PAGES};
use crate::error::XencallError;
use crate::privcmd::{ForeignMap, HypercallBuf, Privcmd};
use crate::sys::PAGE;

type Result<T> = std::result::Result<T, XencallError>;

/// Extents per populate_physmap hypercall (256 KiB of gfns).
const POPULATE_CHUNK: usize = 1 << 15;
/// Records per getdomaininfolist sysctl.
const LIST_BATCH: u32 = 256;
/// How long destroy keeps retrying while Xen says EAGAIN.
const DESTROY_PATIENCE: Duration = Duration::from_secs(120);
/// v1 grant entries per grant table frame.
const GRANTS_PER_FRAME: usize = PAGE / 8;

/// The real Xen host, through /dev/xen/privcmd.
///
/// Opening probes the Xen version and the domctl/sysctl interface versions; every later
/// call uses the layouts of the probed interfaces.
#[derive(Debug)]
pub struct XenHost {
    pc: Privcmd,
    abi: XenAbi,
    info: VersionInfo,
}

fn abi_err(op: impl Into<String>) -> impl FnOnce(AbiError) -> XencallError {
    let op = op.into();
    move |source| XencallError::Abi { op, source }
}

impl XenHost {
    /// Open privcmd and probe the hypervisor. On a machine without Xen the error says
    /// exactly: "no Xen hypervisor here (/dev/xen/privcmd is missing); use --sim DIR for a
    /// simulated host".
    pub fn open() -> Result<XenHost> {
        let pc = Privcmd::open()?;
        let (major, minor, extra, capabilities) = probe_version(&pc)?;
        let dom_cands = XenAbi::domctl_candidates(major, minor);
        let domctl = run_probe(&dom_cands, "domctl", major, minor, |v| {
            answer(getdomaininfo_raw(&pc, v, 0).map(|_| ()))
        })?;
        let sys_cands = XenAbi::sysctl_candidates(major, minor);
        let sysctl = run_probe(&sys_cands, "sysctl", major, minor, |v| {
            answer(physinfo_raw(&pc, v).map(|_| ()))
        })?;
        let abi = XenAbi::from_interfaces(domctl, sysctl).map_err(abi_err("probe"))?;
        let info = VersionInfo {
            major,
            minor,
            extra,
            capabilities,
            domctl_interface: domctl,
            sysctl_interface: sysctl,
        };
        Ok(XenHost { pc, abi, info })
    }

    /// The interface versions in use.
    pub fn abi(&self) -> XenAbi {
        self.abi
    }

    /// The privcmd handle.
    pub fn privcmd(&self) -> &Privcmd {
        &self.pc
    }

    fn domctl<P: Wire>(&self, op: &str, cmd: u32, dom: DomId, payload: &P) -> Result<Domctl> {
        let d = Domctl::new(cmd, self.abi.domctl, dom.0, payload);
        // SAFETY: every caller passes a payload whose guest handles are null or point at
        // hypercall buffers it keeps alive until this returns.
        unsafe { domctl_call(&self.pc, &d) }.map_err(|e| XencallError::os(op, e))
    }

    fn bare_domctl(&self, op: &str, cmd: u32, dom: DomId) -> Result<()> {
        let d = Domctl::bare(cmd, self.abi.domctl, dom.0);
        // SAFETY: a payload-less domctl has no guest handles.
        unsafe { domctl_call(&self.pc, &d) }
            .map(|_| ())
            .map_err(|e| XencallError::os(op, e))
    }

    fn sysctl<P: Wire>(&self, op: &str, cmd: u32, payload: &P) -> Result<Sysctl> {
        let s = Sysctl::new(cmd, self.abi.sysctl, payload);
        // SAFETY: callers pass payloads whose handles point at live hypercall buffers.
        unsafe { sysctl_call(&self.pc, &s) }.map_err(|e| XencallError::os(op, e))
    }

    /// A `hypercall(op, cmd, &arg)` whose argument struct has no guest handles.
    fn simple_op<T: Wire>(&self, what: &str, op: u64, cmd: u32, arg: &T) -> Result<(i64, T)> {
        // SAFETY: callers only pass handle-free structs (hvm_param, evtchn_alloc_unbound,
        // sched_remote_shutdown, add/remove_from_physmap, claim reservations with a null
        // extent list).
        unsafe { struct_call(&self.pc, op, Some(u64::from(cmd)), arg) }
            .map_err(|e| XencallError::os(what, e))
    }

    fn grant_fallback(&self, dom: DomId, first_ref: u32, entries: &[GrantEntryV1]) -> Result<()> {
        // Map each grant frame into the guest at a scratch gfn above its highest one,
        // map that gfn, write, and take the frame out again.
        let domid = dom.0;
        let op = format!("grant table fallback dom {dom}");
        let mut buf = self.pc.buffer(8)?;
        buf.bytes_mut()
            .get_mut(..2)
            .unwrap_or(&mut [])
            .copy_from_slice(&domid.to_le_bytes());
        // SAFETY: XENMEM_maximum_gpfn reads a domid_t at the buffer's address.
        let max = unsafe { self.pc.hypercall(hc::MEMORY_OP, [14, buf.addr(), 0, 0, 0]) }
            .map_err(|e| XencallError::os(format!("{op}: maximum_gpfn"), e))?;
        let scratch = u64::try_from(max)
            .ok()
            .and_then(|m| m.checked_add(1))
            .ok_or_else(|| XencallError::Other {
                op: op.clone(),
                message: format!("bad maximum gpfn {max}"),
            })?;
        for_each_frame(first_ref, entries, |frame, offset, chunk| {
            let add = memory::AddToPhysmap {
                domid,
                size: 0,
                space: memory::mapspace::GRANT_TABLE,
                idx: frame as u64,
                gpfn: scratch,
            };
            self.simple_op(
                &format!("{op}: add_to_physmap frame {frame}"),
                hc::MEMORY_OP,
                memory::op::ADD_TO_PHYSMAP,
                &add,
            )?;
            let res = self
                .pc
                .map_foreign(domid, &[scratch])
                .map(|mut map| write_entries(&mut map, offset, chunk));
            let rm = memory::RemoveFromPhysmap {
                domid,
                pad: [0; 3],
                gpfn: scratch,
            };
            let removed = self.simple_op(
                &format!("{op}: remove_from_physmap"),
                hc::MEMORY_OP,
                memory::op::REMOVE_FROM_PHYSMAP,
                &rm,
            );
            res?;
            removed.map(|_| ())
        })
    }
}

/// Split grant entries by frame: `f(frame index, entry offset in frame, entries)`.
fn for_each_frame(
    first_ref: u32,
    entries: &[GrantEntryV1],
    mut f: impl FnMut(usize, usize, &[GrantEntryV1]) -> Result<()>,
) -> Result<()> {
    let mut gref = first_ref as usize;
    let mut rest = entries;
    while !rest.is_empty() {
        let frame = gref / GRANTS_PER_FRAME;
        let offset = gref % GRANTS_PER_FRAME;
        let n = (GRANTS_PER_FRAME - offset).min(rest.len());
        let (now, later) = rest.split_at(n);
        f(frame, offset, now)?;
        gref += n;
        rest = later;
    }
    Ok(())
}

/// Write grant entries at entry `offset` of a mapped frame. Frame and domid go first and
/// flags last, as a guest would, so Xen never sees a half-written entry as valid.
fn write_entries(map: &mut ForeignMap, offset: usize, entries: &[GrantEntryV1]) {
    let bytes = map.bytes_mut();
    for (i, e) in entries.iter().enumerate() {
        let at = (offset + i) * 8;
        if let Some(slot) = bytes.get_mut(at..at + 8) {
            slot[2..4].copy_from_slice(&e.domid.to_le_bytes());
            slot[4..8].copy_from_slice(&e.frame.to_le_bytes());
            std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
            slot[0..2].copy_from_slice(&e.flags.to_le_bytes());
        }
    }
}

/// Issue a domctl and return what Xen wrote back.
///
/// # Safety
/// Guest handles in the payload must be null or point at live hypercall buffers.
unsafe fn domctl_call(pc: &Privcmd, d: &Domctl) -> std::result::Result<Domctl, Errno> {
    // SAFETY: forwarded contract.
    unsafe { struct_call(pc, hc::DOMCTL, None, d) }.map(|(_, d)| d)
}

/// Issue a sysctl and return what Xen wrote back.
///
/// # Safety
/// As for [`domctl_call`].
unsafe fn sysctl_call(pc: &Privcmd, s: &Sysctl) -> std::result::Result<Sysctl, Errno> {
    // SAFETY: forwarded contract.
    unsafe { struct_call(pc, hc::SYSCTL, None, s) }.map(|(_, s)| s)
}

/// Copy `arg` into a hypercall buffer, call `op` with `(cmd, buffer)` or `(buffer)`, and
/// decode the buffer again.
///
/// # Safety
/// Guest handles inside `arg` must be null or point at live hypercall buffers of the
/// sizes the call uses.
unsafe fn struct_call<T: Wire>(
    pc: &Privcmd,
    op: u64,
    cmd: Option<u64>,
    arg: &T,
) -> std::result::Result<(i64, T), Errno> {
    let mut buf = pc
        .buffer(T::SIZE)
        .map_err(|e| e.errno().unwrap_or(Errno::ENOMEM))?;
    arg.encode_into(buf.bytes_mut())
        .map_err(|_| Errno::EINVAL)?;
    let args = match cmd {
        Some(c) => [c, buf.addr(), 0, 0, 0],
        None => [buf.addr(), 0, 0, 0, 0],
    };
    // SAFETY: the buffer is live hypercall memory holding a T; the caller vouches for
    // the handles inside it.
    let rc = unsafe { pc.hypercall(op, args) }?;
    let back = T::decode(buf.bytes()).map_err(|_| Errno::EIO)?;
    Ok((rc, back))
}

fn getdomaininfo_raw(pc: &Privcmd, iv: u32, dom: u16) -> std::result::Result<GetDomainInfo, Errno> {
    let d = Domctl::bare(domctl::cmd::GETDOMAININFO, iv, dom);
    // SAFETY: getdomaininfo has no guest handles.
    let back = unsafe { domctl_call(pc, &d) }?;
    back.payload::<GetDomainInfo>().map_err(|_| Errno::EIO)
}

fn physinfo_raw(pc: &Privcmd, iv: u32) -> std::result::Result<sysctl::PhysInfo, Errno> {
    let s = Sysctl::new(sysctl::cmd::PHYSINFO, iv, &sysctl::PhysInfo::default());
    // SAFETY: physinfo has no guest handles.
    let back = unsafe { sysctl_call(pc, &s) }?;
    back.payload::<sysctl::PhysInfo>().map_err(|_| Errno::EIO)
}

fn answer(r: std::result::Result<(), Errno>) -> ProbeAnswer {
    match r {
        Ok(()) => ProbeAnswer::Accepted,
        Err(e) if e == Errno::EACCES => ProbeAnswer::WrongVersion,
        Err(e) => ProbeAnswer::Failed(e.0),
    }
}

fn run_probe(
    cands: &[u32],
    what: &'static str,
    major: u32,
    minor: u32,
    try_one: impl FnMut(u32) -> ProbeAnswer,
) -> Result<u32> {
    match version::probe(cands, try_one) {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(XencallError::Abi {
            op: format!("probe {what} interface"),
            source: AbiError::UnknownInterface {
                what,
                found: format!("(Xen {major}.{minor} refused all of {cands:#x?})"),
                known: version::known_list(),
            },
        }),
        Err((v, errno)) => Err(XencallError::os(
            format!("probe {what} interface {v:#x}"),
            Errno(errno),
        )),
    }
}

fn probe_version(pc: &Privcmd) -> Result<(u32, u32, String, String)> {
    // SAFETY: XENVER_version takes no buffer (null argument).
    let raw = unsafe {
        pc.hypercall(
            hc::XEN_VERSION,
            [u64::from(misc::xenver::VERSION), 0, 0, 0, 0],
        )
    }
    .map_err(|e| XencallError::os("xen_version", e))?;
    let (major, minor) = misc::split_version(u32::try_from(raw).unwrap_or(0));
    let text = |cmd: u32, len: usize, what: &str| -> Result<String> {
        let buf = pc.buffer(len)?;
        // SAFETY: the buffer is live hypercall memory of at least `len` bytes, which is
        // what this XENVER sub-command fills.
        unsafe { pc.hypercall(hc::XEN_VERSION, [u64::from(cmd), buf.addr(), 0, 0, 0]) }
            .map_err(|e| XencallError::os(format!("xen_version {what}"), e))?;
        Ok(misc::c_string(buf.bytes().get(..len).unwrap_or(&[])))
    };
    let extra = text(
        misc::xenver::EXTRAVERSION,
        misc::EXTRAVERSION_LEN,
        "extraversion",
    )?;
    let caps = text(
        misc::xenver::CAPABILITIES,
        misc::CAPABILITIES_LEN,
        "capabilities",
    )?;
    Ok((major, minor, extra, caps))
}

impl Mapper for Privcmd {
    type Map = ForeignMap;
    fn map(&self, dom: u16, gfns: &[u64]) -> Result<ForeignMap> {
        self.map_foreign(dom, gfns)
    }
}

/// Convert a getdomaininfo record.
pub(crate) fn domain_info_of(i: &GetDomainInfo) -> DomainInfo {
    use domctl::dominf as f;
    let has = |bit: u32| i.flags & bit != 0;
    DomainInfo {
        domid: DomId(i.domain),
        dying: has(f::DYING),
        hvm: has(f::HVM_GUEST),
        shutdown: has(f::SHUTDOWN),
        paused: has(f::PAUSED),
        blocked: has(f::BLOCKED),
        running: has(f::RUNNING),
        debugged: has(f::DEBUGGED),
        xs_domain: has(f::XS_DOMAIN),
        hap: has(f::HAP),
        shutdown_code: i.shutdown_code(),
        tot_pages: i.tot_pages,
        max_pages: i.max_pages,
        outstanding_pages: i.outstanding_pages,
        cpu_time_ns: i.cpu_time,
        nr_online_vcpus: i.nr_online_vcpus,
        max_vcpu_id: i.max_vcpu_id,
        ssidref: i.ssidref,
        handle: i.handle,
        cpupool: i.cpupool,
    }
}

/// Convert physinfo.
pub(crate) fn physinfo_of(p: &sysctl::PhysInfo) -> PhysInfo {
    use sysctl::physcap as c;
    let has = |bit: u32| p.capabilities & bit != 0;
    PhysInfo {
        threads_per_core: p.threads_per_core,
        cores_per_socket: p.cores_per_socket,
        nr_cpus: p.nr_cpus,
        max_cpu_id: p.max_cpu_id,
        nr_nodes: p.nr_nodes,
        max_node_id: p.max_node_id,
        cpu_khz: p.cpu_khz,
        caps: HostCaps {
            hvm: has(c::HVM),
            pv: has(c::PV),
            hap: has(c::HAP),
            shadow: has(c::SHADOW),
            iommu_hap_pt_share: has(c::IOMMU_HAP_PT_SHARE),
            gnttab_v1: has(c::GNTTAB_V1),
            gnttab_v2: has(c::GNTTAB_V2),
        },
        total_pages: p.total_pages,
        free_pages: p.free_pages,
        scrub_pages: p.scrub_pages,
        outstanding_pages: p.outstanding_pages,
        max_mfn: p.max_mfn,
        hw_cap: p.hw_cap.to_vec(),
    }
}

/// The createdomain payload for a layout, as bytes of the domctl union.
pub(crate) fn createdomain_domctl(abi: XenAbi, cfg: &CreateDomain) -> Domctl {
    let cmd = domctl::cmd::CREATEDOMAIN;
    let dom = misc::DOMID_INVALID;
    match abi.createdomain {
        CreateDomainLayout::V417 => Domctl::new(
            cmd,
            abi.domctl,
            dom,
            &domctl::CreateDomainV417 {
                ssidref: cfg.ssidref,
                handle: cfg.handle,
                flags: cfg.flags,
                iommu_opts: 0,
                max_vcpus: cfg.max_vcpus,
                max_evtchn_port: cfg.max_evtchn_port,
                max_grant_frames: cfg.max_grant_frames,
                max_maptrack_frames: cfg.max_maptrack_frames,
                grant_opts: cfg.grant_opts,
                vmtrace_size: 0,
                cpupool_id: 0,
                emulation_flags: cfg.emulation_flags,
                misc_flags: cfg.misc_flags,
            },
        ),
        CreateDomainLayout::V419 => Domctl::new(
            cmd,
            abi.domctl,
            dom,
            &domctl::CreateDomainV419 {
                ssidref: cfg.ssidref,
                handle: cfg.handle,
                flags: cfg.flags,
                iommu_opts: 0,
                max_vcpus: cfg.max_vcpus,
                max_evtchn_port: cfg.max_evtchn_port,
                max_grant_frames: cfg.max_grant_frames,
                max_maptrack_frames: cfg.max_maptrack_frames,
                grant_opts: cfg.grant_opts,
                altp2m_opts: 0,
                vmtrace_size: 0,
                cpupool_id: 0,
                emulation_flags: cfg.emulation_flags,
                misc_flags: cfg.misc_flags,
            },
        ),
    }
}

fn gfn_bytes(buf: &mut HypercallBuf<'_>, gfns: &[u64]) {
    for (slot, g) in buf.bytes_mut().chunks_exact_mut(8).zip(gfns) {
        slot.copy_from_slice(&g.to_le_bytes());
    }
}

impl Hypervisor for XenHost {
    fn version(&self) -> HostResult<VersionInfo> {
        Ok(self.info.clone())
    }

    fn physinfo(&self) -> HostResult<PhysInfo> {
        let s = self.sysctl(
            "physinfo",
            sysctl::cmd::PHYSINFO,
            &sysctl::PhysInfo::default(),
        )?;
        let p = s
            .payload::<sysctl::PhysInfo>()
            .map_err(abi_err("physinfo"))?;
        Ok(physinfo_of(&p))
    }

    fn create_domain(&self, cfg: &CreateDomain) -> HostResult<DomId> {
        let d = createdomain_domctl(self.abi, cfg);
        // SAFETY: createdomain has no guest handles.
        let back = unsafe { domctl_call(&self.pc, &d) }
            .map_err(|e| XencallError::os("createdomain", e))?;
        if back.domain >= DomId::FIRST_RESERVED {
            return Err(XencallError::Other {
                op: "createdomain".into(),
                message: format!("Xen returned reserved domain id {:#x}", back.domain),
            }
            .into());
        }
        Ok(DomId(back.domain))
    }

    fn max_vcpus(&self, dom: DomId, max: u32) -> HostResult<()> {
        let p = domctl::MaxVcpus { max };
        self.domctl(
            &format!("max_vcpus dom {dom} {max}"),
            domctl::cmd::MAX_VCPUS,
            dom,
            &p,
        )?;
        Ok(())
    }

    fn max_mem(&self, dom: DomId, kib: u64) -> HostResult<()> {
        let p = domctl::MaxMem { max_memkb: kib };
        self.domctl(
            &format!("max_mem dom {dom} {kib} KiB"),
            domctl::cmd::MAX_MEM,
            dom,
            &p,
        )?;
        Ok(())
    }

    fn claim_pages(&self, dom: DomId, nr_pages: u64) -> HostResult<()> {
        let r = MemoryReservation {
            extent_start: 0,
            nr_extents: nr_pages,
            domid: dom.0,
            ..Default::default()
        };
        let op = format!("claim_pages dom {dom} {nr_pages} pages");
        self.simple_op(&op, hc::MEMORY_OP, memory::op::CLAIM_PAGES, &r)?;
        Ok(())
    }

    fn populate_physmap(
        &self,
        dom: DomId,
        order: u32,
        gfns: &[xen_host::Gfn],
    ) -> HostResult<usize> {
        let op = format!("populate_physmap dom {dom} order {order}");
        let mut done = 0usize;
        for chunk in gfns.chunks(POPULATE_CHUNK) {
            let raw: Vec<u64> = chunk.iter().map(|g| g.0).collect();
            let mut list = self.pc.buffer(raw.len() * 8)?;
            gfn_bytes(&mut list, &raw);
            let r = MemoryReservation {
                extent_start: list.addr(),
                nr_extents: raw.len() as u64,
                extent_order: order,
                mem_flags: 0,
                domid: dom.0,
                pad: [0; 3],
            };
            // SAFETY: extent_start points at `list`, live hypercall memory holding
            // nr_extents u64 gfns (Xen writes back at most as many).
            let rc = unsafe {
                struct_call(
                    &self.pc,
                    hc::MEMORY_OP,
                    Some(u64::from(memory::op::POPULATE_PHYSMAP)),
                    &r,
                )
            };
            match rc {
                Ok((n, _)) => {
                    let n = usize::try_from(n).unwrap_or(0).min(raw.len());
                    done += n;
                    if n < raw.len() {
                        break;
                    }
                }
                // A later chunk failed after earlier ones succeeded: report the short
                // count, on which the caller falls back to a smaller order.
                Err(_) if done > 0 => break,
                Err(e) => return Err(XencallError::os(op, e).into()),
            }
        }
        Ok(done)
    }

    fn set_memory_map(&self, dom: DomId, map: &[E820Entry]) -> HostResult<()> {
        let op = format!("set_memory_map dom {dom} ({} entries)", map.len());
        let entries: Vec<AbiE820> = map
            .iter()
            .map(|e| AbiE820 {
                addr: e.addr,
                size: e.size,
                kind: e.kind,
            })
            .collect();
        let bytes = AbiE820::encode_map(&entries);
        let mut buf = self.pc.buffer(bytes.len())?;
        buf.bytes_mut()
            .get_mut(..bytes.len())
            .unwrap_or(&mut [])
            .copy_from_slice(&bytes);
        let m = memory::ForeignMemoryMap {
            domid: dom.0,
            pad0: [0; 3],
            nr_entries: u32::try_from(entries.len())
                .map_err(|_| XencallError::os(op.clone(), Errno::E2BIG))?,
            pad1: 0,
            buffer: buf.addr(),
        };
        // SAFETY: map.buffer points at `buf`, live and holding nr_entries 20-byte entries.
        unsafe {
            struct_call(
                &self.pc,
                hc::MEMORY_OP,
                Some(u64::from(memory::op::SET_MEMORY_MAP)),
                &m,
            )
        }
        .map_err(|e| XencallError::os(op, e))?;
        Ok(())
    }

    fn set_hvm_param(&self, dom: DomId, index: u32, value: u64) -> HostResult<()> {
        let p = HvmParam {
            domid: dom.0,
            pad: 0,
            index,
            value,
        };
        let op = format!("set_hvm_param dom {dom} param {index} = {value:#x}");
        self.simple_op(&op, hc::HVM_OP, hvm::op::SET_PARAM, &p)?;
        Ok(())
    }

    fn get_hvm_param(&self, dom: DomId, index: u32) -> HostResult<u64> {
        let p = HvmParam {
            domid: dom.0,
            pad: 0,
            index,
            value: 0,
        };
        let op = format!("get_hvm_param dom {dom} param {index}");
        let (_, back) = self.simple_op(&op, hc::HVM_OP, hvm::op::GET_PARAM, &p)?;
        Ok(back.value)
    }

    fn get_hvm_context(&self, dom: DomId) -> HostResult<Vec<u8>> {
        let op = format!("gethvmcontext dom {dom}");
        let query = domctl::HvmContext::default();
        let back = self.domctl(&op, domctl::cmd::GETHVMCONTEXT, dom, &query)?;
        let size = back
            .payload::<domctl::HvmContext>()
            .map_err(abi_err(op.clone()))?
            .size;
        let mut buf = self.pc.buffer(size as usize)?;
        let req = domctl::HvmContext {
            size,
            pad: 0,
            buffer: buf.addr(),
        };
        let back = self.domctl(&op, domctl::cmd::GETHVMCONTEXT, dom, &req)?;
        let filled = back
            .payload::<domctl::HvmContext>()
            .map_err(abi_err(op.clone()))?
            .size;
        let out = buf
            .bytes_mut()
            .get(..filled as usize)
            .ok_or_else(|| XencallError::Other {
                op: op.clone(),
                message: format!("Xen claims {filled} bytes in a {size}-byte buffer"),
            })?;
        Ok(out.to_vec())
    }

    fn set_hvm_context(&self, dom: DomId, ctx: &[u8]) -> HostResult<()> {
        let op = format!("sethvmcontext dom {dom} ({} bytes)", ctx.len());
        let size =
            u32::try_from(ctx.len()).map_err(|_| XencallError::os(op.clone(), Errno::E2BIG))?;
        let mut buf = self.pc.buffer(ctx.len())?;
        buf.bytes_mut()
            .get_mut(..ctx.len())
            .unwrap_or(&mut [])
            .copy_from_slice(ctx);
        let req = domctl::HvmContext {
            size,
            pad: 0,
            buffer: buf.addr(),
        };
        self.domctl(&op, domctl::cmd::SETHVMCONTEXT, dom, &req)?;
        Ok(())
    }

    fn set_paging_mempool_size(&self, dom: DomId, bytes: u64) -> HostResult<()> {
        let p = domctl::PagingMempool { size: bytes };
        let op = format!("set_paging_mempool_size dom {dom} {bytes} bytes");
        self.domctl(&op, domctl::cmd::SET_PAGING_MEMPOOL_SIZE, dom, &p)?;
        Ok(())
    }

    fn set_tsc_info(&self, dom: DomId, tsc_mode: u32) -> HostResult<()> {
        let p = domctl::TscInfo {
            tsc_mode,
            ..Default::default()
        };
        let op = format!("settscinfo dom {dom} mode {tsc_mode}");
        self.domctl(&op, domctl::cmd::SETTSCINFO, dom, &p)?;
        Ok(())
    }

    fn alloc_unbound(&self, dom: DomId, remote: DomId) -> HostResult<u32> {
        let a = misc::EvtchnAllocUnbound {
            dom: dom.0,
            remote_dom: remote.0,
            port: 0,
        };
        let op = format!("evtchn_alloc_unbound dom {dom} remote {remote}");
        let (_, back) =
            self.simple_op(&op, hc::EVENT_CHANNEL_OP, misc::EVTCHNOP_ALLOC_UNBOUND, &a)?;
        Ok(back.port)
    }

    fn write_guest(&self, dom: DomId, gpa: u64, data: &[u8]) -> HostResult<()> {
        Ok(batch::write(&self.pc, dom.0, gpa, data, BATCH_PAGES)?)
    }

    fn zero_guest(&self, dom: DomId, gpa: u64, len: u64) -> HostResult<()> {
        Ok(batch::zero(&self.pc, dom.0, gpa, len, BATCH_PAGES)?)
    }

    fn read_guest(&self, dom: DomId, gpa: u64, len: usize) -> HostResult<Vec<u8>> {
        Ok(batch::read(&self.pc, dom.0, gpa, len, BATCH_PAGES)?)
    }

    fn write_grant_entries(
        &self,
        dom: DomId,
        first_ref: u32,
        entries: &[GrantEntryV1],
    ) -> HostResult<()> {
        let res = for_each_frame(first_ref, entries, |frame, offset, chunk| {
            let idx =
                u32::try_from(frame).map_err(|_| XencallError::os("grant frame", Errno::E2BIG))?;
            let mut map = self.pc.map_resource(
                dom.0,
                memory::resource::GRANT_TABLE,
                memory::resource::GRANT_TABLE_ID_SHARED,
                idx,
                1,
            )?;
            write_entries(&mut map, offset, chunk);
            Ok(())
        });
        match res {
            Err(e) if matches!(e.errno(), Some(x) if x == Errno::ENOTTY || x == Errno::EOPNOTSUPP || x == Errno::ENOSYS) =>
            {
                // Kernel or Xen without resource mapping: the add_to_physmap route.
                Ok(self.grant_fallback(dom, first_ref, entries)?)
            }
            other => Ok(other?),
        }
    }

    fn domain_info(&self, dom: DomId) -> HostResult<Option<DomainInfo>> {
        match getdomaininfo_raw(&self.pc, self.abi.domctl, dom.0) {
            Ok(i) if i.domain == dom.0 => Ok(Some(domain_info_of(&i))),
            // Xen 4.17 answers with the next domain up when `dom` does not exist.
            Ok(_) => Ok(None),
            Err(e) if e == Errno::ESRCH => Ok(None),
            Err(e) => Err(XencallError::os(format!("getdomaininfo dom {dom}"), e).into()),
        }
    }

    fn list_domains(&self) -> HostResult<Vec<DomainInfo>> {
        let rec = GetDomainInfo::SIZE;
        let mut buf = self.pc.buffer(LIST_BATCH as usize * rec)?;
        let mut out = Vec::new();
        let mut first: u16 = 0;
        loop {
            let op = format!("getdomaininfolist from dom {first}");
            let req = sysctl::GetDomainInfoList {
                first_domain: first,
                max_domains: LIST_BATCH,
                buffer: buf.addr(),
                ..Default::default()
            };
            let back = self.sysctl(&op, sysctl::cmd::GETDOMAININFOLIST, &req)?;
            let got = back
                .payload::<sysctl::GetDomainInfoList>()
                .map_err(abi_err(op.clone()))?;
            let n = got.num_domains.min(LIST_BATCH) as usize;
            let mut last = None;
            for r in buf.bytes_mut().chunks_exact(rec).take(n) {
                let i = GetDomainInfo::decode(r).map_err(abi_err(op.clone()))?;
                last = Some(i.domain);
                out.push(domain_info_of(&i));
            }
            match last {
                Some(l)
                    if n == LIST_BATCH as usize && l.saturating_add(1) < DomId::FIRST_RESERVED =>
                {
                    first = l + 1;
                }
                _ => break,
            }
        }
        out.sort_by_key(|d| d.domid);
        out.dedup_by_key(|d| d.domid);
        Ok(out)
    }

    fn pause(&self, dom: DomId) -> HostResult<()> {
        Ok(self.bare_domctl(
            &format!("pausedomain dom {dom}"),
            domctl::cmd::PAUSEDOMAIN,
            dom,
        )?)
    }

    fn unpause(&self, dom: DomId) -> HostResult<()> {
        Ok(self.bare_domctl(
            &format!("unpausedomain dom {dom}"),
            domctl::cmd::UNPAUSEDOMAIN,
            dom,
        )?)
    }

    fn destroy(&self, dom: DomId) -> HostResult<()> {
        let op = format!("destroydomain dom {dom}");
        let start = Instant::now();
        let mut tries = 0u32;
        loop {
            match self.bare_domctl(&op, domctl::cmd::DESTROYDOMAIN, dom) {
                Err(e) if e.errno() == Some(Errno::EAGAIN) => {
                    if start.elapsed() > DESTROY_PATIENCE {
                        return Err(xen_host::Error::os_detail(
                            op,
                            Errno::EAGAIN,
                            format!(
                                "Xen still relinquishing memory after {} s",
                                DESTROY_PATIENCE.as_secs()
                            ),
                        ));
                    }
                    tries += 1;
                    if tries > 100 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                other => return Ok(other?),
            }
        }
    }

    fn shutdown(&self, dom: DomId, reason: ShutdownReason) -> HostResult<()> {
        let s = misc::SchedRemoteShutdown {
            domain_id: dom.0,
            pad: 0,
            reason: reason.code(),
        };
        let op = format!("remote_shutdown dom {dom} {reason:?}");
        self.simple_op(&op, hc::SCHED_OP, misc::SCHEDOP_REMOTE_SHUTDOWN, &s)?;
        Ok(())
    }

    fn hypercall_count(&self) -> u64 {
        self.pc.hypercall_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen_host::{cdf, emu};

    fn cfg() -> CreateDomain {
        CreateDomain {
            ssidref: 0,
            handle: [0xab; 16],
            flags: cdf::HVM | cdf::HAP,
            max_vcpus: 2,
            max_evtchn_port: 1023,
            max_grant_frames: -1,
            max_maptrack_frames: -1,
            grant_opts: 1,
            emulation_flags: emu::LAPIC,
            misc_flags: 0,
        }
    }

    #[test]
    fn createdomain_417_bytes() {
        let abi = XenAbi::for_release(4, 17).unwrap();
        let b = createdomain_domctl(abi, &cfg()).to_bytes();
        assert_eq!(&b[0..4], &1u32.to_le_bytes());
        assert_eq!(&b[4..8], &0x15u32.to_le_bytes());
        assert_eq!(&b[8..10], &0x7ff4u16.to_le_bytes());
        let u = &b[16..];
        assert_eq!(&u[4..20], &[0xab; 16]);
        assert_eq!(&u[20..24], &3u32.to_le_bytes());
        assert_eq!(&u[28..32], &2u32.to_le_bytes());
        assert_eq!(&u[32..36], &1023u32.to_le_bytes());
        assert_eq!(&u[36..40], &(-1i32).to_le_bytes());
        assert_eq!(&u[44..48], &1u32.to_le_bytes());
        assert_eq!(&u[56..60], &1u32.to_le_bytes());
        assert!(u[64..].iter().all(|&x| x == 0));
    }

    #[test]
    fn createdomain_419_bytes() {
        let abi = XenAbi::for_release(4, 19).unwrap();
        let b = createdomain_domctl(abi, &cfg()).to_bytes();
        assert_eq!(&b[4..8], &0x17u32.to_le_bytes());
        let u = &b[16..];
        assert_eq!(&u[44..48], &1u32.to_le_bytes());
        assert_eq!(&u[48..52], &0u32.to_le_bytes());
        assert_eq!(&u[56..60], &0u32.to_le_bytes());
        assert_eq!(&u[60..64], &1u32.to_le_bytes());
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
    fn record_conversions() {
        let i = GetDomainInfo {
            domain: 4,
            flags: domctl::dominf::SHUTDOWN
                | domctl::dominf::HVM_GUEST
                | domctl::dominf::HAP
                | (1 << 16),
            tot_pages: 100,
            nr_online_vcpus: 2,
            ..Default::default()
        };
        let d = domain_info_of(&i);
        assert_eq!(d.domid, DomId(4));
        assert!(d.shutdown && d.hvm && d.hap && !d.dying && !d.running);
        assert_eq!(d.shutdown_reason(), Some(ShutdownReason::Reboot));
        assert_eq!(d.tot_pages, 100);
        let p = sysctl::PhysInfo {
            capabilities: sysctl::physcap::HVM | sysctl::physcap::HAP | sysctl::physcap::GNTTAB_V1,
            nr_cpus: 2,
            total_pages: 1 << 20,
            ..Default::default()
        };
        let h = physinfo_of(&p);
        assert!(h.caps.hvm && h.caps.hap && h.caps.gnttab_v1 && !h.caps.pv && !h.caps.gnttab_v2);
        assert_eq!((h.nr_cpus, h.total_pages, h.hw_cap.len()), (2, 1 << 20, 8));
    }

    #[test]
    fn probe_answers() {
        assert_eq!(answer(Ok(())), ProbeAnswer::Accepted);
        assert_eq!(answer(Err(Errno::EACCES)), ProbeAnswer::WrongVersion);
        assert_eq!(answer(Err(Errno::EPERM)), ProbeAnswer::Failed(1));
        let e = run_probe(&[0x15, 0x18], "domctl", 4, 30, |_| {
            ProbeAnswer::WrongVersion
        })
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("Xen 4.30 refused"), "{e}");
        assert!(
            e.contains("rxl knows 4.17 (domctl 0x15, sysctl 0x15)"),
            "{e}"
        );
        let e = run_probe(&[0x15], "sysctl", 4, 17, |_| ProbeAnswer::Failed(1)).err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("probe sysctl interface 0x15: EPERM (operation not permitted)")
        );
    }
}
