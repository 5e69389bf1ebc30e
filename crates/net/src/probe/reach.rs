//! The reach stage: every flow the device opens, target by target, and alternative groups.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use portolan_model::ir::PortRange;
use tokio::sync::Semaphore;

use crate::plan::FlowPlan;
use crate::remedy::{and_list, merge_ports, no_listener, not_sent, proto_key, proto_name};
use crate::report::{Check, Kind, Stage, StageReport, Verdict};
use crate::runtime::{join_all, EchoReply, TcpState, Transport, UdpReply};
use crate::udp_apps::UdpApp;

use super::Ctx;

/// One thing to try.
#[derive(Clone, Debug)]
struct Target {
    flow: usize,
    peer: String,
    address: IpAddr,
    port: Option<u16>,
}

/// What reach saw at one target (used by integrity).
#[derive(Clone, Debug)]
pub(super) struct Seen {
    pub(super) flow: usize,
    pub(super) peer: String,
    pub(super) address: IpAddr,
    pub(super) port: Option<u16>,
    pub(super) state: String,
    pub(super) verdict: Verdict,
    /// The target's detail (the OS's words for a local error).
    pub(super) why: String,
}

/// What a failing flow needs, by who can fix it.
#[derive(Clone, Debug, Default)]
struct Failing {
    /// Ports and peers the path drops or rejects (filtered, unreachable, open|filtered): the
    /// firewall should allow them.
    blocked: Option<(Vec<PortRange>, Vec<String>)>,
    /// Ports and peers that answered that nothing listens (refused, closed): the packet got
    /// through; the service or the binding is wrong, not the firewall.
    closed: Option<(Vec<PortRange>, Vec<String>)>,
    /// The probing machine could not send at all: the OS's words.
    local: Option<String>,
}

impl Failing {
    fn of(bad: &[&Seen]) -> Failing {
        let pick = |f: fn(&str) -> bool| -> Option<(Vec<PortRange>, Vec<String>)> {
            let v: Vec<&&Seen> = bad.iter().filter(|s| f(&s.state)).collect();
            if v.is_empty() {
                return None;
            }
            let ports = merge_ports(
                v.iter()
                    .filter_map(|s| s.port.map(|p| PortRange { lo: p, hi: p }))
                    .collect(),
            );
            let mut peers: Vec<String> = v.iter().map(|s| s.peer.clone()).collect();
            peers.sort();
            peers.dedup();
            Some((ports, peers))
        };
        Failing {
            blocked: pick(|s| !matches!(s, "refused" | "closed" | "local-error")),
            closed: pick(|s| matches!(s, "refused" | "closed")),
            local: bad.iter().find(|s| s.state == "local-error").map(|s| {
                s.why
                    .strip_prefix("not sent: ")
                    .unwrap_or(&s.why)
                    .to_string()
            }),
        }
    }
}

fn expand(ports: &[PortRange], max: usize) -> (Vec<u16>, bool) {
    let mut out = Vec::new();
    let mut cut = false;
    for r in ports {
        let n = usize::from(r.hi - r.lo) + 1;
        let take = n.min(max.max(1));
        cut |= take < n;
        for i in 0..take {
            if let Ok(i) = u16::try_from(i) {
                out.push(r.lo + i);
            }
        }
    }
    (out, cut)
}

async fn probe_target<T: Transport>(
    t: &T,
    ctx: &Ctx<'_>,
    f: &FlowPlan,
    tg: &Target,
) -> (String, Verdict, String) {
    let src = ctx.opts.source;
    let to = ctx.opts.timeout;
    match (f.protocol, tg.port) {
        (6, Some(port)) => {
            let o = t
                .tcp_connect(src, SocketAddr::new(tg.address, port), to)
                .await;
            let v = if o.state == TcpState::Open {
                Verdict::Pass
            } else {
                Verdict::Fail
            };
            let why = match o.state {
                TcpState::Open => "connected".to_string(),
                TcpState::Refused => "refused (TCP reset or ICMP port unreachable): the peer answered, nothing listens on that port".into(),
                TcpState::Filtered => "filtered: no answer to the SYN, a firewall drops it".into(),
                TcpState::Unreachable => format!(
                    "unreachable: a router or firewall answers with an ICMP error ({})",
                    o.detail.clone().unwrap_or_default()
                ),
                TcpState::LocalError => format!("not sent: {}", o.detail.clone().unwrap_or_default()),
            };
            (o.state.name().to_string(), v, why)
        }
        (17, Some(port)) => {
            let app = UdpApp::for_flow(port, f.app.as_deref(), ctx.opts.token.is_some());
            let (req, expect) = app.request(ctx.opts.token.as_deref());
            let r = t
                .udp_exchange(
                    src,
                    SocketAddr::new(tg.address, port),
                    req,
                    expect,
                    to,
                    ctx.opts.attempts,
                )
                .await;
            match r {
                UdpReply::Answer(_) => (
                    "open".into(),
                    Verdict::Pass,
                    format!("answered a {}", app.name()),
                ),
                UdpReply::Closed => (
                    "closed".into(),
                    Verdict::Fail,
                    format!(
                        "ICMP port unreachable to a {}: the peer answered, nothing listens on that port",
                        app.name()
                    ),
                ),
                UdpReply::Unreachable(d) => (
                    "unreachable".into(),
                    Verdict::Fail,
                    format!("unreachable: {d}"),
                ),
                UdpReply::Silent => (
                    "open|filtered".into(),
                    Verdict::Warn,
                    format!(
                        "no answer to a {}: a firewall drops it, or nothing answers there",
                        app.name()
                    ),
                ),
                UdpReply::LocalError(d) => (
                    "local-error".into(),
                    Verdict::Fail,
                    format!("not sent: {d}"),
                ),
            }
        }
        (1 | 58, _) => match t.icmp_echo(src, tg.address, to).await {
            EchoReply::Reply => ("open".into(), Verdict::Pass, "echo reply".into()),
            EchoReply::Unreachable(d) => ("unreachable".into(), Verdict::Fail, d),
            EchoReply::Silent => ("filtered".into(), Verdict::Fail, "no echo reply".into()),
            EchoReply::LocalError(d) => ("local-error".into(), Verdict::Fail, d),
        },
        _ => (
            "not-probed".into(),
            Verdict::Skip,
            "no probe for this protocol".into(),
        ),
    }
}

pub(super) async fn reach_stage<T: Transport>(
    t: &T,
    ctx: &Ctx<'_>,
    resolved: &BTreeMap<String, Vec<IpAddr>>,
) -> (StageReport, Vec<Seen>) {
    let plan = ctx.plan;
    let mut checks = Vec::new();
    let mut targets = Vec::new();
    // Flows whose names did not resolve: (flow index) -> names
    let mut unresolved: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut probed = vec![false; plan.flows.len()];
    for (i, f) in plan.flows.iter().enumerate() {
        let not = |why: String| {
            Check::new(
                Kind::NotProbed,
                Verdict::Skip,
                "not-probed",
                format!("{}: {why}", f.flow),
            )
            .flow(f.flow.clone())
            .proto(proto_key(f.protocol), None)
            .informative()
        };
        if f.broadcast {
            let dhcp = f.protocol == 17 && f.ports.iter().any(|r| r.lo <= 67 && 67 <= r.hi);
            checks.push(not(match (dhcp, ctx.opts.dhcp.is_some()) {
                (true, true) => "broadcast: tried by the address stage's DHCP check".into(),
                (true, false) => {
                    "broadcast: not probed here (--dhcp tries a DHCP exchange in the address stage)"
                        .into()
                }
                _ => "broadcast/multicast: not probed here".into(),
            }));
            continue;
        }
        if !matches!(f.protocol, 1 | 6 | 17 | 58) {
            checks.push(not(format!(
                "{} has no probe without the peer's cooperation",
                proto_name(f.protocol)
            )));
            continue;
        }
        let (ports, cut): (Vec<Option<u16>>, bool) = if matches!(f.protocol, 6 | 17) {
            if f.ports.is_empty() {
                checks.push(not("no destination port given: not probed".into()));
                continue;
            }
            let (p, cut) = expand(&f.ports, ctx.opts.max_ports);
            (p.into_iter().map(Some).collect(), cut)
        } else {
            (vec![None], false)
        };
        if cut {
            checks.push(not(format!(
                "only the first {} ports of each range are tried",
                ctx.opts.max_ports
            )));
        }
        let mut peers: Vec<(String, IpAddr)> = Vec::new();
        for n in &f.names {
            match resolved.get(n) {
                Some(addrs) => peers.extend(addrs.iter().map(|a| (n.clone(), *a))),
                None => unresolved.entry(i).or_default().push(n.clone()),
            }
        }
        for p in &f.prefixes {
            if p.prefix_len() == p.max_prefix_len() {
                peers.push((p.addr().to_string(), p.addr()));
            } else {
                checks.push(not(format!(
                    "{p} is a network, not a host: give a host to probe"
                )));
            }
        }
        for w in &f.wildcards {
            checks.push(not(format!(
                "*.{w} is a wildcard: only its named hosts are probed"
            )));
        }
        if f.firewall {
            let is_dns = f.ports.iter().any(|r| r.lo <= 53 && 53 <= r.hi);
            let host = if is_dns {
                ctx.resolver.map(|r| r.ip())
            } else {
                None
            }
            .or(ctx.gateway);
            match host {
                Some(h) => peers.push(("the firewall".into(), h)),
                None => checks.push(not(
                    "the firewall's address is not known (no default route)".into(),
                )),
            }
        }
        peers.dedup();
        for (peer, address) in peers {
            probed[i] = true;
            for port in &ports {
                targets.push(Target {
                    flow: i,
                    peer: peer.clone(),
                    address,
                    port: *port,
                });
            }
        }
    }
    let sem = Arc::new(Semaphore::new(ctx.opts.concurrency.max(1)));
    let results = join_all(targets.iter().map(|tg| {
        let sem = sem.clone();
        async move {
            let _permit = sem.acquire().await;
            probe_target(t, ctx, &plan.flows[tg.flow], tg).await
        }
    }))
    .await;
    let mut seen = Vec::new();
    for (tg, (state, verdict, why)) in targets.iter().zip(results) {
        let detail = why.clone();
        let f = &plan.flows[tg.flow];
        let port = tg.port.map(|p| format!("/{p}")).unwrap_or_default();
        let to = if tg.peer == tg.address.to_string() {
            tg.peer.clone()
        } else {
            format!("{} ({})", tg.peer, tg.address)
        };
        checks.push(
            Check::new(
                Kind::Target,
                verdict,
                state.clone(),
                format!("{} {}{port} → {to}: {why}", f.flow, proto_key(f.protocol)),
            )
            .flow(f.flow.clone())
            .peer(tg.peer.clone())
            .address(tg.address)
            .proto(proto_key(f.protocol), tg.port)
            .informative(),
        );
        seen.push(Seen {
            flow: tg.flow,
            peer: tg.peer.clone(),
            address: tg.address,
            port: tg.port,
            state,
            verdict,
            why: detail,
        });
    }
    // Flow verdicts.
    let mut flow_verdict: Vec<Verdict> = vec![Verdict::Skip; plan.flows.len()];
    // None for a flow that did not fail at the targets (or was not probed: unresolved).
    let mut failing: Vec<Option<Failing>> = vec![None; plan.flows.len()];
    for (i, f) in plan.flows.iter().enumerate() {
        let mine: Vec<&Seen> = seen.iter().filter(|s| s.flow == i).collect();
        if let Some(names) = unresolved.get(&i) {
            flow_verdict[i] = Verdict::Fail;
            let mut c = Check::new(
                Kind::Flow,
                Verdict::Fail,
                "unresolved",
                format!(
                    "{}: {} did not resolve (see names)",
                    f.flow,
                    and_list(names)
                ),
            )
            .flow(f.flow.clone())
            .proto(proto_key(f.protocol), None);
            if f.alternative.is_some() {
                c = c.informative();
            } else if f.optional {
                c.verdict = Verdict::Warn;
            }
            checks.push(c);
            continue;
        }
        if !probed[i] || mine.is_empty() {
            continue;
        }
        // Per port: failed when every address fails.
        let mut ports: Vec<Option<u16>> = mine.iter().map(|s| s.port).collect();
        ports.sort();
        ports.dedup();
        let mut v = Verdict::Pass;
        for p in &ports {
            let at: Vec<&&Seen> = mine.iter().filter(|s| s.port == *p).collect();
            if at.iter().all(|s| s.verdict == Verdict::Fail) {
                v = Verdict::Fail;
            } else if at.iter().any(|s| s.verdict != Verdict::Pass) {
                v = v.max(Verdict::Warn);
            }
        }
        let bad: Vec<&Seen> = mine
            .iter()
            .copied()
            .filter(|s| s.verdict >= Verdict::Warn)
            .collect();
        let fl = Failing::of(&bad);
        flow_verdict[i] = v;
        let states: Vec<String> = {
            let mut s: Vec<String> = bad.iter().map(|s| s.state.clone()).collect();
            s.sort();
            s.dedup();
            s
        };
        let state = match v {
            Verdict::Pass => "open".to_string(),
            _ if bad.len() < mine.len() => "partial".to_string(),
            _ => states.join(","),
        };
        let detail = match v {
            Verdict::Pass => format!(
                "{}: works ({} probe{})",
                f.flow,
                mine.len(),
                if mine.len() > 1 { "s" } else { "" }
            ),
            _ => format!(
                "{}: {} of {} probes fail ({})",
                f.flow,
                bad.len(),
                mine.len(),
                states.join(", ")
            ),
        };
        let mut c = Check::new(Kind::Flow, v, state, detail)
            .flow(f.flow.clone())
            .proto(proto_key(f.protocol), None);
        if v >= Verdict::Warn {
            let mut parts = Vec::new();
            if let Some((ports, peers)) = &fl.blocked {
                let ports = if ports.is_empty() { &f.ports } else { ports };
                parts.push(ctx.remedy(f.protocol, ports, peers, &f.flow));
            }
            if let Some((ports, peers)) = &fl.closed {
                parts.push(no_listener(f.protocol, ports, peers, &ctx.product, &f.flow));
            }
            if let Some(d) = &fl.local {
                parts.push(not_sent(d, &ctx.product, &f.flow));
            }
            c = c.remedy(parts.join("; "));
        }
        failing[i] = Some(fl);
        if f.alternative.is_some() {
            c = c.informative();
        } else if f.optional && c.verdict == Verdict::Fail {
            c.verdict = Verdict::Warn;
        }
        checks.push(c);
    }
    // Alternative groups.
    for a in &plan.alternatives {
        let members: Vec<usize> = a
            .flows
            .iter()
            .filter_map(|id| plan.flows.iter().position(|f| &f.flow == id))
            .collect();
        let verdicts: Vec<Verdict> = members.iter().map(|i| flow_verdict[*i]).collect();
        if verdicts.iter().all(|v| *v == Verdict::Skip) {
            continue;
        }
        let passing: Vec<&str> = members
            .iter()
            .filter(|i| flow_verdict[**i] == Verdict::Pass)
            .map(|i| plan.flows[*i].flow.as_str())
            .collect();
        let failing_members: Vec<usize> = members
            .iter()
            .copied()
            .filter(|i| flow_verdict[*i] >= Verdict::Warn)
            .collect();
        let optional = members.iter().all(|i| plan.flows[*i].optional);
        let remedy = {
            // One "allow" per protocol over what the path blocks for the failing members, one
            // "check the service" per protocol over what answered that nothing listens.
            type ByProto = BTreeMap<u8, (Vec<PortRange>, Vec<String>)>;
            let mut allow: ByProto = BTreeMap::new();
            let mut closed: ByProto = BTreeMap::new();
            let mut local: Vec<String> = Vec::new();
            let add = |m: &mut ByProto, proto: u8, ports: Vec<PortRange>, peers: Vec<String>| {
                let e = m.entry(proto).or_default();
                e.0.extend(ports);
                for x in peers {
                    if !e.1.contains(&x) {
                        e.1.push(x);
                    }
                }
            };
            for i in &failing_members {
                let f = &plan.flows[*i];
                match &failing[*i] {
                    // Unresolved: nothing was tried, so nothing to allow yet; the names stage
                    // has the remedy.
                    None => {}
                    Some(fl) => {
                        if let Some((p, peers)) = &fl.blocked {
                            let p = if p.is_empty() { &f.ports } else { p };
                            add(&mut allow, f.protocol, p.clone(), peers.clone());
                        }
                        if let Some((p, peers)) = &fl.closed {
                            add(&mut closed, f.protocol, p.clone(), peers.clone());
                        }
                        if let Some(d) = &fl.local {
                            let m = not_sent(d, &ctx.product, &a.id);
                            if !local.contains(&m) {
                                local.push(m);
                            }
                        }
                    }
                }
            }
            let mut parts: Vec<String> = allow
                .into_iter()
                .map(|(proto, (ports, peers))| {
                    ctx.remedy(proto, &merge_ports(ports), &peers, &a.id)
                })
                .collect();
            parts.extend(closed.into_iter().map(|(proto, (ports, peers))| {
                no_listener(proto, &merge_ports(ports), &peers, &ctx.product, &a.id)
            }));
            parts.extend(local);
            parts
        };
        let c = if failing_members.is_empty() {
            Check::new(
                Kind::Alternative,
                Verdict::Pass,
                "all",
                format!("{}: every alternative works ({})", a.id, passing.join(", ")),
            )
        } else if !passing.is_empty() {
            let bad: Vec<&str> = failing_members
                .iter()
                .map(|i| plan.flows[*i].flow.as_str())
                .collect();
            Check::new(
                Kind::Alternative,
                Verdict::Warn,
                "partial",
                format!(
                    "{}: {} works, {} does not (one is enough; the vendor may prefer all)",
                    a.id,
                    passing.join(", "),
                    bad.join(", ")
                ),
            )
            .remedy_if(remedy.join("; "))
        } else {
            Check::new(
                Kind::Alternative,
                if optional {
                    Verdict::Warn
                } else {
                    Verdict::Fail
                },
                "none",
                format!("{}: no alternative works ({})", a.id, a.flows.join(", ")),
            )
            .remedy_if(remedy.join(" or "))
        };
        checks.push(c.flow(a.id.clone()));
    }
    // Flows the peer opens: one line each, so that a script finds them by flow id.
    for id in &plan.inbound {
        let both = plan.flows.iter().any(|f| &f.flow == id);
        let detail = if both {
            format!("{id}: the peer's direction (initiation either) is not probed from the device's side")
        } else {
            format!("{id}: opened by the peer, not probed from the device's side")
        };
        checks.push(
            Check::new(Kind::NotProbed, Verdict::Skip, "not-probed", detail)
                .flow(id.clone())
                .informative(),
        );
    }
    (StageReport::new(Stage::Reach, checks), seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_expand_with_a_cap() {
        let (p, cut) = expand(&[PortRange { lo: 3001, hi: 3003 }], 8);
        assert_eq!(p, vec![3001, 3002, 3003]);
        assert!(!cut);
        let (p, cut) = expand(&[PortRange { lo: 1, hi: 100 }], 4);
        assert_eq!(p.len(), 4);
        assert!(cut);
    }
}
