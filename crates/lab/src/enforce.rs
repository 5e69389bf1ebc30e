//! The lab under `portolan enforce` (`portolan lab SITE --dns enforce`): the firewall's
//! resolver is Portolan's forwarder instead of dnsmasq, the ruleset is the enforce policy
//! (per-device `device . peer` sets), and what a name opens is opened for the device that
//! asked only. Two things change in the matrix:
//!
//! - **Per-device expectations.** A required flow to a name's address passes only from a
//!   device that asked the firewall's DNS for a name its rule admits (a `dns` probe of the
//!   same source and answer); from any other device it is expected dropped ([`per_device`]).
//! - **`unresolved-device` probes** ([`silent_probes`]), adversarial: one more address of each
//!   device group that has room for one (a second device of the same profile, with the same
//!   rules) never asks the DNS and sends every name-based flow of its group to the address
//!   the group's resolving devices opened. The site says this address is a device of its own;
//!   per-device scoping says it gains nothing from its neighbours' answers, so each is
//!   expected dropped. (Under dnsmasq's shared name sets the same packets pass: these probes
//!   are made in enforce mode only.) A required probe of the group to an address, not a
//!   name, is sent from the same silent address as a control: it must pass.

use std::collections::BTreeSet;
use std::net::IpAddr;

use portolan_model::ir::{Initiator, Policy, Rule};

use crate::alloc::{first_host, usable, with_len};
use crate::oracle::peers_contain;
use crate::probes::{Fate, Kind, Probe, Traffic};
use crate::topology::Topology;

/// How many addresses after a prefix's first host are tried for a silent device.
const SILENT_TRIES: u32 = 64;

/// Every address the topology already uses (hosts, peers, names, the firewall's and the
/// spaces' own).
fn used(topo: &Topology) -> BTreeSet<IpAddr> {
    let mut u: BTreeSet<IpAddr> = topo.host_space.keys().copied().collect();
    for s in &topo.spaces {
        u.extend(s.fw_addrs.iter().map(|a| a.addr()));
        u.extend(s.ns_addrs.iter().map(|a| a.addr()));
    }
    u
}

fn nth(a: IpAddr, k: u32) -> Option<IpAddr> {
    match a {
        IpAddr::V4(v) => u32::from(v).checked_add(k).map(|x| IpAddr::V4(x.into())),
        IpAddr::V6(v) => u128::from(v)
            .checked_add(u128::from(k))
            .map(|x| IpAddr::V6(x.into())),
    }
}

/// Whether `r` is device-initiated and names hostnames or wildcard domains.
fn named(r: &Rule) -> bool {
    r.initiator == Initiator::Device && (!r.peers.names.is_empty() || !r.peers.wildcards.is_empty())
}

/// Adds one silent device address to each group with a name-based rule whose first prefix
/// has a free address in the zone network its first lab host sits in, on that host's link;
/// returns (group, address).
pub fn add_silent_hosts(policy: &Policy, topo: &mut Topology) -> Vec<(String, IpAddr)> {
    let mut out = Vec::new();
    for g in &policy.groups {
        if !policy.rules_of(&g.id).any(named) {
            continue;
        }
        let (Some(net), Some(h0)) = (
            g.addresses.first(),
            topo.group_hosts.get(&g.id).and_then(|h| h.first().copied()),
        ) else {
            continue;
        };
        let Some(si) = topo.host_space.get(&h0).copied() else {
            continue;
        };
        // The prefix length h0 has on its link: a zone network's (not a host route).
        let Some(len) = topo.spaces[si]
            .ns_addrs
            .iter()
            .find(|a| a.addr() == h0)
            .map(|a| a.prefix_len())
        else {
            continue;
        };
        if len == if h0.is_ipv4() { 32 } else { 128 } {
            continue;
        }
        let taken = used(topo);
        let link = topo.spaces[si]
            .ns_addrs
            .iter()
            .find(|a| a.addr() == h0)
            .map(|a| a.trunc());
        let pick = (1..SILENT_TRIES)
            .filter_map(|k| nth(first_host(net), k))
            .find(|a| {
                net.contains(a)
                    && usable(*a)
                    && !taken.contains(a)
                    && link.is_some_and(|l| l.contains(a))
                    && policy
                        .groups
                        .iter()
                        .filter(|o| o.id != g.id)
                        .all(|o| !o.addresses.iter().any(|n| n.contains(a)))
            });
        let Some(a) = pick else { continue };
        let Ok(with) = with_len(a, len) else { continue };
        topo.spaces[si].ns_addrs.push(with);
        topo.host_space.insert(a, si);
        out.push((g.id.clone(), a));
    }
    out
}

/// The `unresolved-device` probes: each name-based flow of a group that its resolving devices
/// send (a required probe from the group's first host to a name's address), sent again from
/// the group's silent address, expected dropped.
pub fn silent_probes(probes: &[Probe], silent: &[(String, IpAddr)]) -> Vec<Probe> {
    let resolved: BTreeSet<(IpAddr, IpAddr)> = resolved_pairs(probes);
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for (group, s) in silent {
        for p in probes.iter().filter(|p| {
            p.kind == Kind::Required
                && p.device == *group
                && p.skip.is_none()
                && !p.to_firewall
                && resolved.contains(&(p.src, p.dst))
        }) {
            let mut q = p.clone();
            q.kind = Kind::UnresolvedDevice;
            q.src = *s;
            q.expected = Fate::Drop;
            q.note = Some(format!(
                "{s} is another device of {group} that never asked the firewall's DNS: under enforce, what {} resolved opens nothing for it",
                p.src
            ));
            if seen.insert(q.key()) {
                out.push(q);
            }
        }
        // The control: a flow of the group to an address (not a name) passes from the silent
        // device, so its drops above come from the per-device sets, not from its link.
        if let Some(p) = probes.iter().find(|p| {
            p.kind == Kind::Required
                && p.device == *group
                && p.skip.is_none()
                && !p.to_firewall
                && p.forged.is_none()
                && p.expected == Fate::Pass
                && matches!(p.traffic, Traffic::Tcp { .. } | Traffic::Udp { .. })
                && !resolved.iter().any(|(_, a)| *a == p.dst)
        }) {
            let mut q = p.clone();
            q.src = *s;
            q.note = Some(format!(
                "control: {s}, another device of {group}, reaches an address its rules name"
            ));
            if seen.insert(q.key()) {
                out.push(q);
            }
        }
    }
    out
}

/// (device, address) for every DNS probe: the device asks, the answer is the address.
fn resolved_pairs(probes: &[Probe]) -> BTreeSet<(IpAddr, IpAddr)> {
    probes
        .iter()
        .filter(|p| p.skip.is_none())
        .filter_map(|p| match &p.traffic {
            Traffic::Dns { answer, .. } if p.kind == Kind::Dns => Some((p.src, *answer)),
            _ => None,
        })
        .collect()
}

/// Per-device expectations: a required or other-device probe to an address its rule admits
/// only through a name passes only when its source resolved that address; else it is expected
/// dropped (returns how many changed).
pub fn per_device(policy: &Policy, topo: &Topology, probes: &mut [Probe]) -> usize {
    let resolved = resolved_pairs(probes);
    let mut changed = 0;
    for p in probes.iter_mut() {
        if p.expected != Fate::Pass
            || p.to_firewall
            || p.forged.is_some()
            || !matches!(p.kind, Kind::Required)
        {
            continue;
        }
        let Some(r) = policy
            .rules_of(&p.device)
            .find(|r| r.provenance() == p.flow && r.initiator == Initiator::Device)
        else {
            continue;
        };
        let by_name_only =
            !peers_contain(r, topo, p.dst, false) && peers_contain(r, topo, p.dst, true);
        if by_name_only && !resolved.contains(&(p.src, p.dst)) {
            p.expected = Fate::Drop;
            p.note = Some(
                "under enforce a name opens only for the device that asked: this one never asks the firewall's DNS for it (its profile has no DNS flow, or the lab does not resolve it from here)"
                    .into(),
            );
            changed += 1;
        }
    }
    changed
}
