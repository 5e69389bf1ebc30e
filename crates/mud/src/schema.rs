//! MUD files as typed serde structs, following the YANG modules and their JSON encoding:
//!
//! - `ietf-mud` — [RFC 8520 section 2.1](https://www.rfc-editor.org/rfc/rfc8520#section-2.1)
//!   (tree) and [section 8](https://www.rfc-editor.org/rfc/rfc8520#section-8) (module);
//! - `ietf-acldns` — [RFC 8520 section 11](https://www.rfc-editor.org/rfc/rfc8520#section-11);
//! - `ietf-access-control-list` and `ietf-packet-fields` —
//!   [RFC 8519 section 4](https://www.rfc-editor.org/rfc/rfc8519#section-4);
//! - JSON encoding — [RFC 7951](https://www.rfc-editor.org/rfc/rfc7951): member names of another
//!   module's nodes are qualified (`ietf-acldns:dst-dnsname`), `empty` leaves are `[null]`
//!   ([section 6.9](https://www.rfc-editor.org/rfc/rfc7951#section-6.9)), 8/16-bit integers are
//!   JSON numbers.
//!
//! Every container keeps the members it does not model in `other`, so that the importer can say
//! what it ignored instead of dropping it silently; the exporter never fills `other`.

use serde::de::{self, Deserializer};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Members a container holds that these structs do not model.
pub type Other = Map<String, Value>;

/// The top level of a MUD file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MudFile {
    #[serde(rename = "ietf-mud:mud")]
    pub mud: Mud,
    /// RFC 8519 section 4.1: `container acls`.
    #[serde(rename = "ietf-access-control-list:acls", default)]
    pub acls: Acls,
    #[serde(flatten)]
    pub other: Other,
}

/// `container mud` (RFC 8520 section 2.1, `grouping mud-grouping`). Member order is the
/// module's, so that `extensions` precedes the extension data it declares (section 3.7).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Mud {
    /// Always 1 (section 3.1).
    pub mud_version: u8,
    /// `inet:uri`; https (section 3.2).
    pub mud_url: String,
    /// `yang:date-and-time` (section 3.3).
    pub last_update: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mud_signature: Option<String>,
    /// Hours, 1..168, default 48 (section 3.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_validity: Option<u8>,
    pub is_supported: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systeminfo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfg_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware_rev: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_rev: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation: Option<String>,
    /// Names of the extensions the file uses (section 3.7), each 1..40 characters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<String>,
    /// Portolan's extension (see [`crate::ext`]); declared as `portolan` in `extensions`.
    #[serde(
        rename = "portolan:profile",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub portolan: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_device_policy: Option<Policy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_device_policy: Option<Policy>,
    #[serde(flatten)]
    pub other: Other,
}

/// `from-device-policy` / `to-device-policy` (RFC 8520 section 2.1, `grouping access-lists`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    #[serde(rename = "access-lists", default)]
    pub access_lists: AccessLists,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AccessLists {
    #[serde(rename = "access-list", default)]
    pub access_list: Vec<AclRef>,
    #[serde(flatten)]
    pub other: Other,
}

/// One entry of `access-list`: a leafref to an ACL's name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AclRef {
    pub name: String,
    #[serde(flatten)]
    pub other: Other,
}

/// `container acls` (RFC 8519 section 4.1).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Acls {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acl: Vec<Acl>,
    #[serde(flatten)]
    pub other: Other,
}

/// The ACL types a MUD file uses (RFC 8519 section 4.1, `identity acl-base` and derived).
pub const ACL_TYPES: &[&str] = &[
    "ipv4-acl-type",
    "ipv6-acl-type",
    "eth-acl-type",
    "mixed-eth-ipv4-acl-type",
    "mixed-eth-ipv6-acl-type",
    "mixed-eth-ipv4-ipv6-acl-type",
];

/// `list acl` (RFC 8519 section 4.1).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Acl {
    /// 1..64 characters.
    pub name: String,
    /// An identity from [`ACL_TYPES`], bare or qualified with `ietf-access-control-list:`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub aces: Aces,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Aces {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ace: Vec<Ace>,
    #[serde(flatten)]
    pub other: Other,
}

/// `list ace` (RFC 8519 section 4.1).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ace {
    /// 1..64 characters, unique within the ACL.
    pub name: String,
    #[serde(default)]
    pub matches: Matches,
    pub actions: Actions,
    #[serde(flatten)]
    pub other: Other,
}

/// `container actions` (RFC 8519 section 4.1). `forwarding` is an identityref: `accept`,
/// `drop` or `reject`, bare or qualified.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Actions {
    pub forwarding: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<String>,
    #[serde(flatten)]
    pub other: Other,
}

/// `container matches` (RFC 8519 section 4.1, choices l2/l3/l4), augmented by `ietf-mud`
/// with `mud` (RFC 8520 section 2.1).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Matches {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eth: Option<Eth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<Ipv4>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<Tcp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp: Option<Udp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<Icmp>,
    #[serde(
        rename = "ietf-mud:mud",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub mud: Option<MudMatch>,
    #[serde(flatten)]
    pub other: Other,
}

/// `container eth` (RFC 8519 section 4.2, `grouping acl-eth-header-fields`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Eth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_mac_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_mac_address: Option<String>,
    /// `eth:ethertype`, a uint16: a JSON number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ethertype: Option<u16>,
    #[serde(flatten)]
    pub other: Other,
}

/// `container ipv4` (RFC 8519 section 4.2, `acl-ip-header-fields` and
/// `acl-ipv4-header-fields`), augmented by `ietf-acldns` (RFC 8520 section 11).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Ipv4 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_ipv4_network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ipv4_network: Option<String>,
    #[serde(
        rename = "ietf-acldns:dst-dnsname",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dst_dnsname: Option<String>,
    #[serde(
        rename = "ietf-acldns:src-dnsname",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub src_dnsname: Option<String>,
    #[serde(flatten)]
    pub other: Other,
}

/// `container ipv6` (RFC 8519 section 4.2, `acl-ip-header-fields` and
/// `acl-ipv6-header-fields`), augmented by `ietf-acldns` (RFC 8520 section 11).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Ipv6 {
    /// The next header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_ipv6_network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ipv6_network: Option<String>,
    #[serde(
        rename = "ietf-acldns:dst-dnsname",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dst_dnsname: Option<String>,
    #[serde(
        rename = "ietf-acldns:src-dnsname",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub src_dnsname: Option<String>,
    #[serde(flatten)]
    pub other: Other,
}

/// `container tcp` (RFC 8519 section 4.1), augmented with `direction-initiated`
/// (RFC 8520 section 2.1).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Tcp {
    #[serde(
        rename = "ietf-mud:direction-initiated",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub direction_initiated: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_port: Option<PortMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_port: Option<PortMatch>,
    #[serde(flatten)]
    pub other: Other,
}

/// `container udp` (RFC 8519 section 4.1).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Udp {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_port: Option<PortMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_port: Option<PortMatch>,
    #[serde(flatten)]
    pub other: Other,
}

/// `container icmp` (RFC 8519 section 4.2, `grouping acl-icmp-header-fields`); also used for
/// ICMPv6 in IPv6 ACLs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Icmp {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u8>,
    #[serde(flatten)]
    pub other: Other,
}

/// `grouping port-range-or-operator` (RFC 8519 section 4.2): either `lower-port` and
/// `upper-port` (a range, no operator), or `operator` (`lte`, `gte`, `eq`, `neq`; default
/// `eq`) and `port`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PortMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(flatten)]
    pub other: Other,
}

impl PortMatch {
    /// `operator: eq` and `port`.
    pub fn eq(port: u16) -> PortMatch {
        PortMatch {
            operator: Some("eq".into()),
            port: Some(port),
            ..PortMatch::default()
        }
    }

    /// `lower-port` and `upper-port`, no operator.
    pub fn range(lo: u16, hi: u16) -> PortMatch {
        PortMatch {
            lower_port: Some(lo),
            upper_port: Some(hi),
            ..PortMatch::default()
        }
    }
}

/// `container mud` in an ACE's matches (RFC 8520 section 2.1 and sections 4.1–4.6): the MUD
/// abstractions that stand for addresses only the local network knows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct MudMatch {
    /// `inet:host`: devices whose MUD URL has this authority (section 4.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    /// Devices whose MUD URL has the same authority as this one's (section 4.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_manufacturer: Option<Empty>,
    /// `inet:uri`: devices with exactly this MUD URL (section 4.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The local networks (section 4.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_networks: Option<Empty>,
    /// `inet:uri` naming a class of controllers, e.g. `urn:ietf:params:mud:dns` (section 4.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
    /// The controllers configured for this MUD URL (section 4.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub my_controller: Option<Empty>,
    #[serde(flatten)]
    pub other: Other,
}

/// A YANG `empty` leaf, which RFC 7951 section 6.9 encodes as `[null]`. Only that form is
/// accepted here; the importer repairs other spellings first (with a warning).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Empty;

impl Serialize for Empty {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(1))?;
        seq.serialize_element(&())?;
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Empty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<Option<Value>>::deserialize(d)?;
        match v.as_slice() {
            [None] => Ok(Empty),
            _ => Err(de::Error::custom(
                "an empty leaf must be written [null] (RFC 7951 section 6.9)",
            )),
        }
    }
}

/// The two URNs registered for `controller` (RFC 8520 section 17.7).
pub const URN_DNS: &str = "urn:ietf:params:mud:dns";
pub const URN_NTP: &str = "urn:ietf:params:mud:ntp";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_example_parses_and_empty_leaves_round_trip() {
        let text = r#"{"ietf-mud:mud":{"mud-version":1,"mud-url":"https://x.example/a","last-update":"2019-01-28T11:20:51+01:00","is-supported":true},
            "ietf-access-control-list:acls":{"acl":[{"name":"a","type":"ipv4-acl-type","aces":{"ace":[
            {"name":"e","matches":{"ietf-mud:mud":{"local-networks":[null]}},"actions":{"forwarding":"accept"}}]}}]}}"#;
        let f: MudFile = serde_json::from_str(text).expect("parses");
        let m = f.acls.acl[0].aces.ace[0]
            .matches
            .mud
            .as_ref()
            .expect("mud match");
        assert_eq!(m.local_networks, Some(Empty));
        let out = serde_json::to_string(&f).expect("serializes");
        assert!(out.contains(r#""local-networks":[null]"#), "{out}");
        assert!(serde_json::from_str::<Empty>("[]").is_err());
    }
}
