//! nftables back end: one table, `inet portolan`, written for `nft -f`, meant to read as an
//! administrator would write it by hand.
//!
//! Layout (see ARCHITECTURE.md):
//! - Spoofing first: every address the site places behind an interface (the networks of each
//!   zone that names one, and the devices of a zone without networks) is admitted in `forward`
//!   and `input` only from that interface. A verdict map (`zones4`, `zones6`) keyed by source
//!   address jumps to the zone's chain (`from_<zone>`), which returns for its interface and
//!   otherwise logs (`portolan spoofed <zone>: `) and drops. This runs before the conntrack
//!   rule, so a spoofed packet cannot ride on an established connection either.
//! - Device groups whose rules are identical and that share a zone share one *class* of chains
//!   (`k_<group>_out` for device-initiated flows, `_in` for peer-initiated ones, `_local` for
//!   services of the firewall itself). Verdict maps keyed by device address (`fwd_src4`,
//!   `fwd_dst4`, `local_src4`, and the `6` twins) jump to them, so a packet costs a constant
//!   number of lookups however many devices the site has. Single addresses live in hash maps
//!   (`fwd_src4h` …), prefixes in interval maps: a hash map of 100,000 addresses loads three
//!   times faster. Only chains and maps that hold something are written.
//! - Peers: one address inline (`ip daddr 198.51.100.10`), a few as an anonymous set; a list
//!   that several rules share, or a long one, is a named interval set (`peers_<group>_<flow>_4`,
//!   after the first rule that uses it). Hostnames are DNS-filled sets named after the names
//!   (`gk_sensorist_com_v4`) with `flags timeout`, filled at compile time (`--resolve`, each
//!   element living for its record's TTL) or at run time by the DNS server (`--target
//!   dnsmasq`: dnsmasq adds elements without a TTL, so they take the set's default timeout,
//!   `Options::dns_timeout`, one hour unless set); wildcard domains likewise
//!   (`any.mbedcloud_com_v4`). Identical rules are written once.
//! - Broadcast and multicast rules match the broadcast or group address and the zone's
//!   interface, never the peers' own addresses. DHCP discovery (source 0.0.0.0) is admitted in
//!   `input` on the zone's interface from the devices' MACs where the site gives them (the
//!   header says where it does not); other DHCP broadcasts on that interface go to
//!   `unlisted_mac` (log, drop).
//! - With `--ct-timeouts` ([`crate::Options::ct_timeouts`]): a `ct timeout` object per raised
//!   flow (`ct_<profile>_<flow>_<seconds>`, `l3proto` derived from the `inet` table, so one
//!   object serves IPv4 and IPv6), assigned by `ct timeout set` in that flow's accepting rules
//!   only. Those rules see a connection's first packet, whose conntrack entry is not yet
//!   confirmed: the kernel applies the object's timeout to it from then on.
//! - Unmatched traffic of a device goes to `drop_<group>`: a rate-limited log whose prefix names
//!   the group, then drop. Established and related traffic is accepted; invalid is dropped.
//!
//! Reloading: the file first declares the table and the DNS-filled sets (a no-op when they
//! exist), then `flush table` removes every rule (sets keep their elements), then static sets
//! and maps are declared, flushed and refilled, and the chains are written. All of it is one
//! `nft -f` transaction, so the DNS-filled sets survive a reload and nothing is half-applied.

//!
//! The module plans the output as a value first (`plan.rs`: a [`ruleset::Ruleset`] of sets,
//! maps and chains), then renders it (`ruleset.rs`, `impl Display`).

mod enforce;
mod parts;
mod plan;
mod ruleset;
mod sets;

use crate::names::{dns_set, is_dns_filled_set, wildcard_dns_set, Family, NFT_NAME_MAX};
use crate::{EmitError, Options};
use portolan_model::ir::Policy;

const T: &str = "nftables";
/// The table every object lives in.
pub const TABLE: &str = "inet portolan";

/// Whether a set of the table is DNS-filled (kept across reloads); see
/// [`crate::names::is_dns_filled_set`].
pub fn dns_filled(name: &str) -> bool {
    is_dns_filled_set(name)
}

/// The DNS-filled set of a list of hostnames, as this back end names it.
pub fn name_set(fam: Family, names: &[String]) -> String {
    dns_set(fam, names, NFT_NAME_MAX)
}

/// The DNS-filled set of a wildcard domain, as this back end names it.
pub fn wildcard_set(fam: Family, domain: &str) -> String {
    wildcard_dns_set(fam, domain, NFT_NAME_MAX)
}

pub use enforce::{layout as enforce_layout, NameRule, NameScope};

/// The ruleset as an include for OpenWrt's fw4 table (`--target openwrt`).
pub(crate) fn fw4_include(policy: &Policy, opts: &Options) -> Result<String, EmitError> {
    let ruleset = plan::plan(policy, opts)?;
    if !ruleset.ct_timeouts.is_empty() {
        return Err(EmitError::Unsupported {
            target: "openwrt",
            what: "per-flow conntrack timeouts (`ct timeout` objects live in fw4's own table)"
                .to_string(),
        });
    }
    Ok(ruleset.fw4_include())
}

pub use ruleset::FW4_PREFIX;

/// Emits the ruleset.
pub fn emit(policy: &Policy, opts: &Options) -> Result<String, EmitError> {
    let ruleset = plan::plan(policy, opts)?;
    // Rendered into a buffer sized from the ruleset's lines: grown by doubling, a large
    // site's text (36 MB for 100,000 one-device groups) was copied again at every doubling.
    let mut out = String::with_capacity(ruleset.size_hint());
    // Writing to a String cannot fail (as in `to_string`).
    std::fmt::Write::write_fmt(&mut out, format_args!("{ruleset}"))
        .expect("a String takes any text");
    Ok(out)
}
