//! Groups 8 and 9 of the second edition end to end: a loopback-only listener (`bind:
//! loopback`) and a row the source truncates (`truncated:` on a citation).
//!
//! The expectations are read off the fixtures by hand: `good/loopback-listener.yaml` opens
//! TCP 443 to the console (198.51.100.7) and says TCP 8080 listens on loopback only;
//! `bad/truncated-ok.yaml` cites row 7 of its source as cut at "Telemetry | TCP | 88…",
//! hiding the port. The scan is checked against sockets the test itself binds in a network
//! namespace (the kernel decides what answers from the network), never against the scanner.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use assert_cmd::Command;
use portolan_testkit::netns::{command_in, ip_in, run_in, wait_for};
use portolan_testkit::{Net, Procs};
use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(kind: &str, name: &str) -> String {
    workspace()
        .join("test-data/profiles")
        .join(kind)
        .join(name)
        .display()
        .to_string()
}

fn portolan(args: &[&str]) -> Output {
    Command::cargo_bin("portolan")
        .expect("binary")
        .current_dir(workspace())
        .args(args)
        .output()
        .expect("runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn show_and_doc_say_loopback_only() {
    let p = fixture("good", "loopback-listener.yaml");
    let show = portolan(&["show", &p]);
    assert_eq!(show.status.code(), Some(0), "{}", text(&show.stderr));
    let out = text(&show.stdout);
    // Lines below the table wrap at the output's width: compared with whitespace squeezed.
    let squeezed = out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        squeezed.contains(
            "listens tcp 8080: loopback only (opens nothing): local status API, bound to 127.0.0.1"
        ),
        "{out}"
    );
    // The network listener is not called loopback.
    assert_eq!(out.matches("loopback only").count(), 1, "{out}");
    let doc = portolan(&["doc", &p, "--format", "markdown"]);
    assert_eq!(doc.status.code(), Some(0), "{}", text(&doc.stderr));
    let md = text(&doc.stdout);
    assert!(
        md.contains("- TCP 8080 (loopback only: not reachable from the network, the firewall opens nothing for it): local status API, bound to 127.0.0.1"),
        "{md}"
    );
    assert!(
        md.contains("- TCP 443: \n") || md.contains("- TCP 443:"),
        "{md}"
    );
    // JSON: the profile as written, `bind` included.
    let json = portolan(&["doc", &p, "--format", "json"]);
    let v: Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(v["profile"]["listens"][1]["bind"], "loopback");
    assert!(v["profile"]["listens"][0].get("bind").is_none());
}

#[test]
fn compile_opens_nothing_for_a_loopback_listener() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::copy(
        fixture("good", "loopback-listener.yaml"),
        dir.path().join("loopback-listener.yaml"),
    )
    .expect("copy");
    let site = dir.path().join("site.yaml");
    std::fs::write(
        &site,
        "portolan: 1\nsite: lo\nzones:\n  - id: lan\n    interface: lan0\n    networks: [10.30.0.0/24]\n  - id: wan\n    interface: wan0\ndevices:\n  - id: gw\n    profile: loopback-listener.yaml\n    zone: lan\n    addresses: [10.30.0.5]\n",
    )
    .expect("site");
    let out = portolan(&["compile", &site.display().to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let nft = text(&out.stdout);
    // The one flow: the console reaches TCP 443 on the device.
    let accepts: Vec<&str> = nft
        .lines()
        .filter(|l| l.contains(" accept comment \"loopback-listener/"))
        .collect();
    assert!(!accepts.is_empty(), "{nft}");
    assert!(
        accepts
            .iter()
            .all(|l| l.contains("dport 443") && l.contains("console-https")),
        "{accepts:?}"
    );
    assert!(!nft.contains("8080"), "{nft}");
}

#[test]
fn a_truncated_row_is_shown_and_linted() {
    let p = fixture("bad", "truncated-ok.yaml");
    let v = portolan(&["validate", &p]);
    // Accepted (exit 0) with the warning at the `truncated` key (line 23, column 18).
    assert_eq!(v.status.code(), Some(0), "{}", text(&v.stderr));
    assert!(
        text(&v.stderr).contains("truncated-ok.yaml:23:18: warning[truncated-row]"),
        "{}",
        text(&v.stderr)
    );
    let show = portolan(&["show", &p]);
    // The table wraps the notes column within its width: its pieces, read top to bottom
    // (the last cell of each row line), compared without whitespace.
    let notes: String = text(&show.stdout)
        .lines()
        .filter(|l| l.starts_with('│'))
        .filter_map(|l| l.trim_end_matches('│').rsplit('┆').next())
        .collect::<String>()
        .split_whitespace()
        .collect();
    let want: String = "row cut in source doc (Firewall ports, row 7): shows only \"Telemetry | TCP | 88…\", hides ports"
        .split_whitespace()
        .collect();
    assert!(notes.contains(&want), "{}", text(&show.stdout));
    let doc = portolan(&["doc", &p, "--format", "markdown"]);
    let md = text(&doc.stdout);
    assert!(
        md.contains("[row cut in source doc (Firewall ports, row 7): shows only \"Telemetry \\| TCP \\| 88…\", hides ports]"),
        "{md}"
    );
    // The port stays unspecified in the table: nothing invented.
    assert!(md.contains("| TCP/unspecified |"), "{md}");
    let lint = portolan(&["lint", &p, "--format", "json"]);
    assert_eq!(lint.status.code(), Some(1), "{}", text(&lint.stderr));
    let j: Value = serde_json::from_slice(&lint.stdout).expect("json");
    let f: Vec<&Value> = j["targets"][0]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["code"] == "truncated-row")
        .collect();
    assert_eq!(f.len(), 1, "{j:#}");
    assert_eq!(
        (f[0]["line"].as_u64(), f[0]["column"].as_u64()),
        (Some(23), Some(18))
    );
    assert_eq!(f[0]["level"], "warning");
}

fn codes(v: &Value) -> Vec<(String, u64)> {
    v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap_or_default().to_string(),
                f["port"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

/// A TCP listener on `addr:port` in `ns`, up before it returns.
fn listen(procs: &mut Procs, ns: &str, addr: &str, port: &str) {
    let mut c = command_in(
        ns,
        &[
            "socat",
            &format!("TCP-LISTEN:{port},bind={addr},reuseaddr,fork"),
            "SYSTEM:true",
        ],
    );
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    procs.spawn(c);
    wait_for(
        "the listener",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || {
            run_in(ns, &["ss", "-Htln", &format!("sport = :{port}")], None)
                .is_ok_and(|o| !o.trim().is_empty())
        },
    );
}

#[test]
fn scan_reports_a_loopback_listener_that_answers_from_the_network() {
    let _turn = portolan_testkit::kernel::turn();
    let p = fixture("good", "loopback-listener.yaml");
    let mut net = Net::new();
    let sc = net.ns("sc");
    let dev = net.ns("dev");
    net.veth(&sc, "s0", &dev, "d0");
    ip_in(&sc, &["addr", "add", "10.30.0.1/24", "dev", "s0"]);
    ip_in(&dev, &["addr", "add", "10.30.0.5/24", "dev", "d0"]);
    ip_in(&dev, &["link", "set", "lo", "up"]);
    let args = [
        "scan",
        "--profile",
        &p,
        "--target",
        "10.30.0.5",
        "--netns",
        &sc,
        "--tcp",
        "1-9000",
        "--no-udp",
        "--format",
        "json",
    ];
    // As the vendor says: 443 on every address, 8080 on 127.0.0.1 only. The scan sees 443
    // open and 8080 closed, which is what the profile states: no finding.
    let mut procs = Procs::new();
    listen(&mut procs, &dev, "0.0.0.0", "443");
    listen(&mut procs, &dev, "127.0.0.1", "8080");
    let o = portolan(&args);
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(o.status.code(), Some(0), "{v:#}");
    assert!(codes(&v).is_empty(), "{v:#}");
    let declared = v["declared"]["entries"].as_array().expect("entries");
    assert_eq!(declared[1]["loopback"], true, "{v:#}");
    drop(procs);

    // A device that binds the status API to every address: reached from the network, the
    // profile's statement is refuted (exit 1).
    let mut procs = Procs::new();
    listen(&mut procs, &dev, "0.0.0.0", "443");
    listen(&mut procs, &dev, "0.0.0.0", "8080");
    let o = portolan(&args);
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(o.status.code(), Some(1), "{v:#}");
    assert_eq!(codes(&v), [("loopback-exposed".to_string(), 8080)], "{v:#}");
    assert_eq!(v["findings"][0]["severity"], "error");
    drop(procs);
}
