//! ICMP and ICMPv6 message types by the names nftables gives them (`nft describe icmp type`,
//! `nft describe icmpv6 type`), which profiles write as `icmp_type`. The numbers are IANA's
//! (RFC 792 and the ICMP parameters registry; RFC 4443, RFC 4861, RFC 2710, RFC 3810 for
//! ICMPv6). A name outside these tables is refused: nft and iptables would refuse the rule.

/// ICMP (IPv4) types: (nft name, number).
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

/// ICMPv6 types: (nft name, number). nft knows 132 by two names; the first is the one
/// numbers are printed as.
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

fn table(v6: bool) -> &'static [(&'static str, u8)] {
    if v6 {
        V6
    } else {
        V4
    }
}

/// The number of an ICMP (`v6 == false`) or ICMPv6 type name.
pub fn type_number(v6: bool, name: &str) -> Option<u8> {
    table(v6).iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The nft name of an ICMP or ICMPv6 type number.
pub fn type_name(v6: bool, number: u8) -> Option<&'static str> {
    table(v6)
        .iter()
        .find(|(_, t)| *t == number)
        .map(|(n, _)| *n)
}

/// Every name of one family, for help texts.
pub fn type_names(v6: bool) -> impl Iterator<Item = &'static str> {
    table(v6).iter().map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(type_number(false, "echo-request"), Some(8));
        assert_eq!(type_number(true, "echo-request"), Some(128));
        assert_eq!(type_number(false, "packet-too-big"), None);
        assert_eq!(type_number(false, "accept"), None);
        assert_eq!(type_name(true, 132), Some("mld-listener-done"));
        assert_eq!(type_name(false, 1), None);
    }

    #[test]
    fn numbers_from_the_rfcs() {
        // RFC 792: echo 8, echo reply 0; RFC 4443: echo request 128; RFC 4861: NS 135.
        // (Moved from portolan-verify's copy of this table.)
        assert_eq!(type_number(false, "echo-request"), Some(8));
        assert_eq!(type_number(false, "echo-reply"), Some(0));
        assert_eq!(type_number(true, "echo-request"), Some(128));
        assert_eq!(type_number(true, "nd-neighbor-solicit"), Some(135));
        assert_eq!(type_name(false, 11), Some("time-exceeded"));
    }
}
