//! The address stage: the source address, a default route, name servers and, with `--dhcp`,
//! what a DHCP server offers on the device's network ([`super::dhcp_check`]).

use std::net::IpAddr;

use portolan_model::ir::{is_dns, IpProto};

use crate::report::{Check, Kind, Stage, StageReport, Verdict};
use crate::runtime::Transport;

use super::Ctx;

pub(super) async fn address_stage<T: Transport>(
    t: &T,
    ctx: &Ctx<'_>,
    routes: &[crate::address::DefaultRoute],
    source: Option<IpAddr>,
    towards: Option<IpAddr>,
) -> (StageReport, Offered) {
    let (dhcp, offered) = match &ctx.opts.dhcp {
        Some(o) => super::dhcp_check::dhcp_checks(t, ctx, o, routes).await,
        None => (Vec::new(), None),
    };
    let mut checks = Vec::new();
    let group = &ctx.plan.group;
    let declared: Vec<_> = group
        .addresses
        .iter()
        .filter(|n| n.prefix_len() != 0)
        .collect();
    match (ctx.opts.source, source) {
        (Some(s), _) => {
            let probe_dst = towards.unwrap_or(s);
            match t.source_towards(Some(s), probe_dst) {
                Ok(_) => checks.push(source_check(s, &declared, &group.id)),
                // The address is here, only the way out is missing (the route check says so
                // when there is no default route at all).
                Err(e) if t.source_towards(Some(s), s).is_ok() => {
                    checks.push(source_check(s, &declared, &group.id));
                    if !routes.is_empty() {
                        checks.push(
                            Check::new(Kind::Route, Verdict::Fail, "no-route", e.to_string()).address(s),
                        );
                    }
                }
                Err(e) => checks.push(
                    Check::new(Kind::Source, Verdict::Fail, "not-local", e.to_string())
                        .address(s)
                        .remedy(format!(
                            "run the probe on a machine that holds {s}, or give its own address with --source"
                        )),
                ),
            }
        }
        (None, Some(s)) => checks.push(source_check(s, &declared, &group.id)),
        (None, None) => checks.push(
            Check::new(
                Kind::Source,
                Verdict::Fail,
                "no-address",
                "no usable address: neither a default route nor a name server to send towards",
            )
            .remedy(match &offered {
                // The server works: it is this machine that has not taken the lease.
                Some((iface, offer)) => format!(
                    "the DHCP server {} offers {} on {iface}: let this machine take the lease (start its DHCP client) or give it an address, then probe again",
                    offer.server, offer.address
                ),
                None => super::dhcp_check::no_lease_remedy(ctx),
            }),
        ),
    }
    if routes.is_empty() {
        checks.push(
            Check::new(
                Kind::Route,
                Verdict::Fail,
                "no-default-route",
                "no default route",
            )
            .remedy(format!(
                "give {} a default gateway (DHCP option 3, or the static configuration) — {}",
                ctx.from, ctx.product
            )),
        );
    } else {
        let text: Vec<String> = routes
            .iter()
            .map(|r| match r.gateway {
                Some(g) => format!("via {g} dev {}", r.interface),
                None => format!("dev {}", r.interface),
            })
            .collect();
        checks.push(Check::new(
            Kind::Route,
            Verdict::Pass,
            "ok",
            format!("default {}", text.join("; ")),
        ));
    }
    match ctx.resolver {
        Some(r) => {
            checks.push(
                Check::new(
                    Kind::Resolver,
                    Verdict::Pass,
                    "ok",
                    format!("name server {r} ({})", ctx.resolver_how),
                )
                .address(r.ip()),
            );
            // The site states the device's resolver; this machine asks another one.
            let (site, _) = ctx.plan.site_resolvers();
            match ctx.machine_resolver {
                Some(m) if !site.contains(&m.ip()) => checks.push(
                    Check::new(
                        Kind::Resolver,
                        Verdict::Warn,
                        "machine-differs",
                        format!(
                            "this machine's resolver {m} (resolv.conf) is not the site's ({}): names are resolved through the site's, as the device will",
                            site.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                        ),
                    )
                    .address(m.ip())
                    .remedy(format!(
                        "point this machine at the site's resolver {} (or probe from the device's network, whose DHCP hands it out) — to probe through another one, give --resolver",
                        r.ip()
                    )),
                ),
                _ => {}
            }
        }
        None if !resolves(ctx.plan) => checks.push(
            Check::new(
                Kind::Resolver,
                Verdict::Skip,
                "none",
                "no name server configured (the device's flows need none)",
            )
            .informative(),
        ),
        None => checks.push(
            Check::new(
                Kind::Resolver,
                Verdict::Fail,
                "none",
                "no name server configured",
            )
            .remedy(format!(
                "give {} DNS servers (DHCP option 6, or the static configuration) — {}",
                ctx.from, ctx.product
            )),
        ),
    }
    checks.extend(dhcp);
    (StageReport::new(Stage::Address, checks), offered)
}

/// The first DHCP offer and the interface it came on, when `--dhcp` drew one.
pub(super) type Offered = Option<(String, crate::dhcp::Offer)>;

/// Whether the device asks a name server: a flow names a host, is DNS itself, or a
/// requirement names a host that must resolve.
pub(super) fn resolves(plan: &crate::plan::Plan) -> bool {
    !crate::plan::names(plan).is_empty()
        || plan
            .profile
            .requirements
            .iter()
            .any(|r| !r.names.is_empty())
        || plan
            .flows
            .iter()
            .any(|f| is_dns(IpProto::new(f.protocol), &f.ports))
}

fn source_check(s: IpAddr, declared: &[&ipnet::IpNet], device: &str) -> Check {
    if declared.is_empty() || declared.iter().any(|n| n.contains(&s)) {
        Check::new(
            Kind::Source,
            Verdict::Pass,
            "ok",
            format!("sending from {s}"),
        )
        .address(s)
    } else {
        let d: Vec<String> = declared.iter().map(ToString::to_string).collect();
        Check::new(
            Kind::Source,
            Verdict::Warn,
            "outside-device",
            format!(
                "sending from {s}, which is not an address of device `{device}` ({}): results show what {s} may reach",
                d.join(", ")
            ),
        )
        .address(s)
        .remedy(format!(
            "probe from one of the device's addresses ({}) with --source, or from its network",
            d.join(", ")
        ))
    }
}
