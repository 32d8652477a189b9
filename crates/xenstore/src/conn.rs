//! The byte stream to xenstored: a unix socket or the xenbus character device, with
//! framing over partial reads and deadlines.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::wire::{Header, Message, HEADER_LEN, PAYLOAD_MAX};
use crate::XsError;

/// Which kind of endpoint a connection uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// xenstored's unix socket.
    Socket,
    /// The kernel's xenbus device (`/dev/xen/xenbus`): same framing, one request at a
    /// time.
    Device,
}

#[derive(Debug)]
enum Stream {
    Socket(UnixStream),
    Device(File),
}

impl Stream {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Socket(s) => s.as_fd(),
            Stream::Device(f) => f.as_fd(),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Socket(s) => s.read(buf),
            Stream::Device(f) => f.read(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        // `write_all` retries on EINTR and continues after short writes.
        match self {
            Stream::Socket(s) => s.write_all(buf),
            Stream::Device(f) => f.write_all(buf),
        }
    }
}

/// A framed connection to xenstored.
#[derive(Debug)]
pub struct Conn {
    stream: Stream,
    path: PathBuf,
    rbuf: Vec<u8>,
}

impl Conn {
    /// Open `path`: a unix socket is connected to, anything else (the xenbus character
    /// device) is opened read-write.
    pub fn open(path: &Path) -> io::Result<Conn> {
        let meta = std::fs::metadata(path)?;
        let stream = if meta.file_type().is_socket() {
            Stream::Socket(UnixStream::connect(path)?)
        } else {
            Stream::Device(OpenOptions::new().read(true).write(true).open(path)?)
        };
        Ok(Conn {
            stream,
            path: path.to_path_buf(),
            rbuf: Vec::with_capacity(HEADER_LEN + PAYLOAD_MAX),
        })
    }

    /// The socket or device path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The kind of endpoint.
    pub fn transport(&self) -> Transport {
        match self.stream {
            Stream::Socket(_) => Transport::Socket,
            Stream::Device(_) => Transport::Device,
        }
    }

    /// Send one whole message in a single write (the xenbus device wants each message
    /// in one piece).
    pub fn send(&mut self, msg: &Message) -> Result<(), XsError> {
        self.write_bytes(&msg.to_bytes())
    }

    /// Send `msgs` in order. Over the socket they go in one write, so xenstored finds
    /// them all at once; the xenbus device gets one write per message, as it wants.
    pub fn send_all(&mut self, msgs: &[Message]) -> Result<(), XsError> {
        match self.stream {
            Stream::Socket(_) => {
                let bytes: Vec<u8> = msgs.iter().flat_map(Message::to_bytes).collect();
                self.write_bytes(&bytes)
            }
            Stream::Device(_) => msgs.iter().try_for_each(|m| self.send(m)),
        }
    }

    fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), XsError> {
        self.stream.write_all(bytes).map_err(|source| {
            if source.kind() == io::ErrorKind::BrokenPipe {
                XsError::Closed
            } else {
                XsError::Io {
                    what: "write",
                    path: self.path.clone(),
                    source,
                }
            }
        })
    }

    /// The next whole message, waiting until `deadline` (`None`: forever). `Ok(None)` when
    /// the deadline passes first; bytes of a message read so far are kept for the next
    /// call.
    pub fn recv(&mut self, deadline: Option<Instant>) -> Result<Option<Message>, XsError> {
        let mut chunk = [0u8; HEADER_LEN + PAYLOAD_MAX];
        loop {
            if let Some(msg) = Message::take_from(&mut self.rbuf)? {
                return Ok(Some(msg));
            }
            if !self.wait_readable(deadline)? {
                return Ok(None);
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(XsError::Closed),
                Ok(n) => self
                    .rbuf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(XsError::Closed)
                }
                Err(source) => {
                    return Err(XsError::Io {
                        what: "read",
                        path: self.path.clone(),
                        source,
                    })
                }
            }
        }
    }

    /// End the connection for every descriptor of it (a socket is shut down, so a wait
    /// on a duplicate descriptor wakes up too).
    pub fn shutdown(&self) {
        if let Stream::Socket(s) = &self.stream {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    /// A second descriptor for the stream, to wait on without holding the connection.
    pub fn dup_fd(&self) -> io::Result<OwnedFd> {
        self.stream.fd().try_clone_to_owned()
    }

    /// The header of a whole message already read and not yet taken, if any.
    pub fn buffered_header(&self) -> Option<Header> {
        let h = Header::decode(&self.rbuf)?;
        let len = usize::try_from(h.len).ok()?;
        (len <= PAYLOAD_MAX && self.rbuf.len() >= HEADER_LEN + len).then_some(h)
    }

    /// Take a whole message already read, without touching the stream.
    pub fn take_buffered(&mut self) -> Result<Option<Message>, XsError> {
        Message::take_from(&mut self.rbuf)
    }

    fn wait_readable(&self, deadline: Option<Instant>) -> Result<bool, XsError> {
        wait_readable(&[self.stream.fd()], deadline, &self.path).map(|r| r.is_some())
    }
}

/// Wait until one of `fds` is readable (or hung up): `Some(index)` of the first ready,
/// `None` when `deadline` passed first. `path` names the connection in errors.
pub fn wait_readable(
    fds: &[BorrowedFd<'_>],
    deadline: Option<Instant>,
    path: &Path,
) -> Result<Option<usize>, XsError> {
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Round up so a sub-millisecond remainder does not spin.
                let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut polled: Vec<PollFd<'_>> = fds
            .iter()
            .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
            .collect();
        match nix::poll::poll(&mut polled, timeout) {
            Ok(0) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(None);
                }
            }
            Ok(_) => {
                let ready = polled
                    .iter()
                    .position(|p| p.revents().is_some_and(|r| !r.is_empty()));
                if let Some(i) = ready {
                    return Ok(Some(i));
                }
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                return Err(XsError::Io {
                    what: "poll",
                    path: path.to_path_buf(),
                    source: io::Error::from(e),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::MsgType;

    #[test]
    fn send_all_over_a_socket_delivers_every_message_whole_and_in_order() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("socket");
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        let mut conn = Conn::open(&path).expect("connect");
        let (mut peer, _) = listener.accept().expect("accept");
        let msgs: Vec<Message> = (0..16u32)
            .map(|i| {
                let payload = format!("/tool/n{i}\0v{i}").into_bytes();
                Message::new(MsgType::Write, i, 7, payload).expect("message")
            })
            .collect();
        conn.send_all(&msgs).expect("send");
        drop(conn);
        let mut got = Vec::new();
        peer.read_to_end(&mut got).expect("read");
        let want: Vec<u8> = msgs.iter().flat_map(Message::to_bytes).collect();
        assert_eq!(got, want);
        let mut buf = got;
        for (i, m) in msgs.iter().enumerate() {
            let back = Message::take_from(&mut buf).expect("frame").expect("whole");
            assert_eq!(back.header.req_id, i as u32);
            assert_eq!(back.payload, m.payload);
        }
        assert!(buf.is_empty());
    }
}
