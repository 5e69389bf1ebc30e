//! `nfdump -r FILE -o csv` output (nfdump 1.7): a header line naming the columns, one line per
//! record, then a `Summary` block. Records are one direction each, as the exporter sent them;
//! they fold into flows as [`super::netflow`] folds export records.
//!
//! ```text
//! ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt,in,out,sas,das,...
//! 2026-12-02 11:00:01.123,2026-12-02 11:00:01.456,0.333,10.20.0.10,10.20.0.1,40000,53,UDP,........,0,0,1,30,0,0,...
//! ```
//!
//! nfdump prints times in the local time zone: run it with `TZ=UTC` (they are read as UTC).
//! A record whose `fl` column (aggregated output, `-a`/`-A`) is above 1 stands for several
//! flows; such records are counted in [`Notes::aggregated`].

use std::collections::HashMap;
use std::io::BufRead;

use super::netflow::{Folder, Notes, Record};
use super::Sink;
use crate::capture::InputProblem;
use crate::time::{self, Nanos};

/// Whether a line is nfdump's CSV header.
pub fn is_header(line: &str) -> bool {
    let cols: Vec<&str> = line.split(',').map(str::trim).collect();
    ["ts", "sa", "da", "sp", "dp", "pr"]
        .iter()
        .all(|c| cols.contains(c))
}

/// Layer-4 protocol by nfdump's name or number.
fn protocol(s: &str) -> Option<u8> {
    if let Ok(n) = s.parse() {
        return Some(n);
    }
    Some(match s.to_ascii_uppercase().as_str() {
        "ICMP" => 1,
        "IGMP" => 2,
        "TCP" => 6,
        "UDP" => 17,
        "GRE" => 47,
        "ESP" => 50,
        "AH" => 51,
        "ICMP6" | "IPV6-ICMP" | "ICMPV6" => 58,
        "SCTP" => 132,
        _ => return None,
    })
}

/// `2026-12-02 11:00:01.123` (UTC), or seconds since the epoch.
fn when(s: &str) -> Option<Nanos> {
    let s = s.trim();
    if s.contains('-') && s.contains(':') {
        time::parse(&format!("{}Z", s.replacen(' ', "T", 1)))
    } else {
        time::parse_epoch(s)
    }
}

/// A port column: a number, or for ICMP `type.code`.
fn port(s: &str) -> Result<u16, String> {
    let s = s.trim();
    if let Some((t, c)) = s.split_once('.') {
        let t: u8 = t.parse().map_err(|_| format!("`{s}` is not a port"))?;
        let c: u8 = c.parse().map_err(|_| format!("`{s}` is not a port"))?;
        return Ok(u16::from(t) << 8 | u16::from(c));
    }
    if s.is_empty() {
        return Ok(0);
    }
    s.parse().map_err(|_| format!("`{s}` is not a port"))
}

/// Reads nfdump CSV output. Returns the lines read, the first problem and the notes.
pub fn read<R: BufRead>(input: R, sink: &mut Sink<'_>) -> (u64, Option<InputProblem>, Notes) {
    let mut cols: Option<HashMap<String, usize>> = None;
    let mut folder = Folder::default();
    let mut notes = Notes::default();
    // After `Summary`: nfdump's totals, not records.
    let mut done = false;
    let (count, problem) = super::lines(input, |line| {
        if done {
            return Ok(());
        }
        let t = line.trim();
        if t == "Summary" {
            done = true;
            return Ok(());
        }
        if t == "No matching flows" {
            return Ok(());
        }
        if is_header(t) {
            cols = Some(
                t.split(',')
                    .enumerate()
                    .map(|(i, c)| (c.trim().to_string(), i))
                    .collect(),
            );
            return Ok(());
        }
        let Some(cols) = &cols else {
            return Err("a record before nfdump's CSV header line".into());
        };
        let v: Vec<&str> = t.split(',').collect();
        let get = |c: &str| cols.get(c).and_then(|&i| v.get(i)).map(|s| s.trim());
        let num = |c: &str| -> Result<u64, String> {
            match get(c) {
                None | Some("") => Ok(0),
                Some(s) => s
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .map(|x| x as u64)
                    .ok_or_else(|| format!("`{c}` is `{s}`, not a count")),
            }
        };
        let addr = |c: &str| -> Result<std::net::IpAddr, String> {
            let s = get(c).ok_or_else(|| format!("no `{c}` column"))?;
            s.parse().map_err(|_| format!("`{s}` is not an address"))
        };
        let p = get("pr").unwrap_or("");
        let mut r = Record {
            src: Some(addr("sa")?),
            dst: Some(addr("da")?),
            sport: port(get("sp").unwrap_or(""))?,
            dport: port(get("dp").unwrap_or(""))?,
            proto: Some(protocol(p).ok_or_else(|| format!("`{p}` is not a protocol"))?),
            packets: num("ipkt")?,
            bytes: num("ibyt")?,
            rpackets: num("opkt")?,
            rbytes: num("obyt")?,
            ..Record::default()
        };
        let ms = |t: Nanos| t.div_euclid(1_000_000);
        r.start_ms = get("ts").and_then(when).map(ms);
        r.end_ms = get("te").and_then(when).map(ms);
        let flows = num("fl")?;
        if flows > 1 {
            r.flows = Some(flows);
            notes.aggregated += 1;
        }
        notes.records += 1;
        folder.add(&r);
        Ok(())
    });
    for f in folder.finish() {
        sink.flows.push(f);
    }
    (count, problem, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_and_values() {
        assert!(is_header(
            "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt"
        ));
        assert!(!is_header("flows,bytes,packets,avg_bps,avg_pps,avg_bpp"));
        assert_eq!(port("8.0"), Ok(0x0800));
        assert_eq!(port("443"), Ok(443));
        assert_eq!(protocol("TCP"), Some(6));
        assert_eq!(protocol("17"), Some(17));
        // 2026-12-02T11:00:01.123Z: 1_796_209_201 s after the epoch (date -u -d ... +%s).
        assert_eq!(
            when("2026-12-02 11:00:01.123"),
            Some(1_796_209_201_123_000_000)
        );
    }
}
