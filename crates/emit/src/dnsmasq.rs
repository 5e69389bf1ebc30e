//! dnsmasq back end: the `nftset=` lines that make dnsmasq add every address it resolves for
//! a profile's hostnames and wildcard domains to the matching nftables set, with the record's
//! TTL as the element's timeout (dnsmasq ≥ 2.87).
//!
//! dnsmasq matches a domain *and all names below it*: `nftset=/mbedcloud.com/…` admits the
//! apex `mbedcloud.com` as well as `*.mbedcloud.com`, and a line for `gk.sensorist.com` also
//! admits `x.gk.sensorist.com`. That is slightly wider than the profile; the nftables sets are
//! still limited to the ports and devices of the flows that use them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use portolan_model::ir::Policy;

use crate::names::safe_hostname;
use crate::nftables::{name_set, wildcard_set, FamPub};
use crate::{EmitError, Options};

const T: &str = "dnsmasq";

pub fn emit(policy: &Policy, _opts: &Options) -> Result<String, EmitError> {
    // domain list → set names
    let mut lines: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    for r in &policy.rules {
        let Some(g) = policy.group(&r.group) else {
            continue;
        };
        let fams: BTreeSet<&str> = g
            .addresses
            .iter()
            .map(|a| if a.addr().is_ipv4() { "4" } else { "6" })
            .collect();
        let mut names = r.peers.names.clone();
        names.sort();
        names.dedup();
        for fam in &fams {
            let f = if *fam == "4" { FamPub::V4 } else { FamPub::V6 };
            if !names.is_empty() {
                for n in &names {
                    safe_hostname(T, n)?;
                }
                lines
                    .entry(names.clone())
                    .or_default()
                    .insert(format!("{fam}#inet#portolan#{}", name_set(f, &names)));
            }
            for w in &r.peers.wildcards {
                safe_hostname(T, w)?;
                lines
                    .entry(vec![w.clone()])
                    .or_default()
                    .insert(format!("{fam}#inet#portolan#{}", wildcard_set(f, w)));
            }
        }
    }
    let mut o = String::new();
    writeln!(
        o,
        "# dnsmasq configuration for Portolan site {}: generated, do not edit.",
        policy.site.replace(['\n', '\r'], " ")
    )
    .ok();
    writeln!(
        o,
        "# Each resolved address is added to the nftables set with the record's TTL as timeout."
    )
    .ok();
    writeln!(
        o,
        "# Note: dnsmasq also matches the apex and every name below each domain listed."
    )
    .ok();
    for (domains, sets) in &lines {
        let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
        writeln!(o, "nftset=/{}/{}", domains.join("/"), sets.join(",")).ok();
    }
    Ok(o)
}
