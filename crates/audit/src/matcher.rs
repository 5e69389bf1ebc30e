//! Flows against the policy IR. A flow of a site device conforms when a rule of the device's
//! group admits it the way the firewall would: same protocol, the device initiating where the
//! rule says the device initiates (or the peer, for peer-initiated rules), the service port
//! among the rule's ports, the initiator's port among its source ports, and the peer among the
//! rule's peers — a prefix, a hostname or wildcard domain the peer's address had in a DNS answer
//! whose TTL window holds the flow's start, this firewall (`--firewall`), or a broadcast or
//! multicast address for broadcast rules. A flow between two devices conforms when either
//! side's rules admit it (the forward chain tries the initiator's group, then the responder's).
//!
//! A flow no rule admits is a violation, diagnosed against the closest rule of the group: the
//! one that differs in the fewest of peer, port and initiation (`protocol` when the group has no
//! rule for the flow's protocol at all).

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use portolan_model::ir::{Initiator, IpProto, Peers, Policy, PortRange, Rule};
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::collect::Observed;
use crate::flows::ObservedFlow;

/// Facts the IR does not hold.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The firewall's own addresses (peers of rules bound to `firewall`).
    pub firewall: Vec<IpAddr>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Conforming,
    Violation,
    /// Neither side is a device of the site.
    UnknownDevice,
}

/// What about a violating flow no rule admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mismatch {
    /// The group has no rule for this protocol.
    Protocol,
    /// The peer is not a peer of the closest rule.
    Peer,
    /// The port (or ICMP type, or source port) is not the closest rule's.
    Port,
    /// The other side opened it.
    Initiation,
    /// The rule's flow states one address family (`family:`) and the flow is of the other.
    Family,
}

impl Mismatch {
    pub fn name(self) -> &'static str {
        match self {
            Mismatch::Protocol => "protocol",
            Mismatch::Peer => "peer",
            Mismatch::Port => "port",
            Mismatch::Initiation => "initiation",
            Mismatch::Family => "family",
        }
    }
}

/// The verdict on one flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchVerdict {
    pub status: Status,
    /// The device group the flow was judged for.
    pub group: Option<String>,
    pub device: Option<IpAddr>,
    pub peer: Option<IpAddr>,
    /// The peer's DNS names when the flow started.
    pub peer_names: Vec<String>,
    /// Who opened the flow, seen from the device.
    pub initiated_by: Option<Initiator>,
    /// `profile/flow` of the admitting rule.
    pub rule: Option<String>,
    pub mismatch: Vec<Mismatch>,
    /// `profile/flow` of the closest rule, for violations.
    pub closest: Option<String>,
    pub reason: Option<String>,
    /// The initiator was uncertain (no SYN seen) and the flow conforms read the other way
    /// round: the responder is taken as the initiator.
    pub flipped: bool,
    /// A connection to the site's proxy: `profile/flow` of every proxied flow of the group
    /// whose leg to the proxy admits it (the proxy carries them all; `rule` is the first).
    /// Empty otherwise.
    pub proxied: Vec<String>,
}

/// Which group each device address belongs to.
struct Devices {
    exact: FxHashMap<IpAddr, usize>,
    /// Prefixes, longest first.
    nets: Vec<(IpNet, usize)>,
}

impl Devices {
    fn new(policy: &Policy) -> Devices {
        let mut exact = FxHashMap::default();
        let mut nets = Vec::new();
        for (i, g) in policy.groups.iter().enumerate() {
            for a in &g.addresses {
                if a.prefix_len() == a.max_prefix_len() {
                    exact.insert(a.addr(), i);
                } else {
                    nets.push((*a, i));
                }
            }
        }
        nets.sort_by_key(|(n, _)| std::cmp::Reverse(n.prefix_len()));
        Devices { exact, nets }
    }

    fn find(&self, a: IpAddr) -> Option<usize> {
        if let Some(&g) = self.exact.get(&a) {
            return Some(g);
        }
        self.nets
            .iter()
            .find(|(n, _)| n.contains(&a))
            .map(|(_, g)| *g)
    }
}

/// The matcher for one policy.
pub struct Matcher<'a> {
    policy: &'a Policy,
    opts: &'a Options,
    devices: Devices,
    rules: Vec<Vec<&'a Rule>>,
    /// `profile/flow` of each of `rules`, made once (not once per flow).
    provenance: Vec<Vec<String>>,
    /// Directed broadcast addresses of the zones' IPv4 networks.
    broadcasts: Vec<IpAddr>,
}

struct Candidate {
    group: usize,
    role: Initiator,
    device: IpAddr,
    peer: IpAddr,
}

fn in_ranges(port: u16, ranges: &[PortRange]) -> bool {
    ranges.is_empty() || ranges.iter().any(|r| r.lo <= port && port <= r.hi)
}

impl<'a> Matcher<'a> {
    pub fn new(policy: &'a Policy, opts: &'a Options) -> Matcher<'a> {
        // One pass over the rules, not one per group: sites have up to 100,000 groups.
        let index: FxHashMap<&str, usize> = policy
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.id.as_str(), i))
            .collect();
        let mut rules: Vec<Vec<&Rule>> = vec![Vec::new(); policy.groups.len()];
        for r in &policy.rules {
            if let Some(&i) = index.get(r.group.as_str()) {
                rules[i].push(r);
            }
        }
        let broadcasts = policy
            .zones
            .iter()
            .flat_map(|z| z.networks.iter())
            .filter_map(|n| match n {
                IpNet::V4(v) if v.prefix_len() < 31 => Some(IpAddr::V4(v.broadcast())),
                _ => None,
            })
            .collect();
        let provenance = rules
            .iter()
            .map(|rs| rs.iter().map(|r| r.provenance()).collect())
            .collect();
        Matcher {
            policy,
            opts,
            devices: Devices::new(policy),
            rules,
            provenance,
            broadcasts,
        }
    }

    /// The rules of the `i`th device group of the policy, in the policy's order.
    pub fn rules_of(&self, i: usize) -> &[&'a Rule] {
        self.rules.get(i).map_or(&[], Vec::as_slice)
    }

    /// The group a device address belongs to.
    pub fn group_of(&self, a: IpAddr) -> Option<&'a str> {
        self.devices
            .find(a)
            .map(|g| self.policy.groups[g].id.as_str())
    }

    fn is_broadcast(&self, a: IpAddr) -> bool {
        match a {
            IpAddr::V4(v) => v.is_broadcast() || v.is_multicast() || self.broadcasts.contains(&a),
            IpAddr::V6(v) => v.is_multicast(),
        }
    }

    fn peer_ok(&self, r: &Rule, peer: IpAddr, names: &[String]) -> bool {
        let p = &r.peers;
        p.prefixes.iter().any(|n| n.contains(&peer))
            || names.iter().any(|n| p.names.iter().any(|x| x == n))
            || names.iter().any(|n| {
                p.wildcards.iter().any(|w| {
                    n == w || (n.ends_with(w.as_str()) && n[..n.len() - w.len()].ends_with('.'))
                })
            })
            || (p.firewall && self.opts.firewall.contains(&peer))
            || (r.broadcast && self.is_broadcast(peer))
    }

    fn port_ok(r: &Rule, f: &ObservedFlow) -> bool {
        let icmp_ok = match (&r.icmp_type, f.icmp_type_name()) {
            (None, _) => true,
            (Some(want), Some(have)) => want == have,
            (Some(_), None) => false,
        };
        in_ranges(f.rport, &r.ports) && in_ranges(f.iport, &r.src_ports) && icmp_ok
    }

    fn mismatches(
        &self,
        r: &Rule,
        c: &Candidate,
        f: &ObservedFlow,
        names: &[String],
    ) -> Vec<Mismatch> {
        let mut m = Vec::new();
        if !self.peer_ok(r, c.peer, names) {
            m.push(Mismatch::Peer);
        }
        if !Self::port_ok(r, f) {
            m.push(Mismatch::Port);
        }
        if r.initiator != c.role {
            m.push(Mismatch::Initiation);
        }
        if !r.admits_family(&c.peer) {
            m.push(Mismatch::Family);
        }
        m
    }

    /// Judges one flow; `names` looks up a peer's names at the flow's start.
    pub fn judge(&self, f: &ObservedFlow, names: &dyn Fn(IpAddr) -> Vec<String>) -> MatchVerdict {
        let v = self.judge_as_seen(f, names);
        if v.status != Status::Violation {
            return v;
        }
        if let Some(why) = housekeeping(f) {
            return MatchVerdict {
                status: Status::Conforming,
                mismatch: Vec::new(),
                closest: None,
                reason: Some(why.into()),
                ..v
            };
        }
        if !f.evidence.uncertain() {
            return v;
        }
        // A connection already open when the capture began: the other side may have opened it.
        let mut flipped = f.clone();
        std::mem::swap(&mut flipped.initiator, &mut flipped.responder);
        std::mem::swap(&mut flipped.iport, &mut flipped.rport);
        flipped.packets.swap(0, 1);
        flipped.bytes.swap(0, 1);
        let w = self.judge_as_seen(&flipped, names);
        if w.status == Status::Conforming {
            MatchVerdict { flipped: true, ..w }
        } else {
            v
        }
    }

    fn judge_as_seen(
        &self,
        f: &ObservedFlow,
        names: &dyn Fn(IpAddr) -> Vec<String>,
    ) -> MatchVerdict {
        let gi = self.devices.find(f.initiator);
        let gr = self.devices.find(f.responder);
        let mut cands = Vec::new();
        if let Some(g) = gi {
            cands.push(Candidate {
                group: g,
                role: Initiator::Device,
                device: f.initiator,
                peer: f.responder,
            });
        }
        if let Some(g) = gr {
            cands.push(Candidate {
                group: g,
                role: Initiator::Peer,
                device: f.responder,
                peer: f.initiator,
            });
        }
        let Some(primary) = cands.first() else {
            return MatchVerdict {
                status: Status::UnknownDevice,
                group: None,
                device: None,
                peer: None,
                peer_names: Vec::new(),
                initiated_by: None,
                rule: None,
                mismatch: Vec::new(),
                closest: None,
                flipped: false,
                proxied: Vec::new(),
                reason: Some(format!(
                    "neither {} nor {} is an address of a device of site {}",
                    f.initiator, f.responder, self.policy.site
                )),
            };
        };
        // The names of each candidate's peer (at most two, looked up once each: the two
        // peers are one address only for a flow from an address to itself).
        let mut peer_names: [Option<Vec<String>>; 2] = [None, None];
        for (k, c) in cands.iter().enumerate() {
            let looked = match k {
                1 if c.peer == cands[0].peer => peer_names[0].clone(),
                _ => None,
            };
            let names = peer_names[k].insert(looked.unwrap_or_else(|| names(c.peer)));
            let hit = self.rules[c.group].iter().position(|r| {
                r.protocol == IpProto::new(f.proto)
                    && r.initiator == c.role
                    && r.admits_family(&c.peer)
                    && Self::port_ok(r, f)
                    && self.peer_ok(r, c.peer, names)
            });
            if let Some(h) = hit {
                // A leg to the proxy carries every proxied flow of the group it admits.
                let proxied: Vec<String> = if self.rules[c.group][h].via_proxy.is_some() {
                    self.rules[c.group]
                        .iter()
                        .zip(&self.provenance[c.group])
                        .filter(|(r, _)| {
                            r.via_proxy.is_some()
                                && r.protocol == IpProto::new(f.proto)
                                && r.initiator == c.role
                                && r.admits_family(&c.peer)
                                && Self::port_ok(r, f)
                                && self.peer_ok(r, c.peer, names)
                        })
                        .map(|(_, p)| p.clone())
                        .collect()
                } else {
                    Vec::new()
                };
                let reason = (!proxied.is_empty()).then(|| {
                    let mut u = proxied.clone();
                    u.dedup();
                    format!("to the site's proxy, which carries {}", u.join(", "))
                });
                return MatchVerdict {
                    status: Status::Conforming,
                    group: Some(self.policy.groups[c.group].id.clone()),
                    device: Some(c.device),
                    peer: Some(c.peer),
                    peer_names: std::mem::take(names),
                    initiated_by: Some(c.role),
                    rule: Some(self.provenance[c.group][h].clone()),
                    mismatch: Vec::new(),
                    closest: None,
                    reason,
                    flipped: false,
                    proxied,
                };
            }
        }
        // Connections the firewall opens towards a device leave through its output hook, which
        // the emitted ruleset does not filter.
        if let Some(c) = cands
            .iter()
            .find(|c| c.role == Initiator::Peer && self.opts.firewall.contains(&c.peer))
        {
            return MatchVerdict {
                status: Status::Conforming,
                group: Some(self.policy.groups[c.group].id.clone()),
                device: Some(c.device),
                peer: Some(c.peer),
                peer_names: Vec::new(),
                initiated_by: Some(Initiator::Peer),
                rule: None,
                mismatch: Vec::new(),
                closest: None,
                flipped: false,
                proxied: Vec::new(),
                reason: Some("opened by this firewall, whose output is not filtered".into()),
            };
        }
        // The primary candidate is the first.
        let names = peer_names[0].take().unwrap_or_default();
        self.violation(primary, f, names)
    }

    fn violation(&self, c: &Candidate, f: &ObservedFlow, names: Vec<String>) -> MatchVerdict {
        let group = &self.policy.groups[c.group];
        let same: Vec<&&Rule> = self.rules[c.group]
            .iter()
            .filter(|r| r.protocol == IpProto::new(f.proto))
            .collect();
        let (mismatch, closest, reason) = if same.is_empty() {
            let have: BTreeSet<String> = self.rules[c.group]
                .iter()
                .map(|r| r.protocol.to_string())
                .collect();
            let have: Vec<String> = have.into_iter().collect();
            (
                vec![Mismatch::Protocol],
                None,
                format!(
                    "group {} ({}) has no {} rule (its rules are {})",
                    group.id,
                    group.profile,
                    IpProto::new(f.proto),
                    if have.is_empty() {
                        "none".to_string()
                    } else {
                        have.join(", ")
                    }
                ),
            )
        } else {
            // Fewest mismatches; among single ones prefer initiation, then port, then peer.
            let rank = |m: &[Mismatch]| {
                let order = |k: &Mismatch| match k {
                    // A rule matching in all but family explains the flow best.
                    Mismatch::Initiation | Mismatch::Family => 0,
                    Mismatch::Port => 1,
                    _ => 2,
                };
                (m.len(), m.iter().map(order).sum::<usize>())
            };
            let mut best: Option<(&Rule, Vec<Mismatch>)> = None;
            for r in &same {
                let m = self.mismatches(r, c, f, &names);
                if best.as_ref().is_none_or(|(_, b)| rank(&m) < rank(b)) {
                    best = Some((r, m));
                }
            }
            let (r, mut m) = best.expect("`same` is not empty");
            m.sort();
            let mut parts = Vec::new();
            for k in &m {
                parts.push(match k {
                    Mismatch::Peer => format!(
                        "peer {}{} is not among {}",
                        c.peer,
                        if names.is_empty() {
                            " (no DNS answer named it)".to_string()
                        } else {
                            format!(" ({})", names.join(", "))
                        },
                        self.describe_peers(&r.peers, r.broadcast)
                    ),
                    Mismatch::Port => port_reason(r, f),
                    Mismatch::Initiation => format!(
                        "opened by the {}, where the rule admits only connections the {} opens",
                        role_name(c.role),
                        role_name(r.initiator)
                    ),
                    Mismatch::Family => format!(
                        "the rule's flow is {} only",
                        if c.peer.is_ipv4() { "IPv6" } else { "IPv4" }
                    ),
                    Mismatch::Protocol => String::new(),
                });
            }
            (
                m,
                Some(r.provenance()),
                format!("closest rule {}: {}", r.provenance(), parts.join("; ")),
            )
        };
        MatchVerdict {
            status: Status::Violation,
            group: Some(group.id.clone()),
            device: Some(c.device),
            peer: Some(c.peer),
            peer_names: names,
            initiated_by: Some(c.role),
            rule: None,
            mismatch,
            closest,
            reason: Some(reason),
            flipped: false,
            proxied: Vec::new(),
        }
    }

    fn describe_peers(&self, p: &Peers, broadcast: bool) -> String {
        let mut items: Vec<String> = Vec::new();
        items.extend(p.prefixes.iter().map(ToString::to_string));
        items.extend(p.names.iter().cloned());
        items.extend(p.wildcards.iter().map(|w| format!("*.{w}")));
        if p.firewall {
            items.push(if self.opts.firewall.is_empty() {
                "this firewall (give its addresses with --firewall)".to_string()
            } else {
                "this firewall".to_string()
            });
        }
        if broadcast {
            items.push("broadcast".into());
        }
        let n = items.len();
        if n > 4 {
            items.truncate(4);
            items.push(format!("{} more", n - 4));
        }
        format!("its peers {}", items.join(", "))
    }
}

/// IP's own housekeeping on a link, which profiles do not list (as they document ARP rather
/// than enforce it) and a forwarding firewall never sees: IPv6 neighbour and router discovery,
/// MLD, IGMP. Admitted when no rule does.
fn housekeeping(f: &ObservedFlow) -> Option<&'static str> {
    match (f.proto, f.icmp_type) {
        (58, Some(133..=137)) => {
            Some("IPv6 neighbour or router discovery: link-layer housekeeping, like ARP")
        }
        (58, Some(130..=132 | 143)) => Some("MLD listener report: link-layer housekeeping"),
        (2, _) => Some("IGMP membership: link-layer housekeeping"),
        _ => None,
    }
}

fn role_name(r: Initiator) -> &'static str {
    match r {
        Initiator::Device => "device",
        Initiator::Peer => "peer",
    }
}

fn port_reason(r: &Rule, f: &ObservedFlow) -> String {
    let list = |p: &[PortRange]| {
        p.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !in_ranges(f.rport, &r.ports) {
        return format!("port {} is not among its ports {}", f.rport, list(&r.ports));
    }
    if !in_ranges(f.iport, &r.src_ports) {
        return format!(
            "source port {} is not among its source ports {}",
            f.iport,
            list(&r.src_ports)
        );
    }
    format!(
        "ICMP type {} is not its {}",
        f.icmp_type_name().unwrap_or("unknown"),
        r.icmp_type.as_deref().unwrap_or("any")
    )
}

/// Judges every observed flow.
pub fn judge_all(policy: &Policy, obs: &Observed, opts: &Options) -> Vec<MatchVerdict> {
    let m = Matcher::new(policy, opts);
    obs.flows
        .iter()
        .map(|f| m.judge(f, &|a| obs.names_at(a, f.first)))
        .collect()
}
