//! The matches of an ACE: the L3 peer (networks, DNS names, MUD abstractions), the L4 ports
//! (RFC 8519 operators and ranges) and ICMP types, each seen from the device's side.

use super::*;

pub fn peer_text(p: &Peer) -> String {
    match p {
        Peer::Host(h) => format!("dnsname {h}"),
        Peer::Domain(d) => format!("dnsname {d}"),
        Peer::Net(n) => format!("network {n}"),
        Peer::Controller(u) => format!("controller {u}"),
        Peer::MyController => "my-controller".into(),
        Peer::LocalNetworks => "local-networks".into(),
        Peer::SameManufacturer => "same-manufacturer".into(),
        Peer::Manufacturer(m) => format!("manufacturer {m}"),
        Peer::Model(m) => format!("model {m}"),
        Peer::Any => "any".into(),
    }
}

/// The peer named in an L3 match (the destination of a from-device ACE, the source of a
/// to-device one). Names and networks on the device's own side cannot be expressed.
#[allow(clippy::too_many_arguments)]
pub(super) fn l3_peer(
    at: &str,
    dir: Dir,
    dst_name: &Option<String>,
    src_name: &Option<String>,
    dst_net: &Option<String>,
    src_net: &Option<String>,
    net_keys: (&str, &str),
    p: &mut Problems,
) -> Option<Option<Peer>> {
    let (name, net, dev_name, dev_net, name_key, net_key) = match dir {
        Dir::FromDevice => (
            dst_name,
            dst_net,
            src_name,
            src_net,
            "ietf-acldns:dst-dnsname",
            net_keys.0,
        ),
        Dir::ToDevice => (
            src_name,
            src_net,
            dst_name,
            dst_net,
            "ietf-acldns:src-dnsname",
            net_keys.1,
        ),
    };
    if dev_name.is_some() || dev_net.is_some() {
        p.warning(
            at,
            Code::DeviceAddressMatch,
            format!("a {} ACE that matches the device's own name or address: profiles describe the device's peers only; skipped", dir.name()),
        );
        return None;
    }
    let name_peer = match name {
        None => None,
        Some(h) => {
            let hat = join(at, name_key);
            let t = h.trim_end_matches('.').to_ascii_lowercase();
            if is_hostname(&t) {
                Some(Peer::Host(t))
            } else if check_wildcard(&t).is_ok() {
                p.deviation(
                    &hat,
                    Code::WildcardDnsname,
                    format!("`{h}` is a wildcard, which `inet:host` does not allow; read as the domain {t}"),
                );
                Some(Peer::Domain(t))
            } else {
                p.deviation(
                    &hat,
                    Code::InvalidDnsname,
                    format!("`{h}` is not a fully qualified host name; the ACE is skipped"),
                );
                return None;
            }
        }
    };
    let net_peer = match net {
        None => None,
        Some(s) => {
            let nat = join(at, net_key);
            let parsed = s.trim().parse::<IpNet>().ok().or_else(|| {
                let a = s.trim().parse::<IpAddr>().ok()?;
                p.deviation(
                    &nat,
                    Code::AddressWithoutPrefix,
                    format!("`{s}` is an address, not a prefix (inet:ip-prefix needs a length); read as a single address"),
                );
                Some(IpNet::from(a))
            });
            match parsed {
                Some(n) => {
                    if n.trunc() != n {
                        p.warning(
                            &nat,
                            Code::HostBitsSet,
                            format!("`{s}` has host bits set; read as {}", n.trunc()),
                        );
                    }
                    Some(Peer::Net(n.trunc()))
                }
                None => {
                    p.deviation(
                        &nat,
                        Code::InvalidNetwork,
                        format!("`{s}` is not an IP prefix; the ACE is skipped"),
                    );
                    return None;
                }
            }
        }
    };
    match (name_peer, net_peer) {
        (Some(n), Some(_)) => {
            p.deviation(
                at,
                Code::NameAndNetwork,
                "both a DNS name and a network for the same side; the name is kept",
            );
            Some(Some(n))
        }
        (a, b) => Some(a.or(b)),
    }
}

pub(super) fn ipv4(
    v: &Ipv4,
    at: &str,
    dir: Dir,
    p: &mut Problems,
) -> Option<(Option<Peer>, Option<u8>)> {
    if !members_ok(&v.other, at, p) {
        return None;
    }
    let peer = l3_peer(
        at,
        dir,
        &v.dst_dnsname,
        &v.src_dnsname,
        &v.destination_ipv4_network,
        &v.source_ipv4_network,
        ("destination-ipv4-network", "source-ipv4-network"),
        p,
    )?;
    if let Some(Peer::Net(n)) = &peer {
        if matches!(n, IpNet::V6(_)) {
            p.deviation(
                at,
                Code::InvalidNetwork,
                "an IPv6 prefix in an ipv4 match; the ACE is skipped",
            );
            return None;
        }
    }
    Some((peer, v.protocol))
}

pub(super) fn ipv6(
    v: &Ipv6,
    at: &str,
    dir: Dir,
    p: &mut Problems,
) -> Option<(Option<Peer>, Option<u8>)> {
    if !members_ok(&v.other, at, p) {
        return None;
    }
    let peer = l3_peer(
        at,
        dir,
        &v.dst_dnsname,
        &v.src_dnsname,
        &v.destination_ipv6_network,
        &v.source_ipv6_network,
        ("destination-ipv6-network", "source-ipv6-network"),
        p,
    )?;
    if let Some(Peer::Net(n)) = &peer {
        if matches!(n, IpNet::V4(_)) {
            p.deviation(
                at,
                Code::InvalidNetwork,
                "an IPv4 prefix in an ipv6 match; the ACE is skipped",
            );
            return None;
        }
    }
    Some((peer, v.protocol))
}

pub(super) fn ports_of(
    src: &Option<PortMatch>,
    dst: &Option<PortMatch>,
    at: &str,
    dir: Dir,
    rule: &mut AceRule,
    p: &mut Problems,
) -> Option<()> {
    let s = match src {
        Some(m) => Some(port_match(m, &join(at, "source-port"), p)?),
        None => None,
    };
    let d = match dst {
        Some(m) => Some(port_match(m, &join(at, "destination-port"), p)?),
        None => None,
    };
    match dir {
        Dir::FromDevice => {
            rule.peer_port = d;
            rule.dev_port = s;
        }
        Dir::ToDevice => {
            rule.peer_port = s;
            rule.dev_port = d;
        }
    }
    Some(())
}

pub(super) fn tcp(t: &Tcp, at: &str, dir: Dir, rule: &mut AceRule, p: &mut Problems) -> Option<()> {
    if !members_ok(&t.other, at, p) {
        return None;
    }
    if let Some(d) = &t.direction_initiated {
        rule.initiated = Some(match d.as_str() {
            "from-device" => Dir::FromDevice,
            "to-device" => Dir::ToDevice,
            other => {
                p.deviation(
                    &join(at, "ietf-mud:direction-initiated"),
                    Code::UnknownDirection,
                    format!("`{other}` is neither from-device nor to-device; skipped"),
                );
                return None;
            }
        });
    }
    ports_of(&t.source_port, &t.destination_port, at, dir, rule, p)
}

pub(super) fn udp(u: &Udp, at: &str, dir: Dir, rule: &mut AceRule, p: &mut Problems) -> Option<()> {
    if !members_ok(&u.other, at, p) {
        return None;
    }
    ports_of(&u.source_port, &u.destination_port, at, dir, rule, p)
}

pub(super) fn icmp(i: &Icmp, at: &str, p: &mut Problems) -> Option<(Option<u8>, Option<u8>)> {
    if !members_ok(&i.other, at, p) {
        return None;
    }
    Some((i.kind, i.code))
}

/// A port match as port items (RFC 8519 `port-range-or-operator`).
pub(super) fn port_match(m: &PortMatch, at: &str, p: &mut Problems) -> Option<Vec<PortItem>> {
    if !members_ok(&m.other, at, p) {
        return None;
    }
    let zero = |p: &mut Problems, what: &str| {
        p.warning(
            at,
            Code::PortZero,
            format!("{what} 0 is no usable port; read as 1"),
        );
    };
    let item = |a: u16, b: u16| {
        if a == b {
            PortItem::Single(a)
        } else {
            PortItem::Range(a, b)
        }
    };
    match (m.lower_port, m.upper_port, m.operator.as_deref(), m.port) {
        (Some(mut lo), Some(hi), None, None) => {
            if lo > hi {
                p.deviation(
                    at,
                    Code::ReversedRange,
                    format!("lower-port {lo} is above upper-port {hi}; the ACE is skipped"),
                );
                return None;
            }
            if hi == 0 {
                p.deviation(at, Code::PortZero, "the range holds only port 0; skipped");
                return None;
            }
            if lo == 0 {
                zero(p, "lower-port");
                lo = 1;
            }
            Some(vec![item(lo, hi)])
        }
        (None, None, op, Some(port)) => {
            let op = op.unwrap_or("eq");
            let items = match op {
                "eq" if port > 0 => vec![PortItem::Single(port)],
                "lte" if port > 0 => vec![item(1, port)],
                "gte" => vec![item(port.max(1), 65535)],
                "neq" => {
                    let mut v = Vec::new();
                    if port > 1 {
                        v.push(item(1, port - 1));
                    }
                    if port < 65535 {
                        v.push(item(port.saturating_add(1).max(1), 65535));
                    }
                    v
                }
                "eq" | "lte" => {
                    p.deviation(at, Code::PortZero, "port 0 is no usable port; skipped");
                    return None;
                }
                other => {
                    p.deviation(
                        &join(at, "operator"),
                        Code::UnknownOperator,
                        format!(
                            "`{other}` is not an RFC 8519 operator (lte, gte, eq, neq); skipped"
                        ),
                    );
                    return None;
                }
            };
            Some(items)
        }
        _ => {
            p.deviation(
                at,
                Code::InvalidPortMatch,
                "a port match is either lower-port and upper-port, or [operator and] port (RFC 8519); skipped",
            );
            None
        }
    }
}

pub(super) fn mud_match(m: &MudMatch, at: &str, p: &mut Problems) -> Option<Option<Peer>> {
    if !members_ok(&m.other, at, p) {
        return None;
    }
    let mut found: Vec<Peer> = Vec::new();
    if let Some(h) = &m.manufacturer {
        if !is_hostname(h) {
            p.deviation(
                &join(at, "manufacturer"),
                Code::InvalidManufacturer,
                format!("`{h}` is not a host name; skipped"),
            );
            return None;
        }
        found.push(Peer::Manufacturer(h.to_ascii_lowercase()));
    }
    if m.same_manufacturer.is_some() {
        found.push(Peer::SameManufacturer);
    }
    if let Some(u) = &m.model {
        found.push(Peer::Model(u.clone()));
    }
    if m.local_networks.is_some() {
        found.push(Peer::LocalNetworks);
    }
    if let Some(c) = &m.controller {
        if !is_uri(c) {
            p.deviation(
                &join(at, "controller"),
                Code::ControllerNotUri,
                format!("`{c}` is not a URI (RFC 8520 section 4.5 types `controller` as inet:uri); read as a role the site binds"),
            );
        }
        if c != URN_DNS && c != URN_NTP {
            if let Some(rest) = c.strip_prefix("urn:ietf:params:mud:") {
                p.deviation(
                    &join(at, "controller"),
                    Code::UnregisteredController,
                    format!("`{c}` is not a registered MUD URN (only :dns and :ntp are, RFC 8520 section 17.7); read as a role `{rest}` the site binds"),
                );
            }
        }
        found.push(Peer::Controller(c.clone()));
    }
    if m.my_controller.is_some() {
        found.push(Peer::MyController);
    }
    if found.len() > 1 {
        p.warning(
            at,
            Code::CombinedPeer,
            format!(
                "several MUD abstractions in one ACE ({}); Portolan keeps the first",
                found.iter().map(peer_text).collect::<Vec<_>>().join(", ")
            ),
        );
    }
    Some(found.into_iter().next())
}
