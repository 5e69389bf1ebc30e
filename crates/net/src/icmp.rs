//! ICMP echo (ping) without `unsafe`: a socket2 ICMP socket, unprivileged ("ping socket",
//! allowed by `net.ipv4.ping_group_range`) when the system allows it, raw (CAP_NET_RAW)
//! otherwise, handed to tokio as a datagram socket.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::nonce;
use crate::runtime::EchoReply;

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = match chunk {
            [a, b] => u16::from_be_bytes([*a, *b]),
            [a] => u16::from_be_bytes([*a, 0]),
            _ => 0,
        };
        sum += u32::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request: type 8 (IPv4) or 128 (IPv6), with id, sequence and a payload.
pub fn echo_request(v6: bool, id: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(b"portolan-probe..");
    if !v6 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

enum Seen {
    Reply,
    Unreachable(u8),
    Other,
}

/// Whether `quoted` (the original datagram an ICMP error carries: its IP header and at least
/// the first 8 bytes after it, RFC 792 and RFC 4443 §2.4) is our own echo request to `dst`.
/// A raw ICMP socket receives every ICMP packet from `dst`, errors about other sockets' UDP or
/// TCP packets included: only an error quoting our own echo says anything about it. Ping
/// sockets rewrite the identifier, so there only the sequence number is compared.
fn quotes_our_echo(dst: IpAddr, raw: bool, id: u16, seq: u16, quoted: &[u8]) -> bool {
    let echo = match dst {
        IpAddr::V4(d) => {
            let ihl = usize::from(quoted.first().map_or(0, |b| b & 0x0f)) * 4;
            let ok = quoted.first().map(|b| b >> 4) == Some(4)
                && ihl >= 20
                && quoted.get(9) == Some(&1)
                && quoted.get(16..20) == Some(&d.octets()[..]);
            if !ok {
                return false;
            }
            match quoted.get(ihl..) {
                Some(e) if e.first() == Some(&8) => e,
                _ => return false,
            }
        }
        IpAddr::V6(d) => {
            // The fixed header, then (no extension headers on our echo) the ICMPv6 message.
            let ok = quoted.first().map(|b| b >> 4) == Some(6)
                && quoted.get(6) == Some(&58)
                && quoted.get(24..40) == Some(&d.octets()[..]);
            if !ok {
                return false;
            }
            match quoted.get(40..) {
                Some(e) if e.first() == Some(&128) => e,
                _ => return false,
            }
        }
    };
    match echo {
        [_, _, _, _, i0, i1, s0, s1, ..] => {
            u16::from_be_bytes([*s0, *s1]) == seq && (!raw || u16::from_be_bytes([*i0, *i1]) == id)
        }
        _ => false,
    }
}

/// Reads one received packet (`raw` IPv4 packets start with the IP header) for the echo
/// `id`/`seq` sent to `dst`.
fn classify(dst: IpAddr, raw: bool, id: u16, seq: u16, pkt: &[u8]) -> Seen {
    let v6 = dst.is_ipv6();
    let icmp = if raw && !v6 {
        let ihl = usize::from(pkt.first().map_or(0, |b| b & 0x0f)) * 4;
        pkt.get(ihl..).unwrap_or_default()
    } else {
        pkt
    };
    let (reply, unreach) = if v6 { (129, 1) } else { (0, 3) };
    match icmp {
        [t, _, _, _, i0, i1, s0, s1, ..] if *t == reply => {
            let same_seq = u16::from_be_bytes([*s0, *s1]) == seq;
            // Ping sockets rewrite the id to their own; only raw sockets see foreign replies.
            let same_id = !raw || u16::from_be_bytes([*i0, *i1]) == id;
            if same_seq && same_id {
                Seen::Reply
            } else {
                Seen::Other
            }
        }
        // An error about our echo; one about another packet (a concurrent UDP probe's port
        // unreachable) is not ours to report.
        [t, code, _, _, _, _, _, _, quoted @ ..]
            if *t == unreach && quotes_our_echo(dst, raw, id, seq, quoted) =>
        {
            Seen::Unreachable(*code)
        }
        _ => Seen::Other,
    }
}

/// Sends one echo request to `dst` and waits up to `timeout` for the reply.
pub async fn echo(src: Option<IpAddr>, dst: IpAddr, timeout: Duration) -> EchoReply {
    let v6 = dst.is_ipv6();
    let (domain, proto) = if v6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    let (sock, raw) = match Socket::new(domain, Type::DGRAM, Some(proto)) {
        Ok(s) => (s, false),
        Err(_) => match Socket::new(domain, Type::RAW, Some(proto)) {
            Ok(s) => (s, true),
            Err(e) => {
                return EchoReply::LocalError(format!(
                "cannot open an ICMP socket ({e}); run as root or widen net.ipv4.ping_group_range"
            ))
            }
        },
    };
    let setup = || -> std::io::Result<tokio::net::UdpSocket> {
        if let Some(s) = src {
            sock.bind(&SocketAddr::new(s, 0).into())?;
        }
        sock.set_nonblocking(true)?;
        sock.connect(&SocketAddr::new(dst, 0).into())?;
        let std_sock: std::net::UdpSocket = sock.try_clone()?.into();
        tokio::net::UdpSocket::from_std(std_sock)
    };
    let s = match setup() {
        Ok(s) => s,
        Err(e) => return EchoReply::LocalError(e.to_string()),
    };
    let id = nonce::u16();
    let seq = nonce::u16();
    if let Err(e) = s.send(&echo_request(v6, id, seq)).await {
        return match e.kind() {
            ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => {
                EchoReply::Unreachable(e.to_string())
            }
            _ => EchoReply::LocalError(e.to_string()),
        };
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = vec![0u8; 2048];
    loop {
        match tokio::time::timeout_at(deadline, s.recv(&mut buf)).await {
            Err(_) => return EchoReply::Silent,
            Ok(Ok(n)) => match classify(dst, raw, id, seq, buf.get(..n).unwrap_or_default()) {
                Seen::Reply => return EchoReply::Reply,
                Seen::Unreachable(code) => {
                    return EchoReply::Unreachable(format!(
                        "ICMP destination unreachable, code {code}"
                    ))
                }
                Seen::Other => {}
            },
            Ok(Err(e)) => match e.kind() {
                ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => {
                    return EchoReply::Unreachable(e.to_string())
                }
                _ => return EchoReply::LocalError(e.to_string()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DST: &str = "198.51.100.7";

    fn dst() -> IpAddr {
        DST.parse().expect("ip")
    }

    /// An IPv4 header (20 bytes) from `src` to `dst` carrying `proto`.
    fn ip_header(proto: u8, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0];
        h.extend_from_slice(&src);
        h.extend_from_slice(&dst);
        h
    }

    /// What a raw socket reads: the IP header of the error from `DST`, then a destination
    /// unreachable with `code` quoting `quoted`.
    fn unreachable(code: u8, quoted: &[u8]) -> Vec<u8> {
        let mut p = ip_header(1, [198, 51, 100, 7], [10, 20, 0, 33]);
        p.extend_from_slice(&[3, code, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(quoted);
        p
    }

    #[test]
    fn request_checksum_verifies() {
        let p = echo_request(false, 0x1234, 7);
        assert_eq!(checksum(&p), 0);
    }

    #[test]
    fn replies_are_told_from_others() {
        let mut reply = echo_request(false, 9, 3);
        reply[0] = 0;
        assert!(matches!(classify(dst(), false, 1, 3, &reply), Seen::Reply));
        assert!(matches!(classify(dst(), true, 1, 3, &reply), Seen::Other));
        let mut ip = vec![0x45u8; 1];
        ip.extend_from_slice(&[0; 19]);
        ip.extend_from_slice(&reply);
        assert!(matches!(classify(dst(), true, 9, 3, &ip), Seen::Reply));
    }

    #[test]
    fn only_errors_quoting_our_echo_count() {
        let ours = {
            let mut q = ip_header(1, [10, 20, 0, 33], [198, 51, 100, 7]);
            q.extend_from_slice(&echo_request(false, 9, 3));
            q
        };
        assert!(matches!(
            classify(dst(), true, 9, 3, &unreachable(13, &ours)),
            Seen::Unreachable(13)
        ));
        // A port unreachable for a concurrent UDP probe to the same host.
        let mut udp = ip_header(17, [10, 20, 0, 33], [198, 51, 100, 7]);
        udp.extend_from_slice(&[0xc3, 0x50, 0x11, 0x94, 0, 16, 0, 0]);
        assert!(matches!(
            classify(dst(), true, 9, 3, &unreachable(3, &udp)),
            Seen::Other
        ));
        // Another echo (another id, another sequence, another destination), or none at all.
        let other = |id, seq, to: [u8; 4]| {
            let mut q = ip_header(1, [10, 20, 0, 33], to);
            q.extend_from_slice(&echo_request(false, id, seq));
            unreachable(1, &q)
        };
        for pkt in [
            other(8, 3, [198, 51, 100, 7]),
            other(9, 4, [198, 51, 100, 7]),
            other(9, 3, [198, 51, 100, 8]),
            unreachable(1, &[]),
        ] {
            assert!(matches!(classify(dst(), true, 9, 3, &pkt), Seen::Other));
        }
        // A ping socket rewrote the identifier: the sequence decides.
        let icmp_only = unreachable(13, &ours).split_off(20);
        let mut q = ip_header(1, [10, 20, 0, 33], [198, 51, 100, 7]);
        q.extend_from_slice(&echo_request(false, 4242, 3));
        let mut rewritten = icmp_only[..8].to_vec();
        rewritten.extend_from_slice(&q);
        assert!(matches!(
            classify(dst(), false, 9, 3, &rewritten),
            Seen::Unreachable(13)
        ));
    }

    #[test]
    fn v6_errors_quote_the_echo_too() {
        let d: IpAddr = "2001:db8::7".parse().expect("ip");
        let IpAddr::V6(d6) = d else { return };
        let quoted = |next: u8, to: [u8; 16], seq: u16| {
            let mut q = vec![0x60, 0, 0, 0, 0, 24, next, 64];
            q.extend_from_slice(&[0; 16]);
            q.extend_from_slice(&to);
            q.extend_from_slice(&echo_request(true, 9, seq));
            let mut p = vec![1, 4, 0, 0, 0, 0, 0, 0];
            p.extend_from_slice(&q);
            p
        };
        assert!(matches!(
            classify(d, true, 9, 3, &quoted(58, d6.octets(), 3)),
            Seen::Unreachable(4)
        ));
        assert!(matches!(
            classify(d, true, 9, 3, &quoted(17, d6.octets(), 3)),
            Seen::Other
        ));
        assert!(matches!(
            classify(d, true, 9, 3, &quoted(58, d6.octets(), 5)),
            Seen::Other
        ));
    }
}
