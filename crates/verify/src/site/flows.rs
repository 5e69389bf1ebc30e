//! The flow half of a site check: the peers of an IR rule, the classes of its packets in
//! the initiator's direction and their replies, and each flow judged permitted, partly,
//! blocked or depends from the pieces the evaluator returns, with the deciding rules.

use std::net::IpAddr;

use ipnet::IpNet;
use portolan_model::icmp;
use portolan_model::ir::{Initiator, Rule};

use super::excess::family_class;
use super::{
    any_addr, describe, has_ports, ports, v4_of, Ctx, Direction, Finding, FlowResult, NameCheck,
    NameVia, Peer, Query, Status,
};
use crate::eval::{Outcome, Piece};
use crate::lower::net_iv;
use crate::program::{Path, RuleRef};
use crate::space::{Class, CtState, Dim, Iv, FIXED};

/// A piece of a query's evaluation: its direction, the query's class, the piece, and the
/// hostname peer the query stands for.
type Tagged = (Direction, Class, Piece, Option<String>);

impl Ctx<'_> {
    pub(super) fn zone_iface(&self, zone: &str) -> Option<&str> {
        self.policy.zone(zone).and_then(|z| z.interface.as_deref())
    }

    /// The interface behind which `n` sits: the zone whose networks hold it, else the one
    /// zone with an interface and no networks (the default route), else none known.
    pub(super) fn iface_of(&self, n: &IpNet) -> Option<String> {
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
    pub(super) fn default_iface(&self) -> Option<String> {
        self.default_iface
            .get_or_init(|| self.find_default_iface())
            .clone()
    }

    fn find_default_iface(&self) -> Option<String> {
        let open: Vec<&str> = self
            .policy
            .zones
            .iter()
            .filter(|z| z.networks.is_empty() && !self.policy.groups.iter().any(|g| g.zone == z.id))
            .filter_map(|z| z.interface.as_deref())
            .collect();
        (open.len() == 1).then(|| open[0].to_string())
    }

    pub(super) fn iface_iv(&self, name: Option<&str>) -> Iv {
        match name {
            Some(n) => self.prog.iface(n),
            None => self.prog.ifaces.full(),
        }
    }

    pub(super) fn peers(&self, r: &Rule, v4: bool) -> Vec<Peer> {
        let mut out = Vec::new();
        if r.broadcast {
            let dst: Vec<IpNet> = if r.multicast.is_empty() {
                let mut d = vec![];
                if v4 {
                    d.push(IpNet::from(IpAddr::from([255, 255, 255, 255])));
                    if let Some(z) = self.group(&r.group).and_then(|g| self.policy.zone(&g.zone)) {
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
            if r.is_dhcp_broadcast() && v4 {
                // A DHCP client broadcasts to 255.255.255.255 only (RFC 2131 section 4.1), and
                // a limited broadcast is never forwarded (RFC 1812 section 5.3.5.1): whichever
                // peer serves it, the packet reaches the firewall (its server, or its relay).
                // Renewals are unicast to the server (section 4.4.5).
                out.push(Peer::Cast {
                    dst: vec![IpNet::from(IpAddr::from([255, 255, 255, 255]))],
                    local: true,
                    oif: None,
                });
                if r.peers.firewall {
                    out.push(Peer::Firewall { v4 });
                }
                out.extend(
                    r.peers
                        .prefixes
                        .iter()
                        .filter(|p| v4_of(p))
                        .map(|p| Peer::Net(*p)),
                );
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
    pub(super) fn outside_zones(&self, v4: bool) -> Vec<Iv> {
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
    pub(super) fn classes(
        &self,
        r: &Rule,
        dev: &IpNet,
        peer: &Peer,
        ifaces: bool,
    ) -> Vec<(Path, Class, Vec<String>)> {
        let v4 = v4_of(dev);
        let g = self.group(&r.group);
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
                let icmp_v = r
                    .icmp_type
                    .as_deref()
                    .and_then(|t| icmp::type_number(!v4, t));
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

    pub(super) fn queries(&self, r: &Rule) -> (Vec<Query>, Vec<String>) {
        let mut qs = Vec::new();
        let mut unfilled = Vec::new();
        let Some(g) = self.group(&r.group) else {
            return (qs, unfilled);
        };
        for dev in &g.addresses {
            if !r.admits_family(&dev.addr()) {
                continue;
            }
            for peer in self.peers(r, v4_of(dev)) {
                let name = match &peer {
                    Peer::Name { name, .. } => Some(name.clone()),
                    _ => None,
                };
                for (path, c, un) in self.classes(r, dev, &peer, true) {
                    unfilled.extend(un);
                    let name = name.clone();
                    let mut orig = c.clone();
                    orig.set(
                        Dim::Ct,
                        Iv::new(CtState::New.value(), CtState::Established.value()),
                    );
                    qs.push(Query {
                        path,
                        direction: Direction::Original,
                        class: orig,
                        name: name.clone(),
                    });
                    if r.broadcast && !matches!(peer, Peer::Firewall { .. }) {
                        continue; // a broadcast or group has no conntrack reply
                    }
                    if let Some(rep) = reply_of(&c, path) {
                        qs.push(Query {
                            path: rep.0,
                            direction: Direction::Reply,
                            class: rep.1,
                            name,
                        });
                    }
                }
            }
        }
        unfilled.sort();
        unfilled.dedup();
        (qs, unfilled)
    }

    /// The queries of `name` as a static peer at each address it resolves to now.
    fn current_queries(&self, r: &Rule, name: &str, addrs: &[IpAddr]) -> Vec<Query> {
        let mut out = Vec::new();
        let Some(g) = self.group(&r.group) else {
            return out;
        };
        for dev in &g.addresses {
            for a in addrs.iter().filter(|a| a.is_ipv4() == v4_of(dev)) {
                let peer = Peer::Net(IpNet::from(*a));
                for (path, c, _) in self.classes(r, dev, &peer, true) {
                    let mut orig = c.clone();
                    orig.set(
                        Dim::Ct,
                        Iv::new(CtState::New.value(), CtState::Established.value()),
                    );
                    out.push(Query {
                        path,
                        direction: Direction::Original,
                        class: orig,
                        name: Some(name.to_string()),
                    });
                    if let Some(rep) = reply_of(&c, path) {
                        out.push(Query {
                            path: rep.0,
                            direction: Direction::Reply,
                            class: rep.1,
                            name: Some(name.to_string()),
                        });
                    }
                }
            }
        }
        out
    }

    /// With `--resolve`: each hostname peer whose own classes (its DNS sets) are not all
    /// accepted is judged again at the addresses it resolves to now; when every one of
    /// those is accepted, they stand for the name. Returns the pieces and the checks.
    fn with_current(
        &self,
        r: &Rule,
        qs: &[Query],
        mut pieces: Vec<Tagged>,
    ) -> (Vec<Tagged>, Vec<NameCheck>) {
        let mut checks = Vec::new();
        if self.dns.current.is_empty() {
            return (pieces, checks);
        }
        let mut names: Vec<&String> = qs.iter().filter_map(|q| q.name.as_ref()).collect();
        names.sort();
        names.dedup();
        for name in names {
            let own_ok = pieces
                .iter()
                .filter(|p| p.3.as_ref() == Some(name))
                .all(|p| p.2.outcome == Outcome::Accept);
            let mut check = NameCheck {
                name: name.clone(),
                via: NameVia::DnsSet,
                addresses: Vec::new(),
                error: None,
            };
            match self.dns.current.get(name) {
                _ if own_ok => {}
                None => continue, // a wildcard: nothing to resolve
                Some(Err(e)) => {
                    check.via = NameVia::Unresolved;
                    check.error = Some(e.clone());
                }
                Some(Ok(addrs)) => {
                    check.addresses = addrs.clone();
                    let now: Vec<Tagged> = self
                        .current_queries(r, name, addrs)
                        .into_iter()
                        .flat_map(|q| {
                            self.prog
                                .evaluate(q.path, &q.class)
                                .into_iter()
                                .map(move |p| (q.direction, q.class.clone(), p, q.name.clone()))
                        })
                        .collect();
                    if !now.is_empty() && now.iter().all(|p| p.2.outcome == Outcome::Accept) {
                        check.via = NameVia::CurrentAddresses;
                        pieces.retain(|p| p.3.as_ref() != Some(name));
                        pieces.extend(now);
                    } else {
                        check.via = NameVia::Neither;
                    }
                }
            }
            checks.push(check);
        }
        (pieces, checks)
    }

    pub(super) fn flow(&self, r: &Rule) -> FlowResult {
        let (qs, unfilled) = self.queries(r);
        let mut tagged: Vec<Tagged> = Vec::new();
        for q in &qs {
            for p in self.prog.evaluate(q.path, &q.class) {
                tagged.push((q.direction, q.class.clone(), p, q.name.clone()));
            }
        }
        let (tagged, names) = self.with_current(r, &qs, tagged);
        let pieces: Vec<(Direction, Class, Piece)> =
            tagged.into_iter().map(|(d, c, p, _)| (d, c, p)).collect();
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
            names,
        }
    }
}

/// The reply class of a class: addresses, ports and interfaces swapped, established; an
/// echo request's answer is an echo reply. `None` when there is no reply to check.
pub(super) fn reply_of(c: &Class, path: Path) -> Option<(Path, Class)> {
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
pub(super) fn pinned_dynamic(q: &Class, p: &Class) -> Option<usize> {
    (FIXED..p.iv.len())
        .find(|&i| q.iv.get(i).copied() == Some(Iv::new(0, 1)) && p.iv[i] != Iv::new(0, 1))
}
