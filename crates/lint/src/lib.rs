//! `portolan lint`: the security decisions a profile or a site carries, checked against the
//! standards that decide them. Each [`Finding`] has a stable code, a level, the file:line:column
//! of the flow, option or site line it concerns, a one-line reason, the citations (standard
//! and section) that support it and a remedy:
//!
//! - IPsec proposals, option by option, against RFC 8247 (IKEv2) and RFC 8221 (ESP), and IKEv1
//!   (RFC 9395) — `ipsec.rs`, `profile.rs`;
//! - protocols without encryption and services the profile marks unauthenticated, and from
//!   which zones a site lets peers reach them — `profile.rs`, `site.rs`;
//! - keepalives and idle timeouts (`idle_timeout:`) longer than the firewall's conntrack
//!   timeout (read from the kernel or given), keepalives longer than a NAT's idle timeout —
//!   `timeout.rs`;
//! - breadth: wildcard domains over a cloud provider's shared namespace, any-address peers,
//!   inbound flows from outside every zone, flows open from every zone;
//! - site hygiene: overlapping zone networks, devices in zones without networks. (An address
//!   claimed by two devices, or outside its zone, is already a compile error.)
//!
//! A site (`accept:`) or a configuration ([`config`]) accepts a finding for a flow with a
//! reason; lint then reports the acceptance instead. Output as data (`serde`), and SARIF 2.1.0 ([`sarif`]).

pub mod cite;
pub mod config;
mod doc;
pub mod finding;
pub mod ipsec;
mod profile;
pub mod sarif;
pub mod site;
pub mod timeout;

use std::collections::BTreeMap;

use serde::Serialize;

pub use config::Config;
pub use doc::ProfileDoc;
pub use finding::{Accepted, Finding, Level, LintCode, Location};
pub use profile::{cloud_namespace, CLOUD_NAMESPACES};
pub use timeout::{need_of, site_raises, Conntrack, FlowRaise, Need, Raise};

use portolan_model::ir::Policy;
use portolan_model::raw_site::RawSite;

/// What lint found in one target (a profile or a site).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The file (or catalog entry) linted.
    pub target: String,
    pub findings: Vec<Finding>,
    pub accepted: Vec<Accepted>,
    /// The conntrack timeouts keepalives were checked against, if any were known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conntrack: Option<Conntrack>,
    /// What was not checked, and why.
    pub notes: Vec<String>,
}

impl Report {
    /// The most serious level among the findings (acceptances aside).
    pub fn worst(&self) -> Option<Level> {
        self.findings.iter().map(|f| f.level).max()
    }
}

/// Lints one profile alone: every flow, in every mode.
pub fn profile(doc: &ProfileDoc, config: &Config, conntrack: Option<Conntrack>) -> Report {
    let mut findings = Vec::new();
    for index in 0..doc.profile.flows.len() {
        findings.extend(profile::flow_findings(doc, index, true));
    }
    let mut notes = Vec::new();
    if doc.profile.flows.iter().any(|f| f.keepalive.is_some()) {
        notes.push("keepalives are checked against a firewall and a NAT when a site is linted (`portolan lint SITE`)".to_string());
    }
    if doc.profile.flows.iter().any(|f| f.idle_timeout.is_some()) {
        notes.push("idle timeouts are checked against a firewall's conntrack timeouts when a site is linted (`portolan lint SITE`)".to_string());
    }
    finish(doc.file.clone(), findings, config, conntrack, notes, false)
}

/// Lints a compiled site with its profiles (by profile id). The site's own `accept:` entries
/// count with the configuration's (an entry whose code lint does not know is left out here:
/// [`config::site_accepts`] reports it).
pub fn site(
    file: &str,
    raw: &RawSite,
    policy: &Policy,
    docs: &BTreeMap<String, ProfileDoc>,
    config: &Config,
    conntrack: Option<Conntrack>,
) -> Report {
    let with_site;
    let config = match config::site_accepts(file, raw) {
        Ok(a) if !a.is_empty() => {
            let mut c = config.clone();
            c.accept.extend(a);
            with_site = c;
            &with_site
        }
        _ => config,
    };
    let input = site::SiteInput {
        file,
        raw,
        policy,
        docs,
        config,
        conntrack,
    };
    let findings = site::findings(&input);
    let mut notes = Vec::new();
    let keepalives = policy.groups.iter().any(|g| {
        docs.get(&g.profile).is_some_and(|d| {
            d.profile
                .flows
                .iter()
                .any(|f| f.keepalive.is_some() || f.idle_timeout.is_some())
        })
    });
    if keepalives && conntrack.is_none() {
        notes.push("the firewall's conntrack timeouts are unknown, so keepalives and idle timeouts were not checked against them: run on the firewall with --conntrack-from-kernel, or give `conntrack:` in --config".to_string());
    }
    finish(file.to_string(), findings, config, conntrack, notes, true)
}

/// Applies acceptances, reports (for a site) the ones that matched nothing, sorts.
fn finish(
    target: String,
    findings: Vec<Finding>,
    config: &Config,
    conntrack: Option<Conntrack>,
    notes: Vec<String>,
    report_unused: bool,
) -> Report {
    let mut kept = Vec::new();
    let mut accepted = Vec::new();
    let mut used = vec![false; config.accept.len()];
    for f in findings {
        match config.accept.iter().position(|a| a.matches(&f)) {
            Some(i) => {
                used[i] = true;
                let a = &config.accept[i];
                accepted.push(Accepted {
                    finding: f,
                    reason: a.reason.clone(),
                    accepted_at: a.at.clone(),
                });
            }
            None => kept.push(f),
        }
    }
    let unused = config.accept.iter().zip(&used).filter(|(_, u)| !**u);
    for (a, _) in unused.filter(|_| report_unused) {
        kept.push(Finding {
            code: LintCode::UnusedAccept,
            level: Level::Note,
            location: a.at.clone(),
            profile: None,
            flow: Some(a.flow.clone()),
            device: a.device.clone(),
            reason: format!(
                "accepts `{}` for {}, but lint found none there",
                a.code, a.flow
            ),
            citations: Vec::new(),
            remedy: "remove the acceptance, or fix its code or flow".to_string(),
        });
    }
    kept.sort_by(|a, b| (&a.location, a.code).cmp(&(&b.location, b.code)));
    accepted.sort_by(|a, b| {
        (&a.finding.location, a.finding.code).cmp(&(&b.finding.location, b.finding.code))
    });
    Report {
        target,
        findings: kept,
        accepted,
        conntrack,
        notes,
    }
}
