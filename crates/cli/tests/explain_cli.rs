//! `portolan explain` against the kernel: the site's emitted nftables ruleset is loaded into a
//! firewall namespace between a device namespace and a peer namespace, each packet is really
//! sent (TCP connects to listening servers, UDP datagrams to a receiver), and whether it
//! arrived is what `explain`'s verdict must say. The expected values come from the kernel, not
//! from the policy `explain` reads.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use portolan_testkit::netns::{command_in, ip_in, must_in, run_in, wait_for, Net, Procs};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/explain")
        .join(name)
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_portolan")
}

fn schema() -> jsonschema::Validator {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/explain.v1.json");
    let text = std::fs::read_to_string(&path).expect("schemas/explain.v1.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    jsonschema::draft202012::new(&v).expect("a draft 2020-12 schema")
}

/// `explain`'s verdict and rule (`profile/flow`) for `packet`, from its JSON, which must
/// validate against the published schema.
fn explain(packet: &str) -> (String, Option<String>) {
    let out = Command::new(bin())
        .args(["explain", &data("site.yaml").display().to_string(), packet])
        .args(["--format", "json"])
        .output()
        .expect("runs");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{packet}: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(v["format"], "portolan/explain/v1");
    let errors: Vec<String> = schema().iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{packet}: {errors:?}");
    let verdict = v["verdict"].as_str().expect("verdict").to_string();
    let code = out.status.code();
    assert_eq!(
        code,
        Some(if verdict == "accept" { 0 } else { 1 }),
        "{packet}"
    );
    let rule = v["rule"].as_object().map(|r| {
        format!(
            "{}/{}",
            r["profile"].as_str().unwrap_or(""),
            r["flow"].as_str().unwrap_or("")
        )
    });
    (verdict, rule)
}

#[test]
fn explain_agrees_with_the_kernel_on_every_packet() {
    let _turn = portolan_testkit::kernel::turn();
    if let Some(why) = portolan_testkit::kernel::lacks().expect("a kernel test machine") {
        eprintln!("{}", portolan_testkit::kernel::skip_banner(&why));
        return;
    }
    portolan_testkit::kernel::require_tools(&["socat"]);
    let mut net = Net::new();
    let (dev, fw, peer) = (net.ns("dev"), net.ns("fw"), net.ns("peer"));
    let mut procs = Procs::new();
    net.veth(&dev, "eth0", &fw, "lan0");
    net.veth(&fw, "wan0", &peer, "eth0");
    let addr = |ns: &str, ifc: &str, a: &str| ip_in(ns, &["addr", "add", a, "dev", ifc]);
    addr(&dev, "eth0", "10.20.0.10/24");
    addr(&fw, "lan0", "10.20.0.1/24");
    addr(&fw, "wan0", "198.51.100.1/24");
    addr(&peer, "eth0", "198.51.100.10/24");
    addr(&peer, "eth0", "198.51.100.22/24");
    ip_in(&dev, &["route", "add", "default", "via", "10.20.0.1"]);
    ip_in(&peer, &["route", "add", "default", "via", "198.51.100.1"]);
    must_in(&fw, &["sysctl", "-qw", "net.ipv4.ip_forward=1"], None);

    let compiled = Command::new(bin())
        .args(["compile", &data("site.yaml").display().to_string()])
        .args(["--target", "nftables"])
        .output()
        .expect("runs");
    assert!(
        compiled.status.success(),
        "{}",
        String::from_utf8_lossy(&compiled.stderr)
    );
    let nft = String::from_utf8(compiled.stdout).expect("UTF-8");
    must_in(&fw, &["nft", "-f", "-"], Some(&nft));

    // Servers: TCP in the peer namespace and on the device, a UDP receiver on the device.
    for port in ["3001", "3004", "8883", "22"] {
        let listen = format!("TCP-LISTEN:{port},reuseaddr,fork");
        procs.spawn(command_in(
            &peer,
            &["socat", "-u", &listen, "OPEN:/dev/null"],
        ));
    }
    procs.spawn(command_in(
        &dev,
        &[
            "socat",
            "-u",
            "TCP-LISTEN:22,reuseaddr,fork",
            "OPEN:/dev/null",
        ],
    ));
    let dir = tempfile::tempdir().expect("tmp");
    let received = dir.path().join("udp500");
    let sink = format!("OPEN:{},creat,append", received.display());
    procs.spawn(command_in(
        &dev,
        &["socat", "-u", "UDP-RECVFROM:500,fork", &sink],
    ));
    wait_for(
        "the listeners",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || {
            must_in(&peer, &["ss", "-Htln"], None).contains(":8883")
                && must_in(&dev, &["ss", "-Htln"], None).contains(":22")
                && must_in(&dev, &["ss", "-Huln"], None).contains(":500")
        },
    );

    // (packet, namespace that sends it)
    let tcp = [
        ("tcp 10.20.0.10:40000 -> 198.51.100.10:3001", &dev),
        ("tcp 10.20.0.10:40001 -> 198.51.100.10:3004", &dev),
        ("tcp 10.20.0.10:40002 -> 198.51.100.10:8883", &dev),
        ("tcp 10.20.0.10:40003 -> 198.51.100.22:22", &dev),
        ("tcp 10.20.0.10:40004 -> 198.51.100.22:3001", &dev),
        ("tcp 198.51.100.22:40005 -> 10.20.0.10:22", &peer),
    ];
    let mut seen = (0, 0);
    for (packet, ns) in tcp {
        let (src, dst) = packet[4..].split_once(" -> ").expect("shape");
        let sport = src.rsplit_once(':').expect("port").1;
        let (bind, _) = src.rsplit_once(':').expect("address");
        let target = format!("TCP:{dst},bind={bind},sourceport={sport},connect-timeout=1");
        let passed = run_in(ns, &["socat", "-u", "OPEN:/dev/null", &target], None).is_ok();
        let (verdict, rule) = explain(packet);
        assert_eq!(
            verdict == "accept",
            passed,
            "{packet}: explain says {verdict} ({rule:?}), the kernel {}",
            if passed { "passed it" } else { "dropped it" }
        );
        if passed {
            seen.0 += 1;
            assert!(
                rule.is_some(),
                "{packet}: an accepted packet names its flow"
            );
        } else {
            seen.1 += 1;
        }
    }
    // UDP from the peer to the device: the IKE flow is either-initiated from the SLRC only.
    for (packet, from) in [
        ("udp 198.51.100.10:500 -> 10.20.0.10:500", "198.51.100.10"),
        ("udp 198.51.100.22:500 -> 10.20.0.10:500", "198.51.100.22"),
    ] {
        let before = std::fs::read(&received).map(|b| b.len()).unwrap_or(0);
        let target = format!("UDP:10.20.0.10:500,bind={from}:500");
        must_in(&peer, &["socat", "-u", "-", &target], Some("probe\n"));
        std::thread::sleep(Duration::from_millis(300));
        let after = std::fs::read(&received).map(|b| b.len()).unwrap_or(0);
        let passed = after > before;
        let (verdict, _) = explain(packet);
        assert_eq!(
            verdict == "accept",
            passed,
            "{packet}: explain says {verdict}, the kernel {}",
            if passed { "passed it" } else { "dropped it" }
        );
        if passed {
            seen.0 += 1;
        } else {
            seen.1 += 1;
        }
    }
    // Both outcomes were exercised.
    assert!(seen.0 >= 2 && seen.1 >= 3, "accepted/dropped: {seen:?}");
    procs.stop();
}
