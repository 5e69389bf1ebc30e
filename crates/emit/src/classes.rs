//! Classes: device groups of one zone whose rules are identical share one set of chains in
//! every back end. A group's [`Signature`] is its rules without the group, borrowed, so
//! comparing a group with the classes costs no copies.

use rustc_hash::FxHashMap as HashMap;

use ipnet::IpNet;
use portolan_model::ir::{Group, Initiator, IpProto, Policy, PortRange, Rule, Zone};

/// One rule of a group without the group: what two groups must share to share chains.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct RuleKey<'a> {
    profile: &'a str,
    flow: &'a str,
    initiator: Initiator,
    protocol: IpProto,
    ports: &'a [PortRange],
    src_ports: &'a [PortRange],
    icmp_type: Option<&'a str>,
    prefixes: &'a [IpNet],
    names: &'a [String],
    wildcards: &'a [String],
    srv: &'a [String],
    firewall: bool,
    broadcast: bool,
}

/// The rules of a group, without the group: equal signatures share chains.
pub(crate) type Signature<'a> = Vec<RuleKey<'a>>;

/// The signature of a group's rules.
pub(crate) fn signature<'a>(rules: &[&'a Rule]) -> Signature<'a> {
    rules
        .iter()
        .map(|r| RuleKey {
            profile: &r.profile,
            flow: &r.flow,
            initiator: r.initiator,
            protocol: r.protocol,
            ports: &r.ports,
            src_ports: &r.src_ports,
            icmp_type: r.icmp_type.as_deref(),
            prefixes: &r.peers.prefixes,
            names: &r.peers.names,
            wildcards: &r.peers.wildcards,
            srv: &r.peers.srv,
            firewall: r.peers.firewall,
            broadcast: r.broadcast,
        })
        .collect()
}

/// Device groups of one zone with identical rules.
pub(crate) struct Class<'a> {
    /// The rules of the first group; the others' are the same but for the group.
    pub(crate) rules: Vec<&'a Rule>,
    /// The groups, in the policy's order; never empty.
    pub(crate) groups: Vec<&'a Group>,
    /// The zone the groups sit in.
    pub(crate) zone: Option<&'a Zone>,
}

impl<'a> Class<'a> {
    /// The first group, whose id names the class's chains.
    pub(crate) fn first(&self) -> &'a Group {
        self.groups[0]
    }

    /// The interface of the class's zone, as the site gives it.
    pub(crate) fn interface(&self) -> Option<&'a str> {
        self.zone.and_then(|z| z.interface.as_deref())
    }

    /// The networks of the class's zone (for directed broadcasts).
    pub(crate) fn networks(&self) -> &'a [IpNet] {
        self.zone.map(|z| z.networks.as_slice()).unwrap_or_default()
    }
}

/// The classes of a policy, in the order of their first groups, and each group's class.
/// Groups and signatures are found by hash (FxHash: the ids and rules are the site's own, and
/// a collision costs time, never a wrong class): a site of 100,000 one-device groups looks each up
/// several times, and ordered maps of their ids spent a tenth of `compile` comparing strings.
/// Nothing iterates these maps, so the output's order is the policy's.
pub(crate) struct Classes<'a> {
    pub(crate) list: Vec<Class<'a>>,
    pub(crate) of_group: HashMap<&'a str, usize>,
}

impl<'a> Classes<'a> {
    /// Groups `policy`'s device groups into classes.
    pub(crate) fn of(policy: &'a Policy) -> Classes<'a> {
        // Rules by group, in one pass: `rules_of` per group would be quadratic in large sites.
        let mut by_group: HashMap<&str, Vec<&Rule>> =
            HashMap::with_capacity_and_hasher(policy.groups.len(), Default::default());
        for r in &policy.rules {
            by_group.entry(r.group.as_str()).or_default().push(r);
        }
        let mut list: Vec<Class> = Vec::new();
        let mut of_group =
            HashMap::with_capacity_and_hasher(policy.groups.len(), Default::default());
        let mut by_sig: HashMap<(Signature, &str), usize> = HashMap::default();
        for g in &policy.groups {
            let rules = by_group.remove(g.id.as_str()).unwrap_or_default();
            let idx = *by_sig
                .entry((signature(&rules), g.zone.as_str()))
                .or_insert_with(|| {
                    list.push(Class {
                        rules,
                        groups: Vec::new(),
                        zone: policy.zone(&g.zone),
                    });
                    list.len() - 1
                });
            list[idx].groups.push(g);
            of_group.insert(g.id.as_str(), idx);
        }
        Classes { list, of_group }
    }
}
