//! The names stage: every hostname through the device's resolver, compared and re-asked.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::dns::{self, Answer, Failure};
use crate::plan::{names, Plan};
use crate::remedy::and_list;
use crate::report::{Check, Kind, Stage, StageReport, Verdict};
use crate::runtime::{join_all, Transport};

use super::Ctx;

/// The flows that need each name, and whether any of them is required.
fn name_users(plan: &Plan) -> BTreeMap<String, (Vec<String>, bool)> {
    let mut m: BTreeMap<String, (Vec<String>, bool)> = BTreeMap::new();
    for f in &plan.flows {
        for n in &f.names {
            let e = m.entry(n.clone()).or_default();
            let id = f.alternative.clone().unwrap_or_else(|| f.flow.clone());
            if !e.0.contains(&id) {
                e.0.push(id);
            }
            e.1 |= !f.optional;
        }
    }
    m
}

fn flows_text(flows: &[String]) -> String {
    let v: Vec<String> = flows.iter().map(|f| format!("`{f}`")).collect();
    format!(
        "flow{} {}",
        if v.len() > 1 { "s" } else { "" },
        and_list(&v)
    )
}

pub(super) async fn names_stage<T: Transport>(
    t: &T,
    ctx: &Ctx<'_>,
) -> (StageReport, BTreeMap<String, Vec<IpAddr>>) {
    let all = names(ctx.plan);
    let mut resolved = BTreeMap::new();
    if all.is_empty() {
        return (
            StageReport::skipped(Stage::Names, "the device's flows name no host"),
            resolved,
        );
    }
    let Some(server) = ctx.resolver else {
        return (
            StageReport::skipped(Stage::Names, "no name server to ask (see address)"),
            resolved,
        );
    };
    let q = dns::Query {
        server,
        source: ctx.opts.source,
        timeout: ctx.opts.timeout,
        attempts: ctx.opts.attempts,
    };
    let users = name_users(ctx.plan);
    let rounds = ctx.opts.ttl_queries.max(1);
    // answers[name] = one result per round, with the time it was asked
    let mut answers: BTreeMap<String, Vec<Asked>> = BTreeMap::new();
    for round in 0..rounds {
        if round > 0 {
            t.sleep(ctx.opts.ttl_gap).await;
        }
        let asked = tokio::time::Instant::now();
        let res = join_all(all.iter().map(|n| dns::lookup(t, &q, n))).await;
        for (n, r) in all.iter().zip(res) {
            answers.entry(n.clone()).or_default().push((asked, r));
        }
        // Names that failed are not asked again.
        if answers.values().all(|v| v.iter().all(|(_, r)| r.is_err())) {
            break;
        }
    }
    let reference = match ctx.opts.compare_resolver {
        Some(c) => {
            let cq = dns::Query { server: c, ..q };
            let res = join_all(all.iter().map(|n| dns::lookup(t, &cq, n))).await;
            all.iter().cloned().zip(res).collect::<BTreeMap<_, _>>()
        }
        None => BTreeMap::new(),
    };
    let all_timeout = answers.values().all(|v| {
        v.iter()
            .all(|(_, r)| matches!(r, Err(Failure::Timeout | Failure::Unreachable(_))))
    });
    let mut checks = Vec::new();
    for (name, rounds) in &answers {
        let (flows, required) = users.get(name).cloned().unwrap_or_default();
        let first = rounds.first().map(|(_, r)| r.clone());
        match first {
            Some(Ok(a)) => {
                let addrs: Vec<String> = a.addresses.iter().map(ToString::to_string).collect();
                resolved.insert(name.clone(), a.addresses.clone());
                checks.push(
                    Check::new(
                        Kind::Name,
                        Verdict::Pass,
                        "resolved",
                        format!("{name}: {} (TTL {} s)", addrs.join(", "), a.ttl),
                    )
                    .peer(name.clone())
                    .flow(flows.join(",")),
                );
                checks.extend(ttl_checks(ctx, name, rounds, reference.get(name)));
                if let Some(Ok(r)) = reference.get(name) {
                    let mut x = a.addresses.clone();
                    let mut y = r.addresses.clone();
                    x.sort();
                    y.sort();
                    if x != y {
                        let ys: Vec<String> = y.iter().map(ToString::to_string).collect();
                        checks.push(
                            Check::new(
                                Kind::Compare,
                                Verdict::Warn,
                                "differs",
                                format!(
                                    "{name}: {server} answers {}, {} answers {}",
                                    addrs.join(", "),
                                    r_server(ctx),
                                    ys.join(", ")
                                ),
                            )
                            .peer(name.clone())
                            .remedy(format!(
                                "check why {server} answers {name} differently from {}: a stale cache, a local override or a split-horizon zone — {}, {}",
                                r_server(ctx), ctx.product, flows_text(&flows)
                            )),
                        );
                    }
                } else if let Some(Err(e)) = reference.get(name) {
                    checks.push(
                        Check::new(
                            Kind::Compare,
                            Verdict::Warn,
                            "differs",
                            format!("{name}: {server} answers, {} says {e}", r_server(ctx)),
                        )
                        .peer(name.clone())
                        .informative(),
                    );
                }
            }
            Some(Err(e)) => {
                let verdict = if required {
                    Verdict::Fail
                } else {
                    Verdict::Warn
                };
                let remedy = match &e {
                    Failure::NxDomain => format!(
                        "make {server} resolve {name}: it answers NXDOMAIN (check its forwarders, local zones and block lists) — {}, {}",
                        ctx.product, flows_text(&flows)
                    ),
                    Failure::ServFail => format!(
                        "make {server} resolve {name}: it answers SERVFAIL (check its upstream servers and DNSSEC validation) — {}, {}",
                        ctx.product, flows_text(&flows)
                    ),
                    Failure::Refused => format!(
                        "let {} use {server}: it REFUSES the query (check its allowed clients) — {}, {}",
                        ctx.from, ctx.product, flows_text(&flows)
                    ),
                    Failure::Timeout | Failure::Unreachable(_) if all_timeout => format!(
                        "allow UDP and TCP 53 from {} to {server}, and make sure a DNS server runs there — {}, flow `dns`",
                        ctx.from, ctx.product
                    ),
                    Failure::Timeout | Failure::Unreachable(_) => format!(
                        "{server} does not answer for {name}: check its upstream servers (it answers other names) — {}, {}",
                        ctx.product, flows_text(&flows)
                    ),
                    Failure::NoAddress => format!(
                        "{name} has no A/AAAA record at {server}: check the name in the site or profile — {}, {}",
                        ctx.product, flows_text(&flows)
                    ),
                    Failure::Other(_) => format!(
                        "check the DNS service at {server} — {}, {}",
                        ctx.product, flows_text(&flows)
                    ),
                };
                checks.push(
                    Check::new(Kind::Name, verdict, e.state(), format!("{name}: {e}"))
                        .peer(name.clone())
                        .flow(flows.join(","))
                        .remedy(remedy),
                );
            }
            None => {}
        }
    }
    (StageReport::new(Stage::Names, checks), resolved)
}

fn r_server(ctx: &Ctx<'_>) -> String {
    ctx.opts
        .compare_resolver
        .map_or_else(String::new, |c| c.to_string())
}

/// One answer and when it was asked for.
type Asked = (tokio::time::Instant, Result<Answer, Failure>);

/// TTL inflation: a TTL above the reference's (the compare resolver, or the authoritative
/// answer), or a TTL that grew between two queries before it could have expired.
fn ttl_checks(
    ctx: &Ctx<'_>,
    name: &str,
    rounds: &[Asked],
    reference: Option<&Result<Answer, Failure>>,
) -> Vec<Check> {
    let ok: Vec<(tokio::time::Instant, &Answer)> = rounds
        .iter()
        .filter_map(|(t, r)| r.as_ref().ok().map(|a| (*t, a)))
        .collect();
    let Some(max) = ok.iter().map(|(_, a)| a.ttl).max() else {
        return Vec::new();
    };
    let server = ctx.resolver.map_or_else(String::new, |s| s.to_string());
    let remedy = |why: String| {
        format!(
            "make {server} honour the record's TTL for {name} ({why}; remove any minimum-TTL or TTL-override setting) — {}, as the vendor requires",
            ctx.product
        )
    };
    let mut out = Vec::new();
    if let Some(Ok(r)) = reference {
        if max > r.ttl {
            out.push(
                Check::new(
                    Kind::Ttl,
                    Verdict::Warn,
                    "ttl-inflated",
                    format!(
                        "{name}: {server} serves TTL {max} s, longer than {} s at {}",
                        r.ttl,
                        r_server(ctx)
                    ),
                )
                .peer(name.to_string())
                .remedy(remedy(format!("it serves {max} s for {} s", r.ttl))),
            );
            return out;
        }
    }
    for w in ok.windows(2) {
        let (t0, a0) = w[0];
        let (t1, a1) = w[1];
        let elapsed = t1.duration_since(t0).as_secs();
        let counted_down = u64::from(a0.ttl).saturating_sub(elapsed);
        if !a1.authoritative && elapsed < u64::from(a0.ttl) && u64::from(a1.ttl) > counted_down + 1
        {
            out.push(
                Check::new(
                    Kind::Ttl,
                    Verdict::Warn,
                    "ttl-inflated",
                    format!(
                        "{name}: TTL went from {} s to {} s in {elapsed} s without expiring",
                        a0.ttl, a1.ttl
                    ),
                )
                .peer(name.to_string())
                .remedy(remedy(format!(
                    "its TTL grew from {} s to {} s",
                    a0.ttl, a1.ttl
                ))),
            );
            break;
        }
    }
    out
}
