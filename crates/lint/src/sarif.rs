//! Findings as SARIF 2.1.0 (OASIS Static Analysis Results Interchange Format), so code-review
//! tools show them on the lines they concern: one run, the lint codes as the tool's rules
//! (§3.49), each finding a result (§3.27) with its level, message, physical location (§3.29:
//! artifact URI and region), the citations and remedy in its property bag, and an accepted
//! finding carried with an external suppression (§3.35) whose justification is the reason.

use serde::Serialize;

use crate::finding::{Finding, LintCode, Location};
use crate::Report;

pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

#[derive(Serialize)]
pub struct Log {
    #[serde(rename = "$schema")]
    pub schema: &'static str,
    pub version: &'static str,
    pub runs: Vec<Run>,
}

#[derive(Serialize)]
pub struct Run {
    pub tool: Tool,
    pub results: Vec<SarifResult>,
}

#[derive(Serialize)]
pub struct Tool {
    pub driver: Driver,
}

#[derive(Serialize)]
pub struct Driver {
    pub name: &'static str,
    pub version: &'static str,
    pub rules: Vec<Rule>,
}

#[derive(Serialize)]
pub struct Rule {
    pub id: &'static str,
    #[serde(rename = "shortDescription")]
    pub short_description: Message,
}

#[derive(Serialize)]
pub struct Message {
    pub text: String,
}

#[derive(Serialize)]
pub struct SarifResult {
    #[serde(rename = "ruleId")]
    pub rule_id: &'static str,
    #[serde(rename = "ruleIndex")]
    pub rule_index: usize,
    pub level: &'static str,
    pub message: Message,
    pub locations: Vec<SarifLocation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suppressions: Vec<Suppression>,
    pub properties: Properties,
}

#[derive(Serialize)]
pub struct SarifLocation {
    #[serde(rename = "physicalLocation")]
    pub physical_location: PhysicalLocation,
}

#[derive(Serialize)]
pub struct PhysicalLocation {
    #[serde(rename = "artifactLocation")]
    pub artifact_location: ArtifactLocation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
}

#[derive(Serialize)]
pub struct ArtifactLocation {
    pub uri: String,
}

#[derive(Serialize)]
pub struct Region {
    #[serde(rename = "startLine")]
    pub start_line: u64,
    #[serde(rename = "startColumn", skip_serializing_if = "Option::is_none")]
    pub start_column: Option<u64>,
}

#[derive(Serialize)]
pub struct Suppression {
    pub kind: &'static str,
    pub justification: String,
    pub location: SarifLocation,
}

/// What SARIF has no field for: the citations, the remedy and what the finding is about.
#[derive(Serialize)]
pub struct Properties {
    pub citations: Vec<String>,
    pub remedy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// A file path as a URI reference: relative paths stay relative, characters outside the
/// unreserved set and `/` are percent-encoded (RFC 3986 section 2.1).
fn uri(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn location(l: &Location) -> SarifLocation {
    SarifLocation {
        physical_location: PhysicalLocation {
            artifact_location: ArtifactLocation { uri: uri(&l.file) },
            region: (l.line > 0).then_some(Region {
                start_line: l.line,
                start_column: (l.column > 0).then_some(l.column),
            }),
        },
    }
}

fn result(f: &Finding, suppressions: Vec<Suppression>) -> SarifResult {
    SarifResult {
        rule_id: f.code.as_str(),
        rule_index: LintCode::ALL.iter().position(|c| *c == f.code).unwrap_or(0),
        level: f.level.as_str(),
        message: Message {
            text: f.reason.clone(),
        },
        locations: vec![location(&f.location)],
        suppressions,
        properties: Properties {
            citations: f
                .citations
                .iter()
                .map(|c| format!("{c} <{}>", c.url))
                .collect(),
            remedy: f.remedy.clone(),
            provenance: f.provenance(),
            device: f.device.clone(),
        },
    }
}

/// One SARIF log for all the reports of a run.
pub fn log(reports: &[Report]) -> Log {
    let mut results = Vec::new();
    for r in reports {
        results.extend(r.findings.iter().map(|f| result(f, Vec::new())));
        results.extend(r.accepted.iter().map(|a| {
            result(
                &a.finding,
                vec![Suppression {
                    kind: "external",
                    justification: a.reason.clone(),
                    location: location(&a.accepted_at),
                }],
            )
        }));
    }
    Log {
        schema: SCHEMA,
        version: "2.1.0",
        runs: vec![Run {
            tool: Tool {
                driver: Driver {
                    name: "portolan",
                    version: env!("CARGO_PKG_VERSION"),
                    rules: LintCode::ALL
                        .iter()
                        .map(|c| Rule {
                            id: c.as_str(),
                            short_description: Message {
                                text: c.summary().to_string(),
                            },
                        })
                        .collect(),
                },
            },
            results,
        }],
    }
}
