//! Where a ruleset's text came from: the source line of each rule of a `.nft` file, so a
//! report can say "line 123" for the rule that decided a flow.
//!
//! `nft -j list ruleset` gives handles, not lines. A rule's line is found by position: the
//! k-th rule statement written inside `chain NAME { ... }` blocks of table T (blocks of one
//! chain may repeat; rules accumulate in file order, as `nft -f` adds them) is the k-th rule
//! of that chain in the listing. A chain whose rule count differs between the two (a
//! `flush` or `delete` in the file, rules spread over several lines) gets no lines rather
//! than wrong ones.

use std::collections::BTreeMap;

/// (table, chain, index of the rule in the chain) → 1-based line.
pub type Lines = BTreeMap<(String, String, usize), usize>;

/// The rule lines of a `.nft` file. `counts` gives the number of rules of each (table,
/// chain) in the loaded ruleset; chains whose count differs are left out.
pub fn rule_lines(text: &str, counts: &BTreeMap<(String, String), usize>) -> Lines {
    let mut found: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    let mut table: Option<String> = None;
    let mut chain: Option<String> = None;
    // Brace depth inside the current chain block (0: directly in it).
    let mut inner = 0i32;
    let mut depth_in_table = 0i32;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let opens = line.matches('{').count() as i32;
        let closes = line.matches('}').count() as i32;
        if chain.is_none() {
            if words.first() == Some(&"table") && line.ends_with('{') {
                table = words.get(2).or(words.get(1)).map(|s| s.to_string());
                depth_in_table = 1;
                continue;
            }
            if table.is_some() {
                if words.first() == Some(&"chain") && line.ends_with('{') {
                    chain = words.get(1).map(|s| s.to_string());
                    inner = 0;
                    continue;
                }
                if words.first() == Some(&"chain") {
                    continue; // `chain x { }` on one line: no rules
                }
                depth_in_table += opens - closes;
                if depth_in_table <= 0 {
                    table = None;
                }
            }
            continue;
        }
        if inner == 0 && line == "}" {
            chain = None;
            continue;
        }
        if inner == 0 {
            let first = words.first().copied().unwrap_or("");
            let is_decl = matches!(first, "type" | "policy" | "comment" | "devices")
                && (line.ends_with(';') || first == "type");
            if !is_decl {
                if let (Some(t), Some(c)) = (&table, &chain) {
                    found.entry((t.clone(), c.clone())).or_default().push(i + 1);
                }
            }
        }
        inner += opens - closes;
        if inner < 0 {
            // The rule line also closed the chain (`accept }`).
            chain = None;
            inner = 0;
        }
    }
    let mut out = Lines::new();
    for ((t, c), lines) in found {
        if counts.get(&(t.clone(), c.clone())) == Some(&lines.len()) {
            for (k, l) in lines.into_iter().enumerate() {
                out.insert((t.clone(), c.clone(), k), l);
            }
        }
    }
    out
}

/// Rules per (table, chain) of a libnftables-json document.
pub fn rule_counts(doc: &serde_json::Value) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for it in doc
        .get("nftables")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        if let Some(r) = it.get("rule") {
            let t = r
                .get("table")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string();
            let c = r
                .get("chain")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string();
            *m.entry((t, c)).or_insert(0) += 1;
        }
    }
    m
}

/// The libnftables-json document of a ruleset read by `portolan-nft` (which owns reading:
/// a `.nft` file is loaded into a scratch namespace and listed).
pub fn document(r: &portolan_nft::Ruleset) -> Result<serde_json::Value, String> {
    serde_json::from_str(&r.to_json()).map_err(|e| format!("ruleset JSON: {e}"))
}

/// What `nft -j list ruleset` prints for a `.nft` file (never loaded outside a scratch
/// namespace).
pub fn json_of_file(path: &std::path::Path) -> Result<serde_json::Value, String> {
    let r = portolan_nft::read_file(path).map_err(|e| e.to_string())?;
    document(&r)
}

/// What `nft -j list ruleset` prints in a namespace (`None`: the one portolan runs in).
pub fn json_live(netns: Option<&str>) -> Result<serde_json::Value, String> {
    let w = match netns {
        Some(ns) => portolan_nft::Where::Netns(ns.to_string()),
        None => portolan_nft::Where::Host,
    };
    let r = portolan_nft::read_live(&w).map_err(|e| e.to_string())?;
    document(&r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_chain_blocks_in_file_order() {
        let text = "table inet t {\n\tchain a { }\n}\ntable inet t {\n\tchain a {\n\t\ttype filter hook input priority 0; policy drop;\n\t\ttcp dport 22 accept\n\t\tudp dport { 53,\n\t\t\t123 } accept\n\t}\n\tset s { type ipv4_addr; }\n}\ntable inet t {\n\tchain a {\n\t\tdrop\n\t}\n}\n";
        let mut counts = BTreeMap::new();
        counts.insert(("t".to_string(), "a".to_string()), 3);
        let l = rule_lines(text, &counts);
        assert_eq!(l.get(&("t".into(), "a".into(), 0)), Some(&7));
        assert_eq!(l.get(&("t".into(), "a".into(), 1)), Some(&8));
        assert_eq!(l.get(&("t".into(), "a".into(), 2)), Some(&15));
    }

    #[test]
    fn a_count_that_differs_gives_no_lines() {
        let text = "table ip t {\n chain a {\n  accept\n }\n}\n";
        let mut counts = BTreeMap::new();
        counts.insert(("t".to_string(), "a".to_string()), 2);
        assert!(rule_lines(text, &counts).is_empty());
    }
}
