//! The integrity check (Izuma's "is a firewall inspecting TLS?" test, done properly): a TLS
//! handshake through rustls whose verifier accepts any chain but keeps it, then the end-entity
//! certificate's issuer, printed the way `openssl x509 -issuer` does (`C = GB, O = ARM Ltd,
//! CN = ARM Bootstrap CA`) and compared attribute by attribute with the profile's
//! `tls.expected_issuer`. The handshake's signatures are still checked, so the captured chain
//! is the one the server holds the key for.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use der::Decode;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use portolan_model::profile::Tls;

use crate::report::Verdict;
use crate::runtime::{connect, TcpState, TlsAsk, TlsOutcome, TlsSession};

/// Accepts every certificate and remembers the chain.
#[derive(Debug)]
struct Capture {
    provider: Arc<CryptoProvider>,
    chain: Mutex<Vec<Vec<u8>>>,
}

impl ServerCertVerifier for Capture {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = vec![end_entity.to_vec()];
        chain.extend(intermediates.iter().map(|c| c.to_vec()));
        if let Ok(mut c) = self.chain.lock() {
            *c = chain;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Notes whether the server asked for a client certificate, and gives none: the probe holds
/// no device key. `has_certs` says yes so that rustls consults it on a CertificateRequest
/// (RFC 8446 section 4.3.2); the empty Certificate it then sends is what a server that only
/// *asks* accepts and one that *demands* refuses (RFC 8446 section 4.4.2.4).
#[derive(Debug, Default)]
struct NoCert {
    asked: std::sync::atomic::AtomicBool,
}

impl rustls::client::ResolvesClientCert for NoCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.asked.store(true, std::sync::atomic::Ordering::SeqCst);
        None
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Connects to `dst` and runs a TLS handshake offering what `ask` says (SNI, ALPN, versions),
/// keeping the server's chain and what the handshake settled.
pub async fn handshake(
    src: Option<IpAddr>,
    dst: SocketAddr,
    ask: &TlsAsk,
    timeout: Duration,
) -> TlsOutcome {
    let stream = match connect(src, dst, timeout).await {
        Ok(s) => s,
        Err(o) => {
            return TlsOutcome {
                tcp: o.state,
                chain: Vec::new(),
                error: o.detail,
                session: TlsSession::default(),
            }
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let capture = Arc::new(Capture {
        provider: provider.clone(),
        chain: Mutex::new(Vec::new()),
    });
    let no_cert = Arc::new(NoCert::default());
    let fail = |error: String| TlsOutcome {
        tcp: TcpState::Open,
        chain: Vec::new(),
        error: Some(error),
        session: TlsSession::default(),
    };
    let versions: &[&rustls::SupportedProtocolVersion] = if ask.tls13_only {
        &[&rustls::version::TLS13]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let mut config = match rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
    {
        Ok(b) => b
            .dangerous()
            .with_custom_certificate_verifier(capture.clone())
            .with_client_cert_resolver(no_cert.clone()),
        Err(e) => return fail(e.to_string()),
    };
    config.alpn_protocols = ask.alpn.iter().map(|a| a.as_bytes().to_vec()).collect();
    // Without a name, rustls sends no SNI: it is given an address (RFC 6066 section 3: "literal
    // IPv4 and IPv6 addresses are not permitted in HostName").
    let name = match &ask.sni {
        Some(sni) => match ServerName::try_from(sni.clone()) {
            Ok(n) => n,
            Err(e) => return fail(format!("`{sni}` is not a server name: {e}")),
        },
        None => ServerName::IpAddress(dst.ip().into()),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let result = tokio::time::timeout(timeout, connector.connect(name, stream)).await;
    let chain = capture.chain.lock().map(|c| c.clone()).unwrap_or_default();
    let mut session = TlsSession {
        client_cert_requested: no_cert.asked.load(std::sync::atomic::Ordering::SeqCst),
        ..TlsSession::default()
    };
    let error = match result {
        Ok(Ok(mut conn)) => {
            let (_, c) = conn.get_ref();
            session.alpn = c
                .alpn_protocol()
                .map(|a| String::from_utf8_lossy(a).into_owned());
            session.version = c.protocol_version().map(|v| match v {
                rustls::ProtocolVersion::TLSv1_3 => "1.3".to_string(),
                rustls::ProtocolVersion::TLSv1_2 => "1.2".to_string(),
                other => format!("{other:?}"),
            });
            // A server that demands a certificate sends its alert after the client's
            // Finished in TLS 1.3 (RFC 8446 section 4.4.2.4): the handshake "completes" on the
            // client's side, and the refusal is the first thing read. Read once, briefly.
            if session.client_cert_requested {
                use tokio::io::AsyncReadExt;
                let mut b = [0u8; 1];
                let wait = timeout.min(Duration::from_millis(1500));
                match tokio::time::timeout(wait, conn.read(&mut b)).await {
                    Ok(Err(e)) => Some(format!("the server closed the session: {e}")),
                    _ => None,
                }
            } else {
                None
            }
        }
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!(
            "no TLS handshake within {} ms",
            timeout.as_millis()
        )),
    };
    TlsOutcome {
        tcp: TcpState::Open,
        chain,
        error,
        session,
    }
}

/// The profile's TLS facts (`tls`, of flow `flow`) against what the handshake settled: the ALPN the server selected
/// (RFC 7301 section 3.2: none selected means it does not serve the device's protocol there),
/// whether it asked for a client certificate (mutual TLS) and refused the handshake without
/// one, whether it accepted the minimum version, and whether SNI (`sni`, the name sent) could
/// be sent where the server requires it. Each is (verdict, state, detail).
pub fn facts(
    flow: &str,
    tls: &Tls,
    sni: Option<&str>,
    o: &TlsOutcome,
) -> Vec<(Verdict, &'static str, String)> {
    let mut out = Vec::new();
    let done = o.error.is_none();
    let why = o.error.clone().unwrap_or_default();
    if let Some(min) = tls.min_version.as_deref() {
        let offered = if min == "1.3" {
            "TLS 1.3"
        } else {
            "TLS 1.2 and 1.3"
        };
        let refused_cert = o.session.client_cert_requested && !done;
        if done || refused_cert {
            let v = o.session.version.as_deref().unwrap_or("?");
            out.push((
                Verdict::Pass,
                "version-accepted",
                format!(
                    "{flow}: offered {offered} (minimum {min}); the server went on with TLS {v}"
                ),
            ));
        } else {
            out.push((
                Verdict::Fail,
                "version-refused",
                format!("{flow}: offered {offered} (the profile's minimum is {min}); the server refused the handshake: {why}"),
            ));
        }
    }
    if !tls.alpn.is_empty() {
        let offered = tls.alpn.join(", ");
        match &o.session.alpn {
            Some(a) if tls.alpn.contains(a) => out.push((
                Verdict::Pass,
                "alpn-selected",
                format!("{flow}: offered ALPN {offered}; the server selected {a}"),
            )),
            Some(a) => out.push((
                Verdict::Fail,
                "alpn-other",
                format!("{flow}: offered ALPN {offered}; the server selected {a}, which was not offered"),
            )),
            None if done => out.push((
                Verdict::Fail,
                "alpn-not-selected",
                format!("{flow}: offered ALPN {offered}; the server selected none: it does not serve the device's protocol on this port"),
            )),
            None => out.push((
                Verdict::Fail,
                "alpn-not-selected",
                format!("{flow}: offered ALPN {offered}; no protocol was agreed (the handshake failed: {why})"),
            )),
        }
    }
    let asked = o.session.client_cert_requested;
    match (tls.client_cert, asked, done) {
        (true, true, false) => out.push((
            Verdict::Pass,
            "client-cert-required",
            format!("{flow}: the server demands a client certificate (mutual TLS, as the profile says) and refused the probe, which has none: {why}"),
        )),
        (true, true, true) => out.push((
            Verdict::Pass,
            "client-cert-requested",
            format!("{flow}: the server asks for a client certificate (mutual TLS, as the profile says) and accepted the probe without one"),
        )),
        (true, false, _) => out.push((
            Verdict::Warn,
            "client-cert-not-requested",
            format!("{flow}: the profile says the device authenticates with a client certificate, but the server did not ask for one: a TLS-terminating middlebox, or another server than the device's"),
        )),
        (false, true, false) => out.push((
            Verdict::Warn,
            "client-cert-required",
            format!("{flow}: the server demands a client certificate, which the profile does not mention: {why}"),
        )),
        _ => {}
    }
    if tls.sni_required {
        match sni {
            None => out.push((
                Verdict::Warn,
                "sni-unknown",
                format!("{flow}: the server requires SNI, but the profile gives no name to send (`tls.sni`) to a peer reached by address"),
            )),
            Some(n) if done => out.push((
                Verdict::Pass,
                "sni-sent",
                format!("{flow}: sent SNI {n}, which the server requires; it accepted the handshake"),
            )),
            Some(n) => out.push((
                Verdict::Fail,
                "sni-refused",
                format!("{flow}: sent SNI {n}, which the server requires; it refused the handshake: {why}"),
            )),
        }
    }
    out
}

/// One attribute of a distinguished name: short name (`CN`, `O`, `ST`) and value.
pub type Attr = (String, String);

/// The issuer of a DER certificate, attribute by attribute in certificate order.
pub fn issuer(der_cert: &[u8]) -> Result<Vec<Attr>, String> {
    let cert = x509_cert::Certificate::from_der(der_cert).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for rdn in cert.tbs_certificate.issuer.0.iter() {
        for atv in rdn.0.iter() {
            let text = atv.to_string();
            if let Some((k, v)) = text.split_once('=') {
                out.push((k.to_ascii_uppercase(), unescape(v)));
            }
        }
    }
    Ok(out)
}

fn unescape(v: &str) -> String {
    let mut out = String::new();
    let mut esc = false;
    for c in v.chars() {
        if esc || c != '\\' {
            out.push(c);
            esc = false;
        } else {
            esc = true;
        }
    }
    out
}

/// Parses a name written like OpenSSL prints it (`C = GB, O = ARM Ltd, CN = X`), or in
/// RFC 4514 / `openssl -nameopt compat` form (`/C=GB/O=ARM Ltd`).
pub fn parse_name(s: &str) -> Vec<Attr> {
    let s = s.trim().trim_start_matches("issuer=").trim();
    let parts: Vec<&str> = if s.starts_with('/') {
        s.split('/').collect()
    } else {
        s.split(',').collect()
    };
    parts
        .into_iter()
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.trim().to_ascii_uppercase(), v.trim().to_string()))
        })
        .collect()
}

/// `C = GB, O = ARM Ltd, CN = X`.
pub fn show_name(attrs: &[Attr]) -> String {
    attrs
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether two names hold the same attributes (order-insensitive, keys case-insensitive).
pub fn same_name(a: &[Attr], b: &[Attr]) -> bool {
    let mut x: Vec<&Attr> = a.iter().collect();
    let mut y: Vec<&Attr> = b.iter().collect();
    x.sort();
    y.sort();
    x == y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_names_parse_and_compare() {
        let a = parse_name(
            "C = GB, ST = Cambridgeshire, L = Cambridge, O = ARM Ltd, CN = ARM Bootstrap CA",
        );
        assert_eq!(a.len(), 5);
        let b = parse_name("/C=GB/ST=Cambridgeshire/L=Cambridge/O=ARM Ltd/CN=ARM Bootstrap CA");
        assert!(same_name(&a, &b));
        assert!(!same_name(&a, &parse_name("C = GB, CN = ARM Bootstrap CA")));
        assert_eq!(
            show_name(&a),
            "C = GB, ST = Cambridgeshire, L = Cambridge, O = ARM Ltd, CN = ARM Bootstrap CA"
        );
    }
}
