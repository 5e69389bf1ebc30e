//! `portolan apply --diff` (`--dry-run`): what loading a ruleset would change, without loading
//! it where it is meant to go.
//!
//! Both sides are compared as the kernel lists them: the current `inet portolan` table is
//! listed from the target, and the new ruleset is loaded into a scratch network namespace of
//! its own (created and removed here) and listed from there. Comparing two listings avoids
//! guessing how nft rewrites what the emitter wrote (`{ 53 }` lists as `53`, `meta l4proto`
//! disappears where a port match implies it), and loading the ruleset somewhere proves it
//! loads. Rules and elements are compared in the typed model (`nft -j`: statements with
//! counter values cleared, elements without their expiry); a rule is shown as `nft -a list`
//! prints it, found by its handle. The result: objects added, removed (what the transaction
//! deletes) and recreated, DNS-filled sets kept, rules added and removed by chain and by
//! provenance (each rule's `profile/flow` comment), and elements added to or removed from
//! the sets and maps both sides declare. The elements of DNS-filled sets are not compared:
//! they come from DNS answers and survive a reload.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use crate::apply::{read_pending, scope_dir, transaction, Pending};
use crate::error::{Error, Result};
use crate::exec::{self, Where};
use crate::expr::{Counter, Statement};
use crate::ruleset::Ruleset;
use crate::schema::{Object as Json, Rule};
use crate::scratch::Scratch;
use crate::table::{self, Kind};
use crate::{table_name, TABLE_FAMILY};

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
    /// Chain name → its lines (a base chain's `type … hook … policy …` first, then its rules).
    pub chains: BTreeMap<String, Vec<Line>>,
    /// (kind, name) of each set and map → its elements as text (`10.20.0.10 : jump k_a_out`),
    /// without expiry.
    pub elements: BTreeMap<(Kind, String), BTreeSet<String>>,
}

/// A line of a chain: what it is compared by, and how it is shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// The typed rule (statements with counter values cleared, comment) or base chain
    /// declaration, as JSON.
    pub key: String,
    /// As `nft list` prints it, without handle and counter values.
    pub text: String,
    /// The rule's comment: its `profile/flow`.
    pub provenance: Option<String>,
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

/// The printed lines of `nft -a list table`: each rule's text by handle, and each base
/// chain's `type …` line by chain. Only for showing; what differs is decided on the JSON.
fn printed(text: &str) -> (BTreeMap<u64, String>, BTreeMap<String, String>) {
    let mut rules = BTreeMap::new();
    let mut headers = BTreeMap::new();
    let mut chain: Option<String> = None;
    for raw in text.lines() {
        let line = raw.trim();
        let head = line.split(" # handle ").next().unwrap_or(line);
        if head.ends_with('{') {
            let mut words = head.split_whitespace();
            chain = match (words.next(), words.next()) {
                (Some("chain"), Some(name)) => Some(name.to_string()),
                _ => None,
            };
            continue;
        }
        let Some(c) = &chain else { continue };
        if line.starts_with("type ") && line.contains(" hook ") {
            headers.insert(c.clone(), line.to_string());
        } else if let Some((_, h)) = line.rsplit_once(" # handle ") {
            if let Ok(h) = h.trim().parse::<u64>() {
                rules.insert(h, normalize_rule(line));
            }
        }
    }
    (rules, headers)
}

/// A rule as compared: counters' values cleared.
fn rule_key(r: &Rule) -> String {
    let expr: Vec<Statement> = r
        .expr
        .iter()
        .map(|s| match s {
            Statement::Counter(Counter::Anonymous { .. }) => {
                Statement::Counter(Counter::Anonymous {
                    packets: 0,
                    bytes: 0,
                })
            }
            other => other.clone(),
        })
        .collect();
    serde_json::json!({ "comment": r.comment, "expr": expr }).to_string()
}

impl Listing {
    /// The `inet portolan` table of `r`, shown with the lines of `text` (`nft -a list table`
    /// of the same table).
    pub fn new(r: &Ruleset, text: &str) -> Listing {
        let (lines, headers) = printed(text);
        let mut out = Listing::default();
        let ours = |family, table: &str| family == TABLE_FAMILY && table == table_name();
        for o in &r.objects {
            match o {
                Json::Chain(c) if ours(c.family, &c.table) => {
                    let v = out.chains.entry(c.name.clone()).or_default();
                    if let Some(hook) = &c.hook {
                        let key = serde_json::json!({
                            "type": c.kind, "hook": hook, "prio": c.prio, "policy": c.policy,
                        })
                        .to_string();
                        let text = headers.get(&c.name).cloned().unwrap_or_else(|| key.clone());
                        v.push(Line {
                            key,
                            text,
                            provenance: None,
                        });
                    }
                }
                Json::Rule(x) if ours(x.family, &x.table) => {
                    let key = rule_key(x);
                    let text = x
                        .handle
                        .and_then(|h| lines.get(&h).cloned())
                        .unwrap_or_else(|| key.clone());
                    out.chains.entry(x.chain.clone()).or_default().push(Line {
                        key,
                        text,
                        provenance: x.comment.clone(),
                    });
                }
                Json::Set(s) | Json::Map(s) if ours(s.family, &s.table) => {
                    let kind = if s.is_map() { Kind::Map } else { Kind::Set };
                    out.elements
                        .entry((kind, s.name.clone()))
                        .or_default()
                        .extend(s.elements().map(|e| e.to_string()));
                }
                _ => {}
            }
        }
        out
    }
}

/// Compares two listings (`before` the current table, `after` the new ruleset as the kernel
/// lists it): rules added and removed, the number unchanged, and elements added to or removed
/// from the sets and maps both sides declare (not the DNS-filled sets').
pub fn compare(before: &Listing, after: &Listing) -> (Vec<RuleChange>, usize, Vec<ElementChange>) {
    let mut rules = Vec::new();
    let mut unchanged = 0;
    let names: BTreeSet<&String> = before.chains.keys().chain(after.chains.keys()).collect();
    for chain in names {
        let count = |side: &Listing| {
            let mut m: BTreeMap<String, (usize, Line)> = BTreeMap::new();
            for l in side.chains.get(chain).into_iter().flatten() {
                m.entry(l.key.clone()).or_insert((0, l.clone())).0 += 1;
            }
            m
        };
        let (old, new) = (count(before), count(after));
        let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        for k in keys {
            let (b, a) = (old.get(k).map_or(0, |x| x.0), new.get(k).map_or(0, |x| x.0));
            unchanged += a.min(b);
            let (change, n, line) = if a > b {
                (Change::Added, a - b, &new[k].1)
            } else if b > a {
                (Change::Removed, b - a, &old[k].1)
            } else {
                continue;
            };
            for _ in 0..n {
                rules.push(RuleChange {
                    provenance: line.provenance.clone(),
                    change,
                    chain: chain.clone(),
                    rule: line.text.clone(),
                });
            }
        }
    }
    rules.sort();
    let mut elements = Vec::new();
    for ((kind, name), new) in &after.elements {
        if *kind == Kind::Set && crate::is_dns_filled_set(name) {
            continue;
        }
        let Some(old) = before.elements.get(&(*kind, name.clone())) else {
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
    let previous = table::read(target)?;
    let previous_text = table::list_table_with_handles(target)?.unwrap_or_default();
    let (new, new_text) = scratch_listing(ruleset)?;
    let before = previous
        .as_ref()
        .map(|r| Listing::new(r, &previous_text))
        .unwrap_or_default();
    let after = Listing::new(&new, &new_text);
    let old_objects = previous.as_ref().map(table::objects).unwrap_or_default();
    let new_objects = table::objects(&new);
    let (_, stale, recreated) = transaction(ruleset, &new_objects, &old_objects);
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

/// `ruleset` as the kernel lists it (typed, and printed with handles), from a namespace made
/// for the purpose and removed after.
fn scratch_listing(ruleset: &str) -> Result<(Ruleset, String)> {
    let scratch = Scratch::new("diff")?;
    let file = scratch.write("ruleset.nft", ruleset)?;
    match exec::run_file(&scratch.at(), &file, false) {
        Ok(()) => {}
        Err(Error::Rejected { detail }) => {
            return Err(Error::Apply(format!(
                "the ruleset does not load (tried in a scratch network namespace; nothing was changed):\n{detail}"
            )))
        }
        Err(e) => return Err(e),
    }
    let listed = table::read(&scratch.at())?.unwrap_or_default();
    let text = table::list_table_with_handles(&scratch.at())?.unwrap_or_default();
    scratch.remove()?;
    Ok((listed, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tests/data/diff/before.nft` and `after.nft` as nftables 1.0.6 lists them (`nft -j` and
    /// `nft -a list table`). From before to after, by hand: a port of flow i6 changes, flow i9
    /// goes, a peer address changes, a DNS answer arrives, and the counters move.
    fn listing(name: &str) -> Listing {
        let (json, text) = match name {
            "before" => (
                include_str!("../tests/data/diff/before.json"),
                include_str!("../tests/data/diff/before.listed"),
            ),
            _ => (
                include_str!("../tests/data/diff/after.json"),
                include_str!("../tests/data/diff/after.listed"),
            ),
        };
        Listing::new(&Ruleset::parse(json, name).expect("json"), text)
    }

    fn texts(l: &Listing, chain: &str) -> Vec<String> {
        l.chains[chain].iter().map(|x| x.text.clone()).collect()
    }

    #[test]
    fn a_listing_reads_as_rules_and_elements() {
        let l = listing("before");
        assert_eq!(
            texts(&l, "k_a_out"),
            [
                "ip daddr @s4_a udp dport 500 accept comment \"p/i6\"",
                "ip daddr @s4_a tcp dport 22 accept comment \"p/i9\""
            ]
        );
        assert_eq!(
            texts(&l, "forward"),
            [
                "type filter hook forward priority filter; policy drop;",
                "ct state established,related accept",
                "counter drop"
            ]
        );
        let set: Vec<&str> = l.elements[&(Kind::Set, "s4_a".into())]
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(set, ["198.51.100.10", "198.51.100.20", "203.0.113.0/28"]);
        let map: Vec<&str> = l.elements[&(Kind::Map, "fwd_src4h".into())]
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(map, ["10.20.0.10 : jump k_a_out"]);
    }

    #[test]
    fn rules_and_elements_compare_by_provenance() {
        // By hand: one rule added and two removed.
        let (rules, unchanged, elements) = compare(&listing("before"), &listing("after"));
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
        let (rules, unchanged, elements) = compare(&listing("before"), &listing("before"));
        assert!(rules.is_empty() && elements.is_empty());
        assert_eq!(unchanged, 5);
    }
}
