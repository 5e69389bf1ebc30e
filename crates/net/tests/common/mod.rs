//! Shared test helpers: a DNS server, a network-namespace lab, far-side servers, and a
//! two-namespace lab with dnsmasq for the DHCP check.
#![allow(dead_code)]

pub mod dhcp_lab;
pub mod dns_server;
pub mod lab;
pub mod probe;
pub mod procs;
pub mod servers;
