//! Real servers run as processes inside a lab namespace (`ip netns exec`), stopped when
//! dropped: `openssl s_server -dtls1_2` for DTLS (CoAPs) flows, with a CA and a certificate
//! `openssl req` / `openssl x509` make for the test.

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

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A DTLS 1.2 server on `addr` (with `-listen`: a stateless HelloVerifyRequest to every
/// ClientHello without a cookie, so each probe is answered) in namespace `ns`, with a
/// certificate for `host` issued by a CA whose subject is `issuer` (`/C=GB/.../CN=...`), keys
/// and certificates written to `dir`; returns once it accepts.
pub fn dtls_server(ns: &str, addr: &str, host: &str, issuer: &str, dir: &Path) -> Proc {
    let p = |n: &str| dir.join(n).display().to_string();
    let (ca_key, ca) = (p(&format!("{host}-ca.key")), p(&format!("{host}-ca.pem")));
    let (key, csr, cert) = (
        p(&format!("{host}.key")),
        p(&format!("{host}.csr")),
        p(&format!("{host}.pem")),
    );
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut a = vec!["req", "-x509"];
    a.extend(ec);
    a.extend([
        "-days", "1", "-subj", issuer, "-keyout", &ca_key, "-out", &ca,
    ]);
    openssl(&a);
    let subj = format!("/CN={host}");
    let mut a = vec!["req", "-new"];
    a.extend(ec);
    a.extend(["-subj", &subj, "-keyout", &key, "-out", &csr]);
    openssl(&a);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        &cert,
    ]);
    let mut child = Command::new("ip")
        .args([
            "netns", "exec", ns, "openssl", "s_server", "-dtls1_2", "-listen", "-accept", addr,
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
