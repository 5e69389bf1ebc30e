//! The probe's result: one verdict per stage, like the Oscar gateway's LED (green: works,
//! yellow: works in part or cannot be told, red: broken), each with the checks behind it and,
//! for what fails, the remedy in the profile's terms. Serialized as-is for `--format json`.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

/// A verdict, ordered from best to worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Not run or not applicable.
    Skip,
    Pass,
    Warn,
    Fail,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Skip => "skip",
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Address,
    Names,
    Reach,
    Integrity,
    Keepalive,
    /// The profile's requirements that are not flows (edition 2): DHCP options, names that
    /// must resolve, hard-coded resolvers. Present only when the profile states requirements.
    Requirements,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Address => "address",
            Stage::Names => "names",
            Stage::Reach => "reach",
            Stage::Integrity => "integrity",
            Stage::Keepalive => "keepalive",
            Stage::Requirements => "requirements",
        }
    }
}

/// What a check looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The source address the probe sends from.
    Source,
    Route,
    Resolver,
    /// A DHCP discover and the offers it drew (`--dhcp`).
    Dhcp,
    /// One hostname at the device's resolver.
    Name,
    /// One hostname compared with `--compare-resolver`.
    Compare,
    /// TTLs across repeated queries.
    Ttl,
    /// One address and port of a flow.
    Target,
    /// A flow as a whole.
    Flow,
    /// An alternative group (at least one member must work).
    Alternative,
    /// A TLS handshake and its issuer.
    Tls,
    /// An idle timeout measured on the path.
    NatTimeout,
    /// A flow's keepalive against the measured timeout.
    Keepalive,
    /// Something the probe cannot test, and why.
    NotProbed,
    /// A DHCP option a requirement needs, against the offer (`--dhcp`).
    DhcpOption,
    /// A name a requirement says must resolve, at the device's resolver.
    MustResolve,
    /// A resolver the device uses whatever DHCP says: does it answer from here?
    HardCodedResolver,
}

/// The profile requirement a check is about (checks of the requirements stage).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RequirementRef {
    /// 0-based, in the profile's `requirements` list.
    pub index: usize,
    /// `addressing`, `link`, `credentials` or `dns`.
    pub kind: String,
    pub text: String,
    /// The requirement's citations, as the profile gives them (`doc`, `ref`).
    pub source: Vec<portolan_model::profile::Citation>,
}

/// One observation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub kind: Kind,
    pub verdict: Verdict,
    /// Whether this check decides the stage's verdict (a member of an alternative group is
    /// decided by its group).
    pub decisive: bool,
    /// Flow id, or alternative group id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
    /// Hostname or address, as the profile or site names the peer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The classification, stable for scripts: `open`, `refused`, `rejected` (a device on the
    /// path rejected the flow), `filtered`, `unreachable`, `open|filtered`, `closed`,
    /// `nxdomain`, `servfail`, `timeout`, `intercepted`, `machine-differs`; for alternative
    /// groups `all`, `partial`, `host-unreachable`, `none`; …
    pub state: String,
    /// One line for people.
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
    /// What a DHCP server offered (checks of kind `dhcp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer: Option<crate::dhcp::Offer>,
    /// The profile requirement checked (the requirements stage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requirement: Option<RequirementRef>,
    /// The DHCP option code checked (RFC 2132), for checks of kind `dhcp-option`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dhcp_option: Option<u8>,
    /// A target at an address the profile marks `addresses_volatile`, probed as context: it
    /// does not decide its flow (`--strict-volatile` makes it required).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub volatile: bool,
}

impl Check {
    pub fn new(
        kind: Kind,
        verdict: Verdict,
        state: impl Into<String>,
        detail: impl Into<String>,
    ) -> Check {
        Check {
            kind,
            verdict,
            decisive: true,
            flow: None,
            peer: None,
            address: None,
            protocol: None,
            port: None,
            state: state.into(),
            detail: detail.into(),
            remedy: None,
            offer: None,
            requirement: None,
            dhcp_option: None,
            volatile: false,
        }
    }

    pub fn flow(mut self, f: impl Into<String>) -> Check {
        self.flow = Some(f.into());
        self
    }

    pub fn peer(mut self, p: impl Into<String>) -> Check {
        self.peer = Some(p.into());
        self
    }

    pub fn address(mut self, a: IpAddr) -> Check {
        self.address = Some(a);
        self
    }

    pub fn proto(mut self, p: impl Into<String>, port: Option<u16>) -> Check {
        self.protocol = Some(p.into());
        self.port = port;
        self
    }

    pub fn remedy(mut self, r: impl Into<String>) -> Check {
        self.remedy = Some(r.into());
        self
    }

    /// The remedy, unless there is none to give (empty).
    pub fn remedy_if(self, r: String) -> Check {
        if r.is_empty() {
            self
        } else {
            self.remedy(r)
        }
    }

    pub fn offer(mut self, o: crate::dhcp::Offer) -> Check {
        self.offer = Some(o);
        self
    }

    pub fn requirement(mut self, r: RequirementRef) -> Check {
        self.requirement = Some(r);
        self
    }

    pub fn dhcp_option(mut self, code: u8) -> Check {
        self.dhcp_option = Some(code);
        self
    }

    pub fn informative(mut self) -> Check {
        self.decisive = false;
        self
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StageReport {
    pub stage: Stage,
    pub verdict: Verdict,
    pub checks: Vec<Check>,
}

impl StageReport {
    /// A stage from its checks: the worst decisive verdict, `skip` when nothing decided.
    pub fn new(stage: Stage, checks: Vec<Check>) -> StageReport {
        let verdict = checks
            .iter()
            .filter(|c| c.decisive)
            .map(|c| c.verdict)
            .max()
            .unwrap_or(Verdict::Skip);
        StageReport {
            stage,
            verdict,
            checks,
        }
    }

    pub fn skipped(stage: Stage, why: impl Into<String>) -> StageReport {
        StageReport {
            stage,
            verdict: Verdict::Skip,
            checks: vec![Check::new(Kind::NotProbed, Verdict::Skip, "skipped", why).informative()],
        }
    }
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub site: Option<String>,
    pub device: String,
    pub profile: String,
    pub product: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The address the probe sent from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<IpAddr>,
    /// The resolver the names stage asked (the device's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolver: Option<SocketAddr>,
    pub verdict: Verdict,
    pub stages: Vec<StageReport>,
    /// Every remedy of a failing or warning check, in stage order, without repeats.
    pub remedies: Vec<String>,
}

impl Report {
    /// Fills `verdict` and `remedies` from the stages.
    pub fn finish(&mut self) {
        self.verdict = self
            .stages
            .iter()
            .map(|s| s.verdict)
            .max()
            .unwrap_or(Verdict::Skip);
        let mut remedies: Vec<String> = Vec::new();
        for c in self.stages.iter().flat_map(|s| &s.checks) {
            if let Some(r) = &c.remedy {
                if c.decisive && c.verdict >= Verdict::Warn && !remedies.contains(r) {
                    remedies.push(r.clone());
                }
            }
        }
        self.remedies = remedies;
    }

    pub fn stage(&self, s: Stage) -> Option<&StageReport> {
        self.stages.iter().find(|x| x.stage == s)
    }

    /// Every check, for tests and scripts.
    pub fn checks(&self) -> impl Iterator<Item = &Check> {
        self.stages.iter().flat_map(|s| &s.checks)
    }

    /// Whether every required flow works: exit 0, else 1.
    pub fn ok(&self) -> bool {
        self.verdict != Verdict::Fail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_verdict_ignores_informative_checks() {
        let s = StageReport::new(
            Stage::Reach,
            vec![
                Check::new(Kind::Target, Verdict::Fail, "filtered", "x").informative(),
                Check::new(Kind::Alternative, Verdict::Warn, "partial", "y"),
            ],
        );
        assert_eq!(s.verdict, Verdict::Warn);
        assert_eq!(
            StageReport::new(Stage::Reach, vec![]).verdict,
            Verdict::Skip
        );
    }
}
