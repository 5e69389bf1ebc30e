//! Portolan's audit: observed traffic against the policy IR, and draft profiles from traffic.
//!
//! The phases: [`input`] opens a capture or flow log (gzip or not, file or stdin) and tells
//! its format; [`capture`] streams pcap and pcapng frames, [`decode`] reads each frame down to
//! its transport header, [`flows`] folds packets into flows and [`dns`] keeps the names DNS
//! answers gave addresses, within their TTLs; [`flowlog`] reads Zeek, conntrack and nftables
//! log records and flow records (IPFIX, NetFlow, nfdump, Suricata) into the same tables;
//! [`live`] audits records received on a UDP socket period by period. [`collect`] drives one pass over every input,
//! and [`parallel`] the same pass on several cores (one result): [`split`] reads plain pcap
//! files in stretches of time, one per core, other captures go to shards of the flow table;
//! [`matcher`] judges each flow against the IR and [`report`] sums up per device group;
//! [`jsonl`] writes its flow records as JSON lines; [`learn`] drafts a profile from one device's
//! flows. [`write`] is a small deterministic pcap/pcapng writer for tests and benchmarks.

pub mod capture;
pub mod collect;
pub mod decode;
pub mod dns;
pub mod error;
pub mod flowlog;
pub mod flows;
pub mod input;
pub mod jsonl;
pub mod learn;
pub mod live;
pub mod matcher;
pub mod parallel;
pub mod report;
pub mod split;
#[cfg(test)]
mod test_rng;
pub mod time;
pub mod write;

pub use capture::{InputProblem, ProblemKind};
pub use collect::{Collector, InputSummary, Observed};
pub use error::{AuditError, DraftError};
pub use matcher::{Mismatch, Options, Status};
pub use report::{audit, audit_jobs, audit_streamed, FlowRecord, GroupSummary, Report};
