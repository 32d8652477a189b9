//! Guest memory access in bounded batches of mapped pages.
//!
//! `write_guest`, `zero_guest` and `read_guest` map at most [`BATCH_PAGES`] frames at a
//! time, so memory use does not grow with the size of the access. The logic runs over a
//! [`Mapper`], which the real host implements with privcmd foreign mappings and the tests
//! with fake memory.

use crate::error::XencallError;
use crate::sys::PAGE;

/// Pages mapped at once.
pub const BATCH_PAGES: usize = 1024;

/// Something that maps guest frames into a byte window.
pub(crate) trait Mapper {
    /// A live mapping of consecutive frames.
    type Map: Window;
    /// Map `gfns` (one page each, in order) of domain `dom`.
    fn map(&self, dom: u16, gfns: &[u64]) -> Result<Self::Map, XencallError>;
}

/// A data buffer a hypercall argument points at: its bytes, and the offset in the
/// argument struct of the guest handle that must hold its address.
#[derive(Debug)]
pub(crate) struct Region<'a> {
    /// Offset of the `u64` guest handle inside the argument struct.
    pub handle_at: usize,
    /// The data; empty means a null handle. Copied in before and out after the call.
    pub data: &'a mut [u8],
}

/// How the host reaches Xen: hypercalls with their data buffers, and mappings.
pub(crate) trait Backend: Mapper {
    /// Issue hypercall `op` with argument struct `arg` (passed as `(cmd, &arg)` or, with
    /// no `cmd`, `(&arg)`; an empty `arg` is passed as a null pointer). The backend places
    /// `arg` and each region in hypercall memory, writes each region's address into `arg`
    /// at `handle_at`, and copies everything back after the call. Returns Xen's return
    /// value or error.
    ///
    /// # Safety
    /// Every field of `arg` that Xen follows as a pointer must be listed in `regions`
    /// (or be zero).
    unsafe fn call(
        &self,
        op: u64,
        cmd: Option<u64>,
        arg: &mut [u8],
        regions: &mut [Region<'_>],
    ) -> Result<i64, xen_host::Errno>;
    /// As [`Backend::call`] without a `cmd`, with scalar arguments after the struct's
    /// address: `(&arg, tail[0], tail[1], tail[2])` (mmuext_op's count, done pointer and
    /// foreign domain).
    ///
    /// # Safety
    /// As for `call`; a tail argument that Xen follows as a pointer must be zero.
    unsafe fn call_tail(
        &self,
        op: u64,
        arg: &mut [u8],
        regions: &mut [Region<'_>],
        tail: [u64; 3],
    ) -> Result<i64, xen_host::Errno>;
    /// Map `num` frames of a domain resource from frame `idx`.
    fn map_resource(
        &self,
        dom: u16,
        kind: u16,
        id: u32,
        idx: u32,
        num: usize,
    ) -> Result<Self::Map, XencallError>;
    /// Hypercalls issued so far.
    fn hypercall_count(&self) -> u64;
    /// Nanoseconds spent inside them so far; 0 for a backend that does not time them.
    fn hypercall_nanos(&self) -> u64 {
        0
    }
}

/// The bytes of a mapping.
pub(crate) trait Window {
    /// The mapped bytes, `PAGE` per frame.
    fn window(&mut self) -> &mut [u8];
}

impl Window for crate::privcmd::ForeignMap {
    fn window(&mut self) -> &mut [u8] {
        self.bytes_mut()
    }
}

/// What to do in each mapped piece.
enum Access<'a> {
    Write(&'a [u8]),
    Zero,
    Read(&'a mut Vec<u8>),
}

fn range_error(what: &str, dom: u16, gpa: u64, len: u64) -> XencallError {
    XencallError::Other {
        op: format!("{what} dom {dom} at {gpa:#x}+{len:#x}"),
        message: "address range overflows the guest physical address space".into(),
    }
}

/// Run `access` over `[gpa, gpa + len)` of `dom`, `batch` pages at a time.
fn run<M: Mapper>(
    mapper: &M,
    what: &str,
    dom: u16,
    gpa: u64,
    len: u64,
    batch: usize,
    mut access: Access<'_>,
) -> Result<(), XencallError> {
    if len == 0 {
        return Ok(());
    }
    let page = PAGE as u64;
    let end = gpa
        .checked_add(len)
        .ok_or_else(|| range_error(what, dom, gpa, len))?;
    let first = gpa / page;
    let last = (end - 1) / page;
    let batch = batch.max(1) as u64;
    let mut gfn = first;
    let mut done: usize = 0; // bytes of the access handled so far
    let mut gfns = Vec::with_capacity(batch.min(last - first + 1) as usize);
    while gfn <= last {
        let n = batch.min(last - gfn + 1);
        gfns.clear();
        gfns.extend(gfn..gfn + n);
        let mut map = mapper.map(dom, &gfns)?;
        let win = map.window();
        // Window offsets of this batch's part of the access.
        let batch_start = gfn * page;
        let from = gpa.max(batch_start) - batch_start;
        let to = end.min(batch_start.saturating_add(n.saturating_mul(page))) - batch_start;
        let piece = win
            .get_mut(from as usize..to as usize)
            .ok_or_else(|| XencallError::Other {
                op: format!("{what} dom {dom}"),
                message: format!("mapping of {n} pages is only {} bytes", to - from),
            })?;
        done += apply(&mut access, piece, done);
        gfn += n;
    }
    Ok(())
}

/// Do `access` on `piece`, which holds the access's bytes from `done` on; returns the
/// piece's length.
fn apply(access: &mut Access<'_>, piece: &mut [u8], done: usize) -> usize {
    let plen = piece.len();
    match access {
        Access::Write(data) => {
            let src = data.get(done..).unwrap_or(&[]);
            let src = src.get(..plen).unwrap_or(src);
            piece
                .get_mut(..src.len())
                .unwrap_or(&mut [])
                .copy_from_slice(src);
        }
        Access::Zero => piece.fill(0),
        Access::Read(out) => out.extend_from_slice(piece),
    }
    plen
}

/// Run `access` over the whole frames `frames` of `dom` (machine frames of a PV
/// domain), `batch` frames at a time; the access's bytes run from byte 0 of the first.
fn run_frames<M: Mapper>(
    mapper: &M,
    what: &str,
    dom: u16,
    frames: &[u64],
    batch: usize,
    mut access: Access<'_>,
) -> Result<(), XencallError> {
    let mut done = 0usize;
    for chunk in frames.chunks(batch.max(1)) {
        let mut map = mapper.map(dom, chunk)?;
        let want = chunk.len() * PAGE;
        let win = map.window();
        let got = win.len();
        let piece = win.get_mut(..want).ok_or_else(|| XencallError::Other {
            op: format!("{what} dom {dom}"),
            message: format!("mapping of {} frames is only {got} bytes", chunk.len()),
        })?;
        done += apply(&mut access, piece, done);
    }
    Ok(())
}

/// Copy `data` into `dom`'s frames `frames`, from byte 0 of the first on; only the
/// frames `data` reaches are mapped.
pub(crate) fn write_frames<M: Mapper>(
    m: &M,
    dom: u16,
    frames: &[u64],
    data: &[u8],
    batch: usize,
) -> Result<(), XencallError> {
    let used = frames
        .get(..data.len().div_ceil(PAGE))
        .ok_or_else(|| XencallError::Other {
            op: format!("write_frames dom {dom}"),
            message: format!("{} bytes do not fit in {} frames", data.len(), frames.len()),
        })?;
    run_frames(m, "write_frames", dom, used, batch, Access::Write(data))
}

/// Zero `dom`'s frames `frames`.
pub(crate) fn zero_frames<M: Mapper>(
    m: &M,
    dom: u16,
    frames: &[u64],
    batch: usize,
) -> Result<(), XencallError> {
    run_frames(m, "zero_frames", dom, frames, batch, Access::Zero)
}

/// Read `dom`'s frames `frames`, whole.
pub(crate) fn read_frames<M: Mapper>(
    m: &M,
    dom: u16,
    frames: &[u64],
    batch: usize,
) -> Result<Vec<u8>, XencallError> {
    let len = frames.len().saturating_mul(PAGE);
    let mut out = Vec::new();
    out.try_reserve_exact(len)
        .map_err(|_| XencallError::Other {
            op: format!("read_frames dom {dom}"),
            message: format!("cannot allocate {len} bytes"),
        })?;
    run_frames(m, "read_frames", dom, frames, batch, Access::Read(&mut out))?;
    Ok(out)
}

/// Copy `data` into `dom`'s memory at `gpa`.
pub(crate) fn write<M: Mapper>(
    m: &M,
    dom: u16,
    gpa: u64,
    data: &[u8],
    batch: usize,
) -> Result<(), XencallError> {
    run(
        m,
        "write_guest",
        dom,
        gpa,
        data.len() as u64,
        batch,
        Access::Write(data),
    )
}

/// Zero `len` bytes of `dom`'s memory at `gpa`.
pub(crate) fn zero<M: Mapper>(
    m: &M,
    dom: u16,
    gpa: u64,
    len: u64,
    batch: usize,
) -> Result<(), XencallError> {
    run(m, "zero_guest", dom, gpa, len, batch, Access::Zero)
}

/// Read `len` bytes of `dom`'s memory at `gpa`.
pub(crate) fn read<M: Mapper>(
    m: &M,
    dom: u16,
    gpa: u64,
    len: usize,
    batch: usize,
) -> Result<Vec<u8>, XencallError> {
    let mut out = Vec::new();
    out.try_reserve_exact(len)
        .map_err(|_| XencallError::Other {
            op: format!("read_guest dom {dom} at {gpa:#x}"),
            message: format!("cannot allocate {len} bytes"),
        })?;
    run(
        m,
        "read_guest",
        dom,
        gpa,
        len as u64,
        batch,
        Access::Read(&mut out),
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::rc::Rc;
    use xen_host::Errno;

    /// Guest memory as a map of pages; mappings copy pages out and back on drop.
    #[derive(Default)]
    struct Fake {
        pages: Rc<RefCell<BTreeMap<u64, Vec<u8>>>>,
        batches: RefCell<Vec<usize>>,
        missing: Option<u64>,
    }

    struct FakeMap {
        pages: Rc<RefCell<BTreeMap<u64, Vec<u8>>>>,
        gfns: Vec<u64>,
        buf: Vec<u8>,
    }

    impl Window for FakeMap {
        fn window(&mut self) -> &mut [u8] {
            &mut self.buf
        }
    }

    impl Drop for FakeMap {
        fn drop(&mut self) {
            let mut pages = self.pages.borrow_mut();
            for (i, gfn) in self.gfns.iter().enumerate() {
                pages.insert(*gfn, self.buf[i * PAGE..(i + 1) * PAGE].to_vec());
            }
        }
    }

    impl Mapper for Fake {
        type Map = FakeMap;
        fn map(&self, _dom: u16, gfns: &[u64]) -> Result<FakeMap, XencallError> {
            self.batches.borrow_mut().push(gfns.len());
            if let Some(bad) = self.missing.filter(|g| gfns.contains(g)) {
                return Err(XencallError::Pages {
                    op: "map".into(),
                    first_gfn: bad,
                    first_errno: Errno::EFAULT,
                    failed: 1,
                });
            }
            let pages = self.pages.borrow();
            let mut buf = Vec::new();
            for g in gfns {
                buf.extend(pages.get(g).cloned().unwrap_or_else(|| vec![0xee; PAGE]));
            }
            Ok(FakeMap {
                pages: self.pages.clone(),
                gfns: gfns.to_vec(),
                buf,
            })
        }
    }

    #[test]
    fn unaligned_write_then_read_back() {
        let fake = Fake::default();
        let data: Vec<u8> = (0..3 * PAGE + 100).map(|i| (i % 251) as u8).collect();
        let gpa = 0x10_0000 + 123;
        write(&fake, 1, gpa, &data, 2).unwrap();
        // 3*4096+100 bytes starting 123 into a page touch 4 pages: batches of 2, 2.
        assert_eq!(*fake.batches.borrow(), vec![2, 2]);
        let back = read(&fake, 1, gpa, data.len(), 3).unwrap();
        assert_eq!(back, data);
        // Bytes around the write keep what the pages held.
        let pages = fake.pages.borrow();
        assert_eq!(pages[&0x100][122], 0xee);
        assert_eq!(pages[&0x100][123], 0);
    }

    #[test]
    fn zero_spans_batches_and_leaves_neighbours() {
        let fake = Fake::default();
        zero(&fake, 1, 4096 * 10 + 1, 4096 * 5, 1024).unwrap();
        assert_eq!(*fake.batches.borrow(), vec![6]);
        let pages = fake.pages.borrow();
        assert_eq!(pages[&10][0], 0xee);
        assert!(pages[&10][1..].iter().all(|&b| b == 0));
        assert!(pages[&15][..1].iter().all(|&b| b == 0));
        assert!(pages[&15][1..].iter().all(|&b| b == 0xee));
    }

    #[test]
    fn batches_stay_bounded() {
        let fake = Fake::default();
        zero(
            &fake,
            1,
            0,
            (BATCH_PAGES as u64 * 3 + 1) * PAGE as u64,
            BATCH_PAGES,
        )
        .unwrap();
        assert_eq!(
            *fake.batches.borrow(),
            vec![BATCH_PAGES, BATCH_PAGES, BATCH_PAGES, 1]
        );
    }

    #[test]
    fn frames_are_mapped_by_list_in_batches() {
        let fake = Fake::default();
        let frames = [0x9_0007, 0x9_0003, 0x9_0005];
        let data: Vec<u8> = (0..PAGE + 5).map(|i| (i % 253) as u8).collect();
        write_frames(&fake, 1, &frames, &data, 1).unwrap();
        // Only the two frames the data reaches are mapped, one per batch.
        assert_eq!(*fake.batches.borrow(), vec![1, 1]);
        {
            let pages = fake.pages.borrow();
            assert_eq!(&pages[&0x9_0007][..], &data[..PAGE]);
            assert_eq!(&pages[&0x9_0003][..5], &data[PAGE..]);
            assert_eq!(pages[&0x9_0003][5], 0xee, "the rest of the frame is kept");
            assert!(!pages.contains_key(&0x9_0005));
        }
        let back = read_frames(&fake, 1, &frames, 2).unwrap();
        assert_eq!(back.len(), 3 * PAGE);
        assert_eq!(&back[..data.len()], &data[..]);
        zero_frames(&fake, 1, &frames[1..], 2).unwrap();
        assert!(read_frames(&fake, 1, &frames[1..], 8)
            .unwrap()
            .iter()
            .all(|&b| b == 0));
        let e = write_frames(&fake, 1, &frames[..1], &data, 4).unwrap_err();
        assert!(e.to_string().contains("do not fit"), "{e}");
    }

    #[test]
    fn errors_and_edges() {
        let fake = Fake {
            missing: Some(0x201),
            ..Default::default()
        };
        let e = write(&fake, 1, 0x200000, &[1u8; 8192], 16).err().unwrap();
        assert!(e.to_string().contains("gfn 0x201"), "{e}");
        // Empty accesses map nothing.
        write(&fake, 1, 0x200000, &[], 16).unwrap();
        assert_eq!(read(&fake, 1, 0, 0, 16).unwrap(), Vec::<u8>::new());
        // Overflowing ranges are refused, not wrapped.
        let e = zero(&fake, 1, u64::MAX - 10, 100, 16).err().unwrap();
        assert!(e.to_string().contains("overflows"), "{e}");
    }
}
