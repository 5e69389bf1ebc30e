//! What the lab's probes put on the wire: a marked token in every payload (so a receiver
//! recognises exactly the packet a probe sent), ICMP echo messages, ESP-like packets and DNS
//! queries (hickory-proto builds and parses the messages).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

/// Marks the token inside a payload.
pub const MAGIC: &[u8; 4] = b"PLAB";

/// A token no other probe of this process sends.
pub type Token = [u8; 16];

pub fn token() -> Token {
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&(t ^ u64::from(std::process::id()) << 32).to_be_bytes());
    out[8..].copy_from_slice(&n.to_be_bytes());
    out
}

/// `MAGIC` followed by the token.
pub fn payload(t: &Token) -> Vec<u8> {
    let mut v = MAGIC.to_vec();
    v.extend_from_slice(t);
    v
}

/// The token that follows `MAGIC` anywhere in `data`.
pub fn find_token(data: &[u8]) -> Option<Token> {
    let i = data.windows(MAGIC.len()).position(|w| w == MAGIC)?;
    let rest = data.get(i + MAGIC.len()..i + MAGIC.len() + 16)?;
    let mut t = [0u8; 16];
    t.copy_from_slice(rest);
    Some(t)
}

/// The Internet checksum (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = match chunk {
            [a, b] => u16::from_be_bytes([*a, *b]),
            [a] => u16::from_be_bytes([*a, 0]),
            _ => 0,
        };
        sum = sum.wrapping_add(u32::from(word));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP (v4) or ICMPv6 echo request carrying the token. For ICMPv6 the kernel fills in
/// the checksum.
pub fn echo_request(v4: bool, id: u16, seq: u16, t: &Token) -> Vec<u8> {
    let mut p = vec![if v4 { 8 } else { 128 }, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&payload(t));
    if v4 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// Whether `data` (as a raw ICMP socket returns it: with the IPv4 header, without an IPv6
/// one) is the echo reply to the request with `id` and token `t`.
pub fn is_echo_reply(v4: bool, data: &[u8], id: u16, t: &Token) -> bool {
    let icmp = if v4 {
        let ihl = usize::from(data.first().map_or(0, |b| b & 0x0f)) * 4;
        match data.get(ihl..) {
            Some(x) => x,
            None => return false,
        }
    } else {
        data
    };
    let want = if v4 { 0 } else { 129 };
    icmp.len() >= 8
        && icmp[0] == want
        && u16::from_be_bytes([icmp[4], icmp[5]]) == id
        && find_token(&icmp[8..]) == Some(*t)
}

/// A packet for a port-less protocol: an ESP-like header (SPI, sequence) then the token.
pub fn ip_payload(t: &Token) -> Vec<u8> {
    let mut p = vec![0x00, 0x00, 0x50, 0x4c, 0x00, 0x00, 0x00, 0x01];
    p.extend_from_slice(&payload(t));
    p
}

/// A DNS query (recursion desired) for the A or AAAA record of `name`.
pub fn dns_query(id: u16, name: &str, v4: bool) -> Result<Vec<u8>, String> {
    let n = Name::from_ascii(name).map_err(|e| format!("bad name {name}: {e}"))?;
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(
        n,
        if v4 { RecordType::A } else { RecordType::AAAA },
    ));
    m.to_vec().map_err(|e| e.to_string())
}

/// The addresses in the answer to query `id`; `None` if `data` is not that answer.
pub fn dns_answers(id: u16, data: &[u8]) -> Option<Vec<IpAddr>> {
    let m = Message::from_vec(data).ok()?;
    if m.metadata.id != id || m.metadata.message_type != MessageType::Response {
        return None;
    }
    Some(m.answers.iter().filter_map(|r| r.data.ip_addr()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let t = token();
        let mut data = vec![1, 2, 3];
        data.extend(ip_payload(&t));
        assert_eq!(find_token(&data), Some(t));
        assert_ne!(token(), t);
    }

    #[test]
    fn echo_checksum_verifies() {
        let t = token();
        let p = echo_request(true, 7, 1, &t);
        assert_eq!(checksum(&p), 0);
        let mut reply = vec![0x45; 20];
        reply[0] = 0x45;
        let mut icmp = p.clone();
        icmp[0] = 0;
        reply.extend(icmp);
        assert!(is_echo_reply(true, &reply, 7, &t));
        assert!(!is_echo_reply(true, &reply, 8, &t));
    }

    #[test]
    fn dns_messages() {
        let q = dns_query(42, "gk.sensorist.com", true).expect("query");
        assert!(q.len() > 12);
        assert_eq!(dns_answers(42, &q), None, "a query is not an answer");
    }
}
