//! `portolan enforce`: names enforced per device. A DNS forwarder for the site's devices
//! ([`forwarder`]) passes each query to the site's resolver and, for an answer to a name a
//! rule of the asking device's group admits, adds `device . peer` elements to that rule's set
//! of the enforce policy (`portolan_emit::Options::enforce`) with a timeout of the answer's
//! TTL plus a grace ([`answer`]); the answer is released only after the kernel committed
//! them, so the device's first packet passes. Another device gains nothing: the set's key
//! holds the device's address. `--status` reads the live elements back ([`status`]).
//!
//! The sets live in the kernel, not in this process: a restart loses no element, and while
//! the forwarder is down devices' lookups fail (nothing new opens) and elements age out.
//!
//! While a device's connection of a flow is live in conntrack, the element it uses is kept
//! past its TTL ([`conntrack`], the sweep in [`forwarder`]); the forwarder's counters are
//! served to Prometheus ([`metrics`]).

pub mod answer;
pub mod conntrack;
pub mod forwarder;
pub mod metrics;
pub mod status;

use portolan_emit::nftables::{enforce_layout, NameScope};
use portolan_model::ir::Policy;

pub use answer::{decide, Decision, Timing};
pub use forwarder::{start, start_with, Config, Options, Running, Sink, Unlisted};
pub use status::{status, Live};

/// Why enforce could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Emit(#[from] portolan_emit::EmitError),
    #[error(transparent)]
    Nft(#[from] portolan_nft::Error),
}

/// The name-based rules of every group, as the enforce policy's sets hold them.
pub fn scopes(policy: &Policy) -> Result<Vec<NameScope>, Error> {
    Ok(enforce_layout(policy)?)
}
