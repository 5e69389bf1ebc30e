//! What the site and the profiles state, read independently of the policy IR: the ground the
//! adversarial probes ([`crate::attack`]) stand on.
//!
//! The IR is what the back ends compile; an expectation derived from it agrees with the
//! emitted ruleset even when the IR is wider than the site meant. So the lab reads the site
//! file a second time, with its own lenient mirror (only the fields it needs, everything else
//! ignored), and keeps the facts an adversary's packet is judged by:
//!
//! - which zone every address belongs to: a device's addresses to its zone, any other address
//!   to the zone whose networks hold it;
//! - what each device binds each endpoint to (`bind:` as written: addresses, prefixes,
//!   `zone:ID`, names, `any`, `firewall`), and the addresses its profile names itself;
//! - the device's MAC addresses (`mac:`), params and per-flow port settings as written;
//! - the ports a device's profile states for a protocol, params resolved from the site or the
//!   profile's default.
//!
//! Zones, device ids, addresses and profiles are taken from the policy, which copies them
//! unchanged from the site; bindings, params and MACs are not in the policy at all.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use portolan_model::ir::{Policy, PortRange};
use portolan_model::ports::parse_item;
use portolan_model::{Cast, Flow, Initiation, ParamValue, PortItem, PortSpec, Profile};
use serde::Deserialize;

use crate::error::{Error, Result};

/// A MAC address.
pub type Mac = [u8; 6];

/// `aa:bb:cc:dd:ee:ff` (or with `-`), case-insensitive.
pub fn parse_mac(s: &str) -> Option<Mac> {
    let parts: Vec<&str> = s.trim().split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut m = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return None;
        }
        m[i] = u8::from_str_radix(p, 16).ok()?;
    }
    Some(m)
}

pub fn show_mac(m: &Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

// ---- the lenient mirror of a site file --------------------------------------------------

#[derive(Deserialize)]
struct SiteDoc {
    #[serde(default)]
    devices: Vec<DeviceDoc>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Int(i64),
    Str(String),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Int(i) => i.to_string(),
            Scalar::Str(s) => s.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrList {
    One(Scalar),
    List(Vec<Scalar>),
}

impl OneOrList {
    fn texts(&self) -> Vec<String> {
        match self {
            OneOrList::One(s) => vec![s.text()],
            OneOrList::List(l) => l.iter().map(Scalar::text).collect(),
        }
    }
}

#[derive(Deserialize)]
struct FlowDoc {
    #[serde(default)]
    ports: Option<OneOrList>,
}

#[derive(Deserialize)]
struct InterfaceDoc {
    #[serde(default)]
    mac: Option<OneOrList>,
}

#[derive(Deserialize)]
struct DeviceDoc {
    id: String,
    #[serde(default)]
    mac: Option<OneOrList>,
    /// A multi-homed device's interfaces, each with its own MAC.
    #[serde(default)]
    interfaces: BTreeMap<String, InterfaceDoc>,
    #[serde(default)]
    params: BTreeMap<String, OneOrList>,
    #[serde(default)]
    bind: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    flows: BTreeMap<String, FlowDoc>,
}

// ---- facts --------------------------------------------------------------------------------

/// What a site binds one endpoint to, as written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Binding {
    /// Addresses and prefixes, `zone:ID` expanded to the zone's networks.
    pub prefixes: Vec<IpNet>,
    /// `zone:ID` items.
    pub zones: Vec<String>,
    /// Hostnames and wildcard domains.
    pub names: Vec<String>,
    pub any: bool,
    pub firewall: bool,
}

/// One device or group of the site.
#[derive(Clone, Debug)]
pub struct Device {
    pub id: String,
    /// The site's device id (`id` is `DEVICE.INTERFACE` for one interface of a multi-homed
    /// device).
    pub device: String,
    /// The profile's interface this is, for a multi-homed device: only that interface's
    /// flows are its own.
    pub interface: Option<String>,
    pub zone: String,
    pub addresses: Vec<IpNet>,
    pub profile: Option<Profile>,
    pub mode: Option<String>,
    pub macs: Vec<Mac>,
    pub bind: BTreeMap<String, Binding>,
    /// Params as written at the site: id → items (`443`, `3001-3003`, `us-east-1`).
    pub params: BTreeMap<String, Vec<String>>,
    /// Per-flow `ports:` the site supplies.
    pub flow_ports: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// Zones in site order: id and networks.
    pub zones: Vec<(String, Vec<IpNet>)>,
    pub devices: Vec<Device>,
    /// The site file was read: bindings, params and MACs are known (else only what the
    /// policy copies from it, and no probe may rest on a binding).
    pub from_site: bool,
}

fn ranges(items: &[String]) -> Vec<PortRange> {
    let mut v = Vec::new();
    for t in items.iter().flat_map(|t| t.split(',')) {
        match parse_item(t) {
            Ok(PortItem::Single(p)) => v.push(PortRange { lo: p, hi: p }),
            Ok(PortItem::Range(a, b)) => v.push(PortRange { lo: a, hi: b }),
            _ => {}
        }
    }
    v
}

fn spec_ranges(spec: &PortSpec, param: &dyn Fn(&str) -> Vec<PortRange>) -> Vec<PortRange> {
    match spec {
        PortSpec::List(items) => items
            .iter()
            .flat_map(|i| match i {
                PortItem::Single(p) => vec![PortRange { lo: *p, hi: *p }],
                PortItem::Range(a, b) => vec![PortRange { lo: *a, hi: *b }],
                PortItem::Param(id) => param(id),
            })
            .collect(),
        _ => Vec::new(),
    }
}

pub fn in_ranges(port: u16, r: &[PortRange]) -> bool {
    r.iter().any(|x| x.lo <= port && port <= x.hi)
}

impl Facts {
    /// Facts from the policy alone: zones and device addresses, no bindings, params or MACs.
    pub fn from_policy(policy: &Policy) -> Self {
        Facts {
            zones: policy
                .zones
                .iter()
                .map(|z| (z.id.clone(), z.networks.clone()))
                .collect(),
            devices: policy
                .groups
                .iter()
                .map(|g| Device {
                    id: g.id.clone(),
                    device: g.device().to_string(),
                    interface: g.interface.clone(),
                    zone: g.zone.clone(),
                    addresses: g.addresses.clone(),
                    profile: policy.profiles.get(&g.profile).cloned(),
                    mode: g.mode.clone(),
                    macs: Vec::new(),
                    bind: BTreeMap::new(),
                    params: BTreeMap::new(),
                    flow_ports: BTreeMap::new(),
                })
                .collect(),
            from_site: false,
        }
    }

    /// Facts from the site file's text (already validated by the compiler) and its policy.
    pub fn from_site(text: &str, policy: &Policy) -> Result<Self> {
        let doc: SiteDoc = serde_saphyr::from_str(text)
            .map_err(|e| Error::Plan(format!("the site file cannot be read again: {e}")))?;
        let mut facts = Facts::from_policy(policy);
        facts.from_site = true;
        for d in doc.devices {
            let zones = facts.zones.clone();
            // A multi-homed device is one entry per interface, each taking the device's
            // params and bindings and its own interface's MAC.
            for dev in facts.devices.iter_mut().filter(|x| x.device == d.id) {
                let mac = match &dev.interface {
                    Some(i) => d.interfaces.get(i).and_then(|x| x.mac.as_ref()),
                    None => d.mac.as_ref(),
                };
                device_facts(dev, &d, mac, &zones)?;
            }
        }
        Ok(facts)
    }

    pub fn device(&self, id: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.id == id)
    }

    /// The zone an address belongs to: the zone of the device that has it, else the zone
    /// whose networks hold it.
    pub fn zone_of(&self, a: IpAddr) -> Option<&str> {
        if let Some(d) = self
            .devices
            .iter()
            .find(|d| d.addresses.iter().any(|n| n.contains(&a)))
        {
            return Some(d.zone.as_str());
        }
        self.zones
            .iter()
            .find(|(_, nets)| nets.iter().any(|n| n.contains(&a)))
            .map(|(id, _)| id.as_str())
    }

    /// Whether `a` is an address of some device of the site.
    pub fn is_device(&self, a: IpAddr) -> bool {
        self.devices
            .iter()
            .any(|d| d.addresses.iter().any(|n| n.contains(&a)))
    }
}

/// The site's own words about one device (or one interface of it): its MAC, params, per-flow
/// ports and bindings.
fn device_facts(
    dev: &mut Device,
    d: &DeviceDoc,
    mac: Option<&OneOrList>,
    zones: &[(String, Vec<IpNet>)],
) -> Result<()> {
    for m in mac.into_iter().flat_map(OneOrList::texts) {
        let mac = parse_mac(&m)
            .ok_or_else(|| Error::Plan(format!("device {}: `{m}` is not a MAC address", d.id)))?;
        dev.macs.push(mac);
    }
    dev.params = d
        .params
        .iter()
        .map(|(k, v)| (k.clone(), v.texts()))
        .collect();
    dev.flow_ports = d
        .flows
        .iter()
        .filter_map(|(k, f)| f.ports.as_ref().map(|p| (k.clone(), p.texts())))
        .collect();
    for (endpoint, items) in &d.bind {
        let mut b = Binding::default();
        for item in items {
            let t = item.trim();
            if t == "any" {
                b.any = true;
            } else if t == "firewall" {
                b.firewall = true;
            } else if let Some(z) = t.strip_prefix("zone:") {
                b.zones.push(z.to_string());
                if let Some((_, nets)) = zones.iter().find(|(id, _)| id == z) {
                    b.prefixes.extend(nets.iter().copied());
                }
            } else if let Ok(n) = t.parse::<IpNet>() {
                b.prefixes.push(n);
            } else if let Ok(a) = t.parse::<IpAddr>() {
                b.prefixes.push(IpNet::from(a));
            } else {
                b.names.push(t.to_ascii_lowercase());
            }
        }
        dev.bind.insert(endpoint.clone(), b);
    }
    Ok(())
}

impl Device {
    fn flows(&self) -> impl Iterator<Item = &Flow> {
        self.profile.iter().flat_map(move |p| {
            p.flows_in(self.mode.as_deref())
                .filter(move |f| self.interface.as_ref().is_none_or(|i| p.flow_uses(f, i)))
        })
    }

    /// The id of the device's profile (empty when it is unknown).
    pub fn profile_id(&self) -> &str {
        self.profile.as_ref().map_or("", |p| p.id.as_str())
    }

    /// The first source port a flow states, if any.
    pub fn flow_src_port(&self, f: &Flow) -> Option<u16> {
        spec_ranges(&f.src_ports, &|id| self.param_ranges(id))
            .first()
            .map(|r| r.lo)
    }

    /// A param's port ranges: the site's value, else the profile's default.
    pub fn param_ranges(&self, id: &str) -> Vec<PortRange> {
        if let Some(v) = self.params.get(id) {
            return ranges(v);
        }
        self.documented_ranges(id)
    }

    /// A param's port ranges as the profile documents them (its default).
    pub fn documented_ranges(&self, id: &str) -> Vec<PortRange> {
        match self
            .profile
            .as_ref()
            .and_then(|p| p.param(id))
            .and_then(|p| p.default.as_ref())
        {
            Some(ParamValue::Ports(spec)) => spec_ranges(spec, &|_| Vec::new()),
            Some(ParamValue::Text(t)) => ranges(std::slice::from_ref(t)),
            None => Vec::new(),
        }
    }

    /// The destination ports of one flow, params and site settings resolved.
    pub fn flow_ranges(&self, f: &Flow) -> Vec<PortRange> {
        if let Some(p) = self.flow_ports.get(&f.id) {
            return ranges(p);
        }
        spec_ranges(&f.ports, &|id| self.param_ranges(id))
    }

    /// Every port the device's profile states for `protocol` in a unicast flow, either
    /// direction, whatever its peer or conditions (a superset: what a negative must avoid).
    pub fn stated_unicast(&self, protocol: u8) -> Vec<PortRange> {
        self.flows()
            .filter(|f| f.cast == Cast::Unicast)
            .filter(|f| {
                f.protocol.number() == Some(protocol) || f.protocol.number().is_none()
                // a param or unspecified protocol may be anything
            })
            .flat_map(|f| {
                let mut v = self.flow_ranges(f);
                v.extend(spec_ranges(&f.src_ports, &|id| self.param_ranges(id)));
                v
            })
            .collect()
    }

    /// Whether every port the device's flows state is known: no `unspecified` ports the site
    /// did not supply, no param without a site value or a default.
    pub fn ports_known(&self) -> bool {
        self.flows().all(|f| {
            let spec_known = |spec: &PortSpec| match spec {
                PortSpec::Unspecified => self.flow_ports.contains_key(&f.id),
                _ => spec.params().all(|id| !self.param_ranges(id).is_empty()),
            };
            spec_known(&f.ports) && spec_known(&f.src_ports)
        })
    }

    /// The device's flows a peer may open (initiation `peer` or `either`).
    pub fn flows_opened_by_peers(&self) -> impl Iterator<Item = &Flow> {
        self.flows()
            .filter(|f| f.initiation != Initiation::Device && f.cast == Cast::Unicast)
    }

    /// The device's flows sent to a broadcast or multicast address.
    pub fn group_flows(&self) -> impl Iterator<Item = &Flow> {
        self.flows().filter(|f| f.cast != Cast::Unicast)
    }

    /// The profile flow behind a `profile/flow` provenance.
    pub fn flow(&self, provenance: &str) -> Option<&Flow> {
        let p = self.profile.as_ref()?;
        let id = provenance.strip_prefix(&format!("{}/", p.id))?;
        p.flows.iter().find(|f| f.id == id)
    }

    /// Whether a flow of the device lets peer `a` open `protocol` to `port` of the device: a
    /// peer- or either-initiated flow of that protocol (or one the profile leaves to the site)
    /// and port, whose endpoint the site binds to `a` (or `any`), or whose profile addresses
    /// hold `a`. Conditions are ignored: a superset, what a negative must avoid.
    pub fn lets_open(&self, a: IpAddr, protocol: u8, port: Option<u16>) -> bool {
        let Some(p) = &self.profile else {
            return true;
        };
        self.flows()
            .filter(|f| f.initiation != Initiation::Device)
            .filter(|f| f.protocol.number().is_none_or(|n| n == protocol))
            .filter(|f| {
                let r = self.flow_ranges(f);
                r.is_empty() || port.is_none_or(|x| in_ranges(x, &r))
            })
            .any(|f| {
                let e = f.peer();
                let bound = self
                    .bind
                    .get(e)
                    .is_some_and(|b| b.any || b.prefixes.iter().any(|n| n.contains(&a)));
                let listed = p
                    .endpoint(e)
                    .is_some_and(|x| x.addresses.iter().any(|n| n.contains(&a)));
                bound || listed
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("00:1A:2b:3c:4d:5e"),
            Some([0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e])
        );
        assert_eq!(
            parse_mac("00-1a-2b-3c-4d-5e"),
            parse_mac("00:1a:2b:3c:4d:5e")
        );
        assert_eq!(parse_mac("00:1a:2b:3c:4d"), None);
        assert_eq!(parse_mac("00:1a:2b:3c:4d:5g"), None);
        assert_eq!(show_mac(&[2, 0, 0, 0x70, 0x6c, 1]), "02:00:00:70:6c:01");
    }

    #[test]
    fn port_items() {
        assert_eq!(
            ranges(&["443, 2195-2196".into(), "5223".into()]),
            vec![
                PortRange { lo: 443, hi: 443 },
                PortRange { lo: 2195, hi: 2196 },
                PortRange { lo: 5223, hi: 5223 }
            ]
        );
        assert!(in_ranges(2196, &ranges(&["2195-2196".into()])));
        assert!(!in_ranges(2197, &ranges(&["2195-2196".into()])));
    }
}
