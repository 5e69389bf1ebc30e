//! Remedies in the profile's terms: what to allow, from which device address, to which peer,
//! and which vendor row needs it — "allow TCP 443 and 4321 from 10.20.0.33 to
//! gk.sensorist.com — Oscar TempLog gateway, flow `cloud`". A remedy names exactly the
//! (host, port) pairs that failed, and the profile row as what it is: a `flow`, or an
//! alternative `group`.

use std::collections::BTreeMap;

use portolan_model::ir::{IpProto, PortRange};

/// The profile row a remedy is for: `flow `cloud-443``.
pub fn flow_row(id: &str) -> String {
    format!("flow `{id}`")
}

/// An alternative group as a remedy names it: `group `cloud``.
pub fn group_row(id: &str) -> String {
    format!("group `{id}`")
}

/// `a` or `an` before `word`, by its first letter as read aloud (acronyms like `IKE_SA_INIT`,
/// `NTP`, `mds-tcp` included: a vowel sound starts `an`).
pub fn article(word: &str) -> &'static str {
    let first = word.chars().next().unwrap_or('x');
    let upper_acronym = word
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .is_some_and(|w| w.len() > 1 && w.chars().all(|c| c.is_ascii_uppercase()));
    if upper_acronym {
        // Letters spelt out: "an NTP", "an F…", "an S…", "a D…"; IKE is read as a word.
        if word.starts_with("IKE") {
            return "an";
        }
        return if "AEFHILMNORSX".contains(first) {
            "an"
        } else {
            "a"
        };
    }
    if "aeiouAEIOU".contains(first) {
        "an"
    } else {
        "a"
    }
}

/// (host, port) pairs grouped into clauses: each host with its ports, hosts with the same ports
/// together, in host order.
fn clauses(pairs: &[(String, Option<u16>)]) -> Vec<(Vec<PortRange>, Vec<String>)> {
    let mut by_host: BTreeMap<&str, Vec<PortRange>> = BTreeMap::new();
    for (h, p) in pairs {
        let e = by_host.entry(h.as_str()).or_default();
        if let Some(p) = p {
            e.push(PortRange { lo: *p, hi: *p });
        }
    }
    let mut out: Vec<(Vec<PortRange>, Vec<String>)> = Vec::new();
    for (h, ports) in by_host {
        let ports = merge_ports(ports);
        match out.iter_mut().find(|(p, _)| *p == ports) {
            Some(e) => e.1.push(h.to_string()),
            None => out.push((ports, vec![h.to_string()])),
        }
    }
    out
}

fn ports_suffix(ports: &[PortRange]) -> String {
    if ports.is_empty() {
        String::new()
    } else {
        format!(" {}", ports_text(ports))
    }
}

/// `allow TCP 443 from 10.20.0.33 to gk.sensorist.com and TCP 4321 to gk.sensorist.net —
/// Oscar TempLog gateway, group `cloud``: exactly the pairs given, not their cross product.
pub fn allow_pairs(
    protocol: u8,
    pairs: &[(String, Option<u16>)],
    from: &str,
    product: &str,
    row: &str,
) -> String {
    let parts: Vec<String> = clauses(pairs)
        .iter()
        .enumerate()
        .map(|(i, (ports, hosts))| {
            let head = if i == 0 {
                format!(" from {from}")
            } else {
                String::new()
            };
            format!(
                "{}{}{head} to {}",
                proto_name(protocol),
                ports_suffix(ports),
                and_list(hosts)
            )
        })
        .collect();
    format!("allow {} — {product}, {row}", and_list(&parts))
}

/// [`no_listener`] for exactly the pairs given.
pub fn no_listener_pairs(
    protocol: u8,
    pairs: &[(String, Option<u16>)],
    product: &str,
    row: &str,
) -> String {
    let parts: Vec<String> = clauses(pairs)
        .iter()
        .map(|(ports, hosts)| {
            format!(
                "{}{} at {}",
                proto_name(protocol),
                ports_suffix(ports),
                and_list(hosts)
            )
        })
        .collect();
    let answer = match protocol {
        6 => "a TCP reset",
        _ => "ICMP port unreachable",
    };
    format!(
        "check the service on {}: the peer answered with {answer}, so the packet got through, but nothing listens on that port — is the service running there, and is the right host bound? — {product}, {row}",
        and_list(&parts)
    )
}

/// `TCP`, `UDP`, `ICMP`, `ICMPv6`, `ESP`, or `protocol 115` for one without a name.
pub fn proto_name(n: u8) -> String {
    match IpProto::new(n) {
        IpProto::ICMPV6 => "ICMPv6".into(),
        p => match p.name() {
            Some(name) => name.to_ascii_uppercase(),
            None => format!("protocol {n}"),
        },
    }
}

/// Lowercase protocol name for JSON (`tcp`, `udp`, `icmp`).
pub fn proto_key(n: u8) -> String {
    proto_name(n).to_ascii_lowercase()
}

/// `a`, `a and b`, `a, b and c`.
pub fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [a] => a.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

pub fn ports_text(ports: &[PortRange]) -> String {
    let v: Vec<String> = ports.iter().map(ToString::to_string).collect();
    and_list(&v)
}

/// `allow TCP 443 and 4321 from 10.20.0.33 to gk.sensorist.com — Oscar TempLog gateway, flow
/// `cloud`` (`row` from [`flow_row`] or [`group_row`]).
pub fn allow(
    protocol: u8,
    ports: &[PortRange],
    from: &str,
    to: &[String],
    product: &str,
    row: &str,
) -> String {
    format!(
        "allow {}{} from {from} to {} — {product}, {row}",
        proto_name(protocol),
        ports_suffix(ports),
        and_list(to)
    )
}

/// For a peer that answered that nothing listens (a TCP reset, an ICMP port unreachable):
/// the packet got through, so the firewall is not what to change. `check the service on TCP
/// 3003 at 198.51.100.30: the peer answered with a TCP reset, …`.
pub fn no_listener(
    protocol: u8,
    ports: &[PortRange],
    to: &[String],
    product: &str,
    row: &str,
) -> String {
    let ports = ports_suffix(ports);
    let answer = match protocol {
        6 => "a TCP reset",
        _ => "ICMP port unreachable",
    };
    format!(
        "check the service on {}{ports} at {}: the peer answered with {answer}, so the packet got through, but nothing listens on that port — is the service running there, and is the right host bound? — {product}, {row}",
        proto_name(protocol),
        and_list(to)
    )
}

/// For a probe the probing machine itself could not send (`detail`: the OS's words).
pub fn not_sent(detail: &str, product: &str, row: &str) -> String {
    format!(
        "the probe could not send ({detail}): fix the probing machine's own address, routes or firewall and probe again; this says nothing about the site's firewall — {product}, {row}"
    )
}

/// Merges ports into sorted, non-overlapping ranges.
pub fn merge_ports(mut v: Vec<PortRange>) -> Vec<PortRange> {
    v.sort();
    let mut out: Vec<PortRange> = Vec::new();
    for r in v {
        match out.last_mut() {
            Some(l) if u32::from(r.lo) <= u32::from(l.hi) + 1 => l.hi = l.hi.max(r.hi),
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_the_issue() {
        let ports = merge_ports(vec![
            PortRange { lo: 4321, hi: 4321 },
            PortRange { lo: 443, hi: 443 },
        ]);
        assert_eq!(
            allow(6, &ports, "10.20.0.33", &["gk.sensorist.com".into()], "Oscar TempLog gateway", &flow_row("cloud")),
            "allow TCP 443 and 4321 from 10.20.0.33 to gk.sensorist.com — Oscar TempLog gateway, flow `cloud`"
        );
        assert_eq!(
            no_listener(17, &[PortRange { lo: 5140, hi: 5140 }], &["198.51.100.50".into()], "WCC Lite", &flow_row("telemetry")),
            "check the service on UDP 5140 at 198.51.100.50: the peer answered with ICMP port unreachable, so the packet got through, but nothing listens on that port — is the service running there, and is the right host bound? — WCC Lite, flow `telemetry`"
        );
        assert_eq!(
            allow_pairs(
                6,
                &[
                    ("gk.sensorist.net".into(), Some(4321)),
                    ("gk.sensorist.com".into(), Some(443)),
                ],
                "10.20.0.33",
                "Oscar TempLog gateway",
                &group_row("cloud")
            ),
            "allow TCP 443 from 10.20.0.33 to gk.sensorist.com and TCP 4321 to gk.sensorist.net — Oscar TempLog gateway, group `cloud`"
        );
        assert_eq!(
            allow_pairs(
                6,
                &[
                    ("b".into(), Some(443)),
                    ("a".into(), Some(443)),
                    ("a".into(), Some(4321))
                ],
                "10.20.0.33",
                "P",
                &flow_row("f")
            ),
            "allow TCP 443 and 4321 from 10.20.0.33 to a and TCP 443 to b — P, flow `f`"
        );
        assert_eq!(article("IKE_SA_INIT"), "an");
        assert_eq!(article("NTP client request"), "an");
        assert_eq!(article("DNS query"), "a");
        assert_eq!(article("CoAP ping"), "a");
        assert_eq!(article("empty datagram"), "an");
        assert_eq!(article("DTLS ClientHello"), "a");
        assert_eq!(
            and_list(&["a".into(), "b".into(), "c".into()]),
            "a, b and c"
        );
        assert_eq!(
            merge_ports(vec![
                PortRange { lo: 3001, hi: 3002 },
                PortRange { lo: 3003, hi: 3003 }
            ]),
            vec![PortRange { lo: 3001, hi: 3003 }]
        );
    }
}
