//! UDP ports: each gets its application's request from `portolan-payloads` (DNS, NTP,
//! SNMP get, CoAP ping, DTLS ClientHello, IKE_SA_INIT, SSDP, mDNS; an empty datagram for a
//! port without one) on a connected socket, so the kernel reports the ICMP errors that
//! answer it: port unreachable is `closed` (`ECONNREFUSED`), another unreachable `filtered`;
//! a recognised answer is `open`, any other datagram `open` too (something listens); silence
//! after one retransmission is `open|filtered`, never `closed`.
//!
//! ICMP rate limiting: Linux answers at most a burst of 6 port-unreachables per peer, then
//! one per second (`net.ipv4.icmp_ratelimit` = 1000 ms, `XRLIM_BURST_FACTOR` 6 in
//! `net/ipv4/icmp.c`; what is left of the burst depends on what the peer was sent before,
//! a TCP scan's answers included); routers limit the same way. When the first round drew
//! any port unreachable, the silent ports are retransmitted one per `icmp_ratelimit`
//! interval, so a closed port whose error the limiter swallowed is still seen closed.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use portolan_payloads::udp_apps::{Expect, UdpApp};
use socket2::{Domain, SockAddr, Socket, Type};

use crate::error::ScanError;
use crate::state::{PortResult, PortState, Reason, Transport};
use crate::timing::Rtt;

/// The kernel's default `icmp_ratelimit`, plus a margin.
const ICMP_INTERVAL: Duration = Duration::from_millis(1100);

/// The common IoT services every scan asks for, with the request each gets.
pub const COMMON: &[u16] = &[53, 123, 161, 500, 1900, 4500, 5353, 5683, 5684];

/// The service name of a port we have a request for.
pub fn service(port: u16) -> Option<&'static str> {
    Some(match port {
        53 => "dns",
        123 => "ntp",
        161 => "snmp",
        500 => "isakmp",
        1900 => "ssdp",
        4500 => "ipsec-nat-t",
        5353 => "mdns",
        5683 => "coap",
        5684 => "coaps",
        _ => return None,
    })
}

struct Probe {
    port: u16,
    app: UdpApp,
    sock: UdpSocket,
    request: Vec<u8>,
    expect: Expect,
    tries: u8,
    sent: Instant,
    result: Option<(PortState, Reason)>,
}

fn socket(
    target: IpAddr,
    source: IpAddr,
    port: u16,
    interface: Option<&str>,
) -> Result<UdpSocket, ScanError> {
    let domain = if target.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let what = || format!("UDP socket towards {target} port {port}");
    let s = Socket::new(domain, Type::DGRAM, None).map_err(|e| ScanError::socket(what(), e))?;
    if let Some(i) = interface {
        s.bind_device(Some(i.as_bytes()))
            .map_err(|e| ScanError::socket(format!("binding to {i}"), e))?;
    }
    s.bind(&SockAddr::from(SocketAddr::new(source, 0)))
        .map_err(|e| ScanError::socket(format!("binding to {source}"), e))?;
    s.connect(&SockAddr::from(SocketAddr::new(target, port)))
        .map_err(|e| ScanError::socket(what(), e))?;
    s.set_nonblocking(true)
        .map_err(|e| ScanError::socket(what(), e))?;
    Ok(UdpSocket::from(s))
}

impl Probe {
    fn send(&mut self) {
        self.tries += 1;
        self.sent = Instant::now();
        if let Err(e) = self.sock.send(&self.request) {
            self.errno(e);
        }
    }

    /// What the socket holds now, if anything.
    fn poll(&mut self, rtt: &mut Rtt) {
        if self.result.is_some() {
            return;
        }
        let mut buf = [0u8; 2048];
        match self.sock.recv(&mut buf) {
            Ok(n) => {
                rtt.sample(self.sent.elapsed());
                let request = self.app.name().to_string();
                let reason = if self.expect.matches(&self.request, &buf[..n]) {
                    Reason::Answered { request }
                } else {
                    Reason::OtherAnswer { request }
                };
                self.result = Some((PortState::Open, reason));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => self.errno(e),
        }
    }

    fn errno(&mut self, e: std::io::Error) {
        if e.kind() == ErrorKind::ConnectionRefused {
            self.result = Some((
                PortState::Closed,
                Reason::Unreachable {
                    detail: "ICMP port unreachable".into(),
                },
            ));
        } else if e.kind() != ErrorKind::WouldBlock {
            self.result = Some((
                PortState::Filtered,
                Reason::Unreachable {
                    detail: format!("ICMP error: {e}"),
                },
            ));
        }
    }
}

/// Probes every port of `ports` on `target`.
pub fn scan(
    target: IpAddr,
    source: IpAddr,
    ports: &[u16],
    interface: Option<&str>,
    rtt: &mut Rtt,
) -> Result<Vec<PortResult>, ScanError> {
    let mut probes = Vec::new();
    for &port in ports {
        let app = UdpApp::for_flow(port, None, false);
        let (request, expect) = app.request(None);
        probes.push(Probe {
            port,
            app,
            sock: socket(target, source, port, interface)?,
            request,
            expect,
            tries: 0,
            sent: Instant::now(),
            result: None,
        });
    }
    // First round: every request at once (a few dozen datagrams).
    for p in &mut probes {
        p.send();
    }
    let wait = |rtt: &Rtt| rtt.timeout(Duration::from_millis(300), Duration::from_secs(3));
    collect(&mut probes, rtt, Instant::now() + wait(rtt));
    let refused = probes
        .iter()
        .filter(|p| matches!(p.result, Some((PortState::Closed, _))))
        .count();
    // One retransmission; spaced when the target sends port unreachables at all: then a
    // silent port may be a closed one whose error the limiter swallowed.
    let spaced = refused > 0;
    for i in 0..probes.len() {
        if probes[i].result.is_some() {
            continue;
        }
        if spaced {
            // The limiter's next token comes a whole interval after the burst it spent.
            collect(&mut probes, rtt, Instant::now() + ICMP_INTERVAL);
        }
        probes[i].send();
    }
    collect(&mut probes, rtt, Instant::now() + wait(rtt));
    Ok(probes
        .into_iter()
        .map(|p| {
            let (state, reason) = p.result.unwrap_or_else(|| {
                (
                    PortState::OpenFiltered,
                    Reason::NoResponse {
                        tries: p.tries,
                        request: Some(p.app.name().to_string()),
                    },
                )
            });
            PortResult {
                transport: Transport::Udp,
                port: p.port,
                state,
                reason,
                service: service(p.port),
            }
        })
        .collect())
}

/// Polls every probe until `until` or until all have a result.
fn collect(probes: &mut [Probe], rtt: &mut Rtt, until: Instant) {
    while Instant::now() < until {
        for p in probes.iter_mut() {
            p.poll(rtt);
        }
        if probes.iter().all(|p| p.result.is_some()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
