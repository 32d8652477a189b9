//! A small scripted xenstored for tests and benchmarks: a unix socket in a temporary
//! directory, one thread per connection, a node tree with permissions, transactions,
//! watches, the domain calls, and faults injected on demand.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use xen_host::{Access, DomId, Perm};
use xenstore::wire::{Header, MsgType, HEADER_LEN, PAYLOAD_MAX};

/// A fault applied to the reply of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Reply `XS_ERROR` with this name instead of handling the request.
    Error(&'static str),
    /// Handle the request, then send the reply one byte per write.
    ShortReads,
    /// Close the connection without replying.
    Drop,
    /// Reply with a header announcing this many payload bytes (and send them).
    Oversize(u32),
    /// Reply with another request id.
    WrongReqId,
    /// Wait this long before handling the request.
    Stall(Duration),
    /// Send a watch event with this path and token before the reply.
    EventFirst(String, String),
    /// Send a message of type `WATCH_EVENT` whose payload is not `path\0token\0`.
    BadEvent,
    /// Handle the request, but send the reply with this message type.
    ReplyAs(u32),
    /// Handle the request, send the reply, then these raw bytes.
    Trailing(Vec<u8>),
    /// Handle the request, send only this many bytes of the reply, and close.
    Truncate(usize),
}

#[derive(Clone, Debug)]
struct Node {
    value: Vec<u8>,
    perms: Vec<Perm>,
    /// Bumped when the child list changes (`XS_DIRECTORY_PART` generation).
    generation: u64,
}

type Tree = BTreeMap<String, Node>;

struct Tx {
    tree: Tree,
    start_generation: u64,
    changed: Vec<String>,
}

type Writer = Arc<Mutex<Box<dyn Write + Send>>>;

struct Conn {
    writer: Writer,
    watches: Vec<(String, String)>,
}

struct Server {
    tree: Tree,
    /// Bumped on every committed change.
    generation: u64,
    txs: HashMap<u32, Tx>,
    next_tx: u32,
    conns: HashMap<u64, Conn>,
    next_conn: u64,
    introduced: BTreeMap<u16, (u64, u32)>,
    faults: VecDeque<(Option<MsgType>, Fault)>,
    conflicts: u32,
    log: Vec<Vec<u8>>,
    logging: bool,
}

/// The running fake daemon. Dropping it stops accepting connections.
pub struct FakeXenstored {
    _dir: tempfile::TempDir,
    path: PathBuf,
    server: Arc<Mutex<Server>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
    /// Pseudo-terminal slaves kept open so their raw mode sticks.
    ptys: Mutex<Vec<std::fs::File>>,
}

fn dom0_perms() -> Vec<Perm> {
    vec![Perm {
        domid: DomId(0),
        access: Access::None,
    }]
}

fn lock(server: &Mutex<Server>) -> MutexGuard<'_, Server> {
    server.lock().unwrap_or_else(|p| p.into_inner())
}

impl FakeXenstored {
    /// Start a daemon with the root node, `/local/domain/0` and `/tool`.
    pub fn start() -> FakeXenstored {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("socket");
        let listener = UnixListener::bind(&path).expect("bind fake xenstored socket");
        let mut tree = Tree::new();
        for p in ["/", "/local", "/local/domain", "/local/domain/0", "/tool"] {
            tree.insert(
                p.to_string(),
                Node {
                    value: Vec::new(),
                    perms: dom0_perms(),
                    generation: 0,
                },
            );
        }
        let server = Arc::new(Mutex::new(Server {
            tree,
            generation: 1,
            txs: HashMap::new(),
            next_tx: 1,
            conns: HashMap::new(),
            next_conn: 1,
            introduced: BTreeMap::new(),
            faults: VecDeque::new(),
            conflicts: 0,
            log: Vec::new(),
            logging: true,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let server = Arc::clone(&server);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let server = Arc::clone(&server);
                    std::thread::spawn(move || serve_socket(server, stream));
                }
            })
        };
        FakeXenstored {
            _dir: dir,
            path,
            server,
            stop,
            acceptor: Some(acceptor),
            ptys: Mutex::new(Vec::new()),
        }
    }

    /// Serve the same store over a new pseudo-terminal in raw mode, standing in for the
    /// xenbus character device; returns the terminal's path for the client to open.
    pub fn serve_pty(&self) -> PathBuf {
        use nix::fcntl::OFlag;
        use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};

        let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY).expect("posix_openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let path = PathBuf::from(ptsname_r(&master).expect("ptsname"));
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NOCTTY)
            .open(&path)
            .expect("open pty slave");
        let mut tio = tcgetattr(&slave).expect("tcgetattr");
        cfmakeraw(&mut tio);
        tcsetattr(&slave, SetArg::TCSANOW, &tio).expect("tcsetattr");
        self.ptys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(slave);

        struct Master(Arc<nix::pty::PtyMaster>);
        impl Read for Master {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                (&*self.0).read(buf)
            }
        }
        impl Write for Master {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                (&*self.0).write(buf)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let master = Arc::new(master);
        let server = Arc::clone(&self.server);
        let reader = Master(Arc::clone(&master));
        let writer: Box<dyn Write + Send> = Box::new(Master(master));
        std::thread::spawn(move || serve(server, reader, writer, || {}));
        path
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Apply `fault` to the next request of `kind` (`None`: of any type).
    pub fn inject(&self, kind: Option<MsgType>, fault: Fault) {
        lock(&self.server).faults.push_back((kind, fault));
    }

    /// Make the next `n` transaction commits fail with `EAGAIN`.
    pub fn force_conflicts(&self, n: u32) {
        lock(&self.server).conflicts = n;
    }

    /// Every request received so far, header and payload as sent.
    pub fn requests(&self) -> Vec<Vec<u8>> {
        lock(&self.server).log.clone()
    }

    /// Record requests (on by default) or not.
    pub fn set_logging(&self, on: bool) {
        lock(&self.server).logging = on;
    }

    /// Forget the request log.
    pub fn clear_requests(&self) {
        lock(&self.server).log.clear();
    }

    /// A node's value in the committed tree.
    pub fn value(&self, path: &str) -> Option<Vec<u8>> {
        lock(&self.server).tree.get(path).map(|n| n.value.clone())
    }

    /// Change a node as another client would, firing watches.
    pub fn external_write(&self, path: &str, value: &[u8]) {
        let mut s = lock(&self.server);
        write_node(&mut s.tree, path, value.to_vec());
        s.generation += 1;
        fire(&mut s, path, None);
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        lock(&self.server).conns.len()
    }

    /// Domains introduced.
    pub fn introduced(&self) -> Vec<(u16, u64, u32)> {
        lock(&self.server)
            .introduced
            .iter()
            .map(|(d, (g, p))| (*d, *g, *p))
            .collect()
    }
}

impl Drop for FakeXenstored {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor.
        let _ = UnixStream::connect(&self.path);
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

fn frame(kind: u32, req_id: u32, tx_id: u32, payload: &[u8]) -> Vec<u8> {
    let h = Header {
        kind,
        req_id,
        tx_id,
        len: payload.len() as u32,
    };
    let mut out = h.encode().to_vec();
    out.extend_from_slice(payload);
    out
}

fn send(writer: &Mutex<Box<dyn Write + Send>>, bytes: &[u8]) {
    let mut w = writer.lock().unwrap_or_else(|p| p.into_inner());
    let _ = w.write_all(bytes);
}

fn serve_socket(server: Arc<Mutex<Server>>, stream: UnixStream) {
    let writer: Box<dyn Write + Send> = Box::new(stream.try_clone().expect("clone stream"));
    let closer = stream.try_clone().expect("clone stream");
    serve(server, stream, writer, move || {
        let _ = closer.shutdown(std::net::Shutdown::Both);
    });
}

/// Serve one connection until it closes or a fault drops it; `close` then ends it for the
/// client.
fn serve(
    server: Arc<Mutex<Server>>,
    mut stream: impl Read,
    writer: Box<dyn Write + Send>,
    close: impl FnOnce(),
) {
    let writer: Writer = Arc::new(Mutex::new(writer));
    let id = {
        let mut s = lock(&server);
        let id = s.next_conn;
        s.next_conn += 1;
        s.conns.insert(
            id,
            Conn {
                writer: Arc::clone(&writer),
                watches: Vec::new(),
            },
        );
        id
    };
    loop {
        let mut hbuf = [0u8; HEADER_LEN];
        if stream.read_exact(&mut hbuf).is_err() {
            break;
        }
        let Some(h) = Header::decode(&hbuf) else {
            break;
        };
        if h.len as usize > PAYLOAD_MAX {
            break;
        }
        let mut payload = vec![0u8; h.len as usize];
        if stream.read_exact(&mut payload).is_err() {
            break;
        }
        if !handle(&server, id, &writer, h, payload) {
            break;
        }
    }
    lock(&server).conns.remove(&id);
    close();
}

/// Handle one request; `false` to close the connection.
fn handle(
    server: &Mutex<Server>,
    conn: u64,
    writer: &Mutex<Box<dyn Write + Send>>,
    h: Header,
    payload: Vec<u8>,
) -> bool {
    let kind = h.msg_type();
    let fault = {
        let mut s = lock(server);
        let mut raw = hbuf_of(&h);
        raw.extend_from_slice(&payload);
        if s.logging {
            s.log.push(raw);
        }
        let pos = s.faults.iter().position(|(k, _)| k.is_none() || *k == kind);
        pos.and_then(|p| s.faults.remove(p)).map(|(_, f)| f)
    };
    if let Some(Fault::Stall(d)) = &fault {
        std::thread::sleep(*d);
    }
    match &fault {
        Some(Fault::Drop) => return false,
        Some(Fault::Error(name)) => {
            let mut p = name.as_bytes().to_vec();
            p.push(0);
            send(writer, &frame(MsgType::Error.code(), h.req_id, h.tx_id, &p));
            return true;
        }
        Some(Fault::Oversize(len)) => {
            let mut bytes = Header {
                kind: h.kind,
                req_id: h.req_id,
                tx_id: h.tx_id,
                len: *len,
            }
            .encode()
            .to_vec();
            bytes.extend(std::iter::repeat_n(b'x', *len as usize));
            send(writer, &bytes);
            return true;
        }
        Some(Fault::EventFirst(path, token)) => {
            let mut p = path.as_bytes().to_vec();
            p.push(0);
            p.extend_from_slice(token.as_bytes());
            p.push(0);
            send(writer, &frame(MsgType::WatchEvent.code(), 0, 0, &p));
        }
        Some(Fault::BadEvent) => {
            send(writer, &frame(MsgType::WatchEvent.code(), 0, 0, b"lonely"));
        }
        _ => {}
    }
    let (reply_kind, reply, after) = {
        let mut s = lock(server);
        match process(&mut s, conn, &h, &payload) {
            Ok((reply, after)) => match &fault {
                Some(Fault::ReplyAs(kind)) => (*kind, reply, after),
                _ => (h.kind, reply, after),
            },
            Err(name) => {
                let mut p = name.as_bytes().to_vec();
                p.push(0);
                (MsgType::Error.code(), p, Vec::new())
            }
        }
    };
    let req_id = if fault == Some(Fault::WrongReqId) {
        h.req_id.wrapping_add(1000)
    } else {
        h.req_id
    };
    let bytes = frame(reply_kind, req_id, h.tx_id, &reply);
    if let Some(Fault::Truncate(n)) = fault {
        send(writer, &bytes[..n.min(bytes.len())]);
        return false;
    }
    if fault == Some(Fault::ShortReads) {
        for b in bytes {
            send(writer, &[b]);
            std::thread::sleep(Duration::from_micros(200));
        }
    } else {
        send(writer, &bytes);
    }
    // Events that follow the reply (the initial watch event).
    for ev in after {
        send(writer, &ev);
    }
    if let Some(Fault::Trailing(raw)) = fault {
        send(writer, &raw);
    }
    true
}

fn hbuf_of(h: &Header) -> Vec<u8> {
    h.encode().to_vec()
}

fn strings(payload: &[u8]) -> Vec<String> {
    let body = payload.strip_suffix(&[0]).unwrap_or(payload);
    if body.is_empty() {
        return Vec::new();
    }
    body.split(|&b| b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

fn one_arg(payload: &[u8]) -> Result<String, &'static str> {
    let s = strings(payload);
    match (s.as_slice(), payload.last()) {
        ([one], Some(0)) => Ok(one.clone()),
        _ => Err("EINVAL"),
    }
}

fn canonical(path: &str) -> Result<String, &'static str> {
    let valid = !path.is_empty()
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-/_@".contains(c))
        && !path.contains("//")
        && (path == "/" || !path.ends_with('/'));
    if !valid {
        return Err("EINVAL");
    }
    if path.starts_with('/') || path.starts_with('@') {
        Ok(path.to_string())
    } else {
        Ok(format!("/local/domain/0/{path}"))
    }
}

fn parent(path: &str) -> Option<&str> {
    if path == "/" || path.starts_with('@') {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

fn children(tree: &Tree, path: &str) -> Vec<String> {
    let prefix = if path == "/" {
        "/".to_string()
    } else {
        format!("{path}/")
    };
    tree.range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .filter_map(|(k, _)| {
            let rest = &k[prefix.len()..];
            (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_string())
        })
        .collect()
}

/// Create `path` and missing parents (inheriting the parent's permissions); true if it
/// was created.
fn ensure(tree: &mut Tree, path: &str) -> bool {
    if tree.contains_key(path) {
        return false;
    }
    let perms = match parent(path) {
        Some(p) => {
            ensure(tree, p);
            let parent = tree.get_mut(p).expect("parent just ensured");
            parent.generation += 1;
            parent.perms.clone()
        }
        None => dom0_perms(),
    };
    tree.insert(
        path.to_string(),
        Node {
            value: Vec::new(),
            perms,
            generation: 0,
        },
    );
    true
}

fn write_node(tree: &mut Tree, path: &str, value: Vec<u8>) {
    ensure(tree, path);
    if let Some(n) = tree.get_mut(path) {
        n.value = value;
    }
}

/// Queue watch events for a change at `path`; events for `skip_conn` are returned to be
/// sent in order by the caller, the others are written now.
fn fire(s: &mut Server, path: &str, own: Option<(u64, &mut Vec<Vec<u8>>)>) {
    let mut own = own;
    for (id, c) in s.conns.iter() {
        for (wpath, token) in &c.watches {
            let hit = if wpath.starts_with('@') || path.starts_with('@') {
                wpath == path
            } else {
                wpath == "/"
                    || path == wpath
                    || path
                        .strip_prefix(wpath.as_str())
                        .is_some_and(|r| r.starts_with('/'))
            };
            if !hit {
                continue;
            }
            let mut p = path.as_bytes().to_vec();
            p.push(0);
            p.extend_from_slice(token.as_bytes());
            p.push(0);
            let ev = frame(MsgType::WatchEvent.code(), 0, 0, &p);
            match &mut own {
                Some((own_id, queue)) if own_id == id => queue.push(ev),
                _ => send(&c.writer, &ev),
            }
        }
    }
}

type Reply = (Vec<u8>, Vec<Vec<u8>>);

fn ok() -> Vec<u8> {
    b"OK\0".to_vec()
}

fn domid_arg(payload: &[u8]) -> Result<u16, &'static str> {
    one_arg(payload)?.parse::<u16>().map_err(|_| "EINVAL")
}

/// Handle a request against the tree; `Err(name)` becomes an `XS_ERROR` reply. Events for
/// the requesting connection are sent before the reply (as xenstored does), except the
/// initial watch event, returned to follow it.
fn process(s: &mut Server, conn: u64, h: &Header, payload: &[u8]) -> Result<Reply, &'static str> {
    let Some(kind) = h.msg_type() else {
        return Err("EINVAL");
    };
    let tx = h.tx_id;
    if tx != 0 && !s.txs.contains_key(&tx) {
        return Err("ENOENT");
    }
    let mut own_events: Vec<Vec<u8>> = Vec::new();
    let reply = match kind {
        MsgType::Read => {
            let path = canonical(&one_arg(payload)?)?;
            let tree = tree_of(s, tx);
            tree.get(&path).map(|n| n.value.clone()).ok_or("ENOENT")?
        }
        MsgType::Write => {
            let split = payload.iter().position(|&b| b == 0).ok_or("EINVAL")?;
            let path = canonical(&String::from_utf8_lossy(&payload[..split]))?;
            let value = payload[split + 1..].to_vec();
            if path.starts_with('@') {
                return Err("EINVAL");
            }
            write_node(tree_of_mut(s, tx), &path, value);
            changed(s, conn, tx, &path, &mut own_events);
            ok()
        }
        MsgType::Mkdir => {
            let path = canonical(&one_arg(payload)?)?;
            if ensure(tree_of_mut(s, tx), &path) {
                changed(s, conn, tx, &path, &mut own_events);
            }
            ok()
        }
        MsgType::Rm => {
            let path = canonical(&one_arg(payload)?)?;
            if path == "/" {
                return Err("EINVAL");
            }
            let tree = tree_of_mut(s, tx);
            if !tree.contains_key(&path) {
                let parent_exists = parent(&path).is_some_and(|p| tree.contains_key(p));
                return if parent_exists {
                    Ok((ok(), Vec::new()))
                } else {
                    Err("ENOENT")
                };
            }
            let below = format!("{path}/");
            let doomed: Vec<String> = tree
                .range(path.clone()..)
                .take_while(|(k, _)| **k == path || k.starts_with(&below))
                .map(|(k, _)| k.clone())
                .collect();
            for k in &doomed {
                tree.remove(k);
            }
            if let Some(p) = parent(&path).and_then(|p| tree.get_mut(p)) {
                p.generation += 1;
            }
            changed(s, conn, tx, &path, &mut own_events);
            ok()
        }
        MsgType::Directory => {
            let path = canonical(&one_arg(payload)?)?;
            let tree = tree_of(s, tx);
            if !tree.contains_key(&path) {
                return Err("ENOENT");
            }
            let mut out = Vec::new();
            for c in children(tree, &path) {
                out.extend_from_slice(c.as_bytes());
                out.push(0);
            }
            if out.len() > PAYLOAD_MAX {
                return Err("E2BIG");
            }
            out
        }
        MsgType::DirectoryPart => {
            let args = strings(payload);
            let [path, off] = args.as_slice() else {
                return Err("EINVAL");
            };
            let path = canonical(path)?;
            let off: usize = off.parse().map_err(|_| "EINVAL")?;
            let tree = tree_of(s, tx);
            let node = tree.get(&path).ok_or("ENOENT")?;
            let mut list = Vec::new();
            for c in children(tree, &path) {
                list.extend_from_slice(c.as_bytes());
                list.push(0);
            }
            let mut out = node.generation.to_string().into_bytes();
            out.push(0);
            let room = PAYLOAD_MAX - out.len() - 1;
            let rest = list.get(off..).unwrap_or_default();
            // Whole names only, as many as fit.
            let mut take = 0;
            for name in rest.split_inclusive(|&b| b == 0) {
                if take + name.len() > room {
                    break;
                }
                take += name.len();
            }
            out.extend_from_slice(&rest[..take]);
            if take == rest.len() {
                out.push(0);
            }
            out
        }
        MsgType::GetPerms => {
            let path = canonical(&one_arg(payload)?)?;
            let node = tree_of(s, tx).get(&path).ok_or("ENOENT")?;
            let mut out = Vec::new();
            for p in &node.perms {
                out.extend_from_slice(p.to_wire().as_bytes());
                out.push(0);
            }
            out
        }
        MsgType::SetPerms => {
            let args = strings(payload);
            let Some((path, perms)) = args.split_first() else {
                return Err("EINVAL");
            };
            let path = canonical(path)?;
            let perms = perms
                .iter()
                .map(|p| Perm::from_wire(p).ok_or("EINVAL"))
                .collect::<Result<Vec<_>, _>>()?;
            if perms.is_empty() {
                return Err("EINVAL");
            }
            let node = tree_of_mut(s, tx).get_mut(&path).ok_or("ENOENT")?;
            node.perms = perms;
            changed(s, conn, tx, &path, &mut own_events);
            ok()
        }
        MsgType::TransactionStart => {
            if tx != 0 {
                return Err("EBUSY");
            }
            let id = s.next_tx;
            s.next_tx += 1;
            s.txs.insert(
                id,
                Tx {
                    tree: s.tree.clone(),
                    start_generation: s.generation,
                    changed: Vec::new(),
                },
            );
            let mut out = id.to_string().into_bytes();
            out.push(0);
            out
        }
        MsgType::TransactionEnd => {
            let arg = one_arg(payload)?;
            let t = s.txs.remove(&tx).ok_or("ENOENT")?;
            match arg.as_str() {
                "F" => {}
                "T" => {
                    if s.conflicts > 0 {
                        s.conflicts -= 1;
                        return Err("EAGAIN");
                    }
                    if t.start_generation != s.generation {
                        return Err("EAGAIN");
                    }
                    if !t.changed.is_empty() {
                        s.tree = t.tree;
                        s.generation += 1;
                        for p in &t.changed {
                            fire(s, p, Some((conn, &mut own_events)));
                        }
                    }
                }
                _ => return Err("EINVAL"),
            }
            ok()
        }
        MsgType::Watch => {
            let args = strings(payload);
            let [path, token] = args.as_slice() else {
                return Err("EINVAL");
            };
            let path = canonical(path)?;
            let c = s.conns.get_mut(&conn).ok_or("EINVAL")?;
            if c.watches.iter().any(|(p, t)| *p == path && t == token) {
                return Err("EEXIST");
            }
            c.watches.push((path.clone(), token.clone()));
            let mut p = path.into_bytes();
            p.push(0);
            p.extend_from_slice(token.as_bytes());
            p.push(0);
            let initial = frame(MsgType::WatchEvent.code(), 0, 0, &p);
            return Ok((ok(), vec![initial]));
        }
        MsgType::Unwatch => {
            let args = strings(payload);
            let [path, token] = args.as_slice() else {
                return Err("EINVAL");
            };
            let path = canonical(path)?;
            let c = s.conns.get_mut(&conn).ok_or("EINVAL")?;
            let pos = c
                .watches
                .iter()
                .position(|(p, t)| *p == path && t == token)
                .ok_or("ENOENT")?;
            c.watches.remove(pos);
            ok()
        }
        MsgType::ResetWatches => {
            if let Some(c) = s.conns.get_mut(&conn) {
                c.watches.clear();
            }
            ok()
        }
        MsgType::Introduce => {
            let args = strings(payload);
            let [dom, gfn, port] = args.as_slice() else {
                return Err("EINVAL");
            };
            let dom: u16 = dom.parse().map_err(|_| "EINVAL")?;
            let gfn: u64 = gfn.parse().map_err(|_| "EINVAL")?;
            let port: u32 = port.parse().map_err(|_| "EINVAL")?;
            if dom == 0 {
                return Err("EINVAL");
            }
            s.introduced.insert(dom, (gfn, port));
            let path = format!("/local/domain/{dom}");
            ensure(&mut s.tree, &path);
            fire(s, "@introduceDomain", Some((conn, &mut own_events)));
            ok()
        }
        MsgType::Release => {
            let dom = domid_arg(payload)?;
            s.introduced.remove(&dom).ok_or("ENOENT")?;
            fire(s, "@releaseDomain", Some((conn, &mut own_events)));
            ok()
        }
        MsgType::GetDomainPath => {
            let dom = domid_arg(payload)?;
            format!("/local/domain/{dom}\0").into_bytes()
        }
        MsgType::IsDomainIntroduced => {
            let dom = domid_arg(payload)?;
            if dom == 0 || s.introduced.contains_key(&dom) {
                b"T\0".to_vec()
            } else {
                b"F\0".to_vec()
            }
        }
        MsgType::Resume => {
            let dom = domid_arg(payload)?;
            if !s.introduced.contains_key(&dom) {
                return Err("ENOENT");
            }
            ok()
        }
        MsgType::SetTarget => {
            let args = strings(payload);
            if args.len() != 2 || args.iter().any(|a| a.parse::<u16>().is_err()) {
                return Err("EINVAL");
            }
            ok()
        }
        MsgType::Control => {
            let args = strings(payload);
            match args.first().map(String::as_str) {
                Some("print") => ok(),
                _ => return Err("EINVAL"),
            }
        }
        MsgType::WatchEvent | MsgType::Error => return Err("EINVAL"),
    };
    // Events caused by this request go out before its reply.
    for ev in own_events.drain(..) {
        send_own(s, conn, &ev);
    }
    Ok((reply, Vec::new()))
}

fn send_own(s: &Server, conn: u64, ev: &[u8]) {
    if let Some(c) = s.conns.get(&conn) {
        send(&c.writer, ev);
    }
}

fn tree_of(s: &Server, tx: u32) -> &Tree {
    match s.txs.get(&tx) {
        Some(t) if tx != 0 => &t.tree,
        _ => &s.tree,
    }
}

fn tree_of_mut(s: &mut Server, tx: u32) -> &mut Tree {
    if tx != 0 {
        if let Some(t) = s.txs.get_mut(&tx) {
            return &mut t.tree;
        }
    }
    &mut s.tree
}

/// Record a change: inside a transaction it fires at commit, outside it fires now.
fn changed(s: &mut Server, conn: u64, tx: u32, path: &str, own: &mut Vec<Vec<u8>>) {
    if tx != 0 {
        if let Some(t) = s.txs.get_mut(&tx) {
            t.changed.push(path.to_string());
        }
        return;
    }
    s.generation += 1;
    fire(s, path, Some((conn, own)));
}
