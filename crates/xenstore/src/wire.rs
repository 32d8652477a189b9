//! The xenstore wire format (`xen/io/xs_wire.h`): message types, the 16-byte header,
//! request payloads and reply parsing.
//!
//! Every message is a header `{u32 type, u32 req_id, u32 tx_id, u32 len}` in native
//! (little-endian on x86) byte order followed by `len` bytes of payload, at most
//! [`PAYLOAD_MAX`]. Arguments are NUL-terminated strings; a written value is the one
//! argument sent without a terminator.

use xen_host::{DomId, Errno, Perm, WatchEvent};

use crate::XsError;

/// Size of a message header.
pub const HEADER_LEN: usize = 16;
/// `XENSTORE_PAYLOAD_MAX`: the largest payload either side may send.
pub const PAYLOAD_MAX: usize = 4096;
/// `XENSTORE_ABS_PATH_MAX`: the longest absolute path.
pub const ABS_PATH_MAX: usize = 3072;
/// `XENSTORE_REL_PATH_MAX`: the longest relative path.
pub const REL_PATH_MAX: usize = 2048;

/// `enum xsd_sockmsg_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum MsgType {
    /// `XS_CONTROL` (also `XS_DEBUG`).
    Control = 0,
    /// `XS_DIRECTORY`.
    Directory = 1,
    /// `XS_READ`.
    Read = 2,
    /// `XS_GET_PERMS`.
    GetPerms = 3,
    /// `XS_WATCH`.
    Watch = 4,
    /// `XS_UNWATCH`.
    Unwatch = 5,
    /// `XS_TRANSACTION_START`.
    TransactionStart = 6,
    /// `XS_TRANSACTION_END`.
    TransactionEnd = 7,
    /// `XS_INTRODUCE`.
    Introduce = 8,
    /// `XS_RELEASE`.
    Release = 9,
    /// `XS_GET_DOMAIN_PATH`.
    GetDomainPath = 10,
    /// `XS_WRITE`.
    Write = 11,
    /// `XS_MKDIR`.
    Mkdir = 12,
    /// `XS_RM`.
    Rm = 13,
    /// `XS_SET_PERMS`.
    SetPerms = 14,
    /// `XS_WATCH_EVENT`: sent by xenstored, never requested.
    WatchEvent = 15,
    /// `XS_ERROR`: a failed request's reply.
    Error = 16,
    /// `XS_IS_DOMAIN_INTRODUCED`.
    IsDomainIntroduced = 17,
    /// `XS_RESUME`.
    Resume = 18,
    /// `XS_SET_TARGET`.
    SetTarget = 19,
    /// `XS_RESET_WATCHES` (20 was `XS_RESTRICT`, now removed).
    ResetWatches = 21,
    /// `XS_DIRECTORY_PART`.
    DirectoryPart = 22,
}

impl MsgType {
    /// Every message type, in number order.
    pub const ALL: [MsgType; 22] = [
        MsgType::Control,
        MsgType::Directory,
        MsgType::Read,
        MsgType::GetPerms,
        MsgType::Watch,
        MsgType::Unwatch,
        MsgType::TransactionStart,
        MsgType::TransactionEnd,
        MsgType::Introduce,
        MsgType::Release,
        MsgType::GetDomainPath,
        MsgType::Write,
        MsgType::Mkdir,
        MsgType::Rm,
        MsgType::SetPerms,
        MsgType::WatchEvent,
        MsgType::Error,
        MsgType::IsDomainIntroduced,
        MsgType::Resume,
        MsgType::SetTarget,
        MsgType::ResetWatches,
        MsgType::DirectoryPart,
    ];

    /// The wire number.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The type with this wire number.
    pub fn from_code(code: u32) -> Option<MsgType> {
        MsgType::ALL.iter().copied().find(|t| t.code() == code)
    }

    /// The name xenstored uses (`"READ"`, `"WATCH_EVENT"`).
    pub fn name(self) -> &'static str {
        match self {
            MsgType::Control => "CONTROL",
            MsgType::Directory => "DIRECTORY",
            MsgType::Read => "READ",
            MsgType::GetPerms => "GET_PERMS",
            MsgType::Watch => "WATCH",
            MsgType::Unwatch => "UNWATCH",
            MsgType::TransactionStart => "TRANSACTION_START",
            MsgType::TransactionEnd => "TRANSACTION_END",
            MsgType::Introduce => "INTRODUCE",
            MsgType::Release => "RELEASE",
            MsgType::GetDomainPath => "GET_DOMAIN_PATH",
            MsgType::Write => "WRITE",
            MsgType::Mkdir => "MKDIR",
            MsgType::Rm => "RM",
            MsgType::SetPerms => "SET_PERMS",
            MsgType::WatchEvent => "WATCH_EVENT",
            MsgType::Error => "ERROR",
            MsgType::IsDomainIntroduced => "IS_DOMAIN_INTRODUCED",
            MsgType::Resume => "RESUME",
            MsgType::SetTarget => "SET_TARGET",
            MsgType::ResetWatches => "RESET_WATCHES",
            MsgType::DirectoryPart => "DIRECTORY_PART",
        }
    }
}

/// `struct xsd_sockmsg`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The raw message type (kept raw: a peer may send a number this crate does not know).
    pub kind: u32,
    /// Request id, echoed by xenstored in the reply.
    pub req_id: u32,
    /// Transaction id, 0 outside a transaction.
    pub tx_id: u32,
    /// Payload length.
    pub len: u32,
}

impl Header {
    /// The header as sent.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&self.kind.to_ne_bytes());
        out[4..8].copy_from_slice(&self.req_id.to_ne_bytes());
        out[8..12].copy_from_slice(&self.tx_id.to_ne_bytes());
        out[12..16].copy_from_slice(&self.len.to_ne_bytes());
        out
    }

    /// Decode the first [`HEADER_LEN`] bytes of `buf`; `None` if it is shorter.
    pub fn decode(buf: &[u8]) -> Option<Header> {
        let word = |at: usize| -> Option<u32> {
            let bytes: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
            Some(u32::from_ne_bytes(bytes))
        };
        Some(Header {
            kind: word(0)?,
            req_id: word(4)?,
            tx_id: word(8)?,
            len: word(12)?,
        })
    }

    /// The message type, if known.
    pub fn msg_type(&self) -> Option<MsgType> {
        MsgType::from_code(self.kind)
    }
}

/// One whole message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Its header (`len` equals `payload.len()`).
    pub header: Header,
    /// Its payload.
    pub payload: Vec<u8>,
}

impl Message {
    /// A message of `kind` with `payload`; fails when the payload is over [`PAYLOAD_MAX`].
    pub fn new(
        kind: MsgType,
        req_id: u32,
        tx_id: u32,
        payload: Vec<u8>,
    ) -> Result<Message, XsError> {
        if payload.len() > PAYLOAD_MAX {
            return Err(XsError::RequestTooLarge { len: payload.len() });
        }
        let len = u32::try_from(payload.len())
            .map_err(|_| XsError::RequestTooLarge { len: payload.len() })?;
        Ok(Message {
            header: Header {
                kind: kind.code(),
                req_id,
                tx_id,
                len,
            },
            payload,
        })
    }

    /// Header and payload in one buffer, ready for a single write.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len());
        out.extend_from_slice(&self.header.encode());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Take one whole message off the front of `buf`. `Ok(None)` while `buf` holds less
    /// than a message; an error when the header announces more than [`PAYLOAD_MAX`].
    pub fn take_from(buf: &mut Vec<u8>) -> Result<Option<Message>, XsError> {
        let Some(header) = Header::decode(buf) else {
            return Ok(None);
        };
        let len = usize::try_from(header.len).unwrap_or(usize::MAX);
        if len > PAYLOAD_MAX {
            return Err(XsError::ReplyTooLarge { len: header.len });
        }
        let total = HEADER_LEN + len;
        if buf.len() < total {
            return Ok(None);
        }
        let payload = buf.get(HEADER_LEN..total).unwrap_or_default().to_vec();
        buf.drain(..total);
        Ok(Some(Message { header, payload }))
    }
}

/// Why a path is refused before it is sent.
fn path_problem(path: &str) -> Option<String> {
    if path.is_empty() {
        return Some("the path is empty".into());
    }
    if let Some(pos) = path.find('\0') {
        return Some(format!("it contains a NUL byte at offset {pos}"));
    }
    if let Some(c) = path
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '/' | '_' | '@')))
    {
        return Some(format!(
            "it contains {c:?}; xenstore paths use only A-Z a-z 0-9 - / _ @"
        ));
    }
    if path.contains("//") {
        return Some("it contains an empty component (\"//\")".into());
    }
    if path.len() > 1 && path.ends_with('/') {
        return Some("it ends with '/'".into());
    }
    let (limit, what) = if path.starts_with('/') || path.starts_with('@') {
        (ABS_PATH_MAX, "XENSTORE_ABS_PATH_MAX")
    } else {
        (REL_PATH_MAX, "XENSTORE_REL_PATH_MAX")
    };
    if path.len() > limit {
        return Some(format!(
            "it is {} bytes long, over {what} ({limit})",
            path.len()
        ));
    }
    None
}

/// Check a path the way xenstored will, so a bad one fails here with a reason instead of
/// a bare `EINVAL` from the daemon.
pub fn validate_path(path: &str) -> Result<(), XsError> {
    match path_problem(path) {
        None => Ok(()),
        Some(reason) => Err(XsError::InvalidPath {
            path: printable(path),
            reason,
        }),
    }
}

/// Check a watch token: any bytes but NUL.
pub fn validate_token(token: &str) -> Result<(), XsError> {
    if token.contains('\0') {
        return Err(XsError::InvalidArgument(format!(
            "watch token {:?} contains a NUL byte",
            printable(token)
        )));
    }
    Ok(())
}

/// A path or token shortened for error messages.
fn printable(s: &str) -> String {
    const SHOW: usize = 80;
    if s.len() <= SHOW {
        return s.to_string();
    }
    let mut end = SHOW;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &s[..end], s.len())
}

/// Payload builder: NUL-terminated arguments, then optionally raw bytes.
#[derive(Debug, Default)]
pub struct Payload(Vec<u8>);

impl Payload {
    /// An empty payload.
    pub fn new() -> Payload {
        Payload(Vec::new())
    }

    /// Append a NUL-terminated argument.
    pub fn arg(mut self, s: &str) -> Payload {
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
        self
    }

    /// Append raw bytes (a written value, unterminated).
    pub fn raw(mut self, bytes: &[u8]) -> Payload {
        self.0.extend_from_slice(bytes);
        self
    }

    /// The bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// `XS_READ` / `XS_DIRECTORY` / `XS_GET_PERMS` / `XS_MKDIR` / `XS_RM`: `path\0`.
pub fn path_request(path: &str) -> Result<Vec<u8>, XsError> {
    validate_path(path)?;
    Ok(Payload::new().arg(path).into_bytes())
}

/// `XS_WRITE`: `path\0value`.
pub fn write_request(path: &str, value: &[u8]) -> Result<Vec<u8>, XsError> {
    validate_path(path)?;
    let len = path.len() + 1 + value.len();
    if len > PAYLOAD_MAX {
        return Err(XsError::ValueTooLarge {
            path: printable(path),
            value_len: value.len(),
            max: PAYLOAD_MAX.saturating_sub(path.len() + 1),
        });
    }
    Ok(Payload::new().arg(path).raw(value).into_bytes())
}

/// `XS_SET_PERMS`: `path\0perm\0perm\0...`.
pub fn set_perms_request(path: &str, perms: &[Perm]) -> Result<Vec<u8>, XsError> {
    validate_path(path)?;
    if perms.is_empty() {
        return Err(XsError::InvalidArgument(format!(
            "set_perms {path}: the list is empty; the first entry names the owner"
        )));
    }
    let mut p = Payload::new().arg(path);
    for perm in perms {
        p = p.arg(&perm.to_wire());
    }
    Ok(p.into_bytes())
}

/// `XS_WATCH` / `XS_UNWATCH`: `path\0token\0`.
pub fn watch_request(path: &str, token: &str) -> Result<Vec<u8>, XsError> {
    validate_path(path)?;
    validate_token(token)?;
    Ok(Payload::new().arg(path).arg(token).into_bytes())
}

/// `XS_INTRODUCE`: `domid\0gfn\0port\0`.
pub fn introduce_request(dom: DomId, gfn: u64, port: u32) -> Vec<u8> {
    Payload::new()
        .arg(&dom.0.to_string())
        .arg(&gfn.to_string())
        .arg(&port.to_string())
        .into_bytes()
}

/// `XS_RELEASE` / `XS_GET_DOMAIN_PATH` / `XS_IS_DOMAIN_INTRODUCED` / `XS_RESUME`: `domid\0`.
pub fn domid_request(dom: DomId) -> Vec<u8> {
    Payload::new().arg(&dom.0.to_string()).into_bytes()
}

/// The NUL-terminated strings of a payload. A missing final terminator is tolerated.
pub fn split_strings(payload: &[u8]) -> Vec<&[u8]> {
    let body = payload.strip_suffix(&[0]).unwrap_or(payload);
    if body.is_empty() && payload.len() <= 1 {
        return Vec::new();
    }
    body.split(|&b| b == 0).collect()
}

/// A reply that is one string, without its terminator.
pub fn reply_string(payload: &[u8], what: &str) -> Result<String, XsError> {
    let body = payload.strip_suffix(&[0]).unwrap_or(payload);
    if body.contains(&0) {
        return Err(XsError::Protocol(format!(
            "{what} reply holds more than one string"
        )));
    }
    utf8(body, what)
}

fn utf8(bytes: &[u8], what: &str) -> Result<String, XsError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| XsError::Protocol(format!("{what} reply is not valid UTF-8: {bytes:?}")))
}

/// An `XS_DIRECTORY` reply: the child names.
pub fn parse_directory(payload: &[u8]) -> Result<Vec<String>, XsError> {
    split_strings(payload)
        .into_iter()
        .map(|s| {
            if s.is_empty() {
                Err(XsError::Protocol(
                    "DIRECTORY reply has an empty child name".into(),
                ))
            } else {
                utf8(s, "DIRECTORY")
            }
        })
        .collect()
}

/// One `XS_DIRECTORY_PART` reply.
#[derive(Debug, PartialEq, Eq)]
pub struct DirectoryPart {
    /// The node's generation: a change means the listing must restart.
    pub generation: String,
    /// The names in this chunk.
    pub children: Vec<String>,
    /// Bytes of child list this chunk covers (the next offset advances by this).
    pub consumed: usize,
    /// This chunk ends the list.
    pub last: bool,
}

/// Parse an `XS_DIRECTORY_PART` reply: `gen\0child\0child\0...` with one more `\0` after
/// the last chunk.
pub fn parse_directory_part(payload: &[u8]) -> Result<DirectoryPart, XsError> {
    let gen_end = payload
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| XsError::Protocol("DIRECTORY_PART reply has no generation".into()))?;
    let generation = utf8(payload.get(..gen_end).unwrap_or_default(), "DIRECTORY_PART")?;
    let rest = payload.get(gen_end + 1..).unwrap_or_default();
    let last = rest.is_empty() || rest == [0] || rest.ends_with(&[0, 0]);
    let list = if last {
        rest.strip_suffix(&[0]).unwrap_or(rest)
    } else {
        rest
    };
    if !list.is_empty() && !list.ends_with(&[0]) {
        return Err(XsError::Protocol(
            "DIRECTORY_PART reply ends in the middle of a name".into(),
        ));
    }
    let children = parse_directory(list)?;
    Ok(DirectoryPart {
        generation,
        children,
        consumed: list.len(),
        last,
    })
}

/// An `XS_GET_PERMS` reply.
pub fn parse_perms(payload: &[u8]) -> Result<Vec<Perm>, XsError> {
    let perms = split_strings(payload)
        .into_iter()
        .map(|s| {
            std::str::from_utf8(s)
                .ok()
                .and_then(Perm::from_wire)
                .ok_or_else(|| {
                    XsError::Protocol(format!(
                        "GET_PERMS reply has a malformed entry {:?}",
                        String::from_utf8_lossy(s)
                    ))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if perms.is_empty() {
        return Err(XsError::Protocol("GET_PERMS reply is empty".into()));
    }
    Ok(perms)
}

/// An `XS_WATCH_EVENT` payload: `path\0token\0`.
pub fn parse_watch_event(payload: &[u8]) -> Result<WatchEvent, XsError> {
    let strings = split_strings(payload);
    match strings.as_slice() {
        [path, token, ..] => Ok(WatchEvent {
            path: utf8(path, "WATCH_EVENT")?,
            token: utf8(token, "WATCH_EVENT")?,
        }),
        _ => Err(XsError::Protocol(format!(
            "WATCH_EVENT payload {:?} is not \"path\\0token\\0\"",
            String::from_utf8_lossy(payload)
        ))),
    }
}

/// An `XS_ERROR` payload (`"EAGAIN\0"`) as an errno; unknown names become `EIO`.
pub fn parse_error(payload: &[u8]) -> XsError {
    let name = String::from_utf8_lossy(payload.strip_suffix(&[0]).unwrap_or(payload)).into_owned();
    let errno = Errno::from_name(&name).unwrap_or(Errno::EIO);
    XsError::Daemon { errno, name }
}

/// A `"T\0"` / `"F\0"` reply.
pub fn parse_bool(payload: &[u8], what: &str) -> Result<bool, XsError> {
    match payload.strip_suffix(&[0]).unwrap_or(payload) {
        b"T" => Ok(true),
        b"F" => Ok(false),
        other => Err(XsError::Protocol(format!(
            "{what} reply {:?} is neither T nor F",
            String::from_utf8_lossy(other)
        ))),
    }
}

/// An `"OK\0"` reply.
pub fn expect_ok(payload: &[u8], what: &str) -> Result<(), XsError> {
    match payload.strip_suffix(&[0]).unwrap_or(payload) {
        b"OK" => Ok(()),
        other => Err(XsError::Protocol(format!(
            "{what} reply {:?} is not OK",
            String::from_utf8_lossy(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen_host::Access;

    #[test]
    fn type_numbers_follow_xs_wire_h() {
        assert_eq!(MsgType::Control.code(), 0);
        assert_eq!(MsgType::Directory.code(), 1);
        assert_eq!(MsgType::Write.code(), 11);
        assert_eq!(MsgType::WatchEvent.code(), 15);
        assert_eq!(MsgType::Error.code(), 16);
        assert_eq!(MsgType::IsDomainIntroduced.code(), 17);
        assert_eq!(MsgType::SetTarget.code(), 19);
        assert_eq!(MsgType::ResetWatches.code(), 21);
        assert_eq!(MsgType::DirectoryPart.code(), 22);
        for t in MsgType::ALL {
            assert_eq!(MsgType::from_code(t.code()), Some(t));
        }
        assert_eq!(MsgType::from_code(20), None);
        assert_eq!(MsgType::from_code(0xffff), None);
    }

    #[test]
    fn header_round_trips_in_native_order() {
        let h = Header {
            kind: 2,
            req_id: 0x01020304,
            tx_id: 7,
            len: 5,
        };
        let b = h.encode();
        assert_eq!(&b[0..4], &2u32.to_ne_bytes());
        assert_eq!(&b[4..8], &0x01020304u32.to_ne_bytes());
        assert_eq!(Header::decode(&b), Some(h));
        assert_eq!(Header::decode(&b[..15]), None);
    }

    #[test]
    fn take_from_waits_for_whole_messages_and_refuses_oversize() {
        let msg = Message::new(MsgType::Read, 1, 0, b"abc".to_vec()).unwrap();
        let bytes = msg.to_bytes();
        let mut buf = bytes[..10].to_vec();
        assert_eq!(Message::take_from(&mut buf).unwrap(), None);
        buf.extend_from_slice(&bytes[10..]);
        buf.extend_from_slice(&bytes[..4]);
        assert_eq!(Message::take_from(&mut buf).unwrap(), Some(msg));
        assert_eq!(buf.len(), 4);

        let big = Header {
            kind: 2,
            req_id: 1,
            tx_id: 0,
            len: 4097,
        };
        let mut buf = big.encode().to_vec();
        assert!(matches!(
            Message::take_from(&mut buf),
            Err(XsError::ReplyTooLarge { len: 4097 })
        ));
        assert!(matches!(
            Message::new(MsgType::Write, 1, 0, vec![0; 4097]),
            Err(XsError::RequestTooLarge { len: 4097 })
        ));
    }

    #[test]
    fn paths_are_checked_like_xenstored() {
        for ok in [
            "/",
            "/local/domain/0",
            "@releaseDomain",
            "device/vif/0",
            "a-b_c",
        ] {
            validate_path(ok).unwrap();
        }
        for bad in ["", "/a//b", "/a/", "/a\0b", "/a b", "/é"] {
            assert!(
                matches!(validate_path(bad), Err(XsError::InvalidPath { .. })),
                "{bad:?}"
            );
        }
        let long_abs = format!("/{}", "a".repeat(ABS_PATH_MAX));
        assert!(validate_path(&long_abs).is_err());
        validate_path(&long_abs[..ABS_PATH_MAX]).unwrap();
        let long_rel = "a".repeat(REL_PATH_MAX + 1);
        assert!(validate_path(&long_rel).is_err());
        validate_path(&long_rel[..REL_PATH_MAX]).unwrap();
    }

    #[test]
    fn write_payload_limit() {
        let path = "/a";
        let fits = vec![b'x'; PAYLOAD_MAX - 3];
        assert_eq!(write_request(path, &fits).unwrap().len(), PAYLOAD_MAX);
        let over = vec![b'x'; PAYLOAD_MAX - 2];
        match write_request(path, &over) {
            Err(XsError::ValueTooLarge { max, value_len, .. }) => {
                assert_eq!(max, PAYLOAD_MAX - 3);
                assert_eq!(value_len, PAYLOAD_MAX - 2);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn request_payloads() {
        assert_eq!(path_request("/a/b").unwrap(), b"/a/b\0");
        assert_eq!(write_request("/a", b"v\0x").unwrap(), b"/a\0v\0x");
        assert_eq!(watch_request("/a", "tok").unwrap(), b"/a\0tok\0");
        assert!(validate_token("a\0b").is_err());
        assert_eq!(
            introduce_request(DomId(3), 0xfeffc, 5),
            b"3\x001044476\x005\x00"
        );
        assert_eq!(domid_request(DomId(12)), b"12\0");
        let perms = [
            Perm {
                domid: DomId(0),
                access: Access::None,
            },
            Perm {
                domid: DomId(3),
                access: Access::Read,
            },
        ];
        assert_eq!(set_perms_request("/a", &perms).unwrap(), b"/a\0n0\0r3\0");
        assert!(set_perms_request("/a", &[]).is_err());
    }

    #[test]
    fn reply_parsers() {
        assert_eq!(parse_directory(b"").unwrap(), Vec::<String>::new());
        assert_eq!(parse_directory(b"a\0bc\0").unwrap(), vec!["a", "bc"]);
        assert!(parse_directory(b"a\0\0b\0").is_err());
        assert_eq!(
            parse_perms(b"b0\0r3\0").unwrap(),
            vec![
                Perm {
                    domid: DomId(0),
                    access: Access::Both
                },
                Perm {
                    domid: DomId(3),
                    access: Access::Read
                }
            ]
        );
        assert!(parse_perms(b"x0\0").is_err());
        assert!(parse_perms(b"").is_err());
        assert_eq!(
            parse_watch_event(b"/a/b\0tok\0").unwrap(),
            WatchEvent {
                path: "/a/b".into(),
                token: "tok".into()
            }
        );
        assert!(parse_watch_event(b"/a/b\0").is_err());
        match parse_error(b"EAGAIN\0") {
            XsError::Daemon { errno, name } => {
                assert_eq!(errno, Errno::EAGAIN);
                assert_eq!(name, "EAGAIN");
            }
            other => panic!("{other:?}"),
        }
        match parse_error(b"EWHATEVER\0") {
            XsError::Daemon { errno, .. } => assert_eq!(errno, Errno::EIO),
            other => panic!("{other:?}"),
        }
        assert!(parse_bool(b"T\0", "x").unwrap());
        assert!(!parse_bool(b"F\0", "x").unwrap());
        assert!(parse_bool(b"OK\0", "x").is_err());
        expect_ok(b"OK\0", "x").unwrap();
        assert!(expect_ok(b"NO\0", "x").is_err());
        assert_eq!(
            reply_string(b"/local/domain/3\0", "x").unwrap(),
            "/local/domain/3"
        );
        assert!(reply_string(b"a\0b\0", "x").is_err());
    }

    #[test]
    fn directory_part_chunks() {
        let p = parse_directory_part(b"7\0a\0b\0").unwrap();
        assert_eq!(p.generation, "7");
        assert_eq!(p.children, vec!["a", "b"]);
        assert_eq!(p.consumed, 4);
        assert!(!p.last);
        let p = parse_directory_part(b"7\0c\0\0").unwrap();
        assert_eq!(p.children, vec!["c"]);
        assert_eq!(p.consumed, 2);
        assert!(p.last);
        let p = parse_directory_part(b"7\0\0").unwrap();
        assert!(p.children.is_empty());
        assert!(p.last);
        assert!(parse_directory_part(b"7").is_err());
        assert!(parse_directory_part(b"7\0ab").is_err());
    }
}
