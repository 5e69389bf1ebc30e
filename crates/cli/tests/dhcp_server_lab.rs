//! A device serving DHCP to its own segment, on a real kernel (issue 13, group 8).
//!
//! Profile `test-data/profiles/good/dhcp-server.yaml`: `dhcp-server` (the hosts on the
//! device's own segment → device, UDP 67, broadcast), `web` (segment → device, TCP 80) and
//! `cloud` (device → 198.51.100.30, TCP 443). Site A puts the device at 10.40.0.1 in zone
//! `lan` (10.40.0.0/24) beside zone `wan` (10.50.0.0/24). A routed firewall never sees a
//! DHCP exchange inside one segment, so A's ruleset must admit nothing to the device's port
//! 67 from elsewhere. Site B — the same zones and device address, with a profile that sends
//! UDP to the device's port 67 from 10.50.0.9 in zone `wan`, and the same cloud flow — is
//! run by `lab` against A's compiled ruleset in the lab's own namespaces: the kernel must
//! drop the packet to port 67 while the device's stated cloud flow passes. Expected fates
//! are read off the profile and the sites by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

use portolan_testkit::lab::required;
use portolan_testkit::{cmd, kernel};

fn portolan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portolan"))
}

const ZONES: &str = "zones:
  - id: lan
    interface: lan0
    networks: [10.40.0.0/24]
  - id: wan
    interface: wan0
    networks: [10.50.0.0/24]
";

/// Site B's device: UDP to port 67 of the device from a host of zone `wan`, and the cloud
/// flow of the real profile.
const FROM_WAN: &str = "portolan: 2
id: dhcp-from-wan
vendor: Example
product: Gateway, probed from another zone
sources:
  - {id: doc, title: Test, file: test.txt}
endpoints:
  - {id: far, role: true}
  - {id: cloud, addresses: [198.51.100.30]}
flows:
  - {id: to-67, from: far, to: device, initiation: peer, protocol: udp, ports: 67, source: {doc: doc, ref: x}}
  - {id: cloud, from: device, to: cloud, initiation: device, protocol: tcp, ports: 443, source: {doc: doc, ref: x}}
listens:
  - {protocol: udp, ports: 67, flow: to-67, source: {doc: doc, ref: x}}
";

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("pl-dhcpsrv-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    let profile = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-data/profiles/good/dhcp-server.yaml");
    std::fs::copy(profile, d.join("dhcp-server.yaml")).expect("copy profile");
    std::fs::write(d.join("dhcp-from-wan.yaml"), FROM_WAN).expect("profile b");
    let device = |name: &str, profile: &str, extra: &str| {
        format!(
            "portolan: 1\nsite: {name}\n{ZONES}devices:\n  - id: gw\n    profile: {profile}\n    zone: lan\n    addresses: [10.40.0.1]\n{extra}"
        )
    };
    std::fs::write(d.join("a.yaml"), device("a", "dhcp-server.yaml", "")).expect("site a");
    std::fs::write(
        d.join("b.yaml"),
        device("b", "dhcp-from-wan.yaml", "    bind: {far: [10.50.0.9]}\n"),
    )
    .expect("site b");
    d
}

fn row(
    flow: &str,
    traffic: &str,
    src: &str,
    dst: &str,
    fate: &str,
) -> (String, String, String, String, String) {
    (
        flow.to_string(),
        traffic.to_string(),
        src.to_string(),
        dst.to_string(),
        fate.to_string(),
    )
}

#[test]
fn port_67_of_the_dhcp_server_is_closed_to_other_zones() {
    let _turn = kernel::turn();
    if !kernel::runs() {
        return;
    }
    let d = dir();
    let run = |args: &[&str]| {
        let mut c = portolan();
        c.current_dir(&d).args(args);
        cmd::code_out_err(c)
    };
    let (code, _, err) = run(&["compile", "a.yaml", "-o", "a.nft"]);
    let rules = std::fs::read_to_string(d.join("a.nft")).unwrap_or_default();
    let (code_b, out_b, err_b) = run(&[
        "lab",
        "b.yaml",
        "--ruleset",
        "a.nft",
        "--no-provenance",
        "--format",
        "json",
    ]);
    std::fs::remove_dir_all(&d).expect("cleanup");
    assert_eq!(code, Some(0), "site a compiles: {err}");
    // The DHCP server flow is documented in the ruleset, and no rule names port 67.
    assert!(
        rules.contains("not enforced here: dhcp-server/dhcp-server for gw"),
        "{rules}"
    );
    assert!(!rules.contains("dport 67"), "{rules}");
    assert_eq!(
        code_b,
        Some(1),
        "port 67 from wan must not pass: {out_b}{err_b}"
    );
    assert_eq!(
        required(&out_b),
        [
            row(
                "dhcp-from-wan/cloud",
                "tcp/443",
                "10.40.0.1",
                "198.51.100.30",
                "pass"
            ),
            row(
                "dhcp-from-wan/to-67",
                "udp/67",
                "10.50.0.9",
                "10.40.0.1",
                "drop"
            ),
        ],
        "{rules}"
    );
}

/// `show`, `doc` (markdown and HTML) name the `segment` endpoint "the device's own segment"
/// (docs/profile-format.md), and `show` says the DHCP flow there opens nothing.
#[test]
fn show_and_doc_name_the_devices_own_segment() {
    let profile = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-data/profiles/good/dhcp-server.yaml");
    let profile = profile.to_str().expect("utf-8");
    let out = |args: &[&str]| {
        let o = portolan().args(args).output().expect("runs");
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let md = out(&["doc", profile, "--format", "markdown"]);
    let row = md
        .lines()
        .find(|l| l.starts_with("| dhcp-server |"))
        .expect("the DHCP row");
    assert!(row.contains("| lan (the device's own segment) |"), "{row}");
    assert!(row.contains("opens nothing"), "{row}");
    let html = out(&["doc", profile, "--format", "html"]);
    assert!(
        html.contains("lan (the device&#x27;s own segment)"),
        "{html}"
    );
    assert!(!html.contains("lan (bound by the site)"), "{html}");
    let json = out(&["show", profile, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("show json");
    assert_eq!(v["flows"][0]["id"], "dhcp-server");
}
