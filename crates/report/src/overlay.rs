//! Results of other commands laid over the flows: the JSON that `portolan lab`, `probe`,
//! `audit`, `verify` and `lint` write with `--format json`, read into the few fields a report
//! needs (unknown fields are ignored, so a newer writer still reads) and turned into one
//! [`Mark`] per (device group, `profile/flow`): green (shown to hold), red (shown not to) or
//! grey (not shown either way), with the evidence in words.
//!
//! How each source decides:
//! - **lab**: every row of the flow (required probes and the negatives derived from it);
//!   red if any row's `ok` is false (the kernel did not do what the lab expected), grey for
//!   a skipped probe, else green.
//! - **probe**: every check of the probed device that names a flow (an alternative group's
//!   id marks nothing: no flow has it); `pass` green, `fail` red, `warn` and `skip` grey.
//! - **audit**: `conforming` flows name the admitting `rule` (green, with the count); a group's
//!   `unused` flows are grey (not seen is not proof of absence); violations are listed per
//!   group, never pinned on a flow they did not match.
//! - **verify**: `permitted` green; `blocked` and `partly` red; `depends` grey.
//! - **lint**: a finding of level `error` or `warning` on the flow is red, a `note` grey; a
//!   flow of a linted device without findings is green.
//! - **scan** (`portolan scan --device GROUP --format json`): the profile's `listens` entries
//!   that name a flow (`declared.entries[].entry`) mark it: green when the scan found one of
//!   the entry's ports open, grey for a `declared-not-open` finding on it (the service may just
//!   not run). What the device exposes beyond its profile (`undeclared-open`,
//!   `undeclared-unknown`, `zone-not-allowed`) is no flow: it is a note on the group, red for
//!   an error; a `listens: none` statement proven is a green note. Scanned through the
//!   firewall (`from_zone`), only reachability is judged, as scan itself says.
//!
//! When one source gives several results for a flow (two directions, several probes), the
//! worst wins: red over grey over green. Across sources the page says red if any source
//! shows red, else green if any shows green, else grey (`view.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ReportError;

/// Green, grey, red: ordered so that `max` is the worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    Green,
    Grey,
    Red,
}

/// Which command wrote an overlay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Lab,
    Probe,
    Audit,
    Verify,
    Lint,
    Scan,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Lab => "lab",
            Source::Probe => "probe",
            Source::Audit => "audit",
            Source::Verify => "verify",
            Source::Lint => "lint",
            Source::Scan => "scan",
        }
    }
}

/// One source's verdict on one flow of one group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mark {
    pub source: Source,
    pub color: Color,
    /// One line per piece of evidence: what shows the flow red first, then the rest in the
    /// source's order.
    pub evidence: Vec<String>,
    /// How many of `evidence`'s first lines are red.
    #[serde(skip)]
    pub red_lines: usize,
}

/// The key of a flow in a report: device group, `profile/flow`.
pub type FlowKey = (String, String);

/// Every overlay given, read.
#[derive(Clone, Debug, Default)]
pub struct Overlays {
    /// The sources given, in the fixed order lab, probe, audit, verify, lint, scan.
    pub given: Vec<Source>,
    pub marks: BTreeMap<FlowKey, Vec<Mark>>,
    /// Per group: what a source found that is no flow of it (audit violations, ports a scan
    /// found open beyond the profile), with its colour.
    pub group_notes: BTreeMap<String, Vec<(Source, Color, String)>>,
}

/// The overlay files a report was asked for.
#[derive(Clone, Debug, Default)]
pub struct OverlayFiles {
    pub lab: Option<PathBuf>,
    pub probe: Option<PathBuf>,
    pub audit: Option<PathBuf>,
    pub verify: Option<PathBuf>,
    pub lint: Option<PathBuf>,
    /// One `portolan scan --format json` output per file (a scan is of one device).
    pub scan: Vec<PathBuf>,
}

impl Overlays {
    /// Reads every file given; `site` is the report's site, which `lab`, `audit` and `verify`
    /// outputs must name.
    pub fn read(files: &OverlayFiles, site: &str) -> Result<Overlays, ReportError> {
        let mut o = Overlays::default();
        if let Some(p) = &files.lab {
            let r: LabReport = parse(p, "lab")?;
            same_site(p, &r.site, site)?;
            o.lab(&r);
        }
        if let Some(p) = &files.probe {
            let r: ProbeReport = parse(p, "probe")?;
            if let Some(s) = &r.site {
                same_site(p, s, site)?;
            }
            o.probe(&r);
        }
        if let Some(p) = &files.audit {
            let r = parse_audit(p)?;
            same_site(p, &r.site, site)?;
            o.audit(&r);
        }
        if let Some(p) = &files.verify {
            let r: VerifyReport = parse(p, "verify")?;
            same_site(p, &r.site, site)?;
            o.verify(&r);
        }
        if let Some(p) = &files.lint {
            let r: LintDoc = parse(p, "lint")?;
            o.lint(&r.targets);
        }
        for p in &files.scan {
            let r: ScanReport = parse(p, "scan")?;
            o.scan(p, &r)?;
        }
        Ok(o)
    }

    fn add(&mut self, group: &str, flow: &str, source: Source, color: Color, evidence: String) {
        let marks = self
            .marks
            .entry((group.to_string(), flow.to_string()))
            .or_default();
        match marks.iter_mut().find(|m| m.source == source) {
            Some(m) => {
                m.color = m.color.max(color);
                if color == Color::Red {
                    m.evidence.insert(m.red_lines, evidence);
                    m.red_lines += 1;
                } else {
                    m.evidence.push(evidence);
                }
            }
            None => marks.push(Mark {
                source,
                color,
                evidence: vec![evidence],
                red_lines: usize::from(color == Color::Red),
            }),
        }
        self.mark_given(source);
    }

    fn mark_given(&mut self, source: Source) {
        if !self.given.contains(&source) {
            self.given.push(source);
            self.given.sort();
        }
    }

    fn lab(&mut self, r: &LabReport) {
        self.mark_given(Source::Lab);
        for row in &r.rows {
            let color = if !row.ok {
                Color::Red
            } else if row.observed == "skip" {
                Color::Grey
            } else {
                Color::Green
            };
            let by = row
                .admitted_by
                .as_deref()
                .map(|a| format!(", admitted by {a}"))
                .unwrap_or_default();
            let detail = row
                .detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            let ev = format!(
                "{} {} {} → {}: expected {}, observed {}{detail}{by}",
                row.kind, row.traffic, row.src, row.dst, row.expected, row.observed
            );
            self.add(&row.device, &row.flow, Source::Lab, color, ev);
        }
    }

    fn probe(&mut self, r: &ProbeReport) {
        self.mark_given(Source::Probe);
        for stage in &r.stages {
            for check in &stage.checks {
                let Some(flow) = &check.flow else { continue };
                let color = match check.verdict.as_str() {
                    "pass" => Color::Green,
                    "fail" => Color::Red,
                    _ => Color::Grey,
                };
                let ev = format!(
                    "{} {}: {} {}",
                    stage.stage, check.kind, check.verdict, check.detail
                );
                let key = format!("{}/{flow}", r.profile);
                self.add(
                    &r.device,
                    &key,
                    Source::Probe,
                    color,
                    ev.trim_end().to_string(),
                );
            }
        }
    }

    fn audit(&mut self, r: &AuditReport) {
        self.mark_given(Source::Audit);
        let mut conforming: BTreeMap<(String, String), u64> = BTreeMap::new();
        for f in &r.flows {
            match (f.status.as_str(), &f.group, &f.rule) {
                ("conforming", Some(g), Some(rule)) => {
                    *conforming.entry((g.clone(), rule.clone())).or_default() += 1;
                }
                ("violation", Some(g), _) => {
                    let closest = f
                        .closest
                        .as_deref()
                        .map(|c| format!("; closest rule {c}"))
                        .unwrap_or_default();
                    let what = f.violation.join(", ");
                    self.group_notes.entry(g.clone()).or_default().push((
                        Source::Audit,
                        Color::Red,
                        format!("violation ({what}): {}{closest}", f.describe()),
                    ));
                }
                _ => {}
            }
        }
        for ((g, rule), n) in conforming {
            let ev = format!("{n} observed flow(s) conforming");
            self.add(&g, &rule, Source::Audit, Color::Green, ev);
        }
        for g in &r.groups {
            for u in &g.unused {
                self.add(&g.group, u, Source::Audit, Color::Grey, "not seen".into());
            }
            for u in &g.unused_optional {
                self.add(
                    &g.group,
                    u,
                    Source::Audit,
                    Color::Grey,
                    "not seen (optional)".into(),
                );
            }
        }
    }

    fn verify(&mut self, r: &VerifyReport) {
        self.mark_given(Source::Verify);
        for f in &r.flows {
            let color = match f.status.as_str() {
                "permitted" => Color::Green,
                "blocked" | "partly" => Color::Red,
                _ => Color::Grey,
            };
            let mut ev = f.status.clone();
            for rule in &f.rules {
                ev.push_str(&format!(
                    "; {} line {}: {}",
                    rule.chain,
                    rule.line.map(|l| l.to_string()).unwrap_or("?".into()),
                    rule.text
                ));
            }
            for x in &f.findings {
                ev.push_str(&format!("; {}: {}", x.class, x.outcome));
            }
            self.add(&f.group, &f.flow, Source::Verify, color, ev);
        }
    }

    fn scan(&mut self, path: &Path, r: &ScanReport) -> Result<(), ReportError> {
        self.mark_given(Source::Scan);
        let Some(group) = &r.device else {
            return Err(ReportError::Shape {
                path: path.to_path_buf(),
                command: "scan",
                line: 1,
                column: 1,
                field: "device".into(),
                reason: "the scan names no device group: run `portolan scan SITE --device GROUP`"
                    .into(),
            });
        };
        let how = match &r.from_zone {
            Some(z) => format!("scan of {} from zone {z}", r.target),
            None => format!("scan of {} from {}", r.target, r.source),
        };
        let entries = match &r.declared {
            ScanDeclared::Entries(e) => e.as_slice(),
            _ => &[],
        };
        // The entry of a flow that covers `port` of `transport`.
        let entry_of = |transport: &str, port: u16| {
            entries.iter().find(|e| {
                e.transport.as_deref() == Some(transport)
                    && matches!(&e.coverage, ScanCoverage::Ports(r) if r.iter().any(|(a, b)| (*a..=*b).contains(&port)))
            })
        };
        let flow_key = |e: &ScanEntry| {
            (!e.entry.starts_with("listens[")).then(|| format!("{}/{}", r.profile, e.entry))
        };
        if r.from_zone.is_none() {
            for p in r.ports.iter().filter(|p| p.state == "open") {
                if let Some(key) = entry_of(&p.transport, p.port).and_then(flow_key) {
                    let ev = format!("{}/{} open ({how})", p.port, p.transport);
                    self.add(group, &key, Source::Scan, Color::Green, ev);
                }
            }
        }
        for f in &r.findings {
            let ports = match f.last_port {
                Some(l) => format!("{}-{l}/{}", f.port, f.transport),
                None => format!("{}/{}", f.port, f.transport),
            };
            match (
                f.code.as_str(),
                entry_of(&f.transport, f.port).and_then(flow_key),
            ) {
                ("declared-not-open", Some(key)) => {
                    let ev = format!("{ports} declared but not open ({how})");
                    self.add(group, &key, Source::Scan, Color::Grey, ev);
                }
                _ => {
                    let color = if f.severity == "error" {
                        Color::Red
                    } else {
                        Color::Grey
                    };
                    self.group_notes.entry(group.clone()).or_default().push((
                        Source::Scan,
                        color,
                        format!("{} ({}): {}", f.code, f.severity, f.message),
                    ));
                }
            }
        }
        for st in &r.statements {
            let (color, text) = match &st.verdict {
                ScanVerdict::Proven { scope } => {
                    (Color::Green, format!("`{}` holds: {scope}", st.statement))
                }
                ScanVerdict::Refuted { open } => (
                    Color::Red,
                    format!("`{}` is refuted: open {}", st.statement, open.join(", ")),
                ),
            };
            self.group_notes.entry(group.clone()).or_default().push((
                Source::Scan,
                color,
                format!("{text} ({how})"),
            ));
        }
        Ok(())
    }

    fn lint(&mut self, targets: &[LintTarget]) {
        self.mark_given(Source::Lint);
        for t in targets {
            for f in &t.findings {
                let (Some(device), Some(profile), Some(flow)) = (&f.device, &f.profile, &f.flow)
                else {
                    continue;
                };
                let color = match f.level.as_str() {
                    "error" | "warning" => Color::Red,
                    _ => Color::Grey,
                };
                let ev = format!("{} ({}): {}", f.code, f.level, f.reason);
                self.add(
                    device,
                    &format!("{profile}/{flow}"),
                    Source::Lint,
                    color,
                    ev,
                );
            }
        }
    }
}

fn same_site(path: &Path, found: &str, expected: &str) -> Result<(), ReportError> {
    if found != expected {
        return Err(ReportError::OtherSite {
            path: path.to_path_buf(),
            found: found.to_string(),
            expected: expected.to_string(),
        });
    }
    Ok(())
}

/// Reads `path` as `T`; a failure names the file, line, column and field.
fn parse<T: DeserializeOwned>(path: &Path, command: &'static str) -> Result<T, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        ReportError::Shape {
            path: path.to_path_buf(),
            command,
            line: inner.line(),
            column: inner.column(),
            field,
            reason: inner.to_string(),
        }
    })
}

// The few fields read of each command's JSON (crates/lab/src/report.rs, crates/net probe
// report, crates/audit/src/report.rs, crates/verify/src/site/mod.rs, crates/lint/src/finding.rs).

#[derive(Deserialize)]
struct LabReport {
    site: String,
    rows: Vec<LabRow>,
}

#[derive(Deserialize)]
struct LabRow {
    device: String,
    flow: String,
    kind: String,
    traffic: String,
    src: String,
    dst: String,
    expected: String,
    observed: String,
    #[serde(default)]
    detail: Option<String>,
    ok: bool,
    #[serde(default)]
    admitted_by: Option<String>,
}

#[derive(Deserialize)]
struct ProbeReport {
    #[serde(default)]
    site: Option<String>,
    device: String,
    profile: String,
    stages: Vec<ProbeStage>,
}

#[derive(Deserialize)]
struct ProbeStage {
    stage: String,
    #[serde(default)]
    checks: Vec<ProbeCheck>,
}

#[derive(Deserialize)]
struct ProbeCheck {
    kind: String,
    verdict: String,
    #[serde(default)]
    flow: Option<String>,
    #[serde(default)]
    detail: String,
}

/// `portolan audit --format json` writes JSON lines: one `{"type": "flow"}` per flow, one
/// `{"type": "group"}` per group, then one `{"type": "summary"}` naming the site.
struct AuditReport {
    site: String,
    flows: Vec<AuditFlow>,
    groups: Vec<AuditGroup>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum AuditLine {
    /// The first line: `{"format": "portolan/audit/v1", "type": "header"}`.
    Header,
    Flow(AuditFlow),
    Group(AuditGroup),
    Summary {
        site: String,
    },
}

fn parse_audit(path: &Path) -> Result<AuditReport, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let mut r = AuditReport {
        site: String::new(),
        flows: Vec::new(),
        groups: Vec::new(),
    };
    let mut site = None;
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let de = &mut serde_json::Deserializer::from_str(line);
        let parsed: AuditLine = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            ReportError::Shape {
                path: path.to_path_buf(),
                command: "audit",
                line: i + 1,
                column: inner.column(),
                field,
                reason: inner.to_string(),
            }
        })?;
        match parsed {
            AuditLine::Header => {}
            AuditLine::Flow(f) => r.flows.push(f),
            AuditLine::Group(g) => r.groups.push(g),
            AuditLine::Summary { site: s } => site = Some(s),
        }
    }
    r.site = site.ok_or_else(|| ReportError::Shape {
        path: path.to_path_buf(),
        command: "audit",
        line: text.lines().count(),
        column: 1,
        field: "type".into(),
        reason: "no `{\"type\": \"summary\"}` line naming the site".into(),
    })?;
    Ok(r)
}

#[derive(Deserialize)]
struct AuditFlow {
    status: String,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    violation: Vec<String>,
    #[serde(default)]
    closest: Option<String>,
    /// `{"name": "udp", "number": 17}` (the JSON contract's protocol).
    protocol: AuditProtocol,
    src: String,
    dst: String,
    #[serde(default)]
    dport: Option<u16>,
}

impl AuditFlow {
    fn describe(&self) -> String {
        let port = self.dport.map(|p| format!("/{p}")).unwrap_or_default();
        let proto = match (&self.protocol.name, self.protocol.number) {
            (Some(n), _) => n.clone(),
            (None, Some(n)) => n.to_string(),
            (None, None) => String::new(),
        };
        format!("{} → {} {proto}{port}", self.src, self.dst)
    }
}

#[derive(Deserialize)]
struct AuditProtocol {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    number: Option<u8>,
}

#[derive(Deserialize)]
struct AuditGroup {
    group: String,
    #[serde(default)]
    unused: Vec<String>,
    #[serde(default)]
    unused_optional: Vec<String>,
}

#[derive(Deserialize)]
struct VerifyReport {
    site: String,
    flows: Vec<VerifyFlow>,
}

#[derive(Deserialize)]
struct VerifyFlow {
    group: String,
    flow: String,
    status: String,
    #[serde(default)]
    rules: Vec<VerifyRule>,
    #[serde(default)]
    findings: Vec<VerifyFinding>,
}

#[derive(Deserialize)]
struct VerifyRule {
    chain: String,
    #[serde(default)]
    line: Option<u64>,
    text: String,
}

#[derive(Deserialize)]
struct VerifyFinding {
    class: String,
    outcome: String,
}

/// `portolan lint --format json`: `{"format": "portolan/lint/v1", "targets": [...]}`.
#[derive(Deserialize)]
struct LintDoc {
    targets: Vec<LintTarget>,
}

#[derive(Deserialize)]
struct LintTarget {
    findings: Vec<LintFinding>,
}

#[derive(Deserialize)]
struct LintFinding {
    code: String,
    level: String,
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    flow: Option<String>,
    reason: String,
}

/// `portolan scan --format json` (crates/cli/src/cmd/scan.rs `View`, crates/scan/src/compare.rs).
#[derive(Deserialize)]
struct ScanReport {
    #[serde(default)]
    device: Option<String>,
    profile: String,
    #[serde(default)]
    from_zone: Option<String>,
    target: String,
    source: String,
    #[serde(default)]
    ports: Vec<ScanPort>,
    declared: ScanDeclared,
    #[serde(default)]
    statements: Vec<ScanStatement>,
    #[serde(default)]
    findings: Vec<ScanFinding>,
}

/// A scan's protocol: `{"name": "tcp", "number": 6}` as the JSON contract writes it, or the
/// bare name (`"transport": "tcp"`) of reports written before the contract named it so.
#[derive(Deserialize)]
#[serde(untagged)]
enum ScanProtocol {
    Object { name: String },
    Name(String),
}

impl ScanProtocol {
    fn name(self) -> String {
        match self {
            ScanProtocol::Object { name } | ScanProtocol::Name(name) => name,
        }
    }
}

fn scan_protocol<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    ScanProtocol::deserialize(d).map(ScanProtocol::name)
}

fn scan_protocol_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<ScanProtocol>::deserialize(d).map(|p| p.map(ScanProtocol::name))
}

#[derive(Deserialize)]
struct ScanPort {
    #[serde(
        rename = "protocol",
        alias = "transport",
        deserialize_with = "scan_protocol"
    )]
    transport: String,
    port: u16,
    state: String,
}

#[derive(Deserialize)]
#[serde(tag = "listens", content = "entries", rename_all = "kebab-case")]
enum ScanDeclared {
    None,
    Unspecified,
    Entries(Vec<ScanEntry>),
}

#[derive(Deserialize)]
struct ScanEntry {
    #[serde(
        default,
        rename = "protocol",
        alias = "transport",
        deserialize_with = "scan_protocol_opt"
    )]
    transport: Option<String>,
    coverage: ScanCoverage,
    entry: String,
}

#[derive(Deserialize)]
#[serde(tag = "kind", content = "ports", rename_all = "kebab-case")]
enum ScanCoverage {
    Nothing,
    Ports(Vec<(u16, u16)>),
    Unknown,
}

#[derive(Deserialize)]
struct ScanStatement {
    statement: String,
    #[serde(flatten)]
    verdict: ScanVerdict,
}

#[derive(Deserialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
enum ScanVerdict {
    Proven { scope: String },
    Refuted { open: Vec<String> },
}

#[derive(Deserialize)]
struct ScanFinding {
    severity: String,
    code: String,
    #[serde(
        rename = "protocol",
        alias = "transport",
        deserialize_with = "scan_protocol"
    )]
    transport: String,
    port: u16,
    #[serde(default)]
    last_port: Option<u16>,
    message: String,
}
