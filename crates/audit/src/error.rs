//! The audit crate's errors. A problem *inside* an input (a corrupt record, a truncated file) is
//! not an error here: it is an [`crate::InputProblem`] reported beside everything read before it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a capture or flow log Portolan reads (pcap, pcapng, Zeek conn.log or dns.log, conntrack, nftables log lines), gzip-compressed or not", path.display())]
    UnknownFormat { path: PathBuf },
    #[error("{}: empty input", path.display())]
    Empty { path: PathBuf },
}
