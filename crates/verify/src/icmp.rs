//! ICMP and ICMPv6 type names as nft prints them (nft(8) "ICMP TYPE TYPE" and "ICMPV6 TYPE
//! TYPE"), with their numbers from RFC 792 / RFC 4443 / RFC 4861 / RFC 2710.

const V4: &[(&str, u8)] = &[
    ("echo-reply", 0),
    ("destination-unreachable", 3),
    ("source-quench", 4),
    ("redirect", 5),
    ("echo-request", 8),
    ("router-advertisement", 9),
    ("router-solicitation", 10),
    ("time-exceeded", 11),
    ("parameter-problem", 12),
    ("timestamp-request", 13),
    ("timestamp-reply", 14),
    ("info-request", 15),
    ("info-reply", 16),
    ("address-mask-request", 17),
    ("address-mask-reply", 18),
];

const V6: &[(&str, u8)] = &[
    ("destination-unreachable", 1),
    ("packet-too-big", 2),
    ("time-exceeded", 3),
    ("parameter-problem", 4),
    ("echo-request", 128),
    ("echo-reply", 129),
    ("mld-listener-query", 130),
    ("mld-listener-report", 131),
    ("mld-listener-done", 132),
    ("mld-listener-reduction", 132),
    ("nd-router-solicit", 133),
    ("nd-router-advert", 134),
    ("nd-neighbor-solicit", 135),
    ("nd-neighbor-advert", 136),
    ("nd-redirect", 137),
    ("router-renumbering", 138),
    ("ind-neighbor-solicit", 141),
    ("ind-neighbor-advert", 142),
    ("mld2-listener-report", 143),
];

/// The number of an ICMP type name.
pub fn v4(name: &str) -> Option<u8> {
    V4.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The number of an ICMPv6 type name.
pub fn v6(name: &str) -> Option<u8> {
    V6.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The name of an ICMP (`v4`) or ICMPv6 type number, if it has one.
pub fn name(v4: bool, t: u8) -> Option<&'static str> {
    let table = if v4 { V4 } else { V6 };
    table.iter().find(|(_, n)| *n == t).map(|(s, _)| *s)
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_from_the_rfcs() {
        // RFC 792: echo 8, echo reply 0; RFC 4443: echo request 128; RFC 4861: NS 135.
        assert_eq!(super::v4("echo-request"), Some(8));
        assert_eq!(super::v4("echo-reply"), Some(0));
        assert_eq!(super::v6("echo-request"), Some(128));
        assert_eq!(super::v6("nd-neighbor-solicit"), Some(135));
        assert_eq!(super::name(true, 11), Some("time-exceeded"));
    }
}
