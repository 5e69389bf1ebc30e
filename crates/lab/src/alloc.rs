//! The lab's address arithmetic: hosts of a prefix, offsets, which addresses can stand for a
//! host, and the allocator that hands out lab addresses (from documentation and
//! shared-address pools, transfer links) without taking any the site uses.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::error::{Error, Result};

pub(crate) fn v4(a: IpAddr) -> bool {
    a.is_ipv4()
}

/// First usable host of a prefix (the address itself for /32, /128, /31).
pub fn first_host(n: &IpNet) -> IpAddr {
    match n {
        IpNet::V4(n) if n.prefix_len() >= 31 => IpAddr::V4(n.network()),
        IpNet::V4(n) => IpAddr::V4(Ipv4Addr::from(u32::from(n.network()).saturating_add(1))),
        IpNet::V6(n) if n.prefix_len() == 128 => IpAddr::V6(n.network()),
        IpNet::V6(n) => IpAddr::V6(Ipv6Addr::from(u128::from(n.network()).saturating_add(1))),
    }
}

/// Last usable host of a prefix (below the broadcast address in IPv4).
pub fn last_host(n: &IpNet) -> IpAddr {
    match n {
        IpNet::V4(n) if n.prefix_len() >= 31 => IpAddr::V4(n.broadcast()),
        IpNet::V4(n) => IpAddr::V4(Ipv4Addr::from(u32::from(n.broadcast()).saturating_sub(1))),
        IpNet::V6(n) => IpAddr::V6(n.broadcast()),
    }
}

pub(crate) fn offset(a: IpAddr, by: i64) -> Option<IpAddr> {
    match a {
        IpAddr::V4(x) => {
            let v = i64::from(u32::from(x)).checked_add(by)?;
            u32::try_from(v).ok().map(|v| IpAddr::V4(Ipv4Addr::from(v)))
        }
        IpAddr::V6(x) => {
            let base = u128::from(x);
            let v = if by >= 0 {
                base.checked_add(by.unsigned_abs().into())?
            } else {
                base.checked_sub(by.unsigned_abs().into())?
            };
            Some(IpAddr::V6(Ipv6Addr::from(v)))
        }
    }
}

/// Whether a host can stand in a lab: unicast, not loopback, link-local or unspecified.
pub fn usable(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(x) => {
            !(x.is_loopback()
                || x.is_multicast()
                || x.is_broadcast()
                || x.is_unspecified()
                || x.is_link_local()
                || x.octets()[0] == 0)
        }
        IpAddr::V6(x) => {
            !(x.is_loopback()
                || x.is_multicast()
                || x.is_unspecified()
                || (x.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}

pub(crate) fn host(n: IpNet) -> IpNet {
    match n.addr() {
        IpAddr::V4(a) => IpNet::V4(Ipv4Net::from(a)),
        IpAddr::V6(a) => IpNet::V6(Ipv6Net::from(a)),
    }
}

pub(crate) fn with_len(a: IpAddr, len: u8) -> Result<IpNet> {
    IpNet::new(a, len).map_err(|e| Error::Plan(e.to_string()))
}

pub(crate) struct Alloc {
    /// Prefixes the lab must not take pool addresses from (site addresses).
    pub(crate) avoid: Vec<IpNet>,
    pub(crate) taken: BTreeSet<IpAddr>,
}

impl Alloc {
    pub(crate) fn free(&self, a: IpAddr) -> bool {
        usable(a) && !self.taken.contains(&a) && !self.avoid.iter().any(|n| n.contains(&a))
    }

    /// A free host from the lab's pools, in the family of `like`.
    pub(crate) fn pool(&mut self, v4: bool) -> Result<IpAddr> {
        let pools: &[&str] = if v4 {
            &["192.0.2.0/24", "198.18.0.0/16", "100.127.0.0/16"]
        } else {
            &["2001:db8:706c::/64", "fd70:6f72:746f:1::/64"]
        };
        for p in pools {
            let net: IpNet = p
                .parse()
                .map_err(|_| Error::Plan(format!("bad pool {p}")))?;
            let mut a = first_host(&net);
            for _ in 0..4096 {
                if !net.contains(&a) {
                    break;
                }
                if self.free(a) {
                    self.taken.insert(a);
                    return Ok(a);
                }
                a = match offset(a, 1) {
                    Some(x) => x,
                    None => break,
                };
            }
        }
        Err(Error::Plan("no free lab address left in the pools".into()))
    }

    /// A transfer link: (firewall end, space end, prefix length).
    pub(crate) fn transfer(&mut self, v4: bool) -> Result<(IpAddr, IpAddr, u8)> {
        if v4 {
            for k in 0u32..16384 {
                let base = u32::from(Ipv4Addr::new(100, 64, 0, 0)) + k * 4;
                let net = IpNet::V4(
                    Ipv4Net::new(Ipv4Addr::from(base), 30)
                        .map_err(|e| Error::Plan(e.to_string()))?,
                );
                let a = IpAddr::V4(Ipv4Addr::from(base + 1));
                let b = IpAddr::V4(Ipv4Addr::from(base + 2));
                let clash = self
                    .avoid
                    .iter()
                    .any(|n| n.contains(&net.network()) || net.contains(&n.network()))
                    || self.taken.iter().any(|t| net.contains(t));
                if !clash {
                    self.taken.insert(a);
                    self.taken.insert(b);
                    return Ok((a, b, 30));
                }
            }
        } else {
            for k in 0u128..4096 {
                let base =
                    u128::from(Ipv6Addr::new(0xfd70, 0x6f72, 0x746f, 0, 0, 0, 0, 0)) + (k << 64);
                let net = IpNet::V6(
                    Ipv6Net::new(Ipv6Addr::from(base), 64)
                        .map_err(|e| Error::Plan(e.to_string()))?,
                );
                let a = IpAddr::V6(Ipv6Addr::from(base + 1));
                let b = IpAddr::V6(Ipv6Addr::from(base + 2));
                let clash = self
                    .avoid
                    .iter()
                    .any(|n| n.contains(&net.network()) || net.contains(&n.network()))
                    || self.taken.iter().any(|t| net.contains(t));
                if !clash {
                    self.taken.insert(a);
                    self.taken.insert(b);
                    return Ok((a, b, 64));
                }
            }
        }
        Err(Error::Plan("no free transfer network".into()))
    }
}

/// The lab host standing for a peer prefix.
pub(crate) fn peer_host(p: &IpNet, alloc: &Alloc) -> Option<IpAddr> {
    let wide = match p {
        IpNet::V4(n) => n.prefix_len() < 8,
        IpNet::V6(n) => n.prefix_len() < 16,
    };
    if wide {
        let preferred: &[&str] = if p.addr().is_ipv4() {
            &["203.0.113.200", "198.51.100.200", "192.0.2.200"]
        } else {
            &["2001:db8:ffff::200"]
        };
        return preferred
            .iter()
            .filter_map(|s| s.parse::<IpAddr>().ok())
            .find(|a| p.contains(a) && usable(*a) && !alloc.taken.contains(a));
    }
    let single = match p {
        IpNet::V4(n) => n.prefix_len() == 32,
        IpNet::V6(n) => n.prefix_len() == 128,
    };
    if single {
        let a = p.addr();
        return usable(a).then_some(a);
    }
    let mut a = first_host(p);
    for _ in 0..256 {
        if !p.contains(&a) {
            return None;
        }
        if usable(a) && !alloc.taken.contains(&a) {
            return Some(a);
        }
        a = offset(a, 1)?;
    }
    None
}

pub(crate) fn highest_free(net: &IpNet, alloc: &Alloc) -> Option<IpAddr> {
    let lowest = first_host(net);
    let mut a = last_host(net);
    for _ in 0..1024 {
        if usable(a) && !alloc.taken.contains(&a) {
            return Some(a);
        }
        if a == lowest {
            return None;
        }
        a = offset(a, -1)?;
    }
    None
}
