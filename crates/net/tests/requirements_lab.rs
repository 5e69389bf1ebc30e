//! The requirements stage against real servers: dnsmasq as the DHCP server (some of the
//! required options configured, one not) and dnsmasq as the site's DNS server (one required
//! name present, one absent), in a server namespace joined to the device namespace by a veth
//! pair; the probe runs in the device namespace. A second address of the server answers DNS
//! too, until an nft rule in the server namespace drops DNS to it: the hard-coded resolver a
//! firewall blocks. Every expectation below comes from the dnsmasq and nft configuration
//! written here. The lab's namespaces and processes go when it is dropped, also on failure.

mod common;

use std::time::Duration;

use common::dhcp_lab::DhcpLab;
use portolan_net::plan::{plan, Plan};
use portolan_net::probe::{run, DhcpOptions, Options};
use portolan_net::report::{Check, Kind, Report, Stage, Verdict};
use portolan_net::runtime::{block_on, System};
use portolan_testkit::netns::must_in;
use portolan_testkit::Profiles;

const PROFILE: &str = r#"portolan: 2
id: needy-sensor
vendor: Example
product: Needy sensor
sources:
  - id: net
    title: Needy sensor network requirements
    file: needy.txt
endpoints:
  - id: dns
    service: dns
  - id: cloud
    hosts: [present.test]
flows:
  - id: dns
    from: device
    to: dns
    initiation: device
    protocol: udp
    ports: 53
    app: DNS
    source: {doc: net, ref: "Ports"}
  - id: cloud
    from: device
    to: cloud
    initiation: device
    protocol: tcp
    ports: 443
    optional: true
    source: {doc: net, ref: "Ports"}
requirements:
  - kind: addressing
    text: DHCP gives a router, DNS servers, NTP servers and the TFTP server
    dhcp_options: [3, 6, 42, 150]
    source: {doc: net, ref: "Addressing"}
  - kind: dns
    text: the device resolves its cloud and its update server
    names: [present.test, absent.test, slow.test]
    source: {doc: net, ref: "DNS, names"}
  - kind: dns
    text: the device asks these resolvers whatever DHCP says
    resolvers: [10.77.0.1, 10.77.0.2]
    source: {doc: net, ref: "DNS, resolvers"}
  - kind: link
    text: 2.4 GHz Wi-Fi only
    source: {doc: net, ref: "Wi-Fi"}
listens: none
"#;

const SITE: &str = "portolan: 1\nsite: req-lab\nzones:\n  - id: field\n    interface: lan0\n    networks: [10.77.0.0/24]\nservices:\n  dns: [10.77.0.1]\n  dhcp: firewall\ndevices:\n  - id: needy\n    profile: needy-sensor\n    zone: field\n    addresses: [10.77.0.99]\n";

fn needy() -> Plan {
    let policy = Profiles::catalog()
        .with_text("needy-sensor", PROFILE)
        .compile("req-lab.yaml", SITE);
    plan(&policy, "needy").expect("device in site")
}

fn probe(lab: &DhcpLab, dhcp: Option<DhcpOptions>) -> Report {
    let p = needy();
    let o = Options {
        timeout: Duration::from_millis(500),
        attempts: 1,
        ttl_queries: 1,
        resolv_conf: Some("/dev/null".into()),
        dhcp,
        ..Options::default()
    };
    portolan_net::netns::run_in(&lab.dev, move || {
        block_on(async move { run(&System, &p, &o).await }).expect("runtime")
    })
    .expect("run in the device namespace")
}

fn json(r: &Report) -> String {
    serde_json::to_string_pretty(r).expect("json")
}

/// (kind, what it is about, state, verdict) of every check of the requirements stage.
fn rows(r: &Report) -> Vec<(Kind, String, String, Verdict)> {
    r.stage(Stage::Requirements)
        .expect("a requirements stage")
        .checks
        .iter()
        .map(|c: &Check| {
            let about = c
                .dhcp_option
                .map(|o| o.to_string())
                .or_else(|| c.peer.clone())
                .or_else(|| c.address.map(|a| a.to_string()))
                .unwrap_or_default();
            (c.kind, about, c.state.clone(), c.verdict)
        })
        .collect()
}

fn row(k: Kind, about: &str, state: &str, v: Verdict) -> (Kind, String, String, Verdict) {
    (k, about.to_string(), state.to_string(), v)
}

#[test]
fn requirements_against_dnsmasq_dhcp_and_dns() {
    let mut lab = DhcpLab::new();
    lab.configure_dev("10.77.0.99/24");
    ip_add(&lab, "10.77.0.2/24");
    // DHCP: a router, NTP servers and a TFTP server address (RFC 5859, option 150); no DNS
    // servers. `--port=0` keeps dnsmasq from offering itself as the DNS server.
    lab.serve(&[
        "--no-ping",
        "--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,10m",
        "--dhcp-option=3,10.77.0.1",
        "--dhcp-option=42,10.77.0.123",
        "--dhcp-option=150,10.77.0.69",
    ]);
    // DNS: present.test is 10.77.0.5 with TTL 120; slow.test waits on a missing upstream;
    // every other name under test. is NXDOMAIN.
    lab.serve_dns(
        &["10.77.0.1", "10.77.0.2"],
        &[
            "--local=/test/",
            "--host-record=present.test,10.77.0.5",
            "--local-ttl=120",
            // slow.test is forwarded to an upstream that does not exist: no answer in time.
            "--server=/slow.test/10.77.0.250",
        ],
        "using only locally-known addresses for test",
    );

    // Without --dhcp: the DHCP options are skipped (never passed); both resolvers answer.
    let r = probe(&lab, None);
    assert_eq!(
        rows(&r),
        vec![
            row(Kind::DhcpOption, "", "skipped", Verdict::Skip),
            row(Kind::MustResolve, "present.test", "resolved", Verdict::Pass),
            row(Kind::MustResolve, "absent.test", "nxdomain", Verdict::Fail),
            row(Kind::MustResolve, "slow.test", "timeout", Verdict::Fail),
            row(
                Kind::HardCodedResolver,
                "10.77.0.1",
                "answers",
                Verdict::Pass
            ),
            row(
                Kind::HardCodedResolver,
                "10.77.0.2",
                "answers",
                Verdict::Pass
            ),
            row(Kind::NotProbed, "", "not-probed", Verdict::Skip),
        ],
        "{}",
        json(&r)
    );
    let checks = &r.stage(Stage::Requirements).expect("stage").checks;
    assert!(
        checks[0].detail.contains("give --dhcp"),
        "{}",
        checks[0].detail
    );
    assert_eq!(
        checks[1].detail,
        "present.test: 10.77.0.5 (TTL 120 s) at 10.77.0.1:53"
    );
    assert_eq!(
        checks[2].remedy.as_deref(),
        Some("make 10.77.0.1:53 resolve absent.test: it answers NXDOMAIN (check its forwarders, local zones and block lists) — Needy sensor, requirement “the device resolves its cloud and its update server” (net: DNS, names)")
    );
    assert_eq!(
        checks[3].remedy.as_deref(),
        Some("make 10.77.0.1:53 answer for slow.test: check that it runs, that its upstream servers answer, and that UDP and TCP 53 from 10.77.0.99 to it are allowed — Needy sensor, requirement “the device resolves its cloud and its update server” (net: DNS, names)")
    );
    assert!(!r.ok(), "a name that must resolve does not: exit 1");
    assert_eq!(
        r.stage(Stage::Requirements).map(|s| s.verdict),
        Some(Verdict::Fail)
    );

    // With --dhcp, and DNS to 10.77.0.2 dropped by the server's firewall.
    must_in(
        &lab.srv,
        &["nft", "-f", "-"],
        Some("table inet lab {\n chain input {\n  type filter hook input priority 0;\n  ip daddr 10.77.0.2 udp dport 53 drop\n  ip daddr 10.77.0.2 tcp dport 53 drop\n }\n}\n"),
    );
    let dhcp = DhcpOptions {
        interface: Some("eth0".into()),
        timeout: Duration::from_secs(2),
        attempts: 1,
    };
    let r = probe(&lab, Some(dhcp));
    assert_eq!(
        rows(&r),
        vec![
            row(Kind::DhcpOption, "3", "offered", Verdict::Pass),
            row(Kind::DhcpOption, "6", "missing", Verdict::Fail),
            row(Kind::DhcpOption, "42", "offered", Verdict::Pass),
            row(Kind::DhcpOption, "150", "offered", Verdict::Pass),
            row(Kind::MustResolve, "present.test", "resolved", Verdict::Pass),
            row(Kind::MustResolve, "absent.test", "nxdomain", Verdict::Fail),
            row(Kind::MustResolve, "slow.test", "timeout", Verdict::Fail),
            row(
                Kind::HardCodedResolver,
                "10.77.0.1",
                "answers",
                Verdict::Pass
            ),
            row(
                Kind::HardCodedResolver,
                "10.77.0.2",
                "timeout",
                Verdict::Fail
            ),
            row(Kind::NotProbed, "", "not-probed", Verdict::Skip),
        ],
        "{}",
        json(&r)
    );
    let checks = &r.stage(Stage::Requirements).expect("stage").checks;
    assert_eq!(
        checks[1].remedy.as_deref(),
        Some("configure the DHCP server 10.77.0.1 to hand out option 6 (domain name server) to 10.77.0.99 — Needy sensor, requirement “DHCP gives a router, DNS servers, NTP servers and the TFTP server” (net: Addressing)")
    );
    assert_eq!(
        checks[8].remedy.as_deref(),
        Some("allow UDP and TCP 53 from 10.77.0.99 to 10.77.0.2: the device asks it whatever DHCP says — Needy sensor, requirement “the device asks these resolvers whatever DHCP says” (net: DNS, resolvers)")
    );
    assert!(
        checks[2].detail.ends_with(": 10.77.0.123"),
        "{}",
        checks[2].detail
    );
    // dnsmasq saw option 150 in the DISCOVER's parameter request list, and sent it.
    let log = std::fs::read_to_string(lab.log()).expect("dnsmasq log");
    let requested: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once("requested options: ").map(|(_, o)| o))
        .collect();
    assert!(requested.concat().contains("150:"), "{log}");
    assert!(
        log.contains("option:150 tftp-server-address  10.77.0.69"),
        "{log}"
    );
    assert!(!log.contains("option:  6 "), "{log}");
    // Nothing was leased: the DISCOVER drew an offer and no REQUEST followed.
    assert!(!log.contains("DHCPREQUEST"), "{log}");
    assert!(!log.contains("DHCPACK"), "{log}");
    let j: serde_json::Value = serde_json::from_str(&json(&r)).expect("json");
    let stage = j["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["stage"] == "requirements")
        .expect("requirements stage");
    assert_eq!(stage["verdict"], "fail");
    assert_eq!(stage["checks"][1]["kind"], "dhcp-option");
    assert_eq!(stage["checks"][1]["dhcp_option"], 6);
    assert_eq!(stage["checks"][1]["requirement"]["index"], 0);
    assert_eq!(stage["checks"][1]["requirement"]["kind"], "addressing");
    assert_eq!(
        stage["checks"][1]["requirement"]["source"][0]["ref"],
        "Addressing"
    );
    assert_eq!(stage["checks"][8]["kind"], "hard-coded-resolver");
}

fn ip_add(lab: &DhcpLab, addr: &str) {
    must_in(&lab.srv, &["ip", "addr", "add", addr, "dev", "lan0"], None);
}
