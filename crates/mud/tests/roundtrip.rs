//! Catalog profiles through MUD and back: for every profile and mode, export → import gives
//! the same flows (and the ACLs alone, without the extension, say the same protocols, ports,
//! directions and TCP initiation); the ThingPark IPsec export passes the strict reader with
//! no warning; exports are deterministic.

use portolan_model::catalog::Catalog;
use portolan_model::{Flow, PortItem, PortSpec, Profile};
use portolan_mud::{export, import, ExportOptions, ImportOptions, MudError};

fn catalog() -> Catalog {
    Catalog::embedded().expect("the shipped catalog validates")
}

fn modes(p: &Profile) -> Vec<Option<String>> {
    if p.modes.is_empty() {
        vec![None]
    } else {
        p.modes.iter().map(|m| Some(m.id.clone())).collect()
    }
}

fn opts(p: &Profile, mode: &Option<String>) -> ExportOptions {
    let mut o = ExportOptions::new(format!("https://mud.example.com/{}.json", p.id));
    o.mode = mode.clone();
    o
}

/// A flow as compared: everything, with `modes` left out (an export holds one mode) and the
/// peer endpoint's definition beside it.
fn view(p: &Profile, f: &Flow) -> String {
    let mut f = f.clone();
    f.modes.clear();
    let peer = p.endpoint(f.peer()).cloned();
    format!("{f:?}\n  peer {peer:?}")
}

#[test]
fn every_catalog_profile_and_mode_survives_export_and_import() {
    let cat = catalog();
    let mut pairs = 0;
    for e in &cat.entries {
        let p = &e.profile;
        for mode in modes(p) {
            let out =
                export(p, &opts(p, &mode)).unwrap_or_else(|err| panic!("{} {mode:?}: {err}", p.id));
            let back = import(out.json.as_bytes(), &ImportOptions::default())
                .unwrap_or_else(|err| panic!("{} {mode:?}: {err:?}\n{}", p.id, out.json));
            assert!(
                back.warnings
                    .iter()
                    .all(|w| !w.code.as_str().starts_with("extension")),
                "{} {mode:?}: {:?}",
                p.id,
                back.warnings
            );
            let want: Vec<String> = p.flows_in(mode.as_deref()).map(|f| view(p, f)).collect();
            let got: Vec<String> = back
                .profile
                .flows_in(mode.as_deref())
                .map(|f| view(&back.profile, f))
                .collect();
            assert_eq!(want, got, "{} {mode:?}: the flows changed", p.id);
            pairs += 1;
        }
    }
    assert!(pairs >= 8, "only {pairs} profile/mode pairs");
}

fn items(spec: &PortSpec) -> Vec<PortItem> {
    match spec {
        PortSpec::List(l) => l.clone(),
        _ => Vec::new(),
    }
}

#[test]
fn the_acls_alone_say_the_same_protocols_ports_and_directions() {
    let cat = catalog();
    for e in &cat.entries {
        let p = &e.profile;
        for mode in modes(p) {
            let out = export(p, &opts(p, &mode)).expect("exports");
            let mut mud: serde_json::Value = serde_json::from_str(&out.json).expect("json");
            let container = mud["ietf-mud:mud"].as_object_mut().expect("container");
            container.remove("extensions");
            container.remove("portolan:profile");
            let bare = serde_json::to_vec(&mud).expect("json");
            let back = import(&bare, &ImportOptions::default())
                .unwrap_or_else(|err| panic!("{} {mode:?}: {err:?}", p.id));
            assert!(!back.extension_used);
            for f in p.flows_in(mode.as_deref()) {
                if out.unexpressed.contains(&f.id) {
                    continue;
                }
                let ports = items(&f.ports);
                let wanted: Vec<Option<&PortItem>> = if ports.is_empty() {
                    vec![None]
                } else {
                    ports.iter().map(Some).collect()
                };
                for port in wanted {
                    let found = back.profile.flows.iter().any(|g| {
                        g.protocol == f.protocol
                            && g.outbound() == f.outbound()
                            && port.is_none_or(|pt| items(&g.ports).contains(pt))
                            && items(&g.src_ports) == items(&f.src_ports)
                            && (f.protocol != portolan_model::Protocol::Tcp
                                || g.initiation == f.initiation)
                            && g.icmp_type == f.icmp_type
                    });
                    assert!(
                        found,
                        "{} {mode:?}: flow {} ({} {port:?}) is not in the bare ACLs: {:#?}",
                        p.id, f.id, f.protocol, back.profile.flows
                    );
                }
            }
        }
    }
}

#[test]
fn thingpark_ipsec_passes_the_strict_reader_without_warning() {
    let cat = catalog();
    let p = cat.get("thingpark-lrr").expect("in the catalog");
    let mut o = ExportOptions::new("https://example.com/lrr.json");
    o.mode = Some("ipsec".into());
    let out = export(p, &o).expect("exports");
    let back = import(
        out.json.as_bytes(),
        &ImportOptions {
            strict: true,
            file: "lrr.json".into(),
        },
    )
    .unwrap_or_else(|e| panic!("strict import refuses: {e:?}"));
    assert!(back.warnings.is_empty(), "{:?}", back.warnings);
    assert!(back.extension_used);
    assert_eq!(back.profile.flows.len(), p.flows_in(Some("ipsec")).count());
    // The ACLs hold what the RFCs ask for.
    let v: serde_json::Value = serde_json::from_str(&out.json).expect("json");
    let mud = &v["ietf-mud:mud"];
    assert_eq!(mud["mud-version"], 1);
    assert_eq!(mud["extensions"], serde_json::json!(["portolan"]));
    let from = mud["from-device-policy"]["access-lists"]["access-list"]
        .as_array()
        .expect("from-device ACLs");
    assert_eq!(from.len(), 2, "one per family");
    let text = out.json.as_str();
    for needle in [
        "\"urn:ietf:params:mud:dns\"",
        "\"urn:ietf:params:mud:ntp\"",
        "\"ietf-mud:direction-initiated\": \"from-device\"",
        "\"lower-port\": 3001",
        "\"upper-port\": 3003",
        "\"operator\": \"eq\"",
        "\"local-networks\": [\n",
        "\"ipv4-acl-type\"",
        "\"ipv6-acl-type\"",
    ] {
        assert!(text.contains(needle), "{needle} missing");
    }
    assert!(!text.contains("\"operator\": \"range\""));
}

#[test]
fn exports_are_deterministic_and_take_their_time_from_options() {
    let cat = catalog();
    let p = cat.get("oscar-templog-gateway").expect("in the catalog");
    let o = ExportOptions::new("https://example.com/oscar.json");
    let a = export(p, &o).expect("exports");
    let b = export(p, &o).expect("exports");
    assert_eq!(a.json, b.json);
    assert!(a.json.contains("\"last-update\": \"1970-01-01T00:00:00Z\""));
    let mut o2 = o.clone();
    o2.source_date_epoch = Some("1767225600".into());
    assert!(export(p, &o2)
        .expect("exports")
        .json
        .contains("\"last-update\": \"2026-01-01T00:00:00Z\""));
    o2.last_update = Some("2026-02-03T04:05:06+01:00".into());
    assert!(export(p, &o2)
        .expect("exports")
        .json
        .contains("\"last-update\": \"2026-02-03T04:05:06+01:00\""));
}

#[test]
fn export_refuses_what_it_cannot_write() {
    let cat = catalog();
    let p = cat.get("thingpark-lrr").expect("in the catalog");
    let err = export(p, &ExportOptions::new("https://example.com/x.json")).expect_err("modes");
    assert!(err.to_string().contains("--mode"), "{err}");
    let mut o = ExportOptions::new("http://example.com/x.json");
    o.mode = Some("ipsec".into());
    assert!(matches!(export(p, &o), Err(MudError::Export(_))));
    o.mud_url = "https://example.com/x.json".into();
    o.mode = Some("nope".into());
    assert!(export(p, &o).is_err());
}

#[test]
fn what_mud_cannot_say_is_warned_and_carried() {
    let cat = catalog();
    let p = cat.get("izuma-device-management").expect("in the catalog");
    let mut o = ExportOptions::new("https://example.com/izuma.json");
    o.mode = p.modes.first().map(|m| m.id.clone());
    let out = export(p, &o).expect("exports");
    let codes: Vec<&str> = out.warnings.iter().map(|w| w.code.as_str()).collect();
    assert!(codes.contains(&"not-in-acls"), "{codes:?}");
    assert!(codes.contains(&"param-default"), "{codes:?}");
    assert!(!out.unexpressed.is_empty());
    // Templates are written with their default in the ACLs, and kept in the extension.
    assert!(out.json.contains("bootstrap.us-east-1.mbedcloud.com"));
    assert!(out.json.contains("bootstrap.{region}.mbedcloud.com"));
    assert!(out.json.contains("*.mbedcloud.com"));
}
