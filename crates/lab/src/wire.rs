//! What the lab's probes put on the wire: a marked token in every payload (so a receiver
//! recognises exactly the packet a probe sent), ICMP echo messages, ESP-like packets and DNS
//! queries (hickory-proto builds and parses the messages), and whole forged IP packets (header
//! included, any source address) for the adversarial probes: IPv4 (RFC 791), IPv6 (RFC 8200),
//! TCP SYN (RFC 9293), UDP (RFC 768) and ICMP echo, with the transport checksum over the
//! pseudo-header of each family.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

/// Marks the token inside a payload.
pub const MAGIC: &[u8; 4] = b"PLAB";

/// A token no other probe of this process sends.
pub type Token = [u8; 16];

pub fn token() -> Token {
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&(t ^ u64::from(std::process::id()) << 32).to_be_bytes());
    out[8..].copy_from_slice(&n.to_be_bytes());
    out
}

/// `MAGIC` followed by the token.
pub fn payload(t: &Token) -> Vec<u8> {
    let mut v = MAGIC.to_vec();
    v.extend_from_slice(t);
    v
}

/// The token that follows `MAGIC` anywhere in `data`.
pub fn find_token(data: &[u8]) -> Option<Token> {
    let i = data.windows(MAGIC.len()).position(|w| w == MAGIC)?;
    let rest = data.get(i + MAGIC.len()..i + MAGIC.len() + 16)?;
    let mut t = [0u8; 16];
    t.copy_from_slice(rest);
    Some(t)
}

pub use portolan_payloads::checksum::internet as checksum;

/// An ICMP (v4) or ICMPv6 echo request carrying the token. For ICMPv6 the kernel fills in
/// the checksum.
pub fn echo_request(v4: bool, id: u16, seq: u16, t: &Token) -> Vec<u8> {
    let mut p = vec![if v4 { 8 } else { 128 }, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&payload(t));
    if v4 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// Whether `data` (as a raw ICMP socket returns it: with the IPv4 header, without an IPv6
/// one) is the echo reply to the request with `id` and token `t`.
pub fn is_echo_reply(v4: bool, data: &[u8], id: u16, t: &Token) -> bool {
    let icmp = if v4 {
        let ihl = usize::from(data.first().map_or(0, |b| b & 0x0f)) * 4;
        match data.get(ihl..) {
            Some(x) => x,
            None => return false,
        }
    } else {
        data
    };
    let want = if v4 { 0 } else { 129 };
    icmp.len() >= 8
        && icmp[0] == want
        && u16::from_be_bytes([icmp[4], icmp[5]]) == id
        && find_token(&icmp[8..]) == Some(*t)
}

/// A packet for a port-less protocol: an ESP-like header (SPI, sequence) then the token.
pub fn ip_payload(t: &Token) -> Vec<u8> {
    let mut p = vec![0x00, 0x00, 0x50, 0x4c, 0x00, 0x00, 0x00, 0x01];
    p.extend_from_slice(&payload(t));
    p
}

pub use portolan_payloads::checksum::transport as transport_checksum;

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V6(x) => x,
        IpAddr::V4(x) => x.to_ipv6_mapped(),
    }
}

/// What a forged packet carries above IP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    /// A TCP SYN to `dport` (the token rides as SYN data, which a receiver's raw socket sees).
    TcpSyn {
        sport: u16,
        dport: u16,
    },
    Udp {
        sport: u16,
        dport: u16,
    },
    /// An ICMP or ICMPv6 echo request.
    Echo {
        id: u16,
    },
    /// A port-less protocol (ESP, AH, GRE, ...): an ESP-like header then the token.
    Raw {
        protocol: u8,
    },
}

impl Segment {
    pub fn protocol(self, v4: bool) -> u8 {
        match self {
            Segment::TcpSyn { .. } => 6,
            Segment::Udp { .. } => 17,
            Segment::Echo { .. } if v4 => 1,
            Segment::Echo { .. } => 58,
            Segment::Raw { protocol } => protocol,
        }
    }
}

/// The transport segment of `seg` from `src` to `dst` carrying token `t`, checksum filled in.
pub fn segment(src: IpAddr, dst: IpAddr, seg: Segment, t: &Token) -> Vec<u8> {
    let v4 = src.is_ipv4();
    let protocol = seg.protocol(v4);
    let (mut out, at) = match seg {
        Segment::TcpSyn { sport, dport } => {
            let mut h = Vec::with_capacity(40);
            h.extend_from_slice(&sport.to_be_bytes());
            h.extend_from_slice(&dport.to_be_bytes());
            h.extend_from_slice(&t[12..16]); // initial sequence number
            h.extend_from_slice(&[0, 0, 0, 0]); // acknowledgment number
            h.push(5 << 4); // data offset: 5 words, no options
            h.push(0x02); // SYN
            h.extend_from_slice(&64240u16.to_be_bytes()); // window
            h.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
            h.extend_from_slice(&payload(t));
            (h, Some(16))
        }
        Segment::Udp { sport, dport } => {
            let data = payload(t);
            let mut h = Vec::with_capacity(8 + data.len());
            h.extend_from_slice(&sport.to_be_bytes());
            h.extend_from_slice(&dport.to_be_bytes());
            h.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
            h.extend_from_slice(&[0, 0]);
            h.extend_from_slice(&data);
            (h, Some(6))
        }
        Segment::Echo { id } => {
            let mut p = echo_request(v4, id, 1, t);
            if v4 {
                (p, None)
            } else {
                p[2] = 0;
                p[3] = 0;
                (p, Some(2))
            }
        }
        Segment::Raw { .. } => (ip_payload(t), None),
    };
    if let Some(at) = at {
        let mut c = transport_checksum(src, dst, protocol, &out);
        if c == 0 && protocol == 17 {
            c = 0xffff; // RFC 768: a computed zero is sent as all ones
        }
        out[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
    out
}

/// A whole IP packet (header included) from `src` to `dst`, whatever `src` is: what a host on
/// the wrong side of the firewall can put on the wire.
pub fn forged_packet(src: IpAddr, dst: IpAddr, seg: Segment, t: &Token) -> Vec<u8> {
    let v4 = src.is_ipv4();
    let protocol = seg.protocol(v4);
    let body = segment(src, dst, seg, t);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4_header(s, d, protocol, body, t),
        _ => {
            let mut p = Vec::with_capacity(40 + body.len());
            p.extend_from_slice(&[0x60, 0, 0, 0]); // version 6, traffic class 0, flow label 0
            p.extend_from_slice(&(body.len() as u16).to_be_bytes());
            p.push(protocol);
            p.push(64); // hop limit
            p.extend_from_slice(&v6(src).octets());
            p.extend_from_slice(&v6(dst).octets());
            p.extend_from_slice(&body);
            p
        }
    }
}

fn ipv4_header(s: Ipv4Addr, d: Ipv4Addr, protocol: u8, body: Vec<u8>, t: &Token) -> Vec<u8> {
    let mut p = Vec::with_capacity(20 + body.len());
    p.push(0x45); // version 4, header length 5 words
    p.push(0);
    p.extend_from_slice(&((20 + body.len()) as u16).to_be_bytes());
    p.extend_from_slice(&t[10..12]); // identification
    p.extend_from_slice(&[0, 0]); // flags, fragment offset
    p.push(64); // time to live
    p.push(protocol);
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&s.octets());
    p.extend_from_slice(&d.octets());
    let c = checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&body);
    p
}

/// A DNS query (recursion desired) for the A or AAAA record of `name`.
pub fn dns_query(id: u16, name: &str, v4: bool) -> Result<Vec<u8>, String> {
    let n = Name::from_ascii(name).map_err(|e| format!("bad name {name}: {e}"))?;
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(
        n,
        if v4 { RecordType::A } else { RecordType::AAAA },
    ));
    m.to_vec().map_err(|e| e.to_string())
}

/// The addresses in the answer to query `id`; `None` if `data` is not that answer.
pub fn dns_answers(id: u16, data: &[u8]) -> Option<Vec<IpAddr>> {
    let m = Message::from_vec(data).ok()?;
    if m.metadata.id != id || m.metadata.message_type != MessageType::Response {
        return None;
    }
    Some(m.answers.iter().filter_map(|r| r.data.ip_addr()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let t = token();
        let mut data = vec![1, 2, 3];
        data.extend(ip_payload(&t));
        assert_eq!(find_token(&data), Some(t));
        assert_ne!(token(), t);
    }

    #[test]
    fn echo_checksum_verifies() {
        let t = token();
        let p = echo_request(true, 7, 1, &t);
        assert_eq!(checksum(&p), 0);
        let mut reply = vec![0x45; 20];
        reply[0] = 0x45;
        let mut icmp = p.clone();
        icmp[0] = 0;
        reply.extend(icmp);
        assert!(is_echo_reply(true, &reply, 7, &t));
        assert!(!is_echo_reply(true, &reply, 8, &t));
    }

    /// RFC 1071 section 3's example: the ones'-complement sum of 00 01 f2 03 f4 f5 f6 f7 is
    /// ddf2, so the checksum is its complement, 220d.
    #[test]
    fn checksum_of_rfc1071_example() {
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
    }

    /// A forged packet verifies as a receiver checks it: the IPv4 header sums to zero, and the
    /// transport checksum over the pseudo-header and segment sums to zero.
    #[test]
    fn forged_packets_carry_valid_checksums() {
        let t = token();
        let s: IpAddr = "10.99.0.1".parse().expect("address");
        let d: IpAddr = "10.20.0.5".parse().expect("address");
        for seg in [
            Segment::TcpSyn {
                sport: 40001,
                dport: 4001,
            },
            Segment::Udp {
                sport: 40001,
                dport: 161,
            },
        ] {
            let p = forged_packet(s, d, seg, &t);
            assert_eq!(p[0], 0x45);
            assert_eq!(usize::from(u16::from_be_bytes([p[2], p[3]])), p.len());
            assert_eq!(checksum(&p[..20]), 0, "IPv4 header checksum");
            assert_eq!(&p[12..16], &[10, 99, 0, 1], "the forged source");
            assert_eq!(transport_checksum(s, d, p[9], &p[20..]), 0, "{seg:?}");
            assert_eq!(find_token(&p), Some(t));
        }
        let s6: IpAddr = "2001:db8:1::5".parse().expect("address");
        let d6: IpAddr = "2001:db8:2::9".parse().expect("address");
        for seg in [
            Segment::Udp {
                sport: 40001,
                dport: 5684,
            },
            Segment::Echo { id: 7 },
        ] {
            let p = forged_packet(s6, d6, seg, &t);
            assert_eq!(p[0] >> 4, 6);
            assert_eq!(usize::from(u16::from_be_bytes([p[4], p[5]])), p.len() - 40);
            assert_eq!(transport_checksum(s6, d6, p[6], &p[40..]), 0, "{seg:?}");
        }
        // TCP flags: SYN only, data offset 5.
        let p = forged_packet(s, d, Segment::TcpSyn { sport: 1, dport: 2 }, &t);
        assert_eq!((p[20 + 12], p[20 + 13]), (0x50, 0x02));
    }

    #[test]
    fn dns_messages() {
        let q = dns_query(42, "gk.sensorist.com", true).expect("query");
        assert!(q.len() > 12);
        assert_eq!(dns_answers(42, &q), None, "a query is not an answer");
    }
}
