//! iptables back end: `ipset restore`, `iptables-restore` and `ip6tables-restore` input in one
//! file, with the semantics of the nftables back end.
//!
//! # Format and loading
//!
//! The output is one text file of four sections. Each starts with a marker line `#> NAME` and
//! runs to the next marker; every other line starting with `#` is a comment, which all three
//! tools skip. [`section`] extracts one.
//!
//! | section     | load with                    | what it does                                  |
//! |-------------|------------------------------|-----------------------------------------------|
//! | `ipset`     | `ipset restore -exist`       | creates and refills the sets (run it first)   |
//! | `iptables`  | `iptables-restore -w`        | replaces the IPv4 `filter` table, one commit  |
//! | `ip6tables` | `ip6tables-restore -w`       | replaces the IPv6 `filter` table, one commit  |
//! | `dnsmasq`   | copy into `dnsmasq.conf`     | `ipset=` lines filling the name sets          |
//!
//! ```sh
//! sec() { awk -v s="#> $1" '/^#> /{on=($0==s);next} on' policy.iptables; }
//! sec ipset | ipset restore -exist && sec iptables | iptables-restore -w \
//!   && sec ip6tables | ip6tables-restore -w
//! ```
//!
//! # Layout
//!
//! - Spoofing first, as in nftables: each zone that names an interface has a `hash:net` set of
//!   its addresses (`z4_<zone>`: its networks, or its devices where it lists none; another
//!   zone's prefixes nested inside are `nomatch`), and `PORTOLAN-FORWARD` and `PORTOLAN-INPUT`
//!   start with one rule per zone sending its addresses that arrive on another interface to
//!   `Z-<zone>` (log `portolan spoofed <zone>: `, drop).
//! - Groups of one zone with identical rules share a *class*, as in nftables. Each class has a
//!   `hash:net` set of its devices per family (`d4_<group>`), and chains named after its first
//!   group: `K-<group>-OUT` (device initiates), `-IN` (peer initiates), `-LOCAL` (services of
//!   the firewall), `-DROPS` and `-DROPD` (log and drop, device as source or destination).
//!   `PORTOLAN-FORWARD` and `PORTOLAN-INPUT`, jumped to from the built-in chains, dispatch with
//!   one `-m set --match-set` rule per class: a packet costs a number of set lookups that
//!   grows with the number of classes, never with the number of devices.
//! - Broadcast and multicast rules match the broadcast or group address and the zone's
//!   interface (`-i`, a site's trailing `*` written `+`); DHCP discovery is admitted in
//!   `PORTOLAN-INPUT` from the devices' MACs where the site gives them (`-m mac`, one rule per
//!   MAC), and other DHCP broadcasts on that interface go to `PORTOLAN-UNLISTED` (log, drop).
//! - Static peers are `hash:net` sets, or `hash:net,port` when the flow has ports (matched
//!   `dst,dst` or `src,dst`). Hostnames and wildcard domains are `hash:ip` sets with a default
//!   timeout ([`Options::dns_timeout`], one hour), named as the nftables sets are, filled at
//!   compile time (`--resolve`, each element with its record's TTL) or by dnsmasq (`ipset=`
//!   lines of the last section; those elements get the default timeout).
//! - Established and related traffic is accepted, invalid traffic dropped; a device's
//!   unmatched traffic is logged, rate-limited, with the prefix `portolan <group>: `, then
//!   dropped. Every rule carries `-m comment --comment "profile/flow"`.
//!
//! # Reloading
//!
//! The name sets are created with `-exist` and never flushed, so their elements survive a
//! reload, as in nftables. Each static set is filled in a twin (`t_<name>`) and swapped in
//! with `ipset swap`, so a set never appears half-filled. A set's name says its type (`d`,
//! `s`: `hash:net`; `p`: `hash:net,port`; `n`, `w`: `hash:ip`) and family, so a reload never
//! meets an existing set of another type.
//!
//! # Limits against nftables
//!
//! - Two commits per family, not one transaction: between `ipset restore` and
//!   `iptables-restore` the old rules already see the new static sets' contents.
//! - The restore input replaces the whole `filter` table (nftables owns only `inet portolan`):
//!   other rules in that table are removed. Built-in policies: `FORWARD` drop, `INPUT` and
//!   `OUTPUT` accept.
//! - Dispatch costs one set lookup per class (nftables: one verdict-map lookup). Dropped
//!   traffic of a class shared by several groups walks that class's addresses to find the log
//!   prefix (one rule per address), and each address has its own log rate bucket.
//! - `--log-prefix` holds 29 characters: a group id past 18 characters is written as its
//!   first 9 characters, `~` and a hash of the whole id, so prefixes stay distinct.
//! - ipset has no interval sets: a `hash:net,port` set stores each port of a range; flows
//!   whose ranges would need more than 4096 entries match the ports in the rule instead, with
//!   `multiport` (15 ports or ranges per rule). `hash:net` cannot hold a /0, so `any` is
//!   stored as its two halves.
//! - A set's parameters are fixed when it is created: changing `dns_timeout` needs the name
//!   sets destroyed first (`ipset restore -exist` refuses to redeclare them otherwise).
//! - Sets stay after the site stops using them (a set cannot be destroyed while the old rules
//!   refer to it); `ipset destroy` the unreferenced ones to tidy up.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use ipnet::IpNet;
use portolan_model::ir::{Initiator, Policy, Rule};

use crate::classes::{signature, Signature};
use crate::names::{
    dns_set, object, safe_hostname, safe_interface, safe_text, wildcard_dns_set, Family,
    IPSET_NAME_MAX,
};
use crate::{EmitError, Options};

mod matches;
mod scope;

use scope::{cast_destinations, if_options, peer_interfaces};

use matches::{chain_base, interface, l4, log_prefix, proto, range, set_nets};

const T: &str = "iptables";
/// The section markers of the output, in order.
pub const SECTIONS: [&str; 4] = ["ipset", "iptables", "ip6tables", "dnsmasq"];
/// Above this many `address,port` entries a static set holds addresses only.
const PORT_SET_LIMIT: u64 = 4096;
/// `--log-prefix` length limit of the LOG target.
const LOG_PREFIX_MAX: usize = 29;

/// The text of one section (`ipset`, `iptables`, `ip6tables`, `dnsmasq`) of an output.
pub fn section(text: &str, name: &str) -> String {
    let marker = format!("#> {name}");
    let mut on = false;
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("#> ") {
            on = line == marker;
            continue;
        }
        if on {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

struct Class<'a> {
    /// `K-<first group>`.
    chain: String,
    first_group: &'a str,
    rules: Vec<&'a Rule>,
    groups: Vec<&'a portolan_model::ir::Group>,
    /// The zone's interface, as iptables matches it.
    interface: Option<String>,
    networks: Vec<IpNet>,
}

/// A set of the output.
struct IpSet {
    name: String,
    /// `hash:net`, `hash:net,port` or `hash:ip`.
    ty: &'static str,
    fam: Family,
    elements: Vec<String>,
}

/// The dispatch rules of one family, by the chain part they go to.
#[derive(Default)]
struct Dispatch {
    spoof: Vec<String>,
    cast: Vec<String>,
    out: Vec<String>,
    inn: Vec<String>,
    local: Vec<String>,
    dhcp: Vec<String>,
    drop_src: Vec<String>,
    drop_dst: Vec<String>,
}

/// The chains and rules of one family.
#[derive(Default)]
struct Table {
    /// Chains in order, each with its rules.
    chains: Vec<(String, Vec<String>)>,
}

/// `-A CHAIN MATCHES -m comment --comment "C" -j TARGET`.
fn line(chain: &str, matches: &str, comment: &str, target: &str) -> String {
    let mut line = format!("-A {chain}");
    if !matches.is_empty() {
        line.push(' ');
        line.push_str(matches);
    }
    write!(line, " -m comment --comment \"{comment}\" -j {target}").ok();
    line
}

/// Pushes a rule unless the list has it already.
fn push(list: &mut Vec<String>, rule: String) {
    if !list.contains(&rule) {
        list.push(rule);
    }
}

impl Table {
    fn chain(&mut self, name: &str) {
        self.chains.push((name.to_string(), Vec::new()));
    }
    /// Appends a rule to a chain (one of the last declared, so the search is short), once.
    fn add(&mut self, chain: &str, matches: &str, comment: &str, target: &str) -> bool {
        let Some((_, rules)) = self.chains.iter_mut().rev().find(|(c, _)| c == chain) else {
            return false;
        };
        let l = line(chain, matches, comment, target);
        if rules.contains(&l) {
            return false;
        }
        rules.push(l);
        true
    }
}

/// The set a static set is refilled in before the swap.
fn twin(name: &str) -> String {
    if name.len() <= 29 {
        format!("t_{name}")
    } else {
        object(&["t", name])
    }
}

/// Printable ASCII for `#` comment lines.
fn plain(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// Emits the ruleset.
pub fn emit(policy: &Policy, opts: &Options) -> Result<String, EmitError> {
    // Classes: groups of one zone with identical rules.
    let mut by_group: BTreeMap<&str, Vec<&Rule>> = BTreeMap::new();
    for r in &policy.rules {
        by_group.entry(r.group.as_str()).or_default().push(r);
    }
    let mut classes: Vec<Class> = Vec::new();
    let mut by_sig: BTreeMap<(Signature, &str), usize> = BTreeMap::new();
    for g in &policy.groups {
        let rules = by_group.remove(g.id.as_str()).unwrap_or_default();
        let zone = policy.zone(&g.zone);
        let ifc = match zone.and_then(|z| z.interface.as_ref()) {
            Some(i) => Some(interface(&safe_interface(T, i)?)),
            None => None,
        };
        let idx = *by_sig
            .entry((signature(&rules), g.zone.as_str()))
            .or_insert_with(|| {
                classes.push(Class {
                    chain: chain_base("K", &g.id),
                    first_group: &g.id,
                    rules,
                    groups: Vec::new(),
                    interface: ifc,
                    networks: zone.map(|z| z.networks.clone()).unwrap_or_default(),
                });
                classes.len() - 1
            });
        classes[idx].groups.push(g);
    }

    let mut statics: Vec<IpSet> = Vec::new();
    let mut dynamic: BTreeMap<String, IpSet> = BTreeMap::new();
    let mut dns_lines: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    let mut tables: BTreeMap<Family, Table> = BTreeMap::new();
    let mut dispatch: BTreeMap<Family, Dispatch> = BTreeMap::new();
    let mut notes: Vec<String> = Vec::new();
    let rate = opts.log_rate.unwrap_or(5);
    let limit = format!("-m limit --limit {rate}/sec --limit-burst {rate}");

    // Spoofing: a set of each zone's addresses, a chain that logs and drops.
    scope::spoofing(policy, &mut tables, &mut dispatch, &mut statics, &limit)?;

    for fam in [Family::V4, Family::V6] {
        let t = tables.entry(fam).or_default();
        let d = dispatch.entry(fam).or_default();
        for c in &classes {
            let devices: Vec<IpNet> = c
                .groups
                .iter()
                .flat_map(|g| g.addresses.iter())
                .filter(|a| Family::of(a) == fam)
                .flat_map(set_nets)
                .collect();
            if devices.is_empty() {
                continue;
            }
            let dset = object(&[&format!("d{}", fam.n()), c.first_group]);
            statics.push(IpSet {
                name: dset.clone(),
                ty: "hash:net",
                fam,
                elements: devices.iter().map(ToString::to_string).collect(),
            });
            let (out, inn, loc) = (
                format!("{}-OUT", c.chain),
                format!("{}-IN", c.chain),
                format!("{}-LOCAL", c.chain),
            );
            let (drops, dropd) = (format!("{}-DROPS", c.chain), format!("{}-DROPD", c.chain));
            for ch in [&out, &inn, &loc, &drops, &dropd] {
                t.chain(ch);
            }
            let iif = c.interface.as_ref().map(|i| format!("-i {i} "));
            let iif = iif.as_deref().unwrap_or("");
            let (mut n_out, mut n_in, mut n_loc) = (0, 0, 0);
            for (i, r) in c.rules.iter().enumerate() {
                let cm = safe_text(T, "comment", &r.provenance())?;
                let device = r.initiator == Initiator::Device;
                // DHCP discovery is admitted in `PORTOLAN-INPUT` (`scope::dhcp`); its renewals
                // are unicast to its peers, below.
                if r.broadcast && !r.is_dhcp_broadcast() {
                    if r.peers.firewall && !device {
                        continue;
                    }
                    let Some(ms) = l4(r, fam, true)? else {
                        continue;
                    };
                    let peer_if = if r.peers.firewall {
                        None
                    } else {
                        peer_interfaces(policy, r)?
                    };
                    for dst in cast_destinations(r, fam, &c.networks) {
                        for m in &ms {
                            if r.peers.firewall {
                                n_loc += usize::from(t.add(
                                    &loc,
                                    &format!("{iif}-d {dst} {m}"),
                                    &cm,
                                    "ACCEPT",
                                ));
                            } else if device {
                                for o in if_options("-o", peer_if.as_ref()) {
                                    n_out += usize::from(t.add(
                                        &out,
                                        &format!("{iif}{o}-d {dst} {m}"),
                                        &cm,
                                        "ACCEPT",
                                    ));
                                }
                            } else {
                                // Addressed to the group, not to the device: matched before
                                // the per-device dispatch, from the peers' prefixes.
                                let oif = c
                                    .interface
                                    .as_ref()
                                    .map(|i| format!("-o {i} "))
                                    .unwrap_or_default();
                                for p in r.peers.prefixes.iter().filter(|p| Family::of(p) == fam) {
                                    for i in if_options("-i", peer_if.as_ref()) {
                                        push(
                                            &mut d.cast,
                                            line(
                                                "PORTOLAN-FORWARD",
                                                &format!("{i}{oif}-s {p} -d {dst} {m}"),
                                                &cm,
                                                "ACCEPT",
                                            ),
                                        );
                                    }
                                }
                            }
                        }
                    }
                    continue;
                }
                if r.peers.firewall && device {
                    for m in l4(r, fam, true)?.unwrap_or_default() {
                        n_loc += usize::from(t.add(&loc, &m, &cm, "ACCEPT"));
                    }
                }
                let (chain, dir) = if device { (&out, "dst") } else { (&inn, "src") };
                let count = if device { &mut n_out } else { &mut n_in };
                // Static prefixes.
                let pre: Vec<IpNet> = IpNet::aggregate(
                    &r.peers
                        .prefixes
                        .iter()
                        .copied()
                        .filter(|p| Family::of(p) == fam)
                        .collect::<Vec<_>>(),
                )
                .iter()
                .flat_map(set_nets)
                .collect();
                if !pre.is_empty() {
                    let per_net: u64 = r.ports.iter().map(|p| u64::from(p.hi - p.lo) + 1).sum();
                    let with_port = r.protocol.has_ports()
                        && !r.ports.is_empty()
                        && per_net * pre.len() as u64 <= PORT_SET_LIMIT;
                    if let Some(ms) = l4(r, fam, !with_port)? {
                        if with_port {
                            let name =
                                object(&[&format!("p{}", fam.n()), c.first_group, &i.to_string()]);
                            let kw = proto(r.protocol);
                            let elements = pre
                                .iter()
                                .flat_map(|n| {
                                    let kw = &kw;
                                    r.ports
                                        .iter()
                                        .map(move |p| format!("{n},{kw}:{}", range(p, '-')))
                                })
                                .collect();
                            statics.push(IpSet {
                                name: name.clone(),
                                ty: "hash:net,port",
                                fam,
                                elements,
                            });
                            for m in ms {
                                *count += usize::from(t.add(
                                    chain,
                                    &format!("{m} -m set --match-set {name} {dir},dst"),
                                    &cm,
                                    "ACCEPT",
                                ));
                            }
                        } else {
                            let name =
                                object(&[&format!("s{}", fam.n()), c.first_group, &i.to_string()]);
                            statics.push(IpSet {
                                name: name.clone(),
                                ty: "hash:net",
                                fam,
                                elements: pre.iter().map(ToString::to_string).collect(),
                            });
                            for m in ms {
                                *count += usize::from(t.add(
                                    chain,
                                    &format!("-m set --match-set {name} {dir} {m}"),
                                    &cm,
                                    "ACCEPT",
                                ));
                            }
                        }
                    }
                }
                // Hostnames and wildcard domains: DNS-filled sets.
                let mut dns: Vec<(String, Vec<String>)> = Vec::new();
                if !r.peers.names.is_empty() {
                    let mut names = r.peers.names.clone();
                    names.sort();
                    names.dedup();
                    for n in &names {
                        safe_hostname(T, n)?;
                    }
                    dns.push((dns_set(fam, &names, IPSET_NAME_MAX), names));
                }
                for w in &r.peers.wildcards {
                    safe_hostname(T, w)?;
                    dns.push((wildcard_dns_set(fam, w, IPSET_NAME_MAX), vec![w.clone()]));
                }
                for (name, domains) in dns {
                    let Some(ms) = l4(r, fam, true)? else {
                        continue;
                    };
                    let set = dynamic.entry(name.clone()).or_insert(IpSet {
                        name: name.clone(),
                        ty: "hash:ip",
                        fam,
                        elements: Vec::new(),
                    });
                    for dn in &domains {
                        if let Some(res) = opts.resolved.get(dn) {
                            let secs = res.ttl.as_secs().max(1);
                            for a in &res.addresses {
                                if a.is_ipv4() == (fam == Family::V4) {
                                    let e = format!("{a} timeout {secs}");
                                    if !set.elements.contains(&e) {
                                        set.elements.push(e);
                                    }
                                }
                            }
                        }
                    }
                    dns_lines.entry(domains).or_default().insert(name.clone());
                    for m in ms {
                        *count += usize::from(t.add(
                            chain,
                            &format!("-m set --match-set {name} {dir} {m}"),
                            &cm,
                            "ACCEPT",
                        ));
                    }
                }
            }
            // Log and drop, naming the group.
            for (chain, flag) in [(&drops, "-s"), (&dropd, "-d")] {
                for g in &c.groups {
                    let prefix = log_prefix(&g.id)?;
                    let log = format!("LOG --log-prefix \"{prefix}\" --log-level info");
                    if c.groups.len() == 1 {
                        t.add(chain, &limit, "portolan default drop", &log);
                    } else {
                        for a in g.addresses.iter().filter(|a| Family::of(a) == fam) {
                            t.add(
                                chain,
                                &format!("{flag} {a} {limit}"),
                                "portolan default drop",
                                &log,
                            );
                        }
                    }
                }
                t.add(chain, "", "portolan default drop", "DROP");
            }
            let first = safe_text(T, "group id", c.first_group)?;
            let cm = format!("portolan class of {first}");
            let rule = |dir: &str, verb: &str, chain: &str| {
                format!(
                    "-m set --match-set {dset} {dir} -m comment --comment \"{cm}\" -{verb} {chain}"
                )
            };
            if n_out > 0 {
                d.out.push(rule("src", "j", &out));
            }
            if n_in > 0 {
                d.inn.push(rule("dst", "j", &inn));
            }
            if n_loc > 0 {
                d.local.push(rule("src", "j", &loc));
            }
            d.drop_src.push(rule("src", "g", &drops));
            d.drop_dst.push(rule("dst", "g", &dropd));
        }
        // Empty class chains are not written.
        t.chains.retain(|(_, rules)| !rules.is_empty());
    }

    // DHCP discovery, per interface and flow, from the groups' MACs.
    scope::dhcp(&classes, &mut tables, &mut dispatch, &mut notes, &limit)?;

    // No two sets share a name (they would merge).
    let mut seen = BTreeSet::new();
    let twins: Vec<String> = statics.iter().map(|s| twin(&s.name)).collect();
    for n in statics
        .iter()
        .map(|s| &s.name)
        .chain(dynamic.keys())
        .chain(&twins)
    {
        if !seen.insert(n.as_str()) {
            return Err(EmitError::Unsafe {
                target: T,
                what: "duplicate set name",
                value: n.clone(),
            });
        }
    }
    for t in tables.values() {
        let mut seen = BTreeSet::new();
        for (c, _) in &t.chains {
            if !seen.insert(c.as_str()) {
                return Err(EmitError::Unsafe {
                    target: T,
                    what: "duplicate chain name",
                    value: c.clone(),
                });
            }
        }
    }

    let dns_timeout = opts.dns_timeout_secs();
    let site = safe_text(T, "site name", &policy.site)?;
    let mut o = String::new();
    writeln!(
        o,
        "# Portolan policy for site {site} (iptables and ipset): generated, do not edit."
    )
    .ok();
    writeln!(
        o,
        "# Every rule's comment names the profile/flow row it enforces."
    )
    .ok();
    writeln!(o, "# Sections start at `#> NAME`; load them in this order:").ok();
    writeln!(
        o,
        "#   sec() {{ awk -v s=\"#> $1\" '/^#> /{{on=($0==s);next}} on' THIS_FILE; }}"
    )
    .ok();
    writeln!(o, "#   sec ipset | ipset restore -exist && sec iptables | iptables-restore -w && sec ip6tables | ip6tables-restore -w").ok();
    writeln!(
        o,
        "# The restore input replaces the whole filter table of each family."
    )
    .ok();
    for d in &policy.documented {
        writeln!(
            o,
            "# not enforced here: {}/{} for {}: {}",
            plain(&d.profile),
            plain(&d.flow),
            plain(&d.group),
            plain(&d.reason)
        )
        .ok();
    }
    for n in &notes {
        writeln!(o, "{n}").ok();
    }

    writeln!(o, "#> ipset").ok();
    writeln!(o, "# DNS-filled sets: created when missing, never flushed, so their elements survive a reload.").ok();
    for s in dynamic.values() {
        writeln!(
            o,
            "create {} {} family {} timeout {dns_timeout}",
            s.name,
            s.ty,
            s.fam.ipset()
        )
        .ok();
        for e in &s.elements {
            writeln!(o, "add {} {e}", s.name).ok();
        }
    }
    writeln!(
        o,
        "# Static sets: filled in a twin, then swapped in at once."
    )
    .ok();
    for s in &statics {
        let twin = twin(&s.name);
        let max = s.elements.len().max(65536);
        let create =
            |n: &str| format!("create {n} {} family {} maxelem {max}", s.ty, s.fam.ipset());
        writeln!(o, "{}", create(&s.name)).ok();
        writeln!(o, "{}", create(&twin)).ok();
        writeln!(o, "flush {twin}").ok();
        for e in &s.elements {
            writeln!(o, "add {twin} {e}").ok();
        }
        writeln!(o, "swap {twin} {}", s.name).ok();
        writeln!(o, "destroy {twin}").ok();
    }

    for fam in [Family::V4, Family::V6] {
        let name = if fam == Family::V4 {
            "iptables"
        } else {
            "ip6tables"
        };
        let t = tables.remove(&fam).unwrap_or_default();
        let d = dispatch.remove(&fam).unwrap_or_default();
        writeln!(o, "#> {name}").ok();
        writeln!(o, "*filter").ok();
        writeln!(
            o,
            ":INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]"
        )
        .ok();
        writeln!(o, ":PORTOLAN-FORWARD - [0:0]\n:PORTOLAN-INPUT - [0:0]").ok();
        for (c, _) in &t.chains {
            writeln!(o, ":{c} - [0:0]").ok();
        }
        writeln!(
            o,
            "-A FORWARD -m comment --comment \"portolan\" -j PORTOLAN-FORWARD"
        )
        .ok();
        writeln!(
            o,
            "-A INPUT -m comment --comment \"portolan\" -j PORTOLAN-INPUT"
        )
        .ok();
        for r in &d.spoof {
            writeln!(o, "-A PORTOLAN-FORWARD {r}").ok();
        }
        writeln!(o, "-A PORTOLAN-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment \"return traffic\" -j ACCEPT").ok();
        writeln!(o, "-A PORTOLAN-FORWARD -m conntrack --ctstate INVALID -m comment --comment \"invalid\" -j DROP").ok();
        for r in &d.cast {
            writeln!(o, "{r}").ok();
        }
        for r in d
            .out
            .iter()
            .chain(&d.inn)
            .chain(&d.drop_src)
            .chain(&d.drop_dst)
        {
            writeln!(o, "-A PORTOLAN-FORWARD {r}").ok();
        }
        writeln!(o, "-A PORTOLAN-FORWARD {limit} -m comment --comment \"portolan unmatched\" -j LOG --log-prefix \"portolan unmatched: \" --log-level info").ok();
        // The firewall's own packets to its own addresses come in on `lo`.
        if !d.spoof.is_empty() {
            writeln!(
                o,
                "-A PORTOLAN-INPUT -i lo -m comment --comment \"the firewall itself\" -j RETURN"
            )
            .ok();
        }
        for r in &d.spoof {
            writeln!(o, "-A PORTOLAN-INPUT {r}").ok();
        }
        writeln!(o, "-A PORTOLAN-INPUT -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment \"return traffic\" -j ACCEPT").ok();
        for r in &d.dhcp {
            writeln!(o, "{r}").ok();
        }
        // As in nftables: IPv6 devices need neighbour discovery with the firewall (ARP's
        // role, which unlike ARP passes this table); on-link messages only (RFC 4861).
        if fam == Family::V6 && !d.drop_src.is_empty() {
            for t in [
                "neighbour-solicitation",
                "neighbour-advertisement",
                "router-solicitation",
            ] {
                writeln!(o, "-A PORTOLAN-INPUT -p ipv6-icmp -m icmp6 --icmpv6-type {t} -m hl --hl-eq 255 -m comment --comment \"IPv6 neighbour discovery\" -j ACCEPT").ok();
            }
        }
        for r in d.local.iter().chain(&d.drop_src) {
            writeln!(o, "-A PORTOLAN-INPUT {r}").ok();
        }
        for r in t.chains.iter().flat_map(|(_, rules)| rules) {
            writeln!(o, "{r}").ok();
        }
        writeln!(o, "COMMIT").ok();
    }

    writeln!(o, "#> dnsmasq").ok();
    writeln!(
        o,
        "# For dnsmasq.conf: each address dnsmasq resolves for these names goes into the set."
    )
    .ok();
    writeln!(
        o,
        "# dnsmasq also matches the apex and every name below each domain listed."
    )
    .ok();
    for (domains, sets) in &dns_lines {
        let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
        writeln!(o, "ipset=/{}/{}", domains.join("/"), sets.join(",")).ok();
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_split_on_markers() {
        let text = "# head\n#> ipset\ncreate a\n#> iptables\n*filter\nCOMMIT\n#> dnsmasq\nx\n";
        assert_eq!(section(text, "ipset"), "create a\n");
        assert_eq!(section(text, "iptables"), "*filter\nCOMMIT\n");
        assert_eq!(section(text, "ip6tables"), "");
        assert_eq!(section(text, "dnsmasq"), "x\n");
    }
}
