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
    object_max(parts, IPSET_NAME_MAX)
}

/// An nftables set name holds up to this many characters here (the kernel allows more; 63
/// keeps names printable in one line of `nft list` and within dnsmasq's `nftset=` limits).
pub const NFT_NAME_MAX: usize = 63;
/// ipset names hold 31 characters (`IPSET_MAXNAMELEN` 32 with the terminating zero).
pub const IPSET_NAME_MAX: usize = 31;

/// IPv4 or IPv6, as set names spell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// `4` or `6`.
    pub fn n(self) -> &'static str {
        match self {
            Family::V4 => "4",
            Family::V6 => "6",
        }
    }
    pub fn of(n: &ipnet::IpNet) -> Family {
        match n {
            ipnet::IpNet::V4(_) => Family::V4,
            ipnet::IpNet::V6(_) => Family::V6,
        }
    }

    /// ipset's name of the family: `inet` or `inet6`.
    pub fn ipset(self) -> &'static str {
        match self {
            Family::V4 => "inet",
            Family::V6 => "inet6",
        }
    }
}

impl From<portolan_model::IpFamily> for Family {
    fn from(f: portolan_model::IpFamily) -> Family {
        match f {
            portolan_model::IpFamily::Ipv4 => Family::V4,
            portolan_model::IpFamily::Ipv6 => Family::V6,
        }
    }
}

/// The DNS-filled set holding the addresses of a list of hostnames, named after them:
/// `gk_sensorist_com_v4`, `a_example_com__b_example_com_v6` (dots become `_`, names are
/// joined by `__`). A hostname without `_` maps to such a name one to one. Names with `_`
/// (allowed in labels), or lists past `max` characters, keep a readable head and a hash of the
/// exact list: `gk_sensorist_com__gk_sens.1c8aa0c47277f85f_v4`.
pub fn dns_set(fam: Family, names: &[String], max: usize) -> String {
    let readable: Vec<String> = names.iter().map(|n| n.replace('.', "_")).collect();
    dns_name(fam, "", &readable.join("__"), names, max)
}

/// The DNS-filled set of a wildcard domain (`*.mbedcloud.com` → `any.mbedcloud_com_v4`); the
/// `.` keeps it apart from any hostname's set.
pub fn wildcard_dns_set(fam: Family, domain: &str, max: usize) -> String {
    dns_name(
        fam,
        "any.",
        &domain.replace('.', "_"),
        &[format!("*.{domain}")],
        max,
    )
}

fn dns_name(fam: Family, lead: &str, body: &str, exact: &[String], max: usize) -> String {
    let suffix = format!("_v{}", fam.n());
    let plain = exact.iter().all(|n| {
        n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '*'))
    });
    // nft names start with a letter, `_` or `.`: a hostname may start with a digit.
    let start = if lead.is_empty() && !body.starts_with(|c: char| c.is_ascii_lowercase()) {
        "_"
    } else {
        lead
    };
    let name = format!("{start}{body}{suffix}");
    if plain && name.len() <= max {
        return name;
    }
    let hash = format!(
        ".{:016x}",
        fnv(&format!("{}\0{}", fam.n(), exact.join("\0")))
    );
    let room = max.saturating_sub(hash.len() + suffix.len() + 1);
    let head: String = format!("{lead}{body}")
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(room)
        .collect();
    let start = if head.starts_with(|c: char| c.is_ascii_lowercase()) {
        ""
    } else {
        "_"
    };
    format!("{start}{head}{hash}{suffix}")
}

/// Whether a set of the `inet portolan` table is filled by DNS (hostnames, wildcard domains)
/// rather than by the ruleset: a reload keeps its elements, and `apply` never deletes it as
/// stale. Every DNS-filled set name ends in `_v4` or `_v6`, and no other set's does (static
/// peer sets end in `_4`/`_6`, maps are named after what they dispatch).
pub fn is_dns_filled_set(name: &str) -> bool {
    name.ends_with("_v4") || name.ends_with("_v6")
}

/// The per-device name set of one rule under `portolan enforce`: `device . peer` pairs of
/// type `ipv4_addr . ipv4_addr` (or the IPv6 twin) that the forwarder fills as it answers,
/// named after the class's first group, the flow and the rule's names
/// (`e_oscar_cloud-443_<hash>_v4`). It ends in `_v4`/`_v6` like every DNS-filled set, so a
/// reload keeps its elements ([`is_dns_filled_set`]).
pub fn enforce_set(
    fam: Family,
    group: &str,
    flow: &str,
    names: &[String],
    wildcards: &[String],
    max: usize,
) -> String {
    let mut key: Vec<String> = names.to_vec();
    key.extend(wildcards.iter().map(|w| format!("*.{w}")));
    let head = object_max(&["e", group, flow], max.saturating_sub(3 + 18));
    format!("{head}_{:016x}_v{}", fnv(&key.join("\0")), fam.n())
}

/// The name of a static set of peer prefixes, after the first group and flow that use it:
/// `peers_oscar-gateways_cloud-443_4`.
pub fn peer_set(fam: Family, group: &str, flow: &str, max: usize) -> String {
    let base = object_max(&["peers", group, flow], max.saturating_sub(2));
    format!("{base}_{}", fam.n())
}

/// [`object`] with another length limit.
pub fn object_max(parts: &[&str], max: usize) -> String {
    let plain = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
    };
    let joined = parts.join("_");
    if parts.iter().all(|p| plain(p)) && joined.len() <= max {
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
        .take(max.saturating_sub(17).max(1))
        .collect();
    s.push_str(&format!("_{:016x}", fnv(&parts.join("\0"))));
    s
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// An ICMP type name as a rule may carry it: a lowercase letter, then lowercase letters,
/// digits and `-` (`echo-request`, `mld2-listener-report`).
pub(crate) fn is_icmp_type_token(t: &str) -> bool {
    t.starts_with(|c: char| c.is_ascii_lowercase())
        && t.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
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

/// A rule's hostnames, sorted, without repeats, each checked: the list a DNS-filled set is
/// named after and filled for.
pub(crate) fn checked_names(
    target: &'static str,
    names: &[String],
) -> Result<Vec<String>, EmitError> {
    let mut v = names.to_vec();
    v.sort();
    v.dedup();
    for n in &v {
        safe_hostname(target, n)?;
    }
    Ok(v)
}

/// Checks a DNS name before it reaches an output.
pub fn safe_hostname(target: &'static str, s: &str) -> Result<String, EmitError> {
    if portolan_model::syntax::is_hostname(s) {
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
    if portolan_model::syntax::is_interface_name(s) {
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
