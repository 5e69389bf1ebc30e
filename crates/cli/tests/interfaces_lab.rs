//! A multi-homed device on a real kernel (issue 13, group 7): each flow is admitted for the
//! address and zone of its own interface only.
//!
//! Profile `test-data/profiles/good/two-zone-gateway.yaml`: interfaces `it` and `ot`;
//! `cloud-https` (device → 198.51.100.30, TCP 443) on `it`, `iec104` (the SCADA master →
//! device, TCP 2404) on `ot`, `syslog` (device → collector, UDP 514) on both. Site A binds
//! `it` to 10.1.0.5 in zone `office` and `ot` to 192.168.10.5 in zone `field`; `lab` proves
//! its ruleset (exit 0), and each required packet's source, destination and fate is checked
//! against the table below. Then site B — the same device with the two sides swapped, so
//! that each flow is sent from or to the *other* interface's address, in the other zone — is
//! run against A's ruleset: the IT flow from the OT address on the field side and the OT
//! flow to the IT address on the office side must be dropped by the kernel, the syslog flow
//! (both interfaces) must still pass. The expected fates are read off the profile and the two
//! sites by hand, not off the compiler or the IR.

use std::path::{Path, PathBuf};
use std::process::Command;

use portolan_testkit::lab::required;
use portolan_testkit::{cmd, kernel};

fn portolan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portolan"))
}

const SITE: &str = "portolan: 1
site: SITE
zones:
  - id: office
    interface: lan0
    networks: [10.1.0.0/24]
  - id: field
    interface: lan1
    networks: [192.168.10.0/24]
  - id: control
    interface: lan2
    networks: [10.3.0.0/24]
  - id: wan
    interface: wan0
devices:
  - id: gw
    profile: two-zone-gateway.yaml
    interfaces:
      it: {address: IT, zone: IT_ZONE}
      ot: {address: OT, zone: OT_ZONE}
    bind: {scada: [10.3.0.10], syslog: [10.3.0.20]}
";

fn site(name: &str, it: (&str, &str), ot: (&str, &str)) -> String {
    SITE.replace("SITE", name)
        .replace("IT_ZONE", it.1)
        .replace("OT_ZONE", ot.1)
        .replace("IT", it.0)
        .replace("OT", ot.0)
}

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("pl-iface-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    let profile = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-data/profiles/good/two-zone-gateway.yaml");
    std::fs::copy(profile, d.join("two-zone-gateway.yaml")).expect("copy profile");
    let a = site("a", ("10.1.0.5", "office"), ("192.168.10.5", "field"));
    let b = site("b", ("192.168.10.5", "field"), ("10.1.0.5", "office"));
    std::fs::write(d.join("a.yaml"), a).expect("site a");
    std::fs::write(d.join("b.yaml"), b).expect("site b");
    d
}

/// A required row of `two-zone-gateway` (`portolan_testkit::lab::Row`).
fn row(
    flow: &str,
    traffic: &str,
    src: &str,
    dst: &str,
    fate: &str,
) -> (String, String, String, String, String) {
    (
        format!("two-zone-gateway/{flow}"),
        traffic.to_string(),
        src.to_string(),
        dst.to_string(),
        fate.to_string(),
    )
}

#[test]
fn each_flow_passes_on_its_own_interface_only() {
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
    assert_eq!(code, Some(0), "site a compiles: {err}");
    let rules = std::fs::read_to_string(d.join("a.nft")).expect("a.nft");
    let (code_a, out_a, err_a) = run(&["lab", "a.yaml", "--format", "json"]);
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
    assert_eq!(code_a, Some(0), "site a's own proof: {out_a}{err_a}");
    // Site A: every flow on its own interface's address passes.
    assert_eq!(
        required(&out_a),
        [
            row(
                "cloud-https",
                "tcp/443",
                "10.1.0.5",
                "198.51.100.30",
                "pass"
            ),
            row("iec104", "tcp/2404", "10.3.0.10", "192.168.10.5", "pass"),
            row("syslog", "udp/514", "10.1.0.5", "10.3.0.20", "pass"),
            row("syslog", "udp/514", "192.168.10.5", "10.3.0.20", "pass"),
        ],
        "{rules}"
    );
    // Site B against A's ruleset: the sides swapped.
    assert_eq!(
        code_b,
        Some(1),
        "b's swapped flows must not pass: {out_b}{err_b}"
    );
    assert_eq!(
        required(&out_b),
        [
            // the IT side's flow, sent from the OT address on the field side.
            row(
                "cloud-https",
                "tcp/443",
                "192.168.10.5",
                "198.51.100.30",
                "drop"
            ),
            // the OT side's flow, to the IT address on the office side.
            row("iec104", "tcp/2404", "10.3.0.10", "10.1.0.5", "drop"),
            // documented on both interfaces: passes from either.
            row("syslog", "udp/514", "10.1.0.5", "10.3.0.20", "pass"),
            row("syslog", "udp/514", "192.168.10.5", "10.3.0.20", "pass"),
        ],
        "{rules}"
    );
}

/// `show` (table and JSON) and `doc` name the interfaces and each flow's interface, as the
/// profile writes them.
#[test]
fn show_and_doc_render_the_interfaces() {
    let profile = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-data/profiles/good/two-zone-gateway.yaml");
    let catalog = profile.to_str().expect("utf-8");
    let run = |args: &[&str]| {
        let out = portolan()
            .args(args)
            .args(["--catalog", catalog])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let show = run(&["show", "two-zone-gateway"]);
    for want in [
        "interface `it`: Office side (ETH1)",
        "interface `ot`: Field side (ETH2)",
    ] {
        assert!(show.contains(want), "show lacks {want:?}:\n{show}");
    }
    let v: serde_json::Value =
        serde_json::from_str(&run(&["show", "two-zone-gateway", "--format", "json"]))
            .expect("show --format json");
    let ids: Vec<&str> = v["interfaces"]
        .as_array()
        .expect("interfaces")
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(ids, ["it", "ot"]);
    let of = |flow: &str| -> Vec<String> {
        let f = v["flows"]
            .as_array()
            .expect("flows")
            .iter()
            .find(|f| f["id"] == flow)
            .expect("flow");
        f["interface"]
            .as_array()
            .expect("interface")
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(of("cloud-https"), ["it"]);
    assert_eq!(of("iec104"), ["ot"]);
    assert_eq!(of("syslog"), ["it", "ot"]);
    let doc = run(&["doc", "two-zone-gateway"]);
    for want in [
        "## Interfaces of the device",
        "| it | Office side (ETH1), towards the company network and the cloud | doc: Interfaces: ETH1 (WAN/office) |",
        "| cloud-https | device (interface it) |",
        "| scada | Unidirectional | IEC 60870-5-104 | TCP/2404 | device (interface ot) |",
        "| syslog | device (interfaces it, ot) |",
    ] {
        assert!(doc.contains(want), "doc lacks {want:?}:\n{doc}");
    }
}
