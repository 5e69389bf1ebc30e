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
//!
//! `export/ace_plan.rs` decides what ACEs each flow becomes.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use portolan_model::{
    Flow, Initiation, IpFamily, Listens, ParamValue, PortItem, PortSpec, Profile, Protocol,
};
use serde_json::{Map, Value};

use crate::code::Code;
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

mod ace_plan;
mod select;

pub(crate) use ace_plan::{plan, Unexpressed};
use select::{resolve_interface, select};

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
    /// The interface of a multi-homed profile to export; required when it has several (see
    /// `export/select.rs`).
    pub interface: Option<String>,
    /// Picks in the profile's choice groups (group id → flow id), as a site's `choose:`.
    pub choose: BTreeMap<String, String>,
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
            interface: None,
            choose: BTreeMap::new(),
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
    /// The interface exported (a multi-homed profile).
    pub interface: Option<String>,
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
    let interface = resolve_interface(profile, o.interface.as_deref())?;
    let sel = select(profile, mode.as_deref(), interface, &o.choose)?;
    let flows: Vec<&Flow> = sel.flows.clone();
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
        let planned = match sel.held.get(&f.id) {
            Some(why) => Err(Unexpressed {
                why: why.clone(),
                warn: false,
            }),
            None => plan(f, profile, &o.mud_url),
        };
        match planned {
            Err(Unexpressed { why, warn }) => {
                if warn {
                    p.warning(
                        &at,
                        Code::NotInAcls,
                        format!("flow `{}`: {why}; MUD cannot say it, so no ACE permits it (it is carried in the `portolan` extension)", f.id),
                    );
                }
                unexpressed.push(f.id.clone());
                reason = Some(why);
            }
            Ok(plan) => {
                for w in plan.notes {
                    p.warning(&at, Code::PartlyInAcls, format!("flow `{}`: {w}", f.id));
                }
                if !f.conditions.is_empty() {
                    p.warning(
                        &at,
                        Code::ConditionNotInAcls,
                        format!("flow `{}` exists only under conditions ({}); MUD cannot say so, and its ACEs permit it always", f.id, conditions_text(f)),
                    );
                }
                if let Some(by) = sel.replaced_when.get(&f.id) {
                    p.warning(
                        &at,
                        Code::ReplacedNotInAcls,
                        format!("flow `{}` is replaced by {} where that flow's conditions hold; MUD cannot say so, and the ACEs of both permit them always", f.id, by.iter().map(|b| format!("`{b}`")).collect::<Vec<_>>().join(", ")),
                    );
                }
                if f.proxy
                    .as_ref()
                    .is_some_and(|x| x.http != portolan_model::Support::Unsupported)
                {
                    p.warning(
                        &at,
                        Code::ProxyNotInAcls,
                        format!("flow `{}` may go through an HTTP proxy; MUD cannot name a site's proxy, so its ACEs are to the flow's own peers (a device that uses a proxy reaches the proxy instead)", f.id),
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
            flow: flow_json(f, mode.as_deref(), sel.interface.as_deref())?,
        });
    }
    for (id, note) in dhcp_notes(profile, &flows, &o.mud_url) {
        p.warning(
            &join(&ext_base, "endpoints"),
            Code::DhcpAsLocalNetworks,
            format!("{note} (flows using `{id}`)"),
        );
    }
    for w in param_notes(profile, &flows) {
        p.warning(&join(&ext_base, "profile"), Code::ParamDefault, w);
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
    let ext = extension(
        profile,
        mode.as_deref(),
        sel.interface.as_deref(),
        &flows,
        ext_flows,
    )?;
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
        p.warning(&join(top, "mfg-name"), Code::NotStated, format!("the vendor `{}` was made from the MUD URL when the file was imported, not stated by it; mfg-name is left out", profile.vendor));
    }
    if derived_product {
        p.warning(&join(top, "model-name"), Code::NotStated, format!("the product `{}` was made from the MUD URL or systeminfo when the file was imported; model-name is left out", profile.product));
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
        interface: sel.interface,
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
            other => other.to_string(),
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

/// The flow in the profile format; a flow of several modes (interfaces) is written for the
/// exported one.
fn flow_json(
    f: &Flow,
    mode: Option<&str>,
    interface: Option<&str>,
) -> Result<Map<String, Value>, MudError> {
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
    if let (Some(i), false) = (interface, f.interfaces.is_empty()) {
        m.insert("interface".into(), Value::from(vec![i]));
    }
    Ok(m)
}

fn to_map<T: serde::Serialize>(v: &T) -> Result<Value, MudError> {
    serde_json::to_value(v).map_err(|e| MudError::Export(e.to_string()))
}

fn extension(
    profile: &Profile,
    mode: Option<&str>,
    interface: Option<&str>,
    flows: &[&Flow],
    ext_flows: Vec<ExtFlow>,
) -> Result<Extension, MudError> {
    let ids: BTreeSet<&str> = flows.iter().map(|f| f.id.as_str()).collect();
    let mut top = Map::new();
    if profile.portolan != 1 {
        top.insert("portolan".into(), Value::from(profile.portolan));
    }
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
    if !profile.requirements.is_empty() {
        top.insert("requirements".into(), to_map(&profile.requirements)?);
    }
    // The file's interface only: its flows name it, and a profile of one interface says so.
    let interfaces: Vec<&portolan_model::Interface> = profile
        .interfaces
        .iter()
        .filter(|i| interface.is_none_or(|x| x == i.id))
        .collect();
    if !interfaces.is_empty() {
        top.insert("interfaces".into(), to_map(&interfaces)?);
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
                if let Ok(ps) = portolan_model::syntax::template_params(h) {
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
