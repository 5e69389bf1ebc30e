//! The importer on its own: the strict reader, errors that name the JSON path, hostile input,
//! and an extension that does not match its ACLs.

use portolan_model::{Initiation, Protocol};
use portolan_mud::{export, import, ExportOptions, ImportOptions, MudError};

/// A file of `shared/interop/mud` beside the repository clone, or of `PORTOLAN_MUD_CORPUS`
/// (a worktree kept elsewhere than the clone).
fn corpus(rel: &str) -> Vec<u8> {
    let p = std::env::var_os("PORTOLAN_MUD_CORPUS")
        .map_or_else(
            || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/interop/mud"),
            std::path::PathBuf::from,
        )
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (shared/ must sit beside the repository)",
            p.display()
        )
    })
}

fn strict() -> ImportOptions {
    ImportOptions {
        strict: true,
        file: "t.json".into(),
    }
}

#[test]
fn the_rfc_example_passes_the_strict_reader() {
    let i = import(&corpus("rfc8520/rfc8520-section9-example.json"), &strict()).expect("imports");
    assert!(i.warnings.is_empty(), "{:?}", i.warnings);
    assert_eq!(i.profile.flows.len(), 1);
    let f = &i.profile.flows[0];
    assert_eq!(f.protocol, Protocol::Tcp);
    assert_eq!(f.initiation, Initiation::Device);
    assert_eq!(f.ports.to_strings(), vec!["443"]);
    let e = i.profile.endpoint(&f.to).expect("endpoint");
    assert_eq!(e.hosts, vec!["test.example.com"]);
}

#[test]
fn the_strict_reader_refuses_draft_files_naming_the_path() {
    let err = import(
        &corpus("iot-onboarding+mudfiles/unsw/HueBulbMud.json"),
        &strict(),
    )
    .expect_err("draft-era container");
    let MudError::Refused { problems } = err else {
        panic!("expected a refusal: {err:?}");
    };
    assert!(problems.iter().any(|p| p.is_error()
        && p.code == "draft-acl-container"
        && p.path == "/ietf-access-control-list:access-lists"));
    assert!(problems
        .iter()
        .any(|p| p.code == "hex-ethertype" && p.path.ends_with("/matches/eth/ethertype")));
    // The same file imports leniently, each repair a warning.
    let i = import(
        &corpus("iot-onboarding+mudfiles/unsw/HueBulbMud.json"),
        &ImportOptions::default(),
    )
    .expect("lenient");
    assert!(i.warnings.iter().all(|w| !w.is_error()));
    assert!(i.warnings.iter().any(|w| w.code == "draft-acl-container"));
}

#[test]
fn shape_errors_name_the_json_path() {
    let cases: [(&str, &str); 3] = [
        (r#"{"hello": 1}"#, ""),
        (
            r#"{"ietf-mud:mud": {"mud-version": "one", "mud-url": "https://a.example/x", "last-update": "2020-01-01T00:00:00Z", "is-supported": true}}"#,
            "/ietf-mud:mud/mud-version",
        ),
        (
            r#"{"ietf-mud:mud": {"mud-version": 1, "mud-url": "https://a.example/x", "last-update": "2020-01-01T00:00:00Z", "is-supported": true},
                "ietf-access-control-list:acls": {"acl": [{"name": "a", "aces": {"ace": [{"name": "e", "matches": {"tcp": {"source-port": {"port": 70000}}}, "actions": {"forwarding": "accept"}}]}}]}}"#,
            "/ietf-access-control-list:acls/acl/0/aces/ace/0/matches/tcp/source-port/port",
        ),
    ];
    for (text, path) in cases {
        match import(text.as_bytes(), &ImportOptions::default()) {
            Err(MudError::Json {
                path: p, reason, ..
            }) => {
                assert_eq!(p, path, "{text}: {reason}");
                assert!(!reason.is_empty());
            }
            other => panic!("{text}: expected a JSON error, got {other:?}"),
        }
    }
}

#[test]
fn hostile_names_cannot_reach_the_profile() {
    let text = r#"{"ietf-mud:mud": {"mud-version": 1, "mud-url": "https://a.example/x", "last-update": "2020-01-01T00:00:00Z", "is-supported": true,
        "from-device-policy": {"access-lists": {"access-list": [{"name": "f"}]}}},
      "ietf-access-control-list:acls": {"acl": [{"name": "f", "type": "ipv4-acl-type", "aces": {"ace": [
        {"name": "bad", "matches": {"ipv4": {"protocol": 6, "ietf-acldns:dst-dnsname": "evil.example\"; flush ruleset; \""}, "tcp": {"destination-port": {"port": 443}}}, "actions": {"forwarding": "accept"}},
        {"name": "good", "matches": {"ipv4": {"protocol": 6, "ietf-acldns:dst-dnsname": "good.example.com"}, "tcp": {"destination-port": {"port": 443}}}, "actions": {"forwarding": "accept"}}
      ]}}]}}"#;
    let i = import(text.as_bytes(), &ImportOptions::default()).expect("imports the good entry");
    assert_eq!(i.profile.flows.len(), 1);
    assert!(!i.yaml.contains("flush"));
    let w = i
        .warnings
        .iter()
        .find(|w| w.code == "invalid-dnsname")
        .expect("warned");
    assert_eq!(
        w.path,
        "/ietf-access-control-list:acls/acl/0/aces/ace/0/matches/ipv4/ietf-acldns:dst-dnsname"
    );
    assert!(matches!(
        import(text.as_bytes(), &strict()),
        Err(MudError::Refused { .. })
    ));
}

#[test]
fn an_extension_that_contradicts_its_acls_is_not_believed() {
    let cat = portolan_model::catalog::Catalog::embedded().expect("catalog");
    let p = cat.get("thingpark-lrr").expect("profile");
    let mut o = ExportOptions::new("https://example.com/lrr.json");
    o.mode = Some("ipsec".into());
    let out = export(p, &o).expect("exports");
    let mut v: serde_json::Value = serde_json::from_str(&out.json).expect("json");
    // The extension claims i9 is on port 2222; its ACEs say 22.
    let flows = v["ietf-mud:mud"]["portolan:profile"]["flows"]
        .as_array_mut()
        .expect("flows");
    let i9 = flows
        .iter_mut()
        .find(|f| f["flow"]["id"] == "i9")
        .expect("i9");
    i9["flow"]["ports"] = serde_json::json!(2222);
    let i = import(
        &serde_json::to_vec(&v).expect("json"),
        &ImportOptions::default(),
    )
    .expect("imports");
    assert!(i.warnings.iter().any(|w| w.code == "extension-mismatch"));
    assert!(i.profile.flows.iter().all(|f| !f.ports.contains(2222)));
    assert!(i
        .profile
        .flows
        .iter()
        .any(|f| f.id == "i9-0" && f.ports.contains(22)));
}

#[test]
fn not_json_is_located_once_one_based() {
    let e = import(b"{\"ietf-mud:mud\": {\n", &ImportOptions::default()).expect_err("not JSON");
    match &e {
        MudError::NotJson { line, column, .. } => assert_eq!((*line, *column), (2, 1)),
        other => panic!("expected NotJson, got {other:?}"),
    }
    // The CLI prints `{file}:{error}`: `bad.json:2:1: error[not-json]: …`.
    let text = format!("bad.json:{e}");
    assert!(
        text.starts_with("bad.json:2:1: error[not-json]: EOF while parsing"),
        "{text}"
    );
    assert!(!text.contains("line"), "location said twice: {text}");
    let e = import(b"{not json", &ImportOptions::default()).expect_err("not JSON");
    assert!(
        e.to_string()
            .starts_with("1:2: error[not-json]: key must be a string"),
        "{e}"
    );
}

/// Every path of a warning or error of a draft-era file resolves in the file as written,
/// however the repair renamed and moved what the later passes read.
#[test]
fn draft_shapes_are_reported_at_paths_the_file_has() {
    let text = r#"{"ietf-mud:mud": {"mud-url": "https://a.example/x", "last-update": "2020-01-01T00:00:00Z",
        "from-device-policy": {"access-lists": {"access-list": [{"acl-name": "f", "acl-type": "ipv4-acl"}]}}},
      "ietf-access-control-list:access-lists": {"acl": [{"acl-name": "f", "acl-type": "ipv4-acl", "access-list-entries": {"ace": [
        {"rule-name": "web", "matches": {"ipv4-acl": {"protocol": 6, "ietf-acldns:dst-dnsname": "*.example.com",
            "destination-port-range": {"operator": "eq", "lower-port": 443, "upper-port": 443}}},
         "actions": {"forwarding": "accept"}},
        {"rule-name": "gw", "matches": {"ietf-mud:controller": "urn:ietf:params:mud:gateway", "ietf-mud:same-manufacturer": []},
         "actions": {"forwarding": "accept"}},
        {"rule-name": "dns", "matches": {"ipv4-acl": {"protocol": 17, "ietf-acldns:dst-dnsname": "bad name"}},
         "actions": {"forwarding": "accept"}}
      ]}}]}}"#;
    let doc: serde_json::Value = serde_json::from_str(text).expect("json");
    let i = import(text.as_bytes(), &ImportOptions::default()).expect("imports");
    let ace = "/ietf-access-control-list:access-lists/acl/0/access-list-entries/ace";
    let want = [
        ("missing-mud-version", "/ietf-mud:mud".to_string()),
        (
            "range-with-operator",
            format!("{ace}/0/matches/ipv4-acl/destination-port-range/operator"),
        ),
        (
            "wildcard-dnsname",
            format!("{ace}/0/matches/ipv4-acl/ietf-acldns:dst-dnsname"),
        ),
        (
            "unregistered-controller",
            format!("{ace}/1/matches/ietf-mud:controller"),
        ),
        (
            "invalid-dnsname",
            format!("{ace}/2/matches/ipv4-acl/ietf-acldns:dst-dnsname"),
        ),
    ];
    for (code, path) in want {
        assert!(
            i.warnings.iter().any(|w| w.code == code && w.path == path),
            "no {code} at {path}: {:#?}",
            i.warnings
        );
    }
    for w in &i.warnings {
        assert!(
            doc.pointer(&w.path).is_some(),
            "{w}: the path is not in the file"
        );
    }
    let strict = import(
        text.as_bytes(),
        &ImportOptions {
            strict: true,
            ..ImportOptions::default()
        },
    );
    let Err(MudError::Refused { problems }) = strict else {
        panic!("strict mode refuses draft shapes: {strict:?}");
    };
    for e in &problems {
        assert!(
            doc.pointer(&e.path).is_some(),
            "{e}: the path is not in the file"
        );
    }
}

/// RFC 8519's `protocol` leaf is the upper-layer protocol: "In IPv6, this field is known as
/// 'next-header', and if extension headers are present, the protocol is present in the
/// 'upper-layer' header". Hop-by-Hop Options (0), Routing (43), Fragment (44) and Destination
/// Options (60) are extension headers (RFC 8200 section 4), never upper-layer, so an IPv6 ACE
/// naming one matches no packet: it is skipped with a warning at its `protocol`, and no flow
/// (no rule) comes of it. The UNSW MUD files hold such ACEs (0 and 44, to ff00::/8), written
/// from captures of MLD reports, whose first next-header is Hop-by-Hop. The ACEs beside them
/// (ICMPv6 and mDNS to ff00::/8) are kept as they are.
#[test]
fn an_ipv6_ace_naming_an_extension_header_matches_nothing_and_is_skipped() {
    let ace = |name: &str, proto: u8, l4: &str| {
        format!(
            r#"{{"name": "{name}", "matches": {{"ietf-mud:mud": {{"local-networks": [null]}}, "ipv6": {{"protocol": {proto}, "destination-ipv6-network": "ff00::/8"}}{l4}}}, "actions": {{"forwarding": "accept"}}}}"#
        )
    };
    let aces = [
        ace("hbh", 0, ""),
        ace("icmpv6", 58, ""),
        ace("routing", 43, ""),
        ace("frag", 44, ""),
        ace(
            "mdns",
            17,
            r#", "udp": {"destination-port": {"operator": "eq", "port": 5353}}"#,
        ),
        ace("dstopts", 60, ""),
    ];
    let text = format!(
        r#"{{"ietf-mud:mud": {{"mud-version": 1, "mud-url": "https://a.example/x", "last-update": "2020-01-01T00:00:00Z", "is-supported": true, "systeminfo": "x",
        "from-device-policy": {{"access-lists": {{"access-list": [{{"name": "f6"}}]}}}}}},
      "ietf-access-control-list:acls": {{"acl": [{{"name": "f6", "type": "ipv6-acl-type", "aces": {{"ace": [{}]}}}}]}}}}"#,
        aces.join(",\n")
    );
    for opts in [ImportOptions::default(), strict()] {
        let i = import(text.as_bytes(), &opts).expect("an RFC-valid file imports, strict or not");
        let kept: Vec<(String, Protocol)> = i
            .profile
            .flows
            .iter()
            .map(|f| (f.id.clone(), f.protocol.clone()))
            .collect();
        assert_eq!(
            kept,
            vec![
                ("icmpv6".to_string(), Protocol::Icmpv6),
                ("mdns".to_string(), Protocol::Udp)
            ],
            "{}",
            i.yaml
        );
        let skipped: Vec<&str> = i
            .warnings
            .iter()
            .filter(|w| w.code == "ipv6-extension-header")
            .map(|w| w.path.as_str())
            .collect();
        let at = |n: usize| {
            format!("/ietf-access-control-list:acls/acl/0/aces/ace/{n}/matches/ipv6/protocol")
        };
        assert_eq!(skipped, vec![at(0), at(2), at(3), at(5)]);
        assert!(i.warnings.iter().any(|w| w.code == "ipv6-extension-header"
            && w.message
                .contains("protocol 44 is the IPv6 Fragment header")));
    }
}
