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

/// The DoH block comes right after the DNS bypass, before every flow; its sets hold the
/// shipped public resolvers' addresses (spot-checked against the operators' pages cited in
/// `crates/emit/src/doh.rs`) and the site's own; the redirect chain exists only when asked
/// and names exactly the site's device addresses.
#[test]
fn doh_endpoints_are_blocked_first_and_redirect_is_an_option() {
    let policy = Profiles::catalog().compile("enf.yaml", SITE);
    let opts = Options {
        enforce: true,
        doh: vec!["192.0.2.253".parse().expect("ip")],
        ..Options::default()
    };
    let text = emit(Target::Nftables, &policy, &opts).expect("emits");
    let out = text
        .split("\tchain k_gw_out {\n")
        .nth(1)
        .expect("the class's out chain");
    assert!(
        out.starts_with(
            "\t\tmeta l4proto { tcp, udp } th dport { 53, 853 } goto dns_bypass\n\
             \t\tip daddr @doh4 meta l4proto { tcp, udp } th dport 443 goto doh_bypass\n\
             \t\tip6 daddr @doh6 meta l4proto { tcp, udp } th dport 443 goto doh_bypass\n"
        ),
        "{out}"
    );
    let doh4 = text
        .split("\tset doh4 {\n")
        .nth(1)
        .and_then(|s| s.split('}').next())
        .expect("set doh4");
    for a in [
        "8.8.8.8",
        "1.1.1.1",
        "9.9.9.9",
        "208.67.222.222",
        "192.0.2.253",
    ] {
        assert!(doh4.contains(a), "{a} not in {doh4}");
    }
    assert!(text.contains("\tchain doh_bypass {\n"));
    assert!(text.contains("log prefix \"portolan doh bypass: \""));
    assert!(
        !text.contains("dns_redirect"),
        "redirect without the option"
    );

    let redirect = emit(
        Target::Nftables,
        &policy,
        &Options {
            enforce: true,
            dns_redirect: true,
            ..Options::default()
        },
    )
    .expect("emits");
    let chain = redirect
        .split("\tchain dns_redirect {\n")
        .nth(1)
        .and_then(|s| s.split("\t}").next())
        .expect("the redirect chain");
    assert_eq!(
        chain,
        "\t\ttype nat hook prerouting priority dstnat; policy accept;\n\
         \t\tip saddr { 10.60.0.10/32 } fib daddr type != local meta l4proto { tcp, udp } th dport 53 limit rate 5/second burst 5 packets log prefix \"portolan dns redirect: \" level info\n\
         \t\tip saddr { 10.60.0.10/32 } fib daddr type != local meta l4proto { tcp, udp } th dport 53 counter redirect to :53\n"
    );
}
