//! Provenance: every rule that accepts names the `profile/flow` row it enforces, and that row
//! exists in the profile the site uses.

use std::collections::BTreeSet;

use portolan_emit::{emit, Options, Target};
use portolan_model::ir::Policy;

use crate::common::{compile_file, good_sites};

/// The `profile/flow` pairs the policy's profiles declare.
fn catalog_rows(policy: &Policy) -> BTreeSet<String> {
    policy
        .profiles
        .values()
        .flat_map(|p| p.flows.iter().map(move |f| format!("{}/{}", p.id, f.id)))
        .collect()
}

/// The text between the first pair of double quotes after `key`.
fn quoted_after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = &line[line.find(key)? + key.len()..];
    let rest = rest.strip_prefix('"')?;
    Some(&rest[..rest.find('"')?])
}

/// Conntrack rules accept return traffic and name no flow; neither does IPv6 neighbour
/// discovery with the firewall (ARP's role, which IPv6 devices need whatever their profile).
fn is_conntrack(line: &str) -> bool {
    line.contains("ct state established,related")
        || line.contains("--ctstate RELATED,ESTABLISHED")
        || line.contains("comment \"IPv6 neighbour discovery\"")
}

#[test]
fn every_nftables_accept_names_an_existing_profile_flow() {
    for site in good_sites() {
        let policy = compile_file(&site);
        let rows = catalog_rows(&policy);
        let text = emit(Target::Nftables, &policy, &Options::default()).expect("emits");
        let mut accepts = 0;
        for line in text.lines().map(str::trim) {
            if line.starts_with('#') || !line.split_whitespace().any(|w| w == "accept") {
                continue;
            }
            if is_conntrack(line) {
                continue;
            }
            accepts += 1;
            let c = quoted_after(line, "comment ")
                .unwrap_or_else(|| panic!("{}: accept without comment: {line}", site.display()));
            assert!(
                rows.contains(c),
                "{}: `{c}` is not a profile/flow of the catalog: {line}",
                site.display()
            );
        }
        assert!(accepts > 0, "{}: no accept rule at all", site.display());
    }
}

#[test]
fn every_iptables_accept_names_an_existing_profile_flow() {
    for site in good_sites() {
        let policy = compile_file(&site);
        let rows = catalog_rows(&policy);
        let text = emit(Target::Iptables, &policy, &Options::default()).expect("emits");
        let mut accepts = 0;
        for line in text.lines() {
            if !line.starts_with("-A ") || !line.ends_with("-j ACCEPT") || is_conntrack(line) {
                continue;
            }
            accepts += 1;
            let c = quoted_after(line, "--comment ")
                .unwrap_or_else(|| panic!("{}: accept without comment: {line}", site.display()));
            assert!(
                rows.contains(c),
                "{}: `{c}` is not a profile/flow of the catalog: {line}",
                site.display()
            );
        }
        assert!(accepts > 0, "{}: no accept rule at all", site.display());
        // Every rule, not only accepts, carries a comment.
        for line in text.lines().filter(|l| l.starts_with("-A ")) {
            assert!(line.contains(" -m comment --comment \""), "{line}");
        }
    }
}

#[test]
fn every_ir_rule_reaches_the_nftables_output() {
    for site in good_sites() {
        let policy = compile_file(&site);
        let text = emit(Target::Nftables, &policy, &Options::default()).expect("emits");
        for r in &policy.rules {
            let c = format!("comment \"{}\"", r.provenance());
            assert!(text.contains(&c), "{}: {c} missing", site.display());
        }
    }
}
