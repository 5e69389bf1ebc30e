//! The lint configuration file (`portolan lint --config FILE`): what only the site's owner
//! knows and a site file does not say. Which zones are management zones; the firewall's
//! conntrack timeouts when lint does not run on it; which devices sit behind a NAT and its
//! idle timeouts; the IPsec proposals a device is configured with (of the options its
//! profile offers); and findings accepted for a flow, with the reason.
//!
//! ```yaml
//! portolan: 1
//! management_zones: [mgmt]
//! conntrack: {tcp_established: 432000, udp: 30, udp_stream: 120}
//! nat:
//!   - {devices: [izuma-devices], tcp: 300, udp: 60}
//! ipsec:
//!   - {device: wcc-lite, flow: ipsec-ike, proposals: [aes256-sha256-dh14]}
//! accept:
//!   - {code: plaintext-service, flow: elseta-wcc-lite/snmp, reason: "SNMPv3 authPriv only"}
//! ```
//!
//! Like the other formats: unknown fields are errors, every problem has file:line:column.
//!
//! A site carries its own acceptances (`accept:` in the site file, [`site_accepts`]); the two
//! lists add up, and each acceptance points at the file and line it was written in.

use serde::Deserialize;
use serde_saphyr::Spanned;

use portolan_model::diag::Sink;
use portolan_model::{Code, Diagnostic, Pos};

use crate::finding::{LintCode, Location};
use crate::timeout::{Conntrack, Nat};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    portolan: Spanned<i64>,
    #[serde(default)]
    management_zones: Vec<Spanned<String>>,
    #[serde(default)]
    conntrack: Option<Spanned<RawConntrack>>,
    #[serde(default)]
    nat: Vec<Spanned<RawNat>>,
    #[serde(default)]
    ipsec: Vec<Spanned<RawPin>>,
    #[serde(default)]
    accept: Vec<Spanned<RawAccept>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConntrack {
    tcp_established: u32,
    udp: u32,
    udp_stream: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNat {
    #[serde(default)]
    devices: Vec<String>,
    #[serde(default)]
    tcp: Option<u32>,
    #[serde(default)]
    udp: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPin {
    device: String,
    flow: String,
    #[serde(default)]
    proposals: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccept {
    code: Spanned<String>,
    flow: String,
    #[serde(default)]
    device: Option<String>,
    reason: Spanned<String>,
}

/// Devices behind one NAT (empty: every device, and a profile linted alone).
#[derive(Clone, Debug, PartialEq)]
pub struct NatEntry {
    pub devices: Vec<String>,
    pub nat: Nat,
    pub at: Location,
}

/// The proposals a site configures for one device's flow.
#[derive(Clone, Debug, PartialEq)]
pub struct Pin {
    pub device: String,
    pub flow: String,
    pub proposals: Vec<(String, Location)>,
}

/// A finding the site accepts.
#[derive(Clone, Debug, PartialEq)]
pub struct Accept {
    pub code: LintCode,
    /// `profile/flow`, or a flow id alone.
    pub flow: String,
    pub device: Option<String>,
    pub reason: String,
    pub at: Location,
}

impl Accept {
    pub fn matches(&self, f: &crate::finding::Finding) -> bool {
        if f.code != self.code {
            return false;
        }
        let flow_ok = match (&f.profile, &f.flow) {
            (Some(p), Some(fl)) => self.flow == format!("{p}/{fl}") || &self.flow == fl,
            _ => false,
        };
        flow_ok
            && self
                .device
                .as_ref()
                .is_none_or(|d| f.device.as_ref() == Some(d))
    }
}

/// A checked configuration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    pub management_zones: Vec<String>,
    pub conntrack: Option<Conntrack>,
    pub nat: Vec<NatEntry>,
    pub pins: Vec<Pin>,
    pub accept: Vec<Accept>,
}

impl Config {
    /// The NAT `device` sits behind, if the configuration says so.
    pub fn nat_for(&self, device: Option<&str>) -> Option<&NatEntry> {
        self.nat.iter().find(|n| {
            n.devices.is_empty() || device.is_some_and(|d| n.devices.iter().any(|x| x == d))
        })
    }
}

fn loc(file: &str, p: Pos) -> Location {
    Location {
        file: file.to_string(),
        line: p.line,
        column: p.column,
    }
}

/// Parses and checks a configuration's text; `file` names it in locations and diagnostics.
pub fn parse(file: &str, text: &str) -> Result<Config, Vec<Diagnostic>> {
    let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| {
        vec![portolan_model::diag::from_yaml_error(
            file,
            portolan_model::diag::FileKind::LintConfig,
            &e,
        )]
    })?;
    let mut sink = Sink::new(file);
    if raw.portolan.value != 1 {
        sink.error(
            Pos::from(raw.portolan.referenced),
            Code::UnsupportedVersion,
            format!("format version {} is not supported", raw.portolan.value),
            "write `portolan: 1`",
        );
    }
    let mut accept = Vec::new();
    for a in &raw.accept {
        let at = loc(file, Pos::from(a.referenced));
        let Some(code) = LintCode::parse(&a.value.code.value) else {
            sink.error(
                Pos::from(a.value.code.referenced),
                Code::InvalidValue,
                format!("`{}` is not a lint code", a.value.code.value),
                "use a code lint prints, such as plaintext-service or ike-weak-dh-group",
            );
            continue;
        };
        if a.value.reason.value.trim().is_empty() {
            sink.error(
                Pos::from(a.value.reason.referenced),
                Code::InvalidValue,
                "an acceptance needs a reason",
                "say why the finding is acceptable here",
            );
            continue;
        }
        accept.push(Accept {
            code,
            flow: a.value.flow.clone(),
            device: a.value.device.clone(),
            reason: a.value.reason.value.clone(),
            at,
        });
    }
    let conntrack = raw.conntrack.as_ref().map(|c| Conntrack {
        tcp_established: c.value.tcp_established,
        udp: c.value.udp,
        udp_stream: c.value.udp_stream,
        from_kernel: false,
    });
    let nat = raw
        .nat
        .iter()
        .map(|n| NatEntry {
            devices: n.value.devices.clone(),
            nat: Nat::new(n.value.tcp, n.value.udp),
            at: loc(file, Pos::from(n.referenced)),
        })
        .collect();
    let pins = raw
        .ipsec
        .iter()
        .map(|p| Pin {
            device: p.value.device.clone(),
            flow: p.value.flow.clone(),
            proposals: p
                .value
                .proposals
                .iter()
                .map(|s| (s.value.clone(), loc(file, Pos::from(s.referenced))))
                .collect(),
        })
        .collect();
    let diags = sink.finish();
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    Ok(Config {
        management_zones: raw
            .management_zones
            .iter()
            .map(|z| z.value.clone())
            .collect(),
        conntrack,
        nat,
        pins,
        accept,
    })
}

/// The site's own `accept:` entries (compile has checked their devices, flows and reasons),
/// as acceptances located in the site file; a code lint does not know is an error at its
/// line and column.
pub fn site_accepts(
    file: &str,
    raw: &portolan_model::raw_site::RawSite,
) -> Result<Vec<Accept>, Vec<Diagnostic>> {
    let mut sink = Sink::new(file);
    let mut out = Vec::new();
    for a in &raw.accept {
        let v = &a.value;
        let Some(code) = LintCode::parse(&v.code.value) else {
            sink.error(
                Pos::from(v.code.referenced),
                Code::InvalidValue,
                format!("`{}` is not a lint code", v.code.value),
                format!(
                    "use a code lint prints: {}",
                    LintCode::ALL
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            continue;
        };
        out.push(Accept {
            code,
            flow: v.flow.value.clone(),
            device: v.device.as_ref().map(|d| d.value.clone()),
            reason: v.reason.value.clone(),
            at: loc(file, Pos::from(a.referenced)),
        });
    }
    let diags = sink.finish();
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_code_is_named_at_its_line() {
        let text = "portolan: 1\naccept:\n  - {code: no-such, flow: a/b, reason: x}\n";
        let d = parse("l.yaml", text).expect_err("an unknown code is an error");
        assert_eq!((d[0].line, d[0].column), (3, 12));
    }

    #[test]
    fn an_unknown_field_is_an_error() {
        assert!(parse("l.yaml", "portolan: 1\nnats: []\n").is_err());
    }
}
