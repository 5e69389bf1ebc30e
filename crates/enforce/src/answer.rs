//! What an answer opens, decided without I/O: the asking device's group, the rules of that
//! group whose names admit the question's name ([`portolan_model::ir::Peers::admits_name`],
//! the profile's semantics), the CNAME chain from that name to its A/AAAA records, and the
//! `device . peer` elements with their timeouts.
//!
//! The name checked is the one the device asked, which is the name the profile states: a
//! CNAME from a permitted name to a name outside the profile (a CDN) opens the addresses at
//! the end of the chain; a CNAME from an outside name to a permitted one opens nothing, since
//! the device never asked for the permitted name. Only records on the chain count (RFC 1034
//! section 3.6.2: a name with a CNAME has no other data), so extra records an upstream adds
//! open nothing. An element lives for the smallest TTL on the chain plus a grace, kept
//! between a floor and a cap.

use std::net::IpAddr;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RData;
use portolan_emit::names::Family;
use portolan_emit::nftables::NameScope;
use portolan_nft::elements::Pair;

/// How long an element lives: TTL + grace, at least `floor`, at most `cap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub grace: Duration,
    pub floor: Duration,
    pub cap: Duration,
}

impl Default for Timing {
    /// Grace 30 s (a device that just read an answer in its last second still connects),
    /// floor 30 s, cap one day.
    fn default() -> Timing {
        Timing {
            grace: Duration::from_secs(30),
            floor: Duration::from_secs(30),
            cap: Duration::from_secs(86_400),
        }
    }
}

impl Timing {
    /// The element timeout, seconds, for a record TTL.
    pub fn timeout(&self, ttl: u32) -> u64 {
        let t = u64::from(ttl).saturating_add(self.grace.as_secs());
        t.max(self.floor.as_secs()).min(self.cap.as_secs()).max(1)
    }
}

/// One address the answer opened, for logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    pub provenance: String,
    pub pair: Pair,
    /// The smallest TTL on the chain.
    pub ttl: u32,
}

/// What one answer does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// The question's name, lowercase, without the root dot.
    pub name: String,
    /// The asking device's group, if the source is a device of the site.
    pub group: Option<String>,
    /// Whether a rule of that group admits the name.
    pub permitted: bool,
    /// The chain followed: the question's name, then each CNAME target.
    pub chain: Vec<String>,
    pub opened: Vec<Opened>,
}

fn norm(s: &str) -> String {
    s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase()
}

/// The final addresses of the CNAME chain starting at `qname`, each with the smallest TTL on
/// the way, and the chain itself.
pub fn chain_addresses(msg: &Message, qname: &str) -> (Vec<(IpAddr, u32)>, Vec<String>) {
    let mut current = norm(qname);
    let mut chain = vec![current.clone()];
    let mut ttl = u32::MAX;
    // Bounded: a loop of CNAMEs in a hostile answer stops here.
    for _ in 0..16 {
        let next = msg.answers.iter().find_map(|r| match &r.data {
            RData::CNAME(c) if norm(&r.name.to_ascii()) == current => {
                Some((norm(&c.0.to_ascii()), r.ttl))
            }
            _ => None,
        });
        match next {
            Some((target, t)) if !chain.contains(&target) => {
                ttl = ttl.min(t);
                chain.push(target.clone());
                current = target;
            }
            _ => break,
        }
    }
    let addrs = msg
        .answers
        .iter()
        .filter(|r| norm(&r.name.to_ascii()) == current)
        .filter_map(|r| match &r.data {
            RData::A(a) => Some((IpAddr::V4(a.0), ttl.min(r.ttl))),
            RData::AAAA(a) => Some((IpAddr::V6(a.0), ttl.min(r.ttl))),
            _ => None,
        })
        .collect();
    (addrs, chain)
}

/// The asking device's addresses in a family (`v4`): its own source address in its own
/// family; in the other, the group's host addresses of that family, but only when the group
/// is one device (its addresses in the asking family are that one host address). A group
/// of a prefix (several devices) gives nothing in the other family: which of its addresses
/// is the asker's cannot be told, and opening them all would open other devices.
pub fn device_in_family(scope: &NameScope, device: IpAddr, v4: bool) -> Vec<IpAddr> {
    if device.is_ipv4() == v4 {
        return vec![device];
    }
    let host = |n: &ipnet::IpNet| n.prefix_len() == n.max_prefix_len();
    let own: Vec<_> = scope
        .addresses
        .iter()
        .filter(|a| a.addr().is_ipv4() == device.is_ipv4())
        .collect();
    if own.len() != 1 || !host(own[0]) || own[0].addr() != device {
        return Vec::new();
    }
    scope
        .addresses
        .iter()
        .filter(|a| a.addr().is_ipv4() == v4 && host(a))
        .map(|a| a.addr())
        .collect()
}

/// The asking device's group and whether a rule of it admits `name` (the question's name,
/// any case, with or without the final dot).
pub fn admits(scopes: &[NameScope], device: IpAddr, name: &str) -> (Option<String>, bool) {
    let name = norm(name);
    match scopes
        .iter()
        .find(|s| s.addresses.iter().any(|a| a.contains(&device)))
    {
        Some(s) => (
            Some(s.group.clone()),
            s.rules.iter().any(|r| r.peers.admits_name(&name)),
        ),
        None => (None, false),
    }
}

/// What `answer`, sent to `device`, opens under `scopes`.
pub fn decide(scopes: &[NameScope], device: IpAddr, answer: &Message, timing: &Timing) -> Decision {
    let Some(q) = answer.queries.first() else {
        return Decision::default();
    };
    let name = norm(&q.name.to_ascii());
    let scope = scopes
        .iter()
        .find(|s| s.addresses.iter().any(|a| a.contains(&device)));
    let mut d = Decision {
        name: name.clone(),
        group: scope.map(|s| s.group.clone()),
        ..Decision::default()
    };
    let Some(scope) = scope else { return d };
    let rules: Vec<_> = scope
        .rules
        .iter()
        .filter(|r| r.peers.admits_name(&name))
        .collect();
    d.permitted = !rules.is_empty();
    if rules.is_empty() || answer.metadata.response_code != ResponseCode::NoError {
        return d;
    }
    let (addrs, chain) = chain_addresses(answer, &name);
    d.chain = chain;
    for r in rules {
        for (peer, ttl) in &addrs {
            // The peer's family decides the set; the key's device address is the asking
            // device's own in that family (an AAAA asked over IPv4 opens the device's IPv6
            // address, when the site says which one that is).
            let fam = if peer.is_ipv4() {
                Family::V4
            } else {
                Family::V6
            };
            let Some((_, set)) = r.sets.iter().find(|(f, _)| *f == fam) else {
                continue;
            };
            for dev in device_in_family(scope, device, peer.is_ipv4()) {
                d.opened.push(Opened {
                    provenance: r.provenance.clone(),
                    pair: Pair {
                        set: set.clone(),
                        device: dev,
                        peer: *peer,
                        timeout: timing.timeout(*ttl),
                    },
                    ttl: *ttl,
                });
            }
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::{A, AAAA, CNAME};
    use hickory_proto::rr::{Name, Record, RecordType};
    use ipnet::IpNet;
    use portolan_emit::nftables::NameRule;
    use portolan_model::ir::{Initiator, IpProto, Peers, PortRange};

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    fn answer(q: &str, records: Vec<Record>) -> Message {
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.queries.push(Query::query(name(q), RecordType::A));
        m.answers = records;
        m
    }

    fn a(n: &str, ttl: u32, ip: &str) -> Record {
        Record::from_rdata(name(n), ttl, RData::A(A(ip.parse().expect("ip"))))
    }

    fn cname(n: &str, ttl: u32, target: &str) -> Record {
        Record::from_rdata(name(n), ttl, RData::CNAME(CNAME(name(target))))
    }

    /// Group `cam` (10.0.0.0/28 and 2001:db8::10/128) with one rule for `cloud.example.com`
    /// and `*.fleet.example.net`.
    fn scopes() -> Vec<NameScope> {
        let net = |s: &str| s.parse::<IpNet>().expect("net");
        vec![NameScope {
            group: "cam".into(),
            addresses: vec![net("10.0.0.0/28"), net("2001:db8::10/128")],
            rules: vec![NameRule {
                provenance: "p/cloud".into(),
                initiator: Initiator::Device,
                protocol: IpProto::TCP,
                ports: vec![PortRange::one(443)],
                peers: Peers {
                    names: vec!["cloud.example.com".into()],
                    wildcards: vec!["fleet.example.net".into()],
                    ..Peers::default()
                },
                sets: vec![(Family::V4, "s_v4".into()), (Family::V6, "s_v6".into())],
            }],
        }]
    }

    fn t(grace: u64, floor: u64, cap: u64) -> Timing {
        Timing {
            grace: Duration::from_secs(grace),
            floor: Duration::from_secs(floor),
            cap: Duration::from_secs(cap),
        }
    }

    fn dev() -> IpAddr {
        "10.0.0.2".parse().expect("ip")
    }

    #[test]
    fn timeouts_are_ttl_plus_grace_within_floor_and_cap() {
        let t = t(30, 60, 3600);
        assert_eq!(t.timeout(300), 330);
        assert_eq!(t.timeout(0), 60);
        assert_eq!(t.timeout(u32::MAX), 3600);
    }

    #[test]
    fn a_cname_chain_opens_its_last_addresses_for_its_shortest_ttl() {
        // cloud.example.com -> edge.cdn.test (TTL 60) -> 192.0.2.7 (TTL 300); an unrelated A
        // record in the same answer opens nothing.
        let m = answer(
            "cloud.example.com.",
            vec![
                cname("cloud.example.com.", 60, "edge.cdn.test."),
                a("edge.cdn.test.", 300, "192.0.2.7"),
                a("other.test.", 300, "192.0.2.99"),
            ],
        );
        let d = decide(&scopes(), dev(), &m, &t(5, 1, 3600));
        assert!(d.permitted);
        assert_eq!(d.group.as_deref(), Some("cam"));
        assert_eq!(d.chain, vec!["cloud.example.com", "edge.cdn.test"]);
        let pairs: Vec<_> = d
            .opened
            .iter()
            .map(|o| (o.pair.peer.to_string(), o.pair.timeout, o.pair.set.as_str()))
            .collect();
        assert_eq!(pairs, vec![("192.0.2.7".to_string(), 65, "s_v4")]);
    }

    #[test]
    fn an_outside_name_opens_nothing_even_through_a_cname_to_a_permitted_one() {
        let m = answer(
            "sneaky.test.",
            vec![
                cname("sneaky.test.", 60, "cloud.example.com."),
                a("cloud.example.com.", 300, "192.0.2.7"),
            ],
        );
        let d = decide(&scopes(), dev(), &m, &Timing::default());
        assert!(!d.permitted);
        assert!(d.opened.is_empty());
    }

    #[test]
    fn strangers_loops_errors_and_other_families_open_nothing() {
        let ok = answer(
            "cloud.example.com.",
            vec![a("cloud.example.com.", 300, "192.0.2.7")],
        );
        // A source that is no device of the site.
        let d = decide(
            &scopes(),
            "10.0.0.99".parse().expect("ip"),
            &ok,
            &Timing::default(),
        );
        assert_eq!((d.group, d.opened.len()), (None, 0));
        // An error answer.
        let mut nx = ok.clone();
        nx.metadata.response_code = ResponseCode::NXDomain;
        assert!(decide(&scopes(), dev(), &nx, &Timing::default())
            .opened
            .is_empty());
        // A CNAME loop ends; nothing at its end.
        let looped = answer(
            "a.fleet.example.net.",
            vec![
                cname("a.fleet.example.net.", 60, "b.test."),
                cname("b.test.", 60, "a.fleet.example.net."),
            ],
        );
        let d = decide(&scopes(), dev(), &looped, &Timing::default());
        assert!(d.permitted && d.opened.is_empty());
        // An AAAA asked over IPv4 from a group of a prefix (several devices): which IPv6
        // address is the asker's cannot be told, so nothing opens.
        let v6 = answer(
            "cloud.example.com.",
            vec![Record::from_rdata(
                name("cloud.example.com."),
                300,
                RData::AAAA(AAAA("2001:db8::7".parse().expect("ip"))),
            )],
        );
        assert!(decide(&scopes(), dev(), &v6, &Timing::default())
            .opened
            .is_empty());
        let d = decide(
            &scopes(),
            "2001:db8::10".parse().expect("ip"),
            &v6,
            &Timing::default(),
        );
        assert_eq!(d.opened.len(), 1);
        assert_eq!(d.opened[0].pair.set, "s_v6");
    }

    #[test]
    fn the_peers_family_decides_the_set_and_the_devices_address_in_it() {
        // One device: 10.0.0.5 and 2001:db8::5 (host addresses).
        let mut one = scopes();
        one[0].addresses = vec![
            "10.0.0.5/32".parse().expect("net"),
            "2001:db8::5/128".parse().expect("net"),
        ];
        let v6 = answer(
            "cloud.example.com.",
            vec![Record::from_rdata(
                name("cloud.example.com."),
                300,
                RData::AAAA(AAAA("2001:db8:1::7".parse().expect("ip"))),
            )],
        );
        // AAAA over IPv4: the device's IPv6 address . the peer, in the IPv6 set.
        let d = decide(&one, "10.0.0.5".parse().expect("ip"), &v6, &t(0, 1, 3600));
        let got: Vec<_> = d
            .opened
            .iter()
            .map(|o| {
                (
                    o.pair.set.as_str(),
                    o.pair.device.to_string(),
                    o.pair.peer.to_string(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![("s_v6", "2001:db8::5".into(), "2001:db8:1::7".into())]
        );
        // A over IPv6: the device's IPv4 address . the peer, in the IPv4 set.
        let v4 = answer(
            "cloud.example.com.",
            vec![a("cloud.example.com.", 300, "192.0.2.7")],
        );
        let d = decide(
            &one,
            "2001:db8::5".parse().expect("ip"),
            &v4,
            &t(0, 1, 3600),
        );
        let got: Vec<_> = d
            .opened
            .iter()
            .map(|o| {
                (
                    o.pair.set.as_str(),
                    o.pair.device.to_string(),
                    o.pair.peer.to_string(),
                )
            })
            .collect();
        assert_eq!(got, vec![("s_v4", "10.0.0.5".into(), "192.0.2.7".into())]);
    }
}
