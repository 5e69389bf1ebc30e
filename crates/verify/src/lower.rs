//! libnftables-json (`nft -j list ruleset`, libnftables-json(5)) → [`Program`].
//!
//! The supported subset: `match` on IPv4/IPv6 addresses, `meta l4proto`/`nfproto`/`protocol`,
//! `ip protocol`, `ip6 nexthdr`, TCP/UDP/SCTP/UDP-Lite/DCCP and `th` ports, ICMP/ICMPv6 type,
//! `ct state`, `iifname`/`oifname`/`iif`/`oif` (with `*` wildcards), with `==`, `!=`, `in`,
//! `<`, `<=`, `>`, `>=` against values, prefixes, ranges, anonymous and named (interval) sets
//! and concatenations of these; `vmap` (anonymous or named); the verdicts; `counter`, `log`,
//! `limit` and `quota` without a verdict after them, set updates from the packet path,
//! `meta mark set` and `comment` (no effect on the verdict); `snat`/`masquerade` (the packet
//! goes on). Anything else becomes [`Stmt::Unknown`], so the evaluator answers "depends"
//! for the packets that reach it and names the rule.
//!
//! Sets whose elements change at run time (`flags timeout` or `dynamic`, updated from the
//! packet path, or named by the caller as filled by a DNS server) become dynamic axes of the
//! packet space: their current elements are not trusted, membership is an unknown the
//! evaluator splits on.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::icmp;
use crate::program::{Base, Chain, DynamicKey, Hook, Program, Rule, RuleRef, Stmt, Test, Verdict};
use crate::space::{CtState, Cube, Dim, Interfaces, Iv, Region, FIXED};

/// How the caller wants sets read.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Sets (table, name) filled at run time by someone else (a DNS server), whatever their
    /// flags say.
    pub dynamic_sets: BTreeSet<(String, String)>,
    /// Interface names the queries will use (interned with the ruleset's).
    pub interfaces: Vec<String>,
    /// Source lines of rules, by (table, chain, index of the rule in its chain).
    pub lines: BTreeMap<(String, String, usize), usize>,
}

#[derive(Clone, Debug)]
struct SetDef {
    flags: Vec<String>,
    /// Elements (map: with their verdicts).
    elems: Vec<Value>,
    is_map: bool,
}

struct Lowering<'a> {
    opts: &'a Options,
    sets: BTreeMap<(String, String, String), SetDef>,
    chain_index: BTreeMap<(String, String, String), usize>,
    updated: BTreeSet<(String, String, String)>,
    ifaces: Interfaces,
    dynamic: Vec<DynamicKey>,
}

/// Reads a libnftables-json document (the whole `{"nftables": [...]}` object).
pub fn lower(doc: &Value, opts: &Options) -> Result<Program> {
    let items = doc
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Json("no top-level \"nftables\" array".into()))?;
    let mut chains: Vec<Chain> = Vec::new();
    let mut rules: Vec<&Value> = Vec::new();
    let mut lw = Lowering {
        opts,
        sets: BTreeMap::new(),
        chain_index: BTreeMap::new(),
        updated: BTreeSet::new(),
        ifaces: Interfaces::new(),
        dynamic: Vec::new(),
    };
    let mut ignored = Vec::new();
    for it in items {
        let Some((kind, body)) = it.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        let fam = str_of(body, "family");
        let table = str_of(body, "table");
        match kind.as_str() {
            "chain" => {
                let name = str_of(body, "name");
                if !matches!(fam.as_str(), "inet" | "ip" | "ip6") {
                    if body.get("hook").is_some() {
                        ignored.push(format!(
                            "{fam} table {table}: base chain {name} ({}) is not evaluated",
                            str_of(body, "hook")
                        ));
                    }
                    continue;
                }
                let base = match body.get("hook").and_then(Value::as_str) {
                    Some(h) => {
                        let hook = Hook::from_name(h).ok_or_else(|| {
                            Error::Ruleset(format!("chain {name}: unknown hook {h}"))
                        })?;
                        Some(Base {
                            hook,
                            prio: prio_of(body.get("prio")),
                            kind: str_of(body, "type"),
                            accept: body.get("policy").and_then(Value::as_str) != Some("drop"),
                        })
                    }
                    None => None,
                };
                lw.chain_index
                    .insert((fam.clone(), table.clone(), name.clone()), chains.len());
                chains.push(Chain {
                    family: fam,
                    table,
                    name,
                    rules: Vec::new(),
                    base,
                });
            }
            "set" | "map" => {
                let name = str_of(body, "name");
                let flags = body
                    .get("flags")
                    .map(|f| match f {
                        Value::Array(a) => a
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect(),
                        Value::String(s) => vec![s.clone()],
                        _ => Vec::new(),
                    })
                    .unwrap_or_default();
                let elems = body
                    .get("elem")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                lw.sets.insert(
                    (fam, table, name),
                    SetDef {
                        flags,
                        elems,
                        is_map: kind == "map",
                    },
                );
            }
            "rule" => rules.push(body),
            _ => {}
        }
    }
    // Interface names first (the "other" value must not move while lowering), and the sets
    // the packet path writes to.
    for n in &opts.interfaces {
        lw.ifaces.intern(n);
    }
    for r in &rules {
        collect_ifaces(r, &mut lw.ifaces);
        collect_updates(r, &mut lw.updated);
    }
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for r in rules {
        let fam = str_of(r, "family");
        let table = str_of(r, "table");
        let chain = str_of(r, "chain");
        let Some(&ci) = lw
            .chain_index
            .get(&(fam.clone(), table.clone(), chain.clone()))
        else {
            continue; // a rule of a table family we do not evaluate
        };
        let idx = counts.entry(ci).or_insert(0);
        let line = opts
            .lines
            .get(&(table.clone(), chain.clone(), *idx))
            .copied();
        *idx += 1;
        let rule = lw.rule(r, &fam, &table, &chain, line);
        chains[ci].rules.push(rule);
    }
    Ok(Program {
        chains,
        ifaces: lw.ifaces,
        dynamic: lw.dynamic,
        ignored,
    })
}

fn str_of(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

/// A chain priority: a number, or a standard name (nft(8) "Standard priority names").
fn prio_of(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => match s.as_str() {
            "raw" => -300,
            "mangle" => -150,
            "dstnat" => -100,
            "filter" => 0,
            "security" => 50,
            "srcnat" => 100,
            _ => 0,
        },
        _ => 0,
    }
}

fn collect_ifaces(v: &Value, into: &mut Interfaces) {
    match v {
        Value::Object(o) => {
            if let Some(m) = o.get("match") {
                if let Some(key) = m
                    .get("left")
                    .and_then(|l| l.get("meta"))
                    .and_then(|m| m.get("key"))
                    .and_then(Value::as_str)
                {
                    if matches!(key, "iifname" | "oifname" | "iif" | "oif") {
                        strings(m.get("right").unwrap_or(&Value::Null), into);
                    }
                }
            }
            for x in o.values() {
                collect_ifaces(x, into);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_ifaces(x, into)),
        _ => {}
    }
}

fn strings(v: &Value, into: &mut Interfaces) {
    match v {
        Value::String(s) if !s.starts_with('@') && !s.contains('*') => {
            into.intern(s);
        }
        Value::Object(o) => o.values().for_each(|x| strings(x, into)),
        Value::Array(a) => a.iter().for_each(|x| strings(x, into)),
        _ => {}
    }
}

fn collect_updates(r: &Value, into: &mut BTreeSet<(String, String, String)>) {
    let fam = str_of(r, "family");
    let table = str_of(r, "table");
    for s in r
        .get("expr")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for k in ["set", "map"] {
            if let Some(name) = s
                .get(k)
                .and_then(|b| b.get("set").or_else(|| b.get("map")))
                .and_then(Value::as_str)
            {
                into.insert((
                    fam.clone(),
                    table.clone(),
                    name.trim_start_matches('@').into(),
                ));
            }
        }
    }
}

/// What a key expression reads: the axes it sets and the dependency it implies.
#[derive(Clone, Debug)]
enum Key {
    Axis {
        deps: Cube,
        dim: Dim,
        kind: ValKind,
        text: String,
        unknown: Vec<Cube>,
    },
    Concat(Vec<Key>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ValKind {
    Addr4,
    Addr6,
    Port,
    Proto,
    Icmp4,
    Icmp6,
    Ct,
    Iface,
    Nfproto,
    Ethertype,
}

const PORT_PROTOS: [u128; 5] = [6, 17, 33, 132, 136];

fn port_proto(name: &str) -> Option<u128> {
    Some(match name {
        "tcp" => 6,
        "udp" => 17,
        "dccp" => 33,
        "sctp" => 132,
        "udplite" => 136,
        _ => return None,
    })
}

/// IANA protocol numbers of the names nft prints (`/etc/protocols`).
pub fn proto_number(name: &str) -> Option<u8> {
    Some(match name {
        "icmp" => 1,
        "igmp" => 2,
        "ipip" | "ipencap" => 4,
        "tcp" => 6,
        "egp" => 8,
        "udp" => 17,
        "dccp" => 33,
        "ipv6" => 41,
        "rsvp" => 46,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmpv6" | "ipv6-icmp" => 58,
        "ospf" => 89,
        "pim" => 103,
        "vrrp" => 112,
        "l2tp" => 115,
        "sctp" => 132,
        "udplite" => 136,
        _ => return None,
    })
}

fn fam_cube(v4: bool) -> Cube {
    Cube::new().with(Dim::Family.index(), Iv::point(if v4 { 0 } else { 1 }))
}

impl Lowering<'_> {
    fn rule(
        &mut self,
        r: &Value,
        fam: &str,
        table: &str,
        chain: &str,
        line: Option<usize>,
    ) -> Rule {
        let exprs: Vec<Value> = r
            .get("expr")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let at = RuleRef {
            family: fam.into(),
            table: table.into(),
            chain: chain.into(),
            handle: r.get("handle").and_then(Value::as_u64),
            line,
            comment: r.get("comment").and_then(Value::as_str).map(str::to_string),
            text: exprs.iter().map(render_stmt).collect::<Vec<_>>().join(" "),
        };
        let mut stmts = Vec::new();
        let has_verdict_after = |i: usize| {
            exprs[i + 1..].iter().any(|s| {
                s.as_object()
                    .and_then(|o| o.keys().next())
                    .is_some_and(|k| {
                        matches!(
                            k.as_str(),
                            "accept"
                                | "drop"
                                | "reject"
                                | "jump"
                                | "goto"
                                | "return"
                                | "continue"
                                | "vmap"
                                | "queue"
                                | "snat"
                                | "dnat"
                                | "masquerade"
                                | "redirect"
                        )
                    })
            })
        };
        for (i, s) in exprs.iter().enumerate() {
            let Some((k, body)) = s.as_object().and_then(|o| o.iter().next()) else {
                stmts.push(Stmt::Unknown(format!("statement {s}")));
                continue;
            };
            let st = match k.as_str() {
                "match" => self.test(body, fam, table),
                "vmap" => self.vmap(body, fam, table),
                "accept" => Stmt::Verdict(Verdict::Accept),
                "drop" => Stmt::Verdict(Verdict::Drop),
                "reject" => Stmt::Verdict(Verdict::Reject),
                "return" => Stmt::Verdict(Verdict::Return),
                "continue" => Stmt::Verdict(Verdict::Continue),
                "jump" | "goto" => {
                    let target = body.get("target").and_then(Value::as_str).unwrap_or("");
                    match self
                        .chain_index
                        .get(&(fam.into(), table.into(), target.into()))
                    {
                        Some(&c) if k == "jump" => Stmt::Verdict(Verdict::Jump(c)),
                        Some(&c) => Stmt::Verdict(Verdict::Goto(c)),
                        None => Stmt::Unknown(format!("{k} to unknown chain {target}")),
                    }
                }
                "counter" | "log" | "comment" | "set" | "map" => continue,
                "mangle"
                    if body
                        .get("key")
                        .and_then(|k| k.get("meta"))
                        .and_then(|m| m.get("key"))
                        .and_then(Value::as_str)
                        == Some("mark") =>
                {
                    continue
                }
                "limit" | "quota" if !has_verdict_after(i) => continue,
                "limit" | "quota" => {
                    Stmt::Unknown(format!("{k}: whether a packet passes depends on the rate"))
                }
                "snat" | "masquerade" => Stmt::Verdict(Verdict::Accept),
                other => Stmt::Unknown(format!(
                    "statement `{other}` is outside the supported subset"
                )),
            };
            stmts.push(st);
        }
        Rule { at, stmts }
    }

    fn key(&mut self, e: &Value) -> std::result::Result<Key, String> {
        if let Some(parts) = e.get("concat").and_then(Value::as_array) {
            let ks = parts
                .iter()
                .map(|p| self.key(p))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            return Ok(Key::Concat(ks));
        }
        if let Some(p) = e.get("payload") {
            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("");
            let field = p.get("field").and_then(Value::as_str).unwrap_or("");
            let text = format!("{proto} {field}");
            let axis = |deps: Cube, dim: Dim, kind: ValKind| Key::Axis {
                deps,
                dim,
                kind,
                text: text.clone(),
                unknown: Vec::new(),
            };
            return Ok(match (proto, field) {
                ("ip", "saddr") => axis(fam_cube(true), Dim::Saddr, ValKind::Addr4),
                ("ip", "daddr") => axis(fam_cube(true), Dim::Daddr, ValKind::Addr4),
                ("ip6", "saddr") => axis(fam_cube(false), Dim::Saddr, ValKind::Addr6),
                ("ip6", "daddr") => axis(fam_cube(false), Dim::Daddr, ValKind::Addr6),
                ("ip", "protocol") => axis(fam_cube(true), Dim::Proto, ValKind::Proto),
                ("icmp", "type") => axis(
                    fam_cube(true).with(Dim::Proto.index(), Iv::point(1)),
                    Dim::IcmpType,
                    ValKind::Icmp4,
                ),
                ("icmpv6", "type") => axis(
                    fam_cube(false).with(Dim::Proto.index(), Iv::point(58)),
                    Dim::IcmpType,
                    ValKind::Icmp6,
                ),
                ("th", f @ ("sport" | "dport")) => {
                    // No dependency: the kernel reads the bytes of any transport header. Only
                    // the port-carrying protocols are decided.
                    let dim = if f == "sport" { Dim::Sport } else { Dim::Dport };
                    let mut unknown = Vec::new();
                    let mut prev = 0u128;
                    for p in PORT_PROTOS {
                        if p > prev {
                            unknown
                                .push(Cube::new().with(Dim::Proto.index(), Iv::new(prev, p - 1)));
                        }
                        prev = p + 1;
                    }
                    unknown.push(Cube::new().with(Dim::Proto.index(), Iv::new(prev, 255)));
                    Key::Axis {
                        deps: Cube::new(),
                        dim,
                        kind: ValKind::Port,
                        text,
                        unknown,
                    }
                }
                (pr, f @ ("sport" | "dport")) if port_proto(pr).is_some() => {
                    let n = port_proto(pr).unwrap_or(0);
                    let dim = if f == "sport" { Dim::Sport } else { Dim::Dport };
                    axis(
                        Cube::new().with(Dim::Proto.index(), Iv::point(n)),
                        dim,
                        ValKind::Port,
                    )
                }
                _ => return Err(format!("payload `{text}`")),
            });
        }
        if let Some(m) = e.get("meta") {
            let key = m.get("key").and_then(Value::as_str).unwrap_or("");
            let text = format!("meta {key}");
            let axis = |dim: Dim, kind: ValKind| Key::Axis {
                deps: Cube::new(),
                dim,
                kind,
                text: text.clone(),
                unknown: Vec::new(),
            };
            return Ok(match key {
                "l4proto" => axis(Dim::Proto, ValKind::Proto),
                "nfproto" => axis(Dim::Family, ValKind::Nfproto),
                "protocol" => axis(Dim::Family, ValKind::Ethertype),
                "iifname" | "iif" => axis(Dim::Iif, ValKind::Iface),
                "oifname" | "oif" => axis(Dim::Oif, ValKind::Iface),
                _ => return Err(text),
            });
        }
        if let Some(c) = e.get("ct") {
            let key = c.get("key").and_then(Value::as_str).unwrap_or("");
            if key == "state" && c.get("dir").is_none() {
                return Ok(Key::Axis {
                    deps: Cube::new(),
                    dim: Dim::Ct,
                    kind: ValKind::Ct,
                    text: "ct state".into(),
                    unknown: Vec::new(),
                });
            }
            return Err(format!("ct {key}"));
        }
        Err(format!("expression {e}"))
    }

    /// The values of one element on one axis, as intervals (an interface wildcard also gives
    /// "unknown" for names the ruleset does not mention).
    fn values(&self, kind: ValKind, v: &Value) -> std::result::Result<(Vec<Iv>, bool), String> {
        if let Some(p) = v.get("prefix") {
            let addr = p.get("addr").and_then(Value::as_str).unwrap_or("");
            let len = p.get("len").and_then(Value::as_u64).unwrap_or(0);
            let a: IpAddr = addr.parse().map_err(|_| format!("address {addr}"))?;
            let net = ipnet::IpNet::new(a, len as u8).map_err(|e| e.to_string())?;
            return Ok((vec![net_iv(&net)], false));
        }
        if let Some(r) = v.get("range").and_then(Value::as_array) {
            if r.len() == 2 {
                let (a, _) = self.values(kind, &r[0])?;
                let (b, _) = self.values(kind, &r[1])?;
                if let (Some(a), Some(b)) = (a.first(), b.first()) {
                    return Ok((vec![Iv::new(a.lo, b.hi)], false));
                }
            }
            return Err(format!("range {v}"));
        }
        if let (ValKind::Ct, Some(Value::Array(parts))) = (kind, v.get("|")) {
            // Flags joined by a bitwise or (`ct state != established,related`).
            let mut out = Vec::new();
            for x in parts {
                out.extend(self.values(kind, x)?.0);
            }
            return Ok((out, false));
        }
        if let Some(e) = v.get("elem") {
            // {"elem": {"val": ..., "timeout": ...}}
            return self.values(kind, e.get("val").unwrap_or(e));
        }
        match (kind, v) {
            (ValKind::Addr4 | ValKind::Addr6, Value::String(s)) => {
                let a: IpAddr = s.parse().map_err(|_| format!("address {s}"))?;
                let n = addr_num(&a);
                Ok((vec![Iv::point(n)], false))
            }
            (ValKind::Port, Value::Number(n)) => {
                Ok((vec![Iv::point(u128::from(n.as_u64().unwrap_or(0)))], false))
            }
            (ValKind::Port, Value::String(s)) => match service_port(s) {
                Some(p) => Ok((vec![Iv::point(u128::from(p))], false)),
                None => Err(format!("service {s}")),
            },
            (ValKind::Proto, Value::Number(n)) => {
                Ok((vec![Iv::point(u128::from(n.as_u64().unwrap_or(0)))], false))
            }
            (ValKind::Proto, Value::String(s)) => match proto_number(s) {
                Some(p) => Ok((vec![Iv::point(u128::from(p))], false)),
                None => Err(format!("protocol {s}")),
            },
            (ValKind::Icmp4 | ValKind::Icmp6, Value::Number(n)) => {
                Ok((vec![Iv::point(u128::from(n.as_u64().unwrap_or(0)))], false))
            }
            (ValKind::Icmp4, Value::String(s)) => icmp::v4(s)
                .map(|t| (vec![Iv::point(u128::from(t))], false))
                .ok_or(format!("icmp type {s}")),
            (ValKind::Icmp6, Value::String(s)) => icmp::v6(s)
                .map(|t| (vec![Iv::point(u128::from(t))], false))
                .ok_or(format!("icmpv6 type {s}")),
            (ValKind::Ct, Value::String(s)) => CtState::from_name(s)
                .map(|c| (vec![Iv::point(c.value())], false))
                .ok_or(format!("ct state {s}")),
            (ValKind::Ct, Value::Array(a)) => {
                let mut out = Vec::new();
                for x in a {
                    out.extend(self.values(kind, x)?.0);
                }
                Ok((out, false))
            }
            (ValKind::Nfproto, Value::String(s)) => match s.as_str() {
                "ipv4" => Ok((vec![Iv::point(0)], false)),
                "ipv6" => Ok((vec![Iv::point(1)], false)),
                _ => Err(format!("nfproto {s}")),
            },
            (ValKind::Ethertype, Value::String(s)) => match s.as_str() {
                "ip" => Ok((vec![Iv::point(0)], false)),
                "ip6" => Ok((vec![Iv::point(1)], false)),
                _ => Err(format!("ether type {s}")),
            },
            (ValKind::Iface, Value::String(s)) => {
                if let Some(prefix) = s.strip_suffix('*').filter(|p| !p.ends_with('\\')) {
                    let mut out: Vec<Iv> = (1..self.ifaces.len() as u128)
                        .filter(|&i| self.ifaces.name(i).is_some_and(|n| n.starts_with(prefix)))
                        .map(Iv::point)
                        .collect();
                    out.sort();
                    // Names nobody mentions may or may not match the wildcard.
                    Ok((out, true))
                } else {
                    Ok((
                        vec![Iv::point(
                            self.ifaces.lookup(s).unwrap_or(self.ifaces.other()),
                        )],
                        false,
                    ))
                }
            }
            _ => Err(format!("value {v}")),
        }
    }

    /// Cubes of one element for a key.
    fn element(&self, key: &Key, v: &Value) -> std::result::Result<(Vec<Cube>, Vec<Cube>), String> {
        match key {
            Key::Axis { dim, kind, .. } => {
                let (ivs, wild) = self.values(*kind, v)?;
                let cubes = ivs
                    .into_iter()
                    .map(|iv| Cube::new().with(dim.index(), iv))
                    .collect();
                let unknown = if wild {
                    vec![Cube::new().with(dim.index(), Iv::point(self.ifaces.other()))]
                } else {
                    Vec::new()
                };
                Ok((cubes, unknown))
            }
            Key::Concat(ks) => {
                let parts = v
                    .get("concat")
                    .and_then(Value::as_array)
                    .ok_or(format!("element {v} for a concatenation"))?;
                if parts.len() != ks.len() {
                    return Err(format!(
                        "element {v}: {} parts for {} keys",
                        parts.len(),
                        ks.len()
                    ));
                }
                let mut acc = vec![Cube::new()];
                let mut unknown = Vec::new();
                for (k, p) in ks.iter().zip(parts) {
                    let (cs, un) = self.element(k, p)?;
                    if !un.is_empty() {
                        unknown.extend(un);
                    }
                    acc = acc
                        .iter()
                        .flat_map(|a| cs.iter().map(move |c| a.meet(c)))
                        .collect();
                }
                Ok((acc, unknown))
            }
        }
    }

    fn deps_of(key: &Key) -> (Cube, Vec<Cube>, String) {
        match key {
            Key::Axis {
                deps,
                unknown,
                text,
                ..
            } => (deps.clone(), unknown.clone(), text.clone()),
            Key::Concat(ks) => {
                let mut d = Cube::new();
                let mut u = Vec::new();
                let mut t = Vec::new();
                for k in ks {
                    let (kd, ku, kt) = Self::deps_of(k);
                    d = d.meet(&kd);
                    u.extend(ku);
                    t.push(kt);
                }
                (d, u, t.join(" . "))
            }
        }
    }

    /// The elements of a right-hand side: a value, a list, an anonymous set or `@name`. For a
    /// named dynamic set, also its dynamic axis.
    fn region(
        &mut self,
        key: &Key,
        right: &Value,
        fam: &str,
        table: &str,
    ) -> std::result::Result<(Vec<Cube>, Vec<Cube>), String> {
        let mut cubes = Vec::new();
        let mut unknown = Vec::new();
        if let Some(name) = right.as_str().and_then(|s| s.strip_prefix('@')) {
            let def = self
                .sets
                .get(&(fam.into(), table.into(), name.into()))
                .cloned()
                .ok_or(format!("set @{name} not declared"))?;
            if def.is_map {
                return Err(format!("map @{name} used as a set"));
            }
            for e in &def.elems {
                let (c, u) = self.element(key, e)?;
                cubes.extend(c);
                unknown.extend(u);
            }
            let dynamic = def.flags.iter().any(|f| f == "timeout" || f == "dynamic")
                || self
                    .updated
                    .contains(&(fam.into(), table.into(), name.into()))
                || self
                    .opts
                    .dynamic_sets
                    .contains(&(table.into(), name.into()));
            if dynamic {
                let (_, _, text) = Self::deps_of(key);
                let axis = self.dynamic_axis(fam, table, name, &text);
                cubes.push(Cube::new().with(axis, Iv::point(1)));
            }
            return Ok((cubes, unknown));
        }
        let elems: Vec<Value> = match right {
            Value::Object(o) if o.contains_key("set") => match &o["set"] {
                Value::Array(a) => a.clone(),
                x => vec![x.clone()],
            },
            Value::Array(a)
                if !matches!(
                    key,
                    Key::Axis {
                        kind: ValKind::Ct,
                        ..
                    }
                ) =>
            {
                a.clone()
            }
            x => vec![x.clone()],
        };
        for e in &elems {
            let (c, u) = self.element(key, e)?;
            cubes.extend(c);
            unknown.extend(u);
        }
        Ok((cubes, unknown))
    }

    fn dynamic_axis(&mut self, fam: &str, table: &str, set: &str, key: &str) -> usize {
        let d = DynamicKey {
            family: fam.into(),
            table: table.into(),
            set: set.into(),
            key: key.into(),
        };
        let i = match self.dynamic.iter().position(|x| *x == d) {
            Some(i) => i,
            None => {
                self.dynamic.push(d);
                self.dynamic.len() - 1
            }
        };
        FIXED + i
    }

    fn test(&mut self, m: &Value, fam: &str, table: &str) -> Stmt {
        let op = m.get("op").and_then(Value::as_str).unwrap_or("==");
        let left = m.get("left").unwrap_or(&Value::Null);
        let right = m.get("right").unwrap_or(&Value::Null);
        let key = match self.key(left) {
            Ok(k) => k,
            Err(what) => return Stmt::Unknown(format!("{what} is outside the supported subset")),
        };
        let (mut deps, unknown_deps, _) = Self::deps_of(&key);
        deps = deps.meet(&table_family(fam));
        let result = match op {
            "==" | "!=" | "in" => self.region(&key, right, fam, table),
            "<" | "<=" | ">" | ">=" => match &key {
                Key::Axis { dim, kind, .. } => self.values(*kind, right).and_then(|(v, _)| {
                    let x = v.first().ok_or("empty value")?.lo;
                    let max = if *dim == Dim::Saddr || *dim == Dim::Daddr {
                        if *kind == ValKind::Addr4 {
                            u128::from(u32::MAX)
                        } else {
                            u128::MAX
                        }
                    } else {
                        dim.top()
                    };
                    let iv = match op {
                        "<" if x == 0 => None,
                        "<" => Some(Iv::new(0, x - 1)),
                        "<=" => Some(Iv::new(0, x)),
                        ">" if x >= max => None,
                        ">" => Some(Iv::new(x + 1, max)),
                        _ => Some(Iv::new(x, max)),
                    };
                    Ok((
                        iv.map(|iv| Cube::new().with(dim.index(), iv))
                            .into_iter()
                            .collect(),
                        Vec::new(),
                    ))
                }),
                Key::Concat(_) => Err("an ordering on a concatenation".into()),
            },
            other => Err(format!("operator `{other}`")),
        };
        match result {
            Ok((region, mut unknown)) => {
                unknown.extend(unknown_deps);
                Stmt::Test(Test {
                    deps,
                    region: Region::plain(region),
                    negate: op == "!=",
                    unknown,
                })
            }
            Err(what) => Stmt::Unknown(format!("{what} is outside the supported subset")),
        }
    }

    fn vmap(&mut self, body: &Value, fam: &str, table: &str) -> Stmt {
        let key = match self.key(body.get("key").unwrap_or(&Value::Null)) {
            Ok(k) => k,
            Err(what) => {
                return Stmt::Unknown(format!("vmap key {what} is outside the supported subset"))
            }
        };
        let (deps, unknown, _) = Self::deps_of(&key);
        if !unknown.is_empty() {
            return Stmt::Unknown("vmap on a key read from any transport header".into());
        }
        let data = body.get("data").unwrap_or(&Value::Null);
        let elems: Vec<Value> = if let Some(name) = data.as_str().and_then(|s| s.strip_prefix('@'))
        {
            match self.sets.get(&(fam.into(), table.into(), name.into())) {
                Some(d)
                    if d.flags.iter().any(|f| f == "timeout" || f == "dynamic")
                        || self
                            .updated
                            .contains(&(fam.into(), table.into(), name.into())) =>
                {
                    return Stmt::Unknown(format!("verdict map @{name} changes at run time"));
                }
                Some(d) => d.elems.clone(),
                None => return Stmt::Unknown(format!("verdict map @{name} not declared")),
            }
        } else {
            data.get("set")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let mut arms = Vec::new();
        let mut verdicts = Vec::new();
        for e in elems {
            let pair = e
                .get("elem")
                .and_then(|x| x.get("val"))
                .map(|_| e.clone())
                .unwrap_or(e);
            let (k, v) = match pair.as_array() {
                Some(a) if a.len() == 2 => (a[0].clone(), a[1].clone()),
                _ => return Stmt::Unknown(format!("verdict map element {pair}")),
            };
            let cubes = match self.element(&key, &k) {
                Ok((c, u)) if u.is_empty() => c,
                Ok(_) => return Stmt::Unknown("verdict map key with an interface wildcard".into()),
                Err(what) => return Stmt::Unknown(format!("verdict map element: {what}")),
            };
            let verdict = match v.as_object().and_then(|o| o.iter().next()) {
                Some((k, b)) => match k.as_str() {
                    "accept" => Verdict::Accept,
                    "drop" => Verdict::Drop,
                    "reject" => Verdict::Reject,
                    "return" => Verdict::Return,
                    "continue" => Verdict::Continue,
                    "jump" | "goto" => {
                        let target = b.get("target").and_then(Value::as_str).unwrap_or("");
                        match self
                            .chain_index
                            .get(&(fam.into(), table.into(), target.into()))
                        {
                            Some(&c) if k == "jump" => Verdict::Jump(c),
                            Some(&c) => Verdict::Goto(c),
                            None => return Stmt::Unknown(format!("{k} to unknown chain {target}")),
                        }
                    }
                    _ => return Stmt::Unknown(format!("verdict {k}")),
                },
                None => return Stmt::Unknown(format!("verdict {v}")),
            };
            let tag = verdicts.len();
            verdicts.push(verdict);
            arms.extend(cubes.into_iter().map(|c| (c, tag)));
        }
        Stmt::Vmap {
            deps: deps.meet(&table_family(fam)),
            region: Region::new(arms),
            verdicts,
        }
    }
}

/// Packets an `ip` or `ip6` table sees.
fn table_family(fam: &str) -> Cube {
    match fam {
        "ip" => fam_cube(true),
        "ip6" => fam_cube(false),
        _ => Cube::new(),
    }
}

/// An address on the address axis.
pub fn addr_num(a: &IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(*v)),
        IpAddr::V6(v) => u128::from(*v),
    }
}

/// A prefix on the address axis.
pub fn net_iv(n: &ipnet::IpNet) -> Iv {
    Iv::new(addr_num(&n.network()), addr_num(&n.broadcast()))
}

/// The ports of the service names `nft` prints (it prints numbers unless `-S`/`-N`; a few
/// names for hand-written JSON).
fn service_port(s: &str) -> Option<u16> {
    if let Ok(n) = s.parse() {
        return Some(n);
    }
    Some(match s {
        "ssh" => 22,
        "domain" => 53,
        "http" => 80,
        "https" => 443,
        "ntp" => 123,
        "snmp" => 161,
        "bootps" => 67,
        "bootpc" => 68,
        _ => return None,
    })
}

/// A statement in nft's words, for reports.
pub fn render_stmt(s: &Value) -> String {
    let Some((k, b)) = s.as_object().and_then(|o| o.iter().next()) else {
        return s.to_string();
    };
    match k.as_str() {
        "match" => {
            let op = b.get("op").and_then(Value::as_str).unwrap_or("==");
            let l = render_expr(b.get("left").unwrap_or(&Value::Null));
            let r = render_expr(b.get("right").unwrap_or(&Value::Null));
            match op {
                "==" | "in" => format!("{l} {r}"),
                _ => format!("{l} {op} {r}"),
            }
        }
        "vmap" => format!(
            "{} vmap {}",
            render_expr(b.get("key").unwrap_or(&Value::Null)),
            render_expr(b.get("data").unwrap_or(&Value::Null))
        ),
        "jump" | "goto" => format!(
            "{k} {}",
            b.get("target").and_then(Value::as_str).unwrap_or("")
        ),
        "counter" => "counter".into(),
        "log" => "log".into(),
        "limit" => format!(
            "limit rate {}/{}",
            b.get("rate").map(Value::to_string).unwrap_or_default(),
            b.get("per").and_then(Value::as_str).unwrap_or("second")
        ),
        _ => k.clone(),
    }
}

fn render_expr(e: &Value) -> String {
    match e {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => a.iter().map(render_expr).collect::<Vec<_>>().join(","),
        Value::Object(o) => {
            if let Some(p) = o.get("payload") {
                return format!(
                    "{} {}",
                    p.get("protocol").and_then(Value::as_str).unwrap_or(""),
                    p.get("field").and_then(Value::as_str).unwrap_or("")
                );
            }
            if let Some(m) = o.get("meta") {
                let k = m.get("key").and_then(Value::as_str).unwrap_or("");
                return if matches!(k, "iifname" | "oifname" | "iif" | "oif") {
                    k.into()
                } else {
                    format!("meta {k}")
                };
            }
            if let Some(c) = o.get("ct") {
                return format!("ct {}", c.get("key").and_then(Value::as_str).unwrap_or(""));
            }
            if let Some(p) = o.get("prefix") {
                return format!(
                    "{}/{}",
                    p.get("addr").and_then(Value::as_str).unwrap_or(""),
                    p.get("len").map(Value::to_string).unwrap_or_default()
                );
            }
            if let Some(Value::Array(r)) = o.get("range") {
                return r.iter().map(render_expr).collect::<Vec<_>>().join("-");
            }
            if let Some(Value::Array(c)) = o.get("concat") {
                return c.iter().map(render_expr).collect::<Vec<_>>().join(" . ");
            }
            if let Some(s) = o.get("set") {
                let items: Vec<String> = match s {
                    Value::Array(a) => a
                        .iter()
                        .map(|x| match x {
                            Value::Array(kv) if kv.len() == 2 => {
                                format!("{} : {}", render_expr(&kv[0]), render_stmt(&kv[1]))
                            }
                            _ => render_expr(x),
                        })
                        .collect(),
                    x => vec![render_expr(x)],
                };
                return format!("{{ {} }}", items.join(", "));
            }
            e.to_string()
        }
        _ => e.to_string(),
    }
}
