//! Discovery protocols a device may answer on its own address: an SSDP `M-SEARCH` (UPnP
//! Device Architecture 2.0 §1.3.2, answered by `HTTP/1.1 200 OK`) and an mDNS query for the
//! DNS-SD service enumeration name (RFC 6762 §5.1 and §6.7: a query from a port other than
//! 5353 is a "legacy unicast" one, answered to its source port with its id; RFC 6763 §9).

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

/// A unicast SSDP search for every device and service (`ST: ssdp:all`), one second of `MX`.
pub fn ssdp_msearch() -> Vec<u8> {
    b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n"
        .to_vec()
}

/// Whether `answer` is an SSDP search response (an HTTP/1.1 status line over UDP).
pub fn is_ssdp_response(answer: &[u8]) -> bool {
    answer.starts_with(b"HTTP/1.1 200") || answer.starts_with(b"HTTP/1.0 200")
}

/// A legacy-unicast mDNS query (id `id`, no recursion) for `_services._dns-sd._udp.local` PTR.
pub fn mdns_query(id: u16) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    // The name is a constant of four valid labels; it cannot fail to parse.
    if let Ok(name) = Name::from_ascii("_services._dns-sd._udp.local.") {
        m.add_query(Query::query(name, RecordType::PTR));
    }
    m.to_vec().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msearch_is_the_uda_request() {
        let m = String::from_utf8(ssdp_msearch()).expect("ascii");
        assert!(m.starts_with("M-SEARCH * HTTP/1.1\r\n"));
        assert!(m.contains("\r\nMAN: \"ssdp:discover\"\r\n"));
        assert!(m.ends_with("\r\n\r\n"));
        assert!(is_ssdp_response(
            b"HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\n\r\n"
        ));
        assert!(!is_ssdp_response(&ssdp_msearch()));
    }

    #[test]
    fn mdns_query_names_the_enumeration_ptr() {
        let q = mdns_query(0x1234);
        // Header (RFC 1035 §4.1.1): id, flags 0 (a query, no RD), one question.
        assert_eq!(&q[..6], &[0x12, 0x34, 0, 0, 0, 1]);
        // The question: 9"_services" 7"_dns-sd" 4"_udp" 5"local" 0, type PTR (12), class IN.
        let mut name = vec![9u8];
        name.extend_from_slice(b"_services");
        name.push(7);
        name.extend_from_slice(b"_dns-sd");
        name.push(4);
        name.extend_from_slice(b"_udp");
        name.push(5);
        name.extend_from_slice(b"local");
        name.extend_from_slice(&[0, 0, 12, 0, 1]);
        assert_eq!(&q[12..], &name[..]);
    }
}
