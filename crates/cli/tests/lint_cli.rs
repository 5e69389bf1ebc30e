//! `portolan lint` end to end: exit codes (0 / 1 at `--deny` / 2 on bad input), the JSON and
//! SARIF shapes, and keepalives checked against the conntrack timeouts of a real kernel: the
//! test reads them itself from `/proc/sys/net/netfilter` inside a network namespace it creates
//! (the oracle), changes one there with sysctl, and runs lint inside the same namespace.
//! The `ct timeout` object lint proposes as a remedy is loaded by the real `nft`.
//! Where namespaces cannot be created (not root), the kernel test fails
//! (`portolan-testkit`'s skip policy).

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use portolan_testkit::Netns;
use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
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

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&o.stdout)))
}

#[test]
fn exit_codes_follow_deny_and_bad_input_is_2() {
    let wcc = portolan(&["lint", "elseta-wcc-lite"]);
    assert_eq!(wcc.status.code(), Some(1), "{}", text(&wcc.stderr));
    // RFC 8247 section 2.4: DH group 1 MUST NOT; the first entry of `dh_groups` (line 159).
    assert!(text(&wcc.stdout).contains(
        "error[ike-weak-dh-group] catalog/elseta-wcc-lite.yaml:159:19 elseta-wcc-lite/ipsec-ike"
    ));
    // ThingPark: only FTP (warnings) in its plain mode.
    let tp = portolan(&["lint", "thingpark-lrr"]);
    assert_eq!(tp.status.code(), Some(1));
    let tp = portolan(&["lint", "thingpark-lrr", "--deny", "error"]);
    assert_eq!(tp.status.code(), Some(0), "{}", text(&tp.stdout));
    let none = portolan(&["lint", "no-such-profile"]);
    assert_eq!(none.status.code(), Some(2));
    let dir = tempfile::tempdir().expect("tmp");
    let bad = dir.path().join("bad.lint.yaml");
    std::fs::write(
        &bad,
        "portolan: 1\naccept:\n  - {code: no-such, flow: a/b, reason: x}\n",
    )
    .expect("write");
    let out = portolan(&[
        "lint",
        "examples/site.yaml",
        "--config",
        &bad.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("bad.lint.yaml:3:12"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn json_and_sarif_say_the_same_findings() {
    let j = json(&portolan(&["lint", "elseta-wcc-lite", "--format", "json"]));
    let findings = j[0]["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 13);
    assert_eq!(j[0]["target"], "catalog/elseta-wcc-lite.yaml");
    let f = &findings[0];
    assert_eq!(
        (f["code"].as_str(), f["level"].as_str()),
        (Some("ikev1"), Some("warning"))
    );
    assert_eq!(
        (f["line"].as_u64(), f["column"].as_u64()),
        (Some(156), Some(18))
    );
    assert_eq!(f["citations"][0]["standard"], "RFC 9395");
    let s = json(&portolan(&["lint", "elseta-wcc-lite", "--format", "sarif"]));
    assert_eq!(s["version"], "2.1.0");
    let results = s["runs"][0]["results"].as_array().expect("results");
    assert_eq!(results.len(), 13);
    assert_eq!(results[0]["ruleId"], "ikev1");
}

/// The three timeouts as the kernel shows them inside `ns`.
fn kernel_timeouts(ns: &Netns) -> (u64, u64, u64) {
    let read = |name: &str| -> u64 {
        ns.must(&["cat", &format!("/proc/sys/net/netfilter/{name}")], None)
            .trim()
            .parse()
            .expect("a number of seconds")
    };
    (
        read("nf_conntrack_tcp_timeout_established"),
        read("nf_conntrack_udp_timeout"),
        read("nf_conntrack_udp_timeout_stream"),
    )
}

fn lint_in(ns: &Netns) -> Value {
    let bin = env!("CARGO_BIN_EXE_portolan");
    let out = ns
        .command(&[
            bin,
            "lint",
            "examples/site.yaml",
            "--conntrack-from-kernel",
            "--format",
            "json",
        ])
        .current_dir(workspace())
        .output()
        .expect("runs");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        text(&out.stderr)
    );
    json(&out)
}

/// Izuma's two flows with `keepalive: 540` over TCP (mds-legacy-tcp, mds-tcp).
fn keepalive_findings(report: &Value) -> Vec<(String, String)> {
    report[0]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["code"] == "keepalive-over-conntrack")
        .map(|f| {
            (
                f["flow"].as_str().unwrap_or_default().to_string(),
                format!("{}:{}", f["line"], f["column"]),
            )
        })
        .collect()
}

#[test]
fn keepalives_against_the_kernels_conntrack_timeouts() {
    let ns = Netns::new("lint");
    // A ruleset with connection tracking, so that nf_conntrack is loaded and its sysctls
    // exist in this namespace.
    ns.load_nft(
        "table inet t {\n  chain c {\n    type filter hook input priority 0;\n    ct state established accept\n  }\n}\n",
    );
    let (tcp, udp, stream) = kernel_timeouts(&ns);
    let r = lint_in(&ns);
    let ct = &r[0]["conntrack"];
    assert_eq!(
        (
            ct["tcp_established"].as_u64(),
            ct["udp"].as_u64(),
            ct["udp_stream"].as_u64()
        ),
        (Some(tcp), Some(udp), Some(stream))
    );
    // Flagged exactly when 540 s exceeds the kernel's established timeout (Linux's default,
    // 432000 s, does not).
    let expected_default: Vec<(String, String)> = if 540 > tcp {
        vec![
            ("mds-legacy-tcp".into(), "43:9".into()),
            ("mds-tcp".into(), "43:9".into()),
        ]
    } else {
        Vec::new()
    };
    assert_eq!(keepalive_findings(&r), expected_default);

    // The namespace's own timeout lowered to 300 s: both flows, at the site's
    // `- id: izuma-devices` (examples/site.yaml line 43, column 9).
    ns.sysctl(&["net.netfilter.nf_conntrack_tcp_timeout_established=300"]);
    assert_eq!(kernel_timeouts(&ns).0, 300);
    let r = lint_in(&ns);
    assert_eq!(
        keepalive_findings(&r),
        vec![
            ("mds-legacy-tcp".to_string(), "43:9".to_string()),
            ("mds-tcp".to_string(), "43:9".to_string()),
        ]
    );
    let finding = r[0]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["code"] == "keepalive-over-conntrack")
        .expect("one");
    assert!(finding["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("(300 s)"));

    // The remedy's `ct timeout` object, as lint writes it, loads in the site's table.
    let remedy = finding["remedy"].as_str().expect("a remedy");
    let start = remedy.find("ct timeout ").expect("a ct timeout object");
    let end = start + remedy[start..].find(" }; }").expect("its end") + 5;
    let object = &remedy[start..end];
    // 2 x 540 s.
    assert!(object.contains("established: 1080"), "{object}");
    ns.load_nft(&format!("table inet portolan {{\n  {object}\n}}\n"));
    let listed = ns.must(&["nft", "list", "table", "inet", "portolan"], None);
    assert!(
        listed.contains("ct timeout portolan_izuma_devices_mds_legacy_tcp"),
        "{listed}"
    );
}
