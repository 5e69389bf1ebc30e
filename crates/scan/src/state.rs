//! What a scan says about one port, and how it decided it. The four states are nmap's
//! (nmap(1), "Port Scanning Basics"), so that its output and ours compare word for word:
//!
//! - `open`: a SYN-ACK, an accepted connection, or a UDP answer in the application's terms;
//! - `closed`: the target itself answered that nothing listens (a TCP reset; an ICMP port
//!   unreachable to a UDP probe);
//! - `filtered`: an ICMP unreachable error other than port unreachable (a router or firewall
//!   refused), or no answer to a TCP SYN and its retransmission;
//! - `open|filtered`: no answer to a UDP request and its retransmission (a UDP service may
//!   ignore a request it does not understand, and a firewall may drop it).

use std::fmt;

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Tcp,
    Udp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum PortState {
    #[serde(rename = "open")]
    Open,
    #[serde(rename = "closed")]
    Closed,
    #[serde(rename = "filtered")]
    Filtered,
    #[serde(rename = "open|filtered")]
    OpenFiltered,
}

impl PortState {
    pub fn as_str(self) -> &'static str {
        match self {
            PortState::Open => "open",
            PortState::Closed => "closed",
            PortState::Filtered => "filtered",
            PortState::OpenFiltered => "open|filtered",
        }
    }

    /// Whether a packet reached something that answered for the port (open or closed).
    pub fn reached(self) -> bool {
        matches!(self, PortState::Open | PortState::Closed)
    }
}

impl fmt::Display for PortState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a state was decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reason {
    /// A SYN-ACK to our SYN.
    SynAck { ttl: Option<u8> },
    /// A TCP reset to our SYN.
    Reset { ttl: Option<u8> },
    /// `connect()` completed (the fallback without raw sockets).
    Connected,
    /// `connect()` was refused: a reset.
    Refused,
    /// An ICMP error quoting our probe, in words (type, code, sender).
    Unreachable { detail: String },
    /// An answer to the UDP request, recognised as its application's.
    Answered { request: String },
    /// A datagram came back that is not an answer to the request (still: something
    /// listens).
    OtherAnswer { request: String },
    /// Nothing came back to `tries` probes.
    NoResponse { tries: u8, request: Option<String> },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ttl = |t: &Option<u8>| t.map(|t| format!(" (TTL {t})")).unwrap_or_default();
        match self {
            Reason::SynAck { ttl: t } => write!(f, "SYN-ACK{}", ttl(t)),
            Reason::Reset { ttl: t } => write!(f, "reset{}", ttl(t)),
            Reason::Connected => f.write_str("connect() completed"),
            Reason::Refused => f.write_str("connect() refused (reset)"),
            Reason::Unreachable { detail } => f.write_str(detail),
            Reason::Answered { request } => write!(f, "answer to {request}"),
            Reason::OtherAnswer { request } => {
                write!(f, "a datagram that does not answer {request}")
            }
            Reason::NoResponse {
                tries,
                request: Some(r),
            } => write!(f, "no answer to {tries} × {r}"),
            Reason::NoResponse {
                tries,
                request: None,
            } => write!(f, "no answer to {tries} probes"),
        }
    }
}

/// One port's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortResult {
    /// Written as `protocol` (the JSON contract's name; the command line writes the object).
    #[serde(rename = "protocol")]
    pub transport: Transport,
    pub port: u16,
    pub state: PortState,
    pub reason: Reason,
    /// The well-known service of the port, where it has one we probe for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<&'static str>,
}
