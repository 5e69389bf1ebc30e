//! Alternative groups in the reach stage, judged per host: a group works when, for the hosts
//! of at least one of its flows, each host answers on at least one alternative (the Oscar
//! gateway resolves either cloud host and alternates between 443 and 4321 until one connects,
//! so 443 open to one host and 4321 to the other is enough; Izuma's mDS alternatives name a
//! host each, so one working flow is). The check says which flow reaches which host, and a
//! remedy names only the (host, port) pairs that failed — for a broken group, only those of
//! the hosts no alternative reaches.

use std::collections::BTreeMap;

use crate::remedy::{and_list, group_row};
use crate::report::{Check, Kind, Verdict};

use super::reach::{Failing, Seen};
use super::Ctx;

/// Remedies for the failing probes `bad`, one set per protocol, for group `id`.
fn remedies(ctx: &Ctx<'_>, bad: &[&Seen], id: &str) -> Vec<String> {
    let mut by_proto: BTreeMap<u8, Vec<&Seen>> = BTreeMap::new();
    for s in bad {
        by_proto
            .entry(ctx.plan.flows[s.flow].protocol)
            .or_default()
            .push(s);
    }
    let mut out = Vec::new();
    for (proto, v) in by_proto {
        for r in Failing::of(&v).remedies(ctx, proto, &group_row(id)) {
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    out
}

/// One check per alternative group with at least one member probed or unresolved.
pub(super) fn groups(
    ctx: &Ctx<'_>,
    seen: &[Seen],
    flow_verdict: &[Verdict],
    unresolved: &BTreeMap<usize, Vec<String>>,
) -> Vec<Check> {
    let plan = ctx.plan;
    let mut checks = Vec::new();
    for a in &plan.alternatives {
        let members: Vec<usize> = a
            .flows
            .iter()
            .filter_map(|id| plan.flows.iter().position(|f| &f.flow == id))
            .collect();
        if members.iter().all(|i| flow_verdict[*i] == Verdict::Skip) {
            continue;
        }
        let required = |s: &&Seen| members.contains(&s.flow) && !s.volatile;
        // The hosts of each member, in the order the flow names them.
        let hosts_of = |i: usize| -> Vec<String> {
            let f = &plan.flows[i];
            let mut hosts: Vec<String> = Vec::new();
            let named = f.names.iter().cloned();
            let probed = seen
                .iter()
                .filter(|s| s.flow == i && !s.volatile)
                .map(|s| s.peer.clone());
            let missing = unresolved.get(&i).into_iter().flatten().cloned();
            for h in named.chain(probed).chain(missing) {
                if !hosts.contains(&h) {
                    hosts.push(h);
                }
            }
            hosts
        };
        // A host → the member flows that reach it.
        let reach_by = |h: &str| -> Vec<String> {
            members
                .iter()
                .filter(|i| {
                    seen.iter().any(|s| {
                        s.flow == **i && s.peer == h && !s.volatile && s.verdict == Verdict::Pass
                    })
                })
                .map(|i| plan.flows[*i].flow.clone())
                .collect()
        };
        // Members whose every host some alternative reaches.
        let covered: Vec<usize> = members
            .iter()
            .copied()
            .filter(|i| {
                let h = hosts_of(*i);
                !h.is_empty() && h.iter().all(|h| !reach_by(h).is_empty())
            })
            .collect();
        let mut all_hosts: Vec<String> = Vec::new();
        for i in if covered.is_empty() {
            &members
        } else {
            &covered
        } {
            for h in hosts_of(*i) {
                if !all_hosts.contains(&h) {
                    all_hosts.push(h);
                }
            }
        }
        let reached: Vec<String> = all_hosts
            .iter()
            .filter_map(|h| {
                let by = reach_by(h);
                (!by.is_empty()).then(|| format!("{h} by {}", and_list(&by)))
            })
            .collect();
        let missing: Vec<String> = all_hosts
            .iter()
            .filter(|h| reach_by(h).is_empty())
            .cloned()
            .collect();
        let passing: Vec<String> = members
            .iter()
            .filter(|i| flow_verdict[**i] == Verdict::Pass)
            .map(|i| plan.flows[*i].flow.clone())
            .collect();
        let failing: Vec<String> = members
            .iter()
            .filter(|i| flow_verdict[**i] >= Verdict::Warn)
            .map(|i| plan.flows[*i].flow.clone())
            .collect();
        let optional = members.iter().all(|i| plan.flows[*i].optional);
        let bad: Vec<&Seen> = seen
            .iter()
            .filter(required)
            .filter(|s| s.verdict >= Verdict::Warn)
            .collect();
        let c = if failing.is_empty() {
            Check::new(
                Kind::Alternative,
                Verdict::Pass,
                "all",
                format!("{}: every alternative works ({})", a.id, and_list(&passing)),
            )
        } else if !covered.is_empty() {
            let not_all: Vec<String> = failing.clone();
            Check::new(
                Kind::Alternative,
                Verdict::Warn,
                "partial",
                format!(
                    "{}: every host of {} answers on at least one alternative — {}; {} {} not work everywhere (one alternative per host is enough; the vendor may prefer all)",
                    a.id,
                    and_list(
                        &covered
                            .iter()
                            .map(|i| plan.flows[*i].flow.clone())
                            .collect::<Vec<_>>()
                    ),
                    reached.join(", "),
                    and_list(&not_all),
                    if not_all.len() == 1 { "does" } else { "do" },
                ),
            )
            .remedy_if(remedies(ctx, &bad, &a.id).join("; "))
        } else {
            // Only the pairs of the hosts no alternative reaches: allowing any of them fixes
            // that host.
            let bad: Vec<&Seen> = bad
                .into_iter()
                .filter(|s| missing.contains(&s.peer))
                .collect();
            let others = if reached.is_empty() {
                String::new()
            } else {
                format!("; {}", reached.join(", "))
            };
            let state = if reached.is_empty() {
                "none"
            } else {
                "host-unreachable"
            };
            Check::new(
                Kind::Alternative,
                if optional {
                    Verdict::Warn
                } else {
                    Verdict::Fail
                },
                state,
                format!(
                    "{}: no alternative reaches {} ({}){others}",
                    a.id,
                    and_list(&missing),
                    and_list(&a.flows)
                ),
            )
            .remedy_if(remedies(ctx, &bad, &a.id).join("; "))
        };
        checks.push(c.flow(a.id.clone()));
    }
    checks
}
