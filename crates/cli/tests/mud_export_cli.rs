//! `portolan mud export` of second-edition profiles: `--choose` and `--interface`, their exit
//! codes (2 for a `policy: one` group left unpicked, a multi-homed profile without an
//! interface, a malformed pick), and the JSON report against `schemas/mud-export.v1.json`.
//! Expected flows are read from the fixtures by hand (`test-data/profiles/good/`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn portolan(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .current_dir(workspace())
        .env_remove("SOURCE_DATE_EPOCH")
        .args(args)
        .output()
        .expect("portolan runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn report_schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(workspace().join("schemas/mud-export.v1.json"))
        .expect("schema file");
    let v: Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::validator_for(&v).expect("schema compiles")
}

const E2: &str = "test-data/profiles/good/edition2.yaml";
const GW: &str = "test-data/profiles/good/two-zone-gateway.yaml";
const URL: &str = "https://mud.example.com/x.json";

#[test]
fn a_policy_one_group_unpicked_is_bad_input_and_a_pick_exports() {
    let (code, _, err) = portolan(&["mud", "export", E2, "--mud-url", URL]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--choose forwarder=forward-plain"), "{err}");

    let (code, _, err) = portolan(&[
        "mud",
        "export",
        E2,
        "--mud-url",
        URL,
        "--choose",
        "forwarder",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("GROUP=FLOW"), "{err}");

    let (code, out, err) = portolan(&[
        "mud",
        "export",
        E2,
        "--mud-url",
        URL,
        "--choose",
        "forwarder=forward-tls",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).expect("json");
    let v = report_schema();
    let problems: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(problems.is_empty(), "{problems:?}\n{doc:#}");
    assert_eq!(doc["format"], "portolan/mud-export/v1");
    assert_eq!(doc["unexpressed"], serde_json::json!(["forward-plain"]));
    let codes: Vec<&str> = doc["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(|w| w["code"].as_str())
        .collect();
    assert!(codes.contains(&"proxy-not-in-acls"), "{codes:?}");
    assert!(codes.contains(&"replaced-not-in-acls"), "{codes:?}");
}

#[test]
fn a_multi_homed_profile_is_exported_per_interface() {
    let (code, _, err) = portolan(&["mud", "export", GW, "--mud-url", URL]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--interface"), "{err}");

    let (code, out, err) = portolan(&[
        "mud",
        "export",
        GW,
        "--mud-url",
        URL,
        "--interface",
        "it",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).expect("json");
    assert!(report_schema().is_valid(&doc), "{doc:#}");
    assert_eq!(doc["interface"], "it");
    // The IT side: cloud-https and syslog; the OT side's IEC 104 listener is not in the file.
    let ext = &doc["mud"]["ietf-mud:mud"]["portolan:profile"];
    let ids: Vec<&str> = ext["flows"]
        .as_array()
        .expect("flows")
        .iter()
        .filter_map(|f| f["flow"]["id"].as_str())
        .collect();
    assert_eq!(ids, ["cloud-https", "syslog"]);
    assert!(!out.contains("2404"), "no ACE opens IEC 104 on the IT side");
}
