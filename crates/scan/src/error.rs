//! The scan's one error type: what stopped a scan before it could judge any port.

use std::net::IpAddr;

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// No route or no local address towards the target.
    #[error("no route to {target}: {detail}")]
    NoRoute { target: IpAddr, detail: String },
    /// A socket could not be made or used.
    #[error("{what}: {source}")]
    Socket {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The options cannot make a scan.
    #[error("{0}")]
    Options(String),
}

impl ScanError {
    pub fn socket(what: impl Into<String>, source: std::io::Error) -> ScanError {
        ScanError::Socket {
            what: what.into(),
            source,
        }
    }
}
