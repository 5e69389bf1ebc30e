//! The keepalive measurement (`probe --nat-timeout`): how long the path (NAT, stateful
//! firewall) keeps an idle UDP and TCP mapping. For each idle time of a schedule, one mapping
//! is opened to `portolan responder` with a HOLD request; the responder answers at once (the
//! mapping now exists in both directions) and again after the idle time. If the late answer
//! arrives, the mapping survived that long. All idle times run at once, each on its own
//! mapping, so the whole measurement takes the longest idle time plus a grace period.
//!
//! This module uses real sockets directly rather than [`crate::runtime::Transport`]: it only
//! makes sense against a real path, and it is tested against a real kernel whose conntrack
//! timeouts the test sets.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UdpSocket;

use crate::nonce;
use crate::responder::{ack, late, request_line, Request};
use crate::runtime::{join_all, unspecified_for};

/// Called with (elapsed, total) while measuring.
pub type Progress = Arc<dyn Fn(Duration, Duration) + Send + Sync>;

#[derive(Clone)]
pub struct Options {
    pub responder: SocketAddr,
    pub token: String,
    pub source: Option<IpAddr>,
    /// The longest idle time tried.
    pub max: Duration,
    /// How many idle times, evenly spaced up to `max`.
    pub steps: u32,
    /// How long after an idle time the late answer may take.
    pub grace: Duration,
    pub progress: Option<Progress>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("responder", &self.responder)
            .field("source", &self.source)
            .field("max", &self.max)
            .field("steps", &self.steps)
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

/// What one protocol's measurement found, in whole seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Bounds {
    /// The longest idle time that survived, below the first drop.
    pub survived: Option<u64>,
    /// The shortest idle time after which the mapping was gone.
    pub dropped: Option<u64>,
    /// Every idle time tried and whether it survived.
    pub tried: Vec<(u64, bool)>,
}

impl Bounds {
    fn from_tried(mut tried: Vec<(u64, bool)>) -> Bounds {
        tried.sort();
        let dropped = tried.iter().find(|(_, ok)| !ok).map(|(d, _)| *d);
        let survived = tried
            .iter()
            .filter(|(d, ok)| *ok && dropped.is_none_or(|x| *d < x))
            .map(|(d, _)| *d)
            .max();
        Bounds {
            survived,
            dropped,
            tried,
        }
    }

    pub fn state(&self) -> &'static str {
        if self.dropped.is_some() {
            "drops"
        } else {
            "holds"
        }
    }

    /// "between 2 and 4 s", "within 4 s", or "more than 600 s".
    pub fn describe_drop(&self) -> String {
        match (self.survived, self.dropped) {
            (Some(s), Some(d)) => format!("between {s} and {d} s"),
            (None, Some(d)) => format!("{d} s or less"),
            (Some(s), None) => format!("more than {s} s"),
            (None, None) => "unknown".into(),
        }
    }

    pub fn describe(&self) -> String {
        match self.dropped {
            Some(_) => format!("idle mappings are dropped after {}", self.describe_drop()),
            None => format!(
                "idle mappings survive {} (the longest idle time tried)",
                self.describe_drop()
            ),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Measurement {
    pub udp: Result<Bounds, String>,
    pub tcp: Result<Bounds, String>,
}

/// Idle times: `steps` evenly spaced up to `max`, at least one second apart, in seconds.
pub fn schedule(max: Duration, steps: u32) -> Vec<u64> {
    let max = max.as_secs().max(1);
    let steps = u64::from(steps.max(1)).min(max);
    let mut v: Vec<u64> = (1..=steps).map(|i| (max * i / steps).max(1)).collect();
    v.dedup();
    v
}

async fn udp_hold(o: &Options, idle: u64) -> Result<bool, String> {
    let bind = SocketAddr::new(o.source.unwrap_or_else(|| unspecified_for(&o.responder)), 0);
    let s = UdpSocket::bind(bind)
        .await
        .map_err(|e| format!("bind {bind}: {e}"))?;
    s.connect(o.responder).await.map_err(|e| e.to_string())?;
    let n = format!("{:016x}", nonce::u64());
    let req = request_line(
        &o.token,
        &Request::Hold {
            nonce: n.clone(),
            ms: idle * 1000,
        },
    );
    let mut buf = [0u8; 128];
    let mut acked = false;
    for _ in 0..3 {
        s.send(req.as_bytes()).await.map_err(|e| e.to_string())?;
        match tokio::time::timeout(Duration::from_secs(1), s.recv(&mut buf)).await {
            Ok(Ok(k)) if buf.get(..k) == Some(ack(&n).as_bytes()) => {
                acked = true;
                break;
            }
            Ok(Err(e)) => return Err(format!("the responder at {}: {e}", o.responder)),
            _ => {}
        }
    }
    if !acked {
        return Err(format!(
            "no answer from the responder at {} (is it running with the same token, and is UDP {} allowed?)",
            o.responder,
            o.responder.port()
        ));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(idle) + o.grace;
    loop {
        match tokio::time::timeout_at(deadline, s.recv(&mut buf)).await {
            Err(_) => return Ok(false),
            Ok(Ok(k)) if buf.get(..k) == Some(late(&n).as_bytes()) => return Ok(true),
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return Ok(false),
        }
    }
}

async fn tcp_hold(o: &Options, idle: u64) -> Result<bool, String> {
    let stream = crate::runtime::connect(o.source, o.responder, Duration::from_secs(3))
        .await
        .map_err(|e| {
            format!(
                "cannot connect to the responder at {}: {} (is TCP {} allowed?)",
                o.responder,
                e.detail.unwrap_or_else(|| e.state.name().into()),
                o.responder.port()
            )
        })?;
    let n = format!("{:016x}", nonce::u64());
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    w.write_all(
        request_line(
            &o.token,
            &Request::Hold {
                nonce: n.clone(),
                ms: idle * 1000,
            },
        )
        .as_bytes(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut line = String::new();
    match tokio::time::timeout(Duration::from_secs(3), r.read_line(&mut line)).await {
        Ok(Ok(_)) if line == ack(&n) => {}
        _ => {
            return Err(format!(
                "the responder at {} does not acknowledge (same token on both sides?)",
                o.responder
            ))
        }
    }
    line.clear();
    let wait = Duration::from_secs(idle) + o.grace;
    match tokio::time::timeout(wait, r.read_line(&mut line)).await {
        Ok(Ok(_)) => Ok(line == late(&n)),
        _ => Ok(false),
    }
}

fn collect(r: Vec<(u64, Result<bool, String>)>) -> Result<Bounds, String> {
    let mut tried = Vec::new();
    let mut errors = Vec::new();
    for (d, x) in r {
        match x {
            Ok(ok) => tried.push((d, ok)),
            Err(e) => errors.push(e),
        }
    }
    if tried.is_empty() {
        return Err(errors
            .into_iter()
            .next()
            .unwrap_or_else(|| "nothing measured".into()));
    }
    Ok(Bounds::from_tried(tried))
}

/// Measures the UDP and TCP idle timeouts of the path to the responder.
pub async fn measure(o: &Options) -> Measurement {
    let sched = schedule(o.max, o.steps);
    let total = Duration::from_secs(sched.last().copied().unwrap_or(1)) + o.grace;
    let work = async {
        let udp = join_all(
            sched
                .iter()
                .map(|d| async move { (*d, udp_hold(o, *d).await) }),
        );
        let tcp = join_all(
            sched
                .iter()
                .map(|d| async move { (*d, tcp_hold(o, *d).await) }),
        );
        let (u, t) = tokio::join!(udp, tcp);
        Measurement {
            udp: collect(u),
            tcp: collect(t),
        }
    };
    let Some(progress) = o.progress.clone() else {
        return work.await;
    };
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tokio::pin!(work);
    loop {
        tokio::select! {
            m = &mut work => {
                progress(total, total);
                return m;
            }
            _ = tick.tick() => progress(start.elapsed().min(total), total),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_even_and_bounded() {
        assert_eq!(
            schedule(Duration::from_secs(8), 8),
            vec![1, 2, 3, 4, 5, 6, 7, 8]
        );
        assert_eq!(schedule(Duration::from_secs(600), 10)[0], 60);
        assert_eq!(schedule(Duration::from_secs(2), 10), vec![1, 2]);
    }

    #[test]
    fn bounds_bracket_the_drop() {
        let b = Bounds::from_tried(vec![
            (1, true),
            (2, true),
            (4, false),
            (3, true),
            (5, false),
        ]);
        assert_eq!((b.survived, b.dropped), (Some(3), Some(4)));
        assert_eq!(b.describe_drop(), "between 3 and 4 s");
        let h = Bounds::from_tried(vec![(1, true), (2, true)]);
        assert_eq!((h.survived, h.dropped), (Some(2), None));
    }
}
