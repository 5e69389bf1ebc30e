//! The audit report's flow records as JSON lines, written by hand: the bytes `serde_json`
//! writes for a [`FlowRecord`], without its per-string escaping of what cannot need it
//! (addresses, numbers, times, enum names) and without its serializer's indirections. A
//! report has one line per flow, and on captures with few packets per flow writing them cost
//! as much as reading the packets.
//!
//! Strings that may hold anything (group, rule, names, reasons) are copied as they are when no
//! byte needs escaping, and are otherwise written by `serde_json` itself. The output is tested
//! byte for byte against `serde_json::to_vec` (`tests::same_bytes_as_serde_json` and
//! the CLI's `audit_jobs` test).

use std::io::Write as _;
use std::net::IpAddr;

use portolan_model::ir::Initiator;

use crate::flows::Evidence;
use crate::matcher::{Mismatch, Status};
use crate::report::FlowRecord;

/// `"s"`, escaped as JSON (RFC 8259 section 7) exactly as `serde_json` escapes it.
#[inline]
pub fn string(out: &mut Vec<u8>, s: &str) {
    if may_need_escape(s.as_bytes()) {
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    } else {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// Whether any byte is a control character (below 0x20), `"` or `\\`; eight bytes at a time
/// (the "has a byte less than n" and "has a zero byte" word tests, exact for n <= 128). A
/// false answer is exact; `string` then copies the bytes as they are.
#[inline]
fn may_need_escape(b: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |w: u64, n: u64| w.wrapping_sub(ONES * n) & !w & HIGH != 0;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        let w = u64::from_le_bytes(a);
        if below(w, 0x20)
            || below(w ^ (ONES * u64::from(b'"')), 1)
            || below(w ^ (ONES * u64::from(b'\\')), 1)
        {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// A string known to need no escaping (ASCII letters, digits and `-`, `.`, `:`).
#[inline]
fn plain(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

#[inline]
fn number(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// One byte in decimal.
#[inline]
fn octet(out: &mut Vec<u8>, o: u8) {
    if o >= 100 {
        out.extend_from_slice(&[b'0' + o / 100, b'0' + o / 10 % 10, b'0' + o % 10]);
    } else if o >= 10 {
        out.extend_from_slice(&[b'0' + o / 10, b'0' + o % 10]);
    } else {
        out.push(b'0' + o);
    }
}

/// An address as its text form, quoted (serde's human-readable form of `IpAddr`).
#[inline]
fn address(out: &mut Vec<u8>, a: IpAddr) {
    out.push(b'"');
    match a {
        IpAddr::V4(v) => {
            let [a, b, c, d] = v.octets();
            octet(out, a);
            out.push(b'.');
            octet(out, b);
            out.push(b'.');
            octet(out, c);
            out.push(b'.');
            octet(out, d);
        }
        IpAddr::V6(v) => {
            let _ = write!(out, "{v}");
        }
    }
    out.push(b'"');
}

fn status(s: Status) -> &'static str {
    match s {
        Status::Conforming => "conforming",
        Status::Violation => "violation",
        Status::UnknownDevice => "unknown-device",
    }
}

fn initiator(i: Initiator) -> &'static str {
    match i {
        Initiator::Device => "device",
        Initiator::Peer => "peer",
    }
}

fn evidence(e: Evidence) -> &'static str {
    match e {
        Evidence::Syn => "syn",
        Evidence::SynAck => "syn-ack",
        Evidence::Midstream => "midstream",
        Evidence::FirstPacket => "first-packet",
        Evidence::EchoRequest => "echo-request",
        Evidence::EchoReply => "echo-reply",
        Evidence::SaPair => "sa-pair",
        Evidence::Log => "log",
        Evidence::RecordStart => "record-start",
        Evidence::Record => "record",
    }
}

/// Writes `,"key":`.
#[inline]
fn key(out: &mut Vec<u8>, k: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

fn opt_string(out: &mut Vec<u8>, k: &str, v: Option<&String>) {
    if let Some(v) = v {
        key(out, k);
        string(out, v);
    }
}

fn pair(out: &mut Vec<u8>, k: &str, v: [u64; 2]) {
    key(out, k);
    out.push(b'[');
    number(out, v[0]);
    out.push(b',');
    number(out, v[1]);
    out.push(b']');
}

/// Appends one flow record as `serde_json::to_writer` writes it (no newline).
pub fn flow(out: &mut Vec<u8>, f: &FlowRecord) {
    out.extend_from_slice(b"{\"type\":");
    string(out, f.kind);
    key(out, "status");
    plain(out, status(f.status));
    opt_string(out, "group", f.group.as_ref());
    opt_string(out, "rule", f.rule.as_ref());
    if !f.violation.is_empty() {
        key(out, "violation");
        out.push(b'[');
        for (i, m) in f.violation.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            plain(out, Mismatch::name(*m));
        }
        out.push(b']');
    }
    opt_string(out, "closest", f.closest.as_ref());
    opt_string(out, "reason", f.reason.as_ref());
    if let Some(a) = f.device {
        key(out, "device");
        address(out, a);
    }
    if let Some(a) = f.peer {
        key(out, "peer");
        address(out, a);
    }
    if !f.peer_names.is_empty() {
        key(out, "peer_names");
        out.push(b'[');
        for (i, n) in f.peer_names.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(out, n);
        }
        out.push(b']');
    }
    if let Some(i) = f.initiated_by {
        key(out, "initiated_by");
        plain(out, initiator(i));
    }
    key(out, "protocol");
    // `{"name": …, "number": …}`, as `report::protocol_json` has serde write it.
    let (name, num) = crate::report::protocol_parts(&f.protocol);
    out.push(b'{');
    if let Some(n) = name {
        out.extend_from_slice(b"\"name\":");
        string(out, n);
    }
    if let Some(n) = num {
        if name.is_some() {
            out.push(b',');
        }
        out.extend_from_slice(b"\"number\":");
        number(out, u64::from(n));
    }
    out.push(b'}');
    key(out, "src");
    address(out, f.src);
    if let Some(p) = f.sport {
        key(out, "sport");
        number(out, u64::from(p));
    }
    key(out, "dst");
    address(out, f.dst);
    if let Some(p) = f.dport {
        key(out, "dport");
        number(out, u64::from(p));
    }
    opt_string(out, "icmp_type", f.icmp_type.as_ref());
    opt_string(out, "spi", f.spi.as_ref());
    if let Some(v) = f.vlan {
        key(out, "vlan");
        number(out, u64::from(v));
    }
    pair(out, "packets", f.packets);
    pair(out, "bytes", f.bytes);
    opt_string(out, "first", f.first.as_ref());
    opt_string(out, "last", f.last.as_ref());
    key(out, "evidence");
    plain(out, evidence(f.evidence));
    if f.related != 0 {
        key(out, "related");
        number(out, f.related);
    }
    opt_string(out, "logged_group", f.logged_group.as_ref());
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every enum name written by hand is the one serde derives.
    #[test]
    fn enum_names_are_serdes() {
        let json = |v: &dyn erased::Ser| v.json();
        for s in [Status::Conforming, Status::Violation, Status::UnknownDevice] {
            assert_eq!(json(&s), format!("\"{}\"", status(s)));
        }
        for i in [Initiator::Device, Initiator::Peer] {
            assert_eq!(json(&i), format!("\"{}\"", initiator(i)));
        }
        for m in [
            Mismatch::Protocol,
            Mismatch::Peer,
            Mismatch::Port,
            Mismatch::Initiation,
            Mismatch::Family,
        ] {
            assert_eq!(json(&m), format!("\"{}\"", m.name()));
        }
        for e in [
            Evidence::Syn,
            Evidence::SynAck,
            Evidence::Midstream,
            Evidence::FirstPacket,
            Evidence::EchoRequest,
            Evidence::EchoReply,
            Evidence::SaPair,
            Evidence::Log,
            Evidence::RecordStart,
            Evidence::Record,
        ] {
            assert_eq!(json(&e), format!("\"{}\"", evidence(e)));
        }
    }

    mod erased {
        pub trait Ser {
            fn json(&self) -> String;
        }
        impl<T: serde::Serialize> Ser for T {
            fn json(&self) -> String {
                serde_json::to_string(self).expect("serializes")
            }
        }
    }

    /// Pseudo-random records, every optional field present or not, v4 and v6 addresses of
    /// every shape, strings that need escaping and strings that do not: the bytes are
    /// `serde_json`'s.
    #[test]
    fn same_bytes_as_serde_json() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let texts = [
            "",
            "lrr-ipsec",
            "thingpark-lrr/i9",
            "quote \" and \\ slash",
            "nl\n tab\t cr\r \u{1}",
            "ünïcødé ✓ \u{7f}",
            "a/b",
        ];
        let addr = |r: u64| -> IpAddr {
            match r % 5 {
                0 => IpAddr::from([
                    (r >> 8) as u8,
                    (r >> 16) as u8,
                    (r >> 24) as u8,
                    (r >> 32) as u8,
                ]),
                1 => IpAddr::from([0u8, 0, 0, 0]),
                2 => IpAddr::from([255u8, 255, 255, 255]),
                3 => IpAddr::from(std::net::Ipv6Addr::from(
                    u128::from(r) << 64 | u128::from(r.rotate_left(7)),
                )),
                _ => IpAddr::from(std::net::Ipv6Addr::from(
                    0x2001_0db8_0000_0000_0000_0000_0000_0000u128 | u128::from(r & 0xffff),
                )),
            }
        };
        let statuses = [Status::Conforming, Status::Violation, Status::UnknownDevice];
        let mismatches = [
            Mismatch::Protocol,
            Mismatch::Peer,
            Mismatch::Port,
            Mismatch::Initiation,
            Mismatch::Family,
        ];
        let evidences = [
            Evidence::Syn,
            Evidence::SynAck,
            Evidence::Midstream,
            Evidence::FirstPacket,
            Evidence::EchoRequest,
            Evidence::EchoReply,
            Evidence::SaPair,
            Evidence::Log,
            Evidence::RecordStart,
            Evidence::Record,
        ];
        for _ in 0..20_000 {
            let r = next();
            let bit = |i: u32| r >> i & 1 == 1;
            let text = |i: u64| texts[(i % texts.len() as u64) as usize].to_string();
            let opt = |b: bool, i: u64| b.then(|| text(i));
            let f = FlowRecord {
                kind: "flow",
                status: statuses[(r % 3) as usize],
                group: opt(bit(1), r >> 3),
                rule: opt(bit(2), r >> 5),
                violation: (0..(r >> 9) % 4)
                    .map(|i| mismatches[((r >> (11 + i)) % 5) as usize])
                    .collect(),
                closest: opt(bit(13), r >> 14),
                reason: opt(bit(17), r >> 18),
                proxied: Vec::new(),
                device: bit(21).then(|| addr(next())),
                peer: bit(22).then(|| addr(next())),
                peer_names: (0..(r >> 23) % 3).map(|i| text(r >> (25 + i))).collect(),
                initiated_by: match (r >> 28) % 3 {
                    0 => None,
                    1 => Some(Initiator::Device),
                    _ => Some(Initiator::Peer),
                },
                protocol: ["tcp", "udp", "icmp", "esp", "132"][((r >> 30) % 5) as usize].into(),
                src: addr(next()),
                sport: bit(33).then_some((r >> 34) as u16),
                dst: addr(next()),
                dport: bit(35).then_some((r >> 36) as u16),
                icmp_type: opt(bit(37), r >> 38),
                spi: bit(40).then(|| format!("0x{:08x}", r >> 8)),
                vlan: bit(41).then_some((r >> 42) as u16 & 0xfff),
                packets: [next() >> (next() % 64), 0],
                bytes: [u64::MAX, next() >> 20],
                first: bit(43).then(|| crate::time::rfc3339((r >> 1) as i64)),
                last: bit(44).then(|| crate::time::rfc3339((r >> 2) as i64)),
                evidence: evidences[((r >> 45) % 10) as usize],
                related: if bit(49) { r >> 50 } else { 0 },
                logged_group: opt(bit(51), r >> 52),
            };
            let mut out = Vec::new();
            flow(&mut out, &f);
            let want = serde_json::to_vec(&f).expect("serializes");
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&want),
                "{f:?}"
            );
        }
    }

    /// The word test agrees with the byte test for every byte value at every place.
    #[test]
    fn word_test_is_exact() {
        for len in 1..=17 {
            for at in 0..len {
                for v in 0u8..=255 {
                    let mut b = vec![b'a'; len];
                    b[at] = v;
                    let want = v < 0x20 || v == b'"' || v == b'\\';
                    assert_eq!(may_need_escape(&b), want, "{b:?}");
                }
            }
        }
    }

    /// Strings that need escaping take serde_json's path; the rest are copied.
    #[test]
    fn strings_escape_as_serde_json() {
        let all: String = (0u8..0x80).map(char::from).collect();
        for s in [
            "",
            "plain",
            "a\"b",
            "back\\slash",
            "\u{7f}del",
            "ünï©ødé ✓",
            "tab\there\nnl\r\u{8}\u{c}",
            "\u{1}\u{1f}",
            "/slash",
            all.as_str(),
        ] {
            let mut out = Vec::new();
            string(&mut out, s);
            assert_eq!(
                String::from_utf8(out).expect("utf-8"),
                serde_json::to_string(s).expect("serializes"),
                "{s:?}"
            );
        }
    }
}
