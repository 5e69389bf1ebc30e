//! `conntrack -L` and `conntrack -E` output (conntrack-tools). The first tuple of a line is the
//! original direction: its source initiated. Events of one connection (`[NEW]`, `[UPDATE]`,
//! `[DESTROY]`) merge into one flow; counters (with `nf_conntrack_acct`) take the largest seen,
//! times come from `-o timestamp` (`[1700000000.123456]`) when present.
//!
//! ```text
//! tcp      6 431999 ESTABLISHED src=10.20.0.10 dst=198.51.100.10 sport=40000 dport=443 packets=5 bytes=400 src=198.51.100.10 dst=10.20.0.10 sport=443 dport=40000 packets=4 bytes=300 [ASSURED] mark=0 use=1
//! [1700000000.123456]     [NEW] udp      17 30 src=10.20.0.10 dst=10.99.0.123 sport=123 dport=123 [UNREPLIED] src=10.99.0.123 dst=10.20.0.10 sport=123 dport=123
//! ```

use std::io::BufRead;
use std::net::IpAddr;

use rustc_hash::FxHashMap;

use super::Sink;
use crate::capture::InputProblem;
use crate::decode::proto;
use crate::flows::{Evidence, ObservedFlow};
use crate::time::{self, Nanos};

const L4: [&str; 9] = [
    "tcp", "udp", "icmp", "icmpv6", "sctp", "dccp", "gre", "udplite", "unknown",
];

/// Whether a line looks like conntrack output.
pub fn is_line(line: &str) -> bool {
    let mut toks = line
        .split_whitespace()
        .skip_while(|t| t.starts_with('[') && t.ends_with(']'));
    let first = toks.next().unwrap_or("");
    (L4.contains(&first) || first == "ipv4" || first == "ipv6")
        && line.contains(" src=")
        && line.contains(" dst=")
}

#[derive(Default)]
struct Tuple {
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    sport: u16,
    dport: u16,
    icmp_type: Option<u8>,
    id: u16,
    spi: Option<u32>,
    packets: u64,
    bytes: u64,
}

fn parse_line(line: &str) -> Result<(Option<Nanos>, u8, Tuple, Tuple), String> {
    let mut ts = None;
    let mut p: Option<u8> = None;
    let mut tuples: [Tuple; 2] = Default::default();
    let mut which: Option<usize> = None;
    let mut prev = "";
    for tok in line.split_whitespace() {
        if let Some(inner) = tok.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            if let Some(t) = time::parse_epoch(inner) {
                ts = Some(t);
            }
            continue;
        }
        if let Some((k, v)) = tok.split_once('=') {
            if k == "src" {
                which = Some(which.map_or(0, |_| 1));
            }
            let Some(w) = which else { continue };
            let t = &mut tuples[w];
            let num = || {
                v.parse::<u64>()
                    .map_err(|_| format!("`{tok}` is not a number"))
            };
            match k {
                "src" => t.src = Some(v.parse().map_err(|_| format!("`{v}` is not an address"))?),
                "dst" => t.dst = Some(v.parse().map_err(|_| format!("`{v}` is not an address"))?),
                "sport" => t.sport = u16::try_from(num()?).map_err(|_| "port out of range")?,
                "dport" => t.dport = u16::try_from(num()?).map_err(|_| "port out of range")?,
                "type" => t.icmp_type = u8::try_from(num()?).ok(),
                "id" => t.id = u16::try_from(num()?).unwrap_or(0),
                "spi" => {
                    t.spi = u32::from_str_radix(v.trim_start_matches("0x"), 16)
                        .ok()
                        .or_else(|| v.parse().ok())
                }
                "packets" => t.packets = num()?,
                "bytes" => t.bytes = num()?,
                _ => {}
            }
        } else if p.is_none() && L4.contains(&prev) {
            // `tcp      6 …`: the number after the layer-4 name.
            p = tok.parse().ok();
        }
        prev = tok;
    }
    let p = p.ok_or("no layer-4 protocol number")?;
    let [orig, reply] = tuples;
    if orig.src.is_none() || orig.dst.is_none() {
        return Err("no original tuple (src=, dst=)".into());
    }
    Ok((ts, p, orig, reply))
}

/// Reads conntrack output.
pub fn read<R: BufRead>(input: R, sink: &mut Sink<'_>) -> (u64, Option<InputProblem>) {
    let mut seen: FxHashMap<(u8, IpAddr, IpAddr, u16, u16, u16), ObservedFlow> =
        FxHashMap::default();
    let mut order: Vec<(u8, IpAddr, IpAddr, u16, u16, u16)> = Vec::new();
    let result = super::lines(input, |line| {
        let (ts, p, o, r) = parse_line(line)?;
        let (Some(src), Some(dst)) = (o.src, o.dst) else {
            return Err("no original tuple".into());
        };
        let key = (p, src, dst, o.sport, o.dport, o.id);
        let f = seen.entry(key).or_insert_with(|| {
            order.push(key);
            let mut f = ObservedFlow::new(p, (src, o.sport), (dst, o.dport));
            f.evidence = Evidence::Log;
            f.icmp_type = match (p, o.icmp_type) {
                (proto::ICMP, Some(0)) => Some(8),
                (proto::ICMPV6, Some(129)) => Some(128),
                (_, t) => t,
            };
            f.spi = o.spi;
            f
        });
        f.packets = [f.packets[0].max(o.packets), f.packets[1].max(r.packets)];
        f.bytes = [f.bytes[0].max(o.bytes), f.bytes[1].max(r.bytes)];
        if let Some(t) = ts {
            f.first = Some(f.first.map_or(t, |x| x.min(t)));
            f.last = Some(f.last.map_or(t, |x| x.max(t)));
        }
        Ok(())
    });
    for k in order {
        if let Some(f) = seen.remove(&k) {
            sink.flows.push(f);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_line() {
        let l = "ipv4     2 tcp      6 431999 ESTABLISHED src=10.20.0.10 dst=198.51.100.10 sport=40000 dport=443 packets=5 bytes=400 src=198.51.100.10 dst=10.20.0.10 sport=443 dport=40000 packets=4 bytes=300 [ASSURED] mark=0 use=1";
        assert!(is_line(l));
        let (ts, p, o, r) = parse_line(l).expect("parses");
        assert_eq!((ts, p, o.dport, o.packets, r.bytes), (None, 6, 443, 5, 300));
        let e = "[1700000000.5]\t[NEW] icmp     1 30 src=10.20.0.10 dst=10.99.0.1 type=8 code=0 id=7 [UNREPLIED] src=10.99.0.1 dst=10.20.0.10 type=0 code=0 id=7";
        assert!(is_line(e));
        let (ts, p, o, _) = parse_line(e).expect("parses");
        assert_eq!(
            (ts, p, o.icmp_type, o.id),
            (Some(1_700_000_000_500_000_000), 1, Some(8), 7)
        );
    }
}
