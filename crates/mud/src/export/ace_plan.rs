//! What ACEs one flow becomes: its protocol number and concrete ports (params expanded with
//! their defaults), its peers per address family, and each ACE pair (from-device, to-device)
//! built from that plan; or why the flow cannot be expressed in MUD.

use super::*;

/// Why a flow has no ACE; `warn` when that changes what a MUD manager enforces.
pub(crate) struct Unexpressed {
    pub why: String,
    pub warn: bool,
}

/// The ACEs of one flow: for each unit (peer × port combination), the (family, direction,
/// matches) triples sharing one name.
pub(crate) struct Plan {
    pub units: Vec<Vec<(Family, Dir, Matches)>>,
    pub notes: Vec<String>,
}

pub(super) fn unexpressed(why: impl Into<String>) -> Unexpressed {
    Unexpressed {
        why: why.into(),
        warn: true,
    }
}

pub(super) fn param_default<'a>(profile: &'a Profile, name: &str) -> Option<&'a ParamValue> {
    profile.param(name).and_then(|p| p.default.as_ref())
}

/// Port items with params replaced by their defaults; `Err` names a param without one.
pub(super) fn concrete_ports(
    spec: &PortSpec,
    profile: &Profile,
) -> Result<Vec<Option<PortItem>>, String> {
    match spec {
        PortSpec::None => Ok(vec![None]),
        PortSpec::Unspecified => Err("the ports are unspecified".into()),
        PortSpec::List(items) => {
            let mut out = Vec::new();
            for it in items {
                match it {
                    PortItem::Param(p) => match param_default(profile, p) {
                        Some(ParamValue::Ports(PortSpec::List(l))) => {
                            out.extend(l.iter().cloned().map(Some));
                        }
                        _ => {
                            return Err(format!("the ports are param `{p}`, which has no default"))
                        }
                    },
                    other => out.push(Some(other.clone())),
                }
            }
            Ok(out)
        }
    }
}

pub(super) fn protocol_number(f: &Flow, profile: &Profile) -> Result<u8, Unexpressed> {
    let proto = match &f.protocol {
        Protocol::Param(p) => match param_default(profile, p) {
            Some(ParamValue::Text(t)) => Protocol::from_name(t).ok_or_else(|| {
                unexpressed(format!(
                    "the protocol is param `{p}`, whose default `{t}` is no protocol"
                ))
            })?,
            _ => {
                return Err(unexpressed(format!(
                    "the protocol is param `{p}`, which has no default"
                )))
            }
        },
        other => other.clone(),
    };
    match proto {
        Protocol::Arp => Err(unexpressed(
            "ARP is no IP protocol, and MUD managers enforce IP ACLs",
        )),
        Protocol::Unspecified => Err(unexpressed("the protocol is unspecified")),
        p => p
            .number()
            .ok_or_else(|| unexpressed(format!("protocol {p} has no IP protocol number"))),
    }
}

/// Plans the ACEs of one flow, or says why MUD cannot express it.
pub(crate) fn plan(f: &Flow, profile: &Profile, mud_url: &str) -> Result<Plan, Unexpressed> {
    if let Some(i) = &f.inside {
        return Err(Unexpressed {
            why: format!(
                "carried inside flow `{}`, which is what a firewall sees",
                i.flow
            ),
            warn: false,
        });
    }
    let proto = protocol_number(f, profile)?;
    let has_ports = portolan_model::ir::IpProto::new(proto).has_ports();
    if proto == 132 && !f.ports.is_none() {
        return Err(unexpressed("RFC 8519 has no SCTP port match"));
    }
    let (peer_spec, dev_spec) = if f.outbound() {
        (&f.ports, &f.src_ports)
    } else {
        (&f.src_ports, &f.ports)
    };
    let peer_ports = if has_ports {
        concrete_ports(peer_spec, profile).map_err(unexpressed)?
    } else {
        vec![None]
    };
    let dev_ports = if has_ports {
        concrete_ports(dev_spec, profile).map_err(unexpressed)?
    } else {
        vec![None]
    };
    let endpoint = profile
        .endpoint(f.peer())
        .ok_or_else(|| unexpressed(format!("endpoint `{}` is not declared", f.peer())))?;
    let mapped = endpoint_peers(endpoint, profile, mud_url);
    if mapped.peers.is_empty() {
        return Err(unexpressed(mapped.missing.join("; ")));
    }
    let mut notes: Vec<String> = mapped
        .missing
        .iter()
        .map(|m| format!("{m} is left out of the ACLs"))
        .collect();
    let forward = if f.outbound() {
        Dir::FromDevice
    } else {
        Dir::ToDevice
    };
    let reverse = match forward {
        Dir::FromDevice => Dir::ToDevice,
        Dir::ToDevice => Dir::FromDevice,
    };
    let initiated = match (proto, f.initiation) {
        (6, Initiation::Device) => Some(Dir::FromDevice),
        (6, Initiation::Peer) => Some(Dir::ToDevice),
        _ => None,
    };
    let mut units = Vec::new();
    for peer in &mapped.peers {
        let dhcp = endpoint.service == Some(portolan_model::Service::Dhcp);
        let families: Vec<Family> = match peer {
            // The `dhcp` service is DHCPv4 (RFC 2131); DHCPv6 has other ports.
            _ if dhcp => vec![Family::V4],
            Peer::Net(IpNet::V4(_)) => vec![Family::V4],
            Peer::Net(IpNet::V6(_)) => vec![Family::V6],
            _ => vec![Family::V4, Family::V6],
        };
        let families: Vec<Family> = families
            .into_iter()
            .filter(|fam| match proto {
                1 => *fam == Family::V4,
                58 => *fam == Family::V6,
                _ => true,
            })
            .filter(|fam| match f.family {
                Some(IpFamily::Ipv4) => *fam == Family::V4,
                Some(IpFamily::Ipv6) => *fam == Family::V6,
                None => true,
            })
            .collect();
        if families.is_empty() {
            notes.push(format!(
                "{} does not carry protocol {proto}; left out of the ACLs",
                crate::rules::peer_text(peer)
            ));
            continue;
        }
        for pp in &peer_ports {
            for dp in &dev_ports {
                let mut unit = Vec::new();
                for fam in &families {
                    let v6 = *fam == Family::V6;
                    let (fwd_type, rev_type): (Option<u8>, Option<Option<u8>>) =
                        match (&f.icmp_type, proto) {
                            (Some(t), 1 | 58) => {
                                let n = icmp::number(t, v6).ok_or_else(|| {
                                    unexpressed(format!("ICMP type `{t}` has no number"))
                                })?;
                                (Some(n), icmp::reply_of(n, v6).map(Some))
                            }
                            _ => (None, Some(None)),
                        };
                    let spec = Spec {
                        fam: *fam,
                        peer,
                        proto,
                        pp,
                        dp,
                        initiated,
                    };
                    unit.push((*fam, forward, spec.matches(forward, fwd_type)));
                    // The reply ACE of a one-initiator flow whose ports read the same both ways
                    // (none, or one port on both sides) would say that both sides may send
                    // first ([`crate::direction`], rule 2); TCP says who in
                    // direction-initiated, other protocols leave the replies to the manager's
                    // state tracking.
                    let symmetric = pp == dp
                        && match proto {
                            6 => false,
                            1 | 58 => f.icmp_type.is_none(),
                            _ => true,
                        };
                    if symmetric && f.initiation != Initiation::Either {
                        continue;
                    }
                    if let Some(rt) = rev_type {
                        unit.push((*fam, reverse, spec.matches(reverse, rt)));
                    }
                }
                units.push(unit);
            }
        }
    }
    if units.is_empty() {
        return Err(unexpressed(notes.join("; ")));
    }
    Ok(Plan { units, notes })
}

pub(super) struct Spec<'a> {
    fam: Family,
    peer: &'a Peer,
    proto: u8,
    pp: &'a Option<PortItem>,
    dp: &'a Option<PortItem>,
    initiated: Option<Dir>,
}

pub(super) fn port_match(p: &Option<PortItem>) -> Option<PortMatch> {
    match p {
        Some(PortItem::Single(n)) => Some(PortMatch::eq(*n)),
        Some(PortItem::Range(a, b)) => Some(PortMatch::range(*a, *b)),
        _ => None,
    }
}

impl Spec<'_> {
    /// The matches of the ACE for packets in `dir`, with an ICMP type for ICMP.
    pub(super) fn matches(&self, dir: Dir, icmp_type: Option<u8>) -> Matches {
        let mut m = Matches::default();
        let (dst_name, src_name, dst_net, src_net) = match (self.peer, dir) {
            (Peer::Host(h) | Peer::Domain(h), Dir::FromDevice) => {
                (Some(h.clone()), None, None, None)
            }
            (Peer::Host(h) | Peer::Domain(h), Dir::ToDevice) => (None, Some(h.clone()), None, None),
            (Peer::Net(n), Dir::FromDevice) => (None, None, Some(n.to_string()), None),
            (Peer::Net(n), Dir::ToDevice) => (None, None, None, Some(n.to_string())),
            _ => (None, None, None, None),
        };
        match self.fam {
            Family::V4 => {
                m.ipv4 = Some(Ipv4 {
                    protocol: Some(self.proto),
                    destination_ipv4_network: dst_net,
                    source_ipv4_network: src_net,
                    dst_dnsname: dst_name,
                    src_dnsname: src_name,
                    ..Ipv4::default()
                })
            }
            Family::V6 => {
                m.ipv6 = Some(Ipv6 {
                    protocol: Some(self.proto),
                    destination_ipv6_network: dst_net,
                    source_ipv6_network: src_net,
                    dst_dnsname: dst_name,
                    src_dnsname: src_name,
                    ..Ipv6::default()
                })
            }
        }
        let mm = MudMatch::default();
        m.mud = match self.peer {
            Peer::Controller(u) => Some(MudMatch {
                controller: Some(u.clone()),
                ..mm
            }),
            Peer::MyController => Some(MudMatch {
                my_controller: Some(crate::schema::Empty),
                ..mm
            }),
            Peer::LocalNetworks => Some(MudMatch {
                local_networks: Some(crate::schema::Empty),
                ..mm
            }),
            Peer::SameManufacturer => Some(MudMatch {
                same_manufacturer: Some(crate::schema::Empty),
                ..mm
            }),
            Peer::Manufacturer(h) => Some(MudMatch {
                manufacturer: Some(h.clone()),
                ..mm
            }),
            Peer::Model(u) => Some(MudMatch {
                model: Some(u.clone()),
                ..mm
            }),
            Peer::Host(_) | Peer::Domain(_) | Peer::Net(_) | Peer::Any => None,
        };
        let (src, dst) = match dir {
            Dir::FromDevice => (port_match(self.dp), port_match(self.pp)),
            Dir::ToDevice => (port_match(self.pp), port_match(self.dp)),
        };
        match self.proto {
            6 if self.initiated.is_some() || src.is_some() || dst.is_some() => {
                m.tcp = Some(Tcp {
                    direction_initiated: self.initiated.map(|d| d.name().to_string()),
                    source_port: src,
                    destination_port: dst,
                    ..Tcp::default()
                })
            }
            17 if src.is_some() || dst.is_some() => {
                m.udp = Some(Udp {
                    source_port: src,
                    destination_port: dst,
                    ..Udp::default()
                })
            }
            1 | 58 => {
                if let Some(t) = icmp_type {
                    m.icmp = Some(Icmp {
                        kind: Some(t),
                        ..Icmp::default()
                    });
                }
            }
            _ => {}
        }
        m
    }
}
