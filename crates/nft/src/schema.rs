//! The ruleset objects of libnftables-json — what `nft -j list ruleset` prints: tables,
//! chains, rules, sets and maps (man 5 libnftables-json, GLOBAL STRUCTURE and RULESET
//! ELEMENTS; <https://manpages.debian.org/bookworm/libnftables1/libnftables-json.5.en.html>).
//!
//! Field names follow the schema (`prio`, `elem`, `gc-interval`). Objects this model does not
//! know (flowtables, named counters, quotas, ct helpers …) parse as [`Object::Unknown`].
//! Unknown fields of known objects are ignored, as a newer `nft` may add some.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::expr::{one_or_many, Expr, Named, Statement};

/// `{"nftables": [OBJECT, ...]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Nftables {
    pub nftables: Vec<Object>,
}

/// One element of the top-level array.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Object {
    Metainfo(Metainfo),
    Table(Table),
    Chain(Chain),
    Rule(Rule),
    Set(Set),
    /// A map: a [`Set`] with [`Set::map`].
    Map(Set),
    Element(Element),
    #[serde(untagged)]
    Unknown(Value),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metainfo {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub release_name: String,
    #[serde(default)]
    pub json_schema_version: u32,
}

/// Address family of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ip,
    Ip6,
    Inet,
    Arp,
    Bridge,
    Netdev,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Inet => "inet",
            Family::Arp => "arp",
            Family::Bridge => "bridge",
            Family::Netdev => "netdev",
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub family: Family,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<u64>,
}

/// A chain; a base chain has `type`, `hook`, `prio` and `policy`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chain {
    pub family: Family,
    pub table: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<u64>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<ChainType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<Hook>,
    /// The priority as a number (`filter` is 0, `srcnat` 100, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prio: Option<i32>,
    /// The device of a `netdev` chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
}

impl Chain {
    /// Whether the kernel calls this chain from a hook (otherwise only jumps reach it).
    pub fn is_base(&self) -> bool {
        self.hook.is_some()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainType {
    Filter,
    Nat,
    Route,
    #[serde(untagged)]
    Other(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
    Ingress,
    Egress,
    #[serde(untagged)]
    Other(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    Accept,
    Drop,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub family: Family,
    pub table: String,
    pub chain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default)]
    pub expr: Vec<Statement>,
}

impl Rule {
    /// Where the rule is, for a person: `inet portolan forward handle 12`.
    pub fn location(&self) -> String {
        let mut s = format!("{} {} {}", self.family, self.table, self.chain);
        if let Some(h) = self.handle {
            s.push_str(&format!(" handle {h}"));
        }
        s
    }

    /// The statements this model does not know, by position, for "unsupported here".
    pub fn unknown_statements(&self) -> impl Iterator<Item = (usize, &Statement)> {
        self.expr.iter().enumerate().filter(|(_, s)| s.is_unknown())
    }
}

/// A named set or map (`SET / MAP`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Set {
    pub family: Family,
    pub table: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<u64>,
    /// The key type; several for a concatenation (`ipv4_addr . inet_service`).
    #[serde(rename = "type")]
    pub key: DataType,
    /// The value type of a map (`verdict`, `ipv4_addr`); `None` for a set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map: Option<DataType>,
    /// `performance` or `memory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<SetFlag>,
    /// The elements: a value, a prefix, a range, a concatenation, an [`crate::expr::Elem`]
    /// with a timeout; for a map each is a `[key, value]` list.
    #[serde(default, with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub elem: Vec<Expr>,
    /// Default element timeout, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    #[serde(
        default,
        rename = "gc-interval",
        skip_serializing_if = "Option::is_none"
    )]
    pub gc_interval: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A set's key or a map's value type: one name or the parts of a concatenation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataType(pub Vec<String>);

impl DataType {
    pub fn parts(&self) -> &[String] {
        &self.0
    }
}

impl std::fmt::Display for DataType {
    /// As `nft list` writes it: `ipv4_addr . inet_service`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(" . "))
    }
}

impl Serialize for DataType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => one.serialize(s),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for DataType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        one_or_many::deserialize(d).map(DataType)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SetFlag {
    Constant,
    Interval,
    Timeout,
    Dynamic,
    #[serde(untagged)]
    Other(String),
}

/// `add element` of a ruleset file (`ELEMENT`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Element {
    pub family: Family,
    pub table: String,
    pub name: String,
    #[serde(with = "one_or_many")]
    pub elem: Vec<Expr>,
}

/// One element of a named set or map, its parts told apart.
#[derive(Clone, Debug, PartialEq)]
pub struct SetElement<'a> {
    /// The value (a set) or key (a map): an address, `prefix`, `range`, `concat`, …
    pub key: &'a Expr,
    /// A map element's value (a verdict, an address).
    pub value: Option<&'a Expr>,
    /// Seconds.
    pub timeout: Option<u64>,
    /// Seconds left.
    pub expires: Option<u64>,
    pub comment: Option<&'a str>,
}

impl std::fmt::Display for SetElement<'_> {
    /// `10.20.0.10`, `10.20.0.0/28 : jump k_a_out`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.value {
            Some(v) => write!(f, "{} : {v}", self.key),
            None => write!(f, "{}", self.key),
        }
    }
}

impl Set {
    pub fn is_map(&self) -> bool {
        self.map.is_some()
    }

    /// The elements with the `elem` wrappers and map pairs taken apart.
    pub fn elements(&self) -> impl Iterator<Item = SetElement<'_>> {
        let is_map = self.is_map();
        self.elem.iter().map(move |e| {
            let (key, value) = match (is_map, e) {
                (true, Expr::List(pair)) if pair.len() == 2 => (&pair[0], Some(&pair[1])),
                _ => (e, None),
            };
            match key.named() {
                Some(Named::Elem(x)) => SetElement {
                    key: &x.val,
                    value,
                    timeout: x.timeout,
                    expires: x.expires,
                    comment: x.comment.as_deref(),
                },
                _ => SetElement {
                    key,
                    value,
                    timeout: None,
                    expires: None,
                    comment: None,
                },
            }
        })
    }
}
