//! The rulesets of the differential test: one abstract form (matches, verdicts, chains,
//! sets) generated at random inside the supported subset, rendered as `ipset restore` +
//! `iptables-restore` input or as an `nft -f` file.

use std::net::IpAddr;

use crate::packets::{addr, pools, Rng, PORTS, PORT_RANGES};

#[derive(Clone, Copy, PartialEq)]
pub enum Mode {
    Iptables,
    Nft,
}

#[derive(Clone, Debug)]
pub enum AddrSpec {
    One(&'static str),
    Range(&'static str, &'static str),
    Set,
}

#[derive(Clone, Debug)]
pub enum PortSpec {
    One(u16),
    Range(u16, u16),
    /// Two disjoint ports or ranges.
    List(Vec<(u16, u16)>),
}

#[derive(Clone, Debug)]
pub enum M {
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
pub enum V {
    Accept,
    Drop,
    Reject,
    Jump(usize),
    Goto(usize),
    Return,
    None,
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub ms: Vec<M>,
    pub v: V,
}

/// One family's ruleset: sets, base chain policies, chains 0 forward, 1 input, 2.. user.
#[derive(Clone, Debug)]
pub struct Ruleset {
    pub v6: bool,
    /// (member, nomatch)
    pub addrs: Vec<(String, bool)>,
    pub pairs: Vec<(String, u16)>,
    pub policies: [bool; 2],
    pub chains: Vec<Vec<Rule>>,
}

pub const USER: usize = 3;

pub fn spans_overlap(a: (u128, u128), b: (u128, u128)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

pub fn span(s: &str) -> (u128, u128) {
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

pub fn gen_match(
    r: &mut Rng,
    v6: bool,
    proto: Option<u8>,
    input_chain: bool,
    mode: Mode,
) -> Option<M> {
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

pub fn gen_rule(r: &mut Rng, v6: bool, at: usize, input_chain: bool, mode: Mode) -> Rule {
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

pub fn gen_ruleset(r: &mut Rng, v6: bool, mode: Mode) -> Ruleset {
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

pub fn chain_name(mode: Mode, c: usize) -> String {
    match (mode, c) {
        (Mode::Iptables, 0) => "FORWARD".into(),
        (Mode::Iptables, 1) => "INPUT".into(),
        (Mode::Nft, 0) => "forw".into(),
        (Mode::Nft, 1) => "inpt".into(),
        (_, c) => format!("c{c}"),
    }
}

pub fn set_name(base: &str, v6: bool) -> String {
    format!("{base}{}", if v6 { "6" } else { "4" })
}

pub fn ct_nft(s: &[&str]) -> String {
    s.iter()
        .map(|x| x.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(",")
}

pub fn render_ipt_rule(rs: &Ruleset, chain: &str, rule: &Rule) -> String {
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
pub fn render_ipt(rs: &Ruleset) -> (String, String) {
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

pub fn render_nft_rule(rs: &Ruleset, rule: &Rule) -> String {
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

pub fn render_nft(rs: &Ruleset) -> String {
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
