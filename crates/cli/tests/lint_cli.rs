//! `portolan lint` end to end: exit codes (0 / 1 at `--deny` / 2 on bad input), the JSON and
//! SARIF shapes, and keepalives checked against the conntrack timeouts of a real kernel: the
//! test reads them itself from `/proc/sys/net/netfilter` inside a network namespace it creates
//! (the oracle), changes one there with sysctl, and runs lint inside the same namespace.
//! The `ct timeout` object lint proposes as a remedy is loaded by the real `nft`, and
//! `compile --ct-timeouts` is checked on real connections: through a firewall namespace whose
//! established timeout is 300 s, a connection of the flow with a 540 s keepalive counts down
//! from 1080 s in `/proc/net/nf_conntrack` (the kernel is the oracle), another flow's from
//! 300 s, and `compile --check` (the verifier) finds the same flows permitted, no excess. A
//! site's own `accept:` entries are checked at hand-counted lines and columns.
//! Where namespaces cannot be created (not root), the kernel test fails
//! (`portolan-testkit`'s skip policy).

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use portolan_testkit::Netns;
use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
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

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&o.stdout)))
}

#[test]
fn exit_codes_follow_deny_and_bad_input_is_2() {
    let wcc = portolan(&["lint", "elseta-wcc-lite"]);
    assert_eq!(wcc.status.code(), Some(1), "{}", text(&wcc.stderr));
    // RFC 8247 section 2.4: DH group 1 MUST NOT; the first entry of `dh_groups` (line 159).
    assert!(text(&wcc.stdout).contains(
        "error[ike-weak-dh-group] catalog/elseta-wcc-lite.yaml:159:19 elseta-wcc-lite/ipsec-ike"
    ));
    // ThingPark: only FTP (warnings) in its plain mode.
    let tp = portolan(&["lint", "thingpark-lrr"]);
    assert_eq!(tp.status.code(), Some(1));
    let tp = portolan(&["lint", "thingpark-lrr", "--deny", "error"]);
    assert_eq!(tp.status.code(), Some(0), "{}", text(&tp.stdout));
    let none = portolan(&["lint", "no-such-profile"]);
    assert_eq!(none.status.code(), Some(2));
    let dir = tempfile::tempdir().expect("tmp");
    let bad = dir.path().join("bad.lint.yaml");
    std::fs::write(
        &bad,
        "portolan: 1\naccept:\n  - {code: no-such, flow: a/b, reason: x}\n",
    )
    .expect("write");
    let out = portolan(&[
        "lint",
        "examples/site.yaml",
        "--config",
        &bad.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("bad.lint.yaml:3:12"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn json_and_sarif_say_the_same_findings() {
    let j = json(&portolan(&["lint", "elseta-wcc-lite", "--format", "json"]));
    let findings = j["targets"][0]["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 13);
    assert_eq!(j["targets"][0]["target"], "catalog/elseta-wcc-lite.yaml");
    let f = &findings[0];
    assert_eq!(
        (f["code"].as_str(), f["level"].as_str()),
        (Some("ikev1"), Some("warning"))
    );
    assert_eq!(
        (f["line"].as_u64(), f["column"].as_u64()),
        (Some(156), Some(18))
    );
    assert_eq!(f["citations"][0]["standard"], "RFC 9395");
    let s = json(&portolan(&["lint", "elseta-wcc-lite", "--format", "sarif"]));
    assert_eq!(s["version"], "2.1.0");
    let results = s["runs"][0]["results"].as_array().expect("results");
    assert_eq!(results.len(), 13);
    assert_eq!(results[0]["ruleId"], "ikev1");
}

/// The three timeouts as the kernel shows them inside `ns`.
fn kernel_timeouts(ns: &Netns) -> (u64, u64, u64) {
    let read = |name: &str| -> u64 {
        ns.must(&["cat", &format!("/proc/sys/net/netfilter/{name}")], None)
            .trim()
            .parse()
            .expect("a number of seconds")
    };
    (
        read("nf_conntrack_tcp_timeout_established"),
        read("nf_conntrack_udp_timeout"),
        read("nf_conntrack_udp_timeout_stream"),
    )
}

fn lint_in(ns: &Netns) -> Value {
    let bin = env!("CARGO_BIN_EXE_portolan");
    let out = ns
        .command(&[
            bin,
            "lint",
            "examples/site.yaml",
            "--conntrack-from-kernel",
            "--format",
            "json",
        ])
        .current_dir(workspace())
        .output()
        .expect("runs");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        text(&out.stderr)
    );
    json(&out)
}

/// Izuma's two flows with `keepalive: 540` over TCP (mds-legacy-tcp, mds-tcp).
fn keepalive_findings(report: &Value) -> Vec<(String, String)> {
    report["targets"][0]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["code"] == "keepalive-over-conntrack")
        .map(|f| {
            (
                f["flow"].as_str().unwrap_or_default().to_string(),
                format!("{}:{}", f["line"], f["column"]),
            )
        })
        .collect()
}

#[test]
fn keepalives_against_the_kernels_conntrack_timeouts() {
    let ns = Netns::new("lint");
    // A ruleset with connection tracking, so that nf_conntrack is loaded and its sysctls
    // exist in this namespace.
    ns.load_nft(
        "table inet t {\n  chain c {\n    type filter hook input priority 0;\n    ct state established accept\n  }\n}\n",
    );
    let (tcp, udp, stream) = kernel_timeouts(&ns);
    let r = lint_in(&ns);
    let ct = &r["targets"][0]["conntrack"];
    assert_eq!(
        (
            ct["tcp_established"].as_u64(),
            ct["udp"].as_u64(),
            ct["udp_stream"].as_u64()
        ),
        (Some(tcp), Some(udp), Some(stream))
    );
    // Flagged exactly when 540 s exceeds the kernel's established timeout (Linux's default,
    // 432000 s, does not).
    let expected_default: Vec<(String, String)> = if 540 > tcp {
        vec![
            ("mds-legacy-tcp".into(), "43:9".into()),
            ("mds-tcp".into(), "43:9".into()),
        ]
    } else {
        Vec::new()
    };
    assert_eq!(keepalive_findings(&r), expected_default);

    // The namespace's own timeout lowered to 300 s: both flows, at the site's
    // `- id: izuma-devices` (examples/site.yaml line 43, column 9).
    ns.sysctl(&["net.netfilter.nf_conntrack_tcp_timeout_established=300"]);
    assert_eq!(kernel_timeouts(&ns).0, 300);
    let r = lint_in(&ns);
    assert_eq!(
        keepalive_findings(&r),
        vec![
            ("mds-legacy-tcp".to_string(), "43:9".to_string()),
            ("mds-tcp".to_string(), "43:9".to_string()),
        ]
    );
    let finding = r["targets"][0]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["code"] == "keepalive-over-conntrack")
        .expect("one");
    assert!(finding["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("(300 s)"));

    // The remedy's `ct timeout` object, as lint writes it, loads in the site's table.
    let remedy = finding["remedy"].as_str().expect("a remedy");
    let start = remedy.find("ct timeout ").expect("a ct timeout object");
    let end = start + remedy[start..].find(" }; }").expect("its end") + 5;
    let object = &remedy[start..end];
    // 2 x 540 s.
    assert!(object.contains("established: 1080"), "{object}");
    ns.load_nft(&format!("table inet portolan {{\n  {object}\n}}\n"));
    let listed = ns.must(&["nft", "list", "table", "inet", "portolan"], None);
    // catalog/izuma-device-management.yaml, flow mds-legacy-tcp: named as compile names it.
    let name = "ct_izuma-device-management_mds-legacy-tcp_1080";
    assert!(
        listed.contains(&format!("ct timeout {name} {{")),
        "{listed}"
    );
    // `compile --ct-timeouts` in the same namespace (this kernel's 300 s) writes that object
    // and assigns it in the flow's rules.
    let compiled = ns
        .command(&[
            env!("CARGO_BIN_EXE_portolan"),
            "compile",
            "examples/site.yaml",
            "--ct-timeouts",
        ])
        .current_dir(workspace())
        .output()
        .expect("runs");
    assert_eq!(
        compiled.status.code(),
        Some(0),
        "{}",
        text(&compiled.stderr)
    );
    let nft = text(&compiled.stdout);
    assert!(
        nft.contains(&format!(
            "ct timeout set \"{name}\" accept comment \"izuma-device-management/mds-legacy-tcp\""
        )),
        "{nft}"
    );
}

/// The `compile --ct-timeouts` test site and its files.
fn ct_data(name: &str) -> PathBuf {
    workspace()
        .join("crates/cli/tests/data/ct-timeout")
        .join(name)
}

/// The ruleset without what `--ct-timeouts` adds: the object lines and the `ct timeout set`
/// statements.
fn without_ct_timeouts(nft: &str) -> String {
    nft.lines()
        .filter(|l| !l.starts_with("add ct timeout ") && !l.starts_with("delete ct timeout "))
        .map(|l| match l.find("ct timeout set \"") {
            Some(i) => {
                let end = i + l[i..].find("\" ").expect("the statement's end") + 2;
                format!("{}{}", &l[..i], &l[end..])
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn compile_ct_timeouts_from_a_configuration_and_only_for_nftables() {
    let site = ct_data("site.yaml").display().to_string();
    let cfg = ct_data("short.lint.yaml").display().to_string();
    let plain = portolan(&["compile", &site]);
    assert_eq!(plain.status.code(), Some(0), "{}", text(&plain.stderr));
    let raised = portolan(&["compile", &site, "--ct-timeouts", &cfg]);
    assert_eq!(raised.status.code(), Some(0), "{}", text(&raised.stderr));
    let nft = text(&raised.stdout);
    // profile.yaml: telemetry, TCP 5683, keepalive 540 s; short.lint.yaml: established 300 s.
    // 540 > 300, so the flow gets 2 x 540 = 1080 s; upload (no keepalive) nothing.
    let object = "add ct timeout inet portolan ct_lint-ct_telemetry_1080 { protocol tcp; policy = { established: 1080 }; }";
    assert_eq!(nft.lines().filter(|l| *l == object).count(), 2, "{nft}");
    let set: Vec<&str> = nft
        .lines()
        .filter(|l| l.contains("ct timeout set"))
        .map(str::trim)
        .collect();
    assert_eq!(
        set,
        vec![
            "ip daddr 203.0.113.10 tcp dport 5683 ct timeout set \"ct_lint-ct_telemetry_1080\" accept comment \"lint-ct/telemetry\"",
            "ip6 daddr 2001:db8:99::10 tcp dport 5683 ct timeout set \"ct_lint-ct_telemetry_1080\" accept comment \"lint-ct/telemetry\"",
        ]
    );
    // Nothing else changes.
    assert_eq!(
        without_ct_timeouts(&nft),
        without_ct_timeouts(&text(&plain.stdout))
    );
    assert!(text(&raised.stderr).contains("lint-ct/telemetry of sensors: keepalive 540 s > nf_conntrack_tcp_timeout_established 300 s"));

    // Linux's default (432000 s) leaves every flow alone; so does a configuration saying so.
    let dir = tempfile::tempdir().expect("tmp");
    let default = dir.path().join("default.lint.yaml");
    std::fs::write(
        &default,
        "portolan: 1\nconntrack: {tcp_established: 432000, udp: 30, udp_stream: 120}\n",
    )
    .expect("write");
    let same = portolan(&[
        "compile",
        &site,
        "--ct-timeouts",
        &default.display().to_string(),
    ]);
    assert_eq!(text(&same.stdout), text(&plain.stdout));

    // Other targets cannot carry the objects; a configuration without `conntrack:` gives no
    // timeouts: bad input, exit 2.
    let ipt = portolan(&[
        "compile",
        &site,
        "--ct-timeouts",
        &cfg,
        "--target",
        "iptables",
    ]);
    assert_eq!(ipt.status.code(), Some(2));
    let none = dir.path().join("none.lint.yaml");
    std::fs::write(&none, "portolan: 1\n").expect("write");
    let out = portolan(&[
        "compile",
        &site,
        "--ct-timeouts",
        &none.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("gives no `conntrack:`"));
}

/// `(family, dport, state, timeout)` of every TCP entry of `/proc/net/nf_conntrack` in `ns`.
fn conntrack_entries(ns: &str) -> Vec<(String, u16, String, u64)> {
    portolan_testkit::netns::must_in(ns, &["cat", "/proc/net/nf_conntrack"], None)
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.get(2) != Some(&"tcp") {
                return None;
            }
            let dport = w
                .iter()
                .find_map(|x| x.strip_prefix("dport="))?
                .parse()
                .ok()?;
            Some((
                w[0].to_string(),
                dport,
                w[5].to_string(),
                w[4].parse().ok()?,
            ))
        })
        .collect()
}

#[test]
fn compile_ct_timeouts_give_real_connections_of_that_flow_the_longer_timeout() {
    use portolan_testkit::netns::{must_in, wait_for, Net, Procs};
    use std::time::Duration;
    let mut net = Net::new();
    let (dev, fw, peer) = (net.ns("dev"), net.ns("fw"), net.ns("peer"));
    // Dropped before the namespaces: the servers and clients stop first.
    let mut procs = Procs::new();
    net.veth(&dev, "eth0", &fw, "lan0");
    net.veth(&fw, "wan0", &peer, "eth0");
    let addr = |ns: &str, ifc: &str, a: &str| {
        portolan_testkit::netns::ip_in(ns, &["addr", "add", a, "dev", ifc, "nodad"]);
    };
    addr(&dev, "eth0", "10.99.0.2/24");
    addr(&dev, "eth0", "fd00:99::2/64");
    addr(&fw, "lan0", "10.99.0.1/24");
    addr(&fw, "lan0", "fd00:99::1/64");
    addr(&fw, "wan0", "203.0.113.1/24");
    addr(&fw, "wan0", "2001:db8:99::1/64");
    addr(&peer, "eth0", "203.0.113.10/24");
    addr(&peer, "eth0", "2001:db8:99::10/64");
    for (ns, v4, v6) in [
        (&dev, "10.99.0.1", "fd00:99::1"),
        (&peer, "203.0.113.1", "2001:db8:99::1"),
    ] {
        portolan_testkit::netns::ip_in(ns, &["route", "add", "default", "via", v4]);
        portolan_testkit::netns::ip_in(ns, &["-6", "route", "add", "default", "via", v6]);
    }
    // Conntrack in the firewall's namespace (a ruleset that uses it, removed again), its
    // established timeout lowered to 300 s there, and forwarding on.
    must_in(
        &fw,
        &["nft", "-f", "-"],
        Some("table inet t {\n  chain c {\n    type filter hook input priority 0;\n    ct state established accept\n  }\n}\n"),
    );
    must_in(&fw, &["nft", "delete", "table", "inet", "t"], None);
    for s in [
        "net.netfilter.nf_conntrack_tcp_timeout_established=300",
        "net.ipv4.ip_forward=1",
        "net.ipv6.conf.all.forwarding=1",
    ] {
        must_in(&fw, &["sysctl", "-qw", s], None);
    }

    // compile --ct-timeouts (this kernel's values) --check, run on the firewall.
    let dir = tempfile::tempdir().expect("tmp");
    let out_file = dir.path().join("fw.nft");
    let site = ct_data("site.yaml").display().to_string();
    let bin = env!("CARGO_BIN_EXE_portolan");
    let compiled = portolan_testkit::netns::command_in(
        &fw,
        &[
            bin,
            "compile",
            &site,
            "--ct-timeouts",
            "--check",
            "-o",
            &out_file.display().to_string(),
        ],
    )
    .output()
    .expect("runs");
    let err = text(&compiled.stderr);
    assert_eq!(compiled.status.code(), Some(0), "{err}");
    // Least privilege: the verifier finds the same two flows permitted exactly, no excess.
    assert!(
        err.contains("check: all 2 flows permitted exactly, no excess"),
        "{err}"
    );
    assert!(
        err.contains("keepalive 540 s > nf_conntrack_tcp_timeout_established 300 s"),
        "{err}"
    );
    let nft = std::fs::read_to_string(&out_file).expect("written");
    must_in(&fw, &["nft", "-f", "-"], Some(&nft));

    // Servers on both ports (and one the profile does not name), connections held open.
    for port in ["5683", "8443", "5684"] {
        let listen = format!("TCP6-LISTEN:{port},ipv6only=0,reuseaddr,fork");
        procs.spawn(portolan_testkit::netns::command_in(
            &peer,
            &["socat", "-u", &listen, "OPEN:/dev/null"],
        ));
    }
    wait_for(
        "the peer's listeners",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || {
            let ss = must_in(&peer, &["ss", "-Htln"], None);
            [":5683", ":8443", ":5684"].iter().all(|p| ss.contains(p))
        },
    );
    for to in [
        "TCP:203.0.113.10:5683",
        "TCP6:[2001:db8:99::10]:5683",
        "TCP:203.0.113.10:8443",
    ] {
        procs.spawn(portolan_testkit::netns::command_in(
            &dev,
            &["socat", "-u", "EXEC:sleep 30", to],
        ));
    }
    let established = |e: &[(String, u16, String, u64)], fam: &str, port: u16| {
        e.iter()
            .find(|(f, p, s, _)| f == fam && *p == port && s == "ESTABLISHED")
            .map(|x| x.3)
    };
    wait_for(
        "three established connections",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || {
            let e = conntrack_entries(&fw);
            established(&e, "ipv4", 5683).is_some()
                && established(&e, "ipv6", 5683).is_some()
                && established(&e, "ipv4", 8443).is_some()
        },
    );
    let e = conntrack_entries(&fw);
    // The kernel counts the timeout down from 1080 (2 x 540) for telemetry, IPv4 and IPv6
    // alike (one object, `l3proto inet`), and from the namespace's 300 for upload.
    for fam in ["ipv4", "ipv6"] {
        let t = established(&e, fam, 5683).expect("telemetry");
        assert!(
            (1000..=1080).contains(&t),
            "{fam} telemetry: {t} s left, {e:?}"
        );
    }
    let t = established(&e, "ipv4", 8443).expect("upload");
    assert!((200..=300).contains(&t), "upload: {t} s left, {e:?}");

    // And the ruleset still drops what the profile does not name: port 5684 has a server,
    // yet no connection.
    let blocked = portolan_testkit::netns::command_in(
        &dev,
        &[
            "socat",
            "-u",
            "OPEN:/dev/null",
            "TCP:203.0.113.10:5684,connect-timeout=1",
        ],
    )
    .output()
    .expect("runs");
    assert!(!blocked.status.success(), "port 5684 was reachable");
    assert!(!conntrack_entries(&fw)
        .iter()
        .any(|(_, p, s, _)| *p == 5684 && s == "ESTABLISHED"));
    procs.stop();
}

#[test]
fn a_sites_acceptances_are_checked_at_their_line_and_column() {
    let site = "crates/lint/tests/data/bad-accept.yaml";
    let out = portolan(&["validate", site, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let j = json(&out);
    let got: Vec<(String, u64, u64)> = j["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap_or_default().to_string(),
                d["line"].as_u64().unwrap_or_default(),
                d["column"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    // bad-accept.yaml, written by hand: line 26 an unknown code (its value at column 12),
    // 27 a flow the profile does not have (`flow:` value at 37), 28 a device the site does
    // not declare (`device:` value at 51), 29 a profile no device uses (37), 30 a blank
    // reason (51).
    let want = |c: &str, l: u64, col: u64| (c.to_string(), l, col);
    assert_eq!(
        got,
        vec![
            want("unknown-flow", 27, 37),
            want("unknown-device", 28, 51),
            want("unknown-profile", 29, 37),
            want("invalid-value", 30, 51),
            want("invalid-value", 26, 12),
        ]
    );
    // lint refuses the site (exit 2), naming the first problem's place.
    let lint = portolan(&["lint", site]);
    assert_eq!(lint.status.code(), Some(2));
    assert!(
        text(&lint.stderr).contains("bad-accept.yaml:27:37"),
        "{}",
        text(&lint.stderr)
    );
}
