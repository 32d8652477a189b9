//! Properties of the wire format: arbitrary bytes never panic the parsers, and what the
//! request builders produce decodes back to what went in.

use proptest::prelude::*;
use xen_host::{Access, DomId, Perm};
use xenstore::wire::{self, Header, Message, MsgType, HEADER_LEN, PAYLOAD_MAX};

fn path_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec("[A-Za-z0-9_@-]{1,12}", 1..6)
        .prop_map(|parts| format!("/{}", parts.join("/")))
}

proptest! {
    #[test]
    fn parsers_survive_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..6000)) {
        let mut buf = bytes.clone();
        // Either a message, "need more", or an oversize error; never a panic.
        if let Ok(Some(msg)) = Message::take_from(&mut buf) {
            prop_assert_eq!(msg.payload.len() as u32, msg.header.len);
            prop_assert_eq!(buf.len() + HEADER_LEN + msg.payload.len(), bytes.len());
        }
        let _ = wire::parse_directory(&bytes);
        let _ = wire::parse_directory_part(&bytes);
        let _ = wire::parse_perms(&bytes);
        let _ = wire::parse_watch_event(&bytes);
        let _ = wire::parse_error(&bytes);
        let _ = wire::parse_bool(&bytes, "p");
        let _ = wire::expect_ok(&bytes, "p");
        let _ = wire::reply_string(&bytes, "p");
        let s = String::from_utf8_lossy(&bytes);
        let _ = wire::validate_path(&s);
    }

    #[test]
    fn frames_split_anywhere_reassemble(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..5),
        cut in any::<prop::sample::Index>(),
    ) {
        let msgs: Vec<Message> = payloads
            .into_iter()
            .enumerate()
            .map(|(i, p)| Message::new(MsgType::Read, i as u32, 0, p).unwrap())
            .collect();
        let stream: Vec<u8> = msgs.iter().flat_map(|m| m.to_bytes()).collect();
        let at = cut.index(stream.len() + 1);
        let mut buf = stream[..at].to_vec();
        let mut got = Vec::new();
        while let Some(m) = Message::take_from(&mut buf).unwrap() {
            got.push(m);
        }
        buf.extend_from_slice(&stream[at..]);
        while let Some(m) = Message::take_from(&mut buf).unwrap() {
            got.push(m);
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, msgs);
    }

    #[test]
    fn write_requests_decode_back(path in path_strategy(), value in prop::collection::vec(any::<u8>(), 0..200)) {
        let p = wire::write_request(&path, &value).unwrap();
        let nul = p.iter().position(|&b| b == 0).unwrap();
        prop_assert_eq!(&p[..nul], path.as_bytes());
        prop_assert_eq!(&p[nul + 1..], &value[..]);
        prop_assert!(p.len() <= PAYLOAD_MAX);
    }

    #[test]
    fn perms_round_trip(entries in prop::collection::vec((0u16..0x7ff0, 0u8..4), 1..20)) {
        let perms: Vec<Perm> = entries
            .iter()
            .map(|&(d, a)| Perm {
                domid: DomId(d),
                access: [Access::None, Access::Read, Access::Write, Access::Both][a as usize],
            })
            .collect();
        let req = wire::set_perms_request("/a", &perms).unwrap();
        // The server's GET_PERMS reply is the same list after the path.
        prop_assert_eq!(wire::parse_perms(&req[3..]).unwrap(), perms);
    }

    #[test]
    fn headers_round_trip(kind: u32, req_id: u32, tx_id: u32, len: u32) {
        let h = Header { kind, req_id, tx_id, len };
        prop_assert_eq!(Header::decode(&h.encode()), Some(h));
    }
}
