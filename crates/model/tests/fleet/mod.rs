//! The generated fleets of the site-compile tests that grow with their devices (`work.rs`,
//! `threads.rs`): two small profiles and the site around their devices.

use portolan_testkit::Profiles;

/// A device naming its cloud peer by DNS name, with its DNS flow to the firewall: each device
/// gets two rules (one per flow: one protocol, one port, one peer each).
pub const NAMED: &str = "portolan: 1
id: work-named
vendor: Example
product: Named-peer device
sources:
  - id: doc
    title: Example vendor page
    file: example.txt
endpoints:
  - id: dns
    service: dns
  - id: cloud
    hosts: [api.example.com]
flows:
  - id: dns
    from: device
    to: dns
    initiation: device
    protocol: udp
    ports: 53
    source: {doc: doc, ref: row dns}
  - id: telemetry
    from: device
    to: cloud
    initiation: device
    protocol: tcp
    ports: 443
    source: {doc: doc, ref: row telemetry}
listens: none
";

/// A device with one flow to the site's NTP server, no DNS name: one rule.
pub const PLAIN: &str = "portolan: 1
id: work-plain
vendor: Example
product: Plain device
sources:
  - id: doc
    title: Example vendor page
    file: example.txt
endpoints:
  - id: ntp
    service: ntp
flows:
  - id: ntp
    from: device
    to: ntp
    initiation: device
    protocol: udp
    ports: 123
    source: {doc: doc, ref: row ntp}
listens: none
";

/// The site `SITE` up to its `devices:` key: a field zone of 10.0.0.0/8, the firewall as DNS
/// server, an NTP server; the devices follow.
pub fn header(site: &str) -> String {
    format!(
        "portolan: 1\nsite: {site}\nzones:\n  - id: field\n    interface: lan0\n    networks: [10.0.0.0/8]\n  - id: wan\n    interface: wan0\nservices:\n  dns: firewall\n  ntp: [192.0.2.123]\ndevices:\n"
    )
}

/// The catalog and the two profiles.
pub fn profiles() -> Profiles {
    Profiles::catalog()
        .with_text("work-named", NAMED)
        .with_text("work-plain", PLAIN)
}

/// The address of device `d`: 10.x.y.z, one per device.
pub fn address(d: usize) -> String {
    format!("10.{}.{}.{}", (d >> 16) & 255, (d >> 8) & 255, d & 255)
}
