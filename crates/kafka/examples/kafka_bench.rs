//! The driver of bench/kafka.sh (not a test): records per second through 1 and 2
//! `portolan audit --from` workers, produce-to-finding latency, and a worker's memory per
//! 100,000 live flows. The broker, the site and the release binary come from the script.
//!
//! Environment: BROKER (host:port), TANSU (the broker binary, for `topic create`), PORTOLAN
//! (the binary), SITE (the site file), RECORDS (default 200000), PARTITIONS (default 6),
//! RATE (latency phase, records/s, default 2000), SECONDS (latency phase, default 10),
//! WINDOW (the throughput phase's `--window-records`, default 2000), BROKER_PID.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use portolan_kafka::goflow::{encode, FlowMessage};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

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
        Command::new(&self.portolan)
            .arg("audit")
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
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("worker")
    }

    /// Records per second with `w` workers, one record in `every` violating (the others
    /// conforming): all records produced first, then the workers started; the rate between
    /// the 10th and the 90th percentile of findings seen. Also the CPU seconds the broker
    /// and the workers spent from the workers' start to the 90th percentile.
    fn throughput(&self, w: usize, n: u64, every: u64) -> (f64, f64, f64) {
        let topic = format!("tput{w}x{every}");
        self.topics(&topic);
        let p = self.producer();
        let t0 = now_ns();
        for i in 0..n {
            let (k, v) = record_mixed(i, t0, every);
            Self::send(&p, &topic, &k, &v);
        }
        p.flush(Duration::from_secs(120)).expect("produced");
        let c = self.findings_consumer(&format!("{topic}.findings"));
        let broker0 = self.broker_pid.map_or(0, cpu_ticks);
        let mut kids: Vec<Child> = (0..w)
            .map(|_| self.worker(&topic, &format!("bench{w}x{every}"), "1", &self.window))
            .collect();
        let n = n.div_ceil(every);
        let (lo, hi) = (n / 10, n * 9 / 10);
        let mut seen = 0u64;
        let (mut t_lo, mut t_hi) = (None, None);
        let start = Instant::now();
        while seen < hi && start.elapsed() < Duration::from_secs(600) {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                if latency_of(m.payload().unwrap_or_default()).is_none() {
                    continue;
                }
                seen += 1;
                if seen == lo {
                    t_lo = Some(Instant::now());
                }
                if seen == hi {
                    t_hi = Some(Instant::now());
                }
            }
        }
        let broker_cpu = self.broker_pid.map_or(0, cpu_ticks).saturating_sub(broker0);
        let workers_cpu: u64 = kids.iter().map(|k| cpu_ticks(k.id())).sum();
        for k in &mut kids {
            let _ = k.kill();
            let _ = k.wait();
        }
        let rate = match (t_lo, t_hi) {
            (Some(a), Some(b)) => ((hi - lo) * every) as f64 / (b - a).as_secs_f64(),
            _ => 0.0,
        };
        (rate, broker_cpu as f64 / TICKS, workers_cpu as f64 / TICKS)
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
    let n: u64 = env("RECORDS", "200000").parse().expect("RECORDS");
    let rate: u64 = env("RATE", "2000").parse().expect("RATE");
    let secs: u64 = env("SECONDS", "10").parse().expect("SECONDS");
    // Every record a finding (the broker also takes a finding per record and serves it to
    // the reader), then one record in 100 (the broker mostly serves the workers' fetches).
    for every in [1, 100] {
        let what = if every == 1 {
            "every record violating".to_string()
        } else {
            format!("one record in {every} violating")
        };
        let (one, b1, w1) = b.throughput(1, n, every);
        println!(
            "throughput, {what}, 1 worker:  {one:.0} records/s ({n} records, {} partitions); CPU s broker {b1:.2}, worker {w1:.2}",
            b.partitions
        );
        let (two, b2, w2) = b.throughput(2, n, every);
        println!(
            "throughput, {what}, 2 workers: {two:.0} records/s; CPU s broker {b2:.2}, workers {w2:.2}"
        );
        println!("ratio 2/1, {what}: {:.2} (goal >= 1.7)", two / one);
    }
    let (p50, p99, seen) = b.latency(1, rate, secs);
    println!(
        "latency produce -> finding, 1 worker, {rate} records/s for {secs} s, windows of 1 s: p50 {:.3} s, p99 {:.3} s ({seen} findings)",
        p50, p99
    );
    let (idle, full) = b.memory(100_000);
    println!(
        "memory: worker idle {idle} KiB, holding 100000 live flows {full} KiB: {} KiB per 100k live flows",
        full.saturating_sub(idle)
    );
}
