//! UDP requests that a service answers, so that a UDP flow can be told `open` rather than
//! `open|filtered`: a DNS query (RFC 1035), an NTP client request (RFC 5905), a CoAP ping
//! (an empty confirmable message, answered by a reset; RFC 7252 §4.3) for plain CoAP, a DTLS 1.2
//! ClientHello (RFC 6347 §4.2, RFC 5246 §7.4.1.2) for DTLS and CoAPs (RFC 7252 §6.2: coaps on
//! 5684/UDP), answered by a HelloVerifyRequest or a ServerHello, an IKE_SA_INIT
//! (RFC 7296 §1.2; on 4500 behind the non-ESP marker of RFC 3948 §2.2), an SNMPv2c get
//! ([`crate::snmp`]), an SSDP M-SEARCH and an mDNS query ([`crate::discovery`]), and the
//! responder's token-carrying echo. Each request comes with the [`Expect`] that recognises its
//! answer.

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

use crate::{discovery, nonce, snmp};

/// How to recognise the answer to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A DNS response with this id.
    Dns(u16),
    /// An NTP server-mode packet echoing our transmit timestamp.
    Ntp,
    /// A CoAP reset or acknowledgement with this message id.
    Coap(u16),
    /// A DTLS handshake record answering a ClientHello: HelloVerifyRequest or ServerHello (or
    /// an alert: a DTLS server answered, refusing our offer).
    Dtls,
    /// An IKE response for this initiator SPI; `natt`: behind the 4-byte non-ESP marker.
    Ike { spi: [u8; 8], natt: bool },
    /// An SNMP Response-PDU with the request's id.
    Snmp,
    /// An SSDP search response.
    Ssdp,
    /// The responder's `ACK` for this nonce.
    Token(String),
    /// Any datagram.
    Any,
}

/// The application request used on a UDP flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UdpApp {
    Dns,
    Ntp,
    Coap,
    /// DTLS, CoAPs included.
    Dtls,
    Ike,
    IkeNatT,
    /// SNMPv2c GetRequest for `sysDescr.0` (community `public`).
    Snmp,
    /// SSDP M-SEARCH (UPnP).
    Ssdp,
    /// mDNS legacy-unicast query for the DNS-SD service list.
    Mdns,
    /// The Portolan responder's echo (needs the shared token).
    Responder,
    /// No application request known: an empty datagram, `open|filtered` at best.
    None,
}

impl UdpApp {
    /// Chooses the request for a port and the flow's application label.
    pub fn for_flow(port: u16, app: Option<&str>, have_token: bool) -> UdpApp {
        let app = app.unwrap_or("").to_ascii_lowercase();
        if port == 5353 || app.contains("mdns") {
            UdpApp::Mdns
        } else if port == 53 || app.contains("dns") {
            UdpApp::Dns
        } else if port == 123 || app.contains("ntp") {
            UdpApp::Ntp
        } else if port == 5684 || app.contains("dtls") || app.contains("coaps") {
            UdpApp::Dtls
        } else if port == 5683 || app.contains("coap") {
            UdpApp::Coap
        } else if port == 4500 {
            UdpApp::IkeNatT
        } else if port == 500 || app.contains("ike") {
            UdpApp::Ike
        } else if port == 161 || app.contains("snmp") {
            UdpApp::Snmp
        } else if port == 1900 || app.contains("ssdp") || app.contains("upnp") {
            UdpApp::Ssdp
        } else if have_token {
            UdpApp::Responder
        } else {
            UdpApp::None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            UdpApp::Dns => "DNS query",
            UdpApp::Ntp => "NTP client request",
            UdpApp::Coap => "CoAP ping",
            UdpApp::Dtls => "DTLS 1.2 ClientHello",
            UdpApp::Ike => "IKE_SA_INIT",
            UdpApp::IkeNatT => "IKE_SA_INIT (NAT-T)",
            UdpApp::Snmp => "SNMPv2c get",
            UdpApp::Ssdp => "SSDP M-SEARCH",
            UdpApp::Mdns => "mDNS query",
            UdpApp::Responder => "responder echo",
            UdpApp::None => "empty datagram",
        }
    }

    /// A fresh request and the expectation for its answer.
    pub fn request(self, token: Option<&str>) -> (Vec<u8>, Expect) {
        match self {
            UdpApp::Dns => {
                let id = nonce::u16();
                (
                    dns_query(id, &Name::root(), RecordType::NS),
                    Expect::Dns(id),
                )
            }
            UdpApp::Ntp => (ntp_request(), Expect::Ntp),
            UdpApp::Coap => {
                let id = nonce::u16();
                (coap_ping(id), Expect::Coap(id))
            }
            UdpApp::Dtls => (dtls_client_hello(nonce::bytes::<32>()), Expect::Dtls),
            UdpApp::Ike | UdpApp::IkeNatT => {
                let spi = nonce::bytes::<8>();
                let natt = self == UdpApp::IkeNatT;
                (ike_sa_init(spi, natt), Expect::Ike { spi, natt })
            }
            UdpApp::Snmp => (snmp::get_request(nonce::u64() as u32), Expect::Snmp),
            UdpApp::Ssdp => (discovery::ssdp_msearch(), Expect::Ssdp),
            UdpApp::Mdns => {
                let id = nonce::u16() | 1;
                (discovery::mdns_query(id), Expect::Dns(id))
            }
            UdpApp::Responder => {
                let n = format!("{:016x}", nonce::u64());
                let req = format!("PORTOLAN1 {} ECHO {n}\n", token.unwrap_or(""));
                (req.into_bytes(), Expect::Token(n))
            }
            UdpApp::None => (Vec::new(), Expect::Any),
        }
    }
}

impl Expect {
    pub fn matches(&self, request: &[u8], answer: &[u8]) -> bool {
        match self {
            Expect::Dns(id) => {
                answer.len() >= 12
                    && u16::from_be_bytes([answer[0], answer[1]]) == *id
                    && answer[2] & 0x80 != 0
            }
            Expect::Ntp => {
                answer.len() >= 48
                    && answer[0] & 0x07 == 4
                    && request.get(40..48) == answer.get(24..32)
            }
            Expect::Coap(id) => {
                answer.len() >= 4
                    && answer[0] >> 6 == 1
                    && matches!((answer[0] >> 4) & 0x03, 2 | 3)
                    && u16::from_be_bytes([answer[2], answer[3]]) == *id
            }
            Expect::Dtls => dtls_answer(answer),
            Expect::Ike { spi, natt } => {
                let body = if *natt {
                    match answer.strip_prefix(&[0, 0, 0, 0]) {
                        Some(b) => b,
                        None => return false,
                    }
                } else {
                    answer
                };
                body.len() >= 28 && body[..8] == spi[..] && body[18] == 34 && body[19] & 0x20 != 0
            }
            Expect::Snmp => snmp::is_response_to(request, answer),
            Expect::Ssdp => discovery::is_ssdp_response(answer),
            Expect::Token(n) => std::str::from_utf8(answer)
                .is_ok_and(|s| s.trim_end() == format!("PORTOLAN1 ACK {n}")),
            Expect::Any => true,
        }
    }
}

/// A recursive query for `name`/`rtype` with id `id`, as bytes.
pub fn dns_query(id: u16, name: &Name, rtype: RecordType) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name.clone(), rtype));
    // Encoding a query with one well-formed name cannot fail; an empty packet is only ever
    // answered by silence, which the caller reports.
    m.to_vec().unwrap_or_default()
}

/// An NTPv4 client request (mode 3) with a random transmit timestamp.
pub fn ntp_request() -> Vec<u8> {
    let mut p = vec![0u8; 48];
    p[0] = 0x23; // LI 0, VN 4, mode 3 (client)
    p[40..48].copy_from_slice(&nonce::bytes::<8>());
    p
}

/// An empty confirmable CoAP message (a "CoAP ping"): version 1, type CON, no token, code 0.00.
pub fn coap_ping(id: u16) -> Vec<u8> {
    let [hi, lo] = id.to_be_bytes();
    vec![0x40, 0x00, hi, lo]
}

/// DTLS 1.2 on the wire: `{254, 253}` (RFC 6347 §4.1). A server answering an older client
/// may use DTLS 1.0, `{254, 255}`.
const DTLS12: [u8; 2] = [254, 253];

/// Whether `answer` starts with a DTLS record a server sends to a ClientHello: a handshake
/// record (content type 22) holding a HelloVerifyRequest (3) or a ServerHello (2), or an alert
/// (21). The record header is 13 bytes (type, version, epoch, 48-bit sequence, length;
/// RFC 6347 §4.1), the handshake header 12 (type, length, message_seq, fragment offset and
/// length; §4.2.2).
pub fn dtls_answer(answer: &[u8]) -> bool {
    let version_ok = matches!(answer.get(1..3), Some([254, 253 | 255]));
    match answer.first() {
        Some(22) => version_ok && answer.len() >= 25 && matches!(answer[13], 2 | 3),
        Some(21) => version_ok && answer.len() >= 15,
        _ => false,
    }
}

/// A DTLS 1.2 ClientHello in one record (RFC 6347 §4.2.1 adds the cookie to RFC 5246's
/// ClientHello): no session, an empty cookie, suites for ECDSA and RSA certificates and
/// pre-shared keys (CCM_8 ones as constrained CoAP devices use, RFC 7252 §9.1.3), the null
/// compression, and the extensions a DTLS 1.2 server needs to pick an ECDHE suite.
pub fn dtls_client_hello(random: [u8; 32]) -> Vec<u8> {
    dtls_client_hello_with(random, &[], 0)
}

/// [`dtls_client_hello`] with a cookie (the second ClientHello, answering a
/// HelloVerifyRequest: same parameters, the cookie, the next message and record sequence
/// number; RFC 6347 §4.2.1 and §4.2.2).
pub fn dtls_client_hello_with(random: [u8; 32], cookie: &[u8], seq: u16) -> Vec<u8> {
    const SUITES: [u16; 9] = [
        0xc0ae, // TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8
        0xc02b, // TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        0xc02f, // TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        0xc030, // TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
        0xc023, // TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256
        0xc027, // TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256
        0x009c, // TLS_RSA_WITH_AES_128_GCM_SHA256
        0x002f, // TLS_RSA_WITH_AES_128_CBC_SHA
        0xc0a8, // TLS_PSK_WITH_AES_128_CCM_8
    ];
    fn ext(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut e = kind.to_be_bytes().to_vec();
        e.extend_from_slice(&(body.len() as u16).to_be_bytes());
        e.extend_from_slice(body);
        e
    }
    let mut exts = Vec::new();
    // supported_groups (RFC 8422 §5.1.1): secp256r1, secp384r1, x25519.
    exts.extend(ext(10, &[0, 6, 0, 23, 0, 24, 0, 29]));
    // ec_point_formats: uncompressed.
    exts.extend(ext(11, &[1, 0]));
    // signature_algorithms (RFC 5246 §7.4.1.4.1): ecdsa/rsa with SHA-256 and SHA-384, rsa-pss.
    exts.extend(ext(13, &[0, 10, 4, 3, 5, 3, 4, 1, 5, 1, 8, 4]));
    // extended_master_secret (RFC 7627) and renegotiation_info (RFC 5746), both empty.
    exts.extend(ext(23, &[]));
    exts.extend(ext(0xff01, &[0]));
    let mut body = DTLS12.to_vec();
    body.extend_from_slice(&random);
    body.push(0); // session_id: empty
    body.push(cookie.len().min(255) as u8);
    body.extend_from_slice(cookie.get(..cookie.len().min(255)).unwrap_or_default());
    body.extend_from_slice(&((SUITES.len() * 2) as u16).to_be_bytes());
    for s in SUITES {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend(exts);
    let len = (body.len() as u32).to_be_bytes();
    // Handshake header: client_hello (1), length, message_seq, fragment offset 0, fragment
    // length = length.
    let [s0, s1] = seq.to_be_bytes();
    let mut hs = vec![
        1, len[1], len[2], len[3], s0, s1, 0, 0, 0, len[1], len[2], len[3],
    ];
    hs.extend(body);
    // Record header: handshake (22), DTLS 1.0 as the record version of a first flight (RFC 6347
    // §4.1 lets a client send {254, 255} before the version is agreed; servers accept either),
    // epoch 0, sequence number (the message_seq: one record per message), length.
    let mut rec = vec![22, 254, 255, 0, 0, 0, 0, 0, 0, s0, s1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend(hs);
    rec
}

/// An IKEv2 IKE_SA_INIT request offering AES-CBC-128 / HMAC-SHA2-256 / MODP-2048.
pub fn ike_sa_init(spi: [u8; 8], natt: bool) -> Vec<u8> {
    fn transform(last: bool, kind: u8, id: u16, attrs: &[u8]) -> Vec<u8> {
        let len = (8 + attrs.len()) as u16;
        let mut t = vec![if last { 0 } else { 3 }, 0];
        t.extend_from_slice(&len.to_be_bytes());
        t.push(kind);
        t.push(0);
        t.extend_from_slice(&id.to_be_bytes());
        t.extend_from_slice(attrs);
        t
    }
    let mut transforms = Vec::new();
    transforms.extend(transform(false, 1, 12, &[0x80, 0x0e, 0x00, 0x80])); // ENCR_AES_CBC 128
    transforms.extend(transform(false, 2, 5, &[])); // PRF_HMAC_SHA2_256
    transforms.extend(transform(false, 3, 12, &[])); // AUTH_HMAC_SHA2_256_128
    transforms.extend(transform(true, 4, 14, &[])); // DH group 14
    let mut proposal = vec![0, 0];
    proposal.extend_from_slice(&((8 + transforms.len()) as u16).to_be_bytes());
    proposal.extend_from_slice(&[1, 1, 0, 4]);
    proposal.extend(transforms);
    let mut sa = vec![34, 0]; // next: KE
    sa.extend_from_slice(&((4 + proposal.len()) as u16).to_be_bytes());
    sa.extend(proposal);
    let mut ke = vec![40, 0]; // next: Nonce
    ke.extend_from_slice(&(8u16 + 256).to_be_bytes());
    ke.extend_from_slice(&[0, 14, 0, 0]);
    for _ in 0..32 {
        ke.extend_from_slice(&nonce::bytes::<8>());
    }
    let mut ni = vec![0, 0];
    ni.extend_from_slice(&(4u16 + 32).to_be_bytes());
    for _ in 0..4 {
        ni.extend_from_slice(&nonce::bytes::<8>());
    }
    let body_len = sa.len() + ke.len() + ni.len();
    let mut p = Vec::with_capacity(4 + 28 + body_len);
    if natt {
        p.extend_from_slice(&[0, 0, 0, 0]);
    }
    p.extend_from_slice(&spi);
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(&[33, 0x20, 34, 0x08, 0, 0, 0, 0]);
    p.extend_from_slice(&((28 + body_len) as u32).to_be_bytes());
    p.extend(sa);
    p.extend(ke);
    p.extend(ni);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_choice_follows_port_and_label() {
        assert_eq!(UdpApp::for_flow(53, None, false), UdpApp::Dns);
        assert_eq!(UdpApp::for_flow(123, None, false), UdpApp::Ntp);
        assert_eq!(
            UdpApp::for_flow(5684, Some("CoAP/bootstrap"), false),
            UdpApp::Dtls
        );
        assert_eq!(UdpApp::for_flow(5683, Some("CoAP"), false), UdpApp::Coap);
        assert_eq!(UdpApp::for_flow(6000, Some("CoAPs"), false), UdpApp::Dtls);
        assert_eq!(
            UdpApp::for_flow(6000, Some("LwM2M over DTLS"), false),
            UdpApp::Dtls
        );
        assert_eq!(UdpApp::for_flow(500, Some("IKEv2"), false), UdpApp::Ike);
        assert_eq!(UdpApp::for_flow(4500, None, false), UdpApp::IkeNatT);
        assert_eq!(UdpApp::for_flow(5140, None, true), UdpApp::Responder);
        assert_eq!(UdpApp::for_flow(161, None, false), UdpApp::Snmp);
        assert_eq!(UdpApp::for_flow(1900, None, false), UdpApp::Ssdp);
        assert_eq!(UdpApp::for_flow(5353, None, false), UdpApp::Mdns);
        assert_eq!(UdpApp::for_flow(6000, Some("mDNS"), false), UdpApp::Mdns);
        assert_eq!(UdpApp::for_flow(5140, None, false), UdpApp::None);
    }

    #[test]
    fn coap_reset_matches_its_ping() {
        let (req, exp) = UdpApp::Coap.request(None);
        let rst = [0x70, 0x00, req[2], req[3]];
        assert!(exp.matches(&req, &rst));
        assert!(!exp.matches(&req, &[0x70, 0x00, req[2], req[3].wrapping_add(1)]));
    }

    #[test]
    fn dtls_client_hello_lengths_add_up() {
        let p = dtls_client_hello([7; 32]);
        // Record: content type handshake, length field = the rest.
        assert_eq!(p[0], 22);
        assert_eq!(
            usize::from(u16::from_be_bytes([p[11], p[12]])),
            p.len() - 13
        );
        // Handshake: client_hello, length = fragment length = the body.
        assert_eq!(p[13], 1);
        assert_eq!(&p[14..17], &p[22..25]);
        let body_len = u32::from_be_bytes([0, p[14], p[15], p[16]]) as usize;
        assert_eq!(body_len, p.len() - 25);
        // Body: DTLS 1.2, the random, empty session id and cookie.
        assert_eq!(&p[25..27], &[254, 253]);
        assert_eq!(&p[27..59], &[7; 32]);
        assert_eq!((p[59], p[60]), (0, 0));
        // A HelloVerifyRequest header matches, a ClientHello does not.
        let mut hvr = vec![22, 254, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 3];
        hvr.extend_from_slice(&[0; 11]);
        assert!(dtls_answer(&hvr));
        assert!(!dtls_answer(&p));
        assert!(!dtls_answer(&[0x70, 0, 1, 2]));
    }

    #[test]
    fn ntp_answer_must_echo_the_timestamp() {
        let (req, exp) = UdpApp::Ntp.request(None);
        let mut resp = vec![0u8; 48];
        resp[0] = 0x24;
        resp[24..32].copy_from_slice(&req[40..48]);
        assert!(exp.matches(&req, &resp));
        resp[24] ^= 1;
        assert!(!exp.matches(&req, &resp));
    }

    #[test]
    fn ike_sa_init_is_well_formed() {
        let spi = [1, 2, 3, 4, 5, 6, 7, 8];
        let p = ike_sa_init(spi, false);
        assert_eq!(p.len(), 376);
        assert_eq!(
            u32::from_be_bytes([p[24], p[25], p[26], p[27]]) as usize,
            p.len()
        );
        assert_eq!(&p[..8], &spi);
        assert_eq!(p[17], 0x20);
        assert_eq!(p[18], 34);
        let n = ike_sa_init(spi, true);
        assert_eq!(&n[..4], &[0, 0, 0, 0]);
        let mut resp = n[..32].to_vec();
        resp[4 + 19] = 0x20;
        assert!(Expect::Ike { spi, natt: true }.matches(&n, &resp));
    }

    #[test]
    fn dns_query_parses_back() {
        let q = dns_query(7, &Name::root(), RecordType::NS);
        let m = Message::from_vec(&q).expect("valid");
        assert_eq!(m.metadata.id, 7);
        assert!(Expect::Dns(7).matches(&q, &[0, 7, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0]));
    }
}
