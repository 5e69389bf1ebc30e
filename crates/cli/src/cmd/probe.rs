//! `portolan probe SITE --device NAME` (or `--profile ID --mode M --bind … --param …`): the
//! on-site diagnosis, stage by stage, with remedies. The stages run in `portolan_net::probe`;
//! this module builds the plan, converts the arguments, runs it (inside `--netns` if asked),
//! and prints the report like the gateway's LED: green, yellow, red per stage.

use std::io::IsTerminal as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use owo_colors::{OwoColorize as _, Stream};
use portolan_net::dns::parse_server;
use portolan_net::keepalive;
use portolan_net::plan::{plan, Plan};
use portolan_net::probe::{self, Options};
use portolan_net::report::{Kind, Report, Stage, Verdict};
use portolan_net::runtime::{block_on, System};

use crate::cli::{CatalogArgs, Format, ProbeArgs};
use crate::output::{print_diagnostics, Outcome};
use crate::report;
use portolan_model::{Code, Diagnostic, Subject};

pub fn run(g: &CatalogArgs, a: &ProbeArgs) -> anyhow::Result<Outcome> {
    let json = a.out.json();
    let Some(plan) = load_plan(g, a, json)? else {
        return Ok(Outcome::BadInput);
    };
    let opts = options(a, &plan)?;
    if let Some(s) = opts.source {
        check_source(s, a.netns.as_deref())?;
    }
    let report = match &a.netns {
        Some(ns) => {
            let (p, o) = (plan.clone(), opts.clone());
            portolan_net::netns::run_in(ns, move || {
                block_on(async move { probe::run(&System, &p, &o).await })
            })??
        }
        None => block_on(probe::run(&System, &plan, &opts))?,
    };
    report::print(&a.out, "probe", &report, || render(&report))?;
    Ok(if report.ok() {
        Outcome::Ok
    } else {
        Outcome::Findings
    })
}

/// Fails (exit 2, before any packet) when `--source` is not an address of this machine, or of
/// the namespace the probe runs in: every probe would fail to bind.
fn check_source(s: IpAddr, netns: Option<&str>) -> anyhow::Result<()> {
    let local = match netns {
        Some(ns) => portolan_net::netns::run_in(ns, move || portolan_net::address::check_local(s))?,
        None => portolan_net::address::check_local(s),
    };
    if let Err(e) = local {
        let whose = netns.map_or_else(
            || "this machine".to_string(),
            |ns| format!("network namespace `{ns}`"),
        );
        bail!("--source {s} is not an address of {whose} ({e}); give one of its addresses, or leave --source out")
    }
    Ok(())
}

fn load_plan(g: &CatalogArgs, a: &ProbeArgs, json: bool) -> anyhow::Result<Option<Plan>> {
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
            plan(&policy, &device).map(Some).map_err(anyhow::Error::msg)
        }
        (None, Some(profile)) => {
            let site = synthetic_site(a, profile)?;
            let profiles = super::SiteProfiles {
                catalog: super::load_catalog(g)?,
                base: PathBuf::new(),
            };
            match portolan_model::compile::site_text("<command line>", &site.text, &profiles) {
                Ok(l) => {
                    print_diagnostics(&site.on_flags(l.warnings));
                    plan(&l.value, "device")
                        .map(Some)
                        .map_err(anyhow::Error::msg)
                }
                Err(d) => {
                    print_diagnostics(&site.on_flags(d));
                    Ok(None)
                }
            }
        }
        (Some(_), Some(_)) => bail!("give a site with --device, or --profile without a site"),
        (None, None) => bail!("give a site and --device, or --profile ID --mode M"),
    }
}

/// The one-device site `--profile` and its flags make, and which flag each of its lines came
/// from, so that a diagnostic names the flag instead of a line of a document nobody wrote.
struct Synthetic {
    text: String,
    /// 1-based line number → the flag as given (`--mode tls`, `--bind cloud=…`).
    lines: Vec<(u64, String)>,
    profile: String,
}

impl Synthetic {
    fn push(&mut self, line: String, flag: Option<String>) {
        if let Some(f) = flag {
            let n = u64::try_from(self.text.lines().count()).unwrap_or(u64::MAX) + 1;
            self.lines.push((n, f));
        }
        self.text += &line;
        self.text += "\n";
    }

    /// The flag a diagnostic is about: the flag whose line it points at, else the flag its
    /// code and subject ask for (`--mode` when none is given, `--param KEY=…` for a param),
    /// else `--profile ID`. No line or column: they would be positions in the generated
    /// document. Reads the diagnostic's code and subject, never its wording.
    fn flag_of(&self, d: &Diagnostic) -> String {
        if let Some((_, f)) = self.lines.iter().find(|(n, _)| *n == d.line) {
            return f.clone();
        }
        match (d.code, &d.subject) {
            (Code::MissingMode | Code::UnknownMode, _) => "--mode".into(),
            (
                Code::MissingParam | Code::InvalidParam | Code::InvalidHostname,
                Subject::Param(k),
            ) => format!("--param {k}=…"),
            (Code::MissingParam | Code::InvalidParam | Code::InvalidHostname, _) => {
                "--param".into()
            }
            (Code::UnboundRole, Subject::Role(r)) => format!("--bind {r}=…"),
            (Code::UnboundRole | Code::UnboundService, _) => "--bind".into(),
            _ => format!("--profile {}", self.profile),
        }
    }

    /// The diagnostics, each named by its flag, with help in the command line's terms where
    /// the site's terms would mislead.
    fn on_flags(&self, diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
        diags
            .into_iter()
            .map(|mut d| {
                let on_line = self.lines.iter().any(|(n, _)| *n == d.line);
                d.file = self.flag_of(&d);
                d.line = 0;
                d.column = 0;
                if let Some(h) = flag_help(&d, on_line) {
                    d.help = h;
                }
                d
            })
            .collect()
    }
}

/// The help of a diagnostic about a missing flag, in the command line's terms; `None` keeps the
/// model's help. `on_line`: the diagnostic points at a flag that was given, whose help stands.
fn flag_help(d: &Diagnostic, on_line: bool) -> Option<String> {
    match (d.code, &d.subject) {
        (Code::MissingMode, Subject::Mode { choices }) => {
            Some(format!("give --mode with one of: {}", choices.join(", ")))
        }
        (Code::MissingParam, Subject::Param(k)) if !on_line => {
            Some(format!("give --param {k}=VALUE"))
        }
        (Code::UnboundRole, Subject::Role(r)) if !on_line => {
            Some(format!("give --bind {r}=ADDR|PREFIX|HOST[,...]"))
        }
        _ => None,
    }
}

/// A one-device site from `--profile`, `--mode`, `--bind`, `--param`, `--feature`; the local
/// services (DNS, DHCP, NTP) are the firewall, i.e. the default gateway and the resolver,
/// unless `--bind dns=ADDR` says otherwise. Every value
/// is written as a JSON string, which YAML reads verbatim, so nothing on the command line can
/// change the site's structure.
fn synthetic_site(a: &ProbeArgs, profile: &str) -> anyhow::Result<Synthetic> {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let address = match &a.source {
        Some(s) => s.parse::<IpAddr>().context("--source")?.to_string(),
        None => "0.0.0.0/0".to_string(),
    };
    let mut t = Synthetic {
        text: String::new(),
        lines: Vec::new(),
        profile: profile.to_string(),
    };
    t.push(
        "portolan: 1\nsite: probe\nzones:\n  - id: probe\nservices:\n  dns: firewall\n  dhcp: firewall\n  ntp: firewall\ndevices:\n  - id: device".into(),
        None,
    );
    t.push(format!("    profile: {}", q(profile)), None);
    t.push("    zone: probe".into(), None);
    t.push(
        format!("    addresses: [{}]", q(&address)),
        a.source.as_ref().map(|s| format!("--source {s}")),
    );
    if let Some(m) = &a.mode {
        t.push(format!("    mode: {}", q(m)), Some(format!("--mode {m}")));
    }
    if !a.features.is_empty() {
        let f: Vec<String> = a.features.iter().map(|x| q(x)).collect();
        let flags: Vec<String> = a
            .features
            .iter()
            .map(|x| format!("--feature {x}"))
            .collect();
        t.push(
            format!("    features: [{}]", f.join(", ")),
            Some(flags.join(" ")),
        );
    }
    if !a.params.is_empty() {
        t.push("    params:".into(), None);
        for p in &a.params {
            let Some((k, v)) = p.split_once('=') else {
                bail!("--param {p}: write KEY=VALUE")
            };
            t.push(
                format!("      {}: {}", q(k.trim()), q(v.trim())),
                Some(format!("--param {p}")),
            );
        }
    }
    if !a.binds.is_empty() {
        t.push("    bind:".into(), None);
        for b in &a.binds {
            let Some((k, v)) = b.split_once('=') else {
                bail!("--bind {b}: write ENDPOINT=ADDR[,ADDR...]")
            };
            let peers: Vec<String> = v.split(',').map(|x| q(x.trim())).collect();
            t.push(
                format!("      {}: [{}]", q(k.trim()), peers.join(", ")),
                Some(format!("--bind {b}")),
            );
        }
    }
    Ok(t)
}

fn options(a: &ProbeArgs, plan: &Plan) -> anyhow::Result<Options> {
    let source = a
        .source
        .as_deref()
        .map(str::parse::<IpAddr>)
        .transpose()
        .context("--source")?;
    let resolver = a.resolver.as_deref().map(parse_server).transpose()?;
    let compare_resolver = a
        .compare_resolver
        .as_deref()
        .map(parse_server)
        .transpose()?;
    let resolv_conf = a
        .netns
        .as_deref()
        .and_then(portolan_net::netns::resolv_conf);
    let keepalive = match &a.nat_timeout {
        None => None,
        Some(addr) => {
            let responder = addr
                .parse()
                .with_context(|| format!("--nat-timeout {addr}: write ADDR:PORT"))?;
            let longest = plan.flows.iter().filter_map(|f| f.keepalive).max();
            let max = a.nat_max.map_or_else(
                || longest.map_or(120, |k| u64::from(k) + 60).max(120),
                |d| d.as_secs(),
            );
            Some(keepalive::Options {
                responder,
                token: a.token.clone().unwrap_or_default(),
                source,
                max: Duration::from_secs(max),
                steps: a.nat_steps,
                grace: Duration::from_secs(2),
                progress: progress_bar(a.out.format),
            })
        }
    };
    Ok(Options {
        source,
        resolver,
        resolv_conf,
        compare_resolver,
        timeout: a.timeout,
        attempts: a.attempts.max(1),
        concurrency: a.concurrency,
        ttl_queries: a.ttl_queries.max(1),
        ttl_gap: Duration::from_secs(1),
        token: a.token.clone(),
        max_ports: 8,
        strict_volatile: a.strict_volatile,
        keepalive,
        dhcp: a.dhcp.then(|| probe::DhcpOptions {
            interface: a.interface.clone(),
            timeout: a.timeout.max(probe::DhcpOptions::default().timeout),
            attempts: a.attempts.max(1),
        }),
    })
}

/// A progress bar on stderr for the keepalive measurement, when stderr is a terminal.
fn progress_bar(format: Format) -> Option<keepalive::Progress> {
    if format == Format::Json || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(1);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("keepalive {bar:40} {pos}/{len} s idle measured")
    {
        bar.set_style(style);
    }
    Some(Arc::new(move |done: Duration, total: Duration| {
        bar.set_length(total.as_secs().max(1));
        bar.set_position(done.as_secs());
        if done >= total {
            bar.finish_and_clear();
        }
    }))
}

fn mark(v: Verdict) -> String {
    match v {
        Verdict::Pass => "✓"
            .if_supports_color(Stream::Stdout, |t| t.green())
            .to_string(),
        Verdict::Warn => "!"
            .if_supports_color(Stream::Stdout, |t| t.yellow())
            .to_string(),
        Verdict::Fail => "✗"
            .if_supports_color(Stream::Stdout, |t| t.red())
            .to_string(),
        Verdict::Skip => "-".to_string(),
    }
}

fn lamp(v: Verdict) -> String {
    let word = v.name();
    match v {
        Verdict::Pass => word
            .if_supports_color(Stream::Stdout, |t| t.green())
            .to_string(),
        Verdict::Warn => word
            .if_supports_color(Stream::Stdout, |t| t.yellow())
            .to_string(),
        Verdict::Fail => word
            .if_supports_color(Stream::Stdout, |t| t.red())
            .to_string(),
        Verdict::Skip => word.to_string(),
    }
}

/// The staged report for people.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let site = r
        .site
        .as_deref()
        .map(|s| format!("{s} / "))
        .unwrap_or_default();
    out += &format!(
        "portolan probe — {site}{} ({}, profile {}{})\n",
        r.device,
        r.product,
        r.profile,
        r.mode
            .as_deref()
            .map(|m| format!(", mode {m}"))
            .unwrap_or_default()
    );
    let from = r.source.map_or_else(|| "?".into(), |s| s.to_string());
    let res = r.resolver.map_or_else(|| "none".into(), |s| s.to_string());
    out += &format!("from {from}, resolver {res}\n\n");
    for s in &r.stages {
        out += &format!("{:<10} {}\n", s.stage.name(), lamp(s.verdict));
        for c in &s.checks {
            // Single probes are listed under their flow's line, and only when they fail.
            if c.kind == Kind::Target {
                continue;
            }
            out += &format!("  {} {}\n", mark(c.verdict), c.detail);
            if c.kind == Kind::Flow {
                for t in s.checks.iter().filter(|t| {
                    t.kind == Kind::Target
                        && t.flow == c.flow
                        && (t.verdict != Verdict::Pass || t.volatile)
                }) {
                    out += &format!("      {} {}\n", mark(t.verdict), t.detail);
                }
            }
        }
    }
    if !r.remedies.is_empty() {
        out += "\nremedies:\n";
        for (i, m) in r.remedies.iter().enumerate() {
            out += &format!("  {}. {m}\n", i + 1);
        }
    }
    // Only the requirements stage fails: no flow is at fault.
    let requirements_only = r.verdict == Verdict::Fail
        && r.stages
            .iter()
            .all(|s| s.verdict != Verdict::Fail || s.stage == Stage::Requirements);
    let verdict = match r.verdict {
        Verdict::Fail if requirements_only => {
            "FAIL: a requirement of the profile is not met (see requirements)"
        }
        Verdict::Fail => "FAIL: a required flow does not work",
        Verdict::Warn => "WARN: everything required works, with warnings",
        _ => "PASS: everything required works",
    };
    out += &format!("\n{verdict}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan_model::Severity;

    fn synthetic() -> Synthetic {
        Synthetic {
            text: String::new(),
            lines: vec![(12, "--param port=70000".into())],
            profile: "gw".into(),
        }
    }

    fn diag(code: Code, subject: Subject, line: u64, message: &str, help: &str) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            help: help.into(),
            file: "<command line>".into(),
            line,
            column: 5,
            subject,
        }
    }

    /// Probe names the flag from the code and subject: the same diagnostics with their wording
    /// replaced by text that names other params and roles give the same flags and help.
    #[test]
    fn flags_come_from_code_and_subject_not_wording() {
        let s = synthetic();
        for message in [
            "device `device`: flow `gw/up` needs param `telemetry_port` of profile `gw`, which has no default",
            "reworded: param `decoy` and role `decoy` are mentioned here instead",
            "",
        ] {
            let out = s.on_flags(vec![
                diag(
                    Code::MissingParam,
                    Subject::Param("telemetry_port".into()),
                    3,
                    message,
                    "add `params: {telemetry_port: ...}` to the device",
                ),
                diag(
                    Code::UnboundRole,
                    Subject::Role("slrc".into()),
                    3,
                    message,
                    "reworded help",
                ),
                diag(
                    Code::MissingMode,
                    Subject::Mode {
                        choices: vec!["tls".into(), "plain".into()],
                    },
                    2,
                    message,
                    "pick a mode (reworded)",
                ),
                diag(Code::UnboundService, Subject::Service("ntp".into()), 3, message, "h"),
                diag(Code::InvalidHostname, Subject::None, 3, message, "h"),
                diag(Code::UnknownFlow, Subject::None, 3, message, "h"),
                diag(Code::InvalidParam, Subject::Param("port".into()), 12, message, "h"),
            ]);
            let got: Vec<(&str, &str)> = out
                .iter()
                .map(|d| (d.file.as_str(), d.help.as_str()))
                .collect();
            assert_eq!(
                got,
                [
                    ("--param telemetry_port=…", "give --param telemetry_port=VALUE"),
                    ("--bind slrc=…", "give --bind slrc=ADDR|PREFIX|HOST[,...]"),
                    ("--mode", "give --mode with one of: tls, plain"),
                    ("--bind", "h"),
                    ("--param", "h"),
                    ("--profile gw", "h"),
                    // On the line of a flag that was given: that flag, and the model's help.
                    ("--param port=70000", "h"),
                ],
                "message {message:?}"
            );
            assert!(out.iter().all(|d| d.line == 0 && d.column == 0));
        }
    }
}
