//! One captured frame → the facts a flow needs: addresses, protocol, ports (or ICMP type and
//! echo identifier, or ESP SPI), TCP flags, IP length, and the transport payload (for DNS).
//!
//! Link layers: Ethernet II with any stack of 802.1Q / 802.1ad tags, Linux cooked capture v1
//! (SLL) and v2 (SLL2), raw IP (DLT_RAW, LINKTYPE_IPV4/IPV6) and BSD loopback (NULL/LOOP).
//! Ethernet, VLAN and SLL headers and the IP layer (options, IPv6 extension headers, lax
//! lengths for truncated snap lengths) are read with `etherparse`; SLL2, which `etherparse` does
//! not know, and the first bytes of the transport header are read here, because a truncated
//! snap length often cuts the TCP header short of what a full parser insists on while the ports
//! and flags are still there.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{EtherType, Ethernet2Slice, LaxIpSlice, LinuxSllProtocolType, LinuxSllSlice};

/// pcap link types this module reads (<https://www.tcpdump.org/linktypes.html>).
pub mod linktype {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    /// `DLT_RAW` as OpenBSD numbers it.
    pub const RAW_OPENBSD: u32 = 14;
    pub const RAW_BSD: u32 = 12;
    pub const RAW: u32 = 101;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
}

/// IP protocol numbers with special handling.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const SCTP: u8 = 132;
}

/// TCP flag bits.
pub mod tcp {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;
}

/// What kind of ICMP message a packet carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpKind {
    EchoRequest,
    EchoReply,
    /// Destination unreachable, time exceeded, packet too big, parameter problem: the payload
    /// quotes the packet that caused it.
    Error,
    Other,
}

/// The decoded facts of one IP packet.
#[derive(Clone, Debug)]
pub struct Packet<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    /// Ports for TCP, UDP and SCTP; 0 otherwise.
    pub sport: u16,
    pub dport: u16,
    /// TCP flags (0 when the header was cut before them).
    pub flags: u8,
    /// ICMP type and code.
    pub icmp: Option<(u8, u8, IcmpKind)>,
    /// ICMP echo identifier, or ESP SPI.
    pub id: u32,
    /// Bytes of the IP packet as sent (from the IP header, not the captured length).
    pub ip_len: u32,
    /// The transport payload as captured (UDP/TCP data; for ICMP errors, the quoted packet).
    pub payload: &'a [u8],
    /// The outermost 802.1Q VLAN id, if tagged.
    pub vlan: Option<u16>,
}

/// Why a frame gave no packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Not IP (ARP, LLDP, …).
    NotIp,
    /// A later fragment, without the transport header.
    Fragment,
    /// Too short or malformed to read.
    Malformed,
    /// A link type this reader does not know.
    LinkType,
}

/// Decodes a frame of link type `link`.
pub fn frame(link: u32, data: &[u8]) -> Result<Packet<'_>, Skip> {
    let (ip, vlan) = match link {
        linktype::ETHERNET => ethernet(data)?,
        linktype::RAW | linktype::RAW_BSD | linktype::RAW_OPENBSD => (data, None),
        linktype::IPV4 | linktype::IPV6 => (data, None),
        linktype::LINUX_SLL => {
            let s = LinuxSllSlice::from_slice(data).map_err(|_| Skip::Malformed)?;
            match s.protocol_type() {
                LinuxSllProtocolType::EtherType(t) => ether_payload(t, s.payload_slice())?,
                _ => return Err(Skip::NotIp),
            }
        }
        linktype::LINUX_SLL2 => {
            // struct sll2_header: protocol (2), reserved (2), if_index (4), hatype (2),
            // pkttype (1), halen (1), addr (8).
            if data.len() < 20 {
                return Err(Skip::Malformed);
            }
            ether_payload(
                EtherType(u16::from_be_bytes([data[0], data[1]])),
                &data[20..],
            )?
        }
        linktype::NULL | linktype::LOOP => {
            if data.len() < 4 {
                return Err(Skip::Malformed);
            }
            (&data[4..], None)
        }
        _ => return Err(Skip::LinkType),
    };
    let mut p = ip_packet(ip)?;
    p.vlan = vlan;
    Ok(p)
}

type IpAndVlan<'a> = (&'a [u8], Option<u16>);

fn ethernet(data: &[u8]) -> Result<IpAndVlan<'_>, Skip> {
    let eth = Ethernet2Slice::from_slice_without_fcs(data).map_err(|_| Skip::Malformed)?;
    ether_payload(eth.ether_type(), eth.payload_slice())
}

/// Follows VLAN tags down to the IP packet.
fn ether_payload(mut t: EtherType, mut rest: &[u8]) -> Result<IpAndVlan<'_>, Skip> {
    let mut vlan = None;
    for _ in 0..4 {
        match t {
            EtherType::IPV4 | EtherType::IPV6 => return Ok((rest, vlan)),
            EtherType::VLAN_TAGGED_FRAME
            | EtherType::PROVIDER_BRIDGING
            | EtherType::VLAN_DOUBLE_TAGGED_FRAME => {
                let v =
                    etherparse::SingleVlanSlice::from_slice(rest).map_err(|_| Skip::Malformed)?;
                vlan.get_or_insert(v.vlan_identifier().value());
                t = v.ether_type();
                rest = v.payload_slice();
            }
            _ => return Err(Skip::NotIp),
        }
    }
    Err(Skip::Malformed)
}

fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(x) => u16::from_be_bytes([x[0], x[1]]),
        None => 0,
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(x) => u32::from_be_bytes([x[0], x[1], x[2], x[3]]),
        None => 0,
    }
}

/// Decodes an IP packet (v4 or v6, told by its first nibble).
pub fn ip_packet(data: &[u8]) -> Result<Packet<'_>, Skip> {
    let (ip, _) = LaxIpSlice::from_slice(data).map_err(|_| Skip::Malformed)?;
    let (src, dst, ip_len, mut proto) = match &ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            if h.fragments_offset().value() != 0 {
                return Err(Skip::Fragment);
            }
            (
                IpAddr::V4(Ipv4Addr::from(h.source())),
                IpAddr::V4(Ipv4Addr::from(h.destination())),
                u32::from(h.total_len()),
                v4.payload().ip_number.0,
            )
        }
        LaxIpSlice::Ipv6(v6) => {
            if v6.is_payload_fragmented() {
                return Err(Skip::Fragment);
            }
            let h = v6.header();
            (
                IpAddr::V6(Ipv6Addr::from(h.source())),
                IpAddr::V6(Ipv6Addr::from(h.destination())),
                u32::from(h.payload_length()) + 40,
                v6.payload().ip_number.0,
            )
        }
    };
    // An IPv4 AH header is an extension to etherparse; the flow's protocol is AH.
    if let LaxIpSlice::Ipv4(v4) = &ip {
        if v4.header().protocol().0 == proto::AH {
            proto = proto::AH;
        }
    }
    let l4 = ip.payload().payload;
    let mut p = Packet {
        src,
        dst,
        proto,
        sport: 0,
        dport: 0,
        flags: 0,
        icmp: None,
        id: 0,
        ip_len,
        payload: &[],
        vlan: None,
    };
    match proto {
        proto::TCP => {
            p.sport = be16(l4, 0);
            p.dport = be16(l4, 2);
            p.flags = l4.get(13).copied().unwrap_or(0);
            let off = usize::from(l4.get(12).copied().unwrap_or(0) >> 4) * 4;
            p.payload = l4.get(off.max(20)..).unwrap_or(&[]);
            if l4.len() < 4 {
                return Err(Skip::Malformed);
            }
        }
        proto::UDP | proto::SCTP => {
            if l4.len() < 4 {
                return Err(Skip::Malformed);
            }
            p.sport = be16(l4, 0);
            p.dport = be16(l4, 2);
            let hdr = if proto == proto::UDP { 8 } else { 12 };
            p.payload = l4.get(hdr..).unwrap_or(&[]);
        }
        proto::ICMP | proto::ICMPV6 => {
            if l4.len() < 2 {
                return Err(Skip::Malformed);
            }
            let (t, c) = (l4[0], l4[1]);
            let kind = match (proto, t) {
                (proto::ICMP, 8) | (proto::ICMPV6, 128) => IcmpKind::EchoRequest,
                (proto::ICMP, 0) | (proto::ICMPV6, 129) => IcmpKind::EchoReply,
                (proto::ICMP, 3 | 4 | 5 | 11 | 12) | (proto::ICMPV6, 1..=4) => IcmpKind::Error,
                _ => IcmpKind::Other,
            };
            p.icmp = Some((t, c, kind));
            if matches!(kind, IcmpKind::EchoRequest | IcmpKind::EchoReply) {
                p.id = u32::from(be16(l4, 4));
            }
            p.payload = l4.get(8..).unwrap_or(&[]);
        }
        proto::ESP => p.id = be32(l4, 0),
        _ => {}
    }
    Ok(p)
}

/// The nftables name of an ICMP (`v6 == false`) or ICMPv6 type, as profiles write
/// `icmp_type`.
pub fn icmp_type_name(v6: bool, t: u8) -> Option<&'static str> {
    portolan_model::icmp::type_name(v6, t)
}
