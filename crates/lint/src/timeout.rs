//! Keepalives against idle timeouts. A stateful firewall forgets an idle connection after its
//! conntrack timeout for the protocol (Linux: `nf_conntrack_tcp_timeout_established` for an
//! established TCP connection, `nf_conntrack_udp_timeout_stream` for UDP that has seen traffic
//! both ways, which a keepalive with an answer is); a NAT forgets its mapping after its own
//! idle timeout. A device whose keepalive is longer than either loses its connection while
//! idle, and with a NAT or a peer-initiated path, cannot be reached until it sends again.
//!
//! The timeouts come from the kernel this runs on (`/proc/sys/net/netfilter`, read in the
//! current network namespace), or from the lint configuration; a NAT's from the
//! configuration, else the least the standards allow a NAT (RFC 4787 REQ-5: 120 s for UDP;
//! RFC 5382 REQ-5: 7440 s for established TCP).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use portolan_model::ir::Policy;
use serde::Serialize;

/// Conntrack idle timeouts, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Conntrack {
    pub tcp_established: u32,
    pub udp: u32,
    pub udp_stream: u32,
    /// Where the values came from (`kernel`, or the configuration file).
    #[serde(skip)]
    pub from_kernel: bool,
}

/// Why the kernel's values could not be read.
#[derive(Debug)]
pub struct KernelError {
    pub path: std::path::PathBuf,
    pub reason: String,
}

impl std::fmt::Display for KernelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot read {}: {} (is nf_conntrack loaded? `modprobe nf_conntrack`, or give `conntrack:` in the lint configuration)",
            self.path.display(),
            self.reason
        )
    }
}

impl Conntrack {
    /// Reads the three timeouts from `dir` (normally `/proc/sys/net/netfilter`), which belong to
    /// the network namespace of the process reading them.
    pub fn from_proc(dir: &Path) -> Result<Conntrack, KernelError> {
        let read = |name: &str| -> Result<u32, KernelError> {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path).map_err(|e| KernelError {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            text.trim().parse().map_err(|e| KernelError {
                path,
                reason: format!("not a number of seconds: {e}"),
            })
        };
        Ok(Conntrack {
            tcp_established: read("nf_conntrack_tcp_timeout_established")?,
            udp: read("nf_conntrack_udp_timeout")?,
            udp_stream: read("nf_conntrack_udp_timeout_stream")?,
            from_kernel: true,
        })
    }

    /// The timeout that applies to an idle connection of `protocol` kept alive by a
    /// keepalive that is answered, and the sysctl's name.
    pub fn for_protocol(&self, protocol: Transport) -> (u32, &'static str) {
        match protocol {
            Transport::Tcp => (self.tcp_established, "nf_conntrack_tcp_timeout_established"),
            Transport::Udp => (self.udp_stream, "nf_conntrack_udp_timeout_stream"),
        }
    }
}

/// A NAT's idle timeouts, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Nat {
    pub tcp: u32,
    pub udp: u32,
    /// Whether each value was given (else it is the standards' minimum).
    #[serde(skip)]
    pub tcp_given: bool,
    #[serde(skip)]
    pub udp_given: bool,
}

/// RFC 4787 section 4.3 REQ-5: a NAT UDP mapping timer must not expire in less than two
/// minutes.
pub const NAT_UDP_MINIMUM: u32 = 120;
/// RFC 5382 section 5 REQ-5: the established connection idle-timeout must not be less than
/// 2 hours 4 minutes.
pub const NAT_TCP_MINIMUM: u32 = 2 * 3600 + 4 * 60;

impl Nat {
    pub fn new(tcp: Option<u32>, udp: Option<u32>) -> Nat {
        Nat {
            tcp: tcp.unwrap_or(NAT_TCP_MINIMUM),
            udp: udp.unwrap_or(NAT_UDP_MINIMUM),
            tcp_given: tcp.is_some(),
            udp_given: udp.is_some(),
        }
    }
}

/// The transports a keepalive applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// What a flow needs from the firewall's state table while idle: the device's keepalive
/// interval, the idle time the vendor says the flow must survive (`idle_timeout:`, edition
/// 2), or both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Need {
    pub keepalive: Option<u32>,
    pub idle_timeout: Option<u32>,
}

/// A flow whose keepalive or idle timeout outlasts the firewall's conntrack timeout for its
/// protocol: what `lint` reports (`keepalive-over-conntrack`, `idle-timeout-over-conntrack`)
/// and what `compile --ct-timeouts` raises. One analysis for both, so that compile raises
/// exactly the flows lint flags.
///
/// How the two needs combine: the flow is raised when either outlasts the timeout (a
/// keepalive longer than it, an idle timeout longer than it), and then gets the larger need:
/// twice the keepalive (so that one lost keepalive does not end the connection) or the idle
/// timeout, whichever is longer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Raise {
    #[serde(serialize_with = "transport_name")]
    pub transport: Transport,
    /// Seconds between the device's keepalives, when the profile gives them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keepalive: Option<u32>,
    /// Seconds of silence the flow must survive, when the profile gives them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<u32>,
    /// The conntrack timeout they outlast, and that timeout's sysctl.
    pub timeout: u32,
    pub sysctl: &'static str,
    /// The timeout to give the flow's connections: the larger of twice the keepalive and
    /// the idle timeout.
    pub seconds: u32,
}

impl Raise {
    /// Whether the keepalive (not only the idle timeout) outlasts the conntrack timeout.
    pub fn keepalive_over(&self) -> bool {
        self.keepalive.is_some_and(|k| k > self.timeout)
    }

    /// Whether the idle timeout outlasts the conntrack timeout.
    pub fn idle_over(&self) -> bool {
        self.idle_timeout.is_some_and(|i| i > self.timeout)
    }

    /// Why the flow is raised, in words: `keepalive 540 s`, `idle timeout 300 s`, or both.
    pub fn because(&self) -> String {
        let mut why = Vec::new();
        if let Some(k) = self.keepalive.filter(|_| self.keepalive_over()) {
            why.push(format!("keepalive {k} s"));
        }
        if let Some(i) = self.idle_timeout.filter(|_| self.idle_over()) {
            why.push(format!("idle timeout {i} s"));
        }
        why.join(" and ")
    }
}

fn transport_name<S: serde::Serializer>(t: &Transport, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.name())
}

impl Raise {
    /// The `ct timeout` policy state that holds an idle connection of this transport kept
    /// alive by answered keepalives (nft(8), CT TIMEOUT: TCP `established`; UDP `replied`,
    /// the kernel's `nf_conntrack_udp_timeout_stream`).
    pub fn state(&self) -> &'static str {
        match self.transport {
            Transport::Tcp => "established",
            Transport::Udp => "replied",
        }
    }
}

/// The transport of an IP protocol number that keepalives apply to.
pub fn transport_of(protocol: u8) -> Option<Transport> {
    match protocol {
        6 => Some(Transport::Tcp),
        17 => Some(Transport::Udp),
        _ => None,
    }
}

/// Whether `need` outlasts `ct`'s timeout for `transport`, and the raise that would keep the
/// connection: `None` when neither the keepalive nor the idle timeout is longer than it.
pub fn raise(need: Need, transport: Transport, ct: &Conntrack) -> Option<Raise> {
    let (timeout, sysctl) = ct.for_protocol(transport);
    let over = |v: Option<u32>| v.is_some_and(|v| v > timeout);
    (over(need.keepalive) || over(need.idle_timeout)).then(|| Raise {
        transport,
        keepalive: need.keepalive,
        idle_timeout: need.idle_timeout,
        timeout,
        sysctl,
        seconds: need
            .keepalive
            .map_or(0, |k| k.saturating_mul(2))
            .max(need.idle_timeout.unwrap_or(0)),
    })
}

/// A flow's idle needs, as its profile states them.
pub fn need_of(flow: &portolan_model::profile::Flow) -> Need {
    Need {
        keepalive: flow.keepalive,
        idle_timeout: flow.idle_timeout,
    }
}

/// One flow of a compiled site whose connections need a raised timeout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlowRaise {
    /// The device group, the profile and the flow id, as the policy's rules name them.
    pub group: String,
    pub profile: String,
    pub flow: String,
    #[serde(flatten)]
    pub raise: Raise,
}

/// Every (group, flow) of `policy` whose keepalive or idle timeout outlasts `ct`: the flows
/// `lint` reports as `keepalive-over-conntrack` or `idle-timeout-over-conntrack`, in the
/// policy's rule order, each once. The flow is the
/// one of the group's mode; its transport is the rule's protocol.
pub fn site_raises(policy: &Policy, ct: &Conntrack) -> Vec<FlowRaise> {
    let modes: BTreeMap<&str, Option<&str>> = policy
        .groups
        .iter()
        .map(|g| (g.id.as_str(), g.mode.as_deref()))
        .collect();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for r in &policy.rules {
        if !seen.insert((r.group.as_str(), r.flow.as_str())) {
            continue;
        }
        let Some(profile) = policy.profiles.get(&r.profile) else {
            continue;
        };
        let mode = modes.get(r.group.as_str()).copied().flatten();
        let Some(flow) = profile
            .flows
            .iter()
            .find(|f| f.id == r.flow && f.in_mode(mode))
        else {
            continue;
        };
        let Some(t) = transport_of(r.protocol.number()) else {
            continue;
        };
        if let Some(raise) = raise(need_of(flow), t, ct) {
            out.push(FlowRaise {
                group: r.group.clone(),
                profile: r.profile.clone(),
                flow: r.flow.clone(),
                raise,
            });
        }
    }
    out
}

/// The nftables objects that raise the conntrack timeout of one flow's connections: a `ct
/// timeout` object and the rule statement that assigns it (nft(8), CT TIMEOUT), as `portolan
/// compile --ct-timeouts` writes them. `name` must be an nftables identifier.
pub fn ct_timeout_remedy(name: &str, r: &Raise) -> String {
    format!(
        "ct timeout {name} {{ protocol {p}; policy = {{ {state}: {seconds} }}; }} and, in the flow's rule, `ct timeout set \"{name}\"` (`portolan compile --ct-timeouts` writes both)",
        p = r.transport.name(),
        state = r.state(),
        seconds = r.seconds,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ka(k: u32) -> Need {
        Need {
            keepalive: Some(k),
            idle_timeout: None,
        }
    }

    fn both(k: Option<u32>, i: Option<u32>) -> Need {
        Need {
            keepalive: k,
            idle_timeout: i,
        }
    }

    #[test]
    fn an_idle_timeout_raises_to_itself_and_the_larger_need_wins() {
        // Linux's defaults (nf_conntrack_udp_timeout_stream 120 s, the kernel's
        // Documentation/networking/nf_conntrack-sysctl.rst), established lowered to 300 s.
        let ct = Conntrack {
            tcp_established: 300,
            udp: 30,
            udp_stream: 120,
            from_kernel: false,
        };
        // UDP idle 300 s > 120 s, no keepalive: 300 s `replied`.
        let r = raise(both(None, Some(300)), Transport::Udp, &ct).expect("over");
        assert_eq!((r.timeout, r.seconds, r.state()), (120, 300, "replied"));
        assert_eq!(r.because(), "idle timeout 300 s");
        // Idle 150 s over 120 s, keepalive 100 s under it: raised for the idle timeout, to
        // the larger need, 2 x 100 = 200 s.
        let r = raise(both(Some(100), Some(150)), Transport::Udp, &ct).expect("over");
        assert_eq!(
            (r.seconds, r.because().as_str()),
            (200, "idle timeout 150 s")
        );
        // Keepalive 540 s over 300 s, idle 1500 s also over: 1500 > 2 x 540 = 1080.
        let r = raise(both(Some(540), Some(1500)), Transport::Tcp, &ct).expect("over");
        assert_eq!(
            (r.seconds, r.because().as_str()),
            (1500, "keepalive 540 s and idle timeout 1500 s")
        );
        // Keepalive 540 s over, idle 600 s over: 2 x 540 = 1080 > 600.
        let r = raise(both(Some(540), Some(600)), Transport::Tcp, &ct).expect("over");
        assert_eq!(r.seconds, 1080);
        // An idle timeout the firewall already keeps (equal, or under) raises nothing.
        assert_eq!(raise(both(None, Some(120)), Transport::Udp, &ct), None);
        assert_eq!(raise(both(Some(60), Some(90)), Transport::Udp, &ct), None);
        assert_eq!(raise(both(None, None), Transport::Tcp, &ct), None);
    }

    #[test]
    fn a_raise_is_twice_the_keepalive_and_only_over_the_timeout() {
        let ct = Conntrack {
            tcp_established: 300,
            udp: 30,
            udp_stream: 120,
            from_kernel: false,
        };
        // 540 > 300: 2 x 540 = 1080 s, TCP state `established`.
        let r = raise(ka(540), Transport::Tcp, &ct).expect("over");
        assert_eq!(
            (r.timeout, r.seconds, r.state()),
            (300, 1080, "established")
        );
        // 180 > 120 (the stream timeout, not the 30 s of an unreplied one): 360 s `replied`.
        let r = raise(ka(180), Transport::Udp, &ct).expect("over");
        assert_eq!((r.timeout, r.seconds, r.state()), (120, 360, "replied"));
        // Equal is not over; Linux's default 432000 s is far over 540.
        assert_eq!(raise(ka(300), Transport::Tcp, &ct), None);
        let linux = Conntrack {
            tcp_established: 432_000,
            ..ct
        };
        assert_eq!(raise(ka(540), Transport::Tcp, &linux), None);
    }

    #[test]
    fn the_standards_minimums_in_seconds() {
        // 2 h 4 min = 7440 s; 2 min = 120 s.
        assert_eq!(NAT_TCP_MINIMUM, 7440);
        assert_eq!(NAT_UDP_MINIMUM, 120);
        let n = Nat::new(Some(300), None);
        assert_eq!(
            (n.tcp, n.udp, n.tcp_given, n.udp_given),
            (300, 120, true, false)
        );
    }
}
