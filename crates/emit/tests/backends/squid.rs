//! `--target squid` against a real squid (Debian `squid-openssl` 5.7) in namespaces: a client
//! namespace holding device addresses of the example site, the proxy namespace running squid
//! with the emitted fragment included, and a server namespace answering TLS for the site's
//! names. What the issue asks, checked with curl and openssl as a device would use the proxy:
//! allowed names and ports pass through CONNECT, other names, ports and devices get 403, and
//! a TLS flow is spliced, not bumped (the client verifies the server's own certificate, which
//! squid could not forge), while a hello whose SNI is not the flow's name is cut off.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use portolan_emit::{emit, Options, Target};
use portolan_testkit::kernel;
use portolan_testkit::netns::{ip_in, must_in, run_in, start_logged, Net, Procs};

use crate::common::{compile_file, root};

/// The oscar-templog-gateway group (10.20.0.32/28), the izuma-devices group (10.20.0.64/28),
/// and an address of the field zone no device has.
const OSCAR: &str = "10.20.0.34";
const IZUMA: &str = "10.20.0.66";
const STRANGER: &str = "10.20.0.200";
const PROXY: &str = "10.20.0.1";
/// The proxy of the example site, and the one of the wildcard fixture
/// (`crates/lab/tests/data/v6-wildcard.yaml`, devices 10.30.0.16/29).
const P1: &str = "10.20.0.1:3128";
const P2: &str = "10.20.0.1:3129";
const WILD: &str = "10.30.0.17";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p.display().to_string()
}

/// `curl` through the proxy from `src` to `url`, trusting only `cacert`; (CONNECT status,
/// curl's exit code).
fn curl(client: &str, proxy: &str, src: &str, url: &str, cacert: &str) -> (String, i32) {
    let out = Command::new("ip")
        .args(["netns", "exec", client, "curl", "-s", "-o", "/dev/null"])
        .args(["--max-time", "8", "--interface", src, "--cacert", cacert])
        .args([
            "-x",
            &format!("http://{proxy}"),
            "-w",
            "%{http_connect}",
            url,
        ])
        .output()
        .expect("curl runs");
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        out.status.code().unwrap_or(-1),
    )
}

/// The HTTP status a denied request gets. Squid answers a denied CONNECT on an `ssl-bump`
/// port by accepting the tunnel and serving its error page inside TLS, under its own
/// certificate (so the device, which trusts only its server, cannot even read it): curl is
/// told to accept any certificate here to read the status squid sent.
fn denied_status(client: &str, proxy: &str, src: &str, url: &str) -> String {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            client,
            "curl",
            "-s",
            "-k",
            "-o",
            "/dev/null",
        ])
        .args(["--max-time", "8", "--interface", src])
        .args(["-x", &format!("http://{proxy}"), "-w", "%{http_code}", url])
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn squid_allows_the_profiles_names_and_ports_and_splices_tls() {
    if let Some(why) = kernel::lacks().expect("kernel test prerequisites") {
        eprintln!("{}", kernel::skip_banner(&why));
        return;
    }
    kernel::require_tools(&["ip", "squid", "curl", "openssl"]);
    let _turn = kernel::turn();
    let policy = compile_file(&root().join("examples/site.yaml"));
    let fragment = emit(Target::Squid, &policy, &Options::default()).expect("squid fragment");

    let dir = tempfile::tempdir().expect("tempdir");
    // squid drops to the `proxy` user: it must read and write here.
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
    for a in [OSCAR, IZUMA, STRANGER, WILD] {
        ip_in(&client, &["addr", "add", &format!("{a}/24"), "dev", "lan"]);
    }
    ip_in(
        &proxy,
        &["addr", "add", &format!("{PROXY}/24"), "dev", "lan0"],
    );
    ip_in(&proxy, &["addr", "add", "10.30.0.1/24", "dev", "lan0"]);
    ip_in(&proxy, &["addr", "add", "192.0.2.1/24", "dev", "wan0"]);
    ip_in(&proxy, &["addr", "add", "54.229.203.1/24", "dev", "wan0"]);
    // gk.sensorist.com, evil.example and the profile's static address 54.229.203.190.
    // x.mbedcloud.com and the apex mbedcloud.com, for the wildcard fixture.
    for a in [
        "192.0.2.41/24",
        "192.0.2.99/24",
        "54.229.203.190/24",
        "192.0.2.51/24",
        "192.0.2.52/24",
    ] {
        ip_in(&server, &["addr", "add", a, "dev", "eth0"]);
    }
    ip_in(&proxy, &["link", "set", "lo", "up"]);
    ip_in(&server, &["route", "add", "default", "via", "192.0.2.1"]);

    // The server's certificate: self-signed for gk.sensorist.com; the client trusts only it.
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
            "/CN=gk.sensorist.com",
            "-addext",
            "subjectAltName=DNS:gk.sensorist.com,DNS:evil.example,IP:54.229.203.190,DNS:*.mbedcloud.com,DNS:mbedcloud.com,DNS:evilmbedcloud.com,DNS:x.mbedcloud.com.evil.example",
            "-keyout",
            &key,
            "-out",
            &crt,
        ],
        None,
    );
    // squid's own certificate for its ssl-bump port (it never presents it: nothing is bumped).
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
    for port in ["443", "4321", "8443", "5684"] {
        let mut c = Command::new("ip");
        c.args([
            "netns", "exec", &server, "openssl", "s_server", "-quiet", "-www",
        ])
        .args(["-accept", port, "-cert", &crt, "-key", &key]);
        c.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        procs.spawn(c);
    }

    let hosts = write(
        d,
        "hosts",
        "192.0.2.41 gk.sensorist.com\n192.0.2.41 gk.sensorist.net\n192.0.2.99 evil.example\n\
         192.0.2.51 x.mbedcloud.com\n192.0.2.52 mbedcloud.com\n192.0.2.99 evilmbedcloud.com\n\
         192.0.2.99 x.mbedcloud.com.evil.example\n",
    );
    let frag = write(d, "portolan.conf", &fragment);
    let log = d.join("cache.log");
    let conf = write(
        d,
        "squid.conf",
        &format!(
            "http_port {PROXY}:3128 ssl-bump tls-cert={pkey} generate-host-certificates=off\n\
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
    sq.args(["netns", "exec", &proxy, "squid", "-N", "-f", &conf]);
    start_logged(
        &mut procs,
        sq,
        &log,
        "Accepting SSL bumped HTTP Socket connections",
        Duration::from_secs(20),
    );

    // The wildcard fixture's fragment, in a second squid on port 3129.
    let wild_policy = compile_file(&root().join("crates/lab/tests/data/v6-wildcard.yaml"));
    let wild = emit(Target::Squid, &wild_policy, &Options::default()).expect("squid fragment");
    let frag2 = write(d, "portolan-wild.conf", &wild);
    let log2 = d.join("cache2.log");
    let conf2 = write(
        d,
        "squid2.conf",
        &format!(
            "http_port {P2} ssl-bump tls-cert={pkey} generate-host-certificates=off\n\
             pid_filename {d}/squid2.pid\ncache_log {log}\naccess_log {d}/access2.log\n\
             coredump_dir {d}\ncache deny all\nhosts_file {hosts}\ndns_nameservers 127.0.0.1\n\
             shutdown_lifetime 0 seconds\ninclude {frag2}\n",
            d = d.display(),
            log = log2.display()
        ),
    );
    let mut sq2 = Command::new("ip");
    sq2.args([
        "netns",
        "exec",
        &proxy,
        "squid",
        "-N",
        "-n",
        "portolan2",
        "-f",
        &conf2,
    ]);
    start_logged(
        &mut procs,
        sq2,
        &log2,
        "Accepting SSL bumped HTTP Socket connections",
        Duration::from_secs(20),
    );
    let logs2 = || {
        format!(
            "\n--- cache2.log\n{}\n--- access2.log\n{}",
            std::fs::read_to_string(&log2).unwrap_or_default(),
            std::fs::read_to_string(d.join("access2.log")).unwrap_or_default()
        )
    };
    // *.mbedcloud.com (izuma-device-management/wildcard-tcp, TCP 5684): a name below the
    // domain passes, spliced; the apex, a name that only ends in the same letters, a name
    // that merely contains it, and another port are denied.
    assert_eq!(
        curl(&client, P2, WILD, "https://x.mbedcloud.com:5684/", &crt),
        ("200".into(), 0),
        "{}",
        logs2()
    );
    for url in [
        "https://mbedcloud.com:5684/",
        "https://evilmbedcloud.com:5684/",
        "https://x.mbedcloud.com.evil.example:5684/",
        "https://x.mbedcloud.com:443/",
    ] {
        let (_, code) = curl(&client, P2, WILD, url, &crt);
        assert_ne!(code, 0, "{url} got through{}", logs2());
        assert_eq!(
            denied_status(&client, P2, WILD, url),
            "403",
            "{url}{}",
            logs2()
        );
    }

    let logs = || {
        format!(
            "\n--- cache.log\n{}\n--- access.log\n{}",
            std::fs::read_to_string(&log).unwrap_or_default(),
            std::fs::read_to_string(d.join("access.log")).unwrap_or_default()
        )
    };
    // oscar-templog-gateway/cloud-443 and cloud-4321: the names, their ports, spliced (the
    // client verifies the server's own certificate: a bumped connection would show squid's).
    for url in [
        "https://gk.sensorist.com/",
        "https://gk.sensorist.com:4321/",
    ] {
        assert_eq!(
            curl(&client, P1, OSCAR, url, &crt),
            ("200".into(), 0),
            "{url}{}",
            logs()
        );
    }
    // The profile's static address of cloud-443, by address.
    assert_eq!(
        curl(&client, P1, OSCAR, "https://54.229.203.190/", &crt),
        ("200".into(), 0),
        "{}",
        logs()
    );
    // A name no flow lists, a port the flow does not have, a device of another group, an
    // address of no device: denied. The device's own TLS never gets through (curl cannot
    // verify squid's certificate: exit 60), squid's answer is 403, its log says TCP_DENIED.
    let denied = [
        (OSCAR, "https://evil.example/", "evil.example:443"),
        (
            OSCAR,
            "https://gk.sensorist.com:8443/",
            "gk.sensorist.com:8443",
        ),
        (IZUMA, "https://gk.sensorist.com/", "gk.sensorist.com:443"),
        (
            STRANGER,
            "https://gk.sensorist.com/",
            "gk.sensorist.com:443",
        ),
    ];
    for (src, url, _) in denied {
        let (_, code) = curl(&client, P1, src, url, &crt);
        assert_ne!(code, 0, "{src} {url} got through{}", logs());
        assert_eq!(
            denied_status(&client, P1, src, url),
            "403",
            "{src} {url}{}",
            logs()
        );
    }
    let access = std::fs::read_to_string(d.join("access.log")).unwrap_or_default();
    for (src, _, target) in denied {
        assert!(
            access
                .lines()
                .any(|l| l.contains(src) && l.contains("TCP_DENIED") && l.contains(target)),
            "no TCP_DENIED for {src} CONNECT {target}{}",
            logs()
        );
    }
    // A CONNECT to an allowed name whose TLS hello names another host: peeked and terminated.
    let mut sc = Command::new("ip");
    sc.args(["netns", "exec", &client, "openssl", "s_client", "-brief"])
        .args([
            "-proxy",
            &format!("{PROXY}:3128"),
            "-connect",
            "gk.sensorist.com:443",
        ])
        .args(["-servername", "evil.example", "-CAfile", &crt]);
    // s_client takes the namespace's first address, the oscar gateway's.
    let out = sc
        .stdin(std::process::Stdio::null())
        .output()
        .expect("s_client runs");
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("Verification: OK"),
        "an SNI outside the flow must not reach the server:\n{text}"
    );
    let mut ok = Command::new("ip");
    ok.args(["netns", "exec", &client, "openssl", "s_client", "-brief"])
        .args([
            "-proxy",
            &format!("{PROXY}:3128"),
            "-connect",
            "gk.sensorist.com:443",
        ])
        .args(["-servername", "gk.sensorist.com", "-CAfile", &crt]);
    let out = ok
        .stdin(std::process::Stdio::null())
        .output()
        .expect("s_client runs");
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Verification: OK"),
        "the flow's own SNI is spliced to the server:\n{text}"
    );
    procs.stop();
    drop(net);
}
