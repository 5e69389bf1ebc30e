//! Planning the nftables ruleset from the IR: the class chains and the peer sets their rules
//! use, DHCP discovery by MAC, the per-device dispatch maps and drop chains, the spoofing
//! check, and the base chains, gathered into a [`Ruleset`] that renders itself.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use portolan_model::ir::{Initiator, Mac, Policy, Rule};

use super::parts::{cast_destinations, ifnames, l4, net, values};
use super::ruleset::{Chain, Map, Ruleset};
use super::sets::Sets;
use super::T;
use crate::cast::peer_interfaces;
use crate::classes::{Class, Classes};
use crate::names::{
    is_dns_filled_set, object, object_max, safe_interface, safe_text, Family, NFT_NAME_MAX,
};
use crate::zones::Ownership;
use crate::{AnyMac, EmitError, Options};

/// The chain that logs and drops a device's DNS to anything but the firewall (`enforce`).
const DNS_BYPASS: &str = "dns_bypass";
/// The chain that logs and drops a device's connection to a known DoH endpoint (`enforce`).
const DOH_BYPASS: &str = "doh_bypass";
/// The sets of known DoH service addresses (`enforce`); not `_v4`/`_v6`, which are
/// DNS-filled: these are static, refilled at every load.
const DOH_SETS: [(Family, &str); 2] = [(Family::V4, "doh4"), (Family::V6, "doh6")];

/// What nftables adds to a class: its chains' base name and where its devices are.
struct Names<'p> {
    /// `k_<first group>`.
    name: String,
    /// The families of the class's device addresses.
    fams: BTreeSet<Family>,
    /// The interface of the class's zone, checked.
    interface: Option<String>,
    /// The networks of the class's zone (directed broadcasts).
    networks: &'p [IpNet],
}

impl<'p> Names<'p> {
    fn of(c: &Class<'p>) -> Result<Names<'p>, EmitError> {
        Ok(Names {
            name: object(&["k", &c.first().id]),
            fams: c
                .groups
                .iter()
                .flat_map(|g| g.addresses.iter().map(Family::of))
                .collect(),
            interface: c.interface().map(|i| safe_interface(T, i)).transpose()?,
            networks: c.networks(),
        })
    }
}

/// The three chains of a class: device-initiated, peer-initiated, services of the firewall.
#[derive(Default)]
struct ClassChains {
    out: Vec<String>,
    inn: Vec<String>,
    local: Vec<String>,
}

/// Verdict maps by name.
type Maps = BTreeMap<String, Map>;

fn comment(r: &Rule) -> Result<String, EmitError> {
    Ok(format!(
        "comment \"{}\"",
        safe_text(T, "comment", &r.provenance())?
    ))
}

/// Pushes a rule unless the chain has it already: a scan of the chain, counted
/// (`portolan_model::work`), so that a chain that grows with the devices shows as work growing
/// with their square (`tests/backends/work.rs`).
fn push(chain: &mut Vec<String>, line: String) {
    portolan_model::work::visit(chain.len());
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

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Adds `element` to map `name`, declaring the map at its first element.
fn add(maps: &mut Maps, name: &str, fam: Family, interval: bool, element: String) {
    // Looked up before it is inserted: the name is copied once per map, not once per element.
    if let Some(m) = maps.get_mut(name) {
        m.elements.push(element);
        return;
    }
    maps.insert(
        name.to_string(),
        Map {
            name: name.to_string(),
            fam,
            interval,
            elements: vec![element],
        },
    );
}

/// Plans the ruleset of `policy`.
pub(super) fn plan(policy: &Policy, opts: &Options) -> Result<Ruleset, EmitError> {
    // Enforce mode also writes the rules to SRV-learnt peers, whose sets the forwarder fills;
    // elsewhere they stay documented ("not enforced here").
    let merged;
    let policy = if opts.enforce && !policy.discovered.is_empty() {
        merged = policy.with_discovered();
        &merged
    } else {
        policy
    };
    let classes = Classes::of(policy);
    let names = classes
        .list
        .iter()
        .map(Names::of)
        .collect::<Result<Vec<_>, _>>()?;
    // Peer lists several rules share get a named set: count the uses first.
    let mut sets = Sets::default();
    for (c, n) in classes.list.iter().zip(&names) {
        let matched = |r: &&&Rule| {
            !r.broadcast
                || r.is_dhcp_broadcast()
                || (!r.peers.firewall && r.initiator == Initiator::Peer)
        };
        for r in c.rules.iter().filter(matched) {
            for fam in &n.fams {
                sets.count(r, *fam);
            }
        }
    }
    let rate = opts.log_rate.unwrap_or(5);
    let limit = format!("limit rate {rate}/second burst {rate} packets");

    let mut forward_cast = Vec::new();
    let mut ct_objects = BTreeMap::new();
    let mut class_chains = Vec::new();
    let mut has: Vec<[bool; 3]> = Vec::new();
    for (c, n) in classes.list.iter().zip(&names) {
        let mut cc = class_rules(
            policy,
            opts,
            c,
            n,
            &mut sets,
            &mut forward_cast,
            &mut ct_objects,
        )?;
        if opts.enforce && !cc.out.is_empty() {
            // Under `enforce` the forwarder on the firewall is a device's only resolver: DNS
            // (RFC 1035 section 4.2, RFC 7766: UDP and TCP 53) and DNS over TLS (RFC 7858) or
            // QUIC (RFC 9250) on 853 to anyone else is dropped before any flow can admit it.
            cc.out.insert(
                0,
                format!("meta l4proto {{ tcp, udp }} th dport {{ 53, 853 }} goto {DNS_BYPASS}"),
            );
            // DNS over HTTPS (RFC 8484) to a known endpoint, over TCP or HTTP/3's UDP, before
            // any flow can admit it either.
            for (i, (fam, set)) in DOH_SETS.iter().enumerate() {
                let ipk = if *fam == Family::V4 { "ip" } else { "ip6" };
                cc.out.insert(
                    1 + i,
                    format!("{ipk} daddr @{set} meta l4proto {{ tcp, udp }} th dport 443 goto {DOH_BYPASS}"),
                );
            }
        }
        has.push([!cc.out.is_empty(), !cc.inn.is_empty(), !cc.local.is_empty()]);
        for (suffix, rules) in [("out", cc.out), ("in", cc.inn), ("local", cc.local)] {
            if !rules.is_empty() {
                class_chains.push(Chain::new(format!("{}_{suffix}", n.name), rules));
            }
        }
    }
    let (input_dhcp, input_unlisted, any_mac) = dhcp(policy, &classes, &names)?;
    let mut maps = Maps::new();
    let drops = dispatch(policy, &classes, &names, &has, &limit, &mut maps)?;
    let zone_chains = spoofing(policy, &limit, &mut maps)?;
    let mut chains: Vec<Chain> = zone_chains
        .into_iter()
        .chain(class_chains)
        .chain(drops)
        .collect();
    if !input_unlisted.is_empty() {
        chains.push(Chain::new(
            "unlisted_mac",
            vec![
                format!("{limit} log prefix \"portolan unlisted mac: \" level info"),
                "counter drop".to_string(),
            ],
        ));
    }
    if opts.enforce && has.iter().any(|h| h[0]) {
        chains.push(Chain::new(
            DNS_BYPASS,
            vec![
                format!("{limit} log prefix \"portolan dns bypass: \" level info"),
                "counter drop".to_string(),
            ],
        ));
        chains.push(Chain::new(
            DOH_BYPASS,
            vec![
                format!("{limit} log prefix \"portolan doh bypass: \" level info"),
                "counter drop".to_string(),
            ],
        ));
    }
    check_names(&sets, &maps, &chains)?;
    let has_v6 = names.iter().any(|n| n.fams.contains(&Family::V6));
    let mut hooks = hooks(
        &maps,
        forward_cast,
        input_dhcp.into_iter().chain(input_unlisted).collect(),
        has_v6,
        &limit,
    );
    let mut static_sets: Vec<_> = sets.statics.into_values().collect();
    if opts.enforce && has.iter().any(|h| h[0]) {
        static_sets.extend(doh_sets(opts));
    }
    if opts.enforce && opts.dns_redirect {
        hooks.push(dns_redirect(policy, &limit));
    }
    let site = safe_text(T, "site name", &policy.site)?;
    let mut notes: Vec<String> = policy
        .documented
        .iter()
        .map(|d| {
            format!(
                "# not enforced here: {}/{} for {}: {}",
                d.profile,
                d.flow,
                d.group,
                d.reason.replace(['\n', '\r'], " ")
            )
        })
        .collect();
    notes.extend(any_mac.lines());
    if opts.enforce {
        notes.push("# Enforce mode: hostnames and wildcard domains match per-rule sets of `device . peer` pairs".into());
        notes.push("# that `portolan enforce` fills for the device that asked, each for its answer's TTL plus a grace;".into());
        if policy.rules.iter().any(|r| !r.peers.srv.is_empty()) {
            notes.push("# peers learnt from DNS SRV records match sets of `device . target . port` triples, filled from the SRV".into());
            notes.push("# answer the device received (RFC 2782: each target at its record's port) and the target's A/AAAA records;".into());
        }
        if opts.dns_redirect {
            notes.push("# devices' plain DNS (TCP/UDP 53) to another resolver is redirected to the firewall's port 53 (`dns_redirect`, logged);".into());
            notes.push(format!("# DNS over TLS/QUIC (853) to anyone but the firewall goes to `{DNS_BYPASS}` (log, drop);"));
        } else {
            notes.push(format!("# devices' DNS and DNS over TLS/QUIC (TCP/UDP 53, 853) to anyone but the firewall go to `{DNS_BYPASS}` (log, drop);"));
        }
        notes.push(format!("# DNS over HTTPS to a known endpoint (sets doh4, doh6: TCP/UDP 443) goes to `{DOH_BYPASS}` (log, drop)."));
        // A flow to a resolver elsewhere (the site's `services: dns` not the firewall) is
        // overridden by that drop: say so, per flow.
        let mut overridden = BTreeSet::new();
        for r in &policy.rules {
            let dns_or_dot = portolan_model::ir::is_dns(r.protocol, &r.ports)
                || r.ports.iter().any(|p| p.contains(853));
            if r.initiator == Initiator::Device && !r.peers.firewall && dns_or_dot {
                overridden.insert(format!(
                    "# Enforce mode drops {} of {}: DNS goes through the firewall's forwarder (give the site `services: {{dns: firewall}}`).",
                    safe_text(T, "comment", &r.provenance())?,
                    safe_text(T, "comment", &r.group)?
                ));
            }
        }
        notes.extend(overridden);
    }
    Ok(Ruleset {
        site,
        notes,
        dns_timeout: opts.dns_timeout_secs(),
        dns_sets: sets.dynamic.into_values().collect(),
        static_sets,
        chains,
        maps: maps.into_values().collect(),
        hooks,
        ct_timeouts: ct_objects.into_iter().collect(),
    })
}

/// `ct timeout set "<name>" ` for the rules of `r` in class `c` when `--ct-timeouts` raises
/// its flow for the class's groups, the object declared in `objects`; empty otherwise. The
/// groups of a class share the rule, so they must share the raise: a class whose groups
/// differ (two modes of a profile with different keepalives but the same rules) is refused
/// rather than given one group's timeout.
fn ct_timeout(
    c: &Class,
    r: &Rule,
    opts: &Options,
    objects: &mut BTreeMap<String, String>,
) -> Result<String, EmitError> {
    if opts.ct_timeouts.is_empty() {
        return Ok(String::new());
    }
    let of = |g: &str| opts.ct_timeouts.get(&(g.to_string(), r.flow.clone()));
    let first = of(&c.first().id);
    if c.groups.iter().any(|g| of(&g.id) != first) {
        return Err(EmitError::Unsupported {
            target: T,
            what: format!(
                "different conntrack timeouts for {} among device groups whose rules are identical ({}); give those groups rules of their own or the same keepalive",
                r.provenance(),
                c.groups.iter().map(|g| g.id.as_str()).collect::<Vec<_>>().join(", ")
            ),
        });
    }
    let Some(t) = first else {
        return Ok(String::new());
    };
    let name = object_max(
        &["ct", &r.profile, &r.flow, &t.seconds.to_string()],
        NFT_NAME_MAX,
    );
    objects.insert(name.clone(), t.body());
    Ok(format!("ct timeout set \"{name}\" "))
}

/// The rules of a class's chains; a peer's multicast to the class's devices goes to
/// `forward_cast`, matched before the per-device dispatch.
fn class_rules(
    policy: &Policy,
    opts: &Options,
    c: &Class,
    n: &Names,
    sets: &mut Sets,
    forward_cast: &mut Vec<String>,
    ct_objects: &mut BTreeMap<String, String>,
) -> Result<ClassChains, EmitError> {
    let mut cc = ClassChains::default();
    let iif = n
        .interface
        .as_ref()
        .map(|i| ifnames("iifname", std::slice::from_ref(i)));
    let oif = n
        .interface
        .as_ref()
        .map(|i| ifnames("oifname", std::slice::from_ref(i)));
    for r in &c.rules {
        let cm = comment(r)?;
        let device = r.initiator == Initiator::Device;
        // DHCP discovery from 0.0.0.0 is admitted per interface (and MACs) in `input`
        // (`dhcp`); its renewals are unicast to its peers, below. Its broadcasts from the
        // device's own address (REBINDING, RFC 2131 section 4.4.5) reach the firewall through
        // the dispatch: the local rule of a server on the firewall covers them, and a relayed
        // one (a server elsewhere) gets its own.
        if r.is_dhcp_broadcast() && device && !r.peers.firewall && n.fams.contains(&Family::V4) {
            if let Some(m) = l4(r, Some(Family::V4))? {
                push(
                    &mut cc.local,
                    format!("ip daddr 255.255.255.255 {m} accept {cm}"),
                );
            }
        }
        if r.broadcast && !r.is_dhcp_broadcast() {
            // The firewall's own broadcasts leave through its open output hook.
            if r.peers.firewall && !device {
                continue;
            }
            let peer_if = if r.peers.firewall {
                None
            } else {
                peer_interfaces(policy, &r.peers, T)?
            };
            for fam in n.fams.iter().copied() {
                let Some(dst) = cast_destinations(r, fam, n.networks) else {
                    continue;
                };
                let Some(m) = l4(r, Some(fam))? else { continue };
                let accept = format!("accept {cm}");
                if r.peers.firewall {
                    let line = rule(&[iif.as_deref(), Some(&dst), Some(&m)], &accept);
                    push(&mut cc.local, line);
                } else if device {
                    let o = peer_if.as_ref().map(|v| ifnames("oifname", v));
                    let parts = [iif.as_deref(), o.as_deref(), Some(&dst), Some(&m)];
                    push(&mut cc.out, rule(&parts, &accept));
                } else {
                    // A peer's multicast to the device is addressed to the group, not to the
                    // device: it is matched before the per-device dispatch.
                    let i = peer_if.as_ref().map(|v| ifnames("iifname", v));
                    for pm in sets.peers(r, fam, "saddr", opts)? {
                        let parts = [
                            i.as_deref(),
                            oif.as_deref(),
                            Some(pm.as_str()),
                            Some(&dst),
                            Some(&m),
                        ];
                        push(forward_cast, rule(&parts, &accept));
                    }
                }
            }
            continue;
        }
        // Connections the firewall itself opens towards a device pass its output hook, which
        // this table leaves open: only device-initiated local flows have rules.
        if r.peers.firewall && device {
            let fits = r
                .protocol
                .family()
                .is_none_or(|f| n.fams.contains(&Family::from(f)));
            if let Some(m) = l4(r, None)?.filter(|_| fits) {
                let ct = ct_timeout(c, r, opts, ct_objects)?;
                push(&mut cc.local, format!("{m} {ct}accept {cm}"));
            }
        }
        let (chain, dir) = if device {
            (&mut cc.out, "daddr")
        } else {
            (&mut cc.inn, "saddr")
        };
        let ct = ct_timeout(c, r, opts, ct_objects)?;
        for fam in n.fams.iter().copied() {
            let Some(m) = l4(r, Some(fam))? else { continue };
            for pm in sets.peers(r, fam, dir, opts)? {
                push(chain, format!("{pm} {m} {ct}accept {cm}"));
            }
        }
    }
    Ok(cc)
}

/// DHCP broadcasts admitted on one interface for one flow: the MACs (with each group's
/// addresses, for its own-address broadcasts), or any.
#[derive(Default)]
struct Dhcp {
    macs: BTreeSet<Mac>,
    /// Each group with MACs: its MACs and its IPv4 addresses.
    owners: Vec<(BTreeSet<Mac>, Vec<IpNet>)>,
    any: bool,
}

/// DHCP broadcasts in `input`, per interface and flow. A client without an address sends
/// its DHCPDISCOVER and its INIT/INIT-REBOOT DHCPREQUEST from 0.0.0.0 (RFC 2131 sections 4.1
/// and 4.4.1): admitted from the groups' MACs, or from any MAC where a group gives none;
/// this is the only rule that names no device address, so only the source 0.0.0.0 passes
/// it. A device broadcasting from its own address (REBINDING, section 4.4.5) is admitted
/// by its class's `_local` chain through the dispatch, like its unicast renewal, so a group
/// whose profile has no DHCP flow reaches its drop chain. On an interface whose devices all
/// have MACs, every other DHCP broadcast goes to `unlisted_mac`; the own-address broadcasts
/// of the groups with MACs are admitted just before it, from their MACs and addresses.
/// Returns the groups admitted from any MAC, for the header.
fn dhcp(
    policy: &Policy,
    classes: &Classes,
    names: &[Names],
) -> Result<(Vec<String>, Vec<String>, AnyMac), EmitError> {
    let mut dhcp: BTreeMap<(Option<String>, String, String), Dhcp> = BTreeMap::new();
    let mut any_mac = AnyMac::default();
    for g in &policy.groups {
        let ci = classes.of_group[g.id.as_str()];
        let (c, ifc) = (&classes.list[ci], &names[ci].interface);
        for r in c
            .rules
            .iter()
            .filter(|r| r.is_dhcp_broadcast() && r.initiator == Initiator::Device)
        {
            let Some(m) = l4(r, Some(Family::V4))? else {
                continue;
            };
            let e = dhcp.entry((ifc.clone(), m, comment(r)?)).or_default();
            if g.macs.is_empty() {
                e.any = true;
                any_mac.add(ifc.as_deref(), r.provenance(), &g.id);
            } else {
                e.macs.extend(g.macs.iter().copied());
                let v4: Vec<IpNet> = g
                    .addresses
                    .iter()
                    .filter(|a| Family::of(a) == Family::V4)
                    .copied()
                    .collect();
                if !v4.is_empty() {
                    e.owners.push((g.macs.iter().copied().collect(), v4));
                }
            }
        }
    }
    let ether = |macs: &BTreeSet<Mac>| {
        format!(
            "ether saddr {}",
            values(macs.iter().map(ToString::to_string))
        )
    };
    let mut admitted = Vec::new();
    // The owners' rules grow with the devices (one per group with MACs): duplicates are
    // found by hash, not by `push`'s scan of the chain (which made 100,000 groups from an
    // inventory compile in 6.5 s instead of 2: `bench/growth.sh`).
    let mut seen: rustc_hash::FxHashSet<String> = rustc_hash::FxHashSet::default();
    let mut unlisted = Vec::new();
    for ((ifc, m, cm), d) in &dhcp {
        let iif = ifc
            .as_ref()
            .map(|i| ifnames("iifname", std::slice::from_ref(i)));
        let mac = (!d.any).then(|| ether(&d.macs));
        let parts = [
            iif.as_deref(),
            mac.as_deref(),
            Some("ip saddr 0.0.0.0 ip daddr 255.255.255.255"),
            Some(m.as_str()),
        ];
        let accept = format!("accept {cm}");
        let line = rule(&parts, &accept);
        seen.insert(line.clone());
        admitted.push(line);
        let any_here = dhcp.iter().any(|((i, _, _), x)| i == ifc && x.any);
        if !any_here {
            for (macs, addrs) in &d.owners {
                let src = format!("ip saddr {}", values(addrs.iter().map(net)));
                let mac = ether(macs);
                let parts = [
                    iif.as_deref(),
                    Some(mac.as_str()),
                    Some(src.as_str()),
                    Some("ip daddr 255.255.255.255"),
                    Some(m.as_str()),
                ];
                let line = rule(&parts, &accept);
                portolan_model::work::visit(1);
                if seen.insert(line.clone()) {
                    admitted.push(line);
                }
            }
            let parts = [
                iif.as_deref(),
                Some("ip daddr 255.255.255.255 udp dport 67"),
            ];
            push(&mut unlisted, rule(&parts, "goto unlisted_mac"));
        }
    }
    Ok((admitted, unlisted, any_mac))
}

/// The dispatch maps' elements (each device address to its class's chains and its group's
/// drop chain) and the groups' drop chains.
fn dispatch(
    policy: &Policy,
    classes: &Classes,
    names: &[Names],
    has: &[[bool; 3]],
    limit: &str,
    maps: &mut Maps,
) -> Result<Vec<Chain>, EmitError> {
    // The dispatch maps' names, by family and by whether they hold single addresses
    // (`fwd_src4h`) or prefixes (`fwd_src4`), and each class's verdicts: written once here, not
    // formatted again for every device address (a tenth of a 100,000-group compile did that).
    const DISPATCH: [&str; 5] = ["fwd_src", "fwd_dst", "local_src", "drop_src", "drop_dst"];
    let map_names: Vec<[String; 4]> = DISPATCH
        .iter()
        .map(|m| {
            [
                format!("{m}4"),
                format!("{m}4h"),
                format!("{m}6"),
                format!("{m}6h"),
            ]
        })
        .collect();
    let verdicts: Vec<[String; 3]> = names
        .iter()
        .map(|n| {
            let class = &n.name;
            [
                format!("jump {class}_out"),
                format!("jump {class}_in"),
                format!("jump {class}_local"),
            ]
        })
        .collect();
    let mut drops = Vec::new();
    for g in &policy.groups {
        let ci = classes.of_group[g.id.as_str()];
        let [has_out, has_in, has_local] = has[ci];
        let drop = object(&["drop", &g.id]);
        let prefix = safe_text(
            T,
            "log prefix",
            &format!("portolan {}: ", truncate(&g.id, 100)),
        )?;
        let goto_drop = format!("goto {drop}");
        drops.push(Chain::new(
            drop,
            vec![
                format!("{limit} log prefix \"{prefix}\" level info"),
                "drop".into(),
            ],
        ));
        let [out, into, local] = &verdicts[ci];
        let wanted = [
            (has_out, out),
            (has_in, into),
            (has_local, local),
            (true, &goto_drop),
            (true, &goto_drop),
        ];
        for a in &g.addresses {
            // Single addresses go to hash maps (`…h`), prefixes to interval maps: a hash map
            // loads about three times faster, and sites list devices mostly one by one.
            let host = a.prefix_len() == a.max_prefix_len();
            let fam = Family::of(a);
            let which = match fam {
                Family::V4 => 0,
                Family::V6 => 2,
            } + usize::from(host);
            let a = net(a);
            for (m, (on, verdict)) in wanted.iter().enumerate() {
                if *on {
                    let mut element = String::with_capacity(a.len() + 3 + verdict.len());
                    element.push_str(&a);
                    element.push_str(" : ");
                    element.push_str(verdict);
                    add(maps, &map_names[m][which], fam, !host, element);
                }
            }
        }
    }
    Ok(drops)
}

/// Spoofing: each owned address range jumps (`zones4`, `zones6`) to its zone's chain, which
/// returns for the zone's interface and otherwise logs and drops.
fn spoofing(policy: &Policy, limit: &str, maps: &mut Maps) -> Result<Vec<Chain>, EmitError> {
    let own = Ownership::of(policy, T)?;
    let mut used_zones = BTreeSet::new();
    for fam in [Family::V4, Family::V6] {
        for (range, z) in own.ranges(fam) {
            let chain = object(&["from", &own.zones[z].id]);
            let name = format!("zones{}", fam.n());
            add(maps, &name, fam, true, format!("{range} : jump {chain}"));
            used_zones.insert(z);
        }
    }
    let mut chains = Vec::new();
    for z in used_zones {
        let zone = &own.zones[z];
        let prefix = safe_text(
            T,
            "log prefix",
            &format!("portolan spoofed {}: ", truncate(&zone.id, 90)),
        )?;
        chains.push(Chain::new(
            object(&["from", &zone.id]),
            vec![
                format!("iifname \"{}\" return", zone.interface),
                format!("{limit} log prefix \"{prefix}\" level info"),
                "counter drop".to_string(),
            ],
        ));
    }
    Ok(chains)
}

/// Names are injective by construction (`names`); refuses a collision anyway rather than let
/// `nft -f` merge two sets or chains, and a static set named as a DNS-filled one.
fn check_names(sets: &Sets, maps: &Maps, chains: &[Chain]) -> Result<(), EmitError> {
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
    for c in chains {
        if !seen.insert(c.name.as_str()) {
            return Err(EmitError::Unsafe {
                target: T,
                what: "duplicate chain name",
                value: c.name.clone(),
            });
        }
    }
    Ok(())
}

/// The base chains: `forward` (spoofing, return traffic, multicast from peers, dispatch, log)
/// and `input` (spoofing, return traffic, DHCP discovery, neighbour discovery, dispatch).
fn hooks(
    maps: &Maps,
    forward_cast: Vec<String>,
    input_dhcp: Vec<String>,
    has_v6: bool,
    limit: &str,
) -> Vec<Chain> {
    let vmaps = |rules: &mut Vec<String>, prefix: &str, names: &[&str], dir: &str| {
        for n in names {
            for f in ["4h", "4", "6h", "6"] {
                let m = format!("{n}{f}");
                if maps.contains_key(&m) {
                    let ipk = if f.starts_with('4') { "ip" } else { "ip6" };
                    rules.push(format!("{prefix}{ipk} {dir} vmap @{m}"));
                }
            }
        }
    };
    let mut forward = Vec::new();
    vmaps(&mut forward, "", &["zones"], "saddr");
    forward.push("ct state established,related accept comment \"return traffic\"".into());
    forward.push("ct state invalid drop".into());
    forward.extend(forward_cast);
    vmaps(&mut forward, "", &["fwd_src"], "saddr");
    vmaps(&mut forward, "", &["fwd_dst"], "daddr");
    vmaps(&mut forward, "", &["drop_src"], "saddr");
    vmaps(&mut forward, "", &["drop_dst"], "daddr");
    forward.push(format!(
        "{limit} log prefix \"portolan unmatched: \" level info"
    ));
    let mut input = Vec::new();
    // The firewall's own packets to its own addresses come in on `lo`.
    vmaps(&mut input, "iif != \"lo\" ", &["zones"], "saddr");
    input.push("ct state established,related accept".into());
    input.push("ct state invalid drop".into());
    input.extend(input_dhcp);
    // IPv6 devices resolve the firewall's link-layer address (and answer its own
    // solicitations) with ICMPv6 neighbour discovery, which plays ARP's role and, unlike ARP,
    // passes this chain: without it no IPv6 device reaches the firewall or through it. Only
    // on-link messages (hop limit 255, RFC 4861).
    if has_v6 {
        input.push("icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit } ip6 hoplimit 255 accept comment \"IPv6 neighbour discovery\"".into());
    }
    vmaps(&mut input, "", &["local_src", "drop_src"], "saddr");
    vec![
        Chain {
            name: "forward".into(),
            hook: Some("type filter hook forward priority filter; policy drop;"),
            rules: forward,
        },
        Chain {
            name: "input".into(),
            hook: Some("type filter hook input priority filter; policy accept;"),
            rules: input,
        },
    ]
}

/// The `doh4`/`doh6` sets: the shipped DoH addresses and the site's own, by family.
fn doh_sets(opts: &Options) -> Vec<super::ruleset::Set> {
    let all: BTreeSet<std::net::IpAddr> = crate::doh::addresses()
        .into_iter()
        .chain(opts.doh.iter().copied())
        .collect();
    DOH_SETS
        .iter()
        .map(|(fam, name)| super::ruleset::Set {
            name: (*name).to_string(),
            fam: *fam,
            pair: false,
            port: false,
            elements: all
                .iter()
                .filter(|a| a.is_ipv4() == (*fam == Family::V4))
                .map(ToString::to_string)
                .collect(),
        })
        .collect()
}

/// The `nat` prerouting chain of `--dns-redirect`: plain DNS (TCP and UDP 53) from a site
/// device to an address not the firewall's own is logged, counted and redirected to port 53
/// of the address it arrived on (nft(8), REDIRECT: the incoming interface's primary address),
/// where the forwarder listens. Conntrack rewrites the answers' source back, so the device
/// sees the resolver it asked.
fn dns_redirect(policy: &Policy, limit: &str) -> Chain {
    let mut rules = Vec::new();
    for (fam, ipk) in [(Family::V4, "ip"), (Family::V6, "ip6")] {
        let addrs: BTreeSet<String> = policy
            .groups
            .iter()
            .flat_map(|g| &g.addresses)
            .filter(|a| Family::of(a) == fam)
            .map(ToString::to_string)
            .collect();
        if addrs.is_empty() {
            continue;
        }
        let m = format!(
            "{ipk} saddr {{ {} }} fib daddr type != local meta l4proto {{ tcp, udp }} th dport 53",
            addrs.into_iter().collect::<Vec<_>>().join(", ")
        );
        rules.push(format!(
            "{m} {limit} log prefix \"portolan dns redirect: \" level info"
        ));
        rules.push(format!("{m} counter redirect to :53"));
    }
    Chain {
        name: "dns_redirect".into(),
        hook: Some("type nat hook prerouting priority dstnat; policy accept;"),
        rules,
    }
}
