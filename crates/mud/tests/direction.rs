//! The direction rule and the address family on small hand-written MUD files: what each ACE (or
//! pair of ACEs) admits per RFC 8520 sections 2 and 4.7 and RFC 8519 section 4.1, written here
//! by hand, against the flow the importer makes; plus what the import keeps (`mud-signature`)
//! and what the strict reader refuses (`controller` that is no URI).

use portolan_model::{Initiation, IpFamily};
use portolan_mud::{import, ImportOptions, MudError};
use serde_json::{json, Value};

/// A MUD file with one IPv4 ACL per policy holding `from` and `to` (absent when empty).
fn file(from: Vec<Value>, to: Vec<Value>, extra: Value) -> Vec<u8> {
    let mut mud = json!({
        "mud-version": 1,
        "mud-url": "https://example.com/t.json",
        "last-update": "2026-12-01T00:00:00Z",
        "cache-validity": 48,
        "is-supported": true,
        "systeminfo": "test",
    });
    let mut acls = Vec::new();
    for (key, name, aces) in [
        ("from-device-policy", "fr", from),
        ("to-device-policy", "to", to),
    ] {
        if aces.is_empty() {
            continue;
        }
        mud[key] = json!({"access-lists": {"access-list": [{"name": name}]}});
        acls.push(json!({"name": name, "type": "ipv4-acl-type", "aces": {"ace": aces}}));
    }
    if let (Some(m), Some(x)) = (mud.as_object_mut(), extra.as_object()) {
        m.extend(x.clone());
    }
    serde_json::to_vec(
        &json!({"ietf-mud:mud": mud, "ietf-access-control-list:acls": {"acl": acls}}),
    )
    .expect("JSON")
}

fn ace(name: &str, l4: &str, ports: Value) -> Value {
    let proto = if l4 == "tcp" { 6 } else { 17 };
    json!({"name": name, "matches": {
        "ipv4": {"protocol": proto},
        "ietf-mud:mud": {"controller": "https://example.com/t.json#ctl"},
        l4: ports,
    }, "actions": {"forwarding": "accept"}})
}

fn eq(p: u16) -> Value {
    json!({"operator": "eq", "port": p})
}

fn lenient() -> ImportOptions {
    ImportOptions {
        strict: false,
        file: "t.json".into(),
    }
}

fn codes(i: &portolan_mud::Imported) -> Vec<&str> {
    i.warnings.iter().map(|w| w.code.as_str()).collect()
}

#[test]
fn an_unpaired_to_device_ace_is_peer_initiated() {
    let to = ace(
        "in",
        "udp",
        json!({"source-port": eq(47808), "destination-port": eq(47808)}),
    );
    let i = import(&file(vec![], vec![to], json!({})), &lenient()).expect("imports");
    let f = &i.profile.flows[0];
    assert_eq!(f.initiation, Initiation::Peer);
    assert_eq!(f.to, "device");
    assert_eq!(f.ports.to_strings(), ["47808"]);
    assert_eq!(f.src_ports.to_strings(), ["47808"]);
    assert_eq!(f.family, Some(IpFamily::Ipv4));
}

#[test]
fn the_same_port_in_both_policies_is_either_side() {
    let m = json!({"source-port": eq(47808), "destination-port": eq(47808)});
    let i = import(
        &file(
            vec![ace("out", "udp", m.clone())],
            vec![ace("in", "udp", m)],
            json!({}),
        ),
        &lenient(),
    )
    .expect("imports");
    assert_eq!(i.profile.flows.len(), 1);
    assert_eq!(i.profile.flows[0].initiation, Initiation::Either);
}

#[test]
fn a_source_port_only_ace_without_partner_opens_nothing() {
    let to = ace("src80", "tcp", json!({"source-port": eq(80)}));
    let out = ace(
        "https",
        "tcp",
        json!({"destination-port": eq(443), "ietf-mud:direction-initiated": "from-device"}),
    );
    let i = import(&file(vec![out], vec![to], json!({})), &lenient()).expect("imports");
    assert_eq!(i.profile.flows.len(), 1, "only the HTTPS flow");
    assert_eq!(i.profile.flows[0].ports.to_strings(), ["443"]);
    assert!(codes(&i).contains(&"unpaired-return-path"));
    // Its mirror: a from-device ACE matching only the device's source port.
    let from = ace("dev80", "tcp", json!({"source-port": eq(80)}));
    let i = import(&file(vec![from], vec![], json!({})), &lenient()).expect("imports");
    assert!(i.profile.flows.is_empty(), "{:?}", i.profile.flows);
    assert!(codes(&i).contains(&"unpaired-return-path"));
}

#[test]
fn a_paired_return_path_is_part_of_the_device_initiated_flow() {
    let out = ace("out", "tcp", json!({"destination-port": eq(443)}));
    let back = ace("back", "tcp", json!({"source-port": eq(443)}));
    let i = import(&file(vec![out], vec![back], json!({})), &lenient()).expect("imports");
    assert_eq!(i.profile.flows.len(), 1);
    let f = &i.profile.flows[0];
    assert_eq!(f.initiation, Initiation::Device);
    assert_eq!(f.from, "device");
    assert!(!codes(&i).contains(&"unpaired-return-path"));
}

#[test]
fn a_contradicting_direction_initiated_skips_rather_than_widens() {
    // The device's port is matched (the peer would open it), but the ACEs say the device
    // initiates: no reading admits only what the file does.
    let m = json!({"destination-port": eq(8080), "ietf-mud:direction-initiated": "from-device"});
    let to = ace("in", "tcp", m);
    let back = ace(
        "back",
        "tcp",
        json!({"source-port": eq(8080), "ietf-mud:direction-initiated": "from-device"}),
    );
    let i = import(&file(vec![back], vec![to], json!({})), &lenient()).expect("imports");
    assert!(i.profile.flows.is_empty(), "{:?}", i.profile.flows);
    assert!(codes(&i).contains(&"direction-conflict"));
    // Two ACEs of one flow saying different initiators.
    let out = ace(
        "out",
        "tcp",
        json!({"destination-port": eq(443), "ietf-mud:direction-initiated": "from-device"}),
    );
    let back = ace(
        "back",
        "tcp",
        json!({"source-port": eq(443), "ietf-mud:direction-initiated": "to-device"}),
    );
    let i = import(&file(vec![out], vec![back], json!({})), &lenient()).expect("imports");
    assert!(i.profile.flows.is_empty());
    assert!(codes(&i).contains(&"direction-conflict"));
}

#[test]
fn the_mud_signature_is_kept_as_a_source() {
    let out = ace("out", "tcp", json!({"destination-port": eq(443)}));
    let back = ace("back", "tcp", json!({"source-port": eq(443)}));
    let sig = "https://example.com/t.p7s";
    let i = import(
        &file(vec![out], vec![back], json!({"mud-signature": sig})),
        &lenient(),
    )
    .expect("imports");
    let s = i.profile.source_doc("mud-signature").expect("a source");
    assert_eq!(s.url.as_deref(), Some(sig));
    assert!(i.yaml.contains(sig));
}

#[test]
fn strict_refuses_a_controller_that_is_no_uri() {
    let mut a = ace("out", "tcp", json!({"destination-port": eq(443)}));
    a["matches"]["ietf-mud:mud"]["controller"] = json!("bacnet");
    let bytes = file(vec![a], vec![], json!({}));
    let strict = ImportOptions {
        strict: true,
        file: "t.json".into(),
    };
    let Err(MudError::Refused { problems }) = import(&bytes, &strict) else {
        panic!("strict accepted a controller that is no URI");
    };
    let p = problems
        .iter()
        .find(|p| p.code == "controller-not-uri")
        .expect("controller-not-uri");
    assert!(p.is_error());
    assert!(
        p.path.ends_with("/matches/ietf-mud:mud/controller"),
        "{}",
        p.path
    );
    assert!(p.message.ends_with("refused (--strict)"), "{}", p.message);
    let i = import(&bytes, &lenient()).expect("lenient imports");
    assert!(codes(&i).contains(&"controller-not-uri"));
}

#[test]
fn export_does_not_invent_what_the_mud_file_did_not_say() {
    let out = ace("out", "tcp", json!({"destination-port": eq(443)}));
    let back = ace("back", "tcp", json!({"source-port": eq(443)}));
    // No mfg-name, model-name or documentation: the import makes a vendor and a product up
    // (a profile needs them), and the export must not write them back as stated.
    let i = import(&file(vec![out], vec![back], json!({})), &lenient()).expect("imports");
    let e = portolan_mud::export(
        &i.profile,
        &portolan_mud::ExportOptions::new("https://example.com/t.json"),
    )
    .expect("exports");
    assert_eq!(e.mud.mud.mfg_name, None);
    assert_eq!(e.mud.mud.model_name, None);
    assert_eq!(e.mud.mud.documentation, None);
    assert_eq!(e.mud.mud.systeminfo.as_deref(), Some("test"));
    let codes: Vec<&str> = e.warnings.iter().map(|w| w.code.as_str()).collect();
    assert_eq!(codes.iter().filter(|c| **c == "not-stated").count(), 2);
    // Stated ones are written.
    let named = file(
        vec![ace("o", "tcp", json!({"destination-port": eq(443)}))],
        vec![],
        json!({"mfg-name": "Example Corp", "model-name": "Sensor 1", "documentation": "https://example.com/doc"}),
    );
    let i = import(&named, &lenient()).expect("imports");
    let e = portolan_mud::export(
        &i.profile,
        &portolan_mud::ExportOptions::new("https://example.com/t.json"),
    )
    .expect("exports");
    assert_eq!(e.mud.mud.mfg_name.as_deref(), Some("Example Corp"));
    assert_eq!(e.mud.mud.model_name.as_deref(), Some("Sensor 1"));
    assert_eq!(
        e.mud.mud.documentation.as_deref(),
        Some("https://example.com/doc")
    );
}
