//! Who a device's flow talks to: a local service (the firewall or the site's servers), a role
//! the site binds, the device's own segment (its zone's networks), or the profile's remote
//! endpoint (addresses, `{param}` hostnames, wildcard domains, an SRV-discovered peer); and
//! the site's bindings (addresses, prefixes, names, `zone:ID`, `firewall`,
//! `any`), each read once per device.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::diag::{Code, Sink, Subject};
use crate::document::pos;
use crate::ir::*;
use crate::profile::*;
use crate::raw::Spanned;
use crate::syntax::{check_wildcard, expand_template, is_hostname};

use super::site::{net, Provider, SiteCtx};
use super::site_check;
use super::values::Dev;

impl Dev<'_> {
    /// The peers of an endpoint for this device.
    pub(super) fn peers(
        &self,
        sink: &mut Sink,
        ctx: &SiteCtx,
        e: &Endpoint,
        flow: &Flow,
    ) -> Option<Peers> {
        if let Some(b) = self.bound.get(&e.id) {
            return b.clone();
        }
        match e.kind() {
            EndpointKind::Segment => self.segment(sink, ctx, flow),
            EndpointKind::Service(s) => {
                let prov = match s {
                    Service::Dns => &ctx.dns,
                    Service::Ntp => &ctx.ntp,
                    Service::Dhcp => &ctx.dhcp,
                };
                match prov {
                    Some(Provider::Firewall) => Some(Peers {
                        firewall: true,
                        ..Peers::default()
                    }),
                    Some(Provider::Prefixes(p)) => Some(Peers {
                        prefixes: p.clone(),
                        ..Peers::default()
                    }),
                    None => {
                        sink.error_about(Subject::Service(s.name().to_string()), self.here(), Code::UnboundService, format!("device `{}`: flow `{}/{}` needs a {} service and the site declares none", self.d.id.value, self.p.id, flow.id, s.name()), format!("add `services: {{{}: firewall}}` or its addresses, bind `{}` on the device, or switch the flow off", s.name(), e.id));
                        None
                    }
                }
            }
            // A peer learnt from a DNS SRV record and not bound by the site: a DNS-driven
            // set of the record's targets and ports (`Peers::srv`), which only `portolan
            // enforce` fills; lowering keeps it out of the rules every other back end reads.
            EndpointKind::Role if matches!(e.discovered, Some(Discovered::Srv { .. })) => {
                let Some(Discovered::Srv { name }) = &e.discovered else {
                    return None;
                };
                Some(Peers {
                    srv: vec![name.trim_end_matches('.').to_ascii_lowercase()],
                    ..Peers::default()
                })
            }
            EndpointKind::Role => {
                if !self.unbound.borrow_mut().insert(e.id.clone()) {
                    return None;
                }
                sink.error_about(
                    Subject::Role(e.id.clone()),
                    self.here(),
                    Code::UnboundRole,
                    format!(
                        "device `{}`: flow `{}/{}` (and any other flow to it) goes to role `{}`, which the site does not bind",
                        self.d.id.value, self.p.id, flow.id, e.id
                    ),
                    format!(
                        "add `bind: {{{}: [address, prefix or hostname]}}` to the device",
                        e.id
                    ),
                );
                None
            }
            EndpointKind::Remote => {
                let mut peers = Peers {
                    prefixes: e.addresses.clone(),
                    ..Peers::default()
                };
                // Wildcard domains may hold params (edition 2): a param without a value
                // opens nothing (`missing-param`).
                for d in &e.domains {
                    let domain = self.expand(sink, d, flow)?;
                    match check_wildcard(&domain) {
                        Ok(rest) => peers.wildcards.push(rest.to_string()),
                        _ => {
                            sink.error(
                                self.here(),
                                Code::InvalidDomain,
                                format!(
                                    "`{d}` expands to `{domain}`, which is not a wildcard domain"
                                ),
                                "check the device's params",
                            );
                            return None;
                        }
                    }
                }
                for h in &e.hosts {
                    let name = self.expand(sink, h, flow)?;
                    // A whole-host param (edition 2) may be given an address.
                    if self.p.portolan >= 2 && crate::syntax::whole_param(h).is_some() {
                        if let Ok(a) = name.parse::<IpAddr>() {
                            peers.prefixes.push(IpNet::from(a));
                            continue;
                        }
                    }
                    if !is_hostname(&name) {
                        sink.error(
                            self.here(),
                            Code::InvalidHostname,
                            format!("`{h}` expands to `{name}`, which is not a hostname"),
                            "check the device's params",
                        );
                        return None;
                    }
                    peers
                        .names
                        .push(name.trim_end_matches('.').to_ascii_lowercase());
                }
                Some(peers)
            }
        }
    }
}

impl Dev<'_> {
    /// The networks of the zone(s) the flow is on: the device's zone, or for a multi-homed
    /// device the zones of the interfaces the flow uses. Lowering narrows them to the one
    /// zone of each binding ([`super::lower`]), so a rule never names more than that zone's
    /// networks. A zone without networks is `empty-zone`, never "any".
    fn segment(&self, sink: &mut Sink, ctx: &SiteCtx, flow: &Flow) -> Option<Peers> {
        let zones: Vec<&Spanned<String>> = if self.d.interfaces.is_empty() {
            self.d.zone.iter().collect()
        } else {
            self.d
                .interfaces
                .iter()
                .filter(|(i, _)| self.p.flow_uses(flow, i))
                .map(|(_, b)| &b.value.zone)
                .collect()
        };
        let mut peers = Peers::default();
        let mut ok = !zones.is_empty();
        for z in zones {
            // An unknown zone is reported where the device names it.
            let zone = ctx.zones.iter().find(|x| x.id == z.value)?;
            if zone.networks.is_empty() {
                sink.error(
                    pos(z),
                    Code::EmptyZone,
                    format!(
                        "device `{}`: flow `{}/{}` is with the device's own segment, and zone `{}` has no networks",
                        self.d.id.value, self.p.id, flow.id, zone.id
                    ),
                    "list the zone's networks",
                );
                ok = false;
            }
            peers.prefixes.extend(zone.networks.iter().copied());
        }
        ok.then_some(peers)
    }

    /// A host or domain template with the device's values; `None` (and `missing-param` for
    /// each param without a value) when one is missing.
    fn expand(&self, sink: &mut Sink, t: &str, flow: &Flow) -> Option<String> {
        let mut missing = false;
        let out = expand_template(t, |id| {
            let v = site_check::value(self, id);
            missing |= v.is_none();
            v
        });
        if missing {
            for id in crate::syntax::template_params(t).unwrap_or_default() {
                if site_check::value(self, id).is_none() {
                    self.param(sink, id, &flow.id);
                }
            }
            return None;
        }
        Some(out)
    }
}

pub(super) fn bindings(
    sink: &mut Sink,
    ctx: &SiteCtx,
    b: &Spanned<Vec<Spanned<String>>>,
) -> Option<Peers> {
    let mut peers = Peers::default();
    if b.value.is_empty() {
        sink.error(
            pos(b),
            Code::EmptyBinding,
            "the binding lists nothing",
            "give addresses, prefixes, hostnames, `*.domain`, `zone:ID`, `firewall` or `any`",
        );
        return None;
    }
    for item in &b.value {
        let t = item.value.trim();
        if t == "firewall" {
            peers.firewall = true;
        } else if t == "any" {
            peers.prefixes.push(IpNet::V4(ipnet::Ipv4Net::default()));
            peers.prefixes.push(IpNet::V6(ipnet::Ipv6Net::default()));
            sink.warning(
                pos(item),
                Code::AnyPeer,
                "binding to `any` admits every address for each flow to this peer",
                "bind the peer's addresses or names if you know them",
            );
        } else if let Some(z) = t.strip_prefix("zone:") {
            match ctx.zones.iter().find(|x| x.id == z) {
                Some(zone) if !zone.networks.is_empty() => {
                    peers.prefixes.extend(zone.networks.iter().copied())
                }
                Some(_) => sink.error(
                    pos(item),
                    Code::EmptyZone,
                    format!("zone `{z}` has no networks"),
                    "list the zone's networks",
                ),
                None => sink.error(
                    pos(item),
                    Code::UnknownZone,
                    format!("zone `{z}` is not declared"),
                    "declare it under `zones`",
                ),
            }
        } else if t.starts_with('*') {
            match check_wildcard(t) {
                Ok(d) => peers.wildcards.push(d.to_ascii_lowercase()),
                Err(_) => sink.error(
                    pos(item),
                    Code::WildcardNotLeftmost,
                    format!("`{t}` is not a wildcard domain"),
                    "write `*.example.com`",
                ),
            }
        } else if t.parse::<IpNet>().is_ok() || t.parse::<IpAddr>().is_ok() {
            if let Some(n) = net(sink, item) {
                peers.prefixes.push(n);
            }
        } else if is_hostname(t) {
            peers
                .names
                .push(t.trim_end_matches('.').to_ascii_lowercase());
        } else {
            sink.error(pos(item), Code::InvalidBinding, format!("`{t}` is not an address, prefix, hostname or zone"), "give 192.0.2.1, 192.0.2.0/24, host.example.com, *.example.com, zone:ID, firewall or any");
        }
    }
    Some(peers)
}
