//! The probe's TLS facts (issue 13, group 2: ALPN, SNI, mutual TLS, minimum version) against
//! a real `openssl s_server` on loopback (no firewall rule is loaded anywhere). The expected
//! answers are the standards' and openssl's documented behaviour (openssl-s_server(1)):
//! `-alpn LIST` selects a protocol of the client's the server lists, and with none in common
//! the server "SHALL respond with a fatal no_application_protocol alert" (RFC 7301 section
//! 3.2); `-verify N` sends a
//! CertificateRequest and goes on without a certificate, `-Verify N` refuses a client
//! without one; `-tls1_2` speaks TLS 1.2 only, so a client offering only 1.3 is refused.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portolan_model::profile::Tls;
use portolan_net::report::Verdict;
use portolan_net::runtime::{block_on, TlsAsk, TlsOutcome};
use portolan_net::tls::{facts, handshake};

struct Server(Child);

/// One test's servers at a time. A free port is found by binding and releasing it, so two
/// tests running at once could pick the same one: the second `s_server` then fails to bind,
/// its test's readiness check reaches the first test's server, and its handshake is refused
/// once that server is gone (seen once in CI: "Connection refused" after the server had
/// answered).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `openssl s_server` on a free loopback port with `extra` options; (server, address).
fn server(dir: &std::path::Path, extra: &[&str]) -> (Server, SocketAddr) {
    // A self-signed X.509 v3 certificate (rustls' signature check parses it with webpki, which
    // reads v3 only).
    let (cert, key) = (dir.join("leaf.pem"), dir.join("leaf.key"));
    if !cert.exists() {
        let ok = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-days", "1", "-subj", "/CN=api.example.com"])
            .args(["-addext", "subjectAltName=DNS:api.example.com", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl req runs");
        assert!(ok.success(), "openssl req");
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    let mut c = Command::new("openssl");
    c.args(["s_server", "-quiet", "-www", "-accept", &addr.to_string()])
        .args([
            "-cert",
            &cert.display().to_string(),
            "-key",
            &key.display().to_string(),
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut s = Server(c.spawn().expect("openssl s_server starts"));
    let start = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "s_server did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The server that answered is this one: it did not exit (a port already taken).
    assert!(
        matches!(s.0.try_wait(), Ok(None)),
        "s_server exited: port {port} taken"
    );
    (s, addr)
}

fn shake(addr: SocketAddr, ask: TlsAsk) -> TlsOutcome {
    block_on(handshake(None, addr, &ask, Duration::from_secs(5))).expect("runtime")
}

fn ask(alpn: &[&str], tls13_only: bool) -> TlsAsk {
    TlsAsk {
        sni: Some("api.example.com".into()),
        alpn: alpn.iter().map(|s| s.to_string()).collect(),
        tls13_only,
    }
}

/// The states `facts` gives, with their verdicts.
fn judged(tls: &Tls, o: &TlsOutcome) -> Vec<(Verdict, &'static str)> {
    facts("f", tls, Some("api.example.com"), o)
        .into_iter()
        .map(|(v, s, _)| (v, s))
        .collect()
}

#[test]
fn alpn_is_selected_when_the_server_lists_it_and_not_otherwise() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_s, addr) = server(dir.path(), &["-alpn", "x-amzn-mqtt-ca,http/1.1"]);
    let tls = Tls {
        alpn: vec!["x-amzn-mqtt-ca".into()],
        ..Tls::default()
    };
    let o = shake(addr, ask(&["x-amzn-mqtt-ca"], false));
    assert_eq!(o.error, None);
    assert_eq!(o.session.alpn.as_deref(), Some("x-amzn-mqtt-ca"));
    assert_eq!(judged(&tls, &o), [(Verdict::Pass, "alpn-selected")]);
    // A protocol the server does not list: the fatal alert, no protocol.
    let other = Tls {
        alpn: vec!["mqtt".into()],
        ..Tls::default()
    };
    let o = shake(addr, ask(&["mqtt"], false));
    assert!(
        o.error
            .as_deref()
            .is_some_and(|e| e.contains("NoApplicationProtocol")),
        "{o:?}"
    );
    assert_eq!(o.session.alpn, None);
    assert_eq!(judged(&other, &o), [(Verdict::Fail, "alpn-not-selected")]);
}

#[test]
fn a_server_that_asks_for_a_client_certificate_and_one_that_demands_it() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    let mtls = Tls {
        client_cert: true,
        ..Tls::default()
    };
    // -verify: asks, accepts a client without one.
    let (s, addr) = server(dir.path(), &["-verify", "1"]);
    let o = shake(addr, ask(&[], false));
    drop(s);
    assert!(o.session.client_cert_requested, "{o:?}");
    assert_eq!(o.error, None);
    assert_eq!(
        judged(&mtls, &o),
        [(Verdict::Pass, "client-cert-requested")]
    );
    // -Verify: demands one; the probe has none and is refused (TLS 1.3: after its Finished,
    // so the refusal is read from the session).
    let (s, addr) = server(dir.path(), &["-Verify", "1"]);
    let o = shake(addr, ask(&[], false));
    drop(s);
    assert!(o.session.client_cert_requested, "{o:?}");
    assert!(o.error.is_some(), "{o:?}");
    assert_eq!(judged(&mtls, &o), [(Verdict::Pass, "client-cert-required")]);
    // The same with TLS 1.2 only, where the server refuses before its Finished.
    let (s, addr) = server(dir.path(), &["-Verify", "1", "-tls1_2"]);
    let o = shake(addr, ask(&[], false));
    drop(s);
    assert!(
        o.session.client_cert_requested && o.error.is_some(),
        "{o:?}"
    );
    // A server that does not ask, where the profile says mutual TLS: a warning.
    let (s, addr) = server(dir.path(), &[]);
    let o = shake(addr, ask(&[], false));
    drop(s);
    assert!(!o.session.client_cert_requested);
    assert_eq!(
        judged(&mtls, &o),
        [(Verdict::Warn, "client-cert-not-requested")]
    );
}

#[test]
fn the_minimum_version_is_offered_and_judged() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    let min13 = Tls {
        min_version: Some("1.3".into()),
        ..Tls::default()
    };
    let min12 = Tls {
        min_version: Some("1.2".into()),
        ..Tls::default()
    };
    // A TLS 1.2-only server: refuses a client offering 1.3 alone, accepts one from 1.2.
    let (s, addr) = server(dir.path(), &["-tls1_2"]);
    let o13 = shake(addr, ask(&[], true));
    let o12 = shake(addr, ask(&[], false));
    drop(s);
    assert!(o13.error.is_some(), "{o13:?}");
    assert_eq!(judged(&min13, &o13), [(Verdict::Fail, "version-refused")]);
    assert_eq!(o12.session.version.as_deref(), Some("1.2"));
    assert_eq!(judged(&min12, &o12), [(Verdict::Pass, "version-accepted")]);
    // A TLS 1.3-only server accepts the 1.3-only client.
    let (s, addr) = server(dir.path(), &["-tls1_3"]);
    let o = shake(addr, ask(&[], true));
    drop(s);
    assert_eq!(o.session.version.as_deref(), Some("1.3"));
    assert_eq!(judged(&min13, &o), [(Verdict::Pass, "version-accepted")]);
}
