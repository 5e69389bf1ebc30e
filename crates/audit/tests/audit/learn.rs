//! `learn`: a draft profile from a capture validates, and audits the same capture clean.

use portolan_audit::decode::linktype;
use portolan_audit::learn::{draft, to_yaml, LearnOptions};
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
