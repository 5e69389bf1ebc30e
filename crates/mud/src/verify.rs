//! Verifying a MUD file's signature (RFC 8520 section 13): a detached CMS `SignedData`
//! (RFC 5652), DER, over the file's exact bytes.
//!
//! Checks, in order: the signature is detached `SignedData` over `id-data`; the signer's
//! certificate is in it; with signed attributes, `content-type` is `id-data` and
//! `message-digest` is the file's digest, and the signature covers the DER `SET OF` attributes
//! (section 5.4), without them it covers the file; the signature verifies with the signer's
//! key; the signer's certificate chains (through certificates carried in the signature) to
//! one of the trust anchors given; every certificate on that path is valid at the time of
//! verification; the signer's certificate has a key usage extension with `digitalSignature`
//! (RFC 8520 section 13.2); and, when asked, the signer's subject is the expected one (the
//! `id-pe-mudsigner` check of section 13.2). Any failure refuses the file.
//!
//! Choices: the RustCrypto crates of one generation that build together — `cms` 0.2,
//! `x509-cert` 0.2, `der` 0.7, `spki` 0.7, `rsa` 0.9, `p256`/`p384` 0.13, `sha2` 0.10 — rather
//! than the `openssl` binary or C bindings: pure Rust, no subprocess, and the same code on
//! every machine. The newer generation (`cms` 0.3, `rsa` 0.10) was still in release
//! candidates. Supported: RSA PKCS #1 v1.5 and ECDSA P-256/P-384 with SHA-256/384/512 (what
//! `openssl cms -sign` makes); RSA-PSS and Ed25519 are refused as unsupported. `rsa` 0.9 has
//! the Marvin timing advisory (RUSTSEC-2023-0071), which concerns private-key operations;
//! only public-key verification is done here. Revocation (CRLs, OCSP) is not checked.

use std::time::SystemTime;

use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use const_oid::ObjectIdentifier;
use der::asn1::OctetString;
use der::{Decode, Encode};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use rsa::pkcs8::DecodePublicKey;
use sha2::Digest;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use x509_cert::Certificate;

use crate::error::MudError;

const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const RSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const RSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// Longest certificate path followed from the signer to a trust anchor.
const MAX_PATH: usize = 8;

/// How to verify.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// The time at which certificates must be valid; default: now.
    pub at: Option<SystemTime>,
    /// The signer's expected subject, e.g. from the device certificate's `id-pe-mudsigner`:
    /// RFC 4514 text (`-nameopt RFC2253`), or OpenSSL's default or `/`-separated forms;
    /// compared as a name ([`crate::dn`]).
    pub signer_subject: Option<String>,
}

/// What was verified.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Verified {
    /// The signer's subject, RFC 4514.
    pub signer: String,
    /// Subjects from the signer to the trust anchor.
    pub chain: Vec<String>,
    pub digest: &'static str,
    pub signed_attributes: bool,
}

#[derive(Clone, Copy)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn of(oid: &ObjectIdentifier) -> Option<Hash> {
        Some(match *oid {
            SHA256 => Hash::Sha256,
            SHA384 => Hash::Sha384,
            SHA512 => Hash::Sha512,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Hash::Sha256 => "sha256",
            Hash::Sha384 => "sha384",
            Hash::Sha512 => "sha512",
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    fn rsa_scheme(self) -> rsa::Pkcs1v15Sign {
        match self {
            Hash::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
            Hash::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
            Hash::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
        }
    }
}

fn input(what: &'static str, reason: impl ToString) -> MudError {
    MudError::SignatureInput {
        what,
        reason: reason.to_string(),
    }
}

/// DER, or PEM (any label) decoded to DER.
fn der_bytes(what: &'static str, bytes: &[u8]) -> Result<Vec<u8>, MudError> {
    if bytes.starts_with(b"-----BEGIN") {
        let (_, der) = der::pem::decode_vec(bytes).map_err(|e| input(what, e))?;
        return Ok(der);
    }
    Ok(bytes.to_vec())
}

/// Trust anchors: one DER certificate, or PEM with one or more.
fn anchors(bytes: &[u8]) -> Result<Vec<Certificate>, MudError> {
    if bytes.starts_with(b"-----BEGIN") {
        let certs =
            Certificate::load_pem_chain(bytes).map_err(|e| input("the CA certificate", e))?;
        if certs.is_empty() {
            return Err(input(
                "the CA certificate",
                "no certificate in the PEM file",
            ));
        }
        return Ok(certs);
    }
    Certificate::from_der(bytes)
        .map(|c| vec![c])
        .map_err(|e| input("the CA certificate", e))
}

/// Verifies `signature` (detached CMS SignedData, DER or PEM) over `content` against the
/// trust anchors in `ca` (PEM or DER).
pub fn verify(
    content: &[u8],
    signature: &[u8],
    ca: &[u8],
    o: &VerifyOptions,
) -> Result<Verified, MudError> {
    let anchors = anchors(ca)?;
    let sig_der = der_bytes("the signature", signature)?;
    let ci = ContentInfo::from_der(&sig_der).map_err(|e| input("the signature", e))?;
    if ci.content_type != ID_SIGNED_DATA {
        return Err(input(
            "the signature",
            format!("content type {} is not SignedData", ci.content_type),
        ));
    }
    let sd: SignedData = ci
        .content
        .decode_as()
        .map_err(|e| input("the signature", e))?;
    if sd.encap_content_info.econtent.is_some() {
        return Err(input(
            "the signature",
            "it embeds its content; a MUD signature is detached (RFC 8520 section 13)",
        ));
    }
    if sd.encap_content_info.econtent_type != ID_DATA {
        return Err(MudError::refused(format!(
            "the signed content type is {}, not id-data",
            sd.encap_content_info.econtent_type
        )));
    }
    let pool: Vec<Certificate> = sd
        .certificates
        .iter()
        .flat_map(|s| s.0.iter())
        .filter_map(|c| match c {
            cms::cert::CertificateChoices::Certificate(c) => Some(c.clone()),
            cms::cert::CertificateChoices::Other(_) => None,
        })
        .collect();
    let signers: Vec<&SignerInfo> = sd.signer_infos.0.iter().collect();
    if signers.is_empty() {
        return Err(MudError::refused("the signature has no signer"));
    }
    let at = o.at.unwrap_or_else(SystemTime::now);
    let mut result = None;
    for si in signers {
        result = Some(verify_signer(content, si, &pool, &anchors, at, o)?);
    }
    result.ok_or_else(|| MudError::refused("the signature has no signer"))
}

fn verify_signer(
    content: &[u8],
    si: &SignerInfo,
    pool: &[Certificate],
    anchors: &[Certificate],
    at: SystemTime,
    o: &VerifyOptions,
) -> Result<Verified, MudError> {
    let signer = find_signer(si, pool)
        .ok_or_else(|| MudError::refused("the signer's certificate is not in the signature"))?;
    let subject = signer.tbs_certificate.subject.to_string();
    let hash = Hash::of(&si.digest_alg.oid).ok_or_else(|| {
        MudError::refused(format!(
            "digest algorithm {} is not supported (sha256, sha384, sha512)",
            si.digest_alg.oid
        ))
    })?;
    let digest = hash.digest(content);
    let message = match &si.signed_attrs {
        None => content.to_vec(),
        Some(attrs) => {
            let mut md_ok = false;
            let mut ct_ok = false;
            for a in attrs.iter() {
                let first = a.values.iter().next();
                if a.oid == ID_MESSAGE_DIGEST {
                    let v = first
                        .and_then(|v| v.decode_as::<OctetString>().ok())
                        .ok_or_else(|| MudError::refused("malformed message-digest attribute"))?;
                    if v.as_bytes() != digest.as_slice() {
                        return Err(MudError::refused(
                            "bad signature: the file's digest is not the signed message-digest (the file was changed)",
                        ));
                    }
                    md_ok = true;
                }
                if a.oid == ID_CONTENT_TYPE {
                    let v = first
                        .and_then(|v| v.decode_as::<ObjectIdentifier>().ok())
                        .ok_or_else(|| MudError::refused("malformed content-type attribute"))?;
                    ct_ok = v == ID_DATA;
                }
            }
            if !md_ok || !ct_ok {
                return Err(MudError::refused(
                    "signed attributes lack message-digest or content-type id-data (RFC 5652 section 5.3)",
                ));
            }
            attrs
                .to_der()
                .map_err(|e| MudError::refused(format!("cannot encode signed attributes: {e}")))?
        }
    };
    verify_sig(
        &si.signature_algorithm.oid,
        Some(hash),
        &signer.tbs_certificate.subject_public_key_info,
        &message,
        si.signature.as_bytes(),
    )
    .map_err(|e| MudError::refused(format!("bad signature: {e}")))?;
    let path = build_path(signer, pool, anchors)?;
    for c in &path {
        let v = &c.tbs_certificate.validity;
        let name = c.tbs_certificate.subject.to_string();
        if at < v.not_before.to_system_time() {
            return Err(MudError::refused(format!(
                "certificate `{name}` is not valid before {}",
                v.not_before
            )));
        }
        if at > v.not_after.to_system_time() {
            return Err(MudError::refused(format!(
                "certificate `{name}` expired on {}",
                v.not_after
            )));
        }
    }
    match signer.tbs_certificate.get::<KeyUsage>() {
        Ok(Some((_, ku))) if ku.digital_signature() => {}
        Ok(Some(_)) => {
            return Err(MudError::refused(format!(
                "wrong signer: `{subject}` may not sign (its key usage lacks digitalSignature)"
            )))
        }
        _ => {
            return Err(MudError::refused(format!(
                "wrong signer: `{subject}` has no key usage extension with digitalSignature (RFC 8520 section 13.2)"
            )))
        }
    }
    if let Some(want) = &o.signer_subject {
        let same = crate::dn::matches(want, &signer.tbs_certificate.subject).map_err(|e| {
            MudError::SignatureInput {
                what: "--signer-subject",
                reason: e.to_string(),
            }
        })?;
        if !same {
            return Err(MudError::refused(format!(
                "wrong signer: signed by `{subject}`, expected `{want}`"
            )));
        }
    }
    Ok(Verified {
        signer: subject,
        chain: path
            .iter()
            .map(|c| c.tbs_certificate.subject.to_string())
            .collect(),
        digest: hash.name(),
        signed_attributes: si.signed_attrs.is_some(),
    })
}

fn find_signer<'a>(si: &SignerInfo, pool: &'a [Certificate]) -> Option<&'a Certificate> {
    pool.iter().find(|c| match &si.sid {
        SignerIdentifier::IssuerAndSerialNumber(iasn) => {
            c.tbs_certificate.issuer == iasn.issuer
                && c.tbs_certificate.serial_number == iasn.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => matches!(
            c.tbs_certificate.get::<SubjectKeyIdentifier>(),
            Ok(Some((_, k))) if k == *ski
        ),
    })
}

/// Whether `issuer` signed `cert`.
fn signed_by(cert: &Certificate, issuer: &Certificate) -> bool {
    if cert.tbs_certificate.issuer != issuer.tbs_certificate.subject {
        return false;
    }
    let Ok(tbs) = cert.tbs_certificate.to_der() else {
        return false;
    };
    verify_sig(
        &cert.signature_algorithm.oid,
        None,
        &issuer.tbs_certificate.subject_public_key_info,
        &tbs,
        cert.signature.raw_bytes(),
    )
    .is_ok()
}

fn is_ca(c: &Certificate) -> bool {
    matches!(c.tbs_certificate.get::<BasicConstraints>(), Ok(Some((_, bc))) if bc.ca)
}

/// The path from the signer to a trust anchor, both included.
fn build_path<'a>(
    signer: &'a Certificate,
    pool: &'a [Certificate],
    anchors: &'a [Certificate],
) -> Result<Vec<&'a Certificate>, MudError> {
    let mut path = vec![signer];
    let mut current = signer;
    for _ in 0..MAX_PATH {
        if anchors.iter().any(|a| a == current) {
            return Ok(path);
        }
        if let Some(a) = anchors.iter().find(|a| signed_by(current, a)) {
            path.push(a);
            return Ok(path);
        }
        match pool
            .iter()
            .find(|c| *c != current && !path.contains(c) && is_ca(c) && signed_by(current, c))
        {
            Some(next) => {
                path.push(next);
                current = next;
            }
            None => break,
        }
    }
    Err(MudError::refused(format!(
        "wrong signer: `{}` (issued by `{}`) does not chain to the trust anchor",
        signer.tbs_certificate.subject, signer.tbs_certificate.issuer
    )))
}

/// Verifies `sig` over `msg` with `key`, for the signature algorithm `alg`; `hash` is the
/// SignerInfo's digest algorithm, used when `alg` names only the key type.
fn verify_sig(
    alg: &ObjectIdentifier,
    hash: Option<Hash>,
    key: &SubjectPublicKeyInfoOwned,
    msg: &[u8],
    sig: &[u8],
) -> Result<(), String> {
    let hash = match *alg {
        RSA_SHA256 | ECDSA_SHA256 => Hash::Sha256,
        RSA_SHA384 | ECDSA_SHA384 => Hash::Sha384,
        RSA_SHA512 | ECDSA_SHA512 => Hash::Sha512,
        RSA | EC_PUBLIC_KEY => hash.ok_or("no digest algorithm for the signature")?,
        other => return Err(format!("signature algorithm {other} is not supported")),
    };
    let digest = hash.digest(msg);
    let key_der = key.to_der().map_err(|e| e.to_string())?;
    let rsa_alg = matches!(*alg, RSA | RSA_SHA256 | RSA_SHA384 | RSA_SHA512);
    if key.algorithm.oid == RSA && rsa_alg {
        let k = rsa::RsaPublicKey::from_public_key_der(&key_der).map_err(|e| e.to_string())?;
        return k
            .verify(hash.rsa_scheme(), &digest, sig)
            .map_err(|_| "the signature does not verify with the signer's key".to_string());
    }
    if key.algorithm.oid == EC_PUBLIC_KEY && !rsa_alg {
        let curve = key
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        let bad = |_| "the signature does not verify with the signer's key".to_string();
        return match curve {
            Some(P256) => {
                let k = p256::ecdsa::VerifyingKey::from_public_key_der(&key_der)
                    .map_err(|e| e.to_string())?;
                let s = p256::ecdsa::Signature::from_der(sig).map_err(|e| e.to_string())?;
                k.verify_prehash(&digest, &s).map_err(bad)
            }
            Some(P384) => {
                let k = p384::ecdsa::VerifyingKey::from_public_key_der(&key_der)
                    .map_err(|e| e.to_string())?;
                let s = p384::ecdsa::Signature::from_der(sig).map_err(|e| e.to_string())?;
                k.verify_prehash(&digest, &s).map_err(bad)
            }
            _ => Err("only the P-256 and P-384 curves are supported".into()),
        };
    }
    Err(format!(
        "signature algorithm {alg} does not fit the signer's key ({})",
        key.algorithm.oid
    ))
}
