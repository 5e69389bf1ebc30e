//! A flow to a peer learnt from a DNS SRV record (`discovered: {via: srv}`) that the site does
//! not bind: no static target can know the record's targets or port, so none may admit the
//! flow — every line that names it is a comment saying it is not enforced there — and only
//! the enforce policy matches it, through a set of `device . target . port` triples
//! (nft(8), "SETS": concatenated types). The expectation comes from the site and profile
//! below (the peer has no address and the port is left to the record), not from the emitter.

use portolan_emit::{emit, Options, Target};

use crate::common::Profiles;

const PROFILE: &str = r#"portolan: 2
id: srv-gw
vendor: Example
product: Gateway that finds its broker by SRV
sources:
  - id: doc
    title: Example vendor page
    file: example.txt
endpoints:
  - id: dns
    service: dns
    source: {doc: doc, ref: "dns"}
  - id: broker
    discovered: {via: srv, name: _mqtt._tcp.example.com}
    source: {doc: doc, ref: "broker discovery"}
  - id: cloud
    hosts: [cloud.example.com]
    source: {doc: doc, ref: "cloud"}
flows:
  - id: dns
    from: device
    to: dns
    initiation: device
    protocol: udp
    ports: 53
    source: {doc: doc, ref: "row 1"}
  - id: mqtt
    from: device
    to: broker
    initiation: device
    protocol: tcp
    ports: unspecified
    source: {doc: doc, ref: "row 2"}
  - id: https
    from: device
    to: cloud
    initiation: device
    protocol: tcp
    ports: 443
    source: {doc: doc, ref: "row 3"}
listens: none
"#;

const SITE: &str = r#"portolan: 1
site: srv-emit
zones:
  - id: lan
    interface: lan0
    networks: [10.72.0.0/24]
services:
  dns: firewall
devices:
  - id: gw
    profile: srv-gw
    zone: lan
    addresses: [10.72.0.10]
"#;

fn policy() -> portolan_model::ir::Policy {
    Profiles::catalog()
        .with_text("srv-gw", PROFILE)
        .compile("srv-emit.yaml", SITE)
}

/// Aerleon is left out: its default platform refuses the profile's hostname flow itself.
#[test]
fn static_targets_only_say_an_srv_flow_is_not_enforced_there() {
    let p = policy();
    for t in [
        Target::Nftables,
        Target::Iptables,
        Target::Dnsmasq,
        Target::Openwrt,
        Target::Squid,
    ] {
        let out = emit(t, &p, &Options::default()).expect("emits");
        let named: Vec<&str> = out.lines().filter(|l| l.contains("srv-gw/mqtt")).collect();
        assert!(
            named.iter().all(|l| l.trim_start().starts_with('#')),
            "{t:?} has a rule for the SRV flow: {named:?}"
        );
        // The flow beside it, to a hostname, is still there where the target writes rules.
        if matches!(t, Target::Nftables | Target::Iptables) {
            assert!(out.contains("srv-gw/https"), "{t:?}");
            assert!(
                named.iter().any(|l| l.contains("not enforced here")),
                "{t:?} does not say the SRV flow is not enforced: {out}"
            );
        }
        if t == Target::Dnsmasq {
            assert!(
                named
                    .iter()
                    .any(|l| l.contains("not opened by dnsmasq")
                        && l.contains("_mqtt._tcp.example.com")),
                "{out}"
            );
        }
    }
}

#[test]
fn the_enforce_policy_matches_it_by_device_target_and_port() {
    let out = emit(
        Target::Nftables,
        &policy(),
        &Options {
            enforce: true,
            ..Options::default()
        },
    )
    .expect("emits");
    let rule: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("comment \"srv-gw/mqtt\""))
        .collect();
    assert_eq!(rule.len(), 1, "{out}");
    let set = rule[0]
        .split('@')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("a set reference");
    assert!(
        rule[0]
            .trim_start()
            .starts_with("ip saddr . ip daddr . tcp dport @"),
        "{}",
        rule[0]
    );
    // The set is declared with the three fields' types, and starts empty.
    let decl = out
        .split(&format!("set {set} {{"))
        .nth(1)
        .expect("the set is declared");
    let body = decl.split('}').next().expect("its body");
    assert!(
        body.contains("type ipv4_addr . ipv4_addr . inet_service"),
        "{body}"
    );
    assert!(!body.contains("elements"), "{body}");
    assert!(!out.contains("# not enforced here: srv-gw/mqtt"), "{out}");
}
