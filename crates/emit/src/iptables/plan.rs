//! Planning the iptables output from the IR: per family, each class's device set and chains
//! (`K-<group>-OUT`, `-IN`, `-LOCAL`, `-DROPS`, `-DROPD`), the peer sets their rules match, and
//! the dispatch rules; with the spoofing check and DHCP discovery (`scope.rs`), gathered into
//! a [`Ruleset`] that renders itself.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use portolan_model::ir::{Initiator, Policy, Rule};

use super::matches::{chain_base, interface, l4, log_prefix, proto, range, set_nets};
use super::ruleset::{line, push, twin, Dispatch, FamilyRules, IpSet, Ruleset, Table};
use super::scope::{self, if_options};
use super::{plain, PORT_SET_LIMIT, T};
use crate::cast::{destinations, peer_interfaces, Destination};
use crate::classes::{Class, Classes};
use crate::names::{
    checked_names, dns_set, object, safe_hostname, safe_interface, safe_text, wildcard_dns_set,
    Family, IPSET_NAME_MAX,
};
use crate::{EmitError, Options};

/// What iptables adds to a class: its chains' base name and its zone's interface.
pub(super) struct ClassNames {
    /// `K-<first group>`.
    pub(super) chain: String,
    /// The zone's interface, as iptables matches it.
    pub(super) interface: Option<String>,
}

impl ClassNames {
    fn of(c: &Class) -> Result<ClassNames, EmitError> {
        Ok(ClassNames {
            chain: chain_base("K", &c.first().id),
            interface: c
                .interface()
                .map(|i| safe_interface(T, i).map(|i| interface(&i)))
                .transpose()?,
        })
    }
}

/// The chains of one class in one family.
struct ClassChains {
    out: String,
    inn: String,
    local: String,
    /// Rules written to each.
    n_out: usize,
    n_in: usize,
    n_local: usize,
}

impl ClassChains {
    /// The chain a unicast rule goes to, and the side its peers are on.
    fn for_rule(&self, r: &Rule) -> (&str, &'static str) {
        if r.initiator == Initiator::Device {
            (&self.out, "dst")
        } else {
            (&self.inn, "src")
        }
    }
}

/// What every class's planning reads.
struct Ctx<'a> {
    policy: &'a Policy,
    opts: &'a Options,
    /// `-m limit …` of the log rules.
    limit: &'a str,
}

/// One class in one family while its rules are planned.
struct ClassPlan<'a> {
    policy: &'a Policy,
    opts: &'a Options,
    class: &'a Class<'a>,
    names: &'a ClassNames,
    fam: Family,
    ch: ClassChains,
    sets: &'a mut Sets,
    t: &'a mut Table,
    d: &'a mut Dispatch,
}

/// The sets the rules need, gathered across families.
#[derive(Default)]
struct Sets {
    statics: Vec<IpSet>,
    dynamic: BTreeMap<String, IpSet>,
    /// dnsmasq `ipset=` lines: domains → sets.
    dns_lines: BTreeMap<Vec<String>, BTreeSet<String>>,
}

/// Plans the output of `policy`.
pub(super) fn plan(policy: &Policy, opts: &Options) -> Result<Ruleset, EmitError> {
    let classes = Classes::of(policy);
    let names = classes
        .list
        .iter()
        .map(ClassNames::of)
        .collect::<Result<Vec<_>, _>>()?;
    let mut sets = Sets::default();
    let mut tables: BTreeMap<Family, Table> = BTreeMap::new();
    let mut dispatch: BTreeMap<Family, Dispatch> = BTreeMap::new();
    let rate = opts.log_rate.unwrap_or(5);
    let limit = format!("-m limit --limit {rate}/sec --limit-burst {rate}");

    // Spoofing: a set of each zone's addresses, a chain that logs and drops.
    scope::spoofing(
        policy,
        &mut tables,
        &mut dispatch,
        &mut sets.statics,
        &limit,
    )?;
    let ctx = Ctx {
        policy,
        opts,
        limit: &limit,
    };
    for fam in [Family::V4, Family::V6] {
        let t = tables.entry(fam).or_default();
        let d = dispatch.entry(fam).or_default();
        for (c, n) in classes.list.iter().zip(&names) {
            class(&ctx, c, n, fam, &mut sets, t, d)?;
        }
        // Empty class chains are not written.
        t.retain_filled();
    }
    // DHCP discovery, per interface and flow, from the groups' MACs.
    let mut notes: Vec<String> = policy
        .documented
        .iter()
        .map(|d| {
            format!(
                "# not enforced here: {}/{} for {}: {}",
                plain(&d.profile),
                plain(&d.flow),
                plain(&d.group),
                plain(&d.reason)
            )
        })
        .collect();
    scope::dhcp(
        &classes.list,
        &names,
        &mut tables,
        &mut dispatch,
        &mut notes,
        &limit,
    )?;
    check_names(&sets, &tables)?;
    let site = safe_text(T, "site name", &policy.site)?;
    let families = [Family::V4, Family::V6]
        .into_iter()
        .map(|fam| FamilyRules {
            fam,
            table: tables.remove(&fam).unwrap_or_default(),
            dispatch: dispatch.remove(&fam).unwrap_or_default(),
        })
        .collect();
    Ok(Ruleset {
        site,
        notes,
        dns_timeout: opts.dns_timeout_secs(),
        dns_sets: sets.dynamic.into_values().collect(),
        static_sets: sets.statics,
        families,
        dns_lines: sets
            .dns_lines
            .into_iter()
            .map(|(d, s)| (d, s.into_iter().collect()))
            .collect(),
        limit,
    })
}

/// One class in one family: its device set, chains, rules and dispatch rules.
fn class(
    ctx: &Ctx,
    c: &Class,
    n: &ClassNames,
    fam: Family,
    sets: &mut Sets,
    t: &mut Table,
    d: &mut Dispatch,
) -> Result<(), EmitError> {
    let devices: Vec<IpNet> = c
        .groups
        .iter()
        .flat_map(|g| g.addresses.iter())
        .filter(|a| Family::of(a) == fam)
        .flat_map(set_nets)
        .collect();
    if devices.is_empty() {
        return Ok(());
    }
    let first = &c.first().id;
    let dset = object(&[&format!("d{}", fam.n()), first]);
    sets.statics.push(IpSet {
        name: dset.clone(),
        ty: "hash:net",
        fam,
        elements: devices.iter().map(ToString::to_string).collect(),
    });
    let ch = ClassChains {
        out: format!("{}-OUT", n.chain),
        inn: format!("{}-IN", n.chain),
        local: format!("{}-LOCAL", n.chain),
        n_out: 0,
        n_in: 0,
        n_local: 0,
    };
    let (drops, dropd) = (format!("{}-DROPS", n.chain), format!("{}-DROPD", n.chain));
    for name in [&ch.out, &ch.inn, &ch.local, &drops, &dropd] {
        t.chain(name);
    }
    let mut plan = ClassPlan {
        policy: ctx.policy,
        opts: ctx.opts,
        class: c,
        names: n,
        fam,
        ch,
        sets,
        t,
        d,
    };
    for (i, r) in c.rules.iter().enumerate() {
        plan.rule(i, r)?;
    }
    let ClassPlan { ch, t, d, .. } = plan;
    let limit = ctx.limit;
    // Log and drop, naming the group.
    for (chain, flag) in [(&drops, "-s"), (&dropd, "-d")] {
        for g in &c.groups {
            let prefix = log_prefix(&g.id)?;
            let log = format!("LOG --log-prefix \"{prefix}\" --log-level info");
            if c.groups.len() == 1 {
                t.add(chain, limit, "portolan default drop", &log);
            } else {
                for a in g.addresses.iter().filter(|a| Family::of(a) == fam) {
                    let m = format!("{flag} {a} {limit}");
                    t.add(chain, &m, "portolan default drop", &log);
                }
            }
        }
        t.add(chain, "", "portolan default drop", "DROP");
    }
    let cm = format!("portolan class of {}", safe_text(T, "group id", first)?);
    let rule = |dir: &str, verb: &str, chain: &str| {
        format!("-m set --match-set {dset} {dir} -m comment --comment \"{cm}\" -{verb} {chain}")
    };
    if ch.n_out > 0 {
        d.out.push(rule("src", "j", &ch.out));
    }
    if ch.n_in > 0 {
        d.inn.push(rule("dst", "j", &ch.inn));
    }
    if ch.n_local > 0 {
        d.local.push(rule("src", "j", &ch.local));
    }
    d.drop_src.push(rule("src", "g", &drops));
    d.drop_dst.push(rule("dst", "g", &dropd));
    Ok(())
}

impl ClassPlan<'_> {
    /// The rules of one IR rule (`i`: its index in the class).
    fn rule(&mut self, i: usize, r: &Rule) -> Result<(), EmitError> {
        let cm = safe_text(T, "comment", &r.provenance())?;
        // DHCP discovery from 0.0.0.0 is admitted in `PORTOLAN-INPUT` (`scope::dhcp`); its
        // renewals are unicast to its peers, below. Its broadcasts from the device's own
        // address (REBINDING, RFC 2131 section 4.4.5) reach the firewall through the
        // dispatch: the local rule of a server on the firewall covers them, and a relayed one
        // (a server elsewhere) gets its own.
        if r.broadcast && !r.is_dhcp_broadcast() {
            return self.cast_rule(r, &cm);
        }
        let device = r.initiator == Initiator::Device;
        if r.is_dhcp_broadcast() && device && !r.peers.firewall && self.fam == Family::V4 {
            for m in l4(r, self.fam, true)?.unwrap_or_default() {
                let matches = format!("-d 255.255.255.255 {m}");
                self.ch.n_local += usize::from(self.t.add(&self.ch.local, &matches, &cm, "ACCEPT"));
            }
        }
        if r.peers.firewall && device {
            for m in l4(r, self.fam, true)?.unwrap_or_default() {
                self.ch.n_local += usize::from(self.t.add(&self.ch.local, &m, &cm, "ACCEPT"));
            }
        }
        let n_static = self.static_peers(i, r, &cm)?;
        let n_dns = self.dns_peers(r, &cm)?;
        if device {
            self.ch.n_out += n_static + n_dns;
        } else {
            self.ch.n_in += n_static + n_dns;
        }
        Ok(())
    }

    /// A broadcast or multicast rule: on the group or broadcast address and the zone's interface.
    fn cast_rule(&mut self, r: &Rule, cm: &str) -> Result<(), EmitError> {
        let (policy, c, n, fam) = (self.policy, self.class, self.names, self.fam);
        let (ch, t, d) = (&mut self.ch, &mut *self.t, &mut *self.d);
        let device = r.initiator == Initiator::Device;
        if r.peers.firewall && !device {
            return Ok(());
        }
        let Some(ms) = l4(r, fam, true)? else {
            return Ok(());
        };
        let peer_if = if r.peers.firewall {
            None
        } else {
            peer_interfaces(policy, &r.peers, T)?.map(|v| {
                let ifs: BTreeSet<String> = v.iter().map(|i| interface(i)).collect();
                ifs.into_iter().collect::<Vec<_>>()
            })
        };
        let iif = n.interface.as_ref().map(|i| format!("-i {i} "));
        let iif = iif.as_deref().unwrap_or("");
        for dst in destinations(r, fam, c.networks()) {
            let dst = match dst {
                Destination::Broadcast(a) => a.to_string(),
                Destination::Group(g) => g.to_string(),
            };
            for m in &ms {
                if r.peers.firewall {
                    let matches = format!("{iif}-d {dst} {m}");
                    ch.n_local += usize::from(t.add(&ch.local, &matches, cm, "ACCEPT"));
                } else if device {
                    for o in if_options("-o", peer_if.as_ref()) {
                        let matches = format!("{iif}{o}-d {dst} {m}");
                        ch.n_out += usize::from(t.add(&ch.out, &matches, cm, "ACCEPT"));
                    }
                } else {
                    // Addressed to the group, not to the device: matched before the per-device
                    // dispatch, from the peers' prefixes.
                    let oif = n
                        .interface
                        .as_ref()
                        .map(|i| format!("-o {i} "))
                        .unwrap_or_default();
                    for p in r.peers.prefixes.iter().filter(|p| Family::of(p) == fam) {
                        for i in if_options("-i", peer_if.as_ref()) {
                            let matches = format!("{i}{oif}-s {p} -d {dst} {m}");
                            push(
                                &mut d.cast,
                                line("PORTOLAN-FORWARD", &matches, cm, "ACCEPT"),
                            );
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The rules matching a rule's static peers (`hash:net,port` or `hash:net` sets); how many
    /// were written.
    fn static_peers(&mut self, i: usize, r: &Rule, cm: &str) -> Result<usize, EmitError> {
        let (first, fam) = (&self.class.first().id, self.fam);
        let (sets, t) = (&mut *self.sets, &mut *self.t);
        let (chain, dir) = self.ch.for_rule(r);
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
        if pre.is_empty() {
            return Ok(0);
        }
        let per_net: u64 = r.ports.iter().map(|p| u64::from(p.hi - p.lo) + 1).sum();
        let with_port = r.protocol.has_ports()
            && !r.ports.is_empty()
            && per_net * pre.len() as u64 <= PORT_SET_LIMIT;
        let Some(ms) = l4(r, fam, !with_port)? else {
            return Ok(0);
        };
        let mut count = 0;
        if with_port {
            let name = object(&[&format!("p{}", fam.n()), first, &i.to_string()]);
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
            sets.statics.push(IpSet {
                name: name.clone(),
                ty: "hash:net,port",
                fam,
                elements,
            });
            for m in ms {
                let matches = format!("{m} -m set --match-set {name} {dir},dst");
                count += usize::from(t.add(chain, &matches, cm, "ACCEPT"));
            }
        } else {
            let name = object(&[&format!("s{}", fam.n()), first, &i.to_string()]);
            sets.statics.push(IpSet {
                name: name.clone(),
                ty: "hash:net",
                fam,
                elements: pre.iter().map(ToString::to_string).collect(),
            });
            for m in ms {
                let matches = format!("-m set --match-set {name} {dir} {m}");
                count += usize::from(t.add(chain, &matches, cm, "ACCEPT"));
            }
        }
        Ok(count)
    }

    /// The rules matching a rule's hostnames and wildcard domains (DNS-filled `hash:ip` sets);
    /// how many were written.
    fn dns_peers(&mut self, r: &Rule, cm: &str) -> Result<usize, EmitError> {
        let (opts, fam) = (self.opts, self.fam);
        let (sets, t) = (&mut *self.sets, &mut *self.t);
        let (chain, dir) = self.ch.for_rule(r);
        let mut dns: Vec<(String, Vec<String>)> = Vec::new();
        if !r.peers.names.is_empty() {
            let names = checked_names(T, &r.peers.names)?;
            dns.push((dns_set(fam, &names, IPSET_NAME_MAX), names));
        }
        for w in &r.peers.wildcards {
            safe_hostname(T, w)?;
            dns.push((wildcard_dns_set(fam, w, IPSET_NAME_MAX), vec![w.clone()]));
        }
        let mut count = 0;
        for (name, domains) in dns {
            let Some(ms) = l4(r, fam, true)? else {
                continue;
            };
            let set = sets.dynamic.entry(name.clone()).or_insert(IpSet {
                name: name.clone(),
                ty: "hash:ip",
                fam,
                elements: Vec::new(),
            });
            for dn in &domains {
                let Some(res) = opts.resolved.get(dn) else {
                    continue;
                };
                let secs = res.ttl.as_secs().max(1);
                for a in res
                    .addresses
                    .iter()
                    .filter(|a| a.is_ipv4() == (fam == Family::V4))
                {
                    let e = format!("{a} timeout {secs}");
                    if !set.elements.contains(&e) {
                        set.elements.push(e);
                    }
                }
            }
            sets.dns_lines
                .entry(domains)
                .or_default()
                .insert(name.clone());
            for m in ms {
                let matches = format!("-m set --match-set {name} {dir} {m}");
                count += usize::from(t.add(chain, &matches, cm, "ACCEPT"));
            }
        }
        Ok(count)
    }
}

/// No two sets share a name (they would merge), nor two chains of a family.
fn check_names(sets: &Sets, tables: &BTreeMap<Family, Table>) -> Result<(), EmitError> {
    let mut seen = BTreeSet::new();
    let twins: Vec<String> = sets.statics.iter().map(|s| twin(&s.name)).collect();
    for n in sets
        .statics
        .iter()
        .map(|s| &s.name)
        .chain(sets.dynamic.keys())
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
    Ok(())
}
