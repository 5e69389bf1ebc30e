//! Broadcast and multicast flows, lowered to what an IP firewall can enforce.
//!
//! A broadcast never crosses a router (RFC 919 section 7; directed broadcasts are not forwarded
//! by default, RFC 2644), and link-local multicast groups are never forwarded (224.0.0.0/24,
//! RFC 5771 section 4; IPv6 scopes 1 and 2, RFC 4291 section 2.7). So a flow sent to one:
//!
//! - with this firewall as its peer (a service it provides, or the DHCP relay it runs)
//!   becomes a rule on the broadcast or group address, for the firewall's input;
//! - with peers beyond the device's segment becomes, for multicast, a rule on the group address
//!   that the firewall forwards towards the peers (when it routes multicast); a broadcast
//!   cannot reach them, and is documented as not enforced;
//! - with peers only on the device's own segment is documented as not enforced: the firewall
//!   never sees the packet.
//!
//! It never becomes a unicast rule to the peers' addresses, which the profile does not state,
//! with one exception the protocol itself defines: a DHCP client renews its lease by unicast
//! to the server (RFC 2131 section 4.4.5), so a DHCP rule ([`crate::ir::Rule::is_dhcp`])
//! keeps its peers, and the back ends admit both its broadcast discovery (to this firewall,
//! the server or the relay) and the unicast renewal to those peers.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::ir::{is_dhcp, IpProto, Peers, PortRange, Zone};
use crate::profile::{Cast, Flow};

/// One rule to make for a flow: its peers, and where its packets are sent.
pub(crate) struct Shape {
    pub peers: Peers,
    pub broadcast: bool,
    pub multicast: Vec<IpNet>,
}

/// The rules of a flow, and what of it is not enforced (with the reason).
pub(crate) struct Lowered {
    pub rules: Vec<Shape>,
    pub documented: Option<String>,
}

/// Whether every peer is a prefix on the device zone's own networks.
fn on_segment(peers: &Peers, zone: Option<&Zone>) -> bool {
    let Some(z) = zone else {
        return false;
    };
    !peers.firewall
        && peers.names.is_empty()
        && peers.wildcards.is_empty()
        && !peers.prefixes.is_empty()
        && !z.networks.is_empty()
        && peers
            .prefixes
            .iter()
            .all(|p| z.networks.iter().any(|n| n.contains(p)))
}

/// A group no router forwards.
fn link_local(g: &IpNet) -> bool {
    match g.addr() {
        IpAddr::V4(a) => {
            let o = a.octets();
            o[0] == 224 && o[1] == 0 && o[2] == 0 && g.prefix_len() >= 24
        }
        IpAddr::V6(a) => {
            let scope = a.octets()[1] & 0x0f;
            g.prefix_len() >= 16 && matches!(scope, 1 | 2)
        }
    }
}

fn zone_name(zone: Option<&Zone>) -> String {
    zone.map_or_else(String::new, |z| format!(" (zone `{}`)", z.id))
}

/// Lowers one flow with its peers. `protocol` and `ports` are the compiled ones.
pub(crate) fn lower(
    f: &Flow,
    peers: Peers,
    zone: Option<&Zone>,
    protocol: IpProto,
    ports: &[PortRange],
) -> Lowered {
    let unicast = |peers: Peers| Shape {
        peers,
        broadcast: false,
        multicast: Vec::new(),
    };
    let firewall_only = Peers {
        firewall: true,
        ..Peers::default()
    };
    let segment = on_segment(&peers, zone);
    let others = {
        let mut p = peers.clone();
        p.firewall = false;
        !p.is_empty()
    };
    match f.cast {
        Cast::Unicast => Lowered {
            rules: vec![unicast(peers)],
            documented: None,
        },
        Cast::Broadcast if is_dhcp(protocol, ports) => {
            if segment {
                return Lowered {
                    rules: Vec::new(),
                    documented: Some(format!(
                        "DHCP with its server on the device's own segment{}: the exchange never reaches the firewall",
                        zone_name(zone)
                    )),
                };
            }
            // One rule: discovery reaches the firewall (the server, or the relay towards the
            // site's server) on the zone's interface; renewals go by unicast to the peers.
            Lowered {
                rules: vec![Shape {
                    peers,
                    broadcast: true,
                    multicast: Vec::new(),
                }],
                documented: None,
            }
        }
        Cast::Broadcast => {
            let mut rules = Vec::new();
            if peers.firewall {
                rules.push(Shape {
                    peers: firewall_only,
                    broadcast: true,
                    multicast: Vec::new(),
                });
            }
            let documented = others.then(|| {
                if segment {
                    format!(
                        "broadcast on the device's own segment{}: it never reaches the firewall",
                        zone_name(zone)
                    )
                } else {
                    "broadcast to peers beyond the device's segment: a router does not forward broadcasts (RFC 919, RFC 2644), and this firewall relays only DHCP".to_string()
                }
            });
            Lowered { rules, documented }
        }
        Cast::Multicast => {
            let groups: Vec<IpNet> = match f.group {
                Some(g) => vec![IpNet::from(g)],
                None => ["224.0.0.0/4", "ff00::/8"]
                    .iter()
                    .filter_map(|s| s.parse().ok())
                    .collect(),
            };
            let shown: Vec<String> = groups.iter().map(|g| g.addr().to_string()).collect();
            let routable: Vec<IpNet> = groups.iter().copied().filter(|g| !link_local(g)).collect();
            let mut rules = Vec::new();
            if peers.firewall {
                rules.push(Shape {
                    peers: firewall_only,
                    broadcast: true,
                    multicast: groups.clone(),
                });
            }
            let mut documented = None;
            if others {
                let mut rest = peers.clone();
                rest.firewall = false;
                if segment {
                    documented = Some(format!(
                        "multicast to {} on the device's own segment{}: it never reaches the firewall",
                        shown.join(", "),
                        zone_name(zone)
                    ));
                } else if routable.is_empty() {
                    documented = Some(format!(
                        "multicast to link-local group {}, which no router forwards (RFC 5771, RFC 4291): it stays on the device's segment, where the firewall does not see it",
                        shown.join(", ")
                    ));
                } else {
                    rules.push(Shape {
                        peers: rest,
                        broadcast: true,
                        multicast: routable,
                    });
                }
            }
            Lowered { rules, documented }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_groups_are_those_no_router_forwards() {
        let n = |s: &str| s.parse::<IpNet>().expect("net");
        assert!(link_local(&n("224.0.0.251/32")));
        assert!(!link_local(&n("239.255.255.250/32")));
        assert!(!link_local(&n("224.0.1.1/32")));
        assert!(link_local(&n("ff02::fb/128")));
        assert!(link_local(&n("ff01::1/128")));
        assert!(!link_local(&n("ff05::c/128")));
        assert!(!link_local(&n("224.0.0.0/4")));
    }
}
