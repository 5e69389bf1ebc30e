//! The on-site probe: from the device's network, everything the device will do, stage by
//! stage — address (source, default route, name servers and, with `--dhcp`, a real DHCP
//! discover/offer exchange), names (through the site's resolver, else the device's; compared
//! and re-asked for TTL inflation), reach (every flow, bounded concurrency, per-attempt
//! timeouts, who rejected, volatile addresses as context, alternative groups per host in
//! `alt.rs`), integrity (TLS issuer against the profile's expectation) and keepalive (idle
//! timeouts of the path against the flows' keepalives, measured with `portolan responder`) and,
//! when the profile states requirements that are not flows (edition 2), requirements (the DHCP
//! options it needs against the offer, names that must resolve, hard-coded resolvers that must
//! answer; `requirements.rs`). Every failing check carries its remedy in the profile's terms ([`crate::remedy`]).

mod address;
mod alt;
mod dhcp_check;
mod integrity;
mod keepalive_stage;
mod names_stage;
mod reach;
mod requirements;

pub use requirements::option_name;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::dns::{self};
use crate::keepalive;
use crate::plan::Plan;
use crate::report::{Report, Stage, StageReport, Verdict};
use crate::runtime::Transport;

/// How to probe.
#[derive(Clone, Debug)]
pub struct Options {
    /// Send from this address (it must be local).
    pub source: Option<IpAddr>,
    /// The device's resolver; else the site's (`services: {dns: [ADDR]}`), else the first
    /// name server of `resolv_conf`.
    pub resolver: Option<SocketAddr>,
    /// The resolv.conf to read (default `/etc/resolv.conf`).
    pub resolv_conf: Option<PathBuf>,
    /// A second resolver whose answers (and TTLs, taken as the reference) are compared.
    pub compare_resolver: Option<SocketAddr>,
    /// Per attempt.
    pub timeout: Duration,
    /// UDP and DNS attempts.
    pub attempts: u32,
    /// Probes in flight at once.
    pub concurrency: usize,
    /// Queries per name for the TTL check (1: no re-query).
    pub ttl_queries: u32,
    /// Time between those queries.
    pub ttl_gap: Duration,
    /// The responder's shared token (UDP echo on flows without an application request).
    pub token: Option<String>,
    /// At most this many ports of one port range are tried.
    pub max_ports: usize,
    /// The keepalive stage, when asked for.
    pub keepalive: Option<keepalive::Options>,
    /// A DHCP discover/offer exchange in the address stage, when asked for.
    pub dhcp: Option<DhcpOptions>,
    /// Probe the addresses a profile marks `addresses_volatile` as required, not as context.
    pub strict_volatile: bool,
}

/// How to run the DHCP exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhcpOptions {
    /// The interface on the device's network; default: the IPv4 default route's, else the
    /// only interface that is up.
    pub interface: Option<String>,
    /// Per discover. Servers may ping an address before offering it (dnsmasq waits up to 3 s),
    /// and RFC 2131 §4.1 has clients wait 4 s before the first retransmission.
    pub timeout: Duration,
    pub attempts: u32,
}

impl Default for DhcpOptions {
    fn default() -> DhcpOptions {
        DhcpOptions {
            interface: None,
            timeout: Duration::from_secs(4),
            attempts: 2,
        }
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            source: None,
            resolver: None,
            resolv_conf: None,
            compare_resolver: None,
            timeout: Duration::from_secs(2),
            attempts: 2,
            concurrency: 16,
            ttl_queries: 2,
            ttl_gap: Duration::from_secs(1),
            token: None,
            max_ports: 8,
            keepalive: None,
            dhcp: None,
            strict_volatile: false,
        }
    }
}

struct Ctx<'a> {
    plan: &'a Plan,
    opts: &'a Options,
    /// Device address text for remedies.
    from: String,
    product: String,
    resolver: Option<SocketAddr>,
    /// Where `resolver` comes from, for the address stage.
    resolver_how: &'static str,
    /// This machine's own resolver (resolv.conf), when the site's is used instead.
    machine_resolver: Option<SocketAddr>,
    gateway: Option<IpAddr>,
}

/// Runs every stage and returns the report.
pub async fn run<T: Transport>(t: &T, plan: &Plan, opts: &Options) -> Report {
    let machine = dns::system_servers(opts.resolv_conf.as_deref())
        .ok()
        .and_then(|v| v.into_iter().next());
    let site = plan
        .site_resolvers()
        .0
        .first()
        .map(|a| SocketAddr::new(*a, 53));
    let (resolver, resolver_how) = match (opts.resolver, site) {
        (Some(r), _) => (Some(r), "given with --resolver"),
        (None, Some(s)) => (Some(s), "the site's, from services.dns"),
        (None, None) => (machine, "from resolv.conf"),
    };
    let machine_resolver = if opts.resolver.is_none() && site.is_some() {
        machine
    } else {
        None
    };
    let routes = t.default_routes();
    let gateway = routes.iter().find_map(|r| r.gateway);
    // The source: as given, or what the kernel picks towards the resolver or the gateway.
    let towards = resolver.map(|r| r.ip()).or(gateway);
    let source = match (opts.source, towards) {
        (Some(s), _) => Some(s),
        (None, Some(d)) => t.source_towards(None, d).ok(),
        (None, None) => None,
    };
    let ctx = Ctx {
        plan,
        opts,
        from: plan.device_text(source),
        product: plan.product().to_string(),
        resolver,
        resolver_how,
        machine_resolver,
        gateway,
    };
    // A `--source` this machine does not hold: every probe would fail to bind.
    let foreign = opts
        .source
        .filter(|s| t.source_towards(Some(*s), *s).is_err());
    let (address, offered) = address::address_stage(t, &ctx, &routes, source, towards).await;
    let mut stages = vec![address];
    let (names, resolved) = names_stage::names_stage(t, &ctx).await;
    stages.push(names);
    // Nothing to send from: every flow would fail locally, and an "allow" remedy would blame a
    // firewall for what the address stage shows.
    let unsendable = match foreign {
        Some(s) => Some(format!(
            "{s} is not an address of this machine: nothing can be sent from it (see address)"
        )),
        None if source.is_none() && routes.is_empty() => {
            Some("no address and no default route to send from (see address)".to_string())
        }
        None => None,
    };
    if let Some(why) = unsendable {
        stages.push(StageReport::skipped(Stage::Reach, why.clone()));
        stages.push(StageReport::skipped(Stage::Integrity, why));
    } else {
        let (reach, outcomes) = reach::reach_stage(t, &ctx, &resolved).await;
        stages.push(reach);
        stages.push(integrity::integrity_stage(t, &ctx, &outcomes).await);
    }
    stages.push(match &opts.keepalive {
        Some(k) => keepalive_stage::keepalive_stage(&ctx, k).await,
        None => StageReport::skipped(
            Stage::Keepalive,
            "not measured; run `portolan responder` on the far side and add --nat-timeout",
        ),
    });
    if let Some(s) = requirements::requirements_stage(t, &ctx, &offered).await {
        stages.push(s);
    }
    let mut report = Report {
        site: plan.site.clone(),
        device: plan.group.id.clone(),
        profile: plan.profile.id.clone(),
        product: plan.profile.product.clone(),
        mode: plan.group.mode.clone(),
        source,
        resolver,
        verdict: Verdict::Skip,
        stages,
        remedies: Vec::new(),
    };
    report.finish();
    report
}
