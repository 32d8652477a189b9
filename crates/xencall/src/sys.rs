//! The unsafe edge: ioctl and mmap on the privcmd and hypercall devices.
//!
//! Everything that touches raw pointers lives here. The types exported to the rest of the
//! crate own what they map and unmap it on drop.

use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;

use xen_host::Errno;

/// Size of a page.
pub(crate) const PAGE: usize = 4096;

/// Issue `ioctl(fd, request, arg)`, returning the (non-negative) return value or the errno.
///
/// # Safety
/// `request` must be an ioctl of `fd`'s driver whose argument is a `T`, and every pointer
/// inside `*arg` must be valid for what that ioctl does with it (reads or writes of the
/// lengths `*arg` gives) for the duration of the call.
pub(crate) unsafe fn ioctl<T>(fd: &OwnedFd, request: u64, arg: &mut T) -> Result<i64, Errno> {
    let ptr: *mut T = arg;
    // SAFETY: the fd is open (we hold the OwnedFd); the caller guarantees the request
    // matches `T` and that the pointers inside it are valid.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request as libc::Ioctl, ptr) };
    if rc < 0 {
        Err(Errno::last())
    } else {
        Ok(i64::from(rc))
    }
}

/// An owned range of mapped pages, unmapped on drop. It hands out no bytes by itself:
/// whether every page is backed depends on how it was filled (see the wrappers).
#[derive(Debug)]
pub(crate) struct RawMapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; nothing in it is tied to the
// thread that created it.
unsafe impl Send for RawMapping {}
// SAFETY: shared references only expose the address, never the bytes.
unsafe impl Sync for RawMapping {}

impl RawMapping {
    /// `mmap(NULL, len, RW, MAP_SHARED, fd, 0)`: for /dev/xen/hypercall (pages allocated
    /// by the driver at once) and /dev/xen/privcmd (pages filled by a later ioctl).
    pub(crate) fn shared(fd: &OwnedFd, len: usize) -> Result<RawMapping, Errno> {
        if len == 0 || len % PAGE != 0 {
            return Err(Errno::EINVAL);
        }
        // SAFETY: a fresh mapping at an address the kernel picks aliases no Rust memory;
        // the result is checked before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        Self::from_mmap(p, len)
    }

    /// Anonymous, locked, zero-filled pages that a fork does not share: the fallback for
    /// hypercall buffers without /dev/xen/hypercall.
    pub(crate) fn anon_locked(len: usize) -> Result<RawMapping, Errno> {
        if len == 0 || len % PAGE != 0 {
            return Err(Errno::EINVAL);
        }
        // SAFETY: a fresh anonymous mapping aliases no Rust memory; checked before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_LOCKED,
                -1,
                0,
            )
        };
        let map = Self::from_mmap(p, len)?;
        // SAFETY: the range is exactly the mapping we own.
        let rc = unsafe { libc::madvise(map.ptr.as_ptr().cast(), len, libc::MADV_DONTFORK) };
        if rc != 0 {
            return Err(Errno::last());
        }
        Ok(map)
    }

    fn from_mmap(p: *mut libc::c_void, len: usize) -> Result<RawMapping, Errno> {
        if p == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or(Errno::ENOMEM)?;
        Ok(RawMapping { ptr, len })
    }

    /// The start address, for ioctl arguments and guest handles.
    pub(crate) fn addr(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The mapped bytes.
    ///
    /// # Safety
    /// Every page of the mapping must be backed (accessing an unbacked privcmd page
    /// raises SIGBUS).
    pub(crate) unsafe fn bytes(&self) -> &[u8] {
        // SAFETY: ptr..ptr+len is a live mapping owned by self, readable; the caller
        // guarantees it is backed.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The mapped bytes, writable.
    ///
    /// # Safety
    /// As for [`RawMapping::bytes`].
    pub(crate) unsafe fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for RawMapping {
    fn drop(&mut self) {
        // SAFETY: we own exactly this mapping and nothing borrows it any more.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}
