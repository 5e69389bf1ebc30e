//! The diagram's layout on small sites whose expected drawing is worked out by hand.

use portolan_report::{layout, render, Overlays};
use portolan_testkit::Profiles;

/// Two WCC Lite gateways, `a` listed first; `a` sends telemetry to 198.51.100.2, `b` to
/// 198.51.100.1.
fn site(groups: usize) -> String {
    let mut s = String::from(
        "portolan: 1\nsite: t\nzones:\n  - id: field\n    interface: lan0\n    networks: [10.20.0.0/24]\n  - id: wan\n    interface: wan0\ndevices:\n",
    );
    for i in 0..groups {
        let peer = if i == 0 { 2 } else { 1 };
        s.push_str(&format!(
            "  - id: {}\n    profile: elseta-wcc-lite\n    zone: field\n    addresses: [10.20.0.{}]\n    features: [telemetry]\n    params:\n      telemetry_port: 5140\n    bind:\n      telemetry-server: [198.51.100.{peer}]\n",
            if i == 0 { "a".to_string() } else { format!("b{i}") },
            10 + i
        ));
    }
    s
}

#[test]
fn peers_follow_the_groups_they_talk_to() {
    let policy = Profiles::catalog().compile("t.yaml", &site(2));
    let r = render(&policy, &Overlays::default()).expect("render");
    let page = r.html;
    // By name 198.51.100.1 would come first; by barycenter it sits beside b, below a's peer.
    let p2 = page.find(">198.51.100.2<").expect("a's peer drawn");
    let p1 = page.find(">198.51.100.1<").expect("b's peer drawn");
    assert!(p2 < p1, "a's peer is placed before b's");
    assert!(!r.summary.collapsed);
    // One edge per group and peer, each a device-initiated UDP flow: an arrowhead at the peer.
    assert_eq!(page.matches("marker-end=\"url(#arrow)\"").count(), 2);
    assert_eq!(page.matches("marker-start=").count(), 0);
}

#[test]
fn a_big_site_is_drawn_by_profile() {
    let n = layout::COLLAPSE_AT + 1;
    let policy = Profiles::catalog().compile("t.yaml", &site(n));
    let r = render(&policy, &Overlays::default()).expect("render");
    assert!(r.summary.collapsed);
    assert_eq!(r.summary.groups, n);
    // One node for the zone and profile, with its count; every group keeps its table.
    assert!(r.html.contains(&format!(">{n} groups of this profile<")));
    assert_eq!(r.html.matches("<section class=\"group\"").count(), n);
}
