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
    ///
    /// A plain response ([`plain`]) is read here, any other by hickory-proto. Both give the
    /// same names: the plain reading accepts only messages hickory reads, and reads them as
    /// hickory does ([`plain_agrees_with_hickory`], checked by the tests on generated
    /// messages and by the fuzz target `dns_message` on any). On `bench/audit-few.sh`'s
    /// capture a message took 3.9 µs in all read by hickory, 1.4 µs read plainly (perf).
    pub fn message(&mut self, wire: &[u8], t: Nanos) -> bool {
        // Header: flags byte 2 bit 7 = response; ANCOUNT at 6..8. Cheap checks first.
        if wire.len() < 12 || wire[2] & 0x80 == 0 || wire[6..8] == [0, 0] {
            return false;
        }
        match plain(wire) {
            Some(a) => {
                self.responses += 1;
                self.attribute(&a, t);
                true
            }
            None => self.parsed(wire, t),
        }
    }

    /// A message read by hickory-proto.
    fn parsed(&mut self, wire: &[u8], t: Nanos) -> bool {
        match by_hickory(wire) {
            Err(()) => {
                self.unparsed += 1;
                false
            }
            Ok(None) => false,
            Ok(Some(a)) => {
                self.responses += 1;
                self.attribute(&a, t);
                true
            }
        }
    }

    /// Gives each address of a response its owner and the names of the CNAME chain that led
    /// to it.
    fn attribute(&mut self, a: &Answers, t: Nanos) {
        // CNAME target → (owner, TTL): the first record for a target wins.
        let mut led_by: FxHashMap<&str, (&str, u32)> = FxHashMap::default();
        for (from, to, ttl) in &a.cnames {
            led_by.entry(to.as_str()).or_insert((from.as_str(), *ttl));
        }
        let mut cut = false;
        for (owner, addr, ttl) in &a.addrs {
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
                // Normalized already: `add` without normalizing again.
                if !name.is_empty() {
                    self.put(*addr, name, t, shortest);
                }
            }
        }
        if cut {
            self.chains_cut += 1;
        }
    }
}

/// The answers of a response that name addresses, in message order, names normalized
/// ([`normalize`]): CNAMEs (owner, target, TTL) and addresses (owner, address, TTL).
#[derive(Debug, Default, PartialEq)]
struct Answers {
    cnames: Vec<(String, String, u32)>,
    addrs: Vec<(String, IpAddr, u32)>,
}

/// A message's answers as hickory-proto reads them: `Err` when it cannot parse the message,
/// `None` when it is not a successful response (RCODE NoError, with EDNS's extended bits).
fn by_hickory(wire: &[u8]) -> Result<Option<Answers>, ()> {
    let m = Message::from_vec(wire).map_err(|_| ())?;
    if m.metadata.message_type != MessageType::Response
        || m.metadata.response_code != ResponseCode::NoError
    {
        return Ok(None);
    }
    let mut a = Answers::default();
    for r in &m.answers {
        let owner = normalize(&r.name.to_ascii());
        match &r.data {
            RData::A(v) => a.addrs.push((owner, IpAddr::V4(v.0), r.ttl)),
            RData::AAAA(v) => a.addrs.push((owner, IpAddr::V6(v.0), r.ttl)),
            RData::CNAME(c) => a.cnames.push((owner, normalize(&c.0.to_ascii()), r.ttl)),
            _ => {}
        }
    }
    Ok(Some(a))
}

/// Whether the plain reading of a DNS message agrees with hickory-proto's: it declines the
/// message, or hickory reads it as a successful response with the same answers. For tests
/// and the fuzz target `dns_message`; `Err` says how they differ.
pub fn plain_agrees_with_hickory(wire: &[u8]) -> Result<bool, String> {
    let Some(p) = plain(wire) else {
        return Ok(false);
    };
    match by_hickory(wire) {
        Ok(Some(h)) if h == p => Ok(true),
        other => Err(format!("plain reading {p:?}, hickory-proto {other:?}")),
    }
}

/// The answers of a plain response: a standard query's (opcode 0) successful answer (RCODE
/// 0) with no authority or additional records, whose questions and answers are all of class
/// IN, whose answers are A, AAAA and CNAME records whose data is exactly as long as it says,
/// and whose names are made of letters, digits, `_` and (not first in a label) `-`, as
/// RFC 1035 §4.1 lays them out, compressed or not. `None` for any other message, and for
/// anything hickory-proto might read otherwise or refuse: such a message is left to it.
///
/// hickory-proto's rules kept here: a compression pointer points before the start of the
/// labels it ends (so chains end), and labels reached through one end before the labels
/// that pointed there; a name is at most 254 bytes as text; labels are at most 63 bytes; a
/// record's data length fits the message and is read exactly; bytes after the last section
/// are not read. Names are written as its `Name::to_ascii` writes them (letters, digits,
/// `_` and `-` need no escape) and then normalized.
fn plain(wire: &[u8]) -> Option<Answers> {
    let be16 = |at: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*wire.get(at)?, *wire.get(at + 1)?]))
    };
    // QR (bit 7 of byte 2) 1: a response; opcode (bits 3-6) 0; RCODE (low 4 bits of byte 3) 0.
    if wire.get(2)? & 0xf8 != 0x80 || wire.get(3)? & 0x0f != 0 {
        return None;
    }
    let (questions, answers) = (be16(4)?, be16(6)?);
    if be16(8)? != 0 || be16(10)? != 0 {
        return None;
    }
    let mut at = 12;
    for _ in 0..questions {
        at = wire_name(wire, at)?.1;
        // Type (any), class IN.
        if be16(at + 2)? != 1 {
            return None;
        }
        at += 4;
    }
    let mut out = Answers::default();
    for _ in 0..answers {
        let (owner, after) = wire_name(wire, at)?;
        let owner = owner.as_string();
        at = after;
        let (rtype, class) = (be16(at)?, be16(at + 2)?);
        let ttl = u32::from(be16(at + 4)?) << 16 | u32::from(be16(at + 6)?);
        let len = usize::from(be16(at + 8)?);
        at += 10;
        let data = wire.get(at..at + len)?;
        if class != 1 {
            return None;
        }
        match (rtype, len) {
            (1, 4) => {
                let a: [u8; 4] = data.try_into().ok()?;
                out.addrs.push((owner, IpAddr::from(a), ttl));
            }
            (28, 16) => {
                let a: [u8; 16] = data.try_into().ok()?;
                out.addrs.push((owner, IpAddr::from(a), ttl));
            }
            (5, 1..) => {
                let (target, after) = wire_name(wire, at)?;
                if after != at + len {
                    return None;
                }
                out.cnames.push((owner, target.as_string(), ttl));
            }
            _ => return None,
        }
        at += len;
    }
    Some(out)
}

/// A name read by [`wire_name`]: its text, at most 254 bytes.
struct WireName {
    text: [u8; 254],
    len: usize,
}

impl WireName {
    fn as_string(&self) -> String {
        self.text[..self.len]
            .iter()
            .map(|&c| char::from(c))
            .collect()
    }
}

/// Reads the name at `at` (RFC 1035 §4.1.4): its text, lowercased, labels joined by dots,
/// without the root's dot; and where the message goes on after it. `None` when the name
/// breaks a rule of [`plain`].
fn wire_name(wire: &[u8], mut at: usize) -> Option<(WireName, usize)> {
    let mut name = WireName {
        text: [0; 254],
        len: 0,
    };
    // Where the message goes on: after the first pointer, or after the name's root label.
    let mut next = None;
    // The start of the labels being read, and the start of the labels that pointed here.
    let mut start = at;
    let mut before: Option<usize> = None;
    // Text length: each label and its dot.
    let mut text = 0usize;
    loop {
        if before.is_some_and(|b| at >= b) {
            return None;
        }
        let b = *wire.get(at)?;
        match b >> 6 {
            0 if b == 0 => {
                at += 1;
                break;
            }
            0 => {
                let n = usize::from(b);
                let label = wire.get(at + 1..at + 1 + n)?;
                text += n + 1;
                if text > 254 {
                    return None;
                }
                if name.len > 0 {
                    name.text[name.len] = b'.';
                    name.len += 1;
                }
                for (i, &c) in label.iter().enumerate() {
                    let fine = c.is_ascii_alphanumeric() || c == b'_' || (c == b'-' && i > 0);
                    if !fine {
                        return None;
                    }
                    name.text[name.len + i] = c.to_ascii_lowercase();
                }
                name.len += n;
                at += 1 + n;
            }
            3 => {
                let to = usize::from(u16::from_be_bytes([b & 0x3f, *wire.get(at + 1)?]));
                if to >= start {
                    return None;
                }
                next.get_or_insert(at + 2);
                before = Some(start);
                at = to;
                start = to;
            }
            _ => return None,
        }
    }
    Some((name, next.unwrap_or(at)))
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

    use crate::test_rng::Rng;

    /// A DNS message made to look like a response, mostly well formed: names from a small
    /// pool in upper and lower case, compressed by pointers to names written before (and now
    /// and then by pointers anywhere), A, AAAA, CNAME, NS and TXT records, now and then
    /// another class, opcode or RCODE, a record in the other sections, a data length that is
    /// wrong, a byte changed or the message cut.
    fn generated(r: &mut Rng) -> Vec<u8> {
        const LABELS: [&[u8]; 9] = [
            b"www", b"Example", b"COM", b"cdn-1", b"a_b", b"x", b"net", b"ISI", b"0",
        ];
        // Labels hickory-proto escapes in text (the plain reading leaves them to it).
        const ODD: [&[u8]; 4] = [b"-bad", b"dot.in", b"st\xc3\xa9", b"sp ace"];
        fn name(r: &mut Rng, m: &mut Vec<u8>, starts: &mut Vec<usize>) {
            let labels = r.below(4);
            // This name's labels: pointed at by later names only.
            let mut own = Vec::new();
            for _ in 0..labels {
                if !starts.is_empty() && r.one_in(3) {
                    break;
                }
                own.push(m.len());
                let l = if r.one_in(40) {
                    vec![b'a'; if r.one_in(2) { 63 } else { 64 }]
                } else if r.one_in(30) {
                    ODD[r.below(ODD.len() as u64) as usize].to_vec()
                } else {
                    LABELS[r.below(LABELS.len() as u64) as usize].to_vec()
                };
                m.push(l.len() as u8);
                m.extend(l);
            }
            if !starts.is_empty() && r.one_in(2) {
                let to = if r.one_in(10) {
                    r.below(m.len() as u64 + 8) as usize
                } else {
                    starts[r.below(starts.len() as u64) as usize]
                };
                m.extend([0xc0 | (to >> 8) as u8, to as u8]);
            } else {
                m.push(0);
            }
            starts.extend(own);
        }
        let mut m = vec![r.next() as u8, r.next() as u8];
        let opcode = if r.one_in(15) { r.below(16) as u8 } else { 0 };
        m.push(0x80 | opcode << 3 | (r.next() as u8 & 0x07));
        let rcode = if r.one_in(15) { r.below(16) as u8 } else { 0 };
        m.push((r.next() as u8 & 0xf0) | rcode);
        let qd = r.below(3) as u16;
        let an = 1 + r.below(4) as u16;
        let ns = u16::from(r.one_in(12));
        let ar = u16::from(r.one_in(12));
        for c in [qd, an, ns, ar] {
            m.extend(c.to_be_bytes());
        }
        let mut starts = Vec::new();
        for _ in 0..qd {
            name(r, &mut m, &mut starts);
            m.extend([0, if r.one_in(2) { 1 } else { 28 }]);
            m.extend(if r.one_in(20) { [0, 3] } else { [0, 1] });
        }
        for _ in 0..an + ns + ar {
            name(r, &mut m, &mut starts);
            let rtype: u16 = if r.one_in(15) {
                [2, 16][r.below(2) as usize]
            } else {
                [1, 28, 5][r.below(3) as usize]
            };
            m.extend(rtype.to_be_bytes());
            m.extend(if r.one_in(20) { [0, 3] } else { [0, 1] });
            m.extend((r.next() as u32 % 100_000).to_be_bytes());
            let len_at = m.len();
            m.extend([0, 0]);
            match rtype {
                1 => m.extend([192, 0, 2, r.next() as u8]),
                28 => m.extend([
                    0x20,
                    1,
                    0xd,
                    0xb8,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    r.next() as u8,
                ]),
                5 | 2 => name(r, &mut m, &mut starts),
                _ => m.extend([3, b'a', b'b', b'c']),
            }
            let mut len = (m.len() - len_at - 2) as u16;
            if r.one_in(25) {
                len = if r.one_in(2) {
                    len + 1
                } else {
                    len.saturating_sub(1)
                };
            }
            m[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
        }
        if r.one_in(8) {
            let i = r.below(m.len() as u64) as usize;
            m[i] = r.next() as u8;
        }
        if r.one_in(12) {
            m.truncate(r.below(m.len() as u64) as usize);
        }
        m
    }

    #[test]
    fn the_plain_reading_agrees_with_hickory_on_generated_messages() {
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut plain_read, mut hickory_read, mut refused) = (0, 0, 0);
        for i in 0..40_000 {
            let m = generated(&mut r);
            match plain_agrees_with_hickory(&m) {
                Ok(true) => plain_read += 1,
                Ok(false) => match by_hickory(&m) {
                    Ok(_) => hickory_read += 1,
                    Err(()) => refused += 1,
                },
                Err(e) => panic!("message {i} {m:02x?}: {e}"),
            }
            // The table gives the same names either way.
            let (mut a, mut b) = (Names::new(), Names::new());
            assert_eq!(a.message(&m, 0), b.parsed_if_response(&m, 0), "message {i}");
            assert_eq!(known(&a), known(&b), "message {i}");
        }
        // Each way is taken often: the generator reaches both readings and hickory's refusals.
        let counts =
            format!("{plain_read} read plainly, {hickory_read} by hickory, {refused} refused");
        assert!(plain_read > 8_000, "{counts}");
        assert!(hickory_read > 4_000, "{counts}");
        assert!(refused > 2_000, "{counts}");
    }

    /// RFC 1035 §4.1.4's example of compression: F.ISI.ARPA, then FOO.F.ISI.ARPA pointing
    /// into it, then ARPA as a pointer to a label inside the first name; and the pointers the
    /// plain reading refuses, as hickory does: forward, to itself, and a loop of two.
    #[test]
    fn compression_pointers_are_followed_backwards_only() {
        let mut m = vec![0, 1, 0x81, 0x80, 0, 0, 0, 3, 0, 0, 0, 0];
        // Offset 12: F.ISI.ARPA as an A record.
        m.extend([1, b'F', 3, b'I', b'S', b'I', 4, b'A', b'R', b'P', b'A', 0]);
        m.extend([0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        // FOO + pointer to F.ISI.ARPA (offset 12).
        m.extend([3, b'F', b'O', b'O', 0xc0, 12]);
        m.extend([0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 2]);
        // Pointer to ARPA (offset 18).
        m.extend([0xc0, 18]);
        m.extend([0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 3]);
        let a = plain(&m).expect("a plain response");
        let owners: Vec<&str> = a.addrs.iter().map(|(o, _, _)| o.as_str()).collect();
        assert_eq!(owners, ["f.isi.arpa", "foo.f.isi.arpa", "arpa"]);
        assert_eq!(plain_agrees_with_hickory(&m), Ok(true));
        // The last name points forward, at itself, or at a pointer back to it.
        let last = m.len() - 16;
        for (to, hop) in [(last + 2, None), (last, None), (12, Some(last))] {
            let mut bad = m.clone();
            bad[last..last + 2].copy_from_slice(&[0xc0, to as u8]);
            if let Some(at) = hop {
                // Offset 12 becomes a pointer to `last`.
                bad[12..14].copy_from_slice(&[0xc0, at as u8]);
            }
            assert!(plain(&bad).is_none(), "pointer to {to}");
            assert!(by_hickory(&bad).is_err(), "pointer to {to}");
        }
    }

    /// A name at hickory-proto's limit (254 bytes as text, the dots counted) is read by both;
    /// one byte more is refused by hickory and declined by the plain reading.
    #[test]
    fn names_at_the_length_limit() {
        let response = |last: usize| {
            let mut m = vec![0, 1, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0];
            for n in [63, 63, 63, last] {
                m.push(n as u8);
                m.extend(std::iter::repeat_n(b'a', n));
            }
            m.push(0);
            m.extend([0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
            m
        };
        // Labels and their dots: 3 * 64 + 62 = 254.
        let at_limit = response(61);
        assert_eq!(plain_agrees_with_hickory(&at_limit), Ok(true));
        let a = plain(&at_limit).expect("read");
        assert_eq!(a.addrs[0].0.len(), 253);
        let over = response(62);
        assert!(plain(&over).is_none());
        assert!(by_hickory(&over).is_err());
    }

    /// The responses `gencap` writes for the benchmark (hickory's encoder, compressed) are
    /// read plainly, with the answers they were written with.
    #[test]
    fn written_answers_are_read_plainly() {
        let v4: IpAddr = "192.0.2.9".parse().expect("address");
        let v6: IpAddr = "2001:db8::9".parse().expect("address");
        let wire = crate::write::dns_answer(
            7,
            "Api.Example.com",
            &[("edge.cdn.example.net", 30), ("e1.cdn.example.net", 20)],
            &[v4, v6],
            60,
        );
        let a = plain(&wire).expect("a plain response");
        assert_eq!(
            a.cnames,
            [
                (
                    "api.example.com".to_string(),
                    "edge.cdn.example.net".to_string(),
                    30
                ),
                (
                    "edge.cdn.example.net".to_string(),
                    "e1.cdn.example.net".to_string(),
                    20
                ),
            ]
        );
        assert_eq!(
            a.addrs,
            [
                ("e1.cdn.example.net".to_string(), v4, 60),
                ("e1.cdn.example.net".to_string(), v6, 60),
            ]
        );
        assert_eq!(plain_agrees_with_hickory(&wire), Ok(true));
    }

    /// An address's window with its name: address, name, from, until.
    type Named = (IpAddr, String, Nanos, Nanos);

    /// Everything a table knows: each address's windows with their names, and the counts.
    fn known(n: &Names) -> (Vec<Named>, [u64; 3]) {
        let mut w: Vec<_> = n
            .windows
            .iter()
            .flat_map(|(a, ws)| {
                ws.iter()
                    .map(|w| (*a, n.names[w.name as usize].to_string(), w.from, w.until))
            })
            .collect();
        w.sort();
        (w, [n.responses, n.unparsed, n.chains_cut])
    }

    impl Names {
        /// [`Names::message`] with hickory-proto reading every message.
        fn parsed_if_response(&mut self, wire: &[u8], t: Nanos) -> bool {
            if wire.len() < 12 || wire[2] & 0x80 == 0 || wire[6..8] == [0, 0] {
                return false;
            }
            self.parsed(wire, t)
        }
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
