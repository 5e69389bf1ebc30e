//! `portolan probe` on a second-edition profile's `requirements`, end to end: the binary, run
//! with `--netns` in a device namespace joined by a veth pair to a server namespace where one
//! dnsmasq answers DNS (present.test only) and DHCP (options 3 and 6 configured, 42 not). The
//! profile needs DHCP options 3, 6 and 42, present.test to resolve and 10.77.0.1 to answer as
//! its hard-coded resolver. Without `--dhcp` the options are skipped and the probe exits 0;
//! with `--dhcp` option 42 is missing and it exits 1, in JSON (valid against `portolan schema
//! probe`) and in text. Expectations come from the dnsmasq configuration written here. The
//! namespaces and dnsmasq go when the test ends, also when it fails.

use std::path::Path;
use std::time::Duration;

use assert_cmd::cargo::cargo_bin_cmd;
use portolan_testkit::netns::{command_in, ip_in, start_logged, Net, Procs};
use serde_json::Value;

const PROFILE: &str = r#"portolan: 2
id: needy-sensor
vendor: Example
product: Needy sensor
sources:
  - id: net
    title: Needy sensor network requirements
    file: needy.txt
endpoints:
  - id: dns
    service: dns
flows:
  - id: dns
    from: device
    to: dns
    initiation: device
    protocol: udp
    ports: 53
    app: DNS
    source: {doc: net, ref: "Ports"}
requirements:
  - kind: addressing
    text: DHCP gives a router, DNS servers and NTP servers
    dhcp_options: [3, 6, 42]
    source: {doc: net, ref: "Addressing"}
  - kind: dns
    text: the device resolves its cloud through its own resolver
    names: [present.test]
    resolvers: [10.77.0.1]
    source: {doc: net, ref: "DNS"}
listens: none
"#;

const SITE: &str = "portolan: 1\nsite: req-cli\nzones:\n  - id: field\n    interface: lan0\n    networks: [10.77.0.0/24]\nservices:\n  dns: [10.77.0.1]\n  dhcp: firewall\ndevices:\n  - id: needy\n    profile: needy.yaml\n    zone: field\n    addresses: [10.77.0.99]\n";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn portolan(args: &[&str]) -> Out {
    let out = cargo_bin_cmd!("portolan")
        .args(args)
        .output()
        .expect("run portolan");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// dnsmasq in `srv`: DNS on 10.77.0.1 (present.test only, nothing upstream) and DHCP with
/// options 3 and 6; returns once both are ready.
fn dnsmasq(srv: &str, dir: &Path, procs: &mut Procs) {
    let log = dir.join("dnsmasq.log");
    let mut cmd = command_in(
        srv,
        &[
            "dnsmasq",
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--interface=lan0",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--user=root",
            "--log-dhcp",
            "--no-ping",
            "--local=/test/",
            "--host-record=present.test,10.77.0.5",
            "--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,10m",
            "--dhcp-option=3,10.77.0.1",
            "--dhcp-option=6,10.77.0.1",
        ],
    );
    cmd.arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
        .arg(format!(
            "--dhcp-leasefile={}",
            dir.join("dnsmasq.leases").display()
        ))
        .arg(format!("--log-facility={}", log.display()));
    start_logged(
        procs,
        cmd,
        &log,
        "DHCP, sockets bound",
        Duration::from_secs(5),
    );
}

/// The requirements stage's checks as (kind, state, verdict, dhcp_option or peer).
fn rows(j: &Value) -> Vec<(String, String, String, String)> {
    let stage = j["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["stage"] == "requirements")
        .unwrap_or_else(|| panic!("no requirements stage:\n{j:#}"));
    stage["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            let about = match (&c["dhcp_option"], &c["peer"], &c["address"]) {
                (Value::Number(n), _, _) => n.to_string(),
                (_, Value::String(p), _) => p.clone(),
                (_, _, Value::String(a)) => a.clone(),
                _ => String::new(),
            };
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("kind"), s("state"), s("verdict"), about)
        })
        .collect()
}

fn row(k: &str, state: &str, v: &str, about: &str) -> (String, String, String, String) {
    (k.into(), state.into(), v.into(), about.into())
}

fn valid_probe_document(doc: &Value) {
    let schema = portolan(&["schema", "probe"]);
    assert_eq!(schema.code, 0, "{}", schema.stderr);
    let s: Value = serde_json::from_str(&schema.stdout).expect("schema JSON");
    let v = jsonschema::validator_for(&s).expect("a schema");
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .take(5)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{doc:#}");
}

#[test]
fn requirements_are_probed_and_decide_the_exit_code() {
    let mut net = Net::new();
    let (dev, srv) = (net.ns("rqd"), net.ns("rqs"));
    net.veth(&dev, "eth0", &srv, "lan0");
    ip_in(&srv, &["addr", "add", "10.77.0.1/24", "dev", "lan0"]);
    ip_in(&dev, &["addr", "add", "10.77.0.99/24", "dev", "eth0"]);
    ip_in(&dev, &["route", "add", "default", "via", "10.77.0.1"]);
    let dir = tempfile::tempdir().expect("temporary folder");
    let mut procs = Procs::new();
    dnsmasq(&srv, dir.path(), &mut procs);
    std::fs::write(dir.path().join("needy.yaml"), PROFILE).expect("write profile");
    let site = dir.path().join("site.yaml");
    std::fs::write(&site, SITE).expect("write site");
    let site = site.to_str().expect("utf-8 path");
    let base = [
        "probe",
        site,
        "--device",
        "needy",
        "--netns",
        &dev,
        "--timeout",
        "600ms",
        "--attempts",
        "1",
        "--ttl-queries",
        "1",
    ];

    // Without --dhcp: the options are skipped, never passed; the rest holds: exit 0.
    let mut args = base.to_vec();
    args.extend(["--format", "json"]);
    let out = portolan(&args);
    let j: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout, out.stderr));
    assert_eq!(out.code, 0, "{j:#}\n{}", out.stderr);
    valid_probe_document(&j);
    assert_eq!(
        rows(&j),
        vec![
            row("dhcp-option", "skipped", "skip", ""),
            row("must-resolve", "resolved", "pass", "present.test"),
            row("hard-coded-resolver", "answers", "pass", "10.77.0.1"),
        ],
        "{j:#}"
    );

    // With --dhcp: 3 and 6 are offered, 42 is not: exit 1, and the remedy cites the source.
    let mut args = base.to_vec();
    args.extend(["--dhcp", "--interface", "eth0", "--format", "json"]);
    let out = portolan(&args);
    let j: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout, out.stderr));
    assert_eq!(out.code, 1, "{j:#}\n{}", out.stderr);
    valid_probe_document(&j);
    assert_eq!(
        rows(&j),
        vec![
            row("dhcp-option", "offered", "pass", "3"),
            row("dhcp-option", "offered", "pass", "6"),
            row("dhcp-option", "missing", "fail", "42"),
            row("must-resolve", "resolved", "pass", "present.test"),
            row("hard-coded-resolver", "answers", "pass", "10.77.0.1"),
        ],
        "{j:#}"
    );
    let remedy = "configure the DHCP server 10.77.0.1 to hand out option 42 (NTP servers) to 10.77.0.99 — Needy sensor, requirement “DHCP gives a router, DNS servers and NTP servers” (net: Addressing)";
    assert!(
        j["remedies"]
            .as_array()
            .expect("remedies")
            .iter()
            .any(|r| r == remedy),
        "{j:#}"
    );

    // The same in text: the stage, the missing option, and the verdict line.
    let mut args = base.to_vec();
    args.extend(["--dhcp", "--interface", "eth0"]);
    let out = portolan(&args);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("\nrequirements fail\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("✗ option 42 (NTP servers): not in the offer of 10.77.0.1 on eth0"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .ends_with("\nFAIL: a requirement of the profile is not met (see requirements)\n"),
        "{}",
        out.stdout
    );
    // No lease was taken: dnsmasq saw DISCOVERs only.
    let log = std::fs::read_to_string(dir.path().join("dnsmasq.log")).expect("log");
    assert!(log.contains("DHCPDISCOVER(lan0)"), "{log}");
    assert!(!log.contains("DHCPREQUEST"), "{log}");
    drop(procs);
}
