//! Linux loop devices (include/uapi/linux/loop.h): the four ioctls rxl's native hotplug
//! path needs, behind safe functions on open files. Nothing here decides anything; the
//! checks live in the `hostdev` crate.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd};

/// The block major of loop devices (`LOOP_MAJOR`).
pub const LOOP_MAJOR: u64 = 7;
/// `LO_FLAGS_READ_ONLY`: the device refuses writes.
pub const LO_FLAGS_READ_ONLY: u32 = 1;
/// `LO_FLAGS_AUTOCLEAR`: the device lets go of its file when its last opener closes it.
pub const LO_FLAGS_AUTOCLEAR: u32 = 4;

/// `LO_NAME_SIZE`.
const NAME_SIZE: usize = 64;
/// `LO_KEY_SIZE`.
const KEY_SIZE: usize = 32;

/// `LOOP_CLR_FD`.
const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
/// `LOOP_GET_STATUS64`.
const LOOP_GET_STATUS64: libc::c_ulong = 0x4C05;
/// `LOOP_CONFIGURE` (Linux 5.8).
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
/// `LOOP_CTL_GET_FREE`, on /dev/loop-control.
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;

/// `struct loop_info64`.
#[repr(C)]
#[derive(Clone, Copy)]
struct LoopInfo64 {
    device: u64,
    inode: u64,
    rdevice: u64,
    offset: u64,
    sizelimit: u64,
    number: u32,
    encrypt_type: u32,
    encrypt_key_size: u32,
    flags: u32,
    file_name: [u8; NAME_SIZE],
    crypt_name: [u8; NAME_SIZE],
    encrypt_key: [u8; KEY_SIZE],
    init: [u64; 2],
}

/// `struct loop_config`.
#[repr(C)]
#[derive(Clone, Copy)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

const _: () = assert!(size_of::<LoopInfo64>() == 232);
const _: () = assert!(size_of::<LoopConfig>() == 304);

impl LoopInfo64 {
    const ZERO: LoopInfo64 = LoopInfo64 {
        device: 0,
        inode: 0,
        rdevice: 0,
        offset: 0,
        sizelimit: 0,
        number: 0,
        encrypt_type: 0,
        encrypt_key_size: 0,
        flags: 0,
        file_name: [0; NAME_SIZE],
        crypt_name: [0; NAME_SIZE],
        encrypt_key: [0; KEY_SIZE],
        init: [0; 2],
    };
}

/// What a bound loop device reports about itself (`LOOP_GET_STATUS64`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoopStatus {
    /// The device number of the filesystem holding the backing file (as `st_dev`).
    pub backing_dev: u64,
    /// The backing file's inode number.
    pub backing_inode: u64,
    /// The loop device's number (N of /dev/loopN).
    pub number: u32,
    /// `LO_FLAGS_*`.
    pub flags: u32,
    /// The name given at configuration (at most 63 bytes; informational only).
    pub file_name: Vec<u8>,
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `LOOP_CTL_GET_FREE` on an open /dev/loop-control: the number of a free loop device,
/// which the kernel creates if needed. Another process may take it before the caller
/// configures it (`configure` then fails with EBUSY).
pub fn get_free(control: &impl AsFd) -> io::Result<u32> {
    // SAFETY: LOOP_CTL_GET_FREE takes no argument and only returns a number; the fd is
    // open for the duration of the call (borrowed).
    let n = check(unsafe { libc::ioctl(control.as_fd().as_raw_fd(), LOOP_CTL_GET_FREE) })?;
    u32::try_from(n).map_err(|_| io::Error::other(format!("loop-control returned {n}")))
}

/// `LOOP_CONFIGURE`: bind the open loop device `dev` to the open file `backing` with
/// `flags` (`LO_FLAGS_*`), naming it `file_name` (cut to 63 bytes). EBUSY when the
/// device is already bound.
pub fn configure(
    dev: &impl AsFd,
    backing: &impl AsFd,
    flags: u32,
    file_name: &[u8],
) -> io::Result<()> {
    let fd = backing.as_fd().as_raw_fd();
    let mut info = LoopInfo64::ZERO;
    info.flags = flags;
    let n = file_name.len().min(NAME_SIZE - 1);
    info.file_name[..n].copy_from_slice(&file_name[..n]);
    let config = LoopConfig {
        fd: u32::try_from(fd).map_err(|_| io::Error::other("negative file descriptor"))?,
        block_size: 0,
        info,
        reserved: [0; 8],
    };
    // SAFETY: the kernel reads a `struct loop_config` (layout pinned above) from a
    // pointer to a live local; both fds are borrowed and open during the call.
    check(unsafe {
        libc::ioctl(
            dev.as_fd().as_raw_fd(),
            LOOP_CONFIGURE,
            std::ptr::from_ref(&config),
        )
    })?;
    Ok(())
}

/// `LOOP_CLR_FD`: unbind the loop device (deferred by the kernel until its last opener
/// closes it when others still hold it open). ENXIO when it is not bound.
pub fn clear(dev: &impl AsFd) -> io::Result<()> {
    // SAFETY: LOOP_CLR_FD takes no argument; the fd is borrowed and open.
    check(unsafe { libc::ioctl(dev.as_fd().as_raw_fd(), LOOP_CLR_FD, 0) })?;
    Ok(())
}

/// `LOOP_GET_STATUS64`. ENXIO when the device is not bound.
pub fn status(dev: &impl AsFd) -> io::Result<LoopStatus> {
    let mut info = LoopInfo64::ZERO;
    // SAFETY: the kernel writes one `struct loop_info64` (layout pinned above) through a
    // pointer to a live, writable local; the fd is borrowed and open.
    check(unsafe {
        libc::ioctl(
            dev.as_fd().as_raw_fd(),
            LOOP_GET_STATUS64,
            std::ptr::from_mut(&mut info),
        )
    })?;
    let len = info
        .file_name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(NAME_SIZE);
    Ok(LoopStatus {
        backing_dev: info.device,
        backing_inode: info.inode,
        number: info.number,
        flags: info.flags,
        file_name: info.file_name[..len].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctls_on_something_that_is_not_a_loop_device_fail_cleanly() {
        let f = std::fs::File::open("/dev/null").expect("open /dev/null");
        assert!(get_free(&f).is_err());
        assert!(status(&f).is_err());
        assert!(clear(&f).is_err());
        assert!(configure(&f, &f, LO_FLAGS_READ_ONLY, b"x").is_err());
    }
}
