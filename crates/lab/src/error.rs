//! The one error type of this crate: what can go wrong building a lab or applying a ruleset.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The machine cannot do what was asked: not root, no network namespaces, a tool missing.
    /// The message names what is missing.
    #[error("unsupported here: {0}")]
    Unsupported(String),
    /// An external command (`ip`, `nft`, `dnsmasq`) failed.
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Emit(#[from] portolan_emit::EmitError),
    /// Reading or loading nftables failed.
    #[error(transparent)]
    Nft(#[from] portolan_nft::Error),
    /// The site cannot be laid out in a lab (an address plan that does not fit).
    #[error("cannot build a lab for this site: {0}")]
    Plan(String),
}

impl Error {
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
