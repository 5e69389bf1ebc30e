//! The kernel decides who is right, for iptables and for what `tests/kernel.rs` leaves out:
//! IPv6 packets and replies (conntrack state `established`). Seeded random rulesets inside
//! the supported subset, each rendered in one syntax, are loaded into a firewall namespace
//! by the real tools and evaluated statically by `portolan-verify`; random packets are sent
//! for real; every packet's two verdicts must agree. Two modes:
//!
//! - **iptables**: `ipset restore`, `iptables-restore` and `ip6tables-restore` load the
//!   ruleset (filter table, INPUT/FORWARD policies, user chains, `-j`/`-g`/`RETURN`, `-s`/`-d`,
//!   `-i`/`-o` with `+`, `-p`, `-m tcp`/`udp`/`multiport`/`icmp`/`icmp6`/`conntrack`/`state`/
//!   `iprange`/`set` over `hash:net` (with `nomatch`) and `hash:net,port`, REJECT); the
//!   static side reads both the generated text (what `verify --ruleset` does, with its lines)
//!   and `iptables-save`/`ip6tables-save`/`ipset save` of the namespace (`--live`).
//! - **nftables**: the same kind of rulesets written for `nft -f` (tables `ip t` and `ip6 t`),
//!   for the IPv6 and reply packets `tests/kernel.rs` does not send.
//!
//! Packets: IPv4 and IPv6, TCP SYN, UDP, ICMP/ICMPv6 echo and ESP, new, to the firewall
//! (input) or through it (forward); and replies: a UDP datagram or echo request is first
//! sent through the firewall with no ruleset under test (so conntrack confirms it), then the
//! ruleset is loaded and the answer (ports swapped, or an echo reply) comes back from the
//! other side: conntrack state `established`. Reply tuples use source ports and echo ids no
//! other packet of the run uses, so no earlier connection turns a later packet into a reply.
//!
//! Topology (namespaces made here, removed on exit, error, panic and signals): `gen` sends
//! forged packets out of `g0`/`g1` into the firewall `fw` (`a0`/`a1`), which routes
//! 10.1/16 and 2001:db8:1::/48 out of `b0`, 10.2/16 and 2001:db8:2::/48 out of `b1` towards
//! `sink`, the sources' networks back out of `a0`/`a1`, and owns 10.9.0.1 and 2001:db8:9::1.
//! `sink` sends the replies. An observer table in `fw` records the IPv4 identification or
//! IPv6 flow label of every packet reaching the end of forward and input (priority 1000),
//! and drops everything `fw` itself would send; its `ct state` rule keeps connection
//! tracking on in `fw` at all times (the kernel tracks a namespace's connections only while
//! some rule there needs it), so a reply's original is tracked even with no ruleset under
//! test. Neighbours are static, so a ruleset that
//! drops ICMPv6 cannot break neighbour discovery; reverse-path filtering is off.
//!
//! `VERIFY_DIFF2_RULESETS`, `VERIFY_DIFF2_PACKETS`, `VERIFY_DIFF2_REPLIES` change the size,
//! `VERIFY_DIFF2_SEED` the seed. A disagreement prints the seed, the ruleset shrunk to the
//! rules that matter, the packet and both verdicts.

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use portolan_lab::netns::{Handle, Lock, Resources};
use portolan_lab::wire::{forged_packet, Segment, Token};
use portolan_nft::iptables::{parse_ipsets, Iptables, Save};
use portolan_verify::eval::{Outcome, Piece};
use portolan_verify::program::{Path, Program};
use portolan_verify::space::{CtState, Dim, Iv};

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
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Address pools of one family. No source is a destination, so a new packet is never the
/// reply of another.
struct Pools {
    saddrs: &'static [&'static str],
    daddrs: &'static [&'static str],
    local: &'static str,
    prefixes: &'static [&'static str],
    ranges: &'static [(&'static str, &'static str)],
}

const V4: Pools = Pools {
    saddrs: &[
        "10.1.0.5",
        "10.1.3.7",
        "10.2.0.9",
        "10.3.1.1",
        "10.3.1.200",
        "10.4.0.17",
        "172.16.5.5",
        "192.168.50.3",
    ],
    daddrs: &["10.1.0.7", "10.1.200.1", "10.2.0.1", "10.2.7.7", "10.1.0.6"],
    local: "10.9.0.1",
    prefixes: &[
        "10.1.0.0/16",
        "10.1.0.0/24",
        "10.2.0.0/16",
        "10.3.1.0/24",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "10.9.0.1/32",
        "10.1.0.4/30",
    ],
    ranges: &[
        ("10.1.0.0", "10.1.3.255"),
        ("10.2.0.5", "10.3.1.100"),
        ("10.3.1.150", "10.4.255.255"),
    ],
};

const V6: Pools = Pools {
    saddrs: &[
        "2001:db8:1::5",
        "2001:db8:2::9",
        "2001:db8:3::1",
        "2001:db8:3:1::200",
        "2001:db8:4::17",
        "2001:db8:4:5::5",
    ],
    daddrs: &[
        "2001:db8:1::7",
        "2001:db8:1:200::1",
        "2001:db8:2::1",
        "2001:db8:2:7::7",
    ],
    local: "2001:db8:9::1",
    prefixes: &[
        "2001:db8:1::/48",
        "2001:db8:1::/64",
        "2001:db8:2::/48",
        "2001:db8:3::/48",
        "2001:db8::/32",
        "2001:db8:9::1/128",
        "2001:db8:3:1::/64",
        "2001:db8:4::/47",
    ],
    ranges: &[
        ("2001:db8:1::", "2001:db8:1:3::ffff"),
        ("2001:db8:2::5", "2001:db8:3:1::100"),
        ("2001:db8:3:1::150", "2001:db8:4:ffff::ffff"),
    ],
};

const PORTS: [u16; 8] = [22, 53, 80, 443, 1024, 4321, 5000, 40000];
const PORT_RANGES: [(u16, u16); 4] = [(20, 80), (443, 1024), (1025, 65535), (50, 60)];
/// Reply tuples take their source port or echo id from here, and nothing else does.
const REPLY_BASE: u16 = 30000;
const REPLY_SPAN: u16 = 10000;

fn pools(v6: bool) -> &'static Pools {
    if v6 {
        &V6
    } else {
        &V4
    }
}

/// The interface `fw` routes `a` out of (its routing table, set up in [`setup`]).
fn route(a: IpAddr) -> &'static str {
    match a {
        IpAddr::V4(v) => match v.octets() {
            [10, 1, ..] => "b0",
            [10, 2, ..] => "b1",
            [10, 3, ..] | [172, 16..=31, ..] => "a0",
            _ => "a1",
        },
        IpAddr::V6(v) => match v.segments()[2] {
            1 => "b0",
            2 => "b1",
            3 => "a0",
            _ => "a1",
        },
    }
}

#[derive(Clone, Debug)]
struct Packet {
    src: IpAddr,
    dst: IpAddr,
    /// 6 tcp, 17 udp, 1/58 icmp echo, 50 esp
    proto: u8,
    sport: u16,
    dport: u16,
    /// ICMP type: echo request (8/128) or reply (0/129).
    icmp_type: u8,
    iif: &'static str,
    /// A reply to an earlier packet (ct state established), sent from `sink`.
    reply: bool,
}

impl Packet {
    fn v6(&self) -> bool {
        self.src.is_ipv6()
    }
    fn input(&self) -> bool {
        self.dst.to_string() == pools(self.v6()).local
    }
    fn oif(&self) -> &'static str {
        if self.input() {
            ""
        } else {
            route(self.dst)
        }
    }
}

fn addr(s: &str) -> IpAddr {
    s.parse().expect("pool address")
}

/// A new packet (its source port never in the replies' range).
fn new_packet(r: &mut Rng, v6: bool) -> Packet {
    let p = pools(v6);
    let dst = if r.chance(25) {
        p.local
    } else {
        r.pick(p.daddrs)
    };
    let echo = if v6 { 58 } else { 1 };
    let proto = r.pick(&[6u8, 6, 17, 17, echo, 50]);
    let port = |r: &mut Rng| {
        if r.chance(70) {
            r.pick(&PORTS)
        } else {
            let x = 1 + r.below(65535) as u16;
            if (REPLY_BASE..REPLY_BASE + REPLY_SPAN).contains(&x) {
                x - REPLY_BASE
            } else {
                x
            }
        }
    };
    Packet {
        src: addr(r.pick(p.saddrs)),
        dst: addr(dst),
        proto,
        sport: port(r),
        dport: port(r),
        icmp_type: if v6 { 128 } else { 8 },
        iif: r.pick(&["a0", "a1"]),
        reply: false,
    }
}

/// A forwarded UDP datagram or echo request with a tuple of its own (`n` is unique in the
/// run), and the reply to it.
fn reply_pair(r: &mut Rng, v6: bool, n: u16) -> (Packet, Packet) {
    let p = pools(v6);
    let echo = if v6 { 58 } else { 1 };
    let proto = r.pick(&[17u8, 17, echo]);
    // Sources routed back out of a0/a1: a reply that would leave by the interface it came
    // in on (a hairpin) is left out, the forwarding code and not the ruleset may refuse it.
    let outside: Vec<&str> = p
        .saddrs
        .iter()
        .copied()
        .filter(|a| route(addr(a)).starts_with('a'))
        .collect();
    let orig = Packet {
        src: addr(r.pick(&outside)),
        dst: addr(r.pick(p.daddrs)),
        proto,
        sport: REPLY_BASE + n,
        dport: r.pick(&PORTS),
        icmp_type: if v6 { 128 } else { 8 },
        iif: r.pick(&["a0", "a1"]),
        reply: false,
    };
    let back = Packet {
        src: orig.dst,
        dst: orig.src,
        proto,
        sport: orig.dport,
        dport: orig.sport,
        icmp_type: if v6 { 129 } else { 0 },
        iif: route(orig.dst),
        reply: true,
    };
    (orig, back)
}

// ---- rulesets: one abstract form, rendered for iptables or nft ----

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Iptables,
    Nft,
}

#[derive(Clone, Debug)]
enum AddrSpec {
    One(&'static str),
    Range(&'static str, &'static str),
    Set,
}

#[derive(Clone, Debug)]
enum PortSpec {
    One(u16),
    Range(u16, u16),
    /// Two disjoint ports or ranges.
    List(Vec<(u16, u16)>),
}

#[derive(Clone, Debug)]
enum M {
    Addr {
        dst: bool,
        neg: bool,
        a: AddrSpec,
    },
    Proto {
        neg: bool,
        p: u8,
    },
    Port {
        p: u8,
        dst: bool,
        neg: bool,
        s: PortSpec,
    },
    Icmp {
        neg: bool,
        t: u8,
    },
    Ct {
        neg: bool,
        s: Vec<&'static str>,
    },
    If {
        out: bool,
        neg: bool,
        name: &'static str,
    },
    /// source address and TCP destination port in `pairs`.
    Pairs,
}

#[derive(Clone, Debug)]
enum V {
    Accept,
    Drop,
    Reject,
    Jump(usize),
    Goto(usize),
    Return,
    None,
}

#[derive(Clone, Debug)]
struct Rule {
    ms: Vec<M>,
    v: V,
}

/// One family's ruleset: sets, base chain policies, chains 0 forward, 1 input, 2.. user.
#[derive(Clone, Debug)]
struct Ruleset {
    v6: bool,
    /// (member, nomatch)
    addrs: Vec<(String, bool)>,
    pairs: Vec<(String, u16)>,
    policies: [bool; 2],
    chains: Vec<Vec<Rule>>,
}

const USER: usize = 3;

fn spans_overlap(a: (u128, u128), b: (u128, u128)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

fn span(s: &str) -> (u128, u128) {
    let n = |a: &str| match addr(a) {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    };
    match s.split_once('/') {
        Some((a, l)) => {
            let bits = if a.contains(':') { 128 } else { 32 };
            let l: u32 = l.parse().expect("length");
            let lo = n(a);
            let size = if l == 0 {
                u128::MAX
            } else {
                (1u128 << (bits - l)) - 1
            };
            (lo, lo | size)
        }
        None => (n(s), n(s)),
    }
}

fn gen_match(r: &mut Rng, v6: bool, proto: Option<u8>, input_chain: bool, mode: Mode) -> Option<M> {
    let p = pools(v6);
    let neg = r.chance(20);
    Some(match r.below(10) {
        0..=2 => {
            let a = match r.below(4) {
                0 => AddrSpec::One(r.pick(p.saddrs)),
                1 => AddrSpec::One(r.pick(p.prefixes)),
                2 => {
                    let (a, b) = r.pick(p.ranges);
                    AddrSpec::Range(a, b)
                }
                _ => AddrSpec::Set,
            };
            let a = if r.chance(30) {
                match a {
                    AddrSpec::One(_) => AddrSpec::One(r.pick(p.daddrs)),
                    x => x,
                }
            } else {
                a
            };
            M::Addr {
                dst: r.chance(50),
                neg,
                a,
            }
        }
        3 | 4 => {
            let pr = proto.filter(|x| *x == 6 || *x == 17)?;
            let s = match r.below(3) {
                0 => PortSpec::One(r.pick(&PORTS)),
                1 => {
                    let (a, b) = r.pick(&PORT_RANGES);
                    PortSpec::Range(a, b)
                }
                _ => {
                    let a = r.pick(&PORTS);
                    let (lo, hi) = r.pick(&PORT_RANGES);
                    if (lo..=hi).contains(&a) {
                        PortSpec::List(vec![(lo, hi)])
                    } else {
                        PortSpec::List(vec![(a, a), (lo, hi)])
                    }
                }
            };
            M::Port {
                p: pr,
                dst: r.chance(60),
                neg,
                s,
            }
        }
        5 => {
            let want = if v6 { 58 } else { 1 };
            proto.filter(|x| *x == want)?;
            let t = if v6 {
                r.pick(&[128u8, 129, 1])
            } else {
                r.pick(&[8u8, 0, 11])
            };
            M::Icmp { neg, t }
        }
        6 | 7 => M::Ct {
            neg,
            s: r.pick(&[
                &["NEW"][..],
                &["ESTABLISHED", "RELATED"],
                &["INVALID"],
                &["NEW", "ESTABLISHED"],
                &["ESTABLISHED"],
            ])
            .to_vec(),
        },
        8 => {
            // iptables refuses -o in INPUT.
            let out = !(input_chain && mode == Mode::Iptables) && r.chance(50);
            let name = if out {
                r.pick(&["b0", "b1", "b*", "a0"])
            } else {
                r.pick(&["a0", "a1", "a*", "x9"])
            };
            M::If { out, neg, name }
        }
        _ => {
            proto.filter(|x| *x == 6)?;
            M::Pairs
        }
    })
}

fn gen_rule(r: &mut Rng, v6: bool, at: usize, input_chain: bool, mode: Mode) -> Rule {
    let mut ms = Vec::new();
    let echo = if v6 { 58 } else { 1 };
    let mut proto = None;
    match r.below(10) {
        0..=5 => {
            let p = r.pick(&[6u8, 6, 17, 17, echo, 50]);
            proto = Some(p);
            ms.push(M::Proto { neg: false, p });
        }
        6 => ms.push(M::Proto {
            neg: true,
            p: r.pick(&[6u8, 17, echo]),
        }),
        _ => {}
    }
    let n = r.below(3) + usize::from(r.chance(40));
    for _ in 0..n {
        for _ in 0..6 {
            if let Some(m) = gen_match(r, v6, proto, input_chain, mode) {
                // iptables takes one -s, -d, -i and -o per rule.
                let clash = ms.iter().any(|x| match (x, &m) {
                    (
                        M::Addr {
                            dst: a,
                            a: AddrSpec::One(_),
                            ..
                        },
                        M::Addr {
                            dst: b,
                            a: AddrSpec::One(_),
                            ..
                        },
                    ) => a == b,
                    (M::If { out: a, .. }, M::If { out: b, .. }) => a == b,
                    _ => false,
                });
                if !clash {
                    ms.push(m);
                    break;
                }
            }
        }
    }
    let later: Vec<usize> = (at.max(1) + 1..2 + USER).filter(|c| *c >= 2).collect();
    let v = match r.below(10) {
        0..=2 => V::Accept,
        3 | 4 => V::Drop,
        5 => V::Reject,
        6 if !later.is_empty() => V::Jump(r.pick(&later)),
        7 if !later.is_empty() => V::Goto(r.pick(&later)),
        8 => V::Return,
        _ => V::None,
    };
    Rule { ms, v }
}

fn gen_ruleset(r: &mut Rng, v6: bool, mode: Mode) -> Ruleset {
    let p = pools(v6);
    let a = r.pick(p.prefixes).to_string();
    let b = r.pick(p.saddrs).to_string();
    let mut addrs = vec![(a.clone(), false)];
    if !spans_overlap(span(&a), span(&b)) {
        addrs.push((b, false));
    } else if mode == Mode::Iptables && r.chance(60) && b != a {
        // An exception inside the wider member: the most specific prefix decides.
        addrs.push((b, true));
    }
    let pa = r.pick(p.prefixes).to_string();
    let pb = r.pick(p.saddrs).to_string();
    let (x, y) = (r.pick(&PORTS), r.pick(&PORTS));
    let mut pairs = vec![(pa.clone(), x)];
    if !(spans_overlap(span(&pa), span(&pb)) && x == y) {
        pairs.push((pb, y));
    }
    let mut chains = Vec::new();
    for c in 0..2 + USER {
        let n = if c < 2 {
            2 + r.below(6)
        } else {
            1 + r.below(4)
        };
        chains.push((0..n).map(|_| gen_rule(r, v6, c, c == 1, mode)).collect());
    }
    Ruleset {
        v6,
        addrs,
        pairs,
        policies: [r.chance(50), r.chance(50)],
        chains,
    }
}

fn chain_name(mode: Mode, c: usize) -> String {
    match (mode, c) {
        (Mode::Iptables, 0) => "FORWARD".into(),
        (Mode::Iptables, 1) => "INPUT".into(),
        (Mode::Nft, 0) => "forw".into(),
        (Mode::Nft, 1) => "inpt".into(),
        (_, c) => format!("c{c}"),
    }
}

fn set_name(base: &str, v6: bool) -> String {
    format!("{base}{}", if v6 { "6" } else { "4" })
}

fn ct_nft(s: &[&str]) -> String {
    s.iter()
        .map(|x| x.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(",")
}

fn render_ipt_rule(rs: &Ruleset, chain: &str, rule: &Rule) -> String {
    let mut w = vec![format!("-A {chain}")];
    let bang = |neg: bool| if neg { "! " } else { "" };
    let pname = |p: u8| match p {
        6 => "tcp",
        17 => "udp",
        1 => "icmp",
        58 => "ipv6-icmp",
        _ => "esp",
    };
    for m in &rule.ms {
        w.push(match m {
            M::Proto { neg, p } => format!("{}-p {}", bang(*neg), pname(*p)),
            M::Addr { dst, neg, a } => match a {
                AddrSpec::One(x) => {
                    format!("{}{} {x}", bang(*neg), if *dst { "-d" } else { "-s" })
                }
                AddrSpec::Range(x, y) => format!(
                    "-m iprange {}--{}-range {x}-{y}",
                    bang(*neg),
                    if *dst { "dst" } else { "src" }
                ),
                AddrSpec::Set => format!(
                    "-m set {}--match-set {} {}",
                    bang(*neg),
                    set_name("addrs", rs.v6),
                    if *dst { "dst" } else { "src" }
                ),
            },
            M::Port { p, dst, neg, s } => {
                let d = if *dst { "d" } else { "s" };
                match s {
                    PortSpec::One(x) => format!("-m {} {}--{d}port {x}", pname(*p), bang(*neg)),
                    PortSpec::Range(a, b) => {
                        format!("-m {} {}--{d}port {a}:{b}", pname(*p), bang(*neg))
                    }
                    PortSpec::List(l) => format!(
                        "-m multiport {}--{d}ports {}",
                        bang(*neg),
                        l.iter()
                            .map(|(a, b)| if a == b {
                                a.to_string()
                            } else {
                                format!("{a}:{b}")
                            })
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                }
            }
            M::Icmp { neg, t } => {
                if rs.v6 {
                    format!("-m icmp6 {}--icmpv6-type {t}", bang(*neg))
                } else {
                    format!("-m icmp {}--icmp-type {t}", bang(*neg))
                }
            }
            M::Ct { neg, s } => format!("-m conntrack {}--ctstate {}", bang(*neg), s.join(",")),
            M::If { out, neg, name } => format!(
                "{}{} {}",
                bang(*neg),
                if *out { "-o" } else { "-i" },
                name.replace('*', "+")
            ),
            M::Pairs => format!("-m set --match-set {} src,dst", set_name("pairs", rs.v6)),
        });
    }
    match &rule.v {
        V::Accept => w.push("-j ACCEPT".into()),
        V::Drop => w.push("-j DROP".into()),
        V::Reject => w.push("-j REJECT".into()),
        V::Return => w.push("-j RETURN".into()),
        V::Jump(c) => w.push(format!("-j c{c}")),
        V::Goto(c) => w.push(format!("-g c{c}")),
        V::None => {}
    }
    w.join(" ")
}

/// (ipset restore input, iptables-restore input) of one family.
fn render_ipt(rs: &Ruleset) -> (String, String) {
    let fam = if rs.v6 { "inet6" } else { "inet" };
    let a = set_name("addrs", rs.v6);
    let p = set_name("pairs", rs.v6);
    let mut sets = format!("create {a} hash:net family {fam}\n");
    for (m, nomatch) in &rs.addrs {
        sets.push_str(&format!(
            "add {a} {m}{}\n",
            if *nomatch { " nomatch" } else { "" }
        ));
    }
    sets.push_str(&format!("create {p} hash:net,port family {fam}\n"));
    for (m, port) in &rs.pairs {
        sets.push_str(&format!("add {p} {m},tcp:{port}\n"));
    }
    let pol = |b: bool| if b { "ACCEPT" } else { "DROP" };
    let mut t = format!(
        "*filter\n:INPUT {} [0:0]\n:FORWARD {} [0:0]\n:OUTPUT ACCEPT [0:0]\n",
        pol(rs.policies[1]),
        pol(rs.policies[0])
    );
    for c in 2..2 + USER {
        t.push_str(&format!(":c{c} - [0:0]\n"));
    }
    for (c, rules) in rs.chains.iter().enumerate() {
        let name = chain_name(Mode::Iptables, c);
        for rule in rules {
            t.push_str(&render_ipt_rule(rs, &name, rule));
            t.push('\n');
        }
    }
    t.push_str("COMMIT\n");
    (sets, t)
}

fn render_nft_rule(rs: &Ruleset, rule: &Rule) -> String {
    let ip = if rs.v6 { "ip6" } else { "ip" };
    let ne = |neg: bool| if neg { "!= " } else { "" };
    let pname = |p: u8| match p {
        6 => "tcp",
        17 => "udp",
        1 => "icmp",
        58 => "icmpv6",
        _ => "esp",
    };
    let mut w = Vec::new();
    for m in &rule.ms {
        w.push(match m {
            M::Proto { neg, p } => format!("meta l4proto {}{}", ne(*neg), pname(*p)),
            M::Addr { dst, neg, a } => {
                let f = if *dst { "daddr" } else { "saddr" };
                match a {
                    AddrSpec::One(x) => format!("{ip} {f} {}{x}", ne(*neg)),
                    AddrSpec::Range(x, y) => format!("{ip} {f} {}{x}-{y}", ne(*neg)),
                    AddrSpec::Set => format!("{ip} {f} {}@addrs", ne(*neg)),
                }
            }
            M::Port { p, dst, neg, s } => {
                let f = if *dst { "dport" } else { "sport" };
                let v = match s {
                    PortSpec::One(x) => x.to_string(),
                    PortSpec::Range(a, b) => format!("{a}-{b}"),
                    PortSpec::List(l) => format!(
                        "{{ {} }}",
                        l.iter()
                            .map(|(a, b)| if a == b {
                                a.to_string()
                            } else {
                                format!("{a}-{b}")
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                format!("{} {f} {}{v}", pname(*p), ne(*neg))
            }
            M::Icmp { neg, t } => format!(
                "{} type {}{t}",
                if rs.v6 { "icmpv6" } else { "icmp" },
                ne(*neg)
            ),
            M::Ct { neg, s } => format!("ct state {}{}", ne(*neg), ct_nft(s)),
            M::If { out, neg, name } => format!(
                "{} {}\"{name}\"",
                if *out { "oifname" } else { "iifname" },
                ne(*neg)
            ),
            M::Pairs => format!("{ip} saddr . tcp dport @pairs"),
        });
    }
    w.push(match &rule.v {
        V::Accept => "accept".into(),
        V::Drop => "drop".into(),
        V::Reject => "reject".into(),
        V::Return => "return".into(),
        V::Jump(c) => format!("jump c{c}"),
        V::Goto(c) => format!("goto c{c}"),
        V::None => "counter".into(),
    });
    w.join(" ")
}

fn render_nft(rs: &Ruleset) -> String {
    let fam = if rs.v6 { "ip6" } else { "ip" };
    let at = if rs.v6 { "ipv6_addr" } else { "ipv4_addr" };
    let mut s = format!("table {fam} t {{\n");
    let members: Vec<String> = rs.addrs.iter().map(|(m, _)| m.clone()).collect();
    s.push_str(&format!(
        "\tset addrs {{ type {at}; flags interval; elements = {{ {} }} }}\n",
        members.join(", ")
    ));
    let pairs: Vec<String> = rs.pairs.iter().map(|(m, p)| format!("{m} . {p}")).collect();
    s.push_str(&format!(
        "\tset pairs {{ type {at} . inet_service; flags interval; elements = {{ {} }} }}\n",
        pairs.join(", ")
    ));
    let pol = |b: bool| if b { "accept" } else { "drop" };
    for (c, rules) in rs.chains.iter().enumerate() {
        s.push_str(&format!("\tchain {} {{\n", chain_name(Mode::Nft, c)));
        if c < 2 {
            s.push_str(&format!(
                "\t\ttype filter hook {} priority 0; policy {};\n",
                if c == 0 { "forward" } else { "input" },
                pol(rs.policies[c])
            ));
        }
        for rule in rules {
            s.push_str(&format!("\t\t{}\n", render_nft_rule(rs, rule)));
        }
        s.push_str("\t}\n");
    }
    s.push_str("}\n");
    s
}

// ---- the lab ----

const OBSERVER: &str = "table inet observe {
	set seen4 { typeof ip id; flags dynamic; size 65535; }
	set seen6 { typeof ip6 flowlabel; flags dynamic; size 65535; }
	chain obs_fwd {
		type filter hook forward priority 1000; policy accept;
		ct state invalid counter
		meta nfproto ipv4 add @seen4 { ip id }
		meta nfproto ipv6 add @seen6 { ip6 flowlabel }
	}
	chain obs_inp {
		type filter hook input priority 1000; policy accept;
		meta nfproto ipv4 add @seen4 { ip id }
		meta nfproto ipv6 add @seen6 { ip6 flowlabel }
	}
	chain obs_out { type filter hook output priority -1000; policy drop; }
}
";

fn sh_in(args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    use std::io::Write;
    let mut c = Command::new(args[0]);
    c.args(&args[1..])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().map_err(|e| format!("{}: {e}", args[0]))?;
    if let (Some(t), Some(mut i)) = (stdin, child.stdin.take()) {
        i.write_all(t.as_bytes()).map_err(|e| e.to_string())?;
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "`{}`: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn sh(args: &[&str]) -> Result<String, String> {
    sh_in(args, None)
}

struct Lab {
    fw: String,
    gen: String,
    sink: String,
    _res: Resources,
}

impl Lab {
    fn exec(&self, ns: &str, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        let mut v = vec!["ip", "netns", "exec", ns];
        v.extend_from_slice(args);
        sh_in(&v, stdin)
    }
    fn nft(&self, text: &str) -> Result<String, String> {
        self.exec(&self.fw, &["nft", "-f", "-"], Some(text))
    }
}

fn mac(n: u8) -> String {
    format!("02:00:00:00:00:{n:02x}")
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
    for i in 0..2u8 {
        // (fw side, far side, far namespace, v4 net, v6 net, MACs)
        for (near, far, ns, v4, v6, m) in [
            (
                format!("a{i}"),
                format!("g{i}"),
                &gen,
                format!("192.168.{i}"),
                format!("fd00:1{i}"),
                (1 + 4 * i, 2 + 4 * i),
            ),
            (
                format!("b{i}"),
                format!("s{i}"),
                &sink,
                format!("192.168.{}", 10 + i),
                format!("fd00:2{i}"),
                (3 + 4 * i, 4 + 4 * i),
            ),
        ] {
            sh(&[
                "ip", "link", "add", &near, "netns", &fw, "type", "veth", "peer", "name", &far,
                "netns", ns,
            ])?;
            ip(&fw, &["link", "set", &near, "address", &mac(m.0), "up"])?;
            ip(ns, &["link", "set", &far, "address", &mac(m.1), "up"])?;
            ip(&fw, &["addr", "add", &format!("{v4}.1/30"), "dev", &near])?;
            ip(ns, &["addr", "add", &format!("{v4}.2/30"), "dev", &far])?;
            ip(
                &fw,
                &["addr", "add", &format!("{v6}::1/64"), "dev", &near, "nodad"],
            )?;
            ip(
                ns,
                &["addr", "add", &format!("{v6}::2/64"), "dev", &far, "nodad"],
            )?;
            ip(
                &fw,
                &[
                    "neigh",
                    "replace",
                    &format!("{v6}::2"),
                    "lladdr",
                    &mac(m.1),
                    "dev",
                    &near,
                    "nud",
                    "permanent",
                ],
            )?;
            ip(
                ns,
                &[
                    "neigh",
                    "replace",
                    &format!("{v6}::1"),
                    "lladdr",
                    &mac(m.0),
                    "dev",
                    &far,
                    "nud",
                    "permanent",
                ],
            )?;
            let metric = format!("{}", 10 + i);
            ip(
                ns,
                &[
                    "route",
                    "add",
                    "default",
                    "via",
                    &format!("{v4}.1"),
                    "dev",
                    &far,
                    "metric",
                    &metric,
                ],
            )?;
            ip(
                ns,
                &[
                    "-6",
                    "route",
                    "add",
                    "default",
                    "via",
                    &format!("{v6}::1"),
                    "dev",
                    &far,
                    "metric",
                    &metric,
                ],
            )?;
        }
    }
    ip(
        &fw,
        &["addr", "add", &format!("{}/32", V4.local), "dev", "lo"],
    )?;
    ip(
        &fw,
        &[
            "addr",
            "add",
            &format!("{}/128", V6.local),
            "dev",
            "lo",
            "nodad",
        ],
    )?;
    for (net, via, dev) in [
        ("10.1.0.0/16", "192.168.10.2", "b0"),
        ("10.2.0.0/16", "192.168.11.2", "b1"),
        ("10.3.0.0/16", "192.168.0.2", "a0"),
        ("172.16.0.0/12", "192.168.0.2", "a0"),
        ("10.4.0.0/16", "192.168.1.2", "a1"),
        ("192.168.50.0/24", "192.168.1.2", "a1"),
        ("2001:db8:1::/48", "fd00:20::2", "b0"),
        ("2001:db8:2::/48", "fd00:21::2", "b1"),
        ("2001:db8:3::/48", "fd00:10::2", "a0"),
        ("2001:db8:4::/47", "fd00:11::2", "a1"),
    ] {
        ip(&fw, &["route", "add", net, "via", via, "dev", dev])?;
    }
    for k in [
        "net.ipv4.ip_forward=1",
        "net.ipv6.conf.all.forwarding=1",
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.default.rp_filter=0",
        "net.ipv4.conf.a0.rp_filter=0",
        "net.ipv4.conf.a1.rp_filter=0",
        "net.ipv4.conf.b0.rp_filter=0",
        "net.ipv4.conf.b1.rp_filter=0",
        "net.ipv4.conf.all.accept_local=1",
    ] {
        sh(&["ip", "netns", "exec", &fw, "sysctl", "-qw", k])?;
    }
    let lab = Lab {
        fw,
        gen,
        sink,
        _res: res,
    };
    lab.nft(OBSERVER)?;
    Ok(lab)
}

/// The bytes of `p` with identifier `id` (IPv4 identification, IPv6 flow label).
fn bytes(p: &Packet, id: u32) -> Vec<u8> {
    let mut t: Token = [0; 16];
    t[10..12].copy_from_slice(&(id as u16).to_be_bytes());
    let seg = match p.proto {
        6 => Segment::TcpSyn {
            sport: p.sport,
            dport: p.dport,
        },
        17 => Segment::Udp {
            sport: p.sport,
            dport: p.dport,
        },
        // An echo and its reply share the identifier: the request's "source port".
        1 | 58 => Segment::Echo {
            id: if p.reply { p.dport } else { p.sport },
        },
        n => Segment::Raw { protocol: n },
    };
    let mut b = forged_packet(p.src, p.dst, seg, &t);
    let hdr = if p.v6() { 40 } else { 20 };
    if matches!(p.proto, 1 | 58) && b[hdr] != p.icmp_type {
        // An echo reply: the type byte changes, the checksum follows (RFC 1624 eqn. 3).
        let old = u16::from_be_bytes([b[hdr], b[hdr + 1]]);
        b[hdr] = p.icmp_type;
        let new = u16::from_be_bytes([b[hdr], b[hdr + 1]]);
        let hc = u16::from_be_bytes([b[hdr + 2], b[hdr + 3]]);
        let mut sum = u32::from(!hc) + u32::from(!old) + u32::from(new);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        b[hdr + 2..hdr + 4].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    }
    if p.v6() {
        b[1] = (b[1] & 0xf0) | ((id >> 16) & 0x0f) as u8;
        b[2] = (id >> 8) as u8;
        b[3] = id as u8;
    }
    b
}

/// Sends `(packet, id)` from `gen` (new) or `sink` (replies), each out of its interface.
fn send_from(
    ns: &str,
    list: &[(Packet, u32)],
    far: impl Fn(&Packet) -> String,
) -> Result<(), String> {
    let h = Handle::open(ns).map_err(|e| e.to_string())?;
    h.enter().map_err(|e| e.to_string())?;
    for (p, id) in list {
        let dom = if p.v6() {
            socket2::Domain::IPV6
        } else {
            socket2::Domain::IPV4
        };
        // IPPROTO_RAW: the header is ours (raw(7), ipv6(7)).
        let so = socket2::Socket::new(dom, socket2::Type::RAW, Some(socket2::Protocol::from(255)))
            .map_err(|e| e.to_string())?;
        so.bind_device(Some(far(p).as_bytes()))
            .map_err(|e| e.to_string())?;
        let to = socket2::SockAddr::from(SocketAddr::new(p.dst, 0));
        so.send_to(&bytes(p, *id), &to)
            .map_err(|e| format!("send {p:?}: {e}"))?;
    }
    Ok(())
}

/// Sends the packets (identifier: index + 1) and returns which reached the end of forward
/// or input.
fn send_batch(lab: &Lab, packets: &[Packet]) -> Result<Vec<bool>, String> {
    lab.nft("flush set inet observe seen4\nflush set inet observe seen6\n")?;
    let (news, replies): (Vec<_>, Vec<_>) = packets
        .iter()
        .cloned()
        .zip(1u32..)
        .partition(|(p, _)| !p.reply);
    std::thread::scope(|s| -> Result<(), String> {
        let g = s.spawn(|| send_from(&lab.gen, &news, |p| p.iif.replace('a', "g")));
        let k = s.spawn(|| send_from(&lab.sink, &replies, |p| p.iif.replace('b', "s")));
        g.join().map_err(|_| "sender panicked".to_string())??;
        k.join().map_err(|_| "sender panicked".to_string())??;
        Ok(())
    })?;
    std::thread::sleep(Duration::from_millis(40));
    let mut seen = vec![false; packets.len()];
    for set in ["seen4", "seen6"] {
        let listing = lab.exec(
            &lab.fw,
            &["nft", "-j", "list", "set", "inet", "observe", set],
            None,
        )?;
        let v: serde_json::Value = serde_json::from_str(&listing).map_err(|e| e.to_string())?;
        for it in v["nftables"].as_array().into_iter().flatten() {
            for e in it["set"]["elem"].as_array().into_iter().flatten() {
                if let Some(id) = e.as_u64() {
                    let i = id as usize;
                    // An IPv4 id and an IPv6 label are told apart by the packet's family.
                    if let Some(p) = packets.get(i.wrapping_sub(1)) {
                        if p.v6() == (set == "seen6") {
                            seen[i - 1] = true;
                        }
                    }
                }
            }
        }
    }
    Ok(seen)
}

/// The two families' rulesets, as loaded.
struct Loaded {
    v4: Ruleset,
    v6: Ruleset,
}

fn clear(lab: &Lab, mode: Mode) -> Result<(), String> {
    match mode {
        Mode::Nft => {
            // The iptables mode's tables too (iptables-nft keeps them in `ip filter` and
            // `ip6 filter`), and its sets.
            lab.nft(concat!(
                "table ip t {}\ndelete table ip t\ntable ip6 t {}\ndelete table ip6 t\n",
                "table ip filter {}\ndelete table ip filter\n",
                "table ip6 filter {}\ndelete table ip6 filter\n"
            ))?;
            lab.exec(&lab.fw, &["ipset", "destroy"], None).map(|_| ())
        }
        Mode::Iptables => {
            let empty = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";
            lab.exec(&lab.fw, &["iptables-restore", "-w"], Some(empty))?;
            lab.exec(&lab.fw, &["ip6tables-restore", "-w"], Some(empty))?;
            lab.exec(&lab.fw, &["ipset", "destroy"], None)?;
            Ok(())
        }
    }
}

/// The text of each part, as loaded (for reproducers and the static reading).
struct Texts {
    sets: String,
    v4: String,
    v6: String,
    nft: String,
}

fn texts(l: &Loaded) -> Texts {
    let (s4, t4) = render_ipt(&l.v4);
    let (s6, t6) = render_ipt(&l.v6);
    Texts {
        sets: format!("{s4}{s6}"),
        v4: t4,
        v6: t6,
        nft: format!("{}{}", render_nft(&l.v4), render_nft(&l.v6)),
    }
}

fn load(lab: &Lab, mode: Mode, t: &Texts) -> Result<(), String> {
    clear(lab, mode)?;
    match mode {
        Mode::Nft => lab.nft(&t.nft).map(|_| ()),
        Mode::Iptables => {
            lab.exec(&lab.fw, &["ipset", "restore"], Some(&t.sets))?;
            lab.exec(&lab.fw, &["iptables-restore", "-w"], Some(&t.v4))?;
            lab.exec(&lab.fw, &["ip6tables-restore", "-w"], Some(&t.v6))?;
            Ok(())
        }
    }
}

fn ifaces() -> Vec<String> {
    ["a0", "a1", "b0", "b1"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// The programs the static side evaluates: nft's listing; for iptables, the generated text
/// (as `--ruleset` reads it) and the namespace's save output (as `--live` does).
fn programs(lab: &Lab, mode: Mode, t: &Texts) -> Result<Vec<(&'static str, Program)>, String> {
    match mode {
        Mode::Nft => {
            let doc: serde_json::Value = serde_json::from_str(&lab.exec(
                &lab.fw,
                &["nft", "-j", "list", "ruleset"],
                None,
            )?)
            .map_err(|e| e.to_string())?;
            let opts = portolan_verify::lower::Options {
                interfaces: ifaces(),
                ..Default::default()
            };
            Ok(vec![(
                "nft listing",
                portolan_verify::lower::lower(&doc, &opts).map_err(|e| e.to_string())?,
            )])
        }
        Mode::Iptables => {
            let opts = portolan_verify::iptables::Options {
                interfaces: ifaces(),
                ..Default::default()
            };
            let text = Iptables {
                v4: Save::parse(&t.v4).map_err(|e| e.to_string())?,
                v6: Save::parse(&t.v6).map_err(|e| e.to_string())?,
                sets: parse_ipsets(&t.sets).map_err(|e| e.to_string())?,
            };
            let live =
                portolan_nft::iptables::read_live(&portolan_nft::Where::Netns(lab.fw.clone()))
                    .map_err(|e| e.to_string())?;
            let lower = |fw: &Iptables| {
                portolan_verify::iptables::lower(fw, &opts).map_err(|e| e.to_string())
            };
            Ok(vec![
                ("generated text", lower(&text)?),
                ("live save", lower(&live)?),
            ])
        }
    }
}

/// A packet as a one-point class through its path.
fn evaluate(prog: &Program, p: &Packet) -> Vec<Piece> {
    let mut c = prog.all();
    let pt = |c: &mut portolan_verify::space::Class, d: Dim, v: u128| c.set(d, Iv::point(v));
    let n = |a: IpAddr| match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    };
    pt(&mut c, Dim::Family, u128::from(p.v6()));
    pt(&mut c, Dim::Saddr, n(p.src));
    pt(&mut c, Dim::Daddr, n(p.dst));
    pt(&mut c, Dim::Proto, u128::from(p.proto));
    if matches!(p.proto, 6 | 17) {
        pt(&mut c, Dim::Sport, u128::from(p.sport));
        pt(&mut c, Dim::Dport, u128::from(p.dport));
    }
    if matches!(p.proto, 1 | 58) {
        pt(&mut c, Dim::IcmpType, u128::from(p.icmp_type));
    }
    let ct = if p.reply {
        CtState::Established
    } else {
        CtState::New
    };
    pt(&mut c, Dim::Ct, ct.value());
    c.set(Dim::Iif, prog.iface(p.iif));
    c.set(Dim::Oif, prog.iface(p.oif()));
    let path = if p.input() {
        Path::Input
    } else {
        Path::Forward
    };
    prog.evaluate(path, &c)
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

/// Sends the originals of the reply cases with nothing under test loaded (so conntrack
/// confirms them), then their replies through a table that accepts only `ct state
/// established`: the replies that cross it are the ones the kernel itself holds for
/// established, whatever the ruleset under test will say. Returns them (to be sent again).
fn establish(lab: &Lab, mode: Mode, pairs: &[(Packet, Packet)]) -> Result<Vec<Packet>, String> {
    clear(lab, mode)?;
    let origs: Vec<Packet> = pairs.iter().map(|p| p.0.clone()).collect();
    let got = send_batch(lab, &origs)?;
    let backs: Vec<Packet> = pairs
        .iter()
        .zip(got)
        .filter(|(_, ok)| *ok)
        .map(|(p, _)| p.1.clone())
        .collect();
    lab.nft("table inet probe {\n\tchain f {\n\t\ttype filter hook forward priority 0; policy drop;\n\t\tct state established accept\n\t}\n}\n")?;
    let got = send_batch(lab, &backs);
    lab.nft("delete table inet probe\n")?;
    Ok(backs
        .into_iter()
        .zip(got?)
        .filter(|(_, ok)| *ok)
        .map(|(p, _)| p)
        .collect())
}

/// Removes rules of the packet's family while the disagreement persists (each trial with a
/// fresh connection for a reply). Returns the shrunk ruleset as loaded.
fn shrink(
    lab: &Lab,
    mode: Mode,
    l: &Loaded,
    p: &Packet,
    pair: Option<&(Packet, Packet)>,
    which: usize,
) -> String {
    let disagrees = |cand: &Loaded| -> bool {
        let t = texts(cand);
        let mut p = p.clone();
        if let Some(pair) = pair {
            match establish(lab, mode, std::slice::from_ref(pair)) {
                Ok(v) if v.len() == 1 => p = v[0].clone(),
                _ => return false,
            }
        }
        if load(lab, mode, &t).is_err() {
            return false;
        }
        let Ok(progs) = programs(lab, mode, &t) else {
            return false;
        };
        let Ok(k) = send_batch(lab, std::slice::from_ref(&p)) else {
            return false;
        };
        verdict_of(&evaluate(&progs[which].1, &p)).0 != Some(k[0])
    };
    let mut cur = Loaded {
        v4: l.v4.clone(),
        v6: l.v6.clone(),
    };
    for c in 0..2 + USER {
        let mut i = 0;
        loop {
            let rs = if p.v6() { &cur.v6 } else { &cur.v4 };
            if i >= rs.chains[c].len() {
                break;
            }
            let mut trial = Loaded {
                v4: cur.v4.clone(),
                v6: cur.v6.clone(),
            };
            if p.v6() {
                trial.v6.chains[c].remove(i);
            } else {
                trial.v4.chains[c].remove(i);
            }
            if disagrees(&trial) {
                cur = trial;
            } else {
                i += 1;
            }
        }
    }
    let rs = if p.v6() { &cur.v6 } else { &cur.v4 };
    match mode {
        Mode::Nft => render_nft(rs),
        Mode::Iptables => {
            let (s, t) = render_ipt(rs);
            format!(
                "# ipset restore\n{s}# ip{}tables-restore\n{t}",
                if p.v6() { "6" } else { "" }
            )
        }
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct Tally {
    cases: u64,
    v4_new: u64,
    v6_new: u64,
    replies: u64,
    accepted: u64,
    failures: u64,
    /// Reply cases whose original did not arrive or whose reply the kernel did not hold
    /// for established before the ruleset was loaded: not counted.
    lost_originals: u64,
}

fn run_mode(
    lab: &Lab,
    mode: Mode,
    seed: u64,
    rulesets: u64,
    per: usize,
    replies: usize,
    next_reply: &mut u16,
) -> Tally {
    let name = if mode == Mode::Nft {
        "nftables"
    } else {
        "iptables"
    };
    let mut t = Tally::default();
    for k in 0..rulesets {
        let mut r = Rng(seed.wrapping_add(k.wrapping_mul(0x1000_0001)) ^ (mode as u64 + 1));
        let loaded = Loaded {
            v4: gen_ruleset(&mut r, false, mode),
            v6: gen_ruleset(&mut r, true, mode),
        };
        let tx = texts(&loaded);
        let pairs: Vec<(Packet, Packet)> = (0..replies)
            .map(|i| {
                let n = *next_reply;
                *next_reply = (*next_reply + 1) % REPLY_SPAN;
                reply_pair(&mut r, i % 2 == 1, n)
            })
            .collect();
        let news: Vec<Packet> = (0..per).map(|i| new_packet(&mut r, i % 2 == 1)).collect();
        let backs = establish(lab, mode, &pairs).expect("originals");
        t.lost_originals += (pairs.len() - backs.len()) as u64;
        load(lab, mode, &tx).unwrap_or_else(|e| {
            panic!(
                "seed {seed} {name} ruleset {k}: the tools refused the generated ruleset: {e}\n{}",
                if mode == Mode::Nft {
                    tx.nft.clone()
                } else {
                    format!("{}{}{}", tx.sets, tx.v4, tx.v6)
                }
            )
        });
        let packets: Vec<Packet> = news.iter().chain(&backs).cloned().collect();
        let progs = programs(lab, mode, &tx).expect("static reading");
        let kernel = send_batch(lab, &packets).expect("send");
        for (i, p) in packets.iter().enumerate() {
            t.cases += 1;
            match (p.reply, p.v6()) {
                (true, _) => t.replies += 1,
                (false, false) => t.v4_new += 1,
                (false, true) => t.v6_new += 1,
            }
            t.accepted += u64::from(kernel[i]);
            for (w, (what, prog)) in progs.iter().enumerate() {
                let (v, why) = verdict_of(&evaluate(prog, p));
                if v == Some(kernel[i]) {
                    continue;
                }
                t.failures += 1;
                if t.failures <= 3 {
                    let pair = pairs
                        .iter()
                        .find(|x| x.1.src == p.src && x.1.dport == p.dport && p.reply);
                    let small = shrink(lab, mode, &loaded, p, pair, w);
                    eprintln!(
                        "DISAGREEMENT ({name}, {what}) seed {seed} ruleset {k} packet {i}: {p:?}\n  kernel: {}\n  static: {why}\n  reproducer:\n{small}\n",
                        if kernel[i] { "accepted" } else { "dropped" },
                    );
                }
                break;
            }
        }
    }
    println!(
        "verify differential ({name}): {} packet/ruleset cases over {rulesets} rulesets (seed {seed}): {} IPv4 new, {} IPv6 new, {} replies (ct established, both families); {} agree, {} disagree; kernel accepted {}; {} reply cases left out (original lost, or the reply not established in the kernel before the ruleset)",
        t.cases,
        t.v4_new,
        t.v6_new,
        t.replies,
        t.cases - t.failures,
        t.failures,
        t.accepted,
        t.lost_originals
    );
    t
}

fn main() {
    let is_root = sh(&["id", "-u"]).map(|s| s.trim() == "0").unwrap_or(false);
    if !is_root {
        eprintln!("verify kernel differential test (iptables, IPv6, replies): SKIPPED LOUDLY — needs root (network namespaces, iptables, nft)");
        std::process::exit(1);
    }
    let _ = portolan_lab::netns::install_signal_cleanup();
    let _lock = Lock::acquire(&|| eprintln!("waiting for another kernel test to finish"))
        .expect("lab lock");
    let seed = env("VERIFY_DIFF2_SEED", 20261202);
    let rulesets = env("VERIFY_DIFF2_RULESETS", 30);
    let per = env("VERIFY_DIFF2_PACKETS", 60) as usize;
    let replies = env("VERIFY_DIFF2_REPLIES", 20) as usize;
    let lab = setup().expect("differential lab namespaces");
    let start = Instant::now();

    // Control: with nothing under test, every new packet and every reply must arrive, else
    // the comparison would mean nothing.
    let mut r = Rng(seed ^ 0x5eed);
    let mut next_reply = 0u16;
    let pairs: Vec<(Packet, Packet)> = (0..replies)
        .map(|i| {
            next_reply += 1;
            reply_pair(&mut r, i % 2 == 1, next_reply)
        })
        .collect();
    let backs = establish(&lab, Mode::Nft, &pairs).expect("control originals");
    assert_eq!(
        backs.len(),
        pairs.len(),
        "control: originals lost on an empty firewall"
    );
    let control: Vec<Packet> = (0..per)
        .map(|i| new_packet(&mut r, i % 2 == 1))
        .chain(backs)
        .collect();
    let got = send_batch(&lab, &control).expect("control batch");
    let lost: Vec<&Packet> = control
        .iter()
        .zip(&got)
        .filter(|(_, g)| !**g)
        .map(|(p, _)| p)
        .collect();
    assert!(
        lost.is_empty(),
        "control: {} of {} packets did not cross an empty firewall: {lost:?}",
        lost.len(),
        control.len()
    );

    let mut failures = 0;
    let mut cases = 0;
    let only = std::env::var("VERIFY_DIFF2_ONLY").unwrap_or_default();
    for mode in [Mode::Iptables, Mode::Nft] {
        let name = if mode == Mode::Nft {
            "nftables"
        } else {
            "iptables"
        };
        if !only.is_empty() && only != name {
            continue;
        }
        let t = run_mode(&lab, mode, seed, rulesets, per, replies, &mut next_reply);
        failures += t.failures;
        cases += t.cases;
    }
    let _ = clear(&lab, Mode::Iptables);
    println!(
        "verify differential (iptables and nftables, IPv4 and IPv6, new and replies): {cases} cases, {failures} disagreements, {:.1} s",
        start.elapsed().as_secs_f64()
    );
    if failures > 0 {
        std::process::exit(1);
    }
}
