//! Findings as the workers produce them: one JSON object per violating flow or flow of an
//! unknown device, keyed `SITE/DEVICE`, with a stable id.
//!
//! **The id and de-duplication.** Delivery is at-least-once: a worker that dies after
//! producing a window's findings and before committing its offsets leaves the window to the
//! partition's next owner, which produces the same findings again. The id is a SHA-256 (first
//! 16 bytes, hex) of what the finding says about the flow — site, kind, device, protocol, both
//! endpoints and ports, ICMP type, start time, the violation's kinds — and of nothing that
//! depends on who judged it or when (no offsets, no worker, no window, no packet counts). A
//! consumer de-duplicates by keeping the ids it has seen (per key, for as long as it cares):
//! `SELECT DISTINCT ON (id)`, a ClickHouse `ReplacingMergeTree` ordered by id, or a set.

use portolan_audit::{FlowRecord, Status};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The JSON contract's format of every message a worker produces, findings and dead letters
/// alike (`portolan schema audit-kafka`): each Kafka message stands alone, so each names it.
pub const FORMAT: &str = "portolan/audit-kafka/v1";

/// One finding.
#[derive(Clone, Debug, Serialize)]
pub struct Finding<'a> {
    /// [`FORMAT`].
    pub format: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `violation` or `unknown-device`.
    pub finding: &'static str,
    pub id: String,
    pub site: &'a str,
    /// The Kafka partition of the records it came from.
    pub partition: i32,
    pub flow: &'a FlowRecord,
}

/// A required flow (`profile/flow`) of a group that had flows in a window (one partition's
/// records from `offsets[0]` up to, not including, `offsets[1]`) and used it in none of them.
/// Windows are cut by time and count, so these ids hold only for the same cut: a re-read
/// window can give a second finding of the same rule.
#[derive(Clone, Debug, Serialize)]
pub struct Unused<'a> {
    /// [`FORMAT`].
    pub format: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `unused`.
    pub finding: &'static str,
    pub id: String,
    pub site: &'a str,
    pub partition: i32,
    pub group: &'a str,
    pub rule: &'a str,
    pub offsets: [i64; 2],
}

/// The findings-topic message of a flow record, with its key (`SITE/DEVICE`); `None` for a
/// conforming flow, which is no finding.
pub fn message(site: &str, partition: i32, rec: &FlowRecord) -> Option<(String, Vec<u8>)> {
    let kind = kind_of(rec)?;
    let out = Finding {
        format: FORMAT,
        kind: "finding",
        finding: kind,
        id: id(site, kind, rec),
        site,
        partition,
        flow: rec,
    };
    Some((key(site, rec), serde_json::to_vec(&out).unwrap_or_default()))
}

/// The findings-topic message of a required flow (`rule`, `profile/flow`) of `group` that no
/// flow of a window (offsets `window.0` up to, not including, `window.1`) used, with its key
/// (`SITE/GROUP`).
pub fn unused_message(
    site: &str,
    group: &str,
    rule: &str,
    partition: i32,
    window: (i64, i64),
) -> (String, Vec<u8>) {
    let out = Unused {
        format: FORMAT,
        kind: "finding",
        finding: "unused",
        id: unused_id(site, group, rule, partition, window.0),
        site,
        partition,
        group,
        rule,
        offsets: [window.0, window.1],
    };
    (
        format!("{site}/{group}"),
        serde_json::to_vec(&out).unwrap_or_default(),
    )
}

/// A record the worker could not read, as the dead-letter topic gets it: where it was (topic,
/// partition, offset, key), why, and its bytes in hex.
pub fn dead_letter(
    topic: &str,
    partition: i32,
    offset: i64,
    key: &str,
    reason: &str,
    value: &[u8],
) -> serde_json::Value {
    serde_json::json!({
        "format": FORMAT,
        "type": "dead-letter",
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key,
        "reason": reason,
        "value_hex": value.iter().map(|b| format!("{b:02x}")).collect::<String>(),
    })
}

/// The id of an unused-flow finding: site, group, rule, partition, window start.
pub fn unused_id(site: &str, group: &str, rule: &str, partition: i32, from: i64) -> String {
    let mut h = Sha256::new();
    for f in [
        "portolan-unused-v1",
        site,
        group,
        rule,
        &partition.to_string(),
        &from.to_string(),
    ] {
        h.update(f.as_bytes());
        h.update([0u8]);
    }
    let d = h.finalize();
    d[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// `violation` or `unknown-device`; `None` for conforming flows.
pub fn kind_of(f: &FlowRecord) -> Option<&'static str> {
    match f.status {
        Status::Conforming => None,
        Status::Violation => Some("violation"),
        Status::UnknownDevice => Some("unknown-device"),
    }
}

/// The Kafka key: `SITE/DEVICE` (the initiator for flows of unknown devices).
pub fn key(site: &str, f: &FlowRecord) -> String {
    format!("{site}/{}", f.device.unwrap_or(f.src))
}

/// The stable id (see the module's header).
pub fn id(site: &str, kind: &str, f: &FlowRecord) -> String {
    let mut h = Sha256::new();
    let mut field = |s: &str| {
        h.update(s.as_bytes());
        h.update([0u8]);
    };
    field("portolan-finding-v1");
    field(site);
    field(kind);
    field(&f.device.map(|d| d.to_string()).unwrap_or_default());
    field(&f.protocol);
    field(&f.src.to_string());
    field(&f.sport.map(|p| p.to_string()).unwrap_or_default());
    field(&f.dst.to_string());
    field(&f.dport.map(|p| p.to_string()).unwrap_or_default());
    field(f.icmp_type.as_deref().unwrap_or(""));
    field(f.first.as_deref().unwrap_or(""));
    let kinds: Vec<&str> = f.violation.iter().map(|m| m.name()).collect();
    field(&kinds.join(","));
    let d = h.finalize();
    d[..16].iter().map(|b| format!("{b:02x}")).collect()
}
