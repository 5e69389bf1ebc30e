//! `portolan apply` end to end, always with `--netns` in a network namespace the test creates
//! and removes (never the machine's own): `--diff` / `--dry-run` loads nothing and names the
//! rules by their profile/flow; the confirm command `apply --confirm` prints works as printed
//! from another directory (it repeats `--state-dir`, made absolute, and `--netns`); a second
//! `--confirmed` says the apply was already confirmed; a rollback is reported as a sentence;
//! a site without devices is not loaded. Where namespaces cannot be created (not root), each
//! test fails (`portolan-testkit`'s skip policy).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use portolan_testkit::Netns;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn example() -> String {
    workspace().join("examples/site.yaml").display().to_string()
}

/// Whether `table inet portolan` exists in the namespace.
fn has_table(ns: &Netns) -> bool {
    ns.output(&["nft", "list", "tables"], None)
        .expect("nft runs")
        .stdout
        .contains("table inet portolan")
}

fn portolan(cwd: &Path, args: &[&str]) -> Output {
    Command::cargo_bin("portolan")
        .expect("binary")
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn diff_and_dry_run_load_nothing_and_name_each_rule_by_its_flow() {
    let ns = Netns::new("diff");
    let state = tempfile::tempdir().expect("tmp");
    let st = state.path().display().to_string();
    for flag in ["--diff", "--dry-run"] {
        let out = portolan(
            &workspace(),
            &[
                "apply",
                flag,
                &example(),
                "--netns",
                ns.name(),
                "--state-dir",
                &st,
            ],
        );
        let (o, e) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{flag}: {o}\n{e}");
        assert!(o.contains("Nothing was loaded."), "{o}");
        assert!(o.contains("There is no inet portolan table yet"), "{o}");
        // The WCC Lite's SNMP flow (examples/site.yaml enables snmp) under its provenance.
        let snmp = o
            .find("\n    elseta-wcc-lite/snmp\n")
            .expect("grouped by flow");
        assert!(o[snmp..].contains("+ chain "), "{o}");
        assert!(!has_table(&ns), "{flag} loaded the policy");
    }
    let out = portolan(
        &workspace(),
        &[
            "apply",
            "--diff",
            &example(),
            "--netns",
            ns.name(),
            "--state-dir",
            &st,
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["had_previous"], false);
    assert!(v["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .any(|r| r["provenance"] == "oscar-templog-gateway/cloud-443" && r["change"] == "added"));
    assert!(
        std::fs::read_dir(state.path())
            .expect("state dir")
            .next()
            .is_none(),
        "--diff wrote no state"
    );
    assert!(!has_table(&ns));
}

/// The indented command line after "unless confirmed with:".
fn printed_confirm_command(stdout: &str) -> Vec<String> {
    let mut lines = stdout.lines();
    lines
        .by_ref()
        .find(|l| l.contains("unless confirmed with:"))
        .expect("the confirm hint");
    let cmd = lines.next().expect("the command").trim();
    assert!(
        !cmd.contains('\''),
        "no quoting expected for these paths: {cmd}"
    );
    cmd.split_whitespace().map(str::to_string).collect()
}

#[test]
fn the_printed_confirm_command_works_as_printed_and_a_second_confirm_says_so() {
    let ns = Netns::new("confirm");
    let work = tempfile::tempdir().expect("tmp");
    // A relative state folder, from a working directory of its own.
    let out = portolan(
        work.path(),
        &[
            "apply",
            &example(),
            "--netns",
            ns.name(),
            "--state-dir",
            "state",
            "--confirm",
            "60",
        ],
    );
    let o = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{o}\n{}", text(&out.stderr));
    assert!(has_table(&ns));
    let cmd = printed_confirm_command(&o);
    let state = work.path().join("state").display().to_string();
    assert_eq!(
        cmd,
        [
            "portolan",
            "apply",
            "--confirmed",
            "--state-dir",
            &state,
            "--netns",
            ns.name()
        ]
    );
    // Run it as printed, from elsewhere.
    let elsewhere = tempfile::tempdir().expect("tmp");
    let args: Vec<&str> = cmd[1..].iter().map(String::as_str).collect();
    let first = portolan(elsewhere.path(), &args);
    let f = text(&first.stdout);
    assert_eq!(first.status.code(), Some(0), "{f}\n{}", text(&first.stderr));
    assert!(f.starts_with("apply: confirmed."), "{f}");
    let second = portolan(elsewhere.path(), &args);
    let s = text(&second.stdout);
    assert_eq!(
        second.status.code(),
        Some(0),
        "{s}\n{}",
        text(&second.stderr)
    );
    assert!(s.contains("already confirmed"), "{s}");
    assert!(!format!("{s}{}", text(&second.stderr)).contains("rolled back"));
    assert!(has_table(&ns), "confirmed: the policy stays");
}

#[test]
fn a_rollback_is_told_in_a_sentence_and_an_empty_site_is_not_loaded() {
    let ns = Netns::new("rollback");
    let state = tempfile::tempdir().expect("tmp");
    let st = state.path().display().to_string();
    let out = portolan(
        &workspace(),
        &[
            "apply",
            &example(),
            "--netns",
            ns.name(),
            "--state-dir",
            &st,
            "--confirm",
            "1",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let start = Instant::now();
    while has_table(&ns) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the rollback did not run"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let late = portolan(
        &workspace(),
        &[
            "apply",
            "--confirmed",
            "--netns",
            ns.name(),
            "--state-dir",
            &st,
        ],
    );
    let e = text(&late.stderr);
    assert_eq!(late.status.code(), Some(1), "{e}");
    assert!(
        e.starts_with("apply: too late to confirm: the apply was rolled back "),
        "{e}"
    );
    assert!(!e.contains('{'), "a sentence, not JSON: {e}");

    // test-data/sites/bad/no-devices.yaml declares no device: warned, and not loaded.
    let empty = workspace()
        .join("test-data/sites/bad/no-devices.yaml")
        .display()
        .to_string();
    let out = portolan(
        &workspace(),
        &["apply", &empty, "--netns", ns.name(), "--state-dir", &st],
    );
    let e = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(e.contains("warning[no-devices]"), "{e}");
    assert!(e.contains("Nothing was loaded."), "{e}");
    assert!(!has_table(&ns));
}
