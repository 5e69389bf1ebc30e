//! Who answered a probe: raw sockets (CAP_NET_RAW) opened before a TCP connect or a UDP
//! request, read after it, so that an ICMP error is attributed to the address that sent it
//! (the target, or a router or firewall on the path) and a TCP segment's TTL is known (a reset
//! whose TTL differs from the target's SYN-ACK was likely sent by a device on the path).
//!
//! An ICMP error quotes the datagram it is about (its IP header and at least 8 bytes after
//! it: RFC 792 for IPv4, RFC 4443 §2.4 for IPv6), so only errors quoting our own protocol,
//! source port, destination address and port are taken. Without the privilege, nothing is
//! attributed and the probe says so by its confidence. The TTL is read for IPv4 only (an IPv6
//! raw socket does not deliver the IP header).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

/// Raw sockets watching one probe's answers.
pub struct Watch {
    icmp: Option<UdpSocket>,
    tcp: Option<UdpSocket>,
}

/// An ICMP error about our packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpError {
    /// The error's source address.
    pub from: IpAddr,
    pub kind: u8,
    pub code: u8,
}

impl IcmpError {
    /// Whether the error is what a firewall's REJECT sends (port unreachable, administratively
    /// prohibited: RFC 1812 §5.2.7.1, RFC 4443 §3.1), rather than a router without a route
    /// (network or host unreachable).
    pub fn is_reject(&self, v6: bool) -> bool {
        match (v6, self.kind) {
            (false, 3) => matches!(self.code, 3 | 9 | 10 | 13),
            (true, 1) => matches!(self.code, 1 | 4 | 5 | 6),
            _ => false,
        }
    }

    /// The error in words (RFC 792 and RFC 4443 codes).
    pub fn text(&self, v6: bool) -> String {
        let what = match (v6, self.kind, self.code) {
            (false, 3, 0) | (true, 1, 0) => "network unreachable",
            (false, 3, 1) | (true, 1, 3) => "host unreachable",
            (false, 3, 3) | (true, 1, 4) => "port unreachable",
            (false, 3, 9 | 10 | 13) | (true, 1, 1) => "administratively prohibited",
            (false, 3, 2) => "protocol unreachable",
            _ => "destination unreachable",
        };
        format!("ICMP {what} from {}", self.from)
    }
}

fn raw(domain: Domain, proto: Protocol) -> Option<UdpSocket> {
    let s = Socket::new(domain, Type::RAW, Some(proto)).ok()?;
    s.set_nonblocking(true).ok()?;
    let std_sock: std::net::UdpSocket = s.into();
    UdpSocket::from_std(std_sock).ok()
}

/// The bytes after an IPv4 header.
fn after_v4_header(pkt: &[u8]) -> Option<(&[u8], u8)> {
    let ihl = usize::from(pkt.first()? & 0x0f) * 4;
    if pkt.first()? >> 4 != 4 || ihl < 20 {
        return None;
    }
    Some((pkt.get(ihl..)?, *pkt.get(8)?))
}

/// Whether `quoted` (an IP header and what followed) is our `proto` datagram from `local_port`
/// to `dst`.
fn quotes(quoted: &[u8], proto: u8, local_port: u16, dst: SocketAddr) -> bool {
    let (next, dst_ip, body) = match dst.ip() {
        IpAddr::V4(d) => {
            let ihl = usize::from(quoted.first().map_or(0, |b| b & 0x0f)) * 4;
            if quoted.first().map(|b| b >> 4) != Some(4) || ihl < 20 {
                return false;
            }
            (
                quoted.get(9).copied(),
                quoted.get(16..20) == Some(&d.octets()[..]),
                quoted.get(ihl..),
            )
        }
        IpAddr::V6(d) => {
            if quoted.first().map(|b| b >> 4) != Some(6) {
                return false;
            }
            (
                quoted.get(6).copied(),
                quoted.get(24..40) == Some(&d.octets()[..]),
                quoted.get(40..),
            )
        }
    };
    match body {
        Some([s0, s1, d0, d1, ..]) => {
            next == Some(proto)
                && dst_ip
                && u16::from_be_bytes([*s0, *s1]) == local_port
                && u16::from_be_bytes([*d0, *d1]) == dst.port()
        }
        _ => false,
    }
}

/// Reads one ICMP packet as the raw socket delivers it (IPv4: with its IP header).
pub fn icmp_error_about(
    pkt: &[u8],
    from: IpAddr,
    proto: u8,
    local_port: u16,
    dst: SocketAddr,
) -> Option<IcmpError> {
    let (icmp, unreach) = if dst.is_ipv6() {
        (pkt, 1)
    } else {
        (after_v4_header(pkt)?.0, 3)
    };
    match icmp {
        [t, code, _, _, _, _, _, _, quoted @ ..]
            if *t == unreach && quotes(quoted, proto, local_port, dst) =>
        {
            Some(IcmpError {
                from,
                kind: *t,
                code: *code,
            })
        }
        _ => None,
    }
}

/// Reads one IPv4 TCP segment as a raw socket delivers it: its TTL and flags when it comes
/// from `dst` to `local_port`.
pub fn tcp_segment_from(pkt: &[u8], local_port: u16, dst: SocketAddr) -> Option<(u8, u8)> {
    let IpAddr::V4(d) = dst.ip() else {
        return None;
    };
    if pkt.get(12..16) != Some(&d.octets()[..]) {
        return None;
    }
    let (tcp, ttl) = after_v4_header(pkt)?;
    match tcp {
        [s0, s1, d0, d1, _, _, _, _, _, _, _, _, _, flags, ..]
            if u16::from_be_bytes([*s0, *s1]) == dst.port()
                && u16::from_be_bytes([*d0, *d1]) == local_port =>
        {
            Some((ttl, *flags))
        }
        _ => None,
    }
}

impl Watch {
    /// Opens the watchers for a probe to `dst`: ICMP errors always, TCP segments when `tcp`.
    pub fn open(dst: IpAddr, tcp: bool) -> Watch {
        let (domain, icmp) = if dst.is_ipv6() {
            (Domain::IPV6, Protocol::ICMPV6)
        } else {
            (Domain::IPV4, Protocol::ICMPV4)
        };
        Watch {
            icmp: raw(domain, icmp),
            tcp: if tcp && dst.is_ipv4() {
                raw(Domain::IPV4, Protocol::TCP)
            } else {
                None
            },
        }
    }

    /// Whether ICMP errors can be attributed at all (the raw socket opened).
    pub fn attributes(&self) -> bool {
        self.icmp.is_some()
    }

    /// The ICMP error about our `proto` datagram from `local_port` to `dst` that has arrived,
    /// waiting at most `wait` for it.
    pub async fn icmp_error(
        &self,
        proto: u8,
        local_port: u16,
        dst: SocketAddr,
        wait: Duration,
    ) -> Option<IcmpError> {
        let sock = self.icmp.as_ref()?;
        let deadline = tokio::time::Instant::now() + wait;
        let mut buf = vec![0u8; 2048];
        loop {
            match tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await {
                Ok(Ok((n, from))) => {
                    let pkt = buf.get(..n).unwrap_or_default();
                    if let Some(e) = icmp_error_about(pkt, from.ip(), proto, local_port, dst) {
                        return Some(e);
                    }
                }
                _ => return None,
            }
        }
    }

    /// TTL and flags of the first TCP segment from `dst` to `local_port` that has arrived
    /// (the SYN-ACK, or the reset), waiting at most `wait`.
    pub async fn tcp_answer(
        &self,
        local_port: u16,
        dst: SocketAddr,
        wait: Duration,
    ) -> Option<(u8, u8)> {
        let sock = self.tcp.as_ref()?;
        let deadline = tokio::time::Instant::now() + wait;
        let mut buf = vec![0u8; 2048];
        loop {
            match tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await {
                Ok(Ok((n, _))) => {
                    if let Some(x) =
                        tcp_segment_from(buf.get(..n).unwrap_or_default(), local_port, dst)
                    {
                        return Some(x);
                    }
                }
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 header (20 bytes) with `proto`, `src`, `dst` and `ttl`; checksum left zero.
    fn v4(proto: u8, ttl: u8, src: [u8; 4], dst: [u8; 4], body: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, ttl, proto, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        let len = (p.len() + body.len()) as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        p.extend_from_slice(body);
        p
    }

    #[test]
    fn port_unreachable_from_a_router_names_the_router() {
        let dst: SocketAddr = "198.51.100.10:5684".parse().expect("addr");
        // Our UDP datagram 10.20.0.33:40000 → 198.51.100.10:5684 as quoted (RFC 792: header +
        // 8 bytes), inside a type 3 code 3 error from 10.20.0.1.
        let quoted = v4(
            17,
            63,
            [10, 20, 0, 33],
            [198, 51, 100, 10],
            &[0x9c, 0x40, 0x16, 0x34, 0, 8, 0, 0],
        );
        let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
        icmp.extend(quoted);
        let pkt = v4(1, 64, [10, 20, 0, 1], [10, 20, 0, 33], &icmp);
        let from: IpAddr = "10.20.0.1".parse().expect("ip");
        let e = icmp_error_about(&pkt, from, 17, 40000, dst).expect("ours");
        assert_eq!((e.from, e.kind, e.code), (from, 3, 3));
        assert_eq!(e.text(false), "ICMP port unreachable from 10.20.0.1");
        assert!(e.is_reject(false));
        // A router without a route (type 3 code 0) does not reject: it cannot deliver.
        let no_route = IcmpError { code: 0, ..e };
        assert!(!no_route.is_reject(false));
        assert!(IcmpError { code: 13, ..e }.is_reject(false));
        // Another source port, another protocol: not ours.
        assert!(icmp_error_about(&pkt, from, 17, 40001, dst).is_none());
        assert!(icmp_error_about(&pkt, from, 6, 40000, dst).is_none());
    }

    #[test]
    fn tcp_segment_ttl_and_flags() {
        let dst: SocketAddr = "198.51.100.10:443".parse().expect("addr");
        // A reset (flags 0x14: RST, ACK) from 198.51.100.10:443 to port 40000, TTL 64.
        let mut tcp = vec![0x01, 0xbb, 0x9c, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x14];
        tcp.extend_from_slice(&[0; 6]);
        let pkt = v4(6, 64, [198, 51, 100, 10], [10, 20, 0, 33], &tcp);
        assert_eq!(tcp_segment_from(&pkt, 40000, dst), Some((64, 0x14)));
        assert_eq!(tcp_segment_from(&pkt, 40001, dst), None);
    }
}
