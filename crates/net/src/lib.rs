//! Everything in Portolan that touches a live network: DNS resolution for `compile --resolve`,
//! the on-site `probe` (stages address, with a real DHCP discover/offer when asked, names,
//! reach, integrity, keepalive, and requirements for a profile that states requirements that
//! are not flows) and the far-side `responder` it measures NAT timeouts against.
//! tokio lives here and nowhere else; the probe's logic reaches sockets and timers only through
//! [`runtime::Transport`], so tests can run it against local servers in network namespaces or
//! against mocks.

pub mod address;
pub mod dhcp;
pub mod dns;
pub mod dtls;
pub mod error;
pub mod icmp;
pub mod keepalive;
pub mod link;
pub mod netns;
pub mod plan;
pub mod probe;
pub mod remedy;
pub mod report;
pub mod responder;
pub mod runtime;
pub mod tls;
pub mod watch;

pub use error::{LocalError, NetError};
// The UDP requests and random identifiers live in `portolan-payloads`, shared with `scan`;
// their old paths stay so that callers and tests read on.
pub use portolan_payloads::{nonce, udp_apps};
