//! TLS and DTLS peers for probe tests, made with the `openssl` tool: a CA and a leaf
//! certificate it signs, and `openssl s_server` inside a namespace, returned once it accepts.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::cmd::must;
use crate::netns::command_in;

const EC: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// A leaf certificate for `host` (`/CN=host`, files `host.{key,csr,pem}` in `dir`) signed by a
/// CA whose subject is `ca_subject` (files `<ca_stem>.{key,pem}`, made once); returns the
/// leaf's (certificate, key).
pub fn leaf(dir: &Path, ca_stem: &str, ca_subject: &str, host: &str) -> (PathBuf, PathBuf) {
    let p = |n: String| dir.join(n).display().to_string();
    let (ca_key, ca) = (p(format!("{ca_stem}.key")), p(format!("{ca_stem}.pem")));
    if !Path::new(&ca).exists() {
        let mut a = vec!["openssl", "req", "-x509"];
        a.extend(EC);
        a.extend([
            "-days", "1", "-subj", ca_subject, "-keyout", &ca_key, "-out", &ca,
        ]);
        must(&a);
    }
    let (key, csr, cert) = (
        p(format!("{host}.key")),
        p(format!("{host}.csr")),
        p(format!("{host}.pem")),
    );
    let subj = format!("/CN={host}");
    let mut a = vec!["openssl", "req", "-new"];
    a.extend(EC);
    a.extend(["-subj", &subj, "-keyout", &key, "-out", &csr]);
    must(&a);
    must(&[
        "openssl",
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
    (PathBuf::from(cert), PathBuf::from(key))
}

/// `openssl s_server` on `addr` inside namespace `ns` — TLS, or DTLS 1.2 with `dtls` — once it
/// says ACCEPT (panics after 10 s). The caller stops it (or hands it to a `Procs`).
pub fn s_server(ns: &str, addr: &str, cert: &Path, key: &Path, dtls: bool) -> Child {
    let (c, k) = (cert.display().to_string(), key.display().to_string());
    let mut args = vec![
        "openssl", "s_server", "-accept", addr, "-cert", &c, "-key", &k,
    ];
    if dtls {
        // -listen: every ClientHello gets a stateless HelloVerifyRequest (RFC 6347 §4.2.1)
        // until one comes back with its cookie, so the server answers each probe.
        args.extend(["-dtls1_2", "-listen"]);
    }
    let mut child = command_in(ns, &args)
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
    if rx.recv_timeout(Duration::from_secs(10)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("openssl s_server did not start on {addr} in {ns}");
    }
    child
}
