//! Distinguished names compared as names, not as strings (`mud verify --signer-subject`).
//!
//! A subject can be written three ways, and a person copies whichever their tool printed:
//!
//! - RFC 4514 (`openssl x509 -subject -nameopt RFC2253`, LDAP, `x509-cert`'s `Display`):
//!   `CN=signer,O=Example`. RFC 4514 section 2.1 writes the RDNs from the last of the
//!   certificate's RDNSequence to the first.
//! - OpenSSL's default (`-nameopt oneline`): `CN = signer, O = Example`, with spaces around
//!   `=`, in the certificate's own order (first RDN first).
//! - OpenSSL's compat form (`-nameopt compat`, and what `-subj` takes): `/CN=signer/O=Example`,
//!   also in the certificate's order.
//!
//! The order is part of the name (X.501: a DN is a sequence), so each form is read in its own
//! order and never in the other: `O=Example,CN=x` and `CN=x,O=Example` (RFC 4514) are two
//! different names. Within one RDN, attribute-value pairs (`+`) are a set. Attribute types
//! compare by OID (`CN`, `cn`, `commonName` and `2.5.4.3` are one type). Values compare as
//! RFC 4518's caseIgnoreMatch does for the directory strings certificates carry (RFC 5280
//! section 7.1): case folded, leading and trailing spaces removed, inner runs of spaces made
//! one. Escapes are RFC 4514's: `\,` and `\` followed by two hex digits (bytes of UTF-8, as
//! OpenSSL writes non-ASCII), and a `#` value is the attribute's BER, compared byte for byte.

use const_oid::db::DB;
use const_oid::ObjectIdentifier;
use der::asn1::{Ia5StringRef, PrintableStringRef, TeletexStringRef, Utf8StringRef};
use der::{Encode, Tag, Tagged};
use x509_cert::name::Name;

/// One attribute value, normalised: a string (caseIgnoreMatch form) or the BER of a value that
/// is not a string.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Value {
    Text(String),
    Ber(Vec<u8>),
}

/// An RDN: its attribute-value pairs, sorted (a set).
type Rdn = Vec<(String, Value)>;

/// A name in the certificate's order (first RDN of the RDNSequence first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dn(Vec<Rdn>);

/// Why a subject could not be read as a distinguished name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot read `{text}` as a distinguished name: {why}")]
pub struct DnError {
    pub text: String,
    pub why: String,
}

impl Dn {
    /// Reads a subject in any of the three forms the module documentation lists (a leading
    /// `subject=`, as `openssl x509 -subject` prints, is skipped).
    pub fn parse(text: &str) -> Result<Dn, DnError> {
        let err = |why: String| DnError {
            text: text.to_string(),
            why,
        };
        let t = text.trim();
        let t = t.strip_prefix("subject=").unwrap_or(t).trim();
        if t.is_empty() {
            return Err(err("it is empty".into()));
        }
        let rdns = if let Some(rest) = t.strip_prefix('/') {
            compat(rest).map_err(err)?
        } else {
            let oneline = is_oneline(t);
            let mut rdns = split_unescaped(t, b',')
                .into_iter()
                .map(rdn)
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?;
            if !oneline {
                rdns.reverse();
            }
            rdns
        };
        Ok(Dn(rdns))
    }

    /// The subject or issuer of a certificate.
    pub fn of(name: &Name) -> Dn {
        let rdns = name
            .0
            .iter()
            .map(|rdn| {
                let mut avas: Rdn = rdn
                    .0
                    .iter()
                    .map(|atv| (atv.oid.to_string(), cert_value(&atv.value)))
                    .collect();
                avas.sort();
                avas
            })
            .collect();
        Dn(rdns)
    }
}

/// Whether `want` (text) names `have` (a certificate's name).
pub fn matches(want: &str, have: &Name) -> Result<bool, DnError> {
    Ok(Dn::parse(want)? == Dn::of(have))
}

/// OpenSSL's oneline form puts a space before `=` (`CN = x`); RFC 4514 allows none there.
fn is_oneline(t: &str) -> bool {
    let b = t.as_bytes();
    (1..b.len()).any(|i| b[i] == b'=' && b[i - 1] == b' ' && !escaped(b, i))
}

fn escaped(b: &[u8], i: usize) -> bool {
    let mut n = 0usize;
    let mut j = i;
    while j > 0 && b[j - 1] == b'\\' {
        n += 1;
        j -= 1;
    }
    !n.is_multiple_of(2)
}

/// Splits at `sep` where it is neither escaped nor inside double quotes (OpenSSL's oneline
/// form quotes a value holding a comma, as RFC 1779 did: `O = "Example, Inc."`).
fn split_unescaped(s: &str, sep: u8) -> Vec<&str> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for i in 0..b.len() {
        if b[i] == b'"' && !escaped(b, i) {
            quoted = !quoted;
        } else if b[i] == sep && !quoted && !escaped(b, i) {
            out.push(&s[start..i]);
            start = i + 1;
        }
    }
    out.push(&s[start..]);
    out
}

/// `/CN=x/O=y` (values unescaped): a `/` starts a new RDN only where a type and `=` follow,
/// so a value may hold `/`; `+` joins pairs of one RDN the same way.
fn compat(rest: &str) -> Result<Vec<Rdn>, String> {
    let mut rdns: Vec<Rdn> = Vec::new();
    let mut pieces: Vec<(bool, &str)> = Vec::new(); // (starts a new RDN, "type=value")
    let b = rest.as_bytes();
    let mut start = 0;
    let mut new_rdn = true;
    for i in 0..=b.len() {
        let boundary =
            i == b.len() || ((b[i] == b'/' || b[i] == b'+') && starts_pair(&rest[i + 1..]));
        if boundary {
            pieces.push((new_rdn, &rest[start..i]));
            if i < b.len() {
                new_rdn = b[i] == b'/';
                start = i + 1;
            }
        }
    }
    for (new, piece) in pieces {
        let (ty, val) = piece
            .split_once('=')
            .ok_or_else(|| format!("`{piece}` has no `=`"))?;
        let pair = (attr_type(ty.trim())?, text_value(val, false)?);
        match rdns.last_mut() {
            Some(r) if !new => r.push(pair),
            _ => rdns.push(vec![pair]),
        }
    }
    for r in &mut rdns {
        r.sort();
    }
    Ok(rdns)
}

fn starts_pair(s: &str) -> bool {
    let Some((ty, _)) = s.split_once('=') else {
        return false;
    };
    !ty.is_empty()
        && ty
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
}

fn rdn(text: &str) -> Result<Rdn, String> {
    let mut avas = split_unescaped(text, b'+')
        .into_iter()
        .map(|ava| {
            let eq = ava
                .find('=')
                .ok_or_else(|| format!("`{}` has no `=`", ava.trim()))?;
            let (ty, val) = (&ava[..eq], &ava[eq + 1..]);
            Ok((attr_type(ty.trim())?, text_value(val, true)?))
        })
        .collect::<Result<Rdn, String>>()?;
    avas.sort();
    Ok(avas)
}

/// An attribute type's OID, from a name (any case) or a dotted OID.
fn attr_type(t: &str) -> Result<String, String> {
    if t.is_empty() {
        return Err("an attribute type is missing".into());
    }
    if t.as_bytes()[0].is_ascii_digit() {
        return ObjectIdentifier::new(t)
            .map(|o| o.to_string())
            .map_err(|_| format!("`{t}` is not an OID"));
    }
    // OpenSSL's short names that the OID database spells otherwise.
    let name = match t.to_ascii_lowercase().as_str() {
        "gn" => "givenName".to_string(),
        "email" => "emailAddress".to_string(),
        _ => t.to_string(),
    };
    DB.by_name(&name)
        .map(|o| o.to_string())
        .ok_or_else(|| format!("`{t}` is not an attribute type this tool knows"))
}

/// A value as written: RFC 4514 escapes undone (with `escapes`), or `#` and BER hex.
fn text_value(v: &str, escapes: bool) -> Result<Value, String> {
    let v = v.trim_matches(' ');
    if escapes {
        if let Some(hex) = v.strip_prefix('#') {
            return unhex(hex).map(Value::Ber);
        }
    }
    if !escapes {
        return compat_value(v);
    }
    let v = match v.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
        Some(inner) => inner,
        None => v,
    };
    let mut bytes = Vec::with_capacity(v.len());
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let next = b.get(i + 1).ok_or("a value ends in `\\`")?;
            if next.is_ascii_hexdigit() {
                let pair = v.get(i + 1..i + 3).ok_or("`\\` needs two hex digits")?;
                bytes.push(u8::from_str_radix(pair, 16).map_err(|_| "bad `\\` hex escape")?);
                i += 3;
            } else {
                bytes.push(*next);
                i += 2;
            }
        } else {
            bytes.push(b[i]);
            i += 1;
        }
    }
    let s = String::from_utf8(bytes).map_err(|_| "an escaped value is not UTF-8".to_string())?;
    Ok(Value::Text(fold(&s)))
}

/// A value of the compat form: OpenSSL writes bytes past ASCII as `\xHH`.
fn compat_value(v: &str) -> Result<Value, String> {
    let b = v.as_bytes();
    let mut bytes = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'\\' && b.get(i + 1) == Some(&b'x'))
            .then(|| v.get(i + 2..i + 4))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                bytes.push(byte);
                i += 4;
            }
            None => {
                bytes.push(b[i]);
                i += 1;
            }
        }
    }
    let s = String::from_utf8(bytes).map_err(|_| "a value is not UTF-8".to_string())?;
    Ok(Value::Text(fold(&s)))
}

fn unhex(h: &str) -> Result<Vec<u8>, String> {
    if !h.len().is_multiple_of(2) {
        return Err(format!("`#{h}`: odd number of hex digits"));
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).map_err(|_| format!("`#{h}` is not hex")))
        .collect()
}

/// RFC 4518 caseIgnoreMatch, for the characters certificates use: case folded, outer spaces
/// removed, inner runs of spaces made one (section 2.6.1, insignificant space handling).
fn fold(s: &str) -> String {
    s.split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn cert_value(v: &der::Any) -> Value {
    let s = match v.tag() {
        Tag::PrintableString => PrintableStringRef::try_from(v).ok().map(|s| s.as_str()),
        Tag::Utf8String => Utf8StringRef::try_from(v).ok().map(|s| s.as_str()),
        Tag::Ia5String => Ia5StringRef::try_from(v).ok().map(|s| s.as_str()),
        Tag::TeletexString => TeletexStringRef::try_from(v).ok().map(|s| s.as_str()),
        _ => None,
    };
    match s {
        Some(s) => Value::Text(fold(s)),
        None => Value::Ber(v.to_der().unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_read_in_their_own_order() {
        let rfc = Dn::parse("CN=signer,O=Example").expect("rfc 4514");
        let oneline = Dn::parse("subject=O = Example, CN = signer").expect("oneline");
        let compat = Dn::parse("/O=Example/CN=signer").expect("compat");
        assert_eq!(rfc, oneline);
        assert_eq!(rfc, compat);
        // The same RDNs in the other order are another name.
        assert_ne!(rfc, Dn::parse("O=Example,CN=signer").expect("rfc 4514"));
        assert_ne!(compat, Dn::parse("/CN=signer/O=Example").expect("compat"));
    }

    #[test]
    fn types_values_and_escapes_compare_as_names() {
        let a = Dn::parse("commonName=Big  Signer ,o=ACME\\, Inc.").expect("a");
        let b = Dn::parse("CN=big signer,O=acme\\2C inc.").expect("b");
        assert_eq!(a, b);
        let c = Dn::parse("2.5.4.3=big signer,2.5.4.10=acme\\, inc.").expect("c");
        assert_eq!(a, c);
        // A multi-valued RDN is a set.
        assert_eq!(
            Dn::parse("CN=x+OU=y,O=z").expect("d"),
            Dn::parse("OU=y+CN=x,O=z").expect("e")
        );
        assert_ne!(
            Dn::parse("CN=x+OU=y,O=z").expect("d"),
            Dn::parse("CN=x,OU=y,O=z").expect("f")
        );
        assert!(Dn::parse("CN").is_err());
        assert!(Dn::parse("XYZZY=1").is_err());
    }
}
