//! What a profile alone shows: each flow's IPsec options against the standards, protocols
//! without encryption, services the profile marks unauthenticated, wildcard domains that cover
//! a cloud provider's shared namespace, and endpoints open to every address. A site adds where
//! these are reachable from (`site.rs`).

use ipnet::IpNet;

use portolan_model::raw::Spanned;
use portolan_model::Flow;

use crate::cite::{self, Citation};
use crate::doc::ProfileDoc;
use crate::finding::{Finding, Level, LintCode, Location};
use crate::ipsec::{self, Phase};

/// What a finding says, before it is placed.
pub(crate) struct What {
    pub code: LintCode,
    pub level: Level,
    pub reason: String,
    pub citations: Vec<Citation>,
    pub remedy: String,
}

/// A finding about `flow` of `doc`, at `at`.
pub(crate) fn finding(doc: &ProfileDoc, flow: &Flow, at: Location, w: What) -> Finding {
    Finding {
        code: w.code,
        level: w.level,
        location: at,
        profile: Some(doc.profile.id.clone()),
        flow: Some(flow.id.clone()),
        device: None,
        reason: w.reason,
        citations: w.citations,
        remedy: w.remedy,
    }
}

/// One option of an IPsec list or proposal, judged; `None` when nothing is wrong with it.
pub(crate) fn judge_option(
    doc: &ProfileDoc,
    flow: &Flow,
    phase: Phase,
    token: &str,
    within: Option<&str>,
    at: Location,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let whose = match within {
        Some(p) => format!("{} proposal `{p}`", phase.name()),
        None => format!("{} option", phase.name()),
    };
    let Some(t) = ipsec::transform(token) else {
        out.push(finding(
            doc,
            flow,
            at,
            What {
                code: LintCode::UnknownAlgorithm,
                level: Level::Note,
                reason: format!(
                    "{whose}: `{token}` is not an algorithm lint knows, so it is not judged"
                ),
                citations: vec![cite::RFC8247_ENCR, cite::RFC8221_ENCR],
                remedy:
                    "name it as strongSwan does (aes256, sha256, modp2048, ecp256, aes128gcm128)"
                        .to_string(),
            },
        ));
        return out;
    };
    if let Some(v) = ipsec::verdict(phase, t) {
        out.push(finding(
            doc,
            flow,
            at,
            What {
                code: v.code,
                level: v.level,
                reason: format!(
                    "{whose}: `{token}` ({t}) is {} in {}",
                    v.status, v.citation.standard
                ),
                citations: vec![v.citation],
                remedy: format!(
                    "remove `{token}` from the {} proposals; {}",
                    phase.name(),
                    ipsec::remedy(t)
                ),
            },
        ));
    }
    out
}

/// A whole proposal (`aes256-sha256-dh14`), option by option.
pub(crate) fn judge_proposal(
    doc: &ProfileDoc,
    flow: &Flow,
    phase: Phase,
    proposal: &str,
    at: &Location,
) -> Vec<Finding> {
    proposal
        .split('-')
        .filter(|t| !t.is_empty() && !ipsec::is_neutral(t))
        .flat_map(|t| judge_option(doc, flow, phase, t, Some(proposal), at.clone()))
        .collect()
}

/// The flow's IPsec options as the profile lists them.
pub(crate) fn ipsec_options(doc: &ProfileDoc, index: usize, flow: &Flow) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(raw) = doc.raw_flow(index) else {
        return typed_ipsec_options(doc, index, flow);
    };
    for (phase, crypto) in [(Phase::Ike, &raw.ike), (Phase::Esp, &raw.esp)] {
        let Some(c) = crypto else { continue };
        if phase == Phase::Ike {
            for v in c.versions.iter().filter(|v| v.value == 1) {
                out.push(ikev1(doc, flow, doc.at_span(v)));
            }
        }
        let lists: [&Vec<Spanned<String>>; 2] = [&c.encryption, &c.integrity];
        for s in lists.into_iter().flatten() {
            out.extend(judge_option(
                doc,
                flow,
                phase,
                &s.value,
                None,
                doc.at_span(s),
            ));
        }
        for g in &c.dh_groups {
            out.extend(judge_option(
                doc,
                flow,
                phase,
                &format!("dh{}", g.value),
                None,
                doc.at_span(g),
            ));
        }
        for p in &c.proposals {
            out.extend(judge_proposal(doc, flow, phase, &p.value, &doc.at_span(p)));
        }
    }
    out
}

/// The same from the typed profile alone (no positions).
fn typed_ipsec_options(doc: &ProfileDoc, index: usize, flow: &Flow) -> Vec<Finding> {
    let at = doc.flow_at(index);
    let mut out = Vec::new();
    for (phase, crypto) in [(Phase::Ike, &flow.ike), (Phase::Esp, &flow.esp)] {
        let Some(c) = crypto else { continue };
        if phase == Phase::Ike && c.versions.contains(&1) {
            out.push(ikev1(doc, flow, at.clone()));
        }
        for s in c.encryption.iter().chain(&c.integrity) {
            out.extend(judge_option(doc, flow, phase, s, None, at.clone()));
        }
        for g in &c.dh_groups {
            out.extend(judge_option(
                doc,
                flow,
                phase,
                &format!("dh{g}"),
                None,
                at.clone(),
            ));
        }
        for p in &c.proposals {
            out.extend(judge_proposal(doc, flow, phase, p, &at));
        }
    }
    out
}

fn ikev1(doc: &ProfileDoc, flow: &Flow, at: Location) -> Finding {
    finding(
        doc,
        flow,
        at,
        What {
            code: LintCode::Ikev1,
            level: Level::Warning,
            reason: "IKE version 1 is offered; IKEv1 is deprecated".to_string(),
            citations: vec![cite::RFC9395],
            remedy: "configure the connection for IKEv2 only".to_string(),
        },
    )
}

/// TLS versions the flow states that are deprecated: TLS 1.0 and 1.1, DTLS 1.0, and SSL.
pub(crate) fn tls_versions(doc: &ProfileDoc, index: usize, flow: &Flow) -> Vec<Finding> {
    let Some(tls) = &flow.tls else {
        return Vec::new();
    };
    let at = doc
        .raw_flow(index)
        .and_then(|f| f.tls.as_ref())
        .map_or_else(|| doc.flow_at(index), |t| doc.at_span(t));
    tls.versions
        .iter()
        .filter(|v| {
            let v = v.to_ascii_lowercase().replace(['v', ' '], "");
            matches!(
                v.as_str(),
                "1.0" | "1.1" | "tls1.0" | "tls1.1" | "dtls1.0" | "ssl3" | "ssl3.0" | "ssl2"
            )
        })
        .map(|v| {
            finding(
                doc,
                flow,
                at.clone(),
                What {
                    code: LintCode::TlsOldVersion,
                    level: Level::Warning,
                    reason: format!("TLS version `{v}` is deprecated"),
                    citations: vec![
                        cite::RFC8996,
                        if v.to_ascii_lowercase().contains("dtls") {
                            cite::RFC9325_DTLS
                        } else {
                            cite::RFC9325_TLS
                        },
                    ],
                    remedy: "use TLS 1.2 or 1.3 (DTLS 1.2 or 1.3) only".to_string(),
                },
            )
        })
        .collect()
}

/// A protocol without encryption: its name and what says so.
pub(crate) fn plaintext(flow: &Flow) -> Option<(&'static str, &'static [Citation])> {
    if flow.tls.is_some() {
        return None;
    }
    let app = flow.app.as_deref().unwrap_or("").to_ascii_lowercase();
    let tcp = flow.protocol.number() == Some(6);
    let udp = flow.protocol.number() == Some(17);
    let port = |p: u16| flow.ports.contains(p);
    if tcp && (port(23) || app.contains("telnet")) {
        return Some(("telnet", &[cite::CWE319]));
    }
    if tcp && (port(21) || (app.split_whitespace().any(|w| w == "ftp"))) {
        return Some(("FTP", &[cite::CWE319, cite::RFC9325_STRICT]));
    }
    if tcp && (port(80) || port(8080)) && !app.contains("https") && !app.contains("tls") {
        return Some(("HTTP without TLS", &[cite::CWE319, cite::RFC9325_STRICT]));
    }
    if (udp || tcp) && (port(161) || port(162) || app.contains("snmp")) && !app.contains("snmpv3") {
        return Some((
            "SNMP (v1/v2c community strings travel in cleartext)",
            &[cite::CISA_SNMP],
        ));
    }
    None
}

/// The remedy for a plaintext protocol.
pub(crate) fn plaintext_remedy(what: &str) -> String {
    if what.starts_with("SNMP") {
        "run SNMPv3 with authentication and privacy (authPriv), then accept this finding with that reason".to_string()
    } else {
        format!("replace {what} with its encrypted form (SSH, SFTP/FTPS, HTTPS) or tunnel it; if it must stay, restrict it to a management zone")
    }
}

/// Shared namespaces of cloud providers: names under which every customer's resources get
/// a host of their own choosing (a bucket, an app, a distribution). A wildcard at or above
/// one admits every customer's hosts, an attacker's included.
pub const CLOUD_NAMESPACES: &[&str] = &[
    "amazonaws.com",
    "cloudfront.net",
    "elasticbeanstalk.com",
    "azurewebsites.net",
    "cloudapp.net",
    "cloudapp.azure.com",
    "core.windows.net",
    "azureedge.net",
    "azure-devices.net",
    "appspot.com",
    "googleapis.com",
    "firebaseio.com",
    "run.app",
    "web.app",
    "herokuapp.com",
    "digitaloceanspaces.com",
    "ondigitalocean.app",
    "pages.dev",
    "workers.dev",
    "vercel.app",
    "netlify.app",
    "github.io",
];

/// The cloud namespace a wildcard domain (`example.com` for `*.example.com`) covers.
pub fn cloud_namespace(domain: &str) -> Option<&'static str> {
    let d = domain
        .trim_start_matches("*.")
        .trim_end_matches('.')
        .to_ascii_lowercase();
    CLOUD_NAMESPACES.iter().copied().find(|c| {
        d == *c || d.ends_with(&format!(".{c}")) || c.ends_with(&format!(".{d}")) || d.is_empty()
    })
}

/// Wildcard domains of the flow's peer endpoint that cover a cloud namespace.
pub(crate) fn cloud_wildcards(doc: &ProfileDoc, index: usize, flow: &Flow) -> Vec<Finding> {
    let peer = flow.peer();
    let Some(ep) = doc.profile.endpoints.iter().find(|e| e.id == peer) else {
        return Vec::new();
    };
    let raw = doc.raw_endpoint(peer);
    ep.domains
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            let ns = cloud_namespace(d)?;
            let at = raw
                .and_then(|r| r.domains.get(i))
                .map_or_else(|| doc.flow_at(index), |s| doc.at_span(s));
            Some(finding(
doc,
flow,
at,
What {
code: LintCode::CloudWildcard,
level: Level::Warning,
reason: format!("wildcard `{}` of endpoint `{peer}` covers `{ns}`, where every customer of the provider has hosts", if d.starts_with("*.") { d.clone() } else { format!("*.{d}") }),
citations: vec![cite::LEAST_PRIVILEGE],
remedy: "list the device's own hostnames under `hosts`, or a wildcard under a domain the vendor owns".to_string(),
},
))
        })
        .collect()
}

/// Addresses of the flow's peer endpoint that are a whole address family.
pub(crate) fn any_addresses(doc: &ProfileDoc, index: usize, flow: &Flow) -> Vec<Finding> {
    let peer = flow.peer();
    let Some(ep) = doc.profile.endpoints.iter().find(|e| e.id == peer) else {
        return Vec::new();
    };
    let raw = doc.raw_endpoint(peer);
    ep.addresses
        .iter()
        .enumerate()
        .filter(|(_, n)| n.prefix_len() == 0)
        .map(|(i, n)| {
            let at = raw
                .and_then(|r| r.addresses.get(i))
                .map_or_else(|| doc.flow_at(index), |s| doc.at_span(s));
            finding(
                doc,
                flow,
                at,
                What {
                    code: LintCode::AnyPeer,
                    level: Level::Warning,
                    reason: format!("endpoint `{peer}` is {n}: every address of the family"),
                    citations: vec![cite::LEAST_PRIVILEGE],
                    remedy: "give the peer's own addresses or names".to_string(),
                },
            )
        })
        .collect()
}

/// Whether a prefix is a whole address family (`0.0.0.0/0`, `::/0`).
pub fn is_any(n: &IpNet) -> bool {
    n.prefix_len() == 0
}

/// Everything the profile alone shows about flow `index`; `exposure` adds plaintext and
/// unauthenticated services whatever their direction (a site narrows these to what is
/// reachable, and from where).
/// Each citation of the flow whose row the source cuts (`truncated:`), at the citation's
/// `truncated` key.
fn truncated_rows(doc: &ProfileDoc, index: usize, flow: &Flow) -> Vec<Finding> {
    let raw = doc.raw_flow(index).and_then(|f| f.source.as_ref());
    flow.source
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let t = c.truncated.as_ref()?;
            let at = raw
                .and_then(|s| s.0.get(i))
                .and_then(|r| r.truncated.as_ref())
                .map_or_else(|| doc.flow_at(index), |s| doc.at_span(s));
            let hides: Vec<&str> = t.hides.iter().map(|h| h.as_str()).collect();
            let hidden = if hides.is_empty() {
                String::new()
            } else {
                format!(", hiding its {}", hides.join(", "))
            };
            Some(finding(
                doc,
                flow,
                at,
                What {
                    code: LintCode::TruncatedRow,
                    level: Level::Warning,
                    reason: format!(
                        "the source `{}` cuts row \"{}\": it shows only \"{}\"{hidden}",
                        c.doc, c.reference, t.seen
                    ),
                    citations: vec![cite::TRUNCATED_ROW],
                    remedy: "read the row in a complete copy of the source (or ask the vendor), then give the hidden values with that citation; until then they stay unspecified and the site supplies them".to_string(),
                },
            ))
        })
        .collect()
}

pub(crate) fn flow_findings(doc: &ProfileDoc, index: usize, exposure: bool) -> Vec<Finding> {
    let flow = &doc.profile.flows[index];
    let mut out = ipsec_options(doc, index, flow);
    out.extend(tls_versions(doc, index, flow));
    out.extend(cloud_wildcards(doc, index, flow));
    out.extend(any_addresses(doc, index, flow));
    if exposure || flow.outbound() {
        if let Some((what, c)) = plaintext(flow) {
            out.push(finding(
                doc,
                flow,
                doc.flow_at(index),
                What {
                    code: LintCode::PlaintextService,
                    level: Level::Warning,
                    reason: format!(
                        "{what}: {} travels unencrypted",
                        flow.app.as_deref().unwrap_or("the flow")
                    ),
                    citations: c.to_vec(),
                    remedy: plaintext_remedy(what),
                },
            ));
        }
    }
    out.extend(truncated_rows(doc, index, flow));
    if exposure && flow.unauthenticated {
        let at = doc
            .raw_flow(index)
            .map_or_else(|| doc.flow_at(index), |f| doc.at_span(&f.id));
        out.push(finding(
doc,
flow,
at,
What {
code: LintCode::UnauthenticatedService,
level: Level::Warning,
reason: format!(
                "{} has no access control of its own: whoever the firewall lets reach it controls it",
                flow.app.as_deref().unwrap_or("the service")
            ),
citations: vec![cite::LEAST_PRIVILEGE],
remedy: "bind its peer to management hosts or a management zone only (a site then shows from where it is reachable)".to_string(),
},
));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_namespaces_are_recognised_at_and_above() {
        assert_eq!(cloud_namespace("amazonaws.com"), Some("amazonaws.com"));
        assert_eq!(cloud_namespace("s3.amazonaws.com"), Some("amazonaws.com"));
        assert_eq!(cloud_namespace("windows.net"), Some("core.windows.net"));
        assert_eq!(cloud_namespace("mbedcloud.com"), None);
        assert_eq!(cloud_namespace("example.com"), None);
    }
}
