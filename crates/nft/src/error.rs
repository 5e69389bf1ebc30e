//! The one error type of this crate: what can go wrong reading, checking or loading nftables.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The machine cannot do what was asked: not root, no network namespaces, `nft` missing.
    /// The message names what is missing.
    #[error("unsupported here: {0}")]
    Unsupported(String),
    /// An external command (`nft`, `ip`) failed for another reason than the ruleset.
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    /// `nft` refused a ruleset (on check or load); `detail` is its message.
    #[error("{detail}")]
    Rejected { detail: String },
    /// `nft -j` printed something that is not libnftables-json.
    #[error("cannot read the JSON of `{command}`: {source}")]
    Json {
        command: String,
        #[source]
        source: serde_json::Error,
    },
    /// Text a tool printed (`iptables-save`, `ipset save`) that does not read as expected.
    #[error("{what}")]
    Parse { what: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// `apply` refused or failed; the message says what state the firewall is in.
    #[error("{0}")]
    Apply(String),
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
