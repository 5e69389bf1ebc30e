//! `portolan explain SITE PACKET`: which flow of the compiled policy admits one packet that
//! opens a connection, or why none does.
//!
//! The reading is the emitted firewall's (ARCHITECTURE.md, "nftables layout"): through the
//! firewall (`forward`, policy drop), a packet passes when a device-initiated rule of the
//! source's device group admits the destination as a peer, or a peer-initiated rule of the
//! destination's group admits the source, with the rule's protocol, destination ports, source
//! ports and ICMP type; anything else is dropped. To the firewall itself (`--local`, the
//! `input` hook, policy accept), a device's packet passes only by a device-initiated rule whose
//! peer is the firewall, and a packet from no device is not Portolan's to restrict. A rule
//! whose peers are host names or wildcard domains admits an address only once the site's DNS
//! has answered it (a DNS-filled set): the verdict is then `depends`. The packet is assumed to
//! arrive on its source zone's interface (the spoofing check passes). Not covered: broadcast,
//! multicast and DHCP discovery (source 0.0.0.0), which `lab` proves.
//!
//! For every rule of the groups involved that does not admit the packet, the first part that
//! differs is named (protocol, port, source port, peer), so a near miss reads as the fix.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use portolan_model::ir::{Initiator, IpProto, Policy, PortRange, Rule};
use serde::Serialize;

use crate::cli::{CatalogArgs, OutputArgs};
use crate::output::Outcome;

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The site file.
    pub site: PathBuf,
    /// The packet: `PROTO SRC[:PORT] -> DST[:PORT]`, e.g. 'tcp 10.20.0.10:40000 ->
    /// 198.51.100.10:443'; IPv6 as `[2001:db8::1]:443`. Or give the flags instead.
    pub packet: Option<String>,
    /// The protocol: tcp, udp, icmp, icmpv6, or an IANA number.
    #[arg(long, conflicts_with = "packet")]
    pub proto: Option<String>,
    /// Source address.
    #[arg(long, conflicts_with = "packet")]
    pub src: Option<IpAddr>,
    /// Destination address.
    #[arg(long, conflicts_with = "packet")]
    pub dst: Option<IpAddr>,
    /// Source port.
    #[arg(long, conflicts_with = "packet")]
    pub sport: Option<u16>,
    /// Destination port.
    #[arg(long, conflicts_with = "packet")]
    pub dport: Option<u16>,
    /// ICMP type (nft's name; default echo-request).
    #[arg(long, default_value = "echo-request")]
    pub icmp_type: String,
    /// The destination is the firewall itself (a service it runs: DNS, NTP, ...).
    #[arg(long)]
    pub local: bool,
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(flatten)]
    pub cat: CatalogArgs,
}

/// One packet that opens a connection.
#[derive(Clone, Debug, Serialize)]
pub struct Packet {
    /// nftables' name, or the number as text; the contract writes it as `{name, number}`.
    pub protocol: String,
    #[serde(skip)]
    pub protocol_number: u8,
    pub src: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sport: Option<u16>,
    pub dst: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dport: Option<u16>,
    pub local: bool,
}

/// A rule of the policy, named as its comment in the ruleset names it.
#[derive(Clone, Debug, Serialize)]
struct RuleRef {
    group: String,
    profile: String,
    flow: String,
    /// `device`: the device opens it; `peer`: the peer does.
    initiator: &'static str,
}

#[derive(Debug, Serialize)]
struct Miss {
    rule: RuleRef,
    /// The first part of the rule the packet does not match, in words.
    because: String,
}

#[derive(Debug, Serialize)]
struct Explanation {
    site: String,
    packet: Packet,
    /// `accept`, `drop`, or `depends` (on what the DNS answers).
    verdict: &'static str,
    /// The hook that decides: `forward` or `input`.
    hook: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination_group: Option<String>,
    /// The rule that admits the packet (or would, once DNS answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<RuleRef>,
    /// Why, in words.
    reason: String,
    /// Rules of the groups involved that do not admit it, and why not.
    near_misses: Vec<Miss>,
}

pub fn run(g: &CatalogArgs, a: &ExplainArgs) -> anyhow::Result<Outcome> {
    let packet = packet(a)?;
    let Some(policy) = super::load_site(g, &a.site, a.out.json())? else {
        return Ok(Outcome::BadInput);
    };
    let e = explain(&policy, &a.site.display().to_string(), packet, &a.icmp_type);
    if a.out.json() {
        crate::contract::print("explain", &e)?;
    } else {
        print_text(&e);
    }
    Ok(match e.verdict {
        "accept" => Outcome::Ok,
        _ => Outcome::Findings,
    })
}

fn print_text(e: &Explanation) {
    let p = &e.packet;
    let port = |a: IpAddr, port: Option<u16>| match (a, port) {
        (IpAddr::V6(_), Some(n)) => format!("[{a}]:{n}"),
        (_, Some(n)) => format!("{a}:{n}"),
        (_, None) => a.to_string(),
    };
    println!(
        "{} {} -> {}{}: {}",
        p.protocol,
        port(p.src, p.sport),
        port(p.dst, p.dport),
        if p.local { " (the firewall)" } else { "" },
        e.verdict.to_uppercase()
    );
    if let Some(r) = &e.rule {
        println!(
            "  rule: {}/{} of device group `{}` ({}-initiated), hook {}",
            r.profile, r.flow, r.group, r.initiator, e.hook
        );
    }
    println!("  why: {}", e.reason);
    // The nearest first: rules of the packet's protocol; the others only when none is.
    let same: Vec<&Miss> = e
        .near_misses
        .iter()
        .filter(|m| !m.because.starts_with("protocol is "))
        .collect();
    let shown: Vec<&Miss> = if same.is_empty() {
        e.near_misses.iter().collect()
    } else {
        same
    };
    if !shown.is_empty() {
        println!("  rules that do not admit it:");
        for m in &shown {
            println!(
                "    {}/{} ({}, {}-initiated): {}",
                m.rule.profile, m.rule.flow, m.rule.group, m.rule.initiator, m.because
            );
        }
        let hidden = e.near_misses.len() - shown.len();
        if hidden > 0 {
            println!(
                "  ({hidden} rule(s) of other protocols not listed; --format json lists them)"
            );
        }
    }
}

/// Reads the packet from the positional text or from the flags.
fn packet(a: &ExplainArgs) -> anyhow::Result<Packet> {
    let (proto, src, sport, dst, dport) = match &a.packet {
        Some(text) => parse_packet(text)?,
        None => {
            let (Some(proto), Some(src), Some(dst)) = (&a.proto, a.src, a.dst) else {
                bail!("give the packet as 'PROTO SRC[:PORT] -> DST[:PORT]', or --proto, --src and --dst");
            };
            (proto_number(proto)?, src, a.sport, dst, a.dport)
        }
    };
    if src.is_ipv4() != dst.is_ipv4() {
        bail!("the source and destination addresses are of different families");
    }
    let p = IpProto::new(proto);
    if p.has_ports() && dport.is_none() {
        bail!(
            "a {} packet needs a destination port",
            p.name().unwrap_or("port")
        );
    }
    Ok(Packet {
        protocol: p.name().map_or(proto.to_string(), str::to_string),
        protocol_number: proto,
        src,
        sport: sport.filter(|_| p.has_ports()),
        dst,
        dport: dport.filter(|_| p.has_ports()),
        local: a.local,
    })
}

type Parsed = (u8, IpAddr, Option<u16>, IpAddr, Option<u16>);

fn parse_packet(text: &str) -> anyhow::Result<Parsed> {
    let shape = "expected 'PROTO SRC[:PORT] -> DST[:PORT]', e.g. 'tcp 10.20.0.10:40000 -> 198.51.100.10:443'";
    let (left, right) = text
        .split_once("->")
        .with_context(|| format!("`{text}`: no `->`; {shape}"))?;
    let mut words = left.split_whitespace();
    let (Some(proto), Some(src), None) = (words.next(), words.next(), words.next()) else {
        bail!("`{text}`: {shape}");
    };
    let dst = right.trim();
    let (src, sport) = endpoint(src).with_context(|| format!("source `{src}`"))?;
    let (dst, dport) = endpoint(dst).with_context(|| format!("destination `{dst}`"))?;
    Ok((proto_number(proto)?, src, sport, dst, dport))
}

fn endpoint(s: &str) -> anyhow::Result<(IpAddr, Option<u16>)> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok((sa.ip(), Some(sa.port())));
    }
    if let Ok(a) = s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok((a, None));
    }
    bail!("not an address or address:port")
}

fn proto_number(p: &str) -> anyhow::Result<u8> {
    let p = p.to_ascii_lowercase();
    if let Ok(n) = p.parse::<u8>() {
        return Ok(n);
    }
    (0..=255u8)
        .map(IpProto::new)
        .find(|x| x.name() == Some(p.as_str()))
        .map(IpProto::number)
        .with_context(|| format!("unknown protocol `{p}` (tcp, udp, icmp, icmpv6, or a number)"))
}

fn group_of(policy: &Policy, a: IpAddr) -> Option<&str> {
    policy
        .groups
        .iter()
        .find(|g| g.addresses.iter().any(|n| n.contains(&a)))
        .map(|g| g.id.as_str())
}

fn rule_ref(r: &Rule) -> RuleRef {
    RuleRef {
        group: r.group.clone(),
        profile: r.profile.clone(),
        flow: r.flow.clone(),
        initiator: match r.initiator {
            Initiator::Device => "device",
            Initiator::Peer => "peer",
        },
    }
}

fn ranges(r: &[PortRange]) -> String {
    r.iter()
        .map(|p| {
            if p.lo == p.hi {
                p.lo.to_string()
            } else {
                format!("{}-{}", p.lo, p.hi)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn proto_name(p: IpProto) -> String {
    p.name().map_or(p.number().to_string(), str::to_string)
}

/// How a packet fares against one rule.
enum Match {
    Yes,
    /// The peer is a name or wildcard the DNS must first answer with this address.
    IfDns(String),
    No(String),
}

/// Protocol, ports and ICMP type of `r` against `p`: the first difference, in words.
fn l4(r: &Rule, p: &Packet, icmp_type: &str) -> Option<String> {
    if r.protocol != IpProto::new(p.protocol_number) {
        return Some(format!(
            "protocol is {}, the flow's is {}",
            p.protocol,
            proto_name(r.protocol)
        ));
    }
    if !r.admits_l4_family(p.src.is_ipv4()) {
        return Some("the flow is for the other address family".into());
    }
    if r.broadcast {
        return Some("the flow is broadcast or multicast, not to a peer's own address".into());
    }
    if r.protocol.has_ports() {
        let inside = |port: Option<u16>, rs: &[PortRange]| {
            rs.is_empty() || port.is_some_and(|x| rs.iter().any(|q| q.contains(x)))
        };
        if !inside(p.dport, &r.ports) {
            return Some(format!(
                "destination port {} is not the flow's {}",
                p.dport.unwrap_or(0),
                ranges(&r.ports)
            ));
        }
        if !inside(p.sport, &r.src_ports) {
            return Some(match p.sport {
                Some(s) => format!("source port {s} is not the flow's {}", ranges(&r.src_ports)),
                None => format!(
                    "the flow needs source port {}; give one",
                    ranges(&r.src_ports)
                ),
            });
        }
    }
    if r.protocol.is_icmp() {
        if let Some(t) = &r.icmp_type {
            if t != icmp_type {
                return Some(format!("ICMP type {icmp_type} is not the flow's {t}"));
            }
        }
    }
    None
}

fn peer_match(r: &Rule, a: IpAddr, local: bool) -> Match {
    if local {
        return if r.peers.firewall {
            Match::Yes
        } else {
            Match::No("the flow's peer is not this firewall".into())
        };
    }
    if r.peers.prefixes.iter().any(|n| n.contains(&a)) {
        return Match::Yes;
    }
    let names: Vec<String> = r
        .peers
        .names
        .iter()
        .cloned()
        .chain(r.peers.wildcards.iter().map(|w| format!("*.{w}")))
        .collect();
    if !names.is_empty() {
        return Match::IfDns(names.join(", "));
    }
    let listed: Vec<String> = r.peers.prefixes.iter().map(ToString::to_string).collect();
    if r.peers.firewall && listed.is_empty() {
        return Match::No("the flow's peer is this firewall (use --local)".into());
    }
    Match::No(format!(
        "{a} is not among the flow's peers ({})",
        listed.join(", ")
    ))
}

fn judge(r: &Rule, p: &Packet, icmp_type: &str, peer: IpAddr) -> Match {
    if let Some(why) = l4(r, p, icmp_type) {
        return Match::No(why);
    }
    peer_match(r, peer, p.local)
}

fn explain(policy: &Policy, site: &str, p: Packet, icmp_type: &str) -> Explanation {
    let src_group = group_of(policy, p.src).map(str::to_string);
    let dst_group = if p.local {
        None
    } else {
        group_of(policy, p.dst).map(str::to_string)
    };
    let hook = if p.local { "input" } else { "forward" };
    let mut candidates: Vec<(&Rule, IpAddr)> = Vec::new();
    if let Some(gid) = &src_group {
        candidates.extend(
            policy
                .rules_of(gid)
                .filter(|r| r.initiator == Initiator::Device)
                .map(|r| (r, p.dst)),
        );
    }
    if let Some(gid) = &dst_group {
        candidates.extend(
            policy
                .rules_of(gid)
                .filter(|r| r.initiator == Initiator::Peer)
                .map(|r| (r, p.src)),
        );
    }
    let mut admit = None;
    let mut depends: Option<(&Rule, String)> = None;
    let mut near_misses = Vec::new();
    for (r, peer) in &candidates {
        match judge(r, &p, icmp_type, *peer) {
            Match::Yes if admit.is_none() => admit = Some(*r),
            Match::Yes => {}
            Match::IfDns(names) => {
                if depends.is_none() {
                    depends = Some((r, names));
                }
            }
            Match::No(because) => near_misses.push(Miss {
                rule: rule_ref(r),
                because,
            }),
        }
    }
    let (verdict, rule, reason) = if let Some(r) = admit {
        let side = match r.initiator {
            Initiator::Device => format!("device group `{}` opens it", r.group),
            Initiator::Peer => format!("device group `{}` accepts it from this peer", r.group),
        };
        (
            "accept",
            Some(rule_ref(r)),
            format!(
                "flow {}/{}: {side}; protocol, ports and peer match",
                r.profile, r.flow
            ),
        )
    } else if let Some((r, names)) = depends {
        (
            "depends",
            Some(rule_ref(r)),
            format!(
                "flow {}/{} admits it only while the site's DNS has answered {names} with this address (a DNS-filled set); otherwise dropped",
                r.profile, r.flow
            ),
        )
    } else if p.local && src_group.is_none() {
        (
            "accept",
            None,
            "the source is no device of the site: Portolan's input rules restrict devices only (policy accept)".into(),
        )
    } else {
        let why = match (&src_group, &dst_group) {
            (None, None) => "neither address is a device of the site, and the forward hook drops what no flow admits".to_string(),
            _ => "no flow of the device groups involved admits it: their drop chain logs and drops it".to_string(),
        };
        ("drop", None, why)
    };
    Explanation {
        site: site.to_string(),
        packet: p,
        verdict,
        hook,
        source_group: src_group,
        destination_group: dst_group,
        rule,
        reason,
        near_misses,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_packet;

    #[test]
    fn packets_are_read_as_written() {
        let (p, s, sp, d, dp) =
            parse_packet("tcp 10.0.1.5:40000 -> 52.1.2.3:8883").expect("a packet");
        assert_eq!((p, sp, dp), (6, Some(40000), Some(8883)));
        assert_eq!(
            (s.to_string(), d.to_string()),
            ("10.0.1.5".into(), "52.1.2.3".into())
        );
        let (p, _, sp, d, dp) =
            parse_packet("udp [2001:db8::1]:5353 -> [2001:db8::2]:53").expect("v6");
        assert_eq!(
            (p, sp, dp, d.to_string()),
            (17, Some(5353), Some(53), "2001:db8::2".into())
        );
        let (p, _, sp, _, dp) = parse_packet("icmp 10.0.0.1 -> 10.0.0.2").expect("icmp");
        assert_eq!((p, sp, dp), (1, None, None));
        assert!(parse_packet("tcp 10.0.0.1:1 10.0.0.2:2").is_err());
        assert!(parse_packet("tcpx 10.0.0.1:1 -> 10.0.0.2:2").is_err());
    }
}
