//! `contrib/portolan-enforce.service` is a unit systemd accepts, with the options the service
//! needs, and its command line is one `portolan enforce` accepts. The judges: systemd's own
//! `systemd-analyze verify` (with the unit's binary path pointed at this build's `portolan`;
//! any warning fails, since verify exits 0 on most of them) and the real CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

fn unit() -> (PathBuf, String) {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/portolan-enforce.service");
    let text = std::fs::read_to_string(&p).expect("contrib/portolan-enforce.service");
    (p, text)
}

fn setting<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .collect()
}

#[test]
fn the_unit_restarts_keeps_only_net_admin_and_is_hardened() {
    let (_, text) = unit();
    assert_eq!(setting(&text, "Restart"), vec!["always"]);
    for key in ["CapabilityBoundingSet", "AmbientCapabilities"] {
        let caps = setting(&text, key);
        assert_eq!(caps, vec!["CAP_NET_ADMIN CAP_NET_BIND_SERVICE"], "{key}");
    }
    for (key, want) in [
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("ProtectKernelModules", "yes"),
        ("RestrictNamespaces", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
    ] {
        assert_eq!(setting(&text, key), vec![want], "{key}");
    }
}

#[test]
fn systemd_analyze_verifies_the_unit() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: systemd-analyze is not installed (Debian package systemd)");
        return;
    }
    let (_, text) = unit();
    let bin = assert_cmd::cargo::cargo_bin("portolan");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("portolan-enforce.service");
    std::fs::write(
        &path,
        text.replace("/usr/local/bin/portolan", &bin.display().to_string()),
    )
    .expect("write");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.trim().is_empty(), "systemd-analyze warns: {err}");

    // The same check catches a bad unit: a misspelt option and a missing binary.
    let bad = dir.path().join("bad.service");
    std::fs::write(&bad, text.replace("Restart=always", "Restart=alwys")).expect("write");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&bad)
        .output()
        .expect("systemd-analyze");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("alwys"), "{err}");
}

#[test]
fn the_units_command_line_is_one_portolan_enforce_accepts() {
    let (_, text) = unit();
    let exec = setting(&text, "ExecStart");
    assert_eq!(exec.len(), 1);
    let words: Vec<&str> = exec[0].split_whitespace().collect();
    assert_eq!(words[0], "/usr/local/bin/portolan");
    assert_eq!(words[1], "enforce");
    // The site file does not exist here: portolan reads its arguments, then fails on the
    // file (exit 2, naming it), not on an argument clap does not know.
    let out = assert_cmd::Command::cargo_bin("portolan")
        .expect("binary")
        .args(&words[1..])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("/etc/portolan/site.yaml"), "{err}");
    assert!(!err.contains("Usage:"), "{err}");
}
