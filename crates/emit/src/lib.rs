//! Back ends: each reads only the policy IR ([`portolan_model::ir::Policy`]) and writes one
//! target's configuration. Every module has the same entry point,
//! `emit(&Policy, &Options) -> Result<String, EmitError>`, chosen by the closed [`Target`] enum:
//! nftables, iptables, dnsmasq (the name sets' filling), Aerleon (a policy set for Aerleon's
//! thirty-odd generators), Squid (a proxy's allow-list), OpenWrt (an include for fw4's table
//! and the UCI entries that fill its name sets).
//! Every string that reaches an output came through validation (identifiers, hostnames,
//! addresses) and is quoted or checked again here, so nothing a profile or site says can change
//! the emitted rules.

pub mod aerleon;
mod cast;
mod classes;
pub mod dnsmasq;
pub mod doh;
pub mod error;
pub mod iptables;
pub mod names;
pub mod nftables;
pub mod openwrt;
pub mod squid;
mod zones;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

pub use error::EmitError;
use portolan_model::ir::Policy;

/// The targets `portolan compile --target` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Nftables,
    Iptables,
    Dnsmasq,
    Aerleon,
    Squid,
    Openwrt,
}

/// One file of a target made of several (Aerleon, OpenWrt): its path under the output
/// directory and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub path: String,
    pub text: String,
}

/// The files of `target` (one file, `out.<target>`, for the single-file targets).
pub fn files(target: Target, policy: &Policy, opts: &Options) -> Result<Vec<File>, EmitError> {
    match target {
        Target::Aerleon => aerleon::files(policy, opts),
        Target::Openwrt => openwrt::files(policy, opts),
        t => Ok(vec![File {
            path: format!("out.{}", format!("{t:?}").to_lowercase()),
            text: emit(t, policy, opts)?,
        }]),
    }
}

/// Addresses a hostname resolved to at compile time, with the TTL of the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub addresses: Vec<IpAddr>,
    pub ttl: Duration,
}

/// Options shared by the back ends.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Names resolved at compile time (`--resolve`); names absent here are left to DNS-driven
    /// filling at run time.
    pub resolved: BTreeMap<String, Resolved>,
    /// Log rate for dropped packets, per second (default 5).
    pub log_rate: Option<u32>,
    /// How long an address added to a DNS-filled set at run time stays allowed when the DNS
    /// server gives no timeout of its own (dnsmasq up to 2.90 adds elements without one).
    /// Default [`DEFAULT_DNS_TIMEOUT`].
    pub dns_timeout: Option<Duration>,
    /// The Aerleon platforms `--target aerleon` writes a policy for; empty: every platform
    /// [`aerleon::Platform`] knows.
    pub aerleon_platforms: Vec<aerleon::Platform>,
    /// `compile --ct-timeouts` (nftables only): the flows whose connections get a conntrack
    /// timeout of their own, by (device group, flow id). The back end declares one `ct
    /// timeout` object per raise and assigns it (`ct timeout set`) in that flow's rules only;
    /// the statement has no verdict, so the rules accept exactly what they accepted without
    /// it. Empty: the kernel's timeouts for every flow.
    pub ct_timeouts: BTreeMap<(String, String), CtTimeout>,
    /// The nftables policy for `portolan enforce`: hostnames and wildcard domains match
    /// per-rule sets of `device . peer` pairs that the forwarder fills for the device that
    /// asked (instead of the per-name sets dnsmasq fills for every device), and the devices'
    /// DNS (TCP and UDP 53) and DNS over TLS or QUIC (853) to anything but the firewall is
    /// dropped and logged.
    pub enforce: bool,
    /// Under `enforce`: devices' plain DNS (TCP and UDP 53) to another resolver is redirected
    /// to the firewall's own port 53 (nft `redirect`, in a `nat` prerouting chain), where the
    /// forwarder answers it, instead of dropped. DNS over TLS or QUIC (853) and the known
    /// DoH endpoints are dropped either way.
    pub dns_redirect: bool,
    /// Under `enforce`: DNS-over-HTTPS service addresses of the site's own to block on 443
    /// besides the shipped list ([`doh::ADDRESSES`]).
    pub doh: Vec<IpAddr>,
}

/// A conntrack timeout for one flow's connections (nft(8), CT TIMEOUT).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CtTimeout {
    pub protocol: CtProtocol,
    /// Seconds an idle connection of the flow is kept: TCP in state `established`, UDP in
    /// state `replied` (both ways seen).
    pub seconds: u32,
}

/// The transports a `ct timeout` object of Portolan's applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CtProtocol {
    Tcp,
    Udp,
}

impl CtTimeout {
    /// `protocol tcp; policy = { established: 1080 };`: the object's body.
    pub fn body(&self) -> String {
        let (p, state) = match self.protocol {
            CtProtocol::Tcp => ("tcp", "established"),
            CtProtocol::Udp => ("udp", "replied"),
        };
        format!("protocol {p}; policy = {{ {state}: {} }};", self.seconds)
    }
}

/// Default lifetime of a run-time DNS-filled set element: one hour. Longer than the TTLs the
/// seeds' cloud services use, so a device that caches an answer for its TTL is not cut off;
/// short enough that an address a name no longer points to stops being allowed.
pub const DEFAULT_DNS_TIMEOUT: Duration = Duration::from_secs(3600);

impl Options {
    /// The DNS-filled sets' default element timeout, in seconds.
    pub fn dns_timeout_secs(&self) -> u64 {
        self.dns_timeout
            .unwrap_or(DEFAULT_DNS_TIMEOUT)
            .as_secs()
            .max(1)
    }
}

/// The device groups whose DHCP broadcasts a ruleset admits from any MAC (the site gives no
/// `mac:`), by interface and `profile/flow`, for the output's header.
#[derive(Default)]
pub(crate) struct AnyMac(BTreeMap<(String, String), Vec<String>>);

impl AnyMac {
    /// Adds `group` (callers add a group's rules one after another, so a repeat is the last
    /// one added: checking only it keeps this constant-time; a scan of the list made a site
    /// of 100,000 one-device groups quadratic).
    pub(crate) fn add(&mut self, interface: Option<&str>, provenance: String, group: &str) {
        let ifc = interface.unwrap_or("any interface").to_string();
        let v = self.0.entry((ifc, provenance)).or_default();
        if v.last().is_none_or(|g| g != group) {
            v.push(group.to_string());
        }
    }

    /// One comment line per interface and flow, naming at most ten groups.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|((ifc, flow), groups)| {
                let mut named = groups.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
                if groups.len() > 10 {
                    named.push_str(&format!(" and {} more", groups.len() - 10));
                }
                let them = if groups.len() == 1 { "it" } else { "them" };
                format!("# DHCP broadcasts of {named} ({flow}) are admitted from any MAC on {ifc}: the site gives no `mac:` for {them}.")
            })
            .collect()
    }
}

/// Emits `policy` for `target`.
pub fn emit(target: Target, policy: &Policy, opts: &Options) -> Result<String, EmitError> {
    match target {
        Target::Nftables => nftables::emit(policy, opts),
        Target::Iptables => iptables::emit(policy, opts),
        Target::Dnsmasq => dnsmasq::emit(policy, opts),
        Target::Aerleon => aerleon::emit(policy, opts),
        Target::Squid => squid::emit(policy, opts),
        Target::Openwrt => openwrt::emit(policy, opts),
    }
}
