//! `portolan mud verify FILE` without `--signature`: the signature is the file the MUD file's
//! `mud-signature` URL names, looked for next to it (never fetched).

use assert_cmd::Command;

fn mud(sig: Option<&str>) -> String {
    let mut m = serde_json::json!({
        "mud-version": 1,
        "mud-url": "https://example.com/dev.json",
        "last-update": "2026-12-01T00:00:00Z",
        "is-supported": true,
    });
    if let Some(s) = sig {
        m["mud-signature"] = serde_json::Value::from(s);
    }
    serde_json::json!({"ietf-mud:mud": m, "ietf-access-control-list:acls": {"acl": []}}).to_string()
}

fn verify(dir: &std::path::Path) -> (i32, String) {
    let out = Command::cargo_bin("portolan")
        .expect("binary")
        .args(["mud", "verify"])
        .arg(dir.join("dev.json"))
        .arg("--ca")
        .arg(dir.join("ca.pem"))
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn the_signature_is_found_beside_the_file_by_its_mud_signature_url() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("ca.pem"), "not a certificate").expect("write");
    // Named, absent: the error names the path it looked at, next to the MUD file.
    std::fs::write(
        dir.path().join("dev.json"),
        mud(Some("https://example.com/sigs/dev.p7s?v=2")),
    )
    .expect("write");
    let (code, err) = verify(dir.path());
    assert_eq!(code, 2, "{err}");
    let want = dir.path().join("dev.p7s").display().to_string();
    assert!(err.contains(&format!("cannot read {want}")), "{err}");
    // Present: it is read (and, being no signature, refused as input).
    std::fs::write(dir.path().join("dev.p7s"), b"garbage").expect("write");
    let (code, err) = verify(dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains(&format!("cannot read {want}")), "{err}");
    // Not named: the user must say where it is.
    std::fs::write(dir.path().join("dev.json"), mud(None)).expect("write");
    let (code, err) = verify(dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("names no mud-signature"), "{err}");
}
