//! `dhcp-server-conflict`: a device that serves DHCP to its own segment (a flow from the
//! profile's `segment` endpoint to the device, peer-initiated, UDP to port 67) in a zone where
//! the site's `services: dhcp` is also served, by this firewall or by an address inside the
//! zone. A client takes any offer it receives (RFC 2131 section 4.3.1 leaves the choice to
//! it), so two servers on one segment hand out conflicting leases. The site's DHCP server at
//! the device's own address is the same server, and is not a conflict.

use crate::diag::{Code, Sink, Subject};
use crate::document::pos;
use crate::ports::PortSpec;
use crate::profile::{Flow, Initiation, Profile};
use crate::protocol::Protocol;
use crate::raw_site::RawDevice;

use super::bindings::Binding;
use super::site::{Provider, SiteCtx};

/// Whether `f` is the device serving DHCP to its own segment.
pub(super) fn serves_segment(p: &Profile, f: &Flow) -> bool {
    f.initiation == Initiation::Peer
        && f.to == crate::profile::DEVICE
        && p.endpoint(&f.from).is_some_and(|e| e.segment)
        && f.protocol == Protocol::Udp
        && matches!(&f.ports, PortSpec::List(_))
        && f.ports.to_strings() == ["67"]
}

/// Warns once per binding whose zone gets a second DHCP server. `active` are the flows that
/// apply to the device (conditions, choices and switches already read).
pub(super) fn conflict(
    sink: &mut Sink,
    ctx: &SiteCtx,
    d: &RawDevice,
    p: &Profile,
    bindings: &[Binding],
    active: &[&Flow],
) {
    let Some(site_server) = &ctx.dhcp else {
        return;
    };
    for f in active.iter().filter(|f| serves_segment(p, f)) {
        for b in bindings {
            if b.interface.as_deref().is_some_and(|i| !p.flow_uses(f, i)) {
                continue;
            }
            let Some(zone) = ctx.zones.iter().find(|z| z.id == b.zone) else {
                continue;
            };
            let other = match site_server {
                Provider::Firewall => {
                    Some("this firewall (`services: {dhcp: firewall}`)".to_string())
                }
                Provider::Prefixes(ps) => {
                    let inside: Vec<String> = ps
                        .iter()
                        .filter(|s| zone.networks.iter().any(|n| n.contains(*s)))
                        .filter(|s| !b.addresses.iter().any(|a| a == *s || a.contains(*s)))
                        .map(|s| s.to_string())
                        .collect();
                    (!inside.is_empty()).then(|| {
                        format!(
                            "the site's DHCP server {} (`services: dhcp`)",
                            inside.join(", ")
                        )
                    })
                }
            };
            let Some(other) = other else {
                continue;
            };
            sink.warning_about(
                Subject::Device(d.id.value.clone()),
                pos(&d.id),
                Code::DhcpServerConflict,
                format!(
                    "device `{}` serves DHCP on its own segment, zone `{}` (flow `{}/{}`), and so does {other}: two DHCP servers on one segment hand out conflicting leases, and a client takes any offer (RFC 2131 section 4.3.1)",
                    b.group, zone.id, p.id, f.id
                ),
                "keep one server per segment: switch the device's DHCP server off, or serve `services: dhcp` elsewhere for this zone",
            );
        }
    }
}
