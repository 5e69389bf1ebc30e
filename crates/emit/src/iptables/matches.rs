//! The pieces of an iptables rule and an ipset element: address families, protocol and port
//! matches (`-m tcp`, `multiport`), ICMP types, set elements, log prefixes. Every string that
//! reaches a rule is checked here or came through validation.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use portolan_model::ir::{IpProto, PortRange, Rule};

use super::{LOG_PREFIX_MAX, T};
use crate::names::safe_text;
use crate::names::Family;
use crate::EmitError;

/// The protocol as `-p` takes it: the name iptables knows by itself, else the number.
pub(super) fn proto(p: IpProto) -> String {
    match p.iptables_name() {
        Some(n) => n.to_string(),
        None => p.number().to_string(),
    }
}

pub(super) fn range(p: &PortRange, sep: char) -> String {
    if p.lo == p.hi {
        p.lo.to_string()
    } else {
        format!("{}{sep}{}", p.lo, p.hi)
    }
}

/// One side's port matches: `--dport X` for a single range (in `-m tcp`), else `multiport`
/// chunks of at most 15 slots (a range takes two).
pub(super) fn port_side(
    ports: &[PortRange],
    single: &str,
    multi: &str,
) -> (Option<String>, Vec<String>) {
    match ports {
        [] => (None, vec![String::new()]),
        [p] => (
            Some(format!("--{single} {}", range(p, ':'))),
            vec![String::new()],
        ),
        _ => {
            let mut chunks = Vec::new();
            let mut cur: Vec<String> = Vec::new();
            let mut slots = 0;
            for p in ports {
                let w = if p.lo == p.hi { 1 } else { 2 };
                if slots + w > 15 {
                    chunks.push(std::mem::take(&mut cur));
                    slots = 0;
                }
                cur.push(range(p, ':'));
                slots += w;
            }
            chunks.push(cur);
            let v = chunks
                .into_iter()
                .map(|c| format!(" -m multiport --{multi} {}", c.join(",")))
                .collect();
            (None, v)
        }
    }
}

/// The ICMP type names `iptables -p icmp -h` and `ip6tables -p ipv6-icmp -h` list (iptables
/// 1.8.9) that name the same type as in nftables. Profiles use nft's names
/// (`portolan_model::icmp`); the others (`info-request`, `mld-listener-query`,
/// `nd-neighbor-solicit`, …) are unknown to iptables or spelt differently there.
const IPT_ICMP: &[&str] = &[
    "echo-reply",
    "destination-unreachable",
    "source-quench",
    "redirect",
    "echo-request",
    "router-advertisement",
    "router-solicitation",
    "time-exceeded",
    "parameter-problem",
    "timestamp-request",
    "timestamp-reply",
    "address-mask-request",
    "address-mask-reply",
];
const IP6T_ICMP: &[&str] = &[
    "destination-unreachable",
    "packet-too-big",
    "time-exceeded",
    "parameter-problem",
    "echo-request",
    "echo-reply",
];

/// An ICMP type as `--icmp-type` / `--icmpv6-type` takes it: the name where iptables knows
/// nft's name, else the type number (which both accept).
fn icmp_type(v6: bool, name: &str) -> Result<String, EmitError> {
    let known = if v6 { IP6T_ICMP } else { IPT_ICMP };
    if known.contains(&name) {
        return Ok(name.to_string());
    }
    portolan_model::icmp::type_number(v6, name)
        .map(|n| n.to_string())
        .ok_or_else(|| EmitError::Unsafe {
            target: T,
            what: "icmp type",
            value: name.to_string(),
        })
}

/// The L4 matches of a rule for a family (several strings when a port list needs several
/// rules); `None` when the rule does not apply to the family (ICMP of the other one).
pub(super) fn l4(
    r: &Rule,
    fam: Family,
    with_dport: bool,
) -> Result<Option<Vec<String>>, EmitError> {
    // A rule of a one-family flow (`family:`) has no match in the other family.
    // ICMP of the other family has none either.
    let p = r.protocol;
    if r.family.is_some_and(|f| Family::from(f) != fam) || !p.in_family(fam == Family::V4) {
        return Ok(None);
    }
    let icmp = |kw: &str, m: &str, opt: &str| -> Result<String, EmitError> {
        match &r.icmp_type {
            Some(t) => {
                if !crate::names::is_icmp_type_token(t) {
                    return Err(EmitError::Unsafe {
                        target: T,
                        what: "icmp type",
                        value: t.clone(),
                    });
                }
                let t = icmp_type(kw == "ipv6-icmp", t)?;
                Ok(format!("-p {kw} -m {m} --{opt} {t}"))
            }
            None => Ok(format!("-p {kw}")),
        }
    };
    Ok(Some(match p {
        IpProto::ICMP => vec![icmp("icmp", "icmp", "icmp-type")?],
        IpProto::ICMPV6 => vec![icmp("ipv6-icmp", "icmp6", "icmpv6-type")?],
        p if p.has_ports() => {
            let kw = proto(p);
            let (s1, sm) = port_side(&r.src_ports, "sport", "sports");
            let dports: &[PortRange] = if with_dport { &r.ports } else { &[] };
            let (d1, dm) = port_side(dports, "dport", "dports");
            let mut base = format!("-p {kw}");
            if s1.is_some() || d1.is_some() {
                base.push_str(&format!(" -m {kw}"));
                for s in [s1, d1].into_iter().flatten() {
                    base.push(' ');
                    base.push_str(&s);
                }
            }
            let mut out = Vec::new();
            for s in &sm {
                for d in &dm {
                    out.push(format!("{base}{s}{d}"));
                }
            }
            out
        }
        p => vec![format!("-p {}", proto(p))],
    }))
}

/// A prefix as set elements: ipset's `hash:net` cannot store a /0, so it is split in halves.
pub(super) fn set_nets(n: &IpNet) -> Vec<IpNet> {
    match n {
        IpNet::V4(v) if v.prefix_len() == 0 => ["0.0.0.0/1", "128.0.0.0/1"]
            .iter()
            .filter_map(|s| s.parse::<Ipv4Net>().ok().map(IpNet::V4))
            .collect(),
        IpNet::V6(v) if v.prefix_len() == 0 => ["::/1", "8000::/1"]
            .iter()
            .filter_map(|s| s.parse::<Ipv6Net>().ok().map(IpNet::V6))
            .collect(),
        n => vec![*n],
    }
}

pub(super) fn log_prefix(group: &str) -> Result<String, EmitError> {
    labelled_log_prefix("", group)
}

/// `portolan <what><id>: ` within the LOG target's limit (`portolan spoofed mgmt: `).
pub(super) fn labelled_log_prefix(what: &str, group: &str) -> Result<String, EmitError> {
    let room = LOG_PREFIX_MAX - "portolan : ".len() - what.len();
    let id: String = if group.chars().count() <= room {
        group.to_string()
    } else {
        // Too long: a head of the id and a hash of the whole, so two long ids that share a
        // head still log differently (`portolan oscar-gate~3f9a1c2b: `).
        let hash = group.bytes().fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        let head: String = group.chars().take(room - 9).collect();
        format!("{head}~{hash:08x}")
    };
    safe_text(T, "log prefix", &format!("portolan {what}{id}: "))
}

/// An iptables chain name after a group or zone id: `K-lrr-ipsec`. Ids past 19 characters
/// keep their first 10, `~` and a hash of the whole id, so the longest suffix (`-LOCAL`) still
/// fits the 28 characters of a chain name and two ids never share a chain.
pub(super) fn chain_base(kind: &str, id: &str) -> String {
    if id.len() <= 19 {
        return format!("{kind}-{id}");
    }
    let hash = id.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let head: String = id.chars().take(10).collect();
    format!("{kind}-{head}~{hash:08x}")
}

/// An interface as iptables matches it: a trailing `*` of the site is iptables' `+`.
pub(super) fn interface(name: &str) -> String {
    match name.strip_suffix('*') {
        Some(stem) => format!("{stem}+"),
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn icmp_rule(protocol: u8, t: &str) -> Rule {
        Rule {
            group: "d0".into(),
            profile: "fuzz-dev".into(),
            flow: "w4".into(),
            initiator: portolan_model::ir::Initiator::Device,
            protocol: IpProto::new(protocol),
            ports: Vec::new(),
            src_ports: Vec::new(),
            icmp_type: Some(t.into()),
            peers: Default::default(),
            broadcast: false,
            multicast: Vec::new(),
            optional: false,
            family: None,
            via_proxy: None,
        }
    }

    /// Found by the `profile_compile` fuzz target (a flow `protocol: 58`,
    /// `icmp_type: mld-listener-reduction`): ip6tables-restore refused the output with
    /// "Unknown ICMPv6 type `mld-listener-reduction'", nft's name for MLD Listener Done,
    /// type 132 (RFC 2710 section 3.1). Likewise `info-request` and `info-reply`, ICMP types
    /// 15 and 16 (RFC 792), which iptables does not name. Names iptables shares with nft stay
    /// names. The inputs are in fuzz/seeds/profile_compile/regress-icmp-*.
    #[test]
    fn icmp_types_iptables_does_not_name_are_numbers() {
        let m = |p, t| {
            l4(
                &icmp_rule(p, t),
                if p == 58 { Family::V6 } else { Family::V4 },
                true,
            )
        };
        assert_eq!(
            m(58, "mld-listener-reduction").expect("emits"),
            Some(vec!["-p ipv6-icmp -m icmp6 --icmpv6-type 132".to_string()])
        );
        assert_eq!(
            m(58, "nd-neighbor-solicit").expect("emits"),
            Some(vec!["-p ipv6-icmp -m icmp6 --icmpv6-type 135".to_string()])
        );
        assert_eq!(
            m(1, "info-request").expect("emits"),
            Some(vec!["-p icmp -m icmp --icmp-type 15".to_string()])
        );
        // The minimised input: a device flow `protocol: 1`, `icmp_type: info-reply` (type 16).
        assert_eq!(
            m(1, "info-reply").expect("emits"),
            Some(vec!["-p icmp -m icmp --icmp-type 16".to_string()])
        );
        assert_eq!(
            m(1, "echo-request").expect("emits"),
            Some(vec!["-p icmp -m icmp --icmp-type echo-request".to_string()])
        );
        assert!(matches!(m(1, "accept"), Err(EmitError::Unsafe { .. })));
    }

    #[test]
    fn long_group_ids_keep_distinct_log_prefixes() {
        let a = log_prefix("oscar-gateways-in-building-seven-north-wing").expect("safe");
        let b = log_prefix("oscar-gateways-in-building-seven-north-wing2").expect("safe");
        assert_ne!(a, b);
        assert!(
            a.len() <= LOG_PREFIX_MAX && b.len() <= LOG_PREFIX_MAX,
            "{a} {b}"
        );
        assert_eq!(log_prefix("lrr-1").expect("safe"), "portolan lrr-1: ");
    }

    #[test]
    fn port_lists_fit_multiport() {
        let r = |lo, hi| PortRange { lo, hi };
        assert_eq!(
            port_side(&[r(53, 53)], "dport", "dports").0.as_deref(),
            Some("--dport 53")
        );
        let many: Vec<PortRange> = (1..=20).map(|p| r(p, p)).collect();
        let (one, chunks) = port_side(&many, "dport", "dports");
        assert!(one.is_none());
        assert_eq!(chunks.len(), 2);
        assert!(chunks[0].ends_with("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15"));
    }

    #[test]
    fn any_is_split_for_hash_net() {
        let any: IpNet = "0.0.0.0/0".parse().expect("valid");
        assert_eq!(set_nets(&any).len(), 2);
        assert!(
            log_prefix("a-very-long-group-identifier-indeed")
                .expect("safe")
                .len()
                <= LOG_PREFIX_MAX
        );
    }
}
