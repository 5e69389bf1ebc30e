//! ICMP echo (RFC 792; ICMPv6: RFC 4443 §4.1): whether the target answers a ping, and the
//! first round-trip sample of the scan. Two requests at most; a raw socket, or where raw
//! sockets are not permitted the kernel's ping socket (`SOCK_DGRAM`, allowed by
//! `net.ipv4.ping_group_range`).

use std::io::Read as _;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde::Serialize;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::wire::checksum;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Echo {
    /// An echo reply came back after `rtt_us` microseconds.
    Replied { rtt_us: u64 },
    /// Two requests, no reply.
    NoReply,
    /// Not tried: why.
    NotTried { why: String },
}

/// Pings `target` (at most two requests, `wait` each).
pub fn ping(target: IpAddr, source: IpAddr, interface: Option<&str>, wait: Duration) -> Echo {
    let (domain, proto) = if target.is_ipv4() {
        (Domain::IPV4, Protocol::ICMPV4)
    } else {
        (Domain::IPV6, Protocol::ICMPV6)
    };
    let (sock, raw) = match Socket::new(domain, Type::RAW, Some(proto)) {
        Ok(s) => (s, true),
        Err(_) => match Socket::new(domain, Type::DGRAM, Some(proto)) {
            Ok(s) => (s, false),
            Err(e) => {
                return Echo::NotTried {
                    why: format!("no raw or ping socket: {e}"),
                }
            }
        },
    };
    if let Some(i) = interface {
        if let Err(e) = sock.bind_device(Some(i.as_bytes())) {
            return Echo::NotTried {
                why: format!("cannot bind to {i}: {e}"),
            };
        }
    }
    if let Err(e) = sock.bind(&SockAddr::from(SocketAddr::new(source, 0))) {
        return Echo::NotTried {
            why: format!("cannot send from {source}: {e}"),
        };
    }
    if let Err(e) = sock.connect(&SockAddr::from(SocketAddr::new(target, 0))) {
        return Echo::NotTried {
            why: format!("cannot reach {target}: {e}"),
        };
    }
    let _ = sock.set_read_timeout(Some(Duration::from_millis(20)));
    let id = portolan_payloads::nonce::u16();
    let mut sock = sock;
    for seq in 1..=2u16 {
        let v4 = target.is_ipv4();
        let mut p = vec![if v4 { 8 } else { 128 }, 0, 0, 0];
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(b"portolan-scan");
        if v4 {
            let c = checksum(&p);
            p[2..4].copy_from_slice(&c.to_be_bytes());
        }
        let t0 = Instant::now();
        if sock.send(&p).is_err() {
            continue;
        }
        let mut buf = [0u8; 1500];
        while t0.elapsed() < wait {
            let Ok(n) = sock.read(&mut buf) else { continue };
            let b = &buf[..n];
            // A raw IPv4 socket returns the IPv4 header; ping sockets and ICMPv6 do not.
            let icmp = if v4 && raw {
                let ihl = usize::from(b.first().map_or(0, |x| x & 0x0f)) * 4;
                b.get(ihl..).unwrap_or_default()
            } else {
                b
            };
            let reply = if v4 { 0 } else { 129 };
            // Ping sockets rewrite the identifier: match it only on raw sockets.
            let ours = icmp.len() >= 8
                && icmp[0] == reply
                && u16::from_be_bytes([icmp[6], icmp[7]]) == seq
                && (!raw || u16::from_be_bytes([icmp[4], icmp[5]]) == id);
            if ours {
                return Echo::Replied {
                    rtt_us: t0.elapsed().as_micros() as u64,
                };
            }
        }
    }
    Echo::NoReply
}
