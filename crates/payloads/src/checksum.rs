//! The Internet checksum (RFC 1071) and the transport checksum over the IP pseudo-header
//! (RFC 768, RFC 9293 section 3.1, RFC 8200 section 8.1), shared by the lab's forged packets
//! and scan's SYNs.

use std::net::{IpAddr, Ipv6Addr};

/// The Internet checksum (RFC 1071) of `data`.
pub fn internet(data: &[u8]) -> u16 {
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

/// The transport checksum of `segment` (its checksum field zero) over the pseudo-header of
/// `src`, `dst` and `protocol`; a mixed pair is taken as IPv6 (IPv4-mapped).
pub fn transport(src: IpAddr, dst: IpAddr, protocol: u8, segment: &[u8]) -> u16 {
    let mut pseudo: Vec<u8> = Vec::with_capacity(40 + segment.len());
    let len = segment.len();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&[0, protocol]);
            pseudo.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            pseudo.extend_from_slice(&v6(src).octets());
            pseudo.extend_from_slice(&v6(dst).octets());
            pseudo.extend_from_slice(&(len as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, protocol]);
        }
    }
    pseudo.extend_from_slice(segment);
    internet(&pseudo)
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(v) => v.to_ipv6_mapped(),
        IpAddr::V6(v) => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 section 3's example: the words sum to 0xddf2 (with the end-around carry), so
    /// the checksum is its complement, 0x220d.
    #[test]
    fn rfc1071_example() {
        assert_eq!(
            internet(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
    }
}
