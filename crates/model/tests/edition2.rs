//! The profile format's second edition compiled: choice groups, the condition language,
//! replacements and port ranges open what the profile states for the site's picks and
//! nothing else. The profile is the fixture `test-data/profiles/good/edition2.yaml`; every
//! expected rule below is read off that file by hand (its rows and the site's picks), never
//! from the compiler's output.

use std::collections::BTreeSet;
use std::path::Path;

use portolan_model::compile::site_text;
use portolan_model::ir::{IpProto, Policy, PortRange};
use portolan_testkit::Profiles;

fn profiles() -> Profiles {
    Profiles::none()
        .files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-data/profiles/good"))
}

const HEAD: &str = "portolan: 1
site: e2
zones:
  - id: field
    interface: lan0
    networks: [10.20.0.0/24]
  - id: bms
    interface: bms0
    networks: [10.30.0.0/24]
services:
  dns: firewall
  ntp: [10.30.0.123]
devices:
  - id: gw
    profile: edition2.yaml
    zone: field
    addresses: [10.20.0.5]
    bind: {bms: [10.30.0.9]}
";

fn site(extra: &str) -> String {
    format!("{HEAD}{extra}")
}

/// (flow, protocol, ports as "lo-hi") of every rule of the policy.
fn rules(p: &Policy) -> BTreeSet<(String, u8, String)> {
    p.rules
        .iter()
        .map(|r| {
            let ports: Vec<String> = r
                .ports
                .iter()
                .map(|x| format!("{}-{}", x.lo, x.hi))
                .collect();
            (r.flow.clone(), r.protocol.number(), ports.join(","))
        })
        .collect()
}

fn compile(extra: &str) -> Result<Policy, Vec<String>> {
    site_text("site.yaml", &site(extra), &profiles())
        .map(|l| l.value)
        .map_err(|d| {
            d.iter()
                .filter(|d| d.is_error())
                .map(|d| format!("{} {}:{}", d.code, d.line, d.column))
                .collect()
        })
}

fn r(flow: &str, proto: u8, ports: &str) -> (String, u8, String) {
    (flow.to_string(), proto, ports.to_string())
}

const TCP: u8 = 6;
const UDP: u8 = 17;

#[test]
fn a_site_without_features_gets_the_ordered_fallbacks_and_only_its_forwarder() {
    let p =
        compile("    version: \"2.1\"\n    choose: {forwarder: forward-tls}\n").expect("compiles");
    let want: BTreeSet<_> = [
        // mqtt: `ordered`, no pick: 8883 and its fallback 443 both open.
        r("mqtt-8883", TCP, "8883-8883"),
        r("mqtt-443", TCP, "443-443"),
        // forwarder: `one`, the site picked TLS; the plain forwarder's UDP 5140, 6514-6515 stay shut.
        r("forward-tls", TCP, "6514-6514"),
        // not {feature: local-ntp} holds: the public pool.
        r("ntp-pool", UDP, "123-123"),
        // https-fallback: any [fallback (off), all [version < 2 (2.1: no), …]] does not hold.
        r("udp-7351", UDP, "7351-7351"),
        // the param's default, inside its range.
        r("bacnet", UDP, "47808-47808"),
    ]
    .into_iter()
    .collect();
    assert_eq!(rules(&p), want);
}

#[test]
fn picks_features_and_replacements_close_what_they_replace() {
    let p = compile(
        "    version: \"1.5\"
    features: [local-ntp, fallback]
    params: {bacnet_port: 47810}
    choose: {forwarder: forward-plain, mqtt: mqtt-443}
",
    )
    .expect("compiles");
    let want: BTreeSet<_> = [
        // the site picked 443 of the ordered pair: 8883 opens nothing.
        r("mqtt-443", TCP, "443-443"),
        // the text list "5140, 6514-6515".
        r("forward-plain", UDP, "5140-5140,6514-6515"),
        // local NTP: the site's server, and the public pool's rule is gone.
        r("ntp-local", UDP, "123-123"),
        // feature fallback: https-fallback holds, and https-only replaces udp-7351.
        r("https-fallback", TCP, "443-443"),
        r("https-only", TCP, "8443-8443"),
        r("bacnet", UDP, "47810-47810"),
    ]
    .into_iter()
    .collect();
    assert_eq!(rules(&p), want);
}

#[test]
fn an_unknown_version_keeps_a_combined_condition_open_as_in_the_first_edition() {
    // all [version < 2 (unknown), not local-ntp (yes)] is unknown, so any [...] is unknown:
    // included with `version-unknown`, as a plain version condition is.
    let l = site_text(
        "site.yaml",
        &site("    choose: {forwarder: forward-tls}\n"),
        &profiles(),
    )
    .expect("compiles");
    assert!(rules(&l.value).contains(&r("https-fallback", TCP, "443-443")));
    assert!(l.warnings.iter().any(|d| d.code == "version-unknown"));
}

#[test]
fn exactly_one_needs_the_sites_pick_and_opens_nothing_without_it() {
    let e = compile("    version: \"2.1\"\n").expect_err("a `one` group without a pick");
    assert_eq!(e, ["choice-required 15:14"]);
}

#[test]
fn picks_must_name_a_group_and_one_of_its_flows() {
    let e = compile("    version: \"2.1\"\n    choose: {forwarder: mqtt-443, nope: a}\n")
        .expect_err("bad picks");
    // A pick outside the group closes the whole group (no `choice-required` on top).
    assert_eq!(e, ["invalid-choice 20:25", "unknown-choice 20:41"]);
}

#[test]
fn a_port_param_outside_its_documented_range_is_refused() {
    let e = compile(
        "    version: \"2.1\"\n    choose: {forwarder: forward-tls}\n    params: {bacnet_port: 47824}\n",
    )
    .expect_err("outside 47808-47823");
    assert_eq!(e, ["invalid-param 21:27"]);
    let e = compile(
        "    version: \"2.1\"\n    choose: {forwarder: forward-tls}\n    params: {bacnet_port: 47823}\n",
    );
    assert!(e.is_ok(), "the range's last port is inside: {e:?}");
}

#[test]
fn a_catalog_folder_skips_the_sites_it_holds() {
    let dir = std::env::temp_dir().join(format!("pl-cat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-data/profiles/good");
    std::fs::copy(good.join("edition2.yaml"), dir.join("edition2.yaml")).expect("copy");
    std::fs::write(
        dir.join("site.yaml"),
        site("    choose: {forwarder: forward-tls}\n"),
    )
    .expect("write site");
    let mut cat = portolan_model::catalog::Catalog::default();
    let added = cat.add_path(&dir);
    let skipped = cat.skipped_sites.clone();
    std::fs::remove_dir_all(&dir).expect("cleanup");
    added.expect("the site is skipped, not read as a profile");
    assert_eq!(cat.ids().collect::<Vec<_>>(), ["edition2"]);
    assert_eq!(skipped, [dir.join("site.yaml")]);
}

/// AWS IoT Core's page ("Device communication protocols", table "Protocols, authentication,
/// and port mappings"): MQTT with a client certificate on 8883, or on 443 with ALPN
/// x-amzn-mqtt-ca. A device configured for 443 gets TCP 443 to its data endpoint and nothing
/// on 8883; HTTPS (8443 or 443) only with the feature.
#[test]
fn aws_iot_core_a_device_on_443_gets_443_only() {
    let text = "portolan: 1
site: aws
zones:
  - id: field
    interface: lan0
    networks: [10.20.0.0/24]
services:
  dns: firewall
devices:
  - id: sensor
    profile: aws-iot-core-device.yaml
    zone: field
    addresses: [10.20.0.7]
    params: {prefix: a1b2c3d4e5f6g7, aws_region: eu-west-1}
";
    let with = |extra: &str| site_text("aws.yaml", &format!("{text}{extra}"), &profiles());
    let p = with("    choose: {mqtt: mqtt-443}\n")
        .expect("compiles")
        .value;
    let got: Vec<(String, u8, String, Vec<String>)> = p
        .rules
        .iter()
        .filter(|r| r.group == "sensor")
        .map(|r| {
            let ports: Vec<String> = r
                .ports
                .iter()
                .map(|x| format!("{}-{}", x.lo, x.hi))
                .collect();
            (
                r.flow.clone(),
                r.protocol.number(),
                ports.join(","),
                r.peers.names.clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [(
            "mqtt-443".to_string(),
            TCP,
            "443-443".to_string(),
            vec!["a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com".to_string()]
        )]
    );
    // Without the pick, the `one` group is an error, and nothing compiles.
    let e = with("").expect_err("the MQTT port must be picked");
    assert!(e.iter().any(|d| d.code == "choice-required"), "{e:?}");
}

/// A second-edition profile serializes back to its own format: read again, it is the same
/// profile (choice policies, combined conditions, `keepalive: unspecified`, ranges).
#[test]
fn second_edition_profiles_round_trip() {
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-data/profiles/good");
    for name in [
        "edition2.yaml",
        "aws-iot-core-device.yaml",
        "choice-lab.yaml",
    ] {
        let text = std::fs::read_to_string(good.join(name)).expect("fixture");
        let p = portolan_model::validate::profile_text(name, &text)
            .expect("valid")
            .value;
        assert_eq!(p.portolan, 2);
        let json = serde_saphyr::to_string(&p).expect("serializes");
        let again = portolan_model::validate::profile_text(name, &json)
            .unwrap_or_else(|d| panic!("{name} as serialized: {d:?}\n{json}"))
            .value;
        assert_eq!(again, p, "{name}");
    }
}

const TEMPLATES: &str = "portolan: 1
site: t
zones:
  - id: field
    interface: lan0
    networks: [10.20.0.0/24]
services:
  dns: firewall
devices:
  - id: gw
    profile: templates.yaml
    zone: field
    addresses: [10.20.0.5]
";

/// `templates.yaml`: `*.prod.{brand}.example.com`, `time{1,2,3,4}.example.com`, and a
/// whole-host `{ntp_server}`. Expected peers written out by hand from those three lines.
#[test]
fn templates_expand_to_exactly_the_names_and_address_the_site_gives() {
    let p = site_text(
        "t.yaml",
        &format!("{TEMPLATES}    params: {{brand: acme, ntp_server: 10.30.0.123}}\n"),
        &profiles(),
    )
    .expect("compiles")
    .value;
    let peers = |flow: &str| {
        let r = p.rules.iter().find(|r| r.flow == flow).expect("rule");
        (
            r.peers.names.clone(),
            r.peers.wildcards.clone(),
            r.peers
                .prefixes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
        )
    };
    let s = |x: &[&str]| x.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        peers("cloud"),
        (s(&[]), s(&["prod.acme.example.com"]), s(&[]))
    );
    assert_eq!(
        peers("time-https"),
        (
            s(&[
                "time1.example.com",
                "time2.example.com",
                "time3.example.com",
                "time4.example.com"
            ]),
            s(&[]),
            s(&[])
        )
    );
    assert_eq!(peers("ntp"), (s(&[]), s(&[]), s(&["10.30.0.123/32"])));
    // Three flows, three rules: a requirement or a template opens nothing more.
    assert_eq!(p.rules.len(), 3);
    // The same param as a name.
    let p = site_text(
        "t.yaml",
        &format!("{TEMPLATES}    params: {{brand: acme, ntp_server: ntp.example.org}}\n"),
        &profiles(),
    )
    .expect("compiles")
    .value;
    let r = p.rules.iter().find(|r| r.flow == "ntp").expect("rule");
    assert_eq!(r.peers.names, ["ntp.example.org"]);
    assert!(r.peers.prefixes.is_empty());
}

#[test]
fn an_unbound_template_param_opens_nothing() {
    let e = site_text(
        "t.yaml",
        &format!("{TEMPLATES}    params: {{ntp_server: ntp.example.org}}\n"),
        &profiles(),
    )
    .expect_err("brand is not set");
    let codes: Vec<&str> = e
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.code.as_str())
        .collect();
    assert_eq!(codes, ["missing-param"]);
}

const DISCOVERED: &str = "portolan: 1
site: d
zones:
  - id: field
    interface: lan0
    networks: [10.20.0.0/24]
services:
  dns: firewall
devices:
  - id: gw
    profile: discovered.yaml
    zone: field
    addresses: [10.20.0.5]
";

/// `discovered.yaml`: a broker from an SRV record and NTP from DHCP option 42. Without a
/// binding the DHCP-learnt peer is `unbound-role`, and the SRV-learnt one opens no rule: it
/// is documented, and its rule waits in `discovered` for the enforce policy (TCP 8883 as the
/// profile says, to the record's targets); bound, each flow goes to exactly the bound peers.
#[test]
fn a_discovered_endpoint_opens_only_what_the_site_binds() {
    let e = site_text("d.yaml", DISCOVERED, &profiles()).expect_err("unbound");
    let codes: Vec<&str> = e
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.code.as_str())
        .collect();
    assert_eq!(codes, ["unbound-role"]);
    let p = site_text(
        "d.yaml",
        &format!("{DISCOVERED}    bind: {{ntp-dhcp: [10.30.0.123]}}\n"),
        &profiles(),
    )
    .expect("compiles")
    .value;
    assert!(p.rules.iter().all(|r| r.flow != "mqtt"), "{:?}", p.rules);
    assert!(p.documented.iter().any(|d| d.flow == "mqtt"));
    let d: Vec<_> = p
        .discovered
        .iter()
        .map(|r| {
            (
                r.flow.as_str(),
                r.peers.srv.clone(),
                r.ports.clone(),
                r.protocol,
            )
        })
        .collect();
    assert_eq!(
        d,
        [(
            "mqtt",
            vec!["_mqtt._tcp.example.com".to_string()],
            vec![PortRange::one(8883)],
            IpProto::TCP
        )]
    );
    // The enforce view has it as a rule, and no longer as documented.
    let e = p.with_discovered();
    assert!(e
        .rules
        .iter()
        .any(|r| r.flow == "mqtt" && !r.peers.srv.is_empty()));
    assert!(e.documented.iter().all(|d| d.flow != "mqtt"));
    let p = site_text(
        "d.yaml",
        &format!("{DISCOVERED}    bind: {{broker: [mqtt.example.com], ntp-dhcp: [10.30.0.123]}}\n"),
        &profiles(),
    )
    .expect("compiles")
    .value;
    let got: BTreeSet<(String, Vec<String>, Vec<String>)> = p
        .rules
        .iter()
        .map(|r| {
            (
                r.flow.clone(),
                r.peers.names.clone(),
                r.peers.prefixes.iter().map(ToString::to_string).collect(),
            )
        })
        .collect();
    let s = |x: &[&str]| x.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let want: BTreeSet<_> = [
        ("mqtt".to_string(), s(&["mqtt.example.com"]), s(&[])),
        ("ntp".to_string(), s(&[]), s(&["10.30.0.123/32"])),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);
}
