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
#[inline(always)]
pub fn frame(link: u32, data: &[u8]) -> Result<Packet<'_>, Skip> {
    // The common case first: untagged Ethernet carrying IPv4 or IPv6 (see `simple`).
    if link == linktype::ETHERNET && data.len() >= 14 {
        if let Some(p) = match u16::from_be_bytes([data[12], data[13]]) {
            0x0800 => simple_v4(&data[14..]),
            0x86dd => simple_v6(&data[14..]),
            _ => None,
        } {
            return Ok(p);
        }
    }
    frame_parsed(link, data)
}

/// [`frame`] through `etherparse` for every link layer and IP header.
fn frame_parsed(link: u32, data: &[u8]) -> Result<Packet<'_>, Skip> {
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

// The simple case, read without `etherparse`: most packets of a capture are IPv4 without
// options (IHL 5, RFC 791 §3.1) or IPv6 without extension headers (RFC 8200 §3), not
// fragments, carrying TCP or UDP, with a total or payload length that the captured bytes hold.
// For those, the fields sit at fixed offsets, and the result is the one `etherparse`'s lax
// reading gives (the IP payload is cut at the length the header states); anything else
// (options, extension headers, fragments, lengths longer than the capture or shorter than the
// header, other protocols) returns `None` and goes the parsed way. `tests::simple_matches_parsed`
// holds the two to the same answer on every packet of a mutated corpus.

/// The simple IPv4 case, or `None`.
#[inline(always)]
fn simple_v4(d: &[u8]) -> Option<Packet<'_>> {
    if d.len() < 20 || d[0] != 0x45 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([d[2], d[3]]));
    // Fragment offset (the low 13 bits of bytes 6..8): a later fragment has no ports.
    if total < 20 || total > d.len() || (u16::from_be_bytes([d[6], d[7]]) & 0x1fff) != 0 {
        return None;
    }
    let src = IpAddr::V4(Ipv4Addr::new(d[12], d[13], d[14], d[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(d[16], d[17], d[18], d[19]));
    simple_transport(src, dst, d[9], total as u32, &d[20..total])
}

/// The simple IPv6 case, or `None`.
#[inline(always)]
fn simple_v6(d: &[u8]) -> Option<Packet<'_>> {
    if d.len() < 40 || d[0] >> 4 != 6 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([d[4], d[5]]));
    if len == 0 || 40 + len > d.len() {
        return None;
    }
    let mut a = [0u8; 16];
    a.copy_from_slice(&d[8..24]);
    let src = IpAddr::V6(Ipv6Addr::from(a));
    a.copy_from_slice(&d[24..40]);
    let dst = IpAddr::V6(Ipv6Addr::from(a));
    simple_transport(src, dst, d[6], len as u32 + 40, &d[40..40 + len])
}

/// TCP or UDP of the simple case, read as [`ip_packet`] reads them; `None` for any other
/// protocol or a transport header too short for it.
#[inline(always)]
fn simple_transport<'a>(
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    ip_len: u32,
    l4: &'a [u8],
) -> Option<Packet<'a>> {
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
        proto::TCP if l4.len() >= 20 => {
            p.sport = be16(l4, 0);
            p.dport = be16(l4, 2);
            p.flags = l4[13];
            let off = usize::from(l4[12] >> 4) * 4;
            p.payload = l4.get(off.max(20)..).unwrap_or(&[]);
        }
        proto::UDP if l4.len() >= 8 => {
            p.sport = be16(l4, 0);
            p.dport = be16(l4, 2);
            p.payload = &l4[8..];
        }
        _ => return None,
    }
    Some(p)
}

/// Decodes an IP packet (v4 or v6, told by its first nibble).
#[inline]
pub fn ip_packet(data: &[u8]) -> Result<Packet<'_>, Skip> {
    let simple = match data.first().map(|b| b >> 4) {
        Some(4) => simple_v4(data),
        Some(6) => simple_v6(data),
        _ => None,
    };
    match simple {
        Some(p) => Ok(p),
        None => ip_parsed(data),
    }
}

/// [`ip_packet`] through `etherparse`.
fn ip_parsed(data: &[u8]) -> Result<Packet<'_>, Skip> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields of a decoded packet, for comparison.
    fn facts(p: &Packet<'_>) -> String {
        format!("{p:?}")
    }

    /// A valid IPv4 or IPv6 packet of protocol `proto` with `payload` bytes of payload.
    fn packet(v6: bool, proto: u8, payload: usize) -> Vec<u8> {
        let l4 = match proto {
            proto::TCP => 20,
            proto::UDP => 8,
            _ => 8,
        };
        let mut t = vec![0u8; l4 + payload];
        t[0..4].copy_from_slice(&[0x13, 0x88, 0x01, 0xbb]);
        if proto == proto::TCP {
            t[12] = 0x50;
            t[13] = tcp::SYN;
        }
        for (i, b) in t.iter_mut().enumerate().skip(l4) {
            *b = i as u8;
        }
        let mut ip = if v6 {
            let mut h = vec![0u8; 40];
            h[0] = 0x60;
            h[4..6].copy_from_slice(&(t.len() as u16).to_be_bytes());
            h[6] = proto;
            h[7] = 64;
            h[8] = 0x20;
            h[9] = 0x01;
            h[23] = 1;
            h[24] = 0x20;
            h[25] = 0x01;
            h[39] = 2;
            h
        } else {
            let mut h = vec![0u8; 20];
            h[0] = 0x45;
            h[2..4].copy_from_slice(&((20 + t.len()) as u16).to_be_bytes());
            h[8] = 64;
            h[9] = proto;
            h[12..16].copy_from_slice(&[192, 0, 2, 1]);
            h[16..20].copy_from_slice(&[198, 51, 100, 2]);
            h
        };
        ip.extend(t);
        ip
    }

    /// The fast reading of the simple case against `etherparse`'s (`ip_parsed`), on valid
    /// packets and on a corpus of mutations of them: the version and header length byte, the
    /// lengths, the fragment field, the protocol, the TCP data offset, and cuts at every
    /// length. Wherever the fast reading answers, `etherparse` must give the same packet; and
    /// the unmutated packets must all take the fast way (or the test would prove nothing).
    #[test]
    fn simple_matches_parsed() {
        let mut fast = 0;
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for v6 in [false, true] {
            for proto in [proto::TCP, proto::UDP, proto::ICMP, proto::SCTP] {
                for payload in [0usize, 1, 7, 30] {
                    let base = packet(v6, proto, payload);
                    let simple: fn(&[u8]) -> Option<Packet<'_>> =
                        if v6 { simple_v6 } else { simple_v4 };
                    let p = simple(&base);
                    if matches!(proto, proto::TCP | proto::UDP) {
                        let p = p.expect("a valid TCP or UDP packet is the simple case");
                        let q = ip_parsed(&base).expect("etherparse reads it");
                        assert_eq!(facts(&p), facts(&q));
                        assert_eq!(p.payload.len(), payload);
                        fast += 1;
                    } else {
                        assert!(p.is_none());
                    }
                    let mut variants: Vec<Vec<u8>> =
                        (0..=base.len()).map(|n| base[..n].to_vec()).collect();
                    for _ in 0..400 {
                        let mut m = base.clone();
                        let at = [0usize, 2, 3, 4, 5, 6, 7, 9, 20 + 12, 40 + 12];
                        for _ in 0..1 + next() % 3 {
                            let i = at[(next() % at.len() as u64) as usize];
                            if i < m.len() {
                                m[i] = next() as u8;
                            }
                        }
                        if next() % 4 == 0 {
                            m.truncate((next() % (m.len() as u64 + 1)) as usize);
                        }
                        if next() % 4 == 0 {
                            // Link-layer padding after the packet.
                            m.extend([0u8; 6]);
                        }
                        variants.push(m);
                    }
                    for m in &variants {
                        if let Some(p) = simple(m) {
                            let q = ip_parsed(m).unwrap_or_else(|e| {
                                panic!("fast reading of {m:02x?} where etherparse gives {e:?}")
                            });
                            assert_eq!(facts(&p), facts(&q), "{m:02x?}");
                            fast += 1;
                        }
                        // Through the public entry point, the answer is etherparse's whatever
                        // way it takes.
                        assert_eq!(
                            format!("{:?}", ip_packet(m)),
                            format!("{:?}", ip_parsed(m)),
                            "{m:02x?}"
                        );
                    }
                }
            }
        }
        assert!(fast > 1_000, "only {fast} packets took the fast way");
    }

    /// An untagged Ethernet frame takes the fast way to the answer `etherparse` gives for the
    /// IP packet after its 14-byte header.
    #[test]
    fn ethernet_frames_match_parsed() {
        for (v6, ethertype) in [(false, [0x08, 0x00]), (true, [0x86, 0xdd])] {
            let mut f = vec![0u8; 12];
            f.extend(ethertype);
            f.extend(packet(v6, proto::TCP, 10));
            f.extend([0u8; 4]);
            let fast = frame(linktype::ETHERNET, &f).expect("decodes");
            let parsed = ip_parsed(&f[14..]).expect("decodes");
            assert_eq!(facts(&fast), facts(&parsed));
            assert_eq!(fast.payload.len(), 10);
        }
    }
}
