//! `portolan scan` end to end, in network namespaces the test creates (never the machine's
//! own): a device whose profile says `listens: none` (the Oscar TempLog gateway of the
//! example site) is proven to listen on nothing, then a port the test opens is flagged with
//! exit 1; a scan `--from` a zone goes through the site's firewall in the lab's namespaces and
//! reaches exactly what the site file lets that zone reach; bad input exits 2. Expected values
//! come from the site file and from what the test starts, never from the scanner.

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

fn example() -> String {
    workspace().join("examples/site.yaml").display().to_string()
}

fn portolan(args: &[&str]) -> Output {
    Command::cargo_bin("portolan")
        .expect("binary")
        .args(args)
        .output()
        .expect("runs")
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn codes(v: &Value) -> Vec<(String, u64)> {
    v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["code"].as_str().expect("code").to_string(),
                f["port"].as_u64().expect("port"),
            )
        })
        .collect()
}

#[test]
fn listens_none_is_proven_then_a_port_opened_is_flagged() {
    let _turn = portolan_testkit::kernel::turn();
    let mut procs = Procs::new();
    let mut net = Net::new();
    let sc = net.ns("sc");
    let dev = net.ns("dev");
    net.veth(&sc, "s0", &dev, "d0");
    // 10.20.0.34 lies in oscar-gateways' 10.20.0.32/28 (examples/site.yaml).
    ip_in(&sc, &["addr", "add", "10.20.0.1/24", "dev", "s0"]);
    ip_in(&dev, &["addr", "add", "10.20.0.34/24", "dev", "d0"]);
    let args = [
        "scan",
        &example(),
        "--device",
        "oscar-gateways",
        "--target",
        "10.20.0.34",
        "--netns",
        &sc,
        "--format",
        "json",
    ];
    let o = portolan(&args);
    let v = json(&o);
    assert_eq!(o.status.code(), Some(0), "{v:#}");
    assert_eq!(v["declared"]["listens"], "none");
    assert_eq!(v["statements"][0]["statement"], "listens: none");
    assert_eq!(v["statements"][0]["verdict"], "proven", "{v:#}");
    assert!(codes(&v).is_empty(), "{v:#}");
    // Every TCP port was asked and answered with a reset: nothing listens in `dev`.
    let closed = v["summary"]
        .as_array()
        .expect("summary")
        .iter()
        // The contract's protocol object, TCP being IANA protocol number 6.
        .find(|s| {
            s["protocol"] == serde_json::json!({"name": "tcp", "number": 6})
                && s["state"] == "closed"
        })
        .expect("closed TCP ports");
    assert_eq!(closed["count"], 65535);

    let mut c = command_in(
        &dev,
        &["socat", "TCP-LISTEN:8081,reuseaddr,fork", "SYSTEM:true"],
    );
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    procs.spawn(c);
    wait_for(
        "socat on 8081",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || {
            run_in(&dev, &["ss", "-Htln", "sport = :8081"], None)
                .is_ok_and(|o| !o.trim().is_empty())
        },
    );
    let o = portolan(&args);
    let v = json(&o);
    assert_eq!(o.status.code(), Some(1), "{v:#}");
    assert_eq!(v["statements"][0]["verdict"], "refuted");
    assert_eq!(v["statements"][0]["open"], serde_json::json!(["8081/tcp"]));
    assert_eq!(codes(&v), [("undeclared-open".to_string(), 8081)]);
    assert_eq!(v["findings"][0]["severity"], "error");
    // The table for people says the same.
    let text_args: Vec<&str> = args[..args.len() - 2].to_vec();
    let o = portolan(&text_args);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text.contains("8081/tcp") && text.contains("error[undeclared-open]"),
        "{text}"
    );
    drop(procs);
}

#[test]
fn from_a_zone_the_firewall_decides_what_is_reached() {
    let _turn = portolan_testkit::kernel::turn();
    // examples/site.yaml binds wcc-lite's `management` and `ser2net-client` to zone:mgmt,
    // with ser2net_ports 4001-4004 and the snmp feature on: from mgmt, TCP 4001-4004 and UDP
    // 161 reach the device (which runs no service in the lab: closed), nothing else does.
    let o = portolan(&[
        "scan",
        &example(),
        "--device",
        "wcc-lite",
        "--from",
        "mgmt",
        "--tcp",
        "1-5000",
        "--format",
        "json",
    ]);
    let v = json(&o);
    assert_eq!(o.status.code(), Some(0), "{v:#}");
    assert_eq!(v["from_zone"], "mgmt");
    let reached: Vec<(String, u64)> = v["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .filter(|p| p["state"] == "closed" || p["state"] == "open")
        .map(|p| {
            (
                p["protocol"]["name"]
                    .as_str()
                    .expect("protocol")
                    .to_string(),
                p["port"].as_u64().expect("port"),
            )
        })
        .collect();
    let want: Vec<(String, u64)> = [
        ("tcp", 4001),
        ("tcp", 4002),
        ("tcp", 4003),
        ("tcp", 4004),
        ("udp", 161),
    ]
    .iter()
    .map(|(t, p)| (t.to_string(), *p))
    .collect();
    assert_eq!(reached, want, "{v:#}");
    // Each protocol as the contract writes it everywhere: name and IANA number (TCP 6, UDP 17).
    for p in v["ports"].as_array().expect("ports") {
        let number = match p["protocol"]["name"].as_str() {
            Some("tcp") => 6,
            Some("udp") => 17,
            other => panic!("a scanned port's protocol: {other:?}"),
        };
        assert_eq!(p["protocol"]["number"], number, "{p}");
    }
    assert!(codes(&v).is_empty(), "{v:#}");
    // From the WAN nothing of the device is reachable.
    let o = portolan(&[
        "scan",
        &example(),
        "--device",
        "wcc-lite",
        "--from",
        "wan",
        "--tcp",
        "1-5000",
        "--no-udp",
        "--format",
        "json",
    ]);
    let v = json(&o);
    assert_eq!(o.status.code(), Some(0), "{v:#}");
    assert_eq!(v["not_shown"][0]["state"], "filtered");
    assert_eq!(v["not_shown"][0]["count"], 5000);
}

#[test]
fn bad_input_exits_2_naming_the_flag() {
    for (args, says) in [
        (vec!["--tcp", "0-5"], "--tcp"),
        (vec!["--tcp", "90-80"], "runs backwards"),
        (vec!["--device", "no-such-device"], "no-such-device"),
        (vec!["--target", "192.0.2.1"], "not an address of device"),
    ] {
        let mut all = vec!["scan", "--format", "json"];
        let ex = example();
        all.push(&ex);
        if !args.contains(&"--device") {
            all.extend(["--device", "wcc-lite"]);
        }
        all.extend(args.iter().copied());
        let o = portolan(&all);
        assert_eq!(o.status.code(), Some(2), "{all:?}");
        let v = json(&o);
        assert_eq!(v["format"], "portolan/error/v1");
        assert!(
            v["diagnostics"][0]["message"]
                .as_str()
                .expect("error")
                .contains(says),
            "{v}"
        );
    }
}

/// The row of flow `anchor` (`flow-GROUP/FLOW`) on a report page has status `status`.
fn row_status(page: &str, anchor: &str, status: &str) -> bool {
    let id = anchor.replace('/', "&#x2f;");
    page.contains(&format!("<tr class=\"flow st-{status}\" id=\"{id}\" "))
}

#[test]
fn a_scan_laid_over_the_report_marks_the_listening_flows() {
    let _turn = portolan_testkit::kernel::turn();
    let mut procs = Procs::new();
    let mut net = Net::new();
    let sc = net.ns("sc");
    let dev = net.ns("dev");
    net.veth(&sc, "s0", &dev, "d0");
    // The example site's WCC Lite, 10.20.0.5, features ser2net (ports 4001-4004) and snmp
    // (UDP 161): the test opens ser2net's four ports and an undeclared 8081, nothing else.
    ip_in(&sc, &["addr", "add", "10.20.0.1/24", "dev", "s0"]);
    ip_in(&dev, &["addr", "add", "10.20.0.5/24", "dev", "d0"]);
    for port in [4001, 4002, 4003, 4004, 8081] {
        let mut c = command_in(
            &dev,
            &[
                "socat",
                &format!("TCP-LISTEN:{port},reuseaddr,fork"),
                "SYSTEM:true",
            ],
        );
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        procs.spawn(c);
        wait_for(
            "socat",
            Duration::from_secs(5),
            Duration::from_millis(20),
            || {
                run_in(&dev, &["ss", "-Htln", &format!("sport = :{port}")], None)
                    .is_ok_and(|o| !o.trim().is_empty())
            },
        );
    }
    let o = portolan(&[
        "scan",
        &example(),
        "--device",
        "wcc-lite",
        "--target",
        "10.20.0.5",
        "--netns",
        &sc,
        "--tcp",
        "1-9000",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1), "8081 is undeclared: {}", json(&o));
    let dir = tempfile::tempdir().expect("tempdir");
    let scan = dir.path().join("scan.json");
    std::fs::write(&scan, &o.stdout).expect("write");
    let page = dir.path().join("report.html");
    let r = portolan(&[
        "report",
        &example(),
        "--scan",
        scan.to_str().expect("path"),
        "-o",
        page.to_str().expect("path"),
        "--format",
        "json",
    ]);
    let summary = json(&r);
    assert_eq!(r.status.code(), Some(1), "{summary:#}");
    assert_eq!(summary["sources"], serde_json::json!(["scan"]));
    assert_eq!(summary["red_notes"], 1, "{summary:#}");
    let html = std::fs::read_to_string(&page).expect("page");
    // ser2net's ports answered: green; SNMP's 161 did not: grey (declared, not running);
    // telemetry is no listening flow: no scan result.
    let rows: Vec<&str> = html
        .lines()
        .filter(|l| l.contains("id=\"flow-wcc-lite"))
        .collect();
    let scanned = String::from_utf8_lossy(&o.stdout);
    assert!(
        row_status(&html, "flow-wcc-lite/ser2net", "green"),
        "ser2net: {rows:#?}\n{scanned}"
    );
    assert!(row_status(&html, "flow-wcc-lite/snmp", "grey"), "snmp");
    assert!(
        row_status(&html, "flow-wcc-lite/telemetry", "none"),
        "telemetry"
    );
    assert!(html.contains("4004&#x2f;tcp open"), "the evidence");
    assert!(
        html.contains("161&#x2f;udp declared but not open"),
        "the evidence"
    );
    // 8081 is the group's red note.
    assert!(
        html.contains(
            "<span class=\"mark c-red\"><b>scan</b> <span class=\"ev\">undeclared-open (error)"
        ),
        "the red note"
    );
    assert!(html.contains("8081"), "the port named");
    drop(procs);
}
