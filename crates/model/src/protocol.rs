//! IP protocols by name or number, and which of them have ports.

use std::fmt;

use serde::{Serialize, Serializer};

/// A transport or network protocol as a profile names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
    Icmp,
    Icmpv6,
    Esp,
    Ah,
    Gre,
    Igmp,
    /// Not IP: link-layer ARP (RFC 826, probes per RFC 5227). Documented, never routed.
    Arp,
    /// Any other IP protocol by its IANA number.
    Number(u8),
    /// A param (an enum of protocol names) the site sets.
    Param(String),
    /// The source document does not say which transport; the site must supply it.
    Unspecified,
}

/// Names accepted in profiles, with their IANA protocol numbers (ARP has none).
pub const NAMED: &[(&str, Option<u8>)] = &[
    ("tcp", Some(6)),
    ("udp", Some(17)),
    ("sctp", Some(132)),
    ("icmp", Some(1)),
    ("icmpv6", Some(58)),
    ("esp", Some(50)),
    ("ah", Some(51)),
    ("gre", Some(47)),
    ("igmp", Some(2)),
    ("arp", None),
];

impl Protocol {
    /// Reads a protocol name (case-insensitive) or `unspecified`; numbers go through
    /// [`Protocol::from_number`].
    pub fn from_name(name: &str) -> Option<Protocol> {
        Some(match name.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            "icmp" => Protocol::Icmp,
            "icmpv6" | "ipv6-icmp" => Protocol::Icmpv6,
            "esp" => Protocol::Esp,
            "ah" => Protocol::Ah,
            "gre" => Protocol::Gre,
            "igmp" => Protocol::Igmp,
            "arp" => Protocol::Arp,
            "unspecified" => Protocol::Unspecified,
            _ => return None,
        })
    }

    /// A number, folded to its name where it has one (6 → tcp).
    pub fn from_number(n: u8) -> Protocol {
        NAMED
            .iter()
            .find(|(_, num)| *num == Some(n))
            .and_then(|(name, _)| Protocol::from_name(name))
            .unwrap_or(Protocol::Number(n))
    }

    /// The IANA protocol number, where there is one.
    pub fn number(&self) -> Option<u8> {
        // The numbers of `NAMED` (a test holds the two together); a match, not a search
        // that formats the name once per entry: six calls per device, 3 % of compiling
        // 100,000 one-device groups.
        match self {
            Protocol::Number(n) => Some(*n),
            Protocol::Tcp => Some(6),
            Protocol::Udp => Some(17),
            Protocol::Sctp => Some(132),
            Protocol::Icmp => Some(1),
            Protocol::Icmpv6 => Some(58),
            Protocol::Esp => Some(50),
            Protocol::Ah => Some(51),
            Protocol::Gre => Some(47),
            Protocol::Igmp => Some(2),
            Protocol::Param(_) | Protocol::Unspecified | Protocol::Arp => None,
        }
    }

    /// Whether flows of this protocol must say their ports. Params and `unspecified` may
    /// resolve to a port protocol, so they take ports too.
    pub fn has_ports(&self) -> bool {
        matches!(
            self,
            Protocol::Tcp
                | Protocol::Udp
                | Protocol::Sctp
                | Protocol::Param(_)
                | Protocol::Unspecified
        )
    }

    pub fn is_icmp(&self) -> bool {
        matches!(self, Protocol::Icmp | Protocol::Icmpv6)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
            Protocol::Icmp => "icmp",
            Protocol::Icmpv6 => "icmpv6",
            Protocol::Esp => "esp",
            Protocol::Ah => "ah",
            Protocol::Gre => "gre",
            Protocol::Igmp => "igmp",
            Protocol::Arp => "arp",
            Protocol::Number(n) => return write!(f, "{n}"),
            Protocol::Param(p) => return write!(f, "{{{p}}}"),
            Protocol::Unspecified => "unspecified",
        };
        f.write_str(s)
    }
}

impl Serialize for Protocol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Protocol::Number(n) => s.serialize_u8(*n),
            other => s.serialize_str(&other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(Protocol::from_number(50), Protocol::Esp);
        assert_eq!(Protocol::from_number(115), Protocol::Number(115));
        assert_eq!(Protocol::Tcp.number(), Some(6));
        assert_eq!(Protocol::from_name("ESP"), Some(Protocol::Esp));
        assert!(Protocol::from_name("http").is_none());
        assert!(!Protocol::Esp.has_ports() && Protocol::Udp.has_ports());
    }

    /// `number` agrees with `NAMED` (the IANA numbers, "Assigned Internet Protocol
    /// Numbers"), name by name, and with the name each protocol is written as.
    #[test]
    fn numbers_follow_the_named_table() {
        for (name, n) in NAMED {
            let p = Protocol::from_name(name).expect("a named protocol");
            assert_eq!(p.number(), *n, "{name}");
            assert_eq!(p.to_string(), *name);
        }
        assert_eq!(Protocol::Unspecified.number(), None);
    }
}
