//! MUD file → profile. The file is repaired ([`crate::repair`]), read into typed structs
//! ([`crate::schema`]), its ACEs into rules ([`crate::rules`]); then:
//!
//! - flows of the `portolan` extension ([`crate::ext`]) are used where the ACEs they name are
//!   exactly what the exporter writes for them (checked against the validated profile);
//! - every other rule is grouped with its mirror (the same peer, protocol, address family and
//!   ports seen from the device's side, in the other policy), and each group is read as one flow
//!   by the direction rule ([`crate::direction`]): which side initiates, from the policies that
//!   hold the group, the side whose port is matched and `direction-initiated`; a group that is
//!   only a return path, or whose direction the file contradicts, is skipped with a warning;
//! - a flow of one ACL type gets `family: ipv4` or `family: ipv6`; the same flow in both
//!   families is one flow without `family`;
//! - each peer becomes an endpoint ([`crate::peers`]);
//! - the profile is written in the profile format and validated with
//!   [`portolan_model::validate::profile_text`]; a profile that does not validate is refused.
//!
//! MUD says "any" where a profile would say something: a rule with no protocol is imported as
//! `protocol: unspecified` (the site must say), a TCP or UDP rule with no port as `1-65535`, a
//! rule with no peer as a role `any` the site binds; each with a warning.
//!
//! `import/group.rs` groups the rules into flows; `import/builder.rs` builds the profile.

use std::collections::{BTreeMap, BTreeSet};

use portolan_model::validate::profile_text;
use portolan_model::{Diagnostic, PortItem, Profile, Protocol, Severity};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::direction::{Facts, Reading};
use crate::error::MudError;
use crate::export::plan;
use crate::ext::{Extension, MEMBER};
use crate::icmp;
use crate::peers::{endpoint_for, ident_from};
use crate::problem::{join, Code, PathMap, Problem, Problems};
use crate::rules::{rule_of, AceRule, Dir, Family, Peer};
use crate::schema::{Ace, Actions, MudFile};

mod builder;
mod group;

use group::group;

/// How to import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Any deviation from RFC 8519/8520 is an error.
    pub strict: bool,
    /// The file's name, for the profile's `sources` and for diagnostics.
    pub file: String,
}

/// A profile made from a MUD file, and what was repaired or could not be carried.
#[derive(Clone, Debug)]
pub struct Imported {
    pub profile: Profile,
    /// The profile in the profile format (YAML), validated.
    pub yaml: String,
    pub warnings: Vec<Problem>,
    /// Whether the `portolan` extension supplied flows.
    pub extension_used: bool,
}

/// Imports a MUD file as a profile. Every path in a warning or an error is a JSON Pointer into
/// the file as written (not into the repaired tree the later passes read; see
/// [`crate::problem::PathMap`]).
pub fn import(bytes: &[u8], o: &ImportOptions) -> Result<Imported, MudError> {
    let mut map = PathMap::default();
    match import_repaired(bytes, o, &mut map) {
        Ok(mut i) => {
            map.restore(&mut i.warnings);
            Ok(i)
        }
        Err(mut e) => {
            e.restore_paths(&map);
            Err(e)
        }
    }
}

/// [`import`], its paths naming the repaired tree; `map` learns how to name the file instead.
fn import_repaired(
    bytes: &[u8],
    o: &ImportOptions,
    map: &mut PathMap,
) -> Result<Imported, MudError> {
    let mut doc: Value = serde_json::from_slice(bytes).map_err(|e| MudError::not_json(&e))?;
    let mut p = Problems::new(o.strict);
    crate::repair::repair(&mut doc, &mut p, map)?;
    let file: MudFile = serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = pointer(e.path());
        MudError::json(path, Code::InvalidValue, e.into_inner().to_string())
    })?;
    let read = crate::rules::read(&file, &mut p);
    let ext = match (&file.mud.portolan, read.uses_portolan) {
        (Some(v), true) => parse_ext(v, &mut p),
        _ => None,
    };
    if p.has_errors() {
        return Err(MudError::Refused { problems: p.list });
    }
    let mut b = Builder {
        file: &file,
        rules: &read.rules,
        ext,
        accepted: Vec::new(),
        file_name: o.file.clone(),
    };
    b.accept_initial(&mut p);
    loop {
        let (doc, notes) = b.build();
        let yaml = serde_saphyr::to_string(&doc).map_err(|e| MudError::Export(e.to_string()))?;
        let name = format!("{} (as a profile)", display_name(&o.file));
        match profile_text(&name, &yaml) {
            Err(diags) => {
                if b.ext.is_some() && !o.strict {
                    p.warning(
                        &join("/ietf-mud:mud", MEMBER),
                        Code::ExtensionInvalid,
                        format!(
                            "the extension does not make a valid profile ({}); the ACLs are imported on their own",
                            first_error(&diags)
                        ),
                    );
                    b.ext = None;
                    b.accepted.clear();
                    continue;
                }
                return Err(MudError::Profile {
                    diagnostics: diags,
                    yaml,
                });
            }
            Ok(loaded) => {
                let bad = b.inconsistent(&loaded.value);
                if !bad.is_empty() {
                    for (i, why) in bad {
                        let id = b.ext_flow_id(i);
                        p.warning(
                            &join(&join(&join("/ietf-mud:mud", MEMBER), "flows"), i),
                            Code::ExtensionMismatch,
                            format!(
                                "extension flow `{id}`: {why}; its ACEs are imported on their own"
                            ),
                        );
                        b.accepted[i] = false;
                    }
                    continue;
                }
                p.list.extend(notes);
                for d in loaded.warnings {
                    p.warning("", Code::Profile(d.code), format!("profile: {}", d.message));
                }
                if p.has_errors() {
                    return Err(MudError::Refused { problems: p.list });
                }
                let extension_used = b.accepted.iter().any(|a| *a);
                let yaml = serde_saphyr::to_string(&loaded.value)
                    .map_err(|e| MudError::Export(e.to_string()))?;
                return Ok(Imported {
                    profile: loaded.value,
                    yaml,
                    warnings: p.list,
                    extension_used,
                });
            }
        }
    }
}

fn display_name(f: &str) -> &str {
    if f.is_empty() {
        "MUD file"
    } else {
        f
    }
}

fn first_error(d: &[Diagnostic]) -> String {
    d.iter()
        .find(|d| d.severity == Severity::Error)
        .map_or_else(String::new, |d| format!("{}: {}", d.code, d.message))
}

/// A serde_path_to_error path as a JSON Pointer. An unknown segment ends it: the pointer names
/// the deepest node known, which the file has.
fn pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        out = match seg {
            Segment::Seq { index } => join(&out, index),
            Segment::Map { key } => join(&out, key),
            Segment::Enum { variant } => join(&out, variant),
            Segment::Unknown => break,
        };
    }
    out
}

fn parse_ext(v: &Value, p: &mut Problems) -> Option<Extension> {
    let at = join("/ietf-mud:mud", MEMBER);
    let parsed: Result<Extension, (String, String)> = serde_path_to_error::deserialize(v.clone())
        .map_err(|e| (pointer(e.path()), e.into_inner().to_string()))
        .and_then(|x: Extension| x.check().map(|()| x));
    match parsed {
        Ok(x) => Some(x),
        Err((path, why)) => {
            let msg = format!("the portolan extension cannot be read: {why}; it is ignored");
            if p.strict {
                p.error(&format!("{at}{path}"), Code::InvalidExtension, msg);
            } else {
                p.warning(&format!("{at}{path}"), Code::InvalidExtension, msg);
            }
            None
        }
    }
}

/// The profile document, field order as the format wants it (`portolan:` first).
#[derive(Serialize)]
struct Doc {
    portolan: u32,
    id: Value,
    vendor: Value,
    product: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    versions: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<Value>,
    sources: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    modes: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    features: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    endpoints: Vec<Value>,
    flows: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    alternatives: Vec<Value>,
    listens: Value,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requirements: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interfaces: Option<Value>,
}

struct Builder<'a> {
    file: &'a MudFile,
    rules: &'a [AceRule],
    ext: Option<Extension>,
    /// Per extension flow: used as written.
    accepted: Vec<bool>,
    file_name: String,
}

/// The rules claimed by an extension flow.
fn claimed<'r>(rules: &'r [AceRule], aces: &[String]) -> Vec<&'r AceRule> {
    rules.iter().filter(|r| aces.contains(&r.ace)).collect()
}

type Key = (
    Dir,
    Option<Family>,
    Peer,
    Option<u8>,
    bool,
    Option<Vec<PortItem>>,
    Option<Vec<PortItem>>,
    Option<(Option<u8>, Option<u8>)>,
    Option<Dir>,
);

fn key(r: &AceRule) -> Key {
    (
        r.dir,
        r.family,
        r.peer.clone(),
        r.protocol,
        r.arp,
        r.peer_port.clone(),
        r.dev_port.clone(),
        r.icmp,
        r.initiated,
    )
}

/// Merges `flow` (of one family) into an earlier flow that is the same in the other family:
/// the two become one flow without `family` (both), citing both ACLs. Returns whether it did.
fn merge_twin(flows: &mut [Value], flow: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            for k in ["id", "source", "family"] {
                m.remove(k);
            }
        }
        v
    };
    let Some(fam) = flow.get("family").and_then(Value::as_str) else {
        return false;
    };
    let bare = strip(flow);
    let twin = flows.iter_mut().find(|f| {
        f.get("family")
            .and_then(Value::as_str)
            .is_some_and(|x| x != fam)
            && strip(f) == bare
    });
    let Some(Value::Object(t)) = twin else {
        return false;
    };
    t.remove("family");
    if let (Some(Value::Array(dst)), Some(Value::Array(src))) =
        (t.get_mut("source"), flow.get("source"))
    {
        dst.extend(src.iter().cloned());
    }
    true
}

fn unique(hint: &str, taken: &mut BTreeSet<String>) -> String {
    let mut id = hint.to_string();
    let mut n = 2;
    while taken.contains(&id) {
        let suffix = format!("-{n}");
        let head: String = hint.chars().take(64 - suffix.len()).collect();
        id = format!("{head}{suffix}");
        n += 1;
    }
    taken.insert(id.clone());
    id
}

pub(crate) fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or(rest)
}

fn vendor(mud: &crate::schema::Mud) -> String {
    mud.mfg_name
        .clone()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| host_of(&mud.mud_url).to_string())
}

fn product(mud: &crate::schema::Mud) -> String {
    mud.model_name
        .clone()
        .or_else(|| mud.systeminfo.clone())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| profile_id(&mud.mud_url))
}

/// A profile id from the MUD URL's last path segment (or its host).
pub(crate) fn profile_id(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.split(['?', '#']).next().unwrap_or(rest);
    let seg = path.rsplit('/').find(|s| !s.is_empty()).unwrap_or(path);
    let seg = seg.strip_suffix(".json").unwrap_or(seg);
    let id: String = seg
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let id = id
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let id: String = id.chars().take(64).collect();
    let id = id.trim_end_matches('-').to_string();
    if portolan_model::syntax::is_profile_id(&id) {
        id
    } else {
        "mud-device".into()
    }
}
