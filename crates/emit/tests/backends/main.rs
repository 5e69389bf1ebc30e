//! The back ends, end to end: the example site through every target (snapshots), the
//! nftables and iptables outputs loaded into a real kernel inside throwaway network
//! namespaces, hostile strings in sites and profiles, and provenance of every rule.

mod aerleon;
mod common;
mod hostile;
mod kernel;
mod minimal;
mod names;
mod provenance;
mod snapshots;
mod squid;
mod squid_proxy;
mod srv;
mod work;
