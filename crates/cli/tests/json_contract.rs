//! The JSON contract (README, "JSON contract"; `crates/cli/src/contract.rs`): every
//! subcommand's `--format json` output, on success and on failure, is one document whose
//! `format` names its kind and which validates against `schemas/<kind>.v1.json` (draft
//! 2020-12) with an independent validator (the `jsonschema` crate), `portolan schema KIND`
//! printing exactly that file. A failure of any kind (usage, I/O, validation) is one
//! `portolan/error/v1` document on standard output with exit 2, and without `--format json`
//! the same diagnostic is text on standard error.
//!
//! `every_command_without_a_kernel` runs as any user; `every_command_on_the_kernel` (lab,
//! apply, enforce, probe, scan) needs root and creates its own namespace (`pl` prefix), as
//! the other kernel tests do. (Over 800 lines because it is one list of every subcommand,
//! each on success and on failure, its arguments written out one per line by rustfmt.)

use std::path::{Path, PathBuf};
use std::process::Command;

use portolan_testkit::netns::Netns;
use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn portolan(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .current_dir(workspace())
        .args(args)
        .output()
        .expect("portolan runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The published schema of `kind`: the repository's file, which `portolan schema KIND` must
/// print byte for byte.
fn schema(kind: &str) -> Value {
    let path = workspace().join(format!("schemas/{kind}.v1.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let printed = portolan(&["schema", kind]);
    assert_eq!(printed.code, 0, "schema {kind}: {}", printed.stderr);
    assert_eq!(
        printed.stdout, text,
        "`portolan schema {kind}` prints {path:?}"
    );
    let v: Value = serde_json::from_str(&text).expect("schema is JSON");
    assert_eq!(v["$schema"], "https://json-schema.org/draft/2020-12/schema");
    v
}

fn validate(kind: &str, doc: &Value, what: &str) {
    let s = schema(kind);
    let validator = jsonschema::validator_for(&s).unwrap_or_else(|e| panic!("{kind}: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .take(5)
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: not a valid {kind} document: {errors:#?}\n{doc:#}"
    );
}

/// Runs `args` (with `--format json` among them), expects exit `code` and one document of
/// `kind` on standard output, valid against its schema; returns it.
fn document(args: &[&str], kind: &str, code: i32) -> Value {
    let r = portolan(args);
    let what = format!("portolan {}", args.join(" "));
    assert_eq!(r.code, code, "{what}: exit\n{}\n{}", r.stdout, r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("{what}: one JSON document on stdout ({e}):\n{}", r.stdout));
    assert_eq!(doc["format"], format!("portolan/{kind}/v1"), "{what}");
    validate(kind, &doc, &what);
    doc
}

/// A failure: one error document, exit 2; its first diagnostic has `code`.
fn failure(args: &[&str], code: &str) -> Value {
    let doc = document(args, "error", 2);
    assert_eq!(
        doc["diagnostics"][0]["code"],
        code,
        "portolan {}: {doc:#}",
        args.join(" ")
    );
    doc
}

/// A JSON lines output of `kind`: a header line first, every line valid.
fn lines(args: &[&str], kind: &str, code: i32) -> Vec<Value> {
    let r = portolan(args);
    let what = format!("portolan {}", args.join(" "));
    assert_eq!(r.code, code, "{what}: exit\n{}\n{}", r.stdout, r.stderr);
    let docs: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: {e}: {l}")))
        .collect();
    assert_eq!(
        docs.first().map(|d| (&d["format"], &d["type"])),
        Some((
            &Value::from(format!("portolan/{kind}/v1")),
            &Value::from("header")
        )),
        "{what}: header line first"
    );
    for d in &docs {
        validate(kind, d, &what);
    }
    docs
}

/// A site of the example plant's zones and services with one device (examples/site.yaml's
/// `lrr-ipsec`), small enough for a lab in seconds.
fn small_site(dir: &Path) -> String {
    let example =
        std::fs::read_to_string(workspace().join("examples/site.yaml")).expect("example site");
    let head = &example[..example.find("devices:").expect("devices")];
    let text = format!(
        "{head}devices:\n  - id: lrr-ipsec\n    profile: thingpark-lrr\n    mode: ipsec\n    version: \"2.9\"\n    zone: field\n    addresses: [10.20.0.10]\n    bind:\n      slrc: [198.51.100.10]\n      support: [198.51.100.22]\n"
    );
    let path = dir.join("small.yaml");
    std::fs::write(&path, text).expect("write");
    path.display().to_string()
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The three failures issue 19 names, each one error document under `--format json` and the
/// same diagnostic as text on stderr without it: a missing file, an invalid site, a capture
/// that does not exist.
#[test]
fn the_three_failures_are_one_error_document_or_text_on_stderr() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nosuch.yaml").display().to_string();
    // 1. A missing file: code io, the file named.
    let d = failure(&["compile", &missing, "--format", "json"], "io");
    assert_eq!(d["diagnostics"][0]["file"], missing.as_str());
    let r = portolan(&["compile", &missing]);
    assert_eq!((r.code, r.stdout.as_str()), (2, ""));
    assert!(
        r.stderr
            .contains(&format!("{missing}: error[io]: cannot read")),
        "{}",
        r.stderr
    );
    // 2. An invalid site: its diagnostics at file:line:column (written by hand: line 3,
    // column 8 is the `nope` that should be a list of zones).
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "portolan: 1\nsite: x\nzones: nope\n").expect("write");
    let bad = bad.display().to_string();
    for cmd in ["compile", "validate", "lab", "audit", "verify", "report"] {
        let mut args = vec![cmd, bad.as_str()];
        match cmd {
            "audit" => args.push("-"),
            "verify" => args.extend(["--ruleset", "x.nft"]),
            "report" => args.extend(["-o", "x.html"]),
            _ => {}
        }
        args.extend(["--format", "json"]);
        let d = failure(&args, "yaml-syntax");
        let first = &d["diagnostics"][0];
        assert_eq!(
            (&first["file"], &first["line"], &first["column"]),
            (&Value::from(bad.as_str()), &Value::from(3), &Value::from(8)),
            "{cmd}: {d:#}"
        );
    }
    let r = portolan(&["compile", &bad]);
    assert_eq!(r.code, 2);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr.contains(&format!("{bad}:3:8: error[yaml-syntax]")),
        "{}",
        r.stderr
    );
    // 3. `audit SITE nosuch.pcap`: code io, on one thread and on several.
    let pcap = dir.path().join("nosuch.pcap").display().to_string();
    for jobs in ["1", "2"] {
        let d = failure(
            &[
                "audit",
                "examples/site.yaml",
                &pcap,
                "--jobs",
                jobs,
                "--format",
                "json",
            ],
            "io",
        );
        assert!(
            d["diagnostics"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("nosuch.pcap")),
            "{d:#}"
        );
        let r = portolan(&["audit", "examples/site.yaml", &pcap, "--jobs", jobs]);
        assert_eq!((r.code, r.stdout.as_str()), (2, ""));
        assert!(
            r.stderr.contains("error") && r.stderr.contains("nosuch.pcap"),
            "{}",
            r.stderr
        );
    }
    // A capture cut inside its file header (the pcap magic, then 6 of the header's 24 bytes:
    // libpcap's file format) is corrupt: the error document names it, not a partial report.
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00\x00\x00").expect("write");
    let cut = cut.display().to_string();
    for jobs in ["1", "2"] {
        let d = failure(
            &[
                "audit",
                "examples/site.yaml",
                &cut,
                "--jobs",
                jobs,
                "--format",
                "json",
            ],
            "corrupt-input",
        );
        assert_eq!(d["diagnostics"][0]["file"], cut.as_str(), "{d:#}");
    }
    // And a usage error (clap's): the same document, code usage; without JSON, clap's text.
    let d = failure(
        &[
            "compile",
            "examples/site.yaml",
            "--format",
            "json",
            "--bogus",
        ],
        "usage",
    );
    assert!(
        d["diagnostics"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("--bogus")),
        "{d:#}"
    );
    failure(&["learn", "x.pcap", "--format=json"], "usage");
    let r = portolan(&["compile", "examples/site.yaml", "--bogus"]);
    assert_eq!((r.code, r.stdout.as_str()), (2, ""));
    assert!(
        r.stderr.contains("unexpected argument '--bogus'"),
        "{}",
        r.stderr
    );
}

#[test]
fn every_command_without_a_kernel() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let p = |name: &str| d.join(name).display().to_string();

    // catalog list, show, catalog show, doc
    let cat = document(&["catalog", "list", "--format", "json"], "catalog", 0);
    assert_eq!(cat["profiles"].as_array().map(Vec::len), Some(5));
    failure(
        &[
            "catalog",
            "list",
            "--catalog",
            &p("none"),
            "--format",
            "json",
        ],
        "io",
    );
    document(&["show", "thingpark-lrr", "--format", "json"], "show", 0);
    document(
        &["catalog", "show", "elseta-wcc-lite", "--format", "json"],
        "show",
        0,
    );
    failure(
        &["show", "no-such-device", "--format", "json"],
        "unknown-profile",
    );
    failure(
        &[
            "show",
            "thingpark-lrr",
            "--mode",
            "bogus",
            "--format",
            "json",
        ],
        "unknown-mode",
    );
    // explain: a packet a flow admits (exit 0), one no flow admits (exit 1), a missing site.
    let site = workspace()
        .join("crates/cli/tests/data/explain/site.yaml")
        .display()
        .to_string();
    let tcp = |packet: &str, code: i32| {
        document(
            &["explain", &site, packet, "--format", "json"],
            "explain",
            code,
        )
    };
    let e = tcp("tcp 10.20.0.10:40000 -> 198.51.100.10:3001", 0);
    // IANA protocol numbers: TCP is 6.
    assert_eq!(
        e["packet"]["protocol"],
        serde_json::json!({"name": "tcp", "number": 6})
    );
    assert_eq!(e["verdict"], "accept");
    let e = tcp("tcp 10.20.0.10:40002 -> 198.51.100.10:8883", 1);
    assert_eq!(e["verdict"], "drop");
    failure(
        &[
            "explain",
            &p("none.yaml"),
            "tcp 10.20.0.10:40000 -> 198.51.100.10:3001",
            "--format",
            "json",
        ],
        "io",
    );
    let doc = document(
        &[
            "doc",
            "thingpark-lrr",
            "--mode",
            "ipsec",
            "--format",
            "json",
        ],
        "doc",
        0,
    );
    // The embedded profile is the profile file format: it validates against `schema profile`.
    let profile_schema: Value =
        serde_json::from_str(&portolan(&["schema", "profile"]).stdout).expect("schema");
    let v = jsonschema::validator_for(&profile_schema).expect("profile schema compiles");
    assert!(v.is_valid(&doc["profile"]), "doc's profile");
    failure(
        &["doc", "no-such-device", "--format", "json"],
        "unknown-profile",
    );
    document(
        &[
            "catalog",
            "doc",
            "oscar-templog-gateway",
            "--format",
            "json",
        ],
        "doc",
        0,
    );
    failure(
        &["catalog", "show", "no-such-device", "--format", "json"],
        "unknown-profile",
    );
    failure(
        &["catalog", "doc", "no-such-device", "--format", "json"],
        "unknown-profile",
    );
    failure(&["catalog", "list", "--bogus", "--format", "json"], "usage");

    // validate
    document(
        &["validate", "examples/site.yaml", "--format", "json"],
        "validate",
        0,
    );
    failure(&["validate", &p("none.yaml"), "--format", "json"], "io");

    // compile: the text, a file, the IR, a usage error
    let c = document(
        &["compile", "examples/site.yaml", "--format", "json"],
        "compile",
        0,
    );
    assert!(c["text"]
        .as_str()
        .is_some_and(|t| t.contains("table inet portolan")));
    let c = document(
        &[
            "compile",
            "examples/site.yaml",
            "--target",
            "iptables",
            "-o",
            &p("policy.ipt"),
            "--format",
            "json",
        ],
        "compile",
        0,
    );
    assert_eq!(c["output"], p("policy.ipt"));
    let c = document(
        &[
            "compile",
            "examples/site.yaml",
            "--target",
            "openwrt",
            "-o",
            &p("router"),
            "--format",
            "json",
        ],
        "compile",
        0,
    );
    let files = c["files"].as_array().expect("files written");
    assert_eq!(files.len(), 2, "{c:#}");
    for f in files {
        assert!(Path::new(f.as_str().expect("path")).is_file(), "{f}");
    }
    let ir = portolan(&["compile", "examples/site.yaml", "--target", "ir"]);
    assert_eq!(ir.code, 0, "{}", ir.stderr);
    let ir: Value = serde_json::from_str(&ir.stdout).expect("IR JSON");
    validate("ir", &ir, "compile --target ir");
    failure(
        &[
            "compile",
            "examples/site.yaml",
            "--target",
            "dnsmasq",
            "--check",
            "--format",
            "json",
        ],
        "usage",
    );
    failure(
        &[
            "compile",
            "examples/site.yaml",
            "--dns-timeout",
            "2d",
            "--format",
            "json",
        ],
        "usage",
    );

    // mud export, import (of the export), verify (signed here with openssl, then refused
    // for another file's bytes)
    let e = document(
        &[
            "mud",
            "export",
            "thingpark-lrr",
            "--mode",
            "ipsec",
            "--mud-url",
            "https://example.com/lrr.json",
            "--format",
            "json",
        ],
        "mud-export",
        0,
    );
    std::fs::write(
        d.join("lrr.json"),
        serde_json::to_vec(&e["mud"]).expect("json"),
    )
    .expect("write");
    failure(
        &[
            "mud",
            "export",
            "nosuch",
            "--mud-url",
            "https://example.com/x.json",
            "--format",
            "json",
        ],
        "unknown-profile",
    );
    let i = document(
        &["mud", "import", &p("lrr.json"), "--format", "json"],
        "mud-import",
        0,
    );
    assert!(v.is_valid(&i["profile"]), "mud import's profile: {i:#}");
    failure(
        &["mud", "import", &p("none.json"), "--format", "json"],
        "io",
    );
    std::fs::write(d.join("not-mud.json"), "{\"x\": 1}").expect("write");
    document(
        &["mud", "import", &p("not-mud.json"), "--format", "json"],
        "error",
        2,
    );
    let ext = "keyUsage=critical,digitalSignature";
    std::fs::write(d.join("signer.ext"), ext).expect("write");
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=Test MUD CA",
            "-days",
            "30",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "s.key",
            "-out",
            "s.csr",
            "-subj",
            "/CN=Test MUD signer",
        ],
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "s.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-out",
            "s.pem",
            "-extfile",
            "signer.ext",
        ],
    );
    openssl(
        d,
        &[
            "cms", "-sign", "-binary", "-in", "lrr.json", "-signer", "s.pem", "-inkey", "s.key",
            "-outform", "DER", "-out", "lrr.p7s",
        ],
    );
    let ok = document(
        &[
            "mud",
            "verify",
            &p("lrr.json"),
            "--signature",
            &p("lrr.p7s"),
            "--ca",
            &p("ca.pem"),
            "--format",
            "json",
        ],
        "mud-verify",
        0,
    );
    assert_eq!(ok["verified"], true);
    let refused = document(
        &[
            "mud",
            "verify",
            &p("not-mud.json"),
            "--signature",
            &p("lrr.p7s"),
            "--ca",
            &p("ca.pem"),
            "--format",
            "json",
        ],
        "mud-verify",
        1,
    );
    assert_eq!(refused["verified"], false);
    failure(
        &[
            "mud",
            "verify",
            &p("lrr.json"),
            "--signature",
            &p("none.p7s"),
            "--ca",
            &p("ca.pem"),
            "--format",
            "json",
        ],
        "io",
    );

    // lint (exit 1: WCC Lite's weak IPsec options), and an unknown target
    document(&["lint", "elseta-wcc-lite", "--format", "json"], "lint", 1);
    failure(
        &["lint", "no-such-device", "--format", "json"],
        "unknown-profile",
    );
    // SARIF is its own standard (validated in lint_cli.rs); a failure is still our document.
    failure(
        &["lint", "no-such-device", "--format", "sarif"],
        "unknown-profile",
    );

    // audit and learn, of a conntrack line of lrr-ipsec (10.20.0.10) to its SLRC on 443,
    // a port the profile does not give it (exit 1: a violation)
    std::fs::write(
        d.join("ct.txt"),
        "ipv4     2 tcp      6 431999 ESTABLISHED src=10.20.0.10 dst=198.51.100.10 sport=40000 dport=443 packets=5 bytes=400 src=198.51.100.10 dst=10.20.0.10 sport=443 dport=40000 packets=4 bytes=300 [ASSURED] mark=0 use=1\n",
    )
    .expect("write");
    let audit = lines(
        &[
            "audit",
            "examples/site.yaml",
            &p("ct.txt"),
            "--format",
            "json",
        ],
        "audit",
        1,
    );
    let flow = audit
        .iter()
        .find(|l| l["type"] == "flow")
        .expect("a flow line");
    assert_eq!(
        flow["protocol"],
        serde_json::json!({"name": "tcp", "number": 6})
    );
    assert_eq!(
        audit.last().map(|l| &l["type"]),
        Some(&Value::from("summary"))
    );
    let learned = document(
        &[
            "learn",
            &p("ct.txt"),
            "--device",
            "10.20.0.10",
            "--format",
            "json",
        ],
        "learn",
        0,
    );
    assert!(v.is_valid(&learned["profile"]), "learn's profile");
    failure(
        &[
            "learn",
            &p("ct.txt"),
            "--device",
            "10.20.0.99",
            "--format",
            "json",
        ],
        "no-flows",
    );

    // verify the iptables file compiled above (read as text: no kernel)
    document(
        &[
            "verify",
            "examples/site.yaml",
            "--ruleset",
            &p("policy.ipt"),
            "--format",
            "json",
        ],
        "verify",
        0,
    );
    failure(
        &[
            "verify",
            "examples/site.yaml",
            "--ruleset",
            &p("none.ipt"),
            "--format",
            "json",
        ],
        "io",
    );

    // report: the summary with -o; without -o, --format json is a usage error
    document(
        &[
            "report",
            "examples/site.yaml",
            "-o",
            &p("r.html"),
            "--format",
            "json",
        ],
        "report",
        0,
    );
    failure(
        &["report", "examples/site.yaml", "--format", "json"],
        "usage",
    );
}

/// lab, apply (--diff, a load with --confirm, --confirmed twice, nothing pending), enforce
/// --status and its event lines, probe and scan, in one network namespace made here.
#[test]
fn every_command_on_the_kernel() {
    let _turn = portolan_testkit::kernel::turn();
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let p = |name: &str| d.join(name).display().to_string();
    let site = small_site(d);
    let state = p("state");

    let lab = document(&["lab", &site, "--format", "json"], "lab", 0);
    assert_eq!(lab["summary"]["mismatched"], 0);
    failure(
        &[
            "lab",
            &site,
            "--ruleset",
            &p("none.nft"),
            "--format",
            "json",
        ],
        "io",
    );
    failure(
        &["lab", &site, "--timeout", "soon", "--format", "json"],
        "usage",
    );

    let ns = Netns::new("cj");
    let n = ns.name().to_string();
    ns.ip(&["link", "set", "lo", "up"]);
    let common = [
        "--netns",
        n.as_str(),
        "--state-dir",
        state.as_str(),
        "--format",
        "json",
    ];
    let with = |head: &[&str]| -> Vec<String> {
        head.iter()
            .chain(common.iter())
            .map(|s| s.to_string())
            .collect()
    };
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    failure(&args(&with(&["apply", "--confirmed"])), "nothing-pending");
    document(&args(&with(&["apply", &site, "--diff"])), "apply-diff", 0);
    let a = document(
        &args(&with(&["apply", &site, "--confirm", "2m"])),
        "apply",
        0,
    );
    assert_eq!(a["pending"]["seconds"], 120, "2m is 120 s");
    let c = document(&args(&with(&["apply", "--confirmed"])), "apply-confirm", 0);
    assert_eq!(c["outcome"], "confirmed");
    let c = document(&args(&with(&["apply", "--confirmed"])), "apply-confirm", 0);
    assert_eq!(c["outcome"], "already-confirmed");
    failure(&args(&with(&["apply", &site, "--confirm", "25h"])), "usage");

    document(&args(&with(&["apply", &site, "--enforce"])), "apply", 0);
    document(
        &[
            "enforce", &site, "--status", "--netns", &n, "--format", "json",
        ],
        "enforce-status",
        0,
    );
    failure(
        &["enforce", &site, "--netns", &n, "--format", "json"],
        "usage",
    );
    // The forwarder's lines: the header, then its `listening` event; stopped by SIGTERM.
    let mut child = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .current_dir(workspace())
        .args([
            "enforce",
            &site,
            "--netns",
            &n,
            "--listen",
            "127.0.0.1:5353",
            "--upstream",
            "127.0.0.1:53",
            "--format",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("enforce runs");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut got = Vec::new();
    for _ in 0..2 {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).expect("a line");
        got.push(serde_json::from_str::<Value>(&line).expect("JSON line"));
    }
    // SIGTERM, by the id of the process this test started.
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let _ = child.wait();
    assert_eq!(got[0]["format"], "portolan/enforce/v1");
    assert_eq!(got[1]["event"], "listening", "{got:?}");
    for l in &got {
        validate("enforce", l, "enforce's lines");
    }

    let probe = portolan(&[
        "probe",
        "--profile",
        "elseta-wcc-lite",
        "--bind",
        "management=127.0.0.1",
        "--netns",
        &n,
        "--timeout",
        "200ms",
        "--format",
        "json",
    ]);
    assert!(probe.code <= 1, "{}\n{}", probe.stdout, probe.stderr);
    let pr: Value = serde_json::from_str(&probe.stdout).expect("probe JSON");
    validate("probe", &pr, "probe");
    failure(
        &[
            "probe",
            "--profile",
            "nosuch",
            "--netns",
            &n,
            "--format",
            "json",
        ],
        "unknown-profile",
    );
    failure(
        &[
            "probe",
            "--profile",
            "elseta-wcc-lite",
            "--timeout",
            "2 s",
            "--format",
            "json",
        ],
        "usage",
    );

    document(
        &[
            "scan",
            "--target",
            "127.0.0.1",
            "--profile",
            "elseta-wcc-lite",
            "--tcp",
            "1-100",
            "--no-udp",
            "--netns",
            &n,
            "--format",
            "json",
        ],
        "scan",
        0,
    );
    failure(
        &[
            "scan",
            "--target",
            "127.0.0.1",
            "--profile",
            "nosuch",
            "--netns",
            &n,
            "--format",
            "json",
        ],
        "unknown-profile",
    );
}

/// `--catalog` is an option only of the commands that read catalog profiles (issue 19:
/// options only where they act): clap refuses it elsewhere, as the usage error document under
/// `--format json` and clap's text otherwise, and only those commands' `--help` offers it.
/// Durations read the same on every flag.
#[test]
fn catalog_only_where_it_acts_and_durations_one_way() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cat = dir.path().display().to_string();
    for args in [
        &["schema", "error"][..],
        &["mud", "import", "x.json"],
        &["mud", "verify", "x.json", "--ca", "ca.pem"],
        &["learn", "x.pcap", "--device", "10.0.0.1"],
        &["apply", "--confirmed"],
        &["responder", "--listen", "127.0.0.1:9", "--token", "t"],
        &["completions", "bash"],
    ] {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--catalog", &cat]);
        // Without JSON: clap's own error, exit 2, naming the option.
        let r = portolan(&a);
        assert_eq!((r.code, r.stdout.as_str()), (2, ""), "{a:?}");
        assert!(r.stderr.contains("--catalog"), "{a:?}: {}", r.stderr);
        // With it: one error document, code usage, the message naming the option.
        a.extend(["--format", "json"]);
        let d = failure(&a, "usage");
        let message = d["diagnostics"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("--catalog"), "{a:?}: {d:#}");
    }
    // `--help` offers it exactly where it acts.
    let help = |args: &[&str]| {
        let mut a = args.to_vec();
        a.push("--help");
        let r = portolan(&a);
        assert_eq!(r.code, 0, "{a:?}: {}", r.stderr);
        r.stdout.contains("--catalog")
    };
    for args in [
        &["schema"][..],
        &["learn"],
        &["mud", "import"],
        &["mud", "verify"],
        &["responder"],
        &["completions"],
        &["man"],
    ] {
        assert!(!help(args), "{args:?} --help offers --catalog");
    }
    for args in [
        &["catalog", "list"][..],
        &["catalog", "show"],
        &["catalog", "doc"],
        &["show"],
        &["doc"],
        &["validate"],
        &["compile"],
        &["probe"],
        &["mud", "export"],
        &["lab"],
        &["apply"],
        &["enforce"],
        &["audit"],
        &["scan"],
        &["verify"],
        &["lint"],
        &["report"],
        &["init", "profile"],
        &["init", "site"],
        &["explain"],
    ] {
        assert!(help(args), "{args:?} --help does not offer --catalog");
    }
    // Where it acts, it acts: a profile only the folder holds (test-data's `edition2`) is
    // found by id with it and unknown without it.
    let extra = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        workspace().join("test-data/profiles/good/edition2.yaml"),
        extra.path().join("edition2.yaml"),
    )
    .expect("copy");
    let extra = extra.path().display().to_string();
    let shown = document(
        &["show", "edition2", "--catalog", &extra, "--format", "json"],
        "show",
        0,
    );
    assert_eq!(shown["id"], "edition2");
    failure(&["show", "edition2", "--format", "json"], "unknown-profile");
    // An empty folder adds nothing and is accepted where the catalog is read.
    document(
        &["catalog", "list", "--catalog", &cat, "--format", "json"],
        "catalog",
        0,
    );
    // `--dns-timeout`: 90, 90s, 2m, 1h, as nftables writes the set's timeout (in seconds:
    // 90 s, 120 s, 3600 s by the units' definitions).
    for (given, secs) in [("90", 90), ("90s", 90), ("2m", 120), ("1h", 3600)] {
        let r = portolan(&[
            "compile",
            "examples/site.yaml",
            "--target",
            "nftables",
            "--dns-timeout",
            given,
        ]);
        assert_eq!(r.code, 0, "{given}: {}", r.stderr);
        assert!(
            r.stdout.contains(&format!("timeout {secs}s")),
            "--dns-timeout {given}: no `timeout {secs}s` in the ruleset"
        );
    }
}

/// The schemas can fail: what the contract forbids (a null member, a protocol as a bare
/// name, an error document without an error, another kind's format) is refused by them.
#[test]
fn schemas_refuse_what_the_contract_forbids() {
    let is_valid = |kind: &str, doc: &Value| {
        jsonschema::validator_for(&schema(kind))
            .expect("compiles")
            .is_valid(doc)
    };
    let flow = serde_json::json!({"id": "f", "from": "device", "to": "cloud",
        "initiation": "device", "protocol": {"name": "tcp", "number": 6},
        "ports": [{"lo": 443, "hi": 443}], "optional": false, "modes": [], "conditions": [],
        "source": [{"doc": "d", "ref": "row 1"}]});
    let show = serde_json::json!({"format": "portolan/show/v1", "id": "x", "vendor": "v",
        "product": "p", "flows": [flow]});
    assert!(is_valid("show", &show), "the control document is valid");
    let mut null_mode = show.clone();
    null_mode["mode"] = Value::Null;
    assert!(!is_valid("show", &null_mode), "null member");
    let mut bare = show.clone();
    bare["flows"][0]["protocol"] = Value::from("tcp");
    assert!(!is_valid("show", &bare), "protocol as a bare name");
    let mut prose = show.clone();
    prose["flows"][0]["conditions"] = serde_json::json!(["version >= 2.8"]);
    assert!(!is_valid("show", &prose), "a condition as prose");
    let mut port_text = show.clone();
    port_text["flows"][0]["ports"] = serde_json::json!(["443"]);
    assert!(!is_valid("show", &port_text), "a port as a string");
    let mut other = show;
    other["format"] = Value::from("portolan/lab/v1");
    assert!(!is_valid("show", &other), "another kind's format");
    let warning_only = serde_json::json!({"format": "portolan/error/v1", "diagnostics": [
        {"code": "x", "severity": "warning", "message": "m"}]});
    assert!(
        !is_valid("error", &warning_only),
        "an error document without an error"
    );
    let empty = serde_json::json!({"format": "portolan/error/v1", "diagnostics": []});
    assert!(
        !is_valid("error", &empty),
        "an error document without diagnostics"
    );
}

/// Every file of `schemas/` is what `schemas/make.py` writes, and `portolan schema` prints
/// each of them.
#[test]
fn schemas_are_generated_and_published() {
    let out = Command::new("python3")
        .arg(workspace().join("schemas/make.py"))
        .arg("--check")
        .output()
        .expect("python3 (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut kinds = 0;
    for e in std::fs::read_dir(workspace().join("schemas")).expect("schemas/") {
        let name = e.expect("entry").file_name().to_string_lossy().into_owned();
        if let Some(kind) = name.strip_suffix(".v1.json") {
            schema(kind);
            kinds += 1;
        }
    }
    assert_eq!(kinds, 25, "the kinds of the README's table");
}

/// `audit --from kafka://…` produces messages that each stand alone, so each names its
/// format, `portolan/audit-kafka/v1`, and validates against that schema (a finding, an unused
/// required flow, a dead letter); `audit --listen … --to kafka://…` writes `audit`'s JSON
/// lines on standard output (the header, then its closing `forwarded` line). An idle
/// collector needs no broker, so this runs anywhere; kafka_cli.rs runs the workers against
/// one.
#[test]
fn kafka_messages_and_the_collector_lines_follow_the_contract() {
    use portolan_audit::{FlowRecord, Mismatch, Status};
    use portolan_kafka::finding;
    let addr = |s: &str| s.parse::<std::net::IpAddr>().expect("address");
    // lrr-ipsec (examples/site.yaml) to its SLRC on a port its profile does not give it.
    let rec = FlowRecord {
        kind: "flow",
        status: Status::Violation,
        group: Some("lrr-ipsec".into()),
        rule: None,
        violation: vec![Mismatch::Port],
        closest: Some("thingpark-lrr/slrc-ipsec".into()),
        reason: None,
        proxied: Vec::new(),
        device: Some(addr("10.20.0.10")),
        peer: Some(addr("198.51.100.10")),
        peer_names: Vec::new(),
        initiated_by: None,
        protocol: "tcp".into(),
        src: addr("10.20.0.10"),
        sport: Some(40000),
        dst: addr("198.51.100.10"),
        dport: Some(8443),
        icmp_type: None,
        spi: None,
        vlan: None,
        packets: [3, 2],
        bytes: [180, 120],
        first: None,
        last: None,
        evidence: portolan_audit::flows::Evidence::Syn,
        related: 0,
        logged_group: None,
    };
    let (key, bytes) = finding::message("plant", 3, &rec).expect("a violation is a finding");
    assert_eq!(key, "plant/10.20.0.10");
    let v: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(v["format"], "portolan/audit-kafka/v1");
    validate("audit-kafka", &v, "a finding");
    // The flow's protocol as everywhere in the contract: TCP is IANA protocol number 6.
    assert_eq!(
        v["flow"]["protocol"],
        serde_json::json!({"name": "tcp", "number": 6})
    );
    let mut fine = rec.clone();
    fine.status = Status::Conforming;
    fine.violation.clear();
    assert!(finding::message("plant", 3, &fine).is_none(), "no finding");
    let (key, bytes) =
        finding::unused_message("plant", "lrr-ipsec", "thingpark-lrr/ntp", 3, (100, 250));
    assert_eq!(key, "plant/lrr-ipsec");
    let u: Value = serde_json::from_slice(&bytes).expect("JSON");
    validate("audit-kafka", &u, "an unused flow");
    assert_eq!(u["offsets"], serde_json::json!([100, 250]));
    let d = finding::dead_letter("flows", 3, 17, "10.20.0.10", "not JSON", b"\x00{");
    validate("audit-kafka", &d, "a dead letter");
    // `{` is 0x7b in ASCII.
    assert_eq!(d["value_hex"], "007b");
    // The schema can fail: a message without its format, or a finding without its flow.
    let is_valid = |doc: &Value| {
        jsonschema::validator_for(&schema("audit-kafka"))
            .expect("compiles")
            .is_valid(doc)
    };
    let mut bare = v.clone();
    bare.as_object_mut().expect("object").remove("format");
    assert!(!is_valid(&bare), "a message without its format");
    let mut flowless = v;
    flowless.as_object_mut().expect("object").remove("flow");
    assert!(!is_valid(&flowless), "a finding without its flow");

    // The collector, idle: the header line at once, `forwarded` after SIGTERM.
    let got = until_sigterm(&[
        "audit",
        "examples/site.yaml",
        "--listen",
        "udp://127.0.0.1:0",
        "--to",
        "kafka://127.0.0.1:9/flows",
        "--format",
        "json",
    ]);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1]["type"], "forwarded");
    assert_eq!(got[1]["datagrams"], 0);
    // Live mode alone, idle: the header, then its `live-summary` after SIGTERM.
    let got = until_sigterm(&[
        "audit",
        "examples/site.yaml",
        "--listen",
        "udp://127.0.0.1:0",
        "--format",
        "json",
    ]);
    assert_eq!(
        got.last().map(|l| &l["type"]),
        Some(&Value::from("live-summary"))
    );
    // Malformed Kafka addresses are usage error documents.
    failure(
        &[
            "audit",
            "examples/site.yaml",
            "--from",
            "kafka://nowhere",
            "--group",
            "g",
            "--format",
            "json",
        ],
        "usage",
    );
    failure(
        &[
            "audit",
            "examples/site.yaml",
            "--listen",
            "udp://127.0.0.1:0",
            "--to",
            "kafka://nowhere",
            "--format",
            "json",
        ],
        "usage",
    );
}

/// Runs a command that serves until SIGTERM: reads its first line (printed once it is ready),
/// sends SIGTERM to the process this test started, and returns every line of standard output,
/// each checked to be valid `audit` JSON lines with the header first; exit 0.
fn until_sigterm(args: &[&str]) -> Vec<Value> {
    use std::io::BufRead as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .current_dir(workspace())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("portolan starts");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    out.read_line(&mut first).expect("reads");
    // SIGTERM, by the id of the process this test started.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("reads");
    let status = child.wait().expect("ends");
    assert_eq!(status.code(), Some(0), "{first}{rest}");
    let got: Vec<Value> = first
        .lines()
        .chain(rest.lines())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(got[0]["format"], "portolan/audit/v1");
    assert_eq!(got[0]["type"], "header");
    for l in &got {
        validate("audit", l, &args.join(" "));
    }
    got
}

/// The commands that print no `--format json` document (schema prints a JSON Schema, init a
/// YAML file, completions and man scripts and roff, responder log lines) still answer a script
/// that asks for JSON with the one error shape: clap refuses `--format` there, and the refusal
/// is the usage error document, exit 2. What they print on success is checked where it has
/// an oracle: the schemas by the draft 2020-12 validator (here and schemas_are_generated_and_
/// published), init's files by `validate` (cliux.rs), completions by bash and the page by man.
#[test]
fn commands_without_a_json_document_fail_as_one() {
    for args in [
        &["schema", "site"][..],
        &["init", "site", "--profile", "thingpark-lrr"],
        &[
            "init",
            "profile",
            "--id",
            "x",
            "--vendor",
            "v",
            "--product",
            "p",
        ],
        &["responder", "--listen", "127.0.0.1:9", "--token", "t"],
        &["completions", "bash"],
        &["man"],
    ] {
        let mut a = args.to_vec();
        a.extend(["--format", "json"]);
        let d = failure(&a, "usage");
        let message = d["diagnostics"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("--format"), "{a:?}: {d:#}");
    }
    // `schema profile` and `schema site` are JSON Schemas a validator compiles.
    for kind in ["profile", "site"] {
        let r = portolan(&["schema", kind]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let v: Value = serde_json::from_str(&r.stdout).expect("JSON");
        jsonschema::validator_for(&v).unwrap_or_else(|e| panic!("schema {kind}: {e}"));
    }
}
