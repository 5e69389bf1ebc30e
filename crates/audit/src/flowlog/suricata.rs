//! Suricata `eve.json`: one JSON object per line, told apart by `event_type`.
//! <https://docs.suricata.io/en/latest/output/eve/eve-json-format.html>
//!
//! - `flow`: one per flow, logged when it ends; `src_ip`/`src_port` is the side that opened it
//!   (`pkts_toserver`, `bytes_toserver` are its counts), `flow.start`/`flow.end` its times,
//!   `icmp_type` for ICMP.
//! - `dns` answers (`type` `answer`, or `response` in eve format 3): every A/AAAA answer names
//!   its address with the queried name and its own owner name, within its TTL.
//! - `tls`: the client's SNI. Joined to its flow by `flow_id`, it names the flow's responder
//!   when no DNS answer did at the flow's start (DNS is resolved elsewhere, cached, or over
//!   an encrypted transport).
//! - `netflow`: one direction per event, folded like export records.
//!
//! Other event types (alerts, http, …) are read and ignored.

use std::io::BufRead;
use std::net::IpAddr;

use rustc_hash::FxHashMap;
use serde_json::Value;

use super::netflow::{Folder, Notes, Record};
use super::Sink;
use crate::capture::InputProblem;
use crate::decode::proto;
use crate::flows::{Evidence, ObservedFlow};
use crate::time::{self, Nanos, NANOS};

/// Suricata's times: `2026-12-02T11:00:00.123456+0000` (an offset without a colon).
fn when(v: Option<&Value>) -> Option<Nanos> {
    let s = v?.as_str()?;
    let fixed = match s
        .len()
        .checked_sub(5)
        .and_then(|i| s.get(i..).map(|t| (i, t)))
    {
        Some((i, tail))
            if (tail.starts_with('+') || tail.starts_with('-'))
                && tail[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            format!("{}{}:{}", &s[..i], &tail[..3], &tail[3..])
        }
        _ => s.to_string(),
    };
    time::parse(&fixed)
}

fn protocol(s: &str) -> Option<u8> {
    Some(match s.to_ascii_uppercase().as_str() {
        "TCP" => proto::TCP,
        "UDP" => proto::UDP,
        "ICMP" => proto::ICMP,
        "IPV6-ICMP" | "ICMPV6" => proto::ICMPV6,
        "SCTP" => proto::SCTP,
        "ESP" => proto::ESP,
        other => other.parse().ok()?,
    })
}

fn u64_at(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap_or(0)
}

/// Reads `eve.json`. Returns the lines read, the first problem and the notes.
pub fn read<R: BufRead>(input: R, sink: &mut Sink<'_>) -> (u64, Option<InputProblem>, Notes) {
    let mut flows: Vec<(Option<u64>, ObservedFlow)> = Vec::new();
    let mut sni: FxHashMap<u64, String> = FxHashMap::default();
    let mut folder = Folder::default();
    let mut notes = Notes::default();
    let names = &mut *sink.names;
    let (count, problem) = super::lines(input, |line| {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        let kind = v.get("event_type").and_then(Value::as_str).unwrap_or("");
        let flow_id = v.get("flow_id").and_then(Value::as_u64);
        let ts = when(v.get("timestamp"));
        match kind {
            "flow" | "netflow" => {
                let ip = |k: &str| -> Result<IpAddr, String> {
                    let s = v
                        .get(k)
                        .and_then(Value::as_str)
                        .ok_or(format!("no `{k}`"))?;
                    s.parse().map_err(|_| format!("`{s}` is not an address"))
                };
                let (src, dst) = (ip("src_ip")?, ip("dest_ip")?);
                let p = v.get("proto").and_then(Value::as_str).unwrap_or("");
                let p = protocol(p).ok_or_else(|| format!("`{p}` is not a protocol"))?;
                let port = |k: &str| {
                    v.get(k)
                        .and_then(Value::as_u64)
                        .and_then(|x| u16::try_from(x).ok())
                        .unwrap_or(0)
                };
                let empty = Value::Null;
                let body = v.get(kind).unwrap_or(&empty);
                let start = when(body.get("start")).or(ts);
                let end = when(body.get("end")).or(start);
                notes.records += 1;
                if kind == "netflow" {
                    let ms = |t: Nanos| t.div_euclid(1_000_000);
                    folder.add(&Record {
                        src: Some(src),
                        dst: Some(dst),
                        sport: port("src_port"),
                        dport: port("dest_port"),
                        proto: Some(p),
                        packets: u64_at(body, "pkts"),
                        bytes: u64_at(body, "bytes"),
                        start_ms: start.map(ms),
                        end_ms: end.map(ms),
                        icmp: v
                            .get("icmp_type")
                            .and_then(Value::as_u64)
                            .and_then(|t| u16::try_from(t).ok())
                            .map(|t| t << 8),
                        ..Record::default()
                    });
                    return Ok(());
                }
                let icmp = matches!(p, proto::ICMP | proto::ICMPV6);
                let (sp, dp) = if icmp {
                    (0, 0)
                } else {
                    (port("src_port"), port("dest_port"))
                };
                let mut f = ObservedFlow::new(p, (src, sp), (dst, dp));
                f.evidence = Evidence::Log;
                f.packets = [u64_at(body, "pkts_toserver"), u64_at(body, "pkts_toclient")];
                f.bytes = [
                    u64_at(body, "bytes_toserver"),
                    u64_at(body, "bytes_toclient"),
                ];
                f.first = start;
                f.last = end;
                if icmp {
                    f.icmp_type = v
                        .get("icmp_type")
                        .and_then(Value::as_u64)
                        .and_then(|t| u8::try_from(t).ok());
                }
                f.vlan = v
                    .get("vlan")
                    .and_then(|x| x.get(0))
                    .and_then(Value::as_u64)
                    .and_then(|x| u16::try_from(x).ok());
                flows.push((flow_id, f));
            }
            "dns" => {
                let Some(d) = v.get("dns") else {
                    return Ok(());
                };
                let t = d.get("type").and_then(Value::as_str).unwrap_or("");
                if t != "answer" && t != "response" {
                    return Ok(());
                }
                let Some(at) = ts else {
                    return Err("a DNS answer without a timestamp".into());
                };
                let asked = d
                    .get("rrname")
                    .or_else(|| d.get("queries").and_then(|q| q.get(0)?.get("rrname")))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                for a in d
                    .get("answers")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let rtype = a.get("rrtype").and_then(Value::as_str).unwrap_or("");
                    if rtype != "A" && rtype != "AAAA" {
                        continue;
                    }
                    let Some(addr) = a
                        .get("rdata")
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse::<IpAddr>().ok())
                    else {
                        continue;
                    };
                    let ttl = a
                        .get("ttl")
                        .and_then(Value::as_u64)
                        .and_then(|x| u32::try_from(x).ok())
                        .unwrap_or(0);
                    if let Some(q) = &asked {
                        names.add(addr, q, at, ttl);
                    }
                    if let Some(owner) = a.get("rrname").and_then(Value::as_str) {
                        names.add(addr, owner, at, ttl);
                    }
                }
                names.responses += 1;
            }
            "tls" => {
                let name = v
                    .get("tls")
                    .and_then(|t| t.get("sni"))
                    .and_then(Value::as_str);
                if let (Some(id), Some(n)) = (flow_id, name) {
                    sni.insert(id, n.to_string());
                }
            }
            _ => {}
        }
        Ok(())
    });
    for (id, f) in flows {
        if let Some(n) = id.and_then(|i| sni.get(&i)) {
            if let Some(t) = f.first {
                if names.at(f.responder, Some(t)).is_empty() {
                    let secs = f.last.map_or(0, |l| (l - t).div_euclid(NANOS));
                    names.add(
                        f.responder,
                        n,
                        t,
                        u32::try_from(secs + 1).unwrap_or(u32::MAX),
                    );
                }
            }
        }
        sink.flows.push(f);
    }
    for f in folder.finish() {
        sink.flows.push(f);
    }
    (count, problem, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_without_colon() {
        // 2026-12-02T11:00:01Z is 1796209201 s after the epoch (`date -u -d ... +%s`).
        assert_eq!(
            when(Some(&Value::from("2026-12-02T12:00:01.500000+0100"))),
            Some(1_796_209_201_500_000_000)
        );
    }
}
