//! The seam between the probe's logic and the operating system (STYLE habit 9, after hickory's
//! `net/src/runtime.rs`): every packet the probe sends and every timer it waits on goes through
//! [`Transport`]. [`System`] is the real one (tokio sockets, raw ICMP through socket2); tests
//! use it against servers in network namespaces, or a mock that answers from a table.
//!
//! A transport never fails: what it observes (refused, silence, an ICMP error) is the result.

use std::future::Future;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use serde::Serialize;
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use crate::udp_apps::Expect;
use crate::LocalError;

/// What a TCP connect observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TcpState {
    /// The handshake completed.
    Open,
    /// A reset came back (nothing listens, or a firewall rejects with a TCP reset or an ICMP
    /// port-unreachable).
    Refused,
    /// Nothing came back before the timeout: a firewall drops the packets.
    Filtered,
    /// An ICMP host/network-unreachable or administratively-prohibited came back.
    Unreachable,
    /// The local system refused to send (no route, no such source address).
    LocalError,
    /// An ICMP error came back from another address than the target: a router or firewall on
    /// the path rejected the connection (`TcpOutcome::from` names it).
    Rejected,
}

impl TcpState {
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Open => "open",
            TcpState::Refused => "refused",
            TcpState::Filtered => "filtered",
            TcpState::Unreachable => "unreachable",
            TcpState::LocalError => "local-error",
            TcpState::Rejected => "rejected",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpOutcome {
    pub state: TcpState,
    /// The OS's words, when there is an error.
    pub detail: Option<String>,
    /// The source address the kernel used.
    pub local: Option<SocketAddr>,
    /// The source of the ICMP error that ended the attempt, when it could be read.
    pub from: Option<IpAddr>,
    /// The TTL of the target's answer (SYN-ACK or reset), IPv4, when it could be read.
    pub ttl: Option<u8>,
}

/// What a UDP request observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdpReply {
    /// An answer the request's [`Expect`] accepts.
    Answer(Vec<u8>),
    /// ICMP port unreachable: nothing listens (or a firewall rejects that way); the error's
    /// source when it could be read (then it is the target: another source is `Rejected`).
    Closed(Option<IpAddr>),
    /// ICMP host/network unreachable or administratively prohibited.
    Unreachable(String),
    /// An ICMP error from another address than the target: a router or firewall on the path
    /// rejected the datagram.
    Rejected {
        from: IpAddr,
        detail: String,
    },
    /// No answer to any attempt: `open|filtered`.
    Silent,
    LocalError(String),
}

/// What an ICMP echo observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EchoReply {
    Reply,
    Unreachable(String),
    Silent,
    LocalError(String),
}

/// What a TLS handshake observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsOutcome {
    /// The TCP connect, before any TLS.
    pub tcp: TcpState,
    /// The certificates the server sent, end entity first (DER), even when the handshake then
    /// failed.
    pub chain: Vec<Vec<u8>>,
    /// Why the handshake failed, if it did.
    pub error: Option<String>,
    /// What the handshake settled (TLS over TCP only; empty for DTLS).
    pub session: TlsSession,
}

/// What a TLS client offers beyond the server name: the profile's `tls.alpn`,
/// `tls.min_version` and whether it has a client certificate to give (`tls.client_cert`:
/// the probe has none, and notes whether the server asks for one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsAsk {
    /// The server name sent in the ClientHello; `None`: no SNI (a peer reached by address).
    pub sni: Option<String>,
    /// ALPN protocol names offered (RFC 7301), in order.
    pub alpn: Vec<String>,
    /// Offer only TLS 1.3 (`min_version: "1.3"`); otherwise 1.2 and 1.3, all rustls speaks.
    pub tls13_only: bool,
}

/// What a TLS handshake settled, as far as the client saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSession {
    /// The ALPN protocol the server selected (RFC 7301 section 3.2); `None`: none.
    pub alpn: Option<String>,
    /// The negotiated version, `1.2` or `1.3`, when the handshake completed.
    pub version: Option<String>,
    /// The server sent a CertificateRequest (RFC 8446 section 4.3.2, RFC 5246 section
    /// 7.4.4): it asks for a client certificate.
    pub client_cert_requested: bool,
}

/// What a DHCP discover observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DhcpReply {
    /// One offer per server that answered, first come first.
    Offers(Vec<crate::dhcp::Offer>),
    /// No offer to any attempt.
    Silent,
    LocalError(String),
}

/// Sockets and timers for the probe.
pub trait Transport: Send + Sync {
    /// Opens (and closes) a TCP connection from `src` (any local address when `None`).
    fn tcp_connect(
        &self,
        src: Option<IpAddr>,
        dst: SocketAddr,
        timeout: Duration,
    ) -> impl Future<Output = TcpOutcome> + Send;

    /// Sends `request` up to `attempts` times, waiting `timeout` after each, for a datagram
    /// that `expect` accepts.
    fn udp_exchange(
        &self,
        src: Option<IpAddr>,
        dst: SocketAddr,
        request: Vec<u8>,
        expect: Expect,
        timeout: Duration,
        attempts: u32,
    ) -> impl Future<Output = UdpReply> + Send;

    /// One ICMP echo request, waiting `timeout` for the reply.
    fn icmp_echo(
        &self,
        src: Option<IpAddr>,
        dst: IpAddr,
        timeout: Duration,
    ) -> impl Future<Output = EchoReply> + Send;

    /// A TLS handshake offering what `ask` says, capturing the server's certificates without
    /// judging them.
    fn tls_handshake(
        &self,
        src: Option<IpAddr>,
        dst: SocketAddr,
        ask: TlsAsk,
        timeout: Duration,
    ) -> impl Future<Output = TlsOutcome> + Send;

    /// A DTLS 1.2 handshake up to the server's Certificate message, keeping the chain
    /// ([`crate::dtls`]).
    fn dtls_handshake(
        &self,
        src: Option<IpAddr>,
        dst: SocketAddr,
        timeout: Duration,
    ) -> impl Future<Output = TlsOutcome> + Send;

    /// Broadcasts `discover` on `interface` (from 0.0.0.0:68 to 255.255.255.255:67) up to
    /// `attempts` times, waiting `timeout` after each, and collects the offers.
    fn dhcp_discover(
        &self,
        interface: String,
        discover: crate::dhcp::Discover,
        timeout: Duration,
        attempts: u32,
    ) -> impl Future<Output = DhcpReply> + Send;

    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send;

    /// The default routes of the network the probe runs in.
    fn default_routes(&self) -> Vec<crate::address::DefaultRoute>;

    /// The source address towards `dst` (checking that `src`, if given, is local).
    fn source_towards(&self, src: Option<IpAddr>, dst: IpAddr) -> Result<IpAddr, LocalError>;

    /// The network interfaces of the network the probe runs in.
    fn links(&self) -> Result<Vec<crate::link::Link>, LocalError>;
}

/// The real network, through tokio.
#[derive(Clone, Copy, Debug, Default)]
pub struct System;

pub(crate) fn unspecified_for(dst: &SocketAddr) -> IpAddr {
    match dst {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

fn is_unreachable(k: ErrorKind) -> bool {
    matches!(
        k,
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable
    )
}

/// Connects a TCP stream, classifying failures.
pub(crate) async fn connect(
    src: Option<IpAddr>,
    dst: SocketAddr,
    timeout: Duration,
) -> Result<TcpStream, TcpOutcome> {
    connect_port(src, dst, timeout).await.1
}

/// [`connect`], also returning the local port it was bound to.
async fn connect_port(
    src: Option<IpAddr>,
    dst: SocketAddr,
    timeout: Duration,
) -> (Option<u16>, Result<TcpStream, TcpOutcome>) {
    let fail = |state, detail: String| TcpOutcome {
        state,
        detail: Some(detail),
        local: None,
        from: None,
        ttl: None,
    };
    let sock = match dst {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    };
    let sock = match sock {
        Ok(s) => s,
        Err(e) => return (None, Err(fail(TcpState::LocalError, e.to_string()))),
    };
    // Bound before connecting, so that the local port is known to match answers against.
    let bind = src.unwrap_or_else(|| unspecified_for(&dst));
    if let Err(e) = sock.bind(SocketAddr::new(bind, 0)) {
        return (
            None,
            Err(fail(TcpState::LocalError, format!("bind {bind}: {e}"))),
        );
    }
    let port = sock.local_addr().ok().map(|a| a.port());
    (port, connect_bound(sock, dst, timeout, fail).await)
}

async fn connect_bound(
    sock: TcpSocket,
    dst: SocketAddr,
    timeout: Duration,
    fail: impl Fn(TcpState, String) -> TcpOutcome,
) -> Result<TcpStream, TcpOutcome> {
    match tokio::time::timeout(timeout, sock.connect(dst)).await {
        Err(_) => Err(fail(
            TcpState::Filtered,
            format!("no answer within {} ms", timeout.as_millis()),
        )),
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => {
            Err(fail(TcpState::Refused, e.to_string()))
        }
        Ok(Err(e)) if is_unreachable(e.kind()) => Err(fail(TcpState::Unreachable, e.to_string())),
        Ok(Err(e)) if e.kind() == ErrorKind::TimedOut => {
            Err(fail(TcpState::Filtered, e.to_string()))
        }
        Ok(Err(e)) => Err(fail(TcpState::LocalError, e.to_string())),
    }
}

/// Sends `request` up to `attempts` times on the connected `sock`, waiting for an answer
/// `expect` accepts.
async fn udp_attempts(
    sock: &UdpSocket,
    request: &[u8],
    expect: &Expect,
    timeout: Duration,
    attempts: u32,
) -> UdpReply {
    let mut buf = vec![0u8; 65536];
    for _ in 0..attempts.max(1) {
        match sock.send(request).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => return UdpReply::Closed(None),
            Err(e) if is_unreachable(e.kind()) => return UdpReply::Unreachable(e.to_string()),
            Err(e) => return UdpReply::LocalError(e.to_string()),
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Ok(n)) => {
                    if let Some(answer) = buf.get(..n) {
                        if expect.matches(request, answer) {
                            return UdpReply::Answer(answer.to_vec());
                        }
                    }
                }
                Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => {
                    return UdpReply::Closed(None)
                }
                Ok(Err(e)) if is_unreachable(e.kind()) => {
                    return UdpReply::Unreachable(e.to_string())
                }
                Ok(Err(e)) => return UdpReply::LocalError(e.to_string()),
            }
        }
    }
    UdpReply::Silent
}

impl Transport for System {
    async fn tcp_connect(
        &self,
        src: Option<IpAddr>,
        dst: SocketAddr,
        timeout: Duration,
    ) -> TcpOutcome {
        let watch = crate::watch::Watch::open(dst.ip(), true);
        let (port, r) = connect_port(src, dst, timeout).await;
        // What arrived is already queued on the watchers: a short wait is enough.
        let wait = Duration::from_millis(20);
        let answer = match port {
            Some(p) => watch.tcp_answer(p, dst, wait).await,
            None => None,
        };
        match r {
            Ok(s) => TcpOutcome {
                state: TcpState::Open,
                detail: None,
                local: s.local_addr().ok(),
                from: None,
                ttl: answer.map(|a| a.0),
            },
            Err(mut o) => {
                if matches!(o.state, TcpState::Refused | TcpState::Unreachable) {
                    if let Some(p) = port {
                        if let Some(e) = watch.icmp_error(6, p, dst, wait).await {
                            o.from = Some(e.from);
                            if e.from != dst.ip() && e.is_reject(dst.is_ipv6()) {
                                o.state = TcpState::Rejected;
                            }
                            o.detail = Some(e.text(dst.is_ipv6()));
                        }
                    }
                    // A reset, not an ICMP error: its TTL.
                    if o.from.is_none() {
                        o.ttl = answer.filter(|a| a.1 & 0x04 != 0).map(|a| a.0);
                    }
                }
                o
            }
        }
    }

    async fn udp_exchange(
        &self,
        src: Option<IpAddr>,
        dst: SocketAddr,
        request: Vec<u8>,
        expect: Expect,
        timeout: Duration,
        attempts: u32,
    ) -> UdpReply {
        let bind = SocketAddr::new(src.unwrap_or_else(|| unspecified_for(&dst)), 0);
        let sock = match UdpSocket::bind(bind).await {
            Ok(s) => s,
            Err(e) => return UdpReply::LocalError(format!("bind {bind}: {e}")),
        };
        if let Err(e) = sock.connect(dst).await {
            return if is_unreachable(e.kind()) {
                UdpReply::Unreachable(e.to_string())
            } else {
                UdpReply::LocalError(e.to_string())
            };
        }
        let watch = crate::watch::Watch::open(dst.ip(), false);
        let port = sock.local_addr().map(|a| a.port()).unwrap_or(0);
        let r = udp_attempts(&sock, &request, &expect, timeout, attempts).await;
        match r {
            UdpReply::Closed(_) | UdpReply::Unreachable(_) => {
                match watch
                    .icmp_error(17, port, dst, Duration::from_millis(20))
                    .await
                {
                    Some(e) if e.from != dst.ip() && e.is_reject(dst.is_ipv6()) => {
                        UdpReply::Rejected {
                            from: e.from,
                            detail: e.text(dst.is_ipv6()),
                        }
                    }
                    Some(e) if matches!(r, UdpReply::Closed(_)) => UdpReply::Closed(Some(e.from)),
                    Some(e) => UdpReply::Unreachable(e.text(dst.is_ipv6())),
                    _ => r,
                }
            }
            r => r,
        }
    }

    async fn icmp_echo(&self, src: Option<IpAddr>, dst: IpAddr, timeout: Duration) -> EchoReply {
        crate::icmp::echo(src, dst, timeout).await
    }

    async fn tls_handshake(
        &self,
        src: Option<IpAddr>,
        dst: SocketAddr,
        ask: TlsAsk,
        timeout: Duration,
    ) -> TlsOutcome {
        crate::tls::handshake(src, dst, &ask, timeout).await
    }

    async fn dtls_handshake(
        &self,
        src: Option<IpAddr>,
        dst: SocketAddr,
        timeout: Duration,
    ) -> TlsOutcome {
        crate::dtls::handshake(src, dst, timeout).await
    }

    async fn dhcp_discover(
        &self,
        interface: String,
        discover: crate::dhcp::Discover,
        timeout: Duration,
        attempts: u32,
    ) -> DhcpReply {
        crate::dhcp::exchange(&interface, &discover, timeout, attempts).await
    }

    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    fn default_routes(&self) -> Vec<crate::address::DefaultRoute> {
        crate::address::default_routes()
    }

    fn source_towards(&self, src: Option<IpAddr>, dst: IpAddr) -> Result<IpAddr, LocalError> {
        crate::address::source_towards(src, dst)
    }

    fn links(&self) -> Result<Vec<crate::link::Link>, LocalError> {
        crate::link::links()
    }
}

/// A current-thread tokio runtime for running a probe from synchronous code.
pub fn block_on<F: Future>(f: F) -> Result<F::Output, crate::NetError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(crate::NetError::Runtime)?;
    Ok(rt.block_on(f))
}

/// Runs futures concurrently on the current task and returns their outputs in order (a small
/// `join_all`; bounded concurrency comes from a semaphore inside the futures).
pub async fn join_all<F: Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut futs: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futs.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}
