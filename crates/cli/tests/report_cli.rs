//! `portolan report` from the outside, on the example site: the page is parsed by real
//! parsers (Python's html.parser and xml.etree, in crates/report/tests/check_report.py), and
//! what it must show comes from elsewhere than the report code: the flows of every group from
//! `portolan compile --target ir`, their citations from `portolan show --format json`, and
//! the overlays from the real commands (`verify` of a ruleset with one rule removed by hand,
//! `lint`, `audit` of a two-line Zeek log, a lab run's rows), with colours stated by hand.
//! The verify case loads rulesets into scratch namespaces (never this machine's): needs root.
//! The page is also loaded in headless Chromium (crates/report/tests/browser.py, over the
//! DevTools protocol: requests, console, DOM with its layout, the filter typed into,
//! screenshots kept in target/report-browser/), and checked by the W3C Nu Html Checker
//! (vnu.jar, from scripts/setup.sh), as is `doc --format html`.

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
                f["source"]
                    .as_array()
                    .map(|s| {
                        s.iter()
                            .map(|c| {
                                Value::from(format!(
                                    "{}: {}",
                                    c["doc"].as_str().expect("doc"),
                                    c["ref"].as_str().expect("ref")
                                ))
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
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
    assert_eq!(v["format"], "portolan/error/v1");
    assert_eq!(v["diagnostics"][0]["code"], "usage");
}

/// Where the browser test keeps its page and screenshots: under `target/`, a CI artifact.
fn artifacts() -> PathBuf {
    let d = workspace().join("target/report-browser");
    std::fs::create_dir_all(&d).expect("target/report-browser");
    d
}

/// What one IR rule admits, written by hand from the IR's numbers (IANA protocol numbers,
/// `protocol.number`:
/// 1 ICMP, 6 TCP, 17 UDP, 50 ESP, 58 IPv6-ICMP; ports `lo` or `lo-hi`, joined by commas).
fn traffic_by_hand(rule: &Value) -> String {
    let proto = match rule["protocol"]["number"]
        .as_u64()
        .expect("protocol number")
    {
        1 => "icmp",
        6 => "tcp",
        17 => "udp",
        50 => "esp",
        58 => "ipv6-icmp",
        n => panic!("protocol {n}: add its name here"),
    };
    let ports: Vec<String> = rule["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| {
            let (lo, hi) = (p["lo"].as_u64().expect("lo"), p["hi"].as_u64().expect("hi"));
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect();
    let mut t = proto.to_string();
    if !ports.is_empty() {
        t = format!("{t}/{}", ports.join(","));
    }
    if let Some(i) = rule["icmp_type"].as_str() {
        t = format!("{t} {i}");
    }
    t
}

/// Runs crates/report/tests/browser.py (headless Chromium over the DevTools protocol) on
/// `page`; returns what it saw.
fn in_chromium(page: &Path, args: &[&str]) -> Value {
    let script = workspace().join("crates/report/tests/browser.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(page)
        .arg("--shots")
        .arg(artifacts())
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "browser.py (scripts/setup.sh installs chromium): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("browser.py JSON")
}

type Box4 = [f64; 4];

fn box_of(v: &Value) -> Box4 {
    let a = v.as_array().expect("box");
    std::array::from_fn(|i| a[i].as_f64().expect("number"))
}

fn overlap(a: &Box4, b: &Box4) -> bool {
    a[0] < b[0] + b[2] && b[0] < a[0] + a[2] && a[1] < b[1] + b[3] && b[1] < a[1] + a[3]
}

#[test]
fn in_chromium_every_flow_and_arrow_is_there_and_nothing_is_fetched() {
    let dir = artifacts();
    let page = dir.join("report.html");
    let lint = portolan(&["lint", "examples/site.yaml", "--format", "json"]);
    std::fs::write(dir.join("lint.json"), &lint.stdout).expect("write");
    let out = portolan(&[
        "report",
        "examples/site.yaml",
        "--lint",
        dir.join("lint.json").to_str().expect("path"),
        "-o",
        page.to_str().expect("path"),
    ]);
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = in_chromium(
        &page,
        &["--width", "1366", "--width", "800", "--filter", "5140"],
    );
    // Nothing but the page itself was requested, and the console stayed silent.
    let url = format!("file://{}", page.canonicalize().expect("page").display());
    let requests: Vec<&str> = seen["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .map(|r| r.as_str().expect("url"))
        .collect();
    assert!(!requests.is_empty(), "the page's own load was seen");
    assert!(requests.iter().all(|r| *r == url), "{requests:?}");
    assert_eq!(seen["console"], json!([]), "console messages or exceptions");
    let dom = &seen["dom"];
    // Every flow of every group, as compile --target ir lists them.
    let expected = expected_flows();
    let rows: BTreeMap<&str, &Value> = dom["flows"]
        .as_array()
        .expect("flows")
        .iter()
        .map(|f| (f["id"].as_str().expect("id"), f))
        .collect();
    assert_eq!(rows.len(), expected.len(), "{:?}", rows.keys());
    for f in &expected {
        let a = f["anchor"].as_str().expect("anchor");
        let row = rows.get(a).unwrap_or_else(|| panic!("{a} not in the page"));
        assert_eq!(row["provenance"], f["provenance"], "{a}");
        assert_eq!(row["visible"], true, "{a} hidden without a filter");
    }
    // Every IR rule is carried by an arrow of its group: its flow named in the arrow's
    // title, its traffic among the title's labels, its initiator shown by the arrowhead
    // (towards the peer when the device opens the connection, towards the device else).
    let ir: Value = serde_json::from_str(&stdout_of(&[
        "compile",
        "examples/site.yaml",
        "--target",
        "ir",
    ]))
    .expect("IR");
    let edges = dom["edges"].as_array().expect("edges");
    for r in ir["rules"].as_array().expect("rules") {
        let (g, flow) = (
            r["group"].as_str().expect("g"),
            r["flow"].as_str().expect("f"),
        );
        let traffic = traffic_by_hand(r);
        let head = if r["initiator"] == "device" {
            "marker_end"
        } else {
            "marker_start"
        };
        let found = edges.iter().any(|e| {
            let title = e["title"].as_str().expect("title");
            let (flows, labels) = title.split_once(": ").expect("flows: labels");
            e["group"] == g
                && flows.split(", ").any(|x| x == flow)
                && labels.split(", ").any(|x| x == traffic)
                && e[head] == "url(#arrow)"
        });
        assert!(found, "no arrow of {g} carries {flow} ({traffic}, {head})");
    }
    // Each arrow's visible label is its labels, cut with an ellipsis only when long; labels
    // lie inside the drawing and no two overlap, as Chromium laid them out (width 800).
    let svg = box_of(&dom["svg_box"]);
    let mut boxes: Vec<(Box4, &str)> = Vec::new();
    for e in edges {
        let title = e["title"].as_str().expect("title");
        let full = title.split_once(": ").expect("labels").1;
        let label = e["label"].as_str().expect("label");
        assert!(
            label == full
                || (label.ends_with('…') && full.starts_with(label.trim_end_matches('…'))),
            "label {label:?} of {full:?}"
        );
        let b = box_of(&e["label_box"]);
        assert!(
            b[0] >= svg[0] - 0.5
                && b[1] >= svg[1] - 0.5
                && b[0] + b[2] <= svg[0] + svg[2] + 0.5
                && b[1] + b[3] <= svg[1] + svg[3] + 0.5,
            "label {label:?} at {b:?} outside the drawing {svg:?}"
        );
        for (o, other) in &boxes {
            assert!(!overlap(&b, o), "labels {label:?} and {other:?} overlap");
        }
        boxes.push((b, label));
    }
    // Every node's text stays inside its box.
    for n in dom["nodes"].as_array().expect("nodes") {
        let b = box_of(&n["box"]);
        for (t, tb) in n["texts"]
            .as_array()
            .expect("texts")
            .iter()
            .zip(n["text_boxes"].as_array().expect("boxes"))
        {
            let tb = box_of(tb);
            assert!(
                tb[0] >= b[0] && tb[0] + tb[2] <= b[0] + b[2] + 0.5,
                "{t} at {tb:?} sticks out of its node {b:?}"
            );
        }
    }
    assert!(
        dom["scroll_width"].as_f64() <= dom["client_width"].as_f64(),
        "the page scrolls sideways at 800 px: {} > {}: {}",
        dom["scroll_width"],
        dom["client_width"],
        dom["too_wide"]
    );
    // Typing 5140 in the filter leaves the flows whose rules' ports hold 5140 (from the IR).
    let mut want: Vec<String> = ir["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter(|r| {
            r["ports"].as_array().expect("ports").iter().any(|p| {
                p["lo"].as_u64().expect("lo") <= 5140 && 5140 <= p["hi"].as_u64().expect("hi")
            })
        })
        .map(|r| {
            format!(
                "flow-{}/{}",
                r["group"].as_str().expect("g"),
                r["flow"].as_str().expect("f")
            )
        })
        .collect();
    want.dedup();
    assert!(!want.is_empty());
    assert_eq!(seen["filters"]["5140"]["rows"], json!(want));
    // Screenshots at both widths, kept under target/ (PNG: signature, then IHDR's width).
    for (w, name) in [(1366u32, "report-1366.png"), (800, "report-800.png")] {
        let png = std::fs::read(dir.join(name)).expect("screenshot");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}");
        let width = u32::from_be_bytes(png[16..20].try_into().expect("4 bytes"));
        assert_eq!(width, w, "{name}");
    }
    for l in seen["loads"].as_array().expect("loads") {
        eprintln!("chromium: {l}");
    }
}

/// The browser test's own control: a page that does fetch something (from loopback's discard
/// port, refused at once) and logs an error is seen doing both, so the report test's empty
/// lists mean something.
#[test]
fn in_chromium_a_fetch_and_a_console_error_are_seen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("control.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>c</title></head><body><img src=\"http://127.0.0.1:9/x.png\" alt=\"\"><script>console.error(\"control\")</script></body></html>",
    )
    .expect("write");
    let seen = in_chromium(&page, &["--width", "800", "--no-dom", "--top-only"]);
    let requests = seen["requests"].as_array().expect("requests");
    assert!(
        requests.iter().any(|r| r == "http://127.0.0.1:9/x.png"),
        "{requests:?}"
    );
    let console = seen["console"].as_array().expect("console");
    assert!(
        console
            .iter()
            .any(|c| c["kind"] == "console.error" && c["text"] == "control"),
        "{console:?}"
    );
}

/// The W3C's Nu Html Checker (vnu.jar, from npm's `vnu-jar`, fetched by scripts/setup.sh),
/// on the report of the example site and on a profile's page.
#[test]
fn the_report_and_a_profile_page_pass_the_nu_html_checker() {
    let jar = std::env::var_os("PORTOLAN_VNU")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache")
                });
            cache.join("portolan/vnu-26.9.27.jar")
        });
    assert!(
        jar.exists(),
        "{} (scripts/setup.sh fetches it)",
        jar.display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("report.html");
    let out = portolan(&[
        "report",
        "examples/site.yaml",
        "-o",
        report.to_str().expect("path"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let doc = dir.path().join("thingpark-lrr.html");
    std::fs::write(
        &doc,
        stdout_of(&["doc", "thingpark-lrr", "--format", "html"]),
    )
    .expect("write");
    let out = std::process::Command::new("java")
        .arg("-jar")
        .arg(&jar)
        .arg(&report)
        .arg(&doc)
        .output()
        .expect("java (scripts/setup.sh installs it)");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "vnu:\n{said}"
    );
}

/// HTML escaping as minijinja writes it (its documentation: `&`, `<`, `>`, `"`, `'`, `/`).
fn escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

#[test]
fn doc_html_shows_every_flow_of_every_mode_with_its_citations() {
    let html = stdout_of(&["doc", "thingpark-lrr", "--format", "html"]);
    let shown: Value =
        serde_json::from_str(&stdout_of(&["show", "thingpark-lrr", "--format", "json"]))
            .expect("show JSON");
    // The profile's modes, from catalog/thingpark-lrr.yaml: ipsec, tls and plain.
    let modes = ["ipsec", "tls", "plain"];
    let mut rows = 0;
    for f in shown["flows"].as_array().expect("flows") {
        let id = f["id"].as_str().expect("id");
        let in_modes: Vec<&str> = match f["modes"].as_array() {
            Some(m) if !m.is_empty() => m.iter().map(|x| x.as_str().expect("mode")).collect(),
            _ => modes.to_vec(),
        };
        for m in in_modes {
            assert!(
                html.contains(&format!("id=\"flow-{m}&#x2f;{id}\"")),
                "flow {id} of mode {m}"
            );
            rows += 1;
        }
        for c in f["source"].as_array().expect("source") {
            let reference = c["ref"].as_str().expect("citation's ref");
            assert!(html.contains(&escaped(reference)), "{id}: {reference}");
        }
    }
    assert_eq!(html.matches("<tr class=\"flow").count(), rows);
    // The report's own columns for rules and results are not there: a profile has neither.
    assert!(!html.contains("enforced by"));
    assert_eq!(html.matches("<script").count(), 1);
}
