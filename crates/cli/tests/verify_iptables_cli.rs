//! `portolan verify` on iptables from the outside: the example's own `--target iptables` file
//! as `--ruleset` (every flow permitted, no excess: exit 0), the same firewall
//! loaded by the real tools into a scratch namespace and read with `--live --firewall
//! iptables --netns`, and a malformed file (exit 2, the error naming the file and line).
//! Needs root for the namespace.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use assert_cmd::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn portolan() -> Command {
    Command::cargo_bin("portolan").expect("binary")
}

fn emitted() -> String {
    let out = portolan()
        .args(["compile", "examples/site.yaml", "--target", "iptables"])
        .current_dir(workspace())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Every flow permitted and no excess: DHCP discovery is admitted from 0.0.0.0 only (RFC 2131
/// section 4.1), so the groups without a DHCP flow cannot broadcast to the DHCP server.
fn check_report(stdout: &[u8]) {
    let v: serde_json::Value = serde_json::from_slice(stdout).expect("JSON report");
    let flows = v["flows"].as_array().expect("flows");
    assert!(!flows.is_empty());
    for f in flows {
        assert_eq!(f["status"], "permitted", "{f}");
    }
    assert_eq!(
        v["excess"].as_array().map(Vec::len),
        Some(0),
        "{}",
        v["excess"]
    );
}

#[test]
fn the_examples_own_iptables_file_and_the_same_firewall_live() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("site.iptables");
    let text = emitted();
    std::fs::write(&file, &text).expect("write");
    let out = portolan()
        .args([
            "verify",
            "examples/site.yaml",
            "--format",
            "json",
            "--ruleset",
        ])
        .arg(&file)
        .current_dir(workspace())
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_report(&out.stdout);

    // The same, loaded by ipset restore, iptables-restore and ip6tables-restore.
    let ns = format!("plvcli{}", std::process::id());
    let run = |args: &[&str], input: Option<&str>| {
        let mut c = std::process::Command::new(args[0]);
        c.args(&args[1..]).stdin(Stdio::piped());
        let mut ch = c.spawn().expect("spawn");
        if let (Some(t), Some(mut i)) = (input, ch.stdin.take()) {
            i.write_all(t.as_bytes()).expect("stdin");
        }
        assert!(ch.wait().expect("wait").success(), "{args:?}");
    };
    run(&["ip", "netns", "add", &ns], None);
    struct Del(String);
    impl Drop for Del {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &self.0])
                .status();
        }
    }
    let _del = Del(ns.clone());
    let sec = |name: &str| {
        let marker = format!("#> {name}");
        let mut on = false;
        let mut out = String::new();
        for l in text.lines() {
            if l.starts_with("#> ") {
                on = l == marker;
                continue;
            }
            if on {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    };
    run(
        &["ip", "netns", "exec", &ns, "ipset", "restore", "-exist"],
        Some(&sec("ipset")),
    );
    run(
        &["ip", "netns", "exec", &ns, "iptables-restore", "-w"],
        Some(&sec("iptables")),
    );
    run(
        &["ip", "netns", "exec", &ns, "ip6tables-restore", "-w"],
        Some(&sec("ip6tables")),
    );
    let dns = dir.path().join("dnsmasq.conf");
    std::fs::write(&dns, sec("dnsmasq")).expect("write");
    let out = portolan()
        .args([
            "verify",
            "examples/site.yaml",
            "--format",
            "json",
            "--live",
            "--firewall",
            "iptables",
            "--netns",
            &ns,
            "--dns-config",
        ])
        .arg(&dns)
        .current_dir(workspace())
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_report(&out.stdout);
}

#[test]
fn a_malformed_iptables_file_is_bad_input_with_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.iptables");
    std::fs::write(&file, "*filter\n:INPUT ACCEPT [0:0]\nbogus\nCOMMIT\n").expect("write");
    let out = portolan()
        .args([
            "verify",
            "examples/site.yaml",
            "--format",
            "json",
            "--ruleset",
        ])
        .arg(&file)
        .current_dir(workspace())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON error");
    let e = v["diagnostics"][0]["message"].as_str().expect("error");
    assert!(e.contains("bad.iptables") && e.contains("line 3"), "{e}");
}
