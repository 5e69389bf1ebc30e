//! Sites that take their devices from inventories, end to end through the binary: the same
//! output as the site written in YAML, problems at the inventory's row and column, and the
//! example inventory site proven by `portolan lab` on a real kernel.

use assert_cmd::Command;

fn portolan() -> Command {
    let mut c = Command::cargo_bin("portolan").expect("binary");
    c.current_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    c
}

fn compile(site: &str, target: &str) -> Vec<u8> {
    let out = portolan()
        .args(["compile", site, "--target", target])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{site} {target}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `test-data/inventories/good/site-inline.yaml` is `site.yaml` with its inventories' rows
/// written in YAML by hand: every target's output must be the same, byte for byte.
#[test]
fn an_inventory_site_compiles_to_the_same_output_as_its_yaml_twin() {
    for target in ["nftables", "iptables", "dnsmasq"] {
        let from_inventory = compile("test-data/inventories/good/site.yaml", target);
        let inline = compile("test-data/inventories/good/site-inline.yaml", target);
        assert!(!from_inventory.is_empty(), "{target}: some output");
        assert!(
            from_inventory == inline,
            "{target}: the outputs differ\n--- inventory\n{}\n--- inline\n{}",
            String::from_utf8_lossy(&from_inventory),
            String::from_utf8_lossy(&inline)
        );
    }
}

/// A problem of an inventory row is reported at the inventory file, row and column (JSON and
/// text), and the exit code says bad input.
#[test]
fn an_inventory_problem_names_its_file_row_and_column() {
    let out = portolan()
        .args([
            "validate",
            "--format",
            "json",
            "test-data/inventories/bad/csv-checks.yaml",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let diags = v["diagnostics"].as_array().expect("diagnostics");
    // By hand from csv-checks.csv line 6: `gw-5,10.20.0.41,no-such-profile,...`, the profile
    // in column 17.
    let unknown = diags
        .iter()
        .find(|d| d["code"] == "unknown-profile")
        .expect("unknown-profile is reported");
    assert!(
        unknown["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("test-data/inventories/bad/csv-checks.csv")),
        "{unknown}"
    );
    assert_eq!(
        (unknown["line"].as_u64(), unknown["column"].as_u64()),
        (Some(6), Some(17))
    );

    let text = portolan()
        .args(["validate", "test-data/inventories/bad/csv-checks.yaml"])
        .output()
        .expect("runs");
    assert_eq!(text.status.code(), Some(2));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&text.stdout),
        String::from_utf8_lossy(&text.stderr)
    );
    assert!(
        all.contains("test-data/inventories/bad/csv-checks.csv:6:17: error[unknown-profile]"),
        "{all}"
    );
}

/// The example inventory site on a real kernel: every required flow passes and every negative
/// drops (`portolan lab` exits 0). Needs root and network namespaces; without them it fails
/// (`portolan-testkit`'s skip policy: CI runs as root).
#[test]
fn the_example_inventory_site_labs_clean() {
    let out = portolan()
        .args(["lab", "examples/inventory/site.yaml", "--format", "json"])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "lab failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["summary"]["mismatched"], 0);
    let rows = v["rows"].as_array().expect("rows");
    // The inventories' devices are in the lab: the CSV rows, and the NetBox device from both
    // its primary address and the one the IP export assigns to its interface.
    for device in ["gw-1", "gw-2", "izuma-fleet", "gw-hall-3"] {
        assert!(
            rows.iter()
                .any(|r| r["device"] == device && r["kind"] == "required"),
            "the lab sent no required probe from {device}"
        );
    }
    for src in ["10.20.0.30", "10.20.0.31"] {
        assert!(
            rows.iter()
                .any(|r| r["device"] == "gw-hall-3" && r["src"] == src),
            "the lab sent nothing from gw-hall-3's {src}"
        );
    }
}
