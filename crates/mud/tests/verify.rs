//! MUD signatures (RFC 8520 section 13) with keys and certificates this test makes itself with
//! the `openssl` command (installed by the README's set-up): a good signature verifies (RSA and
//! ECDSA, with and without signed attributes, through an intermediate CA), and a changed file,
//! a signer from another CA, an expired certificate, a certificate that may not sign and an
//! unexpected signer are refused.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use portolan_mud::{verify, MudError, VerifyOptions};

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let ok = Command::new("openssl").arg("version").output();
        assert!(
            ok.is_ok_and(|o| o.status.success()),
            "these tests need the `openssl` command (Debian package openssl, see the README's set-up)"
        );
        Pki {
            dir: tempfile::tempdir().expect("temporary folder"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn key_args(ec: bool) -> Vec<&'static str> {
        if ec {
            vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        } else {
            vec!["-newkey", "rsa:2048"]
        }
    }

    /// A self-signed CA `name`.pem / `name`.key.
    fn ca(&self, name: &str) {
        let (key, pem, subj) = (
            format!("{name}.key"),
            format!("{name}.pem"),
            format!("/CN={name}"),
        );
        let mut args = vec!["req", "-x509", "-nodes", "-days", "30"];
        args.extend(Self::key_args(false));
        args.extend([
            "-keyout",
            &key,
            "-out",
            &pem,
            "-subj",
            &subj,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        self.run(&args);
    }

    /// A certificate `name` issued by `issuer`, with the given extensions.
    fn cert(&self, name: &str, issuer: &str, ec: bool, ext: &str) {
        self.cert_as(name, &format!("/CN={name}/O=Example"), issuer, ec, ext);
    }

    /// A certificate `name` with the subject `subj` (OpenSSL's `-subj` form, UTF-8, `+` for a
    /// multi-valued RDN).
    fn cert_as(&self, name: &str, subj: &str, issuer: &str, ec: bool, ext: &str) {
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        let subj = subj.to_string();
        let mut args = vec!["req", "-nodes", "-utf8", "-multivalue-rdn"];
        args.extend(Self::key_args(ec));
        args.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        self.run(&args);
        let extfile = format!("{name}.ext");
        fs::write(self.path(&extfile), format!("{ext}\n")).expect("writes");
        let (ca_pem, ca_key) = (format!("{issuer}.pem"), format!("{issuer}.key"));
        self.run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "30",
            "-out",
            &pem,
            "-extfile",
            &extfile,
        ]);
    }

    /// A certificate that expired in 2021, through `openssl ca` (which takes explicit dates).
    fn expired_cert(&self, name: &str, issuer: &str) {
        let (key, csr, pem, subj) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("/CN={name}"),
        );
        let mut args = vec!["req", "-nodes"];
        args.extend(Self::key_args(false));
        args.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        self.run(&args);
        fs::write(self.path("index.txt"), "").expect("writes");
        fs::write(self.path("serial"), "1000\n").expect("writes");
        fs::write(
            self.path("ca.cnf"),
            "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
             default_md = sha256\npolicy = p\nx509_extensions = x\n[p]\ncommonName = supplied\n\
             [x]\nkeyUsage = critical,digitalSignature\n",
        )
        .expect("writes");
        let (ca_pem, ca_key) = (format!("{issuer}.pem"), format!("{issuer}.key"));
        self.run(&[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-cert",
            &ca_pem,
            "-keyfile",
            &ca_key,
            "-in",
            &csr,
            "-out",
            &pem,
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20210101000000Z",
            "-notext",
        ]);
    }

    /// The subject of `name`.pem as `openssl x509 -subject` prints it with `nameopt`
    /// (`subject=` removed).
    fn subject(&self, name: &str, nameopt: &str) -> String {
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-subject", "-nameopt", nameopt, "-in"])
            .arg(format!("{name}.pem"))
            .current_dir(self.dir.path())
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("UTF-8");
        text.trim().trim_start_matches("subject=").to_string()
    }

    /// Signs `file` with `signer`; returns the DER signature's path.
    fn sign(&self, file: &str, signer: &str, extra: &[&str]) -> PathBuf {
        let (pem, key, out) = (
            format!("{signer}.pem"),
            format!("{signer}.key"),
            format!("{file}.{signer}.p7s"),
        );
        let mut args = vec![
            "cms", "-sign", "-binary", "-in", file, "-signer", &pem, "-inkey", &key, "-outform",
            "DER", "-out", &out,
        ];
        args.extend_from_slice(extra);
        self.run(&args);
        self.path(&out)
    }
}

const SIGNING: &str = "keyUsage=critical,digitalSignature";

fn read(p: &Path) -> Vec<u8> {
    fs::read(p).expect("readable")
}

fn setup() -> (Pki, Vec<u8>) {
    let pki = Pki::new();
    let mud = br#"{"ietf-mud:mud": {"mud-version": 1, "mud-url": "https://example.com/x.json"}}"#;
    fs::write(pki.path("mud.json"), mud).expect("writes");
    pki.ca("root");
    (pki, mud.to_vec())
}

fn refused(r: Result<portolan_mud::Verified, MudError>) -> String {
    match r {
        Err(MudError::SignatureRefused(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn good_signatures_verify() {
    let (pki, mud) = setup();
    let ca = read(&pki.path("root.pem"));
    pki.cert("rsa-signer", "root", false, SIGNING);
    pki.cert("ec-signer", "root", true, SIGNING);
    for (signer, extra) in [
        ("rsa-signer", vec![]),
        ("rsa-signer", vec!["-noattr"]),
        ("rsa-signer", vec!["-md", "sha384"]),
        ("ec-signer", vec![]),
        ("ec-signer", vec!["-noattr", "-md", "sha512"]),
    ] {
        let sig = pki.sign("mud.json", signer, &extra);
        let v = verify(&mud, &read(&sig), &ca, &VerifyOptions::default())
            .unwrap_or_else(|e| panic!("{signer} {extra:?}: {e}"));
        assert_eq!(v.signer, format!("O=Example,CN={signer}"));
        assert_eq!(v.chain.len(), 2);
        assert_eq!(v.signed_attributes, !extra.contains(&"-noattr"));
    }
    // The expected signer, as `--signer-subject` gives it.
    let sig = pki.sign("mud.json", "rsa-signer", &[]);
    let o = VerifyOptions {
        signer_subject: Some("O=Example, CN=rsa-signer".into()),
        ..VerifyOptions::default()
    };
    verify(&mud, &read(&sig), &ca, &o).expect("the expected signer");
}

#[test]
fn an_intermediate_carried_in_the_signature_is_followed() {
    let (pki, mud) = setup();
    pki.cert(
        "intermediate",
        "root",
        false,
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign",
    );
    pki.cert("leaf", "intermediate", true, SIGNING);
    let sig = pki.sign("mud.json", "leaf", &["-certfile", "intermediate.pem"]);
    let v = verify(
        &mud,
        &read(&sig),
        &read(&pki.path("root.pem")),
        &VerifyOptions::default(),
    )
    .expect("verifies through the intermediate");
    assert_eq!(v.chain.len(), 3);
}

#[test]
fn a_changed_file_is_refused() {
    let (pki, mut mud) = setup();
    pki.cert("signer", "root", false, SIGNING);
    let ca = read(&pki.path("root.pem"));
    for extra in [vec![], vec!["-noattr"]] {
        let sig = pki.sign("mud.json", "signer", &extra);
        let last = mud.len() - 2;
        mud[last] ^= 1;
        let why = refused(verify(&mud, &read(&sig), &ca, &VerifyOptions::default()));
        assert!(why.contains("bad signature"), "{why}");
        mud[last] ^= 1;
    }
}

#[test]
fn a_signer_from_another_ca_is_refused() {
    let (pki, mud) = setup();
    pki.ca("other-root");
    pki.cert("stranger", "other-root", false, SIGNING);
    let sig = pki.sign("mud.json", "stranger", &[]);
    let why = refused(verify(
        &mud,
        &read(&sig),
        &read(&pki.path("root.pem")),
        &VerifyOptions::default(),
    ));
    assert!(why.contains("wrong signer"), "{why}");
}

#[test]
fn an_unexpected_signer_is_refused() {
    let (pki, mud) = setup();
    pki.cert("signer", "root", false, SIGNING);
    let sig = pki.sign("mud.json", "signer", &[]);
    let o = VerifyOptions {
        signer_subject: Some("CN=someone else".into()),
        ..VerifyOptions::default()
    };
    let why = refused(verify(&mud, &read(&sig), &read(&pki.path("root.pem")), &o));
    assert!(why.contains("wrong signer"), "{why}");
}

#[test]
fn an_expired_certificate_is_refused() {
    let (pki, mud) = setup();
    pki.expired_cert("old", "root");
    let sig = pki.sign("mud.json", "old", &[]);
    let ca = read(&pki.path("root.pem"));
    let why = refused(verify(&mud, &read(&sig), &ca, &VerifyOptions::default()));
    assert!(why.contains("expired"), "{why}");
    // It was good while it lasted.
    let then = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    let o = VerifyOptions {
        at: Some(then),
        ..VerifyOptions::default()
    };
    // The root CA was made today, so at that time it was not yet valid either.
    let why = refused(verify(&mud, &read(&sig), &ca, &o));
    assert!(why.contains("not valid before"), "{why}");
}

#[test]
fn a_certificate_that_may_not_sign_is_refused() {
    let (pki, mud) = setup();
    pki.cert(
        "encipherer",
        "root",
        false,
        "keyUsage=critical,keyEncipherment",
    );
    let sig = pki.sign("mud.json", "encipherer", &[]);
    let why = refused(verify(
        &mud,
        &read(&sig),
        &read(&pki.path("root.pem")),
        &VerifyOptions::default(),
    ));
    assert!(why.contains("digitalSignature"), "{why}");
}

#[test]
fn unreadable_inputs_are_input_errors() {
    let (pki, mud) = setup();
    let ca = read(&pki.path("root.pem"));
    assert!(matches!(
        verify(&mud, b"not a signature", &ca, &VerifyOptions::default()),
        Err(MudError::SignatureInput { .. })
    ));
    pki.cert("signer", "root", false, SIGNING);
    let sig = pki.sign("mud.json", "signer", &[]);
    assert!(matches!(
        verify(&mud, &read(&sig), b"junk", &VerifyOptions::default()),
        Err(MudError::SignatureInput { .. })
    ));
    // An attached (non-detached) signature is not a MUD signature.
    let attached = pki.sign("mud.json", "signer", &["-nodetach"]);
    assert!(matches!(
        verify(&mud, &read(&attached), &ca, &VerifyOptions::default()),
        Err(MudError::SignatureInput { .. })
    ));
}

/// `--signer-subject` as any of OpenSSL's printed forms of the signer's subject is the signer;
/// the same attributes in another order, or one value changed, are another name. The expected
/// texts are what `openssl x509 -subject` prints, not what this crate writes.
#[test]
fn the_signer_subject_compares_as_a_name_in_every_form_openssl_prints() {
    let (pki, mud) = setup();
    let ca = read(&pki.path("root.pem"));
    let subj = "/C=DE/O=Example, Inc./OU=MUD+CN=Signer M\u{fc}ller";
    pki.cert_as("dn-signer", subj, "root", false, SIGNING);
    // The same RDNs in reverse order: a different name from the same CA.
    pki.cert_as(
        "reversed",
        "/OU=MUD+CN=Signer M\u{fc}ller/O=Example, Inc./C=DE",
        "root",
        false,
        SIGNING,
    );
    let sig = pki.sign("mud.json", "dn-signer", &[]);
    let mut forms = Vec::new();
    for nameopt in ["oneline", "compat", "RFC2253"] {
        forms.push((nameopt, pki.subject("dn-signer", nameopt)));
    }
    // openssl's own spellings differ: quotes, `\C3\BC` and `\xC3\xBC`, order.
    assert!(forms[0].1.contains(" = "), "{forms:?}");
    assert!(forms[1].1.starts_with('/'), "{forms:?}");
    assert!(forms[2].1.starts_with("CN="), "{forms:?}");
    let with = |want: &str| VerifyOptions {
        signer_subject: Some(want.to_string()),
        ..VerifyOptions::default()
    };
    for (nameopt, want) in &forms {
        verify(&mud, &read(&sig), &ca, &with(want))
            .unwrap_or_else(|e| panic!("-nameopt {nameopt}: `{want}`: {e}"));
        // Case and spacing of values do not make another name (RFC 4518 caseIgnoreMatch).
        let shouted = want
            .replace("Signer", "SIGNER ")
            .replace("Example", "example");
        verify(&mud, &read(&sig), &ca, &with(&shouted))
            .unwrap_or_else(|e| panic!("-nameopt {nameopt}: `{shouted}`: {e}"));
    }
    // The reversed certificate's subject in each form names another signer.
    for nameopt in ["oneline", "compat", "RFC2253"] {
        let other = pki.subject("reversed", nameopt);
        let why = refused(verify(&mud, &read(&sig), &ca, &with(&other)));
        assert!(why.contains("wrong signer"), "{nameopt}: {why}");
    }
    // One value changed.
    let changed = forms[2].1.replace("C=DE", "C=FR");
    let why = refused(verify(&mud, &read(&sig), &ca, &with(&changed)));
    assert!(why.contains("wrong signer"), "{why}");
    // Text that is no name is bad input, not a refusal.
    match verify(&mud, &read(&sig), &ca, &with("Signer Mueller")) {
        Err(MudError::SignatureInput { what, .. }) => assert_eq!(what, "--signer-subject"),
        other => panic!("expected bad input, got {other:?}"),
    }
}
