//! Key expressions (payload, meta, ct, concatenations) and what they are compared with:
//! values, prefixes, ranges, service and protocol names, ICMP type names (portolan-model's
//! table, nft's names), anonymous and named sets, each read as intervals on the packet
//! space's axes, with the protocol dependency a key implies.

use std::net::IpAddr;

use portolan_model::icmp;
use serde_json::Value;

use super::Lowering;
use crate::space::{CtState, Cube, Dim, Iv};

/// What a key expression reads: the axes it sets and the dependency it implies.
#[derive(Clone, Debug)]
pub(super) enum Key {
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
pub(super) enum ValKind {
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
    pub(super) fn key(&mut self, e: &Value) -> std::result::Result<Key, String> {
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
    pub(super) fn values(
        &self,
        kind: ValKind,
        v: &Value,
    ) -> std::result::Result<(Vec<Iv>, bool), String> {
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
            // Flags joined by a bitwise or, compared as one value: `ct state !=
            // established,related` is `cmp neq 0x6` in the kernel (nft 1.0.6 `--debug
            // netlink`), not a test of each flag as `ct state established,related` (op
            // `in`) is. A connection is in exactly one state, so no packet's state equals
            // two or more flags joined: `==` matches nothing and `!=` everything. Found by
            // the differential test with replies (`tests/kernel_iptables.rs`).
            if parts.len() == 1 {
                return self.values(kind, &parts[0]);
            }
            for x in parts {
                self.values(kind, x)?; // each must still be a state
            }
            return Ok((Vec::new(), false));
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
            (ValKind::Icmp4, Value::String(s)) => icmp::type_number(false, s)
                .map(|t| (vec![Iv::point(u128::from(t))], false))
                .ok_or(format!("icmp type {s}")),
            (ValKind::Icmp6, Value::String(s)) => icmp::type_number(true, s)
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
    pub(super) fn element(
        &self,
        key: &Key,
        v: &Value,
    ) -> std::result::Result<(Vec<Cube>, Vec<Cube>), String> {
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

    pub(super) fn deps_of(key: &Key) -> (Cube, Vec<Cube>, String) {
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
    pub(super) fn region(
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
}

/// Packets an `ip` or `ip6` table sees.
pub(super) fn table_family(fam: &str) -> Cube {
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
