//! `portolan enforce` end to end, with `--netns` in a namespace the test creates and removes:
//! refused (exit 2, naming the command that loads the policy) before `apply --enforce`;
//! `--status` lists nothing on a fresh policy; the forwarder runs in the foreground, writes
//! one JSON line per event (an answer from a real dnsmasq upstream passed through), and stops
//! on SIGTERM with exit 0.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::time::Duration;

use assert_cmd::Command;
use portolan_testkit::netns::Procs;
use portolan_testkit::Netns;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn example() -> String {
    workspace().join("examples/site.yaml").display().to_string()
}

fn portolan(args: &[&str]) -> std::process::Output {
    Command::cargo_bin("portolan")
        .expect("binary")
        .args(args)
        .output()
        .expect("runs")
}

#[test]
fn enforce_needs_its_policy_lists_live_elements_and_logs_json_lines() {
    portolan_testkit::kernel::require_tools(&["dnsmasq"]);
    let ns = Netns::new("enforce");
    let site = example();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "enforce",
            site.as_str(),
            "--netns",
            ns.name(),
            "--log-format",
            "json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |a: &[String]| portolan(&a.iter().map(String::as_str).collect::<Vec<_>>());

    // Before the enforce policy is loaded: refused, with the command that loads it.
    let out = run(&args(&[
        "--upstream",
        "127.0.0.2:5354",
        "--listen",
        "127.0.0.1:5353",
    ]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--enforce") && err.contains("apply"), "{err}");

    let state = tempfile::tempdir().expect("tempdir");
    let state_dir = state.path().display().to_string();
    let out = portolan(&[
        "apply",
        &site,
        "--enforce",
        "--netns",
        ns.name(),
        "--state-dir",
        &state_dir,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = ns.must(
        &["nft", "list", "chain", "inet", "portolan", "dns_bypass"],
        None,
    );
    assert!(listed.contains("drop"), "{listed}");

    let out = run(&args(&["--status", "--format", "json"]));
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["elements"], serde_json::json!([]));

    // A real upstream inside the namespace, and the forwarder in the foreground.
    let mut procs = Procs::new();
    procs.spawn(ns.command(&[
        "dnsmasq",
        "--keep-in-foreground",
        "--no-resolv",
        "--no-hosts",
        "--pid-file=",
        "--conf-file=/dev/null",
        "--bind-interfaces",
        "--listen-address=127.0.0.2",
        "--port=5354",
        "--host-record=gk.sensorist.com,192.0.2.44,120",
    ]));
    let bin = assert_cmd::cargo::cargo_bin("portolan");
    let mut child = StdCommand::new(bin)
        .args(args(&[
            "--upstream",
            "127.0.0.2:5354",
            "--listen",
            "127.0.0.1:5353",
            "--metrics",
            "127.0.0.1:0",
        ]))
        .stdout(Stdio::piped())
        .spawn()
        .expect("enforce starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first: serde_json::Value =
        serde_json::from_str(&lines.next().expect("a line").expect("text")).expect("json");
    assert_eq!(first["event"], "listening");
    assert_eq!(first["udp"], "127.0.0.1:5353");

    // A query from the namespace's loopback (no device of the site): answered, opens nothing.
    let name = ns.name().to_string();
    let got = std::thread::spawn(move || {
        let f = std::fs::File::open(format!("/run/netns/{name}")).expect("ns");
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&f),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns");
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        s.set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        // A hand-made query for gk.sensorist.com A (RFC 1035 section 4.1), id 0x0102, RD.
        let mut q = vec![1, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in ["gk", "sensorist", "com"] {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        s.send_to(&q, "127.0.0.1:5353").expect("send");
        let mut buf = [0u8; 512];
        s.recv(&mut buf).map(|n| buf[..n].to_vec()).ok()
    })
    .join()
    .expect("thread")
    .expect("an answer through the forwarder");
    // The answer ends with the A record's address, 192.0.2.44.
    assert_eq!(&got[..2], &[1, 2]);
    assert_eq!(&got[got.len() - 4..], &[192, 0, 2, 44]);
    let ev: serde_json::Value =
        serde_json::from_str(&lines.next().expect("a line").expect("text")).expect("json");
    assert_eq!(ev["event"], "answer");
    assert_eq!(ev["name"], "gk.sensorist.com");
    assert_eq!(ev["group"], serde_json::Value::Null);
    assert_eq!(ev["opened"], serde_json::json!([]));

    // The metrics endpoint (on this namespace's loopback) counts that one answer.
    let metrics = first["metrics"].as_str().expect("the metrics address");
    let mut c = std::net::TcpStream::connect(metrics).expect("metrics");
    use std::io::{Read, Write};
    c.write_all(b"GET /metrics HTTP/1.1\r\n\r\n")
        .expect("request");
    let mut body = String::new();
    c.read_to_string(&mut body).expect("response");
    assert!(body.starts_with("HTTP/1.1 200 OK\r\n"), "{body}");
    assert!(
        body.contains("\nportolan_enforce_answers_total 1\n"),
        "{body}"
    );

    let pid = child.id().to_string();
    let killed = StdCommand::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("exits");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn bypass_options_need_enforce_and_reach_the_ruleset() {
    let site = example();
    // Without --enforce they mean nothing: refused as bad input.
    let out = portolan(&["compile", &site, "--dns-bypass", "redirect"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--enforce"));
    let out = portolan(&[
        "compile",
        &site,
        "--enforce",
        "--dns-bypass",
        "redirect",
        "--doh",
        "192.0.2.253",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("type nat hook prerouting priority dstnat;"),
        "{text}"
    );
    assert!(text.contains("counter redirect to :53"), "{text}");
    assert!(text.contains("192.0.2.253"), "{text}");
}
