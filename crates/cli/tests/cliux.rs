//! The command line's extras (issue 19): shell completions run by a real bash, the manual page
//! rendered by man(1)/groff, `init` whose output `validate` accepts, `validate` of MUD files,
//! and suggestions for a misspelt catalog id.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_portolan")
}

fn run(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().expect("runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(p)
}

#[test]
fn bash_completes_a_subcommand_and_its_options_from_the_generated_script() {
    let out = run(&["completions", "bash"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dir = tempfile::tempdir().expect("tmp");
    let script = dir.path().join("portolan.bash");
    std::fs::write(&script, &out.stdout).expect("writes");
    // Real bash sources the script and calls the function it registered for `portolan`, as
    // readline would on TAB, with the words typed so far.
    let complete = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let program = format!(
            "source {}\nf=$(complete -p portolan | sed -E 's/.*-F ([^ ]+).*/\\1/')\n\
             COMP_WORDS=({})\nCOMP_CWORD={}\nCOMP_LINE='{line}'\nCOMP_POINT={}\n\
             $f portolan '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            script.display(),
            words.join(" "),
            words.len() - 1,
            line.len(),
            words[words.len() - 1],
            words[words.len() - 2],
        );
        let out = Command::new("bash")
            .args(["--norc", "--noprofile", "-c", &program])
            .output()
            .expect("bash runs");
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(complete("portolan expl"), ["explain"]);
    let both = complete("portolan co");
    assert!(both.contains(&"compile".to_string()), "{both:?}");
    assert!(both.contains(&"completions".to_string()), "{both:?}");
    let opts = complete("portolan explain --for");
    assert_eq!(opts, ["--format"]);
    // `--catalog` is offered where it acts, and only there.
    assert_eq!(complete("portolan compile --cat"), ["--catalog"]);
    assert_eq!(complete("portolan mud export --cat"), ["--catalog"]);
    for line in [
        "portolan learn --cat",
        "portolan mud import --cat",
        "portolan schema --cat",
    ] {
        let got = complete(line);
        assert!(!got.iter().any(|w| w == "--catalog"), "{line}: {got:?}");
    }
    // zsh and fish scripts name the command and its subcommands.
    for shell in ["zsh", "fish"] {
        let out = run(&["completions", shell]);
        assert!(out.status.success());
        let s = text(&out.stdout);
        assert!(s.contains("portolan") && s.contains("explain"), "{shell}");
    }
}

#[test]
fn the_manual_page_renders_without_warnings() {
    let dir = tempfile::tempdir().expect("tmp");
    let page = dir.path().join("portolan.1");
    let out = run(&["man", "-o", &page.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // groff itself, every warning on (-ww), output discarded (-z): stderr must stay empty.
    let groff = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(&page)
        .output()
        .expect("groff runs (Debian package groff-base)");
    assert!(groff.status.success());
    assert_eq!(text(&groff.stderr), "", "groff warnings");
    // man -l renders it as a person reads it.
    let man = Command::new("man")
        .args(["--warnings", "-l"])
        .arg(&page)
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .expect("man runs");
    assert!(man.status.success(), "{}", text(&man.stderr));
    assert_eq!(text(&man.stderr), "", "man warnings");
    let shown = text(&man.stdout);
    assert!(shown.contains("NAME"), "{shown}");
    assert!(shown.contains("explain"), "{shown}");
    // --dir writes one page per subcommand.
    let pages = dir.path().join("pages");
    let out = run(&["man", "--dir", &pages.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(pages.join("portolan-explain.1").is_file());
}

fn validate(file: &Path) -> Output {
    run(&["validate", &file.display().to_string()])
}

#[test]
fn init_profile_writes_a_skeleton_or_a_renamed_copy_that_validates() {
    let dir = tempfile::tempdir().expect("tmp");
    let skeleton = dir.path().join("acme.yaml");
    let out = run(&[
        "init",
        "profile",
        "--id",
        "acme-sensor",
        "--vendor",
        "Acme: \"Labs\"",
        "--product",
        "Sensor 2",
        "-o",
        &skeleton.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = validate(&skeleton);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v.stderr));
    let written = std::fs::read_to_string(&skeleton).expect("written");
    assert!(written.contains("TODO"));
    // `show` reads it back with the vendor as given (quoted in YAML, not broken by `:`).
    let shown = run(&["show", &skeleton.display().to_string(), "--format", "json"]);
    assert!(
        text(&shown.stdout).contains("Acme: \\\"Labs\\\""),
        "{}",
        text(&shown.stdout)
    );

    let copy = dir.path().join("my-lrr.yaml");
    let out = run(&[
        "init",
        "profile",
        "--from",
        "thingpark-lrr",
        "--id",
        "my-lrr",
        "-o",
        &copy.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = validate(&copy);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v.stderr));
    let copied = std::fs::read_to_string(&copy).expect("written");
    assert!(copied.lines().any(|l| l == "id: my-lrr"));
    // The catalog's citations come along.
    assert!(copied.contains("source:"));

    // A bad id is refused, not written.
    let bad = dir.path().join("bad.yaml");
    let out = run(&[
        "init",
        "profile",
        "--id",
        "Not An Id",
        "--vendor",
        "A",
        "--product",
        "B",
        "-o",
        &bad.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!bad.exists());
}

#[test]
fn init_site_binds_what_the_compiler_asks_for_and_validates() {
    let dir = tempfile::tempdir().expect("tmp");
    for profile in ["oscar-templog-gateway", "thingpark-lrr", "elseta-wcc-lite"] {
        let site = dir.path().join(format!("{profile}.yaml"));
        let out = run(&[
            "init",
            "site",
            "--profile",
            profile,
            "-o",
            &site.display().to_string(),
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{profile}: {}",
            text(&out.stderr)
        );
        let v = validate(&site);
        assert_eq!(v.status.code(), Some(0), "{profile}: {}", text(&v.stderr));
    }
    // Two devices in one site.
    let site = dir.path().join("two.yaml");
    let out = run(&[
        "init",
        "site",
        "--profile",
        "thingpark-lrr",
        "--profile",
        "oscar-templog-gateway",
        "-o",
        &site.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(validate(&site).status.code(), Some(0));
    let written = std::fs::read_to_string(&site).expect("written");
    // Roles bound to RFC 5737 documentation addresses, marked for a person to replace.
    assert!(written.contains("slrc: [198.51.100."), "{written}");
    assert!(written.contains("TODO"), "{written}");
}

#[test]
fn init_site_never_invents_ports_the_vendor_did_not_give() {
    // DIMENSION4's vendor page gives no transports or ports: init must not make them up.
    let dir = tempfile::tempdir().expect("tmp");
    let site = dir.path().join("d4.yaml");
    let out = run(&[
        "init",
        "site",
        "--profile",
        "ubisense-dimension4-sensor",
        "-o",
        &site.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("unspecified-protocol"), "{err}");
    let v = validate(&site);
    assert_eq!(v.status.code(), Some(2));
    assert!(text(&v.stderr).contains("unspecified-protocol"));
}

#[test]
fn validate_reads_mud_files_with_line_and_column() {
    let good = repo("test-data/mud/classes/ordinary.json");
    let v = validate(&good);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v.stderr));
    // A wrong type and a missing member, each at the line and column where a person looks.
    let original = std::fs::read_to_string(&good).expect("reads");
    let dir = tempfile::tempdir().expect("tmp");
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        original.replacen("\"mud-version\": 1", "\"mud-version\": \"one\"", 1),
    )
    .expect("writes");
    let v = run(&["validate", &bad.display().to_string(), "--format", "json"]);
    assert_eq!(v.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_slice(&v.stdout).expect("JSON");
    // An invalid file makes the run a failure: one `portolan/error/v1` document.
    assert_eq!(report["format"], "portolan/error/v1", "{report:#}");
    let d = &report["diagnostics"][0];
    assert_eq!(d["code"], "mud-file");
    // "mud-version" is the first member of the second line's object: line 3, column 5.
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(3), Some(5))
    );
    assert!(d["message"]
        .as_str()
        .unwrap_or("")
        .contains("/ietf-mud:mud/mud-version"));
}

#[test]
fn a_misspelt_catalog_id_gets_a_suggestion() {
    let out = run(&["init", "profile", "--from", "thingpark-lrx"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("did you mean `thingpark-lrr`?"),
        "{}",
        text(&out.stderr)
    );
}

/// `audit --all` lists the unknown-device flow it counts; without `--all` only violations.
#[test]
fn audit_all_shows_the_unknown_device_flows_it_counts() {
    use portolan_audit::decode::linktype;
    use portolan_audit::write::{self, PcapWriter, L4};
    let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("address");
    let t0: i64 = 1_800_000_000_000_000_000;
    let mut w = PcapWriter::new(Vec::new(), linktype::ETHERNET, 65535, false).expect("memory");
    // A UDP datagram between two hosts that are no device of the site.
    let pkt = write::ip(
        ip("192.0.2.7"),
        ip("192.0.2.8"),
        &L4::Udp {
            sport: 40000,
            dport: 9999,
            payload: b"x",
        },
    );
    w.packet(t0, &write::ethernet(&pkt, &[]), None)
        .expect("memory");
    let dir = tempfile::tempdir().expect("tmp");
    let cap = dir.path().join("unknown.pcap");
    std::fs::write(&cap, w.into_inner()).expect("writes");
    let site = repo("crates/cli/tests/data/explain/site.yaml");
    let audit = |all: bool| {
        let mut args = vec![
            "audit".to_string(),
            site.display().to_string(),
            cap.display().to_string(),
        ];
        if all {
            args.push("--all".into());
        }
        let out = Command::new(bin()).args(&args).output().expect("runs");
        text(&out.stdout)
    };
    let plain = audit(false);
    assert!(plain.contains("1 of unknown devices"), "{plain}");
    assert!(!plain.contains("192.0.2.7"), "{plain}");
    let all = audit(true);
    assert!(all.contains("192.0.2.7:40000"), "{all}");
    assert!(all.contains("unknown device"), "{all}");
}

/// `explain` in words: the nearest rule and what differs (the ports of thingpark-lrr's i7a are
/// 3001-3003 in the vendor's table); a packet that cannot be read is bad input.
#[test]
fn explain_names_the_nearest_rule_and_what_differs() {
    let site = repo("examples/site.yaml").display().to_string();
    let out = run(&[
        "explain",
        &site,
        "tcp 10.20.0.10:40000 -> 198.51.100.10:8883",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let s = text(&out.stdout);
    assert!(s.contains(": DROP"), "{s}");
    assert!(
        s.contains("thingpark-lrr/i7a (lrr-ipsec, device-initiated): destination port 8883 is not the flow's 3001-3003"),
        "{s}"
    );
    let out = run(&[
        "explain",
        &site,
        "--proto",
        "tcp",
        "--src",
        "10.20.0.10",
        "--sport",
        "40000",
        "--dst",
        "198.51.100.10",
        "--dport",
        "3002",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("rule: thingpark-lrr/i7a"));
    let bad = run(&["explain", &site, "tcp 10.20.0.10 => 198.51.100.10:1"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("no `->`"),
        "{}",
        text(&bad.stderr)
    );
}
