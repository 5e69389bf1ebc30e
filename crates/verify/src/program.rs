//! The ruleset as the evaluator runs it: chains of rules whose statements are already
//! lowered to unions of [`Cube`]s over the packet space ([`crate::space`]), verdicts resolved
//! to chain indices, and every rule keeping where it came from (table, chain, handle,
//! comment, source line) so each verdict names the rule that decided it.

use std::fmt;

use serde::Serialize;

use crate::space::{Class, Cube, Dim, Hull, Interfaces, Iv, Region, FIXED};

/// Where a rule is, for reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    pub family: String,
    pub table: String,
    pub chain: String,
    /// The kernel's handle (`nft -a`); `None` for a base chain's policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<u64>,
    /// The line of the `.nft` file the rule was read from, when the ruleset came from a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The rule in nft's words (or `policy drop`).
    pub text: String,
}

impl RuleRef {
    /// `line 111 k_lrr-ipsec_out: tcp dport 22 accept` (the handle when there is no line).
    pub fn short(&self) -> String {
        match (self.line, self.handle) {
            (Some(l), _) => format!("line {l} {}: {}", self.chain, self.text),
            (None, Some(h)) => format!("{} handle {h}: {}", self.chain, self.text),
            (None, None) => format!("{}: {}", self.chain, self.text),
        }
    }
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = self.line {
            write!(f, "line {l}: ")?;
        }
        write!(f, "{} {} {}", self.family, self.table, self.chain)?;
        if let Some(h) = self.handle {
            write!(f, " handle {h}")?;
        }
        write!(f, ": {}", self.text)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    /// `reject`: denied, with an answer.
    Reject,
    Jump(usize),
    Goto(usize),
    Return,
    Continue,
}

/// A test on the packet: `deps` (what the expression implies, such as the protocol of
/// `tcp dport`) and `region` (the values it compares). Not negated: matched = deps ∧ region;
/// negated (`!=`): matched = deps ∧ ¬region. Packets in `unknown` (inside deps) cannot be
/// decided statically.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Test {
    pub deps: Cube,
    pub region: Region,
    pub negate: bool,
    pub unknown: Vec<Cube>,
}

#[derive(Clone, Debug)]
pub enum Stmt {
    Test(Test),
    /// A verdict map: the first arm whose region holds the key decides; no arm: the rule does
    /// not match.
    Vmap {
        deps: Cube,
        /// Each cube tagged with its index in `verdicts`.
        region: Region,
        verdicts: Vec<Verdict>,
    },
    Verdict(Verdict),
    /// Outside the supported subset: every packet reaching it gets "depends", naming it.
    Unknown(String),
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub at: RuleRef,
    pub stmts: Vec<Stmt>,
}

#[derive(Clone, Debug)]
pub struct Chain {
    pub family: String,
    pub table: String,
    pub name: String,
    pub rules: Vec<Rule>,
    pub base: Option<Base>,
}

/// Netfilter hooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

impl Hook {
    pub fn from_name(s: &str) -> Option<Hook> {
        Some(match s {
            "prerouting" => Hook::Prerouting,
            "input" => Hook::Input,
            "forward" => Hook::Forward,
            "output" => Hook::Output,
            "postrouting" => Hook::Postrouting,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Hook::Prerouting => "prerouting",
            Hook::Input => "input",
            Hook::Forward => "forward",
            Hook::Output => "output",
            Hook::Postrouting => "postrouting",
        }
    }
}

/// Which hooks a packet crosses, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Path {
    /// Routed through the firewall: prerouting, forward, postrouting.
    Forward,
    /// To the firewall itself: prerouting, input.
    Input,
    /// From the firewall: output, postrouting.
    Output,
}

impl Path {
    pub fn hooks(self) -> &'static [Hook] {
        match self {
            Path::Forward => &[Hook::Prerouting, Hook::Forward, Hook::Postrouting],
            Path::Input => &[Hook::Prerouting, Hook::Input],
            Path::Output => &[Hook::Output, Hook::Postrouting],
        }
    }
}

#[derive(Clone, Debug)]
pub struct Base {
    pub hook: Hook,
    pub prio: i64,
    /// `filter`, `nat` or `route`.
    pub kind: String,
    /// The policy: true = accept.
    pub accept: bool,
}

/// One dynamic-set axis: a lookup of `key` in a set whose elements change at run time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DynamicKey {
    pub family: String,
    pub table: String,
    pub set: String,
    /// The looked-up expression in nft's words (`ip daddr`).
    pub key: String,
}

impl fmt::Display for DynamicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in @{}", self.key, self.set)
    }
}

/// A lowered ruleset.
#[derive(Clone, Debug, Default)]
pub struct Program {
    pub chains: Vec<Chain>,
    pub ifaces: Interfaces,
    pub dynamic: Vec<DynamicKey>,
    /// Parts of the ruleset the evaluator does not follow on any path it walks (netdev,
    /// bridge and arp tables), said once.
    pub ignored: Vec<String>,
    /// [`Program::base_chains`] of each (hook, IPv4), set by [`Program::prepared`] (the
    /// evaluator asks for them per class; listing them anew scans every chain).
    pub bases: Vec<((Hook, bool), Vec<usize>)>,
}

impl Program {
    /// The program made ready for the evaluator; the lowerings call it last, and a program
    /// changed afterwards must be prepared again. Two things, neither changing a verdict:
    ///
    /// - In each run of consecutive tests of a rule (matches only read the packet, so their
    ///   order is free), the tests on run-time sets go last. A rule `ip daddr @s tcp dport
    ///   443 accept` then cuts a class on the port first and on the set only inside port
    ///   443; cut on the set first, every part outside the set goes on with all ports, and
    ///   rules on twenty sets multiply a class into 2^20 boxes (the MUD files of issue 12).
    /// - Every sorted verdict map gets a [`crate::space::Skip`] tree of the hulls of what its
    ///   elements' verdicts can act on (for a jump, the hull of the rules of the chain), so
    ///   a class skips the elements whose chains cannot match it without visiting them.
    pub fn prepared(mut self) -> Program {
        self.bases.clear();
        let mut bases = Vec::new();
        for hook in [
            Hook::Prerouting,
            Hook::Input,
            Hook::Forward,
            Hook::Output,
            Hook::Postrouting,
        ] {
            for v4 in [true, false] {
                bases.push(((hook, v4), self.base_chains(hook, v4)));
            }
        }
        self.bases = bases;
        for c in &mut self.chains {
            for r in &mut c.rules {
                order_tests(&mut r.stmts);
            }
        }
        let axes = FIXED + self.dynamic.len();
        let hulls: Vec<Hull> = self
            .chains
            .iter()
            .map(|c| {
                c.rules
                    .iter()
                    .fold(Hull::Empty, |h, r| h.join(&rule_hull(&r.stmts, axes)))
            })
            .collect();
        for c in &mut self.chains {
            for r in &mut c.rules {
                for st in &mut r.stmts {
                    let Stmt::Vmap {
                        region, verdicts, ..
                    } = st
                    else {
                        continue;
                    };
                    let Some(sorted) = region.sorted() else {
                        continue;
                    };
                    let leaves: Vec<Hull> = sorted
                        .map(|(_, arm)| match verdicts.get(arm) {
                            Some(Verdict::Jump(ci)) => {
                                hulls.get(*ci).cloned().unwrap_or(Hull::Full)
                            }
                            Some(Verdict::Continue) => Hull::Empty,
                            _ => Hull::Full,
                        })
                        .collect();
                    region.set_skip(leaves);
                }
            }
        }
        self
    }

    /// Every packet of `path`'s hooks: interfaces over the interned names, dynamic axes
    /// unknown.
    pub fn all(&self) -> Class {
        let mut c = Class::all(self.dynamic.len());
        c.set(Dim::Iif, self.ifaces.full());
        c.set(Dim::Oif, self.ifaces.full());
        c
    }

    /// The dynamic axis of a lookup of `key` in set `set` of table `table`, if the ruleset
    /// has one.
    pub fn dynamic_axis(&self, table: &str, set: &str, key: &str) -> Option<usize> {
        self.dynamic
            .iter()
            .position(|d| d.table == table && d.set == set && d.key == key)
            .map(|i| crate::space::FIXED + i)
    }

    /// The interval of one interface name on the interface axes.
    pub fn iface(&self, name: &str) -> Iv {
        match self.ifaces.lookup(name) {
            Some(v) => Iv::point(v),
            None => Iv::point(self.ifaces.other()),
        }
    }

    /// The base chains a packet of `family` (0 = IPv4) meets at `hook`, by priority.
    pub fn base_chains(&self, hook: Hook, ipv4: bool) -> Vec<usize> {
        if let Some((_, v)) = self.bases.iter().find(|(k, _)| *k == (hook, ipv4)) {
            return v.clone();
        }
        let mut v: Vec<(i64, usize)> = self
            .chains
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.base.as_ref().is_some_and(|b| b.hook == hook)
                    && match c.family.as_str() {
                        "inet" => true,
                        "ip" => ipv4,
                        "ip6" => !ipv4,
                        _ => false,
                    }
            })
            .map(|(i, c)| (c.base.as_ref().map_or(0, |b| b.prio), i))
            .collect();
        v.sort();
        v.into_iter().map(|(_, i)| i).collect()
    }
}

/// Whether a test reads a run-time set's axis.
fn on_dynamic(t: &Test) -> bool {
    let dynamic = |c: &Cube| c.parts.iter().any(|(a, _)| *a >= FIXED);
    dynamic(&t.deps) || t.region.cubes().any(dynamic) || t.unknown.iter().any(dynamic)
}

/// Moves the tests on run-time sets after the others, within each run of consecutive
/// tests (a stable sort: the rest keep their order).
fn order_tests(stmts: &mut [Stmt]) {
    let mut i = 0;
    while i < stmts.len() {
        let start = i;
        while i < stmts.len() && matches!(stmts[i], Stmt::Test(_)) {
            i += 1;
        }
        if i - start > 1 {
            stmts[start..i].sort_by_key(|s| matches!(s, Stmt::Test(t) if on_dynamic(t)));
        }
        i = i.max(start + 1);
    }
}

/// A box holding every packet a rule can act on (match, then verdict or jump): its leading
/// tests narrow it; a verdict map to the keys it holds; anything else leaves it as it is.
/// A packet outside goes on to the next rule unchanged.
fn rule_hull(stmts: &[Stmt], axes: usize) -> Hull {
    let mut h = Hull::Full;
    for s in stmts {
        match s {
            Stmt::Test(t) => {
                // Matched, and undecided, packets are all inside `deps`.
                h = h.and_cube(&t.deps, axes);
                if !t.negate && t.unknown.is_empty() {
                    h = h.meet(&Hull::of_cubes(t.region.cubes(), axes));
                }
            }
            Stmt::Vmap { deps, region, .. } => {
                return h
                    .and_cube(deps, axes)
                    .meet(&Hull::of_cubes(region.cubes(), axes));
            }
            Stmt::Verdict(_) | Stmt::Unknown(_) => return h,
        }
    }
    h
}
