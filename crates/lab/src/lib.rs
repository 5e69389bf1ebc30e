//! Portolan on real kernels.
//!
//! - [`lab`]: `portolan lab SITE`, the proof. Network namespaces stand for the site's zones,
//!   the firewall and the outside; the emitted nftables ruleset is loaded into the firewall
//!   namespace; every flow the profiles require is sent and must pass, flows they do not allow
//!   are sent and must be dropped. Built from [`topology`] (address plan), [`probes`] (what
//!   to send) and [`oracle`] (what the IR says about each packet), [`attack`] (what an
//!   adversary sends, expected dropped because of what the site states: [`facts`]), [`dns`],
//!   [`listen`], [`send`], [`trace`] (which rule admitted each required probe), with [`netns`]
//!   guaranteeing clean-up; [`enforce`]: the same lab with `portolan enforce` as the
//!   firewall's resolver (per-device expectations and `unresolved-device` probes).
//!
//! Reading, writing and applying nftables (and `apply`) live in `portolan-nft`, which the lab
//! uses. Nothing here loads a rule outside a namespace it created.

pub mod alloc;
pub mod attack;
pub mod command;
pub mod dns;
pub mod enforce;
pub mod error;
pub mod facts;
pub mod lab;
pub mod listen;
pub mod netns;
pub mod oracle;
pub mod probe;
pub mod probes;
pub mod report;
pub mod send;
pub mod stand;
pub mod topology;
pub mod trace;
pub mod wire;

pub use error::{Error, Result};
