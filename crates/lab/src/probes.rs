//! The probes a lab sends, derived from the IR and the address plan (no I/O).
//!
//! Every rule yields *required* probes: from every lab host of its group to every lab
//! address that stands for its peers (static prefix, hostname, wildcard test name, listed
//! names under a wildcard), on the first and last port of each range; peer-initiated rules the
//! other way round; services of the firewall to the firewall's address on the device's link;
//! broadcast rules to 255.255.255.255. Devices that may use the firewall's DNS resolve every
//! name their rules use through it (*dns*).
//!
//! Negatives mutate a rule so that the IR no longer admits it: *other-port* (the next port no
//! rule admits), *other-peer* (a stranger's address), *other-device* (another group's host
//! sends this group's flow), *reversed* (the peer opens what only the device may open),
//! *unresolved-name* (a name's address before any DNS answer) and *unlisted-name* (a name no
//! profile lists, resolved through the firewall). A mutation the IR happens to admit is not a
//! negative and is left out. Every probe's expectation comes from [`crate::oracle`].
//!
//! Phases keep the kernel's connection tracking out of the way (see
//! [`crate::probe::PHASES`]).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use portolan_model::ir::{Initiator, IpProto, Policy, PortRange, Rule};

use crate::oracle::{self, Packet};
use crate::probe::BROADCAST_PHASE;
pub use crate::probe::{Fate, Forged, Key, Kind, Probe, Traffic};
use crate::topology::{Topology, GENERIC_NAME};

fn sample_ports(ranges: &[PortRange]) -> Vec<u16> {
    let mut v: Vec<u16> = Vec::new();
    for r in ranges {
        for p in [r.lo, r.hi] {
            if !v.contains(&p) && v.len() < 4 {
                v.push(p);
            }
        }
    }
    if v.is_empty() {
        v.push(40000);
    }
    v
}

/// The traffic of rule `r` on `port` (`None` when the lab does not exercise it).
fn traffic(r: &Rule, port: u16) -> Result<Traffic, String> {
    match r.protocol {
        IpProto::TCP => Ok(Traffic::Tcp { port }),
        IpProto::UDP => Ok(Traffic::Udp { port }),
        p if p.is_icmp() => match r.icmp_type.as_deref() {
            None | Some("echo-request") => Ok(Traffic::Echo),
            Some(t) => Err(format!("icmp type {t}: the lab sends echo requests only")),
        },
        IpProto::SCTP => Err("sctp: not exercised by the lab".into()),
        p => Ok(Traffic::Ip {
            protocol: p.number(),
        }),
    }
}

struct Gen<'a> {
    policy: &'a Policy,
    topo: &'a Topology,
    names_provable: bool,
    out: Vec<Probe>,
    seen: BTreeSet<Key>,
}

impl Gen<'_> {
    fn iif(&self, src: IpAddr) -> Option<&str> {
        self.topo.space_of(src).map(|s| s.fw_if.as_str())
    }

    fn expect(&self, p: &Probe) -> Fate {
        let pkt = Packet {
            src: p.src,
            dst: p.dst,
            to_firewall: p.to_firewall,
            iif: self.iif(p.src),
            protocol: p.traffic.protocol(p.src.is_ipv4()),
            sport: p.sport,
            dport: p.traffic.dport(),
        };
        let resolved = p.phase != 1;
        if oracle::permits(self.policy, self.topo, &pkt, resolved) {
            Fate::Pass
        } else {
            Fate::Drop
        }
    }

    /// Adds a probe; negatives only when the IR does not admit them.
    fn push(&mut self, mut p: Probe) -> bool {
        if !self.seen.insert(p.key()) {
            return false;
        }
        p.expected = self.expect(&p);
        let positive = matches!(p.kind, Kind::Required | Kind::Dns);
        if !positive && p.expected == Fate::Pass {
            self.seen.remove(&p.key());
            return false;
        }
        if p.skip.is_none() && !p.to_firewall && !p.broadcast {
            let same = match (self.topo.space_of(p.src), self.topo.space_of(p.dst)) {
                (Some(a), Some(b)) => a.netns == b.netns,
                _ => false,
            };
            if same {
                p.skip = Some("both ends are in one zone: not routed through the firewall".into());
            }
        }
        self.out.push(p);
        true
    }

    /// Lab addresses standing for the peers of `r`, in the family of `like`, with whether
    /// each is a name (DNS-driven).
    fn targets(&self, r: &Rule, like: IpAddr) -> Vec<(IpAddr, bool)> {
        let fam = |a: &IpAddr| a.is_ipv4() == like.is_ipv4();
        let mut v: Vec<(IpAddr, bool)> = Vec::new();
        for p in &r.peers.prefixes {
            if let Some(h) = self.topo.peer_hosts.get(p) {
                if fam(h) && !v.iter().any(|(a, _)| a == h) {
                    v.push((*h, false));
                }
            }
        }
        let book = &self.topo.book;
        let mut named: Vec<IpAddr> = Vec::new();
        for n in &r.peers.names {
            named.extend(book.names.get(n).into_iter().flatten().filter(|a| fam(a)));
        }
        for w in &r.peers.wildcards {
            if let Some((_, a)) = book.wildcards.get(w) {
                named.extend(a.iter().filter(|a| fam(a)));
            }
            for (n, a) in &book.names {
                if n == w || n.ends_with(&format!(".{w}")) {
                    named.extend(a.iter().filter(|a| fam(a)));
                }
            }
        }
        for a in named {
            if !v.iter().any(|(x, _)| *x == a) {
                v.push((a, true));
            }
        }
        v
    }

    /// Whether `h` may ask the firewall's DNS (UDP 53 to the firewall's address on its link).
    fn may_resolve(&self, h: IpAddr) -> bool {
        let Some(fw) = self.fw_addr(h) else {
            return false;
        };
        let pkt = Packet {
            src: h,
            dst: fw,
            to_firewall: true,
            iif: self.iif(h),
            protocol: 17,
            sport: None,
            dport: Some(53),
        };
        oracle::permits(self.policy, self.topo, &pkt, true)
    }

    fn first_host(&self, group: &str) -> Option<IpAddr> {
        self.topo
            .group_hosts
            .get(group)
            .and_then(|h| h.first().copied())
    }

    fn fw_addr(&self, src: IpAddr) -> Option<IpAddr> {
        self.topo.space_of(src).and_then(|s| s.fw_addr(src))
    }

    fn stranger(&self, like: IpAddr) -> Option<IpAddr> {
        self.topo
            .book
            .strangers
            .iter()
            .copied()
            .find(|a| a.is_ipv4() == like.is_ipv4())
    }

    /// Names a group resolves: those of its rules, wildcard test names, listed names under
    /// its wildcards; the generic test name when it uses none.
    fn names_of(&self, group: &str, like: IpAddr) -> Vec<(String, IpAddr)> {
        let book = &self.topo.book;
        let mut v: Vec<(String, IpAddr)> = Vec::new();
        let mut add = |n: &str, addrs: &[IpAddr]| {
            for a in addrs {
                if a.is_ipv4() == like.is_ipv4() && !v.iter().any(|(x, _)| x == n) {
                    v.push((n.to_string(), *a));
                }
            }
        };
        for r in self.policy.rules_of(group) {
            for n in &r.peers.names {
                if let Some(a) = book.names.get(n) {
                    add(n, a);
                }
            }
            for w in &r.peers.wildcards {
                if let Some((t, a)) = book.wildcards.get(w) {
                    add(t, a);
                }
                for (n, a) in &book.names {
                    if n == w || n.ends_with(&format!(".{w}")) {
                        add(n, a);
                    }
                }
            }
        }
        if v.is_empty() {
            if let Some(r) = book.resolver {
                if r.is_ipv4() == like.is_ipv4() {
                    v.push((GENERIC_NAME.to_string(), r));
                }
            }
        }
        v
    }

    #[allow(clippy::too_many_arguments)]
    fn probe(
        &self,
        device: &str,
        r: &Rule,
        kind: Kind,
        src: IpAddr,
        dst: IpAddr,
        to_firewall: bool,
        traffic: Traffic,
    ) -> Probe {
        let sport = if matches!(
            kind,
            Kind::Required | Kind::OtherPort | Kind::OtherPeer | Kind::OtherDevice
        ) {
            r.src_ports.first().map(|p| p.lo)
        } else {
            None
        };
        let phase = match (&kind, &traffic) {
            (Kind::UnresolvedName, _) => 1,
            (Kind::Reversed, Traffic::Ip { .. }) => 1,
            (Kind::Dns, _) => 2,
            _ => 3,
        };
        Probe {
            device: device.to_string(),
            flow: r.provenance(),
            kind,
            phase,
            src,
            dst,
            to_firewall,
            broadcast: false,
            sport,
            traffic,
            expected: Fate::Drop,
            skip: None,
            note: None,
            forged: None,
        }
    }

    /// The next port after the rule's that the IR does not admit for this packet.
    fn other_port(&self, base: &Probe, r: &Rule) -> Option<Probe> {
        let max = r.ports.iter().map(|p| p.hi).max().unwrap_or(40000);
        let mut port = max;
        for _ in 0..64 {
            port = if port == u16::MAX { 1024 } else { port + 1 };
            if port == 53 {
                continue;
            }
            let mut p = base.clone();
            p.kind = Kind::OtherPort;
            p.traffic = match base.traffic {
                Traffic::Tcp { .. } => Traffic::Tcp { port },
                Traffic::Udp { .. } | Traffic::Dns { .. } => Traffic::Udp { port },
                _ => return None,
            };
            p.phase = 3;
            if self.expect(&p) == Fate::Drop {
                return Some(p);
            }
        }
        None
    }

    fn rule(&mut self, gi: usize, ri: usize, r: &Rule) {
        let g = &self.policy.groups[gi];
        let hosts = self
            .topo
            .group_hosts
            .get(&g.id)
            .cloned()
            .unwrap_or_default();
        let Some(h0) = hosts.first().copied() else {
            return;
        };
        let ports = sample_ports(&r.ports);
        if r.peers.firewall {
            if r.initiator == Initiator::Peer {
                return; // the firewall's own connections leave through its open output hook
            }
            self.firewall_rule(&g.id, r, &hosts, &ports, gi, ri);
        }
        if r.peers.prefixes.is_empty() && r.peers.names.is_empty() && r.peers.wildcards.is_empty() {
            return;
        }
        if r.broadcast {
            return; // only broadcasts to the firewall are exercised
        }
        let family_fits = |h: &IpAddr| r.admits_l4_family(h.is_ipv4());
        for h in hosts.iter().filter(|h| family_fits(h)) {
            for (t, named) in self.targets(r, *h) {
                for port in &ports {
                    let tr = match traffic(r, *port) {
                        Ok(t) => t,
                        Err(why) => {
                            let mut p = self.probe(
                                &g.id,
                                r,
                                Kind::Required,
                                *h,
                                t,
                                false,
                                Traffic::Ip {
                                    protocol: r.protocol.number(),
                                },
                            );
                            p.skip = Some(why);
                            self.push(p);
                            break;
                        }
                    };
                    let (src, dst) = match r.initiator {
                        Initiator::Device => (*h, t),
                        Initiator::Peer => (t, *h),
                    };
                    let mut p = self.probe(&g.id, r, Kind::Required, src, dst, false, tr.clone());
                    if named && !self.names_provable {
                        p.skip = Some("names are filled by a resolver on the firewall; this site's DNS is elsewhere (set `services: {dns: firewall}`)".into());
                    } else if named && !self.may_resolve(*h) {
                        p.note = Some("this device may not query the firewall's DNS (its profile has no DNS flow), so the name's set is never filled for it: bind an address instead, or add the DNS flow".into());
                    }
                    self.push(p);
                    if named && self.names_provable && *h == h0 && r.initiator == Initiator::Device
                    {
                        let mut u = self.probe(&g.id, r, Kind::UnresolvedName, src, dst, false, tr);
                        u.phase = 1;
                        self.push(u);
                    }
                }
            }
        }
        // Negatives, from the first host, against the first target.
        if !family_fits(&h0) {
            return;
        }
        let Some((t0, named0)) = self.targets(r, h0).first().copied() else {
            return;
        };
        if named0 && !self.names_provable {
            return;
        }
        let Ok(tr) = traffic(r, ports[0]) else {
            return;
        };
        let (src, dst) = match r.initiator {
            Initiator::Device => (h0, t0),
            Initiator::Peer => (t0, h0),
        };
        let base = self.probe(&g.id, r, Kind::Required, src, dst, false, tr.clone());
        if let Some(p) = self.other_port(&base, r) {
            self.push(p);
        }
        if let Some(s) = self.stranger(h0) {
            let (src, dst) = match r.initiator {
                Initiator::Device => (h0, s),
                Initiator::Peer => (s, h0),
            };
            let p = self.probe(&g.id, r, Kind::OtherPeer, src, dst, false, tr.clone());
            self.push(p);
        }
        if r.initiator == Initiator::Device {
            let p = self.probe(&g.id, r, Kind::Reversed, t0, h0, false, tr.clone());
            self.push(p);
        }
        // Another device's flow: the first other group (starting after this rule's index)
        // whose host the IR does not admit, in another zone than the peer.
        let n = self.policy.groups.len();
        for k in 1..n {
            let other = &self.policy.groups[(gi + ri + k) % n];
            if other.id == g.id {
                continue;
            }
            let Some(oh) = self.first_host(&other.id) else {
                continue;
            };
            if oh.is_ipv4() != h0.is_ipv4() {
                continue;
            }
            let (src, dst) = match r.initiator {
                Initiator::Device => (oh, t0),
                Initiator::Peer => (t0, oh),
            };
            let p = self.probe(&other.id, r, Kind::OtherDevice, src, dst, false, tr.clone());
            let crosses = match (self.topo.space_of(src), self.topo.space_of(dst)) {
                (Some(a), Some(b)) => a.netns != b.netns,
                _ => false,
            };
            if crosses && self.push(p) {
                break;
            }
        }
        // A name no profile lists, resolved through the firewall, opens nothing.
        if named0 && r.initiator == Initiator::Device {
            if let Some((_, addrs)) = &self.topo.book.unlisted {
                if let Some(u) = addrs.iter().copied().find(|a| a.is_ipv4() == h0.is_ipv4()) {
                    let p = self.probe(&g.id, r, Kind::UnlistedName, h0, u, false, tr);
                    self.push(p);
                }
            }
        }
    }

    fn firewall_rule(
        &mut self,
        group: &str,
        r: &Rule,
        hosts: &[IpAddr],
        ports: &[u16],
        gi: usize,
        ri: usize,
    ) {
        let Some(h0) = hosts.first().copied() else {
            return;
        };
        if r.broadcast {
            if r.protocol != IpProto::UDP {
                return;
            }
            for h in hosts.iter().filter(|h| h.is_ipv4()) {
                let mut p = self.probe(
                    group,
                    r,
                    Kind::Required,
                    *h,
                    IpAddr::V4(Ipv4Addr::BROADCAST),
                    true,
                    Traffic::Udp { port: ports[0] },
                );
                p.broadcast = true;
                p.phase = BROADCAST_PHASE;
                self.push(p);
            }
            return;
        }
        // DNS to the firewall, over UDP: the query the lab sends (`Traffic::Dns`).
        let is_dns = r.is_dns_to_firewall() && r.protocol == IpProto::UDP;
        for h in hosts {
            let Some(fw) = self.fw_addr(*h) else {
                continue;
            };
            if is_dns {
                for (name, answer) in self.names_of(group, *h) {
                    let p = self.probe(
                        group,
                        r,
                        Kind::Dns,
                        *h,
                        fw,
                        true,
                        Traffic::Dns { name, answer },
                    );
                    self.push(p);
                }
                if *h == h0 && self.names_provable && self.targets_any_name(group) {
                    if let Some((n, addrs)) = self.topo.book.unlisted.clone() {
                        if let Some(a) = addrs.iter().copied().find(|a| a.is_ipv4() == h.is_ipv4())
                        {
                            let p = self.probe(
                                group,
                                r,
                                Kind::Dns,
                                *h,
                                fw,
                                true,
                                Traffic::Dns { name: n, answer: a },
                            );
                            self.push(p);
                        }
                    }
                }
                continue;
            }
            for port in ports {
                match traffic(r, *port) {
                    Ok(tr) => {
                        let p = self.probe(group, r, Kind::Required, *h, fw, true, tr);
                        self.push(p);
                    }
                    Err(why) => {
                        let mut p = self.probe(
                            group,
                            r,
                            Kind::Required,
                            *h,
                            fw,
                            true,
                            Traffic::Ip {
                                protocol: r.protocol.number(),
                            },
                        );
                        p.skip = Some(why);
                        self.push(p);
                        break;
                    }
                }
            }
        }
        let Some(fw) = self.fw_addr(h0) else {
            return;
        };
        let tr = if is_dns {
            Traffic::Dns {
                name: GENERIC_NAME.into(),
                answer: self.topo.book.resolver.unwrap_or(h0),
            }
        } else {
            match traffic(r, ports[0]) {
                Ok(t) => t,
                Err(_) => return,
            }
        };
        let base = self.probe(group, r, Kind::Required, h0, fw, true, tr.clone());
        if let Some(p) = self.other_port(&base, r) {
            self.push(p);
        }
        let n = self.policy.groups.len();
        for k in 1..n {
            let other = &self.policy.groups[(gi + ri + k) % n];
            let Some(oh) = self.first_host(&other.id) else {
                continue;
            };
            if other.id == group || oh.is_ipv4() != h0.is_ipv4() {
                continue;
            }
            let Some(ofw) = self.fw_addr(oh) else {
                continue;
            };
            let mut p = self.probe(&other.id, r, Kind::OtherDevice, oh, ofw, true, tr.clone());
            p.phase = 3;
            if self.push(p) {
                break;
            }
        }
    }

    fn targets_any_name(&self, group: &str) -> bool {
        self.policy
            .rules_of(group)
            .any(|r| !r.peers.names.is_empty() || !r.peers.wildcards.is_empty())
    }
}

/// All probes for `policy` laid out as `topo`. `names_provable`: the firewall runs the DNS
/// resolver that fills the name sets (the site's `services: {dns: firewall}`).
pub fn generate(policy: &Policy, topo: &Topology, names_provable: bool) -> Vec<Probe> {
    let mut g = Gen {
        policy,
        topo,
        names_provable,
        out: Vec::new(),
        seen: BTreeSet::new(),
    };
    for (gi, group) in policy.groups.iter().enumerate() {
        let rules: Vec<&Rule> = policy.rules_of(&group.id).collect();
        for (ri, r) in rules.into_iter().enumerate() {
            g.rule(gi, ri, r);
        }
    }
    let mut out = g.out;
    out.sort_by_key(|p| p.phase);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_sampled_at_range_ends() {
        let r = [
            PortRange { lo: 3001, hi: 3003 },
            PortRange { lo: 22, hi: 22 },
        ];
        assert_eq!(sample_ports(&r), vec![3001, 3003, 22]);
        assert_eq!(sample_ports(&[]), vec![40000]);
    }
}
