//! The adversarial probes: packets an attacker on some segment of the site can send, each
//! expected to be dropped because of what the site and the profiles *state*
//! ([`crate::facts`]), never because of what the policy IR says. A policy that a mistake
//! before the IR made too wide (an address matched without its interface, DHCP from anyone,
//! a multicast flow compiled to a unicast rule, a narrowed range opened whole, a binding
//! widened) admits one of them, and the lab reports the mismatch.
//!
//! The packets are the required probes' packets (the shape of a flow), changed the way an
//! attacker would:
//!
//! - *spoofed*: a required packet whose source is a device's address, or a peer address inside
//!   a zone (`zone:mgmt`, a management host), forged whole and sent from every other zone's
//!   segment; and the peer-initiated flows of each device from the peers its site file binds
//!   inside a zone, whatever the policy made of them. An address belongs to one zone; seen on another zone's interface it is spoofed.
//!   Each is paired with a *forged* control: the same forged packet sent from its own zone,
//!   which must pass as the required one does (else the forging, not the firewall, would be
//!   what drops the spoofed ones). Spoofed probes are sent last, after the real flows.
//! - *foreign-mac*: a device's broadcast flow (DHCP discovery) from another host of its
//!   segment, with a MAC that is not the device's, when the site gives the device a `mac:`
//!   (the device's own broadcast is then sent from its MAC).
//!   Only where every device of the zone with such a flow has a MAC; otherwise the probe is
//!   listed as skipped with the device that has none (any host of the segment may then send
//!   it, and the output says so).
//! - *unicast*: a broadcast or multicast flow's port sent to unicast addresses through the
//!   firewall (a stranger outside and one inside every other zone), unless a unicast flow of
//!   the device's profile states that port.
//! - *narrowed-port*: where a flow's ports come from a param whose profile default is a range
//!   and the site sets a narrower value, the lowest and highest ports of the documented range
//!   the site left out (unless another flow of the profile states them).
//! - *unbound-peer*: a peer-initiated flow opened from addresses no binding of the device (nor
//!   its profile) names and no device has: a stranger inside each zone, and one outside.
//! - *unstated-broadcast*: a device's broadcast flow to the firewall (DHCP discovery, from
//!   port 68 to 67) sent from the address of every other device of its zone whose profile
//!   states no broadcast on that port: such a device may not send it (RFC 2131's clients
//!   without an address send from 0.0.0.0; only a DHCP client rebinding broadcasts from its
//!   own address).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use portolan_model::ir::PortRange;

use crate::facts::{in_ranges, show_mac, Facts};
use crate::probe::{BROADCAST_PHASE, SPOOF_PHASE};
use crate::probes::{Fate, Forged, Key, Kind, Probe, Traffic};
use crate::topology::{first_host, Topology};

struct Gen<'a> {
    topo: &'a Topology,
    facts: &'a Facts,
    out: Vec<Probe>,
    seen: BTreeSet<Key>,
    /// The IR's negatives by packet: an adversarial probe that is the same packet takes
    /// their row (its expectation now rests on the site's facts too).
    negatives: BTreeMap<Key, usize>,
    upgrades: Vec<(usize, Probe)>,
}

impl Gen<'_> {
    /// Adds a probe. One that is the packet of an IR negative takes that row; one that is the
    /// packet of a required probe is added all the same: the policy requires what the site
    /// forbids, and one of the two rows will say so.
    fn push(&mut self, p: Probe) {
        if let Some(&i) = self.negatives.get(&p.key()) {
            self.upgrades.push((i, p));
        } else if self.seen.insert(p.key()) {
            self.out.push(p);
        }
    }

    fn space_index(&self, a: IpAddr) -> Option<usize> {
        self.topo.host_space.get(&a).copied()
    }

    /// The space of a zone by id.
    fn zone_space(&self, zone: &str) -> Option<usize> {
        self.topo
            .spaces
            .iter()
            .position(|s| s.zone.as_deref() == Some(zone))
    }

    fn forged_from(&self, space: usize, link: Option<(&str, String)>) -> Forged {
        Forged {
            space,
            zone: self.topo.spaces[space].label().to_string(),
            link: link.as_ref().map(|(l, _)| l.to_string()),
            mac: link.map(|(_, m)| m),
        }
    }

    /// Spoofed copies of `p` from every zone but the one its source belongs to, and one forged
    /// control from that zone. The spoofed ones go last (`SPOOF_PHASE`), when the real flows
    /// they copy have their connection-tracking entries: a spoofed packet of a flow that
    /// states its source port, or of a port-less protocol (ESP), has the same tuple as the
    /// real one, and a ruleset that accepts established traffic before it checks interfaces
    /// lets it in. Sent last, that outcome does not depend on the order of sending.
    fn spoof(&mut self, p: &Probe) {
        let Some(home_zone) = self.facts.zone_of(p.src) else {
            return; // an outside peer: it belongs to no zone
        };
        let Some(home) = self.zone_space(home_zone) else {
            return;
        };
        if self.space_index(p.src) != Some(home) {
            return;
        }
        let dst_space = if p.to_firewall || p.broadcast {
            None
        } else {
            self.space_index(p.dst)
        };
        // A broadcast of a device with a MAC is itself sent forged from that MAC (see
        // `mac_scoped`): it needs no control.
        let own_mac = self
            .topo
            .links
            .iter()
            .any(|l| p.broadcast && l.device.as_deref() == Some(p.device.as_str()));
        if !own_mac {
            let mut control = p.clone();
            control.kind = Kind::Forged;
            control.forged = Some(self.forged_from(home, None));
            control.phase = if p.broadcast { BROADCAST_PHASE } else { 3 };
            control.note = None;
            self.push(control);
        }
        for (w, space) in self.topo.spaces.iter().enumerate() {
            if w == home || dst_space == Some(w) || space.fw_addr(p.src).is_none() {
                continue;
            }
            let mut s = p.clone();
            s.kind = Kind::Spoofed;
            s.expected = Fate::Drop;
            s.forged = Some(self.forged_from(w, None));
            s.phase = SPOOF_PHASE;
            s.note = Some(format!(
                "{} belongs to zone {home_zone}; sent from zone {} it is spoofed and must be dropped",
                p.src,
                space.label()
            ));
            self.push(s);
        }
    }

    /// Spoofed packets of the peer-initiated flows of each device, from the peers the site
    /// binds inside a zone (`zone:mgmt`, a management host's address), taken from the site
    /// file rather than from the policy: sent from every other zone, each must be dropped,
    /// whatever the policy made of the binding.
    fn spoof_bound_peers(&mut self) {
        if !self.facts.from_site {
            return;
        }
        for dev in &self.facts.devices {
            let Some(hosts) = self.topo.group_hosts.get(&dev.id) else {
                continue;
            };
            for f in dev.flows_opened_by_peers() {
                let Some(protocol) = f.protocol.number() else {
                    continue;
                };
                let port = dev.flow_ranges(f).first().map(|r| r.lo);
                let traffic = match (protocol, port) {
                    (6, Some(port)) => Traffic::Tcp { port },
                    (17, Some(port)) => Traffic::Udp { port },
                    (6 | 17 | 132, None) | (132, _) => continue,
                    (1 | 58, _) => Traffic::Echo,
                    (p, _) => Traffic::Ip { protocol: p },
                };
                let Some(binding) = dev.bind.get(f.peer()) else {
                    continue;
                };
                for prefix in &binding.prefixes {
                    let src = self
                        .topo
                        .peer_hosts
                        .get(prefix)
                        .copied()
                        .unwrap_or_else(|| first_host(prefix));
                    let Some(zone) = self.facts.zone_of(src) else {
                        continue;
                    };
                    let Some(home) = self.zone_space(zone) else {
                        continue;
                    };
                    let Some(dst) = hosts.iter().copied().find(|h| h.is_ipv4() == src.is_ipv4())
                    else {
                        continue;
                    };
                    if matches!((protocol, src.is_ipv4()), (1, false) | (58, true)) {
                        continue;
                    }
                    for (w, space) in self.topo.spaces.iter().enumerate() {
                        if w == home
                            || Some(w) == self.space_index(dst)
                            || space.fw_addr(src).is_none()
                        {
                            continue;
                        }
                        let p = Probe {
                            device: dev.id.clone(),
                            flow: format!("{}/{}", dev.profile_id(), f.id),
                            kind: Kind::Spoofed,
                            phase: SPOOF_PHASE,
                            src,
                            dst,
                            to_firewall: false,
                            broadcast: false,
                            sport: None,
                            traffic: traffic.clone(),
                            expected: Fate::Drop,
                            skip: None,
                            note: Some(format!(
                                "{src} is bound in zone {zone}; sent from zone {} it is spoofed and must be dropped",
                                space.label()
                            )),
                            forged: Some(self.forged_from(w, None)),
                        };
                        self.push(p);
                    }
                }
            }
        }
    }

    /// A device's broadcast flow sent with its MAC (the required probe, changed in place), and
    /// from a MAC no device has.
    fn mac_scoped(&mut self, p: &mut Probe) -> Option<Probe> {
        let dev = self.facts.device(&p.device)?;
        let home = self.zone_space(&dev.zone)?;
        let link = self
            .topo
            .links
            .iter()
            .find(|l| l.device.as_deref() == Some(dev.id.as_str()))?;
        let foreign = self
            .topo
            .links
            .iter()
            .find(|l| l.space == home && l.device.is_none())?;
        // Sent with the device's address: a raw IP socket fills a zero source address in
        // (raw(7)), so discovery's 0.0.0.0 cannot be forged here. The packet is the device's
        // rebinding broadcast (RFC 2131 section 4.4.5), admitted from its MAC and address; a
        // real 0.0.0.0 discovery (a UDP socket bound to a link without an address) is sent by
        // `tests/least_privilege.rs`.
        p.forged = Some(self.forged_from(home, Some((&link.name, show_mac(&link.mac)))));
        let mut n = p.clone();
        n.kind = Kind::ForeignMac;
        n.expected = Fate::Drop;
        n.forged = Some(self.forged_from(home, Some((&foreign.name, show_mac(&foreign.mac)))));
        // Another host of the segment: the zone's stranger, else one claiming the device's
        // address.
        if let Some(h) = self
            .topo
            .zone_strangers
            .iter()
            .copied()
            .find(|a| a.is_ipv4() == p.src.is_ipv4() && self.space_index(*a) == Some(home))
        {
            n.src = h;
        }
        n.note = Some(format!(
            "device {} has MAC {}; a discovery from {} on its segment is another host's",
            dev.id,
            show_mac(&link.mac),
            show_mac(&foreign.mac)
        ));
        let (protocol, port) = (p.traffic.protocol(true), p.traffic.dport().unwrap_or(0));
        let open: Vec<&str> = self
            .facts
            .devices
            .iter()
            .filter(|d| d.zone == dev.zone && d.macs.is_empty())
            .filter(|d| {
                d.group_flows().any(|f| {
                    f.protocol.number() == Some(protocol) && in_ranges(port, &d.flow_ranges(f))
                })
            })
            .map(|d| d.id.as_str())
            .collect();
        if !open.is_empty() {
            n.skip = Some(format!(
                "{} in zone {} send{} this broadcast without a `mac:`, so any host of the segment may send it",
                open.join(", "),
                dev.zone,
                if open.len() == 1 { "s" } else { "" }
            ));
        }
        Some(n)
    }

    /// The required broadcast `p` sent from the first host of every other device of its zone
    /// whose profile states no broadcast flow on that protocol and port.
    fn unstated_broadcast(&mut self, p: &Probe) {
        let Some(dev) = self.facts.device(&p.device) else {
            return;
        };
        let Some(port) = p.traffic.dport() else {
            return;
        };
        let protocol = p.traffic.protocol(p.src.is_ipv4());
        for other in self.facts.devices.iter().filter(|d| d.zone == dev.zone) {
            let states = other.group_flows().any(|f| {
                f.cast == portolan_model::Cast::Broadcast
                    && f.protocol.number() == Some(protocol)
                    && in_ranges(port, &other.flow_ranges(f))
            });
            if states || other.profile.is_none() {
                continue;
            }
            let Some(src) = self
                .topo
                .group_hosts
                .get(&other.id)
                .and_then(|h| h.iter().copied().find(|a| a.is_ipv4() == p.src.is_ipv4()))
            else {
                continue;
            };
            let mut n = p.clone();
            n.kind = Kind::UnstatedBroadcast;
            n.device = other.id.clone();
            n.src = src;
            n.expected = Fate::Drop;
            n.forged = None;
            n.skip = None;
            n.note = Some(format!(
                "{}'s profile ({}) states no broadcast to {} port {port}; {} of {} does",
                other.id,
                other.profile_id(),
                if protocol == 17 { "UDP" } else { "this" },
                p.flow,
                dev.id
            ));
            self.push(n);
        }
    }

    /// Unicast packets to the ports of each broadcast or multicast flow of each device.
    fn unicast(&mut self) {
        for dev in &self.facts.devices {
            let Some(src) = self
                .topo
                .group_hosts
                .get(&dev.id)
                .and_then(|h| h.first().copied())
            else {
                continue;
            };
            if !dev.ports_known() {
                continue; // a unicast flow may state any port
            }
            let home = self.space_index(src);
            let mut targets: Vec<IpAddr> = self.topo.book.strangers.clone();
            targets.extend(self.topo.zone_strangers.iter().copied());
            targets.retain(|t| t.is_ipv4() == src.is_ipv4() && self.space_index(*t) != home);
            for f in dev.group_flows() {
                let Some(protocol) = f.protocol.number() else {
                    continue;
                };
                let Some(port) = dev.flow_ranges(f).first().map(|r| r.lo) else {
                    continue;
                };
                if in_ranges(port, &dev.stated_unicast(protocol)) {
                    continue;
                }
                let traffic = match protocol {
                    6 => Traffic::Tcp { port },
                    17 => Traffic::Udp { port },
                    _ => continue,
                };
                let sport = dev.flow_src_port(f);
                for t in &targets {
                    let p = Probe {
                        device: dev.id.clone(),
                        flow: format!("{}/{}", dev.profile_id(), f.id),
                        kind: Kind::Unicast,
                        phase: 3,
                        src,
                        dst: *t,
                        to_firewall: false,
                        broadcast: false,
                        sport,
                        traffic: traffic.clone(),
                        expected: Fate::Drop,
                        skip: None,
                        note: Some(format!(
                            "the profile states port {port} only to a {} address",
                            match f.cast {
                                portolan_model::Cast::Multicast => "multicast",
                                _ => "broadcast",
                            }
                        )),
                        forged: None,
                    };
                    self.push(p);
                }
            }
        }
    }

    /// Ports of documented ranges the site narrowed, for the first required probe of a flow.
    fn narrowed(&mut self, p: &Probe) {
        let Some(dev) = self.facts.device(&p.device) else {
            return;
        };
        let Some(f) = dev.flow(&p.flow) else {
            return;
        };
        let protocol = p.traffic.protocol(p.src.is_ipv4());
        let stated = dev.stated_unicast(protocol);
        for id in f.ports.params() {
            if !dev.params.contains_key(id) {
                continue;
            }
            let documented = dev.documented_ranges(id);
            let left_out = |port: u16| in_ranges(port, &documented) && !in_ranges(port, &stated);
            let mut ports: Vec<u16> = Vec::new();
            if let Some(lo) = first_port(&documented, &left_out) {
                ports.push(lo);
            }
            if let Some(hi) = last_port(&documented, &left_out) {
                if !ports.contains(&hi) {
                    ports.push(hi);
                }
            }
            for port in ports {
                let traffic = match p.traffic {
                    Traffic::Tcp { .. } => Traffic::Tcp { port },
                    Traffic::Udp { .. } => Traffic::Udp { port },
                    _ => continue,
                };
                let mut n = p.clone();
                n.kind = Kind::NarrowedPort;
                n.expected = Fate::Drop;
                n.traffic = traffic;
                n.note = Some(format!(
                    "the profile documents `{id}` as {}; the site narrowed it to {}",
                    show_ranges(&documented),
                    show_ranges(&dev.param_ranges(id))
                ));
                self.push(n);
            }
        }
    }

    /// The required peer-initiated probe `p`, opened from addresses the device binds nowhere.
    fn unbound(&mut self, p: &Probe) {
        if !self.facts.from_site {
            return; // the bindings are not known
        }
        let Some(dev) = self.facts.device(&p.device) else {
            return;
        };
        let is_host = |a: IpAddr| {
            self.topo
                .group_hosts
                .get(&dev.id)
                .is_some_and(|h| h.contains(&a))
        };
        if p.to_firewall || p.broadcast || !is_host(p.dst) || is_host(p.src) {
            return;
        }
        let protocol = p.traffic.protocol(p.src.is_ipv4());
        let port = p.traffic.dport();
        let dst_space = self.space_index(p.dst);
        // The required probe's own peer first: the policy may name a peer the site does not.
        let mut cands: Vec<IpAddr> = vec![p.src];
        cands.extend(self.topo.zone_strangers.iter().copied());
        cands.extend(self.topo.book.strangers.iter().copied());
        for c in cands {
            if c.is_ipv4() != p.src.is_ipv4()
                || self.space_index(c) == dst_space
                || dev.lets_open(c, protocol, port)
                || self.facts.is_device(c)
            {
                continue;
            }
            let mut n = p.clone();
            n.kind = Kind::UnboundPeer;
            n.expected = Fate::Drop;
            n.src = c;
            n.note = Some(format!(
                "no binding of {} names {c}; only bound peers may open {}",
                dev.id, p.flow
            ));
            self.push(n);
        }
    }
}

fn first_port(r: &[PortRange], ok: &dyn Fn(u16) -> bool) -> Option<u16> {
    r.iter()
        .filter_map(|x| (x.lo..=x.hi).take(4096).find(|p| ok(*p)))
        .min()
}

fn last_port(r: &[PortRange], ok: &dyn Fn(u16) -> bool) -> Option<u16> {
    r.iter()
        .filter_map(|x| (x.lo..=x.hi).rev().take(4096).find(|p| ok(*p)))
        .max()
}

fn show_ranges(r: &[PortRange]) -> String {
    r.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The adversarial probes for `probes` (the required ones are read; a broadcast one of a
/// device with a MAC is changed to be sent with that MAC).
pub fn generate(topo: &Topology, facts: &Facts, probes: &mut [Probe]) -> Vec<Probe> {
    let mut g = Gen {
        topo,
        facts,
        out: Vec::new(),
        seen: BTreeSet::new(),
        negatives: probes
            .iter()
            .enumerate()
            .filter(|(_, p)| p.expected == Fate::Drop && !p.kind.adversarial())
            .map(|(i, p)| (p.key(), i))
            .collect(),
        upgrades: Vec::new(),
    };
    let mut flows_seen: BTreeSet<(String, String, bool)> = BTreeSet::new();
    for p in probes.iter_mut() {
        let required = matches!(p.kind, Kind::Required | Kind::Dns);
        if !required || p.skip.is_some() || p.expected != Fate::Pass {
            continue;
        }
        g.spoof(p);
        if p.broadcast {
            if p.to_firewall {
                g.unstated_broadcast(p);
            }
            if let Some(n) = g.mac_scoped(p) {
                g.push(n);
            }
        }
        let inbound = topo
            .group_hosts
            .get(&p.device)
            .is_some_and(|h| h.contains(&p.dst));
        if flows_seen.insert((p.device.clone(), p.flow.clone(), inbound)) {
            g.narrowed(p);
            g.unbound(p);
        }
    }
    g.unicast();
    g.spoof_bound_peers();
    for (i, p) in std::mem::take(&mut g.upgrades) {
        if let Some(base) = probes.get_mut(i) {
            if !base.kind.adversarial() {
                base.kind = p.kind;
                base.note = p.note;
            }
        }
    }
    g.out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use portolan_model::catalog::Catalog;
    use portolan_model::compile::{site_text, ProfileSource};
    use portolan_model::ir::Policy;
    use portolan_model::Profile;

    use super::*;
    use crate::topology::plan_with;

    struct Shipped(Catalog);

    impl ProfileSource for Shipped {
        fn profile(&self, name: &str) -> Result<Profile, portolan_model::ProfileError> {
            self.0
                .get(name)
                .cloned()
                .ok_or_else(|| portolan_model::ProfileError::NotInCatalog { known: Vec::new() })
        }
    }

    fn example() -> (Policy, Facts) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/site.yaml");
        let text = std::fs::read_to_string(&path).expect("examples/site.yaml");
        let cat = Shipped(Catalog::embedded().expect("catalog"));
        let policy = match site_text("site.yaml", &text, &cat) {
            Ok(l) => l.value,
            Err(d) => panic!("{d:?}"),
        };
        let facts = Facts::from_site(&text, &policy).expect("facts");
        (policy, facts)
    }

    /// The catalog, and the lab's fixture profile by its file name.
    struct WithFixture(Catalog);

    impl ProfileSource for WithFixture {
        fn profile(&self, name: &str) -> Result<Profile, portolan_model::ProfileError> {
            if name == "attack-device.yaml" {
                let path =
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/attack-device.yaml");
                let text = std::fs::read_to_string(&path).map_err(|source| {
                    portolan_model::ProfileError::Unreadable {
                        path: path.clone(),
                        source,
                    }
                })?;
                return portolan_model::validate::profile_text(name, &text)
                    .map(|l| l.value)
                    .map_err(|diagnostics| portolan_model::ProfileError::Invalid {
                        path,
                        diagnostics,
                    });
            }
            self.0
                .get(name)
                .cloned()
                .ok_or_else(|| portolan_model::ProfileError::NotInCatalog { known: Vec::new() })
        }
    }

    /// A device that gives its MAC gets a foreign-MAC probe; while another device of its zone
    /// sends the same broadcast without a MAC, that probe is listed as skipped, naming it.
    #[test]
    fn foreign_mac_needs_every_device_of_the_zone_to_give_its_mac() {
        let site = |second_mac: &str| {
            format!(
                "portolan: 1
site: macs
zones:
  - {{id: field, interface: lan0, networks: [10.20.0.0/24]}}
  - {{id: mgmt, interface: mgmt0, networks: [10.99.0.0/24]}}
services:
  dhcp: firewall
devices:
  - id: first
    profile: attack-device.yaml
    zone: field
    addresses: [10.20.0.7]
    mac: \"02:00:5e:10:00:07\"
    bind: {{collector: [10.99.0.50], operator: [10.99.0.40], neighbours: [zone:mgmt]}}
  - id: second
    profile: attack-device.yaml
    zone: field
    addresses: [10.20.0.8]{second_mac}
    bind: {{collector: [10.99.0.50], operator: [10.99.0.40], neighbours: [zone:mgmt]}}
"
            )
        };
        let foreign = |text: &str| {
            let cat = WithFixture(Catalog::embedded().expect("catalog"));
            let policy = match site_text("macs.yaml", text, &cat) {
                Ok(l) => l.value,
                Err(d) => panic!("{d:?}"),
            };
            let facts = Facts::from_site(text, &policy).expect("facts");
            probes(&policy, &facts)
                .into_iter()
                .filter(|p| p.kind == Kind::ForeignMac && p.device == "first")
                .collect::<Vec<_>>()
        };
        let open = foreign(&site(""));
        assert_eq!(open.len(), 1);
        let why = open[0].skip.as_deref().expect("skipped");
        assert!(why.contains("second") && why.contains("mac"), "{why}");
        let closed = foreign(&site("\n    mac: \"02:00:5e:10:00:08\""));
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].skip, None);
        assert_eq!(closed[0].expected, Fate::Drop);
        let f = closed[0].forged.as_ref().expect("forged");
        assert_ne!(f.mac.as_deref(), Some("02:00:5e:10:00:07"));
        assert_ne!(f.mac.as_deref(), Some("02:00:5e:10:00:08"));
    }

    fn probes(policy: &Policy, facts: &Facts) -> Vec<Probe> {
        let topo = plan_with(policy, facts, "t").expect("plan");
        crate::lab::probes_for(policy, &topo, facts, true)
    }

    /// The case: the management zone's address sent from the WAN side to the WCC
    /// Lite's SNMP port is a spoofed probe that must drop, whatever the IR says. Widening the
    /// IR's SNMP peers to every address (a mistake before the IR) leaves it expected dropped,
    /// and the probe from a stranger outside, which the IR now admits, stays expected dropped
    /// because no binding names the stranger.
    #[test]
    fn adversarial_expectations_do_not_follow_the_ir() {
        let (policy, facts) = example();
        let spoofed_snmp = |ps: &[Probe]| {
            ps.iter()
                .filter(|p| {
                    p.kind == Kind::Spoofed
                        && p.src.to_string() == "10.99.0.1"
                        && p.dst.to_string() == "10.20.0.5"
                        && p.traffic == Traffic::Udp { port: 161 }
                        && p.forged.as_ref().is_some_and(|f| f.zone == "wan")
                })
                .map(|p| p.expected)
                .collect::<Vec<_>>()
        };
        let before = probes(&policy, &facts);
        assert_eq!(spoofed_snmp(&before), vec![Fate::Drop]);
        let from_outside = |ps: &[Probe], k: Kind| {
            ps.iter().any(|p| {
                p.kind == k
                    && p.dst.to_string() == "10.20.0.5"
                    && p.traffic == Traffic::Udp { port: 161 }
                    && p.expected == Fate::Drop
                    && !p.src.to_string().starts_with("10.")
            })
        };
        assert!(from_outside(&before, Kind::UnboundPeer));

        let mut wide = policy.clone();
        for r in wide
            .rules
            .iter_mut()
            .filter(|r| r.group == "wcc-lite" && r.flow == "snmp")
        {
            r.peers.prefixes = vec!["0.0.0.0/0".parse().expect("prefix")];
        }
        let after = probes(&wide, &facts);
        assert_eq!(spoofed_snmp(&after), vec![Fate::Drop]);
        assert!(
            !from_outside(&after, Kind::OtherPeer),
            "the IR admits it now"
        );
        assert!(from_outside(&after, Kind::UnboundPeer), "the site does not");
        for p in after.iter().filter(|p| p.kind.adversarial()) {
            assert_eq!(p.expected, Fate::Drop, "{p:?}");
        }
    }

    /// The issue-12 case: the example site's devices whose profiles have no DHCP flow
    /// (izuma-devices 10.20.0.64/28, d4-sensors 10.20.0.128/26, wcc-lite 10.20.0.5; the lab
    /// sends from a prefix's first and last hosts) send the DHCP discovery of lrr-ipsec and
    /// oscar-gateways from their own addresses: each must drop, also when the IR admits DHCP
    /// broadcasts from every group (the mistake the emitter made), while lrr-station, whose
    /// profile has DHCP (i11), sends none.
    #[test]
    fn dhcp_broadcasts_from_devices_without_dhcp_must_drop() {
        let (policy, facts) = example();
        let unstated = |ps: &[Probe]| {
            let mut v: Vec<(String, String, Fate)> = ps
                .iter()
                .filter(|p| {
                    p.kind == Kind::UnstatedBroadcast
                        && p.broadcast
                        && p.dst.to_string() == "255.255.255.255"
                        && p.traffic == Traffic::Udp { port: 67 }
                        && p.sport == Some(68)
                })
                .map(|p| (p.device.clone(), p.src.to_string(), p.expected))
                .collect();
            v.sort();
            v.dedup();
            v
        };
        let want: Vec<(String, String, Fate)> = [
            ("d4-sensors", "10.20.0.129"),
            ("izuma-devices", "10.20.0.65"),
            ("wcc-lite", "10.20.0.5"),
        ]
        .iter()
        .map(|(d, a)| (d.to_string(), a.to_string(), Fate::Drop))
        .collect();
        assert_eq!(unstated(&probes(&policy, &facts)), want);
        // The IR widened: every group may broadcast DHCP to the firewall.
        let mut wide = policy.clone();
        let dhcp = policy
            .rules
            .iter()
            .find(|r| r.is_dhcp_broadcast())
            .expect("a DHCP broadcast rule")
            .clone();
        for g in &policy.groups {
            let mut r = dhcp.clone();
            r.group = g.id.clone();
            wide.rules.push(r);
        }
        assert_eq!(unstated(&probes(&wide, &facts)), want);
    }

    /// Every spoofed probe is sent from another zone than the one its source belongs to, and
    /// every one has a forged control from that zone.
    #[test]
    fn spoofed_probes_leave_from_a_wrong_zone() {
        let (policy, facts) = example();
        let ps = probes(&policy, &facts);
        let spoofed: Vec<&Probe> = ps.iter().filter(|p| p.kind == Kind::Spoofed).collect();
        assert!(spoofed.len() > 50, "{}", spoofed.len());
        for s in &spoofed {
            let home = facts.zone_of(s.src).expect("a zone's address");
            let from = s.forged.as_ref().expect("forged");
            assert_ne!(from.zone, home, "{s:?}");
            assert_eq!(s.phase, SPOOF_PHASE);
            assert!(
                ps.iter().any(|c| c.kind == Kind::Forged
                    && (c.src, c.dst, &c.traffic) == (s.src, s.dst, &s.traffic)
                    && c.forged.as_ref().is_some_and(|f| f.zone == home)),
                "no control for {s:?}"
            );
        }
    }
}
