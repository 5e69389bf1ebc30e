//! The requirements stage: what a profile of the second edition says the device needs that is
//! not a flow (`requirements:`), checked where the network can tell.
//!
//! - `dhcp_options` of an `addressing` requirement: against the DHCP offer the address stage
//!   drew with `--dhcp` (whose DISCOVER asks for them in its parameter request list, RFC 2132
//!   §9.8); each option is offered or missing. Without `--dhcp` they are skipped, never passed.
//! - `names` of a `dns` requirement: looked up at the device's resolver (the one the names
//!   stage asks), resolved with addresses and TTL, or how it failed.
//! - `resolvers` of a `dns` requirement: each is asked one question over UDP 53 from here; any
//!   DNS answer (even NXDOMAIN) shows that it is reachable, silence shows that something (often
//!   a firewall) keeps the device from the resolver it uses whatever DHCP says.
//! - Anything else (`link`, `credentials`, an `addressing` or `dns` requirement with nothing to
//!   test) is listed as not probed, with its citation, for a person to check.
//!
//! Every failing check's remedy quotes the requirement and cites its source.

use std::net::{IpAddr, SocketAddr};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use portolan_model::profile::{Requirement, RequirementKind};

use crate::dhcp::Offer;
use crate::dns::{self, Failure};
use crate::plan::Plan;
use crate::report::{Check, Kind, RequirementRef, Stage, StageReport, Verdict};
use crate::runtime::{join_all, Transport};

use super::address::Offered;
use super::Ctx;

/// Every DHCP option code the profile's requirements name, in order, once each.
pub(super) fn required_dhcp_options(plan: &Plan) -> Vec<u8> {
    let mut v: Vec<u8> = Vec::new();
    for r in &plan.profile.requirements {
        for c in &r.dhcp_options {
            if !v.contains(c) {
                v.push(*c);
            }
        }
    }
    v
}

/// The name of a DHCP option as its RFC calls it (RFC 2132 unless said), else `option N`.
pub fn option_name(code: u8) -> String {
    let name = match code {
        1 => "subnet mask",
        2 => "time offset",
        3 => "router",
        4 => "time server",
        6 => "domain name server",
        7 => "log server",
        12 => "host name",
        15 => "domain name",
        26 => "interface MTU",
        28 => "broadcast address",
        42 => "NTP servers",
        43 => "vendor-specific information",
        44 => "NetBIOS name server",
        51 => "lease time",
        54 => "server identifier",
        58 => "renewal time",
        59 => "rebinding time",
        60 => "vendor class identifier",
        66 => "TFTP server name",
        67 => "bootfile name",
        // RFC 3397
        119 => "domain search",
        // RFC 3442
        121 => "classless static route",
        // RFC 5859
        150 => "TFTP server address",
        _ => return format!("option {code}"),
    };
    format!("option {code} ({name})")
}

/// `doc: ref; doc: ref`.
fn cited(r: &Requirement) -> String {
    let v: Vec<String> = r
        .source
        .iter()
        .map(|c| format!("{}: {}", c.doc, c.reference))
        .collect();
    v.join("; ")
}

/// What a remedy ends with: `Oscar TempLog gateway, requirement “…” (doc: ref)`.
fn tail(ctx: &Ctx<'_>, r: &Requirement) -> String {
    format!(
        "{}, requirement “{}” ({})",
        ctx.product,
        r.text.trim(),
        cited(r)
    )
}

fn reference(index: usize, r: &Requirement) -> RequirementRef {
    RequirementRef {
        index,
        kind: r.kind.name().to_string(),
        text: r.text.trim().to_string(),
        source: r.source.clone(),
    }
}

/// What the offer says for `code`, for the check's line.
fn offered_value(o: &Offer, code: u8) -> String {
    let list = |v: &[std::net::Ipv4Addr]| {
        let s: Vec<String> = v.iter().map(ToString::to_string).collect();
        s.join(", ")
    };
    match code {
        1 => o
            .prefix_len
            .map_or_else(|| "given".into(), |p| format!("/{p}")),
        3 => list(&o.routers),
        6 => list(&o.dns),
        42 => list(&o.ntp),
        15 => o.domain.clone().unwrap_or_else(|| "given".into()),
        51 => o
            .lease_secs
            .map_or_else(|| "given".into(), |s| format!("{s} s")),
        _ => "given".into(),
    }
}

/// The DHCP checks of one `addressing` requirement.
fn dhcp_checks(
    ctx: &Ctx<'_>,
    index: usize,
    r: &Requirement,
    offered: &Offered,
    out: &mut Vec<Check>,
) {
    let rref = reference(index, r);
    let codes: Vec<String> = r.dhcp_options.iter().map(ToString::to_string).collect();
    let Some((iface, offer)) = offered else {
        let why = if ctx.opts.dhcp.is_none() {
            "not checked: give --dhcp (and --interface NAME) to read a DHCP server's offer"
        } else {
            "not checked: no DHCP offer to read (see address)"
        };
        out.push(
            Check::new(
                Kind::DhcpOption,
                Verdict::Skip,
                "skipped",
                format!("DHCP options {}: {why}", codes.join(", ")),
            )
            .requirement(rref)
            .informative(),
        );
        return;
    };
    for code in &r.dhcp_options {
        let name = option_name(*code);
        let c = if offer.options.contains(code) {
            Check::new(
                Kind::DhcpOption,
                Verdict::Pass,
                "offered",
                format!(
                    "{name}: offered by {} on {iface}: {}",
                    offer.server,
                    offered_value(offer, *code)
                ),
            )
        } else {
            Check::new(
                Kind::DhcpOption,
                Verdict::Fail,
                "missing",
                format!(
                    "{name}: not in the offer of {} on {iface}, though the DISCOVER asked for it",
                    offer.server
                ),
            )
            .remedy(format!(
                "configure the DHCP server {} to hand out {name} to {} — {}",
                offer.server,
                ctx.from,
                tail(ctx, r)
            ))
        };
        out.push(
            c.dhcp_option(*code)
                .requirement(rref.clone())
                .address(IpAddr::V4(offer.server)),
        );
    }
}

/// What to do about a name that does not resolve at `server`.
fn name_remedy(ctx: &Ctx<'_>, server: SocketAddr, name: &str, e: &Failure) -> String {
    match e {
        Failure::NxDomain => format!(
            "make {server} resolve {name}: it answers NXDOMAIN (check its forwarders, local zones and block lists)"
        ),
        Failure::ServFail => format!(
            "make {server} resolve {name}: it answers SERVFAIL (check its upstream servers and DNSSEC validation)"
        ),
        Failure::Refused => format!(
            "let {} use {server}: it REFUSES the query (check its allowed clients)",
            ctx.from
        ),
        Failure::Timeout | Failure::Unreachable(_) => format!(
            "make {server} answer for {name}: check that it runs, that its upstream servers answer, and that UDP and TCP 53 from {} to it are allowed",
            ctx.from
        ),
        Failure::NoAddress => format!(
            "make {server} resolve {name} to an address: it has no A or AAAA record there"
        ),
        Failure::Other(d) => format!("check the DNS service at {server} ({d})"),
    }
}

/// The question asked of a hard-coded resolver: a name the requirement (else any requirement,
/// else any flow) names, else the root's NS records.
fn probe_question(plan: &Plan, r: &Requirement) -> (Name, RecordType, String) {
    let name = r
        .names
        .first()
        .or_else(|| {
            plan.profile
                .requirements
                .iter()
                .find_map(|x| x.names.first())
        })
        .cloned()
        .or_else(|| crate::plan::names(plan).into_iter().next());
    if let Some(n) = name {
        let fq = format!("{}.", n.trim_end_matches('.'));
        if let Ok(q) = Name::from_ascii(&fq) {
            return (q, RecordType::A, n);
        }
    }
    (Name::root(), RecordType::NS, ". NS".into())
}

/// One hard-coded resolver: answers or not.
fn resolver_check(
    ctx: &Ctx<'_>,
    r: &Requirement,
    resolver: IpAddr,
    asked: &str,
    res: Result<hickory_proto::op::Message, Failure>,
) -> Check {
    let allow = format!(
        "allow UDP and TCP 53 from {} to {resolver}: the device asks it whatever DHCP says — {}",
        ctx.from,
        tail(ctx, r)
    );
    let c = match res {
        Ok(m) => match m.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => Check::new(
                Kind::HardCodedResolver,
                Verdict::Pass,
                "answers",
                format!(
                    "resolver {resolver}: answers ({} for {asked})",
                    m.metadata.response_code
                ),
            ),
            ResponseCode::ServFail => Check::new(
                Kind::HardCodedResolver,
                Verdict::Warn,
                "servfail",
                format!("resolver {resolver}: answers, but SERVFAIL for {asked}"),
            )
            .remedy(format!(
                "check why {resolver} cannot resolve {asked} (SERVFAIL): the device asks it whatever DHCP says — {}",
                tail(ctx, r)
            )),
            ResponseCode::Refused => Check::new(
                Kind::HardCodedResolver,
                Verdict::Fail,
                "refused",
                format!("resolver {resolver}: REFUSES the query for {asked}"),
            )
            .remedy(format!(
                "let {} use {resolver}: it refuses the query, and the device asks it whatever DHCP says — {}",
                ctx.from,
                tail(ctx, r)
            )),
            other => Check::new(
                Kind::HardCodedResolver,
                Verdict::Warn,
                "error",
                format!("resolver {resolver}: answers {other} for {asked}"),
            ),
        },
        Err(e @ (Failure::Timeout | Failure::Unreachable(_))) => Check::new(
            Kind::HardCodedResolver,
            Verdict::Fail,
            e.state(),
            format!("resolver {resolver}: {e} (asked for {asked} on UDP 53)"),
        )
        .remedy(allow),
        Err(e) => Check::new(
            Kind::HardCodedResolver,
            Verdict::Warn,
            e.state(),
            format!("resolver {resolver}: {e}"),
        ),
    };
    c.address(resolver).proto("udp", Some(53))
}

/// The requirements stage, or `None` when the profile states no requirement.
pub(super) async fn requirements_stage<T: Transport>(
    t: &T,
    ctx: &Ctx<'_>,
    offered: &Offered,
) -> Option<StageReport> {
    let reqs = &ctx.plan.profile.requirements;
    if reqs.is_empty() {
        return None;
    }
    let mut checks = Vec::new();
    for (i, r) in reqs.iter().enumerate() {
        let testable = !r.dhcp_options.is_empty() || !r.names.is_empty() || !r.resolvers.is_empty();
        if !testable {
            let how = match r.kind {
                RequirementKind::Link => "a property of the link",
                RequirementKind::Credentials => "a property of the device's credentials",
                _ => "nothing the network can answer",
            };
            checks.push(
                Check::new(
                    Kind::NotProbed,
                    Verdict::Skip,
                    "not-probed",
                    format!(
                        "{}: {} — {how}, not probed: check it by hand ({})",
                        r.kind.name(),
                        r.text.trim(),
                        cited(r)
                    ),
                )
                .requirement(reference(i, r))
                .informative(),
            );
            continue;
        }
        if !r.dhcp_options.is_empty() {
            dhcp_checks(ctx, i, r, offered, &mut checks);
        }
        if !r.names.is_empty() {
            match ctx.resolver {
                None => {
                    for n in &r.names {
                        checks.push(
                            Check::new(
                                Kind::MustResolve,
                                Verdict::Skip,
                                "skipped",
                                format!("{n}: not asked, no name server to ask (see address)"),
                            )
                            .peer(n.clone())
                            .requirement(reference(i, r))
                            .informative(),
                        );
                    }
                }
                Some(server) => {
                    let q = dns::Query {
                        server,
                        source: ctx.opts.source,
                        timeout: ctx.opts.timeout,
                        attempts: ctx.opts.attempts,
                    };
                    let res = join_all(r.names.iter().map(|n| dns::lookup(t, &q, n))).await;
                    for (n, res) in r.names.iter().zip(res) {
                        let c = match res {
                            Ok(a) => {
                                let addrs: Vec<String> =
                                    a.addresses.iter().map(ToString::to_string).collect();
                                Check::new(
                                    Kind::MustResolve,
                                    Verdict::Pass,
                                    "resolved",
                                    format!(
                                        "{n}: {} (TTL {} s) at {server}",
                                        addrs.join(", "),
                                        a.ttl
                                    ),
                                )
                            }
                            Err(e) => Check::new(
                                Kind::MustResolve,
                                Verdict::Fail,
                                e.state(),
                                format!("{n}: {e} at {server}"),
                            )
                            .remedy(format!(
                                "{} — {}",
                                name_remedy(ctx, server, n, &e),
                                tail(ctx, r)
                            )),
                        };
                        checks.push(c.peer(n.clone()).requirement(reference(i, r)));
                    }
                }
            }
        }
        if !r.resolvers.is_empty() {
            let (qname, rtype, asked) = probe_question(ctx.plan, r);
            let res = join_all(r.resolvers.iter().map(|a| {
                let q = dns::Query {
                    server: SocketAddr::new(*a, 53),
                    source: ctx.opts.source,
                    timeout: ctx.opts.timeout,
                    attempts: ctx.opts.attempts,
                };
                let qname = qname.clone();
                async move { dns::exchange(t, &q, &qname, rtype).await }
            }))
            .await;
            for (a, res) in r.resolvers.iter().zip(res) {
                checks.push(resolver_check(ctx, r, *a, &asked, res).requirement(reference(i, r)));
            }
        }
    }
    Some(StageReport::new(Stage::Requirements, checks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_named_as_their_rfcs_name_them() {
        // RFC 2132 §3.5, §3.8, §8.3; RFC 3397 §2; an unnamed code stays a number.
        assert_eq!(option_name(3), "option 3 (router)");
        assert_eq!(option_name(6), "option 6 (domain name server)");
        assert_eq!(option_name(42), "option 42 (NTP servers)");
        assert_eq!(option_name(119), "option 119 (domain search)");
        assert_eq!(option_name(224), "option 224");
    }
}
