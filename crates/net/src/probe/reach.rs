//! The reach stage: every flow the device opens, target by target, and alternative groups
//! (`alt.rs`). Who answered is part of the verdict: an ICMP error from another address than the
//! target is a device on the path rejecting the flow, and a TCP reset's TTL is compared with
//! the target's own SYN-ACK on another port; each such verdict states its confidence.
//! Addresses a profile marks volatile are context for a flow that also names hosts.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use portolan_model::ir::{is_dns, IpProto, PortRange};
use tokio::sync::Semaphore;

use crate::plan::FlowPlan;
use crate::remedy::{
    allow_pairs, and_list, article, flow_row, no_listener_pairs, not_sent, proto_key, proto_name,
};
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
    /// A volatile address of the profile probed as context.
    volatile: bool,
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
    /// A volatile address probed as context: not part of the flow's verdict.
    pub(super) volatile: bool,
    /// The TTL of the target's answer (SYN-ACK or reset), when read.
    pub(super) ttl: Option<u8>,
    /// The ICMP error's source, when the attempt ended with one.
    pub(super) icmp_from: Option<IpAddr>,
}

/// One probe's result.
struct Probed {
    state: String,
    verdict: Verdict,
    why: String,
    ttl: Option<u8>,
    icmp_from: Option<IpAddr>,
}

impl Probed {
    fn new(state: &str, verdict: Verdict, why: impl Into<String>) -> Probed {
        Probed {
            state: state.to_string(),
            verdict,
            why: why.into(),
            ttl: None,
            icmp_from: None,
        }
    }
}

/// A (peer, port) pair.
pub(super) type Pair = (String, Option<u16>);

/// What a failing flow needs, by who can fix it.
#[derive(Clone, Debug, Default)]
pub(super) struct Failing {
    /// (peer, port) pairs the path drops or rejects (filtered, unreachable, rejected,
    /// open|filtered): the firewall should allow them.
    pub(super) blocked: Vec<Pair>,
    /// (peer, port) pairs that answered that nothing listens (refused, closed): the packet got
    /// through; the service or the binding is wrong, not the firewall.
    pub(super) closed: Vec<Pair>,
    /// The probing machine could not send at all: the OS's words.
    pub(super) local: Option<String>,
}

impl Failing {
    pub(super) fn of(bad: &[&Seen]) -> Failing {
        let pick = |f: fn(&str) -> bool| -> Vec<Pair> {
            let mut v: Vec<Pair> = bad
                .iter()
                .filter(|s| f(&s.state))
                .map(|s| (s.peer.clone(), s.port))
                .collect();
            v.sort();
            v.dedup();
            v
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

    /// The remedies, for the profile row `row` (a flow or a group).
    pub(super) fn remedies(&self, ctx: &Ctx<'_>, protocol: u8, row: &str) -> Vec<String> {
        let mut parts = Vec::new();
        if !self.blocked.is_empty() {
            parts.push(allow_pairs(
                protocol,
                &self.blocked,
                &ctx.from,
                &ctx.product,
                row,
            ));
        }
        if !self.closed.is_empty() {
            parts.push(no_listener_pairs(protocol, &self.closed, &ctx.product, row));
        }
        if let Some(d) = &self.local {
            parts.push(not_sent(d, &ctx.product, row));
        }
        parts
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

async fn probe_target<T: Transport>(t: &T, ctx: &Ctx<'_>, f: &FlowPlan, tg: &Target) -> Probed {
    let src = ctx.opts.source;
    let to = ctx.opts.timeout;
    match (f.protocol, tg.port) {
        (6, Some(port)) => {
            let o = t
                .tcp_connect(src, SocketAddr::new(tg.address, port), to)
                .await;
            let detail = o.detail.clone().unwrap_or_default();
            let (v, why) = match o.state {
                TcpState::Open => (Verdict::Pass, "connected".to_string()),
                TcpState::Refused if o.from.is_some() => (
                    Verdict::Fail,
                    format!("refused: the target itself answered ({detail}), nothing listens on that port (confidence: high)"),
                ),
                TcpState::Refused => (
                    Verdict::Fail,
                    "refused (a TCP reset): the peer answered, nothing listens on that port".into(),
                ),
                TcpState::Rejected => (
                    Verdict::Fail,
                    rejected_text(o.from, &detail),
                ),
                TcpState::Filtered => (
                    Verdict::Fail,
                    "filtered: no answer to the SYN, a firewall drops it".into(),
                ),
                TcpState::Unreachable => (
                    Verdict::Fail,
                    format!("unreachable: a router or firewall answers with an ICMP error ({detail})"),
                ),
                TcpState::LocalError => (Verdict::Fail, format!("not sent: {detail}")),
            };
            Probed {
                state: o.state.name().to_string(),
                verdict: v,
                why,
                ttl: o.ttl,
                icmp_from: o.from,
            }
        }
        (17, Some(port)) => {
            let app = UdpApp::for_flow(port, f.app.as_deref(), ctx.opts.token.is_some());
            let name = app.name();
            let a = article(name);
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
                UdpReply::Answer(_) => {
                    Probed::new("open", Verdict::Pass, format!("answered {a} {name}"))
                }
                UdpReply::Closed(from) => {
                    let confidence = match from {
                        Some(_) => "confidence: high: the error came from the target itself",
                        None => "confidence: low: the error's source could not be read (no raw socket), a firewall may reject in the target's name",
                    };
                    let mut p = Probed::new(
                        "closed",
                        Verdict::Fail,
                        format!("ICMP port unreachable to {a} {name}: the peer answered, nothing listens on that port ({confidence})"),
                    );
                    p.icmp_from = from;
                    p
                }
                UdpReply::Unreachable(d) => {
                    Probed::new("unreachable", Verdict::Fail, format!("unreachable: {d}"))
                }
                UdpReply::Rejected { from, detail } => {
                    let mut p = Probed::new(
                        "rejected",
                        Verdict::Fail,
                        rejected_text(Some(from), &detail),
                    );
                    p.icmp_from = Some(from);
                    p
                }
                UdpReply::Silent => Probed::new(
                    "open|filtered",
                    Verdict::Warn,
                    format!(
                        "no answer to {a} {name}: a firewall drops it, or nothing answers there"
                    ),
                ),
                UdpReply::LocalError(d) => {
                    Probed::new("local-error", Verdict::Fail, format!("not sent: {d}"))
                }
            }
        }
        (1 | 58, _) => match t.icmp_echo(src, tg.address, to).await {
            EchoReply::Reply => Probed::new("open", Verdict::Pass, "echo reply"),
            EchoReply::Unreachable(d) => Probed::new("unreachable", Verdict::Fail, d),
            EchoReply::Silent => Probed::new("filtered", Verdict::Fail, "no echo reply"),
            EchoReply::LocalError(d) => Probed::new("local-error", Verdict::Fail, d),
        },
        _ => Probed::new("not-probed", Verdict::Skip, "no probe for this protocol"),
    }
}

/// A device on the path rejected the flow: the ICMP error did not come from the target.
fn rejected_text(from: Option<IpAddr>, detail: &str) -> String {
    let who = from.map_or_else(|| "a device".to_string(), |a| a.to_string());
    format!(
        "rejected: a device on the path ({who}) rejected the flow ({detail}, not from the target): a firewall blocks it (confidence: high)"
    )
}

/// A TCP reset with its TTL, against the target's SYN-ACK on another port (`reference`: port
/// and TTL): the same TTL says the target reset it, another one says a device on the path did.
fn judge_reset(s: &mut Seen, reference: Option<(u16, u8)>) {
    let (Some(ttl), Some((port, syn_ack))) = (s.ttl, reference) else {
        s.why = "refused (a TCP reset): the peer answered, nothing listens on that port — or a firewall resets in its name (confidence: low: no handshake with the target to compare the reset's TTL with)".into();
        return;
    };
    if ttl == syn_ack {
        s.why = format!(
            "refused (a TCP reset with TTL {ttl}, as the target's SYN-ACK on port {port}): the target answered, nothing listens on that port (confidence: medium)"
        );
    } else {
        s.state = "rejected".into();
        s.why = format!(
            "rejected: a TCP reset with TTL {ttl}, but the target's SYN-ACK on port {port} came with TTL {syn_ack}: a device on the path likely sent it, so a firewall rejects the flow (confidence: medium)"
        );
    }
}

/// The reach stage, step by step: which targets each flow has ([`plan_targets`]), probing them
/// all at once within the concurrency limit ([`probe_all`]), judging TCP resets by their TTL
/// ([`judge_resets`]), one line per target ([`target_checks`]), one verdict per flow
/// ([`flow_checks`]), alternative groups (`alt.rs`), and the flows the peer opens
/// ([`inbound_checks`]).
pub(super) async fn reach_stage<T: Transport>(
    t: &T,
    ctx: &Ctx<'_>,
    resolved: &BTreeMap<String, Vec<IpAddr>>,
) -> (StageReport, Vec<Seen>) {
    let planned = plan_targets(ctx, resolved);
    let mut checks = planned.not_probed;
    let mut seen = probe_all(t, ctx, &planned.targets).await;
    judge_resets(ctx, &mut seen);
    checks.extend(target_checks(ctx, &seen));
    let (flow, flow_verdict) = flow_checks(ctx, &seen, &planned.unresolved, &planned.probed);
    checks.extend(flow);
    checks.extend(super::alt::groups(
        ctx,
        &seen,
        &flow_verdict,
        &planned.unresolved,
    ));
    checks.extend(inbound_checks(ctx));
    (StageReport::new(Stage::Reach, checks), seen)
}

/// What the flows of the plan give to probe, and what they leave out.
struct Planned {
    targets: Vec<Target>,
    /// Why a flow, or part of it, is not probed (informative checks).
    not_probed: Vec<Check>,
    /// Flows whose names did not resolve: (flow index) -> names.
    unresolved: BTreeMap<usize, Vec<String>>,
    /// Per flow: whether it has at least one target.
    probed: Vec<bool>,
}

/// Every flow's targets: its ports (ranges cut at `--max-ports`) times its peers (resolved
/// names, host addresses, the firewall), with a `not-probed` line for everything left out.
fn plan_targets(ctx: &Ctx<'_>, resolved: &BTreeMap<String, Vec<IpAddr>>) -> Planned {
    let plan = ctx.plan;
    let mut out = Planned {
        targets: Vec::new(),
        not_probed: Vec::new(),
        unresolved: BTreeMap::new(),
        probed: vec![false; plan.flows.len()],
    };
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
        let Some(ports) = flow_ports(ctx, f, &mut out.not_probed, &not) else {
            continue;
        };
        let peers = flow_peers(ctx, i, f, resolved, &mut out, &not);
        for (peer, address, volatile) in peers {
            out.probed[i] = true;
            for port in &ports {
                out.targets.push(Target {
                    flow: i,
                    peer: peer.clone(),
                    address,
                    port: *port,
                    volatile,
                });
            }
        }
    }
    out
}

/// The destination ports to try for flow `f` (`None` in the list: a portless protocol), or
/// `None` when the flow is not probed at all (broadcast, a protocol without a probe, no port).
fn flow_ports(
    ctx: &Ctx<'_>,
    f: &FlowPlan,
    checks: &mut Vec<Check>,
    not: &impl Fn(String) -> Check,
) -> Option<Vec<Option<u16>>> {
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
        return None;
    }
    if !matches!(f.protocol, 1 | 6 | 17 | 58) {
        checks.push(not(format!(
            "{} has no probe without the peer's cooperation",
            proto_name(f.protocol)
        )));
        return None;
    }
    let (ports, cut): (Vec<Option<u16>>, bool) = if matches!(f.protocol, 6 | 17) {
        if f.ports.is_empty() {
            checks.push(not("no destination port given: not probed".into()));
            return None;
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
    Some(ports)
}

/// The peers of flow `i`: (peer as the profile names it, address, probed as volatile context).
/// Names that did not resolve go to `out.unresolved`; networks, wildcards and an unknown
/// firewall address get a `not-probed` line.
fn flow_peers(
    ctx: &Ctx<'_>,
    i: usize,
    f: &FlowPlan,
    resolved: &BTreeMap<String, Vec<IpAddr>>,
    out: &mut Planned,
    not: &impl Fn(String) -> Check,
) -> Vec<(String, IpAddr, bool)> {
    let mut peers: Vec<(String, IpAddr)> = Vec::new();
    for n in &f.names {
        match resolved.get(n) {
            Some(addrs) => peers.extend(addrs.iter().map(|a| (n.clone(), *a))),
            None => out.unresolved.entry(i).or_default().push(n.clone()),
        }
    }
    // Volatile addresses are context when the flow names hosts or other addresses too.
    let others =
        !f.names.is_empty() || f.firewall || f.prefixes.iter().any(|p| !f.volatile.contains(p));
    let context = others && !ctx.opts.strict_volatile;
    let mut volatile: Vec<IpAddr> = Vec::new();
    for p in &f.prefixes {
        if p.prefix_len() == p.max_prefix_len() {
            if context && f.volatile.contains(p) {
                volatile.push(p.addr());
            }
            peers.push((p.addr().to_string(), p.addr()));
        } else {
            out.not_probed.push(not(format!(
                "{p} is a network, not a host: give a host to probe"
            )));
        }
    }
    for w in &f.wildcards {
        out.not_probed.push(not(format!(
            "*.{w} is a wildcard: only its named hosts are probed"
        )));
    }
    if f.firewall {
        let is_dns = is_dns(IpProto::new(f.protocol), &f.ports);
        let host = if is_dns {
            ctx.resolver.map(|r| r.ip())
        } else {
            None
        }
        .or(ctx.gateway);
        match host {
            Some(h) => peers.push(("the firewall".into(), h)),
            None => out.not_probed.push(not(
                "the firewall's address is not known (no default route)".into(),
            )),
        }
    }
    peers.dedup();
    peers
        .into_iter()
        .map(|(peer, address)| {
            let v = volatile.contains(&address) && peer == address.to_string();
            (peer, address, v)
        })
        .collect()
}

/// Every target probed, at most `--concurrency` at once; what was seen, in target order.
async fn probe_all<T: Transport>(t: &T, ctx: &Ctx<'_>, targets: &[Target]) -> Vec<Seen> {
    let plan = ctx.plan;
    let sem = Arc::new(Semaphore::new(ctx.opts.concurrency.max(1)));
    let results = join_all(targets.iter().map(|tg| {
        let sem = sem.clone();
        async move {
            let _permit = sem.acquire().await;
            probe_target(t, ctx, &plan.flows[tg.flow], tg).await
        }
    }))
    .await;
    targets
        .iter()
        .zip(results)
        .map(|(tg, p)| Seen {
            flow: tg.flow,
            peer: tg.peer.clone(),
            address: tg.address,
            port: tg.port,
            state: p.state,
            verdict: p.verdict,
            why: p.why,
            volatile: tg.volatile,
            ttl: p.ttl,
            icmp_from: p.icmp_from,
        })
        .collect()
}

/// TCP resets: the reset's TTL against the target's SYN-ACK on another port.
fn judge_resets(ctx: &Ctx<'_>, seen: &mut [Seen]) {
    let plan = ctx.plan;
    let syn_acks: Vec<(IpAddr, u16, u8)> = seen
        .iter()
        .filter(|s| plan.flows[s.flow].protocol == 6 && s.state == "open")
        .filter_map(|s| Some((s.address, s.port?, s.ttl?)))
        .collect();
    for s in seen.iter_mut() {
        if plan.flows[s.flow].protocol == 6 && s.state == "refused" && s.icmp_from.is_none() {
            let reference = syn_acks
                .iter()
                .find(|(a, p, _)| *a == s.address && Some(*p) != s.port)
                .map(|(_, p, ttl)| (*p, *ttl));
            judge_reset(s, reference);
        }
    }
}

/// One informative line per target; a volatile address fails as a warning at most.
fn target_checks(ctx: &Ctx<'_>, seen: &[Seen]) -> Vec<Check> {
    let mut checks = Vec::new();
    for s in seen {
        let f = &ctx.plan.flows[s.flow];
        let port = s.port.map(|p| format!("/{p}")).unwrap_or_default();
        let to = if s.peer == s.address.to_string() {
            s.peer.clone()
        } else {
            format!("{} ({})", s.peer, s.address)
        };
        let context = if s.volatile {
            " [volatile address of the profile: context, not required; --strict-volatile requires it]"
        } else {
            ""
        };
        let mut c = Check::new(
            Kind::Target,
            s.verdict,
            s.state.clone(),
            format!(
                "{} {}{port} → {to}: {}{context}",
                f.flow,
                proto_key(f.protocol),
                s.why
            ),
        )
        .flow(f.flow.clone())
        .peer(s.peer.clone())
        .address(s.address)
        .proto(proto_key(f.protocol), s.port)
        .informative();
        if s.volatile {
            // Context: a failure is a warning at most, and no remedy.
            c.volatile = true;
            c.verdict = c.verdict.min(Verdict::Warn);
        }
        checks.push(c);
    }
    checks
}

/// One line per flow with its verdict (a flow fails on a port when every address fails
/// there), and the verdicts by flow index for the alternative groups.
fn flow_checks(
    ctx: &Ctx<'_>,
    seen: &[Seen],
    unresolved: &BTreeMap<usize, Vec<String>>,
    probed: &[bool],
) -> (Vec<Check>, Vec<Verdict>) {
    let plan = ctx.plan;
    let mut checks = Vec::new();
    let mut flow_verdict: Vec<Verdict> = vec![Verdict::Skip; plan.flows.len()];
    for (i, f) in plan.flows.iter().enumerate() {
        let mine: Vec<&Seen> = seen.iter().filter(|s| s.flow == i && !s.volatile).collect();
        if let Some(names) = unresolved.get(&i) {
            flow_verdict[i] = Verdict::Fail;
            checks.push(unresolved_check(f, names));
            continue;
        }
        if !probed[i] || mine.is_empty() {
            continue;
        }
        let (c, v) = flow_check(ctx, f, &mine);
        flow_verdict[i] = v;
        checks.push(c);
    }
    (checks, flow_verdict)
}

/// A flow whose names did not resolve: failed (a warning when optional, informative inside an
/// alternative group).
fn unresolved_check(f: &FlowPlan, names: &[String]) -> Check {
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
    c
}

/// The line of one probed flow from its targets (`mine`, volatile context left out), with
/// the remedy when it does not work; and the flow's own verdict, before optional flows are
/// softened, for the alternative groups.
fn flow_check(ctx: &Ctx<'_>, f: &FlowPlan, mine: &[&Seen]) -> (Check, Verdict) {
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
        c = c.remedy(fl.remedies(ctx, f.protocol, &flow_row(&f.flow)).join("; "));
    }
    if f.alternative.is_some() {
        c = c.informative();
    } else if f.optional && c.verdict == Verdict::Fail {
        c.verdict = Verdict::Warn;
    }
    (c, v)
}

/// Flows the peer opens: one line each, so that a script finds them by flow id.
fn inbound_checks(ctx: &Ctx<'_>) -> Vec<Check> {
    let plan = ctx.plan;
    plan.inbound
        .iter()
        .map(|id| {
            let both = plan.flows.iter().any(|f| &f.flow == id);
            let detail = if both {
                format!("{id}: the peer's direction (initiation either) is not probed from the device's side")
            } else {
                format!("{id}: opened by the peer, not probed from the device's side")
            };
            Check::new(Kind::NotProbed, Verdict::Skip, "not-probed", detail)
                .flow(id.clone())
                .informative()
        })
        .collect()
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
