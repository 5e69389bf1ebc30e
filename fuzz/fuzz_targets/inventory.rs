//! An inventory as a site reads it: the input is written as a CSV export (first byte even) or
//! a NetBox devices export (odd) beside a fixed site that names it, and the site is compiled
//! against the shipped catalog. A site that compiles must hold the least-privilege invariant
//! (an inventory row never makes a rule wider than its profile states) and go through every
//! back end without a panic.
#![no_main]
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portolan_emit::{emit, Options, Target};

const SITE: &str = "portolan: 1
site: fuzz-inventory
zones:
  - id: field
    interface: lan0
    networks: [10.20.0.0/16]
  - id: wan
    interface: wan0
services:
  dns: firewall
  dhcp: firewall
inventory:
  - csv: devices.csv
  - netbox: {devices: devices.json, zone: field}
";

/// A folder of this process's own, holding the site and its two inventories.
fn folder() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d =
            std::env::temp_dir().join(format!("portolan-fuzz-inventory-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("a scratch folder");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let dir = folder();
    let (this, other) = if kind % 2 == 0 {
        ("devices.csv", ("devices.json", &b"{\"results\": []}"[..]))
    } else {
        (
            "devices.json",
            ("devices.csv", &b"name,address,profile,zone\n"[..]),
        )
    };
    std::fs::write(dir.join(this), rest).expect("write the inventory");
    std::fs::write(dir.join(other.0), other.1).expect("write the other inventory");
    let site = dir.join("site.yaml");
    let Ok(loaded) = portolan_model::compile::site_text(
        &site.display().to_string(),
        SITE,
        portolan_fuzz::catalog(),
    ) else {
        return;
    };
    portolan_fuzz::assert_rules_within_profiles(&loaded.value);
    for t in [Target::Nftables, Target::Iptables, Target::Dnsmasq] {
        let _ = emit(t, &loaded.value, &Options::default());
    }
});
