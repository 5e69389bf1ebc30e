//! NetBox inventories: the JSON NetBox's REST API returns for `/api/dcim/devices/` and,
//! optionally, `/api/ipam/ip-addresses/` — one page `{"count", "next", "previous",
//! "results": [...]}` or a JSON array of such pages saved one after another.
//!
//! Field shapes, from NetBox's serializers (`netbox/dcim/api/serializers_/devices.py`,
//! `DeviceSerializer`; `netbox/ipam/api/serializers_/ip.py`, `IPAddressSerializer`; NetBox
//! 4.x, the same in its OpenAPI schema at `/api/schema/`):
//! - a device: `id`, `name` (string or null), `status` a choice `{"value": "active", "label":
//!   "Active"}`, `platform` a nested platform `{"id", "url", "display", "name", "slug", ...}`
//!   or null, `primary_ip4` / `primary_ip6` a nested IP address `{"id", "url", "display",
//!   "family", "address": "10.0.0.5/24", ...}` or null, `custom_fields` an object;
//! - an IP address: `address` ("10.0.0.5/24": the host and its network's length), `status`
//!   a choice (`active`, `reserved`, `deprecated`, `dhcp`, `slaac`), `assigned_object_type`
//!   (`"dcim.interface"` for a device's interface) and `assigned_object`, the nested
//!   interface, whose `device` is the nested device `{"id", "url", "display", "name", ...}`.
//!
//! What Portolan reads: the device's name is its id; its profile is the custom field
//! `portolan_profile`, else its platform's `slug`; its zone the custom field `portolan_zone`,
//! else the `zone:` the site gives the export; its mode `portolan_mode`; its params the object
//! `portolan_params` (`{"telemetry_port": 5140}`). Its addresses are the host addresses (never
//! the prefix the mask would make: a `/24` admits one host, not 256) of `primary_ip4`,
//! `primary_ip6`, and of every IP address of the second export whose status is active, dhcp
//! or slaac and whose assigned object is an interface of the device. Devices whose status is
//! not `active` are left out (one warning says how many), as are their addresses: a planned or
//! decommissioned device gets no rules. An export whose `next` is not null, or whose pages
//! hold fewer results than its `count`, is incomplete: a warning, since the missing devices
//! then get no rules (nothing is admitted for them).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::diag::{Code, Pos, Sink};
use crate::raw::{RawPorts, Scalar, Spanned};
use crate::raw_site::RawDevice;

use super::{device, spanned, Lines};

/// The files of one NetBox export, each with its source id.
pub(super) struct Export<'a> {
    pub devices: (u32, &'a str),
    pub ip_addresses: Option<(u32, &'a str)>,
    /// The zone the site gives devices without `portolan_zone`.
    pub zone: Option<&'a Spanned<String>>,
}

#[derive(Deserialize)]
struct Page<'a> {
    #[serde(default)]
    count: Option<u64>,
    #[serde(default, borrow)]
    next: Option<&'a RawValue>,
    #[serde(borrow)]
    results: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct Choice {
    value: String,
}

#[derive(Deserialize)]
struct Nested<'a> {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default, borrow)]
    slug: Option<&'a RawValue>,
    #[serde(default, borrow)]
    address: Option<&'a RawValue>,
    #[serde(default, borrow)]
    device: Option<Box<Nested<'a>>>,
}

#[derive(Deserialize, Default)]
struct CustomFields<'a> {
    #[serde(default, borrow)]
    portolan_profile: Option<&'a RawValue>,
    #[serde(default, borrow)]
    portolan_zone: Option<&'a RawValue>,
    #[serde(default, borrow)]
    portolan_mode: Option<&'a RawValue>,
    #[serde(default, borrow)]
    portolan_params: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Device<'a> {
    id: u64,
    #[serde(default, borrow)]
    name: Option<&'a RawValue>,
    #[serde(default)]
    status: Option<Choice>,
    #[serde(default, borrow)]
    platform: Option<Nested<'a>>,
    #[serde(default, borrow)]
    primary_ip4: Option<Nested<'a>>,
    #[serde(default, borrow)]
    primary_ip6: Option<Nested<'a>>,
    #[serde(default, borrow)]
    custom_fields: Option<CustomFields<'a>>,
}

#[derive(Deserialize)]
struct IpAddress<'a> {
    #[serde(borrow)]
    address: &'a RawValue,
    #[serde(default)]
    status: Option<Choice>,
    #[serde(default)]
    assigned_object_type: Option<String>,
    #[serde(default, borrow)]
    assigned_object: Option<Nested<'a>>,
}

/// One export file: its text, positions, and the error sink's view of a JSON error.
struct File<'a> {
    text: &'a str,
    lines: Lines<'a>,
}

impl<'a> File<'a> {
    fn new(source: u32, text: &'a str) -> Self {
        File {
            text,
            lines: Lines::new(source, text),
        }
    }

    /// Where a borrowed JSON value starts.
    fn at(&self, raw: &RawValue) -> Pos {
        let offset = (raw.get().as_ptr() as usize).saturating_sub(self.text.as_ptr() as usize);
        self.lines.pos(offset)
    }

    /// A JSON error inside `within` (or the whole file), reported where it is.
    fn json_error(&self, sink: &mut Sink, within: Option<&RawValue>, e: &serde_json::Error) {
        let base = within.map_or(0, |r| {
            (r.get().as_ptr() as usize).saturating_sub(self.text.as_ptr() as usize)
        });
        let text = within.map_or(self.text, RawValue::get);
        // serde_json counts lines from 1 and columns in bytes from 1 within what it read.
        let mut offset = 0;
        for _ in 1..e.line() {
            offset += text[offset..]
                .find('\n')
                .map_or(text.len() - offset, |i| i + 1);
        }
        offset = (offset + e.column().saturating_sub(1)).min(text.len());
        let what = if within.is_some() {
            "this NetBox object does not have the API's shape"
        } else {
            "this is not a NetBox API export"
        };
        // Its message ends with the position within what it read: the diagnostic has the file's.
        let message = e.to_string();
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m);
        sink.error(
            self.lines.pos(base + offset),
            Code::InventorySyntax,
            format!("{what}: {message}"),
            "save the JSON the API returns (`GET /api/dcim/devices/`, `/api/ipam/ip-addresses/`)",
        );
    }

    /// The results of every page, or `None` (reported) when the file is no export.
    fn results(&self, sink: &mut Sink) -> Option<Vec<&'a RawValue>> {
        let top: &RawValue = match serde_json::from_str(self.text) {
            Ok(t) => t,
            Err(e) => {
                self.json_error(sink, None, &e);
                return None;
            }
        };
        let pages: Vec<&RawValue> = if top.get().starts_with('[') {
            match serde_json::from_str(top.get()) {
                Ok(p) => p,
                Err(e) => {
                    self.json_error(sink, Some(top), &e);
                    return None;
                }
            }
        } else {
            vec![top]
        };
        let mut results = Vec::new();
        let mut count = None;
        let mut last_next = None;
        for raw in pages {
            match serde_json::from_str::<Page>(raw.get()) {
                Ok(p) => {
                    count = count.or(p.count);
                    last_next = p.next.filter(|n| n.get() != "null");
                    results.extend(p.results);
                }
                Err(e) => {
                    self.json_error(sink, Some(raw), &e);
                    return None;
                }
            }
        }
        let short = count.is_some_and(|c| (results.len() as u64) < c);
        if last_next.is_some() || short {
            let at = last_next.map_or(self.lines.pos(0), |n| self.at(n));
            sink.warning(
                at,
                Code::InventoryIncomplete,
                format!(
                    "the export holds {} of {} results: its last page names a next one, or pages are missing; the devices left out get no rules",
                    results.len(),
                    count.map_or_else(|| "more".to_string(), |c| c.to_string()),
                ),
                "save every page (follow `next`, or ask for more with `?limit=`) into the file, as a JSON array of pages",
            );
        }
        Some(results)
    }

    /// A string value with its position, or a reported error for another JSON type.
    fn string(&self, sink: &mut Sink, raw: &RawValue, what: &str) -> Option<Spanned<String>> {
        let at = self.at(raw);
        match serde_json::from_str::<Option<String>>(raw.get()) {
            Ok(Some(s)) if !s.is_empty() => Some(spanned(s, at)),
            Ok(_) => None,
            Err(_) => {
                sink.error(
                    at,
                    Code::InvalidValue,
                    format!("{what} is `{}`, not a string", raw.get()),
                    "NetBox gives this field as a string",
                );
                None
            }
        }
    }
}

/// Appends the devices of a NetBox export to `devices`.
pub(super) fn devices(sink: &mut Sink, export: &Export, devices: &mut Vec<RawDevice>) {
    let file = File::new(export.devices.0, export.devices.1);
    let Some(results) = file.results(sink) else {
        return;
    };
    // NetBox device id → index in `devices`, for the IP addresses' join.
    let mut by_id: BTreeMap<u64, usize> = BTreeMap::new();
    let mut inactive: Option<(Pos, usize)> = None;
    for raw in results {
        let d: Device = match serde_json::from_str(raw.get()) {
            Ok(d) => d,
            Err(e) => {
                file.json_error(sink, Some(raw), &e);
                continue;
            }
        };
        let status = d.status.as_ref().map_or("active", |s| s.value.as_str());
        if status != "active" {
            let first = inactive.map_or(file.at(raw), |(p, _)| p);
            inactive = Some((first, inactive.map_or(0, |(_, n)| n) + 1));
            continue;
        }
        if let Some(dev) = device_of(sink, &file, export.zone, raw, &d) {
            by_id.insert(d.id, devices.len());
            devices.push(dev);
        }
    }
    if let Some((at, n)) = inactive {
        sink.warning(
            at,
            Code::InventoryInactive,
            format!("{n} device(s) of this export are not active (first here): they get no rules"),
            "set the device's status to Active in NetBox once it is in service",
        );
    }
    if let Some((source, text)) = export.ip_addresses {
        assigned_addresses(sink, &File::new(source, text), &by_id, devices);
    }
}

/// The device one result describes, or `None` (reported) without a name, profile or zone.
fn device_of(
    sink: &mut Sink,
    file: &File,
    default_zone: Option<&Spanned<String>>,
    raw: &RawValue,
    d: &Device,
) -> Option<RawDevice> {
    let at = file.at(raw);
    let empty = CustomFields::default();
    let custom = d.custom_fields.as_ref().unwrap_or(&empty);
    let name = d.name.and_then(|n| file.string(sink, n, "`name`"));
    let profile = match custom.portolan_profile {
        Some(p) => file.string(sink, p, "`custom_fields.portolan_profile`"),
        None => None,
    }
    .or_else(|| {
        let slug = d.platform.as_ref().and_then(|p| p.slug)?;
        file.string(sink, slug, "`platform.slug`")
    });
    let zone = match custom.portolan_zone {
        Some(z) => file.string(sink, z, "`custom_fields.portolan_zone`"),
        None => None,
    }
    .or_else(|| default_zone.cloned());
    let what = |f: &str| format!("device {} has no {f}", d.id);
    if name.is_none() {
        sink.error(
            at,
            Code::MissingField,
            what("name"),
            "name the device in NetBox: its name is its id in the site",
        );
    }
    if profile.is_none() {
        sink.error(
            at,
            Code::MissingField,
            what("profile: neither `custom_fields.portolan_profile` nor a platform"),
            "set the custom field `portolan_profile`, or a platform whose slug is a profile id",
        );
    }
    if zone.is_none() {
        sink.error(
            at,
            Code::MissingField,
            what(
                "zone: no `custom_fields.portolan_zone`, and the site gives the export no `zone:`",
            ),
            "set the custom field `portolan_zone`, or `zone:` on the export in the site",
        );
    }
    let mut dev = device(name?, profile?, Some(zone?));
    if let Some(m) = custom.portolan_mode {
        dev.mode = file.string(sink, m, "`custom_fields.portolan_mode`");
    }
    if let Some(p) = custom.portolan_params {
        dev.params = params(sink, file, p);
    }
    for ip in [&d.primary_ip4, &d.primary_ip6].into_iter().flatten() {
        if let Some(a) = ip.address.and_then(|a| file.string(sink, a, "`address`")) {
            push_host(&mut dev, a);
        }
    }
    Some(dev)
}

/// The host part of NetBox's `address` ("10.0.0.5/24" → "10.0.0.5"), once per device.
fn push_host(dev: &mut RawDevice, a: Spanned<String>) {
    let host = a.value.split('/').next().unwrap_or("").to_string();
    if dev.addresses.iter().all(|x| x.value != host) {
        dev.addresses
            .push(Spanned::new(host, a.referenced, a.defined));
    }
}

/// `portolan_params`: an object of numbers and strings, each a YAML scalar's equivalent.
fn params(sink: &mut Sink, file: &File, raw: &RawValue) -> BTreeMap<String, Spanned<RawPorts>> {
    let mut out = BTreeMap::new();
    if raw.get() == "null" {
        return out;
    }
    let map: BTreeMap<String, &RawValue> = match serde_json::from_str(raw.get()) {
        Ok(m) => m,
        Err(_) => {
            sink.error(
                file.at(raw),
                Code::InvalidValue,
                "`custom_fields.portolan_params` is not an object",
                "give the params as a JSON object: {\"telemetry_port\": 5140}",
            );
            return out;
        }
    };
    for (k, v) in map {
        let at = file.at(v);
        let value = if let Ok(n) = serde_json::from_str::<i64>(v.get()) {
            Scalar::Int(n)
        } else if let Ok(s) = serde_json::from_str::<String>(v.get()) {
            Scalar::Str(s)
        } else {
            sink.error(
                at,
                Code::InvalidValue,
                format!(
                    "param `{k}` is `{}`: a param is a number or a string",
                    v.get()
                ),
                "write the value as a number or a string",
            );
            continue;
        };
        out.insert(k, spanned(RawPorts::One(value), at));
    }
    out
}

/// Adds the addresses the IP address export assigns to the devices' interfaces.
fn assigned_addresses(
    sink: &mut Sink,
    file: &File,
    by_id: &BTreeMap<u64, usize>,
    devices: &mut [RawDevice],
) {
    let Some(results) = file.results(sink) else {
        return;
    };
    for raw in results {
        let ip: IpAddress = match serde_json::from_str(raw.get()) {
            Ok(ip) => ip,
            Err(e) => {
                file.json_error(sink, Some(raw), &e);
                continue;
            }
        };
        let status = ip.status.as_ref().map_or("active", |s| s.value.as_str());
        if !matches!(status, "active" | "dhcp" | "slaac")
            || ip.assigned_object_type.as_deref() != Some("dcim.interface")
        {
            continue;
        }
        let owner = ip
            .assigned_object
            .as_ref()
            .and_then(|o| o.device.as_ref())
            .and_then(|d| d.id);
        let Some(&i) = owner.and_then(|id| by_id.get(&id)) else {
            continue;
        };
        if let Some(a) = file.string(sink, ip.address, "`address`") {
            push_host(&mut devices[i], a);
        }
    }
}
