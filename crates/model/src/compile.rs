//! Site → policy IR. Reads a site file, resolves each device's profile, checks every binding,
//! param and unspecified value against it, and produces concrete rules. Every problem is
//! reported at once with the site file's line and column.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::diag::{from_yaml_error, Code, Diagnostic, Pos, Sink, Subject};
use crate::document::{check_format_version, check_ident};
use crate::ir::*;
use crate::names::{check_wildcard, expand_template, is_hostname};
use crate::ports::{parse_item, port_number, PortItem, PortSpec};
use crate::profile::*;
use crate::protocol::Protocol;
use crate::raw::{RawPorts, Scalar, Spanned};
use crate::raw_site::*;
use crate::validate::{check_version_first, Loaded};

mod site_check;

fn pos<T>(s: &Spanned<T>) -> Pos {
    Pos::from(s.referenced)
}

/// Finds a profile named by a site's `profile:` (a catalog id, or a file path relative to the
/// site). `Err` carries a one-line reason.
pub trait ProfileSource {
    fn profile(&self, name: &str) -> Result<Profile, String>;
}

/// Whether a YAML text is a site (`site:` key) rather than a profile.
pub fn is_site_text(text: &str) -> bool {
    text.lines().any(|l| l.starts_with("site:"))
}

/// The YAML parser's limits for a site: the default node and event budgets (250,000 nodes)
/// refuse a site of some 30,000 devices, so they grow with the text, which already bounds what
/// a node can cost (every node takes at least one byte). The limits on aliases and anchors,
/// which guard against expansion bombs, stay as they are.
fn yaml_options(text: &str) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = budget.max_nodes.max(text.len());
    budget.max_events = budget.max_events.max(text.len().saturating_mul(2));
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// Parses, validates and compiles a site.
pub fn site_text(
    file: &str,
    text: &str,
    profiles: &dyn ProfileSource,
) -> Result<Loaded<Policy>, Vec<Diagnostic>> {
    if let Some(d) =
        crate::validate::check_tabs(file, text).or_else(|| check_version_first(file, text))
    {
        return Err(vec![d]);
    }
    if !is_site_text(text) {
        let mut sink = Sink::new(file);
        let what = if text.lines().any(|l| l.starts_with("id:")) {
            "a profile"
        } else {
            "no site"
        };
        sink.error(
            Pos::new(1, 1),
            Code::NotASite,
            format!("this file has no top-level `site:` key: it is {what}"),
            "commands that take a SITE need a site file (see examples/site.yaml); `portolan validate` checks profiles",
        );
        return Err(sink.finish());
    }
    let raw: RawSite = serde_saphyr::from_str_with_options(text, yaml_options(text))
        .map_err(|e| vec![from_yaml_error(file, &e)])?;
    let mut sink = Sink::new(file);
    let policy = compile(&raw, profiles, &mut sink);
    let diags = sink.finish();
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    Ok(Loaded {
        value: policy,
        warnings: diags,
    })
}

/// An address or prefix of a site, checked as a profile's are.
fn net(sink: &mut Sink, s: &Spanned<String>) -> Option<IpNet> {
    crate::document::address(sink, s)
}

enum Provider {
    Firewall,
    Prefixes(Vec<IpNet>),
}

fn service(sink: &mut Sink, s: &Option<Spanned<RawService>>) -> Option<Provider> {
    let s = s.as_ref()?;
    match &s.value {
        RawService::Word(w) if w == "firewall" => Some(Provider::Firewall),
        RawService::Word(w) => {
            sink.error(
                pos(s),
                Code::InvalidService,
                format!("`{w}`: a service is `firewall` or a list of addresses"),
                "write `firewall` or `[192.0.2.53]`",
            );
            None
        }
        RawService::Addresses(a) => {
            let sp: Vec<Spanned<String>> = a
                .iter()
                .map(|x| Spanned::new(x.clone(), s.referenced, s.defined))
                .collect();
            Some(Provider::Prefixes(
                sp.iter().filter_map(|x| net(sink, x)).collect(),
            ))
        }
    }
}

struct SiteCtx {
    zones: Vec<Zone>,
    dns: Option<Provider>,
    ntp: Option<Provider>,
    dhcp: Option<Provider>,
}

/// Compiles a raw site; problems go to `sink`.
pub fn compile(raw: &RawSite, profiles: &dyn ProfileSource, sink: &mut Sink) -> Policy {
    check_format_version(sink, &raw.portolan);
    check_ident(sink, "site name", &raw.site);
    let mut zones = Vec::new();
    let mut seen = BTreeSet::new();
    for z in &raw.zones {
        check_ident(sink, "zone id", &z.id);
        if !seen.insert(z.id.value.clone()) {
            sink.error(
                pos(&z.id),
                Code::DuplicateId,
                format!("zone `{}` is declared twice", z.id.value),
                "give each zone its own id",
            );
        }
        if let Some(i) = &z.interface {
            if !crate::names::is_interface_name(&i.value) {
                sink.error(
                    pos(i),
                    Code::InvalidInterface,
                    format!("`{}` is not an interface name", i.value),
                    "at most 15 letters, digits, '-', '_' or '.' (not `.` or `..`), optionally ending in '*' after at least one of them",
                );
            }
        }
        zones.push(Zone {
            id: z.id.value.clone(),
            interface: z.interface.as_ref().map(|i| i.value.clone()),
            networks: z.networks.iter().filter_map(|n| net(sink, n)).collect(),
        });
    }
    let ctx = SiteCtx {
        dns: service(sink, &raw.services.dns),
        ntp: service(sink, &raw.services.ntp),
        dhcp: service(sink, &raw.services.dhcp),
        zones,
    };

    let mut policy = Policy {
        site: raw.site.value.clone(),
        zones: ctx.zones.clone(),
        groups: Vec::new(),
        rules: Vec::new(),
        documented: Vec::new(),
        profiles: BTreeMap::new(),
    };
    let mut claimed = Claims::default();
    // Each profile is looked up (and cloned) once per site, not once per device.
    let mut resolved: BTreeMap<String, Result<Profile, String>> = BTreeMap::new();
    let mut ids = BTreeSet::new();
    site_check::no_devices(sink, raw);
    for d in &raw.devices.value {
        check_ident(sink, "device id", &d.id);
        if !ids.insert(d.id.value.clone()) {
            sink.error(
                pos(&d.id),
                Code::DuplicateId,
                format!("device `{}` is declared twice", d.id.value),
                "give each device or group its own id",
            );
        }
        let zone = ctx.zones.iter().find(|z| z.id == d.zone.value).cloned();
        if zone.is_none() {
            sink.error(
                pos(&d.zone),
                Code::UnknownZone,
                format!("zone `{}` is not declared", d.zone.value),
                "declare it under `zones`",
            );
        }
        if d.addresses.is_empty() {
            sink.error(
                pos(&d.id),
                Code::MissingAddress,
                format!("device `{}` lists no address", d.id.value),
                "give its addresses or prefix under `addresses`",
            );
        }
        let mut addresses = Vec::new();
        for a in &d.addresses {
            let Some(n) = net(sink, a) else { continue };
            if let Some(z) = &zone {
                if !z.networks.is_empty() && !z.networks.iter().any(|zn| zn.contains(&n)) {
                    let nets: Vec<String> = z.networks.iter().map(ToString::to_string).collect();
                    sink.error(
                        pos(a),
                        Code::AddressOutsideZone,
                        format!("{n} is not inside zone `{}` ({})", z.id, nets.join(", ")),
                        "fix the address, or the device's zone",
                    );
                }
            }
            if let Some(other) = claimed.overlapping(&n) {
                sink.error(
                    pos(a),
                    Code::AddressConflict,
                    format!("{n} is also claimed by device `{other}`"),
                    "each address belongs to one device or group",
                );
            }
            claimed.insert(n, &d.id.value);
            addresses.push(n);
        }
        let profile = match resolved
            .entry(d.profile.value.clone())
            .or_insert_with(|| profiles.profile(&d.profile.value))
        {
            Ok(p) => &*p,
            Err(why) => {
                sink.error(
                    pos(&d.profile),
                    Code::UnknownProfile,
                    format!("profile `{}`: {why}", d.profile.value),
                    "use an id from `portolan catalog list`, or a path to a profile file",
                );
                continue;
            }
        };
        let mode = check_mode(sink, d, profile);
        policy.groups.push(Group {
            id: d.id.value.clone(),
            profile: profile.id.clone(),
            mode: mode.clone(),
            zone: d.zone.value.clone(),
            addresses,
            macs: crate::mac::device_macs(sink, d.mac.as_ref()),
        });
        // Without a valid mode the flows are unknown: the mode error says it all, rather than
        // one error per flow of every mode.
        if mode.is_some() || profile.modes.is_empty() {
            device_rules(sink, &ctx, d, profile, mode.as_deref(), &mut policy);
        }
        if !policy.profiles.contains_key(&profile.id) {
            policy.profiles.insert(profile.id.clone(), profile.clone());
        }
    }
    zones_without_interface(sink, raw);
    policy
}

/// A zone that holds devices or bound peers but names no interface: its rules can match
/// addresses only, and an address of the zone arriving on another interface (spoofed) is not
/// caught. Allowed (a bridge, a firewall with one interface), but said once per zone.
fn zones_without_interface(sink: &mut Sink, raw: &RawSite) {
    for z in raw.zones.iter().filter(|z| z.interface.is_none()) {
        let id = &z.id.value;
        let bound = format!("zone:{id}");
        let used = raw.devices.value.iter().any(|d| {
            &d.zone.value == id
                || d.bind
                    .values()
                    .any(|b| b.value.iter().any(|x| x.value.trim() == bound))
        });
        if used {
            sink.warning(
                pos(&z.id),
                Code::ZoneWithoutInterface,
                format!("zone `{id}` names no interface: rules for its devices and peers match addresses only, and its addresses arriving on another interface (spoofed) are not dropped"),
                "add `interface:` with the firewall's interface towards the zone",
            );
        }
    }
}

/// The addresses claimed so far, for `address-conflict`. Prefixes either nest or are disjoint,
/// so a claim overlapping a new prefix is one of its supernets (looked up at each shorter
/// length) or starts inside it (a range query): O(prefix length + log n) per address rather
/// than a scan of every claim, which large sites need.
#[derive(Default)]
struct Claims {
    /// (is IPv6, network as a number, prefix length) → the device that claimed it first.
    by_net: BTreeMap<(bool, u128, u8), String>,
}

impl Claims {
    fn key(n: &IpNet) -> (bool, u128, u8, u8) {
        match n {
            IpNet::V4(v) => (
                false,
                u128::from(u32::from(v.network())),
                v.prefix_len(),
                32,
            ),
            IpNet::V6(v) => (true, u128::from(v.network()), v.prefix_len(), 128),
        }
    }

    /// The leading `len` bits of a `max`-bit address set.
    fn mask(len: u8, max: u8) -> u128 {
        if len == 0 {
            return 0;
        }
        let ones = if len >= 128 {
            u128::MAX
        } else {
            (1u128 << len) - 1
        };
        ones << (max - len)
    }

    /// The device owning a claimed prefix that contains `n` or lies inside it.
    fn overlapping(&self, n: &IpNet) -> Option<&str> {
        let (v6, start, len, max) = Self::key(n);
        for l in 0..=len {
            if let Some(o) = self.by_net.get(&(v6, start & Self::mask(l, max), l)) {
                return Some(o);
            }
        }
        let all = Self::mask(max, max);
        let end = start | (all & !Self::mask(len, max));
        self.by_net
            .range((v6, start, 0)..=(v6, end, u8::MAX))
            .next()
            .map(|(_, o)| o.as_str())
    }

    fn insert(&mut self, n: IpNet, owner: &str) {
        let (v6, start, len, _) = Self::key(&n);
        self.by_net
            .entry((v6, start, len))
            .or_insert_with(|| owner.to_string());
    }
}

fn check_mode(sink: &mut Sink, d: &RawDevice, p: &Profile) -> Option<String> {
    match &d.mode {
        None if !p.modes.is_empty() => {
            let modes: Vec<&str> = p.modes.iter().map(|m| m.id.as_str()).collect();
            let choices = modes.iter().map(|m| m.to_string()).collect();
            sink.error_about(
                Subject::Mode { choices },
                pos(&d.profile),
                Code::MissingMode,
                format!(
                    "profile `{}` has several modes; device `{}` chooses none",
                    p.id, d.id.value
                ),
                format!("add `mode:` with one of: {}", modes.join(", ")),
            );
            None
        }
        None => None,
        Some(m) if !p.has_mode(&m.value) => {
            let modes: Vec<&str> = p.modes.iter().map(|m| m.id.as_str()).collect();
            let help = if modes.is_empty() {
                "remove `mode:`, the profile has none".to_string()
            } else {
                format!("use one of: {}", modes.join(", "))
            };
            let choices = modes.iter().map(|m| m.to_string()).collect();
            sink.error_about(
                Subject::Mode { choices },
                pos(m),
                Code::UnknownMode,
                format!("profile `{}` has no mode `{}`", p.id, m.value),
                help,
            );
            None
        }
        Some(m) => Some(m.value.clone()),
    }
}

/// A param value for a device: the site's, else the profile's default.
fn param_text(d: &RawDevice, p: &Profile, id: &str) -> Option<String> {
    if let Some(v) = d.params.get(id) {
        return Some(match &v.value {
            RawPorts::One(s) => s.to_string(),
            RawPorts::List(l) => l
                .iter()
                .map(|s| s.value.to_string())
                .collect::<Vec<_>>()
                .join(","),
        });
    }
    match &p.param(id)?.default {
        Some(ParamValue::Text(t)) => Some(t.clone()),
        Some(ParamValue::Ports(ps)) => Some(ps.to_strings().join(",")),
        None => None,
    }
}

fn version_ok(have: &[u32], req: &VersionReq) -> bool {
    let n = have.len().max(req.version.len());
    let pad = |v: &[u32]| {
        (0..n)
            .map(|i| v.get(i).copied().unwrap_or(0))
            .collect::<Vec<u32>>()
    };
    let (a, b) = (pad(have), pad(&req.version));
    match req.op.as_str() {
        ">=" => a >= b,
        ">" => a > b,
        "<=" => a <= b,
        "<" => a < b,
        _ => a == b,
    }
}

struct Dev<'a> {
    d: &'a RawDevice,
    p: &'a Profile,
    /// Roles already reported unbound: one error per role, not one per flow.
    unbound: std::cell::RefCell<BTreeSet<String>>,
    /// Params whose site value was refused (reported where it is written).
    bad: BTreeSet<String>,
    /// Each binding read once (its problems and `any` warning reported once, not per flow).
    bound: BTreeMap<String, Option<Peers>>,
}

impl Dev<'_> {
    fn here(&self) -> Pos {
        pos(&self.d.id)
    }

    fn param(&self, sink: &mut Sink, id: &str, flow: &str) -> Option<String> {
        if self.bad.contains(id) {
            return None;
        }
        let v = param_text(self.d, self.p, id);
        if v.is_none() {
            sink.error_about(Subject::Param(id.to_string()), self.here(), Code::MissingParam, format!("device `{}`: flow `{flow}` needs param `{id}` of profile `{}`, which has no default", self.d.id.value, self.p.id), format!("add `params: {{{id}: ...}}` to the device"));
        }
        v
    }

    fn ports(
        &self,
        sink: &mut Sink,
        spec: &PortSpec,
        flow: &Flow,
        site: Option<&Spanned<RawPorts>>,
    ) -> Option<Vec<PortRange>> {
        if let Some(sp) = site {
            return site_ports(sink, sp);
        }
        match spec {
            PortSpec::None => Some(Vec::new()),
            PortSpec::Unspecified => {
                sink.error(
                    self.here(),
                    Code::UnspecifiedPort,
                    format!(
                        "device `{}`: the source does not give the ports of flow `{}/{}`",
                        self.d.id.value, self.p.id, flow.id
                    ),
                    format!("supply them: `flows: {{{}: {{ports: ...}}}}`", flow.id),
                );
                None
            }
            PortSpec::List(items) => {
                let mut out = Vec::new();
                for it in items {
                    match it {
                        PortItem::Single(p) => out.push(PortRange { lo: *p, hi: *p }),
                        PortItem::Range(a, b) => out.push(PortRange { lo: *a, hi: *b }),
                        PortItem::Param(id) => {
                            let text = self.param(sink, id, &flow.id)?;
                            for part in text.split(',') {
                                match parse_item(part) {
                                    Ok(PortItem::Single(p)) => out.push(PortRange { lo: p, hi: p }),
                                    Ok(PortItem::Range(a, b)) => {
                                        out.push(PortRange { lo: a, hi: b })
                                    }
                                    _ => {
                                        let at =
                                            self.d.params.get(id.as_str()).map_or(self.here(), pos);
                                        sink.error_about(
                                            Subject::Param(id.clone()),
                                            at,
                                            Code::InvalidParam,
                                            format!("param `{id}` = `{text}` is not a port list"),
                                            "give ports such as 2001 or \"2001-2004\"",
                                        );
                                        return None;
                                    }
                                }
                            }
                        }
                    }
                }
                Some(out)
            }
        }
    }

    fn protocol(
        &self,
        sink: &mut Sink,
        flow: &Flow,
        site: Option<&Spanned<Scalar>>,
    ) -> Option<Protocol> {
        if let Some(s) = site {
            let p = match &s.value {
                Scalar::Int(n) => u8::try_from(*n).ok().map(Protocol::from_number),
                Scalar::Str(t) => Protocol::from_name(t).filter(|p| *p != Protocol::Unspecified),
            };
            if p.is_none() {
                sink.error(
                    pos(s),
                    Code::UnknownProtocol,
                    format!("protocol `{}` is not known", s.value),
                    "use tcp, udp, sctp, icmp, esp… or an IANA number",
                );
            }
            return p;
        }
        match &flow.protocol {
            Protocol::Unspecified => {
                sink.error(
                    self.here(),
                    Code::UnspecifiedProtocol,
                    format!(
                        "device `{}`: the source does not give the transport of flow `{}/{}`",
                        self.d.id.value, self.p.id, flow.id
                    ),
                    format!(
                        "supply it: `flows: {{{}: {{protocol: udp, ports: ...}}}}`",
                        flow.id
                    ),
                );
                None
            }
            Protocol::Param(id) => {
                let t = self.param(sink, id, &flow.id)?;
                let p = Protocol::from_name(&t)
                    .filter(|p| p.has_ports() && !matches!(p, Protocol::Unspecified));
                if p.is_none() {
                    sink.error_about(
                        Subject::Param(id.clone()),
                        self.here(),
                        Code::InvalidParam,
                        format!("param `{id}` = `{t}` is not a protocol"),
                        "use tcp or udp",
                    );
                }
                p
            }
            p => Some(p.clone()),
        }
    }

    /// The peers of an endpoint for this device.
    fn peers(&self, sink: &mut Sink, ctx: &SiteCtx, e: &Endpoint, flow: &Flow) -> Option<Peers> {
        if let Some(b) = self.bound.get(&e.id) {
            return b.clone();
        }
        match e.kind() {
            EndpointKind::Service(s) => {
                let prov = match s {
                    Service::Dns => &ctx.dns,
                    Service::Ntp => &ctx.ntp,
                    Service::Dhcp => &ctx.dhcp,
                };
                match prov {
                    Some(Provider::Firewall) => Some(Peers {
                        firewall: true,
                        ..Peers::default()
                    }),
                    Some(Provider::Prefixes(p)) => Some(Peers {
                        prefixes: p.clone(),
                        ..Peers::default()
                    }),
                    None => {
                        sink.error_about(Subject::Service(s.name().to_string()), self.here(), Code::UnboundService, format!("device `{}`: flow `{}/{}` needs a {} service and the site declares none", self.d.id.value, self.p.id, flow.id, s.name()), format!("add `services: {{{}: firewall}}` or its addresses, bind `{}` on the device, or switch the flow off", s.name(), e.id));
                        None
                    }
                }
            }
            EndpointKind::Role => {
                if !self.unbound.borrow_mut().insert(e.id.clone()) {
                    return None;
                }
                sink.error_about(
                    Subject::Role(e.id.clone()),
                    self.here(),
                    Code::UnboundRole,
                    format!(
                        "device `{}`: flow `{}/{}` (and any other flow to it) goes to role `{}`, which the site does not bind",
                        self.d.id.value, self.p.id, flow.id, e.id
                    ),
                    format!(
                        "add `bind: {{{}: [address, prefix or hostname]}}` to the device",
                        e.id
                    ),
                );
                None
            }
            EndpointKind::Remote => {
                let mut peers = Peers {
                    prefixes: e.addresses.clone(),
                    wildcards: e
                        .domains
                        .iter()
                        .filter_map(|d| check_wildcard(d).ok().map(str::to_string))
                        .collect(),
                    ..Peers::default()
                };
                for h in &e.hosts {
                    let mut missing = false;
                    let name = expand_template(h, |id| {
                        let v = site_check::value(self, id);
                        missing |= v.is_none();
                        v
                    });
                    if missing {
                        for id in crate::names::template_params(h).unwrap_or_default() {
                            if site_check::value(self, id).is_none() {
                                self.param(sink, id, &flow.id);
                            }
                        }
                        return None;
                    }
                    if !is_hostname(&name) {
                        sink.error(
                            self.here(),
                            Code::InvalidHostname,
                            format!("`{h}` expands to `{name}`, which is not a hostname"),
                            "check the device's params",
                        );
                        return None;
                    }
                    peers
                        .names
                        .push(name.trim_end_matches('.').to_ascii_lowercase());
                }
                Some(peers)
            }
        }
    }
}

fn site_ports(sink: &mut Sink, sp: &Spanned<RawPorts>) -> Option<Vec<PortRange>> {
    let items: Vec<(Pos, String)> = match &sp.value {
        RawPorts::One(s) => vec![(pos(sp), s.to_string())],
        RawPorts::List(l) => l.iter().map(|s| (pos(s), s.value.to_string())).collect(),
    };
    let mut out = Vec::new();
    for (at, t) in items {
        match parse_item(&t) {
            Ok(PortItem::Single(p)) => out.push(PortRange { lo: p, hi: p }),
            Ok(PortItem::Range(a, b)) => out.push(PortRange { lo: a, hi: b }),
            _ => {
                sink.error(
                    at,
                    Code::InvalidPort,
                    format!("`{t}` is not a port or range 1..65535"),
                    "write 443 or \"3001-3003\"",
                );
                return None;
            }
        }
    }
    Some(out)
}

fn bindings(sink: &mut Sink, ctx: &SiteCtx, b: &Spanned<Vec<Spanned<String>>>) -> Option<Peers> {
    let mut peers = Peers::default();
    if b.value.is_empty() {
        sink.error(
            pos(b),
            Code::EmptyBinding,
            "the binding lists nothing",
            "give addresses, prefixes, hostnames, `*.domain`, `zone:ID`, `firewall` or `any`",
        );
        return None;
    }
    for item in &b.value {
        let t = item.value.trim();
        if t == "firewall" {
            peers.firewall = true;
        } else if t == "any" {
            peers.prefixes.push(IpNet::V4(ipnet::Ipv4Net::default()));
            peers.prefixes.push(IpNet::V6(ipnet::Ipv6Net::default()));
            sink.warning(
                pos(item),
                Code::AnyPeer,
                "binding to `any` admits every address for each flow to this peer",
                "bind the peer's addresses or names if you know them",
            );
        } else if let Some(z) = t.strip_prefix("zone:") {
            match ctx.zones.iter().find(|x| x.id == z) {
                Some(zone) if !zone.networks.is_empty() => {
                    peers.prefixes.extend(zone.networks.iter().copied())
                }
                Some(_) => sink.error(
                    pos(item),
                    Code::EmptyZone,
                    format!("zone `{z}` has no networks"),
                    "list the zone's networks",
                ),
                None => sink.error(
                    pos(item),
                    Code::UnknownZone,
                    format!("zone `{z}` is not declared"),
                    "declare it under `zones`",
                ),
            }
        } else if t.starts_with('*') {
            match check_wildcard(t) {
                Ok(d) => peers.wildcards.push(d.to_ascii_lowercase()),
                Err(_) => sink.error(
                    pos(item),
                    Code::WildcardNotLeftmost,
                    format!("`{t}` is not a wildcard domain"),
                    "write `*.example.com`",
                ),
            }
        } else if t.parse::<IpNet>().is_ok() || t.parse::<IpAddr>().is_ok() {
            if let Some(n) = net(sink, item) {
                peers.prefixes.push(n);
            }
        } else if is_hostname(t) {
            peers
                .names
                .push(t.trim_end_matches('.').to_ascii_lowercase());
        } else {
            sink.error(pos(item), Code::InvalidBinding, format!("`{t}` is not an address, prefix, hostname or zone"), "give 192.0.2.1, 192.0.2.0/24, host.example.com, *.example.com, zone:ID, firewall or any");
        }
    }
    Some(peers)
}

/// A site supplies only what the source leaves open: a protocol or ports written
/// `unspecified`. Overriding a value the vendor gives would make a rule cite a row it does
/// not enforce.
fn check_override(
    sink: &mut Sink,
    d: &RawDevice,
    p: &Profile,
    f: &Flow,
    st: &Spanned<RawFlowSetting>,
) {
    if let Some(sp) = &st.value.protocol {
        if !matches!(f.protocol, Protocol::Unspecified) {
            sink.error(
                pos(sp),
                Code::OverrideSpecified,
                format!("device `{}`: the source gives protocol {} for flow `{}/{}`", d.id.value, f.protocol, p.id, f.id),
                "a site may only supply values the source leaves `unspecified`; use a profile of your own for a different flow",
            );
        }
    }
    if let Some(sp) = &st.value.ports {
        if !matches!(f.ports, PortSpec::Unspecified) {
            let given = f.ports.to_strings().join(", ");
            sink.error(
                pos(sp),
                Code::OverrideSpecified,
                format!("device `{}`: the source gives the ports of flow `{}/{}` ({given})", d.id.value, p.id, f.id),
                "a site may only supply ports the source leaves `unspecified` (ports from a param are set under `params`)",
            );
        }
    }
}

fn device_rules(
    sink: &mut Sink,
    ctx: &SiteCtx,
    d: &RawDevice,
    p: &Profile,
    mode: Option<&str>,
    policy: &mut Policy,
) {
    // This device's rules are the ones pushed from here on; the DNS check reads only them,
    // so a site's compile stays linear in its devices. Likewise its diagnostics.
    let first_rule = policy.rules.len();
    let first_diag = sink.diagnostics.len();
    let first_documented = policy.documented.len();
    let bad = site_check::params(sink, d, p);
    let bound = d
        .bind
        .iter()
        .filter(|(id, _)| p.endpoint(id).is_some())
        .map(|(id, b)| (id.clone(), bindings(sink, ctx, b)))
        .collect();
    let dev = Dev {
        d,
        p,
        unbound: Default::default(),
        bad,
        bound,
    };
    let mut tally = site_check::Tally::default();
    for f in &d.features {
        if !p.features.iter().any(|x| x.id == f.value) {
            let known: Vec<&str> = p.features.iter().map(|x| x.id.as_str()).collect();
            sink.error(
                pos(f),
                Code::UnknownFeature,
                format!("profile `{}` has no feature `{}`", p.id, f.value),
                format!("features: {}", known.join(", ")),
            );
        }
    }
    let flows: Vec<&Flow> = p.flows_in(mode).collect();
    for (id, s) in &d.flows {
        if !flows.iter().any(|f| &f.id == id) {
            sink.error(
                pos(s),
                Code::UnknownFlow,
                format!(
                    "profile `{}`{} has no flow `{id}`",
                    p.id,
                    mode.map(|m| format!(" in mode `{m}`")).unwrap_or_default()
                ),
                "use a flow id from `portolan show`",
            );
        }
    }
    for (id, v) in &d.params {
        if p.param(id).is_none() {
            sink.error(
                pos(v),
                Code::UnknownParam,
                format!("profile `{}` has no param `{id}`", p.id),
                "see the profile's params with `portolan doc`",
            );
        }
    }
    for (id, b) in &d.bind {
        if p.endpoint(id).is_none() {
            sink.error(
                pos(b),
                Code::UnknownEndpoint,
                format!("profile `{}` has no endpoint `{id}` to bind", p.id),
                "bind one of the profile's endpoints",
            );
        }
    }
    let version: Option<Vec<u32>> = d.version.as_ref().and_then(|v| {
        let parsed: Option<Vec<u32>> = v.value.split('.').map(|x| x.trim().parse().ok()).collect();
        if parsed.is_none() {
            sink.error(
                pos(v),
                Code::InvalidVersion,
                format!("`{}` is not a dotted version", v.value),
                "write e.g. 2.9 or 1.2.11",
            );
        }
        parsed
    });
    for f in flows.iter().copied() {
        let setting = d.flows.get(&f.id);
        if let Some(st) = setting {
            check_override(sink, d, p, f, st);
        }
        if setting.and_then(|s| s.value.enabled) == Some(false) {
            if !f.optional {
                sink.warning(
                    setting.map_or(pos(&d.id), pos),
                    Code::RequiredFlowDisabled,
                    format!("device `{}`: flow `{}/{}` is switched off, but the source does not mark it optional", d.id.value, p.id, f.id),
                    "the device may not work without it; keep it unless you know it is not needed here",
                );
            }
            tally.switched_off += 1;
            continue;
        }
        if let Some(why) = site_check::conditions(sink, &dev, f, version.as_deref()) {
            tally.skipped(why);
            continue;
        }
        tally.active.push(f);
        let documented = |reason: &str| Documented {
            group: d.id.value.clone(),
            profile: p.id.clone(),
            flow: f.id.clone(),
            reason: reason.to_string(),
        };
        if let Some(i) = &f.inside {
            policy.documented.push(documented(&format!(
                "carried inside flow `{}`; the outer flow is enforced",
                i.flow
            )));
            continue;
        }
        if f.protocol == Protocol::Arp {
            policy
                .documented
                .push(documented("link-layer ARP; not filtered by an IP firewall"));
            continue;
        }
        let protocol = dev.protocol(sink, f, setting.and_then(|s| s.value.protocol.as_ref()));
        // The peers are checked even when the protocol is missing, so that every problem of
        // the device is reported at once.
        let peers = p
            .endpoint(f.peer())
            .and_then(|e| dev.peers(sink, ctx, e, f));
        let Some(protocol) = protocol else {
            continue;
        };
        let site_ports_given = setting.and_then(|s| s.value.ports.as_ref());
        let spec = if protocol.has_ports() {
            &f.ports
        } else {
            &PortSpec::None
        };
        let Some(ports) = dev.ports(sink, spec, f, site_ports_given) else {
            continue;
        };
        let src_ports = if protocol.has_ports() {
            dev.ports(sink, &f.src_ports, f, None).unwrap_or_default()
        } else {
            Vec::new()
        };
        let Some(peers) = peers else {
            continue;
        };
        let Some(number) = protocol.number() else {
            continue;
        };
        let initiators: &[Initiator] = match f.initiation {
            Initiation::Device => &[Initiator::Device],
            Initiation::Peer => &[Initiator::Peer],
            Initiation::Either => &[Initiator::Device, Initiator::Peer],
        };
        // Broadcast and multicast: rules on what the firewall sees, the rest documented.
        let zone = ctx.zones.iter().find(|z| z.id == d.zone.value);
        let lowered = crate::cast::lower(f, peers, zone, number, &ports);
        if let Some(why) = &lowered.documented {
            policy.documented.push(documented(why));
        }
        for shape in lowered.rules {
            for ini in initiators {
                policy.rules.push(Rule {
                    group: d.id.value.clone(),
                    profile: p.id.clone(),
                    flow: f.id.clone(),
                    initiator: *ini,
                    protocol: number,
                    ports: ports.clone(),
                    // The initiator's source ports, whichever side it is: dropping them for
                    // a peer-initiated flow would admit any source port the profile does not.
                    src_ports: src_ports.clone(),
                    icmp_type: f.icmp_type.clone(),
                    peers: of_family(&shape.peers, f.family),
                    broadcast: shape.broadcast,
                    multicast: shape.multicast.clone(),
                    optional: f.optional,
                    family: f.family,
                });
            }
        }
    }
    names_need_dns(sink, ctx, d, &policy.rules[first_rule..]);
    tally.documented = policy.documented.len() - first_documented;
    tally.rules = policy.rules.len() - first_rule;
    site_check::after_rules(sink, &dev, mode, version.is_some(), &tally, first_diag);
}

/// The peers of a flow limited to `family` (`family: ipv4|ipv6`): static prefixes of the other
/// family are left out; names, wildcards and the firewall stay, and the rule's `family` keeps
/// their other-family addresses out (back ends emit the rule for one family only).
fn of_family(peers: &Peers, family: Option<IpFamily>) -> Peers {
    let mut p = peers.clone();
    if let Some(f) = family {
        p.prefixes.retain(|n| f.holds(&n.addr()));
    }
    p
}

/// Hostname and wildcard peers are enforced through sets the firewall's DNS server fills as it
/// answers. Warns when that cannot happen for a device: the site's DNS is not this firewall,
/// or the device has no DNS flow of its own to ask it. `rules` are this device's own.
fn names_need_dns(sink: &mut Sink, ctx: &SiteCtx, d: &RawDevice, rules: &[Rule]) {
    let mine = || rules.iter();
    let Some(named) = mine().find(|r| !r.peers.names.is_empty() || !r.peers.wildcards.is_empty())
    else {
        return;
    };
    let flow = named.provenance();
    if !matches!(ctx.dns, Some(Provider::Firewall)) {
        sink.warning(
            pos(&d.id),
            Code::NamesNeedDns,
            format!("device `{}`: `{flow}` names its peers by DNS name, and this firewall does not answer the site's DNS, so the name sets are not filled at run time", d.id.value),
            "set `services: {dns: firewall}` and run dnsmasq with `compile --target dnsmasq`, or compile with `--resolve`",
        );
    } else if !mine().any(|r| {
        r.peers.firewall && r.protocol == 17 && r.ports.iter().any(|p| p.lo <= 53 && 53 <= p.hi)
    }) {
        sink.warning(
            pos(&d.id),
            Code::NamesNeedDns,
            format!("device `{}`: `{flow}` names its peers by DNS name, but the device has no DNS flow to this firewall, so its own lookups never fill the name sets", d.id.value),
            "bind or enable the profile's DNS flow, or compile with `--resolve`",
        );
    }
}

/// A port number from an i64, for callers outside this module.
pub fn port(n: i64) -> Option<u16> {
    port_number(n).ok()
}
