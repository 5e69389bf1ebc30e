//! Complete example profiles of public vendor pages (`test-data/profiles/good/`), each
//! validated without a warning and compiled with a small site. The expected rules are read off
//! the vendor page's rows as the profile cites them, by hand, never from the compiler.

use std::path::Path;

use portolan_model::compile::site_text;
use portolan_model::ir::Policy;
use portolan_testkit::Profiles;

const TCP: u8 = 6;
const UDP: u8 = 17;

fn good() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-data/profiles/good")
}

fn profiles() -> Profiles {
    Profiles::none().files(&good())
}

/// (flow, protocol, ports, peers) of the device's rules, in order; `peers` picks which of a
/// rule's peers are listed (its prefixes, or its names).
fn rules_with(
    p: &Policy,
    group: &str,
    peers: fn(&portolan_model::ir::Rule) -> Vec<String>,
) -> Vec<(String, u8, String, Vec<String>)> {
    p.rules
        .iter()
        .filter(|r| r.group == group)
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
                peers(r),
            )
        })
        .collect()
}

/// The device's rules with their peer prefixes.
fn rules(p: &Policy, group: &str) -> Vec<(String, u8, String, Vec<String>)> {
    rules_with(p, group, |r| {
        r.peers.prefixes.iter().map(ToString::to_string).collect()
    })
}

/// The device's rules with their peer names.
fn named(p: &Policy, group: &str) -> Vec<(String, u8, String, Vec<String>)> {
    rules_with(p, group, |r| {
        r.peers.names.iter().map(ToString::to_string).collect()
    })
}

#[test]
fn the_vendor_examples_validate_without_warnings() {
    for name in [
        "meraki-cloud-device.yaml",
        "aws-iot-core-device.yaml",
        "azure-iot-hub-device.yaml",
    ] {
        let text = std::fs::read_to_string(good().join(name)).expect("fixture");
        let p = portolan_model::validate::profile_text(name, &text)
            .unwrap_or_else(|d| panic!("{name}: {d:?}"));
        assert!(p.warnings.is_empty(), "{name}: {:?}", p.warnings);
        assert_eq!(p.value.portolan, 2, "{name}");
    }
}

const MERAKI: &str = "portolan: 1
site: branch
zones:
  - id: lan
    interface: lan0
    networks: [10.30.0.0/24]
services:
  dns: firewall
devices:
  - id: ap
    profile: meraki-cloud-device.yaml
    zone: lan
    addresses: [10.30.0.10]
    bind: {meraki-backup: [203.0.113.40]}
";

/// Meraki's page: the tunnel on UDP 7351 to the cloud ranges, else HTTP/HTTPS (the backup
/// connection) to what dashboard lists, here bound by the site to 203.0.113.40. An ordered
/// fallback opens both unless the site picks one; picking UDP leaves TCP 80/443 closed.
#[test]
fn meraki_opens_the_tunnel_and_its_fallback_unless_the_site_picks() {
    let cloud: Vec<String> = [
        "64.62.142.12/32",
        "209.206.48.0/20",
        "216.157.128.0/20",
        "158.115.128.0/19",
    ]
    .map(String::from)
    .to_vec();
    let both = site_text("branch.yaml", MERAKI, &profiles())
        .unwrap_or_else(|d| panic!("{d:?}"))
        .value;
    assert_eq!(
        rules(&both, "ap"),
        [
            (
                "cloud-udp".to_string(),
                UDP,
                "7351-7351".to_string(),
                cloud.clone()
            ),
            (
                "cloud-backup".to_string(),
                TCP,
                "80-80,443-443".to_string(),
                vec!["203.0.113.40/32".to_string()]
            ),
        ]
    );
    let picked = site_text(
        "branch.yaml",
        &format!("{MERAKI}    choose: {{cloud: cloud-udp}}\n"),
        &profiles(),
    )
    .unwrap_or_else(|d| panic!("{d:?}"))
    .value;
    assert_eq!(
        rules(&picked, "ap"),
        [("cloud-udp".to_string(), UDP, "7351-7351".to_string(), cloud)]
    );
}

fn azure_site(choose: &str) -> String {
    format!(
        "portolan: 1
site: plant
zones:
  - id: lan
    interface: lan0
    networks: [10.40.0.0/24]
services:
  dns: firewall
devices:
  - id: sensor
    profile: azure-iot-hub-device.yaml
    zone: lan
    addresses: [10.40.0.7]
    params: {{hub: contoso}}
{choose}"
    )
}

/// Azure IoT Hub's "Port numbers" table: MQTT 8883, AMQP 5671, the WebSocket variants and
/// HTTPS 443, all outbound to the hub, which the SAS token's structure names
/// `{hub}.azure-devices.net`. The device speaks one of them: the site's pick opens that one
/// only, to `contoso.azure-devices.net`; no pick is refused rather than opening all five.
#[test]
fn azure_opens_only_the_protocol_the_site_picks() {
    let hub = vec!["contoso.azure-devices.net".to_string()];
    for (pick, port) in [
        ("mqtt", "8883-8883"),
        ("amqp", "5671-5671"),
        ("mqtt-ws", "443-443"),
        ("https", "443-443"),
    ] {
        let site = azure_site(&format!("    choose: {{protocol: {pick}}}\n"));
        let p = site_text("plant.yaml", &site, &profiles())
            .unwrap_or_else(|d| panic!("{pick}: {d:?}"))
            .value;
        assert_eq!(
            named(&p, "sensor"),
            [(pick.to_string(), TCP, port.to_string(), hub.clone())],
            "{pick}"
        );
    }
    let none = site_text("plant.yaml", &azure_site(""), &profiles());
    assert!(
        none.is_err(),
        "a `policy: one` group the site leaves unpicked must be refused"
    );
}
