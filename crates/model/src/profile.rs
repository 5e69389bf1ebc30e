//! The validated, typed profile: what one device type needs from the network. Produced only
//! by [`crate::validate::profile`], so every reference inside it resolves and every value is in
//! range. It serializes back to the file format (`portolan: 1`, or `portolan: 2` where the
//! file was written in the second edition).
//!
//! Over 800 lines: the whole file format as types, with the JSON Schema stand-ins that
//! describe how each is written, in one place so that the schema and the types cannot drift.

use std::net::IpAddr;

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::Serialize;

use crate::ports::PortSpec;
use crate::protocol::Protocol;

fn is_false(b: &bool) -> bool {
    !*b
}

/// One device type.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Format edition: 1, or 2 (the second edition's constructs).
    pub portolan: u32,
    /// Lowercase letters, digits and `-`.
    pub id: String,
    pub vendor: String,
    pub product: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Every document a citation may name.
    pub sources: Vec<SourceDoc>,
    /// Mutually exclusive deployment variants; a site chooses one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modes: Vec<Mode>,
    /// Switches a site turns on (firmware modules, optional services).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<Feature>,
    /// Values a site sets, referenced as `{id}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Param>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<Endpoint>,
    /// One entry per row of the vendor's tables.
    pub flows: Vec<Flow>,
    /// Groups of flows of which at least one must work.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<Alternative>,
    /// What the device itself exposes.
    pub listens: Listens,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Note>,
    /// Edition 2: what the device needs that is not a flow, each cited. Opens nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requirements: Vec<Requirement>,
    /// Edition 2: the device's own network interfaces (a multi-homed device, e.g. an IT and
    /// an OT side), each cited. A site binds each to an address and a zone, and each flow is
    /// compiled for the address and zone of its interface only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
}

/// One of the device's network interfaces (edition 2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    /// Lowercase letters, digits and `-` (`it`, `ot`, `eth1`).
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Required: at least one citation (where the source says the device has it).
    #[schemars(with = "CitationsSchema")]
    pub source: Vec<Citation>,
}

/// The kind of a requirement that is not a flow (edition 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RequirementKind {
    /// DHCP only, a static address required, DHCP options needed.
    Addressing,
    /// Wi-Fi band, WPA-Enterprise unsupported, captive portals, cellular variant.
    Link,
    /// Device authentication (X.509 certificates, keys).
    Credentials,
    /// Names that must resolve, hard-coded resolvers.
    Dns,
}

impl RequirementKind {
    pub const ALL: [RequirementKind; 4] = [
        RequirementKind::Addressing,
        RequirementKind::Link,
        RequirementKind::Credentials,
        RequirementKind::Dns,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RequirementKind::Addressing => "addressing",
            RequirementKind::Link => "link",
            RequirementKind::Credentials => "credentials",
            RequirementKind::Dns => "dns",
        }
    }
}

impl Requirement {
    /// The requirement in one line, for `show` and `doc`.
    pub fn line(&self) -> String {
        let mut out = format!("{}: {}", self.kind.name(), self.text.trim());
        if !self.dhcp_options.is_empty() {
            let o: Vec<String> = self.dhcp_options.iter().map(ToString::to_string).collect();
            out.push_str(&format!(" (DHCP options {})", o.join(", ")));
        }
        if !self.names.is_empty() {
            out.push_str(&format!(" (must resolve: {})", self.names.join(", ")));
        }
        if !self.resolvers.is_empty() {
            let r: Vec<String> = self.resolvers.iter().map(ToString::to_string).collect();
            out.push_str(&format!(" (resolvers: {})", r.join(", ")));
        }
        out
    }
}

/// A requirement that is not a flow (edition 2): documented, shown, never a rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    pub kind: RequirementKind,
    pub text: String,
    /// addressing: DHCP options the device needs (RFC 2132 codes: 3 router, 6 DNS, 42 NTP).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dhcp_options: Vec<u8>,
    /// dns: names that must resolve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// dns: resolvers the device uses whatever DHCP says. Listed, not opened: a flow states
    /// what may pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub resolvers: Vec<IpAddr>,
    /// Required: at least one citation.
    #[schemars(with = "CitationsSchema")]
    pub source: Vec<Citation>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceDoc {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Edition 2: the document's date, `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Edition 2: the document's revision or version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Edition 2: from whose side the document's tables are written; the profile's flows are
    /// always the device's (`from: device` is the device).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perspective: Option<Perspective>,
}

/// Whose side a source's tables are written from (edition 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Perspective {
    Device,
    Controller,
    Console,
    Server,
}

impl Perspective {
    pub const ALL: [Perspective; 4] = [
        Perspective::Device,
        Perspective::Controller,
        Perspective::Console,
        Perspective::Server,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Perspective::Device => "device",
            Perspective::Controller => "controller",
            Perspective::Console => "console",
            Perspective::Server => "server",
        }
    }
}

/// Where a fact comes from: a source document and a place in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Citation {
    /// The `id` of an entry of `sources`.
    pub doc: String,
    /// Table and row, section or step.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Edition 2: the source cuts this row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncated>,
}

/// A row the source cuts (edition 2): what it shows, and which of the flow's values the cut
/// hides. Those values are `unspecified` in the flow unless another citation gives them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Truncated {
    /// The row's text exactly as the source shows it.
    pub seen: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hides: Vec<Hidden>,
}

/// A flow value a truncated row hides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Hidden {
    Protocol,
    Ports,
    SrcPorts,
    Keepalive,
}

impl Hidden {
    pub const ALL: [Hidden; 4] = [
        Hidden::Protocol,
        Hidden::Ports,
        Hidden::SrcPorts,
        Hidden::Keepalive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Hidden::Protocol => "protocol",
            Hidden::Ports => "ports",
            Hidden::SrcPorts => "src_ports",
            Hidden::Keepalive => "keepalive",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mode {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "CitationsSchema")]
    pub source: Vec<Citation>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "CitationsSchema")]
    pub source: Vec<Citation>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// One port, 1..65535.
    Port,
    /// A port spec: list and ranges.
    Ports,
    /// A hostname or address.
    Host,
    String,
    /// One of `values`.
    Enum,
}

/// A param's value as written in a profile default or a site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ParamValue {
    Ports(#[schemars(with = "PortsSchema")] PortSpec),
    Text(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Param {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ParamType,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<ParamValue>,
    /// Port params (edition 2): the documented range or set a site's value must lie in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<PortsSchema>")]
    pub range: Option<PortSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "CitationsSchema")]
    pub source: Vec<Citation>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Dns,
    Dhcp,
    Ntp,
}

impl Service {
    pub fn from_name(s: &str) -> Option<Service> {
        match s {
            "dns" => Some(Service::Dns),
            "dhcp" => Some(Service::Dhcp),
            "ntp" => Some(Service::Ntp),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Service::Dns => "dns",
            Service::Dhcp => "dhcp",
            Service::Ntp => "ntp",
        }
    }
}

/// A named peer. Validation guarantees exactly one kind: a local `service`, a `role` the site
/// binds (or a `discovered` peer), the device's own `segment`, or remote
/// `hosts`/`domains`/`addresses`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Fully qualified hostnames, or templates with `{param}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Wildcard domains, `*` as the whole leftmost label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    /// IPv4/IPv6 addresses and prefixes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub addresses: Vec<IpNet>,
    /// The source says the addresses may change.
    #[serde(default, skip_serializing_if = "is_false")]
    pub addresses_volatile: bool,
    /// A local service the site provides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,
    /// A role the site must bind to addresses or names.
    #[serde(default, skip_serializing_if = "is_false")]
    pub role: bool,
    /// Edition 2: a peer the device learns at run time (a DNS SRV record, a provisioning
    /// service, a DHCP option). Like a role, the site binds it; unbound, it opens nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovered: Option<Discovered>,
    /// Edition 2: the hosts on the device's own segment (its zone's networks; for a
    /// multi-homed device, the zone of the flow's interface). Traffic between them and the
    /// device never crosses the firewall, so a flow with it opens nothing a router could see
    /// beyond those networks; a DHCP server flow from it is documented, not enforced.
    #[serde(default, skip_serializing_if = "is_false")]
    pub segment: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "CitationsSchema")]
    pub source: Vec<Citation>,
}

/// How a discovered endpoint is learnt (edition 2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, tag = "via", rename_all = "kebab-case")]
pub enum Discovered {
    /// A DNS SRV record (RFC 2782): `name` is `_service._proto.domain`.
    Srv { name: String },
    /// A provisioning or configuration service hands the address over.
    Provisioning,
    /// A DHCP option (RFC 2132), e.g. 42 for NTP servers.
    DhcpOption { option: u8 },
}

impl std::fmt::Display for Discovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Discovered::Srv { name } => write!(f, "learnt from DNS SRV {name}"),
            Discovered::Provisioning => f.write_str("learnt from a provisioning service"),
            Discovered::DhcpOption { option } => write!(f, "learnt from DHCP option {option}"),
        }
    }
}

/// What kind of peer an endpoint is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointKind {
    Service(Service),
    Role,
    /// The hosts on the device's own segment (edition 2 `segment: true`).
    Segment,
    Remote,
}

impl Endpoint {
    pub fn kind(&self) -> EndpointKind {
        match (self.service, self.role || self.discovered.is_some()) {
            (Some(s), _) => EndpointKind::Service(s),
            (None, true) => EndpointKind::Role,
            (None, false) if self.segment => EndpointKind::Segment,
            (None, false) => EndpointKind::Remote,
        }
    }
}

/// Who opens the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Initiation {
    /// The device opens it (the vendors' "unidirectional" outbound).
    Device,
    /// The peer opens it towards the device.
    Peer,
    /// Either side may (the vendors' "bidirectional").
    Either,
}

impl Initiation {
    pub fn name(self) -> &'static str {
        match self {
            Initiation::Device => "device",
            Initiation::Peer => "peer",
            Initiation::Either => "either",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Cast {
    #[default]
    Unicast,
    Broadcast,
    Multicast,
}

/// The IP family a flow is limited to (`family:`); absent, a flow holds in both. A MUD file's
/// `ipv4-acl-type` / `ipv6-acl-type` ACLs import as one (RFC 8519 section 4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IpFamily {
    Ipv4,
    Ipv6,
}

impl IpFamily {
    /// Whether an address of this family is `a`'s.
    pub fn holds(self, a: &IpAddr) -> bool {
        match self {
            IpFamily::Ipv4 => a.is_ipv4(),
            IpFamily::Ipv6 => a.is_ipv6(),
        }
    }
}

fn is_unicast(c: &Cast) -> bool {
    *c == Cast::Unicast
}

/// A version comparison such as `>= 2.8`.
#[derive(Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct VersionReq {
    pub op: String,
    pub version: Vec<u32>,
}

impl std::fmt::Display for VersionReq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v: Vec<String> = self.version.iter().map(ToString::to_string).collect();
        write!(f, "{} {}", self.op, v.join("."))
    }
}

impl Serialize for VersionReq {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// A condition under which a flow exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    /// A feature the site enables.
    Feature(String),
    /// A firmware or software version, e.g. `>= 2.8`.
    Version(#[schemars(with = "String")] VersionReq),
    /// A region (param value).
    Region(String),
    /// Edition 2: holds when the inner condition does not.
    Not(Box<Condition>),
    /// Edition 2: holds when at least one does.
    Any(Vec<Condition>),
    /// Edition 2: holds when every one does.
    All(Vec<Condition>),
}

impl Condition {
    /// Every leaf condition (feature, version, region) inside this one, itself included.
    pub fn leaves(&self) -> Vec<&Condition> {
        match self {
            Condition::Not(c) => c.leaves(),
            Condition::Any(l) | Condition::All(l) => l.iter().flat_map(Condition::leaves).collect(),
            leaf => vec![leaf],
        }
    }
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |l: &[Condition]| {
            l.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Condition::Feature(x) => write!(f, "feature {x}"),
            Condition::Version(v) => write!(f, "version {v}"),
            Condition::Region(r) => write!(f, "region {r}"),
            Condition::Not(c) => write!(f, "not ({c})"),
            Condition::Any(l) => write!(f, "any of ({})", list(l)),
            Condition::All(l) => write!(f, "all of ({})", list(l)),
        }
    }
}

/// The outer flow a tunnelled flow is carried inside.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Inside {
    pub flow: String,
    /// The outer flow's port that carries this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Inspection {
    Allowed,
    Forbidden,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// The issuer the server certificate must have, as `openssl x509 -issuer` prints it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inspection: Option<Inspection>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// The server name the device sends in its ClientHello.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// Edition 2: the server refuses a ClientHello without SNI.
    #[serde(default, skip_serializing_if = "is_false")]
    pub sni_required: bool,
    /// Edition 2: ALPN protocol names the device offers (RFC 7301), e.g. `x-amzn-mqtt-ca`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alpn: Vec<String>,
    /// Edition 2: the device authenticates with a client certificate (mutual TLS).
    #[serde(default, skip_serializing_if = "is_false")]
    pub client_cert: bool,
    /// Edition 2: the lowest TLS version the server accepts: 1.0, 1.1, 1.2 or 1.3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
}

/// What a flow can do with an HTTP(S) proxy (edition 2, `proxy:`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Proxy {
    /// `supported` or `unsupported`.
    pub http: Support,
    /// Only through `CONNECT` (the proxy tunnels TLS, never terminates it).
    #[serde(default, skip_serializing_if = "is_false")]
    pub connect_only: bool,
    /// Whether a proxy that asks for credentials works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticated: Option<Support>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Support {
    Supported,
    Unsupported,
}

impl Support {
    pub fn from_name(s: &str) -> Option<Support> {
        match s {
            "supported" => Some(Support::Supported),
            "unsupported" => Some(Support::Unsupported),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Support::Supported => "supported",
            Support::Unsupported => "unsupported",
        }
    }
}

/// How the device authenticates to the service (edition 2, `auth:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Auth {
    None,
    Password,
    Token,
    ApiKey,
    ClientCert,
    Sigv4,
    Other,
}

impl Auth {
    pub const ALL: [Auth; 7] = [
        Auth::None,
        Auth::Password,
        Auth::Token,
        Auth::ApiKey,
        Auth::ClientCert,
        Auth::Sigv4,
        Auth::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::Password => "password",
            Auth::Token => "token",
            Auth::ApiKey => "api-key",
            Auth::ClientCert => "client-cert",
            Auth::Sigv4 => "sigv4",
            Auth::Other => "other",
        }
    }
}

/// IKE (phase 1) or ESP (phase 2) facts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Crypto {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<u8>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proposals: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub encryption: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub integrity: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dh_groups: Vec<u16>,
}

/// `device`, or an endpoint id.
pub const DEVICE: &str = "device";

/// One row of a vendor's table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    pub id: String,
    /// Empty: every mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modes: Vec<String>,
    /// `device` or an endpoint id.
    pub from: String,
    /// `device` or an endpoint id; `ports` are on this side.
    pub to: String,
    pub initiation: Initiation,
    #[schemars(with = "ProtocolSchema")]
    pub protocol: Protocol,
    #[serde(default, skip_serializing_if = "PortSpec::is_none")]
    #[schemars(with = "Option<PortsSchema>")]
    pub ports: PortSpec,
    #[serde(default, skip_serializing_if = "PortSpec::is_none")]
    #[schemars(with = "Option<PortsSchema>")]
    pub src_ports: PortSpec,
    #[serde(default, skip_serializing_if = "is_false")]
    pub optional: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Required: at least one citation.
    #[schemars(with = "CitationsSchema")]
    pub source: Vec<Citation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inside: Option<Inside>,
    #[serde(default, skip_serializing_if = "is_unicast")]
    pub cast: Cast,
    /// `ipv4` or `ipv6`; absent: both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<IpFamily>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub group: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<String>,
    /// Seconds between keepalives the device sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<KeepaliveSchema>")]
    pub keepalive: Option<u32>,
    /// Edition 2: the source says the device sends keepalives but not how often
    /// (`keepalive: unspecified`).
    #[serde(
        rename = "keepalive",
        default,
        skip_serializing_if = "is_false",
        serialize_with = "unspecified_word"
    )]
    #[schemars(skip)]
    pub keepalive_unspecified: bool,
    /// Edition 2: seconds of silence the flow must survive in the firewall's connection
    /// table (a UDP flow the device keeps open with sparse packets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<u32>,
    /// Edition 2: flows this one takes the place of wherever it applies (its conditions hold,
    /// the site keeps it): those then open nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaces: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub persistent: bool,
    /// The service on the flow's listening side has no access control of its own (the
    /// source says so): only the firewall restricts who reaches it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub unauthenticated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    /// Edition 2: the URL path the device requests (HTTP, WebSocket), e.g. `/mqtt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_path: Option<String>,
    /// Edition 2: how the device authenticates to the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    /// Edition 2: whether the flow may go through an HTTP(S) proxy. For a device that uses
    /// the site's proxy, a flow that can compiles to the leg to the proxy only.
    pub proxy: Option<Proxy>,
    /// Edition 2: the device's interfaces (`interfaces:` ids) the flow uses; empty: the one
    /// interface the profile declares, or (none declared) the device's only binding.
    #[serde(rename = "interface", default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Option<InterfaceRefSchema>")]
    pub interfaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ike: Option<Crypto>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub esp: Option<Crypto>,
}

impl Flow {
    /// Whether the flow belongs to `mode` (flows without modes belong to every mode).
    pub fn in_mode(&self, mode: Option<&str>) -> bool {
        match mode {
            None => true,
            Some(m) => self.modes.is_empty() || self.modes.iter().any(|x| x == m),
        }
    }

    /// The side that is not the device.
    pub fn peer(&self) -> &str {
        if self.from == DEVICE {
            &self.to
        } else {
            &self.from
        }
    }

    /// Notes on a flow for `show` and `doc`: what the second edition adds to a row.
    pub fn edition2_notes(&self) -> Vec<String> {
        let f = self;
        let mut notes = Vec::new();
        if f.keepalive_unspecified {
            notes.push("keepalive: interval unspecified".to_string());
        }
        if let Some(t) = f.idle_timeout {
            notes.push(format!("idle timeout {t}s"));
        }
        if !f.replaces.is_empty() {
            notes.push(format!("replaces {}", f.replaces.join(", ")));
        }
        if let Some(t) = &f.tls {
            if !t.alpn.is_empty() {
                notes.push(format!("ALPN {}", t.alpn.join(", ")));
            }
            if t.sni_required {
                notes.push("SNI required".to_string());
            }
            if t.client_cert {
                notes.push("client certificate (mutual TLS)".to_string());
            }
            if let Some(v) = &t.min_version {
                notes.push(format!("TLS >= {v}"));
            }
        }
        if let Some(p) = &f.url_path {
            notes.push(format!("path {p}"));
        }
        if let Some(a) = f.auth {
            notes.push(format!("auth {}", a.name()));
        }
        if let Some(p) = &f.proxy {
            let mut t = format!("HTTP proxy {}", p.http.name());
            if p.connect_only {
                t.push_str(", CONNECT only");
            }
            if let Some(a) = p.authenticated {
                t.push_str(&format!(", authenticated proxy {}", a.name()));
            }
            notes.push(t);
        }
        for c in &f.source {
            if let Some(t) = &c.truncated {
                let hides = if t.hides.is_empty() {
                    String::new()
                } else {
                    let names: Vec<&str> = t.hides.iter().map(|h| h.as_str()).collect();
                    format!(", hides {}", names.join(", "))
                };
                notes.push(format!(
                    "row cut in source {} ({}): shows only \"{}\"{hides}",
                    c.doc, c.reference, t.seen
                ));
            }
        }
        notes
    }

    /// Whether the device is the `from` side (ports are the peer's).
    pub fn outbound(&self) -> bool {
        self.from == DEVICE
    }
}

/// How a choice group's flows relate (edition 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChoicePolicy {
    /// At least one of the flows must work (the first edition's only meaning).
    #[default]
    Any,
    /// Exactly one: the site picks it (`choose:`), and only it is opened.
    One,
    /// The first that works, in the order listed (fallbacks): every one is opened unless the
    /// site picks one.
    Ordered,
}

impl ChoicePolicy {
    pub fn name(self) -> &'static str {
        match self {
            ChoicePolicy::Any => "any",
            ChoicePolicy::One => "one",
            ChoicePolicy::Ordered => "ordered",
        }
    }
}

fn is_any(p: &ChoicePolicy) -> bool {
    *p == ChoicePolicy::Any
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Alternative {
    pub id: String,
    /// `any` (default), `one` or `ordered`.
    #[serde(default, skip_serializing_if = "is_any")]
    pub policy: ChoicePolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Never empty.
    pub flows: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "CitationsSchema")]
    pub source: Vec<Citation>,
}

/// What the device exposes.
#[derive(Clone, Debug, PartialEq, Eq, JsonSchema)]
#[schemars(with = "ListensSchema")]
pub enum Listens {
    /// `none`: the device accepts no connection at all.
    Nothing,
    /// `unspecified`: the source does not say what the device exposes.
    Unspecified,
    Entries(Vec<Listen>),
}

impl Serialize for Listens {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Listens::Nothing => s.serialize_str("none"),
            Listens::Unspecified => s.serialize_str("unspecified"),
            Listens::Entries(e) => e.serialize(s),
        }
    }
}

/// Ports of one listen entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenPorts {
    /// An explicit statement: no port of this protocol is open.
    Closed,
    Ports(PortSpec),
}

impl Serialize for ListenPorts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ListenPorts::Closed => s.serialize_str("none"),
            ListenPorts::Ports(p) => p.serialize(s),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    #[schemars(with = "ProtocolSchema")]
    pub protocol: Protocol,
    #[schemars(with = "PortsSchema")]
    pub ports: ListenPorts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
    /// Edition 2: where the service binds; absent: every address of the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<Bind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "CitationsSchema")]
    pub source: Vec<Citation>,
}

impl Listen {
    /// Whether the source says the service binds only to loopback: it opens nothing on the
    /// network, and a scan that reaches it from the network refutes the profile.
    pub fn loopback_only(&self) -> bool {
        self.bind == Some(Bind::Loopback)
    }
}

/// Where a listener binds (edition 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Bind {
    /// Only the loopback address (127.0.0.1, ::1): reachable from the device itself only.
    Loopback,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NoteTopic {
    DnsTtl,
    Nat,
    TlsInspection,
    Keepalive,
    /// Edition 2: sources that contradict each other, each cited.
    Contradiction,
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Note {
    pub topic: NoteTopic,
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "CitationsSchema")]
    pub source: Vec<Citation>,
}

impl Alternative {
    /// The group's flows that exist in `mode` (all for `None`), in the order listed.
    pub fn flows_in<'a>(&'a self, p: &'a Profile, mode: Option<&'a str>) -> Vec<&'a str> {
        self.flows
            .iter()
            .filter(|id| p.flows_in(mode).any(|f| &&f.id == id))
            .map(String::as_str)
            .collect()
    }

    /// The group in words for `mode` (`None`: every mode), its flows in that mode only; `None`
    /// when none of its flows is in the mode. Shared by `show` and `doc`.
    pub fn sentence(&self, p: &Profile, mode: Option<&str>) -> Option<String> {
        let flows = self.flows_in(p, mode);
        if flows.is_empty() {
            return None;
        }
        Some(match self.policy {
            ChoicePolicy::Any => format!("at least one of {} must work", flows.join(", ")),
            ChoicePolicy::One => format!(
                "exactly one of {} is used; the site picks it (`choose: {{{}: …}}`)",
                flows.join(", "),
                self.id
            ),
            ChoicePolicy::Ordered => format!(
                "{}, tried in this order; all open unless the site picks one",
                flows.join(", else ")
            ),
        })
    }
}

impl Profile {
    pub fn endpoint(&self, id: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.id == id)
    }

    pub fn param(&self, id: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.id == id)
    }

    pub fn source_doc(&self, id: &str) -> Option<&SourceDoc> {
        self.sources.iter().find(|s| s.id == id)
    }

    /// The flows of one mode (all flows for `None`), in file order.
    pub fn flows_in<'a>(&'a self, mode: Option<&'a str>) -> impl Iterator<Item = &'a Flow> + 'a {
        self.flows.iter().filter(move |f| f.in_mode(mode))
    }

    pub fn has_mode(&self, mode: &str) -> bool {
        self.modes.iter().any(|m| m.id == mode)
    }

    pub fn interface(&self, id: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.id == id)
    }

    /// Whether `f` uses the device's interface `id`: the flow names it, or names none and
    /// `id` is the one interface the profile declares. (Validation refuses a flow that names
    /// none when several are declared.)
    pub fn flow_uses(&self, f: &Flow, id: &str) -> bool {
        if f.interfaces.is_empty() {
            self.interfaces.len() == 1 && self.interfaces[0].id == id
        } else {
            f.interfaces.iter().any(|i| i == id)
        }
    }
}

/// JSON Schema stand-in for a flow's `interface:`: one interface id, or a list of them.
#[derive(JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "InterfaceRef")]
#[allow(dead_code)]
enum InterfaceRefSchema {
    One(String),
    List(Vec<String>),
}

// JSON Schema stand-in for the `source:` fields (a `Vec<Citation>` in Rust), which files may
// write as one citation or as a list.
/// One citation `{doc, ref}`, or a list of them.
#[derive(JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Citations")]
#[allow(dead_code)]
enum CitationsSchema {
    One(Citation),
    List(Vec<Citation>),
}

// JSON Schema stand-in for [`Listens`] as written in files: a word, or a list of entries.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum ListensSchema {
    Word(ListensWord),
    Entries(Vec<Listen>),
}

#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum ListensWord {
    /// The device accepts no connection at all.
    None,
    /// The source does not say what the device exposes.
    Unspecified,
}

fn unspecified_word<S: serde::Serializer>(_: &bool, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("unspecified")
}

/// JSON Schema stand-in for `keepalive`: seconds, or `unspecified`.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum KeepaliveSchema {
    Seconds(#[schemars(range(min = 1))] u32),
    Unspecified(#[schemars(regex(pattern = r"^unspecified$"))] String),
}

/// JSON Schema stand-in for [`PortSpec`] as written in files.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum PortsSchema {
    /// One port.
    Port(#[schemars(range(min = 1, max = 65535))] u16),
    /// `"3001-3003"`, `"{param}"`, `unspecified`, (in listens) `none`, or (edition 2) a
    /// comma list of those items, `"443, 2195-2196, 5223"`.
    Text(
        #[schemars(regex(
            pattern = r"^((\d+(-\d+)?|\{[A-Za-z0-9][A-Za-z0-9_.-]*\})(\s*,\s*(\d+(-\d+)?|\{[A-Za-z0-9][A-Za-z0-9_.-]*\}))*|unspecified|none)$"
        ))]
        String,
    ),
    List(Vec<PortsItemSchema>),
}

#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum PortsItemSchema {
    Port(#[schemars(range(min = 1, max = 65535))] u16),
    Text(#[schemars(regex(pattern = r"^(\d+(-\d+)?|\{[A-Za-z0-9][A-Za-z0-9_.-]*\})$"))] String),
}

/// JSON Schema stand-in for [`Protocol`].
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum ProtocolSchema {
    /// An IANA protocol number.
    Number(u8),
    /// A name, a `{param}`, or `unspecified`.
    Name(
        #[schemars(regex(
            pattern = r"^(tcp|udp|sctp|icmp|icmpv6|esp|ah|gre|igmp|arp|unspecified|\{[A-Za-z0-9][A-Za-z0-9_.-]*\})$"
        ))]
        String,
    ),
}
