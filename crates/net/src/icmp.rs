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

/// Reads one received packet (`raw` IPv4 packets start with the IP header).
fn classify(v6: bool, raw: bool, id: u16, seq: u16, pkt: &[u8]) -> Seen {
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
        [t, code, ..] if *t == unreach => Seen::Unreachable(*code),
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
            Ok(Ok(n)) => match classify(v6, raw, id, seq, buf.get(..n).unwrap_or_default()) {
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

    #[test]
    fn request_checksum_verifies() {
        let p = echo_request(false, 0x1234, 7);
        assert_eq!(checksum(&p), 0);
    }

    #[test]
    fn replies_are_told_from_others() {
        let mut reply = echo_request(false, 9, 3);
        reply[0] = 0;
        assert!(matches!(classify(false, false, 1, 3, &reply), Seen::Reply));
        assert!(matches!(classify(false, true, 1, 3, &reply), Seen::Other));
        let mut ip = vec![0x45u8; 1];
        ip.extend_from_slice(&[0; 19]);
        ip.extend_from_slice(&reply);
        assert!(matches!(classify(false, true, 9, 3, &ip), Seen::Reply));
        assert!(matches!(
            classify(false, false, 9, 3, &[3, 13, 0, 0]),
            Seen::Unreachable(13)
        ));
    }
}
