//! The example site through every back end, as reviewed snapshots (`cargo insta review`).

use portolan_emit::{emit, Options, Target};

use crate::common::{compile_file, root};

fn example(target: Target) -> String {
    let policy = compile_file(&root().join("examples/site.yaml"));
    emit(target, &policy, &Options::default()).expect("the example site emits")
}

#[test]
fn example_site_nftables() {
    insta::assert_snapshot!("example_nftables", example(Target::Nftables));
}

#[test]
fn example_site_iptables() {
    insta::assert_snapshot!("example_iptables", example(Target::Iptables));
}

#[test]
fn example_site_dnsmasq() {
    insta::assert_snapshot!("example_dnsmasq", example(Target::Dnsmasq));
}

#[test]
fn example_site_squid() {
    insta::assert_snapshot!("example_squid", example(Target::Squid));
}

#[test]
fn example_site_openwrt() {
    insta::assert_snapshot!("example_openwrt", example(Target::Openwrt));
}

#[test]
fn outputs_are_deterministic() {
    for t in [
        Target::Nftables,
        Target::Iptables,
        Target::Dnsmasq,
        Target::Squid,
        Target::Openwrt,
    ] {
        assert_eq!(example(t), example(t), "{t:?}");
    }
}
