//! The ruleset as the evaluator runs it: chains of rules whose statements are already
//! lowered to unions of [`Cube`]s over the packet space ([`crate::space`]), verdicts resolved
//! to chain indices, and every rule keeping where it came from (table, chain, handle,
//! comment, source line) so each verdict names the rule that decided it.

use std::fmt;

use serde::Serialize;

use crate::space::{Class, Cube, Dim, Interfaces, Iv, Region};

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
}

impl Program {
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
