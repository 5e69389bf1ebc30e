//! Flows through the site's HTTP(S) proxy (issue 13, group 4): a device that uses the proxy
//! gets, for each flow its profile says can use one, the leg to the proxy (TCP to its port)
//! and never the direct path; flows that cannot use a proxy keep their direct rule. The
//! profile is `test-data/profiles/good/proxy-lab.yaml`; every expectation below is read off
//! that file and the site text by hand.

use std::collections::BTreeSet;
use std::path::Path;

use portolan_model::compile::site_text;
use portolan_model::ir::Policy;
use portolan_testkit::Profiles;

fn profiles() -> Profiles {
    Profiles::none()
        .files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-data/profiles/good"))
}

fn site(proxy: &str, device: &str) -> String {
    format!(
        "portolan: 1
site: px
zones:
  - id: field
    interface: lan0
    networks: [10.20.0.0/24]
  - id: dmz
    interface: dmz0
    networks: [10.99.0.0/24]
services:
  dns: firewall
{proxy}devices:
  - id: gw
    profile: proxy-lab.yaml
    zone: field
    addresses: [10.20.0.5]
{device}"
    )
}

fn compile(text: &str) -> Result<Policy, Vec<String>> {
    site_text("site.yaml", text, &profiles())
        .map(|l| l.value)
        .map_err(|d| {
            d.iter()
                .filter(|d| d.is_error())
                .map(|d| format!("{} {}:{}", d.code, d.line, d.column))
                .collect()
        })
}

/// (flow, ports, peers) of every rule: peers as the firewall, prefixes and names.
fn rules(p: &Policy) -> BTreeSet<(String, String, String)> {
    p.rules
        .iter()
        .map(|r| {
            let ports: Vec<String> = r.ports.iter().map(|x| x.to_string()).collect();
            let mut peers: Vec<String> = r.peers.prefixes.iter().map(|n| n.to_string()).collect();
            peers.extend(r.peers.names.iter().cloned());
            if r.peers.firewall {
                peers.push("firewall".into());
            }
            (r.flow.clone(), ports.join(","), peers.join(" "))
        })
        .collect()
}

fn r(flow: &str, ports: &str, peers: &str) -> (String, String, String) {
    (flow.into(), ports.into(), peers.into())
}

/// The rows of proxy-lab.yaml that keep their direct rule in every case: DNS to the firewall,
/// MQTT (`http: unsupported`) and syslog (no `proxy:` block: nothing says it can use one).
fn direct_always() -> Vec<(String, String, String)> {
    vec![
        r("dns", "53", "firewall"),
        r("mqtt", "8883", "198.51.100.22/32 mqtt.example.com"),
        r("syslog", "6514", "198.51.100.23/32"),
    ]
}

#[test]
fn without_the_proxy_every_flow_goes_direct() {
    let p = compile(&site("", "")).expect("compiles");
    let mut want: BTreeSet<_> = direct_always().into_iter().collect();
    want.insert(r("api", "443", "198.51.100.20/32 api.example.com"));
    want.insert(r("api-80", "80", "198.51.100.20/32 api.example.com"));
    want.insert(r("firmware", "80", "198.51.100.21/32 updates.example.com"));
    assert_eq!(rules(&p), want);
    assert!(p.rules.iter().all(|r| r.via_proxy.is_none()));
}

#[test]
fn a_device_using_the_proxy_gets_the_leg_to_it_and_never_the_direct_path() {
    let p = compile(&site(
        "  proxy: {at: [10.99.0.8], port: 3128}\n",
        "    proxy: true\n",
    ))
    .expect("compiles");
    let mut want: BTreeSet<_> = direct_always().into_iter().collect();
    // api, api-80 and firmware say `http: supported`: TCP 3128 to the proxy, nothing else.
    for f in ["api", "api-80", "firmware"] {
        want.insert(r(f, "3128", "10.99.0.8/32"));
    }
    assert_eq!(rules(&p), want);
    // The leg carries what the proxy must reach: the flow's own peers and ports, and
    // `connect_only` as the profile writes it (api and api-80 yes, firmware no).
    let leg = |f: &str| {
        p.rules
            .iter()
            .find(|r| r.flow == f)
            .and_then(|r| r.via_proxy.clone())
            .expect("a leg")
    };
    assert_eq!(leg("api").peers.names, ["api.example.com"]);
    assert_eq!(leg("api").ports[0].to_string(), "443");
    assert!(leg("api").connect_only && leg("api-80").connect_only);
    assert!(!leg("firmware").connect_only);
    assert_eq!(leg("firmware").peers.names, ["updates.example.com"]);
}

#[test]
fn a_proxy_on_the_firewall_is_a_local_service() {
    let p = compile(&site(
        "  proxy: {at: firewall, port: 8080}\n",
        "    proxy: true\n",
    ))
    .expect("compiles");
    assert!(rules(&p).contains(&r("api", "8080", "firewall")));
}

#[test]
fn an_authenticating_proxy_keeps_the_flows_that_cannot_authenticate_direct() {
    // api-80 says `authenticated: unsupported`: it cannot use a proxy that asks for
    // credentials, so it keeps its direct rule; api and firmware say nothing against it.
    let p = compile(&site(
        "  proxy: {at: [10.99.0.8], port: 3128, authenticated: true}\n",
        "    proxy: true\n",
    ))
    .expect("compiles");
    let got = rules(&p);
    assert!(got.contains(&r("api-80", "80", "198.51.100.20/32 api.example.com")));
    assert!(got.contains(&r("api", "3128", "10.99.0.8/32")));
    assert!(got.contains(&r("firmware", "3128", "10.99.0.8/32")));
    assert!(!got.contains(&r("api-80", "3128", "10.99.0.8/32")));
}

#[test]
fn a_device_using_a_proxy_the_site_does_not_name_is_refused() {
    // `    proxy: true` is line 17 (`devices:` is line 12); `true` is at column 12.
    let e = compile(&site("", "    proxy: true\n")).expect_err("refused");
    assert_eq!(e, ["unbound-service 17:12"]);
}

#[test]
fn the_proxy_needs_an_address_and_a_port() {
    // Line 12 is `  proxy: {at: [], port: 70000}`: `[]` at column 15, `70000` at column 25.
    let e = compile(&site("  proxy: {at: [], port: 70000}\n", "")).expect_err("refused");
    assert_eq!(e, ["invalid-service 12:15", "invalid-port 12:25"]);
}

/// Least privilege: a proxy given as a network would open its port on every address in it,
/// so only host addresses are accepted.
#[test]
fn the_proxy_is_a_host_not_a_network() {
    // Line 12 is `  proxy: {at: [10.99.0.0/24], port: 3128}`: the list at column 15.
    let e = compile(&site("  proxy: {at: [10.99.0.0/24], port: 3128}\n", "")).expect_err("refused");
    assert_eq!(e, ["invalid-service 12:15"]);
    let p = compile(&site(
        "  proxy: {at: [10.99.0.8/32], port: 3128}\n",
        "    proxy: true\n",
    ))
    .expect("a /32 is one host");
    assert!(rules(&p).contains(&r("api", "3128", "10.99.0.8/32")));
}
