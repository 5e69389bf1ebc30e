//! The DHCP part of the address stage (`--dhcp`): the interface on the device's network, one
//! DHCPDISCOVER through the transport, and what the offers say — the address, the server, the
//! router and DNS servers a device would get — or, when no offer comes, the remedy the vendor
//! gives for a device without an address (the Oscar gateway's solid red LED).

use crate::address::DefaultRoute;
use crate::dhcp::{Discover, Offer};
use crate::link::{mac_text, Link};
use crate::plan::Plan;
use crate::report::{Check, Kind, Verdict};
use crate::runtime::{DhcpReply, Transport};

use super::{Ctx, DhcpOptions};

/// The vendor's name for "no address from DHCP", from the profile's notes: the part before
/// " - " of the first note that mentions DHCP, when it is short ("LED solid red").
fn symptom(plan: &Plan) -> Option<String> {
    let note = plan
        .profile
        .notes
        .iter()
        .find(|n| n.text.contains("DHCP"))?;
    let (head, _) = note.text.split_once(" - ")?;
    (head.len() <= 40).then(|| head.trim().to_string())
}

/// What to do when a device gets no address: "make sure the DHCP server is working so
/// 10.20.0.32/28 can get an address, a default gateway and a DNS server (a DHCP issue, not a
/// firewall one) — Oscar TempLog gateway (LED solid red)".
pub(super) fn no_lease_remedy(ctx: &Ctx<'_>) -> String {
    let symptom = symptom(ctx.plan)
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    format!(
        "make sure the DHCP server is working so {} can get an address, a default gateway and a DNS server (a DHCP issue, not a firewall one) — {}{symptom}",
        ctx.from, ctx.product
    )
}

/// The interface to send on, or why there is none: (state, detail).
fn choose(
    links: &[Link],
    routes: &[DefaultRoute],
    wanted: Option<&str>,
) -> Result<Link, (&'static str, String)> {
    let find = |name: &str| links.iter().find(|l| l.name == name).cloned();
    let link = if let Some(w) = wanted {
        find(w).ok_or_else(|| ("no-interface", format!("there is no interface {w} here")))?
    } else if let Some(l) = routes
        .iter()
        .filter(|r| !matches!(r.gateway, Some(std::net::IpAddr::V6(_))))
        .find_map(|r| find(&r.interface))
    {
        l
    } else {
        let up: Vec<&Link> = links
            .iter()
            .filter(|l| !l.loopback && l.up && l.mac.is_some())
            .collect();
        match up.as_slice() {
            [l] => (*l).clone(),
            [] => {
                return Err((
                    "no-interface",
                    "no Ethernet interface is up to send a DHCPDISCOVER on".into(),
                ))
            }
            many => {
                let names: Vec<&str> = many.iter().map(|l| l.name.as_str()).collect();
                return Err((
                    "no-interface",
                    format!(
                        "several interfaces are up ({}) and no default route says which faces the device's network: name one with --interface",
                        names.join(", ")
                    ),
                ));
            }
        }
    };
    if link.mac.is_none() {
        return Err((
            "no-mac",
            format!(
                "{} has no Ethernet address to send a DHCPDISCOVER from",
                link.name
            ),
        ));
    }
    if !link.up {
        return Err(("interface-down", format!("{} is down", link.name)));
    }
    Ok(link)
}

/// The DHCP checks, and the first offer with the interface it came on.
pub(super) async fn dhcp_checks<T: Transport>(
    t: &T,
    ctx: &Ctx<'_>,
    o: &DhcpOptions,
    routes: &[DefaultRoute],
) -> (Vec<Check>, Option<(String, Offer)>) {
    let cannot = |state: &str, detail: String| {
        // The probe could not run the exchange: that says nothing about the network.
        vec![Check::new(
            Kind::Dhcp,
            Verdict::Warn,
            state,
            format!("DHCP not tried: {detail}"),
        )]
    };
    let links = match t.links() {
        Ok(l) => l,
        Err(e) => return (cannot("local-error", e.to_string()), None),
    };
    let link = match choose(&links, routes, o.interface.as_deref()) {
        Ok(l) => l,
        Err((state, detail)) => return (cannot(state, detail), None),
    };
    let Some(mac) = link.mac else {
        return (
            cannot("no-mac", format!("{} has no Ethernet address", link.name)),
            None,
        );
    };
    let iface = link.name.clone();
    if !link.carrier {
        let c = Check::new(
            Kind::Dhcp,
            Verdict::Fail,
            "no-carrier",
            format!("{iface} has no link: no cable, no switch port, or no peer"),
        )
        .remedy(format!(
            "connect {iface} of this machine to the device's network, then probe again"
        ));
        return (vec![c], None);
    }
    let discover = Discover::new(mac).asking(&super::requirements::required_dhcp_options(ctx.plan));
    let reply = t
        .dhcp_discover(iface.clone(), discover.clone(), o.timeout, o.attempts)
        .await;
    let offers = match reply {
        DhcpReply::Offers(v) if !v.is_empty() => v,
        DhcpReply::Offers(_) | DhcpReply::Silent => {
            let n = o.attempts.max(1);
            let c = Check::new(
                Kind::Dhcp,
                Verdict::Fail,
                "no-offer",
                format!(
                    "no DHCP offer on {iface} within {} ms ({n} DHCPDISCOVER{} from {}, xid {:08x})",
                    o.timeout.as_millis(),
                    if n > 1 { "s" } else { "" },
                    mac_text(&mac),
                    discover.xid
                ),
            )
            .remedy(no_lease_remedy(ctx));
            return (vec![c], None);
        }
        DhcpReply::LocalError(e) => return (cannot("local-error", e), None),
    };
    let mut checks = Vec::new();
    for (i, offer) in offers.iter().enumerate() {
        let mut c = Check::new(
            Kind::Dhcp,
            Verdict::Pass,
            "offer",
            format!(
                "DHCP {} on {iface} (to {}): {}",
                if i == 0 { "offer" } else { "offer, also" },
                mac_text(&mac),
                offer.describe()
            ),
        )
        .address(std::net::IpAddr::V4(offer.address))
        .offer(offer.clone());
        if i > 0 {
            c = c.informative();
        }
        checks.push(c);
    }
    let first = &offers[0];
    let differ = offers
        .iter()
        .any(|x| x.routers != first.routers || x.dns != first.dns);
    if differ {
        let servers: Vec<String> = offers.iter().map(|x| x.server.to_string()).collect();
        checks.push(
            Check::new(
                Kind::Dhcp,
                Verdict::Warn,
                "several-servers",
                format!(
                    "{} DHCP servers answer with different routers or DNS servers ({}): a device takes whichever answers first",
                    offers.len(),
                    servers.join(", ")
                ),
            )
            .remedy(format!(
                "leave one DHCP server on the device's network, or give every server the same router and DNS settings ({}) — {}",
                servers.join(", "),
                ctx.product
            )),
        );
    }
    if first.routers.is_empty() {
        checks.push(
            Check::new(
                Kind::Dhcp,
                Verdict::Warn,
                "no-router",
                format!(
                    "the offer of {} gives no default gateway (option 3)",
                    first.server
                ),
            )
            .remedy(format!(
                "configure the DHCP server {} to hand out a default gateway (option 3) to {} — {}",
                first.server, ctx.from, ctx.product
            )),
        );
    }
    if first.dns.is_empty() {
        let c = Check::new(
            Kind::Dhcp,
            Verdict::Warn,
            "no-dns",
            format!(
                "the offer of {} gives no DNS server (option 6)",
                first.server
            ),
        );
        checks.push(if super::address::resolves(ctx.plan) {
            c.remedy(format!(
                "configure the DHCP server {} to hand out DNS servers (option 6) to {} — {}",
                first.server, ctx.from, ctx.product
            ))
        } else {
            c.informative()
        });
    }
    let offered = Some((iface, first.clone()));
    (checks, offered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str, up: bool, lo: bool) -> Link {
        Link {
            index: 1,
            name: name.into(),
            mac: (!lo).then_some([2, 0, 0, 0, 0, 1]),
            up,
            carrier: up,
            loopback: lo,
        }
    }

    #[test]
    fn the_interface_follows_the_route_else_the_only_one_up() {
        let links = [
            link("lo", true, true),
            link("eth0", true, false),
            link("eth1", false, false),
        ];
        assert_eq!(choose(&links, &[], None).map(|l| l.name), Ok("eth0".into()));
        let via_eth1 = [DefaultRoute {
            gateway: Some("10.0.0.1".parse().expect("ip")),
            interface: "eth1".into(),
        }];
        assert_eq!(
            choose(&links, &via_eth1, None)
                .map(|l| l.name)
                .map_err(|e| e.0),
            Err("interface-down")
        );
        assert_eq!(
            choose(&links, &[], Some("wlan0")).map_err(|e| e.0),
            Err("no-interface")
        );
        let two = [link("eth0", true, false), link("eth2", true, false)];
        let e = choose(&two, &[], None).map_err(|e| e.1);
        assert!(e.is_err_and(|d| d.contains("--interface")));
        assert_eq!(
            choose(&links, &[], Some("lo")).map_err(|e| e.0),
            Err("no-mac")
        );
    }
}
