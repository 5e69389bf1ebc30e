//! The forwarder's counters and its Prometheus endpoint (`enforce --metrics ADDR:PORT`): a
//! small HTTP/1.1 server answering `GET /metrics` with the text exposition format
//! (prometheus.io, "Exposition formats": `# HELP`/`# TYPE` lines, one sample a line, a
//! histogram as cumulative `_bucket{le="..."}` samples ending with `le="+Inf"`, then `_sum`
//! and `_count`; content type `text/plain; version=0.0.4`).
//!
//! The bypass counts are the kernel's: the packets the enforce policy's `dns_bypass` and
//! `doh_bypass` chains dropped and the connections `dns_redirect` redirected, read from
//! their rules' counters at each scrape (a reload of the policy starts them again at zero,
//! which Prometheus reads as a counter reset).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use portolan_nft::Where;
use serde_json::Value;

/// Upper bounds of the commit latency histogram, seconds.
pub const COMMIT_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// What the forwarder counts.
#[derive(Debug, Default)]
pub struct Stats {
    pub queries: AtomicU64,
    pub answers: AtomicU64,
    /// Answers to a name a rule of the asking device admits.
    pub permitted: AtomicU64,
    /// Queries answered REFUSED or NXDOMAIN by the unlisted-name policy.
    pub refused: AtomicU64,
    pub elements: AtomicU64,
    /// Elements kept past their TTL because their flow was live in conntrack.
    pub elements_refreshed: AtomicU64,
    /// Elements this forwarder wrote that reached their timeout without a refresh.
    pub elements_expired: AtomicU64,
    pub commit_errors: AtomicU64,
    pub upstream_errors: AtomicU64,
    pub conntrack_errors: AtomicU64,
    /// Lookups of a known DNS-over-HTTPS host by a device.
    pub doh_lookups: AtomicU64,
    commit_buckets: [AtomicU64; COMMIT_BUCKETS.len()],
    commit_count: AtomicU64,
    /// Microseconds.
    commit_sum_us: AtomicU64,
}

impl Stats {
    /// Records one commit (a transaction that reached the kernel) and how long it took.
    pub fn observe_commit(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (b, le) in self.commit_buckets.iter().zip(COMMIT_BUCKETS) {
            if s <= le {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.commit_count.fetch_add(1, Ordering::Relaxed);
        self.commit_sum_us.fetch_add(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// The exposition text: these counters and the kernel's `bypass` counts.
    pub fn render(&self, bypass: &Bypass) -> String {
        let mut o = String::new();
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut counter = |name: &str, help: &str, v: u64| {
            o.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
            ));
        };
        counter(
            "portolan_enforce_queries_total",
            "DNS queries received from devices.",
            g(&self.queries),
        );
        counter(
            "portolan_enforce_answers_total",
            "Answers from the upstream passed to devices.",
            g(&self.answers),
        );
        counter(
            "portolan_enforce_permitted_answers_total",
            "Answers to a name a flow of the asking device states.",
            g(&self.permitted),
        );
        counter(
            "portolan_enforce_refused_total",
            "Queries for names outside the asking device's flows answered REFUSED or NXDOMAIN.",
            g(&self.refused),
        );
        counter(
            "portolan_enforce_elements_added_total",
            "device . peer elements added or extended by an answer.",
            g(&self.elements),
        );
        counter(
            "portolan_enforce_elements_refreshed_total",
            "Elements kept past their TTL while their flow was live in conntrack.",
            g(&self.elements_refreshed),
        );
        counter(
            "portolan_enforce_elements_expired_total",
            "Elements written by this forwarder that reached their timeout.",
            g(&self.elements_expired),
        );
        counter(
            "portolan_enforce_commit_errors_total",
            "Transactions the kernel refused (the answer became SERVFAIL).",
            g(&self.commit_errors),
        );
        counter(
            "portolan_enforce_upstream_errors_total",
            "Queries the upstream did not answer validly (SERVFAIL to the device).",
            g(&self.upstream_errors),
        );
        counter(
            "portolan_enforce_conntrack_errors_total",
            "Sweeps that could not read the conntrack table.",
            g(&self.conntrack_errors),
        );
        counter(
            "portolan_enforce_doh_lookups_total",
            "Lookups of a known DNS-over-HTTPS host by a device.",
            g(&self.doh_lookups),
        );
        let name = "portolan_enforce_bypass_attempts_total";
        o.push_str(&format!(
            "# HELP {name} Device DNS that bypassed the forwarder, from the enforce policy's counters: packets dropped (dns: 53/853 to another resolver; doh: a known DoH endpoint on 443), connections redirected (redirect).\n# TYPE {name} counter\n"
        ));
        for (kind, v) in [
            ("dns", bypass.dns),
            ("doh", bypass.doh),
            ("redirect", bypass.redirect),
        ] {
            o.push_str(&format!("{name}{{kind=\"{kind}\"}} {v}\n"));
        }
        let name = "portolan_enforce_commit_seconds";
        o.push_str(&format!(
            "# HELP {name} Time an answer was held while its elements were committed in the kernel.\n# TYPE {name} histogram\n"
        ));
        for (b, le) in self.commit_buckets.iter().zip(COMMIT_BUCKETS) {
            o.push_str(&format!("{name}_bucket{{le=\"{le}\"}} {}\n", g(b)));
        }
        let count = g(&self.commit_count);
        o.push_str(&format!("{name}_bucket{{le=\"+Inf\"}} {count}\n"));
        o.push_str(&format!(
            "{name}_sum {}\n{name}_count {count}\n",
            g(&self.commit_sum_us) as f64 / 1e6
        ));
        o
    }
}

/// The kernel's bypass counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bypass {
    pub dns: u64,
    pub doh: u64,
    pub redirect: u64,
}

/// The packets counted by the rules of `chain` of Portolan's table; 0 when it does not exist.
fn chain_packets(at: &Where, chain: &str) -> u64 {
    let args = [
        "-j",
        "list",
        "chain",
        "inet",
        portolan_nft::table_name(),
        chain,
    ];
    let Ok(Some(text)) = portolan_nft::exec::nft_output(at, &args) else {
        return 0;
    };
    let Ok(v) = serde_json::from_str::<Value>(&text) else {
        return 0;
    };
    let mut n = 0;
    for o in v["nftables"].as_array().into_iter().flatten() {
        for e in o["rule"]["expr"].as_array().into_iter().flatten() {
            n += e["counter"]["packets"].as_u64().unwrap_or(0);
        }
    }
    n
}

/// The bypass counts of the enforce policy in `at`.
pub fn bypass(at: &Where) -> Bypass {
    Bypass {
        dns: chain_packets(at, "dns_bypass"),
        doh: chain_packets(at, "doh_bypass"),
        redirect: chain_packets(at, "dns_redirect"),
    }
}

/// Serves `GET /metrics` on `listener` until `stop`, one request per connection.
pub(crate) fn serve(
    listener: TcpListener,
    stats: Arc<crate::forwarder::Shared>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let _ = listener.set_nonblocking(true);
        while !stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((c, _)) => {
                    let _ = c.set_nonblocking(false);
                    reply(c, &stats);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    })
}

fn reply(mut c: TcpStream, sh: &crate::forwarder::Shared) {
    let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&req);
    let first = line.lines().next().unwrap_or("");
    let mut parts = first.split(' ');
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, ctype, body) = if method == "GET" && (path == "/metrics" || path == "/") {
        (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            sh.stats.render(&bypass(&sh.at)),
        )
    } else {
        (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "GET /metrics\n".to_string(),
        )
    };
    let _ = write!(
        c,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Binds the metrics listener (in the namespace of the calling thread).
pub fn bind(addr: SocketAddr) -> Result<TcpListener, crate::Error> {
    TcpListener::bind(addr)
        .map_err(|e| crate::Error::Setup(format!("cannot listen for metrics on {addr}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_histogram_buckets_are_cumulative() {
        let s = Stats::default();
        s.observe_commit(Duration::from_micros(700)); // 0.0007 s
        s.observe_commit(Duration::from_millis(20));
        s.observe_commit(Duration::from_secs(3));
        let t = s.render(&Bypass::default());
        // By hand: 0.0007 falls in every bucket from 0.001 up; 0.02 from 0.025 up; 3 s only
        // in +Inf.
        assert!(t.contains("portolan_enforce_commit_seconds_bucket{le=\"0.0005\"} 0\n"));
        assert!(t.contains("portolan_enforce_commit_seconds_bucket{le=\"0.001\"} 1\n"));
        assert!(t.contains("portolan_enforce_commit_seconds_bucket{le=\"0.025\"} 2\n"));
        assert!(t.contains("portolan_enforce_commit_seconds_bucket{le=\"2.5\"} 2\n"));
        assert!(t.contains("portolan_enforce_commit_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(t.contains("portolan_enforce_commit_seconds_sum 3.0207\n"));
        assert!(t.contains("portolan_enforce_commit_seconds_count 3\n"));
    }
}
