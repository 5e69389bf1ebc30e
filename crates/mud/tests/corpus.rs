//! The real-world MUD corpus (`shared/interop/mud`, beside the repository): every file has an
//! expected outcome in `test-data/mud/corpus-expectations.tsv` — imported with how many flows
//! and which warning codes, or refused with which error codes — and every file that imports
//! survives import → export → import with the same flows.
//!
//! A file in the folder without an expectation fails the test, as does an expectation without
//! a file. After a deliberate change, `PORTOLAN_BLESS=1 cargo test -p portolan-mud --test
//! corpus` rewrites the table; review its diff.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use portolan_model::Profile;
use portolan_mud::{export, import, ExportOptions, ImportOptions, MudError, Problem};

/// `shared/interop/mud` beside the repository clone, or `PORTOLAN_MUD_CORPUS` (a worktree
/// kept elsewhere than the clone).
fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("PORTOLAN_MUD_CORPUS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/interop/mud"),
        PathBuf::from,
    );
    assert!(
        dir.is_dir(),
        "the MUD corpus is missing: expected {} (shared/ beside the repository clone)",
        dir.display()
    );
    dir
}

fn expectations_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-data/mud/corpus-expectations.tsv")
}

fn corpus_files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<PathBuf> = fs::read_dir(dir)
            .expect("readable corpus folder")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p
                    .strip_prefix(base)
                    .expect("under base")
                    .to_string_lossy()
                    .replace('\\', "/");
                if rel != "README.md" && rel != "SOURCES.txt" {
                    out.push(rel);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

/// One line of the table: outcome, flows, codes.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    outcome: String,
    flows: String,
    codes: String,
    /// `ok` or `refused` by the strict reader (`--strict`).
    strict: String,
}

fn outcome_of(
    result: &Result<portolan_mud::Imported, MudError>,
    strict: &Result<portolan_mud::Imported, MudError>,
) -> Outcome {
    let strict = if strict.is_ok() { "ok" } else { "refused" }.to_string();
    match result {
        Ok(i) => {
            let codes: BTreeSet<&str> = i.warnings.iter().map(|w| w.code.as_str()).collect();
            Outcome {
                outcome: if codes.is_empty() {
                    "imported".into()
                } else {
                    "imported-with-warnings".into()
                },
                flows: i.profile.flows.len().to_string(),
                codes: if codes.is_empty() {
                    "-".into()
                } else {
                    codes.into_iter().collect::<Vec<_>>().join(",")
                },
                strict,
            }
        }
        Err(e) => {
            let codes: BTreeSet<String> = match e {
                MudError::Refused { problems } => problems
                    .iter()
                    .filter(|p| p.is_error())
                    .map(|p| format!("{}@{}", p.code, p.path))
                    .collect(),
                MudError::Json { path, .. } => [format!("json@{path}")].into(),
                MudError::Profile { diagnostics, .. } => diagnostics
                    .iter()
                    .map(|d| format!("profile-{}", d.code))
                    .collect(),
                other => [other.to_string()].into(),
            };
            Outcome {
                outcome: "refused".into(),
                flows: "-".into(),
                codes: codes.into_iter().collect::<Vec<_>>().join(","),
                strict,
            }
        }
    }
}

fn read_table(path: &Path) -> BTreeMap<String, Outcome> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 5, "malformed expectation line: {l}");
            (
                cols[0].to_string(),
                Outcome {
                    outcome: cols[1].into(),
                    flows: cols[2].into(),
                    codes: cols[3].into(),
                    strict: cols[4].into(),
                },
            )
        })
        .collect()
}

fn write_table(path: &Path, rows: &BTreeMap<String, Outcome>) {
    let mut out = String::from(
        "# Expected outcome of `portolan mud import` for each file of shared/interop/mud.\n\
         # Columns (tab-separated): file, outcome (imported | imported-with-warnings | refused),\n\
         # number of flows, the warning codes (or, when refused, error-code@json-path), and\n\
         # whether the strict reader (--strict) accepts the file (ok | refused).\n\
         # Regenerate with PORTOLAN_BLESS=1 cargo test -p portolan-mud --test corpus; review the diff.\n",
    );
    for (f, o) in rows {
        out.push_str(&format!(
            "{f}\t{}\t{}\t{}\t{}\n",
            o.outcome, o.flows, o.codes, o.strict
        ));
    }
    fs::write(path, out).expect("writes the expectations");
}

/// What a flow is, for comparing two imports: everything but its citations.
fn flows_of(p: &Profile) -> Vec<String> {
    p.flows
        .iter()
        .map(|f| {
            let mut f = f.clone();
            f.source.clear();
            let peer = p.endpoint(f.peer()).map(|e| {
                let mut e = e.clone();
                e.source.clear();
                format!("{e:?}")
            });
            format!("{f:?} {peer:?}")
        })
        .collect()
}

#[test]
fn every_corpus_file_has_its_expected_outcome() {
    let dir = corpus_dir();
    let files = corpus_files(&dir);
    assert!(
        files.len() >= 50,
        "the corpus holds 50 files, found {}",
        files.len()
    );
    let mut got = BTreeMap::new();
    for f in &files {
        let bytes = fs::read(dir.join(f)).expect("readable");
        let lenient = import(
            &bytes,
            &ImportOptions {
                strict: false,
                file: f.clone(),
            },
        );
        let strict = import(
            &bytes,
            &ImportOptions {
                strict: true,
                file: f.clone(),
            },
        );
        got.insert(f.clone(), outcome_of(&lenient, &strict));
    }
    let path = expectations_path();
    if std::env::var_os("PORTOLAN_BLESS").is_some() {
        write_table(&path, &got);
    }
    let want = read_table(&path);
    let mut problems = Vec::new();
    for (f, o) in &got {
        match want.get(f) {
            None => problems.push(format!("{f}: no expectation (got {o:?})")),
            Some(w) if w != o => problems.push(format!("{f}: expected {w:?}, got {o:?}")),
            Some(_) => {}
        }
    }
    for f in want.keys() {
        if !got.contains_key(f) {
            problems.push(format!("{f}: expected, but not in the corpus"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn imported_corpus_files_survive_export_and_import_again() {
    let dir = corpus_dir();
    let mut checked = 0;
    for f in corpus_files(&dir) {
        let bytes = fs::read(dir.join(&f)).expect("readable");
        let opts = ImportOptions {
            strict: false,
            file: f.clone(),
        };
        let Ok(first) = import(&bytes, &opts) else {
            continue;
        };
        let url = first
            .profile
            .source_doc("mud")
            .and_then(|s| s.url.clone())
            .expect("the MUD URL is the profile's source");
        let url = if url.starts_with("https://") {
            url
        } else {
            format!("https://example.com/{}", first.profile.id)
        };
        let out = export(&first.profile, &ExportOptions::new(url))
            .unwrap_or_else(|e| panic!("{f}: export fails: {e}"));
        let second = import(out.json.as_bytes(), &opts)
            .unwrap_or_else(|e| panic!("{f}: re-import fails: {e:?}\n{}", out.json));
        assert!(
            second.extension_used,
            "{f}: the re-import did not use the extension: {:?}",
            second.warnings
        );
        assert!(
            !second
                .warnings
                .iter()
                .any(|w| w.code == "extension-mismatch"),
            "{f}: {:?}",
            second.warnings
        );
        assert_eq!(
            flows_of(&first.profile),
            flows_of(&second.profile),
            "{f}: the flows changed"
        );
        let third = import(
            export(&second.profile, &ExportOptions::new(&out.mud.mud.mud_url))
                .expect("exports again")
                .json
                .as_bytes(),
            &opts,
        )
        .expect("imports again");
        assert_eq!(second.profile, third.profile, "{f}: not stable");
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} corpus files imported");
}

/// The paths of a file's problems that do not resolve in the file as written.
fn unresolved<'a>(doc: &serde_json::Value, problems: &'a [Problem]) -> Vec<&'a Problem> {
    problems
        .iter()
        .filter(|p| doc.pointer(&p.path).is_none())
        .collect()
}

/// Every warning (lenient) and every error (strict) of a corpus file names a JSON Pointer that
/// resolves in the file as the user wrote it — not in the tree the repair made of it, whose
/// names (`…:acls`, `aces`, `tcp` built from draft port ranges, …) the file may not have.
///
/// Resolution is exact: where the repair inserted or removed a node (a missing mandatory leaf,
/// a `tcp` container built from draft port ranges, an ACL container the file lacks), the
/// importer names the parent the node is (or would be) in, so that path resolves too.
#[test]
fn every_reported_path_resolves_in_the_file_as_written() {
    let dir = corpus_dir();
    let mut checked = 0;
    let mut bad = Vec::new();
    for f in corpus_files(&dir) {
        let bytes = fs::read(dir.join(&f)).expect("readable");
        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        for strict in [false, true] {
            let problems = match import(
                &bytes,
                &ImportOptions {
                    strict,
                    file: f.clone(),
                },
            ) {
                Ok(i) => i.warnings,
                Err(MudError::Refused { problems }) => problems,
                Err(MudError::Json { path, code, reason }) => vec![Problem {
                    severity: portolan_model::Severity::Error,
                    code,
                    path,
                    message: reason,
                }],
                Err(_) => Vec::new(),
            };
            checked += problems.len();
            for p in unresolved(&doc, &problems) {
                bad.push(format!("{f} (strict: {strict}): {p}"));
            }
        }
    }
    assert!(checked >= 100, "only {checked} problems checked");
    assert!(bad.is_empty(), "paths not in the file:\n{}", bad.join("\n"));
}

/// samsungsmartcamMud.json has the draft `ietf-access-control-list:access-lists` container;
/// warnings from every pass (repair, ACE reading, flow building) name it, never `…:acls`.
#[test]
fn samsung_warnings_name_the_draft_container_throughout() {
    let f = "iot-onboarding+mudfiles/unsw/samsungsmartcamMud.json";
    let bytes = fs::read(corpus_dir().join(f)).expect("readable");
    let doc: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    let i = import(
        &bytes,
        &ImportOptions {
            strict: false,
            file: f.into(),
        },
    )
    .expect("imports");
    let draft = "/ietf-access-control-list:access-lists";
    for w in &i.warnings {
        assert!(
            w.path == draft || w.path.starts_with(&format!("{draft}/")),
            "{w}: not in the container the file has"
        );
        assert!(!w.path.contains(":acls"), "{w}");
    }
    assert!(unresolved(&doc, &i.warnings).is_empty());
    // One warning of each pass, at the node the file has.
    for (code, path) in [
        ("draft-acl-container", draft.to_string()),
        (
            "hex-ethertype",
            format!("{draft}/acl/0/aces/ace/5/matches/eth/ethertype"),
        ),
        (
            "eth-in-ip-acl",
            format!("{draft}/acl/0/aces/ace/5/matches/eth"),
        ),
        (
            "unregistered-controller",
            format!("{draft}/acl/0/aces/ace/14/matches/ietf-mud:mud/controller"),
        ),
        ("any-port", format!("{draft}/acl/0/aces/ace/12")),
    ] {
        assert!(
            i.warnings.iter().any(|w| w.code == code && w.path == path),
            "no {code} at {path}: {:#?}",
            i.warnings
        );
        assert!(doc.pointer(&path).is_some(), "{path}");
    }
}
