//! The rules that enforce each flow, as the nftables back end emits them: the emitted text is
//! read back by chain, each rule keyed by the `profile/flow` its comment names, and each
//! device class (`k_<class>_out`, `_in`, `_local`) tied to the group addresses its verdict
//! maps send there. A group's rules for a flow are the rules of its class's chains, plus
//! those in the hook chains (`input`, `forward`: DHCP broadcasts) with that comment.
//!
//! Reading the emitted text, rather than the emitter's plan, shows exactly what a person
//! loads with `nft -f` — the rule line and the chain it sits in — except that a hook rule's
//! set of more than [`SHOWN`] MACs or addresses is shown with the group's own values and the
//! count of the others (the line number leads to the whole rule), and a group is shown only
//! the hook rules that name it or name no device.

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
    /// `profile/flow` → the rules of the other chains (`input`, `forward`) that name no device,
    /// in file order.
    shared: BTreeMap<String, Vec<EmittedRule>>,
    /// The rules of the other chains that name devices by MAC or source address, and
    /// (`profile/flow`, a MAC or address one names) → those rules, by position: a group finds
    /// its own without reading every group's (a scan per group made a report of 10,000
    /// groups with DHCP quadratic).
    named_rules: Vec<(EmittedRule, Pieces)>,
    named: std::collections::HashMap<(String, String), Vec<usize>>,
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
                    None if names_devices(&rule.text) => {
                        let at = e.named_rules.len();
                        for v in device_values(&rule.text) {
                            e.named
                                .entry((prov.clone(), v.to_string()))
                                .or_default()
                                .push(at);
                        }
                        let pieces = Pieces::of(&rule.text);
                        e.named_rules.push((rule, pieces));
                    }
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
    /// chains every group shares) whose MACs and addresses (as the ruleset writes them) are
    /// `own`. A hook rule that names devices (`ether saddr`, `ip saddr`) is the group's only if
    /// it names one of `own`; a set of more than [`SHOWN`] values is shown with the group's
    /// own and the count of the others. (Every group of a profile with DHCP was shown every
    /// other group's DHCP rule and MAC: a report of 10,000 such groups was 4.4 GB.)
    pub fn rules(&self, class: Option<&str>, provenance: &str, own: &[String]) -> Vec<EmittedRule> {
        let mine = class
            .and_then(|c| self.by_class.get(&(c.to_string(), provenance.to_string())))
            .into_iter()
            .flatten()
            .cloned();
        let mut named: Vec<usize> = own
            .iter()
            .filter_map(|o| self.named.get(&(provenance.to_string(), o.clone())))
            .flatten()
            .copied()
            .collect();
        named.sort_unstable();
        named.dedup();
        let shared = self.shared.get(provenance).into_iter().flatten().cloned();
        let named = named
            .into_iter()
            .filter_map(|i| self.named_rules.get(i))
            .map(|(r, pieces)| EmittedRule {
                text: pieces.render(own),
                ..r.clone()
            });
        let mut v: Vec<EmittedRule> = mine.chain(shared).chain(named).collect();
        v.sort_by_key(|r| r.line);
        v
    }
}

/// Values of a set shown in full; a longer set shows the group's own and a count.
pub const SHOWN: usize = 8;

/// Whether a hook rule matches particular devices by their MAC or source address (DHCP
/// discovery from 0.0.0.0 matches none).
fn names_devices(text: &str) -> bool {
    text.contains("ether saddr")
        || (text.contains("ip saddr ") && !text.contains("ip saddr 0.0.0.0 "))
}

/// The MACs and source addresses a hook rule names: the value or the set after each
/// `ether saddr` and `ip saddr`.
fn device_values(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for key in ["ether saddr ", "ip saddr "] {
        for (i, _) in text.match_indices(key) {
            let rest = &text[i + key.len()..];
            if let Some(set) = rest.strip_prefix("{ ") {
                let end = set.find(" }").unwrap_or(set.len());
                out.extend(set[..end].split(", ").map(str::trim));
            } else if let Some(v) = rest.split_whitespace().next() {
                out.push(v);
            }
        }
    }
    out
}

/// A rule's text cut where it holds a set of more than [`SHOWN`] values: the text between,
/// and each long set's values (looked up, not scanned, for each group).
#[derive(Debug, Default)]
struct Pieces {
    text: Vec<String>,
    sets: Vec<std::collections::HashSet<String>>,
}

impl Pieces {
    /// `text[0]`, `sets[0]`, `text[1]`, … `text[n]`.
    fn of(text: &str) -> Pieces {
        let mut p = Pieces::default();
        let mut plain = String::new();
        let mut rest = text;
        while let Some(open) = rest.find("{ ") {
            let Some(close) = rest[open..].find(" }").map(|c| open + c) else {
                break;
            };
            let values: Vec<&str> = rest[open + 2..close].split(", ").collect();
            if values.len() > SHOWN {
                plain.push_str(&rest[..open]);
                p.text.push(std::mem::take(&mut plain));
                p.sets
                    .push(values.into_iter().map(str::to_string).collect());
            } else {
                plain.push_str(&rest[..close + 2]);
            }
            rest = &rest[close + 2..];
        }
        plain.push_str(rest);
        p.text.push(plain);
        p
    }

    /// The text with each long set cut to the values of `own` it holds and the count of the
    /// others: `{ 02:00:5e:00:00:03, … 199 more }`.
    fn render(&self, own: &[String]) -> String {
        let mut out = String::new();
        for (i, t) in self.text.iter().enumerate() {
            out.push_str(t);
            let Some(set) = self.sets.get(i) else { break };
            let kept: Vec<&String> = own.iter().filter(|o| set.contains(*o)).collect();
            out.push_str("{ ");
            for k in &kept {
                out.push_str(k);
                out.push_str(", ");
            }
            out.push_str(&format!("… {} more }}", set.len() - kept.len()));
        }
        out
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
        let a = e.rules(Some("a"), "p/ssh", &[]);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].chain, "k_a_out");
        assert_eq!(a[0].line, 6);
        assert_eq!(a[0].text, "ip daddr 198.51.100.10 tcp dport 22 accept");
        let dhcp = e.rules(Some("b"), "p/dhcp", &[]);
        assert_eq!(dhcp.len(), 1);
        assert_eq!(dhcp[0].chain, "input");
        assert!(e.rules(Some("a"), "p/none", &[]).is_empty());
    }
}

#[cfg(test)]
mod hook_rules {
    use super::*;

    /// The DHCP rules of `input` as the nftables back end writes them for groups with MACs
    /// (`emit/src/nftables/plan.rs`, `dhcp`): discovery from the groups' MACs, then each
    /// group's own-address broadcasts from its MAC and address. Written by hand for 12 groups.
    fn text() -> String {
        let macs: Vec<String> = (1..=12)
            .map(|i| format!("02:00:5e:00:00:{i:02x}"))
            .collect();
        let mut t = String::from("table inet portolan {\n\tchain input {\n");
        t.push_str(&format!(
            "\t\tiifname \"lan0\" ether saddr {{ {} }} ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept comment \"p/dhcp\"\n",
            macs.join(", ")
        ));
        for (i, m) in macs.iter().enumerate() {
            t.push_str(&format!(
                "\t\tiifname \"lan0\" ether saddr {m} ip saddr 10.0.0.{} ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept comment \"p/dhcp\"\n",
                i + 1
            ));
        }
        t.push_str("\t}\n}\n");
        t
    }

    #[test]
    fn a_group_sees_its_own_hook_rules_and_its_own_values_of_a_long_set() {
        let e = Emitted::read(&text());
        let own = vec!["02:00:5e:00:00:03".to_string(), "10.0.0.3".to_string()];
        let r = e.rules(None, "p/dhcp", &own);
        // Discovery (its MAC is in the set) and its own broadcast; not the 11 others'.
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(
            r[0].text,
            "iifname \"lan0\" ether saddr { 02:00:5e:00:00:03, … 11 more } ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept"
        );
        assert_eq!(
            r[1].text,
            "iifname \"lan0\" ether saddr 02:00:5e:00:00:03 ip saddr 10.0.0.3 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept"
        );
        // Whole values only: 10.0.0.3 is not 10.0.0.30.
        assert_eq!(
            device_values("ether saddr { a, b } ip saddr 10.0.0.30 ip daddr 10.0.0.3 accept"),
            vec!["a", "b", "10.0.0.30"]
        );
        assert!(e.rules(None, "p/dhcp", &["10.0.0.1".to_string()]).len() == 1);
        // A group with no MAC there sees neither.
        assert!(e
            .rules(None, "p/dhcp", &["10.9.9.9".to_string()])
            .is_empty());
    }
}
