//! Object names: ids that differ only where a name would fold them (`gw-a`, `gw_a`, `GW-a`)
//! must still get objects of their own. `nft -f` merges a chain or set declared twice, so a
//! shared name would hand one group another's flows.

use std::collections::BTreeMap;
use std::path::Path;

use portolan_emit::{emit, Options, Target};
use portolan_model::compile::site_text;

use crate::common::{kernel, Netns, Profiles, Steps};

const SITE: &str = r#"portolan: 1
site: folding
zones:
  - id: lan
    interface: lan0
    networks: [10.60.0.0/24]
services:
  dns: firewall
  dhcp: firewall
  ntp: firewall
devices:
  - id: gw-a
    profile: oscar-templog-gateway
    zone: lan
    addresses: [10.60.0.10]
  - id: gw_a
    profile: thingpark-lrr
    mode: basics-station
    zone: lan
    addresses: [10.60.0.11]
    bind:
      slrc: [198.51.100.10]
      proxy-http: [203.0.113.80]
  - id: GW-a
    profile: thingpark-lrr
    mode: ipsec
    version: "2.9"
    zone: lan
    addresses: [10.60.0.12]
    bind:
      slrc: [198.51.100.11]
      support: [198.51.100.22]
"#;

fn output(target: Target) -> String {
    let profiles = Profiles::catalog().files(Path::new("."));
    let policy = site_text("folding.yaml", SITE, &profiles)
        .expect("the site compiles")
        .value;
    assert_eq!(policy.groups.len(), 3);
    emit(target, &policy, &Options::default()).expect("emits")
}

#[test]
fn folding_ids_get_their_own_nftables_objects() {
    let text = output(Target::Nftables);
    // Every chain and set is declared once empty and once filled (the DNS-filled sets once).
    let mut decls: BTreeMap<String, usize> = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        for kw in ["chain ", "set ", "map "] {
            if let Some(rest) = line.strip_prefix(kw) {
                if let Some(name) = rest.strip_suffix(" {") {
                    *decls.entry(format!("{kw}{name}")).or_default() += 1;
                }
            }
        }
    }
    for (name, n) in &decls {
        assert!(*n <= 2, "{name} is declared {n} times:\n{text}");
    }
    // Three groups, three drop chains, three classes of three chains each.
    let drops = decls
        .keys()
        .filter(|n| n.starts_with("chain drop_"))
        .count();
    let classes = decls
        .keys()
        .filter(|n| n.starts_with("chain k_") && n.ends_with("_out"))
        .count();
    assert_eq!((drops, classes), (3, 3), "{decls:?}");
    let _turn = kernel::turn();
    Netns::new("emit").nft("folding ids", &text, true);
}

#[test]
fn folding_ids_get_their_own_ipsets() {
    let text = output(Target::Iptables);
    let mut sets: BTreeMap<&str, usize> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("create ") {
            let name = rest.split_whitespace().next().unwrap_or_default();
            *sets.entry(name).or_default() += 1;
        }
    }
    for (name, n) in &sets {
        assert_eq!(*n, 1, "{name} is created {n} times");
    }
    let dispatch = sets.keys().filter(|n| n.starts_with("d4_")).count();
    assert_eq!(dispatch, 3, "{sets:?}");
}
