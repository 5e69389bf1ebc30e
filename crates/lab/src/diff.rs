//! `portolan apply --diff` (`--dry-run`): what loading a ruleset would change, without loading
//! it where it is meant to go.
//!
//! Both sides are compared as the kernel prints them: the current `inet portolan` table is
//! listed from the target, and the new ruleset is loaded into a scratch network namespace of
//! its own (created and removed here, like the lab's) and listed from there. Comparing two
//! `nft list` texts avoids guessing how nft rewrites what the emitter wrote (`{ 53 }` prints as
//! `53`, `meta l4proto` disappears where a port match implies it), and loading the ruleset
//! somewhere proves it loads. The result: objects added, removed (what the transaction
//! deletes) and recreated, DNS-filled sets kept, rules added and removed by chain and by
//! provenance (each rule's `profile/flow` comment), and elements added to or removed from
//! the sets and maps both sides declare. The elements of DNS-filled sets are not compared:
//! they come from DNS answers and survive a reload.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use serde::Serialize;

use crate::apply::{read_pending, scope_dir, transaction, Pending};
use crate::command::Where;
use crate::error::{Error, Result};
use crate::netns::{self, Resources};
use crate::nft::{self, Object};

/// Added or removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Added,
    Removed,
}

/// One rule that a load adds or removes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RuleChange {
    /// The rule's `profile/flow` comment; `None` for Portolan's own rules (dispatch, logging,
    /// a base chain's hook and policy).
    pub provenance: Option<String>,
    pub change: Change,
    pub chain: String,
    /// As `nft list` prints it, without handle and counter values.
    pub rule: String,
}

/// Elements a load adds to or removes from a set or map that exists before and after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ElementChange {
    /// `set NAME` or `map NAME`.
    pub object: String,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

/// What loading a ruleset would change.
#[derive(Clone, Debug, Serialize)]
pub struct Diff {
    pub scope: String,
    /// Whether an `inet portolan` table exists now.
    pub had_previous: bool,
    pub objects_added: Vec<String>,
    /// Objects of the current table the new ruleset does not declare: deleted by the load.
    pub objects_removed: Vec<String>,
    /// Sets and maps whose type or flags change: deleted and declared again (emptied).
    pub objects_recreated: Vec<String>,
    /// DNS-filled sets the new ruleset no longer declares: kept, with their elements.
    pub dns_sets_kept: Vec<String>,
    /// Sorted by provenance, then chain.
    pub rules: Vec<RuleChange>,
    pub rules_unchanged: usize,
    pub elements: Vec<ElementChange>,
    /// An apply of this scope awaiting confirmation, if any (a new apply is refused until it
    /// is confirmed or rolled back).
    pub pending: Option<Pending>,
}

impl Diff {
    /// Whether the load would change nothing.
    pub fn is_empty(&self) -> bool {
        self.objects_added.is_empty()
            && self.objects_removed.is_empty()
            && self.objects_recreated.is_empty()
            && self.rules.is_empty()
            && self.elements.is_empty()
    }
}

/// A table listing as chains of rules and sets or maps of elements.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Listing {
    /// Chain name → its rules (a base chain's `type … hook … policy …` line first).
    pub chains: BTreeMap<String, Vec<String>>,
    /// (kind, name) of each set and map → its elements.
    pub elements: BTreeMap<(String, String), BTreeSet<String>>,
}

/// `text` without its double-quoted parts, for counting braces.
fn unquoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quoted = false;
    for c in text.chars() {
        if c == '"' {
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

/// A rule line without what changes by itself: the handle and the counters' values.
fn normalize_rule(line: &str) -> String {
    let line = match line.find(" # handle ") {
        Some(i) => &line[..i],
        None => line,
    };
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut out: Vec<&str> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        out.push(words[i]);
        if words[i] == "counter"
            && words.get(i + 1) == Some(&"packets")
            && words.get(i + 3) == Some(&"bytes")
        {
            i += 5;
        } else {
            i += 1;
        }
    }
    out.join(" ")
}

/// The elements inside `elements = { … }`, split at the top-level commas.
fn split_elements(inner: &str) -> impl Iterator<Item = String> + '_ {
    let mut depth = 0usize;
    let mut start = 0;
    let mut parts = Vec::new();
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
}

/// Reads `nft list table inet portolan` output.
pub fn listing(text: &str) -> Listing {
    let mut out = Listing::default();
    let mut depth = 0usize;
    // (kind, name) of the object being read, and a pending `elements = {` text.
    let mut current: Option<(String, String)> = None;
    let mut elements: Option<String> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let bare = unquoted(line);
        let opens = bare.matches('{').count();
        let closes = bare.matches('}').count();
        if let Some(acc) = elements.as_mut() {
            acc.push(' ');
            acc.push_str(line);
            if unquoted(acc).matches('{').count() <= unquoted(acc).matches('}').count() {
                finish_elements(&mut out, current.as_ref(), acc);
                elements = None;
            }
            depth = (depth + opens).saturating_sub(closes);
            continue;
        }
        match depth {
            0 => {
                if line.starts_with("table inet portolan") && opens > closes {
                    depth = 1;
                }
                continue;
            }
            1 => {
                let words: Vec<&str> = line.split_whitespace().collect();
                if opens > closes && words.len() >= 2 {
                    let key = (words[0].to_string(), words[1].to_string());
                    if key.0 == "chain" {
                        out.chains.entry(key.1.clone()).or_default();
                    } else {
                        out.elements.entry(key.clone()).or_default();
                    }
                    current = Some(key);
                }
            }
            2 => {
                if let Some((kind, name)) = &current {
                    if kind == "chain" {
                        if line != "}" {
                            out.chains
                                .entry(name.clone())
                                .or_default()
                                .push(normalize_rule(line));
                        }
                    } else if line.starts_with("elements = {") {
                        if opens <= closes {
                            finish_elements(&mut out, current.as_ref(), line);
                        } else {
                            elements = Some(line.to_string());
                        }
                    }
                }
            }
            _ => {}
        }
        depth = (depth + opens).saturating_sub(closes);
        if depth <= 1 {
            current = None;
        }
    }
    out
}

fn finish_elements(out: &mut Listing, current: Option<&(String, String)>, text: &str) {
    let Some(key) = current else { return };
    let Some(open) = text.find('{') else { return };
    let Some(close) = text.rfind('}') else { return };
    if close <= open {
        return;
    }
    out.elements
        .entry(key.clone())
        .or_default()
        .extend(split_elements(&text[open + 1..close]));
}

fn provenance(rule: &str) -> Option<String> {
    let i = rule.rfind("comment \"")?;
    let rest = &rule[i + "comment \"".len()..];
    let end = rest.find('"')?;
    Some(rest[..end].to_string())
}

fn dns_filled(kind: &str, name: &str) -> bool {
    Object {
        kind: kind.to_string(),
        name: name.to_string(),
        decl: String::new(),
    }
    .dns_filled()
}

/// Compares two listings (`before` the current table, `after` the new ruleset as the kernel
/// lists it), with the objects the transaction deletes and recreates.
pub fn compare<'a>(
    before: &'a Listing,
    after: &'a Listing,
) -> (Vec<RuleChange>, usize, Vec<ElementChange>) {
    let mut rules = Vec::new();
    let mut unchanged = 0;
    let names: BTreeSet<&String> = before.chains.keys().chain(after.chains.keys()).collect();
    for chain in names {
        let count = |side: &'a Listing| {
            let mut m: BTreeMap<&'a str, usize> = BTreeMap::new();
            for r in side.chains.get(chain).into_iter().flatten() {
                *m.entry(r.as_str()).or_default() += 1;
            }
            m
        };
        let (old, new) = (count(before), count(after));
        let keys: BTreeSet<&str> = old.keys().chain(new.keys()).copied().collect();
        for r in keys {
            let (b, a) = (
                old.get(r).copied().unwrap_or(0),
                new.get(r).copied().unwrap_or(0),
            );
            unchanged += a.min(b);
            let (change, n) = if a > b {
                (Change::Added, a - b)
            } else {
                (Change::Removed, b - a)
            };
            for _ in 0..n {
                rules.push(RuleChange {
                    provenance: provenance(r),
                    change,
                    chain: chain.clone(),
                    rule: r.to_string(),
                });
            }
        }
    }
    rules.sort();
    let mut elements = Vec::new();
    for ((kind, name), new) in &after.elements {
        if dns_filled(kind, name) {
            continue;
        }
        let Some(old) = before.elements.get(&(kind.clone(), name.clone())) else {
            continue;
        };
        let added: Vec<String> = new.difference(old).cloned().collect();
        let removed: Vec<String> = old.difference(new).cloned().collect();
        if !added.is_empty() || !removed.is_empty() {
            elements.push(ElementChange {
                object: format!("{kind} {name}"),
                added,
                removed,
            });
        }
    }
    (rules, unchanged, elements)
}

/// The current table of `target` against `ruleset`, loaded into a scratch namespace to be
/// listed. Nothing is loaded into `target`, and nothing is written to the state folder.
pub fn diff(ruleset: &str, target: &Where, state_dir: &Path) -> Result<Diff> {
    target.check()?;
    let previous = nft::list_table(target)?;
    let after_text = scratch_listing(ruleset)?;
    let before = previous.as_deref().map(listing).unwrap_or_default();
    let after = listing(&after_text);
    let (_, stale, recreated) = transaction(ruleset, previous.as_deref());
    let old_objects = previous.as_deref().map(nft::objects).unwrap_or_default();
    let new_objects = nft::objects(ruleset);
    let objects_added = new_objects
        .iter()
        .filter(|(k, _)| !old_objects.contains_key(*k))
        .map(|(_, o)| o.label())
        .collect();
    let dns_sets_kept = old_objects
        .iter()
        .filter(|(k, o)| o.dns_filled() && !new_objects.contains_key(*k))
        .map(|(_, o)| o.label())
        .collect();
    let (rules, rules_unchanged, elements) = compare(&before, &after);
    Ok(Diff {
        scope: target.scope(),
        had_previous: previous.is_some(),
        objects_added,
        objects_removed: stale,
        objects_recreated: recreated,
        dns_sets_kept,
        rules,
        rules_unchanged,
        elements,
        pending: read_pending(&scope_dir(target, state_dir).join("pending.json")),
    })
}

/// `ruleset` as the kernel lists it, from a namespace made for the purpose and removed after.
fn scratch_listing(ruleset: &str) -> Result<String> {
    netns::install_signal_cleanup()?;
    let mut res = Resources::new();
    let name = format!("{}-diff", netns::unique_prefix());
    let dir = std::env::temp_dir().join(&name);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    res.add_dir(dir.clone());
    let file = dir.join("ruleset.nft");
    std::fs::write(&file, ruleset)
        .map_err(|e| Error::io(format!("cannot write {}", file.display()), e))?;
    res.add_netns(&name)?;
    let scratch = Where::Netns(name);
    if let Err(msg) = nft::run_file(&scratch, &file, false)? {
        return Err(Error::Apply(format!(
            "the ruleset does not load (tried in a scratch network namespace; nothing was changed):\n{msg}"
        )));
    }
    let listed = nft::list_table(&scratch)?.unwrap_or_default();
    let problems = res.release();
    if !problems.is_empty() {
        return Err(Error::Apply(format!(
            "could not remove the scratch namespace: {}",
            problems.join("; ")
        )));
    }
    Ok(listed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "table inet portolan {\n\tset x_v4 {\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t\telements = { 192.0.2.9 timeout 1h expires 59m }\n\t}\n\tset s4_a {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\telements = { 198.51.100.10, 198.51.100.20,\n\t\t\t     203.0.113.0/28 }\n\t}\n\tmap fwd_src4h {\n\t\ttype ipv4_addr : verdict\n\t\telements = { 10.20.0.10 : jump k_a_out }\n\t}\n\tchain k_a_out {\n\t\tip daddr @s4_a udp dport 500 accept comment \"p/i6\" # handle 7\n\t\tip daddr @s4_a tcp dport 22 accept comment \"p/i9\" # handle 8\n\t}\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n\t\tct state established,related accept\n\t\tcounter packets 12 bytes 3400 drop\n\t}\n}\n";

    #[test]
    fn a_listing_reads_as_rules_and_elements() {
        let l = listing(BEFORE);
        assert_eq!(
            l.chains["k_a_out"],
            [
                "ip daddr @s4_a udp dport 500 accept comment \"p/i6\"",
                "ip daddr @s4_a tcp dport 22 accept comment \"p/i9\""
            ]
        );
        assert_eq!(
            l.chains["forward"],
            [
                "type filter hook forward priority filter; policy drop;",
                "ct state established,related accept",
                "counter drop"
            ]
        );
        let set: Vec<&str> = l.elements[&("set".into(), "s4_a".into())]
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(set, ["198.51.100.10", "198.51.100.20", "203.0.113.0/28"]);
        let map: Vec<&str> = l.elements[&("map".into(), "fwd_src4h".into())]
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(map, ["10.20.0.10 : jump k_a_out"]);
    }

    #[test]
    fn rules_and_elements_compare_by_provenance() {
        // A port of flow i6 changes, flow i9 goes, a peer address changes, a DNS answer
        // arrives, and the counters move: by hand, one rule added and two removed.
        let after = BEFORE
            .replace("udp dport 500", "udp dport 4500")
            .replace(
                "\t\tip daddr @s4_a tcp dport 22 accept comment \"p/i9\" # handle 8\n",
                "",
            )
            .replace("198.51.100.20,", "198.51.100.21,")
            .replace("192.0.2.9 timeout", "192.0.2.10 timeout")
            .replace("packets 12 bytes 3400", "packets 0 bytes 0");
        let (rules, unchanged, elements) = compare(&listing(BEFORE), &listing(&after));
        let got: Vec<(Option<&str>, Change, &str)> = rules
            .iter()
            .map(|r| (r.provenance.as_deref(), r.change, r.rule.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    Some("p/i6"),
                    Change::Added,
                    "ip daddr @s4_a udp dport 4500 accept comment \"p/i6\""
                ),
                (
                    Some("p/i6"),
                    Change::Removed,
                    "ip daddr @s4_a udp dport 500 accept comment \"p/i6\""
                ),
                (
                    Some("p/i9"),
                    Change::Removed,
                    "ip daddr @s4_a tcp dport 22 accept comment \"p/i9\""
                ),
            ]
        );
        assert_eq!(unchanged, 3, "the forward chain's three lines");
        assert_eq!(
            elements,
            [ElementChange {
                object: "set s4_a".into(),
                added: vec!["198.51.100.21".into()],
                removed: vec!["198.51.100.20".into()],
            }]
        );
    }

    #[test]
    fn nothing_differs_from_itself() {
        let (rules, unchanged, elements) = compare(&listing(BEFORE), &listing(BEFORE));
        assert!(rules.is_empty() && elements.is_empty());
        assert_eq!(unchanged, 5);
    }
}
