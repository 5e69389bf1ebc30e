//! The judgement against `listens`, on the example site compiled as `portolan` compiles it.
//! Expected values are read off `examples/site.yaml` and the catalog's YAML by hand:
//! wcc-lite enables `ser2net` (ser2net_ports "4001-4004") and `snmp` (UDP 161), but not
//! `openvpn` or `api`; the Oscar gateway says `listens: none`; the DIMENSION4 sensor says
//! `tcp ports: none` and `udp ports: unspecified`.

use std::path::Path;

use portolan_model::ir::Policy;
use portolan_scan::compare::{
    declared, findings, statements, zone_findings, Coverage, Declared, FindingCode, Statement,
};
use portolan_scan::{PortResult, PortState, Reason, Transport};

fn site() -> Policy {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/site.yaml");
    portolan_testkit::profiles::compile_file(&path)
}

fn port(t: Transport, port: u16, state: PortState) -> PortResult {
    PortResult {
        transport: t,
        port,
        state,
        reason: match state {
            PortState::Open => Reason::SynAck { ttl: Some(64) },
            PortState::Closed => Reason::Reset { ttl: Some(64) },
            _ => Reason::NoResponse {
                tries: 2,
                request: None,
            },
        },
        service: None,
    }
}

fn declared_for(policy: &Policy, device: &str) -> Declared {
    let g = policy
        .groups
        .iter()
        .find(|g| g.id == device)
        .expect("device");
    declared(&policy.profiles[&g.profile], device, Some(&policy.rules))
}

#[test]
fn params_resolve_through_the_site_and_disabled_features_declare_nothing() {
    let policy = site();
    let Declared::Entries(es) = declared_for(&policy, "wcc-lite") else {
        panic!("entries expected")
    };
    let got: Vec<(Option<Transport>, Coverage, &str)> = es
        .iter()
        .map(|e| (e.transport, e.coverage.clone(), e.entry.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                Some(Transport::Tcp),
                Coverage::Ports(vec![(4001, 4004)]),
                "ser2net"
            ),
            (
                Some(Transport::Udp),
                Coverage::Ports(vec![(161, 161)]),
                "snmp"
            ),
        ]
    );
    let scanned = [
        port(Transport::Tcp, 4001, PortState::Open),
        port(Transport::Tcp, 4002, PortState::Closed),
        // The OpenVPN listener of a feature the site does not enable.
        port(Transport::Tcp, 1194, PortState::Open),
        port(Transport::Udp, 161, PortState::Open),
    ];
    let f: Vec<(FindingCode, u16)> = findings(&declared_for(&policy, "wcc-lite"), &scanned)
        .iter()
        .map(|f| (f.code, f.port))
        .collect();
    assert_eq!(
        f,
        [
            (FindingCode::DeclaredNotOpen, 4002),
            (FindingCode::UndeclaredOpen, 1194)
        ]
    );
}

#[test]
fn listens_none_and_ports_none() {
    let policy = site();
    let oscar = declared_for(&policy, "oscar-gateways");
    assert_eq!(oscar, Declared::Nothing);
    let quiet = [
        port(Transport::Tcp, 22, PortState::Closed),
        port(Transport::Udp, 53, PortState::OpenFiltered),
    ];
    let s = statements(&oscar, &quiet);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].0, "listens: none");
    assert!(matches!(&s[0].1, Statement::Proven { .. }));
    let noisy = [port(Transport::Udp, 53, PortState::Open)];
    assert_eq!(
        statements(&oscar, &noisy)[0].1,
        Statement::Refuted {
            open: vec!["53/udp".into()]
        }
    );
    // DIMENSION4: an open TCP port refutes `tcp ports: none`; an open UDP port cannot be
    // judged (its ports are unspecified).
    let d4 = declared_for(&policy, "d4-sensors");
    let scanned = [
        port(Transport::Tcp, 8080, PortState::Open),
        port(Transport::Udp, 5000, PortState::Open),
    ];
    let f: Vec<(FindingCode, u16)> = findings(&d4, &scanned)
        .iter()
        .map(|f| (f.code, f.port))
        .collect();
    assert_eq!(
        f,
        [
            (FindingCode::UndeclaredOpen, 8080),
            (FindingCode::UndeclaredUnknown, 5000)
        ]
    );
    let s = statements(&d4, &scanned);
    assert_eq!(s[0].0, "tcp ports: none");
    assert!(matches!(&s[0].1, Statement::Refuted { .. }));
}

#[test]
fn reached_ports_no_rule_admits_from_the_zone_come_as_runs() {
    let policy = site();
    // From a host of mgmt (10.99.0.0/24): the site admits TCP 4001-4004 and UDP 161 to
    // wcc-lite from there. 3999-4006 all reached (closed): 3999-4000 and 4005-4006 are not
    // admitted; 22 filtered is not reached.
    let mut scanned: Vec<PortResult> = (3999..=4006)
        .map(|p| port(Transport::Tcp, p, PortState::Closed))
        .collect();
    scanned.push(port(Transport::Tcp, 22, PortState::Filtered));
    scanned.push(port(Transport::Udp, 161, PortState::Closed));
    let f = zone_findings(
        &policy.rules,
        "wcc-lite",
        "mgmt",
        "10.99.0.253".parse().expect("address"),
        &scanned,
    );
    let runs: Vec<(u16, Option<u16>)> = f.iter().map(|f| (f.port, f.last_port)).collect();
    assert_eq!(runs, [(3999, Some(4000)), (4005, Some(4006))]);
    assert!(f.iter().all(|f| f.code == FindingCode::ZoneNotAllowed));
    // From the WAN (an address no rule names) every reached port is a finding.
    let f = zone_findings(
        &policy.rules,
        "wcc-lite",
        "wan",
        "192.0.2.200".parse().expect("address"),
        &scanned,
    );
    let runs: Vec<(Transport, u16, Option<u16>)> = f
        .iter()
        .map(|f| (f.transport, f.port, f.last_port))
        .collect();
    assert_eq!(
        runs,
        [
            (Transport::Tcp, 3999, Some(4006)),
            (Transport::Udp, 161, None)
        ]
    );
}
