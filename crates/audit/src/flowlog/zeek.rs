//! Zeek logs: `conn.log` (one record per connection; the originator is the initiator) and
//! `dns.log` (answers with their TTLs, which name addresses as DNS answers in a capture do),
//! tab-separated with `#fields` headers, or JSON lines.
//!
//! <https://docs.zeek.org/en/master/logs/conn.html>, <https://docs.zeek.org/en/master/logs/dns.html>

use std::collections::HashMap;
use std::io::BufRead;
use std::net::IpAddr;

use serde_json::Value;

use super::Sink;
use crate::capture::InputProblem;
use crate::decode::proto;
use crate::flows::{Evidence, ObservedFlow};
use crate::time::{self, Nanos, NANOS};

/// One record, whatever the encoding: field name → text value.
trait Record {
    fn get(&self, field: &str) -> Option<String>;
}

struct Tsv<'a> {
    fields: &'a HashMap<String, usize>,
    values: Vec<&'a str>,
    unset: &'a str,
    empty: &'a str,
}

impl Record for Tsv<'_> {
    fn get(&self, field: &str) -> Option<String> {
        let v = *self.values.get(*self.fields.get(field)?)?;
        if v == self.unset {
            return None;
        }
        if v == self.empty {
            return Some(String::new());
        }
        Some(v.to_string())
    }
}

impl Record for serde_json::Map<String, Value> {
    fn get(&self, field: &str) -> Option<String> {
        match self.get(field)? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            Value::Array(a) => Some(
                a.iter()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            other => Some(other.to_string()),
        }
    }
}

fn unescape(s: &str) -> String {
    // `#separator \x09`
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("\\x") {
        out.push_str(&rest[..i]);
        match rest
            .get(i + 2..i + 4)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            Some(b) => {
                out.push(char::from(b));
                rest = &rest[i + 4..];
            }
            None => {
                out.push_str("\\x");
                rest = &rest[i + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Reads a tab-separated Zeek log (`conn` or `dns`, told by `#path` or by its fields).
pub fn read_tsv<R: BufRead>(input: R, sink: &mut Sink<'_>) -> (u64, Option<InputProblem>) {
    let mut sep = "\t".to_string();
    let mut set_sep = ",".to_string();
    let mut unset = "-".to_string();
    let mut empty = "(empty)".to_string();
    let mut fields: HashMap<String, usize> = HashMap::new();
    super::lines(input, |line| {
        if let Some(rest) = line.strip_prefix('#') {
            let (k, v) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
            match k {
                "separator" => sep = unescape(v.trim()),
                "set_separator" => set_sep = v.to_string(),
                "unset_field" => unset = v.to_string(),
                "empty_field" => empty = v.to_string(),
                "fields" => {
                    fields = v
                        .split(sep.as_str())
                        .enumerate()
                        .map(|(i, f)| (f.to_string(), i))
                        .collect();
                }
                _ => {}
            }
            return Ok(());
        }
        if fields.is_empty() {
            return Err("a record before the `#fields` header".into());
        }
        let rec = Tsv {
            fields: &fields,
            values: line.split(sep.as_str()).collect(),
            unset: &unset,
            empty: &empty,
        };
        if rec.values.len() < fields.len() {
            return Err(format!(
                "{} fields where the header names {}",
                rec.values.len(),
                fields.len()
            ));
        }
        record(&rec, &set_sep, sink)
    })
}

/// Reads Zeek JSON lines.
pub fn read_json<R: BufRead>(input: R, sink: &mut Sink<'_>) -> (u64, Option<InputProblem>) {
    super::lines(input, |line| {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(m) = v else {
            return Err("not a JSON object".into());
        };
        record(&m, ",", sink)
    })
}

fn ts(r: &dyn Record, field: &str) -> Option<Nanos> {
    time::parse(&r.get(field)?)
}

fn record(r: &dyn Record, set_sep: &str, sink: &mut Sink<'_>) -> Result<(), String> {
    if r.get("query").is_some() || r.get("answers").is_some() {
        return dns(r, set_sep, sink);
    }
    let addr = |f: &str| -> Result<IpAddr, String> {
        r.get(f)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("`{f}` is missing or not an address"))
    };
    let port = |f: &str| -> Result<u16, String> {
        r.get(f)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("`{f}` is missing or not a port"))
    };
    let (oh, rh) = (addr("id.orig_h")?, addr("id.resp_h")?);
    let (op, rp) = (port("id.orig_p")?, port("id.resp_p")?);
    let p = match r.get("proto").as_deref() {
        Some("tcp") => proto::TCP,
        Some("udp") => proto::UDP,
        Some("icmp") if oh.is_ipv6() => proto::ICMPV6,
        Some("icmp") => proto::ICMP,
        Some(other) => return Err(format!("protocol `{other}` is not known")),
        None => return Err("`proto` is missing".into()),
    };
    let count = |f: &str| r.get(f).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    let mut f = if p == proto::ICMP || p == proto::ICMPV6 {
        // Zeek puts the ICMP type in orig_p and the code in resp_p.
        let mut f = ObservedFlow::new(p, (oh, 0), (rh, 0));
        let t = u8::try_from(op).ok();
        f.icmp_type = match (p, t) {
            (proto::ICMP, Some(0)) => Some(8),
            (proto::ICMPV6, Some(129)) => Some(128),
            (_, t) => t,
        };
        f
    } else {
        ObservedFlow::new(p, (oh, op), (rh, rp))
    };
    f.evidence = match (p, r.get("conn_state").as_deref()) {
        (proto::TCP, Some("OTH")) => Evidence::Midstream,
        _ => Evidence::Log,
    };
    f.packets = [count("orig_pkts"), count("resp_pkts")];
    f.bytes = [count("orig_ip_bytes"), count("resp_ip_bytes")];
    f.first = ts(r, "ts");
    let dur = r
        .get("duration")
        .and_then(|d| time::parse_epoch(&d))
        .unwrap_or(0);
    f.last = f.first.map(|t| t.saturating_add(dur));
    f.vlan = r.get("vlan").and_then(|v| v.parse().ok());
    sink.flows.push(f);
    Ok(())
}

fn dns(r: &dyn Record, set_sep: &str, sink: &mut Sink<'_>) -> Result<(), String> {
    let Some(query) = r.get("query") else {
        return Ok(());
    };
    let Some(at) = ts(r, "ts") else {
        return Err("`ts` is missing".into());
    };
    let answers = r.get("answers").unwrap_or_default();
    let ttls = r.get("TTLs").unwrap_or_default();
    let ttls: Vec<u32> = ttls
        .split(set_sep)
        .map(|t| {
            time::parse_epoch(t.trim())
                .map(|n| u32::try_from(n / NANOS).unwrap_or(u32::MAX))
                .unwrap_or(0)
        })
        .collect();
    // Answers hold CNAME targets as names and addresses; the chain shares the query's name.
    let mut chain: Vec<String> = vec![query];
    let mut min_ttl = u32::MAX;
    // Bounded as in `dns::Names::message`: each name is paid for once per address.
    let mut cut = false;
    for (i, a) in answers.split(set_sep).map(str::trim).enumerate() {
        if a.is_empty() {
            continue;
        }
        let ttl = ttls.get(i).copied().unwrap_or(0);
        match a.parse::<IpAddr>() {
            Ok(addr) => {
                for n in &chain {
                    sink.names.add(addr, n, at, ttl.min(min_ttl));
                }
            }
            Err(_) if chain.len() == crate::dns::MAX_CHAIN => cut = true,
            Err(_) => {
                min_ttl = min_ttl.min(ttl);
                chain.push(a.to_string());
            }
        }
    }
    sink.names.responses += 1;
    if cut {
        sink.names.chains_cut += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::{Names, MAX_CHAIN};
    use crate::flows::FlowTable;

    fn read(text: &str) -> (FlowTable, Names, u64, Option<InputProblem>) {
        let (mut flows, mut names) = (FlowTable::new(), Names::new());
        let mut sink = Sink {
            flows: &mut flows,
            names: &mut names,
        };
        let (count, problem) = read_json(text.as_bytes(), &mut sink);
        (flows, names, count, problem)
    }

    /// Found by fuzzing: a `ts` near the end of i64 nanoseconds plus a `duration` overflowed.
    #[test]
    fn huge_time_plus_duration_saturates() {
        let line = r#"{"ts":9223372036.0,"id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"10.0.0.2","id.resp_p":2,"proto":"udp","duration":1000.5}"#;
        let (flows, _, count, problem) = read(line);
        assert_eq!((count, problem), (1, None));
        let f = flows.into_flows();
        assert_eq!(f[0].first, Some(9_223_372_036_000_000_000));
        assert_eq!(f[0].last, Some(i64::MAX));
    }

    /// Found by fuzzing: one dns.log line with 1,500 names and 1,500 addresses took ~21 s.
    /// The chain is cut at MAX_CHAIN names: each address carries the query and the first
    /// MAX_CHAIN - 1 CNAME targets.
    #[test]
    fn long_answer_lists_are_bounded() {
        let mut answers: Vec<String> = (0..1500).map(|i| format!("\"c{i}.test\"")).collect();
        answers.extend((0..1500).map(|i| format!("\"10.1.{}.{}\"", i / 250, i % 250)));
        let line = format!(
            r#"{{"ts":1700000000.0,"query":"q.test","answers":[{}],"TTLs":[]}}"#,
            answers.join(",")
        );
        let (_, names, count, problem) = read(&line);
        assert_eq!((count, problem), (1, None));
        let addr: IpAddr = "10.1.5.249".parse().expect("address");
        let got = names.at(addr, None);
        assert_eq!(got.len(), MAX_CHAIN);
        assert_eq!(got[0], "q.test");
        assert_eq!(got[MAX_CHAIN - 1], format!("c{}.test", MAX_CHAIN - 2));
        assert_eq!(names.chains_cut, 1);
    }
}
