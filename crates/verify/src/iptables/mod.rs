//! iptables (`iptables-save`, `ip6tables-save`, `ipset save`, typed by `portolan-nft`) →
//! [`Program`], the same program the nftables reader builds, so one evaluator judges both.
//!
//! Tables become chains of family `ip` (IPv4) or `ip6` (IPv6) with the kernel's fixed
//! priorities (iptables(8) "TABLES"; the `NF_IP_PRI_*` values nft(8) also names: raw −300,
//! mangle −150, nat −100 before routing and on output and 100 after, filter 0, security 50);
//! a built-in chain is a base chain on its hook with its policy, a user chain is a chain
//! that `-j` returns from and `-g` does not. Rules are read as the kernel runs them: every
//! match of a rule must hold (a conjunction, so the order of matches does not change the
//! outcome), then the target applies.
//!
//! The supported subset ([`matches`], [`ipset`]): `-s`/`-d` (prefixes, contiguous masks),
//! `-i`/`-o` (a trailing `+` is a prefix wildcard; names the ruleset does not list may or
//! may not match it: "depends"), `-p`, each with `!`; `-m tcp`/`-m udp` ports, `-m multiport`,
//! `-m icmp`/`-m icmp6` types (without code), `-m conntrack --ctstate`, `-m state --state`,
//! `-m iprange`, `-m set --match-set` over `hash:ip`, `hash:net` (with `nomatch`:
//! the most specific prefix decides, ipset(8)), `hash:ip,port`, `hash:net,port`,
//! `hash:net,net`, `hash:ip,port,ip`, `hash:ip,port,net` and `bitmap:port`, `-m comment`.
//! Targets: `ACCEPT`, `DROP`, `REJECT`, `RETURN`, jumps and gotos; `SNAT`/`MASQUERADE` (the
//! packet goes on); targets that never decide a packet's fate (`LOG`, `NFLOG`, `MARK`,
//! `CONNMARK`, `TCPMSS`, …) make the rule a no-op for verdicts whatever it matches. A rule
//! with anything else (`-f`, `-m limit` before a verdict, `-m mac`, `DNAT`, a token the
//! reader did not place) gives "depends" to the packets it could match, naming its line.
//!
//! Sets whose members change at run time (a `timeout`, filled by `-j SET`, or named by the
//! caller as filled by dnsmasq `ipset=`) are dynamic axes of the packet space, as nftables
//! sets are ([`IPSET_TABLE`] stands for the table: ipsets belong to none).

use std::collections::{BTreeMap, BTreeSet};

use portolan_nft::iptables::{IpSet, Iptables, Rule as IptRule, Save, Target};

use crate::error::{Error, Result};
use crate::program::{Base, Chain, DynamicKey, Hook, Program, Rule, RuleRef, Stmt, Verdict};
use crate::space::{Interfaces, FIXED};

mod ipset;
mod matches;

/// The `table` of a dynamic axis on an ipset (ipsets are global to a namespace).
pub const IPSET_TABLE: &str = "ipset";

/// How the caller wants sets and interfaces read.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// ipsets filled at run time by someone else (dnsmasq `ipset=`), whatever their options.
    pub dynamic_sets: BTreeSet<String>,
    /// Interface names the queries will use (interned with the ruleset's).
    pub interfaces: Vec<String>,
}

struct Lowering<'a> {
    sets: BTreeMap<&'a str, &'a IpSet>,
    /// Sets whose members change at run time.
    dynamic_sets: BTreeSet<String>,
    chain_index: BTreeMap<(String, String, String), usize>,
    ifaces: Interfaces,
    dynamic: Vec<DynamicKey>,
}

/// The hook and priority of a built-in chain of `table`, and whether it is a nat chain.
fn builtin(table: &str, chain: &str) -> Option<(Hook, i64, &'static str)> {
    let hook = match chain {
        "PREROUTING" => Hook::Prerouting,
        "INPUT" => Hook::Input,
        "FORWARD" => Hook::Forward,
        "OUTPUT" => Hook::Output,
        "POSTROUTING" => Hook::Postrouting,
        _ => return None,
    };
    let (prio, kind) = match table {
        "raw" => (-300, "filter"),
        "mangle" => (-150, "filter"),
        "nat" => match hook {
            Hook::Prerouting | Hook::Output => (-100, "nat"),
            _ => (100, "nat"),
        },
        "filter" => (0, "filter"),
        "security" => (50, "filter"),
        _ => return None,
    };
    Some((hook, prio, kind))
}

/// Lowers an iptables firewall (both families and its ipsets).
pub fn lower(fw: &Iptables, opts: &Options) -> Result<Program> {
    let mut lw = Lowering {
        sets: fw.sets.iter().map(|s| (s.name.as_str(), s)).collect(),
        dynamic_sets: opts.dynamic_sets.clone(),
        chain_index: BTreeMap::new(),
        ifaces: Interfaces::new(),
        dynamic: Vec::new(),
    };
    for s in &fw.sets {
        if s.timeout().is_some() {
            lw.dynamic_sets.insert(s.name.clone());
        }
    }
    let fams = [("ip", &fw.v4), ("ip6", &fw.v6)];
    // Interface names first (the "other" value must not move while lowering), and the sets
    // the packet path writes to.
    for n in &opts.interfaces {
        lw.ifaces.intern(n);
    }
    for (_, save) in fams {
        for r in save.tables.iter().flat_map(|t| &t.rules) {
            matches::collect_ifaces(r, &mut lw.ifaces);
            if let Some(Target::Extension(e)) = &r.target {
                if e.name == "SET" {
                    for o in &e.options {
                        if let Some(name) = o.args.first() {
                            lw.dynamic_sets.insert(name.clone());
                        }
                    }
                }
            }
        }
    }
    let mut chains = Vec::new();
    for (fam, save) in fams {
        declare(&mut lw, &mut chains, fam, save)?;
    }
    for (fam, save) in fams {
        for t in &save.tables {
            for r in &t.rules {
                let key = (fam.to_string(), t.name.clone(), r.chain.clone());
                let ci = *lw.chain_index.get(&key).ok_or_else(|| {
                    Error::Ruleset(format!(
                        "line {}: -A {} in table {} of {}: the chain is not declared",
                        r.line,
                        r.chain,
                        t.name,
                        family_tool(fam)
                    ))
                })?;
                let rule = lw.rule(fam, &t.name, r);
                let c: &mut Chain = &mut chains[ci];
                c.rules.push(rule);
            }
        }
    }
    Ok(Program {
        chains,
        ifaces: lw.ifaces,
        dynamic: lw.dynamic,
        ignored: Vec::new(),
        bases: Vec::new(),
    }
    .prepared())
}

fn family_tool(fam: &str) -> &'static str {
    if fam == "ip" {
        "iptables-save"
    } else {
        "ip6tables-save"
    }
}

/// The chains of every table of one family, built-in ones as base chains.
fn declare(lw: &mut Lowering<'_>, chains: &mut Vec<Chain>, fam: &str, save: &Save) -> Result<()> {
    for t in &save.tables {
        if builtin(&t.name, "INPUT").is_none() && builtin(&t.name, "PREROUTING").is_none() {
            return Err(Error::Ruleset(format!(
                "{}: table *{} is not one of raw, mangle, nat, filter, security",
                family_tool(fam),
                t.name
            )));
        }
        for c in &t.chains {
            let base = match (builtin(&t.name, &c.name), &c.policy) {
                (Some((hook, prio, kind)), Some(p)) => Some(Base {
                    hook,
                    prio,
                    kind: kind.to_string(),
                    accept: match p.as_str() {
                        "ACCEPT" => true,
                        "DROP" => false,
                        other => {
                            return Err(Error::Ruleset(format!(
                                "{}: chain {} of *{}: policy {other} is neither ACCEPT nor DROP",
                                family_tool(fam),
                                c.name,
                                t.name
                            )))
                        }
                    },
                }),
                (Some(_), None) | (None, Some(_)) => {
                    return Err(Error::Ruleset(format!(
                        "{}: chain {} of *{}: {}",
                        family_tool(fam),
                        c.name,
                        t.name,
                        if c.policy.is_some() {
                            "a user chain with a policy"
                        } else {
                            "a built-in chain without a policy"
                        }
                    )))
                }
                (None, None) => None,
            };
            lw.chain_index
                .insert((fam.into(), t.name.clone(), c.name.clone()), chains.len());
            chains.push(Chain {
                family: fam.into(),
                table: t.name.clone(),
                name: c.name.clone(),
                rules: Vec::new(),
                base,
            });
        }
    }
    Ok(())
}

/// What a target does to the verdict.
enum Effect {
    Verdict(Verdict),
    /// Never decides a packet's fate: the rule is a no-op for verdicts.
    Nothing,
    Unknown(String),
}

impl Lowering<'_> {
    fn dynamic_axis(&mut self, fam: &str, set: &str, key: &str) -> usize {
        let d = DynamicKey {
            family: fam.into(),
            table: IPSET_TABLE.into(),
            set: set.into(),
            key: key.into(),
        };
        let i = match self.dynamic.iter().position(|x| *x == d) {
            Some(i) => i,
            None => {
                self.dynamic.push(d);
                self.dynamic.len() - 1
            }
        };
        FIXED + i
    }

    fn effect(&self, fam: &str, table: &str, r: &IptRule) -> Effect {
        let chain = |name: &str| {
            self.chain_index
                .get(&(fam.to_string(), table.to_string(), name.to_string()))
                .copied()
        };
        match &r.target {
            None => Effect::Nothing,
            Some(Target::Accept) => Effect::Verdict(Verdict::Accept),
            Some(Target::Drop) => Effect::Verdict(Verdict::Drop),
            Some(Target::Return) => Effect::Verdict(Verdict::Return),
            Some(Target::Jump(c)) => match chain(c) {
                Some(i) => Effect::Verdict(Verdict::Jump(i)),
                None => Effect::Unknown(format!("-j {c}: no such chain")),
            },
            Some(Target::Goto(c)) => match chain(c) {
                Some(i) => Effect::Verdict(Verdict::Goto(i)),
                None => Effect::Unknown(format!("-g {c}: no such chain")),
            },
            Some(Target::Extension(e)) => match e.name.as_str() {
                "REJECT" => Effect::Verdict(Verdict::Reject),
                // nat chains see a connection's first packet; these go on unchanged in
                // what the filter sees (the source is rewritten after it).
                "SNAT" | "MASQUERADE" if table == "nat" => Effect::Verdict(Verdict::Accept),
                "LOG" | "NFLOG" | "ULOG" | "MARK" | "CONNMARK" | "TCPMSS" | "CLASSIFY" | "DSCP"
                | "TOS" | "TTL" | "HL" | "CHECKSUM" | "AUDIT" | "TRACE" | "SET" | "CONNSECMARK"
                | "SECMARK" | "IDLETIMER" | "LED" => Effect::Nothing,
                other => {
                    Effect::Unknown(format!("target -j {other} is outside the supported subset"))
                }
            },
        }
    }

    fn rule(&mut self, fam: &str, table: &str, r: &IptRule) -> Rule {
        let at = RuleRef {
            family: fam.into(),
            table: table.into(),
            chain: r.chain.clone(),
            handle: None,
            line: Some(r.line),
            comment: r.comment().map(str::to_string),
            text: rule_text(&r.text),
        };
        if !r.unknown.is_empty() {
            return Rule {
                at,
                stmts: vec![Stmt::Unknown(format!(
                    "`{}` is outside the supported subset",
                    r.unknown.join(" ")
                ))],
            };
        }
        let last = match self.effect(fam, table, r) {
            Effect::Nothing => {
                return Rule {
                    at,
                    stmts: Vec::new(),
                }
            }
            Effect::Verdict(v) => Stmt::Verdict(v),
            Effect::Unknown(why) => Stmt::Unknown(why),
        };
        let mut stmts = self.matches(fam, r);
        // A conjunction: what cannot be decided comes after what can, so a packet another
        // match already excludes is not reported as depending on it.
        stmts.sort_by_key(|s| matches!(s, Stmt::Unknown(_)));
        stmts.push(last);
        Rule { at, stmts }
    }
}

/// A rule as a report shows it: the line without `-A CHAIN`.
fn rule_text(line: &str) -> String {
    let mut w = line.splitn(3, char::is_whitespace);
    match (w.next(), w.next(), w.next()) {
        (Some("-A" | "--append"), Some(_), Some(rest)) => rest.trim().to_string(),
        _ => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Outcome;
    use crate::program::Path;
    use crate::space::{Dim, Iv};
    use portolan_nft::iptables::parse_ipsets;

    /// The outcome of one forwarded UDP packet `src → dst`.
    fn udp(prog: &Program, v6: bool, src: &str, dst: &str) -> Outcome {
        let n = |s: &str| crate::lower::addr_num(&s.parse().expect("address"));
        let mut c = prog.all();
        c.set(Dim::Family, Iv::point(u128::from(v6)));
        c.set(Dim::Saddr, Iv::point(n(src)));
        c.set(Dim::Daddr, Iv::point(n(dst)));
        c.set(Dim::Proto, Iv::point(17));
        c.set(Dim::Sport, Iv::point(1000));
        c.set(Dim::Dport, Iv::point(53));
        let pieces = prog.evaluate(Path::Forward, &c);
        assert_eq!(pieces.len(), 1, "{pieces:?}");
        pieces[0].outcome.clone()
    }

    #[test]
    fn a_nomatch_member_inside_a_wider_one_is_outside_the_set() {
        // ipset(8): the most specific matching prefix decides; `ipset test` on the kernel
        // says 2001:db8:4:5::5 is in the set and 2001:db8:4::17 is not.
        let sets = parse_ipsets(
            "create a6 hash:net family inet6\nadd a6 2001:db8:4::/47\nadd a6 2001:db8:4::17 nomatch\n",
        )
        .expect("ipset text");
        let v6 = Save::parse(
            "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -p udp -m set --match-set a6 dst -j ACCEPT\nCOMMIT\n",
        )
        .expect("save text");
        let fw = Iptables {
            v4: Save::default(),
            v6,
            sets,
        };
        let prog = lower(&fw, &Options::default()).expect("lowers");
        assert_eq!(
            udp(&prog, true, "2001:db8:1::7", "2001:db8:4:5::5"),
            Outcome::Accept
        );
        assert_eq!(
            udp(&prog, true, "2001:db8:1::7", "2001:db8:4::17"),
            Outcome::Deny
        );
        assert_eq!(
            udp(&prog, true, "2001:db8:1::7", "2001:db8:6::1"),
            Outcome::Deny
        );
    }
}
