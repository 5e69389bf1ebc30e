//! Where broadcast and multicast rules go, for every back end: the destination addresses of
//! such a rule, and the interfaces its peers sit behind.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::IpNet;
use portolan_model::ir::{Peers, Policy, Rule};

use crate::names::{safe_interface, Family};
use crate::EmitError;

/// A destination of a broadcast or multicast rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Destination {
    /// 255.255.255.255 or a network's directed broadcast.
    Broadcast(Ipv4Addr),
    /// A multicast group, as the rule gives it.
    Group(IpNet),
}

/// The destinations of a broadcast or multicast rule in a family: its groups, or for a
/// broadcast 255.255.255.255 and the directed broadcasts of `networks` (IPv4 only; IPv6 has no
/// broadcast; DHCP only the limited broadcast, RFC 2131 section 4.1). Empty when the family
/// has none.
pub(crate) fn destinations(r: &Rule, fam: Family, networks: &[IpNet]) -> Vec<Destination> {
    if !r.multicast.is_empty() {
        return r
            .multicast
            .iter()
            .filter(|g| Family::of(g) == fam)
            .map(|g| Destination::Group(*g))
            .collect();
    }
    if fam == Family::V6 {
        return Vec::new();
    }
    let mut v = vec![Destination::Broadcast(Ipv4Addr::BROADCAST)];
    if !r.is_dhcp() {
        for n in networks {
            if let IpNet::V4(n) = n {
                if n.prefix_len() < 31 {
                    v.push(Destination::Broadcast(n.broadcast()));
                }
            }
        }
    }
    v
}

/// The interfaces of the zones the peers' prefixes lie in, checked and sorted; `None` when
/// some peer lies in no zone with an interface (or is a name), so a rule cannot say where it
/// goes.
pub(crate) fn peer_interfaces(
    policy: &Policy,
    peers: &Peers,
    target: &'static str,
) -> Result<Option<Vec<String>>, EmitError> {
    if !peers.names.is_empty() || !peers.wildcards.is_empty() || peers.prefixes.is_empty() {
        return Ok(None);
    }
    let mut out = BTreeSet::new();
    for p in &peers.prefixes {
        let zone = policy
            .zones
            .iter()
            .find(|z| z.interface.is_some() && z.networks.iter().any(|n| n.contains(p)));
        match zone.and_then(|z| z.interface.as_ref()) {
            Some(i) => out.insert(safe_interface(target, i)?),
            None => return Ok(None),
        };
    }
    Ok(Some(out.into_iter().collect()))
}
