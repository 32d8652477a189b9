//! /dev/xen/privcmd: hypercalls, hypercall buffers and foreign mappings.

use std::fs::OpenOptions;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use xen_host::Errno;

use crate::error::XencallError;
use crate::ioctl::{
    PrivcmdHypercall, PrivcmdMmapBatchV2, PrivcmdMmapResource, IOCTL_PRIVCMD_HYPERCALL,
    IOCTL_PRIVCMD_MMAPBATCH_V2, IOCTL_PRIVCMD_MMAP_RESOURCE,
};
use crate::sys::{self, RawMapping, PAGE};

/// The privcmd device.
pub const PRIVCMD_PATH: &str = "/dev/xen/privcmd";
/// The hypercall buffer device.
pub const HYPERCALL_PATH: &str = "/dev/xen/hypercall";

/// One-page buffers kept for reuse, at most this many.
const POOL_MAX: usize = 4;

/// An open privcmd handle: issues hypercalls, allocates hypercall buffers and maps
/// foreign guest frames. Opened once and shared (`&self` everywhere).
#[derive(Debug)]
pub struct Privcmd {
    fd: OwnedFd,
    /// /dev/xen/hypercall, when the kernel has it.
    hcall: Option<OwnedFd>,
    count: AtomicU64,
    /// Nanoseconds spent inside the privcmd ioctls (hypercalls and foreign mappings).
    nanos: AtomicU64,
    pool: Mutex<Vec<RawMapping>>,
}

fn open_rw(path: &'static str) -> Result<OwnedFd, std::io::Error> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    Ok(OwnedFd::from(file))
}

impl Privcmd {
    /// Open /dev/xen/privcmd and, if present, /dev/xen/hypercall.
    pub fn open() -> Result<Privcmd, XencallError> {
        let fd = match open_rw(PRIVCMD_PATH) {
            Ok(fd) => fd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(XencallError::NoXen),
            Err(e) => {
                let errno = Errno::from_io(&e);
                let hint = if errno == Errno::EACCES || errno == Errno::EPERM {
                    ": run as root in dom0"
                } else {
                    ""
                };
                return Err(XencallError::Open {
                    path: PRIVCMD_PATH,
                    errno,
                    hint,
                });
            }
        };
        let hcall = open_rw(HYPERCALL_PATH).ok();
        Ok(Privcmd {
            fd,
            hcall,
            count: AtomicU64::new(0),
            nanos: AtomicU64::new(0),
            pool: Mutex::new(Vec::new()),
        })
    }

    /// Whether hypercall buffers come from /dev/xen/hypercall (else from locked
    /// anonymous memory).
    pub fn has_hypercall_device(&self) -> bool {
        self.hcall.is_some()
    }

    /// Hypercalls issued so far.
    pub fn hypercall_count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Nanoseconds spent so far inside the privcmd ioctls: the hypervisor's share of the
    /// time (plus the kernel's marshalling), for profiles.
    pub fn hypercall_nanos(&self) -> u64 {
        self.nanos.load(Ordering::Relaxed)
    }

    /// Run one ioctl, adding its duration to [`Privcmd::hypercall_nanos`].
    fn timed<T>(&self, f: impl FnOnce() -> T) -> T {
        let start = std::time::Instant::now();
        let r = f();
        let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(ns, Ordering::Relaxed);
        r
    }

    /// A zeroed hypercall buffer of at least `len` bytes (whole pages).
    pub fn buffer(&self, len: usize) -> Result<HypercallBuf<'_>, XencallError> {
        let pages = len.max(1).div_ceil(PAGE);
        let bytes = pages.checked_mul(PAGE).ok_or_else(|| {
            XencallError::os(format!("hypercall buffer of {len} bytes"), Errno::ENOMEM)
        })?;
        if bytes == PAGE {
            let spare = self.pool.lock().ok().and_then(|mut p| p.pop());
            if let Some(mut map) = spare {
                // SAFETY: hypercall buffer pages are always backed.
                unsafe { map.bytes_mut() }.fill(0);
                return Ok(HypercallBuf {
                    map: Some(map),
                    pool: &self.pool,
                });
            }
        }
        let map = match &self.hcall {
            Some(fd) => RawMapping::shared(fd, bytes),
            None => RawMapping::anon_locked(bytes),
        }
        .map_err(|errno| XencallError::os(format!("hypercall buffer of {bytes} bytes"), errno))?;
        Ok(HypercallBuf {
            map: Some(map),
            pool: &self.pool,
        })
    }

    /// Issue hypercall `op` with `args`, returning Xen's (non-negative) return value or
    /// its error as an errno.
    ///
    /// # Safety
    /// Every argument that Xen reads as a pointer must be the address of live hypercall
    /// buffer memory large enough for what the hypercall reads and writes, including
    /// guest handles inside the structs it points to.
    pub(crate) unsafe fn hypercall(&self, op: u64, args: [u64; 5]) -> Result<i64, Errno> {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut call = PrivcmdHypercall { op, arg: args };
        // SAFETY: HYPERCALL takes a privcmd_hypercall (which `call` is); the caller
        // guarantees the pointers inside it.
        self.timed(|| unsafe { sys::ioctl(&self.fd, IOCTL_PRIVCMD_HYPERCALL, &mut call) })
    }

    /// Map `gfns` of domain `dom`, one page each, contiguously. Fails, naming the first
    /// failing gfn, if any page cannot be mapped.
    pub fn map_foreign(&self, dom: u16, gfns: &[u64]) -> Result<ForeignMap, XencallError> {
        let op = || format!("map {} pages of dom {dom}", gfns.len());
        let num = u32::try_from(gfns.len()).map_err(|_| XencallError::os(op(), Errno::E2BIG))?;
        let len = gfns
            .len()
            .checked_mul(PAGE)
            .ok_or_else(|| XencallError::os(op(), Errno::E2BIG))?;
        let map = RawMapping::shared(&self.fd, len).map_err(|e| XencallError::os(op(), e))?;
        let mut err = vec![0i32; gfns.len()];
        let mut arg = PrivcmdMmapBatchV2 {
            num,
            dom,
            _pad: 0,
            addr: map.addr(),
            arr: gfns.as_ptr() as u64,
            err: err.as_mut_ptr() as u64,
        };
        // SAFETY: MMAPBATCH_V2 takes a privcmd_mmapbatch_v2; `addr` is a privcmd mapping
        // of exactly `num` pages that we own, `arr` points at `num` u64 gfns and `err` at
        // `num` ints, all alive across the call.
        let rc =
            self.timed(|| unsafe { sys::ioctl(&self.fd, IOCTL_PRIVCMD_MMAPBATCH_V2, &mut arg) });
        check_pages(&op(), gfns, &err, rc.map(|_| ()))?;
        Ok(ForeignMap { map })
    }

    /// Map `num` frames of a domain's resource (`XENMEM_acquire_resource` through
    /// IOCTL_PRIVCMD_MMAP_RESOURCE), starting at frame `idx`.
    pub fn map_resource(
        &self,
        dom: u16,
        kind: u16,
        id: u32,
        idx: u32,
        num: usize,
    ) -> Result<ForeignMap, XencallError> {
        let op = || format!("map resource type {kind} id {id} frames {idx}+{num} of dom {dom}");
        let len = num
            .checked_mul(PAGE)
            .ok_or_else(|| XencallError::os(op(), Errno::E2BIG))?;
        let map = RawMapping::shared(&self.fd, len).map_err(|e| XencallError::os(op(), e))?;
        let mut arg = PrivcmdMmapResource {
            dom,
            _pad: 0,
            kind: u32::from(kind),
            id,
            idx,
            num: num as u64,
            addr: map.addr(),
        };
        // SAFETY: MMAP_RESOURCE takes a privcmd_mmap_resource; `addr` is a privcmd
        // mapping of exactly `num` pages that we own.
        self.timed(|| unsafe { sys::ioctl(&self.fd, IOCTL_PRIVCMD_MMAP_RESOURCE, &mut arg) })
            .map_err(|e| XencallError::os(op(), e))?;
        Ok(ForeignMap { map })
    }
}

impl Privcmd {
    /// Marshal a call for [`crate::batch::Backend::call`]: place `arg` and the regions in
    /// hypercall buffers, patch the handles, run `issue(op, args)`, copy everything back.
    /// The arguments are `(cmd, &arg)` or, without `cmd`, `(&arg, tail...)`.
    ///
    /// # Safety
    /// As for `Backend::call`; `issue` receives addresses of buffers that stay alive
    /// until it returns.
    unsafe fn marshal(
        &self,
        op: u64,
        cmd: Option<u64>,
        arg: &mut [u8],
        regions: &mut [crate::batch::Region<'_>],
        tail: [u64; 3],
        issue: impl FnOnce(u64, [u64; 5]) -> Result<i64, Errno>,
    ) -> Result<i64, Errno> {
        let errno_of = |e: XencallError| e.errno().unwrap_or(Errno::ENOMEM);
        let mut argbuf = if arg.is_empty() {
            None
        } else {
            let mut b = self.buffer(arg.len()).map_err(errno_of)?;
            b.bytes_mut()
                .get_mut(..arg.len())
                .ok_or(Errno::EINVAL)?
                .copy_from_slice(arg);
            Some(b)
        };
        let mut bufs = Vec::with_capacity(regions.len());
        for r in regions.iter() {
            let addr = if r.data.is_empty() {
                bufs.push(None);
                0
            } else {
                let mut b = self.buffer(r.data.len()).map_err(errno_of)?;
                b.bytes_mut()
                    .get_mut(..r.data.len())
                    .ok_or(Errno::EINVAL)?
                    .copy_from_slice(r.data);
                let addr = b.addr();
                bufs.push(Some(b));
                addr
            };
            let handle_end = r
                .handle_at
                .checked_add(8)
                .filter(|&end| end <= arg.len())
                .ok_or(Errno::EINVAL)?;
            let handle = argbuf
                .as_mut()
                .and_then(|a| a.bytes_mut().get_mut(r.handle_at..handle_end))
                .ok_or(Errno::EINVAL)?;
            handle.copy_from_slice(&addr.to_le_bytes());
        }
        let addr = argbuf.as_ref().map_or(0, HypercallBuf::addr);
        let args = match cmd {
            Some(c) => [c, addr, 0, 0, 0],
            None => [addr, tail[0], tail[1], tail[2], 0],
        };
        let rc = issue(op, args)?;
        if let Some(b) = &argbuf {
            if let Some(src) = b.bytes().get(..arg.len()) {
                arg.copy_from_slice(src);
            }
        }
        for (r, b) in regions.iter_mut().zip(&bufs) {
            if let Some(src) = b.as_ref().and_then(|b| b.bytes().get(..r.data.len())) {
                r.data.copy_from_slice(src);
            }
        }
        Ok(rc)
    }
}

impl crate::batch::Backend for Privcmd {
    unsafe fn call(
        &self,
        op: u64,
        cmd: Option<u64>,
        arg: &mut [u8],
        regions: &mut [crate::batch::Region<'_>],
    ) -> Result<i64, Errno> {
        let issue = |op, args| {
            // SAFETY: marshal passes the address of live hypercall memory holding `arg`,
            // in which every listed handle points at live hypercall memory of its
            // region's size (or is null); the caller guarantees there are no other
            // handles. The buffers outlive this call.
            unsafe { self.hypercall(op, args) }
        };
        // SAFETY: the caller's contract is marshal's.
        unsafe { self.marshal(op, cmd, arg, regions, [0; 3], issue) }
    }

    unsafe fn call_tail(
        &self,
        op: u64,
        arg: &mut [u8],
        regions: &mut [crate::batch::Region<'_>],
        tail: [u64; 3],
    ) -> Result<i64, Errno> {
        let issue = |op, args| {
            // SAFETY: as in `call`; the tail arguments are scalars the caller chose
            // (counts, domain ids, null pointers).
            unsafe { self.hypercall(op, args) }
        };
        // SAFETY: the caller's contract is marshal's.
        unsafe { self.marshal(op, None, arg, regions, tail, issue) }
    }

    fn map_resource(
        &self,
        dom: u16,
        kind: u16,
        id: u32,
        idx: u32,
        num: usize,
    ) -> Result<ForeignMap, XencallError> {
        Privcmd::map_resource(self, dom, kind, id, idx, num)
    }

    fn hypercall_count(&self) -> u64 {
        Privcmd::hypercall_count(self)
    }

    fn hypercall_nanos(&self) -> u64 {
        Privcmd::hypercall_nanos(self)
    }
}

impl crate::batch::Mapper for Privcmd {
    type Map = ForeignMap;
    fn map(&self, dom: u16, gfns: &[u64]) -> Result<ForeignMap, XencallError> {
        self.map_foreign(dom, gfns)
    }
}

/// Turn MMAPBATCH_V2's per-page errors and return value into a result: any page error
/// wins (naming the first gfn), else the ioctl's own error.
pub(crate) fn check_pages(
    op: &str,
    gfns: &[u64],
    err: &[i32],
    rc: Result<(), Errno>,
) -> Result<(), XencallError> {
    let mut failed = gfns.iter().zip(err).filter(|(_, &e)| e != 0);
    if let Some((&gfn, &e)) = failed.next() {
        return Err(XencallError::Pages {
            op: op.to_string(),
            first_gfn: gfn,
            first_errno: Errno(e.saturating_neg()),
            failed: 1 + failed.count(),
        });
    }
    rc.map_err(|e| XencallError::os(op, e))
}

/// Hypercall-safe memory (from /dev/xen/hypercall, or locked anonymous pages), owned;
/// unmapped (or kept for reuse) on drop.
#[derive(Debug)]
pub struct HypercallBuf<'a> {
    map: Option<RawMapping>,
    pool: &'a Mutex<Vec<RawMapping>>,
}

impl HypercallBuf<'_> {
    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.map {
            // SAFETY: hypercall buffer pages are backed from the moment they are mapped.
            Some(m) => unsafe { m.bytes() },
            None => &[],
        }
    }

    /// The bytes, writable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        match &mut self.map {
            // SAFETY: as in `bytes`.
            Some(m) => unsafe { m.bytes_mut() },
            None => &mut [],
        }
    }

    /// The address Xen is given.
    pub(crate) fn addr(&self) -> u64 {
        self.map.as_ref().map_or(0, RawMapping::addr)
    }
}

impl Drop for HypercallBuf<'_> {
    fn drop(&mut self) {
        if let Some(map) = self.map.take() {
            if map.len() == PAGE {
                if let Ok(mut pool) = self.pool.lock() {
                    if pool.len() < POOL_MAX {
                        pool.push(map);
                        return;
                    }
                }
            }
            drop(map);
        }
    }
}

/// Guest frames mapped into this process, every page backed; unmapped on drop.
#[derive(Debug)]
pub struct ForeignMap {
    map: RawMapping,
}

impl ForeignMap {
    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: a ForeignMap exists only after every page was mapped successfully.
        unsafe { self.map.bytes() }
    }

    /// The mapped bytes, writable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`.
        unsafe { self.map.bytes_mut() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{Backend, Region};

    /// A Privcmd over /dev/null with anonymous hypercall buffers: marshalling runs for
    /// real, hypercalls fail with ENOTTY.
    fn null_privcmd() -> Privcmd {
        let fd = OwnedFd::from(std::fs::File::open("/dev/null").expect("/dev/null"));
        Privcmd {
            fd,
            hcall: None,
            count: AtomicU64::new(0),
            nanos: AtomicU64::new(0),
            pool: Mutex::new(Vec::new()),
        }
    }

    fn read_at(addr: u64, len: usize) -> Vec<u8> {
        // SAFETY: only called with addresses of hypercall buffers that `marshal` keeps
        // alive during `issue`, and lengths within them.
        unsafe { std::slice::from_raw_parts(addr as *const u8, len) }.to_vec()
    }

    fn write_at(addr: u64, bytes: &[u8]) {
        // SAFETY: as in `read_at`; the buffers are writable and nothing else views them
        // while `issue` runs.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len()) }
    }

    #[test]
    fn marshal_places_arg_and_regions_and_copies_back() {
        let pc = null_privcmd();
        // A 24-byte struct with a handle at 8, and a 5000-byte region (two pages).
        let mut arg = vec![0u8; 24];
        arg[0..4].copy_from_slice(&0x1234_5678u32.to_le_bytes());
        arg[8..16].copy_from_slice(&0xdead_beefu64.to_le_bytes());
        let mut data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let mut regions = [Region {
            handle_at: 8,
            data: &mut data,
        }];
        let mut seen = None;
        // SAFETY: the struct's only handle (at 8) is listed.
        let rc = unsafe {
            pc.marshal(12, Some(6), &mut arg, &mut regions, [0; 3], |op, args| {
                assert_eq!((op, args[0]), (12, 6));
                let a = read_at(args[1], 24);
                assert_eq!(&a[0..4], &0x1234_5678u32.to_le_bytes());
                let handle = u64::from_le_bytes(a[8..16].try_into().unwrap_or([0; 8]));
                assert_ne!(handle, 0xdead_beef, "handle was not patched");
                let d = read_at(handle, 5000);
                assert_eq!(d[4999], (4999u32 % 256) as u8);
                // "Xen" answers: writes the struct and the region.
                write_at(args[1] + 16, &7u64.to_le_bytes());
                write_at(handle, &[9, 9, 9]);
                seen = Some(handle);
                Ok(42)
            })
        };
        assert_eq!(rc, Ok(42));
        assert!(seen.is_some());
        assert_eq!(&arg[16..24], &7u64.to_le_bytes());
        assert_eq!(&data[..4], &[9, 9, 9, 3]);
    }

    #[test]
    fn marshal_nulls_and_errors() {
        let pc = null_privcmd();
        // Empty arg: a null pointer; empty region: a null handle.
        // SAFETY: no handles.
        let rc = unsafe {
            pc.marshal(17, Some(0), &mut [], &mut [], [0; 3], |_, args| {
                assert_eq!(args[1], 0);
                Ok(0x0004_0011)
            })
        };
        assert_eq!(rc, Ok(0x0004_0011));
        let mut arg = vec![0xffu8; 16];
        let mut regions = [Region {
            handle_at: 8,
            data: &mut [],
        }];
        // SAFETY: the only handle is listed (and null).
        let rc = unsafe {
            pc.marshal(36, None, &mut arg, &mut regions, [1, 0, 7], |_, args| {
                assert_eq!(read_at(args[0], 16)[8..16], [0u8; 8]);
                // Without a cmd, the tail follows the pointer.
                assert_eq!(args[1..], [1, 0, 7, 0]);
                Err(Errno::ESRCH)
            })
        };
        assert_eq!(rc, Err(Errno::ESRCH));
        // A handle outside the struct is refused before any call.
        let mut data = [0u8; 4];
        let mut regions = [Region {
            handle_at: 12,
            data: &mut data,
        }];
        // SAFETY: nothing is issued.
        let rc = unsafe { pc.marshal(36, None, &mut arg, &mut regions, [0; 3], |_, _| Ok(0)) };
        assert_eq!(rc, Err(Errno::EINVAL));
    }

    #[test]
    fn hypercall_on_a_non_privcmd_fd_is_enotty() {
        let pc = null_privcmd();
        let mut arg = vec![0u8; 8];
        // SAFETY: the argument holds no pointers; /dev/null rejects the ioctl anyway.
        let rc = unsafe { pc.call(17, Some(0), &mut arg, &mut []) };
        assert_eq!(rc, Err(Errno::ENOTTY));
        assert_eq!(pc.hypercall_count(), 1);
        // The ioctl's time is counted, failed or not.
        let after_call = pc.hypercall_nanos();
        assert!(after_call > 0);
        let e = pc.map_foreign(1, &[0x100]).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.starts_with("map 1 pages of dom 1:")));
    }

    #[test]
    fn page_errors_win_over_rc() {
        let gfns = [0x10, 0x11, 0x12];
        let r = check_pages("map", &gfns, &[0, -14, -22], Err(Errno::EFAULT));
        match r {
            Err(XencallError::Pages {
                first_gfn,
                first_errno,
                failed,
                ..
            }) => {
                assert_eq!((first_gfn, first_errno, failed), (0x11, Errno::EFAULT, 2));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(check_pages("map", &gfns, &[0, 0, 0], Ok(())).is_ok());
        let r = check_pages("map", &gfns, &[0, 0, 0], Err(Errno::EINVAL));
        assert_eq!(r.err().and_then(|e| e.errno()), Some(Errno::EINVAL));
    }

    #[test]
    fn open_without_xen_says_so() {
        if std::path::Path::new(PRIVCMD_PATH).exists() {
            return;
        }
        let err = Privcmd::open().err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some(crate::error::NO_XEN_MESSAGE));
    }

    #[test]
    fn anon_buffers_are_zeroed_and_pooled() {
        let pool = Mutex::new(Vec::new());
        let map = RawMapping::anon_locked(PAGE);
        // MAP_LOCKED can fail under a small RLIMIT_MEMLOCK; nothing to test then.
        let Ok(map) = map else { return };
        let mut buf = HypercallBuf {
            map: Some(map),
            pool: &pool,
        };
        assert_eq!(buf.bytes().len(), PAGE);
        assert!(buf.bytes().iter().all(|&b| b == 0));
        buf.bytes_mut()[10] = 7;
        assert_ne!(buf.addr(), 0);
        drop(buf);
        assert_eq!(pool.lock().map(|p| p.len()).unwrap_or(0), 1);
    }
}
