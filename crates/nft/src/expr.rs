//! Statements and expressions of libnftables-json, the parts of a rule
//! (man 5 libnftables-json, sections STATEMENTS and EXPRESSIONS;
//! <https://manpages.debian.org/bookworm/libnftables1/libnftables-json.5.en.html>).
//!
//! Each JSON object names its kind by its one key (`{"match": {...}}`, `{"payload": {...}}`).
//! What this model does not know — an expression or statement it has no variant for, or a
//! known one whose fields have a shape it does not expect — still parses, as
//! [`Expr::Unknown`] or [`Statement::Unknown`] holding the JSON value unchanged, so a reader
//! can say "unsupported here" and name the rule instead of failing on the whole ruleset.
//! Statement and expression objects deny fields they do not know for the same reason: a
//! field a newer nft adds may change what the object means, so such an object is unknown
//! rather than read wrongly.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A JSON `null` (the value of `{"accept": null}`, `{"masquerade": null}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Null;

/// `T` or `[T, ...]`, as the schema allows in several places (`SET_ELEMENTS`, `FLAGS`).
pub(crate) mod one_or_many {
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr<T> {
        Many(Vec<T>),
        One(T),
    }

    pub fn deserialize<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Ok(match Repr::deserialize(d)? {
            Repr::Many(v) => v,
            Repr::One(x) => vec![x],
        })
    }

    pub fn serialize<S: Serializer, T: Serialize>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }
}

/// A verdict, as a statement (`VERDICT`) or inside a verdict map (`EXPRESSIONS / VERDICT`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "VerdictRepr", into = "VerdictRepr")]
pub enum Verdict {
    Accept,
    Drop,
    Continue,
    Return,
    /// Jump to the chain, coming back after it.
    Jump(String),
    /// Go to the chain, not coming back.
    Goto(String),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum VerdictRepr {
    Accept(Null),
    Drop(Null),
    Continue(Null),
    Return(Null),
    Jump(Target),
    Goto(Target),
}

#[derive(Serialize, Deserialize)]
struct Target {
    target: String,
}

impl From<VerdictRepr> for Verdict {
    fn from(r: VerdictRepr) -> Self {
        match r {
            VerdictRepr::Accept(_) => Verdict::Accept,
            VerdictRepr::Drop(_) => Verdict::Drop,
            VerdictRepr::Continue(_) => Verdict::Continue,
            VerdictRepr::Return(_) => Verdict::Return,
            VerdictRepr::Jump(t) => Verdict::Jump(t.target),
            VerdictRepr::Goto(t) => Verdict::Goto(t.target),
        }
    }
}

impl From<Verdict> for VerdictRepr {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Accept => VerdictRepr::Accept(Null),
            Verdict::Drop => VerdictRepr::Drop(Null),
            Verdict::Continue => VerdictRepr::Continue(Null),
            Verdict::Return => VerdictRepr::Return(Null),
            Verdict::Jump(target) => VerdictRepr::Jump(Target { target }),
            Verdict::Goto(target) => VerdictRepr::Goto(Target { target }),
        }
    }
}

impl std::fmt::Display for Verdict {
    /// As `nft list` writes it: `accept`, `jump k_a_out`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Accept => f.write_str("accept"),
            Verdict::Drop => f.write_str("drop"),
            Verdict::Continue => f.write_str("continue"),
            Verdict::Return => f.write_str("return"),
            Verdict::Jump(c) => write!(f, "jump {c}"),
            Verdict::Goto(c) => write!(f, "goto {c}"),
        }
    }
}

/// One statement of a rule (`STATEMENTS`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Statement {
    /// `left op right`; the rule goes on only if it holds.
    Match(Match),
    /// Counts packets and bytes; no verdict.
    Counter(Counter),
    /// Changes packet data or meta data (`ct mark set 1`).
    Mangle(Mangle),
    /// Matches while under the rate (or over it, with `inv`); no verdict.
    Limit(Limit),
    /// Logs the packet; no verdict.
    Log(Log),
    /// Rejects with an error reply (ends the packet like `drop`). `None` for the default.
    Reject(Option<Reject>),
    /// Looks up `key` in a verdict map (named `@m` or an anonymous `{"set": [[k, v], ...]}`)
    /// and applies the verdict found; no match goes on with the next rule.
    Vmap(Vmap),
    /// Adds or updates an element of a named set from the packet (`add @s { ip saddr }`).
    Set(SetStatement),
    Snat(Option<Nat>),
    Dnat(Option<Nat>),
    Masquerade(Option<Nat>),
    Redirect(Option<Nat>),
    /// `accept`, `drop`, `continue`, `return`, `jump`, `goto`.
    #[serde(untagged)]
    Verdict(Verdict),
    /// A statement this model does not know (`quota`, `queue`, `meter`, `xt`, …), as printed.
    #[serde(untagged)]
    Unknown(Value),
}

/// Comparison operators of [`Match`] (`OPERATORS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">=")]
    Ge,
    /// A lookup: the bits on the right are set on the left (`ct state established,related`
    /// prints as `in` with a list on the right).
    #[serde(rename = "in")]
    In,
    #[serde(rename = "&")]
    And,
    #[serde(rename = "|")]
    Or,
    #[serde(rename = "^")]
    Xor,
    #[serde(rename = "<<")]
    Lshift,
    #[serde(rename = ">>")]
    Rshift,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    pub op: Op,
    pub left: Expr,
    pub right: Expr,
}

/// An anonymous counter with its values, or a reference to a named counter object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Counter {
    Named(String),
    Anonymous {
        #[serde(default)]
        packets: u64,
        #[serde(default)]
        bytes: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mangle {
    pub key: Expr,
    pub value: Expr,
}

/// A rate limit in the rule, or a reference to a named limit object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Limit {
    Named(String),
    Anonymous(RateLimit),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub rate: u64,
    /// `packets` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_unit: Option<String>,
    /// `second`, `minute`, `hour`, `day`, `week`.
    pub per: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst_unit: Option<String>,
    /// Matches when over the rate.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inv: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snaplen: Option<u32>,
    #[serde(
        default,
        rename = "queue-threshold",
        skip_serializing_if = "Option::is_none"
    )]
    pub queue_threshold: Option<u32>,
    /// `emerg` … `debug`, `audit`; `warn` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    #[serde(default, with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reject {
    /// `tcp reset`, `icmpx`, `icmp`, `icmpv6`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The ICMP code (`admin-prohibited`, `port-unreachable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<Expr>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vmap {
    pub key: Expr,
    pub data: Expr,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetStatement {
    /// `add` or `update`.
    pub op: String,
    pub elem: Expr,
    /// `@name`.
    pub set: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nat {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<Expr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<Expr>,
    #[serde(default, with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

/// An expression (`EXPRESSIONS`): an immediate, a list, or a one-key object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Expr {
    /// A string immediate: a value (`"10.0.0.1"`, `"lan0"`, `"tcp"`, `"established"`), a
    /// reference to a named set (`"@name"`, see [`Expr::set_ref`]) or the wildcard `"*"`.
    String(String),
    Number(serde_json::Number),
    Bool(bool),
    /// A plain array: several values (`ct state` with `in`), or a map element's
    /// `[key, value]` pair.
    List(Vec<Expr>),
    Object(Box<Named>),
}

/// The one-key object forms of [`Expr`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Named {
    /// `a . b . c`.
    Concat(Vec<Expr>),
    /// An anonymous set (`{ 22, 8000-8080 }`); for a map, each element a `[key, value]` list.
    #[serde(with = "one_or_many")]
    Set(Vec<Expr>),
    /// `key map { … }`: a value looked up from an anonymous or named map.
    Map(MapExpr),
    /// `addr/len`.
    Prefix(Prefix),
    /// `low-high`.
    Range(Box<[Expr; 2]>),
    Payload(Payload),
    Exthdr(HeaderField),
    #[serde(rename = "tcp option")]
    TcpOption(HeaderField),
    #[serde(rename = "sctp chunk")]
    SctpChunk(HeaderField),
    Meta(Meta),
    Rt(Rt),
    Ct(Ct),
    Fib(Fib),
    #[serde(rename = "&")]
    And(Box<[Expr; 2]>),
    #[serde(rename = "|")]
    Or(Box<[Expr; 2]>),
    #[serde(rename = "^")]
    Xor(Box<[Expr; 2]>),
    #[serde(rename = "<<")]
    Lshift(Box<[Expr; 2]>),
    #[serde(rename = ">>")]
    Rshift(Box<[Expr; 2]>),
    /// A set element with its own timeout, expiry or comment.
    Elem(Elem),
    /// A verdict, as a verdict map's value.
    #[serde(untagged)]
    Verdict(Verdict),
    /// An expression this model does not know (`numgen`, `jhash`, `socket`, `osf`, …).
    #[serde(untagged)]
    Unknown(Value),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapExpr {
    pub key: Expr,
    pub data: Expr,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prefix {
    pub addr: Expr,
    pub len: u32,
}

/// A packet header field: by name (`ip saddr`, `tcp dport`, `th dport`) or raw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Payload {
    Field {
        /// `ip`, `ip6`, `tcp`, `udp`, `th`, `icmp`, `icmpv6`, `ether`, …
        protocol: String,
        field: String,
    },
    Raw {
        /// `ll`, `nh`, `th`.
        base: String,
        offset: u32,
        len: u32,
    },
}

/// An IPv6 extension header, TCP option or SCTP chunk field; without `field`, an existence
/// check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderField {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub key: MetaKey,
}

/// `META_KEY`: the ones a firewall reader decides on, and any other by name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetaKey {
    Iif,
    Iifname,
    Oif,
    Oifname,
    L4proto,
    Nfproto,
    Protocol,
    Mark,
    Pkttype,
    Length,
    #[serde(untagged)]
    Other(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rt {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ct {
    pub key: CtKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// `original` or `reply`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
}

/// Conntrack keys a firewall reader decides on, and any other by name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CtKey {
    State,
    Status,
    Direction,
    Mark,
    Saddr,
    Daddr,
    Protocol,
    #[serde(rename = "proto-src")]
    ProtoSrc,
    #[serde(rename = "proto-dst")]
    ProtoDst,
    #[serde(untagged)]
    Other(String),
}

/// A routing lookup (`fib saddr . iif oif`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fib {
    pub result: FibResult,
    #[serde(default, with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<FibFlag>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FibResult {
    Oif,
    Oifname,
    Type,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FibFlag {
    Saddr,
    Daddr,
    Mark,
    Iif,
    Oif,
}

/// A set element with properties (`ELEM`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Elem {
    pub val: Expr,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Seconds left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl Expr {
    /// The named set this expression refers to (`"@name"` → `name`).
    pub fn set_ref(&self) -> Option<&str> {
        match self {
            Expr::String(s) => s.strip_prefix('@'),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Expr::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Expr::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    /// The one-key object form, if this is one.
    pub fn named(&self) -> Option<&Named> {
        match self {
            Expr::Object(n) => Some(n),
            _ => None,
        }
    }

    /// Whether this model does not know the expression or a part of it (a reader cannot
    /// decide on it).
    pub fn is_unknown(&self) -> bool {
        match self {
            Expr::String(_) | Expr::Number(_) | Expr::Bool(_) => false,
            Expr::List(v) => v.iter().any(Expr::is_unknown),
            Expr::Object(n) => match n.as_ref() {
                Named::Unknown(_) => true,
                Named::Concat(v) | Named::Set(v) => v.iter().any(Expr::is_unknown),
                Named::Map(m) => m.key.is_unknown() || m.data.is_unknown(),
                Named::Prefix(p) => p.addr.is_unknown(),
                Named::Range(r)
                | Named::And(r)
                | Named::Or(r)
                | Named::Xor(r)
                | Named::Lshift(r)
                | Named::Rshift(r) => r.iter().any(Expr::is_unknown),
                Named::Elem(e) => e.val.is_unknown(),
                Named::Payload(_)
                | Named::Exthdr(_)
                | Named::TcpOption(_)
                | Named::SctpChunk(_)
                | Named::Meta(_)
                | Named::Rt(_)
                | Named::Ct(_)
                | Named::Fib(_)
                | Named::Verdict(_) => false,
            },
        }
    }
}

impl std::fmt::Display for Expr {
    /// Close to how `nft list` writes a value: `10.0.0.0/24`, `1000-2000`, `a . b`,
    /// `{ 22, 80 }`, `jump c`; what has no short form is written as its JSON.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let join = |f: &mut std::fmt::Formatter<'_>, v: &[Expr], sep: &str| {
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                write!(f, "{x}")?;
            }
            Ok(())
        };
        match self {
            Expr::String(s) => f.write_str(s),
            Expr::Number(n) => write!(f, "{n}"),
            Expr::Bool(b) => write!(f, "{b}"),
            Expr::List(v) => join(f, v, ", "),
            Expr::Object(n) => match n.as_ref() {
                Named::Concat(v) => join(f, v, " . "),
                Named::Set(v) => {
                    f.write_str("{ ")?;
                    for (i, x) in v.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        match x {
                            Expr::List(pair) if pair.len() == 2 => {
                                write!(f, "{} : {}", pair[0], pair[1])?
                            }
                            _ => write!(f, "{x}")?,
                        }
                    }
                    f.write_str(" }")
                }
                Named::Prefix(p) => write!(f, "{}/{}", p.addr, p.len),
                Named::Range(r) => write!(f, "{}-{}", r[0], r[1]),
                Named::Verdict(v) => write!(f, "{v}"),
                Named::Elem(e) => write!(f, "{}", e.val),
                other => {
                    let json = serde_json::to_string(other).unwrap_or_default();
                    f.write_str(&json)
                }
            },
        }
    }
}

impl Statement {
    /// The verdict this statement ends the rule with, if it is a plain verdict.
    pub fn verdict(&self) -> Option<&Verdict> {
        match self {
            Statement::Verdict(v) => Some(v),
            _ => None,
        }
    }

    /// Whether this model does not know the statement or an expression in it.
    pub fn is_unknown(&self) -> bool {
        match self {
            Statement::Unknown(_) => true,
            Statement::Match(m) => m.left.is_unknown() || m.right.is_unknown(),
            Statement::Mangle(m) => m.key.is_unknown() || m.value.is_unknown(),
            Statement::Vmap(v) => v.key.is_unknown() || v.data.is_unknown(),
            Statement::Set(s) => s.elem.is_unknown(),
            Statement::Reject(r) => r
                .as_ref()
                .and_then(|r| r.expr.as_ref())
                .is_some_and(Expr::is_unknown),
            Statement::Counter(_)
            | Statement::Limit(_)
            | Statement::Log(_)
            | Statement::Snat(_)
            | Statement::Dnat(_)
            | Statement::Masquerade(_)
            | Statement::Redirect(_)
            | Statement::Verdict(_) => false,
        }
    }
}
