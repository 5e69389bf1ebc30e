//! `compile --resolve`: names resolved with their TTL through a DNS server on loopback, and the
//! nftables sets filled with elements that time out with that TTL.

mod common;

use std::time::Duration;

use common::dns_server::{start, Zone};
use portolan_net::dns::{resolve_all, Failure};

#[test]
fn names_resolve_with_ttl_and_fill_the_sets() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let zone = Zone::default()
        .host("gk.sensorist.com", &["198.51.100.10", "198.51.100.11"], 300)
        .host("gk.sensorist.net", &["198.51.100.12", "2001:db8::12"], 60);
    let zone = Zone {
        servfail: vec!["broken.example".into()],
        silent: vec!["silent.example".into()],
        ..zone
    };
    let server = rt.block_on(start("127.0.0.1:0".parse().expect("addr"), zone));
    let names: Vec<String> = [
        "gk.sensorist.com",
        "gk.sensorist.net",
        "nope.example",
        "broken.example",
        "silent.example",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let got = resolve_all(&names, Some(server), Duration::from_millis(300)).expect("resolve");
    let com = got["gk.sensorist.com"].as_ref().expect("resolves");
    assert_eq!(com.ttl, Duration::from_secs(300));
    assert_eq!(com.addresses.len(), 2);
    let net = got["gk.sensorist.net"].as_ref().expect("resolves");
    assert_eq!(net.ttl, Duration::from_secs(60));
    assert_eq!(net.addresses.len(), 2, "A and AAAA together");
    assert_eq!(got["nope.example"], Err(Failure::NxDomain));
    assert_eq!(got["broken.example"], Err(Failure::ServFail));
    assert_eq!(got["silent.example"], Err(Failure::Timeout));

    // The emitted ruleset carries the answers with their TTL as the element timeout.
    let site = "portolan: 1\nsite: t\nzones:\n  - id: field\n    interface: lan0\n    networks: [10.20.0.0/24]\nservices:\n  dns: firewall\n  dhcp: firewall\ndevices:\n  - id: gw\n    profile: oscar-templog-gateway\n    zone: field\n    addresses: [10.20.0.33]\n    bind:\n      cloud: [gk.sensorist.com, gk.sensorist.net]\n";
    let policy = portolan_testkit::Profiles::catalog().compile("t.yaml", site);
    let mut opts = portolan_emit::Options::default();
    for (n, r) in got {
        if let Ok(r) = r {
            opts.resolved.insert(
                n,
                portolan_emit::Resolved {
                    addresses: r.addresses,
                    ttl: r.ttl,
                },
            );
        }
    }
    let nft = portolan_emit::emit(portolan_emit::Target::Nftables, &policy, &opts).expect("emit");
    assert!(nft.contains("198.51.100.10 timeout 300s"), "{nft}");
    assert!(nft.contains("198.51.100.12 timeout 60s"), "{nft}");
}
