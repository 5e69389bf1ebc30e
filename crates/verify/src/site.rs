//! A site against a ruleset: every flow of every device group, then the excess.
//!
//! **Flows.** Each IR rule becomes packet classes: its device addresses and its peers (a
//! static prefix; a name: any address outside the site's zones that the site's DNS puts in
//! the name's set; this firewall: the input hook) with its protocol, ports, source ports and
//! ICMP type, entering on the interface of the sender's zone and leaving on the receiver's.
//! The first packet (ct state new) and the later ones (established) go the initiator's way,
//! replies (established) come back. A flow is **permitted** when every piece is accepted,
//! **blocked** when none is, **depends** when the outcome hinges on a set filled at run time
//! or on an expression outside the supported subset, and **partly** otherwise, with the
//! pieces that are not accepted. A hostname peer counts as permitted only through the
//! sets the site's DNS fills for that name (or a rule wider than the name).
//!
//! **Excess.** For each group, the widest classes the ruleset accepts for new connections
//! from its addresses (forwarded, and to this firewall) and to them (forwarded), minus what
//! its rules allow (interfaces and directions aside: the profile does not say which
//! interface), each with the rule that admits it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use portolan_model::ir::{Initiator, Policy, Rule};
use serde::Serialize;

use crate::eval::{Outcome, Piece};
use crate::icmp;
use crate::lower::{addr_num, net_iv};
use crate::program::{Path, Program, RuleRef};
use crate::space::{Class, CtState, Dim, Iv, FIXED};

/// Which sets the site's DNS fills, and for which names (from `nftset=` lines).
#[derive(Clone, Debug, Default)]
pub struct DnsFills {
    /// name or domain → (table, set, is IPv4)
    pub fills: BTreeMap<String, Vec<(String, String, bool)>>,
}

impl DnsFills {
    /// Reads dnsmasq `nftset=/a/b/4#inet#table#set` lines (dnsmasq(8) `--nftset`).
    pub fn from_dnsmasq(text: &str) -> DnsFills {
        let mut d = DnsFills::default();
        for l in text.lines() {
            let Some(rest) = l.trim().strip_prefix("nftset=/") else {
                continue;
            };
            let Some((domains, targets)) = rest.rsplit_once('/') else {
                continue;
            };
            for target in targets.split(',') {
                let parts: Vec<&str> = target.split('#').collect();
                let (v4, table, set) = match parts.as_slice() {
                    [f, _fam, t, s] => (*f != "6", *t, *s),
                    [_fam, t, s] => (true, *t, *s),
                    _ => continue,
                };
                for name in domains.split('/').filter(|n| !n.is_empty()) {
                    d.fills.entry(name.to_string()).or_default().push((
                        table.to_string(),
                        set.to_string(),
                        v4,
                    ));
                }
            }
        }
        d
    }

    /// The sets filled for `name`: its own entry, or a parent domain's (dnsmasq matches a
    /// domain and its subdomains).
    fn sets_for(&self, name: &str, v4: bool) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut n = name;
        loop {
            if let Some(v) = self.fills.get(n) {
                out.extend(
                    v.iter()
                        .filter(|x| x.2 == v4)
                        .map(|x| (x.0.clone(), x.1.clone())),
                );
            }
            match n.split_once('.') {
                Some((_, rest)) if !rest.is_empty() => n = rest,
                _ => break,
            }
        }
        out
    }

    /// Every (table, set) the DNS fills.
    pub fn sets(&self) -> Vec<(String, String)> {
        let mut v: Vec<_> = self
            .fills
            .values()
            .flatten()
            .map(|x| (x.0.clone(), x.1.clone()))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Permitted,
    Partly,
    Blocked,
    Depends,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Permitted => "permitted",
            Status::Partly => "partly",
            Status::Blocked => "blocked",
            Status::Depends => "depends",
        }
    }
}

/// A piece of a class that is not simply accepted, described.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// The packets: `10.20.0.10 → 198.51.100.10 tcp dport 22 (new)`.
    pub class: String,
    pub direction: Direction,
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleRef>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The initiator's packets.
    Original,
    /// The answers.
    Reply,
}

#[derive(Clone, Debug, Serialize)]
pub struct FlowResult {
    pub group: String,
    pub flow: String,
    pub optional: bool,
    pub status: Status,
    /// The rules that decide it (accepting rules when permitted, else the ones that do not).
    pub rules: Vec<RuleRef>,
    /// What is not accepted (empty when permitted).
    pub findings: Vec<Finding>,
    /// Names the site's DNS fills no set for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unfilled_names: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Excess {
    pub group: String,
    pub class: String,
    pub path: Path,
    pub rule: Option<RuleRef>,
    /// Accepted only when a run-time set holds the address (named in `class`).
    pub conditional: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub site: String,
    pub flows: Vec<FlowResult>,
    pub excess: Vec<Excess>,
    /// Parts of the ruleset not evaluated (netdev or bridge tables).
    pub notes: Vec<String>,
}

impl Report {
    /// Every required flow permitted and nothing else.
    pub fn clean(&self) -> bool {
        self.excess.is_empty()
            && self
                .flows
                .iter()
                .all(|f| f.optional || f.status == Status::Permitted)
    }
}

/// A class to check, with its path and direction.
struct Query {
    path: Path,
    direction: Direction,
    class: Class,
}

struct Ctx<'a> {
    policy: &'a Policy,
    prog: &'a Program,
    dns: &'a DnsFills,
}

/// Verifies `policy` against `prog`.
pub fn verify(policy: &Policy, prog: &Program, dns: &DnsFills) -> Report {
    let cx = Ctx { policy, prog, dns };
    let mut flows = Vec::new();
    for rule in &policy.rules {
        flows.push(cx.flow(rule));
    }
    let mut excess = Vec::new();
    for g in &policy.groups {
        excess.extend(cx.excess(&g.id));
    }
    Report {
        site: policy.site.clone(),
        flows,
        excess,
        notes: prog.ignored.clone(),
    }
}

/// The flow half of [`verify`] (for the benchmark's split of the time).
pub fn flows(policy: &Policy, prog: &Program, dns: &DnsFills) -> Vec<FlowResult> {
    let cx = Ctx { policy, prog, dns };
    policy.rules.iter().map(|r| cx.flow(r)).collect()
}

/// The excess half of [`verify`].
pub fn excess(policy: &Policy, prog: &Program, dns: &DnsFills) -> Vec<Excess> {
    let cx = Ctx { policy, prog, dns };
    policy
        .groups
        .iter()
        .flat_map(|g| cx.excess(&g.id))
        .collect()
}

fn v4_of(n: &IpNet) -> bool {
    matches!(n, IpNet::V4(_))
}

fn fam_iv(v4: bool) -> Iv {
    Iv::point(if v4 { 0 } else { 1 })
}

fn any_addr(v4: bool) -> Iv {
    if v4 {
        Iv::new(0, u128::from(u32::MAX))
    } else {
        Iv::new(0, u128::MAX)
    }
}

/// Port intervals of a list (empty: any).
fn ports(list: &[portolan_model::ir::PortRange]) -> Vec<Iv> {
    if list.is_empty() {
        vec![Iv::new(0, 65535)]
    } else {
        list.iter()
            .map(|p| Iv::new(u128::from(p.lo), u128::from(p.hi)))
            .collect()
    }
}

/// Protocols whose packets carry ports the kernel matches (`th dport`): wider than
/// `IpProto::has_ports`, which says which protocols a profile may give ports.
fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 33 | 132 | 136)
}

/// A peer of a rule, as the classes see it.
#[derive(Clone, Debug)]
enum Peer {
    Net(IpNet),
    /// A name or domain: addresses outside the site's zones, and the dynamic axes pinned.
    Name {
        name: String,
        v4: bool,
    },
    Firewall {
        v4: bool,
    },
    /// Broadcast / multicast destinations (the firewall or forwarded).
    Cast {
        dst: Vec<IpNet>,
        local: bool,
        oif: Option<String>,
    },
}

impl Ctx<'_> {
    fn zone_iface(&self, zone: &str) -> Option<&str> {
        self.policy.zone(zone).and_then(|z| z.interface.as_deref())
    }

    /// The interface behind which `n` sits: the zone whose networks hold it, else the one
    /// zone with an interface and no networks (the default route), else none known.
    fn iface_of(&self, n: &IpNet) -> Option<String> {
        let mut best: Option<(u8, &str)> = None;
        for z in &self.policy.zones {
            for net in &z.networks {
                if net.contains(n) && best.is_none_or(|(l, _)| net.prefix_len() > l) {
                    if let Some(i) = &z.interface {
                        best = Some((net.prefix_len(), i));
                    }
                }
            }
        }
        if let Some((_, i)) = best {
            return Some(i.to_string());
        }
        self.default_iface()
    }

    /// The one zone with an interface and no networks and no devices (the default route).
    fn default_iface(&self) -> Option<String> {
        let open: Vec<&str> = self
            .policy
            .zones
            .iter()
            .filter(|z| z.networks.is_empty() && !self.policy.groups.iter().any(|g| g.zone == z.id))
            .filter_map(|z| z.interface.as_deref())
            .collect();
        (open.len() == 1).then(|| open[0].to_string())
    }

    fn iface_iv(&self, name: Option<&str>) -> Iv {
        match name {
            Some(n) => self.prog.iface(n),
            None => self.prog.ifaces.full(),
        }
    }

    fn peers(&self, r: &Rule, v4: bool) -> Vec<Peer> {
        let mut out = Vec::new();
        if r.broadcast {
            let dst: Vec<IpNet> = if r.multicast.is_empty() {
                let mut d = vec![];
                if v4 {
                    d.push(IpNet::from(IpAddr::from([255, 255, 255, 255])));
                    if let Some(z) = self
                        .policy
                        .group(&r.group)
                        .and_then(|g| self.policy.zone(&g.zone))
                    {
                        d.extend(
                            z.networks
                                .iter()
                                .filter(|n| v4_of(n))
                                .map(|n| IpNet::from(n.broadcast())),
                        );
                    }
                }
                d
            } else {
                r.multicast
                    .iter()
                    .filter(|n| v4_of(n) == v4)
                    .copied()
                    .collect()
            };
            if dst.is_empty() {
                return out;
            }
            if r.peers.firewall {
                out.push(Peer::Cast {
                    dst: dst.clone(),
                    local: true,
                    oif: None,
                });
            }
            for p in r.peers.prefixes.iter().filter(|p| v4_of(p) == v4) {
                out.push(Peer::Cast {
                    dst: dst.clone(),
                    local: false,
                    oif: self.iface_of(p),
                });
            }
            if r.is_dhcp() && v4 && r.peers.firewall {
                // Renewals by unicast (RFC 2131 section 4.4.5) go to the firewall itself.
                out.push(Peer::Firewall { v4 });
            }
            return out;
        }
        out.extend(
            r.peers
                .prefixes
                .iter()
                .filter(|p| v4_of(p) == v4)
                .map(|p| Peer::Net(*p)),
        );
        for n in r.peers.names.iter().chain(&r.peers.wildcards) {
            out.push(Peer::Name {
                name: n.clone(),
                v4,
            });
        }
        if r.peers.firewall {
            out.push(Peer::Firewall { v4 });
        }
        out
    }

    /// Addresses outside every zone network of the site (for a name's addresses).
    fn outside_zones(&self, v4: bool) -> Vec<Iv> {
        let mut rest = vec![any_addr(v4)];
        for z in &self.policy.zones {
            for n in z.networks.iter().filter(|n| v4_of(n) == v4) {
                let cut = net_iv(n);
                rest = rest.into_iter().flat_map(|iv| iv.minus(cut)).collect();
            }
        }
        rest
    }

    /// The base class of a rule's packets for one device prefix and one peer: addresses,
    /// protocol, ports, ICMP type, in the initiator's direction; interfaces set when `ifaces`.
    fn classes(
        &self,
        r: &Rule,
        dev: &IpNet,
        peer: &Peer,
        ifaces: bool,
    ) -> Vec<(Path, Class, Vec<String>)> {
        let v4 = v4_of(dev);
        let g = self.policy.group(&r.group);
        let dev_if = g.and_then(|g| self.zone_iface(&g.zone)).map(str::to_string);
        let mut base = family_class(self.prog, v4);
        base.set(Dim::Proto, Iv::point(u128::from(r.protocol.number())));
        let mut unfilled = Vec::new();
        // (path, peer address intervals, peer interface, pinned dynamic axes)
        let (path, peer_ivs, peer_if, pins): (Path, Vec<Iv>, Option<String>, Vec<usize>) =
            match peer {
                Peer::Net(n) => (Path::Forward, vec![net_iv(n)], self.iface_of(n), vec![]),
                Peer::Name { name, v4 } => {
                    let key = match (r.initiator, v4) {
                        (Initiator::Device, true) => "ip daddr",
                        (Initiator::Device, false) => "ip6 daddr",
                        (Initiator::Peer, true) => "ip saddr",
                        (Initiator::Peer, false) => "ip6 saddr",
                    };
                    let sets = self.dns.sets_for(name, *v4);
                    if sets.is_empty() {
                        unfilled.push(name.clone());
                    }
                    let pins = sets
                        .iter()
                        .filter_map(|(t, s)| self.prog.dynamic_axis(t, s, key))
                        .collect();
                    let outside = self.outside_zones(*v4);
                    (Path::Forward, outside, self.default_iface(), pins)
                }
                Peer::Firewall { v4 } => (Path::Input, vec![any_addr(*v4)], None, vec![]),
                Peer::Cast {
                    dst, local, oif, ..
                } => {
                    let ivs = dst.iter().map(net_iv).collect();
                    (
                        if *local { Path::Input } else { Path::Forward },
                        ivs,
                        oif.clone(),
                        vec![],
                    )
                }
            };
        for p in pins {
            base.iv[p] = Iv::point(1);
        }
        let dev_ivs: Vec<Iv> = {
            let mut v = vec![net_iv(dev)];
            if r.is_dhcp_broadcast() && v4 && matches!(peer, Peer::Cast { .. }) {
                v.push(Iv::point(0)); // DHCP discovery from 0.0.0.0
            }
            v
        };
        let mut out = Vec::new();
        for d in &dev_ivs {
            for p in &peer_ivs {
                let mut c = base.clone();
                let (s, dst, iif, oif) = match r.initiator {
                    Initiator::Device => (*d, *p, dev_if.clone(), peer_if.clone()),
                    Initiator::Peer => (*p, *d, peer_if.clone(), dev_if.clone()),
                };
                c.set(Dim::Saddr, s);
                c.set(Dim::Daddr, dst);
                if ifaces {
                    // An input path has no output interface and the reverse.
                    let oif = if path == Path::Input {
                        Some(String::new())
                    } else {
                        oif
                    };
                    c.set(Dim::Iif, self.iface_iv(iif.as_deref()));
                    c.set(Dim::Oif, self.iface_iv(oif.as_deref()));
                }
                let icmp_v =
                    r.icmp_type
                        .as_deref()
                        .and_then(|t| if v4 { icmp::v4(t) } else { icmp::v6(t) });
                if let Some(t) = icmp_v {
                    c.set(Dim::IcmpType, Iv::point(u128::from(t)));
                }
                if has_ports(r.protocol.number()) {
                    for dp in ports(&r.ports) {
                        for sp in ports(&r.src_ports) {
                            let mut x = c.clone();
                            x.set(Dim::Dport, dp);
                            x.set(Dim::Sport, sp);
                            out.push((path, x, unfilled.clone()));
                        }
                    }
                } else {
                    out.push((path, c, unfilled.clone()));
                }
            }
        }
        out
    }

    fn queries(&self, r: &Rule) -> (Vec<Query>, Vec<String>) {
        let mut qs = Vec::new();
        let mut unfilled = Vec::new();
        let Some(g) = self.policy.group(&r.group) else {
            return (qs, unfilled);
        };
        for dev in &g.addresses {
            if !r.admits_family(&dev.addr()) {
                continue;
            }
            for peer in self.peers(r, v4_of(dev)) {
                for (path, c, un) in self.classes(r, dev, &peer, true) {
                    unfilled.extend(un);
                    let mut orig = c.clone();
                    orig.set(
                        Dim::Ct,
                        Iv::new(CtState::New.value(), CtState::Established.value()),
                    );
                    qs.push(Query {
                        path,
                        direction: Direction::Original,
                        class: orig,
                    });
                    if r.broadcast && !matches!(peer, Peer::Firewall { .. }) {
                        continue; // a broadcast or group has no conntrack reply
                    }
                    if let Some(rep) = reply_of(&c, path) {
                        qs.push(Query {
                            path: rep.0,
                            direction: Direction::Reply,
                            class: rep.1,
                        });
                    }
                }
            }
        }
        unfilled.sort();
        unfilled.dedup();
        (qs, unfilled)
    }

    fn flow(&self, r: &Rule) -> FlowResult {
        let (qs, unfilled) = self.queries(r);
        let mut pieces: Vec<(Direction, Class, Piece)> = Vec::new();
        for q in &qs {
            for p in self.prog.evaluate(q.path, &q.class) {
                pieces.push((q.direction, q.class.clone(), p));
            }
        }
        let accepted = pieces
            .iter()
            .filter(|(_, _, p)| p.outcome == Outcome::Accept)
            .count();
        let depends_on_expr = pieces
            .iter()
            .any(|(_, _, p)| matches!(p.outcome, Outcome::Depends(_)));
        let mixed = accepted > 0 && accepted < pieces.len();
        let on_dynamic = mixed
            && pieces
                .iter()
                .any(|(_, q, p)| pinned_dynamic(q, &p.class).is_some());
        let status = if pieces.is_empty() {
            Status::Blocked
        } else if accepted == pieces.len() {
            Status::Permitted
        } else if depends_on_expr || on_dynamic {
            Status::Depends
        } else if !pieces.iter().any(|(d, _, p)| {
            *d == Direction::Original
                && p.outcome == Outcome::Accept
                && p.class.get(Dim::Ct).lo == CtState::New.value()
        }) {
            // No new connection gets through (established packets may, for others).
            Status::Blocked
        } else {
            Status::Partly
        };
        let mut rules: Vec<RuleRef> = Vec::new();
        let mut findings = Vec::new();
        for (dir, q, p) in &pieces {
            let show = match status {
                Status::Permitted => {
                    *dir == Direction::Original && p.class.get(Dim::Ct).lo == CtState::New.value()
                }
                _ => p.outcome != Outcome::Accept,
            };
            if show {
                if let Some(rr) = &p.rule {
                    if !rules.contains(rr) {
                        rules.push(rr.clone());
                    }
                }
            }
            if status != Status::Permitted
                && (p.outcome != Outcome::Accept
                    || on_dynamic && pinned_dynamic(q, &p.class).is_some())
            {
                findings.push(Finding {
                    class: describe(self.prog, &p.class, Some(q)),
                    direction: *dir,
                    outcome: match &p.outcome {
                        Outcome::Accept => "accept".into(),
                        Outcome::Deny => "deny".into(),
                        Outcome::Depends(w) => format!("depends: {w}"),
                    },
                    rule: p.rule.clone(),
                });
            }
        }
        FlowResult {
            group: r.group.clone(),
            flow: r.provenance(),
            optional: r.optional,
            status,
            rules,
            findings,
            unfilled_names: unfilled,
        }
    }

    /// What the group's rules allow, as boxes without interfaces or conntrack state.
    fn allowed(&self, group: &str) -> Vec<(Path, Class)> {
        let mut out = Vec::new();
        for r in self.policy.rules_of(group) {
            let Some(g) = self.policy.group(group) else {
                continue;
            };
            for dev in &g.addresses {
                if !r.admits_family(&dev.addr()) {
                    continue;
                }
                for peer in self.peers(r, v4_of(dev)) {
                    for (path, mut c, _) in self.classes(r, dev, &peer, false) {
                        if let Peer::Name { .. } = peer {
                            // Allowed: whatever the name's sets hold, wherever it is.
                            let key = if r.initiator == Initiator::Device {
                                Dim::Daddr
                            } else {
                                Dim::Saddr
                            };
                            c.set(key, any_addr(v4_of(dev)));
                            if (FIXED..c.iv.len()).all(|i| c.iv[i] != Iv::point(1)) {
                                continue; // no set carries the name: nothing is allowed by it
                            }
                        }
                        out.push((path, c));
                    }
                }
            }
        }
        out
    }

    /// Under the same assumption as [`Self::outside_for_names`]: a lookup of an address the
    /// class keeps inside the site's zones in a run-time set is a miss.
    fn pin_inside_zones(&self, c: &mut Class) {
        let v4 = c.is_ipv4();
        for i in FIXED..c.iv.len() {
            let key = &self.prog.dynamic[i - FIXED].key;
            let dim = if key.ends_with("daddr") {
                Dim::Daddr
            } else if key.ends_with("saddr") {
                Dim::Saddr
            } else {
                continue;
            };
            let a = c.get(dim);
            let inside = self
                .policy
                .zones
                .iter()
                .flat_map(|z| &z.networks)
                .filter(|n| v4_of(n) == v4)
                .any(|n| net_iv(n).contains(a));
            if inside {
                c.iv[i] = Iv::point(0);
            }
        }
    }

    /// The parts of `x` consistent with the assumption that run-time (DNS-filled) sets hold
    /// addresses outside the site's zones only: where `x` is accepted because an address
    /// is in such a set, that address is not one of the site's.
    fn outside_for_names(&self, x: Class) -> Vec<Class> {
        let v4 = x.is_ipv4();
        let pinned: Vec<usize> = (FIXED..x.iv.len())
            .filter(|&i| x.iv[i] == Iv::point(1))
            .collect();
        let mut out = vec![x];
        for i in pinned {
            let key = &self.prog.dynamic[i - FIXED].key;
            let dim = if key.ends_with("daddr") {
                Dim::Daddr
            } else if key.ends_with("saddr") {
                Dim::Saddr
            } else {
                continue;
            };
            let allowed = self.outside_zones(v4);
            out = out
                .into_iter()
                .flat_map(|c| {
                    allowed.iter().filter_map(move |iv| {
                        let mut c = c.clone();
                        let v = c.get(dim).intersect(*iv)?;
                        c.set(dim, v);
                        Some(c)
                    })
                })
                .collect();
        }
        out
    }

    fn excess(&self, group: &str) -> Vec<Excess> {
        let Some(g) = self.policy.group(group) else {
            return Vec::new();
        };
        let allowed = self.allowed(group);
        let mut found: Vec<(Path, Class, Option<RuleRef>)> = Vec::new();
        for dev in &g.addresses {
            let v4 = v4_of(dev);
            let mut base = family_class(self.prog, v4);
            base.set(Dim::Ct, Iv::point(CtState::New.value()));
            // The device's side of the firewall: its zone's interface where the site names
            // one (routing sends its address there; forged sources on other interfaces are
            // the lab's adversarial probes' concern), else any but the loopback.
            let side: Vec<Iv> = match self.zone_iface(&g.zone) {
                Some(i) => vec![self.prog.iface(i)],
                None => match self.prog.ifaces.lookup("lo") {
                    Some(lo) => self.prog.ifaces.full().minus(Iv::point(lo)),
                    None => vec![self.prog.ifaces.full()],
                },
            };
            let mut queries = Vec::new();
            for iv in &side {
                let mut from = base.clone();
                from.set(Dim::Saddr, net_iv(dev));
                from.set(Dim::Iif, *iv);
                let mut to = base.clone();
                to.set(Dim::Daddr, net_iv(dev));
                to.set(Dim::Oif, *iv);
                queries.push((Path::Forward, from.clone()));
                queries.push((Path::Forward, to));
                queries.push((Path::Input, from));
            }
            for (path, mut c) in queries {
                self.pin_inside_zones(&mut c);
                let ev = self.prog.evaluate(path, &c);
                for p in ev {
                    if p.outcome != Outcome::Accept {
                        continue;
                    }
                    let mut rest = vec![p.class.clone()];
                    for (_, a) in allowed.iter().filter(|(ap, _)| *ap == path) {
                        rest = rest
                            .into_iter()
                            .flat_map(|x| subtract_ignoring_ifaces(&x, a))
                            .collect();
                        if rest.is_empty() {
                            break;
                        }
                    }
                    let rest = rest.into_iter().flat_map(|x| self.outside_for_names(x));
                    found.extend(rest.map(|x| (path, x, p.rule.clone())));
                }
            }
        }
        let found = coalesce(found);

        found
            .into_iter()
            .map(|(path, c, rule)| Excess {
                group: group.to_string(),
                conditional: (FIXED..c.iv.len()).any(|i| c.iv[i] == Iv::point(1)),
                class: describe(self.prog, &c, None),
                path,
                rule,
            })
            .collect()
    }
}

/// Every packet of one family.
fn family_class(prog: &Program, v4: bool) -> Class {
    let mut c = prog.all();
    c.set(Dim::Family, fam_iv(v4));
    c.set(Dim::Saddr, any_addr(v4));
    c.set(Dim::Daddr, any_addr(v4));
    c
}

/// `x` minus `a`, where `a` says nothing of interfaces or conntrack state.
fn subtract_ignoring_ifaces(x: &Class, a: &Class) -> Vec<Class> {
    let mut a = a.clone();
    for d in [Dim::Iif, Dim::Oif, Dim::Ct] {
        a.set(d, x.get(d));
    }
    a.widen(x.iv.len() - FIXED);
    x.minus(&a)
}

/// Merges boxes of one path and rule that differ on one axis with touching intervals.
fn coalesce(mut v: Vec<(Path, Class, Option<RuleRef>)>) -> Vec<(Path, Class, Option<RuleRef>)> {
    if v.len() > 4000 {
        return v;
    }
    loop {
        let mut merged = false;
        'outer: for i in 0..v.len() {
            for j in i + 1..v.len() {
                if v[i].0 != v[j].0 || v[i].2 != v[j].2 {
                    continue;
                }
                let a = &v[i].1;
                let b = &v[j].1;
                let diff: Vec<usize> = (0..a.iv.len()).filter(|&k| a.iv[k] != b.iv[k]).collect();
                if diff.len() == 1 {
                    let k = diff[0];
                    let (x, y) = (a.iv[k], b.iv[k]);
                    if x.hi.checked_add(1).is_some_and(|n| n >= y.lo)
                        && y.hi.checked_add(1).is_some_and(|n| n >= x.lo)
                        || x.intersect(y).is_some()
                    {
                        let m = Iv::new(x.lo.min(y.lo), x.hi.max(y.hi));
                        v[i].1.iv[k] = m;
                        v.swap_remove(j);
                        merged = true;
                        break 'outer;
                    }
                }
            }
        }
        if !merged {
            return v;
        }
    }
}

/// The reply class of a class: addresses, ports and interfaces swapped, established; an
/// echo request's answer is an echo reply. `None` when there is no reply to check.
fn reply_of(c: &Class, path: Path) -> Option<(Path, Class)> {
    let mut r = c.clone();
    r.set(Dim::Saddr, c.get(Dim::Daddr));
    r.set(Dim::Daddr, c.get(Dim::Saddr));
    r.set(Dim::Sport, c.get(Dim::Dport));
    r.set(Dim::Dport, c.get(Dim::Sport));
    r.set(Dim::Iif, c.get(Dim::Oif));
    r.set(Dim::Oif, c.get(Dim::Iif));
    r.set(Dim::Ct, Iv::point(CtState::Established.value()));
    let proto = c.get(Dim::Proto);
    if proto == Iv::point(1) || proto == Iv::point(58) {
        let t = c.get(Dim::IcmpType);
        let v4 = proto == Iv::point(1);
        let reply = match (v4, t.lo) {
            (true, 8) if t.hi == 8 => 0,
            (false, 128) if t.hi == 128 => 129,
            _ => return None,
        };
        r.set(Dim::IcmpType, Iv::point(reply));
    }
    // The answers of a dynamic lookup on the destination are a lookup on the source: not
    // the same axis, so leave membership unknown.
    for i in FIXED..r.iv.len() {
        r.iv[i] = Iv::new(0, 1);
    }
    let path = match path {
        Path::Forward => Path::Forward,
        Path::Input => Path::Output,
        Path::Output => Path::Input,
    };
    Some((path, r))
}

/// A dynamic axis the piece pins that the query left open.
fn pinned_dynamic(q: &Class, p: &Class) -> Option<usize> {
    (FIXED..p.iv.len())
        .find(|&i| q.iv.get(i).copied() == Some(Iv::new(0, 1)) && p.iv[i] != Iv::new(0, 1))
}

fn addr_text(iv: Iv, v4: bool) -> String {
    if iv == any_addr(v4) {
        return "any".into();
    }
    let show = |n: u128| -> String {
        if v4 {
            std::net::Ipv4Addr::from(n as u32).to_string()
        } else {
            std::net::Ipv6Addr::from(n).to_string()
        }
    };
    if iv.lo == iv.hi {
        return show(iv.lo);
    }
    // A CIDR prefix when the interval is one.
    let size = iv.hi - iv.lo + 1;
    if size.is_power_of_two() && iv.lo.is_multiple_of(size) {
        let bits = if v4 { 32 } else { 128 };
        let len = bits - size.trailing_zeros();
        return format!("{}/{len}", show(iv.lo));
    }
    format!("{}-{}", show(iv.lo), show(iv.hi))
}

fn proto_text(p: u128) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        33 => "dccp".into(),
        47 => "gre".into(),
        50 => "esp".into(),
        51 => "ah".into(),
        58 => "icmpv6".into(),
        132 => "sctp".into(),
        136 => "udplite".into(),
        n => format!("proto {n}"),
    }
}

/// A class in words: `10.20.0.10 → any tcp dport 22 iif lan0 (new)`.
pub fn describe(prog: &Program, c: &Class, query: Option<&Class>) -> String {
    let v4 = c.is_ipv4();
    let mut s = format!(
        "{} → {}",
        addr_text(c.get(Dim::Saddr), v4),
        addr_text(c.get(Dim::Daddr), v4)
    );
    let proto = c.get(Dim::Proto);
    if proto == Iv::new(0, 255) {
        s.push_str(" any protocol");
    } else if proto.lo == proto.hi {
        s.push(' ');
        s.push_str(&proto_text(proto.lo));
        if has_ports(proto.lo as u8) {
            if c.get(Dim::Sport) != Iv::new(0, 65535) {
                s.push_str(&format!(" sport {}", c.get(Dim::Sport)));
            }
            if c.get(Dim::Dport) != Iv::new(0, 65535) {
                s.push_str(&format!(" dport {}", c.get(Dim::Dport)));
            }
        }
        if (proto.lo == 1 || proto.lo == 58) && c.get(Dim::IcmpType) != Iv::new(0, 255) {
            let t = c.get(Dim::IcmpType);
            match (t.lo == t.hi)
                .then(|| icmp::name(proto.lo == 1, t.lo as u8))
                .flatten()
            {
                Some(n) => s.push_str(&format!(" type {n}")),
                None => s.push_str(&format!(" type {t}")),
            }
        }
    } else {
        s.push_str(&format!(" protocols {}-{}", proto.lo, proto.hi));
    }
    let ifs = |iv: Iv| -> String {
        (iv.lo..=iv.hi.min(iv.lo + 8))
            .map(|v| match prog.ifaces.name(v) {
                Some("") => "none".to_string(),
                Some(n) => n.to_string(),
                None => "others".to_string(),
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let full = prog.ifaces.full();
    if c.get(Dim::Iif) != full && query.is_none_or(|q| q.get(Dim::Iif) != c.get(Dim::Iif)) {
        s.push_str(&format!(" iif {}", ifs(c.get(Dim::Iif))));
    }
    if c.get(Dim::Oif) != full && query.is_none_or(|q| q.get(Dim::Oif) != c.get(Dim::Oif)) {
        s.push_str(&format!(" oif {}", ifs(c.get(Dim::Oif))));
    }
    let ct = c.get(Dim::Ct);
    let names: Vec<&str> = CtState::ALL
        .iter()
        .filter(|x| ct.lo <= x.value() && x.value() <= ct.hi)
        .map(|x| x.name())
        .collect();
    s.push_str(&format!(" ({})", names.join(",")));
    for i in FIXED..c.iv.len() {
        let d = &prog.dynamic[i - FIXED];
        let pinned_by_query = query.is_some_and(|q| q.iv.get(i) == Some(&c.iv[i]));
        if pinned_by_query {
            continue;
        }
        if c.iv[i] == Iv::point(1) {
            s.push_str(&format!(" if {} in @{}", d.key, d.set));
        } else if c.iv[i] == Iv::point(0) && query.is_some() {
            s.push_str(&format!(" if {} not in @{}", d.key, d.set));
        }
    }
    s
}

/// Reads an address as the axis value (for tests and callers).
pub fn addr_value(a: IpAddr) -> u128 {
    addr_num(&a)
}
