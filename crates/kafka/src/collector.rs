//! The producer side: `portolan audit SITE --listen udp://ADDR:PORT --to kafka://BROKERS/TOPIC`.
//!
//! Export datagrams (IPFIX, NetFlow v9, v5) are decoded with `portolan_audit`'s decoder
//! (templates per exporter and observation domain), and each record is published as a goflow2
//! `FlowMessage` in goflow2's `bin` framing, so the workers read this collector's output and
//! goflow2's alike. The key is the address of the site device the record involves (its source
//! if both are devices, its source if neither is): the partition a device's records and DNS
//! answers share (see ARCHITECTURE.md).

use std::net::{IpAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portolan_audit::flowlog::netflow::{Decoder, Record, MAX_MESSAGE};
use portolan_audit::matcher::Matcher;
use portolan_audit::Options;
use portolan_model::ir::Policy;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde::Serialize;

use crate::goflow::{self, FlowMessage};
use crate::worker::{client, Deliveries, WorkerError};

/// What the collector forwarded.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Forwarded {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub datagrams: u64,
    /// Datagrams the decoder refused (first reason kept).
    pub refused: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_refusal: Option<String>,
    pub records: u64,
    /// Records without addresses or protocol: not forwarded.
    pub skipped: u64,
}

/// The partition key of a record: the site device it involves.
pub fn key_of(m: &Matcher<'_>, src: IpAddr, dst: IpAddr) -> IpAddr {
    if m.group_of(src).is_some() || m.group_of(dst).is_none() {
        src
    } else {
        dst
    }
}

/// Receives datagrams on `socket` and publishes their records to `topic` until `stop` is set.
pub fn run(
    socket: &UdpSocket,
    policy: &Policy,
    opts: &Options,
    brokers: &str,
    options: &[(String, String)],
    topic: &str,
    stop: &AtomicBool,
) -> Result<Forwarded, WorkerError> {
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| WorkerError::Io(e.to_string()))?;
    let producer: BaseProducer<Deliveries> =
        client(brokers, &[("linger.ms", "5")], options, &[("acks", "all")])
            .create_with_context(Deliveries::default())?;
    let m = Matcher::new(policy, opts);
    let mut dec = Decoder::new();
    dec.tap = Some(Vec::new());
    let mut out = Forwarded {
        kind: "forwarded",
        ..Forwarded::default()
    };
    let mut buf = vec![0u8; MAX_MESSAGE + 1];
    while !stop.load(Ordering::Relaxed) {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                producer.poll(Duration::ZERO);
                continue;
            }
            Err(e) => return Err(WorkerError::Io(e.to_string())),
        };
        out.datagrams += 1;
        if let Err(why) = dec.message(from, &buf[..n]) {
            out.refused += 1;
            out.first_refusal.get_or_insert(format!("{from}: {why}"));
        }
        // goflow2's FlowType: 2 NetFlow v5, 3 NetFlow v9, 4 IPFIX.
        let kind = match buf.get(..2).map(|v| u16::from_be_bytes([v[0], v[1]])) {
            Some(5) => 2,
            Some(9) => 3,
            Some(10) => 4,
            _ => 0,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let records: Vec<Record> = dec.tap.as_mut().map(std::mem::take).unwrap_or_default();
        for r in &records {
            out.records += 1;
            let Some(msg) = FlowMessage::from_record(r, kind, Some(from.ip()), now) else {
                out.skipped += 1;
                continue;
            };
            let key = match (r.src, r.dst) {
                (Some(s), Some(d)) => key_of(&m, s, d).to_string(),
                _ => String::new(),
            };
            send(&producer, topic, &key, &goflow::encode(&msg));
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30))?;
    if let (n @ 1.., first) = producer.context().failures() {
        return Err(WorkerError::Unpublished(n, first));
    }
    Ok(out)
}

/// Hands one record to the producer (all under ticket 0: the collector commits nothing, it
/// only needs to know whether every record was delivered).
fn send(p: &BaseProducer<Deliveries>, topic: &str, key: &str, payload: &[u8]) {
    let mut rec = BaseRecord::with_opaque_to(topic, 0)
        .key(key)
        .payload(payload);
    loop {
        match p.send(rec) {
            Ok(()) => return,
            Err((_, r)) => {
                rec = r;
                p.poll(Duration::from_millis(50));
            }
        }
    }
}
