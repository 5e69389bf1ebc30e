//! The site commands end to end: `validate` on sites, `compile` for every target, and the
//! options that shape the output.

use assert_cmd::Command;

fn portolan() -> Command {
    let mut c = Command::cargo_bin("portolan").expect("binary");
    c.current_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    c
}

#[test]
fn validate_accepts_the_example_site_and_refuses_a_bad_one() {
    let ok = portolan()
        .args(["validate", "examples/site.yaml"])
        .output()
        .expect("runs");
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = portolan()
        .args([
            "validate",
            "--format",
            "json",
            "test-data/sites/bad/unbound-role.yaml",
        ])
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&bad.stdout).expect("json");
    assert_eq!(v["format"], "portolan/error/v1");
    assert_eq!(v["diagnostics"][0]["code"], "unbound-role");
    assert!(v["diagnostics"][0]["line"].as_u64().unwrap_or(0) > 0);
}

#[test]
fn compile_every_target() {
    for (target, needle) in [
        ("nftables", "table inet portolan"),
        ("iptables", "-m comment --comment \"thingpark-lrr/i6\""),
        ("dnsmasq", "nftset=/gk.sensorist.com/gk.sensorist.net/"),
        ("ir", "\"flow\": \"cloud-443\""),
        ("squid", "http_access deny all"),
        ("openwrt", "chain portolan_forward {"),
    ] {
        let out = portolan()
            .args(["compile", "examples/site.yaml", "--target", target])
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{target}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(needle), "{target} output lacks {needle}");
    }
}

#[test]
fn dns_timeout_sets_the_name_sets_default() {
    let out = portolan()
        .args(["compile", "examples/site.yaml", "--dns-timeout", "120"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("timeout 120s"), "name sets carry the timeout");
    let default = portolan()
        .args(["compile", "examples/site.yaml"])
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&default.stdout).contains("timeout 3600s"));
}

#[test]
fn compile_writes_the_file_whole_and_only_on_success() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("policy.nft");
    std::fs::write(&out, "previous\n").expect("write");
    let bad = portolan()
        .args(["compile", "test-data/sites/bad/unbound-role.yaml", "-o"])
        .arg(&out)
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        std::fs::read_to_string(&out).expect("read"),
        "previous\n",
        "a failed compile leaves the old file"
    );
    let good = portolan()
        .args(["compile", "examples/site.yaml", "-o"])
        .arg(&out)
        .output()
        .expect("runs");
    assert!(good.status.success());
    assert!(std::fs::read_to_string(&out)
        .expect("read")
        .starts_with("#!/usr/sbin/nft -f"));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left behind");
}

#[test]
fn errors_reach_scripts_as_json_when_json_is_asked_for() {
    let out = portolan()
        .args(["show", "no-such-profile", "--format", "json"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the error is JSON on stdout");
    assert_eq!(v["format"], "portolan/error/v1");
    assert!(v["diagnostics"][0]["message"]
        .as_str()
        .is_some_and(|e| e.contains("no-such-profile")));
}

#[test]
fn compiling_a_profile_as_a_site_says_so() {
    let out = portolan()
        .args(["compile", "catalog/oscar-templog-gateway.yaml"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error[not-a-site]") && err.contains("a profile"),
        "{err}"
    );
}

#[test]
fn aerleon_keeps_names_on_srx_and_asks_for_resolve_elsewhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = portolan()
        .args(["compile", "examples/site.yaml", "--target", "aerleon"])
        .args(["--aerleon-platform", "srx", "-o"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "def/networks.yaml",
        "def/services.yaml",
        "policies/pol/portolan-srx.yaml",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} written");
    }
    let nets = std::fs::read_to_string(dir.path().join("def/networks.yaml")).expect("read");
    assert!(nets.contains("- fqdn: \"gk.sensorist.com\""), "{nets}");
    // Cisco has no name objects: without --resolve the compile stops (exit 2) and says why,
    // as JSON when asked.
    let out = portolan()
        .args(["compile", "examples/site.yaml", "--target", "aerleon"])
        .args(["--aerleon-platform", "cisco", "--format", "json"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let msg = v["diagnostics"][0]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("--resolve") && msg.contains("cisco"), "{msg}");
    let bad = portolan()
        .args(["compile", "examples/site.yaml", "--target", "aerleon"])
        .args(["--aerleon-platform", "capirca"])
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(2));
}
