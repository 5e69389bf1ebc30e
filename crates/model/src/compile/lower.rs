//! Lowering: a checked device ([`super::device::Checked`]) becomes IR rules and documented
//! flows. Nothing here can fail or report: every value was checked before.
//!
//! "Either side initiates" becomes two rules, each with the flow's `src_ports` for its
//! initiator; broadcast and multicast flows are lowered by `cast.rs` to what a firewall sees;
//! a flow with `family` keeps only that family's static peers; a flow with the device's own
//! `segment` has the networks of the binding's zone as its peers.

use crate::ir::*;
use crate::profile::{Flow, Initiation, IpFamily};

use super::device::{Checked, CheckedFlow, Placement};

/// Appends the rules and documented flows of the device's binding `at` to `policy`, in the
/// profile's flow order: for one interface of a multi-homed device, that interface's flows
/// only.
pub(super) fn device(dev: &Checked, at: &Placement, policy: &mut Policy) {
    let documented = |f: &Flow, reason: &str| Documented {
        group: at.group.to_string(),
        profile: dev.profile.id.clone(),
        flow: f.id.clone(),
        reason: reason.to_string(),
    };
    let here = |f: &Flow| at.interface.is_none_or(|i| dev.profile.flow_uses(f, i));
    for flow in dev.flows.iter().filter(|c| here(c.flow())) {
        let e = match flow {
            CheckedFlow::Documented { flow, reason } => {
                policy.documented.push(documented(flow, reason));
                continue;
            }
            CheckedFlow::Enforced(e) => e,
        };
        let f = e.flow;
        if !e.peers.srv.is_empty() {
            srv_rule(dev, at, e, policy);
            continue;
        }
        // With the device's own segment: this binding's zone's networks, never wider.
        let segment_peers;
        let peers = if dev.profile.endpoint(f.peer()).is_some_and(|x| x.segment) {
            segment_peers = Peers {
                prefixes: at.zone.map(|z| z.networks.clone()).unwrap_or_default(),
                ..Peers::default()
            };
            // Checking refused a zone without networks: an empty set is never "any".
            if segment_peers.is_empty() {
                continue;
            }
            &segment_peers
        } else {
            &e.peers
        };
        if let Some(via) = &e.via {
            // The leg to the proxy, only: the flow's peers are the proxy's to reach.
            policy.rules.push(Rule {
                group: at.group.to_string(),
                profile: dev.profile.id.clone(),
                flow: f.id.clone(),
                initiator: Initiator::Device,
                protocol: IpProto::TCP,
                ports: vec![PortRange::one(via.port)],
                src_ports: e.src_ports.clone(),
                icmp_type: None,
                peers: of_family(&via.proxy, f.family),
                broadcast: false,
                multicast: Vec::new(),
                optional: f.optional,
                family: f.family,
                via_proxy: Some(ProxyLeg {
                    peers: of_family(peers, f.family),
                    ports: e.ports.clone(),
                    connect_only: via.connect_only,
                }),
            });
            continue;
        }
        let initiators: &[Initiator] = match f.initiation {
            Initiation::Device => &[Initiator::Device],
            Initiation::Peer => &[Initiator::Peer],
            Initiation::Either => &[Initiator::Device, Initiator::Peer],
        };
        // Broadcast and multicast: rules on what the firewall sees, the rest documented.
        let lowered = crate::cast::lower(
            f,
            peers.clone(),
            at.zone,
            IpProto::new(e.protocol),
            &e.ports,
        );
        if let Some(why) = &lowered.documented {
            policy.documented.push(documented(f, why));
        }
        for shape in lowered.rules {
            for ini in initiators {
                policy.rules.push(Rule {
                    group: at.group.to_string(),
                    profile: dev.profile.id.clone(),
                    flow: f.id.clone(),
                    initiator: *ini,
                    protocol: IpProto::new(e.protocol),
                    ports: e.ports.clone(),
                    // The initiator's source ports, whichever side it is: dropping them for
                    // a peer-initiated flow would admit any source port the profile does not.
                    src_ports: e.src_ports.clone(),
                    icmp_type: f.icmp_type.clone(),
                    peers: of_family(&shape.peers, f.family),
                    broadcast: shape.broadcast,
                    multicast: shape.multicast.clone(),
                    optional: f.optional,
                    family: f.family,
                    via_proxy: None,
                });
            }
        }
    }
}

/// A flow to a peer learnt from DNS SRV records: documented (what a static ruleset cannot
/// open), and, for the side the device opens, a rule in `Policy::discovered` for the enforce
/// policy. Its `ports` empty: the record's port, whatever it is; else the record's port only
/// where they hold it. The peer's side (`initiation: peer`) opens nothing: the record says
/// where the device connects, not who may connect to it.
fn srv_rule(dev: &Checked, at: &Placement, e: &super::device::Enforced, policy: &mut Policy) {
    let f = e.flow;
    let names = e.peers.srv.join(", ");
    let device_side = f.initiation != Initiation::Peer && f.cast == crate::profile::Cast::Unicast;
    let reason = if device_side {
        format!(
            "peer learnt from DNS SRV {names}: only `portolan enforce` opens it, for the device \
             that asked, to the record's targets at its port; bind the endpoint in the site \
             for other targets"
        )
    } else {
        format!(
            "peer learnt from DNS SRV {names}: a peer-initiated or non-unicast flow to it is not \
             opened; bind the endpoint in the site"
        )
    };
    policy.documented.push(Documented {
        group: at.group.to_string(),
        profile: dev.profile.id.clone(),
        flow: f.id.clone(),
        reason,
    });
    if !device_side {
        return;
    }
    policy.discovered.push(Rule {
        group: at.group.to_string(),
        profile: dev.profile.id.clone(),
        flow: f.id.clone(),
        initiator: Initiator::Device,
        protocol: IpProto::new(e.protocol),
        ports: e.ports.clone(),
        src_ports: e.src_ports.clone(),
        icmp_type: None,
        peers: Peers {
            srv: e.peers.srv.clone(),
            ..Peers::default()
        },
        broadcast: false,
        multicast: Vec::new(),
        optional: f.optional,
        family: f.family,
        via_proxy: None,
    });
}

/// The peers of a flow limited to `family` (`family: ipv4|ipv6`): static prefixes of the other
/// family are left out; names, wildcards and the firewall stay, and the rule's `family` keeps
/// their other-family addresses out (back ends emit the rule for one family only).
fn of_family(peers: &Peers, family: Option<IpFamily>) -> Peers {
    let mut p = peers.clone();
    if let Some(f) = family {
        p.prefixes.retain(|n| f.holds(&n.addr()));
    }
    p
}
