//! Classes in words for reports: addresses as prefixes or ranges, protocols and ICMP
//! types by their nft names, interfaces, conntrack state and run-time set lookups.

use std::net::IpAddr;

use portolan_model::icmp;

use super::{any_addr, has_ports};
use crate::lower::addr_num;
use crate::program::Program;
use crate::space::{Class, CtState, Dim, Iv, FIXED};

fn addr_text(iv: Iv, v4: bool) -> String {
    if iv == any_addr(v4) {
        return "any".into();
    }
    let show = |n: u128| -> String {
        if v4 {
            std::net::Ipv4Addr::from(n as u32).to_string()
        } else {
            std::net::Ipv6Addr::from(n).to_string()
        }
    };
    if iv.lo == iv.hi {
        return show(iv.lo);
    }
    // A CIDR prefix when the interval is one.
    let size = iv.hi - iv.lo + 1;
    if size.is_power_of_two() && iv.lo.is_multiple_of(size) {
        let bits = if v4 { 32 } else { 128 };
        let len = bits - size.trailing_zeros();
        return format!("{}/{len}", show(iv.lo));
    }
    format!("{}-{}", show(iv.lo), show(iv.hi))
}

fn proto_text(p: u128) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        33 => "dccp".into(),
        47 => "gre".into(),
        50 => "esp".into(),
        51 => "ah".into(),
        58 => "icmpv6".into(),
        132 => "sctp".into(),
        136 => "udplite".into(),
        n => format!("proto {n}"),
    }
}

/// A class in words: `10.20.0.10 → any tcp dport 22 iif lan0 (new)`.
pub fn describe(prog: &Program, c: &Class, query: Option<&Class>) -> String {
    let v4 = c.is_ipv4();
    let mut s = format!(
        "{} → {}",
        addr_text(c.get(Dim::Saddr), v4),
        addr_text(c.get(Dim::Daddr), v4)
    );
    let proto = c.get(Dim::Proto);
    if proto == Iv::new(0, 255) {
        s.push_str(" any protocol");
    } else if proto.lo == proto.hi {
        s.push(' ');
        s.push_str(&proto_text(proto.lo));
        if has_ports(proto.lo as u8) {
            if c.get(Dim::Sport) != Iv::new(0, 65535) {
                s.push_str(&format!(" sport {}", c.get(Dim::Sport)));
            }
            if c.get(Dim::Dport) != Iv::new(0, 65535) {
                s.push_str(&format!(" dport {}", c.get(Dim::Dport)));
            }
        }
        if (proto.lo == 1 || proto.lo == 58) && c.get(Dim::IcmpType) != Iv::new(0, 255) {
            let t = c.get(Dim::IcmpType);
            match (t.lo == t.hi)
                .then(|| icmp::type_name(proto.lo != 1, t.lo as u8))
                .flatten()
            {
                Some(n) => s.push_str(&format!(" type {n}")),
                None => s.push_str(&format!(" type {t}")),
            }
        }
    } else {
        s.push_str(&format!(" protocols {}-{}", proto.lo, proto.hi));
    }
    let ifs = |iv: Iv| -> String {
        (iv.lo..=iv.hi.min(iv.lo + 8))
            .map(|v| match prog.ifaces.name(v) {
                Some("") => "none".to_string(),
                Some(n) => n.to_string(),
                None => "others".to_string(),
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let full = prog.ifaces.full();
    if c.get(Dim::Iif) != full && query.is_none_or(|q| q.get(Dim::Iif) != c.get(Dim::Iif)) {
        s.push_str(&format!(" iif {}", ifs(c.get(Dim::Iif))));
    }
    if c.get(Dim::Oif) != full && query.is_none_or(|q| q.get(Dim::Oif) != c.get(Dim::Oif)) {
        s.push_str(&format!(" oif {}", ifs(c.get(Dim::Oif))));
    }
    let ct = c.get(Dim::Ct);
    let names: Vec<&str> = CtState::ALL
        .iter()
        .filter(|x| ct.lo <= x.value() && x.value() <= ct.hi)
        .map(|x| x.name())
        .collect();
    s.push_str(&format!(" ({})", names.join(",")));
    for i in FIXED..c.iv.len() {
        let d = &prog.dynamic[i - FIXED];
        let pinned_by_query = query.is_some_and(|q| q.iv.get(i) == Some(&c.iv[i]));
        if pinned_by_query {
            continue;
        }
        if c.iv[i] == Iv::point(1) {
            s.push_str(&format!(" if {} in @{}", d.key, d.set));
        } else if c.iv[i] == Iv::point(0) && query.is_some() {
            s.push_str(&format!(" if {} not in @{}", d.key, d.set));
        }
    }
    s
}

/// Reads an address as the axis value (for tests and callers).
pub fn addr_value(a: IpAddr) -> u128 {
    addr_num(&a)
}
