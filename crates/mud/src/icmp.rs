//! ICMP and ICMPv6 message types: the names profiles use (`icmp_type: echo-request`, as nft
//! spells them) and the numbers MUD's `icmp` match carries (RFC 792, RFC 4443, RFC 4861).

/// (name, ICMP type, ICMPv6 type).
const TYPES: &[(&str, Option<u8>, Option<u8>)] = &[
    ("echo-reply", Some(0), Some(129)),
    ("destination-unreachable", Some(3), Some(1)),
    ("source-quench", Some(4), None),
    ("redirect", Some(5), None),
    ("echo-request", Some(8), Some(128)),
    ("router-advertisement", Some(9), None),
    ("router-solicitation", Some(10), None),
    ("time-exceeded", Some(11), Some(3)),
    ("parameter-problem", Some(12), Some(4)),
    ("timestamp-request", Some(13), None),
    ("timestamp-reply", Some(14), None),
    ("packet-too-big", None, Some(2)),
    ("mld-listener-query", None, Some(130)),
    ("mld-listener-report", None, Some(131)),
    ("mld-listener-done", None, Some(132)),
    ("nd-router-solicit", None, Some(133)),
    ("nd-router-advert", None, Some(134)),
    ("nd-neighbor-solicit", None, Some(135)),
    ("nd-neighbor-advert", None, Some(136)),
    ("nd-redirect", None, Some(137)),
];

/// The type number of a profile's `icmp_type` (a name, or a number written as text).
pub fn number(name: &str, v6: bool) -> Option<u8> {
    if let Ok(n) = name.parse::<u8>() {
        return Some(n);
    }
    TYPES
        .iter()
        .find(|(n, _, _)| *n == name)
        .and_then(|(_, a, b)| if v6 { *b } else { *a })
}

/// The profile's name for a type number; the number itself when it has no name.
pub fn name(n: u8, v6: bool) -> String {
    TYPES
        .iter()
        .find(|(_, a, b)| if v6 { *b == Some(n) } else { *a == Some(n) })
        .map_or_else(|| n.to_string(), |(name, _, _)| (*name).to_string())
}

/// The reply that answers a request type (echo only), and the request a reply answers.
pub fn reply_of(n: u8, v6: bool) -> Option<u8> {
    match (n, v6) {
        (8, false) => Some(0),
        (128, true) => Some(129),
        _ => None,
    }
}

pub fn request_of(n: u8, v6: bool) -> Option<u8> {
    match (n, v6) {
        (0, false) => Some(8),
        (129, true) => Some(128),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(number("echo-request", false), Some(8));
        assert_eq!(number("echo-request", true), Some(128));
        assert_eq!(number("42", false), Some(42));
        assert_eq!(number("packet-too-big", false), None);
        assert_eq!(name(0, false), "echo-reply");
        assert_eq!(name(200, true), "200");
        assert_eq!(reply_of(8, false), Some(0));
        assert_eq!(request_of(129, true), Some(128));
    }
}
