//! `portolan audit --from kafka://…` workers against a real Kafka-protocol broker (tansu, built
//! by scripts/test.sh; `$PORTOLAN_TANSU` or `~/.cache/portolan/tansu-0.6.0/bin/tansu`).
//!
//! - Three workers over six partitions find exactly what one `portolan audit` of the same
//!   records (a Zeek JSON file) finds, after de-duplication by id; name-based flows are
//!   attributed by DNS answers read on whichever worker owns the device's partition.
//! - A worker killed (SIGKILL) mid-stream and one added: nothing lost, nothing counted twice
//!   after de-duplication.
//! - A poison record goes to the dead-letter topic with its partition and offset, and the
//!   records after it are still audited: a goflow2 `FlowMessage` encoded here by hand from the
//!   protobuf wire format (not by the crate's prost structs) and goflow2's JSON rendering.
//!
//! The expected findings come from the one-process `portolan audit` (for the comparison) or
//! from the site read by hand. Without the broker binary the tests say so and pass, unless
//! CI=true, where they fail.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::net::{IpAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portolan_kafka::rdkafka::config::ClientConfig;
use portolan_kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use portolan_kafka::rdkafka::message::Message;
use portolan_kafka::rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use portolan_kafka::rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

const PROFILE: &str = r#"portolan: 1
id: kafka-device
vendor: Test
product: Device
sources:
  - {id: doc, title: Test page, url: "https://example.com/device"}
endpoints:
  - {id: cloud, hosts: [api.vendor.example]}
  - {id: dns, service: dns}
flows:
  - {id: https, from: device, to: cloud, initiation: device, protocol: tcp, ports: 443, source: {doc: doc, ref: r1}}
  - {id: dns, from: device, to: dns, initiation: device, protocol: udp, ports: 53, source: {doc: doc, ref: r2}}
listens: none
"#;

const SITE: &str = r#"portolan: 1
site: kafka
zones:
  - {id: field, interface: lan0, networks: [10.20.0.0/16]}
  - {id: wan, interface: wan0}
services:
  dns: [10.20.255.1]
devices:
  - {id: devices, profile: kafka-device.yaml, zone: field, addresses: [10.20.0.0/24]}
"#;

// ---------------------------------------------------------------------------------------
// The broker.

fn tansu_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PORTOLAN_TANSU") {
        return Some(PathBuf::from(p));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("portolan/tansu-0.6.0/bin/tansu"))
}

/// The broker binary, or `None` (the test returns) when it is missing outside CI.
fn tansu() -> Option<PathBuf> {
    let p = tansu_path().filter(|p| p.is_file());
    if p.is_none() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(
            !ci,
            "CI=true and no tansu broker at {:?}: run scripts/test.sh (it builds one)",
            tansu_path()
        );
        eprintln!(
            "SKIPPED: no tansu broker at {:?} (scripts/test.sh builds it); not CI, so passing",
            tansu_path()
        );
    }
    p
}

/// Children killed when the test ends, however it ends.
struct Kids(Vec<Child>);

impl Drop for Kids {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// With `PORTOLAN_TEST_KAFKA_LOGS=DIR`, the broker's and the workers' standard error go to
/// files there (set `RUST_LOG` for tansu's, `PORTOLAN_KAFKA_DEBUG` for librdkafka's).
fn log_file(what: &str, otherwise: fn() -> Stdio) -> Stdio {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    match std::env::var_os("PORTOLAN_TEST_KAFKA_LOGS") {
        Some(d) => {
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = Path::new(&d).join(format!("{what}-{}-{n}.log", std::process::id()));
            Stdio::from(std::fs::File::create(path).expect("a log file"))
        }
        None => otherwise(),
    }
}

struct Broker {
    bin: PathBuf,
    addr: String,
    _proc: Kids,
}

impl Broker {
    fn start(bin: PathBuf) -> Broker {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let url = format!("tcp://{addr}");
        let child = Command::new(&bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(log_file("tansu-out", Stdio::null))
            .stderr(log_file("tansu", Stdio::null))
            .spawn()
            .expect("tansu starts");
        let b = Broker {
            bin,
            addr: addr.clone(),
            _proc: Kids(vec![child]),
        };
        let t = Instant::now();
        while TcpStream::connect(&addr).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "tansu did not listen"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        b
    }

    fn topic(&self, name: &str, partitions: u32) {
        let out = Command::new(&self.bin)
            .args(["topic", "create", name, "--broker"])
            .arg(format!("tcp://{}", self.addr))
            .args(["--partitions", &partitions.to_string()])
            .output()
            .expect("tansu topic create runs");
        assert!(
            out.status.success(),
            "tansu topic create {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn producer(&self) -> BaseProducer {
        ClientConfig::new()
            .set("bootstrap.servers", &self.addr)
            .set("broker.address.family", "v4")
            .set("linger.ms", "5")
            .create()
            .expect("a producer")
    }

    /// Sends `(key, value)` records and waits for their delivery.
    fn produce(&self, topic: &str, records: &[(String, Vec<u8>)]) {
        let p = self.producer();
        for (k, v) in records {
            let mut r = BaseRecord::to(topic).key(k.as_str()).payload(v.as_slice());
            loop {
                match p.send(r) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        r = back;
                        p.poll(Duration::from_millis(20));
                    }
                }
            }
        }
        p.flush(Duration::from_secs(30)).expect("records delivered");
    }

    /// Every record of `topic` (all partitions, from the start), as (partition, offset, key,
    /// value): read until 1.5 s pass without a record (tansu 0.6.0's high watermarks can lag
    /// the records a fetch returns, so they do not say where a partition ends).
    fn read_all_records(&self, topic: &str) -> Vec<(i32, i64, String, Vec<u8>)> {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.addr)
            .set("broker.address.family", "v4")
            .set("group.id", "portolan-test-reader")
            .set("enable.auto.commit", "false")
            .create()
            .expect("a consumer");
        let md = c
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        let mut tpl = TopicPartitionList::new();
        for p in md.topics()[0].partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .expect("partition");
        }
        c.assign(&tpl).expect("assign");
        let mut out = Vec::new();
        let start = Instant::now();
        let mut last = Instant::now();
        while last.elapsed() < Duration::from_millis(1500)
            && start.elapsed() < Duration::from_secs(30)
        {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                last = Instant::now();
                out.push((
                    m.partition(),
                    m.offset(),
                    String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                    m.payload().unwrap_or_default().to_vec(),
                ));
            }
        }
        out
    }

    fn read_all(&self, topic: &str) -> Vec<(i32, i64, Vec<u8>)> {
        self.read_all_records(topic)
            .into_iter()
            .map(|(p, o, _, v)| (p, o, v))
            .collect()
    }

    /// Every record of `topic` as (key, value).
    fn read_all_keyed(&self, topic: &str) -> Vec<(String, Vec<u8>)> {
        self.read_all_records(topic)
            .into_iter()
            .map(|(_, _, k, v)| (k, v))
            .collect()
    }

    /// Findings about flows (violations, unknown devices) by id (each id's JSON objects,
    /// duplicates included).
    fn findings(&self, topic: &str) -> BTreeMap<String, Vec<Value>> {
        self.findings_of(topic, &["violation", "unknown-device"])
    }

    fn findings_of(&self, topic: &str, kinds: &[&str]) -> BTreeMap<String, Vec<Value>> {
        let mut by_id: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for (_, _, v) in self.read_all(topic) {
            let f: Value = serde_json::from_slice(&v).expect("a finding is JSON");
            if !kinds.iter().any(|k| f["finding"] == *k) {
                continue;
            }
            let id = f["id"].as_str().expect("an id").to_string();
            by_id.entry(id).or_default().push(f);
        }
        by_id
    }
}

// ---------------------------------------------------------------------------------------
// The site, the records, the one-process audit.

fn site_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::write(d.path().join("site.yaml"), SITE).expect("site");
    std::fs::write(d.path().join("kafka-device.yaml"), PROFILE).expect("profile");
    d
}

/// Zeek JSON lines with their Kafka key (the device's address, or the initiator's for flows of
/// unknown devices): per device, its DNS answer for api.vendor.example (an address of its own,
/// TTL 300 s), then 8 connections; then a flow of an unknown device per device.
fn zeek_lines(devices: u8) -> Vec<(String, String)> {
    let t0 = 1_800_000_000.0_f64;
    let mut out = Vec::new();
    for d in 1..=devices {
        let dev = format!("10.20.0.{d}");
        let named = format!("203.0.113.{d}");
        let t = t0 + f64::from(d) * 0.001;
        out.push((
            dev.clone(),
            format!(
                r#"{{"ts":{t:.6},"uid":"D{d}","id.orig_h":"{dev}","id.orig_p":33000,"id.resp_h":"10.20.255.1","id.resp_p":53,"proto":"udp","query":"api.vendor.example","rcode_name":"NOERROR","answers":["{named}"],"TTLs":[300.0]}}"#
            ),
        ));
        for k in 0..8u16 {
            let ts = t + 0.1 + f64::from(k) * 0.01;
            let (peer, port, proto) = match k % 4 {
                0 => (named.clone(), 443, "tcp"),
                1 => (named.clone(), 8080, "tcp"),
                2 => (format!("198.51.100.{d}"), 443, "tcp"),
                _ => ("10.20.255.1".to_string(), 53, "udp"),
            };
            let sport = 40000 + k;
            out.push((
                dev.clone(),
                format!(
                    r#"{{"ts":{ts:.6},"uid":"C{d}x{k}","id.orig_h":"{dev}","id.orig_p":{sport},"id.resp_h":"{peer}","id.resp_p":{port},"proto":"{proto}","duration":0.5,"conn_state":"SF","orig_pkts":3,"orig_ip_bytes":300,"resp_pkts":2,"resp_ip_bytes":200}}"#
                ),
            ));
        }
        let stranger = format!("10.30.0.{d}");
        out.push((
            stranger.clone(),
            format!(
                r#"{{"ts":{:.6},"uid":"U{d}","id.orig_h":"{stranger}","id.orig_p":41000,"id.resp_h":"198.51.100.1","id.resp_p":80,"proto":"tcp","duration":0.5,"conn_state":"SF","orig_pkts":3,"orig_ip_bytes":300,"resp_pkts":2,"resp_ip_bytes":200}}"#,
                t + 0.2
            ),
        ));
    }
    out
}

/// What a finding says about its flow, for comparing with the one-process audit.
fn projection(flow: &Value) -> String {
    let keep = [
        "status",
        "group",
        "violation",
        "protocol",
        "src",
        "sport",
        "dst",
        "dport",
        "peer_names",
        "first",
    ];
    let m: BTreeMap<&str, &Value> = keep
        .iter()
        .filter_map(|k| flow.get(*k).map(|v| (*k, v)))
        .collect();
    serde_json::to_string(&m).expect("json")
}

/// The violations and flows of unknown devices one `portolan audit` of `lines` finds.
fn one_process(dir: &Path, lines: &[(String, String)]) -> BTreeSet<String> {
    let file = dir.join("zeek.json");
    let mut f = std::fs::File::create(&file).expect("zeek.json");
    for (_, l) in lines {
        writeln!(f, "{l}").expect("write");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .arg("audit")
        .arg(dir.join("site.yaml"))
        .arg(&file)
        .args(["--format", "json", "-j", "1"])
        .output()
        .expect("portolan audit runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON line"))
        .filter(|v| v["type"] == "flow" && v["status"] != "conforming")
        .map(|v| projection(&v))
        .collect()
}

fn worker(dir: &Path, broker: &Broker, topic: &str, group: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_portolan"))
        .arg("audit")
        .arg(dir.join("site.yaml"))
        .arg("--from")
        .arg(format!("kafka://{}/{topic}", broker.addr))
        .args(["--group", group, "--every", "1", "--format", "json"])
        // tansu sleeps after a fetch for up to half its wait (see bench/README.md).
        .args(["--kafka-option", "fetch.wait.max.ms=100"])
        .stdout(Stdio::piped())
        .stderr(log_file("worker", Stdio::piped))
        .spawn()
        .expect("a worker starts")
}

/// SIGTERM, then the worker's closing `kafka-worker` line.
fn stop(mut c: Child) -> Value {
    let pid = c.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let t = Instant::now();
    loop {
        if let Some(_status) = c.try_wait().expect("wait") {
            break;
        }
        if t.elapsed() > Duration::from_secs(30) {
            let _ = c.kill();
            panic!("worker {pid} did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = c.wait_with_output().expect("output");
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "worker exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(last).unwrap_or(Value::Null)
}

/// Waits until the findings topic holds `want` distinct ids (or 60 s pass).
fn wait_for(broker: &Broker, topic: &str, want: usize) -> BTreeMap<String, Vec<Value>> {
    let t = Instant::now();
    loop {
        let f = broker.findings(topic);
        if f.len() >= want || t.elapsed() > Duration::from_secs(60) {
            return f;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The distinct findings' projections; panics if one id stands for two different flows.
fn distinct(by_id: &BTreeMap<String, Vec<Value>>) -> BTreeSet<String> {
    by_id
        .iter()
        .map(|(id, all)| {
            let p: BTreeSet<String> = all.iter().map(|f| projection(&f["flow"])).collect();
            assert_eq!(p.len(), 1, "id {id} stands for different flows: {p:?}");
            p.into_iter().next().expect("one")
        })
        .collect()
}

fn keyed(lines: &[(String, String)]) -> Vec<(String, Vec<u8>)> {
    lines
        .iter()
        .map(|(k, l)| (k.clone(), l.as_bytes().to_vec()))
        .collect()
}

#[test]
fn three_workers_over_six_partitions_find_what_one_audit_finds() {
    let Some(bin) = tansu() else { return };
    let broker = Broker::start(bin);
    broker.topic("flows", 6);
    broker.topic("flows.findings", 6);
    broker.topic("flows.dead-letter", 1);
    let dir = site_dir();
    let lines = zeek_lines(24);
    let expected = one_process(dir.path(), &lines);
    // 24 devices × (port 8080 twice, an unnamed peer twice) + 24 unknown devices; the
    // connections to each device's own named address are conforming by its DNS answer.
    assert_eq!(expected.len(), 24 * 4 + 24);
    let mut kids = Vec::new();
    for _ in 0..3 {
        kids.push(worker(dir.path(), &broker, "flows", "g3"));
    }
    // Let the group form, then send.
    std::thread::sleep(Duration::from_secs(3));
    broker.produce("flows", &keyed(&lines));
    let got = wait_for(&broker, "flows.findings", expected.len());
    let totals: Vec<Value> = kids.into_iter().map(stop).collect();
    eprintln!("workers: {totals:?}");
    let got = {
        let after = broker.findings("flows.findings");
        assert!(after.len() >= got.len());
        after
    };
    let found = distinct(&got);
    let missing: Vec<_> = expected.difference(&found).collect();
    let extra: Vec<_> = found.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:#?}\nextra {extra:#?}"
    );
    // Every name-based flow was attributed: no finding is for the device's own named peer on
    // port 443.
    for f in got.values().flatten() {
        let flow = &f["flow"];
        assert!(
            !(flow["dport"] == 443 && flow["dst"].as_str().is_some_and(|d| d.starts_with("203."))),
            "{flow}"
        );
    }
    let records: u64 = totals.iter().filter_map(|t| t["records"].as_u64()).sum();
    assert!(records >= lines.len() as u64, "{totals:?}");
}

/// Records keep coming while one worker dies (SIGKILL, nothing closed or committed) and, once
/// the group has noticed, a third worker joins: no finding is lost and none is counted twice
/// after de-duplication by id.
///
/// The death and the join are a session timeout apart because of tansu 0.6.0's group
/// coordinator: it answers each JoinGroup at once instead of waiting, as Kafka's coordinator
/// does, for every known member to rejoin (up to the rebalance timeout), so a member that
/// joins while a dead one is still in the group gets an assignment that gives the dead one
/// partitions, and after the dead one is evicted the next generation can leave them
/// unassigned (`the_broker_reassigns_a_dead_members_partitions_when_another_joins_at_once`
/// keeps that case, ignored).
#[test]
fn a_worker_killed_and_one_added_lose_and_double_count_nothing() {
    killed_and_added(Duration::from_secs(9));
}

/// The same with the join right after the death: fails against tansu 0.6.0 about half the
/// time (every record of the dead member's partitions stays unconsumed), see above.
#[test]
#[ignore = "tansu 0.6.0's coordinator completes a join without waiting for the other members, \
            so a member joining while a dead one is still in the group can leave the dead \
            one's partitions unassigned; passes against a coordinator that waits"]
fn the_broker_reassigns_a_dead_members_partitions_when_another_joins_at_once() {
    killed_and_added(Duration::ZERO);
}

fn killed_and_added(gap: Duration) {
    let Some(bin) = tansu() else { return };
    let broker = Broker::start(bin);
    broker.topic("flows", 6);
    broker.topic("flows.findings", 6);
    broker.topic("flows.dead-letter", 1);
    let dir = site_dir();
    let lines = zeek_lines(24);
    let expected = one_process(dir.path(), &lines);
    let a = worker(dir.path(), &broker, "flows", "gk");
    let b = worker(dir.path(), &broker, "flows", "gk");
    let mut killed = Kids(vec![a]);
    std::thread::sleep(Duration::from_secs(3));
    let half = lines.len() / 2;
    broker.produce("flows", &keyed(&lines[..half]));
    // Some findings out, then the first worker dies without closing anything.
    let t = Instant::now();
    while broker.findings("flows.findings").len() < 10 {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no findings from the first half"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!("{:.3}: SIGKILL to the first worker", epoch());
    for k in &mut killed.0 {
        k.kill().expect("SIGKILL");
        k.wait().expect("reaped");
    }
    // The rest of the stream arrives while the dead worker still holds its partitions.
    broker.produce("flows", &keyed(&lines[half..]));
    eprintln!("{:.3}: second half produced", epoch());
    std::thread::sleep(gap);
    let c = worker(dir.path(), &broker, "flows", "gk");
    eprintln!("{:.3}: third worker started", epoch());
    let got = wait_for(&broker, "flows.findings", expected.len());
    // Let the third worker's first windows close too, so that it has audited something.
    std::thread::sleep(Duration::from_secs(3));
    let tb = stop(b);
    let tc = stop(c);
    eprintln!("survivors: {tb} {tc}");
    // The survivor took the dead worker's partitions and handed some to the newcomer, which
    // audited records of its own.
    assert!(tb["revoked"].as_u64() > Some(0), "{tb}");
    assert!(tc["records"].as_u64() > Some(0), "{tc}");
    let got = broker.findings("flows.findings").max_by_len(got);
    let found = distinct(&got);
    let missing: Vec<_> = expected.difference(&found).collect();
    let extra: Vec<_> = found.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:#?}\nextra {extra:#?}"
    );
    let copies: usize = got.values().map(Vec::len).sum();
    eprintln!(
        "{} distinct findings, {copies} delivered (duplicates from re-read windows are expected)",
        got.len()
    );
}

fn epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

trait MaxByLen {
    fn max_by_len(self, other: Self) -> Self;
}

impl MaxByLen for BTreeMap<String, Vec<Value>> {
    fn max_by_len(self, other: Self) -> Self {
        if self.len() >= other.len() {
            self
        } else {
            other
        }
    }
}

// ---------------------------------------------------------------------------------------
// goflow2 records and a poison record.

fn varint(mut n: u64, out: &mut Vec<u8>) {
    // Protocol Buffers encoding: 7 bits per byte, least significant group first, the high bit
    // set on every byte but the last.
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn field_varint(tag: u64, v: u64, out: &mut Vec<u8>) {
    varint(tag << 3, out);
    varint(v, out);
}

fn field_bytes(tag: u64, v: &[u8], out: &mut Vec<u8>) {
    varint((tag << 3) | 2, out);
    varint(v.len() as u64, out);
    out.extend_from_slice(v);
}

/// A goflow2 FlowMessage by the numbers of goflow2's pb/flow.proto, length-delimited as
/// goflow2's `bin` format writes it.
fn goflow_bin(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u64,
    sport: u64,
    dport: u64,
    start_ns: u64,
) -> Vec<u8> {
    let mut m = Vec::new();
    field_varint(1, 4, &mut m); // type: IPFIX
    field_bytes(6, &src, &mut m); // src_addr
    field_bytes(7, &dst, &mut m); // dst_addr
    field_varint(9, 1200, &mut m); // bytes
    field_varint(10, 6, &mut m); // packets
    field_varint(20, proto, &mut m); // proto
    field_varint(21, sport, &mut m); // src_port
    field_varint(22, dport, &mut m); // dst_port
    field_varint(111, start_ns, &mut m); // time_flow_start_ns
    field_varint(112, start_ns + 500_000_000, &mut m); // time_flow_end_ns
    let mut out = Vec::new();
    varint(m.len() as u64, &mut out);
    out.extend_from_slice(&m);
    out
}

#[test]
fn a_poison_record_goes_to_the_dead_letter_topic_and_the_rest_is_audited() {
    let Some(bin) = tansu() else { return };
    let broker = Broker::start(bin);
    broker.topic("flows", 1);
    broker.topic("flows.findings", 1);
    broker.topic("flows.dead-letter", 1);
    let dir = site_dir();
    let t = 1_800_000_000_000_000_000u64;
    let records = vec![
        // 0: a goflow2 record: 10.20.0.5 → 198.51.100.7:8443/tcp, a peer the profile does not
        // name: a violation.
        ("10.20.0.5".to_string(), goflow_bin([10, 20, 0, 5], [198, 51, 100, 7], 6, 40000, 8443, t)),
        // 1: poison: a field header of wire type 7 (there is none).
        ("10.20.0.6".to_string(), vec![0x0f, 0xff, 0xff, 0xff]),
        // 2: goflow2's JSON: 10.20.0.6 → 10.20.255.1:53/udp, the profile's DNS: conforming.
        ("10.20.0.6".to_string(), br#"{"type":"IPFIX","time_flow_start_ns":1800000001000000000,"time_flow_end_ns":1800000001100000000,"bytes":80,"packets":1,"src_addr":"10.20.0.6","dst_addr":"10.20.255.1","etype":"IPv4","proto":"UDP","src_port":33000,"dst_port":53}"#.to_vec()),
        // 3: goflow2's JSON: 10.20.0.6 → 203.0.113.50:23/tcp: a violation.
        ("10.20.0.6".to_string(), br#"{"type":"IPFIX","time_flow_start_ns":1800000002000000000,"time_flow_end_ns":1800000002100000000,"bytes":80,"packets":1,"src_addr":"10.20.0.6","dst_addr":"203.0.113.50","etype":"IPv4","proto":"TCP","src_port":41000,"dst_port":23}"#.to_vec()),
    ];
    broker.produce("flows", &records);
    let w = worker(dir.path(), &broker, "flows", "gp");
    let got = wait_for(&broker, "flows.findings", 2);
    let totals = stop(w);
    eprintln!("worker: {totals}");
    assert_eq!(totals["dead_letters"], 1, "{totals}");
    let dead = broker.read_all("flows.dead-letter");
    assert_eq!(dead.len(), 1);
    let d: Value = serde_json::from_slice(&dead[0].2).expect("JSON");
    assert_eq!(
        (
            d["topic"].as_str(),
            d["partition"].as_i64(),
            d["offset"].as_i64()
        ),
        (Some("flows"), Some(0), Some(1)),
        "{d}"
    );
    assert_eq!(d["value_hex"], "0fffffff");
    assert!(
        d["reason"].as_str().is_some_and(|r| r.contains("protobuf")),
        "{d}"
    );
    let flows: BTreeSet<(String, String, u64, String)> = got
        .values()
        .map(|v| {
            let f = &v[0]["flow"];
            (
                f["src"].as_str().unwrap_or_default().to_string(),
                f["dst"].as_str().unwrap_or_default().to_string(),
                f["dport"].as_u64().unwrap_or_default(),
                f["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String, u64, String)> = [
        ("10.20.0.5", "198.51.100.7", 8443, "violation"),
        ("10.20.0.6", "203.0.113.50", 23, "violation"),
    ]
    .into_iter()
    .map(|(a, b, p, s)| (a.to_string(), b.to_string(), p, s.to_string()))
    .collect();
    assert_eq!(flows, want);
    // The record's bytes and packets went into the flow as goflow2 counted them.
    let f = got
        .values()
        .map(|v| &v[0]["flow"])
        .find(|f| f["dport"] == 8443)
        .expect("the protobuf record's finding");
    assert_eq!(
        (f["packets"][0].as_u64(), f["bytes"][0].as_u64()),
        (Some(6), Some(1200))
    );
    assert_eq!(f["first"], "2027-01-15T08:00:00Z");
    // The group's window used its DNS flow (record 2) and not its HTTPS one: `https` is
    // unused, `dns` is not.
    let unused: BTreeSet<(String, String)> = broker
        .findings_of("flows.findings", &["unused"])
        .values()
        .map(|v| {
            (
                v[0]["group"].as_str().unwrap_or_default().to_string(),
                v[0]["rule"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(
        unused.contains(&("devices".into(), "kafka-device/https".into())),
        "{unused:?}"
    );
    assert!(
        !unused.iter().any(|(_, r)| r == "kafka-device/dns"),
        "{unused:?}"
    );
    let _: IpAddr = f["src"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .expect("an address");
}

/// A NetFlow v5 datagram by Cisco's v5 layout (a 24-byte header, 48-byte records), built by
/// hand: exporter uptime 100,000 ms at 1,800,000,000 s; each record (src, sport, dst, dport,
/// protocol) with 5 packets, 700 bytes, first seen at uptime 90,000 ms (10 s before export).
/// One NetFlow v5 record: source, source port, destination, destination port, protocol.
type V5 = ([u8; 4], u16, [u8; 4], u16, u8);

/// What the collector published: key, source, destination, ports, packets, bytes, start (ns).
type Published = (String, String, String, u32, u32, u64, u64, u64);

fn netflow_v5(records: &[V5]) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend(5u16.to_be_bytes()); // version
    d.extend(u16::try_from(records.len()).expect("few").to_be_bytes()); // count
    d.extend(100_000u32.to_be_bytes()); // sys_uptime
    d.extend(1_800_000_000u32.to_be_bytes()); // unix_secs
    d.extend(0u32.to_be_bytes()); // unix_nsecs
    d.extend(1u32.to_be_bytes()); // flow_sequence
    d.extend([0, 0]); // engine type, id
    d.extend(0u16.to_be_bytes()); // sampling_interval
    for (src, sport, dst, dport, proto) in records {
        d.extend(src);
        d.extend(dst);
        d.extend([0u8; 4]); // nexthop
        d.extend([0u8; 4]); // input, output
        d.extend(5u32.to_be_bytes()); // dPkts
        d.extend(700u32.to_be_bytes()); // dOctets
        d.extend(90_000u32.to_be_bytes()); // first
        d.extend(95_000u32.to_be_bytes()); // last
        d.extend(sport.to_be_bytes());
        d.extend(dport.to_be_bytes());
        d.extend([0, 0x1b, *proto, 0]); // pad1, tcp_flags, prot, tos
        d.extend([0u8; 8]); // src_as, dst_as, masks, pad2
    }
    d
}

#[test]
fn the_collector_publishes_records_keyed_by_the_device() {
    let Some(bin) = tansu() else { return };
    let broker = Broker::start(bin);
    broker.topic("flows", 6);
    let dir = site_dir();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port();
    let collector = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .arg("audit")
        .arg(dir.path().join("site.yaml"))
        .arg("--listen")
        .arg(format!("udp://127.0.0.1:{port}"))
        .arg("--to")
        .arg(format!("kafka://{}/flows", broker.addr))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the collector starts");
    std::thread::sleep(Duration::from_millis(1500));
    // A peer opening SSH to device 10.20.0.7 (keyed by the device, its destination), and the
    // device's HTTPS to a peer (keyed by the device, its source).
    let datagram = netflow_v5(&[
        ([198, 51, 100, 20], 51000, [10, 20, 0, 7], 22, 6),
        ([10, 20, 0, 8], 40000, [203, 0, 113, 9], 443, 6),
    ]);
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("socket");
    s.send_to(&datagram, ("127.0.0.1", port)).expect("sent");
    let t = Instant::now();
    let mut got = Vec::new();
    while got.len() < 2 && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(300));
        got = broker.read_all_keyed("flows");
    }
    let done = stop(collector);
    assert_eq!(
        (done["datagrams"].as_u64(), done["records"].as_u64()),
        (Some(1), Some(2)),
        "{done}"
    );
    let mut seen: Vec<Published> = got
        .iter()
        .map(|(key, v)| {
            let m = portolan_kafka::goflow::decode(v).expect("a goflow2 FlowMessage");
            let ip = |b: &[u8]| match <[u8; 4]>::try_from(b) {
                Ok(a) => IpAddr::from(a).to_string(),
                Err(_) => String::new(),
            };
            (
                key.clone(),
                ip(&m.src_addr),
                ip(&m.dst_addr),
                m.src_port,
                m.dst_port,
                m.packets,
                m.bytes,
                m.time_flow_start_ns,
            )
        })
        .collect();
    seen.sort();
    // Start: export 1,800,000,000 s less (100,000 − 90,000) ms of uptime.
    let start = 1_799_999_990_000_000_000u64;
    assert_eq!(
        seen,
        vec![
            (
                "10.20.0.7".into(),
                "198.51.100.20".into(),
                "10.20.0.7".into(),
                51000,
                22,
                5,
                700,
                start
            ),
            (
                "10.20.0.8".into(),
                "10.20.0.8".into(),
                "203.0.113.9".into(),
                40000,
                443,
                5,
                700,
                start
            ),
        ]
    );
}

// ---------------------------------------------------------------------------------------
// `--kafka-option KEY=VALUE`: checked here, then handed to librdkafka, which is the judge of
// its names (no broker needed: librdkafka refuses an unknown property when the client is
// created, before it connects).

fn audit_with(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .arg("audit")
        .arg(dir.join("site.yaml"))
        .args(args)
        .output()
        .expect("portolan audit runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn kafka_options_are_checked_and_reach_librdkafka() {
    let d = site_dir();
    let from = ["--from", "kafka://127.0.0.1:1/flows", "--group", "g"];
    // Not KEY=VALUE.
    let (code, err) = audit_with(
        d.path(),
        &[&from[..], &["--kafka-option", "fetch"]].concat(),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("KEY=VALUE"), "{err}");
    // Without --from or --to there is no Kafka client to give it to.
    std::fs::write(d.path().join("empty.json"), "").expect("file");
    let input = d.path().join("empty.json").display().to_string();
    let (code, err) = audit_with(
        d.path(),
        &[&input, "--kafka-option", "fetch.wait.max.ms=100"],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--kafka-option needs --from or --to"), "{err}");
    // A name librdkafka does not know: librdkafka's own refusal, so the option reached it.
    let (code, err) = audit_with(
        d.path(),
        &[&from[..], &["--kafka-option", "no.such.property=1"]].concat(),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no.such.property"), "{err}");
}
