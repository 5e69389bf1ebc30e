//! Lint on the shipped catalog and on sites built from it. Every expected finding is written
//! by hand: its level from the standard's word for the option (RFC 8247 and RFC 8221: MUST
//! NOT is an error, SHOULD NOT a warning, MAY a note), its line and column counted in the
//! catalog or site file, its timeout arithmetic done here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use portolan_lint::{config, Config, Conntrack, Level, LintCode, ProfileDoc, Report};
use portolan_model::raw_site::RawSite;
use portolan_testkit::profiles::Profiles;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// Every catalog profile with its text, by id, named as `portolan lint` names them.
fn catalog_docs() -> BTreeMap<String, ProfileDoc> {
    let mut docs = BTreeMap::new();
    for e in std::fs::read_dir(root().join("catalog")).expect("the catalog folder") {
        let path = e.expect("a catalog entry").path();
        if path.extension().is_some_and(|x| x == "yaml") {
            let name = format!(
                "catalog/{}",
                path.file_name().and_then(|n| n.to_str()).expect("a name")
            );
            let doc = ProfileDoc::from_text(&name, &read(&path))
                .unwrap_or_else(|d| panic!("{name} does not validate: {d:?}"));
            docs.insert(doc.profile.id.clone(), doc);
        }
    }
    docs
}

fn cfg(name: Option<&str>) -> Config {
    name.map_or_else(Config::default, |n| {
        config::parse(n, &read(&data(n))).unwrap_or_else(|d| panic!("{n}: {d:?}"))
    })
}

fn lint_profile(id: &str) -> Report {
    let docs = catalog_docs();
    portolan_lint::profile(&docs[id], &Config::default(), None)
}

/// Lints a site file (named as given) against the catalog.
fn lint_site(site: &Path, name: &str, config: &Config, conntrack: Option<Conntrack>) -> Report {
    let text = read(site);
    let policy = Profiles::catalog().compile(name, &text);
    let raw: RawSite = serde_saphyr::from_str(&text).expect("the site parses");
    portolan_lint::site(name, &raw, &policy, &catalog_docs(), config, conntrack)
}

/// (code, level, line, column) of every finding.
fn shape(r: &Report) -> Vec<(&'static str, Level, u64, u64)> {
    r.findings
        .iter()
        .map(|f| (f.code.as_str(), f.level, f.location.line, f.location.column))
        .collect()
}

const IPSEC: &[LintCode] = &[
    LintCode::Ikev1,
    LintCode::IkeWeakEncryption,
    LintCode::IkeWeakPrf,
    LintCode::IkeWeakIntegrity,
    LintCode::IkeWeakDhGroup,
    LintCode::EspWeakEncryption,
    LintCode::EspWeakIntegrity,
    LintCode::EspWeakDhGroup,
    LintCode::UnknownAlgorithm,
];

#[test]
fn wcc_lite_weak_options_each_flagged_at_its_option() {
    use Level::*;
    let r = lint_profile("elseta-wcc-lite");
    // catalog/elseta-wcc-lite.yaml, flow ipsec-ike (lines 156-159) and ipsec-esp (194-196):
    //   versions: [1, 2]                      IKEv1, RFC 9395
    //   encryption: [3des, ...]               IKE: RFC 8247 2.1 MAY; ESP: RFC 8221 5 SHOULD NOT
    //   integrity: [md5, ...]                 RFC 8247 2.3 / RFC 8221 6 MUST NOT
    //   dh_groups: [1, 2, 5, 14, 15, 16, 18]  RFC 8247 2.4: 1 MUST NOT, 2 and 5 SHOULD NOT
    // flow api (241): unauthenticated; flow snmp (287): UDP 161, SNMP.
    let expected = vec![
        ("ikev1", Warning, 156, 18),
        ("ike-weak-encryption", Note, 157, 20),
        ("ike-weak-integrity", Error, 158, 19),
        ("ike-weak-dh-group", Error, 159, 19),
        ("ike-weak-dh-group", Warning, 159, 22),
        ("ike-weak-dh-group", Warning, 159, 25),
        ("esp-weak-encryption", Warning, 194, 20),
        ("esp-weak-integrity", Error, 195, 19),
        ("esp-weak-dh-group", Error, 196, 19),
        ("esp-weak-dh-group", Warning, 196, 22),
        ("esp-weak-dh-group", Warning, 196, 25),
        ("unauthenticated-service", Warning, 241, 9),
        ("plaintext-service", Warning, 287, 9),
    ];
    assert_eq!(shape(&r), expected, "{:#?}", r.findings);
    let dh1 = &r.findings[3];
    assert_eq!(dh1.citations[0].standard, "RFC 8247");
    assert!(dh1.citations[0].section.starts_with("section 2.4"));
    assert_eq!(dh1.location.file, "catalog/elseta-wcc-lite.yaml");
    assert_eq!(
        dh1.provenance().as_deref(),
        Some("elseta-wcc-lite/ipsec-ike")
    );
}

#[test]
fn breadth_old_tls_telnet_and_unknown_options_in_a_profile() {
    let name = "breadth-profile.yaml";
    let doc = ProfileDoc::from_text(name, &read(&data(name))).expect("validates");
    let r = portolan_lint::profile(&doc, &Config::default(), None);
    use Level::*;
    // breadth-profile.yaml: "*.amazonaws.com" (line 8, column 27), 0.0.0.0/0 (9:30), the
    // `tls:` of `up` with TLS 1.1 (18:10, RFC 8996), flow `console` on TCP 23 (20:9), the
    // proposal with `foo512` (33:38).
    assert_eq!(
        shape(&r),
        vec![
            ("cloud-wildcard", Warning, 8, 27),
            ("any-peer", Warning, 9, 30),
            ("tls-old-version", Warning, 18, 10),
            ("plaintext-service", Warning, 20, 9),
            ("unknown-algorithm", Note, 33, 38),
        ],
        "{:#?}",
        r.findings
    );
    assert!(r.findings[0].reason.contains("`*.amazonaws.com`"));
    // RFC 9325 section 3.1.1: "Implementations MUST NOT negotiate TLS version 1.1".
    let cites = |i: usize| -> Vec<(&str, &str)> {
        r.findings[i]
            .citations
            .iter()
            .map(|c| (c.standard, c.section.split(" (").next().unwrap_or("")))
            .collect()
    };
    assert_eq!(
        cites(2),
        vec![
            ("RFC 8996 (BCP 195)", "abstract"),
            ("RFC 9325 (BCP 195)", "section 3.1.1")
        ]
    );
    // Telnet has no TLS-only form RFC 9325 section 3.2 could require: CWE-319 alone.
    assert_eq!(
        cites(3),
        vec![(
            "CWE-319 (Cleartext Transmission of Sensitive Information)",
            "description"
        )]
    );
}

#[test]
fn thingpark_proposals_pass() {
    // i6 and i7: ike aes128-sha256-ecp256, aes128-sha384-ecp384, aes256-sha512-ecp521 and esp
    // aes128gcm128, aes256gcm128: AES (CBC MUST, GCM SHOULD), SHA-2, ECP groups 19-21 - none
    // of them discouraged by RFC 8247 or RFC 8221.
    let r = lint_profile("thingpark-lrr");
    // Not vacuous: the profile does offer those proposals (catalog/thingpark-lrr.yaml lines
    // 95, 109 and 111); the same judge fails `3des-md5-dh2` in
    // `a_site_choosing_a_strong_proposal_passes_and_a_weak_one_fails`.
    let docs = catalog_docs();
    let doc = &docs["thingpark-lrr"];
    let offered: Vec<&str> = doc
        .profile
        .flows
        .iter()
        .flat_map(|f| f.ike.iter().chain(&f.esp))
        .flat_map(|c| c.proposals.iter().map(String::as_str))
        .collect();
    assert_eq!(
        offered,
        vec![
            "aes128-sha256-ecp256",
            "aes128-sha384-ecp384",
            "aes256-sha512-ecp521",
            "aes128-sha256-ecp256",
            "aes128-sha384-ecp384",
            "aes256-sha512-ecp521",
            "aes128gcm128",
            "aes256gcm128",
        ]
    );
    assert!(
        r.findings.iter().all(|f| !IPSEC.contains(&f.code)),
        "{:#?}",
        r.findings
    );
    // What it does flag: FTP (TCP 21) in the plain mode, rows i15 (line 398) and i17c (446).
    let ftp: Vec<_> = shape(&r)
        .into_iter()
        .filter(|s| s.0 == "plaintext-service")
        .collect();
    assert_eq!(
        ftp,
        vec![
            ("plaintext-service", Level::Warning, 398, 9),
            ("plaintext-service", Level::Warning, 446, 9)
        ]
    );
    // FTP's TLS comes by upgrade (AUTH TLS): RFC 9325 section 3.2 asks administrators for a
    // policy that forbids plaintext.
    let f = r
        .findings
        .iter()
        .find(|f| f.code == LintCode::PlaintextService)
        .expect("FTP");
    let sections: Vec<&str> = f.citations.iter().map(|c| c.section).collect();
    assert_eq!(sections[1], "section 3.2 (Strict TLS)", "{sections:?}");
}

#[test]
fn a_site_choosing_a_strong_proposal_passes_and_a_weak_one_fails() {
    let site = data("wcc-ipsec.yaml");
    let strong = lint_site(
        &site,
        "wcc-ipsec.yaml",
        &cfg(Some("strong.lint.yaml")),
        None,
    );
    assert!(
        strong.findings.iter().all(|f| !IPSEC.contains(&f.code)),
        "aes256-sha256-dh14 passes: {:#?}",
        strong.findings
    );
    let weak = lint_site(&site, "wcc-ipsec.yaml", &cfg(Some("weak.lint.yaml")), None);
    let ipsec: Vec<_> = shape(&weak)
        .into_iter()
        .filter(|s| IPSEC.iter().any(|c| c.as_str() == s.0))
        .collect();
    // 3des-md5-dh2 for IKE, at the proposal (weak.lint.yaml line 4, column 53): 3DES MAY
    // (RFC 8247 2.1), MD5 MUST NOT (2.3), group 2 SHOULD NOT (2.4).
    assert_eq!(
        ipsec,
        vec![
            ("ike-weak-encryption", Level::Note, 4, 53),
            ("ike-weak-integrity", Level::Error, 4, 53),
            ("ike-weak-dh-group", Level::Warning, 4, 53),
        ]
    );
    assert!(weak
        .findings
        .iter()
        .all(|f| f.location.file != "catalog/elseta-wcc-lite.yaml" || !IPSEC.contains(&f.code)));
}

#[test]
fn the_api_is_flagged_unless_reachable_only_from_management() {
    let only_mgmt = lint_site(
        &data("wcc-ipsec.yaml"),
        "wcc-ipsec.yaml",
        &cfg(Some("strong.lint.yaml")),
        None,
    );
    assert!(only_mgmt
        .findings
        .iter()
        .all(|f| f.code != LintCode::UnauthenticatedService));
    // The same binding without `management_zones`: mgmt is just a zone.
    let undeclared = lint_site(
        &data("wcc-ipsec.yaml"),
        "wcc-ipsec.yaml",
        &Config::default(),
        None,
    );
    let api: Vec<_> = shape(&undeclared)
        .into_iter()
        .filter(|s| s.0 == "unauthenticated-service")
        .collect();
    // wcc-ipsec.yaml line 22, column 19: the `management: [zone:mgmt]` binding.
    assert_eq!(
        api,
        vec![("unauthenticated-service", Level::Warning, 22, 19)]
    );
    // Bound to the field zone as well: reachable from field, and from every zone with networks.
    let field = lint_site(
        &data("wcc-api-field.yaml"),
        "wcc-api-field.yaml",
        &cfg(Some("strong.lint.yaml")),
        None,
    );
    let f: Vec<_> = field
        .findings
        .iter()
        .filter(|f| f.flow.as_deref() == Some("api"))
        .map(|f| {
            (
                f.code.as_str(),
                f.level,
                f.reason.contains("zone(s) field, mgmt"),
            )
        })
        .collect();
    assert_eq!(
        f,
        vec![
            ("unauthenticated-service", Level::Warning, true),
            ("open-to-every-zone", Level::Warning, false),
        ]
    );
}

#[test]
fn a_binding_to_any_is_open_from_everywhere() {
    let r = lint_site(
        &data("any-peer.yaml"),
        "any-peer.yaml",
        &Config::default(),
        None,
    );
    use Level::*;
    // any-peer.yaml line 22, column 23: `ser2net-client: [any]`. `any` is 0.0.0.0/0 and ::/0:
    // every zone with networks (field, mgmt) and outside them all.
    let ser2net: Vec<_> = shape(&r)
        .into_iter()
        .filter(|s| (s.2, s.3) == (22, 23))
        .collect();
    assert_eq!(
        ser2net,
        vec![
            ("any-peer", Warning, 22, 23),
            ("inbound-from-internet", Warning, 22, 23),
            ("open-to-every-zone", Warning, 22, 23),
        ]
    );
}

#[test]
fn izuma_keepalive_against_conntrack_and_nat() {
    let site = root().join("examples/site.yaml");
    let keepalives = |r: &Report| -> Vec<(&'static str, String)> {
        r.findings
            .iter()
            .filter(|f| {
                matches!(
                    f.code,
                    LintCode::KeepaliveOverConntrack | LintCode::KeepaliveOverNat
                )
            })
            .map(|f| (f.code.as_str(), f.flow.clone().unwrap_or_default()))
            .collect()
    };
    // Linux's default established timeout, 432000 s (5 days), is far above 540 s; the NAT's
    // 300 s is below it; both Izuma flows with `keepalive: 540` (mds-legacy-tcp, mds-tcp).
    let r = lint_site(
        &site,
        "examples/site.yaml",
        &cfg(Some("nat.lint.yaml")),
        cfg(Some("nat.lint.yaml")).conntrack,
    );
    assert_eq!(
        keepalives(&r),
        vec![
            ("keepalive-over-nat", "mds-legacy-tcp".to_string()),
            ("keepalive-over-nat", "mds-tcp".to_string()),
        ]
    );
    // examples/site.yaml line 43, column 9: `- id: izuma-devices`.
    assert!(r
        .findings
        .iter()
        .filter(|f| f.code == LintCode::KeepaliveOverNat)
        .all(|f| (f.location.line, f.location.column) == (43, 9)));
    // A NAT whose timeout the site does not give: the least RFC 5382 allows, 2 h 4 min =
    // 7440 s > 540 s; a conntrack timeout of 300 s < 540 s.
    let short = cfg(Some("short-conntrack.lint.yaml"));
    let r = lint_site(&site, "examples/site.yaml", &short, short.conntrack);
    assert_eq!(
        keepalives(&r),
        vec![
            ("keepalive-over-conntrack", "mds-legacy-tcp".to_string()),
            ("keepalive-over-conntrack", "mds-tcp".to_string()),
        ]
    );
    let remedy = &r
        .findings
        .iter()
        .find(|f| f.code == LintCode::KeepaliveOverConntrack)
        .expect("one")
        .remedy;
    // Twice the keepalive: 2 x 540 = 1080 s.
    assert!(
        remedy.contains("policy = { established: 1080 };"),
        "{remedy}"
    );
}

#[test]
fn an_accepted_finding_is_reported_as_accepted() {
    let c = cfg(Some("nat.lint.yaml"));
    let r = lint_site(
        &root().join("examples/site.yaml"),
        "examples/site.yaml",
        &c,
        None,
    );
    assert!(r
        .findings
        .iter()
        .all(|f| f.code != LintCode::PlaintextService));
    assert_eq!(r.accepted.len(), 1);
    let a = &r.accepted[0];
    assert_eq!(a.finding.code, LintCode::PlaintextService);
    assert_eq!(
        a.finding.provenance().as_deref(),
        Some("elseta-wcc-lite/snmp")
    );
    assert_eq!(a.reason, "the module runs SNMPv3 with authPriv only");
    // nat.lint.yaml line 7, column 5: the acceptance.
    assert_eq!((a.accepted_at.line, a.accepted_at.column), (7, 5));
}

#[test]
fn nested_zone_networks_and_zones_without_networks() {
    let r = lint_site(
        &data("nested.yaml"),
        "nested.yaml",
        &Config::default(),
        None,
    );
    let hygiene: Vec<_> = shape(&r)
        .into_iter()
        .filter(|s| s.0 == "nested-zone-networks" || s.0 == "zone-without-networks")
        .collect();
    // nested.yaml: 10.0.1.0/24 (line 9, column 16) inside 10.0.0.0/16; `zone: wan` of edge
    // (line 20, column 11).
    assert_eq!(
        hygiene,
        vec![
            ("nested-zone-networks", Level::Warning, 9, 16),
            ("zone-without-networks", Level::Note, 20, 11),
        ]
    );
}

/// Where `scripts/setup.sh` puts the SARIF 2.1.0 schema.
fn sarif_schema() -> PathBuf {
    if let Ok(p) = std::env::var("PORTOLAN_SARIF_SCHEMA") {
        return PathBuf::from(p);
    }
    let cache = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache"));
    cache.join("portolan/sarif-2.1.0-rtm.5.json")
}

/// Removes every `pattern` keyword equal to `bad`; how many.
fn drop_pattern(v: &mut serde_json::Value, bad: &str) -> usize {
    match v {
        serde_json::Value::Object(m) => {
            let mut n = 0;
            if m.get("pattern").and_then(|p| p.as_str()) == Some(bad) {
                m.remove("pattern");
                n += 1;
            }
            n + m.values_mut().map(|x| drop_pattern(x, bad)).sum::<usize>()
        }
        serde_json::Value::Array(a) => a.iter_mut().map(|x| drop_pattern(x, bad)).sum(),
        _ => 0,
    }
}

#[test]
fn sarif_output_validates_against_the_sarif_2_1_0_schema() {
    let path = sarif_schema();
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "the SARIF 2.1.0 schema is missing at {} ({e}): run scripts/setup.sh",
                path.display()
            )
        }))
        .expect("the schema is JSON");
    // rtm.5's one pattern that is not a valid regex (the `language` properties of `run` and
    // `toolComponent`, with a stray `]`): the meta-schema check refuses the schema for it.
    // Lint never writes `language`, so that keyword is dropped wherever it appears and
    // everything else is validated as published.
    let mut schema = schema;
    let dropped = drop_pattern(&mut schema, "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$");
    assert!(dropped >= 1, "the known erratum is where it was");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let c = cfg(Some("nat.lint.yaml"));
    let reports = vec![
        lint_profile("elseta-wcc-lite"),
        lint_site(
            &root().join("examples/site.yaml"),
            "examples/site.yaml",
            &c,
            c.conntrack,
        ),
    ];
    let log = serde_json::to_value(portolan_lint::sarif::log(&reports)).expect("serialises");
    let errors: Vec<String> = validator
        .iter_errors(&log)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // And it says what the reports say: 13 + 4 findings, and the accepted one suppressed.
    let results = log["runs"][0]["results"].as_array().expect("results");
    assert_eq!(results.len(), 13 + 4 + 1);
    let first = &results[0];
    assert_eq!(first["ruleId"], "ikev1");
    assert_eq!(
        first["locations"][0]["physicalLocation"]["region"]["startLine"],
        156
    );
    let suppressed: Vec<_> = results
        .iter()
        .filter(|r| r.get("suppressions").is_some())
        .collect();
    assert_eq!(suppressed.len(), 1);
    assert_eq!(
        suppressed[0]["suppressions"][0]["justification"],
        "the module runs SNMPv3 with authPriv only"
    );
    // A document that breaks the schema is refused, so the check above can fail.
    let mut broken = log.clone();
    broken["runs"][0]["results"][0]["level"] = "fatal".into();
    assert!(!validator.is_valid(&broken));
}

#[test]
fn a_site_accepts_a_finding_in_its_own_file() {
    // wcc-accept.yaml line 26, column 5: `{code: plaintext-service, flow:
    // elseta-wcc-lite/snmp, device: wcc-lite, ...}`; line 27: an `any-peer` acceptance for
    // `api`, which the site binds to mgmt only (no any-peer finding).
    let r = lint_site(
        &data("wcc-accept.yaml"),
        "wcc-accept.yaml",
        &Config::default(),
        None,
    );
    assert!(r
        .findings
        .iter()
        .all(|f| f.code != LintCode::PlaintextService));
    let accepted: Vec<_> = r
        .accepted
        .iter()
        .map(|a| {
            (
                a.finding.code.as_str(),
                a.finding.provenance().unwrap_or_default(),
                a.reason.as_str(),
                a.accepted_at.to_string(),
            )
        })
        .collect();
    assert_eq!(
        accepted,
        vec![(
            "plaintext-service",
            "elseta-wcc-lite/snmp".to_string(),
            "SNMPv3 with authPriv only",
            "wcc-accept.yaml:26:5".to_string()
        )]
    );
    let unused: Vec<_> = shape(&r)
        .into_iter()
        .filter(|s| s.0 == "unused-accept")
        .collect();
    assert_eq!(unused, vec![("unused-accept", Level::Note, 27, 5)]);
    // The same finding without the site's acceptance is reported, at the SNMP binding.
    let raw_text = read(&data("wcc-accept.yaml"));
    let bare = raw_text[..raw_text.find("accept:").expect("the list")].to_string();
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("wcc-bare.yaml");
    std::fs::write(&path, bare).expect("write");
    let r = lint_site(&path, "wcc-bare.yaml", &Config::default(), None);
    assert!(r.accepted.is_empty());
    assert_eq!(
        r.findings
            .iter()
            .filter(|f| f.code == LintCode::PlaintextService)
            .count(),
        1
    );
}

#[test]
fn a_site_acceptance_with_an_unknown_code_is_named_at_its_column() {
    let text = read(&data("bad-accept.yaml"));
    let raw: RawSite = serde_saphyr::from_str(&text).expect("parses");
    let d = config::site_accepts("bad-accept.yaml", &raw).expect_err("no-such-code");
    // Line 26: `  - {code: no-such-code, ...`: the value starts at column 12.
    let got: Vec<_> = d
        .iter()
        .map(|d| (d.code.as_str(), d.line, d.column))
        .collect();
    assert_eq!(got, vec![("invalid-value", 26, 12)]);
}
