//! A small buffered reader that can hand out contiguous runs of input (a whole LZMA2 chunk)
//! and knows the offset of every byte.

use std::io::{self, Read};

use crate::error::Error;

/// Buffer size: large enough for the biggest LZMA2 chunk (64 KiB of compressed data plus
/// its header) with room to spare.
pub(crate) const BUF_SIZE: usize = 128 << 10;

pub(crate) struct Input<R> {
    reader: R,
    buf: Vec<u8>,
    /// Next unread byte in `buf`.
    pos: usize,
    /// End of valid bytes in `buf`.
    end: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    eof: bool,
}

impl<R: Read> Input<R> {
    pub(crate) fn new(reader: R) -> Self {
        Input {
            reader,
            buf: vec![0; BUF_SIZE],
            pos: 0,
            end: 0,
            base: 0,
            eof: false,
        }
    }

    /// Offset of the next unread byte.
    pub(crate) fn offset(&self) -> u64 {
        self.base.saturating_add(self.pos as u64)
    }

    /// Bytes buffered and not yet consumed.
    pub(crate) fn buffered(&self) -> &[u8] {
        self.buf.get(self.pos..self.end).unwrap_or_default()
    }

    /// True once the reader has reported end of input.
    pub(crate) fn at_eof(&self) -> bool {
        self.eof
    }

    /// Marks `n` buffered bytes as consumed (clamped to what is buffered).
    pub(crate) fn consume(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n).min(self.end);
    }

    /// Reads until at least `want` bytes (at most [`BUF_SIZE`]) are buffered or the input
    /// ends; returns how many are buffered.
    pub(crate) fn fill(&mut self, want: usize) -> Result<usize, Error> {
        let want = want.min(BUF_SIZE);
        if self.end - self.pos >= want {
            return Ok(self.end - self.pos);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.base = self.base.saturating_add(self.pos as u64);
            self.end -= self.pos;
            self.pos = 0;
        }
        while self.end < want && !self.eof {
            let Some(room) = self.buf.get_mut(self.end..) else {
                break;
            };
            match self.reader.read(room) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end = self.end.saturating_add(n).min(BUF_SIZE),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(Error::Io {
                        offset: self.base.saturating_add(self.end as u64),
                        source,
                    })
                }
            }
        }
        Ok(self.end - self.pos)
    }

    /// Fills the buffer as far as it goes (for streams without chunk sizes).
    pub(crate) fn fill_all(&mut self) -> Result<usize, Error> {
        self.fill(BUF_SIZE)
    }

    /// Exactly `n` (at most [`BUF_SIZE`]) contiguous bytes, consumed; `what` names the
    /// structure in the truncation error.
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], Error> {
        if self.fill(n)? < n {
            return Err(Error::Truncated {
                offset: self.base.saturating_add(self.end as u64),
                what,
            });
        }
        let start = self.pos;
        self.pos += n;
        self.buf.get(start..self.pos).ok_or(Error::Truncated {
            offset: self.base.saturating_add(self.end as u64),
            what,
        })
    }

    /// One byte, consumed.
    pub(crate) fn byte(&mut self, what: &'static str) -> Result<u8, Error> {
        Ok(self.take(1, what)?.first().copied().unwrap_or(0))
    }

    /// A fixed-size array, consumed.
    pub(crate) fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Error> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }
}
