//! Timing: the retransmission timeout from measured round trips (RFC 6298's estimator:
//! SRTT, RTTVAR, RTO = SRTT + 4·RTTVAR, 1 s before any sample), the global packet-rate cap
//! (a token bucket), and the random port order (a Fisher-Yates shuffle driven by a
//! xorshift generator seeded from [`portolan_payloads::nonce`]).

use std::time::{Duration, Instant};

/// RFC 6298 §2: the estimator of one path's round trip.
#[derive(Clone, Debug)]
pub struct Rtt {
    srtt: Option<Duration>,
    rttvar: Duration,
    samples: u32,
}

impl Default for Rtt {
    fn default() -> Self {
        Rtt::new()
    }
}

impl Rtt {
    pub fn new() -> Rtt {
        Rtt {
            srtt: None,
            rttvar: Duration::ZERO,
            samples: 0,
        }
    }

    /// Takes one measured round trip (RFC 6298 §2.2 and §2.3, alpha 1/8, beta 1/4).
    pub fn sample(&mut self, r: Duration) {
        self.samples += 1;
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(s) => {
                let diff = s.abs_diff(r);
                self.rttvar = (self.rttvar * 3 + diff) / 4;
                self.srtt = Some((s * 7 + r) / 8);
            }
        }
    }

    pub fn samples(&self) -> u32 {
        self.samples
    }

    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// How long to wait for an answer: SRTT + 4·RTTVAR, at least `floor` (a scan's answers
    /// queue behind each other, unlike one connection's) and 1 s before any sample
    /// (RFC 6298 §2.1); never more than `ceiling`.
    pub fn timeout(&self, floor: Duration, ceiling: Duration) -> Duration {
        match self.srtt {
            None => Duration::from_secs(1).min(ceiling),
            Some(s) => (s + self.rttvar * 4).clamp(floor, ceiling),
        }
    }
}

/// A token bucket of `rate` packets per second, bursts of at most `burst`.
#[derive(Debug)]
pub struct Pacer {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Pacer {
    pub fn new(rate: u32) -> Pacer {
        let rate = f64::from(rate.max(1));
        let burst = (rate / 100.0).clamp(1.0, 256.0);
        Pacer {
            rate,
            burst,
            tokens: 1.0,
            last: Instant::now(),
        }
    }

    pub fn rate(&self) -> u32 {
        self.rate as u32
    }

    /// Blocks until one packet may go.
    pub fn wait(&mut self) {
        loop {
            let now = Instant::now();
            let dt = now.duration_since(self.last).as_secs_f64();
            self.last = now;
            self.tokens = (self.tokens + dt * self.rate).min(self.burst);
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                return;
            }
            // Sleep rather than spin: at least a millisecond (or half the burst's worth), so
            // a fast rate sends small bursts between sleeps instead of holding a core.
            let need = (1.0 - self.tokens) / self.rate;
            let nap = need.max((0.001f64).min(self.burst / self.rate / 2.0));
            std::thread::sleep(Duration::from_secs_f64(nap));
        }
    }
}

/// A xorshift64* generator: enough to shuffle a port order, not for secrets.
#[derive(Debug)]
pub struct Shuffle(u64);

impl Shuffle {
    pub fn new() -> Shuffle {
        Shuffle(portolan_payloads::nonce::u64() | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Shuffles `v` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

impl Default for Shuffle {
    fn default() -> Self {
        Shuffle::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6298_estimator_by_hand() {
        let mut r = Rtt::new();
        let ceiling = Duration::from_secs(60);
        assert_eq!(r.timeout(Duration::ZERO, ceiling), Duration::from_secs(1));
        // First sample 100 ms: SRTT 100, RTTVAR 50, RTO 100 + 200 = 300 ms.
        r.sample(Duration::from_millis(100));
        assert_eq!(
            r.timeout(Duration::ZERO, ceiling),
            Duration::from_millis(300)
        );
        // Second 200 ms: RTTVAR = 3/4·50 + 1/4·100 = 62.5; SRTT = 7/8·100 + 1/8·200 = 112.5;
        // RTO = 112.5 + 250 = 362.5 ms.
        r.sample(Duration::from_millis(200));
        assert_eq!(
            r.timeout(Duration::ZERO, ceiling),
            Duration::from_micros(362_500)
        );
        assert_eq!(
            r.timeout(Duration::from_secs(2), ceiling),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<u16> = (1..=1000).collect();
        Shuffle::new().shuffle(&mut v);
        assert_ne!(v, (1..=1000).collect::<Vec<u16>>());
        v.sort_unstable();
        assert_eq!(v, (1..=1000).collect::<Vec<u16>>());
    }

    #[test]
    fn pacer_holds_the_rate() {
        let mut p = Pacer::new(2000);
        let start = Instant::now();
        for _ in 0..400 {
            p.wait();
        }
        // 400 packets at 2000/s take about 0.2 s (the burst of 20 lets the first go at once).
        let t = start.elapsed();
        assert!(t >= Duration::from_millis(180), "{t:?}");
    }
}
