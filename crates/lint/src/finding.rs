//! What lint reports: a [`Finding`] with a stable [`LintCode`], a [`Level`], where it is
//! (file:line:column of the flow, option or site line it concerns), a one-line reason, the
//! citations that support it and the remedy; and an [`Accepted`] finding, which a lint
//! configuration accepted for a flow with a reason.

use std::fmt;

use serde::Serialize;

use crate::cite::Citation;

/// How serious a finding is. Ordered: `Note < Warning < Error`. The standards' words map onto
/// it: MUST NOT is an error, SHOULD NOT a warning, what a standard only discourages a note.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Note,
    Warning,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Note => "note",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }

    /// Parses `note`, `warning` or `error`.
    pub fn parse(s: &str) -> Option<Level> {
        [Level::Note, Level::Warning, Level::Error]
            .into_iter()
            .find(|l| l.as_str() == s)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! lint_codes {
    ($($variant:ident = $text:literal : $summary:literal,)*) => {
        /// A finding's stable code, written in kebab-case (`ike-weak-dh-group`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum LintCode { $($variant,)* }

        impl LintCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [LintCode] = &[$(LintCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(LintCode::$variant => $text,)* }
            }

            /// One line saying what the check is about (SARIF `shortDescription`).
            pub fn summary(self) -> &'static str {
                match self { $(LintCode::$variant => $summary,)* }
            }
        }
    };
}

lint_codes! {
    Ikev1 = "ikev1": "IKEv1 is offered; it is deprecated",
    IkeWeakEncryption = "ike-weak-encryption": "an IKE encryption algorithm the standards discourage or forbid",
    IkeWeakPrf = "ike-weak-prf": "an IKE pseudo-random function the standards forbid",
    IkeWeakIntegrity = "ike-weak-integrity": "an IKE integrity algorithm the standards forbid",
    IkeWeakDhGroup = "ike-weak-dh-group": "an IKE Diffie-Hellman group the standards discourage or forbid",
    EspWeakEncryption = "esp-weak-encryption": "an ESP encryption algorithm the standards discourage or forbid",
    EspWeakIntegrity = "esp-weak-integrity": "an ESP integrity algorithm the standards forbid",
    EspWeakDhGroup = "esp-weak-dh-group": "a Diffie-Hellman group for ESP (PFS) the standards discourage or forbid",
    UnknownAlgorithm = "unknown-algorithm": "an IPsec proposal option lint cannot classify",
    TlsOldVersion = "tls-old-version": "a TLS or DTLS version that is deprecated",
    PlaintextService = "plaintext-service": "a protocol without encryption (telnet, FTP, HTTP, SNMPv1/v2c)",
    UnauthenticatedService = "unauthenticated-service": "a service the profile marks as having no access control of its own",
    KeepaliveOverConntrack = "keepalive-over-conntrack": "a keepalive longer than the firewall's conntrack timeout for the protocol",
    IdleTimeoutOverConntrack = "idle-timeout-over-conntrack": "an idle timeout the flow needs longer than the firewall's conntrack timeout for the protocol",
    KeepaliveOverNat = "keepalive-over-nat": "a keepalive longer than the NAT's idle timeout",
    CloudWildcard = "cloud-wildcard": "a wildcard domain covering a shared cloud namespace",
    AnyPeer = "any-peer": "a flow open to every address",
    InboundFromInternet = "inbound-from-internet": "a flow the peer opens from outside every zone of the site",
    OpenToEveryZone = "open-to-every-zone": "a flow the peer opens from every zone of the site",
    NestedZoneNetworks = "nested-zone-networks": "zone networks that overlap",
    ZoneWithoutNetworks = "zone-without-networks": "a device in a zone that lists no networks",
    TruncatedRow = "truncated-row": "a flow citing a row its source cuts off",
    UnusedAccept = "unused-accept": "an acceptance (in the site or the lint configuration) that matches no finding",
}

impl fmt::Display for LintCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for LintCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl LintCode {
    pub fn parse(s: &str) -> Option<LintCode> {
        LintCode::ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

/// Where a finding points: a file and a 1-based line and column (0 when unknown, as for a
/// profile that came from a MUD file).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    pub file: String,
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: LintCode,
    pub level: Level,
    #[serde(flatten)]
    pub location: Location,
    /// The profile and flow concerned, when a flow is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
    /// The site's device or group concerned (site lint only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// One line: what is wrong.
    pub reason: String,
    /// The standards or guidance that support the finding, with their sections.
    pub citations: Vec<Citation>,
    /// What to do about it.
    pub remedy: String,
}

impl Finding {
    /// `profile/flow`, when the finding concerns a flow.
    pub fn provenance(&self) -> Option<String> {
        match (&self.profile, &self.flow) {
            (Some(p), Some(f)) => Some(format!("{p}/{f}")),
            _ => None,
        }
    }
}

/// A finding the configuration accepts, with the reason it gives and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Accepted {
    pub finding: Finding,
    pub reason: String,
    pub accepted_at: Location,
}
