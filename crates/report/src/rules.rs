//! The rules that enforce each flow, as the nftables back end emits them: the emitted text is
//! read back by chain, each rule keyed by the `profile/flow` its comment names, and each
//! device class (`k_<class>_out`, `_in`, `_local`) tied to the group addresses its verdict
//! maps send there. A group's rules for a flow are the rules of its class's chains, plus
//! those in the hook chains (`input`, `forward`: DHCP broadcasts) with that comment.
//!
//! Reading the emitted text, rather than the emitter's plan, shows exactly what a person
//! loads with `nft -f` — the rule line and the chain it sits in.

use std::collections::BTreeMap;

/// One emitted rule: its chain and its text (without the comment), and its line in the
/// emitted file (1-based).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EmittedRule {
    pub chain: String,
    pub line: usize,
    pub text: String,
}

/// The emitted ruleset, indexed.
#[derive(Debug, Default)]
pub struct Emitted {
    /// (class, `profile/flow`) → the rules of the class's chains, in file order.
    by_class: BTreeMap<(String, String), Vec<EmittedRule>>,
    /// `profile/flow` → the rules of the other chains (`input`, `forward`), in file order.
    shared: BTreeMap<String, Vec<EmittedRule>>,
    /// A device address as the maps write it (`10.20.0.10`, `10.20.0.64/28`) → its class.
    class_of: BTreeMap<String, String>,
}

/// The class a device chain belongs to: `k_lrr-ipsec_out` → `lrr-ipsec`.
fn class_of_chain(chain: &str) -> Option<&str> {
    let rest = chain.strip_prefix("k_")?;
    ["_out", "_in", "_local"]
        .iter()
        .find_map(|s| rest.strip_suffix(s))
}

impl Emitted {
    /// Indexes the text of `portolan compile --target nftables`.
    pub fn read(text: &str) -> Emitted {
        let mut e = Emitted::default();
        let mut chain: Option<String> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if let Some(rest) = line.strip_prefix("chain ") {
                let name = rest.split_whitespace().next().unwrap_or_default();
                // `chain x { }` declares; `chain x {` opens a body.
                chain = (!line.ends_with("}")).then(|| name.to_string());
                continue;
            }
            if line == "}" {
                chain = None;
                continue;
            }
            // Map elements: `10.20.0.10 : jump k_lrr-ipsec_out,` (the first after `{ `).
            let element = line.trim_start_matches("elements = {").trim();
            if let Some((addr, verdict)) = element.split_once(" : ") {
                let target = verdict
                    .trim_end_matches([',', '}', ' '])
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default();
                if let Some(class) = class_of_chain(target) {
                    e.class_of
                        .insert(addr.trim().to_string(), class.to_string());
                }
                continue;
            }
            let Some(ch) = &chain else { continue };
            if let Some((rule, comment)) = line.rsplit_once(" comment \"") {
                let prov = comment.trim_end_matches('"').to_string();
                let rule = EmittedRule {
                    chain: ch.clone(),
                    line: i + 1,
                    text: rule.to_string(),
                };
                match class_of_chain(ch) {
                    Some(c) => e
                        .by_class
                        .entry((c.to_string(), prov))
                        .or_default()
                        .push(rule),
                    None => e.shared.entry(prov).or_default().push(rule),
                }
            }
        }
        e
    }

    /// The class the maps send `address` (as the maps write it) to.
    pub fn class(&self, address: &str) -> Option<&str> {
        self.class_of.get(address).map(String::as_str)
    }

    /// The rules enforcing `provenance` for a group of `class` (its chains, and the hook
    /// chains every group shares).
    pub fn rules(&self, class: Option<&str>, provenance: &str) -> Vec<EmittedRule> {
        let own = class
            .and_then(|c| self.by_class.get(&(c.to_string(), provenance.to_string())))
            .into_iter()
            .flatten();
        let shared = self.shared.get(provenance).into_iter().flatten();
        let mut v: Vec<EmittedRule> = own.chain(shared).cloned().collect();
        v.sort_by_key(|r| r.line);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A hand-written excerpt in the layout ARCHITECTURE.md describes.
    const TEXT: &str = "table inet portolan {
\tchain k_a_out { }
}
table inet portolan {
\tchain k_a_out {
\t\tip daddr 198.51.100.10 tcp dport 22 accept comment \"p/ssh\"
\t}
\tchain k_b_out {
\t\tip daddr 198.51.100.11 tcp dport 22 accept comment \"p/ssh\"
\t}
\tmap fwd_src4h {
\t\ttype ipv4_addr : verdict
\t\telements = { 10.0.0.1 : jump k_a_out,
\t\t\t10.0.0.2 : jump k_a_out,
\t\t\t10.0.0.3 : jump k_b_out }
\t}
\tchain input {
\t\tiifname \"lan0\" ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept comment \"p/dhcp\"
\t}
}
";

    #[test]
    fn a_group_sees_its_class_rules_and_the_hook_rules() {
        let e = Emitted::read(TEXT);
        assert_eq!(e.class("10.0.0.2"), Some("a"));
        assert_eq!(e.class("10.0.0.3"), Some("b"));
        let a = e.rules(Some("a"), "p/ssh");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].chain, "k_a_out");
        assert_eq!(a[0].line, 6);
        assert_eq!(a[0].text, "ip daddr 198.51.100.10 tcp dport 22 accept");
        let dhcp = e.rules(Some("b"), "p/dhcp");
        assert_eq!(dhcp.len(), 1);
        assert_eq!(dhcp[0].chain, "input");
        assert!(e.rules(Some("a"), "p/none").is_empty());
    }
}
