//! A flow's `idle_timeout:` (edition 2) read by `lint` and `compile --ct-timeouts`.
//!
//! Profile `data/ct-timeout/idle-profile.yaml`: `report` (UDP 5000, idle 300 s), `stream`
//! (TCP 5683, keepalive 540 s, idle 1500 s), `beacon` (UDP 5001, idle 60 s). Against the
//! configuration `short.lint.yaml` (established 300 s, UDP stream 120 s) the expected raises
//! are worked out by hand from those numbers: report 300 s (`replied`, 300 > 120), stream
//! max(2 x 540, 1500) = 1500 s (`established`), beacon none (60 <= 120).
//!
//! On a real kernel: a firewall namespace whose UDP stream timeout is 120 s loads the ruleset
//! `compile --ct-timeouts` writes there; `nft list` shows the objects' values, and the
//! kernel's own conntrack table (`conntrack -L`, the oracle) counts a replied UDP exchange of
//! `report` down from 300 s and one of `beacon` from the namespace's 120 s.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn data(name: &str) -> String {
    workspace()
        .join("crates/cli/tests/data/ct-timeout")
        .join(name)
        .display()
        .to_string()
}

fn portolan(args: &[&str]) -> Output {
    Command::cargo_bin("portolan")
        .expect("binary")
        .current_dir(workspace())
        .args(args)
        .output()
        .expect("runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn compile_raises_to_the_larger_need_and_only_over_the_timeout() {
    let site = data("idle-site.yaml");
    let cfg = data("short.lint.yaml");
    let out = portolan(&["compile", &site, "--ct-timeouts", &cfg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let nft = text(&out.stdout);
    // Each object is added, deleted and added again (so that a reload replaces it): the
    // distinct ones, in order.
    let mut objects: Vec<&str> = Vec::new();
    for l in nft.lines().filter(|l| l.starts_with("add ct timeout ")) {
        if !objects.contains(&l) {
            objects.push(l);
        }
    }
    assert_eq!(
        objects,
        vec![
            "add ct timeout inet portolan ct_idle-ct_report_300 { protocol udp; policy = { replied: 300 }; }",
            "add ct timeout inet portolan ct_idle-ct_stream_1500 { protocol tcp; policy = { established: 1500 }; }",
        ],
        "{nft}"
    );
    // Assigned in each flow's rules (IPv4 and IPv6), nowhere else: beacon keeps the default.
    for (flow, name, n) in [
        ("report", "ct_idle-ct_report_300", 2),
        ("stream", "ct_idle-ct_stream_1500", 2),
    ] {
        let lines: Vec<&str> = nft
            .lines()
            .filter(|l| l.contains(&format!("comment \"idle-ct/{flow}\"")))
            .collect();
        assert_eq!(lines.len(), n, "{nft}");
        assert!(
            lines
                .iter()
                .all(|l| l.contains(&format!("ct timeout set \"{name}\""))),
            "{lines:?}"
        );
    }
    assert!(nft
        .lines()
        .filter(|l| l.contains("comment \"idle-ct/beacon\""))
        .all(|l| !l.contains("ct timeout set")));
    let err = text(&out.stderr);
    assert!(
        err.contains("idle-ct/report of meters: idle timeout 300 s > nf_conntrack_udp_timeout_stream 120 s: replied timeout 300 s"),
        "{err}"
    );
    assert!(
        err.contains("idle-ct/stream of meters: keepalive 540 s and idle timeout 1500 s > nf_conntrack_tcp_timeout_established 300 s: established timeout 1500 s"),
        "{err}"
    );

    // The JSON document carries both needs.
    let out = portolan(&["compile", &site, "--ct-timeouts", &cfg, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let raised = v["ct_timeouts"]["raised"].as_array().expect("raised");
    let got: Vec<(String, Option<u64>, Option<u64>, u64)> = raised
        .iter()
        .map(|r| {
            (
                r["flow"].as_str().unwrap_or_default().to_string(),
                r["keepalive"].as_u64(),
                r["idle_timeout"].as_u64(),
                r["seconds"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("report".to_string(), None, Some(300), 300),
            ("stream".to_string(), Some(540), Some(1500), 1500),
        ]
    );
}

#[test]
fn lint_reports_idle_timeouts_over_the_configured_conntrack() {
    let out = portolan(&[
        "lint",
        &data("idle-site.yaml"),
        "--config",
        &data("short.lint.yaml"),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let mut got: Vec<(String, String)> = v["targets"][0]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| {
            matches!(
                f["code"].as_str(),
                Some("idle-timeout-over-conntrack" | "keepalive-over-conntrack")
            )
        })
        .map(|f| {
            (
                f["code"].as_str().unwrap_or_default().to_string(),
                f["flow"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("idle-timeout-over-conntrack".into(), "report".into()),
            ("idle-timeout-over-conntrack".into(), "stream".into()),
            ("keepalive-over-conntrack".into(), "stream".into()),
        ]
    );
    let report = v["targets"][0]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["code"] == "idle-timeout-over-conntrack" && f["flow"] == "report")
        .expect("report's finding");
    let remedy = report["remedy"].as_str().unwrap_or_default();
    assert!(remedy.contains("replied: 300"), "{remedy}");
}

/// `(dport, timeout)` of every UDP entry of the conntrack table in `ns`, read with the
/// conntrack tool.
fn udp_entries(ns: &str) -> Vec<(u16, u64)> {
    portolan_testkit::netns::must_in(ns, &["conntrack", "-L", "-p", "udp"], None)
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.first() != Some(&"udp") {
                return None;
            }
            let dport = w
                .iter()
                .find_map(|x| x.strip_prefix("dport="))?
                .parse()
                .ok()?;
            Some((dport, w.get(2)?.parse().ok()?))
        })
        .collect()
}

#[test]
fn a_replied_udp_flow_gets_its_idle_timeout_in_the_kernel() {
    use portolan_testkit::netns::{command_in, ip_in, must_in, wait_for, Net, Procs};
    let _turn = portolan_testkit::kernel::turn();
    let mut net = Net::new();
    let (dev, fw, peer) = (net.ns("dev"), net.ns("fw"), net.ns("peer"));
    let mut procs = Procs::new();
    net.veth(&dev, "eth0", &fw, "lan0");
    net.veth(&fw, "wan0", &peer, "eth0");
    for (ns, ifc, a) in [
        (&dev, "eth0", "10.99.0.2/24"),
        (&fw, "lan0", "10.99.0.1/24"),
        (&fw, "wan0", "203.0.113.1/24"),
        (&peer, "eth0", "203.0.113.10/24"),
    ] {
        ip_in(ns, &["addr", "add", a, "dev", ifc]);
    }
    ip_in(&dev, &["route", "add", "default", "via", "10.99.0.1"]);
    ip_in(&peer, &["route", "add", "default", "via", "203.0.113.1"]);
    // Conntrack loaded in the firewall's namespace, its UDP stream timeout set to 120 s (the
    // kernel's documented default, set here so the test does not depend on the host).
    must_in(
        &fw,
        &["nft", "-f", "-"],
        Some("table inet t {\n  chain c {\n    type filter hook input priority 0;\n    ct state established accept\n  }\n}\n"),
    );
    must_in(&fw, &["nft", "delete", "table", "inet", "t"], None);
    for s in [
        "net.netfilter.nf_conntrack_udp_timeout_stream=120",
        "net.netfilter.nf_conntrack_tcp_timeout_established=300",
        "net.ipv4.ip_forward=1",
    ] {
        must_in(&fw, &["sysctl", "-qw", s], None);
    }
    let dir = tempfile::tempdir().expect("tmp");
    let out_file = dir.path().join("fw.nft");
    let compiled = command_in(
        &fw,
        &[
            env!("CARGO_BIN_EXE_portolan"),
            "compile",
            &data("idle-site.yaml"),
            "--ct-timeouts",
            "-o",
            &out_file.display().to_string(),
        ],
    )
    .output()
    .expect("runs");
    assert_eq!(
        compiled.status.code(),
        Some(0),
        "{}",
        text(&compiled.stderr)
    );
    let nft = std::fs::read_to_string(&out_file).expect("written");
    must_in(&fw, &["nft", "-f", "-"], Some(&nft));
    // What the kernel holds, as nft lists it.
    let listed = must_in(&fw, &["nft", "list", "table", "inet", "portolan"], None);
    let object = |name: &str| -> String {
        let start = listed
            .find(&format!("ct timeout {name} {{"))
            .unwrap_or_else(|| panic!("no object {name} in:\n{listed}"));
        let end = start + listed[start..].find("\n\t}").expect("its end");
        listed[start..end].to_string()
    };
    let report = object("ct_idle-ct_report_300");
    assert!(
        report.contains("protocol udp") && report.contains("policy = { replied : 300 }"),
        "{report}"
    );
    let stream = object("ct_idle-ct_stream_1500");
    assert!(
        stream.contains("protocol tcp") && stream.contains("policy = { established : 1500 }"),
        "{stream}"
    );
    assert!(!listed.contains("ct_idle-ct_beacon"), "{listed}");

    // UDP echo servers on the peer; the device sends, is answered, and after the kernel's
    // two seconds (a UDP conntrack entry counts as a stream only once it has lived that long
    // with replies) sends again, so that each entry is refreshed in its `replied` state.
    for port in ["5000", "5001"] {
        procs.spawn(command_in(
            &peer,
            &["socat", &format!("UDP4-RECVFROM:{port},fork"), "EXEC:cat"],
        ));
    }
    wait_for(
        "the peer's UDP servers",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || {
            let ss = must_in(&peer, &["ss", "-Huln"], None);
            ss.contains(":5000") && ss.contains(":5001")
        },
    );
    for port in ["5000", "5001"] {
        // Fixed source ports, so that the second datagram belongs to the same entry.
        let sport = if port == "5000" { "41000" } else { "41001" };
        let script = format!(
            "(echo a; sleep 3; echo b; sleep 1) | socat -t 1 - UDP4:203.0.113.10:{port},sourceport={sport} >/dev/null"
        );
        procs.spawn(command_in(&dev, &["sh", "-c", &script]));
    }
    let mut seen = Vec::new();
    wait_for(
        "both UDP entries refreshed after their replies",
        Duration::from_secs(10),
        Duration::from_millis(200),
        || {
            seen = udp_entries(&fw);
            // The first refresh after two seconds raises the timeout past the unreplied 30 s.
            [5000, 5001]
                .iter()
                .all(|p| seen.iter().any(|(d, t)| d == p && *t > 40))
        },
    );
    let left = |port: u16| seen.iter().find(|(d, _)| *d == port).map(|x| x.1);
    let report = left(5000).expect("report's entry");
    assert!(
        (280..=300).contains(&report),
        "report: {report} s, {seen:?}"
    );
    let beacon = left(5001).expect("beacon's entry");
    assert!(
        (100..=120).contains(&beacon),
        "beacon: {beacon} s, {seen:?}"
    );
    procs.stop();
}
