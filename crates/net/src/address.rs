//! Facts of the probing machine's own network setup, read without privileges: the default
//! routes (`/proc/thread-self/net/route` and `ipv6_route`, so a thread inside a namespace
//! sees that namespace's), and the source address the kernel picks towards a destination.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use crate::LocalError;

/// A default route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultRoute {
    pub gateway: Option<IpAddr>,
    pub interface: String,
}

/// Parses `/proc/net/route` text: the IPv4 default routes.
pub fn default_v4(text: &str) -> Vec<DefaultRoute> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (iface, dest, gw, mask) = (f.first()?, f.get(1)?, f.get(2)?, f.get(7)?);
            if *dest != "00000000" || *mask != "00000000" {
                return None;
            }
            let g = u32::from_str_radix(gw, 16).ok()?;
            let gateway = (g != 0).then(|| IpAddr::V4(Ipv4Addr::from(g.swap_bytes())));
            Some(DefaultRoute {
                gateway,
                interface: iface.to_string(),
            })
        })
        .collect()
}

/// Parses `/proc/net/ipv6_route` text: the IPv6 default routes (not via `lo`).
pub fn default_v6(text: &str) -> Vec<DefaultRoute> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dest, plen, hop, iface) = (f.first()?, f.get(1)?, f.get(4)?, f.get(9)?);
            if dest.chars().any(|c| c != '0') || *plen != "00" || *iface == "lo" {
                return None;
            }
            let g = u128::from_str_radix(hop, 16).ok()?;
            let gateway = (g != 0).then(|| IpAddr::V6(Ipv6Addr::from(g)));
            Some(DefaultRoute {
                gateway,
                interface: iface.to_string(),
            })
        })
        .collect()
}

/// The default routes of the calling thread's network namespace.
pub fn default_routes() -> Vec<DefaultRoute> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let mut v = default_v4(&read("/proc/thread-self/net/route"));
    v.extend(default_v6(&read("/proc/thread-self/net/ipv6_route")));
    v
}

/// Whether `addr` is an address of the calling thread's network namespace, i.e. whether the
/// probe can send from it (read over rtnetlink: binding alone is not proof, since in a
/// namespace that never had an address every bind succeeds).
pub fn check_local(addr: IpAddr) -> Result<(), LocalError> {
    let mine = crate::link::addresses()?;
    if mine.contains(&addr) {
        Ok(())
    } else {
        let mut others: Vec<IpAddr> = mine.into_iter().filter(|a| !a.is_loopback()).collect();
        others.sort_by_key(ToString::to_string);
        Err(LocalError::NotLocal { others })
    }
}

/// The address the kernel would send from towards `dst` (no packet is sent), or `src` if it
/// is an address of this machine (of the calling thread's namespace).
pub fn source_towards(src: Option<IpAddr>, dst: IpAddr) -> Result<IpAddr, LocalError> {
    if let Some(s) = src {
        check_local(s).map_err(|e| LocalError::NotThisMachine {
            addr: s,
            reason: e.to_string(),
        })?;
    }
    let bind = src.unwrap_or(match dst {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    });
    let s = UdpSocket::bind(SocketAddr::new(bind, 0)).map_err(|e| {
        if src.is_some() {
            LocalError::NotThisMachine {
                addr: bind,
                reason: e.to_string(),
            }
        } else {
            LocalError::Socket(e.to_string())
        }
    })?;
    s.connect(SocketAddr::new(dst, 9))
        .map_err(|e| LocalError::NoRoute {
            dst,
            detail: e.to_string(),
        })?;
    s.local_addr()
        .map(|a| a.ip())
        .map_err(|e| LocalError::Socket(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse() {
        let v4 =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                  eth0\t00000000\t0100140A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                  eth0\t0000140A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let r = default_v4(v4);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].gateway, Some("10.20.0.1".parse().expect("ok")));
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n\
                  00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo\n";
        let r6 = default_v6(v6);
        assert_eq!(r6.len(), 1);
        assert_eq!(r6[0].gateway, Some("fe80::1".parse().expect("ok")));
    }

    #[test]
    fn loopback_source() {
        let lo: IpAddr = "127.0.0.1".parse().expect("ok");
        assert_eq!(source_towards(None, lo), Ok(lo));
        assert!(source_towards(Some("192.0.2.250".parse().expect("ok")), lo).is_err());
        assert_eq!(check_local(lo), Ok(()));
        assert!(check_local("192.0.2.250".parse().expect("ok")).is_err());
    }
}
