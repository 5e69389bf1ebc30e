//! `portolan verify` from the outside: exit codes and the JSON report. The rulesets are read
//! by `nft` in scratch namespaces, so the JSON case needs root.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn portolan() -> Command {
    Command::cargo_bin("portolan").expect("binary")
}

#[test]
fn no_ruleset_source_is_a_usage_error() {
    let out = portolan()
        .args(["verify", "examples/site.yaml"])
        .current_dir(workspace())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_unreadable_ruleset_is_bad_input() {
    let out = portolan()
        .args([
            "verify",
            "examples/site.yaml",
            "--ruleset",
            "no/such/file.nft",
        ])
        .current_dir(workspace())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}

/// The administrator's IoT VLAN ruleset of crates/verify/tests/data (worked out by hand
/// there): one flow partly permitted and excess, so exit 1, and the JSON says which.
#[test]
fn findings_exit_1_with_a_json_report() {
    let data = workspace().join("crates/verify/tests/data");
    let out = portolan()
        .arg("verify")
        .arg(data.join("iot-vlan.yaml"))
        .arg("--ruleset")
        .arg(data.join("iot-vlan.nft"))
        .args(["--format", "json"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let status = |flow: &str| {
        v["flows"]
            .as_array()
            .and_then(|a| a.iter().find(|f| f["flow"] == flow))
            .map(|f| f["status"].clone())
    };
    assert_eq!(
        status("oscar-templog-gateway/cloud-443"),
        Some("permitted".into())
    );
    assert_eq!(
        status("oscar-templog-gateway/cloud-4321"),
        Some("partly".into())
    );
    assert_eq!(v["excess"].as_array().map(Vec::len), Some(10));
}
