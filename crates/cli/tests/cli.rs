//! End-to-end tests of the `portolan` binary: exit codes, the JSON shapes scripts rely on, the
//! diagnostics people read, and insta snapshots of `show` and `doc` for every catalog profile
//! (all modes, then each mode). Snapshots live in `tests/snapshots/`; review changes with
//! `cargo insta review` (or `INSTA_UPDATE=always cargo test -p portolan` and read the diff).

use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use portolan_model::catalog::Catalog;
use serde_json::Value;

/// The five shipped profiles, in catalog order (sorted by file name).
const IDS: [&str; 5] = [
    "elseta-wcc-lite",
    "izuma-device-management",
    "oscar-templog-gateway",
    "thingpark-lrr",
    "ubisense-dimension4-sensor",
];

/// The ThingPark seed tables' row ids per mode (the TLS table's outer rows first).
const TP_ROWS: [(&str, &[&str]); 4] = [
    (
        "ipsec",
        &["i6", "i7", "i7a", "i8a", "i10", "i11", "i11b", "i9", "i17"],
    ),
    ("tls", &["i7a", "i8a", "i10", "i11", "i11b", "i9", "i17"]),
    (
        "plain",
        &[
            "i10", "i11", "i9", "i14", "i15", "i15b", "i17", "i17b", "i17c", "i17d",
        ],
    ),
    ("basics-station", &["i10", "i11", "i11c", "i11d", "i17"]),
];

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_in(dir: Option<&Path>, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = cargo_bin_cmd!("portolan");
    cmd.args(args);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("portolan runs");
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(out.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("UTF-8 stderr"),
    }
}

fn run(args: &[&str]) -> Run {
    run_in(None, args, &[])
}

/// Runs a command that must succeed and returns its stdout.
fn ok(args: &[&str]) -> String {
    let r = run(args);
    assert_eq!(r.code, 0, "portolan {args:?} failed:\n{}", r.stderr);
    r.stdout
}

fn json(args: &[&str]) -> Value {
    let out = ok(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} prints JSON: {e}\n{out}"))
}

fn fixtures(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-data/profiles")
        .join(kind)
}

// ---------------------------------------------------------------------------------------------
// catalog list

#[test]
fn catalog_list_table_names_every_profile() {
    let out = ok(&["catalog", "list"]);
    let header = out.lines().nth(1).expect("a header row");
    for col in ["id", "vendor", "product", "modes", "flows"] {
        assert!(header.contains(col), "header has `{col}`: {header}");
    }
    for id in IDS {
        let line = out
            .lines()
            .find(|l| l.contains(&format!(" {id} ")))
            .unwrap_or_else(|| panic!("no row for {id}:\n{out}"));
        if id == "thingpark-lrr" {
            // The modes cell wraps within 80 columns (issue 19); it starts on the id's line.
            assert!(line.contains("ipsec, tls,"), "{line}");
            assert!(line.contains(" 34 "), "34 flows: {line}");
        }
    }
}

#[test]
fn catalog_list_json_lists_the_five_ids() {
    let v = json(&["catalog", "list", "--format", "json"]);
    assert_eq!(v["format"], "portolan/catalog/v1");
    let rows = v["profiles"].as_array().expect("an array");
    let ids: Vec<&str> = rows.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, IDS);
    for r in rows {
        assert!(r["vendor"].is_string() && r["product"].is_string());
        assert!(r["modes"].is_array());
        assert!(r["flows"].as_u64().is_some_and(|n| n > 0));
        assert_eq!(
            r["origin"].as_str(),
            Some(format!("catalog/{}.yaml", r["id"].as_str().expect("id")).as_str())
        );
    }
    let tp = &rows[3];
    assert_eq!(
        tp["modes"],
        serde_json::json!(["ipsec", "tls", "plain", "basics-station"])
    );
}

// ---------------------------------------------------------------------------------------------
// show

#[test]
fn show_json_shape() {
    let v = json(&[
        "show",
        "thingpark-lrr",
        "--mode",
        "ipsec",
        "--format",
        "json",
    ]);
    assert_eq!(v["id"], "thingpark-lrr");
    assert_eq!(v["mode"], "ipsec");
    assert_eq!(v["vendor"], "Actility");
    let flows = v["flows"].as_array().expect("flows array");
    let ids: Vec<&str> = flows.iter().filter_map(|f| f["id"].as_str()).collect();
    assert_eq!(ids, TP_ROWS[0].1);
    assert_eq!(v["format"], "portolan/show/v1");
    for f in flows {
        let id = f["id"].as_str().expect("id");
        let proto = f["protocol"]["name"].as_str().expect("protocol has a name");
        assert_eq!(proto, proto.to_lowercase(), "{id}: lowercase protocol");
        assert!(f["protocol"]["number"].is_u64(), "{id}: and its number");
        if let Some(ports) = f["ports"].as_array() {
            assert!(
                ports.iter().all(|p| p["lo"].is_u64() && p["hi"].is_u64()),
                "{id}: ports are ranges"
            );
        }
        assert_eq!(f["from"], "device", "{id}");
        assert!(f["to"].is_string(), "{id}");
        assert!(
            matches!(f["initiation"].as_str(), Some("device" | "peer" | "either")),
            "{id}"
        );
        assert!(f["optional"].is_boolean(), "{id}");
        assert_eq!(f["modes"], serde_json::json!(["ipsec"]), "{id}");
        assert!(
            f["source"].as_array().is_some_and(|s| !s.is_empty()),
            "{id}"
        );
    }
    let flow = |id: &str| {
        flows
            .iter()
            .find(|f| f["id"] == id)
            .unwrap_or_else(|| panic!("flow {id}"))
    };
    // The vendor's table: UDP 500 and 4500, ESP, TCP 3001-3003 (IANA: UDP 17, ESP 50).
    assert_eq!(
        flow("i6")["ports"],
        serde_json::json!([{"lo": 500, "hi": 500}, {"lo": 4500, "hi": 4500}])
    );
    assert_eq!(
        flow("i6")["protocol"],
        serde_json::json!({"name": "udp", "number": 17})
    );
    assert_eq!(flow("i6")["initiation"], "either");
    // ESP has no ports: the key is absent, never null.
    assert!(flow("i7").get("ports").is_none(), "{}", flow("i7"));
    assert_eq!(
        flow("i7")["protocol"],
        serde_json::json!({"name": "esp", "number": 50})
    );
    assert_eq!(
        flow("i7a")["ports"],
        serde_json::json!([{"lo": 3001, "hi": 3003}])
    );
    assert_eq!(
        flow("i7a")["conditions"],
        serde_json::json!([{"version": ">= 2.8"}])
    );
    assert_eq!(flow("i10")["optional"], true);
    assert_eq!(flow("i9")["to"], "support");
}

#[test]
fn show_json_tunnels_params_and_unspecified() {
    let v = json(&["show", "thingpark-lrr", "--mode", "tls", "--format", "json"]);
    let i14 = v["flows"]
        .as_array()
        .expect("flows")
        .iter()
        .find(|f| f["id"] == "i14")
        .expect("i14 in tls");
    assert_eq!(
        i14["inside"],
        serde_json::json!({"flow": "i7a", "port": 3001})
    );
    assert_eq!(i14["to"], "lrc");

    let v = json(&["show", "elseta-wcc-lite", "--format", "json"]);
    assert!(v.get("mode").is_none(), "absent, not null: {}", v["mode"]);
    let flows = v["flows"].as_array().expect("flows");
    let vpn = flows
        .iter()
        .find(|f| f["id"] == "openvpn")
        .expect("openvpn");
    assert_eq!(
        vpn["protocol"],
        serde_json::json!({"param": "openvpn_protocol"})
    );
    assert_eq!(vpn["ports"], serde_json::json!([{"param": "openvpn_port"}]));
    assert_eq!(vpn["initiation"], "peer");
    assert_eq!(vpn["modes"], serde_json::json!([]));
    let api = flows.iter().find(|f| f["id"] == "api").expect("api");
    assert_eq!(api["ports"], "unspecified");
}

#[test]
fn show_unknown_mode_exits_2_and_names_the_modes() {
    let r = run(&["show", "thingpark-lrr", "--mode", "bogus"]);
    assert_eq!(r.code, 2);
    assert!(r.stdout.is_empty(), "nothing on stdout: {}", r.stdout);
    assert!(r.stderr.contains("no mode `bogus`"), "{}", r.stderr);
    assert!(
        r.stderr.contains("ipsec, tls, plain, basics-station"),
        "{}",
        r.stderr
    );
    // A profile without modes says so.
    let r = run(&["doc", "oscar-templog-gateway", "--mode", "ipsec"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("has no modes"), "{}", r.stderr);
}

#[test]
fn show_unknown_id_exits_2_and_lists_the_catalog() {
    let r = run(&["show", "no-such-device"]);
    assert_eq!(r.code, 2);
    assert!(r.stdout.is_empty());
    assert!(
        r.stderr.contains("no profile `no-such-device`"),
        "{}",
        r.stderr
    );
    for id in IDS {
        assert!(r.stderr.contains(id), "lists {id}: {}", r.stderr);
    }
}

#[test]
fn show_reads_a_profile_file() {
    let r = run_in(
        Some(&fixtures("good")),
        &["show", "protocol-number.yaml", "--format", "json"],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(v["id"], "protocol-number");
    let l2tp = &v["flows"][0];
    assert_eq!(
        (l2tp["id"].as_str(), l2tp["protocol"]["number"].as_u64()),
        (Some("l2tpv3"), Some(115))
    );

    // An invalid file is bad input: diagnostics on stderr, exit 2.
    let r = run_in(Some(&fixtures("bad")), &["show", "unknown-mode.yaml"], &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("unknown-mode.yaml:18:18: error[unknown-mode]"),
        "{}",
        r.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// validate

#[test]
fn validate_bad_fixture_prints_file_line_col_code() {
    let r = run_in(
        Some(&fixtures("bad")),
        &["validate", "unknown-endpoint.yaml"],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "unknown-endpoint.yaml:23:9: error[unknown-endpoint]: flow `f2` names endpoint `clud`"
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("unknown-endpoint.yaml:29:11: error[unknown-endpoint]"),
        "{}",
        r.stderr
    );
    // The help line and the source line with a caret under column 9.
    assert!(
        r.stderr.contains("  help: declare it under `endpoints`"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("   |     to: clud\n   |         ^\n"),
        "{}",
        r.stderr
    );
    assert!(r
        .stdout
        .contains("unknown-endpoint.yaml: 2 error(s), 0 warning(s)"));
}

#[test]
fn validate_reports_every_file_and_exits_2_if_any_is_bad() {
    let good = fixtures("good").join("alternatives.yaml");
    let warn = fixtures("bad").join("unused-endpoint.yaml");
    let bad = fixtures("bad").join("yaml-syntax.yaml");
    let (good, warn, bad) = (
        good.to_str().expect("UTF-8"),
        warn.to_str().expect("UTF-8"),
        bad.to_str().expect("UTF-8"),
    );
    let r = run(&["validate", good, warn]);
    assert_eq!(r.code, 0, "warnings do not fail: {}", r.stderr);
    assert!(
        r.stdout.contains(&format!("{good}: ok (0 warning(s))")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!("{warn}: ok (1 warning(s))")),
        "{}",
        r.stdout
    );
    assert!(r
        .stderr
        .contains(&format!("{warn}:13:9: warning[unused-endpoint]")));

    let r = run(&["validate", good, bad]);
    assert_eq!(r.code, 2);
    assert!(r.stdout.contains(&format!("{good}: ok")));
    assert!(
        r.stderr
            .contains(&format!("{bad}:20:11: error[yaml-syntax]")),
        "{}",
        r.stderr
    );

    let r = run(&["validate", "/nonexistent/profile.yaml"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("error[io]"), "{}", r.stderr);
}

#[test]
fn validate_json_lists_every_diagnostic() {
    let r = run_in(
        Some(&fixtures("bad")),
        &[
            "validate",
            "--format",
            "json",
            "several-problems.yaml",
            "unused-endpoint.yaml",
        ],
        &[],
    );
    assert_eq!(r.code, 2);
    // A failure: the one error document, every file's diagnostics in it, errors first.
    let v: Value = serde_json::from_str(&r.stdout).expect("JSON on stdout");
    assert_eq!(v["format"], "portolan/error/v1");
    let all = v["diagnostics"].as_array().expect("diagnostics");
    let diags: Vec<&Value> = all
        .iter()
        .filter(|d| d["file"] == "several-problems.yaml")
        .collect();
    assert_eq!(diags.len(), 10);
    let first = &diags[0];
    assert_eq!(first["code"], "invalid-hostname");
    assert_eq!(
        (first["line"].as_u64(), first["column"].as_u64()),
        (Some(12), Some(13))
    );
    assert_eq!(first["severity"], "error");
    assert_eq!(first["file"], "several-problems.yaml");
    assert!(first["message"]
        .as_str()
        .is_some_and(|m| m.contains("cloud .example.com")));
    assert!(first["help"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(diags
        .iter()
        .any(|d| d["code"] == "unused-endpoint" && d["severity"] == "warning"));

    let other: Vec<&Value> = all
        .iter()
        .filter(|d| d["file"] == "unused-endpoint.yaml")
        .collect();
    assert_eq!(other.len(), 1, "{other:?}");
    assert_eq!(other[0]["code"], "unused-endpoint");
    assert_eq!(other[0]["severity"], "warning");
}

#[test]
fn validate_accepts_every_catalog_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("catalog folder")
        .map(|e| e.expect("entry").path().display().to_string())
        .filter(|p| p.ends_with(".yaml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), IDS.len());
    let mut args = vec!["validate", "--format", "json"];
    args.extend(files.iter().map(String::as_str));
    let v = json(&args);
    for r in v["files"].as_array().expect("reports") {
        assert_eq!(r["valid"], true, "{}", r["file"]);
        assert_eq!(r["diagnostics"], serde_json::json!([]), "{}", r["file"]);
    }
}

// ---------------------------------------------------------------------------------------------
// schema

#[test]
fn schema_profile_is_a_json_schema_with_flows() {
    let v = json(&["schema", "profile"]);
    assert_eq!(v["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(v["title"], "Profile");
    assert!(v["properties"]["flows"].is_object());
    assert_eq!(v["properties"]["flows"]["type"], "array");
    assert!(v["properties"]["listens"].is_object());
    assert!(v["$defs"]["Flow"]["properties"]["initiation"].is_object());
}

// ---------------------------------------------------------------------------------------------
// doc

/// The `#` column of the first flow table after a heading that starts with `heading`.
fn doc_table_ids(markdown: &str, heading: &str) -> Vec<String> {
    markdown
        .lines()
        .skip_while(|l| !l.starts_with(heading))
        .skip(1)
        .skip_while(|l| !l.starts_with("| # |"))
        .skip(2)
        .take_while(|l| l.starts_with("| "))
        .map(|l| l.split('|').nth(1).expect("a cell").trim().to_string())
        .collect()
}

#[test]
fn doc_thingpark_tables_have_the_seed_rows() {
    let all = ok(&["doc", "thingpark-lrr", "--format", "markdown"]);
    for (mode, rows) in TP_ROWS {
        let per_mode = ok(&["doc", "thingpark-lrr", "--mode", mode]);
        let heading = format!("## Mode `{mode}`");
        assert_eq!(doc_table_ids(&per_mode, &heading), rows, "mode {mode}");
        assert_eq!(
            doc_table_ids(&all, &heading),
            rows,
            "mode {mode} in the full doc"
        );
        // Only the chosen mode's section.
        assert_eq!(per_mode.matches("## Mode `").count(), 1);
    }
    let tls = ok(&["doc", "thingpark-lrr", "--mode", "tls"]);
    assert!(tls.contains("Carried inside other flows"));
    assert!(tls.contains("| i14 | i7a (port 3001) | device | IEC 104 | TCP/2404 | lrc |"));
    let ipsec = ok(&["doc", "thingpark-lrr", "--mode", "ipsec"]);
    assert!(ipsec.contains("| i6 | device | Bidirectional | IKE v2 (secure) MOBIKE v2 (secure) | UDP/500 UDP/4500 | slrc |"));
    assert!(ipsec.contains("| i7 | device | Bidirectional | ESP (secure) | - | slrc |"));
    assert!(!ipsec.contains("Carried inside"));
}

// ---------------------------------------------------------------------------------------------
// Output does not depend on the terminal

#[test]
fn table_output_does_not_depend_on_terminal_width() {
    for args in [
        &["show", "thingpark-lrr"][..],
        &["catalog", "list"][..],
        &["doc", "izuma-device-management"][..],
    ] {
        let narrow = run_in(None, args, &[("COLUMNS", "40"), ("LINES", "10")]);
        let wide = run_in(None, args, &[("COLUMNS", "400"), ("LINES", "100")]);
        let plain = run_in(None, args, &[("TERM", "dumb"), ("NO_COLOR", "1")]);
        assert_eq!(narrow.code, 0);
        assert_eq!(
            narrow.stdout, wide.stdout,
            "{args:?}: COLUMNS changes the output"
        );
        assert_eq!(
            narrow.stdout, plain.stdout,
            "{args:?}: TERM changes the output"
        );
        assert!(
            !narrow.stdout.contains('\u{1b}'),
            "{args:?}: no escape codes"
        );
    }
    // Output that is no terminal is fitted to 80 columns (issue 19): long cells wrap within
    // their column, nothing is cut.
    let out = ok(&["show", "izuma-device-management"]);
    assert!(out.lines().any(|l| l.contains(" bootstrap-tcp ")));
    assert!(out.lines().all(|l| l.chars().count() <= 80), "{out}");
}

// ---------------------------------------------------------------------------------------------
// Snapshots of every catalog profile

/// Every catalog profile with its modes, from the library, so a new profile gets snapshots.
fn profiles() -> Vec<(String, Vec<String>)> {
    let cat = Catalog::embedded().expect("catalog");
    cat.entries
        .iter()
        .map(|e| {
            let modes = e.profile.modes.iter().map(|m| m.id.clone()).collect();
            (e.profile.id.clone(), modes)
        })
        .collect()
}

#[test]
fn snapshot_show_every_profile() {
    let profiles = profiles();
    assert_eq!(
        profiles
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>(),
        IDS
    );
    for (id, modes) in profiles {
        insta::assert_snapshot!(format!("show-{id}"), ok(&["show", &id]));
        for m in &modes {
            insta::assert_snapshot!(format!("show-{id}-{m}"), ok(&["show", &id, "--mode", m]));
        }
    }
}

#[test]
fn snapshot_doc_every_profile() {
    for (id, modes) in profiles() {
        insta::assert_snapshot!(
            format!("doc-{id}"),
            ok(&["doc", &id, "--format", "markdown"])
        );
        for m in &modes {
            insta::assert_snapshot!(
                format!("doc-{id}-{m}"),
                ok(&["doc", &id, "--mode", m, "--format", "markdown"])
            );
        }
    }
}

/// A file that is not UTF-8 is bad input with a position, the same for a profile and a site
/// and for every command (found by fuzzing: it was an I/O error without line:column, and
/// `compile` printed it in a shape of its own).
#[test]
fn not_utf8_is_a_diagnostic_with_a_position() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Line 2, column 6: `id: x` then 0xff (the column counts characters: `é` is one).
    let profile = dir.path().join("p.yaml");
    std::fs::write(&profile, b"portolan: 1\nid: x\xff\n").expect("write");
    let site = dir.path().join("s.yaml");
    std::fs::write(
        &site,
        "portolan: 1\nsite: x\n# caf\u{e9} "
            .as_bytes()
            .iter()
            .chain(b"\xc3(\n")
            .copied()
            .collect::<Vec<u8>>(),
    )
    .expect("write");
    let p = profile.to_str().expect("UTF-8 path");
    let s = site.to_str().expect("UTF-8 path");
    for (args, at) in [
        (vec!["validate", p], format!("{p}:2:6: error[not-utf8]")),
        (vec!["validate", s], format!("{s}:3:8: error[not-utf8]")),
        (vec!["compile", s], format!("{s}:3:8: error[not-utf8]")),
    ] {
        let r = run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains(&at),
            "{args:?}: want {at}, got {}",
            r.stderr
        );
    }
}

/// `-o` never replaces what is not a regular file: `compile -o /dev/null` once renamed a
/// regular file over the device node (as root, every later `> /dev/null` on the machine then
/// wrote into a file). A FIFO stands in for the device here; a symbolic link stays a link.
#[test]
fn output_to_a_fifo_or_a_link_keeps_it() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("out.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).expect("read the FIFO"))
    };
    let f = fifo.to_str().expect("UTF-8 path");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let r = run_in(
        Some(&repo),
        &["compile", "examples/site.yaml", "-o", f],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Checked before joining: a replaced FIFO leaves the reader blocked for good.
    let kind = std::fs::symlink_metadata(&fifo)
        .expect("still there")
        .file_type();
    assert!(kind.is_fifo(), "the FIFO was replaced: {kind:?}");
    let got = reader.join().expect("reader thread");
    assert!(got.contains("table inet portolan"), "{got}");

    let file = dir.path().join("real.nft");
    std::fs::write(&file, "old").expect("write");
    let link = dir.path().join("link.nft");
    std::os::unix::fs::symlink(&file, &link).expect("symlink");
    let l = link.to_str().expect("UTF-8 path");
    let r = run_in(
        Some(&repo),
        &["compile", "examples/site.yaml", "-o", l],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(std::fs::symlink_metadata(&link)
        .expect("link")
        .file_type()
        .is_symlink());
    let text = std::fs::read_to_string(&file).expect("target");
    assert!(text.contains("table inet portolan"), "{text}");
}
