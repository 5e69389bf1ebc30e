//! What real MUD files get wrong, repaired on the JSON tree before it is read into the typed
//! [`crate::schema`] structs. Each repair is a deviation from RFC 8519/8520 (a warning, or an
//! error in strict mode) named by the JSON path where the file has it. The repair records in a
//! [`PathMap`] where each node it renamed, moved, replaced or inserted was in the file, so that
//! the paths later passes name in the repaired tree are reported as paths into the file as
//! written (a node the file does not have, such as a missing leaf, is named by its parent):
//!
//! | code | what the file has | read as |
//! |---|---|---|
//! | `draft-acl-container` | `ietf-access-control-list:access-lists` | `…:acls` (RFC 8519 4.1) |
//! | `draft-acl-name` | `acl-name` in an ACL or a policy entry | `name` |
//! | `draft-acl-type` | `acl-type` in an ACL (or a policy entry, dropped) | `type` |
//! | `acl-type-name` | `ipv4`, `ipv4-acl`, `ethernet-acl-type`, … | `ipv4-acl-type`, `eth-acl-type`, … |
//! | `draft-aces` | `access-list-entries` | `aces` |
//! | `draft-rule-name` | `rule-name` in an ACE | `name` |
//! | `draft-l3-name` | `ipv4-acl` / `ipv6-acl` matches | `ipv4` / `ipv6` |
//! | `draft-port-in-l3` | `source-port-range(-or-operator)` in the L3 match | `tcp`/`udp` `source-port` |
//! | `draft-mud-acl` | `ietf-mud:mud-acl`, or MUD leaves directly in `matches` | `ietf-mud:mud` |
//! | `range-with-operator` | `operator` beside `lower-port`/`upper-port` | the range alone |
//! | `hex-ethertype` | `"0x0800"` | `2048` (a uint16 is a JSON number) |
//! | `empty-leaf-encoding` | `[]`, `null`, `true` for an `empty` leaf | `[null]` (RFC 7951 6.9) |
//! | `draft-direction` | `direction-initiated` without its module prefix | `ietf-mud:direction-initiated` |
//! | `missing-mud-version` | no `mud-version` | 1 |
//! | `missing-is-supported` | no `is-supported` | true |
//! | `missing-last-update` | no `last-update` | empty |

use serde_json::{Map, Value};

use crate::code::Code;
use crate::error::MudError;
use crate::problem::{join, PathMap, Problems};

const ACLS: &str = "ietf-access-control-list:acls";
const ACLS_DRAFT: &str = "ietf-access-control-list:access-lists";
const MUD: &str = "ietf-mud:mud";
const MUD_LEAVES: &[&str] = &[
    "manufacturer",
    "same-manufacturer",
    "model",
    "local-networks",
    "controller",
    "my-controller",
];
const EMPTY_LEAVES: &[&str] = &["same-manufacturer", "local-networks", "my-controller"];

/// Repairs `doc` in place. Fails only when the file has no usable shape at all.
///
/// Problems are named by paths into the repaired tree, or by the member only the file has
/// (`…/rule-name`); `map` learns where each renamed, moved, replaced or inserted node was in
/// the file, and [`PathMap::original`] turns any such path, and any path a later pass names in
/// the repaired tree, into a JSON Pointer into the file as written.
pub fn repair(doc: &mut Value, p: &mut Problems, map: &mut PathMap) -> Result<(), MudError> {
    let Value::Object(top) = doc else {
        return Err(MudError::json(
            "",
            Code::NotAnObject,
            "a MUD file is a JSON object",
        ));
    };
    if !top.contains_key(ACLS) {
        if let Some(v) = top.remove(ACLS_DRAFT) {
            p.deviation(
                &join("", ACLS_DRAFT),
                Code::DraftAclContainer,
                format!("draft-era container name; RFC 8519 calls it `{ACLS}`"),
            );
            top.insert(ACLS.into(), v);
            map.moved(&join("", ACLS), &join("", ACLS_DRAFT));
        }
    }
    if !top.contains_key(ACLS) {
        // Later passes read an empty container (and may warn about it): the file has none.
        map.created(&join("", ACLS));
    }
    match top.get_mut(MUD) {
        Some(Value::Object(mud)) => repair_mud(mud, p, map)?,
        Some(_) => {
            return Err(MudError::json(
                join("", MUD),
                Code::WrongType,
                "must be a JSON object",
            ))
        }
        None => {
            return Err(MudError::json(
                "",
                Code::NotAMudFile,
                format!("no `{MUD}` container: this is not a MUD file (RFC 8520 section 2.1)"),
            ))
        }
    }
    if let Some(Value::Object(acls)) = top.get_mut(ACLS) {
        if let Some(Value::Array(list)) = acls.get_mut("acl") {
            let base = join(&join("", ACLS), "acl");
            for (i, acl) in list.iter_mut().enumerate() {
                if let Value::Object(acl) = acl {
                    repair_acl(acl, &join(&base, i), p, map);
                }
            }
        }
    }
    Ok(())
}

/// Renames member `from` of the object at `at` to `to` (unless `to` is there already), and
/// records the move in `map`.
fn rename(obj: &mut Map<String, Value>, at: &str, from: &str, to: &str, map: &mut PathMap) -> bool {
    if obj.contains_key(to) {
        return false;
    }
    match obj.remove(from) {
        Some(v) => {
            obj.insert(to.to_string(), v);
            let original = join(&map.original(at), from);
            map.moved(&join(at, to), &original);
            true
        }
        None => false,
    }
}

fn repair_mud(
    mud: &mut Map<String, Value>,
    p: &mut Problems,
    map: &mut PathMap,
) -> Result<(), MudError> {
    let base = join("", MUD);
    if !mud.contains_key("mud-url") {
        return Err(MudError::json(
            base,
            Code::MissingMudUrl,
            "no `mud-url`: the MUD URL identifies the file (RFC 8520 section 3.2)",
        ));
    }
    // A missing leaf is named by the container that lacks it: the only path the file has.
    let missing: [(&str, Code, &str, Value); 3] = [
        (
            "mud-version",
            Code::MissingMudVersion,
            "mandatory leaf `mud-version` missing; read as version 1",
            Value::from(1),
        ),
        (
            "is-supported",
            Code::MissingIsSupported,
            "mandatory leaf `is-supported` missing; read as true",
            Value::Bool(true),
        ),
        (
            "last-update",
            Code::MissingLastUpdate,
            "mandatory leaf `last-update` missing",
            Value::from(""),
        ),
    ];
    for (leaf, code, message, value) in missing {
        if !mud.contains_key(leaf) {
            p.deviation(&base, code, message);
            mud.insert(leaf.into(), value);
            map.created(&join(&base, leaf));
        }
    }
    for policy in ["from-device-policy", "to-device-policy"] {
        let ppath = join(&join(&join(&base, policy), "access-lists"), "access-list");
        let Some(list) = mud
            .get_mut(policy)
            .and_then(|v| v.get_mut("access-lists"))
            .and_then(|v| v.get_mut("access-list"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for (i, entry) in list.iter_mut().enumerate() {
            let Value::Object(entry) = entry else {
                continue;
            };
            let at = join(&ppath, i);
            if rename(entry, &at, "acl-name", "name", map) {
                p.deviation(
                    &join(&at, "acl-name"),
                    Code::DraftAclName,
                    "draft-era `acl-name`; RFC 8520 names the ACL with `name`",
                );
            }
            if entry.remove("acl-type").is_some() {
                p.deviation(
                    &join(&at, "acl-type"),
                    Code::DraftAclType,
                    "draft-era `acl-type` in a policy entry; the ACL itself carries its type",
                );
            }
        }
    }
    Ok(())
}

/// The RFC 8519 identity for a type name real files use, and whether it was a deviation.
fn acl_type_name(t: &str) -> Option<(&'static str, bool)> {
    let bare = t.strip_prefix("ietf-access-control-list:").unwrap_or(t);
    Some(match bare {
        "ipv4-acl-type" => ("ipv4-acl-type", false),
        "ipv6-acl-type" => ("ipv6-acl-type", false),
        "eth-acl-type" => ("eth-acl-type", false),
        "mixed-eth-ipv4-acl-type" => ("mixed-eth-ipv4-acl-type", false),
        "mixed-eth-ipv6-acl-type" => ("mixed-eth-ipv6-acl-type", false),
        "mixed-eth-ipv4-ipv6-acl-type" => ("mixed-eth-ipv4-ipv6-acl-type", false),
        "ipv4" | "ipv4-acl" => ("ipv4-acl-type", true),
        "ipv6" | "ipv6-acl" => ("ipv6-acl-type", true),
        "ethernet-acl-type" | "eth" | "eth-acl" | "ethernet-acl" => ("eth-acl-type", true),
        _ => return None,
    })
}

fn repair_acl(acl: &mut Map<String, Value>, at: &str, p: &mut Problems, map: &mut PathMap) {
    if rename(acl, at, "acl-name", "name", map) {
        p.deviation(
            &join(at, "acl-name"),
            Code::DraftAclName,
            "draft-era `acl-name`; RFC 8519 calls it `name`",
        );
    }
    if rename(acl, at, "acl-type", "type", map) {
        p.deviation(
            &join(at, "acl-type"),
            Code::DraftAclType,
            "draft-era `acl-type`; RFC 8519 calls it `type`",
        );
    }
    if let Some(Value::String(t)) = acl.get_mut("type") {
        if let Some((name, deviation)) = acl_type_name(t) {
            if deviation {
                p.deviation(
                    &join(at, "type"),
                    Code::AclTypeName,
                    format!("`{t}` is not an RFC 8519 ACL type; read as `{name}`"),
                );
            }
            *t = name.to_string();
        }
    }
    if rename(acl, at, "access-list-entries", "aces", map) {
        p.deviation(
            &join(at, "access-list-entries"),
            Code::DraftAces,
            "draft-era `access-list-entries`; RFC 8519 calls it `aces`",
        );
    }
    let Some(list) = acl
        .get_mut("aces")
        .and_then(|v| v.get_mut("ace"))
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    let base = join(&join(at, "aces"), "ace");
    for (i, ace) in list.iter_mut().enumerate() {
        if let Value::Object(ace) = ace {
            repair_ace(ace, &join(&base, i), p, map);
        }
    }
}

fn repair_ace(ace: &mut Map<String, Value>, at: &str, p: &mut Problems, map: &mut PathMap) {
    if rename(ace, at, "rule-name", "name", map) {
        p.deviation(
            &join(at, "rule-name"),
            Code::DraftRuleName,
            "draft-era `rule-name`; RFC 8519 calls it `name`",
        );
    }
    let Some(Value::Object(m)) = ace.get_mut("matches") else {
        return;
    };
    let at = join(at, "matches");
    for (draft, l3) in [("ipv4-acl", "ipv4"), ("ipv6-acl", "ipv6")] {
        if rename(m, &at, draft, l3, map) {
            p.deviation(
                &join(&at, draft),
                Code::DraftL3Name,
                format!("draft-era `{draft}`; RFC 8519 calls it `{l3}`"),
            );
        }
    }
    // MUD abstractions outside `ietf-mud:mud`: (leaf, value, repaired path it was at).
    let mat = join(&at, "ietf-mud:mud");
    let mut moved: Vec<(String, Value, String)> = Vec::new();
    let mud_acl = m.remove("ietf-mud:mud-acl").map(|v| {
        let from = join(&at, "ietf-mud:mud-acl");
        p.deviation(
            &from,
            Code::DraftMudAcl,
            "draft-era `ietf-mud:mud-acl`; RFC 8520 calls it `ietf-mud:mud`",
        );
        if let Value::Object(o) = v {
            for (k, v) in o {
                let was = join(&from, &k);
                moved.push((k, v, was));
            }
        }
        from
    });
    for leaf in MUD_LEAVES {
        let key = format!("ietf-mud:{leaf}");
        if let Some(v) = m.remove(&key) {
            let was = join(&at, &key);
            p.deviation(
                &was,
                Code::DraftMudAcl,
                format!("`{key}` directly in `matches`; RFC 8520 puts it in `ietf-mud:mud`"),
            );
            moved.retain(|(k, _, _)| k != leaf);
            moved.push(((*leaf).to_string(), v, was));
        }
    }
    if !moved.is_empty() {
        if !m.contains_key("ietf-mud:mud") {
            match &mud_acl {
                Some(from) => {
                    let original = map.original(from);
                    map.moved(&mat, &original);
                }
                None => map.created(&mat),
            }
        }
        let target = m
            .entry("ietf-mud:mud")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(t) = target {
            for (k, v, was) in moved {
                if !t.contains_key(&k) {
                    let original = map.original(&was);
                    map.moved(&join(&mat, &k), &original);
                    t.insert(k, v);
                }
            }
        }
    }
    if let Some(Value::Object(mm)) = m.get_mut("ietf-mud:mud") {
        for leaf in EMPTY_LEAVES {
            let Some(v) = mm.get(*leaf) else { continue };
            if is_empty_leaf(v) {
                continue;
            }
            let lat = join(&mat, leaf);
            if *v == Value::Bool(false) {
                p.deviation(
                    &lat,
                    Code::EmptyLeafEncoding,
                    format!("`{leaf}: false` is no YANG `empty` value; read as absent"),
                );
                mm.remove(*leaf);
                continue;
            }
            p.deviation(
                &lat,
                Code::EmptyLeafEncoding,
                format!("`{leaf}` is an `empty` leaf, written [null] in JSON (RFC 7951 section 6.9); read `{v}` as present"),
            );
            mm.insert((*leaf).to_string(), empty_leaf());
            map.replaced(&lat);
        }
    }
    // Port matches inside the L3 container (draft era).
    for l3 in ["ipv4", "ipv6"] {
        let Some(Value::Object(ip)) = m.get_mut(l3) else {
            continue;
        };
        let l3at = join(&at, l3);
        let l4 = match ip.get("protocol").and_then(Value::as_u64) {
            Some(6) => Some("tcp"),
            Some(17) => Some("udp"),
            _ => None,
        };
        let mut ports = Vec::new();
        for (draft, key) in [
            ("source-port-range-or-operator", "source-port"),
            ("source-port-range", "source-port"),
            ("destination-port-range-or-operator", "destination-port"),
            ("destination-port-range", "destination-port"),
        ] {
            if l4.is_none() || !ip.contains_key(draft) {
                continue;
            }
            if let Some(v) = ip.remove(draft) {
                let was = join(&l3at, draft);
                p.deviation(
                    &was,
                    Code::DraftPortInL3,
                    format!(
                        "draft-era `{draft}` in the {l3} match; RFC 8519 puts `{key}` in the transport match"
                    ),
                );
                ports.push((key, v, was));
            }
        }
        if let Some(l4) = l4 {
            if !ports.is_empty() {
                let tat = join(&at, l4);
                if !m.contains_key(l4) {
                    map.created(&tat);
                }
                let target = m.entry(l4).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(t) = target {
                    for (k, v, was) in ports {
                        if !t.contains_key(k) {
                            let original = map.original(&was);
                            map.moved(&join(&tat, k), &original);
                            t.insert(k.to_string(), v);
                        }
                    }
                }
            }
        }
    }
    for l4 in ["tcp", "udp"] {
        let Some(Value::Object(t)) = m.get_mut(l4) else {
            continue;
        };
        let tat = join(&at, l4);
        if l4 == "tcp"
            && rename(
                t,
                &tat,
                "direction-initiated",
                "ietf-mud:direction-initiated",
                map,
            )
        {
            p.deviation(
                &join(&tat, "direction-initiated"),
                Code::DraftDirection,
                "`direction-initiated` belongs to module ietf-mud: `ietf-mud:direction-initiated`",
            );
        }
        for side in ["source-port", "destination-port"] {
            let Some(Value::Object(pm)) = t.get_mut(side) else {
                continue;
            };
            if pm.contains_key("lower-port") && pm.contains_key("upper-port") {
                if let Some(op) = pm.remove("operator") {
                    p.deviation(
                        &join(&join(&tat, side), "operator"),
                        Code::RangeWithOperator,
                        format!("a range has no operator in RFC 8519 (this one says {op}); read as the range lower-port..upper-port"),
                    );
                }
            }
        }
    }
    if let Some(Value::Object(eth)) = m.get_mut("eth") {
        if let Some(Value::String(s)) = eth.get("ethertype") {
            let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                Some(hex) => u16::from_str_radix(hex, 16).ok(),
                None => s.parse::<u16>().ok(),
            };
            if let Some(n) = parsed {
                let eat = join(&join(&at, "eth"), "ethertype");
                p.deviation(
                    &eat,
                    Code::HexEthertype,
                    format!("ethertype `{s}` is a string; a uint16 is a JSON number ({n})"),
                );
                eth.insert("ethertype".into(), Value::from(n));
                map.replaced(&eat);
            }
        }
    }
}

fn empty_leaf() -> Value {
    Value::Array(vec![Value::Null])
}

fn is_empty_leaf(v: &Value) -> bool {
    matches!(v, Value::Array(a) if a.len() == 1 && a[0].is_null())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draft_shapes_are_repaired_with_paths() {
        let mut doc: Value = serde_json::from_str(
            r#"{"ietf-mud:mud":{"mud-url":"https://a.example/x","last-update":"2018-01-01T00:00:00Z","is-supported":true},
            "ietf-access-control-list:access-lists":{"acl":[{"acl-name":"a","acl-type":"ipv4-acl","access-list-entries":{"ace":[
              {"rule-name":"r","matches":{"ipv4-acl":{"protocol":6,"destination-port-range":{"lower-port":9,"upper-port":9}},
               "ietf-mud:same-manufacturer":[]},"actions":{"forwarding":"accept"}}]}}]}}"#,
        )
        .expect("json");
        let mut p = Problems::new(false);
        let mut map = PathMap::default();
        repair(&mut doc, &mut p, &mut map).expect("repairs");
        let codes: Vec<&str> = p.list.iter().map(|x| x.code.as_str()).collect();
        for c in [
            "draft-acl-container",
            "missing-mud-version",
            "draft-acl-name",
            "draft-acl-type",
            "acl-type-name",
            "draft-aces",
            "draft-rule-name",
            "draft-l3-name",
            "draft-mud-acl",
            "draft-port-in-l3",
        ] {
            assert!(codes.contains(&c), "{c} missing from {codes:?}");
        }
        let ace = &doc["ietf-access-control-list:acls"]["acl"][0]["aces"]["ace"][0];
        assert_eq!(ace["matches"]["tcp"]["destination-port"]["lower-port"], 9);
        assert_eq!(
            ace["matches"]["ietf-mud:mud"]["same-manufacturer"],
            serde_json::json!([null])
        );
        assert!(p
            .list
            .iter()
            .any(|x| x.path == "/ietf-access-control-list:access-lists"));
        // Paths into the repaired tree name the file's nodes.
        let ace_at = "/ietf-access-control-list:access-lists/acl/0/access-list-entries/ace/0";
        for (repaired, original) in [
            (
                "/ietf-access-control-list:acls/acl/0/aces/ace/0/matches/ipv4/protocol".to_string(),
                format!("{ace_at}/matches/ipv4-acl/protocol"),
            ),
            (
                "/ietf-access-control-list:acls/acl/0/aces/ace/0/matches/tcp/destination-port/lower-port".into(),
                format!("{ace_at}/matches/ipv4-acl/destination-port-range/lower-port"),
            ),
            (
                "/ietf-access-control-list:acls/acl/0/aces/ace/0/matches/tcp".into(),
                format!("{ace_at}/matches"),
            ),
            (
                "/ietf-access-control-list:acls/acl/0/aces/ace/0/matches/ietf-mud:mud/same-manufacturer".into(),
                format!("{ace_at}/matches/ietf-mud:same-manufacturer"),
            ),
            (
                "/ietf-access-control-list:acls/acl/0/aces/ace/0/name".into(),
                format!("{ace_at}/rule-name"),
            ),
            (
                "/ietf-access-control-list:acls/acl/0/type".into(),
                "/ietf-access-control-list:access-lists/acl/0/acl-type".into(),
            ),
            ("/ietf-mud:mud/mud-version".into(), "/ietf-mud:mud".into()),
        ] {
            assert_eq!(map.original(&repaired), original, "{repaired}");
        }
        let mut strict = Problems::new(true);
        let mut again: Value = serde_json::from_str(
            r#"{"ietf-mud:mud":{"mud-url":"https://a.example/x","last-update":"x","is-supported":true}}"#,
        )
        .expect("json");
        repair(&mut again, &mut strict, &mut PathMap::default()).expect("repairs");
        assert!(strict.has_errors());
    }
}
