//! Remedies in the profile's terms: what to allow, from which device address, to which peer,
//! and which vendor row needs it — "allow TCP 443 and 4321 from 10.20.0.33 to
//! gk.sensorist.com — Oscar TempLog gateway, flow `cloud`".

use portolan_model::ir::PortRange;

/// `TCP`, `UDP`, `ICMP`, `ESP`, or `protocol 132`.
pub fn proto_name(n: u8) -> String {
    match n {
        1 => "ICMP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        47 => "GRE".into(),
        50 => "ESP".into(),
        51 => "AH".into(),
        58 => "ICMPv6".into(),
        132 => "SCTP".into(),
        n => format!("protocol {n}"),
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
/// `cloud``.
pub fn allow(
    protocol: u8,
    ports: &[PortRange],
    from: &str,
    to: &[String],
    product: &str,
    flow: &str,
) -> String {
    let ports = if ports.is_empty() {
        String::new()
    } else {
        format!(" {}", ports_text(ports))
    };
    format!(
        "allow {}{ports} from {from} to {} — {product}, flow `{flow}`",
        proto_name(protocol),
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
    flow: &str,
) -> String {
    let ports = if ports.is_empty() {
        String::new()
    } else {
        format!(" {}", ports_text(ports))
    };
    let answer = match protocol {
        6 => "a TCP reset",
        _ => "ICMP port unreachable",
    };
    format!(
        "check the service on {}{ports} at {}: the peer answered with {answer}, so the packet got through, but nothing listens on that port — is the service running there, and is the right host bound? — {product}, flow `{flow}`",
        proto_name(protocol),
        and_list(to)
    )
}

/// For a probe the probing machine itself could not send (`detail`: the OS's words).
pub fn not_sent(detail: &str, product: &str, flow: &str) -> String {
    format!(
        "the probe could not send ({detail}): fix the probing machine's own address, routes or firewall and probe again; this says nothing about the site's firewall — {product}, flow `{flow}`"
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
            allow(6, &ports, "10.20.0.33", &["gk.sensorist.com".into()], "Oscar TempLog gateway", "cloud"),
            "allow TCP 443 and 4321 from 10.20.0.33 to gk.sensorist.com — Oscar TempLog gateway, flow `cloud`"
        );
        assert_eq!(
            no_listener(17, &[PortRange { lo: 5140, hi: 5140 }], &["198.51.100.50".into()], "WCC Lite", "telemetry"),
            "check the service on UDP 5140 at 198.51.100.50: the peer answered with ICMP port unreachable, so the packet got through, but nothing listens on that port — is the service running there, and is the right host bound? — WCC Lite, flow `telemetry`"
        );
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
