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
use crate::problem::{join, PathMap, Problem, Problems};
use crate::rules::{rule_of, Dir, Family, Peer, Rule};
use crate::schema::{Ace, Actions, MudFile};

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
        MudError::json(path, "invalid-value", e.into_inner().to_string())
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
                        "extension-invalid",
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
                            "extension-mismatch",
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
                    p.warning("", d.code.as_str(), format!("profile: {}", d.message));
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
                p.error(&format!("{at}{path}"), "invalid-extension", msg);
            } else {
                p.warning(&format!("{at}{path}"), "invalid-extension", msg);
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
}

struct Builder<'a> {
    file: &'a MudFile,
    rules: &'a [Rule],
    ext: Option<Extension>,
    /// Per extension flow: used as written.
    accepted: Vec<bool>,
    file_name: String,
}

/// The rules claimed by an extension flow.
fn claimed<'r>(rules: &'r [Rule], aces: &[String]) -> Vec<&'r Rule> {
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

fn key(r: &Rule) -> Key {
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

impl Builder<'_> {
    fn ext_flow_id(&self, i: usize) -> String {
        self.ext
            .as_ref()
            .and_then(|x| x.flows.get(i))
            .and_then(|f| f.flow.get("id"))
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string()
    }

    /// Extension flows whose ACE names all exist and are claimed once.
    fn accept_initial(&mut self, p: &mut Problems) {
        let Some(ext) = &self.ext else { return };
        let names: BTreeSet<&str> = self.rules.iter().map(|r| r.ace.as_str()).collect();
        let mut taken: BTreeSet<&str> = BTreeSet::new();
        let base = join(&join("/ietf-mud:mud", MEMBER), "flows");
        for (i, f) in ext.flows.iter().enumerate() {
            let missing: Vec<&str> = f
                .aces
                .iter()
                .map(String::as_str)
                .filter(|a| !names.contains(a) || taken.contains(a))
                .collect();
            if missing.is_empty() {
                taken.extend(f.aces.iter().map(String::as_str));
                self.accepted.push(true);
            } else {
                p.warning(
                    &join(&base, i),
                    "extension-mismatch",
                    format!(
                        "extension flow `{}` names ACEs the policies do not hold (or another flow claims): {}; its ACEs are imported on their own",
                        f.flow.get("id").and_then(Value::as_str).unwrap_or("?"),
                        missing.join(", ")
                    ),
                );
                self.accepted.push(false);
            }
        }
    }

    /// Accepted extension flows whose ACEs differ from what the exporter writes for them.
    fn inconsistent(&self, profile: &Profile) -> Vec<(usize, String)> {
        let Some(ext) = &self.ext else {
            return Vec::new();
        };
        let mud_url = &self.file.mud.mud_url;
        let mode = ext
            .mode
            .as_ref()
            .and_then(|m| m.get("id"))
            .and_then(Value::as_str);
        let mut bad = Vec::new();
        for (i, f) in ext.flows.iter().enumerate() {
            if !self.accepted.get(i).copied().unwrap_or(false) || f.aces.is_empty() {
                continue;
            }
            let id = f.flow.get("id").and_then(Value::as_str).unwrap_or("");
            let Some(flow) = profile.flows_in(mode).find(|x| x.id == id) else {
                bad.push((i, "the flow is missing from the profile".to_string()));
                continue;
            };
            let mut want: Vec<Key> = Vec::new();
            match plan(flow, profile, mud_url) {
                Err(u) => {
                    bad.push((i, format!("the flow cannot be in ACLs ({})", u.why)));
                    continue;
                }
                Ok(pl) => {
                    for unit in &pl.units {
                        for (fam, dir, m) in unit {
                            let ace = Ace {
                                name: "x".into(),
                                matches: m.clone(),
                                actions: Actions {
                                    forwarding: "accept".into(),
                                    ..Actions::default()
                                },
                                ..Ace::default()
                            };
                            let t = match fam {
                                Family::V4 => "ipv4-acl-type",
                                Family::V6 => "ipv6-acl-type",
                            };
                            if let Some(r) = rule_of(&ace, "x", t, *dir) {
                                want.push(key(&r));
                            }
                        }
                    }
                }
            }
            let mut have: Vec<Key> = claimed(self.rules, &f.aces).into_iter().map(key).collect();
            want.sort();
            have.sort();
            if want != have {
                bad.push((
                    i,
                    format!(
                        "its {} ACE(s) do not say what the flow says ({} expected)",
                        have.len(),
                        want.len()
                    ),
                ));
            }
        }
        bad
    }

    fn build(&self) -> (Doc, Vec<Problem>) {
        let mut notes = Problems::new(false);
        let mud = &self.file.mud;
        let ext = self.ext.as_ref();
        let accepted = |i: usize| self.accepted.get(i).copied().unwrap_or(false);
        let ext_flows: Vec<&Map<String, Value>> = ext
            .map(|x| {
                x.flows
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| accepted(*i))
                    .map(|(_, f)| &f.flow)
                    .collect()
            })
            .unwrap_or_default();
        let claimed_names: BTreeSet<&str> = ext
            .map(|x| {
                x.flows
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| accepted(*i))
                    .flat_map(|(_, f)| f.aces.iter().map(String::as_str))
                    .collect()
            })
            .unwrap_or_default();
        let free: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| !claimed_names.contains(r.ace.as_str()))
            .collect();

        // Top-level facts: the extension's, else from the MUD container.
        let top = ext.map(|x| &x.profile);
        let get = |k: &str| top.and_then(|t| t.get(k)).cloned();
        let mut sources: Vec<Value> = get("sources")
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default();
        let source_ids: BTreeSet<String> = sources
            .iter()
            .filter_map(|s| s.get("id").and_then(Value::as_str).map(str::to_string))
            .collect();
        let doc_id = if source_ids.contains("mud") {
            "mud-file"
        } else {
            "mud"
        };
        let needs_mud_source = top.is_none() || !free.is_empty();
        if needs_mud_source {
            let mut s = json!({
                "id": doc_id,
                "title": format!("MUD file {}", mud.mud_url),
                "url": mud.mud_url,
            });
            let base = std::path::Path::new(&self.file_name)
                .file_name()
                .map(|f| f.to_string_lossy().to_string())
                .unwrap_or_default();
            if !base.is_empty() {
                s["file"] = Value::from(base);
            }
            sources.insert(0, s);
            if let Some(sig) = &mud.mud_signature {
                // RFC 8520 section 13: the detached signature of this file; `mud verify` finds
                // it by this URL's last segment next to the file.
                sources.push(json!({"id": "mud-signature", "title": "Signature of the MUD file (RFC 8520 section 13)", "url": sig}));
            }
            if top.is_none() {
                if let Some(d) = &mud.documentation {
                    sources.push(json!({"id": "documentation", "title": "Documentation the MUD file names", "url": d}));
                }
            }
        }
        let cite = json!({"doc": doc_id, "ref": "ietf-mud:mud"});

        // Flows from the extension, then from the free rules.
        let mut flows: Vec<Value> = ext_flows
            .iter()
            .map(|f| Value::Object((*f).clone()))
            .collect();
        let mut flow_ids: BTreeSet<String> = ext_flows
            .iter()
            .filter_map(|f| f.get("id").and_then(Value::as_str).map(str::to_string))
            .collect();
        let used_eps: BTreeSet<String> = ext_flows
            .iter()
            .flat_map(|f| {
                ["from", "to"]
                    .into_iter()
                    .filter_map(|k| f.get(k).and_then(Value::as_str).map(str::to_string))
            })
            .collect();
        let mut endpoints: Vec<Value> = ext
            .map(|x| {
                x.endpoints
                    .iter()
                    .filter(|e| {
                        e.get("id")
                            .and_then(Value::as_str)
                            .is_some_and(|id| used_eps.contains(id))
                    })
                    .map(|e| Value::Object(e.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let mut ep_ids: BTreeMap<Peer, String> = BTreeMap::new();
        let mut taken_ep: BTreeSet<String> = endpoints
            .iter()
            .filter_map(|e| e.get("id").and_then(Value::as_str).map(str::to_string))
            .collect();
        taken_ep.insert("device".into());
        let mut listens_derived = Vec::new();
        for g in group(&free) {
            let Some(reading) = g.reading(&mut notes) else {
                continue;
            };
            let ep = match ep_ids.get(&g.peer) {
                Some(id) => id.clone(),
                None => {
                    let first = g.rules[0];
                    let ecite = json!({"doc": doc_id, "ref": format!("ACL {}, ACE {}", first.acl, first.ace)});
                    let (hint, mut obj) = endpoint_for(&g.peer, &mud.mud_url, &ecite);
                    let id = unique(&hint, &mut taken_ep);
                    obj.insert("id".into(), Value::from(id.clone()));
                    let mut ordered = Map::new();
                    ordered.insert("id".into(), Value::from(id.clone()));
                    ordered.extend(obj.into_iter().filter(|(k, _)| k != "id"));
                    endpoints.push(Value::Object(ordered));
                    ep_ids.insert(g.peer.clone(), id.clone());
                    id
                }
            };
            let (flow, listen) = g.flow(reading, &ep, doc_id, &mut flow_ids, &mut notes);
            if merge_twin(&mut flows[ext_flows.len()..], &flow) {
                continue;
            }
            flows.push(flow);
            if let Some(l) = listen {
                listens_derived.push(l);
            }
        }
        let final_ids: BTreeSet<String> = flows
            .iter()
            .filter_map(|f| f.get("id").and_then(Value::as_str).map(str::to_string))
            .collect();

        let alternatives: Vec<Value> = get("alternatives")
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|mut a| {
                let fl: Vec<Value> = a
                    .get("flows")?
                    .as_array()?
                    .iter()
                    .filter(|f| f.as_str().is_some_and(|s| final_ids.contains(s)))
                    .cloned()
                    .collect();
                if fl.is_empty() {
                    return None;
                }
                a["flows"] = Value::from(fl);
                Some(a)
            })
            .collect();
        let listens = match get("listens") {
            Some(Value::Array(l)) => Value::from(
                l.into_iter()
                    .filter(|e| {
                        e.get("flow")
                            .and_then(Value::as_str)
                            .is_none_or(|f| final_ids.contains(f))
                    })
                    .chain(listens_derived)
                    .collect::<Vec<_>>(),
            ),
            Some(other) if listens_derived.is_empty() => other,
            _ if listens_derived.is_empty() => Value::from("unspecified"),
            _ => Value::from(listens_derived),
        };
        let mut notes_out: Vec<Value> = get("notes")
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default();
        if top.is_none() {
            notes_out.push(json!({
                "topic": "other",
                "text": format!(
                    "Imported from the MUD file {} (last-update {}): the flows are read from its access lists, which say what packets may pass rather than who opens a connection; the listens are the ports of the inbound flows it allows.",
                    mud.mud_url, if mud.last_update.is_empty() { "not given" } else { &mud.last_update }
                ),
                "source": [cite],
            }));
        }
        let (id, vendor, product, description, versions) = match top {
            Some(_) => (
                get("id").unwrap_or_else(|| Value::from(profile_id(&mud.mud_url))),
                get("vendor").unwrap_or_else(|| Value::from(vendor(mud))),
                get("product").unwrap_or_else(|| Value::from(product(mud))),
                get("description"),
                get("versions"),
            ),
            None => {
                let mut v = Vec::new();
                if let Some(f) = &mud.firmware_rev {
                    v.push(Value::from(format!("firmware {f}")));
                }
                if let Some(s) = &mud.software_rev {
                    v.push(Value::from(format!("software {s}")));
                }
                (
                    Value::from(profile_id(&mud.mud_url)),
                    Value::from(vendor(mud)),
                    Value::from(product(mud)),
                    mud.systeminfo.clone().map(Value::from),
                    (!v.is_empty()).then(|| Value::from(v)),
                )
            }
        };
        let modes = ext
            .and_then(|x| x.mode.clone())
            .filter(|_| !ext_flows.is_empty())
            .into_iter()
            .collect();
        let doc = Doc {
            portolan: 1,
            id,
            vendor,
            product,
            versions,
            description,
            sources,
            modes,
            features: get("features"),
            params: get("params"),
            endpoints,
            flows,
            alternatives,
            listens,
            notes: notes_out,
        };
        (doc, notes.list)
    }
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
    if portolan_model::names::is_profile_id(&id) {
        id
    } else {
        "mud-device".into()
    }
}

/// Rules that describe one flow: the same peer, protocol and ports from the device's side.
struct Group<'r> {
    rules: Vec<&'r Rule>,
    /// `None` for ARP.
    family: Option<Family>,
    peer: Peer,
    protocol: Option<u8>,
    arp: bool,
    peer_port: Option<Vec<PortItem>>,
    dev_port: Option<Vec<PortItem>>,
    /// ICMP type of the request and who sends it.
    icmp: Option<(u8, Dir)>,
}

type GroupKey = (
    Option<Family>,
    Peer,
    Option<u8>,
    bool,
    Option<Vec<PortItem>>,
    Option<Vec<PortItem>>,
    Option<(u8, Dir)>,
);

fn icmp_key(r: &Rule) -> Option<(u8, Dir)> {
    let (Some(t), _) = r.icmp? else {
        return None;
    };
    let v6 = r.protocol == Some(58);
    let sender = r.dir;
    let other = match sender {
        Dir::FromDevice => Dir::ToDevice,
        Dir::ToDevice => Dir::FromDevice,
    };
    Some(match icmp::request_of(t, v6) {
        // A reply travels opposite to its request.
        Some(req) => (req, other),
        None => (t, sender),
    })
}

fn group<'r>(rules: &[&'r Rule]) -> Vec<Group<'r>> {
    let mut order: Vec<GroupKey> = Vec::new();
    let mut map: BTreeMap<GroupKey, Vec<&'r Rule>> = BTreeMap::new();
    for r in rules {
        let k: GroupKey = (
            r.family,
            r.peer.clone(),
            r.protocol,
            r.arp,
            r.peer_port.clone(),
            r.dev_port.clone(),
            icmp_key(r),
        );
        if !map.contains_key(&k) {
            order.push(k.clone());
        }
        map.entry(k).or_default().push(r);
    }
    order
        .into_iter()
        .filter_map(|k| {
            let rules = map.remove(&k)?;
            Some(Group {
                rules,
                family: k.0,
                peer: k.1,
                protocol: k.2,
                arp: k.3,
                peer_port: k.4,
                dev_port: k.5,
                icmp: k.6,
            })
        })
        .collect()
}

fn ports_json(items: &[PortItem]) -> Value {
    let v: Vec<Value> = items
        .iter()
        .map(|i| match i {
            PortItem::Single(p) => Value::from(*p),
            other => Value::from(other.to_string()),
        })
        .collect();
    if v.len() == 1 {
        v.into_iter().next().unwrap_or(Value::Null)
    } else {
        Value::from(v)
    }
}

impl Group<'_> {
    /// The group read by the direction rule ([`crate::direction`]); `None`: skipped, with a
    /// warning.
    fn reading(&self, p: &mut Problems) -> Option<Reading> {
        let id = ident_from(&self.rules[0].ace);
        crate::direction::read(
            &Facts {
                rules: &self.rules,
                protocol: self.protocol,
                peer_port: &self.peer_port,
                dev_port: &self.dev_port,
                icmp: self.icmp,
                id: &id,
            },
            p,
        )
    }

    /// The flow (profile format) and, for an inbound TCP/UDP flow, its listen entry.
    fn flow(
        &self,
        r: Reading,
        endpoint: &str,
        doc: &str,
        ids: &mut BTreeSet<String>,
        p: &mut Problems,
    ) -> (Value, Option<Value>) {
        let first = self.rules[0];
        let id = unique(&ident_from(&first.ace), ids);
        let outbound = r.outbound;
        let initiation = r.initiator.word();
        let (from, to) = if outbound {
            ("device", endpoint)
        } else {
            (endpoint, "device")
        };
        let mut f = Map::new();
        f.insert("id".into(), Value::from(id.clone()));
        f.insert("from".into(), Value::from(from));
        f.insert("to".into(), Value::from(to));
        f.insert("initiation".into(), Value::from(initiation));
        let (ports, src) = if outbound {
            (&self.peer_port, &self.dev_port)
        } else {
            (&self.dev_port, &self.peer_port)
        };
        let mut listen = None;
        match (self.arp, self.protocol) {
            (true, _) => {
                f.insert("protocol".into(), Value::from("arp"));
            }
            (false, None) => {
                p.warning(
                    &first.path,
                    "any-protocol",
                    format!("flow `{id}`: the ACEs allow any IP protocol; a profile cannot say that, so it is `protocol: unspecified` and the site must choose"),
                );
                f.insert("protocol".into(), Value::from("unspecified"));
                f.insert("ports".into(), Value::from("unspecified"));
            }
            (false, Some(n)) => {
                let proto = Protocol::from_number(n);
                f.insert(
                    "protocol".into(),
                    match &proto {
                        Protocol::Number(n) => Value::from(*n),
                        other => Value::from(other.to_string()),
                    },
                );
                if proto.has_ports() {
                    let ports = match ports {
                        Some(items) => ports_json(items),
                        None => {
                            p.warning(
                                &first.path,
                                "any-port",
                                format!("flow `{id}`: no {} port on the {} side: any port, written 1-65535", proto, if outbound { "peer's" } else { "device's" }),
                            );
                            Value::from("1-65535")
                        }
                    };
                    f.insert("ports".into(), ports.clone());
                    if let Some(s) = src {
                        f.insert("src_ports".into(), ports_json(s));
                    }
                    if !outbound {
                        listen = Some(
                            json!({"protocol": proto.to_string(), "ports": ports, "flow": id}),
                        );
                    }
                }
            }
        }
        if let Some((t, _)) = self.icmp {
            f.insert(
                "icmp_type".into(),
                Value::from(icmp::name(t, self.protocol == Some(58))),
            );
            let codes: BTreeSet<u8> = self
                .rules
                .iter()
                .filter_map(|r| r.icmp.and_then(|(_, c)| c))
                .collect();
            let echo = matches!(t, 8 | 128);
            if codes.iter().any(|c| !(echo && *c == 0)) {
                p.warning(
                    &first.path,
                    "icmp-code",
                    format!("flow `{id}`: ICMP code(s) {codes:?} cannot be kept; the flow allows every code of its type"),
                );
            }
        }
        match &self.peer {
            Peer::Net(n) if n.addr().is_multicast() => {
                f.insert("cast".into(), Value::from("multicast"));
                if n.prefix_len() == n.max_prefix_len() {
                    f.insert("group".into(), Value::from(n.addr().to_string()));
                }
            }
            Peer::Net(ipnet::IpNet::V4(n)) if n.addr().is_broadcast() => {
                f.insert("cast".into(), Value::from("broadcast"));
            }
            _ if self.rules.iter().any(|r| r.broadcast) => {
                f.insert("cast".into(), Value::from("broadcast"));
            }
            _ => {}
        }
        match self.family {
            Some(Family::V4) => {
                f.insert("family".into(), Value::from("ipv4"));
            }
            Some(Family::V6) => {
                f.insert("family".into(), Value::from("ipv6"));
            }
            None => {}
        }
        let mut seen = BTreeSet::new();
        let cites: Vec<Value> = self
            .rules
            .iter()
            .filter(|r| seen.insert((r.acl.clone(), r.ace.clone())))
            .map(|r| json!({"doc": doc, "ref": format!("ACL {}, ACE {}", r.acl, r.ace)}))
            .collect();
        f.insert("source".into(), Value::from(cites));
        (Value::Object(f), listen)
    }
}
