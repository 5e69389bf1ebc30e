//! IPsec proposal options against the standards' status of each transform: RFC 8247 for IKEv2
//! (encryption, PRF, integrity, Diffie-Hellman groups) and RFC 8221 for ESP (encryption,
//! authentication); the Diffie-Hellman group of an ESP proposal (PFS) is an IKEv2 key
//! exchange, so RFC 8247 section 2.4 rules it too. IKEv1 is deprecated (RFC 9395).
//!
//! Options are named as strongSwan writes them (`aes256`, `sha256`, `modp2048`, `ecp256`,
//! `aes128gcm128`), with `dhN` for group N; a proposal joins options with `-`
//! (`aes256-sha256-dh14`). Each weak option gives one finding, at the option (a list entry)
//! or at the proposal that holds it. A transform the tables leave unjudged (say AES-CBC, a
//! MUST) gives none; a name lint cannot read gives an `unknown-algorithm` note, never silence.

use crate::cite::{self, Citation};
use crate::finding::{Level, LintCode};

/// IKE (phase 1, the IKE SA) or ESP (phase 2, the child SA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Ike,
    Esp,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Ike => "IKE",
            Phase::Esp => "ESP",
        }
    }
}

/// One transform, by its IANA name (RFC 7296 section 3.3.2 and the IANA IKEv2 registry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transform {
    Encryption(&'static str),
    Prf(&'static str),
    Integrity(&'static str),
    DhGroup(u16),
}

impl std::fmt::Display for Transform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transform::Encryption(n) | Transform::Prf(n) | Transform::Integrity(n) => {
                f.write_str(n)
            }
            Transform::DhGroup(g) => write!(f, "Diffie-Hellman group {g}"),
        }
    }
}

/// What the standard says of a weak transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub code: LintCode,
    pub level: Level,
    /// The standard's word: `MUST NOT`, `SHOULD NOT`, `MAY`.
    pub status: &'static str,
    pub citation: Citation,
}

/// An encryption option's IANA name.
pub fn encryption(token: &str) -> Option<&'static str> {
    let t = token.to_ascii_lowercase();
    let name = match t.as_str() {
        "des" => "ENCR_DES",
        "3des" => "ENCR_3DES",
        "null" => "ENCR_NULL",
        "blowfish" | "blowfish128" | "blowfish192" | "blowfish256" => "ENCR_BLOWFISH",
        "cast128" => "ENCR_CAST",
        "aes" | "aes128" | "aes192" | "aes256" => "ENCR_AES_CBC",
        "aes128ctr" | "aes192ctr" | "aes256ctr" => "ENCR_AES_CTR",
        "chacha20poly1305" => "ENCR_CHACHA20_POLY1305",
        "camellia" | "camellia128" | "camellia192" | "camellia256" => "ENCR_CAMELLIA_CBC",
        _ => return aead(&t),
    };
    Some(name)
}

/// `aes128gcm128`, `aes256gcm16`, `aes128ccm8`, …: the ICV length in bits (64, 96, 128) or
/// bytes (8, 12, 16) after the mode.
fn aead(t: &str) -> Option<&'static str> {
    let rest = ["aes128", "aes192", "aes256", "aes"]
        .iter()
        .find_map(|k| t.strip_prefix(k))?;
    let (mode, icv) = if let Some(i) = rest.strip_prefix("gcm") {
        ("GCM", i)
    } else if let Some(i) = rest.strip_prefix("ccm") {
        ("CCM", i)
    } else {
        return None;
    };
    let bytes = match icv {
        "" | "16" | "128" => 16,
        "12" | "96" => 12,
        "8" | "64" => 8,
        _ => return None,
    };
    Some(match (mode, bytes) {
        ("GCM", 16) => "ENCR_AES_GCM_16",
        ("GCM", 12) => "ENCR_AES_GCM_12",
        ("GCM", _) => "ENCR_AES_GCM_8",
        (_, 16) => "ENCR_AES_CCM_16",
        (_, 12) => "ENCR_AES_CCM_12",
        _ => "ENCR_AES_CCM_8",
    })
}

/// An integrity option's IANA name.
pub fn integrity(token: &str) -> Option<&'static str> {
    Some(match token.to_ascii_lowercase().as_str() {
        "md5" => "AUTH_HMAC_MD5_96",
        "sha1" | "sha" => "AUTH_HMAC_SHA1_96",
        "sha256" | "sha2_256" => "AUTH_HMAC_SHA2_256_128",
        "sha384" | "sha2_384" => "AUTH_HMAC_SHA2_384_192",
        "sha512" | "sha2_512" => "AUTH_HMAC_SHA2_512_256",
        "aesxcbc" => "AUTH_AES_XCBC_96",
        _ => return None,
    })
}

/// A `prf…` option's IANA name.
pub fn prf(token: &str) -> Option<&'static str> {
    Some(match token.to_ascii_lowercase().as_str() {
        "prfmd5" => "PRF_HMAC_MD5",
        "prfsha1" => "PRF_HMAC_SHA1",
        "prfsha256" => "PRF_HMAC_SHA2_256",
        "prfsha384" => "PRF_HMAC_SHA2_384",
        "prfsha512" => "PRF_HMAC_SHA2_512",
        "prfaesxcbc" => "PRF_AES128_XCBC",
        _ => return None,
    })
}

/// A Diffie-Hellman option's group number (RFC 2409, RFC 3526, RFC 5903, RFC 5114, RFC 8031).
pub fn dh_group(token: &str) -> Option<u16> {
    let t = token.to_ascii_lowercase();
    if let Some(n) = t.strip_prefix("dh") {
        return n.parse().ok();
    }
    Some(match t.as_str() {
        "modp768" => 1,
        "modp1024" => 2,
        "modp1536" => 5,
        "modp2048" => 14,
        "modp3072" => 15,
        "modp4096" => 16,
        "modp6144" => 17,
        "modp8192" => 18,
        "ecp256" => 19,
        "ecp384" => 20,
        "ecp521" => 21,
        "modp1024s160" => 22,
        "modp2048s224" => 23,
        "modp2048s256" => 24,
        "curve25519" | "x25519" => 31,
        "curve448" | "x448" => 32,
        _ => return None,
    })
}

/// One option of a proposal or list: a transform, or a name lint does not know.
pub fn transform(token: &str) -> Option<Transform> {
    encryption(token)
        .map(Transform::Encryption)
        .or_else(|| integrity(token).map(Transform::Integrity))
        .or_else(|| prf(token).map(Transform::Prf))
        .or_else(|| dh_group(token).map(Transform::DhGroup))
}

/// Tokens of a proposal that carry no algorithm (extended sequence numbers).
pub fn is_neutral(token: &str) -> bool {
    matches!(token.to_ascii_lowercase().as_str(), "esn" | "noesn")
}

/// What the standards say of a transform in a phase; `None` when they do not discourage it.
pub fn verdict(phase: Phase, t: Transform) -> Option<Verdict> {
    let v = |code, level, status, citation| {
        Some(Verdict {
            code,
            level,
            status,
            citation,
        })
    };
    match (phase, t) {
        // RFC 8247 section 2.1.
        (Phase::Ike, Transform::Encryption("ENCR_DES" | "ENCR_NULL")) => v(
            LintCode::IkeWeakEncryption,
            Level::Error,
            "MUST NOT",
            cite::RFC8247_ENCR,
        ),
        (Phase::Ike, Transform::Encryption("ENCR_3DES")) => v(
            LintCode::IkeWeakEncryption,
            Level::Note,
            "MAY (kept only for interoperability; a 64-bit block cipher)",
            cite::RFC8247_ENCR,
        ),
        // RFC 8247 section 2.2.
        (Phase::Ike, Transform::Prf("PRF_HMAC_MD5")) => v(
            LintCode::IkeWeakPrf,
            Level::Error,
            "MUST NOT",
            cite::RFC8247_PRF,
        ),
        // RFC 8247 section 2.3.
        (Phase::Ike, Transform::Integrity("AUTH_HMAC_MD5_96")) => v(
            LintCode::IkeWeakIntegrity,
            Level::Error,
            "MUST NOT",
            cite::RFC8247_INTEG,
        ),
        // RFC 8221 section 5.
        (Phase::Esp, Transform::Encryption("ENCR_DES" | "ENCR_BLOWFISH")) => v(
            LintCode::EspWeakEncryption,
            Level::Error,
            "MUST NOT",
            cite::RFC8221_ENCR,
        ),
        (Phase::Esp, Transform::Encryption("ENCR_3DES")) => v(
            LintCode::EspWeakEncryption,
            Level::Warning,
            "SHOULD NOT",
            cite::RFC8221_ENCR,
        ),
        // RFC 8221 section 6.
        (Phase::Esp, Transform::Integrity("AUTH_HMAC_MD5_96")) => v(
            LintCode::EspWeakIntegrity,
            Level::Error,
            "MUST NOT",
            cite::RFC8221_AUTH,
        ),
        // RFC 8247 section 2.4, for the IKE SA and for a child SA's key exchange alike.
        (phase, Transform::DhGroup(g)) => {
            let code = match phase {
                Phase::Ike => LintCode::IkeWeakDhGroup,
                Phase::Esp => LintCode::EspWeakDhGroup,
            };
            match g {
                1 | 22 => v(code, Level::Error, "MUST NOT", cite::RFC8247_DH),
                2 | 5 | 23 | 24 => v(code, Level::Warning, "SHOULD NOT", cite::RFC8247_DH),
                _ => None,
            }
        }
        _ => None,
    }
}

/// What to use instead, per kind of transform.
pub fn remedy(t: Transform) -> &'static str {
    match t {
        Transform::Encryption(_) => "offer AES (CBC, or GCM as an AEAD) or ChaCha20-Poly1305 only",
        Transform::Prf(_) => "use PRF_HMAC_SHA2_256 or stronger",
        Transform::Integrity(_) => "use HMAC-SHA2-256 or stronger (or an AEAD cipher)",
        Transform::DhGroup(_) => "use Diffie-Hellman group 14 (2048-bit MODP), 19 (ECP-256) or 31 (Curve25519) or stronger",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_as_strongswan_writes_them() {
        assert_eq!(encryption("aes128gcm128"), Some("ENCR_AES_GCM_16"));
        assert_eq!(encryption("aes256gcm16"), Some("ENCR_AES_GCM_16"));
        assert_eq!(encryption("aes128ccm64"), Some("ENCR_AES_CCM_8"));
        assert_eq!(encryption("3DES"), Some("ENCR_3DES"));
        assert_eq!(dh_group("modp2048"), Some(14));
        assert_eq!(dh_group("ecp521"), Some(21));
        assert_eq!(dh_group("dh2"), Some(2));
        assert_eq!(integrity("sha256"), Some("AUTH_HMAC_SHA2_256_128"));
        assert_eq!(transform("foo"), None);
    }

    #[test]
    fn the_standards_words_become_levels() {
        let l = |p, t| verdict(p, t).map(|v| v.level);
        assert_eq!(l(Phase::Ike, Transform::DhGroup(1)), Some(Level::Error));
        assert_eq!(l(Phase::Ike, Transform::DhGroup(2)), Some(Level::Warning));
        assert_eq!(l(Phase::Esp, Transform::DhGroup(5)), Some(Level::Warning));
        assert_eq!(l(Phase::Ike, Transform::DhGroup(14)), None);
        // RFC 8247 section 2.4: group 22 (1024-bit MODP, 160-bit subgroup) MUST NOT, 23 and
        // 24 SHOULD NOT; section 2.1: ENCR_NULL MUST NOT in IKEv2 (RFC 8221: MUST in ESP).
        assert_eq!(l(Phase::Esp, Transform::DhGroup(22)), Some(Level::Error));
        assert_eq!(l(Phase::Ike, Transform::DhGroup(24)), Some(Level::Warning));
        assert_eq!(
            l(Phase::Ike, Transform::Encryption("ENCR_NULL")),
            Some(Level::Error)
        );
        assert_eq!(l(Phase::Esp, Transform::Encryption("ENCR_NULL")), None);
        assert_eq!(
            l(Phase::Ike, Transform::Encryption("ENCR_3DES")),
            Some(Level::Note)
        );
        assert_eq!(
            l(Phase::Esp, Transform::Encryption("ENCR_3DES")),
            Some(Level::Warning)
        );
        assert_eq!(
            l(Phase::Esp, Transform::Integrity("AUTH_HMAC_SHA1_96")),
            None
        );
        assert_eq!(
            l(Phase::Ike, Transform::Integrity("AUTH_HMAC_MD5_96")),
            Some(Level::Error)
        );
    }
}
