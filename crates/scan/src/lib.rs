//! `portolan scan`: which ports a device really exposes, and how that compares with what its
//! profile's `listens` declares.
//!
//! One scan of one address: an ICMP echo ([`echo`]: is the host up, and a first round trip),
//! every TCP port asked for by a SYN scan over a raw socket ([`syn`]) or, where raw sockets
//! are not permitted, by `connect()` ([`connect`]), and the UDP ports of the profile and of
//! the common IoT services with their applications' requests ([`udp`], requests from
//! `portolan-payloads`, shared with `probe`). Each port gets nmap's state words with how they
//! were decided ([`state`]). Timing adapts to measured round trips with one retransmission,
//! under a global rate cap, in random port order ([`timing`]); UDP follows TCP (a full
//! SYN pass fills the link's queues); limited resets and limited
//! ICMP errors are waited out rather than read as filtering. [`compare`] judges the result
//! against the profile.
//!
//! Synchronous (std threads, socket2), like `lab`: a scan from a network namespace runs on a
//! thread that entered it, and every socket is made on that thread.

pub mod compare;
pub mod connect;
pub mod echo;
pub mod error;
pub mod state;
pub mod syn;
pub mod timing;
pub mod udp;
pub mod wire;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use serde::Serialize;

pub use error::ScanError;
pub use state::{PortResult, PortState, Reason, Transport};

/// How TCP ports are scanned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// SYN scan over a raw socket.
    Syn,
    /// `connect()`, where raw sockets are not permitted (or asked for).
    Connect,
}

/// What to scan, and how hard.
#[derive(Clone, Debug)]
pub struct Options {
    pub target: IpAddr,
    /// TCP ports (each once); empty: no TCP scan.
    pub tcp: Vec<u16>,
    /// UDP ports (each once); empty: no UDP probes.
    pub udp: Vec<u16>,
    /// Global cap on probes per second.
    pub rate: u32,
    /// Send from this interface only (`SO_BINDTODEVICE`).
    pub interface: Option<String>,
    /// Send from this local address (default: the one the route to the target gives).
    pub source: Option<IpAddr>,
    /// Ping first.
    pub icmp: bool,
    /// Force the `connect()` scan even where raw sockets are permitted.
    pub connect: bool,
}

/// The default rate cap: packets per second.
pub const DEFAULT_RATE: u32 = 50_000;

/// A finished scan.
#[derive(Clone, Debug, Serialize)]
pub struct Scan {
    pub target: IpAddr,
    /// The local address the probes came from.
    pub source: IpAddr,
    pub method: Method,
    /// Why the scan fell back to `connect()`, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    pub rate: u32,
    pub echo: echo::Echo,
    /// Every port scanned, by transport and number.
    pub ports: Vec<PortResult>,
    /// The smoothed round trip at the end, microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub srtt_us: Option<u64>,
    pub duration_ms: u64,
}

impl Scan {
    /// How many ports of `t` are in `s`.
    pub fn count(&self, t: Transport, s: PortState) -> usize {
        self.ports
            .iter()
            .filter(|r| r.transport == t && r.state == s)
            .count()
    }

    /// The ports of `t` that are open, in order.
    pub fn open(&self, t: Transport) -> Vec<u16> {
        self.ports
            .iter()
            .filter(|r| r.transport == t && r.state == PortState::Open)
            .map(|r| r.port)
            .collect()
    }
}

/// The local address the kernel would send from towards `target` (a connected UDP socket
/// learns it without a packet).
pub fn source_for(target: IpAddr, interface: Option<&str>) -> Result<IpAddr, ScanError> {
    let domain = if target.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let no_route = |e: std::io::Error| ScanError::NoRoute {
        target,
        detail: e.to_string(),
    };
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, None).map_err(no_route)?;
    if let Some(i) = interface {
        s.bind_device(Some(i.as_bytes()))
            .map_err(|e| ScanError::socket(format!("binding to interface {i}"), e))?;
    }
    let s = UdpSocket::from(s);
    s.connect(SocketAddr::new(target, 9)).map_err(no_route)?;
    Ok(s.local_addr().map_err(no_route)?.ip())
}

/// Runs the scan. `progress(done, total)` is called as TCP ports are decided.
pub fn run(opts: &Options, progress: syn::Progress) -> Result<Scan, ScanError> {
    if opts.rate == 0 {
        return Err(ScanError::Options("the rate cap must be at least 1".into()));
    }
    let started = Instant::now();
    let iface = opts.interface.as_deref();
    let source = match opts.source {
        Some(s) => s,
        None => source_for(opts.target, iface)?,
    };
    let mut rtt = timing::Rtt::new();
    let echo = if opts.icmp {
        echo::ping(opts.target, source, iface, Duration::from_secs(1))
    } else {
        echo::Echo::NotTried {
            why: "not asked".into(),
        }
    };
    if let echo::Echo::Replied { rtt_us } = echo {
        rtt.sample(Duration::from_micros(rtt_us));
    }
    let (method, fallback, mut ports) = if opts.tcp.is_empty() {
        (Method::Syn, None, Vec::new())
    } else {
        let raw = if opts.connect {
            Err("asked for (--connect)".to_string())
        } else {
            syn::open(opts.target, source, iface).map_err(|e| format!("no raw socket: {e}"))
        };
        match raw {
            Ok(sockets) => {
                let plan = syn::SynPlan {
                    source,
                    target: opts.target,
                    ports: opts.tcp.clone(),
                    rate: opts.rate,
                    interface: opts.interface.clone(),
                };
                (
                    Method::Syn,
                    None,
                    syn::scan(plan, sockets, &mut rtt, progress)?,
                )
            }
            Err(why) => (
                Method::Connect,
                Some(why),
                connect::scan(
                    opts.target,
                    source,
                    &opts.tcp,
                    opts.rate,
                    iface,
                    &mut rtt,
                    progress,
                ),
            ),
        }
    };
    // UDP after TCP: a full-range SYN pass fills the links' queues, and a lost request or
    // ICMP error would only cost a UDP port its verdict; the TCP answers have also given
    // the round trip by then.
    if !opts.udp.is_empty() {
        ports.extend(udp::scan(opts.target, source, &opts.udp, iface, &mut rtt)?);
    }
    Ok(Scan {
        target: opts.target,
        source,
        method,
        fallback,
        rate: opts.rate,
        echo,
        ports,
        srtt_us: rtt.srtt().map(|d| d.as_micros() as u64),
        duration_ms: started.elapsed().as_millis() as u64,
    })
}
