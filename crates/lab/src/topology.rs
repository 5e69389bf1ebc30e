//! The lab's address plan, computed from the policy IR alone (no I/O): which network
//! namespaces exist, which addresses live in each, how the firewall namespace routes between
//! them, and the lab addresses that stand in for names, wildcard domains and strangers.
//!
//! - One *space* (namespace) per zone that holds something: the devices of the zone (a prefix
//!   group is represented by its first and last usable host) and the peers whose addresses lie
//!   inside the zone's networks (`zone:mgmt` bindings). Its link to the firewall namespace is a
//!   veth pair whose firewall end carries the zone's `interface` name, as the emitted rules
//!   match `iifname`.
//! - One *outside* space: the first zone without networks (the "wan"), or an extra `peers`
//!   namespace. Every other peer lives there, with the addresses the lab gives to hostnames,
//!   to a test name under each wildcard domain, to one name the profiles do not list, to a
//!   stranger (an address no rule names) and to the upstream DNS server.
//! - The firewall takes the highest free host of each zone network that holds something;
//!   hosts outside every zone network reach it over a transfer /30 (or /64) from 100.64.0.0/10
//!   (or fd70:6f72:746f::/48) with a host route each.
//! - For the adversarial probes: a *zone stranger* in each zone network (an address no device
//!   has and no narrower peer names), and for each device the site gives a MAC a macvlan in
//!   its zone's space with that MAC, plus one with a MAC no device has.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use portolan_model::ir::{Policy, Rule};

pub use crate::alloc::{first_host, last_host, usable};
use crate::alloc::{highest_free, host, offset, peer_host, v4, with_len, Alloc};
use crate::error::{Error, Result};
use crate::facts::{Facts, Mac};

/// The interface name every space uses for its end of the link to the firewall.
pub const NS_IF: &str = "eth0";

/// A namespace of the lab other than the firewall.
#[derive(Clone, Debug)]
pub struct Space {
    /// The zone it stands for; `None` for the extra `peers` space.
    pub zone: Option<String>,
    pub netns: String,
    /// The firewall's end of the link (the zone's `interface`).
    pub fw_if: String,
    /// The firewall's addresses on this link.
    pub fw_addrs: Vec<IpNet>,
    /// The addresses inside the space (hosts and the transfer end).
    pub ns_addrs: Vec<IpNet>,
    /// Host routes the firewall needs towards this space: (host, via).
    pub fw_routes: Vec<(IpAddr, IpAddr)>,
}

impl Space {
    /// The firewall's address on this link in the family of `like`.
    pub fn fw_addr(&self, like: IpAddr) -> Option<IpAddr> {
        self.fw_addrs
            .iter()
            .map(IpNet::addr)
            .find(|a| a.is_ipv4() == like.is_ipv4())
    }

    /// The default gateway of the space in the family of `like`.
    pub fn gateway(&self, like: IpAddr) -> Option<IpAddr> {
        self.fw_addr(like)
    }

    pub fn label(&self) -> &str {
        self.zone.as_deref().unwrap_or("peers")
    }
}

/// Lab addresses for DNS-driven peers and for negative tests.
#[derive(Clone, Debug, Default)]
pub struct Book {
    /// Each listed hostname → its lab addresses (one per family needed).
    pub names: BTreeMap<String, Vec<IpAddr>>,
    /// Each wildcard domain → (test name under it, its lab addresses).
    pub wildcards: BTreeMap<String, (String, Vec<IpAddr>)>,
    /// A name no profile lists, resolvable through the firewall: must not open anything.
    pub unlisted: Option<(String, Vec<IpAddr>)>,
    /// Addresses no rule names, one per family.
    pub strangers: Vec<IpAddr>,
    /// The upstream DNS server the firewall's resolver forwards to.
    pub resolver: Option<IpAddr>,
}

/// The name a lab uses under a wildcard domain.
pub fn wildcard_test_name(domain: &str) -> String {
    format!("portolan-lab.{domain}")
}

/// The name no profile lists.
pub const UNLISTED_NAME: &str = "unlisted.portolan-lab.invalid";
/// A name every resolver in the lab answers, for devices that use DNS but no listed name.
pub const GENERIC_NAME: &str = "resolver-check.portolan-lab.invalid";

#[derive(Clone, Debug)]
pub struct Topology {
    pub prefix: String,
    pub fw: String,
    pub spaces: Vec<Space>,
    /// Index of the outside space in `spaces`.
    pub outside: usize,
    /// Where each lab host lives (index into `spaces`).
    pub host_space: BTreeMap<IpAddr, usize>,
    /// The lab hosts of each device group (first and last usable of a prefix).
    pub group_hosts: BTreeMap<String, Vec<IpAddr>>,
    /// The lab host standing for each static peer prefix; absent when none can stand for it
    /// (multicast, loopback).
    pub peer_hosts: BTreeMap<IpNet, IpAddr>,
    pub book: Book,
    /// A host inside each zone network that no device has and no narrower peer names.
    pub zone_strangers: Vec<IpAddr>,
    /// Links that send with a chosen MAC.
    pub links: Vec<Link>,
}

/// A macvlan on a space's end of its veth, sending with `mac`.
#[derive(Clone, Debug)]
pub struct Link {
    pub space: usize,
    pub name: String,
    pub mac: Mac,
    /// The device whose MAC it is; `None`: a MAC no device of the site has.
    pub device: Option<String>,
}

impl Topology {
    pub fn space_of(&self, a: IpAddr) -> Option<&Space> {
        self.host_space.get(&a).map(|i| &self.spaces[*i])
    }

    /// Every namespace name, the firewall first.
    pub fn namespaces(&self) -> Vec<String> {
        let mut v = vec![self.fw.clone()];
        v.extend(self.spaces.iter().map(|s| s.netns.clone()));
        v
    }

    /// Every name the lab's upstream DNS server answers, with its addresses.
    pub fn dns_answers(&self) -> Vec<(String, Vec<IpAddr>)> {
        let mut v: Vec<(String, Vec<IpAddr>)> = self
            .book
            .names
            .iter()
            .map(|(n, a)| (n.clone(), a.clone()))
            .collect();
        for (d, (_, a)) in &self.book.wildcards {
            v.push((d.clone(), a.clone()));
        }
        if let Some((n, a)) = &self.book.unlisted {
            v.push((n.clone(), a.clone()));
        }
        if let Some(r) = self.book.resolver {
            v.push((GENERIC_NAME.to_string(), vec![r]));
        }
        v
    }
}

fn check_ifname(name: &str) -> Result<String> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(name.to_string())
    } else {
        Err(Error::Plan(format!(
            "interface name `{name}` cannot be used in a lab"
        )))
    }
}

/// Prefixes the lab's pools must not hand out: zone networks, device addresses, and peers
/// narrower than a /8 (or /16); wider ones (`any`) would leave nothing.
fn avoid_list(policy: &Policy) -> Vec<IpNet> {
    let mut avoid: Vec<IpNet> = Vec::new();
    for z in &policy.zones {
        avoid.extend(z.networks.iter().copied());
    }
    for g in &policy.groups {
        avoid.extend(g.addresses.iter().copied());
    }
    for r in &policy.rules {
        for p in &r.peers.prefixes {
            let narrow = match p {
                IpNet::V4(n) => n.prefix_len() >= 8,
                IpNet::V6(n) => n.prefix_len() >= 16,
            };
            if narrow {
                avoid.push(*p);
            }
        }
    }
    avoid
}

/// One space per zone, in order, and the index of the outside one: the first zone without
/// networks, or an extra `peers` space.
fn zone_spaces(policy: &Policy, prefix: &str) -> Result<(Vec<Space>, usize)> {
    let mut spaces: Vec<Space> = Vec::new();
    for (i, z) in policy.zones.iter().enumerate() {
        let fw_if = match &z.interface {
            Some(n) => check_ifname(n)?,
            None => format!("lz{i}"),
        };
        spaces.push(Space {
            zone: Some(z.id.clone()),
            netns: format!("{prefix}-z{i}"),
            fw_if,
            fw_addrs: Vec::new(),
            ns_addrs: Vec::new(),
            fw_routes: Vec::new(),
        });
    }
    let outside = match policy.zones.iter().position(|z| z.networks.is_empty()) {
        Some(i) => i,
        None => {
            spaces.push(Space {
                zone: None,
                netns: format!("{prefix}-peers"),
                fw_if: "lpeers".into(),
                fw_addrs: Vec::new(),
                ns_addrs: Vec::new(),
                fw_routes: Vec::new(),
            });
            spaces.len() - 1
        }
    };
    Ok((spaces, outside))
}

/// The lab hosts of each device group (first and last usable host of its first prefix, the
/// first of the next two), placed in the group's zone.
fn place_devices(
    policy: &Policy,
    alloc: &mut Alloc,
    host_space: &mut BTreeMap<IpAddr, usize>,
) -> Result<BTreeMap<String, Vec<IpAddr>>> {
    let mut group_hosts: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
    for g in &policy.groups {
        let zi = policy
            .zones
            .iter()
            .position(|z| z.id == g.zone)
            .ok_or_else(|| Error::Plan(format!("group {} is in unknown zone {}", g.id, g.zone)))?;
        let mut hosts: Vec<IpAddr> = Vec::new();
        for (k, a) in g.addresses.iter().enumerate().take(3) {
            let mut cand = vec![first_host(a)];
            if k == 0 {
                cand.push(last_host(a));
            }
            for h in cand {
                if usable(h) && !hosts.contains(&h) && hosts.len() < 3 {
                    hosts.push(h);
                }
            }
        }
        if hosts.is_empty() {
            return Err(Error::Plan(format!(
                "group {} has no usable unicast address",
                g.id
            )));
        }
        for h in &hosts {
            if let Some(prev) = host_space.insert(*h, zi) {
                if prev != zi {
                    return Err(Error::Plan(format!("address {h} is in two zones")));
                }
            }
            alloc.taken.insert(*h);
        }
        group_hosts.insert(g.id.clone(), hosts);
    }
    Ok(group_hosts)
}

/// The lab host standing for each static peer prefix, in the zone whose networks hold it or
/// outside.
fn place_peers(
    policy: &Policy,
    alloc: &mut Alloc,
    host_space: &mut BTreeMap<IpAddr, usize>,
    outside: usize,
) -> BTreeMap<IpNet, IpAddr> {
    let mut peer_hosts: BTreeMap<IpNet, IpAddr> = BTreeMap::new();
    let prefixes: BTreeSet<IpNet> = policy
        .rules
        .iter()
        .flat_map(|r| r.peers.prefixes.iter().copied())
        .collect();
    for p in prefixes {
        let Some(h) = peer_host(&p, alloc) else {
            continue;
        };
        peer_hosts.insert(p, h);
        if host_space.contains_key(&h) {
            continue;
        }
        let zi = policy
            .zones
            .iter()
            .position(|z| z.networks.iter().any(|n| n.contains(&h)))
            .unwrap_or(outside);
        host_space.insert(h, zi);
        alloc.taken.insert(h);
    }
    peer_hosts
}

/// Pool addresses for one name per family in `fams` (IPv6 first, as `pool` is asked).
fn pooled(alloc: &mut Alloc, fams: &BTreeSet<bool>) -> Result<Vec<IpAddr>> {
    let mut addrs = Vec::new();
    for f in fams.iter().rev() {
        addrs.push(alloc.pool(*f)?);
    }
    Ok(addrs)
}

/// Lab addresses for names, wildcard domains, the unlisted name, strangers and the upstream
/// resolver, each in the family of the groups that use it.
fn address_book(
    policy: &Policy,
    alloc: &mut Alloc,
    group_hosts: &BTreeMap<String, Vec<IpAddr>>,
    all_fams: &BTreeSet<bool>,
) -> Result<Book> {
    let mut fams_of_group: BTreeMap<&str, BTreeSet<bool>> = BTreeMap::new();
    for (g, hs) in group_hosts {
        fams_of_group
            .entry(g.as_str())
            .or_default()
            .extend(hs.iter().map(|h| v4(*h)));
    }
    let mut name_fams: BTreeMap<String, BTreeSet<bool>> = BTreeMap::new();
    let mut wild_fams: BTreeMap<String, BTreeSet<bool>> = BTreeMap::new();
    for r in &policy.rules {
        let fams = fams_of_group
            .get(r.group.as_str())
            .cloned()
            .unwrap_or_default();
        for n in &r.peers.names {
            name_fams.entry(n.clone()).or_default().extend(&fams);
        }
        for w in &r.peers.wildcards {
            wild_fams.entry(w.clone()).or_default().extend(&fams);
        }
    }
    let mut book = Book::default();
    let mut name_fams_all: BTreeSet<bool> = BTreeSet::new();
    for (n, fams) in &name_fams {
        name_fams_all.extend(fams);
        book.names.insert(n.clone(), pooled(alloc, fams)?);
    }
    for (w, fams) in &wild_fams {
        name_fams_all.extend(fams);
        book.wildcards
            .insert(w.clone(), (wildcard_test_name(w), pooled(alloc, fams)?));
    }
    if !name_fams_all.is_empty() {
        book.unlisted = Some((UNLISTED_NAME.to_string(), pooled(alloc, &name_fams_all)?));
    }
    book.strangers = pooled(alloc, all_fams)?;
    let dns_on_firewall = policy.rules.iter().any(Rule::is_dns_to_firewall);
    if dns_on_firewall || !name_fams_all.is_empty() {
        let f = all_fams.contains(&true) || all_fams.is_empty();
        book.resolver = Some(alloc.pool(f)?);
    }
    Ok(book)
}

/// For each zone network (the first of each family), a host no device has and no peer
/// narrower than the network names: a stranger inside the zone, for unbound-peer and
/// unicast probes. Taken from the top of the network, below what is already taken.
fn zone_strangers(policy: &Policy, alloc: &mut Alloc) -> Vec<(usize, IpAddr)> {
    let mut out = Vec::new();
    for (zi, z) in policy.zones.iter().enumerate() {
        for fam in [true, false] {
            let Some(net) = z.networks.iter().find(|n| v4(n.addr()) == fam) else {
                continue;
            };
            let named = |a: &IpAddr| {
                policy
                    .groups
                    .iter()
                    .any(|g| g.addresses.iter().any(|n| n.contains(a)))
                    || policy.rules.iter().any(|r| {
                        r.peers
                            .prefixes
                            .iter()
                            .any(|p| p.prefix_len() > net.prefix_len() && p.contains(a))
                    })
            };
            let lowest = first_host(net);
            // One below the top: the firewall takes the highest free host of the network.
            let mut a = offset(last_host(net), -1).unwrap_or(lowest);
            for _ in 0..1024 {
                if !net.contains(&a) {
                    break;
                }
                if usable(a) && !alloc.taken.contains(&a) && !named(&a) {
                    alloc.taken.insert(a);
                    out.push((zi, a));
                    break;
                }
                if a == lowest {
                    break;
                }
                a = match offset(a, -1) {
                    Some(x) => x,
                    None => break,
                };
            }
        }
    }
    out
}

/// The firewall's addresses on each link, the spaces' addresses and the firewall's routes:
/// the highest free host of each zone network that holds something, else a transfer link.
fn link_addresses(
    policy: &Policy,
    alloc: &mut Alloc,
    spaces: &mut [Space],
    host_space: &BTreeMap<IpAddr, usize>,
) -> Result<()> {
    for (si, space) in spaces.iter_mut().enumerate() {
        let hosts: Vec<IpAddr> = host_space
            .iter()
            .filter(|(_, s)| **s == si)
            .map(|(a, _)| *a)
            .collect();
        let networks: Vec<IpNet> = space
            .zone
            .as_deref()
            .and_then(|z| policy.zone(z))
            .map(|z| z.networks.clone())
            .unwrap_or_default();
        let mut outside_nets: Vec<IpAddr> = Vec::new();
        let mut by_net: BTreeMap<IpNet, Vec<IpAddr>> = BTreeMap::new();
        for h in &hosts {
            match networks.iter().find(|n| n.contains(h)) {
                Some(n) => by_net.entry(*n).or_default().push(*h),
                None => outside_nets.push(*h),
            }
        }
        for (net, hs) in by_net {
            match highest_free(&net, alloc) {
                Some(fw) => {
                    alloc.taken.insert(fw);
                    space.fw_addrs.push(with_len(fw, net.prefix_len())?);
                    for h in hs {
                        space.ns_addrs.push(with_len(h, net.prefix_len())?);
                    }
                }
                None => outside_nets.extend(hs),
            }
        }
        for fam in [true, false] {
            let hs: Vec<IpAddr> = outside_nets
                .iter()
                .copied()
                .filter(|h| v4(*h) == fam)
                .collect();
            if hs.is_empty() {
                continue;
            }
            let (fw, ns, len) = alloc.transfer(fam)?;
            space.fw_addrs.push(with_len(fw, len)?);
            space.ns_addrs.push(with_len(ns, len)?);
            for h in hs {
                space
                    .ns_addrs
                    .push(host(with_len(h, if fam { 32 } else { 128 })?));
                space.fw_routes.push((h, ns));
            }
        }
    }
    Ok(())
}

/// The MAC the lab sends from when it plays a host that is not a device: locally
/// administered (02:…), "plab", and different from every MAC of the site.
fn foreign_mac(facts: &Facts) -> Mac {
    let mut m: Mac = [0x02, 0x70, 0x6c, 0x61, 0x62, 0x01];
    while facts.devices.iter().any(|d| d.macs.contains(&m)) {
        m[5] = m[5].wrapping_add(1);
    }
    m
}

/// The extra links (macvlan on the space's end of the veth) that send with a chosen MAC: one
/// per device the site gives a MAC, in its zone, and one foreign MAC in each such zone.
fn mac_links(policy: &Policy, facts: &Facts) -> Vec<Link> {
    let mut links: Vec<Link> = Vec::new();
    let foreign = foreign_mac(facts);
    for d in &facts.devices {
        let (Some(mac), Some(zi)) = (
            d.macs.first(),
            policy.zones.iter().position(|z| z.id == d.zone),
        ) else {
            continue;
        };
        let name = format!("pm{}", links.len());
        links.push(Link {
            space: zi,
            name,
            mac: *mac,
            device: Some(d.id.clone()),
        });
        if !links.iter().any(|l| l.space == zi && l.device.is_none()) {
            links.push(Link {
                space: zi,
                name: format!("pmx{zi}"),
                mac: foreign,
                device: None,
            });
        }
    }
    links
}

/// Every address of the book (names, wildcard names, the unlisted name, strangers, the
/// resolver) sits in the outside namespace.
fn place_book(book: &Book, host_space: &mut BTreeMap<IpAddr, usize>, outside: usize) {
    let mut pooled: Vec<IpAddr> = Vec::new();
    pooled.extend(book.names.values().flatten());
    pooled.extend(book.wildcards.values().flat_map(|(_, a)| a.iter()));
    if let Some((_, a)) = &book.unlisted {
        pooled.extend(a);
    }
    pooled.extend(&book.strangers);
    pooled.extend(book.resolver);
    for a in pooled {
        host_space.insert(a, outside);
    }
}

/// Plans the lab for `policy`; namespaces are named `<prefix>-<role>`.
pub fn plan(policy: &Policy, prefix: &str) -> Result<Topology> {
    plan_with(policy, &Facts::from_policy(policy), prefix)
}

/// Plans the lab for `policy` with `facts`, the site as written (MACs give links), step by
/// step: the zones' address spaces, the devices, the peers, the address book of names (all
/// outside), strangers inside zones, the link addresses, and the MAC-scoped links.
pub fn plan_with(policy: &Policy, facts: &Facts, prefix: &str) -> Result<Topology> {
    let mut alloc = Alloc {
        avoid: avoid_list(policy),
        taken: BTreeSet::new(),
    };
    let (mut spaces, outside) = zone_spaces(policy, prefix)?;
    let mut host_space: BTreeMap<IpAddr, usize> = BTreeMap::new();
    let group_hosts = place_devices(policy, &mut alloc, &mut host_space)?;
    let peer_hosts = place_peers(policy, &mut alloc, &mut host_space, outside);
    let all_fams: BTreeSet<bool> = host_space.keys().map(|a| v4(*a)).collect();
    let book = address_book(policy, &mut alloc, &group_hosts, &all_fams)?;
    place_book(&book, &mut host_space, outside);
    let strangers_in = zone_strangers(policy, &mut alloc);
    for (zi, a) in &strangers_in {
        host_space.insert(*a, *zi);
    }
    link_addresses(policy, &mut alloc, &mut spaces, &host_space)?;
    Ok(Topology {
        prefix: prefix.to_string(),
        fw: format!("{prefix}-fw"),
        spaces,
        outside,
        host_space,
        group_hosts,
        peer_hosts,
        book,
        zone_strangers: strangers_in.into_iter().map(|(_, a)| a).collect(),
        links: mac_links(policy, facts),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_prefixes() {
        let n: IpNet = "10.20.0.64/28".parse().expect("address");
        assert_eq!(
            first_host(&n),
            "10.20.0.65".parse::<IpAddr>().expect("address")
        );
        assert_eq!(
            last_host(&n),
            "10.20.0.78".parse::<IpAddr>().expect("address")
        );
        let n: IpNet = "10.20.0.5/32".parse().expect("address");
        assert_eq!(first_host(&n), last_host(&n));
        let n: IpNet = "2001:db8::/64".parse().expect("address");
        assert_eq!(
            first_host(&n),
            "2001:db8::1".parse::<IpAddr>().expect("address")
        );
    }

    #[test]
    fn unusable_hosts() {
        for a in [
            "127.0.0.1",
            "224.0.0.251",
            "255.255.255.255",
            "0.0.0.1",
            "fe80::1",
            "ff02::1",
        ] {
            assert!(!usable(a.parse().expect("address")), "{a}");
        }
        assert!(usable("198.51.100.10".parse().expect("address")));
    }
}
