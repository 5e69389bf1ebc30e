//! Audit of a site whose device uses its proxy (issue 13, item 2 of "every stage"): the
//! device's connection to the proxy conforms and is attributed to every proxied flow of the
//! profile (`test-data/profiles/good/proxy-lab.yaml`: `api`, `api-80` and `firmware` say
//! `http: supported`), so none of them is reported unused; a direct connection to a proxied
//! flow's peer is a violation (the site sends it through the proxy), and a flow that cannot
//! use a proxy (`mqtt`) conforms on its direct path.

use portolan_audit::decode::linktype;
use portolan_audit::{audit, Options, Status};

use crate::scenario::*;

const SITE: &str = "portolan: 1
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
  proxy: {at: [10.99.0.8], port: 3128}
devices:
  - id: gw
    profile: proxy-lab
    zone: field
    addresses: [10.20.0.5]
    proxy: true
";

#[test]
fn a_connection_to_the_proxy_is_the_proxied_flows_and_the_direct_path_a_violation() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../test-data/profiles/good/proxy-lab.yaml"),
    )
    .expect("fixture");
    let policy = compile(SITE, vec![profile(&text)]);
    let mut t = Traffic::default();
    t.tcp(ms(0), ("10.20.0.5", 40000), ("10.99.0.8", 3128));
    t.tcp(ms(10), ("10.20.0.5", 40001), ("198.51.100.20", 443));
    t.tcp(ms(20), ("10.20.0.5", 40002), ("198.51.100.22", 8883));
    let (obs, problem) = observe(pcap(&t, linktype::ETHERNET, None));
    assert_eq!(problem, None);
    let r = audit(&policy, obs, &Options::default());
    let by_port = |p: u16| {
        r.flows
            .iter()
            .find(|f| f.dport == Some(p))
            .unwrap_or_else(|| panic!("a flow to port {p}: {:?}", r.flows))
    };
    let proxy = by_port(3128);
    assert_eq!(proxy.status, Status::Conforming);
    assert_eq!(proxy.rule.as_deref(), Some("proxy-lab/api"));
    let reason = proxy.reason.as_deref().unwrap_or_default();
    for f in ["proxy-lab/api", "proxy-lab/api-80", "proxy-lab/firmware"] {
        assert!(reason.contains(f), "{reason}");
    }
    assert_eq!(by_port(443).status, Status::Violation);
    assert_eq!(by_port(8883).status, Status::Conforming);
    let g = r.groups.iter().find(|g| g.group == "gw").expect("group gw");
    // Not used: DNS (no query in the capture) and syslog; every proxied flow is used.
    assert_eq!(g.unused, ["proxy-lab/dns", "proxy-lab/syslog"]);
}
