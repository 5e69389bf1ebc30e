//! `portolan responder`: the far-side helper for the keepalive stage and for end-to-end UDP
//! checks. It binds only the addresses it is given, and answers only requests that carry the
//! shared token; answers are never larger than requests, at most one delayed answer follows
//! each request, and holds are bounded in time and number, so it cannot be used to amplify or
//! reflect traffic.
//!
//! Protocol (one line, UDP datagram or TCP line): `PORTOLAN1 <token> ECHO <nonce>` is answered
//! `PORTOLAN1 ACK <nonce>`; `PORTOLAN1 <token> HOLD <nonce> <ms>` is answered the same at once
//! and, `ms` milliseconds later, `PORTOLAN1 LATE <nonce>` on the same UDP source or TCP
//! connection — if the path's mapping is still there, it reaches the probe.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};

use crate::NetError;

/// Bounds on what the responder will do.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The longest hold it grants.
    pub max_hold: Duration,
    /// Holds (UDP and TCP together) pending at once.
    pub max_pending: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_hold: Duration::from_secs(3600),
            max_pending: 256,
        }
    }
}

/// A parsed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Echo { nonce: String },
    Hold { nonce: String, ms: u64 },
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parses a request line; `None` for anything without the right token or shape.
pub fn parse(line: &[u8], token: &str) -> Option<Request> {
    let text = std::str::from_utf8(line).ok()?.trim_end();
    let mut it = text.split(' ');
    if it.next()? != "PORTOLAN1" || !same(it.next()?.as_bytes(), token.as_bytes()) {
        return None;
    }
    let op = it.next()?;
    let nonce = it.next()?;
    if nonce.is_empty() || nonce.len() > 32 || !nonce.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let req = match op {
        "ECHO" => Request::Echo {
            nonce: nonce.to_string(),
        },
        "HOLD" => Request::Hold {
            nonce: nonce.to_string(),
            ms: it.next()?.parse().ok()?,
        },
        _ => return None,
    };
    it.next().is_none().then_some(req)
}

pub fn request_line(token: &str, req: &Request) -> String {
    match req {
        Request::Echo { nonce } => format!("PORTOLAN1 {token} ECHO {nonce}\n"),
        Request::Hold { nonce, ms } => format!("PORTOLAN1 {token} HOLD {nonce} {ms}\n"),
    }
}

pub fn ack(nonce: &str) -> String {
    format!("PORTOLAN1 ACK {nonce}\n")
}

pub fn late(nonce: &str) -> String {
    format!("PORTOLAN1 LATE {nonce}\n")
}

/// Sockets bound and ready to serve.
pub struct Bound {
    udp: Vec<Arc<UdpSocket>>,
    tcp: Vec<TcpListener>,
    token: Arc<str>,
    limits: Limits,
}

/// Binds UDP and TCP on every address of `listen` (port 0 picks one).
pub async fn bind(listen: &[SocketAddr], token: &str, limits: Limits) -> Result<Bound, NetError> {
    if token.len() < 8 || !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(NetError::Invalid(
            "the token must be at least 8 printable characters without spaces".into(),
        ));
    }
    let mut udp = Vec::new();
    let mut tcp = Vec::new();
    for a in listen {
        let u = UdpSocket::bind(a).await.map_err(|e| NetError::Bind {
            addr: *a,
            source: e,
        })?;
        let port = u.local_addr().map(|x| x.port()).unwrap_or(a.port());
        let t_addr = SocketAddr::new(a.ip(), port);
        let t = TcpListener::bind(t_addr)
            .await
            .map_err(|e| NetError::Bind {
                addr: t_addr,
                source: e,
            })?;
        udp.push(Arc::new(u));
        tcp.push(t);
    }
    Ok(Bound {
        udp,
        tcp,
        token: Arc::from(token),
        limits,
    })
}

impl Bound {
    /// The bound addresses (UDP and TCP share each).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.udp
            .iter()
            .filter_map(|u| u.local_addr().ok())
            .collect()
    }

    /// Serves until the task is dropped.
    pub async fn serve(self) {
        let pending = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for u in self.udp {
            tasks.spawn(serve_udp(
                u,
                self.token.clone(),
                self.limits,
                pending.clone(),
            ));
        }
        for t in self.tcp {
            tasks.spawn(serve_tcp(
                t,
                self.token.clone(),
                self.limits,
                pending.clone(),
            ));
        }
        while tasks.join_next().await.is_some() {}
    }
}

/// A slot among the pending holds, released on drop.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(p: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        let mut cur = p.load(Ordering::Relaxed);
        loop {
            if cur >= max {
                return None;
            }
            match p.compare_exchange(cur, cur + 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Some(Slot(p.clone())),
                Err(x) => cur = x,
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn serve_udp(
    sock: Arc<UdpSocket>,
    token: Arc<str>,
    limits: Limits,
    pending: Arc<AtomicUsize>,
) {
    let mut buf = vec![0u8; 512];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let Some(req) = buf.get(..n).and_then(|b| parse(b, &token)) else {
            continue;
        };
        match req {
            Request::Echo { nonce } => {
                let _ = sock.send_to(ack(&nonce).as_bytes(), from).await;
            }
            Request::Hold { nonce, ms } => {
                if Duration::from_millis(ms) > limits.max_hold {
                    continue;
                }
                let Some(slot) = Slot::take(&pending, limits.max_pending) else {
                    continue;
                };
                let _ = sock.send_to(ack(&nonce).as_bytes(), from).await;
                let s = sock.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    let _ = s.send_to(late(&nonce).as_bytes(), from).await;
                });
            }
        }
    }
}

async fn serve_tcp(l: TcpListener, token: Arc<str>, limits: Limits, pending: Arc<AtomicUsize>) {
    loop {
        let Ok((stream, _)) = l.accept().await else {
            continue;
        };
        let Some(slot) = Slot::take(&pending, limits.max_pending) else {
            continue;
        };
        let token = token.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let (r, mut w) = stream.into_split();
            let mut line = Vec::new();
            let mut r = BufReader::new(r).take(256);
            let read =
                tokio::time::timeout(Duration::from_secs(10), r.read_until(b'\n', &mut line)).await;
            if !matches!(read, Ok(Ok(n)) if n > 0) {
                return;
            }
            let Some(req) = parse(&line, &token) else {
                return;
            };
            match req {
                Request::Echo { nonce } => {
                    let _ = w.write_all(ack(&nonce).as_bytes()).await;
                }
                Request::Hold { nonce, ms } => {
                    if Duration::from_millis(ms) > limits.max_hold {
                        return;
                    }
                    if w.write_all(ack(&nonce).as_bytes()).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    let _ = w.write_all(late(&nonce).as_bytes()).await;
                    // Let the probe read it before the connection closes.
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        });
    }
}

use tokio::io::AsyncReadExt as _;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_requests_with_the_token_parse() {
        let t = "s3cret-token";
        assert_eq!(
            parse(b"PORTOLAN1 s3cret-token ECHO ab12\n", t),
            Some(Request::Echo {
                nonce: "ab12".into()
            })
        );
        assert_eq!(
            parse(b"PORTOLAN1 s3cret-token HOLD ab12 1500", t),
            Some(Request::Hold {
                nonce: "ab12".into(),
                ms: 1500
            })
        );
        assert_eq!(parse(b"PORTOLAN1 wrong-token ECHO ab12", t), None);
        assert_eq!(parse(b"PORTOLAN1 s3cret-token ECHO a;b", t), None);
        assert_eq!(parse(b"PORTOLAN1 s3cret-token HOLD ab12 x", t), None);
        assert_eq!(parse(b"PORTOLAN1 s3cret-token ECHO ab12 extra", t), None);
        let line = request_line(
            t,
            &Request::Hold {
                nonce: "n1".into(),
                ms: 5,
            },
        );
        assert!(ack("n1").len() < line.len());
    }

    #[tokio::test]
    async fn answers_echo_on_loopback_and_ignores_strangers() {
        let b = bind(
            &["127.0.0.1:0".parse().expect("ok")],
            "token-1234",
            Limits::default(),
        )
        .await
        .expect("bind");
        let addr = b.local_addrs()[0];
        let server = tokio::spawn(b.serve());
        let c = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        c.connect(addr).await.expect("connect");
        c.send(b"PORTOLAN1 nope-nope ECHO n1\n")
            .await
            .expect("send");
        c.send(b"PORTOLAN1 token-1234 ECHO n2\n")
            .await
            .expect("send");
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(2), c.recv(&mut buf))
            .await
            .expect("answer")
            .expect("recv");
        assert_eq!(&buf[..n], b"PORTOLAN1 ACK n2\n");
        server.abort();
    }
}
