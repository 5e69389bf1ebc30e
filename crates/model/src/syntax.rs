//! The syntax of what profiles and sites name: identifiers, DNS hostnames (RFC 1123), wildcard
//! domains, interface names and host templates.
//! Everything a profile names passes through here, so that nothing a third party wrote can
//! carry quotes, spaces or punctuation into an emitted ruleset.

/// An identifier for profiles, modes, params, endpoints and flows: ASCII letters, digits,
/// `-`, `_` and `.`, starting with a letter or digit, at most 64 characters.
pub fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A profile id: lowercase letters, digits and `-`.
pub fn is_profile_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// One DNS label: 1–63 letters, digits or hyphens, not starting or ending with a hyphen.
pub fn is_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

/// A fully qualified hostname (a trailing dot is allowed); at least two labels.
/// The last label may not be all digits (RFC 1123 section 2.1, RFC 3696 section 2), so an
/// IPv4 address, valid or not (`10.0.0.300`), is never taken for a name.
pub fn is_hostname(s: &str) -> bool {
    // One pass over the bytes (each host of each device is checked: this was 7 % of
    // compiling 100,000 one-device groups as splits and char iterators); the same rules as
    // [`is_label`] per label, held to the split form in this module's tests.
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.len() > 253 {
        return false;
    }
    let (mut labels, mut len, mut digits) = (0usize, 0usize, true);
    let mut prev = b'.';
    for &b in s.as_bytes() {
        if b == b'.' {
            if len == 0 || prev == b'-' {
                return false;
            }
            labels += 1;
            (len, digits) = (0, true);
        } else {
            if !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_') || (len == 0 && b == b'-') {
                return false;
            }
            len += 1;
            digits &= b.is_ascii_digit();
            if len > 63 {
                return false;
            }
        }
        prev = b;
    }
    // The last label: not empty, not ending in `-`, not all digits; and two labels at least.
    len > 0 && prev != b'-' && !digits && labels >= 1
}

/// The split form of [`is_hostname`], which it replaced, kept to hold it to.
#[cfg(test)]
fn is_hostname_by_split(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    let tld_ok = s
        .rsplit('.')
        .next()
        .is_some_and(|l| !l.chars().all(|c| c.is_ascii_digit()));
    s.len() <= 253 && s.split('.').count() >= 2 && s.split('.').all(is_label) && tld_ok
}

/// Why a wildcard domain was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum WildcardError {
    /// `*` somewhere other than the whole leftmost label.
    NotLeftmost,
    /// The part after `*.` is not a hostname.
    Invalid,
}

/// An interface name as a zone may give it: what the kernel accepts for a device name
/// (`dev_valid_name`: 1 to 15 bytes, not `.` or `..`, no `/`, `:` or whitespace; here further
/// limited to letters, digits, `-`, `_` and `.`), optionally ending in `*` after at least one
/// such character, the wildcard nft accepts (`iifname "lan*"`) and the iptables back end
/// turns into its `+`. An all-wildcard `*` is refused by nft.
pub fn is_interface_name(s: &str) -> bool {
    let stem = s.strip_suffix('*').unwrap_or(s);
    !stem.is_empty()
        && s.len() <= 15
        && stem != "."
        && stem != ".."
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Checks `*.example.com`: the `*` must be the whole leftmost label and appear once.
pub fn check_wildcard(s: &str) -> Result<&str, WildcardError> {
    match s.strip_prefix("*.") {
        Some(rest) if rest.contains('*') => Err(WildcardError::NotLeftmost),
        Some(rest) if is_hostname(rest) => Ok(rest),
        Some(_) => Err(WildcardError::Invalid),
        None if s.contains('*') => Err(WildcardError::NotLeftmost),
        None => Err(WildcardError::Invalid),
    }
}

/// The `{param}` references in a host template, in order; `Err` with the offending text when
/// braces do not pair up or enclose something that is not an identifier.
pub fn template_params(s: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or_else(|| rest[open..].to_string())?;
        let name = &after[..close];
        if !is_ident(name) {
            return Err(format!("{{{name}}}"));
        }
        out.push(name);
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(rest.to_string());
    }
    Ok(out)
}

/// Substitutes `{param}` references with values; unknown names are left as they are.
pub fn expand_template(s: &str, mut lookup: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass `is_hostname` answers as the split form it replaced: every string of up
    /// to 6 characters over letters, digits, `-`, `_`, `.`, `*` and a non-ASCII letter, and the
    /// length limits (63 per label, 253 in all).
    #[test]
    fn the_one_pass_hostname_check_agrees_with_the_split_form() {
        let alphabet = ['a', '7', '-', '_', '.', '*', 'é'];
        let mut words = vec![String::new()];
        for _ in 0..6 {
            let next: Vec<String> = words
                .iter()
                .filter(|w| w.chars().count() == words.last().map_or(0, |l| l.chars().count()))
                .flat_map(|w| alphabet.iter().map(move |c| format!("{w}{c}")))
                .collect();
            words.extend(next);
        }
        assert!(words.len() > 100_000);
        let label = |n: usize| "a".repeat(n);
        for long in [
            format!("{}.com", label(63)),
            format!("{}.com", label(64)),
            format!("{}.{}.{}.{}", label(63), label(63), label(63), label(61)),
            format!("{}.{}.{}.{}", label(63), label(63), label(63), label(62)),
            format!("{}.{}.{}.{}.", label(63), label(63), label(63), label(61)),
            "x.123".to_string(),
            "x.12a".to_string(),
            "10.0.0.300".to_string(),
        ] {
            words.push(long);
        }
        for w in &words {
            assert_eq!(is_hostname(w), is_hostname_by_split(w), "`{w}`");
        }
    }

    #[test]
    fn hostnames() {
        assert!(is_hostname("gk.sensorist.com"));
        assert!(is_hostname("bootstrap.us-east-1.mbedcloud.com."));
        assert!(!is_hostname("localhost"));
        assert!(!is_hostname("a..b"));
        assert!(!is_hostname("x\".com"));
        assert!(!is_hostname("-a.com"));
        assert!(!is_hostname("a b.com"));
        assert!(!is_hostname("1.2.3.4"));
        assert!(!is_hostname("10.0.0.300"));
        assert!(is_hostname("1.2.3.example"));
    }

    #[test]
    fn wildcards() {
        assert_eq!(check_wildcard("*.mbedcloud.com"), Ok("mbedcloud.com"));
        assert_eq!(check_wildcard("a.*.com"), Err(WildcardError::NotLeftmost));
        assert_eq!(check_wildcard("*.*.com"), Err(WildcardError::NotLeftmost));
        assert_eq!(check_wildcard("*a.com"), Err(WildcardError::NotLeftmost));
        assert_eq!(check_wildcard("*.com;"), Err(WildcardError::Invalid));
    }

    #[test]
    fn templates() {
        assert_eq!(
            template_params("bootstrap.{region}.x.com"),
            Ok(vec!["region"])
        );
        assert!(template_params("a.{re gion}.com").is_err());
        assert!(template_params("a.{region.com").is_err());
        assert_eq!(
            expand_template("b.{region}.x.com", |n| (n == "region").then(|| "eu".into())),
            "b.eu.x.com"
        );
    }
}

/// Expands brace lists in a hostname (`time{1,2,3}.example.com` → three names; several lists
/// multiply). A brace without a comma is a `{param}` and stays as written. `None` when a list
/// holds an empty item or braces do not pair up.
pub fn expand_braces(s: &str) -> Option<Vec<String>> {
    let mut out = vec![String::new()];
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after.find('}')?;
        let inner = &after[..close];
        let head = &rest[..open];
        if inner.contains(',') {
            let items: Vec<&str> = inner.split(',').map(str::trim).collect();
            if items.iter().any(|i| i.is_empty() || i.contains('{')) {
                return None;
            }
            out = out
                .iter()
                .flat_map(|o| items.iter().map(move |i| format!("{o}{head}{i}")))
                .collect();
        } else {
            for o in &mut out {
                o.push_str(&rest[..open + close + 2]);
            }
        }
        rest = &after[close + 1..];
    }
    for o in &mut out {
        o.push_str(rest);
    }
    Some(out)
}

/// Whether `s` is one whole `{param}` (a host param standing for a name or an address).
pub fn whole_param(s: &str) -> Option<&str> {
    s.strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .filter(|n| is_ident(n))
}

#[cfg(test)]
mod brace_tests {
    use super::*;

    #[test]
    fn brace_lists_multiply_and_params_stay() {
        assert_eq!(
            expand_braces("time{1,2}.{region}.example{.com,.net}"),
            Some(vec![
                "time1.{region}.example.com".to_string(),
                "time1.{region}.example.net".to_string(),
                "time2.{region}.example.com".to_string(),
                "time2.{region}.example.net".to_string(),
            ])
        );
        assert_eq!(expand_braces("a{1,}.example.com"), None);
        assert_eq!(whole_param("{ntp_server}"), Some("ntp_server"));
        assert_eq!(whole_param("{ntp_server}.example.com"), None);
    }
}
