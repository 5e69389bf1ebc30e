//! The layout of the `enforce` policy as the forwarder needs it: for each device group, the
//! rules whose peers are hostnames or wildcard domains, with the set of `device . peer` pairs
//! each rule matches per family. The names come from the same function the plan uses
//! ([`super::sets::enforce_set_of`]), over the same classes, so the forwarder writes exactly
//! the sets the emitted ruleset declares. Rules to peers learnt from DNS SRV records
//! ([`Policy::discovered`]) are among them, as the enforce plan writes them.

use ipnet::IpNet;
use portolan_model::ir::{Initiator, IpProto, Peers, Policy, PortRange, Rule};

use super::parts::l4;
use super::sets::enforce_set_of;
use crate::classes::Classes;
use crate::names::Family;
use crate::EmitError;

/// One device group's name-based rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameScope {
    pub group: String,
    /// The group's addresses: a query's source must lie in one of them.
    pub addresses: Vec<IpNet>,
    pub rules: Vec<NameRule>,
}

/// One rule whose peers are names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameRule {
    /// `profile/flow`.
    pub provenance: String,
    pub initiator: Initiator,
    /// The rule's protocol and ports (on the side that does not initiate; empty: any), so
    /// the forwarder can tell a connection of this flow in conntrack from another one.
    pub protocol: IpProto,
    pub ports: Vec<PortRange>,
    /// The rule's peers; [`Peers::admits_name`] says which names it admits, and
    /// [`Peers::admits_srv`] which SRV owner names (the rule's set then holds
    /// `device . target . port` triples).
    pub peers: Peers,
    /// The set the rule matches in each family the ruleset writes it for.
    pub sets: Vec<(Family, String)>,
}

/// Whether a rule is matched against an enforce set: a unicast rule with names as peers.
fn named(r: &Rule) -> bool {
    let has_names =
        !r.peers.names.is_empty() || !r.peers.wildcards.is_empty() || !r.peers.srv.is_empty();
    has_names && !r.broadcast
}

/// The name-based rules of every group of `policy`, in the policy's order.
pub fn layout(policy: &Policy) -> Result<Vec<NameScope>, EmitError> {
    // The plan's view of the policy in enforce mode: the SRV-learnt rules among the rules.
    let merged = policy.with_discovered();
    let policy = &merged;
    let classes = Classes::of(policy);
    let mut out = Vec::new();
    for g in &policy.groups {
        let c = &classes.list[classes.of_group[g.id.as_str()]];
        let fams: Vec<Family> = [Family::V4, Family::V6]
            .into_iter()
            .filter(|f| {
                c.groups
                    .iter()
                    .flat_map(|g| &g.addresses)
                    .any(|a| Family::of(a) == *f)
            })
            .collect();
        let mut rules = Vec::new();
        for r in c.rules.iter().filter(|r| named(r)) {
            let mut sets = Vec::new();
            for f in &fams {
                if l4(r, Some(*f))?.is_some() {
                    sets.push((*f, enforce_set_of(r, *f)));
                }
            }
            if !sets.is_empty() {
                rules.push(NameRule {
                    provenance: r.provenance(),
                    initiator: r.initiator,
                    protocol: r.protocol,
                    ports: r.ports.clone(),
                    peers: r.peers.clone(),
                    sets,
                });
            }
        }
        out.push(NameScope {
            group: g.id.clone(),
            addresses: g.addresses.clone(),
            rules,
        });
    }
    Ok(out)
}
