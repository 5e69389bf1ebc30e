//! The kernel's connection tracking table, read to tell whether an element's flow is still
//! live: `conntrack -L` (conntrack-tools, Debian package `conntrack`) where it is installed,
//! else `/proc/net/nf_conntrack` (kernels built with `NF_CONNTRACK_PROCFS`), both run in the
//! firewall's namespace. The two print one connection a line in the same words, the procfs
//! one with the layer-3 family in front:
//!
//! ```text
//! tcp      6 431999 ESTABLISHED src=10.0.0.2 dst=192.0.2.7 sport=40000 dport=443 src=... [ASSURED] ...
//! ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.0.2 dst=192.0.2.7 sport=40000 dport=443 ...
//! ```
//!
//! The first `src=`, `dst=` and `dport=` are the original direction (who initiated); the
//! numbers before them end with the protocol number and the seconds left.

use std::net::IpAddr;

use portolan_emit::nftables::NameRule;
use portolan_model::ir::{Initiator, IpProto};
use portolan_nft::Where;

/// One tracked connection, original direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// IP protocol number.
    pub proto: u8,
    /// TCP state (`ESTABLISHED`, `TIME_WAIT`, ...); `None` for protocols without one.
    pub state: Option<String>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub dport: Option<u16>,
}

/// One line of `conntrack -L` or `/proc/net/nf_conntrack`; `None` when it is not one.
pub fn parse_line(line: &str) -> Option<Entry> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let first_kv = tokens.iter().position(|t| t.contains('='))?;
    let head = &tokens[..first_kv];
    let nums: Vec<u64> = head.iter().filter_map(|t| t.parse().ok()).collect();
    if nums.len() < 2 {
        return None;
    }
    let proto = u8::try_from(nums[nums.len() - 2]).ok()?;
    let state = head
        .last()
        .filter(|t| t.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .map(|t| (*t).to_string());
    let value = |key: &str| {
        tokens[first_kv..]
            .iter()
            .find_map(|t| t.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
    };
    Some(Entry {
        proto,
        state,
        src: value("src")?.parse().ok()?,
        dst: value("dst")?.parse().ok()?,
        dport: value("dport").and_then(|p| p.parse().ok()),
    })
}

/// Every connection the kernel tracks in `at`.
pub fn read(at: &Where) -> Result<Vec<Entry>, String> {
    let text = match portolan_nft::exec::output(at.command("conntrack", &["-L"])) {
        Ok(o) if o.ok => o.stdout,
        // Not installed (in a namespace `ip netns exec` says so): the procfs table, which
        // needs no tool.
        Ok(o) if o.stderr.contains("No such file or directory") => read_proc(at)?,
        Ok(o) => return Err(format!("conntrack -L: {}", o.stderr.trim())),
        Err(_) => read_proc(at)?,
    };
    Ok(text.lines().filter_map(parse_line).collect())
}

fn read_proc(at: &Where) -> Result<String, String> {
    let o = portolan_nft::exec::output(at.command("cat", &["/proc/net/nf_conntrack"]))
        .map_err(|e| e.to_string())?;
    if o.ok {
        Ok(o.stdout)
    } else {
        Err(format!(
            "neither `conntrack` (Debian package conntrack) nor /proc/net/nf_conntrack: {}",
            o.stderr.trim()
        ))
    }
}

/// Whether `e` is a live connection of `rule`'s flow between `device` and `peer`: initiated
/// the way the rule says, of its protocol and (where it has ports) to one of its ports, and,
/// for TCP, not closing (`ESTABLISHED`, `SYN_SENT`, `SYN_RECV`). A connection of another flow
/// to the same peer keeps nothing open.
pub fn is_live_flow(e: &Entry, rule: &NameRule, device: IpAddr, peer: IpAddr) -> bool {
    let (src, dst) = match rule.initiator {
        Initiator::Device => (device, peer),
        Initiator::Peer => (peer, device),
    };
    if e.src != src || e.dst != dst || e.proto != rule.protocol.number() {
        return false;
    }
    if rule.protocol.has_ports()
        && !rule.ports.is_empty()
        && !e
            .dport
            .is_some_and(|p| rule.ports.iter().any(|r| r.contains(p)))
    {
        return false;
    }
    if rule.protocol == IpProto::TCP {
        return matches!(
            e.state.as_deref(),
            Some("ESTABLISHED" | "SYN_SENT" | "SYN_RECV")
        );
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan_emit::names::Family;
    use portolan_model::ir::{Peers, PortRange};

    // Lines as conntrack-tools 1.4.7 and this kernel's procfs print them (captured here).
    const CT: &str = "tcp      6 431998 ESTABLISHED src=10.70.0.10 dst=203.0.113.10 sport=41234 dport=443 src=203.0.113.10 dst=10.70.0.10 sport=443 dport=41234 [ASSURED] mark=0 use=1";
    const PROC: &str = "ipv4     2 tcp      6 118 TIME_WAIT src=10.70.0.10 dst=203.0.113.10 sport=41236 dport=443 src=203.0.113.10 dst=10.70.0.10 sport=443 dport=41236 [ASSURED] mark=0 zone=0 use=2";
    const UDP: &str = "udp      17 28 src=2001:db8::10 dst=2001:db8:1::5 sport=5683 dport=5684 [UNREPLIED] src=2001:db8:1::5 dst=2001:db8::10 sport=5684 dport=5683 mark=0 use=1";

    fn rule(proto: IpProto, port: u16) -> NameRule {
        NameRule {
            provenance: "p/f".into(),
            initiator: Initiator::Device,
            protocol: proto,
            ports: vec![PortRange::one(port)],
            peers: Peers::default(),
            sets: vec![(Family::V4, "s_v4".into())],
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn both_formats_parse_to_the_original_direction() {
        let e = parse_line(CT).expect("conntrack line");
        assert_eq!(
            e,
            Entry {
                proto: 6,
                state: Some("ESTABLISHED".into()),
                src: ip("10.70.0.10"),
                dst: ip("203.0.113.10"),
                dport: Some(443),
            }
        );
        let p = parse_line(PROC).expect("procfs line");
        assert_eq!((p.proto, p.state.as_deref()), (6, Some("TIME_WAIT")));
        let u = parse_line(UDP).expect("udp line");
        assert_eq!((u.proto, u.state, u.dport), (17, None, Some(5684)));
        assert_eq!(
            parse_line("conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown."),
            None
        );
    }

    #[test]
    fn only_a_live_connection_of_the_rules_own_flow_counts() {
        let (d, p) = (ip("10.70.0.10"), ip("203.0.113.10"));
        let e = parse_line(CT).expect("line");
        assert!(is_live_flow(&e, &rule(IpProto::TCP, 443), d, p));
        // Another port, protocol, device or direction: not this flow.
        assert!(!is_live_flow(&e, &rule(IpProto::TCP, 8443), d, p));
        assert!(!is_live_flow(&e, &rule(IpProto::UDP, 443), d, p));
        assert!(!is_live_flow(
            &e,
            &rule(IpProto::TCP, 443),
            ip("10.70.0.11"),
            p
        ));
        let mut back = rule(IpProto::TCP, 443);
        back.initiator = Initiator::Peer;
        assert!(!is_live_flow(&e, &back, d, p));
        // A closing connection keeps nothing open.
        let closing = parse_line(PROC).expect("line");
        assert!(!is_live_flow(&closing, &rule(IpProto::TCP, 443), d, p));
    }
}
