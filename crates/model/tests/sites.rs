//! The site fixture folders `test-data/sites/{bad,good}`.
//!
//! Every `bad/*.yaml` must report exactly the diagnostics `bad/expected.txt` lists for it: the
//! same codes at the same line:column with the same severity, all in one run, nothing more and
//! nothing less. A fixture without an expectation (or an expectation without a fixture) fails
//! the test, so the folder and the table cannot drift apart. Every `good/*.yaml` must compile.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use portolan_model::compile::site_text;
use portolan_model::{Diagnostic, Severity};
use portolan_testkit::Profiles;

fn fixtures(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-data/sites")
        .join(kind)
}

/// Every `*.yaml` of a fixture folder, sorted, as (file name, text).
fn yaml_files(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .expect("fixture names are UTF-8")
                .to_string();
            let text = fs::read_to_string(&p).expect("fixture is readable");
            (name, text)
        })
        .collect();
    files.sort();
    files
}

/// The shipped catalog, and profile files relative to the site's folder.
fn profiles(kind: &str) -> Profiles {
    Profiles::catalog().files(&fixtures(kind))
}

/// One expected or actual diagnostic: `code line:column severity`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Expect {
    code: String,
    line: u64,
    column: u64,
    severity: String,
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}:{} {}",
            self.code, self.line, self.column, self.severity
        )
    }
}

impl From<&Diagnostic> for Expect {
    fn from(d: &Diagnostic) -> Self {
        Expect {
            code: d.code.to_string(),
            line: d.line,
            column: d.column,
            severity: match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            }
            .to_string(),
        }
    }
}

/// Reads `expected.txt`: `FILE  CODE LINE:COLUMN SEVERITY` per line; `#` starts a comment.
fn expectations(path: &Path) -> BTreeMap<String, Vec<Expect>> {
    let text = fs::read_to_string(path).expect("expected.txt is readable");
    let mut out: BTreeMap<String, Vec<Expect>> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [file, code, at, severity] = fields.as_slice() else {
            panic!(
                "expected.txt:{}: want `FILE CODE LINE:COL SEVERITY`, got `{line}`",
                n + 1
            );
        };
        let (l, c) = at
            .split_once(':')
            .unwrap_or_else(|| panic!("expected.txt:{}: `{at}` is not LINE:COL", n + 1));
        assert!(
            matches!(*severity, "error" | "warning"),
            "expected.txt:{}: severity `{severity}`",
            n + 1
        );
        out.entry(file.to_string()).or_default().push(Expect {
            code: code.to_string(),
            line: l.parse().expect("line is a number"),
            column: c.parse().expect("column is a number"),
            severity: severity.to_string(),
        });
    }
    out
}

/// Compiles one site fixture: whether it was accepted, and its diagnostics.
fn diagnose(kind: &str, name: &str, text: &str) -> (bool, Vec<Diagnostic>) {
    match site_text(name, text, &profiles(kind)) {
        Ok(l) => (true, l.warnings),
        Err(d) => (false, d),
    }
}

#[test]
fn every_bad_site_reports_exactly_its_expected_diagnostics() {
    let dir = fixtures("bad");
    let files = yaml_files(&dir);
    assert!(
        files.len() >= 14,
        "the bad sites are there ({})",
        files.len()
    );
    let mut expected = expectations(&dir.join("expected.txt"));
    let mut failures = Vec::new();
    for (name, text) in &files {
        let (accepted, diags) = diagnose("bad", name, text);
        let mut got: Vec<Expect> = diags.iter().map(Expect::from).collect();
        got.sort();
        let got_lines: Vec<String> = got.iter().map(|e| format!("{name}  {e}")).collect();
        let Some(mut want) = expected.remove(name) else {
            failures.push(format!(
                "{name}: no line in expected.txt; it reports:\n{}",
                got_lines.join("\n")
            ));
            continue;
        };
        want.sort();
        if got != want {
            failures.push(format!(
                "{name}: diagnostics differ\n  want: {}\n  got:\n{}\n  messages:\n{}",
                want.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                got_lines.join("\n"),
                diags
                    .iter()
                    .map(|d| format!("    {d}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
            continue;
        }
        let has_error = want.iter().any(|e| e.severity == "error");
        if accepted == has_error {
            failures.push(format!(
                "{name}: accepted={accepted} but expected errors={has_error}"
            ));
        }
        for d in &diags {
            if d.file != *name || d.message.trim().is_empty() || d.help.trim().is_empty() {
                failures.push(format!(
                    "{name}: diagnostic without file, message or help: {d:?}"
                ));
            }
        }
    }
    for orphan in expected.keys() {
        failures.push(format!("expected.txt names {orphan}, which is not in bad/"));
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n\n"));
}

#[test]
fn bad_sites_cover_the_required_codes() {
    let dir = fixtures("bad");
    let expected = expectations(&dir.join("expected.txt"));
    for code in [
        "unbound-role",
        "missing-param",
        "unspecified-port",
        "unspecified-protocol",
        "missing-mode",
        "unknown-mode",
        "address-outside-zone",
        "address-conflict",
        "unknown-profile",
        "unknown-zone",
        "unknown-feature",
        "unknown-flow",
        "invalid-binding",
        "unknown-field",
        "invalid-param",
        "no-devices",
        "nothing-allowed",
        "unused-feature",
        "unused-param",
        "unused-version",
        "any-peer",
        "invalid-mac",
        "zone-without-interface",
    ] {
        // Each code has a fixture named after it, and that fixture reports it.
        let file = format!("{code}.yaml");
        let reports = expected
            .get(&file)
            .is_some_and(|v| v.iter().any(|e| e.code == code));
        assert!(reports, "{file} is missing or does not report `{code}`");
    }
}

/// A site's shape errors point to the site format, not the profile's (issue 13 item 3, issue
/// 19): the whole help text, as a person reads it, of a real bad site file each; and the
/// profile's own shape errors still name the profile format.
#[test]
fn shape_errors_name_the_schema_and_document_of_their_format() {
    let bad = fixtures("bad");
    for (file, help) in [
        (
            "unknown-field.yaml",
            "did you mean `addresses`? remove the field or fix its spelling; \
             `portolan schema site` lists every field",
        ),
        (
            "invalid-type.yaml",
            "see docs/site-format.md for the field's type",
        ),
    ] {
        let text = fs::read_to_string(bad.join(file)).expect("fixture");
        let (ok, diags) = diagnose("bad", file, &text);
        assert!(!ok, "{file} is refused");
        assert_eq!(diags.len(), 1, "{file}: {diags:#?}");
        assert_eq!(diags[0].help, help, "{file}");
    }
    let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-data/profiles/bad");
    let file = "unknown-field-top.yaml";
    let text = fs::read_to_string(profiles.join(file)).expect("fixture");
    let Err(diags) = portolan_model::validate::profile_text(file, &text) else {
        panic!("{file} is refused");
    };
    assert_eq!(
        diags[0].help,
        "remove the field or fix its spelling; `portolan schema profile` lists every field",
        "{diags:#?}"
    );
}

#[test]
fn every_good_site_compiles() {
    let files = yaml_files(&fixtures("good"));
    assert!(
        files.len() >= 4,
        "the good sites are there ({})",
        files.len()
    );
    for (name, text) in &files {
        let (accepted, diags) = diagnose("good", name, text);
        assert!(
            accepted,
            "{name} is refused:\n{}",
            diags.iter().map(|d| format!("  {d}\n")).collect::<String>()
        );
        for d in &diags {
            // `any` bindings warn by design. Hostname peers warn where the name sets cannot
            // fill at run time: DNS not on this firewall (dual-stack), or a device without a
            // DNS flow bound to names (bindings). Nothing else may warn.
            let expected = d.code == "any-peer"
                || (d.code == "names-need-dns"
                    && matches!(name.as_str(), "dual-stack.yaml" | "bindings.yaml"));
            assert!(expected, "{name}: {d}");
        }
    }
}

#[test]
fn name_sets_that_cannot_fill_are_warned_about() {
    let files = yaml_files(&fixtures("good"));
    let codes = |file: &str| -> Vec<&'static str> {
        let (_, text) = files.iter().find(|(n, _)| n == file).expect("fixture");
        diagnose("good", file, text)
            .1
            .iter()
            .map(|d| d.code.as_str())
            .collect()
    };
    // DNS served elsewhere: the firewall's name sets never fill at run time.
    assert!(codes("dual-stack.yaml").contains(&"names-need-dns"));
    // A device bound to names without a DNS flow of its own.
    assert!(codes("bindings.yaml").contains(&"names-need-dns"));
    // DNS on the firewall and DNS flows present: no such warning.
    assert!(!codes("minimal.yaml").contains(&"names-need-dns"));
}

/// The site values of `good/typed-params.yaml` reach the rules exactly as written, read by hand
/// from the fixture and `test-data/sites/profiles/typed-params.yaml`: one port written as a
/// string, a port list written as one string, a host label before the profile's domain, a
/// string in a hostname, and the region keeping one of two regional flows.
#[test]
fn site_values_reach_the_rules_as_written() {
    let files = yaml_files(&fixtures("good"));
    let (_, text) = files
        .iter()
        .find(|(n, _)| n == "typed-params.yaml")
        .expect("fixture");
    let policy = match site_text("typed-params.yaml", text, &profiles("good")) {
        Ok(l) => l.value,
        Err(d) => panic!("refused: {d:?}"),
    };
    // (flow, protocol, ports as lo-hi, peer names) of each rule of a group, in profile order.
    type Seen = (String, u8, Vec<(u16, u16)>, Vec<String>);
    let rules = |group: &str| -> Vec<Seen> {
        policy
            .rules
            .iter()
            .filter(|r| r.group == group)
            .map(|r| {
                (
                    r.flow.clone(),
                    r.protocol.number(),
                    r.ports.iter().map(|p| (p.lo, p.hi)).collect(),
                    r.peers.names.clone(),
                )
            })
            .collect()
    };
    let s = |x: &str| x.to_string();
    assert_eq!(
        rules("typed-eu"),
        vec![
            (s("dns"), 17, vec![(53, 53)], vec![]),
            (
                s("agent"),
                17,
                vec![(5140, 5140)],
                vec![s("relay1.example.org")]
            ),
            (
                s("extras"),
                6,
                vec![(443, 443), (2195, 2196), (5223, 5223)],
                vec![s("relay1.example.org")]
            ),
            (
                s("eu-telemetry"),
                6,
                vec![(443, 443)],
                vec![s("plant7.cloud.example.com")]
            ),
            // version 1.5 satisfies `< 2`
            (
                s("legacy"),
                17,
                vec![(7000, 7000)],
                vec![s("relay1.example.org")]
            ),
        ],
        "us-telemetry is for the other region"
    );
    assert_eq!(
        rules("wcc"),
        vec![(s("ser2net"), 6, vec![(4001, 4001), (4003, 4004)], vec![])]
    );
}

/// A multi-homed device (`good/interfaces.yaml` with profile `two-zone-gateway`): one group per
/// interface, each with that interface's zone, address and MAC, and the rules of that
/// interface's flows only — read off the profile by hand: `cloud-https` on `it`, `iec104` on
/// `ot`, `syslog` on both.
#[test]
fn a_multi_homed_device_is_one_group_per_interface() {
    let files = yaml_files(&fixtures("good"));
    let (_, text) = files
        .iter()
        .find(|(n, _)| n == "interfaces.yaml")
        .expect("fixture");
    let policy = match site_text("interfaces.yaml", text, &profiles("good")) {
        Ok(l) => l.value,
        Err(d) => panic!("refused: {d:?}"),
    };
    // (id, interface, zone, addresses, number of MACs) of each group.
    type Seen = (String, Option<String>, String, Vec<String>, usize);
    let groups: Vec<Seen> = policy
        .groups
        .iter()
        .map(|g| {
            (
                g.id.clone(),
                g.interface.clone(),
                g.zone.clone(),
                g.addresses.iter().map(ToString::to_string).collect(),
                g.macs.len(),
            )
        })
        .collect();
    let s = |x: &str| x.to_string();
    assert_eq!(
        groups,
        vec![
            (
                s("gw.it"),
                Some(s("it")),
                s("office"),
                vec![s("10.1.0.5/32")],
                0
            ),
            (
                s("gw.ot"),
                Some(s("ot")),
                s("field"),
                vec![s("192.168.10.5/32")],
                1
            ),
        ]
    );
    assert!(policy.groups.iter().all(|g| g.device() == "gw"));
    let flows = |group: &str| -> Vec<(String, String)> {
        policy
            .rules
            .iter()
            .filter(|r| r.group == group)
            .map(|r| {
                let peers: Vec<String> = r.peers.prefixes.iter().map(ToString::to_string).collect();
                (r.flow.clone(), peers.join(","))
            })
            .collect()
    };
    assert_eq!(
        flows("gw.it"),
        vec![
            (s("cloud-https"), s("198.51.100.30/32")),
            (s("syslog"), s("10.3.0.20/32"))
        ]
    );
    assert_eq!(
        flows("gw.ot"),
        vec![
            (s("iec104"), s("10.3.0.10/32")),
            (s("syslog"), s("10.3.0.20/32"))
        ]
    );
}
