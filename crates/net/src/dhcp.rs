//! DHCP, as far as the probe's `--dhcp` needs it: a DHCPDISCOVER built by hand and the
//! DHCPOFFERs it draws, parsed. The message is the BOOTP-shaped one of [RFC 2131 §2] (fixed
//! fields, then the magic cookie and options); the client's part follows [RFC 2131 §4.4.1];
//! the options are those of [RFC 2132] (message type §9.6, parameter request list §9.8, server
//! identifier §9.7, subnet mask §3.3, router §3.5, domain name servers §3.8, domain name §3.17,
//! NTP servers §8.3, lease time §9.2).
//!
//! The exchange ([`exchange`]) sends from 0.0.0.0:68 to 255.255.255.255:67 on one interface
//! (`SO_BINDTODEVICE`, `SO_BROADCAST`), with the broadcast flag set so that the server
//! broadcasts its offer back (RFC 2131 §4.1): the machine needs no address of its own. It takes
//! root (binding to a device and to port 68). Nothing is requested or leased: a DISCOVER only
//! draws offers, which the server forgets when no REQUEST follows.
//!
//! [RFC 2131 §2]: https://www.rfc-editor.org/rfc/rfc2131#section-2
//! [RFC 2131 §4.4.1]: https://www.rfc-editor.org/rfc/rfc2131#section-4.4.1
//! [RFC 2132]: https://www.rfc-editor.org/rfc/rfc2132

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use serde::Serialize;
use socket2::{Domain, Protocol, Socket, Type};

use crate::nonce;
use crate::runtime::DhcpReply;

pub const SERVER_PORT: u16 = 67;
pub const CLIENT_PORT: u16 = 68;
/// The magic cookie that starts the options (RFC 2131 §3, RFC 2132 §2).
const MAGIC: [u8; 4] = [99, 130, 83, 99];
/// op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr (16),
/// sname (64), file (128): 236 bytes before the cookie.
const FIXED: usize = 236;
/// BOOTP relays may drop anything shorter (RFC 1542 §2.1).
const MIN_LEN: usize = 300;
const BOOTREQUEST: u8 = 1;
const BOOTREPLY: u8 = 2;
/// Ethernet (RFC 1700 hardware type 1), 6-byte addresses.
const HTYPE_ETHERNET: u8 = 1;
/// The broadcast bit of `flags` (RFC 2131 §2, figure 2).
const BROADCAST: u16 = 0x8000;

/// Option codes, RFC 2132.
pub mod option {
    pub const PAD: u8 = 0;
    /// §3.3
    pub const SUBNET_MASK: u8 = 1;
    /// §3.5
    pub const ROUTER: u8 = 3;
    /// §3.8
    pub const DNS_SERVERS: u8 = 6;
    /// §3.17
    pub const DOMAIN_NAME: u8 = 15;
    /// §8.3
    pub const NTP_SERVERS: u8 = 42;
    /// §9.2
    pub const LEASE_TIME: u8 = 51;
    /// §9.6
    pub const MESSAGE_TYPE: u8 = 53;
    /// §9.7
    pub const SERVER_ID: u8 = 54;
    /// §9.8
    pub const PARAMETER_LIST: u8 = 55;
    pub const END: u8 = 255;
}

/// DHCP message types (RFC 2132 §9.6), the two the probe uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MessageType {
    Discover = 1,
    Offer = 2,
}

/// What every DISCOVER asks for in its parameter request list (RFC 2132 §9.8): a subnet
/// mask, a router, DNS servers, a domain name, NTP servers and the lease time.
pub const ASKED: [u8; 6] = [
    option::SUBNET_MASK,
    option::ROUTER,
    option::DNS_SERVERS,
    option::DOMAIN_NAME,
    option::NTP_SERVERS,
    option::LEASE_TIME,
];

/// A DHCPDISCOVER (RFC 2131 §4.4.1): a random transaction id and the client's hardware
/// address; it asks for [`ASKED`] and then for `also` (the options a profile's requirements
/// name), since a server may send only the options a client requests (RFC 2131 §4.3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discover {
    pub xid: u32,
    pub chaddr: [u8; 6],
    /// More option codes for the parameter request list, after [`ASKED`].
    pub also: Vec<u8>,
}

impl Discover {
    /// A discover from `chaddr` with a fresh random transaction id.
    pub fn new(chaddr: [u8; 6]) -> Discover {
        Discover {
            xid: nonce::u64() as u32,
            chaddr,
            also: Vec::new(),
        }
    }

    /// The same discover, also asking for `codes` (pad, end and codes already asked for are
    /// left out: a code is asked for once).
    pub fn asking(mut self, codes: &[u8]) -> Discover {
        for c in codes {
            if *c != option::PAD
                && *c != option::END
                && !ASKED.contains(c)
                && !self.also.contains(c)
            {
                self.also.push(*c);
            }
        }
        self
    }

    /// The parameter request list as sent.
    pub fn requested(&self) -> Vec<u8> {
        let mut v = ASKED.to_vec();
        v.extend_from_slice(&self.also);
        v
    }

    /// The message as sent.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut m = vec![0u8; FIXED];
        m[0] = BOOTREQUEST;
        m[1] = HTYPE_ETHERNET;
        m[2] = 6; // hlen
        m[4..8].copy_from_slice(&self.xid.to_be_bytes());
        m[10..12].copy_from_slice(&BROADCAST.to_be_bytes());
        m[28..34].copy_from_slice(&self.chaddr);
        m.extend_from_slice(&MAGIC);
        m.extend_from_slice(&[option::MESSAGE_TYPE, 1, MessageType::Discover as u8]);
        let wanted = self.requested();
        // One option carries at most 255 codes; there are only 254 codes to ask for.
        m.extend_from_slice(&[option::PARAMETER_LIST, wanted.len().min(255) as u8]);
        m.extend_from_slice(&wanted);
        m.push(option::END);
        if m.len() < MIN_LEN {
            m.resize(MIN_LEN, option::PAD);
        }
        m
    }
}

/// What one server offers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Offer {
    /// `yiaddr`: the address offered to the client.
    pub address: Ipv4Addr,
    /// The server identifier (option 54), else the offer's source address.
    pub server: Ipv4Addr,
    /// The prefix length of the subnet mask (option 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_len: Option<u8>,
    /// Option 3, in the server's order of preference.
    pub routers: Vec<Ipv4Addr>,
    /// Option 6.
    pub dns: Vec<Ipv4Addr>,
    /// Option 42.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ntp: Vec<Ipv4Addr>,
    /// Option 15.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Option 51, in seconds; `u32::MAX` is an infinite lease.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_secs: Option<u32>,
    /// The code of every option the offer carries, in the order it carries them (pad and end
    /// left out): what a profile's required `dhcp_options` are checked against.
    pub options: Vec<u8>,
}

impl Offer {
    /// `10.77.0.130/24 from server 10.77.0.1, router 10.77.0.1, DNS 10.77.0.53, lease 600 s`.
    pub fn describe(&self) -> String {
        let list = |v: &[Ipv4Addr]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                let s: Vec<String> = v.iter().map(ToString::to_string).collect();
                s.join(", ")
            }
        };
        let prefix = self.prefix_len.map(|p| format!("/{p}")).unwrap_or_default();
        let lease = match self.lease_secs {
            Some(u32::MAX) => "infinite".to_string(),
            Some(s) => format!("{s} s"),
            None => "not given".to_string(),
        };
        format!(
            "{}{prefix} from server {}, router {}, DNS {}, lease {lease}",
            self.address,
            self.server,
            list(&self.routers),
            list(&self.dns)
        )
    }
}

/// The options of a message, every instance of a code concatenated (RFC 3396). `None` when
/// the options run past the end of the message.
fn options(body: &[u8]) -> Option<Vec<(u8, Vec<u8>)>> {
    let mut out: Vec<(u8, Vec<u8>)> = Vec::new();
    let mut at = 0;
    while let Some(&code) = body.get(at) {
        match code {
            option::PAD => at += 1,
            option::END => break,
            _ => {
                let len = usize::from(*body.get(at + 1)?);
                let value = body.get(at + 2..at + 2 + len)?;
                match out.iter_mut().find(|(c, _)| *c == code) {
                    Some((_, v)) => v.extend_from_slice(value),
                    None => out.push((code, value.to_vec())),
                }
                at += 2 + len;
            }
        }
    }
    Some(out)
}

fn addresses(v: &[u8]) -> Vec<Ipv4Addr> {
    v.chunks_exact(4)
        .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
        .collect()
}

fn prefix_of(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    // A contiguous mask: its ones, then only zeros.
    (m.leading_ones() + m.trailing_zeros() == 32).then(|| m.leading_ones() as u8)
}

/// The offer in `bytes`, if it is a DHCPOFFER answering `d` (same `xid` and `chaddr`);
/// `None` for anything else: another client's traffic, an ACK, a malformed message. `from` is
/// the datagram's source, the server when the offer carries no identifier.
pub fn parse_offer(d: &Discover, bytes: &[u8], from: IpAddr) -> Option<Offer> {
    if bytes.len() < FIXED + MAGIC.len()
        || bytes[0] != BOOTREPLY
        || bytes[4..8] != d.xid.to_be_bytes()
        || bytes[28..34] != d.chaddr
        || bytes[FIXED..FIXED + 4] != MAGIC
    {
        return None;
    }
    let opts = options(&bytes[FIXED + 4..])?;
    let get = |code: u8| opts.iter().find(|(c, _)| *c == code).map(|(_, v)| v);
    if get(option::MESSAGE_TYPE).map(Vec::as_slice) != Some(&[MessageType::Offer as u8]) {
        return None;
    }
    let v4 = |v: &Vec<u8>| addresses(v).first().copied();
    let source = match from {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    };
    Some(Offer {
        address: Ipv4Addr::new(bytes[16], bytes[17], bytes[18], bytes[19]),
        server: get(option::SERVER_ID).and_then(v4).unwrap_or(source),
        prefix_len: get(option::SUBNET_MASK).and_then(v4).and_then(prefix_of),
        routers: get(option::ROUTER)
            .map(|v| addresses(v))
            .unwrap_or_default(),
        dns: get(option::DNS_SERVERS)
            .map(|v| addresses(v))
            .unwrap_or_default(),
        ntp: get(option::NTP_SERVERS)
            .map(|v| addresses(v))
            .unwrap_or_default(),
        domain: get(option::DOMAIN_NAME).map(|v| {
            String::from_utf8_lossy(v)
                .trim_end_matches('\0')
                .to_string()
        }),
        lease_secs: get(option::LEASE_TIME)
            .and_then(|v| <[u8; 4]>::try_from(v.as_slice()).ok())
            .map(u32::from_be_bytes),
        options: opts.iter().map(|(c, _)| *c).collect(),
    })
}

/// How long to keep listening for other servers after the first offer.
pub const MORE_OFFERS: Duration = Duration::from_millis(300);

fn socket(interface: &str) -> std::io::Result<tokio::net::UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_broadcast(true)?;
    s.bind_device(Some(interface.as_bytes()))?;
    s.bind(&SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, CLIENT_PORT)).into())?;
    s.set_nonblocking(true)?;
    tokio::net::UdpSocket::from_std(s.into())
}

/// Broadcasts `d` on `interface` up to `attempts` times, waiting `timeout` after each, and
/// returns the offers that answer it (those arriving within [`MORE_OFFERS`] of the first).
pub async fn exchange(
    interface: &str,
    d: &Discover,
    timeout: Duration,
    attempts: u32,
) -> DhcpReply {
    let sock = match socket(interface) {
        Ok(s) => s,
        Err(e) if e.kind() == ErrorKind::AddrInUse => {
            return DhcpReply::LocalError(format!(
                "cannot bind UDP port {CLIENT_PORT} on {interface}: a DHCP client holds it ({e})"
            ))
        }
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            return DhcpReply::LocalError(format!(
                "cannot bind UDP port {CLIENT_PORT} to {interface}: {e} (--dhcp needs root)"
            ))
        }
        Err(e) => {
            return DhcpReply::LocalError(format!(
                "cannot open a DHCP client socket on {interface}: {e}"
            ))
        }
    };
    let to = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::BROADCAST, SERVER_PORT));
    let request = d.to_bytes();
    let mut buf = vec![0u8; 2048];
    let mut offers: Vec<Offer> = Vec::new();
    for _ in 0..attempts.max(1) {
        if let Err(e) = sock.send_to(&request, to).await {
            return DhcpReply::LocalError(format!("sending a DHCPDISCOVER on {interface}: {e}"));
        }
        let mut deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await {
                Err(_) => break,
                Ok(Ok((n, from))) => {
                    let Some(offer) = buf.get(..n).and_then(|b| parse_offer(d, b, from.ip()))
                    else {
                        continue;
                    };
                    if offers.is_empty() {
                        deadline = deadline.min(tokio::time::Instant::now() + MORE_OFFERS);
                    }
                    if !offers.iter().any(|o| o.server == offer.server) {
                        offers.push(offer);
                    }
                }
                Ok(Err(e)) => {
                    return DhcpReply::LocalError(format!("receiving on {interface}: {e}"))
                }
            }
        }
        if !offers.is_empty() {
            return DhcpReply::Offers(offers);
        }
    }
    DhcpReply::Silent
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x42, 0xac, 0x11, 0x00, 0x07];

    /// An offer as a server would send it, options given raw.
    fn offer_bytes(d: &Discover, yiaddr: [u8; 4], opts: &[(u8, &[u8])]) -> Vec<u8> {
        let mut m = vec![0u8; FIXED];
        m[0] = BOOTREPLY;
        m[1] = 1;
        m[2] = 6;
        m[4..8].copy_from_slice(&d.xid.to_be_bytes());
        m[16..20].copy_from_slice(&yiaddr);
        m[28..34].copy_from_slice(&d.chaddr);
        m.extend_from_slice(&MAGIC);
        for (code, v) in opts {
            m.push(*code);
            m.push(u8::try_from(v.len()).expect("short option"));
            m.extend_from_slice(v);
        }
        m.push(option::END);
        m
    }

    #[test]
    fn discover_is_well_formed() {
        let d = Discover {
            xid: 0xdead_beef,
            chaddr: MAC,
            also: Vec::new(),
        };
        let b = d.to_bytes();
        assert_eq!(b.len(), MIN_LEN);
        assert_eq!(&b[..4], &[1, 1, 6, 0]);
        assert_eq!(&b[4..8], &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(&b[10..12], &[0x80, 0], "broadcast flag");
        assert!(b[12..28].iter().all(|x| *x == 0), "no addresses yet");
        assert_eq!(&b[28..34], &MAC);
        assert!(b[34..FIXED].iter().all(|x| *x == 0));
        assert_eq!(&b[FIXED..FIXED + 4], &MAGIC);
        let opts = options(&b[FIXED + 4..]).expect("options");
        assert_eq!(opts[0], (53, vec![1]));
        assert_eq!(opts[1], (55, vec![1, 3, 6, 15, 42, 51]));
        assert_ne!(Discover::new(MAC).xid, Discover::new(MAC).xid);
    }

    /// A profile's required options join the parameter request list (RFC 2132 §9.8: code 55,
    /// a length, one byte per code), once each, after the usual ones; pad (0) and end (255)
    /// are not options one can ask for.
    #[test]
    fn required_options_are_asked_for() {
        let d = Discover {
            xid: 1,
            chaddr: MAC,
            also: Vec::new(),
        }
        .asking(&[42, 150, 0, 3, 150, 255, 119]);
        let b = d.to_bytes();
        // Written out by hand: type DISCOVER, then 55 with 8 codes.
        assert_eq!(
            &b[FIXED + 4..FIXED + 4 + 3 + 2 + 8 + 1],
            &[53, 1, 1, 55, 8, 1, 3, 6, 15, 42, 51, 150, 119, 255]
        );
        assert_eq!(b.len(), MIN_LEN);
    }

    #[test]
    fn offers_parse_and_strangers_do_not() {
        let d = Discover {
            xid: 7,
            chaddr: MAC,
            also: Vec::new(),
        };
        let from: IpAddr = "10.77.0.1".parse().expect("ip");
        let dns: &[u8] = &[10, 77, 0, 53, 10, 77, 0, 54];
        let b = offer_bytes(
            &d,
            [10, 77, 0, 130],
            &[
                (53, &[2]),
                (54, &[10, 77, 0, 2]),
                (51, &600u32.to_be_bytes()),
                (1, &[255, 255, 255, 0]),
                (3, &[10, 77, 0, 1]),
                (6, &dns[..4]),
                (6, &dns[4..]), // a split option (RFC 3396) is joined
                (15, b"plant.example"),
            ],
        );
        let o = parse_offer(&d, &b, from).expect("an offer");
        assert_eq!(
            o,
            Offer {
                address: "10.77.0.130".parse().expect("ip"),
                server: "10.77.0.2".parse().expect("ip"),
                prefix_len: Some(24),
                routers: vec!["10.77.0.1".parse().expect("ip")],
                dns: vec![
                    "10.77.0.53".parse().expect("ip"),
                    "10.77.0.54".parse().expect("ip")
                ],
                ntp: vec![],
                domain: Some("plant.example".into()),
                lease_secs: Some(600),
                // As carried, the split option 6 once.
                options: vec![53, 54, 51, 1, 3, 6, 15],
            }
        );
        assert_eq!(
            o.describe(),
            "10.77.0.130/24 from server 10.77.0.2, router 10.77.0.1, DNS 10.77.0.53, 10.77.0.54, lease 600 s"
        );
        // No server identifier: the source is the server. No router, no DNS.
        let bare = offer_bytes(&d, [10, 77, 0, 131], &[(53, &[2])]);
        let o = parse_offer(&d, &bare, from).expect("an offer");
        assert_eq!(
            (o.server, o.routers.len(), o.dns.len()),
            (Ipv4Addr::new(10, 77, 0, 1), 0, 0)
        );
        // Another transaction, another client, an ACK, a truncated option: not ours.
        let other = Discover {
            xid: 8,
            chaddr: MAC,
            also: Vec::new(),
        };
        assert_eq!(parse_offer(&other, &b, from), None);
        let mut mac2 = b.clone();
        mac2[33] ^= 1;
        assert_eq!(parse_offer(&d, &mac2, from), None);
        let ack = offer_bytes(&d, [10, 77, 0, 130], &[(53, &[5])]);
        assert_eq!(parse_offer(&d, &ack, from), None);
        let mut cut = offer_bytes(&d, [10, 77, 0, 130], &[(53, &[2])]);
        cut.truncate(cut.len() - 1);
        cut.extend_from_slice(&[3, 8, 10]);
        assert_eq!(parse_offer(&d, &cut, from), None);
        assert_eq!(prefix_of("255.255.240.0".parse().expect("ip")), Some(20));
        assert_eq!(prefix_of("255.0.255.0".parse().expect("ip")), None);
    }
}
