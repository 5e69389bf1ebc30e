//! Object names shared by the back ends: set and chain names derived from ids, and the
//! checks that keep every emitted token inside a safe alphabet.

use crate::EmitError;

/// An nftables/ipset object name from parts: lowercase ASCII letters, digits and `_`, at most
/// 31 characters (ipset's limit; nft allows more). Long names keep a hash suffix for
/// uniqueness.
pub fn object(parts: &[&str]) -> String {
    let mut s: String = parts
        .join("_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.len() > 31 {
        let h = fnv(&s);
        s.truncate(22);
        s.push_str(&format!("_{:08x}", h as u32));
    }
    s
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Checks a comment or log text: printable ASCII without quotes or backslashes.
pub fn safe_text(target: &'static str, what: &'static str, s: &str) -> Result<String, EmitError> {
    if s.chars().all(|c| {
        c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '\'' | ';' | '{' | '}' | '#' | '$' | '`')
            || c == ' '
    }) && s.len() <= 120
    {
        Ok(s.to_string())
    } else {
        Err(EmitError::Unsafe {
            target,
            what,
            value: s.to_string(),
        })
    }
}

/// Checks a DNS name before it reaches an output.
pub fn safe_hostname(target: &'static str, s: &str) -> Result<String, EmitError> {
    if portolan_model::names::is_hostname(s) {
        Ok(s.to_string())
    } else {
        Err(EmitError::Unsafe {
            target,
            what: "hostname",
            value: s.to_string(),
        })
    }
}

/// Checks an interface name.
pub fn safe_interface(target: &'static str, s: &str) -> Result<String, EmitError> {
    if !s.is_empty()
        && s.len() <= 15
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '*'))
    {
        Ok(s.to_string())
    } else {
        Err(EmitError::Unsafe {
            target,
            what: "interface",
            value: s.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_safe_and_bounded() {
        assert_eq!(object(&["out", "lrr-1"]), "out_lrr_1");
        let long = object(&["fqdn4", "a-very-long-device-group-name-indeed", "endpoint"]);
        assert!(long.len() <= 31, "{long}");
        assert_ne!(
            long,
            object(&["fqdn4", "a-very-long-device-group-name-indeed", "endpoint2"])
        );
        assert!(safe_text("t", "comment", "p/f").is_ok());
        assert!(safe_text("t", "comment", "a\" ; drop").is_err());
        assert!(safe_text("t", "comment", "x}\n").is_err());
    }
}
