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
//!
//! A rule to a peer learnt from DNS SRV records ([`portolan_model::ir::Peers::srv`]) admits
//! the SRV owner name the profile states. Its answer's SRV records (RFC 2782: priority,
//! weight, port, target; owned by the question's name or the end of its CNAME chain) say
//! where the device will connect: each target whose port the rule admits (any, when the
//! profile leaves the port to the record) is *learnt* for the asking device, and its
//! addresses the answer carries (A/AAAA owned by the target, in the answer or additional
//! section) open `device . address . port` triples at once. The target's addresses may come
//! later, from the device's own A/AAAA query for the target name: that query is admitted,
//! and opens the same triples, only while the device's learnt target lives (the SRV TTL plus
//! the grace); another device's, or a name no SRV answer named, opens nothing. A target `.`
//! ("service decidedly not available", RFC 2782) opens nothing.

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
    /// SRV targets this answer taught the asking device (remembered by the forwarder for the
    /// device's later A/AAAA queries of the target).
    pub learnt: Vec<Learnt>,
}

/// One SRV record (RFC 2782), as an answer carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrvTarget {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// The target host, lowercase, without the root dot; empty for `.` (no service).
    pub target: String,
    pub ttl: u32,
}

/// A target an SRV answer named for a device and a rule: the device may connect to its
/// addresses at `port` while it lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Learnt {
    /// The address the SRV question came from.
    pub device: IpAddr,
    /// The target's name, lowercase, without the root dot.
    pub target: String,
    pub port: u16,
    /// The rule's `profile/flow` and its set per family.
    pub provenance: String,
    pub sets: Vec<(Family, String)>,
    /// Seconds: the SRV record's TTL (at decision), or what is left of it (when recalled).
    pub ttl: u32,
}

/// The SRV records of `msg` for `qname`: owned by it, or by the end of the CNAME chain that
/// starts at it (RFC 1034 section 3.6.2), in the answer section; other owners are ignored.
pub fn srv_targets(msg: &Message, qname: &str) -> Vec<SrvTarget> {
    let owners: Vec<String> = {
        let (_, chain) = chain_addresses(msg, qname);
        chain
    };
    let cname_ttl = msg
        .answers
        .iter()
        .filter(|r| matches!(r.data, RData::CNAME(_)) && owners.contains(&norm(&r.name.to_ascii())))
        .map(|r| r.ttl)
        .min()
        .unwrap_or(u32::MAX);
    msg.answers
        .iter()
        .filter(|r| {
            owners
                .last()
                .is_some_and(|o| *o == norm(&r.name.to_ascii()))
        })
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some(SrvTarget {
                priority: s.priority,
                weight: s.weight,
                port: s.port,
                target: norm(&s.target.to_ascii()),
                ttl: r.ttl.min(cname_ttl),
            }),
            _ => None,
        })
        .collect()
}

/// The addresses of `target` an answer carries, in its answer or additional section, each
/// with its record's TTL: only records owned by the target itself (RFC 2782: a target is no
/// alias).
pub fn target_addresses(msg: &Message, target: &str) -> Vec<(IpAddr, u32)> {
    let target = norm(target);
    msg.answers
        .iter()
        .chain(msg.additionals.iter())
        .filter(|r| norm(&r.name.to_ascii()) == target)
        .filter_map(|r| match &r.data {
            RData::A(a) => Some((IpAddr::V4(a.0), r.ttl)),
            RData::AAAA(a) => Some((IpAddr::V6(a.0), r.ttl)),
            _ => None,
        })
        .collect()
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
            s.rules
                .iter()
                .any(|r| r.peers.admits_name(&name) || r.peers.admits_srv(&name)),
        ),
        None => (None, false),
    }
}

/// What `answer`, sent to `device`, opens under `scopes`, with no SRV target learnt before.
pub fn decide(scopes: &[NameScope], device: IpAddr, answer: &Message, timing: &Timing) -> Decision {
    decide_with(scopes, device, answer, timing, &[])
}

/// What `answer`, sent to `device`, opens under `scopes`, given the SRV targets the device
/// learnt before and still holds (`learnt`, each `ttl` the seconds left; entries of other
/// devices or names are ignored).
pub fn decide_with(
    scopes: &[NameScope],
    device: IpAddr,
    answer: &Message,
    timing: &Timing,
    learnt: &[Learnt],
) -> Decision {
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
    let srv_rules: Vec<_> = scope
        .rules
        .iter()
        .filter(|r| r.peers.admits_srv(&name))
        .collect();
    let recalled: Vec<_> = learnt
        .iter()
        .filter(|l| l.device == device && l.target == name)
        .collect();
    d.permitted = !rules.is_empty() || !srv_rules.is_empty() || !recalled.is_empty();
    if !d.permitted || answer.metadata.response_code != ResponseCode::NoError {
        return d;
    }
    srv_open(&mut d, scope, device, answer, timing, &srv_rules);
    for l in recalled {
        let (addrs, chain) = chain_addresses(answer, &name);
        d.chain = chain;
        for (peer, ttl) in addrs {
            triple(&mut d, scope, device, l, peer, ttl.min(l.ttl), timing);
        }
    }
    if rules.is_empty() {
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
                        port: None,
                        timeout: timing.timeout(*ttl),
                    },
                    ttl: *ttl,
                });
            }
        }
    }
    d
}

/// The SRV answer's targets for each SRV rule: learnt for the device, and the addresses the
/// answer carries for them opened as triples.
fn srv_open(
    d: &mut Decision,
    scope: &NameScope,
    device: IpAddr,
    answer: &Message,
    timing: &Timing,
    srv_rules: &[&portolan_emit::nftables::NameRule],
) {
    if srv_rules.is_empty() {
        return;
    }
    let targets = srv_targets(answer, &d.name);
    d.chain = chain_addresses(answer, &d.name).1;
    for r in srv_rules {
        for t in &targets {
            // `.`: the service is decidedly not available at this domain (RFC 2782).
            let admitted = r.ports.is_empty() || r.ports.iter().any(|p| p.contains(t.port));
            if t.target.is_empty() || !admitted {
                continue;
            }
            let l = Learnt {
                device,
                target: t.target.clone(),
                port: t.port,
                provenance: r.provenance.clone(),
                sets: r.sets.clone(),
                ttl: t.ttl,
            };
            for (peer, ttl) in target_addresses(answer, &t.target) {
                triple(d, scope, device, &l, peer, ttl.min(t.ttl), timing);
            }
            if !d.learnt.contains(&l) {
                d.learnt.push(l);
            }
        }
    }
}

/// Opens `device . peer . port` for a learnt target in the peer's family's set.
fn triple(
    d: &mut Decision,
    scope: &NameScope,
    device: IpAddr,
    l: &Learnt,
    peer: IpAddr,
    ttl: u32,
    timing: &Timing,
) {
    let fam = if peer.is_ipv4() {
        Family::V4
    } else {
        Family::V6
    };
    let Some((_, set)) = l.sets.iter().find(|(f, _)| *f == fam) else {
        return;
    };
    for dev in device_in_family(scope, device, peer.is_ipv4()) {
        let o = Opened {
            provenance: l.provenance.clone(),
            pair: Pair {
                set: set.clone(),
                device: dev,
                peer,
                port: Some(l.port),
                timeout: timing.timeout(ttl),
            },
            ttl,
        };
        if !d.opened.contains(&o) {
            d.opened.push(o);
        }
    }
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

    /// A DNS name in wire form (RFC 1035 section 3.1): length-prefixed labels, then 0.
    fn wire_name(n: &str) -> Vec<u8> {
        let mut v = Vec::new();
        for l in n.split('.').filter(|l| !l.is_empty()) {
            v.push(l.len() as u8);
            v.extend_from_slice(l.as_bytes());
        }
        v.push(0);
        v
    }

    /// A response to `SRV? _mqtt._tcp.example.com`, built byte by byte from RFC 1035 section
    /// 4.1 (header, question, resource records) and RFC 2782 (SRV RDATA: priority, weight,
    /// port, then the target, never compressed): one SRV record (TTL 300, priority 10,
    /// weight 5, port `port`, target `target`) whose owner is a compression pointer to the
    /// question's name (offset 12), and in the additional section the target's A record
    /// 192.0.2.7 (TTL 60).
    fn srv_response(port: u16, target: &str) -> Vec<u8> {
        let mut m = vec![
            0x12, 0x34, // ID
            0x81, 0x80, // QR, RD, RA; NOERROR
            0, 1, 0, 1, 0, 0, 0, 1, // QD 1, AN 1, NS 0, AR 1
        ];
        m.extend(wire_name("_mqtt._tcp.example.com"));
        m.extend([0, 33, 0, 1]); // QTYPE SRV (33), QCLASS IN
        m.extend([0xc0, 12]); // owner: pointer to the question's name
        m.extend([0, 33, 0, 1]); // SRV, IN
        m.extend(300u32.to_be_bytes());
        let t = wire_name(target);
        m.extend(u16::try_from(6 + t.len()).expect("short").to_be_bytes());
        m.extend(10u16.to_be_bytes()); // priority
        m.extend(5u16.to_be_bytes()); // weight
        m.extend(port.to_be_bytes());
        m.extend(&t);
        m.extend(wire_name("broker.example.com"));
        m.extend([0, 1, 0, 1]); // A, IN
        m.extend(60u32.to_be_bytes());
        m.extend([0, 4, 192, 0, 2, 7]);
        m
    }

    /// Group `gw` (10.0.0.2) with one rule to the peer of `_mqtt._tcp.example.com` on
    /// `ports` (empty: the record's port).
    fn srv_scopes(ports: Vec<PortRange>) -> Vec<NameScope> {
        vec![NameScope {
            group: "gw".into(),
            addresses: vec!["10.0.0.2/32".parse().expect("net")],
            rules: vec![NameRule {
                provenance: "p/mqtt".into(),
                initiator: Initiator::Device,
                protocol: IpProto::TCP,
                ports,
                peers: Peers {
                    srv: vec!["_mqtt._tcp.example.com".into()],
                    ..Peers::default()
                },
                sets: vec![(Family::V4, "e_v4".into())],
            }],
        }]
    }

    #[test]
    fn an_srv_answer_built_by_hand_is_read_as_rfc_2782_says() {
        let m = Message::from_vec(&srv_response(1883, "broker.example.com")).expect("parses");
        assert_eq!(
            srv_targets(&m, "_MQTT._tcp.example.com."),
            vec![SrvTarget {
                priority: 10,
                weight: 5,
                port: 1883,
                target: "broker.example.com".into(),
                ttl: 300,
            }]
        );
        assert_eq!(
            target_addresses(&m, "broker.example.com."),
            vec![("192.0.2.7".parse().expect("ip"), 60)]
        );
        // Another owner's records are not this question's.
        assert!(srv_targets(&m, "_mqtt._udp.example.com").is_empty());
        assert!(target_addresses(&m, "other.example.com").is_empty());
    }

    #[test]
    fn an_srv_answer_opens_its_target_at_its_port_for_the_asker_only() {
        let m = Message::from_vec(&srv_response(1883, "broker.example.com")).expect("parses");
        let timing = t(0, 1, 3600);
        let d = decide(&srv_scopes(vec![]), dev(), &m, &timing);
        assert!(d.permitted);
        let got: Vec<_> = d
            .opened
            .iter()
            .map(|o| {
                (
                    o.pair.set.as_str(),
                    o.pair.device.to_string(),
                    o.pair.peer.to_string(),
                    o.pair.port,
                    o.pair.timeout,
                )
            })
            .collect();
        // The smaller TTL of the SRV (300) and the A (60) record.
        assert_eq!(
            got,
            vec![(
                "e_v4",
                "10.0.0.2".into(),
                "192.0.2.7".into(),
                Some(1883),
                60
            )]
        );
        assert_eq!(d.learnt.len(), 1);
        assert_eq!(
            (d.learnt[0].target.as_str(), d.learnt[0].port),
            ("broker.example.com", 1883)
        );
        // A device of no group opens nothing.
        let stranger = decide(
            &srv_scopes(vec![]),
            "10.0.0.9".parse().expect("ip"),
            &m,
            &timing,
        );
        assert!(stranger.opened.is_empty() && stranger.learnt.is_empty());
        // The profile's port bounds the record's: 1883 is not 8883.
        let bounded = decide(&srv_scopes(vec![PortRange::one(8883)]), dev(), &m, &timing);
        assert!(bounded.permitted && bounded.opened.is_empty() && bounded.learnt.is_empty());
        // Target `.`: no service (RFC 2782).
        let none = Message::from_vec(&srv_response(1883, ".")).expect("parses");
        let d = decide(&srv_scopes(vec![]), dev(), &none, &timing);
        assert!(d.opened.is_empty() && d.learnt.is_empty());
    }

    #[test]
    fn a_later_a_query_opens_only_a_target_the_device_learnt() {
        let m = Message::from_vec(&srv_response(1883, "broker.example.com")).expect("parses");
        let timing = t(0, 1, 3600);
        let learnt = decide(&srv_scopes(vec![]), dev(), &m, &timing).learnt;
        let a_answer = answer(
            "broker.example.com.",
            vec![a("broker.example.com.", 120, "192.0.2.8")],
        );
        let d = decide_with(&srv_scopes(vec![]), dev(), &a_answer, &timing, &learnt);
        assert!(d.permitted);
        let got: Vec<_> = d
            .opened
            .iter()
            .map(|o| (o.pair.peer.to_string(), o.pair.port, o.pair.timeout))
            .collect();
        assert_eq!(got, vec![("192.0.2.8".to_string(), Some(1883), 120)]);
        // Without the learnt target (another device, or none), the name is not the profile's.
        assert!(!decide(&srv_scopes(vec![]), dev(), &a_answer, &timing).permitted);
        let other: IpAddr = "10.0.0.3".parse().expect("ip");
        let mut scopes = srv_scopes(vec![]);
        scopes[0].addresses = vec!["10.0.0.0/29".parse().expect("net")];
        let d = decide_with(&scopes, other, &a_answer, &timing, &learnt);
        assert!(!d.permitted && d.opened.is_empty());
        // Another name than the target opens nothing, even for the device that learnt.
        let elsewhere = answer(
            "evil.example.com.",
            vec![a("evil.example.com.", 120, "192.0.2.9")],
        );
        let d = decide_with(&srv_scopes(vec![]), dev(), &elsewhere, &timing, &learnt);
        assert!(!d.permitted && d.opened.is_empty());
    }
}
