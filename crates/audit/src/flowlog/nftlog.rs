//! Kernel log lines of the ruleset Portolan emits: each is one packet the firewall dropped,
//! and its prefix names the device group (`portolan <group>: `) or says `portolan unmatched: `.
//! The rest of the line is the kernel's `nf_log` format (`SRC= DST= PROTO= SPT= DPT=`, `TYPE=`
//! `CODE=` `ID=` for ICMP, `SPI=` for ESP). Packets of one 5-tuple merge into one flow, its
//! initiator the sender of the first. Times are read from a leading RFC 3339 timestamp
//! (`journalctl -o short-iso-precise`, rsyslog's high-precision format); syslog's
//! year-less stamps and `dmesg`'s uptime are not wall-clock times, so such flows have none.

use std::io::BufRead;
use std::net::IpAddr;

use rustc_hash::FxHashMap;

use super::Sink;
use crate::capture::InputProblem;
use crate::decode::proto;
use crate::flows::{Evidence, ObservedFlow};
use crate::time::{self, Nanos};

/// Whether a line carries a Portolan log prefix and a packet.
pub fn is_line(line: &str) -> bool {
    line.contains("portolan ") && line.contains(" SRC=") && line.contains(" DST=")
}

struct Logged {
    group: String,
    ts: Option<Nanos>,
    p: u8,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    icmp_type: Option<u8>,
    id: u32,
    len: u64,
}

fn leading_time(line: &str) -> Option<Nanos> {
    let first = line.split_whitespace().next()?;
    if let Some(t) = time::parse(first) {
        return Some(t);
    }
    // journalctl's `+0000` offset has no colon.
    // A cut inside a multi-byte character is no offset (and must not panic).
    let (body, off) = first.split_at_checked(first.len().checked_sub(5)?)?;
    if off.starts_with(['+', '-']) && off[1..].bytes().all(|b| b.is_ascii_digit()) {
        return time::parse(&format!("{body}{}:{}", &off[..3], &off[3..]));
    }
    None
}

fn parse_line(line: &str) -> Result<Logged, String> {
    let at = line.find("portolan ").ok_or("no `portolan ` log prefix")?;
    let rest = &line[at + "portolan ".len()..];
    let (group, fields) = rest.split_once(": ").ok_or("no `: ` after the group")?;
    // The IP header's `ID=` comes before `PROTO=`, ICMP's echo `ID=` after it.
    let (ip_part, l4_part) = match fields.find(" PROTO=") {
        Some(i) => fields.split_at(i),
        None => (fields, ""),
    };
    let map = |part: &'_ str| {
        let mut m = FxHashMap::default();
        for tok in part.split_whitespace() {
            if let Some((k, v)) = tok.split_once('=') {
                m.entry(k.to_string()).or_insert(v.to_string());
            }
        }
        m
    };
    let (ip, get) = (map(ip_part), map(l4_part));
    let addr = |k: &str| -> Result<IpAddr, String> {
        ip.get(k)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("`{k}=` is missing or not an address"))
    };
    let num = |k: &str| get.get(k).and_then(|v| v.parse::<u64>().ok());
    let p = match get.get("PROTO").map(String::as_str) {
        Some("TCP") => proto::TCP,
        Some("UDP") => proto::UDP,
        Some("UDPLITE") => 136,
        Some("SCTP") => proto::SCTP,
        Some("ICMP") => proto::ICMP,
        Some("ICMPv6") => proto::ICMPV6,
        Some("ESP") => proto::ESP,
        Some("AH") => proto::AH,
        Some(n) => n
            .parse()
            .map_err(|_| format!("protocol `{n}` is not known"))?,
        None => return Err("`PROTO=` is missing".into()),
    };
    let port = |k: &str| num(k).and_then(|v| u16::try_from(v).ok()).unwrap_or(0);
    let spi = get
        .get("SPI")
        .and_then(|v| u32::from_str_radix(v.trim_start_matches("0x"), 16).ok());
    Ok(Logged {
        group: group.trim().to_string(),
        ts: leading_time(line),
        p,
        src: addr("SRC")?,
        dst: addr("DST")?,
        sport: port("SPT"),
        dport: port("DPT"),
        icmp_type: num("TYPE").and_then(|v| u8::try_from(v).ok()),
        id: spi.unwrap_or_else(|| u32::from(port("ID"))),
        len: ip.get("LEN").and_then(|v| v.parse().ok()).unwrap_or(0),
    })
}

type Key = (u8, IpAddr, IpAddr, u16, u16, u32);

/// Reads nftables log lines.
pub fn read<R: BufRead>(input: R, sink: &mut Sink<'_>) -> (u64, Option<InputProblem>) {
    let mut seen: FxHashMap<Key, usize> = FxHashMap::default();
    let mut flows: Vec<ObservedFlow> = Vec::new();
    let result = super::lines(input, |line| {
        if !line.contains("portolan ") {
            return Ok(());
        }
        let l = parse_line(line)?;
        let icmp = matches!(l.p, proto::ICMP | proto::ICMPV6);
        let id = if icmp || l.p == proto::ESP { l.id } else { 0 };
        let fwd: Key = (l.p, l.src, l.dst, l.sport, l.dport, id);
        let rev: Key = (l.p, l.dst, l.src, l.dport, l.sport, id);
        let (idx, dir) = match (seen.get(&fwd), seen.get(&rev)) {
            (Some(&i), _) => (i, 0),
            (None, Some(&i)) if l.p != proto::ESP => (i, 1),
            _ => {
                let mut f = ObservedFlow::new(l.p, (l.src, l.sport), (l.dst, l.dport));
                f.evidence = Evidence::Log;
                f.logged_group = Some(l.group.clone());
                f.icmp_type = match (l.p, l.icmp_type) {
                    (proto::ICMP, Some(0)) => Some(8),
                    (proto::ICMPV6, Some(129)) => Some(128),
                    (_, t) => t,
                };
                if l.p == proto::ESP {
                    f.spi = Some(l.id);
                }
                flows.push(f);
                seen.insert(fwd, flows.len() - 1);
                (flows.len() - 1, 0)
            }
        };
        let f = &mut flows[idx];
        f.packets[dir] = f.packets[dir].saturating_add(1);
        f.bytes[dir] = f.bytes[dir].saturating_add(l.len);
        if let Some(t) = l.ts {
            f.first = Some(f.first.map_or(t, |x| x.min(t)));
            f.last = Some(f.last.map_or(t, |x| x.max(t)));
        }
        Ok(())
    });
    for f in flows {
        sink.flows.push(f);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_line() {
        let l = "2026-11-05T10:00:00.250000+0000 fw kernel: portolan lrr-ipsec: IN=lan0 OUT=wan0 MAC=00:11 SRC=10.20.0.10 DST=198.51.100.99 LEN=60 TOS=0x00 PREC=0x00 TTL=63 ID=54321 DF PROTO=TCP SPT=40000 DPT=443 WINDOW=64240 RES=0x00 SYN URGP=0";
        assert!(is_line(l));
        let p = parse_line(l).expect("parses");
        assert_eq!(p.group, "lrr-ipsec");
        assert_eq!((p.p, p.sport, p.dport, p.len), (6, 40000, 443, 60));
        assert_eq!(
            p.ts.map(time::rfc3339).as_deref(),
            Some("2026-11-05T10:00:00.25Z")
        );
    }

    /// Found by fuzzing: a first token whose last five bytes start inside a multi-byte
    /// character (here `é`, two bytes) panicked in `split_at`.
    #[test]
    fn timestamp_cut_inside_a_character_is_no_time() {
        assert_eq!(leading_time("abc\u{e9}1234 fw kernel:"), None);
        assert_eq!(leading_time("\u{fffd}\u{fffd}"), None);
    }

    /// Found by fuzzing: `LEN=` at u64::MAX overflowed the flow's byte count.
    #[test]
    fn huge_lengths_saturate() {
        let l =
            "portolan g: SRC=10.0.0.1 DST=10.0.0.2 LEN=18446744073709551615 PROTO=UDP SPT=1 DPT=2";
        let text = format!("{l}\n{l}\n");
        let (mut flows, mut names) = (crate::flows::FlowTable::new(), crate::dns::Names::new());
        let mut sink = Sink {
            flows: &mut flows,
            names: &mut names,
        };
        let (count, problem) = read(text.as_bytes(), &mut sink);
        assert_eq!((count, problem), (2, None));
        let flows = flows.into_flows();
        assert_eq!(flows.len(), 1);
        assert_eq!(flows[0].bytes, [u64::MAX, 0]);
        assert_eq!(flows[0].packets, [2, 0]);
    }
}
