//! The forwarder: UDP and TCP DNS (RFC 1035 section 4.2, RFC 7766) on the listening address,
//! each query passed unchanged to the upstream and its answer held until what it opens
//! ([`crate::answer::decide`]) is committed in the kernel ([`portolan_nft::elements`]), then
//! released. A failed commit answers SERVFAIL: nothing reaches a device that the firewall
//! would not let it use. Plain threads: one per socket loop and one per query or TCP
//! connection (at most [`MAX_INFLIGHT`]); when a namespace is given, the thread that opens the
//! sockets enters it first and the others are started from it, so they live there too.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use portolan_emit::nftables::NameScope;
use portolan_nft::commit::Committer;
use portolan_nft::elements::Pair;
use portolan_nft::Where;
use serde_json::{json, Value};

use crate::answer::{decide, Decision, Timing};
use crate::Error;

/// Queries and TCP connections handled at once; more are dropped (the device retries).
pub const MAX_INFLIGHT: usize = 512;

/// How the forwarder runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where devices send their queries (UDP and TCP).
    pub listen: SocketAddr,
    /// The site's resolver.
    pub upstream: SocketAddr,
    /// The firewall's network namespace; `None`: the one `portolan` runs in.
    pub netns: Option<String>,
    pub timing: Timing,
    /// How long to wait for the upstream (UDP: per attempt, two attempts).
    pub upstream_timeout: Duration,
}

/// Counters, for logs and (later) metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub queries: AtomicU64,
    pub answers: AtomicU64,
    pub permitted: AtomicU64,
    pub elements: AtomicU64,
    pub commit_errors: AtomicU64,
    pub upstream_errors: AtomicU64,
}

/// Where events go: one JSON object each.
pub type Sink = Arc<dyn Fn(Value) + Send + Sync>;

struct Shared {
    scopes: Vec<NameScope>,
    cfg: Config,
    /// Writes the elements (libnftables in-process, concurrent answers batched).
    commit: Committer,
    /// Until when each element written is known to live: a repeated answer that would not
    /// extend it needs no transaction.
    known: Mutex<HashMap<(String, IpAddr, IpAddr), Instant>>,
    stop: AtomicBool,
    inflight: AtomicUsize,
    stats: Stats,
    sink: Sink,
}

/// A running forwarder.
pub struct Running {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    /// The addresses actually bound (port 0 in the configuration picks one).
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
}

impl Running {
    /// Stops the loops and waits for them (queries in flight finish on their own).
    pub fn stop(mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// Blocks until `stop` is set (by a signal handler, say), then stops.
    pub fn wait_for(self, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
        self.stop();
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn enter_netns(ns: &str) -> Result<(), Error> {
    if !portolan_nft::exec::valid_netns_name(ns) {
        return Err(Error::Setup(format!(
            "`{ns}` is not a network namespace name"
        )));
    }
    let path = format!("/run/netns/{ns}");
    let f = std::fs::File::open(&path)
        .map_err(|e| Error::Setup(format!("no network namespace `{ns}` ({path}: {e})")))?;
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&f),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .map_err(|e| Error::Setup(format!("cannot enter network namespace {ns} (setns): {e}")))
}

/// Binds the sockets (in the namespace, if any) and starts serving.
pub fn start(scopes: Vec<NameScope>, cfg: Config, sink: Sink) -> Result<Running, Error> {
    let at = match &cfg.netns {
        Some(ns) => Where::Netns(ns.clone()),
        None => Where::Host,
    };
    let commit = Committer::start(&at)?;
    let shared = Arc::new(Shared {
        scopes,
        cfg,
        commit,
        known: Mutex::new(HashMap::new()),
        stop: AtomicBool::new(false),
        inflight: AtomicUsize::new(0),
        stats: Stats::default(),
        sink,
    });
    let (tx, rx) = mpsc::channel();
    let sh = shared.clone();
    let root = std::thread::Builder::new()
        .name("enforce".into())
        .spawn(move || {
            let bound = (|| {
                if let Some(ns) = &sh.cfg.netns {
                    enter_netns(ns)?;
                }
                let udp = UdpSocket::bind(sh.cfg.listen).map_err(|e| {
                    Error::Setup(format!("cannot listen on udp {}: {e}", sh.cfg.listen))
                })?;
                let tcp = TcpListener::bind(sh.cfg.listen).map_err(|e| {
                    Error::Setup(format!("cannot listen on tcp {}: {e}", sh.cfg.listen))
                })?;
                Ok::<_, Error>((udp, tcp))
            })();
            let (udp, tcp) = match bound {
                Ok(x) => x,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let addrs = (udp.local_addr(), tcp.local_addr());
            let s1 = sh.clone();
            let t1 = std::thread::spawn(move || udp_loop(&s1, &udp));
            let s2 = sh.clone();
            let t2 = std::thread::spawn(move || tcp_loop(&s2, &tcp));
            let _ = tx.send(Ok(addrs));
            let _ = t1.join();
            let _ = t2.join();
        })
        .map_err(|e| Error::Setup(format!("cannot start a thread: {e}")))?;
    let (udp, tcp) = match rx.recv() {
        Ok(Ok((Ok(u), Ok(t)))) => (u, t),
        Ok(Err(e)) => return Err(e),
        _ => return Err(Error::Setup("the listening sockets have no address".into())),
    };
    (shared.sink)(
        json!({"ts": now_secs(), "event": "listening", "udp": udp.to_string(), "tcp": tcp.to_string(),
        "upstream": shared.cfg.upstream.to_string(), "netns": shared.cfg.netns,
        "commit": shared.commit.backend().name()}),
    );
    Ok(Running {
        shared,
        threads: vec![root],
        udp,
        tcp,
    })
}

/// Takes a slot for a query or connection; `false` when all are taken.
fn slot(sh: &Shared) -> bool {
    if sh.inflight.fetch_add(1, Ordering::SeqCst) >= MAX_INFLIGHT {
        sh.inflight.fetch_sub(1, Ordering::SeqCst);
        return false;
    }
    true
}

fn udp_loop(sh: &Arc<Shared>, sock: &UdpSocket) {
    let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 4096];
    while !sh.stop.load(Ordering::SeqCst) {
        let Ok((n, src)) = sock.recv_from(&mut buf) else {
            continue;
        };
        if !slot(sh) {
            continue;
        }
        let Ok(reply_sock) = sock.try_clone() else {
            sh.inflight.fetch_sub(1, Ordering::SeqCst);
            continue;
        };
        let query = buf[..n].to_vec();
        let s = sh.clone();
        std::thread::spawn(move || {
            if let Some(reply) = handle(&s, &query, src.ip(), Transport::Udp) {
                let _ = reply_sock.send_to(&reply, src);
            }
            s.inflight.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

fn tcp_loop(sh: &Arc<Shared>, listener: &TcpListener) {
    let _ = listener.set_nonblocking(true);
    while !sh.stop.load(Ordering::SeqCst) {
        let Ok((conn, src)) = listener.accept() else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        if !slot(sh) {
            continue;
        }
        let s = sh.clone();
        std::thread::spawn(move || {
            let _ = conn.set_nonblocking(false);
            tcp_conn(&s, conn, src.ip());
            s.inflight.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Reads a DNS message framed with its two-byte length (RFC 1035 section 4.2.2).
fn read_framed(c: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    c.read_exact(&mut len).ok()?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    c.read_exact(&mut msg).ok()?;
    Some(msg)
}

fn write_framed(c: &mut TcpStream, msg: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(msg.len()).unwrap_or(u16::MAX);
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(&msg[..usize::from(len)]);
    c.write_all(&out)
}

fn tcp_conn(sh: &Shared, mut c: TcpStream, device: IpAddr) {
    // RFC 7766 section 6.2.3: a server may close an idle connection; 10 s here.
    let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
    while !sh.stop.load(Ordering::SeqCst) {
        let Some(q) = read_framed(&mut c) else { return };
        let Some(reply) = handle(sh, &q, device, Transport::Tcp) else {
            return;
        };
        if write_framed(&mut c, &reply).is_err() {
            return;
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// The upstream's answer to `query`, over the transport the device used.
fn ask_upstream(sh: &Shared, query: &[u8], t: Transport) -> std::io::Result<Vec<u8>> {
    let up = sh.cfg.upstream;
    let timeout = sh.cfg.upstream_timeout;
    match t {
        Transport::Udp => {
            let local: SocketAddr = if up.is_ipv4() {
                "0.0.0.0:0".parse().map_err(std::io::Error::other)?
            } else {
                "[::]:0".parse().map_err(std::io::Error::other)?
            };
            let s = UdpSocket::bind(local)?;
            s.connect(up)?;
            s.set_read_timeout(Some(timeout))?;
            let mut buf = vec![0u8; 65535];
            let mut last = std::io::Error::from(std::io::ErrorKind::TimedOut);
            for _ in 0..2 {
                s.send(query)?;
                match s.recv(&mut buf) {
                    Ok(n) if n >= 2 && buf[..2] == query[..2] => return Ok(buf[..n].to_vec()),
                    Ok(_) => continue,
                    Err(e) => last = e,
                }
            }
            Err(last)
        }
        Transport::Tcp => {
            let mut c = TcpStream::connect_timeout(&up, timeout)?;
            c.set_read_timeout(Some(timeout))?;
            write_framed(&mut c, query)?;
            read_framed(&mut c)
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
        }
    }
}

fn servfail(q: &Message) -> Option<Vec<u8>> {
    let mut m = Message::error_msg(q.metadata.id, q.metadata.op_code, ResponseCode::ServFail);
    m.metadata.recursion_desired = q.metadata.recursion_desired;
    m.queries = q.queries.clone();
    m.to_vec().ok()
}

/// One query: forwarded, decided, committed, released. `None`: no reply (not a query).
fn handle(sh: &Shared, query: &[u8], device: IpAddr, t: Transport) -> Option<Vec<u8>> {
    sh.stats.queries.fetch_add(1, Ordering::Relaxed);
    let q = Message::from_vec(query).ok()?;
    if q.metadata.message_type != MessageType::Query {
        return None;
    }
    let reply = match ask_upstream(sh, query, t) {
        Ok(r) => r,
        Err(e) => {
            sh.stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
            (sh.sink)(
                json!({"ts": now_secs(), "event": "upstream-error", "device": device.to_string(),
                "transport": t.name(), "error": e.to_string()}),
            );
            return servfail(&q);
        }
    };
    let Ok(answer) = Message::from_vec(&reply) else {
        sh.stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
        return servfail(&q);
    };
    // The answer must be to this question: anything else opens nothing and is not passed on.
    if answer.metadata.id != q.metadata.id || answer.queries != q.queries {
        sh.stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
        return servfail(&q);
    }
    sh.stats.answers.fetch_add(1, Ordering::Relaxed);
    // A truncated UDP answer opens nothing: the device asks again over TCP (RFC 7766).
    let d = if answer.metadata.truncation {
        Decision::default()
    } else {
        decide(&sh.scopes, device, &answer, &sh.cfg.timing)
    };
    if d.permitted {
        sh.stats.permitted.fetch_add(1, Ordering::Relaxed);
    }
    let started = Instant::now();
    let pairs = due(sh, d.opened.iter().map(|o| &o.pair));
    let committed = if pairs.is_empty() {
        Ok(())
    } else {
        sh.commit.write(&pairs)
    };
    let commit_ms = started.elapsed().as_secs_f64() * 1000.0;
    let opened: Vec<Value> = d
        .opened
        .iter()
        .map(|o| {
            json!({"flow": o.provenance, "set": o.pair.set, "peer": o.pair.peer.to_string(),
            "ttl": o.ttl, "timeout": o.pair.timeout})
        })
        .collect();
    let mut ev = json!({"ts": now_secs(), "event": "answer", "device": device.to_string(),
        "group": d.group, "name": d.name, "transport": t.name(),
        "rcode": answer.metadata.response_code.to_string(), "permitted": d.permitted,
        "chain": d.chain, "opened": opened, "written": pairs.len(), "commit_ms": commit_ms});
    match committed {
        Ok(()) => {
            sh.stats
                .elements
                .fetch_add(pairs.len() as u64, Ordering::Relaxed);
            remember(sh, &pairs);
            (sh.sink)(ev);
            Some(reply)
        }
        Err(e) => {
            sh.stats.commit_errors.fetch_add(1, Ordering::Relaxed);
            ev["event"] = json!("commit-error");
            ev["error"] = json!(e.to_string());
            (sh.sink)(ev);
            servfail(&q)
        }
    }
}

/// The pairs whose element is not already known to outlive what this answer asks for.
fn due<'a>(sh: &Shared, pairs: impl Iterator<Item = &'a Pair>) -> Vec<Pair> {
    let now = Instant::now();
    let known = sh.known.lock().unwrap_or_else(|e| e.into_inner());
    pairs
        .filter(|p| {
            let want = now + Duration::from_secs(p.timeout);
            known
                .get(&(p.set.clone(), p.device, p.peer))
                .is_none_or(|k| *k + Duration::from_secs(1) < want)
        })
        .cloned()
        .collect()
}

fn remember(sh: &Shared, pairs: &[Pair]) {
    let now = Instant::now();
    let mut known = sh.known.lock().unwrap_or_else(|e| e.into_inner());
    known.retain(|_, k| *k > now);
    for p in pairs {
        known.insert(
            (p.set.clone(), p.device, p.peer),
            now + Duration::from_secs(p.timeout),
        );
    }
}
