//! The error type of this crate: failures to set up a measurement (a socket that cannot be
//! bound, a namespace that cannot be entered). What a measurement *observes* (refused,
//! filtered, NXDOMAIN) is never an error: it is a result in [`crate::report`].

use std::net::{IpAddr, SocketAddr};

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot enter network namespace `{name}`: {detail}")]
    Netns { name: String, detail: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("no name server configured ({0})")]
    NoResolver(String),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("the site has no device `{device}` (devices: {})", known.join(", "))]
    UnknownDevice { device: String, known: Vec<String> },
    #[error("profile `{0}` is not loaded")]
    ProfileNotLoaded(String),
    #[error(transparent)]
    Local(#[from] LocalError),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// What this machine's own network stack answered when the probe asked about its addresses,
/// routes and interfaces (over rtnetlink, or by connecting a UDP socket). Comparable, so that
/// a [`crate::runtime::Transport`] mock can hand one back and a test can compare it; an OS
/// error is kept as its text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LocalError {
    /// A netlink step (`netlink socket`, `netlink request`, `netlink answer`, `netlink`: the
    /// kernel's own error answer) failed.
    #[error("{step}: {detail}")]
    Netlink { step: &'static str, detail: String },
    #[error("truncated netlink message")]
    NetlinkTruncated,
    #[error("netlink: the kernel closed the socket")]
    NetlinkClosed,
    /// An address is not one of this network namespace's; `others` are the addresses it holds
    /// (loopback left out).
    #[error("{}", not_local(others))]
    NotLocal { others: Vec<IpAddr> },
    /// `--source` (or the given source) cannot be sent from; `reason` says why.
    #[error("{addr} is not an address of this machine ({reason})")]
    NotThisMachine { addr: IpAddr, reason: String },
    #[error("no route to {dst}: {detail}")]
    NoRoute { dst: IpAddr, detail: String },
    /// A local socket operation failed.
    #[error("{0}")]
    Socket(String),
}

fn not_local(others: &[IpAddr]) -> String {
    if others.is_empty() {
        "it has no address other than loopback".to_string()
    } else {
        let v: Vec<String> = others.iter().map(ToString::to_string).collect();
        format!("its addresses: {}", v.join(", "))
    }
}
