//! Peer matches and the sets behind them: one address inline, a few as an anonymous set, a
//! list that several rules share (or a long one) as a named interval set, and hostnames and
//! wildcard domains as DNS-filled sets.

use std::collections::BTreeMap;

use ipnet::IpNet;
use portolan_model::ir::{Peers, Rule};

use super::parts::{ip, net, values};
use super::ruleset::Set;
use super::{name_set, wildcard_set, T};
use crate::names::{checked_names, enforce_set, peer_set, safe_hostname, Family, NFT_NAME_MAX};
use crate::{EmitError, Options};

/// Above this many elements a peer list used once still gets a named set.
const INLINE_MAX: usize = 16;

/// The peer sets of the output and how peers are matched.
#[derive(Default)]
pub(super) struct Sets {
    /// Static peer lists by (family, prefixes): how many rules use each, and the name of the
    /// first rule's group and flow.
    uses: BTreeMap<(Family, Vec<IpNet>), (usize, String)>,
    /// Named static sets, by name.
    pub(super) statics: BTreeMap<String, Set>,
    /// DNS-filled sets, by name.
    pub(super) dynamic: BTreeMap<String, Set>,
}

/// A rule's static peers of one family, aggregated.
fn prefixes(p: &Peers, fam: Family) -> Vec<IpNet> {
    let v: Vec<IpNet> = p
        .prefixes
        .iter()
        .copied()
        .filter(|n| Family::of(n) == fam)
        .collect();
    IpNet::aggregate(&v)
}

fn empty(name: &str, fam: Family) -> Set {
    Set {
        name: name.to_string(),
        fam,
        pair: false,
        port: false,
        elements: Vec::new(),
    }
}

impl Sets {
    /// Counts a rule's use of its static peer list in a family (before any is matched).
    pub(super) fn count(&mut self, r: &Rule, fam: Family) {
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
    pub(super) fn peers(
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
                self.statics.entry(name.clone()).or_insert_with(|| Set {
                    name: name.clone(),
                    fam,
                    pair: false,
                    port: false,
                    elements: pre.iter().map(net).collect(),
                });
                out.push(format!("{ipk} {dir} @{name}"));
            } else {
                out.push(format!("{ipk} {dir} {}", values(pre.iter().map(net))));
            }
        }
        if !r.peers.srv.is_empty() {
            // A peer learnt from SRV records: `device . target . port` triples the forwarder
            // writes from the answers the device received; without it, nothing can say the
            // peer's addresses, and a rule without a peer match would admit every address.
            if !opts.enforce || dir != "daddr" {
                return Err(EmitError::Unsafe {
                    target: T,
                    what: "rule to an SRV-learnt peer outside enforce mode",
                    value: r.provenance(),
                });
            }
            let Some(kw) = r.protocol.name().filter(|_| r.protocol.has_ports()) else {
                return Err(EmitError::Unsafe {
                    target: T,
                    what: "protocol without ports to an SRV-learnt peer",
                    value: r.provenance(),
                });
            };
            let name = enforce_set_of(r, fam);
            self.dynamic.entry(name.clone()).or_insert_with(|| Set {
                pair: true,
                port: true,
                ..empty(&name, fam)
            });
            out.push(format!("{ipk} saddr . {ipk} daddr . {kw} dport @{name}"));
            return Ok(out);
        }
        if opts.enforce && !(r.peers.names.is_empty() && r.peers.wildcards.is_empty()) {
            // One set of `device . peer` pairs per rule, which the forwarder fills for the
            // device that asked: the device is the source of what it opens, the destination of
            // what its peer opens.
            checked_names(T, &r.peers.names)?;
            for w in &r.peers.wildcards {
                safe_hostname(T, w)?;
            }
            let name = enforce_set_of(r, fam);
            self.dynamic.entry(name.clone()).or_insert_with(|| Set {
                pair: true,
                ..empty(&name, fam)
            });
            let key = if dir == "daddr" {
                format!("{ipk} saddr . {ipk} daddr")
            } else {
                format!("{ipk} daddr . {ipk} saddr")
            };
            out.push(format!("{key} @{name}"));
            return Ok(out);
        }
        if !r.peers.names.is_empty() {
            let names = checked_names(T, &r.peers.names)?;
            let name = name_set(fam, &names);
            let set = self
                .dynamic
                .entry(name.clone())
                .or_insert_with(|| empty(&name, fam));
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
            self.dynamic
                .entry(name.clone())
                .or_insert_with(|| empty(&name, fam));
            out.push(format!("{ipk} {dir} @{name}"));
        }
        Ok(out)
    }
}

/// The `enforce` set of a class's rule in a family (the rule is the class's first group's).
pub(super) fn enforce_set_of(r: &Rule, fam: Family) -> String {
    if !r.peers.srv.is_empty() {
        let srv: Vec<String> = r.peers.srv.iter().map(|s| format!("srv:{s}")).collect();
        return enforce_set(fam, &r.group, &r.flow, &srv, &[], NFT_NAME_MAX);
    }
    enforce_set(
        fam,
        &r.group,
        &r.flow,
        &r.peers.names,
        &r.peers.wildcards,
        NFT_NAME_MAX,
    )
}

/// The addresses `--resolve` found for `names` in a family, each with its record's TTL.
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
