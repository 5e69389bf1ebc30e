//! Object names shared by the back ends: set and chain names derived from ids, and the
//! checks that keep every emitted token inside a safe alphabet.

use crate::EmitError;

/// An nftables/ipset object name from parts, joined with `_`.
///
/// The mapping is injective, because two objects sharing a name would be merged by `nft -f`
/// (a chain declared twice collects both rule lists, a set both element lists), silently
/// widening access. Parts made only of lowercase ASCII letters, digits, `-` and `.` are kept as
/// they are, so names stay readable (`k_lrr-ipsec_out`). When a part holds anything else (`_`,
/// which is the separator, capitals, other characters) or the name would pass 31 characters
/// (ipset's limit; nft allows more), a readable prefix is kept and a 64-bit hash of the exact
/// parts is appended: `k_d4_sensors_3f0c…`. The emitters also refuse a name given twice, so
/// even a hash collision cannot merge two objects.
pub fn object(parts: &[&str]) -> String {
    let plain = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
    };
    let joined = parts.join("_");
    if parts.iter().all(|p| plain(p)) && joined.len() <= 31 {
        return joined;
    }
    let mut s: String = joined
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.') {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(14)
        .collect();
    s.push_str(&format!("_{:016x}", fnv(&parts.join("\0"))));
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

/// Checks an interface name (the site's check, repeated at the gate to the output).
pub fn safe_interface(target: &'static str, s: &str) -> Result<String, EmitError> {
    if portolan_model::names::is_interface_name(s) {
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
        assert_eq!(object(&["k", "lrr-1", "out"]), "k_lrr-1_out");
        let long = object(&["fqdn4", "a-very-long-device-group-name-indeed", "endpoint"]);
        assert!(long.len() <= 31, "{long}");
        assert_ne!(
            long,
            object(&["fqdn4", "a-very-long-device-group-name-indeed", "endpoint2"])
        );
        // Ids that differ only where sanitising would fold them get different names.
        let folded = [
            object(&["k", "a-b"]),
            object(&["k", "a_b"]),
            object(&["k", "A-b"]),
            object(&["k", "a", "b"]),
            object(&["k_a", "b"]),
        ];
        for (i, a) in folded.iter().enumerate() {
            assert!(a.len() <= 31, "{a}");
            assert!(
                a.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-._".contains(c)),
                "{a}"
            );
            for b in &folded[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert!(safe_text("t", "comment", "p/f").is_ok());
        assert!(safe_text("t", "comment", "a\" ; drop").is_err());
        assert!(safe_text("t", "comment", "x}\n").is_err());
    }
}
