//! `portolan verify`: an independent semantics of Linux firewalls. A loaded nftables
//! ruleset (libnftables JSON) is lowered to a [`program::Program`] over a packet space
//! ([`space`]), and the [`eval`] evaluator decides classes of packets exactly: accept, deny,
//! or depends (on a set filled at run time, or on an expression outside the supported
//! subset, named with its rule). An iptables firewall (`iptables-save`, `ip6tables-save`,
//! `ipset save`) is lowered to the same program by [`iptables`]. [`site`] uses it for a site: every flow of every device,
//! then the excess the ruleset admits beyond the profiles.

pub mod error;
pub mod eval;
pub mod hull;
pub mod iptables;
pub mod lower;
pub mod program;
pub mod site;
pub mod source;
pub mod space;

pub use error::{Error, Result};

/// Lowers a ruleset for a site: the site's interface names interned, the sets its DNS fills
/// read as run-time sets, and, when the `.nft` text is given, each rule's source line.
pub fn program_for_site(
    doc: &serde_json::Value,
    nft_text: Option<&str>,
    policy: &portolan_model::ir::Policy,
    dns: &site::DnsFills,
) -> Result<program::Program> {
    let opts = lower::Options {
        dynamic_sets: dns.sets().into_iter().collect(),
        interfaces: policy
            .zones
            .iter()
            .filter_map(|z| z.interface.clone())
            .collect(),
        lines: nft_text
            .map(|t| source::rule_lines(t, &source::rule_counts(doc)))
            .unwrap_or_default(),
    };
    lower::lower(doc, &opts)
}

/// Lowers an iptables firewall for a site: the site's interface names interned, the ipsets
/// its DNS fills (`ipset=` lines) read as run-time sets. Rules keep the lines they were read
/// from.
pub fn program_for_site_iptables(
    fw: &portolan_nft::iptables::Iptables,
    policy: &portolan_model::ir::Policy,
    dns: &site::DnsFills,
) -> Result<program::Program> {
    let opts = iptables::Options {
        dynamic_sets: dns
            .sets()
            .into_iter()
            .filter(|(t, _)| t == iptables::IPSET_TABLE)
            .map(|(_, s)| s)
            .collect(),
        interfaces: policy
            .zones
            .iter()
            .filter_map(|z| z.interface.clone())
            .collect(),
    };
    iptables::lower(fw, &opts)
}
