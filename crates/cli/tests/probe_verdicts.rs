//! `portolan probe` verdicts that match the network (issue 11), end to end: the binary, run
//! with `--netns` in a lab this test builds — `dev` (the device, 10.20.0.33), `fw` (a router
//! whose nftables forward chain each case writes; it has no route beyond the lab, so the Oscar
//! profile's 2018 addresses do not exist), `srv` (198.51.100.0/24: dnsmasq as the site's
//! resolver on .53, socat TCP listeners, `openssl s_server` for TLS and DTLS 1.2). Every case
//! asserts the verdict, the exit code and the remedy text, in the human report and in JSON:
//! alternatives judged per host, volatile addresses as context (and `--strict-volatile`), a
//! router's REJECT attributed to the router, DTLS for CoAPs, the site's resolver, and remedies
//! naming exactly the (host, port) pairs that failed. It also prints the probe's running time.
//! Nothing touches the machine's own namespace; `/etc/netns/<dev>/resolv.conf` (what `ip
//! netns exec` shows the device namespace) is created and removed with the lab.

mod verdicts;

use std::process::Child;

use serde_json::Value;
use verdicts::{checks, one, probe, probe_with, remedies, Lab};

const OSCAR_SITE: &str = "portolan: 1\nsite: lab\nzones:\n  - id: field\n    interface: lan0\n    networks: [10.20.0.0/24]\nservices:\n  dns: [198.51.100.53]\n  dhcp: firewall\ndevices:\n  - id: oscar\n    profile: oscar-templog-gateway\n    zone: field\n    addresses: [10.20.0.33]\n";

/// gk.sensorist.com at .10 and gk.sensorist.net at .11, each answering on 443 and 4321; the
/// profile's 2018 addresses (54.229.203.190, 54.229.68.147) exist nowhere in the lab.
fn oscar_lab() -> (Lab, String) {
    let mut lab = Lab::new();
    lab.srv_addresses(&["198.51.100.10", "198.51.100.11", "198.51.100.53"]);
    lab.dns(&[
        ("gk.sensorist.com", "198.51.100.10"),
        ("gk.sensorist.net", "198.51.100.11"),
    ]);
    lab.tcp(&[
        "198.51.100.10:443",
        "198.51.100.10:4321",
        "198.51.100.11:443",
        "198.51.100.11:4321",
    ]);
    let site = lab.write("site.yaml", OSCAR_SITE);
    (lab, site)
}

#[test]
fn shipped_oscar_passes_where_its_hosts_answer_and_its_2018_addresses_do_not_exist() {
    let (lab, site) = oscar_lab();
    lab.firewall(&[]);
    let (h, j) = probe(&lab, &[&site, "--device", "oscar"]);
    assert_eq!(h.code, 0, "{}", h.stdout);
    assert_eq!(j["verdict"], "pass", "{j:#}");
    assert_eq!(remedies(&h.stdout, &j), Vec::<String>::new());
    assert!(
        h.stdout.ends_with("\nPASS: everything required works\n"),
        "{}",
        h.stdout
    );
    // The volatile addresses were probed, as context: reported, not deciding.
    for port in [443, 4321] {
        let flow = format!("cloud-{port}");
        let vol: Vec<&Value> = checks(&j)
            .into_iter()
            .filter(|c| {
                c["kind"] == "target" && c["flow"] == flow.as_str() && c["volatile"] == true
            })
            .collect();
        assert_eq!(vol.len(), 2, "{j:#}");
        assert!(vol
            .iter()
            .all(|c| c["state"] != "open" && c["decisive"] == false));
        assert_eq!(one(&j, "flow", &flow, None)["verdict"], "pass");
    }
    assert!(
        h.stdout.contains("→ 54.229.203.190: ") && h.stdout.contains("[volatile address of the profile: context, not required; --strict-volatile requires it]"),
        "{}",
        h.stdout
    );
    eprintln!("probe running time, oscar (all open): {:?}", h.took);

    // --strict-volatile: the 2018 addresses are required, and they do not exist.
    let (h, j) = probe(&lab, &[&site, "--device", "oscar", "--strict-volatile"]);
    assert_eq!(h.code, 1, "{}", h.stdout);
    assert_eq!(j["verdict"], "fail");
    let alt = one(&j, "alternative", "cloud", None);
    assert_eq!(alt["state"], "host-unreachable", "{alt:#}");
    assert_eq!(
        remedies(&h.stdout, &j),
        ["allow TCP 443 and 4321 from 10.20.0.33 to 54.229.203.190 and 54.229.68.147 — Oscar TempLog gateway, group `cloud`"]
    );
    let says = "cloud: no alternative reaches 54.229.203.190 and 54.229.68.147 (cloud-443 and cloud-4321); gk.sensorist.com by cloud-443 and cloud-4321, gk.sensorist.net by cloud-443 and cloud-4321";
    assert_eq!(alt["detail"], says);
    assert!(h.stdout.contains(says), "{}", h.stdout);
    eprintln!(
        "probe running time, oscar (--strict-volatile): {:?}",
        h.took
    );
}

#[test]
fn alternatives_are_judged_per_host_and_remedies_name_exact_pairs() {
    let (lab, site) = oscar_lab();
    // 443 open to one host only, 4321 to the other only: each host answers on one
    // alternative, so the gateway connects (issue 11, case 1).
    lab.firewall(&[
        "ip daddr 198.51.100.10 tcp dport 4321 drop",
        "ip daddr 198.51.100.11 tcp dport 443 drop",
    ]);
    let (h, j) = probe(&lab, &[&site, "--device", "oscar"]);
    assert_eq!(h.code, 0, "{}", h.stdout);
    assert_eq!(j["verdict"], "warn");
    let alt = one(&j, "alternative", "cloud", None);
    assert_eq!(
        (alt["state"].as_str(), alt["verdict"].as_str()),
        (Some("partial"), Some("warn"))
    );
    let says = "cloud: every host of cloud-443 and cloud-4321 answers on at least one alternative — gk.sensorist.com by cloud-443, gk.sensorist.net by cloud-4321; cloud-443 and cloud-4321 do not work everywhere (one alternative per host is enough; the vendor may prefer all)";
    assert!(
        alt["detail"].as_str().is_some_and(|d| d.starts_with(says)),
        "{alt:#}"
    );
    assert!(h.stdout.contains(says), "{}", h.stdout);
    // Exactly the two blocked pairs, not both ports × both hosts; a group is a group.
    assert_eq!(
        remedies(&h.stdout, &j),
        ["allow TCP 4321 from 10.20.0.33 to gk.sensorist.com and TCP 443 to gk.sensorist.net — Oscar TempLog gateway, group `cloud`"]
    );
    assert!(h
        .stdout
        .ends_with("\nWARN: everything required works, with warnings\n"));

    // gk.sensorist.net answers on neither port: that host is unreachable, exit 1, and the
    // remedy names only its pairs.
    lab.firewall(&["ip daddr 198.51.100.11 tcp dport { 443, 4321 } drop"]);
    let (h, j) = probe(&lab, &[&site, "--device", "oscar"]);
    assert_eq!(h.code, 1, "{}", h.stdout);
    assert_eq!(j["verdict"], "fail");
    let alt = one(&j, "alternative", "cloud", None);
    assert_eq!(alt["state"], "host-unreachable");
    let says = "cloud: no alternative reaches gk.sensorist.net (cloud-443 and cloud-4321); gk.sensorist.com by cloud-443 and cloud-4321";
    assert_eq!(alt["detail"], says);
    assert!(h.stdout.contains(says), "{}", h.stdout);
    assert_eq!(
        remedies(&h.stdout, &j),
        ["allow TCP 443 and 4321 from 10.20.0.33 to gk.sensorist.net — Oscar TempLog gateway, group `cloud`"]
    );
    assert!(h
        .stdout
        .ends_with("\nFAIL: a required flow does not work\n"));
}

#[test]
fn a_routers_reject_is_the_path_not_the_peer() {
    let (lab, site) = oscar_lab();
    // The router rejects 4321 to .11 with an ICMP port unreachable (from 10.20.0.1) and to .10
    // with a TCP reset (TTL 64: one hop nearer than the cloud's SYN-ACKs on 443, TTL 63).
    lab.firewall(&[
        "ip daddr 198.51.100.11 tcp dport 4321 reject",
        "ip daddr 198.51.100.10 tcp dport 4321 reject with tcp reset",
    ]);
    let (h, j) = probe(&lab, &[&site, "--device", "oscar"]);
    assert_eq!(h.code, 0, "{}", h.stdout);
    let icmp = checks(&j)
        .into_iter()
        .find(|c| c["kind"] == "target" && c["address"] == "198.51.100.11" && c["port"] == 4321)
        .expect("the .11 4321 target");
    assert_eq!(icmp["state"], "rejected", "{icmp:#}");
    let says = "a device on the path (10.20.0.1) rejected the flow (ICMP port unreachable from 10.20.0.1, not from the target): a firewall blocks it (confidence: high)";
    assert!(
        icmp["detail"].as_str().is_some_and(|d| d.contains(says)),
        "{icmp:#}"
    );
    assert!(h.stdout.contains(says), "{}", h.stdout);
    let rst = checks(&j)
        .into_iter()
        .find(|c| c["kind"] == "target" && c["address"] == "198.51.100.10" && c["port"] == 4321)
        .expect("the .10 4321 target");
    assert_eq!(rst["state"], "rejected", "{rst:#}");
    let says = "a TCP reset with TTL 64, but the target's SYN-ACK on port 443 came with TTL 63: a device on the path likely sent it, so a firewall rejects the flow (confidence: medium)";
    assert!(
        rst["detail"].as_str().is_some_and(|d| d.contains(says)),
        "{rst:#}"
    );
    assert!(h.stdout.contains(says), "{}", h.stdout);
    // A firewall block, so "allow", never "is the service running there".
    assert_eq!(
        remedies(&h.stdout, &j),
        ["allow TCP 4321 from 10.20.0.33 to gk.sensorist.com and gk.sensorist.net — Oscar TempLog gateway, group `cloud`"]
    );
    assert!(!h.stdout.contains("is the service running"));
}

const DTLS_PROFILE: &str = "portolan: 1
id: coaps-lab
vendor: Lab
product: CoAPs lab device
sources:
  - id: rfc7252
    title: \"RFC 7252: The Constrained Application Protocol (CoAP)\"
    url: https://www.rfc-editor.org/rfc/rfc7252
endpoints:
  - id: dm
    hosts: [dm.lab.test]
  - id: dm2
    hosts: [dm2.lab.test]
  - id: api
    hosts: [api.lab.test]
flows:
  - id: coaps
    from: device
    to: dm
    initiation: device
    protocol: udp
    ports: 5684
    app: CoAP/bootstrap
    tls:
      expected_issuer: \"CN = Lab Device CA\"
    source: {doc: rfc7252, ref: \"section 6.2 (coaps: DTLS over UDP, port 5684)\"}
  - id: coaps-2
    from: device
    to: dm2
    initiation: device
    protocol: udp
    ports: 5684
    app: CoAPs
    tls:
      expected_issuer: \"CN = Lab Device CA\"
    source: {doc: rfc7252, ref: \"section 6.2\"}
  - id: api-pinned
    from: device
    to: api
    initiation: device
    protocol: tcp
    ports: 443
    tls:
      expected_issuer: \"CN = Lab Vendor CA\"
    source: {doc: rfc7252, ref: \"lab\"}
  - id: api-other
    from: device
    to: api
    initiation: device
    protocol: tcp
    ports: 8443
    tls:
      inspection: forbidden
    source: {doc: rfc7252, ref: \"lab\"}
listens: none
";

#[test]
fn coaps_gets_a_dtls_hello_and_an_intercepting_issuer_is_flagged_on_every_flow_to_it() {
    let mut lab = Lab::new();
    lab.srv_addresses(&[
        "198.51.100.20",
        "198.51.100.21",
        "198.51.100.30",
        "198.51.100.53",
    ]);
    lab.dns(&[
        ("dm.lab.test", "198.51.100.20"),
        ("dm2.lab.test", "198.51.100.21"),
        ("api.lab.test", "198.51.100.30"),
    ]);
    // openssl s_server serves one DTLS client after the cookie exchange, and the integrity
    // stage gets that far: a fresh pair of servers for each run.
    let dm = lab.cert("Lab Device CA", "dm.lab.test");
    // dm2's DTLS is answered by an inspecting proxy's certificate.
    let dm2 = lab.cert("Inspection CA", "dm2.lab.test");
    let mut dtls: Vec<Child> = Vec::new();
    // A TLS-inspecting proxy answers for api.lab.test on both ports.
    let (c, k) = lab.cert("Inspection CA", "api.lab.test");
    lab.openssl("198.51.100.30:443", &c, &k, false);
    lab.openssl("198.51.100.30:8443", &c, &k, false);
    let profile = lab.write("coaps.yaml", DTLS_PROFILE);
    let lab = lab;
    let mut fresh = || {
        for mut c in dtls.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
        dtls.push(lab.openssl_server("198.51.100.20:5684", &dm.0, &dm.1, true));
        dtls.push(lab.openssl_server("198.51.100.21:5684", &dm2.0, &dm2.1, true));
    };
    let args = [
        "--profile",
        profile.as_str(),
        "--source",
        "10.20.0.33",
        "--resolver",
        "198.51.100.53",
    ];

    lab.firewall(&[]);
    let (h, j) = probe_with(&lab, &args, &mut fresh);
    let dtls = one(&j, "target", "coaps", Some(5684));
    assert_eq!(dtls["state"], "open", "{dtls:#}");
    assert!(
        dtls["detail"]
            .as_str()
            .is_some_and(|d| d.ends_with("answered a DTLS 1.2 ClientHello")),
        "{dtls:#}"
    );
    assert_eq!(one(&j, "flow", "coaps", None)["verdict"], "pass");
    // The DTLS handshake went as far as the server's certificate: its issuer is checked.
    let ok = one(&j, "tls", "coaps", Some(5684));
    assert_eq!(
        (ok["state"].as_str(), ok["protocol"]["name"].as_str()),
        (Some("untampered"), Some("udp")),
        "{ok:#}"
    );
    let bad = one(&j, "tls", "coaps-2", Some(5684));
    assert_eq!(bad["state"], "intercepted", "{bad:#}");
    assert!(h.stdout.contains("coaps-2 → dm2.lab.test:5684: TLS interception — the certificate is issued by `CN = Inspection CA`, not `CN = Lab Device CA`"), "{}", h.stdout);
    // The pinned flow sees the inspection CA; the other flow to the same host is flagged too,
    // though the profile states no issuer for it.
    let pinned = one(&j, "tls", "api-pinned", Some(443));
    assert_eq!(pinned["state"], "intercepted");
    let other = one(&j, "tls", "api-other", Some(8443));
    assert_eq!(
        (other["state"].as_str(), other["verdict"].as_str()),
        (Some("intercepted"), Some("fail")),
        "{other:#}"
    );
    assert!(h.stdout.contains("api-other → api.lab.test:8443: TLS interception — issuer `CN = Inspection CA` is the one that intercepts another flow to api.lab.test"), "{}", h.stdout);
    assert_eq!(h.code, 1);
    assert_eq!(
        remedies(&h.stdout, &j),
        [
            "exempt UDP 5684 from 10.20.0.33 to dm2.lab.test from TLS inspection (untampered traffic) — CoAPs lab device, flow `coaps-2`",
            "exempt TCP 443 from 10.20.0.33 to api.lab.test from TLS inspection (untampered traffic) — CoAPs lab device, flow `api-pinned`",
            "exempt TCP 8443 from 10.20.0.33 to api.lab.test from TLS inspection (untampered traffic) — CoAPs lab device, flow `api-other`",
        ]
    );

    // DTLS dropped on the way: no answer to the ClientHello, "allow UDP 5684".
    lab.firewall(&["udp dport 5684 drop"]);
    let (h, j) = probe_with(&lab, &args, &mut fresh);
    let dtls = one(&j, "target", "coaps", Some(5684));
    assert_eq!(dtls["state"], "open|filtered", "{dtls:#}");
    assert!(dtls["detail"]
        .as_str()
        .is_some_and(|d| d.contains("no answer to a DTLS 1.2 ClientHello")));
    assert_eq!(h.code, 1);
    assert!(remedies(&h.stdout, &j).contains(
        &"allow UDP 5684 from 10.20.0.33 to dm.lab.test — CoAPs lab device, flow `coaps`"
            .to_string()
    ));
}

#[test]
fn names_go_through_the_sites_resolver_with_a_warning_when_the_machines_differs() {
    let (lab, site) = oscar_lab();
    lab.firewall(&[]);
    // This machine (the device namespace) asks 198.51.100.99, where nothing answers; the site
    // says 198.51.100.53.
    lab.machine_resolver("198.51.100.99");
    let (h, j) = probe(&lab, &[&site, "--device", "oscar"]);
    assert_eq!(h.code, 0, "{}", h.stdout);
    assert_eq!(j["resolver"], "198.51.100.53:53");
    assert_eq!(j["verdict"], "warn");
    let names = j["stages"][1].clone();
    assert_eq!(
        (names["stage"].as_str(), names["verdict"].as_str()),
        (Some("names"), Some("pass"))
    );
    let warn = checks(&j)
        .into_iter()
        .find(|c| c["kind"] == "resolver" && c["state"] == "machine-differs")
        .expect("a warning about this machine's resolver");
    assert_eq!(warn["verdict"], "warn");
    let says = "this machine's resolver 198.51.100.99:53 (resolv.conf) is not the site's (198.51.100.53): names are resolved through the site's, as the device will";
    assert_eq!(warn["detail"], says);
    assert!(h.stdout.contains(says), "{}", h.stdout);
    assert!(h
        .stdout
        .contains("name server 198.51.100.53:53 (the site's, from services.dns)"));
    assert_eq!(
        remedies(&h.stdout, &j),
        ["point this machine at the site's resolver 198.51.100.53 (or probe from the device's network, whose DHCP hands it out) — to probe through another one, give --resolver"]
    );
    assert_eq!(one(&j, "alternative", "cloud", None)["state"], "all");
}
