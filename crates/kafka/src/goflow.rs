//! goflow2's flow records: the protobuf `FlowMessage` and its JSON rendering.
//!
//! The fields are those of goflow2's `pb/flow.proto` (package `flowpb`, proto3; read at
//! github.com/netsampler/goflow2 commit 02f5d1b, the v2 schema) that audit needs; their
//! numbers and types are facts of that schema. Fields not listed here are skipped by prost as
//! unknown fields, so a newer goflow2 with more fields still decodes.
//!
//! **Framing.** goflow2's `bin` format writes each message with `protodelim` (a varint length,
//! then the message: `producer/proto/messages.go`, `MarshalBinary`); a Kafka record holds one
//! such message. A record whose leading varint is exactly the length of the rest is read as
//! delimited, otherwise as one bare message (other producers write it bare).
//!
//! **JSON.** goflow2's `json` format names fields by their proto names (`src_addr`,
//! `time_flow_start_ns`...), addresses as text and `proto` as a name (`TCP`, `UDP`, `ICMP`,
//! `ICMPv6`, `SCTP`: `producer/proto/render.go`) or a number.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use portolan_audit::flowlog::netflow::Record;
use prost::Message;
use serde_json::Value;

/// goflow2's `FlowMessage`, the fields audit reads (numbers from `pb/flow.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct FlowMessage {
    /// `FlowType type = 1` (0 unknown, 1 sFlow 5, 2 NetFlow v5, 3 NetFlow v9, 4 IPFIX).
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(uint64, tag = "3")]
    pub sampling_rate: u64,
    #[prost(uint32, tag = "4")]
    pub sequence_num: u32,
    #[prost(bytes = "vec", tag = "6")]
    pub src_addr: Vec<u8>,
    #[prost(bytes = "vec", tag = "7")]
    pub dst_addr: Vec<u8>,
    #[prost(uint64, tag = "9")]
    pub bytes: u64,
    #[prost(uint64, tag = "10")]
    pub packets: u64,
    #[prost(bytes = "vec", tag = "11")]
    pub sampler_address: Vec<u8>,
    #[prost(uint32, tag = "20")]
    pub proto: u32,
    #[prost(uint32, tag = "21")]
    pub src_port: u32,
    #[prost(uint32, tag = "22")]
    pub dst_port: u32,
    #[prost(uint32, tag = "30")]
    pub etype: u32,
    #[prost(uint32, tag = "31")]
    pub icmp_type: u32,
    #[prost(uint32, tag = "32")]
    pub icmp_code: u32,
    #[prost(uint64, tag = "110")]
    pub time_received_ns: u64,
    #[prost(uint64, tag = "111")]
    pub time_flow_start_ns: u64,
    #[prost(uint64, tag = "112")]
    pub time_flow_end_ns: u64,
}

/// Decodes one Kafka record's value: delimited or bare.
pub fn decode(value: &[u8]) -> Result<FlowMessage, String> {
    let mut rest = value;
    if let Ok(n) = prost::encoding::decode_varint(&mut rest) {
        if usize::try_from(n).ok() == Some(rest.len()) && !rest.is_empty() {
            return FlowMessage::decode(rest).map_err(|e| format!("bad protobuf FlowMessage: {e}"));
        }
    }
    FlowMessage::decode(value).map_err(|e| format!("bad protobuf FlowMessage: {e}"))
}

/// Encodes a message as goflow2's `bin` format does: varint length, then the message.
pub fn encode(m: &FlowMessage) -> Vec<u8> {
    m.encode_length_delimited_to_vec()
}

fn ip(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            let v6 = Ipv6Addr::from(a);
            // goflow2 writes IPv4 in IPv6 form for some exporters (::ffff:a.b.c.d).
            Some(match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            })
        }
        _ => None,
    }
}

fn ip_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

impl FlowMessage {
    /// One direction of a conversation, as `portolan_audit`'s record folder takes it; `Err`
    /// when the message lacks an address or a protocol (nothing to audit).
    pub fn record(&self) -> Result<Record, String> {
        let src = ip(&self.src_addr).ok_or("src_addr is not a 4- or 16-byte address")?;
        let dst = ip(&self.dst_addr).ok_or("dst_addr is not a 4- or 16-byte address")?;
        let proto = u8::try_from(self.proto).map_err(|_| "proto is above 255")?;
        if proto == 0 {
            return Err("proto is 0 (missing)".into());
        }
        let port =
            |p: u32, what: &str| u16::try_from(p).map_err(|_| format!("{what} {p} is above 65535"));
        let icmp = matches!(proto, 1 | 58);
        let ms = |ns: u64| {
            (ns > 0)
                .then(|| i64::try_from(ns / 1_000_000).ok())
                .flatten()
        };
        Ok(Record {
            src: Some(src),
            dst: Some(dst),
            sport: port(self.src_port, "src_port")?,
            dport: port(self.dst_port, "dst_port")?,
            proto: Some(proto),
            packets: self.packets,
            bytes: self.bytes,
            start_ms: ms(self.time_flow_start_ns),
            end_ms: ms(self.time_flow_end_ns),
            // ICMP type × 256 + code, as the record folder reads it.
            icmp: icmp.then(|| {
                (u16::try_from(self.icmp_type).unwrap_or(255) << 8)
                    | u16::try_from(self.icmp_code).unwrap_or(0) & 0xff
            }),
            sampling: (self.sampling_rate > 1).then_some(self.sampling_rate),
            ..Record::default()
        })
    }

    /// The message for one record read from an export datagram (the collector's side).
    pub fn from_record(
        r: &Record,
        kind: i32,
        sampler: Option<IpAddr>,
        received_ns: u64,
    ) -> Option<FlowMessage> {
        let (src, dst, proto) = (r.src?, r.dst?, r.proto?);
        let ns = |ms: Option<i64>| {
            ms.and_then(|m| u64::try_from(m).ok())
                .map_or(0, |m| m * 1_000_000)
        };
        let icmp = matches!(proto, 1 | 58);
        let tc = r.icmp.unwrap_or(if icmp { r.dport } else { 0 });
        Some(FlowMessage {
            r#type: kind,
            sampling_rate: r.sampling.unwrap_or(0),
            src_addr: ip_bytes(src),
            dst_addr: ip_bytes(dst),
            bytes: r.bytes,
            packets: r.packets,
            sampler_address: sampler.map(ip_bytes).unwrap_or_default(),
            proto: u32::from(proto),
            src_port: if icmp { 0 } else { u32::from(r.sport) },
            dst_port: if icmp { 0 } else { u32::from(r.dport) },
            etype: if src.is_ipv4() { 0x800 } else { 0x86dd },
            icmp_type: if icmp { u32::from(tc >> 8) } else { 0 },
            icmp_code: if icmp { u32::from(tc & 0xff) } else { 0 },
            time_received_ns: received_ns,
            time_flow_start_ns: ns(r.start_ms),
            time_flow_end_ns: ns(r.end_ms.or(r.start_ms)),
            ..FlowMessage::default()
        })
    }
}

/// Whether a JSON object is one of goflow2's (rather than a Zeek log line).
pub fn is_goflow_json(m: &serde_json::Map<String, Value>) -> bool {
    m.contains_key("src_addr") && m.contains_key("dst_addr")
}

/// Reads goflow2's JSON rendering of a `FlowMessage`.
pub fn from_json(m: &serde_json::Map<String, Value>) -> Result<FlowMessage, String> {
    let num = |k: &str| -> Result<u64, String> {
        match m.get(k) {
            None | Some(Value::Null) => Ok(0),
            Some(Value::Number(n)) => n
                .as_u64()
                .ok_or_else(|| format!("`{k}` is not a whole number")),
            Some(Value::String(s)) => s
                .parse()
                .map_err(|_| format!("`{k}` is not a whole number")),
            Some(_) => Err(format!("`{k}` is not a number")),
        }
    };
    let small = |k: &str| -> Result<u32, String> {
        u32::try_from(num(k)?).map_err(|_| format!("`{k}` is too large"))
    };
    let addr = |k: &str| -> Result<Vec<u8>, String> {
        match m.get(k) {
            Some(Value::String(s)) => s
                .parse::<IpAddr>()
                .map(ip_bytes)
                .map_err(|_| format!("`{k}` is not an address")),
            _ => Err(format!("`{k}` is missing")),
        }
    };
    let proto = match m.get("proto") {
        Some(Value::String(s)) => match s.as_str() {
            "ICMP" => 1,
            "TCP" => 6,
            "UDP" => 17,
            "ICMPv6" => 58,
            "SCTP" => 132,
            other => other
                .parse()
                .map_err(|_| format!("`proto` `{other}` is not a protocol goflow2 names"))?,
        },
        _ => small("proto")?,
    };
    Ok(FlowMessage {
        sampling_rate: num("sampling_rate")?,
        src_addr: addr("src_addr")?,
        dst_addr: addr("dst_addr")?,
        bytes: num("bytes")?,
        packets: num("packets")?,
        proto,
        src_port: small("src_port")?,
        dst_port: small("dst_port")?,
        icmp_type: small("icmp_type")?,
        icmp_code: small("icmp_code")?,
        time_received_ns: num("time_received_ns")?,
        time_flow_start_ns: num("time_flow_start_ns")?,
        time_flow_end_ns: num("time_flow_end_ns")?,
        ..FlowMessage::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire bytes of a FlowMessage written by hand from the protobuf encoding rules (a
    /// key is `field << 3 | wire type`, varints 7 bits at a time, low group first), with
    /// goflow2's field numbers: 10.20.0.5:40000 → 198.51.100.7:8443/tcp, 6 packets, 1200
    /// bytes, started at 1,800,000,000 s (field 111, key 888 = 0xf8 0x06).
    fn hand_message() -> Vec<u8> {
        let mut m = vec![0x08, 0x04]; // type = 4 (IPFIX)
        m.extend([0x32, 4, 10, 20, 0, 5]); // src_addr (6, bytes)
        m.extend([0x3a, 4, 198, 51, 100, 7]); // dst_addr (7, bytes)
        m.extend([0x48, 0xb0, 0x09]); // bytes (9) = 1200
        m.extend([0x50, 0x06]); // packets (10) = 6
        m.extend([0xa0, 0x01, 0x06]); // proto (20) = 6
        m.extend([0xa8, 0x01, 0xc0, 0xb8, 0x02]); // src_port (21) = 40000
        m.extend([0xb0, 0x01, 0xfb, 0x41]); // dst_port (22) = 8443
                                            // time_flow_start_ns (111) = 1.8e18: varint of 1_800_000_000_000_000_000.
        m.extend([0xf8, 0x06]);
        let mut n: u64 = 1_800_000_000_000_000_000;
        while n >= 0x80 {
            m.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        m.push(n as u8);
        m
    }

    #[test]
    fn a_hand_written_message_decodes_bare_and_delimited() {
        let bare = hand_message();
        let mut delimited = vec![u8::try_from(bare.len()).expect("short")];
        delimited.extend(&bare);
        for bytes in [&bare, &delimited] {
            let m = decode(bytes).expect("decodes");
            let r = m.record().expect("a record");
            assert_eq!(r.src, Some("10.20.0.5".parse().expect("addr")));
            assert_eq!(r.dst, Some("198.51.100.7".parse().expect("addr")));
            assert_eq!((r.sport, r.dport, r.proto), (40000, 8443, Some(6)));
            assert_eq!((r.packets, r.bytes), (6, 1200));
            assert_eq!(r.start_ms, Some(1_800_000_000_000));
            assert_eq!(r.icmp, None);
        }
        // What this crate encodes is what the hand wrote, less the fields left at zero.
        let again = encode(&decode(&bare).expect("decodes"));
        assert_eq!(again, delimited);
    }

    #[test]
    fn poison_is_refused() {
        // Wire type 7 does not exist.
        assert!(decode(&[0x0f, 0xff, 0xff, 0xff]).is_err());
        // A message without addresses has nothing to audit.
        let m = decode(&[0x08, 0x04]).expect("decodes");
        assert!(m.record().is_err());
    }

    #[test]
    fn goflow_json() {
        let v: Value = serde_json::from_str(
            r#"{"type":"IPFIX","time_flow_start_ns":1800000001000000000,"bytes":80,"packets":1,"src_addr":"fd00:20::10","dst_addr":"fd00:20::1","etype":"IPv6","proto":"ICMPv6","icmp_type":128,"icmp_code":0}"#,
        )
        .expect("json");
        let Value::Object(o) = v else {
            panic!("object")
        };
        assert!(is_goflow_json(&o));
        let r = from_json(&o).expect("reads").record().expect("a record");
        assert_eq!(r.proto, Some(58));
        // ICMP type × 256 + code, as the folder reads records.
        assert_eq!(r.icmp, Some(128 << 8));
        assert_eq!(r.start_ms, Some(1_800_000_001_000));
    }
}
