//! A device serving DHCP to its own segment (profile edition 2, `segment: true`), compiled.
//! The profile is `test-data/profiles/good/dhcp-server.yaml`; every expected rule, documented
//! flow and diagnostic position below is read off that file and the site text here by hand:
//! a routed firewall never sees an exchange inside one segment, so the DHCP server flow opens
//! nothing; a unicast flow with the segment gets exactly the zone's networks; a second DHCP
//! server on the segment is `dhcp-server-conflict` (RFC 2131 section 4.3.1: a client may take
//! any offer).

use std::collections::BTreeSet;
use std::path::Path;

use portolan_model::compile::site_text;
use portolan_model::ir::{Initiator, Policy};
use portolan_testkit::Profiles;

fn profiles() -> Profiles {
    Profiles::none()
        .files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-data/profiles/good"))
}

/// The site; `services` and `extra` (device lines from line 16 on) vary. The device id `gw`
/// is on line 12, column 9.
fn site(services: &str, extra: &str) -> String {
    format!(
        "portolan: 1
site: seg
services: {{dns: firewall{services}}}
zones:
  - id: lan
    interface: lan0
    networks: [10.40.0.0/24]
  - id: wan
    interface: wan0
    networks: [10.50.0.0/24]
devices:
  - id: gw
    profile: dhcp-server.yaml
    zone: lan
    addresses: [10.40.0.1]
{extra}"
    )
}

type Diags = Vec<(String, u64, u64)>;

fn compile(services: &str, extra: &str) -> Result<(Policy, Diags), Diags> {
    let pick = |d: &[portolan_model::Diagnostic], errors: bool| {
        d.iter()
            .filter(|d| d.is_error() == errors)
            .map(|d| (d.code.to_string(), d.line, d.column))
            .collect::<Vec<_>>()
    };
    match site_text("site.yaml", &site(services, extra), &profiles()) {
        Ok(l) => Ok((l.value.clone(), pick(&l.warnings, false))),
        Err(d) => Err(pick(&d, true)),
    }
}

/// (flow, initiator, protocol, ports, peers) of every rule.
fn rules(p: &Policy) -> BTreeSet<(String, Initiator, u8, String, String)> {
    p.rules
        .iter()
        .map(|r| {
            let ports: Vec<String> = r.ports.iter().map(|x| x.to_string()).collect();
            let mut peers: Vec<String> = r.peers.prefixes.iter().map(|n| n.to_string()).collect();
            peers.extend(r.peers.names.iter().cloned());
            if r.peers.firewall {
                peers.push("firewall".into());
            }
            (
                r.flow.clone(),
                r.initiator,
                r.protocol.number(),
                ports.join(","),
                peers.join(","),
            )
        })
        .collect()
}

fn d(code: &str, line: u64, column: u64) -> (String, u64, u64) {
    (code.to_string(), line, column)
}

#[test]
fn the_dhcp_server_flow_opens_nothing_and_is_documented() {
    let (p, _) = compile("", "").expect("compiles");
    let s = |x: &str| x.to_string();
    let want: BTreeSet<_> = [
        // The web page: the hosts of zone lan, and nothing wider.
        (s("web"), Initiator::Peer, 6, s("80"), s("10.40.0.0/24")),
        (
            s("cloud"),
            Initiator::Device,
            6,
            s("443"),
            s("198.51.100.30/32"),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(rules(&p), want);
    let documented: Vec<(&str, &str)> = p
        .documented
        .iter()
        .map(|d| (d.group.as_str(), d.flow.as_str()))
        .collect();
    assert_eq!(documented, [("gw", "dhcp-server")]);
    assert!(
        p.documented[0]
            .reason
            .contains("never reaches the firewall"),
        "{}",
        p.documented[0].reason
    );
}

#[test]
fn a_second_dhcp_server_on_the_segment_is_a_warning() {
    // The firewall serves the site's DHCP: it answers on lan too.
    let (_, w) = compile(", dhcp: firewall", "").expect("compiles");
    assert!(w.contains(&d("dhcp-server-conflict", 12, 9)), "{w:?}");
    // A server at another address of zone lan.
    let (_, w) = compile(", dhcp: [10.40.0.2]", "").expect("compiles");
    assert!(w.contains(&d("dhcp-server-conflict", 12, 9)), "{w:?}");
}

#[test]
fn the_same_server_or_one_in_another_zone_is_no_conflict() {
    // The site names the device itself as its DHCP server.
    let (_, w) = compile(", dhcp: [10.40.0.1]", "").expect("compiles");
    assert!(!w.iter().any(|x| x.0 == "dhcp-server-conflict"), "{w:?}");
    // A server in zone wan does not answer on lan's segment.
    let (_, w) = compile(", dhcp: [10.50.0.2]", "").expect("compiles");
    assert!(!w.iter().any(|x| x.0 == "dhcp-server-conflict"), "{w:?}");
    // The device's DHCP server switched off: nothing serves from it.
    let (_, w) = compile(
        ", dhcp: firewall",
        "    flows: {dhcp-server: {enabled: false}}\n",
    )
    .expect("compiles");
    assert!(!w.iter().any(|x| x.0 == "dhcp-server-conflict"), "{w:?}");
}

#[test]
fn the_segment_cannot_be_bound_wider() {
    // Line 16 (after the 15 lines of the site above): `    bind: {lan: [any]}`, whose
    // list `[` is the 17th character.
    let e = compile("", "    bind: {lan: [any]}\n").expect_err("refused");
    assert_eq!(e, [d("invalid-binding", 16, 17)]);
}

#[test]
fn a_zone_without_networks_is_an_error_never_any() {
    let text = "portolan: 1
site: seg
zones:
  - id: bare
    interface: lan0
devices:
  - id: gw
    profile: dhcp-server.yaml
    zone: bare
";
    let e = match site_text("site.yaml", text, &profiles()) {
        Ok(l) => panic!("compiled: {:?}", l.value.rules),
        Err(d) => d,
    };
    // `zone: bare` is line 9; its value starts at column 11. Once for each flow with the
    // segment (dhcp-server, web).
    let at: Vec<(String, u64, u64)> = e
        .iter()
        .filter(|x| x.code.as_str() == "empty-zone")
        .map(|x| (x.code.to_string(), x.line, x.column))
        .collect();
    assert_eq!(at, [d("empty-zone", 9, 11), d("empty-zone", 9, 11)]);
}

/// A multi-homed device (`two-zone-dhcp-server.yaml`): DHCP on `ot` only, the web page on
/// both. Each binding's segment is its own zone's networks; the conflict is on `ot`'s zone
/// only, where the site's DHCP server (10.40.0.2, in zone lan) sits.
#[test]
fn a_multi_homed_device_has_one_segment_per_interface() {
    let text = "portolan: 1
site: mh
services: {dhcp: [10.40.0.2]}
zones:
  - id: lan
    interface: lan0
    networks: [10.40.0.0/24]
  - id: wan
    interface: wan0
    networks: [10.50.0.0/24]
devices:
  - id: gw
    profile: two-zone-dhcp-server.yaml
    interfaces:
      it: {address: 10.50.0.1, zone: wan}
      ot: {address: 10.40.0.1, zone: lan}
";
    let l = site_text("site.yaml", text, &profiles()).expect("compiles");
    let got: BTreeSet<(String, String, String)> = l
        .value
        .rules
        .iter()
        .map(|r| {
            let peers: Vec<String> = r.peers.prefixes.iter().map(|n| n.to_string()).collect();
            (r.group.clone(), r.flow.clone(), peers.join(","))
        })
        .collect();
    let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    let want: BTreeSet<_> = [
        s("gw.it", "web", "10.50.0.0/24"),
        s("gw.ot", "web", "10.40.0.0/24"),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);
    let documented: Vec<(&str, &str)> = l
        .value
        .documented
        .iter()
        .map(|d| (d.group.as_str(), d.flow.as_str()))
        .collect();
    assert_eq!(documented, [("gw.ot", "dhcp-server")]);
    let conflicts: Vec<&str> = l
        .warnings
        .iter()
        .filter(|w| w.code.as_str() == "dhcp-server-conflict")
        .map(|w| w.message.as_str())
        .collect();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert!(
        conflicts[0].contains("zone `lan`") && conflicts[0].contains("10.40.0.2"),
        "{}",
        conflicts[0]
    );
}
