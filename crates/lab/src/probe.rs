//! One probe of the lab's matrix: what it sends (traffic, addresses, how: as it is or
//! forged), why (its kind and the `profile/flow` it stands for) and what is expected of it.

use std::net::IpAddr;

use serde::Serialize;

/// The phases a lab sends its probes in, in order (index = phase number), so that the
/// kernel's connection tracking never decides an outcome by the order of sending:
/// 1. unresolved names, and reversed probes of port-less protocols (ESP's conntrack entry has
///    no ports: an earlier outbound packet would make the inbound one "established");
/// 2. DNS through the firewall;
/// 3. the flows;
/// 4. broadcasts, after the unicast flows that share their ports (DHCP's renewal, 68 to 67,
///    is the reverse of the answer to a discovery: sent first, it stays the device's own);
/// 5. spoofed sources, after the real flows they copy (see [`crate::attack`]).
pub const PHASES: [&str; 6] = [
    "",
    "before DNS",
    "DNS through the firewall",
    "flows",
    "broadcasts, after the unicast flows",
    "spoofed sources, after the flows they copy",
];

/// The phase of broadcast probes.
pub const BROADCAST_PHASE: u8 = 4;
/// The phase of spoofed probes.
pub const SPOOF_PHASE: u8 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A flow a profile requires, sent as it is.
    Required,
    /// A name resolved through the firewall's DNS.
    Dns,
    OtherPort,
    OtherPeer,
    OtherDevice,
    Reversed,
    UnresolvedName,
    UnlistedName,
    /// A required packet forged whole and sent from its source's own zone: proves that forged
    /// packets pass where the real ones do, so the spoofed ones below cannot drop by accident.
    Forged,
    /// A required packet with a device's or a zone peer's address sent from a wrong zone.
    Spoofed,
    /// A broadcast (DHCP discovery) from a MAC no device of the zone has.
    ForeignMac,
    /// A broadcast or multicast flow's port sent to a unicast address.
    Unicast,
    /// Another port of a documented range the site narrowed.
    NarrowedPort,
    /// A peer-initiated flow opened by an address no binding of the device names.
    UnboundPeer,
    /// Another device's broadcast flow (DHCP discovery) sent from the address of a device
    /// whose profile states no broadcast on that port.
    UnstatedBroadcast,
    /// Under `enforce`: a name-based flow sent from another device of the group that never
    /// asked the firewall's DNS (see [`crate::enforce`]).
    UnresolvedDevice,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Required => "required",
            Kind::Dns => "dns",
            Kind::OtherPort => "other-port",
            Kind::OtherPeer => "other-peer",
            Kind::OtherDevice => "other-device",
            Kind::Reversed => "reversed",
            Kind::UnresolvedName => "unresolved-name",
            Kind::UnlistedName => "unlisted-name",
            Kind::Forged => "forged",
            Kind::Spoofed => "spoofed",
            Kind::ForeignMac => "foreign-mac",
            Kind::Unicast => "unicast",
            Kind::NarrowedPort => "narrowed-port",
            Kind::UnboundPeer => "unbound-peer",
            Kind::UnstatedBroadcast => "unstated-broadcast",
            Kind::UnresolvedDevice => "unresolved-device",
        }
    }

    /// Whether the expectation comes from the site's and profiles' facts
    /// ([`crate::attack`]) rather than from the policy IR.
    pub fn adversarial(self) -> bool {
        matches!(
            self,
            Kind::Spoofed
                | Kind::ForeignMac
                | Kind::Unicast
                | Kind::NarrowedPort
                | Kind::UnboundPeer
                | Kind::UnstatedBroadcast
                | Kind::UnresolvedDevice
        )
    }
}

/// What the firewall does with a probe's packet: lets it through or drops it (what the policy
/// expects of a probe; `Observed` is what happened). Not called `Verdict`: that name is the
/// probe stage's (`portolan_net::report::Verdict`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fate {
    Pass,
    Drop,
}

impl Fate {
    pub fn as_str(self) -> &'static str {
        match self {
            Fate::Pass => "pass",
            Fate::Drop => "drop",
        }
    }
}

/// What a probe sends.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Traffic {
    /// A TCP connection (handshake completes: pass).
    Tcp { port: u16 },
    /// A UDP datagram answered by an echo (the answer arrives: pass).
    Udp { port: u16 },
    /// An ICMP or ICMPv6 echo request (the reply arrives: pass).
    Echo,
    /// A raw IP packet of a protocol without ports, e.g. ESP (it arrives: pass).
    Ip { protocol: u8 },
    /// A DNS query to the firewall's resolver (the expected answer arrives: pass).
    Dns { name: String, answer: IpAddr },
}

impl Traffic {
    pub fn protocol(&self, v4: bool) -> u8 {
        match self {
            Traffic::Tcp { .. } => 6,
            Traffic::Udp { .. } | Traffic::Dns { .. } => 17,
            Traffic::Echo if v4 => 1,
            Traffic::Echo => 58,
            Traffic::Ip { protocol } => *protocol,
        }
    }

    pub fn dport(&self) -> Option<u16> {
        match self {
            Traffic::Tcp { port } | Traffic::Udp { port } => Some(*port),
            Traffic::Dns { .. } => Some(53),
            _ => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Traffic::Tcp { port } => format!("tcp/{port}"),
            Traffic::Udp { port } => format!("udp/{port}"),
            Traffic::Echo => "icmp echo".into(),
            Traffic::Ip { protocol: 50 } => "esp".into(),
            Traffic::Ip { protocol: 51 } => "ah".into(),
            Traffic::Ip { protocol: 47 } => "gre".into(),
            Traffic::Ip { protocol } => format!("ip proto {protocol}"),
            Traffic::Dns { name, .. } => format!("dns {name}"),
        }
    }
}

/// How a forged probe leaves: a whole IP packet, any source address, from a space that need
/// not be its source's. No answer can come back to it, so it is observed where it arrives
/// (its token seen by a raw socket of the receiving namespace, after that namespace's input).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Forged {
    /// The space it is sent from (index into the topology's spaces).
    #[serde(skip)]
    pub space: usize,
    /// The zone (or `peers`) it is sent from, for the report.
    pub zone: String,
    /// The link it leaves through (a macvlan with a chosen MAC); `None`: the space's veth.
    #[serde(skip)]
    pub link: Option<String>,
    /// The MAC it is sent with, when not the veth's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// One probe of the matrix.
#[derive(Clone, Debug, Serialize)]
pub struct Probe {
    /// The device group the row is about (the sender for other-device probes).
    pub device: String,
    /// `profile/flow` of the rule the probe comes from.
    pub flow: String,
    pub kind: Kind,
    #[serde(skip)]
    pub phase: u8,
    pub src: IpAddr,
    /// The destination; 255.255.255.255 for broadcast.
    pub dst: IpAddr,
    pub to_firewall: bool,
    pub broadcast: bool,
    pub sport: Option<u16>,
    pub traffic: Traffic,
    pub expected: Fate,
    /// Why the probe cannot be sent in a lab, when it cannot.
    pub skip: Option<String>,
    /// What a reader of a mismatch should know.
    pub note: Option<String>,
    /// Sent as a forged packet (see [`Forged`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forged: Option<Forged>,
}

impl Probe {
    pub fn key(&self) -> Key {
        (
            self.phase,
            self.src,
            self.dst,
            self.sport,
            self.traffic.clone(),
            self.to_firewall,
            self.forged.clone(),
        )
    }
}

/// What makes two probes the same: phase, packet and how it is sent.
pub type Key = (
    u8,
    IpAddr,
    IpAddr,
    Option<u16>,
    Traffic,
    bool,
    Option<Forged>,
);
