//! The enforce policy's text, without a kernel: a site whose DNS is elsewhere is told its DNS
//! flow is overridden, and every class's device-initiated chain starts with the DNS bypass
//! drop (expected lines written by hand from ARCHITECTURE.md's layout).

use portolan_emit::{emit, Options, Target};
use portolan_testkit::profiles::Profiles;

const SITE: &str = r#"portolan: 1
site: enf-dns-elsewhere
zones:
  - id: lan
    interface: lan0
    networks: [10.60.0.0/24]
services:
  dns: [10.60.0.53]
  dhcp: firewall
devices:
  - id: gw
    profile: oscar-templog-gateway
    zone: lan
    addresses: [10.60.0.10]
"#;

#[test]
fn dns_elsewhere_is_overridden_and_said_so() {
    let policy = Profiles::catalog().compile("enf.yaml", SITE);
    let opts = Options {
        enforce: true,
        ..Options::default()
    };
    let text = emit(Target::Nftables, &policy, &opts).expect("emits");
    assert!(text.contains(
        "# Enforce mode drops oscar-templog-gateway/dns of gw: DNS goes through the firewall's forwarder (give the site `services: {dns: firewall}`)."
    ), "{text}");
    let out = text
        .split("\tchain k_gw_out {\n")
        .nth(1)
        .expect("the class's out chain");
    assert!(
        out.starts_with("\t\tmeta l4proto { tcp, udp } th dport { 53, 853 } goto dns_bypass\n"),
        "{out}"
    );
    // The names of oscar's cloud flow match a pair set, never a per-name set.
    assert!(
        text.contains("ip saddr . ip daddr @e_gw_cloud-443_"),
        "{text}"
    );
    assert!(!text.contains("@gk_sensorist_com"), "{text}");
    // Without enforce, nothing of it.
    let plain = emit(Target::Nftables, &policy, &Options::default()).expect("emits");
    assert!(!plain.contains("dns_bypass") && !plain.contains("@e_"));
}
