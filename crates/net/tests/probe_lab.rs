//! The probe, for real, in network namespaces: a device network, a router whose nftables rules
//! drop some ports and reject others, and a far side with a DNS server, TCP listeners, NTP,
//! CoAP and IKE responders, two TLS servers (the expected issuer and an intercepting one) and
//! Portolan's responder. Every classification the issue lists is asserted: open, refused,
//! filtered, unreachable, closed, open|filtered, intercepted, NXDOMAIN, SERVFAIL, timeout, TTL
//! inflation, an alternative group partly open, and the NAT timeout against a conntrack
//! timeout the test shortens. Every seed profile is probed with rules that block some of its
//! flows, and the report (and its JSON) must name exactly those flows, each with its remedy:
//! Oscar, Izuma, ThingPark here, the Elseta WCC Lite (telemetry answered by the responder's
//! echo, IKE, what the peer opens) and the Ubisense sensor (the site's own ports for the
//! DIMENSION4 protocols, DNS). A peer that answers that nothing listens (a reset, an ICMP
//! port unreachable) gets "check the service", not "allow": the packet got through. The ICMP
//! echo takes only errors about its own request, not the port unreachables of UDP probes
//! running beside it. Traffic never leaves the lab's namespaces.
//!
//! Over 800 lines on purpose: one namespace lab set up once serves every classification, and
//! splitting it would set the lab up again per file (each set-up costs seconds of CI).

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::dns_server::Zone;
use common::lab::Lab;
use common::probe::{blamed, blamed_json, check, json, name_check, opts, plan_of, probe, sa};
use common::servers::{arm_bootstrap_ca, inspection_ca, start, Service};
use portolan_net::probe::Options;
use portolan_net::report::{Check, Kind, Report, Stage, Verdict};
use portolan_net::runtime::{block_on, EchoReply, System, TcpState, Transport as _, UdpReply};
use portolan_net::udp_apps::Expect;

fn oscar_servers(lab: &Lab) -> common::servers::Servers {
    lab.srv_addresses(&["198.51.100.10", "198.51.100.53"]);
    let zone = Zone::default().host("gk.sensorist.com", &["198.51.100.10"], 300);
    start(
        &lab.srv,
        vec![
            Service::Dns(sa("198.51.100.53:53"), zone),
            Service::Tcp(sa("198.51.100.10:443")),
            Service::Tcp(sa("198.51.100.10:4321")),
        ],
    )
}

const OSCAR: &str = "  - id: oscar\n    profile: oscar-templog-gateway\n    zone: field\n    addresses: [10.20.0.33]\n    bind:\n      cloud: [gk.sensorist.com]\n";

#[test]
fn oscar_alternatives_partly_then_not_at_all() {
    let lab = Lab::new();
    let _servers = oscar_servers(&lab);
    let p = plan_of(OSCAR, "oscar");
    // The device's resolver from its resolv.conf.
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("resolv.conf");
    std::fs::write(&conf, "nameserver 198.51.100.53\n").expect("write");
    let o = Options {
        resolver: None,
        resolv_conf: Some(conf),
        ..opts()
    };

    // 4321 dropped: one of the two ports works, the group passes with a warning.
    lab.firewall(&["ip daddr 198.51.100.10 tcp dport 4321 drop"]);
    let r = probe(&lab, &p, &o);
    assert_eq!(r.source, Some("10.20.0.33".parse().expect("ip")));
    assert_eq!(
        r.stage(Stage::Address).map(|s| s.verdict),
        Some(Verdict::Pass),
        "{}",
        json(&r)
    );
    assert_eq!(
        r.stage(Stage::Names).map(|s| s.verdict),
        Some(Verdict::Pass)
    );
    assert_eq!(
        check(&r, Kind::Target, "cloud-443", Some(443)).state,
        "open"
    );
    assert_eq!(
        check(&r, Kind::Target, "cloud-4321", Some(4321)).state,
        "filtered"
    );
    assert_eq!(check(&r, Kind::Target, "dns", Some(53)).state, "open");
    let alt = check(&r, Kind::Alternative, "cloud", None);
    assert_eq!(
        (alt.state.as_str(), alt.verdict),
        ("partial", Verdict::Warn)
    );
    assert_eq!(
        r.remedies,
        vec!["allow TCP 4321 from 10.20.0.33 to gk.sensorist.com — Oscar TempLog gateway, group `cloud`".to_string()]
    );
    assert!(r.ok(), "a partly open alternative group still works");

    // 443 rejected as well: nothing works, the gateway's LED would blink red.
    lab.firewall(&[
        "ip daddr 198.51.100.10 tcp dport 4321 drop",
        "ip daddr 198.51.100.10 tcp dport 443 reject with tcp reset",
    ]);
    let r = probe(&lab, &p, &o);
    assert_eq!(
        check(&r, Kind::Target, "cloud-443", Some(443)).state,
        "refused"
    );
    assert_eq!(
        check(&r, Kind::Target, "cloud-4321", Some(4321)).state,
        "filtered"
    );
    let alt = check(&r, Kind::Alternative, "cloud", None);
    assert_eq!((alt.state.as_str(), alt.verdict), ("none", Verdict::Fail));
    // 4321 is the firewall's to allow; 443 answered with a reset, which is the peer's as far as
    // the probe can tell: no handshake with the target gives a TTL to compare the reset's with,
    // so the verdict says its confidence is low.
    assert!(
        check(&r, Kind::Target, "cloud-443", Some(443))
            .detail
            .contains("(confidence: low"),
        "{}",
        json(&r)
    );
    let remedy = "allow TCP 4321 from 10.20.0.33 to gk.sensorist.com — Oscar TempLog gateway, group `cloud`; check the service on TCP 443 at gk.sensorist.com: the peer answered with a TCP reset, so the packet got through, but nothing listens on that port — is the service running there, and is the right host bound? — Oscar TempLog gateway, group `cloud`";
    assert_eq!(r.remedies, vec![remedy.to_string()]);
    assert_eq!(
        r.stage(Stage::Reach).map(|s| s.verdict),
        Some(Verdict::Fail)
    );
    assert!(!r.ok());
    let j: serde_json::Value = serde_json::from_str(&json(&r)).expect("json");
    assert_eq!(j["verdict"], "fail");
    assert_eq!(j["remedies"][0], remedy);
}

#[test]
fn izuma_classifications_and_tls_interception() {
    let lab = Lab::new();
    lab.srv_addresses(&[
        "198.51.100.20",
        "198.51.100.21",
        "198.51.100.22",
        "198.51.100.24",
        "198.51.100.53",
    ]);
    let zone = Zone::default()
        .host("bootstrap.us-east-1.mbedcloud.com", &["198.51.100.20"], 60)
        .host("lwm2m.us-east-1.mbedcloud.com", &["198.51.100.21"], 60)
        .host("tcp-lwm2m.us-east-1.mbedcloud.com", &["198.51.100.22"], 60)
        .host("bootstrap.intercepted.test", &["198.51.100.24"], 60);
    let bootstrap = "bootstrap.us-east-1.mbedcloud.com".to_string();
    let _servers = start(
        &lab.srv,
        vec![
            Service::Dns(sa("198.51.100.53:53"), zone),
            Service::Tls(
                sa("198.51.100.20:5684"),
                vec![bootstrap],
                arm_bootstrap_ca(),
            ),
            Service::Tls(
                sa("198.51.100.21:5684"),
                vec!["lwm2m.us-east-1.mbedcloud.com".into()],
                inspection_ca(),
            ),
            Service::Tls(
                sa("198.51.100.22:5684"),
                vec!["tcp-lwm2m.us-east-1.mbedcloud.com".into()],
                arm_bootstrap_ca(),
            ),
            Service::Tls(
                sa("198.51.100.24:5684"),
                vec!["bootstrap.intercepted.test".into()],
                inspection_ca(),
            ),
        ],
    );
    // CoAPs on 5684/UDP is DTLS (RFC 7252 §6.2): a real DTLS 1.2 server answers there.
    let dir = tempfile::tempdir().expect("tempdir");
    let _dtls = common::procs::dtls_server(
        &lab.srv,
        "198.51.100.20:5684",
        "bootstrap.us-east-1.mbedcloud.com",
        "/C=GB/ST=Cambridgeshire/L=Cambridge/O=ARM Ltd/CN=ARM Bootstrap CA",
        dir.path(),
    );
    lab.firewall(&[
        "ip daddr 198.51.100.53 tcp dport 53 reject with icmp type admin-prohibited",
        "ip daddr 198.51.100.22 tcp dport 5684 drop",
    ]);
    let devices = "  - id: izuma-a\n    profile: izuma-device-management\n    mode: device\n    zone: field\n    addresses: [10.20.0.33]\n  - id: izuma-b\n    profile: izuma-device-management\n    mode: device\n    zone: field\n    addresses: [10.20.0.34]\n    bind:\n      bootstrap: [bootstrap.intercepted.test]\n";
    let r = probe(&lab, &plan_of(devices, "izuma-a"), &opts());
    let t = |flow, port| check(&r, Kind::Target, flow, Some(port)).state.clone();
    assert_eq!(t("dns", 53), "open");
    // The router's admin-prohibited comes from 10.20.0.1, not the resolver: the path rejects.
    assert_eq!(t("dns-tcp", 53), "rejected");
    assert!(
        check(&r, Kind::Target, "dns-tcp", Some(53))
            .detail
            .contains("a device on the path (10.20.0.1) rejected the flow"),
        "{}",
        json(&r)
    );
    let dtls = check(&r, Kind::Target, "bootstrap-udp", Some(5684));
    assert_eq!(
        (
            dtls.state.as_str(),
            dtls.detail.contains("answered a DTLS 1.2 ClientHello")
        ),
        ("open", true),
        "{dtls:?}"
    );
    assert_eq!(t("bootstrap-tcp", 5684), "open");
    assert_eq!(t("mds-legacy-udp", 5684), "closed");
    // No DTLS server on lwm2m's UDP port: the port unreachable comes from the target itself.
    assert!(
        check(&r, Kind::Target, "mds-legacy-udp", Some(5684))
            .detail
            .ends_with("(confidence: high: the error came from the target itself)"),
        "{}",
        json(&r)
    );
    assert_eq!(t("mds-legacy-tcp", 5684), "open");
    assert_eq!(t("mds-tcp", 5684), "filtered");
    let nx = name_check(&r, Kind::Name, "udp-lwm2m.us-east-1.mbedcloud.com");
    assert_eq!((nx.state.as_str(), nx.verdict), ("nxdomain", Verdict::Fail));
    assert_eq!(check(&r, Kind::Flow, "mds-udp", None).state, "unresolved");
    // The DTLS handshake reaches the server's certificate, issued by the ARM Bootstrap CA (the
    // profile states no issuer for the UDP flow: shown, not judged).
    let dtls = check(&r, Kind::Tls, "bootstrap-udp", Some(5684));
    assert_eq!(
        (dtls.state.as_str(), dtls.protocol.as_deref()),
        ("issuer", Some("udp")),
        "{dtls:?}"
    );
    assert!(
        dtls.detail.contains(
            "issuer C = GB, ST = Cambridgeshire, L = Cambridge, O = ARM Ltd, CN = ARM Bootstrap CA"
        ),
        "{dtls:?}"
    );
    let ok = check(&r, Kind::Tls, "bootstrap-tcp", Some(5684));
    assert_eq!(
        (ok.state.as_str(), ok.verdict),
        ("untampered", Verdict::Pass)
    );
    // The legacy mDS flow states no expected issuer: its issuer is shown, not judged.
    let shown = check(&r, Kind::Tls, "mds-legacy-tcp", Some(5684));
    assert!(
        shown.detail.contains("CN = Inspection CA") && !shown.decisive,
        "{shown:?}"
    );
    let remedies = r.remedies.join("\n");
    assert!(remedies.contains("allow TCP 5684 from 10.20.0.33 to tcp-lwm2m.us-east-1.mbedcloud.com — Izuma Device Management"), "{remedies}");
    // The mDS flows are alternatives: the legacy TCP one works, so the group only warns.
    let mds = check(&r, Kind::Alternative, "mds", None);
    assert_eq!(
        (mds.state.as_str(), mds.verdict),
        ("partial", Verdict::Warn)
    );
    assert!(remedies.contains("group `mds`"), "{remedies}");
    assert!(
        remedies.contains("allow TCP 53 from 10.20.0.33 to 198.51.100.53"),
        "{remedies}"
    );
    assert!(remedies.contains("it answers NXDOMAIN"), "{remedies}");
    // Exactly what the lab breaks: TCP DNS rejected, the mDS group partly open (TCP dropped,
    // the legacy UDP port closed, the UDP host not in the zone).
    assert_eq!(blamed(&r), ["dns-tcp", "mds"], "{}", json(&r));
    assert_eq!(r.remedies.len(), 3, "{:?}", r.remedies);
    assert_eq!(blamed_json(&r), (blamed(&r), r.remedies.clone()));
    assert!(!r.ok());

    // The second device's bootstrap host is behind a TLS-inspecting firewall.
    let o = Options {
        source: Some("10.20.0.34".parse().expect("ip")),
        ..opts()
    };
    let r = probe(&lab, &plan_of(devices, "izuma-b"), &o);
    assert_eq!(r.source, Some("10.20.0.34".parse().expect("ip")));
    let bad = check(&r, Kind::Tls, "bootstrap-tcp", Some(5684));
    assert_eq!(
        (bad.state.as_str(), bad.verdict),
        ("intercepted", Verdict::Fail)
    );
    assert!(
        bad.detail
            .contains("C = US, O = Inspecting Firewall Inc, CN = Inspection CA"),
        "{}",
        bad.detail
    );
    assert!(
        r.remedies.iter().any(|m| m.starts_with(
            "exempt TCP 5684 from 10.20.0.34 to bootstrap.intercepted.test from TLS inspection"
        )),
        "{:?}",
        r.remedies
    );
    assert!(json(&r).contains("\"intercepted\""));
    // The interception is named on its own flow; the rest as for the first device, plus the
    // bootstrap group (no DTLS server on the intercepted host's UDP port).
    assert_eq!(
        blamed(&r),
        ["bootstrap", "bootstrap-tcp", "dns-tcp", "mds"],
        "{}",
        json(&r)
    );
    assert_eq!(blamed_json(&r), (blamed(&r), r.remedies.clone()));
}

#[test]
fn thingpark_ipsec_ntp_ike_icmp_and_ranges() {
    let lab = Lab::new();
    lab.srv_addresses(&[
        "198.51.100.30",
        "198.51.100.31",
        "198.51.100.53",
        "198.51.100.123",
    ]);
    let _servers = start(
        &lab.srv,
        vec![
            Service::Dns(sa("198.51.100.53:53"), Zone::default()),
            Service::Ntp(sa("198.51.100.123:123")),
            Service::Ike(sa("198.51.100.30:500")),
            Service::Tcp(sa("198.51.100.30:3001")),
            Service::Tcp(sa("198.51.100.30:3002")),
            Service::Tcp(sa("198.51.100.30:22")),
            Service::Tcp(sa("198.51.100.31:22")),
        ],
    );
    lab.firewall(&[
        "ip daddr 198.51.100.30 udp dport 4500 drop",
        "ip daddr 198.51.100.31 tcp dport 22 drop",
    ]);
    let devices = "  - id: lrr\n    profile: thingpark-lrr\n    mode: ipsec\n    version: \"2.9\"\n    zone: field\n    addresses: [10.20.0.35]\n    bind:\n      slrc: [198.51.100.30]\n      support: [198.51.100.31]\n";
    let o = Options {
        source: Some("10.20.0.35".parse().expect("ip")),
        ..opts()
    };
    let r = probe(&lab, &plan_of(devices, "lrr"), &o);
    let t = |flow, port| check(&r, Kind::Target, flow, port).state.clone();
    assert_eq!(t("i17", Some(123)), "open", "NTP answered");
    assert_eq!(t("i6", Some(500)), "open", "IKE_SA_INIT answered");
    assert_eq!(t("i6", Some(4500)), "open|filtered");
    assert_eq!(t("i8a", None), "open", "ICMP echo");
    assert_eq!(t("i7a", Some(3001)), "open");
    assert_eq!(t("i7a", Some(3003)), "refused");
    assert_eq!(t("i9", Some(22)), "filtered");
    assert_eq!(t("i10", Some(53)), "open");
    assert!(r
        .checks()
        .any(|c| c.kind == Kind::NotProbed && c.flow.as_deref() == Some("i7")));
    // Exactly what the lab breaks: NAT-T dropped, SSH to support dropped, 3003 unserved.
    assert_eq!(blamed(&r), ["i6", "i7a", "i9"], "{}", json(&r));
    assert_eq!(r.remedies.len(), 3, "{:?}", r.remedies);
    assert_eq!(blamed_json(&r), (blamed(&r), r.remedies.clone()));
    assert_eq!(check(&r, Kind::Flow, "i6", None).verdict, Verdict::Warn);
    let remedies = r.remedies.join("\n");
    for want in [
        // Nothing serves 3003: the peer resets, the firewall is not what to change.
        "check the service on TCP 3003 at 198.51.100.30: the peer answered with a TCP reset, so the packet got through, but nothing listens on that port — is the service running there, and is the right host bound? — ThingPark LRR base station (and Semtech Basics Station), flow `i7a`",
        "allow TCP 22 from 10.20.0.35 to 198.51.100.31",
        "flow `i9`",
        "allow UDP 4500 from 10.20.0.35 to 198.51.100.30",
    ] {
        assert!(remedies.contains(want), "missing {want} in\n{remedies}");
    }
    assert!(!remedies.contains("allow TCP 3003"), "{remedies}");
    assert!(!r.ok());
}

#[test]
fn names_servfail_timeout_differences_and_ttl_inflation() {
    let lab = Lab::new();
    lab.srv_addresses(&["198.51.100.10", "198.51.100.53", "198.51.100.54"]);
    let reference = Zone::default()
        .host("gk.sensorist.com", &["198.51.100.10"], 300)
        .host("gk.sensorist.net", &["198.51.100.11"], 300);
    let inflating = Zone {
        servfail: vec!["broken.test".into()],
        silent: vec!["silent.test".into()],
        ttl_factor: 100,
        ..Zone::default()
            .host("gk.sensorist.com", &["198.51.100.10"], 300)
            .host("gk.sensorist.net", &["198.51.100.12"], 300)
    };
    let _servers = start(
        &lab.srv,
        vec![
            Service::Dns(sa("198.51.100.53:53"), reference),
            Service::Dns(sa("198.51.100.54:53"), inflating),
            Service::Tcp(sa("198.51.100.10:443")),
        ],
    );
    lab.firewall(&[]);
    let devices = "  - id: oscar\n    profile: oscar-templog-gateway\n    zone: field\n    addresses: [10.20.0.33]\n    bind:\n      cloud: [gk.sensorist.com, gk.sensorist.net, broken.test, silent.test]\n";
    let o = Options {
        resolver: Some(sa("198.51.100.54:53")),
        compare_resolver: Some(sa("198.51.100.53:53")),
        ttl_queries: 2,
        ttl_gap: Duration::from_millis(300),
        ..opts()
    };
    let r = probe(&lab, &plan_of(devices, "oscar"), &o);
    let s = |k, n| name_check(&r, k, n).state.clone();
    assert_eq!(s(Kind::Name, "gk.sensorist.com"), "resolved");
    assert_eq!(s(Kind::Name, "broken.test"), "servfail");
    assert_eq!(s(Kind::Name, "silent.test"), "timeout");
    assert_eq!(s(Kind::Ttl, "gk.sensorist.com"), "ttl-inflated");
    assert_eq!(s(Kind::Compare, "gk.sensorist.net"), "differs");
    assert!(name_check(&r, Kind::Ttl, "gk.sensorist.com")
        .detail
        .contains("30000 s"));
    assert_eq!(
        r.stage(Stage::Names).map(|x| x.verdict),
        Some(Verdict::Fail)
    );
    let remedies = r.remedies.join("\n");
    assert!(remedies.contains("it answers SERVFAIL"), "{remedies}");
    assert!(
        remedies.contains("does not answer for silent.test"),
        "{remedies}"
    );
    assert!(
        remedies.contains("honour the record's TTL for gk.sensorist.com"),
        "{remedies}"
    );
}

#[test]
fn nat_timeout_measured_against_a_short_conntrack_timeout() {
    let lab = Lab::new();
    lab.srv_addresses(&["198.51.100.53"]);
    let token = "lab-token-1234".to_string();
    let _servers = start(
        &lab.srv,
        vec![
            Service::Dns(sa("198.51.100.53:53"), Zone::default()),
            Service::Responder(sa("198.51.100.7:40000"), token.clone()),
        ],
    );
    lab.firewall(&[]);
    lab.conntrack("nf_conntrack_udp_timeout", 3);
    lab.conntrack("nf_conntrack_udp_timeout_stream", 3);
    lab.conntrack("nf_conntrack_tcp_timeout_established", 4);
    let devices = "  - id: izuma\n    profile: izuma-device-management\n    mode: device\n    zone: field\n    addresses: [10.20.0.33]\n";
    let o = Options {
        keepalive: Some(portolan_net::keepalive::Options {
            responder: sa("198.51.100.7:40000"),
            token: token.clone(),
            source: None,
            max: Duration::from_secs(6),
            steps: 6,
            grace: Duration::from_millis(1500),
            progress: None,
        }),
        ..opts()
    };
    let r = probe(&lab, &plan_of(devices, "izuma"), &o);
    let nat: Vec<&Check> = r.checks().filter(|c| c.kind == Kind::NatTimeout).collect();
    assert_eq!(nat.len(), 2, "{}", json(&r));
    for c in &nat {
        assert_eq!(c.state, "drops", "{c:?}");
    }
    let udp = nat
        .iter()
        .find(|c| c.protocol.as_deref() == Some("udp"))
        .expect("udp");
    let tcp = nat
        .iter()
        .find(|c| c.protocol.as_deref() == Some("tcp"))
        .expect("tcp");
    // UDP mappings live 3 s, TCP 4 s: the brackets must enclose them.
    assert!(
        [
            "between 2 and 3 s",
            "between 3 and 4 s",
            "between 2 and 4 s"
        ]
        .iter()
        .any(|b| udp.detail.contains(b)),
        "{}",
        udp.detail
    );
    assert!(
        [
            "between 3 and 4 s",
            "between 4 and 5 s",
            "between 3 and 5 s"
        ]
        .iter()
        .any(|b| tcp.detail.contains(b)),
        "{}",
        tcp.detail
    );
    // Izuma's CoAP-over-TCP keepalive (540 s) is far longer than the path keeps a mapping.
    let ka = check(&r, Kind::Keepalive, "mds-tcp", None);
    assert_eq!(
        (ka.state.as_str(), ka.verdict),
        ("too-short", Verdict::Fail)
    );
    assert!(
        ka.remedy.as_deref().unwrap_or("").contains("above 540 s"),
        "{ka:?}"
    );
    assert_eq!(
        r.stage(Stage::Keepalive).map(|s| s.verdict),
        Some(Verdict::Fail)
    );

    // A probe with the wrong token gets no answer at all.
    let wrong = portolan_net::keepalive::Options {
        responder: sa("198.51.100.7:40000"),
        token: "not-the-token".into(),
        source: None,
        max: Duration::from_secs(1),
        steps: 1,
        grace: Duration::from_millis(200),
        progress: None,
    };
    let m = portolan_net::netns::run_in(&lab.dev, move || {
        block_on(async move { portolan_net::keepalive::measure(&wrong).await }).expect("runtime")
    })
    .expect("netns");
    assert!(m.udp.is_err() && m.tcp.is_err(), "{m:?}");
}

const WCC: &str = "  - id: wcc\n    profile: elseta-wcc-lite\n    zone: field\n    addresses: [10.20.0.33]\n    features: [telemetry, ser2net, snmp, ipsec]\n    params:\n      telemetry_port: 5140\n      ser2net_ports: \"4001-4004\"\n    bind:\n      telemetry-server: [198.51.100.50]\n      ipsec-peer: [198.51.100.51]\n      management: [198.51.100.60]\n      ser2net-client: [198.51.100.60]\n";

#[test]
fn elseta_telemetry_echo_ike_and_what_the_peer_opens() {
    let lab = Lab::new();
    lab.srv_addresses(&["198.51.100.50", "198.51.100.51", "198.51.100.53"]);
    let token = "wcc-lab-token".to_string();
    let _servers = start(
        &lab.srv,
        vec![
            Service::Dns(sa("198.51.100.53:53"), Zone::default()),
            // The telemetry server's port answers the responder's echo: a UDP flow without an
            // application answer is told `open`, not `open|filtered`.
            Service::Responder(sa("198.51.100.50:5140"), token.clone()),
            Service::Ike(sa("198.51.100.51:500")),
            Service::Ike(sa("198.51.100.51:4500")),
        ],
    );
    let p = plan_of(WCC, "wcc");
    let o = Options {
        token: Some(token),
        ..opts()
    };

    // Nothing blocked: every flow the gateway opens works.
    lab.firewall(&[]);
    let r = probe(&lab, &p, &o);
    let t = |r: &Report, flow, port| check(r, Kind::Target, flow, port).state.clone();
    assert_eq!(t(&r, "telemetry", Some(5140)), "open", "{}", json(&r));
    assert!(check(&r, Kind::Target, "telemetry", Some(5140))
        .detail
        .contains("answered a responder echo"));
    assert_eq!(t(&r, "ipsec-ike", Some(500)), "open");
    assert_eq!(t(&r, "ipsec-nat-t", Some(4500)), "open");
    assert!(blamed(&r).is_empty(), "{}", json(&r));
    assert!(r.remedies.is_empty(), "{:?}", r.remedies);
    assert!(r.ok());
    // What the probe cannot test from the device's side is said, flow by flow.
    let not = |flow: &str| {
        r.checks()
            .find(|c| c.kind == Kind::NotProbed && c.flow.as_deref() == Some(flow))
            .unwrap_or_else(|| panic!("no not-probed check for {flow}\n{}", json(&r)))
            .detail
            .clone()
    };
    assert_eq!(
        not("snmp"),
        "snmp: opened by the peer, not probed from the device's side"
    );
    assert_eq!(
        not("ser2net"),
        "ser2net: opened by the peer, not probed from the device's side"
    );
    assert!(
        not("ipsec-esp").contains("ESP has no probe"),
        "{}",
        not("ipsec-esp")
    );
    assert!(not("ipsec-ike").contains("the peer's direction"));

    // The telemetry port rejected, IKE dropped: exactly those two flows, each with its remedy.
    lab.firewall(&[
        "ip daddr 198.51.100.50 udp dport 5140 reject",
        "ip daddr 198.51.100.51 udp dport 500 drop",
    ]);
    let r = probe(&lab, &p, &o);
    // The router's port unreachable comes from 10.20.0.1, not the telemetry server: a device on
    // the path rejected the datagram (issue 11), so the firewall is what to change.
    assert_eq!(t(&r, "telemetry", Some(5140)), "rejected", "{}", json(&r));
    assert!(check(&r, Kind::Target, "telemetry", Some(5140))
        .detail
        .contains("a device on the path (10.20.0.1) rejected the flow (ICMP port unreachable from 10.20.0.1, not from the target)"));
    assert_eq!(t(&r, "ipsec-ike", Some(500)), "open|filtered");
    assert_eq!(t(&r, "ipsec-nat-t", Some(4500)), "open");
    let telemetry = check(&r, Kind::Flow, "telemetry", None);
    assert_eq!(telemetry.verdict, Verdict::Fail);
    assert_eq!(
        check(&r, Kind::Flow, "ipsec-ike", None).verdict,
        Verdict::Warn
    );
    let want = vec![
        "allow UDP 5140 from 10.20.0.33 to 198.51.100.50 — WCC Lite, flow `telemetry`".to_string(),
        "allow UDP 500 from 10.20.0.33 to 198.51.100.51 — WCC Lite, flow `ipsec-ike`".to_string(),
    ];
    assert_eq!(blamed(&r), vec!["ipsec-ike", "telemetry"], "{}", json(&r));
    assert_eq!(r.remedies, want);
    assert_eq!(
        blamed_json(&r),
        (vec!["ipsec-ike".into(), "telemetry".into()], want)
    );
    assert!(!r.ok());
}

const D4: &str = "  - id: d4\n    profile: ubisense-dimension4-sensor\n    mode: static\n    zone: field\n    addresses: [10.20.0.34]\n    bind:\n      configuration-server: [198.51.100.40]\n      boot-configuration-server: [198.51.100.41]\n      boot-file-server: [198.51.100.41]\n      location-configuration-server: [198.51.100.40]\n      configuration-distribution-server: [198.51.100.40]\n      location-sink: [198.51.100.42]\n      dimension4-server: [198.51.100.40]\n      dimension4-peer: [198.51.100.40]\n    flows:\n      config-server-search: {protocol: udp, ports: 5000}\n      boot-config-request: {protocol: udp, ports: 5001}\n      boot-file-download: {protocol: tcp, ports: 5002}\n      location-registration: {protocol: tcp, ports: 5003}\n      location-config-distribution: {protocol: tcp, ports: 5004}\n      status-location: {protocol: udp, ports: 5005}\n      raw-udp: {ports: 5006}\n      remote-ops: {protocol: tcp, ports: 5007}\n      event-channel: {protocol: tcp, ports: 5008}\n";

#[test]
fn ubisense_site_supplied_ports_and_dns() {
    let lab = Lab::new();
    lab.srv_addresses(&[
        "198.51.100.40",
        "198.51.100.41",
        "198.51.100.42",
        "198.51.100.53",
    ]);
    let token = "d4-lab-token".to_string();
    let echo = |a: &str| Service::Responder(sa(a), token.clone());
    let _servers = start(
        &lab.srv,
        vec![
            Service::Dns(sa("198.51.100.53:53"), Zone::default()),
            echo("198.51.100.40:5000"),
            echo("198.51.100.41:5001"),
            Service::Tcp(sa("198.51.100.41:5002")),
            Service::Tcp(sa("198.51.100.40:5003")),
            Service::Tcp(sa("198.51.100.40:5004")),
            echo("198.51.100.42:5005"),
            echo("198.51.100.40:5006"),
            Service::Tcp(sa("198.51.100.40:5007")),
            Service::Tcp(sa("198.51.100.40:5008")),
        ],
    );
    let p = plan_of(D4, "d4");
    let o = Options {
        source: Some("10.20.0.34".parse().expect("ip")),
        token: Some(token.clone()),
        ..opts()
    };
    let flows = [
        ("dns", 53),
        ("config-server-search", 5000),
        ("boot-config-request", 5001),
        ("boot-file-download", 5002),
        ("location-registration", 5003),
        ("location-config-distribution", 5004),
        ("status-location", 5005),
        ("raw-udp", 5006),
        ("remote-ops", 5007),
        ("event-channel", 5008),
    ];

    lab.firewall(&[]);
    let r = probe(&lab, &p, &o);
    for (flow, port) in flows {
        assert_eq!(
            check(&r, Kind::Target, flow, Some(port)).state,
            "open",
            "{flow}\n{}",
            json(&r)
        );
    }
    assert!(blamed(&r).is_empty(), "{}", json(&r));
    assert!(r.remedies.is_empty(), "{:?}", r.remedies);
    assert!(r.ok());

    // DNS rejected by the router, the registration reset, status updates dropped, the event
    // channel dropped: exactly those four, each with the site's own port in its remedy.
    lab.firewall(&[
        "ip daddr 198.51.100.53 udp dport 53 reject with icmp type admin-prohibited",
        "ip daddr 198.51.100.40 tcp dport 5003 reject with tcp reset",
        "ip daddr 198.51.100.42 udp dport 5005 drop",
        "ip daddr 198.51.100.40 tcp dport 5008 drop",
    ]);
    let r = probe(&lab, &p, &o);
    let t = |flow, port| check(&r, Kind::Target, flow, Some(port)).state.clone();
    // Both rejections come from the router: the ICMP error's source is 10.20.0.1, and the
    // reset's TTL (64, sent by the router) differs from the SYN-ACKs of 198.51.100.40's open
    // ports (63, one hop further).
    assert_eq!(t("dns", 53), "rejected", "{}", json(&r));
    assert_eq!(t("location-registration", 5003), "rejected");
    let reset = check(&r, Kind::Target, "location-registration", Some(5003));
    assert!(
        reset
            .detail
            .contains("a TCP reset with TTL 64, but the target's SYN-ACK on port")
            && reset.detail.contains("came with TTL 63")
            && reset.detail.contains("(confidence: medium)"),
        "{}",
        reset.detail
    );
    assert_eq!(t("status-location", 5005), "open|filtered");
    assert_eq!(t("event-channel", 5008), "filtered");
    for (flow, port) in flows {
        if !matches!(port, 53 | 5003 | 5005 | 5008) {
            assert_eq!(t(flow, port), "open", "{flow}");
        }
    }
    let product = "DIMENSION4 UWB sensor";
    let want: Vec<String> = [
        ("UDP 53", "198.51.100.53", "dns"),
        ("TCP 5003", "198.51.100.40", "location-registration"),
        ("UDP 5005", "198.51.100.42", "status-location"),
        ("TCP 5008", "198.51.100.40", "event-channel"),
    ]
    .iter()
    .map(|(what, to, flow)| {
        format!("allow {what} from 10.20.0.34 to {to} — {product}, flow `{flow}`")
    })
    .collect();
    let mut flows_blamed = vec![
        "dns".to_string(),
        "event-channel".into(),
        "location-registration".into(),
        "status-location".into(),
    ];
    flows_blamed.sort();
    assert_eq!(blamed(&r), flows_blamed, "{}", json(&r));
    assert_eq!(r.remedies, want);
    assert_eq!(blamed_json(&r), (flows_blamed, want));
    assert!(!r.ok());
}

/// A raw ICMP socket (what the probe opens where ping sockets are not allowed, as in a fresh
/// namespace) receives every ICMP packet from the host it pings, including the port
/// unreachables answering other sockets' UDP probes. With the default concurrency those
/// arrive while the echo waits: the echo must take only errors quoting its own request, and
/// the UDP and TCP probes (connected sockets) only errors quoting theirs.
#[test]
fn the_echo_ignores_errors_about_other_probes() {
    let lab = Lab::new();
    let dst: IpAddr = "198.51.100.7".parse().expect("ip");
    // Pings go unanswered, so the echo is still waiting when the port unreachables for the
    // UDP datagrams to port 7 (nothing listens there) come back; 9999 is dropped.
    lab.firewall(&[
        "ip daddr 198.51.100.7 icmp type echo-request drop",
        "ip daddr 198.51.100.7 udp dport 9999 drop",
        "ip daddr 198.51.100.7 tcp dport 9999 drop",
    ]);
    let wait = Duration::from_millis(1200);
    let run_all = move || {
        block_on(async move {
            let noise = async {
                let s = tokio::net::UdpSocket::bind("0.0.0.0:0")
                    .await
                    .expect("bind");
                for _ in 0..5 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let _ = s.send_to(b"closed", SocketAddr::new(dst, 7)).await;
                }
                // The host did answer them: nothing listens on 7.
                System
                    .udp_exchange(
                        None,
                        SocketAddr::new(dst, 7),
                        b"closed".to_vec(),
                        Expect::Any,
                        Duration::from_millis(300),
                        1,
                    )
                    .await
            };
            tokio::join!(
                System.icmp_echo(None, dst, wait),
                System.udp_exchange(
                    None,
                    SocketAddr::new(dst, 9999),
                    b"dropped".to_vec(),
                    Expect::Any,
                    wait,
                    1
                ),
                System.tcp_connect(None, SocketAddr::new(dst, 9999), wait),
                noise,
            )
        })
        .expect("runtime")
    };
    let (echo, udp, tcp, closed) =
        portolan_net::netns::run_in(&lab.dev, run_all).expect("run in the device namespace");
    assert!(
        matches!(closed, UdpReply::Closed(_)),
        "the port unreachables were sent: {closed:?}"
    );
    assert_eq!(echo, EchoReply::Silent, "another probe's port unreachable");
    assert_eq!(udp, UdpReply::Silent);
    assert_eq!(tcp.state, TcpState::Filtered, "{tcp:?}");

    // An error that does quote the echo still counts.
    lab.firewall(&[
        "ip daddr 198.51.100.7 icmp type echo-request reject with icmp type admin-prohibited",
    ]);
    let echo = portolan_net::netns::run_in(&lab.dev, move || {
        block_on(async move { System.icmp_echo(None, dst, wait).await }).expect("runtime")
    })
    .expect("run in the device namespace");
    assert!(matches!(echo, EchoReply::Unreachable(_)), "{echo:?}");
}
