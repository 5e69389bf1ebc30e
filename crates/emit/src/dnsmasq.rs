//! dnsmasq back end: the `nftset=` lines that make dnsmasq add every address it resolves for
//! a profile's hostnames and wildcard domains to the matching nftables set (dnsmasq ≥ 2.87).
//! dnsmasq (up to 2.90 at least) adds the element without a timeout, so it lives for the set's
//! default timeout (`Options::dns_timeout`, one hour unless set), not for the record's TTL;
//! `compile --resolve` is the way to get per-record TTLs.
//!
//! dnsmasq matches a domain *and all names below it*: `nftset=/mbedcloud.com/…` admits the
//! apex `mbedcloud.com` as well as `*.mbedcloud.com`, and a line for `gk.sensorist.com` also
//! admits `x.gk.sensorist.com`. That is slightly wider than the profile; the nftables sets are
//! still limited to the ports and devices of the flows that use them.
//!
//! dnsmasq reads a configuration line into a buffer of about a kilobyte: a longer
//! `nftset=` line (an endpoint with many long hostnames) fails `dnsmasq --test` with "bad
//! option". Lines are cut at [`MAX_LINE`] characters, the domains spread over several lines
//! that name the same sets.

use std::collections::{BTreeMap, BTreeSet};

use portolan_model::ir::Policy;

use crate::names::safe_hostname;
use crate::names::Family;
use crate::nftables::{name_set, wildcard_set};
use crate::{EmitError, Options};

const T: &str = "dnsmasq";

/// The longest `nftset=` line written. dnsmasq 2.90 accepts lines of 1,017 characters and
/// refuses some of 1,034 (its buffer is about a kilobyte); this stays below both.
pub const MAX_LINE: usize = 1000;

/// `nftset=/d1/d2/…/set1,set2` lines for `domains`, each at most [`MAX_LINE`] characters.
fn nftset_lines(domains: &[String], sets: &[&str]) -> Result<Vec<String>, EmitError> {
    let tail = format!("/{}", sets.join(","));
    let mut lines = Vec::new();
    let mut line = String::new();
    for d in domains {
        let single = "nftset=/".len() + d.len() + tail.len();
        if single > MAX_LINE {
            return Err(EmitError::Unsupported {
                target: T,
                what: format!(
                    "a line of {single} characters for `{d}` (its {} sets): dnsmasq reads at most about {MAX_LINE}",
                    sets.len()
                ),
            });
        }
        if !line.is_empty() && line.len() + 1 + d.len() + tail.len() > MAX_LINE {
            lines.push(format!("{line}{tail}"));
            line.clear();
        }
        if line.is_empty() {
            line.push_str("nftset=/");
        } else {
            line.push('/');
        }
        line.push_str(d);
    }
    if !line.is_empty() {
        lines.push(format!("{line}{tail}"));
    }
    Ok(lines)
}

/// The domain lists and the sets each fills (`4#inet#portolan#<set>`), as dnsmasq needs them
/// (a name under a listed wildcard domain on a line of its own with both sets). OpenWrt's
/// UCI `config ipset` sections (`--target openwrt`) are written from the same lists.
pub(crate) fn fills(policy: &Policy) -> Result<BTreeMap<Vec<String>, BTreeSet<String>>, EmitError> {
    // domain list → set names
    let mut lines: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    // wildcard domain → its sets
    let mut wild: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // Groups by id, once: `policy.group` per rule would be quadratic in large sites.
    let groups: BTreeMap<&str, &portolan_model::ir::Group> =
        policy.groups.iter().map(|g| (g.id.as_str(), g)).collect();
    for r in &policy.rules {
        let Some(g) = groups.get(r.group.as_str()) else {
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
            let f = if *fam == "4" { Family::V4 } else { Family::V6 };
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
                let set = format!("{fam}#inet#portolan#{}", wildcard_set(f, w));
                lines
                    .entry(vec![w.clone()])
                    .or_default()
                    .insert(set.clone());
                wild.entry(w.clone()).or_default().insert(set);
            }
        }
    }
    // dnsmasq fills only the sets of the *longest* matching domain, so a listed name under a
    // wildcard domain (bootstrap.us-east-1.mbedcloud.com under *.mbedcloud.com) would never
    // reach the wildcard's set. Such a name gets a line of its own with both sets.
    let covering = |d: &str| -> BTreeSet<String> {
        wild.iter()
            .filter(|(w, _)| d.len() > w.len() && d.ends_with(&format!(".{w}")))
            .flat_map(|(_, sets)| sets.iter().cloned())
            .collect()
    };
    // Every domain's sets, whichever lines named it: dnsmasq uses one line per domain (of
    // two lines naming the same domain, only the first one's sets are filled: tried with
    // dnsmasq 2.90, `--nftset=/a.test/…#s1 --nftset=/a.test/b.test/…#s2` fills s1 alone for
    // a.test), so a name two flows list must be written once, with the sets of both.
    let mut per_domain: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (domains, sets) in lines {
        for d in domains {
            let e = per_domain.entry(d.clone()).or_default();
            e.extend(sets.iter().cloned());
            e.extend(covering(&d));
        }
    }
    // Domains with the same sets share a line (as short as the lists allow).
    let mut split: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    let mut by_sets: BTreeMap<BTreeSet<String>, Vec<String>> = BTreeMap::new();
    for (d, sets) in per_domain {
        by_sets.entry(sets).or_default().push(d);
    }
    for (sets, domains) in by_sets {
        split.insert(domains, sets);
    }
    Ok(split)
}

pub fn emit(policy: &Policy, _opts: &Options) -> Result<String, EmitError> {
    let lines = fills(policy)?;
    let mut o = format!(
        "# dnsmasq configuration for Portolan site {}: generated, do not edit.\n",
        policy.site.replace(['\n', '\r'], " ")
    );
    o.push_str("# Each resolved address is added to the nftables set; it expires after the set's default timeout.\n");
    o.push_str("# Note: dnsmasq also matches the apex and every name below each domain listed.\n");
    // `nftset=` adds the addresses of the names asked; it cannot follow an SRV answer to its
    // targets and ports, so a flow to an SRV-learnt peer opens nothing here: say which.
    for r in &policy.discovered {
        o.push_str(&format!(
            "# not opened by dnsmasq: {} for {}: its peer is learnt from DNS SRV {} (nftset= cannot follow SRV targets); run `portolan enforce`, or bind the endpoint in the site\n",
            r.provenance().replace(['\n', '\r'], " "),
            r.group.replace(['\n', '\r'], " "),
            r.peers.srv.join(", ").replace(['\n', '\r'], " "),
        ));
    }
    for (domains, sets) in &lines {
        let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
        for line in nftset_lines(domains, &sets)? {
            o.push_str(&line);
            o.push('\n');
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_domain_lists_are_cut_into_lines_under_the_limit() {
        let domains: Vec<String> = (0..200)
            .map(|i| format!("host-{i:03}.devices.vendor.example.com"))
            .collect();
        let lines =
            nftset_lines(&domains, &["4#inet#portolan#a", "6#inet#portolan#a"]).expect("fits");
        assert!(lines.len() > 1);
        let mut seen = Vec::new();
        for l in &lines {
            assert!(l.len() <= MAX_LINE, "{} characters", l.len());
            let body = l.strip_prefix("nftset=/").expect("prefix");
            let (ds, sets) = body.rsplit_once('/').expect("sets");
            assert_eq!(sets, "4#inet#portolan#a,6#inet#portolan#a");
            seen.extend(ds.split('/').map(str::to_string));
        }
        assert_eq!(seen, domains);
    }
}
