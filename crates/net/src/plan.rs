//! What to probe for one device: its group's rules from the policy IR, joined with the facts
//! of its profile that enforcement does not need (application label, TLS expectation,
//! keepalive, alternative groups). One [`FlowPlan`] per flow the device opens.

use ipnet::IpNet;
use portolan_model::ir::{Group, Initiator, Policy, PortRange};
use portolan_model::profile::Service;
use portolan_model::{Profile, Tls};

use crate::NetError;

/// One flow the device initiates, as the probe will try it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowPlan {
    pub flow: String,
    /// The IANA protocol number ([`portolan_model::ir::IpProto`] names it).
    pub protocol: u8,
    pub ports: Vec<PortRange>,
    pub names: Vec<String>,
    pub prefixes: Vec<IpNet>,
    pub wildcards: Vec<String>,
    /// The peer is the firewall itself (a local service it provides).
    pub firewall: bool,
    pub optional: bool,
    pub broadcast: bool,
    pub app: Option<String>,
    pub tls: Option<Tls>,
    pub keepalive: Option<u32>,
    /// The alternative group the flow belongs to.
    pub alternative: Option<String>,
    /// Those of `prefixes` the profile marks `addresses_volatile` (its source says they may
    /// change): context for a flow that also names hosts, not required.
    pub volatile: Vec<IpNet>,
    /// The peer is the site's DNS service (`services: {dns: ...}`).
    pub dns_service: bool,
}

/// An alternative group among the planned flows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AltPlan {
    pub id: String,
    pub flows: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub site: Option<String>,
    pub group: Group,
    pub profile: Profile,
    /// Flows the device opens (initiator `device`), in rule order.
    pub flows: Vec<FlowPlan>,
    /// Flows a peer opens towards the device: not probed from the device's side.
    pub inbound: Vec<String>,
    pub alternatives: Vec<AltPlan>,
}

impl Plan {
    /// The device's addresses as a remedy names them (`10.20.0.33`, `10.20.0.32/28`); a
    /// device given only by `--profile` uses the address the probe sends from.
    pub fn device_text(&self, source: Option<std::net::IpAddr>) -> String {
        let real: Vec<String> = self
            .group
            .addresses
            .iter()
            .filter(|n| n.prefix_len() != 0)
            .map(|n| {
                if n.prefix_len() == n.max_prefix_len() {
                    n.addr().to_string()
                } else {
                    n.to_string()
                }
            })
            .collect();
        if real.is_empty() {
            source.map_or_else(|| "the device".to_string(), |s| s.to_string())
        } else {
            real.join(", ")
        }
    }

    /// The site's name servers for the device (`services: {dns: [ADDR]}`), as the rules of its
    /// DNS flows carry them; `firewall` when the firewall itself serves DNS.
    pub fn site_resolvers(&self) -> (Vec<std::net::IpAddr>, bool) {
        let mut v = Vec::new();
        let mut firewall = false;
        for f in self.flows.iter().filter(|f| f.dns_service) {
            firewall |= f.firewall;
            for p in &f.prefixes {
                if p.prefix_len() == p.max_prefix_len() && !v.contains(&p.addr()) {
                    v.push(p.addr());
                }
            }
        }
        (v, firewall)
    }

    pub fn product(&self) -> &str {
        &self.profile.product
    }
}

/// The plan for device (group) `device` of `policy`.
pub fn plan(policy: &Policy, device: &str) -> Result<Plan, NetError> {
    let Some(group) = policy.group(device) else {
        return Err(NetError::UnknownDevice {
            device: device.to_string(),
            known: policy.groups.iter().map(|g| g.id.clone()).collect(),
        });
    };
    let Some(profile) = policy.profiles.get(&group.profile) else {
        return Err(NetError::ProfileNotLoaded(group.profile.clone()));
    };
    let mut flows = Vec::new();
    let mut inbound = Vec::new();
    for r in policy.rules_of(device) {
        if r.initiator == Initiator::Peer {
            if !inbound.contains(&r.flow) {
                inbound.push(r.flow.clone());
            }
            continue;
        }
        let pf = profile.flows.iter().find(|f| f.id == r.flow);
        let alternative = profile
            .alternatives
            .iter()
            .find(|a| a.flows.contains(&r.flow))
            .map(|a| a.id.clone());
        // The profile's endpoint at the other end of the flow.
        let endpoint = pf.and_then(|f| {
            profile
                .endpoints
                .iter()
                .find(|e| e.id == f.to || (f.from != "device" && e.id == f.from))
        });
        let volatile: Vec<IpNet> = match endpoint {
            Some(e) if e.addresses_volatile => r
                .peers
                .prefixes
                .iter()
                .filter(|p| e.addresses.contains(p))
                .copied()
                .collect(),
            _ => Vec::new(),
        };
        let dns_service = endpoint.is_some_and(|e| e.service == Some(Service::Dns));
        flows.push(FlowPlan {
            flow: r.flow.clone(),
            protocol: r.protocol.number(),
            ports: r.ports.clone(),
            names: r.peers.names.clone(),
            prefixes: r.peers.prefixes.clone(),
            wildcards: r.peers.wildcards.clone(),
            firewall: r.peers.firewall,
            optional: r.optional,
            broadcast: r.broadcast,
            app: pf.and_then(|f| f.app.clone().or_else(|| f.to_app.clone())),
            tls: pf.and_then(|f| f.tls.clone()),
            keepalive: pf.and_then(|f| f.keepalive),
            alternative,
            volatile,
            dns_service,
        });
    }
    let alternatives = profile
        .alternatives
        .iter()
        .map(|a| AltPlan {
            id: a.id.clone(),
            flows: a
                .flows
                .iter()
                .filter(|f| flows.iter().any(|p: &FlowPlan| &p.flow == *f))
                .cloned()
                .collect(),
        })
        .filter(|a| !a.flows.is_empty())
        .collect();
    Ok(Plan {
        site: Some(policy.site.clone()),
        group: group.clone(),
        profile: profile.clone(),
        flows,
        inbound,
        alternatives,
    })
}

/// Every hostname the planned flows need, sorted, without repeats.
pub fn names(p: &Plan) -> Vec<String> {
    let mut v: Vec<String> = p.flows.iter().flat_map(|f| f.names.clone()).collect();
    v.sort();
    v.dedup();
    v
}
