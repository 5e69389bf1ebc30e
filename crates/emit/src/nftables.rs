//! nftables back end: one table, `inet portolan`, written for `nft -f`.
//!
//! Layout (see ARCHITECTURE.md):
//! - Device groups whose rules are identical share one *class* of chains (`<class>_out` for
//!   device-initiated flows, `<class>_in` for peer-initiated ones, `<class>_local` for services
//!   of the firewall itself). Verdict maps keyed by device address (`fwd_src4`, `fwd_dst4`,
//!   `local_src4`, and the `6` twins) jump to them, so a packet costs a constant number of
//!   lookups however many devices the site has. Single addresses live in hash maps (`fwd_src4h`
//!   …), prefixes in interval maps: a hash map of 100,000 addresses loads three times faster.
//! - Static peers are named interval sets; with ports, concatenated `addr . port` interval sets.
//!   Hostnames are named sets with `flags timeout`, filled at compile time (`--resolve`, each
//!   element living for its record's TTL) or at run time by the DNS server (`--target dnsmasq`:
//!   dnsmasq adds elements without a TTL, so they take the set's default timeout,
//!   `Options::dns_timeout`, one hour unless set);
//!   wildcard domains are DNS-filled sets only.
//! - Unmatched traffic of a device goes to `drop_<group>`: a rate-limited log whose prefix names
//!   the group, then drop. Established and related traffic is accepted; invalid is dropped.
//!
//! Reloading: the file first declares the table and the DNS-filled sets (a no-op when they
//! exist), then `flush table` removes every rule (sets keep their elements), then static sets
//! and maps are flushed and refilled, and the rules are added. All of it is one `nft -f`
//! transaction, so the DNS-filled sets survive a reload and nothing is half-applied.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use ipnet::IpNet;
use portolan_model::ir::{Initiator, Policy, PortRange, Rule};
use portolan_model::IpFamily;

use crate::classes::{signature, Signature};
use crate::names::{object, safe_hostname, safe_interface, safe_text};
use crate::{EmitError, Options};

const T: &str = "nftables";
/// The table every object lives in.
pub const TABLE: &str = "inet portolan";

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Fam {
    V4,
    V6,
}

impl Fam {
    fn n(self) -> &'static str {
        match self {
            Fam::V4 => "4",
            Fam::V6 => "6",
        }
    }
    fn ip(self) -> &'static str {
        match self {
            Fam::V4 => "ip",
            Fam::V6 => "ip6",
        }
    }
    fn addr_type(self) -> &'static str {
        match self {
            Fam::V4 => "ipv4_addr",
            Fam::V6 => "ipv6_addr",
        }
    }
    fn of(n: &IpNet) -> Fam {
        match n {
            IpNet::V4(_) => Fam::V4,
            IpNet::V6(_) => Fam::V6,
        }
    }
}

struct Class<'a> {
    name: String,
    /// The group the class is named after (its first).
    first_group: String,
    rules: Vec<&'a Rule>,
    fams: BTreeSet<Fam>,
    /// Interfaces of the zones of the class's groups, for broadcast rules.
    interfaces: BTreeSet<String>,
}

/// A set of the output.
struct SetDef {
    name: String,
    ty: String,
    flags: &'static str,
    elements: Vec<String>,
}

fn ports(p: &[PortRange]) -> String {
    let v: Vec<String> = p.iter().map(ToString::to_string).collect();
    format!("{{ {} }}", v.join(", "))
}

fn proto_name(n: u8) -> Option<&'static str> {
    Some(match n {
        6 => "tcp",
        17 => "udp",
        132 => "sctp",
        1 => "icmp",
        58 => "icmpv6",
        50 => "esp",
        51 => "ah",
        47 => "gre",
        2 => "igmp",
        _ => return None,
    })
}

fn has_ports(n: u8) -> bool {
    matches!(n, 6 | 17 | 132)
}

/// The L4 match of a rule (after the peer match): protocol, ports, ICMP type.
fn l4(r: &Rule, fam: Fam, with_dport: bool) -> Result<Option<String>, EmitError> {
    let mut s = String::new();
    // A rule of a one-family flow (`family:`) has no match in the other family.
    let other_family = matches!(
        (r.family, fam),
        (Some(IpFamily::Ipv4), Fam::V6) | (Some(IpFamily::Ipv6), Fam::V4)
    );
    match (r.protocol, fam) {
        _ if other_family => return Ok(None),
        (1, Fam::V6) | (58, Fam::V4) => return Ok(None),
        (1 | 58, _) => {
            let kw = if r.protocol == 1 { "icmp" } else { "icmpv6" };
            match &r.icmp_type {
                Some(t) => {
                    let t = safe_text(T, "icmp type", t)?;
                    if !t.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
                        return Err(EmitError::Unsafe {
                            target: T,
                            what: "icmp type",
                            value: t,
                        });
                    }
                    write!(s, "{kw} type {t}").ok();
                }
                None => write!(s, "meta l4proto {kw}").ok().unwrap_or(()),
            }
        }
        (p, _) if has_ports(p) => {
            let kw = proto_name(p).unwrap_or("tcp");
            write!(s, "meta l4proto {kw}").ok();
            if !r.src_ports.is_empty() {
                write!(s, " {kw} sport {}", ports(&r.src_ports)).ok();
            }
            if with_dport && !r.ports.is_empty() {
                write!(s, " {kw} dport {}", ports(&r.ports)).ok();
            }
        }
        (p, _) => match proto_name(p) {
            Some(n) => write!(s, "meta l4proto {n}").ok().unwrap_or(()),
            None => write!(s, "meta l4proto {p}").ok().unwrap_or(()),
        },
    }
    Ok(Some(s))
}

fn comment(r: &Rule) -> Result<String, EmitError> {
    Ok(format!(
        "comment \"{}\"",
        safe_text(T, "comment", &r.provenance())?
    ))
}

/// Emits the ruleset.
pub fn emit(policy: &Policy, opts: &Options) -> Result<String, EmitError> {
    // Group the groups into classes of identical rules.
    let mut classes: Vec<Class> = Vec::new();
    let mut class_of: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_sig: BTreeMap<Signature, usize> = BTreeMap::new();
    // Rules by group, in one pass: `rules_of` per group would be quadratic in large sites.
    let mut by_group: BTreeMap<&str, Vec<&Rule>> = BTreeMap::new();
    for r in &policy.rules {
        by_group.entry(r.group.as_str()).or_default().push(r);
    }
    for g in &policy.groups {
        let rules: Vec<&Rule> = by_group.remove(g.id.as_str()).unwrap_or_default();
        let sig = signature(&rules);
        let idx = *by_sig.entry(sig).or_insert_with(|| {
            classes.push(Class {
                name: object(&["k", &g.id]),
                first_group: g.id.clone(),
                rules,
                fams: BTreeSet::new(),
                interfaces: BTreeSet::new(),
            });
            classes.len() - 1
        });
        let c = &mut classes[idx];
        c.fams.extend(g.addresses.iter().map(Fam::of));
        if let Some(i) = policy.zone(&g.zone).and_then(|z| z.interface.as_ref()) {
            c.interfaces.insert(safe_interface(T, i)?);
        }
        class_of.insert(g.id.clone(), idx);
    }

    let mut dynamic: BTreeMap<String, SetDef> = BTreeMap::new();
    let mut statics: Vec<SetDef> = Vec::new();
    let mut chains: Vec<(String, Vec<String>)> = Vec::new();
    let mut input_bcast: Vec<String> = Vec::new();

    for c in &classes {
        let mut out = Vec::new();
        let mut inn = Vec::new();
        let mut local = Vec::new();
        for (i, r) in c.rules.iter().enumerate() {
            let cm = comment(r)?;
            let dir = if r.initiator == Initiator::Device {
                "daddr"
            } else {
                "saddr"
            };
            // Connections the firewall itself opens towards a device pass its output hook,
            // which this table leaves open: only device-initiated local flows have rules.
            if r.peers.firewall && r.initiator == Initiator::Device {
                for fam in &c.fams {
                    if let Some(m) = l4(r, *fam, true)? {
                        local.push(format!("{m} accept {cm}"));
                    }
                }
                if r.broadcast {
                    for ifc in &c.interfaces {
                        if let Some(m) = l4(r, Fam::V4, true)? {
                            let line = format!("iifname \"{ifc}\" {m} accept {cm}");
                            if !input_bcast.contains(&line) {
                                input_bcast.push(line);
                            }
                        }
                    }
                }
            }
            for fam in c.fams.iter().copied() {
                let target = if r.initiator == Initiator::Device {
                    &mut out
                } else {
                    &mut inn
                };
                // Static prefixes: a named set, concatenated with the port when there is one.
                let pre: Vec<&IpNet> = r
                    .peers
                    .prefixes
                    .iter()
                    .filter(|p| Fam::of(p) == fam)
                    .collect();
                if !pre.is_empty() {
                    if let Some(m) = l4(r, fam, false)? {
                        // The name says the set's type (`s`: address, `p`: address . port), so
                        // a reload never redeclares an existing set with another type.
                        let with_port = has_ports(r.protocol) && !r.ports.is_empty();
                        let kind = if with_port { "p" } else { "s" };
                        let name = object(&[
                            &format!("{kind}{}", fam.n()),
                            &c.first_group,
                            &i.to_string(),
                        ]);
                        if with_port {
                            let kw = proto_name(r.protocol).unwrap_or("tcp");
                            let elements = pre
                                .iter()
                                .flat_map(|p| r.ports.iter().map(move |pr| format!("{p} . {pr}")))
                                .collect();
                            statics.push(SetDef {
                                name: name.clone(),
                                ty: format!("{} . inet_service", fam.addr_type()),
                                flags: "interval",
                                elements,
                            });
                            target.push(format!(
                                "{m} {} {dir} . {kw} dport @{name} accept {cm}",
                                fam.ip()
                            ));
                        } else {
                            statics.push(SetDef {
                                name: name.clone(),
                                ty: fam.addr_type().into(),
                                flags: "interval",
                                elements: pre.iter().map(ToString::to_string).collect(),
                            });
                            target.push(format!("{} {dir} @{name} {m} accept {cm}", fam.ip()));
                        }
                    }
                }
                // Hostnames: one DNS-filled set per distinct list of names.
                if !r.peers.names.is_empty() {
                    if let Some(m) = l4(r, fam, true)? {
                        let mut names = r.peers.names.clone();
                        names.sort();
                        names.dedup();
                        for n in &names {
                            safe_hostname(T, n)?;
                        }
                        let name = name_set(fam.into(), &names);
                        let elements = resolved_elements(opts, &names, fam);
                        let e = dynamic.entry(name.clone()).or_insert(SetDef {
                            name: name.clone(),
                            ty: fam.addr_type().into(),
                            flags: "timeout",
                            elements: Vec::new(),
                        });
                        for el in elements {
                            if !e.elements.contains(&el) {
                                e.elements.push(el);
                            }
                        }
                        target.push(format!("{} {dir} @{name} {m} accept {cm}", fam.ip()));
                    }
                }
                for w in &r.peers.wildcards {
                    safe_hostname(T, w)?;
                    if let Some(m) = l4(r, fam, true)? {
                        let name = wildcard_set(fam.into(), w);
                        dynamic.entry(name.clone()).or_insert(SetDef {
                            name: name.clone(),
                            ty: fam.addr_type().into(),
                            flags: "timeout",
                            elements: Vec::new(),
                        });
                        target.push(format!("{} {dir} @{name} {m} accept {cm}", fam.ip()));
                    }
                }
            }
        }
        chains.push((format!("{}_out", c.name), out));
        chains.push((format!("{}_in", c.name), inn));
        chains.push((format!("{}_local", c.name), local));
    }

    // Dispatch maps and per-group drop chains.
    let mut maps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let rate = opts.log_rate.unwrap_or(5);
    for g in &policy.groups {
        let c = &classes[class_of[&g.id]];
        let drop = object(&["drop", &g.id]);
        let prefix = safe_text(
            T,
            "log prefix",
            &format!("portolan {}: ", truncate(&g.id, 100)),
        )?;
        chains.push((drop.clone(), vec![format!("limit rate {rate}/second burst {rate} packets log prefix \"{prefix}\" level info"), "drop".into()]));
        for a in &g.addresses {
            // Single addresses go to hash maps (`…h`), prefixes to interval maps: a hash map
            // loads about three times faster, and sites list devices mostly one by one.
            let host = a.prefix_len() == a.max_prefix_len();
            let f = format!("{}{}", Fam::of(a).n(), if host { "h" } else { "" });
            let a = if host {
                a.addr().to_string()
            } else {
                a.to_string()
            };
            maps.entry(format!("fwd_src{f}"))
                .or_default()
                .push(format!("{a} : jump {}_out", c.name));
            maps.entry(format!("fwd_dst{f}"))
                .or_default()
                .push(format!("{a} : jump {}_in", c.name));
            maps.entry(format!("local_src{f}"))
                .or_default()
                .push(format!("{a} : jump {}_local", c.name));
            maps.entry(format!("drop_src{f}"))
                .or_default()
                .push(format!("{a} : goto {drop}"));
            maps.entry(format!("drop_dst{f}"))
                .or_default()
                .push(format!("{a} : goto {drop}"));
        }
    }

    // Names are injective by construction (`names::object`); refuse a collision anyway rather
    // than let `nft -f` merge two sets or chains.
    let mut seen = BTreeSet::new();
    let names = statics
        .iter()
        .map(|s| &s.name)
        .chain(dynamic.keys())
        .chain(chains.iter().map(|(n, _)| n));
    for n in names {
        if !seen.insert(n.as_str()) {
            return Err(EmitError::Unsafe {
                target: T,
                what: "duplicate object name",
                value: n.clone(),
            });
        }
    }

    let mut o = String::new();
    let site = safe_text(T, "site name", &policy.site)?;
    writeln!(o, "#!/usr/sbin/nft -f").ok();
    writeln!(
        o,
        "# Portolan policy for site {site}: generated, do not edit."
    )
    .ok();
    writeln!(
        o,
        "# Every rule's comment names the profile/flow row it enforces."
    )
    .ok();
    for d in &policy.documented {
        writeln!(
            o,
            "# not enforced here: {}/{} for {}: {}",
            d.profile,
            d.flow,
            d.group,
            d.reason.replace(['\n', '\r'], " ")
        )
        .ok();
    }
    writeln!(o, "\n# 1. The table and the DNS-filled sets: declared, never flushed, so their elements survive a reload.").ok();
    writeln!(o, "table {TABLE} {{").ok();
    let dns_timeout = opts.dns_timeout_secs();
    for s in dynamic.values() {
        writeln!(
            o,
            "\tset {} {{\n\t\ttype {}\n\t\tflags {}\n\t\ttimeout {dns_timeout}s\n\t}}",
            s.name, s.ty, s.flags
        )
        .ok();
    }
    writeln!(o, "}}").ok();
    for s in dynamic.values().filter(|s| !s.elements.is_empty()) {
        writeln!(
            o,
            "add element {TABLE} {} {{ {} }}",
            s.name,
            s.elements.join(", ")
        )
        .ok();
    }
    writeln!(
        o,
        "\n# 2. Every rule goes; static sets and maps are emptied and refilled below."
    )
    .ok();
    writeln!(o, "flush table {TABLE}").ok();
    writeln!(o, "\ntable {TABLE} {{").ok();
    for s in &statics {
        writeln!(
            o,
            "\tset {} {{\n\t\ttype {}\n\t\tflags {}\n\t}}",
            s.name, s.ty, s.flags
        )
        .ok();
    }
    let all_maps: Vec<String> = ["fwd_src", "fwd_dst", "local_src", "drop_src", "drop_dst"]
        .iter()
        .flat_map(|m| ["4h", "4", "6h", "6"].map(|f| format!("{m}{f}")))
        .collect();
    // (type, flags line) of a dispatch map.
    let map_kind = |m: &str| {
        let ty = if m.contains('4') {
            "ipv4_addr"
        } else {
            "ipv6_addr"
        };
        let flags = if m.ends_with('h') {
            ""
        } else {
            "\t\tflags interval\n"
        };
        (ty, flags)
    };
    for m in &all_maps {
        let (ty, flags) = map_kind(m);
        writeln!(o, "\tmap {m} {{\n\t\ttype {ty} : verdict\n{flags}\t}}").ok();
    }
    for (name, _) in &chains {
        writeln!(o, "\tchain {name} {{\n\t}}").ok();
    }
    writeln!(
        o,
        "\tchain forward {{\n\t\ttype filter hook forward priority filter; policy drop;\n\t}}"
    )
    .ok();
    writeln!(
        o,
        "\tchain input {{\n\t\ttype filter hook input priority filter; policy accept;\n\t}}"
    )
    .ok();
    writeln!(o, "}}").ok();
    for s in &statics {
        writeln!(o, "flush set {TABLE} {}", s.name).ok();
    }
    for m in &all_maps {
        writeln!(o, "flush map {TABLE} {m}").ok();
    }
    writeln!(o, "\ntable {TABLE} {{").ok();
    for s in &statics {
        writeln!(
            o,
            "\tset {} {{\n\t\ttype {}\n\t\tflags {}\n\t\telements = {{ {} }}\n\t}}",
            s.name,
            s.ty,
            s.flags,
            s.elements.join(", ")
        )
        .ok();
    }
    for (m, els) in &maps {
        let (ty, flags) = map_kind(m);
        writeln!(
            o,
            "\tmap {m} {{\n\t\ttype {ty} : verdict\n{flags}\t\telements = {{ {} }}\n\t}}",
            els.join(",\n\t\t\t")
        )
        .ok();
    }
    for (name, rules) in &chains {
        writeln!(o, "\tchain {name} {{").ok();
        for r in rules {
            writeln!(o, "\t\t{r}").ok();
        }
        writeln!(o, "\t}}").ok();
    }
    writeln!(o, "\tchain forward {{").ok();
    writeln!(
        o,
        "\t\tct state established,related accept comment \"return traffic\""
    )
    .ok();
    writeln!(o, "\t\tct state invalid drop").ok();
    for v in ["fwd_src", "fwd_dst", "drop_src", "drop_dst"] {
        let dir = if v.ends_with("src") { "saddr" } else { "daddr" };
        writeln!(
            o,
            "\t\tip {dir} vmap @{v}4h\n\t\tip {dir} vmap @{v}4\n\t\tip6 {dir} vmap @{v}6h\n\t\tip6 {dir} vmap @{v}6"
        )
        .ok();
    }
    writeln!(o, "\t\tlimit rate {rate}/second burst {rate} packets log prefix \"portolan unmatched: \" level info").ok();
    writeln!(o, "\t}}").ok();
    writeln!(o, "\tchain input {{").ok();
    writeln!(o, "\t\tct state established,related accept").ok();
    writeln!(o, "\t\tct state invalid drop").ok();
    for r in &input_bcast {
        writeln!(o, "\t\t{r}").ok();
    }
    // IPv6 devices resolve the firewall's link-layer address (and answer its own
    // solicitations) with ICMPv6 neighbour discovery, which plays ARP's role and, unlike ARP,
    // passes this chain: without it no IPv6 device reaches the firewall or through it. Only
    // on-link messages (hop limit 255, RFC 4861).
    if classes.iter().any(|c| c.fams.contains(&Fam::V6)) {
        writeln!(o, "\t\ticmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit }} ip6 hoplimit 255 accept comment \"IPv6 neighbour discovery\"").ok();
    }
    for v in ["local_src", "drop_src"] {
        writeln!(
            o,
            "\t\tip saddr vmap @{v}4h\n\t\tip saddr vmap @{v}4\n\t\tip6 saddr vmap @{v}6h\n\t\tip6 saddr vmap @{v}6"
        )
        .ok();
    }
    writeln!(o, "\t}}").ok();
    writeln!(o, "}}").ok();
    Ok(o)
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The set holding the addresses of a list of hostnames.
pub fn name_set(fam: Fam4or6, names: &[String]) -> String {
    let mut parts = vec![format!("n{}", fam.n())];
    parts.extend(names.iter().cloned());
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    object(&parts)
}

/// The set holding the addresses under a wildcard domain.
pub fn wildcard_set(fam: Fam4or6, domain: &str) -> String {
    object(&[&format!("w{}", fam.n()), domain])
}

/// Address family, public for the dnsmasq back end.
pub type Fam4or6 = FamPub;

/// IPv4 or IPv6, as the set names spell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FamPub {
    V4,
    V6,
}

impl FamPub {
    pub fn n(self) -> &'static str {
        match self {
            FamPub::V4 => "4",
            FamPub::V6 => "6",
        }
    }
}

impl From<Fam> for FamPub {
    fn from(f: Fam) -> Self {
        match f {
            Fam::V4 => FamPub::V4,
            Fam::V6 => FamPub::V6,
        }
    }
}

fn resolved_elements(opts: &Options, names: &[String], fam: Fam) -> Vec<String> {
    let mut out = Vec::new();
    for n in names {
        if let Some(r) = opts.resolved.get(n) {
            let secs = r.ttl.as_secs().max(1);
            for a in &r.addresses {
                let ok = matches!(
                    (a, fam),
                    (std::net::IpAddr::V4(_), Fam::V4) | (std::net::IpAddr::V6(_), Fam::V6)
                );
                if ok {
                    out.push(format!("{a} timeout {secs}s"));
                }
            }
        }
    }
    out
}
