//! The DTLS side of the integrity check: a DTLS 1.2 handshake far enough to see the server's
//! certificate — ClientHello, the HelloVerifyRequest's cookie sent back in a second
//! ClientHello (RFC 6347 §4.2.1), then the server's flight, whose Certificate message
//! (RFC 5246 §7.4.2; fragmented across records and datagrams as RFC 6347 §4.2.3 allows) is
//! reassembled. The probe stops there: the chain is what the server presents, read without
//! finishing the key exchange, so unlike the TLS check no handshake signature vouches that the
//! server holds its key — enough to see which issuer a path's inspecting proxy substitutes.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::nonce;
use crate::runtime::{unspecified_for, TcpState, TlsOutcome};
use crate::udp_apps::dtls_client_hello_with;

/// One handshake message being reassembled.
#[derive(Debug, Default)]
struct Message {
    len: usize,
    body: Vec<u8>,
    /// Bytes received, per position.
    have: Vec<bool>,
}

impl Message {
    fn complete(&self) -> bool {
        self.len > 0 && self.have.iter().all(|b| *b)
    }
}

/// The handshake messages of the server's records in `datagram`, by type: (type, total length,
/// fragment offset, fragment bytes). Records other than handshake in epoch 0 are skipped.
fn fragments(datagram: &[u8]) -> Vec<(u8, usize, usize, &[u8])> {
    let mut out = Vec::new();
    let mut rest = datagram;
    while rest.len() >= 13 {
        let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
        let Some(record) = rest.get(13..13 + len) else {
            break;
        };
        let epoch0 = rest[3] == 0 && rest[4] == 0;
        if rest[0] == 22 && epoch0 {
            let mut r = record;
            while r.len() >= 12 {
                let total = u32::from_be_bytes([0, r[1], r[2], r[3]]) as usize;
                let off = u32::from_be_bytes([0, r[6], r[7], r[8]]) as usize;
                let flen = u32::from_be_bytes([0, r[9], r[10], r[11]]) as usize;
                let Some(frag) = r.get(12..12 + flen) else {
                    break;
                };
                out.push((r[0], total, off, frag));
                r = &r[12 + flen..];
            }
        }
        rest = &rest[13 + len..];
    }
    out
}

/// The cookie of a HelloVerifyRequest (handshake type 3: server_version, then the cookie with a
/// one-byte length; RFC 6347 §4.2.1).
pub fn cookie(datagram: &[u8]) -> Option<Vec<u8>> {
    fragments(datagram)
        .into_iter()
        .find(|f| f.0 == 3)
        .and_then(|(_, _, _, body)| {
            let n = usize::from(*body.get(2)?);
            body.get(3..3 + n).map(<[u8]>::to_vec)
        })
}

/// The certificates of a Certificate message body: a 3-byte list length, then each certificate
/// with a 3-byte length (RFC 5246 §7.4.2).
pub fn certificates(body: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let Some(list) = body.get(3..) else {
        return out;
    };
    let mut r = list;
    while r.len() >= 3 {
        let n = u32::from_be_bytes([0, r[0], r[1], r[2]]) as usize;
        let Some(c) = r.get(3..3 + n) else { break };
        out.push(c.to_vec());
        r = &r[3 + n..];
    }
    out
}

/// Adds the server's datagram to the messages; returns the chain once the Certificate message
/// (type 11) is complete, or `Some(empty)` at a ServerHelloDone (type 14) without one (a PSK
/// suite).
fn absorb(msgs: &mut BTreeMap<u8, Message>, datagram: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut done = false;
    for (kind, total, off, frag) in fragments(datagram) {
        done |= kind == 14;
        let m = msgs.entry(kind).or_default();
        if m.len == 0 && total > 0 {
            m.len = total;
            m.body = vec![0; total];
            m.have = vec![false; total];
        }
        if m.len == total && off + frag.len() <= total {
            m.body[off..off + frag.len()].copy_from_slice(frag);
            for b in &mut m.have[off..off + frag.len()] {
                *b = true;
            }
        }
    }
    match msgs.get(&11) {
        Some(m) if m.complete() => Some(certificates(&m.body)),
        _ => done.then(Vec::new),
    }
}

/// Runs the handshake with `dst` up to the server's certificate.
pub async fn handshake(src: Option<IpAddr>, dst: SocketAddr, timeout: Duration) -> TlsOutcome {
    let fail = |e: String| TlsOutcome {
        tcp: TcpState::Open,
        chain: Vec::new(),
        error: Some(e),
        session: Default::default(),
    };
    let bind = SocketAddr::new(src.unwrap_or_else(|| unspecified_for(&dst)), 0);
    let sock = match UdpSocket::bind(bind).await {
        Ok(s) => s,
        Err(e) => return fail(format!("bind {bind}: {e}")),
    };
    if let Err(e) = sock.connect(dst).await {
        return fail(e.to_string());
    }
    let random = nonce::bytes::<32>();
    let mut msgs: BTreeMap<u8, Message> = BTreeMap::new();
    let mut seq = 0u16;
    if let Err(e) = sock.send(&dtls_client_hello_with(random, &[], seq)).await {
        return fail(e.to_string());
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            Err(_) => {
                return fail(format!(
                    "no server certificate within {} ms",
                    timeout.as_millis()
                ))
            }
            Ok(Err(e)) => return fail(e.to_string()),
            Ok(Ok(n)) => n,
        };
        let datagram = buf.get(..n).unwrap_or_default();
        if seq == 0 {
            if let Some(c) = cookie(datagram) {
                seq = 1;
                if let Err(e) = sock.send(&dtls_client_hello_with(random, &c, seq)).await {
                    return fail(e.to_string());
                }
                continue;
            }
        }
        if datagram.first() == Some(&21) {
            return fail("the server answered with a DTLS alert".into());
        }
        if let Some(chain) = absorb(&mut msgs, datagram) {
            // End the handshake here: a fatal user_canceled alert (RFC 5246 §7.2), in epoch 0
            // after our two records, so the server forgets us at once.
            let alert = [
                21,
                254,
                253,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                seq as u8 + 1,
                0,
                2,
                2,
                90,
            ];
            let _ = sock.send(&alert).await;
            return TlsOutcome {
                tcp: TcpState::Open,
                error: chain
                    .is_empty()
                    .then(|| "the server sent no certificate".to_string()),
                chain,
                session: Default::default(),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record (epoch 0) holding one handshake fragment.
    fn record(kind: u8, total: usize, off: usize, frag: &[u8]) -> Vec<u8> {
        let t = (total as u32).to_be_bytes();
        let o = (off as u32).to_be_bytes();
        let l = (frag.len() as u32).to_be_bytes();
        let mut hs = vec![
            kind, t[1], t[2], t[3], 0, 1, o[1], o[2], o[3], l[1], l[2], l[3],
        ];
        hs.extend_from_slice(frag);
        let mut r = vec![22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 1];
        r.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        r.extend(hs);
        r
    }

    #[test]
    fn cookie_of_a_hello_verify_request() {
        let d = record(3, 7, 0, &[254, 255, 4, 1, 2, 3, 4]);
        assert_eq!(cookie(&d), Some(vec![1, 2, 3, 4]));
        assert_eq!(cookie(&record(2, 3, 0, &[1, 2, 3])), None);
    }

    #[test]
    fn a_fragmented_certificate_is_reassembled() {
        // Certificate message: list length 8, one certificate of 5 bytes "ABCDE".
        let body = [0, 0, 8, 0, 0, 5, b'A', b'B', b'C', b'D', b'E'];
        let mut msgs: BTreeMap<u8, Message> = BTreeMap::new();
        // Second half first, in a datagram that also carries a ServerHello.
        let mut d = record(2, 2, 0, &[254, 253]);
        d.extend(record(11, body.len(), 6, &body[6..]));
        assert_eq!(absorb(&mut msgs, &d), None);
        let chain = absorb(&mut msgs, &record(11, body.len(), 0, &body[..6]));
        assert_eq!(chain, Some(vec![b"ABCDE".to_vec()]));
    }
}
