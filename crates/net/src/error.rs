//! The error type of this crate: failures to set up a measurement (a socket that cannot be
//! bound, a namespace that cannot be entered). What a measurement *observes* (refused,
//! filtered, NXDOMAIN) is never an error: it is a result in [`crate::report`].

use std::net::SocketAddr;

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
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
