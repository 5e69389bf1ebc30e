//! The integrity stage: TLS handshakes (and DTLS ones up to the server's certificate, for
//! UDP flows whose application is DTLS or CoAPs) and the issuer against the profile's
//! expectation. An
//! issuer found intercepting one flow is flagged on every other flow to the same service (the
//! same host or address), even where the profile states no expected issuer: the same inspecting
//! proxy sits in front of all of them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::plan::FlowPlan;
use crate::remedy::{proto_key, proto_name};
use crate::report::{Check, Kind, Stage, StageReport, Verdict};
use crate::runtime::{join_all, TlsAsk, Transport};
use crate::tls;
use crate::udp_apps::UdpApp;

use super::reach::Seen;
use super::Ctx;

/// A UDP flow probed with a DTLS ClientHello.
fn dtls(f: &FlowPlan, port: Option<u16>) -> bool {
    f.protocol == 17
        && port.is_some_and(|p| UdpApp::for_flow(p, f.app.as_deref(), false) == UdpApp::Dtls)
}

/// What the handshake offers for flow `f` reached as `s`: the name the device sends (the
/// peer's name; for a peer reached by address, the profile's `tls.sni`, else no SNI), the
/// profile's ALPN names, and TLS 1.3 alone where its `min_version` is 1.3.
fn ask(f: &FlowPlan, s: &Seen) -> TlsAsk {
    let tls = f.tls.as_ref();
    let by_address = s.peer.parse::<IpAddr>().is_ok() || s.peer == "the firewall";
    let sni = if by_address {
        tls.and_then(|x| x.sni.clone())
    } else {
        Some(s.peer.clone())
    };
    TlsAsk {
        sni,
        alpn: tls.map(|x| x.alpn.clone()).unwrap_or_default(),
        tls13_only: tls.and_then(|x| x.min_version.as_deref()) == Some("1.3"),
    }
}

pub(super) async fn integrity_stage<T: Transport>(
    t: &T,
    ctx: &Ctx<'_>,
    seen: &[Seen],
) -> StageReport {
    let plan = ctx.plan;
    let todo: Vec<&Seen> = seen
        .iter()
        .filter(|s| {
            let f = &plan.flows[s.flow];
            f.tls.is_some() && s.state == "open" && (f.protocol == 6 || dtls(f, s.port))
        })
        .collect();
    if todo.is_empty() {
        return StageReport::skipped(Stage::Integrity, "no TLS flow is open to check");
    }
    let sem = Arc::new(Semaphore::new(ctx.opts.concurrency.max(1)));
    let outcomes = join_all(todo.iter().map(|s| {
        let sem = sem.clone();
        async move {
            let _permit = sem.acquire().await;
            let f = &plan.flows[s.flow];
            let ask = ask(f, s);
            let port = s.port.unwrap_or(443);
            let dst = SocketAddr::new(s.address, port);
            if f.protocol == 17 {
                t.dtls_handshake(ctx.opts.source, dst, ctx.opts.timeout)
                    .await
            } else {
                t.tls_handshake(ctx.opts.source, dst, ask, ctx.opts.timeout)
                    .await
            }
        }
    }))
    .await;
    let mut checks = Vec::new();
    // (check index, issuer shown, exempt remedy) of the checks with no expectation to compare.
    let mut unjudged: Vec<(usize, String, String)> = Vec::new();
    // (peer, address, issuer shown) of interceptions.
    let mut intercepting: Vec<(String, IpAddr, String)> = Vec::new();
    for (s, o) in todo.iter().zip(outcomes) {
        let f = &plan.flows[s.flow];
        let port = s.port.unwrap_or(443);
        let base = |v, state: &str, detail: String| {
            Check::new(Kind::Tls, v, state, detail)
                .flow(f.flow.clone())
                .peer(s.peer.clone())
                .address(s.address)
                .proto(proto_key(f.protocol), Some(port))
        };
        let exempt = format!(
            "exempt {} {port} from {} to {} from TLS inspection (untampered traffic) — {}, flow `{}`",
            proto_name(f.protocol), ctx.from, s.peer, ctx.product, f.flow
        );
        if f.protocol == 6 {
            let sent = ask(f, s).sni;
            let facts = f
                .tls
                .as_ref()
                .map(|x| tls::facts(&f.flow, x, sent.as_deref(), &o))
                .unwrap_or_default();
            for c in facts {
                checks.push(base(c.0, c.1, c.2));
            }
        }
        let Some(leaf) = o.chain.first() else {
            checks.push(
                base(
                    Verdict::Warn,
                    "tls-failed",
                    format!(
                        "{} → {}:{port}: no certificate ({})",
                        f.flow,
                        s.peer,
                        o.error.unwrap_or_default()
                    ),
                )
                .remedy(exempt),
            );
            continue;
        };
        let issuer = match tls::issuer(leaf) {
            Ok(i) => i,
            Err(e) => {
                checks.push(base(
                    Verdict::Warn,
                    "tls-failed",
                    format!(
                        "{} → {}:{port}: unreadable certificate ({e})",
                        f.flow, s.peer
                    ),
                ));
                continue;
            }
        };
        let shown = tls::show_name(&issuer);
        match f.tls.as_ref().and_then(|x| x.expected_issuer.as_deref()) {
            Some(expected) if tls::same_name(&issuer, &tls::parse_name(expected)) => {
                checks.push(base(
                    Verdict::Pass,
                    "untampered",
                    format!(
                        "{} → {}:{port}: issuer {shown}, as expected",
                        f.flow, s.peer
                    ),
                ));
            }
            Some(expected) => {
                intercepting.push((s.peer.clone(), s.address, shown.clone()));
                checks.push(
                    base(
                        Verdict::Fail,
                        "intercepted",
                        format!(
                            "{} → {}:{port}: TLS interception — the certificate is issued by `{shown}`, not `{expected}`: a TLS-inspecting firewall or proxy sits in the path",
                            f.flow, s.peer
                        ),
                    )
                    .remedy(exempt),
                );
            }
            None => {
                unjudged.push((checks.len(), shown.clone(), exempt.clone()));
                checks.push(
                    base(
                        Verdict::Pass,
                        "issuer",
                        format!(
                            "{} → {}:{port}: issuer {shown} (the profile states no expected issuer to compare)",
                            f.flow, s.peer
                        ),
                    )
                    .informative(),
                );
            }
        }
    }
    for (i, shown, exempt) in unjudged {
        let Some(c) = checks.get_mut(i) else {
            continue;
        };
        let same_service = intercepting.iter().find(|(peer, addr, issuer)| {
            *issuer == shown
                && (c.peer.as_deref() == Some(peer.as_str()) || c.address == Some(*addr))
        });
        if let Some((peer, _, _)) = same_service {
            c.verdict = Verdict::Fail;
            c.decisive = true;
            c.state = "intercepted".into();
            c.detail = format!(
                "{}: TLS interception — issuer `{shown}` is the one that intercepts another flow to {peer}, where the profile expects another issuer",
                c.detail.split(": issuer").next().unwrap_or_default()
            );
            c.remedy = Some(exempt);
        }
    }
    StageReport::new(Stage::Integrity, checks)
}
