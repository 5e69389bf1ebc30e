//! The serde mirror of a site file, positions kept for diagnostics. `compile` checks it against
//! the devices' profiles and turns it into the policy IR.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::raw::{RawPorts, Scalar, Spanned};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    pub portolan: Spanned<i64>,
    pub site: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub zones: Vec<RawZone>,
    #[serde(default)]
    pub services: RawServices,
    /// Spanned so that an empty list can be pointed at (`no-devices`).
    pub devices: Spanned<Vec<RawDevice>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZone {
    pub id: Spanned<String>,
    #[serde(default)]
    pub interface: Option<Spanned<String>>,
    #[serde(default)]
    pub networks: Vec<Spanned<String>>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServices {
    #[serde(default)]
    pub dns: Option<Spanned<RawService>>,
    #[serde(default)]
    pub ntp: Option<Spanned<RawService>>,
    #[serde(default)]
    pub dhcp: Option<Spanned<RawService>>,
}

/// `firewall` (this firewall provides it) or a list of addresses.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum RawService {
    Word(String),
    Addresses(Vec<String>),
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDevice {
    pub id: Spanned<String>,
    pub profile: Spanned<String>,
    #[serde(default)]
    pub mode: Option<Spanned<String>>,
    pub zone: Spanned<String>,
    pub addresses: Vec<Spanned<String>>,
    #[serde(default)]
    pub version: Option<Spanned<String>>,
    #[serde(default)]
    pub params: BTreeMap<String, Spanned<RawPorts>>,
    #[serde(default)]
    pub bind: BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub features: Vec<Spanned<String>>,
    #[serde(default)]
    pub flows: BTreeMap<String, Spanned<RawFlowSetting>>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Per-flow site settings: switch an optional flow off, supply what the profile left
/// `unspecified`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFlowSetting {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub protocol: Option<Spanned<Scalar>>,
    #[serde(default)]
    pub ports: Option<Spanned<RawPorts>>,
}
