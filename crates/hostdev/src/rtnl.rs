//! A small synchronous rtnetlink client (netlink-sys + netlink-packet-route): look a
//! link up by name, change it, and, for tests and tools, create and delete links. Every
//! request asks for an acknowledgement, so an error comes back as the kernel's errno.

use std::io;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::link::{
    InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// What rxl needs to know about a network interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Its index.
    pub index: u32,
    /// Its name.
    pub name: String,
    /// Whether it is a bridge (`IFLA_INFO_KIND` = `bridge`).
    pub is_bridge: bool,
    /// The index of the bridge (or bond) it is a port of.
    pub master: Option<u32>,
    /// Its MTU.
    pub mtu: Option<u32>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Its hardware address.
    pub address: Option<Vec<u8>>,
}

/// A change to one link; `None` fields are left alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkChange {
    /// Bring it up or down.
    pub up: Option<bool>,
    /// Make it a port of this bridge (`Some(0)`: of none).
    pub master: Option<u32>,
    /// Set its MTU.
    pub mtu: Option<u32>,
    /// Set its hardware address.
    pub address: Option<[u8; 6]>,
    /// Rename it.
    pub name: Option<String>,
}

/// An open NETLINK_ROUTE socket in the calling thread's network namespace.
#[derive(Debug)]
pub struct Rtnl {
    socket: Socket,
    seq: u32,
}

impl Rtnl {
    /// Open and bind a socket.
    pub fn open() -> io::Result<Rtnl> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Rtnl { socket, seq: 0 })
    }

    /// Send `msg` with `flags` and return the replies up to and including the
    /// acknowledgement; a negative acknowledgement is its errno.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket.send(&buf, 0)?;
        let mut replies = Vec::new();
        loop {
            let (data, _) = self.socket.recv_from_full()?;
            let mut off = 0;
            while off < data.len() {
                let reply: NetlinkMessage<RouteNetlinkMessage> =
                    NetlinkMessage::deserialize(&data[off..])
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = reply.header.length as usize;
                if len == 0 {
                    break;
                }
                off += len;
                if reply.header.sequence_number != seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(replies),
                            Some(_) => Err(e.to_io()),
                        };
                    }
                    NetlinkPayload::InnerMessage(m) => replies.push(m),
                    NetlinkPayload::Done(_) => return Ok(replies),
                    _ => {}
                }
            }
        }
    }

    /// The link named `name`, or `None` when there is none.
    pub fn link(&mut self, name: &str) -> io::Result<Option<Link>> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        self.get(m)
    }

    /// The link with index `index`, or `None` when there is none.
    pub fn link_by_index(&mut self, index: u32) -> io::Result<Option<Link>> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        self.get(m)
    }

    fn get(&mut self, m: LinkMessage) -> io::Result<Option<Link>> {
        match self.request(RouteNetlinkMessage::GetLink(m), 0) {
            Ok(replies) => Ok(replies.into_iter().find_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(to_link(&l)),
                _ => None,
            })),
            Err(e) if e.raw_os_error() == Some(nix::libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Apply `change` to the link with index `index`, in one request.
    pub fn set(&mut self, index: u32, change: &LinkChange) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        if let Some(up) = change.up {
            m.header.change_mask = LinkFlags::Up;
            m.header.flags = if up {
                LinkFlags::Up
            } else {
                LinkFlags::empty()
            };
        }
        if let Some(master) = change.master {
            m.attributes.push(LinkAttribute::Controller(master));
        }
        if let Some(mtu) = change.mtu {
            m.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(addr) = change.address {
            m.attributes.push(LinkAttribute::Address(addr.to_vec()));
        }
        if let Some(name) = &change.name {
            m.attributes.push(LinkAttribute::IfName(name.clone()));
        }
        self.request(RouteNetlinkMessage::SetLink(m), 0).map(drop)
    }

    /// Create a bridge named `name` (for tests and tools; rxl never creates bridges).
    pub fn add_bridge(&mut self, name: &str) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        m.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
            .map(drop)
    }

    /// Create a veth pair `name` / `peer` (for tests: a stand-in for a vif).
    pub fn add_veth(&mut self, name: &str, peer: &str) -> io::Result<()> {
        let mut p = LinkMessage::default();
        p.attributes.push(LinkAttribute::IfName(peer.to_owned()));
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(netlink_packet_route::link::InfoData::Veth(InfoVeth::Peer(
                p,
            ))),
        ]));
        self.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
            .map(drop)
    }

    /// Delete the link with index `index`.
    pub fn delete(&mut self, index: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        self.request(RouteNetlinkMessage::DelLink(m), 0).map(drop)
    }
}

fn to_link(m: &LinkMessage) -> Link {
    let mut link = Link {
        index: m.header.index,
        name: String::new(),
        is_bridge: false,
        master: None,
        mtu: None,
        up: m.header.flags.contains(LinkFlags::Up),
        address: None,
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name.clone_from(n),
            LinkAttribute::Controller(i) if *i != 0 => link.master = Some(*i),
            LinkAttribute::Mtu(v) => link.mtu = Some(*v),
            LinkAttribute::Address(a) => link.address = Some(a.clone()),
            LinkAttribute::LinkInfo(infos) => {
                link.is_bridge = infos
                    .iter()
                    .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Bridge)));
            }
            _ => {}
        }
    }
    link
}
