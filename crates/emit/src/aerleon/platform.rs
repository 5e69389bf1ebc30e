//! The Aerleon platforms `--target aerleon` writes for, with what each keeps of a policy and
//! the header options its generator reads (Aerleon's "Generators" reference,
//! docs/reference/generators.md, and each generator's header parser in `aerleon/lib/`).

use std::fmt;
use std::str::FromStr;

use crate::names::Family;

/// One Aerleon generator (its name in a filter header's `targets:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Platform {
    /// Juniper MX/PTX firewall filters (stateless).
    Juniper,
    /// Juniper SRX security policies (stateful, zone-based, `dns-name` address objects).
    Srx,
    /// Cisco IOS extended access lists (stateless).
    Cisco,
    /// Cisco ASA access lists (stateful).
    CiscoAsa,
    /// Cisco NX-OS access lists (stateless).
    CiscoNx,
    /// Cisco IOS XR access lists (stateless).
    CiscoXr,
    /// Arista EOS access lists (stateless).
    Arista,
    /// Palo Alto security rules (stateful, zone-based).
    PaloAlto,
    /// OpenBSD pf (stateful: `keep state`).
    PacketFilter,
    /// nftables (stateful: `ct state`).
    Nftables,
    /// iptables commands (stateful: `conntrack`).
    Iptables,
    /// iptables-restore text (Aerleon's `speedway`, stateful like `iptables`).
    Speedway,
}

/// Where a filter's terms apply: traffic the firewall forwards, or traffic to the firewall
/// itself (its DNS, DHCP, … services).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Forward,
    Local,
}

impl Platform {
    pub const ALL: [Platform; 12] = [
        Platform::Juniper,
        Platform::Srx,
        Platform::Cisco,
        Platform::CiscoAsa,
        Platform::CiscoNx,
        Platform::CiscoXr,
        Platform::Arista,
        Platform::PaloAlto,
        Platform::PacketFilter,
        Platform::Nftables,
        Platform::Iptables,
        Platform::Speedway,
    ];

    /// Aerleon's name of the generator.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Juniper => "juniper",
            Platform::Srx => "srx",
            Platform::Cisco => "cisco",
            Platform::CiscoAsa => "ciscoasa",
            Platform::CiscoNx => "cisconx",
            Platform::CiscoXr => "ciscoxr",
            Platform::Arista => "arista",
            Platform::PaloAlto => "paloalto",
            Platform::PacketFilter => "packetfilter",
            Platform::Nftables => "nftables",
            Platform::Iptables => "iptables",
            Platform::Speedway => "speedway",
        }
    }

    /// Whether the platform tracks connections, so a term for the opening direction also
    /// admits the replies. Stateless platforms get a return term per flow instead.
    pub fn stateful(self) -> bool {
        !matches!(
            self,
            Platform::Juniper
                | Platform::Cisco
                | Platform::CiscoNx
                | Platform::CiscoXr
                | Platform::Arista
        )
    }

    /// Whether Aerleon can write a DNS name as an address object for this platform (SRX
    /// `dns-name`, from a term's `destination-fqdn`); elsewhere names must be resolved.
    pub fn dns_names(self) -> bool {
        self == Platform::Srx
    }

    /// Whether Aerleon has a filter for traffic to the box itself on this platform (a chain on
    /// the `input` hook). Elsewhere the firewall's own services are the platform's
    /// control-plane settings (SRX `host-inbound-traffic`, a Juniper `lo0` filter, Cisco
    /// control-plane policing), which this target does not write.
    pub fn local(self) -> bool {
        matches!(
            self,
            Platform::Nftables | Platform::Iptables | Platform::Speedway
        )
    }

    /// Whether Aerleon writes a term's `source-interface` for this platform (its nftables,
    /// iptables and pf generators): terms then say which interface the sender sits behind, as
    /// Portolan's spoofing check does. The others' terms match addresses only.
    pub fn interfaces(self) -> bool {
        matches!(
            self,
            Platform::Nftables | Platform::Iptables | Platform::Speedway | Platform::PacketFilter
        )
    }

    /// Whether one filter holds both families (`mixed`); otherwise one filter per family.
    fn mixed(self) -> bool {
        matches!(
            self,
            Platform::Cisco
                | Platform::CiscoNx
                | Platform::PaloAlto
                | Platform::PacketFilter
                | Platform::Nftables
                | Platform::Srx
        )
    }

    /// Whether the platform's terms carry their own state match in their direction only, so
    /// the replies need a term of their own (Aerleon's iptables generators match
    /// `NEW,ESTABLISHED,RELATED` per term; its nftables generator adds
    /// `ct state established,related accept` to each base chain by itself).
    pub fn needs_replies_term(self) -> bool {
        matches!(self, Platform::Iptables | Platform::Speedway)
    }

    /// The families one filter is written for: `[None]` for a mixed filter where the site has
    /// both, else one per family present.
    pub fn filter_families(self, present: &[Family]) -> Vec<Option<Family>> {
        if self.mixed() && present.len() > 1 {
            vec![None]
        } else {
            present.iter().copied().map(Some).collect()
        }
    }

    /// The header options of a filter (`targets: {<name>: <options>}`), or why the platform
    /// cannot have it.
    pub fn header(self, hook: Hook, fam: Option<Family>) -> Result<String, &'static str> {
        let suffix = match fam {
            Some(Family::V6) => "6",
            _ => "",
        };
        let name = match hook {
            Hook::Forward => format!("portolan-forward{suffix}"),
            Hook::Local => format!("portolan-local{suffix}"),
        };
        let af = match fam {
            None => "mixed",
            Some(Family::V4) => "inet",
            Some(Family::V6) => "inet6",
        };
        if hook == Hook::Local && !self.local() {
            return Err("no filter for the box itself");
        }
        Ok(match self {
            Platform::Juniper => format!("{name} {af}"),
            // A global policy: the zones are the site's business; the addresses say who.
            Platform::Srx => format!("from-zone all to-zone all {af} address-book-global"),
            // Cisco IOS and NX-OS: IPv4 is the default and has no word of its own.
            Platform::Cisco | Platform::CiscoNx => match fam {
                Some(Family::V4) => format!("{name} extended"),
                _ => format!("{name} {af}"),
            },
            Platform::CiscoAsa => match fam {
                Some(Family::V6) => return Err("IPv6 (Aerleon's ciscoasa writes IPv4 lists)"),
                _ => name,
            },
            Platform::CiscoXr => match fam {
                Some(Family::V6) => format!("{name} inet6"),
                _ => name,
            },
            Platform::Arista => match fam {
                Some(Family::V6) => format!("{name} inet6"),
                _ => format!("{name} extended"),
            },
            Platform::PaloAlto => format!("from-zone any to-zone any {af}"),
            Platform::PacketFilter => format!("{name} {af}"),
            Platform::Nftables => match hook {
                Hook::Forward => format!("{af} forward"),
                Hook::Local => format!("{af} input"),
            },
            Platform::Iptables | Platform::Speedway => {
                let chain = match hook {
                    Hook::Forward => "FORWARD",
                    Hook::Local => "INPUT",
                };
                format!("{chain} DROP {af}")
            }
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Platform {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::ALL
            .iter()
            .copied()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown Aerleon platform `{s}`; known: {}",
                    Platform::ALL.map(Platform::name).join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Platform::ALL {
            assert_eq!(p.name().parse::<Platform>(), Ok(p));
        }
        assert!("capirca".parse::<Platform>().is_err());
    }

    #[test]
    fn headers_follow_aerleons_reference() {
        // docs/reference/generators.md: "srx: from-zone [zone] to-zone [zone] {inet}", global
        // policies "from-zone all to-zone all"; "nftables: [af] [hook]"; "iptables: [chain]
        // {ACCEPT|DROP} ... {inet|inet6}".
        assert_eq!(
            Platform::Srx.header(Hook::Forward, None),
            Ok("from-zone all to-zone all mixed address-book-global".into())
        );
        assert_eq!(
            Platform::Nftables.header(Hook::Local, None),
            Ok("mixed input".into())
        );
        assert_eq!(
            Platform::Iptables.header(Hook::Forward, Some(Family::V6)),
            Ok("FORWARD DROP inet6".into())
        );
        assert!(Platform::Cisco.header(Hook::Local, None).is_err());
    }
}
