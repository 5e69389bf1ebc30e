//! The second edition's constructs through MUD export and back. Expected ACEs are written by
//! hand from the fixtures (`test-data/profiles/good/edition2.yaml`, `discovered.yaml`,
//! `two-zone-gateway.yaml`, `aws-iot-core-device.yaml`) and RFC 8519 (a port list is one ACE
//! per item, a range is `lower-port`/`upper-port` without `operator`, section 4.1 of the
//! `ietf-packet-fields` module); validity is the strict reader's (every deviation from RFC
//! 8519/8520 an error), and the round trip compares the imported profile with the fixture.

use std::collections::BTreeMap;
use std::path::Path;

use portolan_model::{Flow, Profile};
use portolan_mud::{export, import, ExportOptions, Exported, ImportOptions};
use serde_json::{json, Value};

fn fixture(name: &str) -> Profile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-data/profiles/good")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("fixture");
    portolan_model::validate::profile_text(name, &text)
        .unwrap_or_else(|d| panic!("{name}: {d:?}"))
        .value
}

fn opts(id: &str, choose: &[(&str, &str)]) -> ExportOptions {
    let mut o = ExportOptions::new(format!("https://mud.example.com/{id}.json"));
    o.choose = choose
        .iter()
        .map(|(g, f)| (g.to_string(), f.to_string()))
        .collect::<BTreeMap<_, _>>();
    o
}

/// The extension's entry of flow `id`.
fn ext_flow<'a>(out: &'a Exported, id: &str) -> &'a Value {
    let ext = out.mud.mud.portolan.as_ref().expect("extension");
    ext["flows"]
        .as_array()
        .expect("flows")
        .iter()
        .find(|f| f["flow"]["id"] == id)
        .unwrap_or_else(|| panic!("no extension flow {id}"))
}

/// Every ACE of the file named `<flow>-<n>`, as (ACL name, matches).
fn aces_of(out: &Exported, flow: &str) -> Vec<(String, Value)> {
    let doc: Value = serde_json::from_str(&out.json).expect("json");
    let mut got = Vec::new();
    for acl in doc["ietf-access-control-list:acls"]["acl"]
        .as_array()
        .expect("acls")
    {
        for ace in acl["aces"]["ace"].as_array().expect("aces") {
            let name = ace["name"].as_str().expect("name");
            let Some((head, n)) = name.rsplit_once('-') else {
                continue;
            };
            if head == flow && n.parse::<u32>().is_ok() {
                got.push((
                    acl["name"].as_str().expect("acl name").to_string(),
                    ace["matches"].clone(),
                ));
            }
        }
    }
    got
}

fn codes(out: &Exported) -> Vec<&str> {
    out.warnings.iter().map(|w| w.code.as_str()).collect()
}

fn strict() -> ImportOptions {
    ImportOptions {
        strict: true,
        ..ImportOptions::default()
    }
}

#[test]
fn a_policy_one_group_needs_a_pick_and_the_others_get_no_ace() {
    let p = fixture("edition2.yaml");
    let e = export(&p, &opts("edition2", &[])).expect_err("exactly one forwarder");
    let msg = e.to_string();
    assert!(
        msg.contains("--choose forwarder=forward-plain"),
        "the help names the option: {msg}"
    );
    let e = export(&p, &opts("edition2", &[("forwarder", "mqtt-443")])).expect_err("not a member");
    assert!(e.to_string().contains("forward-plain, forward-tls"), "{e}");
    let e = export(&p, &opts("edition2", &[("nosuch", "x")])).expect_err("no such group");
    assert!(e.to_string().contains("mqtt, forwarder"), "{e}");

    let out = export(&p, &opts("edition2", &[("forwarder", "forward-tls")])).expect("exports");
    assert!(aces_of(&out, "forward-plain").is_empty());
    let plain = ext_flow(&out, "forward-plain");
    assert_eq!(plain["aces"], json!([]));
    assert!(
        plain["unexpressed"]
            .as_str()
            .is_some_and(|w| w.contains("picks `forward-tls`")),
        "{plain}"
    );
    // TCP 6514 to cloud.example.com, device-initiated, both families: two pairs.
    let tls = aces_of(&out, "forward-tls");
    assert_eq!(tls.len(), 4, "{tls:?}");
    for (acl, m) in &tls {
        let l3 = if acl.ends_with("-v4fr") || acl.ends_with("-v4to") {
            &m["ipv4"]
        } else {
            &m["ipv6"]
        };
        assert_eq!(l3["protocol"], 6);
        assert_eq!(m["tcp"]["ietf-mud:direction-initiated"], "from-device");
        if acl.ends_with("fr") {
            assert_eq!(l3["ietf-acldns:dst-dnsname"], "cloud.example.com");
            assert_eq!(
                m["tcp"]["destination-port"],
                json!({"operator": "eq", "port": 6514})
            );
        } else {
            assert_eq!(l3["ietf-acldns:src-dnsname"], "cloud.example.com");
            assert_eq!(
                m["tcp"]["source-port"],
                json!({"operator": "eq", "port": 6514})
            );
        }
    }
    // Not chosen is intended: no warning about it.
    assert!(!out
        .warnings
        .iter()
        .any(|w| w.message.contains("forward-plain")));
    assert!(out.unexpressed.contains(&"forward-plain".to_string()));
}

#[test]
fn an_ordered_fallback_is_one_ace_set_per_flow_and_a_port_list_one_ace_per_item() {
    let p = fixture("edition2.yaml");
    let out = export(&p, &opts("edition2", &[("forwarder", "forward-plain")])).expect("exports");
    // mqtt: ordered, 8883 else 443: both kept, each with its own ACEs.
    let ports = |flow: &str| -> Vec<Value> {
        let mut v: Vec<Value> = aces_of(&out, flow)
            .into_iter()
            .filter(|(acl, _)| acl.ends_with("-v4fr"))
            .map(|(_, m)| {
                m["tcp"]["destination-port"]
                    .clone()
                    .as_object()
                    .map_or_else(
                        || m["udp"]["destination-port"].clone(),
                        |_| m["tcp"]["destination-port"].clone(),
                    )
            })
            .collect();
        v.sort_by_key(|x| x.to_string());
        v
    };
    assert_eq!(
        ports("mqtt-8883"),
        [json!({"operator": "eq", "port": 8883})]
    );
    assert_eq!(ports("mqtt-443"), [json!({"operator": "eq", "port": 443})]);
    // "5140, 6514-6515": one ACE for 5140, one RFC 8519 range (no operator).
    assert_eq!(
        ports("forward-plain"),
        [
            json!({"lower-port": 6514, "upper-port": 6515}),
            json!({"operator": "eq", "port": 5140}),
        ]
    );
    // UDP, the device sends first: from-device ACEs, and the reply ACEs reversed.
    let to: Vec<Value> = aces_of(&out, "forward-plain")
        .into_iter()
        .filter(|(acl, _)| acl.ends_with("-v4to"))
        .map(|(_, m)| m["udp"]["source-port"].clone())
        .collect();
    assert_eq!(to.len(), 2, "{to:?}");
    // The extension keeps the order and the policy, and the idle timeout.
    let ext = out.mud.mud.portolan.as_ref().expect("extension");
    assert_eq!(
        ext["profile"]["alternatives"][0],
        json!({"id": "mqtt", "policy": "ordered", "description": "8883, else 443",
               "flows": ["mqtt-8883", "mqtt-443"],
               "source": [{"doc": "doc", "ref": "Ports: 8883, else 443"}]})
    );
    assert_eq!(ext_flow(&out, "forward-plain")["flow"]["idle_timeout"], 300);
}

#[test]
fn conditions_replaces_and_proxies_never_narrow_nor_widen_and_say_so() {
    let p = fixture("edition2.yaml");
    let out = export(&p, &opts("edition2", &[("forwarder", "forward-tls")])).expect("exports");
    let c = codes(&out);
    // ntp-pool (not local-ntp), https-fallback (any/all), https-only, ntp-local: conditions.
    let cond: Vec<&str> = out
        .warnings
        .iter()
        .filter(|w| w.code.as_str() == "condition-not-in-acls")
        .map(|w| w.message.as_str())
        .collect();
    assert!(
        cond.iter()
            .any(|m| m.contains("`ntp-pool`") && m.contains("not (feature local-ntp)")),
        "{cond:?}"
    );
    assert!(
        cond.iter().any(|m| m.contains("`https-fallback`")
            && m.contains(
                "any of (feature fallback, all of (version < 2, not (feature local-ntp)))"
            )),
        "{cond:?}"
    );
    // udp-7351 is replaced by https-only only with the feature: both keep their ACEs.
    assert!(c.contains(&"replaced-not-in-acls"), "{c:?}");
    assert!(!aces_of(&out, "udp-7351").is_empty());
    assert!(!aces_of(&out, "https-only").is_empty());
    // mqtt-443 may go through a proxy: its ACEs are to its own peer, and a warning says so.
    assert!(out
        .warnings
        .iter()
        .any(|w| w.code.as_str() == "proxy-not-in-acls" && w.message.contains("`mqtt-443`")));
    assert!(aces_of(&out, "mqtt-443")
        .iter()
        .all(|(_, m)| m.to_string().contains("cloud.example.com")));
    let ext = ext_flow(&out, "mqtt-443");
    assert_eq!(
        ext["flow"]["proxy"],
        json!({"http": "supported", "connect_only": true, "authenticated": "unsupported"})
    );
}

#[test]
fn an_unconditional_replacement_leaves_the_replaced_flow_without_ace() {
    let mut p = fixture("edition2.yaml");
    let f = p
        .flows
        .iter_mut()
        .find(|f| f.id == "https-only")
        .expect("flow");
    f.conditions.clear();
    let out = export(&p, &opts("edition2", &[("forwarder", "forward-tls")])).expect("exports");
    assert!(aces_of(&out, "udp-7351").is_empty());
    assert_eq!(
        ext_flow(&out, "udp-7351")["unexpressed"],
        "replaced by flow `https-only`"
    );
    assert!(!codes(&out).contains(&"replaced-not-in-acls"));
}

/// A flow as compared: everything, with the peer endpoint's definition beside it.
fn view(p: &Profile, f: &Flow) -> String {
    let peer = p.endpoint(f.peer()).cloned();
    format!("{f:?}\n  peer {peer:?}")
}

#[test]
fn the_second_edition_survives_export_and_strict_import() {
    for (name, choose) in [
        ("edition2.yaml", vec![("forwarder", "forward-plain")]),
        (
            "aws-iot-core-device.yaml",
            vec![("mqtt", "mqtt-443"), ("https", "https-8443")],
        ),
        ("discovered.yaml", vec![]),
    ] {
        let p = fixture(name);
        let out = export(&p, &opts(&p.id, &choose)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let back = import(out.json.as_bytes(), &strict())
            .unwrap_or_else(|e| panic!("{name}: {e:?}\n{}", out.json));
        assert!(back.extension_used, "{name}");
        // AWS's host needs the account's prefix and region, params without default: no flow
        // has an ACE, and the reader says the file allows nothing.
        let want: &[&str] = if name.starts_with("aws") {
            &["no-acls"]
        } else {
            &[]
        };
        let got: Vec<&str> = back.warnings.iter().map(|w| w.code.as_str()).collect();
        assert_eq!(got, want, "{name}: {:?}", back.warnings);
        let b = &back.profile;
        assert_eq!(b.portolan, 2, "{name}");
        let want: Vec<String> = p.flows.iter().map(|f| view(&p, f)).collect();
        let got: Vec<String> = b.flows.iter().map(|f| view(b, f)).collect();
        assert_eq!(want, got, "{name}: the flows changed");
        assert_eq!(p.alternatives, b.alternatives, "{name}");
        assert_eq!(p.requirements, b.requirements, "{name}");
        assert_eq!(p.sources, b.sources, "{name}");
    }
}

#[test]
fn sources_keep_date_revision_and_perspective() {
    let p = fixture("edition2.yaml");
    let out = export(&p, &opts("edition2", &[("forwarder", "forward-tls")])).expect("exports");
    let ext = out.mud.mud.portolan.as_ref().expect("extension");
    assert_eq!(ext["profile"]["portolan"], 2);
    assert_eq!(
        ext["profile"]["sources"][1],
        json!({"id": "console-guide", "title": "Example management console guide",
               "file": "console.txt", "date": "2023-11-02", "perspective": "console"})
    );
    assert_eq!(ext["profile"]["sources"][0]["revision"], "rev. C");
}

#[test]
fn a_discovered_endpoint_is_a_class_the_manager_binds() {
    let p = fixture("discovered.yaml");
    let out = export(&p, &opts("discovered", &[])).expect("exports");
    for (_, m) in aces_of(&out, "mqtt") {
        assert_eq!(
            m["ietf-mud:mud"]["controller"],
            "https://mud.example.com/discovered.json#broker"
        );
    }
    let ext = out.mud.mud.portolan.as_ref().expect("extension");
    let broker = ext["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .find(|e| e["id"] == "broker")
        .expect("broker");
    assert_eq!(
        broker["discovered"],
        json!({"via": "srv", "name": "_mqtt._tcp.example.com"})
    );
}

#[test]
fn aws_requirements_and_tls_travel_in_the_extension() {
    let p = fixture("aws-iot-core-device.yaml");
    let out = export(
        &p,
        &opts("aws", &[("mqtt", "mqtt-443"), ("https", "https-443")]),
    )
    .expect("exports");
    let ext = out.mud.mud.portolan.as_ref().expect("extension");
    assert_eq!(ext["profile"]["requirements"][0]["kind"], "credentials");
    assert_eq!(
        ext_flow(&out, "mqtt-443")["flow"]["tls"],
        json!({"alpn": ["x-amzn-mqtt-ca"], "client_cert": true})
    );
    assert!(ext_flow(&out, "mqtt-8883")["unexpressed"]
        .as_str()
        .is_some_and(|w| w.contains("picks `mqtt-443`")));
}

#[test]
fn a_multi_homed_device_is_exported_one_interface_per_file() {
    let p = fixture("two-zone-gateway.yaml");
    let e = export(&p, &opts("gw", &[])).expect_err("two interfaces");
    assert!(e.to_string().contains("--interface"), "{e}");
    let mut o = opts("gw-ot", &[]);
    o.interface = Some("dmz".into());
    assert!(export(&p, &o).is_err());
    o.interface = Some("ot".into());
    let out = export(&p, &o).expect("exports");
    assert_eq!(out.interface.as_deref(), Some("ot"));
    // ot's flows: iec104 (ot) and syslog (it and ot); never the IT side's cloud flow.
    assert!(aces_of(&out, "cloud-https").is_empty());
    assert!(!out.json.contains("198.51.100.30"));
    assert!(!aces_of(&out, "iec104").is_empty());
    assert!(!aces_of(&out, "syslog").is_empty());
    let ext = out.mud.mud.portolan.as_ref().expect("extension");
    let ids: Vec<&Value> = ext["profile"]["interfaces"]
        .as_array()
        .expect("interfaces")
        .iter()
        .map(|i| &i["id"])
        .collect();
    assert_eq!(ids, [&json!("ot")]);
    let back = import(out.json.as_bytes(), &strict()).expect("imports");
    let b = &back.profile;
    assert_eq!(
        b.flows.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
        ["iec104", "syslog"]
    );
    assert_eq!(b.interfaces.len(), 1);
}
