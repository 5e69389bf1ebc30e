//! `portolan audit SITE --from kafka://…` (a consumer-group worker) and
//! `portolan audit SITE --listen udp://… --to kafka://…` (the collector publishing to Kafka):
//! the command-line side of `portolan_kafka`.
//!
//! Standard output is `audit`'s JSON lines whatever `--format` says, as in live mode: the
//! header line, then the closing `kafka-worker` or `forwarded` line (`portolan schema audit`).
//! The messages a worker produces to Kafka carry their own format, `portolan/audit-kafka/v1`
//! (`portolan schema audit-kafka`), since each stands alone.

use std::io::Write as _;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use portolan_audit::Options;
use portolan_model::ir::Policy;

use crate::cli::AuditArgs;
use crate::output::Outcome;

fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    Ok(stop)
}

fn line(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let out = std::io::stdout();
    let mut w = out.lock();
    serde_json::to_writer(&mut w, v)?;
    w.write_all(b"\n")?;
    w.flush()?;
    Ok(())
}

/// `--kafka-option KEY=VALUE`s, or the usage error of the first that is not.
fn kafka_options(a: &AuditArgs) -> Result<Vec<(String, String)>, String> {
    a.kafka_options
        .iter()
        .map(|o| portolan_kafka::parse_option(o).map_err(|e| format!("--kafka-option {e}")))
        .collect()
}

/// `--from kafka://BROKERS/TOPIC --group NAME`.
pub fn worker(policy: Policy, a: &AuditArgs, url: &str) -> anyhow::Result<Outcome> {
    let (brokers, topic) = match portolan_kafka::parse_url(url) {
        Ok(x) => x,
        Err(e) => return crate::contract::fail("usage", format!("--from {e}")),
    };
    let options = match kafka_options(a) {
        Ok(o) => o,
        Err(e) => return crate::contract::fail("usage", e),
    };
    let Some(group) = a.group.clone() else {
        return crate::contract::fail("usage", "--from needs --group NAME");
    };
    let config = portolan_kafka::worker::Config {
        findings: a
            .findings
            .clone()
            .unwrap_or_else(|| format!("{topic}.findings")),
        dead_letter: a
            .dead_letter
            .clone()
            .unwrap_or_else(|| format!("{topic}.dead-letter")),
        brokers,
        topic,
        group,
        window: a.every.max(Duration::from_secs(1)),
        window_records: a.window_records.max(1),
        options,
    };
    let stop = stop_on_signals()?;
    println!("{}", crate::contract::header_line("audit"));
    eprintln!(
        "kafka worker of group `{}` on {} (topic {}); findings to {}, dead letters to {}",
        config.group, config.brokers, config.topic, config.findings, config.dead_letter
    );
    let opts = Options {
        firewall: a.firewall.clone(),
    };
    match portolan_kafka::worker::run(policy, opts, config, &stop) {
        Ok(t) => {
            line(&t)?;
            Ok(if t.findings > 0 {
                Outcome::Findings
            } else {
                Outcome::Ok
            })
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(Outcome::BadInput)
        }
    }
}

/// `--listen udp://ADDR:PORT --to kafka://BROKERS/TOPIC`.
pub fn collector(
    policy: &Policy,
    a: &AuditArgs,
    listen: &str,
    to: &str,
) -> anyhow::Result<Outcome> {
    let (brokers, topic) = match portolan_kafka::parse_url(to) {
        Ok(x) => x,
        Err(e) => return crate::contract::fail("usage", format!("--to {e}")),
    };
    let options = match kafka_options(a) {
        Ok(o) => o,
        Err(e) => return crate::contract::fail("usage", e),
    };
    let Some(addr) = listen.strip_prefix("udp://") else {
        return crate::contract::fail(
            "usage",
            format!("--listen takes udp://ADDR:PORT, not `{listen}`"),
        );
    };
    let socket = match std::net::UdpSocket::bind(addr) {
        Ok(s) => s,
        Err(e) => {
            return crate::contract::fail("io", format!("cannot listen on udp://{addr}: {e}"))
        }
    };
    let stop = stop_on_signals()?;
    println!("{}", crate::contract::header_line("audit"));
    eprintln!(
        "listening on udp://{}; publishing records to kafka://{brokers}/{topic}, Ctrl-C to end",
        socket.local_addr()?
    );
    let opts = Options {
        firewall: a.firewall.clone(),
    };
    match portolan_kafka::collector::run(&socket, policy, &opts, &brokers, &options, &topic, &stop)
    {
        Ok(f) => {
            line(&f)?;
            Ok(Outcome::Ok)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(Outcome::BadInput)
        }
    }
}
