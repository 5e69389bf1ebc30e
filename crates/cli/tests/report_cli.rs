//! `portolan report` from the outside, on the example site: the page is parsed by real
//! parsers (Python's html.parser and xml.etree, in crates/report/tests/check_report.py), and
//! what it must show comes from elsewhere than the report code: the flows of every group from
//! `portolan compile --target ir`, their citations from `portolan show --format json`, and
//! the overlays from the real commands (`verify` of a ruleset with one rule removed by hand,
//! `lint`, `audit` of a two-line Zeek log, a lab run's rows), with colours stated by hand.
//! The verify case loads rulesets into scratch namespaces (never this machine's): needs root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::{json, Value};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn portolan(args: &[&str]) -> Output {
    Command::cargo_bin("portolan")
        .expect("binary")
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("run portolan")
}

fn stdout_of(args: &[&str]) -> String {
    let out = portolan(args);
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "portolan {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Every flow of every group of the example site, with its citations: the IR's rules and
/// documented rows (`compile --target ir`), the citations of the group's mode (`show`).
fn expected_flows() -> Vec<Value> {
    let ir: Value = serde_json::from_str(&stdout_of(&[
        "compile",
        "examples/site.yaml",
        "--target",
        "ir",
    ]))
    .expect("IR JSON");
    let mut cites: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    let mut flows: Vec<Value> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let groups = ir["groups"].as_array().expect("groups");
    for g in groups {
        let (gid, profile) = (
            g["id"].as_str().expect("id"),
            g["profile"].as_str().expect("p"),
        );
        let mut args = vec!["show", profile, "--format", "json"];
        if let Some(m) = g["mode"].as_str() {
            args.extend(["--mode", m]);
        }
        let shown: Value = serde_json::from_str(&stdout_of(&args)).expect("show JSON");
        for f in shown["flows"].as_array().expect("flows") {
            let id = f["id"].as_str().expect("flow id").to_string();
            cites.insert(
                (gid.to_string(), id),
                f["source"].as_array().cloned().unwrap_or_default(),
            );
        }
    }
    let rows = ir["rules"].as_array().expect("rules").iter();
    for r in rows.chain(ir["documented"].as_array().expect("documented")) {
        let (g, p, f) = (
            r["group"].as_str().expect("group"),
            r["profile"].as_str().expect("profile"),
            r["flow"].as_str().expect("flow"),
        );
        if seen.insert((g.to_string(), f.to_string())) {
            let c = cites
                .get(&(g.to_string(), f.to_string()))
                .cloned()
                .unwrap_or_default();
            flows.push(json!({
                "anchor": format!("flow-{g}/{f}"),
                "group": g,
                "provenance": format!("{p}/{f}"),
                "citations": c,
            }));
        }
    }
    flows
}

/// Runs the checker on `page` with `expect`; panics with its findings.
fn check(dir: &Path, page: &Path, expect: &Value) -> String {
    let e = dir.join("expect.json");
    std::fs::write(&e, serde_json::to_vec_pretty(expect).expect("json")).expect("write");
    let script = workspace().join("crates/report/tests/check_report.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(page)
        .arg(&e)
        .output()
        .expect("python3 (scripts/setup.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "check_report.py {}:\n{text}{}",
        page.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn every_flow_appears_with_provenance_and_citation_and_the_page_is_stable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a.html"), dir.path().join("b.html"));
    for p in [&a, &b] {
        let out = portolan(&[
            "report",
            "examples/site.yaml",
            "-o",
            p.to_str().expect("path"),
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (x, y) = (std::fs::read(&a).expect("a"), std::fs::read(&b).expect("b"));
    assert!(x == y, "two runs on the same inputs differ");
    let flows = expected_flows();
    // The example site, counted by hand from examples/site.yaml and the catalog: lrr-ipsec 9
    // (i6 i7 i7a i8a i10 i11 i11b i9 i17), lrr-station 5 (i10 i11 i11c i11d i17), izuma 8,
    // oscar 4, d4-sensors 12 (nine DIMENSION4 flows, dhcp, dns, arp documented), wcc-lite 2.
    assert!(flows.len() >= 38, "{} flows", flows.len());
    // One citation stated by hand from catalog/thingpark-lrr.yaml (the IPsec table, row i6).
    let i6 = flows
        .iter()
        .find(|f| f["anchor"] == "flow-lrr-ipsec/i6")
        .expect("i6");
    assert!(i6["citations"]
        .as_array()
        .expect("c")
        .iter()
        .any(|c| c == "seed: table 'LRR flows when IPsec is used', row i6"));
    // Without overlays no flow has a colour.
    let colors: BTreeMap<String, &str> = flows
        .iter()
        .map(|f| (f["anchor"].as_str().expect("a").to_string(), "none"))
        .collect();
    let ok = check(dir.path(), &a, &json!({ "flows": flows, "colors": colors }));
    assert!(ok.starts_with("ok: "), "{ok}");
}

#[test]
fn overlays_colour_flows_as_the_commands_said() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = |n: &str| dir.path().join(n);
    let s = |p: &Path| p.to_str().expect("path").to_string();
    // verify: the emitted ruleset with the one rule of elseta-wcc-lite/telemetry removed.
    let nft = stdout_of(&["compile", "examples/site.yaml", "--target", "nftables"]);
    let cut: String = nft
        .lines()
        .filter(|l| !l.contains("comment \"elseta-wcc-lite/telemetry\""))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        nft.lines().count(),
        cut.lines().count() + 1,
        "one rule removed"
    );
    std::fs::write(d("cut.nft"), cut).expect("write");
    let verify = portolan(&[
        "verify",
        "examples/site.yaml",
        "--ruleset",
        &s(&d("cut.nft")),
        "--format",
        "json",
    ]);
    assert_eq!(
        verify.status.code(),
        Some(1),
        "verify finds the blocked flow"
    );
    std::fs::write(d("verify.json"), &verify.stdout).expect("write");
    let lint = portolan(&["lint", "examples/site.yaml", "--format", "json"]);
    std::fs::write(d("lint.json"), &lint.stdout).expect("write");
    // audit: one conforming telemetry flow, one stray HTTP connection (tests/data/report).
    let audit = portolan(&[
        "audit",
        "examples/site.yaml",
        "crates/cli/tests/data/report/conn.log",
        "--format",
        "json",
    ]);
    std::fs::write(d("audit.json"), &audit.stdout).expect("write");
    let lab = "crates/cli/tests/data/report/lab-wcc-lite.json";
    let out = portolan(&[
        "report",
        "examples/site.yaml",
        "--verify",
        &s(&d("verify.json")),
        "--lint",
        &s(&d("lint.json")),
        "--audit",
        &s(&d("audit.json")),
        "--lab",
        lab,
        "-o",
        &s(&d("r.html")),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "red flows: exit 1");
    let summary: Value = serde_json::from_slice(&out.stdout).expect("summary JSON");
    assert_eq!(
        summary["red_flows"],
        json!(["flow-wcc-lite/telemetry", "flow-wcc-lite/snmp"])
    );
    let flows = expected_flows();
    // By hand: telemetry's rule was removed (verify: blocked → red, though the audit saw it
    // and the lab ran on the full ruleset); SNMP is plaintext (lint warning, CISA TA17-156A →
    // red); ser2net: lab passed, verify permitted, lint silent → green; the DIMENSION4 ARP
    // flow is documented only: no command speaks of it → none; every other enforced flow is
    // permitted by verify → green (lint's notes on i6/i7 are grey, the verify green wins).
    let mut colors = BTreeMap::new();
    for f in &flows {
        let a = f["anchor"].as_str().expect("a").to_string();
        let c = match a.as_str() {
            "flow-wcc-lite/telemetry" | "flow-wcc-lite/snmp" => "red",
            "flow-d4-sensors/arp" => "none",
            _ => "green",
        };
        colors.insert(a, c);
    }
    let expect = json!({
        "flows": flows,
        "colors": colors,
        "evidence": {
            "flow-wcc-lite/telemetry": ["blocked", "1 observed flow(s) conforming"],
            "flow-wcc-lite/snmp": ["plaintext-service (warning)"],
            "flow-lrr-ipsec/i6": ["inbound-from-internet (note)", "permitted"],
        },
        "group_notes": { "wcc-lite": ["203.0.113.9", "closest rule elseta-wcc-lite/ser2net"] },
    });
    check(dir.path(), &d("r.html"), &expect);
}

#[test]
fn a_malformed_overlay_names_file_line_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("verify.json");
    std::fs::write(
        &bad,
        "{\"site\": \"example-plant\",\n \"flows\": [{\"group\": 5, \"flow\": \"x/y\", \"status\": \"permitted\"}]}\n",
    )
    .expect("write");
    let out = portolan(&[
        "report",
        "examples/site.yaml",
        "--verify",
        bad.to_str().expect("path"),
        "-o",
        dir.path().join("r.html").to_str().expect("path"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("verify.json:2:"), "{err}");
    assert!(err.contains("flows[0].group"), "{err}");
    assert!(
        !dir.path().join("r.html").exists(),
        "nothing written on bad input"
    );
    // Another site's results are refused.
    std::fs::write(&bad, "{\"site\": \"elsewhere\", \"flows\": []}").expect("write");
    let out = portolan(&[
        "report",
        "examples/site.yaml",
        "--verify",
        bad.to_str().expect("p"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`elsewhere`"));
}

#[test]
fn json_summary_needs_a_file_for_the_page() {
    let out = portolan(&["report", "examples/site.yaml", "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON error on stdout");
    assert_eq!(v["exit"], 2);
}
