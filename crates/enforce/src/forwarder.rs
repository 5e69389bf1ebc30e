//! The forwarder: UDP and TCP DNS (RFC 1035 section 4.2, RFC 7766) on the listening address,
//! each query passed unchanged to the upstream and its answer held until what it opens
//! ([`crate::answer::decide`]) is committed in the kernel ([`portolan_nft::elements`]), then
//! released. A failed commit answers SERVFAIL: nothing reaches a device that the firewall
//! would not let it use. Plain threads: a pool of UDP workers that grows while all are busy,
//! and one per TCP connection (at most [`MAX_INFLIGHT`] each); when a namespace is given, the thread that opens the
//! sockets enters it first and the others are started from it, so they live there too.
//!
//! Also here: the unlisted-name policy ([`Unlisted`]: a name no flow of the asking device
//! states is answered, or refused without asking the upstream), the report of lookups of
//! known DoH hosts, and the sweep that keeps an element whose flow is live in conntrack
//! ([`crate::conntrack`]) past its TTL: every [`Options::sweep`] (a third of the floor, by
//! default), the elements this forwarder wrote that expire within two sweeps are checked
//! against the kernel's connections, and those with a live connection of their own flow are
//! refreshed (the same add-delete-add transaction) for six sweeps or the floor, whichever is
//! longer; the others are left to expire. Elements already in the kernel when it starts (a
//! previous forwarder's) are swept too.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use portolan_emit::nftables::{NameRule, NameScope};
use portolan_nft::commit::Committer;
use portolan_nft::elements::Pair;
use portolan_nft::Where;
use serde_json::{json, Value};

use crate::answer::{admits, decide_with, Decision, Learnt, Timing};

/// An element in the kernel: set, device, peer and (for an SRV-learnt peer) port.
type ElementKey = (String, IpAddr, IpAddr, Option<u16>);

/// The SRV targets learnt, by (device, target name), each with until when it lives.
type LearntTargets = HashMap<(IpAddr, String), Vec<(Learnt, Instant)>>;

/// At most this many SRV targets are remembered (all devices together); an SRV answer
/// beyond it opens what it carries but teaches no target for later A/AAAA queries.
const MAX_LEARNT: usize = 65_536;
pub use crate::metrics::Stats;
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

/// What a device asking for a name no flow of its own states gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Unlisted {
    /// The upstream's answer, which opens nothing (the default).
    #[default]
    Answer,
    /// REFUSED (RFC 1035 section 4.1.1, RCODE 5), without asking the upstream.
    Refuse,
    /// NXDOMAIN (RCODE 3), without asking the upstream.
    Nxdomain,
}

/// What the forwarder does besides forwarding (see [`start_with`]).
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub unlisted: Unlisted,
    /// DNS-over-HTTPS hosts of the site's own, reported like the shipped ones
    /// ([`portolan_emit::doh::NAMES`]).
    pub doh_names: Vec<String>,
    /// Where to serve Prometheus metrics (bound in the namespace `portolan` runs in).
    pub metrics: Option<SocketAddr>,
    /// How often to look for live flows of elements about to expire; `None`: a third of the
    /// floor, between 250 ms and 10 s. `Some(Duration::ZERO)`: never (elements expire at
    /// their TTL whatever conntrack holds).
    pub sweep: Option<Duration>,
}

impl Options {
    /// The sweep period under `timing`; `None`: no sweep.
    pub fn sweep_period(&self, timing: &Timing) -> Option<Duration> {
        match self.sweep {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None => {
                Some((timing.floor / 3).clamp(Duration::from_millis(250), Duration::from_secs(10)))
            }
        }
    }
}

/// Where events go: one JSON object each.
pub type Sink = Arc<dyn Fn(Value) + Send + Sync>;

/// What an element this forwarder wrote is known to be.
#[derive(Clone, Copy, Debug)]
struct Known {
    /// Until when it lives in the kernel.
    until: Instant,
    /// Being added by a transaction not yet committed: not in the kernel yet, so no answer
    /// may count on it; another answer for it writes a refresh, which holds whatever the
    /// order of the two in the kernel.
    pending: bool,
}

pub(crate) struct Shared {
    scopes: Vec<NameScope>,
    /// Each enforce set's rule (for the flow a conntrack entry must belong to).
    rules: HashMap<String, NameRule>,
    cfg: Config,
    opts: Options,
    pub(crate) at: Where,
    /// Writes the elements (libnftables in-process, concurrent answers batched).
    commit: Committer,
    /// Until when each element written is known to live: a repeated answer that would not
    /// extend it needs no transaction, and the sweep looks here for elements near expiry.
    known: Mutex<HashMap<ElementKey, Known>>,
    /// The SRV targets each device learnt (device, target name) with until when: the
    /// device's A/AAAA query of such a name is admitted and opens the target at its port.
    srv: Mutex<LearntTargets>,
    /// Whether the sets were read at start, so that an element not in `known` is not in the
    /// kernel either and can be written with one `add` (else every write is a refresh).
    kernel_read: bool,
    /// When [`remember`] next drops long-gone entries of `known`.
    next_prune: Mutex<Instant>,
    stop: Arc<AtomicBool>,
    inflight: AtomicUsize,
    /// UDP workers running, and how many of them wait for a query now.
    udp_workers: AtomicUsize,
    udp_idle: AtomicUsize,
    /// The UDP workers started beyond the pool, joined when the UDP side stops (they hold
    /// the socket: a forwarder started after this one binds the same port).
    extra: Mutex<Vec<JoinHandle<()>>>,
    /// Queries being answered now: [`Running::stop`] waits for none, so that a stopped
    /// forwarder opens nothing.
    answering: AtomicUsize,
    pub(crate) stats: Stats,
    sink: Sink,
}

/// A running forwarder.
pub struct Running {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    /// The addresses actually bound (port 0 in the configuration picks one).
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    /// Where metrics are served, if asked.
    pub metrics: Option<SocketAddr>,
}

impl Running {
    /// Stops the loops and waits for them (queries in flight finish on their own).
    pub fn stop(mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // A TCP connection's thread that took a query before the stop answers it; one that
        // takes one after does not ([`answer`]).
        while self.shared.answering.load(Ordering::SeqCst) > 0 {
            std::thread::sleep(Duration::from_millis(5));
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

/// Binds the sockets (in the namespace, if any) and starts serving, with default
/// [`Options`].
pub fn start(scopes: Vec<NameScope>, cfg: Config, sink: Sink) -> Result<Running, Error> {
    start_with(scopes, cfg, Options::default(), sink)
}

/// Binds the sockets (in the namespace, if any) and starts serving.
pub fn start_with(
    scopes: Vec<NameScope>,
    cfg: Config,
    opts: Options,
    sink: Sink,
) -> Result<Running, Error> {
    let at = match &cfg.netns {
        Some(ns) => Where::Netns(ns.clone()),
        None => Where::Host,
    };
    // Metrics are bound here, in the namespace `portolan` was started in, where a local
    // Prometheus can reach them.
    let metrics = opts.metrics.map(crate::metrics::bind).transpose()?;
    let rules = scopes
        .iter()
        .flat_map(|s| &s.rules)
        .flat_map(|r| r.sets.iter().map(move |(_, n)| (n.clone(), r.clone())))
        .collect();
    let known = inherited(&at, &rules);
    let kernel_read = known.is_some();
    let known = known.unwrap_or_default();
    let commit = Committer::start(&at)?;
    let shared = Arc::new(Shared {
        scopes,
        rules,
        cfg,
        opts,
        at,
        commit,
        known: Mutex::new(known),
        srv: Mutex::new(HashMap::new()),
        kernel_read,
        next_prune: Mutex::new(Instant::now() + PRUNE_EVERY),
        stop: Arc::new(AtomicBool::new(false)),
        inflight: AtomicUsize::new(0),
        udp_workers: AtomicUsize::new(0),
        udp_idle: AtomicUsize::new(0),
        extra: Mutex::new(Vec::new()),
        answering: AtomicUsize::new(0),
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
            let t3 = sh.opts.sweep_period(&sh.cfg.timing).map(|period| {
                let s3 = sh.clone();
                std::thread::spawn(move || sweep_loop(&s3, period))
            });
            let _ = tx.send(Ok(addrs));
            let _ = t1.join();
            let _ = t2.join();
            if let Some(t) = t3 {
                let _ = t.join();
            }
        })
        .map_err(|e| Error::Setup(format!("cannot start a thread: {e}")))?;
    let (udp, tcp) = match rx.recv() {
        Ok(Ok((Ok(u), Ok(t)))) => (u, t),
        Ok(Err(e)) => return Err(e),
        _ => return Err(Error::Setup("the listening sockets have no address".into())),
    };
    let mut threads = vec![root];
    let mut metrics_addr = None;
    if let Some(l) = metrics {
        metrics_addr = l.local_addr().ok();
        threads.push(crate::metrics::serve(
            l,
            shared.clone(),
            shared.stop.clone(),
        ));
    }
    (shared.sink)(
        json!({"ts": now_secs(), "event": "listening", "udp": udp.to_string(), "tcp": tcp.to_string(),
        "upstream": shared.cfg.upstream.to_string(), "netns": shared.cfg.netns,
        "metrics": metrics_addr.map(|a| a.to_string()),
        "unlisted": format!("{:?}", shared.opts.unlisted).to_lowercase(),
        "sweep_ms": shared.opts.sweep_period(&shared.cfg.timing).map(|d| d.as_millis() as u64),
        "commit": shared.commit.backend().name()}),
    );
    Ok(Running {
        shared,
        threads,
        udp,
        tcp,
        metrics: metrics_addr,
    })
}

/// The elements already in the kernel (a previous forwarder's, before a restart or an
/// upgrade), with the time they have left, so that the sweep keeps those whose flow is live
/// as it keeps its own. Unreadable sets give none: they age out by their TTL as before.
fn inherited(at: &Where, rules: &HashMap<String, NameRule>) -> Option<HashMap<ElementKey, Known>> {
    let now = Instant::now();
    let live = portolan_nft::elements::live_pairs(at).ok()?;
    let known = live
        .into_iter()
        .filter(|p| rules.contains_key(&p.set))
        .filter_map(|p| {
            let left = p.expires?;
            Some((
                (p.set, p.device, p.peer, p.port),
                Known {
                    until: now + Duration::from_secs(left),
                    pending: false,
                },
            ))
        })
        .collect();
    Some(known)
}

/// Takes a slot for a query or connection; `false` when all are taken.
fn slot(sh: &Shared) -> bool {
    if sh.inflight.fetch_add(1, Ordering::SeqCst) >= MAX_INFLIGHT {
        sh.inflight.fetch_sub(1, Ordering::SeqCst);
        return false;
    }
    true
}

/// Workers always waiting on the UDP socket; more are started while all are busy.
const UDP_WORKERS: usize = 4;

/// How long an extra worker waits without a query before it ends.
const EXTRA_IDLE: Duration = Duration::from_secs(10);

/// The UDP side: a pool of workers, each reading queries from the socket itself and
/// answering them on the same thread (no thread started and no hand-off per query). A worker
/// that takes a query while no other is waiting starts one more (at most [`MAX_INFLIGHT`]
/// in all), so a slow upstream never leaves queries queued behind it; the extra ones end
/// after [`EXTRA_IDLE`] without work. Workers started here inherit this thread's namespace.
fn udp_loop(sh: &Arc<Shared>, sock: &UdpSocket) {
    let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
    let Ok(sock) = sock.try_clone().map(Arc::new) else {
        return;
    };
    let pool: Vec<JoinHandle<()>> = (0..UDP_WORKERS)
        .map(|_| {
            sh.udp_workers.fetch_add(1, Ordering::SeqCst);
            let (s, k) = (sh.clone(), sock.clone());
            std::thread::spawn(move || udp_worker(&s, &k, false))
        })
        .collect();
    for t in pool {
        let _ = t.join();
    }
    // The extra workers, and any they started before they stopped.
    loop {
        let started: Vec<JoinHandle<()>> = match sh.extra.lock() {
            Ok(mut e) => e.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        if started.is_empty() {
            break;
        }
        for t in started {
            let _ = t.join();
        }
    }
}

/// Answers `query` unless the forwarder is stopping: once [`Running::stop`] is called, a
/// query taken is dropped (no answer, nothing opened), and `stop` returns only after the
/// answers begun before it are done.
fn answer(sh: &Shared, query: &[u8], device: IpAddr, transport: Transport) -> Option<Vec<u8>> {
    sh.answering.fetch_add(1, Ordering::SeqCst);
    let reply = if sh.stop.load(Ordering::SeqCst) {
        None
    } else {
        handle(sh, query, device, transport)
    };
    sh.answering.fetch_sub(1, Ordering::SeqCst);
    reply
}

fn udp_worker(sh: &Arc<Shared>, sock: &Arc<UdpSocket>, extra: bool) {
    let mut buf = [0u8; 4096];
    let mut idle_since = Instant::now();
    while !sh.stop.load(Ordering::SeqCst) {
        sh.udp_idle.fetch_add(1, Ordering::SeqCst);
        let got = sock.recv_from(&mut buf);
        let others_idle = sh.udp_idle.fetch_sub(1, Ordering::SeqCst) - 1;
        let Ok((n, src)) = got else {
            if extra && idle_since.elapsed() >= EXTRA_IDLE {
                break;
            }
            continue;
        };
        idle_since = Instant::now();
        if others_idle == 0 && sh.udp_workers.fetch_add(1, Ordering::SeqCst) < MAX_INFLIGHT {
            let (s, k) = (sh.clone(), sock.clone());
            match std::thread::Builder::new().spawn(move || udp_worker(&s, &k, true)) {
                Ok(t) => {
                    if let Ok(mut e) = sh.extra.lock() {
                        // Those that ended on their own (idle) need no join.
                        e.retain(|t| !t.is_finished());
                        e.push(t);
                    }
                }
                Err(_) => {
                    sh.udp_workers.fetch_sub(1, Ordering::SeqCst);
                }
            }
        } else if others_idle == 0 {
            sh.udp_workers.fetch_sub(1, Ordering::SeqCst);
        }
        // A dual-stack socket ([::]) sees IPv4 devices as ::ffff:a.b.c.d.
        if let Some(reply) = answer(sh, &buf[..n], src.ip().to_canonical(), Transport::Udp) {
            let _ = sock.send_to(&reply, src);
        }
    }
    sh.udp_workers.fetch_sub(1, Ordering::SeqCst);
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
            tcp_conn(&s, conn, src.ip().to_canonical());
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
        let Some(reply) = answer(sh, &q, device, Transport::Tcp) else {
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

thread_local! {
    /// A UDP answer's room (the largest datagram).
    static UPSTREAM_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 65535]);
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
            // A fresh socket per query (an unpredictable source port, RFC 5452 section 9.2);
            // the receive buffer is the thread's own, kept between queries.
            UPSTREAM_BUF.with_borrow_mut(|buf| {
                let mut last = std::io::Error::from(std::io::ErrorKind::TimedOut);
                for _ in 0..2 {
                    s.send(query)?;
                    match s.recv(buf) {
                        Ok(n) if n >= 2 && buf[..2] == query[..2] => return Ok(buf[..n].to_vec()),
                        Ok(_) => continue,
                        Err(e) => last = e,
                    }
                }
                Err(last)
            })
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
    error_reply(q, ResponseCode::ServFail)
}

/// An answer with no records and `rcode`, to `q` (its ID, question and RD bit).
fn error_reply(q: &Message, rcode: ResponseCode) -> Option<Vec<u8>> {
    let mut m = Message::error_msg(q.metadata.id, q.metadata.op_code, rcode);
    m.metadata.recursion_desired = q.metadata.recursion_desired;
    m.metadata.recursion_available = true;
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
    let qname = q
        .queries
        .first()
        .map(|x| x.name.to_ascii())
        .unwrap_or_default();
    let (group, listed) = admits(&sh.scopes, device, &qname);
    let learnt = recall(sh, device, &qname);
    let permitted = listed || !learnt.is_empty();
    if portolan_emit::doh::is_doh_name(&qname, &sh.opts.doh_names) {
        sh.stats.doh_lookups.fetch_add(1, Ordering::Relaxed);
        (sh.sink)(
            json!({"ts": now_secs(), "event": "doh-lookup", "device": device.to_string(),
            "group": group, "name": qname.trim_end_matches('.').to_ascii_lowercase(),
            "transport": t.name(), "permitted": permitted}),
        );
    }
    if !permitted && sh.opts.unlisted != Unlisted::Answer {
        let rcode = if sh.opts.unlisted == Unlisted::Refuse {
            ResponseCode::Refused
        } else {
            ResponseCode::NXDomain
        };
        sh.stats.refused.fetch_add(1, Ordering::Relaxed);
        (sh.sink)(
            json!({"ts": now_secs(), "event": "refused", "device": device.to_string(),
            "group": group, "name": qname.trim_end_matches('.').to_ascii_lowercase(),
            "transport": t.name(), "rcode": rcode.to_string()}),
        );
        return error_reply(&q, rcode);
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
        decide_with(&sh.scopes, device, &answer, &sh.cfg.timing, &learnt)
    };
    if d.permitted {
        sh.stats.permitted.fetch_add(1, Ordering::Relaxed);
    }
    let started = Instant::now();
    let (fresh, refresh) = due(sh, d.opened.iter().map(|o| &o.pair));
    let committed = if fresh.is_empty() && refresh.is_empty() {
        Ok(())
    } else {
        sh.commit.write_split(&fresh, &refresh)
    };
    if committed.is_err() {
        forget_pending(sh, &fresh);
    }
    let pairs: Vec<Pair> = fresh.into_iter().chain(refresh).collect();
    let took = started.elapsed();
    if !pairs.is_empty() && committed.is_ok() {
        sh.stats.observe_commit(took);
    }
    let commit_ms = took.as_secs_f64() * 1000.0;
    let opened: Vec<Value> = d
        .opened
        .iter()
        .map(|o| {
            let mut v = json!({"flow": o.provenance, "set": o.pair.set,
                "peer": o.pair.peer.to_string(), "ttl": o.ttl, "timeout": o.pair.timeout});
            if let Some(port) = o.pair.port {
                v["port"] = json!(port);
            }
            v
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
            learn(sh, &d.learnt);
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

/// The pairs to write, of those an answer opens: `(fresh, refresh)`. Fresh ones are in no set
/// (one `add` writes them; they are marked pending until committed); the others are written
/// as a refresh unless their element is already known to outlive what this answer asks for.
fn due<'a>(sh: &Shared, pairs: impl Iterator<Item = &'a Pair>) -> (Vec<Pair>, Vec<Pair>) {
    let now = Instant::now();
    let mut known = sh.known.lock().unwrap_or_else(|e| e.into_inner());
    let (mut fresh, mut refresh) = (Vec::new(), Vec::new());
    for p in pairs {
        let want = now + Duration::from_secs(p.timeout);
        let key = (p.set.clone(), p.device, p.peer, p.port);
        match known.get(&key) {
            None if sh.kernel_read => {
                known.insert(
                    key,
                    Known {
                        until: want,
                        pending: true,
                    },
                );
                fresh.push(p.clone());
            }
            Some(k) if !k.pending && k.until + Duration::from_secs(1) >= want => {}
            _ => refresh.push(p.clone()),
        }
    }
    (fresh, refresh)
}

/// After a failed commit: the pending marks of `fresh` are taken back (their elements were
/// not added), so that the next answer writes them again.
fn forget_pending(sh: &Shared, fresh: &[Pair]) {
    let mut known = sh.known.lock().unwrap_or_else(|e| e.into_inner());
    for p in fresh {
        let key = (p.set.clone(), p.device, p.peer, p.port);
        if known.get(&key).is_some_and(|k| k.pending) {
            known.remove(&key);
        }
    }
}

/// The SRV targets `device` learnt under the name `qname` and still holds, each `ttl` the
/// seconds it has left.
fn recall(sh: &Shared, device: IpAddr, qname: &str) -> Vec<Learnt> {
    let name = qname.trim_end_matches('.').to_ascii_lowercase();
    let now = Instant::now();
    let srv = sh.srv.lock().unwrap_or_else(|e| e.into_inner());
    srv.get(&(device, name))
        .into_iter()
        .flatten()
        .filter(|(_, until)| *until > now)
        .map(|(l, until)| Learnt {
            ttl: u32::try_from((*until - now).as_secs()).unwrap_or(u32::MAX),
            ..l.clone()
        })
        .collect()
}

/// Remembers the SRV targets an answer taught a device, for its record's TTL plus the
/// grace (the time its triples live).
fn learn(sh: &Shared, learnt: &[Learnt]) {
    if learnt.is_empty() {
        return;
    }
    let now = Instant::now();
    let mut srv = sh.srv.lock().unwrap_or_else(|e| e.into_inner());
    if srv.len() >= MAX_LEARNT {
        srv.retain(|_, v| {
            v.retain(|(_, until)| *until > now);
            !v.is_empty()
        });
    }
    for l in learnt {
        let until = now + Duration::from_secs(sh.cfg.timing.timeout(l.ttl));
        if srv.len() >= MAX_LEARNT && !srv.contains_key(&(l.device, l.target.clone())) {
            continue;
        }
        let v = srv.entry((l.device, l.target.clone())).or_default();
        v.retain(|(x, t)| *t > now && !(x.port == l.port && x.provenance == l.provenance));
        v.push((l.clone(), until));
    }
}

/// How often [`remember`] drops the elements long gone from `known`: a walk of every element,
/// so not on every answer (it made each answer's cost grow with the elements written).
const PRUNE_EVERY: Duration = Duration::from_secs(10);

fn remember(sh: &Shared, pairs: &[Pair]) {
    if pairs.is_empty() {
        return;
    }
    let now = Instant::now();
    let mut known = sh.known.lock().unwrap_or_else(|e| e.into_inner());
    // Long gone (the sweep, when it runs, has counted them already). An entry left a little
    // longer is harmless: one whose time is up is written again as a refresh.
    let mut next = sh.next_prune.lock().unwrap_or_else(|e| e.into_inner());
    if now >= *next {
        known.retain(|_, k| k.until + Duration::from_secs(60) > now);
        *next = now + PRUNE_EVERY;
    }
    drop(next);
    for p in pairs {
        known.insert(
            (p.set.clone(), p.device, p.peer, p.port),
            Known {
                until: now + Duration::from_secs(p.timeout),
                pending: false,
            },
        );
    }
}

/// Every `period`: the elements near expiry, refreshed while their flow is live in
/// conntrack, or counted as expired once their time is up.
fn sweep_loop(sh: &Shared, period: Duration) {
    let lead = period * 2;
    let refresh = (period * 6)
        .max(sh.cfg.timing.floor)
        .as_secs_f64()
        .ceil()
        .max(1.0) as u64;
    let mut next = Instant::now() + period;
    while !sh.stop.load(Ordering::SeqCst) {
        // Short naps, so that a stop is not kept waiting a whole period.
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(100)));
            continue;
        }
        next = now + period;
        let near: Vec<(ElementKey, Known)> = {
            let known = sh.known.lock().unwrap_or_else(|e| e.into_inner());
            known
                .iter()
                .filter(|(_, k)| k.until <= now + lead)
                .map(|(key, k)| (key.clone(), *k))
                .collect()
        };
        if near.is_empty() {
            continue;
        }
        let flows = match crate::conntrack::read(&sh.at) {
            Ok(f) => f,
            Err(e) => {
                sh.stats.conntrack_errors.fetch_add(1, Ordering::Relaxed);
                (sh.sink)(json!({"ts": now_secs(), "event": "conntrack-error", "error": e}));
                Vec::new()
            }
        };
        let mut live = Vec::new();
        let mut gone = Vec::new();
        for ((set, device, peer, port), k) in near {
            let alive = sh.rules.get(&set).is_some_and(|r| {
                flows.iter().any(|f| {
                    crate::conntrack::is_live_flow(f, r, device, peer)
                        && port.is_none_or(|p| f.dport == Some(p))
                })
            });
            if alive {
                live.push(Pair {
                    set,
                    device,
                    peer,
                    port,
                    timeout: refresh,
                });
            } else if k.until <= now {
                gone.push((set, device, peer, port));
            }
        }
        if !live.is_empty() {
            let started = Instant::now();
            match sh.commit.write(&live) {
                Ok(()) => {
                    sh.stats.observe_commit(started.elapsed());
                    sh.stats
                        .elements_refreshed
                        .fetch_add(live.len() as u64, Ordering::Relaxed);
                    remember(sh, &live);
                    for p in &live {
                        (sh.sink)(json!({"ts": now_secs(), "event": "refresh",
                            "device": p.device.to_string(), "peer": p.peer.to_string(),
                            "set": p.set, "flow": sh.rules.get(&p.set).map(|r| r.provenance.clone()),
                            "timeout": p.timeout}));
                    }
                }
                Err(e) => {
                    sh.stats.commit_errors.fetch_add(1, Ordering::Relaxed);
                    (sh.sink)(json!({"ts": now_secs(), "event": "refresh-error",
                        "elements": live.len(), "error": e.to_string()}));
                }
            }
        }
        if !gone.is_empty() {
            let mut known = sh.known.lock().unwrap_or_else(|e| e.into_inner());
            for key in &gone {
                // An answer may have extended it meanwhile.
                if known.get(key).is_some_and(|k| k.until <= Instant::now()) {
                    known.remove(key);
                    sh.stats.elements_expired.fetch_add(1, Ordering::Relaxed);
                    (sh.sink)(json!({"ts": now_secs(), "event": "expired",
                        "device": key.1.to_string(), "peer": key.2.to_string(), "set": key.0,
                        "flow": sh.rules.get(&key.0).map(|r| r.provenance.clone())}));
                }
            }
        }
    }
}
