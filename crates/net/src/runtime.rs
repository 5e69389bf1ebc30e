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
}

impl TcpState {
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Open => "open",
            TcpState::Refused => "refused",
            TcpState::Filtered => "filtered",
            TcpState::Unreachable => "unreachable",
            TcpState::LocalError => "local-error",
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
}

/// What a UDP request observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdpReply {
    /// An answer the request's [`Expect`] accepts.
    Answer(Vec<u8>),
    /// ICMP port unreachable: nothing listens (or a firewall rejects that way).
    Closed,
    /// ICMP host/network unreachable or administratively prohibited.
    Unreachable(String),
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

    /// A TLS handshake with `sni`, capturing the server's certificates without judging them.
    fn tls_handshake(
        &self,
        src: Option<IpAddr>,
        dst: SocketAddr,
        sni: String,
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
    fn source_towards(&self, src: Option<IpAddr>, dst: IpAddr) -> Result<IpAddr, String>;

    /// The network interfaces of the network the probe runs in.
    fn links(&self) -> Result<Vec<crate::link::Link>, String>;
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
    let fail = |state, detail: String| TcpOutcome {
        state,
        detail: Some(detail),
        local: None,
    };
    let sock = match dst {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| fail(TcpState::LocalError, e.to_string()))?;
    if let Some(s) = src {
        sock.bind(SocketAddr::new(s, 0))
            .map_err(|e| fail(TcpState::LocalError, format!("bind {s}: {e}")))?;
    }
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

impl Transport for System {
    async fn tcp_connect(
        &self,
        src: Option<IpAddr>,
        dst: SocketAddr,
        timeout: Duration,
    ) -> TcpOutcome {
        match connect(src, dst, timeout).await {
            Ok(s) => TcpOutcome {
                state: TcpState::Open,
                detail: None,
                local: s.local_addr().ok(),
            },
            Err(o) => o,
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
        let mut buf = vec![0u8; 65536];
        for _ in 0..attempts.max(1) {
            match sock.send(&request).await {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => return UdpReply::Closed,
                Err(e) if is_unreachable(e.kind()) => return UdpReply::Unreachable(e.to_string()),
                Err(e) => return UdpReply::LocalError(e.to_string()),
            }
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                    Err(_) => break,
                    Ok(Ok(n)) => {
                        if let Some(answer) = buf.get(..n) {
                            if expect.matches(&request, answer) {
                                return UdpReply::Answer(answer.to_vec());
                            }
                        }
                    }
                    Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => {
                        return UdpReply::Closed
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

    async fn icmp_echo(&self, src: Option<IpAddr>, dst: IpAddr, timeout: Duration) -> EchoReply {
        crate::icmp::echo(src, dst, timeout).await
    }

    async fn tls_handshake(
        &self,
        src: Option<IpAddr>,
        dst: SocketAddr,
        sni: String,
        timeout: Duration,
    ) -> TlsOutcome {
        crate::tls::handshake(src, dst, &sni, timeout).await
    }

    async fn dhcp_discover(
        &self,
        interface: String,
        discover: crate::dhcp::Discover,
        timeout: Duration,
        attempts: u32,
    ) -> DhcpReply {
        crate::dhcp::exchange(&interface, discover, timeout, attempts).await
    }

    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    fn default_routes(&self) -> Vec<crate::address::DefaultRoute> {
        crate::address::default_routes()
    }

    fn source_towards(&self, src: Option<IpAddr>, dst: IpAddr) -> Result<IpAddr, String> {
        crate::address::source_towards(src, dst)
    }

    fn links(&self) -> Result<Vec<crate::link::Link>, String> {
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
