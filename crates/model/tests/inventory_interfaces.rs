//! A multi-homed device from a CSV inventory: the `interfaces` column binds each of the
//! profile's interfaces to its addresses and zone (`it=10.1.0.5@office; ot=…@field`), as a
//! site's `interfaces:` does. Expected groups, addresses and rules are read off the CSV and the
//! profile below by hand; a malformed cell is reported at its line and column (counted by hand).

use std::path::PathBuf;

use portolan_model::compile::site_text;
use portolan_testkit::Profiles;

const PROFILE: &str = "portolan: 2
id: mh
vendor: Example
product: Two-sided gateway
sources:
  - id: doc
    title: Example vendor page
    file: example.txt
interfaces:
  - id: it
    source: {doc: doc, ref: ETH1}
  - id: ot
    source: {doc: doc, ref: ETH2}
endpoints:
  - id: cloud
    addresses: [198.51.100.30]
  - id: plc
    addresses: [192.168.10.50]
flows:
  - id: cloud-https
    from: device
    to: cloud
    initiation: device
    protocol: tcp
    ports: 443
    interface: it
    source: {doc: doc, ref: cloud}
  - id: modbus
    from: device
    to: plc
    initiation: device
    protocol: tcp
    ports: 502
    interface: ot
    source: {doc: doc, ref: PLC}
listens: none
";

const SITE: &str = "portolan: 1
site: plant
zones:
  - id: office
    interface: lan0
    networks: [10.1.0.0/24]
  - id: field
    interface: lan1
    networks: [192.168.10.0/24]
inventory:
  - csv: devices.csv
devices: []
";

fn dir(name: &str, csv: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pl-invif-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    std::fs::write(d.join("mh.yaml"), PROFILE).expect("profile");
    std::fs::write(d.join("devices.csv"), csv).expect("csv");
    std::fs::write(d.join("site.yaml"), SITE).expect("site");
    d
}

#[test]
fn the_interfaces_column_binds_each_interface() {
    let d = dir(
        "good",
        "name,address,profile,zone,interfaces\n\
         gw,,mh.yaml,,\"it=10.1.0.5@office; ot=192.168.10.5 192.168.10.6@field\"\n",
    );
    let site = d.join("site.yaml");
    let text = std::fs::read_to_string(&site).expect("site");
    let got = site_text(
        &site.display().to_string(),
        &text,
        &Profiles::none().files(&d),
    );
    std::fs::remove_dir_all(&d).expect("cleanup");
    let p = got.unwrap_or_else(|e| panic!("{e:?}")).value;
    let groups: Vec<(String, String, Vec<String>)> = p
        .groups
        .iter()
        .map(|g| {
            (
                g.id.clone(),
                g.zone.clone(),
                g.addresses.iter().map(ToString::to_string).collect(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        [
            (
                "gw.it".to_string(),
                "office".to_string(),
                vec!["10.1.0.5/32".to_string()]
            ),
            (
                "gw.ot".to_string(),
                "field".to_string(),
                vec!["192.168.10.5/32".to_string(), "192.168.10.6/32".to_string()]
            ),
        ]
    );
    let rules: Vec<(&str, &str)> = p
        .rules
        .iter()
        .map(|r| (r.group.as_str(), r.flow.as_str()))
        .collect();
    assert_eq!(rules, [("gw.it", "cloud-https"), ("gw.ot", "modbus")]);
}

#[test]
fn a_cell_without_a_zone_is_reported_where_it_is() {
    // Row 2: `gw,,mh.yaml,,"it=10.1.0.5; ot=192.168.10.5@field"`; the cell's text starts at
    // column 15 (after the quote), its first item `it=10.1.0.5` there.
    let d = dir(
        "bad",
        "name,address,profile,zone,interfaces\n\
         gw,,mh.yaml,,\"it=10.1.0.5; ot=192.168.10.5@field\"\n",
    );
    let site = d.join("site.yaml");
    let text = std::fs::read_to_string(&site).expect("site");
    let got = site_text(
        &site.display().to_string(),
        &text,
        &Profiles::none().files(&d),
    );
    std::fs::remove_dir_all(&d).expect("cleanup");
    let e = got.expect_err("refused");
    let at: Vec<(String, u64, u64)> = e
        .iter()
        .filter(|x| x.code == "invalid-value")
        .map(|x| {
            (
                x.file.rsplit('/').next().unwrap_or("").to_string(),
                x.line,
                x.column,
            )
        })
        .collect();
    assert_eq!(at, [("devices.csv".to_string(), 2, 15)], "{e:?}");
}
