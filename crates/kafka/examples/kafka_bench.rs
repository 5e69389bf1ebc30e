//! The driver of bench/kafka.sh (not a test): records per second through 1 and 2
//! `portolan audit --from` workers, produce-to-finding latency, and a worker's memory per
//! 100,000 live flows. The broker, the site and the release binary come from the script.
//!
//! Environment: BROKER (host:port), TANSU (the broker binary, for `topic create`), PORTOLAN
//! (the binary), SITE (the site file), RECORDS (the every-record-violating mix, default
//! 1000000), RECORDS_MIX (the one-in-100 mix, default 2000000), PARTITIONS (default 6),
//! RATE (latency phase, records/s, default 2000), SECONDS (latency phase, default 10),
//! WINDOW (the throughput phase's `--window-records`, default 2000), BROKER_PID,
//! KAFKA_OPTIONS (the workers' `--kafka-option`s), MIXES (`1 100`), PHASES (`throughput
//! latency memory`), WORKER_LOG (a directory for the throughput workers' standard error).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use portolan_kafka::goflow::{encode, FlowMessage};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

fn env(k: &str, d: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| d.to_string())
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0))
}

/// Clock ticks per second of /proc/PID/stat's times (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;

/// One throughput run.
struct Throughput {
    /// Records committed per second while the group was stable.
    rate: f64,
    /// Records committed over the measured span.
    measured: u64,
    /// Records per second the driver produced them at (before the workers started).
    produced: f64,
    broker_cpu: f64,
    workers_cpu: f64,
}

struct Bench {
    broker: String,
    /// `--window-records` of the throughput phase's workers (WINDOW): small enough that
    /// findings stream out rather than come in a few bursts.
    window: String,
    /// The broker's process, for its CPU time (BROKER_PID).
    broker_pid: Option<u32>,
    tansu: String,
    portolan: String,
    site: String,
    partitions: u32,
}

/// Record `i`: device 10.20.(i/250 % 4).(i%250+1) to 198.51.100.9:9999/tcp (a port the profile
/// does not state: every record is one violating flow, one finding).
fn record(i: u64, start_ns: u64) -> (String, Vec<u8>) {
    record_mixed(i, start_ns, 1)
}

/// Record `i` as [`record`] when `i` is a multiple of `every`, else the device's query to the
/// site's resolver 10.20.255.1:53/udp, a flow the profile states (conforming, no finding).
fn record_mixed(i: u64, start_ns: u64, every: u64) -> (String, Vec<u8>) {
    let d = i % 1000;
    let violating = i.is_multiple_of(every);
    let dev = [10, 20, (d / 250) as u8, (d % 250 + 1) as u8];
    let sport = 1024 + (i / 1000) as u32;
    let m = FlowMessage {
        r#type: 4,
        src_addr: dev.to_vec(),
        dst_addr: if violating {
            vec![198, 51, 100, 9]
        } else {
            vec![10, 20, 255, 1]
        },
        bytes: 400,
        packets: 4,
        proto: if violating { 6 } else { 17 },
        src_port: sport,
        dst_port: if violating { 9999 } else { 53 },
        time_flow_start_ns: start_ns,
        time_flow_end_ns: start_ns + 1_000_000,
        ..FlowMessage::default()
    };
    (
        format!("{}.{}.{}.{}", dev[0], dev[1], dev[2], dev[3]),
        encode(&m),
    )
}

impl Bench {
    fn topics(&self, base: &str) {
        for (t, n) in [
            (base.to_string(), self.partitions),
            (format!("{base}.findings"), self.partitions),
            (format!("{base}.dead-letter"), 1),
        ] {
            let ok = Command::new(&self.tansu)
                .args(["topic", "create", &t, "--broker"])
                .arg(format!("tcp://{}", self.broker))
                .args(["--partitions", &n.to_string()])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "topic create {t}");
        }
    }

    fn producer(&self) -> BaseProducer {
        ClientConfig::new()
            .set("bootstrap.servers", &self.broker)
            .set("broker.address.family", "v4")
            .set("linger.ms", "5")
            .set("queue.buffering.max.messages", "1000000")
            .create()
            .expect("producer")
    }

    fn send(p: &BaseProducer, topic: &str, key: &str, v: &[u8]) {
        let mut r = BaseRecord::to(topic).key(key).payload(v);
        loop {
            match p.send(r) {
                Ok(()) => return,
                Err((_, back)) => {
                    r = back;
                    p.poll(Duration::from_millis(5));
                }
            }
        }
    }

    fn findings_consumer(&self, topic: &str) -> BaseConsumer {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.broker)
            .set("broker.address.family", "v4")
            .set("group.id", format!("bench-reader-{topic}"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        c.subscribe(&[topic]).expect("subscribe");
        c
    }

    fn worker(&self, topic: &str, group: &str, every: &str, window: &str) -> Child {
        self.worker_command(topic, group, every, window)
            .stderr(Stdio::null())
            .spawn()
            .expect("worker")
    }

    /// A worker whose standard error (its `assigned partitions` lines) the bench reads.
    fn worker_piped(&self, topic: &str, group: &str, every: &str, window: &str) -> Child {
        self.worker_command(topic, group, every, window)
            .stderr(Stdio::piped())
            .spawn()
            .expect("worker")
    }

    fn worker_command(&self, topic: &str, group: &str, every: &str, window: &str) -> Command {
        let mut c = Command::new(&self.portolan);
        c.arg("audit")
            .arg(&self.site)
            .arg("--from")
            .arg(format!("kafka://{}/{topic}", self.broker))
            .args([
                "--group",
                group,
                "--every",
                every,
                "--window-records",
                window,
            ])
            .stdout(Stdio::null());
        // KAFKA_OPTIONS: the workers' `--kafka-option`s, space-separated (none by default:
        // librdkafka's defaults, what a user gets). tansu 0.6.0 answers a fetch with at most
        // 5 MiB and sleeps after it for up to half the fetch's wait (250 ms at librdkafka's
        // default `fetch.wait.max.ms` of 500), which bounds each worker's fetch rate; try
        // `fetch.wait.max.ms=100` (see bench/README.md).
        for o in env("KAFKA_OPTIONS", "").split_whitespace() {
            c.args(["--kafka-option", o]);
        }
        c
    }

    /// Records per second with `w` workers, one record in `every` violating (the others
    /// conforming). All `n` records are produced first (the production rate is returned
    /// too), then the workers start. The rate is taken from the moment the group is stable —
    /// every worker holds partitions, together all of them, as their `assigned partitions`
    /// lines say — to the moment 90 % of what was left then is committed, read from the
    /// group's committed offsets (a window's offset is committed only after its findings were
    /// delivered, so this is audited-and-delivered progress). Group joins and rebalances are
    /// left out: tansu answers the first JoinGroup at once, so the first worker starts alone.
    /// Also the CPU seconds the broker and the workers spent over the measured span.
    fn throughput(&self, w: usize, n: u64, every: u64) -> Throughput {
        let topic = format!("tput{w}x{every}");
        let group = format!("bench{w}x{every}");
        self.topics(&topic);
        let p = self.producer();
        let t0 = now_ns();
        let produce = Instant::now();
        for i in 0..n {
            let (k, v) = record_mixed(i, t0, every);
            Self::send(&p, &topic, &k, &v);
        }
        p.flush(Duration::from_secs(300)).expect("produced");
        let produced = n as f64 / produce.elapsed().as_secs_f64();
        let monitor: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.broker)
            .set("broker.address.family", "v4")
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("monitor");
        let mut tpl = TopicPartitionList::new();
        for i in 0..self.partitions {
            tpl.add_partition(&topic, i as i32);
        }
        let committed = || -> u64 {
            monitor
                .committed_offsets(tpl.clone(), Duration::from_secs(5))
                .map(|t| {
                    t.elements()
                        .iter()
                        .map(|e| match e.offset() {
                            Offset::Offset(o) => o.max(0) as u64,
                            _ => 0,
                        })
                        .sum()
                })
                .unwrap_or(0)
        };
        // Per worker: how many partitions its last assignment gave it.
        let held = Arc::new(Mutex::new(vec![0usize; w]));
        let mut kids: Vec<Child> = (0..w)
            .map(|i| {
                let mut k = self.worker_piped(&topic, &group, "1", &self.window);
                let err = k.stderr.take().expect("stderr piped");
                let held = Arc::clone(&held);
                let topic_ = topic.clone();
                std::thread::spawn(move || {
                    // WORKER_LOG=DIR keeps each worker's standard error (with
                    // PORTOLAN_KAFKA_DEBUG=fetch, librdkafka's fetch log).
                    let mut log = std::env::var_os("WORKER_LOG").and_then(|d| {
                        std::fs::File::create(
                            std::path::Path::new(&d).join(format!("{topic_}-{i}.log")),
                        )
                        .ok()
                    });
                    for line in BufReader::new(err).lines().map_while(Result::ok) {
                        if let Some(f) = &mut log {
                            use std::io::Write;
                            let _ = writeln!(f, "{line}");
                        }
                        let count = |l: &str| {
                            l.split_once('[')
                                .and_then(|(_, r)| r.split_once(']'))
                                .map_or(0, |(ps, _)| {
                                    ps.split(',').filter(|x| !x.trim().is_empty()).count()
                                })
                        };
                        if line.contains("kafka: assigned partitions") {
                            held.lock().expect("lock")[i] = count(&line);
                        } else if line.contains("kafka: revoked partitions") {
                            held.lock().expect("lock")[i] = 0;
                        }
                    }
                });
                k
            })
            .collect();
        let wait = Instant::now();
        loop {
            let h = held.lock().expect("lock").clone();
            if h.iter().all(|&c| c > 0) && h.iter().sum::<usize>() == self.partitions as usize {
                break;
            }
            assert!(
                wait.elapsed() < Duration::from_secs(120),
                "group not stable: {h:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let t_stable = Instant::now();
        let c0 = committed();
        let broker0 = self.broker_pid.map_or(0, cpu_ticks);
        let workers0: u64 = kids.iter().map(|k| cpu_ticks(k.id())).sum();
        let target = c0 + (n.saturating_sub(c0)) * 9 / 10;
        let mut c1 = c0;
        while c1 < target && t_stable.elapsed() < Duration::from_secs(600) {
            std::thread::sleep(Duration::from_millis(20));
            c1 = committed();
        }
        let span = t_stable.elapsed().as_secs_f64();
        let broker_cpu = self.broker_pid.map_or(0, cpu_ticks).saturating_sub(broker0);
        let workers_cpu: u64 = kids
            .iter()
            .map(|k| cpu_ticks(k.id()))
            .sum::<u64>()
            .saturating_sub(workers0);
        for k in &mut kids {
            let _ = k.kill();
            let _ = k.wait();
        }
        Throughput {
            rate: (c1 - c0) as f64 / span,
            measured: c1 - c0,
            produced,
            broker_cpu: broker_cpu as f64 / TICKS,
            workers_cpu: workers_cpu as f64 / TICKS,
        }
    }

    /// Produce-to-finding latency at `rate` records/s for `secs` seconds, `w` workers.
    fn latency(&self, w: usize, rate: u64, secs: u64) -> (f64, f64, usize) {
        let topic = "latency";
        self.topics(topic);
        let c = self.findings_consumer(&format!("{topic}.findings"));
        let mut kids: Vec<Child> = (0..w)
            .map(|_| self.worker(topic, "benchlat", "1", "20000"))
            .collect();
        std::thread::sleep(Duration::from_secs(8));
        let p = self.producer();
        let total = rate * secs;
        let start = Instant::now();
        let mut lat = Vec::new();
        let mut i = 0u64;
        while i < total {
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
            while i < due.min(total) {
                let (k, v) = record(i, now_ns());
                Self::send(&p, topic, &k, &v);
                i += 1;
            }
            p.poll(Duration::ZERO);
            while let Some(Ok(m)) = c.poll(Duration::from_millis(1)) {
                lat.extend(latency_of(m.payload().unwrap_or_default()));
            }
        }
        p.flush(Duration::from_secs(30)).expect("produced");
        let until = Instant::now() + Duration::from_secs(20);
        while (lat.len() as u64) < total && Instant::now() < until {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                lat.extend(latency_of(m.payload().unwrap_or_default()));
            }
        }
        for k in &mut kids {
            let _ = k.kill();
            let _ = k.wait();
        }
        lat.sort_by(f64::total_cmp);
        let q = |f: f64| {
            lat.get(((lat.len() as f64 - 1.0) * f) as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        (q(0.5), q(0.99), lat.len())
    }

    /// A worker's resident memory holding `n` live flows (its window not closed), less its
    /// resident memory idle.
    fn memory(&self, n: u64) -> (u64, u64) {
        let topic = "memory";
        self.topics(topic);
        let mut kid = self.worker(topic, "benchmem", "3600", "100000000");
        std::thread::sleep(Duration::from_secs(8));
        let idle = rss_kib(kid.id());
        let p = self.producer();
        let t0 = now_ns();
        for i in 0..n {
            let (k, v) = record(i, t0);
            Self::send(&p, topic, &k, &v);
        }
        p.flush(Duration::from_secs(120)).expect("produced");
        // Wait until the worker's CPU time stops growing: it has read everything.
        let mut last = cpu_ticks(kid.id());
        let mut still = 0;
        while still < 4 {
            std::thread::sleep(Duration::from_millis(500));
            let t = cpu_ticks(kid.id());
            still = if t == last { still + 1 } else { 0 };
            last = t;
        }
        let full = rss_kib(kid.id());
        let _ = kid.kill();
        let _ = kid.wait();
        (idle, full)
    }
}

/// Seconds from a violation's flow start (its record's produce time) to now; `None` for
/// other findings (unused flows per window).
fn latency_of(v: &[u8]) -> Option<f64> {
    let f: serde_json::Value = serde_json::from_slice(v).ok()?;
    if f["finding"] != "violation" {
        return None;
    }
    let ns = portolan_audit::time::parse(f["flow"]["first"].as_str()?)?;
    Some((now_ns() as f64 - ns as f64) / 1e9)
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of /proc/PID/stat (utime, stime), counted after the command's ')'.
    f.get(11).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
}

fn main() {
    let b = Bench {
        broker: env("BROKER", "127.0.0.1:9092"),
        window: env("WINDOW", "2000"),
        broker_pid: std::env::var("BROKER_PID")
            .ok()
            .and_then(|p| p.parse().ok()),
        tansu: env("TANSU", "tansu"),
        portolan: env("PORTOLAN", "target/release/portolan"),
        site: env("SITE", "site.yaml"),
        partitions: env("PARTITIONS", "6").parse().expect("PARTITIONS"),
    };
    let n: u64 = env("RECORDS", "1000000").parse().expect("RECORDS");
    let n_mix: u64 = env("RECORDS_MIX", "2000000").parse().expect("RECORDS_MIX");
    let rate: u64 = env("RATE", "2000").parse().expect("RATE");
    let secs: u64 = env("SECONDS", "10").parse().expect("SECONDS");
    // Every record a finding (the broker also takes a finding per record and serves it to
    // the reader), then one record in 100 (the broker mostly serves the workers' fetches).
    // MIXES: which mixes to run (`1`: every record violating, `100`: one in 100), and
    // PHASES (`throughput latency memory`): which phases.
    let mixes: Vec<u64> = env("MIXES", "1 100")
        .split_whitespace()
        .map(|m| m.parse().expect("MIXES"))
        .collect();
    let phases = env("PHASES", "throughput latency memory");
    for &every in mixes.iter().filter(|_| phases.contains("throughput")) {
        let what = if every == 1 {
            "every record violating".to_string()
        } else {
            format!("one record in {every} violating")
        };
        let n = if every == 1 { n } else { n_mix };
        let one = b.throughput(1, n, every);
        println!(
            "throughput, {what}, 1 worker:  {:.0} records/s ({} of {n} records measured, produced at {:.0}/s, {} partitions); CPU s broker {:.2}, worker {:.2}",
            one.rate, one.measured, one.produced, b.partitions, one.broker_cpu, one.workers_cpu
        );
        let two = b.throughput(2, n, every);
        println!(
            "throughput, {what}, 2 workers: {:.0} records/s ({} measured); CPU s broker {:.2}, workers {:.2}",
            two.rate, two.measured, two.broker_cpu, two.workers_cpu
        );
        println!(
            "ratio 2/1, {what}: {:.2} (goal >= 1.7)",
            two.rate / one.rate
        );
    }
    if !phases.contains("latency") {
        return;
    }
    let (p50, p99, seen) = b.latency(1, rate, secs);
    println!(
        "latency produce -> finding, 1 worker, {rate} records/s for {secs} s, windows of 1 s: p50 {:.3} s, p99 {:.3} s ({seen} findings)",
        p50, p99
    );
    if !phases.contains("memory") {
        return;
    }
    let (idle, full) = b.memory(100_000);
    println!(
        "memory: worker idle {idle} KiB, holding 100000 live flows {full} KiB: {} KiB per 100k live flows",
        full.saturating_sub(idle)
    );
}
