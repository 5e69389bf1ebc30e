//! The pieces of an nftables rule: values (a single one bare, several in an anonymous set),
//! the L4 match of a rule (protocol, ports, ICMP type, with no `meta l4proto` where the port or
//! type match implies it), and the destination match of broadcast and multicast rules.

use ipnet::IpNet;
use portolan_model::ir::{PortRange, Rule};

use super::T;
use crate::cast::{destinations, Destination};
use crate::names::{safe_text, Family};
use crate::EmitError;

/// One value bare, several as an anonymous set: `53`, `{ 500, 4500 }`.
pub(super) fn values<I: IntoIterator<Item = String>>(items: I) -> String {
    let v: Vec<String> = items.into_iter().collect();
    if v.len() == 1 {
        v.into_iter().next().unwrap_or_default()
    } else {
        format!("{{ {} }}", v.join(", "))
    }
}

/// A prefix as nft writes it: the address alone for a host.
pub(super) fn net(n: &IpNet) -> String {
    if n.prefix_len() == n.max_prefix_len() {
        n.addr().to_string()
    } else {
        n.to_string()
    }
}

pub(super) fn ip(fam: Family) -> &'static str {
    match fam {
        Family::V4 => "ip",
        Family::V6 => "ip6",
    }
}

pub(super) fn addr_type(fam: Family) -> &'static str {
    match fam {
        Family::V4 => "ipv4_addr",
        Family::V6 => "ipv6_addr",
    }
}

fn ports(p: &[PortRange]) -> String {
    values(p.iter().map(ToString::to_string))
}

/// The L4 match of a rule: `udp sport 68 udp dport 67`, `tcp dport { 443, 4321 }`,
/// `icmp type echo-request`, `meta l4proto esp`. `None` when the rule cannot apply to the
/// family (ICMP of the other one); `fam` `None`: the rule is written once for both families.
pub(super) fn l4(r: &Rule, fam: Option<Family>) -> Result<Option<String>, EmitError> {
    // A rule of a one-family flow (`family:`) has no match in the other family, and written
    // for both it says its own.
    let only = r.family.map(Family::from);
    if only.is_some() && fam.is_some() && only != fam {
        return Ok(None);
    }
    let Some(m) = l4_match(r, fam)? else {
        return Ok(None);
    };
    Ok(Some(match (only, fam) {
        (Some(Family::V4), None) => format!("meta nfproto ipv4 {m}"),
        (Some(Family::V6), None) => format!("meta nfproto ipv6 {m}"),
        _ => m,
    }))
}

fn l4_match(r: &Rule, fam: Option<Family>) -> Result<Option<String>, EmitError> {
    let p = r.protocol;
    if fam.is_some_and(|f| !p.in_family(f == Family::V4)) {
        return Ok(None);
    }
    let s = match p.name() {
        Some(kw) if p.is_icmp() => match &r.icmp_type {
            Some(t) => {
                let t = safe_text(T, "icmp type", t)?;
                if !crate::names::is_icmp_type_token(&t) {
                    return Err(EmitError::Unsafe {
                        target: T,
                        what: "icmp type",
                        value: t,
                    });
                }
                format!("{kw} type {t}")
            }
            None => format!("meta l4proto {kw}"),
        },
        Some(kw) if p.has_ports() => {
            let mut parts = Vec::new();
            if !r.src_ports.is_empty() {
                parts.push(format!("{kw} sport {}", ports(&r.src_ports)));
            }
            if !r.ports.is_empty() {
                parts.push(format!("{kw} dport {}", ports(&r.ports)));
            }
            if parts.is_empty() {
                parts.push(format!("meta l4proto {kw}"));
            }
            parts.join(" ")
        }
        _ => format!("meta l4proto {p}"),
    };
    Ok(Some(s))
}

/// The destination match of a broadcast or multicast rule in a family (`ip daddr
/// 255.255.255.255`, `ip daddr { 239.255.255.250, … }`); `None` when the family has none.
pub(super) fn cast_destinations(r: &Rule, fam: Family, networks: &[IpNet]) -> Option<String> {
    let v: Vec<String> = destinations(r, fam, networks)
        .iter()
        .map(|d| match d {
            Destination::Broadcast(a) => a.to_string(),
            Destination::Group(g) => net(g),
        })
        .collect();
    if v.is_empty() {
        None
    } else {
        Some(format!("{} daddr {}", ip(fam), values(v)))
    }
}

/// `iifname "lan0"`, `oifname { "mgmt0", "wan0" }`.
pub(super) fn ifnames(kw: &str, names: &[String]) -> String {
    format!("{kw} {}", values(names.iter().map(|n| format!("\"{n}\""))))
}
