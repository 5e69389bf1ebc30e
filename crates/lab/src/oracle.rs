//! What the policy IR says about one packet, independent of any back end: the expectation the
//! kernel's observation is compared with.
//!
//! The meaning follows `ir.rs`: traffic through the firewall passes when a rule of the
//! source's group admits the destination as a peer (device-initiated), or a rule of the
//! destination's group admits the source (peer-initiated), with the protocol, destination
//! port, source port and ICMP type of the rule. Traffic to the firewall itself passes when a
//! device-initiated rule of the source's group has the firewall as peer, or is a DHCP
//! broadcast of that group (a DHCP server elsewhere: the firewall relays; REBINDING, RFC 2131
//! section 4.4.5, broadcasts from the device's own address); when it comes from 0.0.0.0 (a
//! client without an address: DHCPDISCOVER, sections 4.1 and 4.4.1) and a DHCP broadcast
//! rule of some group of the arriving interface's zone matches, the interface being all that
//! identifies such a sender; or when the source is no device at all (the firewall's own
//! services stay reachable from elsewhere). A broadcast rule never admits another group's
//! device. Names and wildcard domains admit
//! the lab addresses the lab's DNS gives them, and only once resolved; a wildcard domain also
//! admits every listed name under it.

use std::net::{IpAddr, Ipv4Addr};

use portolan_model::ir::{Initiator, IpProto, Policy, PortRange, Rule};

use crate::topology::Topology;

/// One packet that opens a connection.
#[derive(Clone, Debug)]
pub struct Packet<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Addressed to the firewall itself (a local service) rather than through it.
    pub to_firewall: bool,
    /// The firewall interface it arrives on (for broadcast rules).
    pub iif: Option<&'a str>,
    pub protocol: u8,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
}

fn in_ranges(p: Option<u16>, ranges: &[PortRange]) -> bool {
    p.is_some_and(|p| ranges.iter().any(|r| r.contains(p)))
}

/// Protocol, ports and ICMP type of a rule against a packet. The lab only sends ICMP echo
/// requests.
fn l4(r: &Rule, p: &Packet) -> bool {
    if r.protocol != IpProto::new(p.protocol) || !r.admits_l4_family(p.src.is_ipv4()) {
        return false;
    }
    if r.protocol.has_ports() {
        if !r.ports.is_empty() && !in_ranges(p.dport, &r.ports) {
            return false;
        }
        if !r.src_ports.is_empty() && !in_ranges(p.sport, &r.src_ports) {
            return false;
        }
    }
    if r.protocol.is_icmp() {
        return matches!(r.icmp_type.as_deref(), None | Some("echo-request"));
    }
    true
}

/// Whether the peers of `r` include the lab address `a`.
pub fn peers_contain(r: &Rule, topo: &Topology, a: IpAddr, resolved: bool) -> bool {
    if r.peers.prefixes.iter().any(|n| n.contains(&a)) {
        return true;
    }
    if !resolved {
        return false;
    }
    let book = &topo.book;
    let named = r
        .peers
        .names
        .iter()
        .any(|n| book.names.get(n).is_some_and(|v| v.contains(&a)));
    named
        || r.peers.wildcards.iter().any(|w| {
            book.wildcards.get(w).is_some_and(|(_, v)| v.contains(&a))
                || book
                    .names
                    .iter()
                    .any(|(n, v)| (n == w || n.ends_with(&format!(".{w}"))) && v.contains(&a))
        })
}

fn group_of(policy: &Policy, a: IpAddr) -> Option<&str> {
    policy
        .groups
        .iter()
        .find(|g| g.addresses.iter().any(|n| n.contains(&a)))
        .map(|g| g.id.as_str())
}

/// Whether the policy admits `p`; `resolved`: the DNS-filled sets hold the lab's answers.
pub fn permits(policy: &Policy, topo: &Topology, p: &Packet, resolved: bool) -> bool {
    let src_group = group_of(policy, p.src);
    if p.to_firewall {
        let dhcp_bcast = |r: &Rule| {
            r.is_dhcp_broadcast()
                && r.initiator == Initiator::Device
                && p.dst == IpAddr::V4(Ipv4Addr::BROADCAST)
                && l4(r, p)
        };
        if p.src.is_unspecified() {
            return p.src.is_ipv4()
                && p.iif.is_some_and(|iif| {
                    policy.groups.iter().any(|g| {
                        policy.zone(&g.zone).and_then(|z| z.interface.as_deref()) == Some(iif)
                            && policy.rules_of(&g.id).any(dhcp_bcast)
                    })
                });
        }
        return match src_group {
            None => true,
            Some(g) => policy.rules_of(g).any(|r| {
                (r.peers.firewall && r.initiator == Initiator::Device && l4(r, p)) || dhcp_bcast(r)
            }),
        };
    }
    let out = src_group.is_some_and(|g| {
        policy.rules_of(g).any(|r| {
            r.initiator == Initiator::Device && l4(r, p) && peers_contain(r, topo, p.dst, resolved)
        })
    });
    let inn = group_of(policy, p.dst).is_some_and(|g| {
        policy.rules_of(g).any(|r| {
            r.initiator == Initiator::Peer && l4(r, p) && peers_contain(r, topo, p.src, resolved)
        })
    });
    out || inn
}
