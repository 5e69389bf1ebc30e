//! The policy IR: the compiled, fully concrete form of a site. Back ends (nftables, iptables,
//! dnsmasq, lab, audit, probe) read only this. Every rule carries its provenance: the device
//! group it serves and the `profile/flow` row it came from.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use crate::profile::{IpFamily, Profile};

mod proto;
pub use proto::IpProto;

/// A compiled site.
#[derive(Clone, Debug, Serialize)]
pub struct Policy {
    pub site: String,
    pub zones: Vec<Zone>,
    pub groups: Vec<Group>,
    pub rules: Vec<Rule>,
    /// Flows the profiles document but an IP firewall does not enforce (tunnelled inside an
    /// enforced flow, link-layer), with the reason.
    pub documented: Vec<Documented>,
    /// Rules to peers learnt from DNS SRV records (`Peers::srv`), device-initiated. They open
    /// something only where a DNS forwarder fills a set from the answers each device received
    /// (`portolan enforce`): the enforce policy reads them through
    /// [`Policy::with_discovered`]; every other back end leaves them out, and each is also in
    /// `documented` with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discovered: Vec<Rule>,
    /// The profiles the site uses, by id, for the facts stages other than enforcement need
    /// (TLS expectations, keepalives, alternatives).
    #[serde(skip)]
    pub profiles: BTreeMap<String, Profile>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Zone {
    pub id: String,
    pub interface: Option<String>,
    pub networks: Vec<IpNet>,
}

/// One device or device group of the site; a multi-homed device (its profile declares
/// `interfaces`) is one group per interface, `DEVICE.INTERFACE`, each with that interface's
/// zone and addresses and the rules of that interface's flows only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Group {
    /// The site's device id, or `DEVICE.INTERFACE` for one interface of a multi-homed device
    /// (compile refuses a site where that is also another device's id, `duplicate-id`).
    pub id: String,
    /// The profile's interface this group is (multi-homed devices only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    pub profile: String,
    pub mode: Option<String>,
    pub zone: String,
    /// Addresses or prefixes; never empty.
    pub addresses: Vec<IpNet>,
    /// The link-layer addresses the site gives for the device (`mac:`); empty when it gives
    /// none. DHCP discovery, whose IP source is 0.0.0.0, is admitted only from these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub macs: Vec<Mac>,
}

/// An Ethernet address (EUI-48), written `02:00:5e:10:00:01`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl std::fmt::Display for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// Who opens the connection a rule admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Initiator {
    /// The device opens it: device address is the source.
    Device,
    /// The peer opens it: device address is the destination.
    Peer,
}

/// The peers of a rule. Several kinds may be set at once; a rule admits the union.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Peers {
    /// Static prefixes (profile addresses, site bindings, zone networks, service addresses).
    pub prefixes: Vec<IpNet>,
    /// Hostnames, enforced as names: a set filled from DNS (at compile time with `--resolve`,
    /// or at run time by the DNS server), each element living as long as its record's TTL.
    pub names: Vec<String>,
    /// Wildcard domains (`*.example.com`), stored as the domain (`example.com`); enforced
    /// through a DNS-driven set only.
    pub wildcards: Vec<String>,
    /// This firewall itself (a local service it provides).
    pub firewall: bool,
    /// DNS SRV owner names (`_service._proto.domain`, RFC 2782) the device learns this peer
    /// from (edition 2's `discovered: {via: srv}`): the peer is each SRV record's target at
    /// the record's port. Only a DNS-driven set filled from the answers the device itself
    /// received can enforce it, so rules with these peers sit in [`Policy::discovered`], which
    /// only the enforce policy reads; every other back end opens nothing for them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub srv: Vec<String>,
}

impl Peers {
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
            && self.names.is_empty()
            && self.wildcards.is_empty()
            && self.srv.is_empty()
            && !self.firewall
    }

    /// Whether a DNS name (as asked) is one of these peers' SRV owner names (any case, with
    /// or without the root dot).
    pub fn admits_srv(&self, name: &str) -> bool {
        let norm = |s: &str| s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
        let n = norm(name);
        !n.is_empty() && self.srv.iter().any(|s| norm(s) == n)
    }

    /// Whether a DNS name (as asked in a query) is one of these peers' names, by the
    /// profile's semantics: a hostname admits exactly that name; a wildcard `*.example.com`
    /// admits every name below `example.com`, at any depth (`a.example.com`,
    /// `a.b.example.com`), and never the apex `example.com` itself, nor a name that only ends
    /// in the same letters (`badexample.com`). DNS names compare without regard to ASCII case
    /// (RFC 4343) and a trailing root dot is ignored. (dnsmasq's `nftset=` also matches the
    /// apex; the back ends that depend on it say so.)
    pub fn admits_name(&self, name: &str) -> bool {
        let n = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        if n.is_empty() {
            return false;
        }
        let norm = |s: &str| s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
        self.names.iter().any(|h| norm(h) == n)
            || self.wildcards.iter().any(|w| {
                let d = norm(w);
                n.len() > d.len() + 1
                    && n.ends_with(d.as_str())
                    && n.as_bytes()[n.len() - d.len() - 1] == b'.'
            })
    }
}

/// An inclusive port range; `lo == hi` for a single port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    /// A single port.
    pub const fn one(port: u16) -> PortRange {
        PortRange { lo: port, hi: port }
    }

    /// Whether `port` lies in the range (both ends included).
    pub fn contains(&self, port: u16) -> bool {
        self.lo <= port && port <= self.hi
    }
}

/// DNS: UDP or TCP with port 53 among `ports` (RFC 1035 section 4.2: DNS runs over both on
/// port 53; RFC 7766 section 5: TCP is a full transport for DNS, not only a fallback).
pub fn is_dns(protocol: IpProto, ports: &[PortRange]) -> bool {
    matches!(protocol, IpProto::UDP | IpProto::TCP) && ports.iter().any(|p| p.contains(53))
}

/// DHCP client traffic: UDP to port 67, exactly (RFC 2131 section 4.1).
pub fn is_dhcp(protocol: IpProto, ports: &[PortRange]) -> bool {
    protocol == IpProto::UDP && ports == [PortRange::one(67)]
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// One permit: traffic of `group` with `peers`, opened by `initiator`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub group: String,
    pub profile: String,
    pub flow: String,
    pub initiator: Initiator,
    /// The IP protocol (serialised as its IANA number).
    pub protocol: IpProto,
    /// Destination ports (on the side that does not initiate); empty: no ports, or any.
    pub ports: Vec<PortRange>,
    /// Source ports of the initiator; empty: any.
    pub src_ports: Vec<PortRange>,
    pub icmp_type: Option<String>,
    pub peers: Peers,
    /// Sent to a broadcast or multicast address, never to a peer's own address: the rule admits
    /// only packets whose destination is a broadcast address (`multicast` empty: IPv4
    /// 255.255.255.255 and the directed broadcasts of the device zone's networks) or one of the
    /// `multicast` groups, arriving on the device zone's interface. The compiler keeps only
    /// what a firewall can see (`cast.rs`): a broadcast rule has this firewall as its peer;
    /// a multicast rule has the firewall or peers beyond the device's segment, whose prefixes
    /// then say where the group may be forwarded (their zones' interfaces). What stays on the
    /// device's segment is in `Policy.documented`. DHCP (`is_dhcp`) is the one exception:
    /// its discovery (source 0.0.0.0, to 255.255.255.255) reaches this firewall, the server
    /// or the relay, on the zone's interface from the group's `macs`, and its peers (the
    /// firewall or the site's DHCP server) are also admitted by unicast, for renewals
    /// (RFC 2131 section 4.4.5).
    pub broadcast: bool,
    /// The multicast groups of a multicast rule (the profile's `group`, or 224.0.0.0/4 and
    /// ff00::/8 when it names none); empty for broadcast and unicast rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub multicast: Vec<IpNet>,
    pub optional: bool,
    /// The only IP family the rule admits (the flow's `family`); `None`: both. Back ends emit
    /// the rule for this family's device addresses and peers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<IpFamily>,
    /// Set when the rule is a flow's leg to the site's HTTP(S) proxy (the device uses it and
    /// the profile says the flow can go through one): the rule admits TCP from the device to
    /// the proxy's port, never to the flow's own peers, which the proxy's allow-list admits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_proxy: Option<ProxyLeg>,
}

/// What a proxied flow asks of the proxy: the flow's own peers and ports, which only the
/// proxy reaches (its allow-list, `--target squid`, carries them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProxyLeg {
    pub peers: Peers,
    pub ports: Vec<PortRange>,
    /// The profile's `connect_only`: only `CONNECT` tunnels, never plain HTTP requests.
    pub connect_only: bool,
}

impl Rule {
    /// Whether the rule may admit a packet of `a`'s family.
    pub fn admits_family(&self, a: &IpAddr) -> bool {
        self.family.is_none_or(|f| f.holds(a))
    }
}

impl Rule {
    /// `profile/flow`, the comment every emitted rule carries.
    pub fn provenance(&self) -> String {
        format!("{}/{}", self.profile, self.flow)
    }

    /// DHCP client traffic: UDP to port 67 (RFC 2131 section 4.1); see [`is_dhcp`].
    pub fn is_dhcp(&self) -> bool {
        is_dhcp(self.protocol, &self.ports)
    }

    /// DNS (UDP or TCP to port 53, see [`is_dns`]) answered by this firewall: the site's
    /// `services: {dns: firewall}`, whose resolver fills the DNS-filled sets.
    pub fn is_dns_to_firewall(&self) -> bool {
        self.peers.firewall && is_dns(self.protocol, &self.ports)
    }

    /// Whether the rule may admit a packet of this family (`v4`: IPv4): its flow's `family`
    /// and its protocol (ICMP is IPv4's, ICMPv6 IPv6's) both allow it.
    pub fn admits_l4_family(&self, v4: bool) -> bool {
        let fam = if v4 { IpFamily::Ipv4 } else { IpFamily::Ipv6 };
        self.family.is_none_or(|f| f == fam) && self.protocol.in_family(v4)
    }

    /// A broadcast DHCP discovery or request: its IP source may be 0.0.0.0, so only the
    /// interface and the device's MAC say who sent it.
    pub fn is_dhcp_broadcast(&self) -> bool {
        self.broadcast && self.multicast.is_empty() && self.is_dhcp()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Documented {
    pub group: String,
    pub profile: String,
    pub flow: String,
    pub reason: String,
}

impl Group {
    /// The site's device id: the group's id without its interface.
    pub fn device(&self) -> &str {
        match &self.interface {
            Some(i) => self
                .id
                .strip_suffix(i.as_str())
                .and_then(|d| d.strip_suffix('.'))
                .unwrap_or(&self.id),
            None => &self.id,
        }
    }
}

impl Policy {
    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.id == id)
    }

    pub fn zone(&self, id: &str) -> Option<&Zone> {
        self.zones.iter().find(|z| z.id == id)
    }

    /// The policy as the enforce back end reads it: the rules to SRV-learnt peers
    /// ([`Policy::discovered`]) joined to the rules, in their group's place, and no longer
    /// listed as documented. Without such rules, a plain clone.
    pub fn with_discovered(&self) -> Policy {
        let mut p = self.clone();
        if p.discovered.is_empty() {
            return p;
        }
        let disc = std::mem::take(&mut p.discovered);
        p.documented.retain(|d| {
            !disc
                .iter()
                .any(|r| r.group == d.group && r.profile == d.profile && r.flow == d.flow)
        });
        for r in disc {
            // After the group's last rule, so that the classes see one group's rules together.
            let at = p
                .rules
                .iter()
                .rposition(|x| x.group == r.group)
                .map_or(p.rules.len(), |i| i + 1);
            p.rules.insert(at, r);
        }
        p
    }

    pub fn rules_of<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules.iter().filter(move |r| r.group == group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_include_both_ends() {
        let r = PortRange { lo: 3001, hi: 3003 };
        assert!(r.contains(3001) && r.contains(3003) && !r.contains(3004));
        assert!(PortRange::one(53).contains(53) && !PortRange::one(53).contains(54));
    }

    #[test]
    fn dns_is_udp_and_tcp_to_53_and_dhcp_udp_to_67() {
        // RFC 1035 section 4.2 and RFC 7766: DNS over UDP and TCP, port 53.
        let p53 = [PortRange::one(53)];
        assert!(is_dns(IpProto::UDP, &p53) && is_dns(IpProto::TCP, &p53));
        assert!(!is_dns(IpProto::SCTP, &p53));
        assert!(is_dns(IpProto::UDP, &[PortRange { lo: 1, hi: 1024 }]));
        assert!(!is_dns(IpProto::UDP, &[PortRange::one(853)]));
        // RFC 2131 section 4.1: the client sends to the server's port 67, over UDP.
        assert!(is_dhcp(IpProto::UDP, &[PortRange::one(67)]));
        assert!(!is_dhcp(IpProto::TCP, &[PortRange::one(67)]));
        assert!(!is_dhcp(IpProto::UDP, &[PortRange { lo: 67, hi: 68 }]));
    }

    #[test]
    fn dns_to_the_firewall_needs_the_firewall_as_peer() {
        let mut r = Rule {
            group: "g".into(),
            profile: "p".into(),
            flow: "dns".into(),
            initiator: Initiator::Device,
            protocol: IpProto::TCP,
            ports: vec![PortRange::one(53)],
            src_ports: Vec::new(),
            icmp_type: None,
            peers: Peers {
                firewall: true,
                ..Peers::default()
            },
            broadcast: false,
            multicast: Vec::new(),
            optional: false,
            family: None,
            via_proxy: None,
        };
        assert!(r.is_dns_to_firewall());
        r.peers.firewall = false;
        r.peers.prefixes = vec!["198.51.100.53/32".parse().expect("prefix")];
        assert!(!r.is_dns_to_firewall());
    }

    #[test]
    fn names_and_wildcards_admit_what_the_profile_states() {
        let p = Peers {
            names: vec!["gk.sensorist.com".into()],
            wildcards: vec!["mbedcloud.com".into()],
            ..Peers::default()
        };
        // Hostnames: exactly that name, any case (RFC 4343), with or without the root dot.
        assert!(p.admits_name("gk.sensorist.com"));
        assert!(p.admits_name("GK.Sensorist.COM."));
        assert!(!p.admits_name("a.gk.sensorist.com"));
        assert!(!p.admits_name("sensorist.com"));
        // `*.mbedcloud.com`: every depth below, never the apex nor a look-alike.
        assert!(p.admits_name("lwm2m.us-east-1.mbedcloud.com"));
        assert!(p.admits_name("a.b.c.mbedcloud.com."));
        assert!(!p.admits_name("mbedcloud.com"));
        assert!(!p.admits_name("xmbedcloud.com"));
        assert!(!p.admits_name(".mbedcloud.com"));
        assert!(!p.admits_name(""));
        assert!(!p.admits_name("."));
    }

    #[test]
    fn icmp_rules_admit_their_own_family_only() {
        let r = |protocol, family| Rule {
            group: "g".into(),
            profile: "p".into(),
            flow: "f".into(),
            initiator: Initiator::Device,
            protocol,
            ports: Vec::new(),
            src_ports: Vec::new(),
            icmp_type: None,
            peers: Peers::default(),
            broadcast: false,
            multicast: Vec::new(),
            optional: false,
            family,
            via_proxy: None,
        };
        assert!(r(IpProto::ICMP, None).admits_l4_family(true));
        assert!(!r(IpProto::ICMP, None).admits_l4_family(false));
        assert!(!r(IpProto::ICMPV6, None).admits_l4_family(true));
        assert!(r(IpProto::UDP, None).admits_l4_family(false));
        assert!(!r(IpProto::UDP, Some(IpFamily::Ipv4)).admits_l4_family(false));
    }
}
