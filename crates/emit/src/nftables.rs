//! nftables back end: one table, `inet portolan`, written for `nft -f`, meant to read as an
//! administrator would write it by hand.
//!
//! Layout (see ARCHITECTURE.md):
//! - Spoofing first: every address the site places behind an interface (the networks of each
//!   zone that names one, and the devices of a zone without networks) is admitted in `forward`
//!   and `input` only from that interface. A verdict map (`zones4`, `zones6`) keyed by source
//!   address jumps to the zone's chain (`from_<zone>`), which returns for its interface and
//!   otherwise logs (`portolan spoofed <zone>: `) and drops. This runs before the conntrack
//!   rule, so a spoofed packet cannot ride on an established connection either.
//! - Device groups whose rules are identical and that share a zone share one *class* of chains
//!   (`k_<group>_out` for device-initiated flows, `_in` for peer-initiated ones, `_local` for
//!   services of the firewall itself). Verdict maps keyed by device address (`fwd_src4`,
//!   `fwd_dst4`, `local_src4`, and the `6` twins) jump to them, so a packet costs a constant
//!   number of lookups however many devices the site has. Single addresses live in hash maps
//!   (`fwd_src4h` …), prefixes in interval maps: a hash map of 100,000 addresses loads three
//!   times faster. Only chains and maps that hold something are written.
//! - Peers: one address inline (`ip daddr 198.51.100.10`), a few as an anonymous set; a list
//!   that several rules share, or a long one, is a named interval set (`peers_<group>_<flow>_4`,
//!   after the first rule that uses it). Hostnames are DNS-filled sets named after the names
//!   (`gk_sensorist_com_v4`) with `flags timeout`, filled at compile time (`--resolve`, each
//!   element living for its record's TTL) or at run time by the DNS server (`--target
//!   dnsmasq`: dnsmasq adds elements without a TTL, so they take the set's default timeout,
//!   `Options::dns_timeout`, one hour unless set); wildcard domains likewise
//!   (`any.mbedcloud_com_v4`). Identical rules are written once.
//! - Broadcast and multicast rules match the broadcast or group address and the zone's
//!   interface, never the peers' own addresses. DHCP discovery (source 0.0.0.0) is admitted in
//!   `input` on the zone's interface from the devices' MACs where the site gives them (the
//!   header says where it does not); other DHCP broadcasts on that interface go to
//!   `unlisted_mac` (log, drop).
//! - Unmatched traffic of a device goes to `drop_<group>`: a rate-limited log whose prefix names
//!   the group, then drop. Established and related traffic is accepted; invalid is dropped.
//!
//! Reloading: the file first declares the table and the DNS-filled sets (a no-op when they
//! exist), then `flush table` removes every rule (sets keep their elements), then static sets
//! and maps are declared, flushed and refilled, and the chains are written. All of it is one
//! `nft -f` transaction, so the DNS-filled sets survive a reload and nothing is half-applied.

mod parts;
mod write;

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use portolan_model::ir::{Initiator, Mac, Peers, Policy, Rule};

use crate::classes::{signature, Signature};
use crate::names::{
    dns_set, is_dns_filled_set, object, peer_set, safe_hostname, safe_interface, safe_text,
    wildcard_dns_set, Family, NFT_NAME_MAX,
};
use crate::zones::Ownership;
use crate::{EmitError, Options};
use parts::{addr_type, cast_destinations, ifnames, ip, l4, net, values};
use write::{write, Written};

const T: &str = "nftables";
/// The table every object lives in.
pub const TABLE: &str = "inet portolan";
/// Above this many elements a peer list used once still gets a named set.
const INLINE_MAX: usize = 16;

/// Whether a set of the table is DNS-filled (kept across reloads); see
/// [`crate::names::is_dns_filled_set`].
pub fn dns_filled(name: &str) -> bool {
    is_dns_filled_set(name)
}

/// The DNS-filled set of a list of hostnames, as this back end names it.
pub fn name_set(fam: Family, names: &[String]) -> String {
    dns_set(fam, names, NFT_NAME_MAX)
}

/// The DNS-filled set of a wildcard domain, as this back end names it.
pub fn wildcard_set(fam: Family, domain: &str) -> String {
    wildcard_dns_set(fam, domain, NFT_NAME_MAX)
}

struct Class<'a> {
    name: String,
    rules: Vec<&'a Rule>,
    fams: BTreeSet<Family>,
    /// The interface of the class's zone.
    interface: Option<String>,
    /// The networks of the class's zone (directed broadcasts).
    networks: Vec<IpNet>,
}

/// A set of the output.
struct SetDef {
    name: String,
    ty: &'static str,
    elements: Vec<String>,
}

/// The peer sets of the output and how peers are matched.
#[derive(Default)]
struct Sets {
    /// Static peer lists by (family, prefixes): how many rules use each, and the name of the
    /// first rule's group and flow.
    uses: BTreeMap<(Family, Vec<IpNet>), (usize, String)>,
    statics: BTreeMap<String, SetDef>,
    dynamic: BTreeMap<String, SetDef>,
}

fn comment(r: &Rule) -> Result<String, EmitError> {
    Ok(format!(
        "comment \"{}\"",
        safe_text(T, "comment", &r.provenance())?
    ))
}

fn prefixes(p: &Peers, fam: Family) -> Vec<IpNet> {
    let v: Vec<IpNet> = p
        .prefixes
        .iter()
        .copied()
        .filter(|n| Family::of(n) == fam)
        .collect();
    IpNet::aggregate(&v)
}

/// Pushes a rule unless the chain has it already.
fn push(chain: &mut Vec<String>, line: String) {
    if !chain.contains(&line) {
        chain.push(line);
    }
}

/// The words of a rule, joined.
fn rule(parts: &[Option<&str>], verdict: &str) -> String {
    let mut v: Vec<&str> = parts.iter().flatten().copied().collect();
    v.push(verdict);
    v.join(" ")
}

impl Sets {
    fn count(&mut self, r: &Rule, fam: Family) {
        let pre = prefixes(&r.peers, fam);
        if !pre.is_empty() {
            let e = self
                .uses
                .entry((fam, pre))
                .or_insert_with(|| (0, peer_set(fam, &r.group, &r.flow, NFT_NAME_MAX)));
            e.0 += 1;
        }
    }

    /// The peer matches of a rule in a family, one per rule to write: `ip daddr X`.
    fn peers(
        &mut self,
        r: &Rule,
        fam: Family,
        dir: &str,
        opts: &Options,
    ) -> Result<Vec<String>, EmitError> {
        let mut out = Vec::new();
        let ipk = ip(fam);
        let pre = prefixes(&r.peers, fam);
        if !pre.is_empty() {
            let (uses, name) = self
                .uses
                .get(&(fam, pre.clone()))
                .cloned()
                .unwrap_or((1, String::new()));
            if pre.len() >= 2 && (uses >= 2 || pre.len() > INLINE_MAX) && !name.is_empty() {
                self.statics.entry(name.clone()).or_insert_with(|| SetDef {
                    name: name.clone(),
                    ty: addr_type(fam),
                    elements: pre.iter().map(net).collect(),
                });
                out.push(format!("{ipk} {dir} @{name}"));
            } else {
                out.push(format!("{ipk} {dir} {}", values(pre.iter().map(net))));
            }
        }
        if !r.peers.names.is_empty() {
            let mut names = r.peers.names.clone();
            names.sort();
            names.dedup();
            for n in &names {
                safe_hostname(T, n)?;
            }
            let name = name_set(fam, &names);
            let set = self.dynamic.entry(name.clone()).or_insert(SetDef {
                name: name.clone(),
                ty: addr_type(fam),
                elements: Vec::new(),
            });
            for el in resolved_elements(opts, &names, fam) {
                if !set.elements.contains(&el) {
                    set.elements.push(el);
                }
            }
            out.push(format!("{ipk} {dir} @{name}"));
        }
        for w in &r.peers.wildcards {
            safe_hostname(T, w)?;
            let name = wildcard_set(fam, w);
            self.dynamic.entry(name.clone()).or_insert(SetDef {
                name: name.clone(),
                ty: addr_type(fam),
                elements: Vec::new(),
            });
            out.push(format!("{ipk} {dir} @{name}"));
        }
        Ok(out)
    }
}

/// The interfaces of the zones the peers' prefixes lie in; `None` when some peer lies in no
/// zone with an interface (or is a name), so the rule cannot say where it goes.
fn peer_interfaces(policy: &Policy, peers: &Peers) -> Result<Option<Vec<String>>, EmitError> {
    if !peers.names.is_empty() || !peers.wildcards.is_empty() || peers.prefixes.is_empty() {
        return Ok(None);
    }
    let mut out = BTreeSet::new();
    for p in &peers.prefixes {
        let zone = policy
            .zones
            .iter()
            .find(|z| z.interface.is_some() && z.networks.iter().any(|n| n.contains(p)));
        match zone.and_then(|z| z.interface.as_ref()) {
            Some(i) => out.insert(safe_interface(T, i)?),
            None => return Ok(None),
        };
    }
    Ok(Some(out.into_iter().collect()))
}

/// DHCP discovery admitted on one interface for one flow: the MACs, or any.
#[derive(Default)]
struct Dhcp {
    macs: BTreeSet<Mac>,
    any: bool,
}

/// Emits the ruleset.
pub fn emit(policy: &Policy, opts: &Options) -> Result<String, EmitError> {
    // Classes: groups of one zone with identical rules.
    let mut classes: Vec<Class> = Vec::new();
    let mut class_of: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_sig: BTreeMap<(Signature, &str), usize> = BTreeMap::new();
    // Rules by group, in one pass: `rules_of` per group would be quadratic in large sites.
    let mut by_group: BTreeMap<&str, Vec<&Rule>> = BTreeMap::new();
    for r in &policy.rules {
        by_group.entry(r.group.as_str()).or_default().push(r);
    }
    for g in &policy.groups {
        let rules: Vec<&Rule> = by_group.remove(g.id.as_str()).unwrap_or_default();
        let sig = signature(&rules);
        let zone = policy.zone(&g.zone);
        let interface = match zone.and_then(|z| z.interface.as_ref()) {
            Some(i) => Some(safe_interface(T, i)?),
            None => None,
        };
        let idx = *by_sig.entry((sig, g.zone.as_str())).or_insert_with(|| {
            classes.push(Class {
                name: object(&["k", &g.id]),
                rules,
                fams: BTreeSet::new(),
                interface,
                networks: zone.map(|z| z.networks.clone()).unwrap_or_default(),
            });
            classes.len() - 1
        });
        classes[idx].fams.extend(g.addresses.iter().map(Family::of));
        class_of.insert(g.id.as_str(), idx);
    }

    let mut sets = Sets::default();
    for c in &classes {
        let matched = |r: &&&Rule| {
            !r.broadcast
                || r.is_dhcp_broadcast()
                || (!r.peers.firewall && r.initiator == Initiator::Peer)
        };
        for r in c.rules.iter().filter(matched) {
            for fam in &c.fams {
                sets.count(r, *fam);
            }
        }
    }

    // Class chains: (name, rules), written only when they hold rules.
    let mut chains: Vec<(String, Vec<String>)> = Vec::new();
    let mut class_chains: Vec<[bool; 3]> = Vec::new();
    let mut forward_cast: Vec<String> = Vec::new();
    for c in &classes {
        let (mut out, mut inn, mut local) = (Vec::new(), Vec::new(), Vec::new());
        let iif = c
            .interface
            .as_ref()
            .map(|i| ifnames("iifname", std::slice::from_ref(i)));
        let oif = c
            .interface
            .as_ref()
            .map(|i| ifnames("oifname", std::slice::from_ref(i)));
        for r in &c.rules {
            let cm = comment(r)?;
            let device = r.initiator == Initiator::Device;
            // DHCP discovery is admitted per group (its MACs), in `input`; its renewals are
            // unicast to its peers, below.
            if r.broadcast && !r.is_dhcp_broadcast() {
                // The firewall's own broadcasts leave through its open output hook.
                if r.peers.firewall && !device {
                    continue;
                }
                let peer_if = if r.peers.firewall {
                    None
                } else {
                    peer_interfaces(policy, &r.peers)?
                };
                for fam in c.fams.iter().copied() {
                    let Some(dst) = cast_destinations(r, fam, &c.networks) else {
                        continue;
                    };
                    let Some(m) = l4(r, Some(fam))? else { continue };
                    if r.peers.firewall {
                        push(
                            &mut local,
                            rule(
                                &[iif.as_deref(), Some(&dst), Some(&m)],
                                &format!("accept {cm}"),
                            ),
                        );
                    } else if device {
                        let o = peer_if.as_ref().map(|v| ifnames("oifname", v));
                        push(
                            &mut out,
                            rule(
                                &[iif.as_deref(), o.as_deref(), Some(&dst), Some(&m)],
                                &format!("accept {cm}"),
                            ),
                        );
                    } else {
                        // A peer's multicast to the device is addressed to the group, not to
                        // the device: it is matched before the per-device dispatch.
                        let i = peer_if.as_ref().map(|v| ifnames("iifname", v));
                        for pm in sets.peers(r, fam, "saddr", opts)? {
                            push(
                                &mut forward_cast,
                                rule(
                                    &[
                                        i.as_deref(),
                                        oif.as_deref(),
                                        Some(&pm),
                                        Some(&dst),
                                        Some(&m),
                                    ],
                                    &format!("accept {cm}"),
                                ),
                            );
                        }
                    }
                }
                continue;
            }
            // Connections the firewall itself opens towards a device pass its output hook,
            // which this table leaves open: only device-initiated local flows have rules.
            if r.peers.firewall && device {
                let fits = r
                    .protocol
                    .family()
                    .is_none_or(|f| c.fams.contains(&Family::from(f)));
                if let Some(m) = l4(r, None)?.filter(|_| fits) {
                    push(&mut local, format!("{m} accept {cm}"));
                }
            }
            let (chain, dir) = if device {
                (&mut out, "daddr")
            } else {
                (&mut inn, "saddr")
            };
            for fam in c.fams.iter().copied() {
                let Some(m) = l4(r, Some(fam))? else { continue };
                for pm in sets.peers(r, fam, dir, opts)? {
                    push(chain, format!("{pm} {m} accept {cm}"));
                }
            }
        }
        class_chains.push([!out.is_empty(), !inn.is_empty(), !local.is_empty()]);
        for (suffix, rules) in [("out", out), ("in", inn), ("local", local)] {
            if !rules.is_empty() {
                chains.push((format!("{}_{suffix}", c.name), rules));
            }
        }
    }

    // DHCP discovery, per interface and flow, from the groups' MACs.
    let mut dhcp: BTreeMap<(Option<String>, String, String), Dhcp> = BTreeMap::new();
    let mut any_mac = crate::AnyMac::default();
    for g in &policy.groups {
        let c = &classes[class_of[g.id.as_str()]];
        for r in c
            .rules
            .iter()
            .filter(|r| r.is_dhcp_broadcast() && r.initiator == Initiator::Device)
        {
            let Some(m) = l4(r, Some(Family::V4))? else {
                continue;
            };
            let e = dhcp
                .entry((c.interface.clone(), m, comment(r)?))
                .or_default();
            if g.macs.is_empty() {
                e.any = true;
                any_mac.add(c.interface.as_deref(), r.provenance(), &g.id);
            } else {
                e.macs.extend(g.macs.iter().copied());
            }
        }
    }
    let mut input_dhcp = Vec::new();
    let mut input_unlisted = Vec::new();
    for ((ifc, m, cm), d) in &dhcp {
        let iif = ifc
            .as_ref()
            .map(|i| ifnames("iifname", std::slice::from_ref(i)));
        let mac = (!d.any).then(|| {
            format!(
                "ether saddr {}",
                values(d.macs.iter().map(ToString::to_string))
            )
        });
        input_dhcp.push(rule(
            &[
                iif.as_deref(),
                mac.as_deref(),
                Some("ip daddr 255.255.255.255"),
                Some(m),
            ],
            &format!("accept {cm}"),
        ));
        let any_here = dhcp.iter().any(|((i, _, _), x)| i == ifc && x.any);
        if !any_here {
            push(
                &mut input_unlisted,
                rule(
                    &[
                        iif.as_deref(),
                        Some("ip daddr 255.255.255.255 udp dport 67"),
                    ],
                    "goto unlisted_mac",
                ),
            );
        }
    }

    // Dispatch maps and per-group drop chains.
    let mut maps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let rate = opts.log_rate.unwrap_or(5);
    let limit = format!("limit rate {rate}/second burst {rate} packets");
    let mut drops = Vec::new();
    for g in &policy.groups {
        let ci = class_of[g.id.as_str()];
        let c = &classes[ci];
        let [has_out, has_in, has_local] = class_chains[ci];
        let drop = object(&["drop", &g.id]);
        let prefix = safe_text(
            T,
            "log prefix",
            &format!("portolan {}: ", truncate(&g.id, 100)),
        )?;
        drops.push((
            drop.clone(),
            vec![
                format!("{limit} log prefix \"{prefix}\" level info"),
                "drop".into(),
            ],
        ));
        for a in &g.addresses {
            // Single addresses go to hash maps (`…h`), prefixes to interval maps: a hash map
            // loads about three times faster, and sites list devices mostly one by one.
            let host = a.prefix_len() == a.max_prefix_len();
            let f = format!("{}{}", Family::of(a).n(), if host { "h" } else { "" });
            let a = net(a);
            let mut add = |map: &str, verdict: String| {
                maps.entry(format!("{map}{f}"))
                    .or_default()
                    .push(format!("{a} : {verdict}"));
            };
            if has_out {
                add("fwd_src", format!("jump {}_out", c.name));
            }
            if has_in {
                add("fwd_dst", format!("jump {}_in", c.name));
            }
            if has_local {
                add("local_src", format!("jump {}_local", c.name));
            }
            add("drop_src", format!("goto {drop}"));
            add("drop_dst", format!("goto {drop}"));
        }
    }

    // Spoofing: each owned address range jumps to its zone's chain.
    let own = Ownership::of(policy, T)?;
    let mut zone_chains = Vec::new();
    let mut used_zones = BTreeSet::new();
    for fam in [Family::V4, Family::V6] {
        for (range, z) in own.ranges(fam) {
            let chain = object(&["from", &own.zones[z].id]);
            maps.entry(format!("zones{}", fam.n()))
                .or_default()
                .push(format!("{range} : jump {chain}"));
            used_zones.insert(z);
        }
    }
    for z in used_zones {
        let zone = &own.zones[z];
        let prefix = safe_text(
            T,
            "log prefix",
            &format!("portolan spoofed {}: ", truncate(&zone.id, 90)),
        )?;
        zone_chains.push((
            object(&["from", &zone.id]),
            vec![
                format!("iifname \"{}\" return", zone.interface),
                format!("{limit} log prefix \"{prefix}\" level info"),
                "counter drop".to_string(),
            ],
        ));
    }
    let mut extra = Vec::new();
    if !input_unlisted.is_empty() {
        extra.push((
            "unlisted_mac".to_string(),
            vec![
                format!("{limit} log prefix \"portolan unlisted mac: \" level info"),
                "counter drop".to_string(),
            ],
        ));
    }
    let chains: Vec<(String, Vec<String>)> = zone_chains
        .into_iter()
        .chain(chains)
        .chain(drops)
        .chain(extra)
        .collect();

    // Names are injective by construction (`names`); refuse a collision anyway rather than
    // let `nft -f` merge two sets or chains.
    let mut seen = BTreeSet::new();
    for n in sets
        .statics
        .keys()
        .chain(sets.dynamic.keys())
        .chain(maps.keys())
    {
        if !seen.insert(n.as_str()) || is_dns_filled_set(n) != sets.dynamic.contains_key(n) {
            return Err(EmitError::Unsafe {
                target: T,
                what: "duplicate or misleading set name",
                value: n.clone(),
            });
        }
    }
    let mut seen = BTreeSet::new();
    for (n, _) in &chains {
        if !seen.insert(n.as_str()) {
            return Err(EmitError::Unsafe {
                target: T,
                what: "duplicate chain name",
                value: n.clone(),
            });
        }
    }
    let has_v6 = classes.iter().any(|c| c.fams.contains(&Family::V6));
    write(Written {
        policy,
        opts,
        sets: &sets,
        maps: &maps,
        chains: &chains,
        notes: &any_mac.lines(),
        forward_cast: &forward_cast,
        input_dhcp: &input_dhcp,
        input_unlisted: &input_unlisted,
        has_v6,
        limit: &limit,
    })
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn resolved_elements(opts: &Options, names: &[String], fam: Family) -> Vec<String> {
    let mut out = Vec::new();
    for n in names {
        if let Some(r) = opts.resolved.get(n) {
            let secs = r.ttl.as_secs().max(1);
            for a in &r.addresses {
                if a.is_ipv4() == (fam == Family::V4) {
                    out.push(format!("{a} timeout {secs}s"));
                }
            }
        }
    }
    out
}
