//! The network interfaces of the calling thread's namespace, with their hardware addresses,
//! read over rtnetlink (an `RTM_GETLINK` dump, [rtnetlink(7)], [netlink(7)]) through a socket2
//! socket: no `unsafe`, no `ip` process, and — unlike `/sys/class/net`, which shows the
//! namespace sysfs was mounted in — correct inside a namespace entered with
//! [`crate::netns::run_in`]. The DHCP check needs the MAC for `chaddr`. The same dump of
//! `RTM_GETADDR` gives the namespace's addresses, for checking `--source` (a bind alone does
//! not: in a namespace that never had an address, binding any address succeeds).
//!
//! [rtnetlink(7)]: https://man7.org/linux/man-pages/man7/rtnetlink.7.html
//! [netlink(7)]: https://man7.org/linux/man-pages/man7/netlink.7.html

use std::io::Read as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::LocalError;

/// `AF_NETLINK` and `NETLINK_ROUTE` (linux/netlink.h).
const AF_NETLINK: i32 = 16;
const NETLINK_ROUTE: i32 = 0;
/// Message types (linux/netlink.h, linux/rtnetlink.h).
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
/// `NLM_F_REQUEST | NLM_F_DUMP`.
const DUMP_REQUEST: u16 = 0x0001 | 0x0300;
/// Attributes of a link (linux/if_link.h).
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
/// Attributes of an address (linux/if_addr.h).
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
/// Interface flags (linux/if.h).
const IFF_UP: u32 = 0x1;
const IFF_LOOPBACK: u32 = 0x8;
const IFF_LOWER_UP: u32 = 0x1_0000;

/// `struct nlmsghdr` and `struct ifinfomsg`, both 16 bytes; `struct ifaddrmsg`, 8 bytes.
const NLMSG_HDR: usize = 16;
const IFINFO: usize = 16;
const IFADDR: usize = 8;

/// One interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// The Ethernet address, when the link has a 6-byte one.
    pub mac: Option<[u8; 6]>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// The lower layer is up: a cable, a peer (`IFF_LOWER_UP`).
    pub carrier: bool,
    pub loopback: bool,
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_text(mac: &[u8; 6]) -> String {
    let v: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    v.join(":")
}

/// The request: dump every link (`RTM_GETLINK`, an `ifinfomsg`) or every address
/// (`RTM_GETADDR`, an `ifaddrmsg`), of every family.
fn request(kind: u16, body: usize, seq: u32) -> Vec<u8> {
    let len = u32::try_from(NLMSG_HDR + body).unwrap_or(32);
    let mut m = Vec::with_capacity(NLMSG_HDR + body);
    m.extend_from_slice(&len.to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&DUMP_REQUEST.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    m.resize(NLMSG_HDR + body, 0); // family AF_UNSPEC, every link or address
    m
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One `RTM_NEWLINK` message body (after the netlink header).
fn parse_link(body: &[u8]) -> Option<Link> {
    let index = u32_at(body, 4)?;
    let flags = u32_at(body, 8)?;
    let mut link = Link {
        index,
        name: String::new(),
        mac: None,
        up: flags & IFF_UP != 0,
        carrier: flags & IFF_LOWER_UP != 0,
        loopback: flags & IFF_LOOPBACK != 0,
    };
    let mut at = IFINFO;
    while at + 4 <= body.len() {
        let len = usize::from(u16_at(body, at)?);
        let kind = u16_at(body, at + 2)? & 0x3fff;
        if len < 4 {
            break;
        }
        let value = body.get(at + 4..at + len)?;
        match kind {
            IFLA_IFNAME => {
                let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
                link.name = String::from_utf8_lossy(&value[..end]).into_owned();
            }
            IFLA_ADDRESS => link.mac = <[u8; 6]>::try_from(value).ok(),
            _ => {}
        }
        at += align4(len);
    }
    Some(link)
}

/// One `RTM_NEWADDR` message body: the address (`IFA_LOCAL` when present — on a
/// point-to-point link `IFA_ADDRESS` is the peer's — else `IFA_ADDRESS`).
fn parse_addr(body: &[u8]) -> Option<IpAddr> {
    let family = *body.first()?;
    let (mut local, mut address) = (None, None);
    let mut at = IFADDR;
    while at + 4 <= body.len() {
        let len = usize::from(u16_at(body, at)?);
        let kind = u16_at(body, at + 2)? & 0x3fff;
        if len < 4 {
            break;
        }
        let value = body.get(at + 4..at + len)?;
        let ip = match (family, value.len()) {
            (2, 4) => <[u8; 4]>::try_from(value)
                .ok()
                .map(|o| IpAddr::V4(Ipv4Addr::from(o))),
            (10, 16) => <[u8; 16]>::try_from(value)
                .ok()
                .map(|o| IpAddr::V6(Ipv6Addr::from(o))),
            _ => None,
        };
        match kind {
            IFA_LOCAL => local = ip,
            IFA_ADDRESS => address = ip,
            _ => {}
        }
        at += align4(len);
    }
    local.or(address)
}

/// Parses one datagram of the dump's answer into `out`; `Ok(true)` when the dump is done.
pub fn parse_dump(bytes: &[u8], seq: u32, out: &mut Vec<Link>) -> Result<bool, LocalError> {
    parse_any(bytes, seq, RTM_NEWLINK, parse_link, out)
}

/// The same for any dump: messages of type `kind` parsed by `parse`.
fn parse_any<T>(
    mut bytes: &[u8],
    seq: u32,
    want: u16,
    parse: fn(&[u8]) -> Option<T>,
    out: &mut Vec<T>,
) -> Result<bool, LocalError> {
    while bytes.len() >= NLMSG_HDR {
        let len = u32_at(bytes, 0)
            .and_then(|l| usize::try_from(l).ok())
            .unwrap_or(0);
        let kind = u16_at(bytes, 4).unwrap_or(0);
        let their_seq = u32_at(bytes, 8).unwrap_or(0);
        if len < NLMSG_HDR || len > bytes.len() {
            return Err(LocalError::NetlinkTruncated);
        }
        let body = &bytes[NLMSG_HDR..len];
        if their_seq == seq {
            match kind {
                NLMSG_DONE => return Ok(true),
                NLMSG_ERROR => {
                    let errno = u32_at(body, 0).map_or(0, |e| (e as i32).unsigned_abs());
                    if errno != 0 {
                        return Err(LocalError::Netlink {
                            step: "netlink",
                            detail: std::io::Error::from_raw_os_error(errno as i32).to_string(),
                        });
                    }
                    return Ok(true);
                }
                k if k == want => {
                    if let Some(x) = parse(body) {
                        out.push(x);
                    }
                }
                _ => {}
            }
        }
        bytes = bytes.get(align4(len)..).unwrap_or_default();
    }
    Ok(false)
}

/// Every interface of the calling thread's network namespace.
pub fn links() -> Result<Vec<Link>, LocalError> {
    dump(RTM_GETLINK, IFINFO, RTM_NEWLINK, parse_link)
}

/// Every address of the calling thread's network namespace (of every interface, up or not).
pub fn addresses() -> Result<Vec<IpAddr>, LocalError> {
    dump(RTM_GETADDR, IFADDR, RTM_NEWADDR, parse_addr)
}

fn dump<T>(
    kind: u16,
    body: usize,
    want: u16,
    parse: fn(&[u8]) -> Option<T>,
) -> Result<Vec<T>, LocalError> {
    let failed = |step: &'static str| {
        move |e: std::io::Error| LocalError::Netlink {
            step,
            detail: e.to_string(),
        }
    };
    let sock = Socket::new(
        Domain::from(AF_NETLINK),
        Type::RAW,
        Some(Protocol::from(NETLINK_ROUTE)),
    )
    .map_err(failed("netlink socket"))?;
    sock.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(failed("netlink socket"))?;
    let seq = crate::nonce::u64() as u32;
    // Unconnected and unbound: the datagram goes to the kernel (port id 0).
    sock.send(&request(kind, body, seq))
        .map_err(failed("netlink request"))?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = (&sock).read(&mut buf).map_err(failed("netlink answer"))?;
        if n == 0 {
            return Err(LocalError::NetlinkClosed);
        }
        if parse_any(&buf[..n], seq, want, parse, &mut out)? {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&u16::try_from(4 + value.len()).expect("small").to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(value);
        a.resize(align4(a.len()), 0);
        a
    }

    fn message(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        let len = u32::try_from(NLMSG_HDR + body.len()).expect("small");
        m.extend_from_slice(&len.to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&2u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn a_dump_parses() {
        let mut info = vec![0u8; IFINFO];
        info[4..8].copy_from_slice(&7u32.to_ne_bytes());
        info[8..12].copy_from_slice(&(IFF_UP | IFF_LOWER_UP).to_ne_bytes());
        info.extend(attr(IFLA_IFNAME, b"eth0\0"));
        info.extend(attr(IFLA_ADDRESS, &[2, 0, 0, 0, 0, 9]));
        let mut dg = message(RTM_NEWLINK, 5, &info);
        dg.extend(message(RTM_NEWLINK, 4, &info)); // another request's: ignored
        let mut out = Vec::new();
        assert_eq!(parse_dump(&dg, 5, &mut out), Ok(false));
        assert_eq!(
            out,
            vec![Link {
                index: 7,
                name: "eth0".into(),
                mac: Some([2, 0, 0, 0, 0, 9]),
                up: true,
                carrier: true,
                loopback: false,
            }]
        );
        assert_eq!(
            parse_dump(&message(NLMSG_DONE, 5, &[0; 4]), 5, &mut out),
            Ok(true)
        );
        assert_eq!(mac_text(&[2, 0, 0, 0, 0xab, 9]), "02:00:00:00:ab:09");
        assert_eq!(request(RTM_GETLINK, IFINFO, 1).len(), 32);
        assert_eq!(request(RTM_GETADDR, IFADDR, 1).len(), 24);
    }

    #[test]
    fn an_address_dump_parses() {
        // A point-to-point IPv4 address: IFA_LOCAL is ours, IFA_ADDRESS the peer's.
        let mut v4 = vec![2u8, 32, 0, 0, 3, 0, 0, 0];
        v4.extend(attr(IFA_ADDRESS, &[10, 0, 0, 2]));
        v4.extend(attr(IFA_LOCAL, &[10, 0, 0, 1]));
        let mut v6 = vec![10u8, 64, 0, 0, 3, 0, 0, 0];
        let a6: Ipv6Addr = "2001:db8::33".parse().expect("ip");
        v6.extend(attr(IFA_ADDRESS, &a6.octets()));
        let mut dg = message(RTM_NEWADDR, 9, &v4);
        dg.extend(message(RTM_NEWADDR, 9, &v6));
        dg.extend(message(RTM_NEWLINK, 9, &[0; IFINFO])); // not an address: ignored
        let mut out = Vec::new();
        assert_eq!(
            parse_any(&dg, 9, RTM_NEWADDR, parse_addr, &mut out),
            Ok(false)
        );
        assert_eq!(out, vec![IpAddr::from([10, 0, 0, 1]), IpAddr::V6(a6)]);
    }

    #[test]
    fn this_namespace_has_a_loopback() {
        let all = links().expect("rtnetlink dump");
        assert!(all.iter().any(|l| l.loopback && l.name == "lo"), "{all:?}");
        let addrs = addresses().expect("rtnetlink address dump");
        assert!(addrs.contains(&IpAddr::from([127, 0, 0, 1])), "{addrs:?}");
    }
}
