//! The sending end of a probe: one attempt, from the calling thread's namespace, bounded by
//! a timeout. The observation is what the sender (or, for port-less protocols and forged
//! packets, the receiver) saw: the answer came (pass), nothing came (drop), or something else
//! happened.

use std::io::{ErrorKind, Read};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use serde::Serialize;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::listen::Seen;
use crate::probes::{Forged, Probe, Traffic};
use crate::topology::NS_IF;
use crate::wire::{self, Segment};

/// What the kernel did with a probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "observed", content = "detail")]
pub enum Observed {
    Pass,
    Drop,
    /// A TCP reset or ICMP port unreachable: the packet reached a host without a listener,
    /// or a firewall rejected it.
    Refused,
    /// ICMP host or network unreachable.
    Unreachable,
    /// The resolver answered, but not with the lab's address.
    WrongAnswer(String),
    Error(String),
    /// Not sent; the reason.
    Skip(String),
}

impl Observed {
    pub fn as_str(&self) -> &str {
        match self {
            Observed::Pass => "pass",
            Observed::Drop => "drop",
            Observed::Refused => "refused",
            Observed::Unreachable => "unreachable",
            Observed::WrongAnswer(_) => "wrong-answer",
            Observed::Error(_) => "error",
            Observed::Skip(_) => "skip",
        }
    }
}

fn domain(a: IpAddr) -> Domain {
    if a.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    }
}

fn classify(e: &std::io::Error) -> Observed {
    match e.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => Observed::Drop,
        ErrorKind::ConnectionRefused => Observed::Refused,
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => Observed::Unreachable,
        _ => Observed::Error(e.to_string()),
    }
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Observed::Error(e.to_string()),
        }
    };
}

/// Where a probe is observed when the receiver observes it: the raw receivers' record, and
/// the namespace the packet must reach (`None`: any).
pub struct Arrival<'a> {
    pub seen: &'a Seen,
    pub netns: Option<&'a str>,
}

/// One attempt of `p`, from the current thread's namespace; a receiver's record counts from
/// any namespace.
pub fn attempt(p: &Probe, timeout: Duration, seen: &Seen) -> Observed {
    attempt_at(p, timeout, &Arrival { seen, netns: None })
}

/// One attempt of `p`, from the current thread's namespace, observed where `at` says.
pub fn attempt_at(p: &Probe, timeout: Duration, seen: &Arrival) -> Observed {
    if let Some(f) = &p.forged {
        return forged(p, f, timeout, seen);
    }
    match &p.traffic {
        Traffic::Tcp { port } => tcp(p, *port, timeout),
        Traffic::Udp { port } => udp(p, *port, timeout),
        Traffic::Echo => echo(p, timeout),
        Traffic::Ip { protocol } => ip(p, *protocol, timeout, seen),
        Traffic::Dns { name, answer } => dns(p, name, *answer, timeout),
    }
}

fn tcp(p: &Probe, port: u16, timeout: Duration) -> Observed {
    let s = tri!(Socket::new(
        domain(p.dst),
        Type::STREAM,
        Some(Protocol::TCP)
    ));
    tri!(s.bind(&SocketAddr::new(p.src, p.sport.unwrap_or(0)).into()));
    match s.connect_timeout(&SocketAddr::new(p.dst, port).into(), timeout) {
        Ok(()) => Observed::Pass,
        Err(e) => classify(&e),
    }
}

/// Receives on `sock` until `deadline` or until `accept` says yes.
fn receive(sock: &UdpSocket, deadline: Instant, accept: &dyn Fn(&[u8]) -> bool) -> Observed {
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Observed::Drop;
        }
        tri!(sock.set_read_timeout(Some(left.max(Duration::from_millis(1)))));
        match sock.recv(&mut buf) {
            Ok(n) if accept(&buf[..n]) => return Observed::Pass,
            Ok(_) => {}
            Err(e) => match classify(&e) {
                Observed::Drop => return Observed::Drop,
                other => return other,
            },
        }
    }
}

fn udp(p: &Probe, port: u16, timeout: Duration) -> Observed {
    let s = tri!(Socket::new(domain(p.dst), Type::DGRAM, Some(Protocol::UDP)));
    tri!(s.set_reuse_address(true));
    if p.broadcast {
        tri!(s.set_broadcast(true));
    }
    tri!(s.bind(&SocketAddr::new(p.src, p.sport.unwrap_or(0)).into()));
    let sock: UdpSocket = s.into();
    let t = wire::token();
    let data = wire::payload(&t);
    let dst = SocketAddr::new(p.dst, port);
    if p.broadcast {
        tri!(sock.send_to(&data, dst));
    } else {
        tri!(sock.connect(dst));
        tri!(sock.send(&data));
    }
    let deadline = Instant::now() + timeout;
    receive(&sock, deadline, &|d| wire::find_token(d) == Some(t))
}

fn echo(p: &Probe, timeout: Duration) -> Observed {
    let v4 = p.dst.is_ipv4();
    let proto = if v4 {
        Protocol::ICMPV4
    } else {
        Protocol::ICMPV6
    };
    let mut s = tri!(Socket::new(domain(p.dst), Type::RAW, Some(proto)));
    tri!(s.bind(&SocketAddr::new(p.src, 0).into()));
    let t = wire::token();
    let id = u16::from_be_bytes([t[14], t[15]]);
    let pkt = wire::echo_request(v4, id, 1, &t);
    tri!(s.send_to(&pkt, &SockAddr::from(SocketAddr::new(p.dst, 0))));
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Observed::Drop;
        }
        tri!(s.set_read_timeout(Some(left.max(Duration::from_millis(1)))));
        match s.read(&mut buf) {
            Ok(n) if wire::is_echo_reply(v4, &buf[..n], id, &t) => return Observed::Pass,
            Ok(_) => {}
            Err(e) => match classify(&e) {
                Observed::Drop => return Observed::Drop,
                other => return other,
            },
        }
    }
}

fn ip(p: &Probe, protocol: u8, timeout: Duration, seen: &Arrival) -> Observed {
    let s = tri!(Socket::new(
        domain(p.dst),
        Type::RAW,
        Some(Protocol::from(i32::from(protocol)))
    ));
    tri!(s.bind(&SocketAddr::new(p.src, 0).into()));
    let t = wire::token();
    tri!(s.send_to(
        &wire::ip_payload(&t),
        &SockAddr::from(SocketAddr::new(p.dst, 0))
    ));
    arrived(&t, timeout, seen)
}

/// Waits until a receiver has seen token `t`.
fn arrived(t: &wire::Token, timeout: Duration, at: &Arrival) -> Observed {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if at.seen.contains(at.netns, t) {
            return Observed::Pass;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if at.seen.contains(at.netns, t) {
        Observed::Pass
    } else {
        Observed::Drop
    }
}

/// A forged packet: built whole (the source address is whatever the probe says), written to
/// a raw socket bound to the link it must leave through, and observed where it arrives.
fn forged(p: &Probe, f: &Forged, timeout: Duration, seen: &Arrival) -> Observed {
    let t = wire::token();
    // An ephemeral port (RFC 6335 section 6: 49152-65535) from the token when the flow states
    // no source port.
    let sport = p
        .sport
        .unwrap_or(49152 + u16::from_be_bytes([t[14], t[15]]) % 16384);
    let seg = match &p.traffic {
        Traffic::Tcp { port } => Segment::TcpSyn {
            sport,
            dport: *port,
        },
        Traffic::Udp { port } => Segment::Udp {
            sport,
            dport: *port,
        },
        Traffic::Dns { .. } => Segment::Udp { sport, dport: 53 },
        Traffic::Echo => Segment::Echo {
            id: u16::from_be_bytes([t[12], t[13]]),
        },
        Traffic::Ip { protocol } => Segment::Raw {
            protocol: *protocol,
        },
    };
    let packet = wire::forged_packet(p.src, p.dst, seg, &t);
    // IPPROTO_RAW: the header is the caller's (raw(7), ipv6(7)).
    let s = tri!(Socket::new(
        domain(p.dst),
        Type::RAW,
        Some(Protocol::from(255))
    ));
    if p.broadcast {
        tri!(s.set_broadcast(true));
    }
    let link = f.link.as_deref().unwrap_or(NS_IF);
    tri!(s.bind_device(Some(link.as_bytes())));
    tri!(s.send_to(&packet, &SockAddr::from(SocketAddr::new(p.dst, 0))));
    arrived(&t, timeout, seen)
}

fn dns(p: &Probe, name: &str, answer: IpAddr, timeout: Duration) -> Observed {
    let s = tri!(Socket::new(domain(p.dst), Type::DGRAM, Some(Protocol::UDP)));
    tri!(s.bind(&SocketAddr::new(p.src, 0).into()));
    let sock: UdpSocket = s.into();
    tri!(sock.connect(SocketAddr::new(p.dst, 53)));
    let t = wire::token();
    let id = u16::from_be_bytes([t[14], t[15]]);
    let q = match wire::dns_query(id, name, answer.is_ipv4()) {
        Ok(q) => q,
        Err(e) => return Observed::Error(e),
    };
    tri!(sock.send(&q));
    let deadline = Instant::now() + timeout;
    let got = std::cell::RefCell::new(None::<Vec<IpAddr>>);
    let r = receive(&sock, deadline, &|d| match wire::dns_answers(id, d) {
        Some(a) => {
            *got.borrow_mut() = Some(a);
            true
        }
        None => false,
    });
    match (r, got.into_inner()) {
        (Observed::Pass, Some(a)) if a.contains(&answer) => Observed::Pass,
        (Observed::Pass, Some(a)) => Observed::WrongAnswer(if a.is_empty() {
            "no address".into()
        } else {
            a.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }),
        (other, _) => other,
    }
}
