//! The packets of a SYN scan, built and read by hand from the RFCs' layouts: a TCP SYN
//! segment (RFC 9293 §3.1) with its checksum over the pseudo-header (RFC 9293 §3.1, IPv6:
//! RFC 8200 §8.1), the target's answer (SYN-ACK or RST, acknowledging our sequence number
//! plus one), and an ICMP destination-unreachable error quoting one of our SYNs (RFC 792,
//! RFC 4443 §3.1: the quoted IP header and at least the first 8 bytes of its payload — the
//! ports and the sequence number).

use std::net::IpAddr;

/// IANA protocol numbers (RFC 790 / IANA "Assigned Internet Protocol Numbers").
pub const TCP: u8 = 6;

/// TCP flags (RFC 9293 §3.1).
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;

pub use portolan_payloads::checksum::internet as checksum;

/// The checksum of a TCP `segment` (its checksum field zero) between `src` and `dst`.
pub fn tcp_checksum(src: IpAddr, dst: IpAddr, segment: &[u8]) -> u16 {
    portolan_payloads::checksum::transport(src, dst, TCP, segment)
}

/// A SYN from `src`:`sport` to `dst`:`dport` with sequence number `seq`: a 24-byte header
/// with one option, MSS 1460 (kind 2, length 4), as a stack's first SYN carries one; window
/// 1024.
pub fn syn(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, seq: u32) -> [u8; 24] {
    let mut s = [0u8; 24];
    s[0..2].copy_from_slice(&sport.to_be_bytes());
    s[2..4].copy_from_slice(&dport.to_be_bytes());
    s[4..8].copy_from_slice(&seq.to_be_bytes());
    s[12] = 6 << 4; // data offset: 6 words
    s[13] = SYN;
    s[14..16].copy_from_slice(&1024u16.to_be_bytes());
    s[20..24].copy_from_slice(&[2, 4, 0x05, 0xb4]);
    let c = tcp_checksum(src, dst, &s);
    s[16..18].copy_from_slice(&c.to_be_bytes());
    s
}

/// What a TCP segment says, as far as a scan cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
}

/// The TCP header at the start of `b`.
pub fn segment(b: &[u8]) -> Option<Segment> {
    if b.len() < 20 {
        return None;
    }
    Some(Segment {
        sport: u16::from_be_bytes([b[0], b[1]]),
        dport: u16::from_be_bytes([b[2], b[3]]),
        seq: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        ack: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        flags: b[13],
    })
}

/// An IPv4 packet's source, protocol and payload (a raw IPv4 socket returns the header).
pub fn ipv4(b: &[u8]) -> Option<(IpAddr, u8, &[u8])> {
    let first = *b.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(first & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?]));
    let src: [u8; 4] = b.get(12..16)?.try_into().ok()?;
    let end = total.clamp(ihl, b.len());
    Some((IpAddr::from(src), *b.get(9)?, b.get(ihl..end)?))
}

/// An ICMP destination-unreachable error quoting a TCP segment: who sent the error, its
/// code, and the quoted packet's destination and first TCP bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unreachable {
    pub from: IpAddr,
    /// ICMPv4 type 3 codes (RFC 792, RFC 1812 §5.2.7.1: 13 administratively prohibited);
    /// ICMPv6 type 1 codes (RFC 4443 §3.1: 1 administratively prohibited) plus 256 to keep
    /// the two apart.
    pub code: u16,
    pub quoted_dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
}

impl Unreachable {
    /// The code in words.
    pub fn describe(&self) -> String {
        let what = match self.code {
            0 => "net unreachable",
            1 => "host unreachable",
            2 => "protocol unreachable",
            3 => "port unreachable",
            9 | 10 | 13 => "administratively prohibited",
            256 => "no route",
            257 => "administratively prohibited",
            259 => "address unreachable",
            260 => "port unreachable",
            261 | 262 => "rejected by policy",
            _ => "unreachable",
        };
        let code = if self.code >= 256 {
            format!("ICMPv6 type 1 code {}", self.code - 256)
        } else {
            format!("ICMP type 3 code {}", self.code)
        };
        format!("{code} ({what}) from {}", self.from)
    }
}

/// Reads an ICMPv4 packet as a raw socket returns it (IPv4 header first).
pub fn icmp4_unreachable(b: &[u8]) -> Option<Unreachable> {
    let (from, proto, icmp) = ipv4(b)?;
    if proto != 1 || icmp.len() < 8 || icmp[0] != 3 {
        return None;
    }
    let (_, qproto, _) = ipv4(icmp.get(8..)?)?;
    let quoted = icmp.get(8..)?;
    let qihl = usize::from(quoted[0] & 0x0f) * 4;
    let qdst: [u8; 4] = quoted.get(16..20)?.try_into().ok()?;
    let tcp = quoted.get(qihl..qihl + 8)?;
    if qproto != TCP {
        return None;
    }
    Some(Unreachable {
        from,
        code: u16::from(icmp[1]),
        quoted_dst: IpAddr::from(qdst),
        sport: u16::from_be_bytes([tcp[0], tcp[1]]),
        dport: u16::from_be_bytes([tcp[2], tcp[3]]),
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
    })
}

/// Reads an ICMPv6 message (a raw ICMPv6 socket returns no IPv6 header) from `from`.
pub fn icmp6_unreachable(from: IpAddr, icmp: &[u8]) -> Option<Unreachable> {
    if icmp.len() < 8 || icmp[0] != 1 {
        return None;
    }
    let quoted = icmp.get(8..)?;
    // The quoted IPv6 header: next header at 6, destination at 24..40; no extension headers
    // in our SYNs.
    if *quoted.get(6)? != TCP {
        return None;
    }
    let qdst: [u8; 16] = quoted.get(24..40)?.try_into().ok()?;
    let tcp = quoted.get(40..48)?;
    Some(Unreachable {
        from,
        code: 256 + u16::from(icmp[1]),
        quoted_dst: IpAddr::from(qdst),
        sport: u16::from_be_bytes([tcp[0], tcp[1]]),
        dport: u16::from_be_bytes([tcp[2], tcp[3]]),
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn rfc1071_example_checksum() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum (with end-around carry) to ddf2,
        // whose complement is 220d.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
    }

    #[test]
    fn syn_verifies_to_zero() {
        let (s, d) = (
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
        );
        let p = syn(s, d, 40000, 22, 0x0102_0304);
        // A receiver's check: the checksum over pseudo-header and segment with the field
        // filled in is zero (RFC 1071 §1).
        assert_eq!(tcp_checksum(s, d, &p), 0);
        assert_eq!(
            segment(&p),
            Some(Segment {
                sport: 40000,
                dport: 22,
                seq: 0x0102_0304,
                ack: 0,
                flags: SYN
            })
        );
        let s6: IpAddr = "2001:db8::1".parse().expect("literal");
        let d6: IpAddr = "2001:db8::2".parse().expect("literal");
        assert_eq!(tcp_checksum(s6, d6, &syn(s6, d6, 1, 2, 3)), 0);
    }

    #[test]
    fn an_admin_prohibited_error_quoting_our_syn() {
        // ICMP type 3 code 13 from 192.0.2.254, quoting 20 bytes of IPv4 header (to
        // 192.0.2.2, protocol 6) and the first 8 bytes of the SYN.
        let mut p = vec![
            0x45, 0, 0, 56, 0, 0, 0, 0, 64, 1, 0, 0, 192, 0, 2, 254, 192, 0, 2, 1,
        ];
        p.extend_from_slice(&[3, 13, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&[
            0x45, 0, 0, 44, 0, 0, 0, 0, 63, 6, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
        ]);
        p.extend_from_slice(&[0x9c, 0x40, 0, 22, 1, 2, 3, 4]);
        let u = icmp4_unreachable(&p).expect("an unreachable");
        assert_eq!(u.from, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 254)));
        assert_eq!(u.quoted_dst, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));
        assert_eq!(
            (u.code, u.sport, u.dport, u.seq),
            (13, 40000, 22, 0x0102_0304)
        );
        assert!(u.describe().contains("administratively prohibited"));
    }
}
