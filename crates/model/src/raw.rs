//! The serde mirror of a profile file: every field as written, with source positions kept
//! (`Spanned`) where validation may need to point at it. Nothing here is checked beyond the
//! YAML shape and unknown fields; `validate` turns it into a typed [`crate::Profile`].

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
pub use serde_saphyr::Spanned;

/// A YAML scalar that may be written as a number or a string (`443`, `"3001-3003"`).
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    Int(i64),
    Str(String),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Str(s) => f.write_str(s),
        }
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number or a string")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Int(i64::try_from(v).unwrap_or(i64::MAX)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Str(v))
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// `ports:` — one scalar, or a list of scalars each with its own position.
#[derive(Clone, Debug, PartialEq)]
pub enum RawPorts {
    One(Scalar),
    List(Vec<Spanned<Scalar>>),
}

impl<'de> Deserialize<'de> for RawPorts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawPorts;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a port, a range \"a-b\", a \"{param}\", `unspecified`, or a list")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawPorts, E> {
                Ok(RawPorts::One(Scalar::Int(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawPorts, E> {
                ScalarVisitor.visit_u64(v).map(RawPorts::One)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawPorts, E> {
                Ok(RawPorts::One(Scalar::Str(v.to_string())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawPorts, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<Scalar>>()? {
                    items.push(item);
                }
                Ok(RawPorts::List(items))
            }
        }
        d.deserialize_any(V)
    }
}

/// A citation: which source document, and where in it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawCitation {
    pub doc: Spanned<String>,
    #[serde(rename = "ref")]
    pub reference: String,
    /// Edition 2: the source cuts the cited row; what it shows, and which values the cut
    /// hides.
    #[serde(default)]
    pub truncated: Option<Spanned<RawTruncated>>,
}

/// `truncated: {seen, hides}` on a citation (edition 2).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawTruncated {
    /// The row's text exactly as the source shows it, cut included.
    pub seen: Spanned<String>,
    /// The flow's values the cut hides: `protocol`, `ports`, `src_ports`, `keepalive`.
    #[serde(default)]
    pub hides: Vec<Spanned<String>>,
}

/// `source:` — one citation or a list of them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawCitations(pub Vec<RawCitation>);

impl<'de> Deserialize<'de> for RawCitations {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawCitations;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a citation {doc, ref} or a list of them")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawCitations, A::Error> {
                let c = RawCitation::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawCitations(vec![c]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawCitations, A::Error> {
                let mut v = Vec::new();
                while let Some(c) = seq.next_element::<RawCitation>()? {
                    v.push(c);
                }
                Ok(RawCitations(v))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    pub portolan: Spanned<i64>,
    pub id: Spanned<String>,
    pub vendor: String,
    pub product: String,
    #[serde(default)]
    pub versions: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub sources: Vec<RawSource>,
    #[serde(default)]
    pub modes: Vec<RawMode>,
    #[serde(default)]
    pub features: Vec<RawFeature>,
    #[serde(default)]
    pub params: Vec<RawParam>,
    #[serde(default)]
    pub endpoints: Vec<RawEndpoint>,
    pub flows: Vec<RawFlow>,
    #[serde(default)]
    pub alternatives: Vec<RawAlternative>,
    pub listens: Spanned<RawListens>,
    #[serde(default)]
    pub notes: Vec<RawNote>,
    /// Edition 2: what the device needs that is not a flow (addressing, link, credentials,
    /// DNS), each cited.
    #[serde(default)]
    pub requirements: Vec<RawRequirement>,
    /// Edition 2: the device's own network interfaces (a multi-homed device), each cited;
    /// flows say which one they use (`interface:`).
    #[serde(default)]
    pub interfaces: Vec<RawInterface>,
}

/// One of the device's network interfaces (edition 2): `{id, description, source}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInterface {
    pub id: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub source: RawCitations,
}

/// A flow's `interface:` (edition 2): one interface id, or a list of them, each with its
/// own position.
#[derive(Clone, Debug, PartialEq)]
pub struct RawNames(pub Vec<Spanned<String>>);

impl<'de> Deserialize<'de> for RawNames {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The single-name form takes the position of the field, which the caller holds
        // (`Spanned<RawNames>`): its items get `Location::UNKNOWN`, replaced there.
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawNames;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an interface id, or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawNames, E> {
                Ok(RawNames(vec![Spanned::new(
                    v.to_string(),
                    serde_saphyr::Location::UNKNOWN,
                    serde_saphyr::Location::UNKNOWN,
                )]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNames, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<String>>()? {
                    items.push(item);
                }
                Ok(RawNames(items))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequirement {
    pub kind: Spanned<String>,
    pub text: String,
    /// addressing: DHCP options the device needs (3 router, 6 DNS, 42 NTP, …).
    #[serde(default)]
    pub dhcp_options: Vec<Spanned<i64>>,
    /// dns: names that must resolve.
    #[serde(default)]
    pub names: Vec<Spanned<String>>,
    /// dns: resolvers the device uses whatever DHCP says.
    #[serde(default)]
    pub resolvers: Vec<Spanned<String>>,
    #[serde(default)]
    pub source: RawCitations,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub id: Spanned<String>,
    pub title: String,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    /// Edition 2: the document's date, `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    #[serde(default)]
    pub date: Option<Spanned<String>>,
    /// Edition 2: the document's revision or version, as it names itself.
    #[serde(default)]
    pub revision: Option<Spanned<String>>,
    /// Edition 2: from whose side the document's tables are written.
    #[serde(default)]
    pub perspective: Option<Spanned<String>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMode {
    pub id: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub source: RawCitations,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeature {
    pub id: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub source: RawCitations,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawParam {
    pub id: Spanned<String>,
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    #[serde(default)]
    pub values: Vec<Spanned<Scalar>>,
    #[serde(default)]
    pub default: Option<Spanned<RawPorts>>,
    /// Edition 2, port params: the documented range or set a site's value must lie in.
    #[serde(default)]
    pub range: Option<Spanned<RawPorts>>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub source: RawCitations,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    pub id: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub hosts: Vec<Spanned<String>>,
    #[serde(default)]
    pub domains: Vec<Spanned<String>>,
    #[serde(default)]
    pub addresses: Vec<Spanned<String>>,
    #[serde(default)]
    pub addresses_volatile: bool,
    #[serde(default)]
    pub service: Option<Spanned<String>>,
    #[serde(default)]
    pub role: Option<Spanned<bool>>,
    /// Edition 2: a peer the device learns at run time; the site binds it, as a role.
    #[serde(default)]
    pub discovered: Option<Spanned<RawDiscovered>>,
    /// Edition 2: `segment: true`, the hosts on the device's own segment.
    #[serde(default)]
    pub segment: Option<Spanned<bool>>,
    #[serde(default)]
    pub source: RawCitations,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawDiscovered {
    /// `srv` | `provisioning` | `dhcp-option`.
    pub via: Spanned<String>,
    /// srv: the record's owner name, `_service._proto.domain`.
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    /// dhcp-option: the option's code (42: NTP servers, RFC 2132 section 8.3).
    #[serde(default)]
    pub option: Option<Spanned<i64>>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawCondition {
    #[serde(default)]
    pub feature: Option<Spanned<String>>,
    #[serde(default)]
    pub version: Option<Spanned<String>>,
    #[serde(default)]
    pub region: Option<Spanned<String>>,
    /// Edition 2: holds when the inner condition does not.
    #[serde(default)]
    pub not: Option<Box<Spanned<RawCondition>>>,
    /// Edition 2: holds when at least one of the list does.
    #[serde(default)]
    pub any: Option<Spanned<Vec<Spanned<RawCondition>>>>,
    /// Edition 2: holds when every one of the list does.
    #[serde(default)]
    pub all: Option<Spanned<Vec<Spanned<RawCondition>>>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInside {
    pub flow: Spanned<String>,
    #[serde(default)]
    pub port: Option<Spanned<i64>>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    #[serde(default)]
    pub expected_issuer: Option<String>,
    #[serde(default)]
    pub inspection: Option<Spanned<String>>,
    #[serde(default)]
    pub versions: Vec<String>,
    #[serde(default)]
    pub sni: Option<String>,
    #[serde(default)]
    pub sni_required: Option<Spanned<bool>>,
    #[serde(default)]
    pub alpn: Vec<Spanned<String>>,
    #[serde(default)]
    pub client_cert: Option<Spanned<bool>>,
    #[serde(default)]
    pub min_version: Option<Spanned<String>>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawProxy {
    /// `supported` | `unsupported`.
    pub http: Spanned<String>,
    #[serde(default)]
    pub connect_only: bool,
    #[serde(default)]
    pub authenticated: Option<Spanned<String>>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawCrypto {
    #[serde(default)]
    pub versions: Vec<Spanned<i64>>,
    /// Each option with its position, so that a finding about one (`lint`) points at it.
    #[serde(default)]
    pub proposals: Vec<Spanned<String>>,
    #[serde(default)]
    pub encryption: Vec<Spanned<String>>,
    #[serde(default)]
    pub integrity: Vec<Spanned<String>>,
    #[serde(default)]
    pub dh_groups: Vec<Spanned<i64>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFlow {
    pub id: Spanned<String>,
    #[serde(default)]
    pub modes: Vec<Spanned<String>>,
    pub from: Spanned<String>,
    pub to: Spanned<String>,
    pub initiation: Spanned<String>,
    pub protocol: Spanned<Scalar>,
    #[serde(default)]
    pub ports: Option<Spanned<RawPorts>>,
    #[serde(default)]
    pub src_ports: Option<Spanned<RawPorts>>,
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub app: Option<String>,
    #[serde(default)]
    pub from_app: Option<String>,
    #[serde(default)]
    pub to_app: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub source: Option<RawCitations>,
    #[serde(default)]
    pub conditions: Vec<Spanned<RawCondition>>,
    #[serde(default)]
    pub inside: Option<Spanned<RawInside>>,
    #[serde(default)]
    pub cast: Option<Spanned<String>>,
    #[serde(default)]
    pub family: Option<Spanned<String>>,
    #[serde(default)]
    pub group: Option<Spanned<String>>,
    #[serde(default)]
    pub icmp_type: Option<Spanned<String>>,
    /// Seconds, or `unspecified` (edition 2).
    #[serde(default)]
    pub keepalive: Option<Spanned<Scalar>>,
    /// Edition 2: seconds of silence the flow must survive in the firewall's state table.
    #[serde(default)]
    pub idle_timeout: Option<Spanned<i64>>,
    /// Edition 2: flows this one takes the place of where it applies.
    #[serde(default)]
    pub replaces: Vec<Spanned<String>>,
    #[serde(default)]
    pub persistent: bool,
    /// The service on the flow's listening side has no access control of its own.
    #[serde(default)]
    pub unauthenticated: bool,
    #[serde(default)]
    pub tls: Option<Spanned<RawTls>>,
    /// Edition 2: the URL path the device requests.
    #[serde(default)]
    pub url_path: Option<Spanned<String>>,
    /// Edition 2: how the device authenticates.
    #[serde(default)]
    pub auth: Option<Spanned<String>>,
    /// Edition 2: whether and how the flow may go through an HTTP(S) proxy.
    #[serde(default)]
    pub proxy: Option<Spanned<RawProxy>>,
    /// Edition 2: which of the device's `interfaces` the flow uses (one id or a list).
    #[serde(default)]
    pub interface: Option<Spanned<RawNames>>,
    #[serde(default)]
    pub ike: Option<RawCrypto>,
    #[serde(default)]
    pub esp: Option<RawCrypto>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlternative {
    pub id: Spanned<String>,
    /// Edition 2: `any` (at least one, the default), `one` (exactly one, the site picks) or
    /// `ordered` (the first that works, in the order listed).
    #[serde(default)]
    pub policy: Option<Spanned<String>>,
    #[serde(default)]
    pub description: Option<String>,
    pub flows: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub source: RawCitations,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListen {
    pub protocol: Spanned<Scalar>,
    pub ports: Spanned<RawPorts>,
    #[serde(default)]
    pub flow: Option<Spanned<String>>,
    /// Edition 2: `loopback` — the vendor says the service binds only to the loopback
    /// address, so nothing on the network reaches it.
    #[serde(default)]
    pub bind: Option<Spanned<String>>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub source: RawCitations,
}

/// `listens:` — the word `none`, or a list of entries.
#[derive(Clone, Debug)]
pub enum RawListens {
    Word(String),
    List(Vec<RawListen>),
}

impl<'de> Deserialize<'de> for RawListens {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawListens;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`none` or a list of listen entries")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawListens, E> {
                Ok(RawListens::Word(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawListens, A::Error> {
                let mut v = Vec::new();
                while let Some(c) = seq.next_element::<RawListen>()? {
                    v.push(c);
                }
                Ok(RawListens::List(v))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNote {
    pub topic: Spanned<String>,
    pub text: String,
    #[serde(default)]
    pub source: RawCitations,
}
