//! `portolan scan SITE --device NAME` (or `--target ADDR --profile ID`): what the device
//! really exposes, judged against its profile's `listens`. The scan runs in
//! `portolan_scan`; this module picks the target and the ports, runs it (inside `--netns`, or
//! through the site's firewall in the lab's namespaces with `--from`), and prints the ports
//! that matter and the findings.

use std::io::IsTerminal as _;
use std::net::IpAddr;

use anyhow::{bail, Context};
use portolan_model::ir::Policy;
use portolan_model::Profile;
use portolan_scan::compare::{self, Declared, Finding, Severity, Statement};
use portolan_scan::{Options, PortResult, PortState, Scan, Transport};
use serde::Serialize;

use crate::cli::{CatalogArgs, ScanArgs};
use crate::output::Outcome;
use crate::report;

/// What is being scanned, and what it is judged against.
struct Subject {
    device: Option<String>,
    profile: Profile,
    target: IpAddr,
    declared: Declared,
    /// The site's policy, when there is one (for --from).
    policy: Option<Policy>,
}

pub fn run(g: &CatalogArgs, a: &ScanArgs) -> anyhow::Result<Outcome> {
    let json = a.out.json();
    let Some(subject) = load(g, a, json)? else {
        return Ok(Outcome::BadInput);
    };
    let tcp = parse_ports(&a.tcp).context("--tcp")?;
    let mut udp: Vec<u16> = if a.no_udp {
        Vec::new()
    } else {
        portolan_scan::udp::COMMON.to_vec()
    };
    if !a.no_udp {
        udp.extend(declared_udp(&subject.declared));
    }
    if let Some(extra) = &a.udp {
        udp.extend(parse_ports(extra).context("--udp")?);
    }
    udp.sort_unstable();
    udp.dedup();
    let opts = Options {
        target: subject.target,
        tcp,
        udp,
        rate: a.rate,
        interface: a.interface.clone(),
        source: None,
        icmp: !a.no_icmp,
        connect: a.connect,
    };
    let bar = progress_bar(json);
    let tick = {
        let bar = bar.clone();
        move |done: usize, total: usize| {
            if let Some(b) = &bar {
                b.set_length(total as u64);
                b.set_position(done as u64);
            }
        }
    };
    let (scan, zone) = match (&a.netns, &a.from) {
        (Some(ns), _) => {
            let o = opts.clone();
            let scan = portolan_net::netns::run_in(ns, move || {
                portolan_scan::run(&o, &|d, t| tick(d, t))
            })??;
            (scan, None)
        }
        (None, Some(zone)) => {
            let policy = subject.policy.as_ref().context("--from needs a site")?;
            let scan = super::scan_lab::run(policy, zone, subject.device.as_deref(), &opts, &tick)?;
            (scan, Some(zone.clone()))
        }
        (None, None) => (portolan_scan::run(&opts, &tick)?, None),
    };
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    // Through the lab's firewall the device's stand-in runs no service: every port it
    // answers is closed, so only reachability is judged, never a declared port's state.
    let mut findings = compare::findings(&subject.declared, &scan.ports);
    if zone.is_some() {
        findings.retain(|f| f.code != compare::FindingCode::DeclaredNotOpen);
    }
    if let (Some(zone), Some(policy), Some(device)) = (&zone, &subject.policy, &subject.device) {
        findings.extend(compare::zone_findings(
            &policy.rules,
            device,
            zone,
            scan.source,
            &scan.ports,
        ));
    }
    let statements = compare::statements(&subject.declared, &scan.ports);
    let view = View::new(&subject, &scan, zone, findings, statements);
    report::print(&a.out, "scan", &view, || render(&view))?;
    Ok(
        if view.findings.iter().any(|f| f.severity == Severity::Error) {
            Outcome::Findings
        } else {
            Outcome::Ok
        },
    )
}

fn progress_bar(json: bool) -> Option<indicatif::ProgressBar> {
    if json || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("scan {bar:40} {pos}/{len} TCP ports decided")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}

/// `22,80,8000-8100` or `none`.
pub fn parse_ports(text: &str) -> anyhow::Result<Vec<u16>> {
    let t = text.trim();
    if t == "none" {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for item in t.split(',') {
        let item = item.trim();
        let port = |s: &str| -> anyhow::Result<u16> {
            match s.trim().parse::<u16>() {
                Ok(p) if p > 0 => Ok(p),
                _ => bail!("`{s}` is not a port (1-65535) in `{text}`"),
            }
        };
        match item.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (port(lo)?, port(hi)?);
                if lo > hi {
                    bail!("`{item}`: the range runs backwards in `{text}`");
                }
                out.extend(lo..=hi);
            }
            None => out.push(port(item)?),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The UDP ports the profile declares (ranges of at most 256 ports; wider ones are left to
/// `--udp`).
fn declared_udp(d: &Declared) -> Vec<u16> {
    let Declared::Entries(es) = d else {
        return Vec::new();
    };
    es.iter()
        .filter(|e| e.transport == Some(Transport::Udp))
        .flat_map(|e| match &e.coverage {
            compare::Coverage::Ports(r) => r
                .iter()
                .filter(|(a, b)| b - a < 256)
                .flat_map(|(a, b)| *a..=*b)
                .collect::<Vec<u16>>(),
            _ => Vec::new(),
        })
        .collect()
}

fn load(g: &CatalogArgs, a: &ScanArgs, json: bool) -> anyhow::Result<Option<Subject>> {
    match (&a.site, &a.profile) {
        (Some(site), None) => {
            let Some(policy) = super::load_site(g, site, json)? else {
                return Ok(None);
            };
            let device = match &a.device {
                Some(d) => d.clone(),
                None if policy.groups.len() == 1 => policy.groups[0].id.clone(),
                None => {
                    let ids: Vec<&str> = policy.groups.iter().map(|g| g.id.as_str()).collect();
                    bail!("give --device (devices of the site: {})", ids.join(", "))
                }
            };
            let Some(group) = policy.groups.iter().find(|g| g.id == device) else {
                let ids: Vec<&str> = policy.groups.iter().map(|g| g.id.as_str()).collect();
                bail!(
                    "--device {device}: no such device in {} (devices: {})",
                    site.display(),
                    ids.join(", ")
                )
            };
            let target = match a.target {
                Some(t) if group.addresses.iter().any(|n| n.contains(&t)) => t,
                Some(t) => bail!(
                    "--target {t} is not an address of device `{device}` ({})",
                    group
                        .addresses
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => match group.addresses.first() {
                    Some(n) if n.prefix_len() == n.max_prefix_len() => n.addr(),
                    Some(n) => bail!(
                        "device `{device}` is the prefix {n}: give --target with one of its addresses"
                    ),
                    None => bail!("device `{device}` has no address"),
                },
            };
            let profile = policy
                .profiles
                .get(&group.profile)
                .cloned()
                .with_context(|| format!("the profile `{}` of `{device}`", group.profile))?;
            let declared = compare::declared(&profile, &device, Some(&policy.rules));
            Ok(Some(Subject {
                device: Some(device),
                profile,
                target,
                declared,
                policy: Some(policy),
            }))
        }
        (None, Some(id)) => {
            let Some(target) = a.target else {
                bail!("--profile needs --target ADDR")
            };
            let profile = super::resolve_profile(g, id)?;
            let declared = compare::declared(&profile, "", None);
            Ok(Some(Subject {
                device: None,
                profile,
                target,
                declared,
                policy: None,
            }))
        }
        (Some(_), Some(_)) => bail!("give a site with --device, or --profile without a site"),
        (None, None) => bail!("give a site and --device, or --target ADDR --profile ID"),
    }
}

/// A count of ports of one transport in one state, not listed one by one.
#[derive(Debug, Serialize)]
struct NotShown {
    #[serde(rename = "protocol")]
    transport: Transport,
    state: PortState,
    count: usize,
    /// How most of them were decided.
    reason: String,
}

/// The report: the ports that matter, counts for the rest, the judgement.
#[derive(Debug, Serialize)]
struct View {
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<String>,
    profile: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    from_zone: Option<String>,
    target: IpAddr,
    source: IpAddr,
    method: portolan_scan::Method,
    #[serde(skip_serializing_if = "Option::is_none")]
    fallback: Option<String>,
    rate: u32,
    duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    srtt_us: Option<u64>,
    icmp_echo: portolan_scan::echo::Echo,
    /// Counts per transport and state, of every port scanned.
    summary: Vec<NotShown>,
    /// Every port not in its transport's most common state (nmap's "Not shown"), and every
    /// port a finding is about.
    ports: Vec<PortResult>,
    not_shown: Vec<NotShown>,
    declared: Declared,
    statements: Vec<StatementView>,
    findings: Vec<Finding>,
}

#[derive(Debug, Serialize)]
struct StatementView {
    statement: String,
    #[serde(flatten)]
    verdict: Statement,
}

impl View {
    fn new(
        s: &Subject,
        scan: &Scan,
        zone: Option<String>,
        findings: Vec<Finding>,
        statements: Vec<(String, Statement)>,
    ) -> View {
        let mut summary = Vec::new();
        let mut not_shown = Vec::new();
        for t in [Transport::Tcp, Transport::Udp] {
            let mut counts: Vec<(PortState, usize)> = [
                PortState::Open,
                PortState::Closed,
                PortState::Filtered,
                PortState::OpenFiltered,
            ]
            .into_iter()
            .map(|st| (st, scan.count(t, st)))
            .filter(|(_, n)| *n > 0)
            .collect();
            for (st, n) in &counts {
                summary.push(NotShown {
                    transport: t,
                    state: *st,
                    count: *n,
                    reason: common_reason(scan, t, *st),
                });
            }
            // UDP ports are few: all are shown. TCP: the most common state is counted.
            counts.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
            if t == Transport::Tcp {
                if let Some((st, n)) = counts
                    .first()
                    .filter(|(st, n)| *n > 20 && *st != PortState::Open)
                {
                    not_shown.push(NotShown {
                        transport: t,
                        state: *st,
                        count: *n,
                        reason: common_reason(scan, t, *st),
                    });
                }
            }
        }
        let hidden = |r: &PortResult| {
            not_shown
                .iter()
                .any(|n| n.transport == r.transport && n.state == r.state)
                && !findings
                    .iter()
                    .any(|f| f.transport == r.transport && f.port == r.port)
        };
        let ports = scan.ports.iter().filter(|r| !hidden(r)).cloned().collect();
        View {
            device: s.device.clone(),
            profile: s.profile.id.clone(),
            from_zone: zone,
            target: scan.target,
            source: scan.source,
            method: scan.method,
            fallback: scan.fallback.clone(),
            rate: scan.rate,
            duration_ms: scan.duration_ms,
            srtt_us: scan.srtt_us,
            icmp_echo: scan.echo.clone(),
            summary,
            ports,
            not_shown,
            declared: s.declared.clone(),
            statements: statements
                .into_iter()
                .map(|(statement, verdict)| StatementView { statement, verdict })
                .collect(),
            findings,
        }
    }
}

/// The reason most ports of `t` in `st` were decided by.
fn common_reason(scan: &Scan, t: Transport, st: PortState) -> String {
    let mut tally: std::collections::BTreeMap<String, usize> = Default::default();
    for r in scan
        .ports
        .iter()
        .filter(|r| r.transport == t && r.state == st)
    {
        let key = match &r.reason {
            portolan_scan::Reason::SynAck { .. } => "SYN-ACK".to_string(),
            portolan_scan::Reason::Reset { .. } => "reset".to_string(),
            other => other.to_string(),
        };
        *tally.entry(key).or_default() += 1;
    }
    tally
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(k, _)| k)
        .unwrap_or_default()
}

fn render(v: &View) -> String {
    let mut out = String::new();
    let who = v.device.as_deref().unwrap_or("target");
    out += &format!(
        "scan of {who} {} (profile {}) from {}{}: {} scan, {:.1} s, ICMP echo: {}\n",
        v.target,
        v.profile,
        v.source,
        v.from_zone
            .as_ref()
            .map(|z| format!(" in zone {z}, through the firewall"))
            .unwrap_or_default(),
        match v.method {
            portolan_scan::Method::Syn => "SYN",
            portolan_scan::Method::Connect => "connect()",
        },
        v.duration_ms as f64 / 1000.0,
        match &v.icmp_echo {
            portolan_scan::echo::Echo::Replied { rtt_us } => format!("reply in {rtt_us} µs"),
            portolan_scan::echo::Echo::NoReply => "no reply".into(),
            portolan_scan::echo::Echo::NotTried { why } => format!("not tried ({why})"),
        }
    );
    if let Some(f) = &v.fallback {
        out += &format!("connect() scan: {f}\n");
    }
    let mut t = report::table(["port", "state", "service", "how"]);
    for r in &v.ports {
        t.add_row(vec![
            format!("{}/{}", r.port, r.transport),
            r.state.to_string(),
            r.service.unwrap_or("").to_string(),
            r.reason.to_string(),
        ]);
    }
    out += &format!("{t}\n");
    for n in &v.not_shown {
        out += &format!(
            "not shown: {} {} ports {} ({})\n",
            n.count, n.transport, n.state, n.reason
        );
    }
    for s in &v.statements {
        match &s.verdict {
            Statement::Proven { scope } => out += &format!("`{}` holds: {scope}\n", s.statement),
            Statement::Refuted { open } => {
                out += &format!("`{}` is refuted: open {}\n", s.statement, open.join(", "))
            }
        }
    }
    for f in &v.findings {
        let sev = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        out += &format!("{sev}[{}]: {}\n", code(f), f.message);
    }
    if v.findings.is_empty() {
        out += "no findings: the device exposes only what its profile declares\n";
    }
    out
}

fn code(f: &Finding) -> String {
    serde_json::to_value(f.code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
