//! The fallback where raw sockets are not permitted (no CAP_NET_RAW): a `connect()` to every
//! port from a pool of threads, under the same rate cap and port order. A completed
//! connection is `open` (and closed again at once), a refusal `closed`, an unreachable error
//! `filtered` with its errno, silence past the timeout (from the measured round trips) and
//! one retry `filtered`. Slower than the SYN scan on a dropping host: each silent port holds
//! a thread for a whole timeout.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use socket2::{Domain, SockAddr, Socket, Type};

use crate::state::{PortResult, PortState, Reason, Transport};
use crate::syn::Progress;
use crate::timing::{Pacer, Rtt, Shuffle};

/// Threads connecting at once.
const WORKERS: usize = 256;

fn connect_once(
    target: IpAddr,
    source: IpAddr,
    port: u16,
    interface: Option<&str>,
    timeout: Duration,
) -> Option<(PortState, Reason)> {
    let addr = SocketAddr::new(target, port);
    let domain = if target.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let s = Socket::new(domain, Type::STREAM, None).ok()?;
    if let Some(i) = interface {
        s.bind_device(Some(i.as_bytes())).ok()?;
    }
    s.bind(&SockAddr::from(SocketAddr::new(source, 0))).ok()?;
    match s.connect_timeout(&SockAddr::from(addr), timeout) {
        Ok(()) => Some((PortState::Open, Reason::Connected)),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            Some((PortState::Closed, Reason::Refused))
        }
        Err(e) if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::WouldBlock => None,
        Err(e) => Some((
            PortState::Filtered,
            Reason::Unreachable {
                detail: format!("connect(): {e}"),
            },
        )),
    }
}

/// Connects to every port of `ports` on `target`.
pub fn scan(
    target: IpAddr,
    source: IpAddr,
    ports: &[u16],
    rate: u32,
    interface: Option<&str>,
    rtt: &mut Rtt,
    progress: Progress,
) -> Vec<PortResult> {
    let mut order = ports.to_vec();
    Shuffle::new().shuffle(&mut order);
    let results: Mutex<Vec<PortResult>> = Mutex::new(Vec::with_capacity(ports.len()));
    let rtt_shared = Mutex::new(rtt.clone());
    let pacer = Mutex::new(Pacer::new(rate));
    let silent: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    for attempt in 1..=2u8 {
        let list = if attempt == 1 {
            order.clone()
        } else {
            std::mem::take(&mut *silent.lock().unwrap_or_else(|e| e.into_inner()))
        };
        let next = AtomicUsize::new(0);
        let timeout = rtt_shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .timeout(Duration::from_millis(200), Duration::from_secs(3));
        std::thread::scope(|s| {
            for _ in 0..WORKERS.min(list.len()) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&port) = list.get(i) else { return };
                    pacer.lock().unwrap_or_else(|e| e.into_inner()).wait();
                    let t0 = Instant::now();
                    let got = connect_once(target, source, port, interface, timeout);
                    match got {
                        Some((state, reason)) => {
                            if state.reached() {
                                rtt_shared
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .sample(t0.elapsed());
                            }
                            let mut r = results.lock().unwrap_or_else(|e| e.into_inner());
                            r.push(PortResult {
                                transport: Transport::Tcp,
                                port,
                                state,
                                reason,
                                service: None,
                            });
                            progress(r.len(), ports.len());
                        }
                        None if attempt == 1 => {
                            silent.lock().unwrap_or_else(|e| e.into_inner()).push(port)
                        }
                        None => {
                            results
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(PortResult {
                                    transport: Transport::Tcp,
                                    port,
                                    state: PortState::Filtered,
                                    reason: Reason::NoResponse {
                                        tries: 2,
                                        request: None,
                                    },
                                    service: None,
                                })
                        }
                    }
                });
            }
        });
    }
    *rtt = rtt_shared.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut out = results.into_inner().unwrap_or_else(|e| e.into_inner());
    out.sort_by_key(|r| r.port);
    out
}
