//! libnftables-json (`nft -j list ruleset`, libnftables-json(5)) → [`Program`].
//!
//! The supported subset: `match` on IPv4/IPv6 addresses, `meta l4proto`/`nfproto`/`protocol`,
//! `ip protocol`, `ip6 nexthdr`, TCP/UDP/SCTP/UDP-Lite/DCCP and `th` ports, ICMP/ICMPv6 type,
//! `ct state`, `iifname`/`oifname`/`iif`/`oif` (with `*` wildcards), with `==`, `!=`, `in`,
//! `<`, `<=`, `>`, `>=` against values, prefixes, ranges, anonymous and named (interval) sets
//! and concatenations of these; `vmap` (anonymous or named); the verdicts; `counter`, `log`,
//! `limit` and `quota` without a verdict after them, set updates from the packet path,
//! `meta mark set` and `comment` (no effect on the verdict); `snat`/`masquerade` (the packet
//! goes on). Anything else becomes [`Stmt::Unknown`], so the evaluator answers "depends"
//! for the packets that reach it and names the rule.
//!
//! Sets whose elements change at run time (`flags timeout` or `dynamic`, updated from the
//! packet path, or named by the caller as filled by a DNS server) become dynamic axes of the
//! packet space: their current elements are not trusted, membership is an unknown the
//! evaluator splits on.
//!
//! The module follows the document's shape: this file reads tables, chains and sets and
//! lays out the [`Program`]; [`stmt`] lowers a rule's statements (matches, verdict maps,
//! verdicts) and renders them in nft's words for reports; [`expr`] reads key expressions
//! and the values, prefixes, ranges and set elements they are compared with into regions
//! of the packet space.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};
use crate::program::{Base, Chain, DynamicKey, Hook, Program};
use crate::space::Interfaces;

mod expr;
mod stmt;

pub use expr::{addr_num, net_iv, proto_number};
pub use stmt::render_stmt;

/// How the caller wants sets read.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Sets (table, name) filled at run time by someone else (a DNS server), whatever their
    /// flags say.
    pub dynamic_sets: BTreeSet<(String, String)>,
    /// Interface names the queries will use (interned with the ruleset's).
    pub interfaces: Vec<String>,
    /// Source lines of rules, by (table, chain, index of the rule in its chain).
    pub lines: BTreeMap<(String, String, usize), usize>,
}

#[derive(Clone, Debug)]
struct SetDef {
    flags: Vec<String>,
    /// Elements (map: with their verdicts).
    elems: Vec<Value>,
    is_map: bool,
}

struct Lowering<'a> {
    opts: &'a Options,
    sets: BTreeMap<(String, String, String), SetDef>,
    chain_index: BTreeMap<(String, String, String), usize>,
    updated: BTreeSet<(String, String, String)>,
    ifaces: Interfaces,
    dynamic: Vec<DynamicKey>,
}

/// Reads a libnftables-json document (the whole `{"nftables": [...]}` object).
pub fn lower(doc: &Value, opts: &Options) -> Result<Program> {
    let items = doc
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Json("no top-level \"nftables\" array".into()))?;
    let mut chains: Vec<Chain> = Vec::new();
    let mut rules: Vec<&Value> = Vec::new();
    let mut lw = Lowering {
        opts,
        sets: BTreeMap::new(),
        chain_index: BTreeMap::new(),
        updated: BTreeSet::new(),
        ifaces: Interfaces::new(),
        dynamic: Vec::new(),
    };
    let mut ignored = Vec::new();
    for it in items {
        let Some((kind, body)) = it.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        let fam = str_of(body, "family");
        let table = str_of(body, "table");
        match kind.as_str() {
            "chain" => {
                let name = str_of(body, "name");
                if !matches!(fam.as_str(), "inet" | "ip" | "ip6") {
                    if body.get("hook").is_some() {
                        ignored.push(format!(
                            "{fam} table {table}: base chain {name} ({}) is not evaluated",
                            str_of(body, "hook")
                        ));
                    }
                    continue;
                }
                let base = match body.get("hook").and_then(Value::as_str) {
                    Some(h) => {
                        let hook = Hook::from_name(h).ok_or_else(|| {
                            Error::Ruleset(format!("chain {name}: unknown hook {h}"))
                        })?;
                        Some(Base {
                            hook,
                            prio: prio_of(body.get("prio")),
                            kind: str_of(body, "type"),
                            accept: body.get("policy").and_then(Value::as_str) != Some("drop"),
                        })
                    }
                    None => None,
                };
                lw.chain_index
                    .insert((fam.clone(), table.clone(), name.clone()), chains.len());
                chains.push(Chain {
                    family: fam,
                    table,
                    name,
                    rules: Vec::new(),
                    base,
                });
            }
            "set" | "map" => {
                let name = str_of(body, "name");
                let flags = body
                    .get("flags")
                    .map(|f| match f {
                        Value::Array(a) => a
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect(),
                        Value::String(s) => vec![s.clone()],
                        _ => Vec::new(),
                    })
                    .unwrap_or_default();
                let elems = body
                    .get("elem")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                lw.sets.insert(
                    (fam, table, name),
                    SetDef {
                        flags,
                        elems,
                        is_map: kind == "map",
                    },
                );
            }
            "rule" => rules.push(body),
            _ => {}
        }
    }
    // Interface names first (the "other" value must not move while lowering), and the sets
    // the packet path writes to.
    for n in &opts.interfaces {
        lw.ifaces.intern(n);
    }
    for r in &rules {
        collect_ifaces(r, &mut lw.ifaces);
        collect_updates(r, &mut lw.updated);
    }
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for r in rules {
        let fam = str_of(r, "family");
        let table = str_of(r, "table");
        let chain = str_of(r, "chain");
        let Some(&ci) = lw
            .chain_index
            .get(&(fam.clone(), table.clone(), chain.clone()))
        else {
            continue; // a rule of a table family we do not evaluate
        };
        let idx = counts.entry(ci).or_insert(0);
        let line = opts
            .lines
            .get(&(table.clone(), chain.clone(), *idx))
            .copied();
        *idx += 1;
        let rule = lw.rule(r, &fam, &table, &chain, line);
        chains[ci].rules.push(rule);
    }
    Ok(Program {
        chains,
        ifaces: lw.ifaces,
        dynamic: lw.dynamic,
        ignored,
        bases: Vec::new(),
    }
    .prepared())
}

fn str_of(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

/// A chain priority: a number, or a standard name (nft(8) "Standard priority names").
fn prio_of(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => match s.as_str() {
            "raw" => -300,
            "mangle" => -150,
            "dstnat" => -100,
            "filter" => 0,
            "security" => 50,
            "srcnat" => 100,
            _ => 0,
        },
        _ => 0,
    }
}

fn collect_ifaces(v: &Value, into: &mut Interfaces) {
    match v {
        Value::Object(o) => {
            if let Some(m) = o.get("match") {
                if let Some(key) = m
                    .get("left")
                    .and_then(|l| l.get("meta"))
                    .and_then(|m| m.get("key"))
                    .and_then(Value::as_str)
                {
                    if matches!(key, "iifname" | "oifname" | "iif" | "oif") {
                        strings(m.get("right").unwrap_or(&Value::Null), into);
                    }
                }
            }
            for x in o.values() {
                collect_ifaces(x, into);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_ifaces(x, into)),
        _ => {}
    }
}

fn strings(v: &Value, into: &mut Interfaces) {
    match v {
        Value::String(s) if !s.starts_with('@') && !s.contains('*') => {
            into.intern(s);
        }
        Value::Object(o) => o.values().for_each(|x| strings(x, into)),
        Value::Array(a) => a.iter().for_each(|x| strings(x, into)),
        _ => {}
    }
}

fn collect_updates(r: &Value, into: &mut BTreeSet<(String, String, String)>) {
    let fam = str_of(r, "family");
    let table = str_of(r, "table");
    for s in r
        .get("expr")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for k in ["set", "map"] {
            if let Some(name) = s
                .get(k)
                .and_then(|b| b.get("set").or_else(|| b.get("map")))
                .and_then(Value::as_str)
            {
                into.insert((
                    fam.clone(),
                    table.clone(),
                    name.trim_start_matches('@').into(),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Outcome;
    use crate::program::Path;
    use crate::space::{CtState, Dim, Iv};

    /// A forward chain (policy accept) with one rule: `ct state OP RIGHT drop`, as nft 1.0.6
    /// lists it in JSON; the outcome of an established packet.
    fn established_through(op: &str, right: serde_json::Value) -> Outcome {
        let doc = serde_json::json!({"nftables": [
            {"table": {"family": "ip", "name": "t"}},
            {"chain": {"family": "ip", "table": "t", "name": "f", "type": "filter",
                       "hook": "forward", "prio": 0, "policy": "accept"}},
            {"rule": {"family": "ip", "table": "t", "chain": "f", "handle": 2, "expr": [
                {"match": {"op": op, "left": {"ct": {"key": "state"}}, "right": right}},
                {"drop": null}]}}
        ]});
        let prog = lower(&doc, &Options::default()).expect("lowers");
        let mut c = prog.all();
        c.set(Dim::Family, Iv::point(0));
        c.set(Dim::Ct, Iv::point(CtState::Established.value()));
        let p = prog.evaluate(Path::Forward, &c);
        assert_eq!(p.len(), 1, "{p:?}");
        p[0].outcome.clone()
    }

    #[test]
    fn ct_state_flags_joined_compare_as_one_value() {
        // `ct state != established,related drop` is `cmp neq reg 1 0x00000006` (nft 1.0.6,
        // --debug=netlink): a packet's state is one flag, never 0x6, so it is dropped.
        let joined = serde_json::json!({"|": ["established", "related"]});
        assert_eq!(established_through("!=", joined.clone()), Outcome::Deny);
        assert_eq!(established_through("==", joined), Outcome::Accept);
        // `ct state established,related drop` (op `in`) tests each flag.
        let list = serde_json::json!(["established", "related"]);
        assert_eq!(established_through("in", list), Outcome::Deny);
        assert_eq!(
            established_through("!=", serde_json::json!("established")),
            Outcome::Accept
        );
    }
}
