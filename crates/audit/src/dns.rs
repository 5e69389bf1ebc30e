//! Names from DNS answers. Every A or AAAA record seen in a response maps its address to its
//! owner name and to every name of the CNAME chain that led to it, for the record's TTL (the
//! shortest TTL along the chain): the window in which a firewall's DNS-driven set would hold
//! the address. A flow's peer is known by the names whose window holds the flow's first
//! packet.
//!
//! Windows of one address and name that overlap are merged, so memory grows with distinct
//! (address, name) pairs and re-resolutions after expiry, not with DNS packets.
//!
//! A CNAME chain is followed for at most [`MAX_CHAIN`] names: every name of a chain is paid
//! for once per address of the answer (and per packet), so an answer crafted with hundreds of
//! CNAMEs would otherwise cost seconds. Real answers are a few names long; a longer chain is
//! cut, counted in `Names::chains_cut`, and reported.

use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::RData;
use rustc_hash::FxHashMap;

use crate::time::{Nanos, NANOS};

/// The most names of one CNAME chain (the address's owner and the names that led to it) that
/// an answer's address is attributed to.
pub const MAX_CHAIN: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Window {
    name: u32,
    from: Nanos,
    until: Nanos,
}

/// Address → names, each within its TTL window.
#[derive(Default)]
pub struct Names {
    ids: FxHashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
    windows: FxHashMap<IpAddr, Vec<Window>>,
    /// Responses read, and responses that could not be parsed.
    pub responses: u64,
    pub unparsed: u64,
    /// Answers whose CNAME chain was longer than [`MAX_CHAIN`] and was cut.
    pub chains_cut: u64,
    /// A recording table (one shard's, or one input's read apart): every [`Names::add`] is
    /// kept in order, numbered with `place`, to be replayed into one table in input order
    /// ([`Names::replay`]), since merging windows depends on the order names arrive in. Its
    /// names are kept once, in `names` (a name per add, each its own allocation, took a
    /// stretch of a capture 8 MB more memory than a table, and a fault per page of it).
    log: Option<Vec<Added>>,
    /// The place in the inputs of what is being read, for the log.
    pub place: u64,
}

/// One recorded [`Names::add`]; `name` indexes the recording's `names`.
#[derive(Clone, Debug)]
pub struct Added {
    place: u64,
    at: Nanos,
    addr: IpAddr,
    name: u32,
    ttl: u32,
}

/// Lowercase, without the trailing dot.
pub fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Names {
    pub fn new() -> Names {
        Names::default()
    }

    /// A table that records what it is told instead of keeping it (see `log`).
    pub fn recording() -> Names {
        Names {
            log: Some(Vec::new()),
            ..Names::default()
        }
    }

    /// One table from recordings of parts read apart: their adds in order of place (a stable
    /// sort: adds of one place keep the order they were made in), and their counters summed.
    pub fn replay(parts: Vec<Names>) -> Names {
        let mut out = Names::new();
        // Each add with the recording whose names it indexes.
        let mut all: Vec<(Added, u32)> = Vec::new();
        let mut lists = Vec::new();
        for (i, p) in parts.into_iter().enumerate() {
            out.responses += p.responses;
            out.unparsed += p.unparsed;
            out.chains_cut += p.chains_cut;
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            all.extend(p.log.unwrap_or_default().into_iter().map(|a| (a, i)));
            lists.push(p.names);
        }
        all.sort_by_key(|(a, _)| a.place);
        for (a, i) in all {
            if let Some(name) = lists.get(i as usize).and_then(|l| l.get(a.name as usize)) {
                out.put(a.addr, name, a.at, a.ttl);
            }
        }
        out
    }

    /// Whether this table records what it is told ([`Names::recording`]).
    pub fn is_recording(&self) -> bool {
        self.log.is_some()
    }

    /// Takes in a recording of what was read after everything this table was told (one part
    /// read apart, after the parts before it): its adds in the order they were made, and its
    /// counters.
    pub fn follow(&mut self, rec: Names) {
        self.responses += rec.responses;
        self.unparsed += rec.unparsed;
        self.chains_cut += rec.chains_cut;
        for a in rec.log.unwrap_or_default() {
            if let Some(name) = rec.names.get(a.name as usize) {
                self.put(a.addr, name, a.at, a.ttl);
            }
        }
    }

    /// Adds `by` to the places of a recording (a part whose records were numbered from 1).
    pub fn shift(&mut self, by: u64) {
        for a in self.log.iter_mut().flatten() {
            a.place += by;
        }
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.ids.get(name) {
            return i;
        }
        let i = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(name.into());
        self.ids.insert(name.into(), i);
        i
    }

    /// Records that `addr` was `name` from `at` for `ttl` seconds.
    pub fn add(&mut self, addr: IpAddr, name: &str, at: Nanos, ttl: u32) {
        let name = normalize(name);
        if name.is_empty() {
            return;
        }
        self.put(addr, &name, at, ttl);
    }

    /// [`Names::add`] of a name already normalized and not empty (one a recording kept).
    fn put(&mut self, addr: IpAddr, name: &str, at: Nanos, ttl: u32) {
        let id = self.intern(name);
        if let Some(log) = &mut self.log {
            log.push(Added {
                place: self.place,
                at,
                addr,
                name: id,
                ttl,
            });
            return;
        }
        let until = at.saturating_add(i64::from(ttl).saturating_mul(NANOS));
        let ws = self.windows.entry(addr).or_default();
        if let Some(w) = ws
            .iter_mut()
            .rev()
            .find(|w| w.name == id && w.until >= at && w.from <= until)
        {
            w.from = w.from.min(at);
            w.until = w.until.max(until);
            return;
        }
        ws.push(Window {
            name: id,
            from: at,
            until,
        });
    }

    /// The names `addr` had at `t` (any time, when `t` is `None`), without repeats, in the
    /// order first seen.
    pub fn at(&self, addr: IpAddr, t: Option<Nanos>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if let Some(ws) = self.windows.get(&addr) {
            for w in ws {
                let inside = t.is_none_or(|t| w.from <= t && t <= w.until);
                if inside {
                    let n = &self.names[w.name as usize];
                    if !out.iter().any(|o| **o == **n) {
                        out.push(n.to_string());
                    }
                }
            }
        }
        out
    }

    /// Whether `addr` was ever named.
    pub fn knows(&self, addr: IpAddr) -> bool {
        self.windows.contains_key(&addr)
    }

    /// Reads a DNS message captured at `t`; only successful responses with answers count.
    /// Returns whether it was a parsable response.
    pub fn message(&mut self, wire: &[u8], t: Nanos) -> bool {
        // Header: flags byte 2 bit 7 = response; ANCOUNT at 6..8. Cheap checks first.
        if wire.len() < 12 || wire[2] & 0x80 == 0 || wire[6..8] == [0, 0] {
            return false;
        }
        let Ok(m) = Message::from_vec(wire) else {
            self.unparsed += 1;
            return false;
        };
        if m.metadata.message_type != MessageType::Response
            || m.metadata.response_code != ResponseCode::NoError
        {
            return false;
        }
        self.responses += 1;
        let mut cnames: Vec<(String, String, u32)> = Vec::new();
        let mut addrs: Vec<(String, IpAddr, u32)> = Vec::new();
        for r in &m.answers {
            let owner = normalize(&r.name.to_ascii());
            match &r.data {
                RData::A(a) => addrs.push((owner, IpAddr::V4(a.0), r.ttl)),
                RData::AAAA(a) => addrs.push((owner, IpAddr::V6(a.0), r.ttl)),
                RData::CNAME(c) => cnames.push((owner, normalize(&c.0.to_ascii()), r.ttl)),
                _ => {}
            }
        }
        // CNAME target → (owner, TTL): the first record for a target wins.
        let mut led_by: FxHashMap<&str, (&str, u32)> = FxHashMap::default();
        for (from, to, ttl) in &cnames {
            led_by.entry(to.as_str()).or_insert((from.as_str(), *ttl));
        }
        let mut cut = false;
        for (owner, addr, ttl) in &addrs {
            // Walk the chain back towards the question, at most MAX_CHAIN names and never
            // through a name twice; the question's name is added first, so that it is the
            // first name the address has.
            let mut chain: Vec<&str> = vec![owner.as_str()];
            let mut shortest = *ttl;
            let mut name = owner.as_str();
            while let Some(&(from, cttl)) = led_by.get(name) {
                if chain.contains(&from) {
                    break;
                }
                if chain.len() == MAX_CHAIN {
                    cut = true;
                    break;
                }
                chain.push(from);
                shortest = shortest.min(cttl);
                name = from;
            }
            for name in chain.iter().rev() {
                self.add(*addr, name, t, shortest);
            }
        }
        if cut {
            self.chains_cut += 1;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DNS response built by hand (RFC 1035 §4.1): the question `n0.test` A, then the
    /// answers `n{i}.test CNAME n{i+1}.test` for i < `cnames`, and `n{cnames}.test A 192.0.2.7`,
    /// all with TTL 60. No compression, so the layout is the RFC's plain one.
    fn chain_response(cnames: usize) -> Vec<u8> {
        fn name(i: usize) -> Vec<u8> {
            let label = format!("n{i}");
            let mut v = vec![u8::try_from(label.len()).expect("short label")];
            v.extend(label.as_bytes());
            v.extend([4, b't', b'e', b's', b't', 0]);
            v
        }
        let ancount = u16::try_from(cnames + 1).expect("few answers");
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1];
        m.extend(ancount.to_be_bytes());
        m.extend([0, 0, 0, 0]);
        m.extend(name(0));
        m.extend([0, 1, 0, 1]);
        for i in 0..=cnames {
            m.extend(name(i));
            let cname = i < cnames;
            m.extend(if cname { [0, 5] } else { [0, 1] });
            m.extend([0, 1, 0, 0, 0, 60]);
            let rdata = if cname {
                name(i + 1)
            } else {
                vec![192, 0, 2, 7]
            };
            m.extend(
                u16::try_from(rdata.len())
                    .expect("short rdata")
                    .to_be_bytes(),
            );
            m.extend(rdata);
        }
        m
    }

    #[test]
    fn cname_chains_attribute_every_name_up_to_the_bound() {
        let addr: IpAddr = "192.0.2.7".parse().expect("address");
        // Three CNAMEs: the address has the question's name first and all four names.
        let mut n = Names::new();
        assert!(n.message(&chain_response(3), 0));
        assert_eq!(
            n.at(addr, Some(0)),
            ["n0.test", "n1.test", "n2.test", "n3.test"]
        );
        assert_eq!(n.chains_cut, 0);
        // 850 CNAMEs (the fuzzer's case took ~28 s per packet): the address keeps the 16
        // names nearest to it, n850 back to n835, and the cut is counted.
        let mut n = Names::new();
        assert!(n.message(&chain_response(850), 0));
        let names = n.at(addr, Some(0));
        assert_eq!(names.len(), MAX_CHAIN);
        assert_eq!(names.first().map(String::as_str), Some("n835.test"));
        assert_eq!(names.last().map(String::as_str), Some("n850.test"));
        assert_eq!(n.chains_cut, 1);
    }

    #[test]
    fn windows_merge_and_expire() {
        let mut n = Names::new();
        let a: IpAddr = "192.0.2.1".parse().expect("address");
        n.add(a, "Host.Example.com.", 0, 10);
        n.add(a, "host.example.com", 5 * NANOS, 10);
        assert_eq!(n.at(a, Some(14 * NANOS)), vec!["host.example.com"]);
        assert!(n.at(a, Some(16 * NANOS)).is_empty());
        n.add(a, "host.example.com", 20 * NANOS, 1);
        assert_eq!(n.windows[&a].len(), 2);
        assert_eq!(n.at(a, None), vec!["host.example.com"]);
    }
}
