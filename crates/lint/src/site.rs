//! What a site adds to its profiles: only the flows that apply to each device (its mode,
//! features, versions), the proposals the site configures, where each peer-initiated flow is
//! reachable from (plaintext and unauthenticated services, inbound flows from outside every
//! zone, flows open to every zone, any-address peers), keepalives against the firewall's
//! conntrack and the NAT's timeouts, and the zones' own hygiene.
//!
//! Where a peer lies: a prefix belongs to the zones whose networks overlap it; a prefix no
//! zone network contains, a name and a wildcard domain lie outside every zone's networks —
//! the Internet, or a zone that lists no networks (`wan`).

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;

use portolan_model::ir::{Initiator, Policy, Rule, Zone};
use portolan_model::raw_site::RawSite;
use portolan_model::{Flow, Pos};

use crate::cite;
use crate::config::Config;
use crate::doc::ProfileDoc;
use crate::finding::{Finding, Level, LintCode, Location};
use crate::ipsec::Phase;
use crate::profile::{self, What};
use crate::timeout::{ct_timeout_remedy, need_of, raise, transport_of, Conntrack, Need, Transport};

/// A compiled site with what lint needs beside it.
pub struct SiteInput<'a> {
    pub file: &'a str,
    pub raw: &'a RawSite,
    pub policy: &'a Policy,
    /// The profiles the site uses, by profile id.
    pub docs: &'a BTreeMap<String, ProfileDoc>,
    pub config: &'a Config,
    pub conntrack: Option<Conntrack>,
}

impl SiteInput<'_> {
    fn at(&self, p: Pos) -> Location {
        Location {
            file: self.file.to_string(),
            line: p.line,
            column: p.column,
        }
    }

    /// The site's line for a device, or for its binding of `role` when it binds it.
    fn device_at(&self, device: &str, role: Option<&str>) -> Location {
        // A multi-homed device's groups are `DEVICE.INTERFACE`: its line is the device's.
        let of = |d: &&portolan_model::raw_site::RawDevice| {
            d.id.value == device
                || device
                    .strip_prefix(d.id.value.as_str())
                    .and_then(|r| r.strip_prefix('.'))
                    .is_some_and(|i| d.interfaces.contains_key(i))
        };
        let Some(d) = self.raw.devices.value.iter().find(of) else {
            return self.at(Pos::UNKNOWN);
        };
        if let Some(b) = role.and_then(|r| d.bind.get(r)) {
            return self.at(Pos::from(b.referenced));
        }
        self.at(Pos::from(d.id.referenced))
    }
}

/// Where the peers of a rule lie.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reach {
    /// Zones with networks that some peer overlaps.
    pub zones: BTreeSet<String>,
    /// Some peer lies outside every zone's networks.
    pub outside: bool,
    /// Some peer is every address of a family.
    pub any: bool,
}

/// Where a rule's peers lie, given the site's zones.
pub fn reach(rule: &Rule, zones: &[Zone]) -> Reach {
    let mut r = Reach::default();
    for p in &rule.peers.prefixes {
        for z in zones {
            if z.networks.iter().any(|n| overlaps(n, p)) {
                r.zones.insert(z.id.clone());
            }
        }
        let inside = zones
            .iter()
            .flat_map(|z| &z.networks)
            .any(|n| n.contains(p));
        r.outside |= !inside;
        r.any |= profile::is_any(p);
    }
    r.outside |= !rule.peers.names.is_empty() || !rule.peers.wildcards.is_empty();
    r
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(b) || b.contains(a)
}

impl Reach {
    /// In words: `zones field, mgmt and outside every zone`.
    pub fn describe(&self, zones: &[Zone]) -> String {
        let mut parts: Vec<String> = Vec::new();
        if !self.zones.is_empty() {
            let z: Vec<&str> = self.zones.iter().map(String::as_str).collect();
            parts.push(format!("zone(s) {}", z.join(", ")));
        }
        if self.outside {
            let open: Vec<&str> = zones
                .iter()
                .filter(|z| z.networks.is_empty())
                .map(|z| z.id.as_str())
                .collect();
            if open.is_empty() {
                parts.push("outside every zone's networks (the Internet)".to_string());
            } else {
                parts.push(format!(
                    "outside every zone's networks (the Internet, via {})",
                    open.join(", ")
                ));
            }
        }
        parts.join(" and ")
    }
}

/// All findings of a site, before acceptances.
pub fn findings(s: &SiteInput<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut seen: BTreeSet<(LintCode, Location, String)> = BTreeSet::new();
    let mut push = |f: Finding, out: &mut Vec<Finding>| {
        if seen.insert((f.code, f.location.clone(), f.reason.clone())) {
            out.push(f);
        }
    };
    for g in &s.policy.groups {
        let Some(doc) = s.docs.get(&g.profile) else {
            continue;
        };
        let rules: Vec<&Rule> = s.policy.rules.iter().filter(|r| r.group == g.id).collect();
        let flow_ids: BTreeSet<&str> = rules.iter().map(|r| r.flow.as_str()).collect();
        for id in &flow_ids {
            let Some(index) = doc.flow_index(id, g.mode.as_deref()) else {
                continue;
            };
            let flow = &doc.profile.flows[index];
            let pins: Vec<_> = s
                .config
                .pins
                .iter()
                .filter(|p| p.device == g.id && p.flow == flow.id)
                .collect();
            for f in profile::flow_findings(doc, index, false) {
                let ipsec = matches!(
                    f.code,
                    LintCode::Ikev1
                        | LintCode::IkeWeakEncryption
                        | LintCode::IkeWeakPrf
                        | LintCode::IkeWeakIntegrity
                        | LintCode::IkeWeakDhGroup
                        | LintCode::EspWeakEncryption
                        | LintCode::EspWeakIntegrity
                        | LintCode::EspWeakDhGroup
                        | LintCode::UnknownAlgorithm
                );
                // Proposals the site configures replace the options the profile offers.
                if ipsec && !pins.is_empty() {
                    continue;
                }
                push(f, &mut out);
            }
            for pin in &pins {
                let phase = if flow.esp.is_some() && flow.ike.is_none() {
                    Phase::Esp
                } else {
                    Phase::Ike
                };
                for (proposal, at) in &pin.proposals {
                    for mut f in profile::judge_proposal(doc, flow, phase, proposal, at) {
                        f.device = Some(g.id.clone());
                        push(f, &mut out);
                    }
                }
            }
            for f in keepalive(s, &g.id, doc, flow) {
                push(f, &mut out);
            }
        }
        for rule in &rules {
            let Some(index) = doc.flow_index(&rule.flow, g.mode.as_deref()) else {
                continue;
            };
            for f in exposure(s, &g.id, doc, &doc.profile.flows[index], rule) {
                push(f, &mut out);
            }
        }
    }
    for f in hygiene(s) {
        push(f, &mut out);
    }
    out
}

fn device_finding(doc: &ProfileDoc, flow: &Flow, device: &str, at: Location, w: What) -> Finding {
    let mut f = profile::finding(doc, flow, at, w);
    f.device = Some(device.to_string());
    f
}

/// Reachability of one rule: plaintext and unauthenticated services, inbound flows from
/// outside the zones, flows open to every zone, any-address peers.
fn exposure(
    s: &SiteInput<'_>,
    device: &str,
    doc: &ProfileDoc,
    flow: &Flow,
    rule: &Rule,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let zones = &s.policy.zones;
    let r = reach(rule, zones);
    let role = Some(flow.peer());
    let at = s.device_at(device, role);
    if r.any {
        out.push(device_finding(
            doc,
            flow,
            device,
            at.clone(),
            What {
                code: LintCode::AnyPeer,
                level: Level::Warning,
                reason: format!(
                    "{} is open to every address ({})",
                    flow.id,
                    r.describe(zones)
                ),
                citations: vec![cite::LEAST_PRIVILEGE],
                remedy: format!(
                    "bind `{}` to the peers' own addresses, names or zone",
                    flow.peer()
                ),
            },
        ));
    }
    if rule.initiator != Initiator::Peer {
        return out;
    }
    let where_from = r.describe(zones);
    let mgmt = &s.config.management_zones;
    let beyond_mgmt = r.outside || r.zones.iter().any(|z| !mgmt.contains(z));
    if let Some((what, c)) = profile::plaintext(flow) {
        out.push(device_finding(
            doc,
            flow,
            device,
            at.clone(),
            What {
                code: LintCode::PlaintextService,
                level: if beyond_mgmt {
                    Level::Warning
                } else {
                    Level::Note
                },
                reason: format!("{what} on {device}, reachable from {where_from}"),
                citations: c.to_vec(),
                remedy: profile::plaintext_remedy(what),
            },
        ));
    }
    if flow.unauthenticated && beyond_mgmt {
        out.push(device_finding(doc, flow, device, at.clone(), What {
            code: LintCode::UnauthenticatedService,
            level: if r.outside { Level::Error } else { Level::Warning },
            reason: format!(
                "{} on {device} has no access control of its own and is reachable from {where_from}",
                flow.app.as_deref().unwrap_or(&flow.id)
            ),
            citations: vec![cite::LEAST_PRIVILEGE],
            remedy: format!(
                "bind `{}` to a management zone only (management zones: {})",
                flow.peer(),
                if mgmt.is_empty() { "none configured; set `management_zones` in the lint configuration".to_string() } else { mgmt.join(", ") }
            ),
        }));
    }
    if r.outside && !rule.peers.firewall {
        // Bound to hosts (single addresses, hostnames), the inbound flow is as narrow as a
        // rule can make it: a note. Prefixes and wildcard domains admit more: a warning.
        let hosts_only = rule.peers.wildcards.is_empty()
            && rule.peers.prefixes.iter().all(|p| {
                p.prefix_len() == p.max_prefix_len()
                    || zones
                        .iter()
                        .flat_map(|z| &z.networks)
                        .any(|n| n.contains(p))
            });
        out.push(device_finding(doc, flow, device, at.clone(), What {
            code: LintCode::InboundFromInternet,
            level: if hosts_only { Level::Note } else { Level::Warning },
            reason: format!("{} can be opened to {device} by peers from {where_from}", flow.id),
            citations: vec![cite::LEAST_PRIVILEGE],
            remedy: "bind the peer to the vendor's published addresses, or accept this finding with the reason the device must be reachable".to_string(),
        }));
    }
    let with_networks: Vec<&Zone> = zones.iter().filter(|z| !z.networks.is_empty()).collect();
    if with_networks.len() >= 2 && with_networks.iter().all(|z| r.zones.contains(&z.id)) {
        out.push(device_finding(
            doc,
            flow,
            device,
            at,
            What {
                code: LintCode::OpenToEveryZone,
                level: Level::Warning,
                reason: format!(
                    "{} of {device} is open from every zone of the site",
                    flow.id
                ),
                citations: vec![cite::LEAST_PRIVILEGE],
                remedy: format!("bind `{}` to the zones or hosts that need it", flow.peer()),
            },
        ));
    }
    out
}

/// The flow's keepalive and idle timeout against the firewall's conntrack timeout, and its
/// keepalive against the device's NAT.
fn keepalive(s: &SiteInput<'_>, device: &str, doc: &ProfileDoc, flow: &Flow) -> Vec<Finding> {
    let mut out = Vec::new();
    let need = need_of(flow);
    if need == Need::default() {
        return out;
    }
    let Some(transport) = flow.protocol.number().and_then(transport_of) else {
        return out;
    };
    let at = s.device_at(device, None);
    if let Some(r) = s
        .conntrack
        .as_ref()
        .and_then(|ct| raise(need, transport, ct))
    {
        let source = if s.conntrack.is_some_and(|c| c.from_kernel) {
            "this kernel's"
        } else {
            "the configured"
        };
        let name = ct_name(&doc.profile.id, &flow.id, r.seconds);
        if let Some(k) = r.keepalive.filter(|_| r.keepalive_over()) {
            out.push(device_finding(doc, flow, device, at.clone(), What {
                code: LintCode::KeepaliveOverConntrack,
                level: Level::Warning,
                reason: format!(
                    "{} sends a keepalive every {k} s, longer than {source} {} ({} s): the firewall forgets the idle connection first",
                    flow.id, r.sysctl, r.timeout
                ),
                citations: vec![cite::LINUX_CONNTRACK],
                remedy: format!(
                    "lower the device's keepalive below {} s, or raise the timeout for this flow only (to the larger of twice the keepalive, so one lost keepalive does not end the connection, and its idle timeout): {}",
                    r.timeout,
                    ct_timeout_remedy(&name, &r)
                ),
            }));
        }
        if let Some(i) = r.idle_timeout.filter(|_| r.idle_over()) {
            out.push(device_finding(doc, flow, device, at.clone(), What {
                code: LintCode::IdleTimeoutOverConntrack,
                level: Level::Warning,
                reason: format!(
                    "{} must survive {i} s of silence, longer than {source} {} ({} s): the firewall forgets the idle connection first",
                    flow.id, r.sysctl, r.timeout
                ),
                citations: vec![cite::LINUX_CONNTRACK],
                remedy: format!(
                    "raise the timeout for this flow only (to the larger of its idle timeout and twice its keepalive): {}",
                    ct_timeout_remedy(&name, &r)
                ),
            }));
        }
    }
    let Some(k) = flow.keepalive else {
        return out;
    };
    if let Some(entry) = s.config.nat_for(Some(device)) {
        let (t, given, c) = match transport {
            Transport::Tcp => (entry.nat.tcp, entry.nat.tcp_given, cite::RFC5382_IDLE),
            Transport::Udp => (entry.nat.udp, entry.nat.udp_given, cite::RFC4787_REFRESH),
        };
        if k > t {
            let whose = if given {
                format!(
                    "the NAT's {} idle timeout ({t} s, from {})",
                    transport.name(),
                    entry.at
                )
            } else {
                format!(
                    "the least {} idle timeout the standard allows a NAT ({t} s)",
                    transport.name()
                )
            };
            out.push(device_finding(doc, flow, device, at, What {
                code: LintCode::KeepaliveOverNat,
                level: Level::Warning,
                reason: format!("{} sends a keepalive every {k} s, longer than {whose}", flow.id),
                citations: vec![c],
                remedy: format!("lower the device's keepalive below {t} s (the NAT's timeout is not the site firewall's to raise)"),
            }));
        }
    }
    out
}

/// The `ct timeout` object's name `compile --ct-timeouts` gives a flow's raise (the
/// nftables back end's object names: lower-case letters, digits, `-`, `.`, parts joined by
/// `_`; longer names are shortened there).
fn ct_name(profile: &str, flow: &str, seconds: u32) -> String {
    format!("ct_{profile}_{flow}_{seconds}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.') {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Zones whose networks overlap, and devices in a zone that lists none.
fn hygiene(s: &SiteInput<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let zones = &s.raw.zones;
    for (i, a) in zones.iter().enumerate() {
        for b in zones.iter().skip(i + 1) {
            for na in &a.networks {
                for nb in &b.networks {
                    let (Ok(x), Ok(y)) = (na.value.parse::<IpNet>(), nb.value.parse::<IpNet>())
                    else {
                        continue;
                    };
                    if overlaps(&x, &y) {
                        out.push(Finding {
                            code: LintCode::NestedZoneNetworks,
                            level: Level::Warning,
                            location: s.at(Pos::from(nb.referenced)),
                            profile: None,
                            flow: None,
                            device: None,
                            reason: format!(
                                "{y} of zone `{}` overlaps {x} of zone `{}`: which zone an address of the overlap belongs to depends on the longest prefix",
                                b.id.value, a.id.value
                            ),
                            citations: vec![cite::LEAST_PRIVILEGE],
                            remedy: "give each zone networks of its own".to_string(),
                        });
                    }
                }
            }
        }
    }
    for d in &s.raw.devices.value {
        // The device's zone, or each of its interfaces' (a multi-homed device).
        let placed = d
            .zone
            .iter()
            .chain(d.interfaces.values().map(|b| &b.value.zone));
        for zone in placed {
            let bare = zones
                .iter()
                .find(|z| z.id.value == zone.value)
                .is_some_and(|z| z.networks.is_empty());
            if bare {
                out.push(Finding {
                    code: LintCode::ZoneWithoutNetworks,
                    level: Level::Note,
                    location: s.at(Pos::from(zone.referenced)),
                    profile: None,
                    flow: None,
                    device: Some(d.id.value.clone()),
                    reason: format!(
                        "device `{}` is in zone `{}`, which lists no networks: its addresses lie in no declared network",
                        d.id.value, zone.value
                    ),
                    citations: vec![cite::LEAST_PRIVILEGE],
                    remedy: "list the zone's networks, or move the device to the zone whose network holds it".to_string(),
                });
            }
        }
    }
    out
}
