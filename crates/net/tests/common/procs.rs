//! Real servers run as processes inside a lab namespace (`ip netns exec`), stopped when
//! dropped: `openssl s_server -dtls1_2` for DTLS (CoAPs) flows, with a CA and a certificate
//! made for the test (`portolan-testkit`'s `openssl`).

use std::path::Path;
use std::process::Child;

use portolan_testkit::openssl;

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
/// ClientHello without a cookie, so each probe is answered) in namespace `ns`, with a
/// certificate for `host` issued by a CA whose subject is `issuer` (`/C=GB/.../CN=...`), keys
/// and certificates written to `dir`; returns once it accepts.
pub fn dtls_server(ns: &str, addr: &str, host: &str, issuer: &str, dir: &Path) -> Proc {
    let (cert, key) = openssl::leaf(dir, &format!("{host}-ca"), issuer, host);
    Proc {
        child: openssl::s_server(ns, addr, &cert, &key, true),
    }
}
