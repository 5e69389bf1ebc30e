//! One ACE read as a rule: its matches (at most one of each layer), its actions, the
//! Ethernet matches an IP rule may carry, and who the peer is.

use super::matches::{icmp, ipv4, ipv6, mud_match, tcp, udp};
use super::*;

/// Reads one ACE as [`read`] would, for comparing what the exporter would write with what a
/// file holds; problems are discarded.
pub fn rule_of(ace: &Ace, acl: &str, acl_type: &str, dir: Dir) -> Option<AceRule> {
    let mut scratch = Problems::new(false);
    read_ace(ace, ace.name.clone(), acl, acl_type, "", dir, &mut scratch)
}

pub(super) fn read_ace(
    ace: &Ace,
    name: String,
    acl: &str,
    acl_type: &str,
    at: &str,
    dir: Dir,
    p: &mut Problems,
) -> Option<AceRule> {
    let fwd = ace
        .actions
        .forwarding
        .strip_prefix("ietf-access-control-list:")
        .unwrap_or(&ace.actions.forwarding);
    let fat = join(&join(at, "actions"), "forwarding");
    match fwd {
        "accept" => {}
        "drop" | "reject" => {
            p.warning(&fat, Code::NotAccept, format!("a `{fwd}` entry: profiles list what is allowed and everything else is dropped, so it is skipped"));
            return None;
        }
        other => {
            p.deviation(
                &fat,
                Code::UnknownAction,
                format!("`{other}` is not a forwarding action; the ACE is skipped"),
            );
            return None;
        }
    }
    let mut ok = members_ok(&ace.other, at, p);
    let m = &ace.matches;
    let mat = join(at, "matches");
    ok &= members_ok(&m.other, &mat, p);
    if !ok {
        return None;
    }
    let mut rule = AceRule {
        acl: acl.to_string(),
        ace: name,
        path: at.to_string(),
        dir,
        family: None,
        peer: Peer::Any,
        protocol: None,
        arp: false,
        peer_port: None,
        dev_port: None,
        icmp: None,
        initiated: None,
        broadcast: false,
    };
    // L3.
    let (l3_peer, family, protocol) = match (&m.ipv4, &m.ipv6) {
        (Some(_), Some(_)) => {
            p.deviation(
                &mat,
                Code::TwoL3Matches,
                "both ipv4 and ipv6 in one ACE (they are a choice in RFC 8519); skipped",
            );
            return None;
        }
        (Some(v4), None) => {
            let (peer, proto) = ipv4(v4, &join(&mat, "ipv4"), dir, p)?;
            (peer, Some(Family::V4), proto)
        }
        (None, Some(v6)) => {
            let (peer, proto) = ipv6(v6, &join(&mat, "ipv6"), dir, p)?;
            (peer, Some(Family::V6), proto)
        }
        (None, None) => (None, None, None),
    };
    let fam_of_type = match acl_type {
        "ipv4-acl-type" => Some(Family::V4),
        "ipv6-acl-type" => Some(Family::V6),
        _ => None,
    };
    if let (Some(f), Some(t)) = (family, fam_of_type) {
        if f != t {
            p.deviation(
                &mat,
                Code::MatchTypeMismatch,
                format!("an {f:?} match in an ACL of type {acl_type}; read by the match"),
            );
        }
    }
    rule.family = family.or(fam_of_type);
    rule.protocol = protocol;
    if let (Some(n), Some(_)) = (protocol, &m.ipv6) {
        if let Some(header) = ipv6_extension_header(n) {
            p.warning(
                &join(&join(&mat, "ipv6"), "protocol"),
                Code::Ipv6ExtensionHeader,
                format!("protocol {n} is the IPv6 {header} header, an extension header (RFC 8200 section 4), never an upper-layer protocol; RFC 8519's `protocol` is the upper-layer header's, so the ACE matches no packet (nor would nftables' `meta l4proto`, which skips extension headers); skipped"),
            );
            return None;
        }
    }
    // L2.
    if let Some(eth) = &m.eth {
        let eat = join(&mat, "eth");
        if !members_ok(&eth.other, &eat, p) {
            return None;
        }
        match eth_role(eth, rule.family) {
            EthRole::Arp if rule.family.is_none() && m.tcp.is_none() && m.udp.is_none() => {
                rule.arp = true;
            }
            EthRole::SameAsIp => {
                rule.broadcast = eth
                    .destination_mac_address
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case("ff:ff:ff:ff:ff:ff"));
                if !acl_type.starts_with("mixed-eth") {
                    p.deviation(
                        &eat,
                        Code::EthInIpAcl,
                        format!("an eth match in an ACL of type `{acl_type}` (RFC 8519 needs a mixed-eth type); read as the IP match (a broadcast MAC makes the flow broadcast)"),
                    );
                }
            }
            EthRole::Other(t) => {
                let what = match t {
                    Some(0x888e) => "0x888e (EAPOL, 802.1X)".to_string(),
                    Some(t) => format!("0x{t:04x}"),
                    None => "an Ethernet match".to_string(),
                };
                p.warning(
                    &eat,
                    Code::NonIpMatch,
                    format!(
                        "{what}: Portolan profiles hold IP flows and ARP only; the ACE is skipped"
                    ),
                );
                return None;
            }
            EthRole::Arp => {
                p.deviation(
                    &eat,
                    Code::ArpWithIp,
                    "ethertype ARP combined with IP or transport matches; skipped",
                );
                return None;
            }
        }
    } else if rule.family.is_none() && acl_type == "eth-acl-type" {
        p.warning(
            &mat,
            Code::NonIpMatch,
            "an Ethernet ACE without an ethertype; skipped",
        );
        return None;
    }
    // L4.
    let l4: Vec<&str> = [
        m.tcp.as_ref().map(|_| "tcp"),
        m.udp.as_ref().map(|_| "udp"),
        m.icmp.as_ref().map(|_| "icmp"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if l4.len() > 1 {
        p.deviation(
            &mat,
            Code::TwoL4Matches,
            format!(
                "{} in one ACE (a choice in RFC 8519); skipped",
                l4.join(" and ")
            ),
        );
        return None;
    }
    if let Some(kind) = l4.first() {
        let want: u8 = match (*kind, rule.family) {
            ("tcp", _) => 6,
            ("udp", _) => 17,
            (_, Some(Family::V6)) => 58,
            _ => 1,
        };
        match rule.protocol {
            None => {
                p.warning(
                    &mat,
                    Code::ProtocolInferred,
                    format!("a {kind} match without an IP `protocol`; read as protocol {want}"),
                );
                rule.protocol = Some(want);
            }
            Some(n) if n != want && !(*kind == "icmp" && (n == 1 || n == 58)) => {
                p.deviation(
                    &mat,
                    Code::ProtocolMismatch,
                    format!("protocol {n} with a {kind} match; skipped"),
                );
                return None;
            }
            Some(_) => {}
        }
    }
    if let Some(t) = &m.tcp {
        let tat = join(&mat, "tcp");
        tcp(t, &tat, dir, &mut rule, p)?;
    }
    if let Some(u) = &m.udp {
        let uat = join(&mat, "udp");
        udp(u, &uat, dir, &mut rule, p)?;
    }
    if let Some(i) = &m.icmp {
        rule.icmp = Some(icmp(i, &join(&mat, "icmp"), p)?);
    }
    // Peer: MUD abstraction, L3 name or network, or any.
    let mud_peer = match &m.mud {
        Some(mm) => mud_match(mm, &join(&mat, "ietf-mud:mud"), p)?,
        None => None,
    };
    rule.peer = match (mud_peer, l3_peer) {
        (None, None) => Peer::Any,
        (Some(a), None) => a,
        (None, Some(n)) => n,
        (Some(a), Some(n)) => {
            let local_scope = matches!(&n, Peer::Net(net) if is_local_scope(net));
            if !(a == Peer::LocalNetworks && local_scope) {
                p.warning(
                    &mat,
                    Code::CombinedPeer,
                    format!("both a MUD abstraction ({}) and an address match; Portolan keeps the address", peer_text(&a)),
                );
            }
            n
        }
    };
    if rule.peer == Peer::Any && !rule.arp {
        p.warning(
            &mat,
            Code::AnyPeer,
            "no peer match: the ACE allows any address; imported as a role the site must bind",
        );
    }
    Some(rule)
}

/// The IPv6 extension headers that always come before the upper-layer header (RFC 8200
/// section 4: Hop-by-Hop Options, Routing, Fragment, Destination Options), by next-header
/// value, with their names. RFC 8519's `protocol` leaf is the upper-layer header's ("if
/// extension headers are present, the protocol is present in the 'upper-layer' header"), so
/// an IPv6 ACE naming one of these matches no packet; Linux agrees (`ipv6_find_hdr` skips them
/// to set `meta l4proto`, as a kernel test shows for 0 and 44). AH (51) and ESP (50) are
/// extension headers for RFC 8200 too, but a file that names them means IPsec, and ESP ends
/// what can be read of a packet; they are kept (Linux also skips AH for `meta l4proto`: an
/// open question for IPv6 AH flows, none in the corpus).
pub(super) fn ipv6_extension_header(next_header: u8) -> Option<&'static str> {
    match next_header {
        0 => Some("Hop-by-Hop Options"),
        43 => Some("Routing"),
        44 => Some("Fragment"),
        60 => Some("Destination Options"),
        _ => None,
    }
}

pub(super) enum EthRole {
    /// Ethertype matching the IP family, perhaps with a broadcast/multicast MAC.
    SameAsIp,
    Arp,
    Other(Option<u16>),
}

pub(super) fn eth_role(eth: &Eth, family: Option<Family>) -> EthRole {
    let mac_ok = eth.source_mac_address.is_none()
        && eth
            .destination_mac_address
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case("ff:ff:ff:ff:ff:ff") || is_multicast_mac(m));
    match (eth.ethertype, family) {
        (Some(0x0806), None) if eth.source_mac_address.is_none() => EthRole::Arp,
        (Some(0x0800) | None, Some(Family::V4)) if mac_ok => EthRole::SameAsIp,
        (Some(0x86dd) | None, Some(Family::V6)) if mac_ok => EthRole::SameAsIp,
        (t, _) => EthRole::Other(t),
    }
}

pub(super) fn is_multicast_mac(m: &str) -> bool {
    m.get(..2)
        .and_then(|b| u8::from_str_radix(b, 16).ok())
        .is_some_and(|b| b & 1 == 1)
}

/// Multicast, limited broadcast and link-local prefixes: local by nature.
pub(super) fn is_local_scope(n: &IpNet) -> bool {
    match n.addr() {
        IpAddr::V4(a) => a.is_multicast() || a.is_broadcast() || a.is_link_local(),
        IpAddr::V6(a) => a.is_multicast() || (a.segments()[0] & 0xffc0) == 0xfe80,
    }
}
