//! A site may name a MUD file (`.json`) as a device's profile: it is imported leniently and
//! compiled like any other profile.

use assert_cmd::Command;

fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn site_with_a_mud_profile_compiles() {
    let corpus = repo().join("../shared/interop/mud/iot-onboarding+mudfiles/unsw/HueBulbMud.json");
    assert!(
        corpus.is_file(),
        "the MUD corpus must sit in shared/ beside the repository: {}",
        corpus.display()
    );
    let out = Command::cargo_bin("portolan")
        .expect("binary")
        .current_dir(repo())
        .args([
            "compile",
            "test-data/sites/mud-profile.yaml",
            "--target",
            "ir",
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ir: serde_json::Value = serde_json::from_slice(&out.stdout).expect("IR is JSON");
    let rules = ir["rules"].as_array().expect("rules");
    assert!(
        rules.len() >= 10,
        "the Hue MUD file has many ACEs: {}",
        rules.len()
    );
    assert!(rules
        .iter()
        .all(|r| r["profile"] == "huebulb" && r["group"] == "hue"));
    // The repairs the importer made are reported, not hidden.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("draft-acl-container"), "{err}");
}

#[test]
fn unbound_mud_role_is_an_input_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let text = std::fs::read_to_string(repo().join("test-data/sites/mud-profile.yaml"))
        .expect("fixture")
        .replace(
            "../../../shared",
            &repo().join("../shared").display().to_string(),
        )
        .replace("      gateway: [10.1.0.1]\n", "");
    let site = dir.path().join("site.yaml");
    std::fs::write(&site, text).expect("write");
    let out = Command::cargo_bin("portolan")
        .expect("binary")
        .args(["compile"])
        .arg(&site)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[unbound-role]"));
}
