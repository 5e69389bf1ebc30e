//! `--target squid` for a site whose devices use its proxy (issue 13, group 4), against the
//! real squid in namespaces. Profile `test-data/profiles/good/proxy-lab.yaml`: `api` (TCP
//! 443) and `api-80` (TCP 80) may go through a proxy by `CONNECT` only; `firmware` (TCP 80) may
//! go through one, plain HTTP included; `mqtt` (TCP 8883) cannot use a proxy; `syslog` (TCP
//! 6514) says nothing about proxies. What squid must then do, read off the profile: CONNECT to
//! api.example.com:443 passes, a plain `GET http://api.example.com/` is refused (403),
//! a plain `GET http://updates.example.com/` passes, and MQTT and syslog get 403 (they stay
//! with the firewall, direct).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use portolan_emit::{emit, Options, Target};
use portolan_model::compile::site_text;
use portolan_testkit::kernel;
use portolan_testkit::netns::{ip_in, must_in, run_in, start_logged, Net, Procs};
use portolan_testkit::Profiles;

use crate::common::root;

const DEVICE: &str = "10.20.0.5";
const PROXY: &str = "10.20.0.1:3128";

const SITE: &str = "portolan: 1
site: px
zones:
  - id: field
    interface: lan0
    networks: [10.20.0.0/24]
services:
  dns: firewall
  proxy: {at: [10.20.0.1], port: 3128}
devices:
  - id: gw
    profile: proxy-lab.yaml
    zone: field
    addresses: [10.20.0.5]
    proxy: true
";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p.display().to_string()
}

/// curl through the proxy from the device: (CONNECT status, HTTP status, exit code).
/// `tunnel`: `--proxytunnel`, a CONNECT even for `http://`.
fn curl(client: &str, url: &str, tunnel: bool, cacert: &str) -> (String, String, i32) {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", client, "curl", "-s", "-o", "/dev/null"])
        .args(["--max-time", "8", "--interface", DEVICE, "--cacert", cacert])
        .args(["-x", &format!("http://{PROXY}")])
        .args(["-w", "%{http_connect} %{http_code}", url]);
    if tunnel {
        c.arg("--proxytunnel");
    }
    let out = c.output().expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (a, b) = text.split_once(' ').unwrap_or((&text, ""));
    (
        a.to_string(),
        b.to_string(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn squid_carries_the_proxied_flows_connect_only_where_the_profile_says() {
    if let Some(why) = kernel::lacks().expect("kernel test prerequisites") {
        eprintln!("{}", kernel::skip_banner(&why));
        return;
    }
    kernel::require_tools(&["ip", "squid", "curl", "openssl", "python3"]);
    let _turn = kernel::turn();
    let profiles = Profiles::none().files(&root().join("test-data/profiles/good"));
    let policy = site_text("site.yaml", SITE, &profiles)
        .map(|l| l.value)
        .unwrap_or_else(|d| panic!("site refused: {d:?}"));
    let fragment = emit(Target::Squid, &policy, &Options::default()).expect("squid fragment");

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");
    let d = dir.path();
    let mut net = Net::new();
    let client = net.ns("client");
    let proxy = net.ns("proxy");
    let server = net.ns("server");
    net.veth(&client, "lan", &proxy, "lan0");
    net.veth(&proxy, "wan0", &server, "eth0");
    ip_in(&client, &["addr", "add", "10.20.0.5/24", "dev", "lan"]);
    ip_in(&proxy, &["addr", "add", "10.20.0.1/24", "dev", "lan0"]);
    ip_in(&proxy, &["addr", "add", "198.51.100.1/24", "dev", "wan0"]);
    ip_in(&proxy, &["link", "set", "lo", "up"]);
    for a in [
        "198.51.100.20",
        "198.51.100.21",
        "198.51.100.22",
        "198.51.100.23",
    ] {
        ip_in(&server, &["addr", "add", &format!("{a}/24"), "dev", "eth0"]);
    }
    let key = d.join("server.key").display().to_string();
    let crt = d.join("server.crt").display().to_string();
    must_in(
        &server,
        &[
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=api.example.com",
            "-addext",
            "subjectAltName=DNS:api.example.com,DNS:mqtt.example.com,IP:198.51.100.23",
            "-keyout",
            &key,
            "-out",
            &crt,
        ],
        None,
    );
    let pkey = d.join("proxy.pem").display().to_string();
    must_in(
        &proxy,
        &[
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=portolan test proxy",
            "-keyout",
            &pkey,
            "-out",
            &pkey,
        ],
        None,
    );
    let mut procs = Procs::new();
    for port in ["443", "8883", "6514"] {
        let mut c = Command::new("ip");
        c.args([
            "netns", "exec", &server, "openssl", "s_server", "-quiet", "-www",
        ])
        .args(["-accept", port, "-cert", &crt, "-key", &key]);
        c.stdin(Stdio::null()).stdout(Stdio::null());
        procs.spawn(c);
    }
    // Plain HTTP on port 80 for api and updates.
    let www = d.join("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(www.join("index.html"), "ok\n").expect("index");
    let mut h = Command::new("ip");
    h.args([
        "netns",
        "exec",
        &server,
        "python3",
        "-m",
        "http.server",
        "80",
    ])
    .args([
        "--bind",
        "0.0.0.0",
        "--directory",
        &www.display().to_string(),
    ]);
    h.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    procs.spawn(h);

    let hosts = write(
        d,
        "hosts",
        "198.51.100.20 api.example.com\n198.51.100.21 updates.example.com\n\
         198.51.100.22 mqtt.example.com\n",
    );
    let frag = write(d, "portolan.conf", &fragment);
    let log = d.join("cache.log");
    let conf = write(
        d,
        "squid.conf",
        &format!(
            "http_port {PROXY} ssl-bump tls-cert={pkey} generate-host-certificates=off\n\
             pid_filename {d}/squid.pid\ncache_log {log}\naccess_log {d}/access.log\n\
             coredump_dir {d}\ncache deny all\nhosts_file {hosts}\ndns_nameservers 127.0.0.1\n\
             shutdown_lifetime 0 seconds\ninclude {frag}\n",
            d = d.display(),
            log = log.display()
        ),
    );
    let check = run_in(&proxy, &["squid", "-k", "parse", "-f", &conf], None);
    assert!(check.is_ok(), "squid -k parse: {check:?}");
    let mut sq = Command::new("ip");
    sq.args([
        "netns",
        "exec",
        &proxy,
        "squid",
        "-N",
        "-n",
        "portolanpx",
        "-f",
        &conf,
    ]);
    start_logged(
        &mut procs,
        sq,
        &log,
        "Accepting SSL bumped HTTP Socket connections",
        Duration::from_secs(20),
    );
    // The HTTP server answers before we ask (python starts slower than squid at times).
    portolan_testkit::netns::wait_for(
        "the HTTP server",
        Duration::from_secs(10),
        Duration::from_millis(200),
        || {
            run_in(
                &server,
                &["curl", "-s", "-o", "/dev/null", "http://198.51.100.21/"],
                None,
            )
            .is_ok()
        },
    );
    let logs = || {
        format!(
            "\n--- fragment\n{fragment}\n--- access.log\n{}",
            std::fs::read_to_string(d.join("access.log")).unwrap_or_default()
        )
    };
    let s = |x: &str| x.to_string();
    // api: CONNECT to 443, the server's own certificate (spliced).
    assert_eq!(
        curl(&client, "https://api.example.com/", false, &crt),
        (s("200"), s("200"), 0),
        "{}",
        logs()
    );
    // api-80 (CONNECT only): a plain request to the host and port is refused. (So is plain
    // HTTP inside a CONNECT tunnel: on an `ssl-bump` port squid reads the request the tunnel
    // carries and checks it with `http_access` again, as a plain request.)
    assert_eq!(
        curl(&client, "http://api.example.com/", true, &crt).1,
        "403",
        "{}",
        logs()
    );
    assert_eq!(
        curl(&client, "http://api.example.com/", false, &crt),
        (s("000"), s("403"), 0),
        "{}",
        logs()
    );
    // firmware: plain HTTP passes (the profile does not say CONNECT only).
    assert_eq!(
        curl(&client, "http://updates.example.com/", false, &crt),
        (s("000"), s("200"), 0),
        "{}",
        logs()
    );
    // mqtt (`http: unsupported`) and syslog (no `proxy:`): not in the proxy's allow-list.
    for url in [
        "https://mqtt.example.com:8883/",
        "https://198.51.100.23:6514/",
    ] {
        // On an `ssl-bump` port squid accepts a denied CONNECT and serves its 403 inside TLS
        // under its own certificate: the device's TLS fails, and the log says TCP_DENIED.
        let (_, _, code) = curl(&client, url, false, &crt);
        assert_ne!(code, 0, "{url} got through{}", logs());
    }
    let access = std::fs::read_to_string(d.join("access.log")).unwrap_or_default();
    for target in ["mqtt.example.com:8883", "198.51.100.23:6514"] {
        assert!(
            access
                .lines()
                .any(|l| l.contains("TCP_DENIED") && l.contains(target)),
            "no TCP_DENIED for CONNECT {target}{}",
            logs()
        );
    }
    procs.stop();
    drop(net);
}
