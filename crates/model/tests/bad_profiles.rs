//! The fixture folders `test-data/profiles/{bad,good}`.
//!
//! Every `bad/*.yaml` must report exactly the diagnostics `bad/expected.txt` lists for it:
//! the same codes at the same line:column with the same severity, all in one run, nothing more
//! and nothing less. A fixture without an expectation (or an expectation without a fixture)
//! fails the test, so the folder and the table cannot drift apart. Every `good/*.yaml` must be
//! valid without a warning.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use portolan_model::validate::profile_text;
use portolan_model::{
    Cast, Diagnostic, Listen, ListenPorts, Listens, ParamValue, PortItem, PortSpec, Profile,
    Protocol, Severity,
};

fn fixtures(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-data/profiles")
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

/// Validates one fixture and returns its diagnostics, whether the file was accepted or not.
fn diagnose(name: &str, text: &str) -> (bool, Vec<Diagnostic>) {
    match profile_text(name, text) {
        Ok(l) => (true, l.warnings),
        Err(d) => (false, d),
    }
}

#[test]
fn every_bad_fixture_reports_exactly_its_expected_diagnostics() {
    let dir = fixtures("bad");
    let files = yaml_files(&dir);
    assert!(
        files.len() >= 30,
        "the bad fixtures are there ({})",
        files.len()
    );
    let mut expected = expectations(&dir.join("expected.txt"));
    let mut failures = Vec::new();
    for (name, text) in &files {
        let Some(mut want) = expected.remove(name) else {
            failures.push(format!("{name}: no line in expected.txt"));
            continue;
        };
        want.sort();
        let (accepted, diags) = diagnose(name, text);
        let mut got: Vec<Expect> = diags.iter().map(Expect::from).collect();
        got.sort();
        if got != want {
            let got_lines: Vec<String> = got.iter().map(|e| format!("{name}  {e}")).collect();
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
        // A file is rejected exactly when one of its diagnostics is an error.
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
fn bad_fixtures_cover_the_required_codes() {
    let expected = expectations(&fixtures("bad").join("expected.txt"));
    let codes: Vec<&str> = expected
        .values()
        .flatten()
        .map(|e| e.code.as_str())
        .collect();
    for code in [
        "unknown-field",
        "port-out-of-range",
        "reversed-range",
        "ports-not-allowed",
        "ports-required",
        "unknown-endpoint",
        "unknown-mode",
        "unknown-param",
        "param-type-mismatch",
        "duplicate-flow-id",
        "wildcard-not-leftmost",
        "invalid-domain",
        "invalid-hostname",
        "invalid-address",
        "empty-alternative",
        "missing-source",
        "unknown-source",
        "unused-endpoint",
        "missing-version",
        "unsupported-version",
        "initiation-mismatch",
        "no-device-side",
        "unknown-feature",
        "invalid-version",
        "inside-port-mismatch",
        "unknown-flow",
        "invalid-endpoint",
        "yaml-syntax",
        "unknown-region",
        "unused-feature",
        "unused-param",
    ] {
        assert!(codes.contains(&code), "no bad fixture expects `{code}`");
    }
}

#[test]
fn several_problems_are_reported_in_one_run() {
    let dir = fixtures("bad");
    let text = fs::read_to_string(dir.join("several-problems.yaml")).expect("fixture");
    let (accepted, diags) = diagnose("several-problems.yaml", &text);
    assert!(!accepted);
    let mut codes: Vec<&str> = diags.iter().map(|d| d.code.as_str()).collect();
    codes.sort_unstable();
    codes.dedup();
    // Seven different families from one file, not just the first one met.
    assert_eq!(
        codes,
        [
            "initiation-mismatch",
            "invalid-hostname",
            "missing-source",
            "port-out-of-range",
            "ports-not-allowed",
            "reversed-range",
            "unknown-endpoint",
            "unknown-feature",
            "unknown-source",
            "unused-endpoint",
        ]
    );
    // Sorted by position, as `Sink::finish` promises.
    let positions: Vec<(u64, u64)> = diags.iter().map(|d| (d.line, d.column)).collect();
    let mut sorted = positions.clone();
    sorted.sort_unstable();
    assert_eq!(positions, sorted);
}

#[test]
fn warnings_alone_leave_a_profile_usable() {
    let text = fs::read_to_string(fixtures("bad").join("unused-endpoint.yaml")).expect("fixture");
    let loaded = profile_text("unused-endpoint.yaml", &text).expect("warnings are not errors");
    assert_eq!(loaded.value.endpoints.len(), 2);
    assert_eq!(loaded.warnings.len(), 1);
    assert_eq!(loaded.warnings[0].code, "unused-endpoint");
    assert!(loaded.warnings[0].message.contains("`backup`"));
}

fn good(name: &str) -> Profile {
    let text = fs::read_to_string(fixtures("good").join(name)).expect("fixture");
    match profile_text(name, &text) {
        Ok(l) => {
            assert!(l.warnings.is_empty(), "{name}: {:?}", l.warnings);
            l.value
        }
        Err(d) => panic!(
            "{name} must be valid:\n{}",
            d.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

fn flow<'a>(p: &'a Profile, id: &str, mode: Option<&'a str>) -> &'a portolan_model::Flow {
    p.flows_in(mode)
        .find(|f| f.id == id)
        .unwrap_or_else(|| panic!("{}: no flow {id} in {mode:?}", p.id))
}

#[test]
fn every_good_fixture_is_valid_without_warnings() {
    let files = yaml_files(&fixtures("good"));
    assert!(files.len() >= 7, "the good fixtures are there");
    for (name, _) in &files {
        let p = good(name);
        assert_eq!(
            format!("{}.yaml", p.id),
            *name,
            "fixture named after its id"
        );
    }
}

#[test]
fn good_protocol_by_number() {
    let p = good("protocol-number.yaml");
    let l2tp = flow(&p, "l2tpv3", None);
    assert_eq!(l2tp.protocol, Protocol::Number(115));
    assert_eq!(l2tp.ports, PortSpec::None);
    let tcp = flow(&p, "tcp-by-number", None);
    assert_eq!(tcp.protocol, Protocol::Tcp);
    assert_eq!(tcp.ports, PortSpec::List(vec![PortItem::Single(443)]));
    assert_eq!(flow(&p, "esp-by-number", None).protocol, Protocol::Esp);
}

#[test]
fn good_multicast_with_group() {
    let p = good("multicast-group.yaml");
    let mdns = flow(&p, "mdns", None);
    assert_eq!(mdns.cast, Cast::Multicast);
    assert_eq!(mdns.group, Some("224.0.0.251".parse().expect("address")));
    assert_eq!(mdns.src_ports, PortSpec::List(vec![PortItem::Single(5353)]));
    let v6 = flow(&p, "mdns6", None);
    assert_eq!(v6.group, Some("ff02::fb".parse().expect("address")));
    let bc = flow(&p, "discovery", None);
    assert_eq!(bc.cast, Cast::Broadcast);
    assert_eq!(bc.group, None);
}

#[test]
fn good_param_refs() {
    let p = good("param-refs.yaml");
    assert_eq!(
        flow(&p, "agent", None).ports,
        PortSpec::List(vec![PortItem::Param("agent_port".into())])
    );
    assert_eq!(
        flow(&p, "mixed", None).ports,
        PortSpec::List(vec![
            PortItem::Single(443),
            PortItem::Param("extra_ports".into()),
            PortItem::Range(3001, 3003),
        ])
    );
    assert_eq!(
        flow(&p, "vpn", None).protocol,
        Protocol::Param("transport".into())
    );
    let cloud = p.endpoint("cloud").expect("endpoint");
    assert_eq!(
        cloud.hosts,
        ["api.{region}.example.com", "{tenant}.{region}.example.net"]
    );
    assert_eq!(
        p.param("region").and_then(|x| x.default.clone()),
        Some(ParamValue::Text("eu-west-1".into()))
    );
    assert_eq!(
        p.param("agent_port").and_then(|x| x.default.clone()),
        Some(ParamValue::Ports(PortSpec::List(vec![PortItem::Single(
            9000
        )])))
    );
    assert_eq!(
        p.param("extra_ports").and_then(|x| x.default.clone()),
        Some(ParamValue::Ports(PortSpec::List(vec![
            PortItem::Single(8000),
            PortItem::Range(8100, 8199)
        ])))
    );
    let Listens::Entries(l) = &p.listens else {
        panic!("listens entries")
    };
    assert_eq!(l[0].protocol, Protocol::Param("transport".into()));
}

#[test]
fn good_listens_with_none() {
    let p = good("listens-none-entries.yaml");
    let Listens::Entries(l) = &p.listens else {
        panic!("listens entries")
    };
    let summary: Vec<(Protocol, ListenPorts, Option<&str>)> = l
        .iter()
        .map(
            |Listen {
                 protocol,
                 ports,
                 flow,
                 ..
             }| (protocol.clone(), ports.clone(), flow.as_deref()),
        )
        .collect();
    assert_eq!(
        summary,
        [
            (
                Protocol::Tcp,
                ListenPorts::Ports(PortSpec::List(vec![PortItem::Single(22)])),
                Some("ssh")
            ),
            (Protocol::Udp, ListenPorts::Closed, None),
            (Protocol::Sctp, ListenPorts::Closed, None),
            (
                Protocol::Tcp,
                ListenPorts::Ports(PortSpec::Unspecified),
                None
            ),
        ]
    );
}

#[test]
fn good_alternatives() {
    let p = good("alternatives.yaml");
    let groups: Vec<(&str, Vec<&str>)> = p
        .alternatives
        .iter()
        .map(|a| (a.id.as_str(), a.flows.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(
        groups,
        [
            ("tcp", vec!["cloud-443", "cloud-4321"]),
            ("any-4321", vec!["cloud-4321", "cloud-udp"]),
        ]
    );
    let cloud = p.endpoint("cloud").expect("endpoint");
    assert!(cloud.addresses_volatile);
    assert_eq!(cloud.addresses.len(), 2);
}

#[test]
fn good_inside_tunnels() {
    let p = good("inside-tunnels.yaml");
    let tls = flow(&p, "iec104", Some("tls"))
        .inside
        .clone()
        .expect("inside");
    assert_eq!((tls.flow.as_str(), tls.port), ("tunnel", Some(3002)));
    let single = flow(&p, "sftp", Some("tls"))
        .inside
        .clone()
        .expect("inside");
    assert_eq!(single.port, Some(4000));
    let ipsec = flow(&p, "iec104", Some("ipsec"))
        .inside
        .clone()
        .expect("inside");
    assert_eq!((ipsec.flow.as_str(), ipsec.port), ("tunnel", None));
    assert_eq!(flow(&p, "tunnel", Some("ipsec")).protocol, Protocol::Esp);
}

#[test]
fn good_same_flow_id_in_two_modes() {
    let p = good("same-id-two-modes.yaml");
    let ipsec: Vec<&str> = p.flows_in(Some("ipsec")).map(|f| f.id.as_str()).collect();
    let tls: Vec<&str> = p.flows_in(Some("tls")).map(|f| f.id.as_str()).collect();
    assert_eq!((ipsec, tls), (vec!["i9"], vec!["i9"]));
    assert_eq!(
        flow(&p, "i9", Some("tls")).description.as_deref(),
        Some("as written in the TLS table")
    );
}
