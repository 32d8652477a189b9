//! The simulated hypervisor: `xen_host::Hypervisor` for [`SimHost`].

use xen_host::{
    cdf, emu, CreateDomain, DomId, DomainInfo, E820Entry, Errno, Gfn, GrantEntryV1, HostCaps,
    Hypervisor, PhysInfo, PvVcpuContext, ShutdownReason, Trigger, VersionInfo, PAGE_SHIFT,
    PAGE_SIZE,
};

use crate::disk::{self, ChangeKind, DomRecord, HvmRecord};
use crate::pv;
use crate::{
    do_shutdown, esrch, guest_poll_shutdown, load_live, pending_reason, Inner, SimError, SimHost,
    World,
};

/// Pages one foreign-map batch covers (write_guest / zero_guest / read_guest count one
/// hypercall per batch).
pub const MAP_BATCH_PAGES: u64 = 1024;
/// Domains one getdomaininfolist call returns.
const LIST_BATCH: u64 = 1024;
/// Pages a destroydomain call relinquishes before Xen answers EAGAIN and the caller
/// retries; in between, other processes see the domain dying.
const DESTROY_BATCH_PAGES: u64 = 65536;
/// Largest extent order populate_physmap accepts from the control domain.
const MAX_EXTENT_ORDER: u32 = 18;
/// `HVM_NR_PARAMS` (4.17).
const HVM_NR_PARAMS: u32 = 39;
/// `HVM_MAX_VCPUS`.
const HVM_MAX_VCPUS: u32 = 128;
/// Xen's default grant table size in frames.
const DEFAULT_GRANT_FRAMES: u32 = 64;
/// v1 grant entries per frame.
const GRANTS_PER_FRAME: u32 = (PAGE_SIZE / 8) as u32;
/// `E820MAX` for set_memory_map.
const E820_MAX: usize = 1024;
/// HVM save record typecodes.
const HVM_TYPE_END: u16 = 0;
const HVM_TYPE_HEADER: u16 = 1;
const HVM_TYPE_CPU: u16 = 2;
/// `HVM_FILE_MAGIC` / `HVM_FILE_VERSION`.
const HVM_FILE_MAGIC: u32 = 0x5438_1286;
const HVM_FILE_VERSION: u32 = 1;
/// CPUID leaf 1 eax the header reports.
const HVM_HEADER_CPUID: u32 = 0x0008_06ea;
/// Runnable time a guest spends booting (on one vCPU, flat out) before it idles.
const BOOT_NS: u64 = 2_000_000_000;
/// Idle guests use 1/IDLE_DIVISOR of each online vCPU.
const IDLE_DIVISOR: u64 = 200;

fn einval(detail: impl Into<String>) -> SimError {
    SimError::xen(Errno::EINVAL, detail)
}

fn resolve(dom: DomId) -> DomId {
    if dom == DomId::SELF {
        DomId::DOM0
    } else {
        dom
    }
}

/// A live (not dying) domain other than Domain-0, for operations that refuse Domain-0.
fn load_domu(w: &World<'_>, dom: DomId, what: &str) -> Result<DomRecord, SimError> {
    if dom == DomId::DOM0 {
        return Err(einval(format!("{what} of Domain-0 is not allowed")));
    }
    let d = load_live(w, dom)?;
    if d.dying {
        return Err(esrch(dom));
    }
    Ok(d)
}

fn load_alive(w: &World<'_>, dom: DomId) -> Result<DomRecord, SimError> {
    let d = load_live(w, dom)?;
    if d.dying {
        return Err(einval(format!("domain {dom} is dying")));
    }
    Ok(d)
}

/// A live PV domain, for the operations only PV domains take (`errno` for an HVM one).
fn load_pv(w: &World<'_>, dom: DomId, what: &str, errno: Errno) -> Result<DomRecord, SimError> {
    let d = load_alive(w, dom)?;
    if d.is_hvm() {
        return Err(SimError::xen(
            errno,
            format!("{what}: domain {dom} is HVM; only PV domains take it"),
        ));
    }
    Ok(d)
}

/// A live HVM domain, for the operations that address guest-physical frames (a PV
/// domain's frames are machine frames: `write_frames` and friends).
fn load_translated(w: &World<'_>, dom: DomId, what: &str) -> Result<DomRecord, SimError> {
    let d = load_alive(w, dom)?;
    if !d.is_hvm() {
        return Err(einval(format!(
            "{what}: domain {dom} is PV, its memory is reached by machine frame (write_frames, read_frames, zero_frames)"
        )));
    }
    Ok(d)
}

/// Every frame of `mfns` must belong to PV domain `d`, as a foreign mapping requires.
fn check_owned(d: &DomRecord, mfns: &[u64]) -> Result<(), SimError> {
    match mfns.iter().find(|&&m| !d.pv.owns(m)) {
        Some(m) => Err(SimError::xen(
            Errno::EFAULT,
            format!(
                "mfn {m:#x} is not a frame of domain {} (mapping it failed)",
                d.domid
            ),
        )),
        None => Ok(()),
    }
}

/// Hand out `n` machine frames, aligned to `n` as Xen's buddy allocator does.
fn alloc_mfns(w: &mut World<'_>, n: u64) -> u64 {
    let first = (pv::MFN_BASE + w.state.next_mfn).next_multiple_of(n);
    w.state.next_mfn = first + n - pv::MFN_BASE;
    w.touch();
    first
}

/// Take `n` pages from the host for `d` (its limit, the host's free pages and the
/// claims permitting); false when they are not there.
fn take_pages(w: &mut World<'_>, d: &mut DomRecord, n: u64) -> bool {
    if d.tot_pages.saturating_add(n) > d.max_pages {
        return false;
    }
    let free = w.free_pages();
    let others_ok = w.state.outstanding_pages.saturating_add(n) <= free;
    if n > free || !(others_ok || d.outstanding_pages >= n) {
        return false;
    }
    d.tot_pages += n;
    w.state.used_pages += n;
    let from_claim = d.outstanding_pages.min(n);
    d.outstanding_pages -= from_claim;
    w.state.outstanding_pages = w.state.outstanding_pages.saturating_sub(from_claim);
    w.touch();
    true
}

/// populate_physmap for any domain: an extent of `2^order` frames at each gfn, until
/// one does not fit. A PV domain's extents get machine frames, returned in order.
fn populate(
    w: &mut World<'_>,
    d: &mut DomRecord,
    order: u32,
    gfns: impl Iterator<Item = u64>,
) -> Vec<u64> {
    let mut out = Vec::new();
    if order > MAX_EXTENT_ORDER {
        return out;
    }
    let n = 1u64 << order;
    for start in gfns {
        let Some(end) = start.checked_add(n) else {
            break;
        };
        if start % n != 0 || d.overlaps(start, end) || !take_pages(w, d, n) {
            break;
        }
        d.add_populated(start, end);
        let mfn = if d.is_hvm() {
            start
        } else {
            let mfn = alloc_mfns(w, n);
            d.pv.add_extent(start, mfn, n);
            mfn
        };
        out.push(mfn);
    }
    out
}

/// No frame of `mfns` may be a page table of the pinned tree: Xen refuses writable
/// mappings of page tables.
fn check_not_tables(d: &DomRecord, mfns: &[u64]) -> Result<(), SimError> {
    match mfns
        .iter()
        .find(|m| d.pv.table_frames.binary_search(m).is_ok())
    {
        Some(m) => Err(einval(format!(
            "mfn {m:#x} is a pinned page table of domain {}: Xen refuses to map it writable",
            d.domid
        ))),
        None => Ok(()),
    }
}

/// Why a PV domain's vCPU 0 would fault at its first instruction, if it would: judged on
/// this handle's copy of the frames when it has one, else as recorded when the
/// context was set.
fn pv_boot_fault(d: &DomRecord, inner: &mut Inner) -> Option<String> {
    let Some(ctx) = d.pv.vcpus.get(&0) else {
        return Some("vCPU 0 has no context (setvcpucontext was not called)".into());
    };
    match inner.memory.get(&(d.domid, d.instance)) {
        Some(pages) if !pages.is_empty() => {
            pv::entry_fault(&d.pv, ctx, |m| pages.get(&m).map(|p| &p[..]))
        }
        _ => d.pv.entry_fault.clone(),
    }
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn unhex(s: &str) -> Vec<u8> {
    s.as_bytes()
        .chunks(2)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .filter_map(|c| u8::from_str_radix(c, 16).ok())
        .collect()
}

fn descriptor(out: &mut Vec<u8>, typecode: u16, instance: u16, len: u32) {
    out.extend_from_slice(&typecode.to_le_bytes());
    out.extend_from_slice(&instance.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
}

fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parse an HVM context blob into records (header checked and dropped, END dropped).
fn parse_hvm_context(ctx: &[u8], max_vcpus: u32) -> Result<Vec<(u16, u16, Vec<u8>)>, SimError> {
    let mut records = Vec::new();
    let mut at = 0usize;
    let mut first = true;
    loop {
        let (Some(typecode), Some(instance), Some(len)) =
            (le_u16(ctx, at), le_u16(ctx, at + 2), le_u32(ctx, at + 4))
        else {
            return Err(einval(format!(
                "hvm context: truncated record descriptor at byte {at} (no END record)"
            )));
        };
        let start = at + 8;
        let end = start
            .checked_add(len as usize)
            .filter(|&e| e <= ctx.len())
            .ok_or_else(|| {
                einval(format!(
                    "hvm context: record type {typecode} at byte {at} claims {len} bytes, past the end"
                ))
            })?;
        let body = ctx.get(start..end).unwrap_or_default();
        if first {
            if typecode != HVM_TYPE_HEADER || len < 24 {
                return Err(einval("hvm context: does not start with a HEADER record"));
            }
            let magic = le_u32(body, 0).unwrap_or(0);
            let version = le_u32(body, 4).unwrap_or(0);
            if magic != HVM_FILE_MAGIC || version != HVM_FILE_VERSION {
                return Err(einval(format!(
                    "hvm context: header magic {magic:#x} version {version} (expected {HVM_FILE_MAGIC:#x} version {HVM_FILE_VERSION})"
                )));
            }
            first = false;
        } else if typecode == HVM_TYPE_END {
            return Ok(records);
        } else if typecode == HVM_TYPE_HEADER {
            return Err(einval("hvm context: a second HEADER record"));
        } else {
            if matches!(typecode, HVM_TYPE_CPU | 14) && u32::from(instance) >= max_vcpus {
                return Err(einval(format!(
                    "hvm context: record type {typecode} for vCPU {instance}, the domain has {max_vcpus}"
                )));
            }
            records.push((typecode, instance, body.to_vec()));
        }
        at = end;
    }
}

fn info_of(d: &DomRecord, now: u64) -> DomainInfo {
    let run_total = d.run_total(now);
    let online = u64::from(d.online_vcpus);
    let (running, blocked, cpu_time_ns) = if d.domid == 0 {
        (true, false, run_total / 20)
    } else {
        let boot = run_total.min(BOOT_NS);
        let idle = run_total.saturating_sub(BOOT_NS);
        let cpu = boot.saturating_add(idle.saturating_mul(online) / IDLE_DIVISOR);
        let runnable = d.runnable();
        let booting = runnable && run_total < BOOT_NS;
        (booting, runnable && !booting, cpu)
    };
    DomainInfo {
        domid: DomId(d.domid),
        dying: d.dying,
        hvm: d.is_hvm(),
        shutdown: d.shutdown_code.is_some(),
        paused: d.pause_count > 0,
        blocked,
        running,
        debugged: false,
        xs_domain: d.flags & cdf::XS_DOMAIN != 0,
        hap: d.flags & cdf::HAP != 0,
        shutdown_code: d.shutdown_code.unwrap_or(0),
        tot_pages: d.tot_pages,
        max_pages: d.max_pages,
        outstanding_pages: d.outstanding_pages,
        cpu_time_ns,
        nr_online_vcpus: d.online_vcpus,
        max_vcpu_id: d.max_vcpus.saturating_sub(1),
        ssidref: d.ssidref,
        handle: d.handle,
        cpupool: 0,
    }
}

/// The gfns `[first, end)` an access of `len` bytes at `gpa` touches.
fn gfn_span(gpa: u64, len: u64) -> Result<(u64, u64), SimError> {
    if len == 0 {
        return Ok((gpa >> PAGE_SHIFT, gpa >> PAGE_SHIFT));
    }
    let last = gpa
        .checked_add(len - 1)
        .ok_or_else(|| einval(format!("{len} bytes at {gpa:#x} wrap the address space")))?;
    Ok((gpa >> PAGE_SHIFT, (last >> PAGE_SHIFT) + 1))
}

fn batches(gpa: u64, len: u64) -> u64 {
    match gfn_span(gpa, len) {
        Ok((first, end)) => (end - first).div_ceil(MAP_BATCH_PAGES),
        Err(_) => 1,
    }
}

/// Every gfn of `[first, end)` must be populated, as a foreign map requires.
/// Xen's `arch_domain_create` checks of the emulation flags for a guest domain: only
/// known bits, and for an HVM container either PVH's (the local APIC alone) or HVM's
/// (everything but vPCI); a PV domain emulates nothing (or the PIT).
fn check_emulation_flags(hvm: bool, flags: u32) -> Result<(), SimError> {
    if flags & !emu::ALL != 0 {
        return Err(einval(format!("invalid emulation bitmap {flags:#x}")));
    }
    let ok = if hvm {
        flags == emu::LAPIC || flags == emu::ALL & !emu::VPCI
    } else {
        flags == 0 || flags == emu::PIT
    };
    if !ok {
        return Err(SimError::xen(
            Errno::EOPNOTSUPP,
            format!(
                "Xen does not allow {} domain creation with the emulators {flags:#x}",
                if hvm { "HVM" } else { "PV" }
            ),
        ));
    }
    Ok(())
}

fn check_mapped(d: &DomRecord, first: u64, end: u64) -> Result<(), SimError> {
    let mut gfn = first;
    while gfn < end {
        if !d.is_populated(gfn) {
            return Err(SimError::xen(
                Errno::EFAULT,
                format!(
                    "gfn {gfn:#x} of domain {} is not populated (mapping it failed)",
                    d.domid
                ),
            ));
        }
        let idx = d.populated.partition_point(|&(_, e)| e <= gfn);
        gfn = d.populated.get(idx).map_or(end, |&(_, e)| e);
    }
    Ok(())
}

impl SimHost {
    /// The guest pages of a domain instance in this handle.
    fn pages<'a>(inner: &'a mut Inner, d: &DomRecord) -> &'a mut crate::GuestPages {
        inner.memory.entry((d.domid, d.instance)).or_default()
    }

    /// Visit the page pieces of `[gpa, gpa + len)`: (gfn, offset in page, offset in
    /// the access, length).
    fn pieces(gpa: u64, len: u64) -> impl Iterator<Item = (u64, usize, u64, usize)> {
        let mut done = 0u64;
        std::iter::from_fn(move || {
            if done >= len {
                return None;
            }
            let addr = gpa + done;
            let off = addr % PAGE_SIZE;
            let n = (PAGE_SIZE - off).min(len - done);
            let item = (addr >> PAGE_SHIFT, off as usize, done, n as usize);
            done += n;
            Some(item)
        })
    }
}

impl Hypervisor for SimHost {
    fn version(&self) -> xen_host::Result<VersionInfo> {
        self.call("xen_version", "", 1, |w, _| {
            Ok(w.config.xen_version.clone())
        })
    }

    fn physinfo(&self) -> xen_host::Result<PhysInfo> {
        self.call("physinfo", "", 1, |w, _| {
            let cfg = w.config;
            Ok(PhysInfo {
                threads_per_core: 1,
                cores_per_socket: cfg.nr_cpus,
                nr_cpus: cfg.nr_cpus,
                max_cpu_id: cfg.nr_cpus.saturating_sub(1),
                nr_nodes: 1,
                max_node_id: 0,
                cpu_khz: cfg.cpu_khz,
                caps: HostCaps {
                    hvm: true,
                    pv: true,
                    hap: true,
                    shadow: false,
                    iommu_hap_pt_share: false,
                    gnttab_v1: true,
                    gnttab_v2: true,
                },
                total_pages: cfg.total_pages(),
                free_pages: w.free_pages(),
                scrub_pages: 0,
                outstanding_pages: w.state.outstanding_pages,
                // PV domains' machine frames start at MFN_BASE and are never reused.
                max_mfn: cfg
                    .total_pages()
                    .saturating_sub(1)
                    .max((pv::MFN_BASE + w.state.next_mfn).saturating_sub(1)),
                hw_cap: vec![
                    0x178b_fbff,
                    0xf6d8_3203,
                    0x2e50_0800,
                    0x0000_07f3,
                    0x009c_07a9,
                    0x0000_0000,
                    0x0000_0000,
                    0x0000_0000,
                ],
            })
        })
    }

    fn create_domain(&self, cfg: &CreateDomain) -> xen_host::Result<DomId> {
        self.call("createdomain", "", 1, |w, _| {
            if cfg.flags & !((cdf::VPMU << 1) - 1) != 0 {
                return Err(einval(format!(
                    "unknown createdomain flags {:#x}",
                    cfg.flags
                )));
            }
            let hvm = cfg.flags & cdf::HVM != 0;
            if cfg.flags & cdf::HAP != 0 && !hvm {
                return Err(einval("HAP needs an HVM (or PVH) domain"));
            }
            check_emulation_flags(hvm, cfg.emulation_flags)?;
            if cfg.max_vcpus == 0 || (hvm && cfg.max_vcpus > HVM_MAX_VCPUS) {
                return Err(einval(format!(
                    "max_vcpus {} (allowed: 1 to {HVM_MAX_VCPUS})",
                    cfg.max_vcpus
                )));
            }
            let max_grant_frames = match cfg.max_grant_frames {
                -1 => DEFAULT_GRANT_FRAMES,
                n if n >= 1 => n as u32,
                n => return Err(einval(format!("max_grant_frames {n}"))),
            };
            if cfg.max_maptrack_frames < -1 {
                return Err(einval(format!(
                    "max_maptrack_frames {}",
                    cfg.max_maptrack_frames
                )));
            }
            // Xen's allocator: the next free id after the last one handed out, wrapping
            // below DOMID_FIRST_RESERVED.
            let rover = w.state.rover;
            let mut id = rover;
            let found = loop {
                id = id.wrapping_add(1);
                if id >= DomId::FIRST_RESERVED {
                    id = 1;
                }
                if id == rover {
                    break None;
                }
                if !disk::exists_atomic(&disk::dom_path(w.dir, id)) {
                    break Some(id);
                }
                if rover == 0 && id == DomId::FIRST_RESERVED - 1 {
                    break None;
                }
            };
            let id =
                found.ok_or_else(|| SimError::xen(Errno::ENOMEM, "every domain id is in use"))?;
            w.state.rover = id;
            let instance = w.state.next_instance;
            w.state.next_instance += 1;
            w.touch();
            let d = DomRecord {
                domid: id,
                instance,
                handle: cfg.handle,
                ssidref: cfg.ssidref,
                flags: cfg.flags,
                max_vcpus: cfg.max_vcpus,
                online_vcpus: 0,
                max_evtchn_port: cfg.max_evtchn_port,
                max_grant_frames,
                pause_count: 1,
                ..DomRecord::default()
            };
            disk::store_dom(w.dir, &d)?;
            Ok(DomId(id))
        })
    }

    fn max_vcpus(&self, dom: DomId, max: u32) -> xen_host::Result<()> {
        self.call("max_vcpus", "", 1, |w, _| {
            let d = load_alive(w, resolve(dom))?;
            if max != d.max_vcpus {
                return Err(einval(format!(
                    "max_vcpus {max} must match the {} given to createdomain",
                    d.max_vcpus
                )));
            }
            Ok(())
        })
    }

    fn max_mem(&self, dom: DomId, kib: u64) -> xen_host::Result<()> {
        self.call("max_mem", "", 1, |w, _| {
            let mut d = load_alive(w, resolve(dom))?;
            d.max_pages = kib >> (PAGE_SHIFT - 10);
            disk::store_dom(w.dir, &d)
        })
    }

    fn claim_pages(&self, dom: DomId, nr_pages: u64) -> xen_host::Result<()> {
        self.call("claim_pages", "", 1, |w, _| {
            let mut d = load_alive(w, resolve(dom))?;
            if nr_pages == 0 {
                w.state.outstanding_pages = w
                    .state
                    .outstanding_pages
                    .saturating_sub(d.outstanding_pages);
                d.outstanding_pages = 0;
                w.touch();
                return disk::store_dom(w.dir, &d);
            }
            if d.outstanding_pages != 0 {
                return Err(einval(format!(
                    "domain {dom} already has a claim of {} pages (release it with 0 first)",
                    d.outstanding_pages
                )));
            }
            let claim = nr_pages.saturating_sub(d.tot_pages);
            let avail = w.unclaimed_pages();
            if claim > avail {
                return Err(SimError::xen(
                    Errno::ENOMEM,
                    format!(
                        "claim of {claim} pages ({} MiB) but only {avail} pages ({} MiB) are free and unclaimed",
                        claim / 256,
                        avail / 256
                    ),
                ));
            }
            d.outstanding_pages = claim;
            w.state.outstanding_pages += claim;
            w.touch();
            disk::store_dom(w.dir, &d)
        })
    }

    fn populate_physmap(&self, dom: DomId, order: u32, gfns: &[Gfn]) -> xen_host::Result<usize> {
        self.call("populate_physmap", "", 1, |w, _| {
            let mut d = load_alive(w, resolve(dom))?;
            let done = populate(w, &mut d, order, gfns.iter().map(|g| g.0)).len();
            if done > 0 {
                disk::store_dom(w.dir, &d)?;
            }
            Ok(done)
        })
    }

    fn set_memory_map(&self, dom: DomId, map: &[E820Entry]) -> xen_host::Result<()> {
        self.call("set_memory_map", "", 1, |w, _| {
            let mut d = load_alive(w, resolve(dom))?;
            if map.len() > E820_MAX {
                return Err(einval(format!(
                    "{} memory map entries (at most {E820_MAX})",
                    map.len()
                )));
            }
            d.memory_map = map.to_vec();
            disk::store_dom(w.dir, &d)
        })
    }

    fn set_hvm_param(&self, dom: DomId, index: u32, value: u64) -> xen_host::Result<()> {
        self.call("set_hvm_param", "", 1, |w, _| {
            let mut d = load_alive(w, resolve(dom))?;
            if !d.is_hvm() || index >= HVM_NR_PARAMS {
                return Err(einval(format!(
                    "HVM param {index} on domain {dom} (HVM domains only, index below {HVM_NR_PARAMS})"
                )));
            }
            d.hvm_params.insert(index, value);
            disk::store_dom(w.dir, &d)
        })
    }

    fn get_hvm_param(&self, dom: DomId, index: u32) -> xen_host::Result<u64> {
        self.call("get_hvm_param", "", 1, |w, _| {
            let d = load_alive(w, resolve(dom))?;
            if !d.is_hvm() || index >= HVM_NR_PARAMS {
                return Err(einval(format!(
                    "HVM param {index} on domain {dom} (HVM domains only, index below {HVM_NR_PARAMS})"
                )));
            }
            Ok(d.hvm_params.get(&index).copied().unwrap_or(0))
        })
    }

    fn get_hvm_context(&self, dom: DomId) -> xen_host::Result<Vec<u8>> {
        self.call("gethvmcontext", "", 1, |w, _| {
            let d = load_alive(w, resolve(dom))?;
            if !d.is_hvm() {
                return Err(einval(format!("domain {dom} is not an HVM domain")));
            }
            let mut out = Vec::new();
            descriptor(&mut out, HVM_TYPE_HEADER, 0, 24);
            out.extend_from_slice(&HVM_FILE_MAGIC.to_le_bytes());
            out.extend_from_slice(&HVM_FILE_VERSION.to_le_bytes());
            out.extend_from_slice(&0u64.to_le_bytes());
            out.extend_from_slice(&HVM_HEADER_CPUID.to_le_bytes());
            out.extend_from_slice(&w.config.cpu_khz.to_le_bytes());
            for r in &d.hvm_records {
                let body = unhex(&r.data);
                descriptor(&mut out, r.typecode, r.instance, body.len() as u32);
                out.extend_from_slice(&body);
            }
            descriptor(&mut out, HVM_TYPE_END, 0, 0);
            Ok(out)
        })
    }

    fn set_hvm_context(&self, dom: DomId, ctx: &[u8]) -> xen_host::Result<()> {
        self.call("sethvmcontext", "", 1, |w, _| {
            let mut d = load_alive(w, resolve(dom))?;
            if !d.is_hvm() {
                return Err(einval(format!("domain {dom} is not an HVM domain")));
            }
            for (typecode, instance, body) in parse_hvm_context(ctx, d.max_vcpus)? {
                let rec = HvmRecord {
                    typecode,
                    instance,
                    data: hex(&body),
                };
                match d
                    .hvm_records
                    .iter_mut()
                    .find(|r| r.typecode == typecode && r.instance == instance)
                {
                    Some(r) => *r = rec,
                    None => d.hvm_records.push(rec),
                }
            }
            d.hvm_records.sort_by_key(|r| (r.typecode, r.instance));
            // Loading a CPU record brings that vCPU up.
            let cpus = d
                .hvm_records
                .iter()
                .filter(|r| r.typecode == HVM_TYPE_CPU)
                .count() as u32;
            d.online_vcpus = d.online_vcpus.max(cpus);
            disk::store_dom(w.dir, &d)
        })
    }

    fn set_paging_mempool_size(&self, dom: DomId, bytes: u64) -> xen_host::Result<()> {
        self.call("set_paging_mempool_size", "", 1, |w, _| {
            let mut d = load_alive(w, resolve(dom))?;
            if bytes % PAGE_SIZE != 0 {
                return Err(einval(format!(
                    "{bytes} bytes is not a whole number of pages"
                )));
            }
            let pages = bytes / PAGE_SIZE;
            if pages > d.paging_pool_pages {
                let more = pages - d.paging_pool_pages;
                let avail = w.unclaimed_pages();
                if more > avail {
                    return Err(SimError::xen(
                        Errno::ENOMEM,
                        format!("paging pool needs {more} more pages, {avail} are free"),
                    ));
                }
                w.state.used_pages += more;
            } else {
                w.state.used_pages = w
                    .state
                    .used_pages
                    .saturating_sub(d.paging_pool_pages - pages);
            }
            d.paging_pool_pages = pages;
            w.touch();
            disk::store_dom(w.dir, &d)
        })
    }

    fn set_tsc_info(&self, dom: DomId, tsc_mode: u32) -> xen_host::Result<()> {
        self.call("settscinfo", "", 1, |w, _| {
            let mut d = load_alive(w, resolve(dom))?;
            if tsc_mode > 2 {
                return Err(einval(format!(
                    "tsc_mode {tsc_mode} (0 default, 1 always emulate, 2 native)"
                )));
            }
            d.tsc_mode = Some(tsc_mode);
            disk::store_dom(w.dir, &d)
        })
    }

    fn alloc_unbound(&self, dom: DomId, remote: DomId) -> xen_host::Result<u32> {
        self.call("alloc_unbound", "", 1, |w, _| {
            let dom = resolve(dom);
            let mut d = load_live(w, dom)?;
            if d.dying {
                return Err(esrch(dom));
            }
            // Port 0 is reserved; Xen hands out the lowest free port.
            let mut port = 1u32;
            for &used in d.evtchns.keys() {
                if used != port {
                    break;
                }
                port += 1;
            }
            if port > d.max_evtchn_port {
                return Err(SimError::xen(
                    Errno::ENOSPC,
                    format!("domain {dom} has all {} ports in use", d.max_evtchn_port),
                ));
            }
            d.evtchns.insert(port, resolve(remote).0);
            disk::store_dom(w.dir, &d)?;
            Ok(port)
        })
    }

    fn write_guest(&self, dom: DomId, gpa: u64, data: &[u8]) -> xen_host::Result<()> {
        let len = data.len() as u64;
        self.call(
            "map_foreign",
            "write_guest",
            batches(gpa, len),
            |w, inner| {
                let d = load_translated(w, resolve(dom), "write_guest")?;
                let (first, end) = gfn_span(gpa, len)?;
                check_mapped(&d, first, end)?;
                let pages = Self::pages(inner, &d);
                for (gfn, off, at, n) in Self::pieces(gpa, len) {
                    let page = pages
                        .entry(gfn)
                        .or_insert_with(|| vec![0u8; PAGE_SIZE as usize].into_boxed_slice());
                    if let (Some(dst), Some(src)) = (
                        page.get_mut(off..off + n),
                        data.get(at as usize..at as usize + n),
                    ) {
                        dst.copy_from_slice(src);
                    }
                }
                Ok(())
            },
        )
    }

    fn zero_guest(&self, dom: DomId, gpa: u64, len: u64) -> xen_host::Result<()> {
        self.call(
            "map_foreign",
            "zero_guest",
            batches(gpa, len),
            |w, inner| {
                let d = load_translated(w, resolve(dom), "zero_guest")?;
                let (first, end) = gfn_span(gpa, len)?;
                check_mapped(&d, first, end)?;
                let pages = Self::pages(inner, &d);
                for (gfn, off, _, n) in Self::pieces(gpa, len) {
                    if n == PAGE_SIZE as usize {
                        pages.remove(&gfn);
                    } else if let Some(dst) =
                        pages.get_mut(&gfn).and_then(|p| p.get_mut(off..off + n))
                    {
                        dst.fill(0);
                    }
                }
                Ok(())
            },
        )
    }

    fn read_guest(&self, dom: DomId, gpa: u64, len: usize) -> xen_host::Result<Vec<u8>> {
        let len64 = len as u64;
        self.call(
            "map_foreign",
            "read_guest",
            batches(gpa, len64),
            |w, inner| {
                let d = load_translated(w, resolve(dom), "read_guest")?;
                let (first, end) = gfn_span(gpa, len64)?;
                check_mapped(&d, first, end)?;
                let pages = Self::pages(inner, &d);
                let mut out = vec![0u8; len];
                for (gfn, off, at, n) in Self::pieces(gpa, len64) {
                    if let (Some(src), Some(dst)) = (
                        pages.get(&gfn).and_then(|p| p.get(off..off + n)),
                        out.get_mut(at as usize..at as usize + n),
                    ) {
                        dst.copy_from_slice(src);
                    }
                }
                Ok(out)
            },
        )
    }

    fn write_grant_entries(
        &self,
        dom: DomId,
        first_ref: u32,
        entries: &[GrantEntryV1],
    ) -> xen_host::Result<()> {
        self.call("grant_write", "", 1, |w, _| {
            let mut d = load_alive(w, resolve(dom))?;
            let limit = u64::from(d.max_grant_frames) * u64::from(GRANTS_PER_FRAME);
            let end = u64::from(first_ref) + entries.len() as u64;
            if end > limit.min(u64::from(u32::MAX)) {
                return Err(einval(format!(
                    "grant refs {first_ref}..{end} beyond the {limit} entries of domain {dom}'s table"
                )));
            }
            for (gref, e) in (first_ref..).zip(entries) {
                d.grants.insert(gref, *e);
            }
            disk::store_dom(w.dir, &d)
        })
    }

    fn domain_info(&self, dom: DomId) -> xen_host::Result<Option<DomainInfo>> {
        self.call("getdomaininfo", "", 1, |w, _| {
            Ok(disk::load_dom(w.dir, resolve(dom).0)?.map(|d| info_of(&d, w.now)))
        })
    }

    fn list_domains(&self) -> xen_host::Result<Vec<DomainInfo>> {
        self.call("getdomaininfolist", "", 0, |w, _| {
            let ids = disk::dom_ids(w.dir)?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(d) = disk::load_dom(w.dir, id)? {
                    out.push(info_of(&d, w.now));
                }
            }
            self.hypercalls.fetch_add(
                (out.len() as u64 / LIST_BATCH) + 1,
                std::sync::atomic::Ordering::Relaxed,
            );
            Ok(out)
        })
    }

    fn pause(&self, dom: DomId) -> xen_host::Result<()> {
        self.call("pausedomain", "", 1, |w, _| {
            let mut d = load_domu(w, resolve(dom), "pausing")?;
            d.pause_count = d
                .pause_count
                .checked_add(1)
                .filter(|&c| c <= 255)
                .ok_or_else(|| SimError::xen(Errno::EOVERFLOW, "pause count at its limit"))?;
            d.stop_clock(w.now);
            disk::store_dom(w.dir, &d)
        })
    }

    fn unpause(&self, dom: DomId) -> xen_host::Result<()> {
        self.call("unpausedomain", "", 1, |w, inner| {
            let dom = resolve(dom);
            let mut d = load_domu(w, dom, "unpausing")?;
            if d.pause_count == 0 {
                return Err(einval(format!("domain {dom} is not paused")));
            }
            d.pause_count -= 1;
            if d.pause_count == 0 && !d.started {
                d.started = true;
                // The guest brings up the vCPUs xenstore marks online (all if none is
                // marked).
                let mut online = 0;
                let mut marked = false;
                for i in 0..d.max_vcpus {
                    let p = format!("/local/domain/{}/cpu/{i}/availability", d.domid);
                    if let Some(n) = crate::xs::read_node(w.dir, &p)? {
                        marked = true;
                        if n.value == b"online" {
                            online += 1;
                        }
                    }
                }
                d.online_vcpus = if marked { online.max(1) } else { d.max_vcpus };
                if !d.is_hvm() {
                    d.pv.entry_fault = pv_boot_fault(&d, inner);
                } else if crate::hvm::has_device_model(&d) {
                    // Checked only where the guest's memory is (the process that built it).
                    let fault = match inner.memory.get(&(d.domid, d.instance)) {
                        Some(pages) if !pages.is_empty() => crate::hvm::boot_fault(&d, pages),
                        _ => None,
                    };
                    // The reason is kept where a PV guest's entry fault is.
                    if fault.is_some() {
                        d.pv.entry_fault = fault;
                        do_shutdown(w, &mut d, ShutdownReason::Crash);
                    }
                }
            }
            d.start_clock(w.now);
            if d.pv.entry_fault.is_some() && !d.is_hvm() {
                // The kernel faults at its first instruction and Xen crashes the domain,
                // as a real guest triple-faulting would.
                do_shutdown(w, &mut d, ShutdownReason::Crash);
            }
            if d.runnable() {
                if let Some(p) = d.pending.take() {
                    do_shutdown(w, &mut d, pending_reason(p));
                }
            }
            disk::store_dom(w.dir, &d)?;
            guest_poll_shutdown(w, dom)?;
            crate::backend::on_run(w, &mut inner.faults, dom)
        })
    }

    fn destroy(&self, dom: DomId) -> xen_host::Result<()> {
        let dom = resolve(dom);
        let mut first = true;
        loop {
            let done = self.call("destroydomain", "", 1, |w, inner| {
                let Some(mut d) = disk::load_dom(w.dir, dom.0)? else {
                    return if first { Err(esrch(dom)) } else { Ok(true) };
                };
                if dom == DomId::DOM0 {
                    return Err(einval("Domain-0 cannot be destroyed"));
                }
                if !d.dying {
                    d.dying = true;
                    d.stop_clock(w.now);
                    w.state.outstanding_pages = w
                        .state
                        .outstanding_pages
                        .saturating_sub(d.outstanding_pages);
                    d.outstanding_pages = 0;
                    w.state.used_pages = w.state.used_pages.saturating_sub(d.paging_pool_pages);
                    d.paging_pool_pages = 0;
                    d.evtchns.clear();
                    d.grants.clear();
                    d.hvm_params.clear();
                    d.hvm_records.clear();
                    d.memory_map.clear();
                    d.pv.vcpus.clear();
                    d.introduced = None;
                    d.pending = None;
                    inner.memory.remove(&(d.domid, d.instance));
                    w.log(ChangeKind::Special, "@releaseDomain");
                }
                let k = d.tot_pages.min(DESTROY_BATCH_PAGES);
                d.tot_pages -= k;
                w.state.used_pages = w.state.used_pages.saturating_sub(k);
                w.touch();
                if d.tot_pages == 0 {
                    d.populated.clear();
                    d.pv = Default::default();
                    disk::remove_dom(w.dir, d.domid)?;
                    w.log(ChangeKind::Special, "@releaseDomain");
                    Ok(true)
                } else {
                    disk::store_dom(w.dir, &d)?;
                    Ok(false)
                }
            })?;
            if done {
                return Ok(());
            }
            first = false;
        }
    }

    fn shutdown(&self, dom: DomId, reason: ShutdownReason) -> xen_host::Result<()> {
        self.call("shutdown", "", 1, |w, _| {
            let mut d = load_domu(w, resolve(dom), "remote shutdown")?;
            do_shutdown(w, &mut d, reason);
            disk::store_dom(w.dir, &d)
        })
    }

    fn send_trigger(&self, dom: DomId, trigger: Trigger, vcpu: u32) -> xen_host::Result<()> {
        self.call("sendtrigger", "", 1, |w, _| {
            let mut d = load_domu(w, resolve(dom), "sendtrigger")?;
            if vcpu >= d.max_vcpus {
                return Err(SimError::xen(
                    Errno::ESRCH,
                    format!("domain {dom} has no vCPU {vcpu}"),
                ));
            }
            match trigger {
                Trigger::Nmi => {}
                Trigger::Power | Trigger::Sleep if d.is_hvm() => {}
                Trigger::Power | Trigger::Sleep => {
                    return Err(einval(format!(
                        "the {} button of PV domain {dom}: HVM domains only",
                        trigger.name()
                    )))
                }
                // x86 Xen 4.17 implements no reset or INIT trigger.
                Trigger::Reset | Trigger::Init => {
                    return Err(SimError::xen(
                        Errno::ENOSYS,
                        format!("no {} trigger on x86", trigger.name()),
                    ))
                }
            }
            d.triggers.push((trigger.code(), vcpu));
            // The guest's ACPI answers the power button by powering off (once it runs).
            if trigger == Trigger::Power {
                if d.runnable() {
                    do_shutdown(w, &mut d, ShutdownReason::Poweroff);
                } else if d.shutdown_code.is_none() {
                    d.pending = Some(disk::PendingShutdown::Poweroff);
                }
            }
            disk::store_dom(w.dir, &d)
        })
    }

    fn set_address_size(&self, dom: DomId, bits: u32) -> xen_host::Result<()> {
        self.call("set_address_size", "", 1, |w, _| {
            let mut d = load_pv(w, resolve(dom), "set_address_size", Errno::EOPNOTSUPP)?;
            if bits != 64 && bits != 32 {
                return Err(einval(format!("address size {bits} (32 or 64)")));
            }
            d.pv.address_size = Some(bits);
            disk::store_dom(w.dir, &d)
        })
    }

    fn populate_physmap_pv(
        &self,
        dom: DomId,
        order: u32,
        gpfns: &[u64],
    ) -> xen_host::Result<Vec<u64>> {
        self.call("populate_physmap_pv", "", 1, |w, _| {
            let mut d = load_pv(w, resolve(dom), "populate_physmap_pv", Errno::EINVAL)?;
            let mfns = populate(w, &mut d, order, gpfns.iter().copied());
            if !mfns.is_empty() {
                disk::store_dom(w.dir, &d)?;
            }
            Ok(mfns)
        })
    }

    fn write_frames(&self, dom: DomId, mfns: &[u64], data: &[u8]) -> xen_host::Result<()> {
        let calls = (mfns.len() as u64).div_ceil(MAP_BATCH_PAGES);
        self.call("write_frames", "", calls, |w, inner| {
            let d = load_pv(w, resolve(dom), "write_frames", Errno::EINVAL)?;
            let room = mfns.len() as u64 * PAGE_SIZE;
            if data.len() as u64 > room {
                return Err(einval(format!(
                    "{} bytes do not fit in {} frames",
                    data.len(),
                    mfns.len()
                )));
            }
            let used = &mfns[..data.len().div_ceil(PAGE_SIZE as usize)];
            check_owned(&d, used)?;
            check_not_tables(&d, used)?;
            let pages = Self::pages(inner, &d);
            for (mfn, chunk) in used.iter().zip(data.chunks(PAGE_SIZE as usize)) {
                let page = pages
                    .entry(*mfn)
                    .or_insert_with(|| vec![0u8; PAGE_SIZE as usize].into_boxed_slice());
                if let Some(dst) = page.get_mut(..chunk.len()) {
                    dst.copy_from_slice(chunk);
                }
            }
            Ok(())
        })
    }

    fn zero_frames(&self, dom: DomId, mfns: &[u64]) -> xen_host::Result<()> {
        let calls = (mfns.len() as u64).div_ceil(MAP_BATCH_PAGES);
        self.call("zero_frames", "", calls, |w, inner| {
            let d = load_pv(w, resolve(dom), "zero_frames", Errno::EINVAL)?;
            check_owned(&d, mfns)?;
            check_not_tables(&d, mfns)?;
            let pages = Self::pages(inner, &d);
            for mfn in mfns {
                pages.remove(mfn);
            }
            Ok(())
        })
    }

    fn read_frames(&self, dom: DomId, mfns: &[u64]) -> xen_host::Result<Vec<u8>> {
        let calls = (mfns.len() as u64).div_ceil(MAP_BATCH_PAGES);
        self.call("read_frames", "", calls, |w, inner| {
            let d = load_pv(w, resolve(dom), "read_frames", Errno::EINVAL)?;
            check_owned(&d, mfns)?;
            let pages = Self::pages(inner, &d);
            let mut out = Vec::with_capacity(mfns.len() * PAGE_SIZE as usize);
            for mfn in mfns {
                match pages.get(mfn) {
                    Some(p) => out.extend_from_slice(p),
                    None => out.resize(out.len() + PAGE_SIZE as usize, 0),
                }
            }
            Ok(out)
        })
    }

    fn pin_l4_table(&self, dom: DomId, mfn: u64) -> xen_host::Result<()> {
        self.call("pin_table", "", 1, |w, inner| {
            let dom = resolve(dom);
            let mut d = load_pv(w, dom, "pin_l4_table", Errno::EINVAL)?;
            if let Some(old) = d.pv.pinned_l4 {
                return Err(einval(format!(
                    "domain {dom} already has L4 table {old:#x} pinned"
                )));
            }
            let pages = Self::pages(inner, &d);
            let tables = pv::validate_tree(&d.pv, d.domid, mfn, |m| pages.get(&m).map(|p| &p[..]))?;
            d.pv.pinned_l4 = Some(mfn);
            d.pv.table_frames = tables;
            disk::store_dom(w.dir, &d)
        })
    }

    fn hypercall_init(&self, dom: DomId, mfn: u64) -> xen_host::Result<()> {
        self.call("hypercall_init", "", 1, |w, inner| {
            let dom = resolve(dom);
            let mut d = load_pv(w, dom, "hypercall_init", Errno::EINVAL)?;
            if !d.pv.owns(mfn) {
                return Err(einval(format!(
                    "hypercall page mfn {mfn:#x} is not a frame of domain {dom}"
                )));
            }
            if d.pv.table_frames.binary_search(&mfn).is_ok() {
                return Err(SimError::xen(
                    Errno::EPERM,
                    format!("hypercall page mfn {mfn:#x} is a page table of domain {dom}"),
                ));
            }
            Self::pages(inner, &d).insert(mfn, pv::hypercall_page().into_boxed_slice());
            d.pv.hypercall_page = Some(mfn);
            disk::store_dom(w.dir, &d)
        })
    }

    fn set_pv_vcpu_context(
        &self,
        dom: DomId,
        vcpu: u32,
        ctx: &PvVcpuContext,
    ) -> xen_host::Result<()> {
        self.call("setvcpucontext", "", 1, |w, inner| {
            let dom = resolve(dom);
            let mut d = load_pv(w, dom, "setvcpucontext", Errno::EINVAL)?;
            if vcpu >= d.max_vcpus {
                return Err(einval(format!(
                    "vCPU {vcpu} of domain {dom}, which has {}",
                    d.max_vcpus
                )));
            }
            if d.pv.pinned_l4 != Some(ctx.cr3_mfn) {
                return Err(einval(format!(
                    "cr3 mfn {:#x} is not a pinned L4 table of domain {dom}",
                    ctx.cr3_mfn
                )));
            }
            for (name, va) in [
                ("rip", ctx.rip),
                ("rsp", ctx.rsp),
                ("kernel_sp", ctx.kernel_sp),
            ] {
                if !pv::canonical(va) {
                    return Err(einval(format!("{name} {va:#x} is not canonical")));
                }
            }
            d.pv.vcpus.insert(vcpu, *ctx);
            if vcpu == 0 {
                let pages = Self::pages(inner, &d);
                d.pv.entry_fault = pv::entry_fault(&d.pv, ctx, |m| pages.get(&m).map(|p| &p[..]));
            }
            disk::store_dom(w.dir, &d)
        })
    }

    fn init_pv_shared_info(&self, dom: DomId) -> xen_host::Result<u64> {
        self.call("shared_info", "", 1, |w, inner| {
            let mut d = load_pv(w, resolve(dom), "init_pv_shared_info", Errno::EINVAL)?;
            let mfn = match d.pv.shared_info {
                Some(m) => m,
                None => {
                    let m = alloc_mfns(w, 1);
                    d.pv.shared_info = Some(m);
                    disk::store_dom(w.dir, &d)?;
                    m
                }
            };
            // Cleared, then every legacy vcpu_info's upcall masked, as the builder does.
            let page = Self::pages(inner, &d)
                .entry(mfn)
                .or_insert_with(|| vec![0u8; PAGE_SIZE as usize].into_boxed_slice());
            page.fill(0);
            for i in 0..pv::LEGACY_VCPUS {
                if let Some(mask) = page.get_mut(i * pv::VCPU_INFO_SIZE + 1) {
                    *mask = 1;
                }
            }
            Ok(mfn)
        })
    }

    fn hypercall_count(&self) -> u64 {
        self.hypercalls.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hvm_context_parsing() {
        let mut ctx = Vec::new();
        descriptor(&mut ctx, HVM_TYPE_HEADER, 0, 24);
        ctx.extend_from_slice(&HVM_FILE_MAGIC.to_le_bytes());
        ctx.extend_from_slice(&1u32.to_le_bytes());
        ctx.extend_from_slice(&[0; 16]);
        descriptor(&mut ctx, HVM_TYPE_CPU, 1, 3);
        ctx.extend_from_slice(&[7, 8, 9]);
        let mut full = ctx.clone();
        descriptor(&mut full, HVM_TYPE_END, 0, 0);
        assert_eq!(
            parse_hvm_context(&full, 2).unwrap(),
            vec![(HVM_TYPE_CPU, 1, vec![7, 8, 9])]
        );
        assert!(
            parse_hvm_context(&full, 1).is_err(),
            "vCPU 1 of a 1-vCPU domain"
        );
        assert!(parse_hvm_context(&ctx, 2).is_err(), "no END");
        let mut bad = full.clone();
        bad[8] ^= 1;
        assert!(parse_hvm_context(&bad, 2).is_err(), "bad magic");
        let mut long = ctx.clone();
        descriptor(&mut long, 5, 0, 1000);
        assert!(parse_hvm_context(&long, 2).is_err(), "length past the end");
    }

    #[test]
    fn hex_round_trip_and_spans() {
        assert_eq!(unhex(&hex(&[0, 0xab, 0xff])), vec![0, 0xab, 0xff]);
        assert_eq!(gfn_span(0x1fff, 2).unwrap(), (1, 3));
        assert_eq!(gfn_span(0x1000, 0x1000).unwrap(), (1, 2));
        assert!(gfn_span(u64::MAX, 2).is_err());
        assert_eq!(batches(0, MAP_BATCH_PAGES * PAGE_SIZE + 1), 2);
        assert_eq!(batches(0, 0), 0);
    }
}
