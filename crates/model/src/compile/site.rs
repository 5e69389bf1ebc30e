//! The site around its devices: zones (ids, interfaces, networks), the local services
//! (`dns`, `ntp`, `dhcp`: the firewall or addresses), each device's addresses (inside its
//! zone, claimed by one device only), and zones that hold devices but name no interface.

use std::collections::BTreeSet;

use ipnet::IpNet;

use crate::diag::{Code, Sink, Subject};
use crate::document::{address, check_ident, pos};
use crate::ir::*;
use crate::raw::Spanned;
use crate::raw_site::*;

use super::claims::Claims;

/// An address or prefix of a site, checked as a profile's are.
pub(super) fn net(sink: &mut Sink, s: &Spanned<String>) -> Option<IpNet> {
    address(sink, s)
}

pub(super) enum Provider {
    Firewall,
    Prefixes(Vec<IpNet>),
}

pub(super) fn service(sink: &mut Sink, s: &Option<Spanned<RawService>>) -> Option<Provider> {
    let s = s.as_ref()?;
    match &s.value {
        RawService::Word(w) if w == "firewall" => Some(Provider::Firewall),
        RawService::Word(w) => {
            sink.error(
                pos(s),
                Code::InvalidService,
                format!("`{w}`: a service is `firewall` or a list of addresses"),
                "write `firewall` or `[192.0.2.53]`",
            );
            None
        }
        RawService::Addresses(a) => {
            let sp: Vec<Spanned<String>> = a
                .iter()
                .map(|x| Spanned::new(x.clone(), s.referenced, s.defined))
                .collect();
            Some(Provider::Prefixes(
                sp.iter().filter_map(|x| net(sink, x)).collect(),
            ))
        }
    }
}

pub(super) struct SiteCtx {
    pub zones: Vec<Zone>,
    pub dns: Option<Provider>,
    pub ntp: Option<Provider>,
    pub dhcp: Option<Provider>,
    pub proxy: Option<SiteProxy>,
}

/// The site's HTTP(S) proxy (`services: {proxy: {at, port, authenticated}}`), checked.
pub(super) struct SiteProxy {
    /// The proxy as a rule's peers: this firewall, or its addresses.
    pub peers: Peers,
    pub port: u16,
    pub authenticated: bool,
}

/// The site's proxy: where it listens (`firewall` or addresses) and its TCP port.
fn proxy(sink: &mut Sink, raw: &RawSite) -> Option<SiteProxy> {
    let p = raw.services.proxy.as_ref()?;
    let at = service(sink, &Some(p.value.at.clone()));
    let port = match u16::try_from(p.value.port.value) {
        Ok(n) if n > 0 => Some(n),
        _ => {
            sink.error(
                pos(&p.value.port),
                Code::InvalidPort,
                format!("`{}` is not a TCP port", p.value.port.value),
                "the proxy's port is one number from 1 to 65535, such as 3128",
            );
            None
        }
    };
    let peers = match at? {
        Provider::Firewall => Peers {
            firewall: true,
            ..Peers::default()
        },
        Provider::Prefixes(prefixes) if prefixes.is_empty() => {
            sink.error(
                pos(&p.value.at),
                Code::InvalidService,
                "the proxy lists no address",
                "write `at: firewall` or the proxy's addresses, `at: [10.99.0.8]`",
            );
            return None;
        }
        // A proxy listens on addresses, not on networks: a prefix would open the proxy's
        // port to every host in it, wider than any profile states.
        Provider::Prefixes(prefixes)
            if prefixes
                .iter()
                .any(|n| n.prefix_len() != n.max_prefix_len()) =>
        {
            sink.error(
                pos(&p.value.at),
                Code::InvalidService,
                "the proxy is given as a network: a device would reach the proxy's port on \
                 every address in it",
                "list the proxy's own addresses, such as `at: [10.99.0.8]`",
            );
            return None;
        }
        Provider::Prefixes(prefixes) => Peers {
            prefixes,
            ..Peers::default()
        },
    };
    Some(SiteProxy {
        peers,
        port: port?,
        authenticated: p.value.authenticated,
    })
}

/// The site's zones, each id and interface name checked.
pub(super) fn zones(sink: &mut Sink, raw: &RawSite) -> Vec<Zone> {
    let mut zones = Vec::new();
    let mut seen = BTreeSet::new();
    for z in &raw.zones {
        check_ident(sink, "zone id", &z.id);
        if !seen.insert(z.id.value.clone()) {
            sink.error(
                pos(&z.id),
                Code::DuplicateId,
                format!("zone `{}` is declared twice", z.id.value),
                "give each zone its own id",
            );
        }
        if let Some(i) = &z.interface {
            if !crate::syntax::is_interface_name(&i.value) {
                sink.error(
                    pos(i),
                    Code::InvalidInterface,
                    format!("`{}` is not an interface name", i.value),
                    "at most 15 letters, digits, '-', '_' or '.' (not `.` or `..`), optionally ending in '*' after at least one of them",
                );
            }
        }
        zones.push(Zone {
            id: z.id.value.clone(),
            interface: z.interface.as_ref().map(|i| i.value.clone()),
            networks: z.networks.iter().filter_map(|n| net(sink, n)).collect(),
        });
    }
    zones
}

/// The site's zones and local services.
pub(super) fn context(sink: &mut Sink, raw: &RawSite) -> SiteCtx {
    let zones = zones(sink, raw);
    SiteCtx {
        dns: service(sink, &raw.services.dns),
        ntp: service(sink, &raw.services.ntp),
        dhcp: service(sink, &raw.services.dhcp),
        proxy: proxy(sink, raw),
        zones,
    }
}

/// A device's addresses: each inside its zone's networks (where the zone lists any) and
/// claimed by no other device.
pub(super) fn addresses(
    sink: &mut Sink,
    d: &RawDevice,
    zone: Option<&Zone>,
    claimed: &mut Claims,
) -> Vec<IpNet> {
    if d.addresses.is_empty() {
        sink.error(
            pos(&d.id),
            Code::MissingAddress,
            format!("device `{}` lists no address", d.id.value),
            "give its addresses or prefix under `addresses`",
        );
    }
    claim(sink, &d.id.value, &d.addresses, zone, claimed)
}

/// Addresses of one binding (a device, or one interface of a multi-homed device, `owner`):
/// each inside `zone`'s networks (where it lists any) and claimed by no other binding.
pub(super) fn claim(
    sink: &mut Sink,
    owner: &str,
    given: &[Spanned<String>],
    zone: Option<&Zone>,
    claimed: &mut Claims,
) -> Vec<IpNet> {
    let mut addresses = Vec::new();
    for a in given {
        let Some(n) = net(sink, a) else { continue };
        if let Some(z) = zone {
            if !z.networks.is_empty() && !z.networks.iter().any(|zn| zn.contains(&n)) {
                let nets: Vec<String> = z.networks.iter().map(ToString::to_string).collect();
                sink.error(
                    pos(a),
                    Code::AddressOutsideZone,
                    format!("{n} is not inside zone `{}` ({})", z.id, nets.join(", ")),
                    "fix the address, or the zone it is bound to",
                );
            }
        }
        if let Some(other) = claimed.overlapping(&n) {
            sink.error(
                pos(a),
                Code::AddressConflict,
                format!("{n} is also claimed by `{other}`"),
                "each address belongs to one device, group or interface",
            );
        }
        claimed.insert(n, owner);
        addresses.push(n);
    }
    addresses
}

/// A zone that holds devices or bound peers but names no interface: its rules can match
/// addresses only, and an address of the zone arriving on another interface (spoofed) is not
/// caught. Allowed (a bridge, a firewall with one interface), but said once per zone.
pub(super) fn zones_without_interface(sink: &mut Sink, raw: &RawSite) {
    for z in raw.zones.iter().filter(|z| z.interface.is_none()) {
        let id = &z.id.value;
        let bound = format!("zone:{id}");
        crate::work::visit(raw.devices.value.len());
        let used = raw.devices.value.iter().any(|d| {
            d.zone.as_ref().is_some_and(|z| &z.value == id)
                || d.interfaces.values().any(|b| &b.value.zone.value == id)
                || d.bind
                    .values()
                    .any(|b| b.value.iter().any(|x| x.value.trim() == bound))
        });
        if used {
            sink.warning_about(
                Subject::Zone(id.clone()),
                pos(&z.id),
                Code::ZoneWithoutInterface,
                format!("zone `{id}` names no interface: rules for its devices and peers match addresses only, and its addresses arriving on another interface (spoofed) are not dropped"),
                "add `interface:` with the firewall's interface towards the zone",
            );
        }
    }
}
