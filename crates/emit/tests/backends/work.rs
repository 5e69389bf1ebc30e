//! Planning the nftables and iptables rulesets does work linear in the devices, counted, not
//! timed (issue #21). Rules that grow with the devices were deduplicated by a scan of their
//! chain per rule: the DHCP owners' rules (one per group with MACs) in both, and in iptables
//! the class drop chains (a rule per group): 100,000 one-device groups from an inventory took
//! 6.5 s to compile for nftables instead of 2, and 29 s for iptables (`bench/growth.sh`). The
//! rules each scan reads are counted (`portolan_model::work`) on generated sites of two sizes.

use portolan_emit::{emit, Options, Target};
use portolan_model::compile::site_text;
use portolan_model::work;
use portolan_testkit::Profiles;

/// A site of `n` one-device groups of the catalog's Oscar TempLog gateway (a DHCP client),
/// each with a MAC of its own, on one interface served by the firewall's DHCP.
fn site(n: usize) -> String {
    let mut s = String::from(
        "portolan: 1\nsite: work\nzones:\n  - id: field\n    interface: lan0\n    networks: [10.0.0.0/8]\n  - id: wan\n    interface: wan0\nservices:\n  dns: firewall\n  dhcp: firewall\n  ntp: [192.0.2.123]\ndevices:\n",
    );
    for d in 0..n {
        s.push_str(&format!(
            "  - id: g{d}\n    profile: oscar-templog-gateway\n    zone: field\n    addresses: [10.{}.{}.{}]\n    mac: \"02:00:{:02x}:{:02x}:{:02x}:01\"\n",
            (d >> 16) & 255,
            (d >> 8) & 255,
            d & 255,
            (d >> 16) & 255,
            (d >> 8) & 255,
            d & 255
        ));
    }
    s
}

/// Plans the `target` ruleset of a site of `n` devices: (items read by the plan, the ruleset).
fn count_for(target: Target, n: usize) -> (u64, String) {
    let profiles = Profiles::catalog();
    let policy = match site_text("work.yaml", &site(n), &profiles) {
        Ok(l) => l.value,
        Err(d) => panic!("the generated site is refused: {d:?}"),
    };
    work::reset();
    let text = emit(target, &policy, &Options::default()).expect("emits");
    (work::visits(), text)
}

/// Plans `target` for 500 and 2,000 groups: each ruleset holds one owner rule per group (the
/// lines `is_owner` picks), and the work grows at most as the devices do.
fn assert_linear(target: Target, is_owner: impl Fn(&str) -> bool) {
    let (small, large) = (500usize, 2_000usize);
    let (w1, t1) = count_for(target, small);
    let (w4, t4) = count_for(target, large);
    let owners = |t: &str| t.lines().filter(|l| is_owner(l)).count();
    assert_eq!((owners(&t1), owners(&t4)), (small, large));
    assert!(w1 > 0, "nothing was counted: the counter is not reached");
    // Four times the devices, at most four times the work (the per-class chains do not grow
    // with the devices at all). The scan read about n²/2 rules: 8 times more here, not 4.
    assert!(
        w4 <= 4 * w1,
        "{target:?} planning work grew faster than the devices: {w1} for {small}, {w4} for {large}"
    );
}

#[test]
fn planning_reads_no_more_per_device_as_the_site_grows() {
    // Each group's own-address DHCP broadcasts are admitted from its MAC and address (RFC
    // 2131 section 4.4.5), one rule per group: the chain the scan used to read grows.
    assert_linear(Target::Nftables, |l| {
        l.contains("ether saddr 02:00:") && l.contains("ip saddr 10.")
    });
}

#[test]
fn iptables_planning_reads_no_more_per_device_as_the_site_grows() {
    // One owner rule per group (its MAC and address), in `PORTOLAN-INPUT`.
    assert_linear(Target::Iptables, |l| {
        l.contains("--mac-source 02:00:") && l.contains("-s 10.")
    });
}
