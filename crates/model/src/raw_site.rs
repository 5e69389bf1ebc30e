//! The serde mirror of a site file, positions kept for diagnostics. `compile` checks it against
//! the devices' profiles and turns it into the policy IR.

use std::collections::BTreeMap;

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
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
    /// Files the site takes devices from besides `devices` (`inventory.rs`), relative to
    /// the site file.
    #[serde(default)]
    pub inventory: Vec<Spanned<RawInventory>>,
    /// Spanned so that an empty list can be pointed at (`no-devices`). May be left out when
    /// `inventory` gives the devices; the inventories' rows are appended here when loaded.
    #[serde(default = "no_devices")]
    pub devices: Spanned<Vec<RawDevice>>,
    /// `portolan lint` findings the site accepts, each for a flow with a reason: lint then
    /// reports the acceptance instead of the finding (docs/site-format.md, docs/lint.md).
    #[serde(default)]
    pub accept: Vec<Spanned<RawAccept>>,
}

/// One accepted lint finding: `{code, flow, device?, reason}`. `flow` is `profile/flow` or a
/// flow id alone; `device` narrows it to one device or group of the site.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccept {
    pub code: Spanned<String>,
    pub flow: Spanned<String>,
    #[serde(default)]
    pub device: Option<Spanned<String>>,
    pub reason: Spanned<String>,
}

fn no_devices() -> Spanned<Vec<RawDevice>> {
    Spanned::new(
        Vec::new(),
        serde_saphyr::Location::UNKNOWN,
        serde_saphyr::Location::UNKNOWN,
    )
}

/// One inventory file of a site: `{csv: FILE}` or `{netbox: {devices: FILE, ...}}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum RawInventory {
    /// Columns name, address (or prefix), profile, zone, and optionally mode, params, mac.
    Csv(Spanned<String>),
    Netbox(RawNetbox),
}

/// A NetBox export: the JSON of `/api/dcim/devices/` and, optionally, of
/// `/api/ipam/ip-addresses/` for the addresses assigned to the devices' interfaces.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetbox {
    pub devices: Spanned<String>,
    #[serde(default)]
    pub ip_addresses: Option<Spanned<String>>,
    /// The zone of devices whose custom field `portolan_zone` is empty.
    #[serde(default)]
    pub zone: Option<Spanned<String>>,
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
    /// The HTTP(S) proxy the site's devices may be configured with (`proxy: true` on a
    /// device): flows whose profile says they can use a proxy then go through it.
    #[serde(default)]
    pub proxy: Option<Spanned<RawProxyService>>,
}

/// `proxy: {at: firewall | [addresses], port: 3128, authenticated: false}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProxyService {
    pub at: Spanned<RawService>,
    pub port: Spanned<i64>,
    /// The proxy asks its clients for credentials: flows whose profile says
    /// `authenticated: unsupported` then keep their direct path.
    #[serde(default)]
    pub authenticated: bool,
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
    /// Required unless the device binds its profile's `interfaces`.
    #[serde(default)]
    pub zone: Option<Spanned<String>>,
    #[serde(default)]
    pub addresses: Vec<Spanned<String>>,
    /// A multi-homed device (its profile declares `interfaces`): each interface's own
    /// address and zone, in place of the device's `zone` and `addresses`.
    #[serde(default)]
    pub interfaces: BTreeMap<String, Spanned<RawInterfaceBinding>>,
    /// The device's link-layer address, or the list of its group's.
    #[serde(default)]
    pub mac: Option<Spanned<RawMacs>>,
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
    /// The flow picked in each of the profile's choice groups (`group: flow`): the group's
    /// other flows open nothing. Required for groups of `policy: one`.
    #[serde(default)]
    pub choose: BTreeMap<String, Spanned<String>>,
    /// The device's HTTP(S) client uses the site's proxy (`services: {proxy: ...}`): its
    /// flows that can go through a proxy open only the leg to the proxy.
    #[serde(default)]
    pub proxy: Option<Spanned<bool>>,
    #[serde(default)]
    pub description: Option<String>,
}

/// One interface of a multi-homed device: its address (or prefix, or a list under
/// `addresses`), its zone, and optionally its MAC.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInterfaceBinding {
    #[serde(default)]
    pub address: Option<Spanned<String>>,
    #[serde(default)]
    pub addresses: Vec<Spanned<String>>,
    pub zone: Spanned<String>,
    #[serde(default)]
    pub mac: Option<Spanned<RawMacs>>,
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

/// `mac:` — one MAC address, or a list of them each with its own position.
#[derive(Clone, Debug, PartialEq)]
pub enum RawMacs {
    One(String),
    List(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for RawMacs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawMacs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a MAC address such as \"02:00:5e:10:00:01\", or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawMacs, E> {
                Ok(RawMacs::One(v.to_string()))
            }
            // A YAML reader may take an unquoted all-digit MAC for a number; keep its text so
            // that the check names it.
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawMacs, E> {
                Ok(RawMacs::One(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawMacs, E> {
                Ok(RawMacs::One(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawMacs, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<Scalar>>()? {
                    items.push(Spanned::new(
                        item.value.to_string(),
                        item.referenced,
                        item.defined,
                    ));
                }
                Ok(RawMacs::List(items))
            }
        }
        d.deserialize_any(V)
    }
}
