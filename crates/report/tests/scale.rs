//! The page grows with the groups, not with their square (issue #21): every group of a profile
//! with DHCP was shown every other group's DHCP rule and the set of all their MACs, so a site
//! of 10,000 such groups made a 4.4 GB page. Sizes are counted, not times.

use portolan_report::{render, Overlays};
use portolan_testkit::Profiles;

/// `n` one-device groups of the catalog's Oscar TempLog gateway (a DHCP client), each with a
/// MAC of its own, on one interface served by the firewall's DHCP.
fn site(n: usize) -> String {
    let mut s = String::from(
        "portolan: 1\nsite: scale\nzones:\n  - id: field\n    interface: lan0\n    networks: [10.0.0.0/8]\n  - id: wan\n    interface: wan0\nservices:\n  dns: firewall\n  dhcp: firewall\n  ntp: [192.0.2.123]\ndevices:\n",
    );
    for d in 0..n {
        s.push_str(&format!(
            "  - id: g{d}\n    profile: oscar-templog-gateway\n    zone: field\n    addresses: [10.0.{}.{}]\n    mac: \"02:00:5e:00:{:02x}:{:02x}\"\n",
            d >> 8,
            d & 255,
            d >> 8,
            d & 255
        ));
    }
    s
}

fn page(n: usize) -> String {
    let policy = Profiles::catalog().compile("scale.yaml", &site(n));
    render(&policy, &Overlays::default()).expect("render").html
}

#[test]
fn the_page_grows_with_the_groups_not_their_square() {
    let (small, large) = (40usize, 160usize);
    let (p1, p4) = (page(small), page(large));
    // Each group is shown its own MAC in the DHCP discovery rule, not the others'.
    let g7 = p4
        .split("id=\"group-g7\"")
        .nth(1)
        .and_then(|s| s.split("<section").next())
        .expect("group g7's section");
    assert!(g7.contains("02:00:5e:00:00:07"), "g7's own MAC is shown");
    assert!(
        !g7.contains("02:00:5e:00:00:08"),
        "g8's MAC is not g7's business"
    );
    assert!(
        g7.contains(&format!("… {} more", large - 1)),
        "the others are counted"
    );
    // Four times the groups, at most four times the page (the head, styles and diagram are
    // shared; the diagram collapses large sites).
    assert!(
        p4.len() <= 4 * p1.len(),
        "the page grew faster than the groups: {} bytes for {small}, {} for {large}",
        p1.len(),
        p4.len()
    );
}
