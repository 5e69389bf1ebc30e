//! Aerleon back end: the policy as an Aerleon policy set, for Aerleon's generators to turn
//! into Juniper, SRX, Cisco IOS/ASA/NX-OS/XR, Arista, Palo Alto, pf, nftables and iptables
//! configuration (`aclgen --base_directory policies --definitions_directory def`).
//!
//! Files: `def/networks.yaml` (every address set: a device group's addresses, a flow's peers,
//! a flow's names), `def/services.yaml` (a flow's ports, per protocol) and one policy per
//! platform, `policies/pol/portolan-<platform>.yaml`. Each IR rule is one term whose comment
//! is its `profile/flow` and group; every filter ends with an explicit deny (Palo Alto admits
//! intrazone traffic by default, so the end of a rule list is not a deny everywhere).
//!
//! What a platform keeps ([`Platform`]):
//! - **Names.** Only SRX has DNS-name address objects in Aerleon (`dns-name`, written from a
//!   term's `destination-fqdn`): its terms keep the profile's names. Every other platform
//!   needs addresses: the names must be resolved at compile time (`compile --resolve`), and
//!   the policy's header and the networks' comments say which addresses came from which
//!   name with which TTL, to be refreshed before it passes. A name not resolved is an error,
//!   never a wider rule. Wildcard domains (`*.example.com`) have no address list and no
//!   Aerleon object on any platform: refused (the proxy target can enforce them).
//! - **State.** Stateful platforms (SRX, ASA, Palo Alto, pf, nftables, iptables) get one term
//!   per opening direction; stateless filters (Juniper, Cisco IOS/NX-OS/XR, Arista) also get
//!   a return term per flow: TCP replies with `tcp-established`, UDP and other protocols from
//!   the peer's port back (as wide as a stateless filter can be), ICMP echo replies.
//! - **The firewall's own services** (DNS, DHCP, NTP on the firewall) are a filter on the
//!   box's input only for nftables and iptables; elsewhere they are the platform's
//!   control-plane settings, named in the policy's header and not written.
//! - **Interfaces.** Aerleon writes a term's `source-interface` for nftables, iptables and
//!   pf: there each term names the interface its sender sits behind (the device zone's, or
//!   the peers' zone's when they all lie in one zone), which is Portolan's spoofing check per
//!   term, and the firewall's own filter admits `lo`. The other platforms' terms match
//!   addresses only (bind the filter to the right interface or zone by hand).
//! - **What Aerleon terms cannot say**: MAC addresses (DHCP discovery is admitted from
//!   0.0.0.0 of any MAC), the output interface of forwarded multicast. The policy's header
//!   lists them.

mod platform;
mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use ipnet::IpNet;
use portolan_model::ir::{Initiator, IpProto, Policy, PortRange, Rule};

pub use platform::{Hook, Platform};
use yaml::{Filter, Net, Networks, Services, Term};

use crate::names::{safe_hostname, safe_interface, safe_text, Family};
use crate::{EmitError, Options};

const T: &str = "aerleon";

pub use crate::File;

/// The platforms written when `Options::aerleon_platforms` is empty: every one this back end
/// knows.
pub fn default_platforms() -> Vec<Platform> {
    Platform::ALL.to_vec()
}

/// Every file of the policy set, in a stable order: definitions, then one policy per platform.
pub fn files(policy: &Policy, opts: &Options) -> Result<Vec<File>, EmitError> {
    let mut platforms = if opts.aerleon_platforms.is_empty() {
        default_platforms()
    } else {
        opts.aerleon_platforms.clone()
    };
    platforms.sort();
    platforms.dedup();
    let mut b = Builder::new(policy, opts)?;
    let mut out = Vec::new();
    let mut pols = Vec::new();
    for p in &platforms {
        pols.push(File {
            path: format!("policies/pol/portolan-{}.yaml", p.name()),
            text: b.policy_for(*p)?,
        });
    }
    out.push(File {
        path: "def/networks.yaml".into(),
        text: b.nets.render(),
    });
    out.push(File {
        path: "def/services.yaml".into(),
        text: b.svcs.render(),
    });
    out.extend(pols);
    Ok(out)
}

/// The policy set as one text: each file after a `# ==> path <==` line (what `compile -o DIR`
/// writes as separate files).
pub fn emit(policy: &Policy, opts: &Options) -> Result<String, EmitError> {
    let mut o = String::new();
    for f in files(policy, opts)? {
        let _ = writeln!(o, "# ==> {} <==", f.path);
        o.push_str(&f.text);
    }
    Ok(o)
}

/// Aerleon's ICMP type names where they differ from nft's (Aerleon's "Nftables" reference,
/// "ICMP Types": the policy.py name beside the nftables name of each type).
fn icmp_name(v6: bool, nft: &str) -> &str {
    match (v6, nft) {
        (false, "destination-unreachable") => "unreachable",
        (false, "info-request") => "information-request",
        (false, "info-reply") => "information-reply",
        (false, "address-mask-request") => "mask-request",
        (false, "address-mask-reply") => "mask-reply",
        (true, "mld-listener-query") => "multicast-listener-query",
        (true, "mld-listener-report") => "multicast-listener-report",
        (true, "mld-listener-done" | "mld-listener-reduction") => "multicast-listener-done",
        (true, "nd-router-solicit") => "router-solicit",
        (true, "nd-router-advert") => "router-advertisement",
        (true, "nd-neighbor-solicit") => "neighbor-solicit",
        (true, "nd-neighbor-advert") => "neighbor-advertisement",
        (true, "nd-redirect") => "redirect-message",
        (true, "ind-neighbor-solicit") => "inverse-neighbor-discovery-solicitation",
        (true, "ind-neighbor-advert") => "inverse-neighbor-discovery-advertisement",
        (true, "mld2-listener-report") => "version-2-multicast-listener-report",
        (_, other) => other,
    }
}

/// A rule's protocol as Aerleon reads it: its name where Aerleon knows one, else the number.
fn proto_word(p: IpProto) -> String {
    match p {
        IpProto::ICMPV6 => "icmpv6".into(),
        p => p
            .name()
            .map(str::to_string)
            .unwrap_or_else(|| p.number().to_string()),
    }
}

/// Keeps only the prefixes of `fam` (all when `None`).
fn of_family(v: &[IpNet], fam: Option<Family>) -> Vec<IpNet> {
    v.iter()
        .copied()
        .filter(|n| fam.is_none_or(|f| Family::of(n) == f))
        .collect()
}

/// A term name: `t<n>-<group>-<flow>`, at most 24 characters (iptables' limit, the shortest
/// of the generators'); the number keeps names unique.
fn term_name(prefix: char, n: usize, group: &str, flow: &str) -> String {
    let mut s = format!("{prefix}{n}-{group}-{flow}");
    s = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    s.truncate(24);
    s.trim_end_matches('-').to_string()
}

/// The side of a rule that is not the device, as network tokens per use.
struct Side {
    /// Address tokens (static prefixes, resolved names, multicast groups).
    addrs: Vec<String>,
    /// SRX: FQDN tokens.
    fqdns: Vec<String>,
}

struct Builder<'a> {
    policy: &'a Policy,
    opts: &'a Options,
    nets: Networks,
    svcs: Services,
    /// Families of the site's device addresses.
    families: Vec<Family>,
    /// Names resolved at compile time and used: name → (addresses, TTL seconds).
    resolved_used: BTreeMap<String, (Vec<String>, u64)>,
}

impl<'a> Builder<'a> {
    fn new(policy: &'a Policy, opts: &'a Options) -> Result<Self, EmitError> {
        let mut families: Vec<Family> = policy
            .groups
            .iter()
            .flat_map(|g| g.addresses.iter().map(Family::of))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if families.is_empty() {
            families.push(Family::V4);
        }
        safe_text(T, "site name", &policy.site)?;
        for r in &policy.rules {
            if let Some(w) = r.peers.wildcards.first() {
                return Err(EmitError::Unsupported {
                    target: T,
                    what: format!(
                        "the wildcard domain *.{w} of {} (group {}): Aerleon has no object for a wildcard domain on any platform; enforce it with --target squid or nftables",
                        r.provenance(),
                        r.group
                    ),
                });
            }
        }
        Ok(Builder {
            policy,
            opts,
            nets: Networks::default(),
            svcs: Services::default(),
            families,
            resolved_used: BTreeMap::new(),
        })
    }

    /// The network token of a group's addresses (of one family when the rule says so).
    fn device(&mut self, r: &Rule) -> Result<Option<String>, EmitError> {
        let g = self
            .policy
            .groups
            .iter()
            .find(|g| g.id == r.group)
            .ok_or_else(|| EmitError::Unsupported {
                target: T,
                what: format!("rule {} of unknown group {}", r.provenance(), r.group),
            })?;
        let fam = r.family.map(Family::from);
        let addrs = of_family(&g.addresses, fam);
        if addrs.is_empty() {
            return Ok(None);
        }
        let comment = format!("devices {} ({}), zone {}", g.id, g.profile, g.zone);
        let vals = addrs.iter().map(|a| Net::Addr(*a, None)).collect();
        Ok(Some(self.nets.add(&["dev", &g.id], &comment, vals)?))
    }

    /// The peers of `r` (not the firewall) as tokens for `p`.
    fn peers(&mut self, r: &Rule, p: Platform) -> Result<Side, EmitError> {
        let fam = r.family.map(Family::from);
        let prov = r.provenance();
        let mut side = Side {
            addrs: Vec::new(),
            fqdns: Vec::new(),
        };
        let statics = if r.multicast.is_empty() {
            of_family(&r.peers.prefixes, fam)
        } else {
            // A forwarded multicast rule admits the groups; its prefixes say where to.
            of_family(&r.multicast, fam)
        };
        if !statics.is_empty() {
            let vals = statics.iter().map(|a| Net::Addr(*a, None)).collect();
            let kind = if r.multicast.is_empty() {
                "peers"
            } else {
                "multicast groups"
            };
            side.addrs.push(self.nets.add(
                &["peer", &r.profile, &r.flow],
                &format!("{kind} of {prov}"),
                vals,
            )?);
        }
        let mut names = r.peers.names.clone();
        names.sort();
        names.dedup();
        if names.is_empty() {
            return Ok(side);
        }
        for n in &names {
            safe_hostname(T, n)?;
        }
        if p.dns_names() {
            let vals = names.iter().map(|n| Net::Fqdn(n.clone())).collect();
            side.fqdns.push(self.nets.add(
                &["fqdn", &r.profile, &r.flow],
                &format!("names of {prov} (SRX dns-name: the device resolves them)"),
                vals,
            )?);
            return Ok(side);
        }
        let mut vals = Vec::new();
        for n in &names {
            let Some(res) = self.opts.resolved.get(n) else {
                return Err(EmitError::Unsupported {
                    target: T,
                    what: format!(
                        "the name {n} of {prov} (group {}) on {p}: only srx has DNS-name objects in Aerleon; compile with --resolve to write today's addresses (to be refreshed before their TTL passes), or choose --aerleon-platform srx",
                        r.group
                    ),
                });
            };
            let ttl = res.ttl.as_secs();
            let mut shown = Vec::new();
            for a in &res.addresses {
                let net = IpNet::from(*a);
                if fam.is_none_or(|f| Family::of(&net) == f) {
                    vals.push(Net::Addr(
                        net,
                        Some(format!("{n}, TTL {ttl} s at compile time")),
                    ));
                }
                shown.push(a.to_string());
            }
            self.resolved_used.insert(n.clone(), (shown, ttl));
        }
        if !vals.is_empty() {
            side.addrs.push(self.nets.add(
                &["dns", &r.profile, &r.flow],
                &format!("names of {prov}, resolved at compile time: refresh"),
                vals,
            )?);
        }
        Ok(side)
    }

    /// A service token for `ports` of `proto` (none for no ports).
    fn service(
        &mut self,
        ports: &[PortRange],
        proto: IpProto,
        what: &str,
        r: &Rule,
    ) -> Option<String> {
        if ports.is_empty() || !proto.has_ports() {
            return None;
        }
        let word = proto_word(proto);
        let entries = ports
            .iter()
            .map(|p| (p.to_string(), word.clone()))
            .collect();
        Some(self.svcs.add(&[what, &r.profile, &r.flow], entries))
    }

    /// The terms of `r` for `p`, forward or local.
    fn terms(
        &mut self,
        n: usize,
        r: &Rule,
        p: Platform,
        hook: Hook,
    ) -> Result<Vec<Term>, EmitError> {
        let local = r.peers.firewall;
        let forwarded = !r.peers.prefixes.is_empty() || !r.peers.names.is_empty();
        let wanted = match hook {
            Hook::Local => local && r.initiator == Initiator::Device,
            Hook::Forward => forwarded,
        };
        if !wanted {
            return Ok(Vec::new());
        }
        let Some(dev) = self.device(r)? else {
            return Ok(Vec::new());
        };
        let prov = safe_text(T, "provenance", &r.provenance())?;
        // Aerleon writes comments into every platform's output (Cisco `remark`, Junos
        // `/* */`): only checked text reaches them.
        let group = safe_text(T, "group id", &r.group)?;
        let initiated = match r.initiator {
            Initiator::Device => "device-initiated",
            Initiator::Peer => "peer-initiated",
        };
        let mut t = Term {
            name: term_name('t', n, &r.group, &r.flow),
            comment: format!("{prov}: group {group}, {initiated}"),
            protocol: Some(proto_word(r.protocol)),
            action: "accept".into(),
            ..Term::default()
        };
        if let Some(icmp) = &r.icmp_type {
            let name = icmp_name(r.protocol == IpProto::ICMPV6, icmp).to_string();
            t.icmp_type = vec![name.clone()];
            if p == Platform::Nftables {
                // Aerleon 1.18.0's nftables generator fails on a single ICMP type
                // (`PortsAndProtocols` hands the list to a string join: "can only
                // concatenate str (not "list") to str"); the same type twice makes it write
                // an anonymous set, which nft merges into `icmp type { echo-request }`.
                t.icmp_type.push(name);
            }
        }
        if p.interfaces() {
            t.src_if = self.sender_interface(r)?;
        }
        t.dport = self.service(&r.ports, r.protocol, "svc", r);
        t.sport = self.service(&r.src_ports, r.protocol, "src", r);
        match hook {
            Hook::Local => {
                t.src = vec![dev];
                if r.is_dhcp_broadcast() {
                    // Discovery comes from 0.0.0.0 (RFC 2131 section 4.1).
                    t.src.push(self.nets.add(
                        &["unspecified4"],
                        "DHCP discovery source (RFC 2131 section 4.1)",
                        vec![Net::Addr(
                            "0.0.0.0/32".parse().expect("a literal prefix"),
                            None,
                        )],
                    )?);
                } else if r.broadcast && r.multicast.is_empty() {
                    let mut vals = vec![Net::Addr(
                        "255.255.255.255/32".parse().expect("a literal prefix"),
                        None,
                    )];
                    if let Some(g) = self.policy.group(&r.group) {
                        if let Some(z) = self.policy.zone(&g.zone) {
                            for net in &z.networks {
                                if let IpNet::V4(v4) = net {
                                    vals.push(Net::Addr(
                                        IpNet::from(std::net::IpAddr::V4(v4.broadcast())),
                                        None,
                                    ));
                                }
                            }
                        }
                    }
                    t.dst = vec![self.nets.add(
                        &["bcast", &r.group],
                        &format!("broadcast addresses of {}'s zone", r.group),
                        vals,
                    )?];
                } else if !r.multicast.is_empty() {
                    let vals = r.multicast.iter().map(|a| Net::Addr(*a, None)).collect();
                    t.dst = vec![self.nets.add(
                        &["mcast", &r.profile, &r.flow],
                        &format!("multicast groups of {prov}"),
                        vals,
                    )?];
                }
                Ok(vec![t])
            }
            Hook::Forward => {
                let side = self.peers(r, p)?;
                if side.addrs.is_empty() && side.fqdns.is_empty() {
                    return Ok(Vec::new());
                }
                match r.initiator {
                    Initiator::Device => {
                        t.src = vec![dev];
                        t.dst = side.addrs;
                        t.dst_fqdn = side.fqdns;
                    }
                    Initiator::Peer => {
                        t.src = side.addrs;
                        t.src_fqdn = side.fqdns;
                        t.dst = vec![dev];
                    }
                }
                let back = if p.stateful() {
                    None
                } else {
                    self.return_term(n, r, &t, &prov)
                };
                Ok(std::iter::once(t).chain(back).collect())
            }
        }
    }

    /// The interface the opening packet of `r` arrives on, where the site says it: the
    /// device zone's for a device-initiated rule, the peers' zone's for a peer-initiated rule
    /// whose peers all lie in one zone's networks.
    fn sender_interface(&self, r: &Rule) -> Result<Option<String>, EmitError> {
        let zone = match r.initiator {
            Initiator::Device => self
                .policy
                .group(&r.group)
                .and_then(|g| self.policy.zone(&g.zone)),
            Initiator::Peer => {
                let zones: BTreeSet<&str> = r
                    .peers
                    .prefixes
                    .iter()
                    .map(|p| {
                        self.policy
                            .zones
                            .iter()
                            .find(|z| z.networks.iter().any(|n| n.contains(p)))
                            .map_or("", |z| z.id.as_str())
                    })
                    .collect();
                match (zones.len(), zones.first()) {
                    (1, Some(z)) if !z.is_empty() && r.peers.names.is_empty() => {
                        self.policy.zone(z)
                    }
                    _ => None,
                }
            }
        };
        zone.and_then(|z| z.interface.as_deref())
            .map(|i| safe_interface(T, i))
            .transpose()
    }

    /// A stateless filter's term for the replies of `t`, if the protocol has replies a filter
    /// can name.
    fn return_term(&self, n: usize, r: &Rule, t: &Term, prov: &str) -> Option<Term> {
        let mut back = Term {
            name: term_name('r', n, &r.group, &r.flow),
            comment: format!("{prov}: replies (this platform keeps no state)"),
            protocol: t.protocol.clone(),
            action: "accept".into(),
            src: t.dst.clone(),
            dst: t.src.clone(),
            sport: t.dport.clone(),
            dport: t.sport.clone(),
            ..Term::default()
        };
        if r.protocol == IpProto::TCP {
            back.option = Some("tcp-established".into());
        } else if r.protocol.is_icmp() {
            match r.icmp_type.as_deref() {
                Some("echo-request") => back.icmp_type = vec!["echo-reply".into()],
                _ => return None,
            }
        }
        Some(back)
    }

    fn policy_for(&mut self, p: Platform) -> Result<String, EmitError> {
        let mut filters = Vec::new();
        let mut notes = Vec::new();
        for hook in [Hook::Forward, Hook::Local] {
            if hook == Hook::Local && !p.local() {
                let flows: BTreeSet<String> = self
                    .policy
                    .rules
                    .iter()
                    .filter(|r| r.peers.firewall)
                    .map(Rule::provenance)
                    .collect();
                if !flows.is_empty() {
                    notes.push(format!(
                        "Not written: services of the firewall itself ({}); on {p} they are its control-plane settings.",
                        flows.into_iter().collect::<Vec<_>>().join(", ")
                    ));
                }
                continue;
            }
            let mut terms = Vec::new();
            if hook == Hook::Local && p.interfaces() {
                terms.push(Term {
                    name: "loopback".into(),
                    comment: "Portolan: the firewall's traffic to itself".into(),
                    src_if: Some("lo".into()),
                    action: "accept".into(),
                    ..Term::default()
                });
            }
            if p.needs_replies_term() {
                terms.push(Term {
                    name: "replies".into(),
                    comment:
                        "Portolan: replies of the connections the terms below admit (conntrack)"
                            .into(),
                    option: Some("established".into()),
                    action: "accept".into(),
                    ..Term::default()
                });
            }
            for (i, r) in self.policy.rules.iter().enumerate() {
                terms.extend(self.terms(i + 1, r, p, hook)?);
            }
            terms.push(Term {
                name: "default-deny".into(),
                comment: "Portolan: everything the profiles do not name is denied".into(),
                action: "deny".into(),
                ..Term::default()
            });
            for fam in p.filter_families(&self.families) {
                let header = p.header(hook, fam).map_err(|why| EmitError::Unsupported {
                    target: T,
                    what: format!("{why} on {p}"),
                })?;
                filters.push(Filter {
                    comment: format!(
                        "Portolan site {}: {} traffic, generated, do not edit",
                        self.policy.site,
                        match hook {
                            Hook::Forward => "forwarded",
                            Hook::Local => "the firewall's own",
                        }
                    ),
                    target: p.name().to_string(),
                    options: header,
                    terms: terms.clone(),
                });
            }
        }
        let local_peer: BTreeSet<String> = self
            .policy
            .rules
            .iter()
            .filter(|r| r.peers.firewall && r.initiator == Initiator::Peer)
            .map(Rule::provenance)
            .collect();
        if !local_peer.is_empty() {
            notes.push(format!(
                "Not written: connections the firewall itself opens ({}): no output filter is generated.",
                local_peer.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
        let mut head = format!(
            "# Aerleon policy for {p}, Portolan site {}: generated, do not edit.\n",
            yaml::comment_safe(&self.policy.site)
        );
        head.push_str("# Every term's comment is the profile/flow it enforces.\n");
        if p.interfaces() {
            head.push_str("# Terms carry the interface their sender sits behind where the site gives it (source-interface).\n");
            head.push_str("# They cannot say: MAC addresses (DHCP discovery from 0.0.0.0 is admitted from any MAC), the\n");
            head.push_str("# output interface of forwarded multicast.\n");
        } else {
            head.push_str("# Aerleon terms cannot say here: interfaces (Portolan's spoofing check; the interface of broadcast,\n");
            head.push_str("# multicast and DHCP rules), MAC addresses (DHCP discovery from 0.0.0.0 is admitted from any MAC),\n");
            head.push_str("# the output interface of forwarded multicast.\n");
        }
        if !p.stateful() {
            head.push_str("# This platform keeps no state: each flow has a return term (TCP: established only).\n");
        }
        if p.dns_names() {
            head.push_str(
                "# Names are SRX dns-name address objects: the firewall resolves them.\n",
            );
        } else if !self.resolved_used.is_empty() {
            head.push_str("# Names became today's addresses (compile --resolve); refresh before their TTLs pass:\n");
            for (n, (addrs, ttl)) in &self.resolved_used {
                let _ = writeln!(head, "#   {n}: {} (TTL {ttl} s)", addrs.join(", "));
            }
        }
        for n in notes {
            let _ = writeln!(head, "# {}", yaml::comment_safe(&n));
        }
        Ok(head + &yaml::render_filters(&filters))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn term_names_fit_iptables_and_stay_unique() {
        let a = term_name('t', 7, "a-very-long-device-group", "cloud-443");
        assert!(a.len() <= 24, "{a}");
        assert_eq!(a, "t7-a-very-long-device-gr");
        assert_ne!(
            a,
            term_name('t', 8, "a-very-long-device-group", "cloud-443")
        );
    }

    #[test]
    fn icmp_names_follow_aerleons_table() {
        // Aerleon's Nftables reference, "ICMP Types": type 3 is `unreachable` in policy.py,
        // ICMPv6 type 135 `neighbor-solicit`.
        assert_eq!(icmp_name(false, "destination-unreachable"), "unreachable");
        assert_eq!(
            icmp_name(true, "destination-unreachable"),
            "destination-unreachable"
        );
        assert_eq!(icmp_name(true, "nd-neighbor-solicit"), "neighbor-solicit");
        assert_eq!(icmp_name(false, "echo-request"), "echo-request");
    }
}
