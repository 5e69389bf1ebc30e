//! The consumer-group worker: `portolan audit SITE --from kafka://BROKERS/TOPIC --group NAME`.
//!
//! Each partition assigned to the worker has its own state: a flow table (Zeek `conn.log`
//! lines), a record folder (goflow2 records, both directions of a conversation folded into one
//! flow by `portolan_audit`'s folder) and the DNS names its Zeek `dns.log` lines gave. A
//! partition's window closes after `window_records` records or `window` of time; its flows
//! are then judged by `portolan_audit`'s matcher, its findings produced, the producer flushed
//! (every finding and dead letter delivered, or the worker stops with an error and commits
//! nothing), and only then its offset committed: at-least-once.
//!
//! **DNS state and hand-over.** Records are keyed by device address (see ARCHITECTURE.md), so
//! a device's DNS answers and its flows share a partition and its worker. A DNS answer can
//! name flows of later windows, while its TTL lasts; the offset committed for a partition is
//! therefore that of its oldest DNS answer still live (at most [`MAX_REPLAY`] records back),
//! not that of its last record. Whoever owns the partition next (after a rebalance, or after
//! this worker dies) re-reads from there: it rebuilds the names, and produces again the
//! findings of the re-read flows, with the same ids (`finding.rs`), which a consumer drops.
//! Revocation on rebalance closes the revoked partitions' windows (judged, produced, flushed,
//! committed) and drops their state.
//!
//! **Poison records.** A record that is neither a goflow2 message (protobuf or JSON) nor a
//! Zeek conn/dns JSON line goes to the dead-letter topic with its topic, partition, offset,
//! the reason and its bytes (hex); the worker goes on. Its offset is committed with its window
//! once the dead letter is delivered.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use portolan_audit::dns::Names;
use portolan_audit::flowlog::netflow::Folder;
use portolan_audit::flowlog::{self, Sink};
use portolan_audit::flows::FlowTable;
use portolan_audit::matcher::Matcher;
use portolan_audit::{FlowRecord, Options};
use portolan_model::ir::Policy;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use serde_json::Value;

use crate::finding;
use crate::goflow;
use crate::ledger::{Ledger, Ticket};

/// The most records a partition is re-read from for its DNS answers (see the module header).
pub const MAX_REPLAY: i64 = 1_000_000;

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// `host:port[,host:port...]`.
    pub brokers: String,
    pub topic: String,
    pub group: String,
    /// Where findings go.
    pub findings: String,
    /// Where poison records go.
    pub dead_letter: String,
    /// A partition's window closes after this long...
    pub window: Duration,
    /// ...or after this many records.
    pub window_records: u64,
    /// librdkafka properties set on every client after Portolan's own (`--kafka-option`).
    pub options: Vec<(String, String)>,
}

/// What a worker did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub records: u64,
    pub flows: u64,
    pub conforming: u64,
    pub findings: u64,
    pub dead_letters: u64,
    pub windows: u64,
    /// Partitions revoked from this worker by rebalances.
    pub revoked: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("{0} message(s) not delivered (first: {1}); no offset committed")]
    Undelivered(u64, String),
    #[error("{0} record(s) not delivered to Kafka (first: {1})")]
    Unpublished(u64, String),
    #[error("{0}")]
    Io(String),
}

/// One partition's state.
struct Part {
    /// The open window's ticket: its findings and dead letters are sent under it.
    ticket: Ticket,
    table: FlowTable,
    folder: Folder,
    names: Names,
    /// The offset after the last record read.
    next: Option<i64>,
    /// The first offset of the open window.
    first: Option<i64>,
    /// Records read since the last window closed.
    pending: u64,
    since: Instant,
    /// DNS answers still live: (offset, expiry in ns since the epoch), oldest first.
    dns: VecDeque<(i64, i64)>,
    /// The latest record time seen (ns), the partition's clock for DNS expiry.
    clock: i64,
}

impl Part {
    fn new(ticket: Ticket) -> Part {
        Part {
            ticket,
            table: FlowTable::new(),
            folder: Folder::default(),
            names: Names::new(),
            next: None,
            first: None,
            pending: 0,
            since: Instant::now(),
            dns: VecDeque::new(),
            clock: i64::MIN,
        }
    }

    /// The offset to commit: the oldest live DNS answer's, else the next record's.
    fn commit_offset(&mut self) -> Option<i64> {
        let next = self.next?;
        while let Some(&(o, exp)) = self.dns.front() {
            if exp < self.clock || o < next - MAX_REPLAY {
                self.dns.pop_front();
            } else {
                break;
            }
        }
        Some(self.dns.front().map_or(next, |&(o, _)| o))
    }

    /// Reads one record's value into the state.
    fn ingest(&mut self, offset: i64, value: &[u8]) -> Result<(), String> {
        let start = value.iter().position(|b| !b.is_ascii_whitespace());
        if start.is_some_and(|i| value[i] == b'{') {
            let text = std::str::from_utf8(value).map_err(|e| format!("not UTF-8: {e}"))?;
            // One JSON object per line; a record may hold several lines.
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
                let Value::Object(m) = v else {
                    return Err("not a JSON object".into());
                };
                if goflow::is_goflow_json(&m) {
                    self.record(&goflow::from_json(&m)?)?;
                } else {
                    self.zeek(offset, line, &m)?;
                }
            }
            return Ok(());
        }
        let m = goflow::decode(value)?;
        self.record(&m)
    }

    fn record(&mut self, m: &goflow::FlowMessage) -> Result<(), String> {
        let r = m.record()?;
        if let Some(t) = r.end_ms.or(r.start_ms) {
            self.clock = self.clock.max(t.saturating_mul(1_000_000));
        }
        self.folder.add(&r);
        Ok(())
    }

    fn zeek(
        &mut self,
        offset: i64,
        line: &str,
        m: &serde_json::Map<String, Value>,
    ) -> Result<(), String> {
        let mut sink = Sink {
            flows: &mut self.table,
            names: &mut self.names,
        };
        let (_, problem) = flowlog::zeek::read_json(line.as_bytes(), &mut sink);
        if let Some(p) = problem {
            return Err(format!("Zeek JSON line: {}", p.message));
        }
        let ts = match m.get("ts") {
            Some(Value::String(s)) => portolan_audit::time::parse(s),
            Some(Value::Number(n)) => portolan_audit::time::parse(&n.to_string()),
            _ => None,
        };
        if let Some(t) = ts {
            self.clock = self.clock.max(t);
            if m.contains_key("answers") {
                let ttl = m
                    .get("TTLs")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_f64).fold(0.0, f64::max))
                    .unwrap_or(0.0);
                // Whole seconds; a TTL beyond a day counts as a day.
                let secs = ttl.clamp(0.0, 86_400.0) as i64;
                self.dns
                    .push_back((offset, t.saturating_add(secs * 1_000_000_000)));
            }
        }
        Ok(())
    }
}

/// Delivery reports of the findings and dead-letter producer, settled in the ledger under
/// each message's window ticket.
#[derive(Default)]
pub struct Deliveries {
    ledger: Mutex<Ledger>,
}

impl Deliveries {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Failed deliveries so far, and the first failure's message.
    pub fn failures(&self) -> (u64, String) {
        let l = self.ledger();
        let (n, first) = l.failures();
        (n, first.unwrap_or_default().to_string())
    }
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Ticket;
    fn delivery(&self, r: &DeliveryResult<'_>, t: Ticket) {
        let error = r.as_ref().err().map(|(e, _)| e.to_string());
        self.ledger().reported(t, error);
    }
}

struct State {
    policy: &'static Policy,
    matcher: Matcher<'static>,
    site: String,
    parts: BTreeMap<i32, Part>,
    totals: Totals,
    /// The first error met inside a rebalance callback, returned by the main loop.
    error: Option<WorkerError>,
}

/// The consumer's context: the state, and the producer windows are flushed through.
pub struct Ctx {
    state: Mutex<State>,
    producer: BaseProducer<Deliveries>,
    config: Config,
}

impl ClientContext for Ctx {
    /// librdkafka's log lines (with `PORTOLAN_KAFKA_DEBUG` set: its debug contexts) on
    /// standard error, where a worker's warnings go.
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        eprintln!("kafka {level:?} {fac}: {log_message}");
    }
}

impl ConsumerContext for Ctx {
    /// An asynchronous commit that failed is told on standard error; the next commit of the
    /// partition covers it, or its next owner re-reads (findings keep their ids).
    fn commit_callback(&self, result: rdkafka::error::KafkaResult<()>, _: &TopicPartitionList) {
        if let Err(e) = result {
            eprintln!("warning: kafka: a commit failed: {e}");
        }
    }

    /// Each assignment and revocation is told on standard error (`note: kafka: assigned
    /// partitions 0, 3`), as a consumer's operator expects; with `PORTOLAN_KAFKA_DEBUG` set,
    /// with the time (seconds since the epoch) beside librdkafka's own log.
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let ps = |tpl: &TopicPartitionList| {
            tpl.elements()
                .iter()
                .map(|e| e.partition().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let when = if std::env::var_os("PORTOLAN_KAFKA_DEBUG").is_some() {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            format!(" at {t:.3}")
        } else {
            String::new()
        };
        match rebalance {
            Rebalance::Assign(tpl) => {
                eprintln!("note: kafka: assigned partitions [{}]{when}", ps(tpl));
            }
            Rebalance::Revoke(tpl) => {
                eprintln!("note: kafka: revoked partitions [{}]{when}", ps(tpl));
            }
            Rebalance::Error(e) => eprintln!("warning: kafka: rebalance failed{when}: {e}"),
        }
    }

    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let ps: Vec<i32> = tpl
                .elements()
                .iter()
                .filter(|e| e.topic() == self.config.topic)
                .map(|e| e.partition())
                .collect();
            let r = self.close(consumer, &ps, true, CommitMode::Sync);
            let mut s = self.lock();
            s.totals.revoked += ps.len() as u64;
            if let Err(e) = r {
                s.error.get_or_insert(e);
            }
        }
    }
}

impl Ctx {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands one message of window `ticket` to the producer (its delivery is settled in the
    /// ledger).
    fn send(&self, topic: &str, key: &str, payload: &[u8], ticket: Ticket) {
        let mut rec = BaseRecord::with_opaque_to(topic, ticket)
            .key(key)
            .payload(payload);
        self.producer.context().ledger().sent(ticket);
        loop {
            match self.producer.send(rec) {
                Ok(()) => return,
                Err((
                    KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    r,
                )) => {
                    rec = r;
                    self.producer.poll(Duration::from_millis(50));
                }
                Err((e, _)) => {
                    self.producer
                        .context()
                        .ledger()
                        .reported(ticket, Some(e.to_string()));
                    return;
                }
            }
        }
    }

    /// Reads one record; a poison record goes to the dead-letter topic.
    fn ingest(&self, msg: &BorrowedMessage<'_>) {
        let p = msg.partition();
        let offset = msg.offset();
        let value = msg.payload().unwrap_or_default();
        let (bad, ticket) = {
            let mut s = self.lock();
            s.totals.records += 1;
            let part = s
                .parts
                .entry(p)
                .or_insert_with(|| Part::new(self.producer.context().ledger().open()));
            part.next = Some(offset + 1);
            part.first.get_or_insert(offset);
            part.pending += 1;
            (part.ingest(offset, value).err(), part.ticket)
        };
        if let Some(reason) = bad {
            let key = msg
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .unwrap_or_default();
            let letter = finding::dead_letter(msg.topic(), p, offset, &key, &reason, value);
            self.send(
                &self.config.dead_letter,
                &key,
                letter.to_string().as_bytes(),
                ticket,
            );
            self.lock().totals.dead_letters += 1;
        }
    }

    /// Closes the windows of `ps`: judges their flows and hands their findings to the
    /// producer under each window's ticket; the window's offset is committed once they are
    /// delivered (the ledger, `ledger.rs`). `drop` forgets the partitions' state (revocation).
    ///
    /// `mode`: a window closed in passing neither waits for its findings' delivery nor for
    /// its commit (the worker reads on; [`Ctx::commit_ready`] commits it asynchronously when
    /// its findings and those of every window closed before it are delivered; a commit lost
    /// is covered by the next, or costs a re-read whose findings carry the same ids); a
    /// revocation and the last close (`Sync`) flush the producer and wait for the commit, so
    /// that the partition's next owner starts where this one stopped.
    fn close(
        &self,
        consumer: &BaseConsumer<Ctx>,
        ps: &[i32],
        drop: bool,
        mode: CommitMode,
    ) -> Result<(), WorkerError> {
        {
            let mut s = self.lock();
            let State {
                policy,
                matcher,
                site,
                parts,
                totals,
                ..
            } = &mut *s;
            for p in ps {
                let Some(part) = parts.get_mut(p) else {
                    continue;
                };
                let mut flows = std::mem::take(&mut part.table).into_flows();
                flows.extend(std::mem::take(&mut part.folder).finish());
                totals.windows += 1;
                // Per group with flows in this window: the rules its conforming flows used.
                let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
                for f in &flows {
                    let names = &part.names;
                    let v = matcher.judge(f, &|a| names.at(a, f.first));
                    let rec = FlowRecord::new(f, v);
                    totals.flows += 1;
                    if let Some(g) = &rec.group {
                        let rules = used.entry(g.clone()).or_default();
                        if let Some(r) = &rec.rule {
                            rules.insert(r.clone());
                        }
                    }
                    let Some((key, json)) = finding::message(site, *p, &rec) else {
                        totals.conforming += 1;
                        continue;
                    };
                    self.send(&self.config.findings, &key, &json, part.ticket);
                    totals.findings += 1;
                }
                // Required flows of those groups no flow of this window used.
                let window = (part.first.unwrap_or(0), part.next.unwrap_or(0));
                for (i, g) in policy.groups.iter().enumerate() {
                    let Some(rules) = used.get(&g.id) else {
                        continue;
                    };
                    let mut told = BTreeSet::new();
                    for r in matcher.rules_of(i) {
                        let rule = r.provenance();
                        if r.optional || rules.contains(&rule) || !told.insert(rule.clone()) {
                            continue;
                        }
                        let (key, json) = finding::unused_message(site, &g.id, &rule, *p, window);
                        self.send(&self.config.findings, &key, &json, part.ticket);
                        totals.findings += 1;
                    }
                }
                part.pending = 0;
                part.first = None;
                part.since = Instant::now();
                let offset = part.commit_offset();
                {
                    let mut ledger = self.producer.context().ledger();
                    ledger.closed(part.ticket, *p, offset);
                    part.ticket = ledger.open();
                }
                if drop {
                    parts.remove(p);
                }
            }
        }
        if matches!(mode, CommitMode::Sync) {
            self.producer.flush(Duration::from_secs(60))?;
        }
        self.commit_ready(consumer, mode)
    }

    /// Serves the producer's delivery reports, then commits the windows the ledger says are
    /// delivered; an error once any delivery failed (nothing is committed from then on).
    fn commit_ready(
        &self,
        consumer: &BaseConsumer<Ctx>,
        mode: CommitMode,
    ) -> Result<(), WorkerError> {
        self.producer.poll(Duration::ZERO);
        let ready = {
            if let (n @ 1.., first) = self.producer.context().failures() {
                return Err(WorkerError::Undelivered(n, first));
            }
            self.producer.context().ledger().ready()
        };
        if ready.is_empty() {
            return Ok(());
        }
        let mut offsets = TopicPartitionList::new();
        for (p, o) in ready {
            offsets.add_partition_offset(&self.config.topic, p, Offset::Offset(o))?;
        }
        consumer.commit(&offsets, mode)?;
        Ok(())
    }

    /// Closed windows whose commit waits on deliveries.
    fn waiting(&self) -> usize {
        self.producer.context().ledger().waiting()
    }
}

/// A client's configuration: the brokers and Portolan's defaults (`defaults`), then the
/// user's `--kafka-option`s, which win over those, then what at-least-once needs
/// (`required`), which the user's cannot change; librdkafka's debug contexts when
/// `PORTOLAN_KAFKA_DEBUG` asks for them.
pub(crate) fn client(
    brokers: &str,
    defaults: &[(&str, &str)],
    options: &[(String, String)],
    required: &[(&str, &str)],
) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("broker.address.family", "v4");
    // librdkafka's debug contexts (`cgrp`, `fetch`, `all`, ...) for a misbehaving group.
    if let Ok(d) = std::env::var("PORTOLAN_KAFKA_DEBUG") {
        c.set("debug", d).set("log_level", "7");
    }
    for (k, v) in defaults {
        c.set(*k, *v);
    }
    for (k, v) in options {
        c.set(k, v);
    }
    for (k, v) in required {
        c.set(*k, *v);
    }
    c
}

/// Runs a worker until `stop` is set; closes every window and commits before returning.
pub fn run(
    policy: Policy,
    opts: Options,
    config: Config,
    stop: &AtomicBool,
) -> Result<Totals, WorkerError> {
    // The matcher borrows the policy for the process's life (a worker is one per process).
    let policy: &'static Policy = Box::leak(Box::new(policy));
    let opts: &'static Options = Box::leak(Box::new(opts));
    let producer: BaseProducer<Deliveries> = client(
        &config.brokers,
        &[("linger.ms", "5")],
        &config.options,
        &[("acks", "all")],
    )
    .create_with_context(Deliveries::default())?;
    let ctx = Ctx {
        state: Mutex::new(State {
            policy,
            matcher: Matcher::new(policy, opts),
            site: policy.site.clone(),
            parts: BTreeMap::new(),
            totals: Totals {
                kind: "kafka-worker",
                ..Totals::default()
            },
            error: None,
        }),
        producer,
        config: config.clone(),
    };
    let consumer: BaseConsumer<Ctx> = client(
        &config.brokers,
        &[
            ("auto.offset.reset", "earliest"),
            ("partition.assignment.strategy", "roundrobin"),
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "1000"),
            ("max.poll.interval.ms", "60000"),
        ],
        &config.options,
        &[
            ("group.id", config.group.as_str()),
            ("enable.auto.commit", "false"),
        ],
    )
    .create_with_context(ctx)?;
    consumer.subscribe(&[&config.topic])?;
    let result = (|| -> Result<(), WorkerError> {
        while !stop.load(Ordering::Relaxed) {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => consumer.context().ingest(&m),
                Some(Err(e)) => eprintln!("warning: kafka: {e}"),
                None => {}
            }
            if let Some(e) = consumer.context().lock().error.take() {
                return Err(e);
            }
            let due: Vec<i32> = consumer
                .context()
                .lock()
                .parts
                .iter()
                .filter(|(_, p)| {
                    p.pending > 0
                        && (p.pending >= config.window_records
                            || p.since.elapsed() >= config.window)
                })
                .map(|(k, _)| *k)
                .collect();
            if !due.is_empty() {
                consumer
                    .context()
                    .close(&consumer, &due, false, CommitMode::Async)?;
            } else if consumer.context().waiting() > 0 {
                consumer
                    .context()
                    .commit_ready(&consumer, CommitMode::Async)?;
            }
        }
        let all: Vec<i32> = consumer.context().lock().parts.keys().copied().collect();
        consumer
            .context()
            .close(&consumer, &all, false, CommitMode::Sync)
    })();
    consumer.unsubscribe();
    result?;
    let totals = consumer.context().lock().totals.clone();
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DNS: &str = r#"{"ts":1800000000.0,"id.orig_h":"10.20.0.1","id.orig_p":33000,"id.resp_h":"10.20.255.1","id.resp_p":53,"proto":"udp","query":"api.vendor.example","answers":["203.0.113.1"],"TTLs":[300.0]}"#;

    fn conn(ts: f64) -> String {
        format!(
            r#"{{"ts":{ts},"id.orig_h":"10.20.0.1","id.orig_p":40000,"id.resp_h":"203.0.113.1","id.resp_p":443,"proto":"tcp","conn_state":"SF"}}"#
        )
    }

    /// The committed offset stays at a DNS answer while its TTL (300 s) covers the partition's
    /// clock, so the next owner re-reads it; then it moves on to the next record.
    #[test]
    fn the_commit_offset_waits_for_live_dns_answers() {
        let mut p = Part::new(1);
        p.ingest(10, DNS.as_bytes()).expect("dns");
        p.next = Some(11);
        assert_eq!(p.commit_offset(), Some(10));
        p.ingest(11, conn(1_800_000_100.0).as_bytes())
            .expect("conn");
        p.next = Some(12);
        assert_eq!(p.commit_offset(), Some(10));
        assert_eq!(
            p.names.at("203.0.113.1".parse().expect("addr"), None),
            vec!["api.vendor.example"]
        );
        // 301 s after the answer: it has expired.
        p.ingest(12, conn(1_800_000_301.0).as_bytes())
            .expect("conn");
        p.next = Some(13);
        assert_eq!(p.commit_offset(), Some(13));
    }

    #[test]
    fn unreadable_records_are_refused() {
        let mut p = Part::new(1);
        assert!(p.ingest(0, b"{\"x\":1}").is_err());
        assert!(p.ingest(0, b"{not json").is_err());
        assert!(p.ingest(0, &[0x0f, 0xff]).is_err());
        assert!(p.table.is_empty());
    }
}
