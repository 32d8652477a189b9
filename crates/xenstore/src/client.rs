//! [`XsClient`]: a xenstore connection implementing [`xen_host::Store`].

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use xen_host::{DomId, Errno, Gfn, Perm, Store, StoreOp, TxId, WatchEvent};

use crate::conn::{Conn, Transport};
use crate::wire::{self, Message, MsgType, Payload};
use crate::XsError;

/// The environment variable naming the socket or device to use instead of the defaults.
pub const ENV_PATH: &str = "XENSTORED_PATH";
/// The environment variable naming xenstored's run directory (`<dir>/socket`).
pub const ENV_RUNDIR: &str = "XENSTORED_RUNDIR";
/// xenstored's socket paths, in the order tried.
pub const SOCKET_PATHS: [&str; 2] = ["/run/xenstored/socket", "/var/run/xenstored/socket"];
/// The kernel's xenbus devices, in the order tried.
pub const DEVICE_PATHS: [&str; 2] = ["/dev/xen/xenbus", "/proc/xen/xenbus"];

/// Requests [`Store::apply_ops`] sends before reading their replies: well under
/// xenstored's default limit of outstanding requests per connection (20), and a few KiB
/// of socket buffer.
const PIPELINE_WINDOW: usize = 16;

/// How many times a directory listing restarts because the node changed under it.
const DIRECTORY_PART_RESTARTS: usize = 32;

#[derive(Debug)]
struct State {
    conn: Option<Conn>,
    /// Why `conn` was dropped.
    broken: Option<String>,
    events: VecDeque<WatchEvent>,
    /// A second descriptor of `conn`, for waiting on events without the lock.
    poll_fd: Option<Arc<OwnedFd>>,
    next_req_id: u32,
    reply_timeout: Option<Duration>,
}

/// A connection to xenstored.
///
/// One request is in flight at a time: every call takes the connection's lock, sends
/// its request and reads until the matching reply. Watch events that arrive meanwhile
/// are queued and handed out by [`Store::next_watch_event`].
///
/// xenstored fires every new watch once as soon as it is registered, so the first event
/// after [`Store::watch`] is that initial one (its path is the watched path); callers
/// check the state they watch rather than treat an event as proof of change.
///
/// After a failure that leaves the byte stream out of step (a dropped connection, an
/// oversize or unmatched reply, a reply timeout) the connection is closed and every later
/// call fails with [`XsError::Broken`]; open a new client to carry on. An error reply
/// from xenstored (`EACCES`, `ENOENT`, ...) leaves the connection usable.
#[derive(Debug)]
pub struct XsClient {
    path: PathBuf,
    transport: Transport,
    state: Mutex<State>,
    /// A thread waiting for events sleeps on the connection and on `wake_rx`; a thread
    /// that queued events (or closed the connection) writes a byte to `wake_tx`.
    wake_rx: UnixStream,
    wake_tx: UnixStream,
    /// Requests sent (for profiles).
    requests: std::sync::atomic::AtomicU64,
}

impl XsClient {
    /// Connect the way libxenstore does: `$XENSTORED_PATH` alone when set; otherwise
    /// `$XENSTORED_RUNDIR/socket` (when set) or `/run/xenstored/socket` then
    /// `/var/run/xenstored/socket`, then the xenbus device.
    pub fn open() -> Result<XsClient, XsError> {
        if let Some(path) = std::env::var_os(ENV_PATH) {
            return XsClient::open_path(PathBuf::from(path));
        }
        let mut candidates: Vec<PathBuf> = Vec::new();
        match std::env::var_os(ENV_RUNDIR) {
            Some(dir) => candidates.push(PathBuf::from(dir).join("socket")),
            None => candidates.extend(SOCKET_PATHS.iter().map(PathBuf::from)),
        }
        candidates.extend(DEVICE_PATHS.iter().map(PathBuf::from));
        XsClient::open_first(&candidates)
    }

    /// Connect to the first of `paths` that opens.
    pub fn open_first(paths: &[PathBuf]) -> Result<XsClient, XsError> {
        let mut tried = Vec::new();
        let mut last = std::io::Error::from(std::io::ErrorKind::NotFound);
        for path in paths {
            match Conn::open(path) {
                Ok(conn) => return XsClient::from_conn(conn),
                Err(e) => {
                    tried.push(format!("{}: {e}", path.display()));
                    last = e;
                }
            }
        }
        Err(XsError::Open {
            tried: format!(
                "tried {} (is xenstored running, or the xenbus device present? \
                 set {ENV_PATH} to choose another)",
                tried.join("; ")
            ),
            source: last,
        })
    }

    /// Connect to one socket or device.
    pub fn open_path(path: impl AsRef<Path>) -> Result<XsClient, XsError> {
        let path = path.as_ref();
        let conn = Conn::open(path).map_err(|source| XsError::Open {
            tried: format!("{}", path.display()),
            source,
        })?;
        XsClient::from_conn(conn)
    }

    fn from_conn(conn: Conn) -> Result<XsClient, XsError> {
        let io_err = |what: &'static str| {
            let path = conn.path().to_path_buf();
            move |source| XsError::Io { what, path, source }
        };
        let poll_fd = conn.dup_fd().map_err(io_err("dup"))?;
        let (wake_rx, wake_tx) = UnixStream::pair().map_err(io_err("socketpair"))?;
        wake_rx
            .set_nonblocking(true)
            .map_err(io_err("set_nonblocking"))?;
        wake_tx
            .set_nonblocking(true)
            .map_err(io_err("set_nonblocking"))?;
        Ok(XsClient {
            path: conn.path().to_path_buf(),
            transport: conn.transport(),
            state: Mutex::new(State {
                conn: Some(conn),
                broken: None,
                events: VecDeque::new(),
                poll_fd: Some(Arc::new(poll_fd)),
                next_req_id: 1,
                reply_timeout: None,
            }),
            wake_rx,
            wake_tx,
            requests: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The socket or device in use.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Socket or device.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Give up on a reply after `timeout` (`None`, the default: wait forever). A timeout
    /// closes the connection, since the late reply would put it out of step.
    pub fn set_reply_timeout(&self, timeout: Option<Duration>) {
        self.lock().reply_timeout = timeout;
    }

    /// Watch events received and not yet handed out.
    pub fn pending_events(&self) -> usize {
        self.lock().events.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave `State` half-updated in a way that
        // matters more than the connection being marked broken, so carry on.
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Send one request and return its reply payload. An `XS_ERROR` reply becomes
    /// [`XsError::Daemon`]. Watch events read meanwhile are queued.
    pub fn request(&self, kind: MsgType, tx: TxId, payload: Vec<u8>) -> Result<Vec<u8>, XsError> {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut st = self.lock();
        let r = st.request(&self.path, kind, tx, payload);
        let wake = !st.events.is_empty() || st.conn.is_none();
        drop(st);
        if wake {
            self.wake_waiter();
        }
        r
    }

    /// Wake a thread sleeping in `next_watch_event`. A full pipe means a wake-up is
    /// already pending, so errors are of no consequence.
    fn wake_waiter(&self) {
        let _ = (&self.wake_tx).write(&[1]);
    }

    fn drain_wakeups(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.wake_rx).read(&mut buf), Ok(n) if n > 0) {}
    }

    /// Carry out `ops` in `tx`, [`PIPELINE_WINDOW`] requests per round trip over the
    /// socket (one over the xenbus device); the first
    /// failure (by position) is returned, once the window it is in has been read.
    fn apply_ops_inner(&self, tx: TxId, ops: &[StoreOp<'_>]) -> Result<(), (usize, XsError)> {
        // Over the xenbus device, one request at a time: in the rig, a transaction's
        // writes pipelined through /dev/xen/xenbus were acknowledged but a window of
        // them was missing after the commit; over the socket they all hold.
        let size = match self.transport {
            Transport::Socket => PIPELINE_WINDOW,
            Transport::Device => 1,
        };
        for (w, window) in ops.chunks(size).enumerate() {
            let base = w * size;
            let mut reqs = Vec::with_capacity(window.len());
            for (i, op) in window.iter().enumerate() {
                let req = match *op {
                    StoreOp::Write(path, value) => {
                        wire::write_request(path, value).map(|p| (MsgType::Write, p))
                    }
                    StoreOp::Mkdir(path) => wire::path_request(path).map(|p| (MsgType::Mkdir, p)),
                    StoreOp::SetPerms(path, perms) => {
                        wire::set_perms_request(path, perms).map(|p| (MsgType::SetPerms, p))
                    }
                    StoreOp::Rm(path) => wire::path_request(path).map(|p| (MsgType::Rm, p)),
                };
                let (kind, payload) = req.map_err(|e| (base + i, e))?;
                reqs.push((kind, tx, payload));
            }
            self.requests
                .fetch_add(reqs.len() as u64, std::sync::atomic::Ordering::Relaxed);
            let mut st = self.lock();
            let r = st.pipeline(&self.path, reqs);
            let wake = !st.events.is_empty() || st.conn.is_none();
            drop(st);
            if wake {
                self.wake_waiter();
            }
            let replies = r.map_err(|e| (base, e))?;
            for (i, (reply, op)) in replies.into_iter().zip(window).enumerate() {
                let checked = match op {
                    StoreOp::Rm(_) => rm_reply(reply),
                    _ => reply.and_then(|r| wire::expect_ok(&r, "WRITE/MKDIR/SET_PERMS")),
                };
                checked.map_err(|e| (base + i, e))?;
            }
        }
        Ok(())
    }

    /// [`XsClient::request`] with a payload that may have failed validation.
    fn call(
        &self,
        kind: MsgType,
        tx: TxId,
        payload: Result<Vec<u8>, XsError>,
    ) -> Result<Vec<u8>, XsError> {
        self.request(kind, tx, payload?)
    }

    /// The children of `path`, through `XS_DIRECTORY_PART` when the list does not fit in
    /// one reply.
    fn directory_inner(&self, tx: TxId, path: &str) -> Result<Vec<String>, XsError> {
        match self.request(MsgType::Directory, tx, wire::path_request(path)?) {
            Ok(reply) => wire::parse_directory(&reply),
            Err(XsError::Daemon { errno, .. }) if errno == Errno::E2BIG => {
                self.directory_parts(tx, path)
            }
            Err(e) => Err(e),
        }
    }

    fn directory_parts(&self, tx: TxId, path: &str) -> Result<Vec<String>, XsError> {
        wire::validate_path(path)?;
        'restart: for _ in 0..DIRECTORY_PART_RESTARTS {
            let mut children = Vec::new();
            let mut offset = 0usize;
            let mut generation: Option<String> = None;
            loop {
                let payload = Payload::new()
                    .arg(path)
                    .arg(&offset.to_string())
                    .into_bytes();
                let reply = self.request(MsgType::DirectoryPart, tx, payload)?;
                let part = wire::parse_directory_part(&reply)?;
                match &generation {
                    None => generation = Some(part.generation.clone()),
                    Some(g) if *g != part.generation => continue 'restart,
                    Some(_) => {}
                }
                children.extend(part.children);
                if part.last {
                    return Ok(children);
                }
                if part.consumed == 0 {
                    return Err(XsError::Protocol(
                        "DIRECTORY_PART reply made no progress".into(),
                    ));
                }
                offset = offset
                    .checked_add(part.consumed)
                    .ok_or_else(|| XsError::Protocol("DIRECTORY_PART offset overflows".into()))?;
            }
        }
        Err(XsError::Daemon {
            errno: Errno::EAGAIN,
            name: format!(
                "EAGAIN (the children of {path} kept changing over {DIRECTORY_PART_RESTARTS} listings)"
            ),
        })
    }

    /// The next watch event, waiting at most `timeout`. The connection is locked only
    /// to read; while nothing arrives the wait happens on a second descriptor, so other
    /// threads can make requests meanwhile (and queue the events they read).
    fn next_event_inner(&self, timeout: Option<Duration>) -> Result<Option<WatchEvent>, XsError> {
        // A timeout too large to represent is as good as none.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            // Before looking at the queue, so an event queued after the look still
            // leaves a wake-up to find.
            self.drain_wakeups();
            let fd = {
                let mut st = self.lock();
                if let Some(ev) = st.take_event(&self.path)? {
                    return Ok(Some(ev));
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(None);
                }
                st.poll_fd(&self.path)?
            };
            // Readable or not, look again under the lock: another thread may have
            // queued an event or taken the bytes.
            let fds = [fd.as_fd(), self.wake_rx.as_fd()];
            if crate::conn::wait_readable(&fds, deadline, &self.path)? == Some(0) {
                let mut st = self.lock();
                let r = st.read_available(&self.path);
                let wake = !st.events.is_empty() || st.conn.is_none();
                drop(st);
                if wake {
                    // Another waiter may want the rest of the queue.
                    self.wake_waiter();
                }
                r?;
            }
        }
    }

    /// `XS_RESET_WATCHES`: drop every watch of this connection (and the queued events).
    pub fn reset_watches(&self) -> Result<(), XsError> {
        let mut st = self.lock();
        let reply = st.request(
            &self.path,
            MsgType::ResetWatches,
            TxId::NONE,
            b"\0".to_vec(),
        )?;
        st.events.clear();
        wire::expect_ok(&reply, "RESET_WATCHES")
    }

    /// `XS_SET_TARGET`: let `dom` act on `target`'s nodes (a device model's domain).
    pub fn set_target(&self, dom: DomId, target: DomId) -> Result<(), XsError> {
        let payload = Payload::new()
            .arg(&dom.0.to_string())
            .arg(&target.0.to_string())
            .into_bytes();
        let reply = self.request(MsgType::SetTarget, TxId::NONE, payload)?;
        wire::expect_ok(&reply, "SET_TARGET")
    }

    /// `XS_RESUME`: clear a domain's shutdown flag in xenstored.
    pub fn resume(&self, dom: DomId) -> Result<(), XsError> {
        let reply = self.request(MsgType::Resume, TxId::NONE, wire::domid_request(dom))?;
        wire::expect_ok(&reply, "RESUME")
    }

    /// `XS_CONTROL`: a xenstored control command (`["log", "on"]`, `["quota"]`...), its
    /// reply as sent.
    pub fn control(&self, args: &[&str]) -> Result<Vec<u8>, XsError> {
        let mut p = Payload::new();
        for arg in args {
            if arg.contains('\0') {
                return Err(XsError::InvalidArgument(format!(
                    "control argument {arg:?} contains a NUL byte"
                )));
            }
            p = p.arg(arg);
        }
        self.request(MsgType::Control, TxId::NONE, p.into_bytes())
    }
}

impl State {
    fn fail(&mut self, err: &XsError) {
        tracing::debug!(error = %err, "closing the xenstore connection");
        if let Some(conn) = self.conn.take() {
            conn.shutdown();
        }
        self.poll_fd = None;
        self.broken = Some(err.to_string());
    }

    fn conn(&mut self, path: &Path) -> Result<&mut Conn, XsError> {
        let reason = self.broken.clone();
        self.conn.as_mut().ok_or_else(|| XsError::Broken {
            path: path.to_path_buf(),
            reason: reason.unwrap_or_else(|| "unknown".into()),
        })
    }

    fn request(
        &mut self,
        path: &Path,
        kind: MsgType,
        tx: TxId,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, XsError> {
        let req_id = self.next_req_id;
        self.next_req_id = self.next_req_id.wrapping_add(1);
        let msg = Message::new(kind, req_id, tx.0, payload)?;
        let deadline = match self.reply_timeout {
            Some(t) => Some(Instant::now().checked_add(t).ok_or_else(|| {
                XsError::InvalidArgument(format!("reply timeout {t:?} is too large"))
            })?),
            None => None,
        };
        let timeout = self.reply_timeout;
        let result = self.exchange(path, &msg, deadline);
        match result {
            Ok(Some(reply)) => Ok(reply),
            Ok(None) => {
                let err = XsError::Timeout(timeout.unwrap_or_default());
                self.fail(&err);
                Err(err)
            }
            Err(err @ XsError::Daemon { .. }) => Err(err),
            Err(err @ XsError::Broken { .. }) => Err(err),
            Err(err) => {
                self.fail(&err);
                Err(err)
            }
        }
    }

    /// Send every request of `reqs` (one write each, as the xenbus device takes one
    /// message per write), then read their replies in order: one round trip for all.
    /// The outer error is the connection's (it is then closed); the inner ones are
    /// xenstored's answers to single requests, which leave the connection usable.
    fn pipeline(
        &mut self,
        path: &Path,
        reqs: Vec<(MsgType, TxId, Vec<u8>)>,
    ) -> Result<Vec<Result<Vec<u8>, XsError>>, XsError> {
        let result = self.pipeline_inner(path, reqs);
        match result {
            Err(err @ XsError::Broken { .. }) => Err(err),
            Err(err) => {
                self.fail(&err);
                Err(err)
            }
            ok => ok,
        }
    }

    fn pipeline_inner(
        &mut self,
        path: &Path,
        reqs: Vec<(MsgType, TxId, Vec<u8>)>,
    ) -> Result<Vec<Result<Vec<u8>, XsError>>, XsError> {
        let deadline = match self.reply_timeout {
            Some(t) => Some(Instant::now().checked_add(t).ok_or_else(|| {
                XsError::InvalidArgument(format!("reply timeout {t:?} is too large"))
            })?),
            None => None,
        };
        let mut sent = Vec::with_capacity(reqs.len());
        let mut msgs = Vec::with_capacity(reqs.len());
        for (kind, tx, payload) in reqs {
            let req_id = self.next_req_id;
            self.next_req_id = self.next_req_id.wrapping_add(1);
            let msg = Message::new(kind, req_id, tx.0, payload)?;
            sent.push((msg.header.kind, req_id));
            msgs.push(msg);
        }
        self.conn(path)?.send_all(&msgs)?;
        let mut out = Vec::with_capacity(sent.len());
        for (kind, req_id) in sent {
            let reply = loop {
                let Some(reply) = self.conn(path)?.recv(deadline)? else {
                    return Err(XsError::Timeout(self.reply_timeout.unwrap_or_default()));
                };
                if reply.header.msg_type() == Some(MsgType::WatchEvent) {
                    let ev = wire::parse_watch_event(&reply.payload)?;
                    self.events.push_back(ev);
                    continue;
                }
                break reply;
            };
            let h = reply.header;
            if h.req_id != req_id {
                return Err(XsError::Protocol(format!(
                    "reply for request {} (type {}) while waiting for request {req_id}",
                    h.req_id, h.kind
                )));
            }
            if h.msg_type() == Some(MsgType::Error) {
                out.push(Err(wire::parse_error(&reply.payload)));
            } else if h.kind != kind {
                return Err(XsError::Protocol(format!(
                    "reply of type {} to a request of type {kind}",
                    h.kind
                )));
            } else {
                out.push(Ok(reply.payload));
            }
        }
        self.queue_buffered_events();
        Ok(out)
    }

    /// Send `msg` and read until its reply. `Ok(None)` on timeout.
    fn exchange(
        &mut self,
        path: &Path,
        msg: &Message,
        deadline: Option<Instant>,
    ) -> Result<Option<Vec<u8>>, XsError> {
        let kind = msg.header.kind;
        let req_id = msg.header.req_id;
        self.conn(path)?.send(msg)?;
        loop {
            let Some(reply) = self.conn(path)?.recv(deadline)? else {
                return Ok(None);
            };
            let h = reply.header;
            if h.msg_type() == Some(MsgType::WatchEvent) {
                let ev = wire::parse_watch_event(&reply.payload)?;
                self.events.push_back(ev);
                continue;
            }
            if h.req_id != req_id {
                return Err(XsError::Protocol(format!(
                    "reply for request {} (type {}) while waiting for request {req_id}",
                    h.req_id, h.kind
                )));
            }
            if h.msg_type() == Some(MsgType::Error) {
                return Err(wire::parse_error(&reply.payload));
            }
            if h.kind != kind {
                return Err(XsError::Protocol(format!(
                    "reply of type {} to a request of type {kind}",
                    h.kind
                )));
            }
            self.queue_buffered_events();
            return Ok(Some(reply.payload));
        }
    }

    /// Close the connection on failures that leave it out of step.
    fn guard<T>(&mut self, r: Result<T, XsError>) -> Result<T, XsError> {
        if let Err(err) = &r {
            if !matches!(err, XsError::Broken { .. } | XsError::Daemon { .. }) {
                self.fail(err);
            }
        }
        r
    }

    fn poll_fd(&mut self, path: &Path) -> Result<Arc<OwnedFd>, XsError> {
        self.conn(path)?;
        let reason = self.broken.clone();
        self.poll_fd.clone().ok_or_else(|| XsError::Broken {
            path: path.to_path_buf(),
            reason: reason.unwrap_or_else(|| "unknown".into()),
        })
    }

    /// Queue a message that arrived while no request was outstanding: only watch events
    /// may.
    fn absorb(&mut self, msg: Message) -> Result<(), XsError> {
        if msg.header.msg_type() != Some(MsgType::WatchEvent) {
            return Err(XsError::Protocol(format!(
                "message of type {} (request {}) while no request was outstanding",
                msg.header.kind, msg.header.req_id
            )));
        }
        let ev = wire::parse_watch_event(&msg.payload)?;
        self.events.push_back(ev);
        Ok(())
    }

    /// The first queued event, after queueing any whole messages already read.
    fn take_event(&mut self, path: &Path) -> Result<Option<WatchEvent>, XsError> {
        let r = self.take_event_inner(path);
        self.guard(r)
    }

    fn take_event_inner(&mut self, path: &Path) -> Result<Option<WatchEvent>, XsError> {
        if let Some(ev) = self.events.pop_front() {
            return Ok(Some(ev));
        }
        while let Some(msg) = self.conn(path)?.take_buffered()? {
            self.absorb(msg)?;
        }
        Ok(self.events.pop_front())
    }

    /// Read what the stream has now, without waiting, and queue the events in it.
    fn read_available(&mut self, path: &Path) -> Result<(), XsError> {
        let r = self.read_available_inner(path);
        self.guard(r)
    }

    fn read_available_inner(&mut self, path: &Path) -> Result<(), XsError> {
        let now = Some(Instant::now());
        while let Some(msg) = self.conn(path)?.recv(now)? {
            self.absorb(msg)?;
        }
        Ok(())
    }

    /// Queue watch events already read behind a reply (xenstored sends a new watch's
    /// first event right after the reply). Anything else is left for the next read.
    fn queue_buffered_events(&mut self) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        while conn
            .buffered_header()
            .is_some_and(|h| h.msg_type() == Some(MsgType::WatchEvent))
        {
            let Ok(Some(msg)) = conn.take_buffered() else {
                return;
            };
            match wire::parse_watch_event(&msg.payload) {
                Ok(ev) => self.events.push_back(ev),
                Err(err) => {
                    self.fail(&err);
                    return;
                }
            }
        }
    }
}

fn host<T>(op: impl FnOnce() -> String, r: Result<T, XsError>) -> xen_host::Result<T> {
    r.map_err(|e| e.into_host(op()))
}

/// `ENOENT` as `None`.
fn absent<T>(r: Result<T, XsError>) -> Result<Option<T>, XsError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(XsError::Daemon { errno, .. }) if errno == Errno::ENOENT => Ok(None),
        Err(e) => Err(e),
    }
}

/// The outcome of an `XS_RM`: a removal of what is not there (not even its parent) is no
/// failure.
fn rm_reply(reply: Result<Vec<u8>, XsError>) -> Result<(), XsError> {
    match absent(reply)? {
        Some(r) => wire::expect_ok(&r, "RM"),
        None => Ok(()),
    }
}

impl Store for XsClient {
    fn read(&self, tx: TxId, path: &str) -> xen_host::Result<Option<Vec<u8>>> {
        host(
            || format!("xs_read {path}"),
            absent(self.call(MsgType::Read, tx, wire::path_request(path))),
        )
    }

    fn write(&self, tx: TxId, path: &str, value: &[u8]) -> xen_host::Result<()> {
        host(|| format!("xs_write {path}"), {
            self.call(MsgType::Write, tx, wire::write_request(path, value))
                .and_then(|r| wire::expect_ok(&r, "WRITE"))
        })
    }

    fn mkdir(&self, tx: TxId, path: &str) -> xen_host::Result<()> {
        host(|| format!("xs_mkdir {path}"), {
            self.call(MsgType::Mkdir, tx, wire::path_request(path))
                .and_then(|r| wire::expect_ok(&r, "MKDIR"))
        })
    }

    fn rm(&self, tx: TxId, path: &str) -> xen_host::Result<()> {
        host(|| format!("xs_rm {path}"), {
            rm_reply(self.call(MsgType::Rm, tx, wire::path_request(path)))
        })
    }

    fn directory(&self, tx: TxId, path: &str) -> xen_host::Result<Option<Vec<String>>> {
        host(
            || format!("xs_directory {path}"),
            absent(self.directory_inner(tx, path)),
        )
    }

    fn get_perms(&self, tx: TxId, path: &str) -> xen_host::Result<Option<Vec<Perm>>> {
        host(|| format!("xs_get_permissions {path}"), {
            absent(self.call(MsgType::GetPerms, tx, wire::path_request(path)))
                .and_then(|r| r.map(|r| wire::parse_perms(&r)).transpose())
        })
    }

    fn set_perms(&self, tx: TxId, path: &str, perms: &[Perm]) -> xen_host::Result<()> {
        host(|| format!("xs_set_permissions {path}"), {
            self.call(MsgType::SetPerms, tx, wire::set_perms_request(path, perms))
                .and_then(|r| wire::expect_ok(&r, "SET_PERMS"))
        })
    }

    fn transaction_start(&self) -> xen_host::Result<TxId> {
        host(|| "xs_transaction_start".to_string(), {
            self.request(MsgType::TransactionStart, TxId::NONE, b"\0".to_vec())
                .and_then(|r| {
                    let text = wire::reply_string(&r, "TRANSACTION_START")?;
                    match text.parse::<u32>() {
                        Ok(id) if id != 0 => Ok(TxId(id)),
                        _ => Err(XsError::Protocol(format!(
                            "TRANSACTION_START reply {text:?} is not a transaction id"
                        ))),
                    }
                })
        })
    }

    fn transaction_end(&self, tx: TxId, commit: bool) -> xen_host::Result<bool> {
        let op = || {
            format!(
                "xs_transaction_end {} ({})",
                tx.0,
                if commit { "commit" } else { "abort" }
            )
        };
        if tx == TxId::NONE {
            return Err(XsError::InvalidArgument(
                "transaction_end needs a transaction id, not TxId::NONE".into(),
            )
            .into_host(op()));
        }
        let arg = if commit { "T" } else { "F" };
        let r = self.request(
            MsgType::TransactionEnd,
            tx,
            Payload::new().arg(arg).into_bytes(),
        );
        match r {
            Ok(reply) => host(
                op,
                wire::expect_ok(&reply, "TRANSACTION_END").map(|()| true),
            ),
            Err(XsError::Daemon { errno, .. }) if commit && errno == Errno::EAGAIN => Ok(false),
            Err(e) => Err(e.into_host(op())),
        }
    }

    fn watch(&self, path: &str, token: &str) -> xen_host::Result<()> {
        host(|| format!("xs_watch {path} (token {token:?})"), {
            self.call(MsgType::Watch, TxId::NONE, wire::watch_request(path, token))
                .and_then(|r| wire::expect_ok(&r, "WATCH"))
        })
    }

    fn unwatch(&self, path: &str, token: &str) -> xen_host::Result<()> {
        host(|| format!("xs_unwatch {path} (token {token:?})"), {
            self.call(
                MsgType::Unwatch,
                TxId::NONE,
                wire::watch_request(path, token),
            )
            .and_then(|r| wire::expect_ok(&r, "UNWATCH"))
        })
    }

    fn next_watch_event(&self, timeout: Option<Duration>) -> xen_host::Result<Option<WatchEvent>> {
        host(
            || "xs_read_watch".to_string(),
            self.next_event_inner(timeout),
        )
    }

    fn introduce(&self, dom: DomId, store_gfn: Gfn, store_port: u32) -> xen_host::Result<()> {
        host(
            || {
                format!(
                    "xs_introduce_domain {dom} (gfn {:#x}, port {store_port})",
                    store_gfn.0
                )
            },
            {
                self.request(
                    MsgType::Introduce,
                    TxId::NONE,
                    wire::introduce_request(dom, store_gfn.0, store_port),
                )
                .and_then(|r| wire::expect_ok(&r, "INTRODUCE"))
            },
        )
    }

    fn release(&self, dom: DomId) -> xen_host::Result<()> {
        host(|| format!("xs_release_domain {dom}"), {
            self.request(MsgType::Release, TxId::NONE, wire::domid_request(dom))
                .and_then(|r| wire::expect_ok(&r, "RELEASE"))
        })
    }

    fn get_domain_path(&self, dom: DomId) -> xen_host::Result<String> {
        host(|| format!("xs_get_domain_path {dom}"), {
            self.request(MsgType::GetDomainPath, TxId::NONE, wire::domid_request(dom))
                .and_then(|r| wire::reply_string(&r, "GET_DOMAIN_PATH"))
        })
    }

    fn is_domain_introduced(&self, dom: DomId) -> xen_host::Result<bool> {
        host(|| format!("xs_is_domain_introduced {dom}"), {
            self.request(
                MsgType::IsDomainIntroduced,
                TxId::NONE,
                wire::domid_request(dom),
            )
            .and_then(|r| wire::parse_bool(&r, "IS_DOMAIN_INTRODUCED"))
        })
    }

    fn request_count(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn apply_ops(&self, tx: TxId, ops: &[StoreOp<'_>]) -> xen_host::Result<()> {
        self.apply_ops_inner(tx, ops).map_err(|(i, e)| {
            let what = match ops.get(i) {
                Some(StoreOp::Write(path, _)) => format!("xs_write {path}"),
                Some(StoreOp::Mkdir(path)) => format!("xs_mkdir {path}"),
                Some(StoreOp::SetPerms(path, _)) => format!("xs_set_permissions {path}"),
                Some(StoreOp::Rm(path)) => format!("xs_rm {path}"),
                None => "xenstore requests".to_string(),
            };
            e.into_host(what)
        })
    }
}
