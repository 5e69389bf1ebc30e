//! `probe --dhcp`, for real: a DHCPDISCOVER broadcast from a device namespace to dnsmasq in a
//! server namespace over a veth pair, and the offer read back (address, server, router, DNS
//! servers, NTP servers, domain, lease time); then the same with no server at all, which must
//! fail with the vendor's remedy for a device without an address. dnsmasq runs with
//! `--no-ping` so that the first offer comes at once (by default it pings an address for up to
//! 3 s before offering it, which the probe's 4 s default wait allows for).

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::dhcp_lab::DhcpLab;
use portolan_net::plan::{plan, Plan};
use portolan_net::probe::{run, DhcpOptions, Options};
use portolan_net::report::{Check, Kind, Report, Stage, Verdict};
use portolan_net::runtime::{block_on, System};

/// The Oscar gateways of a site whose field network is the lab's.
fn oscar() -> Plan {
    let site = "portolan: 1\nsite: dhcp-lab\nzones:\n  - id: field\n    interface: lan0\n    networks: [10.77.0.0/24]\nservices:\n  dns: firewall\n  dhcp: firewall\ndevices:\n  - id: oscar\n    profile: oscar-templog-gateway\n    zone: field\n    addresses: [10.77.0.96/27]\n";
    let policy = portolan_testkit::Profiles::catalog().compile("dhcp-lab.yaml", site);
    plan(&policy, "oscar").expect("device in site")
}

/// Probes from the device namespace; without `resolver`, none is configured (an empty
/// resolv.conf), as on a machine that has no lease yet.
fn probe(lab: &DhcpLab, dhcp: DhcpOptions, resolver: Option<&str>) -> Report {
    let p = oscar();
    let o = Options {
        timeout: Duration::from_millis(300),
        attempts: 1,
        ttl_queries: 1,
        resolver: resolver.map(|r| r.parse().expect("resolver address")),
        resolv_conf: Some("/dev/null".into()),
        dhcp: Some(dhcp),
        ..Options::default()
    };
    portolan_net::netns::run_in(&lab.dev, move || {
        block_on(async move { run(&System, &p, &o).await }).expect("runtime")
    })
    .expect("run in the device namespace")
}

fn dhcp_checks(r: &Report) -> Vec<&Check> {
    r.checks().filter(|c| c.kind == Kind::Dhcp).collect()
}

fn json(r: &Report) -> String {
    serde_json::to_string_pretty(r).expect("json")
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("IPv4 address")
}

#[test]
fn the_offer_of_a_real_server_is_reported() {
    let mut lab = DhcpLab::new();
    lab.serve(&[
        "--no-ping",
        "--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,10m",
        "--dhcp-option=3,10.77.0.1",
        "--dhcp-option=6,10.77.0.53,10.77.0.54",
        "--dhcp-option=42,10.77.0.123",
        "--dhcp-option=15,plant.test",
    ]);
    let mac = {
        let all = portolan_net::netns::run_in(&lab.dev, portolan_net::link::links)
            .expect("netns")
            .expect("links");
        all.into_iter()
            .find(|l| l.name == "eth0")
            .and_then(|l| l.mac)
            .expect("eth0 has a MAC")
    };

    // The device's network, before this machine has an address: the interface is the only one
    // up, the server answers the broadcast, and the offer is the device's to take.
    let dhcp = DhcpOptions {
        timeout: Duration::from_secs(2),
        attempts: 1,
        ..DhcpOptions::default()
    };
    let r = probe(&lab, dhcp.clone(), None);
    let checks = dhcp_checks(&r);
    assert_eq!(checks.len(), 1, "{}", json(&r));
    let c = checks[0];
    assert_eq!((c.state.as_str(), c.verdict), ("offer", Verdict::Pass));
    let offer = c.offer.as_ref().expect("the offer's fields");
    let a = u32::from(offer.address);
    assert!(
        (u32::from(ip("10.77.0.100"))..=u32::from(ip("10.77.0.150"))).contains(&a),
        "{offer:?}"
    );
    assert_eq!(offer.server, ip("10.77.0.1"));
    assert_eq!(offer.prefix_len, Some(24));
    assert_eq!(offer.routers, vec![ip("10.77.0.1")]);
    assert_eq!(offer.dns, vec![ip("10.77.0.53"), ip("10.77.0.54")]);
    assert_eq!(offer.ntp, vec![ip("10.77.0.123")]);
    assert_eq!(offer.domain.as_deref(), Some("plant.test"));
    assert_eq!(offer.lease_secs, Some(600));
    assert!(c.detail.contains("on eth0"), "{}", c.detail);
    // dnsmasq saw our DISCOVER from eth0's MAC and offered that address to it.
    let log = std::fs::read_to_string(lab.log()).expect("dnsmasq log");
    let mac = portolan_net::link::mac_text(&mac);
    assert!(
        log.contains(&format!("DHCPOFFER(lan0) {} {mac}", offer.address)),
        "{log}"
    );
    // No address yet: the address stage fails, and says the server works.
    let source = r
        .checks()
        .find(|c| c.kind == Kind::Source)
        .expect("source check");
    assert_eq!(
        (source.state.as_str(), source.verdict),
        ("no-address", Verdict::Fail)
    );
    assert_eq!(
        source.remedy.as_deref(),
        Some(
            format!(
                "the DHCP server 10.77.0.1 offers {} on eth0: let this machine take the lease (start its DHCP client) or give it an address, then probe again",
                offer.address
            )
            .as_str()
        )
    );
    let j: serde_json::Value = serde_json::from_str(&json(&r)).expect("json");
    let jc = j["stages"][0]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["kind"] == "dhcp")
        .expect("a dhcp check")
        .clone();
    assert_eq!(jc["state"], "offer");
    assert_eq!(jc["offer"]["server"], "10.77.0.1");
    assert_eq!(jc["offer"]["routers"][0], "10.77.0.1");
    assert_eq!(jc["offer"]["dns"][1], "10.77.0.54");
    assert_eq!(jc["offer"]["lease_secs"], 600);

    // With an address and a default route, the interface is the route's; the address stage
    // passes and the offer is still read.
    lab.configure_dev("10.77.0.99/24");
    let r = probe(&lab, dhcp, Some("10.77.0.1:53"));
    let checks = dhcp_checks(&r);
    assert_eq!(checks.len(), 1, "{}", json(&r));
    assert_eq!(checks[0].state, "offer");
    assert_eq!(
        r.stage(Stage::Address).map(|s| s.verdict),
        Some(Verdict::Pass),
        "{}",
        json(&r)
    );
}

#[test]
fn no_server_no_offer_and_the_vendors_remedy() {
    let lab = DhcpLab::new();
    let dhcp = DhcpOptions {
        interface: Some("eth0".into()),
        timeout: Duration::from_millis(700),
        attempts: 2,
    };
    let r = probe(&lab, dhcp, None);
    let checks = dhcp_checks(&r);
    assert_eq!(checks.len(), 1, "{}", json(&r));
    let c = checks[0];
    assert_eq!((c.state.as_str(), c.verdict), ("no-offer", Verdict::Fail));
    assert!(
        c.detail
            .starts_with("no DHCP offer on eth0 within 700 ms (2 DHCPDISCOVERs from "),
        "{}",
        c.detail
    );
    let remedy = "make sure the DHCP server is working so 10.77.0.96/27 can get an address, a default gateway and a DNS server (a DHCP issue, not a firewall one) — Oscar TempLog gateway (LED solid red)";
    assert_eq!(c.remedy.as_deref(), Some(remedy));
    // The machine has no address either: the same remedy, said once and first; nothing is
    // blamed on a firewall.
    assert_eq!(r.remedies[0], remedy, "{}", json(&r));
    assert_eq!(r.remedies.iter().filter(|m| *m == remedy).count(), 1);
    assert!(
        r.remedies.iter().all(|m| !m.starts_with("allow ")),
        "{:?}",
        r.remedies
    );
    assert_eq!(
        r.stage(Stage::Reach).map(|s| s.verdict),
        Some(Verdict::Skip)
    );
    assert_eq!(
        r.stage(Stage::Address).map(|s| s.verdict),
        Some(Verdict::Fail)
    );
    assert!(!r.ok());
    let j: serde_json::Value = serde_json::from_str(&json(&r)).expect("json");
    assert_eq!(j["verdict"], "fail");
    assert_eq!(j["remedies"][0], remedy);
}
