//! The audit crate's errors. A problem *inside* an input (a corrupt record, a truncated file) is
//! not an error here: it is an [`crate::InputProblem`] reported beside everything read before it.

use std::path::PathBuf;

use portolan_model::Diagnostic;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a capture or flow log Portolan reads (pcap, pcapng, Zeek conn.log or dns.log, conntrack, nftables log lines, IPFIX, NetFlow v9 or v5, nfdump CSV, Suricata eve.json), gzip-compressed or not", path.display())]
    UnknownFormat { path: PathBuf },
    #[error("{}: empty input", path.display())]
    Empty { path: PathBuf },
    #[error(transparent)]
    Draft(#[from] DraftError),
}

/// A profile `learn` drafted that cannot be written out: a bug of `learn`, never the user's.
/// Comparable, so that a test can hold the whole outcome of [`crate::learn::to_yaml`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DraftError {
    /// The YAML writer refused the profile.
    #[error("{0}")]
    Yaml(String),
    /// The profile validator refused the draft; its diagnostics, one per line.
    #[error("{}", lines(.0))]
    Invalid(Vec<Diagnostic>),
}

fn lines(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}
