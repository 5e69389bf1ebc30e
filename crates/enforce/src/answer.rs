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
    let fam = if device.is_ipv4() { Family::V4 } else { Family::V6 };
    for r in rules {
        let Some((_, set)) = r.sets.iter().find(|(f, _)| *f == fam) else {
            continue;
        };
        for (peer, ttl) in &addrs {
            // The key is `device . peer` of one family: an AAAA asked over IPv4 names no IPv6
            // address of the device, and opens nothing.
            if peer.is_ipv4() != device.is_ipv4() {
                continue;
            }
            d.opened.push(Opened {
                provenance: r.provenance.clone(),
                pair: Pair {
                    set: set.clone(),
                    device,
                    peer: *peer,
                    timeout: timing.timeout(*ttl),
                },
                ttl: *ttl,
            });
        }
    }
    d
}
