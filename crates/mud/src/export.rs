//! Profile → MUD file. One ACL per direction and address family (`<base>-v4fr`, `-v4to`,
//! `-v6fr`, `-v6to`; empty ones are left out), named by the policies; each flow becomes one or
//! more pairs of ACEs, the packets the device sends (from-device) and those it receives
//! (to-device), sharing a name `<flow id>-<n>`:
//!
//! - one pair per peer (host name, network, MUD abstraction — see [`crate::peers`]), per port
//!   item (`operator: eq` + `port`, or `lower-port`/`upper-port` without operator for a range)
//!   and per address family (host names and abstractions in both);
//! - TCP flows carry `ietf-mud:direction-initiated` (`from-device` when the device opens the
//!   connection, `to-device` when the peer does, absent for either);
//! - ICMP echo becomes the request one way and the reply the other.
//!
//! What MUD cannot say is carried in the [`crate::ext`] extension, and each thing that changes
//! what a MUD manager would enforce is also a warning: flows left out of the ACLs (unspecified
//! ports or protocol, wildcard domains, params without default, ARP, SCTP ports), conditions the
//! ACLs cannot hold, params expanded with their defaults, DHCP as `local-networks`. The output
//! is deterministic: same profile and options, same bytes (see [`crate::timestamp`]).

use std::collections::BTreeSet;

use ipnet::IpNet;
use portolan_model::{
    Flow, Initiation, IpFamily, Listens, ParamValue, PortItem, PortSpec, Profile, Protocol,
};
use serde_json::{Map, Value};

use crate::error::MudError;
use crate::ext::{ExtFlow, Extension, FORMAT, MEMBER, NAME};
use crate::icmp;
use crate::peers::endpoint_peers;
use crate::problem::{join, Problem, Problems};
use crate::rules::{Dir, Family, Peer};
use crate::schema::{
    AccessLists, Ace, Aces, Acl, AclRef, Acls, Actions, Icmp, Ipv4, Ipv6, Matches, Mud, MudFile,
    MudMatch, Policy, PortMatch, Tcp, Udp,
};

/// How to write the MUD file.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// The profile's mode; required when it has more than one.
    pub mode: Option<String>,
    /// Where the file will be published: an https URL (RFC 8520 section 3.2).
    pub mud_url: String,
    /// `last-update`, RFC 3339; see [`crate::timestamp`] for the default.
    pub last_update: Option<String>,
    /// The value of `SOURCE_DATE_EPOCH`, if set (the caller reads the environment).
    pub source_date_epoch: Option<String>,
    /// Hours, 1..168.
    pub cache_validity: u8,
    pub is_supported: bool,
    /// `documentation`; default: the profile's source named `documentation`, else its first
    /// source's URL.
    pub documentation: Option<String>,
}

impl ExportOptions {
    pub fn new(mud_url: impl Into<String>) -> Self {
        ExportOptions {
            mode: None,
            mud_url: mud_url.into(),
            last_update: None,
            source_date_epoch: None,
            cache_validity: 48,
            is_supported: true,
            documentation: None,
        }
    }
}

/// A MUD file and what the export could not say in its ACLs.
#[derive(Clone, Debug)]
pub struct Exported {
    pub mud: MudFile,
    /// The file as written: pretty JSON and a final newline.
    pub json: String,
    pub warnings: Vec<Problem>,
    pub mode: Option<String>,
    /// Number of ACEs, and ids of the flows left out of the ACLs.
    pub aces: usize,
    pub unexpressed: Vec<String>,
}

/// The mode to export: the one asked for, or the only one.
pub fn resolve_mode(profile: &Profile, mode: Option<&str>) -> Result<Option<String>, MudError> {
    let modes: Vec<&str> = profile.modes.iter().map(|m| m.id.as_str()).collect();
    match (mode, modes.as_slice()) {
        (None, []) => Ok(None),
        (None, [only]) => Ok(Some((*only).to_string())),
        (None, _) => Err(MudError::Export(format!(
            "profile `{}` has modes ({}): a MUD file holds one, choose it with --mode",
            profile.id,
            modes.join(", ")
        ))),
        (Some(m), _) if profile.has_mode(m) => Ok(Some(m.to_string())),
        (Some(m), []) => Err(MudError::Export(format!(
            "profile `{}` has no modes (asked for `{m}`)",
            profile.id
        ))),
        (Some(m), _) => Err(MudError::Export(format!(
            "profile `{}` has no mode `{m}` (modes: {})",
            profile.id,
            modes.join(", ")
        ))),
    }
}

/// Writes the MUD file of a profile (one mode of it).
pub fn export(profile: &Profile, o: &ExportOptions) -> Result<Exported, MudError> {
    let mode = resolve_mode(profile, o.mode.as_deref())?;
    let url_ok = o
        .mud_url
        .strip_prefix("https://")
        .is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace));
    if !url_ok {
        return Err(MudError::Export(format!(
            "--mud-url `{}` must be an https URL (RFC 8520 section 3.2)",
            o.mud_url
        )));
    }
    if !(1..=168).contains(&o.cache_validity) {
        return Err(MudError::Export(format!(
            "cache validity {} is outside 1..168 hours",
            o.cache_validity
        )));
    }
    let last_update =
        crate::timestamp::last_update(o.last_update.as_deref(), o.source_date_epoch.as_deref())?;
    let flows: Vec<&Flow> = profile.flows_in(mode.as_deref()).collect();
    let mut p = Problems::new(false);
    let ext_base = join("/ietf-mud:mud", MEMBER);
    let mut lists: Vec<((Family, Dir), Vec<Ace>)> = [
        (Family::V4, Dir::FromDevice),
        (Family::V6, Dir::FromDevice),
        (Family::V4, Dir::ToDevice),
        (Family::V6, Dir::ToDevice),
    ]
    .into_iter()
    .map(|k| (k, Vec::new()))
    .collect();
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut ext_flows = Vec::new();
    let mut unexpressed = Vec::new();
    let mut aces = 0;
    for (i, f) in flows.iter().enumerate() {
        let at = join(&join(&ext_base, "flows"), i);
        let mut flow_names = Vec::new();
        let mut reason = None;
        match plan(f, profile, &o.mud_url) {
            Err(Unexpressed { why, warn }) => {
                if warn {
                    p.warning(
                        &at,
                        "not-in-acls",
                        format!("flow `{}`: {why}; MUD cannot say it, so no ACE permits it (it is carried in the `portolan` extension)", f.id),
                    );
                }
                unexpressed.push(f.id.clone());
                reason = Some(why);
            }
            Ok(plan) => {
                for w in plan.notes {
                    p.warning(&at, "partly-in-acls", format!("flow `{}`: {w}", f.id));
                }
                if !f.conditions.is_empty() {
                    p.warning(
                        &at,
                        "condition-not-in-acls",
                        format!("flow `{}` exists only under conditions ({}); MUD cannot say so, and its ACEs permit it always", f.id, conditions_text(f)),
                    );
                }
                for (k, unit) in plan.units.iter().enumerate() {
                    let name = ace_name(&f.id, k, &mut names);
                    for (fam, dir, matches) in unit {
                        if let Some((_, list)) =
                            lists.iter_mut().find(|(key, _)| *key == (*fam, *dir))
                        {
                            list.push(Ace {
                                name: name.clone(),
                                matches: matches.clone(),
                                actions: Actions {
                                    forwarding: "accept".into(),
                                    ..Actions::default()
                                },
                                ..Ace::default()
                            });
                            aces += 1;
                        }
                    }
                    flow_names.push(name);
                }
            }
        }
        ext_flows.push(ExtFlow {
            aces: flow_names,
            unexpressed: reason,
            flow: flow_json(f, mode.as_deref())?,
        });
    }
    for (id, note) in dhcp_notes(profile, &flows, &o.mud_url) {
        p.warning(
            &join(&ext_base, "endpoints"),
            "dhcp-as-local-networks",
            format!("{note} (flows using `{id}`)"),
        );
    }
    for w in param_notes(profile, &flows) {
        p.warning(&join(&ext_base, "profile"), "param-default", w);
    }

    let base = acl_base(&profile.id, mode.as_deref());
    let mut acls = Vec::new();
    let mut from = Vec::new();
    let mut to = Vec::new();
    for ((fam, dir), list) in lists {
        if list.is_empty() {
            continue;
        }
        let name = format!(
            "{base}-{}{}",
            match fam {
                Family::V4 => "v4",
                Family::V6 => "v6",
            },
            match dir {
                Dir::FromDevice => "fr",
                Dir::ToDevice => "to",
            }
        );
        let r = AclRef {
            name: name.clone(),
            ..AclRef::default()
        };
        match dir {
            Dir::FromDevice => from.push(r),
            Dir::ToDevice => to.push(r),
        }
        acls.push(Acl {
            name,
            kind: Some(
                match fam {
                    Family::V4 => "ipv4-acl-type",
                    Family::V6 => "ipv6-acl-type",
                }
                .into(),
            ),
            aces: Aces {
                ace: list,
                ..Aces::default()
            },
            ..Acl::default()
        });
    }
    let policy = |refs: Vec<AclRef>| Policy {
        access_lists: AccessLists {
            access_list: refs,
            ..AccessLists::default()
        },
        ..Policy::default()
    };
    let ext = extension(profile, mode.as_deref(), &flows, ext_flows)?;
    // What an imported profile holds only because its MUD file did not say it (the vendor from
    // the URL's host, the product from its last segment or the systeminfo) is not written back
    // as if the file had said it.
    let mud_source = profile
        .sources
        .iter()
        .find(|s| s.title.starts_with("MUD file ") && s.url.is_some());
    let mud_src_url = mud_source.and_then(|s| s.url.as_deref());
    let derived_vendor = mud_src_url.is_some_and(|u| profile.vendor == crate::import::host_of(u));
    let derived_product = mud_src_url.is_some_and(|u| {
        profile.product == crate::import::profile_id(u)
            || profile.description.as_deref() == Some(profile.product.as_str())
    });
    let top = "/ietf-mud:mud";
    if derived_vendor {
        p.warning(&join(top, "mfg-name"), "not-stated", format!("the vendor `{}` was made from the MUD URL when the file was imported, not stated by it; mfg-name is left out", profile.vendor));
    }
    if derived_product {
        p.warning(&join(top, "model-name"), "not-stated", format!("the product `{}` was made from the MUD URL or systeminfo when the file was imported; model-name is left out", profile.product));
    }
    let documentation = o.documentation.clone().or_else(|| {
        profile
            .source_doc("documentation")
            .or(profile.sources.first())
            .filter(|s| !s.title.starts_with("MUD file "))
            .and_then(|s| s.url.clone())
    });
    let mud = MudFile {
        mud: Mud {
            mud_version: 1,
            mud_url: o.mud_url.clone(),
            last_update,
            mud_signature: None,
            cache_validity: Some(o.cache_validity),
            is_supported: o.is_supported,
            systeminfo: profile.description.clone(),
            mfg_name: (!derived_vendor).then(|| profile.vendor.clone()),
            model_name: (!derived_product).then(|| profile.product.clone()),
            documentation,
            extensions: vec![NAME.to_string()],
            portolan: Some(
                serde_json::to_value(&ext).map_err(|e| MudError::Export(e.to_string()))?,
            ),
            from_device_policy: Some(policy(from)),
            to_device_policy: Some(policy(to)),
            ..Mud::default()
        },
        acls: Acls {
            acl: acls,
            ..Acls::default()
        },
        ..MudFile::default()
    };
    let mut json =
        serde_json::to_string_pretty(&mud).map_err(|e| MudError::Export(e.to_string()))?;
    json.push('\n');
    Ok(Exported {
        mud,
        json,
        warnings: p.list,
        mode,
        aces,
        unexpressed,
    })
}

fn conditions_text(f: &Flow) -> String {
    f.conditions
        .iter()
        .map(|c| match c {
            portolan_model::Condition::Feature(x) => format!("feature {x}"),
            portolan_model::Condition::Version(v) => format!("version {v}"),
            portolan_model::Condition::Region(r) => format!("region {r}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `<id>[-<mode>]`, short enough that `-v4fr` keeps ACL names within 64 characters.
fn acl_base(id: &str, mode: Option<&str>) -> String {
    let full = match mode {
        Some(m) => format!("{id}-{m}"),
        None => id.to_string(),
    };
    full.chars().take(59).collect()
}

fn ace_name(flow: &str, k: usize, used: &mut BTreeSet<String>) -> String {
    let suffix = format!("-{k}");
    let head: String = flow.chars().take(64 - suffix.len()).collect();
    let mut name = format!("{head}{suffix}");
    let mut n = 0;
    while used.contains(&name) {
        n += 1;
        name = format!("ace{n}{suffix}");
    }
    used.insert(name.clone());
    name
}

/// The flow in the profile format; a flow of several modes is written for the exported one.
fn flow_json(f: &Flow, mode: Option<&str>) -> Result<Map<String, Value>, MudError> {
    let Value::Object(mut m) =
        serde_json::to_value(f).map_err(|e| MudError::Export(e.to_string()))?
    else {
        return Err(MudError::Export(
            "a flow does not serialize to an object".into(),
        ));
    };
    if let (Some(mode), false) = (mode, f.modes.is_empty()) {
        m.insert("modes".into(), Value::from(vec![mode]));
    }
    Ok(m)
}

fn to_map<T: serde::Serialize>(v: &T) -> Result<Value, MudError> {
    serde_json::to_value(v).map_err(|e| MudError::Export(e.to_string()))
}

fn extension(
    profile: &Profile,
    mode: Option<&str>,
    flows: &[&Flow],
    ext_flows: Vec<ExtFlow>,
) -> Result<Extension, MudError> {
    let ids: BTreeSet<&str> = flows.iter().map(|f| f.id.as_str()).collect();
    let mut top = Map::new();
    top.insert("id".into(), Value::from(profile.id.clone()));
    top.insert("vendor".into(), Value::from(profile.vendor.clone()));
    top.insert("product".into(), Value::from(profile.product.clone()));
    if !profile.versions.is_empty() {
        top.insert("versions".into(), to_map(&profile.versions)?);
    }
    if let Some(d) = &profile.description {
        top.insert("description".into(), Value::from(d.clone()));
    }
    top.insert("sources".into(), to_map(&profile.sources)?);
    for (key, v) in [
        ("features", to_map(&profile.features)?),
        ("params", to_map(&profile.params)?),
    ] {
        if v.as_array().is_some_and(|a| !a.is_empty()) {
            top.insert(key.into(), v);
        }
    }
    let alternatives: Vec<Value> = profile
        .alternatives
        .iter()
        .filter(|a| a.flows.iter().any(|f| ids.contains(f.as_str())))
        .map(|a| {
            let mut a = a.clone();
            a.flows.retain(|f| ids.contains(f.as_str()));
            to_map(&a)
        })
        .collect::<Result<_, _>>()?;
    if !alternatives.is_empty() {
        top.insert("alternatives".into(), Value::from(alternatives));
    }
    let listens = match &profile.listens {
        Listens::Nothing => Listens::Nothing,
        Listens::Unspecified => Listens::Unspecified,
        Listens::Entries(e) => Listens::Entries(
            e.iter()
                .filter(|l| l.flow.as_deref().is_none_or(|f| ids.contains(f)))
                .cloned()
                .collect(),
        ),
    };
    top.insert("listens".into(), to_map(&listens)?);
    if !profile.notes.is_empty() {
        top.insert("notes".into(), to_map(&profile.notes)?);
    }
    let used: BTreeSet<&str> = flows.iter().map(|f| f.peer()).collect();
    let endpoints = profile
        .endpoints
        .iter()
        .filter(|e| used.contains(e.id.as_str()))
        .map(|e| match to_map(e)? {
            Value::Object(m) => Ok(m),
            _ => Err(MudError::Export(
                "an endpoint does not serialize to an object".into(),
            )),
        })
        .collect::<Result<_, _>>()?;
    let mode = match mode.and_then(|m| profile.modes.iter().find(|x| x.id == m)) {
        Some(m) => Some(to_map(m)?),
        None => None,
    };
    Ok(Extension {
        format: FORMAT,
        profile: top,
        mode,
        endpoints,
        flows: ext_flows,
    })
}

fn dhcp_notes(profile: &Profile, flows: &[&Flow], mud_url: &str) -> Vec<(String, String)> {
    let used: BTreeSet<&str> = flows
        .iter()
        .filter(|f| f.inside.is_none())
        .map(|f| f.peer())
        .collect();
    profile
        .endpoints
        .iter()
        .filter(|e| used.contains(e.id.as_str()))
        .filter_map(|e| {
            endpoint_peers(e, profile, mud_url)
                .note
                .map(|n| (e.id.clone(), n))
        })
        .collect()
}

fn param_notes(profile: &Profile, flows: &[&Flow]) -> Vec<String> {
    let mut out = BTreeSet::new();
    for f in flows.iter().filter(|f| f.inside.is_none()) {
        let mut names: Vec<String> = f
            .ports
            .params()
            .chain(f.src_ports.params())
            .map(str::to_string)
            .collect();
        if let Protocol::Param(p) = &f.protocol {
            names.push(p.clone());
        }
        if let Some(e) = profile.endpoint(f.peer()) {
            for h in &e.hosts {
                if let Ok(ps) = portolan_model::names::template_params(h) {
                    names.extend(ps.into_iter().map(str::to_string));
                }
            }
        }
        for n in names {
            if let Some(d) = profile.param(&n).and_then(|p| p.default.as_ref()) {
                let v = match d {
                    ParamValue::Text(t) => t.clone(),
                    ParamValue::Ports(p) => p.to_string(),
                };
                out.insert(format!("param `{n}` is written as its default `{v}` in the ACLs (the extension keeps the `{{{n}}}` form)"));
            }
        }
    }
    out.into_iter().collect()
}

/// Why a flow has no ACE; `warn` when that changes what a MUD manager enforces.
pub(crate) struct Unexpressed {
    pub why: String,
    pub warn: bool,
}

/// The ACEs of one flow: for each unit (peer × port combination), the (family, direction,
/// matches) triples sharing one name.
pub(crate) struct Plan {
    pub units: Vec<Vec<(Family, Dir, Matches)>>,
    pub notes: Vec<String>,
}

fn unexpressed(why: impl Into<String>) -> Unexpressed {
    Unexpressed {
        why: why.into(),
        warn: true,
    }
}

fn param_default<'a>(profile: &'a Profile, name: &str) -> Option<&'a ParamValue> {
    profile.param(name).and_then(|p| p.default.as_ref())
}

/// Port items with params replaced by their defaults; `Err` names a param without one.
fn concrete_ports(spec: &PortSpec, profile: &Profile) -> Result<Vec<Option<PortItem>>, String> {
    match spec {
        PortSpec::None => Ok(vec![None]),
        PortSpec::Unspecified => Err("the ports are unspecified".into()),
        PortSpec::List(items) => {
            let mut out = Vec::new();
            for it in items {
                match it {
                    PortItem::Param(p) => match param_default(profile, p) {
                        Some(ParamValue::Ports(PortSpec::List(l))) => {
                            out.extend(l.iter().cloned().map(Some));
                        }
                        _ => {
                            return Err(format!("the ports are param `{p}`, which has no default"))
                        }
                    },
                    other => out.push(Some(other.clone())),
                }
            }
            Ok(out)
        }
    }
}

fn protocol_number(f: &Flow, profile: &Profile) -> Result<u8, Unexpressed> {
    let proto = match &f.protocol {
        Protocol::Param(p) => match param_default(profile, p) {
            Some(ParamValue::Text(t)) => Protocol::from_name(t).ok_or_else(|| {
                unexpressed(format!(
                    "the protocol is param `{p}`, whose default `{t}` is no protocol"
                ))
            })?,
            _ => {
                return Err(unexpressed(format!(
                    "the protocol is param `{p}`, which has no default"
                )))
            }
        },
        other => other.clone(),
    };
    match proto {
        Protocol::Arp => Err(unexpressed(
            "ARP is no IP protocol, and MUD managers enforce IP ACLs",
        )),
        Protocol::Unspecified => Err(unexpressed("the protocol is unspecified")),
        p => p
            .number()
            .ok_or_else(|| unexpressed(format!("protocol {p} has no IP protocol number"))),
    }
}

/// Plans the ACEs of one flow, or says why MUD cannot express it.
pub(crate) fn plan(f: &Flow, profile: &Profile, mud_url: &str) -> Result<Plan, Unexpressed> {
    if let Some(i) = &f.inside {
        return Err(Unexpressed {
            why: format!(
                "carried inside flow `{}`, which is what a firewall sees",
                i.flow
            ),
            warn: false,
        });
    }
    let proto = protocol_number(f, profile)?;
    let has_ports = portolan_model::ir::IpProto::new(proto).has_ports();
    if proto == 132 && !f.ports.is_none() {
        return Err(unexpressed("RFC 8519 has no SCTP port match"));
    }
    let (peer_spec, dev_spec) = if f.outbound() {
        (&f.ports, &f.src_ports)
    } else {
        (&f.src_ports, &f.ports)
    };
    let peer_ports = if has_ports {
        concrete_ports(peer_spec, profile).map_err(unexpressed)?
    } else {
        vec![None]
    };
    let dev_ports = if has_ports {
        concrete_ports(dev_spec, profile).map_err(unexpressed)?
    } else {
        vec![None]
    };
    let endpoint = profile
        .endpoint(f.peer())
        .ok_or_else(|| unexpressed(format!("endpoint `{}` is not declared", f.peer())))?;
    let mapped = endpoint_peers(endpoint, profile, mud_url);
    if mapped.peers.is_empty() {
        return Err(unexpressed(mapped.missing.join("; ")));
    }
    let mut notes: Vec<String> = mapped
        .missing
        .iter()
        .map(|m| format!("{m} is left out of the ACLs"))
        .collect();
    let forward = if f.outbound() {
        Dir::FromDevice
    } else {
        Dir::ToDevice
    };
    let reverse = match forward {
        Dir::FromDevice => Dir::ToDevice,
        Dir::ToDevice => Dir::FromDevice,
    };
    let initiated = match (proto, f.initiation) {
        (6, Initiation::Device) => Some(Dir::FromDevice),
        (6, Initiation::Peer) => Some(Dir::ToDevice),
        _ => None,
    };
    let mut units = Vec::new();
    for peer in &mapped.peers {
        let dhcp = endpoint.service == Some(portolan_model::Service::Dhcp);
        let families: Vec<Family> = match peer {
            // The `dhcp` service is DHCPv4 (RFC 2131); DHCPv6 has other ports.
            _ if dhcp => vec![Family::V4],
            Peer::Net(IpNet::V4(_)) => vec![Family::V4],
            Peer::Net(IpNet::V6(_)) => vec![Family::V6],
            _ => vec![Family::V4, Family::V6],
        };
        let families: Vec<Family> = families
            .into_iter()
            .filter(|fam| match proto {
                1 => *fam == Family::V4,
                58 => *fam == Family::V6,
                _ => true,
            })
            .filter(|fam| match f.family {
                Some(IpFamily::Ipv4) => *fam == Family::V4,
                Some(IpFamily::Ipv6) => *fam == Family::V6,
                None => true,
            })
            .collect();
        if families.is_empty() {
            notes.push(format!(
                "{} does not carry protocol {proto}; left out of the ACLs",
                crate::rules::peer_text(peer)
            ));
            continue;
        }
        for pp in &peer_ports {
            for dp in &dev_ports {
                let mut unit = Vec::new();
                for fam in &families {
                    let v6 = *fam == Family::V6;
                    let (fwd_type, rev_type): (Option<u8>, Option<Option<u8>>) =
                        match (&f.icmp_type, proto) {
                            (Some(t), 1 | 58) => {
                                let n = icmp::number(t, v6).ok_or_else(|| {
                                    unexpressed(format!("ICMP type `{t}` has no number"))
                                })?;
                                (Some(n), icmp::reply_of(n, v6).map(Some))
                            }
                            _ => (None, Some(None)),
                        };
                    let spec = Spec {
                        fam: *fam,
                        peer,
                        proto,
                        pp,
                        dp,
                        initiated,
                    };
                    unit.push((*fam, forward, spec.matches(forward, fwd_type)));
                    // The reply ACE of a one-initiator flow whose ports read the same both ways
                    // (none, or one port on both sides) would say that both sides may send
                    // first ([`crate::direction`], rule 2); TCP says who in
                    // direction-initiated, other protocols leave the replies to the manager's
                    // state tracking.
                    let symmetric = pp == dp
                        && match proto {
                            6 => false,
                            1 | 58 => f.icmp_type.is_none(),
                            _ => true,
                        };
                    if symmetric && f.initiation != Initiation::Either {
                        continue;
                    }
                    if let Some(rt) = rev_type {
                        unit.push((*fam, reverse, spec.matches(reverse, rt)));
                    }
                }
                units.push(unit);
            }
        }
    }
    if units.is_empty() {
        return Err(unexpressed(notes.join("; ")));
    }
    Ok(Plan { units, notes })
}

struct Spec<'a> {
    fam: Family,
    peer: &'a Peer,
    proto: u8,
    pp: &'a Option<PortItem>,
    dp: &'a Option<PortItem>,
    initiated: Option<Dir>,
}

fn port_match(p: &Option<PortItem>) -> Option<PortMatch> {
    match p {
        Some(PortItem::Single(n)) => Some(PortMatch::eq(*n)),
        Some(PortItem::Range(a, b)) => Some(PortMatch::range(*a, *b)),
        _ => None,
    }
}

impl Spec<'_> {
    /// The matches of the ACE for packets in `dir`, with an ICMP type for ICMP.
    fn matches(&self, dir: Dir, icmp_type: Option<u8>) -> Matches {
        let mut m = Matches::default();
        let (dst_name, src_name, dst_net, src_net) = match (self.peer, dir) {
            (Peer::Host(h) | Peer::Domain(h), Dir::FromDevice) => {
                (Some(h.clone()), None, None, None)
            }
            (Peer::Host(h) | Peer::Domain(h), Dir::ToDevice) => (None, Some(h.clone()), None, None),
            (Peer::Net(n), Dir::FromDevice) => (None, None, Some(n.to_string()), None),
            (Peer::Net(n), Dir::ToDevice) => (None, None, None, Some(n.to_string())),
            _ => (None, None, None, None),
        };
        match self.fam {
            Family::V4 => {
                m.ipv4 = Some(Ipv4 {
                    protocol: Some(self.proto),
                    destination_ipv4_network: dst_net,
                    source_ipv4_network: src_net,
                    dst_dnsname: dst_name,
                    src_dnsname: src_name,
                    ..Ipv4::default()
                })
            }
            Family::V6 => {
                m.ipv6 = Some(Ipv6 {
                    protocol: Some(self.proto),
                    destination_ipv6_network: dst_net,
                    source_ipv6_network: src_net,
                    dst_dnsname: dst_name,
                    src_dnsname: src_name,
                    ..Ipv6::default()
                })
            }
        }
        let mm = MudMatch::default();
        m.mud = match self.peer {
            Peer::Controller(u) => Some(MudMatch {
                controller: Some(u.clone()),
                ..mm
            }),
            Peer::MyController => Some(MudMatch {
                my_controller: Some(crate::schema::Empty),
                ..mm
            }),
            Peer::LocalNetworks => Some(MudMatch {
                local_networks: Some(crate::schema::Empty),
                ..mm
            }),
            Peer::SameManufacturer => Some(MudMatch {
                same_manufacturer: Some(crate::schema::Empty),
                ..mm
            }),
            Peer::Manufacturer(h) => Some(MudMatch {
                manufacturer: Some(h.clone()),
                ..mm
            }),
            Peer::Model(u) => Some(MudMatch {
                model: Some(u.clone()),
                ..mm
            }),
            Peer::Host(_) | Peer::Domain(_) | Peer::Net(_) | Peer::Any => None,
        };
        let (src, dst) = match dir {
            Dir::FromDevice => (port_match(self.dp), port_match(self.pp)),
            Dir::ToDevice => (port_match(self.pp), port_match(self.dp)),
        };
        match self.proto {
            6 if self.initiated.is_some() || src.is_some() || dst.is_some() => {
                m.tcp = Some(Tcp {
                    direction_initiated: self.initiated.map(|d| d.name().to_string()),
                    source_port: src,
                    destination_port: dst,
                    ..Tcp::default()
                })
            }
            17 if src.is_some() || dst.is_some() => {
                m.udp = Some(Udp {
                    source_port: src,
                    destination_port: dst,
                    ..Udp::default()
                })
            }
            1 | 58 => {
                if let Some(t) = icmp_type {
                    m.icmp = Some(Icmp {
                        kind: Some(t),
                        ..Icmp::default()
                    });
                }
            }
            _ => {}
        }
        m
    }
}
