//! The IP protocol of a policy rule: its IANA number ("Assigned Internet Protocol Numbers"),
//! the name nftables and iptables give it, whether its packets carry ports, and whether it is
//! ICMP of one family. Every stage that reads a rule's protocol (back ends, lab, audit, probe)
//! asks this type instead of keeping its own table.

use std::fmt;

use serde::Serialize;

use crate::profile::IpFamily;

/// An IP protocol number (the IPv4 `protocol` field, the IPv6 last next-header). Serialised
/// as the bare number, as the IR always was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct IpProto(u8);

/// What Portolan knows of a protocol by name.
struct Known {
    proto: IpProto,
    /// The name profiles, nftables (`meta l4proto`, `/etc/protocols`) and audit reports use.
    name: &'static str,
    /// The name iptables knows without `/etc/protocols` (its built-in list: tcp, udp, sctp,
    /// icmp, ipv6-icmp, esp, ah, …); `None`: iptables is given the number.
    iptables: Option<&'static str>,
}

const KNOWN: &[Known] = &[
    Known {
        proto: IpProto::ICMP,
        name: "icmp",
        iptables: Some("icmp"),
    },
    Known {
        proto: IpProto::IGMP,
        name: "igmp",
        iptables: None,
    },
    Known {
        proto: IpProto::TCP,
        name: "tcp",
        iptables: Some("tcp"),
    },
    Known {
        proto: IpProto::UDP,
        name: "udp",
        iptables: Some("udp"),
    },
    Known {
        proto: IpProto::GRE,
        name: "gre",
        iptables: None,
    },
    Known {
        proto: IpProto::ESP,
        name: "esp",
        iptables: Some("esp"),
    },
    Known {
        proto: IpProto::AH,
        name: "ah",
        iptables: Some("ah"),
    },
    Known {
        proto: IpProto::ICMPV6,
        name: "icmpv6",
        iptables: Some("ipv6-icmp"),
    },
    Known {
        proto: IpProto::SCTP,
        name: "sctp",
        iptables: Some("sctp"),
    },
];

impl IpProto {
    pub const ICMP: IpProto = IpProto(1);
    pub const IGMP: IpProto = IpProto(2);
    pub const TCP: IpProto = IpProto(6);
    pub const UDP: IpProto = IpProto(17);
    pub const GRE: IpProto = IpProto(47);
    pub const ESP: IpProto = IpProto(50);
    pub const AH: IpProto = IpProto(51);
    pub const ICMPV6: IpProto = IpProto(58);
    pub const SCTP: IpProto = IpProto(132);

    /// The protocol of IANA number `n`.
    pub const fn new(n: u8) -> IpProto {
        IpProto(n)
    }

    /// The IANA number.
    pub const fn number(self) -> u8 {
        self.0
    }

    fn known(self) -> Option<&'static Known> {
        KNOWN.iter().find(|k| k.proto == self)
    }

    /// The name nftables and profiles use (`tcp`, `icmpv6`, `esp`), where there is one.
    pub fn name(self) -> Option<&'static str> {
        self.known().map(|k| k.name)
    }

    /// The name iptables' `-p` knows without `/etc/protocols` (`ipv6-icmp` for ICMPv6), where
    /// there is one.
    pub fn iptables_name(self) -> Option<&'static str> {
        self.known().and_then(|k| k.iptables)
    }

    /// Whether the protocol's header starts with source and destination ports (TCP, UDP,
    /// SCTP), so a rule may match them.
    pub fn has_ports(self) -> bool {
        matches!(self, IpProto::TCP | IpProto::UDP | IpProto::SCTP)
    }

    /// ICMP or ICMPv6, whose rules match a type rather than ports.
    pub fn is_icmp(self) -> bool {
        matches!(self, IpProto::ICMP | IpProto::ICMPV6)
    }

    /// The one family a protocol exists in: ICMP is IPv4's (RFC 792), ICMPv6 IPv6's
    /// (RFC 4443); `None` for the others, which both families carry.
    pub fn family(self) -> Option<IpFamily> {
        match self {
            IpProto::ICMP => Some(IpFamily::Ipv4),
            IpProto::ICMPV6 => Some(IpFamily::Ipv6),
            _ => None,
        }
    }

    /// Whether a packet of this protocol can be of the given family (`v4`: IPv4).
    pub fn in_family(self, v4: bool) -> bool {
        match self.family() {
            Some(IpFamily::Ipv4) => v4,
            Some(IpFamily::Ipv6) => !v4,
            None => true,
        }
    }
}

impl From<u8> for IpProto {
    fn from(n: u8) -> IpProto {
        IpProto(n)
    }
}

/// The name where there is one (`tcp`), else the number (`115`).
impl fmt::Display for IpProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names_follow_iana_and_the_tools() {
        // IANA protocol numbers: ICMP 1, IGMP 2, TCP 6, UDP 17, GRE 47, ESP 50, AH 51,
        // IPv6-ICMP 58, SCTP 132.
        assert_eq!(IpProto::TCP.number(), 6);
        assert_eq!(IpProto::new(132), IpProto::SCTP);
        assert_eq!(IpProto::ICMPV6.to_string(), "icmpv6");
        assert_eq!(IpProto::ICMPV6.iptables_name(), Some("ipv6-icmp"));
        assert_eq!(IpProto::GRE.name(), Some("gre"));
        assert_eq!(IpProto::GRE.iptables_name(), None);
        assert_eq!(IpProto::new(115).to_string(), "115");
        assert!(IpProto::SCTP.has_ports() && !IpProto::ESP.has_ports());
        assert!(IpProto::ICMP.is_icmp() && !IpProto::IGMP.is_icmp());
        assert!(IpProto::ICMP.in_family(true) && !IpProto::ICMP.in_family(false));
        assert!(IpProto::ICMPV6.in_family(false) && IpProto::UDP.in_family(false));
    }

    #[test]
    fn serialises_as_the_bare_number() {
        assert_eq!(
            serde_json::to_string(&IpProto::UDP).expect("serialises"),
            "17"
        );
    }
}
