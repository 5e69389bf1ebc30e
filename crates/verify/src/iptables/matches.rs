//! One iptables rule's matches as tests on the packet space: the basic matches (`-s`, `-d`,
//! `-i`, `-o`, `-p`) and the extension matches of the supported subset
//! (iptables-extensions(8): `tcp`, `udp`, `multiport`, `icmp`, `icmp6`, `conntrack`,
//! `state`, `iprange`, `set`, `comment`). Anything else is a [`Stmt::Unknown`] naming it.

use std::net::IpAddr;

use portolan_model::icmp;
use portolan_nft::iptables::{Extension, Match, Opt, Rule as IptRule};

use super::Lowering;
use crate::lower::{addr_num, proto_number};
use crate::program::{Stmt, Test};
use crate::space::{CtState, Cube, Dim, Interfaces, Iv, Region};

/// Interns every interface name a rule matches exactly (a `+` wildcard is resolved against
/// these later).
pub(super) fn collect_ifaces(r: &IptRule, into: &mut Interfaces) {
    for m in &r.matches {
        if let Match::InInterface { name, .. } | Match::OutInterface { name, .. } = m {
            if !name.ends_with('+') {
                into.intern(name);
            }
        }
    }
}

pub(super) fn fam_cube(fam: &str) -> Cube {
    Cube::new().with(Dim::Family.index(), Iv::point(u128::from(fam == "ip6")))
}

fn test(deps: Cube, cubes: Vec<Cube>, negate: bool) -> Stmt {
    Stmt::Test(Test {
        deps,
        region: Region::plain(cubes),
        negate,
        unknown: Vec::new(),
    })
}

/// Protocols whose ports `-m tcp`, `-m udp` and `-m multiport` read.
fn port_proto(p: u8) -> bool {
    matches!(p, 6 | 17 | 33 | 132 | 136)
}

/// `-s`/`-d`/`--src-range` address with an optional `/len` or contiguous `/mask`, as an
/// interval; `None` when it is not an address of the table's family.
pub(super) fn addr_iv(fam: &str, s: &str) -> Option<Iv> {
    let (a, len) = match s.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (s, None),
    };
    let addr: IpAddr = a.parse().ok()?;
    if addr.is_ipv4() != (fam == "ip") {
        return None;
    }
    let bits = if addr.is_ipv4() { 32 } else { 128 };
    let len: u8 = match len {
        None => bits,
        Some(m) => match m.parse::<u8>() {
            Ok(l) => l,
            Err(_) => {
                // A dotted mask: only a contiguous one is a prefix.
                let mask: IpAddr = m.parse().ok()?;
                let v = addr_num(&mask);
                let ones = if addr.is_ipv4() {
                    (v as u32).count_ones()
                } else {
                    v.count_ones()
                };
                let full = if addr.is_ipv4() {
                    u128::from(u32::MAX)
                } else {
                    u128::MAX
                };
                let want = if ones == 0 { 0 } else { full & !(full >> ones) };
                if v != want {
                    return None;
                }
                ones as u8
            }
        },
    };
    let net = ipnet::IpNet::new(addr, len).ok()?;
    Some(crate::lower::net_iv(&net))
}

/// `22`, `1024:65535`, `:1023`, `1024:` (iptables-extensions(8) "tcp").
fn port_range(s: &str) -> Option<Iv> {
    let (a, b) = match s.split_once(':') {
        Some((a, b)) => (
            if a.is_empty() {
                0
            } else {
                a.parse::<u16>().ok()?
            },
            if b.is_empty() {
                65535
            } else {
                b.parse::<u16>().ok()?
            },
        ),
        None => {
            let p = s.parse::<u16>().ok()?;
            (p, p)
        }
    };
    (a <= b).then(|| Iv::new(u128::from(a), u128::from(b)))
}

/// `-p` value: a name (`/etc/protocols`), a number, or `all`/`0` (`None`: any).
fn protocol(name: &str) -> Result<Option<u8>, String> {
    let n = name.to_ascii_lowercase();
    if n == "all" || n == "0" {
        return Ok(None);
    }
    if let Ok(v) = n.parse::<u8>() {
        return Ok(Some(v));
    }
    match n.as_str() {
        "icmpv6" | "ipv6-icmp" => Ok(Some(58)),
        _ => proto_number(&n)
            .map(Some)
            .ok_or_else(|| format!("-p {name}: an unknown protocol name")),
    }
}

impl Lowering<'_> {
    /// The rule's matches, in order, each a test or an unknown.
    pub(super) fn matches(&mut self, fam: &str, r: &IptRule) -> Vec<Stmt> {
        let fc = fam_cube(fam);
        // The protocol `-p` fixes (what `-m tcp` and the others require).
        let proto = r.matches.iter().find_map(|m| match m {
            Match::Protocol {
                negated: false,
                name,
            } => protocol(name).ok().flatten(),
            _ => None,
        });
        let mut out = Vec::new();
        for m in &r.matches {
            match m {
                Match::Source { negated, net } | Match::Destination { negated, net } => {
                    let dim = if matches!(m, Match::Source { .. }) {
                        Dim::Saddr
                    } else {
                        Dim::Daddr
                    };
                    out.push(match addr_iv(fam, net) {
                        Some(iv) => test(
                            fc.clone(),
                            vec![Cube::new().with(dim.index(), iv)],
                            *negated,
                        ),
                        None => Stmt::Unknown(format!(
                            "address {net}: not a prefix of the table's family"
                        )),
                    });
                }
                Match::InInterface { negated, name } | Match::OutInterface { negated, name } => {
                    let dim = if matches!(m, Match::InInterface { .. }) {
                        Dim::Iif
                    } else {
                        Dim::Oif
                    };
                    out.push(self.iface(&fc, dim, name, *negated));
                }
                Match::Protocol { negated, name } => out.push(match protocol(name) {
                    Ok(Some(p)) => test(
                        fc.clone(),
                        vec![Cube::new().with(Dim::Proto.index(), Iv::point(u128::from(p)))],
                        *negated,
                    ),
                    // `-p all`: every packet; `! -p all`: none.
                    Ok(None) => test(fc.clone(), vec![Cube::new()], *negated),
                    Err(why) => Stmt::Unknown(why),
                }),
                Match::Fragment { .. } => out.push(Stmt::Unknown(
                    "-f (fragments) is outside the supported subset".into(),
                )),
                Match::Extension(e) => self.extension(fam, &fc, proto, e, &mut out),
            }
        }
        out
    }

    /// `-i`/`-o NAME`; `NAME+` matches every name that starts with NAME (`+` alone: any).
    fn iface(&self, fc: &Cube, dim: Dim, name: &str, negated: bool) -> Stmt {
        let Some(prefix) = name.strip_suffix('+') else {
            let v = self.ifaces.lookup(name).unwrap_or(self.ifaces.other());
            return test(
                fc.clone(),
                vec![Cube::new().with(dim.index(), Iv::point(v))],
                negated,
            );
        };
        if prefix.is_empty() {
            return test(fc.clone(), vec![Cube::new()], negated);
        }
        let cubes = (1..self.ifaces.len() as u128)
            .filter(|&i| self.ifaces.name(i).is_some_and(|n| n.starts_with(prefix)))
            .map(|i| Cube::new().with(dim.index(), Iv::point(i)))
            .collect();
        Stmt::Test(Test {
            deps: fc.clone(),
            region: Region::plain(cubes),
            negate: negated,
            // Names nobody mentions may or may not start with the prefix.
            unknown: vec![Cube::new().with(dim.index(), Iv::point(self.ifaces.other()))],
        })
    }

    fn extension(
        &mut self,
        fam: &str,
        fc: &Cube,
        proto: Option<u8>,
        e: &Extension,
        out: &mut Vec<Stmt>,
    ) {
        let unknown_opt = |o: &Opt| {
            Stmt::Unknown(format!(
                "-m {} --{} is outside the supported subset",
                e.name, o.name
            ))
        };
        match e.name.as_str() {
            "comment" => {}
            "tcp" | "udp" => {
                let want = if e.name == "tcp" { 6 } else { 17 };
                if proto != Some(want) {
                    out.push(Stmt::Unknown(format!(
                        "-m {} without -p {}",
                        e.name, e.name
                    )));
                    return;
                }
                let deps = fc
                    .clone()
                    .with(Dim::Proto.index(), Iv::point(u128::from(want)));
                for o in &e.options {
                    let dim = match o.name.as_str() {
                        "dport" | "destination-port" => Dim::Dport,
                        "sport" | "source-port" => Dim::Sport,
                        _ => {
                            out.push(unknown_opt(o));
                            continue;
                        }
                    };
                    match o.args.first().and_then(|a| port_range(a)) {
                        Some(iv) => out.push(test(
                            deps.clone(),
                            vec![Cube::new().with(dim.index(), iv)],
                            o.negated,
                        )),
                        None => out.push(Stmt::Unknown(format!(
                            "-m {} --{} {}: not a port or port range",
                            e.name,
                            o.name,
                            o.args.join(" ")
                        ))),
                    }
                }
            }
            "multiport" => {
                let Some(p) = proto.filter(|p| port_proto(*p)) else {
                    out.push(Stmt::Unknown(
                        "-m multiport without -p of a protocol with ports".into(),
                    ));
                    return;
                };
                let deps = fc
                    .clone()
                    .with(Dim::Proto.index(), Iv::point(u128::from(p)));
                for o in &e.options {
                    let dims: &[Dim] = match o.name.as_str() {
                        "dports" | "destination-ports" => &[Dim::Dport],
                        "sports" | "source-ports" => &[Dim::Sport],
                        "ports" => &[Dim::Sport, Dim::Dport],
                        _ => {
                            out.push(unknown_opt(o));
                            continue;
                        }
                    };
                    let list = o.args.first().map(String::as_str).unwrap_or("");
                    let ivs: Option<Vec<Iv>> = list.split(',').map(port_range).collect();
                    match ivs {
                        Some(ivs) => out.push(test(
                            deps.clone(),
                            dims.iter()
                                .flat_map(|d| {
                                    ivs.iter().map(move |iv| Cube::new().with(d.index(), *iv))
                                })
                                .collect(),
                            o.negated,
                        )),
                        None => out.push(Stmt::Unknown(format!(
                            "-m multiport --{} {list}: not a list of ports",
                            o.name
                        ))),
                    }
                }
            }
            "icmp" | "icmp6" => {
                let v6 = e.name == "icmp6";
                let p: u8 = if v6 { 58 } else { 1 };
                if proto != Some(p) || (fam == "ip6") != v6 {
                    out.push(Stmt::Unknown(format!(
                        "-m {} without -p {}",
                        e.name,
                        if v6 { "ipv6-icmp" } else { "icmp" }
                    )));
                    return;
                }
                let deps = fc
                    .clone()
                    .with(Dim::Proto.index(), Iv::point(u128::from(p)));
                for o in &e.options {
                    if o.name != "icmp-type" && o.name != "icmpv6-type" {
                        out.push(unknown_opt(o));
                        continue;
                    }
                    let v = o.args.first().map(String::as_str).unwrap_or("");
                    if v == "any" {
                        out.push(test(deps.clone(), vec![Cube::new()], o.negated));
                        continue;
                    }
                    let t = v.parse::<u8>().ok().or_else(|| icmp::type_number(v6, v));
                    match t {
                        Some(t) => out.push(test(
                            deps.clone(),
                            vec![Cube::new().with(Dim::IcmpType.index(), Iv::point(u128::from(t)))],
                            o.negated,
                        )),
                        // A code (`3/4`) or a name of a type and code.
                        None => out.push(Stmt::Unknown(format!(
                            "-m {} --{} {v}: ICMP codes are outside the supported subset",
                            e.name, o.name
                        ))),
                    }
                }
            }
            "conntrack" | "state" => {
                for o in &e.options {
                    if o.name != "ctstate" && o.name != "state" {
                        out.push(unknown_opt(o));
                        continue;
                    }
                    let list = o.args.first().map(String::as_str).unwrap_or("");
                    let states: Option<Vec<CtState>> = list
                        .split(',')
                        .map(|s| CtState::from_name(&s.to_ascii_lowercase()))
                        .collect();
                    match states {
                        Some(st) => out.push(test(
                            fc.clone(),
                            st.iter()
                                .map(|s| Cube::new().with(Dim::Ct.index(), Iv::point(s.value())))
                                .collect(),
                            o.negated,
                        )),
                        None => out.push(Stmt::Unknown(format!(
                            "-m {} --{} {list}: a state outside the supported subset",
                            e.name, o.name
                        ))),
                    }
                }
            }
            "iprange" => {
                for o in &e.options {
                    let dim = match o.name.as_str() {
                        "src-range" => Dim::Saddr,
                        "dst-range" => Dim::Daddr,
                        _ => {
                            out.push(unknown_opt(o));
                            continue;
                        }
                    };
                    let v = o.args.first().map(String::as_str).unwrap_or("");
                    let iv = v.split_once('-').and_then(|(a, b)| {
                        let (a, b) = (addr_iv(fam, a)?, addr_iv(fam, b)?);
                        (a.lo <= b.lo).then(|| Iv::new(a.lo, b.lo))
                    });
                    match iv {
                        Some(iv) => out.push(test(
                            fc.clone(),
                            vec![Cube::new().with(dim.index(), iv)],
                            o.negated,
                        )),
                        None => out.push(Stmt::Unknown(format!("-m iprange --{} {v}", o.name))),
                    }
                }
            }
            "set" => {
                for o in &e.options {
                    match o.name.as_str() {
                        "match-set" => {
                            let (name, flags) = match o.args.as_slice() {
                                [n, f] => (n.as_str(), f.as_str()),
                                _ => {
                                    out.push(Stmt::Unknown(format!(
                                        "-m set --match-set {}",
                                        o.args.join(" ")
                                    )));
                                    continue;
                                }
                            };
                            out.push(match self.set_region(fam, name, flags) {
                                Ok(cubes) => test(fc.clone(), cubes, o.negated),
                                Err(why) => Stmt::Unknown(why),
                            });
                        }
                        // Counters the match updates, not what it matches.
                        "update-counters" | "update-subcounters" if o.negated => {}
                        _ => out.push(unknown_opt(o)),
                    }
                }
            }
            other => out.push(Stmt::Unknown(format!(
                "-m {other} is outside the supported subset"
            ))),
        }
    }
}
