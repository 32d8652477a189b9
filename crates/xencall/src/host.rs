//! [`XenHost`]: the real hypervisor behind `xen_host::Hypervisor`.
//!
//! The operations are written once, in [`Host`], over a [`Backend`]: privcmd on a real
//! host, a scripted fake Xen in the tests.

use std::mem::offset_of;
use std::time::{Duration, Instant};

use xen_abi::domctl::{self, Domctl, GetDomainInfo};
use xen_abi::hvm::{self, HvmParam};
use xen_abi::memory::{self, E820Entry as AbiE820, MemoryReservation};
use xen_abi::misc::{self, hypercall as hc};
use xen_abi::pv;
use xen_abi::sysctl::{self, Sysctl};
use xen_abi::version::{self, ProbeAnswer};
use xen_abi::{AbiError, CreateDomainLayout, Wire, XenAbi};
use xen_host::{
    CreateDomain, DomId, DomainInfo, E820Entry, Errno, Gfn, GrantEntryV1, HostCaps, Hypervisor,
    PhysInfo, PvVcpuContext, Result as HostResult, ShutdownReason, Trigger, VersionInfo,
};

use crate::batch::{self, Backend, Region, Window, BATCH_PAGES};
use crate::error::XencallError;
use crate::privcmd::Privcmd;
use crate::sys::PAGE;

type Result<T> = std::result::Result<T, XencallError>;

/// Extents per populate_physmap hypercall (256 KiB of gfns).
pub(crate) const POPULATE_CHUNK: usize = 1 << 15;
/// Records per getdomaininfolist sysctl.
pub(crate) const LIST_BATCH: u32 = 256;
/// How long destroy keeps retrying while Xen says EAGAIN.
const DESTROY_PATIENCE: Duration = Duration::from_secs(120);
/// v1 grant entries per grant table frame.
const GRANTS_PER_FRAME: usize = PAGE / 8;
/// `XENMEM_maximum_gpfn` (argument: a `domid_t`).
const XENMEM_MAXIMUM_GPFN: u32 = 14;

/// Offset of the guest handle in `xen_domctl_hvmcontext` within a domctl (24).
const HVMCONTEXT_BUFFER_AT: usize = offset_of!(Domctl, u) + offset_of!(domctl::HvmContext, buffer);
/// Offset of the guest handle in `xen_sysctl_getdomaininfolist` within a sysctl (16).
const DOMINFOLIST_BUFFER_AT: usize =
    offset_of!(Sysctl, u) + offset_of!(sysctl::GetDomainInfoList, buffer);
/// Offset of the guest handle in `xen_domctl_vcpucontext` within a domctl (24).
const VCPUCONTEXT_CTXT_AT: usize = offset_of!(Domctl, u) + offset_of!(domctl::VcpuContext, ctxt);
/// Offset of `extent_start` in `xen_memory_reservation` (0).
const RESERVATION_EXTENTS_AT: usize = offset_of!(MemoryReservation, extent_start);
/// Offset of `map.buffer` in `xen_foreign_memory_map` (16).
const MEMORY_MAP_BUFFER_AT: usize = offset_of!(memory::ForeignMemoryMap, buffer);

fn abi_err(op: impl Into<String>) -> impl FnOnce(AbiError) -> XencallError {
    let op = op.into();
    move |source| XencallError::Abi { op, source }
}

/// The hypervisor operations over a backend, with the probed ABI.
#[derive(Debug)]
pub(crate) struct Host<B> {
    b: B,
    abi: XenAbi,
    info: VersionInfo,
}

/// Issue `op` with a struct argument (no handles unless `regions` lists them) and decode
/// what Xen wrote back.
///
/// # Safety
/// Every guest handle of `arg` is listed in `regions` or is zero.
unsafe fn call_struct<B: Backend, T: Wire>(
    b: &B,
    op: u64,
    cmd: Option<u32>,
    arg: &T,
    regions: &mut [Region<'_>],
) -> std::result::Result<(i64, T), Errno> {
    let mut bytes = arg.to_bytes();
    // SAFETY: forwarded contract.
    let rc = unsafe { b.call(op, cmd.map(u64::from), &mut bytes, regions) }?;
    let back = T::decode(&bytes).map_err(|_| Errno::EIO)?;
    Ok((rc, back))
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
        Err((v, errno)) => {
            let hint = if Errno(errno) == Errno::EPERM {
                "this domain may not issue control hypercalls; run rxl in dom0"
            } else {
                ""
            };
            Err(XencallError::os_hint(
                format!("probe {what} interface {v:#x}"),
                Errno(errno),
                hint,
            ))
        }
    }
}

fn getdomaininfo_raw<B: Backend>(
    b: &B,
    iv: u32,
    dom: u16,
) -> std::result::Result<GetDomainInfo, Errno> {
    let d = Domctl::bare(domctl::cmd::GETDOMAININFO, iv, dom);
    // SAFETY: getdomaininfo has no guest handles.
    let (_, back) = unsafe { call_struct(b, hc::DOMCTL, None, &d, &mut []) }?;
    back.payload::<GetDomainInfo>().map_err(|_| Errno::EIO)
}

fn physinfo_raw<B: Backend>(b: &B, iv: u32) -> std::result::Result<sysctl::PhysInfo, Errno> {
    let s = Sysctl::new(sysctl::cmd::PHYSINFO, iv, &sysctl::PhysInfo::default());
    // SAFETY: physinfo has no guest handles.
    let (_, back) = unsafe { call_struct(b, hc::SYSCTL, None, &s, &mut []) }?;
    back.payload::<sysctl::PhysInfo>().map_err(|_| Errno::EIO)
}

fn xen_version_text<B: Backend>(b: &B, cmd: u32, len: usize, what: &str) -> Result<String> {
    let mut buf = vec![0u8; len];
    // SAFETY: the argument is the character buffer itself; it holds no pointers.
    unsafe { b.call(hc::XEN_VERSION, Some(u64::from(cmd)), &mut buf, &mut []) }
        .map_err(|e| XencallError::os(format!("xen_version {what}"), e))?;
    Ok(misc::c_string(&buf))
}

impl<B: Backend> Host<B> {
    /// Probe the Xen version and the interface versions.
    pub(crate) fn probe(b: B) -> Result<Host<B>> {
        // SAFETY: XENVER_version takes a null argument.
        let raw = unsafe {
            b.call(
                hc::XEN_VERSION,
                Some(u64::from(misc::xenver::VERSION)),
                &mut [],
                &mut [],
            )
        }
        .map_err(|e| XencallError::os("xen_version", e))?;
        let (major, minor) = misc::split_version(u32::try_from(raw).unwrap_or(0));
        let extra = xen_version_text(
            &b,
            misc::xenver::EXTRAVERSION,
            misc::EXTRAVERSION_LEN,
            "extraversion",
        )?;
        // Xen ends the capability list with a space; the list is what matters.
        let capabilities = xen_version_text(
            &b,
            misc::xenver::CAPABILITIES,
            misc::CAPABILITIES_LEN,
            "capabilities",
        )?
        .trim_end()
        .to_string();
        let dom_cands = XenAbi::domctl_candidates(major, minor);
        let domctl = run_probe(&dom_cands, "domctl", major, minor, |v| {
            answer(getdomaininfo_raw(&b, v, 0).map(|_| ()))
        })?;
        let sys_cands = XenAbi::sysctl_candidates(major, minor);
        let sysctl = run_probe(&sys_cands, "sysctl", major, minor, |v| {
            answer(physinfo_raw(&b, v).map(|_| ()))
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
        Ok(Host { b, abi, info })
    }

    /// A domctl; `regions` lists the payload's guest handles (offsets within the domctl).
    fn domctl_with<P: Wire>(
        &self,
        op: &str,
        cmd: u32,
        dom: DomId,
        payload: &P,
        regions: &mut [Region<'_>],
    ) -> Result<Domctl> {
        let d = Domctl::new(cmd, self.abi.domctl, dom.0, payload);
        // SAFETY: each caller lists the one handle its payload has, or passes a
        // handle-free payload with no regions.
        unsafe { call_struct(&self.b, hc::DOMCTL, None, &d, regions) }
            .map(|(_, d)| d)
            .map_err(|e| XencallError::os(op, e))
    }

    fn domctl<P: Wire>(&self, op: &str, cmd: u32, dom: DomId, payload: &P) -> Result<Domctl> {
        self.domctl_with(op, cmd, dom, payload, &mut [])
    }

    fn bare_domctl(&self, op: &str, cmd: u32, dom: DomId) -> Result<()> {
        let d = Domctl::bare(cmd, self.abi.domctl, dom.0);
        // SAFETY: a payload-less domctl has no guest handles.
        unsafe { call_struct(&self.b, hc::DOMCTL, None, &d, &mut []) }
            .map(|_| ())
            .map_err(|e| XencallError::os(op, e))
    }

    /// A hypercall `op(cmd, &arg)` whose argument has no guest handles.
    fn simple<T: Wire>(&self, what: &str, op: u64, cmd: u32, arg: &T) -> Result<(i64, T)> {
        // SAFETY: callers only pass handle-free structs (hvm_param, evtchn_alloc_unbound,
        // sched_remote_shutdown, add/remove_from_physmap, a claim with a null extent list).
        unsafe { call_struct(&self.b, op, Some(cmd), arg, &mut []) }
            .map_err(|e| XencallError::os(what, e))
    }

    /// `XENMEM_populate_physmap`: an extent of `2^order` frames at each gfn, in chunks.
    /// Returns the extent list as Xen left it, cut to the extents it populated: for a PV
    /// (non-translated) domain Xen writes each extent's first mfn over its gpfn.
    fn populate(&self, dom: DomId, order: u32, gfns: &[u64]) -> Result<Vec<u64>> {
        let op = format!("populate_physmap dom {dom} order {order}");
        let mut out = Vec::with_capacity(gfns.len());
        for chunk in gfns.chunks(POPULATE_CHUNK) {
            let mut list: Vec<u8> = chunk.iter().flat_map(|g| g.to_le_bytes()).collect();
            let r = MemoryReservation {
                extent_start: 0,
                nr_extents: chunk.len() as u64,
                extent_order: order,
                mem_flags: 0,
                domid: dom.0,
                pad: [0; 3],
            };
            let mut regions = [Region {
                handle_at: RESERVATION_EXTENTS_AT,
                data: &mut list,
            }];
            let cmd = Some(memory::op::POPULATE_PHYSMAP);
            // SAFETY: extent_start, the reservation's only handle, is listed.
            let rc = unsafe { call_struct(&self.b, hc::MEMORY_OP, cmd, &r, &mut regions) };
            match rc {
                Ok((n, _)) => {
                    let n = usize::try_from(n).unwrap_or(0).min(chunk.len());
                    out.extend(
                        list.chunks_exact(8)
                            .take(n)
                            .filter_map(|b| b.try_into().ok())
                            .map(u64::from_le_bytes),
                    );
                    if n < chunk.len() {
                        break;
                    }
                }
                // A later chunk failed after earlier ones succeeded: report the short
                // count, on which the caller falls back to a smaller order.
                Err(_) if !out.is_empty() => break,
                Err(e) => return Err(XencallError::os(op, e)),
            }
        }
        Ok(out)
    }

    fn grant_fallback(&self, dom: DomId, first_ref: u32, entries: &[GrantEntryV1]) -> Result<()> {
        // Put each grant frame into the guest at a scratch gfn above its highest one,
        // map that gfn, write, and take the frame out again.
        let domid = dom.0;
        let op = format!("grant table fallback dom {dom}");
        let mut arg = domid.to_le_bytes();
        // SAFETY: XENMEM_maximum_gpfn reads a domid_t; no pointers.
        let max = unsafe {
            self.b.call(
                hc::MEMORY_OP,
                Some(u64::from(XENMEM_MAXIMUM_GPFN)),
                &mut arg,
                &mut [],
            )
        }
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
            self.simple(
                &format!("{op}: add_to_physmap frame {frame}"),
                hc::MEMORY_OP,
                memory::op::ADD_TO_PHYSMAP,
                &add,
            )?;
            let res = self
                .b
                .map(domid, &[scratch])
                .map(|mut map| write_entries(map.window(), offset, chunk));
            let rm = memory::RemoveFromPhysmap {
                domid,
                pad: [0; 3],
                gpfn: scratch,
            };
            let removed = self.simple(
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

/// Write grant entries at entry `offset` of a mapped frame. Domain and frame go first
/// and the flags last, as a guest does it, so an entry never looks valid half-written.
fn write_entries(bytes: &mut [u8], offset: usize, entries: &[GrantEntryV1]) {
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

/// The x86-64 `vcpu_guest_context` for a PV vCPU's initial state, as libxenguest's
/// `vcpu_x86_64` fills it.
pub(crate) fn pv_context(ctx: &PvVcpuContext) -> pv::VcpuGuestContextX86_64 {
    pv::initial_context(
        ctx.rip,
        ctx.rsp,
        ctx.rsi,
        ctx.rflags,
        ctx.cr3_mfn,
        ctx.kernel_sp,
    )
}

/// Prepare a mapped shared_info frame as libxenguest's `shared_info_x86_64` does:
/// cleared, with every legacy `vcpu_info`'s event upcall masked.
pub(crate) fn init_shared_info(page: &mut [u8]) {
    page.fill(0);
    for i in 0..pv::LEGACY_MAX_VCPUS {
        if let Some(mask) = page.get_mut(i * pv::VCPU_INFO_SIZE + pv::VCPU_INFO_UPCALL_MASK_AT) {
            *mask = 1;
        }
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

/// The createdomain domctl in the layout of `abi`.
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

impl<B: Backend> Hypervisor for Host<B> {
    fn version(&self) -> HostResult<VersionInfo> {
        Ok(self.info.clone())
    }

    fn physinfo(&self) -> HostResult<PhysInfo> {
        let p =
            physinfo_raw(&self.b, self.abi.sysctl).map_err(|e| XencallError::os("physinfo", e))?;
        Ok(physinfo_of(&p))
    }

    fn create_domain(&self, cfg: &CreateDomain) -> HostResult<DomId> {
        let d = createdomain_domctl(self.abi, cfg);
        // SAFETY: createdomain has no guest handles.
        let (_, back) = unsafe { call_struct(&self.b, hc::DOMCTL, None, &d, &mut []) }
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
        let op = format!("max_vcpus dom {dom} {max}");
        self.domctl(&op, domctl::cmd::MAX_VCPUS, dom, &p)?;
        Ok(())
    }

    fn max_mem(&self, dom: DomId, kib: u64) -> HostResult<()> {
        let p = domctl::MaxMem { max_memkb: kib };
        let op = format!("max_mem dom {dom} {kib} KiB");
        self.domctl(&op, domctl::cmd::MAX_MEM, dom, &p)?;
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
        self.simple(&op, hc::MEMORY_OP, memory::op::CLAIM_PAGES, &r)?;
        Ok(())
    }

    fn populate_physmap(&self, dom: DomId, order: u32, gfns: &[Gfn]) -> HostResult<usize> {
        let gfns: Vec<u64> = gfns.iter().map(|g| g.0).collect();
        Ok(self.populate(dom, order, &gfns)?.len())
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
        let mut bytes = AbiE820::encode_map(&entries);
        let nr_entries =
            u32::try_from(entries.len()).map_err(|_| XencallError::os(op.clone(), Errno::E2BIG))?;
        let m = memory::ForeignMemoryMap {
            domid: dom.0,
            nr_entries,
            ..Default::default()
        };
        let mut regions = [Region {
            handle_at: MEMORY_MAP_BUFFER_AT,
            data: &mut bytes,
        }];
        let cmd = Some(memory::op::SET_MEMORY_MAP);
        // SAFETY: map.buffer, the only handle, is listed.
        unsafe { call_struct(&self.b, hc::MEMORY_OP, cmd, &m, &mut regions) }
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
        self.simple(&op, hc::HVM_OP, hvm::op::SET_PARAM, &p)?;
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
        let (_, back) = self.simple(&op, hc::HVM_OP, hvm::op::GET_PARAM, &p)?;
        Ok(back.value)
    }

    fn get_hvm_context(&self, dom: DomId) -> HostResult<Vec<u8>> {
        let op = format!("gethvmcontext dom {dom}");
        // A null buffer asks for the size.
        let query = domctl::HvmContext::default();
        let back = self.domctl(&op, domctl::cmd::GETHVMCONTEXT, dom, &query)?;
        let size = back
            .payload::<domctl::HvmContext>()
            .map_err(abi_err(op.clone()))?
            .size;
        let mut data = vec![0u8; size as usize];
        let req = domctl::HvmContext {
            size,
            ..Default::default()
        };
        let mut regions = [Region {
            handle_at: HVMCONTEXT_BUFFER_AT,
            data: &mut data,
        }];
        let back = self.domctl_with(&op, domctl::cmd::GETHVMCONTEXT, dom, &req, &mut regions)?;
        let filled = back
            .payload::<domctl::HvmContext>()
            .map_err(abi_err(op.clone()))?
            .size;
        if filled > size {
            return Err(XencallError::Other {
                op,
                message: format!("Xen claims {filled} bytes in a {size}-byte buffer"),
            }
            .into());
        }
        data.truncate(filled as usize);
        Ok(data)
    }

    fn set_hvm_context(&self, dom: DomId, ctx: &[u8]) -> HostResult<()> {
        let op = format!("sethvmcontext dom {dom} ({} bytes)", ctx.len());
        let size =
            u32::try_from(ctx.len()).map_err(|_| XencallError::os(op.clone(), Errno::E2BIG))?;
        let mut data = ctx.to_vec();
        let req = domctl::HvmContext {
            size,
            ..Default::default()
        };
        let mut regions = [Region {
            handle_at: HVMCONTEXT_BUFFER_AT,
            data: &mut data,
        }];
        self.domctl_with(&op, domctl::cmd::SETHVMCONTEXT, dom, &req, &mut regions)?;
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
        let cmd = misc::EVTCHNOP_ALLOC_UNBOUND;
        let (_, back) = self.simple(&op, hc::EVENT_CHANNEL_OP, cmd, &a)?;
        Ok(back.port)
    }

    fn write_guest(&self, dom: DomId, gpa: u64, data: &[u8]) -> HostResult<()> {
        Ok(batch::write(&self.b, dom.0, gpa, data, BATCH_PAGES)?)
    }

    fn zero_guest(&self, dom: DomId, gpa: u64, len: u64) -> HostResult<()> {
        Ok(batch::zero(&self.b, dom.0, gpa, len, BATCH_PAGES)?)
    }

    fn read_guest(&self, dom: DomId, gpa: u64, len: usize) -> HostResult<Vec<u8>> {
        Ok(batch::read(&self.b, dom.0, gpa, len, BATCH_PAGES)?)
    }

    fn write_grant_entries(
        &self,
        dom: DomId,
        first_ref: u32,
        entries: &[GrantEntryV1],
    ) -> HostResult<()> {
        let res = for_each_frame(first_ref, entries, |frame, offset, chunk| {
            let idx = u32::try_from(frame)
                .map_err(|_| XencallError::os(format!("grant frame {frame}"), Errno::E2BIG))?;
            let mut map = self.b.map_resource(
                dom.0,
                memory::resource::GRANT_TABLE,
                memory::resource::GRANT_TABLE_ID_SHARED,
                idx,
                1,
            )?;
            write_entries(map.window(), offset, chunk);
            Ok(())
        });
        let unsupported = |e: &XencallError| matches!(e.errno(), Some(x) if x == Errno::ENOTTY || x == Errno::EOPNOTSUPP || x == Errno::ENOSYS);
        match res {
            // A kernel or Xen without resource mapping: the add_to_physmap route.
            Err(e) if unsupported(&e) => Ok(self.grant_fallback(dom, first_ref, entries)?),
            other => Ok(other?),
        }
    }

    fn set_address_size(&self, dom: DomId, bits: u32) -> HostResult<()> {
        let p = domctl::AddressSize { size: bits };
        let op = format!("set_address_size dom {dom} {bits} bits");
        self.domctl(&op, domctl::cmd::SET_ADDRESS_SIZE, dom, &p)?;
        Ok(())
    }

    fn populate_physmap_pv(&self, dom: DomId, order: u32, gpfns: &[u64]) -> HostResult<Vec<u64>> {
        Ok(self.populate(dom, order, gpfns)?)
    }

    fn write_frames(&self, dom: DomId, mfns: &[u64], data: &[u8]) -> HostResult<()> {
        Ok(batch::write_frames(
            &self.b,
            dom.0,
            mfns,
            data,
            BATCH_PAGES,
        )?)
    }

    fn zero_frames(&self, dom: DomId, mfns: &[u64]) -> HostResult<()> {
        Ok(batch::zero_frames(&self.b, dom.0, mfns, BATCH_PAGES)?)
    }

    fn read_frames(&self, dom: DomId, mfns: &[u64]) -> HostResult<Vec<u8>> {
        Ok(batch::read_frames(&self.b, dom.0, mfns, BATCH_PAGES)?)
    }

    fn pin_l4_table(&self, dom: DomId, mfn: u64) -> HostResult<()> {
        let op = format!("mmuext_op pin L4 table mfn {mfn:#x} of dom {dom}");
        let mut arg = pv::MmuextOp {
            cmd: pv::mmuext::PIN_L4_TABLE,
            arg1: mfn,
            ..Default::default()
        }
        .to_bytes();
        // One op, no `done` count (a null pointer), on behalf of `dom`.
        let tail = [1, 0, u64::from(dom.0)];
        // SAFETY: mmuext_op's pin command has no guest handles inside the op, and the
        // only pointer in the tail (`pdone`) is null.
        unsafe {
            self.b
                .call_tail(pv::HYPERCALL_MMUEXT_OP, &mut arg, &mut [], tail)
        }
        .map_err(|e| XencallError::os(op, e))?;
        Ok(())
    }

    fn hypercall_init(&self, dom: DomId, mfn: u64) -> HostResult<()> {
        let p = domctl::HypercallInit { gmfn: mfn };
        let op = format!("hypercall_init dom {dom} mfn {mfn:#x}");
        self.domctl(&op, domctl::cmd::HYPERCALL_INIT, dom, &p)?;
        Ok(())
    }

    fn set_pv_vcpu_context(&self, dom: DomId, vcpu: u32, ctx: &PvVcpuContext) -> HostResult<()> {
        let op = format!("setvcpucontext dom {dom} vcpu {vcpu}");
        let mut data = pv_context(ctx).to_bytes();
        let p = domctl::VcpuContext {
            vcpu,
            ..Default::default()
        };
        let mut regions = [Region {
            handle_at: VCPUCONTEXT_CTXT_AT,
            data: &mut data,
        }];
        self.domctl_with(&op, domctl::cmd::SETVCPUCONTEXT, dom, &p, &mut regions)?;
        Ok(())
    }

    fn init_pv_shared_info(&self, dom: DomId) -> HostResult<u64> {
        let op = format!("shared_info of dom {dom}");
        let info = getdomaininfo_raw(&self.b, self.abi.domctl, dom.0)
            .map_err(|e| XencallError::os(format!("{op}: getdomaininfo"), e))?;
        if info.domain != dom.0 {
            return Err(XencallError::os(op, Errno::ESRCH).into());
        }
        let mfn = info.shared_info_frame;
        let mut map = self.b.map(dom.0, &[mfn])?;
        init_shared_info(map.window());
        Ok(mfn)
    }

    fn domain_info(&self, dom: DomId) -> HostResult<Option<DomainInfo>> {
        match getdomaininfo_raw(&self.b, self.abi.domctl, dom.0) {
            Ok(i) if i.domain == dom.0 => Ok(Some(domain_info_of(&i))),
            // Xen 4.17 answers with the next domain up when `dom` does not exist.
            Ok(_) => Ok(None),
            Err(e) if e == Errno::ESRCH => Ok(None),
            Err(e) => Err(XencallError::os(format!("getdomaininfo dom {dom}"), e).into()),
        }
    }

    fn list_domains(&self) -> HostResult<Vec<DomainInfo>> {
        let rec = GetDomainInfo::SIZE;
        let mut data = vec![0u8; LIST_BATCH as usize * rec];
        let mut out: Vec<DomainInfo> = Vec::new();
        let mut first: u16 = 0;
        loop {
            let op = format!("getdomaininfolist from dom {first}");
            let req = sysctl::GetDomainInfoList {
                first_domain: first,
                max_domains: LIST_BATCH,
                ..Default::default()
            };
            let s = Sysctl::new(sysctl::cmd::GETDOMAININFOLIST, self.abi.sysctl, &req);
            let mut regions = [Region {
                handle_at: DOMINFOLIST_BUFFER_AT,
                data: &mut data,
            }];
            // SAFETY: the list's buffer, its only handle, is listed.
            let (_, back) = unsafe { call_struct(&self.b, hc::SYSCTL, None, &s, &mut regions) }
                .map_err(|e| XencallError::os(op.clone(), e))?;
            let got = back
                .payload::<sysctl::GetDomainInfoList>()
                .map_err(abi_err(op.clone()))?;
            let n = got.num_domains.min(LIST_BATCH) as usize;
            let mut last = None;
            for r in data.chunks_exact(rec).take(n) {
                let i = GetDomainInfo::decode(r).map_err(abi_err(op.clone()))?;
                // Ids must increase; anything else would loop forever.
                if out.last().is_some_and(|p| p.domid.0 >= i.domain) {
                    return Err(XencallError::Other {
                        op,
                        message: format!("domain {} listed out of order", i.domain),
                    }
                    .into());
                }
                last = Some(i.domain);
                out.push(domain_info_of(&i));
            }
            match last {
                Some(l) if n == LIST_BATCH as usize && l + 1 < DomId::FIRST_RESERVED => {
                    first = l + 1;
                }
                _ => break,
            }
        }
        Ok(out)
    }

    fn pause(&self, dom: DomId) -> HostResult<()> {
        let op = format!("pausedomain dom {dom}");
        Ok(self.bare_domctl(&op, domctl::cmd::PAUSEDOMAIN, dom)?)
    }

    fn unpause(&self, dom: DomId) -> HostResult<()> {
        let op = format!("unpausedomain dom {dom}");
        Ok(self.bare_domctl(&op, domctl::cmd::UNPAUSEDOMAIN, dom)?)
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
                                "Xen still relinquishing the domain's memory after {} s",
                                DESTROY_PATIENCE.as_secs()
                            ),
                        ));
                    }
                    tries = tries.saturating_add(1);
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
        self.simple(&op, hc::SCHED_OP, misc::SCHEDOP_REMOTE_SHUTDOWN, &s)?;
        Ok(())
    }

    fn send_trigger(&self, dom: DomId, trigger: Trigger, vcpu: u32) -> HostResult<()> {
        let p = domctl::SendTrigger {
            trigger: trigger.code(),
            vcpu,
        };
        let op = format!("sendtrigger dom {dom} {} vcpu {vcpu}", trigger.name());
        self.domctl(&op, domctl::cmd::SENDTRIGGER, dom, &p)?;
        Ok(())
    }

    fn hypercall_count(&self) -> u64 {
        self.b.hypercall_count()
    }

    fn hypercall_nanos(&self) -> u64 {
        self.b.hypercall_nanos()
    }
}

/// The real Xen host, through /dev/xen/privcmd.
///
/// Opening probes the Xen version and the domctl/sysctl interface versions; every later
/// call uses the layouts of the probed interfaces. Shareable across threads.
#[derive(Debug)]
pub struct XenHost {
    host: Host<Privcmd>,
}

impl XenHost {
    /// Open privcmd and probe the hypervisor. On a machine without Xen the error says
    /// exactly: "no Xen hypervisor here (/dev/xen/privcmd is missing); use --sim DIR for a
    /// simulated host".
    pub fn open() -> Result<XenHost> {
        let pc = Privcmd::open()?;
        Ok(XenHost {
            host: Host::probe(pc)?,
        })
    }

    /// The interface versions in use.
    pub fn abi(&self) -> XenAbi {
        self.host.abi
    }

    /// The privcmd handle.
    pub fn privcmd(&self) -> &Privcmd {
        &self.host.b
    }
}

macro_rules! delegate {
    ($($name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty;)*) => {
        impl Hypervisor for XenHost {
            $(fn $name(&self, $($arg: $ty),*) -> $ret { self.host.$name($($arg),*) })*
            fn hypercall_count(&self) -> u64 {
                self.host.hypercall_count()
            }
            fn hypercall_nanos(&self) -> u64 {
                self.host.hypercall_nanos()
            }
        }
    };
}

delegate! {
    version() -> HostResult<VersionInfo>;
    physinfo() -> HostResult<PhysInfo>;
    create_domain(cfg: &CreateDomain) -> HostResult<DomId>;
    max_vcpus(dom: DomId, max: u32) -> HostResult<()>;
    max_mem(dom: DomId, kib: u64) -> HostResult<()>;
    claim_pages(dom: DomId, nr_pages: u64) -> HostResult<()>;
    populate_physmap(dom: DomId, order: u32, gfns: &[Gfn]) -> HostResult<usize>;
    set_memory_map(dom: DomId, map: &[E820Entry]) -> HostResult<()>;
    set_hvm_param(dom: DomId, index: u32, value: u64) -> HostResult<()>;
    get_hvm_param(dom: DomId, index: u32) -> HostResult<u64>;
    get_hvm_context(dom: DomId) -> HostResult<Vec<u8>>;
    set_hvm_context(dom: DomId, ctx: &[u8]) -> HostResult<()>;
    set_paging_mempool_size(dom: DomId, bytes: u64) -> HostResult<()>;
    set_tsc_info(dom: DomId, tsc_mode: u32) -> HostResult<()>;
    alloc_unbound(dom: DomId, remote: DomId) -> HostResult<u32>;
    write_guest(dom: DomId, gpa: u64, data: &[u8]) -> HostResult<()>;
    zero_guest(dom: DomId, gpa: u64, len: u64) -> HostResult<()>;
    read_guest(dom: DomId, gpa: u64, len: usize) -> HostResult<Vec<u8>>;
    write_grant_entries(dom: DomId, first_ref: u32, entries: &[GrantEntryV1]) -> HostResult<()>;
    domain_info(dom: DomId) -> HostResult<Option<DomainInfo>>;
    list_domains() -> HostResult<Vec<DomainInfo>>;
    pause(dom: DomId) -> HostResult<()>;
    unpause(dom: DomId) -> HostResult<()>;
    destroy(dom: DomId) -> HostResult<()>;
    shutdown(dom: DomId, reason: ShutdownReason) -> HostResult<()>;
    send_trigger(dom: DomId, trigger: Trigger, vcpu: u32) -> HostResult<()>;
    set_address_size(dom: DomId, bits: u32) -> HostResult<()>;
    populate_physmap_pv(dom: DomId, order: u32, gpfns: &[u64]) -> HostResult<Vec<u64>>;
    write_frames(dom: DomId, mfns: &[u64], data: &[u8]) -> HostResult<()>;
    zero_frames(dom: DomId, mfns: &[u64]) -> HostResult<()>;
    read_frames(dom: DomId, mfns: &[u64]) -> HostResult<Vec<u8>>;
    pin_l4_table(dom: DomId, mfn: u64) -> HostResult<()>;
    hypercall_init(dom: DomId, mfn: u64) -> HostResult<()>;
    set_pv_vcpu_context(dom: DomId, vcpu: u32, ctx: &PvVcpuContext) -> HostResult<()>;
    init_pv_shared_info(dom: DomId) -> HostResult<u64>;
}

#[cfg(test)]
mod tests;
