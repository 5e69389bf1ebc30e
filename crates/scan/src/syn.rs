//! The SYN scan: one raw TCP socket sends a SYN to every port in random order under the
//! global rate cap; a receiver thread reads the target's SYN-ACKs and resets (and, on a raw
//! ICMP socket, the unreachable errors quoting our SYNs). Every SYN carries a sequence
//! number derived from a per-scan secret and its port, so only answers to our own SYNs count
//! (`ack == seq + 1`, RFC 9293 §3.10.7.1 for the reset of a closed port). The kernel of the
//! scanning host resets each SYN-ACK itself (no socket owns our source port), so no
//! connection is left half-open on the target.
//!
//! Timing: each answer gives a round-trip sample ([`Rtt`]); after a pass the scan waits one
//! retransmission timeout for late answers, then sends the silent ports again once (one
//! retransmission). A target that limits its resets (a token bucket on outgoing RSTs, as
//! many embedded stacks and a `limit` rule do) answers only part of a fast pass: when the
//! silent ports answer a slow sample, the rest is re-sent at the answer rate the target
//! showed, pass after pass while answers keep coming, so a limited reset is never taken for
//! a filtered port.

use std::collections::HashMap;
use std::io::Read as _;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::error::ScanError;
use crate::state::{PortResult, PortState, Reason, Transport};
use crate::timing::{Pacer, Rtt, Shuffle};
use crate::wire;

/// What a SYN scan needs.
#[derive(Clone, Debug)]
pub struct SynPlan {
    pub source: IpAddr,
    pub target: IpAddr,
    pub ports: Vec<u16>,
    pub rate: u32,
    pub interface: Option<String>,
}

/// The sockets of a SYN scan, made before any packet goes (so that a scan without raw
/// sockets falls back before it starts).
pub struct RawSockets {
    tcp: Socket,
    /// ICMPv4 as a raw socket (read with its IPv4 header); ICMPv6 read through a
    /// `UdpSocket` view of the same descriptor, whose `recv_from` gives the sender (a raw
    /// ICMPv6 socket returns no IPv6 header).
    icmp: Option<Icmp>,
}

enum Icmp {
    V4(Socket),
    V6(UdpSocket),
}

/// The raw sockets, or the error (`PermissionDenied` without CAP_NET_RAW).
pub fn open(
    target: IpAddr,
    source: IpAddr,
    interface: Option<&str>,
) -> std::io::Result<RawSockets> {
    let (domain, icmp) = if target.is_ipv4() {
        (Domain::IPV4, Protocol::ICMPV4)
    } else {
        (Domain::IPV6, Protocol::ICMPV6)
    };
    let tcp = Socket::new(domain, Type::RAW, Some(Protocol::TCP))?;
    let icmp = Socket::new(domain, Type::RAW, Some(icmp)).ok();
    if let Some(i) = interface {
        tcp.bind_device(Some(i.as_bytes()))?;
        if let Some(s) = &icmp {
            s.bind_device(Some(i.as_bytes()))?;
        }
    }
    // Bound: the kernel writes this source into the IP header, the one our checksums use.
    tcp.bind(&SockAddr::from(SocketAddr::new(source, 0)))?;
    // Connected: the kernel hands this socket only the target's TCP segments (raw sockets
    // filter on the remote address once connected).
    tcp.connect(&SockAddr::from(SocketAddr::new(target, 0)))?;
    // A full range is answered in a burst: room for it.
    let _ = tcp.set_recv_buffer_size(8 << 20);
    tcp.set_read_timeout(Some(Duration::from_millis(20)))?;
    let icmp = match icmp {
        Some(s) => {
            s.set_read_timeout(Some(Duration::from_millis(20)))?;
            Some(if target.is_ipv4() {
                Icmp::V4(s)
            } else {
                Icmp::V6(UdpSocket::from(std::os::fd::OwnedFd::from(s)))
            })
        }
        None => None,
    };
    Ok(RawSockets { tcp, icmp })
}

enum Event {
    Tcp {
        port: u16,
        state: PortState,
        reason: Reason,
        at: Instant,
    },
    Icmp {
        port: u16,
        detail: String,
    },
}

/// Reads the target's answers until `stop`; each answer to one of our SYNs becomes an event.
fn read_tcp(s: Socket, plan: Arc<SynPlan>, secret: u32, stop: Arc<AtomicBool>, tx: Sender<Event>) {
    let mut buf = [0u8; 1600];
    let mut s = s;
    while !stop.load(Ordering::Relaxed) {
        let Ok(n) = s.read(&mut buf) else { continue };
        let b = &buf[..n];
        let (tcp, ttl) = if plan.target.is_ipv4() {
            match wire::ipv4(b) {
                Some((src, wire::TCP, seg)) if src == plan.target => (seg, b.get(8).copied()),
                _ => continue,
            }
        } else {
            (b, None)
        };
        let Some(seg) = wire::segment(tcp) else {
            continue;
        };
        if seg.dport != plan_sport(secret) || seg.ack != cookie(secret, seg.sport).wrapping_add(1) {
            continue;
        }
        let ev = if seg.flags & (wire::SYN | wire::ACK) == wire::SYN | wire::ACK {
            (PortState::Open, Reason::SynAck { ttl })
        } else if seg.flags & wire::RST != 0 {
            (PortState::Closed, Reason::Reset { ttl })
        } else {
            continue;
        };
        let at = Instant::now();
        if tx
            .send(Event::Tcp {
                port: seg.sport,
                state: ev.0,
                reason: ev.1,
                at,
            })
            .is_err()
        {
            return;
        }
    }
}

/// Reads ICMP errors quoting our SYNs until `stop`.
fn read_icmp(s: Icmp, plan: Arc<SynPlan>, secret: u32, stop: Arc<AtomicBool>, tx: Sender<Event>) {
    let mut buf = [0u8; 1600];
    let mut s = s;
    while !stop.load(Ordering::Relaxed) {
        let u = match &mut s {
            Icmp::V4(s) => match s.read(&mut buf) {
                Ok(n) => wire::icmp4_unreachable(&buf[..n]),
                Err(_) => continue,
            },
            Icmp::V6(s) => match s.recv_from(&mut buf) {
                Ok((n, from)) => wire::icmp6_unreachable(from.ip(), &buf[..n]),
                Err(_) => continue,
            },
        };
        let Some(u) = u else { continue };
        if u.quoted_dst != plan.target
            || u.sport != plan_sport(secret)
            || u.seq != cookie(secret, u.dport)
        {
            continue;
        }
        if tx
            .send(Event::Icmp {
                port: u.dport,
                detail: u.describe(),
            })
            .is_err()
        {
            return;
        }
    }
}

/// Our SYNs' sequence number for `port`: the secret mixed with the port (a multiplicative
/// hash), so an answer must acknowledge a number only this scan knows.
fn cookie(secret: u32, port: u16) -> u32 {
    secret ^ u32::from(port).wrapping_mul(0x9e37_79b1).rotate_left(13)
}

/// The source port of the scan: 40000-59999, from the secret.
fn plan_sport(secret: u32) -> u16 {
    40000 + (secret % 20000) as u16
}

/// Progress: ports decided, and ports in all.
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// The state of one scan while it runs.
struct Run<'a> {
    rx: Receiver<Event>,
    sent: HashMap<u16, Instant>,
    done: HashMap<u16, (PortState, Reason)>,
    rtt: &'a mut Rtt,
    /// When each answer came, for the answer rate.
    answers: Vec<Instant>,
}

impl Run<'_> {
    fn take(&mut self, ev: Event) {
        match ev {
            Event::Tcp {
                port,
                state,
                reason,
                at,
            } => {
                if let Some(t) = self.sent.get(&port) {
                    self.rtt.sample(at.saturating_duration_since(*t));
                }
                self.answers.push(at);
                // A SYN-ACK wins over a reset that answered an earlier copy.
                let keep = matches!(self.done.get(&port), Some((PortState::Open, _)));
                if !keep {
                    self.done.insert(port, (state, reason));
                }
            }
            Event::Icmp { port, detail } => {
                self.done
                    .entry(port)
                    .or_insert((PortState::Filtered, Reason::Unreachable { detail }));
            }
        }
    }

    fn drain(&mut self) {
        while let Ok(ev) = self.rx.try_recv() {
            self.take(ev);
        }
    }

    /// Takes answers until `until`.
    fn wait(&mut self, until: Instant) {
        loop {
            let now = Instant::now();
            if now >= until {
                return;
            }
            match self.rx.recv_timeout(until - now) {
                Ok(ev) => self.take(ev),
                Err(RecvTimeoutError::Timeout) => return,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

/// The shortest and longest wait for late answers after a pass.
const WAIT_FLOOR: Duration = Duration::from_millis(100);
const WAIT_CEILING: Duration = Duration::from_secs(3);

/// Scans `plan.ports` with SYNs over `sockets`; every port gets a state.
pub fn scan(
    plan: SynPlan,
    sockets: RawSockets,
    rtt: &mut Rtt,
    progress: Progress,
) -> Result<Vec<PortResult>, ScanError> {
    let secret = (portolan_payloads::nonce::u64() >> 16) as u32;
    let sport = plan_sport(secret);
    let plan = Arc::new(plan);
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = channel();
    let reader = sockets
        .tcp
        .try_clone()
        .map_err(|e| ScanError::socket("raw TCP socket", e))?;
    let mut threads = Vec::new();
    {
        let (p, st, t) = (plan.clone(), stop.clone(), tx.clone());
        threads.push(std::thread::spawn(move || {
            read_tcp(reader, p, secret, st, t)
        }));
    }
    if let Some(icmp) = sockets.icmp {
        let (p, st, t) = (plan.clone(), stop.clone(), tx.clone());
        threads.push(std::thread::spawn(move || {
            read_icmp(icmp, p, secret, st, t)
        }));
    }
    drop(tx);
    let total = plan.ports.len();
    let mut run = Run {
        rx,
        sent: HashMap::with_capacity(total),
        done: HashMap::with_capacity(total),
        rtt,
        answers: Vec::new(),
    };
    let mut pending = plan.ports.clone();
    let mut shuffle = Shuffle::new();
    shuffle.shuffle(&mut pending);
    let mut tries: HashMap<u16, u8> = HashMap::new();
    let mut rate = plan.rate;
    let mut limited_passes = 0u32;
    let mut pass = 0u32;
    let mut send_error: Option<std::io::Error> = None;
    let result = loop {
        let mut pacer = Pacer::new(rate);
        let started = Instant::now();
        let answers_before = run.answers.len();
        for (i, &port) in pending.iter().enumerate() {
            pacer.wait();
            let seg = wire::syn(plan.source, plan.target, sport, port, cookie(secret, port));
            // The time before the send: an answer can be read before the send returns.
            run.sent.insert(port, Instant::now());
            if let Err(e) = sockets.tcp.send(&seg) {
                // A full send buffer (ENOBUFS, 105 on Linux): wait a little and go on (the
                // port stays silent this pass and is tried again).
                if e.kind() != std::io::ErrorKind::WouldBlock && e.raw_os_error() != Some(105) {
                    send_error = Some(e);
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            *tries.entry(port).or_default() += 1;
            if i % 256 == 0 {
                run.drain();
                progress(run.done.len(), total);
            }
        }
        if let Some(e) = send_error.take() {
            break Err(ScanError::socket(
                format!("sending a SYN to {} from {}", plan.target, plan.source),
                e,
            ));
        }
        let timeout = run.rtt.timeout(WAIT_FLOOR, WAIT_CEILING);
        run.wait(Instant::now() + timeout);
        progress(run.done.len(), total);
        let answered_this_pass = run.answers.len() - answers_before;
        let pass_time = started.elapsed();
        pending.retain(|p| !run.done.contains_key(p));
        pass += 1;
        if pending.is_empty() {
            break Ok(());
        }
        // Limited resets: some ports answered, some stayed silent. A slow sample of the
        // silent ones tells a limiter (they answer now) from a filter (still silent).
        let limiter = answered_this_pass > 0
            && (limited_passes > 0
                || limiter_sample(
                    &mut run,
                    &plan,
                    &sockets.tcp,
                    &pending,
                    secret,
                    sport,
                    &mut tries,
                ));
        pending.retain(|p| !run.done.contains_key(p));
        if pending.is_empty() {
            break Ok(());
        }
        if limiter && limited_passes < 8 {
            // The rate the target answered at, with room to spare.
            let secs = pass_time.as_secs_f64().max(0.001);
            let answer_rate = (answered_this_pass as f64 / secs * 0.8) as u32;
            rate = answer_rate.clamp(10, plan.rate);
            limited_passes += 1;
            continue;
        }
        if pass >= 2 {
            break Ok(());
        }
    };
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    result?;
    let mut out: Vec<PortResult> = plan
        .ports
        .iter()
        .map(|&port| {
            let (state, reason) = run.done.remove(&port).unwrap_or((
                PortState::Filtered,
                Reason::NoResponse {
                    tries: tries.get(&port).copied().unwrap_or(0),
                    request: None,
                },
            ));
            PortResult {
                transport: Transport::Tcp,
                port,
                state,
                reason,
                service: None,
            }
        })
        .collect();
    out.sort_by_key(|r| r.port);
    Ok(out)
}

/// Sends up to 16 silent ports again at 100 per second and waits; whether at least a quarter
/// answered (then the silence was a limiter's, not a filter's).
fn limiter_sample(
    run: &mut Run,
    plan: &SynPlan,
    tcp: &Socket,
    pending: &[u16],
    secret: u32,
    sport: u16,
    tries: &mut HashMap<u16, u8>,
) -> bool {
    let sample: Vec<u16> = pending.iter().copied().take(16).collect();
    let mut pacer = Pacer::new(100);
    for &port in &sample {
        pacer.wait();
        run.sent.insert(port, Instant::now());
        *tries.entry(port).or_default() += 1;
        let _ = tcp.send(&wire::syn(
            plan.source,
            plan.target,
            sport,
            port,
            cookie(secret, port),
        ));
    }
    let timeout = run.rtt.timeout(WAIT_FLOOR, WAIT_CEILING);
    run.wait(Instant::now() + timeout);
    let answered = sample.iter().filter(|p| run.done.contains_key(p)).count();
    answered * 4 >= sample.len()
}
