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

/// A flow whose keepalive outlasts the firewall's conntrack timeout for its protocol: what
/// `lint` reports (`keepalive-over-conntrack`) and what `compile --ct-timeouts` raises. One
/// analysis for both, so that compile raises exactly the flows lint flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Raise {
    #[serde(serialize_with = "transport_name")]
    pub transport: Transport,
    /// Seconds between the device's keepalives.
    pub keepalive: u32,
    /// The conntrack timeout it outlasts, and that timeout's sysctl.
    pub timeout: u32,
    pub sysctl: &'static str,
    /// The timeout to give the flow's connections: twice the keepalive, so that one lost
    /// keepalive does not end the connection.
    pub seconds: u32,
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

/// Whether a keepalive every `keepalive` seconds over `transport` outlasts `ct`'s timeout,
/// and the raise that would keep the connection: `None` when it does not.
pub fn raise(keepalive: u32, transport: Transport, ct: &Conntrack) -> Option<Raise> {
    let (timeout, sysctl) = ct.for_protocol(transport);
    (keepalive > timeout).then(|| Raise {
        transport,
        keepalive,
        timeout,
        sysctl,
        seconds: keepalive.saturating_mul(2),
    })
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

/// Every (group, flow) of `policy` whose keepalive outlasts `ct`: the flows `lint` reports
/// as `keepalive-over-conntrack`, in the policy's rule order, each once. The flow is the
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
        let (Some(k), Some(t)) = (flow.keepalive, transport_of(r.protocol.number())) else {
            continue;
        };
        if let Some(raise) = raise(k, t, ct) {
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

    #[test]
    fn a_raise_is_twice_the_keepalive_and_only_over_the_timeout() {
        let ct = Conntrack {
            tcp_established: 300,
            udp: 30,
            udp_stream: 120,
            from_kernel: false,
        };
        // 540 > 300: 2 x 540 = 1080 s, TCP state `established`.
        let r = raise(540, Transport::Tcp, &ct).expect("over");
        assert_eq!(
            (r.timeout, r.seconds, r.state()),
            (300, 1080, "established")
        );
        // 180 > 120 (the stream timeout, not the 30 s of an unreplied one): 360 s `replied`.
        let r = raise(180, Transport::Udp, &ct).expect("over");
        assert_eq!((r.timeout, r.seconds, r.state()), (120, 360, "replied"));
        // Equal is not over; Linux's default 432000 s is far over 540.
        assert_eq!(raise(300, Transport::Tcp, &ct), None);
        let linux = Conntrack {
            tcp_established: 432_000,
            ..ct
        };
        assert_eq!(raise(540, Transport::Tcp, &linux), None);
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
