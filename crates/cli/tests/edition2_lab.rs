//! The second edition's least privilege on a real kernel: what a site did not pick, what a
//! flow replaced and the rest of a documented port range open nothing.
//!
//! Profile `test-data/profiles/good/choice-lab.yaml` (static peer 198.51.100.20): MQTT on
//! 8883 *or* 443 (`policy: one`), UDP 7351 replaced by HTTPS 8443 under feature `fallback`,
//! BACnet on the one port in use within 47808-47823. Site A picks 443, enables `fallback`
//! and sets BACnet to 47810; `lab` proves its own ruleset (exit 0). Then site B — the same
//! device picking 8883, without `fallback`, BACnet at its default 47808 — is run by `lab`
//! against A's ruleset: each of B's required packets is one A's site did not ask for, and
//! every one must be dropped by the kernel. The expected verdicts are read off the profile
//! and the two sites, not off the compiler.

use std::path::{Path, PathBuf};
use std::process::Command;

use portolan_testkit::{cmd, kernel};

fn portolan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portolan"))
}

const HEAD: &str = "portolan: 1
site: SITE
zones:
  - id: field
    interface: lan0
    networks: [10.20.0.0/24]
  - id: wan
    interface: wan0
services:
  dns: firewall
devices:
  - id: gw
    profile: choice-lab.yaml
    zone: field
    addresses: [10.20.0.5]
";

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("pl-e2lab-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    let profile =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-data/profiles/good/choice-lab.yaml");
    std::fs::copy(profile, d.join("choice-lab.yaml")).expect("copy profile");
    let a = HEAD.replace("SITE", "a")
        + "    features: [fallback]\n    params: {bacnet_port: 47810}\n    choose: {mqtt: mqtt-443}\n";
    let b = HEAD.replace("SITE", "b") + "    choose: {mqtt: mqtt-8883}\n";
    std::fs::write(d.join("a.yaml"), a).expect("site a");
    std::fs::write(d.join("b.yaml"), b).expect("site b");
    d
}

#[test]
fn what_a_site_did_not_pick_is_dropped_by_the_kernel() {
    let _turn = kernel::turn();
    if !kernel::runs() {
        return;
    }
    kernel::require_tools(&["dnsmasq"]);
    let d = dir();
    let run = |args: &[&str]| {
        let mut c = portolan();
        c.current_dir(&d).args(args);
        let (code, out, _) = cmd::code_out_err(c);
        (code, out)
    };
    let (code, _) = run(&["compile", "a.yaml", "-o", "a.nft"]);
    assert_eq!(code, Some(0), "site a compiles");
    let rules = std::fs::read_to_string(d.join("a.nft")).expect("a.nft");
    let (code, out) = run(&["lab", "a.yaml", "--format", "json"]);
    assert_eq!(code, Some(0), "site a's own proof: {out}");
    let (code, out) = run(&[
        "lab",
        "b.yaml",
        "--ruleset",
        "a.nft",
        "--no-provenance",
        "--format",
        "json",
    ]);
    std::fs::remove_dir_all(&d).expect("cleanup");
    assert_eq!(code, Some(1), "b's flows must not pass a's ruleset: {out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let mut required: Vec<(String, String, String)> = v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["kind"] == "required")
        .map(|r| {
            (
                r["flow"].as_str().unwrap_or("").to_string(),
                r["traffic"].as_str().unwrap_or("").to_string(),
                r["observed"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    required.sort();
    let s = |x: &str| x.to_string();
    assert_eq!(
        required,
        [
            // BACnet's default, outside the one port site a put in use.
            (s("choice-lab/bacnet"), s("udp/47808"), s("drop")),
            // the MQTT port site a did not pick.
            (s("choice-lab/mqtt-8883"), s("tcp/8883"), s("drop")),
            // the flow https-only replaces under `fallback`.
            (s("choice-lab/udp-7351"), s("udp/7351"), s("drop")),
        ],
        "{rules}"
    );
}

/// `show` and `doc` of a second-edition profile: each choice group in words (the policy read
/// off the fixture), the notes each construct adds to its row, and `schema site`.
#[test]
fn show_and_doc_say_what_the_second_edition_states() {
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-data/profiles/good");
    let run = |args: &[&str]| {
        let out = portolan().args(args).output().expect("runs");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let catalog = good.join("edition2.yaml");
    // `show`'s table on a terminal 400 columns wide (util-linux `script`, sized by `stty`), so
    // that no note is wrapped across lines: a pipe would get the 80-column default.
    let show = {
        let out = std::process::Command::new("script")
            .args([
                "-qec",
                &format!(
                    "stty cols 400 rows 0; {} show edition2 --catalog {}",
                    env!("CARGO_BIN_EXE_portolan"),
                    catalog.display()
                ),
                "/dev/null",
            ])
            .env("NO_COLOR", "1")
            .output()
            .expect("script runs (util-linux)");
        assert!(out.status.success(), "show on a terminal");
        String::from_utf8_lossy(&out.stdout).replace('\r', "")
    };
    for want in [
        "alternatives `mqtt`: mqtt-8883, else mqtt-443, tried in this order",
        "alternatives `forwarder`: exactly one of forward-plain, forward-tls is used",
        "replaces udp-7351",
        "idle timeout 300s",
        "keepalive: interval unspecified",
        "not (feature local-ntp)",
        "HTTP proxy supported, CONNECT only, authenticated proxy unsupported",
    ] {
        assert!(show.contains(want), "show lacks {want:?}:\n{show}");
    }
    let doc = run(&[
        "doc",
        "edition2",
        "--catalog",
        catalog.to_str().expect("utf-8"),
    ]);
    for want in [
        "- `doc`: Example vendor page (example.txt, 2024-05, rev. C)",
        "- `console-guide`: Example management console guide (console.txt, 2023-11-02, tables from the console's side)",
        "- Sources contradict each other (doc, console-guide): The vendor page gives 8883",
    ] {
        assert!(doc.contains(want), "doc lacks {want:?}:\n{doc}");
    }
    let aws = good.join("aws-iot-core-device.yaml");
    let doc = run(&[
        "doc",
        "aws-iot-core-device",
        "--catalog",
        aws.to_str().expect("utf-8"),
    ]);
    for want in [
        "[ALPN x-amzn-mqtt-ca]",
        "[ALPN x-amzn-http-ca]",
        "[client certificate (mutual TLS)]",
        "Exactly one of mqtt-8883, mqtt-443 is used",
        "## Requirements that are not flows",
        "- credentials: every connection in this profile authenticates with the device's X.509 client certificate",
    ] {
        assert!(doc.contains(want), "doc lacks {want:?}:\n{doc}");
    }
    let schema: serde_json::Value =
        serde_json::from_str(&run(&["schema", "site"])).expect("schema site is JSON");
    assert!(schema["properties"]["devices"].is_object(), "{schema}");
}
