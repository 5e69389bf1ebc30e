//! `learn`: a draft profile from a capture validates, and audits the same capture clean.

use portolan_audit::decode::linktype;
use portolan_audit::learn::{draft, to_yaml, LearnOptions};
use portolan_audit::write::L4;
use portolan_audit::{audit, Options, Status};
use portolan_model::Listens;

use crate::scenario::*;

#[test]
fn learned_profile_validates_and_audits_clean() {
    let mut t = conforming();
    // Traffic the test profile does not allow: learn takes it in too.
    t.tcp(ms(1200), ("10.20.0.10", 40009), ("203.0.113.99", 8443));
    t.tcp(ms(1300), ("10.20.0.10", 40010), ("203.0.113.10", 3001));
    t.tcp(ms(1310), ("10.20.0.10", 40011), ("203.0.113.10", 3002));
    t.tcp(ms(1320), ("10.20.0.10", 40012), ("203.0.113.10", 3003));
    let bytes = pcap(&t, linktype::ETHERNET, None);
    let (obs, _) = observe(bytes.clone());
    let opts = LearnOptions {
        device: "10.20.0.10/32".parse().expect("net"),
        id: None,
        inputs: vec!["captures/sensor.pcap".into()],
    };
    let p = draft(&obs, &opts);
    let yaml = match to_yaml(&p) {
        Ok(y) => y,
        Err(e) => panic!("draft does not validate: {e}"),
    };
    assert!(yaml.starts_with("portolan: 1\n"), "{yaml}");
    assert_eq!(p.id, "learned-10-20-0-10");
    let hosts: Vec<&str> = p
        .endpoints
        .iter()
        .flat_map(|e| e.hosts.iter().map(String::as_str))
        .collect();
    assert_eq!(hosts, vec!["api.vendor.example", "dl.updates.example"]);
    let services: Vec<_> = p.endpoints.iter().filter_map(|e| e.service).collect();
    assert_eq!(services.len(), 2, "dns and ntp: {yaml}");
    assert!(
        matches!(&p.listens, Listens::Entries(l) if l.len() == 1),
        "{yaml}"
    );
    let https = p
        .flows
        .iter()
        .find(|f| f.to == "api.vendor.example" && f.protocol.to_string() == "tcp")
        .expect("https flow");
    assert_eq!(https.ports.to_strings(), vec!["443", "3001-3003"]);

    // Bind it in a site, as a user would, and audit the same capture.
    let learned = profile(&yaml);
    let site = format!(
        "portolan: 1
site: learned
zones:
  - {{id: field, networks: [10.20.0.0/24]}}
services:
  dns: [10.20.0.1]
  ntp: [10.99.0.123]
devices:
  - {{id: sensor, profile: {}, zone: field, addresses: [10.20.0.10]}}
",
        learned.id
    );
    let policy = compile(&site, vec![learned]);
    let (obs, _) = observe(bytes);
    let r = audit(&policy, obs, &Options::default());
    let bad: Vec<_> = r
        .flows
        .iter()
        .filter(|f| f.status == Status::Violation)
        .collect();
    assert!(bad.is_empty(), "{bad:#?}\n{yaml}");
    let of_device = r
        .flows
        .iter()
        .filter(|f| f.device == Some(a("10.20.0.10")))
        .count();
    assert_eq!(of_device as u64, r.conforming);
    assert!(r.conforming >= 13);
    assert!(r.groups[0].unused.is_empty(), "{:?}", r.groups[0].unused);
}

/// A SYN nobody answers, or that a reset answers, is no flow of the draft: it becomes a note,
/// and a device that never answered a peer's SYN is not drafted as listening.
#[test]
fn unanswered_syns_are_noted_as_attempted_not_drafted_as_flows() {
    const RST: u8 = 0x04;
    let syn = |t: &mut Traffic, at: i64, c: (&str, u16), s: (&str, u16), flags: u8| {
        t.ip(
            at,
            c.0,
            s.0,
            L4::Tcp {
                sport: c.1,
                dport: s.1,
                flags,
                payload: b"",
            },
        );
    };
    let mut t = Traffic::default();
    // Answered: a whole connection to port 443.
    t.tcp(ms(10), ("10.20.0.10", 40000), ("203.0.113.10", 443));
    // A SYN to 8883 and its two retransmissions, never answered.
    for i in 0..3 {
        syn(
            &mut t,
            ms(100 + i * 1000),
            ("10.20.0.10", 40001),
            ("203.0.113.50", 8883),
            SYN,
        );
    }
    // A SYN to 22 answered by a reset (the port is closed).
    syn(
        &mut t,
        ms(200),
        ("10.20.0.10", 40002),
        ("203.0.113.51", 22),
        SYN,
    );
    syn(
        &mut t,
        ms(201),
        ("203.0.113.51", 22),
        ("10.20.0.10", 40002),
        RST | ACK,
    );
    // A peer's SYN to the device's port 23, never answered.
    syn(
        &mut t,
        ms(300),
        ("203.0.113.60", 50000),
        ("10.20.0.10", 23),
        SYN,
    );
    let (obs, _) = observe(pcap(&t, linktype::ETHERNET, None));
    let opts = LearnOptions {
        device: "10.20.0.10/32".parse().expect("net"),
        id: None,
        inputs: vec!["captures/attempts.pcap".into()],
    };
    let p = draft(&obs, &opts);
    let yaml = to_yaml(&p).unwrap_or_else(|e| panic!("draft does not validate: {e}"));
    let ports: Vec<Vec<String>> = p.flows.iter().map(|f| f.ports.to_strings()).collect();
    assert_eq!(ports, vec![vec!["443".to_string()]], "{yaml}");
    assert!(
        matches!(p.listens, Listens::Unspecified),
        "never answered port 23: {yaml}"
    );
    let notes: Vec<&str> = p.notes.iter().map(|n| n.text.as_str()).collect();
    assert_eq!(notes.len(), 3, "{yaml}");
    assert!(
        notes
            .iter()
            .any(|n| n.contains("203.0.113.50 port 8883") && n.contains("(1 connection")),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|n| n.contains("203.0.113.51 port 22")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("203.0.113.60 tried TCP to the device's port 23")),
        "{notes:?}"
    );
}
