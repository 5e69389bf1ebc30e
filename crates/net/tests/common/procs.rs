//! Real servers run as processes inside a lab namespace (`ip netns exec`), stopped when
//! dropped: `openssl s_server -dtls1_2` for DTLS (CoAPs) flows, with a certificate `openssl req`
//! makes for the test.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A DTLS 1.2 server on `addr` (with `-listen`: a stateless HelloVerifyRequest to every
/// ClientHello without a cookie, so each probe is answered) (`HOST:PORT`) in namespace `ns`, its key and self-signed
/// certificate (subject and issuer `CN = cn`) written to `dir`; returns once it accepts.
pub fn dtls_server(ns: &str, addr: &str, cn: &str, dir: &Path) -> Proc {
    let key = dir.join(format!("{cn}.key"));
    let cert = dir.join(format!("{cn}.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", &format!("/CN={cn}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl req");
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut child = Command::new("ip")
        .args([
            "netns", "exec", ns, "openssl", "s_server", "-dtls1_2", "-accept", addr,
        ])
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start openssl s_server");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("ACCEPT") {
                let _ = tx.send(());
            }
        }
    });
    let p = Proc { child };
    let start = Instant::now();
    while rx.recv_timeout(Duration::from_millis(100)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "openssl s_server did not start on {addr}"
        );
    }
    p
}
