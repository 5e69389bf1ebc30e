//! Rules that describe one flow: the same peer, protocol, family and ports from the device's
//! side, across both policies, and how a group becomes a flow.

use super::*;

/// Rules that describe one flow: the same peer, protocol and ports from the device's side.
pub(super) struct Group<'r> {
    pub(super) rules: Vec<&'r AceRule>,
    /// `None` for ARP.
    pub(super) family: Option<Family>,
    pub(super) peer: Peer,
    pub(super) protocol: Option<u8>,
    pub(super) arp: bool,
    pub(super) peer_port: Option<Vec<PortItem>>,
    pub(super) dev_port: Option<Vec<PortItem>>,
    /// ICMP type of the request and who sends it.
    pub(super) icmp: Option<(u8, Dir)>,
}

pub(super) type GroupKey = (
    Option<Family>,
    Peer,
    Option<u8>,
    bool,
    Option<Vec<PortItem>>,
    Option<Vec<PortItem>>,
    Option<(u8, Dir)>,
);

pub(super) fn icmp_key(r: &AceRule) -> Option<(u8, Dir)> {
    let (Some(t), _) = r.icmp? else {
        return None;
    };
    let v6 = r.protocol == Some(58);
    let sender = r.dir;
    let other = match sender {
        Dir::FromDevice => Dir::ToDevice,
        Dir::ToDevice => Dir::FromDevice,
    };
    Some(match icmp::request_of(t, v6) {
        // A reply travels opposite to its request.
        Some(req) => (req, other),
        None => (t, sender),
    })
}

pub(super) fn group<'r>(rules: &[&'r AceRule]) -> Vec<Group<'r>> {
    let mut order: Vec<GroupKey> = Vec::new();
    let mut map: BTreeMap<GroupKey, Vec<&'r AceRule>> = BTreeMap::new();
    for r in rules {
        let k: GroupKey = (
            r.family,
            r.peer.clone(),
            r.protocol,
            r.arp,
            r.peer_port.clone(),
            r.dev_port.clone(),
            icmp_key(r),
        );
        if !map.contains_key(&k) {
            order.push(k.clone());
        }
        map.entry(k).or_default().push(r);
    }
    order
        .into_iter()
        .filter_map(|k| {
            let rules = map.remove(&k)?;
            Some(Group {
                rules,
                family: k.0,
                peer: k.1,
                protocol: k.2,
                arp: k.3,
                peer_port: k.4,
                dev_port: k.5,
                icmp: k.6,
            })
        })
        .collect()
}

pub(super) fn ports_json(items: &[PortItem]) -> Value {
    let v: Vec<Value> = items
        .iter()
        .map(|i| match i {
            PortItem::Single(p) => Value::from(*p),
            other => Value::from(other.to_string()),
        })
        .collect();
    if v.len() == 1 {
        v.into_iter().next().unwrap_or(Value::Null)
    } else {
        Value::from(v)
    }
}

impl Group<'_> {
    /// The group read by the direction rule ([`crate::direction`]); `None`: skipped, with a
    /// warning.
    pub(super) fn reading(&self, p: &mut Problems) -> Option<Reading> {
        let id = ident_from(&self.rules[0].ace);
        crate::direction::read(
            &Facts {
                rules: &self.rules,
                protocol: self.protocol,
                peer_port: &self.peer_port,
                dev_port: &self.dev_port,
                icmp: self.icmp,
                id: &id,
            },
            p,
        )
    }

    /// The flow (profile format) and, for an inbound TCP/UDP flow, its listen entry.
    pub(super) fn flow(
        &self,
        r: Reading,
        endpoint: &str,
        doc: &str,
        ids: &mut BTreeSet<String>,
        p: &mut Problems,
    ) -> (Value, Option<Value>) {
        let first = self.rules[0];
        let id = unique(&ident_from(&first.ace), ids);
        let outbound = r.outbound;
        let initiation = r.initiator.word();
        let (from, to) = if outbound {
            ("device", endpoint)
        } else {
            (endpoint, "device")
        };
        let mut f = Map::new();
        f.insert("id".into(), Value::from(id.clone()));
        f.insert("from".into(), Value::from(from));
        f.insert("to".into(), Value::from(to));
        f.insert("initiation".into(), Value::from(initiation));
        let (ports, src) = if outbound {
            (&self.peer_port, &self.dev_port)
        } else {
            (&self.dev_port, &self.peer_port)
        };
        let mut listen = None;
        match (self.arp, self.protocol) {
            (true, _) => {
                f.insert("protocol".into(), Value::from("arp"));
            }
            (false, None) => {
                p.warning(
                    &first.path,
                    Code::AnyProtocol,
                    format!("flow `{id}`: the ACEs allow any IP protocol; a profile cannot say that, so it is `protocol: unspecified` and the site must choose"),
                );
                f.insert("protocol".into(), Value::from("unspecified"));
                f.insert("ports".into(), Value::from("unspecified"));
            }
            (false, Some(n)) => {
                let proto = Protocol::from_number(n);
                f.insert(
                    "protocol".into(),
                    match &proto {
                        Protocol::Number(n) => Value::from(*n),
                        other => Value::from(other.to_string()),
                    },
                );
                if proto.has_ports() {
                    let ports = match ports {
                        Some(items) => ports_json(items),
                        None => {
                            p.warning(
                                &first.path,
                                Code::AnyPort,
                                format!("flow `{id}`: no {} port on the {} side: any port, written 1-65535", proto, if outbound { "peer's" } else { "device's" }),
                            );
                            Value::from("1-65535")
                        }
                    };
                    f.insert("ports".into(), ports.clone());
                    if let Some(s) = src {
                        f.insert("src_ports".into(), ports_json(s));
                    }
                    if !outbound {
                        listen = Some(
                            json!({"protocol": proto.to_string(), "ports": ports, "flow": id}),
                        );
                    }
                }
            }
        }
        if let Some((t, _)) = self.icmp {
            f.insert(
                "icmp_type".into(),
                Value::from(icmp::name(t, self.protocol == Some(58))),
            );
            let codes: BTreeSet<u8> = self
                .rules
                .iter()
                .filter_map(|r| r.icmp.and_then(|(_, c)| c))
                .collect();
            let echo = matches!(t, 8 | 128);
            if codes.iter().any(|c| !(echo && *c == 0)) {
                p.warning(
                    &first.path,
                    Code::IcmpCode,
                    format!("flow `{id}`: ICMP code(s) {codes:?} cannot be kept; the flow allows every code of its type"),
                );
            }
        }
        match &self.peer {
            Peer::Net(n) if n.addr().is_multicast() => {
                f.insert("cast".into(), Value::from("multicast"));
                if n.prefix_len() == n.max_prefix_len() {
                    f.insert("group".into(), Value::from(n.addr().to_string()));
                }
            }
            Peer::Net(ipnet::IpNet::V4(n)) if n.addr().is_broadcast() => {
                f.insert("cast".into(), Value::from("broadcast"));
            }
            _ if self.rules.iter().any(|r| r.broadcast) => {
                f.insert("cast".into(), Value::from("broadcast"));
            }
            _ => {}
        }
        match self.family {
            Some(Family::V4) => {
                f.insert("family".into(), Value::from("ipv4"));
            }
            Some(Family::V6) => {
                f.insert("family".into(), Value::from("ipv6"));
            }
            None => {}
        }
        let mut seen = BTreeSet::new();
        let cites: Vec<Value> = self
            .rules
            .iter()
            .filter(|r| seen.insert((r.acl.clone(), r.ace.clone())))
            .map(|r| json!({"doc": doc, "ref": format!("ACL {}, ACE {}", r.acl, r.ace)}))
            .collect();
        f.insert("source".into(), Value::from(cites));
        (Value::Object(f), listen)
    }
}
