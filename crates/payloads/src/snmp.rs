//! An SNMPv2c GetRequest for `sysDescr.0` and the recognition of its GetResponse (RFC 3416
//! §3 PDUs, RFC 1901 community-based message, BER per ITU-T X.690). An agent answers only a
//! community it knows: the well-known `public` is used, and silence from an agent configured
//! otherwise leaves the port `open|filtered`, never `closed`.

/// `sysDescr.0`: 1.3.6.1.2.1.1.1.0 (RFC 3418), BER-encoded (first two arcs as 40*1+3 = 43).
const SYS_DESCR_0: [u8; 8] = [0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00];

/// The community sent: the default read community of most agents.
pub const COMMUNITY: &[u8] = b"public";

/// BER tags used here (X.690 §8; RFC 3416 §3 for the context-specific PDU tags).
const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const NULL: u8 = 0x05;
const OID: u8 = 0x06;
const GET_REQUEST: u8 = 0xa0;
const RESPONSE: u8 = 0xa2;

/// A TLV with a short or long definite length (X.690 §8.1.3).
fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = body.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[0x81, n as u8]);
    } else {
        let [hi, lo] = (n.min(0xffff) as u16).to_be_bytes();
        out.extend_from_slice(&[0x82, hi, lo]);
    }
    out.extend_from_slice(body);
    out
}

/// An SNMPv2c (version field 1) GetRequest for `sysDescr.0` with `request_id`, whose top bit
/// is cleared so that its 4-byte INTEGER encoding stays positive.
pub fn get_request(request_id: u32) -> Vec<u8> {
    let id = (request_id & 0x7fff_ffff).to_be_bytes();
    let varbind = tlv(SEQUENCE, &[tlv(OID, &SYS_DESCR_0), tlv(NULL, &[])].concat());
    let pdu = tlv(
        GET_REQUEST,
        &[
            tlv(INTEGER, &id),
            tlv(INTEGER, &[0]), // error-status
            tlv(INTEGER, &[0]), // error-index
            tlv(SEQUENCE, &varbind),
        ]
        .concat(),
    );
    tlv(
        SEQUENCE,
        &[tlv(INTEGER, &[1]), tlv(OCTET_STRING, COMMUNITY), pdu].concat(),
    )
}

/// One TLV at the start of `b`: its tag, its body, and what follows it.
fn read_tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, head) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let k = usize::from(first & 0x7f);
        if k == 0 || k > 3 {
            return None;
        }
        let bytes = b.get(2..2 + k)?;
        (
            bytes.iter().fold(0usize, |a, &x| (a << 8) | usize::from(x)),
            2 + k,
        )
    };
    let body = b.get(head..head + len)?;
    Some((tag, body, &b[head + len..]))
}

/// Whether `answer` is an SNMP Response-PDU (v1 or v2c message) carrying the request id of
/// `request`: any error status counts, since an agent that answers at all is listening.
pub fn is_response_to(request: &[u8], answer: &[u8]) -> bool {
    fn request_id(msg: &[u8], pdu_tag: u8) -> Option<&[u8]> {
        let (tag, body, _) = read_tlv(msg)?;
        if tag != SEQUENCE {
            return None;
        }
        let (t, _version, rest) = read_tlv(body)?;
        if t != INTEGER {
            return None;
        }
        let (t, _community, rest) = read_tlv(rest)?;
        if t != OCTET_STRING {
            return None;
        }
        let (t, pdu, _) = read_tlv(rest)?;
        if t != pdu_tag {
            return None;
        }
        let (t, id, _) = read_tlv(pdu)?;
        (t == INTEGER).then_some(id)
    }
    match (
        request_id(request, GET_REQUEST),
        request_id(answer, RESPONSE),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_request_bytes_as_x690_encodes_them() {
        // Written out by hand from RFC 1901 / RFC 3416 and X.690: SEQUENCE(41) { INTEGER 1,
        // OCTET STRING "public", [0](28) { INTEGER 0x01020304, INTEGER 0, INTEGER 0,
        // SEQUENCE(14) { SEQUENCE(12) { OID 1.3.6.1.2.1.1.1.0, NULL } } } }.
        let want: Vec<u8> = vec![
            0x30, 0x29, 0x02, 0x01, 0x01, 0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c', 0xa0,
            0x1c, 0x02, 0x04, 0x01, 0x02, 0x03, 0x04, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30,
            0x0e, 0x30, 0x0c, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00, 0x05,
            0x00,
        ];
        assert_eq!(get_request(0x0102_0304), want);
        // The top bit is cleared: the id stays a positive INTEGER.
        assert_eq!(get_request(0x8102_0304)[17], 0x01);
    }

    #[test]
    fn a_response_with_the_same_id_matches() {
        let req = get_request(0x0102_0304);
        let mut resp = req.clone();
        resp[13] = 0xa2;
        assert!(is_response_to(&req, &resp));
        resp[20] = 0x05;
        assert!(!is_response_to(&req, &resp));
        // A request is not its own answer; garbage is nothing.
        assert!(!is_response_to(&req, &req));
        assert!(!is_response_to(&req, &[0x30, 0x82, 0xff]));
    }
}
