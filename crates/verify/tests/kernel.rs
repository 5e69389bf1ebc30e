//! The kernel decides who is right: seeded random rulesets inside the supported subset and
//! random packets, evaluated statically by `portolan-verify` and sent for real through a
//! network namespace with the ruleset loaded. Every packet's two verdicts must agree; the
//! count is printed; a disagreement prints the seed, a reproducer shrunk to the rules that
//! matter, the packet, and both verdicts.
//!
//! Topology (namespaces created here, removed on exit, error, panic and signals):
//! `gen` sends forged IPv4 packets (raw socket, any source address) out of `g0` or `g1`;
//! they enter the firewall namespace `fw` on `a0`/`a1`, which routes 10.1.0.0/16 out of
//! `b0` and 10.2.0.0/16 out of `b1` (towards `sink`) and owns 10.9.0.1 (the input path).
//! An observer table in `fw` records the IP identification of every packet that reaches the
//! end of the forward and input hooks (priority 1000, after every chain under test) in a
//! set; its output chain drops what `fw` itself would answer, so no tuple ever sees a reply
//! and every packet is conntrack state `new`. Reverse-path filtering is off.
//!
//! `VERIFY_DIFF_RULESETS` and `VERIFY_DIFF_PACKETS` change the size, `VERIFY_DIFF_SEED` the
//! seed.
//!
//! Over 800 lines on purpose: the generator, the sender and the shrinker of one differential
//! test, which share its topology; none of them serves another test.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use portolan_lab::netns::{Handle, Lock, Resources};
use portolan_lab::wire::{forged_packet, Segment, Token};
use portolan_verify::eval::{Outcome, Piece};
use portolan_verify::lower::{lower, Options};
use portolan_verify::program::{Path, Program};
use portolan_verify::space::{Class, CtState, Dim, Iv};

/// splitmix64: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
    /// One of the strings.
    fn word(&mut self, v: &[&'static str]) -> &'static str {
        v[self.below(v.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const SADDRS: [&str; 8] = [
    "10.1.0.5",
    "10.1.3.7",
    "10.2.0.9",
    "10.3.1.1",
    "10.3.1.200",
    "10.4.0.17",
    "172.16.5.5",
    "192.168.50.3",
];
// No address is both a source and a destination: a later packet must never be the reply of
// an earlier one (conntrack would call it established).
const DADDRS_FWD: [&str; 5] = ["10.1.0.7", "10.1.200.1", "10.2.0.1", "10.2.7.7", "10.1.0.6"];
const LOCAL: &str = "10.9.0.1";
const PREFIXES: [&str; 8] = [
    "10.1.0.0/16",
    "10.1.0.0/24",
    "10.2.0.0/16",
    "10.3.1.0/24",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "10.9.0.1/32",
    "10.1.0.4/30",
];
const RANGES: [&str; 3] = [
    "10.1.0.0-10.1.3.255",
    "10.2.0.5-10.3.1.100",
    "10.3.1.150-10.4.255.255",
];
const PORTS: [u16; 8] = [22, 53, 80, 443, 1024, 4321, 5000, 40000];
const PORT_RANGES: [&str; 4] = ["20-80", "443-1024", "1025-65535", "50-60"];

#[derive(Clone, Debug)]
struct Packet {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    /// 6 tcp, 17 udp, 1 icmp echo, 50 esp
    proto: u8,
    sport: u16,
    dport: u16,
    /// 0 or 1: enters on a0 / a1.
    iif: usize,
}

impl Packet {
    fn input(&self) -> bool {
        self.dst.to_string() == LOCAL
    }
    fn oif(&self) -> &'static str {
        if self.input() {
            ""
        } else if self.dst.octets()[1] == 1 {
            "b0"
        } else {
            "b1"
        }
    }
}

fn random_packet(r: &mut Rng) -> Packet {
    let dst = if r.chance(25) {
        LOCAL
    } else {
        r.word(&DADDRS_FWD)
    };
    let proto = *r.pick(&[6u8, 6, 17, 17, 1, 50]);
    let port = |r: &mut Rng| {
        if r.chance(70) {
            *r.pick(&PORTS)
        } else {
            1 + r.below(65535) as u16
        }
    };
    Packet {
        src: r.pick(&SADDRS).parse().expect("pool address"),
        dst: dst.parse().expect("pool address"),
        proto,
        sport: port(r),
        dport: port(r),
        iif: r.below(2),
    }
}

/// The addresses of a generated element (`a.b.c.d`, `x/len`, `a-b`), to keep set elements
/// apart (nft refuses overlapping intervals in one set).
fn addr_span(e: &str) -> (u32, u32) {
    let ip = |s: &str| u32::from(s.parse::<Ipv4Addr>().expect("generated address"));
    if let Some((a, len)) = e.split_once('/') {
        let len: u32 = len.parse().expect("prefix length");
        let lo = ip(a);
        let size = if len == 0 {
            u32::MAX
        } else {
            (1u32 << (32 - len)) - 1
        };
        (lo, lo | size)
    } else if let Some((a, b)) = e.split_once('-') {
        (ip(a), ip(b))
    } else {
        (ip(e), ip(e))
    }
}

fn port_span(e: &str) -> (u32, u32) {
    match e.split_once('-') {
        Some((a, b)) => (a.parse().expect("port"), b.parse().expect("port")),
        None => {
            let p = e.parse().expect("port");
            (p, p)
        }
    }
}

fn overlap(a: (u32, u32), b: (u32, u32)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

/// `{ a, b }`, or `{ a }` when the two overlap.
fn two(a: String, b: String, span: fn(&str) -> (u32, u32)) -> String {
    if overlap(span(&a), span(&b)) {
        format!("{{ {a} }}")
    } else {
        format!("{{ {a}, {b} }}")
    }
}

/// `{ a . p, b . q }`, or one element when they overlap on both.
fn two_pairs(a: &str, p: &str, b: &str, q: &str) -> String {
    if overlap(addr_span(a), addr_span(b)) && overlap(port_span(p), port_span(q)) {
        format!("{{ {a} . {p} }}")
    } else {
        format!("{{ {a} . {p}, {b} . {q} }}")
    }
}

fn addr_expr(r: &mut Rng, sets: bool) -> String {
    match r.below(if sets { 6 } else { 5 }) {
        0 => r.pick(&SADDRS).to_string(),
        1 => r.pick(&PREFIXES).to_string(),
        2 => r.pick(&RANGES).to_string(),
        3 => two(
            r.pick(&PREFIXES).to_string(),
            r.pick(&SADDRS).to_string(),
            addr_span,
        ),
        4 => r.pick(&DADDRS_FWD).to_string(),
        _ => "@addrs".to_string(),
    }
}

fn port_expr(r: &mut Rng) -> String {
    match r.below(5) {
        0 | 1 => r.pick(&PORTS).to_string(),
        2 => r.pick(&PORT_RANGES).to_string(),
        3 => two(
            r.pick(&PORTS).to_string(),
            r.pick(&PORT_RANGES).to_string(),
            port_span,
        ),
        _ => "@ports".to_string(),
    }
}

fn neg(r: &mut Rng) -> &'static str {
    if r.chance(20) {
        "!= "
    } else {
        ""
    }
}

/// One match expression of the supported subset, with the protocol it implies ("" none;
/// nft refuses two different ones in a rule).
fn match_expr(r: &mut Rng) -> (String, &'static str) {
    match r.below(12) {
        0 | 1 => (format!("ip saddr {}{}", neg(r), addr_expr(r, true)), ""),
        2 | 3 => (format!("ip daddr {}{}", neg(r), addr_expr(r, true)), ""),
        4 | 5 => {
            let p = *r.pick(&["tcp", "udp"]);
            let f = *r.pick(&["sport", "dport"]);
            if r.chance(15) {
                (
                    format!(
                        "{p} {f} {} {}",
                        r.pick(&["<", ">=", "<=", ">"]),
                        r.pick(&PORTS)
                    ),
                    p,
                )
            } else {
                (format!("{p} {f} {}{}", neg(r), port_expr(r)), p)
            }
        }
        6 => (
            format!(
                "meta l4proto {}{}",
                neg(r),
                r.pick(&["tcp", "udp", "icmp", "esp", "{ tcp, udp }", "{ icmp, esp }"])
            ),
            "l4",
        ),
        7 => (
            format!(
                "icmp type {}{}",
                neg(r),
                r.pick(&[
                    "echo-request",
                    "echo-reply",
                    "{ echo-request, time-exceeded }"
                ])
            ),
            "icmp",
        ),
        8 => (
            format!(
                "ct state {}{}",
                neg(r),
                r.pick(&[
                    "new",
                    "established,related",
                    "invalid",
                    "{ new, established }"
                ])
            ),
            "",
        ),
        9 => (
            format!(
                "iifname {}{}",
                neg(r),
                r.pick(&["\"a0\"", "\"a1\"", "\"a*\"", "{ \"a0\", \"x9\" }"])
            ),
            "",
        ),
        10 => (
            format!(
                "oifname {}{}",
                neg(r),
                r.pick(&["\"b0\"", "\"b1\"", "\"b*\""])
            ),
            "",
        ),
        _ => match r.below(3) {
            0 => ("ip saddr . tcp dport @pairs".to_string(), "tcp"),
            1 => (
                format!(
                    "ip daddr . udp dport {}",
                    two_pairs(
                        r.word(&PREFIXES),
                        &r.pick(&PORTS).to_string(),
                        r.word(&SADDRS),
                        r.word(&PORT_RANGES)
                    )
                ),
                "udp",
            ),
            _ => (
                format!(
                    "meta l4proto {{ tcp, udp }} th dport {}{}",
                    neg(r),
                    port_expr(r)
                ),
                "l4",
            ),
        },
    }
}

/// Up to `n` matches that nft accepts together.
fn matches(r: &mut Rng, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut proto = "";
    for _ in 0..n {
        for _ in 0..10 {
            let (m, p) = match_expr(r);
            if p.is_empty() || proto.is_empty() {
                if !p.is_empty() {
                    proto = p;
                }
                out.push(m);
                break;
            }
        }
    }
    out
}

/// A verdict for a rule of chain `at` (jumps only forward, so no loops).
fn verdict(r: &mut Rng, at: usize, chains: usize) -> String {
    let later: Vec<usize> = (at + 1..chains).collect();
    match r.below(10) {
        0..=2 => "accept".into(),
        3 | 4 => "drop".into(),
        5 => "reject".into(),
        6 if !later.is_empty() => format!("jump c{}", r.pick(&later)),
        7 if !later.is_empty() => format!("goto c{}", r.pick(&later)),
        6 | 7 => "counter".into(),
        8 => "return".into(),
        _ => {
            let targets: Vec<String> = ["accept", "drop"]
                .iter()
                .map(|s| s.to_string())
                .chain(later.iter().map(|c| format!("jump c{c}")))
                .collect();
            let (a, b) = (r.word(&SADDRS), r.word(&PREFIXES));
            let (x, y) = (r.pick(&targets), r.pick(&targets));
            if overlap(addr_span(a), addr_span(b)) {
                format!("ip saddr vmap {{ {a} : {x} }}")
            } else {
                format!("ip saddr vmap {{ {a} : {x}, {b} : {y} }}")
            }
        }
    }
}

fn rules(r: &mut Rng, at: usize, chains: usize, least: usize, spread: usize) -> Vec<String> {
    let n = least + r.below(spread);
    (0..n)
        .map(|_| {
            let n = r.below(3) + usize::from(r.chance(50));
            let mut parts = matches(r, n);
            if r.chance(15) {
                parts.push("counter".into());
            }
            if r.chance(10) {
                // A rate with no verdict after it: the packet goes on whatever the rate.
                parts.push("limit rate 100000/second counter".into());
            } else {
                parts.push(verdict(r, at, chains));
            }
            parts.join(" ")
        })
        .collect()
}

/// A random ruleset: table `inet t` (named sets, base chains on prerouting, forward and
/// input, regular chains c1..c3) and sometimes a table `ip t2` with a second forward chain.
fn random_ruleset(r: &mut Rng) -> String {
    let mut s = String::from("table inet t {\n");
    let addrs = two(
        r.pick(&PREFIXES).to_string(),
        r.pick(&RANGES).to_string(),
        addr_span,
    );
    s.push_str(&format!(
        "\tset addrs {{ type ipv4_addr; flags interval; elements = {addrs} }}\n"
    ));
    let ports = two(
        r.pick(&PORTS).to_string(),
        r.pick(&PORT_RANGES).to_string(),
        port_span,
    );
    s.push_str(&format!(
        "\tset ports {{ type inet_service; flags interval; elements = {ports} }}\n"
    ));
    let pairs = two_pairs(
        r.word(&PREFIXES),
        r.word(&PORT_RANGES),
        r.word(&SADDRS),
        &r.pick(&PORTS).to_string(),
    );
    s.push_str(&format!(
        "\tset pairs {{ type ipv4_addr . inet_service; flags interval; elements = {pairs} }}\n"
    ));
    let chains = 4; // index 0: the base chains; c1..c3
    let policy = |r: &mut Rng| if r.chance(50) { "accept" } else { "drop" };
    if r.chance(40) {
        s.push_str(&format!(
            "\tchain pre {{\n\t\ttype filter hook prerouting priority -10; policy {};\n",
            policy(r)
        ));
        for l in rules(r, 0, chains, 1, 3) {
            s.push_str(&format!("\t\t{l}\n"));
        }
        s.push_str("\t}\n");
    }
    for (name, hook) in [("forw", "forward"), ("inpt", "input")] {
        s.push_str(&format!(
            "\tchain {name} {{\n\t\ttype filter hook {hook} priority 0; policy {};\n",
            policy(r)
        ));
        for l in rules(r, 0, chains, 2, 6) {
            s.push_str(&format!("\t\t{l}\n"));
        }
        s.push_str("\t}\n");
    }
    for c in 1..chains {
        s.push_str(&format!("\tchain c{c} {{\n"));
        for l in rules(r, c, chains, 1, 4) {
            s.push_str(&format!("\t\t{l}\n"));
        }
        s.push_str("\t}\n");
    }
    s.push_str("}\n");
    if r.chance(30) {
        s.push_str(&format!("table ip t2 {{\n\tchain forw2 {{\n\t\ttype filter hook forward priority 10; policy {};\n", policy(r)));
        for l in rules(r, chains, chains, 1, 3) {
            // The named sets live in the other table.
            let l = l
                .replace("@addrs", "10.1.0.0/16")
                .replace("@ports", "443-1024")
                .replace("@pairs", "{ 10.2.0.0/16 . 20-80 }");
            s.push_str(&format!("\t\t{l}\n"));
        }
        s.push_str("\t}\n}\n");
    }
    s
}

const OBSERVER: &str = "table inet observe {
	set seen { typeof ip id; flags dynamic; size 65535; }
	chain obs_fwd {
		type filter hook forward priority 1000; policy accept;
		meta nfproto ipv4 add @seen { ip id }
	}
	chain obs_inp {
		type filter hook input priority 1000; policy accept;
		meta nfproto ipv4 add @seen { ip id }
	}
	chain obs_out { type filter hook output priority -1000; policy drop; }
}
";

fn sh(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if !out.status.success() {
        return Err(format!(
            "`{}`: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn nft_in(ns: &str, args: &[&str]) -> Result<String, String> {
    let mut v = vec!["ip", "netns", "exec", ns, "nft"];
    v.extend_from_slice(args);
    sh(&v)
}

fn nft_text(ns: &str, text: &str) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("plv-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let f = dir.join("r.nft");
    std::fs::write(&f, text).map_err(|e| e.to_string())?;
    let r = nft_in(ns, &["-f", f.to_str().unwrap_or_default()]).map(|_| ());
    let _ = std::fs::remove_dir_all(&dir);
    r
}

struct Lab {
    fw: String,
    gen: Handle,
    _res: Resources,
}

fn setup() -> Result<Lab, String> {
    let prefix = portolan_lab::netns::unique_prefix();
    let fw = format!("{prefix}-fw");
    let gen = format!("{prefix}-gen");
    let sink = format!("{prefix}-sink");
    let mut res = Resources::new();
    for ns in [&fw, &gen, &sink] {
        res.add_netns(ns).map_err(|e| e.to_string())?;
    }
    let ip = |ns: &str, rest: &[&str]| -> Result<String, String> {
        let mut v = vec!["ip", "-n", ns];
        v.extend_from_slice(rest);
        sh(&v)
    };
    for i in 0..2 {
        let (a, g, b, s) = (
            format!("a{i}"),
            format!("g{i}"),
            format!("b{i}"),
            format!("s{i}"),
        );
        sh(&[
            "ip", "link", "add", &a, "netns", &fw, "type", "veth", "peer", "name", &g, "netns",
            &gen,
        ])?;
        sh(&[
            "ip", "link", "add", &b, "netns", &fw, "type", "veth", "peer", "name", &s, "netns",
            &sink,
        ])?;
        for (ns, dev) in [(&fw, &a), (&gen, &g), (&fw, &b), (&sink, &s)] {
            ip(ns, &["link", "set", dev, "up"])?;
        }
        ip(
            &fw,
            &["addr", "add", &format!("192.168.{i}.1/30"), "dev", &a],
        )?;
        ip(
            &gen,
            &["addr", "add", &format!("192.168.{i}.2/30"), "dev", &g],
        )?;
        ip(
            &fw,
            &[
                "addr",
                "add",
                &format!("192.168.{}.1/30", 10 + i),
                "dev",
                &b,
            ],
        )?;
        ip(
            &sink,
            &[
                "addr",
                "add",
                &format!("192.168.{}.2/30", 10 + i),
                "dev",
                &s,
            ],
        )?;
        ip(
            &gen,
            &[
                "route",
                "add",
                "default",
                "via",
                &format!("192.168.{i}.1"),
                "dev",
                &g,
                "metric",
                &format!("{}", 10 + i),
            ],
        )?;
    }
    ip(&fw, &["addr", "add", &format!("{LOCAL}/32"), "dev", "lo"])?;
    ip(
        &fw,
        &[
            "route",
            "add",
            "10.1.0.0/16",
            "via",
            "192.168.10.2",
            "dev",
            "b0",
        ],
    )?;
    ip(
        &fw,
        &[
            "route",
            "add",
            "10.2.0.0/16",
            "via",
            "192.168.11.2",
            "dev",
            "b1",
        ],
    )?;
    for k in [
        "net.ipv4.ip_forward=1",
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.default.rp_filter=0",
        "net.ipv4.conf.a0.rp_filter=0",
        "net.ipv4.conf.a1.rp_filter=0",
        "net.ipv4.conf.all.accept_local=1",
    ] {
        sh(&["ip", "netns", "exec", &fw, "sysctl", "-qw", k])?;
    }
    nft_text(&fw, OBSERVER)?;
    let gen = Handle::open(&gen).map_err(|e| e.to_string())?;
    Ok(Lab { fw, gen, _res: res })
}

/// Sends the packets (the IP identification is the index + 1) and returns which arrived.
fn send_batch(lab: &Lab, packets: &[Packet]) -> Result<Vec<bool>, String> {
    nft_in(&lab.fw, &["flush", "set", "inet", "observe", "seen"])?;
    let packets = packets.to_vec();
    let handle_name = lab.gen.name().to_string();
    let sent = std::thread::scope(|s| {
        s.spawn(|| -> Result<(), String> {
            let h = Handle::open(&handle_name).map_err(|e| e.to_string())?;
            h.enter().map_err(|e| e.to_string())?;
            let socks: Vec<socket2::Socket> = (0..2)
                .map(|i| {
                    let so = socket2::Socket::new(
                        socket2::Domain::IPV4,
                        socket2::Type::RAW,
                        Some(socket2::Protocol::from(255)),
                    )
                    .map_err(|e| e.to_string())?;
                    so.bind_device(Some(format!("g{i}").as_bytes()))
                        .map_err(|e| e.to_string())?;
                    Ok(so)
                })
                .collect::<Result<_, String>>()?;
            for (i, p) in packets.iter().enumerate() {
                let mut t: Token = [0; 16];
                t[10..12].copy_from_slice(&((i + 1) as u16).to_be_bytes());
                let seg = match p.proto {
                    6 => Segment::TcpSyn {
                        sport: p.sport,
                        dport: p.dport,
                    },
                    17 => Segment::Udp {
                        sport: p.sport,
                        dport: p.dport,
                    },
                    1 => Segment::Echo { id: (i + 1) as u16 },
                    n => Segment::Raw { protocol: n },
                };
                let bytes = forged_packet(IpAddr::V4(p.src), IpAddr::V4(p.dst), seg, &t);
                let to = socket2::SockAddr::from(SocketAddr::new(IpAddr::V4(p.dst), 0));
                socks[p.iif]
                    .send_to(&bytes, &to)
                    .map_err(|e| format!("send: {e}"))?;
            }
            Ok(())
        })
        .join()
        .map_err(|_| "sender panicked".to_string())?
    });
    sent?;
    std::thread::sleep(Duration::from_millis(30));
    let listing = nft_in(&lab.fw, &["-j", "list", "set", "inet", "observe", "seen"])?;
    let v: serde_json::Value = serde_json::from_str(&listing).map_err(|e| e.to_string())?;
    let mut seen = vec![false; packets.len()];
    for it in v["nftables"].as_array().into_iter().flatten() {
        for e in it["set"]["elem"].as_array().into_iter().flatten() {
            if let Some(id) = e.as_u64() {
                if let Some(x) = seen.get_mut(id as usize - 1) {
                    *x = true;
                }
            }
        }
    }
    Ok(seen)
}

/// Loads `ruleset` (replacing the previous one; the observer stays).
fn load(lab: &Lab, ruleset: &str) -> Result<(), String> {
    let text = format!(
        "table inet t {{}}\ndelete table inet t\ntable ip t2 {{}}\ndelete table ip t2\n{ruleset}"
    );
    nft_text(&lab.fw, &text)
}

/// The ruleset loaded in `fw`, lowered.
fn program(lab: &Lab) -> Result<Program, String> {
    let doc: serde_json::Value =
        serde_json::from_str(&nft_in(&lab.fw, &["-j", "list", "ruleset"])?)
            .map_err(|e| e.to_string())?;
    let opts = Options {
        interfaces: ["a0", "a1", "b0", "b1"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ..Options::default()
    };
    lower(&doc, &opts).map_err(|e| e.to_string())
}

/// A packet as a one-point class, and its path.
fn point(prog: &Program, p: &Packet) -> (Path, Class) {
    let mut c = prog.all();
    let pt = |c: &mut Class, d: Dim, v: u128| c.set(d, Iv::point(v));
    pt(&mut c, Dim::Family, 0);
    pt(&mut c, Dim::Saddr, u128::from(u32::from(p.src)));
    pt(&mut c, Dim::Daddr, u128::from(u32::from(p.dst)));
    pt(&mut c, Dim::Proto, u128::from(p.proto));
    if matches!(p.proto, 6 | 17) {
        pt(&mut c, Dim::Sport, u128::from(p.sport));
        pt(&mut c, Dim::Dport, u128::from(p.dport));
    }
    if p.proto == 1 {
        pt(&mut c, Dim::IcmpType, 8);
    }
    pt(&mut c, Dim::Ct, CtState::New.value());
    c.set(Dim::Iif, prog.iface(&format!("a{}", p.iif)));
    c.set(Dim::Oif, prog.iface(p.oif()));
    let path = if p.input() {
        Path::Input
    } else {
        Path::Forward
    };
    (path, c)
}

fn verdict_of(pieces: &[Piece]) -> (Option<bool>, String) {
    let why = pieces
        .iter()
        .map(|x| {
            format!(
                "{:?} by {:?}",
                x.outcome,
                x.rule.as_ref().map(|r| r.to_string())
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let v = if pieces.iter().all(|x| x.outcome == Outcome::Accept) {
        Some(true)
    } else if pieces.iter().all(|x| x.outcome == Outcome::Deny) {
        Some(false)
    } else {
        None
    };
    (v, why)
}

/// The static verdict of each packet: `Some(true)` accept, `Some(false)` deny, `None`
/// depends (never expected inside the subset).
fn evaluate(lab: &Lab, packets: &[Packet]) -> Result<Vec<(Option<bool>, String)>, String> {
    let prog = program(lab)?;
    Ok(packets
        .iter()
        .map(|p| {
            let (path, c) = point(&prog, p);
            verdict_of(&prog.evaluate(path, &c))
        })
        .collect())
}

fn volume(c: &Class) -> u128 {
    c.iv.iter()
        .fold(1u128, |acc, iv| acc.saturating_mul(iv.hi - iv.lo + 1))
}

/// The whole IPv4 space of new packets on one path, evaluated at once: the pieces must be
/// disjoint and cover it, and the piece holding each packet must give the kernel's verdict.
/// Returns the (packet, verdict) pairs checked, or what went wrong.
fn check_classes(prog: &Program, packets: &[Packet], kernel: &[bool]) -> Result<u64, String> {
    let mut checked = 0;
    for path in [Path::Forward, Path::Input] {
        let mut c = prog.all();
        c.set(Dim::Family, Iv::point(0));
        c.set(Dim::Saddr, Iv::new(0, u128::from(u32::MAX)));
        c.set(Dim::Daddr, Iv::new(0, u128::from(u32::MAX)));
        c.set(Dim::Ct, Iv::point(CtState::New.value()));
        if path == Path::Input {
            c.set(Dim::Oif, Iv::point(0));
        }
        let pieces = prog.evaluate(path, &c);
        let total: u128 = pieces.iter().map(|p| volume(&p.class)).sum();
        if total != volume(&c) {
            return Err(format!(
                "{path:?}: {} pieces cover {total} of {} packets",
                pieces.len(),
                volume(&c)
            ));
        }
        for i in 0..pieces.len() {
            for j in i + 1..pieces.len() {
                if pieces[i].class.intersect(&pieces[j].class).is_some() {
                    return Err(format!("{path:?}: pieces {i} and {j} overlap"));
                }
            }
        }
        for (p, k) in packets.iter().zip(kernel) {
            let (pp, pt) = point(prog, p);
            if pp != path {
                continue;
            }
            let holding: Vec<&Piece> = pieces
                .iter()
                .filter(|x| x.class.intersect(&pt).is_some())
                .collect();
            let want = if *k { Outcome::Accept } else { Outcome::Deny };
            if holding.len() != 1 || holding[0].outcome != want {
                return Err(format!(
                    "{path:?}: packet {p:?} (kernel {}) lies in {} pieces of the whole class, outcomes {:?}",
                    if *k { "accepted" } else { "dropped" },
                    holding.len(),
                    holding.iter().map(|x| &x.outcome).collect::<Vec<_>>()
                ));
            }
            checked += 1;
        }
    }
    Ok(checked)
}

/// Removes rule lines while the packet's disagreement persists.
fn shrink(lab: &Lab, ruleset: &str, p: &Packet) -> String {
    let disagrees = |text: &str| -> bool {
        if load(lab, text).is_err() {
            return false;
        }
        match (
            evaluate(lab, std::slice::from_ref(p)),
            send_batch(lab, std::slice::from_ref(p)),
        ) {
            (Ok(s), Ok(k)) => s[0].0 != Some(k[0]),
            _ => false,
        }
    };
    let mut lines: Vec<String> = ruleset.lines().map(str::to_string).collect();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim();
        let is_rule = !(l.ends_with('{')
            || l == "}"
            || l.starts_with("type ")
            || l.starts_with("set ")
            || l.starts_with("table"));
        if is_rule {
            let mut trial = lines.clone();
            trial.remove(i);
            if disagrees(&trial.join("\n")) {
                lines = trial;
                continue;
            }
        }
        i += 1;
    }
    lines.join("\n")
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let is_root = sh(&["id", "-u"]).map(|s| s.trim() == "0").unwrap_or(false);
    if !is_root {
        eprintln!("verify kernel differential test: SKIPPED LOUDLY — needs root (network namespaces, nft)");
        std::process::exit(1);
    }
    let _ = portolan_lab::netns::install_signal_cleanup();
    let _lock = Lock::acquire(&|| eprintln!("waiting for another kernel test to finish"))
        .expect("lab lock");
    let seed = env("VERIFY_DIFF_SEED", 20261202);
    let rulesets = env("VERIFY_DIFF_RULESETS", 60);
    let per = env("VERIFY_DIFF_PACKETS", 200) as usize;
    let lab = setup().expect("differential lab namespaces");
    let start = Instant::now();

    // Control: with no ruleset under test, every packet must arrive (routing, rp_filter and
    // the observer work), else the comparison would mean nothing.
    let mut r = Rng(seed ^ 0x5eed);
    let control: Vec<Packet> = (0..per).map(|_| random_packet(&mut r)).collect();
    load(&lab, "").expect("empty ruleset");
    let got = send_batch(&lab, &control).expect("control batch");
    let lost = got.iter().filter(|x| !**x).count();
    assert_eq!(
        lost, 0,
        "control: {lost} of {per} packets did not cross an empty firewall"
    );

    let mut cases = 0u64;
    let mut accepted = 0u64;
    let mut failures = 0u64;
    let mut class_cases = 0u64;
    let mut class_failures = 0u64;
    for k in 0..rulesets {
        let mut r = Rng(seed.wrapping_add(k.wrapping_mul(0x1000_0001)));
        let ruleset = random_ruleset(&mut r);
        load(&lab, &ruleset).unwrap_or_else(|e| {
            panic!("seed {seed} ruleset {k}: nft refused the generated ruleset: {e}\n{ruleset}")
        });
        let packets: Vec<Packet> = (0..per).map(|_| random_packet(&mut r)).collect();
        let stat = evaluate(&lab, &packets).expect("static evaluation");
        let kernel = send_batch(&lab, &packets).expect("send");
        // The same packets against one evaluation of the whole space (what `verify` does).
        match check_classes(&program(&lab).expect("program"), &packets, &kernel) {
            Ok(n) => class_cases += n,
            Err(e) => {
                class_failures += 1;
                eprintln!("CLASS DISAGREEMENT seed {seed} ruleset {k}: {e}\n{ruleset}");
            }
        }
        for (i, p) in packets.iter().enumerate() {
            cases += 1;
            accepted += u64::from(kernel[i]);
            if stat[i].0 != Some(kernel[i]) {
                failures += 1;
                if failures <= 3 {
                    let small = shrink(&lab, &ruleset, p);
                    eprintln!(
                        "DISAGREEMENT seed {seed} ruleset {k} packet {i}: {p:?}\n  kernel: {}\n  static: {}\n  reproducer (nft -f):\n{small}\n",
                        if kernel[i] { "accepted" } else { "dropped" },
                        stat[i].1
                    );
                    load(&lab, &ruleset).expect("reload");
                }
            }
        }
    }
    println!(
        "verify differential: {cases} packet/ruleset cases over {rulesets} rulesets (seed {seed}): {} agree, {failures} disagree; kernel accepted {accepted}; {:.1} s",
        cases - failures,
        start.elapsed().as_secs_f64()
    );
    println!(
        "verify differential: the same packets inside one evaluation of the whole IPv4 space per ruleset and path: {class_cases} agree with the kernel, {class_failures} rulesets inconsistent"
    );
    if failures > 0 || class_failures > 0 {
        std::process::exit(1);
    }
}
