//! The JSON Schema of the site format (`portolan schema site`), for editors: a schema-only
//! mirror of [`crate::raw_site`], whose serde types keep source positions and so cannot derive
//! one. `tests/schema.rs` holds every good site and the examples against it, so the two cannot
//! drift apart silently.

#![allow(dead_code)]

use std::collections::BTreeMap;

use schemars::JsonSchema;

/// A site: one plant's zones, local services and devices bound to profiles.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Site")]
pub(crate) struct Site {
    /// Format edition of sites: 1.
    #[schemars(range(min = 1, max = 1))]
    portolan: u32,
    /// The site's identifier.
    site: String,
    #[serde(default)]
    description: Option<String>,
    zones: Vec<Zone>,
    #[serde(default)]
    services: Option<Services>,
    /// Files the site takes devices from besides `devices`, relative to the site file.
    #[serde(default)]
    inventory: Vec<Inventory>,
    #[serde(default)]
    devices: Vec<Device>,
    /// `portolan lint` findings the site accepts, each for a flow with a reason.
    #[serde(default)]
    accept: Vec<Accept>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct Zone {
    id: String,
    /// The firewall's interface towards the zone.
    #[serde(default)]
    interface: Option<String>,
    /// Addresses and prefixes; device addresses must lie inside.
    #[serde(default)]
    networks: Vec<String>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct Services {
    #[serde(default)]
    dns: Option<Service>,
    #[serde(default)]
    ntp: Option<Service>,
    #[serde(default)]
    dhcp: Option<Service>,
    /// The HTTP(S) proxy devices with `proxy: true` use.
    #[serde(default)]
    proxy: Option<ProxyService>,
}

/// The site's HTTP(S) proxy: where it listens and whether it asks for credentials.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct ProxyService {
    /// `firewall` (the proxy runs on this firewall) or its addresses.
    at: Service,
    #[schemars(range(min = 1, max = 65535))]
    port: u32,
    /// The proxy asks for credentials.
    #[serde(default)]
    authenticated: bool,
}

/// `firewall` (this firewall provides it) or a list of addresses.
#[derive(JsonSchema)]
#[serde(untagged)]
enum Service {
    Firewall(#[schemars(regex(pattern = r"^firewall$"))] String),
    Addresses(Vec<String>),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
enum Inventory {
    /// A CSV file: columns name, address (or prefix), profile, zone, and optionally mode,
    /// params, mac.
    Csv(String),
    Netbox(Netbox),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct Netbox {
    /// The JSON of `/api/dcim/devices/`.
    devices: String,
    /// The JSON of `/api/ipam/ip-addresses/`.
    #[serde(default)]
    ip_addresses: Option<String>,
    /// The zone of devices whose custom field `portolan_zone` is empty.
    #[serde(default)]
    zone: Option<String>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [
    {"required": ["zone", "addresses"]},
    {"required": ["interfaces"]}
]))]
struct Device {
    /// One device, or a group sharing a profile.
    id: String,
    /// A catalog id, or a profile file relative to the site.
    profile: String,
    /// Required when the profile has modes.
    #[serde(default)]
    mode: Option<String>,
    /// Required unless the device binds its profile's `interfaces`.
    #[serde(default)]
    zone: Option<String>,
    /// Addresses or prefixes; required unless the device binds its profile's `interfaces`.
    #[serde(default)]
    addresses: Vec<String>,
    /// A multi-homed device (its profile declares `interfaces`): each interface's address
    /// and zone, in place of `zone` and `addresses`.
    #[serde(default)]
    interfaces: BTreeMap<String, InterfaceBinding>,
    /// The device's MAC address, or the list of its group's.
    #[serde(default)]
    mac: Option<Macs>,
    /// Compared with the profile's `version` conditions.
    #[serde(default)]
    version: Option<String>,
    /// Values of the profile's params.
    #[serde(default)]
    params: BTreeMap<String, Value>,
    /// Peers of the profile's roles: addresses, prefixes, names, `*.domain`, `zone:ID`,
    /// `firewall`, `any`.
    #[serde(default)]
    bind: BTreeMap<String, Vec<String>>,
    /// The profile's features this site enables.
    #[serde(default)]
    features: Vec<String>,
    /// Per flow: switch it off, or supply what the source left `unspecified`.
    #[serde(default)]
    flows: BTreeMap<String, FlowSetting>,
    /// Per choice group of the profile (`alternatives`): the flow this device uses.
    #[serde(default)]
    choose: BTreeMap<String, String>,
    /// The device uses the site's proxy: flows its profile says can go through one open only
    /// the leg to the proxy.
    #[serde(default)]
    proxy: bool,
    #[serde(default)]
    description: Option<String>,
}

/// One interface of a multi-homed device: `address` (or a list under `addresses`) and
/// `zone`, optionally its MAC.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct InterfaceBinding {
    /// The interface's address or prefix.
    #[serde(default)]
    address: Option<String>,
    /// Addresses or prefixes (a group of devices).
    #[serde(default)]
    addresses: Vec<String>,
    /// The zone the interface sits in; its addresses must lie inside.
    zone: String,
    #[serde(default)]
    mac: Option<Macs>,
}

#[derive(JsonSchema)]
#[serde(untagged)]
enum Macs {
    One(String),
    List(Vec<String>),
}

/// A param value: a number, a text, or a list of ports and ranges.
#[derive(JsonSchema)]
#[serde(untagged)]
enum Value {
    Number(i64),
    Text(String),
    List(Vec<Item>),
}

#[derive(JsonSchema)]
#[serde(untagged)]
enum Item {
    Number(i64),
    Text(String),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct FlowSetting {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    protocol: Option<Item>,
    #[serde(default)]
    ports: Option<Value>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct Accept {
    /// A `portolan lint` code.
    code: String,
    /// `profile/flow`, or a flow id alone.
    flow: String,
    /// Narrows it to one device or group of the site.
    #[serde(default)]
    device: Option<String>,
    reason: String,
}
