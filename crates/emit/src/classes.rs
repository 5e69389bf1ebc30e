//! Classes: device groups whose rules are identical share one set of chains in every back
//! end. A group's signature is its rules without the group, borrowed, so comparing a group
//! with the classes costs no copies.

use ipnet::IpNet;
use portolan_model::ir::{Initiator, IpProto, PortRange, Rule};

/// The rules of a group, without the group: equal signatures share chains.
pub(crate) type Signature<'a> = Vec<(
    &'a str,
    &'a str,
    Initiator,
    IpProto,
    &'a [PortRange],
    &'a [PortRange],
    Option<&'a str>,
    &'a [IpNet],
    &'a [String],
    &'a [String],
    bool,
    bool,
)>;

/// The signature of a group's rules.
pub(crate) fn signature<'a>(rules: &[&'a Rule]) -> Signature<'a> {
    rules
        .iter()
        .map(|r| {
            (
                r.profile.as_str(),
                r.flow.as_str(),
                r.initiator,
                r.protocol,
                r.ports.as_slice(),
                r.src_ports.as_slice(),
                r.icmp_type.as_deref(),
                r.peers.prefixes.as_slice(),
                r.peers.names.as_slice(),
                r.peers.wildcards.as_slice(),
                r.peers.firewall,
                r.broadcast,
            )
        })
        .collect()
}
