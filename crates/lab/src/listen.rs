//! The receiving ends of the probes: TCP listeners that accept, UDP listeners that echo, raw
//! sockets that record the tokens of port-less packets (ESP, AH, GRE). Each runs in its own
//! thread inside its namespace, wakes every 100 ms to see whether to stop, and closes its
//! socket when stopped (so the namespace can go).

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::error::{Error, Result};
use crate::netns::Handle;
use crate::wire::{self, Token};

const TICK: Duration = Duration::from_millis(100);

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ListenKind {
    Tcp(u16),
    Udp(u16),
    /// A raw socket for an IP protocol number.
    Ip(u8),
}

/// One receiving socket: where, which family, what.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListenSpec {
    pub netns: String,
    pub v4: bool,
    /// The address to bind; `None`: every address of the family. A UDP echo must be bound to
    /// the address it answers from (conntrack and the client expect the reply from there),
    /// except for broadcasts, which only a socket bound to every address receives.
    pub addr: Option<IpAddr>,
    pub kind: ListenKind,
}

/// Tokens the raw receivers have seen, with the namespace that saw each: a packet counts
/// as arrived only where it was meant to (a broadcast is also looped back to its sender's
/// own namespace).
#[derive(Default)]
pub struct Seen(Mutex<HashSet<(String, Token)>>);

impl Seen {
    pub fn insert(&self, netns: &str, t: Token) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((netns.to_string(), t));
    }
    /// Whether `netns` (`None`: any namespace) has seen token `t`.
    pub fn contains(&self, netns: Option<&str>, t: &Token) -> bool {
        let set = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match netns {
            Some(ns) => set.contains(&(ns.to_string(), *t)),
            None => set.iter().any(|(_, x)| x == t),
        }
    }
}

pub struct Listeners {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    pub seen: Arc<Seen>,
}

fn any(v4: bool, port: u16) -> SocketAddr {
    if v4 {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
    } else {
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)
    }
}

fn at(spec: &ListenSpec, port: u16) -> SocketAddr {
    match spec.addr {
        Some(a) => SocketAddr::new(a, port),
        None => any(spec.v4, port),
    }
}

fn open(spec: &ListenSpec) -> std::io::Result<Socket> {
    let dom = if spec.v4 { Domain::IPV4 } else { Domain::IPV6 };
    let s = match spec.kind {
        ListenKind::Tcp(_) => Socket::new(dom, Type::STREAM, Some(Protocol::TCP))?,
        ListenKind::Udp(_) => Socket::new(dom, Type::DGRAM, Some(Protocol::UDP))?,
        ListenKind::Ip(p) => Socket::new(dom, Type::RAW, Some(Protocol::from(i32::from(p))))?,
    };
    if !spec.v4 && !matches!(spec.kind, ListenKind::Ip(_)) {
        s.set_only_v6(true)?;
    }
    s.set_read_timeout(Some(TICK))?;
    match spec.kind {
        ListenKind::Tcp(port) => {
            s.set_reuse_address(true)?;
            s.bind(&at(spec, port).into())?;
            s.listen(128)?;
        }
        ListenKind::Udp(port) => {
            s.set_reuse_address(true)?;
            s.set_broadcast(true)?;
            s.bind(&at(spec, port).into())?;
        }
        ListenKind::Ip(_) => {}
    }
    Ok(s)
}

fn serve(s: Socket, spec: &ListenSpec, stop: &AtomicBool, seen: &Seen) {
    let kind = spec.kind.clone();
    match kind {
        ListenKind::Tcp(_) => {
            let l: TcpListener = s.into();
            while !stop.load(Ordering::Relaxed) {
                // Accepting completes the handshake; the connection is closed at once.
                let _ = l.accept();
            }
        }
        ListenKind::Udp(_) => {
            let u: UdpSocket = s.into();
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((n, from)) = u.recv_from(&mut buf) {
                    let _ = u.send_to(&buf[..n], from);
                }
            }
        }
        ListenKind::Ip(_) => {
            let mut s = s;
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(n) = s.read(&mut buf) {
                    if let Some(t) = wire::find_token(&buf[..n]) {
                        seen.insert(&spec.netns, t);
                    }
                }
            }
        }
    }
}

impl Listeners {
    /// Opens every socket inside its namespace and starts serving; fails if any socket
    /// cannot be opened.
    pub fn start(specs: &[ListenSpec], handles: &BTreeMap<String, Arc<Handle>>) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Seen::default());
        let mut me = Listeners {
            stop: stop.clone(),
            threads: Vec::new(),
            seen: seen.clone(),
        };
        for spec in specs {
            let handle = handles
                .get(&spec.netns)
                .cloned()
                .ok_or_else(|| Error::Plan(format!("no namespace {}", spec.netns)))?;
            let (tx, rx) = mpsc::channel::<std::result::Result<(), String>>();
            let spec2 = spec.clone();
            let stop2 = stop.clone();
            let seen2 = seen.clone();
            let t = std::thread::Builder::new()
                .name("portolan-listen".into())
                .spawn(move || {
                    if let Err(e) = handle.enter() {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                    match open(&spec2) {
                        Ok(s) => {
                            let _ = tx.send(Ok(()));
                            serve(s, &spec2, &stop2, &seen2);
                        }
                        Err(e) => {
                            let _ = tx.send(Err(format!("{spec2:?}: {e}")));
                        }
                    }
                })
                .map_err(|e| Error::io("cannot start a listener thread", e))?;
            me.threads.push(t);
            match rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(Error::Plan(format!("cannot listen: {e}"))),
                Err(_) => return Err(Error::Plan("a listener thread died".into())),
            }
        }
        Ok(me)
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        self.shutdown();
    }
}
